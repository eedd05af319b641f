//! The in-place upgrade of a store of layout 1 (the findings' history inside every snapshot) to
//! layout 2 (ADR 0006: the history in the `finding_occurrences` and `finding_flap_episodes`
//! tables, live snapshots without it), at its first read-write open.
//!
//! The log is folded once with a projection whose history is collected and written to the
//! tables, in chunks of [`UPGRADE_CHUNK`] events (one transaction each, progress logged); then
//! one transaction converts every snapshot to a live snapshot and sets the layout. A store whose
//! log retention cut starts from its latest usable snapshot instead (whose history, held in the
//! snapshot, is written to the tables first). A crash before the last transaction leaves layout
//! 1: the next open clears the history tables and starts again.

use redb::{Database, ReadableDatabase, ReadableTable};
use std::path::Path;
use std::sync::Arc;
use tidemark_core::Projections;

use super::history_tables::{
    HistoryTables, StoreHistory, fold_read_history_cleanly, take_history_fault,
};
use super::restore::{NO_PARTS, latest_usable_snapshot, unread_history};
use super::write_txn;
use crate::codec::{self, StoredProjections};
use crate::error::{OpenError, ReadFault};
use crate::tables;

/// Events folded per transaction while a store is upgraded.
const UPGRADE_CHUNK: u64 = 100_000;

