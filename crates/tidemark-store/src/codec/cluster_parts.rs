//! Per-cluster snapshots (snapshot formats 8 and 9): a snapshot is a manifest in `snapshots`
//! (the incidents, which span clusters, their numbers from format 9 on, and where each
//! cluster's part is) and one part per cluster in `cluster_snapshots`, keyed `(cluster,
//! position of the snapshot that wrote it)`. A snapshot writes the parts of the clusters that
//! changed since the previous one; the others' entries name the part an earlier snapshot
//! wrote.
//!
//! A part is a record of format [`CLUSTER_PART_FORMAT`] in the checksummed envelope of the
//! other records, its checksum taken over the key's bytes ([`cluster_part_key_bytes`]): a part
//! moved under another cluster or position fails [`CodecError::ChecksumMismatch`]. Its body is
//! the [`ClusterPart`]: the cluster's findings without their history and its orphan state.

use serde::{Deserialize, Serialize};
use tidemark_core::incidents::{IncidentNumbers, IncidentsSnapshot};
use tidemark_core::{ClusterPart, LiveProjectionsSnapshot, Projections, Timestamp};

use super::{
    CodecError, SNAPSHOT_FORMAT, SNAPSHOT_PER_CLUSTER_FORMAT_8, SNAPSHOT_PER_CLUSTER_FORMAT_9,
    SNAPSHOT_PER_CLUSTER_FORMAT_10, SNAPSHOT_PER_CLUSTER_FORMAT_13, SnapshotRecord,
    StoredProjections, decode_body, is_read_with_parts, seal_sized, unseal, unseal_with_key,
};

/// Format version of a cluster's part of a per-cluster snapshot. Format 2 (store layout 6):
/// a finding may be an alert, with its facts; format 1 (before) is still read, its findings
/// no alerts (`legacy`). Format 3: the cluster's settings gain `alert_stale_after_secs`;
/// format 2 is still read, with the default (`legacy`). Format 4: the cluster gains
/// `maintenance` (its windows); format 3 is still read, with none (`legacy`).
pub const CLUSTER_PART_FORMAT: u8 = 4;
/// The part format before maintenance windows (read, never written).
pub const CLUSTER_PART_FORMAT_3: u8 = 3;
/// The part format before `alert_stale_after_secs` (read, never written).
pub const CLUSTER_PART_FORMAT_2: u8 = 2;
/// The part format before alerts were findings (read, never written).
pub const CLUSTER_PART_FORMAT_1: u8 = 1;

/// What a per-cluster snapshot's record in `snapshots` holds besides its position and time.
/// The clusters come first, so [`decode_manifest_clusters`] reads them without the incidents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "SnapshotManifest")]
pub struct SnapshotManifest<Clusters = Vec<(String, u64)>, Incidents = IncidentsSnapshot<'static>> {
    /// Every cluster, sorted by name, with the position of the snapshot that wrote its part.
    pub clusters: Clusters,
    /// The incidents in memory (they span clusters). Their numbers are not in these bytes
    /// (`IncidentsSnapshot::numbers` is not serialized): they follow.
    pub incidents: Incidents,
    /// The incidents' numbers (format 9; `None`: numbered by position). Decoding moves them
    /// into `incidents`.
    pub numbers: Option<IncidentNumbers>,
}

/// The manifest of format 8: no numbers (the incidents are all of them, numbered by position).
#[derive(Deserialize)]
struct ManifestV8 {
    clusters: Vec<(String, u64)>,
    incidents: IncidentsSnapshot<'static>,
}

/// The bytes a part's key enters its checksum as: the cluster's length (8 bytes,
/// little-endian) and bytes, then the position (8 bytes, little-endian).
pub fn cluster_part_key_bytes(cluster: &str, seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + cluster.len());
    out.extend_from_slice(&(cluster.len() as u64).to_le_bytes());
    out.extend_from_slice(cluster.as_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out
}

