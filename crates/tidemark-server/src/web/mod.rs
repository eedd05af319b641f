//! The web timeline: server-rendered HTML pages (incidents, an incident with its finding lanes
//! and timeline, a finding's history, the orphan graph), as pure functions from projection views
//! to `String`. One inline stylesheet, inline SVG charts, no JavaScript, no external requests.
//!
//! Every piece of data goes through [`html::escape`] (and path parts through
//! `html::encode_segment`) before it reaches a page; the same input gives the same bytes.

mod graph;
mod html;
mod lanes;
mod timeline;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use tidemark_core::findings::{FindingState, FindingView, Occurrence, ResolutionKind};
use tidemark_core::flaps::{FlapDetector, FlapEpisodeView};
use tidemark_core::incidents::{IncidentKind, IncidentState, IncidentView, ResourceLayers, Touch};
use tidemark_core::orphans::{OrphanGraph, OrphanKind, OrphanView};
use tidemark_core::{EventType, Severity, Timestamp};

use html::{
    Section, class_token, clock_part, encode_segment, escape, finding_href, human_secs,
    incident_href, key_html, link, page, secs_between, severity_badge, state_badge, time_html, w,
};
use lanes::{Annotation, Chart, chart_html};
use timeline::{KeyLinks, timeline_table};

/// One event of a timeline as the pages show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineLine {
    /// Log position.
    pub seq: u64,
    /// Event time.
    pub at: Timestamp,
    /// Its type.
    pub event_type: EventType,
    /// What it says, in one line (`tidemark_core::describe::one_line`).
    pub summary: String,
    /// What it did to the incident or finding shown.
    pub touches: Vec<Touch>,
}

/// One finding's lane on the incident chart.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingLane {
    /// The finding's key.
    pub check_key: String,
    /// Its severity (the lane's colour).
    pub severity: Severity,
    /// Every occurrence, oldest first.
    pub history: Vec<Occurrence>,
    /// Its flap episodes, oldest first.
    pub flaps: Vec<FlapEpisodeView>,
}

fn incident_state_word(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Open => "open",
        IncidentState::Closed => "closed",
        IncidentState::Merged => "merged",
    }
}

fn incident_kind_word(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Explicit => "explicit",
        IncidentKind::Automatic => "automatic",
    }
}

fn resolution_badge(kind: Option<ResolutionKind>) -> String {
    let (class, words) = match kind {
        Some(ResolutionKind::Auto) => ("auto", "auto"),
        Some(ResolutionKind::Manual) => ("manual", "by hand"),
        Some(ResolutionKind::Recipe) => ("recipe", "recipe"),
        Some(ResolutionKind::Informational) => ("informational", "informational"),
        None => ("unknown", "resolved"),
    };
    format!("<span class=\"badge how how-{class}\">{words}</span>")
}

/// `<a href="#seq-N">#N</a>`.
fn seq_link(seq: u64) -> String {
    format!("<a class=\"seq-link\" href=\"#seq-{seq}\">#{seq}</a>")
}

