//! The findings projection: the finding lifecycle of `docs/lifecycle.md`, as a fold, and what is
//! computed in the same pass over a cycle.
//!
//! Per cluster: findings by `check_key`, each with its occurrences; the settings in force; and
//! the cluster's clock (the latest event time seen, so time comes from the log). A cycle upserts
//! what it saw, then resolves the absent findings that already had `clean_cycles >= T`, and only
//! then increments the rest: resolve first, then increment.
//!
//! The state is defined here; each concern adds its own `impl` in its module:
//! - `lifecycle`: applying events: the cycle sweep, manual resolutions, settings.
//! - `alerts`: alerts as findings (ADR 0007): their keys and lifecycle; `alert_queries` the
//!   pages of alerts users read.
//! - `maintenance`: maintenance windows: the windows in effect, the findings they cover, and
//!   the incidents and flap counts they hold back.
//! - [`flaps`]: both flap detectors, and the flap state of a finding (`flaps::FlapState`),
//!   which only that module changes.
//! - `churn`: churn per category and drift suspects, from a cycle's first absences.
//! - `views` and `queries`: what users read (finding views and overviews, pages of findings,
//!   of flaps and of a finding's history, stuck, churn).
//! - `snapshot`: the one snapshot layout, borrowed to write and owned to restore.
//! - `watch`: what an event changed, as `replay --step` says it (ADR 0008), from the subjects
//!   the fold names as it goes ([`crate::findings::changes::Watch`]).

use std::collections::{BTreeMap, BTreeSet};

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{ManualResolutionKind, ResourceRef, Severity};
use crate::findings::changes::{FindingEntry, Watch};
use crate::lazy_clusters::LazyClusters;
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

mod alert_queries;
mod alerts;
pub mod changes;
mod churn;
pub mod flaps;
mod history;
mod lifecycle;
mod live_snapshot;
mod maintenance;
mod projection_history;
mod queries;
mod snapshot;
mod views;
mod watch;

pub use self::alert_queries::{AlertFilter, AlertState};
pub use self::alerts::{
    ALERT_CATEGORY, AlertFacts, AlertStaleness, LEGACY_CYCLE_ALERT_KEY_PREFIX, RESOURCE_LABELS,
    alert_check_key, alert_resource,
};
pub use self::churn::{CHURN_MIN_KEYS, CHURN_WINDOW_RUNS, ChurnRecord, DriftRecord};
pub use self::flaps::FlapStatus;
pub use self::history::{
    Direction, FoldHistory, HistoryRange, HistoryReader, HistoryRecord, HistorySink, MemoryHistory,
};
pub use self::live_snapshot::{LiveClusterReader, LiveFindingSnapshot, LiveFindingsSnapshot};
pub use self::maintenance::{
    ClusterMaintenanceView, InMaintenance, MAINTENANCE_LOOKAHEAD_SECS, MaintenanceMark,
    MaintenanceSnapshot, MaintenanceWindowView,
};
pub use self::projection_history::SharedHistoryReader;
pub use self::queries::{HistoryWindow, LiveHistory};
pub use self::snapshot::{CategorySnapshot, ClusterSnapshot, FindingSnapshot, FindingsSnapshot};
pub use self::views::{
    ChurnView, DriftView, FindingFacts, FindingOverview, FindingSummary, FindingView, FlapOverview,
    FlapView, LongLivedView, StaleAlertView, StaleReason, StuckReport, UnreachableView,
};

use self::flaps::{FlapDetector, FlapEpisode, FlapState};
use self::projection_history::ProjectionHistory;

/// Whether a finding has an active occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FindingState {
    /// An occurrence is open.
    Active,
    /// Every occurrence is resolved.
    Resolved,
}

impl FindingState {
    /// `Active` when an occurrence is open.
    pub fn of(active: bool) -> Self {
        if active { Self::Active } else { Self::Resolved }
    }
}

/// Why an active finding cannot be resolved by the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnreachableReason {
    /// `enabled_categories` excludes its category.
    CategoryDisabled,
    /// No cycle has run its category lately.
    CategoryNotRun,
}

