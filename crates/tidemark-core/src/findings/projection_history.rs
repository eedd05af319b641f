//! Where a findings projection's history is (ADR 0006): in memory ([`MemoryHistory`]: replay,
//! the CLI, a store of layout 1), or elsewhere, read through a shared [`SharedHistoryReader`]
//! (the store's tables), while the fold collects what it writes out for the store to write in
//! the batch's transaction, or discards it when a past state is refolded (its history is already
//! written).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::flaps::FlapEpisode;
use super::history::{
    FoldHistory, HistoryRange, HistoryReader, HistoryRecord, HistorySink, MemoryHistory,
    auto_resolutions_read,
};
use super::{Occurrence, ResolutionKind};
use crate::incident_bodies::IncidentBodyReader;
use crate::orphans::DroppedOrphanReader;
use crate::timeline_rows::IncidentEntryReader;
use crate::timestamp::Timestamp;

/// A history reader a projection can hold and share between threads: a finding's history,
/// the incidents and timeline entries the incidents projection wrote out, and the orphans of
/// dropped traces (those projections read theirs through the same reader).
pub trait SharedHistoryReader:
    HistoryReader
    + IncidentEntryReader
    + IncidentBodyReader
    + DroppedOrphanReader
    + Send
    + Sync
    + fmt::Debug
{
}

impl<
    T: HistoryReader
        + IncidentEntryReader
        + IncidentBodyReader
        + DroppedOrphanReader
        + Send
        + Sync
        + fmt::Debug,
> SharedHistoryReader for T
{
}

/// Where the history of a projection is, and where its fold writes.
#[derive(Clone, Debug)]
pub(super) enum ProjectionHistory {
    /// In memory: the fold writes to it and the views read it.
    Memory(MemoryHistory),
    /// Read through a shared reader, as of a position.
    Shared(SharedHistory),
}

impl Default for ProjectionHistory {
    fn default() -> Self {
        Self::Memory(MemoryHistory::new())
    }
}

/// A history read through a shared reader.
#[derive(Clone)]
pub(super) struct SharedHistory {
    reader: Arc<dyn SharedHistoryReader>,
    /// Reads see the history as of this position (`u64::MAX`: all of it, the live state).
    as_of: u64,
    /// What the fold wrote out since the last [`ProjectionHistory::take_records`]: `None` when
    /// it is discarded (a past state refolded: its history is already in the reader).
    written: Option<Vec<HistoryRecord>>,
}

impl fmt::Debug for SharedHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedHistory")
            .field("reader", &self.reader)
            .field("as_of", &self.as_of)
            .field("written", &self.written.as_ref().map(Vec::len))
            .finish()
    }
}

/// Where a fold over a shared history writes (the records to collect, or nowhere) and reads
/// back from: the reader as of the state's position, and what it collected since the last
/// write-out (not in the reader yet).
pub(super) struct SharedSink<'a> {
    reader: &'a dyn SharedHistoryReader,
    as_of: u64,
    collected: Option<&'a mut Vec<HistoryRecord>>,
}

impl HistorySink for SharedSink<'_> {
    fn occurrence_closed(&mut self, cluster: &str, key: &str, number: u64, o: &Occurrence) {
        if let Some(records) = self.collected.as_deref_mut() {
            records.occurrence_closed(cluster, key, number, o);
        }
    }

    fn flap_episode_ended(&mut self, cluster: &str, key: &str, number: u64, e: &FlapEpisode) {
        if let Some(records) = self.collected.as_deref_mut() {
            records.flap_episode_ended(cluster, key, number, e);
        }
    }
}

