//! The orphans projection: live resources nobody manages, tracking rows nothing backs, resources
//! whose owner or dependency is gone, and spans whose trace has no parent or root, as a fold.
//!
//! Rules (`docs/projections.md`, orphans), per cluster:
//!
//! - **Live set**: for each kind, the resources of the latest `inventory.observed` that covers
//!   it (its `kinds`, plus the kind of every resource it carries). A later scan of a kind
//!   replaces all live resources of that kind.
//! - **Tracking rows** come from `tracking.upserted` / `tracking.deleted`, keyed by (kind, key).
//!   A row tracks a live resource when its uid is the resource's uid or, for a row without uid,
//!   when the kinds match and the part of the key after its last `:` (the whole key if it has
//!   none) is `namespace/name` (`name` for a resource without namespace).
//! - **unmanaged**: a live root (no owners) that no row tracks. Judged only for kinds that have
//!   (or once had) at least one tracking row: a kind the management database never tracks is
//!   out of its scope, and a cluster without any tracking would otherwise report everything.
//!   A resource with owners is managed through its owner chain and is never unmanaged.
//! - **ghost**: a tracking row whose resource is not live, judged once the row's kind has been
//!   scanned at least once.
//! - **dangling**: a live resource with an owner that is not live, that uses a uid that is not
//!   live, or whose kind is an `orphan_consumer_kinds` kind and that no live resource uses; and,
//!   transitively over owners only, a live resource with a dangling owner. The reason of a
//!   transitive one names the owner and the root cause. When several owners are dangling the
//!   one nearest a root cause wins (ties: the first in `owners`), so reasons never depend on
//!   traversal order.
//! - **Confirmation**: every `inventory.observed` of a cluster is a scan (whatever kinds it
//!   covers); after it the candidates of the whole cluster are recomputed. A candidate seen in
//!   consecutive scans counts them in `scans`; one that is not a candidate any more is dropped.
//!   It is reported once `scans >= orphan_confirm_scans` (the value in force at the cluster's
//!   latest event). `since` / `since_seq` are the time and position of the scan that started
//!   the current streak; a candidate's reason is refreshed every scan. A `tracking.upserted`
//!   that tracks an unmanaged resource or backs a ghost row, and a `tracking.deleted` of a
//!   ghost row, withdraw that candidate at once.
//! - **Spans**: a trace is evaluated once the cluster's clock (the latest event time seen) is at
//!   least `span_grace_secs` past the latest time of its span events. Then each span whose
//!   parent is not in the trace is an `orphan_span`, and a trace without a span whose parent is
//!   null is a `rootless_trace`. A span arriving for an evaluated trace withdraws its orphans
//!   until it is quiet again. Span orphans need no scans (`scans` is 0); their `since` is the
//!   cluster clock at evaluation and `since_seq` the event that triggered it.
//!
//! - **Retention**: a judged trace quiet for `span_retention_secs` of the cluster's clock leaves
//!   memory; the orphans it showed are final (never withdrawn, written out by the live state of
//!   a store: `dropped`). A span of a trace memory does not hold starts a trace of its own,
//!   judged alone, whose orphans are listed beside those of a dropped trace of the same id
//!   (told apart by `since_seq`, [`OrphanOrder`]); when its `start` is older than the retention
//!   it is counted as a late span ([`OrphanProjection::late_spans`]).
//!
//! Outputs are sorted; hash maps are internal indexes only.
//!
//! Per cluster the state is two independent parts sharing the cluster's clock: the resource
//! graph (`graph`, its candidates found by `candidates`, exported by `export`) and the span forest
//! (`spans`). Each owns its part of the snapshot. Lists are built page by page (`page`), the
//! orphans in memory merged with the rows of dropped traces' orphans (`dropped`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Payload, ResourceRef};
use crate::lazy_clusters::{ClusterLoader, LazyClusters};
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

mod candidates;
mod dropped;
mod export;
mod graph;
mod page;
mod spans;
mod watch;

pub use self::dropped::{DroppedOrphanReader, DroppedOrphanRecord, MemoryDroppedOrphans};
pub use self::export::{GraphEdge, GraphNode, OrphanGraph, Relation};
pub use self::graph::{GoneResource, GraphSnapshot, LiveResource};
pub use self::page::{OrphanFilter, OrphanPage};
pub use self::spans::{SpansSnapshot, TraceSnapshot};
pub(crate) use self::watch::{ListedOrphan, NamedOrphanValues};

