//! Backup (a copy of every table from one read transaction, checked before it is kept), the
//! check of a backup file, and compaction.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Serialize;

use super::open::open_database;
use super::{Handle, Store, write_txn};
use crate::error::{BackupError, CompactError, OpenError, StorageFault};
use crate::tables::open_listed;
use crate::tables::{self, Table, TableVisitor};

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

/// Copies every entry of `source` into the table `definition` of `target`, in chunks.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    source: &redb::ReadOnlyTable<K, V>,
    target: &Database,
    definition: TableDefinition<'static, K, V>,
    progress: &mut impl FnMut(u64),
) -> Result<u64, StorageFault> {
    copy_table_where(source, target, definition, |_| true, progress)
}

/// Copies the entries of `source` whose key `keep` accepts into the table `definition` of
/// `target`, in chunks of non-durable commits (the target is a private file until it is made
/// durable and moved into place); `progress` counts the entries read. Answers the entries
/// copied.
pub(super) fn copy_table_where<K: redb::Key + 'static, V: redb::Value + 'static>(
    source: &redb::ReadOnlyTable<K, V>,
    target: &Database,
    definition: TableDefinition<'static, K, V>,
    keep: impl Fn(&redb::AccessGuard<'_, K>) -> bool,
    progress: &mut impl FnMut(u64),
) -> Result<u64, StorageFault> {
    let mut entries = source.iter()?;
    let mut copied = 0;
    loop {
        let mut txn = write_txn::begin(target)?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| StorageFault(redb::Error::from(e)))?;
        let mut in_chunk = 0;
        {
            let mut out = txn.open_table(definition)?;
            for entry in entries.by_ref() {
                let (key, value) = entry?;
                if keep(&key) {
                    out.insert(key.value(), value.value())?;
                    copied += 1;
                }
                in_chunk += 1;
                if in_chunk == BACKUP_CHUNK {
                    break;
                }
            }
        }
        txn.commit()?;
        progress(in_chunk);
        if in_chunk < BACKUP_CHUNK {
            return Ok(copied);
        }
    }
}

/// Copies each table of the list from one read transaction into a fresh database. A table the
/// source may lack and lacks is left out of the copy too.
struct CopyTables<'a, Progress> {
    source: &'a redb::ReadTransaction,
    target: &'a Database,
    progress: Progress,
}

impl<Progress: FnMut(u64)> TableVisitor for CopyTables<'_, Progress> {
    type Error = StorageFault;

    fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        table: Table,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<(), StorageFault> {
        if let Some(source) = open_listed(self.source, table, definition)? {
            copy_table(&source, self.target, definition, &mut self.progress)?;
        }
        Ok(())
    }
}

/// Every table of the store, copied from one read transaction into a fresh database.
fn copy_all_tables(
    source: &redb::ReadTransaction,
    target: &Database,
    progress: impl FnMut(u64),
) -> Result<(), StorageFault> {
    tables::visit_tables(&mut CopyTables {
        source,
        target,
        progress,
    })?;
    // One durable commit makes everything before it durable.
    let mut txn = write_txn::begin(target)?;
    txn.set_durability(redb::Durability::None)
        .map_err(|e| StorageFault(redb::Error::from(e)))?;
    txn.commit()?;
    Ok(())
}

/// Counts the entries of each table of the list.
struct CountEntries<'a> {
    txn: &'a redb::ReadTransaction,
    entries: u64,
}

impl TableVisitor for CountEntries<'_> {
    type Error = StorageFault;

    fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        table: Table,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<(), StorageFault> {
        if let Some(open) = open_listed(self.txn, table, definition)? {
            self.entries += open.len()?;
        }
        Ok(())
    }
}

/// Entries in every table, for progress.
fn count_entries(txn: &redb::ReadTransaction) -> Result<u64, StorageFault> {
    let mut count = CountEntries { txn, entries: 0 };
    tables::visit_tables(&mut count)?;
    Ok(count.entries)
}

impl Store {
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
    /// layout this build reads, every table of the list a store must have, every snapshot and log record needed to restore its state
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
        let missing = tables::missing_tables(&db.begin_read()?)?;
        if !missing.is_empty() {
            return Err(BackupError::MissingTables {
                path: path.to_path_buf(),
                tables: missing.iter().map(|table| table.name()).collect(),
            });
        }
        // Only counts are read: a history in tables (layout 2) is not.
        let history = (format >= tables::HISTORY_TABLES_SINCE).then(super::restore::unread_history);
        // Whole: the check reads every part.
        let state = Self::load_state(db.begin_read()?, history, None).map_err(|e| match e {
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
        let mut slot = self.db.write();
        let mut db = match slot.take() {
            Some(Handle::Write(db)) => db,
            other => {
                *slot = other;
                return Err(StorageFault(redb::Error::DatabaseClosed).into());
            }
        };
        let compacted = (|| {
            while db.compact()? {}
            Ok::<_, redb::CompactionError>(())
        })();
        if let Err(error) = compacted {
            *slot = Some(Handle::Write(db));
            return Err(error.into());
        }
        // redb's compaction commits record no allocator state (quick repair), so a crash from
        // here on would walk the whole file. A commit of ours would record it, but lands above
        // the compacted pages and grows the file again; redb's close records it in a commit
        // placed low and trims the file. So close and reopen (a failed reopen leaves the store
        // closed: the next write tries again).
        db.close().map_err(|e| StorageFault(redb::Error::from(e)))?;
        *slot = Some(Handle::Write(
            open_database(&self.path, self.config.cache_bytes)
                .map_err(CompactError::Reopen)?
                .db,
        ));
        drop(slot);
        let bytes_after = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(CompactReport {
            bytes_before,
            bytes_after,
        })
    }
}
