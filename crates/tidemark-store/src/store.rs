//! The embedded store: one redb file holding the log, its indexes, projection snapshots, the
//! checkpoint and the quarantine.
//!
//! Writes come in batches, and each batch is one write transaction: its log records, its index
//! entries, its quarantine records and the checkpoint (and, every `snapshot_every` events, a
//! projection snapshot) commit together or not at all. The live projection is kept in memory;
//! on open it is restored from the latest snapshot and the log after it, which that same
//! transaction discipline makes equal to the state at the checkpoint.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::Serialize;
use tidemark_core::findings::FindingChange;
use tidemark_core::{Event, EventType, FindingView, Payload, ResolutionKind, Timestamp};
use tidemark_core::{Projections, ProjectionsSnapshot};

use crate::codec::{self, StoredEvent};
use crate::error::{
    AppendError, BackupError, CompactError, CorruptRecord, OpenError, QueryError, ReadFault,
    ReadOnlyStore, RebuildError, RetentionError, StorageFault,
};
use crate::quarantine::{self, DropLog, QuarantineLimits, QuarantineTables, QuarantineTally};
use crate::tables::{self, change_bits};

/// Tuning of a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Write a projection snapshot when this many events were applied since the last one.
    pub snapshot_every: u64,
    /// Keep one historical snapshot per this many positions (for time travel); the latest is
    /// always kept.
    pub snapshot_keep_every: u64,
    /// After a batch failed for lack of space, appends are refused without touching the disk
    /// for this long; then the next append tries again (each failed try reopens the database,
    /// which re-verifies the file, so tries are spaced out).
    pub disk_full_retry: Duration,
    /// redb's page cache, in bytes. Reads are mostly answered from the in-memory projections
    /// and timelines read few pages, so this is far below redb's own default of 1 GiB.
    pub cache_bytes: usize,
    /// Candidate positions one [`Store::events_page`] call reads at most (default
    /// [`EVENTS_SCAN_BUDGET`]; at least 1): a rare filter answers a short page with a `next`
    /// cursor instead of scanning the whole log in one request.
    pub events_scan_budget: usize,
    /// How much the quarantine may hold (see [`QuarantineLimits`]).
    pub quarantine: QuarantineLimits,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            snapshot_every: 10_000,
            snapshot_keep_every: 100_000,
            disk_full_retry: Duration::from_secs(5),
            cache_bytes: 128 << 20,
            events_scan_budget: EVENTS_SCAN_BUDGET,
            quarantine: QuarantineLimits::default(),
        }
    }
}

/// Why writes are refused now: the last append found no space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskFull {
    /// The operating system's words (`No space left on device`, `File too large`, ...).
    pub detail: String,
    /// Batches refused since writes stopped (tried or not).
    pub refused_batches: u64,
    /// The checkpoint reads answer from (the last committed position).
    pub checkpoint: u64,
}

/// The disk-full state of the writer: set by a failed append, cleared by a committed one.
#[derive(Debug)]
struct WriteBlock {
    status: DiskFull,
    retry_at: Instant,
}

/// One item offered to [`Store::append`].
#[derive(Clone, Debug)]
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

/// A point of the log to look at the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// After applying positions 1..=seq.
    Seq(u64),
    /// After the longest prefix of the log whose events are not later than this time.
    Time(Timestamp),
}

/// One entry of a timeline: a stored event and what it did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Log position.
    pub seq: u64,
    /// When the store recorded it.
    pub recorded_at: Timestamp,
    /// What it did to the finding (for finding timelines): `opened`, `resolved_auto`, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<&'static str>,
    /// The event, in the wire format.
    pub event: Event,
}

/// Which events `Store::events_page` returns (every filter given must hold).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// The event's cluster.
    pub cluster: Option<String>,
    /// The event's type.
    pub event_type: Option<EventType>,
    /// Event time at or after.
    pub since: Option<Timestamp>,
    /// Event time at or before.
    pub until: Option<Timestamp>,
    /// Events that changed or named this finding (in `cluster`, or in any cluster).
    pub check_key: Option<String>,
    /// Events on this incident's timeline.
    pub incident: Option<String>,
    /// The event's source.
    pub source: Option<String>,
}

/// One page of events, in log order.
#[derive(Clone, Debug, PartialEq)]
pub struct EventsPage {
    /// The events, with their positions.
    pub events: Vec<(u64, StoredEvent)>,
    /// Pass as `after` for the next page; `None` when there are no more. Always a position
    /// every matching event up to which is on this page or an earlier one.
    pub next: Option<u64>,
    /// The page ended early because the scan budget was spent (it holds fewer than `limit`
    /// events, maybe none, and `next` goes on from the last position read).
    pub scan_budget_reached: bool,
}

/// A page of a cluster's timeline, by event time (ties in log order).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterTimelinePage {
    /// The events on this page.
    pub entries: Vec<TimelineEntry>,
    /// The event time and position of the last entry: pass as `after` for the next page;
    /// `None` when there are no more.
    pub next: Option<(Timestamp, u64)>,
}

/// Candidate positions one `events_page` call reads at most by default
/// ([`StoreConfig::events_scan_budget`]): a rare filter answers a short (even empty) page with a
/// `next` cursor instead of scanning the whole log in one request.
pub const EVENTS_SCAN_BUDGET: usize = 20_000;

/// A quarantined input, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    /// Quarantine id.
    pub id: u64,
    /// The record.
    #[serde(flatten)]
    pub record: QuarantineView,
}

/// A quarantine record with its bytes shown as text where they are UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantineView {
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Where it came from.
    pub origin: String,
    /// Why it was refused.
    pub reason: String,
    /// The bytes, as text (lossy for non-UTF-8).
    pub raw: String,
    /// Byte length of the raw input.
    pub raw_bytes: usize,
    /// How often this input was refused (the same bytes, for the same reason).
    pub count: u64,
    /// When it was last refused (`recorded_at` when it was refused once).
    pub last_seen: Timestamp,
}

/// Figures about a store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Events in the log (= the checkpoint when the store is the log; fewer when following a
    /// stream, whose positions may have gaps).
    pub events: u64,
    /// Last applied position.
    pub checkpoint: u64,
    /// Position of the latest projection snapshot (0: none).
    pub snapshot_seq: u64,
    /// Snapshots kept.
    pub snapshots: u64,
    /// Quarantine records (each counts how often its input was refused).
    pub quarantined: u64,
    /// Bytes the quarantine records take (the bound is `StoreConfig::quarantine`).
    pub quarantine_bytes: u64,
    /// Refused inputs whose raw bytes were not kept because the quarantine was full, ever.
    pub quarantine_dropped: u64,
    /// Findings, active or not.
    pub findings: u64,
    /// Active findings.
    pub active_findings: u64,
    /// Size of the database file.
    pub size_on_disk_bytes: u64,
}

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// Events folded.
    pub events: u64,
    /// Whether the rebuilt state equals the state it replaced.
    pub state_unchanged: bool,
}

/// What a backup holds, read back from the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    /// The last applied position it holds: the state it restores is the state at this point.
    pub checkpoint: u64,
    /// Events in its log.
    pub events: u64,
    /// Quarantined inputs.
    pub quarantined: u64,
    /// Position of its latest projection snapshot.
    pub snapshot_seq: u64,
    /// Findings at its checkpoint.
    pub findings: u64,
    /// Its store layout version.
    pub format: i64,
    /// Size of the file.
    pub bytes: u64,
}

/// Sizes of the file before and after a compaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Bytes before.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

/// Entries copied per write transaction of a backup (the copy is private until it is renamed
/// into place, so these commits need not be durable one by one).
const BACKUP_CHUNK: u64 = 20_000;

/// Copies every entry of one table from `source` into `target`, in chunks.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    source: &redb::ReadTransaction,
    target: &Database,
    definition: redb::TableDefinition<K, V>,
    progress: &mut impl FnMut(u64),
) -> Result<u64, StorageFault> {
    let table = source.open_table(definition)?;
    let mut entries = table.iter()?;
    let mut copied = 0;
    loop {
        let mut txn = target.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| StorageFault(redb::Error::from(e)))?;
        let mut in_chunk = 0;
        {
            let mut out = txn.open_table(definition)?;
            for entry in entries.by_ref() {
                let (key, value) = entry?;
                out.insert(key.value(), value.value())?;
                in_chunk += 1;
                if in_chunk == BACKUP_CHUNK {
                    break;
                }
            }
        }
        txn.commit()?;
        copied += in_chunk;
        progress(in_chunk);
        if in_chunk < BACKUP_CHUNK {
            return Ok(copied);
        }
    }
}

/// Every table of the store, copied from one read transaction into a fresh database.
fn copy_all_tables(
    source: &redb::ReadTransaction,
    target: &Database,
    mut progress: impl FnMut(u64),
) -> Result<(), StorageFault> {
    copy_table(source, target, tables::META, &mut progress)?;
    copy_table(source, target, tables::LOG, &mut progress)?;
    copy_table(source, target, tables::IDS, &mut progress)?;
    copy_table(source, target, tables::BY_FINDING, &mut progress)?;
    copy_table(source, target, tables::BY_CLUSTER_TIME, &mut progress)?;
    copy_table(source, target, tables::BY_INCIDENT, &mut progress)?;
    copy_table(source, target, tables::BY_TYPE, &mut progress)?;
    copy_table(source, target, tables::SNAPSHOTS, &mut progress)?;
    copy_table(source, target, tables::SNAPSHOT_TIMES, &mut progress)?;
    copy_table(source, target, tables::QUARANTINE, &mut progress)?;
    // Tables a store opened read-only may lack (written before they existed).
    if table_exists(source, tables::QUARANTINE_DIGESTS)? {
        copy_table(source, target, tables::QUARANTINE_DIGESTS, &mut progress)?;
    }
    if table_exists(source, tables::QUARANTINE_REPEATS)? {
        copy_table(source, target, tables::QUARANTINE_REPEATS, &mut progress)?;
    }
    // One durable commit makes everything before it durable.
    let mut txn = target.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| StorageFault(redb::Error::from(e)))?;
    txn.commit()?;
    Ok(())
}

