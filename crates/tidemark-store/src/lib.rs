//! Tidemark's embedded store on redb: the append-only log (postcard records in a version
//! envelope), the id index that dedupes, secondary indexes for timelines, projection snapshots,
//! the checkpoint and the quarantine, with exactly-once application through one write
//! transaction per batch.

pub mod codec;
mod error;
mod store;
pub mod tables;

pub use error::{AppendError, CorruptRecord, OpenError, QueryError, RebuildError, StorageFault};
pub use store::{
    At, Input, Outcome, QuarantineEntry, QuarantineView, RebuildReport, Stats, Store, StoreConfig,
    TimelineEntry,
};
