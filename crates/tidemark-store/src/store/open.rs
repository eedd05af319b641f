//! Opening a store: the file checked to be a redb database, opened read-write (creating the
//! tables and the layout version) or read-only (writing nothing), and the live state restored.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use tidemark_core::ClusterPartSource;
use tidemark_core::findings::SharedHistoryReader;

use super::history_tables::StoreHistory;
use super::index::FilterIndexes;
use super::restore::decode_log;
use super::restore::warn_restoring_whole;
use super::snapshot_parts::{self, StoreParts};
use super::upgrade::{upgrade_to_layout_2, upgrade_to_layout_4, upgrade_to_layout_5};
use super::{DbSlot, Handle, LiveState, Store, StoreConfig, write_txn};
use crate::error::{OpenError, StorageFault};
use crate::quarantine::{self, DropLog};
use crate::tables::{self, Table, TableVisitor};

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

/// A redb file open for writing, and whether redb had to walk the whole file to open it.
pub(super) struct OpenedDatabase {
    pub(super) db: Database,
    /// redb repaired the file the slow way, walking every page: the last process writing it
    /// was killed, and its last commit had not saved the allocator state (quick repair).
    pub(super) walked_whole_file: bool,
}

/// Opens (or creates, when `path` does not exist) the redb file for writing, naming a second
/// process as such.
pub(super) fn open_database(path: &Path, cache_bytes: usize) -> Result<OpenedDatabase, OpenError> {
    refuse_non_redb_file(path)?;
    let shown = path.display().to_string();
    let walked = Arc::new(AtomicBool::new(false));
    let walking = Arc::clone(&walked);
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .set_repair_callback(move |session| {
            // Called only by a full repair: at its start (progress 0), then as it goes on. A
            // file whose last commit saved the allocator state loads it instead, without a call.
            if session.progress() == 0.0 {
                walking.store(true, Ordering::Relaxed);
                tracing::warn!(path = %shown, "the store was not closed cleanly and its last commit did not save redb's allocator state (it was last written by a build without quick repair, or a process was killed during `compact`): redb checks the whole file before opening it, about 1-2 s per GB");
            }
        })
        .create(path)
        .map_err(|reason| open_error(path, reason))?;
    Ok(OpenedDatabase {
        db,
        walked_whole_file: walked.load(Ordering::Relaxed),
    })
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

/// Creates each table of the list the file lacks (opening a table in a write transaction creates
/// it; one that exists is left as it is).
pub(super) struct CreateTables<'txn>(pub(super) &'txn WriteTransaction);

impl TableVisitor for CreateTables<'_> {
    type Error = redb::TableError;

    fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        _table: Table,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<(), redb::TableError> {
        self.0.open_table(definition).map(drop)
    }
}

/// Events indexed per transaction while the filter indexes are built at open.
const INDEX_BUILD_CHUNK: u64 = 100_000;

/// Writes the event filters' index entries (`FilterIndexes`) of the logged events after
/// `event_indexes_to`: a store written before those indexes (or appended to by a build without
/// them) gets them at its first read-write open. Chunks of [`INDEX_BUILD_CHUNK`] events, one
/// transaction each, moving `event_indexes_to` along (a killed build resumes where it stopped);
/// progress is logged when there is more than one chunk.
fn complete_filter_indexes(db: &Database, path: &Path) -> Result<(), OpenError> {
    let (mut done, checkpoint) = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        let read = |key| -> Result<u64, OpenError> {
            Ok(meta.get(key)?.map_or(0, |v| v.value().max(0) as u64))
        };
        (read(tables::EVENT_INDEXES_TO)?, read(tables::CHECKPOINT)?)
    };
    if done >= checkpoint {
        return Ok(());
    }
    let started = done;
    let long = checkpoint - done > INDEX_BUILD_CHUNK;
    if long {
        tracing::info!(path = %path.display(), from = done + 1, to = checkpoint, "building the event filter indexes (a store written before them)");
    }
    while done < checkpoint {
        let until = done.saturating_add(INDEX_BUILD_CHUNK).min(checkpoint);
        let txn = write_txn::begin(db)?;
        {
            let log = txn.open_table(tables::LOG)?;
            let mut indexes = FilterIndexes::open(&txn)?;
            for entry in log.range(done + 1..=until)? {
                let (key, value) = entry?;
                match decode_log(key.value(), value.value()) {
                    Ok(stored) => indexes.add(key.value(), &stored.event)?,
                    // Derived data: the open goes on, and reading that record answers its error
                    // (`tidemark verify` names it).
                    Err(corrupt) => {
                        tracing::warn!(error = %corrupt, "a log record is corrupt: the event filter indexes leave it out");
                    }
                }
            }
            txn.open_table(tables::META)?
                .insert(tables::EVENT_INDEXES_TO, until as i64)?;
        }
        txn.commit()?;
        done = until;
        if long {
            tracing::info!(
                indexed = done - started,
                of = checkpoint - started,
                "building the event filter indexes"
            );
        }
    }
    Ok(())
}