use self::graph::ClusterGraph;
use self::spans::SpanForest;
use self::watch::{NamedOrphans, NoOrphanWatch, OrphanWatch};

/// What kind of orphan.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OrphanKind {
    /// A live root resource of a tracked kind without a tracking row.
    Unmanaged,
    /// A tracking row without a live resource.
    Ghost,
    /// A live resource whose owner or dependency is gone, or that nothing consumes.
    Dangling,
    /// A span whose parent is not in its trace.
    OrphanSpan,
    /// A trace without a root span.
    RootlessTrace,
}

impl OrphanKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unmanaged => "unmanaged",
            Self::Ghost => "ghost",
            Self::Dangling => "dangling",
            Self::OrphanSpan => "orphan_span",
            Self::RootlessTrace => "rootless_trace",
        }
    }
}

/// A tracking row, as named in an orphan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct TrackingRef {
    /// Resource kind of the row.
    pub kind: String,
    /// The row's key.
    pub key: String,
    /// The live uid it claims to track, if any.
    pub uid: Option<String>,
}

/// A span, as named in an orphan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct SpanRef {
    /// Span id.
    pub span_id: String,
    /// The parent it names.
    pub parent_span_id: Option<String>,
    /// Service that recorded it.
    pub service: String,
    /// Operation name.
    pub name: String,
}

/// An orphan (or a candidate) as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrphanView {
    /// The cluster.
    pub cluster: String,
    /// What kind of orphan.
    pub kind: OrphanKind,
    /// The live resource (unmanaged, dangling).
    pub resource: Option<ResourceRef>,
    /// The tracking row (ghost).
    pub tracking: Option<TrackingRef>,
    /// The trace (orphan_span, rootless_trace).
    pub trace_id: Option<String>,
    /// The span (orphan_span).
    pub span: Option<SpanRef>,
    /// Why, naming the missing thing.
    pub reason: String,
    /// When it became a candidate in the current streak (span orphans: when evaluated).
    pub since: Timestamp,
    /// Log position of that event.
    pub since_seq: u64,
    /// Consecutive scans it has been a candidate in (0 for span orphans).
    pub scans: u32,
}

/// Orders candidates and orphans: kind, then the subject (uid; row kind and key; trace and
/// span).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: OrphanKind,
    a: String,
    b: String,
}

impl Key {
    fn resource(kind: OrphanKind, uid: &str) -> Self {
        Self {
            kind,
            a: uid.to_owned(),
            b: String::new(),
        }
    }

    fn ghost(kind: &str, key: &str) -> Self {
        Self {
            kind: OrphanKind::Ghost,
            a: kind.to_owned(),
            b: key.to_owned(),
        }
    }

    fn of(view: &OrphanView) -> Self {
        let (a, b) = match view.kind {
            OrphanKind::Unmanaged | OrphanKind::Dangling => (
                view.resource
                    .as_ref()
                    .and_then(|r| r.uid.clone())
                    .unwrap_or_default(),
                String::new(),
            ),
            OrphanKind::Ghost => view
                .tracking
                .as_ref()
                .map(|t| (t.kind.clone(), t.key.clone()))
                .unwrap_or_default(),
            OrphanKind::OrphanSpan | OrphanKind::RootlessTrace => (
                view.trace_id.clone().unwrap_or_default(),
                view.span
                    .as_ref()
                    .map(|s| s.span_id.clone())
                    .unwrap_or_default(),
            ),
        };
        Self {
            kind: view.kind,
            a,
            b,
        }
    }
}

/// Where an orphan is in lists, within its cluster: its kind, its subject ([`Key`]), then the
/// position it was judged at (`since_seq`; the orphans of two traces of the same id, one
/// dropped after the retention, share kind and subject). Also the key of the rows of dropped
/// traces' orphans after the cluster (`dropped.rs`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrphanOrder {
    /// Its kind.
    pub kind: OrphanKind,
    /// The subject: the resource's uid, the tracking row's kind, or the trace id.
    pub subject: String,
    /// The rest of it: the tracking row's key, the span id, or empty.
    pub detail: String,
    /// `since_seq`.
    pub since_seq: u64,
}

