//! The projections, now (the live state) or at a point of the log (time travel: rebuilt from
//! the nearest usable snapshot before it and the log after that snapshot).

use std::sync::Arc;

use tidemark_core::findings::SharedHistoryReader;
use tidemark_core::{Event, FindingView, Projections, ProjectionsSnapshot, Timestamp};

use super::Store;
use super::history_tables::{fold_read_history_cleanly, take_history_fault};
use super::restore::{replay_range, restore_latest_usable, restore_projections};
use super::snapshot_parts;
use crate::error::{QueryError, ReadFault};
use crate::tables::{self, Table};

/// A point of the log to look at the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// After applying positions 1..=seq.
    Seq(u64),
    /// After the longest prefix of the log whose events are not later than this time.
    Time(Timestamp),
}

/// The projections at a point of the log, as [`Store::projection_at_from`] rebuilt them.
#[derive(Debug)]
pub struct PastProjections {
    /// The state.
    pub projections: Projections,
    /// The log position it is at.
    pub seq: u64,
    /// Whether it was folded forward from the base it was given (rather than a snapshot).
    pub from_base: bool,
}

impl Store {
    /// The reader of the history tables when the live state reads its history there (a store
    /// of layout 2), `None` when it keeps it in memory (layout 1, opened read-only).
    pub(super) fn history_reader(
        &self,
        state: &super::LiveState,
    ) -> Option<Arc<dyn SharedHistoryReader>> {
        state
            .projections
            .findings()
            .history_is_shared()
            .then(|| Arc::new(self.history()) as Arc<dyn SharedHistoryReader>)
    }

    /// Whether the store is of an older layout that a read-write open upgrades (a read-only
    /// open of a layout-1 store reads its history from its snapshots, in memory).
    pub fn upgrade_due(&self) -> bool {
        !self.read_state().projections.findings().history_is_shared()
    }

    /// Every finding now, sorted by (cluster, check_key).
    pub fn findings(&self) -> Vec<FindingView> {
        self.read_state().projections.findings().views()
    }

    /// One finding now.
    pub fn finding(&self, cluster: &str, check_key: &str) -> Option<FindingView> {
        self.read_state()
            .projections
            .findings()
            .view(cluster, check_key)
    }

    /// How many clusters of the live state are in memory: a state restored from a per-cluster
    /// snapshot reads a cluster's part when a read or a batch first needs it (ADR 0006,
    /// "Reopen across clusters").
    pub fn clusters_in_memory(&self) -> usize {
        self.read_state().projections.clusters_in_memory()
    }

    /// The serializable projection state now.
    pub fn projection_snapshot(&self) -> ProjectionsSnapshot {
        self.read_state().projections.snapshot()
    }

    /// Reads the live projections (a read lock is held while `read` runs: keep it short).
    /// Unchecked: a finding's history read from the store's tables that meets a fault reads
    /// empty here (the fault is logged); [`Store::read_at`] answers the fault instead.
    pub fn read<R>(&self, read: impl FnOnce(&Projections) -> R) -> R {
        read(&self.read_state().projections)
    }

    /// Reads the projections now (`None`) or rebuilt at a point of the log, with the log
    /// position they reflect (read under the same lock as the live projections, so the two agree).
    pub fn read_at<R>(
        &self,
        at: Option<At>,
        read: impl FnOnce(&Projections) -> R,
    ) -> Result<(R, u64), QueryError> {
        self.read_with_events(at, |_| Vec::new(), |p, _, seq| (read(p), seq))
    }

    /// Like [`Store::read_at`], and hands `render` the stored events at the positions
    /// `positions` names, all from one consistent view: while the live state is read no batch
    /// can commit (writers hold the state lock across their commit), so the events the
    /// projections point at are all there.
    pub fn read_with_events<R>(
        &self,
        at: Option<At>,
        positions: impl FnOnce(&Projections) -> Vec<u64>,
        render: impl FnOnce(&Projections, &[(u64, Event)], u64) -> R,
    ) -> Result<R, QueryError> {
        let events_of = |positions: Vec<u64>| -> Result<Vec<(u64, Event)>, QueryError> {
            if positions.is_empty() {
                return Ok(Vec::new());
            }
            Ok(self
                .events_at(&positions)?
                .into_iter()
                .map(|(seq, stored)| (seq, stored.event))
                .collect())
        };
        // A finding's history read from the tables meets a fault only here (the read answers
        // empty then): the fault is the answer, never the incomplete read.
        drop(take_history_fault());
        let answer = match at {
            None => {
                let state = self.read_state();
                let events = events_of(positions(&state.projections))?;
                render(&state.projections, &events, state.last_seq)
            }
            Some(at) => {
                let (projections, seq) = self.projection_at(at)?;
                let events = events_of(positions(&projections))?;
                render(&projections, &events, seq)
            }
        };
        match take_history_fault() {
            Some(ReadFault::Corrupt(corrupt)) if snapshot_parts::is_part(&corrupt) => {
                // The live state was restored lazily and a cluster's part does not read back:
                // this read answers it; the state is restored whole for the next.
                self.restore_whole_after(&corrupt);
                Err(QueryError::Corrupt(corrupt))
            }
            Some(fault) => Err(fault.into()),
            None => Ok(answer),
        }
    }

    /// Runs `read` over a past state this store rebuilt (`projection_at_from`): a finding's
    /// history it reads from the store's tables that meets a fault answers the fault, never
    /// the incomplete read (as [`Store::read_at`] does for the live state).
    pub fn read_past<R>(
        &self,
        past: &Projections,
        read: impl FnOnce(&Projections) -> R,
    ) -> Result<R, QueryError> {
        drop(take_history_fault());
        let answer = read(past);
        match take_history_fault() {
            Some(fault) => Err(fault.into()),
            None => Ok(answer),
        }
    }

