//! The findings projection: the finding lifecycle of `shared/design/lifecycle.md`, as a fold.
//!
//! Per cluster: findings by `check_key`, each with its occurrences; the settings in force; and
//! the cluster's clock (the latest event time seen, so time comes from the log). A cycle upserts
//! what it saw, then resolves the absent findings that already had `clean_cycles >= T`, and only
//! then increments the rest: resolve first, then increment.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::event::{
    CycleCompleted, Event, FindingObservation, FindingResolved, ManualResolutionKind, Payload,
    ResourceRef, Severity,
};
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

/// How an occurrence of a finding ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolutionKind {
    /// Absent for more than T consecutive cycles of its category.
    Auto,
    /// An operator resolved it.
    Manual,
    /// An automated remediation resolved it.
    Recipe,
    /// Informational: resolved the moment it opened.
    Informational,
}

impl ResolutionKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::Recipe => "recipe",
            Self::Informational => "informational",
        }
    }
}

impl From<ManualResolutionKind> for ResolutionKind {
    fn from(kind: ManualResolutionKind) -> Self {
        match kind {
            ManualResolutionKind::Manual => Self::Manual,
            ManualResolutionKind::Recipe => Self::Recipe,
        }
    }
}

/// One occurrence of a finding: from the event that opened it to the one that closed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// When it opened.
    pub opened_at: Timestamp,
    /// Log position of the event that opened it.
    pub opened_seq: u64,
    /// When it was resolved; `None` while active.
    pub resolved_at: Option<Timestamp>,
    /// Log position of the event that resolved it.
    pub resolved_seq: Option<u64>,
    /// How it was resolved.
    pub resolution_kind: Option<ResolutionKind>,
}

/// A change of a finding's state, reported as the fold applies an event (for timeline indexes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingChange {
    /// An occurrence opened.
    Opened,
    /// The active occurrence was resolved.
    Resolved(ResolutionKind),
    /// An active finding was seen with another severity.
    SeverityChanged,
}

/// Receives the changes the fold makes, with the finding's check_key.
pub trait ChangeSink {
    /// `check_key` changed state.
    fn change(&mut self, check_key: &str, change: FindingChange);
}

/// Discards changes: the plain fold.
struct Discard;

impl ChangeSink for Discard {
    #[inline]
    fn change(&mut self, _: &str, _: FindingChange) {}
}

impl ChangeSink for Vec<(String, FindingChange)> {
    fn change(&mut self, check_key: &str, change: FindingChange) {
        self.push((check_key.to_owned(), change));
    }
}

const NOT_ACTIVE: u32 = u32::MAX;

/// One finding of one cluster, live in the projection.
#[derive(Clone, Debug)]
struct Finding {
    check_key: Box<str>,
    category: u32,
    severity: Severity,
    title: String,
    detail: Option<String>,
    resource: Option<ResourceRef>,
    clean_cycles: u32,
    last_seen_at: Timestamp,
    occurrences: Vec<Occurrence>,
    /// Position in `ClusterFindings::active`, or `NOT_ACTIVE`.
    active_slot: u32,
    /// The cycle stamp of the last cycle that saw it, and the index of the entry that won.
    seen_stamp: u64,
    seen_index: u32,
}

impl Finding {
    fn is_active(&self) -> bool {
        self.active_slot != NOT_ACTIVE
    }

    fn refresh_from(&mut self, obs: &FindingObservation, category: u32) {
        self.category = category;
        self.severity = obs.severity;
        if self.title != obs.title {
            self.title.clone_from(&obs.title);
        }
        if self.detail != obs.detail {
            self.detail.clone_from(&obs.detail);
        }
        if self.resource != obs.resource {
            self.resource.clone_from(&obs.resource);
        }
    }
}

