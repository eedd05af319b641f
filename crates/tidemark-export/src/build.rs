//! Assembling a [`Postmortem`] from the projections and the incident's events.
//!
//! The incident's window is its log positions, from `opened_seq` to `closed_seq` (or the
//! postmortem's position while open): occurrences, flap episodes and orphans are "during the
//! incident" when their positions overlap it. Times are only ever read from events.

use std::collections::{BTreeMap, BTreeSet};

use tidemark_core::describe::one_line;
use tidemark_core::event::{ChangeDeployed, ManualResolutionKind, NoteKind};
use tidemark_core::incidents::{
    ChangeRef, DifferentFailure, Incident, IncidentKind, IncidentState, IncidentView,
};
use tidemark_core::maintenance::{WindowBook, WindowEnd};
use tidemark_core::{Event, Occurrence, Payload, Projections};

use crate::text::{self, count, join_and};
use crate::{
    BuildError, ChangeLink, ChangeRow, FlapRow, FollowUp, FollowUpSource, Impact, InitialState,
    LayeredResource, MAINTENANCE_INTERVALS_LISTED, MaintenanceRow, NoteRow, Notes, Postmortem,
    Resolution, TimelineRow, TriageRow,
};

/// Log positions `[start, end]` of the incident.
#[derive(Clone, Copy)]
struct Window {
    start: u64,
    end: u64,
}

impl Window {
    fn overlaps(self, from: u64, to: Option<u64>) -> bool {
        from <= self.end && to.is_none_or(|to| to >= self.start)
    }

    fn contains(self, seq: u64) -> bool {
        (self.start..=self.end).contains(&seq)
    }
}

pub(crate) fn build(
    id: &str,
    projections: &Projections,
    events: &[(u64, Event)],
    at_seq: u64,
    books: &BTreeMap<String, WindowBook>,
) -> Result<Postmortem, BuildError> {
    let incident = projections
        .incidents()
        .incident(id)
        .ok_or_else(|| BuildError::UnknownIncident { id: id.to_owned() })?;
    let incident = &*incident;
    let findings = projections.findings();
    let view = projections.incidents().view(incident, findings);
    // Positions are unique in a log; should one be given twice, the first given wins.
    let mut by_seq: BTreeMap<u64, &Event> = BTreeMap::new();
    for (seq, event) in events {
        by_seq.entry(*seq).or_insert(event);
    }
    let entries = projections.incidents().timeline(incident);
    let mut timeline = Vec::with_capacity(entries.len());
    let mut timeline_events: Vec<(u64, &Event)> = Vec::with_capacity(entries.len());
    for entry in entries.iter() {
        let event = *by_seq
            .get(&entry.seq)
            .ok_or(BuildError::MissingEvent { seq: entry.seq })?;
        timeline_events.push((entry.seq, event));
        timeline.push(TimelineRow {
            seq: entry.seq,
            // The event's own time: a late event shows where it landed, marked (ADR 0004).
            at: event.time,
            event_type: event.event_type().as_str().to_owned(),
            event: one_line(event),
            touches: entry.touches.clone(),
            effect: text::effects(&entry.touches),
        });
    }
    let window = Window {
        start: incident.opened_seq,
        end: incident
            .closed_seq
            .unwrap_or(at_seq)
            .max(incident.opened_seq),
    };

    let clusters: Vec<String> = incident.clusters().into_iter().collect();

    let triage = triage(incident, projections, &by_seq, window);
    let changes = changes(incident, &timeline, &timeline_events);
    let layers = layers(&view, incident, projections, &timeline_events, &changes);
    let flaps = flaps(incident, projections, &clusters, window);
    let orphans = clusters
        .iter()
        .flat_map(|cluster| projections.orphans().orphans(Some(cluster)))
        .filter(|orphan| window.contains(orphan.since_seq))
        .collect();
    let maintenance = maintenance(incident, &view, projections, &clusters, books);
    let (notes, mut follow_ups) = notes(incident, &timeline_events);
    follow_ups.extend(generated_follow_ups(incident, projections, &flaps));

    let impact = Impact {
        started_at: view.opened_at,
        ended_at: view.closed_at,
        duration_secs: view.duration_secs,
        clusters,
        peak_severity: view.severity,
        findings: view.findings.len(),
    };
    let clean_cycles = projections
        .findings()
        .settings(&incident.cluster)
        .clean_cycles_to_resolve;
    let tl_dr = tl_dr(&TlDrFacts {
        view: &view,
        impact: &impact,
        triage: &triage,
        layers: &layers,
        notes: &notes,
        closing: incident
            .closed_seq
            .and_then(|seq| by_seq.get(&seq).copied()),
        clean_cycles,
        at_seq,
    });
    Ok(Postmortem {
        incident: view,
        tl_dr,
        impact,
        triage,
        timeline,
        changes,
        layers,
        flaps,
        orphans,
        maintenance,
        notes,
        follow_ups,
        generated_at_seq: at_seq,
    })
}

