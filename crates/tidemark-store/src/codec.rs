//! Stored records: postcard inside an explicit version envelope (first byte = format version).
//!
//! See `docs/adr/0002-stored-event-encoding.md` for why postcard, and not bincode or JSON.

use serde::{Deserialize, Serialize};
use tidemark_core::{Event, Projections, ProjectionsSnapshot, Timestamp};

/// Format version of log records. Format 1 (before the settings of the projections issue) is
/// still read: see [`legacy`].
pub const EVENT_FORMAT: u8 = 2;
/// Format version of projection snapshots. Older snapshots are not read: the store folds the
/// log again instead (a snapshot is a cache of the log, never the truth).
/// Format 3: failure layers record rollback outcomes and layers seen again (incidents).
pub const SNAPSHOT_FORMAT: u8 = 3;
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

/// Decodes a log record (format 2, or the legacy format 1).
pub fn decode_event(bytes: &[u8]) -> Result<StoredEvent, CodecError> {
    if bytes.first() == Some(&legacy::EVENT_FORMAT_1) {
        return legacy::decode_event_v1(&bytes[1..]);
    }
    let body = split_version(bytes, EVENT_FORMAT)?;
    postcard::from_bytes(body).map_err(|e| CodecError::Postcard(e.to_string()))
}

/// Whether a snapshot record was written by an older format this build no longer reads (the
/// store then ignores it and folds the log instead).
pub fn is_outdated_snapshot(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|&v| v < SNAPSHOT_FORMAT)
}

pub mod legacy {
    //! Stored-event format 1: the same positional layout, except that `settings.changed`
    //! carried only its first five fields. Read forever; never written.

    use serde::Deserialize;
    use tidemark_core::event::{
        Alert, ChangeKind, CycleCompleted, FindingResolved, IncidentChange, InventoryObserved,
        NoteKind, SettingsChanged, SpanRecorded, Tracking,
    };
    use tidemark_core::{Event, EventId, Payload, Severity, Timestamp};

    use super::{CodecError, StoredEvent};

    /// The version byte of format 1.
    pub const EVENT_FORMAT_1: u8 = 1;

    #[derive(Deserialize)]
    struct SettingsV1 {
        clean_cycles_to_resolve: Option<u32>,
        enabled_categories: Option<Option<Vec<String>>>,
        flap_window_secs: Option<u64>,
        flap_threshold: Option<u32>,
        notification_min_severity: Option<Severity>,
    }

    #[derive(Deserialize)]
    struct ChangeV1 {
        service: String,
        version: String,
        kind: ChangeKind,
        link: Option<String>,
        summary: Option<String>,
    }

    #[derive(Deserialize)]
    struct NoteV1 {
        incident: Option<String>,
        author: String,
        kind: NoteKind,
        text: String,
        links: Vec<String>,
    }

    /// Format 1's payload: variant order as in [`Payload`].
    #[derive(Deserialize)]
    enum PayloadV1 {
        CycleCompleted(CycleCompleted),
        FindingResolved(FindingResolved),
        SettingsChanged(SettingsV1),
        InventoryObserved(InventoryObserved),
        TrackingUpserted(Tracking),
        TrackingDeleted(Tracking),
        SpanRecorded(SpanRecorded),
        AlertFired(Alert),
        AlertResolved(Alert),
        ChangeDeployed(ChangeV1),
        NoteAdded(NoteV1),
        IncidentOpened(IncidentChange),
        IncidentUpdated(IncidentChange),
        IncidentClosed(IncidentChange),
    }

    #[derive(Deserialize)]
    struct EventV1 {
        id: EventId,
        schema: u32,
        time: Timestamp,
        source: String,
        cluster: String,
        payload: PayloadV1,
    }

    #[derive(Deserialize)]
    struct StoredV1 {
        recorded_at: Timestamp,
        event: EventV1,
    }

    fn upcast(payload: PayloadV1) -> Payload {
        match payload {
            PayloadV1::CycleCompleted(p) => Payload::CycleCompleted(p),
            PayloadV1::FindingResolved(p) => Payload::FindingResolved(p),
            PayloadV1::SettingsChanged(p) => Payload::SettingsChanged(SettingsChanged {
                clean_cycles_to_resolve: p.clean_cycles_to_resolve,
                enabled_categories: p.enabled_categories,
                flap_window_secs: p.flap_window_secs,
                flap_threshold: p.flap_threshold,
                notification_min_severity: p.notification_min_severity,
                ..SettingsChanged::default()
            }),
            PayloadV1::InventoryObserved(p) => Payload::InventoryObserved(p),
            PayloadV1::TrackingUpserted(p) => Payload::TrackingUpserted(p),
            PayloadV1::TrackingDeleted(p) => Payload::TrackingDeleted(p),
            PayloadV1::SpanRecorded(p) => Payload::SpanRecorded(p),
            PayloadV1::AlertFired(p) => Payload::AlertFired(p),
            PayloadV1::AlertResolved(p) => Payload::AlertResolved(p),
            PayloadV1::ChangeDeployed(p) => {
                Payload::ChangeDeployed(tidemark_core::event::ChangeDeployed {
                    service: p.service,
                    version: p.version,
                    kind: p.kind,
                    link: p.link,
                    summary: p.summary,
                    incident: None,
                    check_keys: Vec::new(),
                })
            }
            PayloadV1::NoteAdded(p) => Payload::NoteAdded(tidemark_core::event::NoteAdded {
                incident: p.incident,
                author: p.author,
                kind: p.kind,
                text: p.text,
                links: p.links,
                check_keys: Vec::new(),
            }),
            PayloadV1::IncidentOpened(p) => Payload::IncidentOpened(p),
            PayloadV1::IncidentUpdated(p) => Payload::IncidentUpdated(p),
            PayloadV1::IncidentClosed(p) => Payload::IncidentClosed(p),
        }
    }