/// The findings of one cluster, its settings and its clock.
#[derive(Clone, Debug, Default)]
struct ClusterFindings {
    settings: ClusterSettings,
    clock: Option<Timestamp>,
    category_names: Vec<String>,
    category_ids: FxHashMap<String, u32>,
    findings: Vec<Finding>,
    by_key: FxHashMap<Box<str>, u32>,
    /// Indices of the active findings, in no particular order.
    active: Vec<u32>,
    /// Incremented at the start of every cycle; 0 means "never seen".
    cycle_stamp: u64,
    /// Scratch, indexed by category id: did this category run in the current cycle.
    ran_scratch: Vec<bool>,
    /// Scratch: (entry index, finding index, category id) of the current cycle's entries.
    entries_scratch: Vec<(u32, u32, u32)>,
}

impl ClusterFindings {
    fn intern_category(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.category_ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.category_names.len()).expect("fewer than 2^32 categories");
        self.category_names.push(name.to_owned());
        self.category_ids.insert(name.to_owned(), id);
        self.ran_scratch.push(false);
        id
    }

    fn finding_index(&mut self, obs: &FindingObservation, category: u32) -> u32 {
        if let Some(&index) = self.by_key.get(obs.check_key.as_str()) {
            return index;
        }
        let index = u32::try_from(self.findings.len()).expect("fewer than 2^32 findings");
        self.findings.push(Finding {
            check_key: obs.check_key.as_str().into(),
            category,
            severity: obs.severity,
            title: obs.title.clone(),
            detail: obs.detail.clone(),
            resource: obs.resource.clone(),
            clean_cycles: 0,
            last_seen_at: Timestamp::default(),
            occurrences: Vec::new(),
            active_slot: NOT_ACTIVE,
            seen_stamp: 0,
            seen_index: 0,
        });
        self.by_key.insert(obs.check_key.as_str().into(), index);
        index
    }

    fn activate(&mut self, index: u32) {
        let slot = u32::try_from(self.active.len()).expect("fewer than 2^32 active findings");
        self.findings[index as usize].active_slot = slot;
        self.active.push(index);
    }

    fn resolve(
        &mut self,
        index: u32,
        at: Timestamp,
        seq: u64,
        kind: ResolutionKind,
        sink: &mut impl ChangeSink,
    ) {
        let finding = &mut self.findings[index as usize];
        sink.change(&finding.check_key, FindingChange::Resolved(kind));
        let slot = finding.active_slot as usize;
        finding.active_slot = NOT_ACTIVE;
        finding.clean_cycles = 0;
        let occurrence = finding
            .occurrences
            .last_mut()
            .expect("an active finding has an open occurrence");
        occurrence.resolved_at = Some(at);
        occurrence.resolved_seq = Some(seq);
        occurrence.resolution_kind = Some(kind);
        self.active.swap_remove(slot);
        if let Some(&moved) = self.active.get(slot) {
            self.findings[moved as usize].active_slot = slot as u32;
        }
    }

    fn apply_cycle(
        &mut self,
        seq: u64,
        at: Timestamp,
        cycle: &CycleCompleted,
        sink: &mut impl ChangeSink,
    ) {
        self.cycle_stamp += 1;
        let stamp = self.cycle_stamp;

        // 1. The categories that ran: listed ones plus the findings' own, if enabled.
        //    Few per cycle, so a linear list beats hashing every finding's category.
        let mut cycle_categories: Vec<(&str, Option<u32>)> = Vec::new();
        let names = cycle
            .categories
            .iter()
            .map(String::as_str)
            .chain(cycle.findings.iter().map(|f| f.category.as_str()));
        for name in names {
            if cycle_categories.iter().any(|(seen, _)| *seen == name) {
                continue;
            }
            let id = if self.settings.is_enabled(name) {
                let id = self.intern_category(name);
                self.ran_scratch[id as usize] = true;
                Some(id)
            } else {
                None
            };
            cycle_categories.push((name, id));
        }

        // 2. The entries that count: category ran; for a key listed twice the last entry wins.
        let mut entries = std::mem::take(&mut self.entries_scratch);
        entries.clear();
        for (entry, obs) in cycle.findings.iter().enumerate() {
            let category = cycle_categories
                .iter()
                .find(|(name, _)| *name == obs.category)
                .and_then(|(_, id)| *id);
            let Some(category) = category else { continue };
            let index = self.finding_index(obs, category);
            let finding = &mut self.findings[index as usize];
            finding.seen_stamp = stamp;
            finding.seen_index = entry as u32;
            entries.push((entry as u32, index, category));
        }

        // 3. Upsert.
        for &(entry, index, category) in &entries {
            let finding = &mut self.findings[index as usize];
            if finding.seen_index != entry {
                continue;
            }
            let obs = &cycle.findings[entry as usize];
            if finding.is_active() && finding.severity != obs.severity {
                sink.change(&finding.check_key, FindingChange::SeverityChanged);
            }
            finding.refresh_from(obs, category);
            finding.last_seen_at = at;
            finding.clean_cycles = 0;
            if !finding.is_active() {
                sink.change(&finding.check_key, FindingChange::Opened);
                finding.occurrences.push(Occurrence {
                    opened_at: at,
                    opened_seq: seq,
                    resolved_at: None,
                    resolved_seq: None,
                    resolution_kind: None,
                });
                self.activate(index);
                if obs.informational {
                    self.resolve(index, at, seq, ResolutionKind::Informational, sink);
                }
            }
        }
        self.entries_scratch = entries;

        // 4 + 5. Resolve first (against the prior count), then increment the rest.
        let threshold = self.settings.clean_cycles_to_resolve;
        let mut slot = 0;
        while slot < self.active.len() {
            let index = self.active[slot];
            let finding = &mut self.findings[index as usize];
            let absent_and_ran =
                finding.seen_stamp != stamp && self.ran_scratch[finding.category as usize];
            if absent_and_ran {
                if finding.clean_cycles >= threshold {
                    // swap_remove brings another finding into this slot: look at it next.
                    self.resolve(index, at, seq, ResolutionKind::Auto, sink);
                    continue;
                }
                finding.clean_cycles += 1;
            }
            slot += 1;
        }

        for (_, id) in cycle_categories {
            if let Some(id) = id {
                self.ran_scratch[id as usize] = false;
            }
        }
    }

    fn apply_resolved(
        &mut self,
        seq: u64,
        at: Timestamp,
        resolved: &FindingResolved,
        sink: &mut impl ChangeSink,
    ) {
        if let Some(&index) = self.by_key.get(resolved.check_key.as_str())
            && self.findings[index as usize].is_active()
        {
            self.resolve(index, at, seq, resolved.kind.into(), sink);
        }
    }

    fn is_flapping(&self, finding: &Finding) -> bool {
        let Some(now) = self.clock else { return false };
        let window_secs = i64::try_from(self.settings.flap_window_secs).unwrap_or(i64::MAX);
        let window_start = now.plus_secs(-window_secs);
        let auto_resolutions = finding
            .occurrences
            .iter()
            .filter(|o| o.resolution_kind == Some(ResolutionKind::Auto))
            .filter_map(|o| o.resolved_at)
            .filter(|&at| at > window_start && at <= now)
            .count();
        auto_resolutions > self.settings.flap_threshold as usize
    }

    fn view(&self, cluster: &str, finding: &Finding) -> FindingView {
        let current = finding
            .occurrences
            .last()
            .expect("a finding in the projection has at least one occurrence");
        let active = finding.is_active();
        FindingView {
            cluster: cluster.to_owned(),
            check_key: finding.check_key.to_string(),
            category: self.category_names[finding.category as usize].clone(),
            severity: finding.severity,
            title: finding.title.clone(),
            state: if active {
                FindingState::Active
            } else {
                FindingState::Resolved
            },
            clean_cycles: active.then_some(finding.clean_cycles),
            opened_at: current.opened_at,
            last_seen_at: finding.last_seen_at,
            resolved_at: current.resolved_at,
            resolution_kind: current.resolution_kind,
            occurrences: finding.occurrences.len() as u64,
            flapping: self.is_flapping(finding),
            history: finding.occurrences.clone(),
        }
    }
}

