//! The lanes chart: one lane per finding over a time window, inline SVG. Bars for active
//! occurrences, markers where they opened and how they were resolved, hatched bands for flap
//! episodes, vertical lines for deploys and the incident's open and close, a UTC time axis.

use tidemark_core::Timestamp;
use tidemark_core::findings::ResolutionKind;
use tidemark_core::flaps::FlapDetector;

use super::html::{clock_part, date_part, escape, w};
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
fn resolve_marker(out: &mut String, x: f64, y: f64, kind: Option<ResolutionKind>, title: &str) {
    let class = kind.map_or("unknown", ResolutionKind::as_str);
    match kind {
        Some(ResolutionKind::Manual) => w!(
            out,
            "<rect class=\"mark mark-resolve mark-manual\" x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\"><title>{title}</title></rect>",
            x - 4.5,
            y - 4.5
        ),
        Some(ResolutionKind::Recipe) => w!(
            out,
            "<path class=\"mark mark-resolve mark-recipe\" d=\"M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z\"><title>{title}</title></path>",
            y - 6.0,
            x + 6.0,
            y + 6.0,
            x - 6.0
        ),
        _ => w!(
            out,
            "<circle class=\"mark mark-resolve mark-{class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4.5\"><title>{title}</title></circle>"
        ),
    }
}

/// The chart as an `<svg>`, with its legend.
pub(super) fn chart_html(chart: &Chart<'_>) -> String {
    let scale = Scale::new(chart.start, chart.end);
    let lanes_bottom = LANES_Y + LANE_HEIGHT * chart.lanes.len() as f64;
    let height = lanes_bottom + FOOT_HEIGHT;
    let mut out = String::new();
    w!(
        out,
        "<div class=\"chart\"><svg class=\"lanes\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" role=\"img\" aria-label=\"Findings over time\">\n"
    );
    out.push_str(
        "<defs><pattern id=\"flap-hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"6\" height=\"6\" fill=\"#fff4d6\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#f0a500\" stroke-width=\"2.5\"/></pattern></defs>\n",
    );

    // Axis, grid and the window's date.
    let (tick_times, step_secs) = ticks(scale.t0, scale.t1);
    w!(
        out,
        "<text class=\"axis-caption\" x=\"{:.1}\" y=\"{:.1}\">{} UTC</text>\n",
        LABEL_WIDTH - 4.0,
        AXIS_Y - 8.0,
        date_part(Timestamp::from_unix_nanos(chart.start))
    );
    w!(
        out,
        "<line class=\"axis\" x1=\"{PLOT_X0}\" y1=\"{AXIS_Y}\" x2=\"{PLOT_X1}\" y2=\"{AXIS_Y}\"/>\n"
    );
    out.push_str("<g class=\"ticks\">");
    for &tick in &tick_times {
        let x = scale.x(tick);
        let exact = Timestamp::from_unix_nanos(tick);
        w!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{AXIS_Y}\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.1}\"/>\
             <line class=\"tick\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{AXIS_Y}\"/>\
             <text class=\"tick-label\" x=\"{x:.1}\" y=\"{:.1}\"><title>{exact}</title>{}</text>",
            AXIS_Y - 4.0,
            AXIS_Y - 8.0,
            tick_label(tick, step_secs)
        );
    }
    out.push_str("</g>\n");

    // Lane backgrounds first, so the vertical annotations sit on top of them.
    for (index, _) in chart.lanes.iter().enumerate() {
        let y = LANES_Y + LANE_HEIGHT * index as f64;
        let class = if index % 2 == 0 {
            "lane-bg"
        } else {
            "lane-bg lane-alt"
        };
        w!(
            out,
            "<rect class=\"{class}\" x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{LANE_HEIGHT}\"/>"
        );
    }
    out.push('\n');

    // The event strip.
    if !chart.events.is_empty() {
        w!(
            out,
            "<text class=\"strip-label\" x=\"{:.1}\" y=\"{:.1}\">events</text>\n<g class=\"events\">",
            LABEL_WIDTH - 4.0,
            STRIP_Y + 12.0
        );
        for line in chart.events {
            let x = scale.x(line.at.unix_nanos());
            let (fam, _) = family(line);
            w!(
                out,
                "<a href=\"#seq-{seq}\"><rect class=\"ev ev-{fam}\" x=\"{:.1}\" y=\"{STRIP_Y}\" width=\"3\" height=\"{STRIP_HEIGHT}\" rx=\"1\"><title>#{seq} {} {}: {}</title></rect></a>",
                x - 1.5,
                clock_part(line.at),
                line.event_type.as_str(),
                escape(&line.summary),
                seq = line.seq,
            );
        }
        out.push_str("</g>\n");
    }

    // Annotations.
    out.push_str("<g class=\"annotations\">");
    for annotation in &chart.annotations {
        let x = scale.x(annotation.at.unix_nanos());
        w!(
            out,
            "<a href=\"#seq-{seq}\"><g class=\"annot annot-{class}\"><title>{title}</title>\
             <line x1=\"{x:.1}\" y1=\"{AXIS_Y}\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.1}\"/>",
            seq = annotation.seq,
            class = annotation.class,
            title = escape(&annotation.title),
        );
        if matches!(annotation.class, "deploy" | "rollback" | "config") {
            w!(
                out,
                "<path class=\"flag\" d=\"M{x:.1} {:.1}h9l-3 4l3 4h-9z\"/>",
                STRIP_Y
            );
        }
        if !annotation.label.is_empty() {
            let anchor = if x > (PLOT_X0 + PLOT_X1) / 2.0 {
                "end"
            } else {
                "start"
            };
            w!(
                out,
                "<text class=\"annot-label\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                lanes_bottom + 16.0,
                escape(&annotation.label)
            );
        }
        out.push_str("</g></a>");
    }
    out.push_str("</g>\n");

    // Lanes.
    for (index, lane) in chart.lanes.iter().enumerate() {
        lane_svg(&mut out, chart, scale, index, lane);
    }
    out.push_str("</svg></div>\n");
    out.push_str(&legend(chart));
    out
}

