//! Maintenance windows in the findings fold (ADR 0007, "Maintenance windows"): the windows in
//! effect in a cluster, the findings and alerts they cover, and what a window changes.
//!
//! Nothing is dropped: a covered finding opens, is seen and resolves exactly as without the
//! window. What a window changes, each settable per cluster in `settings.changed`:
//! - `maintenance_suppresses_incidents` (default true): a finding that opens while covered is
//!   offered to no automatic incident; if it is still active when no window covers it any more
//!   (at a cancel, at once; when a window closes by time, at the cluster's next event: time
//!   comes from events), it is offered then ([`FindingsProjection::maintenance_released`]).
//! - `maintenance_suppresses_flaps` (default true): a resolution by the finding's own source
//!   while covered is not counted by the count detector, and the state change detector records
//!   no run for a covered finding.
//!
//! The state is bounded: windows in effect (at most [`MAX_WINDOWS_IN_EFFECT`]; a one-off window
//! leaves once the clock passes its end), the marks of covered active findings, and the
//! suppressed resolutions of the last [`MAX_FLAP_WINDOW_SECS`] (so that a widened flap window
//! reads them back as not counted). A cluster that never saw a window keeps none of it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{MaintenanceCancelled, MaintenanceScheduled, SettingsChanged};
use crate::maintenance::{
    MAX_WINDOWS_IN_EFFECT, MaintenanceSummary, Subject, Window, WindowSnapshot,
};
use crate::settings::MAX_FLAP_WINDOW_SECS;
use crate::timestamp::Timestamp;

use super::{ClusterFindings, Finding, FindingsProjection};

/// Why a finding is quiet: the windows covering it at a reference time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InMaintenance {
    /// The names of the windows that cover it, in scheduling order.
    pub windows: Vec<String>,
    /// Since when the fold has seen it covered without a break, if it has (a finding not
    /// touched since the window opened has no such time yet).
    pub since: Option<Timestamp>,
    /// The time coverage was judged at: the cluster's clock.
    pub reference: Timestamp,
    /// Whether an automatic incident waits for the window to end (it opened while covered and
    /// the cluster suppresses incidents in maintenance).
    pub incident_deferred: bool,
}

/// What the fold keeps about a covered active finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceMark {
    /// When the fold first saw it covered (the cluster's clock then).
    pub since: Timestamp,
    /// Whether it opened while covered and waits to be offered to automatic incidents.
    pub incident_deferred: bool,
}

/// A cluster's maintenance state as a snapshot keeps it (snapshot format 16 on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceSnapshot {
    /// `maintenance_suppresses_incidents`.
    pub suppresses_incidents: bool,
    /// `maintenance_suppresses_flaps`.
    pub suppresses_flaps: bool,
    /// The windows in effect, in scheduling order.
    pub windows: Vec<WindowSnapshot>,
    /// Windows refused over [`MAX_WINDOWS_IN_EFFECT`].
    pub refused_over_limit: u64,
    /// Marks by check key, sorted.
    pub marks: Vec<(String, MaintenanceMark)>,
    /// Suppressed resolutions by check key (sorted), oldest first.
    pub suppressed_resolutions: Vec<(String, Vec<Timestamp>)>,
}

/// The maintenance state of one cluster's findings.
#[derive(Clone, Debug)]
pub(super) struct ClusterMaintenance {
    suppresses_incidents: bool,
    suppresses_flaps: bool,
    /// The windows in effect, in scheduling order.
    windows: Vec<Window>,
    refused_over_limit: u64,
    /// Marks of covered active findings, by finding index.
    marks: BTreeMap<u32, MaintenanceMark>,
    /// Resolutions by a finding's own source that were not counted towards flapping, by check
    /// key, oldest first; forgotten after [`MAX_FLAP_WINDOW_SECS`].
    suppressed_resolutions: BTreeMap<Box<str>, Vec<Timestamp>>,
    /// Scratch of the event being applied: the windows open at its time (indices into
    /// `windows`).
    open_now: Vec<u32>,
    /// Scratch of the event being applied: findings released to automatic incidents.
    released: Vec<u32>,
}

impl Default for ClusterMaintenance {
    fn default() -> Self {
        Self {
            suppresses_incidents: true,
            suppresses_flaps: true,
            windows: Vec::new(),
            refused_over_limit: 0,
            marks: BTreeMap::new(),
            suppressed_resolutions: BTreeMap::new(),
            open_now: Vec::new(),
            released: Vec::new(),
        }
    }
}

