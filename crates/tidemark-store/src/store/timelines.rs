//! Timelines read from the indexes: a finding's (the events that changed or named it, with
//! what they did) and a cluster's (its events by event time).

use redb::ReadableTable;
use serde::Serialize;
use tidemark_core::findings::FindingChange;
use tidemark_core::{Event, Payload, Timestamp};

use super::Store;
use super::finding_index::FindingIndex;
use super::restore::{corrupt, decode_log};
use crate::codec::{self, StoredEvent};
use crate::error::QueryError;
use crate::tables::{self, change_bits};

/// One entry of a timeline: a stored event and what it did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Log position.
    pub seq: u64,
    /// When the store recorded it.
    pub recorded_at: Timestamp,
    /// What it did to the finding (for finding timelines): `opened`, `resolved_auto`, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<&'static str>,
    /// The event, in the wire format.
    pub event: Event,
}

/// Where a page of a finding's timeline starts or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineAnchor {
    /// The entries after this log position (`After(0)`: from the first).
    After(u64),
    /// The entries before this log position (`Before(u64::MAX)`: up to the latest).
    Before(u64),
}

/// A page of a finding's timeline read either way, with the cursors of its neighbours.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingTimelineWindow {
    /// The entries, in log order.
    pub entries: Vec<TimelineEntry>,
    /// Pass as `Before` for the older page; `None` when there is nothing older.
    pub older: Option<u64>,
    /// Pass as `After` for the newer page; `None` when there is nothing newer.
    pub newer: Option<u64>,
}

/// A page of a cluster's timeline, by event time (ties in log order).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterTimelinePage {
    /// The events on this page.
    pub entries: Vec<TimelineEntry>,
    /// The event time and position of the last entry: pass as `after` for the next page;
    /// `None` when there are no more.
    pub next: Option<(Timestamp, u64)>,
}

impl Store {
    /// The events that changed or named a finding, in log order.
    pub fn finding_timeline(
        &self,
        cluster: &str,
        check_key: &str,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        self.finding_timeline_range(cluster, check_key, 0, u64::MAX, usize::MAX)
    }

    fn finding_timeline_range(
        &self,
        cluster: &str,
        check_key: &str,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        let mut raw = Vec::new();
        {
            let db = self.db()?;
            let txn = db.begin_read()?;
            let index = FindingIndex::open(&txn)?;
            let log = txn.open_table(tables::LOG)?;
            for entry in index
                .forward(cluster, check_key, after + 1, up_to)?
                .take(limit)
            {
                let (seq, bits) = entry?;
                raw.push((seq, bits, self.read_log(&log, seq)?));
            }
        }
        Ok(self.timeline_entries(cluster, check_key, raw))
    }

    /// A page of a finding's timeline around a position, for reading it both ways: the first
    /// `limit` entries after `anchor`'s position, or the last `limit` before it, of those at or
    /// before `up_to`; with the cursors of the older and the newer page (`None` when there is
    /// nothing that way). Reads the index for the page and one entry either side, no more.
    pub fn finding_timeline_window(
        &self,
        cluster: &str,
        check_key: &str,
        anchor: TimelineAnchor,
        up_to: u64,
        limit: usize,
    ) -> Result<FindingTimelineWindow, QueryError> {
        let mut raw = Vec::new();
        let (older, newer) = {
            let db = self.db()?;
            let txn = db.begin_read()?;
            let index = FindingIndex::open(&txn)?;
            let log = txn.open_table(tables::LOG)?;
            let mut seqs: Vec<(u64, u8)> = Vec::new();
            match anchor {
                TimelineAnchor::After(after) if after < up_to => {
                    for entry in index
                        .forward(cluster, check_key, after + 1, up_to)?
                        .take(limit)
                    {
                        seqs.push(entry?);
                    }
                }
                TimelineAnchor::Before(before) if before > 0 => {
                    for entry in index
                        .backward(cluster, check_key, (before - 1).min(up_to))?
                        .take(limit)
                    {
                        seqs.push(entry?);
                    }
                    seqs.reverse();
                }
                _ => {}
            }
            // The page's ends, or where it would be when it is empty.
            let (first, last) = match (seqs.first(), seqs.last(), anchor) {
                (Some(first), Some(last), _) => (first.0, last.0),
                (_, _, TimelineAnchor::After(after)) => (after.saturating_add(1), after),
                (_, _, TimelineAnchor::Before(before)) => (before, before.saturating_sub(1)),
            };
            let older = first > 0
                && index
                    .backward(cluster, check_key, first - 1)?
                    .next()
                    .transpose()?
                    .is_some();
            let newer = last < up_to
                && index
                    .forward(cluster, check_key, last + 1, up_to)?
                    .next()
                    .transpose()?
                    .is_some();
            for (seq, bits) in seqs {
                raw.push((seq, bits, self.read_log(&log, seq)?));
            }
            (older.then_some(first), newer.then_some(last))
        };
        Ok(FindingTimelineWindow {
            entries: self.timeline_entries(cluster, check_key, raw),
            older,
            newer,
        })
    }