/// How an occurrence of a finding ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
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
    /// The alerting system said so: an `alert.resolved`, or a fire with a later `startsAt`
    /// (alerts only; ADR 0007). Appended: stored occurrences decode as before.
    Source,
}

impl ResolutionKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::Recipe => "recipe",
            Self::Informational => "informational",
            Self::Source => "source",
        }
    }

    /// Whether the count flap detector counts it: absence (`auto`, probe findings) or the
    /// source (`source`, alerts): the resolutions the finding's own source made.
    pub fn counts_towards_flapping(self) -> bool {
        matches!(self, Self::Auto | Self::Source)
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

impl Occurrence {
    /// The placeholder of a finding that never opened.
    const NONE: Self = Self {
        opened_at: Timestamp::from_unix_nanos(0),
        opened_seq: 0,
        resolved_at: None,
        resolved_seq: None,
        resolution_kind: None,
    };

    /// The occurrence as it stood at log position `as_of` (ADR 0006, "Reads as of a
    /// position"): still open if it closed after.
    pub fn as_of(mut self, as_of: u64) -> Self {
        if self.resolved_seq.is_some_and(|seq| seq > as_of) {
            self.resolved_at = None;
            self.resolved_seq = None;
            self.resolution_kind = None;
        }
        self
    }
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
    /// A flap detector started calling the finding flapping.
    FlapStarted(FlapDetector),
    /// A flap detector stopped calling the finding flapping.
    FlapStopped(FlapDetector),
}

impl FindingChange {
    /// The name used in timelines: `opened`, `resolved_auto`, `flap_started_count`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::SeverityChanged => "severity_changed",
            Self::Resolved(ResolutionKind::Auto) => "resolved_auto",
            Self::Resolved(ResolutionKind::Manual) => "resolved_manual",
            Self::Resolved(ResolutionKind::Recipe) => "resolved_recipe",
            Self::Resolved(ResolutionKind::Informational) => "informational",
            Self::Resolved(ResolutionKind::Source) => "resolved_source",
            Self::FlapStarted(FlapDetector::Count) => "flap_started_count",
            Self::FlapStarted(FlapDetector::StateChange) => "flap_started_state_change",
            Self::FlapStopped(FlapDetector::Count) => "flap_stopped_count",
            Self::FlapStopped(FlapDetector::StateChange) => "flap_stopped_state_change",
        }
    }
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

/// What the fold reports to as it applies an event of one cluster: the finding changes and
/// the history it writes out.
pub(super) trait FoldOutput: ChangeSink {
    /// Who is told what the fold is about to change ([`crate::findings::changes::Watch`]).
    type W: Watch;
    /// The watch, to tell at a capture point (under `if Self::W::ON`).
    fn watch(&mut self) -> &mut Self::W;
    /// Occurrence `number` of `check_key` closed.
    fn occurrence_closed(&mut self, check_key: &str, number: u64, occurrence: &Occurrence);
    /// Flap episode `number` of `check_key` ended.
    fn flap_episode_ended(&mut self, check_key: &str, number: u64, episode: &FlapEpisode);
    /// The times of the auto-resolutions of `check_key` written so far with `resolved_at` in
    /// `(after, up_to]`, oldest first ([`FoldHistory`]).
    fn auto_resolutions_between(
        &self,
        check_key: &str,
        after: Timestamp,
        up_to: Timestamp,
    ) -> Vec<Timestamp>;
}

/// The changes and the history sinks of one event, with its cluster's name, and its watch.
struct Output<'a, C, H: ?Sized, W> {
    cluster: &'a str,
    changes: &'a mut C,
    history: &'a mut H,
    watch: &'a mut W,
}

impl<C: ChangeSink, H: ?Sized, W> ChangeSink for Output<'_, C, H, W> {
    #[inline]
    fn change(&mut self, check_key: &str, change: FindingChange) {
        self.changes.change(check_key, change);
    }
}

