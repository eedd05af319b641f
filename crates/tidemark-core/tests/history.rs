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
            .filter(|(_, o)| {
                o.resolution_kind
                    .is_some_and(ResolutionKind::counts_towards_flapping)
            })
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

impl tidemark_core::timeline_rows::IncidentEntryReader for Tables {
    fn written_entries(
        &self,
        incident: &str,
        after: u64,
        as_of: u64,
        limit: usize,
    ) -> Vec<tidemark_core::incidents::IncidentEntry> {
        self.0
            .read()
            .unwrap()
            .written_entries(incident, after, as_of, limit)
    }

    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64 {
        self.0.read().unwrap().written_entry_count(incident, as_of)
    }

    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool {
        self.0
            .read()
            .unwrap()
            .has_written_entry(incident, seq, as_of)
    }
}

impl tidemark_core::incident_bodies::IncidentBodyReader for Tables {
    fn incident_body(
        &self,
        id: &str,
        as_of: u64,
    ) -> Option<tidemark_core::incident_bodies::BodyRow> {
        self.0.read().unwrap().incident_body(id, as_of)
    }

    fn incidents_in_opening_order(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        as_of: u64,
        visit: &mut dyn FnMut(tidemark_core::incident_bodies::BodyRow) -> bool,
    ) {
        self.0
            .read()
            .unwrap()
            .incidents_in_opening_order(cluster, after, as_of, visit)
    }
}

impl tidemark_core::orphans::DroppedOrphanReader for Tables {
    fn dropped_orphans(
        &self,
        cluster: &str,
        start: std::ops::Bound<&tidemark_core::orphans::OrphanOrder>,
        as_of: u64,
        visit: &mut dyn FnMut(tidemark_core::orphans::OrphanView) -> bool,
    ) {
        self.0
            .read()
            .unwrap()
            .dropped_orphans(cluster, start, as_of, visit)
    }
}

impl Tables {
    fn write(&self, records: Vec<tidemark_core::findings::HistoryRecord>) {
        let mut history = self.0.write().unwrap();
        for record in records {
            record.replay_into(&mut *history);
        }
    }

    /// Writes what the fold of `projections` wrote out since the last call: the findings'
    /// history and the incidents' timeline entries (as a store's batch writes both).
    fn write_all(&self, projections: &mut tidemark_core::Projections) {
        self.write(projections.take_history_records());
        let records = projections.take_timeline_records();
        ENTRY_RECORDS.fetch_add(records.len(), std::sync::atomic::Ordering::Relaxed);
        self.0.write().unwrap().write_incident_entries(&records);
        let bodies = projections.take_incident_body_records();
        BODY_RECORDS.fetch_add(bodies.len(), std::sync::atomic::Ordering::Relaxed);
        self.0.write().unwrap().write_incident_bodies(&bodies);
        let orphans = projections.take_dropped_orphan_records();
        self.0.write().unwrap().write_dropped_orphans(&orphans);
    }
}

/// Incident versions written out by every run of the property (some must be).
static BODY_RECORDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Timeline records written out by every run of the property (some must be).
static ENTRY_RECORDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
        "incident_pages": incident_pages(projections),
        "whole_incidents": format!("{:?}", projections.incidents().whole_snapshot()),
        "timelines": timelines(projections),
    })
}

/// The incident lists read page by page (ADR 0006 step 4: incidents that are not open are read
/// from rows in opening order, merged with those in memory): every incident in pages of one,
/// and per cluster the closed ones without the absorbed, in pages of two.
fn incident_pages(projections: &tidemark_core::Projections) -> serde_json::Value {
    use tidemark_core::incidents::IncidentState;
    let incidents = projections.incidents();
    let findings = projections.findings();
    let read = |cluster: Option<&str>, merged: bool, closed_only: bool, limit: usize| {
        let mut pages = Vec::new();
        let mut after: Option<(u64, String)> = None;
        loop {
            let (page, more) = incidents.views_page(
                findings,
                cluster,
                merged,
                |state| !closed_only || state == IncidentState::Closed,
                after.as_ref().map(|(seq, id)| (*seq, id.as_str())),
                limit,
            );
            after = page.last().map(|v| (v.opened_seq, v.id.clone()));
            pages.push(page);
            if !more {
                break;
            }
        }
        pages
    };
    let clusters: std::collections::BTreeSet<String> = incidents
        .incidents()
        .iter()
        .map(|i| i.cluster.clone())
        .collect();
    serde_json::json!({
        "every": read(None, true, false, 1),
        "closed_by_cluster": clusters
            .iter()
            .map(|c| read(Some(c), false, true, 2))
            .collect::<Vec<_>>(),
    })
}

