//! One error type per store operation. Messages are lowercase and say what to do next.

use std::path::PathBuf;

use crate::codec::CodecError;

/// A record in the store that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} record {key}: {problem}; {}", self.what_to_do())]
pub struct CorruptRecord {
    /// Table name.
    pub table: &'static str,
    /// Key, as text.
    pub key: String,
    /// What is wrong.
    pub problem: CodecError,
}

impl CorruptRecord {
    /// The record of `table` under `key` that `problem` makes unreadable.
    pub(crate) fn new(table: &'static str, key: impl ToString, problem: CodecError) -> Self {
        Self {
            table,
            key: key.to_string(),
            problem,
        }
    }

    /// What an operator does about it (`docs/runbooks/corrupt-store.md` says more).
    pub fn what_to_do(&self) -> &'static str {
        match self.table {
            "log" => {
                "the log is the truth and this event cannot be read back: restore the store from \
                 a backup (`tidemark restore`), or on a replica follow the stream into a new store \
                 (`tidemark serve --nats URL --db NEW.redb`); `tidemark verify` lists every corrupt \
                 record (docs/runbooks/corrupt-store.md)"
            }
            "snapshots" | "snapshot_times" => {
                "snapshots are derived from the log: `tidemark rebuild` writes them anew \
                 (docs/runbooks/corrupt-store.md)"
            }
            "finding_occurrences" | "finding_flap_episodes" => {
                "a finding's history is derived from the log: `tidemark rebuild` writes it anew \
                 (after a retention cut, the rows before the cut are copied, not refolded: restore \
                 a backup to get those back) (docs/runbooks/corrupt-store.md)"
            }
            "finding_groups" => {
                "the finding index is derived from the log: `tidemark rebuild` writes it anew \
                 (after a retention cut, the entries before the cut are copied, and a group that \
                 does not decode is left out) (docs/runbooks/corrupt-store.md)"
            }
            "quarantine" => {
                "this quarantined input cannot be read back; the events are unaffected. Restore a \
                 backup to get it back; `tidemark verify` lists every corrupt record \
                 (docs/runbooks/corrupt-store.md)"
            }
            _ => {
                "`tidemark verify` lists every corrupt record and what to do \
                 (docs/runbooks/corrupt-store.md)"
            }
        }
    }
}

/// The storage engine failed.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageFault(#[from] pub redb::Error);

impl StorageFault {
    /// Whether the filesystem had no room: no space left (`ENOSPC`), the file size limit
    /// (`EFBIG`, `ulimit -f`), or a disk quota (`EDQUOT`).
    pub fn is_disk_full(&self) -> bool {
        match &self.0 {
            redb::Error::Io(error) => is_disk_full(error),
            _ => false,
        }
    }
}

