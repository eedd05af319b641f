//! What a batch offered to the store is made of, and what happened to each item: the vocabulary
//! of [`crate::Store::append`], shared by the write path and the quarantine.

use serde::Serialize;
use tidemark_core::Event;

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