/// Encodes the part of `cluster` in the snapshot at `seq` straight into the storage `reserve`
/// hands out for its exact length; `None` for a cluster the projections never saw.
pub fn encode_cluster_part_into<B: AsMut<[u8]>, E>(
    cluster: &str,
    seq: u64,
    projections: &Projections,
    reserve: impl FnOnce(usize) -> Result<B, E>,
) -> Option<Result<B, E>> {
    let part = projections.live_cluster_part_serializer(cluster)?;
    let key = cluster_part_key_bytes(cluster, seq);
    Some(seal_sized(CLUSTER_PART_FORMAT, &key, &part, reserve))
}

/// Decodes the part stored under `(cluster, seq)` (checked against its checksum, and refused
/// when it says it is another cluster's).
pub fn decode_cluster_part(
    cluster: &str,
    seq: u64,
    bytes: &[u8],
) -> Result<ClusterPart, CodecError> {
    let part: ClusterPart =
        match bytes.first() {
            None => return Err(CodecError::Empty),
            Some(&CLUSTER_PART_FORMAT) => decode_body(unseal_with_key(
                &cluster_part_key_bytes(cluster, seq),
                bytes,
            )?)?,
            Some(&CLUSTER_PART_FORMAT_3) => super::legacy::decode_cluster_part_v3(
                unseal_with_key(&cluster_part_key_bytes(cluster, seq), bytes)?,
            )?,
            Some(&CLUSTER_PART_FORMAT_2) => super::legacy::decode_cluster_part_v2(
                unseal_with_key(&cluster_part_key_bytes(cluster, seq), bytes)?,
            )?,
            Some(&CLUSTER_PART_FORMAT_1) => super::legacy::decode_cluster_part_v1(
                unseal_with_key(&cluster_part_key_bytes(cluster, seq), bytes)?,
            )?,
            Some(&found) => {
                return Err(CodecError::UnknownFormat {
                    found,
                    expected: CLUSTER_PART_FORMAT,
                });
            }
        };
    if part.findings.cluster != cluster {
        return Err(CodecError::Inconsistent(format!(
            "the part says it is of cluster {:?}",
            part.findings.cluster
        )));
    }
    Ok(part)
}

/// Checks the part stored under `(cluster, seq)` without decoding it: its format, and its
/// checksum over the key and bytes.
pub fn check_cluster_part(cluster: &str, seq: u64, bytes: &[u8]) -> Result<(), CodecError> {
    match bytes.first() {
        None => Err(CodecError::Empty),
        Some(
            &(CLUSTER_PART_FORMAT
            | CLUSTER_PART_FORMAT_3
            | CLUSTER_PART_FORMAT_2
            | CLUSTER_PART_FORMAT_1),
        ) => unseal_with_key(&cluster_part_key_bytes(cluster, seq), bytes).map(drop),
        Some(&found) => Err(CodecError::UnknownFormat {
            found,
            expected: CLUSTER_PART_FORMAT,
        }),
    }
}

/// Encodes the manifest of the per-cluster snapshot at `seq` (format 8) straight into the
/// storage `reserve` hands out: `clusters` (sorted by name) name each cluster's part.
pub fn encode_manifest_into<B: AsMut<[u8]>, E>(
    seq: u64,
    max_time: Option<Timestamp>,
    clusters: &[(&str, u64)],
    projections: &Projections,
    reserve: impl FnOnce(usize) -> Result<B, E>,
) -> Result<B, E> {
    let record = SnapshotRecord {
        seq,
        max_time,
        projections: {
            let incidents = projections.live_shared_part_serializer();
            SnapshotManifest {
                clusters,
                numbers: incidents.numbers.clone(),
                incidents,
            }
        },
    };
    seal_sized(SNAPSHOT_FORMAT, &seq.to_le_bytes(), &record, reserve)
}

