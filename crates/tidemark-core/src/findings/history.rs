//! A finding's history out of the live state (ADR 0006): the fold writes each occurrence that
//! closes and each flap episode that ends to a [`HistorySink`], and every reader of a finding's
//! history reads it through a [`HistoryReader`], in pages, as of a log position. The live
//! `Finding` keeps only its current occurrence, the open flap episodes and the counts.
//!
//! [`MemoryHistory`] is both, in memory: what the projection keeps by default, so `replay`,
//! `replay --check`, the CLI, the export and the store answer as before. The store's tables
//! (the next step of ADR 0006) implement the same two traits.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use rustc_hash::FxHashMap;

use super::flaps::FlapEpisode;
use super::{Finding, Occurrence, ResolutionKind};
use crate::flaps::FlapDetector;
use crate::incident_bodies::{
    BodyRow, IncidentBodyReader, IncidentBodyRecord, MemoryIncidentBodies,
};
use crate::orphans::{
    DroppedOrphanReader, DroppedOrphanRecord, MemoryDroppedOrphans, OrphanOrder, OrphanView,
};
use crate::timeline_rows::{
    IncidentEntry, IncidentEntryReader, IncidentEntryRecord, MemoryEntryRows,
};
use crate::timestamp::Timestamp;

/// Receives a finding's history as the fold writes it out: each record once, when it is
/// final. `number` is the record's number in the finding's history (1 for its first
/// occurrence, 1 for its first flap episode, in the order they opened or started); the
/// position at which it became final is in the record (`resolved_seq`, `stopped_seq`).
pub trait HistorySink {
    /// An occurrence of `check_key` in `cluster` was resolved.
    fn occurrence_closed(
        &mut self,
        cluster: &str,
        check_key: &str,
        number: u64,
        occurrence: &Occurrence,
    );

    /// A flap episode of `check_key` in `cluster` ended.
    fn flap_episode_ended(
        &mut self,
        cluster: &str,
        check_key: &str,
        number: u64,
        episode: &FlapEpisode,
    );
}

/// One record of a finding's history, as the fold wrote it out: what a sink that cannot write
/// at once (the store's tables, written in the batch's transaction) collects, in fold order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryRecord {
    /// Occurrence `number` of `check_key` in `cluster` closed.
    OccurrenceClosed {
        /// The cluster.
        cluster: String,
        /// The finding's check key.
        check_key: Box<str>,
        /// Its number in the finding's history (1 for the first).
        number: u64,
        /// The occurrence, closed.
        occurrence: Occurrence,
    },
    /// Flap episode `number` of `check_key` in `cluster` ended.
    FlapEpisodeEnded {
        /// The cluster.
        cluster: String,
        /// The finding's check key.
        check_key: Box<str>,
        /// Its number in the finding's flap episodes (1 for the first to start).
        number: u64,
        /// The episode, ended.
        episode: FlapEpisode,
    },
}

impl HistoryRecord {
    /// Hands the record to `sink`, as the fold handed it out.
    pub fn replay_into(&self, sink: &mut (impl HistorySink + ?Sized)) {
        match self {
            Self::OccurrenceClosed {
                cluster,
                check_key,
                number,
                occurrence,
            } => sink.occurrence_closed(cluster, check_key, *number, occurrence),
            Self::FlapEpisodeEnded {
                cluster,
                check_key,
                number,
                episode,
            } => sink.flap_episode_ended(cluster, check_key, *number, episode),
        }
    }
}

impl HistorySink for Vec<HistoryRecord> {
    fn occurrence_closed(
        &mut self,
        cluster: &str,
        check_key: &str,
        number: u64,
        occurrence: &Occurrence,
    ) {
        self.push(HistoryRecord::OccurrenceClosed {
            cluster: cluster.to_owned(),
            check_key: check_key.into(),
            number,
            occurrence: occurrence.clone(),
        });
    }

    fn flap_episode_ended(
        &mut self,
        cluster: &str,
        check_key: &str,
        number: u64,
        episode: &FlapEpisode,
    ) {
        self.push(HistoryRecord::FlapEpisodeEnded {
            cluster: cluster.to_owned(),
            check_key: check_key.into(),
            number,
            episode: episode.clone(),
        });
    }
}