impl<C: ChangeSink, H: FoldHistory + ?Sized, W: Watch> FoldOutput for Output<'_, C, H, W> {
    type W = W;

    #[inline(always)]
    fn watch(&mut self) -> &mut W {
        self.watch
    }

    fn occurrence_closed(&mut self, check_key: &str, number: u64, occurrence: &Occurrence) {
        self.history
            .occurrence_closed(self.cluster, check_key, number, occurrence);
    }

    fn flap_episode_ended(&mut self, check_key: &str, number: u64, episode: &FlapEpisode) {
        self.history
            .flap_episode_ended(self.cluster, check_key, number, episode);
    }

    fn auto_resolutions_between(
        &self,
        check_key: &str,
        after: Timestamp,
        up_to: Timestamp,
    ) -> Vec<Timestamp> {
        self.history
            .auto_resolutions_between(self.cluster, check_key, after, up_to)
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
    /// Boxed: most findings name no resource, and a million inline `None`s cost 96 MB.
    resource: Option<Box<ResourceRef>>,
    clean_cycles: u32,
    last_seen_at: Timestamp,
    /// The current occurrence: open while active, else the last closed one (the earlier ones
    /// are in the history); meaningless while `occurrence_count` is 0.
    current: Occurrence,
    /// Occurrences, the current one included.
    occurrence_count: u64,
    /// Position in `ClusterFindings::active`, or `NOT_ACTIVE`.
    active_slot: u32,
    /// The cycle stamp of the last cycle that saw it, and the index of the entry that won.
    seen_stamp: u64,
    seen_index: u32,
    /// The run of its category in which the current occurrence opened (churn).
    open_run: u64,
    /// What the flap detectors keep about it (changed only by the `flaps` module).
    flap: FlapState,
    /// What an alert keeps (`alerts`); `None` for a probe's finding. Boxed: most findings are
    /// not alerts.
    alert: Option<Box<AlertFacts>>,
}

impl Finding {
    fn is_active(&self) -> bool {
        self.active_slot != NOT_ACTIVE
    }

    /// Its value in a `--step` digest (`changes::Digest`); `None` while not yet seen.
    fn digest_entry(&self) -> Option<FindingEntry> {
        (self.occurrence_count > 0).then(|| {
            let active = self.is_active();
            (
                FindingState::of(active),
                active.then_some(self.clean_cycles),
                self.severity,
                self.occurrence_count,
                self.current.resolution_kind,
            )
        })
    }
}

/// The findings of one cluster, its settings and its clock.
#[derive(Clone, Debug, Default)]
struct ClusterFindings {
    /// An event of this cluster was applied since the projection was restored or last marked
    /// snapshotted ([`FindingsProjection::mark_snapshotted`]): a per-cluster snapshot writes
    /// only the clusters that changed.
    changed_since_snapshot: bool,
    settings: ClusterSettings,
    clock: Option<Timestamp>,
    category_names: Vec<String>,
    category_ids: FxHashMap<String, u32>,
    findings: Vec<Finding>,
    /// Index into `findings` by check key.
    by_key: KeyIndex,
    /// Indices of the active findings, in no particular order.
    active: Vec<u32>,
    /// Incremented at the start of every cycle; 0 means "never seen".
    cycle_stamp: u64,
    /// Alert notifications applied (every `alert.fired` / `alert.resolved` of the cluster):
    /// the runs of the state change detector for alerts (`alerts`).
    alert_runs: u64,
    /// The alerts' findings by check key: `GET /v1/alerts` pages them in key order without
    /// walking the probes' findings (derived: rebuilt at a restore, bounded by the alerts).
    alerts_by_key: BTreeMap<Box<str>, u32>,
    /// The alerts' findings by fingerprint (then index): one alert's route finds it by the
    /// alerting system's identity.
    alerts_by_fingerprint: BTreeSet<(Box<str>, u32)>,
    /// Scratch, indexed by category id: did this category run in the current cycle.
    ran_scratch: Vec<bool>,
    /// Scratch: (entry index, finding index, category id) of the current cycle's entries.
    entries_scratch: Vec<(u32, u32, u32)>,
    /// Per category id: cycles of the cluster it ran in.
    category_runs: Vec<u64>,
    /// Per category id: the cycle stamp, time and position of its latest run.
    category_last_run: Vec<(u64, Timestamp, u64)>,
    /// Per category id: recent short-lived keys (churn), oldest first.
    category_churn: Vec<Vec<ChurnRecord>>,
    /// Findings that are not active but whose next runs still matter to flap detection.
    flap_watch: Vec<u32>,
    /// Findings the count detector calls flapping, by the clock time at which their count
    /// can next drop (the oldest auto-resolution in the window leaves it).
    count_expiry: BTreeSet<(Timestamp, u32)>,
    /// Findings that keep auto-resolution times, by their oldest kept one: forgotten once it is
    /// at or before the start of the flap window.
    auto_resolution_expiry: BTreeSet<(Timestamp, u32)>,
    /// Check-key drift suspects, in log order.
    drifts: Vec<DriftRecord>,
    /// Maintenance windows in effect and what they cover (`maintenance`); `None` until the
    /// cluster sees a window or a maintenance setting. Boxed: most clusters never do.
    maintenance: Option<Box<maintenance::ClusterMaintenance>>,
    /// Findings whose check key looked unstable when first seen (check-key hygiene).
    unstable_keys: Vec<u32>,
}

