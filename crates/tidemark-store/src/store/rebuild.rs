//! The log folded again: without touching the store (`fold_log`), or into a new file that then
//! replaces the store (`rebuild`).
//!
//! A rebuild writes a fresh file beside the store (`FILE.rebuild-partial`): the tables that hold
//! facts (the log, the id index, the quarantine, `meta`) copied from one read transaction, and
//! everything derived from the log (the indexes and the projection snapshots) written anew by
//! folding it. The new file is compacted (a file written from scratch still has holes between
//! its pages of different sizes), made durable, checked (it restores, with the same checkpoint
//! and log), and renamed over the store. So a crash leaves the old store or the new one, never
//! half of one, and the file is no larger than the store compacted: rewriting the derived tables
//! in place, in one transaction, needed room for both versions of them (the store grew by up to
//! 2× at every rebuild). What it needs instead is room for the new file beside the old one while
//! it runs.
//! A partial file left by a crash is removed by the next read-write open or rebuild.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTableMetadata};
use serde::Serialize;
use tidemark_core::Projections;
use tidemark_core::findings::SharedHistoryReader;

use super::backup::copy_table_where;
use super::changes::write_changes;
use super::dropped_orphans::write_dropped_orphans;
use super::finding_index::{FindingIndex, copy_entries_up_to};
use super::history_tables::{
    HistoryTables, StoreHistory, fold_read_history_cleanly, take_history_fault,
};
use super::incident_bodies::write_incident_records;
use super::index::{FilterIndexes, FindingIndexBatch, index_event};
use super::open::{CreateTables, open_database};
use super::restore::{
    decode_log, replay_range, restore_latest_usable, restore_projections, write_out_as_layout,
};
use super::scratch::{rebuild_scratch_path, remove_partial_rebuild};
use super::{DbSlot, Handle, LiveState, Store, write_txn};
use crate::codec;
use crate::error::{QueryError, RebuildError, StorageFault};
use crate::tables::open_listed;
use crate::tables::{self, Table, TableVisitor};

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// Events folded.
    pub events: u64,
    /// Whether the rebuilt live state equals the one it replaced (the live snapshots compared:
    /// a finding's history is in the tables the same fold wrote, which `tidemark verify`
    /// checks against the log; reading all of it twice here cost as much as the fold).
    pub state_unchanged: bool,
    /// The snapshot the fold started from: `None` when the whole log was folded from nothing;
    /// after retention, the first readable snapshot at the cut (the derived data up to it is
    /// kept as it was: the events before it are gone).
    pub from_snapshot: Option<u64>,
    /// Size of the store file before.
    pub bytes_before: u64,
    /// Size of the store file after.
    pub bytes_after: u64,
}

/// Where a rebuild is (for a progress bar): first the tables it keeps are copied into the new
/// file, then the log is folded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebuildProgress {
    /// Entries of the tables kept (the log, the id index, the quarantine, `meta`) copied.
    Copying {
        /// Entries copied so far.
        done: u64,
        /// Entries to copy.
        total: u64,
    },
    /// Events of the log folded.
    Folding {
        /// Events folded so far.
        done: u64,
        /// Events to fold.
        total: u64,
    },
}

/// Events folded per commit of the new file.
const FOLD_CHUNK: usize = 10_000;

/// Whether a table of the list holds what the log derives (the indexes, the projection
/// snapshots), which a rebuild writes anew by folding the log, rather than facts it copies whole
/// (the log; the id index, which keeps the ids of events retention dropped, so it is no longer
/// derivable from the log; the quarantine; `meta`). The event filter indexes are derived too
/// (from the log alone): written anew, so a rebuild repairs them as it repairs the others. The
/// `match` is exhaustive: a table added to the list must be placed here, and in `copy_kept`.
fn derived_from_log(table: Table) -> bool {
    match table {
        Table::Meta
        | Table::Log
        | Table::Ids
        | Table::Quarantine
        | Table::QuarantineDigests
        | Table::QuarantineRepeats => false,
        Table::ByFinding
        | Table::FindingGroups
        | Table::ByClusterTime
        | Table::ByIncident
        | Table::ByType
        | Table::Snapshots
        | Table::SnapshotTimes
        | Table::ByCluster
        | Table::BySource
        | Table::ClusterClock
        | Table::LateEvents
        | Table::FindingOccurrences
        | Table::FindingFlapEpisodes
        | Table::ClusterSnapshots
        | Table::IncidentEntries
        | Table::IncidentBodies
        | Table::IncidentOpenings
        | Table::DroppedOrphans
        | Table::Changes => true,
    }
}

