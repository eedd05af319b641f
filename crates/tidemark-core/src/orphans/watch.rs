//! What an event changed in the orphans and candidates, as `tidemark replay --step` says it
//! (ADR 0008, plan step 3): the orphan fold names, as it goes, each graph candidate and span
//! orphan it is about to change, with its value before the event; at the end of the event the
//! named subjects' values after it are read, for the digest (`findings::changes`) to compare.
//!
//! Capture points: a scan replaces the cluster's candidates (`previous` holds the
//! before-values), tracking withdraws some, a span of a judged trace withdraws its orphans,
//! judging a trace lists its orphans. A change of `orphan_confirm_scans` moves candidates
//! between the lists without touching them: read at the end of the event, over the cluster's
//! candidates. Dropping a trace moves its orphans out of memory but not out of the lists: no
//! change.

use super::{ClusterOrphans, Key, OrphanOrder, OrphanView};

/// How the orphan fold tells what it is about to change: a generic parameter of the fold, every
/// call site guarded by `if W::ON`, so that with [`NoOrphanWatch`] the fold compiles to what it
/// is without one.
pub(super) trait OrphanWatch {
    /// Whether anything listens: the capture points are compiled in only when it does.
    const ON: bool;
    /// The graph candidate `key` of the event's cluster is about to be replaced, withdrawn or
    /// added; its value before the event (`None`: not a candidate). The first call for a key in
    /// an event wins.
    fn graph_candidate(&mut self, key: Key, before: Option<OrphanView>);
    /// The span orphan `order` of the event's cluster is about to be listed or withdrawn; its
    /// value before the event (`None`: not listed). The first call for an order in an event
    /// wins.
    fn span_orphan(&mut self, order: OrphanOrder, before: Option<OrphanView>);
    /// The event is applied to `cluster`, whose `orphan_confirm_scans` was `confirm_scans_before`
    /// before it: read the after-values.
    fn event_applied(&mut self, cluster: &ClusterOrphans, confirm_scans_before: u32);
}

/// No watch: the plain fold.
pub(super) struct NoOrphanWatch;

impl OrphanWatch for NoOrphanWatch {
    const ON: bool = false;
    #[inline(always)]
    fn graph_candidate(&mut self, _: Key, _: Option<OrphanView>) {}
    #[inline(always)]
    fn span_orphan(&mut self, _: OrphanOrder, _: Option<OrphanView>) {}
    #[inline(always)]
    fn event_applied(&mut self, _: &ClusterOrphans, _: u32) {}
}

/// The subjects named during one event of a cluster, with their before-values, then (once the
/// event is applied) the values of the same subjects before and after it.
#[derive(Debug, Default)]
pub(super) struct NamedOrphans {
    graph: Vec<(Key, Option<OrphanView>)>,
    spans: Vec<(OrphanOrder, Option<OrphanView>)>,
    pub(super) values: NamedOrphanValues,
}

impl OrphanWatch for NamedOrphans {
    const ON: bool = true;

    fn graph_candidate(&mut self, key: Key, before: Option<OrphanView>) {
        self.graph.push((key, before));
    }

    fn span_orphan(&mut self, order: OrphanOrder, before: Option<OrphanView>) {
        self.spans.push((order, before));
    }

    fn event_applied(&mut self, cluster: &ClusterOrphans, confirm_scans_before: u32) {
        let values = &mut self.values;
        let graph = &cluster.graph;
        let confirm_scans_after = graph.confirm_scans;

        // The first value named for a subject is its before-value (a stable sort keeps it first).
        self.graph.sort_by(|a, b| a.0.cmp(&b.0));
        self.graph.dedup_by(|later, first| later.0 == first.0);
        for (key, before) in &mut self.graph {
            if let Some(view) = before.take() {
                let confirmed = view.scans >= confirm_scans_before;
                values.before.push((view, confirmed));
            }
            if let Some(view) = graph.candidates.get(key) {
                let confirmed = view.scans >= confirm_scans_after;
                values.after.push((view.clone(), confirmed));
            }
        }
        // A new `orphan_confirm_scans` moves the candidates it draws the line between, untouched.
        if confirm_scans_before != confirm_scans_after {
            for (key, view) in &graph.candidates {
                let was = view.scans >= confirm_scans_before;
                let is = view.scans >= confirm_scans_after;
                let named = || self.graph.binary_search_by(|(k, _)| k.cmp(key)).is_ok();
                if was != is && !named() {
                    values.before.push((view.clone(), was));
                    values.after.push((view.clone(), is));
                }
            }
        }

        self.spans.sort_by(|a, b| a.0.cmp(&b.0));
        self.spans.dedup_by(|later, first| later.0 == first.0);
        for (order, before) in &mut self.spans {
            if let Some(view) = before.take() {
                values.before.push((view, true));
            }
            if let Some(view) = cluster.spans.listed(order) {
                values.after.push((view.clone(), true));
            }
        }
    }
}

/// An orphan or a candidate, as the digest lists it.
pub(crate) struct ListedOrphan<'a> {
    /// The orphan.
    pub(crate) view: &'a OrphanView,
    /// On the orphans' list (confirmed); else on the candidates'.
    pub(crate) confirmed: bool,
}

/// The orphans and candidates one event may have changed, with their values before and after
/// it (a subject absent from one side was not listed then).
#[derive(Debug, Default)]
pub(crate) struct NamedOrphanValues {
    before: Vec<(OrphanView, bool)>,
    after: Vec<(OrphanView, bool)>,
}

impl NamedOrphanValues {
    /// The values before the event.
    pub(crate) fn before(&self) -> impl Iterator<Item = ListedOrphan<'_>> {
        Self::listed(&self.before)
    }

    /// The values after the event.
    pub(crate) fn after(&self) -> impl Iterator<Item = ListedOrphan<'_>> {
        Self::listed(&self.after)
    }

    fn listed(values: &[(OrphanView, bool)]) -> impl Iterator<Item = ListedOrphan<'_>> {
        values.iter().map(|(view, confirmed)| ListedOrphan {
            view,
            confirmed: *confirmed,
        })
    }
}
