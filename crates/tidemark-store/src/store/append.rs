//! The write path: a batch appended in one write transaction (log records, indexes, quarantine
//! records, the checkpoint, a snapshot every `snapshot_every` events), and what happens when a
//! commit fails: the database reopened at its last commit, and, when the disk is full, batches
//! refused without touching the disk for `disk_full_retry`.

use std::time::Instant;

use redb::{ReadableTable, WriteTransaction};
use serde::Serialize;
use tidemark_core::Timestamp;

use super::changes::write_changes;
use super::dropped_orphans::write_dropped_orphans;
use super::history_tables::{HistoryTables, fold_read_history_cleanly, take_history_fault};
use super::incident_bodies::write_incident_records;
use super::index::{FilterIndexes, FindingIndexBatch, index_event};
use super::open::open_database;
use super::snapshot_parts;
use super::{Handle, LiveState, SnapshotMark, Store};
use crate::codec::{self, EncodedEvent};
use crate::error::{AppendError, OpenError, StorageFault};
use crate::input::{Input, Outcome, PreparedBatch};
use crate::quarantine::{self, QuarantineTables};
use crate::tables;

/// One item of a batch as the write path takes it: its given position (a replica's), the
/// input, and its event's log record when it was encoded beforehand.
type BatchItem<'a> = (Option<u64>, &'a Input, Option<&'a EncodedEvent>);

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
pub(super) struct WriteBlock {
    status: DiskFull,
    retry_at: Instant,
}

impl Store {
    /// Closes and reopens the database after a failed write (redb refuses every operation
    /// with `PreviousIo` after an I/O error until the file is reopened; reopening repairs it
    /// back to the last commit), then reloads the live state from that commit. Called with the
    /// writer and state locks held.
    fn reopen(&self, state: &mut LiveState) -> Result<(), OpenError> {
        {
            let mut slot = self.db.write();
            // The old handle holds the file lock: close it before opening again.
            *slot = None;
            let db = open_database(&self.path, self.config.cache_bytes)?.db;
            *slot = Some(Handle::Write(db));
        }
        // The state is reloaded through the slot (its fold may read history back through it);
        // no reader sees the new handle before the state: the caller holds `state`.
        let history = self.history_reader(state);
        // Whole, not lazily: a reload follows a failure, which may be a cluster's part that does
        // not read back (a whole restore skips that snapshot for an earlier one).
        let loaded = (|| Self::load_state(self.db()?.begin_read()?, history, None))();
        match loaded {
            Ok(loaded) => *state = loaded,
            Err(error) => {
                // Closed again: the next write tries again, and no read answers from a state
                // that may hold part of a failed batch.
                *self.db.write() = None;
                return Err(error);
            }
        }
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
        self.append_with(inputs.iter().map(|input| (None, input, None)), recorded_at)
    }

