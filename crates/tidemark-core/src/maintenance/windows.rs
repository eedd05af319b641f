//! Maintenance windows as the log states them: what a window covers (its matchers), when it is
//! open (once, or a `time_intervals` recurrence), and from which position of the log it is in
//! effect until which (ADR 0007, "Maintenance windows").
//!
//! A window is in effect for the events after the `maintenance.scheduled` that named it, up to
//! the `maintenance.cancelled` or the next `maintenance.scheduled` of the same name in its
//! cluster: never backdated. An event at log position `seq` and time `t` of a cluster is inside
//! a window when the window is in effect at `seq` and open at `t`; a finding or an alert is
//! covered when, in addition, the window's matchers match it. The fold keeps the windows in
//! effect ([`crate::findings`]); reads rebuild every window of a cluster from its maintenance
//! events ([`WindowBook`]), so a past window costs what the maintenance events cost, not the log.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{
    Alert, Event, MaintenanceCancelled, MaintenanceMatchers, MaintenanceSchedule,
    MaintenanceScheduled, Payload, ResourceRef,
};
use crate::timestamp::Timestamp;

use super::time_intervals::{TimeIntervalRule, any_contains};

/// The most windows in effect at once in one cluster. A window scheduled beyond it is recorded
/// (the log keeps its event) but not in effect, and counted ([`MaintenanceSummary`]).
pub const MAX_WINDOWS_IN_EFFECT: usize = 1_000;

/// The most open intervals [`Window::open_intervals`] returns for one window (the bands of a
/// lane): a recurrence over a long range is cut there.
pub const MAX_INTERVALS_PER_WINDOW: usize = 500;

/// The longest range, in minutes, over which a recurrence's open intervals are computed (31
/// days): a lane wider than that shows the first 31 days' bands.
pub const MAX_INTERVAL_RANGE_MINUTES: i64 = 31 * 24 * 60;

/// What a finding or an alert offers to a window's matchers.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Its check key.
    pub check_key: &'a str,
    /// Its resource, if any.
    pub resource: Option<&'a ResourceRef>,
    /// An alert's name and labels; `None` for a probe's finding.
    pub alert: Option<(&'a str, &'a BTreeMap<String, String>)>,
}

impl<'a> Subject<'a> {
    /// An alert notification as a subject (before it is a finding).
    pub fn of_alert(
        check_key: &'a str,
        alert: &'a Alert,
        resource: Option<&'a ResourceRef>,
    ) -> Self {
        Self {
            check_key,
            resource,
            alert: Some((&alert.name, &alert.labels)),
        }
    }

    fn label(&self, name: &str) -> Option<&'a str> {
        self.alert
            .and_then(|(_, labels)| labels.get(name))
            .map(String::as_str)
    }
}