/// Whether a finding has an active occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingState {
    /// An occurrence is open.
    Active,
    /// Every occurrence is resolved.
    Resolved,
}

/// A finding as users see it: the shape of `tidemark replay --json` and of the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingView {
    /// The cluster.
    pub cluster: String,
    /// The finding's key within its cluster.
    pub check_key: String,
    /// Latest category seen.
    pub category: String,
    /// Latest severity seen.
    pub severity: Severity,
    /// Latest title seen.
    pub title: String,
    /// Active or resolved.
    pub state: FindingState,
    /// Consecutive clean cycles of the active occurrence; `None` when resolved.
    pub clean_cycles: Option<u32>,
    /// When the latest occurrence opened.
    pub opened_at: Timestamp,
    /// When it was last seen by a cycle.
    pub last_seen_at: Timestamp,
    /// When the latest occurrence was resolved.
    pub resolved_at: Option<Timestamp>,
    /// How the latest occurrence was resolved.
    pub resolution_kind: Option<ResolutionKind>,
    /// Number of occurrences, the active one included.
    pub occurrences: u64,
    /// More auto-resolutions inside the flap window than the flap threshold.
    pub flapping: bool,
    /// Every occurrence, oldest first.
    pub history: Vec<Occurrence>,
}

/// The findings of every cluster.
#[derive(Clone, Debug, Default)]
pub struct FindingsProjection {
    clusters: BTreeMap<String, ClusterFindings>,
}

