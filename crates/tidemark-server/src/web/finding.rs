//! `/findings/{cluster}/{check_key}`: a finding's state, a one-lane chart of its history, its
//! occurrences, flap episodes and timeline.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tidemark_core::findings::{FindingState, FindingView, Occurrence, ResolutionKind};
use tidemark_core::flaps::{FlapDetector, FlapEpisodeView};
use tidemark_core::{EventType, Timestamp};

use super::html::{
    Section, clock_part, encode_segment, facts, human_secs, key_html, page, secs_between, seq_link,
    severity_badge, state_badge, time_html,
};
use super::lanes::{Annotation, Chart, chart_html};
use super::timeline::{self, KeyLinks, timeline_table};
use super::{FindingLane, TimelineLine};

fn detector_word(detector: FlapDetector) -> &'static str {
    match detector {
        FlapDetector::Count => "count",
        FlapDetector::StateChange => "state change",
    }
}

fn resolution_badge(kind: Option<ResolutionKind>) -> Markup {
    let (class, words) = match kind {
        Some(ResolutionKind::Auto) => ("auto", "auto"),
        Some(ResolutionKind::Manual) => ("manual", "by hand"),
        Some(ResolutionKind::Recipe) => ("recipe", "recipe"),
        Some(ResolutionKind::Informational) => ("informational", "informational"),
        None => ("unknown", "resolved"),
    };
    html! { span class={ "badge how how-" (class) } { (words) } }
}

/// `/findings/{cluster}/{check_key}`: a finding's state, its occurrences, flap episodes, a
/// one-lane chart of its history and its timeline.
pub fn finding_page(
    finding: &FindingView,
    timeline: &[TimelineLine],
    flaps: &[FlapEpisodeView],
) -> String {
    let links = KeyLinks {
        default_cluster: &finding.cluster,
        by_key: BTreeMap::new(),
    };
    let body = html! {
        nav class="crumbs" {
            a href="/" { "Incidents" }
            " / finding / " (key_html(&finding.cluster)) " / " (key_html(&finding.check_key))
        } "\n"
        (header(finding))
        @if let Some(first) = finding.history.first() {
            section id="lanes" {
                h2 { "History" } "\n"
                div class="card" {
                    (history_chart(finding, first.opened_at, timeline, flaps, &links))
                }
            } "\n"
        }
        (occurrences(finding))
        @if !flaps.is_empty() {
            (flap_episodes(flaps))
        }
        section id="timeline" {
            h2 { "Timeline " span class="count" { (timeline.len()) } } "\n"
            div class="card flush" { (timeline_table(timeline, &links)) }
        } "\n"
    };
    page(
        &format!("{} — {}", finding.check_key, finding.title),
        "page-finding",
        Section::None,
        body,
    )
}

/// The card at the top: badges, title, key, facts and the JSON link.
fn header(finding: &FindingView) -> Markup {
    let state = match finding.state {
        FindingState::Active => "active",
        FindingState::Resolved => "resolved",
    };
    let yes_no = |yes: bool| {
        html! {
            @if yes { b class="yes" { "yes" } } @else { "no" }
        }
    };
    let mut items = vec![
        ("Cluster", key_html(&finding.cluster)),
        ("Latest opened", time_html(finding.opened_at)),
        ("Last seen", time_html(finding.last_seen_at)),
    ];
    if let Some(resolved) = finding.resolved_at {
        items.push((
            "Resolved",
            html! { (time_html(resolved)) " " (resolution_badge(finding.resolution_kind)) },
        ));
    }
    if let Some(clean) = finding.clean_cycles {
        items.push(("Clean cycles", html! { (clean) }));
    }
    items.extend([
        ("Occurrences", html! { (finding.occurrences) }),
        ("Flapping (count)", yes_no(finding.flapping)),
        (
            "Flapping (state change)",
            html! {
                (yes_no(finding.flapping_state_change)) " · "
                (format!("{:.1}", finding.state_change_percent)) "% state change"
            },
        ),
    ]);
    let (cluster_path, key_path) = (
        encode_segment(&finding.cluster),
        encode_segment(&finding.check_key),
    );
    html! {
        section class={ "card head sev-edge-" (finding.severity.as_str()) } id="finding"
            data-check-key=(finding.check_key) {
            div class="badges" {
                (state_badge(state))
                (severity_badge(finding.severity))
                span class="badge category" { (finding.category) }
                @if finding.flapping || finding.flapping_state_change {
                    span class="badge flapping" { "flapping" }
                }
            }
            h1 { (finding.title) }
            p class="key-line" { (key_html(&finding.check_key)) } "\n"
            (facts(&items))
            p class="api-links" {
                a href={ "/v1/findings/" (cluster_path) "/" (key_path) } { "JSON" }
            }
        } "\n"
    }
}

