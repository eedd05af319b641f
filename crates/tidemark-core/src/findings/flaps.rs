//! Flap detection: both detectors, the flap state of a finding they keep, and the episodes they
//! record.
//!
//! - The **count rule** of `docs/lifecycle.md`: more auto-resolutions inside the flap window
//!   (ending at the cluster's clock) than the flap threshold. Each finding keeps its
//!   auto-resolution times sorted; a per-cluster queue holds when each flapping finding's count
//!   can next drop, so a moving clock looks only at those. A finding keeps only the times
//!   inside the cluster's window: a second queue, by each finding's oldest kept time, forgets
//!   the others as the clock moves, so what it keeps is bounded by the window, not by the log.
//!   When a settings change widens the window, the times the wider window reaches back to are
//!   read back from the history the fold wrote ([`super::FoldHistory`]): every auto-resolution
//!   closed an occurrence, and the history holds them all.
//! - The **state change** detector: the weighted percent state change of the last 20 runs of the
//!   finding's category (Icinga 2.8+ style), with hysteresis between a start and a stop percent.
//!
//! `FlapState` is a finding's share: only this module changes it. Its history is shifted
//! lazily: runs a finding was absent in are applied when it is next touched, and only findings
//! whose state just changed or that flap now are touched while absent (the cluster's flap watch
//! list).
//!
//! A finding's *raw state* in a run of its category is present (seen by the cycle, and active
//! after it) or absent. Each run shifts one bit into a 20-bit history, set when the raw state
//! differs from the previous run's. The value weights the oldest bit 0.8 and each newer one 0.02
//! more (the newest 1.18), and is `100 · Σ weights / 20` percent. In tenths of a percent that is
//! the integer `Σ (40 + i)` over the set bits, `i` = 0 for the oldest: exact, no floating point
//! in the fold.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::findings::changes::Watch;
use crate::timestamp::Timestamp;

use super::{ClusterFindings, Finding, FindingChange, FoldOutput, Occurrence, ResolutionKind};

/// Runs of its category a finding's state change history covers.
pub const FLAP_HISTORY_RUNS: u32 = 20;
const HISTORY_MASK: u32 = (1 << FLAP_HISTORY_RUNS) - 1;

/// The history after `runs` runs in which the finding was absent, given that the last recorded
/// run was in state `last_present`; returns the history and the new last state.
pub fn absent_runs(bits: u32, last_present: bool, runs: u64) -> (u32, bool) {
    if runs == 0 {
        return (bits, last_present);
    }
    // The first absent run changes the state if the finding was present; the rest do not.
    let bits = ((bits << 1) | u32::from(last_present)) & HISTORY_MASK;
    let rest = runs - 1;
    let bits = if rest >= u64::from(FLAP_HISTORY_RUNS) {
        0
    } else {
        (bits << rest) & HISTORY_MASK
    };
    (bits, false)
}

/// The history after `gap` runs in which the finding was absent, then one run in state
/// `present`, given that the last recorded run was in state `last_present`.
pub fn shift_history(bits: u32, last_present: bool, gap: u64, present: bool) -> u32 {
    let (bits, last) = absent_runs(bits, last_present, gap);
    ((bits << 1) | u32::from(present != last)) & HISTORY_MASK
}

/// The history after `runs` runs in which the state stayed as it was: an alert's, whose state
/// changes only when it is notified (no change recorded).
pub fn steady_runs(bits: u32, runs: u64) -> u32 {
    if runs >= u64::from(FLAP_HISTORY_RUNS) {
        0
    } else {
        (bits << runs) & HISTORY_MASK
    }
}

/// The weighted percent state change of a history, in tenths of a percent (0 to 990).
pub fn state_change_tenths(bits: u32) -> u32 {
    // Bit p (0 = newest) is run i = 19 - p counted from the oldest: weight 40 + i = 59 - p.
    let mut total = 0;
    let mut rest = bits & HISTORY_MASK;
    while rest != 0 {
        let p = rest.trailing_zeros();
        total += 59 - p;
        rest &= rest - 1;
    }
    total
}

