//! Tests of the `time_intervals` evaluator: Alertmanager's own cases, DST, month ends, refusals,
//! the wire forms, and a property against a naive reference evaluation.
//!
//! Cases marked "upstream" are ported from Alertmanager's `timeinterval/timeinterval_test.go`
//! (prometheus/alertmanager, `timeIntervalTestCases`, `yamlUnmarshalTestCases`,
//! `timeStringTestCases`, `completeTestCases`, `TestIntervener_Mutes`); its RFC 822 times
//! (`"04 May 20 15:04 +0000"`) are written here in RFC 3339. The property prints the seed that
//! reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`); `PROPTEST_CASES` sets the case count.

use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

use super::*;

fn at(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap_or_else(|e| panic!("{e}"))
}

fn spec(json: &str) -> TimeIntervalSpec {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn rule(json: &str) -> TimeIntervalRule {
    spec(json)
        .parse()
        .unwrap_or_else(|e| panic!("{json}: refused: {e}"))
}

/// The one helper of the matching tests: `json` contains every instant of `inside` and none of
/// `outside`.
fn check(json: &str, inside: &[&str], outside: &[&str]) {
    let rule = rule(json);
    for instant in inside {
        assert!(
            rule.contains(at(instant)),
            "{json} should contain {instant}"
        );
    }
    for instant in outside {
        assert!(
            !rule.contains(at(instant)),
            "{json} should not contain {instant}"
        );
    }
}

/// The one helper of the refusal tests: `json` is refused with exactly `message`.
fn refused(json: &str, message: &str) {
    match spec(json).parse() {
        Ok(rule) => panic!("{json} should be refused, parsed as {rule:?}"),
        Err(e) => assert_eq!(e.to_string(), message, "{json}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream: timeIntervalTestCases

#[test]
fn upstream_empty_interval_contains_everything() {
    check(
        "{}",
        &[
            "2006-01-02T15:04:00Z",
            "2007-01-03T10:04:00Z",
            "2006-01-04T09:04:00Z",
        ],
        &[],
    );
}

#[test]
fn upstream_business_hours() {
    check(
        r#"{"times": [{"start_time": "09:00", "end_time": "17:00"}], "weekdays": ["monday:friday"]}"#,
        &[
            "2020-05-04T15:04:00Z",
            "2020-05-05T10:04:00Z",
            "2020-06-09T09:04:00Z",
        ],
        &[
            "2020-05-03T15:04:00Z",
            "2020-05-04T08:59:00Z",
            "2020-05-05T05:00:00Z",
        ],
    );
}

#[test]
fn upstream_easter_2020() {
    check(
        r#"{"days_of_month": ["4:6"], "months": ["4"], "years": ["2020"]}"#,
        &[
            "2020-04-04T15:04:00Z",
            "2020-04-05T00:00:00Z",
            "2020-04-06T23:05:00Z",
        ],
        &[
            "2018-05-03T15:04:00Z",
            "2020-04-03T23:59:00Z",
            "2020-06-04T23:59:00Z",
            "2019-04-06T23:59:00Z",
            "2020-04-07T00:00:00Z",
        ],
    );
}

#[test]
fn upstream_last_three_days_of_each_month() {
    check(
        r#"{"days_of_month": ["-3:-1"]}"#,
        &[
            "2020-01-31T15:04:00Z",
            "2020-01-30T15:04:00Z",
            "2020-01-29T15:04:00Z",
            "2020-06-30T00:00:00Z",
            "2020-02-29T23:05:00Z",
        ],
        &[
            "2018-05-03T15:04:00Z",
            "2020-01-27T15:04:00Z",
            "2020-04-03T23:59:00Z",
            "2020-06-04T23:59:00Z",
            "2019-04-06T23:59:00Z",
            "2020-04-07T00:00:00Z",
            "2020-03-01T00:00:00Z",
        ],
    );
}

/// Upstream builds `-31:31` directly as a struct, which its own parser refuses (a negative start
/// needs a negative end); `-31:-1` exercises the same clamping in a 30-day month.
#[test]
fn upstream_out_of_bound_days_are_clamped_to_the_month() {
    check(
        r#"{"months": ["6"], "days_of_month": ["-31:-1"]}"#,
        &["2020-06-30T00:00:00Z", "2020-06-01T00:00:00Z"],
        &["2020-05-31T00:00:00Z", "2020-07-01T00:00:00Z"],
    );
}

#[test]
fn upstream_times_are_read_in_the_location() {
    check(
        r#"{"times": [{"start_time": "09:00", "end_time": "17:00"}], "weekdays": ["monday:friday"],
            "location": "Australia/Sydney"}"#,
        &["2021-04-06T13:00:00+10:00"],
        &["2021-04-06T13:00:00Z"],
    );
}

#[test]
fn upstream_location_during_daylight_saving_time() {
    check(
        r#"{"times": [{"start_time": "09:00", "end_time": "17:00"}], "weekdays": ["monday:friday"],
            "months": ["11"], "location": "Australia/Sydney"}"#,
        &["2021-11-01T09:00:00+11:00", "2021-10-31T22:00:00Z"],
        &["2021-10-31T21:00:00Z"],
    );
}

#[test]
fn upstream_last_day_does_not_shift_in_spring_forward_months() {
    check(
        r#"{"days_of_month": ["-1"], "location": "America/New_York"}"#,
        &["2021-03-31T12:00:00-04:00"],
        &["2021-03-30T12:00:00-04:00"],
    );
}

// ---------------------------------------------------------------------------------------------
// Upstream: yamlUnmarshalTestCases, completeTestCases

#[test]
fn upstream_simple_business_hours() {
    check(
        r#"{"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "17:00"}]}"#,
        &[
            "2020-07-08T09:00:00Z",
            "2020-07-08T16:59:00Z",
            "2021-04-01T13:00:00Z",
        ],
        &["2020-07-08T05:00:00Z", "2020-07-08T08:59:00Z"],
    );
}

#[test]
fn upstream_last_week_of_the_first_quarter() {
    check(
        r#"{"weekdays": ["monday:friday", "sunday"], "months": ["january:march"],
            "days_of_month": ["-7:-1"], "years": ["2020:2025", "2030:2035"],
            "times": [{"start_time": "09:00", "end_time": "17:00"}]}"#,
        &[
            "2021-01-27T09:00:00Z",
            "2021-01-28T16:59:00Z",
            "2021-01-29T13:00:00Z",
            "2025-03-31T13:00:00Z",
            "2035-01-31T13:00:00Z",
        ],
        &[
            "2021-01-30T13:00:00Z", // a saturday
            "2021-04-01T13:00:00Z", // april
            "2026-01-30T13:00:00Z", // 2026
            "2035-01-31T17:01:00Z", // after 17:00
        ],
    );
}

#[test]
fn upstream_complete_flow() {
    check(
        r#"{"weekdays": ["monday:wednesday", "saturday", "sunday"],
            "times": [{"start_time": "13:00", "end_time": "15:00"}],
            "days_of_month": ["1", "10", "20:-1"], "years": ["2020:2023"],
            "months": ["january:march"]}"#,
        &["2021-01-10T13:00:00Z", "2021-01-30T14:24:00Z"],
        &[
            "2021-01-09T13:00:00Z",
            "2021-01-20T12:59:00Z",
            "2021-02-02T13:00:00Z",
        ],
    );
}