/// A definition list of facts (`label`, already-HTML value).
fn facts(items: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (label, value) in items {
        w!(out, "<div><dt>{label}</dt><dd>{value}</dd></div>");
    }
    out.push_str("</dl>\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Incidents

/// `/`: every incident, open ones first, newest first within each group.
pub fn incidents_page(incidents: &[IncidentView], at_seq: u64) -> String {
    let count = |state| incidents.iter().filter(|i| i.state == state).count();
    let mut body = String::new();
    w!(
        body,
        "<section class=\"page-head\"><h1>Incidents</h1><p class=\"sub\">\
         <span class=\"stat stat-open\"><b>{}</b> open</span>\
         <span class=\"stat\"><b>{}</b> closed</span>\
         <span class=\"stat\"><b>{}</b> merged</span>\
         <span class=\"asof\">as of log position <code>{at_seq}</code></span></p></section>\n",
        count(IncidentState::Open),
        count(IncidentState::Closed),
        count(IncidentState::Merged),
    );
    if incidents.is_empty() {
        body.push_str("<p class=\"empty card\">No incidents.</p>\n");
        return page("Incidents", "page-incidents", Section::Incidents, &body);
    }
    let mut ordered: Vec<&IncidentView> = incidents.iter().collect();
    ordered.sort_by(|a, b| {
        (a.state != IncidentState::Open)
            .cmp(&(b.state != IncidentState::Open))
            .then(b.opened_seq.cmp(&a.opened_seq))
            .then_with(|| a.id.cmp(&b.id))
    });
    body.push_str(
        "<div class=\"card flush\"><table class=\"incidents\">\n<thead><tr><th>Incident</th><th>State</th>\
         <th>Severity</th><th>Kind</th><th>Cluster</th><th>Opened (UTC)</th><th>Duration</th>\
         <th class=\"num\">Findings</th><th>Title</th></tr></thead>\n<tbody>\n",
    );
    for incident in ordered {
        let state = incident_state_word(incident.state);
        let href = incident_href(&incident.id);
        let duration = match (incident.duration_secs, &incident.merged_into) {
            (_, Some(into)) => format!("merged into {}", link(&incident_href(into), "mono", into)),
            (Some(secs), None) => human_secs(secs),
            (None, None) => "<span class=\"ongoing\">ongoing</span>".to_owned(),
        };
        w!(
            body,
            "<tr class=\"incident incident-{state} sev-row-{sev}\" data-incident-id=\"{}\">\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td>\
             <td>{duration}</td><td class=\"num\">{}</td><td class=\"title\">{}</td></tr>\n",
            escape(&incident.id),
            link(&href, "mono id", &incident.id),
            state_badge(state),
            severity_badge(incident.severity),
            incident_kind_word(incident.kind),
            escape(&incident.cluster),
            time_html(incident.opened_at),
            incident.findings.len(),
            link(&href, "", &incident.title),
            sev = incident.severity.as_str(),
        );
    }
    body.push_str("</tbody>\n</table></div>\n");
    page("Incidents", "page-incidents", Section::Incidents, &body)
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

fn change_ref_html(change: &tidemark_core::incidents::ChangeRef) -> String {
    let kind = match change.kind {
        tidemark_core::event::ChangeKind::Deploy => "deploy",
        tidemark_core::event::ChangeKind::Rollback => "rollback",
        tidemark_core::event::ChangeKind::Config => "config",
    };
    format!(
        "<span class=\"change change-{kind}\">{kind} <code>{}</code> <code>{}</code> {}</span>",
        escape(&change.service),
        escape(&change.version),
        seq_link(change.seq)
    )
}

fn layers_html(resources: &[ResourceLayers], links: &KeyLinks<'_>) -> String {
    let mut out = String::new();
    for resource in resources {
        w!(
            out,
            "<div class=\"card resource-layers\"><h3>{}</h3><ol class=\"layers\">\n",
            key_html(&resource.resource)
        );
        for layer in &resource.layers {
            w!(
                out,
                "<li class=\"layer\" data-layer=\"{n}\"><span class=\"layer-no\">{n}</span><div class=\"layer-body\">\
                 <div class=\"signature\">{}</div><div class=\"layer-meta\">{} · first seen {} {}",
                escape(&layer.signature),
                link(&links.href(&layer.check_key), "mono", &layer.check_key),
                time_html(layer.first_seen_at),
                seq_link(layer.first_seen_seq),
                n = layer.number,
            );
            if let Some(change) = &layer.after_change {
                w!(out, " · appeared after {}", change_ref_html(change));
            }
            out.push_str("</div>");
            if !layer.changes_without_effect.is_empty() {
                out.push_str("<div class=\"no-effect\">unchanged after ");
                for (i, change) in layer.changes_without_effect.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&change_ref_html(change));
                }
                out.push_str("</div>");
            }
            for failure in &layer.failed_differently {
                w!(
                    out,
                    "<div class=\"failed-differently\">{} failed differently: <code>{}</code> {}</div>",
                    change_ref_html(&failure.change),
                    escape(&failure.signature),
                    seq_link(failure.seen_seq)
                );
            }
            if !layer.seen_again_after.is_empty() {
                out.push_str("<div class=\"seen-again\">seen again after ");
                for (i, change) in layer.seen_again_after.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&change_ref_html(change));
                }
                out.push_str("</div>");
            }
            out.push_str("</div></li>\n");
        }
        out.push_str("</ol>");
        if let Some(change) = &resource.armed_by {
            w!(
                out,
                "<p class=\"armed\">waiting for the next observation after {}</p>",
                change_ref_html(change)
            );
        }
        out.push_str("</div>\n");
    }
    out
}