/// Whether `matchers` match `subject`: every matcher given must; none given match everything.
pub fn matchers_match(matchers: &MaintenanceMatchers, subject: &Subject<'_>) -> bool {
    if let Some(namespace) = &matchers.namespace {
        let of_resource = subject
            .resource
            .and_then(|r| r.namespace.as_deref())
            .is_some_and(|ns| ns == namespace);
        if !of_resource && subject.label("namespace") != Some(namespace.as_str()) {
            return false;
        }
    }
    if let Some(service) = &matchers.service {
        let of_resource = subject.resource.is_some_and(|r| {
            r.name == *service || crate::hygiene::stable_name(&r.name) == service.as_str()
        });
        let of_labels = ["service", "job"]
            .iter()
            .any(|label| subject.label(label) == Some(service.as_str()));
        if !of_resource && !of_labels {
            return false;
        }
    }
    if let Some(name) = &matchers.alert_name
        && subject
            .alert
            .is_none_or(|(alert_name, _)| alert_name != name)
    {
        return false;
    }
    if let Some(pattern) = &matchers.check_key
        && !glob_matches(pattern, subject.check_key)
    {
        return false;
    }
    matchers
        .labels
        .iter()
        .all(|(name, value)| subject.label(name) == Some(value.as_str()))
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included)
/// and every other character itself. Linear in the pattern times the text, with no recursion.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, at)) = backtrack {
            p = star + 1;
            t = at + 1;
            backtrack = Some((star, at + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// A window as scheduled, in effect from `scheduled_seq` on (the fold's state, and each entry
/// of a [`WindowBook`]). Serialized as scheduled; its parsed recurrence is rebuilt on read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "WindowSnapshot", into = "WindowSnapshot")]
pub struct Window {
    scheduled: WindowSnapshot,
    rules: Vec<TimeIntervalRule>,
}

/// A window's stored form: the event's data and where the log scheduled it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSnapshot {
    /// The `maintenance.scheduled` event's data.
    pub data: MaintenanceScheduled,
    /// Its log position.
    pub scheduled_seq: u64,
    /// The cluster's clock then.
    pub scheduled_at: Timestamp,
}

impl From<WindowSnapshot> for Window {
    fn from(scheduled: WindowSnapshot) -> Self {
        let rules = match &scheduled.data.schedule {
            MaintenanceSchedule::Once(_) => Vec::new(),
            // The decoder refused every spec that does not parse; a stored one parses.
            MaintenanceSchedule::TimeIntervals(specs) => {
                specs.iter().filter_map(|spec| spec.parse().ok()).collect()
            }
        };
        Self { scheduled, rules }
    }
}

impl From<Window> for WindowSnapshot {
    fn from(window: Window) -> Self {
        window.scheduled
    }
}

impl Window {
    /// The window a `maintenance.scheduled` at `seq` (the cluster's clock then: `at`) names.
    pub fn scheduled(data: &MaintenanceScheduled, seq: u64, at: Timestamp) -> Self {
        WindowSnapshot {
            data: data.clone(),
            scheduled_seq: seq,
            scheduled_at: at,
        }
        .into()
    }

    /// Its name in its cluster.
    pub fn name(&self) -> &str {
        &self.scheduled.data.window
    }

    /// Its stored form.
    pub fn snapshot(&self) -> &WindowSnapshot {
        &self.scheduled
    }

    /// The event's data.
    pub fn data(&self) -> &MaintenanceScheduled {
        &self.scheduled.data
    }

    /// The log position of the `maintenance.scheduled` that named it.
    pub fn scheduled_seq(&self) -> u64 {
        self.scheduled.scheduled_seq
    }

    /// The cluster's clock when it was scheduled.
    pub fn scheduled_at(&self) -> Timestamp {
        self.scheduled.scheduled_at
    }

    /// Whether the window is open at `at` (whatever it covers).
    pub fn is_open_at(&self, at: Timestamp) -> bool {
        match &self.scheduled.data.schedule {
            MaintenanceSchedule::Once(span) => span.starts_at <= at && at < span.ends_at,
            MaintenanceSchedule::TimeIntervals(_) => any_contains(&self.rules, at),
        }
    }

    /// Whether the window will never be open at `clock` or later (a one-off window that ended).
    pub fn is_over_at(&self, clock: Timestamp) -> bool {
        match &self.scheduled.data.schedule {
            MaintenanceSchedule::Once(span) => span.ends_at <= clock,
            MaintenanceSchedule::TimeIntervals(_) => false,
        }
    }

    /// Whether it covers `subject` (when open).
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        matchers_match(&self.scheduled.data.matchers, subject)
    }

    /// The intervals in which the window is open within `[from, to)`, each clipped to it, at
    /// most [`MAX_INTERVALS_PER_WINDOW`]; a recurrence is read minute by minute (its fields are
    /// whole minutes of civil time) over at most [`MAX_INTERVAL_RANGE_MINUTES`], skipping whole
    /// civil days that no spec's day fields match.
    pub fn open_intervals(&self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        if to <= from {
            return Vec::new();
        }
        match &self.scheduled.data.schedule {
            MaintenanceSchedule::Once(span) => {
                let start = span.starts_at.max(from);
                let end = span.ends_at.min(to);
                if start < end {
                    vec![(start, end)]
                } else {
                    Vec::new()
                }
            }
            MaintenanceSchedule::TimeIntervals(_) => {
                const MINUTE: i64 = 60_000_000_000;
                let first = from.unix_nanos().div_euclid(MINUTE);
                let last = (to.unix_nanos() - 1).div_euclid(MINUTE);
                let last = last.min(first + MAX_INTERVAL_RANGE_MINUTES - 1);
                let mut out: Vec<(Timestamp, Timestamp)> = Vec::new();
                let mut open_since: Option<Timestamp> = None;
                let mut minute = first;
                while minute <= last {
                    let start = Timestamp::from_unix_nanos(minute.saturating_mul(MINUTE));
                    let open = any_contains(&self.rules, start);
                    // A civil day that no spec's day fields match (in its own zone) is skipped
                    // whole: to the earliest next day of any spec, on the minute grid.
                    let next = if open {
                        minute + 1
                    } else {
                        self.rules
                            .iter()
                            .map(|rule| rule.next_day_if_excluded(start))
                            .try_fold(i64::MAX, |earliest, next| {
                                next.map(|t| earliest.min(t.unix_nanos().div_euclid(MINUTE)))
                            })
                            .map_or(minute + 1, |skip| skip.max(minute + 1))
                    };
                    match (open, open_since) {
                        (true, None) => open_since = Some(start.max(from)),
                        (false, Some(since)) => {
                            out.push((since, start));
                            open_since = None;
                            if out.len() == MAX_INTERVALS_PER_WINDOW {
                                return out;
                            }
                        }
                        _ => {}
                    }
                    minute = next;
                }
                if let Some(since) = open_since {
                    let end = Timestamp::from_unix_nanos((last + 1).saturating_mul(MINUTE)).min(to);
                    out.push((since, end));
                }
                out
            }
        }
    }
}