    /// [`Store::append`] or [`Store::append_positioned`] of a batch whose log records were
    /// encoded when it was prepared ([`PreparedBatch`], on the thread that decoded it): the same
    /// outcome and the same stored bytes, with less work under the writer lock.
    pub fn append_prepared(&self, batch: &PreparedBatch) -> Result<Vec<Outcome>, AppendError> {
        self.append_with(
            batch
                .items
                .iter()
                .map(|(position, input, record)| (*position, input, record.as_ref())),
            batch.recorded_at,
        )
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
                .map(|(position, input)| (Some(*position), input, None)),
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
        items: impl Iterator<Item = BatchItem<'a>> + Clone,
        recorded_at: Timestamp,
    ) -> Result<Vec<Outcome>, AppendError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(refusal) = self.refusal_while_disk_full() {
            return Err(refusal);
        }
        let closed = self.db.read().is_none();
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
        let listened = items.clone();
        let mut result = self.append_in_txn(&mut state, items.clone(), recorded_at);
        if let Err(AppendError::Corrupt(corrupt)) = &result
            && snapshot_parts::is_part(corrupt)
        {
            // The live state was restored lazily and the batch needed a cluster whose part does
            // not read back: restored whole (skipping that snapshot), the batch is tried again.
            result = match self.restore_whole(&mut state, corrupt) {
                Ok(()) => self.append_in_txn(&mut state, items, recorded_at),
                Err(error) => {
                    tracing::error!(%error, "could not restore the state whole after a corrupt part");
                    result
                }
            };
        }
        match result {
            Ok(outcomes) => {
                self.log_quarantine_drops(state.quarantine.dropped - before.3.dropped);
                let checkpoint = state.last_seq;
                // Readers see the batch once the state lock is released; listeners wake them.
                drop(state);
                if checkpoint != before.0 {
                    self.committed(before.0, checkpoint, || {
                        listened
                            .zip(&outcomes)
                            .filter_map(|((_, input, _), outcome)| match (input, outcome) {
                                (Input::Event(event), Outcome::Accepted { seq }) => {
                                    Some((*seq, event))
                                }
                                _ => None,
                            })
                            .collect()
                    });
                }
                let mut block = self.write_block.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(ended) = block.take() {
                    tracing::info!(
                        checkpoint,
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
                    let history = self.history_reader(&state);
                    match self
                        .db()
                        .map_err(OpenError::from)
                        // Whole: the batch may have failed on a cluster's part that does not read
                        // back (a whole restore skips that snapshot).
                        .and_then(|db| Self::load_state(db.begin_read()?, history, None))
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
        items: impl Iterator<Item = BatchItem<'a>>,
        recorded_at: Timestamp,
    ) -> Result<Vec<Outcome>, AppendError> {
        let db = self.db()?;
        let txn = db.begin_write()?;
        drop(take_history_fault());
        let mut outcomes = Vec::with_capacity(items.size_hint().0);
        let batch_start = state.last_seq;
        {
            let mut log = txn.open_table(tables::LOG)?;
            let mut change_records = txn.open_table(tables::CHANGES)?;
            let mut said = Vec::new();
            let mut ids = txn.open_table(tables::IDS)?;
            let mut finding_groups = txn.open_table(tables::FINDING_GROUPS)?;
            let mut by_cluster_time = txn.open_table(tables::BY_CLUSTER_TIME)?;
            let mut by_incident = txn.open_table(tables::BY_INCIDENT)?;
            let mut by_type = txn.open_table(tables::BY_TYPE)?;
            let mut filter_indexes = FilterIndexes::open(&txn)?;
            let mut quarantine = QuarantineTables::open(&txn)?;
            let mut record = Vec::with_capacity(4096);
            let mut finding_entries = FindingIndexBatch::default();
            for (position, input, encoded) in items {
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
                        let record_len = match encoded {
                            Some(encoded) => {
                                encoded.seal_into(
                                    seq,
                                    log.insert_reserve(seq, encoded.len())?.as_mut(),
                                );
                                encoded.len()
                            }
                            None => {
                                codec::encode_event(seq, event, recorded_at, &mut record);
                                log.insert(seq, record.as_slice())?;
                                record.len()
                            }
                        };
                        state.log_bytes_since_snapshot += record_len as u64;
                        ids.insert(event.id.as_str(), seq)?;
                        said.clear();
                        let changes = state.projections.apply_with_changes(seq, event, &mut said);
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
            finding_entries.write(&mut finding_groups)?;
            // A fold that read history back (a widened flap window) and met a fault holds a
            // state that is not the log's: the batch fails and the state is reloaded.
            fold_read_history_cleanly()?;
            // The history the batch closed, in its transaction (all of a batch or none).
            let records = state.projections.take_history_records();
            if !records.is_empty() {
                HistoryTables::open(&txn)?.write(&records)?;
            }
            // And the incidents it left not open, with their timeline entries (ADR 0006 steps
            // 3 and 4).
            write_incident_records(&txn, &mut state.projections, state.last_seq)?;
            // And the orphans of the traces it dropped (ADR 0006 step 5).
            write_dropped_orphans(&txn, &mut state.projections)?;
        }
        self.write_checkpoint(&txn, state, batch_start)?;
        if self.snapshot_due(state) {
            self.write_snapshot(&txn, state)?;
        }
        txn.commit()?;
        Ok(outcomes)
    }

    /// Writes the checkpoint and what moves with it, for a batch that started at position
    /// `batch_start`.
    fn write_checkpoint(
        &self,
        txn: &WriteTransaction,
        state: &LiveState,
        batch_start: u64,
    ) -> Result<(), StorageFault> {
        let mut meta = txn.open_table(tables::META)?;
        meta.insert(tables::CHECKPOINT, state.last_seq as i64)?;
        // Every batch wrote its events' change records; the table is complete up to the
        // checkpoint when it was up to the batch's start (a read-write open completed it, unless
        // a corrupt log record stopped that: then it stays where it is).
        let changes_to = meta.get(tables::CHANGES_TO)?.map_or(0, |v| v.value());
        if changes_to == batch_start as i64 {
            meta.insert(tables::CHANGES_TO, state.last_seq as i64)?;
        }
        // A read-write open completed the filter indexes up to the checkpoint, and every batch
        // since wrote its events' entries.
        meta.insert(tables::EVENT_INDEXES_TO, state.last_seq as i64)?;
        if let Some(max_time) = state.max_time {
            meta.insert(tables::MAX_TIME, max_time.unix_nanos())?;
        }
        if state.from_stream {
            meta.insert(tables::LOG_SOURCE, tables::LOG_FROM_STREAM)?;
        }
        state.quarantine.write(&mut meta)?;
        Ok(())
    }

    /// Whether a snapshot is due after the batch just applied: `snapshot_every` events since
    /// the last, or (the bytes rule) at least `snapshot_min_every` events whose log records
    /// paid for the last snapshot (`log_paid_for_last_snapshot`).
    fn snapshot_due(&self, state: &LiveState) -> bool {
        let since = state.last_seq - state.snapshot_seq;
        if since >= self.config.snapshot_every {
            return true;
        }
        since >= self.config.snapshot_min_every && self.log_paid_for_last_snapshot(state)
    }

    /// Whether the log records appended since the last snapshot take `snapshot_bytes_ratio`
    /// times its bytes (a store's first snapshot is paid for at once): then a snapshot written
    /// now is kept, and the snapshots kept so take at most `1 / ratio` of the log's bytes (each
    /// the size of the one before it paid for, plus what the state grew by in between).
    fn log_paid_for_last_snapshot(&self, state: &LiveState) -> bool {
        let ratio = self.config.snapshot_bytes_ratio;
        ratio > 0
            && state.log_bytes_since_snapshot
                >= ratio.saturating_mul(state.last_snapshot.map_or(0, |m| m.bytes))
    }

    /// Writes a snapshot of `state` at its position, thinning older ones to one per
    /// `snapshot_keep_every` positions, but for those the log bytes before them paid for
    /// (`snapshot_bytes_ratio`). The snapshot retention cut the log at is never thinned: time
    /// travel and rebuild start from it.
    pub(super) fn write_snapshot(
        &self,
        txn: &WriteTransaction,
        state: &mut LiveState,
    ) -> Result<(), StorageFault> {
        self.write_snapshot_thinning(txn, state, true)
    }

    /// Writes a snapshot of `state` at its position and thins none (rebuild writes one where
    /// the store it rebuilds has one).
    pub(super) fn write_snapshot_kept(
        &self,
        txn: &WriteTransaction,
        state: &mut LiveState,
    ) -> Result<(), StorageFault> {
        self.write_snapshot_thinning(txn, state, false)
    }

    fn write_snapshot_thinning(
        &self,
        txn: &WriteTransaction,
        state: &mut LiveState,
        thin: bool,
    ) -> Result<(), StorageFault> {
        let seq = state.last_seq;
        // The previous snapshot's position, read from `snapshot_times` (same keys, 8-byte
        // values): a range over `snapshots` would read the previous snapshot's whole leaf (a
        // snapshot of one value holds the whole state, tens of MB with many findings) only to
        // learn its key.
        let previous = txn
            .open_table(tables::SNAPSHOT_TIMES)?
            .range(..seq)?
            .next_back()
            .transpose()?
            .map(|(k, _)| k.value());
        let previous_paid_for = previous == Some(state.snapshot_seq)
            && state.last_snapshot.is_some_and(|mark| mark.paid_for);
        let thinned = previous.filter(|&previous| {
            thin && previous / self.config.snapshot_keep_every
                == seq / self.config.snapshot_keep_every
                && !previous_paid_for
                && !(state.log_start > 1 && previous <= state.log_start)
        });
        let bytes = if state.projections.findings().history_is_shared() {
            // Per cluster: the parts of the clusters that changed, and a manifest.
            snapshot_parts::write(txn, state)?
        } else {
            // Encoded straight into the table's value: never held in a buffer of its own too.
            let mut bytes = 0;
            let mut snapshots = txn.open_table(tables::SNAPSHOTS)?;
            codec::encode_snapshot_of_into(seq, state.max_time, &state.projections, |len| {
                bytes = len as u64;
                snapshots.insert_reserve(seq, len)
            })?;
            bytes
        };
        txn.open_table(tables::SNAPSHOT_TIMES)?
            .insert(seq, state.max_time.map_or(i64::MIN, Timestamp::unix_nanos))?;
        // Thinned after the new snapshot is written: the parts it names again are kept.
        if let Some(previous) = thinned {
            snapshot_parts::remove_snapshot(txn, previous)?;
        }
        state.last_snapshot = Some(SnapshotMark {
            bytes,
            paid_for: self.log_paid_for_last_snapshot(state),
        });
        state.log_bytes_since_snapshot = 0;
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
        let before = (
            state.snapshot_seq,
            state.last_snapshot,
            state.log_bytes_since_snapshot,
        );
        let written = self
            .write_snapshot(&txn, &mut state)
            .and_then(|()| Ok(txn.commit()?));
        if let Err(e) = written {
            (
                state.snapshot_seq,
                state.last_snapshot,
                state.log_bytes_since_snapshot,
            ) = before;
            // The parts it wrote are gone with the transaction, and the projections were
            // marked snapshotted: the next snapshot writes every cluster's part.
            state.part_positions.clear();
            return Err(e.into());
        }
        Ok(())
    }
}