impl OrphanOrder {
    /// Before every orphan.
    pub const FIRST: Self = Self {
        kind: OrphanKind::Unmanaged,
        subject: String::new(),
        detail: String::new(),
        since_seq: 0,
    };

    /// The order key of `view`.
    pub fn of(view: &OrphanView) -> Self {
        let Key { kind, a, b } = Key::of(view);
        Self {
            kind,
            subject: a,
            detail: b,
            since_seq: view.since_seq,
        }
    }
}

/// The orphan state of one cluster: its clock, its resource graph and its span forest.
#[derive(Clone, Debug, Default)]
struct ClusterOrphans {
    clock: Option<Timestamp>,
    graph: ClusterGraph,
    spans: SpanForest,
}

impl ClusterOrphans {
    /// The cluster's state a snapshot holds.
    fn restore(saved: ClusterOrphansSnapshot) -> Self {
        Self {
            clock: saved.clock,
            graph: ClusterGraph::restore(saved.graph),
            spans: SpanForest::restore(saved.spans),
        }
    }
}

/// Reads a cluster's orphan state from a snapshot part: `Some(None)` for a part without any,
/// `None` after a fault it recorded.
pub type ClusterOrphansReader =
    std::sync::Arc<dyn Fn(&str, u64) -> Option<Option<ClusterOrphansSnapshot>> + Send + Sync>;

/// The orphans of every cluster.
#[derive(Clone, Debug, Default)]
pub struct OrphanProjection {
    /// Each cluster's orphan state, restored on first use from a per-cluster snapshot's part
    /// ([`Self::restore_lazily`]).
    clusters: LazyClusters<ClusterOrphans>,
    /// Where the orphans of dropped traces are read from and written to (`dropped.rs`).
    dropped: dropped::DroppedRows,
}

impl OrphanProjection {
    /// An empty projection.
    pub fn new() -> Self {
        Self::default()
    }

    /// A projection of the clusters `parts` names (each with the position of its snapshot
    /// part), each restored from what `read` answers for its part when first needed: `Some(None)`
    /// for a part without orphan state, `None` after a fault `read` recorded (see
    /// `lazy_clusters`).
    pub fn restore_lazily(
        parts: impl IntoIterator<Item = (String, u64)>,
        read: ClusterOrphansReader,
    ) -> Self {
        let load: ClusterLoader<ClusterOrphans> = std::sync::Arc::new(move |name, part| {
            Some(read(name, part)?.map(ClusterOrphans::restore))
        });
        Self {
            clusters: LazyClusters::unloaded(parts, load),
            dropped: dropped::DroppedRows::default(),
        }
    }

    fn selected<'a>(
        &'a self,
        cluster: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a String, &'a ClusterOrphans)> + 'a {
        // One cluster is looked up (so only it is restored), not found among all.
        let (one, all) = match cluster {
            Some(name) => (self.clusters.get_key_value(name), None),
            None => (None, Some(self.clusters.iter())),
        };
        one.into_iter().chain(all.into_iter().flatten())
    }

    /// Applies the event at log position `seq`. `settings` are the cluster's settings in force
    /// (already updated by this event if it is a `settings.changed`). Every event of a cluster
    /// advances that cluster's clock (max event time seen), which drives the span grace period.
    pub fn apply(&mut self, seq: u64, event: &Event, settings: &ClusterSettings) {
        self.apply_watching(seq, event, settings, &mut NoOrphanWatch);
    }

    /// [`Self::apply`], answering the orphans and candidates the event may have changed, with
    /// their values before and after it (ADR 0008): the subjects the fold touched, the
    /// candidates a new `orphan_confirm_scans` moves, nothing else.
    pub(crate) fn apply_naming_changes(
        &mut self,
        seq: u64,
        event: &Event,
        settings: &ClusterSettings,
    ) -> NamedOrphanValues {
        let mut named = NamedOrphans::default();
        self.apply_watching(seq, event, settings, &mut named);
        named.values
    }

