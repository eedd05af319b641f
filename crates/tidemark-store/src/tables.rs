//! The redb tables and what their keys mean: the one list of them.
//!
//! Keys are chosen to be append-friendly where they can be (positions grow; a cluster's times
//! mostly grow), because every commit copies each B-tree leaf it touches.
//!
//! Every table is named once, in the `store_tables!` list below. From it come the
//! `TableDefinition` constants, [`Table`] (every table by name, with whether an older store may
//! lack it) and `visit_tables`, which hands each table's definition, with its own key and value
//! types, to a `TableVisitor` (the tables' types differ, so an array of definitions would not
//! type-check; the visitor is generic over them). Whatever has to touch every table goes through
//! that list: `Store::open` creates the tables, a backup copies them and counts their entries,
//! `Store::inspect_backup` (and so `tidemark restore`) refuses a file that lacks one, and
//! `Store::verify` names a missing one. A table added to the list is created, copied, counted
//! and checked for without another edit; `tests/tables.rs` checks that redb's `list_tables()` of
//! a fresh store, of a store with entries in every table and of its backup is exactly the list.

use redb::{Key, TableDefinition, TableHandle, Value};

use crate::error::StorageFault;

/// An operation on every table of the store, whatever its key and value types: see
/// `visit_tables`.
pub(crate) trait TableVisitor {
    /// Why the operation failed; [`visit_tables`] stops at the first failure.
    type Error;
    /// Does the operation on one table.
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: Table,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<(), Self::Error>;
}

/// Generates the constants, [`Table`] and `visit_tables` from one list. A line is
/// `Variant: CONSTANT<Key, Value> = "name"`, with `, added_later` when the table was added
/// without a layout bump (a store written before it lacks it until opened for writing).
macro_rules! store_tables {
    (@added_later) => { false };
    (@added_later added_later) => { true };
    ($(
        $(#[$attribute:meta])*
        $variant:ident: $constant:ident<$key:ty, $value:ty> = $name:literal $(, $added_later:ident)?;
    )*) => {
        $(
            $(#[$attribute])*
            pub const $constant: TableDefinition<$key, $value> = TableDefinition::new($name);
        )*

        /// Every table of a store, in the order of the list (`Table::ALL`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Table {
            $(
                #[doc = concat!("`", $name, "` ([`", stringify!($constant), "`]).")]
                $variant,
            )*
        }

        impl Table {
            /// Every table, in the order of the list.
            pub const ALL: &'static [Table] = &[$(Table::$variant),*];

            /// The table's name in the redb file.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Table::$variant => $name,)*
                }
            }

            /// Whether a store may lack the table: it was added without a layout bump, so a store
            /// written before it has none until a read-write open creates it (a read-only open
            /// creates nothing). Readers treat such a table as empty.
            pub const fn may_be_absent(self) -> bool {
                match self {
                    $(Table::$variant => store_tables!(@added_later $($added_later)?),)*
                }
            }
        }

        /// Hands every table of the list, with its definition, to `visitor`, in the order of the
        /// list; stops at the first error.
        pub(crate) fn visit_tables<Visitor: TableVisitor>(
            visitor: &mut Visitor,
        ) -> Result<(), Visitor::Error> {
            $(visitor.visit(Table::$variant, $constant)?;)*
            Ok(())
        }
    };
}