/// Entries in every table, for progress.
fn count_entries(txn: &redb::ReadTransaction) -> Result<u64, StorageFault> {
    Ok(txn.open_table(tables::META)?.len()?
        + txn.open_table(tables::LOG)?.len()?
        + txn.open_table(tables::IDS)?.len()?
        + txn.open_table(tables::BY_FINDING)?.len()?
        + txn.open_table(tables::BY_CLUSTER_TIME)?.len()?
        + txn.open_table(tables::BY_INCIDENT)?.len()?
        + txn.open_table(tables::BY_TYPE)?.len()?
        + txn.open_table(tables::SNAPSHOTS)?.len()?
        + txn.open_table(tables::SNAPSHOT_TIMES)?.len()?
        + txn.open_table(tables::QUARANTINE)?.len()?
        + optional_len(txn, tables::QUARANTINE_DIGESTS)?
        + optional_len(txn, tables::QUARANTINE_REPEATS)?)
}

/// Whether a table exists (a store written before it was added lacks it until opened for
/// writing).
fn table_exists<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    definition: redb::TableDefinition<K, V>,
) -> Result<bool, StorageFault> {
    match txn.open_table(definition) {
        Ok(_) => Ok(true),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Entries of a table that may not exist (0 then).
fn optional_len<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    definition: redb::TableDefinition<K, V>,
) -> Result<u64, StorageFault> {
    if table_exists(txn, definition)? {
        Ok(txn.open_table(definition)?.len()?)
    } else {
        Ok(0)
    }
}

/// The in-memory side of the store.
#[derive(Debug)]
struct LiveState {
    projections: Projections,
    last_seq: u64,
    max_time: Option<Timestamp>,
    snapshot_seq: u64,
    /// What the quarantine holds.
    quarantine: QuarantineTally,
    /// Positions come from a JetStream stream (a replica): retention may drop old events.
    from_stream: bool,
    /// The first position the local log holds (retention moves it on).
    log_start: u64,
    /// Corrupt snapshots skipped when this state was restored.
    skipped_snapshots: Vec<CorruptRecord>,
}

/// What dropping old events did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Events removed from the local log.
    pub dropped_events: u64,
    /// The first position the local log holds now (a snapshot's position: time travel works
    /// from here on).
    pub first_retained: u64,
}

/// The embedded store. Share it (`Arc<Store>`): reads run concurrently with one writer.
///
/// Lock order: `writer`, then `state`, then `db`. A reader never waits for `state` while it
/// holds `db`, so the writer may take `db` exclusively (to reopen it after an I/O error) while
/// it holds `state`.
#[derive(Debug)]
pub struct Store {
    /// The database handle; `None` only while a reopen after an I/O error failed.
    db: RwLock<Option<Handle>>,
    /// Opened with [`Store::open_read_only`]: every write operation is refused.
    read_only: bool,
    path: PathBuf,
    config: StoreConfig,
    state: RwLock<LiveState>,
    /// Serialises writers, so the in-memory state follows commits in order.
    writer: Mutex<()>,
    /// Set while writes are refused because the disk is full.
    write_block: Mutex<Option<WriteBlock>>,
    /// Rate-limits the warning about refused inputs the full quarantine did not keep.
    quarantine_drop_log: Mutex<DropLog>,
}

/// The open database: read-write (serve, ingest, rebuild, compact), or read-only (the read
/// commands), which never writes a byte of the file.
enum Handle {
    Write(Database),
    Read(redb::ReadOnlyDatabase),
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(db) => f.debug_tuple("Write").field(db).finish(),
            Self::Read(_) => f.write_str("Read(ReadOnlyDatabase)"),
        }
    }
}

impl Handle {
    fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Self::Write(db) => db.begin_read(),
            Self::Read(db) => db.begin_read(),
        }
    }

    /// A write transaction; a read-only handle refuses (the write paths check
    /// [`Store::refuse_if_read_only`] first, so this is a last guard).
    fn begin_write(&self) -> Result<WriteTransaction, redb::TransactionError> {
        match self {
            Self::Write(db) => db.begin_write(),
            Self::Read(_) => Err(redb::TransactionError::Storage(redb::StorageError::Io(
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the store was opened read-only",
                ),
            ))),
        }
    }
}

/// A shared borrow of the open database.
struct DbRef<'a>(RwLockReadGuard<'a, Option<Handle>>);

impl std::ops::Deref for DbRef<'_> {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        self.0
            .as_ref()
            .expect("DbRef is only made for an open database")
    }
}

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Refuses an existing file that is not a redb database (an empty file included: redb would
/// silently make it a new database) before redb sees it. A missing file passes.
fn refuse_non_redb_file(path: &Path) -> Result<(), OpenError> {
    use std::io::Read as _;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(OpenError::Database {
                path: path.to_path_buf(),
                reason: redb::DatabaseError::from(e),
            });
        }
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    (&mut file)
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| OpenError::Database {
            path: path.to_path_buf(),
            reason: redb::DatabaseError::from(e),
        })?;
    let reason = if head.is_empty() {
        "it is empty (0 bytes)"
    } else if head != REDB_MAGIC {
        "it is not a redb database"
    } else {
        return Ok(());
    };
    Err(OpenError::NotAStore {
        path: path.to_path_buf(),
        reason: reason.into(),
    })
}

/// What redb's refusal to open `path` means for the user.
fn open_error(path: &Path, reason: redb::DatabaseError) -> OpenError {
    let path = path.to_path_buf();
    match reason {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen { path },
        // A read-only open refuses a file that needs recovery rather than repairing it.
        redb::DatabaseError::RepairAborted => OpenError::NeedsRecovery { path },
        reason => OpenError::Database { path, reason },
    }
}

/// Opens (or creates, when `path` does not exist) the redb file for writing, naming a second
/// process as such.
fn open_database(path: &Path, cache_bytes: usize) -> Result<Database, OpenError> {
    refuse_non_redb_file(path)?;
    Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|reason| open_error(path, reason))
}

/// Opens an existing redb file read-only: nothing is written to it, and a file that needs
/// recovery is refused ([`OpenError::NeedsRecovery`]) instead of repaired.
pub(crate) fn open_database_read_only(
    path: &Path,
    cache_bytes: usize,
) -> Result<redb::ReadOnlyDatabase, OpenError> {
    if !path.exists() {
        return Err(OpenError::Missing {
            path: path.to_path_buf(),
        });
    }
    refuse_non_redb_file(path)?;
    Database::builder()
        .set_cache_size(cache_bytes)
        .open_read_only(path)
        .map_err(|reason| open_error(path, reason))
}

pub(crate) fn corrupt(
    table: &'static str,
    key: impl ToString,
    problem: codec::CodecError,
) -> CorruptRecord {
    CorruptRecord {
        table,
        key: key.to_string(),
        problem,
    }
}

pub(crate) fn decode_log(seq: u64, bytes: &[u8]) -> Result<StoredEvent, CorruptRecord> {
    codec::decode_event(seq, bytes).map_err(|e| corrupt("log", seq, e))
}

/// A snapshot record, or `None` when an older format wrote it (then the log is folded instead).
pub(crate) fn decode_snapshot_or_outdated(
    seq: u64,
    bytes: &[u8],
) -> Result<Option<codec::SnapshotRecord>, CorruptRecord> {
    if codec::is_outdated_snapshot(bytes) {
        return Ok(None);
    }
    codec::decode_snapshot(seq, bytes)
        .map(Some)
        .map_err(|e| corrupt("snapshots", seq, e))
}

/// Says that a corrupt snapshot is skipped (a snapshot is a cache of the log: the state is
/// folded from an earlier snapshot or from the log instead).
fn skip_corrupt_snapshot(corrupt: &CorruptRecord) {
    tracing::warn!(
        table = corrupt.table,
        key = %corrupt.key,
        problem = %corrupt.problem,
        "a projection snapshot is corrupt: skipped; the state is folded from an earlier snapshot \
         or the log instead (the log is the truth). `tidemark verify` lists every corrupt record; \
         `tidemark rebuild` writes the snapshots anew"
    );
}

