//! Rows of `dropped_orphans` (ADR 0006, step 5): the orphans of traces a cluster's span forest
//! dropped after the retention, as the table holds them (`tidemark_core::orphans` says what
//! they mean).
//!
//! The key is `(cluster, kind code, subject, detail, since_seq)`: the cluster and the orphan's
//! `OrphanOrder`, its kind as [`kind_code`]. Format 1 is the checksummed envelope of the other
//! records (`[version][CRC-32C][postcard body]`), the CRC-32C taken over the key (in the byte
//! form of [`dropped_orphan_key_bytes`]), the version byte and the body: the position the row
//! was written at, then the `OrphanView`. A row moved under another key fails
//! [`CodecError::ChecksumMismatch`], and a row whose orphan says it is of another cluster or
//! order is refused.

use serde::{Deserialize, Serialize};
use tidemark_core::orphans::{OrphanKind, OrphanOrder, OrphanView};

use super::{CodecError, decode_body, seal_with_key, unseal_with_key};

/// Format version of `dropped_orphans` rows. Format 1: the checksummed envelope, over the
/// tuple key's bytes.
pub const DROPPED_ORPHAN_ROW_FORMAT: u8 = 1;

/// The key of a `dropped_orphans` row.
pub type DroppedOrphanKey<'a> = (&'a str, u8, &'a str, &'a str, u64);

/// The stored code of an orphan kind (its place in `OrphanKind`'s order, so keys sort as
/// lists do). Stored: never renumbered.
pub fn kind_code(kind: OrphanKind) -> u8 {
    match kind {
        OrphanKind::Unmanaged => 0,
        OrphanKind::Ghost => 1,
        OrphanKind::Dangling => 2,
        OrphanKind::OrphanSpan => 3,
        OrphanKind::RootlessTrace => 4,
    }
}

/// The key of the row of `orphan` in `cluster`.
pub fn dropped_orphan_key<'a>(cluster: &'a str, order: &'a OrphanOrder) -> DroppedOrphanKey<'a> {
    (
        cluster,
        kind_code(order.kind),
        &order.subject,
        &order.detail,
        order.since_seq,
    )
}

/// The bytes a key enters its row's checksum as: each text as its length (8 bytes,
/// little-endian) and bytes, the kind code, then `since_seq` (8 bytes, little-endian).
pub fn dropped_orphan_key_bytes(key: DroppedOrphanKey<'_>) -> Vec<u8> {
    let (cluster, kind, subject, detail, since_seq) = key;
    let mut out = Vec::with_capacity(33 + cluster.len() + subject.len() + detail.len());
    for text in [cluster, subject, detail] {
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out.push(kind);
    out.extend_from_slice(&since_seq.to_le_bytes());
    out
}

/// The body of a row.
#[derive(Serialize)]
struct RowRef<'a> {
    written_at: u64,
    orphan: &'a OrphanView,
}

/// The body of a row, decoded.
#[derive(Deserialize)]
struct Row {
    written_at: u64,
    orphan: OrphanView,
}

/// Encodes the row of `orphan` of `cluster`, written at `written_at`, into `out` (cleared
/// first).
pub fn encode_dropped_orphan_row(
    cluster: &str,
    written_at: u64,
    orphan: &OrphanView,
    out: &mut Vec<u8>,
) {
    let order = OrphanOrder::of(orphan);
    let key = dropped_orphan_key_bytes(dropped_orphan_key(cluster, &order));
    seal_with_key(
        DROPPED_ORPHAN_ROW_FORMAT,
        &key,
        &RowRef { written_at, orphan },
        out,
    );
}

/// Decodes the row under `key`: the position it was written at and the orphan.
pub fn decode_dropped_orphan_row(
    key: DroppedOrphanKey<'_>,
    bytes: &[u8],
) -> Result<(u64, OrphanView), CodecError> {
    let body = match bytes.first() {
        None => return Err(CodecError::Empty),
        Some(&DROPPED_ORPHAN_ROW_FORMAT) => unseal_with_key(&dropped_orphan_key_bytes(key), bytes)?,
        Some(&found) => {
            return Err(CodecError::UnknownFormat {
                found,
                expected: DROPPED_ORPHAN_ROW_FORMAT,
            });
        }
    };
    let row: Row = decode_body(body)?;
    let order = OrphanOrder::of(&row.orphan);
    if row.orphan.cluster != key.0 || dropped_orphan_key(key.0, &order) != key {
        return Err(CodecError::Inconsistent(format!(
            "the row says it is the orphan {:?} of cluster {:?}",
            order, row.orphan.cluster
        )));
    }
    Ok((row.written_at, row.orphan))
}
