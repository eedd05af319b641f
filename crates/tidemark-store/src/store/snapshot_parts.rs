//! Per-cluster snapshots (snapshot format 8, `codec::cluster_parts`): written, read with their
//! parts, and removed with the parts no other snapshot names.
//!
//! A snapshot at position `s` writes the part `(cluster, s)` of each cluster that changed since
//! the store's previous snapshot (or whose part no snapshot of this file holds: the first one,
//! or after a restore from a snapshot of one value), and a manifest naming every cluster's
//! part. So a part `(c, s)` is named by the snapshots from `s` up to the next part of `c`, and
//! removing a snapshot removes each part it names that neither neighbouring snapshot names
//! (the one before names it only if it is at or after `s`; the one after, if its entry for `c`
//! is still `s`).

use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};
use std::sync::{Arc, Weak};
use tidemark_core::findings::SharedHistoryReader;
use tidemark_core::{ClusterPart, ClusterPartSource, Projections, Timestamp};

use super::history_tables::record_part_fault;
use super::{DbSlot, LiveState};
use crate::codec::{self, SnapshotRecord, StoredProjections, cluster_parts};
use crate::error::{CorruptRecord, ReadFault, StorageFault};
use crate::tables;

/// Where each cluster's latest part is (the entries of the manifest the live state was last
/// written to or restored from): a cluster that did not change since is named there again.
pub(super) type PartPositions = BTreeMap<String, u64>;

/// Writes the per-cluster snapshot of `state` at its position: the parts of the clusters that
/// changed (or that `state.part_positions` does not name), then the manifest; marks the
/// projections snapshotted. Answers the bytes written.
pub(super) fn write(txn: &WriteTransaction, state: &mut LiveState) -> Result<u64, StorageFault> {
    let seq = state.last_seq;
    let mut parts = txn.open_table(tables::CLUSTER_SNAPSHOTS)?;
    let mut bytes = 0u64;
    let mut named: Vec<(String, u64)> = Vec::new();
    for (cluster, changed) in state.projections.clusters_changed() {
        let at = match state.part_positions.get(cluster) {
            Some(&at) if !changed => at,
            _ => {
                let written = cluster_parts::encode_cluster_part_into(
                    cluster,
                    seq,
                    &state.projections,
                    |len| {
                        bytes += len as u64;
                        parts.insert_reserve((cluster, seq), len)
                    },
                );
                if let Some(written) = written {
                    written?;
                }
                seq
            }
        };
        named.push((cluster.to_owned(), at));
    }
    let mut snapshots = txn.open_table(tables::SNAPSHOTS)?;
    let borrowed: Vec<(&str, u64)> = named.iter().map(|(c, at)| (c.as_str(), *at)).collect();
    cluster_parts::encode_manifest_into(
        seq,
        state.max_time,
        &borrowed,
        &state.projections,
        |len| {
            bytes += len as u64;
            snapshots.insert_reserve(seq, len)
        },
    )?;
    state.part_positions = named.into_iter().collect();
    state.projections.mark_snapshotted();
    Ok(bytes)
}

/// Removes the snapshot at `seq` (and its `snapshot_times` entry), and the parts it names that
/// no other snapshot names. A neighbour that does not decode is taken to name every part (a
/// part is never removed on a guess; `verify` counts parts no snapshot names).
pub(super) fn remove_snapshot(txn: &WriteTransaction, seq: u64) -> Result<(), StorageFault> {
    let mut snapshots = txn.open_table(tables::SNAPSHOTS)?;
    txn.open_table(tables::SNAPSHOT_TIMES)?.remove(seq)?;
    let Some(removed) = snapshots.remove(seq)? else {
        return Ok(());
    };
    let Ok(Some(named)) = cluster_parts::decode_manifest_clusters(seq, removed.value()) else {
        return Ok(());
    };
    drop(removed);
    let before = names_of(snapshots.range(..seq)?.next_back())?;
    let after = names_of(snapshots.range(seq + 1..)?.next())?;
    let mut parts = txn.open_table(tables::CLUSTER_SNAPSHOTS)?;
    for (cluster, at) in named {
        if !before.names(&cluster, at) && !after.names(&cluster, at) {
            parts.remove((cluster.as_str(), at))?;
        }
    }
    Ok(())
}

/// The parts a neighbouring snapshot names.
enum Names {
    /// No snapshot there, or one of one value: none.
    None,
    /// It does not decode: taken to name every part.
    Unknown,
    /// A manifest's entries, sorted by cluster.
    Parts(Vec<(String, u64)>),
}

