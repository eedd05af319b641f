//! `tidemark replay --step`: walk a log event by event and say what each event changed in every
//! projection (findings, flaps, stuck, orphans, incidents), by comparing the views before and
//! after it. The debugging view for "the bell is doing the thing again".

use serde::Serialize;
use tidemark_core::changes::{Change, Digest};
use tidemark_core::describe::one_line;
use tidemark_core::{Event, Projections};

use crate::corpus::Checkpoint;

/// One step of the walk.
#[derive(Debug, Serialize)]
pub struct Step {
    pub seq: u64,
    pub id: String,
    pub time: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub source: String,
    pub cluster: String,
    pub summary: String,
    /// The checkpoint that ends here, if the log is a corpus case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    pub changes: Vec<Change>,
}

/// Walks `events` (in log order) and returns the steps in `from..=until`.
pub fn walk(
    events: &[(u64, Event)],
    checkpoints: &[Checkpoint],
    from: u64,
    until: Option<u64>,
) -> Vec<Step> {
    let mut projections = Projections::new();
    let mut before: Option<Digest> = None;
    let mut steps = Vec::new();
    for (seq, event) in events {
        if until.is_some_and(|u| *seq > u) {
            break;
        }
        // Views are compared only for the steps shown; before `from` only the fold runs.
        if *seq >= from && before.is_none() {
            before = Some(Digest::of(&projections));
        }
        projections.apply(*seq, event);
        let Some(previous) = before.take() else {
            continue;
        };
        let after = Digest::of(&projections);
        steps.push(Step {
            seq: *seq,
            id: event.id.0.clone(),
            time: event.time.to_string(),
            event_type: event.event_type().to_string(),
            source: event.source.clone(),
            cluster: event.cluster.clone(),
            summary: one_line(event),
            checkpoint: checkpoints
                .iter()
                .find(|c| c.seq == *seq)
                .map(|c| match &c.note {
                    Some(note) => format!("{}: {note}", c.name),
                    None => c.name.clone(),
                }),
            changes: previous.changes(&after),
        });
        before = Some(after);
    }
    steps
}

/// The steps as text for people.
pub fn render_text(steps: &[Step]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for step in steps {
        let _ = writeln!(
            out,
            "#{} {} {} [{}] {}",
            step.seq, step.time, step.event_type, step.source, step.summary
        );
        if step.changes.is_empty() {
            let _ = writeln!(out, "    (no projection changed)");
        }
        for c in &step.changes {
            let _ = writeln!(out, "    {c}");
        }
        if let Some(checkpoint) = &step.checkpoint {
            let _ = writeln!(out, "  ── checkpoint {checkpoint}");
        }
    }
    out
}
