//! The orphans of dropped traces (ADR 0006, step 5): final once their trace is dropped after
//! `span_retention_secs`, written out by the live state and read back, page by page and as of
//! a past position, exactly as a fold that keeps them in memory lists them.
//!
//! Each property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES=N` runs more or fewer cases than the defaults here.

mod support;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use proptest::prelude::*;
use support::{assert_property, at, event};
use tidemark_core::event::{SettingsChanged, SpanRecorded, SpanStatus};
use tidemark_core::orphans::{
    DroppedOrphanReader, MemoryDroppedOrphans, OrphanFilter, OrphanKind, OrphanOrder,
    OrphanProjection, OrphanView,
};
use tidemark_core::{ClusterSettings, Event, Payload};

const CLUSTERS: [&str; 2] = ["edge", "pw-prod"];
const GRACE: u64 = 60;
const RETENTION: u64 = 300;

/// A store's `dropped_orphans`, in memory behind a lock.
#[derive(Debug, Default)]
struct Rows(RwLock<MemoryDroppedOrphans>);

impl DroppedOrphanReader for Rows {
    fn dropped_orphans(
        &self,
        cluster: &str,
        start: Bound<&OrphanOrder>,
        as_of: u64,
        visit: &mut dyn FnMut(OrphanView) -> bool,
    ) {
        self.0
            .read()
            .unwrap()
            .dropped_orphans(cluster, start, as_of, visit);
    }
}

/// Orphans written out by every run of the property (some must be).
static WRITTEN: AtomicUsize = AtomicUsize::new(0);

fn settings(id: &str, cluster: &str) -> Event {
    event(
        id,
        cluster,
        0,
        Payload::SettingsChanged(SettingsChanged {
            span_grace_secs: Some(GRACE),
            span_retention_secs: Some(RETENTION),
            ..Default::default()
        }),
    )
}

fn span(
    id: &str,
    cluster: &str,
    secs: i64,
    trace: &str,
    span: &str,
    parent: Option<&str>,
) -> Event {
    event(
        id,
        cluster,
        secs,
        Payload::SpanRecorded(SpanRecorded {
            trace_id: trace.to_owned(),
            span_id: span.to_owned(),
            parent_span_id: parent.map(str::to_owned),
            name: format!("op-{span}"),
            service: "agents".to_owned(),
            start: at(secs),
            end: Some(at(secs + 1)),
            status: SpanStatus::Ok,
        }),
    )
}

/// A projection and each cluster's settings, as the store keeps them.
#[derive(Clone, Debug, Default)]
struct Fold {
    projection: OrphanProjection,
    settings: BTreeMap<String, ClusterSettings>,
}

impl Fold {
    fn apply(&mut self, seq: u64, event: &Event) {
        let settings = self.settings.entry(event.cluster.clone()).or_default();
        if let Payload::SettingsChanged(change) = &event.payload {
            settings.apply(change);
        }
        self.projection.apply(seq, event, settings);
    }

    /// The live state of a store: reads and writes out through `rows`.
    fn writing_to(mut self, rows: &Arc<Rows>) -> Self {
        self.projection.read_dropped_from(rows.clone(), None);
        self.projection.write_dropped_out();
        self
    }

    /// Writes what the fold wrote out into `rows` (a batch's transaction).
    fn write(&mut self, rows: &Rows) {
        let records = self.projection.take_dropped_records();
        WRITTEN.fetch_add(records.len(), Ordering::Relaxed);
        rows.0.write().unwrap().write(&records);
    }
}

