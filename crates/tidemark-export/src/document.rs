//! The postmortem as a small document (sections of paragraphs, fields, tables and lists) that
//! both text renderers draw: what is said is decided here once; how it is escaped and laid out
//! is the renderer's business.

use tidemark_core::incidents::{IncidentKind, IncidentState};
use tidemark_core::orphans::OrphanView;
use tidemark_core::{Severity, Timestamp};

use crate::text::{self, count};
use crate::{FollowUpSource, InitialState, NoteRow, Postmortem, Resolution};

/// A run of inline content.
#[derive(Clone, Debug)]
pub(crate) enum Span {
    /// Plain user or generated text.
    Text(String),
    /// Identifiers, versions, error signatures.
    Code(String),
    /// Emphasised text.
    Strong(String),
    /// An instant and how to show it.
    Time(Timestamp, String),
    /// A link given by a user (rendered as a link only when it is http or https).
    Link(String),
    /// A severity, as a badge.
    Severity(Severity),
}

/// One line of inline content.
pub(crate) type Line = Vec<Span>;

/// A block of a section.
#[derive(Clone, Debug)]
pub(crate) enum Block {
    /// A paragraph.
    Para(Line),
    /// Labelled values.
    Fields(Vec<(&'static str, Line)>),
    /// A table with a header row.
    Table {
        head: Vec<&'static str>,
        rows: Vec<Vec<Line>>,
    },
    /// A bulleted or numbered list.
    List { ordered: bool, items: Vec<Line> },
    /// A sub-heading.
    Heading(String),
}

/// A titled section.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    /// Anchor id (HTML).
    pub id: &'static str,
    /// Heading.
    pub title: &'static str,
    /// Content.
    pub blocks: Vec<Block>,
}

/// The whole postmortem.
#[derive(Clone, Debug)]
pub(crate) struct Document {
    /// The page title, without the `Postmortem:` prefix.
    pub title: String,
    /// The line under the title: id, severity, clusters, state.
    pub meta: Line,
    /// Every section, in order.
    pub sections: Vec<Section>,
    /// The closing line.
    pub footer: Line,
}

fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

fn code(s: impl Into<String>) -> Span {
    Span::Code(s.into())
}

/// Text people wrote (notes, titles, reasons), where a run of backticks and the next run of as
/// many (CommonMark code spans: `` `kubectl get jobs` ``) marks code, as they meant it; a
/// backtick without its match is plain text.
pub(crate) fn prose(s: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut plain = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('`') {
        let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let after = &rest[start + run..];
        match closing_run(after, run) {
            Some(end) => {
                plain.push_str(&rest[..start]);
                if !plain.is_empty() {
                    spans.push(Span::Text(std::mem::take(&mut plain)));
                }
                let inner = &after[..end];
                // One space each side is padding, unless the content is only spaces.
                let inner = match inner.strip_prefix(' ').and_then(|i| i.strip_suffix(' ')) {
                    Some(trimmed) if !inner.trim().is_empty() => trimmed,
                    _ => inner,
                };
                spans.push(Span::Code(inner.to_owned()));
                rest = &after[end + run..];
            }
            None => {
                plain.push_str(&rest[..start + run]);
                rest = after;
            }
        }
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        spans.push(Span::Text(plain));
    }
    spans
}

/// Where a run of exactly `run` backticks starts in `s`.
fn closing_run(s: &str, run: usize) -> Option<usize> {
    let mut at = 0;
    while let Some(found) = s[at..].find('`') {
        let start = at + found;
        let length = s[start..].len() - s[start..].trim_start_matches('`').len();
        if length == run {
            return Some(start);
        }
        at = start + length;
    }
    None
}

/// How times are shown: the clock alone when everything happened on one UTC day.
struct Clock {
    single_day: Option<String>,
}

impl Clock {
    fn new(pm: &Postmortem) -> Self {
        let mut times: Vec<Timestamp> = vec![pm.impact.started_at];
        times.extend(pm.impact.ended_at);
        for row in &pm.triage {
            times.push(row.first_seen_at);
            times.extend(row.resolved_at);
            match row.initial_state {
                InitialState::Active { since: at, .. }
                | InitialState::OpenedLater { at, .. }
                | InitialState::ResolvedBefore { at } => times.push(at),
                InitialState::Unknown => {}
            }
        }
        times.extend(pm.timeline.iter().map(|row| row.at));
        for resource in &pm.layers {
            for layer in &resource.layers {
                times.push(layer.first_seen_at);
                times.extend(layer.after_change.as_ref().map(|c| c.at));
                times.extend(layer.changes_without_effect.iter().map(|c| c.at));
                for failure in &layer.failed_differently {
                    times.push(failure.change.at);
                    times.push(failure.seen_at);
                }
                times.extend(layer.seen_again_after.iter().map(|c| c.at));
            }
            times.extend(resource.fixed_by.as_ref().map(|c| c.at));
        }
        for episode in pm.flaps.iter().flat_map(|f| &f.episodes) {
            times.push(episode.started_at);
            times.extend(episode.stopped_at);
        }
        times.extend(pm.orphans.iter().map(|o| o.since));
        for row in &pm.maintenance {
            times.extend(row.open.iter().flat_map(|(from, to)| [*from, *to]));
        }
        times.extend(pm.follow_ups.iter().filter_map(|f| f.at));
        let days: std::collections::BTreeSet<String> = times.into_iter().map(text::date).collect();
        Self {
            single_day: (days.len() == 1).then(|| days.into_iter().next().expect("one day")),
        }
    }

