//! The incidents a projection holds in memory, by number (incidents are numbered 0, 1, 2... as
//! they are created): every incident where nothing is written out, the open ones (and those an
//! event is changing) where the live state writes incidents out (ADR 0006, step 4). Two
//! parallel vectors sorted by number, so a snapshot borrows the incidents as a slice.

use std::ops::{Index, IndexMut};

use super::Incident;

/// The incidents in memory, by number, ascending.
#[derive(Clone, Debug, Default)]
pub(super) struct Slots {
    numbers: Vec<usize>,
    incidents: Vec<Incident>,
}

impl Slots {
    /// From incidents and their numbers (ascending), as a snapshot holds them.
    pub(super) fn from_parts(numbers: Vec<usize>, incidents: Vec<Incident>) -> Self {
        debug_assert!(numbers.windows(2).all(|w| w[0] < w[1]));
        debug_assert_eq!(numbers.len(), incidents.len());
        Self { numbers, incidents }
    }

    /// The incident numbered `number`, if in memory.
    pub(super) fn get(&self, number: usize) -> Option<&Incident> {
        let at = self.numbers.binary_search(&number).ok()?;
        Some(&self.incidents[at])
    }

    /// The incident numbered `number`, if in memory.
    pub(super) fn get_mut(&mut self, number: usize) -> Option<&mut Incident> {
        let at = self.numbers.binary_search(&number).ok()?;
        Some(&mut self.incidents[at])
    }

    /// Holds `incident` as number `number` (replacing one held under it).
    pub(super) fn insert(&mut self, number: usize, incident: Incident) {
        match self.numbers.binary_search(&number) {
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
