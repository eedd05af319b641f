//! The history the fold writes out (ADR 0006, first step): the live state holds at most the
//! current occurrence and the open flap episodes of each finding, however long the log, and
//! the history sink receives exactly the history the views show.

mod support;

use std::collections::BTreeMap;

use proptest::prop_assert;
use proptest::prop_assert_eq;
use support::*;
use tidemark_core::findings::{FindingsProjection, FoldHistory, HistorySink};
use tidemark_core::flaps::FlapEpisode;
use tidemark_core::{Applied, FindingState, LogFold, Occurrence, ResolutionKind, Timestamp};

/// Over long random logs, no live finding ever holds more than its current occurrence and one
/// open flap episode per detector.
#[test]
fn live_findings_hold_a_bounded_history() {
    assert_property("bounded live history", 300, log(2, 600), |events| {
        let mut fold = LogFold::new();
        for (index, event) in events.iter().enumerate() {
            fold.apply(event);
            let held = fold.findings().largest_live_history();
            prop_assert!(
                held.occurrences <= 1 && held.flap_episodes <= 2,
                "after event {}: a live finding holds {:?}",
                index,
                held
            );
        }
        Ok(())
    });
}

/// Records what a history sink receives, in the order it receives it.
#[derive(Default)]
struct Recorder {
    occurrences: BTreeMap<(String, String), Vec<(u64, Occurrence)>>,
    flap_episodes: BTreeMap<(String, String), Vec<(u64, FlapEpisode)>>,
}

impl HistorySink for Recorder {
    fn occurrence_closed(&mut self, cluster: &str, key: &str, number: u64, o: &Occurrence) {
        let finding = (cluster.to_owned(), key.to_owned());
        self.occurrences
            .entry(finding)
            .or_default()
            .push((number, o.clone()));
    }

    fn flap_episode_ended(&mut self, cluster: &str, key: &str, number: u64, e: &FlapEpisode) {
        let finding = (cluster.to_owned(), key.to_owned());
        self.flap_episodes
            .entry(finding)
            .or_default()
            .push((number, e.clone()));
    }
}

/// The fold reads back from the history it writes when a flap window widens.
impl FoldHistory for Recorder {
    fn auto_resolutions_between(
        &self,
        cluster: &str,
        key: &str,
        after: Timestamp,
        up_to: Timestamp,
    ) -> Vec<Timestamp> {
        let finding = (cluster.to_owned(), key.to_owned());
        self.occurrences
            .get(&finding)
            .into_iter()
            .flatten()
            .filter(|(_, o)| o.resolution_kind == Some(ResolutionKind::Auto))
            .filter_map(|(_, o)| o.resolved_at)
            .filter(|&at| after < at && at <= up_to)
            .collect()
    }
}

/// Folding a random log into a sink of its own: the sink receives exactly the closed
/// occurrences and ended flap episodes the views show (their whole history but the open
/// ones), each once, numbered as the views number them.
#[test]
fn the_history_sink_receives_exactly_the_history_the_views_show() {
    assert_property("history sink", 1_000, log(3, 120), |events| {
        let mut fold = LogFold::new();
        let mut written_out = FindingsProjection::new();
        let mut sink = Recorder::default();
        for event in &events {
            if let Applied::At(seq) = fold.apply(event) {
                written_out.apply_writing_history(seq, event, &mut Vec::new(), &mut sink);
            }
        }
        let mut closed = BTreeMap::new();
        for view in fold.findings().views() {
            let finding = (view.cluster.clone(), view.check_key.clone());
            let numbered: Vec<(u64, Occurrence)> = (1..).zip(view.history).collect();
            let open = numbered
                .iter()
                .filter(|(_, o)| o.resolved_seq.is_none())
                .count();
            prop_assert!(open <= usize::from(view.state == FindingState::Active));
            let done: Vec<_> = numbered
                .into_iter()
                .filter(|(_, o)| o.resolved_seq.is_some())
                .collect();
            if !done.is_empty() {
                closed.insert(finding, done);
            }
        }
        prop_assert_eq!(&sink.occurrences, &closed);

        let mut ended = BTreeMap::new();
        for flap in fold.findings().flaps(None) {
            let finding = (flap.cluster.clone(), flap.check_key.clone());
            let mut done: Vec<(u64, FlapEpisode)> = (1..)
                .zip(
                    fold.findings()
                        .flap_episodes(&flap.cluster, &flap.check_key),
                )
                .filter(|(_, e)| !e.is_open())
                .collect();
            // The sink receives episodes as they end, which need not be the order they started.
            let received = sink.flap_episodes.get_mut(&finding);
            if let Some(received) = received {
                received.sort_by_key(|(number, _)| *number);
            }
            done.sort_by_key(|(number, _)| *number);
            if !done.is_empty() {
                ended.insert(finding, done);
            }
        }
        prop_assert_eq!(&sink.flap_episodes, &ended);
        Ok(())
    });
}

