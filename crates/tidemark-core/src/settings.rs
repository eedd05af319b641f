//! Per-cluster lifecycle settings, changed by `settings.changed` from that point of the log on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::event::{SettingsChanged, Severity};

// The limits are the wire contract's (`event`), and the fold reads with them.
pub use crate::event::{MAX_ALERT_STALE_AFTER_SECS, MAX_FLAP_WINDOW_SECS, MAX_SPAN_RETENTION_SECS};

/// The span retention of a cluster that never set one: a day.
pub const DEFAULT_SPAN_RETENTION_SECS: u64 = 86_400;

/// How long a firing alert may go without a notification before it is stale: 8 hours, twice
/// Alertmanager's default `repeat_interval` (4 h), so one missed re-send is not enough.
pub const DEFAULT_ALERT_STALE_AFTER_SECS: u64 = 28_800;

/// The lifecycle settings in force for one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    /// Clean cycles a finding needs before it auto-resolves (T).
    pub clean_cycles_to_resolve: u32,
    /// `None`: every category is enabled; else only these.
    pub enabled_categories: Option<BTreeSet<String>>,
    /// Width of the flap window, at most [`MAX_FLAP_WINDOW_SECS`].
    pub flap_window_secs: u64,
    /// A finding with more auto-resolutions than this inside the window is flapping.
    pub flap_threshold: u32,
    /// Lowest severity that notifies.
    pub notification_min_severity: Severity,
    /// Weighted percent state change at or above which a finding starts flapping.
    pub flap_start_percent: u32,
    /// Weighted percent state change below which a flapping finding stops flapping.
    pub flap_stop_percent: u32,
    /// Cycles of the cluster without a category after which its active findings are
    /// unreachable (N).
    pub unreachable_after_cycles: u32,
    /// Consecutive scans an orphan must be seen in before it is reported.
    pub orphan_confirm_scans: u32,
    /// Kinds that are orphans when no live resource uses them.
    pub orphan_consumer_kinds: BTreeSet<String>,
    /// Quiet period after which a trace's missing parents and root are reported.
    pub span_grace_secs: u64,
    /// Quiet period after which a judged trace leaves memory; a later span of it is judged
    /// alone (and counted as late).
    pub span_retention_secs: u64,
    /// Findings opening this close together may be grouped into one incident.
    pub incident_window_secs: u64,
    /// Age from which a persistent active finding is listed as long-lived.
    pub long_lived_secs: u64,
    /// Seconds without a notification naming a firing alert after which it is stale, 1 to
    /// [`MAX_ALERT_STALE_AFTER_SECS`].
    pub alert_stale_after_secs: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            clean_cycles_to_resolve: 2,
            enabled_categories: None,
            flap_window_secs: 86_400,
            flap_threshold: 2,
            notification_min_severity: Severity::Warning,
            flap_start_percent: 30,
            flap_stop_percent: 25,
            unreachable_after_cycles: 3,
            orphan_confirm_scans: 2,
            orphan_consumer_kinds: BTreeSet::from(["PersistentVolumeClaim".to_owned()]),
            span_grace_secs: 300,
            span_retention_secs: DEFAULT_SPAN_RETENTION_SECS,
            incident_window_secs: 600,
            long_lived_secs: 7 * 86_400,
            alert_stale_after_secs: DEFAULT_ALERT_STALE_AFTER_SECS,
        }
    }
}

impl ClusterSettings {
    /// Applies a change: present fields replace, absent fields keep. A flap window above
    /// [`MAX_FLAP_WINDOW_SECS`] (only a log written before the limit holds one) is read as the
    /// limit.
    /// These settings with every limit of the wire contract applied, as the fold applies them:
    /// a snapshot of a format written before the limits (which a replica whose retention cut
    /// its log resumes from) may hold a wider window; it is read as the fold would read it.
    pub fn within_limits(mut self) -> Self {
        self.flap_window_secs = self.flap_window_secs.min(MAX_FLAP_WINDOW_SECS);
        self.span_retention_secs = self.span_retention_secs.min(MAX_SPAN_RETENTION_SECS);
        self
    }

    pub fn apply(&mut self, change: &SettingsChanged) {
        if let Some(t) = change.clean_cycles_to_resolve {
            self.clean_cycles_to_resolve = t;
        }
        if let Some(enabled) = &change.enabled_categories {
            self.enabled_categories = enabled.as_ref().map(|list| list.iter().cloned().collect());
        }
        if let Some(window) = change.flap_window_secs {
            self.flap_window_secs = window.min(MAX_FLAP_WINDOW_SECS);
        }
        if let Some(threshold) = change.flap_threshold {
            self.flap_threshold = threshold;
        }
        if let Some(severity) = change.notification_min_severity {
            self.notification_min_severity = severity;
        }
        if let Some(percent) = change.flap_start_percent {
            self.flap_start_percent = percent;
        }
        if let Some(percent) = change.flap_stop_percent {
            self.flap_stop_percent = percent;
        }
        if let Some(cycles) = change.unreachable_after_cycles {
            self.unreachable_after_cycles = cycles;
        }
        if let Some(scans) = change.orphan_confirm_scans {
            self.orphan_confirm_scans = scans;
        }
        if let Some(kinds) = &change.orphan_consumer_kinds {
            self.orphan_consumer_kinds = kinds.iter().cloned().collect();
        }
        if let Some(secs) = change.span_grace_secs {
            self.span_grace_secs = secs;
        }
        if let Some(secs) = change.span_retention_secs {
            self.span_retention_secs = secs.min(MAX_SPAN_RETENTION_SECS);
        }
        if let Some(secs) = change.incident_window_secs {
            self.incident_window_secs = secs;
        }
        if let Some(secs) = change.long_lived_secs {
            self.long_lived_secs = secs;
        }
        if let Some(secs) = change.alert_stale_after_secs {
            self.alert_stale_after_secs = secs.clamp(1, MAX_ALERT_STALE_AFTER_SECS);
        }
    }

    /// The stop threshold in force: never above the start threshold, so a finding that
    /// starts flapping is above the level at which it stops.
    pub fn effective_flap_stop_percent(&self) -> u32 {
        self.flap_stop_percent.min(self.flap_start_percent)
    }

    /// Whether `category` is enabled.
    pub fn is_enabled(&self, category: &str) -> bool {
        self.enabled_categories
            .as_ref()
            .is_none_or(|enabled| enabled.contains(category))
    }
}