/// Tenths of a percent as a percent, for people and JSON.
pub fn tenths_to_percent(tenths: u32) -> f64 {
    f64::from(tenths) / 10.0
}

/// Which detector saw the flapping.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FlapDetector {
    /// More auto-resolutions inside the flap window than the flap threshold (lifecycle.md).
    Count,
    /// Weighted percent state change over the last 20 runs of the category, with hysteresis.
    StateChange,
}

impl FlapDetector {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::StateChange => "state_change",
        }
    }
}

/// One flapping episode of a finding: when a detector started and stopped calling it flapping,
/// with the figure that triggered each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapEpisode {
    /// The detector.
    pub detector: FlapDetector,
    /// When it started (the time of the event that triggered it).
    pub started_at: Timestamp,
    /// Log position of that event.
    pub started_seq: u64,
    /// The figure that started it: auto-resolutions in the window (count) or tenths of a
    /// percent (state change).
    pub start_figure: u32,
    /// When it stopped; `None` while flapping.
    pub stopped_at: Option<Timestamp>,
    /// Log position of the event that stopped it.
    pub stopped_seq: Option<u64>,
    /// The figure that stopped it.
    pub stop_figure: Option<u32>,
}

/// A flapping episode as users see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlapEpisodeView {
    /// The detector.
    pub detector: FlapDetector,
    /// When it started.
    pub started_at: Timestamp,
    /// Log position of the event that started it.
    pub started_seq: u64,
    /// What started it, in words.
    pub started_because: String,
    /// When it stopped; `None` while flapping.
    pub stopped_at: Option<Timestamp>,
    /// Log position of the event that stopped it.
    pub stopped_seq: Option<u64>,
    /// What stopped it, in words.
    pub stopped_because: Option<String>,
}

fn describe(detector: FlapDetector, figure: u32, window_secs: u64, starting: bool) -> String {
    match detector {
        FlapDetector::Count => format!(
            "{figure} auto-resolution(s) in the last {window_secs} s{}",
            if starting { "" } else { " (window passed)" }
        ),
        FlapDetector::StateChange => format!(
            "{:.1}% state change over the last {FLAP_HISTORY_RUNS} runs of its category",
            tenths_to_percent(figure)
        ),
    }
}

impl FlapEpisode {
    /// The episode in words; `window_secs` is the count detector's window in force.
    pub fn view(&self, window_secs: u64) -> FlapEpisodeView {
        FlapEpisodeView {
            detector: self.detector,
            started_at: self.started_at,
            started_seq: self.started_seq,
            started_because: describe(self.detector, self.start_figure, window_secs, true),
            stopped_at: self.stopped_at,
            stopped_seq: self.stopped_seq,
            stopped_because: self
                .stop_figure
                .map(|figure| describe(self.detector, figure, window_secs, false)),
        }
    }

    /// Whether the episode is still open.
    pub fn is_open(&self) -> bool {
        self.stopped_seq.is_none()
    }

    /// The episode as it stood at log position `as_of`: still open if it ended after.
    pub fn as_of(mut self, as_of: u64) -> Self {
        if self.stopped_seq.is_some_and(|seq| seq > as_of) {
            self.stopped_at = None;
            self.stopped_seq = None;
            self.stop_figure = None;
        }
        self
    }
}

/// Where both detectors stand on one finding: its state change history, their verdicts, and
/// whether it is watched. Everything of `FlapState` but the episodes and the derived
/// auto-resolution times; snapshots keep it as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapStatus {
    /// State change history of the last runs of its category, newest in bit 0.
    pub bits: u32,
    /// A raw state has been recorded (the finding has a state change history).
    pub recorded: bool,
    /// The run of its category its last recorded raw state belongs to.
    pub run: u64,
    /// That raw state: present.
    pub present: bool,
    /// The state change detector calls it flapping.
    pub flapping_state_change: bool,
    /// The count detector calls it flapping.
    pub flapping_count: bool,
    /// On the cluster's flap watch list (not active, yet its next runs still matter).
    pub watched: bool,
}

