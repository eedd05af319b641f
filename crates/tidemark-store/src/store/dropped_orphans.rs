//! The orphans of dropped traces in `dropped_orphans` (ADR 0006, step 5): written in a batch's
//! write transaction, and read as of a log position in list order in one read transaction
//! (through [`StoreHistory`](super::history_tables::StoreHistory), which reads a finding's
//! history and the incidents' rows alike). `tidemark_core::orphans` says what they mean.

use std::ops::Bound;

use redb::{ReadOnlyTable, WriteTransaction};
use tidemark_core::orphans::{DroppedOrphanRecord, OrphanOrder, OrphanView};

use crate::codec::{self, DroppedOrphanKey};
use crate::error::{CorruptRecord, ReadFault, StorageFault};
use crate::tables::{self, Table};

/// The table, open for reading.
pub(crate) type DroppedOrphanTable = ReadOnlyTable<DroppedOrphanKey<'static>, &'static [u8]>;

/// Writes the orphans of dropped traces a batch's fold wrote out, in the batch's transaction
/// (all of a batch or none).
pub(crate) fn write_dropped_orphan_records(
    txn: &WriteTransaction,
    records: &[DroppedOrphanRecord],
) -> Result<(), ReadFault> {
    if records.is_empty() {
        return Ok(());
    }
    let mut table = txn
        .open_table(tables::DROPPED_ORPHANS)
        .map_err(StorageFault::from)?;
    let mut buffer = Vec::new();
    for record in records {
        let order = OrphanOrder::of(&record.orphan);
        codec::encode_dropped_orphan_row(
            &record.cluster,
            record.written_at,
            &record.orphan,
            &mut buffer,
        );
        table.insert(
            codec::dropped_orphan_key(&record.cluster, &order),
            buffer.as_slice(),
        )?;
    }
    Ok(())
}

/// Writes what the fold of a batch wrote out of the orphans of dropped traces since the last
/// call (`Projections::take_dropped_orphan_records`), in the batch's transaction.
pub(crate) fn write_dropped_orphans(
    txn: &WriteTransaction,
    projections: &mut tidemark_core::Projections,
) -> Result<(), ReadFault> {
    write_dropped_orphan_records(txn, &projections.take_dropped_orphan_records())
}

/// A row of `dropped_orphans` that does not decode.
fn corrupt(key: DroppedOrphanKey<'_>, problem: codec::CodecError) -> ReadFault {
    ReadFault::Corrupt(CorruptRecord {
        table: Table::DroppedOrphans.name(),
        key: format!("{key:?}"),
        problem,
    })
}

/// Visits the rows of `cluster` written at or before `as_of`, in list order, from `start`,
/// until `visit` returns `false` (`None` table: a file that lacks it, read as empty).
pub(crate) fn visit_dropped_orphans(
    table: Option<&DroppedOrphanTable>,
    cluster: &str,
    start: Bound<&OrphanOrder>,
    as_of: u64,
    visit: &mut dyn FnMut(OrphanView) -> bool,
) -> Result<(), ReadFault> {
    let Some(table) = table else {
        return Ok(());
    };
    let start = match start {
        Bound::Included(order) => Bound::Included(codec::dropped_orphan_key(cluster, order)),
        Bound::Excluded(order) => Bound::Excluded(codec::dropped_orphan_key(cluster, order)),
        Bound::Unbounded => Bound::Included((cluster, 0, "", "", 0)),
    };
    // Past every key of the cluster: kind codes are below `u8::MAX`.
    let end = Bound::Excluded((cluster, u8::MAX, "", "", 0));
    for row in table.range::<DroppedOrphanKey<'_>>((start, end))? {
        let (key, value) = row?;
        let key = key.value();
        let (written_at, orphan) = codec::decode_dropped_orphan_row(key, value.value())
            .map_err(|problem| corrupt(key, problem))?;
        if written_at <= as_of && !visit(orphan) {
            break;
        }
    }
    Ok(())
}
