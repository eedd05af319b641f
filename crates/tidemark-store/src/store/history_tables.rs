//! A finding's history in its tables (ADR 0006): written in a batch's transaction, read as of
//! a log position, in pages.
//!
//! - [`HistoryTables`] writes the records the fold wrote out (`HistoryRecord`) into
//!   `finding_occurrences` and `finding_flap_episodes`, in the write transaction of the batch
//!   that produced them ("all of a batch or none" holds for history too).
//! - [`HistoryTableReader`] reads them in one read transaction, with the semantics of the
//!   core's `MemoryHistory` (the specification): each page is one range of one table, each
//!   count a few lookups. A table the file lacks (a store of layout 1 opened read-only) reads
//!   as empty.
//! - [`StoreHistory`] is the core's infallible `HistoryReader` over the store: one read
//!   transaction per call. A fault (a corrupt record, the engine) never becomes a wrong answer:
//!   the call answers empty (or 0), logs the fault and records it for the thread
//!   ([`take_history_fault`]), which the store's read path checks after the read and turns into
//!   its error.
//!
//! # Why the counts are exact
//!
//! Occurrences: a finding has one current occurrence at a time, so its occurrences close in the
//! order they open, and occurrence `i` is the `i`-th to open. The rows are the closed ones,
//! keyed by opening position, so numbered 1, 2, … in key order with no gap (only the newest
//! occurrence may be open, and it has no row yet). Those closed at `as_of` are a prefix `1..=j`
//! of them, all opened at or before `as_of`: walking back from the last row opened at or
//! before `as_of`, the first row closed at or before `as_of` is `j`, and its number is the
//! count. The rows walked past are those open at `as_of`: at most one.
//!
//! Flap episodes: each detector has at most one episode open at any position, so a detector's
//! episodes follow one another (each stops at or before its next one starts). Of the rows
//! started at or before `as_of` (the set `R`), only each detector's latest can have stopped
//! after `as_of`; the count is `|R|` minus those. Walking back from the last row of `R` reads
//! each detector's latest first. `|R|` is not the last row's number: an episode that is open
//! now has no row, so its number is a gap. But a detector's open episode is its last one, so
//! its number is above all of its rows: once the walk has met a row of every detector, at the
//! row numbered `n` after `w` rows, no gap is below `n`, and `|R| = w + n - 1`. When `R` runs
//! out first, `|R|` is the rows walked. The walk reads the rows started since the latest row,
//! at or before `as_of`, of the detector that flapped least recently; for a finding that
//! flapped by one detector only, every row of `R` (the live finding knows which detectors ever
//! flapped; this reader does not, see `docs/adr/0006-history-in-tables.md`).

use std::cell::RefCell;
use std::ops::Bound;
use std::sync::{Arc, Weak};

use redb::{ReadOnlyTable, WriteTransaction};
use tidemark_core::findings::{Direction, HistoryRange, HistoryReader, HistoryRecord, Occurrence};
use tidemark_core::flaps::{FlapDetector, FlapEpisode};

use tidemark_core::incident_bodies::{BodyRow, IncidentBodyReader};
use tidemark_core::incidents::IncidentEntry;
use tidemark_core::orphans::{DroppedOrphanReader, OrphanOrder, OrphanView};
use tidemark_core::timeline_rows::IncidentEntryReader;

use super::dropped_orphans::{DroppedOrphanTable, visit_dropped_orphans};
use super::incident_bodies::{BodyReads, BodyTables, ReadBodyTables};
use super::incident_rows::{EntryKey, EntryReads, EntryTable};
use super::{DbSlot, Store};
use crate::codec::{self, CodecError};
use crate::error::{CorruptRecord, ReadFault, StorageFault};
use crate::tables::open_listed;
use crate::tables::{self, Table};

/// The key of `finding_occurrences`: (cluster, check key, opened position).
type OccurrenceKey = (&'static str, &'static str, u64);
/// The key of `finding_flap_episodes`: (cluster, check key, started position, number).
type EpisodeKey = (&'static str, &'static str, u64, u64);

