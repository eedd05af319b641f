//! What users read about findings: the finding view of `tidemark replay --json` (with its
//! history) and the API's overview (without it), flaps, churn, stuck findings (unreachable,
//! drift suspects, long-lived), and the borrowed facts other projections read.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{ResourceRef, Severity};
use crate::timestamp::Timestamp;

use super::alerts::AlertStaleness;
use super::flaps::{FlapEpisodeView, tenths_to_percent};
use super::history::{Direction, HistoryRange, HistoryReader};
use super::maintenance::InMaintenance;
use super::{
    AlertFacts, ClusterFindings, DriftRecord, Finding, FindingState, Occurrence, ResolutionKind,
    UnreachableReason,
};

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
    /// What an alert keeps; `None` for a probe's finding.
    pub alert: Option<&'a AlertFacts>,
}

/// A finding as the API's lists and its finding answer show it: its current occurrence and its
/// counts, not its history (which is paged apart: `FindingsProjection::history_page`). Built
/// without copying any occurrence or flap episode, so its cost does not grow with the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FindingOverview {
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
    /// Number of occurrences, the active one included (its history has as many).
    pub occurrences: u64,
    /// Number of flapping episodes, by either detector, open ones included.
    pub flap_episodes: u64,
    /// More auto-resolutions inside the flap window than the flap threshold.
    pub flapping: bool,
    /// The state change detector calls it flapping (hysteresis between the start and stop
    /// thresholds).
    pub flapping_state_change: bool,
    /// Weighted percent state change over the last 20 runs of its category (of an alert: of
    /// its last 20 notifications).
    pub state_change_percent: f64,
    /// The alert it is (ADR 0007: its identity, labels, annotations, latest `startsAt`, when
    /// it was last notified); absent for a probe's finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertFacts>,
    /// A firing alert no notification named for longer than its cluster's
    /// `alert_stale_after_secs`: since when and for how long, at the reference time it states
    /// (the cluster's clock unless the reader asked for `now`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<AlertStaleness>,
    /// The maintenance windows covering it at its cluster's clock (which, since when, and
    /// whether an automatic incident waits for them to end); absent when none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_maintenance: Option<InMaintenance>,
}

/// A finding with its whole history: the shape of `tidemark replay --json`, `tidemark findings
/// --json` and the replay corpus (`findings.json`). The API answers [`FindingOverview`] and
/// pages the history apart.
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
    /// Weighted percent state change over the last 20 runs of its category (of an alert: of
    /// its last 20 notifications).
    pub state_change_percent: f64,
    /// The alert it is; absent for a probe's finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertFacts>,
    /// A stale firing alert, judged at its cluster's clock; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<AlertStaleness>,
    /// The maintenance windows covering it at its cluster's clock; absent when none does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_maintenance: Option<InMaintenance>,
    /// Every occurrence, oldest first.
    pub history: Vec<Occurrence>,
}

/// A finding that flaps or has flapped, as the API lists it: where the detectors stand, how
/// many episodes it had and the latest one (the others are paged apart:
/// `FindingsProjection::flap_episodes_page`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlapOverview {
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
    /// Number of episodes, by either detector, open ones included.
    pub flap_episodes: u64,
    /// The episode that started last.
    pub latest_episode: FlapEpisodeView,
}

/// A finding that flaps or has flapped, with all its episodes: the shape of `tidemark flaps
/// --json` and the replay corpus (`flaps.json`). The API answers [`FlapOverview`].
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

/// Why an alert is listed by `stuck`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaleReason {
    /// Firing, and no notification named it for longer than `alert_stale_after_secs`.
    AlertStale,
}

/// A firing alert that went stale: the alerting system stopped saying anything of it (a
/// missed resolve, `send_resolved: false`, an alerting system that stopped sending). Tidemark
/// never resolves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StaleAlertView {
    /// The cluster.
    pub cluster: String,
    /// The alert's finding key.
    pub check_key: String,
    /// The alert's name.
    pub name: String,
    /// The alerting system's identity of the alert.
    pub fingerprint: String,
    /// Latest severity.
    pub severity: Severity,
    /// Latest title.
    pub title: String,
    /// When the firing occurrence opened.
    pub opened_at: Timestamp,
    /// When the last notification naming it arrived.
    pub last_notified_at: Timestamp,
    /// Why it is listed: `alert_stale`.
    pub reason: StaleReason,
    /// Since when, for how long, and the time it was judged at.
    #[serde(flatten)]
    pub staleness: AlertStaleness,
}

