//! The redb tables and what their keys mean.
//!
//! Keys are chosen to be append-friendly where they can be (positions grow; a cluster's times
//! mostly grow), because every commit copies each B-tree leaf it touches.

use redb::TableDefinition;

/// position → event record (`codec::encode_event`). Positions start at 1 and have no gaps.
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// event id → position: the dedupe index.
pub const IDS: TableDefinition<&str, u64> = TableDefinition::new("ids");
/// (cluster, check_key, position) → change bits: the events that changed or named a finding.
pub const BY_FINDING: TableDefinition<(&str, &str, u64), u8> = TableDefinition::new("by_finding");
/// (cluster, event time in ns, position) → event type index.
pub const BY_CLUSTER_TIME: TableDefinition<(&str, i64, u64), u8> =
    TableDefinition::new("by_cluster_time");
/// (incident id, position) → ().
pub const BY_INCIDENT: TableDefinition<(&str, u64), ()> = TableDefinition::new("by_incident");
/// (event type, position) → ().
pub const BY_TYPE: TableDefinition<(&str, u64), ()> = TableDefinition::new("by_type");
/// position → projection snapshot (`codec::encode_snapshot`) of the state after it.
pub const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
/// position → latest event time (ns) among positions 1..=it, for each snapshot.
pub const SNAPSHOT_TIMES: TableDefinition<u64, i64> = TableDefinition::new("snapshot_times");
/// quarantine id → record (`codec::encode_quarantine`).
pub const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");
/// SHA-256 of a refused input (its reason's length as 8 little-endian bytes, the reason, the raw
/// bytes) → the quarantine id of the record that holds it: the same input refused again raises
/// that record's count instead of adding a record. Records written before this table existed
/// have no entry (a repeat of one adds one record, which is then counted).
///
/// Added without a layout bump: older builds ignore it (and write records without digests),
/// and this build creates it when it opens a store that lacks it.
pub const QUARANTINE_DIGESTS: TableDefinition<&[u8], u64> =
    TableDefinition::new("quarantine_digests");
/// quarantine id → (times refused, when last refused in ns) of a record refused more than once;
/// a record without an entry was refused once, at its `recorded_at`.
pub const QUARANTINE_REPEATS: TableDefinition<u64, (u64, i64)> =
    TableDefinition::new("quarantine_repeats");
/// Named numbers: `checkpoint` (last applied position), `format`, `max_time`, `log_source`,
/// `log_start`, `quarantine_bytes`, `quarantine_dropped`.
pub const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// `META` key of the last applied log position.
pub const CHECKPOINT: &str = "checkpoint";
/// `META` key of the store layout version.
pub const FORMAT: &str = "format";
/// `META` key of the latest event time applied (ns).
pub const MAX_TIME: &str = "max_time";
/// `META` key set to [`LOG_FROM_STREAM`] once positions came from a JetStream stream (a replica):
/// then the stream, not this file, is the source of truth, and retention may drop old events.
pub const LOG_SOURCE: &str = "log_source";
/// The `LOG_SOURCE` of a replica.
pub const LOG_FROM_STREAM: i64 = 1;
/// `META` key of the first position the local log still holds (absent: 1). Retention drops the
/// events before a snapshot and moves this to the snapshot's position.
pub const LOG_START: &str = "log_start";
/// `META` key of the bytes the quarantine's records take (their encoded size), for its bound.
/// Absent in stores written before the bound: `Store::open` counts them once and sets it.
pub const QUARANTINE_BYTES: &str = "quarantine_bytes";
/// `META` key of the refused inputs whose raw bytes were not kept because the quarantine was at
/// its bound (absent: none).
pub const QUARANTINE_DROPPED: &str = "quarantine_dropped";
/// The store layout this build writes.
pub const STORE_FORMAT: i64 = 1;

/// Change bits of `BY_FINDING`.
pub mod change_bits {
    /// The event named the finding (a manual resolve, an incident) without changing it.
    pub const MENTIONED: u8 = 1;
    /// An occurrence opened.
    pub const OPENED: u8 = 2;
    /// Resolved automatically.
    pub const RESOLVED_AUTO: u8 = 4;
    /// Resolved by an operator.
    pub const RESOLVED_MANUAL: u8 = 8;
    /// Resolved by a recipe.
    pub const RESOLVED_RECIPE: u8 = 16;
    /// Informational: resolved as it opened.
    pub const INFORMATIONAL: u8 = 32;
    /// Seen with another severity.
    pub const SEVERITY_CHANGED: u8 = 64;
    /// A flap detector started or stopped calling it flapping (which, and why: the
    /// projection's flap episodes at this position).
    pub const FLAP: u8 = 128;

    /// Names of the bits set, in a fixed order.
    pub fn names(bits: u8) -> Vec<&'static str> {
        use tidemark_core::findings::FindingChange;
        use tidemark_core::findings::ResolutionKind as Kind;
        [
            (OPENED, FindingChange::Opened.as_str()),
            (SEVERITY_CHANGED, FindingChange::SeverityChanged.as_str()),
            (RESOLVED_AUTO, FindingChange::Resolved(Kind::Auto).as_str()),
            (
                RESOLVED_MANUAL,
                FindingChange::Resolved(Kind::Manual).as_str(),
            ),
            (
                RESOLVED_RECIPE,
                FindingChange::Resolved(Kind::Recipe).as_str(),
            ),
            (
                INFORMATIONAL,
                FindingChange::Resolved(Kind::Informational).as_str(),
            ),
            (FLAP, "flap"),
            (MENTIONED, "mentioned"),
        ]
        .into_iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
}
