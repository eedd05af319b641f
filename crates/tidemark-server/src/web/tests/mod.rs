//! Tests of the web pages on a small realistic incident: a crash loop with two failure layers, a
//! flapping 5xx finding whose key holds `/` and `:`, a queue lag still active, and a note that
//! tries to inject a script. The fixtures are here; `escaping` holds the escaping tests.

mod escaping;

use std::collections::BTreeMap;

use tidemark_core::event::{ChangeKind, ResourceRef};
use tidemark_core::findings::{
    FindingOverview, FindingState, HistoryWindow, Occurrence, ResolutionKind,
};
use tidemark_core::flaps::{FlapDetector, FlapEpisodeView};
use tidemark_core::incidents::{
    ChangeRef, FailureLayer, IncidentFindingView, IncidentKind, IncidentState, IncidentView,
    ResourceLayers, Touch,
};
use tidemark_core::orphans::{
    GraphEdge, GraphNode, OrphanGraph, OrphanKind, OrphanView, Relation, TrackingRef,
};
use tidemark_core::{EventType, Severity, Timestamp};

use super::html::encode_segment;
use super::timeline::{KeyLinks, timeline_table};
use super::*;

const CLUSTER: &str = "prod-eu";
const CRASH: &str = "pod-crashloop:payments/api";
const HTTP: &str = "http-5xx:payments/api:/v1/charge";
const LAG: &str = "queue-lag:payments/worker";
const SCRIPT: &str = "<script>alert(1)</script>";

fn t(secs: i64) -> Timestamp {
    Timestamp::parse_rfc3339("2025-03-14T09:00:00Z")
        .expect("valid time")
        .plus_secs(secs)
}

fn touch(change: &str, key: Option<&str>) -> Touch {
    Touch {
        change: change.to_owned(),
        check_key: key.map(str::to_owned),
    }
}

fn line(
    seq: u64,
    secs: i64,
    event_type: EventType,
    summary: &str,
    touches: &[Touch],
) -> TimelineLine {
    TimelineLine {
        seq,
        at: t(secs),
        event_type,
        summary: summary.to_owned(),
        touches: touches.to_vec(),
    }
}

fn occurrence(opened: (i64, u64), resolved: Option<(i64, u64, ResolutionKind)>) -> Occurrence {
    Occurrence {
        opened_at: t(opened.0),
        opened_seq: opened.1,
        resolved_at: resolved.map(|r| t(r.0)),
        resolved_seq: resolved.map(|r| r.1),
        resolution_kind: resolved.map(|r| r.2),
    }
}

fn change(service: &str, version: &str, kind: ChangeKind, seq: u64, secs: i64) -> ChangeRef {
    ChangeRef {
        service: service.to_owned(),
        version: version.to_owned(),
        kind,
        seq,
        at: t(secs),
    }
}

fn flap_episode() -> FlapEpisodeView {
    FlapEpisodeView {
        detector: FlapDetector::Count,
        started_at: t(420),
        started_seq: 135,
        started_because: "3 auto-resolution(s) in the last 900 s".to_owned(),
        stopped_at: Some(t(1_500)),
        stopped_seq: Some(195),
        stopped_because: Some("0 auto-resolution(s) in the last 900 s (window passed)".to_owned()),
    }
}

fn incident_finding(
    key: &str,
    severity: Severity,
    active: bool,
    joined: i64,
) -> IncidentFindingView {
    IncidentFindingView {
        cluster: CLUSTER.to_owned(),
        check_key: key.to_owned(),
        title: Some(format!("{key} is failing")),
        severity,
        active,
        joined_at: t(joined),
    }
}