/// Copies into `target` what a rebuild keeps of each table: the tables of facts whole and, when
/// the fold starts from the snapshot at `base` (after retention), the derived entries of the
/// positions up to it (which the fold cannot write again) and that snapshot. `progress(read)`
/// counts entries read.
fn copy_kept(
    source: &redb::ReadTransaction,
    target: &Database,
    base: u64,
    progress: &mut impl FnMut(u64),
) -> Result<(), StorageFault> {
    for &table in Table::ALL {
        if derived_from_log(table) && base == 0 {
            continue;
        }
        match table {
            Table::Meta => copy_whole(source, target, table, tables::META, progress)?,
            Table::Log => copy_whole(source, target, table, tables::LOG, progress)?,
            Table::Ids => copy_whole(source, target, table, tables::IDS, progress)?,
            Table::Quarantine => copy_whole(source, target, table, tables::QUARANTINE, progress)?,
            Table::QuarantineDigests => {
                copy_whole(source, target, table, tables::QUARANTINE_DIGESTS, progress)?
            }
            Table::QuarantineRepeats => {
                copy_whole(source, target, table, tables::QUARANTINE_REPEATS, progress)?
            }
            Table::ByCluster => {
                let open = source.open_table(tables::BY_CLUSTER)?;
                let keep = |key: &redb::AccessGuard<'_, (&str, u64)>| key.value().1 <= base;
                copy_table_where(&open, target, tables::BY_CLUSTER, keep, progress)?;
            }
            Table::BySource => {
                let open = source.open_table(tables::BY_SOURCE)?;
                let keep = |key: &redb::AccessGuard<'_, (&str, u64)>| key.value().1 <= base;
                copy_table_where(&open, target, tables::BY_SOURCE, keep, progress)?;
            }
            Table::ClusterClock => {
                // Retention keeps a cluster's marks before the cut: later events are judged
                // late against them.
                let open = source.open_table(tables::CLUSTER_CLOCK)?;
                let keep = |key: &redb::AccessGuard<'_, (&str, i64, u64)>| key.value().2 <= base;
                copy_table_where(&open, target, tables::CLUSTER_CLOCK, keep, progress)?;
            }
            Table::LateEvents => {
                let open = source.open_table(tables::LATE_EVENTS)?;
                let keep = |key: &redb::AccessGuard<'_, (&str, u64)>| key.value().1 <= base;
                copy_table_where(&open, target, tables::LATE_EVENTS, keep, progress)?;
            }
            // A finding's history before the cut cannot be folded again: its rows opened (or
            // started) up to `base` are kept. Those of them that closed after `base` are written
            // again by the fold from `base`, with the same bytes (an insert over an equal row).
            Table::FindingOccurrences => {
                if let Some(open) = open_listed(source, table, tables::FINDING_OCCURRENCES)? {
                    let keep =
                        |key: &redb::AccessGuard<'_, (&str, &str, u64)>| key.value().2 <= base;
                    copy_table_where(&open, target, tables::FINDING_OCCURRENCES, keep, progress)?;
                }
            }
            Table::FindingFlapEpisodes => {
                if let Some(open) = open_listed(source, table, tables::FINDING_FLAP_EPISODES)? {
                    let keep =
                        |key: &redb::AccessGuard<'_, (&str, &str, u64, u64)>| key.value().2 <= base;
                    copy_table_where(&open, target, tables::FINDING_FLAP_EPISODES, keep, progress)?;
                }
            }
            // Incidents' timeline rows written up to the cut: the snapshot at `base` holds
            // only the entries not written out by then. The fold from `base` writes the rest.
            Table::IncidentEntries => {
                if let Some(open) = open_listed(source, table, tables::INCIDENT_ENTRIES)? {
                    let keep =
                        |key: &redb::AccessGuard<'_, (&str, u64, u64)>| key.value().2 <= base;
                    copy_table_where(&open, target, tables::INCIDENT_ENTRIES, keep, progress)?;
                }
            }
            // Incidents written out up to the cut, likewise.
            Table::IncidentBodies => {
                if let Some(open) = open_listed(source, table, tables::INCIDENT_BODIES)? {
                    let keep = |key: &redb::AccessGuard<'_, (&str, u64)>| key.value().1 <= base;
                    copy_table_where(&open, target, tables::INCIDENT_BODIES, keep, progress)?;
                }
            }
            // The orphans of dropped traces judged up to the cut (a row's position written at is
            // in its value; it is at or after the one judged at, in its key): those the
            // snapshot at `base` still holds in memory are written again, under the same key,
            // by the fold from `base`.
            Table::DroppedOrphans => {
                if let Some(open) = open_listed(source, table, tables::DROPPED_ORPHANS)? {
                    let keep = |key: &redb::AccessGuard<'_, codec::DroppedOrphanKey<'_>>| {
                        key.value().4 <= base
                    };
                    copy_table_where(&open, target, tables::DROPPED_ORPHANS, keep, progress)?;
                }
            }
            // The change records of the positions up to the cut: the fold from `base` writes
            // those after it.
            Table::Changes => {
                if let Some(open) = open_listed(source, table, tables::CHANGES)? {
                    let keep = |key: &redb::AccessGuard<'_, u64>| key.value() <= base;
                    copy_table_where(&open, target, tables::CHANGES, keep, progress)?;
                }
            }
            Table::IncidentOpenings => {
                if let Some(open) = open_listed(source, table, tables::INCIDENT_OPENINGS)? {
                    let keep =
                        |key: &redb::AccessGuard<'_, (&str, u64, &str, u64)>| key.value().3 <= base;
                    copy_table_where(&open, target, tables::INCIDENT_OPENINGS, keep, progress)?;
                }
            }
            // The finding index, from whichever table holds it (`by_finding` in a store of
            // layout 8 or earlier), into `finding_groups`.
            Table::ByFinding => {
                let index = FindingIndex::open(source)?;
                copy_entries_up_to(&index, target, base, progress)?;
            }
            Table::FindingGroups => {}
            Table::ByClusterTime => {
                let open = source.open_table(tables::BY_CLUSTER_TIME)?;
                let keep = |key: &redb::AccessGuard<'_, (&str, i64, u64)>| key.value().2 <= base;
                copy_table_where(&open, target, tables::BY_CLUSTER_TIME, keep, progress)?;
            }
            Table::ByIncident => {
                let open = source.open_table(tables::BY_INCIDENT)?;
                let keep = |key: &redb::AccessGuard<'_, (&str, u64)>| key.value().1 <= base;
                copy_table_where(&open, target, tables::BY_INCIDENT, keep, progress)?;
            }
            Table::ByType => {
                let open = source.open_table(tables::BY_TYPE)?;
                let keep = |key: &redb::AccessGuard<'_, (&str, u64)>| key.value().1 <= base;
                copy_table_where(&open, target, tables::BY_TYPE, keep, progress)?;
            }
            Table::Snapshots => {
                let open = source.open_table(tables::SNAPSHOTS)?;
                let keep = |key: &redb::AccessGuard<'_, u64>| key.value() == base;
                copy_table_where(&open, target, tables::SNAPSHOTS, keep, progress)?;
            }
            Table::SnapshotTimes => {
                let open = source.open_table(tables::SNAPSHOT_TIMES)?;
                let keep = |key: &redb::AccessGuard<'_, u64>| key.value() == base;
                copy_table_where(&open, target, tables::SNAPSHOT_TIMES, keep, progress)?;
            }
            // The parts the snapshot at `base` names, if it is a per-cluster one.
            Table::ClusterSnapshots => {
                let named: BTreeSet<(String, u64)> =
                    match source.open_table(tables::SNAPSHOTS)?.get(base)? {
                        Some(bytes) => {
                            codec::cluster_parts::decode_manifest_clusters(base, bytes.value())
                                .ok()
                                .flatten()
                                .unwrap_or_default()
                                .into_iter()
                                .collect()
                        }
                        None => BTreeSet::new(),
                    };
                if let Some(open) = open_listed(source, table, tables::CLUSTER_SNAPSHOTS)? {
                    let keep = |key: &redb::AccessGuard<'_, (&str, u64)>| {
                        let (cluster, at) = key.value();
                        named.contains(&(cluster.to_owned(), at))
                    };
                    copy_table_where(&open, target, tables::CLUSTER_SNAPSHOTS, keep, progress)?;
                }
            }
        }
    }
    Ok(())
}