store_tables! {
    /// Named numbers: `checkpoint` (last applied position), `format`, `max_time`, `log_source`,
    /// `log_start`, `quarantine_bytes`, `quarantine_dropped`, `event_indexes_to`, `changes_to`.
    Meta: META<&str, i64> = "meta";
    /// position → event record (`codec::encode_event`). Positions start at 1 and have no gaps.
    Log: LOG<u64, &[u8]> = "log";
    /// event id → position: the dedupe index.
    Ids: IDS<&str, u64> = "ids";
    /// (cluster, check_key, position) → change bits: the events that changed or named a finding,
    /// one entry each, up to store layout 8. From layout 9 on the entries are in
    /// `finding_groups` and this table is empty: a read-write open moves them there
    /// (`store/upgrade.rs`), and a read-only open of an older store reads them here
    /// (`store/finding_index.rs` reads whichever holds them).
    ByFinding: BY_FINDING<(&str, &str, u64), u8> = "by_finding";
    /// (cluster, event time in ns, position) → event type index.
    ByClusterTime: BY_CLUSTER_TIME<(&str, i64, u64), u8> = "by_cluster_time";
    /// (incident id, position) → ().
    ByIncident: BY_INCIDENT<(&str, u64), ()> = "by_incident";
    /// (event type, position) → ().
    ByType: BY_TYPE<(&str, u64), ()> = "by_type";
    /// position → projection snapshot of the state after it: one value (formats up to 7,
    /// `codec::encode_snapshot_of`), or a per-cluster snapshot's manifest (format 8, naming its
    /// parts in `cluster_snapshots`; `codec::cluster_parts`).
    Snapshots: SNAPSHOTS<u64, &[u8]> = "snapshots";
    /// position → latest event time (ns) among positions 1..=it, for each snapshot.
    SnapshotTimes: SNAPSHOT_TIMES<u64, i64> = "snapshot_times";
    /// quarantine id → record (`codec::encode_quarantine`).
    Quarantine: QUARANTINE<u64, &[u8]> = "quarantine";
    /// SHA-256 of a refused input (its reason's length as 8 little-endian bytes, the reason, the
    /// raw bytes) → the quarantine id of the record that holds it: the same input refused again
    /// raises that record's count instead of adding a record. Records written before this table
    /// existed have no entry (a repeat of one adds one record, which is then counted).
    ///
    /// Added without a layout bump: older builds ignore it (and write records without digests),
    /// and this build creates it when it opens a store that lacks it.
    QuarantineDigests: QUARANTINE_DIGESTS<&[u8], u64> = "quarantine_digests", added_later;
    /// quarantine id → (times refused, when last refused in ns) of a record refused more than
    /// once; a record without an entry was refused once, at its `recorded_at`. Added with
    /// `quarantine_digests`, without a layout bump.
    QuarantineRepeats: QUARANTINE_REPEATS<u64, (u64, i64)> = "quarantine_repeats", added_later;
    /// (cluster, position) → event time in ns: a cluster's events in log order, with their time.
    ///
    /// This and the three tables after it are the event filters' indexes (`store/index.rs`
    /// writes them, `store/events.rs` says which filter reads which). Added without a layout
    /// bump: `META`'s `event_indexes_to` says up to which position they are complete; a
    /// read-write open builds what they lack (a store written before them, or appended to by a
    /// build without them), and `events_page` reads the log instead while they are incomplete
    /// (a read-only open of such a store).
    ByCluster: BY_CLUSTER<(&str, u64), i64> = "by_cluster", added_later;
    /// (source, position) → ().
    BySource: BY_SOURCE<(&str, u64), ()> = "by_source", added_later;
    /// (cluster, clock in ns, position) → (): the cluster's clock marks. The clock of a cluster
    /// after a position is its latest event time up to it; a mark is written for the cluster's
    /// first event and for each event whose time is at least `CLOCK_MARK_NS` past the cluster's
    /// last mark (the mark's clock is that event's time). So marks rise with their positions, and
    /// every event of the cluster before a mark is earlier than the mark's clock: a time window
    /// turns into a range of the cluster's positions (`store/events.rs`).
    ClusterClock: CLUSTER_CLOCK<(&str, i64, u64), ()> = "cluster_clock", added_later;
    /// (cluster, position) → event time in ns, of each event more than `LATE_EVENT_NS` earlier
    /// than the clock of its cluster's last mark before it (a late event): a time window's range
    /// of positions holds every other event of the window, and these are read after it.
    LateEvents: LATE_EVENTS<(&str, u64), i64> = "late_events", added_later;
    /// (cluster, check_key, opened position) → the closed occurrence and its number in the
    /// finding's history (`codec::encode_occurrence`): written in the batch's transaction when
    /// the occurrence closes (the open one is in the live state). A finding's occurrences close
    /// in the order they open, so its rows are numbered 1, 2, … in key order
    /// (`store/history_tables.rs` reads them as of a position, in pages).
    ///
    /// Added with store layout 2 (ADR 0006): a store of layout 1 lacks it until it is upgraded;
    /// read-only, it reads as empty.
    FindingOccurrences: FINDING_OCCURRENCES<(&str, &str, u64), &[u8]> = "finding_occurrences", added_later;
    /// (cluster, check_key, started position, number) → the ended flap episode
    /// (`codec::encode_flap_episode`): written in the batch's transaction when the episode
    /// ends (the open ones are in the live state). Episodes are numbered in the order they
    /// started; two detectors may start at the same position (hence the number in the key) and
    /// end out of that order. Added with `finding_occurrences`, in store layout 2.
    FindingFlapEpisodes: FINDING_FLAP_EPISODES<(&str, &str, u64, u64), &[u8]> = "finding_flap_episodes", added_later;
    /// (cluster, position of the snapshot that wrote it) → the cluster's part of a per-cluster
    /// snapshot (snapshot format 8, `codec::cluster_parts`): its findings without their history
    /// and its orphan state. A snapshot writes the parts of the clusters that changed since the
    /// previous one; its manifest in `snapshots` names every cluster's part. A part is deleted
    /// with the last snapshot that names it (`store/snapshot_parts.rs`).
    ///
    /// Added without a layout bump: stores written before it hold only snapshots of one value,
    /// which are still read; a read-only open of such a store reads it as empty.
    ClusterSnapshots: CLUSTER_SNAPSHOTS<(&str, u64), &[u8]> = "cluster_snapshots", added_later;
    /// (incident id, entry position, position written at) → a timeline entry of an incident
    /// that was not open when it was written out (`codec::encode_entry_row`), or, at entry
    /// position 0, the header of that write-out (`codec::encode_write_out_header`): written in
    /// the batch's transaction at the end of the event that closed (or absorbed, or touched)
    /// the incident; the entries of open incidents are in the live state. Rows are never
    /// rewritten; `tidemark_core::timeline_rows` says how they are read as of a position
    /// (`store/timeline_rows.rs`).
    ///
    /// Added with store layout 3 (ADR 0006, step 3): a store of layout 2 lacks it until its
    /// first read-write open, which writes out what its closed incidents hold; read-only, it
    /// reads as empty (every entry is then in memory).
    IncidentEntries: INCIDENT_ENTRIES<(&str, u64, u64), &[u8]> = "incident_entries", added_later;
    /// (incident id, position written at) → a version of an incident that was not open when
    /// it was written out (`codec::encode_body_row`: its number and its body without the
    /// timeline, whose entries are in `incident_entries`): written in the batch's transaction
    /// at the end of the event that closed (or absorbed, or changed) it; open incidents are in
    /// the live state. Rows are never rewritten; a read as of a position takes the latest
    /// version written by then (`tidemark_core::incident_bodies`, `store/incident_bodies.rs`).
    ///
    /// Added with store layout 4 (ADR 0006, step 4): a store of layout 3 lacks it until its
    /// first read-write open, which writes out its closed incidents; read-only, it reads as
    /// empty (every incident is then in memory).
    IncidentBodies: INCIDENT_BODIES<(&str, u64), &[u8]> = "incident_bodies", added_later;
    /// (scope, opened position, incident id, position written at) → nothing: the opening of
    /// each version in `incident_bodies`, once in the scope of every cluster (`""`) and once in
    /// its cluster's, so lists page incidents in opening order without reading the others.
    /// Added with `incident_bodies`, in store layout 4.
    IncidentOpenings: INCIDENT_OPENINGS<(&str, u64, &str, u64), ()> = "incident_openings", added_later;
    /// (cluster, orphan kind code, subject, detail, position judged at) → an orphan of a trace
    /// the cluster's span forest dropped after `span_retention_secs`, final from then on
    /// (`codec::encode_dropped_orphan_row`: the position it was written at and the orphan):
    /// written in the batch's transaction at the end of the cluster's next event; the orphans
    /// of the traces memory holds are in the live state. Rows are never rewritten;
    /// `tidemark_core::orphans` says how they are read as of a position, in list order
    /// (`store/dropped_orphans.rs`).
    ///
    /// Added with store layout 5 (ADR 0006, step 5): a store of layout 4 lacks it until its
    /// first read-write open; its snapshots' dropped orphans are written out by the first event
    /// of their cluster. Read-only, it reads as empty (every orphan is then in memory).
    DroppedOrphans: DROPPED_ORPHANS<(&str, u8, &str, &str, u64), &[u8]> = "dropped_orphans", added_later;
    /// position → what the projections drew from the event there, in `tidemark replay --step`
    /// order (`codec::encode_changes`; ADR 0008): written in the batch's transaction, so a
    /// live stream and a resume from any retained position read what the fold said. Positions
    /// without changes have no record.
    ///
    /// Added without a layout bump: `META`'s `changes_to` says up to which position it is
    /// complete. An older build ignores it (and leaves `changes_to` behind); a read-write open
    /// writes the records after `changes_to` by folding again from the nearest snapshot.
    Changes: CHANGES<u64, &[u8]> = "changes", added_later;
    /// (cluster, check_key, first position) → the finding index entries (position, change bits)
    /// of that finding from the first position on, for a run of positions one batch (or a
    /// rebuild's chunk) changed or named it at, at most `codec::FINDING_GROUP_MAX_ENTRIES`
    /// (`codec::encode_finding_group`): store layout 9 (issue 20), in place of `by_finding`'s
    /// entry per change, which took a B-tree insert each. One finding's values hold disjoint
    /// runs, so a read from position p opens at most one value that starts before p.
    ///
    /// A store of an earlier layout lacks it until its first read-write open creates it and
    /// moves `by_finding`'s entries into it; read-only, its entries are read in `by_finding`.
    FindingGroups: FINDING_GROUPS<(&str, &str, u64), &[u8]> = "finding_groups", added_later;
}

