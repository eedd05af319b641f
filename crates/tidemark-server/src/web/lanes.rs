//! The lanes chart: one lane per finding over a time window, inline SVG. Bars for active
//! occurrences, markers where they opened and how they were resolved, hatched bands for flap
//! episodes, pale bands where a maintenance window covering the finding was open, vertical lines
//! for deploys and the incident's open and close, a UTC time axis.

use maud::{Markup, html};
use tidemark_core::Timestamp;
use tidemark_core::findings::{Occurrence, ResolutionKind};
use tidemark_core::flaps::{FlapDetector, FlapEpisodeView};
use tidemark_core::maintenance::BookEntry;

use super::html::{clock_part, date_part, dec1};
use super::timeline::{KeyLinks, family};
use super::{FindingLane, TimelineLine};

const WIDTH: f64 = 1000.0;
const LABEL_WIDTH: f64 = 250.0;
const PLOT_X0: f64 = 262.0;
const PLOT_X1: f64 = 984.0;
const AXIS_Y: f64 = 30.0;
const STRIP_Y: f64 = 38.0;
const STRIP_HEIGHT: f64 = 16.0;
const LANES_Y: f64 = 62.0;
const LANE_HEIGHT: f64 = 34.0;
const FOOT_HEIGHT: f64 = 26.0;
const LABEL_CHARS: usize = 30;

/// A vertical line across the lanes: the incident opening or closing, a deploy.
#[derive(Clone, Debug)]
pub(super) struct Annotation {
    pub at: Timestamp,
    pub seq: u64,
    /// Short text under the chart (empty: tooltip only).
    pub label: String,
    /// Tooltip.
    pub title: String,
    /// `opened`, `closed`, `deploy`, `rollback`, `config`.
    pub class: &'static str,
}

/// What one chart shows.
#[derive(Debug)]
pub(super) struct Chart<'a> {
    pub lanes: &'a [FindingLane],
    /// The window, in Unix nanoseconds (`start <= end`).
    pub start: i64,
    pub end: i64,
    pub annotations: Vec<Annotation>,
    /// Events drawn as ticks on the strip above the lanes (deploys become annotations).
    pub events: &'a [TimelineLine],
    pub links: &'a KeyLinks<'a>,
}

/// Maps times to x coordinates over the padded window. In `i128` nanoseconds: event times
/// span all of `i64` (1677 to 2262), so a window, its padding and the distance between two
/// times may not fit in one.
#[derive(Clone, Copy, Debug)]
struct Scale {
    /// Window start and end, padded (`t0 < t1`).
    t0: i128,
    t1: i128,
}

impl Scale {
    fn new(start: i64, end: i64) -> Self {
        let (start, end) = (i128::from(start.min(end)), i128::from(start.max(end)));
        let span = (end - start).max(60 * NANOS_PER_SEC);
        let pad = (span / 40).max(NANOS_PER_SEC);
        let mid_fix = span - (end - start);
        let scale = Self {
            t0: start - pad - mid_fix / 2,
            t1: end + pad + (mid_fix - mid_fix / 2),
        };
        debug_assert!(scale.t0 < scale.t1);
        scale
    }

    fn x(self, nanos: i64) -> f64 {
        let nanos = i128::from(nanos).clamp(self.t0, self.t1);
        let fraction = (nanos - self.t0) as f64 / (self.t1 - self.t0) as f64;
        PLOT_X0 + fraction * (PLOT_X1 - PLOT_X0)
    }

    /// Whether `nanos` is before the window.
    fn before(self, nanos: i64) -> bool {
        i128::from(nanos) < self.t0
    }

    /// Whether `nanos` is after the window.
    fn after(self, nanos: i64) -> bool {
        i128::from(nanos) > self.t1
    }
}

const NANOS_PER_SEC: i128 = 1_000_000_000;
const YEAR_SECS: i64 = 31_536_000;

