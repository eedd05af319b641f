//! The quarantine's write path: refused inputs kept once with a count, within a bound.
//!
//! Every refused input goes through [`keep`], whoever refuses it (an HTTP request, a file, a
//! stream message), so the dedupe and the bound hold for all of them:
//!
//! - **Once, with a count.** The same raw bytes refused for the same reason are one record: the
//!   digest table maps SHA-256 of (reason, raw) to the record, and a repeat raises the record's
//!   count and last-seen time (`QUARANTINE_REPEATS`). The origin is not part of the key (it names
//!   the request or line, which differ every time): the record keeps the first one. A reason
//!   must therefore say what is wrong, not where (the origin says where).
//! - **Bounded.** A new record that would pass `max_records` or `max_bytes` (its encoded size)
//!   is not written: the input is answered `raw_kept: false`, counted in the store
//!   (`META.quarantine_dropped`, so `stats` and `/metrics` show it across restarts) and logged
//!   at warn, at most once a minute. Repeats of kept records are still counted when the
//!   quarantine is full (a count takes no room).

use std::time::{Duration, Instant};

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};
use sha2::{Digest, Sha256};
use tidemark_core::Timestamp;

use crate::codec::{self, QuarantineRecord};
use crate::error::StorageFault;
use crate::input::Outcome;
use crate::tables;

/// How much the quarantine may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuarantineLimits {
    /// Records at most.
    pub max_records: u64,
    /// Bytes of records (encoded: the raw input, its reason and origin) at most.
    pub max_bytes: u64,
}

