//! The index entries of one event: its finding changes and the findings it names
//! (the finding index, `finding_groups`), its cluster and time, incident and type; and the event filters' indexes
//! (cluster, source, the cluster's clock marks, late events). Append, rebuild and verify derive
//! them here alike.

use std::collections::{BTreeMap, HashMap};

use tidemark_core::findings::FindingChange;
use tidemark_core::{Event, EventType, Payload, ResolutionKind};

use redb::ReadableTable;

use super::finding_index::{GroupTable, write_groups};
use crate::error::StorageFault;
use crate::tables::{self, change_bits};

/// The finding index entries of one event: what it changed, and the findings it names.
pub(crate) fn finding_index_entries(
    event: &Event,
    changes: &[(String, FindingChange)],
    bits: &mut BTreeMap<String, u8>,
) {
    bits.clear();
    for (check_key, change) in changes {
        let bit = match change {
            FindingChange::Opened => change_bits::OPENED,
            FindingChange::SeverityChanged => change_bits::SEVERITY_CHANGED,
            // The finding's own source resolved it: absence (a cycle) or the alerting system (an
            // alert event); the event's type tells which (`change_bits::names`).
            FindingChange::Resolved(ResolutionKind::Auto | ResolutionKind::Source) => {
                change_bits::RESOLVED_AUTO
            }
            FindingChange::Resolved(ResolutionKind::Manual) => change_bits::RESOLVED_MANUAL,
            FindingChange::Resolved(ResolutionKind::Recipe) => change_bits::RESOLVED_RECIPE,
            FindingChange::Resolved(ResolutionKind::Informational) => change_bits::INFORMATIONAL,
            FindingChange::FlapStarted(_) | FindingChange::FlapStopped(_) => change_bits::FLAP,
        };
        *bits.entry(check_key.clone()).or_default() |= bit;
    }
    let named: &[String] = match &event.payload {
        Payload::FindingResolved(r) => std::slice::from_ref(&r.check_key),
        Payload::IncidentOpened(i) | Payload::IncidentUpdated(i) | Payload::IncidentClosed(i) => {
            &i.check_keys
        }
        _ => &[],
    };
    for check_key in named {
        bits.entry(check_key.clone())
            .or_insert(change_bits::MENTIONED);
    }
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

/// The finding index entries of a batch (or a rebuild's chunk), gathered while its events are
/// applied and written at its end as groups (`finding_groups`, store layout 9).
///
/// An event's entries land at as many places of the index as it changed findings. Written one
/// B-tree entry each, in key order, a batch of the compare workload took 10 k instructions per
/// entry; grouped per finding (at most `codec::FINDING_GROUP_MAX_ENTRIES` a value), it takes
/// one insert per finding instead of one per change (issue 20; `cargo bench --bench keys`).
/// Nothing reads the index inside the transaction.
#[derive(Default)]
pub(super) struct FindingIndexBatch {
    /// The clusters the entries name, each once.
    clusters: Vec<String>,
    /// (index in `clusters`, check key, position, change bits).
    entries: Vec<(u32, String, u64, u8)>,
    bits: BTreeMap<String, u8>,
    /// One finding's entries, and an encoded group: scratch.
    group: Vec<(u64, u8)>,
    buffer: Vec<u8>,
}

impl FindingIndexBatch {
    /// Gathers the entries of the event at `seq`.
    pub(super) fn add(&mut self, seq: u64, event: &Event, changes: &[(String, FindingChange)]) {
        finding_index_entries(event, changes, &mut self.bits);
        if self.bits.is_empty() {
            return;
        }
        let cluster = match self.clusters.iter().rposition(|c| *c == event.cluster) {
            Some(at) => at,
            None => {
                self.clusters.push(event.cluster.clone());
                self.clusters.len() - 1
            }
        } as u32;
        for (check_key, bits) in std::mem::take(&mut self.bits) {
            self.entries.push((cluster, check_key, seq, bits));
        }
    }

    /// Writes the entries gathered, a group per finding (or several, when it has more than a
    /// group holds), and forgets them.
    pub(super) fn write(&mut self, groups: &mut GroupTable<'_>) -> Result<(), StorageFault> {
        let clusters = &self.clusters;
        self.entries.sort_unstable_by(|a, b| {
            (clusters[a.0 as usize].as_str(), a.1.as_str(), a.2).cmp(&(
                clusters[b.0 as usize].as_str(),
                b.1.as_str(),
                b.2,
            ))
        });
        for finding in self.entries.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let (cluster, check_key) = (clusters[finding[0].0 as usize].as_str(), &finding[0].1);
            self.group.clear();
            self.group
                .extend(finding.iter().map(|&(_, _, seq, bits)| (seq, bits)));
            write_groups(groups, cluster, check_key, &self.group, &mut self.buffer)?;
        }
        self.entries.clear();
        self.clusters.clear();
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