/// Which end of a range of history a page starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// A page of a range of a finding's history, as of a log position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRange {
    /// The positions that opened (occurrences) or started (flap episodes) the records read.
    pub opened: (Bound<u64>, Bound<u64>),
    /// The log position the history is read at: a record opened after it is left out, one
    /// closed after it is read as still open (ADR 0006, "Reads as of a position").
    pub as_of: u64,
    /// Which end the page starts from.
    pub direction: Direction,
    /// At most this many records.
    pub limit: usize,
}

impl HistoryRange {
    /// Every record, oldest first, as of now.
    pub fn all() -> Self {
        Self {
            opened: (Bound::Unbounded, Bound::Unbounded),
            as_of: u64::MAX,
            direction: Direction::Forward,
            limit: usize::MAX,
        }
    }
}

/// Reads a finding's written-out history: its closed occurrences and ended flap episodes, each
/// with its number, in pages that cost what they return.
pub trait HistoryReader {
    /// The closed occurrences of `check_key` in `cluster` in `range`.
    fn closed_occurrences(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, Occurrence)>;

    /// The ended flap episodes of `check_key` in `cluster` in `range`, in the order they
    /// started (by number).
    fn ended_flap_episodes(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, FlapEpisode)>;

    /// How many occurrences of `check_key` in `cluster` had closed at log position `as_of`.
    fn closed_occurrence_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64;

    /// How many flap episodes of `check_key` in `cluster` had ended at log position `as_of`.
    fn ended_flap_episode_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64;
}

/// A history the fold writes to and reads back from: when a cluster's flap window widens, the
/// count detector reads the auto-resolutions the wider window reaches back to (the live state
/// keeps only those inside the window; `docs/lifecycle.md`, "Flapping").
pub trait FoldHistory: HistorySink {
    /// The times of the auto-resolutions of `check_key` in `cluster` written so far whose
    /// `resolved_at` is in `(after, up_to]`, oldest first.
    fn auto_resolutions_between(
        &self,
        cluster: &str,
        check_key: &str,
        after: Timestamp,
        up_to: Timestamp,
    ) -> Vec<Timestamp>;
}

/// The auto-resolutions of `check_key` in `cluster` that `reader` holds as of `as_of` with
/// `resolved_at` in `(after, up_to]`, each with its occurrence's number, oldest first. Read
/// back from the newest, in pages: occurrences of a finding never overlap, so `resolved_at`
/// grows with the number and the walk stops at the first one resolved at or before `after`.
pub fn auto_resolutions_read(
    reader: &(impl HistoryReader + ?Sized),
    cluster: &str,
    check_key: &str,
    as_of: u64,
    after: Timestamp,
    up_to: Timestamp,
) -> Vec<(u64, Timestamp)> {
    const PAGE: usize = 256;
    let mut found = Vec::new();
    let mut before = Bound::Unbounded;
    'pages: loop {
        let page = reader.closed_occurrences(
            cluster,
            check_key,
            &HistoryRange {
                opened: (Bound::Unbounded, before),
                as_of,
                direction: Direction::Backward,
                limit: PAGE,
            },
        );
        let full = page.len() == PAGE;
        for (number, occurrence) in page {
            before = Bound::Excluded(occurrence.opened_seq);
            let Some(resolved_at) = occurrence.resolved_at else {
                continue;
            };
            if resolved_at <= after {
                break 'pages;
            }
            if resolved_at <= up_to
                && occurrence
                    .resolution_kind
                    .is_some_and(ResolutionKind::counts_towards_flapping)
            {
                found.push((number, resolved_at));
            }
        }
        if !full {
            break;
        }
    }
    found.reverse();
    found
}

/// The history of one finding, in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct FindingHistory {
    /// Closed occurrences, oldest first: occurrence `i + 1` (they close in the order they open).
    pub(super) occurrences: Vec<Occurrence>,
    /// Ended flap episodes, by number (they may end out of the order they started).
    pub(super) flap_episodes: Vec<(u64, FlapEpisode)>,
}