/// What the flap detectors keep about one finding: where they stand, inline (every cycle reads
/// it), and what only a finding that ever auto-resolved or flapped has, behind one box (a
/// million findings that never did would carry 80 bytes each for it otherwise).
#[derive(Clone, Debug, Default)]
pub(crate) struct FlapState {
    status: FlapStatus,
    record: Option<Box<FlapRecord>>,
}

/// The episodes and auto-resolutions of a finding that has some.
#[derive(Clone, Debug, Default)]
struct FlapRecord {
    /// The open flapping episodes (at most one per detector), each with its number; the ended
    /// ones are written to the history.
    open_episodes: Vec<(u64, FlapEpisode)>,
    /// Episodes, open ones included.
    episode_count: u64,
    /// Where each detector's first episode started (indexed by `FlapDetector as usize`): a
    /// walk back through the history for the episodes overlapping a window stops there.
    first_started: [Option<u64>; 2],
    /// Times of its auto-resolutions inside the cluster's flap window (or newer, until the
    /// clock moves them out), sorted (the count detector's input).
    auto_resolved_at: Vec<Timestamp>,
}

impl FlapRecord {
    /// Nothing worth a box: no episode ever, no auto-resolution kept.
    fn is_empty(&self) -> bool {
        self.episode_count == 0 && self.auto_resolved_at.is_empty()
    }
}

/// The start of a flap window of `window_secs` ending at `now` (the window is `(start, now]`).
fn window_start(now: Timestamp, window_secs: u64) -> Timestamp {
    now.plus_secs(-i64::try_from(window_secs).unwrap_or(i64::MAX))
}

impl FlapState {
    /// The state a snapshot kept, with the auto-resolution times rebuilt from `occurrences`
    /// (those inside the flap window of `window_secs` ending at the cluster's `clock`, as the
    /// live state keeps, but for those a maintenance window held back: `suppressed`); and the
    /// ended episodes of `episodes` (every episode, oldest first), for the history.
    pub(super) fn restore(
        status: FlapStatus,
        episodes: Vec<FlapEpisode>,
        occurrences: &[Occurrence],
        suppressed: &[Timestamp],
        clock: Option<Timestamp>,
        window_secs: u64,
    ) -> (Self, Vec<(u64, FlapEpisode)>) {
        let horizon = clock.map(|clock| window_start(clock, window_secs));
        let mut auto_resolved_at: Vec<Timestamp> = occurrences
            .iter()
            .filter(|o| {
                o.resolution_kind
                    .is_some_and(ResolutionKind::counts_towards_flapping)
            })
            .filter_map(|o| o.resolved_at)
            .filter(|&t| horizon.is_none_or(|h| t > h))
            .collect();
        auto_resolved_at.sort_unstable();
        super::maintenance::without_held_back(&mut auto_resolved_at, suppressed);
        let episode_count = episodes.len() as u64;
        let mut first_started = [None; 2];
        for episode in &episodes {
            first_started[episode.detector as usize].get_or_insert(episode.started_seq);
        }
        let (open_episodes, ended) = (1..)
            .zip(episodes)
            .partition(|(_, episode): &(u64, FlapEpisode)| episode.is_open());
        let state = Self::with_record(
            status,
            FlapRecord {
                open_episodes,
                episode_count,
                first_started,
                auto_resolved_at,
            },
        );
        (state, ended)
    }

    /// The state a live snapshot (store layout 2) kept: everything, the history's ended
    /// episodes aside.
    pub(super) fn restore_live(
        status: FlapStatus,
        open_episodes: Vec<(u64, FlapEpisode)>,
        episode_count: u64,
        first_started: [Option<u64>; 2],
        auto_resolved_at: Vec<Timestamp>,
    ) -> Self {
        Self::with_record(
            status,
            FlapRecord {
                open_episodes,
                episode_count,
                first_started,
                auto_resolved_at,
            },
        )
    }

