//! The incidents a projection holds in memory, by number (incidents are numbered 0, 1, 2... as
//! they are created): every incident where nothing is written out, the open ones (and those an
//! event is changing) where the live state writes incidents out (ADR 0006, step 4). Two
//! parallel vectors sorted by number, so a snapshot borrows the incidents as a slice.
//!
//! Every change of an incident goes through [`Slots::get_mut`] (and `IndexMut`) or
//! [`Slots::insert`]: while an event's changes are watched (ADR 0008), the first of these for a
//! number in the event notes the incident's value before the event.

use std::ops::{Index, IndexMut};

use super::Incident;
use super::watch::IncidentBefore;

/// The incidents in memory, by number, ascending.
#[derive(Clone, Debug, Default)]
pub(super) struct Slots {
    numbers: Vec<usize>,
    incidents: Vec<Incident>,
    /// `Some` while an event's changes are watched: the incidents it may change, by number
    /// (ascending, each once), with their values before the event.
    watch: Option<Vec<(usize, IncidentBefore)>>,
}

impl Slots {
    /// From incidents and their numbers (ascending), as a snapshot holds them.
    pub(super) fn from_parts(numbers: Vec<usize>, incidents: Vec<Incident>) -> Self {
        debug_assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        debug_assert_eq!(numbers.len(), incidents.len());
        Self {
            numbers,
            incidents,
            watch: None,
        }
    }

    /// From now on until [`Self::take_watched`], every incident about to change is noted with
    /// its value before.
    pub(super) fn watch(&mut self) {
        self.watch = Some(Vec::new());
    }

    /// The incidents noted since [`Self::watch`], by number, with their values before; nothing
    /// is noted from now on.
    pub(super) fn take_watched(&mut self) -> Vec<(usize, IncidentBefore)> {
        self.watch.take().unwrap_or_default()
    }

    /// The incident numbered `number`, if in memory.
    pub(super) fn get(&self, number: usize) -> Option<&Incident> {
        let at = self.numbers.binary_search(&number).ok()?;
        Some(&self.incidents[at])
    }

    /// The incident numbered `number`, if in memory, to change.
    pub(super) fn get_mut(&mut self, number: usize) -> Option<&mut Incident> {
        let at = self.numbers.binary_search(&number).ok()?;
        let incident = &mut self.incidents[at];
        if let Some(watched) = &mut self.watch {
            note_before(watched, number, incident);
        }
        Some(incident)
    }

    /// Holds `incident` as number `number` (replacing one held under it): a new incident, or
    /// one read back from its rows.
    pub(super) fn insert(&mut self, number: usize, incident: Incident) {
        let found = self.numbers.binary_search(&number);
        if let Some(watched) = &mut self.watch {
            let before = match found {
                Ok(at) => &self.incidents[at],
                Err(_) => &incident,
            };
            note_before(watched, number, before);
        }
        match found {
            Ok(at) => self.incidents[at] = incident,
            Err(at) => {
                self.numbers.insert(at, number);
                self.incidents.insert(at, incident);
            }
        }
    }

    /// Forgets the incident numbered `number`.
    pub(super) fn remove(&mut self, number: usize) -> Option<Incident> {
        let at = self.numbers.binary_search(&number).ok()?;
        self.numbers.remove(at);
        Some(self.incidents.remove(at))
    }

    /// The incidents in memory with their numbers, ascending.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Incident)> {
        self.numbers.iter().copied().zip(&self.incidents)
    }

    /// The numbers in memory, ascending.
    pub(super) fn numbers(&self) -> &[usize] {
        &self.numbers
    }

    /// The incidents in memory, by number.
    pub(super) fn incidents(&self) -> &[Incident] {
        &self.incidents
    }
}

/// Notes incident `number`'s value before the event, unless noted already in the event.
fn note_before(watched: &mut Vec<(usize, IncidentBefore)>, number: usize, incident: &Incident) {
    if let Err(at) = watched.binary_search_by_key(&number, |&(n, _)| n) {
        watched.insert(at, (number, IncidentBefore::of(incident)));
    }
}

impl Index<usize> for Slots {
    type Output = Incident;

    fn index(&self, number: usize) -> &Incident {
        self.get(number)
            .unwrap_or_else(|| panic!("incident {number} is not in memory"))
    }
}

impl IndexMut<usize> for Slots {
    fn index_mut(&mut self, number: usize) -> &mut Incident {
        self.get_mut(number)
            .unwrap_or_else(|| panic!("incident {number} is not in memory"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::incidents::IncidentKind;
    use crate::timestamp::Timestamp;

    fn incident(id: &str, closed_seq: Option<u64>) -> Incident {
        Incident {
            id: id.to_owned(),
            kind: IncidentKind::Explicit,
            cluster: "c".to_owned(),
            declared_title: None,
            declared_severity: None,
            summary: None,
            opened_at: Timestamp::from_unix_nanos(0),
            opened_seq: 1,
            closed_at: None,
            closed_seq,
            merged_into: None,
            findings: Vec::new(),
            last_opened_at: Timestamp::from_unix_nanos(0),
            namespaces: BTreeSet::new(),
            components: BTreeSet::new(),
            notes: BTreeMap::new(),
            layers: BTreeMap::new(),
            timeline: Vec::new(),
        }
    }

    /// While watched, every incident an event may change is noted once, with its value at the
    /// first change: through `get_mut` / `IndexMut`, and at `insert` (an incident read back or
    /// created is noted even when nothing changes it afterwards); reads note nothing.
    #[test]
    fn watched_slots_note_each_incident_about_to_change_once_with_its_first_value() {
        let mut slots =
            Slots::from_parts(vec![0, 2], vec![incident("a", None), incident("b", None)]);
        slots.get_mut(0).unwrap().closed_seq = Some(5);
        slots.watch();
        let _ = &slots[2];
        slots[0].closed_seq = None;
        slots.get_mut(0).unwrap().closed_seq = Some(9);
        slots.insert(1, incident("read back", Some(3)));
        assert_eq!(
            slots.take_watched(),
            vec![
                (0, IncidentBefore::of(&incident("a", Some(5)))),
                (1, IncidentBefore::of(&incident("read back", Some(3)))),
            ]
        );
        // Not watched: nothing noted.
        slots[2].closed_seq = Some(1);
        assert!(slots.take_watched().is_empty());
    }
}
