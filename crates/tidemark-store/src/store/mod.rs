//! The embedded store: one redb file holding the log, its indexes, projection snapshots, the
//! checkpoint and the quarantine.
//!
//! Writes come in batches, and each batch is one write transaction: its log records, its index
//! entries, its quarantine records and the checkpoint (and, every `snapshot_every` events, a
//! projection snapshot) commit together or not at all. The live projection is kept in memory;
//! on open it is restored from the latest snapshot and the log after it, which that same
//! transaction discipline makes equal to the state at the checkpoint.
//!
//! `Store` is one type; its methods live by concern, one `impl Store` per file:
//! - `open.rs`: opening a file read-write (creating the tables of [`crate::tables`]'s list) or
//!   read-only, refusing files that are not stores;
//! - `restore.rs`: the live state restored from the latest usable snapshot and the log after it
//!   (open, the reopen after a write error, time travel and the backup check share it), and the
//!   decoding of stored records;
//! - `append.rs`: the write path (one transaction per batch, snapshots) and the pause and reopen
//!   when the disk is full;
//! - `index.rs`: the index entries an event gets (append, rebuild and verify derive them alike);
//! - `projections.rs`: the projections now or at a point of the log (time travel);
//! - `history_tables.rs`: a finding's history (closed occurrences, ended flap episodes) in its
//!   tables: written in a batch's transaction, read as of a position in pages, and the
//!   projection's `HistoryReader` over them ([`Store::history`]);
//! - `timelines.rs`, `events.rs`, `quarantine_reads.rs`, `stats.rs`: reads of the indexes, the
//!   log and the quarantine, and figures (`event_streams.rs`: the filters of an events page as
//!   streams of positions over the filter indexes);
//! - `backup.rs` (backup, its check, compaction), `retention.rs` (a replica's old events
//!   dropped), `rebuild.rs` (the log folded again).
//!
//! # Lock order
//!
//! `writer` → `state` → `db`: a thread may skip a lock, never take one out of this order.
//! - Writers (append, snapshot, rebuild, retention, compaction) hold `writer` first, so the
//!   in-memory state follows commits in order. Those that change the state then hold `state` for
//!   writing across their commit, so no reader sees a batch before it commits (or part of one
//!   that failed).
//! - Readers take `state` (shared) for what the live state names, then `db` (shared). A reader
//!   never waits for `state` while it holds `db`: it lets `db` go before reading the state again.
//!   So a writer may take `db` exclusively (the reopen after an I/O error, which holds `state`;
//!   `compact`) without waiting on a reader that waits on it.
//! - `db` is never taken shared twice by one thread through `Store::db`: a queued exclusive
//!   reopen between the two would deadlock the second.
//! - The history reader ([`Store::history`]) takes `db` shared for each call, recursively
//!   (`parking_lot`'s `read_recursive`, which does not wait behind a queued exclusive taker
//!   while the lock is held shared): a fold reads history back (a widened flap window) while
//!   its thread holds a `DbRef` (a batch, a refold for time travel, a restore, a rebuild). Never
//!   call it while the thread holds `db` exclusively.

mod append;
mod backup;
mod changes;
mod dropped_orphans;
mod event_streams;
mod events;
mod finding_index;
mod history_tables;
pub(crate) mod incident_bodies;
pub(crate) mod incident_rows;
mod index;
mod maintenance_book;
mod open;
mod projections;
mod quarantine_reads;
mod rebuild;
mod restore;
mod retention;
mod scratch;
mod snapshot_parts;
mod stats;
mod timelines;
mod upgrade;
mod write_txn;

/// What changed in the rules since store layout `layout` (below
/// [`crate::tables::CURRENT_RULES_SINCE`]): why such a store is folded again at its first read-write
/// open, in words for the logs and `verify`.
pub(crate) fn rules_changed_since(layout: i64) -> &'static str {
    if layout < crate::tables::ALERT_FINDINGS_SINCE {
        "alerts became findings, and every change of an open incident's clusters is on its timeline"
    } else {
        "every change of an open incident's clusters is on its timeline"
    }
}

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use redb::{Database, ReadableDatabase, WriteTransaction};
use tidemark_core::{Projections, Timestamp};

use crate::error::{CorruptRecord, ReadOnlyStore, StorageFault};
use crate::quarantine::{DropLog, QuarantineLimits, QuarantineTally};