/// Tick spacing candidates, seconds.
const TICK_STEPS_SECS: &[i64] = &[
    1,
    2,
    3,
    5,
    10,
    15,
    20,
    30,
    40,
    60,
    90,
    120,
    180,
    240,
    300,
    600,
    900,
    1_200,
    1_800,
    2_400,
    3_600,
    5_400,
    7_200,
    10_800,
    14_400,
    21_600,
    28_800,
    43_200,
    86_400,
    172_800,
    345_600,
    604_800,
    1_209_600,
    1_728_000,
    2_592_000,
    3_888_000,
    5_184_000,
    7_776_000,
    15_552_000,
    YEAR_SECS,
    2 * YEAR_SECS,
    5 * YEAR_SECS,
    10 * YEAR_SECS,
    20 * YEAR_SECS,
    50 * YEAR_SECS,
    100 * YEAR_SECS,
    200 * YEAR_SECS,
];

/// Tick times (nanos) in `[t0, t1]` and their step in seconds: 4 to 6 ticks where a round step
/// allows; only times an event can have (`i64` nanoseconds).
fn ticks(t0: i128, t1: i128) -> (Vec<i64>, i64) {
    let first_at = |step: i128| t0.div_euclid(step) + i128::from(t0.rem_euclid(step) != 0);
    let count = |step_secs: i64| {
        let step = i128::from(step_secs) * NANOS_PER_SEC;
        (t1.div_euclid(step) - first_at(step) + 1).max(0)
    };
    let step_secs = TICK_STEPS_SECS
        .iter()
        .copied()
        .min_by_key(|&step| (count(step) - 5).abs())
        .unwrap_or(3_600);
    let step = i128::from(step_secs) * NANOS_PER_SEC;
    let mut at = first_at(step) * step;
    let mut out = Vec::new();
    while at <= t1 && out.len() < 12 {
        out.extend(i64::try_from(at).ok());
        at += step;
    }
    (out, step_secs)
}

/// [`ticks`] from `start` to `end`.
#[cfg(test)]
pub(super) fn ticks_between(start: i64, end: i64) -> (Vec<i64>, i64) {
    ticks(i128::from(start), i128::from(end))
}

fn tick_label(nanos: i64, step_secs: i64) -> String {
    let at = Timestamp::from_unix_nanos(nanos);
    let clock = clock_part(at);
    if step_secs >= YEAR_SECS {
        date_part(at)
    } else if step_secs >= 86_400 {
        date_part(at).get(5..).unwrap_or_default().to_owned()
    } else if step_secs >= 60 {
        clock.get(..5).unwrap_or(&clock).to_owned()
    } else {
        clock
    }
}

/// `text` cut to `max` characters with an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

fn resolution_word(kind: Option<ResolutionKind>) -> &'static str {
    match kind {
        Some(ResolutionKind::Auto) => "auto-resolved",
        Some(ResolutionKind::Manual) => "resolved by hand",
        Some(ResolutionKind::Recipe) => "resolved by recipe",
        Some(ResolutionKind::Informational) => "informational",
        Some(ResolutionKind::Source) => "resolved by the alerting system",
        None => "resolved",
    }
}

fn detector_word(detector: FlapDetector) -> &'static str {
    match detector {
        FlapDetector::Count => "count",
        FlapDetector::StateChange => "state change",
    }
}

/// The resolve marker of one occurrence, centred on (`x`, `y`).
fn resolve_marker(x: f64, y: f64, kind: Option<ResolutionKind>, title: &str) -> Markup {
    let class = kind.map_or("unknown", ResolutionKind::as_str);
    html! {
        @match kind {
            Some(ResolutionKind::Manual) => {
                rect class="mark mark-resolve mark-manual" x=(dec1(x - 4.5)) y=(dec1(y - 4.5))
                    width="9" height="9" { title { (title) } }
            }
            Some(ResolutionKind::Recipe) => {
                path class="mark mark-resolve mark-recipe"
                    d={
                        "M" (dec1(x)) " " (dec1(y - 6.0)) "L" (dec1(x + 6.0)) " " (dec1(y))
                        "L" (dec1(x)) " " (dec1(y + 6.0)) "L" (dec1(x - 6.0)) " " (dec1(y)) "Z"
                    } { title { (title) } }
            }
            _ => {
                circle class={ "mark mark-resolve mark-" (class) } cx=(dec1(x)) cy=(dec1(y))
                    r="4.5" { title { (title) } }
            }
        }
    }
}

