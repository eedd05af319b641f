//! Alertmanager's `time_intervals`: the validation and a pure evaluator of their wire form
//! (`crate::event::TimeIntervalSpec`, part of the wire contract).
//!
//! A recurring maintenance window is written as Alertmanager users already write a
//! `time_interval_spec` (Alertmanager's `timeinterval/timeinterval.go` and the `<time_interval>`
//! section of its `docs/configuration.md`):
//!
//! ```yaml
//! times: [{start_time: "22:00", end_time: "24:00"}]   # start inclusive, end exclusive
//! weekdays: ["monday:friday", "sunday"]                # ranges `a:b` are inclusive
//! days_of_month: ["1:5", "-3:-1"]                      # negative counts from the month's end
//! months: ["january:march", "12"]                      # names (any case) or 1 to 12
//! years: ["2020:2022"]
//! location: "Europe/Berlin"                            # an IANA zone; UTC when absent
//! ```
//!
//! Within a field one element must match, every field given must match, and an absent field
//! matches everything; a list of specs matches when any of them does ([`any_contains`]). Every
//! field is read in the location's civil time: a 02:00–03:00 window is empty on a day whose
//! clocks spring from 02:00 to 03:00, and is open twice on a day they fall back.
//!
//! [`TimeIntervalSpec::parse`] applies Alertmanager's validation, with three deliberate
//! differences, each refusing a spec Alertmanager would take: `"Local"` (the machine's zone:
//! a replay elsewhere would answer differently), an empty list (Alertmanager's code then matches
//! nothing while its documentation says an empty list matches everything: leave the field out
//! instead), and a month number outside 1 to 12 (Alertmanager never checks it).
//!
//! Nothing here reads the clock or the machine's zone files: zones come from the IANA release
//! embedded in the pinned `chrono-tz`, named by [`TZDB_VERSION`].

use std::fmt;

use chrono::{DateTime, Datelike, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::timestamp::Timestamp;

/// The IANA time zone database release that zones are read with (embedded in the pinned
/// `chrono-tz`). A new release can move an offset or a DST rule, and so what a replay answers.
pub const TZDB_VERSION: &str = chrono_tz::IANA_TZDB_VERSION;

/// Minutes in a day: `24:00`, the exclusive end of the last range of a day.
const MINUTES_PER_DAY: u16 = 24 * 60;

// ---------------------------------------------------------------------------------------------
// Wire form

// The wire form (`TimeIntervalSpec`, `TimeRangeSpec`) is the wire contract's: `crate::event`.
pub use crate::event::{TimeIntervalSpec, TimeRangeSpec};

// ---------------------------------------------------------------------------------------------
// Errors

/// A field of a [`TimeIntervalSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntervalField {
    Times,
    Weekdays,
    DaysOfMonth,
    Months,
    Years,
    Location,
}

impl IntervalField {
    /// The field's wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Times => "times",
            Self::Weekdays => "weekdays",
            Self::DaysOfMonth => "days_of_month",
            Self::Months => "months",
            Self::Years => "years",
            Self::Location => "location",
        }
    }

    /// What one element of the field names, for messages.
    const fn noun(self) -> &'static str {
        match self {
            Self::Times => "time of day",
            Self::Weekdays => "weekday",
            Self::DaysOfMonth => "day of the month",
            Self::Months => "month",
            Self::Years => "year",
            Self::Location => "location",
        }
    }
}

