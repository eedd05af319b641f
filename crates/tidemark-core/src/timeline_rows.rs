//! An incident's timeline entries out of the live state (ADR 0006, step 3): the rows the fold
//! writes out for incidents that are not open, and how they are written and read as of a log
//! position. One algorithm ([`write_records`], [`read_written_entries`]) over a table trait
//! ([`EntryRows`]), which the store implements over redb and [`MemoryEntryRows`] in memory.
//!
//! # The rows
//!
//! At the end of each event, the live state writes out the timeline entries it holds of every
//! incident the event touched that is not open (closed, or absorbed), and forgets them: an
//! [`IncidentEntryRecord::Entry`] per entry, written at the event's position. Rows are never
//! rewritten: an entry written out twice (a closed incident touched again at a position it
//! already has, a merge into a closed incident) gets a second row, and a read unions the
//! touches of an entry's rows. An incident that is absorbed (its entries move to the incident
//! that absorbs it) gets an [`IncidentEntryRecord::Moved`] at the absorbing position: its rows
//! written before then are no longer its own.
//!
//! Each write-out of an incident at a position also writes a header (entry position 0, which
//! no event has): from which position its rows are its own (`visible_from`, moved by
//! `Moved`), and how many distinct entries its visible rows hold then (`count`). So a read as
//! of position `P` takes the latest header written at or before `P` and the rows written in
//! `visible_from..=P`: exactly what the incident had written out at `P`. An entry's position is
//! never after the position it is written at, so a read of entries up to `P` never walks a row
//! of an entry after `P`.
//!
//! A state at `P` holds in memory the entries it did not write out; what it reads is the union
//! of those and its rows as of `P`, by entry position. Past states (time travel) write nothing
//! out and keep everything they fold in memory; the union makes that exact too.

use std::collections::BTreeMap;
use std::convert::Infallible;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// One thing an event did to an incident.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Touch {
    /// What: `opened`, `resolved_auto`, `flap_started_count`, `joined`, `note_hypothesis`,
    /// `deploy`, `rollback`, `config` (a change linked to the incident), `deploy_during`,
    /// `rollback_during`, `config_during` (a change in one of its clusters while it was open,
    /// linked only by time), `alert_fired`, `alert_resolved`, `incident_opened`,
    /// `incident_updated`, `incident_closed`, `merged`, `layer`, `layer_again`, `no_effect`,
    /// `failed_differently`, `maintenance_ended` (a finding that opened inside a maintenance
    /// window joined when the window stopped covering it).
    pub change: String,
    /// The finding it concerns, if any.
    // Stored in postcard snapshots: every field always present (no skip_serializing_if).
    pub check_key: Option<String>,
}

/// One entry of an incident's timeline: an event and what it did to the incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentEntry {
    /// Log position.
    pub seq: u64,
    /// When the incident took it: the event's time, or its cluster's clock when the event was
    /// late (ADR 0004; the event keeps its own time).
    pub at: Timestamp,
    /// What it did, sorted.
    pub touches: Vec<Touch>,
}

impl IncidentEntry {
    /// Adds `touches` to this entry's, each once, keeping them sorted.
    pub fn add_touches(&mut self, touches: &[Touch]) {
        add_touches(&mut self.touches, touches);
    }
}

/// Adds `touches` to the sorted `into`, each once, keeping it sorted.
fn add_touches(into: &mut Vec<Touch>, touches: &[Touch]) {
    for touch in touches {
        if let Err(pos) = into.binary_search(touch) {
            into.insert(pos, touch.clone());
        }
    }
}

/// What the fold writes out of an incident's timeline, in fold order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentEntryRecord {
    /// `incident`'s entry, as the incident held it at position `written_at`.
    Entry {
        /// The incident's id.
        incident: String,
        /// The position of the event at whose end it was written out.
        written_at: u64,
        /// The entry.
        entry: IncidentEntry,
    },
    /// `incident` was absorbed at `written_at`: its entries written before then moved to the
    /// incident that absorbed it.
    Moved {
        /// The absorbed incident's id.
        incident: String,
        /// The absorbing event's position.
        written_at: u64,
    },
}

impl IncidentEntryRecord {
    fn key(&self) -> (&str, u64) {
        match self {
            Self::Entry {
                incident,
                written_at,
                ..
            }
            | Self::Moved {
                incident,
                written_at,
            } => (incident, *written_at),
        }
    }
}