/// The chart as an `<svg>`, with its legend.
pub(super) fn chart_html(chart: &Chart<'_>) -> Markup {
    let scale = Scale::new(chart.start, chart.end);
    let lanes_bottom = LANES_Y + LANE_HEIGHT * chart.lanes.len() as f64;
    let height = lanes_bottom + FOOT_HEIGHT;
    html! {
        div class="chart" {
            svg class="lanes" viewBox={ "0 0 " (WIDTH) " " (height) } width="100%"
                preserveAspectRatio="xMinYMin meet" role="img" aria-label="Findings over time" {
                "\n"
                defs {
                    pattern id="flap-hatch" width="6" height="6" patternUnits="userSpaceOnUse"
                        patternTransform="rotate(45)" {
                        rect width="6" height="6" fill="#fff4d6" {}
                        line x1="0" y1="0" x2="0" y2="6" stroke="#f0a500" stroke-width="2.5" {}
                    }
                } "\n"
                (axis(chart, scale, lanes_bottom))
                // Lane backgrounds first, so the vertical annotations sit on top of them.
                @for index in 0..chart.lanes.len() {
                    rect class=(if index % 2 == 0 { "lane-bg" } else { "lane-bg lane-alt" })
                        x="0" y=(dec1(LANES_Y + LANE_HEIGHT * index as f64)) width=(WIDTH)
                        height=(LANE_HEIGHT) {}
                }
                "\n"
                (event_strip(chart, scale))
                (annotations(chart, scale, lanes_bottom))
                @for (index, lane) in chart.lanes.iter().enumerate() {
                    (lane_svg(chart, scale, index, lane))
                }
            }
        } "\n"
        (legend(chart))
    }
}

/// The time axis, its grid and the window's date.
fn axis(chart: &Chart<'_>, scale: Scale, lanes_bottom: f64) -> Markup {
    let (tick_times, step_secs) = ticks(scale.t0, scale.t1);
    html! {
        text class="axis-caption" x=(dec1(LABEL_WIDTH - 4.0)) y=(dec1(AXIS_Y - 8.0)) {
            (date_part(Timestamp::from_unix_nanos(chart.start))) " UTC"
        } "\n"
        line class="axis" x1=(PLOT_X0) y1=(AXIS_Y) x2=(PLOT_X1) y2=(AXIS_Y) {} "\n"
        g class="ticks" {
            @for &tick in &tick_times {
                @let x = dec1(scale.x(tick));
                line class="grid" x1=(x) y1=(AXIS_Y) x2=(x) y2=(dec1(lanes_bottom)) {}
                line class="tick" x1=(x) y1=(dec1(AXIS_Y - 4.0)) x2=(x) y2=(AXIS_Y) {}
                text class="tick-label" x=(x) y=(dec1(AXIS_Y - 8.0)) {
                    title { (Timestamp::from_unix_nanos(tick).to_string()) }
                    (tick_label(tick, step_secs))
                }
            }
        } "\n"
    }
}

/// The events drawn as ticks on the strip above the lanes.
fn event_strip(chart: &Chart<'_>, scale: Scale) -> Markup {
    html! {
        @if !chart.events.is_empty() {
            text class="strip-label" x=(dec1(LABEL_WIDTH - 4.0)) y=(dec1(STRIP_Y + 12.0)) {
                "events"
            } "\n"
            g class="events" {
                @for line in chart.events {
                    a href={ "#seq-" (line.seq) } {
                        rect class={ "ev ev-" (family(line).0) }
                            x=(dec1(scale.x(line.at.unix_nanos()) - 1.5)) y=(STRIP_Y) width="3"
                            height=(STRIP_HEIGHT) rx="1" {
                            title {
                                "#" (line.seq) " " (clock_part(line.at)) " "
                                (line.event_type.as_str()) ": " (line.summary)
                            }
                        }
                    }
                }
            } "\n"
        }
    }
}

