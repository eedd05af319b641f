//! Where an incidents projection keeps the incidents that are not open and their timeline
//! entries (ADR 0006, steps 3 and 4; `crate::timeline_rows` and `crate::incident_bodies` say
//! what the rows are): in memory (replay, a store before layout 3: every incident and entry
//! stays), or written out at the end of each event (the live state of a store of layout 3: the
//! entries; of layout 4: the incidents too; the records are collected for the store to write in
//! the batch's transaction, and what they hold forgotten), read back through the shared history
//! reader as of the state's position. An event that changes an incident not in memory reads it
//! back first (as of the position before it, with the batch's records not yet written).

use std::fmt;
use std::sync::Arc;

use super::{Incident, IncidentEntry, IncidentProjection};
use crate::findings::SharedHistoryReader;
use crate::incident_bodies::{BodyRow, IncidentBodyRecord};
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
    /// `Some`: the fold writes out the incidents that are not open too (ADR 0006 step 4),
    /// collected here until taken (only with `collected`).
    bodies: Option<Vec<IncidentBodyRecord>>,
}

impl fmt::Debug for TimelineRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimelineRows")
            .field("reader", &self.reader)
            .field("as_of", &self.as_of)
            .field("collected", &self.collected.as_ref().map(Vec::len))
            .field("bodies", &self.bodies.as_ref().map(Vec::len))
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
            bodies: None,
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

    /// From now on, the fold writes out every incident an event leaves not open, with its
    /// entries, at the end of that event, and forgets it ([`Self::take_body_records`]; turns
    /// [`Self::write_entries_out`] on). Only for the live state of a store whose tables take
    /// them.
    pub fn write_incidents_out(&mut self) {
        self.write_entries_out();
        if self.rows.collected.is_some() {
            self.rows.bodies.get_or_insert_with(Vec::new);
        }
    }

    /// Writes out, at position `at`, the entries every incident that is not open holds in
    /// memory, and (with [`Self::write_incidents_out`]) the incident itself, forgotten then: a
    /// state restored from a snapshot written before they were written out (a store upgraded
    /// to layout 3 or 4), or folded after its snapshot without writing out. Nothing unless
    /// [`Self::write_entries_out`] is on. Costs the incidents in memory.
    pub fn write_out_every_closed(&mut self, at: u64) {
        let closed: Vec<usize> = self
            .incidents
            .iter()
            .filter(|(_, incident)| !incident.is_open())
            .map(|(number, _)| number)
            .collect();
        self.write_out(&closed, at);
    }

    /// The incident versions written out since the last call, in fold order.
    pub fn take_body_records(&mut self) -> Vec<IncidentBodyRecord> {
        self.rows
            .bodies
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
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
        if self.rows.collected.is_none() {
            self.touched.clear();
            self.loaded.clear();
            return;
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        touched.retain(|&i| !self.incidents[i].is_open());
        self.write_out(&touched, seq);
        touched.clear();
        self.touched = touched;
        // Read back and left unchanged (a merge chain followed): forgotten, nothing written.
        if self.rows.bodies.is_some() {
            for number in std::mem::take(&mut self.loaded) {
                if self.incidents.get(number).is_some_and(|i| !i.is_open()) {
                    self.forget(number);
                }
            }
        }
        self.loaded.clear();
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
        if self.rows.bodies.is_none() {
            return;
        }
        for &index in indices {
            if let Some(incident) = self.forget(index) {
                let bodies = self.rows.bodies.get_or_insert_with(Vec::new);
                bodies.push(IncidentBodyRecord {
                    written_at: at,
                    row: BodyRow {
                        number: index as u64,
                        incident,
                    },
                });
            }
        }
    }

    /// Takes incident `number` out of memory (it is not open).
    fn forget(&mut self, number: usize) -> Option<Incident> {
        self.unlink_all(number);
        let incident = self.incidents.remove(number)?;
        self.by_id.remove(&incident.id);
        Some(incident)
    }

    /// The number of the incident `id`, read back into memory for the event at `seq` to change
    /// when it is not there (as of the position before `seq`: the batch's records not yet
    /// written, else the rows).
    pub(super) fn find(&mut self, id: &str, seq: u64) -> Option<usize> {
        if let Some(&number) = self.by_id.get(id) {
            return Some(number);
        }
        let row = self.read_back(id, seq)?;
        let number = usize::try_from(row.number).ok()?;
        self.by_id.insert(id.to_owned(), number);
        self.incidents.insert(number, row.incident);
        self.link_all(number);
        self.loaded.push(number);
        Some(number)
    }

    /// Whether an incident `id` exists as the event at `seq` is folded.
    pub(super) fn exists(&self, id: &str, seq: u64) -> bool {
        self.by_id.contains_key(id) || self.read_back(id, seq).is_some()
    }

    /// The version of `id` written out before position `seq`.
    fn read_back(&self, id: &str, seq: u64) -> Option<BodyRow> {
        let reader = self.rows.reader.as_ref()?;
        if let Some(record) = self
            .rows
            .bodies
            .iter()
            .flatten()
            .rev()
            .find(|record| record.row.incident.id == id)
        {
            return Some(record.row.clone());
        }
        reader.incident_body(id, seq.saturating_sub(1).min(self.rows.as_of))
    }

    /// Incident `id` as of the state's position: from memory, else from its rows.
    pub(super) fn read_incident(&self, id: &str) -> Option<std::borrow::Cow<'_, Incident>> {
        if let Some(&number) = self.by_id.get(id) {
            return Some(std::borrow::Cow::Borrowed(&self.incidents[number]));
        }
        let reader = self.rows.reader.as_ref()?;
        reader
            .incident_body(id, self.rows.as_of)
            .map(|row| std::borrow::Cow::Owned(row.incident))
    }

    /// Visits the incidents written out (not in memory) as of the state's position, of
    /// `cluster` or every one, in opening order after `after`, until `visit` returns `false`.
    pub(super) fn visit_written(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        visit: &mut dyn FnMut(usize, Incident) -> bool,
    ) {
        let Some(reader) = &self.rows.reader else {
            return;
        };
        reader.incidents_in_opening_order(cluster, after, self.rows.as_of, &mut |row| {
            if self.by_id.contains_key(&row.incident.id) {
                return true;
            }
            visit(row.number as usize, row.incident)
        });
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
