//! Stored records: postcard inside an explicit version envelope (first byte = format version),
//! sealed by a checksum over the record's key and bytes.
//!
//! See `docs/adr/0002-stored-event-encoding.md` for why postcard, and not bincode or JSON.
//!
//! The envelope of the checksummed formats (log 3 on, snapshot 4 on, quarantine 2, history 1)
//! is `[version][CRC-32C, 4 bytes little-endian][postcard body]`, the CRC-32C taken over the
//! record's table key (8 bytes, little-endian; a history record's tuple key in the form of
//! [`history_key_bytes`]), the version byte and the body. A record whose
//! bytes changed after they were written (a flipped bit on disk, a page written over) or that
//! sits under another key fails [`CodecError::ChecksumMismatch`] instead of being read back as
//! data. Older formats carry no checksum and are read as they always were.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use tidemark_core::findings::SharedHistoryReader;
use tidemark_core::{Event, LiveProjectionsSnapshot, Projections, ProjectionsSnapshot, Timestamp};

/// Format version of large log records: format 7's body compressed ([`compressed`]), written
/// for a body of at least [`COMPRESS_FROM`] bytes (smaller ones stay format 7, which gains
/// little from compression). Written from store layout 8 on.
pub const EVENT_FORMAT_COMPRESSED: u8 = 8;
/// Format version of log records. Format 1 (before the settings of the projections issue) is
/// still read: see [`legacy`]; format 2 is format 3 without the checksum, still read.
/// Format 3: the checksummed envelope.
/// Format 4: `settings.changed` gains `span_retention_secs` (formats 2 and 3 are read through
/// their own layout, [`legacy`]).
/// Format 5: `settings.changed` gains `alert_stale_after_secs` (format 4 is read through its
/// own layout, [`legacy`]).
/// Format 7: `settings.changed` gains `maintenance_suppresses_incidents` and
/// `maintenance_suppresses_flaps`, and the maintenance events exist (format 5 is read through its
/// own layout, [`legacy`]). There is no format 6: its version byte is one flipped bit from
/// format 2's, which has no checksum, so a damaged byte could make a record readable as data.
/// Format 8 is format 7 compressed ([`EVENT_FORMAT_COMPRESSED`]).
pub const EVENT_FORMAT: u8 = 7;
/// The log format before maintenance windows (read, never written).
pub const EVENT_FORMAT_5: u8 = 5;
/// The log format before `alert_stale_after_secs` (read, never written).
pub const EVENT_FORMAT_4: u8 = 4;
/// The log format with the checksummed envelope before `span_retention_secs` (read, never
/// written).
pub const EVENT_FORMAT_3: u8 = 3;
/// The log format before checksums (read, never written).
pub const EVENT_FORMAT_2: u8 = 2;
/// Format version of projection snapshots. Formats before [`OLDEST_SNAPSHOT_FORMAT_READ`] are
/// not read: the store folds the log again instead (a snapshot is a cache of the log, never the
/// truth).
/// Format 3: failure layers record rollback outcomes and layers seen again (incidents).
/// Format 4: format 3 in the checksummed envelope.
/// Format 5: the layout of format 4; a late event is applied at its cluster's clock (ADR 0004),
/// so a format-3 or -4 snapshot of a log with late events holds times a fold no longer gives.
/// Format 6: a cluster's settings gain `span_retention_secs`, its span forest the count of
/// late spans, and judged traces leave memory after the retention; the count flap detector
/// forgets auto-resolutions older than 30 days (not stored: rebuilt from the occurrences).
/// Format 7 (store layout 2, ADR 0006): the live snapshot — the findings without their history
/// (which is in the store's tables): each finding's current occurrence, counts, open flap
/// episodes and kept auto-resolution times. Written by a projection whose history is shared;
/// one whose history is in memory still writes format 6 ([`SNAPSHOT_WITH_HISTORY_FORMAT`]).
/// Format 8 (per-cluster snapshots, [`cluster_parts`]): format 7 split into a manifest (the
/// incidents, and where each cluster's part is) and one part per cluster in
/// `cluster_snapshots`, written only for the clusters that changed; read with its parts
/// ([`decode_snapshot`] refuses it alone). The store writes it; [`encode_snapshot_of`] still
/// writes format 7 (one value: the upgrade's conversions, tests).
/// Format 9 (store layout 4, ADR 0006 step 4): format 8 whose manifest also holds the
/// incidents' numbers (`IncidentNumbers`), since the incidents it holds are those in memory
/// (the open ones) rather than all of them. Format 8 is still read (its incidents are all of
/// them, numbered by position).
/// Formats 10 to 12 (store layout 6, ADR 0007: alerts are findings): a finding may be an alert,
/// and keeps the alert's facts (`alert`, the last field of a finding's snapshot). Format 10 is
/// the manifest of format 9 whose parts are of part format 2; format 11 is format 6 and format
/// 12 format 7, each finding with its `alert`. Formats 6 to 9 (and part format 1) are still
/// read, their findings no alerts ([`legacy`]): they were written by rules under which alerts
/// opened no finding, so the layout-6 upgrade folds the log again ([`crate::Store::open`]);
/// a replica whose log was cut folds on from one with today's rules.
/// Formats 13 to 15 (ADR 0007, staleness): a cluster's settings gain `alert_stale_after_secs`
/// (their last field). Format 13 is the manifest of format 10 whose parts are of part format
/// 3; format 14 is format 11 and format 15 format 12 with the new settings. Formats 10 to 12
/// (and part format 2) are still read, with the default ([`legacy`]): the rules are the same.
/// Formats 16 to 18 (ADR 0007, maintenance windows): a cluster gains `maintenance` (the windows
/// in effect, the marks of covered findings, the resolutions held back from flap counting; its
/// last field). Format 16 is the manifest of format 13 whose parts are of part format 4;
/// format 17 is format 14 and format 18 format 15 with it. Formats 13 to 15 (and part format 3)
/// are still read, with none: no log written before held a window.
pub const SNAPSHOT_FORMAT: u8 = 16;
/// The per-cluster snapshot before maintenance windows (format 13): read with its parts.
pub const SNAPSHOT_PER_CLUSTER_FORMAT_13: u8 = 13;
/// The per-cluster snapshot before `alert_stale_after_secs` (format 10): read with its parts.
pub const SNAPSHOT_PER_CLUSTER_FORMAT_10: u8 = 10;
/// The per-cluster snapshot of store layouts 4 and 5 (format 9): read with its parts.
pub const SNAPSHOT_PER_CLUSTER_FORMAT_9: u8 = 9;
/// The per-cluster snapshot before the incidents' numbers (format 8): read with its parts.
pub const SNAPSHOT_PER_CLUSTER_FORMAT_8: u8 = 8;