/// Decodes the manifest of the per-cluster snapshot stored under `seq` (format 9, or 8;
/// checked against its checksum; refused when its position is not its key, or when its
/// incidents' numbers do not fit them).
pub fn decode_manifest(
    seq: u64,
    bytes: &[u8],
) -> Result<SnapshotRecord<SnapshotManifest>, CodecError> {
    let mut record: SnapshotRecord<SnapshotManifest> = match bytes.first() {
        // Formats 10 and 13 are format 9's layout (their parts are of other formats).
        Some(
            &(SNAPSHOT_FORMAT
            | SNAPSHOT_PER_CLUSTER_FORMAT_13
            | SNAPSHOT_PER_CLUSTER_FORMAT_10
            | SNAPSHOT_PER_CLUSTER_FORMAT_9),
        ) => decode_body(unseal(seq, bytes)?)?,
        Some(&SNAPSHOT_PER_CLUSTER_FORMAT_8) => {
            let old: SnapshotRecord<ManifestV8> = decode_body(unseal(seq, bytes)?)?;
            SnapshotRecord {
                seq: old.seq,
                max_time: old.max_time,
                projections: SnapshotManifest {
                    clusters: old.projections.clusters,
                    incidents: old.projections.incidents,
                    numbers: None,
                },
            }
        }
        found => {
            return Err(CodecError::UnknownFormat {
                found: found.copied().unwrap_or(0),
                expected: SNAPSHOT_FORMAT,
            });
        }
    };
    if record.seq != seq {
        return Err(CodecError::WrongKey { found: record.seq });
    }
    let manifest = &mut record.projections;
    if let Some(numbers) = &manifest.numbers {
        let fits = numbers.numbers.len() == manifest.incidents.incidents.len()
            && numbers.numbers.windows(2).all(|w| w[0] < w[1])
            && numbers
                .numbers
                .last()
                .is_none_or(|&last| last < numbers.next);
        if !fits {
            return Err(CodecError::Inconsistent(format!(
                "{} incident numbers (next {}) for {} incidents, or not ascending",
                numbers.numbers.len(),
                numbers.next,
                manifest.incidents.incidents.len()
            )));
        }
    }
    manifest.incidents.numbers = manifest.numbers.take();
    Ok(record)
}

/// The clusters of a per-cluster snapshot and where their parts are, without decoding its
/// incidents (checked against the whole record's checksum); `None` for a snapshot of another
/// format (which names no parts).
pub fn decode_manifest_clusters(
    seq: u64,
    bytes: &[u8],
) -> Result<Option<Vec<(String, u64)>>, CodecError> {
    #[derive(Deserialize)]
    struct Prefix {
        seq: u64,
        _max_time: Option<Timestamp>,
        clusters: Vec<(String, u64)>,
    }
    if !is_read_with_parts(bytes) {
        return Ok(None);
    }
    let (prefix, _incidents): (Prefix, _) = postcard::take_from_bytes(unseal(seq, bytes)?)
        .map_err(|e| CodecError::Postcard(e.to_string()))?;
    if prefix.seq != seq {
        return Err(CodecError::WrongKey { found: prefix.seq });
    }
    Ok(Some(prefix.clusters))
}

/// Decodes the snapshot stored under `seq` of any format [`super::decode_snapshot`] reads, a
/// per-cluster one with the bytes of its parts as `part(cluster, at)` gives them (`None`: the
/// part is missing). For tools and tests that read a store's tables themselves.
pub fn decode_snapshot_reading_parts(
    seq: u64,
    bytes: &[u8],
    mut part: impl FnMut(&str, u64) -> Option<Vec<u8>>,
) -> Result<SnapshotRecord<StoredProjections>, CodecError> {
    if !is_read_with_parts(bytes) {
        return super::decode_snapshot(seq, bytes);
    }
    let manifest = decode_manifest(seq, bytes)?;
    let mut parts = Vec::with_capacity(manifest.projections.clusters.len());
    for (cluster, at) in &manifest.projections.clusters {
        let bytes = part(cluster, *at).ok_or_else(|| {
            CodecError::Inconsistent(format!("the part ({cluster:?}, {at}) is missing"))
        })?;
        parts.push(decode_cluster_part(cluster, *at, &bytes)?);
    }
    Ok(assemble(manifest, parts))
}

/// The snapshot record a manifest and its parts (in any order) make: a live snapshot.
pub fn assemble(
    manifest: SnapshotRecord<SnapshotManifest>,
    parts: Vec<ClusterPart>,
) -> SnapshotRecord<StoredProjections> {
    SnapshotRecord {
        seq: manifest.seq,
        max_time: manifest.max_time,
        projections: StoredProjections::Live(LiveProjectionsSnapshot::from_parts(
            parts,
            manifest.projections.incidents,
        )),
    }
}