fn lane_svg(out: &mut String, chart: &Chart<'_>, scale: Scale, index: usize, lane: &FindingLane) {
    let top = LANES_Y + LANE_HEIGHT * index as f64;
    let y = top + LANE_HEIGHT / 2.0;
    let sev = lane.severity.as_str();
    let key = escape(&lane.check_key);
    let hidden = lane
        .history
        .iter()
        .filter(|o| {
            scale.after(o.opened_at.unix_nanos())
                || o.resolved_at.is_some_and(|r| scale.before(r.unix_nanos()))
        })
        .count();
    w!(
        out,
        "<g class=\"lane\" data-check-key=\"{key}\" data-severity=\"{sev}\">\n<title>{key} ({sev}): {} occurrence(s){}</title>\n",
        lane.history.len(),
        if hidden > 0 {
            format!(", {hidden} outside this window")
        } else {
            String::new()
        }
    );
    w!(
        out,
        "<rect class=\"sev-stripe fill-{sev}\" x=\"0\" y=\"{:.1}\" width=\"4\" height=\"{:.1}\"/>",
        top + 3.0,
        LANE_HEIGHT - 6.0
    );
    w!(
        out,
        "<a href=\"{}\"><text class=\"lane-label\" x=\"12\" y=\"{:.1}\">{}</text></a>\n",
        escape(&chart.links.href(&lane.check_key)),
        y + 4.0,
        escape(&truncate(&lane.check_key, LABEL_CHARS))
    );

    for episode in &lane.flaps {
        let from = episode.started_at.unix_nanos();
        let to = episode.stopped_at.map_or(chart.end, |t| t.unix_nanos());
        if scale.before(to) || scale.after(from) {
            continue;
        }
        let (x0, x1) = (scale.x(from), scale.x(to));
        let until = match (&episode.stopped_at, &episode.stopped_because) {
            (Some(at), Some(why)) => format!("stopped {} ({why})", clock_part(*at)),
            (Some(at), None) => format!("stopped {}", clock_part(*at)),
            _ => "still flapping".to_owned(),
        };
        w!(
            out,
            "<rect class=\"flap flap-{}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\"><title>flapping ({}) from {}: {}; {}</title></rect>\n",
            episode.detector.as_str(),
            top + 4.0,
            (x1 - x0).max(3.0),
            LANE_HEIGHT - 8.0,
            detector_word(episode.detector),
            clock_part(episode.started_at),
            escape(&episode.started_because),
            escape(&until)
        );
    }

    for occurrence in &lane.history {
        let from = occurrence.opened_at.unix_nanos();
        let to = occurrence.resolved_at.map_or(chart.end, |t| t.unix_nanos());
        if scale.before(to) || scale.after(from) {
            continue;
        }
        let (x0, x1) = (scale.x(from), scale.x(to));
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
        w!(
            out,
            "<rect class=\"occ fill-{sev}{}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" rx=\"3\"><title>{key}: {span_title}</title></rect>",
            if active { " occ-active" } else { "" },
            y - 6.0,
            (x1 - x0).max(2.0)
        );
        if active {
            w!(
                out,
                "<path class=\"active-arrow stroke-{sev}\" d=\"M{:.1} {:.1}l5 6l-5 6\"/>",
                x1 + 3.0,
                y - 6.0
            );
        }
        w!(
            out,
            "<a href=\"#seq-{seq}\"><circle class=\"mark mark-open stroke-{sev}\" cx=\"{x0:.1}\" cy=\"{y:.1}\" r=\"4.5\"><title>{key} opened {} (seq {seq})</title></circle></a>",
            escape(&occurrence.opened_at.to_rfc3339()),
            seq = occurrence.opened_seq
        );
        if let (Some(at), Some(seq)) = (occurrence.resolved_at, occurrence.resolved_seq) {
            let title = format!(
                "{key} {} {} (seq {seq})",
                resolution_word(occurrence.resolution_kind),
                escape(&at.to_rfc3339())
            );
            w!(out, "<a href=\"#seq-{seq}\">");
            resolve_marker(out, x1, y, occurrence.resolution_kind, &title);
            out.push_str("</a>");
        }
        out.push('\n');
    }
    out.push_str("</g>\n");
}