/// Whether the snapshot `bytes` is per cluster (format 8, 9, 10, 13 or 16): read with its parts
/// ([`cluster_parts`]), never alone.
pub fn is_read_with_parts(bytes: &[u8]) -> bool {
    matches!(
        bytes.first(),
        Some(
            &(SNAPSHOT_PER_CLUSTER_FORMAT_8
                | SNAPSHOT_PER_CLUSTER_FORMAT_9
                | SNAPSHOT_PER_CLUSTER_FORMAT_10
                | SNAPSHOT_PER_CLUSTER_FORMAT_13
                | SNAPSHOT_FORMAT)
        )
    )
}
/// The live snapshot in one value (format 18): read, and written by [`encode_snapshot_of`].
pub const SNAPSHOT_WHOLE_LIVE_FORMAT: u8 = 18;
/// The snapshot format holding the findings' history (17: layout-1 stores, and projections
/// whose history is in memory).
pub const SNAPSHOT_WITH_HISTORY_FORMAT: u8 = 17;
/// The live snapshot in one value before maintenance windows (read, never written).
pub const SNAPSHOT_WHOLE_LIVE_FORMAT_15: u8 = 15;
/// The snapshot holding the history before maintenance windows (read, never written).
pub const SNAPSHOT_WITH_HISTORY_FORMAT_14: u8 = 14;
/// The live snapshot in one value before `alert_stale_after_secs` (read, never written).
pub const SNAPSHOT_WHOLE_LIVE_FORMAT_12: u8 = 12;
/// The snapshot holding the history before `alert_stale_after_secs` (read, never written).
pub const SNAPSHOT_WITH_HISTORY_FORMAT_11: u8 = 11;
/// The live snapshot in one value before alerts were findings (read, never written).
pub const SNAPSHOT_WHOLE_LIVE_FORMAT_7: u8 = 7;
/// The snapshot holding the history before alerts were findings (read, never written).
pub const SNAPSHOT_WITH_HISTORY_FORMAT_6: u8 = 6;
/// The oldest snapshot format this build reads as a starting point of the fold.
pub const OLDEST_SNAPSHOT_FORMAT_READ: u8 = 6;
/// The oldest snapshot format a replica whose log was cut by retention can resume from (it
/// cannot refold an outdated snapshot): formats 3 to 5 are read through their own layout
/// ([`legacy`]), format 6 on through today's ([`decode_snapshot_of_any_format`]).
pub const SNAPSHOT_LAYOUT_SINCE: u8 = 3;
/// The first snapshot format in the checksummed envelope.
const SNAPSHOT_CHECKSUMMED_SINCE: u8 = 4;
/// Format version of quarantine records. Format 2: format 1 in the checksummed envelope.
pub const QUARANTINE_FORMAT: u8 = 2;
/// The quarantine format before checksums (read, never written).
pub const QUARANTINE_FORMAT_1: u8 = 1;

/// Bytes of the checksum after the version byte.
const CHECKSUM_BYTES: usize = 4;

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
    /// A record that says it is of another key than the one it is stored under.
    #[error("the record says it is of position {found}, not of the key it is stored under")]
    WrongKey {
        /// The position the record names.
        found: u64,
    },
    /// A value that disagrees with what the rest of the store holds (an index entry or a meta
    /// value checked against the log).
    #[error("disagrees with the log: {0}")]
    Inconsistent(String),
    /// Shorter than the checksummed envelope.
    #[error("truncated record: {len} byte(s), shorter than its envelope")]
    Truncated {
        /// The record's length.
        len: usize,
    },
    /// A per-cluster snapshot (format 8) read without its parts.
    #[error("a per-cluster snapshot (format 8) is read with its cluster parts")]
    ReadWithParts,
    /// A compressed record whose body does not decompress to the length it names.
    #[error("undecompressable record: {0}")]
    Compression(String),
    /// The checksum does not match the key and bytes: the record changed after it was written.
    #[error(
        "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the record's bytes \
         changed after they were written"
    )]
    ChecksumMismatch {
        /// The checksum in the record.
        stored: u32,
        /// The checksum of the key and bytes as read.
        computed: u32,
    },
}