/// An entry row's value: the entry without its position (which is in the key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRow {
    /// When the incident took it.
    pub at: Timestamp,
    /// What it did, sorted.
    pub touches: Vec<Touch>,
}

/// A write-out's header row (entry position 0): which of the incident's rows are its own, and
/// how many distinct entries they hold, as of the position it was written at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOutHeader {
    /// Rows written before this position belong to an incident this one was absorbed into.
    pub visible_from: u64,
    /// Distinct entries of the rows written in `visible_from..=` this header's position.
    pub count: u64,
}

/// An entry row read from a table: (entry position, position written at, row).
pub type ReadRow<E> = Result<(u64, u64, EntryRow), E>;

/// A table of entry rows keyed (incident id, entry position, position written at); entry
/// position 0 is the write-out's header.
pub trait EntryRows {
    /// What a read of the table can fail with.
    type Error;

    /// The latest header of `incident` written at or before `up_to`, with its position.
    fn latest_header(
        &self,
        incident: &str,
        up_to: u64,
    ) -> Result<Option<(u64, WriteOutHeader)>, Self::Error>;

    /// The entry rows of `incident` whose entry position is in `from..=to` (`from` at least 1),
    /// in key order: (entry position, position written at, row).
    fn entry_rows(
        &self,
        incident: &str,
        from: u64,
        to: u64,
    ) -> Result<impl Iterator<Item = ReadRow<Self::Error>>, Self::Error>;
}

/// An [`EntryRows`] that can be written.
pub trait EntryRowsMut: EntryRows {
    /// Whether a header of `incident` was written at exactly `written_at`.
    fn has_header_at(&self, incident: &str, written_at: u64) -> Result<bool, Self::Error>;

    /// Writes an entry row.
    fn insert_entry(
        &mut self,
        incident: &str,
        seq: u64,
        written_at: u64,
        row: &EntryRow,
    ) -> Result<(), Self::Error>;

    /// Writes a header row.
    fn insert_header(
        &mut self,
        incident: &str,
        written_at: u64,
        header: WriteOutHeader,
    ) -> Result<(), Self::Error>;
}

/// Writes `records` (in fold order) into `table`: each incident's write-out at a position as
/// its entry rows and one header. A write-out whose header is already there (the same records
/// written again) changes nothing.
pub fn write_records<T: EntryRowsMut>(
    table: &mut T,
    records: &[IncidentEntryRecord],
) -> Result<(), T::Error> {
    // Grouped by (incident, position): the records of one write-out, in position order.
    let mut write_outs: BTreeMap<(&str, u64), Vec<&IncidentEntryRecord>> = BTreeMap::new();
    for record in records {
        write_outs.entry(record.key()).or_default().push(record);
    }
    for ((incident, written_at), records) in write_outs {
        if table.has_header_at(incident, written_at)? {
            continue;
        }
        let moved = records
            .iter()
            .any(|r| matches!(r, IncidentEntryRecord::Moved { .. }));
        let previous = table.latest_header(incident, written_at)?.map(|(_, h)| h);
        let mut header = match (moved, previous) {
            (true, _) | (false, None) => WriteOutHeader {
                visible_from: if moved { written_at } else { 0 },
                count: 0,
            },
            (false, Some(previous)) => previous,
        };
        let mut entries: BTreeMap<u64, EntryRow> = BTreeMap::new();
        for record in records {
            if let IncidentEntryRecord::Entry { entry, .. } = record {
                let row = entries.entry(entry.seq).or_insert_with(|| EntryRow {
                    at: entry.at,
                    touches: Vec::new(),
                });
                add_touches(&mut row.touches, &entry.touches);
            }
        }
        for (seq, row) in &entries {
            let seen = table
                .entry_rows(incident, *seq, *seq)?
                .try_fold(false, |seen, r| {
                    r.map(|(_, at, _)| seen || (header.visible_from <= at && at < written_at))
                })?;
            if !seen {
                header.count += 1;
            }
            table.insert_entry(incident, *seq, written_at, row)?;
        }
        table.insert_header(incident, written_at, header)?;
    }
    Ok(())
}