/// One row per finding (first seen first, then most severe): the occurrences that overlap the incident, how it looked when it
/// opened, how it ended.
fn triage(
    incident: &Incident,
    projections: &Projections,
    by_seq: &BTreeMap<u64, &Event>,
    window: Window,
) -> Vec<TriageRow> {
    let findings = projections.findings();
    let mut rows: Vec<TriageRow> = incident
        .findings
        .iter()
        .map(|f| {
            let history = findings
                .view(&f.cluster, &f.check_key)
                .map(|v| v.history)
                .unwrap_or_default();
            let during: Vec<&Occurrence> = history
                .iter()
                .filter(|o| window.overlaps(o.opened_seq, o.resolved_seq))
                .collect();
            // None overlapping (named after it resolved): the latest one before the end.
            let fallback: Vec<&Occurrence> = history
                .iter()
                .rev()
                .find(|o| o.opened_seq <= window.end)
                .or(history.first())
                .into_iter()
                .collect();
            let during = if during.is_empty() { fallback } else { during };
            let first = during.first().copied();
            let last = during.last().copied();
            let facts = findings.finding_facts(&f.cluster, &f.check_key);
            let observed = first
                .and_then(|o| by_seq.get(&o.opened_seq))
                .and_then(|event| match &event.payload {
                    Payload::CycleCompleted(cycle) => cycle
                        .findings
                        .iter()
                        .find(|obs| obs.check_key == f.check_key),
                    _ => None,
                });
            let (initial_title, initial_detail) = match (observed, facts) {
                (Some(obs), _) => (obs.title.clone(), obs.detail.clone()),
                (None, Some(facts)) => (facts.title.to_owned(), facts.detail.map(str::to_owned)),
                (None, None) => (f.check_key.clone(), None),
            };
            let initial_state = initial_state(first, window.start, |from, to| {
                severity_observed(by_seq, &f.cluster, &f.check_key, from, to)
            });
            let resolved_seq = last.and_then(|o| o.resolved_seq);
            let resolution = match last {
                Some(o) if o.resolved_seq.is_some() => {
                    o.resolution_kind.map_or(Resolution::Auto, Resolution::from)
                }
                _ => Resolution::StillActive,
            };
            let resolved_by = resolved_seq
                .and_then(|seq| by_seq.get(&seq))
                .and_then(|event| match &event.payload {
                    Payload::FindingResolved(r) if r.check_key == f.check_key => {
                        let who = match (r.kind, &r.recipe, &r.by) {
                            (ManualResolutionKind::Recipe, Some(recipe), Some(by)) => {
                                format!("{recipe} run by {by}")
                            }
                            (ManualResolutionKind::Recipe, Some(recipe), None) => recipe.clone(),
                            (_, _, by) => by.clone().unwrap_or_default(),
                        };
                        Some(match &r.reason {
                            Some(reason) if who.is_empty() => reason.clone(),
                            Some(reason) => format!("{who}: {reason}"),
                            None => who,
                        })
                        .filter(|s| !s.is_empty())
                    }
                    _ => None,
                });
            TriageRow {
                cluster: f.cluster.clone(),
                check_key: f.check_key.clone(),
                severity: f.max_severity,
                first_seen_at: first.map_or(f.joined_at, |o| o.opened_at),
                first_seen_seq: first.map_or(f.joined_seq, |o| o.opened_seq),
                initial_title,
                initial_detail,
                initial_state,
                resolution,
                resolved_at: last.and_then(|o| o.resolved_at),
                resolved_seq,
                resolved_by,
                occurrences: u32::try_from(during.len()).unwrap_or(u32::MAX),
            }
        })
        .collect();
    // First seen first; among findings seen together, the most severe first.
    rows.sort_by(|a, b| {
        (
            a.first_seen_seq,
            std::cmp::Reverse(a.severity),
            &a.cluster,
            &a.check_key,
        )
            .cmp(&(
                b.first_seen_seq,
                std::cmp::Reverse(b.severity),
                &b.cluster,
                &b.check_key,
            ))
    });
    rows
}

