//! The index entries of one event: its finding changes and the findings it names
//! (`by_finding`), its cluster and time, incident and type. Append, rebuild and verify derive
//! them here alike.

use std::collections::BTreeMap;

use tidemark_core::findings::FindingChange;
use tidemark_core::{Event, EventType, Payload, ResolutionKind};

use crate::error::StorageFault;
use crate::tables::change_bits;

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
            FindingChange::Resolved(ResolutionKind::Auto) => change_bits::RESOLVED_AUTO,
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

#[allow(clippy::too_many_arguments)]
pub(super) fn index_event(
    seq: u64,
    event: &Event,
    changes: &[(String, FindingChange)],
    bits: &mut BTreeMap<String, u8>,
    by_finding: &mut redb::Table<(&str, &str, u64), u8>,
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
    finding_index_entries(event, changes, bits);
    for (check_key, b) in bits.iter() {
        by_finding.insert((event.cluster.as_str(), check_key.as_str(), seq), *b)?;
    }
    Ok(())
}