    /// `status` and `record`, boxed only when it holds anything.
    fn with_record(status: FlapStatus, record: FlapRecord) -> Self {
        Self {
            status,
            record: (!record.is_empty()).then(|| Box::new(record)),
        }
    }

    /// The record, made when the finding first needs one.
    fn record_mut(&mut self) -> &mut FlapRecord {
        self.record.get_or_insert_with(Box::default)
    }

    /// The auto-resolution times, to change (the record is made when first needed).
    fn auto_resolutions_mut(&mut self) -> &mut Vec<Timestamp> {
        &mut self.record_mut().auto_resolved_at
    }

    /// Drops the record once it holds nothing (old auto-resolutions forgotten, never flapped).
    fn drop_empty_record(&mut self) {
        if self.record.as_deref().is_some_and(FlapRecord::is_empty) {
            self.record = None;
        }
    }

    /// Where each detector's first episode started (what a live snapshot keeps).
    pub(super) fn first_started_by_detector(&self) -> [Option<u64>; 2] {
        self.record.as_ref().map_or([None; 2], |r| r.first_started)
    }

    /// The auto-resolution times the count detector keeps (what a live snapshot keeps).
    pub(super) fn auto_resolutions(&self) -> &[Timestamp] {
        self.record
            .as_ref()
            .map_or(&[], |r| r.auto_resolved_at.as_slice())
    }

    /// Where the detectors stand (what a snapshot keeps besides the episodes).
    pub(super) fn status(&self) -> FlapStatus {
        self.status
    }

    /// The open episodes with their numbers, in the order they started.
    pub(super) fn open_episodes(&self) -> &[(u64, FlapEpisode)] {
        self.record
            .as_ref()
            .map_or(&[], |r| r.open_episodes.as_slice())
    }

    /// Episodes, by either detector, open ones included.
    pub(super) fn episode_count(&self) -> u64 {
        self.record.as_ref().map_or(0, |r| r.episode_count)
    }

    /// Where `detector`'s first episode started; `None` when it never called the finding
    /// flapping.
    pub(super) fn first_started(&self, detector: FlapDetector) -> Option<u64> {
        self.record
            .as_ref()
            .and_then(|r| r.first_started[detector as usize])
    }

