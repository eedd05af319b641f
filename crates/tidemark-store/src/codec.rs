//! Stored records: postcard inside an explicit version envelope (first byte = format version).
//!
//! See `docs/adr/0002-stored-event-encoding.md` for why postcard, and not bincode or JSON.

use serde::{Deserialize, Serialize};
use tidemark_core::findings::FindingsSnapshot;
use tidemark_core::{Event, Timestamp};

/// Format version of log records.
pub const EVENT_FORMAT: u8 = 1;
/// Format version of projection snapshots.
pub const SNAPSHOT_FORMAT: u8 = 1;
/// Format version of quarantine records.
pub const QUARANTINE_FORMAT: u8 = 1;

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The record is empty.
    #[error("empty record")]
    Empty,
    /// Written by a newer (or unknown) format.
    #[error(
        "record format {found} is not one this build reads (it reads {expected}): upgrade tidemark"
    )]
    UnknownFormat {
        /// Version byte found.
        found: u8,
        /// Version this build reads.
        expected: u8,
    },
    /// The bytes do not decode.
    #[error("undecodable record: {0}")]
    Postcard(String),
}

#[derive(Serialize)]
struct StoredEventRef<'a> {
    recorded_at: Timestamp,
    event: &'a Event,
}

/// An event as the log holds it: the event and when the store recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// When the store wrote it (the store's clock, never used by projections).
    pub recorded_at: Timestamp,
    /// The event.
    pub event: Event,
}

fn split_version(bytes: &[u8], expected: u8) -> Result<&[u8], CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != expected {
        return Err(CodecError::UnknownFormat {
            found: version,
            expected,
        });
    }
    Ok(body)
}

fn with_version<T: Serialize>(version: u8, value: &T, out: &mut Vec<u8>) {
    out.clear();
    out.push(version);
    let buffer = std::mem::take(out);
    *out = postcard::to_extend(value, buffer).expect("serializing to a Vec cannot fail");
}

/// Encodes a log record into `out` (cleared first).
pub fn encode_event(event: &Event, recorded_at: Timestamp, out: &mut Vec<u8>) {
    with_version(EVENT_FORMAT, &StoredEventRef { recorded_at, event }, out);
}

/// Decodes a log record.
pub fn decode_event(bytes: &[u8]) -> Result<StoredEvent, CodecError> {
    let body = split_version(bytes, EVENT_FORMAT)?;
    postcard::from_bytes(body).map_err(|e| CodecError::Postcard(e.to_string()))
}

/// A projection snapshot: the state after applying the log up to `seq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Last log position applied.
    pub seq: u64,
    /// Latest event time among positions 1..=seq (for time travel by time).
    pub max_time: Option<Timestamp>,
    /// The findings projection.
    pub findings: FindingsSnapshot,
}

/// Encodes a snapshot.
pub fn encode_snapshot(snapshot: &SnapshotRecord) -> Vec<u8> {
    let mut out = Vec::new();
    with_version(SNAPSHOT_FORMAT, snapshot, &mut out);
    out
}

/// Decodes a snapshot.
pub fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotRecord, CodecError> {
    let body = split_version(bytes, SNAPSHOT_FORMAT)?;
    postcard::from_bytes(body).map_err(|e| CodecError::Postcard(e.to_string()))
}

/// Input that could not be decoded or validated, kept with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// When the store recorded it.
    pub recorded_at: Timestamp,
    /// Where it came from: a file and line, an HTTP request item, a stream sequence.
    pub origin: String,
    /// Why it was refused.
    pub reason: String,
    /// The bytes exactly as received.
    pub raw: Vec<u8>,
}

/// Encodes a quarantine record.
pub fn encode_quarantine(record: &QuarantineRecord) -> Vec<u8> {
    let mut out = Vec::new();
    with_version(QUARANTINE_FORMAT, record, &mut out);
    out
}

/// Decodes a quarantine record.
pub fn decode_quarantine(bytes: &[u8]) -> Result<QuarantineRecord, CodecError> {
    let body = split_version(bytes, QUARANTINE_FORMAT)?;
    postcard::from_bytes(body).map_err(|e| CodecError::Postcard(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_round_trips_through_postcard() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/fixtures/v1");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let event = tidemark_core::decode_event(&text).unwrap();
            let mut bytes = Vec::new();
            encode_event(&event, Timestamp::from_unix_secs(7), &mut bytes);
            assert_eq!(bytes[0], EVENT_FORMAT);
            let stored = decode_event(&bytes).unwrap();
            assert_eq!(stored.event, event);
            assert_eq!(stored.recorded_at, Timestamp::from_unix_secs(7));
            count += 1;
        }
        assert!(count >= tidemark_core::EventType::ALL.len());
    }

    #[test]
    fn unknown_versions_and_garbage_are_named() {
        assert_eq!(decode_event(&[]), Err(CodecError::Empty));
        assert_eq!(
            decode_event(&[9, 1, 2]),
            Err(CodecError::UnknownFormat {
                found: 9,
                expected: 1
            })
        );
        assert!(matches!(
            decode_event(&[1, 0xff, 0xff]),
            Err(CodecError::Postcard(_))
        ));
    }
}