impl Names {
    fn names(&self, cluster: &str, at: u64) -> bool {
        match self {
            Self::None => false,
            Self::Unknown => true,
            Self::Parts(names) => names
                .binary_search_by(|(c, _)| c.as_str().cmp(cluster))
                .is_ok_and(|i| names[i].1 == at),
        }
    }
}

type SnapshotEntry<'a> = (
    redb::AccessGuard<'a, u64>,
    redb::AccessGuard<'a, &'static [u8]>,
);

/// What the snapshot `entry` (if any) names.
fn names_of(
    entry: Option<Result<SnapshotEntry<'_>, redb::StorageError>>,
) -> Result<Names, StorageFault> {
    let Some(entry) = entry else {
        return Ok(Names::None);
    };
    let (key, value) = entry?;
    Ok(
        match cluster_parts::decode_manifest_clusters(key.value(), value.value()) {
            Ok(Some(names)) => Names::Parts(names),
            Ok(None) => Names::None,
            Err(_) => Names::Unknown,
        },
    )
}

/// A snapshot a restore can start from (`restore::latest_usable_snapshot`): decoded whole, or a
/// per-cluster one whose parts were checked (each present, its checksum right) and are decoded
/// one at a time as the projection is restored, so a restore never holds every cluster's
/// decoded part at once.
pub(super) enum UsableSnapshot {
    Whole(SnapshotRecord<StoredProjections>),
    Parts(SnapshotRecord<cluster_parts::SnapshotManifest>),
}

impl UsableSnapshot {
    pub(super) fn seq(&self) -> u64 {
        match self {
            Self::Whole(record) => record.seq,
            Self::Parts(record) => record.seq,
        }
    }

    pub(super) fn max_time(&self) -> Option<Timestamp> {
        match self {
            Self::Whole(record) => record.max_time,
            Self::Parts(record) => record.max_time,
        }
    }

    /// Whether it is a live snapshot (the history in the store's tables).
    pub(super) fn is_live(&self) -> bool {
        match self {
            Self::Whole(record) => matches!(record.projections, StoredProjections::Live(_)),
            Self::Parts(_) => true,
        }
    }
}

/// The projections of a per-cluster snapshot (checked by [`usable_with_parts`]): its parts read
/// from `parts` and restored one at a time, the findings' history read through `history` (the
/// live state's with `as_of` `None`, a past state's as of `as_of`).
pub(super) fn restore_parts(
    record: SnapshotRecord<cluster_parts::SnapshotManifest>,
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    history: Arc<dyn SharedHistoryReader>,
    as_of: Option<u64>,
) -> Result<Projections, ReadFault> {
    let manifest = record.projections;
    let read = manifest
        .clusters
        .iter()
        .map(|(cluster, at)| read_part(parts, cluster, *at));
    Projections::restore_live_parts(read, manifest.incidents, history, as_of)
}

/// The projections of a per-cluster snapshot restored lazily
/// ([`Projections::restore_live_lazily`]): none of its parts is read here; each is read through
/// `source` when its cluster is first needed.
pub(super) fn restore_parts_lazily(
    record: SnapshotRecord<cluster_parts::SnapshotManifest>,
    source: Arc<dyn ClusterPartSource>,
    history: Arc<dyn SharedHistoryReader>,
    as_of: Option<u64>,
) -> Projections {
    let manifest = record.projections;
    Projections::restore_live_lazily(
        manifest.clusters,
        source,
        manifest.incidents,
        history,
        as_of,
    )
}

/// The core's [`ClusterPartSource`] over a store's `cluster_snapshots` table: each read is one
/// read transaction of the latest commit (a part a live state names is never removed: every
/// snapshot since it was written names it, the latest too). Like [`StoreHistory`], it holds the
/// store's database slot, takes it shared per read (recursively: the fold reads while its
/// thread may hold it), and records a fault for the store's read path
/// ([`take_history_fault`](super::history_tables::take_history_fault)) instead of answering.
///
/// [`StoreHistory`]: super::StoreHistory
pub(crate) struct StoreParts {
    /// Weak: a projection that outlives its store does not keep the database open.
    db: Weak<DbSlot>,
}

impl StoreParts {
    /// The source over the database slot `db` (a store's, possibly before its handle is in
    /// it: nothing is read until a call).
    pub(crate) fn over(db: &Arc<DbSlot>) -> Self {
        Self {
            db: Arc::downgrade(db),
        }
    }
}

impl ClusterPartSource for StoreParts {
    fn read_part(&self, cluster: &str, at: u64) -> Option<ClusterPart> {
        let read = || -> Result<ClusterPart, ReadFault> {
            let closed = || StorageFault(redb::Error::DatabaseClosed);
            let db = self.db.upgrade().ok_or_else(closed)?;
            let slot = db.read_recursive();
            let txn = slot
                .as_ref()
                .ok_or_else(closed)?
                .begin_read()
                .map_err(StorageFault::from)?;
            let parts = tables::open_listed(
                &txn,
                tables::Table::ClusterSnapshots,
                tables::CLUSTER_SNAPSHOTS,
            )?;
            read_part(parts.as_ref(), cluster, at)
        };
        read().map_err(record_part_fault).ok()
    }
}

