//! The whole log folded again: without touching the store (`fold_log`), or writing the
//! snapshots and the finding index anew (`rebuild`).

use std::collections::BTreeMap;

use redb::ReadableTable;
use serde::Serialize;
use tidemark_core::Projections;

use super::index::finding_index_entries;
use super::restore::{decode_log, replay_range};
use super::{LiveState, Store};
use crate::error::{QueryError, RebuildError, StorageFault};
use crate::tables;

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// Events folded.
    pub events: u64,
    /// Whether the rebuilt state equals the state it replaced.
    pub state_unchanged: bool,
}

impl Store {
    /// Folds the whole stored log from nothing, without touching the store.
    pub fn fold_log(&self, mut progress: impl FnMut(u64, u64)) -> Result<Projections, QueryError> {
        let (checkpoint, log_start) = {
            let state = self.read_state();
            (state.last_seq, state.log_start)
        };
        if log_start > 1 {
            return Err(QueryError::BeforeRetainedLog {
                requested: "the whole log".into(),
                first_retained: log_start,
            });
        }
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let mut findings = Projections::new();
        let mut done = 0;
        replay_range(&log, 1..=checkpoint, &mut findings, |_| {
            done += 1;
            if done % 65_536 == 0 {
                progress(done, checkpoint);
            }
            false
        })?;
        progress(checkpoint, checkpoint);
        Ok(findings)
    }

    /// Drops every projection snapshot and the finding index, folds the whole log again, and
    /// writes them anew, in one transaction; the live state becomes the rebuilt one.
    pub fn rebuild(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<RebuildReport, RebuildError> {
        self.refuse_if_read_only()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.log_start > 1 {
            return Err(RebuildError::LogRetained {
                first_retained: state.log_start,
            });
        }
        let checkpoint = state.last_seq;
        let db = self.db()?;
        let txn = db.begin_write()?;
        txn.delete_table(tables::SNAPSHOTS)?;
        txn.delete_table(tables::SNAPSHOT_TIMES)?;
        txn.delete_table(tables::BY_FINDING)?;
        let mut rebuilt = LiveState {
            projections: Projections::new(),
            last_seq: 0,
            max_time: None,
            snapshot_seq: 0,
            quarantine: state.quarantine,
            from_stream: state.from_stream,
            log_start: 1,
            skipped_snapshots: Vec::new(),
        };
        {
            let log = txn.open_table(tables::LOG)?;
            let mut by_finding = txn.open_table(tables::BY_FINDING)?;
            let mut bits: BTreeMap<String, u8> = BTreeMap::new();
            let entries = log.range(1..=checkpoint).map_err(StorageFault::from)?;
            for entry in entries {
                let (key, value) = entry?;
                let seq = key.value();
                let stored = decode_log(seq, value.value())?;
                let event = &stored.event;
                let changes = rebuilt.projections.apply(seq, event);
                finding_index_entries(event, changes, &mut bits);
                for (check_key, b) in &bits {
                    by_finding.insert((event.cluster.as_str(), check_key.as_str(), seq), *b)?;
                }
                rebuilt.last_seq = seq;
                rebuilt.max_time = Some(rebuilt.max_time.map_or(event.time, |t| t.max(event.time)));
                if seq % self.config.snapshot_keep_every == 0 && seq < checkpoint {
                    self.write_snapshot(&txn, &mut rebuilt)?;
                }
                if seq % 65_536 == 0 {
                    progress(seq, checkpoint);
                }
            }
        }
        if rebuilt.last_seq > 0 {
            self.write_snapshot(&txn, &mut rebuilt)?;
        }
        txn.commit()?;
        progress(checkpoint, checkpoint);
        let state_unchanged = rebuilt.projections.snapshot() == state.projections.snapshot();
        *state = rebuilt;
        Ok(RebuildReport {
            events: checkpoint,
            state_unchanged,
        })
    }
}