/// `/incidents/{id}`: header, findings, failure layers, the lanes chart and the timeline.
pub fn incident_page(
    incident: &IncidentView,
    timeline: &[TimelineLine],
    lanes: &[FindingLane],
    at_seq: u64,
) -> String {
    let links = KeyLinks {
        default_cluster: &incident.cluster,
        by_key: incident
            .findings
            .iter()
            .map(|f| (f.check_key.as_str(), f.cluster.as_str()))
            .collect(),
    };
    let state = incident_state_word(incident.state);
    let sev = incident.severity.as_str();
    let id_path = encode_segment(&incident.id);
    let mut body = String::new();
    w!(
        body,
        "<nav class=\"crumbs\"><a href=\"/\">Incidents</a> / {}</nav>\n",
        key_html(&incident.id)
    );

    // Header.
    w!(
        body,
        "<section class=\"card head sev-edge-{sev}\" id=\"incident\" data-incident-id=\"{}\">\
         <div class=\"badges\">{}{}<span class=\"badge kind-badge\">{}</span></div><h1>{}</h1>\n",
        escape(&incident.id),
        state_badge(state),
        severity_badge(incident.severity),
        incident_kind_word(incident.kind),
        escape(&incident.title)
    );
    let last_event = timeline.iter().map(|l| l.at).max();
    let duration = match (incident.duration_secs, last_event) {
        (Some(secs), _) => human_secs(secs),
        (None, Some(last)) if incident.state == IncidentState::Open => format!(
            "<span class=\"ongoing\">ongoing</span> · {} to the last event",
            human_secs(secs_between(incident.opened_at, last))
        ),
        _ => "—".to_owned(),
    };
    let mut items = vec![
        ("Id", key_html(&incident.id)),
        ("Cluster", key_html(&incident.cluster)),
        (
            "Opened",
            format!(
                "{} {}",
                time_html(incident.opened_at),
                seq_link(incident.opened_seq)
            ),
        ),
        (
            "Closed",
            match (incident.closed_at, incident.closed_seq) {
                (Some(at), Some(seq)) => format!("{} {}", time_html(at), seq_link(seq)),
                (Some(at), None) => time_html(at),
                _ => "—".to_owned(),
            },
        ),
        ("Duration", duration),
        ("Findings", incident.findings.len().to_string()),
        ("Timeline", format!("{} entries", incident.timeline_entries)),
    ];
    if !incident.notes.is_empty() {
        let notes: Vec<String> = incident
            .notes
            .iter()
            .map(|(kind, n)| {
                format!(
                    "<span class=\"kind kind-note-{}\">{n} {}</span>",
                    class_token(kind),
                    escape(kind)
                )
            })
            .collect();
        items.push(("Notes", notes.join(" ")));
    }
    items.push(("As of", format!("log position <code>{at_seq}</code>")));
    body.push_str(&facts(&items));
    if let Some(summary) = &incident.summary {
        w!(body, "<p class=\"summary-text\">{}</p>\n", escape(summary));
    }
    if let Some(into) = &incident.merged_into {
        w!(
            body,
            "<p class=\"merged\">Merged into {}.</p>\n",
            link(&incident_href(into), "mono", into)
        );
    }
    w!(
        body,
        "<p class=\"api-links\"><a href=\"/v1/incidents/{id_path}\">JSON</a> · \
         <a href=\"/v1/incidents/{id_path}/postmortem?format=md\">Postmortem (Markdown)</a></p></section>\n"
    );

    // Findings.
    let flapping: BTreeMap<&str, bool> = lanes
        .iter()
        .map(|l| (l.check_key.as_str(), !l.flaps.is_empty()))
        .collect();
    w!(
        body,
        "<section id=\"findings\"><h2>Findings <span class=\"count\">{}</span></h2>\n",
        incident.findings.len()
    );
    if incident.findings.is_empty() {
        body.push_str("<p class=\"empty card\">No findings.</p>\n");
    } else {
        body.push_str(
            "<div class=\"card flush\"><table class=\"findings\">\n<thead><tr><th>Check key</th><th>Title</th>\
             <th>Severity</th><th>State</th><th>Joined (UTC)</th></tr></thead>\n<tbody>\n",
        );
        for finding in &incident.findings {
            let state = if finding.active { "active" } else { "resolved" };
            let flap = if flapping.get(finding.check_key.as_str()) == Some(&true) {
                " <span class=\"badge flapping\">flapped</span>"
            } else {
                ""
            };
            w!(
                body,
                "<tr class=\"finding\" data-check-key=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}{flap}</td><td>{}</td></tr>\n",
                escape(&finding.check_key),
                link(
                    &finding_href(&finding.cluster, &finding.check_key),
                    "mono",
                    &finding.check_key
                ),
                escape(finding.title.as_deref().unwrap_or("")),
                severity_badge(finding.severity),
                state_badge(state),
                time_html(finding.joined_at),
            );
        }
        body.push_str("</tbody>\n</table></div>\n");
    }
    body.push_str("</section>\n");

    // Failure layers.
    if !incident.layers.is_empty() {
        body.push_str("<section id=\"layers\"><h2>Failure layers</h2>\n<p class=\"hint\">Each fix revealed the next failure: layers in the order they appeared.</p>\n");
        body.push_str(&layers_html(&incident.layers, &links));
        body.push_str("</section>\n");
    }

    // Lanes.
    body.push_str("<section id=\"lanes\"><h2>Findings over time</h2>\n");
    if lanes.is_empty() {
        body.push_str("<p class=\"empty card\">No findings to draw.</p>\n");
    } else {
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
        body.push_str("<div class=\"card\">");
        body.push_str(&chart_html(&Chart {
            lanes,
            start,
            end,
            annotations,
            events: &events,
            links: &links,
        }));
        body.push_str("</div>\n");
    }
    body.push_str("</section>\n");

    // Timeline.
    w!(
        body,
        "<section id=\"timeline\"><h2>Timeline <span class=\"count\">{}</span></h2>\n<div class=\"card flush\">",
        timeline.len()
    );
    body.push_str(&timeline_table(timeline, &links));
    body.push_str("</div></section>\n");

    page(
        &format!("{} — {}", incident.id, incident.title),
        "page-incident",
        Section::Incidents,
        &body,
    )
}

