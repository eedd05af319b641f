//! The findings projection: the finding lifecycle of `docs/lifecycle.md`, as a fold.
//!
//! Per cluster: findings by `check_key`, each with its occurrences; the settings in force; and
//! the cluster's clock (the latest event time seen, so time comes from the log). A cycle upserts
//! what it saw, then resolves the absent findings that already had `clean_cycles >= T`, and only
//! then increments the rest: resolve first, then increment.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{
    CycleCompleted, Event, FindingObservation, FindingResolved, ManualResolutionKind, Payload,
    ResourceRef, Severity,
};
use crate::flaps::{
    FlapDetector, FlapEpisode, FlapEpisodeView, absent_runs, shift_history, state_change_tenths,
    tenths_to_percent,
};
use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

/// Runs of a category over which short-lived keys are counted for churn.
pub const CHURN_WINDOW_RUNS: u64 = 20;
/// Short-lived keys of one category inside the churn window from which the category churns.
pub const CHURN_MIN_KEYS: usize = 3;
/// A new key that goes absent after this many runs or fewer of its category is short-lived.
const SHORT_LIVED_RUNS: u64 = 2;

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
    occurrences: Vec<Occurrence>,
    /// Position in `ClusterFindings::active`, or `NOT_ACTIVE`.
    active_slot: u32,
    /// The cycle stamp of the last cycle that saw it, and the index of the entry that won.
    seen_stamp: u64,
    seen_index: u32,
    /// State change history of the last runs of its category, newest in bit 0.
    flap_bits: u32,
    /// A raw state has been recorded (the finding has a state change history).
    flap_recorded: bool,
    /// The run of its category its last recorded raw state belongs to.
    flap_run: u64,
    /// That raw state: present.
    flap_present: bool,
    /// The state change detector calls it flapping.
    flapping_state_change: bool,
    /// The count detector calls it flapping.
    flapping_count: bool,
    /// On the cluster's flap watch list (not active, yet its next runs still matter).
    watched: bool,
    /// The run of its category in which the current occurrence opened.
    open_run: u64,
    /// Flapping episodes, oldest first.
    flaps: Vec<FlapEpisode>,
    /// Times of its auto-resolutions, sorted (the count detector's input; rebuilt from the
    /// occurrences on restore).
    auto_resolved_at: Vec<Timestamp>,
}

impl Finding {
    fn is_active(&self) -> bool {
        self.active_slot != NOT_ACTIVE
    }

    /// The state change history as of `run` of its category: runs not recorded since the last
    /// recorded one were absent.
    fn current_flap_bits(&self, run: u64) -> u32 {
        if !self.flap_recorded || self.flap_run >= run {
            self.flap_bits
        } else {
            shift_history(
                self.flap_bits,
                self.flap_present,
                run - self.flap_run - 1,
                false,
            )
        }
    }

    fn open_episode(&mut self, detector: FlapDetector) -> Option<&mut FlapEpisode> {
        self.flaps
            .iter_mut()
            .rev()
            .find(|e| e.detector == detector && e.is_open())
    }

    fn start_flap(
        &mut self,
        detector: FlapDetector,
        figure: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut impl ChangeSink,
    ) {
        self.flaps.push(FlapEpisode {
            detector,
            started_at: at,
            started_seq: seq,
            start_figure: figure,
            stopped_at: None,
            stopped_seq: None,
            stop_figure: None,
        });
        sink.change(&self.check_key, FindingChange::FlapStarted(detector));
    }

    fn stop_flap(
        &mut self,
        detector: FlapDetector,
        figure: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut impl ChangeSink,
    ) {
        if let Some(episode) = self.open_episode(detector) {
            episode.stopped_at = Some(at);
            episode.stopped_seq = Some(seq);
            episode.stop_figure = Some(figure);
        }
        sink.change(&self.check_key, FindingChange::FlapStopped(detector));
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
        if self.resource.as_deref() != obs.resource.as_ref() {
            self.resource = obs.resource.clone().map(Box::new);
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
    /// Check-key drift suspects, in log order.
    drifts: Vec<DriftRecord>,
    /// Findings whose check key looked unstable when first seen (check-key hygiene).
    unstable_keys: Vec<u32>,
}

/// The order a snapshot lists a cluster's parts in, shared by the owned snapshot and the
/// borrowing serializer so that the two cannot disagree.
impl ClusterFindings {
    /// Indices of the findings a snapshot keeps (seen at least once), sorted by check key.
    fn snapshot_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.findings.len() as u32)
            .filter(|&i| !self.findings[i as usize].occurrences.is_empty())
            .collect();
        order.sort_unstable_by(|&a, &b| {
            self.findings[a as usize]
                .check_key
                .cmp(&self.findings[b as usize].check_key)
        });
        order
    }

    /// Category ids sorted by name.
    fn category_order(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (0..self.category_names.len()).collect();
        ids.sort_unstable_by(|&a, &b| self.category_names[a].cmp(&self.category_names[b]));
        ids
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

/// A new key that went absent within [`SHORT_LIVED_RUNS`] runs of its category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnRecord {
    /// The category run in which it went absent.
    pub run: u64,
    /// The key.
    pub check_key: String,
    /// Log position of that cycle.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
}

/// In the cycle an active finding first went absent, a new finding opened with the same
/// category and resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DriftRecord {
    /// The finding that went absent.
    pub old_check_key: String,
    /// The finding that opened.
    pub new_check_key: String,
    /// Their category.
    pub category: String,
    /// Their resource.
    pub resource: ResourceRef,
    /// Log position of the cycle.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
}

