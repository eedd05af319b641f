//! `/findings/{cluster}/{check_key}`: a finding's state, and one page of its timeline with the
//! part of its history that page covers: a one-lane chart, the occurrences and flap episodes it
//! overlaps, and links to the older and the newer page. A page costs what it shows, however long
//! the finding's history.

use std::collections::BTreeMap;

use maud::{Markup, html};
use tidemark_core::Occurrence;
use tidemark_core::findings::{FindingOverview, FindingState, HistoryWindow, ResolutionKind};
use tidemark_core::flaps::{FlapDetector, FlapEpisodeView};
use tidemark_core::{EventType, Timestamp};

use super::html::live_page;
use super::html::{
    Section, clock_part, encode_segment, facts, human_secs, key_html, secs_between, seq_link,
    severity_badge, state_badge, time_html,
};
use super::lanes::{Annotation, Chart, chart_html};
use super::timeline::{self, KeyLinks, timeline_table};
use super::{FindingLane, FindingPage};

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
        Some(ResolutionKind::Source) => ("source", "by the source"),
        None => ("unknown", "resolved"),
    };
    html! { span class={ "badge how how-" (class) } { (words) } }
}

/// `/findings/{cluster}/{check_key}`: a finding's state, and a page of its timeline with the
/// chart, occurrences and flap episodes of the stretch of the log it covers.
pub fn finding_page(page: &FindingPage) -> String {
    let finding = &page.finding;
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
        @if let Some(chart) = history_chart(page, &links) {
            section id="lanes" {
                h2 { "History" } "\n"
                div class="card" { (chart) }
            } "\n"
        }
        (occurrences(&page.history))
        @if !page.flaps.items.is_empty() {
            (flap_episodes(&page.flaps))
        }
        section id="timeline" {
            h2 { "Timeline " span class="count" { (page.timeline.len()) } } "\n"
            (pager(page))
            div class="card flush" { (timeline_table(&page.timeline, &links)) }
            (pager(page))
        } "\n"
    };
    live_page(
        &format!("{} — {}", finding.check_key, finding.title),
        "page-finding",
        Section::None,
        body,
        page.live.as_ref(),
    )
}

/// Links to the older and the newer page of the timeline (relative: the same finding).
fn pager(page: &FindingPage) -> Markup {
    let limit = page
        .limit
        .map(|n| format!("&limit={n}"))
        .unwrap_or_default();
    html! {
        @if page.older.is_some() || page.newer.is_some() {
            nav class="pager" {
                @if let Some(before) = page.older {
                    a class="older" rel="prev" href={ "?before=" (before) (limit) } { "← older" }
                }
                " "
                @if let Some(after) = page.newer {
                    a class="newer" rel="next" href={ "?after=" (after) (limit) } { "newer →" }
                }
                " "
                a class="latest" href={ "?" (limit.trim_start_matches('&')) } { "latest" }
            } "\n"
        }
    }
}

/// The card at the top: badges, title, key, facts and the JSON link.
fn header(finding: &FindingOverview) -> Markup {
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
        ("Flap episodes", html! { (finding.flap_episodes) }),
        ("Flapping (count)", yes_no(finding.flapping)),
        (
            "Flapping (state change)",
            html! {
                (yes_no(finding.flapping_state_change)) " · "
                (format!("{:.1}", finding.state_change_percent)) "% state change"
            },
        ),
    ]);
    // An alert (ADR 0007): what the alerting system said of it.
    if let Some(alert) = &finding.alert {
        items.extend([
            ("Alert", html! { (key_html(&alert.name)) " · fingerprint " (key_html(&alert.fingerprint)) }),
            ("Starts at (source)", time_html(alert.starts_at)),
            (
                "Last notified",
                html! {
                    (time_html(alert.last_notified_at)) " · " (alert.notifications) " notification(s)"
                    @if alert.late_notifications > 0 { ", " (alert.late_notifications) " late" }
                },
            ),
            (
                "Stale",
                match &finding.stale {
                    Some(stale) => html! {
                        span class="badge stale" { "stale for " (human_secs(stale.stale_for_secs)) }
                        " · since " (time_html(stale.stale_since)) " · judged at "
                        (time_html(stale.reference))
                        " (the alert fires, and no notification named it for longer than the cluster's "
                        code { "alert_stale_after_secs" } "; Tidemark never resolves it)"
                    },
                    None => html! { "no" },
                },
            ),
            (
                "Labels",
                html! {
                    @for (name, value) in &alert.labels {
                        span class="label mono" { (name) "=" (value) } " "
                    }
                },
            ),
        ]);
        for (name, value) in &alert.annotations {
            items.push((
                "Annotation",
                html! { span class="mono" { (name) } ": " (value) },
            ));
        }
    }
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

/// One lane over the stretch of the finding's history the page covers (from the first
/// occurrence it overlaps), with the changes of its timeline drawn across; `None` when it
/// overlaps no occurrence.
fn history_chart(page: &FindingPage, links: &KeyLinks<'_>) -> Option<Markup> {
    let finding = &page.finding;
    let history: Vec<Occurrence> = page.history.items.iter().map(|(_, o)| o.clone()).collect();
    let flaps: Vec<FlapEpisodeView> = page.flaps.items.iter().map(|(_, f)| f.clone()).collect();
    let start = history
        .iter()
        .map(|o| o.opened_at)
        .chain(page.timeline.iter().map(|l| l.at))
        .map(Timestamp::unix_nanos)
        .min()?;
    // The newest page reaches the last time the finding was seen.
    let last_seen = page.newer.is_none().then_some(finding.last_seen_at);
    let end = history
        .iter()
        .filter_map(|o| o.resolved_at)
        .chain(last_seen)
        .chain(page.timeline.iter().map(|l| l.at))
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
    if history.is_empty() {
        return None;
    }
    let lane = [FindingLane {
        check_key: finding.check_key.clone(),
        severity: finding.severity,
        history,
        flaps,
        maintenance: page.maintenance.clone(),
    }];
    let annotations = page
        .timeline
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
    Some(chart_html(&Chart {
        lanes: &lane,
        start,
        end,
        annotations,
        events: &[],
        links,
    }))
}

/// "3 of 40" when a window shows part of a history.
fn shown_of<T>(window: &HistoryWindow<T>) -> Markup {
    html! {
        @if window.items.len() == window.total {
            (window.total)
        } @else {
            (window.items.len()) " of " (window.total)
        }
    }
}

fn occurrences(history: &HistoryWindow<Occurrence>) -> Markup {
    html! {
        section id="occurrences" {
            h2 { "Occurrences " span class="count" { (shown_of(history)) } } "\n"
            @if history.items.is_empty() {
                p class="empty card" { "No occurrences on this page." } "\n"
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
                            @for (number, occurrence) in &history.items {
                                (occurrence_row(*number, occurrence)) "\n"
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

fn flap_episodes(flaps: &HistoryWindow<FlapEpisodeView>) -> Markup {
    html! {
        section id="flaps" {
            h2 { "Flap episodes " span class="count" { (shown_of(flaps)) } } "\n"
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
                        @for (_, episode) in &flaps.items { (flap_row(episode)) "\n" }
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