    /// [`Self::apply`], telling `watch` what it is about to change: with [`NoOrphanWatch`], the
    /// same code as without.
    fn apply_watching<W: OrphanWatch>(
        &mut self,
        seq: u64,
        event: &Event,
        settings: &ClusterSettings,
        watch: &mut W,
    ) {
        let at = event.time;
        let name = event.cluster.as_str();
        let cluster = self.clusters.get_or_insert_default(name);
        let clock = cluster.clock.map_or(at, |clock| clock.max(at));
        cluster.clock = Some(clock);
        let graph = &mut cluster.graph;
        let confirm_scans_before = graph.confirm_scans;
        graph.confirm_scans = settings.orphan_confirm_scans;
        match &event.payload {
            Payload::InventoryObserved(scan) => {
                graph.apply_scan(name, seq, at, scan, settings, watch)
            }
            Payload::TrackingUpserted(tracking) => graph.apply_tracking(tracking, true, watch),
            Payload::TrackingDeleted(tracking) => graph.apply_tracking(tracking, false, watch),
            Payload::SpanRecorded(span) => cluster.spans.apply(at, clock, span, settings, watch),
            _ => {}
        }
        cluster
            .spans
            .evaluate_due(name, clock, seq, settings, watch);
        if W::ON {
            // Before the orphans of dropped traces leave memory below: still listed, unchanged.
            watch.event_applied(cluster, confirm_scans_before);
        }
        // The orphans of the traces it dropped (and any a restore left in memory) are final:
        // written out where the live state writes them out (`dropped.rs`).
        if let Some(records) = self.dropped.collected.as_mut() {
            records.extend(cluster.spans.take_dropped().into_values().map(|orphan| {
                DroppedOrphanRecord {
                    cluster: name.to_owned(),
                    written_at: seq,
                    orphan,
                }
            }));
        }
    }

    /// Reads the orphans of dropped traces written out through `reader` from now on: the live
    /// state's (`as_of` `None`: every row) or a past state's (the rows written at or before
    /// `as_of`).
    pub fn read_dropped_from(
        &mut self,
        reader: std::sync::Arc<dyn DroppedOrphanReader>,
        as_of: Option<u64>,
    ) {
        self.dropped = dropped::DroppedRows {
            reader: Some(reader),
            as_of: as_of.unwrap_or(u64::MAX),
            collected: None,
        };
    }

    /// Reads the rows as of position `as_of` (a past state folded further).
    pub fn set_dropped_as_of(&mut self, as_of: u64) {
        self.dropped.as_of = as_of;
    }

    /// From now on, the fold writes out the orphans of the traces a cluster drops at the end
    /// of the next event of that cluster ([`Self::take_dropped_records`]). Only for the live
    /// state of a store whose table takes them (never a past state: its rows are written).
    pub fn write_dropped_out(&mut self) {
        if self.dropped.reader.is_some() && self.dropped.as_of == u64::MAX {
            self.dropped.collected.get_or_insert_with(Vec::new);
        }
    }