    /// The timeline entries of raw index rows, with the flap changes named.
    fn timeline_entries(
        &self,
        cluster: &str,
        check_key: &str,
        raw: Vec<(u64, u8, StoredEvent)>,
    ) -> Vec<TimelineEntry> {
        // Which detector started or stopped at a FLAP entry: read from the projection once,
        // only for the entries that have one (never the finding's whole list of episodes), and
        // after the database is let go (lock order).
        let flap_positions: Vec<u64> = raw
            .iter()
            .filter(|(_, bits, _)| bits & change_bits::FLAP != 0)
            .map(|(seq, _, _)| *seq)
            .collect();
        let flap_changes = if flap_positions.is_empty() {
            Vec::new()
        } else {
            self.read(|p| {
                p.findings()
                    .flap_changes_at(cluster, check_key, &flap_positions)
            })
        };
        let mut entries = Vec::with_capacity(raw.len());
        for (seq, bits, stored) in raw {
            let from_alert = matches!(
                stored.event.payload,
                Payload::AlertFired(_) | Payload::AlertResolved(_)
            );
            let mut changes = change_bits::names(bits, from_alert);
            if bits & change_bits::FLAP != 0 {
                changes.retain(|name| *name != "flap");
                for &(_, detector, started) in flap_changes.iter().filter(|c| c.0 == seq) {
                    changes.push(if started {
                        FindingChange::FlapStarted(detector).as_str()
                    } else {
                        FindingChange::FlapStopped(detector).as_str()
                    });
                }
            }
            entries.push(TimelineEntry {
                seq,
                recorded_at: stored.recorded_at,
                changes,
                event: stored.event,
            });
        }
        entries
    }

    /// A page of a finding's timeline: entries after position `after` and at or before
    /// `up_to`, at most `limit`; and the `after` of the next page.
    pub fn finding_timeline_page(
        &self,
        cluster: &str,
        check_key: &str,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<(Vec<TimelineEntry>, Option<u64>), QueryError> {
        let mut entries =
            self.finding_timeline_range(cluster, check_key, after, up_to, limit + 1)?;
        let next = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok((entries, next))
    }

    /// A cluster's events by event time (ties in log order), within `[since, until]`, at most
    /// `limit`.
    pub fn cluster_timeline(
        &self,
        cluster: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        Ok(self
            .cluster_timeline_page(cluster, since, until, None, limit)?
            .entries)
    }

    /// A page of a cluster's events by event time (ties in log order), within `[since, until]`,
    /// after the entry at `after` (its event time and position) when given, at most `limit`;
    /// and the `after` of the next page, `None` when there are no more. The order is the index
    /// order (time, position), so each event is on exactly one page.
    pub fn cluster_timeline_page(
        &self,
        cluster: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        after: Option<(Timestamp, u64)>,
        limit: usize,
    ) -> Result<ClusterTimelinePage, QueryError> {
        use std::ops::Bound;
        let first = (since.map_or(i64::MIN, Timestamp::unix_nanos), 0);
        let last = (until.map_or(i64::MAX, Timestamp::unix_nanos), u64::MAX);
        let start = match after.map(|(t, seq)| (t.unix_nanos(), seq)) {
            Some(after) if after >= first => Bound::Excluded(after),
            _ => Bound::Included(first),
        };
        let empty = match start {
            Bound::Excluded(after) => after >= last,
            _ => first > last,
        };
        if empty {
            return Ok(ClusterTimelinePage {
                entries: Vec::new(),
                next: None,
            });
        }
        let start = match start {
            Bound::Excluded((t, seq)) => Bound::Excluded((cluster, t, seq)),
            Bound::Included((t, seq)) => Bound::Included((cluster, t, seq)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let db = self.db()?;
        let txn = db.begin_read()?;
        let index = txn.open_table(tables::BY_CLUSTER_TIME)?;
        let log = txn.open_table(tables::LOG)?;
        let mut entries = Vec::new();
        let mut more = false;
        for entry in
            index.range::<(&str, i64, u64)>((start, Bound::Included((cluster, last.0, last.1))))?
        {
            if entries.len() == limit {
                more = true;
                break;
            }
            let (key, _) = entry?;
            let seq = key.value().2;
            let stored = self.read_log(&log, seq)?;
            entries.push(TimelineEntry {
                seq,
                recorded_at: stored.recorded_at,
                changes: vec![],
                event: stored.event,
            });
        }
        let next = if more {
            entries.last().map(|e| (e.event.time, e.seq))
        } else {
            None
        };
        Ok(ClusterTimelinePage { entries, next })
    }

    fn read_log(
        &self,
        log: &impl ReadableTable<u64, &'static [u8]>,
        seq: u64,
    ) -> Result<StoredEvent, QueryError> {
        let bytes = log.get(seq)?.ok_or_else(|| {
            corrupt(
                "log",
                seq,
                codec::CodecError::Postcard("indexed position missing from the log".into()),
            )
        })?;
        Ok(decode_log(seq, bytes.value())?)
    }
}