/// How many flap detectors there are: a count walk stops once it has met a row of each.
const DETECTORS: usize = 2;

/// The index of `detector` among the [`DETECTORS`] (the `match` is exhaustive: a detector added
/// to the core must be placed here).
fn detector_index(detector: FlapDetector) -> usize {
    match detector {
        FlapDetector::Count => 0,
        FlapDetector::StateChange => 1,
    }
}

/// The history tables, open in a batch's write transaction.
pub(crate) struct HistoryTables<'txn> {
    occurrences: redb::Table<'txn, OccurrenceKey, &'static [u8]>,
    flap_episodes: redb::Table<'txn, EpisodeKey, &'static [u8]>,
    /// The encoding buffer, reused across records.
    buffer: Vec<u8>,
}

impl std::fmt::Debug for HistoryTables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryTables").finish_non_exhaustive()
    }
}

/// The order [`HistoryTables::write`] writes records in: the table (occurrences first), then
/// the table's key.
fn history_key(record: &HistoryRecord) -> (u8, &str, &str, u64, u64) {
    match record {
        HistoryRecord::OccurrenceClosed {
            cluster,
            check_key,
            occurrence,
            ..
        } => (0, cluster, check_key, occurrence.opened_seq, 0),
        HistoryRecord::FlapEpisodeEnded {
            cluster,
            check_key,
            number,
            episode,
        } => (1, cluster, check_key, episode.started_seq, *number),
    }
}

impl<'txn> HistoryTables<'txn> {
    /// Opens both tables in `txn` (creating them in a file that lacks them).
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StorageFault> {
        Ok(Self {
            occurrences: txn.open_table(tables::FINDING_OCCURRENCES)?,
            flap_episodes: txn.open_table(tables::FINDING_FLAP_EPISODES)?,
            buffer: Vec::new(),
        })
    }