/// The latest snapshot among `candidates` (keys, latest first) that decodes and from which the
/// local log can be folded (`seq + 1 >= log_start`), skipping corrupt ones with a warning (each
/// is pushed to `skipped`). `None`: fold from position 0 (no snapshot, or only outdated ones).
///
/// With `not_after` (time travel by time, whose candidates come from `snapshot_times`), a
/// snapshot whose own latest event time is later is refused too: its `snapshot_times` entry
/// is wrong, and starting from it would show events after the time asked for.
fn latest_usable_snapshot(
    snapshots: &impl ReadableTable<u64, &'static [u8]>,
    candidates: impl Iterator<Item = Result<u64, ReadFault>>,
    log_start: u64,
    not_after: Option<Timestamp>,
    skipped: &mut Vec<CorruptRecord>,
) -> Result<Option<codec::SnapshotRecord>, ReadFault> {
    for seq in candidates {
        let seq = seq?;
        if seq.saturating_add(1) < log_start {
            break;
        }
        let Some(bytes) = snapshots.get(seq)? else {
            continue;
        };
        match decode_snapshot_or_outdated(seq, bytes.value()) {
            Ok(Some(record))
                if not_after.is_some_and(|t| record.max_time.is_some_and(|max| max > t)) =>
            {
                let corrupt = corrupt(
                    "snapshot_times",
                    seq,
                    codec::CodecError::Inconsistent(
                        "the entry is earlier than the latest event time of its snapshot".into(),
                    ),
                );
                skip_corrupt_snapshot(&corrupt);
                skipped.push(corrupt);
            }
            Ok(Some(record)) => return Ok(Some(record)),
            Ok(None) if log_start > 1 => {
                // Retention cut the log: it cannot be refolded from the start. Resume from the
                // older snapshot if its layout is today's.
                match codec::decode_snapshot_of_same_layout(seq, bytes.value()) {
                    Ok(record)
                        if not_after.is_none_or(|t| record.max_time.is_none_or(|max| max <= t)) =>
                    {
                        tracing::warn!(
                            snapshot = seq,
                            format = bytes.value()[0],
                            first_retained = log_start,
                            "this snapshot was written by an older format and retention cut the \
                             log before it: resuming from it, so events before it keep the \
                             effects the older rules gave them (follow the stream again into a \
                             fresh store for the state under today's rules)"
                        );
                        return Ok(Some(record));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let corrupt = corrupt("snapshots", seq, e);
                        skip_corrupt_snapshot(&corrupt);
                        skipped.push(corrupt);
                    }
                }
            }
            Ok(None) => {}
            Err(corrupt) => {
                skip_corrupt_snapshot(&corrupt);
                skipped.push(corrupt);
            }
        }
    }
    Ok(None)
}

/// The layout version of a store opened read-only; a redb file without Tidemark's `meta` table
/// or layout version is not a store.
pub(crate) fn read_layout(db: &redb::ReadOnlyDatabase, path: &Path) -> Result<i64, OpenError> {
    let not_a_store = || OpenError::NotAStore {
        path: path.to_path_buf(),
        reason: "it is a redb database without Tidemark's tables".into(),
    };
    let txn = db.begin_read()?;
    let meta = match txn.open_table(tables::META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => return Err(not_a_store()),
        Err(e) => return Err(e.into()),
    };
    let format = meta.get(tables::FORMAT)?.map(|v| v.value());
    format.ok_or_else(not_a_store)
}

fn time_from_meta(nanos: Option<i64>) -> Option<Timestamp> {
    nanos.map(Timestamp::from_unix_nanos)
}

/// The checkpoint (an unchecksummed `meta` value) checked against the log: no record after it,
/// and, in an embedded store (positions without gaps, nothing dropped), one record at each
/// position up to it. A flipped checkpoint would otherwise show the state at another point.
pub(crate) fn check_checkpoint(
    log: &impl ReadableTable<u64, &'static [u8]>,
    checkpoint: u64,
    positions_may_have_gaps: bool,
) -> Result<(), ReadFault> {
    let last = log.last()?.map_or(0, |(k, _)| k.value());
    let records = log.len()?;
    let problem = if last > checkpoint {
        format!("the log holds position {last}, after the checkpoint")
    } else if !positions_may_have_gaps && (last != checkpoint || records != checkpoint) {
        format!("the log holds {records} record(s) up to position {last}")
    } else {
        return Ok(());
    };
    Err(corrupt(
        "meta",
        format!("{} = {checkpoint}", tables::CHECKPOINT),
        codec::CodecError::Inconsistent(problem),
    )
    .into())
}

/// Folds the stored log positions `range` into `findings`.
fn replay_range(
    log: &impl ReadableTable<u64, &'static [u8]>,
    range: RangeInclusive<u64>,
    projections: &mut Projections,
    mut stop_after: impl FnMut(&Event) -> bool,
) -> Result<u64, ReadFault> {
    let mut applied = 0;
    for entry in log.range(range)? {
        let (key, value) = entry?;
        let seq = key.value();
        let stored = decode_log(seq, value.value())?;
        if stop_after(&stored.event) {
            break;
        }
        projections.apply(seq, &stored.event);
        applied += 1;
    }
    Ok(applied)
}

