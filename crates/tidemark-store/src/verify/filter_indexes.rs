//! The event filters' indexes (`by_cluster`, `by_source`, `cluster_clock`, `late_events`)
//! checked against the log, for the positions up to `META`'s `event_indexes_to`.
//!
//! The log walk of `check_records` hands each record to [`FilterIndexCheck`], which derives
//! the record's entries the way `FilterIndexes::add` writes them (a cluster's clock marks and
//! late events follow from its earlier events, so the clock of each cluster's last mark is
//! carried along the walk) and looks each up: a missing entry, a wrong value, and an entry at
//! an event's own key that the derivation does not give are listed. Then the entries of each
//! table are counted and compared with what the walk explains; when they differ, the entries
//! the log does not explain (a position it lacks, an event of another cluster, source or time)
//! are listed.
//!
//! Retention (`compact --drop-events-before`) drops the log before its cut with these tables'
//! entries, but keeps `cluster_clock` whole: the marks before the cut are the clock the marks
//! and late events after it are relative to. So entries before the log's first position are
//! not compared (as for the older indexes), and the walk starts each cluster's clock from its
//! last mark before the cut. A store whose indexes are incomplete (`event_indexes_to` before
//! the checkpoint: written before them, or appended to by a build without them) is not
//! corrupt: the next read-write open builds the rest, and the report says so in a note.

use std::collections::{BTreeMap, HashMap};

use redb::ReadableTable;
use tidemark_core::Event;

use super::{Findings, VerifyError};
use crate::store::decode_log;
use crate::tables;

