//! The fold's own change records (ADR 0008, test 1): folding each event with
//! `Projections::apply_with_changes` says, for every part (`finding`, `flap`, `stuck`,
//! `drift`, `unstable_key`, `orphan`, `candidate` and `incident`), exactly what
//! `tidemark replay --step` says by comparing the whole digest before and after the event
//! (`Digest::of`, `Digest::changes`): the same lines, element by element. And watching never
//! changes the state: both folds end with equal snapshots. The same holds for a live state
//! (incidents written out as they stop being open, read back when an event changes them), and
//! from a restore of its snapshot on (whole, or its clusters restored lazily).
//!
//! Two generators: the findings' (`support::log`), and an orphan-heavy one
//! (`support::orphan_log`: scans of uids sharing few names, tracking rows, spans of a few traces
//! with span ids repeated across traces, confirm, grace and retention settings, mixed with the
//! findings' steps), in which orphans sharing a label are common.
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use support::*;
use tidemark_core::changes::{Change, Digest, PARTS, orphan_label};
use tidemark_core::findings::FindingChange;
use tidemark_core::{Event, Projections};

/// The parts the findings' generator changes (it makes no orphans).
const FINDINGS_LOG_PARTS: [&str; 6] = [
    "finding",
    "flap",
    "stuck",
    "drift",
    "unstable_key",
    "incident",
];

/// The kinds of incident change, as `--step` says them.
const INCIDENT_KINDS: [&str; 7] = [
    "opened",
    "linked",
    "closed",
    "merged",
    "reopened",
    "failure layers",
    "timeline entry",
];

/// Which kinds of incident change a line of the part `incident` says (one line may say several).
fn incident_kinds(change: &str) -> Vec<usize> {
    let says = [
        change.starts_with("opened ("),
        change.contains("linked "),
        change.contains("→ closed"),
        change.contains("→ merged"),
        change.contains("→ open"),
        change.contains("failure layers: "),
        change == "timeline entry",
    ];
    (0..says.len()).filter(|&k| says[k]).collect()
}

/// Counts, over the cases of a property, how many cases saw each part and each kind of
/// incident change: the property must see every one of them, or it proves nothing about it.
struct Exercised {
    parts: [AtomicUsize; PARTS.len()],
    incident_kinds: [AtomicUsize; INCIDENT_KINDS.len()],
}

impl Exercised {
    const fn new() -> Self {
        Self {
            parts: [const { AtomicUsize::new(0) }; PARTS.len()],
            incident_kinds: [const { AtomicUsize::new(0) }; INCIDENT_KINDS.len()],
        }
    }

