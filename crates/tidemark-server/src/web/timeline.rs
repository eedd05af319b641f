//! The timeline table shared by the incident and finding pages: events in log order, a kind
//! badge coloured by event family, the one-line summary and what the event did as chips.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tidemark_core::EventType;
use tidemark_core::incidents::Touch;

use super::TimelineLine;
use super::html::{class_token, clock_part, date_part, finding_href};

/// Where a check key named on a page links: its finding page, in the cluster it belongs to.
#[derive(Debug)]
pub(super) struct KeyLinks<'a> {
    /// Cluster of keys not listed in `by_key`.
    pub default_cluster: &'a str,
    /// Cluster by check key.
    pub by_key: BTreeMap<&'a str, &'a str>,
}

impl KeyLinks<'_> {
    /// `/findings/{cluster}/{check_key}` of a key.
    pub fn href(&self, check_key: &str) -> String {
        let cluster = self
            .by_key
            .get(check_key)
            .copied()
            .unwrap_or(self.default_cluster);
        finding_href(cluster, check_key)
    }
}

const NOTE_KINDS: [&str; 5] = [
    "observation",
    "hypothesis",
    "action",
    "decision",
    "resolution",
];

/// The touch naming `prefix<word>` among a line's touches, if any.
fn touched<'a>(line: &'a TimelineLine, prefix: &str) -> Option<&'a str> {
    line.touches
        .iter()
        .find_map(|t| t.change.strip_prefix(prefix))
}

/// The family of an event (a CSS class suffix) and its badge label.
pub(super) fn family(line: &TimelineLine) -> (&'static str, &'static str) {
    match line.event_type {
        EventType::CycleCompleted => ("cycle", "cycle"),
        EventType::FindingResolved => ("resolved", "resolved"),
        EventType::SettingsChanged => ("settings", "settings"),
        EventType::InventoryObserved => ("inventory", "inventory"),
        EventType::TrackingUpserted | EventType::TrackingDeleted => ("tracking", "tracking"),
        EventType::SpanRecorded => ("span", "span"),
        EventType::AlertFired => ("alert-fired", "alert fired"),
        EventType::AlertResolved => ("alert-resolved", "alert resolved"),
        EventType::ChangeDeployed => change_family(line),
        EventType::NoteAdded => note_family(line),
        EventType::IncidentOpened => ("incident", "incident opened"),
        EventType::IncidentUpdated => ("incident", "incident updated"),
        EventType::IncidentClosed => ("incident", "incident closed"),
        EventType::MaintenanceScheduled => ("maintenance", "maintenance"),
        EventType::MaintenanceCancelled => ("maintenance", "maintenance cancelled"),
    }
}

/// Deploy, rollback or config: from the incident's touches (linked, else linked only by time:
/// `deploy_during`, ...), else from the summary's first word.
fn change_family(line: &TimelineLine) -> (&'static str, &'static str) {
    fn kind_of(touch: &Touch) -> Option<&str> {
        let kind = touch
            .change
            .strip_suffix("_during")
            .unwrap_or(&touch.change);
        matches!(kind, "deploy" | "rollback" | "config").then_some(kind)
    }
    let touched_kind = line
        .touches
        .iter()
        .filter(|t| !t.change.ends_with("_during"))
        .find_map(kind_of)
        .or_else(|| line.touches.iter().find_map(kind_of));
    let kind = touched_kind.unwrap_or_else(|| line.summary.split(' ').next().unwrap_or(""));
    match kind {
        "rollback" => ("rollback", "rollback"),
        "config" => ("config", "config"),
        _ => ("deploy", "deploy"),
    }
}

/// A note by its kind: from the incident's `note_<kind>` touch, else the summary's first word.
fn note_family(line: &TimelineLine) -> (&'static str, &'static str) {
    let kind =
        touched(line, "note_").unwrap_or_else(|| line.summary.split(' ').next().unwrap_or(""));
    match NOTE_KINDS.iter().position(|k| *k == kind) {
        Some(0) => ("note-observation", "observation"),
        Some(1) => ("note-hypothesis", "hypothesis"),
        Some(2) => ("note-action", "action"),
        Some(3) => ("note-decision", "decision"),
        Some(4) => ("note-resolution", "resolution"),
        _ => ("note", "note"),
    }
}

/// Touches that only restate the event's own kind, left out of the effects.
fn restates_event(touch: &Touch) -> bool {
    touch.check_key.is_none()
        && (touch.change.starts_with("note_")
            || matches!(
                touch.change.as_str(),
                "deploy"
                    | "rollback"
                    | "config"
                    | "alert_fired"
                    | "alert_resolved"
                    | "incident_opened"
                    | "incident_updated"
            ))
}

