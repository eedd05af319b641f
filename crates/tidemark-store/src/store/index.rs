//! The index entries of one event: its finding changes and the findings it names (the finding
//! index, `finding_groups`), its cluster and time, incident and type; and the event filters'
//! indexes (cluster, source, the cluster's clock marks, late events). Append, rebuild and verify
//! derive them here alike.

use std::collections::HashMap;

use tidemark_core::findings::FindingChange;
use tidemark_core::{Event, EventType, Payload, ResolutionKind};

use redb::ReadableTable;

use super::finding_index::{GroupTable, write_groups};
use crate::error::StorageFault;
use crate::tables::{self, change_bits};

/// The finding index entries of one event: what it changed, and the findings it names, each
/// finding once with its change bits, in check key order (borrowed from the event and its
/// changes: nothing is allocated per entry).
pub(crate) fn finding_index_entries<'a>(
    event: &'a Event,
    changes: &'a [(String, FindingChange)],
) -> Vec<(&'a str, u8)> {
    let mut entries: Vec<(&str, u8)> = changes
        .iter()
        .map(|(check_key, change)| {
            let bit = match change {
                FindingChange::Opened => change_bits::OPENED,
                FindingChange::SeverityChanged => change_bits::SEVERITY_CHANGED,
                // The finding's own source resolved it: absence (a cycle) or the alerting
                // system (an alert event); the event's type tells which (`change_bits::names`).
                FindingChange::Resolved(ResolutionKind::Auto | ResolutionKind::Source) => {
                    change_bits::RESOLVED_AUTO
                }
                FindingChange::Resolved(ResolutionKind::Manual) => change_bits::RESOLVED_MANUAL,
                FindingChange::Resolved(ResolutionKind::Recipe) => change_bits::RESOLVED_RECIPE,
                FindingChange::Resolved(ResolutionKind::Informational) => {
                    change_bits::INFORMATIONAL
                }
                FindingChange::FlapStarted(_) | FindingChange::FlapStopped(_) => change_bits::FLAP,
            };
            (check_key.as_str(), bit)
        })
        .collect();
    let named: &[String] = match &event.payload {
        Payload::FindingResolved(r) => std::slice::from_ref(&r.check_key),
        Payload::IncidentOpened(i) | Payload::IncidentUpdated(i) | Payload::IncidentClosed(i) => {
            &i.check_keys
        }
        _ => &[],
    };
    // A finding named without a change is mentioned; the bit is dropped below where it also
    // changed.
    entries.extend(
        named
            .iter()
            .map(|check_key| (check_key.as_str(), change_bits::MENTIONED)),
    );
    // One entry per finding: its bits joined (a stable sort keeps a finding's changes before
    // its mention).
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.dedup_by(|later, kept| {
        if later.0 != kept.0 {
            return false;
        }
        if kept.1 == change_bits::MENTIONED {
            kept.1 = later.1;
        } else if later.1 != change_bits::MENTIONED {
            kept.1 |= later.1;
        }
        true
    });
    entries
}

/// The incident an event belongs to, if it names one.
pub(crate) fn incident_of(event: &Event) -> Option<&str> {
    match &event.payload {
        Payload::NoteAdded(note) => note.incident.as_deref(),
        Payload::IncidentOpened(i) | Payload::IncidentUpdated(i) | Payload::IncidentClosed(i) => {
            Some(&i.incident)
        }
        _ => None,
    }
}

pub(crate) fn type_index(event_type: EventType) -> u8 {
    EventType::ALL
        .iter()
        .position(|t| *t == event_type)
        .expect("every type is in ALL") as u8
}

/// Writes the index entries of the event at `seq`; its `by_finding` entries are gathered in
/// `findings`, which the caller writes at the end of the transaction.
pub(super) fn index_event(
    seq: u64,
    event: &Event,
    changes: &[(String, FindingChange)],
    findings: &mut FindingIndexBatch,
    by_cluster_time: &mut redb::Table<(&str, i64, u64), u8>,
    by_incident: &mut redb::Table<(&str, u64), ()>,
    by_type: &mut redb::Table<(&str, u64), ()>,
) -> Result<(), StorageFault> {
    let event_type = event.event_type();
    by_cluster_time.insert(
        (event.cluster.as_str(), event.time.unix_nanos(), seq),
        type_index(event_type),
    )?;
    by_type.insert((event_type.as_str(), seq), ())?;
    if let Some(incident) = incident_of(event) {
        by_incident.insert((incident, seq), ())?;
    }
    findings.add(seq, event, changes);
    Ok(())
}

/// Check key → a finding's entries (position, change bits), positions increasing.
type EntriesByFinding = HashMap<String, Vec<(u64, u8)>>;

/// The finding index entries of a batch (or a rebuild's chunk), gathered while its events are
/// applied and written at its end as groups (`finding_groups`, store layout 9).
///
/// An event's entries land at as many places of the index as it changed findings. Written one
/// B-tree entry each, in key order, a batch of the compare workload took 10 k instructions per
/// entry; grouped per finding (at most `codec::FINDING_GROUP_MAX_ENTRIES` a value), it takes
/// one insert per finding instead of one per change (issue 20; `cargo bench --bench keys`).
/// The entries are gathered per finding as they come (positions increase), so only the
/// findings, not the entries, are sorted at the end. Nothing reads the index inside the
/// transaction.
#[derive(Default)]
pub(super) struct FindingIndexBatch {
    /// The clusters the entries name, each once, with each finding's entries (position,
    /// change bits) in this batch.
    clusters: Vec<(String, EntriesByFinding)>,
    buffer: Vec<u8>,
}