    /// Counts one case that said `changes`.
    fn count(&self, changes: &[Change]) {
        let mut parts = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        for change in changes {
            parts.insert(
                PARTS
                    .iter()
                    .position(|p| *p == change.what)
                    .expect("a part"),
            );
            if change.what == "incident" {
                kinds.extend(incident_kinds(&change.change));
            }
        }
        for part in parts {
            self.parts[part].fetch_add(1, Ordering::Relaxed);
        }
        for kind in kinds {
            self.incident_kinds[kind].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Panics unless some case saw every part of `required` and every kind of incident change.
    fn assert_all_seen(&self, required: &[&str]) {
        let parts: Vec<(&str, usize)> = PARTS
            .iter()
            .zip(&self.parts)
            .map(|(part, n)| (*part, n.load(Ordering::Relaxed)))
            .collect();
        let kinds: Vec<(&str, usize)> = INCIDENT_KINDS
            .iter()
            .zip(&self.incident_kinds)
            .map(|(kind, n)| (*kind, n.load(Ordering::Relaxed)))
            .collect();
        eprintln!("cases with changes, by part: {parts:?}; by kind of incident change: {kinds:?}");
        for (part, n) in parts {
            assert!(
                n > 0 || !required.contains(&part),
                "no case changed the part `{part}`"
            );
        }
        for (kind, n) in kinds {
            assert!(n > 0, "no case made the incident change `{kind}`");
        }
    }
}

/// The whole-digest walk of `--step`: a plain fold, and each event's changes in the parts above
/// as the whole digest before and after it says them.
struct Walk {
    projections: Projections,
    before: Digest,
}

impl Walk {
    fn new() -> Self {
        let projections = Projections::new();
        let before = Digest::of(&projections);
        Self {
            projections,
            before,
        }
    }

    /// Applies the event at `seq`: the finding changes the fold reports, and what `--step`
    /// says it changed in [`PARTS`].
    fn step(&mut self, seq: u64, event: &Event) -> (Vec<(String, FindingChange)>, Vec<Change>) {
        let reported = self.projections.apply(seq, event).to_vec();
        let after = Digest::of(&self.projections);
        let expected = self
            .before
            .changes(&after)
            .into_iter()
            .filter(|c| PARTS.contains(&c.what))
            .collect();
        self.before = after;
        (reported, expected)
    }
}

/// The error of a fold that said `said` where `--step` says `expected`, at event `n`.
fn differ(what: &str, n: usize, event: &Event, said: &[Change], expected: &[Change]) -> String {
    format!(
        "{what}, event {n} (position {}, {}, {} {}): the fold said {said:#?}, --step says {expected:#?}",
        n + 1,
        event.id.0,
        event.cluster,
        event.event_type(),
    )
}

#[test]
fn the_folds_changes_are_the_step_digests_changes() {
    static EXERCISED: Exercised = Exercised::new();
    assert_property(
        "fold changes = --step changes",
        1_000,
        log(3, 80),
        |events| {
            let mut watched = Projections::new();
            let mut walk = Walk::new();
            let mut all_expected = Vec::new();
            for (n, event) in events.iter().enumerate() {
                let seq = n as u64 + 1;
                let mut said = Vec::new();
                let watched_changes = watched.apply_with_changes(seq, event, &mut said).to_vec();
                let (reported, expected) = walk.step(seq, event);
                prop_assert_eq!(watched_changes, reported);
                prop_assert!(
                    said == expected,
                    "{}",
                    differ("in memory", n, event, &said, &expected)
                );
                all_expected.extend(expected);
            }
            prop_assert!(
                watched.snapshot() == walk.projections.snapshot(),
                "watching changed the state"
            );
            EXERCISED.count(&all_expected);
            Ok(())
        },
    );
    EXERCISED.assert_all_seen(&FINDINGS_LOG_PARTS);
}

/// A live state, as a store folds it: the findings' history, the timeline entries and the
/// incidents that stop being open written out to tables at the end of each batch (of three
/// events) and read back from them (ADR 0006), its changes the in-memory walk's at every event;
/// and from a restore of its snapshot halfway on, both restored whole and with its clusters
/// restored lazily (the lazy one writing to the tables from then on), the same again.
#[test]
fn a_live_state_and_its_restores_say_the_step_digests_changes() {
    static EXERCISED: Exercised = Exercised::new();
    // Cases where an incident written out was read back and changed.
    static READ_BACK_AND_CHANGED: AtomicUsize = AtomicUsize::new(0);
    assert_property(
        "live and restored fold changes = --step changes",
        500,
        log(3, 80),
        |events| {
            let cut = events.len() / 2;
            let tables = Arc::new(Tables::default());
            let mut live = Projections::new();
            live.read_history_from(tables.clone(), None);
            live.write_incidents_out();
            // Restored whole beside the live state, once it is restored: its records are the
            // live state's, dropped with each batch.
            let mut whole: Option<Projections> = None;
            let mut walk = Walk::new();
            let mut written_out: BTreeSet<String> = BTreeSet::new();
            let mut read_back_and_changed = false;
            let mut all_expected = Vec::new();
            for (n, event) in events.iter().enumerate() {
                let seq = n as u64 + 1;
                let (_, expected) = walk.step(seq, event);
                let mut said = Vec::new();
                live.apply_with_changes(seq, event, &mut said);
                prop_assert!(
                    said == expected,
                    "{}",
                    differ(
                        if n < cut { "live" } else { "restored lazily" },
                        n,
                        event,
                        &said,
                        &expected
                    )
                );
                if let Some(whole) = whole.as_mut() {
                    let mut said = Vec::new();
                    whole.apply_with_changes(seq, event, &mut said);
                    prop_assert!(
                        said == expected,
                        "{}",
                        differ("restored whole", n, event, &said, &expected)
                    );
                }
                read_back_and_changed |= expected
                    .iter()
                    .any(|c| c.what == "incident" && written_out.contains(&c.subject));
                all_expected.extend(expected);
                let batch_ends = seq.is_multiple_of(3) || n + 1 == cut || n + 1 == events.len();
                if batch_ends {
                    written_out.extend(tables.write_all(&mut live));
                    if let Some(whole) = whole.as_mut() {
                        drop(whole.take_history_records());
                        drop(whole.take_timeline_records());
                        drop(whole.take_incident_body_records());
                        drop(whole.take_dropped_orphan_records());
                    }
                }
                if n + 1 == cut {
                    let snapshot = live.live_snapshot();
                    let mut restored =
                        Projections::restore_live_owned(snapshot.clone(), tables.clone(), None);
                    restored.write_incidents_out();
                    whole = Some(restored);
                    let (parts, incidents) = snapshot.into_parts();
                    let names = parts
                        .iter()
                        .map(|p| (p.findings.cluster.to_string(), seq))
                        .collect();
                    let source = Arc::new(PartsInMemory(
                        parts
                            .into_iter()
                            .map(|p| (p.findings.cluster.to_string(), p))
                            .collect(),
                    ));
                    live = Projections::restore_live_lazily(
                        names,
                        source,
                        incidents,
                        tables.clone(),
                        None,
                    );
                    live.write_incidents_out();
                }
            }
            prop_assert!(
                live.whole_live_snapshot() == walk.projections.whole_live_snapshot(),
                "watching changed the state"
            );
            EXERCISED.count(&all_expected);
            if read_back_and_changed {
                READ_BACK_AND_CHANGED.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        },
    );
    EXERCISED.assert_all_seen(&FINDINGS_LOG_PARTS);
    let read_back = READ_BACK_AND_CHANGED.load(Ordering::Relaxed);
    eprintln!("cases that changed an incident written out: {read_back}");
    assert!(read_back > 0, "no case changed an incident written out");
}

/// The store's tables, in memory behind a lock (the fold's records written at the end of each
/// batch, as a store writes them in the batch's transaction).
#[derive(Debug, Default)]
struct Tables(std::sync::RwLock<tidemark_core::findings::MemoryHistory>);

impl Tables {
    /// Writes what the fold of `projections` wrote out since the last call; the ids of the
    /// incidents written out.
    fn write_all(&self, projections: &mut Projections) -> Vec<String> {
        let mut history = self.0.write().unwrap();
        for record in projections.take_history_records() {
            record.replay_into(&mut *history);
        }
        history.write_incident_entries(&projections.take_timeline_records());
        let bodies = projections.take_incident_body_records();
        history.write_incident_bodies(&bodies);
        history.write_dropped_orphans(&projections.take_dropped_orphan_records());
        bodies.into_iter().map(|b| b.row.incident.id).collect()
    }
}

impl tidemark_core::findings::HistoryReader for Tables {
    fn closed_occurrences(
        &self,
        cluster: &str,
        key: &str,
        range: &tidemark_core::findings::HistoryRange,
    ) -> Vec<(u64, tidemark_core::Occurrence)> {
        let history = self.0.read().unwrap();
        history.closed_occurrences(cluster, key, range)
    }

    fn ended_flap_episodes(
        &self,
        cluster: &str,
        key: &str,
        range: &tidemark_core::findings::HistoryRange,
    ) -> Vec<(u64, tidemark_core::flaps::FlapEpisode)> {
        let history = self.0.read().unwrap();
        history.ended_flap_episodes(cluster, key, range)
    }

    fn closed_occurrence_count(&self, cluster: &str, key: &str, as_of: u64) -> u64 {
        let history = self.0.read().unwrap();
        history.closed_occurrence_count(cluster, key, as_of)
    }

    fn ended_flap_episode_count(&self, cluster: &str, key: &str, as_of: u64) -> u64 {
        let history = self.0.read().unwrap();
        history.ended_flap_episode_count(cluster, key, as_of)
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
        let history = self.0.read().unwrap();
        history.written_entries(incident, after, as_of, limit)
    }

    fn written_entry_count(&self, incident: &str, as_of: u64) -> u64 {
        self.0.read().unwrap().written_entry_count(incident, as_of)
    }

    fn has_written_entry(&self, incident: &str, seq: u64, as_of: u64) -> bool {
        let history = self.0.read().unwrap();
        history.has_written_entry(incident, seq, as_of)
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
        let history = self.0.read().unwrap();
        history.incidents_in_opening_order(cluster, after, as_of, visit)
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
        let history = self.0.read().unwrap();
        history.dropped_orphans(cluster, start, as_of, visit)
    }
}

/// A snapshot's cluster parts in memory, by cluster.
struct PartsInMemory(std::collections::BTreeMap<String, tidemark_core::ClusterPart>);

impl tidemark_core::ClusterPartSource for PartsInMemory {
    fn read_part(&self, cluster: &str, _: u64) -> Option<tidemark_core::ClusterPart> {
        self.0.get(cluster).cloned()
    }
}

/// Cases that changed each part, then cases where two listed orphans or candidates shared a
/// label.
type OrphanExercised = [AtomicUsize; PARTS.len() + 1];

/// Folds `events` watched, plain, and watched again from a snapshot restored halfway: the
/// watched folds must say, at every event, what the whole-digest comparison says.
fn says_what_step_says(events: &[Event], exercised: &OrphanExercised) -> TestCaseResult {
    let mut watched = Projections::new();
    let mut walked = Projections::new();
    let mut resumed: Option<Projections> = None;
    let restore_at = events.len() / 2;
    let mut seen = [false; PARTS.len() + 1];
    let mut before = Digest::of(&walked);
    for (n, event) in events.iter().enumerate() {
        if n == restore_at {
            resumed = Some(Projections::restore(&watched.snapshot()));
        }
        let seq = n as u64 + 1;
        let mut said = Vec::new();
        let watched_changes = watched.apply_with_changes(seq, event, &mut said).to_vec();
        let walked_changes = walked.apply(seq, event).to_vec();
        prop_assert_eq!(watched_changes, walked_changes);
        let after = Digest::of(&walked);
        let expected: Vec<Change> = before
            .changes(&after)
            .into_iter()
            .filter(|c| PARTS.contains(&c.what))
            .collect();
        for change in &expected {
            let part = PARTS
                .iter()
                .position(|p| *p == change.what)
                .expect("a part");
            seen[part] = true;
        }
        prop_assert_eq!(
            &said,
            &expected,
            "event {} (position {}, {}, {} {}): the fold said {:#?}, --step says {:#?}",
            n,
            seq,
            event.id.0,
            event.cluster,
            event.event_type(),
            said,
            expected
        );
        if let Some(resumed) = &mut resumed {
            let mut said_resumed = Vec::new();
            resumed.apply_with_changes(seq, event, &mut said_resumed);
            prop_assert_eq!(
                &said_resumed,
                &expected,
                "event {} (position {}), folded on from a snapshot at position {}",
                n,
                seq,
                restore_at
            );
        }
        let orphans = walked.orphans();
        let listed = orphans.orphans(None).into_iter().map(|o| orphan_label(&o));
        let candidates = orphans.candidates(None).into_iter();
        let mut labels = BTreeSet::new();
        let shared = listed
            .chain(candidates.map(|o| orphan_label(&o)))
            .any(|label| !labels.insert(label));
        seen[PARTS.len()] |= shared;
        before = after;
    }
    prop_assert!(
        watched.snapshot() == walked.snapshot(),
        "watching changed the state"
    );
    for (part, seen) in seen.iter().enumerate() {
        if *seen {
            exercised[part].fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Reports how many cases exercised each part, and fails if one of `required` was never.
fn assert_exercised(exercised: &OrphanExercised, required: &[&str], same_label_required: bool) {
    let counts: Vec<(&str, usize)> = PARTS
        .iter()
        .copied()
        .chain(["same-label orphans"])
        .zip(exercised)
        .map(|(part, n)| (part, n.load(Ordering::Relaxed)))
        .collect();
    eprintln!("cases with changes, by part: {counts:?}");
    for (part, n) in &counts[..PARTS.len()] {
        assert!(
            *n > 0 || !required.contains(part),
            "no case changed the part `{part}`"
        );
    }
    assert!(
        counts[PARTS.len()].1 > 0 || !same_label_required,
        "no case listed two orphans sharing a label"
    );
}

#[test]
fn the_folds_changes_are_the_step_digests_changes_on_orphan_logs() {
    static EXERCISED: OrphanExercised = [const { AtomicUsize::new(0) }; PARTS.len() + 1];
    assert_property(
        "fold changes = --step changes (orphan logs)",
        500,
        orphan_log(2, 80),
        |events| says_what_step_says(&events, &EXERCISED),
    );
    assert_exercised(&EXERCISED, &["orphan", "candidate"], true);
}
