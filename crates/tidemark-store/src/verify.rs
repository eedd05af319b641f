//! `Store::verify`: every record of a store file checked, read-only, and redb's own integrity
//! check run without writing a byte of the file.
//!
//! What is checked:
//! - every table of the list (`tables::Table`) a store must have is there (when one is missing,
//!   it is named and the records are not walked);
//! - every log, snapshot and quarantine record against its checksum (formats with one) and its
//!   decoding, each failure named by table and key;
//! - the checkpoint against the log (no record after it; an embedded store has one record at
//!   every position up to it) and the layout version;
//! - the index tables, which hold small keys and no checksum, against the log: every log record
//!   has its `ids`, `by_type`, `by_cluster_time` and `by_incident` entries, the `by_finding`
//!   entries a fold of the log gives (with their change bits), and no index holds an entry the
//!   log does not explain (counts compared; the extra entries listed);
//! - the event filters' index tables (`by_cluster`, `by_source`, `cluster_clock`,
//!   `late_events`) against the log, up to `meta`'s `event_indexes_to` (`filter_indexes`); indexes
//!   not yet complete (a store written before them) are a note, not a problem;
//! - every snapshot against the fold of the log at its position, and its `snapshot_times` entry
//!   against the snapshot's latest event time;
//! - redb's `Database::check_integrity()` (every page checksum, the allocator state), run on a
//!   copy-on-write view of the file: redb's repair writes go to memory, never to the file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

mod dropped_orphans;
mod filter_indexes;
mod history_tables;
mod incident_bodies;
mod incident_entries;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::Serialize;
use tidemark_core::findings::SharedHistoryReader;
use tidemark_core::{Event, Projections};

use crate::codec::{self, StoredProjections};
use crate::error::{OpenError, ReadFault, StorageFault};
use crate::store::{
    DbSlot, FindingIndex, Handle, Store, StoreHistory, check_checkpoint, decode_log,
    decode_snapshot_or_outdated, finding_index_entries, incident_of, open_database_read_only,
    read_layout, type_index,
};
use crate::tables::{self, Table};

/// Problems listed by one verify at most; the rest are counted (a store with a million corrupt
/// records has one cause, and the list must fit in memory).
pub const VERIFY_MAX_LISTED: usize = 10_000;

/// One record that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyProblem {
    /// The table (`log`, `snapshots`, `ids`, ... or `redb` for the file's structure).
    pub table: &'static str,
    /// The record's key, as text.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

/// What redb's own check said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum IntegrityCheck {
    /// Every page checksum verified and the allocator state matched.
    Passed,
    /// The check failed but redb could repair it (for example by going back to the previous
    /// commit); the repair was made in memory only, the file is unchanged.
    Repairable(String),
    /// The check failed and redb cannot repair the file.
    Failed(String),
}

/// What `Store::verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// redb's `check_integrity` of the file.
    pub integrity: IntegrityCheck,
    /// Records checked, by table.
    pub checked: BTreeMap<&'static str, u64>,
    /// Problems found (every one, or the first [`VERIFY_MAX_LISTED`]).
    pub problems: Vec<VerifyProblem>,
    /// Problems found in all (more than listed when past the limit).
    pub problem_count: u64,
    /// What is worth knowing about the store but not wrong with it (for example, the event
    /// filter indexes not yet built up to the checkpoint: the next read-write open builds them).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0 && self.integrity == IntegrityCheck::Passed
    }
}

/// Why a verify could not run (a corrupt store is not one of them: that is its report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file could not be opened read-only as a store.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

impl From<redb::TransactionError> for VerifyError {
    fn from(e: redb::TransactionError) -> Self {
        Self::Storage(e.into())
    }
}
impl From<redb::TableError> for VerifyError {
    fn from(e: redb::TableError) -> Self {
        Self::Storage(e.into())
    }
}
impl From<redb::StorageError> for VerifyError {
    fn from(e: redb::StorageError) -> Self {
        Self::Storage(e.into())
    }
}

/// Collects problems, listing at most [`VERIFY_MAX_LISTED`].
#[derive(Default)]
struct Findings {
    problems: Vec<VerifyProblem>,
    count: u64,
}

impl Findings {
    fn add(&mut self, table: &'static str, key: impl ToString, problem: impl ToString) {
        self.count += 1;
        if self.problems.len() < VERIFY_MAX_LISTED {
            self.problems.push(VerifyProblem {
                table,
                key: key.to_string(),
                problem: problem.to_string(),
            });
        }
    }
}