fn incident() -> IncidentView {
    IncidentView {
        id: "auto-prod-eu-100".to_owned(),
        kind: IncidentKind::Automatic,
        cluster: CLUSTER.to_owned(),
        title: "payments-api crash-looping (+2 more)".to_owned(),
        severity: Severity::Critical,
        state: IncidentState::Open,
        opened_at: t(0),
        opened_seq: 100,
        closed_at: None,
        closed_seq: None,
        duration_secs: None,
        summary: Some(format!("Checkout failing for EU customers {SCRIPT}")),
        merged_into: None,
        findings: vec![
            incident_finding(CRASH, Severity::Critical, false, 0),
            incident_finding(HTTP, Severity::Error, false, 60),
            incident_finding(LAG, Severity::Warning, true, 120),
        ],
        notes: BTreeMap::from([("action".to_owned(), 1), ("hypothesis".to_owned(), 1)]),
        layers: vec![ResourceLayers {
            resource: "Deployment payments/api".to_owned(),
            layers: vec![
                FailureLayer {
                    number: 1,
                    check_key: CRASH.to_owned(),
                    signature: "OOMKilled: container api exceeded 512Mi".to_owned(),
                    first_seen_at: t(0),
                    first_seen_seq: 100,
                    after_change: None,
                    changes_without_effect: vec![],
                    failed_differently: vec![],
                    seen_again_after: vec![],
                },
                FailureLayer {
                    number: 2,
                    check_key: CRASH.to_owned(),
                    signature: "panic: nil pointer dereference in charge handler".to_owned(),
                    first_seen_at: t(900),
                    first_seen_seq: 160,
                    after_change: Some(change(
                        "payments-api",
                        "v2.4.1",
                        ChangeKind::Deploy,
                        138,
                        450,
                    )),
                    changes_without_effect: vec![change(
                        "payments-api",
                        "v2.4.2",
                        ChangeKind::Config,
                        165,
                        950,
                    )],
                    failed_differently: vec![],
                    seen_again_after: vec![],
                },
            ],
            armed_by: None,
            current_layer: 2,
            diverted_by_rollback: false,
        }],
        timeline_entries: 14,
    }
}

fn timeline() -> Vec<TimelineLine> {
    use EventType::*;
    vec![
        line(
            100,
            0,
            CycleCompleted,
            "cycle 812: 1 finding(s); ran pods",
            &[touch("opened", Some(CRASH)), touch("layer", Some(CRASH))],
        ),
        line(
            105,
            60,
            CycleCompleted,
            "cycle 813: 2 finding(s); ran pods, http",
            &[touch("joined", Some(HTTP)), touch("opened", Some(HTTP))],
        ),
        line(
            110,
            120,
            CycleCompleted,
            "cycle 814: 3 finding(s); ran pods, http, queues",
            &[touch("joined", Some(LAG)), touch("opened", Some(LAG))],
        ),
        line(
            115,
            150,
            AlertFired,
            "alert PaymentsErrorRate fired (critical)",
            &[touch("alert_fired", None)],
        ),
        line(
            120,
            200,
            NoteAdded,
            &format!("hypothesis by alice: {SCRIPT} the DB pool is exhausted"),
            &[touch("note_hypothesis", None)],
        ),
        line(
            125,
            300,
            CycleCompleted,
            "cycle 817: 2 finding(s); ran pods, http",
            &[touch("resolved_auto", Some(HTTP))],
        ),
        line(
            130,
            360,
            CycleCompleted,
            "cycle 818: 3 finding(s); ran pods, http",
            &[touch("opened", Some(HTTP))],
        ),
        line(
            135,
            420,
            CycleCompleted,
            "cycle 819: 2 finding(s); ran pods, http",
            &[
                touch("flap_started_count", Some(HTTP)),
                touch("resolved_auto", Some(HTTP)),
            ],
        ),
        line(
            138,
            450,
            ChangeDeployed,
            "deploy payments-api v2.4.1 (https://ci.example/123): raise memory limit",
            &[touch("deploy", None)],
        ),
        line(
            140,
            480,
            CycleCompleted,
            "cycle 820: 3 finding(s); ran pods, http",
            &[touch("opened", Some(HTTP))],
        ),
        line(
            150,
            600,
            CycleCompleted,
            "cycle 822: 2 finding(s); ran pods",
            &[touch("resolved_auto", Some(CRASH))],
        ),
        line(
            160,
            900,
            CycleCompleted,
            "cycle 827: 3 finding(s); ran pods",
            &[touch("layer", Some(CRASH)), touch("opened", Some(CRASH))],
        ),
        line(
            165,
            950,
            ChangeDeployed,
            "config change payments-api v2.4.2",
            &[touch("config", None), touch("no_effect", Some(CRASH))],
        ),
        line(
            170,
            1_000,
            NoteAdded,
            "action by bob: rolled back payments-api to v2.4.0",
            &[touch("note_action", None)],
        ),
        line(
            175,
            1_010,
            ChangeDeployed,
            "rollback payments-api v2.4.0",
            &[touch("rollback", None)],
        ),
        line(
            190,
            1_200,
            FindingResolved,
            "resolved http-5xx:payments/api:/v1/charge by recipe restart-pods",
            &[touch("resolved_recipe", Some(HTTP))],
        ),
        line(
            195,
            1_500,
            FindingResolved,
            "resolved pod-crashloop:payments/api by hand (bob)",
            &[
                touch("flap_stopped_count", Some(HTTP)),
                touch("resolved_manual", Some(CRASH)),
            ],
        ),
    ]
}

