//! Folding a log: positions, dedupe by event id, and every projection, resumable from a snapshot.
//!
//! The store has its own id index and positions; this is the same logic for logs read from
//! files (`tidemark replay`) and for the property tests. An event whose `id` was already folded
//! changes nothing and takes no position, so positions match what the store would assign.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventId};
use crate::findings::FindingsProjection;
use crate::projections::{Projections, ProjectionsSnapshot};

/// What happened to an event offered to the fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied at this log position.
    At(u64),
    /// Its id was already folded: nothing changed.
    Duplicate,
}

/// The state of folding one log.
#[derive(Clone, Debug, Default)]
pub struct LogFold {
    projections: Projections,
    seen_ids: FxHashSet<EventId>,
    last_seq: u64,
}

impl LogFold {
    /// A fold that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The position the next new event will take.
    pub fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// The position of the last event applied (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Whether an event with this id was already folded.
    pub fn has_seen(&self, id: &EventId) -> bool {
        self.seen_ids.contains(id)
    }

    /// Applies `event` unless its id was already folded.
    pub fn apply(&mut self, event: &Event) -> Applied {
        if self.seen_ids.contains(&event.id) {
            return Applied::Duplicate;
        }
        self.seen_ids.insert(event.id.clone());
        self.last_seq += 1;
        self.projections.apply(self.last_seq, event);
        Applied::At(self.last_seq)
    }

    /// The findings projection.
    pub fn findings(&self) -> &FindingsProjection {
        self.projections.findings()
    }

    /// Every projection.
    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    /// A serializable copy of the whole state, in a deterministic order.
    pub fn snapshot(&self) -> FoldSnapshot {
        let mut seen_ids: Vec<EventId> = self.seen_ids.iter().cloned().collect();
        seen_ids.sort_unstable();
        FoldSnapshot {
            last_seq: self.last_seq,
            seen_ids,
            projections: self.projections.snapshot(),
        }
    }

    /// Resumes from a snapshot.
    pub fn restore(snapshot: &FoldSnapshot) -> Self {
        Self {
            projections: Projections::restore(&snapshot.projections),
            seen_ids: snapshot.seen_ids.iter().cloned().collect(),
            last_seq: snapshot.last_seq,
        }
    }
}

/// Serializable state of a [`LogFold`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldSnapshot {
    /// Position of the last event applied.
    pub last_seq: u64,
    /// Every id folded, sorted.
    pub seen_ids: Vec<EventId>,
    /// Every projection.
    pub projections: ProjectionsSnapshot,
}