impl ClusterMaintenance {
    /// Applies the `maintenance_` fields of a `settings.changed`.
    pub(super) fn apply_settings(&mut self, change: &SettingsChanged) {
        if let Some(on) = change.maintenance_suppresses_incidents {
            self.suppresses_incidents = on;
        }
        if let Some(on) = change.maintenance_suppresses_flaps {
            self.suppresses_flaps = on;
        }
    }

    /// The windows open at `at` (the event's own scheduling changes apply from the next).
    fn find_open(&mut self, at: Timestamp) {
        self.open_now.clear();
        for (i, window) in self.windows.iter().enumerate() {
            if window.is_open_at(at) {
                self.open_now.push(i as u32);
            }
        }
    }

    pub(super) fn summary(&self) -> MaintenanceSummary {
        MaintenanceSummary {
            in_effect: self.windows.len() as u64,
            refused_over_limit: self.refused_over_limit,
            marked: self.marks.len() as u64,
        }
    }

    pub(super) fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The suppressed resolution times of `check_key`, oldest first.
    pub(super) fn suppressed_resolutions_of(&self, check_key: &str) -> &[Timestamp] {
        self.suppressed_resolutions
            .get(check_key)
            .map_or(&[], Vec::as_slice)
    }

    pub(super) fn snapshot(&self, findings: &[Finding]) -> MaintenanceSnapshot {
        let mut marks: Vec<(String, MaintenanceMark)> = self
            .marks
            .iter()
            .map(|(&i, mark)| (findings[i as usize].check_key.to_string(), mark.clone()))
            .collect();
        marks.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        MaintenanceSnapshot {
            suppresses_incidents: self.suppresses_incidents,
            suppresses_flaps: self.suppresses_flaps,
            windows: self.windows.iter().map(|w| w.snapshot().clone()).collect(),
            refused_over_limit: self.refused_over_limit,
            marks,
            suppressed_resolutions: self
                .suppressed_resolutions
                .iter()
                .map(|(key, times)| (key.to_string(), times.clone()))
                .collect(),
        }
    }

    /// The state a snapshot kept, but for the marks (keyed by check key: [`Self::restore_marks`]
    /// once the findings are back).
    pub(super) fn restore(saved: &MaintenanceSnapshot) -> Self {
        Self {
            suppresses_incidents: saved.suppresses_incidents,
            suppresses_flaps: saved.suppresses_flaps,
            windows: saved.windows.iter().cloned().map(Window::from).collect(),
            refused_over_limit: saved.refused_over_limit,
            marks: BTreeMap::new(),
            suppressed_resolutions: saved
                .suppressed_resolutions
                .iter()
                .map(|(key, times)| (key.as_str().into(), times.clone()))
                .collect(),
            open_now: Vec::new(),
            released: Vec::new(),
        }
    }
}

/// Removes from `times` (sorted) one time per time of `held_back` (sorted): the resolutions a
/// maintenance window held back from flap counting. One each, so that a counted resolution at
/// the same instant as a held-back one (two events at one clock time) stays counted.
pub(super) fn without_held_back(times: &mut Vec<Timestamp>, held_back: &[Timestamp]) {
    if held_back.is_empty() {
        return;
    }
    let mut held = held_back.iter().peekable();
    times.retain(|t| {
        while held.next_if(|h| *h < t).is_some() {}
        held.next_if(|h| *h == t).is_none()
    });
}

/// What a finding offers to windows' matchers.
fn subject_of(finding: &Finding) -> Subject<'_> {
    Subject {
        check_key: &finding.check_key,
        resource: finding.resource.as_deref(),
        alert: finding
            .alert
            .as_deref()
            .map(|a| (a.name.as_str(), &a.labels)),
    }
}

impl ClusterFindings {
    /// Before an event of the cluster at `at` (its clock): the windows open then; the findings
    /// released by the previous event are forgotten.
    pub(super) fn maintenance_before_event(&mut self, at: Timestamp) {
        if let Some(m) = self.maintenance.as_deref_mut() {
            m.released.clear();
            m.find_open(at);
        }
    }