/// Whether two findings are about the same resource: same kind and namespace, and the same
/// name once generated suffixes (pod-template hashes) are set aside.
fn same_resource(a: &ResourceRef, b: &ResourceRef) -> bool {
    if a.kind != b.kind || a.namespace != b.namespace {
        return false;
    }
    a.name == b.name || crate::hygiene::stable_name(&a.name) == crate::hygiene::stable_name(&b.name)
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
        self.category_runs.push(0);
        self.category_last_run.push((0, Timestamp::default(), 0));
        self.category_churn.push(Vec::new());
        id
    }

    fn finding_index(&mut self, obs: &FindingObservation, category: u32) -> u32 {
        if let Some(&index) = self.by_key.get(obs.check_key.as_str()) {
            return index;
        }
        let index = u32::try_from(self.findings.len()).expect("fewer than 2^32 findings");
        if self.findings.len() == self.findings.capacity() {
            // Grow by a quarter, not double: a cluster of 10,000 findings would otherwise keep
            // room for 16,384 (a `Finding` is about 240 bytes; a million of them add up).
            self.findings
                .reserve_exact((self.findings.len() / 4).max(64));
        }
        self.findings.push(Finding {
            check_key: obs.check_key.as_str().into(),
            category,
            severity: obs.severity,
            title: obs.title.clone(),
            detail: obs.detail.clone(),
            resource: obs.resource.clone().map(Box::new),
            clean_cycles: 0,
            last_seen_at: Timestamp::default(),
            occurrences: Vec::new(),
            active_slot: NOT_ACTIVE,
            seen_stamp: 0,
            seen_index: 0,
            flap_bits: 0,
            flap_recorded: false,
            flap_run: 0,
            flap_present: false,
            flapping_state_change: false,
            flapping_count: false,
            watched: false,
            open_run: 0,
            flaps: Vec::new(),
            auto_resolved_at: Vec::new(),
        });
        self.by_key.insert(obs.check_key.as_str().into(), index);
        if crate::hygiene::analyze_check_key(&obs.check_key).is_some() {
            self.unstable_keys.push(index);
        }
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
        self.watch_if_needed(index);
        if kind == ResolutionKind::Auto {
            let times = &mut self.findings[index as usize].auto_resolved_at;
            let pos = times.partition_point(|&t| t <= at);
            times.insert(pos, at);
            self.check_count_start(index, seq, at, sink);
        }
    }

    /// Puts a finding that is not active on the flap watch list if a coming run of its
    /// category can still change what the state change detector says.
    fn watch_if_needed(&mut self, index: u32) {
        let finding = &mut self.findings[index as usize];
        if !finding.watched
            && !finding.is_active()
            && (finding.flap_present || finding.flapping_state_change)
        {
            finding.watched = true;
            self.flap_watch.push(index);
        }
    }

    /// Records the finding's raw state in the current run of its category and applies the
    /// state change detector's hysteresis.
    fn record_run(
        &mut self,
        index: u32,
        present: bool,
        seq: u64,
        at: Timestamp,
        sink: &mut impl ChangeSink,
    ) {
        let start_tenths = self.settings.flap_start_percent * 10;
        let stop_tenths = self.settings.effective_flap_stop_percent() * 10;
        let finding = &mut self.findings[index as usize];
        let run = self.category_runs[finding.category as usize];
        if finding.flap_recorded {
            if finding.flap_run >= run {
                return;
            }
            finding.flap_bits = shift_history(
                finding.flap_bits,
                finding.flap_present,
                run - finding.flap_run - 1,
                present,
            );
        }
        finding.flap_recorded = true;
        finding.flap_run = run;
        finding.flap_present = present;
        let tenths = state_change_tenths(finding.flap_bits);
        if !finding.flapping_state_change && tenths >= start_tenths {
            finding.flapping_state_change = true;
            finding.start_flap(FlapDetector::StateChange, tenths, seq, at, sink);
        } else if finding.flapping_state_change && tenths < stop_tenths {
            finding.flapping_state_change = false;
            finding.stop_flap(FlapDetector::StateChange, tenths, seq, at, sink);
        }
    }

    /// The flap window ending at the cluster's clock: `(now - flap_window_secs, now]`.
    fn flap_window(&self) -> Option<(Timestamp, Timestamp)> {
        let now = self.clock?;
        let window_secs = i64::try_from(self.settings.flap_window_secs).unwrap_or(i64::MAX);
        Some((now.plus_secs(-window_secs), now))
    }

    /// Auto-resolutions of a finding inside the flap window, and the first of them.
    fn auto_resolutions_in_window_from(&self, finding: &Finding) -> (u32, Option<Timestamp>) {
        let Some((start, now)) = self.flap_window() else {
            return (0, None);
        };
        let times = &finding.auto_resolved_at;
        let from = times.partition_point(|&t| t <= start);
        let to = times.partition_point(|&t| t <= now);
        (
            (to - from) as u32,
            times.get(from).copied().filter(|_| to > from),
        )
    }

    /// Auto-resolutions of a finding inside the flap window ending at the cluster's clock.
    fn auto_resolutions_in_window(&self, finding: &Finding) -> u32 {
        self.auto_resolutions_in_window_from(finding).0
    }

    /// When the count of a count-flapping finding can next drop: its oldest auto-resolution in
    /// the window leaves the window.
    fn count_expiry_of(&self, finding: &Finding) -> Timestamp {
        let window_secs = i64::try_from(self.settings.flap_window_secs).unwrap_or(i64::MAX);
        self.auto_resolutions_in_window_from(finding)
            .1
            .map_or(Timestamp::from_unix_nanos(i64::MIN), |oldest| {
                oldest.plus_secs(window_secs)
            })
    }

    /// After an auto-resolution: does the count detector start calling it flapping?
    fn check_count_start(
        &mut self,
        index: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut impl ChangeSink,
    ) {
        let finding = &self.findings[index as usize];
        if finding.flapping_count {
            return;
        }
        let count = self.auto_resolutions_in_window(finding);
        if count > self.settings.flap_threshold {
            let expiry = self.count_expiry_of(finding);
            let finding = &mut self.findings[index as usize];
            finding.flapping_count = true;
            finding.start_flap(FlapDetector::Count, count, seq, at, sink);
            self.count_expiry.insert((expiry, index));
        }
    }

    /// As the clock moves, the count detector's verdicts on the findings whose oldest
    /// auto-resolution in the window may have left it.
    fn check_count_flaps(&mut self, seq: u64, at: Timestamp, sink: &mut impl ChangeSink) {
        let Some(now) = self.clock else { return };
        while let Some(&(expiry, index)) = self.count_expiry.first() {
            if expiry > now {
                break;
            }
            self.count_expiry.pop_first();
            let finding = &self.findings[index as usize];
            let count = self.auto_resolutions_in_window(finding);
            if count > self.settings.flap_threshold {
                let expiry = self.count_expiry_of(finding);
                self.count_expiry.insert((expiry, index));
                continue;
            }
            let finding = &mut self.findings[index as usize];
            finding.flapping_count = false;
            finding.stop_flap(FlapDetector::Count, count, seq, at, sink);
        }
    }

    /// The window or threshold changed: every count-flapping finding is judged again.
    fn recheck_count_flaps(&mut self, seq: u64, at: Timestamp, sink: &mut impl ChangeSink) {
        let flapping: Vec<u32> = self.count_expiry.iter().map(|&(_, i)| i).collect();
        self.count_expiry.clear();
        for index in flapping {
            let finding = &self.findings[index as usize];
            let count = self.auto_resolutions_in_window(finding);
            if count > self.settings.flap_threshold {
                let expiry = self.count_expiry_of(finding);
                self.count_expiry.insert((expiry, index));
            } else {
                let finding = &mut self.findings[index as usize];
                finding.flapping_count = false;
                finding.stop_flap(FlapDetector::Count, count, seq, at, sink);
            }
        }
    }

    /// Settings changed: both detectors judge every finding again against the new
    /// thresholds (no run is recorded).
    fn recheck_flaps(&mut self, seq: u64, at: Timestamp, sink: &mut impl ChangeSink) {
        self.recheck_count_flaps(seq, at, sink);
        let start_tenths = self.settings.flap_start_percent * 10;
        let stop_tenths = self.settings.effective_flap_stop_percent() * 10;
        for index in 0..self.findings.len() as u32 {
            let finding = &self.findings[index as usize];
            if finding.occurrences.is_empty() {
                continue;
            }
            if !finding.flapping_count {
                self.check_count_start(index, seq, at, sink);
            }
            let run = self.category_runs[self.findings[index as usize].category as usize];
            let finding = &mut self.findings[index as usize];
            let tenths = state_change_tenths(finding.current_flap_bits(run));
            if !finding.flapping_state_change && finding.flap_recorded && tenths >= start_tenths {
                finding.flapping_state_change = true;
                finding.start_flap(FlapDetector::StateChange, tenths, seq, at, sink);
            } else if finding.flapping_state_change && tenths < stop_tenths {
                finding.flapping_state_change = false;
                finding.stop_flap(FlapDetector::StateChange, tenths, seq, at, sink);
            }
            self.watch_if_needed(index);
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
                self.category_runs[id as usize] += 1;
                self.category_last_run[id as usize] = (stamp, at, seq);
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
        let mut opened_now: Vec<u32> = Vec::new();
        for &(entry, index, category) in &entries {
            let finding = &mut self.findings[index as usize];
            if finding.seen_index != entry {
                continue;
            }
            let obs = &cycle.findings[entry as usize];
            if finding.is_active() && finding.severity != obs.severity {
                sink.change(&finding.check_key, FindingChange::SeverityChanged);
            }
            if finding.category != category && finding.flap_recorded {
                // Its runs were counted in the old category's runs until now: bring the
                // history up to this cycle there, then count on in the new category's.
                let old = finding.category as usize;
                let old_runs_before_now =
                    self.category_runs[old] - u64::from(self.ran_scratch[old]);
                let (bits, last) = absent_runs(
                    finding.flap_bits,
                    finding.flap_present,
                    old_runs_before_now.saturating_sub(finding.flap_run),
                );
                finding.flap_bits = bits;
                finding.flap_present = last;
                finding.flap_run = self.category_runs[category as usize] - 1;
            }
            finding.refresh_from(obs, category);
            finding.last_seen_at = at;
            finding.clean_cycles = 0;
            if !finding.is_active() {
                sink.change(&finding.check_key, FindingChange::Opened);
                if finding.occurrences.is_empty() {
                    // Most findings open once: room for one, not the four a first push reserves.
                    finding.occurrences.reserve_exact(1);
                }
                finding.occurrences.push(Occurrence {
                    opened_at: at,
                    opened_seq: seq,
                    resolved_at: None,
                    resolved_seq: None,
                    resolution_kind: None,
                });
                finding.open_run = self.category_runs[category as usize];
                self.activate(index);
                if obs.informational {
                    // Never counts towards flapping: its raw state stays absent.
                    self.resolve(index, at, seq, ResolutionKind::Informational, sink);
                    continue;
                }
                opened_now.push(index);
            }
            self.record_run(index, true, seq, at, sink);
        }
        self.entries_scratch = entries;

        // 4 + 5. Resolve first (against the prior count), then increment the rest.
        let threshold = self.settings.clean_cycles_to_resolve;
        let mut first_absent: Vec<u32> = Vec::new();
        let mut slot = 0;
        while slot < self.active.len() {
            let index = self.active[slot];
            let finding = &self.findings[index as usize];
            let absent_and_ran =
                finding.seen_stamp != stamp && self.ran_scratch[finding.category as usize];
            if absent_and_ran {
                if finding.clean_cycles == 0 {
                    // Present in the previous run of its category, absent now.
                    first_absent.push(index);
                }
                if finding.flap_present || finding.flapping_state_change {
                    self.record_run(index, false, seq, at, sink);
                }
                let finding = &mut self.findings[index as usize];
                if finding.clean_cycles >= threshold {
                    // swap_remove brings another finding into this slot: look at it next.
                    self.resolve(index, at, seq, ResolutionKind::Auto, sink);
                    continue;
                }
                finding.clean_cycles += 1;
            }
            slot += 1;
        }

        // Findings that are not active but whose runs still matter to flap detection.
        let mut i = 0;
        while i < self.flap_watch.len() {
            let index = self.flap_watch[i];
            let finding = &self.findings[index as usize];
            if !finding.is_active() && self.ran_scratch[finding.category as usize] {
                self.record_run(index, false, seq, at, sink);
            }
            let finding = &mut self.findings[index as usize];
            if finding.is_active() || !(finding.flap_present || finding.flapping_state_change) {
                finding.watched = false;
                self.flap_watch.swap_remove(i);
            } else {
                i += 1;
            }
        }

        if !first_absent.is_empty() {
            self.note_first_absences(&first_absent, &opened_now, seq, at);
        }

        for (_, id) in cycle_categories {
            if let Some(id) = id {
                self.ran_scratch[id as usize] = false;
            }
        }
    }

    /// Churn (new keys that die young) and drift suspects (a finding goes absent as another
    /// opens for the same category and resource), from the cycle's first absences.
    fn note_first_absences(
        &mut self,
        first_absent: &[u32],
        opened_now: &[u32],
        seq: u64,
        at: Timestamp,
    ) {
        // Active-list order is not part of the state: sort, so records come out the same
        // however the fold got here (snapshot or not).
        let mut absent: Vec<u32> = first_absent.to_vec();
        absent.sort_unstable_by(|&a, &b| {
            self.findings[a as usize]
                .check_key
                .cmp(&self.findings[b as usize].check_key)
        });
        for &index in &absent {
            let finding = &self.findings[index as usize];
            let category = finding.category as usize;
            let run = self.category_runs[category];
            if finding.occurrences.len() == 1
                && run.saturating_sub(finding.open_run) <= SHORT_LIVED_RUNS
            {
                let record = ChurnRecord {
                    run,
                    check_key: finding.check_key.to_string(),
                    seq,
                    at,
                };
                let churn = &mut self.category_churn[category];
                churn.retain(|r| r.run + CHURN_WINDOW_RUNS > run);
                churn.push(record);
                if churn.len() > 64 {
                    churn.remove(0);
                }
            }
        }
        for &old in &absent {
            let old_finding = &self.findings[old as usize];
            let Some(old_resource) = old_finding.resource.as_deref() else {
                continue;
            };
            for &new in opened_now {
                let new_finding = &self.findings[new as usize];
                if new_finding.category == old_finding.category
                    && new_finding
                        .resource
                        .as_deref()
                        .is_some_and(|r| same_resource(r, old_resource))
                {
                    self.drifts.push(DriftRecord {
                        old_check_key: old_finding.check_key.to_string(),
                        new_check_key: new_finding.check_key.to_string(),
                        category: self.category_names[old_finding.category as usize].clone(),
                        resource: old_resource.clone(),
                        seq,
                        at,
                    });
                }
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

    /// The count rule of lifecycle.md, at the cluster's clock.
    fn is_flapping(&self, finding: &Finding) -> bool {
        self.auto_resolutions_in_window(finding) > self.settings.flap_threshold
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
            state: FindingState::of(active),
            clean_cycles: active.then_some(finding.clean_cycles),
            opened_at: current.opened_at,
            last_seen_at: finding.last_seen_at,
            resolved_at: current.resolved_at,
            resolution_kind: current.resolution_kind,
            occurrences: finding.occurrences.len() as u64,
            flapping: self.is_flapping(finding),
            flapping_state_change: finding.flapping_state_change,
            state_change_percent: tenths_to_percent(self.state_change_tenths(finding)),
            history: finding.occurrences.clone(),
        }
    }

    /// The finding's weighted percent state change as of the latest run of its category.
    fn state_change_tenths(&self, finding: &Finding) -> u32 {
        let run = self.category_runs[finding.category as usize];
        state_change_tenths(finding.current_flap_bits(run))
    }

    fn flap_view(&self, cluster: &str, finding: &Finding) -> FlapView {
        FlapView {
            cluster: cluster.to_owned(),
            check_key: finding.check_key.to_string(),
            category: self.category_names[finding.category as usize].clone(),
            severity: finding.severity,
            title: finding.title.clone(),
            state: FindingState::of(finding.is_active()),
            flapping: self.is_flapping(finding),
            flapping_state_change: finding.flapping_state_change,
            auto_resolutions_in_window: self.auto_resolutions_in_window(finding),
            state_change_percent: tenths_to_percent(self.state_change_tenths(finding)),
            episodes: finding
                .flaps
                .iter()
                .map(|e| e.view(self.settings.flap_window_secs))
                .collect(),
        }
    }
}

/// What a finding filter looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FindingSummary<'a> {
    /// Active or resolved.
    pub state: FindingState,
    /// Latest severity.
    pub severity: Severity,
    /// Latest category.
    pub category: &'a str,
}

/// The latest facts about a finding, borrowed from the projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FindingFacts<'a> {
    /// Latest category.
    pub category: &'a str,
    /// Latest severity.
    pub severity: Severity,
    /// Latest title.
    pub title: &'a str,
    /// Latest detail.
    pub detail: Option<&'a str>,
    /// Latest resource.
    pub resource: Option<&'a ResourceRef>,
    /// Has an active occurrence.
    pub active: bool,
    /// When it was last seen present.
    pub last_seen_at: Timestamp,
}

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

