//! `/`: the list of incidents, open ones first, and what is firing or open outside them.

use maud::{Markup, html};
use tidemark_core::findings::FindingOverview;
use tidemark_core::incidents::{IncidentState, IncidentView};

use super::html::{
    Live, Section, human_secs, incident_href, link, live_page, severity_badge, state_badge,
    time_html,
};
use super::{incident_kind_word, incident_state_word};

/// `/`: every incident, open ones first, newest first within each group, and beside them what is firing or open that no open
/// incident holds (`unheld`, the first [`super::UNHELD_SHOWN`]; `unheld_more` when others
/// follow).
pub fn incidents_page(
    incidents: &[IncidentView],
    unheld: &[FindingOverview],
    unheld_more: bool,
    at_seq: u64,
    live: Option<&Live>,
) -> String {
    let count = |state| incidents.iter().filter(|i| i.state == state).count();
    let mut ordered: Vec<&IncidentView> = incidents.iter().collect();
    ordered.sort_by(|a, b| {
        (a.state != IncidentState::Open)
            .cmp(&(b.state != IncidentState::Open))
            .then(b.opened_seq.cmp(&a.opened_seq))
            .then_with(|| a.id.cmp(&b.id))
    });
    let body = html! {
        section class="page-head" {
            h1 { "Incidents" }
            p class="sub" {
                span class="stat stat-open" { b { (count(IncidentState::Open)) } " open" }
                span class="stat" { b { (count(IncidentState::Closed)) } " closed" }
                span class="stat" { b { (count(IncidentState::Merged)) } " merged" }
                span class="asof" { "as of log position " code { (at_seq) } }
            }
        } "\n"
        @if incidents.is_empty() {
            p class="empty card" { "No incidents." } "\n"
        } @else {
            div class="card flush" {
                table class="incidents" {
                    "\n"
                    thead {
                        tr {
                            th { "Incident" }
                            th { "State" }
                            th { "Severity" }
                            th { "Kind" }
                            th { "Cluster" }
                            th { "Opened (UTC)" }
                            th { "Duration" }
                            th class="num" { "Findings" }
                            th { "Title" }
                        }
                    } "\n"
                    tbody {
                        "\n"
                        @for incident in ordered { (incident_row(incident)) "\n" }
                    } "\n"
                }
            } "\n"
        }
        (super::alerts::unheld_section(unheld, unheld_more))
    };
    live_page(
        "Incidents",
        "page-incidents",
        Section::Incidents,
        body,
        live,
    )
}

fn incident_row(incident: &IncidentView) -> Markup {
    let state = incident_state_word(incident.state);
    let href = incident_href(&incident.id);
    html! {
        tr class={ "incident incident-" (state) " sev-row-" (incident.severity.as_str()) }
            data-incident-id=(incident.id) {
            td { (link(&href, "mono id", &incident.id)) }
            td { (state_badge(state)) }
            td { (severity_badge(incident.severity)) }
            td { (incident_kind_word(incident.kind)) }
            td class="mono" { (incident.cluster) }
            td { (time_html(incident.opened_at)) }
            td {
                @match (incident.duration_secs, &incident.merged_into) {
                    (_, Some(into)) => { "merged into " (link(&incident_href(into), "mono", into)) }
                    (Some(secs), None) => (human_secs(secs)),
                    (None, None) => span class="ongoing" { "ongoing" },
                }
            }
            td class="num" { (incident.findings.len()) }
            td class="title" { (link(&href, "", &incident.title)) }
        }
    }
}