impl Store {
    /// Checks every record of the store at `path` (see the module documentation for what is
    /// checked) and runs redb's integrity check, without writing to the file: it is opened
    /// read-only (a store that needs recovery is refused, [`OpenError::NeedsRecovery`]; a store
    /// a process holds for writing too, [`OpenError::AlreadyOpen`]). `progress(done, total)`
    /// counts records.
    pub fn verify(
        path: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, VerifyError> {
        // Held for the whole check: no process can open the file for writing meanwhile.
        let db = open_database_read_only(path, 64 << 20)?;
        let layout = read_layout(&db, path)?;
        let mut findings = Findings::default();
        if layout > tables::STORE_FORMAT {
            return Err(OpenError::NewerLayout {
                found: layout,
                expected: tables::STORE_FORMAT,
            }
            .into());
        }
        let integrity = integrity_check(path);
        // In a slot, as a store holds it: the fold from a snapshot reads the history tables
        // back through it when a flap window widens.
        let slot = Arc::new(DbSlot::new(Some(Handle::Read(db))));
        let mut checked = BTreeMap::new();
        let mut notes = Vec::new();
        let walk = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_records(
                &slot,
                &mut findings,
                &mut checked,
                &mut notes,
                &mut progress,
            )
        }));
        match walk {
            Ok(result) => result?,
            Err(panic) => findings.add(
                "redb",
                "-",
                format!(
                    "the file's structure cannot be read (redb stopped: {})",
                    panic_message(&panic)
                ),
            ),
        }
        Ok(VerifyReport {
            integrity,
            checked,
            problems: findings.problems,
            problem_count: findings.count,
            notes,
        })
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