impl Store {
    /// Opens (or creates, when `path` does not exist) the store at `path` for reading and
    /// writing, and restores the live state. An existing file that is not a store (an empty
    /// file included) is refused ([`OpenError::NotAStore`]); a file left by a process killed
    /// while writing is recovered to its last commit by redb.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let db = open_database(&path, config.cache_bytes)?;
        // Create every table, and the layout version, on first open.
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            let format = meta.get(tables::FORMAT)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert(tables::FORMAT, tables::STORE_FORMAT)?;
                }
                Some(found) if found > tables::STORE_FORMAT => {
                    return Err(OpenError::NewerLayout {
                        found,
                        expected: tables::STORE_FORMAT,
                    });
                }
                Some(_) => {}
            }
            txn.open_table(tables::LOG)?;
            txn.open_table(tables::IDS)?;
            txn.open_table(tables::BY_FINDING)?;
            txn.open_table(tables::BY_CLUSTER_TIME)?;
            txn.open_table(tables::BY_INCIDENT)?;
            txn.open_table(tables::BY_TYPE)?;
            txn.open_table(tables::SNAPSHOTS)?;
            txn.open_table(tables::SNAPSHOT_TIMES)?;
            let records = txn.open_table(tables::QUARANTINE)?;
            txn.open_table(tables::QUARANTINE_DIGESTS)?;
            txn.open_table(tables::QUARANTINE_REPEATS)?;
            if meta.get(tables::QUARANTINE_BYTES)?.is_none() {
                // A store from before the bound: count its records' bytes once.
                let bytes = quarantine::count_bytes(&records)?;
                meta.insert(tables::QUARANTINE_BYTES, bytes as i64)?;
            }
        }
        txn.commit()?;
        let state = Self::load_state(db.begin_read()?)?;
        tracing::info!(path = %path.display(), checkpoint = state.last_seq, snapshot = state.snapshot_seq, "store opened");
        Ok(Self::with_handle(Handle::Write(db), path, config, state))
    }

    /// Opens an existing store read-only and restores the live state: not a byte of the file is
    /// written (it may be read-only itself), no table is created, and the write operations
    /// answer `ReadOnly`. The read commands open stores this way.
    ///
    /// Refused: a missing file ([`OpenError::Missing`]); a file that is not a Tidemark store
    /// ([`OpenError::NotAStore`]: empty, not redb, or redb without Tidemark's tables); a store
    /// held by a writing process ([`OpenError::AlreadyOpen`]); a store that needs recovery
    /// because a process was killed while writing it ([`OpenError::NeedsRecovery`]: redb
    /// recovers it on the next read-write open, `tidemark repair`).
    pub fn open_read_only(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let db = open_database_read_only(&path, config.cache_bytes)?;
        let format = read_layout(&db, &path)?;
        if format > tables::STORE_FORMAT {
            return Err(OpenError::NewerLayout {
                found: format,
                expected: tables::STORE_FORMAT,
            });
        }
        let state = Self::load_state(db.begin_read()?)?;
        tracing::debug!(path = %path.display(), checkpoint = state.last_seq, snapshot = state.snapshot_seq, "store opened read-only");
        Ok(Self::with_handle(Handle::Read(db), path, config, state))
    }

    fn with_handle(db: Handle, path: PathBuf, config: StoreConfig, state: LiveState) -> Self {
        Self {
            read_only: matches!(db, Handle::Read(_)),
            db: RwLock::new(Some(db)),
            path,
            config,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            write_block: Mutex::new(None),
            quarantine_drop_log: Mutex::new(DropLog::default()),
        }
    }

    /// Whether the store was opened read-only ([`Store::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The refusal of every write operation of a read-only store.
    fn refuse_if_read_only(&self) -> Result<(), ReadOnlyStore> {
        if self.read_only {
            return Err(ReadOnlyStore {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Projection snapshots found corrupt and skipped when the live state was restored (it was
    /// folded from an earlier snapshot or the log instead).
    pub fn skipped_snapshots(&self) -> Vec<CorruptRecord> {
        self.read_state().skipped_snapshots.clone()
    }

    /// The open database, shared. Never call while holding another `DbRef` (a queued reopen
    /// would deadlock a second shared lock), and never wait for `state` while holding one.
    fn db(&self) -> Result<DbRef<'_>, StorageFault> {
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(StorageFault(redb::Error::DatabaseClosed));
        }
        Ok(DbRef(guard))
    }

    /// Closes and reopens the database after a failed write (redb refuses every operation
    /// with `PreviousIo` after an I/O error until the file is reopened; reopening repairs it
    /// back to the last commit), then reloads the live state from that commit. Called with the
    /// writer and state locks held.
    fn reopen(&self, state: &mut LiveState) -> Result<(), OpenError> {
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        // The old handle holds the file lock: close it before opening again.
        *slot = None;
        let db = open_database(&self.path, self.config.cache_bytes)?;
        *state = Self::load_state(db.begin_read()?)?;
        *slot = Some(Handle::Write(db));
        tracing::info!(path = %self.path.display(), checkpoint = state.last_seq, "store reopened after a write error");
        Ok(())
    }

    /// Why writes are refused now, if they are: the disk (or the file size limit) was full at
    /// the last try. Reads answer from the last committed state meanwhile.
    pub fn disk_full(&self) -> Option<DiskFull> {
        self.write_block
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|block| block.status.clone())
    }

    /// Restores the live state: the latest usable snapshot, then the log after it up to the
    /// checkpoint. A corrupt snapshot is skipped with a warning (an earlier one, or the log
    /// from its start, is folded instead); a corrupt log record is an error.
    fn load_state(txn: redb::ReadTransaction) -> Result<LiveState, OpenError> {
        let meta = txn.open_table(tables::META)?;
        let checkpoint = meta.get(tables::CHECKPOINT)?.map_or(0, |v| v.value()) as u64;
        let max_time = time_from_meta(meta.get(tables::MAX_TIME)?.map(|v| v.value()));
        let from_stream =
            meta.get(tables::LOG_SOURCE)?.map(|v| v.value()) == Some(tables::LOG_FROM_STREAM);
        let log_start = meta.get(tables::LOG_START)?.map_or(1, |v| v.value()) as u64;
        let snapshots = txn.open_table(tables::SNAPSHOTS)?;
        let mut skipped_snapshots = Vec::new();
        let candidates = snapshots
            .range(..=checkpoint)?
            .rev()
            .map(|entry| Ok(entry?.0.value()));
        let restored = latest_usable_snapshot(
            &snapshots,
            candidates,
            log_start,
            None,
            &mut skipped_snapshots,
        )?;
        let (snapshot_seq, mut projections) = match restored {
            Some(record) => (record.seq, Projections::restore_owned(record.projections)),
            None if log_start > 1 => {
                return Err(OpenError::NoUsableSnapshot {
                    first_retained: log_start,
                });
            }
            None => {
                if !snapshots.is_empty()? && skipped_snapshots.is_empty() {
                    tracing::info!(
                        "projection snapshots were written by an older format: folding the whole log"
                    );
                }
                (0, Projections::new())
            }
        };
        let log = txn.open_table(tables::LOG)?;
        check_checkpoint(&log, checkpoint, from_stream || log_start > 1)?;
        replay_range(
            &log,
            snapshot_seq + 1..=checkpoint,
            &mut projections,
            |_| false,
        )?;
        let quarantine = QuarantineTally::load(&txn)?;
        Ok(LiveState {
            projections,
            last_seq: checkpoint,
            max_time,
            snapshot_seq,
            quarantine,
            from_stream,
            log_start,
            skipped_snapshots,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_state(&self) -> RwLockReadGuard<'_, LiveState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last applied log position.
    pub fn checkpoint(&self) -> u64 {
        self.read_state().last_seq
    }

    /// Appends a batch in one transaction and applies it to the projections; each new event
    /// takes the next position after the checkpoint.
    ///
    /// Events whose id is already stored (or repeated within the batch) are not stored again;
    /// rejected inputs go to quarantine. On error nothing of the batch is stored and the live
    /// state is as before.
    pub fn append(
        &self,
        inputs: &[Input],
        recorded_at: Timestamp,
    ) -> Result<Vec<Outcome>, AppendError> {
        self.append_with(inputs.iter().map(|input| (None, input)), recorded_at)
    }

    /// Appends a batch whose positions are given: the follower of a JetStream stream stores each
    /// event at its stream sequence. Positions must be increasing and after the checkpoint; the
    /// checkpoint becomes the last one, whether that item was stored, a duplicate or rejected,
    /// so positions may have gaps.
    pub fn append_positioned(
        &self,
        items: &[(u64, Input)],
        recorded_at: Timestamp,
    ) -> Result<Vec<Outcome>, AppendError> {
        self.append_with(
            items
                .iter()
                .map(|(position, input)| (Some(*position), input)),
            recorded_at,
        )
    }

    /// Keeps rejected inputs in quarantine without taking a log position or moving the
    /// checkpoint: how a replica keeps what its own API refused (its log positions are its
    /// stream's sequences, which only the follower writes). The records are written by the same
    /// code as `append`'s, in one transaction. Events are refused with
    /// [`AppendError::EventNotRejected`] before anything is written: they belong in the log.
    pub fn quarantine_rejected(
        &self,
        rejected: &[Input],
        recorded_at: Timestamp,
    ) -> Result<Vec<Outcome>, AppendError> {
        if let Some(Input::Event(event)) = rejected.iter().find(|i| matches!(i, Input::Event(_))) {
            return Err(AppendError::EventNotRejected {
                id: event.id.0.clone(),
            });
        }
        // Without positions and without events, `append` writes quarantine records only: the
        // checkpoint and the log stay as they are.
        self.append(rejected, recorded_at)
    }

    fn append_with<'a>(
        &self,
        items: impl Iterator<Item = (Option<u64>, &'a Input)>,
        recorded_at: Timestamp,
    ) -> Result<Vec<Outcome>, AppendError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(refusal) = self.refusal_while_disk_full() {
            return Err(refusal);
        }
        let closed = self.db.read().unwrap_or_else(|p| p.into_inner()).is_none();
        if closed {
            // An earlier reopen failed: try again before writing.
            self.reopen(&mut state).map_err(AppendError::Reopen)?;
        }
        let before = (
            state.last_seq,
            state.max_time,
            state.snapshot_seq,
            state.quarantine,
        );
        let result = self.append_in_txn(&mut state, items, recorded_at);
        match result {
            Ok(outcomes) => {
                self.log_quarantine_drops(state.quarantine.dropped - before.3.dropped);
                let mut block = self.write_block.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(ended) = block.take() {
                    tracing::info!(
                        checkpoint = state.last_seq,
                        refused_batches = ended.status.refused_batches,
                        "writes resumed: the store has space again"
                    );
                }
                Ok(outcomes)
            }
            Err(AppendError::Storage(fault)) => {
                // redb answers every later operation with `PreviousIo` after an I/O error, and
                // the projection may hold part of the batch: reopen, reload from the last commit.
                if let Err(error) = self.reopen(&mut state) {
                    tracing::error!(%error, "could not reopen the store after a write error; the next write tries again");
                }
                if fault.is_disk_full() {
                    Err(self.block_writes(&fault, state.last_seq))
                } else {
                    Err(AppendError::Storage(fault))
                }
            }
            Err(error) => {
                if (
                    state.last_seq,
                    state.max_time,
                    state.snapshot_seq,
                    state.quarantine,
                ) != before
                {
                    // The projection already saw part of a batch that did not commit: restore it.
                    match self
                        .db()
                        .map_err(OpenError::from)
                        .and_then(|db| Self::load_state(db.begin_read()?))
                    {
                        Ok(reloaded) => *state = reloaded,
                        Err(e) => {
                            tracing::error!(error = %e, "could not reload the state after a failed append")
                        }
                    }
                }
                Err(error)
            }
        }
    }

    /// Warns (at most once a minute) that refused inputs were not kept: the quarantine is full.
    fn log_quarantine_drops(&self, dropped_now: u64) {
        let mut log = self
            .quarantine_drop_log
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(dropped) = log.note(dropped_now, Instant::now()) {
            let limits = self.config.quarantine;
            tracing::warn!(
                dropped,
                max_records = limits.max_records,
                max_bytes = limits.max_bytes,
                "the quarantine is full: refused inputs were answered with their reason but their raw bytes were not kept (counted in `tidemark stats` and tidemark_quarantine_dropped_total); see docs/runbooks/quarantine-growing.md"
            );
        }
    }

    /// The refusal answered while writes are paused for lack of space (until the next try).
    fn refusal_while_disk_full(&self) -> Option<AppendError> {
        let mut block = self.write_block.lock().unwrap_or_else(|p| p.into_inner());
        let block = block.as_mut()?;
        let now = Instant::now();
        if now >= block.retry_at {
            return None;
        }
        block.status.refused_batches += 1;
        Some(AppendError::DiskFull {
            path: self.path.clone(),
            detail: block.status.detail.clone(),
            retry_after: block.retry_at - now,
        })
    }

    /// Records that a batch failed for lack of space, and the error to answer.
    fn block_writes(&self, fault: &StorageFault, checkpoint: u64) -> AppendError {
        let detail = fault.to_string();
        let retry_after = self.config.disk_full_retry;
        let mut block = self.write_block.lock().unwrap_or_else(|p| p.into_inner());
        let refused_batches = block.as_ref().map_or(0, |b| b.status.refused_batches) + 1;
        if block.is_none() {
            tracing::error!(path = %self.path.display(), %detail, checkpoint, "disk full: ingest stopped; reads continue from the last commit; writes resume when there is space");
        }
        *block = Some(WriteBlock {
            status: DiskFull {
                detail: detail.clone(),
                refused_batches,
                checkpoint,
            },
            retry_at: Instant::now() + retry_after,
        });
        AppendError::DiskFull {
            path: self.path.clone(),
            detail,
            retry_after,
        }
    }

    fn append_in_txn<'a>(
        &self,
        state: &mut LiveState,
        items: impl Iterator<Item = (Option<u64>, &'a Input)>,
        recorded_at: Timestamp,
    ) -> Result<Vec<Outcome>, AppendError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        let mut outcomes = Vec::with_capacity(items.size_hint().0);
        {
            let mut log = txn.open_table(tables::LOG)?;
            let mut ids = txn.open_table(tables::IDS)?;
            let mut by_finding = txn.open_table(tables::BY_FINDING)?;
            let mut by_cluster_time = txn.open_table(tables::BY_CLUSTER_TIME)?;
            let mut by_incident = txn.open_table(tables::BY_INCIDENT)?;
            let mut by_type = txn.open_table(tables::BY_TYPE)?;
            let mut quarantine = QuarantineTables::open(&txn)?;
            let mut record = Vec::with_capacity(4096);
            let mut finding_bits: BTreeMap<String, u8> = BTreeMap::new();
            for (position, input) in items {
                state.from_stream |= position.is_some();
                if let Some(position) = position
                    && position <= state.last_seq
                {
                    return Err(AppendError::PositionNotAfterCheckpoint {
                        position,
                        checkpoint: state.last_seq,
                    });
                }
                match input {
                    Input::Event(event) => {
                        if let Some(seq) = ids.get(event.id.as_str())? {
                            outcomes.push(Outcome::Duplicate { seq: seq.value() });
                            if let Some(position) = position {
                                state.last_seq = position;
                            }
                            continue;
                        }
                        let seq = position.unwrap_or(state.last_seq + 1);
                        codec::encode_event(seq, event, recorded_at, &mut record);
                        log.insert(seq, record.as_slice())?;
                        ids.insert(event.id.as_str(), seq)?;
                        let changes = state.projections.apply(seq, event);
                        index_event(
                            seq,
                            event,
                            changes,
                            &mut finding_bits,
                            &mut by_finding,
                            &mut by_cluster_time,
                            &mut by_incident,
                            &mut by_type,
                        )?;
                        state.last_seq = seq;
                        state.max_time =
                            Some(state.max_time.map_or(event.time, |t| t.max(event.time)));
                        outcomes.push(Outcome::Accepted { seq });
                    }
                    Input::Rejected {
                        raw,
                        reason,
                        origin,
                    } => {
                        let outcome = quarantine::keep(
                            &mut quarantine,
                            &mut state.quarantine,
                            &self.config.quarantine,
                            (raw, reason, origin),
                            recorded_at,
                        )?;
                        if let Some(position) = position {
                            state.last_seq = position;
                        }
                        outcomes.push(outcome);
                    }
                }
            }
        }
        self.write_checkpoint(&txn, state)?;
        if state.last_seq - state.snapshot_seq >= self.config.snapshot_every {
            self.write_snapshot(&txn, state)?;
        }
        txn.commit()?;
        Ok(outcomes)
    }

    fn write_checkpoint(
        &self,
        txn: &WriteTransaction,
        state: &LiveState,
    ) -> Result<(), StorageFault> {
        let mut meta = txn.open_table(tables::META)?;
        meta.insert(tables::CHECKPOINT, state.last_seq as i64)?;
        if let Some(max_time) = state.max_time {
            meta.insert(tables::MAX_TIME, max_time.unix_nanos())?;
        }
        if state.from_stream {
            meta.insert(tables::LOG_SOURCE, tables::LOG_FROM_STREAM)?;
        }
        state.quarantine.write(&mut meta)?;
        Ok(())
    }

    /// Writes a snapshot of `state` at its position, thinning older ones to one per
    /// `snapshot_keep_every` positions.
    fn write_snapshot(
        &self,
        txn: &WriteTransaction,
        state: &mut LiveState,
    ) -> Result<(), StorageFault> {
        let seq = state.last_seq;
        let mut snapshots = txn.open_table(tables::SNAPSHOTS)?;
        let mut times = txn.open_table(tables::SNAPSHOT_TIMES)?;
        let previous = snapshots
            .range(..seq)?
            .next_back()
            .transpose()?
            .map(|(k, _)| k.value());
        if let Some(previous) = previous
            && previous / self.config.snapshot_keep_every == seq / self.config.snapshot_keep_every
        {
            snapshots.remove(previous)?;
            times.remove(previous)?;
        }
        let record = codec::encode_snapshot_of(seq, state.max_time, &state.projections);
        snapshots.insert(seq, record.as_slice())?;
        times.insert(seq, state.max_time.map_or(i64::MIN, Timestamp::unix_nanos))?;
        state.snapshot_seq = seq;
        Ok(())
    }

    /// Writes a snapshot if events were applied since the last one, so the next open replays
    /// nothing. Called on graceful shutdown.
    pub fn snapshot_now(&self) -> Result<(), AppendError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.last_seq == state.snapshot_seq {
            return Ok(());
        }
        let db = self.db()?;
        let txn = db.begin_write()?;
        let before = state.snapshot_seq;
        if let Err(e) = self.write_snapshot(&txn, &mut state) {
            state.snapshot_seq = before;
            return Err(e.into());
        }
        if let Err(e) = txn.commit() {
            state.snapshot_seq = before;
            return Err(e.into());
        }
        Ok(())
    }

    /// Writes a consistent copy of the store to `target` (a path that must not exist yet),
    /// while the store keeps serving: every table is copied from ONE read transaction, so the
    /// copy is the store exactly as some commit left it (redb has no online backup of its own).
    /// The copy is made durable, reopened and checked against the source before this returns;
    /// on any error it is removed. `progress(done, total)` counts entries.
    pub fn backup_to(
        &self,
        target: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<BackupInfo, BackupError> {
        let result = (|| {
            let (expected_checkpoint, expected_events) = {
                let db = self.db()?;
                let source = db.begin_read()?;
                let meta = source.open_table(tables::META)?;
                let checkpoint = meta.get(tables::CHECKPOINT)?.map_or(0, |v| v.value()) as u64;
                let events = source.open_table(tables::LOG)?.len()?;
                drop(meta);
                let total = count_entries(&source)?;
                let copy = Database::create(target).map_err(|source| BackupError::NotAStore {
                    path: target.to_path_buf(),
                    source,
                })?;
                let mut done = 0;
                copy_all_tables(&source, &copy, |n| {
                    done += n;
                    progress(done, total);
                })?;
                (checkpoint, events)
            };
            let info = Self::inspect_backup(target)?;
            if (info.checkpoint, info.events) != (expected_checkpoint, expected_events) {
                return Err(BackupError::Mismatch {
                    path: target.to_path_buf(),
                    problem: format!(
                        "checkpoint {} with {} events, expected checkpoint {expected_checkpoint} with {expected_events}",
                        info.checkpoint, info.events
                    ),
                });
            }
            Ok(info)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(target);
        }
        result
    }

    /// Opens a backup (or any store file) read-only and checks it can be restored: a Tidemark
    /// layout this build reads, every snapshot and log record needed to restore its state
    /// decodes, and the state restores. Says what it holds.
    pub fn inspect_backup(path: &Path) -> Result<BackupInfo, BackupError> {
        let db = redb::ReadOnlyDatabase::open(path).map_err(|source| BackupError::NotAStore {
            path: path.to_path_buf(),
            source,
        })?;
        let format = {
            let txn = db.begin_read()?;
            let meta = txn
                .open_table(tables::META)
                .map_err(|_| BackupError::NoLayout {
                    path: path.to_path_buf(),
                })?;
            meta.get(tables::FORMAT)?
                .map(|v| v.value())
                .ok_or_else(|| BackupError::NoLayout {
                    path: path.to_path_buf(),
                })?
        };
        if format > tables::STORE_FORMAT {
            return Err(BackupError::NewerLayout {
                path: path.to_path_buf(),
                found: format,
                expected: tables::STORE_FORMAT,
            });
        }
        let state = Self::load_state(db.begin_read()?).map_err(|e| match e {
            OpenError::Corrupt(c) => BackupError::Corrupt(c),
            OpenError::Storage(s) => BackupError::Storage(s),
            other => BackupError::Mismatch {
                path: path.to_path_buf(),
                problem: other.to_string(),
            },
        })?;
        let txn = db.begin_read()?;
        let events = txn.open_table(tables::LOG)?.len()?;
        let quarantined = txn.open_table(tables::QUARANTINE)?.len()?;
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok(BackupInfo {
            checkpoint: state.last_seq,
            events,
            quarantined,
            snapshot_seq: state.snapshot_seq,
            findings: state.projections.findings().finding_count() as u64,
            format,
            bytes,
        })
    }

    /// Compacts the database file (redb's `compact`: moves pages down and truncates the free
    /// tail), and says the size before and after. Needs the store to itself: no reads or
    /// writes run meanwhile.
    pub fn compact(&self) -> Result<CompactReport, CompactError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let bytes_before = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        self.refuse_if_read_only()?;
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        let Some(Handle::Write(db)) = slot.as_mut() else {
            return Err(StorageFault(redb::Error::DatabaseClosed).into());
        };
        while db.compact()? {}
        drop(slot);
        let bytes_after = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(CompactReport {
            bytes_before,
            bytes_after,
        })
    }

    /// Retention for a replica, whose JetStream stream is the source of truth: drops the local
    /// log's events before the latest durable snapshot at or before `before` (default: the
    /// latest snapshot), with their timeline index entries and the older snapshots. The live
    /// state is unchanged (it restores from that snapshot and the events after it); time travel
    /// before the snapshot answers [`QueryError::BeforeRetainedLog`] and `rebuild` refuses. The
    /// id index is kept whole, so a stream message repeating an old id is still a duplicate.
    /// An embedded store (its own source of truth) refuses.
    pub fn drop_events_before(
        &self,
        before: Option<u64>,
    ) -> Result<RetentionReport, RetentionError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if !state.from_stream {
            return Err(RetentionError::EmbeddedStore);
        }
        let requested = before.unwrap_or(state.last_seq).min(state.last_seq);
        let db = self.db()?;
        let txn = db.begin_write()?;
        let (cut, dropped) = {
            let mut snapshots = txn.open_table(tables::SNAPSHOTS)?;
            // The latest snapshot at or before the position asked for, in the current format.
            let mut cut = None;
            for entry in snapshots.range(..=requested)?.rev() {
                let (key, value) = entry?;
                match decode_snapshot_or_outdated(key.value(), value.value()) {
                    Ok(Some(_)) => {
                        cut = Some(key.value());
                        break;
                    }
                    Ok(None) => {}
                    // Never cut at a snapshot that cannot be restored.
                    Err(corrupt) => skip_corrupt_snapshot(&corrupt),
                }
            }
            let Some(cut) = cut else {
                let earliest = snapshots
                    .first()?
                    .map_or_else(|| "none".to_owned(), |(k, _)| k.value().to_string());
                return Err(RetentionError::NoSnapshot {
                    requested,
                    earliest,
                });
            };
            if cut <= state.log_start {
                (state.log_start, 0)
            } else {
                let mut log = txn.open_table(tables::LOG)?;
                let before_len = log.len()?;
                log.retain_in(..cut, |_, _| false)?;
                let dropped = before_len - log.len()?;
                snapshots.retain_in(..cut, |_, _| false)?;
                txn.open_table(tables::SNAPSHOT_TIMES)?
                    .retain_in(..cut, |_, _| false)?;
                txn.open_table(tables::BY_FINDING)?
                    .retain(|(_, _, seq), _| seq >= cut)?;
                txn.open_table(tables::BY_CLUSTER_TIME)?
                    .retain(|(_, _, seq), _| seq >= cut)?;
                txn.open_table(tables::BY_INCIDENT)?
                    .retain(|(_, seq), _| seq >= cut)?;
                txn.open_table(tables::BY_TYPE)?
                    .retain(|(_, seq), _| seq >= cut)?;
                txn.open_table(tables::META)?
                    .insert(tables::LOG_START, cut as i64)?;
                (cut, dropped)
            }
        };
        txn.commit()?;
        state.log_start = cut;
        tracing::info!(
            dropped,
            first_retained = cut,
            "retention dropped old events from the local log"
        );
        Ok(RetentionReport {
            dropped_events: dropped,
            first_retained: cut,
        })
    }

    /// Every finding now, sorted by (cluster, check_key).
    pub fn findings(&self) -> Vec<FindingView> {
        self.read_state().projections.findings().views()
    }

    /// One finding now.
    pub fn finding(&self, cluster: &str, check_key: &str) -> Option<FindingView> {
        self.read_state()
            .projections
            .findings()
            .view(cluster, check_key)
    }

    /// The serializable projection state now.
    pub fn projection_snapshot(&self) -> ProjectionsSnapshot {
        self.read_state().projections.snapshot()
    }

    /// Reads the live projections (a read lock is held while `read` runs: keep it short).
    pub fn read<R>(&self, read: impl FnOnce(&Projections) -> R) -> R {
        read(&self.read_state().projections)
    }

    /// Reads the projections now (`None`) or rebuilt at a point of the log, with the log
    /// position they reflect (read under the same lock as the live projections, so the two agree).
    pub fn read_at<R>(
        &self,
        at: Option<At>,
        read: impl FnOnce(&Projections) -> R,
    ) -> Result<(R, u64), QueryError> {
        self.read_with_events(at, |_| Vec::new(), |p, _, seq| (read(p), seq))
    }

    /// Like [`Store::read_at`], and hands `render` the stored events at the positions
    /// `positions` names, all from one consistent view: while the live state is read no batch
    /// can commit (writers hold the state lock across their commit), so the events the
    /// projections point at are all there.
    pub fn read_with_events<R>(
        &self,
        at: Option<At>,
        positions: impl FnOnce(&Projections) -> Vec<u64>,
        render: impl FnOnce(&Projections, &[(u64, Event)], u64) -> R,
    ) -> Result<R, QueryError> {
        let events_of = |positions: Vec<u64>| -> Result<Vec<(u64, Event)>, QueryError> {
            if positions.is_empty() {
                return Ok(Vec::new());
            }
            Ok(self
                .events_at(&positions)?
                .into_iter()
                .map(|(seq, stored)| (seq, stored.event))
                .collect())
        };
        match at {
            None => {
                let state = self.read_state();
                let events = events_of(positions(&state.projections))?;
                Ok(render(&state.projections, &events, state.last_seq))
            }
            Some(at) => {
                let (projections, seq) = self.projection_at(at)?;
                let events = events_of(positions(&projections))?;
                Ok(render(&projections, &events, seq))
            }
        }
    }

    /// The findings projection at a point of the log, rebuilt from the nearest snapshot before
    /// it and the log after that snapshot.
    pub fn projection_at(&self, at: At) -> Result<(Projections, u64), QueryError> {
        let (checkpoint, log_start) = {
            let state = self.read_state();
            (state.last_seq, state.log_start)
        };
        if let At::Seq(seq) = at
            && log_start > 1
            && seq < log_start
        {
            return Err(QueryError::BeforeRetainedLog {
                requested: format!("position {seq}"),
                first_retained: log_start,
            });
        }
        let db = self.db()?;
        let txn = db.begin_read()?;
        let snapshots = txn.open_table(tables::SNAPSHOTS)?;
        let times = txn.open_table(tables::SNAPSHOT_TIMES)?;
        // The latest snapshot that is a valid starting point and reads back (corrupt ones are
        // skipped with a warning: an earlier one, or the log from its start, is folded instead).
        let candidates: Box<dyn Iterator<Item = Result<u64, ReadFault>>> =
            match at {
                At::Seq(seq) => Box::new(
                    snapshots
                        .range(..=seq.min(checkpoint))?
                        .rev()
                        .map(|entry| Ok(entry?.0.value())),
                ),
                At::Time(t) => Box::new(times.range(..=checkpoint)?.rev().filter_map(
                    move |entry| match entry {
                        Ok((k, v)) => (v.value() <= t.unix_nanos()).then(|| Ok(k.value())),
                        Err(e) => Some(Err(e.into())),
                    },
                )),
            };
        let mut skipped = Vec::new();
        let not_after = match at {
            At::Seq(_) => None,
            At::Time(t) => Some(t),
        };
        let restored =
            latest_usable_snapshot(&snapshots, candidates, log_start, not_after, &mut skipped)?;
        if restored.is_none() && log_start > 1 && !skipped.is_empty() {
            return Err(QueryError::NoUsableSnapshot {
                first_retained: log_start,
            });
        }
        if restored.is_none() && log_start > 1 {
            // No snapshot in the retained range is early enough (or readable) for this point.
            return Err(QueryError::BeforeRetainedLog {
                requested: match at {
                    At::Seq(seq) => format!("position {seq}"),
                    At::Time(t) => format!("time {t}"),
                },
                first_retained: log_start,
            });
        }
        let (start, mut findings) = match restored {
            Some(record) => (record.seq, Projections::restore_owned(record.projections)),
            None => (0, Projections::new()),
        };
        let from = start + 1;
        let log = txn.open_table(tables::LOG)?;
        let to = match at {
            At::Seq(seq) => {
                let to = seq.min(checkpoint);
                replay_range(&log, from..=to, &mut findings, |_| false)?;
                to
            }
            At::Time(t) => {
                from - 1 + replay_range(&log, from..=checkpoint, &mut findings, |e| e.time > t)?
            }
        };
        Ok((findings, to))
    }

    /// Every finding at a point of the log, and the position that point is.
    pub fn findings_at(&self, at: At) -> Result<(Vec<FindingView>, u64), QueryError> {
        let (projections, seq) = self.projection_at(at)?;
        Ok((projections.findings().views(), seq))
    }

    /// The events that changed or named a finding, in log order.
    pub fn finding_timeline(
        &self,
        cluster: &str,
        check_key: &str,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        self.finding_timeline_range(cluster, check_key, 0, u64::MAX, usize::MAX)
    }

    fn finding_timeline_range(
        &self,
        cluster: &str,
        check_key: &str,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        let mut raw = Vec::new();
        {
            let db = self.db()?;
            let txn = db.begin_read()?;
            let index = txn.open_table(tables::BY_FINDING)?;
            let log = txn.open_table(tables::LOG)?;
            for entry in index
                .range((cluster, check_key, after + 1)..=(cluster, check_key, up_to))?
                .take(limit)
            {
                let (key, bits) = entry?;
                let seq = key.value().2;
                raw.push((seq, bits.value(), self.read_log(&log, seq)?));
            }
        }
        // Which detector started or stopped at a FLAP entry: read from the projection once,
        // only for a timeline that has one, and after the database is let go (lock order).
        let mut episodes: Option<Vec<tidemark_core::flaps::FlapEpisode>> = None;
        let mut entries = Vec::with_capacity(raw.len());
        for (seq, bits, stored) in raw {
            let mut changes = change_bits::names(bits);
            if bits & change_bits::FLAP != 0 {
                changes.retain(|name| *name != "flap");
                let episodes = episodes.get_or_insert_with(|| {
                    self.read(|p| p.findings().flap_episodes(cluster, check_key).to_vec())
                });
                for episode in episodes.iter() {
                    if episode.started_seq == seq {
                        changes.push(FindingChange::FlapStarted(episode.detector).as_str());
                    }
                    if episode.stopped_seq == Some(seq) {
                        changes.push(FindingChange::FlapStopped(episode.detector).as_str());
                    }
                }
            }
            entries.push(TimelineEntry {
                seq,
                recorded_at: stored.recorded_at,
                changes,
                event: stored.event,
            });
        }
        Ok(entries)
    }

    /// A page of a finding's timeline: entries after position `after` and at or before
    /// `up_to`, at most `limit`; and the `after` of the next page.
    pub fn finding_timeline_page(
        &self,
        cluster: &str,
        check_key: &str,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<(Vec<TimelineEntry>, Option<u64>), QueryError> {
        let mut entries =
            self.finding_timeline_range(cluster, check_key, after, up_to, limit + 1)?;
        let next = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok((entries, next))
    }

    /// A cluster's events by event time (ties in log order), within `[since, until]`, at most
    /// `limit`.
    pub fn cluster_timeline(
        &self,
        cluster: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        Ok(self
            .cluster_timeline_page(cluster, since, until, None, limit)?
            .entries)
    }

    /// A page of a cluster's events by event time (ties in log order), within `[since, until]`,
    /// after the entry at `after` (its event time and position) when given, at most `limit`;
    /// and the `after` of the next page, `None` when there are no more. The order is the index
    /// order (time, position), so each event is on exactly one page.
    pub fn cluster_timeline_page(
        &self,
        cluster: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        after: Option<(Timestamp, u64)>,
        limit: usize,
    ) -> Result<ClusterTimelinePage, QueryError> {
        use std::ops::Bound;
        let first = (since.map_or(i64::MIN, Timestamp::unix_nanos), 0);
        let last = (until.map_or(i64::MAX, Timestamp::unix_nanos), u64::MAX);
        let start = match after.map(|(t, seq)| (t.unix_nanos(), seq)) {
            Some(after) if after >= first => Bound::Excluded(after),
            _ => Bound::Included(first),
        };
        let empty = match start {
            Bound::Excluded(after) => after >= last,
            _ => first > last,
        };
        if empty {
            return Ok(ClusterTimelinePage {
                entries: Vec::new(),
                next: None,
            });
        }
        let start = match start {
            Bound::Excluded((t, seq)) => Bound::Excluded((cluster, t, seq)),
            Bound::Included((t, seq)) => Bound::Included((cluster, t, seq)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let db = self.db()?;
        let txn = db.begin_read()?;
        let index = txn.open_table(tables::BY_CLUSTER_TIME)?;
        let log = txn.open_table(tables::LOG)?;
        let mut entries = Vec::new();
        let mut more = false;
        for entry in
            index.range::<(&str, i64, u64)>((start, Bound::Included((cluster, last.0, last.1))))?
        {
            if entries.len() == limit {
                more = true;
                break;
            }
            let (key, _) = entry?;
            let seq = key.value().2;
            let stored = self.read_log(&log, seq)?;
            entries.push(TimelineEntry {
                seq,
                recorded_at: stored.recorded_at,
                changes: vec![],
                event: stored.event,
            });
        }
        let next = if more {
            entries.last().map(|e| (e.event.time, e.seq))
        } else {
            None
        };
        Ok(ClusterTimelinePage { entries, next })
    }

    fn read_log(
        &self,
        log: &impl ReadableTable<u64, &'static [u8]>,
        seq: u64,
    ) -> Result<StoredEvent, QueryError> {
        let bytes = log.get(seq)?.ok_or_else(|| {
            corrupt(
                "log",
                seq,
                codec::CodecError::Postcard("indexed position missing from the log".into()),
            )
        })?;
        Ok(decode_log(seq, bytes.value())?)
    }

    /// Stored events at positions `from..`, at most `limit`, in log order.
    pub fn events(&self, from: u64, limit: usize) -> Result<Vec<(u64, StoredEvent)>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let mut out = Vec::new();
        for entry in log.range(from..)?.take(limit) {
            let (key, value) = entry?;
            out.push((key.value(), decode_log(key.value(), value.value())?));
        }
        Ok(out)
    }

    /// Events after position `after` matching `filter`, in log order, at most `limit`, up to the
    /// checkpoint as of the call. Candidates come from the incident timeline, the finding index
    /// (one range per cluster, merged in position order) or the type index when the filter names
    /// one, else from the log; at most [`StoreConfig::events_scan_budget`] candidates are read per
    /// call. The candidates are the first ones after `after` in position order, so `next` is a
    /// position with nothing matching left behind it: a budget may end a page early, never make
    /// the cursor skip.
    pub fn events_page(
        &self,
        filter: &EventFilter,
        after: u64,
        limit: usize,
    ) -> Result<EventsPage, QueryError> {
        let limit = limit.max(1);
        let budget = self.config.events_scan_budget.max(1);
        // What the live state names, with the checkpoint it is at; read before the database (the
        // lock order is state, db). Reading no further than that checkpoint keeps a cluster that
        // a later batch adds from being passed over while its positions are read.
        let (up_to, incident_seqs, finding_clusters) = {
            let state = self.read_state();
            let p = &state.projections;
            let incident_seqs = filter.incident.as_ref().map(|id| {
                p.incidents()
                    .incident(id)
                    .map(|i| {
                        let start = i.timeline.partition_point(|e| e.seq <= after);
                        i.timeline[start..]
                            .iter()
                            .map(|e| e.seq)
                            .take(budget.saturating_add(1))
                            .collect::<Vec<u64>>()
                    })
                    .unwrap_or_default()
            });
            let finding_clusters: Vec<String> = match (&filter.check_key, &filter.cluster) {
                (None, _) => Vec::new(),
                (Some(_), Some(c)) => vec![c.clone()],
                (Some(_), None) => p.findings().cluster_names(),
            };
            (state.last_seq, incident_seqs, finding_clusters)
        };
        if after >= up_to {
            return Ok(EventsPage {
                events: Vec::new(),
                next: None,
                scan_budget_reached: false,
            });
        }
        let from = after + 1;
        let take = budget.saturating_add(1);
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        // Candidate positions, ascending, from the most selective source the filter names: the
        // first `budget + 1` of them (the extra one says whether more follow).
        let mut candidates: Vec<u64> = if let Some(seqs) = incident_seqs {
            seqs
        } else if let Some(check_key) = &filter.check_key {
            let index = txn.open_table(tables::BY_FINDING)?;
            merged_finding_positions(&index, &finding_clusters, check_key, from..=up_to, take)?
        } else if let Some(event_type) = filter.event_type {
            let index = txn.open_table(tables::BY_TYPE)?;
            index
                .range((event_type.as_str(), from)..=(event_type.as_str(), up_to))?
                .take(take)
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?
        } else {
            log.range(from..=up_to)?
                .take(take)
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?
        };
        debug_assert!(
            candidates.is_sorted(),
            "candidates are read in position order"
        );
        let complete = candidates.len() <= budget;
        candidates.truncate(budget);
        let mut events = Vec::new();
        let mut last_read = after;
        for seq in candidates {
            if events.len() == limit {
                // Full: the next page starts after the last event on this one.
                return Ok(EventsPage {
                    events,
                    next: Some(last_read),
                    scan_budget_reached: false,
                });
            }
            last_read = seq;
            let Some(bytes) = log.get(seq)? else { continue };
            let stored = decode_log(seq, bytes.value())?;
            let e = &stored.event;
            let keep = filter.cluster.as_ref().is_none_or(|c| *c == e.cluster)
                && filter.event_type.is_none_or(|t| t == e.event_type())
                && filter.since.is_none_or(|t| e.time >= t)
                && filter.until.is_none_or(|t| e.time <= t)
                && filter.source.as_ref().is_none_or(|s| *s == e.source);
            if keep {
                events.push((seq, stored));
            }
        }
        // Every candidate read: the end, or (budget spent) go on after the last one read.
        Ok(EventsPage {
            events,
            next: (!complete).then_some(last_read),
            scan_budget_reached: !complete,
        })
    }

    /// The stored events at these positions, in the order given (positions not in the log
    /// are skipped).
    pub fn events_at(&self, positions: &[u64]) -> Result<Vec<(u64, StoredEvent)>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let mut out = Vec::with_capacity(positions.len());
        for &seq in positions {
            if let Some(bytes) = log.get(seq)? {
                out.push((seq, decode_log(seq, bytes.value())?));
            }
        }
        Ok(out)
    }

    /// The position of the event stored with `id`.
    pub fn position_of(&self, id: &str) -> Result<Option<u64>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let ids = txn.open_table(tables::IDS)?;
        Ok(ids.get(id)?.map(|v| v.value()))
    }

    /// The last event in the log at or before `position` (its position and id): what a follower
    /// checks the stream against after a reconnect.
    pub fn last_logged(&self, at_or_before: u64) -> Result<Option<(u64, String)>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let Some(entry) = log.range(..=at_or_before)?.next_back() else {
            return Ok(None);
        };
        let (key, value) = entry?;
        let stored = decode_log(key.value(), value.value())?;
        Ok(Some((key.value(), stored.event.id.0)))
    }

    /// Quarantined inputs from id `from`, at most `limit`, each with how often it was refused.
    pub fn quarantine(&self, from: u64, limit: usize) -> Result<Vec<QuarantineEntry>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(tables::QUARANTINE)?;
        let repeats = match txn.open_table(tables::QUARANTINE_REPEATS) {
            Ok(repeats) => Some(repeats),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(StorageFault::from(e).into()),
        };
        let mut out = Vec::new();
        for entry in table.range(from..)?.take(limit) {
            let (key, value) = entry?;
            let id = key.value();
            let record = codec::decode_quarantine(id, value.value())
                .map_err(|e| corrupt("quarantine", id, e))?;
            let (count, last_seen) =
                quarantine::repeats_of(repeats.as_ref(), id, record.recorded_at)?;
            out.push(QuarantineEntry {
                id,
                record: QuarantineView {
                    recorded_at: record.recorded_at,
                    origin: record.origin,
                    reason: record.reason,
                    raw: String::from_utf8_lossy(&record.raw).into_owned(),
                    raw_bytes: record.raw.len(),
                    count,
                    last_seen,
                },
            });
        }
        Ok(out)
    }

    /// Figures about the store.
    pub fn stats(&self) -> Result<Stats, QueryError> {
        let (checkpoint, snapshot_seq, findings, active, quarantine) = {
            let state = self.read_state();
            (
                state.last_seq,
                state.snapshot_seq,
                state.projections.findings().finding_count() as u64,
                state.projections.findings().active_count() as u64,
                state.quarantine,
            )
        };
        let db = self.db()?;
        let txn = db.begin_read()?;
        let events = txn.open_table(tables::LOG)?.len()?;
        let snapshots = txn.open_table(tables::SNAPSHOTS)?.len()?;
        let quarantined = txn.open_table(tables::QUARANTINE)?.len()?;
        let size_on_disk_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Ok(Stats {
            events,
            checkpoint,
            snapshot_seq,
            snapshots,
            quarantined,
            quarantine_bytes: quarantine.bytes,
            quarantine_dropped: quarantine.dropped,
            findings,
            active_findings: active,
            size_on_disk_bytes,
        })
    }

    /// Folds the whole stored log from nothing, without touching the store.
    pub fn fold_log(&self, mut progress: impl FnMut(u64, u64)) -> Result<Projections, QueryError> {
        let (checkpoint, log_start) = {
            let state = self.read_state();
            (state.last_seq, state.log_start)
        };
        if log_start > 1 {
            return Err(QueryError::BeforeRetainedLog {
                requested: "the whole log".into(),
                first_retained: log_start,
            });
        }
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let mut findings = Projections::new();
        let mut done = 0;
        replay_range(&log, 1..=checkpoint, &mut findings, |_| {
            done += 1;
            if done % 65_536 == 0 {
                progress(done, checkpoint);
            }
            false
        })?;
        progress(checkpoint, checkpoint);
        Ok(findings)
    }

    /// Drops every projection snapshot and the finding index, folds the whole log again, and
    /// writes them anew, in one transaction; the live state becomes the rebuilt one.
    pub fn rebuild(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<RebuildReport, RebuildError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.log_start > 1 {
            return Err(RebuildError::LogRetained {
                first_retained: state.log_start,
            });
        }
        let checkpoint = state.last_seq;
        let db = self.db()?;
        let txn = db.begin_write()?;
        txn.delete_table(tables::SNAPSHOTS)?;
        txn.delete_table(tables::SNAPSHOT_TIMES)?;
        txn.delete_table(tables::BY_FINDING)?;
        let mut rebuilt = LiveState {
            projections: Projections::new(),
            last_seq: 0,
            max_time: None,
            snapshot_seq: 0,
            quarantine: state.quarantine,
            from_stream: state.from_stream,
            log_start: 1,
            skipped_snapshots: Vec::new(),
        };
        {
            let log = txn.open_table(tables::LOG)?;
            let mut by_finding = txn.open_table(tables::BY_FINDING)?;
            let mut bits: BTreeMap<String, u8> = BTreeMap::new();
            let entries = log.range(1..=checkpoint).map_err(StorageFault::from)?;
            for entry in entries {
                let (key, value) = entry?;
                let seq = key.value();
                let stored = decode_log(seq, value.value())?;
                let event = &stored.event;
                let changes = rebuilt.projections.apply(seq, event);
                finding_index_entries(event, changes, &mut bits);
                for (check_key, b) in &bits {
                    by_finding.insert((event.cluster.as_str(), check_key.as_str(), seq), *b)?;
                }
                rebuilt.last_seq = seq;
                rebuilt.max_time = Some(rebuilt.max_time.map_or(event.time, |t| t.max(event.time)));
                if seq % self.config.snapshot_keep_every == 0 && seq < checkpoint {
                    self.write_snapshot(&txn, &mut rebuilt)?;
                }
                if seq % 65_536 == 0 {
                    progress(seq, checkpoint);
                }
            }
        }
        if rebuilt.last_seq > 0 {
            self.write_snapshot(&txn, &mut rebuilt)?;
        }
        txn.commit()?;
        progress(checkpoint, checkpoint);
        let state_unchanged = rebuilt.projections.snapshot() == state.projections.snapshot();
        *state = rebuilt;
        Ok(RebuildReport {
            events: checkpoint,
            state_unchanged,
        })
    }
}

