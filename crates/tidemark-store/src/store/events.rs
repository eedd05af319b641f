//! Stored events read from the log: by position, by id, and in pages filtered by cluster,
//! type, time, finding, incident or source (from the filter indexes, `event_streams`, or, in a
//! store written before them and opened read-only, candidates from the most selective older
//! index; within a scan budget).

use std::ops::RangeInclusive;

use super::Store;
use super::event_streams::{self, EventFilter, Found, Indexes, Reading};
use super::finding_index::FindingIndex;
use super::restore::decode_log;
use crate::codec::StoredEvent;
use crate::error::QueryError;
use crate::tables;

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
    /// Index entries and log records the page read: what it cost. With the filter indexes
    /// complete this follows the events returned (plus what the filters disagree on), not the
    /// length of the log.
    pub rows_read: usize,
    /// Every matching event at or before this position is on this page or an earlier one:
    /// `next`, or (no `next`) the checkpoint the page read up to. A live follower of the log
    /// (`GET /v1/stream`) goes on from here once new events are committed.
    pub read_to: u64,
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
    index: &FindingIndex,
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
        let mut range = index.forward(cluster, check_key, from, to)?;
        if let Some(entry) = range.next() {
            heads.push(Reverse((entry?.0, ranges.len())));
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
            heads.push(Reverse((entry?.0, source)));
        }
    }
    Ok(merged)
}

/// The bounds of one `events_page` call.
struct Page {
    after: u64,
    limit: usize,
    budget: usize,
    up_to: u64,
}

