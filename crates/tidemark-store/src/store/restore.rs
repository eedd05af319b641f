//! The live state restored from the latest usable snapshot and the log after it (at open, after
//! a reopen, for time travel and to check a backup), and the decoding of stored records into
//! errors that name table and key.

use std::ops::RangeInclusive;

use redb::{ReadableTable, ReadableTableMetadata};
use std::sync::Arc;

use tidemark_core::findings::SharedHistoryReader;
use tidemark_core::{ClusterPartSource, Event, Projections, Timestamp};

use super::history_tables::{fold_read_history_cleanly, take_history_fault};
use super::snapshot_parts::{self, UsableSnapshot};
use super::{LiveState, SnapshotMark, Store};
use crate::codec::{self, StoredEvent, StoredProjections};
use crate::error::{CorruptRecord, OpenError, ReadFault};
use crate::quarantine::QuarantineTally;
use crate::tables::{self, Table};

pub(crate) fn corrupt(
    table: &'static str,
    key: impl ToString,
    problem: codec::CodecError,
) -> CorruptRecord {
    CorruptRecord::new(table, key, problem)
}

pub(crate) fn decode_log(seq: u64, bytes: &[u8]) -> Result<StoredEvent, CorruptRecord> {
    codec::decode_event(seq, bytes).map_err(|e| corrupt("log", seq, e))
}

/// A snapshot record (a per-cluster one read with its parts from `parts`), or `None` when an
/// older format wrote it (then the log is folded instead).
pub(crate) fn decode_snapshot_or_outdated(
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    seq: u64,
    bytes: &[u8],
) -> Result<Option<codec::SnapshotRecord<StoredProjections>>, ReadFault> {
    if codec::is_outdated_snapshot(bytes) {
        return Ok(None);
    }
    snapshot_parts::decode_with_parts(parts, seq, bytes, false).map(Some)
}