/// The finding index entries of one event: what it changed, and the findings it names.
pub(crate) fn finding_index_entries(
    event: &Event,
    changes: &[(String, FindingChange)],
    bits: &mut BTreeMap<String, u8>,
) {
    bits.clear();
    for (check_key, change) in changes {
        let bit = match change {
            FindingChange::Opened => change_bits::OPENED,
            FindingChange::SeverityChanged => change_bits::SEVERITY_CHANGED,
            FindingChange::Resolved(ResolutionKind::Auto) => change_bits::RESOLVED_AUTO,
            FindingChange::Resolved(ResolutionKind::Manual) => change_bits::RESOLVED_MANUAL,
            FindingChange::Resolved(ResolutionKind::Recipe) => change_bits::RESOLVED_RECIPE,
            FindingChange::Resolved(ResolutionKind::Informational) => change_bits::INFORMATIONAL,
            FindingChange::FlapStarted(_) | FindingChange::FlapStopped(_) => change_bits::FLAP,
        };
        *bits.entry(check_key.clone()).or_default() |= bit;
    }
    let named: &[String] = match &event.payload {
        Payload::FindingResolved(r) => std::slice::from_ref(&r.check_key),
        Payload::IncidentOpened(i) | Payload::IncidentUpdated(i) | Payload::IncidentClosed(i) => {
            &i.check_keys
        }
        _ => &[],
    };
    for check_key in named {
        bits.entry(check_key.clone())
            .or_insert(change_bits::MENTIONED);
    }
}