/// The entries `incident` had written out as of position `as_of` after position `after`, at
/// most `limit` of them, in log order, each with the touches of all its rows.
pub fn read_written_entries<T: EntryRows>(
    table: &T,
    incident: &str,
    after: u64,
    as_of: u64,
    limit: usize,
) -> Result<Vec<IncidentEntry>, T::Error> {
    let Some((_, header)) = table.latest_header(incident, as_of)? else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<IncidentEntry> = Vec::new();
    if limit == 0 || after >= as_of {
        return Ok(entries);
    }
    for row in table.entry_rows(incident, after + 1, as_of)? {
        let (seq, written_at, row) = row?;
        if written_at < header.visible_from || written_at > as_of {
            continue;
        }
        if let Some(last) = entries.last_mut()
            && last.seq == seq
        {
            last.add_touches(&row.touches);
            continue;
        }
        if entries.len() == limit {
            break;
        }
        entries.push(IncidentEntry {
            seq,
            at: row.at,
            touches: row.touches,
        });
    }
    Ok(entries)
}

/// How many distinct entries `incident` had written out as of position `as_of`.
pub fn read_written_count<T: EntryRows>(
    table: &T,
    incident: &str,
    as_of: u64,
) -> Result<u64, T::Error> {
    Ok(table
        .latest_header(incident, as_of)?
        .map_or(0, |(_, h)| h.count))
}

