//! `/incidents/{id}`: an incident's header, its findings, failure layers, the lanes chart of its
//! findings over time and its timeline.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tidemark_core::event::ChangeKind;
use tidemark_core::incidents::{
    ChangeRef, FailureLayer, IncidentFindingView, IncidentState, IncidentView, ResourceLayers,
};
use tidemark_core::{EventType, Timestamp};

use super::html::{
    Live, Section, class_token, clock_part, encode_segment, facts, finding_href, human_secs,
    incident_href, key_html, link, live_page, secs_between, seq_link, severity_badge, state_badge,
    time_html,
};
use super::lanes::{Annotation, Chart, chart_html};
use super::timeline::{self, KeyLinks, timeline_table};
use super::{FindingLane, TimelineLine, incident_kind_word, incident_state_word};

/// `/incidents/{id}`: header, findings, failure layers, the lanes chart and the timeline.
pub fn incident_page(
    incident: &IncidentView,
    timeline: &[TimelineLine],
    lanes: &[FindingLane],
    at_seq: u64,
    live: Option<&Live>,
) -> String {
    let links = KeyLinks {
        default_cluster: &incident.cluster,
        by_key: incident
            .findings
            .iter()
            .map(|f| (f.check_key.as_str(), f.cluster.as_str()))
            .collect(),
    };
    let body = html! {
        nav class="crumbs" { a href="/" { "Incidents" } " / " (key_html(&incident.id)) } "\n"
        (header(incident, timeline, at_seq))
        (findings(incident, lanes))
        @if !incident.layers.is_empty() {
            section id="layers" {
                h2 { "Failure layers" } "\n"
                p class="hint" {
                    "Each fix revealed the next failure: layers in the order they appeared."
                } "\n"
                (layers_html(&incident.layers, &links))
            } "\n"
        }
        section id="lanes" {
            h2 { "Findings over time" } "\n"
            @if lanes.is_empty() {
                p class="empty card" { "No findings to draw." } "\n"
            } @else {
                div class="card" { (incident_chart(incident, timeline, lanes, &links)) } "\n"
            }
        } "\n"
        section id="timeline" {
            h2 { "Timeline " span class="count" { (timeline.len()) } } "\n"
            div class="card flush" { (timeline_table(timeline, &links)) }
        } "\n"
    };
    live_page(
        &format!("{} — {}", incident.id, incident.title),
        "page-incident",
        Section::Incidents,
        body,
        live,
    )
}

/// The card at the top: badges, title, facts, summary, links.
fn header(incident: &IncidentView, timeline: &[TimelineLine], at_seq: u64) -> Markup {
    let state = incident_state_word(incident.state);
    let id_path = encode_segment(&incident.id);
    let last_event = timeline.iter().map(|l| l.at).max();
    let duration = match (incident.duration_secs, last_event) {
        (Some(secs), _) => html! { (human_secs(secs)) },
        (None, Some(last)) if incident.state == IncidentState::Open => html! {
            span class="ongoing" { "ongoing" }
            " · " (human_secs(secs_between(incident.opened_at, last))) " to the last event"
        },
        _ => html! { "—" },
    };
    let mut items = vec![
        ("Id", key_html(&incident.id)),
        ("Cluster", key_html(&incident.cluster)),
        (
            "Opened",
            html! { (time_html(incident.opened_at)) " " (seq_link(incident.opened_seq)) },
        ),
        (
            "Closed",
            html! {
                @match (incident.closed_at, incident.closed_seq) {
                    (Some(at), Some(seq)) => { (time_html(at)) " " (seq_link(seq)) }
                    (Some(at), None) => (time_html(at)),
                    _ => "—",
                }
            },
        ),
        ("Duration", duration),
        ("Findings", html! { (incident.findings.len()) }),
        ("Timeline", html! { (incident.timeline_entries) " entries" }),
    ];
    if !incident.notes.is_empty() {
        items.push((
            "Notes",
            html! {
                @for (i, (kind, n)) in incident.notes.iter().enumerate() {
                    @if i > 0 { " " }
                    span class={ "kind kind-note-" (class_token(kind)) } { (n) " " (kind) }
                }
            },
        ));
    }
    items.push(("As of", html! { "log position " code { (at_seq) } }));
    html! {
        section class={ "card head sev-edge-" (incident.severity.as_str()) } id="incident"
            data-incident-id=(incident.id) {
            div class="badges" {
                (state_badge(state))
                (severity_badge(incident.severity))
                span class="badge kind-badge" { (incident_kind_word(incident.kind)) }
            }
            h1 { (incident.title) } "\n"
            (facts(&items))
            @if let Some(summary) = &incident.summary {
                p class="summary-text" { (summary) } "\n"
            }
            @if let Some(into) = &incident.merged_into {
                p class="merged" {
                    "Merged into " (link(&incident_href(into), "mono", into)) "."
                } "\n"
            }
            p class="api-links" {
                a href={ "/v1/incidents/" (id_path) } { "JSON" }
                " · "
                a href={ "/v1/incidents/" (id_path) "/postmortem?format=md" } {
                    "Postmortem (Markdown)"
                }
            }
        } "\n"
    }
}

