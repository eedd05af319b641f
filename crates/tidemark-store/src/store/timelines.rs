//! Timelines read from the indexes: a finding's (the events that changed or named it, with
//! what they did) and a cluster's (its events by event time).

use redb::ReadableTable;
use serde::Serialize;
use tidemark_core::findings::FindingChange;
use tidemark_core::{Event, Timestamp};

use super::Store;
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
            let index = txn.open_table(tables::BY_FINDING)?;
            let log = txn.open_table(tables::LOG)?;
            for entry in index
                .range((cluster, check_key, after + 1)..=(cluster, check_key, up_to))?
                .take(limit)
            {
                let (key, bits) = entry?;
                let seq = key.value().2;
                raw.push((seq, bits.value(), self.read_log(&log, seq)?));
            }
        }
        // Which detector started or stopped at a FLAP entry: read from the projection once,
        // only for a timeline that has one, and after the database is let go (lock order).
        let mut episodes: Option<Vec<tidemark_core::flaps::FlapEpisode>> = None;
        let mut entries = Vec::with_capacity(raw.len());
        for (seq, bits, stored) in raw {
            let mut changes = change_bits::names(bits);
            if bits & change_bits::FLAP != 0 {
                changes.retain(|name| *name != "flap");
                let episodes = episodes.get_or_insert_with(|| {
                    self.read(|p| p.findings().flap_episodes(cluster, check_key).to_vec())
                });
                for episode in episodes.iter() {
                    if episode.started_seq == seq {
                        changes.push(FindingChange::FlapStarted(episode.detector).as_str());
                    }
                    if episode.stopped_seq == Some(seq) {
                        changes.push(FindingChange::FlapStopped(episode.detector).as_str());
                    }
                }
            }
            entries.push(TimelineEntry {
                seq,
                recorded_at: stored.recorded_at,
                changes,
                event: stored.event,
            });
        }
        Ok(entries)
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