fn lanes() -> Vec<FindingLane> {
    vec![
        FindingLane {
            check_key: CRASH.to_owned(),
            severity: Severity::Critical,
            history: vec![
                occurrence((0, 100), Some((600, 150, ResolutionKind::Auto))),
                occurrence((900, 160), Some((1_500, 195, ResolutionKind::Manual))),
            ],
            flaps: vec![],
            maintenance: vec![],
        },
        FindingLane {
            check_key: HTTP.to_owned(),
            severity: Severity::Error,
            history: vec![
                occurrence((60, 105), Some((300, 125, ResolutionKind::Auto))),
                occurrence((360, 130), Some((420, 135, ResolutionKind::Auto))),
                occurrence((480, 140), Some((1_200, 190, ResolutionKind::Recipe))),
            ],
            flaps: vec![flap_episode()],
            maintenance: vec![],
        },
        FindingLane {
            check_key: LAG.to_owned(),
            severity: Severity::Warning,
            history: vec![occurrence((120, 110), None)],
            flaps: vec![],
            maintenance: vec![],
        },
    ]
}

/// The finding page of the flapping 5xx finding: its whole (short) history on one page, or
/// the newer half of it with links both ways when `paged`.
fn finding_with(paged: bool) -> FindingPage {
    let history = lanes()[1].history.clone();
    let total = history.len();
    let mut page = FindingPage {
        finding: FindingOverview {
            cluster: CLUSTER.to_owned(),
            check_key: HTTP.to_owned(),
            category: "http".to_owned(),
            severity: Severity::Error,
            title: format!("5xx rate above 5% on /v1/charge {SCRIPT}"),
            state: FindingState::Resolved,
            clean_cycles: None,
            opened_at: t(480),
            last_seen_at: t(1_140),
            resolved_at: Some(t(1_200)),
            resolution_kind: Some(ResolutionKind::Recipe),
            occurrences: total as u64,
            flap_episodes: 1,
            flapping: false,
            flapping_state_change: false,
            state_change_percent: 12.5,
            alert: None,
            stale: None,
            in_maintenance: None,
        },
        timeline: timeline(),
        history: HistoryWindow {
            items: (1..).zip(history).collect(),
            total,
        },
        flaps: HistoryWindow {
            items: vec![(1, flap_episode())],
            total: 1,
        },
        older: None,
        newer: None,
        limit: None,
        maintenance: vec![],
        live: None,
    };
    if paged {
        page.history.items.drain(..1);
        page.older = Some(page.timeline[0].seq);
        page.newer = page.timeline.last().map(|l| l.seq);
    }
    page
}

fn finding() -> FindingPage {
    finding_with(false)
}