/// A finding's state at the incident's opening (position `opened_seq`), from its first
/// occurrence overlapping the incident; `severity(from, to)` is its latest observed severity
/// between two positions.
fn initial_state(
    first: Option<&Occurrence>,
    opened_seq: u64,
    severity: impl Fn(u64, u64) -> Option<tidemark_core::Severity>,
) -> InitialState {
    let Some(occurrence) = first else {
        return InitialState::Unknown;
    };
    if occurrence.opened_seq > opened_seq {
        return InitialState::OpenedLater {
            at: occurrence.opened_at,
            severity: severity(occurrence.opened_seq, occurrence.opened_seq),
        };
    }
    match (occurrence.resolved_seq, occurrence.resolved_at) {
        (Some(resolved), Some(at)) if resolved < opened_seq => InitialState::ResolvedBefore { at },
        _ => InitialState::Active {
            since: occurrence.opened_at,
            severity: severity(occurrence.opened_seq, opened_seq),
        },
    }
}

/// The severity of the latest observation of a finding among the events at hand, between two
/// log positions (inclusive).
fn severity_observed(
    by_seq: &BTreeMap<u64, &Event>,
    cluster: &str,
    check_key: &str,
    from: u64,
    to: u64,
) -> Option<tidemark_core::Severity> {
    by_seq
        .range(from..=to)
        .rev()
        .filter(|(_, event)| event.cluster == cluster)
        .find_map(|(_, event)| match &event.payload {
            Payload::CycleCompleted(cycle) => cycle
                .findings
                .iter()
                .find(|obs| obs.check_key == check_key)
                .map(|obs| obs.severity),
            _ => None,
        })
}

/// Whether a layer label (`Kind ns/workload`) names the deployed service (as the projection
/// decides which resources a change arms).
fn label_names_service(label: &str, service: &str) -> bool {
    label.rsplit(['/', ' ']).next().unwrap_or(label) == service
}

fn same_change(a: &ChangeRef, b: &ChangeRef) -> bool {
    a.seq == b.seq
}