    /// The orphans of dropped traces the fold wrote out since the last call, in fold order.
    pub fn take_dropped_records(&mut self) -> Vec<DroppedOrphanRecord> {
        self.dropped
            .collected
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Confirmed orphans of every cluster (or one): by cluster, then [`OrphanOrder`]. A whole
    /// read, for the CLI and exports; lists page with [`Self::page`].
    pub fn orphans(&self, cluster: Option<&str>) -> Vec<OrphanView> {
        let filter = OrphanFilter {
            cluster: cluster.map(str::to_owned),
            ..OrphanFilter::default()
        };
        self.page(&filter, None, usize::MAX).orphans
    }

    /// Candidates not yet confirmed (seen in fewer consecutive scans than required), in the
    /// order of [`Self::orphans`].
    pub fn candidates(&self, cluster: Option<&str>) -> Vec<OrphanView> {
        let mut out = Vec::new();
        for (_, state) in self.selected(cluster) {
            out.extend(state.graph.unconfirmed().cloned());
        }
        out
    }

    /// The resource graph of a cluster (or all) with orphan marks, for JSON and DOT export:
    /// live resources, uids they reference that are not live, and confirmed ghost rows.
    pub fn graph(&self, cluster: Option<&str>) -> OrphanGraph {
        let mut graph = OrphanGraph::default();
        for (name, state) in self.selected(cluster) {
            state.graph.graph_into(name, &mut graph);
        }
        graph.nodes.sort();
        graph.edges.sort();
        graph.edges.dedup();
        graph
    }

    /// A deterministic id of the connected component (owners + uses edges between live
    /// resources, undirected) of the live resource `resource` refers to (by uid if it has one,
    /// else by kind + namespace + name): the smallest uid in the component. `None` when it is
    /// not live.
    pub fn component_of(&self, cluster: &str, resource: &ResourceRef) -> Option<&str> {
        self.clusters.get(cluster)?.graph.component_of(resource)
    }

    /// Traces of every cluster (or one) held in memory: those not yet judged and those judged
    /// within `span_retention_secs`, never more.
    pub fn traces_kept(&self, cluster: Option<&str>) -> usize {
        self.selected(cluster)
            .map(|(_, c)| c.spans.traces_kept())
            .sum()
    }

    /// Spans of every cluster (or one) that arrived for a trace past `span_retention_secs` and
    /// were judged alone, ever.
    pub fn late_spans(&self, cluster: Option<&str>) -> u64 {
        self.selected(cluster)
            .map(|(_, c)| c.spans.late_spans())
            .sum()
    }

    /// The clock of `cluster`: the latest event time seen for it.
    pub fn clock(&self, cluster: &str) -> Option<Timestamp> {
        self.clusters.get(cluster).and_then(|c| c.clock)
    }

    /// A serializable copy of the whole state, in a deterministic order.
    pub fn snapshot(&self) -> OrphansSnapshot {
        let clusters = self
            .clusters
            .iter()
            .map(|(name, c)| Self::cluster_snapshot_of(name, c))
            .collect();
        OrphansSnapshot { clusters }
    }

    /// [`Self::snapshot`] with every orphan of dropped traces in its cluster's `span_orphans`,
    /// those written out read back as of the state's position: what a state that keeps them
    /// all in memory snapshots. For comparing states whatever each wrote out.
    pub fn whole_snapshot(&self) -> OrphansSnapshot {
        let mut snapshot = self.snapshot();
        for cluster in &mut snapshot.clusters {
            let filter = OrphanFilter {
                cluster: Some(cluster.cluster.clone()),
                ..OrphanFilter::default()
            };
            cluster.spans.span_orphans = self
                .page(&filter, None, usize::MAX)
                .orphans
                .into_iter()
                .filter(|o| matches!(o.kind, OrphanKind::OrphanSpan | OrphanKind::RootlessTrace))
                .collect();
        }
        snapshot
    }

    /// One cluster's entry of [`Self::snapshot`]; `None` for a cluster it holds nothing of.
    pub fn cluster_snapshot(&self, name: &str) -> Option<ClusterOrphansSnapshot> {
        let (name, cluster) = self.clusters.get_key_value(name)?;
        Some(Self::cluster_snapshot_of(name, cluster))
    }

    fn cluster_snapshot_of(name: &str, c: &ClusterOrphans) -> ClusterOrphansSnapshot {
        ClusterOrphansSnapshot {
            cluster: name.to_owned(),
            clock: c.clock,
            graph: c.graph.snapshot(),
            spans: c.spans.snapshot(),
        }
    }

    /// Rebuilds the projection from a snapshot; folding on from here gives the same state as
    /// never having stopped.
    pub fn restore(snapshot: &OrphansSnapshot) -> Self {
        Self::restore_owned(snapshot.clone())
    }

    /// [`Self::restore`], consuming the snapshot (its parts move into the projection).
    pub fn restore_owned(snapshot: OrphansSnapshot) -> Self {
        let mut projection = Self::new();
        for saved in snapshot.clusters {
            projection.restore_cluster(saved);
        }
        projection
    }

    /// Restores one cluster of a snapshot into this projection: a snapshot's clusters restored
    /// one at a time give the projection [`Self::restore_owned`] gives.
    pub fn restore_cluster(&mut self, saved: ClusterOrphansSnapshot) {
        let name = saved.cluster.clone();
        self.clusters.insert(name, ClusterOrphans::restore(saved));
    }
}

/// Serializable state of the orphans projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphansSnapshot {
    /// Per cluster, sorted by name.
    pub clusters: Vec<ClusterOrphansSnapshot>,
}

/// Serializable orphan state of one cluster: the clock, then the graph's part and the span
/// forest's (each module owns its part; postcard writes them in line, field after field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterOrphansSnapshot {
    /// Cluster name.
    pub cluster: String,
    /// Latest event time seen.
    pub clock: Option<Timestamp>,
    /// The resource graph and its candidates.
    pub graph: GraphSnapshot,
    /// The span forest and its orphans.
    pub spans: SpansSnapshot,
}
