//! `tidemark replay --step`: walk a log event by event and say what each event changed in every
//! projection (findings, flaps, stuck, orphans, incidents), as the fold says it
//! (`Projections::apply_with_changes`, ADR 0008: what the store records and the live stream
//! sends), at the cost of what each event changes. `--step --verify` and `replay --check` also
//! compare it with the whole-state comparison (`Digest::of` before and after each event), the
//! definition of a change. The debugging view for "the bell is doing the thing again".

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

/// Where the fold's changes and the whole-state comparison disagree.
#[derive(Debug)]
pub struct Disagreement {
    /// The log position of the event.
    pub seq: u64,
    /// What the fold said (`apply_with_changes`).
    pub fold: Vec<Change>,
    /// What the whole-state comparison says.
    pub whole: Vec<Change>,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines = |changes: &[Change]| -> String {
            if changes.is_empty() {
                return "\n    (nothing)".to_owned();
            }
            changes.iter().map(|c| format!("\n    {c}")).collect()
        };
        write!(
            f,
            "at log position {} the fold says:{}\n  comparing the whole state before and after says:{}",
            self.seq,
            lines(&self.fold),
            lines(&self.whole)
        )
    }
}

/// Walks `events` (in log order) and returns the steps in `from..=until`, their changes as the
/// fold says them. With `verify`, each step's changes are also compared with the whole state
/// before and after it, and the first difference is the answer instead.
pub fn walk(
    events: &[(u64, Event)],
    checkpoints: &[Checkpoint],
    from: u64,
    until: Option<u64>,
    verify: bool,
) -> Result<Vec<Step>, Disagreement> {
    let mut projections = Projections::new();
    let mut before: Option<Digest> = None;
    let mut steps = Vec::new();
    for (seq, event) in events {
        if until.is_some_and(|u| *seq > u) {
            break;
        }
        if *seq < from {
            // Before `from` only the fold runs.
            projections.apply(*seq, event);
            continue;
        }
        if verify && before.is_none() {
            before = Some(Digest::of(&projections));
        }
        let mut changes = Vec::new();
        projections.apply_with_changes(*seq, event, &mut changes);
        if let Some(previous) = before.take() {
            let after = Digest::of(&projections);
            let whole = previous.changes(&after);
            if whole != changes {
                return Err(Disagreement {
                    seq: *seq,
                    fold: changes,
                    whole,
                });
            }
            before = Some(after);
        }
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
            changes,
        });
    }
    Ok(steps)
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