/// What the lists show: every orphan whole, every orphan in pages of two, and each cluster's
/// rootless traces in pages of one.
fn shown(projection: &OrphanProjection) -> (Vec<OrphanView>, Vec<OrphanView>, Vec<OrphanView>) {
    let walk = |filter: &OrphanFilter, size: usize| {
        let mut all: Vec<OrphanView> = Vec::new();
        loop {
            let after = all
                .last()
                .map(|last| (last.cluster.clone(), OrphanOrder::of(last)));
            let page = projection.page(filter, after.as_ref().map(|(c, o)| (c.as_str(), o)), size);
            assert!(page.orphans.len() <= size);
            all.extend(page.orphans);
            if !page.more {
                return all;
            }
        }
    };
    let mut rootless = Vec::new();
    for cluster in CLUSTERS {
        let filter = OrphanFilter {
            cluster: Some(cluster.to_owned()),
            kind: Some(OrphanKind::RootlessTrace),
            candidates: false,
        };
        rootless.extend(walk(&filter, 1));
    }
    (
        projection.orphans(None),
        walk(&OrphanFilter::default(), 2),
        rootless,
    )
}

#[derive(Clone, Debug)]
enum Step {
    Span {
        cluster: usize,
        trace: usize,
        span: usize,
        parent: Option<usize>,
        gap: i64,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        0..2usize,
        0..3usize,
        0..3usize,
        proptest::option::of(0..4usize),
        0..200i64,
    )
        .prop_map(|(cluster, trace, span, parent, gap)| Step::Span {
            cluster,
            trace,
            span,
            parent,
            gap,
        });
    proptest::collection::vec(step, 0..=120)
}

fn build(steps: &[Step]) -> Vec<Event> {
    let mut events: Vec<Event> = CLUSTERS
        .iter()
        .map(|c| settings(&format!("settings-{c}"), c))
        .collect();
    let mut secs = 0;
    for (i, step) in steps.iter().enumerate() {
        let Step::Span {
            cluster,
            trace,
            span: s,
            parent,
            gap,
        } = step;
        secs += gap;
        let parent = parent.map(|p| format!("s{p}"));
        events.push(span(
            &format!("e{i}"),
            CLUSTERS[*cluster],
            secs,
            &format!("t{trace}"),
            &format!("s{s}"),
            parent.as_deref(),
        ));
    }
    events
}

/// Over random span logs whose trace ids come back after the retention: the live state that
/// writes the orphans of dropped traces out (in batches of three), restored from its snapshot
/// half-way, lists every orphan, whole and page by page, as the fold that keeps them in memory;
/// a past state restored from that snapshot and folded on lists what the fold listed then; and
/// the live state holds no orphan of a dropped trace.
#[test]
fn orphans_of_dropped_traces_written_out_read_as_those_kept_in_memory() {
    assert_property("dropped orphans", 300, steps(), |steps| {
        let events = build(&steps);
        let rows = Arc::new(Rows::default());
        let cut = events.len() / 2;
        let later = (cut + (events.len() - cut) / 2) as u64;
        let mut memory = Fold::default();
        let mut live = Fold::default().writing_to(&rows);
        let mut at_cut = None;
        let mut at_later = None;
        for (index, e) in events.iter().enumerate() {
            let seq = index as u64 + 1;
            memory.apply(seq, e);
            live.apply(seq, e);
            if seq.is_multiple_of(3) || index + 1 == cut || index + 1 == events.len() {
                live.write(&rows);
                prop_assert_eq!(shown(&live.projection), shown(&memory.projection));
            }
            if seq == later {
                at_later = Some(shown(&memory.projection));
            }
            if index + 1 == cut {
                // Memory holds the present: every span orphan of the live state is of a trace
                // it holds.
                let snapshot = live.projection.snapshot();
                for cluster in &snapshot.clusters {
                    let held: Vec<&str> = cluster
                        .spans
                        .traces
                        .iter()
                        .map(|t| t.trace_id.as_str())
                        .collect();
                    for orphan in &cluster.spans.span_orphans {
                        let trace = orphan.trace_id.as_deref().unwrap_or_default();
                        prop_assert!(held.contains(&trace), "{:?} kept", orphan);
                    }
                }
                at_cut = Some((snapshot.clone(), live.settings.clone()));
                live = Fold {
                    projection: OrphanProjection::restore_owned(snapshot),
                    settings: live.settings.clone(),
                }
                .writing_to(&rows);
            }
        }
        prop_assert_eq!(shown(&live.projection), shown(&memory.projection));
        // Time travel: a past state restored from the snapshot at the cut, folded on to
        // `later`, reads the rows as of its position and writes nothing.
        if let (Some((snapshot, settings)), Some(then)) = (at_cut, at_later) {
            let mut past = Fold {
                projection: OrphanProjection::restore_owned(snapshot),
                settings,
            };
            past.projection.read_dropped_from(rows.clone(), Some(later));
            past.projection.write_dropped_out();
            for (index, e) in events.iter().enumerate().take(later as usize).skip(cut) {
                past.apply(index as u64 + 1, e);
            }
            prop_assert!(past.projection.take_dropped_records().is_empty());
            prop_assert_eq!(shown(&past.projection), then);
        }
        Ok(())
    });
    assert!(
        WRITTEN.load(Ordering::Relaxed) > 0,
        "no run wrote an orphan of a dropped trace out"
    );
}

