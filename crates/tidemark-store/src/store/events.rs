//! Stored events read from the log: by position, by id, and in pages filtered by cluster,
//! type, time, finding, incident or source (candidates from the most selective index, within a
//! scan budget).

use std::ops::RangeInclusive;

use tidemark_core::{EventType, Timestamp};

use super::Store;
use super::restore::decode_log;
use crate::codec::StoredEvent;
use crate::error::QueryError;
use crate::tables;

/// Which events `Store::events_page` returns (every filter given must hold).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// The event's cluster.
    pub cluster: Option<String>,
    /// The event's type.
    pub event_type: Option<EventType>,
    /// Event time at or after.
    pub since: Option<Timestamp>,
    /// Event time at or before.
    pub until: Option<Timestamp>,
    /// Events that changed or named this finding (in `cluster`, or in any cluster).
    pub check_key: Option<String>,
    /// Events on this incident's timeline.
    pub incident: Option<String>,
    /// The event's source.
    pub source: Option<String>,
}

/// One page of events, in log order.
#[derive(Clone, Debug, PartialEq)]
pub struct EventsPage {
    /// The events, with their positions.
    pub events: Vec<(u64, StoredEvent)>,
    /// Pass as `after` for the next page; `None` when there are no more. Always a position
    /// every matching event up to which is on this page or an earlier one.
    pub next: Option<u64>,
    /// The page ended early because the scan budget was spent (it holds fewer than `limit`
    /// events, maybe none, and `next` goes on from the last position read).
    pub scan_budget_reached: bool,
}

/// Candidate positions one `events_page` call reads at most by default
/// ([`StoreConfig::events_scan_budget`](crate::StoreConfig::events_scan_budget)): a rare filter
/// answers a short (even empty) page with a `next` cursor instead of scanning the whole log in
/// one request.
pub const EVENTS_SCAN_BUDGET: usize = 20_000;

/// Positions in `positions` of the finding index entries of `check_key` in each of `clusters`,
/// merged in position order (one range per cluster, the smallest head taken each time): the
/// first `take` of them.
fn merged_finding_positions(
    index: &redb::ReadOnlyTable<(&'static str, &'static str, u64), u8>,
    clusters: &[String],
    check_key: &str,
    positions: RangeInclusive<u64>,
    take: usize,
) -> Result<Vec<u64>, QueryError> {
    use std::cmp::Reverse;
    let (from, to) = (*positions.start(), *positions.end());
    let mut ranges = Vec::new();
    let mut heads = std::collections::BinaryHeap::new();
    for cluster in clusters {
        let mut range =
            index.range((cluster.as_str(), check_key, from)..=(cluster.as_str(), check_key, to))?;
        if let Some(entry) = range.next() {
            heads.push(Reverse((entry?.0.value().2, ranges.len())));
            ranges.push(range);
        }
    }
    let mut merged = Vec::new();
    while merged.len() < take {
        let Some(Reverse((seq, source))) = heads.pop() else {
            break;
        };
        merged.push(seq);
        if let Some(entry) = ranges[source].next() {
            heads.push(Reverse((entry?.0.value().2, source)));
        }
    }
    Ok(merged)
}