/// The history in memory: a [`HistorySink`] and a [`HistoryReader`], per cluster and finding,
/// and the incidents and timeline entries the incidents projection wrote out
/// ([`IncidentBodyReader`], [`IncidentEntryReader`]; written with
/// [`MemoryHistory::write_incident_bodies`] and [`MemoryHistory::write_incident_entries`]),
/// and the orphans of dropped traces ([`DroppedOrphanReader`], written with
/// [`MemoryHistory::write_dropped_orphans`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryHistory {
    clusters: BTreeMap<String, FxHashMap<Box<str>, FindingHistory>>,
    incident_entries: MemoryEntryRows,
    incident_bodies: MemoryIncidentBodies,
    dropped_orphans: MemoryDroppedOrphans,
}

impl MemoryHistory {
    /// Writes the timeline entries incidents wrote out (as the store writes its table).
    pub fn write_incident_entries(&mut self, records: &[IncidentEntryRecord]) {
        self.incident_entries.write(records);
    }

    /// Writes the incidents the incidents projection wrote out (as the store writes its
    /// tables).
    pub fn write_incident_bodies(&mut self, records: &[IncidentBodyRecord]) {
        self.incident_bodies.write(records);
    }

    /// Writes the orphans of dropped traces the orphans projection wrote out (as the store
    /// writes its table).
    pub fn write_dropped_orphans(&mut self, records: &[DroppedOrphanRecord]) {
        self.dropped_orphans.write(records);
    }
}

impl DroppedOrphanReader for MemoryHistory {
    fn dropped_orphans(
        &self,
        cluster: &str,
        start: Bound<&OrphanOrder>,
        as_of: u64,
        visit: &mut dyn FnMut(OrphanView) -> bool,
    ) {
        self.dropped_orphans
            .dropped_orphans(cluster, start, as_of, visit);
    }
}

impl IncidentBodyReader for MemoryHistory {
    fn incident_body(&self, id: &str, as_of: u64) -> Option<BodyRow> {
        self.incident_bodies.incident_body(id, as_of)
    }

    fn incidents_in_opening_order(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        as_of: u64,
        visit: &mut dyn FnMut(BodyRow) -> bool,
    ) {
        self.incident_bodies
            .incidents_in_opening_order(cluster, after, as_of, visit);
    }
}

impl IncidentEntryReader for MemoryHistory {
    fn written_entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Vec<IncidentEntry> {
        self.incident_entries
            .written_entries(incident, after, as_of, limit)
    }

    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64 {
        self.incident_entries.written_entry_count(incident, as_of)
    }

    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool {
        self.incident_entries
            .has_written_entry(incident, seq, as_of)
    }
}

impl MemoryHistory {
    /// No history.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn finding(&self, cluster: &str, check_key: &str) -> Option<&FindingHistory> {
        self.clusters.get(cluster)?.get(check_key)
    }

    /// Changes the history of a finding (created empty if it has none): one lookup of its
    /// cluster and one of its key when it exists, as it does for every record but its first.
    pub(super) fn update(
        &mut self,
        cluster: &str,
        check_key: &str,
        change: impl FnOnce(&mut FindingHistory),
    ) {
        let findings = match self.clusters.get_mut(cluster) {
            Some(findings) => findings,
            None => self.clusters.entry(cluster.to_owned()).or_default(),
        };
        if let Some(history) = findings.get_mut(check_key) {
            change(history);
            return;
        }
        let mut history = FindingHistory::default();
        change(&mut history);
        findings.insert(check_key.into(), history);
    }

    /// The closed occurrences of a finding, oldest first (the snapshot's borrowed form).
    pub(super) fn occurrences_of(&self, cluster: &str, check_key: &str) -> &[Occurrence] {
        self.finding(cluster, check_key)
            .map_or(&[], |h| h.occurrences.as_slice())
    }

    /// The ended flap episodes of a finding, by number (the snapshot's borrowed form).
    pub(super) fn flap_episodes_of(&self, cluster: &str, check_key: &str) -> &[(u64, FlapEpisode)] {
        self.finding(cluster, check_key)
            .map_or(&[], |h| h.flap_episodes.as_slice())
    }
}

