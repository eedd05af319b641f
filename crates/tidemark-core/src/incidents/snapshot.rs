//! The incidents snapshot: the incidents in memory in the order they were created, the armed
//! resources, and the incidents' numbers when they are not simply 0, 1, 2... (a live state that
//! writes incidents out holds the open ones only; ADR 0006 step 4). Everything else the
//! projection keeps (indexes by id, by finding, of open incidents) is derived and rebuilt on
//! restore, so a decoded snapshot equals the snapshot of the live state.
//!
//! One type for both forms (see `crate::snapshot`): borrowed when written, owned when read.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::snapshot::{Borrow, Own, Take};

use super::{Incident, IncidentProjection};

/// Serializable state of the incidents projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "IncidentProjection")]
pub struct IncidentsSnapshot<'a> {
    /// The incidents in memory, in the order they were created.
    pub incidents: Cow<'a, [Incident]>,
    /// Resources armed by a change, waiting for an observation: (cluster, incident number).
    pub armed: Cow<'a, BTreeSet<(String, usize)>>,
    /// The incidents' numbers, when they are not their positions in `incidents` (`None`:
    /// incident `i` is number `i`, and the next one `incidents.len()`). Not in the bytes of
    /// this type, which snapshot formats before 9 hold as they are: a snapshot of format 9
    /// stores it next to them (the store's `SnapshotManifest`).
    #[serde(skip)]
    pub numbers: Option<IncidentNumbers>,
}

/// The numbers of the incidents a snapshot holds (ascending, one per incident), and the
/// number the next incident gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentNumbers {
    /// One per incident of the snapshot, ascending.
    pub numbers: Vec<usize>,
    /// The number the next incident gets.
    pub next: usize,
}

impl IncidentNumbers {
    /// `None` when the numbers are the positions (0, 1, 2... and next the count).
    fn unless_positions(self) -> Option<Self> {
        let positions = self.next == self.numbers.len()
            && self.numbers.iter().enumerate().all(|(i, &n)| i == n);
        (!positions).then_some(self)
    }
}

impl IncidentProjection {
    fn capture<'a, 'o, T: Take<'a, 'o>>(&'a self) -> IncidentsSnapshot<'o> {
        IncidentsSnapshot {
            incidents: T::take(self.incidents.incidents()),
            armed: T::take(&self.armed),
            numbers: self.numbers(),
        }
    }

    /// The numbers of the incidents in memory, unless they are their positions.
    fn numbers(&self) -> Option<IncidentNumbers> {
        IncidentNumbers {
            numbers: self.incidents.numbers().to_vec(),
            next: self.next_number,
        }
        .unless_positions()
    }

    /// A serializable copy of the state as it is kept: each incident with the timeline
    /// entries it holds in memory (those written out to rows are not in it; ADR 0006 step 3).
    /// The same bytes as [`Self::snapshot_serializer`].
    pub fn snapshot(&self) -> IncidentsSnapshot<'static> {
        self.capture::<Own>()
    }

    /// A serializable copy of the whole state: each incident with its whole timeline (the
    /// rows read back), as a projection that keeps every entry in memory holds it.
    /// Every incident is in it, those written out read back (ADR 0006 step 4), so the
    /// numbers are the positions.
    pub fn whole_snapshot(&self) -> IncidentsSnapshot<'static> {
        let every = self.every_incident_numbered();
        let numbers = IncidentNumbers {
            numbers: every.iter().map(|(number, _)| *number).collect(),
            next: self.next_number,
        }
        .unless_positions();
        let incidents = every
            .into_iter()
            .map(|(_, incident)| Incident {
                timeline: self.timeline(&incident).into_owned(),
                ..incident.into_owned()
            })
            .collect();
        IncidentsSnapshot {
            incidents: Cow::Owned(incidents),
            armed: Cow::Owned(self.armed.clone()),
            numbers,
        }
    }

    /// The snapshot borrowed from the live state: the same bytes as [`Self::snapshot`], nothing
    /// copied.
    pub fn snapshot_serializer(&self) -> IncidentsSnapshot<'_> {
        self.capture::<Borrow>()
    }

    /// Resumes from a snapshot.
    pub fn restore(snapshot: &IncidentsSnapshot<'_>) -> Self {
        Self::restore_owned(snapshot.clone())
    }

    /// [`Self::restore`], consuming the snapshot: the incidents move into the projection, and
    /// the indexes are rebuilt from them.
    pub fn restore_owned(snapshot: IncidentsSnapshot<'_>) -> Self {
        let incidents = snapshot.incidents.into_owned();
        let numbers = snapshot.numbers.unwrap_or_else(|| IncidentNumbers {
            numbers: (0..incidents.len()).collect(),
            next: incidents.len(),
        });
        let mut projection = Self {
            incidents: super::slots::Slots::from_parts(numbers.numbers, incidents),
            next_number: numbers.next,
            armed: snapshot.armed.into_owned(),
            ..Self::default()
        };
        let in_memory: Vec<usize> = projection.incidents.numbers().to_vec();
        for index in in_memory {
            let incident = &projection.incidents[index];
            projection.by_id.insert(incident.id.clone(), index);
            if incident.is_open() {
                Self::set_open(
                    &mut projection.open,
                    &mut projection.open_auto,
                    incident,
                    index,
                    true,
                );
            }
            projection.link_all(index);
        }
        projection
    }
}
