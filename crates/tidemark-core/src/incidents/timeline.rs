//! Reading an incident's timeline: the one way every reader (the API's timeline pages, the
//! incident page, the event filter by incident, the CLI, the corpus and the postmortem) gets
//! the entries. The entries of incidents that are not open may be written out to rows
//! (ADR 0006, step 3; `rows.rs`): each read unions the rows, as of the state's position, with
//! the entries in memory, by position.

use std::borrow::Cow;

use super::{Incident, IncidentEntry, IncidentProjection};

impl IncidentProjection {
    /// Every entry of `incident`'s timeline, in log order.
    pub fn timeline<'a>(&'a self, incident: &'a Incident) -> Cow<'a, [IncidentEntry]> {
        if !self.may_have_rows() {
            return Cow::Borrowed(&incident.timeline);
        }
        Cow::Owned(self.entries_after(incident, 0, usize::MAX))
    }

    /// The entries of `incident`'s timeline after position `after`, at most `limit`, in log
    /// order, and whether more follow.
    pub fn timeline_page(
        &self,
        incident: &Incident,
        after: u64,
        limit: usize,
    ) -> (Vec<IncidentEntry>, bool) {
        let mut entries = self.entries_after(incident, after, limit.saturating_add(1));
        let more = entries.len() > limit;
        entries.truncate(limit);
        (entries, more)
    }

    /// The positions of `incident`'s timeline entries after `after`, at most `limit`, in log
    /// order.
    pub fn timeline_positions(&self, incident: &Incident, after: u64, limit: usize) -> Vec<u64> {
        self.entries_after(incident, after, limit)
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    /// How many entries `incident`'s timeline holds.
    pub fn timeline_len(&self, incident: &Incident) -> usize {
        self.entry_count(incident)
    }
}