/// The tables of the list that the file of `txn` lacks although every store has them (tables
/// that [may be absent](Table::may_be_absent) are not named), in the order of the list.
pub(crate) fn missing_tables(txn: &redb::ReadTransaction) -> Result<Vec<Table>, StorageFault> {
    let present: Vec<String> = txn
        .list_tables()?
        .map(|table| table.name().to_owned())
        .collect();
    Ok(Table::ALL
        .iter()
        .copied()
        .filter(|table| !table.may_be_absent() && !present.iter().any(|name| name == table.name()))
        .collect())
}

/// A table of the list, open in `txn`; `None` when the file lacks it and it
/// [may be absent](Table::may_be_absent) (a store written before the table was added, opened
/// read-only). A file lacking any other table of the list is an error.
pub(crate) fn open_listed<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: Table,
    definition: TableDefinition<'static, K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StorageFault> {
    match txn.open_table(definition) {
        Ok(open) => Ok(Some(open)),
        Err(redb::TableError::TableDoesNotExist(_)) if table.may_be_absent() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

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
/// `META` key of the position up to which the event filters' indexes (`by_cluster`,
/// `by_source`, `cluster_clock`, `late_events`) are complete (absent: 0, none). Every batch this
/// build writes moves it to its checkpoint; a read-write open builds them up to the checkpoint.
pub const EVENT_INDEXES_TO: &str = "event_indexes_to";
/// `META` key of the position up to which the `changes` table is complete (absent: 0, none).
/// Every batch this build writes moves it to its checkpoint when it was at the batch's start;
/// a read-write open completes the table up to the checkpoint.
pub const CHANGES_TO: &str = "changes_to";
/// How far (ns; 1 minute) a cluster's clock moves between two of its clock marks at least: a
/// time window's range of positions starts at most this much of the cluster's clock early.
pub const CLOCK_MARK_NS: i64 = 60 * 1_000_000_000;
/// An event more than this much (ns; 5 minutes) earlier than its cluster's last clock mark goes
/// to `late_events`: a window's range of positions ends this much (plus `CLOCK_MARK_NS`) of the
/// cluster's clock after the window, so events a little late are found there, and one
/// backfilled event does not widen every window.
pub const LATE_EVENT_NS: i64 = 5 * 60 * 1_000_000_000;
/// The store layout this build writes. Layout 2 (ADR 0006): a finding's history is in
/// `finding_occurrences` and `finding_flap_episodes`, and snapshots are live snapshots without
/// it; a store of layout 1 is upgraded in place at its first read-write open (`store/upgrade.rs`)
/// and read as it is (its history from its snapshots, in memory) by a read-only one.
///
/// Layout 3 (ADR 0006, step 3): the timeline entries of incidents that are not open are in
/// `incident_entries`, and snapshots hold only the entries not written out; a store of layout
/// 2 is upgraded at its first read-write open (its closed incidents' entries written out at
/// its checkpoint, `store/open.rs`), and read as it is (every entry in memory) by a read-only
/// one.
///
/// Layout 4 (ADR 0006, step 4): incidents that are not open are in `incident_bodies` (with
/// `incident_openings`), and snapshots hold only the incidents in memory (snapshot format 9);
/// a store of layout 3 is upgraded at its first read-write open (its closed incidents written
/// out at its checkpoint), and read as it is by a read-only one.
///
/// Layout 5 (ADR 0006, step 5): the orphans of traces dropped after the retention are in
/// `dropped_orphans`; a store of layout 4 is upgraded at its first read-write open (the table
/// created; what its snapshots hold of them is written out by the first event of their
/// cluster), and read as it is by a read-only one.
///
/// Layout 7 (ADR 0007, steps 3 and 5): a cluster's settings hold `alert_stale_after_secs` (log
/// format 5, snapshot formats 13 to 15, cluster part format 3), and every `change.deployed` of
/// an open incident's clusters is on its timeline, linked only by time when nothing else links
/// it; the incidents of a store of an earlier layout were derived without those, so it is
/// folded again at its first read-write open, and read as it is by a read-only one.
///
/// Layout 8 (issue 20, ADR 0009): large log and change records are stored compressed (log
/// format 8, change records format 2), which a build of an earlier layout cannot read; this
/// build reads both forms, so a store of layout 7 is upgraded at its first read-write open by
/// setting its layout (its records stay as they are), and read as it is by a read-only one.
///
/// Layout 9 (issue 20, ADR 0009): the finding index is in `finding_groups`, one value per
/// finding per run of positions a batch wrote, instead of `by_finding`'s entry per change; a
/// store of layout 8 or earlier is upgraded at its first read-write open (its `by_finding`
/// entries moved, `store/upgrade.rs`), and read as it is by a read-only one.
pub const STORE_FORMAT: i64 = 9;
/// The first store layout whose finding index is in `finding_groups`.
pub const FINDING_GROUPS_SINCE: i64 = 9;
/// The first store layout whose large log and change records may be compressed.
pub const COMPRESSED_RECORDS_SINCE: i64 = 8;
/// The first store layout with the history tables.
pub const HISTORY_TABLES_SINCE: i64 = 2;
/// The first store layout whose live state writes incidents' timeline entries out.
pub const TIMELINE_ROWS_SINCE: i64 = 3;
/// The first store layout whose live state writes incidents that are not open out.
pub const INCIDENT_ROWS_SINCE: i64 = 4;
/// The first store layout whose live state writes the orphans of dropped traces out.
pub const DROPPED_ORPHAN_ROWS_SINCE: i64 = 5;
/// The first store layout folded by rules under which alerts are findings (ADR 0007): what a
/// store of an earlier layout derived from its log (snapshots, history, indexes, incident rows)
/// is written anew at its first read-write open.
pub const ALERT_FINDINGS_SINCE: i64 = 6;
/// The first store layout folded by rules under which every change of an open incident's
/// clusters is on its timeline (ADR 0007, step 5).
pub const CHANGES_DURING_INCIDENTS_SINCE: i64 = 7;
/// The first store layout folded by this build's rules: what a store of an earlier layout
/// derived from its log (snapshots, history, indexes, incident rows) is written anew at its
/// first read-write open, by folding the log again.
pub const CURRENT_RULES_SINCE: i64 = CHANGES_DURING_INCIDENTS_SINCE;

/// Change bits of `BY_FINDING`.
pub mod change_bits {
    /// The event named the finding (a manual resolve, an incident) without changing it.
    pub const MENTIONED: u8 = 1;
    /// An occurrence opened.
    pub const OPENED: u8 = 2;
    /// Resolved by the finding's own source: automatically, by absence, when a cycle did it;
    /// by the alerting system (`resolved_source`) when an alert's notification did it. No
    /// event does both: cycles never resolve alerts, notifications never resolve probes'
    /// findings.
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

    /// Names of the bits set, in a fixed order, for an event that is (`from_alert`) or is not
    /// an alert's notification.
    pub fn names(bits: u8, from_alert: bool) -> Vec<&'static str> {
        use tidemark_core::findings::FindingChange;
        use tidemark_core::findings::ResolutionKind as Kind;
        [
            (OPENED, FindingChange::Opened.as_str()),
            (SEVERITY_CHANGED, FindingChange::SeverityChanged.as_str()),
            (
                RESOLVED_AUTO,
                FindingChange::Resolved(if from_alert { Kind::Source } else { Kind::Auto })
                    .as_str(),
            ),
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