/// Every record of every table, checked against its checksum and against the log.
fn check_records(
    slot: &Arc<DbSlot>,
    findings: &mut Findings,
    checked: &mut BTreeMap<&'static str, u64>,
    notes: &mut Vec<String>,
    progress: &mut impl FnMut(u64, u64),
) -> Result<(), VerifyError> {
    let history = StoreHistory::over(slot);
    let db = slot.read();
    let Some(Handle::Read(db)) = &*db else {
        unreachable!("verify puts the read-only handle in the slot")
    };
    let txn = db.begin_read()?;
    // The tables of the list the file lacks: named, and nothing more can be checked.
    let missing = tables::missing_tables(&txn)?;
    for table in &missing {
        findings.add(
            table.name(),
            "-",
            "missing: every store has this table; restore a backup (docs/runbooks/corrupt-store.md)",
        );
    }
    if !missing.is_empty() {
        return Ok(());
    }
    let meta = txn.open_table(tables::META)?;
    let checkpoint = meta.get(tables::CHECKPOINT)?.map_or(0, |v| v.value()) as u64;
    let from_stream =
        meta.get(tables::LOG_SOURCE)?.map(|v| v.value()) == Some(tables::LOG_FROM_STREAM);
    let log_start = meta.get(tables::LOG_START)?.map_or(1, |v| v.value()) as u64;
    let log = txn.open_table(tables::LOG)?;
    let snapshots = txn.open_table(tables::SNAPSHOTS)?;
    let parts = tables::open_listed(&txn, Table::ClusterSnapshots, tables::CLUSTER_SNAPSHOTS)?;
    let parts = parts.as_ref();
    let quarantine = txn.open_table(tables::QUARANTINE)?;
    let total = log.len()? + snapshots.len()? + quarantine.len()?;
    let mut done = 0u64;
    let mut tick = |done: &mut u64| {
        *done += 1;
        if (*done).is_multiple_of(4096) {
            progress(*done, total);
        }
    };
    if let Err(fault) = check_checkpoint(&log, checkpoint, from_stream || log_start > 1) {
        match fault {
            crate::error::ReadFault::Corrupt(c) => findings.add(c.table, c.key, c.problem),
            crate::error::ReadFault::Storage(s) => return Err(s.into()),
        }
    }

    // Where the fold starts: position 0, or (retention cut the log) the earliest snapshot it can
    // start from. Index entries at or before it cannot be derived and are not compared.
    let (fold_start, mut fold) = fold_start(&snapshots, parts, &history, log_start, findings)?;
    // A store written by older rules (before alerts were findings, or before changes during
    // incidents were on their timelines) derived its indexes, snapshots and rows by them: they
    // are decoded and checked against their checksums, not compared with today's fold (its
    // first read-write open writes them anew).
    let layout = meta.get(tables::FORMAT)?.map_or(0, |v| v.value());
    let rules_current = layout >= tables::CURRENT_RULES_SINCE;
    if !rules_current {
        notes.push(format!(
            "the store is of layout {layout}, written by older rules ({}): what it derived \
             from its log (indexes, snapshots, history and incident rows) follows them, so it is \
             checked record by record but not compared with this build's fold; the next \
             read-write open (`tidemark serve`, `ingest`, `rebuild`, `compact` or `repair`) \
             upgrades it to layout {} by folding the log again",
            crate::store::rules_changed_since(layout),
            tables::STORE_FORMAT
        ));
    }
    let mut fold_ok = rules_current;
    let mut snapshot_keys: Vec<u64> = snapshots
        .range(fold_start.saturating_add(1)..)?
        .map(|e| e.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    snapshot_keys.reverse();
    let times = txn.open_table(tables::SNAPSHOT_TIMES)?;
    // A snapshot of layout 3 holds closed incidents' timelines in `incident_entries`: it is
    // compared with them read back (a row that does not decode reads as absent there; the
    // check of the rows lists it).
    let timeline_rows: Arc<dyn SharedHistoryReader> = Arc::new(history.clone());
    let ids = txn.open_table(tables::IDS)?;
    let by_type = txn.open_table(tables::BY_TYPE)?;
    let by_cluster_time = txn.open_table(tables::BY_CLUSTER_TIME)?;
    let by_incident = txn.open_table(tables::BY_INCIDENT)?;
    let finding_index = FindingIndex::open(&txn)?;
    let finding_table = finding_index.table_name();
    // The finding groups that do not decode, each listed once.
    let mut corrupt_groups = std::collections::BTreeSet::new();
    let mut filter_indexes = filter_indexes::FilterIndexCheck::open(
        &txn, &meta, checkpoint, log_start, findings, notes,
    )?;
    // The change records are compared up to where `changes_to` says they are complete (an
    // older build appends without them; the next read-write open writes them).
    let changes_to = meta
        .get(tables::CHANGES_TO)?
        .map_or(0, |v| v.value().max(0) as u64);
    let change_records = tables::open_listed(&txn, Table::Changes, tables::CHANGES)?;
    let mut said = Vec::new();
    let mut expected = BTreeMap::<&'static str, u64>::new();
    let mut max_time = None;
    let mut incidents_known = true;
    for entry in log.iter()? {
        let (key, value) = entry?;
        let seq = key.value();
        tick(&mut done);
        *checked.entry("log").or_default() += 1;
        // Snapshots of positions before this record: compare them with the fold so far.
        while snapshot_keys.last().is_some_and(|&s| s < seq) {
            let s = snapshot_keys.pop().expect("just looked");
            check_snapshot(
                &snapshots,
                parts,
                &times,
                s,
                (fold_ok.then_some(&fold), &timeline_rows),
                findings,
            )?;
        }
        let stored = match decode_log(seq, value.value()) {
            Ok(stored) => stored,
            Err(corrupt) => {
                findings.add("log", seq, corrupt.problem);
                filter_indexes.corrupt(seq);
                fold_ok = false;
                // Its type and time entries are expected all the same; whether it names an
                // incident is unknown, so that index's count is not compared.
                *expected.entry("by_type").or_default() += 1;
                *expected.entry("by_cluster_time").or_default() += 1;
                incidents_known = false;
                continue;
            }
        };
        let event = &stored.event;
        max_time =
            Some(max_time.map_or(event.time, |t: tidemark_core::Timestamp| t.max(event.time)));
        filter_indexes.event(seq, event, findings)?;
        check_log_indexes(
            seq,
            event,
            &ids,
            &by_type,
            &by_cluster_time,
            &by_incident,
            findings,
        )?;
        for (table, n) in [
            ("by_type", 1),
            ("by_cluster_time", 1),
            ("by_incident", u64::from(incident_of(event).is_some())),
        ] {
            *expected.entry(table).or_default() += n;
        }
        if fold_ok && seq > fold_start {
            said.clear();
            let changes = fold.apply_with_changes(seq, event, &mut said);
            if seq <= changes_to
                && let Some(records) = &change_records
            {
                *checked.entry("changes").or_default() += 1;
                check_change_record(records, seq, &said, findings)?;
            }
            for (check_key, want) in finding_index_entries(event, changes) {
                *expected.entry("finding index").or_default() += 1;
                let found = match finding_index.get(&event.cluster, check_key, seq) {
                    Ok(found) => found,
                    Err(ReadFault::Corrupt(record)) => {
                        if corrupt_groups.insert(record.key.clone()) {
                            findings.add(finding_table, record.key, record.problem);
                        }
                        continue;
                    }
                    Err(ReadFault::Storage(fault)) => return Err(fault.into()),
                };
                match found {
                    Some(b) if b == want => {}
                    Some(b) => findings.add(
                        finding_table,
                        format!("({}, {check_key}, {seq})", event.cluster),
                        format!("change bits {b:#04x}, the fold of the log gives {want:#04x}"),
                    ),
                    None => findings.add(
                        finding_table,
                        format!("({}, {check_key}, {seq})", event.cluster),
                        "missing: the event changed or named this finding",
                    ),
                }
            }
        }
    }
    while let Some(s) = snapshot_keys.pop() {
        check_snapshot(
            &snapshots,
            parts,
            &times,
            s,
            (fold_ok.then_some(&fold), &timeline_rows),
            findings,
        )?;
    }
    // A store of layout 1 keeps the history in its snapshots (checked with them). After a
    // retention cut the rows before it are not derivable from the retained log: decoded only.
    if meta.get(tables::FORMAT)?.map_or(0, |v| v.value()) >= tables::HISTORY_TABLES_SINCE {
        let comparable = (fold_ok && log_start <= 1).then_some(&fold);
        history_tables::check(&txn, comparable, findings, checked)?;
    }
    // Layout 3: closed incidents' timelines in `incident_entries`.
    if meta.get(tables::FORMAT)?.map_or(0, |v| v.value()) >= tables::TIMELINE_ROWS_SINCE {
        let comparable = (fold_ok && log_start <= 1).then_some(&fold);
        incident_entries::check(&txn, comparable, findings, checked)?;
    }
    // Layout 4: closed incidents in `incident_bodies` (and their openings).
    if meta.get(tables::FORMAT)?.map_or(0, |v| v.value()) >= tables::INCIDENT_ROWS_SINCE {
        let comparable = (fold_ok && log_start <= 1).then_some(&fold);
        incident_bodies::check(&txn, comparable, findings, checked)?;
    }
    // Layout 5: the orphans of dropped traces in `dropped_orphans`.
    if meta.get(tables::FORMAT)?.map_or(0, |v| v.value()) >= tables::DROPPED_ORPHAN_ROWS_SINCE {
        let comparable = (fold_ok && log_start <= 1).then_some(&fold);
        dropped_orphans::check(&txn, comparable, findings, checked)?;
    }
    if log_start == 1 && fold_ok {
        let stored = meta.get(tables::MAX_TIME)?.map(|v| v.value());
        if stored != max_time.map(|t| t.unix_nanos()) {
            findings.add(
                "meta",
                tables::MAX_TIME,
                format!(
                    "{stored:?}, but the latest event time in the log is {:?}",
                    max_time.map(|t| t.unix_nanos())
                ),
            );
        }
    }
    // Entries the log does not explain: counted per index, listed when the counts differ.
    let in_range = |seq: u64| seq >= log_start;
    let count_in_range = |seqs: &mut dyn Iterator<Item = Result<u64, redb::StorageError>>| {
        let mut n = 0u64;
        for seq in seqs {
            if in_range(seq?) {
                n += 1;
            }
        }
        Ok::<u64, redb::StorageError>(n)
    };
    let log_has = |seq: u64| -> Result<bool, redb::StorageError> { Ok(log.get(seq)?.is_some()) };
    // by_type, by_cluster_time, by_incident: one entry per log record (or per incident event).
    let tables_found = [
        (
            "by_type",
            count_in_range(&mut by_type.iter()?.map(|e| e.map(|(k, _)| k.value().1)))?,
        ),
        (
            "by_cluster_time",
            count_in_range(&mut by_cluster_time.iter()?.map(|e| e.map(|(k, _)| k.value().2)))?,
        ),
        (
            "by_incident",
            count_in_range(&mut by_incident.iter()?.map(|e| e.map(|(k, _)| k.value().1)))?,
        ),
    ];
    for (table, found) in tables_found {
        *checked.entry(table).or_default() += found;
        let want = expected.get(table).copied().unwrap_or(0);
        if found != want && (incidents_known || table != "by_incident") {
            list_extra_entries(table, &txn, &log_has, log_start, findings, found, want)?;
        }
    }
    if fold_ok {
        let mut found = 0u64;
        let mut corrupt = Vec::new();
        finding_index.for_each(
            |_, _, seq, _| {
                if seq > fold_start && in_range(seq) {
                    found += 1;
                }
                Ok(())
            },
            |record| corrupt.push(record),
        )?;
        for record in corrupt {
            if corrupt_groups.insert(record.key.clone()) {
                findings.add(finding_table, record.key, record.problem);
            }
        }
        *checked.entry(finding_table).or_default() += found;
        let want = expected.get("finding index").copied().unwrap_or(0);
        if found != want {
            findings.add(
                finding_table,
                "*",
                format!(
                    "{found} entries after position {fold_start}, the fold of the log gives {want}"
                ),
            );
        }
    }
    // ids: every log record's id (checked above); entries for positions the log holds must be
    // one per record (retention keeps the ids of dropped events: those are not compared).
    let mut ids_in_range = 0u64;
    for entry in ids.iter()? {
        let (id, seq) = entry?;
        *checked.entry("ids").or_default() += 1;
        let seq = seq.value();
        if seq > checkpoint {
            findings.add(
                "ids",
                id.value(),
                format!("position {seq} is after the checkpoint"),
            );
        } else if in_range(seq) {
            ids_in_range += 1;
            if !log_has(seq)? {
                findings.add("ids", id.value(), format!("position {seq} holds no event"));
            }
        }
    }
    filter_indexes.finish(&log, checked, findings)?;
    let records = log.len()?;
    if ids_in_range > records {
        findings.add(
            "ids",
            "*",
            format!("{ids_in_range} ids point into the log, which holds {records} events"),
        );
    }
    for entry in quarantine.iter()? {
        let (key, value) = entry?;
        tick(&mut done);
        *checked.entry("quarantine").or_default() += 1;
        if let Err(problem) = codec::decode_quarantine(key.value(), value.value()) {
            findings.add("quarantine", key.value(), problem);
        }
    }
    for entry in times.iter()? {
        let (key, _) = entry?;
        if snapshots.get(key.value())?.is_none() {
            findings.add("snapshot_times", key.value(), "an entry without a snapshot");
        }
    }
    *checked.entry("snapshots").or_default() += snapshots.len()?;
    if let Some(parts) = parts {
        // Each part of a per-cluster snapshot is named by a snapshot (one that is not is left
        // over: `rebuild` writes the snapshots anew); the parts were read with the snapshots
        // that name them. Unknown when a snapshot does not read (listed above).
        let mut named = Some(std::collections::BTreeSet::new());
        for entry in snapshots.iter()? {
            let (key, value) = entry?;
            match codec::cluster_parts::decode_manifest_clusters(key.value(), value.value()) {
                Ok(names) => {
                    if let Some(named) = &mut named {
                        named.extend(names.unwrap_or_default());
                    }
                }
                Err(_) => named = None,
            }
        }
        for entry in parts.iter()? {
            let (key, _) = entry?;
            *checked.entry("cluster_snapshots").or_default() += 1;
            let (cluster, at) = key.value();
            if named
                .as_ref()
                .is_some_and(|named| !named.contains(&(cluster.to_owned(), at)))
            {
                findings.add(
                    "cluster_snapshots",
                    format!("({cluster:?}, {at})"),
                    "a part no snapshot names",
                );
            }
        }
    }
    done += snapshots.len()?;
    progress(done.min(total), total);
    Ok(())
}

/// The projections of a snapshot the check folds on from (the check compares live states and
/// the history the fold writes): a live snapshot's history is read from the file's tables
/// (where a widened flap window reads it back), and what the fold writes from here is not kept
/// (it would grow with the log).
fn restore_for_check(snapshot: StoredProjections, history: &StoreHistory) -> Projections {
    match snapshot {
        StoredProjections::WithHistory(snapshot) => Projections::restore_owned(snapshot),
        StoredProjections::Live(snapshot) => {
            Projections::restore_live_owned(snapshot, Arc::new(history.clone()), Some(u64::MAX))
        }
    }
}

/// The state the fold starts from: nothing at position 0, or, when retention cut the log, the
/// earliest snapshot from which the retained log can be folded.
fn fold_start(
    snapshots: &impl ReadableTable<u64, &'static [u8]>,
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    history: &StoreHistory,
    log_start: u64,
    findings: &mut Findings,
) -> Result<(u64, Projections), VerifyError> {
    if log_start <= 1 {
        return Ok((0, Projections::new()));
    }
    for entry in snapshots.range(log_start.saturating_sub(1)..)? {
        let (key, value) = entry?;
        match decode_snapshot_or_outdated(parts, key.value(), value.value()) {
            Ok(Some(record)) => {
                return Ok((record.seq, restore_for_check(record.projections, history)));
            }
            // An older format: the store resumes from it when its layout is today's (the log
            // before it is gone), and so does the check.
            Ok(None) => {
                match crate::codec::decode_snapshot_of_any_format(key.value(), value.value()) {
                    Ok(record) => {
                        return Ok((record.seq, restore_for_check(record.projections, history)));
                    }
                    Err(e) => findings.add("snapshots", key.value(), e.to_string()),
                }
            }
            Err(ReadFault::Corrupt(corrupt)) => {
                findings.add(corrupt.table, corrupt.key, corrupt.problem)
            }
            Err(ReadFault::Storage(fault)) => return Err(fault.into()),
        }
    }
    findings.add(
        "snapshots",
        "*",
        format!(
            "no readable snapshot to fold the retained log from (it starts at position {log_start}): \
             the state cannot be restored from this file"
        ),
    );
    Ok((u64::MAX, Projections::new()))
}

/// A snapshot: it reads back, its `snapshot_times` entry is its latest event time, and (when the
/// fold reached it cleanly) it holds the state the fold of the log gives at its position.
fn check_snapshot(
    snapshots: &impl ReadableTable<u64, &'static [u8]>,
    parts: Option<&impl ReadableTable<(&'static str, u64), &'static [u8]>>,
    times: &impl ReadableTable<u64, i64>,
    seq: u64,
    (fold, timeline_rows): (Option<&Projections>, &Arc<dyn SharedHistoryReader>),
    findings: &mut Findings,
) -> Result<(), VerifyError> {
    let Some(bytes) = snapshots.get(seq)? else {
        return Ok(());
    };
    let record = match decode_snapshot_or_outdated(parts, seq, bytes.value()) {
        Ok(Some(record)) => record,
        // An older format, never read: the store folds the log instead.
        Ok(None) => return Ok(()),
        Err(ReadFault::Corrupt(corrupt)) => {
            findings.add(corrupt.table, corrupt.key, corrupt.problem);
            return Ok(());
        }
        Err(ReadFault::Storage(fault)) => return Err(fault.into()),
    };
    let time = times.get(seq)?.map(|v| v.value());
    let want = record.max_time.map_or(i64::MIN, |t| t.unix_nanos());
    if time != Some(want) {
        findings.add(
            "snapshot_times",
            seq,
            format!("{time:?}, but its snapshot's latest event time is {want}"),
        );
    }
    // A live snapshot (layout 2) holds no history to compare: its live state is compared,
    // whole (what was written out by then read back as of its position: incidents' entries,
    // layout 3; incidents, layout 4; dropped traces' orphans, layout 5).
    let differs = |fold: &Projections| match record.projections {
        StoredProjections::WithHistory(snapshot) => {
            Projections::restore_owned(snapshot).snapshot() != fold.snapshot()
        }
        StoredProjections::Live(snapshot) => {
            let restored =
                Projections::restore_live_owned(snapshot, timeline_rows.clone(), Some(seq));
            restored.whole_live_snapshot() != fold.whole_live_snapshot()
        }
    };
    if let Some(fold) = fold
        && differs(fold)
    {
        findings.add(
            "snapshots",
            seq,
            "its state differs from the fold of the log at its position",
        );
    }
    Ok(())
}

/// The change record of position `seq` against what the fold said there (`said`; no record
/// when it said nothing).
fn check_change_record(
    records: &redb::ReadOnlyTable<u64, &'static [u8]>,
    seq: u64,
    said: &[tidemark_core::changes::Change],
    findings: &mut Findings,
) -> Result<(), StorageFault> {
    let stored = records.get(seq)?;
    match (stored, said.is_empty()) {
        (None, true) => {}
        (None, false) => findings.add(
            "changes",
            seq,
            format!(
                "missing: the fold of the log says {} change(s) there",
                said.len()
            ),
        ),
        (Some(bytes), _) => match crate::codec::decode_changes(seq, bytes.value()) {
            Ok(read) if read == said => {}
            Ok(read) => findings.add(
                "changes",
                seq,
                format!(
                    "{} change(s) recorded, but the fold of the log says {:?}",
                    read.len(),
                    said.iter()
                        .map(|c| format!("{} {}: {}", c.what, c.subject, c.change))
                        .collect::<Vec<_>>()
                ),
            ),
            Err(problem) => findings.add("changes", seq, problem),
        },
    }
    Ok(())
}

/// The `ids`, `by_type`, `by_cluster_time` and `by_incident` entries of one log record.
#[allow(clippy::too_many_arguments)]
fn check_log_indexes(
    seq: u64,
    event: &Event,
    ids: &impl ReadableTable<&'static str, u64>,
    by_type: &impl ReadableTable<(&'static str, u64), ()>,
    by_cluster_time: &impl ReadableTable<(&'static str, i64, u64), u8>,
    by_incident: &impl ReadableTable<(&'static str, u64), ()>,
    findings: &mut Findings,
) -> Result<(), VerifyError> {
    match ids.get(event.id.as_str())?.map(|v| v.value()) {
        Some(found) if found == seq => {}
        Some(found) => findings.add(
            "ids",
            event.id.as_str(),
            format!("points at position {found}, the event is at {seq}"),
        ),
        None => findings.add(
            "ids",
            event.id.as_str(),
            format!("missing: the event at position {seq} has this id"),
        ),
    }
    let event_type = event.event_type();
    if by_type.get((event_type.as_str(), seq))?.is_none() {
        findings.add("by_type", format!("({event_type}, {seq})"), "missing");
    }
    let key = (event.cluster.as_str(), event.time.unix_nanos(), seq);
    match by_cluster_time.get(key)?.map(|v| v.value()) {
        Some(t) if t == type_index(event_type) => {}
        Some(t) => findings.add(
            "by_cluster_time",
            format!("({}, {}, {seq})", event.cluster, event.time),
            format!("type index {t}, the event is a {event_type}"),
        ),
        None => findings.add(
            "by_cluster_time",
            format!("({}, {}, {seq})", event.cluster, event.time),
            "missing",
        ),
    }
    if let Some(incident) = incident_of(event)
        && by_incident.get((incident, seq))?.is_none()
    {
        findings.add("by_incident", format!("({incident}, {seq})"), "missing");
    }
    Ok(())
}

/// Lists the entries of an index the log does not explain (called when its count differs).
fn list_extra_entries(
    table: &'static str,
    txn: &redb::ReadTransaction,
    log_has: &dyn Fn(u64) -> Result<bool, redb::StorageError>,
    log_start: u64,
    findings: &mut Findings,
    found: u64,
    want: u64,
) -> Result<(), VerifyError> {
    let before = findings.count;
    let mut check = |key: String, seq: u64| -> Result<(), VerifyError> {
        if seq >= log_start && !log_has(seq)? {
            findings.add(table, key, format!("position {seq} holds no event"));
        }
        Ok(())
    };
    match table {
        "by_type" => {
            for entry in txn.open_table(tables::BY_TYPE)?.iter()? {
                let (k, _) = entry?;
                let (t, seq) = k.value();
                check(format!("({t}, {seq})"), seq)?;
            }
        }
        "by_cluster_time" => {
            for entry in txn.open_table(tables::BY_CLUSTER_TIME)?.iter()? {
                let (k, _) = entry?;
                let (c, t, seq) = k.value();
                check(format!("({c}, {t}, {seq})"), seq)?;
            }
        }
        _ => {
            for entry in txn.open_table(tables::BY_INCIDENT)?.iter()? {
                let (k, _) = entry?;
                let (i, seq) = k.value();
                check(format!("({i}, {seq})"), seq)?;
            }
        }
    }
    if findings.count == before {
        // Entries at positions the log holds, but not matching its events (a changed key).
        findings.add(
            table,
            "*",
            format!("{found} entries, the log explains {want}"),
        );
    }
    Ok(())
}

/// redb's `check_integrity` on a copy-on-write view of the file: pages are read from the file,
/// and whatever redb writes (its repair, the allocator state) stays in memory. The caller holds
/// the file open read-only, which keeps writers out meanwhile.
fn integrity_check(path: &Path) -> IntegrityCheck {
    let backend = match CopyOnWrite::open(path) {
        Ok(backend) => backend,
        Err(e) => return IntegrityCheck::Failed(format!("cannot read the file: {e}")),
    };
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut db = redb::Builder::new()
            .set_cache_size(64 << 20)
            .create_with_backend(backend)?;
        db.check_integrity()
    }));
    match checked {
        Ok(Ok(true)) => IntegrityCheck::Passed,
        Ok(Ok(false)) => IntegrityCheck::Repairable(
            "redb's check failed, and it could repair the file (going back to its last intact \
             commit); this check changed nothing"
                .into(),
        ),
        Ok(Err(e)) => IntegrityCheck::Failed(e.to_string()),
        Err(panic) => IntegrityCheck::Failed(format!(
            "redb cannot read the file's structure: {}",
            panic_message(&panic)
        )),
    }
}

/// Bytes per block of the copy-on-write overlay.
const BLOCK: u64 = 4096;

/// A redb storage backend over a file opened read-only: reads come from the file, writes go to
/// blocks kept in memory. It takes no locks (redb then locks nothing, which its
/// `ExclusiveWriter` mode allows): the caller's read-only handle excludes writers.
#[derive(Debug)]
struct CopyOnWrite {
    file: std::fs::File,
    overlay: Mutex<Overlay>,
}

#[derive(Debug)]
struct Overlay {
    len: u64,
    /// Bytes of the file still visible under the overlay (shrinking hides the rest for good).
    file_visible: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
}

impl CopyOnWrite {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            overlay: Mutex::new(Overlay {
                len,
                file_visible: len,
                blocks: BTreeMap::new(),
            }),
        })
    }

    /// The bytes of block `index` as the file and earlier writes left them.
    fn load_block(&self, overlay: &Overlay, index: u64) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        if let Some(block) = overlay.blocks.get(&index) {
            return Ok(block.clone());
        }
        let mut block = vec![0; BLOCK as usize];
        let start = index * BLOCK;
        let from_file = overlay.file_visible.saturating_sub(start).min(BLOCK) as usize;
        if from_file > 0 {
            self.file.read_exact_at(&mut block[..from_file], start)?;
        }
        Ok(block)
    }
}