/// The incident's findings, each linking to its page.
fn findings(incident: &IncidentView, lanes: &[FindingLane]) -> Markup {
    let flapped: BTreeMap<&str, bool> = lanes
        .iter()
        .map(|l| (l.check_key.as_str(), !l.flaps.is_empty()))
        .collect();
    html! {
        section id="findings" {
            h2 { "Findings " span class="count" { (incident.findings.len()) } } "\n"
            @if incident.findings.is_empty() {
                p class="empty card" { "No findings." } "\n"
            } @else {
                div class="card flush" {
                    table class="findings" {
                        "\n"
                        thead {
                            tr {
                                th { "Check key" }
                                th { "Title" }
                                th { "Severity" }
                                th { "State" }
                                th { "Joined (UTC)" }
                            }
                        } "\n"
                        tbody {
                            "\n"
                            @for finding in &incident.findings {
                                @let key = finding.check_key.as_str();
                                (finding_row(finding, flapped.get(key) == Some(&true))) "\n"
                            }
                        } "\n"
                    }
                } "\n"
            }
        } "\n"
    }
}

fn finding_row(finding: &IncidentFindingView, flapped: bool) -> Markup {
    let href = finding_href(&finding.cluster, &finding.check_key);
    html! {
        tr class="finding" data-check-key=(finding.check_key) {
            td { (link(&href, "mono", &finding.check_key)) }
            td { (finding.title.as_deref().unwrap_or("")) }
            td { (severity_badge(finding.severity)) }
            td {
                (state_badge(if finding.active { "active" } else { "resolved" }))
                @if flapped { " " span class="badge flapping" { "flapped" } }
            }
            td { (time_html(finding.joined_at)) }
        }
    }
}

fn change_ref_html(change: &ChangeRef) -> Markup {
    let kind = match change.kind {
        ChangeKind::Deploy => "deploy",
        ChangeKind::Rollback => "rollback",
        ChangeKind::Config => "config",
    };
    html! {
        span class={ "change change-" (kind) } {
            (kind) " " code { (change.service) } " " code { (change.version) } " "
            (seq_link(change.seq))
        }
    }
}

/// Changes separated by commas.
fn change_list(changes: &[ChangeRef]) -> Markup {
    html! {
        @for (i, change) in changes.iter().enumerate() {
            @if i > 0 { ", " }
            (change_ref_html(change))
        }
    }
}

fn layers_html(resources: &[ResourceLayers], links: &KeyLinks<'_>) -> Markup {
    html! {
        @for resource in resources {
            div class="card resource-layers" {
                h3 { (key_html(&resource.resource)) }
                ol class="layers" {
                    "\n"
                    @for layer in &resource.layers { (layer_item(layer, links)) "\n" }
                }
                @if let Some(change) = &resource.armed_by {
                    p class="armed" {
                        "waiting for the next observation after " (change_ref_html(change))
                    }
                }
            } "\n"
        }
    }
}

