//! A cluster's maintenance windows as its log tells them (ADR 0007): every window ever
//! scheduled, with when its effect ended, read from the cluster's `maintenance.scheduled` and
//! `maintenance.cancelled` events through the type and cluster indexes. What the lanes' bands
//! and a postmortem read: a window that ended long ago is no longer in the fold's state, and
//! reading it costs what the cluster's maintenance events cost, never the log.

use tidemark_core::EventType;
use tidemark_core::maintenance::WindowBook;

use super::{EventFilter, Store};
use crate::error::QueryError;

/// The most maintenance events of one cluster a book is read from (the windows of the first
/// ones are kept, and the book says it was cut).
pub const MAX_MAINTENANCE_EVENTS_READ: usize = 10_000;

impl Store {
    /// The book of `cluster`'s maintenance windows from its events at positions up to `up_to`
    /// (the whole log when `None`), and whether it was cut at
    /// [`MAX_MAINTENANCE_EVENTS_READ`] events.
    pub fn maintenance_book(
        &self,
        cluster: &str,
        up_to: Option<u64>,
    ) -> Result<(WindowBook, bool), QueryError> {
        let mut events = Vec::new();
        let mut cut = false;
        for event_type in [
            EventType::MaintenanceScheduled,
            EventType::MaintenanceCancelled,
        ] {
            let filter = EventFilter {
                cluster: Some(cluster.to_owned()),
                event_type: Some(event_type),
                ..EventFilter::default()
            };
            let mut after = 0;
            loop {
                let page = self.events_page(&filter, after, 1_000)?;
                for (seq, stored) in page.events {
                    if up_to.is_some_and(|last| seq > last) {
                        continue;
                    }
                    events.push((seq, stored.event));
                }
                match page.next {
                    Some(next) if events.len() < MAX_MAINTENANCE_EVENTS_READ => after = next,
                    Some(_) => {
                        cut = true;
                        break;
                    }
                    None => break,
                }
            }
        }
        events.sort_by_key(|(seq, _)| *seq);
        if events.len() > MAX_MAINTENANCE_EVENTS_READ {
            events.truncate(MAX_MAINTENANCE_EVENTS_READ);
            cut = true;
        }
        let book = WindowBook::from_events(events.iter().map(|(seq, event)| (*seq, event)));
        Ok((book, cut))
    }
}