impl FindingsProjection {
    /// An empty projection.
    pub fn new() -> Self {
        Self::default()
    }

    fn cluster_mut(&mut self, cluster: &str) -> &mut ClusterFindings {
        if !self.clusters.contains_key(cluster) {
            self.clusters
                .insert(cluster.to_owned(), ClusterFindings::default());
        }
        self.clusters.get_mut(cluster).expect("inserted just above")
    }

    /// Applies the event at log position `seq`.
    pub fn apply(&mut self, seq: u64, event: &Event) {
        self.apply_reporting(seq, event, &mut Discard);
    }

    /// Applies the event at log position `seq`, telling `sink` every finding state change
    /// (of the event's cluster).
    pub fn apply_reporting(&mut self, seq: u64, event: &Event, sink: &mut impl ChangeSink) {
        let at = event.time;
        let cluster = self.cluster_mut(&event.cluster);
        cluster.clock = Some(cluster.clock.map_or(at, |clock| clock.max(at)));
        match &event.payload {
            Payload::CycleCompleted(cycle) => cluster.apply_cycle(seq, at, cycle, sink),
            Payload::FindingResolved(resolved) => cluster.apply_resolved(seq, at, resolved, sink),
            Payload::SettingsChanged(change) => cluster.settings.apply(change),
            _ => {}
        }
    }

    /// Every finding, sorted by (cluster, check_key).
    pub fn views(&self) -> Vec<FindingView> {
        let mut views = Vec::new();
        for (name, cluster) in &self.clusters {
            let mut findings: Vec<&Finding> = cluster
                .findings
                .iter()
                .filter(|f| !f.occurrences.is_empty())
                .collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            views.extend(findings.into_iter().map(|f| cluster.view(name, f)));
        }
        views
    }

    /// One finding, if the projection has it.
    pub fn view(&self, cluster: &str, check_key: &str) -> Option<FindingView> {
        let state = self.clusters.get(cluster)?;
        let index = *state.by_key.get(check_key)?;
        let finding = &state.findings[index as usize];
        (!finding.occurrences.is_empty()).then(|| state.view(cluster, finding))
    }

    /// The settings in force for `cluster` (defaults for a cluster never seen).
    pub fn settings(&self, cluster: &str) -> ClusterSettings {
        self.clusters
            .get(cluster)
            .map(|c| c.settings.clone())
            .unwrap_or_default()
    }