    /// Its value in a `--step` digest from the stored verdicts (which the count equals after
    /// every event: `tests/flap_invariant.rs`); `None` when neither detector calls it flapping.
    pub(super) fn digest_flap(&self) -> Option<&'static str> {
        crate::findings::changes::flap_how(
            self.status.flapping_count,
            self.status.flapping_state_change,
        )
    }

    /// The state change detector calls it flapping now.
    pub(super) fn flapping_state_change(&self) -> bool {
        self.status.flapping_state_change
    }

    /// Whether a run the finding is absent in can change what the state change detector says:
    /// it was present in its last recorded run, or the detector calls it flapping.
    pub(super) fn absent_runs_matter(&self) -> bool {
        self.status.present || self.status.flapping_state_change
    }

    /// The state change history as of `run` of its category: runs not recorded since the last
    /// recorded one were absent (`steady`, an alert's: in the state of the last recorded one).
    fn bits_at(&self, run: u64, steady: bool) -> u32 {
        let status = &self.status;
        if !status.recorded || status.run >= run {
            status.bits
        } else if steady {
            steady_runs(status.bits, run - status.run)
        } else {
            shift_history(status.bits, status.present, run - status.run - 1, false)
        }
    }

    fn start<O: FoldOutput>(
        &mut self,
        check_key: &str,
        detector: FlapDetector,
        figure: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut O,
    ) {
        if O::W::ON {
            let before = self.digest_flap();
            sink.watch().flap(check_key, before);
        }
        match detector {
            FlapDetector::Count => self.status.flapping_count = true,
            FlapDetector::StateChange => self.status.flapping_state_change = true,
        }
        let record = self.record_mut();
        record.episode_count += 1;
        record.first_started[detector as usize].get_or_insert(seq);
        let episode = FlapEpisode {
            detector,
            started_at: at,
            started_seq: seq,
            start_figure: figure,
            stopped_at: None,
            stopped_seq: None,
            stop_figure: None,
        };
        record.open_episodes.push((record.episode_count, episode));
        debug_assert!(
            record.open_episodes.len() <= 2,
            "one open episode per detector"
        );
        sink.change(check_key, FindingChange::FlapStarted(detector));
    }

    fn stop<O: FoldOutput>(
        &mut self,
        check_key: &str,
        detector: FlapDetector,
        figure: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut O,
    ) {
        if O::W::ON {
            let before = self.digest_flap();
            sink.watch().flap(check_key, before);
        }
        match detector {
            FlapDetector::Count => self.status.flapping_count = false,
            FlapDetector::StateChange => self.status.flapping_state_change = false,
        }
        sink.change(check_key, FindingChange::FlapStopped(detector));
        if let Some(record) = self.record.as_deref_mut()
            && let Some(open) = record
                .open_episodes
                .iter()
                .position(|(_, e)| e.detector == detector)
        {
            let (number, mut episode) = record.open_episodes.remove(open);
            episode.stopped_at = Some(at);
            episode.stopped_seq = Some(seq);
            episode.stop_figure = Some(figure);
            sink.flap_episode_ended(check_key, number, &episode);
        }
    }

    /// The state change detector's hysteresis at `tenths`: starts at `start_tenths` or more,
    /// stops below `stop_tenths`.
    #[allow(clippy::too_many_arguments)]
    fn judge_state_change(
        &mut self,
        check_key: &str,
        tenths: u32,
        start_tenths: u32,
        stop_tenths: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut impl FoldOutput,
    ) {
        if !self.status.flapping_state_change && self.status.recorded && tenths >= start_tenths {
            self.start(check_key, FlapDetector::StateChange, tenths, seq, at, sink);
        } else if self.status.flapping_state_change && tenths < stop_tenths {
            self.stop(check_key, FlapDetector::StateChange, tenths, seq, at, sink);
        }
    }
}

/// The flap detectors over the findings of one cluster.
impl ClusterFindings {
    /// Puts a finding that is not active on the flap watch list if a coming run of its
    /// category can still change what the state change detector says.
    pub(super) fn watch_if_needed(&mut self, index: u32) {
        let finding = &mut self.findings[index as usize];
        // An alert's runs are its cluster's notifications, in which it keeps its state unless
        // notified: they matter only while it flaps (they can stop it, never start it).
        let matters = if finding.is_alert() {
            finding.flap.status.flapping_state_change
        } else {
            !finding.is_active() && finding.flap.absent_runs_matter()
        };
        if !finding.flap.status.watched && matters {
            finding.flap.status.watched = true;
            self.flap_watch.push(index);
        }
    }

    /// The run a finding's state change history is at now: the latest run of its category, or,
    /// for an alert, the cluster's latest alert notification.
    fn current_run(&self, finding: &Finding) -> u64 {
        if finding.is_alert() {
            self.alert_runs
        } else {
            self.category_runs[finding.category as usize]
        }
    }

    /// Records the finding's raw state in the current run of its category (for an alert: the
    /// alert notification being applied; the runs since its last one kept its state) and
    /// applies the state change detector's hysteresis.
    pub(super) fn record_run(
        &mut self,
        index: u32,
        present: bool,
        seq: u64,
        at: Timestamp,
        sink: &mut impl FoldOutput,
    ) {
        // Inside a maintenance window that holds flaps back, a run is not recorded: the
        // history resumes from the finding's last state outside it.
        if self.flaps_suppressed(index) {
            return;
        }
        let start_tenths = self.settings.flap_start_percent * 10;
        let stop_tenths = self.settings.effective_flap_stop_percent() * 10;
        let run = self.current_run(&self.findings[index as usize]);
        let finding = &mut self.findings[index as usize];
        let steady = finding.is_alert();
        let flap = &mut finding.flap;
        if flap.status.recorded {
            if flap.status.run >= run {
                return;
            }
            let gap = run - flap.status.run - 1;
            flap.status.bits = if steady {
                (steady_runs(flap.status.bits, gap) << 1
                    | u32::from(present != flap.status.present))
                    & HISTORY_MASK
            } else {
                shift_history(flap.status.bits, flap.status.present, gap, present)
            };
        }
        flap.status.recorded = true;
        flap.status.run = run;
        flap.status.present = present;
        let tenths = state_change_tenths(flap.status.bits);
        flap.judge_state_change(
            &finding.check_key,
            tenths,
            start_tenths,
            stop_tenths,
            seq,
            at,
            sink,
        );
    }