/// The findings of a cluster by check key: indices into `ClusterFindings::findings`, hashed
/// by the finding's own `check_key`, so a key is stored once (a map keyed by a copy of it cost
/// a second allocation per finding: about 70 MB at a million findings).
#[derive(Clone, Debug, Default)]
struct KeyIndex {
    table: HashTable<u32>,
}

impl KeyIndex {
    fn hash(key: &str) -> u64 {
        FxBuildHasher.hash_one(key)
    }

    /// The index of the finding keyed `key`.
    fn get(&self, findings: &[Finding], key: &str) -> Option<u32> {
        self.table
            .find(Self::hash(key), |&i| {
                &*findings[i as usize].check_key == key
            })
            .copied()
    }

    /// Indexes `findings[index]` by its key, which no other finding of `findings` has.
    fn insert_new(&mut self, findings: &[Finding], index: u32) {
        let key = &findings[index as usize].check_key;
        debug_assert!(self.get(findings, key).is_none(), "check keys are unique");
        self.table.insert_unique(Self::hash(key), index, |&i| {
            Self::hash(&findings[i as usize].check_key)
        });
    }

    /// Indexes `findings[index]` by its key, in place of another finding of that key (the
    /// later of two equal keys wins, as in a map).
    fn insert_or_replace(&mut self, findings: &[Finding], index: u32) {
        let key = &findings[index as usize].check_key;
        match self
            .table
            .find_mut(Self::hash(key), |&i| findings[i as usize].check_key == *key)
        {
            Some(slot) => *slot = index,
            None => self.insert_new(findings, index),
        }
    }

    /// Room for `additional` more findings.
    fn reserve(&mut self, findings: &[Finding], additional: usize) {
        self.table
            .reserve(additional, |&i| Self::hash(&findings[i as usize].check_key));
    }
}

impl ClusterFindings {
    /// The index of the finding keyed `check_key`.
    fn index_of(&self, check_key: &str) -> Option<u32> {
        self.by_key.get(&self.findings, check_key)
    }

    /// The findings that have been seen (an index entry without an occurrence is never shown).
    fn seen_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.occurrence_count > 0)
    }

    /// The keys check-key hygiene flagged, sorted.
    fn sorted_unstable_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .unstable_keys
            .iter()
            .map(|&i| &*self.findings[i as usize].check_key)
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// The findings of every cluster, and their history: in memory, or read through a shared
/// reader ([`FindingsProjection::read_history_from`]).
#[derive(Clone, Debug, Default)]
pub struct FindingsProjection {
    /// Each cluster's findings, restored on first use from a per-cluster snapshot's part
    /// ([`Self::restore_live_lazily`]).
    clusters: LazyClusters<ClusterFindings>,
    history: ProjectionHistory,
}

impl FindingsProjection {
    /// An empty projection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads (and, for the live state, writes) the history through `reader` from now on,
    /// instead of in memory: the live state's (`as_of` `None`: the fold's records are collected
    /// for [`Self::take_history_records`]) or a past state's (reads as of position `as_of`; the
    /// fold's records are discarded, the reader has them already). Whatever history the
    /// projection held in memory is dropped: the reader must hold it.
    pub fn read_history_from(
        &mut self,
        reader: std::sync::Arc<dyn SharedHistoryReader>,
        as_of: Option<u64>,
    ) {
        self.history = ProjectionHistory::shared(reader, as_of);
    }