    /// Whether a window open at the event being applied covers finding `index`.
    pub(super) fn is_covered(&self, index: u32) -> bool {
        let Some(m) = self.maintenance.as_deref() else {
            return false;
        };
        if m.open_now.is_empty() {
            return false;
        }
        let subject = subject_of(&self.findings[index as usize]);
        m.open_now
            .iter()
            .any(|&w| m.windows[w as usize].matches(&subject))
    }

    /// Whether the state change detector skips finding `index` at this event.
    pub(super) fn flaps_suppressed(&self, index: u32) -> bool {
        self.maintenance
            .as_deref()
            .is_some_and(|m| m.suppresses_flaps && !m.open_now.is_empty())
            && self.is_covered(index)
    }

    /// Finding `index` was touched by the event being applied at `at` (opened: `opened`; or
    /// seen, notified): marked when covered.
    pub(super) fn note_maintenance(&mut self, index: u32, at: Timestamp, opened: bool) {
        if self
            .maintenance
            .as_deref()
            .is_none_or(|m| m.open_now.is_empty())
        {
            return;
        }
        if !self.is_covered(index) {
            return;
        }
        let m = self.maintenance.as_deref_mut().expect("checked above");
        let defer = opened && m.suppresses_incidents;
        let mark = m.marks.entry(index).or_insert(MaintenanceMark {
            since: at,
            incident_deferred: false,
        });
        mark.incident_deferred |= defer;
    }

    /// A resolution of finding `index` at `at` by its own source: whether it counts towards
    /// flapping (not when the cluster suppresses flaps in maintenance and a window covers it;
    /// then it is remembered as suppressed).
    pub(super) fn resolution_counts(&mut self, index: u32, at: Timestamp) -> bool {
        if !self.flaps_suppressed(index) {
            return true;
        }
        let key = self.findings[index as usize].check_key.clone();
        let m = self.maintenance.as_deref_mut().expect("covered");
        m.suppressed_resolutions.entry(key).or_default().push(at);
        false
    }

    /// After an event of the cluster at `at`: marks of findings no longer active or covered
    /// leave, and a finding that waited for its window to end is released to automatic
    /// incidents; one-off windows that are over leave; suppressed resolutions older than the
    /// widest flap window are forgotten.
    pub(super) fn maintenance_after_event(&mut self, at: Timestamp) {
        let Some(m) = self.maintenance.as_deref_mut() else {
            return;
        };
        // The windows this event scheduled or cancelled count from here: a mark stays while a
        // window in effect for the next event covers it.
        m.find_open(at);
        let m = self.maintenance.as_deref().expect("checked above");
        let mut leaving: Vec<(u32, bool)> = Vec::new();
        for (&index, mark) in &m.marks {
            let finding = &self.findings[index as usize];
            if !finding.is_active() {
                leaving.push((index, false));
            } else if !self.is_covered(index) {
                leaving.push((index, mark.incident_deferred));
            }
        }
        let m = self.maintenance.as_deref_mut().expect("checked above");
        for (index, release) in leaving {
            m.marks.remove(&index);
            if release {
                m.released.push(index);
            }
        }
        m.windows.retain(|w| !w.is_over_at(at));
        let horizon = Timestamp::from_unix_nanos(
            at.unix_nanos()
                .saturating_sub((MAX_FLAP_WINDOW_SECS as i64).saturating_mul(1_000_000_000)),
        );
        m.suppressed_resolutions.retain(|_, times| {
            times.retain(|&t| t > horizon);
            !times.is_empty()
        });
    }

    /// Applies a `maintenance.scheduled` at `seq` (clock `at`): in effect from the next event.
    pub(super) fn apply_maintenance_scheduled(
        &mut self,
        seq: u64,
        at: Timestamp,
        data: &MaintenanceScheduled,
    ) {
        let m = self.maintenance.get_or_insert_with(Default::default);
        // Windows already over do not count towards the limit (the list is recomputed after
        // the event, before anything reads it again).
        m.windows
            .retain(|w| w.name() != data.window && !w.is_over_at(at));
        if m.windows.len() >= MAX_WINDOWS_IN_EFFECT {
            m.refused_over_limit += 1;
            return;
        }
        m.windows.push(Window::scheduled(data, seq, at));
    }