pub use crate::input::{Input, Outcome, PreparedBatch};
pub use append::DiskFull;
use append::WriteBlock;
pub use backup::{BackupInfo, CompactReport};
pub use event_streams::EventFilter;
pub use events::{EVENTS_SCAN_BUDGET, EventsPage};
pub(crate) use finding_index::FindingIndex;
pub(crate) use history_tables::StoreHistory;
pub(crate) use index::{finding_index_entries, incident_of, type_index};
pub use maintenance_book::MAX_MAINTENANCE_EVENTS_READ;
pub(crate) use open::{open_database_read_only, read_layout};
pub use projections::{At, PastProjections};
pub use quarantine_reads::{QuarantineEntry, QuarantineView};
pub use rebuild::{RebuildProgress, RebuildReport};
pub(crate) use restore::{check_checkpoint, decode_log, decode_snapshot_or_outdated};
pub use retention::{EmbeddedRetention, RetentionReport};
pub use stats::Stats;
pub use timelines::{ClusterTimelinePage, FindingTimelineWindow, TimelineAnchor, TimelineEntry};

/// Tuning of a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Write a projection snapshot when this many events were applied since the last one (a
    /// backstop: the bytes rule writes them sooner, as often as the log pays for them; a large
    /// state snapshotted every 10,000 events cost a 6,000-cluster store a third of its ingest,
    /// docs/benchmarks.md).
    pub snapshot_every: u64,
    /// Keep one historical snapshot per this many positions (for time travel); the latest is
    /// always kept, and so is every snapshot the log bytes before it paid for
    /// (`snapshot_bytes_ratio`).
    pub snapshot_keep_every: u64,
    /// Write a snapshot once the log records appended since the last one take this many times
    /// the bytes it wrote (a per-cluster snapshot: the parts of the clusters that changed and
    /// its manifest; and at least `snapshot_min_every` events were applied), and keep it: a small
    /// live state (store layout 2: the live state only, not the history) is snapshotted often,
    /// so time travel folds few events, while the snapshots kept this way take at most
    /// `1 / ratio` of the log's bytes. 0: only `snapshot_every` writes snapshots.
    pub snapshot_bytes_ratio: u64,
    /// The fewest events between two snapshots the bytes rule writes.
    pub snapshot_min_every: u64,
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
            snapshot_every: 100_000,
            snapshot_keep_every: 100_000,
            snapshot_bytes_ratio: 4,
            snapshot_min_every: 1_000,
            disk_full_retry: Duration::from_secs(5),
            cache_bytes: 128 << 20,
            events_scan_budget: EVENTS_SCAN_BUDGET,
            quarantine: QuarantineLimits::default(),
        }
    }
}

/// The in-memory side of the store.
#[derive(Debug)]
struct LiveState {
    projections: Projections,
    last_seq: u64,
    max_time: Option<Timestamp>,
    snapshot_seq: u64,
    /// The bytes of the log records appended since the last snapshot (0 after an open: the
    /// events it folded are not counted).
    log_bytes_since_snapshot: u64,
    /// The bytes the last snapshot wrote (after a restore: its record's), and whether the log
    /// bytes before it paid for keeping it (`StoreConfig::snapshot_bytes_ratio`); `None`
    /// before the store's first snapshot.
    last_snapshot: Option<SnapshotMark>,
    /// What the quarantine holds.
    quarantine: QuarantineTally,
    /// Positions come from a JetStream stream (a replica): retention may drop old events.
    from_stream: bool,
    /// The first position the local log holds (retention moves it on).
    log_start: u64,
    /// Corrupt snapshots skipped when this state was restored.
    skipped_snapshots: Vec<CorruptRecord>,
    /// Where each cluster's part of the latest per-cluster snapshot is: the next snapshot
    /// names it again for a cluster that did not change (`store/snapshot_parts.rs`).
    part_positions: snapshot_parts::PartPositions,
}

/// What the writer remembers of the last snapshot it wrote (or restored from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SnapshotMark {
    /// The bytes it wrote (a per-cluster snapshot: the parts of the clusters that changed, and
    /// its manifest; one restored from: its record in `snapshots`).
    bytes: u64,
    /// The log bytes written between the snapshot before it and it reached
    /// `snapshot_bytes_ratio` times that one's size: it is kept (not thinned).
    paid_for: bool,
}

/// The embedded store. Share it (`Arc<Store>`): reads run concurrently with one writer.
///
/// Its locks are taken in one order: the lock order in the module documentation of
/// `store/mod.rs`.
#[derive(Debug)]
pub struct Store {
    /// The database handle; `None` only while a reopen after an I/O error failed. Shared
    /// (`Arc`) with the history reader the projection reads a finding's history through
    /// ([`Store::history`]), which takes it like any reader: the slot, not a handle, so a
    /// reopen or a compaction that replaces the handle is seen by it too.
    db: Arc<DbSlot>,
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
    /// See [`Store::walked_whole_file_on_open`].
    walked_whole_file_on_open: bool,
    /// Called with the new checkpoint after each commit that moved it ([`Store::on_commit`]).
    commit_listeners: CommitListeners,
}