// ---------------------------------------------------------------------------------------------
// Findings

fn detector_word(detector: FlapDetector) -> &'static str {
    match detector {
        FlapDetector::Count => "count",
        FlapDetector::StateChange => "state change",
    }
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
    let state = match finding.state {
        FindingState::Active => "active",
        FindingState::Resolved => "resolved",
    };
    let sev = finding.severity.as_str();
    let mut body = String::new();
    w!(
        body,
        "<nav class=\"crumbs\"><a href=\"/\">Incidents</a> / finding / {} / {}</nav>\n",
        key_html(&finding.cluster),
        key_html(&finding.check_key)
    );
    let flapping = if finding.flapping || finding.flapping_state_change {
        "<span class=\"badge flapping\">flapping</span>"
    } else {
        ""
    };
    w!(
        body,
        "<section class=\"card head sev-edge-{sev}\" id=\"finding\" data-check-key=\"{}\">\
         <div class=\"badges\">{}{}<span class=\"badge category\">{}</span>{flapping}</div>\
         <h1>{}</h1><p class=\"key-line\">{}</p>\n",
        escape(&finding.check_key),
        state_badge(state),
        severity_badge(finding.severity),
        escape(&finding.category),
        escape(&finding.title),
        key_html(&finding.check_key),
    );
    let yes_no = |b: bool| if b { "<b class=\"yes\">yes</b>" } else { "no" };
    let mut items = vec![
        ("Cluster", key_html(&finding.cluster)),
        ("Latest opened", time_html(finding.opened_at)),
        ("Last seen", time_html(finding.last_seen_at)),
    ];
    if let Some(resolved) = finding.resolved_at {
        items.push((
            "Resolved",
            format!(
                "{} {}",
                time_html(resolved),
                resolution_badge(finding.resolution_kind)
            ),
        ));
    }
    if let Some(clean) = finding.clean_cycles {
        items.push(("Clean cycles", clean.to_string()));
    }
    items.extend([
        ("Occurrences", finding.occurrences.to_string()),
        ("Flapping (count)", yes_no(finding.flapping).to_owned()),
        (
            "Flapping (state change)",
            format!(
                "{} · {:.1}% state change",
                yes_no(finding.flapping_state_change),
                finding.state_change_percent
            ),
        ),
    ]);
    body.push_str(&facts(&items));
    let (cluster_path, key_path) = (
        encode_segment(&finding.cluster),
        encode_segment(&finding.check_key),
    );
    w!(
        body,
        "<p class=\"api-links\"><a href=\"/v1/findings/{cluster_path}/{key_path}\">JSON</a></p></section>\n"
    );

    // Chart of the whole history.
    if let Some(first) = finding.history.first() {
        let start = first.opened_at.unix_nanos();
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
        body.push_str("<section id=\"lanes\"><h2>History</h2>\n<div class=\"card\">");
        body.push_str(&chart_html(&Chart {
            lanes: &lane,
            start,
            end,
            annotations,
            events: &[],
            links: &links,
        }));
        body.push_str("</div></section>\n");
    }

    // Occurrences.
    w!(
        body,
        "<section id=\"occurrences\"><h2>Occurrences <span class=\"count\">{}</span></h2>\n",
        finding.history.len()
    );
    if finding.history.is_empty() {
        body.push_str("<p class=\"empty card\">No occurrences.</p>\n");
    } else {
        body.push_str(
            "<div class=\"card flush\"><table class=\"occurrences\">\n<thead><tr><th class=\"num\">#</th>\
             <th>Opened (UTC)</th><th>Resolved (UTC)</th><th>How</th><th>Lasted</th></tr></thead>\n<tbody>\n",
        );
        for (n, occurrence) in finding.history.iter().enumerate() {
            let (resolved, how, lasted) = match occurrence.resolved_at {
                Some(at) => (
                    format!(
                        "{} {}",
                        time_html(at),
                        occurrence.resolved_seq.map(seq_link).unwrap_or_default()
                    ),
                    resolution_badge(occurrence.resolution_kind),
                    human_secs(secs_between(occurrence.opened_at, at)),
                ),
                None => (
                    "—".to_owned(),
                    state_badge("active"),
                    "<span class=\"ongoing\">ongoing</span>".to_owned(),
                ),
            };
            w!(
                body,
                "<tr class=\"occurrence\" data-opened-seq=\"{}\"><td class=\"num\">{}</td><td>{} {}</td><td>{resolved}</td><td>{how}</td><td>{lasted}</td></tr>\n",
                occurrence.opened_seq,
                n + 1,
                time_html(occurrence.opened_at),
                seq_link(occurrence.opened_seq),
            );
        }
        body.push_str("</tbody>\n</table></div>\n");
    }
    body.push_str("</section>\n");

    // Flap episodes.
    if !flaps.is_empty() {
        w!(
            body,
            "<section id=\"flaps\"><h2>Flap episodes <span class=\"count\">{}</span></h2>\n\
             <div class=\"card flush\"><table class=\"flaps\">\n<thead><tr><th>Detector</th><th>Started (UTC)</th>\
             <th>Because</th><th>Stopped (UTC)</th><th>Because</th></tr></thead>\n<tbody>\n",
            flaps.len()
        );
        for episode in flaps {
            let stopped = match (episode.stopped_at, episode.stopped_seq) {
                (Some(at), Some(seq)) => format!("{} {}", time_html(at), seq_link(seq)),
                (Some(at), None) => time_html(at),
                _ => "<span class=\"badge flapping\">still flapping</span>".to_owned(),
            };
            w!(
                body,
                "<tr class=\"flap-episode\"><td>{}</td><td>{} {}</td><td>{}</td><td>{stopped}</td><td>{}</td></tr>\n",
                detector_word(episode.detector),
                time_html(episode.started_at),
                seq_link(episode.started_seq),
                escape(&episode.started_because),
                escape(episode.stopped_because.as_deref().unwrap_or("")),
            );
        }
        body.push_str("</tbody>\n</table></div></section>\n");
    }

    // Timeline.
    w!(
        body,
        "<section id=\"timeline\"><h2>Timeline <span class=\"count\">{}</span></h2>\n<div class=\"card flush\">",
        timeline.len()
    );
    body.push_str(&timeline_table(timeline, &links));
    body.push_str("</div></section>\n");
    page(
        &format!("{} — {}", finding.check_key, finding.title),
        "page-finding",
        Section::None,
        &body,
    )
}