/// A finding as users see it: the shape of `tidemark replay --json` and of the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// The state change detector calls it flapping (hysteresis between the start and stop
    /// thresholds).
    pub flapping_state_change: bool,
    /// Weighted percent state change over the last 20 runs of its category.
    pub state_change_percent: f64,
    /// Every occurrence, oldest first.
    pub history: Vec<Occurrence>,
}

/// A finding that flaps or has flapped, with its episodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlapView {
    /// The cluster.
    pub cluster: String,
    /// The finding's key.
    pub check_key: String,
    /// Latest category.
    pub category: String,
    /// Latest severity.
    pub severity: Severity,
    /// Latest title.
    pub title: String,
    /// Active or resolved.
    pub state: FindingState,
    /// The count detector calls it flapping now.
    pub flapping: bool,
    /// The state change detector calls it flapping now.
    pub flapping_state_change: bool,
    /// Auto-resolutions inside the flap window now.
    pub auto_resolutions_in_window: u32,
    /// Weighted percent state change now.
    pub state_change_percent: f64,
    /// Every episode, oldest first.
    pub episodes: Vec<FlapEpisodeView>,
}

/// A category whose new keys keep dying young: the signature of an unstable check key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChurnView {
    /// The cluster.
    pub cluster: String,
    /// The category.
    pub category: String,
    /// New keys that went absent within two runs, in the last 20 runs of the category.
    pub short_lived_keys: u64,
    /// The latest few of them.
    pub examples: Vec<String>,
    /// When the first of them counted here went absent.
    pub since: Timestamp,
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