/// A function told of each commit that moved the checkpoint.
pub type CommitListener = Arc<dyn Fn(&Commit<'_>) + Send + Sync>;

/// One commit, as [`Store::on_commit`] listeners see it.
#[derive(Debug)]
pub struct Commit<'a> {
    /// The checkpoint before it.
    pub previous: u64,
    /// The checkpoint after it.
    pub checkpoint: u64,
    /// The events it stored, with their positions, in log order (a follower's commit may also
    /// move the checkpoint past duplicates and quarantined messages it did not store).
    pub stored: &'a [(u64, &'a tidemark_core::Event)],
}

/// The store's commit listeners.
#[derive(Default)]
pub(crate) struct CommitListeners(Mutex<Vec<CommitListener>>);

impl std::fmt::Debug for CommitListeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.lock().map_or(0, |l| l.len());
        write!(f, "CommitListeners({count})")
    }
}

/// Where the open database is: `None` only while a reopen after an I/O error failed (and while
/// a store is being opened). A `parking_lot` lock: the history reader a fold reads through takes
/// it recursively (see the lock order above).
pub(crate) type DbSlot = parking_lot::RwLock<Option<Handle>>;

/// The open database: read-write (serve, ingest, rebuild, compact), or read-only (the read
/// commands), which never writes a byte of the file.
pub(crate) enum Handle {
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

    /// A write transaction, with quick repair (`write_txn`); a read-only handle refuses (the
    /// write paths check [`Store::refuse_if_read_only`] first, so this is a last guard).
    fn begin_write(&self) -> Result<WriteTransaction, redb::TransactionError> {
        match self {
            Self::Write(db) => write_txn::begin(db),
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
struct DbRef<'a>(parking_lot::RwLockReadGuard<'a, Option<Handle>>);

impl std::ops::Deref for DbRef<'_> {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        self.0
            .as_ref()
            .expect("DbRef is only made for an open database")
    }
}

impl Store {
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

    /// The open database, shared. Never call while holding another `DbRef` (a queued reopen
    /// would deadlock a second shared lock), and never wait for `state` while holding one.
    fn db(&self) -> Result<DbRef<'_>, StorageFault> {
        let guard = self.db.read();
        if guard.is_none() {
            return Err(StorageFault(redb::Error::DatabaseClosed));
        }
        Ok(DbRef(guard))
    }

    /// Whether opening the store had to walk the whole file (redb's full repair, about 1–2 s
    /// per GB): the last process writing it was killed, and its last commit had not saved
    /// redb's allocator state. Every write transaction saves it (quick repair, `write_txn`), so
    /// this is `false` after a crash, unless the file was last written by an older build or
    /// the process was killed during [`Store::compact`]. Always `false` for a read-only open
    /// (which refuses a file that needs recovery).
    pub fn walked_whole_file_on_open(&self) -> bool {
        self.walked_whole_file_on_open
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

    /// Calls `listener` after every later commit that moves the checkpoint (an `append` or a
    /// follower's `append_positioned` that stored or skipped positions), once the batch is
    /// visible to readers, with what it stored. It runs on the committing thread, in commit
    /// order: it must return at once (e.g. send on a `watch` channel), never block or call back
    /// into the store.
    pub fn on_commit(&self, listener: CommitListener) {
        self.commit_listeners
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    /// Tells every commit listener of the commit from `previous` to `checkpoint`; what it stored
    /// is listed (`stored`) only when someone listens.
    fn committed<'a>(
        &self,
        previous: u64,
        checkpoint: u64,
        stored: impl FnOnce() -> Vec<(u64, &'a tidemark_core::Event)>,
    ) {
        let listeners = self
            .commit_listeners
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if listeners.is_empty() {
            return;
        }
        let stored = stored();
        let commit = Commit {
            previous,
            checkpoint,
            stored: &stored,
        };
        for listener in listeners.iter() {
            listener(&commit);
        }
    }

    /// The first position the local log holds (1 unless retention dropped the events before
    /// it).
    pub fn log_start(&self) -> u64 {
        self.read_state().log_start
    }

    /// The last applied log position.
    pub fn checkpoint(&self) -> u64 {
        self.read_state().last_seq
    }
}