    /// The runs of a cycle (or, `alert_run`, of an alert notification) for the findings on
    /// the flap watch list: those that are not active record an absent run if their category
    /// ran (alerts, in an alert run, their state as it was); those whose runs stopped mattering
    /// leave.
    pub(super) fn record_watched_runs(
        &mut self,
        alert_run: bool,
        seq: u64,
        at: Timestamp,
        sink: &mut impl FoldOutput,
    ) {
        let mut i = 0;
        while i < self.flap_watch.len() {
            let index = self.flap_watch[i];
            let finding = &self.findings[index as usize];
            if finding.is_alert() {
                if alert_run {
                    let steady = finding.flap.status.present;
                    self.record_run(index, steady, seq, at, sink);
                }
                let finding = &mut self.findings[index as usize];
                if finding.flap.status.flapping_state_change {
                    i += 1;
                } else {
                    finding.flap.status.watched = false;
                    self.flap_watch.swap_remove(i);
                }
                continue;
            }
            if !alert_run && !finding.is_active() && self.ran_scratch[finding.category as usize] {
                self.record_run(index, false, seq, at, sink);
            }
            let finding = &mut self.findings[index as usize];
            if finding.is_active() || !finding.flap.absent_runs_matter() {
                finding.flap.status.watched = false;
                self.flap_watch.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// A finding seen in another category than before: its runs were counted in the old
    /// category's runs until now, so bring the history up to this cycle there, then count on
    /// in the new category's.
    pub(super) fn move_flap_history(&mut self, index: u32, new_category: u32) {
        let finding = &mut self.findings[index as usize];
        let flap = &mut finding.flap.status;
        if !flap.recorded {
            return;
        }
        let old = finding.category as usize;
        let old_runs_before_now = self.category_runs[old] - u64::from(self.ran_scratch[old]);
        let (bits, last) = absent_runs(
            flap.bits,
            flap.present,
            old_runs_before_now.saturating_sub(flap.run),
        );
        flap.bits = bits;
        flap.present = last;
        flap.run = self.category_runs[new_category as usize] - 1;
    }

    /// The flap window ending at the cluster's clock: `(now - flap_window_secs, now]`.
    fn flap_window(&self) -> Option<(Timestamp, Timestamp)> {
        let now = self.clock?;
        Some((window_start(now, self.settings.flap_window_secs), now))
    }

    /// Auto-resolutions of a finding inside the flap window, and the first of them.
    fn auto_resolutions_in_window_from(&self, finding: &Finding) -> (u32, Option<Timestamp>) {
        let Some((start, now)) = self.flap_window() else {
            return (0, None);
        };
        let times = finding.flap.auto_resolutions();
        let from = times.partition_point(|&t| t <= start);
        let to = times.partition_point(|&t| t <= now);
        (
            (to - from) as u32,
            times.get(from).copied().filter(|_| to > from),
        )
    }

    /// Auto-resolutions of a finding inside the flap window ending at the cluster's clock.
    pub(super) fn auto_resolutions_in_window(&self, finding: &Finding) -> u32 {
        self.auto_resolutions_in_window_from(finding).0
    }

    /// The count rule of lifecycle.md, at the cluster's clock.
    pub(super) fn is_flapping(&self, finding: &Finding) -> bool {
        self.auto_resolutions_in_window(finding) > self.settings.flap_threshold
    }

    /// The finding's weighted percent state change as of the latest run of its category.
    pub(super) fn state_change_tenths(&self, finding: &Finding) -> u32 {
        state_change_tenths(
            finding
                .flap
                .bits_at(self.current_run(finding), finding.is_alert()),
        )
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

    /// A restored finding goes back on the count detector's expiry queue if it calls it
    /// flapping, and on the flap watch list if it was on it.
    pub(super) fn restore_flap_queues(&mut self, index: u32) {
        let finding = &self.findings[index as usize];
        if let Some(&oldest) = finding.flap.auto_resolutions().first() {
            self.auto_resolution_expiry.insert((oldest, index));
        }
        if finding.flap.status.flapping_count {
            let expiry = self.count_expiry_of(finding);
            self.count_expiry.insert((expiry, index));
        }
        if finding.flap.status.watched {
            self.flap_watch.push(index);
        }
    }

    /// An auto-resolution at `at`: recorded for the count detector, which may start calling
    /// the finding flapping.
    pub(super) fn note_auto_resolution(
        &mut self,
        index: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut impl FoldOutput,
    ) {
        let times = self.findings[index as usize].flap.auto_resolutions_mut();
        let pos = times.partition_point(|&t| t <= at);
        times.insert(pos, at);
        if pos == 0 {
            if let Some(&previous) = times.get(1) {
                self.auto_resolution_expiry.remove(&(previous, index));
            }
            self.auto_resolution_expiry.insert((at, index));
        }
        self.check_count_start(index, seq, at, sink);
    }

    /// As the clock moves, forgets the auto-resolutions at or before the start of the flap
    /// window: the clock never goes back, and a window widened later reads them back from the
    /// history ([`Self::reach_back_auto_resolutions`]).
    pub(super) fn forget_old_auto_resolutions(&mut self) {
        let Some((horizon, _)) = self.flap_window() else {
            return;
        };
        while let Some(&(oldest, index)) = self.auto_resolution_expiry.first() {
            if oldest > horizon {
                break;
            }
            self.auto_resolution_expiry.pop_first();
            let flap = &mut self.findings[index as usize].flap;
            let times = flap.auto_resolutions_mut();
            let gone = times.partition_point(|&t| t <= horizon);
            times.drain(..gone);
            times.shrink_to(times.len().max(4));
            if let Some(&next) = times.first() {
                self.auto_resolution_expiry.insert((next, index));
            }
            flap.drop_empty_record();
        }
    }

    /// The flap window just widened from `old_window_secs`: each finding gets back the
    /// auto-resolutions the wider window reaches back to, read from the history the fold wrote.
    /// It keeps every time after the old window's start (those it forgot are at or before it:
    /// the clock never goes back), so it drops what it still holds at or before that start and
    /// reads `(new start, old start]`: each time once. Settings are changed by people, rarely:
    /// this reads each finding's history of that span once, in pages.
    pub(super) fn reach_back_auto_resolutions(
        &mut self,
        old_window_secs: u64,
        sink: &impl FoldOutput,
    ) {
        let Some((new_start, now)) = self.flap_window() else {
            return;
        };
        let old_start = window_start(now, old_window_secs);
        for index in 0..self.findings.len() as u32 {
            let finding = &self.findings[index as usize];
            let closed = finding.occurrence_count - u64::from(finding.is_active());
            if closed == 0 {
                continue;
            }
            let mut older = sink.auto_resolutions_between(&finding.check_key, new_start, old_start);
            // Resolutions held back by a maintenance window stay uncounted.
            if let Some(m) = self.maintenance.as_deref() {
                super::maintenance::without_held_back(
                    &mut older,
                    m.suppressed_resolutions_of(&finding.check_key),
                );
            }
            let flap = &mut self.findings[index as usize].flap;
            let previous_oldest = flap.auto_resolutions().first().copied();
            if older.is_empty() && previous_oldest.is_none_or(|t| t > old_start) {
                continue;
            }
            let times = flap.auto_resolutions_mut();
            let kept = times.partition_point(|&t| t <= old_start);
            times.splice(..kept, older);
            let oldest = times.first().copied();
            flap.drop_empty_record();
            if oldest != previous_oldest {
                if let Some(previous) = previous_oldest {
                    self.auto_resolution_expiry.remove(&(previous, index));
                }
                if let Some(oldest) = oldest {
                    self.auto_resolution_expiry.insert((oldest, index));
                }
            }
        }
    }

    /// Auto-resolution times the count detector keeps for the findings of this cluster.
    pub(super) fn auto_resolutions_kept(&self) -> usize {
        self.findings
            .iter()
            .map(|f| f.flap.auto_resolutions().len())
            .sum()
    }

    /// After an auto-resolution: does the count detector start calling it flapping?
    fn check_count_start(
        &mut self,
        index: u32,
        seq: u64,
        at: Timestamp,
        sink: &mut impl FoldOutput,
    ) {
        let finding = &self.findings[index as usize];
        if finding.flap.status.flapping_count {
            return;
        }
        let count = self.auto_resolutions_in_window(finding);
        if count > self.settings.flap_threshold {
            let expiry = self.count_expiry_of(finding);
            let finding = &mut self.findings[index as usize];
            finding.flap.start(
                &finding.check_key,
                FlapDetector::Count,
                count,
                seq,
                at,
                sink,
            );
            self.count_expiry.insert((expiry, index));
        }
    }

    /// As the clock moves, the count detector's verdicts on the findings whose oldest
    /// auto-resolution in the window may have left it.
    pub(super) fn check_count_flaps(
        &mut self,
        seq: u64,
        at: Timestamp,
        sink: &mut impl FoldOutput,
    ) {
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
            finding.flap.stop(
                &finding.check_key,
                FlapDetector::Count,
                count,
                seq,
                at,
                sink,
            );
        }
    }

    /// The window or threshold changed: every count-flapping finding is judged again.
    fn recheck_count_flaps(&mut self, seq: u64, at: Timestamp, sink: &mut impl FoldOutput) {
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
                finding.flap.stop(
                    &finding.check_key,
                    FlapDetector::Count,
                    count,
                    seq,
                    at,
                    sink,
                );
            }
        }
    }

    /// Settings changed: both detectors judge every finding again against the new
    /// thresholds (no run is recorded).
    pub(super) fn recheck_flaps(&mut self, seq: u64, at: Timestamp, sink: &mut impl FoldOutput) {
        self.recheck_count_flaps(seq, at, sink);
        let start_tenths = self.settings.flap_start_percent * 10;
        let stop_tenths = self.settings.effective_flap_stop_percent() * 10;
        for index in 0..self.findings.len() as u32 {
            let finding = &self.findings[index as usize];
            if finding.occurrence_count == 0 {
                continue;
            }
            if !finding.flap.status.flapping_count {
                self.check_count_start(index, seq, at, sink);
            }
            let run = self.current_run(&self.findings[index as usize]);
            let finding = &mut self.findings[index as usize];
            let tenths = state_change_tenths(finding.flap.bits_at(run, finding.is_alert()));
            finding.flap.judge_state_change(
                &finding.check_key,
                tenths,
                start_tenths,
                stop_tenths,
                seq,
                at,
                sink,
            );
            self.watch_if_needed(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_run_from_0_8_to_1_18() {
        assert_eq!(state_change_tenths(1), 59); // newest: 1.18 -> 5.9 %
        assert_eq!(state_change_tenths(1 << 19), 40); // oldest: 0.8 -> 4.0 %
        assert_eq!(state_change_tenths(HISTORY_MASK), 990); // every run changed: 99 %
        assert_eq!(state_change_tenths(0), 0);
    }

    #[test]
    fn gaps_record_one_change_then_quiet_runs() {
        // Present, then 3 absent runs, then present: changes at the first absent run and now.
        let bits = shift_history(0, true, 3, true);
        assert_eq!(bits, 0b1001);
        // A long gap forgets everything before it.
        assert_eq!(shift_history(HISTORY_MASK, false, 40, false), 0);
        // No gap, same state: a zero shifted in.
        assert_eq!(shift_history(0b1, true, 0, true), 0b10);
    }
}