fn other_incidents() -> Vec<IncidentView> {
    let mut closed = incident();
    closed.id = "INC-7".to_owned();
    closed.kind = IncidentKind::Explicit;
    closed.title = "Primary DB failover & replica lag".to_owned();
    closed.severity = Severity::Error;
    closed.state = IncidentState::Closed;
    closed.opened_seq = 20;
    closed.closed_at = Some(t(-600));
    closed.closed_seq = Some(60);
    closed.duration_secs = Some(5_400);
    closed.opened_at = t(-6_000);
    let mut merged = incident();
    merged.id = "auto-prod-eu/odd id?".to_owned();
    merged.state = IncidentState::Merged;
    merged.severity = Severity::Warning;
    merged.merged_into = Some("INC-7".to_owned());
    merged.opened_seq = 30;
    vec![closed, merged, incident()]
}

fn node(uid: &str, kind: &str, name: &str, orphan: Option<OrphanKind>) -> GraphNode {
    GraphNode {
        cluster: CLUSTER.to_owned(),
        uid: uid.to_owned(),
        kind: kind.to_owned(),
        namespace: Some("payments".to_owned()),
        name: name.to_owned(),
        live: orphan != Some(OrphanKind::Ghost),
        tracked: kind == "Deployment",
        orphan,
        reason: orphan.map(|_| "owner rs-1 is gone".to_owned()),
    }
}

fn edge(from: &str, to: &str, relation: Relation) -> GraphEdge {
    GraphEdge {
        cluster: CLUSTER.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
        relation,
    }
}

fn orphans() -> (Vec<OrphanView>, OrphanGraph) {
    let graph = OrphanGraph {
        nodes: vec![
            node("u-cm", "ConfigMap", "api-config", None),
            node("u-dep", "Deployment", "api", None),
            node("u-pod", "Pod", "api-7d9f-x2", None),
            node("u-rs", "ReplicaSet", "api-7d9f", None),
            node("u-stray", "Pod", "api-old-<b>", Some(OrphanKind::Dangling)),
        ],
        edges: vec![
            edge("u-dep", "u-rs", Relation::Owns),
            edge("u-pod", "u-cm", Relation::Uses),
            edge("u-rs", "u-pod", Relation::Owns),
            edge("u-stray", "u-cm", Relation::Uses),
        ],
    };
    let orphans = vec![
        OrphanView {
            cluster: CLUSTER.to_owned(),
            kind: OrphanKind::Dangling,
            resource: Some(ResourceRef {
                kind: "Pod".to_owned(),
                namespace: Some("payments".to_owned()),
                name: "api-old-<b>".to_owned(),
                uid: Some("u-stray".to_owned()),
            }),
            tracking: None,
            trace_id: None,
            span: None,
            reason: "owner rs-1 is gone".to_owned(),
            since: t(-3_600),
            since_seq: 12,
            scans: 3,
        },
        OrphanView {
            cluster: CLUSTER.to_owned(),
            kind: OrphanKind::Ghost,
            resource: None,
            tracking: Some(TrackingRef {
                kind: "Deployment".to_owned(),
                key: "payments/billing".to_owned(),
                uid: None,
            }),
            trace_id: None,
            span: None,
            reason: "no live Deployment payments/billing".to_owned(),
            since: t(-1_800),
            since_seq: 40,
            scans: 2,
        },
    ];
    (orphans, graph)
}

fn incident_html() -> String {
    incident_page(&incident(), &timeline(), &lanes(), 200, None)
}

/// Counts of `open` and `close` in `html` must match (a crude well-formedness check).
fn assert_balanced(html: &str, open: &[&str], close: &str) {
    let opened: usize = open.iter().map(|o| html.matches(o).count()).sum();
    assert_eq!(opened, html.matches(close).count(), "{open:?} vs {close}");
}

fn assert_well_formed(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<meta name=\"viewport\""));
    assert!(html.contains("<title>"));
    for (open, close) in [
        (&["<table"][..], "</table>"),
        (&["<tr ", "<tr>"][..], "</tr>"),
        (&["<svg"][..], "</svg>"),
        (&["<g ", "<g>"][..], "</g>"),
        (&["<a "][..], "</a>"),
        (&["<section"][..], "</section>"),
        (&["<div"][..], "</div>"),
        (&["<span"][..], "</span>"),
    ] {
        assert_balanced(html, open, close);
    }
    // Offline: nothing is fetched from anywhere, nothing runs.
    assert!(!html.contains("<script"), "no script in any page");
    assert!(
        !html.contains("http://") || html.contains("xmlns"),
        "no remote resource"
    );
    assert!(!html.contains("<link"), "no stylesheet link");
}