    /// Applies a `maintenance.cancelled`: the window's effect ends at this event, and what it
    /// alone covered is released at the end of it (as when a window ends).
    pub(super) fn apply_maintenance_cancelled(&mut self, cancel: &MaintenanceCancelled) {
        if let Some(m) = self.maintenance.as_deref_mut() {
            m.windows.retain(|w| w.name() != cancel.window);
        }
    }

    /// Restores the marks a snapshot kept, once the findings are back.
    pub(super) fn restore_marks(&mut self, saved: &MaintenanceSnapshot) {
        let indices: Vec<(u32, MaintenanceMark)> = saved
            .marks
            .iter()
            .filter_map(|(key, mark)| Some((self.index_of(key)?, mark.clone())))
            .collect();
        if let Some(m) = self.maintenance.as_deref_mut() {
            m.marks.extend(indices);
        }
    }

    /// Why `finding` (of this cluster) is quiet at the cluster's clock, if windows cover it.
    pub(super) fn in_maintenance(&self, finding: &Finding) -> Option<InMaintenance> {
        let m = self.maintenance.as_deref()?;
        let clock = self.clock?;
        let subject = subject_of(finding);
        let windows: Vec<String> = m
            .windows
            .iter()
            .filter(|w| w.is_open_at(clock) && w.matches(&subject))
            .map(|w| w.name().to_owned())
            .collect();
        if windows.is_empty() {
            return None;
        }
        let mark = self
            .index_of(&finding.check_key)
            .and_then(|index| m.marks.get(&index));
        Some(InMaintenance {
            windows,
            since: mark.map(|mark| mark.since),
            reference: clock,
            incident_deferred: mark.is_some_and(|mark| mark.incident_deferred),
        })
    }
}

impl FindingsProjection {
    /// The active findings of `cluster` the event just applied released to automatic incidents:
    /// they opened inside a window that no longer covers them.
    pub fn maintenance_released(&self, cluster: &str) -> Vec<&str> {
        let Some(c) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        let Some(m) = c.maintenance.as_deref() else {
            return Vec::new();
        };
        m.released
            .iter()
            .map(|&i| &*c.findings[i as usize].check_key)
            .collect()
    }

    /// Whether finding `check_key` of `cluster` waits for a maintenance window to end before it
    /// is offered to automatic incidents.
    pub fn incident_deferred(&self, cluster: &str, check_key: &str) -> bool {
        let Some(c) = self.clusters.get(cluster) else {
            return false;
        };
        let Some(m) = c.maintenance.as_deref() else {
            return false;
        };
        c.index_of(check_key)
            .and_then(|i| m.marks.get(&i))
            .is_some_and(|mark| mark.incident_deferred)
    }

    /// The windows of `book` (a cluster's, [`crate::maintenance::WindowBook`]) whose matchers
    /// match finding `check_key` of `cluster`, whenever they were in effect: the bands of its
    /// lane. None when the projection does not have the finding.
    pub fn book_windows_of<'b>(
        &self,
        cluster: &str,
        check_key: &str,
        book: &'b crate::maintenance::WindowBook,
    ) -> Vec<&'b crate::maintenance::BookEntry> {
        let Some(c) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        let Some(index) = c.index_of(check_key) else {
            return Vec::new();
        };
        let subject = subject_of(&c.findings[index as usize]);
        book.entries()
            .iter()
            .filter(|e| e.window.matches(&subject))
            .collect()
    }

    /// The windows in effect in `cluster` (in scheduling order) and what the fold counts.
    pub fn maintenance_windows(&self, cluster: &str) -> (Vec<Window>, MaintenanceSummary) {
        let Some(c) = self.clusters.get(cluster) else {
            return (Vec::new(), MaintenanceSummary::default());
        };
        match c.maintenance.as_deref() {
            Some(m) => (m.windows().to_vec(), m.summary()),
            None => (Vec::new(), MaintenanceSummary::default()),
        }
    }
}

/// How far ahead a window view looks for when it is open next or until when (7 days).
pub const MAINTENANCE_LOOKAHEAD_SECS: i64 = 7 * 86_400;