impl MemoryHistory {
    /// Every record, cluster by cluster and finding by finding (in no particular order of the
    /// findings of a cluster): what a history in memory is written out as when it moves to a
    /// shared one (a store upgraded to its history tables).
    pub fn records(&self) -> impl Iterator<Item = HistoryRecord> + '_ {
        self.clusters.iter().flat_map(|(cluster, findings)| {
            findings.iter().flat_map(move |(key, history)| {
                let occurrences = (1..).zip(&history.occurrences).map(move |(number, o)| {
                    HistoryRecord::OccurrenceClosed {
                        cluster: cluster.clone(),
                        check_key: key.clone(),
                        number,
                        occurrence: o.clone(),
                    }
                });
                let episodes = history.flap_episodes.iter().map(move |(number, e)| {
                    HistoryRecord::FlapEpisodeEnded {
                        cluster: cluster.clone(),
                        check_key: key.clone(),
                        number: *number,
                        episode: e.clone(),
                    }
                });
                occurrences.chain(episodes)
            })
        })
    }
}

impl FoldHistory for MemoryHistory {
    fn auto_resolutions_between(
        &self,
        cluster: &str,
        check_key: &str,
        after: Timestamp,
        up_to: Timestamp,
    ) -> Vec<Timestamp> {
        auto_resolutions_read(self, cluster, check_key, u64::MAX, after, up_to)
            .into_iter()
            .map(|(_, at)| at)
            .collect()
    }
}

impl HistorySink for MemoryHistory {
    fn occurrence_closed(
        &mut self,
        cluster: &str,
        check_key: &str,
        number: u64,
        occurrence: &Occurrence,
    ) {
        self.update(cluster, check_key, |history| {
            debug_assert_eq!(
                number,
                history.occurrences.len() as u64 + 1,
                "occurrences close in the order they open"
            );
            history.occurrences.push(occurrence.clone());
        });
    }

    fn flap_episode_ended(
        &mut self,
        cluster: &str,
        check_key: &str,
        number: u64,
        episode: &FlapEpisode,
    ) {
        self.update(cluster, check_key, |history| {
            let episodes = &mut history.flap_episodes;
            let at = episodes.partition_point(|(n, _)| *n < number);
            debug_assert!(
                episodes.get(at).is_none_or(|(n, _)| *n != number),
                "an episode ends once"
            );
            episodes.insert(at, (number, episode.clone()));
        });
    }
}

/// The indices of `records` (sorted by the position that opened them) in `range`'s positions.
fn range_indices<T>(
    records: &[T],
    opened_at: impl Fn(&T) -> u64,
    range: &HistoryRange,
) -> (usize, usize) {
    let start = match range.opened.0 {
        Bound::Included(from) => records.partition_point(|r| opened_at(r) < from),
        Bound::Excluded(after) => records.partition_point(|r| opened_at(r) <= after),
        Bound::Unbounded => 0,
    };
    let end = match range.opened.1 {
        Bound::Included(to) => records.partition_point(|r| opened_at(r) <= to.min(range.as_of)),
        Bound::Excluded(to) => {
            records.partition_point(|r| opened_at(r) < to && opened_at(r) <= range.as_of)
        }
        Bound::Unbounded => records.partition_point(|r| opened_at(r) <= range.as_of),
    };
    (start, end.max(start))
}

/// The records of `range` (already sorted), a page from the end its direction names.
fn page<T, R>(
    records: &[T],
    opened_at: impl Fn(&T) -> u64,
    range: &HistoryRange,
    read: impl Fn(&T) -> R,
) -> Vec<R> {
    let (start, end) = range_indices(records, opened_at, range);
    let records = &records[start..end];
    match range.direction {
        Direction::Forward => records.iter().take(range.limit).map(read).collect(),
        Direction::Backward => records.iter().rev().take(range.limit).map(read).collect(),
    }
}