/// The layered resources, each with the change that ended its last layer.
fn layers(
    view: &IncidentView,
    incident: &Incident,
    projections: &Projections,
    timeline_events: &[(u64, &Event)],
    changes: &[ChangeRow],
) -> Vec<LayeredResource> {
    // Only a change linked to the incident can have fixed it, never one linked only by time.
    let linked: BTreeSet<u64> = changes
        .iter()
        .filter(|c| c.link != ChangeLink::Time)
        .map(|c| c.seq)
        .collect();
    let findings = projections.findings();
    view.layers
        .iter()
        .map(|resource| {
            // The layer the resource was at last; every change the layers already account
            // for (that revealed, left, diverted or brought back a failure) is not the fix.
            let accounted: Vec<&ChangeRef> = resource
                .layers
                .iter()
                .flat_map(|l| {
                    l.after_change
                        .iter()
                        .chain(&l.changes_without_effect)
                        .chain(l.failed_differently.iter().map(|f| &f.change))
                        .chain(&l.seen_again_after)
                })
                .collect();
            let current = resource
                .layers
                .iter()
                .find(|l| l.number == resource.current_layer)
                .or(resource.layers.last());
            let fixed_by = current.and_then(|last| {
                let cluster = incident
                    .findings
                    .iter()
                    .find(|f| f.check_key == last.check_key)
                    .map_or(incident.cluster.as_str(), |f| f.cluster.as_str());
                let resolved_seq = findings
                    .view(cluster, &last.check_key)?
                    .history
                    .iter()
                    .filter_map(|o| o.resolved_seq)
                    .find(|&seq| seq > last.first_seen_seq)?;
                let changes: Vec<ChangeRef> = timeline_events
                    .iter()
                    .filter(|(seq, _)| (last.first_seen_seq..resolved_seq).contains(seq))
                    .filter(|(seq, _)| linked.contains(seq))
                    .filter_map(|&(seq, event)| match &event.payload {
                        Payload::ChangeDeployed(d) => Some(change_ref(seq, event, d)),
                        _ => None,
                    })
                    .filter(|c| !accounted.iter().any(|x| same_change(x, c)))
                    .collect();
                // The last change about this resource, else the last linked change at all.
                changes
                    .iter()
                    .rev()
                    .find(|c| label_names_service(&resource.resource, &c.service))
                    .or(changes.last())
                    .cloned()
            });
            LayeredResource {
                resource: resource.resource.clone(),
                layers: resource.layers.clone(),
                fixed_by,
            }
        })
        .collect()
}

/// The changes of the timeline, each with how it is linked: by the touch the incidents
/// projection recorded (a linked kind, else `_during`: only by time), then, for a linked one, by
/// what the event names (the incidents projection links by resource only a change that names
/// no incident and no check key of an open incident).
fn changes(
    incident: &Incident,
    timeline: &[TimelineRow],
    timeline_events: &[(u64, &Event)],
) -> Vec<ChangeRow> {
    timeline
        .iter()
        .zip(timeline_events)
        .filter_map(|(row, &(_, event))| {
            let Payload::ChangeDeployed(deploy) = &event.payload else {
                return None;
            };
            // An entry of an absorbed incident's timeline may carry both: linked wins.
            let linked = row
                .touches
                .iter()
                .any(|t| matches!(t.change.as_str(), "deploy" | "rollback" | "config"));
            let during = row.touches.iter().any(|t| t.change.ends_with("_during"));
            let names_it = deploy.incident.is_some()
                || deploy.check_keys.iter().any(|key| {
                    incident
                        .findings
                        .iter()
                        .any(|f| f.cluster == event.cluster && &f.check_key == key)
                });
            let link = match (linked, during) {
                (true, _) if names_it => ChangeLink::Explicit,
                (true, _) => ChangeLink::Resource,
                (false, true) => ChangeLink::Time,
                (false, false) => return None,
            };
            Some(ChangeRow {
                seq: row.seq,
                at: event.time,
                cluster: event.cluster.clone(),
                kind: deploy.kind,
                service: deploy.service.clone(),
                version: deploy.version.clone(),
                summary: deploy.summary.clone(),
                link,
            })
        })
        .collect()
}

fn change_ref(seq: u64, event: &Event, deploy: &ChangeDeployed) -> ChangeRef {
    ChangeRef {
        service: deploy.service.clone(),
        version: deploy.version.clone(),
        kind: deploy.kind,
        seq,
        at: event.time,
    }
}