/// Whether an I/O error means the filesystem had no room for the write.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::FileTooLarge | ErrorKind::QuotaExceeded
    )
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageFault {
            fn from(e: $t) -> Self {
                Self(redb::Error::from(e))
            }
        }
    )*};
}
storage_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process holds the database.
    #[error(
        "{} is open in another process (is `tidemark serve` running on it?): stop that process, or query it over HTTP",
        path.display()
    )]
    AlreadyOpen {
        /// The database file.
        path: PathBuf,
    },
    /// No file at the path (read-only opens never create one).
    #[error(
        "no store at {0}: create one with `tidemark ingest FILE.ndjson --db {0}` or `tidemark serve --db {0}`",
        path.display()
    )]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file exists but is not a Tidemark store: empty, not a redb database, or a redb
    /// database without Tidemark's tables. Nothing was written to it.
    #[error(
        "{} is not a Tidemark store: {reason}. --db must name a store file (a redb database that \
         `tidemark serve` or `tidemark ingest` created, or a backup), or a path where none exists \
         yet for `serve` and `ingest` to create one; the file was left as it is",
        path.display()
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// A read-only open met a store that a process left in the middle of a write (killed or
    /// crashed): redb must recover it, which writes to the file.
    #[error(
        "{0} needs recovery: a process was killed (or crashed) while it had the store open for \
         writing. Read commands open stores read-only and never repair them; run `tidemark repair \
         --db {0}` (or start `tidemark serve` on it), which recovers the store to its last commit, \
         then run this command again",
        path.display()
    )]
    NeedsRecovery {
        /// The database file.
        path: PathBuf,
    },
    /// redb refused the file.
    #[error("cannot open {}: {reason}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// redb's reason.
        reason: redb::DatabaseError,
    },
    /// Written by a newer layout.
    #[error("store layout {found} is newer than this build reads ({expected}): upgrade tidemark")]
    NewerLayout {
        /// Layout found.
        found: i64,
        /// Layout this build reads.
        expected: i64,
    },
    /// Every snapshot the state could start from is corrupt, and retention dropped the start of
    /// the log, so the state cannot be refolded from this file.
    #[error(
        "no usable projection snapshot: the ones this store could start from are corrupt (see \
         the warnings above) and retention dropped the local log before position {first_retained}, \
         so the state cannot be folded from this file. Restore a backup (`tidemark restore`); a \
         replica can also follow its stream into a new store (`tidemark serve --nats URL --db \
         NEW.redb`)"
    )]
    NoUsableSnapshot {
        /// The first position the local log holds.
        first_retained: u64,
    },
    /// A record cannot be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
    /// The upgrade to this build's store layout where the rules changed (a rebuild: the log
    /// folded again into a new file beside the store) failed.
    #[error(
        "could not upgrade {} to store layout {layout} (the rules changed, so what the store \
         derived from its log is written anew, into a new file beside it that then replaces \
         it): {source}",
        path.display()
    )]
    Upgrade {
        /// The store file.
        path: PathBuf,
        /// The layout it was being upgraded to.
        layout: i64,
        /// Why the rebuild failed.
        #[source]
        source: Box<RebuildError>,
    },
    /// The change records of positions an older build appended could not be written (the
    /// state they start from could not be rebuilt).
    #[error(
        "could not write the change records of the positions an older build appended: {0};          `tidemark verify` names what does not read back"
    )]
    ChangeRecords(#[source] Box<QueryError>),
}

impl OpenError {
    /// Whether the open failed because the filesystem had no room for a write it makes (the
    /// tables it creates, a repair): no space left, the file size limit, or a disk quota.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Storage(fault) => fault.is_disk_full(),
            Self::Database {
                reason: redb::DatabaseError::Storage(redb::StorageError::Io(error)),
                ..
            } => is_disk_full(error),
            _ => false,
        }
    }
}

/// The refusal of a write to a store opened read-only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the store {} was opened read-only: nothing was written (open it with `Store::open` to write)",
    path.display()
)]
pub struct ReadOnlyStore {
    /// The database file.
    pub path: PathBuf,
}

/// Why a batch could not be appended. Nothing of the batch was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The store was opened read-only.
    #[error(transparent)]
    ReadOnly(#[from] ReadOnlyStore),
    /// A given position is not after the checkpoint: it was applied already.
    #[error("position {position} is not after the checkpoint {checkpoint}: it was applied already")]
    PositionNotAfterCheckpoint {
        /// The position offered.
        position: u64,
        /// The checkpoint.
        checkpoint: u64,
    },
    /// A record needed to reload the state cannot be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The filesystem has no room for the batch (or the file hit its size limit). Nothing of
    /// the batch was stored; reads answer from the last commit; writes are refused without a try
    /// for `retry_after`, then tried again.
    #[error(
        "the disk is full: the store {} cannot grow ({detail}); nothing of this batch was stored. \
         Free space on its filesystem (or raise the file size limit), then send the batch again; \
         reads keep working meanwhile",
        path.display()
    )]
    DiskFull {
        /// The database file.
        path: PathBuf,
        /// The operating system's error.
        detail: String,
        /// When the store tries writing again.
        retry_after: std::time::Duration,
    },
    /// The database could not be reopened after a write error; nothing was stored.
    #[error("the store could not be reopened after a write error: {0}")]
    Reopen(OpenError),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
    /// `Store::quarantine_rejected` was given an event: events go in the log (`append`).
    #[error("event {id:?} is valid: it belongs in the log, not in quarantine; nothing was stored")]
    EventNotRejected {
        /// The event's id.
        id: String,
    },
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The point asked for is before the local log (retention dropped the events before it).
    #[error(
        "{requested} is before this store's local log, which starts at position {first_retained} \
         (retention dropped the events before it). A replica's events live in its JetStream \
         stream: to look that far back, follow the stream into a new store (`tidemark serve --nats \
         URL --db NEW.redb`) and ask that one. An embedded store's are gone but for a backup taken \
         before the cut: restore it to another file (`tidemark restore --from BACKUP --db OTHER.redb`) \
         and ask that one"
    )]
    BeforeRetainedLog {
        /// What was asked, in words (`position 12`, `2026-03-02T14:00:00Z`, `the whole log`).
        requested: String,
        /// The first position the local log holds.
        first_retained: u64,
    },
    /// Every snapshot this point could start from is corrupt, and retention dropped the log
    /// before them.
    #[error(
        "no usable projection snapshot for this point: the ones it could start from are corrupt \
         (see the warnings) and retention dropped the local log before position {first_retained}. \
         Restore a backup (`tidemark restore`); a replica can also follow its stream into a new \
         store (`tidemark serve --nats URL --db NEW.redb`) and ask that one"
    )]
    NoUsableSnapshot {
        /// The first position the local log holds.
        first_retained: u64,
    },
    /// The change records end before this position: a store an older build appended to,
    /// opened read-only (a read-write open writes them).
    #[error(
        "the change records of this store end at position {recorded_to}, before position          {position}: an older build appended the events after it. Open the store for writing          once (e.g. `tidemark repair`, or `tidemark serve`) and it writes them"
    )]
    ChangesNotRecorded {
        /// The position asked for.
        position: u64,
        /// The last position with complete change records.
        recorded_to: u64,
    },
    /// A record cannot be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