impl HistoryReader for MemoryHistory {
    fn closed_occurrences(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, Occurrence)> {
        let occurrences = self.occurrences_of(cluster, check_key);
        let (start, end) = range_indices(occurrences, |o| o.opened_seq, range);
        let records = page(
            occurrences,
            |o| o.opened_seq,
            range,
            |o| o.clone().as_of(range.as_of),
        );
        // Occurrence `i + 1` is at index `i`.
        match range.direction {
            Direction::Forward => (start as u64 + 1..).zip(records).collect(),
            Direction::Backward => (1..=end as u64).rev().zip(records).collect(),
        }
    }

    fn ended_flap_episodes(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, FlapEpisode)> {
        page(
            self.flap_episodes_of(cluster, check_key),
            |(_, e)| e.started_seq,
            range,
            |(number, e)| (*number, e.clone().as_of(range.as_of)),
        )
    }

    fn closed_occurrence_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
        let occurrences = self.occurrences_of(cluster, check_key);
        // Closed in the order they opened: those closed by `as_of` are a prefix.
        occurrences.partition_point(|o| o.resolved_seq.is_some_and(|seq| seq <= as_of)) as u64
    }

    fn ended_flap_episode_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
        self.flap_episodes_of(cluster, check_key)
            .iter()
            .filter(|(_, e)| e.stopped_seq.is_some_and(|seq| seq <= as_of))
            .count() as u64
    }
}

/// A finding's history, read through a reader and completed with what the live state holds.
impl Finding {
    /// The occurrences of the finding in `range`, each with its number: the closed ones from
    /// `history`, and the open one from the live state (which wins over a row `history` reads
    /// as still open at `range.as_of`).
    pub(super) fn occurrences(
        &self,
        cluster: &str,
        history: &impl HistoryReader,
        range: &HistoryRange,
    ) -> Vec<(u64, Occurrence)> {
        let open = (self.is_active()
            && range.opened.contains(&self.current.opened_seq)
            && self.current.opened_seq <= range.as_of)
            .then_some((self.occurrence_count, &self.current));
        let mut records = history.closed_occurrences(cluster, &self.check_key, range);
        let Some((number, occurrence)) = open else {
            return records;
        };
        records.retain(|(n, _)| *n != number);
        match range.direction {
            Direction::Forward => records.push((number, occurrence.clone())),
            Direction::Backward => records.insert(0, (number, occurrence.clone())),
        }
        records.truncate(range.limit);
        records
    }
}

/// A finding's flap episodes, read through a reader and completed with the open ones.
impl Finding {
    /// The flap episodes of the finding in `range` (by the position that started them), each
    /// with its number, in the order they started (or the reverse): the ended ones from
    /// `history`, the open ones from the live state (which win over a row `history` reads as
    /// still open at `range.as_of`).
    pub(super) fn flap_episodes(
        &self,
        cluster: &str,
        history: &impl HistoryReader,
        range: &HistoryRange,
    ) -> Vec<(u64, FlapEpisode)> {
        let mut records = history.ended_flap_episodes(cluster, &self.check_key, range);
        let open =
            self.flap.open_episodes().iter().filter(|(_, e)| {
                range.opened.contains(&e.started_seq) && e.started_seq <= range.as_of
            });
        let mut merged = false;
        for (number, episode) in open {
            records.retain(|(n, _)| n != number);
            records.push((*number, episode.clone()));
            merged = true;
        }
        if merged {
            match range.direction {
                Direction::Forward => records.sort_unstable_by_key(|(n, _)| *n),
                Direction::Backward => records.sort_unstable_by_key(|(n, _)| std::cmp::Reverse(*n)),
            }
            records.truncate(range.limit);
        }
        records
    }

