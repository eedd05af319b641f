//! Maintenance windows (ADR 0007, "Maintenance windows"): when a window is open, what it covers,
//! and from which position of the log it is in effect.
//!
//! A `maintenance.scheduled` event carries either a start and an end or a recurrence in
//! Alertmanager's `time_intervals` form; [`time_intervals`] parses that form and answers, for an
//! instant, whether it falls inside; [`windows`] matches findings and alerts and keeps the book
//! of a cluster's windows. Time zones come from the IANA database release embedded in the
//! pinned `chrono-tz` ([`TZDB_VERSION`]): a new release can change what a replay answers.

pub mod time_intervals;
pub mod windows;

pub use time_intervals::{
    IntervalError, IntervalField, IntervalProblem, TZDB_VERSION, TimeIntervalRule,
    TimeIntervalSpec, TimeRangeSpec, any_contains,
};
pub use windows::{
    BookEntry, MAX_INTERVAL_RANGE_MINUTES, MAX_INTERVALS_PER_WINDOW, MAX_WINDOWS_IN_EFFECT,
    MaintenanceSummary, Subject, Window, WindowBook, WindowEnd, WindowSnapshot, glob_matches,
    matchers_match,
};
