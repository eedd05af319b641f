//! Tidemark's embedded store on redb: the append-only log (postcard records in a version
//! envelope), the id index that dedupes, secondary indexes for timelines, projection snapshots,
//! the checkpoint and the quarantine, with exactly-once application through one write
//! transaction per batch.

pub mod codec;
mod error;
mod input;
#[cfg(test)]
mod property_runner;
pub mod quarantine;
mod store;
pub mod tables;
mod verify;

pub use error::{
    AppendError, BackupError, CompactError, CorruptRecord, OpenError, QueryError, ReadOnlyStore,
    RebuildError, RetentionError, StorageFault, is_disk_full,
};
pub use quarantine::QuarantineLimits;
pub use store::{
    At, BackupInfo, ClusterTimelinePage, Commit, CommitListener, CompactReport, DiskFull,
    EVENTS_SCAN_BUDGET, EmbeddedRetention, EventFilter, EventsPage, FindingTimelineWindow, Input,
    MAX_MAINTENANCE_EVENTS_READ, Outcome, PastProjections, PreparedBatch, QuarantineEntry,
    QuarantineView, RebuildProgress, RebuildReport, RetentionReport, Stats, Store, StoreConfig,
    TimelineAnchor, TimelineEntry,
};
pub use verify::{IntegrityCheck, VERIFY_MAX_LISTED, VerifyError, VerifyProblem, VerifyReport};

/// The wall clock, for `recorded_at`: the store's own fact about when it wrote an event.
/// Projections never see it.
pub fn wall_clock() -> tidemark_core::Timestamp {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    tidemark_core::Timestamp::from_unix_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
}