    /// The flap episodes that may overlap log positions `from..=to`, newest first, of the
    /// latest `limit` that started by `to`: every one that started in the window, and of
    /// those that started before it, the last of each detector (only those can still be open
    /// at `from`: a detector's episodes follow one another). Some do not overlap (filter them
    /// by `stopped_seq`). Read in pages.
    pub(super) fn flap_episodes_overlapping(
        &self,
        cluster: &str,
        history: &impl HistoryReader,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Vec<(u64, FlapEpisode)> {
        /// Records per page; at least 3, so a page always gets past the (at most two)
        /// episodes started at the event the previous page ended at.
        const PAGE: usize = 64;
        let mut newest_first: Vec<(u64, FlapEpisode)> = Vec::new();
        let mut walked = 0;
        // A detector is done once its last episode started before `from` is met, or once the
        // walk reached its first episode (or it has none by `to`): nothing older of it can
        // overlap, so a detector that never flapped does not make the walk read every episode.
        let mut met = [FlapDetector::Count, FlapDetector::StateChange]
            .map(|d| self.flap.first_started(d).is_none_or(|first| first > to));
        if met == [true, true] {
            return Vec::new();
        }
        let mut upper = Bound::Included(to);
        let mut before = u64::MAX;
        loop {
            let wanted = limit.saturating_sub(walked).clamp(3, PAGE);
            let page = self.flap_episodes(
                cluster,
                history,
                &HistoryRange {
                    opened: (Bound::Unbounded, upper),
                    direction: Direction::Backward,
                    limit: wanted,
                    ..HistoryRange::all()
                },
            );
            let exhausted = page.len() < wanted;
            for (number, episode) in page {
                if number >= before {
                    continue;
                }
                if walked >= limit {
                    return newest_first;
                }
                walked += 1;
                before = number;
                upper = Bound::Included(episode.started_seq);
                let detector = episode.detector as usize;
                if episode.started_seq >= from {
                    if self.flap.first_started(episode.detector) == Some(episode.started_seq) {
                        met[detector] = true;
                    }
                    newest_first.push((number, episode));
                    if met == [true, true] {
                        return newest_first;
                    }
                    continue;
                }
                if !met[detector] {
                    met[detector] = true;
                    newest_first.push((number, episode));
                    if met == [true, true] {
                        return newest_first;
                    }
                }
            }
            if exhausted {
                return newest_first;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::ResolutionKind;
    use crate::flaps::FlapDetector;
    use crate::timestamp::Timestamp;

    fn occurrence(opened: u64, resolved: u64) -> Occurrence {
        Occurrence {
            opened_at: Timestamp::from_unix_nanos(opened as i64),
            opened_seq: opened,
            resolved_at: Some(Timestamp::from_unix_nanos(resolved as i64)),
            resolved_seq: Some(resolved),
            resolution_kind: Some(ResolutionKind::Auto),
        }
    }

    fn episode(detector: FlapDetector, started: u64, stopped: u64) -> FlapEpisode {
        FlapEpisode {
            detector,
            started_at: Timestamp::from_unix_nanos(started as i64),
            started_seq: started,
            start_figure: 3,
            stopped_at: Some(Timestamp::from_unix_nanos(stopped as i64)),
            stopped_seq: Some(stopped),
            stop_figure: Some(1),
        }
    }

    fn as_of(as_of: u64) -> HistoryRange {
        HistoryRange {
            as_of,
            ..HistoryRange::all()
        }
    }

    #[test]
    fn reads_as_of_a_position_leave_out_later_rows_and_reopen_later_closes() {
        let mut history = MemoryHistory::new();
        history.occurrence_closed("c", "k", 1, &occurrence(5, 10));
        history.occurrence_closed("c", "k", 2, &occurrence(20, 30));
        let read = |range: &HistoryRange| history.closed_occurrences("c", "k", range);

        let now = read(&HistoryRange::all());
        assert_eq!(now, vec![(1, occurrence(5, 10)), (2, occurrence(20, 30))]);
        let at_25 = read(&as_of(25));
        assert_eq!(at_25[0], (1, occurrence(5, 10)));
        assert_eq!((at_25[1].0, at_25[1].1.resolved_seq), (2, None));
        assert_eq!(read(&as_of(15)), vec![(1, occurrence(5, 10))]);
        assert_eq!(read(&as_of(7))[0].1.resolved_seq, None);
        assert!(read(&as_of(3)).is_empty());
        assert_eq!(history.closed_occurrence_count("c", "k", 25), 1);
        assert_eq!(history.closed_occurrence_count("c", "k", u64::MAX), 2);

        let newest = read(&HistoryRange {
            direction: Direction::Backward,
            limit: 1,
            ..HistoryRange::all()
        });
        assert_eq!(newest, vec![(2, occurrence(20, 30))]);
        let after_5 = read(&HistoryRange {
            opened: (Bound::Excluded(5), Bound::Unbounded),
            ..HistoryRange::all()
        });
        assert_eq!(after_5, vec![(2, occurrence(20, 30))]);
        assert!(
            history
                .closed_occurrences("c", "other", &HistoryRange::all())
                .is_empty()
        );
    }

    #[test]
    fn episodes_ending_out_of_order_are_read_in_the_order_they_started() {
        let mut history = MemoryHistory::new();
        // Both started at position 8; the second to start ended first.
        history.flap_episode_ended("c", "k", 2, &episode(FlapDetector::Count, 8, 12));
        history.flap_episode_ended("c", "k", 1, &episode(FlapDetector::StateChange, 8, 40));
        let all = history.ended_flap_episodes("c", "k", &HistoryRange::all());
        assert_eq!(all.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2]);
        let at_20 = history.ended_flap_episodes("c", "k", &as_of(20));
        assert_eq!(at_20[0].1.stopped_seq, None);
        assert_eq!(at_20[1].1.stopped_seq, Some(12));
        assert_eq!(history.ended_flap_episode_count("c", "k", 20), 1);
    }

    /// Counts the flap episode records a walk reads.
    struct Counting<'a>(&'a MemoryHistory, std::cell::Cell<usize>);

    impl HistoryReader for Counting<'_> {
        fn closed_occurrences(
            &self,
            cluster: &str,
            check_key: &str,
            range: &HistoryRange,
        ) -> Vec<(u64, Occurrence)> {
            self.0.closed_occurrences(cluster, check_key, range)
        }

        fn ended_flap_episodes(
            &self,
            cluster: &str,
            check_key: &str,
            range: &HistoryRange,
        ) -> Vec<(u64, FlapEpisode)> {
            let read = self.0.ended_flap_episodes(cluster, check_key, range);
            self.1.set(self.1.get() + read.len());
            read
        }

        fn closed_occurrence_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
            self.0.closed_occurrence_count(cluster, check_key, as_of)
        }

        fn ended_flap_episode_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
            self.0.ended_flap_episode_count(cluster, check_key, as_of)
        }
    }

    /// A finding that only ever flapped by one detector (the usual case): the episodes that may
    /// overlap a recent window are found without walking back through its whole history.
    #[test]
    fn the_walk_for_a_window_stops_at_a_detector_that_never_flapped() {
        let episodes: Vec<FlapEpisode> = (0..500)
            .map(|i| episode(FlapDetector::Count, 10 * i + 1, 10 * i + 5))
            .collect();
        let (flap, ended) = super::super::flaps::FlapState::restore(
            Default::default(),
            episodes.clone(),
            &[],
            &[],
            None,
            86_400,
        );
        let mut history = MemoryHistory::new();
        for (number, episode) in &ended {
            history.flap_episode_ended("c", "k", *number, episode);
        }
        let finding = Finding {
            check_key: "k".into(),
            category: 0,
            severity: crate::event::Severity::Error,
            title: String::new(),
            detail: None,
            resource: None,
            clean_cycles: 0,
            last_seen_at: Timestamp::default(),
            current: Occurrence::NONE,
            occurrence_count: 0,
            active_slot: super::super::NOT_ACTIVE,
            seen_stamp: 0,
            seen_index: 0,
            open_run: 0,
            flap,
            alert: None,
        };
        let counting = Counting(&history, std::cell::Cell::new(0));
        // The window 4,980..=4,999 holds the start of episode 499 (at 4,991); episode 498
        // (4,981..=4,985) started inside it too; 497 started before it.
        let found = finding.flap_episodes_overlapping("c", &counting, 4_980, 4_999, usize::MAX);
        let starts: Vec<u64> = found.iter().map(|(_, e)| e.started_seq).collect();
        assert_eq!(starts, [4_991, 4_981, 4_971]);
        assert!(
            counting.1.get() <= 64,
            "read {} of 500 episodes for a window of three",
            counting.1.get()
        );
    }
}