/// Every incident's timeline, whole and read in pages of two (ADR 0006 step 3: entries of
/// incidents that are not open are read back from rows, unioned with those in memory).
fn timelines(projections: &tidemark_core::Projections) -> serde_json::Value {
    let incidents = projections.incidents();
    incidents
        .incidents()
        .iter()
        .map(|incident| {
            let whole = incidents.timeline(incident).into_owned();
            let mut paged = Vec::new();
            let mut after = 0;
            loop {
                let (page, more) = incidents.timeline_page(incident, after, 2);
                after = page.last().map_or(after, |e| e.seq);
                paged.extend(page);
                if !more {
                    break;
                }
            }
            assert_eq!(paged, whole, "pages of {}", incident.id);
            assert_eq!(incidents.timeline_len(incident), whole.len());
            let positions: Vec<u64> = whole.iter().map(|e| e.seq).collect();
            assert_eq!(
                incidents.timeline_positions(incident, 0, usize::MAX),
                positions
            );
            serde_json::json!({ "id": incident.id, "timeline": whole })
        })
        .collect()
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
        live.write_incidents_out();
        // A past position after the cut, and what the state showed there.
        let later = (cut + (events.len() - cut) / 2) as u64;
        let mut at_later = None;
        let mut at_cut = None;
        let mut whole: Option<Projections> = None;
        for (index, event) in events.iter().enumerate() {
            let seq = index as u64 + 1;
            memory.apply(seq, event);
            live.apply(seq, event);
            // In batches of three, as a store writes a batch's records in its transaction:
            // the fold reads back what it wrote out earlier in the batch from its records.
            let batch_ends = seq.is_multiple_of(3) || index + 1 == cut || index + 1 == events.len();
            if batch_ends {
                tables.write_all(&mut live);
            }
            if seq == later && cut > 0 {
                at_later = Some(shown(&memory));
            }
            if index + 1 == cut {
                let bytes = postcard::to_allocvec(&live.live_snapshot_serializer()).unwrap();
                prop_assert_eq!(
                    &bytes,
                    &postcard::to_allocvec(&live.live_snapshot()).unwrap()
                );
                let mut decoded: LiveProjectionsSnapshot = postcard::from_bytes(&bytes).unwrap();
                // The incidents' numbers are not in these bytes: a store's manifest holds them
                // next to them (snapshot format 9).
                decoded.incidents.numbers = live.live_snapshot().incidents.numbers;
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
                live.write_incidents_out();
                let mut restored_whole =
                    Projections::restore_live_owned(decoded.clone(), tables.clone(), None);
                restored_whole.write_incidents_out();
                whole = Some(restored_whole);
                at_cut = Some((decoded, shown(&memory)));
            } else if let Some(whole) = whole.as_mut() {
                whole.apply(seq, event);
                // Its records are the live state's, which wrote them: dropped with the batch
                // (until then the fold reads back what it wrote out from them).
                if batch_ends {
                    drop(whole.take_history_records());
                    drop(whole.take_timeline_records());
                    drop(whole.take_incident_body_records());
                }
            }
        }
        prop_assert_eq!(shown(&live), shown(&memory));
        // Memory holds the present: the live state keeps the open incidents only.
        let kept = live.live_snapshot().incidents;
        prop_assert!(
            kept.incidents
                .iter()
                .all(|i| i.state() == tidemark_core::incidents::IncidentState::Open),
            "the live state keeps an incident that is not open"
        );
        if let Some(whole) = whole {
            prop_assert!(live.live_snapshot() == whole.live_snapshot());
        }
        if let Some((snapshot, then)) = at_cut {
            let past =
                Projections::restore_live_owned(snapshot.clone(), tables.clone(), Some(cut as u64));
            prop_assert_eq!(shown(&past), then);
            // A past state folded further from the snapshot (time travel): it writes nothing
            // out and reads the rows as of its position.
            if let Some(then) = at_later {
                let mut past =
                    Projections::restore_live_owned(snapshot, tables.clone(), Some(later));
                for (index, event) in events.iter().enumerate().take(later as usize).skip(cut) {
                    past.apply(index as u64 + 1, event);
                    prop_assert!(past.take_timeline_records().is_empty());
                    prop_assert!(past.take_incident_body_records().is_empty());
                }
                prop_assert_eq!(shown(&past), then);
            }
        }
        Ok(())
    });
    assert!(
        ENTRY_RECORDS.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no run wrote a timeline entry out"
    );
    assert!(
        BODY_RECORDS.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no run wrote an incident out"
    );
}

