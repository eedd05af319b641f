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
//! Every trace is kept (a late span must be judged against all of them); there is no retention.
//! Outputs are sorted; hash maps are internal indexes only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rustc_hash::{FxHashMap, FxHashSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{Event, InventoryObserved, Payload, ResourceRef, SpanRecorded, Tracking};
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

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

/// Relation of a graph edge.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// `from` is an owner of `to`.
    Owns,
    /// `from` depends on `to`.
    Uses,
}

impl Relation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owns => "owns",
            Self::Uses => "uses",
        }
    }
}

/// A node of the resource graph: a live resource, a uid referenced but not live, or a ghost
/// tracking row (whose `uid` is the row's uid, or `tracking:<kind>:<key>` without one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct GraphNode {
    /// The cluster.
    pub cluster: String,
    /// Uid (see the type's doc for ghosts).
    pub uid: String,
    /// Kind; empty for a referenced uid never seen live.
    pub kind: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name; empty for a referenced uid never seen live.
    pub name: String,
    /// Whether it is live.
    pub live: bool,
    /// Whether a tracking row tracks it (always true for a ghost row).
    pub tracked: bool,
    /// Its confirmed orphan kind, if it is one (unmanaged before dangling when both).
    pub orphan: Option<OrphanKind>,
    /// The orphan's reason.
    pub reason: Option<String>,
}

/// An edge of the resource graph.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct GraphEdge {
    /// The cluster.
    pub cluster: String,
    /// Owner or user uid.
    pub from: String,
    /// Owned or used uid.
    pub to: String,
    /// `owns` or `uses`.
    pub relation: Relation,
}

/// The resource graph with orphan marks; nodes and edges sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrphanGraph {
    /// Nodes, sorted by (cluster, uid).
    pub nodes: Vec<GraphNode>,
    /// Edges, sorted by (cluster, from, to, relation).
    pub edges: Vec<GraphEdge>,
}

fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

impl OrphanGraph {
    /// Graphviz DOT: one node per graph node (id `cluster/uid`), orphans red with their kind and
    /// reason in the label, nodes that are not live dashed grey, tracked nodes bold.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph orphans {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
        );
        for node in &self.nodes {
            let id = dot_escape(&format!("{}/{}", node.cluster, node.uid));
            let mut label = if node.kind.is_empty() {
                String::from("(unknown)")
            } else {
                node.kind.clone()
            };
            label.push('\n');
            if let Some(ns) = &node.namespace {
                label.push_str(ns);
                label.push('/');
            }
            label.push_str(&node.name);
            label.push('\n');
            label.push_str(&node.uid);
            let mut attrs = Vec::new();
            if let Some(kind) = node.orphan {
                label.push_str("\nORPHAN ");
                label.push_str(kind.as_str());
                if let Some(reason) = &node.reason {
                    label.push_str(": ");
                    label.push_str(reason);
                }
                attrs.push("color=\"red\"".to_owned());
                attrs.push("fontcolor=\"red\"".to_owned());
            }
            let mut styles = Vec::new();
            if !node.live {
                styles.push("dashed");
                if node.orphan.is_none() {
                    attrs.push("color=\"grey\"".to_owned());
                }
            }
            if node.tracked {
                styles.push("bold");
            }
            if !styles.is_empty() {
                attrs.push(format!("style=\"{}\"", styles.join(",")));
            }
            attrs.insert(0, format!("label=\"{}\"", dot_escape(&label)));
            let _ = writeln!(out, "  \"{id}\" [{}];", attrs.join(", "));
        }
        for edge in &self.edges {
            let from = dot_escape(&format!("{}/{}", edge.cluster, edge.from));
            let to = dot_escape(&format!("{}/{}", edge.cluster, edge.to));
            let _ = writeln!(
                out,
                "  \"{from}\" -> \"{to}\" [label=\"{}\"];",
                edge.relation.as_str()
            );
        }
        out.push_str("}\n");
        out
    }
}

// ---------------------------------------------------------------------------------------------
// State

/// A live resource of the latest scan of its kind.
#[derive(Clone, Debug)]
struct Res {
    kind: String,
    namespace: Option<String>,
    name: String,
    owners: Vec<String>,
    uses: Vec<String>,
    /// Index into `ClusterOrphans::components` (derived, rebuilt after every scan).
    component: u32,
}