    /// Writes each record under its key: an occurrence under (cluster, check key, opened
    /// position), an episode under (cluster, check key, started position, number). A record
    /// is written once, when it is final; writing an equal record again (a rebuild folding
    /// from a cut over the rows it kept) changes nothing.
    ///
    /// Written in key order (the records of a batch come in the order their findings closed,
    /// at places all over the tables; sorted, the inserts walk each table once, issue 20); a
    /// stable sort, so records under one key are written in the order they came.
    pub(crate) fn write(&mut self, records: &[HistoryRecord]) -> Result<(), StorageFault> {
        let mut ordered: Vec<&HistoryRecord> = records.iter().collect();
        ordered.sort_by(|a, b| history_key(a).cmp(&history_key(b)));
        for record in ordered {
            match record {
                HistoryRecord::OccurrenceClosed {
                    cluster,
                    check_key,
                    number,
                    occurrence,
                } => {
                    codec::encode_occurrence(
                        cluster,
                        check_key,
                        *number,
                        occurrence,
                        &mut self.buffer,
                    );
                    self.occurrences.insert(
                        (cluster.as_str(), &**check_key, occurrence.opened_seq),
                        self.buffer.as_slice(),
                    )?;
                }
                HistoryRecord::FlapEpisodeEnded {
                    cluster,
                    check_key,
                    number,
                    episode,
                } => {
                    codec::encode_flap_episode(
                        cluster,
                        check_key,
                        *number,
                        episode,
                        &mut self.buffer,
                    );
                    self.flap_episodes.insert(
                        (cluster.as_str(), &**check_key, episode.started_seq, *number),
                        self.buffer.as_slice(),
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The history tables of one read transaction. It owns the tables it opened (redb's read-only
/// tables keep their transaction's snapshot alive), so it reads that one commit for as long as
/// it lives, whatever commits meanwhile; `None` is a table the file lacks (read as empty).
pub(crate) struct HistoryTableReader {
    occurrences: Option<ReadOnlyTable<OccurrenceKey, &'static [u8]>>,
    flap_episodes: Option<ReadOnlyTable<EpisodeKey, &'static [u8]>>,
    /// Incidents' written-out timeline entries (`incident_rows.rs`).
    incident_entries: Option<EntryTable<ReadOnlyTable<EntryKey, &'static [u8]>>>,
    /// Written-out incidents (`incident_bodies.rs`).
    incident_bodies: Option<ReadBodyTables>,
    /// The orphans of dropped traces (`dropped_orphans.rs`).
    dropped_orphans: Option<DroppedOrphanTable>,
}

impl std::fmt::Debug for HistoryTableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryTableReader")
            .field("occurrences", &self.occurrences.is_some())
            .field("flap_episodes", &self.flap_episodes.is_some())
            .field("incident_entries", &self.incident_entries.is_some())
            .field("incident_bodies", &self.incident_bodies.is_some())
            .field("dropped_orphans", &self.dropped_orphans.is_some())
            .finish()
    }
}

/// The opening positions of `range`, as an inclusive span (`None`: none): its bounds, and no
/// later than `as_of`.
fn opened_span(range: &HistoryRange) -> Option<(u64, u64)> {
    let from = match range.opened.0 {
        Bound::Included(from) => from,
        Bound::Excluded(after) => after.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let to = match range.opened.1 {
        Bound::Included(to) => to,
        Bound::Excluded(before) => before.checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    }
    .min(range.as_of);
    (from <= to).then_some((from, to))
}

/// A record of `table` under `key` that does not decode.
fn corrupt(table: Table, key: String, problem: CodecError) -> ReadFault {
    ReadFault::Corrupt(CorruptRecord {
        table: table.name(),
        key,
        problem,
    })
}

/// `finding_occurrences`' key, as text.
fn occurrence_key_text(cluster: &str, check_key: &str, opened_seq: u64) -> String {
    format!("({cluster:?}, {check_key:?}, {opened_seq})")
}

/// `finding_flap_episodes`' key, as text.
fn episode_key_text(cluster: &str, check_key: &str, started_seq: u64, number: u64) -> String {
    format!("({cluster:?}, {check_key:?}, {started_seq}, {number})")
}

/// A row read from a table: its key and value.
type Row<K> = Result<
    (
        redb::AccessGuard<'static, K>,
        redb::AccessGuard<'static, &'static [u8]>,
    ),
    redb::StorageError,
>;

impl HistoryTableReader {
    /// Opens both tables in `txn`.
    pub(crate) fn open(txn: &redb::ReadTransaction) -> Result<Self, ReadFault> {
        Ok(Self {
            occurrences: open_listed(txn, Table::FindingOccurrences, tables::FINDING_OCCURRENCES)?,
            flap_episodes: open_listed(
                txn,
                Table::FindingFlapEpisodes,
                tables::FINDING_FLAP_EPISODES,
            )?,
            incident_entries: open_listed(txn, Table::IncidentEntries, tables::INCIDENT_ENTRIES)?
                .map(EntryTable::over),
            incident_bodies: match (
                open_listed(txn, Table::IncidentBodies, tables::INCIDENT_BODIES)?,
                open_listed(txn, Table::IncidentOpenings, tables::INCIDENT_OPENINGS)?,
            ) {
                (Some(bodies), Some(openings)) => Some(BodyTables::over(bodies, openings)),
                _ => None,
            },
            dropped_orphans: open_listed(txn, Table::DroppedOrphans, tables::DROPPED_ORPHANS)?,
        })
    }

    /// The rows of `check_key` in `cluster` opened in `from..=to`, oldest first.
    fn occurrence_rows(
        &self,
        cluster: &str,
        check_key: &str,
        (from, to): (u64, u64),
    ) -> Result<Option<redb::Range<'static, OccurrenceKey, &'static [u8]>>, ReadFault> {
        let Some(table) = &self.occurrences else {
            return Ok(None);
        };
        Ok(Some(table.range(
            (cluster, check_key, from)..=(cluster, check_key, to),
        )?))
    }

    /// The rows of `check_key` in `cluster` started in `from..=to`, oldest first.
    fn episode_rows(
        &self,
        cluster: &str,
        check_key: &str,
        (from, to): (u64, u64),
    ) -> Result<Option<redb::Range<'static, EpisodeKey, &'static [u8]>>, ReadFault> {
        let Some(table) = &self.flap_episodes else {
            return Ok(None);
        };
        Ok(Some(table.range(
            (cluster, check_key, from, 0)..=(cluster, check_key, to, u64::MAX),
        )?))
    }

    /// Decodes a row of `finding_occurrences` of `check_key` in `cluster`.
    fn occurrence(
        cluster: &str,
        check_key: &str,
        row: Row<OccurrenceKey>,
    ) -> Result<(u64, Occurrence), ReadFault> {
        let (key, value) = row?;
        let opened_seq = key.value().2;
        codec::decode_occurrence(cluster, check_key, opened_seq, value.value()).map_err(|problem| {
            corrupt(
                Table::FindingOccurrences,
                occurrence_key_text(cluster, check_key, opened_seq),
                problem,
            )
        })
    }

    /// Decodes a row of `finding_flap_episodes` of `check_key` in `cluster`.
    fn episode(
        cluster: &str,
        check_key: &str,
        row: Row<EpisodeKey>,
    ) -> Result<(u64, FlapEpisode), ReadFault> {
        let (key, value) = row?;
        let (_, _, started_seq, number) = key.value();
        let episode =
            codec::decode_flap_episode(cluster, check_key, started_seq, number, value.value())
                .map_err(|problem| {
                    corrupt(
                        Table::FindingFlapEpisodes,
                        episode_key_text(cluster, check_key, started_seq, number),
                        problem,
                    )
                })?;
        Ok((number, episode))
    }

    /// The reads of `incident_bodies` and `incident_openings`.
    pub(crate) fn incident_bodies(&self) -> BodyReads<'_> {
        BodyReads(self.incident_bodies.as_ref())
    }

    /// The reads of `incident_entries`.
    pub(crate) fn incident_entries(&self) -> EntryReads<'_> {
        EntryReads(self.incident_entries.as_ref())
    }

    /// `HistoryReader::closed_occurrences`: one range of `finding_occurrences`.
    pub(crate) fn closed_occurrences(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Result<Vec<(u64, Occurrence)>, ReadFault> {
        let Some(span) = opened_span(range).filter(|_| range.limit > 0) else {
            return Ok(Vec::new());
        };
        let Some(rows) = self.occurrence_rows(cluster, check_key, span)? else {
            return Ok(Vec::new());
        };
        let read = |row| {
            let (number, occurrence) = Self::occurrence(cluster, check_key, row)?;
            Ok((number, occurrence.as_of(range.as_of)))
        };
        match range.direction {
            Direction::Forward => rows.take(range.limit).map(read).collect(),
            Direction::Backward => rows.rev().take(range.limit).map(read).collect(),
        }
    }

    /// `HistoryReader::ended_flap_episodes`: one range of `finding_flap_episodes`, in the order
    /// the episodes started (by number: the key orders them by starting position, then number).
    pub(crate) fn ended_flap_episodes(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Result<Vec<(u64, FlapEpisode)>, ReadFault> {
        let Some(span) = opened_span(range).filter(|_| range.limit > 0) else {
            return Ok(Vec::new());
        };
        let Some(rows) = self.episode_rows(cluster, check_key, span)? else {
            return Ok(Vec::new());
        };
        let read = |row| {
            let (number, episode) = Self::episode(cluster, check_key, row)?;
            Ok((number, episode.as_of(range.as_of)))
        };
        match range.direction {
            Direction::Forward => rows.take(range.limit).map(read).collect(),
            Direction::Backward => rows.rev().take(range.limit).map(read).collect(),
        }
    }

    /// `HistoryReader::closed_occurrence_count`: walks back from the last row opened at or
    /// before `as_of` to the first closed at or before it (at most two rows; the module
    /// documentation says why this is exact).
    pub(crate) fn closed_occurrence_count(
        &self,
        cluster: &str,
        check_key: &str,
        as_of: u64,
    ) -> Result<u64, ReadFault> {
        let Some(rows) = self.occurrence_rows(cluster, check_key, (0, as_of))? else {
            return Ok(0);
        };
        for row in rows.rev() {
            let (number, occurrence) = Self::occurrence(cluster, check_key, row)?;
            if occurrence.resolved_seq.is_some_and(|seq| seq <= as_of) {
                return Ok(number);
            }
        }
        Ok(0)
    }

    /// `HistoryReader::ended_flap_episode_count`: walks back from the last row started at or
    /// before `as_of` until it has met a row of every detector (the module documentation says
    /// why this is exact, and what it costs).
    pub(crate) fn ended_flap_episode_count(
        &self,
        cluster: &str,
        check_key: &str,
        as_of: u64,
    ) -> Result<u64, ReadFault> {
        let Some(rows) = self.episode_rows(cluster, check_key, (0, as_of))? else {
            return Ok(0);
        };
        let mut met = [false; DETECTORS];
        let mut walked = 0;
        let mut open_at_as_of = 0;
        for row in rows.rev() {
            let (number, episode) = Self::episode(cluster, check_key, row)?;
            walked += 1;
            let detector = detector_index(episode.detector);
            if met[detector] {
                continue;
            }
            // The detector's latest row at `as_of`: the only one of it that may be open there.
            met[detector] = true;
            if episode.stopped_seq.is_none_or(|seq| seq > as_of) {
                open_at_as_of += 1;
            }
            if met.iter().all(|m| *m) {
                // No episode numbered below `number` lacks a row: `number - 1` rows before it.
                return Ok(walked + (number - 1) - open_at_as_of);
            }
        }
        Ok(walked - open_at_as_of)
    }
}

thread_local! {
    /// The first fault a [`StoreHistory`] call met on this thread since it was last taken.
    static HISTORY_FAULT: RefCell<Option<ReadFault>> = const { RefCell::new(None) };
}

/// The first fault a [`StoreHistory`] read met on this thread since the last call (which then
/// answered empty, or 0): the store's read paths call it after reading through the projection
/// and answer the fault as their error instead of the answer.
pub(crate) fn take_history_fault() -> Option<ReadFault> {
    HISTORY_FAULT.with(|fault| fault.borrow_mut().take())
}

/// The fault a fold that read history back on this thread met, as an error: a fold that read
/// an incomplete history is not the state (call [`take_history_fault`] before the fold).
pub(crate) fn fold_read_history_cleanly() -> Result<(), ReadFault> {
    take_history_fault().map_or(Ok(()), Err)
}

/// Logs `fault` and keeps it for [`take_history_fault`] unless an earlier one is kept.
fn record_history_fault(fault: ReadFault) {
    tracing::error!(error = %fault, "reading a finding's history or an incident's timeline failed; the read answered empty");
    keep_fault(fault);
}

/// Logs `fault`, met reading a cluster's snapshot part for a projection restored lazily, and
/// keeps it for [`take_history_fault`] (the same slot: every path that checks a fold's or a
/// read's history checks this too).
pub(crate) fn record_part_fault(fault: ReadFault) {
    tracing::error!(error = %fault, "restoring a cluster from its snapshot part failed; the read answered without it and fails");
    keep_fault(fault);
}

fn keep_fault(fault: ReadFault) {
    HISTORY_FAULT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(fault);
        }
    });
}

/// The core's [`HistoryReader`] over a store's history tables: each call is one read
/// transaction of the latest commit. It holds the store's database slot (not a handle), so it
/// follows a reopen or a compaction, and takes it shared per call like any reader (the lock
/// order of `store/mod.rs`: never call it while holding a `DbRef`). A fault answers empty (or
/// 0) and is kept for [`take_history_fault`]: never a wrong answer.
#[derive(Clone)]
pub(crate) struct StoreHistory {
    /// Weak: a projection that outlives its store (a kept past state) does not keep the
    /// database open; it reads nothing then (a fault: the store is closed).
    db: Weak<DbSlot>,
}

impl std::fmt::Debug for StoreHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHistory").finish_non_exhaustive()
    }
}

impl Store {
    /// The history reader over this store's tables (see [`StoreHistory`]).
    pub(crate) fn history(&self) -> StoreHistory {
        StoreHistory {
            db: Arc::downgrade(&self.db),
        }
    }
}

impl StoreHistory {
    /// The reader over the database slot `db` (a store's, possibly before its handle is put
    /// in it: nothing is read until a call).
    pub(crate) fn over(db: &Arc<DbSlot>) -> Self {
        Self {
            db: Arc::downgrade(db),
        }
    }