/// ADR 0006 step 3's rare paths, position by position against the fold that keeps every entry
/// in memory: an automatic incident that closed (its entries written out), was reopened by an
/// `incident.opened` naming it and is then absorbed (its rows read back and moved); a merge
/// into a closed incident; a note on a closed one. Each live state, and each past state folded
/// from every earlier snapshot, shows the same timelines.
/// A log through the rare paths of incidents written out: an automatic incident that closes,
/// is reopened by an `incident.opened` naming it and is then absorbed; an explicit incident
/// closed, noted, absorbing an open automatic one while closed; a note through an absorbed one.
fn reopen_absorb_events() -> Vec<tidemark_core::Event> {
    use tidemark_core::event::{IncidentChange, NoteAdded, NoteKind, ResourceRef};
    let pod = |name: &str| {
        let mut o = obs("pod:crashloop:web", "pods");
        o.check_key = format!("pod:crashloop:{name}");
        o.resource = Some(ResourceRef {
            kind: "Pod".into(),
            namespace: Some("web".into()),
            name: name.into(),
            uid: None,
        });
        o
    };
    let change = |incident: &str, keys: &[&str]| IncidentChange {
        incident: incident.into(),
        title: Some(format!("{incident} title")),
        severity: None,
        check_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        summary: None,
    };
    let note = |id: &str, secs, incident: &str| {
        event(
            id,
            "c",
            secs,
            tidemark_core::Payload::NoteAdded(NoteAdded {
                incident: Some(incident.into()),
                author: "operator".into(),
                kind: NoteKind::Observation,
                text: "seen".into(),
                links: Vec::new(),
                check_keys: Vec::new(),
            }),
        )
    };
    vec![
        threshold("e1", "c", 0, 1),
        cycle("e2", "c", 60, &["pods"], vec![pod("a")]),
        manual_resolve("e3", "c", 120, "pod:crashloop:a"),
        // Reopens the automatic incident the crash loop opened at 2 (closed at 3).
        event(
            "e4",
            "c",
            180,
            tidemark_core::Payload::IncidentOpened(change("auto-c-2", &[])),
        ),
        cycle("e5", "c", 240, &["pods"], vec![pod("a")]),
        // An explicit incident names the finding: the reopened automatic one is absorbed.
        event(
            "e6",
            "c",
            300,
            tidemark_core::Payload::IncidentOpened(change("inc-x", &["pod:crashloop:a"])),
        ),
        event(
            "e7",
            "c",
            360,
            tidemark_core::Payload::IncidentClosed(change("inc-x", &[])),
        ),
        note("e8", 420, "inc-x"),
        cycle("e9", "c", 480, &["pods"], vec![pod("b")]),
        cycle("e10", "c", 540, &["pods"], vec![]),
        // A closed incident absorbs the open automatic one of `b`... after it is closed again.
        event(
            "e11",
            "c",
            600,
            tidemark_core::Payload::IncidentClosed(change("inc-x", &["pod:crashloop:b"])),
        ),
        note("e12", 660, "auto-c-2"),
    ]
}