/// An active finding whose category has not run in the last N cycles of its cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnreachableView {
    /// The cluster.
    pub cluster: String,
    /// The finding's key.
    pub check_key: String,
    /// Its category.
    pub category: String,
    /// Latest severity.
    pub severity: Severity,
    /// Latest title.
    pub title: String,
    /// When the active occurrence opened.
    pub opened_at: Timestamp,
    /// Why.
    pub reason: UnreachableReason,
    /// When its category last ran.
    pub category_last_ran_at: Timestamp,
    /// Cycles of the cluster since then.
    pub cycles_without_category: u64,
}

/// A drift suspect as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DriftView {
    /// The cluster.
    pub cluster: String,
    /// What happened.
    #[serde(flatten)]
    pub record: DriftRecord,
    /// The old finding is still active.
    pub old_active: bool,
    /// The new finding is still active.
    pub new_active: bool,
}

/// A real, persistent problem: active, present in the latest run of its category, old.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LongLivedView {
    /// The cluster.
    pub cluster: String,
    /// The finding's key.
    pub check_key: String,
    /// Its category.
    pub category: String,
    /// Latest severity.
    pub severity: Severity,
    /// Latest title.
    pub title: String,
    /// When the active occurrence opened.
    pub opened_at: Timestamp,
    /// Last seen by a cycle.
    pub last_seen_at: Timestamp,
    /// Age of the active occurrence at the cluster's clock.
    pub age_secs: u64,
}