impl Res {
    fn name_key(&self) -> String {
        name_key(&self.kind, self.namespace.as_deref(), &self.name)
    }

    fn reference(&self, uid: &str) -> ResourceRef {
        ResourceRef {
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: Some(uid.to_owned()),
        }
    }
}

/// Index key of a resource by kind and `namespace/name` (or `name`).
fn name_key(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}\0{ns}/{name}"),
        None => format!("{kind}\0{name}"),
    }
}

/// Index key a uid-less tracking row matches: its kind and the part of its key after the
/// last `:`.
fn row_name_key(kind: &str, key: &str) -> String {
    let suffix = key.rsplit_once(':').map_or(key, |(_, s)| s);
    format!("{kind}\0{suffix}")
}

fn display_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// A resource that was live and is not any more, remembered while something references it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoneResource {
    /// Uid.
    pub uid: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

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

/// The orphan state of one cluster.
#[derive(Clone, Debug)]
struct ClusterOrphans {
    clock: Option<Timestamp>,
    confirm_scans: u32,
    /// Kinds scanned at least once, with the name of their latest scan.
    scanned: BTreeMap<String, String>,
    /// The live set, by uid.
    live: BTreeMap<String, Res>,
    /// Uids live per kind (may hold uids since taken over by another kind; checked on use).
    kind_members: FxHashMap<String, Vec<String>>,
    /// Resources no longer live that a live resource still references (for reasons).
    gone: BTreeMap<String, GoneResource>,
    /// Kinds that have (or had) a tracking row.
    tracked_kinds: BTreeSet<String>,
    /// Tracking rows by (kind, key): the uid they name.
    rows: BTreeMap<(String, String), Option<String>>,
    /// Derived: rows naming each uid.
    tracked_uids: FxHashMap<String, u32>,
    /// Derived: uid-less rows matching each name key.
    tracked_names: FxHashMap<String, u32>,
    /// Derived: live uids by name key, sorted.
    live_names: FxHashMap<String, Vec<String>>,
    /// Derived: the smallest uid of each connected component.
    components: Vec<String>,
    /// Resource candidates and confirmed orphans (unmanaged, ghost, dangling).
    candidates: BTreeMap<Key, OrphanView>,
    traces: BTreeMap<String, Trace>,
    /// Traces not yet evaluated, by (latest span time, trace id).
    pending: BTreeSet<(Timestamp, String)>,
    /// Span orphans of evaluated traces.
    span_orphans: BTreeMap<Key, OrphanView>,
}

impl Default for ClusterOrphans {
    fn default() -> Self {
        Self {
            clock: None,
            confirm_scans: ClusterSettings::default().orphan_confirm_scans,
            scanned: BTreeMap::new(),
            live: BTreeMap::new(),
            kind_members: FxHashMap::default(),
            gone: BTreeMap::new(),
            tracked_kinds: BTreeSet::new(),
            rows: BTreeMap::new(),
            tracked_uids: FxHashMap::default(),
            tracked_names: FxHashMap::default(),
            live_names: FxHashMap::default(),
            components: Vec::new(),
            candidates: BTreeMap::new(),
            traces: BTreeMap::new(),
            pending: BTreeSet::new(),
            span_orphans: BTreeMap::new(),
        }
    }
}

fn bump(map: &mut FxHashMap<String, u32>, key: String, up: bool) {
    if up {
        *map.entry(key).or_insert(0) += 1;
    } else if let Some(count) = map.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            map.remove(&key);
        }
    }
}

impl ClusterOrphans {
    fn count_row(&mut self, kind: &str, key: &str, uid: Option<&str>, up: bool) {
        match uid {
            Some(uid) => bump(&mut self.tracked_uids, uid.to_owned(), up),
            None => bump(&mut self.tracked_names, row_name_key(kind, key), up),
        }
    }

    fn is_tracked(&self, uid: &str, res: &Res) -> bool {
        self.tracked_uids.contains_key(uid) || self.tracked_names.contains_key(&res.name_key())
    }

    /// Whether the row names a live resource.
    fn row_backed(&self, kind: &str, key: &str, uid: Option<&str>) -> bool {
        match uid {
            Some(uid) => self.live.contains_key(uid),
            None => self.live_names.contains_key(&row_name_key(kind, key)),
        }
    }

