//! Maintenance windows (ADR 0007, "Maintenance windows"): when a window covers an instant.
//!
//! A `maintenance.scheduled` event will carry either a start and an end or a recurrence in
//! Alertmanager's `time_intervals` form; [`time_intervals`] parses that form and answers, for an
//! instant, whether it falls inside. Time zones come from the IANA database release embedded in
//! the pinned `chrono-tz` ([`TZDB_VERSION`]): a new release can change what a replay answers.

pub mod time_intervals;

pub use time_intervals::{
    IntervalError, IntervalField, IntervalProblem, TZDB_VERSION, TimeIntervalRule,
    TimeIntervalSpec, TimeRangeSpec, any_contains,
};
