//! The span forest of `span.recorded`, per cluster: orphan spans (a parent that is not in the
//! trace) and rootless traces (no span without a parent), judged once a trace has been quiet for
//! `span_grace_secs` of its cluster's clock. Independent of the resource graph: it shares only
//! the clock and the orphan list with it.
//!
//! A judged trace is kept until it has been quiet for `span_retention_secs` of the cluster's
//! clock, then dropped: its spans leave memory, and the orphans it showed are final (listed for
//! ever, never withdrawn or replaced). They wait in the forest's `dropped` until the live state
//! writes them out (`dropped.rs`); memory holds the traces of the retention, not of the log. A
//! span of a trace memory does not hold starts a trace of its own and is judged alone (its
//! orphans are listed beside those of a dropped trace of the same id); one whose `start` is
//! older than the retention at the cluster's clock (its trace is past the retention: dropped, or
//! never seen in time) is counted as late.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::SpanRecorded;
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

use super::watch::OrphanWatch;
use super::{Key, OrphanKind, OrphanOrder, OrphanView, SpanRef};

#[derive(Clone, Debug)]
struct SpanInfo {
    parent: Option<String>,
    name: String,
    service: String,
}

#[derive(Clone, Debug, Default)]
struct Trace {
    spans: BTreeMap<String, SpanInfo>,
    last_time: Timestamp,
    evaluated: bool,
}

/// The traces of one cluster and the orphans they showed when evaluated.
#[derive(Clone, Debug, Default)]
pub(super) struct SpanForest {
    traces: BTreeMap<String, Trace>,
    /// Traces not yet evaluated, by (latest span time, trace id).
    pending: BTreeSet<(Timestamp, String)>,
    /// Evaluated traces, by (latest span time, trace id): dropped once quiet for the retention.
    judged: BTreeSet<(Timestamp, String)>,
    /// Span orphans of the evaluated traces memory holds.
    orphans: BTreeMap<Key, OrphanView>,
    /// Span orphans of dropped traces not written out, by [`OrphanOrder`] (a dropped trace's
    /// orphan may share its [`Key`] with one of a later trace of the same id).
    dropped: BTreeMap<OrphanOrder, OrphanView>,
    /// Spans that arrived for a trace past the retention (judged alone), ever.
    late_spans: u64,
}

/// Removes from `orphans` those of trace `trace_id` (both kinds) and answers them, by key: what
/// a span arriving for its evaluated trace withdraws, and what dropping it makes final.
fn take_orphans_of(orphans: &mut BTreeMap<Key, OrphanView>, trace_id: &str) -> Vec<OrphanView> {
    let mut taken = Vec::new();
    for kind in [OrphanKind::OrphanSpan, OrphanKind::RootlessTrace] {
        let first = Key {
            kind,
            a: trace_id.to_owned(),
            b: String::new(),
        };
        let keys: Vec<Key> = orphans
            .range(first..)
            .take_while(|(k, _)| k.kind == kind && k.a == trace_id)
            .map(|(k, _)| k.clone())
            .collect();
        taken.extend(keys.iter().filter_map(|key| orphans.remove(key)));
    }
    taken
}