/// A change linked to the incident only by time (ADR 0007: deployed in its cluster while it was
/// open) is drawn as the change it is, with a chip that says how it is linked; a linked one
/// (the touch restates the event) has no chip.
#[test]
fn a_change_linked_only_by_time_says_so() {
    let lines = vec![
        line(
            1,
            0,
            EventType::ChangeDeployed,
            "config change checkout-api memory-1Gi",
            &[touch("config_during", None)],
        ),
        line(
            2,
            60,
            EventType::ChangeDeployed,
            "deploy checkout-api sha-51f00d7",
            &[touch("deploy_during", None)],
        ),
        line(
            3,
            120,
            EventType::ChangeDeployed,
            "rollback checkout-api sha-0aa11bb",
            &[touch("rollback", None)],
        ),
    ];
    assert_eq!(timeline::family(&lines[0]).0, "config");
    assert_eq!(timeline::family(&lines[1]).0, "deploy");
    let links = KeyLinks {
        default_cluster: CLUSTER,
        by_key: BTreeMap::new(),
    };
    let html = timeline_table(&lines, &links).into_string();
    assert!(
        html.contains("class=\"entry entry-change-deployed fam-config\""),
        "{html}"
    );
    assert_eq!(
        html.matches("during the incident, linked only by time")
            .count(),
        2,
        "{html}"
    );
    assert!(
        html.contains("chip chip-muted chip-deploy-during"),
        "{html}"
    );
    assert!(!html.contains("chip-rollback"), "{html}");
}

/// An entry earlier than one before it (a late or backfilled event, applied at its cluster's
/// clock) is marked, in log order, never moved.
#[test]
fn a_late_entry_is_marked_where_it_landed() {
    let lines = vec![
        line(1, 0, EventType::CycleCompleted, "cycle 1", &[]),
        line(2, 600, EventType::CycleCompleted, "cycle 2", &[]),
        line(3, 300, EventType::NoteAdded, "a note sent late", &[]),
        line(4, 600, EventType::CycleCompleted, "cycle 3", &[]),
    ];
    let links = KeyLinks {
        default_cluster: CLUSTER,
        by_key: BTreeMap::new(),
    };
    let html = timeline_table(&lines, &links).into_string();
    assert_eq!(html.matches("class=\"late-mark\"").count(), 1, "{html}");
    let late_row = html.find("id=\"seq-3\"").unwrap();
    let next_row = html.find("id=\"seq-4\"").unwrap();
    assert!(html[late_row..next_row].contains(">late</span>"), "{html}");
    assert!(
        html[..late_row].find("id=\"seq-2\"").is_some(),
        "log order is kept"
    );
}

#[test]
fn every_timeline_entry_has_its_anchor() {
    let html = incident_html();
    for entry in timeline() {
        let anchor = format!("<tr id=\"seq-{0}\" data-seq=\"{0}\"", entry.seq);
        assert_eq!(html.matches(&anchor).count(), 1, "{anchor}");
    }
    assert_eq!(
        html.matches("class=\"entry entry-").count(),
        timeline().len()
    );
    assert!(html.contains("class=\"entry entry-note-added fam-note-hypothesis\""));
    assert!(html.contains("class=\"entry entry-change-deployed fam-rollback\""));
    assert!(html.contains("data-type=\"finding.resolved\""));
    // Kinds are distinguished by family; redundant touches are not repeated as chips.
    assert!(
        html.contains("<span class=\"kind kind-note-action\" title=\"note.added\">action</span>")
    );
    assert!(html.contains("<span class=\"kind kind-alert-fired\""));
    assert!(!html.contains("chip-note-hypothesis"));
    assert!(html.contains("chip chip-flap chip-flap-started-count"));
    assert!(html.contains("chip chip-layer chip-layer"));
}