/// Whether `incident` had written out its entry at position `seq` as of position `as_of`.
pub fn read_has_written_entry<T: EntryRows>(
    table: &T,
    incident: &str,
    seq: u64,
    as_of: u64,
) -> Result<bool, T::Error> {
    let Some((_, header)) = table.latest_header(incident, as_of)? else {
        return Ok(false);
    };
    if seq == 0 || seq > as_of {
        return Ok(false);
    }
    for row in table.entry_rows(incident, seq, seq)? {
        let (_, written_at, _) = row?;
        if header.visible_from <= written_at && written_at <= as_of {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads the entries incidents wrote out (the store's `incident_entries`, or
/// [`MemoryEntryRows`]), as of a position, in pages. Infallible as the core reads it: a store
/// that meets a fault answers empty and records it for its read path to answer instead.
pub trait IncidentEntryReader {
    /// [`read_written_entries`].
    fn written_entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Vec<IncidentEntry>;

    /// [`read_written_count`].
    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64;

    /// [`read_has_written_entry`].
    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool;
}

/// The entry rows in memory: the specification the store's table follows, and what a
/// history in memory holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryEntryRows {
    headers: BTreeMap<(String, u64), WriteOutHeader>,
    rows: BTreeMap<(String, u64, u64), EntryRow>,
}

impl MemoryEntryRows {
    /// No rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `records` ([`write_records`]).
    pub fn write(&mut self, records: &[IncidentEntryRecord]) {
        let Ok(()) = write_records(self, records);
    }

    /// How many entry rows it holds (headers not counted).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.headers.is_empty()
    }
}

impl EntryRows for MemoryEntryRows {
    type Error = Infallible;

    fn latest_header(
        &self,
        incident: &str,
        up_to: u64,
    ) -> Result<Option<(u64, WriteOutHeader)>, Infallible> {
        Ok(self
            .headers
            .range((incident.to_owned(), 0)..=(incident.to_owned(), up_to))
            .next_back()
            .map(|((_, at), header)| (*at, *header)))
    }

    fn entry_rows(
        &self,
        incident: &str,
        from: u64,
        to: u64,
    ) -> Result<impl Iterator<Item = ReadRow<Infallible>>, Infallible> {
        let rows: Vec<_> = if from > to {
            Vec::new()
        } else {
            self.rows
                .range((incident.to_owned(), from, 0)..=(incident.to_owned(), to, u64::MAX))
                .map(|((_, seq, at), row)| Ok((*seq, *at, row.clone())))
                .collect()
        };
        Ok(rows.into_iter())
    }
}

impl EntryRowsMut for MemoryEntryRows {
    fn has_header_at(&self, incident: &str, written_at: u64) -> Result<bool, Infallible> {
        Ok(self
            .headers
            .contains_key(&(incident.to_owned(), written_at)))
    }

    fn insert_entry(
        &mut self,
        incident: &str,
        seq: u64,
        written_at: u64,
        row: &EntryRow,
    ) -> Result<(), Infallible> {
        self.rows
            .insert((incident.to_owned(), seq, written_at), row.clone());
        Ok(())
    }

    fn insert_header(
        &mut self,
        incident: &str,
        written_at: u64,
        header: WriteOutHeader,
    ) -> Result<(), Infallible> {
        self.headers
            .insert((incident.to_owned(), written_at), header);
        Ok(())
    }
}

impl IncidentEntryReader for MemoryEntryRows {
    fn written_entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Vec<IncidentEntry> {
        let Ok(entries) = read_written_entries(self, incident, after, as_of, limit);
        entries
    }

    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64 {
        let Ok(count) = read_written_count(self, incident, as_of);
        count
    }

    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool {
        let Ok(found) = read_has_written_entry(self, incident, seq, as_of);
        found
    }
}

/// Merges two runs of entries sorted by position (each position once per run) into one,
/// the touches of a position in both unioned.
pub fn merge_entries(a: Vec<IncidentEntry>, b: Vec<IncidentEntry>) -> Vec<IncidentEntry> {
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (Some(x), Some(y)) if x.seq < y.seq => a.next(),
            (Some(x), Some(y)) if x.seq > y.seq => b.next(),
            (Some(_), Some(_)) => {
                let mut x = a.next().expect("peeked");
                let y = b.next().expect("peeked");
                x.add_touches(&y.touches);
                Some(x)
            }
        };
        merged.extend(next);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, changes: &[&str]) -> IncidentEntry {
        let mut touches: Vec<Touch> = changes
            .iter()
            .map(|c| Touch {
                change: (*c).to_owned(),
                check_key: None,
            })
            .collect();
        touches.sort();
        IncidentEntry {
            seq,
            at: Timestamp::from_unix_nanos(seq as i64),
            touches,
        }
    }

    fn written(incident: &str, written_at: u64, entry: IncidentEntry) -> IncidentEntryRecord {
        IncidentEntryRecord::Entry {
            incident: incident.to_owned(),
            written_at,
            entry,
        }
    }

    #[test]
    fn reads_as_of_a_position_see_the_rows_written_by_then_with_their_touches_unioned() {
        let mut rows = MemoryEntryRows::new();
        rows.write(&[
            written("i", 10, entry(3, &["opened"])),
            written("i", 10, entry(10, &["incident_closed"])),
        ]);
        // A merge into the closed incident at 20 brings another incident's entry at 3.
        rows.write(&[
            written("i", 20, entry(3, &["joined"])),
            written("i", 20, entry(20, &["merged"])),
        ]);
        let seqs = |as_of| -> Vec<(u64, usize)> {
            rows.written_entries("i", 0, as_of, usize::MAX)
                .iter()
                .map(|e| (e.seq, e.touches.len()))
                .collect()
        };
        assert_eq!(seqs(9), []);
        assert_eq!(seqs(15), [(3, 1), (10, 1)]);
        assert_eq!(seqs(u64::MAX), [(3, 2), (10, 1), (20, 1)]);
        assert_eq!(rows.written_entry_count("i", 15), 2);
        assert_eq!(rows.written_entry_count("i", 20), 3);
        assert!(rows.has_written_entry("i", 3, 10));
        assert!(!rows.has_written_entry("i", 20, 19));
        // Pages: after a position, at most `limit` distinct entries.
        let page = rows.written_entries("i", 3, u64::MAX, 1);
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [10]);
        // The same write-out again changes nothing.
        let before = rows.clone();
        rows.write(&[written("i", 20, entry(3, &["joined"]))]);
        assert_eq!(rows, before);
    }

    #[test]
    fn an_absorbed_incident_keeps_only_the_rows_written_since_it_moved() {
        let mut rows = MemoryEntryRows::new();
        rows.write(&[written("a", 5, entry(5, &["incident_closed"]))]);
        rows.write(&[
            IncidentEntryRecord::Moved {
                incident: "a".into(),
                written_at: 30,
            },
            written("a", 30, entry(30, &["merged"])),
        ]);
        let seqs = |as_of| -> Vec<u64> {
            rows.written_entries("a", 0, as_of, usize::MAX)
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs(29), [5]);
        assert_eq!(seqs(30), [30]);
        assert_eq!(rows.written_entry_count("a", 29), 1);
        assert_eq!(rows.written_entry_count("a", 30), 1);
        assert!(!rows.has_written_entry("a", 5, 30));
    }

    #[test]
    fn merged_runs_union_the_touches_of_equal_positions() {
        let merged = merge_entries(
            vec![entry(1, &["a"]), entry(3, &["b"])],
            vec![entry(2, &["c"]), entry(3, &["d"])],
        );
        let shape: Vec<(u64, usize)> = merged.iter().map(|e| (e.seq, e.touches.len())).collect();
        assert_eq!(shape, [(1, 1), (2, 1), (3, 2)]);
    }
}