/// Checks the per-cluster snapshot stored under `seq` (format 8): its manifest decodes, and
/// every part it names is in `parts` with a right checksum (not decoded: see
/// [`UsableSnapshot`]). A snapshot of another format is decoded whole.
///
/// Without `check_parts` (a restore that reads each part when its cluster is first needed), the
/// parts are not read here: one that is missing or corrupt is met when its cluster is.
pub(super) fn usable_with_parts(
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    seq: u64,
    bytes: &[u8],
    any_format: bool,
    check_parts: bool,
) -> Result<UsableSnapshot, ReadFault> {
    if !codec::is_read_with_parts(bytes) {
        return decode_with_parts(parts, seq, bytes, any_format).map(UsableSnapshot::Whole);
    }
    let manifest = cluster_parts::decode_manifest(seq, bytes)
        .map_err(|e| ReadFault::from(snapshot_corrupt(seq, e)))?;
    for (cluster, at) in manifest.projections.clusters.iter().filter(|_| check_parts) {
        let bytes = part_bytes(parts, cluster, *at)?;
        cluster_parts::check_cluster_part(cluster, *at, bytes.value())
            .map_err(|e| part_corrupt(part_key(cluster, *at), e))?;
    }
    Ok(UsableSnapshot::Parts(manifest))
}

/// Decodes the snapshot stored under `seq`, reading a per-cluster snapshot's parts from
/// `parts` (`None`: a store without the table, which holds no per-cluster snapshot). A part
/// that is missing or does not decode makes the snapshot corrupt.
pub(crate) fn decode_with_parts(
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    seq: u64,
    bytes: &[u8],
    any_format: bool,
) -> Result<SnapshotRecord<StoredProjections>, ReadFault> {
    if !codec::is_read_with_parts(bytes) {
        let decoded = if any_format {
            codec::decode_snapshot_of_any_format(seq, bytes)
        } else {
            codec::decode_snapshot(seq, bytes)
        };
        return decoded.map_err(|e| snapshot_corrupt(seq, e).into());
    }
    let manifest = cluster_parts::decode_manifest(seq, bytes)
        .map_err(|e| ReadFault::from(snapshot_corrupt(seq, e)))?;
    let mut read = Vec::with_capacity(manifest.projections.clusters.len());
    for (cluster, at) in &manifest.projections.clusters {
        read.push(read_part(parts, cluster, *at)?);
    }
    Ok(cluster_parts::assemble(manifest, read))
}

/// The part `(cluster, at)`, decoded.
fn read_part(
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    cluster: &str,
    at: u64,
) -> Result<ClusterPart, ReadFault> {
    let bytes = part_bytes(parts, cluster, at)?;
    cluster_parts::decode_cluster_part(cluster, at, bytes.value())
        .map_err(|e| part_corrupt(part_key(cluster, at), e).into())
}

/// The stored bytes of the part `(cluster, at)`; missing, a corrupt snapshot.
fn part_bytes<'t>(
    parts: Option<&'t impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    cluster: &str,
    at: u64,
) -> Result<redb::AccessGuard<'t, &'static [u8]>, ReadFault> {
    let missing = || -> ReadFault {
        part_corrupt(
            part_key(cluster, at),
            codec::CodecError::Inconsistent("a snapshot names this part, which is missing".into()),
        )
        .into()
    };
    let Some(parts) = parts else {
        return Err(missing());
    };
    parts.get((cluster, at))?.ok_or_else(missing)
}

/// How a part's key is named in errors.
fn part_key(cluster: &str, at: u64) -> String {
    format!("({cluster:?}, {at})")
}

fn part_corrupt(key: String, problem: codec::CodecError) -> CorruptRecord {
    CorruptRecord::new(tables::Table::ClusterSnapshots.name(), key, problem)
}

/// Whether `corrupt` is a cluster's snapshot part: met by a state restored lazily, it is
/// answered by restoring the state whole, which skips that snapshot
/// ([`Store::restore_whole_after`](super::Store)).
pub(super) fn is_part(corrupt: &CorruptRecord) -> bool {
    corrupt.table == tables::Table::ClusterSnapshots.name()
}

fn snapshot_corrupt(seq: u64, problem: codec::CodecError) -> CorruptRecord {
    CorruptRecord::new("snapshots", seq, problem)
}