#[test]
fn lanes_draw_one_group_per_finding_with_markers() {
    let html = incident_html();
    assert_eq!(html.matches("<g class=\"lane\"").count(), 3);
    let lanes_svg: Vec<&str> = html.split("<g class=\"lane\"").skip(1).collect();
    // Opens per lane: 2, 3, 1; resolves 2, 3, 0 (the lag is still active).
    for (lane, (opens, resolves)) in lanes_svg.iter().zip([(2, 2), (3, 3), (1, 0)]) {
        let lane = lane.split("</g>").next().unwrap_or_default();
        assert_eq!(lane.matches("mark mark-open").count(), opens, "{lane}");
        assert_eq!(
            lane.matches("mark mark-resolve").count(),
            resolves,
            "{lane}"
        );
    }
    assert!(lanes_svg[0].contains("mark-resolve mark-auto"));
    assert!(lanes_svg[0].contains("mark-resolve mark-manual"));
    assert!(lanes_svg[1].contains("mark-resolve mark-recipe"));
    assert!(lanes_svg[1].contains("<rect class=\"flap flap-count\""));
    assert!(lanes_svg[2].contains("occ-active"));
    // Deploys, the config change and the rollback are drawn across the lanes; the incident
    // opening too, and the axis has 4 to 6 ticks.
    assert_eq!(html.matches("class=\"annot annot-").count(), 4);
    let ticks = html.matches("class=\"tick-label\"").count();
    assert!((4..=6).contains(&ticks), "{ticks} ticks");
}

#[test]
fn ticks_stay_between_four_and_six_over_many_spans() {
    for span_secs in [
        5, 20, 60, 90, 200, 300, 450, 700, 1_000, 1_600, 2_500, 3_600, 5_000, 7_000, 12_000,
        20_000, 30_000, 50_000, 86_400, 150_000, 400_000, 1_000_000, 3_000_000, 10_000_000,
    ] {
        let start = t(17).unix_nanos();
        let end = start + span_secs * 1_000_000_000;
        let ticks = super::lanes::ticks_between(start, end).0.len();
        assert!((4..=6).contains(&ticks), "{span_secs} s: {ticks} ticks");
    }
}

#[test]
fn incidents_page_links_every_incident() {
    let incidents = other_incidents();
    let html = incidents_page(&incidents, &[], false, 200, None);
    for incident in &incidents {
        let href = format!("href=\"/incidents/{}\"", encode_segment(&incident.id));
        assert!(html.contains(&href), "{href}");
    }
    assert!(html.contains("href=\"/incidents/auto-prod-eu%2Fodd%20id%3F\""));
    // Open first.
    let open = html
        .find("data-incident-id=\"auto-prod-eu-100\"")
        .expect("open row");
    let closed = html.find("data-incident-id=\"INC-7\"").expect("closed row");
    assert!(open < closed);
    assert!(html.contains("Primary DB failover &amp; replica lag"));
    assert!(html.contains("1h 30m"));
}

#[test]
fn finding_links_percent_encode_check_keys() {
    let html = incident_html();
    let href = "href=\"/findings/prod-eu/http-5xx%3Apayments%2Fapi%3A%2Fv1%2Fcharge\"";
    assert!(html.contains(href));
    let page = finding_page(&finding());
    assert!(
        page.contains("href=\"/v1/findings/prod-eu/http-5xx%3Apayments%2Fapi%3A%2Fv1%2Fcharge\"")
    );
    assert!(html.contains("href=\"/v1/incidents/auto-prod-eu-100/postmortem?format=md\""));
}

#[test]
fn finding_page_shows_occurrences_and_flaps() {
    let html = finding_page(&finding());
    assert_eq!(html.matches("<tr class=\"occurrence\"").count(), 3);
    assert_eq!(html.matches("<tr class=\"flap-episode\"").count(), 1);
    assert_eq!(html.matches("<g class=\"lane\"").count(), 1);
    assert!(html.contains("12.5% state change"));
    assert!(html.contains("how-recipe"));
}