/// A maintenance window in effect, as `GET /v1/maintenance` and `tidemark maintenance` show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MaintenanceWindowView {
    /// The cluster it belongs to.
    pub cluster: String,
    /// Its name in the cluster.
    pub window: String,
    /// Who scheduled it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// What it covers (none given: the whole cluster).
    pub matchers: crate::event::MaintenanceMatchers,
    /// When it is open, as scheduled.
    pub schedule: crate::event::MaintenanceSchedule,
    /// The log position of the `maintenance.scheduled` that put it in effect.
    pub scheduled_seq: u64,
    /// The cluster's clock then.
    pub scheduled_at: Timestamp,
    /// The time it is judged at: the time asked for, else its cluster's clock.
    pub reference: Timestamp,
    /// Whether it is open at `reference`.
    pub open: bool,
    /// Open: until when (absent when that is more than 7 days after `reference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<Timestamp>,
    /// Closed: when it opens next within 7 days of `reference` (absent: not within them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_open: Option<Timestamp>,
}

impl MaintenanceWindowView {
    /// The view of `window` of `cluster` judged at `reference`.
    pub fn of(cluster: &str, window: &Window, reference: Timestamp) -> Self {
        let horizon = reference.plus_secs(MAINTENANCE_LOOKAHEAD_SECS);
        let first = window.open_intervals(reference, horizon).into_iter().next();
        let open = window.is_open_at(reference);
        let (open_until, next_open) = match first {
            Some((start, end)) if open && start == reference => {
                ((end < horizon).then_some(end), None)
            }
            Some((start, _)) if !open => (None, Some(start)),
            _ => (None, None),
        };
        let data = window.data();
        Self {
            cluster: cluster.to_owned(),
            window: data.window.clone(),
            by: data.by.clone(),
            reason: data.reason.clone(),
            matchers: data.matchers.clone(),
            schedule: data.schedule.clone(),
            scheduled_seq: window.scheduled_seq(),
            scheduled_at: window.scheduled_at(),
            reference,
            open,
            open_until,
            next_open,
        }
    }
}

/// What the fold counts of one cluster's maintenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterMaintenanceView {
    /// The cluster.
    pub cluster: String,
    /// Its counts.
    #[serde(flatten)]
    pub summary: MaintenanceSummary,
    /// `maintenance_suppresses_incidents` in force.
    pub suppresses_incidents: bool,
    /// `maintenance_suppresses_flaps` in force.
    pub suppresses_flaps: bool,
}

impl FindingsProjection {
    /// The windows in effect in `cluster` (or every cluster), by (cluster, scheduling order),
    /// judged at `reference` (else each cluster's clock): only those open then when
    /// `only_open`; at most `limit`, and whether more were left out. With them, each cluster's
    /// counts (clusters that never saw a window or a maintenance setting are left out).
    pub fn maintenance_page(
        &self,
        cluster: Option<&str>,
        reference: Option<Timestamp>,
        only_open: bool,
        limit: usize,
    ) -> (
        Vec<MaintenanceWindowView>,
        bool,
        Vec<ClusterMaintenanceView>,
    ) {
        let mut views = Vec::new();
        let mut clusters = Vec::new();
        let mut truncated = false;
        for (name, c) in self.clusters_matching(cluster) {
            let Some(m) = c.maintenance.as_deref() else {
                continue;
            };
            clusters.push(ClusterMaintenanceView {
                cluster: name.clone(),
                summary: m.summary(),
                suppresses_incidents: m.suppresses_incidents,
                suppresses_flaps: m.suppresses_flaps,
            });
            let Some(at) = reference.or(c.clock) else {
                continue;
            };
            for window in &m.windows {
                if only_open && !window.is_open_at(at) {
                    continue;
                }
                if views.len() == limit {
                    truncated = true;
                    break;
                }
                views.push(MaintenanceWindowView::of(name, window, at));
            }
        }
        (views, truncated, clusters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    /// One held-back time removes one resolution at that instant, never two: a counted
    /// resolution at the same clock time as a held-back one stays counted.
    #[test]
    fn held_back_resolutions_are_removed_one_for_one() {
        let mut times = vec![t(1), t(5), t(5), t(9)];
        without_held_back(&mut times, &[t(5)]);
        assert_eq!(times, [t(1), t(5), t(9)]);
        let mut times = vec![t(1), t(5), t(9)];
        without_held_back(&mut times, &[t(0), t(1), t(7), t(9), t(12)]);
        assert_eq!(times, [t(5)]);
        let mut times = vec![t(3)];
        without_held_back(&mut times, &[]);
        assert_eq!(times, [t(3)]);
    }
}