/// The maintenance windows of the incident's clusters open while it was (from its opening to
/// its closing, or to its cluster's clock while it is open), with the findings of it each
/// covers.
fn maintenance(
    incident: &Incident,
    view: &tidemark_core::incidents::IncidentView,
    projections: &Projections,
    clusters: &[String],
    books: &BTreeMap<String, WindowBook>,
) -> Vec<MaintenanceRow> {
    let findings = projections.findings();
    let until = view.closed_at.unwrap_or_else(|| {
        clusters
            .iter()
            .filter_map(|c| findings.clock(c))
            .max()
            .unwrap_or(view.opened_at)
    });
    let mut rows = Vec::new();
    for cluster in clusters {
        let Some(book) = books.get(cluster) else {
            continue;
        };
        for (entry, intervals) in book.overlapping(view.opened_at, until) {
            let covered_findings: BTreeSet<String> = incident
                .findings
                .iter()
                .filter(|f| &f.cluster == cluster)
                .filter(|f| {
                    findings
                        .book_windows_of(cluster, &f.check_key, book)
                        .iter()
                        .any(|e| e.window.scheduled_seq() == entry.window.scheduled_seq())
                })
                .map(|f| f.check_key.clone())
                .collect();
            let data = entry.window.data();
            let more_intervals = intervals.len().saturating_sub(MAINTENANCE_INTERVALS_LISTED);
            rows.push(MaintenanceRow {
                cluster: cluster.clone(),
                window: data.window.clone(),
                by: data.by.clone(),
                reason: data.reason.clone(),
                covers: tidemark_core::describe::maintenance_matchers(&data.matchers),
                open: intervals
                    .into_iter()
                    .take(MAINTENANCE_INTERVALS_LISTED)
                    .collect(),
                more_intervals,
                covered_findings: covered_findings.into_iter().collect(),
                ended: entry.ended.as_ref().map(|(_, _, how)| match how {
                    WindowEnd::Cancelled {
                        by,
                        reason: Some(why),
                    } => {
                        format!("cancelled by {by}: {why}")
                    }
                    WindowEnd::Cancelled { by, reason: None } => format!("cancelled by {by}"),
                    WindowEnd::Replaced => "replaced by a new schedule".to_owned(),
                }),
            });
        }
    }
    rows
}

/// Flap episodes of the incident's findings that overlap the incident.
fn flaps(
    incident: &Incident,
    projections: &Projections,
    clusters: &[String],
    window: Window,
) -> Vec<FlapRow> {
    let keys: BTreeSet<(&str, &str)> = incident
        .findings
        .iter()
        .map(|f| (f.cluster.as_str(), f.check_key.as_str()))
        .collect();
    clusters
        .iter()
        .flat_map(|cluster| projections.findings().flaps(Some(cluster)))
        .filter(|flap| keys.contains(&(flap.cluster.as_str(), flap.check_key.as_str())))
        .filter_map(|flap| {
            let episodes: Vec<_> = flap
                .episodes
                .into_iter()
                .filter(|e| window.overlaps(e.started_seq, e.stopped_seq))
                .collect();
            (!episodes.is_empty()).then_some(FlapRow {
                cluster: flap.cluster,
                check_key: flap.check_key,
                title: flap.title,
                episodes,
            })
        })
        .collect()
}

/// The incident's notes by kind; actions and decisions written after it closed are follow-ups.
fn notes(incident: &Incident, timeline_events: &[(u64, &Event)]) -> (Notes, Vec<FollowUp>) {
    let mut notes = Notes::default();
    let mut follow_ups = Vec::new();
    for &(seq, event) in timeline_events {
        let Payload::NoteAdded(note) = &event.payload else {
            continue;
        };
        let row = NoteRow {
            seq,
            at: event.time,
            author: note.author.clone(),
            text: note.text.clone(),
            links: note.links.clone(),
        };
        let after_close = incident.closed_seq.is_some_and(|closed| seq > closed);
        match note.kind {
            NoteKind::Action | NoteKind::Decision if after_close => follow_ups.push(FollowUp {
                source: if note.kind == NoteKind::Action {
                    FollowUpSource::Action
                } else {
                    FollowUpSource::Decision
                },
                text: row.text,
                author: Some(row.author),
                at: Some(row.at),
                seq: Some(seq),
                check_key: None,
            }),
            NoteKind::Hypothesis => notes.hypotheses.push(row),
            NoteKind::Action => notes.actions.push(row),
            NoteKind::Decision => notes.decisions.push(row),
            NoteKind::Observation => notes.observations.push(row),
            NoteKind::Resolution => notes.resolution.push(row),
        }
    }
    (notes, follow_ups)
}