/// A history in memory behind a lock: what the store's tables are to a live projection (the
/// fold's records are written to it after each event, as the store writes them in the batch's
/// transaction).
#[derive(Debug, Default)]
struct Tables(std::sync::RwLock<tidemark_core::findings::MemoryHistory>);

impl tidemark_core::findings::HistoryReader for Tables {
    fn closed_occurrences(
        &self,
        cluster: &str,
        key: &str,
        range: &tidemark_core::findings::HistoryRange,
    ) -> Vec<(u64, Occurrence)> {
        self.0
            .read()
            .unwrap()
            .closed_occurrences(cluster, key, range)
    }

    fn ended_flap_episodes(
        &self,
        cluster: &str,
        key: &str,
        range: &tidemark_core::findings::HistoryRange,
    ) -> Vec<(u64, FlapEpisode)> {
        self.0
            .read()
            .unwrap()
            .ended_flap_episodes(cluster, key, range)
    }

    fn closed_occurrence_count(&self, cluster: &str, key: &str, as_of: u64) -> u64 {
        self.0
            .read()
            .unwrap()
            .closed_occurrence_count(cluster, key, as_of)
    }

    fn ended_flap_episode_count(&self, cluster: &str, key: &str, as_of: u64) -> u64 {
        self.0
            .read()
            .unwrap()
            .ended_flap_episode_count(cluster, key, as_of)
    }
}

impl Tables {
    fn write(&self, records: Vec<tidemark_core::findings::HistoryRecord>) {
        let mut history = self.0.write().unwrap();
        for record in records {
            record.replay_into(&mut *history);
        }
    }
}

/// Cluster parts held in memory, read by cluster, each read recorded.
struct PartsInMemory {
    parts: std::collections::BTreeMap<String, tidemark_core::ClusterPart>,
    position: u64,
    reads: std::sync::Mutex<Vec<String>>,
}

impl tidemark_core::ClusterPartSource for PartsInMemory {
    fn read_part(&self, cluster: &str, part: u64) -> Option<tidemark_core::ClusterPart> {
        assert_eq!(part, self.position, "the position the part was named with");
        self.reads.lock().unwrap().push(cluster.to_owned());
        self.parts.get(cluster).cloned()
    }
}

/// What the views of a state show (every finding with its whole history, the flaps with their
/// episodes, stuck), as JSON.
fn shown(projections: &tidemark_core::Projections) -> serde_json::Value {
    let findings = projections.findings();
    let episodes: Vec<Vec<FlapEpisode>> = findings
        .flaps(None)
        .iter()
        .map(|f| findings.flap_episodes(&f.cluster, &f.check_key))
        .collect();
    serde_json::json!({
        "views": findings.views(),
        "flaps": findings.flaps(None),
        "episodes": serde_json::to_value(&episodes).unwrap(),
        "stuck": findings.stuck(None),
        "incidents": projections.incidents().views(projections.findings(), None, true),
    })
}