    /// The findings projection at a point of the log, rebuilt from the nearest snapshot before
    /// it and the log after that snapshot.
    pub fn projection_at(&self, at: At) -> Result<(Projections, u64), QueryError> {
        self.projection_at_from(at, None)
            .map(|past| (past.projections, past.seq))
    }

    /// [`Store::projection_at`], allowed to start from `base`: the state after positions
    /// `1..=base_seq` of this store (a past state rebuilt earlier, e.g. by time travel's cache).
    /// The base is used (cloned, then the log after it folded) when it is usable and no farther
    /// from the point than the nearest snapshot: `at` is a position at or after `base_seq`, and
    /// the log after `base_seq` is all retained. Otherwise the answer is rebuilt as without it;
    /// either way the answer is the same (a state is a function of the log prefix).
    pub fn projection_at_from(
        &self,
        at: At,
        base: Option<(&Projections, u64)>,
    ) -> Result<PastProjections, QueryError> {
        let (checkpoint, log_start, history) = {
            let state = self.read_state();
            (state.last_seq, state.log_start, self.history_reader(&state))
        };
        if let At::Seq(seq) = at
            && log_start > 1
            && seq < log_start
        {
            return Err(QueryError::BeforeRetainedLog {
                requested: format!("position {seq}"),
                first_retained: log_start,
            });
        }
        let db = self.db()?;
        let txn = db.begin_read()?;
        let snapshots = txn.open_table(tables::SNAPSHOTS)?;
        let parts = tables::open_listed(&txn, Table::ClusterSnapshots, tables::CLUSTER_SNAPSHOTS)?;
        if let (At::Seq(seq), Some((base, base_seq))) = (at, base) {
            let to = seq.min(checkpoint);
            let nearest_snapshot = match snapshots.range(..=to)?.next_back() {
                Some(entry) => entry?.0.value(),
                None => 0,
            };
            if base_seq <= to
                && base_seq.saturating_add(1) >= log_start
                && base_seq >= nearest_snapshot
            {
                let mut projections = base.clone();
                let log = txn.open_table(tables::LOG)?;
                // Read as of the checkpoint while folding (what a widened flap window reads
                // back is older than the event that widens it), then as of `to`.
                projections.set_history_as_of(checkpoint);
                drop(take_history_fault());
                replay_range(&log, base_seq + 1..=to, &mut projections, |_| false)?;
                fold_read_history_cleanly()?;
                projections.set_history_as_of(to);
                return Ok(PastProjections {
                    projections,
                    seq: to,
                    from_base: true,
                });
            }
        }
        let times = txn.open_table(tables::SNAPSHOT_TIMES)?;
        // The latest snapshot that is a valid starting point and reads back (corrupt ones are
        // skipped with a warning: an earlier one, or the log from its start, is folded instead).
        let candidates: Box<dyn Iterator<Item = Result<u64, ReadFault>>> =
            match at {
                At::Seq(seq) => Box::new(
                    snapshots
                        .range(..=seq.min(checkpoint))?
                        .rev()
                        .map(|entry| Ok(entry?.0.value())),
                ),
                At::Time(t) => Box::new(times.range(..=checkpoint)?.rev().filter_map(
                    move |entry| match entry {
                        Ok((k, v)) => (v.value() <= t.unix_nanos()).then(|| Ok(k.value())),
                        Err(e) => Some(Err(e.into())),
                    },
                )),
            };
        let mut skipped = Vec::new();
        let not_after = match at {
            At::Seq(_) => None,
            At::Time(t) => Some(t),
        };
        // Read as of the checkpoint while folding (what a widened flap window reads back is
        // older than the event that widens it, so it is all there); moved to the position
        // reached below.
        let restored = restore_latest_usable(
            &snapshots,
            parts.as_ref(),
            candidates,
            log_start,
            not_after,
            history.as_ref(),
            Some(checkpoint),
            None,
            &mut skipped,
        )?;
        if restored.is_none() && log_start > 1 && !skipped.is_empty() {
            return Err(QueryError::NoUsableSnapshot {
                first_retained: log_start,
            });
        }
        if restored.is_none() && log_start > 1 {
            // No snapshot in the retained range is early enough (or readable) for this point.
            return Err(QueryError::BeforeRetainedLog {
                requested: match at {
                    At::Seq(seq) => format!("position {seq}"),
                    At::Time(t) => format!("time {t}"),
                },
                first_retained: log_start,
            });
        }
        let (start, mut findings) = match restored {
            Some((seq, _, projections)) => (seq, projections),
            None => (
                0,
                restore_projections(None, history.as_ref(), Some(checkpoint)),
            ),
        };
        let from = start + 1;
        let log = txn.open_table(tables::LOG)?;
        drop(take_history_fault());
        let to = match at {
            At::Seq(seq) => {
                let to = seq.min(checkpoint);
                replay_range(&log, from..=to, &mut findings, |_| false)?;
                to
            }
            At::Time(t) => {
                from - 1 + replay_range(&log, from..=checkpoint, &mut findings, |e| e.time > t)?
            }
        };
        fold_read_history_cleanly()?;
        findings.set_history_as_of(to);
        Ok(PastProjections {
            projections: findings,
            seq: to,
            from_base: false,
        })
    }

    /// Every finding at a point of the log, and the position that point is.
    pub fn findings_at(&self, at: At) -> Result<(Vec<FindingView>, u64), QueryError> {
        let (projections, seq) = self.projection_at(at)?;
        Ok((projections.findings().views(), seq))
    }
}
