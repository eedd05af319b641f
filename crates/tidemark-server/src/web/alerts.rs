//! `/alerts`: the alerts from alerting systems (firing by default), and the home page's list of
//! what is firing or open that no open incident holds. An alert's own page is its finding's
//! (`/findings/{cluster}/alert:...`: its lanes, history and timeline).

use maud::{Markup, html};
use tidemark_core::findings::FindingOverview;
use tidemark_core::{FindingState, Timestamp};

use super::html::{
    Section, finding_href, human_secs, key_html, link, page, severity_badge, time_html,
};

/// How many alerts `/alerts` lists; the rest are paged through `GET /v1/alerts`.
pub const ALERTS_SHOWN: usize = 500;

/// How many findings the home page lists as firing or open outside any incident.
pub const UNHELD_SHOWN: usize = 100;

/// An alert's labels but its name and severity (which have their own columns), `k=v` each.
fn labels_html(finding: &FindingOverview) -> Markup {
    html! {
        @if let Some(facts) = &finding.alert {
            @for (name, value) in facts.labels.iter()
                .filter(|(name, _)| !matches!(name.as_str(), "alertname" | "severity")) {
                span class="label mono" { (name) "=" (value) } " "
            }
        }
    }
}

/// Firing (and stale, for how long), or resolved and how.
fn state_html(finding: &FindingOverview) -> Markup {
    html! {
        @match finding.state {
            FindingState::Active => {
                span class="badge state state-firing" { "firing" }
                @if let Some(stale) = &finding.stale {
                    " " span class="badge stale" title={ "stale since " (stale.stale_since) } {
                        "stale " (human_secs(stale.stale_for_secs))
                    }
                }
            },
            FindingState::Resolved => span class="badge state state-resolved" {
                "resolved" @if let Some(kind) = finding.resolution_kind { " (" (kind.as_str()) ")" }
            },
        }
    }
}

fn notified(finding: &FindingOverview) -> Option<Timestamp> {
    finding.alert.as_ref().map(|a| a.last_notified_at)
}

fn alert_row(finding: &FindingOverview) -> Markup {
    let href = finding_href(&finding.cluster, &finding.check_key);
    let name = finding
        .alert
        .as_ref()
        .map_or(finding.check_key.as_str(), |a| a.name.as_str());
    html! {
        tr class={ "alert sev-row-" (finding.severity.as_str()) } data-check-key=(finding.check_key) {
            td class="mono" { (finding.cluster) }
            td { (link(&href, "mono", name)) }
            td { (severity_badge(finding.severity)) }
            td { (state_html(finding)) }
            td { (time_html(finding.opened_at)) }
            td { @if let Some(at) = notified(finding) { (time_html(at)) } }
            td class="num" { (finding.occurrences) }
            td { @if finding.flapping || finding.flapping_state_change { span class="badge flapping" { "flapping" } } }
            td class="labels" { (labels_html(finding)) }
            td class="title" { (finding.title) }
        }
    }
}

/// The table of alerts.
fn alerts_table(alerts: &[FindingOverview]) -> Markup {
    html! {
        div class="card flush" {
            table class="alerts" {
                "\n"
                thead {
                    tr {
                        th { "Cluster" }
                        th { "Alert" }
                        th { "Severity" }
                        th { "State" }
                        th { "Since (UTC)" }
                        th { "Last notified" }
                        th class="num" { "Occurrences" }
                        th { "Flapping" }
                        th { "Labels" }
                        th { "Title" }
                    }
                } "\n"
                tbody {
                    "\n"
                    @for alert in alerts { (alert_row(alert)) "\n" }
                } "\n"
            }
        } "\n"
    }
}

/// `/alerts`: the alerts of `state` (`firing`, `stale`, `resolved` or `all`: the first
/// [`ALERTS_SHOWN`]; `more` when others follow) at log position `at_seq`.
pub fn alerts_page(alerts: &[FindingOverview], more: bool, state: &str, at_seq: u64) -> String {
    let body = html! {
        section class="page-head" {
            h1 { "Alerts" }
            p class="sub" {
                span class="stat stat-open" { b { (alerts.len()) } " " (state) }
                @for (value, label) in [("firing", "firing"), ("stale", "stale"), ("resolved", "resolved"), ("all", "all")] {
                    @if value != state {
                        span class="stat" { a href={ "/alerts?state=" (value) } { (label) } }
                    }
                }
                span class="asof" { "as of log position " code { (at_seq) } }
            }
        } "\n"
        @if alerts.is_empty() {
            p class="empty card" {
                @if state == "firing" { "Nothing is firing." } @else { "No alerts." }
            } "\n"
        } @else {
            (alerts_table(alerts))
        }
        @if more {
            p class="note card" {
                "More alerts follow the first " (alerts.len()) ": page through them with "
                code { "GET /v1/alerts?after=" } " (the " code { "next" } " of each page)."
            } "\n"
        }
    };
    page("Alerts", "page-alerts", Section::Alerts, body)
}

/// The home page's section: what is firing or open now that no open incident holds (the
/// first [`UNHELD_SHOWN`]; `more` when others follow).
pub(super) fn unheld_section(unheld: &[FindingOverview], more: bool) -> Markup {
    html! {
        section id="unheld" {
            h2 { "Firing or open, in no incident" }
            @if unheld.is_empty() {
                p class="empty card" { "Nothing is firing or open outside the incidents." } "\n"
            } @else {
                div class="card flush" {
                    table class="unheld" {
                        "\n"
                        thead {
                            tr {
                                th { "Cluster" }
                                th { "Finding" }
                                th { "Severity" }
                                th { "Since (UTC)" }
                                th { "Title" }
                            }
                        } "\n"
                        tbody {
                            "\n"
                            @for f in unheld {
                                tr class={ "finding sev-row-" (f.severity.as_str()) } data-check-key=(f.check_key) {
                                    td class="mono" { (f.cluster) }
                                    td { a class="mono" href=(finding_href(&f.cluster, &f.check_key)) { (key_html(&f.check_key)) } }
                                    td { (severity_badge(f.severity)) }
                                    td { (time_html(f.opened_at)) }
                                    td class="title" { (f.title) }
                                }
                                "\n"
                            }
                        } "\n"
                    }
                } "\n"
                @if more {
                    p class="note" {
                        "More follow the first " (unheld.len()) ": " a href="/alerts" { "the firing alerts" }
                        ", or " code { "GET /v1/findings?state=active" } "."
                    } "\n"
                }
            }
        } "\n"
    }
}