/// ADR 0006 step 2 (store layout 2): a projection whose history is written out to a shared
/// reader and whose snapshots are live snapshots (no history) shows exactly what the
/// projection with its history in memory shows: live, after a restore from a live snapshot
/// (through its bytes) and a fold of the rest, and as of a past position (a live snapshot of
/// that position restored with the history read as of it, after the history went on).
#[test]
fn a_live_snapshot_and_a_shared_history_show_what_the_history_in_memory_shows() {
    use std::sync::Arc;
    use tidemark_core::{LiveProjectionsSnapshot, Projections};
    assert_property("live snapshot", 300, log(3, 150), |events| {
        let cut = events.len() / 2;
        let tables = Arc::new(Tables::default());
        let mut memory = Projections::new();
        let mut live = Projections::new();
        live.read_history_from(tables.clone(), None);
        let mut at_cut = None;
        let mut whole: Option<Projections> = None;
        for (index, event) in events.iter().enumerate() {
            let seq = index as u64 + 1;
            memory.apply(seq, event);
            live.apply(seq, event);
            tables.write(live.take_history_records());
            if index + 1 == cut {
                let bytes = postcard::to_allocvec(&live.live_snapshot_serializer()).unwrap();
                prop_assert_eq!(
                    &bytes,
                    &postcard::to_allocvec(&live.live_snapshot()).unwrap()
                );
                let decoded: LiveProjectionsSnapshot = postcard::from_bytes(&bytes).unwrap();
                // By cluster parts (a per-cluster snapshot): each part serialized from the live
                // state is that cluster's share of the snapshot, and the parts restored one at a
                // time give the state the whole snapshot gives.
                let (parts, incidents) = decoded.clone().into_parts();
                for part in &parts {
                    let cluster = part.findings.cluster.as_ref();
                    let written = live.live_cluster_part_serializer(cluster).unwrap();
                    prop_assert_eq!(
                        postcard::to_allocvec(&written).unwrap(),
                        postcard::to_allocvec(part).unwrap()
                    );
                }
                let source = Arc::new(PartsInMemory {
                    parts: parts
                        .iter()
                        .map(|p| (p.findings.cluster.to_string(), p.clone()))
                        .collect(),
                    position: cut as u64,
                    reads: Default::default(),
                });
                let names: Vec<(String, u64)> = source
                    .parts
                    .keys()
                    .map(|c| (c.clone(), cut as u64))
                    .collect();
                let by_parts = Projections::restore_live_parts(
                    parts.into_iter().map(Ok::<_, std::convert::Infallible>),
                    incidents.clone(),
                    tables.clone(),
                    None,
                )
                .unwrap();
                prop_assert!(by_parts.live_snapshot() == decoded);
                prop_assert_eq!(shown(&by_parts), shown(&memory));
                // Restored lazily (ADR 0006, "Reopen across clusters"): no part is read until
                // a cluster is needed, a read of one cluster reads its part only, and nothing
                // counts as changed since the snapshot.
                let lazily = Projections::restore_live_lazily(
                    names.clone(),
                    source.clone(),
                    incidents,
                    tables.clone(),
                    None,
                );
                prop_assert_eq!(lazily.clusters_in_memory(), 0);
                prop_assert!(lazily.clusters_changed().all(|(_, changed)| !changed));
                if let Some((first, _)) = names.first() {
                    lazily.findings().stuck(Some(first));
                    lazily.orphans().orphans(Some(first));
                    prop_assert_eq!(lazily.clusters_in_memory(), 1);
                    // One read: the part's orphan half waited for the orphans projection.
                    prop_assert_eq!(source.reads.lock().unwrap().clone(), vec![first.clone()]);
                }
                prop_assert_eq!(lazily.clusters_changed().count(), names.len());
                // The rest is folded from the restored states, not the one that never stopped:
                // the lazy one, and one restored whole beside it.
                live = lazily;
                whole = Some(Projections::restore_live_owned(
                    decoded.clone(),
                    tables.clone(),
                    None,
                ));
                at_cut = Some((decoded, shown(&memory)));
            } else if let Some(whole) = whole.as_mut() {
                whole.apply(seq, event);
                drop(whole.take_history_records());
            }
        }
        prop_assert_eq!(shown(&live), shown(&memory));
        if let Some(whole) = whole {
            prop_assert!(live.live_snapshot() == whole.live_snapshot());
        }
        if let Some((snapshot, then)) = at_cut {
            let past = Projections::restore_live_owned(snapshot, tables.clone(), Some(cut as u64));
            prop_assert_eq!(shown(&past), then);
        }
        Ok(())
    });
}