/// A trace with an orphan span and no root is dropped after the retention; a late span of the
/// same id starts a trace of its own. The dropped trace's orphans are final: listed beside the
/// new trace's, never withdrawn or replaced by it (before, the new trace's evaluation replaced
/// the rootless one, and its next span withdrew them all).
#[test]
fn a_dropped_traces_orphans_stay_listed_beside_those_of_a_later_trace_of_its_id() {
    let rows = Arc::new(Rows::default());
    for writes_out in [false, true] {
        let mut fold = Fold::default();
        if writes_out {
            fold = fold.writing_to(&rows);
        }
        let c = CLUSTERS[1];
        let events = [
            settings("settings", c),
            span("a", c, 0, "t", "child", Some("gone")),
            span("b", c, 10, "other", "root", None),
            // `t` is judged at 100 (position 4: quiet for the grace) and dropped at 400
            // (position 5: quiet for the retention).
            span("c", c, 100, "other", "root2", None),
            span("d", c, 400, "other", "root3", None),
            // A span of `t` again: a trace of its own, judged at 500 (position 7).
            span("e", c, 420, "t", "late", Some("gone")),
            span("f", c, 500, "other", "root4", None),
        ];
        for (index, e) in events.iter().enumerate() {
            fold.apply(index as u64 + 1, e);
            fold.write(&rows);
        }
        let listed = |fold: &Fold| -> Vec<(OrphanKind, String, u64)> {
            fold.projection
                .orphans(Some(c))
                .into_iter()
                .map(|o| {
                    let span = o.span.map(|s| s.span_id).unwrap_or_default();
                    (o.kind, span, o.since_seq)
                })
                .collect()
        };
        let both = vec![
            (OrphanKind::OrphanSpan, "child".to_owned(), 4),
            (OrphanKind::OrphanSpan, "late".to_owned(), 7),
            (OrphanKind::RootlessTrace, String::new(), 4),
            (OrphanKind::RootlessTrace, String::new(), 7),
        ];
        assert_eq!(listed(&fold), both, "writes out: {writes_out}");
        // Another span of the new trace withdraws its own orphans only.
        fold.apply(8, &span("g", c, 510, "t", "late2", Some("late")));
        fold.write(&rows);
        assert_eq!(
            listed(&fold),
            vec![
                (OrphanKind::OrphanSpan, "child".to_owned(), 4),
                (OrphanKind::RootlessTrace, String::new(), 4),
            ],
            "writes out: {writes_out}"
        );
        if writes_out {
            let snapshot = fold.projection.snapshot();
            assert!(
                snapshot.clusters[0].spans.span_orphans.is_empty(),
                "written out, not in the snapshot"
            );
        }
    }
}