    fn at(&self, t: Timestamp) -> Span {
        let shown = match self.single_day {
            Some(_) => text::clock(t),
            None => text::date_clock(t),
        };
        Span::Time(t, shown)
    }

    /// Always with the date.
    fn full(&self, t: Timestamp) -> Span {
        Span::Time(t, format!("{} UTC", text::date_clock(t)))
    }
}

pub(crate) fn document(pm: &Postmortem) -> Document {
    let clock = Clock::new(pm);
    let incident = &pm.incident;
    let state = match incident.state {
        IncidentState::Open => "open",
        IncidentState::Closed => "closed",
        IncidentState::Merged => "merged",
    };
    let kind = match incident.kind {
        IncidentKind::Explicit => "declared",
        IncidentKind::Automatic => "automatic",
    };
    let mut meta = vec![
        code(&incident.id),
        text(" · severity "),
        Span::Severity(incident.severity),
        text(if pm.impact.clusters.len() == 1 {
            " · cluster "
        } else {
            " · clusters "
        }),
    ];
    for (i, cluster) in pm.impact.clusters.iter().enumerate() {
        if i > 0 {
            meta.push(text(", "));
        }
        meta.push(code(cluster));
    }
    meta.push(text(format!(" · {state} · {kind} incident")));
    if let Some(day) = &clock.single_day {
        meta.push(text(format!(" · {day} (UTC)")));
    }

    let sections = vec![
        Section {
            id: "tl-dr",
            title: "TL;DR",
            blocks: vec![Block::Para(prose(&pm.tl_dr))],
        },
        impact(pm, &clock),
        triage(pm, &clock),
        timeline(pm, &clock),
        changes(pm, &clock),
        layers(pm, &clock),
        flapping(pm, &clock),
        maintenance(pm, &clock),
        orphans(pm, &clock),
        notes(pm, &clock),
        follow_ups(pm, &clock),
    ];
    Document {
        title: incident.title.clone(),
        meta,
        sections,
        footer: vec![text(format!(
            "Generated by Tidemark from the event log at position {}. All times are UTC.",
            pm.generated_at_seq
        ))],
    }
}

fn impact(pm: &Postmortem, clock: &Clock) -> Section {
    let i = &pm.impact;
    let mut fields = vec![(
        "Started",
        vec![
            clock.full(i.started_at),
            text(format!(" (log position {})", pm.incident.opened_seq)),
        ],
    )];
    fields.push((
        "Ended",
        match (i.ended_at, pm.incident.closed_seq) {
            (Some(at), Some(seq)) => vec![clock.full(at), text(format!(" (log position {seq})"))],
            _ => vec![text(format!(
                "not yet (still open at log position {})",
                pm.generated_at_seq
            ))],
        },
    ));
    fields.push((
        "Duration",
        vec![text(
            i.duration_secs
                .map_or_else(|| "ongoing".to_owned(), text::duration),
        )],
    ));
    fields.push(("Peak severity", vec![Span::Severity(i.peak_severity)]));
    let active = pm
        .triage
        .iter()
        .filter(|r| r.resolution == Resolution::StillActive)
        .count();
    fields.push((
        "Findings",
        vec![text(format!(
            "{}{}",
            i.findings,
            if active > 0 {
                format!(" ({active} still active)")
            } else {
                String::new()
            }
        ))],
    ));
    let mut clusters = Vec::new();
    for (n, cluster) in i.clusters.iter().enumerate() {
        if n > 0 {
            clusters.push(text(", "));
        }
        clusters.push(code(cluster));
    }
    fields.push(("Clusters", clusters));
    Section {
        id: "impact",
        title: "Impact and duration",
        blocks: vec![Block::Fields(fields)],
    }
}

fn triage(pm: &Postmortem, clock: &Clock) -> Section {
    let multi_cluster = pm.impact.clusters.len() > 1;
    let rows = pm
        .triage
        .iter()
        .map(|row| {
            let key = if multi_cluster {
                vec![code(&row.check_key), text(format!(" ({})", row.cluster))]
            } else {
                vec![code(&row.check_key)]
            };
            let mut finding = prose(&row.initial_title);
            if let Some(detail) = &row.initial_detail {
                finding.push(text(": "));
                finding.push(code(detail));
            }
            let initial = initial_state(row.initial_state, clock);
            let mut resolution = row.resolution.as_str().to_owned();
            if let Some(by) = &row.resolved_by {
                resolution.push_str(&format!(" ({by})"));
            }
            if row.occurrences > 1 {
                resolution.push_str(&format!(", after {} occurrences", row.occurrences));
            }
            let resolved = match row.resolved_at {
                Some(at) => vec![clock.at(at)],
                None => vec![text("—")],
            };
            vec![
                key,
                finding,
                vec![Span::Severity(row.severity)],
                initial,
                prose(&resolution),
                resolved,
            ]
        })
        .collect();
    let blocks = if pm.triage.is_empty() {
        vec![Block::Para(vec![text("The incident has no findings.")])]
    } else {
        vec![
            Block::Para(vec![text(format!(
                "{} made up the incident, in the order they were first seen (the most severe first among those seen together): each as it looked when first seen, its highest severity, its state when the incident opened and how it ended.",
                count(pm.triage.len(), "finding", "findings")
            ))]),
            Block::Table {
                head: vec![
                    "Check key",
                    "Finding",
                    "Severity",
                    "Initial state",
                    "Resolution",
                    "Resolved",
                ],
                rows,
            },
        ]
    };
    Section {
        id: "triage",
        title: "Triage",
        blocks,
    }
}

/// A finding's state when the incident opened, in words: `active since 14:05:00 (critical)`.
fn initial_state(state: InitialState, clock: &Clock) -> Line {
    let severity = |severity: Option<Severity>| match severity {
        Some(severity) => text(format!(" ({severity})")),
        None => text(""),
    };
    match state {
        InitialState::Active { since, severity: s } => {
            vec![text("active since "), clock.at(since), severity(s)]
        }
        InitialState::OpenedLater { at, severity: s } => {
            vec![text("opened later, at "), clock.at(at), severity(s)]
        }
        InitialState::ResolvedBefore { at } => {
            vec![text("resolved "), clock.at(at), text(", before it opened")]
        }
        InitialState::Unknown => vec![text("never seen")],
    }
}

fn timeline(pm: &Postmortem, clock: &Clock) -> Section {
    let late = tidemark_core::describe::late_entries(pm.timeline.iter().map(|row| row.at));
    let rows = pm
        .timeline
        .iter()
        .zip(late)
        .map(|(row, late)| {
            let mut at = vec![clock.at(row.at)];
            if late {
                // Earlier than an entry before it: applied where it landed in the log, at its
                // cluster's clock (ADR 0004).
                at.push(text(" (late)"));
            }
            vec![at, prose(&row.event), vec![text(&row.effect)]]
        })
        .collect();
    Section {
        id: "timeline",
        title: "Timeline (UTC)",
        blocks: vec![Block::Table {
            head: vec!["Time", "Event", "Effect"],
            rows,
        }],
    }
}

fn changes(pm: &Postmortem, clock: &Clock) -> Section {
    let multi_cluster = pm.impact.clusters.len() > 1;
    let blocks = if pm.changes.is_empty() {
        vec![Block::Para(vec![text(
            "No deploy, rollback or config change is linked to the incident or was made in its \
             clusters while it was open.",
        )])]
    } else {
        let rows = pm
            .changes
            .iter()
            .map(|c| {
                let mut change = vec![
                    text(format!("{} ", text::change_kind(c.kind))),
                    code(&c.service),
                    text(" "),
                    code(&c.version),
                ];
                if multi_cluster {
                    change.push(text(format!(" ({})", c.cluster)));
                }
                vec![
                    vec![clock.at(c.at)],
                    change,
                    c.summary.as_deref().map(prose).unwrap_or_default(),
                    vec![text(c.link.as_str())],
                ]
            })
            .collect();
        vec![
            Block::Para(vec![text(
                "Every deploy, rollback and config change linked to the incident, and every one \
                 made in its clusters while it was open. Linked explicitly: the change names the \
                 incident or a check key of one of its findings; by resource: its service is the \
                 workload of one of its findings; only by time: neither.",
            )]),
            Block::Table {
                head: vec!["Time", "Change", "Summary", "Linked"],
                rows,
            },
        ]
    };
    Section {
        id: "changes",
        title: "Changes",
        blocks,
    }
}

fn layers(pm: &Postmortem, clock: &Clock) -> Section {
    let mut blocks = Vec::new();
    if pm.layers.is_empty() {
        blocks.push(Block::Para(vec![text(
            "No resource failed in more than one way, and no change was recorded as having no \
             effect.",
        )]));
    }
    for resource in &pm.layers {
        blocks.push(Block::Heading(resource.resource.clone()));
        let items = resource
            .layers
            .iter()
            .map(|layer| {
                let mut item = vec![code(&layer.signature), text(" — ")];
                match &layer.after_change {
                    None => {
                        item.push(text("first seen "));
                        item.push(clock.at(layer.first_seen_at));
                        item.push(text(" on "));
                        item.push(code(&layer.check_key));
                    }
                    Some(change) => {
                        item.push(text(format!("after {} (", text::change(change))));
                        item.push(clock.at(change.at));
                        item.push(text("), seen "));
                        item.push(clock.at(layer.first_seen_at));
                    }
                }
                // What each later change did while this layer was the current one, in log
                // order: left it unchanged, failed another way (a rollback: its outcome, not a
                // layer), or brought it back.
                let mut later: Vec<(u64, Vec<Span>)> = Vec::new();
                for useless in &layer.changes_without_effect {
                    later.push((
                        useless.seq,
                        vec![
                            text(format!("; unchanged after {} (", text::change(useless))),
                            clock.at(useless.at),
                            text(")"),
                        ],
                    ));
                }
                for failure in &layer.failed_differently {
                    later.push((
                        failure.change.seq,
                        vec![
                            text(format!("; {} (", text::change(&failure.change))),
                            clock.at(failure.change.at),
                            text(") failed differently: "),
                            code(&failure.signature),
                            text(", seen "),
                            clock.at(failure.seen_at),
                        ],
                    ));
                }
                for again in &layer.seen_again_after {
                    later.push((
                        again.seq,
                        vec![
                            text(format!("; back after {} (", text::change(again))),
                            clock.at(again.at),
                            text(")"),
                        ],
                    ));
                }
                later.sort_by_key(|(seq, _)| *seq);
                item.extend(later.into_iter().flat_map(|(_, spans)| spans));
                item
            })
            .collect();
        blocks.push(Block::List {
            ordered: true,
            items,
        });
        blocks.push(Block::Para(match &resource.fixed_by {
            Some(change) => vec![
                text(format!("Fixed by {} at ", text::change(change))),
                clock.at(change.at),
                text("."),
            ],
            None => vec![text("No change is known to have fixed it.")],
        }));
    }
    Section {
        id: "layers",
        title: "Failure layers",
        blocks,
    }
}

fn flapping(pm: &Postmortem, clock: &Clock) -> Section {
    let mut rows = Vec::new();
    for flap in &pm.flaps {
        for episode in &flap.episodes {
            rows.push(vec![
                vec![code(&flap.check_key)],
                vec![text(match episode.detector {
                    tidemark_core::flaps::FlapDetector::Count => "auto-resolution count",
                    tidemark_core::flaps::FlapDetector::StateChange => "state change",
                })],
                vec![
                    clock.at(episode.started_at),
                    text(format!(": {}", episode.started_because)),
                ],
                match (episode.stopped_at, &episode.stopped_because) {
                    (Some(at), Some(why)) => vec![clock.at(at), text(format!(": {why}"))],
                    (Some(at), None) => vec![clock.at(at)],
                    _ => vec![text("still flapping")],
                },
            ]);
        }
    }
    let blocks = if rows.is_empty() {
        vec![Block::Para(vec![text(
            "No finding of the incident flapped during it.",
        )])]
    } else {
        vec![Block::Table {
            head: vec!["Check key", "Detector", "Started", "Stopped"],
            rows,
        }]
    };
    Section {
        id: "flapping",
        title: "Flapping during the incident",
        blocks,
    }
}

fn maintenance(pm: &Postmortem, clock: &Clock) -> Section {
    let multi_cluster = pm.impact.clusters.len() > 1;
    let blocks = if pm.maintenance.is_empty() {
        vec![Block::Para(vec![text(
            "No maintenance window of the incident's clusters was open while it was.",
        )])]
    } else {
        let rows = pm
            .maintenance
            .iter()
            .map(|w| {
                let mut name = vec![code(&w.window)];
                if multi_cluster {
                    name.push(text(format!(" ({})", w.cluster)));
                }
                let mut open: Line = Vec::new();
                for (i, (from, to)) in w.open.iter().enumerate() {
                    if i > 0 {
                        open.push(text(", "));
                    }
                    open.push(clock.at(*from));
                    open.push(text("–"));
                    open.push(clock.at(*to));
                }
                if w.more_intervals > 0 {
                    open.push(text(format!(" and {} more", w.more_intervals)));
                }
                let mut why = prose(&format!("{}: {}", w.by, w.reason));
                if let Some(ended) = &w.ended {
                    why.push(text(format!(" ({ended})")));
                }
                let covered = if w.covered_findings.is_empty() {
                    vec![text("none of its findings")]
                } else {
                    let mut line = Vec::new();
                    for (i, key) in w.covered_findings.iter().enumerate() {
                        if i > 0 {
                            line.push(text(", "));
                        }
                        line.push(code(key));
                    }
                    line
                };
                vec![name, vec![text(&w.covers)], open, covered, why]
            })
            .collect();
        vec![
            Block::Para(vec![text(
                "Every maintenance window of the incident's clusters that was open while it was. \
                 A finding a window covers is recorded as always, but by default opens no \
                 automatic incident until the window ends and does not count towards flapping.",
            )]),
            Block::Table {
                head: vec![
                    "Window",
                    "Covers",
                    "Open",
                    "Findings covered",
                    "Scheduled by",
                ],
                rows,
            },
        ]
    };
    Section {
        id: "maintenance",
        title: "Maintenance windows",
        blocks,
    }
}

fn orphan_what(orphan: &OrphanView) -> Line {
    if let Some(r) = &orphan.resource {
        let name = match &r.namespace {
            Some(ns) => format!("{ns}/{}", r.name),
            None => r.name.clone(),
        };
        return vec![text(format!("{} ", r.kind)), code(name)];
    }
    if let Some(t) = &orphan.tracking {
        return vec![text(format!("tracking row of {} ", t.kind)), code(&t.key)];
    }
    match (&orphan.span, &orphan.trace_id) {
        (Some(span), Some(trace)) => vec![
            text(format!("span {} of {} in trace ", span.name, span.service)),
            code(trace),
        ],
        (None, Some(trace)) => vec![text("trace "), code(trace)],
        _ => vec![text("?")],
    }
}

fn orphans(pm: &Postmortem, clock: &Clock) -> Section {
    let multi_cluster = pm.impact.clusters.len() > 1;
    let blocks = if pm.orphans.is_empty() {
        vec![Block::Para(vec![text(
            "No orphan appeared in the incident's clusters during it.",
        )])]
    } else {
        let rows = pm
            .orphans
            .iter()
            .map(|o| {
                let mut what = orphan_what(o);
                if multi_cluster {
                    what.push(text(format!(" ({})", o.cluster)));
                }
                vec![
                    vec![text(o.kind.as_str())],
                    what,
                    vec![clock.at(o.since)],
                    vec![text(&o.reason)],
                ]
            })
            .collect();
        vec![Block::Table {
            head: vec!["Kind", "What", "Since", "Reason"],
            rows,
        }]
    };
    Section {
        id: "orphans",
        title: "Orphans seen during the incident",
        blocks,
    }
}

fn note_item(note: &NoteRow, clock: &Clock) -> Line {
    let mut item = vec![
        clock.at(note.at),
        text(" "),
        Span::Strong(note.author.clone()),
        text(": "),
    ];
    item.extend(prose(&note.text));
    for (i, link) in note.links.iter().enumerate() {
        item.push(text(if i == 0 { " — " } else { ", " }));
        item.push(Span::Link(link.clone()));
    }
    item
}

fn notes(pm: &Postmortem, clock: &Clock) -> Section {
    let mut blocks = Vec::new();
    let groups = [
        ("Hypotheses", &pm.notes.hypotheses),
        ("Actions", &pm.notes.actions),
        ("Decisions", &pm.notes.decisions),
        ("Observations", &pm.notes.observations),
        ("Resolution", &pm.notes.resolution),
    ];
    for (title, group) in groups {
        if group.is_empty() {
            continue;
        }
        blocks.push(Block::Heading(title.to_owned()));
        blocks.push(Block::List {
            ordered: false,
            items: group.iter().map(|n| note_item(n, clock)).collect(),
        });
    }
    if blocks.is_empty() {
        blocks.push(Block::Para(vec![text("No notes recorded.")]));
    }
    Section {
        id: "notes",
        title: "Notes",
        blocks,
    }
}

fn follow_ups(pm: &Postmortem, clock: &Clock) -> Section {
    let items: Vec<Line> = pm
        .follow_ups
        .iter()
        .map(|f| {
            let mut item = match f.source {
                FollowUpSource::Action => vec![Span::Strong("action".to_owned())],
                FollowUpSource::Decision => vec![Span::Strong("decision".to_owned())],
                FollowUpSource::Flapping | FollowUpSource::UnstableKey => {
                    vec![Span::Strong("generated".to_owned())]
                }
            };
            if let Some(author) = &f.author {
                item.push(text(format!(" by {author}")));
            }
            if let Some(at) = f.at {
                item.push(text(" at "));
                item.push(clock.at(at));
            }
            item.push(text(": "));
            item.extend(prose(&f.text));
            item
        })
        .collect();
    let blocks = if items.is_empty() {
        vec![Block::Para(vec![text("None recorded.")])]
    } else {
        vec![Block::List {
            ordered: false,
            items,
        }]
    };
    Section {
        id: "follow-ups",
        title: "Follow-ups",
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(spans: &[Span]) -> Vec<String> {
        spans
            .iter()
            .map(|span| match span {
                Span::Text(s) => format!("text:{s}"),
                Span::Code(s) => format!("code:{s}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn prose_makes_code_of_matching_backtick_runs_only() {
        assert_eq!(
            shown(&prose("ran `alembic upgrade head` in the pod")),
            ["text:ran ", "code:alembic upgrade head", "text: in the pod"]
        );
        // A run closes only with a run as long; padding spaces go, a lone backtick stays text.
        assert_eq!(
            shown(&prose("``a ` b`` and ` alone")),
            ["code:a ` b", "text: and ` alone"]
        );
        assert_eq!(shown(&prose("`` `x` ``")), ["code:`x`"]);
        assert_eq!(shown(&prose("no code")), ["text:no code"]);
        assert_eq!(shown(&prose("```")), ["text:```"]);
        assert_eq!(shown(&prose("`x``")), ["text:`x``"]);
        assert!(prose("").is_empty());
    }
}
