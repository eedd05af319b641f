//! The quarantine listed: each record with how often its input was refused (the write path is
//! `crate::quarantine`).

use serde::Serialize;
use tidemark_core::Timestamp;

use super::Store;
use super::restore::corrupt;
use crate::codec;
use crate::error::{QueryError, StorageFault};
use crate::quarantine;
use crate::tables;

/// A quarantined input, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    /// Quarantine id.
    pub id: u64,
    /// The record.
    #[serde(flatten)]
    pub record: QuarantineView,
}

/// A quarantine record with its bytes shown as text where they are UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantineView {
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Where it came from.
    pub origin: String,
    /// Why it was refused.
    pub reason: String,
    /// The bytes, as text (lossy for non-UTF-8).
    pub raw: String,
    /// Byte length of the raw input.
    pub raw_bytes: usize,
    /// How often this input was refused (the same bytes, for the same reason).
    pub count: u64,
    /// When it was last refused (`recorded_at` when it was refused once).
    pub last_seen: Timestamp,
}

impl Store {
    /// Quarantined inputs from id `from`, at most `limit`, each with how often it was refused.
    pub fn quarantine(&self, from: u64, limit: usize) -> Result<Vec<QuarantineEntry>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let table = txn.open_table(tables::QUARANTINE)?;
        let repeats = match txn.open_table(tables::QUARANTINE_REPEATS) {
            Ok(repeats) => Some(repeats),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(StorageFault::from(e).into()),
        };
        let mut out = Vec::new();
        for entry in table.range(from..)?.take(limit) {
            let (key, value) = entry?;
            let id = key.value();
            let record = codec::decode_quarantine(id, value.value())
                .map_err(|e| corrupt("quarantine", id, e))?;
            let (count, last_seen) =
                quarantine::repeats_of(repeats.as_ref(), id, record.recorded_at)?;
            out.push(QuarantineEntry {
                id,
                record: QuarantineView {
                    recorded_at: record.recorded_at,
                    origin: record.origin,
                    reason: record.reason,
                    raw: String::from_utf8_lossy(&record.raw).into_owned(),
                    raw_bytes: record.raw.len(),
                    count,
                    last_seen,
                },
            });
        }
        Ok(out)
    }
}