impl FindingIndexBatch {
    /// Gathers the entries of the event at `seq`.
    pub(super) fn add(&mut self, seq: u64, event: &Event, changes: &[(String, FindingChange)]) {
        let entries = finding_index_entries(event, changes);
        if entries.is_empty() {
            return;
        }
        let at = match self.clusters.iter().rposition(|c| c.0 == event.cluster) {
            Some(at) => at,
            None => {
                self.clusters.push((event.cluster.clone(), HashMap::new()));
                self.clusters.len() - 1
            }
        };
        let findings = &mut self.clusters[at].1;
        for (check_key, bits) in entries {
            match findings.get_mut(check_key) {
                Some(held) => held.push((seq, bits)),
                None => {
                    findings.insert(check_key.to_owned(), vec![(seq, bits)]);
                }
            }
        }
    }

    /// Writes the entries gathered, in key order, a group per finding (or several, when it has
    /// more than a group holds), and forgets them.
    pub(super) fn write(&mut self, groups: &mut GroupTable<'_>) -> Result<(), StorageFault> {
        self.clusters.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (cluster, findings) in self.clusters.drain(..) {
            let mut findings: Vec<(String, Vec<(u64, u8)>)> = findings.into_iter().collect();
            findings.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (check_key, entries) in &findings {
                write_groups(groups, &cluster, check_key, entries, &mut self.buffer)?;
            }
        }
        Ok(())
    }
}

/// The event filters' index tables (`by_cluster`, `by_source`, `cluster_clock`, `late_events`)
/// open in a write transaction, with the clock of each cluster's last mark as read or written
/// in it.
pub(super) struct FilterIndexes<'txn> {
    by_cluster: redb::Table<'txn, (&'static str, u64), i64>,
    by_source: redb::Table<'txn, (&'static str, u64), ()>,
    cluster_clock: redb::Table<'txn, (&'static str, i64, u64), ()>,
    late_events: redb::Table<'txn, (&'static str, u64), i64>,
    /// Cluster → the clock of its last mark (`None`: it has none yet).
    last_marks: HashMap<String, Option<i64>>,
}

impl<'txn> FilterIndexes<'txn> {
    pub(super) fn open(txn: &'txn redb::WriteTransaction) -> Result<Self, StorageFault> {
        Ok(Self {
            by_cluster: txn.open_table(tables::BY_CLUSTER)?,
            by_source: txn.open_table(tables::BY_SOURCE)?,
            cluster_clock: txn.open_table(tables::CLUSTER_CLOCK)?,
            late_events: txn.open_table(tables::LATE_EVENTS)?,
            last_marks: HashMap::new(),
        })
    }

    /// Writes the entries of the event at `seq` (positions must come in increasing order).
    pub(super) fn add(&mut self, seq: u64, event: &Event) -> Result<(), StorageFault> {
        let cluster = event.cluster.as_str();
        let time = event.time.unix_nanos();
        self.by_cluster.insert((cluster, seq), time)?;
        self.by_source.insert((event.source.as_str(), seq), ())?;
        let last_mark = match self.last_marks.get(cluster) {
            Some(mark) => *mark,
            None => {
                let mark = self
                    .cluster_clock
                    .range((cluster, i64::MIN, 0)..=(cluster, i64::MAX, u64::MAX))?
                    .next_back()
                    .transpose()?
                    .map(|(key, _)| key.value().1);
                self.last_marks.insert(cluster.to_owned(), mark);
                mark
            }
        };
        match last_mark {
            Some(clock) if time < clock.saturating_add(tables::CLOCK_MARK_NS) => {
                if time < clock.saturating_sub(tables::LATE_EVENT_NS) {
                    self.late_events.insert((cluster, seq), time)?;
                }
            }
            _ => {
                self.cluster_clock.insert((cluster, time, seq), ())?;
                self.last_marks.insert(cluster.to_owned(), Some(time));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_gives_each_finding_one_entry_with_its_bits_joined() {
        let event = tidemark_core::decode_event(
            r#"{"id":"i","schema":1,"type":"incident.updated","time":"2026-03-02T00:00:00Z","source":"t","cluster":"c","data":{"incident":"inc","severity":"error","summary":"s","check_keys":["b","a","b","z"]}}"#,
        );
        let event = match event {
            Ok(event) => event,
            Err(error) => panic!("{error}"),
        };
        let changes = vec![
            ("b".to_owned(), FindingChange::Opened),
            ("a".to_owned(), FindingChange::SeverityChanged),
            (
                "b".to_owned(),
                FindingChange::FlapStarted(tidemark_core::flaps::FlapDetector::Count),
            ),
        ];
        assert_eq!(
            finding_index_entries(&event, &changes),
            [
                ("a", change_bits::SEVERITY_CHANGED),
                ("b", change_bits::OPENED | change_bits::FLAP),
                ("z", change_bits::MENTIONED),
            ]
        );
        assert!(
            finding_index_entries(&event, &[])
                .iter()
                .all(|e| e.1 == change_bits::MENTIONED)
        );
    }
}