#[test]
fn timelines_written_out_read_the_same_through_reopen_absorb_and_notes() {
    use std::sync::Arc;
    use tidemark_core::Projections;
    use tidemark_core::timeline_rows::IncidentEntryReader as _;
    let events = reopen_absorb_events();
    let tables = Arc::new(Tables::default());
    let mut memory = Projections::new();
    let mut live = Projections::new();
    live.read_history_from(tables.clone(), None);
    live.write_incidents_out();
    let mut shown_at = Vec::new();
    let mut snapshots = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let seq = index as u64 + 1;
        memory.apply(seq, event);
        live.apply(seq, event);
        tables.write_all(&mut live);
        let expected = serde_json::json!([timelines(&memory), incident_pages(&memory)]);
        assert_eq!(
            serde_json::json!([timelines(&live), incident_pages(&live)]),
            expected,
            "live, at {seq}"
        );
        assert!(live.incidents().whole_snapshot() == memory.incidents().whole_snapshot());
        shown_at.push(expected);
        snapshots.push(live.live_snapshot());
    }
    let absorbed = memory.incidents().incident("auto-c-2").unwrap();
    assert_eq!(
        absorbed.merged_into.as_deref(),
        Some("inc-x"),
        "the path is taken"
    );
    assert!(
        tables.0.read().unwrap().written_entry_count("auto-c-2", 3) > 0,
        "the automatic incident's entries were written out when it closed"
    );
    for (from, snapshot) in snapshots.iter().enumerate() {
        for (to, then) in shown_at.iter().enumerate().skip(from) {
            let mut past = Projections::restore_live_owned(
                snapshot.clone(),
                tables.clone(),
                Some(to as u64 + 1),
            );
            for (index, event) in events.iter().enumerate().take(to + 1).skip(from + 1) {
                past.apply(index as u64 + 1, event);
            }
            assert_eq!(
                &serde_json::json!([timelines(&past), incident_pages(&past)]),
                then,
                "as of {} from the snapshot at {}",
                to + 1,
                from + 1
            );
        }
    }
}

/// A store upgraded to layout 4 at position `C` whose latest snapshot `S` is older: the events
/// in `(S, C]` were folded before the upgrade, so the rows hold no version of an incident they
/// closed before `C` (the upgrade wrote every closed incident at `C`), and the snapshot holds
/// every incident. The store's restore folds them as a past state folds (nothing written out),
/// then writes out from the first batch on, which also writes out what the snapshot and the
/// replay left in memory of closed incidents. Every pair `S <= C` of the rare-path log, folded
/// on to its end in batches of two, shows what the fold in memory shows, and keeps only open
/// incidents in memory once it has written.
#[test]
fn a_store_upgraded_after_its_latest_snapshot_restores_and_folds_on_exactly() {
    use std::sync::Arc;
    use tidemark_core::Projections;
    let events = reopen_absorb_events();
    let n = events.len();
    let mut memory = Projections::new();
    for (index, event) in events.iter().enumerate() {
        memory.apply(index as u64 + 1, event);
    }
    let expected = shown(&memory);
    for upgraded_at in 0..=n {
        // Layout 3 up to `C`: timelines written out, incidents kept in memory (snapshots hold
        // them all).
        let tables = Arc::new(Tables::default());
        let mut layout_3 = Projections::new();
        layout_3.read_history_from(tables.clone(), None);
        layout_3.write_timelines_out();
        let mut snapshots = vec![layout_3.live_snapshot()];
        for (index, event) in events.iter().enumerate().take(upgraded_at) {
            layout_3.apply(index as u64 + 1, event);
            tables.write_all(&mut layout_3);
            snapshots.push(layout_3.live_snapshot());
        }
        // The upgrade: every closed incident written out at `C`.
        layout_3.write_incidents_out();
        layout_3.write_out_closed_incidents(upgraded_at as u64);
        tables.write_all(&mut layout_3);
        for (snapshot_at, snapshot) in snapshots.into_iter().enumerate() {
            let tables = Arc::new(Tables(std::sync::RwLock::new(
                tables.0.read().unwrap().clone(),
            )));
            // The restore: the snapshot, the events after it up to `C` folded without writing
            // out, then writing out.
            let mut live = Projections::restore_live_owned(snapshot, tables.clone(), None);
            for (index, event) in events
                .iter()
                .enumerate()
                .take(upgraded_at)
                .skip(snapshot_at)
            {
                live.apply(index as u64 + 1, event);
            }
            drop(live.take_history_records());
            live.write_incidents_out();
            for (index, event) in events.iter().enumerate().skip(upgraded_at) {
                live.apply(index as u64 + 1, event);
                if index % 2 == 1 || index + 1 == n {
                    let at = index as u64 + 1;
                    live.write_out_closed_incidents(at);
                    tables.write_all(&mut live);
                }
            }
            assert_eq!(
                shown(&live),
                expected,
                "upgraded at {upgraded_at}, snapshot at {snapshot_at}"
            );
            if upgraded_at < n {
                assert!(
                    live.live_snapshot()
                        .incidents
                        .incidents
                        .iter()
                        .all(|i| i.state() == tidemark_core::incidents::IncidentState::Open),
                    "upgraded at {upgraded_at}, snapshot at {snapshot_at}: a closed incident kept"
                );
            }
        }
    }
}
