//! The orphans of dropped traces written out (`dropped_orphans`; store layout 5) checked
//! against the fold of the log: every row decodes under its key, and, given the fold of the
//! whole log (which keeps every orphan in memory), each row is an orphan the fold lists in its
//! cluster, the same in every field.
//!
//! A dropped trace's orphans a snapshot holds are written out by the next event of their
//! cluster: one whose cluster had none since is in the snapshot, not a row, so an orphan the
//! fold lists without a row is not a fault. After a retention cut the fold does not hold the
//! whole log, so the rows are only decoded.

use std::collections::BTreeMap;

use redb::ReadableTable;
use tidemark_core::Projections;
use tidemark_core::orphans::{OrphanOrder, OrphanView};

use super::{Findings, VerifyError};
use crate::codec;
use crate::tables::{self, Table, open_listed};

const TABLE: &str = "dropped_orphans";

/// Checks `dropped_orphans` (see the module's documentation).
pub(super) fn check(
    txn: &redb::ReadTransaction,
    fold: Option<&Projections>,
    findings: &mut Findings,
    checked: &mut BTreeMap<&'static str, u64>,
) -> Result<(), VerifyError> {
    let Some(rows) = open_listed(txn, Table::DroppedOrphans, tables::DROPPED_ORPHANS)? else {
        return Ok(());
    };
    let listed: Option<BTreeMap<(String, OrphanOrder), OrphanView>> = fold.map(|fold| {
        fold.orphans()
            .orphans(None)
            .into_iter()
            .map(|o| ((o.cluster.clone(), OrphanOrder::of(&o)), o))
            .collect()
    });
    for row in rows.iter()? {
        let (key, value) = row?;
        let key = key.value();
        *checked.entry(TABLE).or_default() += 1;
        let orphan = match codec::decode_dropped_orphan_row(key, value.value()) {
            Ok((_, orphan)) => orphan,
            Err(problem) => {
                findings.add(TABLE, format!("{key:?}"), problem);
                continue;
            }
        };
        let Some(listed) = &listed else {
            continue;
        };
        let order = OrphanOrder::of(&orphan);
        match listed.get(&(orphan.cluster.clone(), order)) {
            None => findings.add(
                TABLE,
                format!("{key:?}"),
                "the fold of the log lists no such orphan in the cluster",
            ),
            Some(folded) if *folded != orphan => findings.add(
                TABLE,
                format!("{key:?}"),
                format!("the fold of the log lists it as {folded:?}"),
            ),
            Some(_) => {}
        }
    }
    Ok(())
}
