//! The incidents snapshot: the incidents in the order they opened and the armed resources.
//! Everything else the projection keeps (indexes by id, by finding, of open incidents) is derived
//! and rebuilt on restore, so a decoded snapshot equals the snapshot of the live state.
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
    /// Every incident, in the order they opened.
    pub incidents: Cow<'a, [Incident]>,
    /// Resources armed by a change, waiting for an observation: (cluster, incident index).
    pub armed: Cow<'a, BTreeSet<(String, usize)>>,
}

impl IncidentProjection {
    fn capture<'a, 'o, T: Take<'a, 'o>>(&'a self) -> IncidentsSnapshot<'o> {
        IncidentsSnapshot {
            incidents: T::take(self.incidents.as_slice()),
            armed: T::take(&self.armed),
        }
    }

    /// A serializable copy of the state as it is kept: each incident with the timeline
    /// entries it holds in memory (those written out to rows are not in it; ADR 0006 step 3).
    /// The same bytes as [`Self::snapshot_serializer`].
    pub fn snapshot(&self) -> IncidentsSnapshot<'static> {
        self.capture::<Own>()
    }

    /// A serializable copy of the whole state: each incident with its whole timeline (the
    /// rows read back), as a projection that keeps every entry in memory holds it.
    pub fn whole_snapshot(&self) -> IncidentsSnapshot<'static> {
        let incidents = self
            .incidents
            .iter()
            .map(|incident| Incident {
                timeline: self.timeline(incident).into_owned(),
                ..incident.clone()
            })
            .collect();
        IncidentsSnapshot {
            incidents: Cow::Owned(incidents),
            armed: Cow::Owned(self.armed.clone()),
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
        let mut projection = Self {
            incidents: snapshot.incidents.into_owned(),
            armed: snapshot.armed.into_owned(),
            ..Self::default()
        };
        for index in 0..projection.incidents.len() {
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
            let findings: Vec<(String, String)> = incident
                .findings
                .iter()
                .map(|f| (f.cluster.clone(), f.check_key.clone()))
                .collect();
            for (cluster, check_key) in findings {
                projection.link(&cluster, &check_key, index);
            }
        }
        projection
    }
}
