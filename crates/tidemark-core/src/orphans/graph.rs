//! The resource graph of one cluster: the live set of `inventory.observed` (the latest scan of
//! each kind), the tracking rows of `tracking.*`, and the candidates (unmanaged, ghost, dangling)
//! with their streaks over consecutive scans. How candidates are found is `candidates`; the
//! graph as users export it is `export`.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::event::{InventoryObserved, InventoryResource, ResourceRef, Tracking};
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

use super::watch::OrphanWatch;
use super::{Key, OrphanKind, OrphanView, TrackingRef};

/// A live resource of the latest scan of its kind.
#[derive(Clone, Debug)]
pub(super) struct Res {
    pub(super) kind: String,
    pub(super) namespace: Option<String>,
    pub(super) name: String,
    pub(super) owners: Vec<String>,
    pub(super) uses: Vec<String>,
    /// Index into `ClusterGraph::components` (derived, rebuilt after every scan).
    component: u32,
}

impl Res {
    fn name_key(&self) -> String {
        name_key(&self.kind, self.namespace.as_deref(), &self.name)
    }

    pub(super) fn reference(&self, uid: &str) -> ResourceRef {
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
pub(super) fn row_name_key(kind: &str, key: &str) -> String {
    let suffix = key.rsplit_once(':').map_or(key, |(_, s)| s);
    format!("{kind}\0{suffix}")
}

/// `namespace/name`, or `name` without a namespace.
pub(super) fn display_name(namespace: Option<&str>, name: &str) -> String {
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

/// The resource graph of one cluster and its orphan candidates.
#[derive(Clone, Debug)]
pub(super) struct ClusterGraph {
    /// `orphan_confirm_scans` in force at the cluster's latest event.
    pub(super) confirm_scans: u32,
    /// Kinds scanned at least once, with the name of their latest scan.
    pub(super) scanned: BTreeMap<String, String>,
    /// The live set, by uid.
    pub(super) live: BTreeMap<String, Res>,
    /// Uids live per kind (may hold uids since taken over by another kind; checked on use).
    kind_members: FxHashMap<String, Vec<String>>,
    /// Resources no longer live that a live resource still references (for reasons).
    pub(super) gone: BTreeMap<String, GoneResource>,
    /// Kinds that have (or had) a tracking row.
    pub(super) tracked_kinds: BTreeSet<String>,
    /// Tracking rows by (kind, key): the uid they name.
    pub(super) rows: BTreeMap<(String, String), Option<String>>,
    /// Derived: rows naming each uid.
    pub(super) tracked_uids: FxHashMap<String, u32>,
    /// Derived: uid-less rows matching each name key.
    tracked_names: FxHashMap<String, u32>,
    /// Derived: live uids by name key, sorted.
    pub(super) live_names: FxHashMap<String, Vec<String>>,
    /// Derived: the smallest uid of each connected component.
    components: Vec<String>,
    /// Resource candidates and confirmed orphans (unmanaged, ghost, dangling).
    pub(super) candidates: BTreeMap<Key, OrphanView>,
}

impl Default for ClusterGraph {
    fn default() -> Self {
        Self {
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

impl ClusterGraph {
    fn count_row(&mut self, kind: &str, key: &str, uid: Option<&str>, up: bool) {
        match uid {
            Some(uid) => bump(&mut self.tracked_uids, uid.to_owned(), up),
            None => bump(&mut self.tracked_names, row_name_key(kind, key), up),
        }
    }

    pub(super) fn is_tracked(&self, uid: &str, res: &Res) -> bool {
        self.tracked_uids.contains_key(uid) || self.tracked_names.contains_key(&res.name_key())
    }

    /// Whether the row names a live resource.
    pub(super) fn row_backed(&self, kind: &str, key: &str, uid: Option<&str>) -> bool {
        match uid {
            Some(uid) => self.live.contains_key(uid),
            None => self.live_names.contains_key(&row_name_key(kind, key)),
        }
    }

    pub(super) fn apply_tracking<W: OrphanWatch>(
        &mut self,
        tracking: &Tracking,
        upsert: bool,
        watch: &mut W,
    ) {
        let map_key = (tracking.kind.clone(), tracking.key.clone());
        if let Some(old) = self.rows.remove(&map_key) {
            self.count_row(&tracking.kind, &tracking.key, old.as_deref(), false);
        }
        let ghost_key = Key::ghost(&tracking.kind, &tracking.key);
        if !upsert {
            self.withdraw(ghost_key, watch);
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
            self.withdraw(ghost_key, watch);
        }
        for uid in tracked {
            self.withdraw(Key::resource(OrphanKind::Unmanaged, &uid), watch);
        }
    }

    /// Withdraws candidate `key`, if it is one.
    fn withdraw<W: OrphanWatch>(&mut self, key: Key, watch: &mut W) {
        let withdrawn = self.candidates.remove(&key);
        if W::ON && withdrawn.is_some() {
            watch.graph_candidate(key, withdrawn);
        }
    }

    pub(super) fn apply_scan<W: OrphanWatch>(
        &mut self,
        cluster: &str,
        seq: u64,
        at: Timestamp,
        scan: &InventoryObserved,
        settings: &ClusterSettings,
        watch: &mut W,
    ) {
        // 1. The kinds this scan replaces, and its resources by kind (last entry per uid wins).
        let mut by_kind: BTreeMap<&str, BTreeMap<&str, &InventoryResource>> = scan
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
            let old = previous.remove(&key);
            if let Some(old) = &old {
                view.since = old.since;
                view.since_seq = old.since_seq;
                view.scans = old.scans.saturating_add(1);
            } else {
                view.since = at;
                view.since_seq = seq;
                view.scans = 1;
            }
            if W::ON {
                watch.graph_candidate(key.clone(), old);
            }
            self.candidates.insert(key, view);
        }
        if W::ON {
            for (key, gone) in previous {
                watch.graph_candidate(key, Some(gone));
            }
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
    /// The id of the connected component of the live resource `resource` refers to: the
    /// smallest uid in it.
    pub(super) fn component_of(&self, resource: &ResourceRef) -> Option<&str> {
        let res = self.lookup(resource)?;
        Some(self.components[res.component as usize].as_str())
    }

    /// Confirmed orphans (seen in enough consecutive scans), by kind and subject.
    pub(super) fn confirmed(&self) -> impl Iterator<Item = &OrphanView> {
        self.candidates
            .values()
            .filter(|v| v.scans >= self.confirm_scans)
    }

    /// Candidates not yet confirmed, by kind and subject.
    pub(super) fn unconfirmed(&self) -> impl Iterator<Item = &OrphanView> {
        self.candidates
            .values()
            .filter(|v| v.scans < self.confirm_scans)
    }

    /// Its snapshot part.
    pub(super) fn snapshot(&self) -> GraphSnapshot {
        GraphSnapshot {
            confirm_scans: self.confirm_scans,
            scanned: self
                .scanned
                .iter()
                .map(|(kind, scan)| (kind.clone(), scan.clone()))
                .collect(),
            resources: self
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
            gone: self.gone.values().cloned().collect(),
            tracked_kinds: self.tracked_kinds.iter().cloned().collect(),
            tracking: self
                .rows
                .iter()
                .map(|((kind, key), uid)| TrackingRef {
                    kind: kind.clone(),
                    key: key.clone(),
                    uid: uid.clone(),
                })
                .collect(),
            candidates: self.candidates.values().cloned().collect(),
        }
    }

    /// The graph a snapshot part kept, moved in, with its derived indexes rebuilt.
    pub(super) fn restore(saved: GraphSnapshot) -> Self {
        let mut graph = Self {
            confirm_scans: saved.confirm_scans,
            scanned: saved.scanned.into_iter().collect(),
            ..Self::default()
        };
        for r in saved.resources {
            graph
                .kind_members
                .entry(r.kind.clone())
                .or_default()
                .push(r.uid.clone());
            let res = Res {
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
                owners: r.owners,
                uses: r.uses,
                component: 0,
            };
            graph.live.insert(r.uid, res);
        }
        graph.rebuild_live_indexes();
        graph.gone = saved.gone.into_iter().map(|g| (g.uid.clone(), g)).collect();
        graph.tracked_kinds = saved.tracked_kinds.into_iter().collect();
        for row in saved.tracking {
            graph.count_row(&row.kind, &row.key, row.uid.as_deref(), true);
            graph.rows.insert((row.kind, row.key), row.uid);
        }
        graph.candidates = saved
            .candidates
            .into_iter()
            .map(|v| (Key::of(&v), v))
            .collect();
        graph
    }
}

/// The resource graph of one cluster in a snapshot (the middle fields of
/// [`super::ClusterOrphansSnapshot`]); every list sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphSnapshot {
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