impl Default for QuarantineLimits {
    /// 100,000 records and 256 MiB: room for every distinct mistake of a misbehaving producer
    /// (repeats take no room), far below what a flood of distinct garbage would otherwise grow to.
    fn default() -> Self {
        Self {
            max_records: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// What the quarantine holds, in memory between batches (restored on open).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct QuarantineTally {
    /// The id of the next record.
    pub next_id: u64,
    /// Records held.
    pub records: u64,
    /// Their encoded bytes.
    pub bytes: u64,
    /// Refused inputs not kept because the quarantine was full, ever.
    pub dropped: u64,
}

impl QuarantineTally {
    /// Reads the tally of a store (`bytes` from `META`, else counted from the records).
    pub(crate) fn load(txn: &redb::ReadTransaction) -> Result<Self, StorageFault> {
        let records_table = txn.open_table(tables::QUARANTINE)?;
        let meta = txn.open_table(tables::META)?;
        let bytes = match meta.get(tables::QUARANTINE_BYTES)? {
            Some(bytes) => bytes.value() as u64,
            None => count_bytes(&records_table)?,
        };
        Ok(Self {
            next_id: records_table.last()?.map_or(1, |(k, _)| k.value() + 1),
            records: records_table.len()?,
            bytes,
            dropped: meta
                .get(tables::QUARANTINE_DROPPED)?
                .map_or(0, |v| v.value()) as u64,
        })
    }

    /// Writes the figures `META` keeps; part of every batch's transaction (with the checkpoint).
    pub(crate) fn write(&self, meta: &mut Table<&str, i64>) -> Result<(), StorageFault> {
        meta.insert(tables::QUARANTINE_BYTES, self.bytes as i64)?;
        if self.dropped > 0 {
            meta.insert(tables::QUARANTINE_DROPPED, self.dropped as i64)?;
        }
        Ok(())
    }
}

/// The encoded bytes of every quarantine record (for stores written before `META` kept them).
pub(crate) fn count_bytes(
    records: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<u64, StorageFault> {
    let mut bytes = 0;
    for entry in records.iter()? {
        bytes += entry?.1.value().len() as u64;
    }
    Ok(bytes)
}

/// The quarantine's tables, open in one write transaction.
pub(crate) struct QuarantineTables<'txn> {
    records: Table<'txn, u64, &'static [u8]>,
    digests: Table<'txn, &'static [u8], u64>,
    repeats: Table<'txn, u64, (u64, i64)>,
}

impl<'txn> QuarantineTables<'txn> {
    /// Opens them in `txn`.
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StorageFault> {
        Ok(Self {
            records: txn.open_table(tables::QUARANTINE)?,
            digests: txn.open_table(tables::QUARANTINE_DIGESTS)?,
            repeats: txn.open_table(tables::QUARANTINE_REPEATS)?,
        })
    }
}

/// The dedupe key of a refused input: SHA-256 of its reason's length (8 bytes, little-endian),
/// the reason and the raw bytes.
pub fn digest(reason: &str, raw: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((reason.len() as u64).to_le_bytes());
    hash.update(reason.as_bytes());
    hash.update(raw);
    hash.finalize().into()
}

/// Keeps one refused input: counts it on its earlier record when the same raw bytes were refused
/// for the same reason before; else writes a record unless the quarantine is full, in which case
/// only the drop is counted. Answers what happened.
pub(crate) fn keep(
    tables: &mut QuarantineTables<'_>,
    tally: &mut QuarantineTally,
    limits: &QuarantineLimits,
    input: (&[u8], &str, &str),
    recorded_at: Timestamp,
) -> Result<Outcome, StorageFault> {
    let (raw, reason, origin) = input;
    let key = digest(reason, raw);
    let rejected = |quarantine_id: Option<u64>| Outcome::Rejected {
        reason: reason.to_owned(),
        quarantine_id,
        raw_kept: quarantine_id.is_some(),
    };
    let earlier = tables.digests.get(key.as_slice())?.map(|id| id.value());
    if let Some(id) = earlier {
        let count = tables.repeats.get(id)?.map_or(1, |v| v.value().0);
        tables
            .repeats
            .insert(id, (count + 1, recorded_at.unix_nanos()))?;
        return Ok(rejected(Some(id)));
    }
    let id = tally.next_id;
    let record = codec::encode_quarantine(
        id,
        &QuarantineRecord {
            recorded_at,
            origin: origin.to_owned(),
            reason: reason.to_owned(),
            raw: raw.to_vec(),
        },
    );
    let size = record.len() as u64;
    if tally.records >= limits.max_records || tally.bytes.saturating_add(size) > limits.max_bytes {
        tally.dropped += 1;
        return Ok(rejected(None));
    }
    tables.records.insert(id, record.as_slice())?;
    tables.digests.insert(key.as_slice(), id)?;
    tally.next_id += 1;
    tally.records += 1;
    tally.bytes += size;
    Ok(rejected(Some(id)))
}

/// How often one record was refused, and when last: `(count, last seen)`, from its repeats
/// entry (a record without one was refused once, when it was recorded). A store opened
/// read-only before this build added the table has none.
pub(crate) fn repeats_of(
    repeats: Option<&impl ReadableTable<u64, (u64, i64)>>,
    id: u64,
    recorded_at: Timestamp,
) -> Result<(u64, Timestamp), StorageFault> {
    let entry = match repeats {
        Some(table) => table.get(id)?.map(|v| v.value()),
        None => None,
    };
    Ok(entry.map_or((1, recorded_at), |(count, last)| {
        (count, Timestamp::from_unix_nanos(last))
    }))
}

/// Rate-limits the warning about dropped inputs: the first drop is logged at once, later ones at
/// most once per [`DropLog::EVERY`], with how many were dropped since the last line.
#[derive(Debug, Default)]
pub(crate) struct DropLog {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl DropLog {
    /// At most one line per this long.
    const EVERY: Duration = Duration::from_secs(60);

    /// Notes `dropped` more drops at `now`; answers how many to report now, if it is time.
    pub(crate) fn note(&mut self, dropped: u64, now: Instant) -> Option<u64> {
        self.unlogged += dropped;
        if self.unlogged == 0 {
            return None;
        }
        let due = self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= Self::EVERY);
        if !due {
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_tells_reason_from_raw_bytes() {
        assert_eq!(digest("r", b"x"), digest("r", b"x"));
        assert_ne!(digest("ab", b"c"), digest("a", b"bc"));
        assert_ne!(digest("r", b"x"), digest("r", b"y"));
    }

    #[test]
    fn drops_are_logged_at_once_then_at_most_once_a_minute_with_their_count() {
        let mut log = DropLog::default();
        let start = Instant::now();
        assert_eq!(log.note(0, start), None);
        assert_eq!(log.note(3, start), Some(3));
        assert_eq!(log.note(5, start + Duration::from_secs(10)), None);
        assert_eq!(log.note(0, start + Duration::from_secs(30)), None);
        assert_eq!(log.note(1, start + Duration::from_secs(61)), Some(6));
        assert_eq!(log.note(0, start + Duration::from_secs(200)), None);
    }
}