    /// A resource by uid, live or remembered, as `(Kind ns/name)`; empty when unknown.
    fn describe(&self, uid: &str) -> String {
        if let Some(res) = self.live.get(uid) {
            format!(
                " ({} {})",
                res.kind,
                display_name(res.namespace.as_deref(), &res.name)
            )
        } else if let Some(gone) = self.gone.get(uid) {
            format!(
                " ({} {})",
                gone.kind,
                display_name(gone.namespace.as_deref(), &gone.name)
            )
        } else {
            String::new()
        }
    }

    fn apply_tracking(&mut self, tracking: &Tracking, upsert: bool) {
        let map_key = (tracking.kind.clone(), tracking.key.clone());
        if let Some(old) = self.rows.remove(&map_key) {
            self.count_row(&tracking.kind, &tracking.key, old.as_deref(), false);
        }
        let ghost_key = Key::ghost(&tracking.kind, &tracking.key);
        if !upsert {
            self.candidates.remove(&ghost_key);
            return;
        }
        let uid = tracking.uid.as_deref();
        self.count_row(&tracking.kind, &tracking.key, uid, true);
        self.rows.insert(map_key, tracking.uid.clone());
        self.tracked_kinds.insert(tracking.kind.clone());
        // What it tracks now is managed, and the row is no ghost: withdraw those at once.
        let tracked: Vec<String> = match uid {
            Some(uid) if self.live.contains_key(uid) => vec![uid.to_owned()],
            Some(_) => Vec::new(),
            None => self
                .live_names
                .get(&row_name_key(&tracking.kind, &tracking.key))
                .cloned()
                .unwrap_or_default(),
        };
        if !tracked.is_empty() {
            self.candidates.remove(&ghost_key);
        }
        for uid in tracked {
            self.candidates
                .remove(&Key::resource(OrphanKind::Unmanaged, &uid));
        }
    }

    fn apply_scan(
        &mut self,
        cluster: &str,
        seq: u64,
        at: Timestamp,
        scan: &InventoryObserved,
        settings: &ClusterSettings,
    ) {
        // 1. The kinds this scan replaces, and its resources by kind (last entry per uid wins).
        let mut by_kind: BTreeMap<&str, BTreeMap<&str, &crate::event::InventoryResource>> = scan
            .kinds
            .iter()
            .map(|k| (k.as_str(), BTreeMap::new()))
            .collect();
        let mut seen_uid: FxHashMap<&str, &str> = FxHashMap::default();
        for res in &scan.resources {
            if let Some(previous_kind) = seen_uid.insert(res.uid.as_str(), res.kind.as_str())
                && let Some(members) = by_kind.get_mut(previous_kind)
            {
                members.remove(res.uid.as_str());
            }
            by_kind
                .entry(res.kind.as_str())
                .or_default()
                .insert(res.uid.as_str(), res);
        }

        // 2. Replace each kind.
        let mut removed: Vec<(String, Res)> = Vec::new();
        for &kind in by_kind.keys() {
            self.scanned.insert(kind.to_owned(), scan.scan.clone());
            for uid in self.kind_members.remove(kind).unwrap_or_default() {
                if self.live.get(&uid).is_some_and(|r| r.kind == kind)
                    && let Some(res) = self.live.remove(&uid)
                {
                    removed.push((uid, res));
                }
            }
        }
        for (&kind, resources) in &by_kind {
            let mut members = Vec::with_capacity(resources.len());
            for (&uid, res) in resources {
                self.live.insert(
                    uid.to_owned(),
                    Res {
                        kind: res.kind.clone(),
                        namespace: res.namespace.clone(),
                        name: res.name.clone(),
                        owners: res.owners.clone(),
                        uses: res.uses.clone(),
                        component: 0,
                    },
                );
                self.gone.remove(uid);
                members.push(uid.to_owned());
            }
            self.kind_members.insert(kind.to_owned(), members);
        }
        for (uid, res) in removed {
            if !self.live.contains_key(&uid) {
                self.gone.insert(
                    uid.clone(),
                    GoneResource {
                        uid,
                        kind: res.kind,
                        namespace: res.namespace,
                        name: res.name,
                    },
                );
            }
        }

        // 3. Derived indexes, and forget the gone that nothing references.
        self.rebuild_live_indexes();
        let live = &self.live;
        let referenced: FxHashSet<&str> = live
            .values()
            .flat_map(|r| r.owners.iter().chain(&r.uses))
            .map(String::as_str)
            .filter(|uid| !live.contains_key(*uid))
            .collect();
        self.gone.retain(|uid, _| referenced.contains(uid.as_str()));

        // 4. Candidates now, and their streaks.
        let now = self.compute_candidates(cluster, settings);
        let mut previous = std::mem::take(&mut self.candidates);
        for (key, mut view) in now {
            if let Some(old) = previous.remove(&key) {
                view.since = old.since;
                view.since_seq = old.since_seq;
                view.scans = old.scans.saturating_add(1);
            } else {
                view.since = at;
                view.since_seq = seq;
                view.scans = 1;
            }
            self.candidates.insert(key, view);
        }
    }

