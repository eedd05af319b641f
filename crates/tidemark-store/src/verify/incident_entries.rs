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
use tidemark_core::Projections;
use tidemark_core::incidents::IncidentState;
use tidemark_core::timeline_rows::{read_written_count, read_written_entries};

use super::{Findings, VerifyError};
use crate::codec;
use crate::error::ReadFault;
use crate::store::incident_rows::EntryTable;
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
        let timeline = incidents.timeline(&incident);
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
