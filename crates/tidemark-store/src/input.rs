//! What a batch offered to the store is made of, and what happened to each item: the vocabulary
//! of [`crate::Store::append`], shared by the write path and the quarantine.

use serde::Serialize;
use tidemark_core::{Event, Timestamp};

use crate::codec::EncodedEvent;

/// One item offered to [`crate::Store::append`].
///
/// Nearly every item is an event, so the event is held inline: boxing it would cost an
/// allocation per event on the write path to shrink the rare rejected item.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// A decoded, valid event.
    Event(Event),
    /// Input that could not be decoded or validated: kept in quarantine.
    Rejected {
        /// The bytes as received.
        raw: Vec<u8>,
        /// Why it was refused.
        reason: String,
        /// Where it came from (file and line, request item, stream sequence).
        origin: String,
    },
}

/// A batch whose events' log records are encoded already ([`EncodedEvent`]), for
/// [`crate::Store::append_prepared`]: made on the thread that decoded the batch, so the thread
/// holding the writer only seals each record with its position (issue 20). The records carry
/// `recorded_at`, the store's clock when the batch was prepared.
#[derive(Clone, Debug)]
pub struct PreparedBatch {
    /// Each item: its stream position (a replica's), the input, its event's record.
    pub(crate) items: Vec<(Option<u64>, Input, Option<EncodedEvent>)>,
    pub(crate) recorded_at: Timestamp,
}

impl PreparedBatch {
    /// A batch of `inputs`, each taking the next position (as [`crate::Store::append`]).
    pub fn new(inputs: Vec<Input>, recorded_at: Timestamp) -> Self {
        Self::of(inputs.into_iter().map(|input| (None, input)), recorded_at)
    }

    /// A batch whose positions are given (as [`crate::Store::append_positioned`]).
    pub fn positioned(items: Vec<(u64, Input)>, recorded_at: Timestamp) -> Self {
        Self::of(
            items
                .into_iter()
                .map(|(position, input)| (Some(position), input)),
            recorded_at,
        )
    }

    fn of(items: impl Iterator<Item = (Option<u64>, Input)>, recorded_at: Timestamp) -> Self {
        let items = items
            .map(|(position, input)| {
                let record = match &input {
                    Input::Event(event) => Some(EncodedEvent::new(event, recorded_at)),
                    Input::Rejected { .. } => None,
                };
                (position, input, record)
            })
            .collect();
        Self { items, recorded_at }
    }

    /// Appends `other`'s items after this batch's (a group commit of several requests): each
    /// event keeps the record it was prepared with; refused inputs are kept in quarantine at
    /// this batch's `recorded_at`, the earliest of the group's.
    pub fn extend(&mut self, other: PreparedBatch) {
        self.items.extend(other.items);
    }

    /// The batch's inputs, in order.
    pub fn inputs(&self) -> impl ExactSizeIterator<Item = &Input> {
        self.items.iter().map(|(_, input, _)| input)
    }

    /// Each item's given position, in order (`None` for a batch made by [`Self::new`]).
    pub fn positions(&self) -> impl ExactSizeIterator<Item = Option<u64>> + '_ {
        self.items.iter().map(|(position, _, _)| *position)
    }

    /// How many items the batch holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What happened to one [`Input`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Stored at this log position.
    Accepted {
        /// Its position.
        seq: u64,
    },
    /// Its id was already stored, at this position; nothing was written.
    Duplicate {
        /// The position of the event first stored with this id.
        seq: u64,
    },
    /// Refused. Its raw bytes are in quarantine: in a record of its own, or counted on the
    /// record of the same bytes refused for the same reason before; or, when the quarantine was
    /// at its bound, not kept (`raw_kept: false`, no id: the drop is counted).
    Rejected {
        /// Why.
        reason: String,
        /// The quarantine record holding the raw bytes (`None` when they were not kept).
        #[serde(skip_serializing_if = "Option::is_none")]
        quarantine_id: Option<u64>,
        /// Whether the raw bytes are kept in quarantine.
        raw_kept: bool,
    },
}
