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
    /// (the whole log when `None`), and whether it was cut: a type of event with more than
    /// [`MAX_MAINTENANCE_EVENTS_READ`] of them is read that far, and the book ends at the
    /// position where the first type was cut.
    pub fn maintenance_book(
        &self,
        cluster: &str,
        up_to: Option<u64>,
    ) -> Result<(WindowBook, bool), QueryError> {
        // Each type is a stream in log order. A stream cut at the limit is complete only up to
        // the last position it read: the book is read up to the smallest such position, so a
        // window is never shown without the cancel that ended it.
        let mut events = Vec::new();
        let mut complete_to = up_to.unwrap_or(u64::MAX);
        for event_type in [
            EventType::MaintenanceScheduled,
            EventType::MaintenanceCancelled,
        ] {
            let filter = EventFilter {
                cluster: Some(cluster.to_owned()),
                event_type: Some(event_type),
                ..EventFilter::default()
            };
            let mut read = 0;
            let mut after = 0;
            loop {
                let page = self.events_page(&filter, after, 1_000)?;
                let mut past_end = false;
                for (seq, stored) in page.events {
                    if seq > complete_to {
                        past_end = true;
                        break;
                    }
                    events.push((seq, stored.event));
                    read += 1;
                    if read == MAX_MAINTENANCE_EVENTS_READ {
                        complete_to = seq;
                        past_end = true;
                        break;
                    }
                }
                match page.next {
                    Some(next) if !past_end => after = next,
                    _ => break,
                }
            }
        }
        let cut = complete_to < up_to.unwrap_or(u64::MAX);
        events.retain(|(seq, _)| *seq <= complete_to);
        events.sort_by_key(|(seq, _)| *seq);
        let book = WindowBook::from_events(events.iter().map(|(seq, event)| (*seq, event)));
        Ok((book, cut))
    }
}