/// The checksum of a record of the checksummed envelope: CRC-32C over the key's bytes (a
/// position: its 8 bytes, little-endian; a tuple key: [`history_key_bytes`],
/// [`cluster_parts::cluster_part_key_bytes`]), the version byte and the body.
fn checksum_with_key(key: &[u8], version: u8, body: &[u8]) -> u32 {
    let crc = crc32c::crc32c(key);
    let crc = crc32c::crc32c_append(crc, &[version]);
    crc32c::crc32c_append(crc, body)
}

/// Encodes `value` into `out` (cleared first) in the checksummed envelope of `version`.
fn seal<T: Serialize>(version: u8, key: u64, value: &T, out: &mut Vec<u8>) {
    seal_with_key(version, &key.to_le_bytes(), value, out);
}

/// [`seal`] with the key's bytes as they enter the checksum.
fn seal_with_key<T: Serialize + ?Sized>(version: u8, key: &[u8], value: &T, out: &mut Vec<u8>) {
    encode_unsealed(version, value, out);
    write_checksum(key, out);
}

/// Encodes `value` into `out` (cleared first) as the envelope of `version` with its checksum
/// left zero, for [`write_checksum`].
fn encode_unsealed<T: Serialize + ?Sized>(version: u8, value: &T, out: &mut Vec<u8>) {
    out.clear();
    out.push(version);
    out.extend_from_slice(&[0; CHECKSUM_BYTES]);
    let buffer = std::mem::take(out);
    *out = postcard::to_extend(value, buffer).expect("serializing to a Vec cannot fail");
}

/// Writes the checksum of the envelope in `record` (its version and body) under `key`.
fn write_checksum(key: &[u8], record: &mut [u8]) {
    let (head, body) = record.split_at_mut(1 + CHECKSUM_BYTES);
    let crc = checksum_with_key(key, head[0], body);
    head[1..].copy_from_slice(&crc.to_le_bytes());
}

/// The body of a record in the checksummed envelope, once its checksum is verified.
fn unseal(key: u64, bytes: &[u8]) -> Result<&[u8], CodecError> {
    unseal_with_key(&key.to_le_bytes(), bytes)
}

/// [`unseal`] with the key's bytes as they enter the checksum.
fn unseal_with_key<'a>(key: &[u8], bytes: &'a [u8]) -> Result<&'a [u8], CodecError> {
    let (&version, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
    if rest.len() < CHECKSUM_BYTES {
        return Err(CodecError::Truncated { len: bytes.len() });
    }
    let (stored, body) = rest.split_at(CHECKSUM_BYTES);
    let stored = u32::from_le_bytes(stored.try_into().expect("split at CHECKSUM_BYTES"));
    let computed = checksum_with_key(key, version, body);
    if stored != computed {
        return Err(CodecError::ChecksumMismatch { stored, computed });
    }
    Ok(body)
}

/// Decodes a whole postcard body: bytes left over mean the record is not what it claims to be
/// (an older, unchecksummed format misread), never silently ignored.
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| CodecError::Postcard(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Postcard(format!(
            "{} byte(s) after the end of the record",
            rest.len()
        )));
    }
    Ok(value)
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

/// Encodes the log record at position `seq` into `out` (cleared first): format 7, or format 8
/// (compressed) when its body takes at least [`COMPRESS_FROM`] bytes.
pub fn encode_event(seq: u64, event: &Event, recorded_at: Timestamp, out: &mut Vec<u8>) {
    compressed::seal_compressing(
        (EVENT_FORMAT, EVENT_FORMAT_COMPRESSED),
        &seq.to_le_bytes(),
        &StoredEventRef { recorded_at, event },
        COMPRESS_FROM,
        out,
    );
}

/// A log record encoded before its position is known: [`encode_event`]'s bytes but for the
/// checksum, which covers the position and is written by [`EncodedEvent::seal_into`]. The
/// costly part of a record (postcard, compression) is so done on the thread that decoded the
/// event, not the one that holds the writer (issue 20).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodedEvent {
    /// `[version][checksum placeholder][body]`, as [`encode_event`] lays it out.
    bytes: Vec<u8>,
}

impl EncodedEvent {
    /// The record of `event`, recorded at `recorded_at`, without its checksum.
    pub fn new(event: &Event, recorded_at: Timestamp) -> Self {
        let mut encoded = Self::default();
        encoded.encode(event, recorded_at);
        encoded
    }

