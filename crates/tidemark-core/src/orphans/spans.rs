//! The span forest of `span.recorded`, per cluster: orphan spans (a parent that is not in the
//! trace) and rootless traces (no span without a parent), judged once a trace has been quiet for
//! `span_grace_secs` of its cluster's clock. Independent of the resource graph: it shares only
//! the clock and the orphan list with it.
//!
//! Every trace is kept (a late span must be judged against all of them); there is no retention.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::SpanRecorded;
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

use super::{Key, OrphanKind, OrphanView, SpanRef};

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
    /// Span orphans of evaluated traces.
    orphans: BTreeMap<Key, OrphanView>,
}

impl SpanForest {
    /// Records a span at the cluster's time `at`: its trace waits for its grace period again,
    /// and the trace's orphans are withdrawn if it had been evaluated.
    pub(super) fn apply(&mut self, at: Timestamp, span: &SpanRecorded) {
        let trace = self.traces.entry(span.trace_id.clone()).or_default();
        if trace.evaluated {
            trace.evaluated = false;
            let from = |kind| Key {
                kind,
                a: span.trace_id.clone(),
                b: String::new(),
            };
            for kind in [OrphanKind::OrphanSpan, OrphanKind::RootlessTrace] {
                let doomed: Vec<Key> = self
                    .orphans
                    .range(from(kind)..)
                    .take_while(|(k, _)| k.kind == kind && k.a == span.trace_id)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    self.orphans.remove(&key);
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
    pub(super) fn evaluate_due(
        &mut self,
        cluster: &str,
        clock: Timestamp,
        seq: u64,
        settings: &ClusterSettings,
    ) {
        let grace = i64::try_from(settings.span_grace_secs).unwrap_or(i64::MAX);
        while let Some((last, _)) = self.pending.first() {
            if last.plus_secs(grace) > clock {
                break;
            }
            let (_, trace_id) = self.pending.pop_first().expect("just looked");
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
                self.orphans.insert(Key::of(&orphan), orphan);
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
                self.orphans.insert(Key::of(&orphan), orphan);
            }
        }
    }

    /// The orphans of the evaluated traces, by kind and subject.
    pub(super) fn orphans(&self) -> impl Iterator<Item = &OrphanView> {
        self.orphans.values()
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
            span_orphans: self.orphans.values().cloned().collect(),
        }
    }

    /// The forest a snapshot part kept, moved in.
    pub(super) fn restore(saved: SpansSnapshot) -> Self {
        let mut forest = Self::default();
        for t in saved.traces {
            if !t.evaluated {
                forest.pending.insert((t.last_time, t.trace_id.clone()));
            }
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
        forest.orphans = saved
            .span_orphans
            .into_iter()
            .map(|v| (Key::of(&v), v))
            .collect();
        forest
    }
}

/// The span forest of one cluster in a snapshot (the last fields of
/// [`super::ClusterOrphansSnapshot`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpansSnapshot {
    /// Every trace, by id.
    pub traces: Vec<TraceSnapshot>,
    /// Span orphans of evaluated traces.
    pub span_orphans: Vec<OrphanView>,
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