/// A follow-up for every finding that flapped during the incident and every finding whose key
/// has unstable parts, sorted by (cluster, check_key, source).
fn generated_follow_ups(
    incident: &Incident,
    projections: &Projections,
    flaps: &[FlapRow],
) -> Vec<FollowUp> {
    let mut out: Vec<(String, FollowUp)> = Vec::new();
    for flap in flaps {
        let why = flap
            .episodes
            .iter()
            .map(|e| e.started_because.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join("; ");
        out.push((
            flap.cluster.clone(),
            FollowUp {
                source: FollowUpSource::Flapping,
                text: format!(
                    "stabilise check key {}: it flapped during the incident ({why})",
                    flap.check_key
                ),
                author: None,
                at: None,
                seq: None,
                check_key: Some(flap.check_key.clone()),
            },
        ));
    }
    let clusters: BTreeSet<&str> = incident
        .findings
        .iter()
        .map(|f| f.cluster.as_str())
        .collect();
    for cluster in clusters {
        for unstable in projections.unstable_keys(Some(cluster)) {
            let key = &unstable.advice.check_key;
            if !incident
                .findings
                .iter()
                .any(|f| f.cluster == cluster && &f.check_key == key)
            {
                continue;
            }
            out.push((
                cluster.to_owned(),
                FollowUp {
                    source: FollowUpSource::UnstableKey,
                    text: format!(
                        "stabilise check key {key}: key it as {} ({})",
                        unstable.advice.suggestion,
                        unstable.advice.advice.trim_end_matches('.')
                    ),
                    author: None,
                    at: None,
                    seq: None,
                    check_key: Some(key.clone()),
                },
            ));
        }
    }
    out.sort_by(|(ca, a), (cb, b)| (ca, &a.check_key, a.source).cmp(&(cb, &b.check_key, b.source)));
    out.into_iter().map(|(_, f)| f).collect()
}

struct TlDrFacts<'a> {
    view: &'a IncidentView,
    impact: &'a Impact,
    triage: &'a [TriageRow],
    layers: &'a [LayeredResource],
    notes: &'a Notes,
    /// The event at the closing position, if closed.
    closing: Option<&'a Event>,
    clean_cycles: u32,
    at_seq: u64,
}