impl Store {
    /// Stored events at positions `from..`, at most `limit`, in log order.
    pub fn events(&self, from: u64, limit: usize) -> Result<Vec<(u64, StoredEvent)>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let mut out = Vec::new();
        for entry in log.range(from..)?.take(limit) {
            let (key, value) = entry?;
            out.push((key.value(), decode_log(key.value(), value.value())?));
        }
        Ok(out)
    }

    /// Events after position `after` matching `filter`, in log order, at most `limit`, up to the
    /// checkpoint as of the call. Candidates come from the incident timeline, the finding index
    /// (one range per cluster, merged in position order) or the type index when the filter names
    /// one, else from the log; at most
    /// [`StoreConfig::events_scan_budget`](crate::StoreConfig::events_scan_budget) candidates are
    /// read per call. The candidates are the first ones after `after` in position order, so
    /// `next` is a position with nothing matching left behind it: a budget may end a page early,
    /// never make the cursor skip.
    pub fn events_page(
        &self,
        filter: &EventFilter,
        after: u64,
        limit: usize,
    ) -> Result<EventsPage, QueryError> {
        let limit = limit.max(1);
        let budget = self.config.events_scan_budget.max(1);
        // What the live state names, with the checkpoint it is at; read before the database
        // (lock order). Reading no further than that checkpoint keeps a cluster that
        // a later batch adds from being passed over while its positions are read.
        let (up_to, incident_seqs, finding_clusters) = {
            let state = self.read_state();
            let p = &state.projections;
            let incident_seqs = filter.incident.as_ref().map(|id| {
                p.incidents()
                    .incident(id)
                    .map(|i| {
                        let start = i.timeline.partition_point(|e| e.seq <= after);
                        i.timeline[start..]
                            .iter()
                            .map(|e| e.seq)
                            .take(budget.saturating_add(1))
                            .collect::<Vec<u64>>()
                    })
                    .unwrap_or_default()
            });
            let finding_clusters: Vec<String> = match (&filter.check_key, &filter.cluster) {
                (None, _) => Vec::new(),
                (Some(_), Some(c)) => vec![c.clone()],
                (Some(_), None) => p.findings().cluster_names(),
            };
            (state.last_seq, incident_seqs, finding_clusters)
        };
        if after >= up_to {
            return Ok(EventsPage {
                events: Vec::new(),
                next: None,
                scan_budget_reached: false,
            });
        }
        let from = after + 1;
        let take = budget.saturating_add(1);
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        // Candidate positions, ascending, from the most selective source the filter names: the
        // first `budget + 1` of them (the extra one says whether more follow).
        let mut candidates: Vec<u64> = if let Some(seqs) = incident_seqs {
            seqs
        } else if let Some(check_key) = &filter.check_key {
            let index = txn.open_table(tables::BY_FINDING)?;
            merged_finding_positions(&index, &finding_clusters, check_key, from..=up_to, take)?
        } else if let Some(event_type) = filter.event_type {
            let index = txn.open_table(tables::BY_TYPE)?;
            index
                .range((event_type.as_str(), from)..=(event_type.as_str(), up_to))?
                .take(take)
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?
        } else {
            log.range(from..=up_to)?
                .take(take)
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?
        };
        debug_assert!(
            candidates.is_sorted(),
            "candidates are read in position order"
        );
        let complete = candidates.len() <= budget;
        candidates.truncate(budget);
        let mut events = Vec::new();
        let mut last_read = after;
        for seq in candidates {
            if events.len() == limit {
                // Full: the next page starts after the last event on this one.
                return Ok(EventsPage {
                    events,
                    next: Some(last_read),
                    scan_budget_reached: false,
                });
            }
            last_read = seq;
            let Some(bytes) = log.get(seq)? else { continue };
            let stored = decode_log(seq, bytes.value())?;
            let e = &stored.event;
            let keep = filter.cluster.as_ref().is_none_or(|c| *c == e.cluster)
                && filter.event_type.is_none_or(|t| t == e.event_type())
                && filter.since.is_none_or(|t| e.time >= t)
                && filter.until.is_none_or(|t| e.time <= t)
                && filter.source.as_ref().is_none_or(|s| *s == e.source);
            if keep {
                events.push((seq, stored));
            }
        }
        // Every candidate read: the end, or (budget spent) go on after the last one read.
        Ok(EventsPage {
            events,
            next: (!complete).then_some(last_read),
            scan_budget_reached: !complete,
        })
    }

    /// The stored events at these positions, in the order given (positions not in the log
    /// are skipped).
    pub fn events_at(&self, positions: &[u64]) -> Result<Vec<(u64, StoredEvent)>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let mut out = Vec::with_capacity(positions.len());
        for &seq in positions {
            if let Some(bytes) = log.get(seq)? {
                out.push((seq, decode_log(seq, bytes.value())?));
            }
        }
        Ok(out)
    }

    /// The position of the event stored with `id`.
    pub fn position_of(&self, id: &str) -> Result<Option<u64>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let ids = txn.open_table(tables::IDS)?;
        Ok(ids.get(id)?.map(|v| v.value()))
    }

    /// The last event in the log at or before `position` (its position and id): what a follower
    /// checks the stream against after a reconnect.
    pub fn last_logged(&self, at_or_before: u64) -> Result<Option<(u64, String)>, QueryError> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let Some(entry) = log.range(..=at_or_before)?.next_back() else {
            return Ok(None);
        };
        let (key, value) = entry?;
        let stored = decode_log(key.value(), value.value())?;
        Ok(Some((key.value(), stored.event.id.0)))
    }
}