    /// Encodes `event` into this buffer (reusing its allocation).
    pub fn encode(&mut self, event: &Event, recorded_at: Timestamp) {
        // Without its checksum: `seal_into` writes that of the record's own key.
        compressed::encode_compressing(
            (EVENT_FORMAT, EVENT_FORMAT_COMPRESSED),
            &StoredEventRef { recorded_at, event },
            COMPRESS_FROM,
            &mut self.bytes,
        );
    }

    /// The length of the sealed record.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is encoded (never, for a record made by [`EncodedEvent::new`]).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Writes the record as stored at position `seq` into `out`, which is [`Self::len`] bytes
    /// long: the same bytes as [`encode_event`] of the same event at `seq`.
    pub fn seal_into(&self, seq: u64, out: &mut [u8]) {
        out.copy_from_slice(&self.bytes);
        write_checksum(&seq.to_le_bytes(), out);
    }
}

/// [`encode_event`] compressing whatever the body's size (the golden records of format 8, tests).
pub fn encode_event_compressed(seq: u64, event: &Event, recorded_at: Timestamp, out: &mut Vec<u8>) {
    compressed::seal_compressing(
        (EVENT_FORMAT, EVENT_FORMAT_COMPRESSED),
        &seq.to_le_bytes(),
        &StoredEventRef { recorded_at, event },
        0,
        out,
    );
}

/// Decodes the log record at position `seq` (format 3, checked against its checksum; or the
/// unchecksummed formats 2 and 1).
pub fn decode_event(seq: u64, bytes: &[u8]) -> Result<StoredEvent, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&EVENT_FORMAT) => decode_body(unseal(seq, bytes)?),
        Some(&EVENT_FORMAT_COMPRESSED) => {
            decode_body(&compressed::decompress(unseal(seq, bytes)?)?)
        }
        Some(&EVENT_FORMAT_5) => legacy::decode_event_v5(unseal(seq, bytes)?),
        Some(&EVENT_FORMAT_4) => legacy::decode_event_v4(unseal(seq, bytes)?),
        Some(&EVENT_FORMAT_3) => legacy::decode_event_v3(unseal(seq, bytes)?),
        Some(&EVENT_FORMAT_2) => legacy::decode_event_v3(&bytes[1..]),
        Some(&legacy::EVENT_FORMAT_1) => legacy::decode_event_v1(&bytes[1..]),
        Some(&found) => Err(CodecError::UnknownFormat {
            found,
            expected: EVENT_FORMAT_COMPRESSED,
        }),
    }
}

/// Whether a snapshot record was written by an older format this build no longer reads (the
/// store then ignores it and folds the log instead).
pub fn is_outdated_snapshot(bytes: &[u8]) -> bool {
    bytes
        .first()
        .is_some_and(|&v| v < OLDEST_SNAPSHOT_FORMAT_READ)
}

pub mod cluster_parts;
mod compressed;
pub use compressed::COMPRESS_FROM;
pub mod legacy;

mod history;
pub use history::{
    HISTORY_FORMAT, decode_flap_episode, decode_occurrence, encode_flap_episode, encode_occurrence,
    history_key_bytes,
};
mod dropped_orphans;
pub use dropped_orphans::{
    DROPPED_ORPHAN_ROW_FORMAT, DroppedOrphanKey, decode_dropped_orphan_row, dropped_orphan_key,
    dropped_orphan_key_bytes, encode_dropped_orphan_row, kind_code,
};
mod finding_groups;
pub use finding_groups::{
    FINDING_GROUP_FORMAT, FINDING_GROUP_MAX_ENTRIES, decode_finding_group, encode_finding_group,
};
mod changes;
pub use changes::{
    CHANGES_FORMAT, CHANGES_FORMAT_COMPRESSED, decode_changes, encode_changes,
    encode_changes_compressed,
};
mod incident_bodies;
pub use incident_bodies::{BODY_ROW_FORMAT, body_key_bytes, decode_body_row, encode_body_row};
mod timeline_rows;
pub use timeline_rows::{
    TIMELINE_ROW_FORMAT, decode_entry_row, decode_write_out_header, encode_entry_row,
    encode_write_out_header, entry_key_bytes,
};

/// A snapshot's projections as its format holds them.
#[derive(Clone, Debug, PartialEq)]
pub enum StoredProjections {
    /// With the findings' history (formats 3 to 6).
    WithHistory(ProjectionsSnapshot),
    /// Without it (format 7 on: the history is in the store's tables).
    Live(LiveProjectionsSnapshot),
}

impl StoredProjections {
    /// The projections restored: with the history the snapshot holds in memory, or, for a live
    /// snapshot, read through `history` (a past state's as of position `as_of`; the live
    /// state's, whose fold collects the records to write, with `None`).
    pub fn restore(
        self,
        history: impl FnOnce() -> Arc<dyn SharedHistoryReader>,
        as_of: Option<u64>,
    ) -> Projections {
        match self {
            Self::WithHistory(snapshot) => Projections::restore_owned(snapshot),
            Self::Live(snapshot) => Projections::restore_live_owned(snapshot, history(), as_of),
        }
    }

    /// The snapshot with its history in memory, if its format holds it.
    pub fn with_history(self) -> Option<ProjectionsSnapshot> {
        match self {
            Self::WithHistory(snapshot) => Some(snapshot),
            Self::Live(_) => None,
        }
    }
}