/// What the marks mean, under a chart: the resolution marks always, the rest when drawn.
fn legend(chart: &Chart<'_>) -> String {
    let has = |classes: &[&str]| chart.annotations.iter().any(|a| classes.contains(&a.class));
    let mut out = String::from(
        "<div class=\"legend\">\
<span><svg width=\"26\" height=\"12\"><rect class=\"occ fill-error\" x=\"1\" y=\"2\" width=\"24\" height=\"8\" rx=\"3\"/></svg>active</span>\
<span><svg width=\"12\" height=\"12\"><circle class=\"mark mark-open stroke-error\" cx=\"6\" cy=\"6\" r=\"4.5\"/></svg>opened</span>\
<span><svg width=\"12\" height=\"12\"><circle class=\"mark mark-auto\" cx=\"6\" cy=\"6\" r=\"4.5\"/></svg>auto-resolved</span>\
<span><svg width=\"12\" height=\"12\"><rect class=\"mark mark-manual\" x=\"1.5\" y=\"1.5\" width=\"9\" height=\"9\"/></svg>resolved by hand</span>\
<span><svg width=\"14\" height=\"14\"><path class=\"mark mark-recipe\" d=\"M7 1L13 7L7 13L1 7Z\"/></svg>resolved by recipe</span>",
    );
    if chart.lanes.iter().any(|l| !l.flaps.is_empty()) {
        out.push_str(
            "<span><svg width=\"26\" height=\"12\"><rect x=\"1\" y=\"1\" width=\"24\" height=\"10\" rx=\"3\" fill=\"#fff4d6\" stroke=\"#f0a500\"/>\
<path d=\"M4 11L12 1M10 11L18 1M16 11L24 1\" stroke=\"#f0a500\" stroke-width=\"2\"/></svg>flapping</span>",
        );
    }
    if has(&["deploy", "rollback", "config"]) {
        out.push_str(
            "<span><svg width=\"12\" height=\"14\"><line class=\"legend-deploy\" x1=\"6\" y1=\"0\" x2=\"6\" y2=\"14\"/></svg>deploy / config</span>\
<span><svg width=\"12\" height=\"14\"><line class=\"legend-rollback\" x1=\"6\" y1=\"0\" x2=\"6\" y2=\"14\"/></svg>rollback</span>",
        );
    }
    if has(&["opened", "closed"]) {
        out.push_str(
            "<span><svg width=\"12\" height=\"14\"><line class=\"legend-incident\" x1=\"6\" y1=\"0\" x2=\"6\" y2=\"14\"/></svg>incident opened / closed</span>",
        );
    }
    out.push_str("</div>\n");
    out
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