/// One failure layer: its signature, where and when it was first seen, and what changes did.
fn layer_item(layer: &FailureLayer, links: &KeyLinks<'_>) -> Markup {
    html! {
        li class="layer" data-layer=(layer.number) {
            span class="layer-no" { (layer.number) }
            div class="layer-body" {
                div class="signature" { (layer.signature) }
                div class="layer-meta" {
                    (link(&links.href(&layer.check_key), "mono", &layer.check_key))
                    " · first seen " (time_html(layer.first_seen_at)) " "
                    (seq_link(layer.first_seen_seq))
                    @if let Some(change) = &layer.after_change {
                        " · appeared after " (change_ref_html(change))
                    }
                }
                @if !layer.changes_without_effect.is_empty() {
                    div class="no-effect" {
                        "unchanged after " (change_list(&layer.changes_without_effect))
                    }
                }
                @for failure in &layer.failed_differently {
                    div class="failed-differently" {
                        (change_ref_html(&failure.change)) " failed differently: "
                        code { (failure.signature) } " " (seq_link(failure.seen_seq))
                    }
                }
                @if !layer.seen_again_after.is_empty() {
                    div class="seen-again" {
                        "seen again after " (change_list(&layer.seen_again_after))
                    }
                }
            }
        }
    }
}

/// The chart window of an incident: from its opening (or the opening of an occurrence still
/// active then) to its closing or its last event, whichever is later.
fn incident_window(
    incident: &IncidentView,
    timeline: &[TimelineLine],
    lanes: &[FindingLane],
) -> (i64, i64) {
    let opened = incident.opened_at.unix_nanos();
    let last_event = timeline.iter().map(|l| l.at.unix_nanos()).max();
    let end = incident
        .closed_at
        .map(Timestamp::unix_nanos)
        .into_iter()
        .chain(last_event)
        .max()
        .unwrap_or(opened)
        .max(opened);
    let mut start = opened;
    if let Some(first) = timeline.iter().map(|l| l.at.unix_nanos()).min() {
        start = start.min(first);
    }
    for occurrence in lanes.iter().flat_map(|l| &l.history) {
        let from = occurrence.opened_at.unix_nanos();
        let to = occurrence
            .resolved_at
            .map_or(i64::MAX, Timestamp::unix_nanos);
        if from <= end && to >= opened {
            start = start.min(from);
        }
    }
    (start, end)
}

/// The lanes of the incident's findings, with its opening, closing and changes drawn across.
fn incident_chart(
    incident: &IncidentView,
    timeline: &[TimelineLine],
    lanes: &[FindingLane],
    links: &KeyLinks<'_>,
) -> Markup {
    let (start, end) = incident_window(incident, timeline, lanes);
    let mut annotations = vec![Annotation {
        at: incident.opened_at,
        seq: incident.opened_seq,
        label: "incident opened".to_owned(),
        title: format!("incident opened {}", incident.opened_at),
        class: "opened",
    }];
    if let (Some(at), Some(seq)) = (incident.closed_at, incident.closed_seq) {
        annotations.push(Annotation {
            at,
            seq,
            label: "closed".to_owned(),
            title: format!("incident closed {at}"),
            class: "closed",
        });
    }
    for line in timeline
        .iter()
        .filter(|l| l.event_type == EventType::ChangeDeployed)
    {
        let (class, _) = timeline::family(line);
        annotations.push(Annotation {
            at: line.at,
            seq: line.seq,
            label: String::new(),
            title: format!("{} #{}: {}", clock_part(line.at), line.seq, line.summary),
            class,
        });
    }
    let events: Vec<TimelineLine> = timeline
        .iter()
        .filter(|l| l.event_type != EventType::ChangeDeployed)
        .cloned()
        .collect();
    chart_html(&Chart {
        lanes,
        start,
        end,
        annotations,
        events: &events,
        links,
    })
}