/// Why a rebuild failed. The store is unchanged (but for [`RebuildError::Reopen`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// The store was opened read-only.
    #[error(transparent)]
    ReadOnly(#[from] ReadOnlyStore),
    /// Retention dropped the start of the local log, and no snapshot a rebuild could start from
    /// there reads back (a rebuild after retention starts from the snapshot at the cut).
    #[error(
        "the local log starts at position {first_retained} (retention dropped the events before it) \
         and no projection snapshot a rebuild could start from there can be read (see the \
         warnings). Restore a backup (`tidemark restore`); a replica can also follow its stream \
         into a new store (`tidemark serve --nats URL --db NEW.redb`), which refolds the whole stream"
    )]
    LogRetained {
        /// The first position the local log holds.
        first_retained: u64,
    },
    /// The new file could not be written, synced or moved into place. A rebuild writes a new
    /// file beside the store and renames it over the store: it needs room for a second copy.
    #[error(
        "writing the rebuilt store {}: {source}; the store is unchanged (a rebuild writes a new \
         file beside the store, then moves it into place: the directory needs room for a second \
         copy of the store)",
        path.display()
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The new file could not be created, compacted or closed (redb's own writes to it).
    #[error(
        "writing the rebuilt store {}: {source}; the store is unchanged (a rebuild writes a new \
         file beside the store, then moves it into place: the directory needs room for a second \
         copy of the store)",
        path.display()
    )]
    Write {
        /// The new file.
        path: PathBuf,
        /// The error.
        source: StorageFault,
    },
    /// The new file did not read back as the store it replaces; it was discarded.
    #[error("the rebuilt store {} did not check out: {problem}; it was discarded and the store is unchanged", path.display())]
    Check {
        /// The new file.
        path: PathBuf,
        /// What was wrong.
        problem: String,
    },
    /// The rebuilt file replaced the store, but could not be opened again.
    #[error(
        "the store was rebuilt and moved into place, but could not be opened again: {0}; run the \
         command again (or `tidemark verify`)"
    )]
    Reopen(#[source] OpenError),
    /// A log record cannot be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

macro_rules! storage_into {
    ($($op:ty),*) => {$(
        impl From<redb::TransactionError> for $op { fn from(e: redb::TransactionError) -> Self { Self::Storage(e.into()) } }
        impl From<redb::TableError> for $op { fn from(e: redb::TableError) -> Self { Self::Storage(e.into()) } }
        impl From<redb::StorageError> for $op { fn from(e: redb::StorageError) -> Self { Self::Storage(e.into()) } }
        impl From<redb::CommitError> for $op { fn from(e: redb::CommitError) -> Self { Self::Storage(e.into()) } }
    )*};
}
storage_into!(OpenError, AppendError, QueryError, RebuildError);

/// A failure while reading: a record that cannot be decoded, or the engine.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadFault {
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

impl From<redb::StorageError> for ReadFault {
    fn from(e: redb::StorageError) -> Self {
        Self::Storage(e.into())
    }
}

macro_rules! from_read_fault {
    ($($op:ty),*) => {$(
        impl From<ReadFault> for $op {
            fn from(e: ReadFault) -> Self {
                match e {
                    ReadFault::Corrupt(c) => Self::Corrupt(c),
                    ReadFault::Storage(s) => Self::Storage(s),
                }
            }
        }
    )*};
}
from_read_fault!(OpenError, AppendError, QueryError, RebuildError);

/// Why a backup could not be written or a backup file cannot be used. A failed backup leaves
/// no file at the destination.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The file is not a redb database (or cannot be opened as one).
    #[error(
        "{} is not a readable Tidemark store: {source} (a backup is the redb file `tidemark backup` wrote)",
        path.display()
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// redb's reason.
        source: redb::DatabaseError,
    },
    /// The file is a redb database but not a Tidemark store (no layout version).
    #[error("{} has no Tidemark layout version: it is not a Tidemark store or backup", path.display())]
    NoLayout {
        /// The file.
        path: PathBuf,
    },
    /// Written by a newer layout.
    #[error("{} has store layout {found}, newer than this build reads ({expected}): upgrade tidemark", path.display())]
    NewerLayout {
        /// The file.
        path: PathBuf,
        /// Layout found.
        found: i64,
        /// Layout this build reads.
        expected: i64,
    },
    /// The file lacks tables every store has (a copy cut short, or a file made by other means):
    /// restoring it would lose what they hold (without `ids`, every event would be stored again).
    #[error(
        "{} lacks the table(s) {} that every Tidemark store has: it is not a whole store or backup; restore another backup (`tidemark verify --db FILE` lists what is wrong with a file)",
        path.display(),
        tables.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
    )]
    MissingTables {
        /// The file.
        path: PathBuf,
        /// The tables it lacks, by name.
        tables: Vec<&'static str>,
    },
    /// The copy does not hold what was copied.
    #[error("the copy at {} does not match its source: {problem}; the copy was discarded", path.display())]
    Mismatch {
        /// The copy.
        path: PathBuf,
        /// What differs.
        problem: String,
    },
    /// A record cannot be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
    /// Writing the copy failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Why a compaction failed. The store is unchanged (redb compacts in place, transactionally).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The store was opened read-only.
    #[error(transparent)]
    ReadOnly(#[from] ReadOnlyStore),
    /// redb refused or failed.
    #[error("compacting: {0}")]
    Compaction(#[from] redb::CompactionError),
    /// The store was compacted and closed, but could not be opened again.
    #[error(
        "the store was compacted, but could not be opened again: {0}; run the command again (or \
         `tidemark verify`)"
    )]
    Reopen(#[source] OpenError),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

/// Why old events could not be dropped. The store is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// The store was opened read-only.
    #[error(transparent)]
    ReadOnly(#[from] ReadOnlyStore),
    /// The store is its own source of truth, and dropping its events was not allowed
    /// ([`EmbeddedRetention::Refuse`](crate::EmbeddedRetention::Refuse)).
    #[error(
        "this store is its own source of truth (embedded mode: its events did not come from a \
         JetStream stream), so dropping events loses them for good: time travel and `rebuild` then \
         start at the cut, and only a backup taken before it holds the events before it. To do it \
         anyway, back the store up first, then pass --allow-embedded (docs/backup-and-retention.md)"
    )]
    EmbeddedStore,
    /// No durable snapshot to start the retained log from.
    #[error(
        "no projection snapshot at or before position {requested} (the earliest is {earliest}): only \
         events covered by a snapshot can be dropped; snapshots are written every --snapshot-every \
         events while serving, and on shutdown"
    )]
    NoSnapshot {
        /// The position asked for.
        requested: u64,
        /// The earliest snapshot (`none` when there is none).
        earliest: String,
    },
    /// A record cannot be read.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

storage_into!(BackupError, RetentionError);
from_read_fault!(RetentionError);
from_read_fault!(BackupError);