#[test]
fn a_finding_page_shows_its_part_of_the_history_and_links_both_ways() {
    let whole = finding_page(&finding());
    assert!(
        !whole.contains("class=\"pager\""),
        "one page needs no links"
    );
    let page = finding_with(true);
    let html = finding_page(&page);
    assert_well_formed(&html);
    assert_eq!(html.matches("<tr class=\"occurrence\"").count(), 2);
    assert!(
        html.contains("2 of 3"),
        "the count says part of the history is shown"
    );
    let older = format!("href=\"?before={}\"", page.older.unwrap());
    let newer = format!("href=\"?after={}\"", page.newer.unwrap());
    assert_eq!(
        html.matches(&older).count(),
        2,
        "above and below the timeline"
    );
    assert_eq!(html.matches(&newer).count(), 2);
    let mut sized = page.clone();
    sized.limit = Some(2);
    let html = finding_page(&sized);
    assert!(html.contains(&format!(
        "href=\"?before={}&amp;limit=2\"",
        page.older.unwrap()
    )));
    assert!(html.contains("href=\"?limit=2\""));
    // The first row is numbered in the whole history.
    assert!(html.contains("<td class=\"num\">2</td>"), "{html}");
}

#[test]
fn orphans_page_draws_the_graph_or_lists_only() {
    let (orphan_list, graph) = orphans();
    let html = orphans_page(&orphan_list, false, &graph);
    assert_eq!(html.matches("<tr class=\"orphan ").count(), 2);
    assert!(!html.contains("More orphans follow"));
    let more = orphans_page(&orphan_list, true, &graph);
    assert!(more.contains("More orphans follow the first 2"), "{more}");
    assert_eq!(html.matches(" data-uid=").count(), 5);
    assert_eq!(html.matches("class=\"node node-orphan").count(), 1);
    assert_eq!(html.matches("class=\"edge edge-uses\"").count(), 2);
    assert_eq!(html.matches("class=\"edge edge-owns\"").count(), 2);
    // Depths: Deployment 0, ReplicaSet 1, Pod 2, and the ConfigMap the Pod uses 3.
    assert!(html.contains(">depth 3</text>"));
    assert!(!html.contains(">depth 4</text>"));

    let mut big = graph.clone();
    big.nodes = (0..301)
        .map(|i| node(&format!("u-{i:03}"), "Pod", &format!("p{i}"), None))
        .collect();
    let html = orphans_page(&orphan_list, false, &big);
    assert!(!html.contains("<svg class=\"graph\""));
    assert!(html.contains("more than the 300 this page draws"));
}

#[test]
fn empty_inputs_render() {
    assert!(incidents_page(&[], &[], false, 0, None).contains("No incidents."));
    let mut bare = incident();
    bare.findings.clear();
    bare.layers.clear();
    let html = incident_page(&bare, &[], &[], 0, None);
    assert_well_formed(&html);
    assert!(html.contains("No events."));
    let html = orphans_page(&[], false, &OrphanGraph::default());
    assert_well_formed(&html);
}

#[test]
fn same_input_same_bytes() {
    assert_eq!(incident_html(), incident_html());
    let (orphan_list, graph) = orphans();
    assert_eq!(
        orphans_page(&orphan_list, false, &graph),
        orphans_page(&orphan_list, false, &graph)
    );
    assert_eq!(finding_page(&finding()), finding_page(&finding()));
}

#[test]
fn writes_previews_for_people() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-preview");
    let _ = std::fs::create_dir_all(&dir);
    let (orphan_list, graph) = orphans();
    for (name, html) in [
        ("incident.html", incident_html()),
        (
            "incidents.html",
            incidents_page(&other_incidents(), &[], false, 200, None),
        ),
        ("finding.html", finding_page(&finding())),
        ("orphans.html", orphans_page(&orphan_list, false, &graph)),
        ("not-found.html", not_found_page("no incident \"INC-404\"")),
    ] {
        let _ = std::fs::write(dir.join(name), html);
    }
}

