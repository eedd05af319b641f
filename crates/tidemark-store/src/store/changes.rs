//! The `changes` table (ADR 0008): what the projections drew from each event, written in the
//! batch's transaction by the fold that applied it, read back by position (the live stream's
//! `?changes=true`), and completed at a read-write open for the positions an older build
//! appended without it.

use redb::{ReadableTable, Table};
use tidemark_core::changes::Change;

use super::projections::At;
use super::restore::decode_log;
use super::write_txn;
use super::{Handle, Store};
use crate::codec;
use crate::error::{CorruptRecord, OpenError, QueryError, StorageFault};
use crate::tables;

/// Events folded per transaction while the table is completed at open.
const COMPLETE_CHUNK: u64 = 100_000;

/// Writes the record of the event at `seq` (none when it changed nothing); `buffer` is scratch.
pub(super) fn write_changes(
    table: &mut Table<'_, u64, &'static [u8]>,
    seq: u64,
    changes: &[Change],
    buffer: &mut Vec<u8>,
) -> Result<(), StorageFault> {
    if changes.is_empty() {
        return Ok(());
    }
    codec::encode_changes(seq, changes, buffer);
    table.insert(seq, buffer.as_slice())?;
    Ok(())
}

impl Store {
    /// What the projections drew from the events at `positions`, one list per position in the
    /// order given (empty for a position whose event changed nothing), as `tidemark replay
    /// --step` says it. A position past the records' end (a store an older build appended to,
    /// opened read-only) or before the local log is refused rather than answered as "nothing
    /// changed".
    pub fn changes_at(&self, positions: &[u64]) -> Result<Vec<Vec<Change>>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        let complete_to = meta
            .get(tables::CHANGES_TO)?
            .map_or(0, |v| v.value().max(0) as u64);
        let log_start = self.log_start();
        let Some(table) = tables::open_listed(&txn, tables::Table::Changes, tables::CHANGES)?
        else {
            return match positions.first() {
                None => Ok(Vec::new()),
                Some(&first) => Err(QueryError::ChangesNotRecorded {
                    position: first,
                    recorded_to: 0,
                }),
            };
        };
        positions
            .iter()
            .map(|&seq| {
                if seq > complete_to {
                    return Err(QueryError::ChangesNotRecorded {
                        position: seq,
                        recorded_to: complete_to,
                    });
                }
                if log_start > 1 && seq < log_start {
                    return Err(QueryError::BeforeRetainedLog {
                        requested: format!("position {seq}"),
                        first_retained: log_start,
                    });
                }
                match table.get(seq)? {
                    None => Ok(Vec::new()),
                    Some(bytes) => codec::decode_changes(seq, bytes.value())
                        .map_err(|e| CorruptRecord::new("changes", seq, e).into()),
                }
            })
            .collect()
    }

    /// Completes the `changes` table up to the checkpoint, at a read-write open: a store an
    /// older build appended to (or one written before the table) has none for the positions
    /// after `changes_to`. The state after `changes_to` is rebuilt from the nearest snapshot
    /// (time travel's way), then the log after it is folded with the watch, in transactions of
    /// [`COMPLETE_CHUNK`] events that move `changes_to` along (a killed open resumes where it
    /// stopped); progress is logged when there is more than one. A log record that does not
    /// read back stops it there (the records after it cannot be derived; `tidemark verify`
    /// names it), and the open goes on.
    pub(super) fn complete_change_records(&self) -> Result<(), OpenError> {
        let (checkpoint, log_start) = {
            let state = self.read_state();
            (state.last_seq, state.log_start)
        };
        let recorded_to = {
            let db = self.db()?;
            let txn = db.begin_read()?;
            let meta = txn.open_table(tables::META)?;
            meta.get(tables::CHANGES_TO)?
                .map_or(0, |v| v.value().max(0) as u64)
        };
        // Before the local log nothing can be derived: its first position is the snapshot it
        // starts from.
        let start = if log_start > 1 {
            recorded_to.max(log_start)
        } else {
            recorded_to
        };
        if start >= checkpoint {
            if recorded_to < checkpoint {
                self.set_changes_to(checkpoint)?;
            }
            return Ok(());
        }
        let long = checkpoint - start > COMPLETE_CHUNK;
        tracing::info!(path = %self.path.display(), from = start + 1, to = checkpoint, "writing the change records of positions appended without them");
        let (mut fold, _) = self
            .projection_at(At::Seq(start))
            .map_err(|e| OpenError::ChangeRecords(Box::new(e)))?;
        // Read as of the checkpoint while folding, as time travel does.
        fold.set_history_as_of(checkpoint);
        let mut done = start;
        let mut said = Vec::new();
        let mut buffer = Vec::new();
        while done < checkpoint {
            let until = done.saturating_add(COMPLETE_CHUNK).min(checkpoint);
            // The fold reads history back through the store's slot while this holds it: at
            // open nothing else holds the store, so no reopen can be queued between the two.
            let handle = self.db()?;
            let Handle::Write(db) = &*handle else {
                return Ok(());
            };
            let txn = write_txn::begin(db)?;
            let mut stopped = false;
            {
                let log = txn.open_table(tables::LOG)?;
                let mut table = txn.open_table(tables::CHANGES)?;
                for entry in log.range(done + 1..=until)? {
                    let (key, value) = entry?;
                    let seq = key.value();
                    match decode_log(seq, value.value()) {
                        Ok(stored) => {
                            said.clear();
                            fold.apply_with_changes(seq, &stored.event, &mut said);
                            write_changes(&mut table, seq, &said, &mut buffer)?;
                            done = seq;
                        }
                        Err(corrupt) => {
                            tracing::warn!(error = %corrupt, "a log record is corrupt: the change records stop before it");
                            stopped = true;
                            break;
                        }
                    }
                }
                // What the fold wrote out is in the store already: the live fold wrote it.
                drop(fold.take_history_records());
                drop(fold.take_timeline_records());
                drop(fold.take_incident_body_records());
                drop(fold.take_dropped_orphan_records());
                if !stopped {
                    done = until;
                }
                txn.open_table(tables::META)?
                    .insert(tables::CHANGES_TO, done as i64)?;
            }
            txn.commit()?;
            drop(handle);
            if stopped {
                return Ok(());
            }
            if long {
                tracing::info!(
                    written = done - start,
                    of = checkpoint - start,
                    "writing the change records"
                );
            }
        }
        Ok(())
    }

    fn set_changes_to(&self, to: u64) -> Result<(), OpenError> {
        self.set_meta(tables::CHANGES_TO, to as i64)
    }
}