    /// Name index and connected components of the live set.
    fn rebuild_live_indexes(&mut self) {
        self.live_names.clear();
        for (uid, res) in &self.live {
            self.live_names
                .entry(res.name_key())
                .or_default()
                .push(uid.clone());
        }
        // Union-find over the live set in uid order; the root of a set is its smallest index.
        let index: FxHashMap<&str, u32> = self
            .live
            .keys()
            .enumerate()
            .map(|(i, uid)| (uid.as_str(), i as u32))
            .collect();
        let mut parent: Vec<u32> = (0..self.live.len() as u32).collect();
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let next = parent[parent[x as usize] as usize];
                parent[x as usize] = next;
                x = next;
            }
            x
        }
        for (i, res) in self.live.values().enumerate() {
            for other in res.owners.iter().chain(&res.uses) {
                if let Some(&j) = index.get(other.as_str()) {
                    let (a, b) = (find(&mut parent, i as u32), find(&mut parent, j));
                    if a != b {
                        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                        parent[hi as usize] = lo;
                    }
                }
            }
        }
        drop(index);
        let uids: Vec<&String> = self.live.keys().collect();
        let mut component_of_root: FxHashMap<u32, u32> = FxHashMap::default();
        let mut components = Vec::new();
        let mut assigned = Vec::with_capacity(uids.len());
        for i in 0..uids.len() as u32 {
            let root = find(&mut parent, i);
            let id = *component_of_root.entry(root).or_insert_with(|| {
                components.push(uids[root as usize].clone());
                (components.len() - 1) as u32
            });
            assigned.push(id);
        }
        for (res, id) in self.live.values_mut().zip(assigned) {
            res.component = id;
        }
        self.components = components;
    }

    fn compute_candidates(
        &self,
        cluster: &str,
        settings: &ClusterSettings,
    ) -> Vec<(Key, OrphanView)> {
        let blank = |kind: OrphanKind, reason: String| OrphanView {
            cluster: cluster.to_owned(),
            kind,
            resource: None,
            tracking: None,
            trace_id: None,
            span: None,
            reason,
            since: Timestamp::default(),
            since_seq: 0,
            scans: 0,
        };
        let mut out = Vec::new();
        let live: Vec<(&String, &Res)> = self.live.iter().collect();
        let index: FxHashMap<&str, u32> = live
            .iter()
            .enumerate()
            .map(|(i, (uid, _))| (uid.as_str(), i as u32))
            .collect();

        // Consumers of each live resource.
        let mut used: Vec<bool> = vec![false; live.len()];
        for (_, res) in &live {
            for target in &res.uses {
                if let Some(&j) = index.get(target.as_str()) {
                    used[j as usize] = true;
                }
            }
        }

        // Direct dangling causes.
        let mut direct: Vec<Option<String>> = vec![None; live.len()];
        for (i, (_, res)) in live.iter().enumerate() {
            let reason = if let Some(owner) =
                res.owners.iter().find(|o| !index.contains_key(o.as_str()))
            {
                Some(format!("owner {owner}{} is not live", self.describe(owner)))
            } else if let Some(dep) = res.uses.iter().find(|u| !index.contains_key(u.as_str())) {
                Some(format!(
                    "uses {dep}{}, which is not live",
                    self.describe(dep)
                ))
            } else if settings.orphan_consumer_kinds.contains(&res.kind) && !used[i] {
                Some(format!("no live resource uses this {}", res.kind))
            } else {
                None
            };
            direct[i] = reason;
        }

        // Transitive over owners: breadth-first from the direct ones along "owned by" edges.
        // `dist` is order-independent, so the chosen owner (nearest a root cause, first in
        // `owners` on ties) is too.
        let mut children_start = vec![0u32; live.len() + 1];
        for (_, res) in &live {
            for owner in &res.owners {
                if let Some(&j) = index.get(owner.as_str()) {
                    children_start[j as usize + 1] += 1;
                }
            }
        }
        for i in 0..live.len() {
            children_start[i + 1] += children_start[i];
        }
        let mut fill = children_start.clone();
        let mut children = vec![0u32; children_start[live.len()] as usize];
        for (i, (_, res)) in live.iter().enumerate() {
            for owner in &res.owners {
                if let Some(&j) = index.get(owner.as_str()) {
                    children[fill[j as usize] as usize] = i as u32;
                    fill[j as usize] += 1;
                }
            }
        }
        const UNREACHED: u32 = u32::MAX;
        let mut dist = vec![UNREACHED; live.len()];
        let mut order: Vec<u32> = Vec::new();
        for (i, reason) in direct.iter().enumerate() {
            if reason.is_some() {
                dist[i] = 0;
                order.push(i as u32);
            }
        }
        let mut head = 0;
        while head < order.len() {
            let i = order[head] as usize;
            head += 1;
            let (lo, hi) = (children_start[i] as usize, children_start[i + 1] as usize);
            for &child in &children[lo..hi] {
                if dist[child as usize] == UNREACHED {
                    dist[child as usize] = dist[i] + 1;
                    order.push(child);
                }
            }
        }
        // Root cause of each dangling resource: the index of a direct one.
        let mut root = vec![UNREACHED; live.len()];
        let mut via = vec![UNREACHED; live.len()];
        for &i in &order {
            let i = i as usize;
            if dist[i] == 0 {
                root[i] = i as u32;
                continue;
            }
            let res = live[i].1;
            let parent = res
                .owners
                .iter()
                .filter_map(|o| index.get(o.as_str()).copied())
                .find(|&j| dist[j as usize] != UNREACHED && dist[j as usize] + 1 == dist[i])
                .expect("a transitively dangling resource has an owner one step nearer");
            via[i] = parent;
            root[i] = root[parent as usize];
        }
        for &i in &order {
            let i = i as usize;
            let (uid, res) = live[i];
            let reason = if dist[i] == 0 {
                direct[i].clone().expect("direct")
            } else {
                let owner = live[via[i] as usize].0;
                let cause = direct[root[i] as usize].as_deref().expect("direct");
                format!("owner {owner}{} is dangling: {cause}", self.describe(owner))
            };
            let mut view = blank(OrphanKind::Dangling, reason);
            view.resource = Some(res.reference(uid));
            out.push((Key::resource(OrphanKind::Dangling, uid), view));
        }

        // Unmanaged roots of tracked kinds.
        for (uid, res) in &live {
            if res.owners.is_empty()
                && self.tracked_kinds.contains(&res.kind)
                && !self.is_tracked(uid, res)
            {
                let name = display_name(res.namespace.as_deref(), &res.name);
                let reason = format!(
                    "no {} tracking row tracks {name} (by uid {uid} or by a key ending in :{name})",
                    res.kind
                );
                let mut view = blank(OrphanKind::Unmanaged, reason);
                view.resource = Some(res.reference(uid));
                out.push((Key::resource(OrphanKind::Unmanaged, uid), view));
            }
        }

        // Ghost rows of scanned kinds.
        for ((kind, key), uid) in &self.rows {
            let Some(scan) = self.scanned.get(kind) else {
                continue;
            };
            if self.row_backed(kind, key, uid.as_deref()) {
                continue;
            }
            let reason = match uid {
                Some(uid) => format!(
                    "no live resource has the tracked uid {uid} (latest {kind} scan: {scan})"
                ),
                None => {
                    let suffix = key.rsplit_once(':').map_or(key.as_str(), |(_, s)| s);
                    format!("no live {kind} {suffix} (latest {kind} scan: {scan})")
                }
            };
            let mut view = blank(OrphanKind::Ghost, reason);
            view.tracking = Some(TrackingRef {
                kind: kind.clone(),
                key: key.clone(),
                uid: uid.clone(),
            });
            out.push((Key::ghost(kind, key), view));
        }
        out
    }

    fn apply_span(&mut self, at: Timestamp, span: &SpanRecorded) {
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
                    .span_orphans
                    .range(from(kind)..)
                    .take_while(|(k, _)| k.kind == kind && k.a == span.trace_id)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    self.span_orphans.remove(&key);
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

    fn evaluate_due(&mut self, cluster: &str, seq: u64, settings: &ClusterSettings) {
        let Some(clock) = self.clock else { return };
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
                self.span_orphans.insert(Key::of(&orphan), orphan);
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
                self.span_orphans.insert(Key::of(&orphan), orphan);
            }
        }
    }

    fn lookup(&self, resource: &ResourceRef) -> Option<&Res> {
        match &resource.uid {
            Some(uid) => self.live.get(uid),
            None => {
                let key = name_key(
                    &resource.kind,
                    resource.namespace.as_deref(),
                    &resource.name,
                );
                let uid = self.live_names.get(&key)?.first()?;
                self.live.get(uid)
            }
        }
    }

    fn graph_into(&self, cluster: &str, graph: &mut OrphanGraph) {
        let confirmed = |key: &Key| {
            self.candidates
                .get(key)
                .filter(|v| v.scans >= self.confirm_scans)
        };
        let mut missing: BTreeSet<&str> = BTreeSet::new();
        for (uid, res) in &self.live {
            let orphan = confirmed(&Key::resource(OrphanKind::Unmanaged, uid))
                .or_else(|| confirmed(&Key::resource(OrphanKind::Dangling, uid)));
            graph.nodes.push(GraphNode {
                cluster: cluster.to_owned(),
                uid: uid.clone(),
                kind: res.kind.clone(),
                namespace: res.namespace.clone(),
                name: res.name.clone(),
                live: true,
                tracked: self.is_tracked(uid, res),
                orphan: orphan.map(|v| v.kind),
                reason: orphan.map(|v| v.reason.clone()),
            });
            for target in &res.uses {
                if !self.live.contains_key(target) {
                    missing.insert(target);
                }
                graph.edges.push(GraphEdge {
                    cluster: cluster.to_owned(),
                    from: uid.clone(),
                    to: target.clone(),
                    relation: Relation::Uses,
                });
            }
            for owner in &res.owners {
                if !self.live.contains_key(owner) {
                    missing.insert(owner);
                }
                graph.edges.push(GraphEdge {
                    cluster: cluster.to_owned(),
                    from: owner.clone(),
                    to: uid.clone(),
                    relation: Relation::Owns,
                });
            }
        }
        let mut missing_nodes: BTreeMap<&str, GraphNode> = missing
            .into_iter()
            .map(|uid| {
                let gone = self.gone.get(uid);
                let node = GraphNode {
                    cluster: cluster.to_owned(),
                    uid: uid.to_owned(),
                    kind: gone.map(|g| g.kind.clone()).unwrap_or_default(),
                    namespace: gone.and_then(|g| g.namespace.clone()),
                    name: gone.map(|g| g.name.clone()).unwrap_or_default(),
                    live: false,
                    tracked: self.tracked_uids.contains_key(uid),
                    orphan: None,
                    reason: None,
                };
                (uid, node)
            })
            .collect();
        for ((kind, key), uid) in &self.rows {
            let Some(view) = confirmed(&Key::ghost(kind, key)) else {
                continue;
            };
            // A ghost row naming a uid that live resources reference marks that node.
            if let Some(node) = uid.as_deref().and_then(|u| missing_nodes.get_mut(u)) {
                if node.orphan.is_none() {
                    node.orphan = Some(OrphanKind::Ghost);
                    node.reason = Some(view.reason.clone());
                }
                continue;
            }
            let suffix = key.rsplit_once(':').map_or(key.as_str(), |(_, s)| s);
            let (namespace, name) = match suffix.split_once('/') {
                Some((ns, name)) => (Some(ns.to_owned()), name.to_owned()),
                None => (None, suffix.to_owned()),
            };
            graph.nodes.push(GraphNode {
                cluster: cluster.to_owned(),
                uid: uid
                    .clone()
                    .unwrap_or_else(|| format!("tracking:{kind}:{key}")),
                kind: kind.clone(),
                namespace,
                name,
                live: false,
                tracked: true,
                orphan: Some(OrphanKind::Ghost),
                reason: Some(view.reason.clone()),
            });
        }
        graph.nodes.extend(missing_nodes.into_values());
    }
}