/// Stuck findings, drift suspects and long-lived findings, kept apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StuckReport {
    /// Structurally unreachable: the sweep cannot resolve them.
    pub unreachable: Vec<UnreachableView>,
    /// Check-key drift suspects, in log order per cluster.
    pub drift_suspects: Vec<DriftView>,
    /// Persistent and old: real problems, not stuck ones.
    pub long_lived: Vec<LongLivedView>,
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
        let cluster = self.cluster_mut(&event.cluster);
        // A late event (earlier than the cluster's clock) is applied at the clock, so no time in
        // the state goes back: a finding is never last seen before it opened
        // (docs/lifecycle.md, "Late events"; ADR 0004).
        let at = cluster
            .clock
            .map_or(event.time, |clock| clock.max(event.time));
        cluster.clock = Some(at);
        match &event.payload {
            Payload::CycleCompleted(cycle) => cluster.apply_cycle(seq, at, cycle, sink),
            Payload::FindingResolved(resolved) => cluster.apply_resolved(seq, at, resolved, sink),
            Payload::SettingsChanged(change) => {
                let before = cluster.settings.clone();
                cluster.settings.apply(change);
                let flap_rules_changed = before.flap_window_secs
                    != cluster.settings.flap_window_secs
                    || before.flap_threshold != cluster.settings.flap_threshold
                    || before.flap_start_percent != cluster.settings.flap_start_percent
                    || before.flap_stop_percent != cluster.settings.flap_stop_percent;
                if flap_rules_changed {
                    cluster.recheck_flaps(seq, at, sink);
                }
            }
            _ => {}
        }
        if !cluster.count_expiry.is_empty() {
            cluster.check_count_flaps(seq, at, sink);
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

    /// One page of findings sorted by (cluster, check_key): those of `cluster` (or every
    /// cluster) that `keep` accepts, after the finding `after` names (`(cluster, check_key)`,
    /// which need not exist), at most `limit`; and whether more follow. Views are built only for
    /// the page.
    pub fn views_page(
        &self,
        cluster: Option<&str>,
        keep: impl Fn(&FindingSummary<'_>) -> bool,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> (Vec<FindingView>, bool) {
        let (after_cluster, after_key) = after.unzip();
        let mut page = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            if after_cluster.is_some_and(|c| name.as_str() < c) {
                continue;
            }
            let mut findings: Vec<&Finding> = state
                .findings
                .iter()
                .filter(|f| !f.occurrences.is_empty())
                .filter(|f| {
                    after_cluster != Some(name.as_str())
                        || after_key.is_none_or(|k| &*f.check_key > k)
                })
                .filter(|f| {
                    keep(&FindingSummary {
                        state: FindingState::of(f.is_active()),
                        severity: f.severity,
                        category: &state.category_names[f.category as usize],
                    })
                })
                .collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            for finding in findings {
                if page.len() == limit {
                    return (page, true);
                }
                page.push(state.view(name, finding));
            }
        }
        (page, false)
    }

    /// The clusters the projection has seen, sorted.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    /// The settings in force for `cluster`, if the projection has seen it.
    pub fn settings_of(&self, cluster: &str) -> Option<&ClusterSettings> {
        self.clusters.get(cluster).map(|c| &c.settings)
    }

    /// Latest category, severity, title and resource of a finding, if the projection has it.
    pub fn finding_facts(&self, cluster: &str, check_key: &str) -> Option<FindingFacts<'_>> {
        let state = self.clusters.get(cluster)?;
        let finding = &state.findings[*state.by_key.get(check_key)? as usize];
        Some(FindingFacts {
            category: &state.category_names[finding.category as usize],
            severity: finding.severity,
            title: &finding.title,
            detail: finding.detail.as_deref(),
            resource: finding.resource.as_deref(),
            active: finding.is_active(),
            last_seen_at: finding.last_seen_at,
        })
    }

    /// The flapping episodes of a finding, oldest first.
    pub fn flap_episodes(&self, cluster: &str, check_key: &str) -> &[FlapEpisode] {
        self.clusters
            .get(cluster)
            .and_then(|state| {
                let index = *state.by_key.get(check_key)?;
                Some(state.findings[index as usize].flaps.as_slice())
            })
            .unwrap_or(&[])
    }

    /// Whether a finding has an active occurrence.
    pub fn is_active(&self, cluster: &str, check_key: &str) -> bool {
        self.clusters.get(cluster).is_some_and(|state| {
            state
                .by_key
                .get(check_key)
                .is_some_and(|&i| state.findings[i as usize].is_active())
        })
    }

    /// Findings that flap now or have flapped, by either detector, sorted by (cluster,
    /// check_key); only `cluster`'s when given.
    pub fn flaps(&self, cluster: Option<&str>) -> Vec<FlapView> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            let mut findings: Vec<&Finding> = state
                .findings
                .iter()
                .filter(|f| !f.flaps.is_empty())
                .collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            out.extend(findings.into_iter().map(|f| state.flap_view(name, f)));
        }
        out
    }

    /// Categories whose new keys keep dying young (at least [`CHURN_MIN_KEYS`] in the last
    /// [`CHURN_WINDOW_RUNS`] runs of the category).
    pub fn churn(&self, cluster: Option<&str>) -> Vec<ChurnView> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            let mut categories: Vec<(&str, &Vec<ChurnRecord>, u64)> = state
                .category_names
                .iter()
                .enumerate()
                .map(|(id, category)| {
                    (
                        category.as_str(),
                        &state.category_churn[id],
                        state.category_runs[id],
                    )
                })
                .collect();
            categories.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (category, records, run) in categories {
                let recent: Vec<&ChurnRecord> = records
                    .iter()
                    .filter(|r| r.run + CHURN_WINDOW_RUNS > run)
                    .collect();
                if recent.len() < CHURN_MIN_KEYS {
                    continue;
                }
                out.push(ChurnView {
                    cluster: name.clone(),
                    category: category.to_owned(),
                    short_lived_keys: recent.len() as u64,
                    examples: recent
                        .iter()
                        .rev()
                        .take(3)
                        .map(|r| r.check_key.clone())
                        .collect(),
                    since: recent[0].at,
                });
            }
        }
        out
    }

    /// Unreachable findings, drift suspects and long-lived findings.
    pub fn stuck(&self, cluster: Option<&str>) -> StuckReport {
        let mut report = StuckReport::default();
        for (name, state) in self.clusters_matching(cluster) {
            let settings = &state.settings;
            let now = state.clock.unwrap_or_default();
            let mut active: Vec<&Finding> = state
                .active
                .iter()
                .map(|&i| &state.findings[i as usize])
                .collect();
            active.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            for finding in active {
                let category = finding.category as usize;
                let category_name = &state.category_names[category];
                let (last_cycle, last_at, _) = state.category_last_run[category];
                let missing = state.cycle_stamp - last_cycle;
                let opened_at = finding
                    .occurrences
                    .last()
                    .expect("an active finding has an open occurrence")
                    .opened_at;
                if missing >= u64::from(settings.unreachable_after_cycles) {
                    report.unreachable.push(UnreachableView {
                        cluster: name.clone(),
                        check_key: finding.check_key.to_string(),
                        category: category_name.clone(),
                        severity: finding.severity,
                        title: finding.title.clone(),
                        opened_at,
                        reason: if settings.is_enabled(category_name) {
                            UnreachableReason::CategoryNotRun
                        } else {
                            UnreachableReason::CategoryDisabled
                        },
                        category_last_ran_at: last_at,
                        cycles_without_category: missing,
                    });
                    continue;
                }
                let age_secs = now.saturating_duration_since(opened_at).as_secs();
                if finding.clean_cycles == 0 && age_secs >= settings.long_lived_secs {
                    report.long_lived.push(LongLivedView {
                        cluster: name.clone(),
                        check_key: finding.check_key.to_string(),
                        category: category_name.clone(),
                        severity: finding.severity,
                        title: finding.title.clone(),
                        opened_at,
                        last_seen_at: finding.last_seen_at,
                        age_secs,
                    });
                }
            }
            for record in &state.drifts {
                let active = |key: &str| {
                    state
                        .by_key
                        .get(key)
                        .is_some_and(|&i| state.findings[i as usize].is_active())
                };
                report.drift_suspects.push(DriftView {
                    cluster: name.clone(),
                    old_active: active(&record.old_check_key),
                    new_active: active(&record.new_check_key),
                    record: record.clone(),
                });
            }
        }
        report
    }

    /// Keys flagged by check-key hygiene when first seen, as (cluster, check_key), sorted.
    pub fn unstable_keys<'a>(&'a self, cluster: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            let mut keys: Vec<&str> = state
                .unstable_keys
                .iter()
                .map(|&i| &*state.findings[i as usize].check_key)
                .collect();
            keys.sort_unstable();
            out.extend(keys.into_iter().map(|k| (name.as_str(), k)));
        }
        out
    }

    fn clusters_matching<'a>(
        &'a self,
        cluster: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a String, &'a ClusterFindings)> + 'a {
        self.clusters
            .iter()
            .filter(move |(name, _)| cluster.is_none_or(|c| c == name.as_str()))
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
                let findings: Vec<FindingSnapshot> = cluster
                    .snapshot_order()
                    .into_iter()
                    .map(|i| &cluster.findings[i as usize])
                    .map(|f| FindingSnapshot {
                        check_key: f.check_key.to_string(),
                        category: cluster.category_names[f.category as usize].clone(),
                        severity: f.severity,
                        title: f.title.clone(),
                        detail: f.detail.clone(),
                        resource: f.resource.as_deref().cloned(),
                        active: f.is_active(),
                        clean_cycles: f.clean_cycles,
                        last_seen_at: f.last_seen_at,
                        occurrences: f.occurrences.clone(),
                        flap_bits: f.flap_bits,
                        flap_recorded: f.flap_recorded,
                        flap_run: f.flap_run,
                        flap_present: f.flap_present,
                        flapping_state_change: f.flapping_state_change,
                        flapping_count: f.flapping_count,
                        watched: f.watched,
                        open_run: f.open_run,
                        flaps: f.flaps.clone(),
                    })
                    .collect();
                let categories: Vec<CategorySnapshot> = cluster
                    .category_order()
                    .into_iter()
                    .map(|id| {
                        let (last_cycle, last_at, last_seq) = cluster.category_last_run[id];
                        CategorySnapshot {
                            name: cluster.category_names[id].clone(),
                            runs: cluster.category_runs[id],
                            last_cycle,
                            last_at,
                            last_seq,
                            churn: cluster.category_churn[id].clone(),
                        }
                    })
                    .collect();
                ClusterSnapshot {
                    cluster: name.clone(),
                    settings: cluster.settings.clone(),
                    clock: cluster.clock,
                    cycles: cluster.cycle_stamp,
                    unstable_keys: cluster
                        .sorted_unstable_keys()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    categories,
                    drifts: cluster.drifts.clone(),
                    findings,
                }
            })
            .collect();
        FindingsSnapshot { clusters }
    }

    /// The snapshot as a serializer that borrows the state instead of copying it: serializes
    /// to exactly the bytes (and JSON) of [`Self::snapshot`], one finding at a time, so writing
    /// a snapshot of a million findings does not hold a second copy of them.
    pub fn snapshot_serializer(&self) -> impl Serialize + '_ {
        SnapshotOf(self)
    }

    /// Rebuilds the projection from a snapshot; folding on from here gives the same state as
    /// never having stopped.
    pub fn restore(snapshot: &FindingsSnapshot) -> Self {
        Self::restore_owned(snapshot.clone())
    }

    /// [`Self::restore`], consuming the snapshot: each cluster's strings and histories move into
    /// the projection, so a restore never holds the state twice.
    pub fn restore_owned(snapshot: FindingsSnapshot) -> Self {
        let mut projection = Self::new();
        for saved in snapshot.clusters {
            let cluster = projection.cluster_mut(&saved.cluster);
            cluster.settings = saved.settings;
            cluster.clock = saved.clock;
            cluster.cycle_stamp = saved.cycles;
            cluster.drifts = saved.drifts;
            for c in saved.categories {
                let id = cluster.intern_category(&c.name) as usize;
                cluster.category_runs[id] = c.runs;
                cluster.category_last_run[id] = (c.last_cycle, c.last_at, c.last_seq);
                cluster.category_churn[id] = c.churn;
            }
            cluster.findings.reserve_exact(saved.findings.len());
            for f in saved.findings {
                let category = cluster.intern_category(&f.category);
                let index = cluster.findings.len() as u32;
                let check_key: Box<str> = f.check_key.into_boxed_str();
                cluster.by_key.insert(check_key.clone(), index);
                let mut auto_resolved_at: Vec<Timestamp> = f
                    .occurrences
                    .iter()
                    .filter(|o| o.resolution_kind == Some(ResolutionKind::Auto))
                    .filter_map(|o| o.resolved_at)
                    .collect();
                auto_resolved_at.sort_unstable();
                cluster.findings.push(Finding {
                    check_key,
                    category,
                    severity: f.severity,
                    title: f.title,
                    detail: f.detail,
                    resource: f.resource.map(Box::new),
                    clean_cycles: f.clean_cycles,
                    last_seen_at: f.last_seen_at,
                    occurrences: f.occurrences,
                    active_slot: NOT_ACTIVE,
                    seen_stamp: 0,
                    seen_index: 0,
                    flap_bits: f.flap_bits,
                    flap_recorded: f.flap_recorded,
                    flap_run: f.flap_run,
                    flap_present: f.flap_present,
                    flapping_state_change: f.flapping_state_change,
                    flapping_count: f.flapping_count,
                    watched: f.watched,
                    open_run: f.open_run,
                    flaps: f.flaps,
                    auto_resolved_at,
                });
                if f.active {
                    cluster.activate(index);
                }
                if f.watched {
                    cluster.flap_watch.push(index);
                }
                if f.flapping_count {
                    let expiry = cluster.count_expiry_of(&cluster.findings[index as usize]);
                    cluster.count_expiry.insert((expiry, index));
                }
            }
            for key in &saved.unstable_keys {
                if let Some(&index) = cluster.by_key.get(key.as_str()) {
                    cluster.unstable_keys.push(index);
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
    /// Cycles applied.
    pub cycles: u64,
    /// Keys flagged by check-key hygiene, sorted.
    pub unstable_keys: Vec<String>,
    /// Categories, sorted by name.
    pub categories: Vec<CategorySnapshot>,
    /// Drift suspects, in log order.
    pub drifts: Vec<DriftRecord>,
    /// Findings, sorted by check_key.
    pub findings: Vec<FindingSnapshot>,
}

/// Serializable state of one category of one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorySnapshot {
    /// Category name.
    pub name: String,
    /// Cycles it ran in.
    pub runs: u64,
    /// Cycle number, time and position of its latest run.
    pub last_cycle: u64,
    /// Time of its latest run.
    pub last_at: Timestamp,
    /// Position of its latest run.
    pub last_seq: u64,
    /// Recent short-lived keys.
    pub churn: Vec<ChurnRecord>,
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
    /// State change history (flap detection).
    pub flap_bits: u32,
    /// A raw state has been recorded.
    pub flap_recorded: bool,
    /// Run of its category of the last recorded raw state.
    pub flap_run: u64,
    /// That raw state.
    pub flap_present: bool,
    /// The state change detector calls it flapping.
    pub flapping_state_change: bool,
    /// The count detector calls it flapping.
    pub flapping_count: bool,
    /// On the flap watch list.
    pub watched: bool,
    /// Run of its category in which the current occurrence opened.
    pub open_run: u64,
    /// Flapping episodes.
    pub flaps: Vec<FlapEpisode>,
}

// ---------------------------------------------------------------------------------------------
// Borrowing snapshot serializers: the same serde shape as `FindingsSnapshot` and its parts,
// field for field (postcard is positional; a test compares the bytes).

struct SnapshotOf<'a>(&'a FindingsProjection);

impl Serialize for SnapshotOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename = "FindingsSnapshot")]
        struct Shape<'a> {
            clusters: ClustersOf<'a>,
        }
        Shape {
            clusters: ClustersOf(&self.0.clusters),
        }
        .serialize(serializer)
    }
}