impl redb::StorageBackend for CopyOnWrite {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.overlay.lock().unwrap_or_else(|p| p.into_inner()).len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let overlay = self.overlay.lock().unwrap_or_else(|p| p.into_inner());
        if offset + out.len() as u64 > overlay.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the database",
            ));
        }
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            let index = at / BLOCK;
            let within = (at % BLOCK) as usize;
            let n = (BLOCK as usize - within).min(out.len() - done);
            if let Some(block) = overlay.blocks.get(&index) {
                out[done..done + n].copy_from_slice(&block[within..within + n]);
            } else {
                use std::os::unix::fs::FileExt as _;
                let from_file = overlay.file_visible.saturating_sub(at).min(n as u64) as usize;
                if from_file > 0 {
                    self.file
                        .read_exact_at(&mut out[done..done + from_file], at)?;
                }
                out[done + from_file..done + n].fill(0);
            }
            done += n;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut overlay = self.overlay.lock().unwrap_or_else(|p| p.into_inner());
        if len < overlay.len {
            let first_gone = len.div_ceil(BLOCK);
            overlay.blocks.split_off(&first_gone);
            if !len.is_multiple_of(BLOCK) {
                let index = len / BLOCK;
                let mut block = self.load_block(&overlay, index)?;
                block[(len % BLOCK) as usize..].fill(0);
                overlay.blocks.insert(index, block);
            }
            overlay.file_visible = overlay.file_visible.min(len);
        }
        overlay.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut overlay = self.overlay.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let index = at / BLOCK;
            let within = (at % BLOCK) as usize;
            let n = (BLOCK as usize - within).min(data.len() - done);
            let mut block = self.load_block(&overlay, index)?;
            block[within..within + n].copy_from_slice(&data[done..done + n]);
            overlay.blocks.insert(index, block);
            done += n;
        }
        overlay.len = overlay.len.max(offset + data.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::StorageBackend as _;

    /// The overlay reads what the file holds, then what was written over it; shrinking and
    /// growing again shows zeros; the file itself is never changed.
    #[test]
    fn the_copy_on_write_view_never_writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let original: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &original).unwrap();
        let view = CopyOnWrite::open(&path).unwrap();
        let mut out = vec![0; 10_000];
        view.read(0, &mut out).unwrap();
        assert_eq!(out, original);
        view.write(4090, &[7; 20]).unwrap();
        view.read(4080, &mut out[..40]).unwrap();
        assert_eq!(&out[..10], &original[4080..4090]);
        assert_eq!(&out[10..30], &[7; 20]);
        assert_eq!(&out[30..40], &original[4110..4120]);
        view.set_len(5000).unwrap();
        view.set_len(12_000).unwrap();
        let mut tail = vec![1; 7000];
        view.read(5000, &mut tail).unwrap();
        assert!(tail.iter().all(|&b| b == 0));
        assert!(view.read(11_999, &mut [0; 2]).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), original);
    }
}
