//! Retention: the local log's events before a durable snapshot dropped, with their index entries
//! and the older snapshots. A replica's events live on in its JetStream stream; an embedded
//! store's are gone, so it drops them only when told it may ([`EmbeddedRetention::Allow`]).

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::Serialize;

use super::Store;
use super::restore::{decode_snapshot_or_outdated, skip_corrupt_snapshot};
use crate::error::{ReadFault, RetentionError, StorageFault};
use crate::tables::{self, Table};

/// Whether retention may drop the events of an embedded store (its own source of truth: the
/// events before the cut are then gone but for a backup, and time travel and rebuild start at
/// the cut). A replica's events live on in its stream, so this does not matter for a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddedRetention {
    /// Refuse with [`RetentionError::EmbeddedStore`].
    Refuse,
    /// Drop them: the operator opted in (`tidemark compact --allow-embedded`).
    Allow,
}

/// What dropping old events did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Events removed from the local log.
    pub dropped_events: u64,
    /// The first position the local log holds now (a snapshot's position: time travel works
    /// from here on).
    pub first_retained: u64,
    /// An embedded store (its dropped events are gone but for backups), not a replica (whose
    /// dropped events live on in its stream).
    pub embedded: bool,
}

impl Store {
    /// Retention: drops the local log's events before the latest durable snapshot at or before
    /// `before` (default: the latest snapshot), with their timeline index entries and the older
    /// snapshots. The live state is unchanged (it restores from that snapshot and the events
    /// after it); time travel before the snapshot answers
    /// [`QueryError::BeforeRetainedLog`](crate::QueryError::BeforeRetainedLog) and `rebuild`
    /// starts from the snapshot. The id index is kept whole, so an event repeating an old id is
    /// still a duplicate.
    ///
    /// A replica's events live on in its JetStream stream. An embedded store is its own source
    /// of truth: it refuses ([`RetentionError::EmbeddedStore`]) unless `embedded` is
    /// [`EmbeddedRetention::Allow`], and then the events before the cut are gone for good.
    pub fn drop_events_before(
        &self,
        before: Option<u64>,
        embedded: EmbeddedRetention,
    ) -> Result<RetentionReport, RetentionError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if !state.from_stream && embedded == EmbeddedRetention::Refuse {
            return Err(RetentionError::EmbeddedStore);
        }
        let requested = before.unwrap_or(state.last_seq).min(state.last_seq);
        let db = self.db()?;
        let txn = db.begin_write()?;
        let cut = {
            let snapshots = txn.open_table(tables::SNAPSHOTS)?;
            let parts = txn.open_table(tables::CLUSTER_SNAPSHOTS)?;
            // The latest snapshot at or before the position asked for, in the current format.
            let mut cut = None;
            for entry in snapshots.range(..=requested)?.rev() {
                let (key, value) = entry?;
                match decode_snapshot_or_outdated(Some(&parts), key.value(), value.value()) {
                    Ok(Some(_)) => {
                        cut = Some(key.value());
                        break;
                    }
                    Ok(None) => {}
                    // Never cut at a snapshot that cannot be restored.
                    Err(ReadFault::Corrupt(corrupt)) => skip_corrupt_snapshot(&corrupt),
                    Err(ReadFault::Storage(fault)) => return Err(fault.into()),
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
            cut
        };
        let (cut, dropped) = if cut <= state.log_start {
            (state.log_start, 0)
        } else {
            (cut, cut_before(&txn, cut)?)
        };
        txn.commit()?;
        state.log_start = cut;
        tracing::info!(
            dropped,
            first_retained = cut,
            embedded = !state.from_stream,
            "retention dropped old events from the local log"
        );
        Ok(RetentionReport {
            dropped_events: dropped,
            first_retained: cut,
            embedded: !state.from_stream,
        })
    }
}

/// Drops from every table what it holds of the positions before `cut` and records `cut` as the
/// first position the log holds; answers the log records dropped. Every table of the list is
/// placed here (the `match` is exhaustive, so a table added to the list must be): a table keyed
/// by position loses its entries before the cut, the others are kept whole.
fn cut_before(txn: &WriteTransaction, cut: u64) -> Result<u64, StorageFault> {
    let mut dropped = 0;
    for &table in Table::ALL {
        match table {
            Table::Log => {
                let mut log = txn.open_table(tables::LOG)?;
                let before = log.len()?;
                log.retain_in(..cut, |_, _| false)?;
                dropped = before - log.len()?;
            }
            Table::Snapshots => {
                txn.open_table(tables::SNAPSHOTS)?
                    .retain_in(..cut, |_, _| false)?;
            }
            Table::SnapshotTimes => {
                txn.open_table(tables::SNAPSHOT_TIMES)?
                    .retain_in(..cut, |_, _| false)?;
            }
            Table::Changes => {
                txn.open_table(tables::CHANGES)?
                    .retain_in(..cut, |_, _| false)?;
            }
            Table::ByFinding => {
                txn.open_table(tables::BY_FINDING)?
                    .retain(|(_, _, seq), _| seq >= cut)?;
            }
            Table::FindingGroups => super::finding_index::cut_groups_before(txn, cut)?,
            Table::ByClusterTime => {
                txn.open_table(tables::BY_CLUSTER_TIME)?
                    .retain(|(_, _, seq), _| seq >= cut)?;
            }
            Table::ByIncident => {
                txn.open_table(tables::BY_INCIDENT)?
                    .retain(|(_, seq), _| seq >= cut)?;
            }
            Table::ByType => {
                txn.open_table(tables::BY_TYPE)?
                    .retain(|(_, seq), _| seq >= cut)?;
            }
            Table::ByCluster => {
                txn.open_table(tables::BY_CLUSTER)?
                    .retain(|(_, seq), _| seq >= cut)?;
            }
            Table::BySource => {
                txn.open_table(tables::BY_SOURCE)?
                    .retain(|(_, seq), _| seq >= cut)?;
            }
            Table::LateEvents => {
                txn.open_table(tables::LATE_EVENTS)?
                    .retain(|(_, seq), _| seq >= cut)?;
            }
            Table::Meta => {
                txn.open_table(tables::META)?
                    .insert(tables::LOG_START, cut as i64)?;
            }
            // The parts a snapshot kept (at or after the cut; `Snapshots` comes first in the
            // list) names, which may have been written before the cut.
            Table::ClusterSnapshots => {
                let mut named = Some(std::collections::BTreeSet::new());
                for entry in txn.open_table(tables::SNAPSHOTS)?.iter()? {
                    let (key, value) = entry?;
                    match crate::codec::cluster_parts::decode_manifest_clusters(
                        key.value(),
                        value.value(),
                    ) {
                        Ok(names) => {
                            if let Some(named) = &mut named {
                                named.extend(names.unwrap_or_default());
                            }
                        }
                        // One that does not decode: keep every part (never remove on a guess).
                        Err(_) => named = None,
                    }
                }
                if let Some(named) = named {
                    txn.open_table(tables::CLUSTER_SNAPSHOTS)?
                        .retain(|(cluster, at), _| named.contains(&(cluster.to_owned(), at)))?;
                }
            }
            // Kept whole: the id index goes on deduplicating the events dropped here (a stream
            // message repeating an old id is still a duplicate); the quarantine holds no
            // positions; the clock marks (at most one a minute of a cluster's clock) keep each
            // cluster's clock, which the marks and late events after the cut are relative to.
            // A finding's history (its closed occurrences and ended flap episodes) is not in the
            // snapshot at the cut: its rows are the only copy of it, and keep being read; so
            // are incidents' written-out timeline entries, the incidents written out and the
            // orphans of dropped traces.
            Table::FindingOccurrences
            | Table::FindingFlapEpisodes
            | Table::IncidentEntries
            | Table::IncidentBodies
            | Table::IncidentOpenings
            | Table::DroppedOrphans
            | Table::ClusterClock
            | Table::Ids
            | Table::Quarantine
            | Table::QuarantineDigests
            | Table::QuarantineRepeats => {}
        }
    }
    Ok(dropped)
}