/// The four tables, open in the verify's read transaction.
struct Tables {
    by_cluster: redb::ReadOnlyTable<(&'static str, u64), i64>,
    by_source: redb::ReadOnlyTable<(&'static str, u64), ()>,
    cluster_clock: redb::ReadOnlyTable<(&'static str, i64, u64), ()>,
    late_events: redb::ReadOnlyTable<(&'static str, u64), i64>,
}

/// What the walk found of one table: entries the log explains, and those it listed as missing
/// or as not to be there (at an event's own key).
#[derive(Default, Clone, Copy)]
struct Tally {
    expected: u64,
    missing: u64,
    unexpected: u64,
}

impl Tally {
    /// The entries the table should hold given what the walk saw: the expected ones it has,
    /// and the unexpected ones it was found to hold.
    fn explained(self) -> u64 {
        self.expected - self.missing + self.unexpected
    }
}

/// The check of the event filters' indexes, fed by the log walk.
pub(super) struct FilterIndexCheck {
    /// `None`: the tables are not there (a store written before them and not opened read-write since).
    tables: Option<Tables>,
    /// `event_indexes_to`: the entries of positions up to it are checked.
    indexed_to: u64,
    /// The first position the log holds (retention moves it).
    log_start: u64,
    /// Cluster → the clock of its last mark so far (`None`: it has none yet).
    last_marks: HashMap<String, Option<i64>>,
    /// Whether the walk still knows each cluster's clock (a corrupt log record in range might
    /// have moved it: the clock tables are not compared after one).
    clock_known: bool,
    /// Corrupt log records in range: whether they have entries cannot be known.
    corrupt_in_range: u64,
    by_cluster: Tally,
    by_source: Tally,
    cluster_clock: Tally,
    late_events: Tally,
}

impl FilterIndexCheck {
    /// Opens the tables and reads how far they are complete; what is wrong with that (an
    /// `event_indexes_to` after the checkpoint, a table missing although it says they were
    /// built) is a problem, indexes not yet complete a note.
    pub(super) fn open(
        txn: &redb::ReadTransaction,
        meta: &impl ReadableTable<&'static str, i64>,
        checkpoint: u64,
        log_start: u64,
        findings: &mut Findings,
        notes: &mut Vec<String>,
    ) -> Result<Self, VerifyError> {
        let stored = meta.get(tables::EVENT_INDEXES_TO)?.map_or(0, |v| v.value());
        let mut indexed_to = stored.max(0) as u64;
        if stored < 0 {
            findings.add(
                "meta",
                tables::EVENT_INDEXES_TO,
                format!("{stored}: a position cannot be negative"),
            );
        }
        if indexed_to > checkpoint {
            findings.add(
                "meta",
                tables::EVENT_INDEXES_TO,
                format!(
                    "{indexed_to}, after the checkpoint {checkpoint}: no build indexes events it \
                     has not logged"
                ),
            );
            indexed_to = checkpoint;
        }
        let tables = open_tables(txn)?;
        let tables = match tables {
            Ok(tables) => Some(tables),
            Err(_) if indexed_to == 0 => None,
            Err(absent) => {
                for table in absent {
                    findings.add(
                        table,
                        "-",
                        format!(
                            "missing, although meta's {} says the event filter indexes are \
                             complete up to position {indexed_to}",
                            tables::EVENT_INDEXES_TO
                        ),
                    );
                }
                None
            }
        };
        if indexed_to < checkpoint {
            notes.push(format!(
                "the event filter indexes (by_cluster, by_source, cluster_clock, late_events) are \
                 complete up to position {indexed_to} of {checkpoint} (a store written before \
                 them, or appended to by a build without them): not a problem; the next \
                 read-write open (`tidemark serve`, `ingest`, `rebuild` or `compact`) builds \
                 the rest, and until then event filters read the log{}",
                if tables.is_some() && indexed_to >= log_start {
                    "; the entries up to it were checked"
                } else {
                    ""
                }
            ));
        }
        Ok(Self {
            tables,
            indexed_to,
            log_start,
            last_marks: HashMap::new(),
            clock_known: true,
            corrupt_in_range: 0,
            by_cluster: Tally::default(),
            by_source: Tally::default(),
            cluster_clock: Tally::default(),
            late_events: Tally::default(),
        })
    }

    fn in_range(&self, seq: u64) -> bool {
        seq >= self.log_start && seq <= self.indexed_to
    }

    /// A log record that cannot be decoded: its entries (if any) are not compared, and the
    /// clocks are unknown from here on.
    pub(super) fn corrupt(&mut self, seq: u64) {
        if self.tables.is_some() && self.in_range(seq) {
            self.corrupt_in_range += 1;
            self.clock_known = false;
        }
    }

    /// The entries of the event at `seq` (positions come in increasing order).
    pub(super) fn event(
        &mut self,
        seq: u64,
        event: &Event,
        findings: &mut Findings,
    ) -> Result<(), VerifyError> {
        if !self.in_range(seq) {
            return Ok(());
        }
        let Some(t) = &self.tables else {
            return Ok(());
        };
        let cluster = event.cluster.as_str();
        let source = event.source.as_str();
        let time = event.time.unix_nanos();
        self.by_cluster.expected += 1;
        match t.by_cluster.get((cluster, seq))?.map(|v| v.value()) {
            Some(found) if found == time => {}
            Some(found) => findings.add(
                "by_cluster",
                format!("({cluster}, {seq})"),
                format!("time {found}, the event's time is {time}"),
            ),
            None => {
                self.by_cluster.missing += 1;
                findings.add("by_cluster", format!("({cluster}, {seq})"), "missing");
            }
        }
        self.by_source.expected += 1;
        if t.by_source.get((source, seq))?.is_none() {
            self.by_source.missing += 1;
            findings.add("by_source", format!("({source}, {seq})"), "missing");
        }
        if !self.clock_known {
            return Ok(());
        }
        let last_mark = match self.last_marks.get(cluster) {
            Some(mark) => *mark,
            None => {
                let mark = last_mark_before(&t.cluster_clock, cluster, self.log_start)?;
                self.last_marks.insert(cluster.to_owned(), mark);
                mark
            }
        };
        // As `FilterIndexes::add` derives them.
        let (is_mark, is_late) = match last_mark {
            Some(clock) if time < clock.saturating_add(tables::CLOCK_MARK_NS) => {
                (false, time < clock.saturating_sub(tables::LATE_EVENT_NS))
            }
            _ => (true, false),
        };
        let mark_key = || format!("({cluster}, {time}, {seq})");
        let has_mark = t.cluster_clock.get((cluster, time, seq))?.is_some();
        if is_mark {
            self.cluster_clock.expected += 1;
            if let Some(mark) = self.last_marks.get_mut(cluster) {
                *mark = Some(time);
            }
            if !has_mark {
                self.cluster_clock.missing += 1;
                findings.add(
                    "cluster_clock",
                    mark_key(),
                    "missing: the cluster's clock moves here",
                );
            }
        } else if has_mark {
            self.cluster_clock.unexpected += 1;
            findings.add(
                "cluster_clock",
                mark_key(),
                format!(
                    "not a mark: the event is less than {}s past the cluster's last mark (clock {})",
                    tables::CLOCK_MARK_NS / 1_000_000_000,
                    last_mark.unwrap_or_default()
                ),
            );
        }
        let late_key = || format!("({cluster}, {seq})");
        match (
            is_late,
            t.late_events.get((cluster, seq))?.map(|v| v.value()),
        ) {
            (true, Some(found)) if found == time => self.late_events.expected += 1,
            (true, Some(found)) => {
                self.late_events.expected += 1;
                findings.add(
                    "late_events",
                    late_key(),
                    format!("time {found}, the event's time is {time}"),
                );
            }
            (true, None) => {
                self.late_events.expected += 1;
                self.late_events.missing += 1;
                findings.add(
                    "late_events",
                    late_key(),
                    "missing: the event is late against its cluster's clock",
                );
            }
            (false, Some(_)) => {
                self.late_events.unexpected += 1;
                findings.add(
                    "late_events",
                    late_key(),
                    format!(
                        "not late: the event is at most {}s before its cluster's clock",
                        tables::LATE_EVENT_NS / 1_000_000_000
                    ),
                );
            }
            (false, None) => {}
        }
        Ok(())
    }

    /// Counts each table's entries in range against what the walk explains, listing those the
    /// log does not explain when they differ; lists the entries after `event_indexes_to`.
    pub(super) fn finish(
        self,
        log: &impl ReadableTable<u64, &'static [u8]>,
        checked: &mut BTreeMap<&'static str, u64>,
        findings: &mut Findings,
    ) -> Result<(), VerifyError> {
        let Some(t) = &self.tables else {
            return Ok(());
        };
        for (which, tally, comparable) in [
            (Which::ByCluster, self.by_cluster, true),
            (Which::BySource, self.by_source, true),
            (Which::ClusterClock, self.cluster_clock, self.clock_known),
            (Which::LateEvents, self.late_events, self.clock_known),
        ] {
            let table = which.name();
            let mut found = 0u64;
            for entry in t.entries(which)? {
                let entry = entry?;
                *checked.entry(table).or_default() += 1;
                if entry.seq > self.indexed_to {
                    findings.add(
                        table,
                        entry.text(),
                        format!(
                            "position {} is after {}, the last position the indexes cover \
                             (meta's {}, at most the checkpoint): no build writes entries past it",
                            entry.seq,
                            self.indexed_to,
                            tables::EVENT_INDEXES_TO
                        ),
                    );
                } else if entry.seq >= self.log_start {
                    found += 1;
                }
            }
            let explained = tally.explained();
            // Entries at corrupt records' positions may or may not be there.
            if !comparable || (found >= explained && found <= explained + self.corrupt_in_range) {
                continue;
            }
            let before = findings.count;
            for entry in t.entries(which)? {
                let entry = entry?;
                if !self.in_range(entry.seq) {
                    continue;
                }
                let Some(bytes) = log.get(entry.seq)? else {
                    findings.add(
                        table,
                        entry.text(),
                        format!("position {} holds no event", entry.seq),
                    );
                    continue;
                };
                // A corrupt record: listed as such by the log check.
                let Ok(stored) = decode_log(entry.seq, bytes.value()) else {
                    continue;
                };
                if let Some(problem) = entry.unexplained_by(which, &stored.event) {
                    findings.add(table, entry.text(), problem);
                }
            }
            if findings.count == before {
                findings.add(
                    table,
                    "*",
                    format!(
                        "{found} entries from position {} to {}, the log explains {explained}",
                        self.log_start, self.indexed_to
                    ),
                );
            }
        }
        Ok(())
    }
}

/// One of the four tables.
#[derive(Clone, Copy)]
enum Which {
    ByCluster,
    BySource,
    ClusterClock,
    LateEvents,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::ByCluster => tables::Table::ByCluster.name(),
            Which::BySource => tables::Table::BySource.name(),
            Which::ClusterClock => tables::Table::ClusterClock.name(),
            Which::LateEvents => tables::Table::LateEvents.name(),
        }
    }
}

/// An entry's key: the cluster (or source) it names, the time (`cluster_clock`) and position.
struct Entry {
    name: String,
    time: Option<i64>,
    seq: u64,
}

impl Entry {
    fn text(&self) -> String {
        match self.time {
            Some(time) => format!("({}, {time}, {})", self.name, self.seq),
            None => format!("({}, {})", self.name, self.seq),
        }
    }

    /// What is wrong with the entry given the event at its position (`None`: its key is the
    /// event's, and the walk checked the rest).
    fn unexplained_by(&self, which: Which, event: &Event) -> Option<String> {
        let seq = self.seq;
        match which {
            Which::BySource => (self.name != event.source).then(|| {
                format!(
                    "the event at position {seq} is from source {}",
                    event.source
                )
            }),
            Which::ByCluster | Which::ClusterClock | Which::LateEvents
                if self.name != event.cluster =>
            {
                Some(format!(
                    "the event at position {seq} is of cluster {}",
                    event.cluster
                ))
            }
            Which::ClusterClock => (self.time != Some(event.time.unix_nanos())).then(|| {
                format!(
                    "the event at position {seq} has time {}",
                    event.time.unix_nanos()
                )
            }),
            Which::ByCluster | Which::LateEvents => None,
        }
    }
}

type Entries<'a> = Box<dyn Iterator<Item = Result<Entry, redb::StorageError>> + 'a>;

/// The tables that a store written before them lacks, if any.
fn open_tables(
    txn: &redb::ReadTransaction,
) -> Result<Result<Tables, Vec<&'static str>>, VerifyError> {
    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        txn: &redb::ReadTransaction,
        definition: redb::TableDefinition<'static, K, V>,
        absent: &mut Vec<&'static str>,
        name: &'static str,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>, VerifyError> {
        match txn.open_table(definition) {
            Ok(table) => Ok(Some(table)),
            Err(redb::TableError::TableDoesNotExist(_)) => {
                absent.push(name);
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
    let mut absent = Vec::new();
    let by_cluster = open(
        txn,
        tables::BY_CLUSTER,
        &mut absent,
        Which::ByCluster.name(),
    )?;
    let by_source = open(txn, tables::BY_SOURCE, &mut absent, Which::BySource.name())?;
    let cluster_clock = open(
        txn,
        tables::CLUSTER_CLOCK,
        &mut absent,
        Which::ClusterClock.name(),
    )?;
    let late_events = open(
        txn,
        tables::LATE_EVENTS,
        &mut absent,
        Which::LateEvents.name(),
    )?;
    Ok(match (by_cluster, by_source, cluster_clock, late_events) {
        (Some(by_cluster), Some(by_source), Some(cluster_clock), Some(late_events)) => Ok(Tables {
            by_cluster,
            by_source,
            cluster_clock,
            late_events,
        }),
        _ => Err(absent),
    })
}

impl Tables {
    /// The entries of one table, in key order.
    fn entries(&self, which: Which) -> Result<Entries<'_>, redb::StorageError> {
        Ok(match which {
            Which::ByCluster => Box::new(self.by_cluster.iter()?.map(|e| {
                e.map(|(k, _)| {
                    let (name, seq) = k.value();
                    Entry {
                        name: name.to_owned(),
                        time: None,
                        seq,
                    }
                })
            })),
            Which::BySource => Box::new(self.by_source.iter()?.map(|e| {
                e.map(|(k, _)| {
                    let (name, seq) = k.value();
                    Entry {
                        name: name.to_owned(),
                        time: None,
                        seq,
                    }
                })
            })),
            Which::ClusterClock => Box::new(self.cluster_clock.iter()?.map(|e| {
                e.map(|(k, _)| {
                    let (name, time, seq) = k.value();
                    Entry {
                        name: name.to_owned(),
                        time: Some(time),
                        seq,
                    }
                })
            })),
            Which::LateEvents => Box::new(self.late_events.iter()?.map(|e| {
                e.map(|(k, _)| {
                    let (name, seq) = k.value();
                    Entry {
                        name: name.to_owned(),
                        time: None,
                        seq,
                    }
                })
            })),
        })
    }
}

/// The clock of `cluster`'s last mark at a position before `before` (the marks retention kept:
/// the walk derives those after), as `FilterIndexes::add` reads it.
fn last_mark_before(
    cluster_clock: &redb::ReadOnlyTable<(&'static str, i64, u64), ()>,
    cluster: &str,
    before: u64,
) -> Result<Option<i64>, redb::StorageError> {
    if before <= 1 {
        return Ok(None);
    }
    for entry in cluster_clock
        .range((cluster, i64::MIN, 0)..=(cluster, i64::MAX, u64::MAX))?
        .rev()
    {
        let (key, _) = entry?;
        let (_, clock, seq) = key.value();
        if seq < before {
            return Ok(Some(clock));
        }
    }
    Ok(None)
}
