//! The indexed plan of `Store::events_page`: each filter of an [`EventFilter`] is a stream of
//! the positions it holds, read from an index in position order, and a page is the positions
//! every stream holds (a leapfrog intersection: each stream seeks to the highest position any
//! other one answered), so a page reads what it returns plus what the filters disagree on,
//! never the log between matches.
//!
//! Which index serves which filter: `incident` the incident's timeline (in the live state),
//! `check_key` the finding index (one range, or one per cluster merged), `type` `by_type`, `source`
//! `by_source`, `cluster` `by_cluster`, and a time window (`since`, `until`) `by_cluster` within
//! the positions the cluster's clock marks (`cluster_clock`) give for the window, plus the
//! cluster's `late_events` after them (one cluster, or one range per cluster merged). Without
//! any filter, the log's own keys.

use redb::{ReadOnlyTable, ReadableTable};

use super::finding_index::FindingIndex;
use crate::error::QueryError;
use crate::tables;
use tidemark_core::{EventType, Timestamp};

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

/// What a stream (or the page) knows from a position on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// The first position at or after the one asked for that the stream holds.
    At(u64),
    /// The stream holds no position from the one asked for up to the page's end.
    End,
    /// The scan budget was spent: the stream holds nothing from the one asked for up to this
    /// position (inclusive), and was not read further.
    Stopped(u64),
}