/// Seconds as a signed offset for [`Timestamp::plus_secs`].
fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl SpanForest {
    /// Records a span at the cluster's time `at` (the cluster's clock is `clock`): its trace
    /// waits for its grace period again, and the trace's orphans are withdrawn if it had been
    /// evaluated. A span of a trace memory does not hold starts a new one; it is counted as late
    /// when its `start` is older than the retention.
    pub(super) fn apply<W: OrphanWatch>(
        &mut self,
        at: Timestamp,
        clock: Timestamp,
        span: &SpanRecorded,
        settings: &ClusterSettings,
        watch: &mut W,
    ) {
        if !self.traces.contains_key(&span.trace_id)
            && span.start.plus_secs(secs(settings.span_retention_secs)) <= clock
        {
            self.late_spans += 1;
        }
        let trace = self.traces.entry(span.trace_id.clone()).or_default();
        if trace.evaluated {
            trace.evaluated = false;
            self.judged
                .remove(&(trace.last_time, span.trace_id.clone()));
            let withdrawn = take_orphans_of(&mut self.orphans, &span.trace_id);
            if W::ON {
                for orphan in withdrawn {
                    watch.span_orphan(OrphanOrder::of(&orphan), Some(orphan));
                }
            }
        } else if !trace.spans.is_empty() {
            self.pending
                .remove(&(trace.last_time, span.trace_id.clone()));
        }
        trace.last_time = if trace.spans.is_empty() {
            at
        } else {
            trace.last_time.max(at)
        };
        trace.spans.insert(
            span.span_id.clone(),
            SpanInfo {
                parent: span.parent_span_id.clone(),
                name: span.name.clone(),
                service: span.service.clone(),
            },
        );
        self.pending
            .insert((trace.last_time, span.trace_id.clone()));
    }

    /// Evaluates every trace quiet for the grace period at the cluster's `clock`: its spans whose
    /// parent is not in it are orphans, and it is rootless if no span is a root.
    pub(super) fn evaluate_due<W: OrphanWatch>(
        &mut self,
        cluster: &str,
        clock: Timestamp,
        seq: u64,
        settings: &ClusterSettings,
        watch: &mut W,
    ) {
        let grace = secs(settings.span_grace_secs);
        let retention = secs(settings.span_retention_secs);
        while let Some((last, _)) = self.pending.first() {
            if last.plus_secs(grace) > clock {
                break;
            }
            let (last, trace_id) = self.pending.pop_first().expect("just looked");
            let trace = self
                .traces
                .get_mut(&trace_id)
                .expect("pending traces exist");
            trace.evaluated = true;
            let view = |kind, trace_id: &str, reason: String| OrphanView {
                cluster: cluster.to_owned(),
                kind,
                resource: None,
                tracking: None,
                trace_id: Some(trace_id.to_owned()),
                span: None,
                reason,
                since: clock,
                since_seq: seq,
                scans: 0,
            };
            let mut has_root = false;
            for (span_id, info) in &trace.spans {
                let Some(parent) = &info.parent else {
                    has_root = true;
                    continue;
                };
                if trace.spans.contains_key(parent) {
                    continue;
                }
                let mut orphan = view(
                    OrphanKind::OrphanSpan,
                    &trace_id,
                    format!("parent span {parent} is not in trace {trace_id}"),
                );
                orphan.span = Some(SpanRef {
                    span_id: span_id.clone(),
                    parent_span_id: Some(parent.clone()),
                    service: info.service.clone(),
                    name: info.name.clone(),
                });
                Self::list(&mut self.orphans, orphan, watch);
            }
            if !has_root {
                let orphan = view(
                    OrphanKind::RootlessTrace,
                    &trace_id,
                    format!(
                        "trace has no root span: each of its {} spans names a parent",
                        trace.spans.len()
                    ),
                );
                Self::list(&mut self.orphans, orphan, watch);
            }
            self.judged.insert((last, trace_id));
        }
        // Judged traces quiet for the retention leave memory; their orphans are final.
        while let Some((last, _)) = self.judged.first() {
            if last.plus_secs(retention) > clock {
                break;
            }
            let (_, trace_id) = self.judged.pop_first().expect("just looked");
            self.traces.remove(&trace_id);
            for orphan in take_orphans_of(&mut self.orphans, &trace_id) {
                self.dropped.insert(OrphanOrder::of(&orphan), orphan);
            }
        }
    }

    /// Lists an orphan a judged trace shows (telling `watch`).
    fn list<W: OrphanWatch>(
        orphans: &mut BTreeMap<Key, OrphanView>,
        orphan: OrphanView,
        watch: &mut W,
    ) {
        let order = W::ON.then(|| OrphanOrder::of(&orphan));
        let replaced = orphans.insert(Key::of(&orphan), orphan);
        if let Some(order) = order {
            if let Some(replaced) = replaced {
                watch.span_orphan(OrphanOrder::of(&replaced), Some(replaced));
            }
            watch.span_orphan(order, None);
        }
    }

    /// The orphan `order` as the lists show it, if memory holds it: of a judged trace it holds,
    /// or of a dropped trace not yet written out.
    pub(super) fn listed(&self, order: &OrphanOrder) -> Option<&OrphanView> {
        let key = Key {
            kind: order.kind,
            a: order.subject.clone(),
            b: order.detail.clone(),
        };
        self.orphans
            .get(&key)
            .filter(|view| view.since_seq == order.since_seq)
            .or_else(|| self.dropped.get(order))
    }

    /// Takes the orphans of dropped traces memory holds (to write them out), by order key.
    pub(super) fn take_dropped(&mut self) -> BTreeMap<OrphanOrder, OrphanView> {
        std::mem::take(&mut self.dropped)
    }

    /// Traces held in memory (pending or judged within the retention).
    pub(super) fn traces_kept(&self) -> usize {
        self.traces.len()
    }

    /// Spans that arrived for a trace past the retention and were judged alone, ever.
    pub(super) fn late_spans(&self) -> u64 {
        self.late_spans
    }

    /// The orphans memory holds (of the evaluated traces it holds, and of dropped traces not
    /// written out), each with its order key, unsorted.
    pub(super) fn orphans(&self) -> impl Iterator<Item = (OrphanOrder, &OrphanView)> {
        self.orphans
            .values()
            .map(|v| (OrphanOrder::of(v), v))
            .chain(self.dropped.iter().map(|(k, v)| (k.clone(), v)))
    }

    /// Whether memory holds the orphan of a dropped trace with this order key (so a row of it
    /// is the same orphan, written out by the live state while a past state holds it).
    pub(super) fn holds_dropped(&self, key: &OrphanOrder) -> bool {
        self.dropped.contains_key(key)
    }

    /// Its snapshot part.
    pub(super) fn snapshot(&self) -> SpansSnapshot {
        SpansSnapshot {
            traces: self
                .traces
                .iter()
                .map(|(trace_id, t)| TraceSnapshot {
                    trace_id: trace_id.clone(),
                    last_time: t.last_time,
                    evaluated: t.evaluated,
                    spans: t
                        .spans
                        .iter()
                        .map(|(span_id, s)| SpanRef {
                            span_id: span_id.clone(),
                            parent_span_id: s.parent.clone(),
                            service: s.service.clone(),
                            name: s.name.clone(),
                        })
                        .collect(),
                })
                .collect(),
            span_orphans: {
                let mut all: Vec<(OrphanOrder, &OrphanView)> = self.orphans().collect();
                all.sort_by(|x, y| x.0.cmp(&y.0));
                all.into_iter().map(|(_, v)| v.clone()).collect()
            },
            late_spans: self.late_spans,
        }
    }

    /// The forest a snapshot part kept, moved in.
    pub(super) fn restore(saved: SpansSnapshot) -> Self {
        let mut forest = Self::default();
        for t in saved.traces {
            let queue = if t.evaluated {
                &mut forest.judged
            } else {
                &mut forest.pending
            };
            queue.insert((t.last_time, t.trace_id.clone()));
            let spans = t
                .spans
                .into_iter()
                .map(|s| {
                    let info = SpanInfo {
                        parent: s.parent_span_id,
                        name: s.name,
                        service: s.service,
                    };
                    (s.span_id, info)
                })
                .collect();
            let trace = Trace {
                spans,
                last_time: t.last_time,
                evaluated: t.evaluated,
            };
            forest.traces.insert(t.trace_id, trace);
        }
        for orphan in saved.span_orphans {
            if !forest.showed_by_held_trace(&orphan) {
                forest.dropped.insert(OrphanOrder::of(&orphan), orphan);
                continue;
            }
            // Of two the held trace shows, the later evaluation is its own.
            let key = Key::of(&orphan);
            let (held, earlier) = match forest.orphans.remove(&key) {
                Some(other) if other.since_seq > orphan.since_seq => (other, orphan),
                Some(other) => (orphan, other),
                None => {
                    forest.orphans.insert(key, orphan);
                    continue;
                }
            };
            forest.dropped.insert(OrphanOrder::of(&earlier), earlier);
            forest.orphans.insert(key, held);
        }
        forest.late_spans = saved.late_spans;
        forest
    }

    /// Whether an orphan of a snapshot (which lists the orphans of held and dropped traces
    /// together, by order key) is one the evaluated trace memory holds under its id showed:
    /// one it shows now (its spans have not changed since it was evaluated, so its orphans are
    /// what they make), and of the latest evaluation among those of that kind and subject (a
    /// dropped trace of the same id was evaluated earlier: [`Self::restore`] keeps the later).
    /// Any other is a dropped trace's.
    /// Exact for what this build writes; of a snapshot written before the orphans of dropped
    /// traces were final, an orphan of a dropped trace the held one shows again is counted as
    /// the held one's (one orphan then, as that build listed it).
    fn showed_by_held_trace(&self, orphan: &OrphanView) -> bool {
        let Some(trace_id) = &orphan.trace_id else {
            return false;
        };
        let Some(trace) = self.traces.get(trace_id).filter(|t| t.evaluated) else {
            return false;
        };
        match (orphan.kind, &orphan.span) {
            (OrphanKind::RootlessTrace, _) => trace.spans.values().all(|s| s.parent.is_some()),
            (OrphanKind::OrphanSpan, Some(span)) => {
                trace.spans.get(&span.span_id).is_some_and(|info| {
                    info.parent
                        .as_ref()
                        .is_some_and(|parent| !trace.spans.contains_key(parent))
                })
            }
            _ => false,
        }
    }
}

/// The span forest of one cluster in a snapshot (the last fields of
/// [`super::ClusterOrphansSnapshot`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpansSnapshot {
    /// Every trace memory holds, by id.
    pub traces: Vec<TraceSnapshot>,
    /// The span orphans memory holds, by [`super::OrphanOrder`]: those of the evaluated traces
    /// it holds, and those of dropped traces not written out (`dropped.rs`; every one where
    /// nothing is written out). A restore tells them apart by the traces it holds.
    pub span_orphans: Vec<OrphanView>,
    /// Spans that arrived for a trace past the retention, ever (snapshot format 6 on).
    pub late_spans: u64,
}

/// A trace in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSnapshot {
    /// Trace id.
    pub trace_id: String,
    /// Latest span event time.
    pub last_time: Timestamp,
    /// Evaluated since its latest span.
    pub evaluated: bool,
    /// Its spans, by id.
    pub spans: Vec<SpanRef>,
}