/// Upgrades the store of `db` (layout 1) to layout 2 in place; see the module documentation.
/// `history` reads the tables of `db` (through the store's slot, which holds it): the fold
/// reads back what earlier chunks wrote when a flap window widens.
pub(super) fn upgrade_to_layout_2(
    db: &Database,
    path: &Path,
    history: &StoreHistory,
) -> Result<(), OpenError> {
    let (checkpoint, log_start) = {
        let txn = db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        let read = |key| -> Result<Option<u64>, OpenError> {
            Ok(meta.get(key)?.map(|v| v.value().max(0) as u64))
        };
        (
            read(tables::CHECKPOINT)?.unwrap_or(0),
            read(tables::LOG_START)?.unwrap_or(1),
        )
    };
    // Warnings, so a command's default log level shows them: it runs once, and takes about as
    // long as a rebuild (3 s for 100,000 events in benchmarks.md).
    tracing::warn!(path = %path.display(), checkpoint, "upgrading the store to layout 2: a finding's history moves out of the snapshots into its own tables (once; the log is folded again)");
    let no_reader = unread_history();
    // Left by an upgrade that did not finish: start again.
    let txn = write_txn::begin(db)?;
    txn.delete_table(tables::FINDING_OCCURRENCES)?;
    txn.delete_table(tables::FINDING_FLAP_EPISODES)?;
    txn.open_table(tables::FINDING_OCCURRENCES)?;
    txn.open_table(tables::FINDING_FLAP_EPISODES)?;
    txn.commit()?;

    let (mut done, mut projections) = if log_start > 1 {
        // The log before the cut cannot be folded again: the latest usable snapshot holds the
        // state and the history up to it.
        let txn = db.begin_read()?;
        let snapshots = txn.open_table(tables::SNAPSHOTS)?;
        let candidates = snapshots
            .range(..=checkpoint)?
            .rev()
            .map(|entry| Ok::<_, ReadFault>(entry?.0.value()));
        let mut skipped = Vec::new();
        let record = latest_usable_snapshot(
            &snapshots,
            NO_PARTS,
            candidates,
            log_start,
            None,
            false,
            true,
            &mut skipped,
        )?
        .ok_or(OpenError::NoUsableSnapshot {
            first_retained: log_start,
        })?;
        let seq = record.seq();
        // A store of layout 1 holds no live snapshot (skipped above): this restores the
        // history the snapshot holds, in memory.
        let projections = record.restore(NO_PARTS, None, None, None)?;
        let txn = write_txn::begin(db)?;
        {
            let mut history = HistoryTables::open(&txn)?;
            let records: Vec<_> = projections
                .findings()
                .memory_history()
                .map(|memory| memory.records().collect())
                .unwrap_or_default();
            history.write(&records)?;
        }
        txn.commit()?;
        (seq, projections)
    } else {
        (0, Projections::new())
    };
    projections.read_history_from(Arc::new(history.clone()), None);

    let started = done;
    drop(take_history_fault());
    while done < checkpoint {
        let until = done.saturating_add(UPGRADE_CHUNK).min(checkpoint);
        let txn = write_txn::begin(db)?;
        {
            let log = txn.open_table(tables::LOG)?;
            for entry in log.range(done + 1..=until)? {
                let (key, value) = entry?;
                let stored = super::restore::decode_log(key.value(), value.value())
                    .map_err(ReadFault::from)?;
                projections.apply(key.value(), &stored.event);
            }
            fold_read_history_cleanly()?;
            HistoryTables::open(&txn)?.write(&projections.take_history_records())?;
        }
        txn.commit()?;
        done = until;
        tracing::warn!(
            folded = done - started,
            of = checkpoint - started,
            "upgrading the store to layout 2"
        );
    }

    // Every snapshot becomes a live snapshot, and the layout moves, in one transaction.
    let txn = write_txn::begin(db)?;
    {
        let mut snapshots = txn.open_table(tables::SNAPSHOTS)?;
        let keys: Vec<u64> = snapshots
            .iter()?
            .map(|entry| entry.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for seq in keys {
            let converted = {
                let Some(bytes) = snapshots.get(seq)? else {
                    continue;
                };
                match codec::decode_snapshot_of_any_format(seq, bytes.value()) {
                    // An older format's snapshot is a starting point only for a log that
                    // retention cut, where it is read as it is (under its format's rules, which
                    // a live snapshot would not say): kept then, else it goes.
                    Ok(_) if codec::is_outdated_snapshot(bytes.value()) => {
                        if log_start > 1 {
                            continue;
                        }
                        None
                    }
                    Ok(record) => {
                        let past = match record.projections {
                            StoredProjections::WithHistory(snapshot) => {
                                let mut past = Projections::restore_owned(snapshot);
                                past.read_history_from(no_reader.clone(), Some(seq));
                                past
                            }
                            StoredProjections::Live(snapshot) => Projections::restore_live_owned(
                                snapshot,
                                no_reader.clone(),
                                Some(seq),
                            ),
                        };
                        Some(codec::encode_snapshot_of(seq, record.max_time, &past))
                    }
                    // A corrupt snapshot goes (a snapshot is a cache of the log).
                    Err(error) => {
                        tracing::warn!(snapshot = seq, %error, "a snapshot the upgrade cannot read is dropped");
                        None
                    }
                }
            };
            match converted {
                Some(bytes) => {
                    snapshots.insert(seq, bytes.as_slice())?;
                }
                None => {
                    snapshots.remove(seq)?;
                    txn.open_table(tables::SNAPSHOT_TIMES)?.remove(seq)?;
                }
            }
        }
        // Layout 2: the open goes on to layout 4 (`upgrade_to_layout_4`).
        txn.open_table(tables::META)?
            .insert(tables::FORMAT, tables::HISTORY_TABLES_SINCE)?;
    }
    txn.commit()?;
    tracing::warn!(path = %path.display(), "store upgraded to layout 2");
    Ok(())
}

/// Upgrades the store of `db` from layout 2 or 3 to layout 4 (ADR 0006, steps 3 and 4:
/// incidents' timeline entries in `incident_entries`, incidents that are not open in
/// `incident_bodies`), given its live state `state`, restored from its snapshots: every incident
/// that is not open is written out at the checkpoint with the entries it holds in memory, with
/// the new layout, in one transaction, and forgotten; from then on the live state writes
/// incidents out as they close. Snapshots are not rewritten: one written before holds every
/// incident, which a restore keeps in memory until its first batch writes them out again
/// (`Projections::write_out_closed_incidents`), and a past state keeps. Cheap: it writes what
/// the closed incidents hold, and folds nothing.
pub(super) fn upgrade_to_layout_4(
    db: &Database,
    path: &Path,
    state: &mut super::LiveState,
) -> Result<(), OpenError> {
    let projections = &mut state.projections;
    projections.write_incidents_out();
    projections.write_out_closed_incidents(state.last_seq);
    let entries = projections.take_timeline_records();
    let incidents = projections.take_incident_body_records();
    let txn = write_txn::begin(db)?;
    super::incident_rows::write_timeline_records(&txn, &entries)?;
    super::incident_bodies::write_incident_body_records(&txn, &incidents)?;
    txn.open_table(tables::META)?
        .insert(tables::FORMAT, tables::INCIDENT_ROWS_SINCE)?;
    txn.commit()?;
    tracing::warn!(path = %path.display(), entries = entries.len(), incidents = incidents.len(), "store upgraded to layout 4: closed incidents and their timelines moved to their own tables");
    Ok(())
}

/// Upgrades the store of `db` from layout 4 (or an earlier one just upgraded to it) to layout 5
/// (ADR 0006, step 5: the orphans of dropped traces in `dropped_orphans`, which the open has
/// created), given its live state `state`: from then on the live state writes them out. What
/// its snapshots hold of them is written out by the first event of their cluster (the parts
/// of the clusters are read as they are needed, so the upgrade reads none). Cheap: it writes the
/// layout only.
pub(super) fn upgrade_to_layout_5(
    db: &Database,
    path: &Path,
    state: &mut super::LiveState,
) -> Result<(), OpenError> {
    state.projections.write_dropped_orphans_out();
    let txn = write_txn::begin(db)?;
    txn.open_table(tables::META)?
        .insert(tables::FORMAT, tables::DROPPED_ORPHAN_ROWS_SINCE)?;
    txn.commit()?;
    tracing::warn!(path = %path.display(), "store upgraded to layout 5: the orphans of dropped traces move to their own table");
    Ok(())
}

/// Upgrades a store of layout 8 or earlier to layout 9 at its first read-write open: its
/// finding index moves from `by_finding` (an entry per change) into `finding_groups` (a value
/// per finding per run of positions, issue 20), and the layout is set.
///
/// The groups are written in chunks of a million entries (`finding_index::copy_entries_up_to`,
/// a transaction each, progress logged) while `by_finding` stays whole; then one transaction
/// empties `by_finding` and sets the layout. Readers read `by_finding` as long as it holds an
/// entry (`finding_index::FindingIndex::open`), so a crash before that last transaction leaves
/// a store of the older layout whose index is whole where it is read, and whose next open
/// clears the groups written and starts again. A store whose `by_finding` is empty (none of its events
/// changed a finding, or the open's refold wrote its index as groups) only gets its layout.
pub(super) fn upgrade_to_layout_9(db: &Database, path: &Path) -> Result<(), OpenError> {
    use super::finding_index::{FindingIndex, copy_entries_up_to};
    use redb::ReadableTableMetadata;

    let read = db.begin_read()?;
    let total = read.open_table(tables::BY_FINDING)?.len()?;
    if total > 0 {
        tracing::warn!(path = %path.display(), entries = total, "upgrading the store to layout 9: the finding index moves into `finding_groups`, a value per finding per batch (once)");
        // Left by an upgrade that did not finish: start again.
        let txn = write_txn::begin(db)?;
        txn.delete_table(tables::FINDING_GROUPS)?;
        txn.open_table(tables::FINDING_GROUPS)?;
        txn.commit()?;
        // `by_finding` holds entries: the index reads them there.
        let index = FindingIndex::open(&read)?;
        let mut moved = 0u64;
        copy_entries_up_to(&index, db, u64::MAX, &mut |read| {
            moved += read;
            tracing::warn!(moved, of = total, "upgrading the store to layout 9");
        })?;
    }
    drop(read);
    let txn = write_txn::begin(db)?;
    txn.delete_table(tables::BY_FINDING)?;
    txn.open_table(tables::BY_FINDING)?;
    txn.open_table(tables::META)?
        .insert(tables::FORMAT, tables::FINDING_GROUPS_SINCE)?;
    txn.commit()?;
    if total > 0 {
        tracing::warn!(path = %path.display(), entries = total, "store upgraded to layout 9: the finding index is in `finding_groups`");
    } else {
        tracing::info!(path = %path.display(), "store layout set to 9 (its finding index was empty)");
    }
    Ok(())
}