impl FoldHistory for SharedSink<'_> {
    /// The reader's and the collected ones, each once: a refold at open collects again what
    /// the reader already holds.
    fn auto_resolutions_between(
        &self,
        cluster: &str,
        check_key: &str,
        after: Timestamp,
        up_to: Timestamp,
    ) -> Vec<Timestamp> {
        let mut found: BTreeMap<u64, Timestamp> =
            auto_resolutions_read(self.reader, cluster, check_key, self.as_of, after, up_to)
                .into_iter()
                .collect();
        for record in self.collected.as_deref().map_or(&[][..], Vec::as_slice) {
            if let HistoryRecord::OccurrenceClosed {
                cluster: c,
                check_key: k,
                number,
                occurrence,
            } = record
                && c == cluster
                && &**k == check_key
                && occurrence
                    .resolution_kind
                    .is_some_and(ResolutionKind::counts_towards_flapping)
                && let Some(at) = occurrence.resolved_at
                && after < at
                && at <= up_to
            {
                found.insert(*number, at);
            }
        }
        found.into_values().collect()
    }
}

impl ProjectionHistory {
    /// A shared history: the live state's (`as_of` `None`: reads see everything, the fold's
    /// records are collected) or a past state's (reads as of `as_of`, records discarded).
    pub(super) fn shared(reader: Arc<dyn SharedHistoryReader>, as_of: Option<u64>) -> Self {
        Self::Shared(SharedHistory {
            reader,
            as_of: as_of.unwrap_or(u64::MAX),
            written: as_of.is_none().then(Vec::new),
        })
    }

    /// The in-memory history, if that is where it is.
    pub(super) fn memory(&self) -> Option<&MemoryHistory> {
        match self {
            Self::Memory(memory) => Some(memory),
            Self::Shared(_) => None,
        }
    }

    /// Moves the position reads see the history as of (a past state folded further).
    pub(super) fn set_as_of(&mut self, as_of: u64) {
        if let Self::Shared(shared) = self {
            shared.as_of = as_of;
        }
    }

    /// The records the fold wrote out since the last call, in fold order (none for an
    /// in-memory history, which keeps them, or one that discards them).
    pub(super) fn take_records(&mut self) -> Vec<HistoryRecord> {
        match self {
            Self::Shared(SharedHistory {
                written: Some(records),
                ..
            }) => std::mem::take(records),
            _ => Vec::new(),
        }
    }

    /// Runs `fold` with the history the fold writes this history's records to and reads
    /// back from.
    pub(super) fn writing<R>(&mut self, fold: impl FnOnce(&mut dyn FoldHistory) -> R) -> R {
        match self {
            Self::Memory(memory) => fold(memory),
            Self::Shared(SharedHistory {
                reader,
                as_of,
                written,
            }) => fold(&mut SharedSink {
                reader: &**reader,
                as_of: *as_of,
                collected: written.as_mut(),
            }),
        }
    }
}

impl HistoryReader for ProjectionHistory {
    fn closed_occurrences(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, Occurrence)> {
        match self {
            Self::Memory(memory) => memory.closed_occurrences(cluster, check_key, range),
            Self::Shared(shared) => shared.reader.closed_occurrences(
                cluster,
                check_key,
                &HistoryRange {
                    as_of: range.as_of.min(shared.as_of),
                    ..*range
                },
            ),
        }
    }

    fn ended_flap_episodes(
        &self,
        cluster: &str,
        check_key: &str,
        range: &HistoryRange,
    ) -> Vec<(u64, FlapEpisode)> {
        match self {
            Self::Memory(memory) => memory.ended_flap_episodes(cluster, check_key, range),
            Self::Shared(shared) => shared.reader.ended_flap_episodes(
                cluster,
                check_key,
                &HistoryRange {
                    as_of: range.as_of.min(shared.as_of),
                    ..*range
                },
            ),
        }
    }

    fn closed_occurrence_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
        match self {
            Self::Memory(memory) => memory.closed_occurrence_count(cluster, check_key, as_of),
            Self::Shared(shared) => {
                shared
                    .reader
                    .closed_occurrence_count(cluster, check_key, as_of.min(shared.as_of))
            }
        }
    }

    fn ended_flap_episode_count(&self, cluster: &str, check_key: &str, as_of: u64) -> u64 {
        match self {
            Self::Memory(memory) => memory.ended_flap_episode_count(cluster, check_key, as_of),
            Self::Shared(shared) => {
                shared
                    .reader
                    .ended_flap_episode_count(cluster, check_key, as_of.min(shared.as_of))
            }
        }
    }
}
