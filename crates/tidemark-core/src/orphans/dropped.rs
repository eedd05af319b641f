//! The orphans of dropped traces, out of the live state (ADR 0006, step 5): the rows the fold
//! writes out, how they are read as of a log position, and where a projection reads and writes
//! them.
//!
//! A cluster's span forest drops a judged trace once it has been quiet for
//! `span_retention_secs`; the orphans it showed are final from then on (`spans.rs`). The live
//! state of a store writes them out at the end of the next event of their cluster, as a
//! [`DroppedOrphanRecord`] written at that event's position, and forgets them. Rows are never
//! rewritten. A read as of position `P` takes the rows written at or before `P` and the orphans
//! the state holds in memory; a row whose orphan the state also holds (a past state, or a state
//! restored from a snapshot taken before it was written out, holds the orphans it dropped
//! itself) is the same orphan, listed once.
//!
//! Where nothing is written out (`replay`, the CLI's folds, a store of an older layout), they
//! stay in memory, as before.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use super::{OrphanOrder, OrphanView};

/// An orphan of a dropped trace the fold wrote out, for the store to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedOrphanRecord {
    /// Its cluster.
    pub cluster: String,
    /// The position of the event that wrote it out.
    pub written_at: u64,
    /// The orphan.
    pub orphan: OrphanView,
}

/// Reads the orphans of dropped traces written out (the store's table, or
/// [`MemoryDroppedOrphans`]) as of a position. Infallible as the core reads it: a store that
/// meets a fault answers what it read before it and records the fault for its read path to
/// answer instead.
pub trait DroppedOrphanReader: Send + Sync + fmt::Debug {
    /// Visits the rows of `cluster` written at or before `as_of`, in [`OrphanOrder`], from
    /// `start`, until `visit` returns `false`.
    fn dropped_orphans(
        &self,
        cluster: &str,
        start: Bound<&OrphanOrder>,
        as_of: u64,
        visit: &mut dyn FnMut(OrphanView) -> bool,
    );
}

/// The rows in memory: the specification the store's table follows, and what a history in
/// memory holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryDroppedOrphans {
    rows: BTreeMap<(String, OrphanOrder), (u64, OrphanView)>,
}

impl MemoryDroppedOrphans {
    /// No rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes records (a record of an orphan written before replaces it: the later wins, as
    /// in the store's table).
    pub fn write(&mut self, records: &[DroppedOrphanRecord]) {
        for record in records {
            self.rows.insert(
                (record.cluster.clone(), OrphanOrder::of(&record.orphan)),
                (record.written_at, record.orphan.clone()),
            );
        }
    }
}

impl DroppedOrphanReader for MemoryDroppedOrphans {
    fn dropped_orphans(
        &self,
        cluster: &str,
        start: Bound<&OrphanOrder>,
        as_of: u64,
        visit: &mut dyn FnMut(OrphanView) -> bool,
    ) {
        let start = match start {
            Bound::Included(order) => Bound::Included((cluster.to_owned(), order.clone())),
            Bound::Excluded(order) => Bound::Excluded((cluster.to_owned(), order.clone())),
            Bound::Unbounded => Bound::Included((cluster.to_owned(), OrphanOrder::FIRST)),
        };
        for ((row_cluster, _), (written_at, orphan)) in self.rows.range((start, Bound::Unbounded)) {
            if row_cluster != cluster {
                break;
            }
            if *written_at <= as_of && !visit(orphan.clone()) {
                break;
            }
        }
    }
}

/// Where a projection reads and writes the orphans of dropped traces.
#[derive(Clone, Debug)]
pub(super) struct DroppedRows {
    /// The rows written out; `None`: nothing is (every orphan is in memory).
    pub(super) reader: Option<Arc<dyn DroppedOrphanReader>>,
    /// Reads see the rows as of this position (`u64::MAX`: all of them, the live state).
    pub(super) as_of: u64,
    /// What the fold wrote out since the last take; `None`: the fold keeps them in memory.
    pub(super) collected: Option<Vec<DroppedOrphanRecord>>,
}

impl Default for DroppedRows {
    fn default() -> Self {
        Self {
            reader: None,
            as_of: u64::MAX,
            collected: None,
        }
    }
}