// ---------------------------------------------------------------------------------------------
// The projection

/// The orphans of every cluster.
#[derive(Clone, Debug, Default)]
pub struct OrphanProjection {
    clusters: BTreeMap<String, ClusterOrphans>,
}

impl OrphanProjection {
    /// An empty projection.
    pub fn new() -> Self {
        Self::default()
    }

    fn cluster_mut(&mut self, cluster: &str) -> &mut ClusterOrphans {
        if !self.clusters.contains_key(cluster) {
            self.clusters
                .insert(cluster.to_owned(), ClusterOrphans::default());
        }
        self.clusters.get_mut(cluster).expect("inserted just above")
    }

    fn selected<'a>(
        &'a self,
        cluster: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a String, &'a ClusterOrphans)> + 'a {
        self.clusters
            .iter()
            .filter(move |(name, _)| cluster.is_none_or(|c| c == name.as_str()))
    }

    /// Applies the event at log position `seq`. `settings` are the cluster's settings in force
    /// (already updated by this event if it is a `settings.changed`). Every event of a cluster
    /// advances that cluster's clock (max event time seen), which drives the span grace period.
    pub fn apply(&mut self, seq: u64, event: &Event, settings: &ClusterSettings) {
        let at = event.time;
        let name = event.cluster.as_str();
        let cluster = self.cluster_mut(name);
        cluster.clock = Some(cluster.clock.map_or(at, |clock| clock.max(at)));
        cluster.confirm_scans = settings.orphan_confirm_scans;
        match &event.payload {
            Payload::InventoryObserved(scan) => cluster.apply_scan(name, seq, at, scan, settings),
            Payload::TrackingUpserted(tracking) => cluster.apply_tracking(tracking, true),
            Payload::TrackingDeleted(tracking) => cluster.apply_tracking(tracking, false),
            Payload::SpanRecorded(span) => cluster.apply_span(at, span),
            _ => {}
        }
        cluster.evaluate_due(name, seq, settings);
    }