    /// Decodes the body (after the version byte) of a format-1 record.
    pub fn decode_event_v1(body: &[u8]) -> Result<StoredEvent, CodecError> {
        let stored: StoredV1 =
            postcard::from_bytes(body).map_err(|e| CodecError::Postcard(e.to_string()))?;
        let e = stored.event;
        Ok(StoredEvent {
            recorded_at: stored.recorded_at,
            event: Event {
                id: e.id,
                schema: e.schema,
                time: e.time,
                source: e.source,
                cluster: e.cluster,
                payload: upcast(e.payload),
            },
        })
    }
}

/// A projection snapshot: the state after applying the log up to `seq`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Last log position applied.
    pub seq: u64,
    /// Latest event time among positions 1..=seq (for time travel by time).
    pub max_time: Option<Timestamp>,
    /// Every projection.
    pub projections: ProjectionsSnapshot,
}

/// Encodes a snapshot.
pub fn encode_snapshot(snapshot: &SnapshotRecord) -> Vec<u8> {
    let mut out = Vec::new();
    with_version(SNAPSHOT_FORMAT, snapshot, &mut out);
    out
}

/// Encodes the snapshot of live projections without copying them first: the same bytes as
/// [`encode_snapshot`] of a record holding `projections.snapshot()`.
pub fn encode_snapshot_of(
    seq: u64,
    max_time: Option<Timestamp>,
    projections: &Projections,
) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename = "SnapshotRecord")]
    struct Shape<P: Serialize> {
        seq: u64,
        max_time: Option<Timestamp>,
        projections: P,
    }
    let mut out = Vec::new();
    with_version(
        SNAPSHOT_FORMAT,
        &Shape {
            seq,
            max_time,
            projections: projections.snapshot_serializer(),
        },
        &mut out,
    );
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

    /// The borrowing snapshot encoder writes exactly the bytes of the owned snapshot, at every
    /// position of every case of the replay corpus (flaps, drift, churn, unstable keys, orphans,
    /// incidents), and they decode to the same snapshot.
    #[test]
    fn borrowed_snapshot_encoding_equals_the_owned_one() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../replay");
        let mut compared = 0;
        for case in std::fs::read_dir(corpus).unwrap() {
            let log = case.unwrap().path().join("events.ndjson");
            let Ok(text) = std::fs::read_to_string(&log) else {
                continue;
            };
            let mut projections = Projections::new();
            for (seq, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
                let event = tidemark_core::decode_event(line).unwrap();
                projections.apply(seq as u64 + 1, &event);
                let max_time = Some(event.time);
                let owned = encode_snapshot(&SnapshotRecord {
                    seq: seq as u64 + 1,
                    max_time,
                    projections: projections.snapshot(),
                });
                let borrowed = encode_snapshot_of(seq as u64 + 1, max_time, &projections);
                assert!(owned == borrowed, "{} position {}", log.display(), seq + 1);
                let restored =
                    Projections::restore(&decode_snapshot(&borrowed).unwrap().projections);
                assert!(
                    encode_snapshot_of(seq as u64 + 1, max_time, &restored) == owned,
                    "{} position {}: restored state encodes differently",
                    log.display(),
                    seq + 1
                );
                compared += 1;
            }
        }
        assert!(compared > 100, "only {compared} positions compared");
    }

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

    /// Format 1 differs only in the trailing fields `settings.changed`, `change.deployed` and
    /// `note.added` gained (each payload is the last thing in its record): drop them and the
    /// bytes are what a format-1 build wrote.
    #[test]
    fn format_1_records_are_still_read() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/fixtures/v1");
        for (file, added_bytes) in [
            ("settings.changed.json", 8),
            ("change.deployed.json", 2),
            ("note.added.json", 1),
            ("cycle.completed.json", 0),
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let event = tidemark_core::decode_event(&text).unwrap();
            let mut bytes = Vec::new();
            encode_event(&event, Timestamp::from_unix_secs(7), &mut bytes);
            let mut v1 = bytes[..bytes.len() - added_bytes].to_vec();
            assert!(bytes[bytes.len() - added_bytes..].iter().all(|&b| b == 0));
            v1[0] = legacy::EVENT_FORMAT_1;
            let stored = decode_event(&v1).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(stored.event, event, "{file}");
        }
    }

    #[test]
    fn unknown_versions_and_garbage_are_named() {
        assert_eq!(decode_event(&[]), Err(CodecError::Empty));
        assert_eq!(
            decode_event(&[9, 1, 2]),
            Err(CodecError::UnknownFormat {
                found: 9,
                expected: EVENT_FORMAT
            })
        );
        assert!(matches!(
            decode_event(&[1, 0xff, 0xff]),
            Err(CodecError::Postcard(_))
        ));
    }
}