// ---------------------------------------------------------------------------------------------
// Orphans

fn orphan_what(orphan: &OrphanView) -> String {
    if let Some(resource) = &orphan.resource {
        let name = match &resource.namespace {
            Some(ns) => format!("{ns}/{}", resource.name),
            None => resource.name.clone(),
        };
        return format!(
            "<span class=\"res-kind\">{}</span> {}",
            escape(&resource.kind),
            key_html(&name)
        );
    }
    if let Some(tracking) = &orphan.tracking {
        let mut out = format!(
            "tracking row <span class=\"res-kind\">{}</span> {}",
            escape(&tracking.kind),
            key_html(&tracking.key)
        );
        if let Some(uid) = &tracking.uid {
            w!(out, " <span class=\"muted\">uid</span> {}", key_html(uid));
        }
        return out;
    }
    let mut out = String::new();
    if let Some(span) = &orphan.span {
        w!(
            out,
            "span {} <span class=\"muted\">of</span> {} {} ",
            key_html(&span.name),
            escape(&span.service),
            key_html(&span.span_id)
        );
    }
    if let Some(trace) = &orphan.trace_id {
        w!(
            out,
            "<span class=\"muted\">trace</span> {}",
            key_html(trace)
        );
    }
    out
}

/// `/orphans`: every orphan, then the resource graph they sit in.
pub fn orphans_page(orphans: &[OrphanView], graph: &OrphanGraph) -> String {
    let mut body = String::new();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for orphan in orphans {
        *by_kind.entry(orphan.kind.as_str()).or_default() += 1;
    }
    w!(
        body,
        "<section class=\"page-head\"><h1>Orphans</h1><p class=\"sub\"><span class=\"stat stat-open\"><b>{}</b> orphan(s)</span>",
        orphans.len()
    );
    for (kind, n) in &by_kind {
        w!(
            body,
            "<span class=\"stat\"><span class=\"badge orphan-kind orphan-{kind}\">{}</span> {n}</span>",
            kind.replace('_', " ")
        );
    }
    w!(
        body,
        "<span class=\"asof\">{} resource(s) in the graph</span></p></section>\n",
        graph.nodes.len()
    );

    body.push_str("<section id=\"orphan-list\">\n");
    if orphans.is_empty() {
        body.push_str("<p class=\"empty card\">No orphans.</p>\n");
    } else {
        body.push_str(
            "<div class=\"card flush\"><table class=\"orphans\">\n<thead><tr><th>Kind</th><th>What</th><th>Cluster</th>\
             <th>Reason</th><th>Since (UTC)</th><th class=\"num\">Scans</th></tr></thead>\n<tbody>\n",
        );
        for orphan in orphans {
            let kind = orphan.kind.as_str();
            w!(
                body,
                "<tr class=\"orphan orphan-row-{kind}\"><td><span class=\"badge orphan-kind orphan-{kind}\">{}</span></td>\
                 <td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>\n",
                kind.replace('_', " "),
                orphan_what(orphan),
                escape(&orphan.cluster),
                escape(&orphan.reason),
                time_html(orphan.since),
                if orphan.kind == OrphanKind::OrphanSpan || orphan.kind == OrphanKind::RootlessTrace
                {
                    "—".to_owned()
                } else {
                    orphan.scans.to_string()
                },
            );
        }
        body.push_str("</tbody>\n</table></div>\n");
    }
    body.push_str("</section>\n<section id=\"graph\"><h2>Resource graph</h2>\n");
    if graph.nodes.is_empty() {
        body.push_str("<p class=\"empty card\">No resources seen yet.</p>\n");
    } else if graph.nodes.len() > graph::MAX_DRAWN_NODES {
        w!(
            body,
            "<p class=\"note card\">The graph has {} resources, more than the {} this page draws; \
             the orphans are listed above.</p>\n",
            graph.nodes.len(),
            graph::MAX_DRAWN_NODES
        );
    } else {
        body.push_str(
            "<div class=\"legend\"><span><i class=\"sw sw-node\"></i>live</span><span><i class=\"sw sw-tracked\"></i>tracked</span>\
             <span><i class=\"sw sw-orphan\"></i>orphan</span><span><i class=\"sw sw-gone\"></i>not live</span>\
             <span><i class=\"sw sw-owns\"></i>owns</span><span><i class=\"sw sw-uses\"></i>uses</span></div>\n",
        );
        body.push_str("<div class=\"card scroll\">");
        body.push_str(&graph::graph_svg(graph));
        body.push_str("</div>\n");
    }
    body.push_str("</section>\n");
    page("Orphans", "page-orphans", Section::Orphans, &body)
}

/// A 404 page naming what was not found.
pub fn not_found_page(what: &str) -> String {
    let body = format!(
        "<section class=\"card head notfound\"><h1>Not found</h1><p>{}</p>\
         <p><a href=\"/\">Back to incidents</a></p></section>\n",
        escape(what)
    );
    page("Not found", "page-notfound", Section::None, &body)
}