/// A touch in words, and its colour group.
fn touch_words(change: &str) -> (String, &'static str) {
    let known = match change {
        "opened" => Some(("opened", "bad")),
        "joined" => Some(("joined", "bad")),
        // Opened inside a maintenance window; offered to incidents when it ended (ADR 0007).
        "maintenance_ended" => Some(("joined after its maintenance window", "bad")),
        "severity_changed" => Some(("severity changed", "bad")),
        "resolved_auto" => Some(("auto-resolved", "good")),
        "resolved_manual" => Some(("resolved by hand", "good")),
        "resolved_recipe" => Some(("resolved by recipe", "good")),
        "informational" => Some(("informational", "muted")),
        "flap_started_count" => Some(("flapping (count)", "flap")),
        "flap_started_state_change" => Some(("flapping (state change)", "flap")),
        "flap_stopped_count" => Some(("stopped flapping (count)", "muted")),
        "flap_stopped_state_change" => Some(("stopped flapping (state change)", "muted")),
        "layer" => Some(("new failure layer", "layer")),
        "no_effect" => Some(("no effect", "muted")),
        "merged" => Some(("merged", "info")),
        "incident_closed" => Some(("incident closed", "good")),
        "alert_fired" => Some(("alert fired", "bad")),
        "alert_resolved" => Some(("alert resolved", "good")),
        // A change in the incident's cluster while it was open, linked to it neither by what it
        // names nor by resource (ADR 0007).
        "deploy_during" | "rollback_during" | "config_during" => {
            Some(("during the incident, linked only by time", "muted"))
        }
        _ => None,
    };
    match known {
        Some((words, group)) => (words.to_owned(), group),
        None => (change.replace('_', " "), "info"),
    }
}

/// One touch as a chip; the check key links to its finding.
fn chip(touch: &Touch, links: &KeyLinks<'_>) -> Markup {
    let (words, group) = touch_words(&touch.change);
    html! {
        span class={ "chip chip-" (group) " chip-" (class_token(&touch.change)) } {
            (words)
            @if let Some(key) = &touch.check_key {
                " " a href=(links.href(key)) { code { (key) } }
            }
        }
    }
}

/// What `late` says when a reader hovers it.
const LATE_TITLE: &str = "earlier than an entry before it: a late or backfilled event, applied \
                          where it landed in the log, at its cluster's clock";

/// The timeline table; each row is `tr#seq-N.entry.entry-<type>` with `data-seq`.
pub(super) fn timeline_table(timeline: &[TimelineLine], links: &KeyLinks<'_>) -> Markup {
    if timeline.is_empty() {
        return html! { p class="empty" { "No events." } "\n" };
    }
    let late = tidemark_core::describe::late_entries(timeline.iter().map(|line| line.at));
    // The date is shown on the first row of each day.
    let mut last_date = String::new();
    let rows: Vec<(&TimelineLine, bool, Option<String>)> = timeline
        .iter()
        .zip(late)
        .map(|(line, late)| {
            let date = date_part(line.at);
            let new_day = (date != last_date).then(|| date.clone());
            last_date = date;
            (line, late, new_day)
        })
        .collect();
    html! {
        table class="timeline" {
            "\n"
            thead {
                tr {
                    th class="t" { "Time (UTC)" }
                    th class="seq" { "Seq" }
                    th { "Kind" }
                    th { "What happened" }
                    th { "Effects" }
                }
            } "\n"
            tbody {
                "\n"
                @for (line, late, new_day) in rows {
                    (timeline_row(line, late, new_day.as_deref(), links)) "\n"
                }
            } "\n"
        } "\n"
    }
}

fn timeline_row(
    line: &TimelineLine,
    late: bool,
    new_day: Option<&str>,
    links: &KeyLinks<'_>,
) -> Markup {
    let (fam, label) = family(line);
    let wire = line.event_type.as_str();
    let exact = line.at.to_rfc3339();
    let seq = line.seq;
    html! {
        tr id={ "seq-" (seq) } data-seq=(seq) data-type=(wire)
            class={ "entry entry-" (class_token(wire)) " fam-" (fam) @if late { " late" } } {
            td class="t" {
                @if let Some(date) = new_day {
                    span class="date" { (date) } " "
                }
                time datetime=(exact) title=(exact) { (clock_part(line.at)) }
                @if late {
                    " " span class="late-mark" title=(LATE_TITLE) { "late" }
                }
            }
            td class="seq" { a href={ "#seq-" (seq) } { (seq) } }
            td { span class={ "kind kind-" (fam) } title=(wire) { (label) } }
            td class="summary" { (line.summary) }
            td class="effects" {
                @for touch in line.touches.iter().filter(|t| !restates_event(t)) {
                    (chip(touch, links))
                }
            }
        }
    }
}
