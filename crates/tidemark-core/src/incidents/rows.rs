//! Where an incidents projection keeps the timeline entries of incidents that are not open
//! (ADR 0006, step 3; `crate::timeline_rows` says what the rows are): in memory (replay, a
//! store before layout 3: every entry stays in its incident), or written out at the end of each
//! event (the live state of a store of layout 3: the records are collected for the store to
//! write in the batch's transaction, and the entries forgotten), read back through the shared
//! history reader (an `IncidentEntryReader` too) as of the state's position.

use std::fmt;
use std::sync::Arc;

use super::{IncidentEntry, IncidentProjection};
use crate::findings::SharedHistoryReader;
use crate::timeline_rows::{IncidentEntryRecord, merge_entries};

/// Where the written-out entries are read from, and whether the fold writes entries out.
#[derive(Clone, Default)]
pub(super) struct TimelineRows {
    /// `None`: nothing was ever written out (every entry is in memory).
    reader: Option<Arc<dyn SharedHistoryReader>>,
    /// Reads see the rows as of this position (`u64::MAX`: all of them, the live state).
    as_of: u64,
    /// `Some`: the fold writes out the entries of incidents that are not open at the end of
    /// each event, collected here until taken; `None`: it keeps them in memory.
    collected: Option<Vec<IncidentEntryRecord>>,
}

impl fmt::Debug for TimelineRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimelineRows")
            .field("reader", &self.reader)
            .field("as_of", &self.as_of)
            .field("collected", &self.collected.as_ref().map(Vec::len))
            .finish()
    }
}

impl IncidentProjection {
    /// Reads the entries incidents wrote out through `reader`, as of the live state (`as_of`
    /// `None`) or a past state's position; the fold keeps new entries in memory until
    /// [`Self::write_entries_out`].
    pub fn read_entries_from(&mut self, reader: Arc<dyn SharedHistoryReader>, as_of: Option<u64>) {
        self.rows = TimelineRows {
            reader: Some(reader),
            as_of: as_of.unwrap_or(u64::MAX),
            collected: None,
        };
    }

    /// Reads the written-out entries as of position `as_of` (a past state folded further).
    pub fn set_entries_as_of(&mut self, as_of: u64) {
        self.rows.as_of = as_of;
    }

    /// From now on, the fold writes out the entries of every incident an event leaves not
    /// open, at the end of that event ([`Self::take_entry_records`]). Only for the live state
    /// of a store whose tables take them (never a past state: its rows are written already).
    pub fn write_entries_out(&mut self) {
        if self.rows.reader.is_some() && self.rows.as_of == u64::MAX {
            self.rows.collected.get_or_insert_with(Vec::new);
        }
    }

    /// Writes out, at position `at`, the entries every incident that is not open holds in
    /// memory (a state restored from a snapshot written before entries were written out: a
    /// store upgraded to layout 3). Nothing unless [`Self::write_entries_out`] is on.
    pub fn write_out_every_closed(&mut self, at: u64) {
        let closed: Vec<usize> = (0..self.incidents.len())
            .filter(|&i| !self.incidents[i].is_open())
            .collect();
        self.write_out(&closed, at);
    }

    /// The records written out since the last call, in fold order.
    pub fn take_entry_records(&mut self) -> Vec<IncidentEntryRecord> {
        self.rows
            .collected
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// At the end of the event at `seq`: the incidents it touched that are not open write
    /// their entries out.
    pub(super) fn write_out_touched(&mut self, seq: u64) {
        if self.rows.collected.is_none() || self.touched.is_empty() {
            self.touched.clear();
            return;
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        touched.retain(|&i| !self.incidents[i].is_open());
        self.write_out(&touched, seq);
        touched.clear();
        self.touched = touched;
    }

    fn write_out(&mut self, indices: &[usize], at: u64) {
        let Some(collected) = self.rows.collected.as_mut() else {
            return;
        };
        for &index in indices {
            let incident = &mut self.incidents[index];
            for entry in std::mem::take(&mut incident.timeline) {
                collected.push(IncidentEntryRecord::Entry {
                    incident: incident.id.clone(),
                    written_at: at,
                    entry,
                });
            }
        }
    }

    /// Every entry incident `index` wrote out before position `seq` (the rows, and the records
    /// collected and not yet written), for an absorb at `seq` to move; records that they moved
    /// away (when the fold writes out).
    pub(super) fn take_written_for_absorb(&mut self, index: usize, seq: u64) -> Vec<IncidentEntry> {
        let Some(reader) = &self.rows.reader else {
            return Vec::new();
        };
        let id = self.incidents[index].id.clone();
        let as_of = seq.saturating_sub(1).min(self.rows.as_of);
        let mut entries = reader.written_entries(&id, 0, as_of, usize::MAX);
        if let Some(collected) = self.rows.collected.as_mut() {
            let mine = collected.iter().filter_map(|record| match record {
                IncidentEntryRecord::Entry {
                    incident, entry, ..
                } if *incident == id => Some(entry.clone()),
                _ => None,
            });
            let mut pending: Vec<IncidentEntry> = Vec::new();
            for entry in mine {
                match pending.binary_search_by_key(&entry.seq, |e| e.seq) {
                    Ok(at) => pending[at].add_touches(&entry.touches),
                    Err(at) => pending.insert(at, entry),
                }
            }
            entries = merge_entries(entries, pending);
            collected.push(IncidentEntryRecord::Moved {
                incident: id,
                written_at: seq,
            });
        }
        entries
    }

    /// The entries of `incident` written out as of the state's position after `after`, at
    /// most `limit`, unioned with those it holds in memory.
    pub(super) fn entries_after(
        &self,
        incident: &super::Incident,
        after: u64,
        limit: usize,
    ) -> Vec<IncidentEntry> {
        let in_memory = &incident.timeline;
        let start = in_memory.partition_point(|e| e.seq <= after);
        let end = start.saturating_add(limit).min(in_memory.len());
        let memory = in_memory[start..end].to_vec();
        let Some(reader) = &self.rows.reader else {
            return memory;
        };
        let written = reader.written_entries(&incident.id, after, self.rows.as_of, limit);
        let mut merged = merge_entries(written, memory);
        merged.truncate(limit);
        merged
    }

    /// How many entries `incident` has: those written out as of the state's position, and
    /// those in memory that were not.
    pub(super) fn entry_count(&self, incident: &super::Incident) -> usize {
        let Some(reader) = &self.rows.reader else {
            return incident.timeline.len();
        };
        let as_of = self.rows.as_of;
        let written = reader.written_entry_count(&incident.id, as_of);
        if written == 0 {
            return incident.timeline.len();
        }
        let only_in_memory = incident
            .timeline
            .iter()
            .filter(|e| !reader.has_written_entry(&incident.id, e.seq, as_of))
            .count();
        written as usize + only_in_memory
    }

    /// Whether any entry was ever written out (a reader is there to read them).
    pub(super) fn may_have_rows(&self) -> bool {
        self.rows.reader.is_some()
    }
}