/// How a window's effect ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum WindowEnd {
    /// A `maintenance.cancelled` named it.
    Cancelled {
        /// Who cancelled it.
        by: String,
        /// Why, if said.
        reason: Option<String>,
    },
    /// A later `maintenance.scheduled` of the same name replaced it.
    Replaced,
}

/// One window of a cluster as the log tells it: scheduled, and perhaps ended.
#[derive(Clone, Debug, PartialEq)]
pub struct BookEntry {
    /// The window.
    pub window: Window,
    /// The event time of its `maintenance.scheduled`.
    pub scheduled_event_time: Timestamp,
    /// Where its effect ended: position, event time, and how.
    pub ended: Option<(u64, Timestamp, WindowEnd)>,
}

impl BookEntry {
    /// Whether it was in effect at log position `seq`.
    pub fn in_effect_at_seq(&self, seq: u64) -> bool {
        self.window.scheduled_seq() < seq
            && self.ended.as_ref().is_none_or(|(end, _, _)| seq < *end)
    }

    /// Whether it was in effect at time `at` by its events' times: scheduled at or before `at`,
    /// not yet ended at `at`.
    pub fn in_effect_at_time(&self, at: Timestamp) -> bool {
        self.scheduled_event_time <= at && self.ended.as_ref().is_none_or(|(_, end, _)| at < *end)
    }
}

/// Every window of one cluster, in the order its maintenance events scheduled them, read from
/// those events alone (`GET /v1/maintenance`, the lanes' bands, postmortems).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowBook {
    entries: Vec<BookEntry>,
}