    /// Confirmed orphans of every cluster (or one): by cluster, then kind, then subject.
    pub fn orphans(&self, cluster: Option<&str>) -> Vec<OrphanView> {
        let mut out = Vec::new();
        for (_, state) in self.selected(cluster) {
            out.extend(
                state
                    .candidates
                    .values()
                    .filter(|v| v.scans >= state.confirm_scans)
                    .cloned(),
            );
            out.extend(state.span_orphans.values().cloned());
        }
        out
    }

    /// Candidates not yet confirmed (seen in fewer consecutive scans than required), in the
    /// order of [`Self::orphans`].
    pub fn candidates(&self, cluster: Option<&str>) -> Vec<OrphanView> {
        let mut out = Vec::new();
        for (_, state) in self.selected(cluster) {
            out.extend(
                state
                    .candidates
                    .values()
                    .filter(|v| v.scans < state.confirm_scans)
                    .cloned(),
            );
        }
        out
    }

    /// The resource graph of a cluster (or all) with orphan marks, for JSON and DOT export:
    /// live resources, uids they reference that are not live, and confirmed ghost rows.
    pub fn graph(&self, cluster: Option<&str>) -> OrphanGraph {
        let mut graph = OrphanGraph::default();
        for (name, state) in self.selected(cluster) {
            state.graph_into(name, &mut graph);
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
        let state = self.clusters.get(cluster)?;
        let res = state.lookup(resource)?;
        Some(state.components[res.component as usize].as_str())
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
            .map(|(name, c)| ClusterOrphansSnapshot {
                cluster: name.clone(),
                clock: c.clock,
                confirm_scans: c.confirm_scans,
                scanned: c
                    .scanned
                    .iter()
                    .map(|(kind, scan)| (kind.clone(), scan.clone()))
                    .collect(),
                resources: c
                    .live
                    .iter()
                    .map(|(uid, r)| LiveResource {
                        uid: uid.clone(),
                        kind: r.kind.clone(),
                        namespace: r.namespace.clone(),
                        name: r.name.clone(),
                        owners: r.owners.clone(),
                        uses: r.uses.clone(),
                    })
                    .collect(),
                gone: c.gone.values().cloned().collect(),
                tracked_kinds: c.tracked_kinds.iter().cloned().collect(),
                tracking: c
                    .rows
                    .iter()
                    .map(|((kind, key), uid)| TrackingRef {
                        kind: kind.clone(),
                        key: key.clone(),
                        uid: uid.clone(),
                    })
                    .collect(),
                candidates: c.candidates.values().cloned().collect(),
                traces: c
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
                span_orphans: c.span_orphans.values().cloned().collect(),
            })
            .collect();
        OrphansSnapshot { clusters }
    }

    /// Rebuilds the projection from a snapshot; folding on from here gives the same state as
    /// never having stopped.
    pub fn restore(snapshot: &OrphansSnapshot) -> Self {
        let mut projection = Self::new();
        for saved in &snapshot.clusters {
            let c = projection.cluster_mut(&saved.cluster);
            c.clock = saved.clock;
            c.confirm_scans = saved.confirm_scans;
            c.scanned = saved.scanned.iter().cloned().collect();
            for r in &saved.resources {
                c.kind_members
                    .entry(r.kind.clone())
                    .or_default()
                    .push(r.uid.clone());
                c.live.insert(
                    r.uid.clone(),
                    Res {
                        kind: r.kind.clone(),
                        namespace: r.namespace.clone(),
                        name: r.name.clone(),
                        owners: r.owners.clone(),
                        uses: r.uses.clone(),
                        component: 0,
                    },
                );
            }
            c.rebuild_live_indexes();
            c.gone = saved
                .gone
                .iter()
                .map(|g| (g.uid.clone(), g.clone()))
                .collect();
            c.tracked_kinds = saved.tracked_kinds.iter().cloned().collect();
            for row in &saved.tracking {
                c.count_row(&row.kind, &row.key, row.uid.as_deref(), true);
                c.rows
                    .insert((row.kind.clone(), row.key.clone()), row.uid.clone());
            }
            c.candidates = saved
                .candidates
                .iter()
                .map(|v| (Key::of(v), v.clone()))
                .collect();
            for t in &saved.traces {
                if !t.evaluated {
                    c.pending.insert((t.last_time, t.trace_id.clone()));
                }
                c.traces.insert(
                    t.trace_id.clone(),
                    Trace {
                        spans: t
                            .spans
                            .iter()
                            .map(|s| {
                                (
                                    s.span_id.clone(),
                                    SpanInfo {
                                        parent: s.parent_span_id.clone(),
                                        name: s.name.clone(),
                                        service: s.service.clone(),
                                    },
                                )
                            })
                            .collect(),
                        last_time: t.last_time,
                        evaluated: t.evaluated,
                    },
                );
            }
            c.span_orphans = saved
                .span_orphans
                .iter()
                .map(|v| (Key::of(v), v.clone()))
                .collect();
        }
        projection
    }
}

/// Serializable state of the orphans projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphansSnapshot {
    /// Per cluster, sorted by name.
    pub clusters: Vec<ClusterOrphansSnapshot>,
}

/// Serializable orphan state of one cluster; every list sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterOrphansSnapshot {
    /// Cluster name.
    pub cluster: String,
    /// Latest event time seen.
    pub clock: Option<Timestamp>,
    /// `orphan_confirm_scans` in force at the latest event.
    pub confirm_scans: u32,
    /// Kinds scanned at least once, with the name of their latest scan.
    pub scanned: Vec<(String, String)>,
    /// The live set, by uid.
    pub resources: Vec<LiveResource>,
    /// Resources no longer live that live ones still reference.
    pub gone: Vec<GoneResource>,
    /// Kinds that have or had a tracking row.
    pub tracked_kinds: Vec<String>,
    /// Tracking rows, by (kind, key).
    pub tracking: Vec<TrackingRef>,
    /// Resource candidates and confirmed resource orphans.
    pub candidates: Vec<OrphanView>,
    /// Every trace, by id.
    pub traces: Vec<TraceSnapshot>,
    /// Span orphans of evaluated traces.
    pub span_orphans: Vec<OrphanView>,
}

/// A live resource in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveResource {
    /// Uid.
    pub uid: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Owner uids, as scanned.
    pub owners: Vec<String>,
    /// Used uids, as scanned.
    pub uses: Vec<String>,
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