/// The generated summary: scope, how the findings ended, the layers, how the incident ended.
fn tl_dr(facts: &TlDrFacts<'_>) -> String {
    let mut sentences = Vec::new();
    let impact = facts.impact;
    let span = match impact.duration_secs {
        Some(secs) => format!("over {}", text::duration(secs)),
        None => "and counting".to_owned(),
    };
    sentences.push(format!(
        "{} in {} {span}, peak severity {}.",
        count(impact.findings, "finding", "findings"),
        join_and(&impact.clusters),
        impact.peak_severity
    ));

    // Findings by how they ended, auto first. Auto-resolution happens at the clean cycle after
    // T clean ones (lifecycle.md), hence T + 1.
    let mut tally: BTreeMap<Resolution, usize> = BTreeMap::new();
    for row in facts.triage {
        *tally.entry(row.resolution).or_default() += 1;
    }
    let parts: Vec<String> = tally
        .iter()
        .map(|(&resolution, &n)| match resolution {
            Resolution::Auto => format!(
                "{n} resolved automatically after {} clean cycles",
                facts.clean_cycles + 1
            ),
            Resolution::Manual => format!("{n} by hand"),
            Resolution::Recipe => format!("{n} by a recipe"),
            Resolution::Informational => format!("{n} informational"),
            Resolution::Source => format!("{n} resolved by the alerting system"),
            Resolution::StillActive => format!("{n} still active"),
        })
        .collect();
    if !parts.is_empty() {
        let mut line = join_and(&parts);
        if let Some(first) = line.get(..1) {
            line = first.to_uppercase() + &line[1..];
        }
        sentences.push(format!("{line}."));
    }

    for resource in facts.layers {
        let mut line = if resource.layers.len() > 1 {
            format!(
                "{} failed in {} layers, each hidden by the one before",
                resource.resource,
                resource.layers.len()
            )
        } else {
            format!("{} failed the same way throughout", resource.resource)
        };
        let mut useless: Vec<&ChangeRef> = resource
            .layers
            .iter()
            .flat_map(|l| &l.changes_without_effect)
            .collect();
        useless.sort_by_key(|c| c.seq);
        let useless: Vec<String> = useless.into_iter().map(text::change).collect();
        if !useless.is_empty() {
            line.push_str(&format!("; {} changed nothing", join_and(&useless)));
        }
        let mut different: Vec<&DifferentFailure> = resource
            .layers
            .iter()
            .flat_map(|l| &l.failed_differently)
            .collect();
        different.sort_by_key(|f| f.seen_seq);
        for failure in different {
            line.push_str(&format!(
                "; {} failed differently ({})",
                text::change(&failure.change),
                failure.signature
            ));
        }
        match &resource.fixed_by {
            Some(change) => line.push_str(&format!("; {} fixed it", text::change(change))),
            None if facts.view.findings.iter().any(|f| f.active) => {
                line.push_str("; not fixed yet")
            }
            None => {}
        }
        sentences.push(format!("{line}."));
    }

    match (facts.view.state, facts.view.closed_at) {
        (IncidentState::Merged, _) => sentences.push(format!(
            "It was absorbed into incident {}.",
            facts.view.merged_into.as_deref().unwrap_or("?")
        )),
        (IncidentState::Closed, Some(closed_at)) => {
            let when = text::hour_minute(closed_at);
            match facts.closing.map(|e| &e.payload) {
                Some(Payload::IncidentClosed(change)) => sentences.push(match &change.summary {
                    Some(summary) => {
                        format!("Closed at {when} UTC: {}", text::sentence(summary))
                    }
                    None => format!("Closed at {when} UTC."),
                }),
                _ if facts.view.kind == IncidentKind::Automatic => sentences.push(format!(
                    "It resolved automatically at {when} UTC, when its last finding had \
                     been clean for {} cycles.",
                    facts.clean_cycles + 1
                )),
                _ => sentences.push(format!("Closed at {when} UTC.")),
            }
            if let Some(note) = facts.notes.resolution.last() {
                sentences.push(format!(
                    "Resolution, by {}: {}",
                    note.author,
                    text::sentence(&note.text)
                ));
            }
        }
        _ => sentences.push(format!(
            "It is still open at log position {}.",
            facts.at_seq
        )),
    }
    sentences.join(" ")
}

#[cfg(test)]
mod tests {
    use tidemark_core::{ResolutionKind, Severity, Timestamp};

    use super::*;

    fn occurrence(opened_seq: u64, resolved_seq: Option<u64>) -> Occurrence {
        Occurrence {
            opened_at: Timestamp::from_unix_secs(opened_seq as i64 * 60),
            opened_seq,
            resolved_at: resolved_seq.map(|seq| Timestamp::from_unix_secs(seq as i64 * 60)),
            resolved_seq,
            resolution_kind: resolved_seq.map(|_| ResolutionKind::Auto),
        }
    }

    #[test]
    fn the_initial_state_is_the_findings_state_at_the_incidents_opening() {
        let severity = |from: u64, to: u64| {
            Some(if to > from {
                Severity::Error
            } else {
                Severity::Warning
            })
        };
        // Active before the incident opened at 10: since its opening, at its severity at 10.
        assert_eq!(
            initial_state(Some(&occurrence(4, None)), 10, severity),
            InitialState::Active {
                since: Timestamp::from_unix_secs(4 * 60),
                severity: Some(Severity::Error),
            }
        );
        // Resolved at the incident's opening or after: it was active then.
        assert!(matches!(
            initial_state(Some(&occurrence(4, Some(10))), 10, severity),
            InitialState::Active { .. }
        ));
        // Opened during the incident.
        assert_eq!(
            initial_state(Some(&occurrence(12, None)), 10, severity),
            InitialState::OpenedLater {
                at: Timestamp::from_unix_secs(12 * 60),
                severity: Some(Severity::Warning),
            }
        );
        // Resolved before the incident named it.
        assert_eq!(
            initial_state(Some(&occurrence(2, Some(5))), 10, severity),
            InitialState::ResolvedBefore {
                at: Timestamp::from_unix_secs(5 * 60)
            }
        );
        assert_eq!(initial_state(None, 10, severity), InitialState::Unknown);
    }
}