impl fmt::Display for IntervalField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with an element (or a field) of a [`TimeIntervalSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntervalProblem {
    /// The list is present but empty.
    EmptyList,
    /// `start_time` or `end_time` is the empty string.
    MissingTime,
    /// Not `HH:MM` from `00:00` to `23:59`, nor `24:00`.
    NotATime,
    /// `start_time` is not before `end_time`.
    EmptyTimeRange {
        start_time: String,
        end_time: String,
    },
    /// More than one `:`.
    NotARange,
    /// A side of the element (`member`, as written) is not a value of the field.
    NotAValue { member: String },
    /// The range ends before it starts.
    Reversed,
    /// A day-of-month range from a negative day (from the month's end) to a positive one.
    NegativeStartPositiveEnd,
    /// `"Local"`: the machine's own zone.
    LocalZone,
    /// Not a zone of the embedded IANA database.
    UnknownZone,
}

/// Why a [`TimeIntervalSpec`] was refused: the field, the element (its index and text) and what
/// to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct IntervalError {
    /// The field the problem is in.
    pub field: IntervalField,
    /// The element's index in the field's list (none for `location` and an empty list).
    pub index: Option<usize>,
    /// `start_time` or `end_time` for a problem with one side of a `times` element.
    pub part: Option<&'static str>,
    /// The text of the element (or of the side of a `times` element) as written.
    pub value: Option<String>,
    /// What is wrong with it.
    pub problem: IntervalProblem,
}

impl IntervalError {
    fn element(field: IntervalField, index: usize, value: &str, problem: IntervalProblem) -> Self {
        Self {
            field,
            index: Some(index),
            part: None,
            value: Some(value.to_owned()),
            problem,
        }
    }

    fn not_a_value(field: IntervalField, index: usize, value: &str, member: &str) -> Self {
        let member = member.to_owned();
        Self::element(field, index, value, IntervalProblem::NotAValue { member })
    }

    /// What to write instead of a value that is not one of the field's.
    fn valid_values(&self) -> String {
        match self.field {
            IntervalField::Weekdays => {
                "use sunday, monday, tuesday, wednesday, thursday, friday or \
                 saturday (any case; numbers are not weekdays)"
                    .to_owned()
            }
            IntervalField::DaysOfMonth => "use 1 to 31 or -31 to -1".to_owned(),
            IntervalField::Months => "use january to december (any case) or 1 to 12".to_owned(),
            IntervalField::Years => "use a whole number such as 2026".to_owned(),
            IntervalField::Times | IntervalField::Location => String::new(),
        }
    }

    /// The advice for a range that ends before it starts, by field.
    fn reversed_advice(&self) -> &'static str {
        match self.field {
            IntervalField::Weekdays => {
                "ends before it starts: weeks run from sunday to saturday and a range cannot wrap \
                 past saturday: split it, e.g. \"friday:saturday\" and \"sunday:monday\""
            }
            IntervalField::Months => {
                "ends before it starts: a range cannot wrap past december: split it, e.g. \
                 \"november:december\" and \"january:february\""
            }
            IntervalField::DaysOfMonth => {
                "ends before it starts in a month of 28 days (a negative day counts from the \
                 month's end): write the earlier day first, e.g. \"1:-1\" or \"-7:-1\""
            }
            IntervalField::Times | IntervalField::Years | IntervalField::Location => {
                "ends before it starts: write the earlier one first"
            }
        }
    }
}

impl fmt::Display for IntervalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field.as_str())?;
        if let Some(index) = self.index {
            write!(f, "[{index}]")?;
        }
        if let Some(part) = self.part {
            write!(f, ".{part}")?;
        }
        f.write_str(": ")?;
        if let Some(value) = &self.value {
            write!(f, "{value:?}")?;
        }
        match &self.problem {
            IntervalProblem::EmptyList => write!(
                f,
                "is an empty list, which would match nothing: leave the field out to match \
                 every {}, or give at least one element",
                self.field.noun()
            ),
            IntervalProblem::MissingTime => {
                f.write_str(" is empty: give both start_time and end_time as HH:MM")
            }
            IntervalProblem::NotATime => f.write_str(
                " is not a time of day: write HH:MM from 00:00 to 23:59, or 24:00 for the end \
                 of the day",
            ),
            IntervalProblem::EmptyTimeRange {
                start_time,
                end_time,
            } => write!(
                f,
                "start_time {start_time:?} is not before end_time {end_time:?}: the end is \
                 exclusive, and a range cannot wrap past midnight: split it, e.g. 22:00 to 24:00 \
                 and 00:00 to 06:00"
            ),
            IntervalProblem::NotARange => f.write_str(
                " is not a value or a range: write one value, or two joined by one colon \
                 (\"first:last\")",
            ),
            IntervalProblem::NotAValue { member } => {
                if self.value.as_deref() != Some(member.as_str()) {
                    write!(f, ": {member:?}")?;
                }
                write!(
                    f,
                    " is not a {}: {}",
                    self.field.noun(),
                    self.valid_values()
                )
            }
            IntervalProblem::Reversed => write!(f, " {}", self.reversed_advice()),
            IntervalProblem::NegativeStartPositiveEnd => f.write_str(
                " starts counting from the month's end but ends counting from its start: make \
                 the end negative too (e.g. \"-7:-1\"), or both positive",
            ),
            IntervalProblem::LocalZone => f.write_str(
                " is the time zone of the machine Tidemark runs on, so a replay elsewhere would \
                 answer differently: name an IANA zone such as \"Europe/Berlin\", or \"UTC\"",
            ),
            IntervalProblem::UnknownZone => write!(
                f,
                " is not a zone of the IANA time zone database (release {TZDB_VERSION}): name \
                 one such as \"Europe/Berlin\" or \"UTC\" (names are case-sensitive)"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsed rule

/// An inclusive range of values of one field (`first <= last`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span<T> {
    first: T,
    last: T,
}

/// A range of minutes of the day, `start` inclusive, `end` exclusive (`start < end <= 1440`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MinuteRange {
    start: u16,
    end: u16,
}

/// A parsed, validated [`TimeIntervalSpec`]: cheap to evaluate with [`contains`](Self::contains).
#[derive(Clone, Debug, PartialEq)]
pub struct TimeIntervalRule {
    times: Option<Vec<MinuteRange>>,
    /// 0 = sunday … 6 = saturday.
    weekdays: Option<Vec<Span<u8>>>,
    /// 1..=31 or -31..=-1, never 0.
    days_of_month: Option<Vec<Span<i8>>>,
    /// 1 = january … 12 = december.
    months: Option<Vec<Span<u8>>>,
    years: Option<Vec<Span<i64>>>,
    zone: Tz,
}

impl TimeIntervalSpec {
    /// Validates the spec as Alertmanager does (see the module documentation for the three
    /// refusals it adds) and parses it into a rule.
    pub fn parse(&self) -> Result<TimeIntervalRule, IntervalError> {
        Ok(TimeIntervalRule {
            times: parse_list(IntervalField::Times, &self.times, parse_time_range)?,
            weekdays: parse_list(
                IntervalField::Weekdays,
                &self.weekdays,
                text(parse_weekdays),
            )?,
            days_of_month: parse_list(
                IntervalField::DaysOfMonth,
                &self.days_of_month,
                text(parse_days),
            )?,
            months: parse_list(IntervalField::Months, &self.months, text(parse_months))?,
            years: parse_list(IntervalField::Years, &self.years, text(parse_years))?,
            zone: parse_location(self.location.as_deref())?,
        })
    }
}

impl TimeIntervalRule {
    /// Whether `at` falls inside the interval, read in the rule's location's civil time.
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = DateTime::from_timestamp_nanos(at.unix_nanos()).with_timezone(&self.zone);
        // At most 1439: hour() < 24 and minute() < 60 (a leap second is never produced here).
        let minute = (local.hour() * 60 + local.minute()) as u16;
        if let Some(times) = &self.times
            && !times.iter().any(|r| r.start <= minute && minute < r.end)
        {
            return false;
        }
        self.day_matches(&local)
    }

    /// When `at`'s civil day in the rule's location matches none of the day fields (weekdays,
    /// days of the month, months, years), the start of the next civil day there (no instant
    /// before it is inside); `None` when the day matches. A scan over a range skips such days
    /// whole ([`crate::maintenance::Window::open_intervals`]).
    pub fn next_day_if_excluded(&self, at: Timestamp) -> Option<Timestamp> {
        let local = DateTime::from_timestamp_nanos(at.unix_nanos()).with_timezone(&self.zone);
        if self.day_matches(&local) {
            return None;
        }
        let next = local.date_naive().succ_opt()?.and_hms_opt(0, 0, 0)?;
        // Midnight may fall in a gap of a clock change: the day then starts at the gap's end,
        // which is at most a few hours later; the earliest instant of the day that exists.
        let start = (0..24 * 4).find_map(|quarter| {
            let candidate = next + chrono::Duration::minutes(15 * quarter);
            self.zone.from_local_datetime(&candidate).earliest()
        })?;
        start.timestamp_nanos_opt().map(Timestamp::from_unix_nanos)
    }

    /// Whether the civil day of `local` matches the day fields.
    fn day_matches(&self, local: &DateTime<Tz>) -> bool {
        let weekday = local.weekday().num_days_from_sunday() as u8;
        if !any_span(&self.weekdays, weekday) {
            return false;
        }
        let month = local.month() as u8;
        if !any_span(&self.months, month) {
            return false;
        }
        let year = local.year();
        if !any_span(&self.years, i64::from(year)) {
            return false;
        }
        if let Some(days) = &self.days_of_month {
            let day = local.day() as i8;
            let length = days_in_month(year, month);
            if !days.iter().any(|span| {
                resolve_day(span.first, length) <= day && day <= resolve_day(span.last, length)
            }) {
                return false;
            }
        }
        true
    }

    /// The IANA name of the zone the rule is read in (`"UTC"` when the spec named none).
    pub fn location(&self) -> &'static str {
        self.zone.name()
    }
}

/// Whether `at` falls inside any of `rules`: Alertmanager's named `time_intervals` entry is a
/// list of specs and matches when one of them does (an empty list matches nothing).
pub fn any_contains(rules: &[TimeIntervalRule], at: Timestamp) -> bool {
    rules.iter().any(|rule| rule.contains(at))
}

/// Absent: matches everything; present: one span must hold `value`.
fn any_span<T: PartialOrd + Copy>(spans: &Option<Vec<Span<T>>>, value: T) -> bool {
    spans
        .as_ref()
        .is_none_or(|spans| spans.iter().any(|s| s.first <= value && value <= s.last))
}

/// A day of the month as written (negative from the end) resolved in a month of `length` days:
/// -1 is the last day. A result below 1 or above `length` names no day of this month, which
/// gives Alertmanager's clamping (a range past the month's end stops at its last day; one that
/// starts past it matches nothing).
fn resolve_day(day: i8, length: i8) -> i8 {
    if day < 0 { length + day + 1 } else { day }
}

/// Days in `month` (1–12) of `year`, proleptic Gregorian (as Go's `time` and chrono count).
fn days_in_month(year: i32, month: u8) -> i8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing the fields

fn parse_list<E, T>(
    field: IntervalField,
    list: &Option<Vec<E>>,
    parse: impl Fn(IntervalField, usize, &E) -> Result<T, IntervalError>,
) -> Result<Option<Vec<T>>, IntervalError> {
    let Some(list) = list else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(IntervalError {
            field,
            index: None,
            part: None,
            value: None,
            problem: IntervalProblem::EmptyList,
        });
    }
    let parsed = list
        .iter()
        .enumerate()
        .map(|(index, element)| parse(field, index, element))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(parsed))
}

/// A parser of one text element, for a list of `String`s.
fn text<T>(
    parse: fn(IntervalField, usize, &str) -> Result<T, IntervalError>,
) -> impl Fn(IntervalField, usize, &String) -> Result<T, IntervalError> {
    move |field, index, element| parse(field, index, element)
}

fn parse_time_range(
    field: IntervalField,
    index: usize,
    range: &TimeRangeSpec,
) -> Result<MinuteRange, IntervalError> {
    let side = |part: &'static str, text: &str, problem| IntervalError {
        field,
        index: Some(index),
        part: Some(part),
        value: Some(text.to_owned()),
        problem,
    };
    // Alertmanager checks that both are given before parsing either.
    for (part, text) in [
        ("start_time", &range.start_time),
        ("end_time", &range.end_time),
    ] {
        if text.is_empty() {
            return Err(side(part, text, IntervalProblem::MissingTime));
        }
    }
    let start = minute_of_day(&range.start_time)
        .ok_or_else(|| side("start_time", &range.start_time, IntervalProblem::NotATime))?;
    let end = minute_of_day(&range.end_time)
        .ok_or_else(|| side("end_time", &range.end_time, IntervalProblem::NotATime))?;
    if start >= end {
        return Err(IntervalError {
            field,
            index: Some(index),
            part: None,
            value: None,
            problem: IntervalProblem::EmptyTimeRange {
                start_time: range.start_time.clone(),
                end_time: range.end_time.clone(),
            },
        });
    }
    Ok(MinuteRange { start, end })
}

/// `HH:MM` from `00:00` to `23:59`, or `24:00` (Alertmanager's
/// `^((([01][0-9])|(2[0-3])):[0-5][0-9])$|(^24:00$)`), as minutes of the day.
fn minute_of_day(text: &str) -> Option<u16> {
    let &[h1, h0, b':', m1, m0] = text.as_bytes() else {
        return None;
    };
    if ![h1, h0, m1, m0].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let hours = u16::from(h1 - b'0') * 10 + u16::from(h0 - b'0');
    let minutes = u16::from(m1 - b'0') * 10 + u16::from(m0 - b'0');
    // Not `total == 1440`: that would take "23:60".
    let valid = (hours < 24 && minutes < 60) || (hours == 24 && minutes == 0);
    let total = hours * 60 + minutes;
    debug_assert!(!valid || total <= MINUTES_PER_DAY);
    valid.then_some(total)
}

/// An element as Alertmanager splits it: one member, or two joined by one `:`, each lowercased
/// before it is looked up (`stringableRangeFromString`).
fn split_members(
    field: IntervalField,
    index: usize,
    text: &str,
) -> Result<(&str, &str), IntervalError> {
    let mut members = text.split(':');
    let first = members.next().unwrap_or(text);
    let last = members.next().unwrap_or(first);
    if members.next().is_some() {
        return Err(IntervalError::element(
            field,
            index,
            text,
            IntervalProblem::NotARange,
        ));
    }
    Ok((first, last))
}

/// Both members of an element through `member` (which sees each lowercased), as a span.
fn members<T>(
    field: IntervalField,
    index: usize,
    text: &str,
    member: impl Fn(&str) -> Option<T>,
) -> Result<Span<T>, IntervalError> {
    let (first, last) = split_members(field, index, text)?;
    let value = |written: &str| {
        member(&written.to_lowercase())
            .ok_or_else(|| IntervalError::not_a_value(field, index, text, written))
    };
    Ok(Span {
        first: value(first)?,
        last: value(last)?,
    })
}

fn ordered<T: PartialOrd>(
    field: IntervalField,
    index: usize,
    text: &str,
    span: Span<T>,
) -> Result<Span<T>, IntervalError> {
    if span.first > span.last {
        return Err(IntervalError::element(
            field,
            index,
            text,
            IntervalProblem::Reversed,
        ));
    }
    Ok(span)
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Go's `strconv.Atoi`: an optional sign and ASCII digits.
fn atoi(text: &str) -> Option<i64> {
    text.parse().ok()
}

fn parse_weekdays(
    field: IntervalField,
    index: usize,
    text: &str,
) -> Result<Span<u8>, IntervalError> {
    let span = members(field, index, text, |m| {
        WEEKDAYS.iter().position(|d| *d == m).map(|p| p as u8)
    })?;
    ordered(field, index, text, span)
}

fn parse_months(field: IntervalField, index: usize, text: &str) -> Result<Span<u8>, IntervalError> {
    // Names first, then numbers, as Alertmanager; unlike it, numbers outside 1–12 are refused.
    let span = members(field, index, text, |m| {
        match MONTHS.iter().position(|n| *n == m) {
            Some(p) => Some(p as u8 + 1),
            None => atoi(m).filter(|n| (1..=12).contains(n)).map(|n| n as u8),
        }
    })?;
    ordered(field, index, text, span)
}

fn parse_years(field: IntervalField, index: usize, text: &str) -> Result<Span<i64>, IntervalError> {
    let span = members(field, index, text, atoi)?;
    ordered(field, index, text, span)
}

/// Alertmanager's `DayOfMonthRange` checks: each side 1 to 31 or -31 to -1; a negative start
/// needs a negative end; and the range must not be reversed in a month of 28 days.
fn parse_days(field: IntervalField, index: usize, text: &str) -> Result<Span<i8>, IntervalError> {
    let (first, last) = split_members(field, index, text)?;
    let day = |written: &str| {
        atoi(written)
            .filter(|d| *d != 0 && (-31..=31).contains(d))
            .map(|d| d as i8)
            .ok_or_else(|| IntervalError::not_a_value(field, index, text, written))
    };
    let span = Span {
        first: day(first)?,
        last: day(last)?,
    };
    if span.first < 0 && span.last > 0 {
        return Err(IntervalError::element(
            field,
            index,
            text,
            IntervalProblem::NegativeStartPositiveEnd,
        ));
    }
    if resolve_day(span.first, 28) > resolve_day(span.last, 28) {
        return Err(IntervalError::element(
            field,
            index,
            text,
            IntervalProblem::Reversed,
        ));
    }
    Ok(span)
}

/// Go's `time.LoadLocation`: absent, `""` and `"UTC"` are UTC; any other name must be an IANA
/// zone of the embedded release. `"Local"` is refused.
fn parse_location(location: Option<&str>) -> Result<Tz, IntervalError> {
    let refuse = |text: &str, problem| IntervalError {
        field: IntervalField::Location,
        index: None,
        part: None,
        value: Some(text.to_owned()),
        problem,
    };
    match location {
        None | Some("") => Ok(Tz::UTC),
        Some("Local") => Err(refuse("Local", IntervalProblem::LocalZone)),
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| refuse(name, IntervalProblem::UnknownZone)),
    }
}

#[cfg(test)]
mod tests;
