//! Reading an incident's timeline: the one way every reader (the API's timeline pages, the
//! incident page, the event filter by incident, the CLI, the corpus and the postmortem) gets
//! the entries, so that where they are kept can change behind it (ADR 0006, step 3: the
//! entries of closed incidents move to tables).

use std::borrow::Cow;

use super::{Incident, IncidentEntry, IncidentProjection};

impl IncidentProjection {
    /// Every entry of `incident`'s timeline, in log order.
    pub fn timeline<'a>(&'a self, incident: &'a Incident) -> Cow<'a, [IncidentEntry]> {
        Cow::Borrowed(&incident.timeline)
    }

    /// The entries of `incident`'s timeline after position `after`, at most `limit`, in log
    /// order, and whether more follow.
    pub fn timeline_page(
        &self,
        incident: &Incident,
        after: u64,
        limit: usize,
    ) -> (Vec<IncidentEntry>, bool) {
        let entries = &incident.timeline;
        let start = entries.partition_point(|e| e.seq <= after);
        let end = start.saturating_add(limit).min(entries.len());
        (entries[start..end].to_vec(), entries.len() > end)
    }

    /// The positions of `incident`'s timeline entries after `after`, at most `limit`, in log
    /// order.
    pub fn timeline_positions(&self, incident: &Incident, after: u64, limit: usize) -> Vec<u64> {
        let entries = &incident.timeline;
        let start = entries.partition_point(|e| e.seq <= after);
        entries[start..].iter().take(limit).map(|e| e.seq).collect()
    }

    /// How many entries `incident`'s timeline holds.
    pub fn timeline_len(&self, incident: &Incident) -> usize {
        incident.timeline.len()
    }
}