#[test]
fn upstream_a_range_starting_past_the_month_end_matches_nothing() {
    check(
        r#"{"days_of_month": ["30:31"], "years": ["2020:2023"], "months": ["february"]}"#,
        &[],
        &["2021-02-28T13:00:00Z", "2020-02-29T13:00:00Z"],
    );
}

#[test]
fn upstream_months_regardless_of_case() {
    let rule = rule(r#"{"months": ["January:december"]}"#);
    assert_eq!(rule.months, Some(vec![Span { first: 1, last: 12 }]));
}

#[test]
fn upstream_locations_by_name() {
    let rule = rule(r#"{"years": ["2020:2022"], "location": "Australia/Sydney"}"#);
    assert_eq!(rule.location(), "Australia/Sydney");
    assert_eq!(
        rule.years,
        Some(vec![Span {
            first: 2020,
            last: 2022
        }])
    );
}

#[test]
fn upstream_negative_end_after_positive_start() {
    let rule = rule(r#"{"days_of_month": ["1:-1"]}"#);
    assert_eq!(rule.days_of_month, Some(vec![Span { first: 1, last: -1 }]));
}

#[test]
fn upstream_refusals() {
    refused(
        r#"{"times": [{"start_time": "01:99", "end_time": "23:59"}]}"#,
        "times[0].start_time: \"01:99\" is not a time of day: write HH:MM from 00:00 to 23:59, \
         or 24:00 for the end of the day",
    );
    refused(
        r#"{"times": [{"start_time": "00:00", "end_time": "99:99"}]}"#,
        "times[0].end_time: \"99:99\" is not a time of day: write HH:MM from 00:00 to 23:59, \
         or 24:00 for the end of the day",
    );
    refused(
        r#"{"weekdays": ["friday:monday"]}"#,
        "weekdays[0]: \"friday:monday\" ends before it starts: weeks run from sunday to saturday \
         and a range cannot wrap past saturday: split it, e.g. \"friday:saturday\" and \
         \"sunday:monday\"",
    );
    refused(
        r#"{"weekdays": ["blurgsday:flurgsday"]}"#,
        "weekdays[0]: \"blurgsday:flurgsday\": \"blurgsday\" is not a weekday: use sunday, \
         monday, tuesday, wednesday, thursday, friday or saturday (any case; numbers are not \
         weekdays)",
    );
    refused(
        r#"{"weekdays": ["1:3"]}"#,
        "weekdays[0]: \"1:3\": \"1\" is not a weekday: use sunday, monday, tuesday, wednesday, \
         thursday, friday or saturday (any case; numbers are not weekdays)",
    );
    refused(
        r#"{"weekdays": ["-2:-1"]}"#,
        "weekdays[0]: \"-2:-1\": \"-2\" is not a weekday: use sunday, monday, tuesday, \
         wednesday, thursday, friday or saturday (any case; numbers are not weekdays)",
    );
    refused(
        r#"{"days_of_month": ["0"]}"#,
        "days_of_month[0]: \"0\" is not a day of the month: use 1 to 31 or -31 to -1",
    );
    refused(
        r#"{"days_of_month": ["-50:-20"]}"#,
        "days_of_month[0]: \"-50:-20\": \"-50\" is not a day of the month: use 1 to 31 or -31 \
         to -1",
    );
    refused(
        r#"{"days_of_month": ["1:50"]}"#,
        "days_of_month[0]: \"1:50\": \"50\" is not a day of the month: use 1 to 31 or -31 to -1",
    );
    refused(
        r#"{"days_of_month": ["-15:5"]}"#,
        "days_of_month[0]: \"-15:5\" starts counting from the month's end but ends counting \
         from its start: make the end negative too (e.g. \"-7:-1\"), or both positive",
    );
    refused(
        r#"{"days_of_month": ["10:-25"]}"#,
        "days_of_month[0]: \"10:-25\" ends before it starts in a month of 28 days (a negative \
         day counts from the month's end): write the earlier day first, e.g. \"1:-1\" or \
         \"-7:-1\"",
    );
    refused(
        r#"{"months": ["martius:june"]}"#,
        "months[0]: \"martius:june\": \"martius\" is not a month: use january to december (any \
         case) or 1 to 12",
    );
    refused(
        r#"{"months": ["march:junius"]}"#,
        "months[0]: \"march:junius\": \"junius\" is not a month: use january to december (any \
         case) or 1 to 12",
    );
    refused(
        r#"{"months": ["december:january"]}"#,
        "months[0]: \"december:january\" ends before it starts: a range cannot wrap past \
         december: split it, e.g. \"november:december\" and \"january:february\"",
    );
    refused(
        r#"{"years": ["2022:2020"]}"#,
        "years[0]: \"2022:2020\" ends before it starts: write the earlier one first",
    );
}

// ---------------------------------------------------------------------------------------------
// Upstream: timeStringTestCases

#[test]
fn upstream_time_strings() {
    let minutes = |start: &str, end: &str| {
        let json = format!(r#"{{"times": [{{"start_time": "{start}", "end_time": "{end}"}}]}}"#);
        spec(&json).parse().map(|rule| {
            let range = rule.times.expect("times")[0];
            (range.start, range.end)
        })
    };
    assert_eq!(minutes("00:00", "24:00"), Ok((0, 1440)));
    assert_eq!(minutes("01:35", "17:39"), Ok((95, 1059)));
    assert_eq!(minutes("09:35", "09:39"), Ok((575, 579)));
    for (start, end) in [
        ("17:31", "17:31"),
        ("12:30", "24:01"),
        ("09:30", "07:41"),
        ("24:00", "17:41"),
        ("24:00", "24:00"),
    ] {
        assert!(minutes(start, end).is_err(), "{start} to {end}");
    }
    refused(
        r#"{"times": [{"start_time": "09:30", "end_time": "07:41"}]}"#,
        "times[0]: start_time \"09:30\" is not before end_time \"07:41\": the end is exclusive, \
         and a range cannot wrap past midnight: split it, e.g. 22:00 to 24:00 and 00:00 to 06:00",
    );
    refused(
        r#"{"times": [{"start_time": "14:03", "end_time": ""}]}"#,
        "times[0].end_time: \"\" is empty: give both start_time and end_time as HH:MM",
    );
    // A missing end_time is refused by the wire form itself.
    let missing =
        serde_json::from_str::<TimeIntervalSpec>(r#"{"times": [{"start_time": "14:03"}]}"#);
    assert!(missing.is_err());
}

#[test]
fn times_follow_alertmanagers_pattern_exactly() {
    for good in ["00:00", "09:05", "19:59", "23:59", "24:00"] {
        assert!(minute_of_day(good).is_some(), "{good}");
    }
    for bad in [
        "9:00",
        "09:5",
        "24:01",
        "25:00",
        "23:60",
        "0900",
        "09:00 ",
        " 09:00",
        "+9:00",
        "09:0a",
        "",
        "２３:00",
    ] {
        assert!(minute_of_day(bad).is_none(), "{bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream: TestIntervener_Mutes (a named interval is a list: any element matches)

#[test]
fn upstream_evenings_and_weekends_in_sydney() {
    let evenings = [rule(
        r#"{"times": [{"start_time": "00:00", "end_time": "09:00"},
                      {"start_time": "17:00", "end_time": "24:00"}],
            "location": "Australia/Sydney"}"#,
    )];
    let weekends = [rule(
        r#"{"weekdays": ["saturday", "sunday"], "location": "Australia/Sydney"}"#,
    )];
    for (instant, in_evenings, in_weekends) in [
        ("2024-01-01T00:00:00+11:00", true, false),
        ("2024-01-01T09:00:00+11:00", false, false),
        ("2024-01-06T10:00:00+11:00", false, true),
        ("2024-01-06T17:00:00+11:00", true, true),
        ("2024-01-01T10:00:00Z", true, false),
        ("2024-01-06T10:00:00Z", true, true),
    ] {
        assert_eq!(
            any_contains(&evenings, at(instant)),
            in_evenings,
            "evenings {instant}"
        );
        assert_eq!(
            any_contains(&weekends, at(instant)),
            in_weekends,
            "weekends {instant}"
        );
    }
}

#[test]
fn a_list_matches_when_any_element_does() {
    let nights = rule(r#"{"times": [{"start_time": "00:00", "end_time": "06:00"}]}"#);
    let sundays = rule(r#"{"weekdays": ["sunday"]}"#);
    let both = [nights, sundays];
    assert!(any_contains(&both, at("2026-03-02T05:59:59Z"))); // monday night
    assert!(any_contains(&both, at("2026-03-01T12:00:00Z"))); // sunday noon
    assert!(!any_contains(&both, at("2026-03-02T06:00:00Z"))); // monday morning
    assert!(!any_contains(&[], at("2026-03-01T12:00:00Z")));
}

// ---------------------------------------------------------------------------------------------
// Daylight saving time, month ends, the end of the day, whole weeks

/// Europe/Berlin springs from 02:00 CET to 03:00 CEST on 2026-03-29 (at 01:00 UTC): a window of
/// 02:00–03:00 local time is empty that day.
#[test]
fn berlin_spring_forward_day_has_no_two_oclock_hour() {
    let rule = rule(
        r#"{"times": [{"start_time": "02:00", "end_time": "03:00"}], "location": "Europe/Berlin"}"#,
    );
    // The day before, 02:30 CET is 01:30 UTC.
    assert!(rule.contains(at("2026-03-28T01:30:00Z")));
    assert!(!rule.contains(at("2026-03-28T02:00:00Z")));
    // The whole spring-forward day, minute by minute (00:00 CET is 23:00 UTC the day before).
    let midnight = at("2026-03-28T23:00:00Z");
    for minute in 0..(23 * 60) {
        let instant = midnight.plus_secs(minute * 60);
        assert!(
            !rule.contains(instant),
            "minute {minute} of 2026-03-29 in Berlin"
        );
    }
    assert!(!rule.contains(at("2026-03-29T00:59:59.999999999Z"))); // 01:59:59 CET
    assert!(!rule.contains(at("2026-03-29T01:00:00Z"))); // 03:00 CEST
    // The day after, 02:00 CEST is 00:00 UTC.
    assert!(rule.contains(at("2026-03-30T00:00:00Z")));
}

/// Europe/Berlin falls back from 03:00 CEST to 02:00 CET on 2026-10-25 (at 01:00 UTC): the
/// 02:00–03:00 window is open for two hours.
#[test]
fn berlin_fall_back_day_has_two_two_oclock_hours() {
    let rule = rule(
        r#"{"times": [{"start_time": "02:00", "end_time": "03:00"}], "location": "Europe/Berlin"}"#,
    );
    assert!(!rule.contains(at("2026-10-24T23:59:59Z"))); // 01:59:59 CEST
    assert!(rule.contains(at("2026-10-25T00:00:00Z"))); // 02:00 CEST
    assert!(rule.contains(at("2026-10-25T00:59:59Z"))); // 02:59:59 CEST
    assert!(rule.contains(at("2026-10-25T01:00:00Z"))); // 02:00 CET
    assert!(rule.contains(at("2026-10-25T01:59:59Z"))); // 02:59:59 CET
    assert!(!rule.contains(at("2026-10-25T02:00:00Z"))); // 03:00 CET
}

/// Every field is read in local time: a Berlin monday begins at 23:00 UTC on sunday in winter.
#[test]
fn weekdays_and_days_change_at_local_midnight() {
    let rule =
        rule(r#"{"weekdays": ["monday"], "days_of_month": ["2"], "location": "Europe/Berlin"}"#);
    assert!(!rule.contains(at("2026-03-01T22:59:59Z")));
    assert!(rule.contains(at("2026-03-01T23:00:00Z")));
    assert!(rule.contains(at("2026-03-02T22:59:59Z")));
    assert!(!rule.contains(at("2026-03-02T23:00:00Z")));
}

#[test]
fn negative_days_in_february_of_leap_and_common_years() {
    let last = rule(r#"{"days_of_month": ["-1"]}"#);
    assert!(last.contains(at("2024-02-29T12:00:00Z")));
    assert!(!last.contains(at("2024-02-28T12:00:00Z")));
    assert!(last.contains(at("2023-02-28T12:00:00Z")));
    assert!(!last.contains(at("2023-02-27T12:00:00Z")));
    assert!(last.contains(at("2023-03-31T12:00:00Z")));
    assert!(!last.contains(at("2023-03-30T12:00:00Z")));
    // The 29th day from the end is the 1st of a leap February and no day of a common one.
    let minus_29 = rule(r#"{"days_of_month": ["-29"]}"#);
    assert!(minus_29.contains(at("2024-02-01T12:00:00Z")));
    for day in 1..=28 {
        let instant = at(&format!("2023-02-{day:02}T12:00:00Z"));
        assert!(!minus_29.contains(instant), "2023-02-{day:02}");
    }
    // A range from before the month's start is clamped to its first day.
    let first_three = rule(r#"{"days_of_month": ["-31:-27"]}"#);
    assert!(first_three.contains(at("2023-02-01T00:00:00Z")));
    assert!(first_three.contains(at("2023-02-02T00:00:00Z")));
    assert!(!first_three.contains(at("2023-02-03T00:00:00Z"))); // -27 is the 2nd
    assert!(first_three.contains(at("2024-02-03T00:00:00Z"))); // -27 is the 3rd
    // A positive range past the end of February stops at its last day.
    let late = rule(r#"{"days_of_month": ["29:31"]}"#);
    assert!(late.contains(at("2024-02-29T00:00:00Z")));
    assert!(!late.contains(at("2023-02-28T23:59:59Z")));
    assert!(!late.contains(at("2023-03-01T00:00:00Z")));
    let all = rule(r#"{"days_of_month": ["1:31"]}"#);
    assert!(all.contains(at("2023-02-28T00:00:00Z")));
}

#[test]
fn an_end_of_24_00_covers_the_last_nanosecond_of_the_day() {
    let rule = rule(r#"{"times": [{"start_time": "23:00", "end_time": "24:00"}]}"#);
    assert!(!rule.contains(at("2026-01-01T22:59:59.999999999Z")));
    assert!(rule.contains(at("2026-01-01T23:00:00Z")));
    assert!(rule.contains(at("2026-01-01T23:59:59.999999999Z")));
    assert!(!rule.contains(at("2026-01-02T00:00:00Z")));
}

#[test]
fn a_range_over_the_whole_week_matches_every_day() {
    let rule = rule(r#"{"weekdays": ["sunday:saturday"]}"#);
    for day in 1..=7 {
        // 2026-03-01 is a sunday.
        let instant = at(&format!("2026-03-{day:02}T12:00:00Z"));
        assert!(rule.contains(instant), "2026-03-{day:02}");
    }
    let weekend = rule_of_weekdays("SATURDAY:saturday");
    assert!(weekend.contains(at("2026-03-07T00:00:00Z")));
    assert!(!weekend.contains(at("2026-03-08T00:00:00Z")));
    for wrapping in ["monday:sunday", "saturday:sunday"] {
        let json = format!(r#"{{"weekdays": ["{wrapping}"]}}"#);
        assert!(
            matches!(
                spec(&json).parse(),
                Err(IntervalError {
                    problem: IntervalProblem::Reversed,
                    ..
                })
            ),
            "{wrapping}"
        );
    }
}

fn rule_of_weekdays(element: &str) -> TimeIntervalRule {
    rule(&format!(r#"{{"weekdays": ["{element}"]}}"#))
}

#[test]
fn names_ignore_case_and_months_take_numbers() {
    let rule = rule(r#"{"weekdays": ["MONDAY:Friday"], "months": ["May", "9:DECEMBER", "+2"]}"#);
    assert_eq!(rule.weekdays, Some(vec![Span { first: 1, last: 5 }]));
    assert_eq!(
        rule.months,
        Some(vec![
            Span { first: 5, last: 5 },
            Span { first: 9, last: 12 },
            Span { first: 2, last: 2 },
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals beyond upstream's

#[test]
fn local_is_refused_as_machine_dependent() {
    refused(
        r#"{"location": "Local"}"#,
        "location: \"Local\" is the time zone of the machine Tidemark runs on, so a replay \
         elsewhere would answer differently: name an IANA zone such as \"Europe/Berlin\", or \
         \"UTC\"",
    );
}

#[test]
fn unknown_zones_are_refused_naming_the_release() {
    for name in [
        "Mars/Olympus_Mons",
        "europe/berlin",
        "local",
        "CEST",
        " UTC",
    ] {
        let json = format!(r#"{{"location": "{name}"}}"#);
        refused(
            &json,
            &format!(
                "location: {name:?} is not a zone of the IANA time zone database (release \
                 {TZDB_VERSION}): name one such as \"Europe/Berlin\" or \"UTC\" (names are \
                 case-sensitive)"
            ),
        );
    }
}

#[test]
fn utc_and_the_empty_location_are_utc() {
    for json in [
        r#"{}"#,
        r#"{"location": ""}"#,
        r#"{"location": "UTC"}"#,
        r#"{"location": null}"#,
    ] {
        assert_eq!(rule(json).location(), "UTC", "{json}");
    }
    assert_eq!(rule(r#"{"location": "Etc/UTC"}"#).location(), "Etc/UTC");
}

#[test]
fn unknown_names_and_malformed_ranges_are_refused() {
    refused(
        r#"{"weekdays": ["monday", "funday"]}"#,
        "weekdays[1]: \"funday\" is not a weekday: use sunday, monday, tuesday, wednesday, \
         thursday, friday or saturday (any case; numbers are not weekdays)",
    );
    refused(
        r#"{"weekdays": ["mon:fri"]}"#,
        "weekdays[0]: \"mon:fri\": \"mon\" is not a weekday: use sunday, monday, tuesday, \
         wednesday, thursday, friday or saturday (any case; numbers are not weekdays)",
    );
    refused(
        r#"{"weekdays": ["monday: friday"]}"#,
        "weekdays[0]: \"monday: friday\": \" friday\" is not a weekday: use sunday, monday, \
         tuesday, wednesday, thursday, friday or saturday (any case; numbers are not weekdays)",
    );
    refused(
        r#"{"weekdays": ["monday:tuesday:wednesday"]}"#,
        "weekdays[0]: \"monday:tuesday:wednesday\" is not a value or a range: write one value, \
         or two joined by one colon (\"first:last\")",
    );
    refused(
        r#"{"days_of_month": ["1", "0"]}"#,
        "days_of_month[1]: \"0\" is not a day of the month: use 1 to 31 or -31 to -1",
    );
    refused(
        r#"{"days_of_month": ["-1:-3"]}"#,
        "days_of_month[0]: \"-1:-3\" ends before it starts in a month of 28 days (a negative \
         day counts from the month's end): write the earlier day first, e.g. \"1:-1\" or \
         \"-7:-1\"",
    );
    refused(
        r#"{"months": ["13"]}"#,
        "months[0]: \"13\" is not a month: use january to december (any case) or 1 to 12",
    );
    refused(
        r#"{"months": ["0:3"]}"#,
        "months[0]: \"0:3\": \"0\" is not a month: use january to december (any case) or 1 to 12",
    );
    refused(
        r#"{"years": ["2026:"]}"#,
        "years[0]: \"2026:\": \"\" is not a year: use a whole number such as 2026",
    );
    refused(
        r#"{"years": ["twenty"]}"#,
        "years[0]: \"twenty\" is not a year: use a whole number such as 2026",
    );
}

#[test]
fn empty_lists_are_refused() {
    refused(
        r#"{"weekdays": []}"#,
        "weekdays: is an empty list, which would match nothing: leave the field out to match \
         every weekday, or give at least one element",
    );
    refused(
        r#"{"times": []}"#,
        "times: is an empty list, which would match nothing: leave the field out to match every \
         time of day, or give at least one element",
    );
}

#[test]
fn the_error_names_field_element_and_problem() {
    let error = spec(r#"{"days_of_month": ["1", "0"]}"#)
        .parse()
        .unwrap_err();
    assert_eq!(error.field, IntervalField::DaysOfMonth);
    assert_eq!(error.index, Some(1));
    assert_eq!(error.value.as_deref(), Some("0"));
    assert_eq!(
        error.problem,
        IntervalProblem::NotAValue {
            member: "0".to_owned()
        }
    );
}

#[test]
fn extreme_instants_are_answered() {
    let rule = rule(r#"{"years": ["1677:2262"], "location": "Pacific/Kiritimati"}"#);
    assert!(rule.contains(Timestamp::from_unix_nanos(i64::MIN)));
    assert!(rule.contains(Timestamp::from_unix_nanos(i64::MAX)));
}

#[test]
fn the_embedded_tz_release_is_the_documented_one() {
    // Moving chrono-tz moves this: update the workspace pin's comment with it.
    assert_eq!(TZDB_VERSION, "2025b");
}

// ---------------------------------------------------------------------------------------------
// Wire forms

const FULL: &str = r#"{"times":[{"start_time":"22:00","end_time":"24:00"}],"weekdays":["monday:friday","Sunday"],"days_of_month":["1:5","-3:-1"],"months":["january:march","12"],"years":["2020:2022"],"location":"Europe/Berlin"}"#;

#[test]
fn json_keeps_the_strings_as_written_and_leaves_absent_fields_out() {
    let full = spec(FULL);
    assert_eq!(serde_json::to_string(&full).unwrap(), FULL);
    let sparse = spec(r#"{"weekdays": ["SATURDAY"]}"#);
    assert_eq!(
        serde_json::to_string(&sparse).unwrap(),
        r#"{"weekdays":["SATURDAY"]}"#
    );
    assert_eq!(
        serde_json::to_string(&TimeIntervalSpec::default()).unwrap(),
        "{}"
    );
}

#[test]
fn json_refuses_unknown_fields() {
    for json in [
        r#"{"weekday": ["monday"]}"#,
        r#"{"times": [{"start_time": "09:00", "end_time": "17:00", "end": "18:00"}]}"#,
    ] {
        assert!(
            serde_json::from_str::<TimeIntervalSpec>(json).is_err(),
            "{json}"
        );
    }
}

#[test]
fn the_compact_form_round_trips() {
    for spec in [
        spec(FULL),
        TimeIntervalSpec::default(),
        spec(r#"{"years": ["2030"]}"#),
        spec(r#"{"location": "UTC"}"#),
    ] {
        let bytes = postcard::to_allocvec(&spec).unwrap();
        let back: TimeIntervalSpec = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, spec);
    }
}

#[test]
fn the_json_schema_describes_every_field_and_refuses_others() {
    let schema = serde_json::to_value(schemars::schema_for!(TimeIntervalSpec)).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema.get("required").is_none(), "every field is optional");
    for field in [
        "times",
        "weekdays",
        "days_of_month",
        "months",
        "years",
        "location",
    ] {
        let description = schema["properties"][field]["description"].as_str();
        assert!(description.is_some_and(|d| !d.is_empty()), "{field}");
    }
    let range = &schema["$defs"]["TimeRangeSpec"];
    assert_eq!(range["additionalProperties"], false);
    assert_eq!(
        range["required"],
        serde_json::json!(["start_time", "end_time"])
    );
}

// ---------------------------------------------------------------------------------------------
// Property: `contains` agrees with a naive reference evaluation

/// A valid spec as numbers, rendered to strings for [`TimeIntervalSpec`] and read directly by
/// [`reference_contains`].
#[derive(Clone, Debug)]
struct Model {
    times: Option<Vec<(u16, u16)>>,
    weekdays: Option<Vec<(u8, u8)>>,
    days: Option<Vec<(i8, i8)>>,
    months: Option<Vec<(u8, u8)>>,
    years: Option<Vec<(i64, i64)>>,
    location: Option<&'static str>,
}

const ZONES: [&str; 10] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Apia",
    "Pacific/Chatham",
    "America/Sao_Paulo",
];

fn ordered_pair<T: PartialOrd + Copy + std::fmt::Debug>(
    values: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = (T, T)> {
    (values.clone(), values).prop_map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
}

fn list<T: std::fmt::Debug>(
    element: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<Vec<T>>> {
    proptest::option::weighted(0.5, proptest::collection::vec(element, 1..4))
}

/// Days as Alertmanager accepts them: 1..=31 or -31..=-1, no negative start with a positive
/// end, and in order in a month of 28 days.
fn day_range() -> impl Strategy<Value = (i8, i8)> {
    let day = prop_oneof![1i8..=31, -31i8..=-1];
    (day.clone(), day).prop_filter("a valid day range", |&(a, b)| {
        let in_28 = |d: i8| if d < 0 { 29 + d } else { d };
        !(a < 0 && b > 0) && in_28(a) <= in_28(b)
    })
}

fn model() -> impl Strategy<Value = Model> {
    let time = (0u16..1440).prop_flat_map(|start| (Just(start), start + 1..=1440));
    (
        list(time),
        list(ordered_pair(0u8..7)),
        list(day_range()),
        list(ordered_pair(1u8..=12)),
        list(ordered_pair(1995i64..2035)),
        proptest::option::of(proptest::sample::select(&ZONES[..])),
    )
        .prop_map(|(times, weekdays, days, months, years, location)| Model {
            times,
            weekdays,
            days,
            months,
            years,
            location,
        })
}

/// Renders a model as users write it; `style` picks names or numbers and the case of names.
fn render(model: &Model, style: u64) -> TimeIntervalSpec {
    let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    let name = |n: &str, k: usize| match (style >> (k % 60)) & 3 {
        0 => n.to_uppercase(),
        1 => {
            let mut c = n.chars();
            c.next()
                .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
        }
        _ => n.to_owned(),
    };
    let range = |a: String, b: String| if a == b { a } else { format!("{a}:{b}") };
    let strings = |pairs: &Option<Vec<(i64, i64)>>, show: &dyn Fn(i64, usize) -> String| {
        pairs.as_ref().map(|pairs| {
            pairs
                .iter()
                .enumerate()
                .map(|(k, &(a, b))| range(show(a, 2 * k), show(b, 2 * k + 1)))
                .collect()
        })
    };
    let widen = |pairs: &Option<Vec<(u8, u8)>>| {
        pairs.as_ref().map(|p| {
            p.iter()
                .map(|&(a, b)| (i64::from(a), i64::from(b)))
                .collect()
        })
    };
    let weekday = |d: i64, k: usize| name(WEEKDAYS[d as usize], k);
    let month = |m: i64, k: usize| {
        if (style >> ((k + 7) % 60)) & 1 == 0 {
            name(MONTHS[m as usize - 1], k)
        } else {
            m.to_string()
        }
    };
    let days = model.days.as_ref().map(|p| {
        p.iter()
            .map(|&(a, b)| (i64::from(a), i64::from(b)))
            .collect()
    });
    TimeIntervalSpec {
        times: model.times.as_ref().map(|ranges| {
            ranges
                .iter()
                .map(|&(start, end)| TimeRangeSpec {
                    start_time: hhmm(start),
                    end_time: hhmm(end),
                })
                .collect()
        }),
        weekdays: strings(&widen(&model.weekdays), &weekday),
        days_of_month: strings(&days, &|d, _| d.to_string()),
        months: strings(&widen(&model.months), &month),
        years: strings(&model.years, &|y, _| y.to_string()),
        location: model.location.map(str::to_owned),
    }
}

/// The naive evaluation: the instant in the zone's civil time through chrono-tz, then each field
/// checked directly, days of the month by Alertmanager's own steps (`ContainsTime`: resolve the
/// negatives, skip a start past the month's end, clamp both ends to ±days in the month).
fn reference_contains(model: &Model, nanos: i64) -> bool {
    let zone: Tz = model.location.unwrap_or("UTC").parse().unwrap();
    let utc = chrono::DateTime::from_timestamp_nanos(nanos).naive_utc();
    let local = zone.from_utc_datetime(&utc).naive_local();
    let minute = local.hour() * 60 + local.minute();
    let weekday = local.weekday().num_days_from_sunday();
    let (year, month, day) = (local.year(), local.month(), local.day() as i64);
    let next_month = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let length = next_month.unwrap().pred_opt().unwrap().day() as i64;
    let clamp = |n: i64| n.clamp(-length, length);
    let field = |given: bool, ok: bool| !given || ok;
    field(
        model.times.is_some(),
        model
            .times
            .iter()
            .flatten()
            .any(|&(s, e)| u32::from(s) <= minute && minute < u32::from(e)),
    ) && field(
        model.weekdays.is_some(),
        model
            .weekdays
            .iter()
            .flatten()
            .any(|&(a, b)| u32::from(a) <= weekday && weekday <= u32::from(b)),
    ) && field(
        model.months.is_some(),
        model
            .months
            .iter()
            .flatten()
            .any(|&(a, b)| u32::from(a) <= month && month <= u32::from(b)),
    ) && field(
        model.years.is_some(),
        model
            .years
            .iter()
            .flatten()
            .any(|&(a, b)| a <= i64::from(year) && i64::from(year) <= b),
    ) && field(
        model.days.is_some(),
        model.days.iter().flatten().any(|&(a, b)| {
            let begin = if a < 0 {
                length + i64::from(a) + 1
            } else {
                i64::from(a)
            };
            let end = if b < 0 {
                length + i64::from(b) + 1
            } else {
                i64::from(b)
            };
            begin <= length && clamp(begin) <= day && day <= clamp(end)
        }),
    )
}

/// Instants: most in 1995–2035 (where the generated years and the zones' DST rules are), some
/// on the minute, some the nanosecond before one, a few anywhere in the i64 range.
fn instant() -> impl Strategy<Value = i64> {
    const FROM: i64 = 788_918_400; // 1995-01-01
    const TO: i64 = 2_082_758_400; // 2036-01-01
    prop_oneof![
        6 => (FROM..TO, 0i64..1_000_000_000).prop_map(|(s, n)| s * 1_000_000_000 + n),
        2 => (FROM / 60..TO / 60).prop_map(|m| m * 60_000_000_000),
        2 => (FROM / 60..TO / 60).prop_map(|m| m * 60_000_000_000 - 1),
        1 => any::<i64>(),
    ]
}

fn seeded_runner(default_cases: u32) -> (TestRunner, u64) {
    let seed = std::env::var("TIDEMARK_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    (TestRunner::new(config), seed)
}

/// Random valid specs, rendered as users write them, parse; their rule answers as the naive
/// reference does at random instants; and the spec round-trips through JSON and postcard.
#[test]
fn contains_agrees_with_the_reference() {
    let (mut runner, seed) = seeded_runner(512);
    eprintln!("seed {seed} (TIDEMARK_PROPTEST_SEED={seed} reproduces)");
    let cases = (
        model(),
        any::<u64>(),
        proptest::collection::vec(instant(), 1..64),
    );
    let result = runner.run(&cases, |(model, style, instants)| {
        let spec = render(&model, style);
        let rule = spec
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{spec:?} refused: {e}")))?;
        for nanos in instants {
            prop_assert_eq!(
                rule.contains(Timestamp::from_unix_nanos(nanos)),
                reference_contains(&model, nanos),
                "{:?} at {} ns",
                spec,
                nanos
            );
        }
        let json = serde_json::to_string(&spec).unwrap();
        prop_assert_eq!(
            &serde_json::from_str::<TimeIntervalSpec>(&json).unwrap(),
            &spec
        );
        let bytes = postcard::to_allocvec(&spec).unwrap();
        prop_assert_eq!(
            &postcard::from_bytes::<TimeIntervalSpec>(&bytes).unwrap(),
            &spec
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("time_intervals property failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}");
    }
}

/// The property can fail: a reference that forgets the location disagrees within a few cases.
#[test]
fn the_reference_notices_a_wrong_zone() {
    let model = Model {
        times: Some(vec![(9 * 60, 17 * 60)]),
        weekdays: None,
        days: None,
        months: None,
        years: None,
        location: Some("Australia/Sydney"),
    };
    let utc_model = Model {
        location: None,
        ..model.clone()
    };
    let rule = render(&model, 0).parse().unwrap();
    let nanos = at("2021-04-06T03:00:00Z").unix_nanos(); // 13:00 in Sydney
    assert!(rule.contains(Timestamp::from_unix_nanos(nanos)));
    assert!(reference_contains(&model, nanos));
    assert!(!reference_contains(&utc_model, nanos));
}