/// Stuck findings, drift suspects and long-lived findings, kept apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StuckReport {
    /// Structurally unreachable: the sweep cannot resolve them.
    pub unreachable: Vec<UnreachableView>,
    /// Firing alerts no notification named for longer than their cluster's
    /// `alert_stale_after_secs`, by (cluster, check key).
    pub stale_alerts: Vec<StaleAlertView>,
    /// Check-key drift suspects, in log order per cluster.
    pub drift_suspects: Vec<DriftView>,
    /// Persistent and old: real problems, not stuck ones.
    pub long_lived: Vec<LongLivedView>,
}

/// Views of one cluster's findings.
impl ClusterFindings {
    /// The finding's current occurrence and counts; copies no occurrence and no episode.
    pub(super) fn overview(&self, cluster: &str, finding: &Finding) -> FindingOverview {
        debug_assert!(
            finding.occurrence_count > 0,
            "a finding in the projection has at least one occurrence"
        );
        let current = &finding.current;
        let active = finding.is_active();
        FindingOverview {
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
            occurrences: finding.occurrence_count,
            flap_episodes: finding.flap.episode_count(),
            flapping: self.is_flapping(finding),
            flapping_state_change: finding.flap.flapping_state_change(),
            state_change_percent: tenths_to_percent(self.state_change_tenths(finding)),
            alert: finding.alert.as_deref().cloned(),
            stale: self.staleness(finding, None),
            in_maintenance: self.in_maintenance(finding),
        }
    }

    /// The finding with its whole history (the CLI's and the corpus' shape).
    pub(super) fn view(
        &self,
        cluster: &str,
        finding: &Finding,
        history: &impl HistoryReader,
    ) -> FindingView {
        let occurrences = finding
            .occurrences(cluster, history, &HistoryRange::all())
            .into_iter()
            .map(|(_, occurrence)| occurrence)
            .collect();
        // Destructured whole, so a field added to the overview is a compile error here until
        // the CLI's shape says whether it shows it.
        let FindingOverview {
            cluster,
            check_key,
            category,
            severity,
            title,
            state,
            clean_cycles,
            opened_at,
            last_seen_at,
            resolved_at,
            resolution_kind,
            occurrences: occurrence_count,
            flap_episodes: _,
            flapping,
            flapping_state_change,
            state_change_percent,
            alert,
            stale,
            in_maintenance,
        } = self.overview(cluster, finding);
        FindingView {
            cluster,
            check_key,
            category,
            severity,
            title,
            state,
            clean_cycles,
            opened_at,
            last_seen_at,
            resolved_at,
            resolution_kind,
            occurrences: occurrence_count,
            flapping,
            flapping_state_change,
            state_change_percent,
            alert,
            stale,
            in_maintenance,
            history: occurrences,
        }
    }

    /// A flapping (or once flapping) finding: where the detectors stand, its episode count
    /// and its latest episode; `None` when it never flapped.
    pub(super) fn flap_overview(
        &self,
        cluster: &str,
        finding: &Finding,
        history: &impl HistoryReader,
    ) -> Option<FlapOverview> {
        let (_, latest) = finding
            .flap_episodes(
                cluster,
                history,
                &HistoryRange {
                    direction: Direction::Backward,
                    limit: 1,
                    ..HistoryRange::all()
                },
            )
            .pop()?;
        Some(FlapOverview {
            cluster: cluster.to_owned(),
            check_key: finding.check_key.to_string(),
            category: self.category_names[finding.category as usize].clone(),
            severity: finding.severity,
            title: finding.title.clone(),
            state: FindingState::of(finding.is_active()),
            flapping: self.is_flapping(finding),
            flapping_state_change: finding.flap.flapping_state_change(),
            auto_resolutions_in_window: self.auto_resolutions_in_window(finding),
            state_change_percent: tenths_to_percent(self.state_change_tenths(finding)),
            flap_episodes: finding.flap.episode_count(),
            latest_episode: latest.view(self.settings.flap_window_secs),
        })
    }

    pub(super) fn flap_view(
        &self,
        cluster: &str,
        finding: &Finding,
        history: &impl HistoryReader,
    ) -> FlapView {
        FlapView {
            cluster: cluster.to_owned(),
            check_key: finding.check_key.to_string(),
            category: self.category_names[finding.category as usize].clone(),
            severity: finding.severity,
            title: finding.title.clone(),
            state: FindingState::of(finding.is_active()),
            flapping: self.is_flapping(finding),
            flapping_state_change: finding.flap.flapping_state_change(),
            auto_resolutions_in_window: self.auto_resolutions_in_window(finding),
            state_change_percent: tenths_to_percent(self.state_change_tenths(finding)),
            episodes: finding
                .flap_episodes(cluster, history, &HistoryRange::all())
                .iter()
                .map(|(_, e)| e.view(self.settings.flap_window_secs))
                .collect(),
        }
    }
}