    /// `read` in a read transaction of the latest commit; its fault recorded, and
    /// `T::default()` answered instead.
    fn read<T: Default>(
        &self,
        read: impl FnOnce(&HistoryTableReader) -> Result<T, ReadFault>,
    ) -> T {
        let answer = (|| {
            let db = self
                .db
                .upgrade()
                .ok_or(StorageFault(redb::Error::DatabaseClosed))?;
            // Recursive: a fold reads history while its thread may hold the slot already.
            let slot = db.read_recursive();
            let handle = slot
                .as_ref()
                .ok_or(StorageFault(redb::Error::DatabaseClosed))?;
            let txn = handle.begin_read().map_err(StorageFault::from)?;
            read(&HistoryTableReader::open(&txn)?)
        })();
        answer.unwrap_or_else(|fault| {
            record_history_fault(fault);
            T::default()
        })
    }
}

impl HistoryReader for StoreHistory {
    fn closed_occurrences(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, Occurrence)> {
        self.read(|tables| tables.closed_occurrences(cluster, check_key, range))
    }

    fn ended_flap_episodes(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, FlapEpisode)> {
        self.read(|tables| tables.ended_flap_episodes(cluster, check_key, range))
    }

    fn closed_occurrence_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
        self.read(|tables| tables.closed_occurrence_count(cluster, check_key, as_of))
    }