struct ClustersOf<'a>(&'a BTreeMap<String, ClusterFindings>);

impl Serialize for ClustersOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter()
                .map(|(name, cluster)| ClusterOf { name, cluster }),
        )
    }
}

struct ClusterOf<'a> {
    name: &'a str,
    cluster: &'a ClusterFindings,
}

impl Serialize for ClusterOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename = "CategorySnapshot")]
        struct CategoryShape<'a> {
            name: &'a str,
            runs: u64,
            last_cycle: u64,
            last_at: Timestamp,
            last_seq: u64,
            churn: &'a [ChurnRecord],
        }
        #[derive(Serialize)]
        #[serde(rename = "ClusterSnapshot")]
        struct Shape<'a> {
            cluster: &'a str,
            settings: &'a ClusterSettings,
            clock: Option<Timestamp>,
            cycles: u64,
            unstable_keys: Vec<&'a str>,
            categories: Vec<CategoryShape<'a>>,
            drifts: &'a [DriftRecord],
            findings: FindingsOf<'a>,
        }
        let cluster = self.cluster;
        let categories: Vec<CategoryShape<'_>> = cluster
            .category_order()
            .into_iter()
            .map(|id| {
                let (last_cycle, last_at, last_seq) = cluster.category_last_run[id];
                CategoryShape {
                    name: &cluster.category_names[id],
                    runs: cluster.category_runs[id],
                    last_cycle,
                    last_at,
                    last_seq,
                    churn: &cluster.category_churn[id],
                }
            })
            .collect();
        Shape {
            cluster: self.name,
            settings: &cluster.settings,
            clock: cluster.clock,
            cycles: cluster.cycle_stamp,
            unstable_keys: cluster.sorted_unstable_keys(),
            categories,
            drifts: &cluster.drifts,
            findings: FindingsOf {
                cluster,
                order: cluster.snapshot_order(),
            },
        }
        .serialize(serializer)
    }
}

