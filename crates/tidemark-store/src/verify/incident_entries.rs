//! Incidents' timeline rows (`incident_entries`; store layout 3) checked against the fold of
//! the log: every row decodes under its key, and, given the fold of the whole log (which keeps
//! every entry in memory), each incident's entries as the rows read them now are its
//! timeline's entries (all of them for an incident that is not open, whose entries are all
//! written out; a subset for an open one, which holds the rest in memory), and each write-out's
//! header counts what it says.
//!
//! After a retention cut the fold does not hold the whole log, so the rows are only decoded.

use std::collections::{BTreeMap, BTreeSet};

use redb::ReadableTable;
use tidemark_core::Occurrence;
use tidemark_core::Projections;
use tidemark_core::findings::{HistoryRange, HistoryReader};
use tidemark_core::flaps::FlapEpisode;
use tidemark_core::incidents::{IncidentEntry, IncidentState};
use tidemark_core::timeline_rows::{IncidentEntryReader, read_written_count, read_written_entries};

use super::{Findings, VerifyError};
use crate::codec;
use crate::error::ReadFault;
use crate::store::incident_rows::{EntryKey, EntryReads, EntryTable};
use crate::tables::{self, Table, open_listed};

const NAME: &str = "incident_entries";

/// Checks `incident_entries`: each row decodes under its key and, given `fold` (the fold of the
/// whole log, every entry in memory), each incident's rows agree with its timeline.
pub(super) fn check(
    txn: &redb::ReadTransaction,
    fold: Option<&Projections>,
    findings: &mut Findings,
    checked: &mut BTreeMap<&'static str, u64>,
) -> Result<(), VerifyError> {
    let Some(table) = open_listed(txn, Table::IncidentEntries, tables::INCIDENT_ENTRIES)? else {
        return Ok(());
    };
    let mut with_rows: BTreeSet<String> = BTreeSet::new();
    let mut undecodable: BTreeSet<String> = BTreeSet::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let (incident, seq, written_at) = key.value();
        let shown = format!("({incident:?}, {seq}, {written_at})");
        *checked.entry(NAME).or_default() += 1;
        let decoded = if seq == 0 {
            codec::decode_write_out_header(incident, written_at, value.value()).map(|_| ())
        } else {
            codec::decode_entry_row(incident, seq, written_at, value.value()).map(|_| ())
        };
        if let Err(problem) = decoded {
            findings.add(NAME, shown, problem);
            undecodable.insert(incident.to_owned());
            continue;
        }
        with_rows.insert(incident.to_owned());
    }
    let Some(fold) = fold else {
        return Ok(());
    };
    let rows = EntryTable::over(table);
    let incidents = fold.incidents();
    for id in with_rows.difference(&undecodable) {
        let Some(incident) = incidents.incident(id) else {
            findings.add(
                NAME,
                format!("({id:?}, ..)"),
                "the fold of the log has no such incident",
            );
            continue;
        };
        let read = read_written_entries(&rows, id, 0, u64::MAX, usize::MAX)
            .and_then(|written| Ok((read_written_count(&rows, id, u64::MAX)?, written)));
        let (count, written) = match read {
            Ok(read) => read,
            Err(ReadFault::Storage(fault)) => return Err(fault.into()),
            Err(ReadFault::Corrupt(corrupt)) => {
                findings.add(NAME, corrupt.key, corrupt.problem);
                continue;
            }
        };
        if count != written.len() as u64 {
            findings.add(
                NAME,
                format!("({id:?}, 0, ..)"),
                format!(
                    "the latest header counts {count} entries, the rows hold {}",
                    written.len()
                ),
            );
        }
        let timeline = incidents.timeline(incident);
        let by_seq: BTreeMap<u64, _> = timeline.iter().map(|e| (e.seq, e)).collect();
        for entry in &written {
            let agrees = by_seq.get(&entry.seq).is_some_and(|want| {
                want.at == entry.at && entry.touches.iter().all(|t| want.touches.contains(t))
            });
            if !agrees {
                findings.add(
                    NAME,
                    format!("({id:?}, {}, ..)", entry.seq),
                    "differs from the incident's timeline in the fold of the log",
                );
            }
        }
        let open = incident.state() == IncidentState::Open;
        if !open && written.as_slice() != &*timeline {
            findings.add(
                NAME,
                format!("({id:?}, ..)"),
                format!(
                    "the incident is not open, so its {} timeline entries are all written out as they are; the rows hold {}",
                    timeline.len(),
                    written.len()
                ),
            );
        }
    }
    for incident in incidents.incidents() {
        if incident.state() != IncidentState::Open
            && !with_rows.contains(&incident.id)
            && !undecodable.contains(&incident.id)
        {
            findings.add(
                NAME,
                format!("({:?}, ..)", incident.id),
                "missing: the incident is not open, so its timeline is written out",
            );
        }
    }
    Ok(())
}

/// The incident rows of the transaction being verified, as the reader a snapshot of layout 3 is
/// restored with to compare it with the fold (its closed incidents' timelines are in the rows).
/// It reads no finding history (a live snapshot's findings are compared without it). A row
/// that does not decode reads as absent here: [`check`] lists it.
pub(super) struct RowsReader(Option<EntryTable<redb::ReadOnlyTable<EntryKey, &'static [u8]>>>);

impl std::fmt::Debug for RowsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RowsReader")
            .field(&self.0.is_some())
            .finish()
    }
}

impl RowsReader {
    /// The rows of `txn` (none in a file that lacks the table).
    pub(super) fn open(txn: &redb::ReadTransaction) -> Result<Self, VerifyError> {
        Ok(Self(
            open_listed(txn, Table::IncidentEntries, tables::INCIDENT_ENTRIES)?
                .map(EntryTable::over),
        ))
    }

    fn reads(&self) -> EntryReads<'_> {
        EntryReads(self.0.as_ref())
    }
}

impl IncidentEntryReader for RowsReader {
    fn written_entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Vec<IncidentEntry> {
        self.reads()
            .entries(incident, after, as_of, limit)
            .unwrap_or_default()
    }

    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64 {
        self.reads().count(incident, as_of).unwrap_or_default()
    }

    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool {
        self.reads().has(incident, seq, as_of).unwrap_or_default()
    }
}

impl HistoryReader for RowsReader {
    fn closed_occurrences(&self, _: &str, _: &str, _: &HistoryRange) -> Vec<(u64, Occurrence)> {
        Vec::new()
    }

    fn ended_flap_episodes(&self, _: &str, _: &str, _: &HistoryRange) -> Vec<(u64, FlapEpisode)> {
        Vec::new()
    }

    fn closed_occurrence_count(&self, _: &str, _: &str, _: u64) -> u64 {
        0
    }

    fn ended_flap_episode_count(&self, _: &str, _: &str, _: u64) -> u64 {
        0
    }
}