    /// Reads a shared history as of position `as_of` (a past state folded further); nothing
    /// for an in-memory history.
    pub fn set_history_as_of(&mut self, as_of: u64) {
        self.history.set_as_of(as_of);
    }

    /// The history held in memory, if that is where it is (a projection restored from a
    /// snapshot that holds it, or that never had a shared reader).
    pub fn memory_history(&self) -> Option<&MemoryHistory> {
        self.history.memory()
    }

    /// Whether the history is read through a shared reader.
    pub fn history_is_shared(&self) -> bool {
        self.history.memory().is_none()
    }

    /// The history records the fold wrote out since the last call, in fold order, for the
    /// writer of a shared history (none while the history is in memory, which keeps them).
    pub fn take_history_records(&mut self) -> Vec<HistoryRecord> {
        self.history.take_records()
    }

    fn cluster_mut(&mut self, cluster: &str) -> &mut ClusterFindings {
        self.clusters.get_or_insert_default(cluster)
    }

    fn clusters_matching<'a>(
        &'a self,
        cluster: Option<&'a str>,
    ) -> impl DoubleEndedIterator<Item = (&'a String, &'a ClusterFindings)> + 'a {
        self.clusters_matching_from(cluster, "")
    }

    /// [`Self::clusters_matching`], from the cluster named `from` on: one cluster is looked up
    /// and every cluster is iterated lazily, so only the clusters reached are restored (see
    /// `lazy_clusters`).
    fn clusters_matching_from<'a>(
        &'a self,
        cluster: Option<&'a str>,
        from: &'a str,
    ) -> impl DoubleEndedIterator<Item = (&'a String, &'a ClusterFindings)> + 'a {
        let (one, all) = match cluster {
            Some(name) if name >= from => (self.clusters.get_key_value(name), None),
            Some(_) => (None, None),
            None => (None, Some(self.clusters.iter_from(from))),
        };
        one.into_iter().chain(all.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FindingObservation;

    fn observation(check_key: &str) -> FindingObservation {
        FindingObservation {
            check_key: check_key.to_owned(),
            category: "pods".to_owned(),
            severity: Severity::Error,
            title: format!("{check_key} is down"),
            detail: None,
            resource: None,
            informational: false,
        }
    }

    /// The index by key finds every finding by its own key (through growth and after a
    /// restore), nothing else, and a repeated key in a restored snapshot finds the later one.
    #[test]
    fn the_index_by_key_finds_each_finding_by_its_own_key() {
        let mut cluster = ClusterFindings::default();
        let keys: Vec<String> = (0..5_000).map(|i| format!("pods:ns/app-{i}")).collect();
        for key in &keys {
            let index = cluster.finding_index(key, &observation(key), 0);
            assert_eq!(cluster.finding_index(key, &observation(key), 0), index);
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(cluster.index_of(key), Some(i as u32), "{key}");
            assert_eq!(&*cluster.findings[i].check_key, key.as_str());
        }
        assert_eq!(cluster.index_of("pods:ns/app-5000"), None);
        assert_eq!(cluster.index_of(""), None);

        let mut restored = KeyIndex::default();
        restored.reserve(&cluster.findings, 2);
        restored.insert_or_replace(&cluster.findings, 7);
        cluster.findings[9].check_key = cluster.findings[7].check_key.clone();
        restored.insert_or_replace(&cluster.findings, 9);
        assert_eq!(restored.get(&cluster.findings, &keys[7]), Some(9));
        assert_eq!(restored.table.len(), 1);
    }
}

#[cfg(test)]
mod footprint {
    /// What a live finding costs inline, for a million active findings (issue 17's memory
    /// goal): the flap detectors' episodes and auto-resolutions are behind one box that most
    /// findings never allocate. A field added to `Finding` shows here first: an alert's facts
    /// (issue 18) are behind a box too, its pointer the 8 bytes added since issue 17 (8 MB at
    /// a million findings).
    #[test]
    fn a_live_finding_stays_small() {
        let bytes = std::mem::size_of::<super::Finding>();
        eprintln!("Finding: {bytes} bytes");
        assert!(bytes <= 224, "a live finding takes {bytes} bytes inline");
    }
}