/// The vertical lines across the lanes, each linking to its timeline entry.
fn annotations(chart: &Chart<'_>, scale: Scale, lanes_bottom: f64) -> Markup {
    html! {
        g class="annotations" {
            @for annotation in &chart.annotations {
                @let x = scale.x(annotation.at.unix_nanos());
                @let anchor = if x > (PLOT_X0 + PLOT_X1) / 2.0 { "end" } else { "start" };
                a href={ "#seq-" (annotation.seq) } {
                    g class={ "annot annot-" (annotation.class) } {
                        title { (annotation.title) }
                        line x1=(dec1(x)) y1=(AXIS_Y) x2=(dec1(x)) y2=(dec1(lanes_bottom)) {}
                        @if matches!(annotation.class, "deploy" | "rollback" | "config") {
                            path class="flag"
                                d={ "M" (dec1(x)) " " (dec1(STRIP_Y)) "h9l-3 4l3 4h-9z" } {}
                        }
                        @if !annotation.label.is_empty() {
                            text class="annot-label" x=(dec1(x)) y=(dec1(lanes_bottom + 16.0))
                                text-anchor=(anchor) {
                                (annotation.label)
                            }
                        }
                    }
                }
            }
        } "\n"
    }
}

fn lane_svg(chart: &Chart<'_>, scale: Scale, index: usize, lane: &FindingLane) -> Markup {
    let top = LANES_Y + LANE_HEIGHT * index as f64;
    let y = top + LANE_HEIGHT / 2.0;
    let sev = lane.severity.as_str();
    let key = lane.check_key.as_str();
    let hidden = lane
        .history
        .iter()
        .filter(|o| {
            scale.after(o.opened_at.unix_nanos())
                || o.resolved_at.is_some_and(|r| scale.before(r.unix_nanos()))
        })
        .count();
    html! {
        g class="lane" data-check-key=(key) data-severity=(sev) {
            "\n"
            title {
                (key) " (" (sev) "): " (lane.history.len()) " occurrence(s)"
                @if hidden > 0 { ", " (hidden) " outside this window" }
            } "\n"
            rect class={ "sev-stripe fill-" (sev) } x="0" y=(dec1(top + 3.0)) width="4"
                height=(dec1(LANE_HEIGHT - 6.0)) {}
            a href=(chart.links.href(key)) {
                text class="lane-label" x="12" y=(dec1(y + 4.0)) { (truncate(key, LABEL_CHARS)) }
            } "\n"
            @for entry in &lane.maintenance {
                (maintenance_bands(chart, scale, top, entry))
            }
            @for episode in &lane.flaps {
                (flap_band(chart, scale, top, episode))
            }
            @for occurrence in &lane.history {
                (occurrence_svg(chart, scale, y, lane, occurrence))
            }
        } "\n"
    }
}

/// A hatched band for a flap episode (nothing when it is outside the window).
fn flap_band(chart: &Chart<'_>, scale: Scale, top: f64, episode: &FlapEpisodeView) -> Markup {
    let from = episode.started_at.unix_nanos();
    let to = episode.stopped_at.map_or(chart.end, |t| t.unix_nanos());
    if scale.before(to) || scale.after(from) {
        return html! {};
    }
    let (x0, x1) = (scale.x(from), scale.x(to));
    let until = match (&episode.stopped_at, &episode.stopped_because) {
        (Some(at), Some(why)) => format!("stopped {} ({why})", clock_part(*at)),
        (Some(at), None) => format!("stopped {}", clock_part(*at)),
        _ => "still flapping".to_owned(),
    };
    html! {
        rect class={ "flap flap-" (episode.detector.as_str()) } x=(dec1(x0)) y=(dec1(top + 4.0))
            width=(dec1((x1 - x0).max(3.0))) height=(dec1(LANE_HEIGHT - 8.0)) rx="3" {
            title {
                "flapping (" (detector_word(episode.detector)) ") from "
                (clock_part(episode.started_at)) ": " (episode.started_because) "; " (until)
            }
        } "\n"
    }
}