/// The index tables the streams read, open in one read transaction.
pub(super) struct Indexes {
    pub(super) log: ReadOnlyTable<u64, &'static [u8]>,
    by_type: ReadOnlyTable<(&'static str, u64), ()>,
    by_source: ReadOnlyTable<(&'static str, u64), ()>,
    finding_index: FindingIndex,
    by_cluster: ReadOnlyTable<(&'static str, u64), i64>,
    cluster_clock: ReadOnlyTable<(&'static str, i64, u64), ()>,
    late_events: ReadOnlyTable<(&'static str, u64), i64>,
}

impl Indexes {
    /// Opens the tables (they exist: the caller checked that `event_indexes_to` covers the
    /// page).
    pub(super) fn open(
        txn: &redb::ReadTransaction,
        log: ReadOnlyTable<u64, &'static [u8]>,
    ) -> Result<Self, QueryError> {
        Ok(Self {
            log,
            by_type: txn.open_table(tables::BY_TYPE)?,
            by_source: txn.open_table(tables::BY_SOURCE)?,
            finding_index: FindingIndex::open(txn)?,
            by_cluster: txn.open_table(tables::BY_CLUSTER)?,
            cluster_clock: txn.open_table(tables::CLUSTER_CLOCK)?,
            late_events: txn.open_table(tables::LATE_EVENTS)?,
        })
    }

    /// Every cluster with an event in `by_cluster`, in key order: one seek per cluster.
    fn clusters(&self, reads: &mut usize) -> Result<Vec<String>, QueryError> {
        use std::ops::Bound;
        let mut clusters: Vec<String> = Vec::new();
        loop {
            let next = match clusters.last() {
                None => self.by_cluster.iter()?.next(),
                Some(last) => self
                    .by_cluster
                    .range::<(&str, u64)>((
                        Bound::Excluded((last.as_str(), u64::MAX)),
                        Bound::Unbounded,
                    ))?
                    .next(),
            };
            *reads += 1;
            match next {
                Some(entry) => clusters.push(entry?.0.value().0.to_owned()),
                None => return Ok(clusters),
            }
        }
    }
}

/// The positions one filter holds, in increasing order.
enum Positions {
    /// Listed positions, ascending (an incident's timeline); `complete` is false when the list
    /// was cut (the positions after its last one are unknown).
    Listed { seqs: Vec<u64>, complete: bool },
    /// Every logged position.
    Log,
    /// Every position in `lo..=hi` (read from nothing).
    Span { lo: u64, hi: u64 },
    /// `by_type` entries of a type.
    Type(&'static str),
    /// `by_source` entries of a source.
    Source(String),
    /// The finding index's entries of one cluster's finding.
    Finding { cluster: String, check_key: String },
    /// `by_cluster` entries of a cluster in positions `lo..=hi` whose time is in `window`.
    Cluster {
        cluster: String,
        lo: u64,
        hi: u64,
        window: (i64, i64),
    },
    /// `late_events` of a cluster from position `from` on whose time is in `window`.
    Late {
        cluster: String,
        from: u64,
        window: (i64, i64),
    },
}

/// A stream of positions with what it last answered (a later seek to a position at or below
/// that answer gets it again without reading).
struct Stream {
    positions: Positions,
    head: Option<Found>,
}

/// What a page's streams share: the tables, its last position, and its reads against the
/// budget.
pub(super) struct Reading<'a> {
    pub(super) indexes: &'a Indexes,
    /// The page reads no position after this (the checkpoint it started at).
    pub(super) up_to: u64,
    /// Index entries and log records read so far.
    pub(super) reads: usize,
    pub(super) budget: usize,
}

/// The first entry of a range of a `(prefix, position)`-keyed index whose value `keep` accepts,
/// reading entries until one is kept or the budget is spent.
fn first_kept<V: redb::Value + 'static>(
    entries: redb::Range<'_, (&'static str, u64), V>,
    reading: &mut Reading<'_>,
    keep: impl Fn(V::SelfType<'_>) -> bool,
) -> Result<Found, QueryError> {
    for entry in entries {
        let (key, value) = entry?;
        reading.reads += 1;
        let seq = key.value().1;
        if keep(value.value()) {
            return Ok(Found::At(seq));
        }
        if reading.reads >= reading.budget {
            return Ok(Found::Stopped(seq));
        }
    }
    Ok(Found::End)
}

impl Stream {
    fn new(positions: Positions) -> Self {
        Self {
            positions,
            head: None,
        }
    }

    /// The first position at or after `from` (and at or before the page's end) this stream
    /// holds.
    fn seek(&mut self, from: u64, reading: &mut Reading<'_>) -> Result<Found, QueryError> {
        match self.head {
            Some(Found::At(seq)) if seq >= from => return Ok(Found::At(seq)),
            Some(Found::End) => return Ok(Found::End),
            _ => {}
        }
        let to = reading.up_to;
        if from > to {
            self.head = Some(Found::End);
            return Ok(Found::End);
        }
        let ix = reading.indexes;
        let in_window = |(low, high): (i64, i64)| move |time: i64| low <= time && time <= high;
        let found = match &self.positions {
            Positions::Listed { seqs, complete } => {
                reading.reads += 1;
                match seqs.get(seqs.partition_point(|seq| *seq < from)) {
                    Some(&seq) if seq <= to => Found::At(seq),
                    Some(_) => Found::End,
                    None if *complete => Found::End,
                    // The listed positions ran out before the rest were taken: everything
                    // before `from` is decided, nothing after is known.
                    None => Found::Stopped(from - 1),
                }
            }
            Positions::Span { lo, hi } => {
                let seq = from.max(*lo);
                if seq <= (*hi).min(to) {
                    Found::At(seq)
                } else {
                    Found::End
                }
            }
            Positions::Log => {
                reading.reads += 1;
                match ix.log.range(from..=to)?.next() {
                    Some(entry) => Found::At(entry?.0.value()),
                    None => Found::End,
                }
            }
            Positions::Type(name) => first_kept(
                ix.by_type.range((*name, from)..=(*name, to))?,
                reading,
                |()| true,
            )?,
            Positions::Source(source) => first_kept(
                ix.by_source
                    .range((source.as_str(), from)..=(source.as_str(), to))?,
                reading,
                |()| true,
            )?,
            Positions::Finding { cluster, check_key } => {
                reading.reads += 1;
                let (c, k) = (cluster.as_str(), check_key.as_str());
                match ix.finding_index.forward(c, k, from, to)?.next() {
                    Some(entry) => Found::At(entry?.0),
                    None => Found::End,
                }
            }
            Positions::Cluster {
                cluster,
                lo,
                hi,
                window,
            } => {
                let (start, end) = (from.max(*lo), to.min(*hi));
                if start > end {
                    Found::End
                } else {
                    let c = cluster.as_str();
                    first_kept(
                        ix.by_cluster.range((c, start)..=(c, end))?,
                        reading,
                        in_window(*window),
                    )?
                }
            }
            Positions::Late {
                cluster,
                from: first,
                window,
            } => {
                let start = from.max(*first);
                let c = cluster.as_str();
                first_kept(
                    ix.late_events.range((c, start)..=(c, to))?,
                    reading,
                    in_window(*window),
                )?
            }
        };
        self.head = Some(found);
        Ok(found)
    }
}

/// One filter: the union of its streams (one, or one or two per cluster), merged in position
/// order.
pub(super) struct Filter(Vec<Stream>);

impl Filter {
    fn one(positions: Positions) -> Self {
        Self(vec![Stream::new(positions)])
    }

    /// The first position at or after `from` any of the streams holds.
    pub(super) fn seek(
        &mut self,
        from: u64,
        reading: &mut Reading<'_>,
    ) -> Result<Found, QueryError> {
        let mut first: Option<u64> = None;
        let mut stopped: Option<u64> = None;
        for stream in &mut self.0 {
            match stream.seek(from, reading)? {
                Found::At(seq) => first = Some(first.map_or(seq, |f| f.min(seq))),
                Found::End => {}
                Found::Stopped(seq) => stopped = Some(stopped.map_or(seq, |s| s.min(seq))),
            }
        }
        Ok(match (first, stopped) {
            // A stream stopped at `s` holds nothing up to it: a position at or before it is
            // the union's first.
            (Some(seq), Some(s)) if seq <= s => Found::At(seq),
            (_, Some(s)) => Found::Stopped(s),
            (Some(seq), None) => Found::At(seq),
            (None, None) => Found::End,
        })
    }
}

/// The filters of `filter` as streams over the indexes. `incident_seqs` is the incident's
/// timeline after the page's start (and whether it is all of it) when the filter names one.
pub(super) fn plan(
    filter: &EventFilter,
    incident_seqs: Option<(Vec<u64>, bool)>,
    reading: &mut Reading<'_>,
) -> Result<Plan, QueryError> {
    let ix = reading.indexes;
    let mut filters = Vec::new();
    let mut all_clusters: Option<Vec<String>> = None;
    let mut clusters = |reading: &mut Reading<'_>| -> Result<Vec<String>, QueryError> {
        match &filter.cluster {
            Some(cluster) => Ok(vec![cluster.clone()]),
            None => {
                if all_clusters.is_none() {
                    all_clusters = Some(ix.clusters(&mut reading.reads)?);
                }
                Ok(all_clusters.clone().unwrap_or_default())
            }
        }
    };
    if let Some((seqs, complete)) = incident_seqs {
        filters.push(Filter::one(Positions::Listed { seqs, complete }));
    }
    if let Some(check_key) = &filter.check_key {
        let streams = clusters(reading)?
            .into_iter()
            .map(|cluster| {
                Stream::new(Positions::Finding {
                    cluster,
                    check_key: check_key.clone(),
                })
            })
            .collect();
        filters.push(Filter(streams));
    }
    if let Some(event_type) = filter.event_type {
        filters.push(Filter::one(Positions::Type(event_type.as_str())));
    }
    if let Some(source) = &filter.source {
        filters.push(Filter::one(Positions::Source(source.clone())));
    }
    let timed = filter.since.is_some() || filter.until.is_some();
    let since = filter.since.map(|t| t.unix_nanos());
    let until = filter.until.map(|t| t.unix_nanos());
    let window = (since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
    // A finding's entries of one cluster are that cluster's already.
    let cluster_covered = filter.check_key.is_some() && !timed;
    let mut time_checked_on_rows = None;
    if timed && filter.cluster.is_none() && !filters.is_empty() {
        // Another filter drives; the window over every cluster is the span of positions from
        // the earliest cluster's start to the latest cluster's end, plus the late events after
        // it, with the time checked on the events read (one stream per cluster merged into the
        // others would seek every cluster at each of their matches).
        let (mut lo, mut hi) = (u64::MAX, 0);
        let clusters = clusters(reading)?;
        for cluster in &clusters {
            let (cluster_lo, cluster_hi) = positions_of_window(ix, cluster, since, until, reading)?;
            lo = lo.min(cluster_lo);
            hi = hi.max(cluster_hi);
        }
        let mut streams = vec![Stream::new(Positions::Span { lo, hi })];
        if until.is_some() && hi < reading.up_to {
            streams.extend(clusters.into_iter().map(|cluster| {
                Stream::new(Positions::Late {
                    cluster,
                    from: hi + 1,
                    window,
                })
            }));
        }
        filters.push(Filter(streams));
        time_checked_on_rows = Some(window);
    } else if timed || (filter.cluster.is_some() && !cluster_covered) {
        let mut streams = Vec::new();
        for cluster in clusters(reading)? {
            let (lo, hi) = positions_of_window(ix, &cluster, since, until, reading)?;
            if until.is_some() && hi < reading.up_to {
                streams.push(Stream::new(Positions::Late {
                    cluster: cluster.clone(),
                    from: hi + 1,
                    window,
                }));
            }
            streams.push(Stream::new(Positions::Cluster {
                cluster,
                lo,
                hi,
                window,
            }));
        }
        filters.push(Filter(streams));
    }
    if filters.is_empty() {
        filters.push(Filter::one(Positions::Log));
    }
    Ok(Plan {
        filters,
        time_checked_on_rows,
    })
}

/// A page's filters as streams, and the time window its events are checked against when the
/// streams do not hold exactly the window's positions.
pub(super) struct Plan {
    pub(super) filters: Vec<Filter>,
    pub(super) time_checked_on_rows: Option<(i64, i64)>,
}

/// The positions `lo..=hi` of `cluster` that hold every one of its events whose time is in
/// `since..=until` except its late events after `hi`: from the cluster's last clock mark at or
/// before `since` (every event before it is earlier than its clock), to just before its first
/// mark later than `until` + `LATE_EVENT_NS` (an event after that mark and not later than
/// `until` is later than `LATE_EVENT_NS` behind a mark: a late event).
fn positions_of_window(
    ix: &Indexes,
    cluster: &str,
    since: Option<i64>,
    until: Option<i64>,
    reading: &mut Reading<'_>,
) -> Result<(u64, u64), QueryError> {
    let c = cluster;
    let lo = match since {
        None => 0,
        Some(since) => {
            reading.reads += 1;
            match ix
                .cluster_clock
                .range((c, i64::MIN, 0)..=(c, since, u64::MAX))?
                .next_back()
            {
                Some(entry) => entry?.0.value().2,
                None => 0,
            }
        }
    };
    let hi = match until {
        None => u64::MAX,
        Some(until) => {
            reading.reads += 1;
            let after = until
                .saturating_add(tables::LATE_EVENT_NS)
                .saturating_add(1);
            match ix
                .cluster_clock
                .range((c, after, 0)..=(c, i64::MAX, u64::MAX))?
                .next()
            {
                Some(entry) => entry?.0.value().2 - 1,
                None => u64::MAX,
            }
        }
    };
    Ok((lo, hi))
}