/// Positions in `positions` of the finding index entries of `check_key` in each of `clusters`,
/// merged in position order (one range per cluster, the smallest head taken each time): the
/// first `take` of them.
fn merged_finding_positions(
    index: &redb::ReadOnlyTable<(&'static str, &'static str, u64), u8>,
    clusters: &[String],
    check_key: &str,
    positions: RangeInclusive<u64>,
    take: usize,
) -> Result<Vec<u64>, QueryError> {
    use std::cmp::Reverse;
    let (from, to) = (*positions.start(), *positions.end());
    let mut ranges = Vec::new();
    let mut heads = std::collections::BinaryHeap::new();
    for cluster in clusters {
        let mut range =
            index.range((cluster.as_str(), check_key, from)..=(cluster.as_str(), check_key, to))?;
        if let Some(entry) = range.next() {
            heads.push(Reverse((entry?.0.value().2, ranges.len())));
            ranges.push(range);
        }
    }
    let mut merged = Vec::new();
    while merged.len() < take {
        let Some(Reverse((seq, source))) = heads.pop() else {
            break;
        };
        merged.push(seq);
        if let Some(entry) = ranges[source].next() {
            heads.push(Reverse((entry?.0.value().2, source)));
        }
    }
    Ok(merged)
}

/// The incident an event belongs to, if it names one.
pub(crate) fn incident_of(event: &Event) -> Option<&str> {
    match &event.payload {
        Payload::NoteAdded(note) => note.incident.as_deref(),
        Payload::IncidentOpened(i) | Payload::IncidentUpdated(i) | Payload::IncidentClosed(i) => {
            Some(&i.incident)
        }
        _ => None,
    }
}

pub(crate) fn type_index(event_type: EventType) -> u8 {
    EventType::ALL
        .iter()
        .position(|t| *t == event_type)
        .expect("every type is in ALL") as u8
}

#[allow(clippy::too_many_arguments)]
fn index_event(
    seq: u64,
    event: &Event,
    changes: &[(String, FindingChange)],
    bits: &mut BTreeMap<String, u8>,
    by_finding: &mut redb::Table<(&str, &str, u64), u8>,
    by_cluster_time: &mut redb::Table<(&str, i64, u64), u8>,
    by_incident: &mut redb::Table<(&str, u64), ()>,
    by_type: &mut redb::Table<(&str, u64), ()>,
) -> Result<(), StorageFault> {
    let event_type = event.event_type();
    by_cluster_time.insert(
        (event.cluster.as_str(), event.time.unix_nanos(), seq),
        type_index(event_type),
    )?;
    by_type.insert((event_type.as_str(), seq), ())?;
    if let Some(incident) = incident_of(event) {
        by_incident.insert((incident, seq), ())?;
    }
    finding_index_entries(event, changes, bits);
    for (check_key, b) in bits.iter() {
        by_finding.insert((event.cluster.as_str(), check_key.as_str(), seq), *b)?;
    }
    Ok(())
}
