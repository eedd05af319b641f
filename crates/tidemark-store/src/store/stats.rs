//! Figures about a store: events, checkpoint, snapshots, quarantine, findings, size.

use redb::ReadableTableMetadata;
use serde::Serialize;

use super::Store;
use crate::error::QueryError;
use crate::tables;

/// Figures about a store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Events in the log (= the checkpoint when the store is the log; fewer when following a
    /// stream, whose positions may have gaps).
    pub events: u64,
    /// Last applied position.
    pub checkpoint: u64,
    /// Position of the latest projection snapshot (0: none).
    pub snapshot_seq: u64,
    /// Snapshots kept.
    pub snapshots: u64,
    /// Quarantine records (each counts how often its input was refused).
    pub quarantined: u64,
    /// Bytes the quarantine records take (the bound is `StoreConfig::quarantine`).
    pub quarantine_bytes: u64,
    /// Refused inputs whose raw bytes were not kept because the quarantine was full, ever.
    pub quarantine_dropped: u64,
    /// Findings, active or not.
    pub findings: u64,
    /// Active findings.
    pub active_findings: u64,
    /// Traces the span forests hold (bounded by each cluster's `span_retention_secs`).
    pub traces_kept: u64,
    /// Spans that arrived for a trace past its cluster's `span_retention_secs` and were judged
    /// alone, over the whole log.
    pub late_spans: u64,
    /// Auto-resolution times the count flap detector holds (bounded by the 30-day limit of
    /// `flap_window_secs`).
    pub auto_resolutions_kept: u64,
    /// Size of the database file.
    pub size_on_disk_bytes: u64,
}

impl Store {
    /// How many refused inputs the quarantine holds (what `stats().quarantined` says), without
    /// the figures that read every cluster: for a readiness probe, asked every few seconds.
    pub fn quarantined(&self) -> Result<u64, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        Ok(txn.open_table(tables::QUARANTINE)?.len()?)
    }

    /// Figures about the store (the findings' counts read every cluster: a store restored
    /// lazily restores them all).
    pub fn stats(&self) -> Result<Stats, QueryError> {
        let (checkpoint, snapshot_seq, findings, active, quarantine, memory) = {
            let state = self.read_state();
            let projections = &state.projections;
            (
                state.last_seq,
                state.snapshot_seq,
                projections.findings().finding_count() as u64,
                projections.findings().active_count() as u64,
                state.quarantine,
                (
                    projections.orphans().traces_kept(None) as u64,
                    projections.orphans().late_spans(None),
                    projections.findings().auto_resolutions_kept() as u64,
                ),
            )
        };
        let (traces_kept, late_spans, auto_resolutions_kept) = memory;
        let db = self.db()?;
        let txn = db.begin_read()?;
        let events = txn.open_table(tables::LOG)?.len()?;
        let snapshots = txn.open_table(tables::SNAPSHOTS)?.len()?;
        let quarantined = txn.open_table(tables::QUARANTINE)?.len()?;
        let size_on_disk_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Ok(Stats {
            events,
            checkpoint,
            snapshot_seq,
            snapshots,
            quarantined,
            quarantine_bytes: quarantine.bytes,
            quarantine_dropped: quarantine.dropped,
            findings,
            active_findings: active,
            traces_kept,
            late_spans,
            auto_resolutions_kept,
            size_on_disk_bytes,
        })
    }
}
