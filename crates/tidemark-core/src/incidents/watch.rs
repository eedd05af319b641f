//! What an event changed in the incidents, as `tidemark replay --step` says it (ADR 0008, plan
//! step 3, the part `incident`). An incident changes only through its own record, and every
//! change of the record goes through the slots that hold incidents in memory (`slots.rs`), which
//! note each incident's value before the event at its first change in the event. At the end of
//! the event, before anything is written out (so every changed incident is still in memory),
//! the noted incidents' values after are read, and both are compared by [`Digest::changes`]
//! itself, on digests holding only them.
//!
//! The values compared are those of the whole digest (`Digest::of`) reduced to what
//! `Digest::changes` reads of them: state; the check keys linked in the event (findings are only
//! ever appended: those after the count before, not among those before); the number of layers
//! shown; whether the timeline gained an entry (a timeline gains one exactly when an event
//! touches it, and its last entry is then at the event's position); the title of a new
//! incident only (no other line shows it).

use std::collections::BTreeSet;

use crate::findings::FindingsProjection;
use crate::findings::changes::{Change, Digest};

use super::{Incident, IncidentProjection, IncidentState};

/// What `Digest::changes` compares of an incident that existed before the event, as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IncidentBefore {
    state: IncidentState,
    /// How many findings it held.
    findings: usize,
    /// How many failure layers users were shown.
    shown_layers: usize,
}

impl IncidentBefore {
    /// The value of `incident` as it is now.
    pub(super) fn of(incident: &Incident) -> Self {
        Self {
            state: incident.state(),
            findings: incident.findings.len(),
            shown_layers: shown_layers(incident),
        }
    }
}

/// The event being applied, watched: the number the first incident it creates gets, and what
/// it changed once said.
#[derive(Clone, Debug, Default)]
pub(super) struct WatchedEvent {
    first_new: usize,
    said: Vec<Change>,
}

impl IncidentProjection {
    /// The next event applied is watched: [`Self::append_changes_of_event`] then says what it
    /// changed.
    pub(crate) fn watch_next_event(&mut self) {
        self.incidents.watch();
        self.watched = Some(WatchedEvent {
            first_new: self.next_number,
            said: Vec::new(),
        });
    }

    /// Appends to `out` what the event applied since [`Self::watch_next_event`] changed in the
    /// part `incident`, in `--step` text and order; nothing is watched from now on.
    pub(crate) fn append_changes_of_event(&mut self, out: &mut Vec<Change>) {
        self.incidents.take_watched();
        if let Some(watched) = self.watched.take() {
            out.extend(watched.said);
        }
    }

    /// At the end of the watched event at `seq`, before anything is written out: says what it
    /// changed in the incidents it noted.
    pub(super) fn say_changes_of_event(&mut self, seq: u64, findings: &FindingsProjection) {
        let Some(mut watched) = self.watched.take() else {
            return;
        };
        let mut before = Digest::default();
        let mut after = Digest::default();
        for (number, was) in self.incidents.take_watched() {
            let Some(incident) = self.incidents.get(number) else {
                continue;
            };
            let is_new = number >= watched.first_new;
            let old_findings = if is_new { 0 } else { was.findings };
            let (old, new) = incident
                .findings
                .split_at(old_findings.min(incident.findings.len()));
            let linked: BTreeSet<String> = new
                .iter()
                .filter(|f| !old.iter().any(|o| o.check_key == f.check_key))
                .map(|f| f.check_key.clone())
                .collect();
            let gained_entry = incident.timeline.last().is_some_and(|e| e.seq == seq);
            let title = if is_new {
                incident.title(|first| {
                    findings
                        .finding_facts(&first.cluster, &first.check_key)
                        .map(|facts| facts.title.to_owned())
                })
            } else {
                String::new()
            };
            after.incidents.insert(
                incident.id.clone(),
                (
                    state_name(incident.state()).to_owned(),
                    linked,
                    shown_layers(incident),
                    u64::from(gained_entry),
                    title,
                ),
            );
            if !is_new {
                before.incidents.insert(
                    incident.id.clone(),
                    (
                        state_name(was.state).to_owned(),
                        BTreeSet::new(),
                        was.shown_layers,
                        0,
                        String::new(),
                    ),
                );
            }
        }
        watched.said = before.changes(&after);
        self.watched = Some(watched);
    }
}

/// How many failure layers users are shown of `incident` (the digest's count).
fn shown_layers(incident: &Incident) -> usize {
    incident
        .layers
        .values()
        .filter(|l| l.is_shown())
        .map(|l| l.layers.len())
        .sum()
}

/// An incident state as the digest names it.
fn state_name(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Open => "open",
        IncidentState::Closed => "closed",
        IncidentState::Merged => "merged",
    }
}
