//! Retention on a replica: the local log's events before a durable snapshot dropped, with their
//! index entries and the older snapshots.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use super::Store;
use super::restore::{decode_snapshot_or_outdated, skip_corrupt_snapshot};
use crate::error::RetentionError;
use crate::tables;

/// What dropping old events did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Events removed from the local log.
    pub dropped_events: u64,
    /// The first position the local log holds now (a snapshot's position: time travel works
    /// from here on).
    pub first_retained: u64,
}

impl Store {
    /// Retention for a replica, whose JetStream stream is the source of truth: drops the local
    /// log's events before the latest durable snapshot at or before `before` (default: the
    /// latest snapshot), with their timeline index entries and the older snapshots. The live
    /// state is unchanged (it restores from that snapshot and the events after it); time travel
    /// before the snapshot answers
    /// [`QueryError::BeforeRetainedLog`](crate::QueryError::BeforeRetainedLog) and `rebuild`
    /// refuses. The id index is kept whole, so a stream message repeating an old id is still a
    /// duplicate. An embedded store (its own source of truth) refuses.
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
}