/// An alert's finding as `GET /v1/alerts` lists it: firing, with a hostile label and title.
fn alert_overview(fingerprint: &str, active: bool) -> FindingOverview {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_owned(), "KubePodCrashLooping".to_owned());
    labels.insert("namespace".to_owned(), format!("bruno{SCRIPT}"));
    let mut overview = finding_with(false).finding;
    overview.check_key =
        tidemark_core::findings::alert_check_key("KubePodCrashLooping", fingerprint);
    overview.category = "alert".to_owned();
    overview.title = format!("bruno crash-loops {SCRIPT}");
    overview.state = if active {
        FindingState::Active
    } else {
        FindingState::Resolved
    };
    overview.resolution_kind = (!active).then_some(ResolutionKind::Source);
    overview.alert = Some(tidemark_core::findings::AlertFacts {
        fingerprint: fingerprint.to_owned(),
        name: "KubePodCrashLooping".to_owned(),
        labels,
        annotations: BTreeMap::new(),
        starts_at: t(400),
        last_notified_at: t(900),
        notifications: 3,
        late_notifications: 0,
    });
    overview
}

/// `/alerts` lists each alert by name, linking to its finding's page, with its labels (but its
/// name and severity), since when it fires and when it was last notified; escaped; the other
/// states are links; an empty list says nothing fires.
#[test]
fn the_alerts_page_lists_alerts_with_labels_and_links_to_their_findings() {
    let alerts = [alert_overview("fp1", true), alert_overview("fp:2", false)];
    let html = alerts_page(&alerts, true, "all", 77);
    assert_well_formed(&html);
    assert!(!html.contains(SCRIPT));
    assert!(
        html.contains("href=\"/findings/prod-eu/alert%3AKubePodCrashLooping%3Afp1\""),
        "{html}"
    );
    assert!(html.contains("namespace=bruno&lt;script&gt;"));
    assert!(!html.contains("alertname="), "the name has its own column");
    assert!(html.contains("state-firing") && html.contains("resolved (source)"));
    assert!(html.contains("href=\"/alerts?state=firing\""));
    assert!(html.contains("More alerts follow the first 2"));
    assert!(html.contains("as of log position <code>77</code>"));
    assert!(alerts_page(&[], false, "firing", 0).contains("Nothing is firing."));
}

/// The home page lists what is firing or open that no open incident holds, beside the
/// incidents, each linking to its finding's page.
#[test]
fn the_home_page_lists_what_fires_outside_the_incidents() {
    let unheld = [alert_overview("fp1", true)];
    let html = incidents_page(&other_incidents(), &unheld, true, 200, None);
    assert_well_formed(&html);
    assert!(!html.contains(SCRIPT));
    assert!(html.contains("Firing or open, in no incident"));
    assert!(html.contains("href=\"/findings/prod-eu/alert%3AKubePodCrashLooping%3Afp1\""));
    assert!(html.contains("More follow the first 1"));
    assert!(
        incidents_page(&[], &[], false, 0, None)
            .contains("Nothing is firing or open outside the incidents.")
    );
}

/// The finding page of an alert shows what the alerting system said: name and fingerprint,
/// its own start, when it was last notified, its labels and annotations (escaped).
#[test]
fn an_alerts_finding_page_shows_the_alerts_facts() {
    let mut page = finding_with(false);
    let mut alert = alert_overview("fp1", true);
    alert.alert.as_mut().unwrap().annotations.insert(
        "runbook_url".to_owned(),
        format!("https://runbooks/{SCRIPT}"),
    );
    page.finding = alert;
    let html = finding_page(&page);
    assert_well_formed(&html);
    assert!(!html.contains(SCRIPT));
    assert!(html.contains("fingerprint") && html.contains("fp1"));
    assert!(html.contains("3 notification(s)"));
    assert!(html.contains("namespace=bruno&lt;script&gt;"));
    assert!(html.contains("runbook_url"));
}