/// The intervals in which a maintenance window covering the lane was open over the chart's
/// span (and in effect: from its scheduling to its end), as bands behind the occurrences.
fn maintenance_intervals(chart: &Chart<'_>, entry: &BookEntry) -> Vec<(Timestamp, Timestamp)> {
    let from = Timestamp::from_unix_nanos(chart.start).max(entry.scheduled_event_time);
    let to = entry
        .ended
        .as_ref()
        .map_or(Timestamp::from_unix_nanos(chart.end), |(_, at, _)| {
            Timestamp::from_unix_nanos(chart.end).min(*at)
        });
    entry.window.open_intervals(from, to)
}

fn maintenance_bands(chart: &Chart<'_>, scale: Scale, top: f64, entry: &BookEntry) -> Markup {
    let data = entry.window.data();
    html! {
        @for (from, to) in maintenance_intervals(chart, entry) {
            @let (x0, x1) = (scale.x(from.unix_nanos()), scale.x(to.unix_nanos()));
            rect class="maint" data-window=(data.window) x=(dec1(x0)) y=(dec1(top + 1.0))
                width=(dec1((x1 - x0).max(2.0))) height=(dec1(LANE_HEIGHT - 2.0)) {
                title {
                    "maintenance window " (data.window) " (" (data.by) ": " (data.reason) "), "
                    (clock_part(from)) " to " (clock_part(to))
                }
            } "\n"
        }
    }
}

/// An occurrence's bar, its opening mark and its resolve mark (nothing outside the window).
fn occurrence_svg(
    chart: &Chart<'_>,
    scale: Scale,
    y: f64,
    lane: &FindingLane,
    occurrence: &Occurrence,
) -> Markup {
    let from = occurrence.opened_at.unix_nanos();
    let to = occurrence.resolved_at.map_or(chart.end, |t| t.unix_nanos());
    if scale.before(to) || scale.after(from) {
        return html! {};
    }
    let (x0, x1) = (scale.x(from), scale.x(to));
    let (key, sev) = (lane.check_key.as_str(), lane.severity.as_str());
    let active = occurrence.resolved_at.is_none();
    let span_title = match occurrence.resolved_at {
        Some(resolved) => format!(
            "active {} → {}, {}",
            clock_part(occurrence.opened_at),
            clock_part(resolved),
            resolution_word(occurrence.resolution_kind)
        ),
        None => format!("active since {}", clock_part(occurrence.opened_at)),
    };
    let opened_seq = occurrence.opened_seq;
    html! {
        rect class={ "occ fill-" (sev) @if active { " occ-active" } } x=(dec1(x0)) y=(dec1(y - 6.0))
            width=(dec1((x1 - x0).max(2.0))) height="12" rx="3" {
            title { (key) ": " (span_title) }
        }
        @if active {
            path class={ "active-arrow stroke-" (sev) }
                d={ "M" (dec1(x1 + 3.0)) " " (dec1(y - 6.0)) "l5 6l-5 6" } {}
        }
        a href={ "#seq-" (opened_seq) } {
            circle class={ "mark mark-open stroke-" (sev) } cx=(dec1(x0)) cy=(dec1(y)) r="4.5" {
                title {
                    (key) " opened " (occurrence.opened_at.to_rfc3339()) " (seq " (opened_seq) ")"
                }
            }
        }
        @if let (Some(at), Some(seq)) = (occurrence.resolved_at, occurrence.resolved_seq) {
            @let title = format!(
                "{key} {} {} (seq {seq})",
                resolution_word(occurrence.resolution_kind),
                at.to_rfc3339()
            );
            a href={ "#seq-" (seq) } {
                (resolve_marker(x1, y, occurrence.resolution_kind, &title))
            }
        }
        "\n"
    }
}