impl WindowBook {
    /// The book of a cluster's maintenance events, `(seq, event)` in log order (other events
    /// are skipped). The clock of a window's scheduling is taken as its event's time.
    pub fn from_events<'a>(events: impl IntoIterator<Item = (u64, &'a Event)>) -> Self {
        let mut book = Self::default();
        for (seq, event) in events {
            book.apply(seq, event);
        }
        book
    }

    /// Applies one event at `seq`.
    pub fn apply(&mut self, seq: u64, event: &Event) {
        match &event.payload {
            Payload::MaintenanceScheduled(data) => {
                self.end(&data.window, seq, event.time, WindowEnd::Replaced);
                self.entries.push(BookEntry {
                    window: Window::scheduled(data, seq, event.time),
                    scheduled_event_time: event.time,
                    ended: None,
                });
            }
            Payload::MaintenanceCancelled(MaintenanceCancelled { window, by, reason }) => {
                let how = WindowEnd::Cancelled {
                    by: by.clone(),
                    reason: reason.clone(),
                };
                self.end(window, seq, event.time, how);
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str, seq: u64, at: Timestamp, how: WindowEnd) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .rev()
            .find(|e| e.window.name() == name && e.ended.is_none())
        {
            entry.ended = Some((seq, at, how));
        }
    }

    /// Every entry, in scheduling order.
    pub fn entries(&self) -> &[BookEntry] {
        &self.entries
    }

    /// The windows in effect at `seq` that cover `subject` at time `at`: why a finding was
    /// quiet then.
    pub fn covering(&self, seq: u64, at: Timestamp, subject: &Subject<'_>) -> Vec<&BookEntry> {
        self.entries
            .iter()
            .filter(|e| {
                e.in_effect_at_seq(seq) && e.window.is_open_at(at) && e.window.matches(subject)
            })
            .collect()
    }

    /// The entries in effect at some time of `[from, to)` and open then, with their open
    /// intervals clipped to the range (the bands of a lane, the windows a postmortem names).
    pub fn overlapping(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(&BookEntry, Vec<(Timestamp, Timestamp)>)> {
        self.entries
            .iter()
            .filter_map(|e| {
                let start = from.max(e.scheduled_event_time);
                let end = e.ended.as_ref().map_or(to, |(_, at, _)| to.min(*at));
                let intervals = e.window.open_intervals(start, end);
                (!intervals.is_empty()).then_some((e, intervals))
            })
            .collect()
    }
}

/// What `GET /v1/maintenance` counts of a cluster's windows in the fold's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MaintenanceSummary {
    /// Windows in effect now.
    pub in_effect: u64,
    /// Windows scheduled while [`MAX_WINDOWS_IN_EFFECT`] were in effect: recorded in the log,
    /// never in effect.
    pub refused_over_limit: u64,
    /// Findings and alerts marked `in_maintenance` now.
    pub marked: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MaintenanceSpan, TimeIntervalSpec};

    fn window(schedule: MaintenanceSchedule) -> Window {
        let data = MaintenanceScheduled {
            window: "w".into(),
            by: "b".into(),
            reason: "r".into(),
            matchers: MaintenanceMatchers::default(),
            schedule,
        };
        Window::scheduled(&data, 1, Timestamp::from_unix_nanos(0))
    }

    /// Open intervals are read over any range a timestamp can hold, to its very ends, without
    /// overflowing; a recurrence that always matches is one interval clipped to the range.
    #[test]
    fn open_intervals_hold_at_the_ends_of_time() {
        let always = window(MaintenanceSchedule::TimeIntervals(vec![
            TimeIntervalSpec::default(),
        ]));
        let hour = 3_600 * 1_000_000_000_i64;
        for (from, to) in [
            (i64::MAX - hour, i64::MAX),
            (i64::MIN, i64::MIN + hour),
            (-hour, hour),
        ] {
            let (from, to) = (
                Timestamp::from_unix_nanos(from),
                Timestamp::from_unix_nanos(to),
            );
            assert_eq!(always.open_intervals(from, to), vec![(from, to)]);
        }
        let once = window(MaintenanceSchedule::Once(MaintenanceSpan {
            starts_at: Timestamp::from_unix_nanos(i64::MIN),
            ends_at: Timestamp::from_unix_nanos(i64::MAX),
        }));
        let (from, to) = (Timestamp::from_unix_nanos(5), Timestamp::from_unix_nanos(9));
        assert_eq!(once.open_intervals(from, to), vec![(from, to)]);
        assert!(once.open_intervals(to, from).is_empty());
    }

    /// The open intervals minute by minute, skipping nothing: what the day skipping of
    /// `open_intervals` must equal.
    fn naive_intervals(
        window: &Window,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        const MINUTE: i64 = 60_000_000_000;
        let mut out = Vec::new();
        let mut since: Option<Timestamp> = None;
        let first = from.unix_nanos().div_euclid(MINUTE);
        let last = (to.unix_nanos() - 1)
            .div_euclid(MINUTE)
            .min(first + MAX_INTERVAL_RANGE_MINUTES - 1);
        for minute in first..=last {
            let start = Timestamp::from_unix_nanos(minute * MINUTE);
            match (window.is_open_at(start), since) {
                (true, None) => since = Some(start.max(from)),
                (false, Some(s)) => {
                    out.push((s, start));
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = since {
            out.push((s, Timestamp::from_unix_nanos((last + 1) * MINUTE).min(to)));
        }
        out
    }

    /// Skipping the civil days no spec matches changes no interval: zones with half- and
    /// quarter-hour offsets, both DST changes of a year, negative days of the month, several
    /// specs in different zones.
    #[test]
    fn skipping_excluded_days_gives_the_minute_by_minute_intervals() {
        let spec = |times: Option<(&str, &str)>,
                    weekdays: &[&str],
                    days: &[&str],
                    months: &[&str],
                    location: &str| {
            TimeIntervalSpec {
                times: times.map(|(a, b)| {
                    vec![crate::event::TimeRangeSpec {
                        start_time: a.into(),
                        end_time: b.into(),
                    }]
                }),
                weekdays: (!weekdays.is_empty())
                    .then(|| weekdays.iter().map(|w| (*w).to_owned()).collect()),
                days_of_month: (!days.is_empty())
                    .then(|| days.iter().map(|d| (*d).to_owned()).collect()),
                months: (!months.is_empty())
                    .then(|| months.iter().map(|m| (*m).to_owned()).collect()),
                years: None,
                location: Some(location.to_owned()),
            }
        };
        let cases = vec![
            vec![spec(
                None,
                &["saturday", "sunday"],
                &[],
                &[],
                "Asia/Kathmandu",
            )],
            vec![spec(
                Some(("01:30", "03:15")),
                &[],
                &["-1", "1:2"],
                &[],
                "America/St_Johns",
            )],
            vec![spec(
                Some(("02:00", "03:00")),
                &["sunday"],
                &[],
                &["march", "october"],
                "Europe/Berlin",
            )],
            vec![
                spec(
                    Some(("22:00", "24:00")),
                    &["friday"],
                    &[],
                    &[],
                    "Australia/Lord_Howe",
                ),
                spec(None, &[], &["15"], &[], "Pacific/Chatham"),
            ],
            vec![spec(
                Some(("00:00", "00:01")),
                &["monday:friday"],
                &[],
                &["december:december"],
                "UTC",
            )],
        ];
        // 2026-02-20 to 2026-04-20 and 2026-09-20 to 2026-11-20: both Berlin DST changes.
        let ranges = [
            (1_771_545_600_000_000_000_i64, 1_776_643_200_000_000_000_i64),
            (1_789_862_400_000_000_000, 1_795_132_800_000_000_000),
        ];
        for specs in cases {
            let w = window(MaintenanceSchedule::TimeIntervals(specs.clone()));
            for (from, to) in ranges {
                // Off the minute grid on purpose.
                let (from, to) = (
                    Timestamp::from_unix_nanos(from + 7_000_000_123),
                    Timestamp::from_unix_nanos(to - 3),
                );
                assert_eq!(
                    w.open_intervals(from, to),
                    naive_intervals(&w, from, to),
                    "{specs:?}"
                );
            }
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_matches("pods:payments/*", "pods:payments/api-1"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(glob_matches(
            "alert:KubePod*:*",
            "alert:KubePodCrashLooping:5b15"
        ));
        assert!(!glob_matches("pods:payments/*", "pods:checkout/api"));
        assert!(!glob_matches("a*b", "a-b-c"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
    }
}