/// No `cluster_snapshots` table: a store of layout 1 (never written a per-cluster snapshot).
pub(super) const NO_PARTS: Option<&redb::ReadOnlyTable<(&'static str, u64), &'static [u8]>> = None;

/// Says that a corrupt snapshot is skipped (a snapshot is a cache of the log: the state is
/// folded from an earlier snapshot or from the log instead).
pub(super) fn skip_corrupt_snapshot(corrupt: &CorruptRecord) {
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
/// A per-cluster snapshot's parts are checked only with `check_parts` (see
/// `snapshot_parts::usable_with_parts`).
///
/// With `not_after` (time travel by time, whose candidates come from `snapshot_times`), a
/// snapshot whose own latest event time is later is refused too: its `snapshot_times` entry
/// is wrong, and starting from it would show events after the time asked for.
#[allow(clippy::too_many_arguments)]
pub(super) fn latest_usable_snapshot(
    snapshots: &impl ReadableTable<u64, &'static [u8]>,
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    candidates: impl Iterator<Item = Result<u64, ReadFault>>,
    log_start: u64,
    not_after: Option<Timestamp>,
    history_in_tables: bool,
    check_parts: bool,
    skipped: &mut Vec<CorruptRecord>,
) -> Result<Option<UsableSnapshot>, ReadFault> {
    for seq in candidates {
        let seq = seq?;
        if seq.saturating_add(1) < log_start {
            break;
        }
        let Some(bytes) = snapshots.get(seq)? else {
            continue;
        };
        let usable = if codec::is_outdated_snapshot(bytes.value()) {
            Ok(None)
        } else {
            snapshot_parts::usable_with_parts(parts, seq, bytes.value(), false, check_parts)
                .map(Some)
        };
        match usable {
            Ok(Some(record)) if !history_in_tables && record.is_live() => {
                // Only a store of layout 2 writes live snapshots (the upgrade sets the layout
                // in the transaction that writes its first): their history is in tables this
                // store does not have.
                let corrupt = corrupt(
                    "snapshots",
                    seq,
                    codec::CodecError::Inconsistent(
                        "a snapshot without history in a store of layout 1".into(),
                    ),
                );
                skip_corrupt_snapshot(&corrupt);
                skipped.push(corrupt);
            }
            Ok(Some(record))
                if not_after.is_some_and(|t| record.max_time().is_some_and(|max| max > t)) =>
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
                match snapshot_parts::usable_with_parts(
                    parts,
                    seq,
                    bytes.value(),
                    true,
                    check_parts,
                ) {
                    Ok(record)
                        if not_after
                            .is_none_or(|t| record.max_time().is_none_or(|max| max <= t)) =>
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
                    Err(ReadFault::Corrupt(corrupt)) => {
                        skip_corrupt_snapshot(&corrupt);
                        skipped.push(corrupt);
                    }
                    Err(storage) => return Err(storage),
                }
            }
            Ok(None) => {}
            Err(ReadFault::Corrupt(corrupt)) => {
                skip_corrupt_snapshot(&corrupt);
                skipped.push(corrupt);
            }
            Err(storage) => return Err(storage),
        }
    }
    Ok(None)
}

/// The latest snapshot among `candidates` that [`latest_usable_snapshot`] finds usable,
/// restored (a per-cluster one part by part, the history read through `history` as of
/// `as_of`): its position, its latest event time and its projections. A snapshot whose restore
/// meets a corrupt record (a part that passed its checksum but does not decode) is skipped
/// like one that does not decode, and the candidates after it are tried.
///
/// With `lazily`, a per-cluster snapshot's parts are neither checked nor read here: the
/// projections read each through `lazily` when its cluster is first needed (ADR 0006, "Reopen
/// across clusters"); a corrupt part is met then, as a fault of that read or fold.
#[allow(clippy::too_many_arguments)]
pub(super) fn restore_latest_usable(
    snapshots: &impl ReadableTable<u64, &'static [u8]>,
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    mut candidates: impl Iterator<Item = Result<u64, ReadFault>>,
    log_start: u64,
    not_after: Option<Timestamp>,
    history: Option<&Arc<dyn SharedHistoryReader>>,
    as_of: Option<u64>,
    lazily: Option<&Arc<dyn ClusterPartSource>>,
    skipped: &mut Vec<CorruptRecord>,
) -> Result<Option<(u64, Option<Timestamp>, Projections)>, ReadFault> {
    loop {
        let Some(usable) = latest_usable_snapshot(
            snapshots,
            parts,
            candidates.by_ref(),
            log_start,
            not_after,
            history.is_some(),
            lazily.is_none(),
            skipped,
        )?
        else {
            return Ok(None);
        };
        let (seq, max_time) = (usable.seq(), usable.max_time());
        match usable.restore(parts, history, as_of, lazily) {
            Ok(projections) => return Ok(Some((seq, max_time, projections))),
            Err(ReadFault::Corrupt(corrupt)) => {
                skip_corrupt_snapshot(&corrupt);
                skipped.push(corrupt);
            }
            Err(storage) => return Err(storage),
        }
    }
}

impl UsableSnapshot {
    /// The projections it holds, as [`restore_projections`] restores them: a per-cluster
    /// snapshot's parts read from `parts` and restored one at a time. A live snapshot needs
    /// `history` (`latest_usable_snapshot` skips them in a store without one). With `lazily`,
    /// a per-cluster snapshot's parts are read through it, each when its cluster is first
    /// needed.
    pub(super) fn restore(
        self,
        parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
        history: Option<&Arc<dyn SharedHistoryReader>>,
        as_of: Option<u64>,
        lazily: Option<&Arc<dyn ClusterPartSource>>,
    ) -> Result<Projections, ReadFault> {
        match self {
            Self::Whole(record) => Ok(restore_projections(
                Some(record.projections),
                history,
                as_of,
            )),
            Self::Parts(record) if let Some(source) = lazily => {
                Ok(snapshot_parts::restore_parts_lazily(
                    record,
                    source.clone(),
                    history.cloned().expect("checked by the caller"),
                    as_of,
                ))
            }
            Self::Parts(record) => snapshot_parts::restore_parts(
                record,
                parts,
                history.cloned().expect("checked by the caller"),
                as_of,
            ),
        }
    }
}

/// The projections of a snapshot (or of none: the empty state): with the history the snapshot
/// holds in memory (a store of layout 1), or with the history read through `history` (layout
/// 2), the live state's (`as_of` `None`) or a past state's. A snapshot with its history restored
/// into a store of layout 2 drops it: the tables hold it.
pub(super) fn restore_projections(
    record: Option<StoredProjections>,
    history: Option<&Arc<dyn SharedHistoryReader>>,
    as_of: Option<u64>,
) -> Projections {
    let mut projections = match record {
        Some(snapshot) => {
            snapshot.restore(|| history.cloned().expect("checked by the caller"), as_of)
        }
        None => Projections::new(),
    };
    if let Some(history) = history
        && !projections.findings().history_is_shared()
    {
        projections.read_history_from(history.clone(), as_of);
    }
    projections
}

/// A history reader for a state whose history nobody reads (an upgrade's fold, a backup's
/// check): the fold writes history, it never reads it.
pub(crate) fn unread_history() -> Arc<dyn SharedHistoryReader> {
    Arc::new(tidemark_core::findings::MemoryHistory::new())
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
pub(super) fn replay_range(
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

/// Says that a cluster's part, read when the cluster was first needed, does not read back, so
/// the state is restored whole (which skips its snapshot).
pub(super) fn warn_restoring_whole(corrupt: &CorruptRecord) {
    tracing::warn!(
        table = corrupt.table,
        key = %corrupt.key,
        problem = %corrupt.problem,
        "a cluster's snapshot part does not read back: restoring the state whole, from an earlier \
         snapshot or the log (`tidemark verify` lists every corrupt record)"
    );
}

impl Store {
    /// Restores the live state whole (every part of its snapshot read now), after `corrupt`, a
    /// cluster's part the state restored lazily read when first needed, did not read back: a
    /// whole restore skips that snapshot for an earlier one. Called with `state` held
    /// exclusively (the writer's, or [`Self::restore_whole_after`]'s).
    pub(super) fn restore_whole(
        &self,
        state: &mut LiveState,
        corrupt: &CorruptRecord,
    ) -> Result<(), OpenError> {
        warn_restoring_whole(corrupt);
        let history = self.history_reader(state);
        *state = Self::load_state(self.db()?.begin_read()?, history, None)?;
        Ok(())
    }

    /// [`Self::restore_whole`] for a read that met `corrupt`: takes the writer's lock and the
    /// state (in the writer's order), so no batch is half applied. The read itself answers the
    /// fault; those after it read the state restored whole.
    pub(super) fn restore_whole_after(&self, corrupt: &CorruptRecord) {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = self.restore_whole(&mut state, corrupt) {
            tracing::error!(%error, "could not restore the state whole; the next read that needs the part fails again");
        }
    }

    /// Projection snapshots found corrupt and skipped when the live state was restored (it was
    /// folded from an earlier snapshot or the log instead).
    pub fn skipped_snapshots(&self) -> Vec<CorruptRecord> {
        self.read_state().skipped_snapshots.clone()
    }

    /// Restores the live state: the latest usable snapshot, then the log after it up to the
    /// checkpoint. A corrupt snapshot is skipped with a warning (an earlier one, or the log
    /// from its start, is folded instead); a corrupt log record is an error.
    ///
    /// `history` is the reader of the store's history tables (layout 2), `None` for a store of
    /// layout 1, whose snapshots hold the history (kept in memory). With `lazily`, a
    /// per-cluster snapshot is restored without reading its parts (see
    /// [`restore_latest_usable`]).
    pub(super) fn load_state(
        txn: redb::ReadTransaction,
        history: Option<Arc<dyn SharedHistoryReader>>,
        lazily: Option<Arc<dyn ClusterPartSource>>,
    ) -> Result<LiveState, OpenError> {
        let meta = txn.open_table(tables::META)?;
        let checkpoint = meta.get(tables::CHECKPOINT)?.map_or(0, |v| v.value()) as u64;
        let max_time = time_from_meta(meta.get(tables::MAX_TIME)?.map(|v| v.value()));
        let from_stream =
            meta.get(tables::LOG_SOURCE)?.map(|v| v.value()) == Some(tables::LOG_FROM_STREAM);
        let log_start = meta.get(tables::LOG_START)?.map_or(1, |v| v.value()) as u64;
        let layout = meta.get(tables::FORMAT)?.map_or(0, |v| v.value());
        let snapshots = txn.open_table(tables::SNAPSHOTS)?;
        let parts = tables::open_listed(&txn, Table::ClusterSnapshots, tables::CLUSTER_SNAPSHOTS)?;
        let mut skipped_snapshots = Vec::new();
        let candidates = snapshots
            .range(..=checkpoint)?
            .rev()
            .map(|entry| Ok(entry?.0.value()));
        let restored = restore_latest_usable(
            &snapshots,
            parts.as_ref(),
            candidates,
            log_start,
            None,
            history.as_ref(),
            None,
            lazily.as_ref(),
            &mut skipped_snapshots,
        )?;
        let (snapshot_seq, mut projections) = match restored {
            Some((seq, _, projections)) => (seq, projections),
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
                (0, restore_projections(None, history.as_ref(), None))
            }
        };
        let log = txn.open_table(tables::LOG)?;
        check_checkpoint(&log, checkpoint, from_stream || log_start > 1)?;
        drop(take_history_fault());
        replay_range(
            &log,
            snapshot_seq + 1..=checkpoint,
            &mut projections,
            |_| false,
        )?;
        fold_read_history_cleanly()?;
        // The history those events closed is in the tables already (written with them), and
        // so are the timeline entries they wrote out.
        drop(projections.take_history_records());
        // Those events were folded as a past state folds (nothing written out, everything kept
        // in memory): the live state forgets an incident only in the transaction that writes
        // its version, never on the word of rows written earlier (a snapshot older than the
        // store's upgrade to layout 4, or a rebuild's base, holds closed incidents the rows may
        // not). From now on, a store of layout 3 writes out the timeline entries of incidents
        // that are not open (`incident_entries`), and one of layout 4 the incidents too
        // (`incident_bodies`); what the replay and the snapshot left in memory of closed
        // incidents is written out with the first batch (`Projections::write_out_closed_incidents`).
        // Before layout 3, everything stays in memory (a read-write open upgrades it,
        // `store/open.rs`).
        // Likewise, from layout 5 the orphans of traces a cluster drops go to
        // `dropped_orphans` at the end of the cluster's next event, with those its part or the
        // replay left in memory.
        write_out_as_layout(&mut projections, layout);
        let quarantine = QuarantineTally::load(&txn)?;
        let (last_snapshot, part_positions) = match snapshot_seq {
            0 => (None, snapshot_parts::PartPositions::new()),
            seq => match snapshots.get(seq)? {
                Some(bytes) => (
                    Some(SnapshotMark {
                        bytes: bytes.value().len() as u64,
                        paid_for: false,
                    }),
                    // The parts it names (it was read with them); none for one of one value.
                    codec::cluster_parts::decode_manifest_clusters(seq, bytes.value())
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                ),
                None => (None, snapshot_parts::PartPositions::new()),
            },
        };
        Ok(LiveState {
            log_bytes_since_snapshot: 0,
            last_snapshot,
            projections,
            last_seq: checkpoint,
            max_time,
            snapshot_seq,
            quarantine,
            from_stream,
            log_start,
            skipped_snapshots,
            part_positions,
        })
    }
}

/// Turns on what the live state of a store of `layout` writes out of its fold, as it closes or
/// drops it: the timeline entries of incidents that are not open (layout 3), the incidents too
/// (layout 4), the orphans of dropped traces (layout 5). Before layout 3 everything stays in
/// memory.
pub(super) fn write_out_as_layout(projections: &mut Projections, layout: i64) {
    if layout >= tables::DROPPED_ORPHAN_ROWS_SINCE {
        projections.write_dropped_orphans_out();
    }
    if layout >= tables::INCIDENT_ROWS_SINCE {
        projections.write_incidents_out();
    } else if layout >= tables::TIMELINE_ROWS_SINCE {
        projections.write_timelines_out();
    }
}