/// What the marks mean, under a chart: the resolution marks always, the rest when drawn.
fn legend(chart: &Chart<'_>) -> Markup {
    let has = |classes: &[&str]| chart.annotations.iter().any(|a| classes.contains(&a.class));
    html! {
        div class="legend" {
            span {
                svg width="26" height="12" {
                    rect class="occ fill-error" x="1" y="2" width="24" height="8" rx="3" {}
                }
                "active"
            }
            span {
                svg width="12" height="12" {
                    circle class="mark mark-open stroke-error" cx="6" cy="6" r="4.5" {}
                }
                "opened"
            }
            span {
                svg width="12" height="12" {
                    circle class="mark mark-auto" cx="6" cy="6" r="4.5" {}
                }
                "auto-resolved"
            }
            span {
                svg width="12" height="12" {
                    rect class="mark mark-manual" x="1.5" y="1.5" width="9" height="9" {}
                }
                "resolved by hand"
            }
            span {
                svg width="14" height="14" {
                    path class="mark mark-recipe" d="M7 1L13 7L7 13L1 7Z" {}
                }
                "resolved by recipe"
            }
            @if chart.lanes.iter().any(|l| !l.flaps.is_empty()) {
                span {
                    svg width="26" height="12" {
                        rect x="1" y="1" width="24" height="10" rx="3" fill="#fff4d6"
                            stroke="#f0a500" {}
                        path d="M4 11L12 1M10 11L18 1M16 11L24 1" stroke="#f0a500"
                            stroke-width="2" {}
                    }
                    "flapping"
                }
            }
            @if chart
                .lanes
                .iter()
                .flat_map(|l| &l.maintenance)
                .any(|entry| !maintenance_intervals(chart, entry).is_empty())
            {
                span {
                    svg width="26" height="12" {
                        rect class="maint" x="1" y="1" width="24" height="10" {}
                    }
                    "maintenance window"
                }
            }
            @if has(&["deploy", "rollback", "config"]) {
                span {
                    svg width="12" height="14" {
                        line class="legend-deploy" x1="6" y1="0" x2="6" y2="14" {}
                    }
                    "deploy / config"
                }
                span {
                    svg width="12" height="14" {
                        line class="legend-rollback" x1="6" y1="0" x2="6" y2="14" {}
                    }
                    "rollback"
                }
            }
            @if has(&["opened", "closed"]) {
                span {
                    svg width="12" height="14" {
                        line class="legend-incident" x1="6" y1="0" x2="6" y2="14" {}
                    }
                    "incident opened / closed"
                }
            }
        } "\n"
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The extremes an event time can take, and the ones of the issue (1970, 2262).
    const EXTREMES: [i64; 5] = [i64::MIN, -1, 0, 9_222_000_000_000_000_000, i64::MAX];

    #[test]
    fn a_window_over_the_whole_range_has_ordered_ends_and_dated_ticks() {
        for &start in &EXTREMES {
            for &end in &EXTREMES {
                let scale = Scale::new(start, end);
                assert!(scale.t0 < scale.t1, "{start}..{end}");
                let (ticks, step) = ticks(scale.t0, scale.t1);
                assert!(
                    !ticks.is_empty() && ticks.len() <= 12,
                    "{start}..{end}: {ticks:?}"
                );
                for tick in ticks {
                    assert!(!tick_label(tick, step).is_empty());
                }
            }
        }
        // 585 years: ticks every 100 years or so, labelled with their year.
        let (ticks, step) = ticks_between(i64::MIN, i64::MAX);
        assert!((4..=6).contains(&ticks.len()), "{ticks:?}");
        assert!(step >= 50 * YEAR_SECS);
        assert_eq!(tick_label(ticks[0], step).len(), "1700-01-01".len());
    }

    /// Any two event times make a window; any third lands on the plot, in order.
    #[test]
    fn any_times_map_onto_the_plot_in_order() {
        let times = (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>());
        crate::property::assert_property("lane scale", 2_000, times, |(start, end, a, b)| {
            let scale = Scale::new(start, end);
            prop_assert!(scale.t0 < scale.t1);
            let (xa, xb) = (scale.x(a), scale.x(b));
            for x in [xa, xb] {
                prop_assert!((PLOT_X0..=PLOT_X1).contains(&x), "{x}");
            }
            if a <= b {
                prop_assert!(xa <= xb);
            }
            let (ticks, _) = ticks(scale.t0, scale.t1);
            prop_assert!(ticks.len() <= 12);
            prop_assert!(ticks.windows(2).all(|w| w[0] < w[1]));
            Ok(())
        });
    }
}