struct FindingsOf<'a> {
    cluster: &'a ClusterFindings,
    order: Vec<u32>,
}

impl Serialize for FindingsOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename = "FindingSnapshot")]
        struct Shape<'a> {
            check_key: &'a str,
            category: &'a str,
            severity: Severity,
            title: &'a str,
            detail: &'a Option<String>,
            resource: Option<&'a ResourceRef>,
            active: bool,
            clean_cycles: u32,
            last_seen_at: Timestamp,
            occurrences: &'a [Occurrence],
            flap_bits: u32,
            flap_recorded: bool,
            flap_run: u64,
            flap_present: bool,
            flapping_state_change: bool,
            flapping_count: bool,
            watched: bool,
            open_run: u64,
            flaps: &'a [FlapEpisode],
        }
        let cluster = self.cluster;
        serializer.collect_seq(self.order.iter().map(|&i| {
            let f = &cluster.findings[i as usize];
            Shape {
                check_key: &f.check_key,
                category: &cluster.category_names[f.category as usize],
                severity: f.severity,
                title: &f.title,
                detail: &f.detail,
                resource: f.resource.as_deref(),
                active: f.is_active(),
                clean_cycles: f.clean_cycles,
                last_seen_at: f.last_seen_at,
                occurrences: &f.occurrences,
                flap_bits: f.flap_bits,
                flap_recorded: f.flap_recorded,
                flap_run: f.flap_run,
                flap_present: f.flap_present,
                flapping_state_change: f.flapping_state_change,
                flapping_count: f.flapping_count,
                watched: f.watched,
                open_run: f.open_run,
                flaps: &f.flaps,
            }
        }))
    }
}