/// One lane over the finding's whole history (from its first opening, `first_opened`), with
/// the changes of its timeline drawn across.
fn history_chart(
    finding: &FindingView,
    first_opened: Timestamp,
    timeline: &[TimelineLine],
    flaps: &[FlapEpisodeView],
    links: &KeyLinks<'_>,
) -> Markup {
    let start = first_opened.unix_nanos();
    let end = finding
        .history
        .iter()
        .filter_map(|o| o.resolved_at)
        .chain([finding.last_seen_at])
        .chain(timeline.iter().map(|l| l.at))
        .chain(
            flaps
                .iter()
                .flat_map(|f| [Some(f.started_at), f.stopped_at])
                .flatten(),
        )
        .map(Timestamp::unix_nanos)
        .max()
        .unwrap_or(start)
        .max(start);
    let lane = [FindingLane {
        check_key: finding.check_key.clone(),
        severity: finding.severity,
        history: finding.history.clone(),
        flaps: flaps.to_vec(),
    }];
    let annotations = timeline
        .iter()
        .filter(|l| l.event_type == EventType::ChangeDeployed)
        .map(|line| Annotation {
            at: line.at,
            seq: line.seq,
            label: String::new(),
            title: format!("{} #{}: {}", clock_part(line.at), line.seq, line.summary),
            class: timeline::family(line).0,
        })
        .collect();
    chart_html(&Chart {
        lanes: &lane,
        start,
        end,
        annotations,
        events: &[],
        links,
    })
}

fn occurrences(finding: &FindingView) -> Markup {
    html! {
        section id="occurrences" {
            h2 { "Occurrences " span class="count" { (finding.history.len()) } } "\n"
            @if finding.history.is_empty() {
                p class="empty card" { "No occurrences." } "\n"
            } @else {
                div class="card flush" {
                    table class="occurrences" {
                        "\n"
                        thead {
                            tr {
                                th class="num" { "#" }
                                th { "Opened (UTC)" }
                                th { "Resolved (UTC)" }
                                th { "How" }
                                th { "Lasted" }
                            }
                        } "\n"
                        tbody {
                            "\n"
                            @for (n, occurrence) in finding.history.iter().enumerate() {
                                (occurrence_row(n + 1, occurrence)) "\n"
                            }
                        } "\n"
                    }
                } "\n"
            }
        } "\n"
    }
}

/// Row `number` (from 1) of the occurrences table.
fn occurrence_row(number: usize, occurrence: &Occurrence) -> Markup {
    html! {
        tr class="occurrence" data-opened-seq=(occurrence.opened_seq) {
            td class="num" { (number) }
            td { (time_html(occurrence.opened_at)) " " (seq_link(occurrence.opened_seq)) }
            @match occurrence.resolved_at {
                Some(at) => {
                    td {
                        (time_html(at)) " "
                        @if let Some(seq) = occurrence.resolved_seq { (seq_link(seq)) }
                    }
                    td { (resolution_badge(occurrence.resolution_kind)) }
                    td { (human_secs(secs_between(occurrence.opened_at, at))) }
                }
                None => {
                    td { "—" }
                    td { (state_badge("active")) }
                    td { span class="ongoing" { "ongoing" } }
                }
            }
        }
    }
}

fn flap_episodes(flaps: &[FlapEpisodeView]) -> Markup {
    html! {
        section id="flaps" {
            h2 { "Flap episodes " span class="count" { (flaps.len()) } } "\n"
            div class="card flush" {
                table class="flaps" {
                    "\n"
                    thead {
                        tr {
                            th { "Detector" }
                            th { "Started (UTC)" }
                            th { "Because" }
                            th { "Stopped (UTC)" }
                            th { "Because" }
                        }
                    } "\n"
                    tbody {
                        "\n"
                        @for episode in flaps { (flap_row(episode)) "\n" }
                    } "\n"
                }
            }
        } "\n"
    }
}

fn flap_row(episode: &FlapEpisodeView) -> Markup {
    html! {
        tr class="flap-episode" {
            td { (detector_word(episode.detector)) }
            td { (time_html(episode.started_at)) " " (seq_link(episode.started_seq)) }
            td { (episode.started_because) }
            td {
                @match (episode.stopped_at, episode.stopped_seq) {
                    (Some(at), Some(seq)) => { (time_html(at)) " " (seq_link(seq)) }
                    (Some(at), None) => (time_html(at)),
                    _ => span class="badge flapping" { "still flapping" },
                }
            }
            td { (episode.stopped_because.as_deref().unwrap_or("")) }
        }
    }
}