/// A projection snapshot: the state after applying the log up to `seq`. The layout is written
/// once: decoded, `projections` is the owned [`ProjectionsSnapshot`]; written from the live
/// state ([`encode_snapshot_of`]), it is the borrowing serializer of the same shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord<P = ProjectionsSnapshot> {
    /// Last log position applied.
    pub seq: u64,
    /// Latest event time among positions 1..=seq (for time travel by time).
    pub max_time: Option<Timestamp>,
    /// Every projection.
    pub projections: P,
}

/// Encodes a snapshot (checksummed with its key, `snapshot.seq`).
pub fn encode_snapshot(snapshot: &SnapshotRecord) -> Vec<u8> {
    let mut out = Vec::new();
    seal(
        SNAPSHOT_WITH_HISTORY_FORMAT,
        snapshot.seq,
        snapshot,
        &mut out,
    );
    out
}

/// Encodes the snapshot of live projections without copying them first: a live snapshot
/// (format 7) when their history is shared (the store's tables hold it), else the same bytes as
/// [`encode_snapshot`] of a record holding `projections.snapshot()` (format 6).
pub fn encode_snapshot_of(
    seq: u64,
    max_time: Option<Timestamp>,
    projections: &Projections,
) -> Vec<u8> {
    let sealed: Result<Vec<u8>, std::convert::Infallible> =
        encode_snapshot_of_into(seq, max_time, projections, |len| Ok(vec![0; len]));
    match sealed {
        Ok(bytes) => bytes,
        Err(never) => match never {},
    }
}

/// [`encode_snapshot_of`] written straight into the storage `reserve` hands out for the
/// record's exact length (the store's: a value reserved in the `snapshots` table), so the
/// encoded snapshot is never held in a buffer of its own as well. The record is sized in a
/// first pass (postcard writes nothing then) and written in a second: at a million findings
/// a snapshot is about 100 MB, which a `Vec` would hold (and grow by copying) while the
/// table's page holds it again.
pub fn encode_snapshot_of_into<B: AsMut<[u8]>, E>(
    seq: u64,
    max_time: Option<Timestamp>,
    projections: &Projections,
    reserve: impl FnOnce(usize) -> Result<B, E>,
) -> Result<B, E> {
    if projections.findings().history_is_shared() {
        let record = SnapshotRecord {
            seq,
            max_time,
            projections: projections.live_snapshot_serializer(),
        };
        seal_sized(
            SNAPSHOT_WHOLE_LIVE_FORMAT,
            &seq.to_le_bytes(),
            &record,
            reserve,
        )
    } else {
        let record = SnapshotRecord {
            seq,
            max_time,
            projections: projections.snapshot_serializer(),
        };
        seal_sized(
            SNAPSHOT_WITH_HISTORY_FORMAT,
            &seq.to_le_bytes(),
            &record,
            reserve,
        )
    }
}

/// Seals `record` under format `version` and the key whose bytes are `key` into the storage
/// `reserve` hands out for its exact length: sized in a first pass, written in a second.
fn seal_sized<B: AsMut<[u8]>, E>(
    version: u8,
    key: &[u8],
    record: &impl Serialize,
    reserve: impl FnOnce(usize) -> Result<B, E>,
) -> Result<B, E> {
    let body_len =
        postcard::experimental::serialized_size(record).expect("sizing a snapshot cannot fail");
    let mut storage = reserve(1 + CHECKSUM_BYTES + body_len)?;
    let out = storage.as_mut();
    let (head, body) = out.split_at_mut(1 + CHECKSUM_BYTES);
    let written = postcard::to_slice(record, body)
        .expect("the snapshot fits the length it was sized at")
        .len();
    assert_eq!(
        written, body_len,
        "the snapshot serializes to the length it was sized at"
    );
    head[0] = version;
    head[1..].copy_from_slice(&checksum_with_key(key, version, body).to_le_bytes());
    Ok(storage)
}

/// Decodes the snapshot stored under key `seq` (format 6, 7, 11 or 12, checked against its
/// checksum; formats 8 to 10 are read with their parts, [`cluster_parts`]). A snapshot whose
/// `seq` is not its key is refused.
pub fn decode_snapshot(
    seq: u64,
    bytes: &[u8],
) -> Result<SnapshotRecord<StoredProjections>, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(_) if is_read_with_parts(bytes) => Err(CodecError::ReadWithParts),
        Some(
            &(SNAPSHOT_WITH_HISTORY_FORMAT_6
            | SNAPSHOT_WHOLE_LIVE_FORMAT_7
            | SNAPSHOT_WITH_HISTORY_FORMAT_11
            | SNAPSHOT_WHOLE_LIVE_FORMAT_12
            | SNAPSHOT_WITH_HISTORY_FORMAT_14
            | SNAPSHOT_WHOLE_LIVE_FORMAT_15
            | SNAPSHOT_WITH_HISTORY_FORMAT
            | SNAPSHOT_WHOLE_LIVE_FORMAT),
        ) => decode_snapshot_of_any_format(seq, bytes),
        Some(&found) => Err(CodecError::UnknownFormat {
            found,
            expected: SNAPSHOT_FORMAT,
        }),
    }
}

