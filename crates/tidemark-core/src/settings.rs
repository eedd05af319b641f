//! Per-cluster lifecycle settings, changed by `settings.changed` from that point of the log on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::event::{SettingsChanged, Severity};

/// The lifecycle settings in force for one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    /// Clean cycles a finding needs before it auto-resolves (T).
    pub clean_cycles_to_resolve: u32,
    /// `None`: every category is enabled; else only these.
    pub enabled_categories: Option<BTreeSet<String>>,
    /// Width of the flap window.
    pub flap_window_secs: u64,
    /// A finding with more auto-resolutions than this inside the window is flapping.
    pub flap_threshold: u32,
    /// Lowest severity that notifies.
    pub notification_min_severity: Severity,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            clean_cycles_to_resolve: 2,
            enabled_categories: None,
            flap_window_secs: 86_400,
            flap_threshold: 2,
            notification_min_severity: Severity::Warning,
        }
    }
}

impl ClusterSettings {
    /// Applies a change: present fields replace, absent fields keep.
    pub fn apply(&mut self, change: &SettingsChanged) {
        if let Some(t) = change.clean_cycles_to_resolve {
            self.clean_cycles_to_resolve = t;
        }
        if let Some(enabled) = &change.enabled_categories {
            self.enabled_categories = enabled.as_ref().map(|list| list.iter().cloned().collect());
        }
        if let Some(window) = change.flap_window_secs {
            self.flap_window_secs = window;
        }
        if let Some(threshold) = change.flap_threshold {
            self.flap_threshold = threshold;
        }
        if let Some(severity) = change.notification_min_severity {
            self.notification_min_severity = severity;
        }
    }

    /// Whether `category` is enabled.
    pub fn is_enabled(&self, category: &str) -> bool {
        self.enabled_categories
            .as_ref()
            .is_none_or(|enabled| enabled.contains(category))
    }
}
