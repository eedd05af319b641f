//! The timeline table shared by the incident and finding pages: events in log order, a kind
//! badge coloured by event family, the one-line summary and what the event did as chips.

use std::collections::BTreeMap;

use tidemark_core::EventType;
use tidemark_core::incidents::Touch;

use super::TimelineLine;
use super::html::{class_token, clock_part, date_part, escape, finding_href, w};

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
    }
}

/// Deploy, rollback or config: from the incident's touches, else from the summary's first word.
fn change_family(line: &TimelineLine) -> (&'static str, &'static str) {
    let touched_kind = line
        .touches
        .iter()
        .find(|t| matches!(t.change.as_str(), "deploy" | "rollback" | "config"))
        .map(|t| t.change.as_str());
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
        _ => None,
    };
    match known {
        Some((words, group)) => (words.to_owned(), group),
        None => (change.replace('_', " "), "info"),
    }
}

/// One touch as a chip; the check key links to its finding.
fn chip(out: &mut String, touch: &Touch, links: &KeyLinks<'_>) {
    let (words, group) = touch_words(&touch.change);
    w!(
        out,
        "<span class=\"chip chip-{group} chip-{}\">{}",
        class_token(&touch.change),
        escape(&words)
    );
    if let Some(key) = &touch.check_key {
        w!(
            out,
            " <a href=\"{}\"><code>{}</code></a>",
            escape(&links.href(key)),
            escape(key)
        );
    }
    out.push_str("</span>");
}

/// The timeline table; each row is `tr#seq-N.entry.entry-<type>` with `data-seq`.
pub(super) fn timeline_table(timeline: &[TimelineLine], links: &KeyLinks<'_>) -> String {
    if timeline.is_empty() {
        return "<p class=\"empty\">No events.</p>\n".to_owned();
    }
    let mut out = String::new();
    out.push_str(
        "<table class=\"timeline\">\n<thead><tr><th class=\"t\">Time (UTC)</th><th class=\"seq\">Seq</th>\
         <th>Kind</th><th>What happened</th><th>Effects</th></tr></thead>\n<tbody>\n",
    );
    let mut last_date = String::new();
    let late = tidemark_core::describe::late_entries(timeline.iter().map(|line| line.at));
    for (line, late) in timeline.iter().zip(late) {
        let (fam, label) = family(line);
        let wire = line.event_type.as_str();
        let date = date_part(line.at);
        w!(
            out,
            "<tr id=\"seq-{seq}\" data-seq=\"{seq}\" data-type=\"{wire}\" class=\"entry entry-{} fam-{fam}{}\">",
            class_token(wire),
            if late { " late" } else { "" },
            seq = line.seq,
        );
        let exact = escape(&line.at.to_rfc3339());
        out.push_str("<td class=\"t\">");
        if date != last_date {
            w!(out, "<span class=\"date\">{date}</span> ");
        }
        w!(
            out,
            "<time datetime=\"{exact}\" title=\"{exact}\">{}</time>",
            clock_part(line.at)
        );
        if late {
            out.push_str(
                " <span class=\"late-mark\" title=\"earlier than an entry before it: a late or \
                 backfilled event, applied where it landed in the log, at its cluster's clock\">late</span>",
            );
        }
        out.push_str("</td>");
        w!(
            out,
            "<td class=\"seq\"><a href=\"#seq-{seq}\">{seq}</a></td>\
             <td><span class=\"kind kind-{fam}\" title=\"{wire}\">{label}</span></td>\
             <td class=\"summary\">{}</td><td class=\"effects\">",
            escape(&line.summary),
            seq = line.seq,
        );
        for touch in line.touches.iter().filter(|t| !restates_event(t)) {
            chip(&mut out, touch, links);
        }
        out.push_str("</td></tr>\n");
        last_date = date;
    }
    out.push_str("</tbody>\n</table>\n");
    out
}