    fn ended_flap_episode_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
        self.read(|tables| tables.ended_flap_episode_count(cluster, check_key, as_of))
    }
}

impl IncidentEntryReader for StoreHistory {
    fn written_entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Vec<IncidentEntry> {
        self.read(|tables| {
            tables
                .incident_entries()
                .entries(incident, after, as_of, limit)
        })
    }

    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64 {
        self.read(|tables| tables.incident_entries().count(incident, as_of))
    }

    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool {
        self.read(|tables| tables.incident_entries().has(incident, seq, as_of))
    }
}

impl IncidentBodyReader for StoreHistory {
    fn incident_body(&self, id: &str, as_of: u64) -> Option<BodyRow> {
        self.read(|tables| tables.incident_bodies().body(id, as_of))
    }

    fn incidents_in_opening_order(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        as_of: u64,
        visit: &mut dyn FnMut(BodyRow) -> bool,
    ) {
        self.read(|tables| {
            tables
                .incident_bodies()
                .in_opening_order(cluster, after, as_of, visit)
        });
    }
}

impl DroppedOrphanReader for StoreHistory {
    fn dropped_orphans(
        &self,
        cluster: &str,
        start: std::ops::Bound<&OrphanOrder>,
        as_of: u64,
        visit: &mut dyn FnMut(OrphanView) -> bool,
    ) {
        self.read(|tables| {
            visit_dropped_orphans(
                tables.dropped_orphans.as_ref(),
                cluster,
                start,
                as_of,
                visit,
            )
        });
    }
}

#[cfg(test)]
mod tests;