impl Page {
    /// The page from the filter indexes: the positions every filter's stream holds, found by
    /// seeking each stream to the highest position another one answered.
    fn read_indexed(
        &self,
        indexes: &Indexes,
        filter: &EventFilter,
        incident_seqs: Option<(Vec<u64>, bool)>,
    ) -> Result<EventsPage, QueryError> {
        let mut reading = Reading {
            indexes,
            up_to: self.up_to,
            reads: 0,
            budget: self.budget,
        };
        let event_streams::Plan {
            mut filters,
            time_checked_on_rows,
        } = event_streams::plan(filter, incident_seqs, &mut reading)?;
        let mut events = Vec::new();
        // Every position before `at` is decided: on the page, or not matching.
        let mut at = self.after + 1;
        let end = |events, next: Option<u64>, cut: bool, reading: &Reading<'_>| EventsPage {
            events,
            next,
            scan_budget_reached: cut,
            rows_read: reading.reads,
            read_to: 0,
        };
        loop {
            if at > self.up_to {
                return Ok(end(events, None, false, &reading));
            }
            let mut agreed = true;
            for filter in &mut filters {
                match filter.seek(at, &mut reading)? {
                    Found::At(seq) if seq > at => {
                        at = seq;
                        agreed = false;
                    }
                    Found::At(_) => {}
                    Found::End => return Ok(end(events, None, false, &reading)),
                    Found::Stopped(seq) => return Ok(end(events, Some(seq), true, &reading)),
                }
            }
            if agreed {
                reading.reads += 1;
                // A position an index holds but the log no longer does (an older build's
                // retention cut the log, not these indexes) is not an event.
                if let Some(bytes) = indexes.log.get(at)? {
                    let stored = decode_log(at, bytes.value())?;
                    let time = stored.event.time.unix_nanos();
                    if time_checked_on_rows.is_none_or(|(low, high)| low <= time && time <= high) {
                        events.push((at, stored));
                    }
                    if events.len() == self.limit {
                        return Ok(end(events, Some(at), false, &reading));
                    }
                }
                at += 1;
            }
            if reading.reads >= self.budget && at <= self.up_to {
                return Ok(end(events, Some(at - 1), true, &reading));
            }
        }
    }

    /// The page without the filter indexes: candidates from the most selective index the
    /// store had before them, the other filters checked on the events read.
    fn read_scanning(
        &self,
        txn: &redb::ReadTransaction,
        log: &redb::ReadOnlyTable<u64, &'static [u8]>,
        filter: &EventFilter,
        incident_seqs: Option<Vec<u64>>,
        finding_clusters: &[String],
    ) -> Result<EventsPage, QueryError> {
        let (after, limit, budget, up_to) = (self.after, self.limit, self.budget, self.up_to);
        let from = after + 1;
        let take = budget.saturating_add(1);
        // Candidate positions, ascending, from the most selective source the filter names: the
        // first `budget + 1` of them (the extra one says whether more follow).
        // The finding index, to check a check key on the events read when the candidates come
        // from the incident's timeline.
        let finding_index = match (&filter.check_key, &incident_seqs) {
            (Some(check_key), Some(_)) => Some((check_key, FindingIndex::open(txn)?)),
            _ => None,
        };
        let mut candidates: Vec<u64> = if let Some(seqs) = incident_seqs {
            seqs
        } else if let Some(check_key) = &filter.check_key {
            let index = FindingIndex::open(txn)?;
            merged_finding_positions(&index, finding_clusters, check_key, from..=up_to, take)?
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
        let mut rows_read = candidates.len();
        let mut events = Vec::new();
        let mut last_read = after;
        for seq in candidates {
            if events.len() == limit {
                // Full: the next page starts after the last event on this one.
                return Ok(EventsPage {
                    events,
                    next: Some(last_read),
                    scan_budget_reached: false,
                    rows_read,
                    read_to: 0,
                });
            }
            last_read = seq;
            rows_read += 1;
            let Some(bytes) = log.get(seq)? else { continue };
            let stored = decode_log(seq, bytes.value())?;
            let e = &stored.event;
            let keep = filter.cluster.as_ref().is_none_or(|c| *c == e.cluster)
                && filter.event_type.is_none_or(|t| t == e.event_type())
                && filter.since.is_none_or(|t| e.time >= t)
                && filter.until.is_none_or(|t| e.time <= t)
                && filter.source.as_ref().is_none_or(|s| *s == e.source);
            let keep = keep
                && match &finding_index {
                    None => true,
                    Some((check_key, index)) => {
                        rows_read += 1;
                        index.get(&e.cluster, check_key, seq)?.is_some()
                    }
                };
            if keep {
                events.push((seq, stored));
            }
        }
        // Every candidate read: the end, or (budget spent) go on after the last one read.
        Ok(EventsPage {
            events,
            next: (!complete).then_some(last_read),
            scan_budget_reached: !complete,
            rows_read,
            read_to: 0,
        })
    }
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
    /// checkpoint as of the call; at most
    /// [`StoreConfig::events_scan_budget`](crate::StoreConfig::events_scan_budget) index entries
    /// and log records are read per call. `next` is always a position with nothing matching left
    /// behind it: a budget may end a page early, never make the cursor skip.
    ///
    /// When the event filter indexes are complete (`event_indexes_to`; always, in a store opened
    /// read-write by this build), every filter is a stream of positions read from its index and
    /// the page is their intersection (`event_streams`): a page costs what it returns. Else (a
    /// store written before them, opened read-only) candidates come from the incident timeline,
    /// the finding index or the type index when the filter names one, else from the log, and
    /// the other filters are checked on the events read.
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
                        p.incidents()
                            .timeline_positions(&i, after, budget.saturating_add(1))
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
                rows_read: 0,
                read_to: after,
            });
        }
        let db = self.db()?;
        let txn = db.begin_read()?;
        let log = txn.open_table(tables::LOG)?;
        let indexed_to = match txn.open_table(tables::META) {
            Ok(meta) => meta
                .get(tables::EVENT_INDEXES_TO)?
                .map_or(0, |v| v.value().max(0) as u64),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(e.into()),
        };
        let page = Page {
            after,
            limit,
            budget,
            up_to,
        };
        let page = if indexed_to >= up_to {
            let indexes = Indexes::open(&txn, log)?;
            let incident_seqs = incident_seqs.map(|mut seqs| {
                let complete = seqs.len() <= budget;
                seqs.truncate(budget);
                (seqs, complete)
            });
            page.read_indexed(&indexes, filter, incident_seqs)
        } else {
            page.read_scanning(&txn, &log, filter, incident_seqs, &finding_clusters)
        };
        page.map(|mut page| {
            page.read_to = page.next.unwrap_or(up_to);
            page
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