impl Store {
    /// Opens (or creates, when `path` does not exist) the store at `path` for reading and
    /// writing, and restores the live state. An existing file that is not a store (an empty
    /// file included) is refused ([`OpenError::NotAStore`]); a file left by a process killed
    /// while writing is recovered to its last commit by redb.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let OpenedDatabase {
            db,
            walked_whole_file,
        } = open_database(&path, config.cache_bytes)?;
        // Holding the store now, no rebuild of it runs: a new file one left behind is garbage.
        if let Err(error) = super::scratch::remove_partial_rebuild(&path) {
            tracing::warn!(%error, "could not remove a partial rebuild left beside the store");
        }
        // The layout version and every table of the list (those it lacks, on first open, or
        // those added since it was written) are created in one transaction.
        let txn = write_txn::begin(&db)?;
        let layout = {
            let mut meta = txn.open_table(tables::META)?;
            let format = meta.get(tables::FORMAT)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert(tables::FORMAT, tables::STORE_FORMAT)?;
                    tables::STORE_FORMAT
                }
                Some(found) if found > tables::STORE_FORMAT => {
                    return Err(OpenError::NewerLayout {
                        found,
                        expected: tables::STORE_FORMAT,
                    });
                }
                Some(found) => found,
            }
        };
        tables::visit_tables(&mut CreateTables(&txn))?;
        {
            let mut meta = txn.open_table(tables::META)?;
            if meta.get(tables::QUARANTINE_BYTES)?.is_none() {
                // A store from before the bound: count its records' bytes once.
                let records = txn.open_table(tables::QUARANTINE)?;
                let bytes = quarantine::count_bytes(&records)?;
                meta.insert(tables::QUARANTINE_BYTES, bytes as i64)?;
            }
        }
        txn.commit()?;
        complete_filter_indexes(&db, &path)?;
        // In its slot before anything folds: a fold reads history back through the slot (a
        // widened flap window), and so do the upgrade's and the restore's.
        let slot = Arc::new(DbSlot::new(Some(Handle::Write(db))));
        let history = StoreHistory::over(&slot);
        if layout < tables::HISTORY_TABLES_SINCE {
            let guard = slot.read();
            let Some(Handle::Write(db)) = &*guard else {
                unreachable!("the slot holds the handle opened for writing above")
            };
            upgrade_to_layout_2(db, &path, &history)?;
        }
        let mut state = Self::load_state_at_open(&slot, Some(Arc::new(history)))?;
        if layout < tables::INCIDENT_ROWS_SINCE {
            let guard = slot.read();
            let Some(Handle::Write(db)) = &*guard else {
                unreachable!("the slot holds the handle opened for writing above")
            };
            upgrade_to_layout_4(db, &path, &mut state)?;
        }
        if layout < tables::DROPPED_ORPHAN_ROWS_SINCE {
            let guard = slot.read();
            let Some(Handle::Write(db)) = &*guard else {
                unreachable!("the slot holds the handle opened for writing above")
            };
            upgrade_to_layout_5(db, &path, &mut state)?;
        }
        tracing::info!(path = %path.display(), checkpoint = state.last_seq, snapshot = state.snapshot_seq, walked_whole_file, "store opened");
        let mut store = Self::over_slot(slot, false, path, config, state);
        store.walked_whole_file_on_open = walked_whole_file;
        if layout < tables::CURRENT_RULES_SINCE {
            store.upgrade_by_refold(layout)?;
        }
        store.complete_change_records()?;
        if layout < tables::FINDING_GROUPS_SINCE {
            // Its log and change records stay as they are (this build reads both forms; the
            // batches it takes from now on may write compressed ones, layout 8); its finding
            // index moves into `finding_groups`, and the layout is set with the move's last
            // transaction.
            store.move_finding_index_to_groups()?;
        }
        Ok(store)
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
        // A store of layout 1 keeps its history in its snapshots: read in memory, as it was
        // written (a read-write open upgrades it).
        let slot = Arc::new(DbSlot::new(Some(Handle::Read(db))));
        let history = (format >= tables::HISTORY_TABLES_SINCE)
            .then(|| Arc::new(StoreHistory::over(&slot)) as Arc<dyn SharedHistoryReader>);
        if history.is_none() {
            tracing::info!(path = %path.display(), "the store is of layout 1: its history is read from its snapshots, in memory; any read-write command (e.g. `tidemark repair`) upgrades it once to layout 2, whose reads do not grow with the log");
        }
        if format < tables::CURRENT_RULES_SINCE {
            tracing::warn!(path = %path.display(), layout = format, "the store was written by older rules ({}): read-only, its answers are what the older build derived up to its last snapshot; any read-write command (e.g. `tidemark repair`) upgrades it once to layout {} by folding the log again", crate::store::rules_changed_since(format), tables::STORE_FORMAT);
        }
        let state = Self::load_state_at_open(&slot, history)?;
        tracing::debug!(path = %path.display(), checkpoint = state.last_seq, snapshot = state.snapshot_seq, "store opened read-only");
        Ok(Self::over_slot(slot, true, path, config, state))
    }

    /// Upgrades the store to layout 9 (`upgrade::upgrade_to_layout_9`).
    fn move_finding_index_to_groups(&self) -> Result<(), OpenError> {
        let handle = self.db()?;
        let Handle::Write(db) = &*handle else {
            return Ok(());
        };
        super::upgrade::upgrade_to_layout_9(db, &self.path)
    }

    /// Writes one `META` value in a transaction of its own (nothing, on a read-only handle).
    pub(super) fn set_meta(&self, key: &str, value: i64) -> Result<(), OpenError> {
        let handle = self.db()?;
        let Handle::Write(db) = &*handle else {
            return Ok(());
        };
        let txn = write_txn::begin(db)?;
        txn.open_table(tables::META)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }

    /// The live state of the store being opened over `slot`: restored lazily, each cluster's
    /// snapshot part read when the cluster is first needed (ADR 0006, "Reopen across
    /// clusters"), so an open costs the manifest and the log after it, not every cluster. When
    /// folding that log meets a part that does not read back, the state is restored whole
    /// instead, which skips that snapshot for an earlier one (a part met later fails its read,
    /// or its batch, whose reload restores whole).
    fn load_state_at_open(
        slot: &Arc<DbSlot>,
        history: Option<Arc<dyn SharedHistoryReader>>,
    ) -> Result<LiveState, OpenError> {
        let lazily: Arc<dyn ClusterPartSource> = Arc::new(StoreParts::over(slot));
        match Self::load_state(Self::begin_read_in(slot)?, history.clone(), Some(lazily)) {
            Err(OpenError::Corrupt(corrupt)) if snapshot_parts::is_part(&corrupt) => {
                warn_restoring_whole(&corrupt);
                Self::load_state(Self::begin_read_in(slot)?, history, None)
            }
            other => other,
        }
    }

    /// A read transaction of the database in `slot` (a store being opened: nothing else holds
    /// the slot yet).
    fn begin_read_in(slot: &DbSlot) -> Result<redb::ReadTransaction, OpenError> {
        let guard = slot.read();
        let handle = guard
            .as_ref()
            .ok_or(StorageFault(redb::Error::DatabaseClosed))?;
        Ok(handle.begin_read()?)
    }

    /// The store over the database in `slot`, whose live state is `state` (loaded with the
    /// handle already in the slot: the history reader of `state`, if it has one, reads
    /// through it).
    fn over_slot(
        slot: Arc<DbSlot>,
        read_only: bool,
        path: PathBuf,
        config: StoreConfig,
        state: LiveState,
    ) -> Self {
        Self {
            read_only,
            db: slot,
            path,
            config,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            write_block: Mutex::new(None),
            quarantine_drop_log: Mutex::new(DropLog::default()),
            walked_whole_file_on_open: false,
            commit_listeners: super::CommitListeners::default(),
        }
    }
}