/// Decodes a snapshot of any format from [`SNAPSHOT_LAYOUT_SINCE`] on that is one value (formats
/// 8 to 10 are read with their parts; format 3 has no checksum; formats 3 to 7 are read through
/// their layout and given today's defaults for what they lack: no alert among their findings):
/// only the rules that produced the older ones were older. For a replica that cannot refold its
/// log.
pub fn decode_snapshot_of_any_format(
    seq: u64,
    bytes: &[u8],
) -> Result<SnapshotRecord<StoredProjections>, CodecError> {
    let with_history = |record: SnapshotRecord| SnapshotRecord {
        seq: record.seq,
        max_time: record.max_time,
        projections: StoredProjections::WithHistory(record.projections),
    };
    let live = |record: SnapshotRecord<LiveProjectionsSnapshot>| SnapshotRecord {
        seq: record.seq,
        max_time: record.max_time,
        projections: StoredProjections::Live(record.projections),
    };
    let record = match bytes.first() {
        None => return Err(CodecError::Empty),
        Some(_) if is_read_with_parts(bytes) => return Err(CodecError::ReadWithParts),
        Some(&SNAPSHOT_WHOLE_LIVE_FORMAT) => live(decode_body(unseal(seq, bytes)?)?),
        Some(&SNAPSHOT_WITH_HISTORY_FORMAT) => with_history(decode_body(unseal(seq, bytes)?)?),
        Some(&SNAPSHOT_WHOLE_LIVE_FORMAT_15) => {
            live(legacy::decode_snapshot_v15(unseal(seq, bytes)?)?)
        }
        Some(&SNAPSHOT_WITH_HISTORY_FORMAT_14) => {
            with_history(legacy::decode_snapshot_v14(unseal(seq, bytes)?)?)
        }
        Some(&SNAPSHOT_WHOLE_LIVE_FORMAT_12) => {
            live(legacy::decode_snapshot_v12(unseal(seq, bytes)?)?)
        }
        Some(&SNAPSHOT_WITH_HISTORY_FORMAT_11) => {
            with_history(legacy::decode_snapshot_v11(unseal(seq, bytes)?)?)
        }
        Some(&SNAPSHOT_WHOLE_LIVE_FORMAT_7) => {
            live(legacy::decode_snapshot_v7(unseal(seq, bytes)?)?)
        }
        Some(&SNAPSHOT_WITH_HISTORY_FORMAT_6) => {
            with_history(legacy::decode_snapshot_v6(unseal(seq, bytes)?)?)
        }
        Some(&v) if (SNAPSHOT_CHECKSUMMED_SINCE..SNAPSHOT_WITH_HISTORY_FORMAT_6).contains(&v) => {
            with_history(legacy::decode_snapshot_v5(unseal(seq, bytes)?)?)
        }
        Some(&SNAPSHOT_LAYOUT_SINCE) => with_history(legacy::decode_snapshot_v5(&bytes[1..])?),
        Some(&found) => {
            return Err(CodecError::UnknownFormat {
                found,
                expected: SNAPSHOT_FORMAT,
            });
        }
    };
    if record.seq != seq {
        return Err(CodecError::WrongKey { found: record.seq });
    }
    Ok(record)
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

/// Encodes the quarantine record with id `id`.
pub fn encode_quarantine(id: u64, record: &QuarantineRecord) -> Vec<u8> {
    let mut out = Vec::new();
    seal(QUARANTINE_FORMAT, id, record, &mut out);
    out
}

/// Decodes the quarantine record with id `id` (format 2, checked against its checksum; or the
/// unchecksummed format 1).
pub fn decode_quarantine(id: u64, bytes: &[u8]) -> Result<QuarantineRecord, CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(&QUARANTINE_FORMAT) => decode_body(unseal(id, bytes)?),
        Some(&QUARANTINE_FORMAT_1) => decode_body(&bytes[1..]),
        Some(&found) => Err(CodecError::UnknownFormat {
            found,
            expected: QUARANTINE_FORMAT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record encoded before its position, sealed at a position, is byte for byte the record
    /// encoded at that position: plain (a small event) and compressed (a large one).
    #[test]
    fn an_event_encoded_before_its_position_seals_to_the_record_at_it() {
        let findings: Vec<String> = (0..60)
            .map(|k| format!(r#"{{"check_key":"k{k}","category":"c","severity":"error","title":"k{k} broken"}}"#))
            .collect();
        for count in [1, 60] {
            let event = tidemark_core::decode_event(&format!(
                r#"{{"id":"e","schema":1,"type":"cycle.completed","time":"2026-03-02T00:00:00Z","source":"p","cluster":"c","data":{{"cycle":"1","categories":["c"],"findings":[{}]}}}}"#,
                findings[..count].join(",")
            ))
            .unwrap();
            let recorded_at = Timestamp::from_unix_secs(1_800_000_000);
            let encoded = EncodedEvent::new(&event, recorded_at);
            for seq in [1, 41, u64::MAX] {
                let mut direct = Vec::new();
                encode_event(seq, &event, recorded_at, &mut direct);
                let mut sealed = vec![0; encoded.len()];
                encoded.seal_into(seq, &mut sealed);
                assert_eq!(sealed, direct, "{count} finding(s) at {seq}");
                assert_eq!(decode_event(seq, &sealed).unwrap().event, event);
            }
            let expected = if count == 1 {
                EVENT_FORMAT
            } else {
                EVENT_FORMAT_COMPRESSED
            };
            assert_eq!(encoded.bytes[0], expected, "{count} finding(s)");
        }
    }

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
            // A line may be an Alertmanager webhook as the bridge received it: its events.
            let events: Vec<tidemark_core::Event> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .flat_map(|line| {
                    match tidemark_core::alertmanager::translate_recorded(line.as_bytes()) {
                        Some(bridged) => bridged.unwrap(),
                        None => vec![tidemark_core::decode_event(line).unwrap()],
                    }
                })
                .collect();
            for (seq, event) in events.into_iter().enumerate() {
                projections.apply(seq as u64 + 1, &event);
                let max_time = Some(event.time);
                let owned = encode_snapshot(&SnapshotRecord {
                    seq: seq as u64 + 1,
                    max_time,
                    projections: projections.snapshot(),
                });
                let borrowed = encode_snapshot_of(seq as u64 + 1, max_time, &projections);
                assert!(owned == borrowed, "{} position {}", log.display(), seq + 1);
                let restored = Projections::restore(
                    &decode_snapshot(seq as u64 + 1, &borrowed)
                        .unwrap()
                        .projections
                        .with_history()
                        .expect("a projection with its history in memory writes it"),
                );
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
            encode_event(3, &event, Timestamp::from_unix_secs(7), &mut bytes);
            assert_eq!(bytes[0], EVENT_FORMAT);
            let stored = decode_event(3, &bytes).unwrap();
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
            ("settings.changed.json", 12),
            ("change.deployed.json", 2),
            ("note.added.json", 1),
            ("cycle.completed.json", 0),
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let event = tidemark_core::decode_event(&text).unwrap();
            let mut bytes = Vec::new();
            encode_event(1, &event, Timestamp::from_unix_secs(7), &mut bytes);
            // Format 1 had no checksum: the version byte, then the body.
            let body = &bytes[1 + CHECKSUM_BYTES..];
            let mut v1 = vec![legacy::EVENT_FORMAT_1];
            v1.extend_from_slice(&body[..body.len() - added_bytes]);
            assert!(body[body.len() - added_bytes..].iter().all(|&b| b == 0));
            let stored = decode_event(1, &v1).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(stored.event, event, "{file}");
        }
    }

    /// Formats 2 to 5 differ only in `settings.changed`'s last fields: format 5 lacks the two
    /// `maintenance_` settings, format 4 `alert_stale_after_secs` too, formats 2 and 3
    /// `span_retention_secs` too. Drop them and the bytes are what those builds wrote (format 2:
    /// without the checksum).
    #[test]
    fn format_5_4_3_and_2_records_are_read_without_the_newer_settings() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/fixtures/v1");
        let text = std::fs::read_to_string(dir.join("settings.changed.json")).unwrap();
        let event = tidemark_core::decode_event(&text).unwrap();
        let mut bytes = Vec::new();
        encode_event(1, &event, Timestamp::from_unix_secs(7), &mut bytes);
        let body = &bytes[1 + CHECKSUM_BYTES..];
        assert_eq!(
            &body[body.len() - 4..],
            &[0, 0, 0, 0],
            "span_retention_secs, alert_stale_after_secs and the maintenance settings: None"
        );
        let sealed = |version: u8, old_body: &[u8]| {
            let mut out = vec![version];
            out.extend_from_slice(
                &checksum_with_key(&1u64.to_le_bytes(), version, old_body).to_le_bytes(),
            );
            out.extend_from_slice(old_body);
            out
        };
        let v5_body = &body[..body.len() - 2];
        assert_eq!(
            decode_event(1, &sealed(EVENT_FORMAT_5, v5_body))
                .unwrap()
                .event,
            event
        );
        let v4_body = &body[..body.len() - 3];
        assert_eq!(
            decode_event(1, &sealed(EVENT_FORMAT_4, v4_body))
                .unwrap()
                .event,
            event
        );
        let v3_body = &body[..body.len() - 4];
        assert_eq!(
            decode_event(1, &sealed(EVENT_FORMAT_3, v3_body))
                .unwrap()
                .event,
            event
        );
        let mut v2 = vec![EVENT_FORMAT_2];
        v2.extend_from_slice(v3_body);
        assert_eq!(decode_event(1, &v2).unwrap().event, event);
        // Format 4 holds the span retention, format 5 the staleness threshold too.
        let mut with_retention = event.clone();
        if let tidemark_core::Payload::SettingsChanged(change) = &mut with_retention.payload {
            change.span_retention_secs = Some(3_600);
        }
        encode_event(1, &with_retention, Timestamp::from_unix_secs(7), &mut bytes);
        let v4_body = bytes[1 + CHECKSUM_BYTES..bytes.len() - 3].to_vec();
        assert_eq!(
            decode_event(1, &sealed(EVENT_FORMAT_4, &v4_body))
                .unwrap()
                .event,
            with_retention
        );
        let mut with_staleness = with_retention.clone();
        if let tidemark_core::Payload::SettingsChanged(change) = &mut with_staleness.payload {
            change.alert_stale_after_secs = Some(600);
        }
        encode_event(1, &with_staleness, Timestamp::from_unix_secs(7), &mut bytes);
        let v5_body = bytes[1 + CHECKSUM_BYTES..bytes.len() - 2].to_vec();
        assert_eq!(
            decode_event(1, &sealed(EVENT_FORMAT_5, &v5_body))
                .unwrap()
                .event,
            with_staleness
        );
        let mut with_maintenance = with_staleness.clone();
        if let tidemark_core::Payload::SettingsChanged(change) = &mut with_maintenance.payload {
            change.maintenance_suppresses_incidents = Some(false);
            change.maintenance_suppresses_flaps = Some(true);
        }
        encode_event(
            1,
            &with_maintenance,
            Timestamp::from_unix_secs(7),
            &mut bytes,
        );
        assert_eq!(bytes[0], EVENT_FORMAT);
        assert_eq!(decode_event(1, &bytes).unwrap().event, with_maintenance);
    }

    #[test]
    fn unknown_versions_and_garbage_are_named() {
        assert_eq!(decode_event(1, &[]), Err(CodecError::Empty));
        assert_eq!(
            decode_event(1, &[9, 1, 2]),
            Err(CodecError::UnknownFormat {
                found: 9,
                expected: EVENT_FORMAT_COMPRESSED
            })
        );
        assert!(matches!(
            decode_event(1, &[1, 0xff, 0xff]),
            Err(CodecError::Postcard(_))
        ));
        assert_eq!(
            decode_event(1, &[EVENT_FORMAT, 1, 2]),
            Err(CodecError::Truncated { len: 3 })
        );
    }

    fn fixture(name: &str) -> Event {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/fixtures/v1")
            .join(name);
        tidemark_core::decode_event(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every single flipped bit of a record, and the same record under another key, is refused
    /// as a checksum mismatch (or an envelope it cannot be), never read back as data: log,
    /// snapshot and quarantine records alike.
    #[test]
    fn every_flipped_bit_and_a_moved_record_are_refused() {
        let mut event_bytes = Vec::new();
        encode_event(
            17,
            &fixture("cycle.completed.json"),
            Timestamp::from_unix_secs(7),
            &mut event_bytes,
        );
        let mut projections = Projections::new();
        projections.apply(1, &fixture("cycle.completed.json"));
        let snapshot_bytes = encode_snapshot_of(1, None, &projections);
        let quarantine_bytes = encode_quarantine(
            5,
            &QuarantineRecord {
                recorded_at: Timestamp::from_unix_secs(7),
                origin: "line 3".into(),
                reason: "thing 17".into(),
                raw: b"{\"title\":\"thing 17\"}".to_vec(),
            },
        );
        type Decode = fn(u64, &[u8]) -> bool;
        let kinds: [(&str, u64, &[u8], Decode); 3] = [
            ("log", 17, &event_bytes, |k, b| decode_event(k, b).is_ok()),
            ("snapshot", 1, &snapshot_bytes, |k, b| {
                decode_snapshot(k, b).is_ok()
            }),
            ("quarantine", 5, &quarantine_bytes, |k, b| {
                decode_quarantine(k, b).is_ok()
            }),
        ];
        for (name, key, bytes, decodes) in kinds {
            assert!(decodes(key, bytes), "{name}: the intact record decodes");
            assert!(!decodes(key + 1, bytes), "{name}: under another key");
            for bit in 0..bytes.len() * 8 {
                let mut flipped = bytes.to_vec();
                flipped[bit / 8] ^= 1 << (bit % 8);
                // A flipped version byte may name an older, unchecksummed format: its body then
                // starts with the checksum and does not decode as a whole record.
                assert!(
                    !decodes(key, &flipped),
                    "{name}: bit {bit} flipped was read as data"
                );
            }
        }
    }

    /// Format 2 log records and format 1 quarantine records (no checksum) are still read, with
    /// any key.
    #[test]
    fn unchecksummed_formats_are_still_read() {
        let event = fixture("note.added.json");
        let mut bytes = Vec::new();
        encode_event(1, &event, Timestamp::from_unix_secs(7), &mut bytes);
        let mut v2 = vec![EVENT_FORMAT_2];
        v2.extend_from_slice(&bytes[1 + CHECKSUM_BYTES..]);
        assert_eq!(decode_event(99, &v2).unwrap().event, event);
        let record = QuarantineRecord {
            recorded_at: Timestamp::from_unix_secs(7),
            origin: "o".into(),
            reason: "r".into(),
            raw: vec![0xff],
        };
        let bytes = encode_quarantine(1, &record);
        let mut v1 = vec![QUARANTINE_FORMAT_1];
        v1.extend_from_slice(&bytes[1 + CHECKSUM_BYTES..]);
        assert_eq!(decode_quarantine(42, &v1).unwrap(), record);
        // Trailing bytes are not part of any record.
        v1.push(0);
        assert!(decode_quarantine(42, &v1).is_err());
    }
}
