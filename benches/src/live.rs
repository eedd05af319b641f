//! A projection set up as a store's live state folds (layout 5): the findings' history, the
//! incidents that close and the orphans of dropped traces are written out of memory after each
//! batch, here into a [`MemoryHistory`] behind a lock standing for the store's tables, and read
//! back through it. So a bench folds what `tidemark serve` folds, without redb.

use std::sync::{Arc, RwLock};

use tidemark_core::findings::{HistoryRange, HistoryReader, MemoryHistory};
use tidemark_core::flaps::FlapEpisode;
use tidemark_core::incident_bodies::{BodyRow, IncidentBodyReader};
use tidemark_core::incidents::IncidentEntry;
use tidemark_core::orphans::{DroppedOrphanReader, OrphanOrder, OrphanView};
use tidemark_core::timeline_rows::IncidentEntryReader;
use tidemark_core::{Occurrence, Projections};

/// What a store's tables hold of a live state's history, in memory.
#[derive(Debug, Default)]
pub struct Tables(RwLock<MemoryHistory>);

impl Tables {
    /// A live state reading and writing its history through fresh tables.
    pub fn live_projections() -> (Projections, Arc<Tables>) {
        let tables = Arc::new(Tables::default());
        let mut projections = Projections::new();
        projections.read_history_from(tables.clone(), None);
        projections.write_incidents_out();
        projections.write_dropped_orphans_out();
        (projections, tables)
    }

    /// Writes what the fold of `projections` wrote out since the last call, as a store's batch
    /// ending at position `at` does in its transaction.
    pub fn write_batch(&self, projections: &mut Projections, at: u64) {
        projections.write_out_closed_incidents(at);
        let history = projections.take_history_records();
        let entries = projections.take_timeline_records();
        let bodies = projections.take_incident_body_records();
        let orphans = projections.take_dropped_orphan_records();
        let mut tables = self.0.write().expect("the tables' lock");
        for record in history {
            record.replay_into(&mut *tables);
        }
        tables.write_incident_entries(&entries);
        tables.write_incident_bodies(&bodies);
        tables.write_dropped_orphans(&orphans);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MemoryHistory> {
        self.0.read().expect("the tables' lock")
    }
}

impl HistoryReader for Tables {
    fn closed_occurrences(
        &self,
        cluster: &str,
        key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, Occurrence)> {
        self.read().closed_occurrences(cluster, key, range)
    }

    fn ended_flap_episodes(
        &self,
        cluster: &str,
        key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, FlapEpisode)> {
        self.read().ended_flap_episodes(cluster, key, range)
    }

    fn closed_occurrence_count(&self, cluster: &str, key: &str, as_of: u64) -> u64 {
        self.read().closed_occurrence_count(cluster, key, as_of)
    }

    fn ended_flap_episode_count(&self, cluster: &str, key: &str, as_of: u64) -> u64 {
        self.read().ended_flap_episode_count(cluster, key, as_of)
    }
}

impl IncidentEntryReader for Tables {
    fn written_entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Vec<IncidentEntry> {
        self.read().written_entries(incident, after, as_of, limit)
    }

    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64 {
        self.read().written_entry_count(incident, as_of)
    }

    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool {
        self.read().has_written_entry(incident, seq, as_of)
    }
}

impl IncidentBodyReader for Tables {
    fn incident_body(&self, id: &str, as_of: u64) -> Option<BodyRow> {
        self.read().incident_body(id, as_of)
    }

    fn incidents_in_opening_order(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        as_of: u64,
        visit: &mut dyn FnMut(BodyRow) -> bool,
    ) {
        self.read()
            .incidents_in_opening_order(cluster, after, as_of, visit)
    }
}

impl DroppedOrphanReader for Tables {
    fn dropped_orphans(
        &self,
        cluster: &str,
        start: std::ops::Bound<&OrphanOrder>,
        as_of: u64,
        visit: &mut dyn FnMut(OrphanView) -> bool,
    ) {
        self.read().dropped_orphans(cluster, start, as_of, visit)
    }
}