    /// The clock of `cluster`: the latest event time seen for it.
    pub fn clock(&self, cluster: &str) -> Option<Timestamp> {
        self.clusters.get(cluster).and_then(|c| c.clock)
    }

    /// Number of findings (active or not) over all clusters.
    pub fn finding_count(&self) -> usize {
        self.clusters
            .values()
            .map(|c| {
                c.findings
                    .iter()
                    .filter(|f| !f.occurrences.is_empty())
                    .count()
            })
            .sum()
    }

    /// Number of active findings over all clusters.
    pub fn active_count(&self) -> usize {
        self.clusters.values().map(|c| c.active.len()).sum()
    }

    /// A serializable copy of the whole state, in a deterministic order.
    pub fn snapshot(&self) -> FindingsSnapshot {
        let clusters = self
            .clusters
            .iter()
            .map(|(name, cluster)| {
                let mut findings: Vec<FindingSnapshot> = cluster
                    .findings
                    .iter()
                    .filter(|f| !f.occurrences.is_empty())
                    .map(|f| FindingSnapshot {
                        check_key: f.check_key.to_string(),
                        category: cluster.category_names[f.category as usize].clone(),
                        severity: f.severity,
                        title: f.title.clone(),
                        detail: f.detail.clone(),
                        resource: f.resource.clone(),
                        active: f.is_active(),
                        clean_cycles: f.clean_cycles,
                        last_seen_at: f.last_seen_at,
                        occurrences: f.occurrences.clone(),
                    })
                    .collect();
                findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
                ClusterSnapshot {
                    cluster: name.clone(),
                    settings: cluster.settings.clone(),
                    clock: cluster.clock,
                    findings,
                }
            })
            .collect();
        FindingsSnapshot { clusters }
    }

    /// Rebuilds the projection from a snapshot; folding on from here gives the same state as
    /// never having stopped.
    pub fn restore(snapshot: &FindingsSnapshot) -> Self {
        let mut projection = Self::new();
        for saved in &snapshot.clusters {
            let cluster = projection.cluster_mut(&saved.cluster);
            cluster.settings = saved.settings.clone();
            cluster.clock = saved.clock;
            for f in &saved.findings {
                let category = cluster.intern_category(&f.category);
                let index = cluster.findings.len() as u32;
                cluster.findings.push(Finding {
                    check_key: f.check_key.as_str().into(),
                    category,
                    severity: f.severity,
                    title: f.title.clone(),
                    detail: f.detail.clone(),
                    resource: f.resource.clone(),
                    clean_cycles: f.clean_cycles,
                    last_seen_at: f.last_seen_at,
                    occurrences: f.occurrences.clone(),
                    active_slot: NOT_ACTIVE,
                    seen_stamp: 0,
                    seen_index: 0,
                });
                cluster.by_key.insert(f.check_key.as_str().into(), index);
                if f.active {
                    cluster.activate(index);
                }
            }
        }
        projection
    }
}

/// Serializable state of the findings projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingsSnapshot {
    /// Per cluster, sorted by name.
    pub clusters: Vec<ClusterSnapshot>,
}

/// Serializable state of one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// Cluster name.
    pub cluster: String,
    /// Settings in force.
    pub settings: ClusterSettings,
    /// Latest event time seen.
    pub clock: Option<Timestamp>,
    /// Findings, sorted by check_key.
    pub findings: Vec<FindingSnapshot>,
}

/// Serializable state of one finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingSnapshot {
    /// Key within the cluster.
    pub check_key: String,
    /// Latest category.
    pub category: String,
    /// Latest severity.
    pub severity: Severity,
    /// Latest title.
    pub title: String,
    /// Latest detail.
    pub detail: Option<String>,
    /// Latest resource.
    pub resource: Option<ResourceRef>,
    /// Has an open occurrence.
    pub active: bool,
    /// Clean cycles of the open occurrence.
    pub clean_cycles: u32,
    /// Last seen by a cycle.
    pub last_seen_at: Timestamp,
    /// Every occurrence, oldest first.
    pub occurrences: Vec<Occurrence>,
}
