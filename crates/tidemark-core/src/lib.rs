//! Tidemark's pure core: the event model, the JSON wire format, and the projections as
//! deterministic folds over the log.
//!
//! Nothing here does IO, reads the wall clock, draws random numbers or lets hash-map order
//! reach an output: time comes from events, and the same log always folds to the same state.
//! What a projection reads of the store (a finding's history, a cluster's snapshot part) it
//! reads through a trait the store implements (`SharedHistoryReader`, `ClusterPartSource`).

pub mod alertmanager;
pub use findings::changes;
pub mod describe;
pub mod event;
pub mod findings;
pub mod fold;
pub mod hygiene;
pub mod incident_bodies;
pub mod incidents;
mod lazy_clusters;
pub mod maintenance;
pub mod orphans;
pub mod projections;
pub mod schema;
pub mod settings;
mod snapshot;
pub mod timeline_rows;
pub mod timestamp;
pub mod wire;

/// Flap detection lives with the findings it watches; `tidemark_core::flaps` stays its path.
pub use findings::flaps;

pub use event::{Event, EventId, EventType, Payload, Severity};
pub use findings::{
    ChangeSink, FindingChange, FindingOverview, FindingState, FindingView, FindingsProjection,
    Occurrence, ResolutionKind,
};
pub use fold::{Applied, FoldSnapshot, LogFold};
pub use projections::{
    ClusterPart, ClusterPartSource, LiveProjectionsSnapshot, Projections, ProjectionsSnapshot,
};
pub use settings::ClusterSettings;
pub use timestamp::Timestamp;
pub use wire::{
    Contract, DecodeError, DecodeProblem, decode_event, decode_event_bytes,
    decode_event_bytes_under, decode_event_under, decode_ndjson_line, decode_ndjson_line_under,
    encode_event,
};