fn copy_whole<K: redb::Key + 'static, V: redb::Value + 'static>(
    source: &redb::ReadTransaction,
    target: &Database,
    table: Table,
    definition: redb::TableDefinition<'static, K, V>,
    progress: &mut impl FnMut(u64),
) -> Result<(), StorageFault> {
    if let Some(open) = open_listed(source, table, definition)? {
        copy_table_where(&open, target, definition, |_| true, progress)?;
    }
    Ok(())
}

/// Counts the entries `copy_kept` reads, for its progress.
struct EntriesToCopy<'a> {
    source: &'a redb::ReadTransaction,
    base: u64,
    entries: u64,
}

impl TableVisitor for EntriesToCopy<'_> {
    type Error = StorageFault;

    fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
        &mut self,
        table: Table,
        definition: redb::TableDefinition<'static, K, V>,
    ) -> Result<(), StorageFault> {
        if derived_from_log(table) && self.base == 0 {
            return Ok(());
        }
        if let Some(open) = open_listed(self.source, table, definition)? {
            self.entries += open.len()?;
        }
        Ok(())
    }
}

/// Makes the file at `path` durable.
fn sync_file(path: &Path) -> Result<(), RebuildError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| RebuildError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Makes a rename in the directory of `path` durable (best effort: not every filesystem syncs
/// directories).
fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

impl Store {
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

    /// Writes the indexes and the projection snapshots anew by folding the log again, and
    /// replaces the store with the result; the live state becomes the rebuilt one.
    ///
    /// The fold starts from nothing, or, when retention dropped the start of the log, from the
    /// first readable snapshot at the cut (what is derived up to it is kept). It writes a new
    /// file beside the store (the tables of facts copied, the derived ones written by the fold),
    /// makes it durable, checks it, and renames it over the store: a crash at any moment leaves
    /// the old store or the new one, and the new file, compacted, is no larger than the store
    /// compacted. The
    /// directory needs room for it meanwhile. On error the store is unchanged (but for
    /// [`RebuildError::Reopen`]).
    pub fn rebuild(
        &self,
        mut progress: impl FnMut(RebuildProgress),
    ) -> Result<RebuildReport, RebuildError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let scratch = rebuild_scratch_path(&self.path);
        remove_partial_rebuild(&self.path).map_err(|source| RebuildError::Io {
            path: scratch.clone(),
            source,
        })?;
        let bytes_before = file_bytes(&self.path);
        let (rebuilt, from_snapshot) = match self
            .rebuild_into(&scratch, &state, &mut progress)
            .and_then(|built| self.check_rebuilt(&scratch, &state).map(|()| built))
        {
            Ok(built) => built,
            Err(error) => {
                let _ = std::fs::remove_file(&scratch);
                return Err(error);
            }
        };
        if let Err(error) = self.swap_in(&scratch) {
            let _ = std::fs::remove_file(&scratch);
            if let RebuildError::Reopen(_) = error {
                // The new file is the store now; the next write reopens it.
                *state = rebuilt;
            }
            return Err(error);
        }
        // Compared whole: a state restored and not yet written to may still hold closed
        // incidents and dropped traces' orphans in memory that the rebuilt one holds in its
        // tables.
        let state_unchanged =
            rebuilt.projections.whole_live_snapshot() == state.projections.whole_live_snapshot();
        let events = rebuilt.last_seq - from_snapshot.unwrap_or(0);
        *state = rebuilt;
        Ok(RebuildReport {
            events,
            state_unchanged,
            from_snapshot,
            bytes_before,
            bytes_after: file_bytes(&self.path),
        })
    }

    /// Upgrades this store of layout `layout` (or one just upgraded to the layout before the
    /// rules changed) to this build's layout, when the rules it was folded by changed since
    /// (ADR 0007: alerts are findings from layout 6, changes during incidents on their
    /// timelines from layout 7). Its snapshots, history tables, indexes and incident rows were
    /// derived by the older rules, so they are written anew: the store is rebuilt
    /// ([`Store::rebuild`]: a new file beside it, made durable, checked and renamed over it, so a
    /// crash leaves the old store or the new one), then the layout is set. A crash before the
    /// layout is set leaves the older layout: the next open rebuilds again. A store whose log
    /// retention cut starts from its first readable snapshot at the cut, folded by the older
    /// rules (what came before the cut cannot be folded again).
    pub(super) fn upgrade_by_refold(&self, layout: i64) -> Result<(), crate::error::OpenError> {
        let path = self.path.clone();
        let to = tables::STORE_FORMAT;
        let why = super::rules_changed_since(layout);
        // Warnings, so a command's default log level shows them: it runs once, and takes as long
        // as `tidemark rebuild`.
        tracing::warn!(path = %path.display(), from = layout, to, "upgrading the store to layout {to} ({why}): the log is folded again into a new file beside the store, which then replaces it (once)");
        let mut reported = 0;
        let report = self
            .rebuild(|progress| {
                if let RebuildProgress::Folding { done, total } = progress
                    && total > 0
                    && (done == total || done >= reported + total / 10)
                {
                    reported = done;
                    tracing::warn!(done, total, "upgrading to layout {to}: events folded");
                }
            })
            .map_err(|source| crate::error::OpenError::Upgrade {
                path: path.clone(),
                layout: to,
                source: Box::new(source),
            })?;
        let db = self.db()?;
        let txn = db.begin_write()?;
        txn.open_table(tables::META)?.insert(tables::FORMAT, to)?;
        txn.commit()?;
        tracing::warn!(path = %path.display(), events = report.events, from_snapshot = ?report.from_snapshot, "store upgraded to layout {to} ({why})");
        Ok(())
    }

    /// Writes the rebuilt store into the new file `scratch` and closes it: answers the rebuilt
    /// live state and the snapshot the fold started from.
    fn rebuild_into(
        &self,
        scratch: &Path,
        state: &LiveState,
        progress: &mut impl FnMut(RebuildProgress),
    ) -> Result<(LiveState, Option<u64>), RebuildError> {
        let checkpoint = state.last_seq;
        // The rebuilt state reads its history from the store's tables: the new file's, once
        // it is swapped in (the reader holds the database slot, not the file).
        let history: Arc<dyn SharedHistoryReader> = Arc::new(self.history());
        let db = self.db()?;
        let source = db.begin_read()?;
        let mut rebuilt = LiveState {
            log_bytes_since_snapshot: 0,
            last_snapshot: None,
            projections: restore_projections(None, Some(&history), None),
            last_seq: 0,
            max_time: None,
            snapshot_seq: 0,
            quarantine: state.quarantine,
            from_stream: state.from_stream,
            log_start: state.log_start,
            skipped_snapshots: Vec::new(),
            // Nothing of the new file names a part yet: its first snapshot writes them all.
            part_positions: Default::default(),
        };
        let mut from_snapshot = None;
        if state.log_start > 1 {
            // The events before the cut are gone: start from the first snapshot at the cut that
            // reads back (candidates in position order, so the earliest usable one).
            let snapshots = source.open_table(tables::SNAPSHOTS)?;
            let parts =
                tables::open_listed(&source, Table::ClusterSnapshots, tables::CLUSTER_SNAPSHOTS)?;
            let candidates = snapshots
                .range(state.log_start.saturating_sub(1)..=checkpoint)?
                .map(|entry| Ok(entry?.0.value()));
            let mut skipped = Vec::new();
            let Some((seq, max_time, projections)) = restore_latest_usable(
                &snapshots,
                parts.as_ref(),
                candidates,
                state.log_start,
                None,
                Some(&history),
                None,
                None,
                &mut skipped,
            )?
            else {
                return Err(RebuildError::LogRetained {
                    first_retained: state.log_start,
                });
            };
            rebuilt.projections = projections;
            rebuilt.last_seq = seq;
            rebuilt.max_time = max_time;
            rebuilt.snapshot_seq = seq;
            from_snapshot = Some(seq);
        }
        let base = rebuilt.last_seq;

        let written = |e: redb::Error| RebuildError::Write {
            path: scratch.to_path_buf(),
            source: StorageFault(e),
        };
        // A new file (a partial one was removed): nothing to repair, nothing to refuse.
        let target = Database::builder()
            .set_cache_size(self.config.cache_bytes)
            .create(scratch)
            .map_err(|e| written(e.into()))?;
        {
            let txn = write_txn::begin(&target)?;
            tables::visit_tables(&mut CreateTables(&txn)).map_err(StorageFault::from)?;
            txn.commit()?;
        }
        let mut count = EntriesToCopy {
            source: &source,
            base,
            entries: 0,
        };
        tables::visit_tables(&mut count)?;
        let total = count.entries;
        let mut copied = 0;
        progress(RebuildProgress::Copying { done: 0, total });
        copy_kept(&source, &target, base, &mut |read| {
            copied += read;
            progress(RebuildProgress::Copying {
                done: copied,
                total,
            });
        })?;

        // The snapshots are written anew where the store has them (the positions its writes
        // chose and thinning kept): as many as before, so the new file is no larger, and time
        // travel as near to a snapshot as before.
        let snapshot_positions: BTreeSet<u64> = source
            .open_table(tables::SNAPSHOT_TIMES)?
            .range(base + 1..checkpoint)?
            .map(|entry| entry.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()
            .map_err(StorageFault::from)?;
        let log = source.open_table(tables::LOG)?;
        let mut entries = log.range(base + 1..=checkpoint)?;
        let to_fold = checkpoint - base;
        progress(RebuildProgress::Folding {
            done: 0,
            total: to_fold,
        });
        let mut finding_entries = FindingIndexBatch::default();
        let mut said = Vec::new();
        let mut record = Vec::new();
        // While it folds, the rebuilt state reads back what it wrote from the new file (an
        // absorbed incident's written-out entries, a widened flap window's history): the rows
        // of the chunks committed there, and the records of the chunk being folded.
        let target_slot = Arc::new(DbSlot::new(Some(Handle::Write(target))));
        rebuilt
            .projections
            .read_history_from(Arc::new(StoreHistory::over(&target_slot)), None);
        write_out_as_layout(&mut rebuilt.projections, tables::STORE_FORMAT);
        drop(take_history_fault());
        loop {
            let guard = target_slot.read();
            let Some(Handle::Write(target)) = &*guard else {
                unreachable!("the new file is in its slot until the fold is done")
            };
            // Durable commits, although the file is private until the swap: redb reuses the
            // pages a commit frees only once a durable commit follows it, so non-durable chunks
            // left the garbage of every chunk in the file (+24.6 MB of 10.3 GB at 1 M events,
            // every table page for page the same; docs/benchmarks.md).
            let txn = write_txn::begin(target)?;
            let mut in_chunk = 0;
            {
                let mut finding_groups = txn.open_table(tables::FINDING_GROUPS)?;
                let mut by_cluster_time = txn.open_table(tables::BY_CLUSTER_TIME)?;
                let mut by_incident = txn.open_table(tables::BY_INCIDENT)?;
                let mut by_type = txn.open_table(tables::BY_TYPE)?;
                let mut filter_indexes = FilterIndexes::open(&txn)?;
                let mut change_records = txn.open_table(tables::CHANGES)?;
                for entry in entries.by_ref() {
                    let (key, value) = entry.map_err(StorageFault::from)?;
                    let seq = key.value();
                    let stored = decode_log(seq, value.value())?;
                    let event = &stored.event;
                    said.clear();
                    let changes = rebuilt
                        .projections
                        .apply_with_changes(seq, event, &mut said);
                    write_changes(&mut change_records, seq, &said, &mut record)?;
                    index_event(
                        seq,
                        event,
                        changes,
                        &mut finding_entries,
                        &mut by_cluster_time,
                        &mut by_incident,
                        &mut by_type,
                    )?;
                    filter_indexes.add(seq, event)?;
                    rebuilt.last_seq = seq;
                    rebuilt.max_time =
                        Some(rebuilt.max_time.map_or(event.time, |t| t.max(event.time)));
                    if snapshot_positions.contains(&seq) {
                        self.write_snapshot_kept(&txn, &mut rebuilt)?;
                    }
                    in_chunk += 1;
                    if in_chunk == FOLD_CHUNK {
                        break;
                    }
                }
                finding_entries.write(&mut finding_groups)?;
                // The fold reads the store's history back when a flap window widens.
                fold_read_history_cleanly()?;
                HistoryTables::open(&txn)?.write(&rebuilt.projections.take_history_records())?;
                write_incident_records(&txn, &mut rebuilt.projections, rebuilt.last_seq)?;
                write_dropped_orphans(&txn, &mut rebuilt.projections)?;
            }
            txn.commit()?;
            drop(guard);
            progress(RebuildProgress::Folding {
                done: rebuilt.last_seq - base,
                total: to_fold,
            });
            if in_chunk < FOLD_CHUNK {
                break;
            }
        }
        drop(entries);
        drop(log);
        drop(source);
        drop(db);
        let Some(Handle::Write(mut target)) = target_slot.write().take() else {
            unreachable!("the new file is in its slot until the fold is done")
        };
        // Once swapped in, the new file is the store's: read through its slot.
        rebuilt.projections.read_history_from(history, None);
        write_out_as_layout(&mut rebuilt.projections, tables::STORE_FORMAT);
        // The last commit.
        let txn = write_txn::begin(&target)?;
        if rebuilt.last_seq > rebuilt.snapshot_seq {
            self.write_snapshot_kept(&txn, &mut rebuilt)?;
        }
        // Written for every position folded (and, after retention, copied up to the cut).
        txn.open_table(tables::META)?
            .insert(tables::EVENT_INDEXES_TO, rebuilt.last_seq as i64)?;
        txn.open_table(tables::META)?
            .insert(tables::CHANGES_TO, rebuilt.last_seq as i64)?;
        txn.commit()?;
        while target.compact().map_err(|e| written(e.into()))? {}
        target.close().map_err(|e| written(e.into()))?;
        sync_file(scratch)?;
        Ok((rebuilt, from_snapshot))
    }

    /// Checks that the new file restores, with the checkpoint and the log of the store it
    /// replaces.
    fn check_rebuilt(&self, scratch: &Path, state: &LiveState) -> Result<(), RebuildError> {
        let info = Self::inspect_backup(scratch).map_err(|e| RebuildError::Check {
            path: scratch.to_path_buf(),
            problem: e.to_string(),
        })?;
        let events = {
            let db = self.db()?;
            let txn = db.begin_read()?;
            txn.open_table(tables::LOG)?.len()?
        };
        if (info.checkpoint, info.events) != (state.last_seq, events) {
            return Err(RebuildError::Check {
                path: scratch.to_path_buf(),
                problem: format!(
                    "checkpoint {} with {} events, expected checkpoint {} with {events}",
                    info.checkpoint, info.events, state.last_seq
                ),
            });
        }
        Ok(())
    }

    /// Renames the new file over the store and opens it in place of the old one. The rename
    /// happens while this process still holds the old file: no other process can open the store
    /// between the check and the rename (one that opens the new file right after the rename
    /// finds a complete store, and this reopen then fails with `Reopen`).
    fn swap_in(&self, scratch: &Path) -> Result<(), RebuildError> {
        std::fs::rename(scratch, &self.path).map_err(|source| RebuildError::Io {
            path: self.path.clone(),
            source,
        })?;
        sync_parent(&self.path);
        let mut slot = self.db.write();
        // Closes the old file (no longer named by the path).
        *slot = None;
        let db = open_database(&self.path, self.config.cache_bytes)
            .map_err(RebuildError::Reopen)?
            .db;
        *slot = Some(Handle::Write(db));
        tracing::info!(path = %self.path.display(), "store rebuilt: the new file replaced it");
        Ok(())
    }
}
