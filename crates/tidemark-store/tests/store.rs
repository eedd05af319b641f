//! The store on real redb files: outcomes, reopening, timelines, time travel, and rebuild equal
//! to live on random logs.

#[path = "../src/property_runner.rs"]
mod property_runner;

use property_runner::seeded_runner;
use std::path::Path;

use proptest::prelude::*;
use tidemark_core::event::{
    Alert, CURRENT_SCHEMA, ChangeDeployed, ChangeKind, CycleCompleted, FindingObservation,
    FindingResolved, IncidentChange, InventoryObserved, InventoryResource, ManualResolutionKind,
    ResourceRef, SettingsChanged, SpanRecorded, SpanStatus,
};
use tidemark_core::{
    Event, EventId, FindingState, LogFold, Payload, Severity, Timestamp, decode_event,
};
use tidemark_store::{At, Input, Outcome, PreparedBatch, Store, StoreConfig, TimelineAnchor};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn race_events() -> Vec<Event> {
    std::fs::read_to_string(repo("replay/auto-resolve-race/events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| decode_event(l).unwrap())
        .collect()
}

fn inputs(events: &[Event]) -> Vec<Input> {
    events.iter().cloned().map(Input::Event).collect()
}

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

#[test]
fn append_dedupes_quarantines_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let events = race_events();
    {
        let store = Store::open(&path, StoreConfig::default()).unwrap();
        let mut batch = inputs(&events[..5]);
        batch.push(Input::Event(events[1].clone()));
        batch.push(Input::Rejected {
            raw: b"{not json".to_vec(),
            reason: "not valid JSON".into(),
            origin: "test line 9".into(),
        });
        let outcomes = store.append(&batch, NOW).unwrap();
        assert_eq!(outcomes[0], Outcome::Accepted { seq: 1 });
        assert_eq!(outcomes[4], Outcome::Accepted { seq: 5 });
        assert_eq!(outcomes[5], Outcome::Duplicate { seq: 2 });
        assert!(matches!(
            &outcomes[6],
            Outcome::Rejected {
                quarantine_id: Some(1),
                raw_kept: true,
                ..
            }
        ));
        // Duplicates across batches too.
        let outcomes = store.append(&inputs(&events[4..]), NOW).unwrap();
        assert_eq!(outcomes[0], Outcome::Duplicate { seq: 5 });
        assert_eq!(outcomes.last(), Some(&Outcome::Accepted { seq: 9 }));
        assert_eq!(store.checkpoint(), 9);
        let quarantine = store.quarantine(1, 10).unwrap();
        assert_eq!(quarantine.len(), 1);
        assert_eq!(quarantine[0].record.raw, "{not json");
        assert_eq!(quarantine[0].record.origin, "test line 9");
    }
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    assert_eq!(store.checkpoint(), 9);
    let finding = store.finding("pw-prod", "proxied:domain:42").unwrap();
    assert_eq!(finding.state, FindingState::Resolved);
    assert_eq!(finding.history[0].resolved_seq, Some(8));
    let stats = store.stats().unwrap();
    assert_eq!(
        (
            stats.events,
            stats.quarantined,
            stats.findings,
            stats.active_findings
        ),
        (9, 1, 2, 1)
    );
    assert!(stats.size_on_disk_bytes > 0);
    // Stored events come back as they went in, with the store's facts.
    let stored = store.events(1, 100).unwrap();
    assert_eq!(stored.len(), 9);
    assert_eq!(stored[3].1.event, events[3]);
    assert_eq!(stored[3].1.recorded_at, NOW);
    assert_eq!(store.position_of(events[7].id.as_str()).unwrap(), Some(8));
}

#[test]
fn finding_timeline_lists_the_events_that_changed_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("t.redb"), StoreConfig::default()).unwrap();
    store.append(&inputs(&race_events()), NOW).unwrap();
    let timeline = store
        .finding_timeline("pw-prod", "proxied:domain:42")
        .unwrap();
    let summary: Vec<(u64, Vec<&str>)> = timeline
        .iter()
        .map(|e| (e.seq, e.changes.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![(2, vec!["opened"]), (8, vec!["resolved_auto"])]
    );
    let cluster = store.cluster_timeline("pw-prod", None, None, 100).unwrap();
    assert_eq!(
        cluster.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    let window = store
        .cluster_timeline(
            "pw-prod",
            Some("2026-03-02T14:10:00Z".parse().unwrap()),
            Some("2026-03-02T14:18:00Z".parse().unwrap()),
            100,
        )
        .unwrap();
    assert_eq!(
        window.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
}

/// An alert's timeline names what its notifications did: opened, then resolved by the
/// alerting system (`resolved_source`, stored in the bit a cycle's auto-resolution uses), and a
/// cycle's auto-resolution of a probe's finding in the same store stays `resolved_auto`.
#[test]
fn an_alerts_timeline_names_its_resolution_by_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let alert = |id: &str, secs: i64, fired: bool| {
        let data = Alert {
            fingerprint: "fp1".into(),
            name: "KubePodCrashLooping".into(),
            severity: Severity::Critical,
            labels: [("namespace".to_owned(), "dnd".to_owned())].into(),
            annotations: Default::default(),
            starts_at: Timestamp::from_unix_secs(1_772_409_000),
            ends_at: (!fired).then(|| Timestamp::from_unix_secs(1_772_409_600 + secs)),
        };
        Event {
            id: EventId::from(id),
            schema: CURRENT_SCHEMA,
            time: Timestamp::from_unix_secs(1_772_409_600 + secs),
            source: "alertmanager".into(),
            cluster: "pw-prod".into(),
            payload: if fired {
                Payload::AlertFired(data)
            } else {
                Payload::AlertResolved(data)
            },
        }
    };
    let mut events = race_events();
    events.push(alert("am-1", 7_200, true));
    events.push(alert("am-2", 7_300, false));
    store.append(&inputs(&events), NOW).unwrap();
    let key = tidemark_core::findings::alert_check_key("KubePodCrashLooping", "fp1");
    let changes: Vec<Vec<&str>> = store
        .finding_timeline("pw-prod", &key)
        .unwrap()
        .iter()
        .map(|e| e.changes.clone())
        .collect();
    assert_eq!(changes, vec![vec!["opened"], vec!["resolved_source"]]);
    let probe = store
        .finding_timeline("pw-prod", "proxied:domain:42")
        .unwrap();
    assert_eq!(probe.last().unwrap().changes, vec!["resolved_auto"]);
    drop(store);
    let report = Store::verify(&path, |_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:#?}");
}

// ---------------------------------------------------------------------------------------------
// Random logs

const CLUSTERS: &[&str] = &["a", "b"];
const CATEGORIES: &[&str] = &["pods", "dns", "infra_drift"];
const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4"];

#[derive(Clone, Debug)]
enum Step {
    Cycle(usize, Vec<usize>, Vec<(usize, usize, bool)>),
    Threshold(usize, u32),
    /// The flap window and threshold of a cluster: narrowed, the count detector forgets; widened,
    /// it reads the auto-resolutions it reaches back to from the history tables.
    FlapWindow(usize, u64, u32),
    Resolve(usize, usize),
    Repeat(usize),
    /// Open (true) or close an explicit incident naming a key.
    Incident(usize, bool, usize),
    /// Deploy the service of a key.
    Deploy(usize, usize),
    /// An inventory scan: which of `RESOURCES` are live.
    Scan(usize, Vec<bool>),
    /// A span of trace `t`: (cluster, trace, span, parent).
    Span(usize, usize, usize, Option<usize>),
    /// A cluster's span grace and retention: short ones drop judged traces, whose orphans go
    /// to `dropped_orphans` (store layout 5).
    SpanRetention(usize, u64, u64),
    /// An alert's notification (store layout 6, alerts are findings): (cluster, alert, fired,
    /// `startsAt` in minutes), so re-sends, re-fires, late ones and `source` resolutions come.
    Alert(usize, usize, bool, i64),
}

/// Namespace of each key's resource (the pods of `RESOURCES`).
const NAMESPACES: &[&str] = &["dnd", "dnd", "media", "media", "ops"];

/// uid, kind, namespace, owners, uses.
type Resource = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);
const RESOURCES: &[Resource] = &[
    ("rs-k0", "ReplicaSet", "dnd", &[], &[]),
    ("pod-k0", "Pod", "dnd", &["rs-k0"], &["pvc-dnd"]),
    ("pvc-dnd", "PersistentVolumeClaim", "dnd", &[], &[]),
    ("pod-k2", "Pod", "media", &["rs-k2"], &[]),
    ("pvc-media", "PersistentVolumeClaim", "media", &[], &[]),
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (0..2usize, proptest::sample::subsequence(vec![0usize, 1, 2], 0..=3),
               proptest::collection::vec((0..5usize, 0..3usize, proptest::bool::weighted(0.1)), 0..5))
            .prop_map(|(c, cats, f)| Step::Cycle(c, cats, f)),
        1 => (0..2usize, 0u32..4).prop_map(|(c, t)| Step::Threshold(c, t)),
        1 => (0..2usize, prop_oneof![Just(60u64), Just(600), Just(3_600), Just(86_400)], 0u32..3)
            .prop_map(|(c, w, t)| Step::FlapWindow(c, w, t)),
        1 => (0..2usize, 0..5usize).prop_map(|(c, k)| Step::Resolve(c, k)),
        1 => any::<usize>().prop_map(Step::Repeat),
        1 => (0..2usize, any::<bool>(), 0..5usize).prop_map(|(c, open, k)| Step::Incident(c, open, k)),
        1 => (0..2usize, 0..5usize).prop_map(|(c, k)| Step::Deploy(c, k)),
        1 => (0..2usize, proptest::collection::vec(proptest::bool::weighted(0.7), RESOURCES.len()))
            .prop_map(|(c, live)| Step::Scan(c, live)),
        2 => (0..2usize, 0..3usize, 0..4usize, proptest::option::weighted(0.7, 0..4usize))
            .prop_map(|(c, t, s, p)| Step::Span(c, t, s, p)),
        1 => (0..2usize, prop_oneof![Just(0u64), Just(60), Just(300)], prop_oneof![Just(0u64), Just(60), Just(600)])
            .prop_map(|(c, g, r)| Step::SpanRetention(c, g, r)),
        2 => (0..2usize, 0..2usize, proptest::bool::weighted(0.6), 0i64..4)
            .prop_map(|(c, a, fired, starts)| Step::Alert(c, a, fired, starts)),
    ]
}

fn build(steps: &[Step], skew: &[i64]) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut secs = 1_772_409_600i64;
    for (i, step) in steps.iter().enumerate() {
        secs += skew.get(i).copied().unwrap_or(60);
        let (cluster, payload) = match step {
            Step::Repeat(n) if !events.is_empty() => {
                let mut again = events[n % events.len()].clone();
                again.time = Timestamp::from_unix_secs(secs);
                events.push(again);
                continue;
            }
            Step::Repeat(_) => continue,
            Step::Cycle(c, cats, findings) => (
                *c,
                Payload::CycleCompleted(CycleCompleted {
                    cycle: format!("c{i}"),
                    categories: cats.iter().map(|&x| CATEGORIES[x].to_owned()).collect(),
                    findings: findings
                        .iter()
                        .map(|&(k, cat, info)| FindingObservation {
                            check_key: KEYS[k].into(),
                            category: CATEGORIES[cat].into(),
                            severity: Severity::Error,
                            title: "t".into(),
                            detail: Some(format!("signature {}", i % 3)),
                            resource: Some(ResourceRef {
                                kind: "Pod".into(),
                                namespace: Some(NAMESPACES[k].into()),
                                name: format!("svc{k}"),
                                uid: Some(format!("pod-{}", KEYS[k])),
                            }),
                            informational: info,
                        })
                        .collect(),
                }),
            ),
            Step::Threshold(c, t) => (
                *c,
                Payload::SettingsChanged(SettingsChanged {
                    clean_cycles_to_resolve: Some(*t),
                    ..Default::default()
                }),
            ),
            Step::FlapWindow(c, window, threshold) => (
                *c,
                Payload::SettingsChanged(SettingsChanged {
                    flap_window_secs: Some(*window),
                    flap_threshold: Some(*threshold),
                    ..Default::default()
                }),
            ),
            Step::Resolve(c, k) => (
                *c,
                Payload::FindingResolved(FindingResolved {
                    check_key: KEYS[*k].into(),
                    kind: ManualResolutionKind::Manual,
                    by: None,
                    reason: None,
                    recipe: None,
                }),
            ),
            Step::Incident(c, open, k) => {
                let change = IncidentChange {
                    incident: "inc-1".into(),
                    title: Some("declared".into()),
                    severity: None,
                    check_keys: vec![KEYS[*k].into()],
                    summary: None,
                };
                (
                    *c,
                    if *open {
                        Payload::IncidentOpened(change)
                    } else {
                        Payload::IncidentClosed(change)
                    },
                )
            }
            Step::Deploy(c, k) => (
                *c,
                Payload::ChangeDeployed(ChangeDeployed {
                    service: format!("svc{k}"),
                    version: format!("v{i}"),
                    kind: ChangeKind::Deploy,
                    link: None,
                    summary: None,
                    incident: None,
                    check_keys: vec![],
                }),
            ),
            Step::Scan(c, live) => (
                *c,
                Payload::InventoryObserved(InventoryObserved {
                    scan: format!("s{i}"),
                    kinds: vec![
                        "ReplicaSet".into(),
                        "Pod".into(),
                        "PersistentVolumeClaim".into(),
                    ],
                    resources: RESOURCES
                        .iter()
                        .zip(live)
                        .filter(|(_, live)| **live)
                        .map(|((uid, kind, ns, owners, uses), _)| InventoryResource {
                            uid: (*uid).into(),
                            kind: (*kind).into(),
                            namespace: Some((*ns).into()),
                            name: (*uid).into(),
                            owners: owners.iter().map(|o| (*o).to_owned()).collect(),
                            uses: uses.iter().map(|u| (*u).to_owned()).collect(),
                        })
                        .collect(),
                }),
            ),
            Step::Alert(c, a, fired, starts) => {
                let alert = Alert {
                    fingerprint: format!("fp{a}"),
                    name: format!("Alert{a}"),
                    severity: Severity::Critical,
                    labels: [("namespace".to_owned(), NAMESPACES[*a].to_owned())].into(),
                    annotations: Default::default(),
                    starts_at: Timestamp::from_unix_secs(1_772_409_600 + 60 * starts),
                    ends_at: (!fired).then(|| Timestamp::from_unix_secs(secs)),
                };
                (
                    *c,
                    if *fired {
                        Payload::AlertFired(alert)
                    } else {
                        Payload::AlertResolved(alert)
                    },
                )
            }
            Step::SpanRetention(c, grace, retention) => (
                *c,
                Payload::SettingsChanged(SettingsChanged {
                    span_grace_secs: Some(*grace),
                    span_retention_secs: Some(*retention),
                    ..Default::default()
                }),
            ),
            Step::Span(c, t, span, parent) => (
                *c,
                Payload::SpanRecorded(SpanRecorded {
                    trace_id: format!("trace{t}"),
                    span_id: format!("span{span}"),
                    parent_span_id: parent.map(|p| format!("span{p}")),
                    name: "work".into(),
                    service: "agents".into(),
                    start: Timestamp::from_unix_secs(secs),
                    end: None,
                    status: SpanStatus::Ok,
                }),
            ),
        };
        events.push(Event {
            id: EventId(format!("e{i}")),
            schema: CURRENT_SCHEMA,
            time: Timestamp::from_unix_secs(secs),
            source: "p".into(),
            cluster: CLUSTERS[cluster].into(),
            payload,
        });
    }
    events
}

fn logs() -> impl Strategy<Value = (Vec<Event>, Vec<usize>, usize)> {
    proptest::collection::vec(step(), 0..60)
        .prop_flat_map(|steps| {
            let n = steps.len();
            (
                Just(steps),
                proptest::collection::vec(prop_oneof![9 => 0i64..600, 1 => -300i64..0], n),
                proptest::collection::vec(1usize..12, 1..20),
                0..=n + 1,
            )
        })
        .prop_map(|(steps, skew, batches, probe)| (build(&steps, &skew), batches, probe))
}

#[test]
fn rebuild_equals_live_and_reopen_and_time_travel_agree_on_random_logs() {
    let (mut runner, seed) = seeded_runner(200);
    let result = runner.run(&logs(), |(events, batches, probe)| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.redb");
        // Small snapshot intervals so restores start from snapshots, not only from zero.
        let config = StoreConfig {
            snapshot_every: 5,
            snapshot_keep_every: 10,
            ..StoreConfig::default()
        };
        let mut store = Store::open(&path, config.clone()).unwrap();
        let mut rest = &events[..];
        let mut sizes = batches.iter().cycle();
        let mut reopened = false;
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap()).min(rest.len());
            store.append(&inputs(&rest[..n]), NOW).unwrap();
            rest = &rest[n..];
            if !reopened && rest.len() <= events.len() / 2 {
                // Halfway, reopened: the rest is folded into a state restored lazily (each
                // cluster's part read when a batch first needs it), and its snapshots name the
                // parts of the clusters it never loaded.
                drop(store);
                store = Store::open(&path, config.clone()).unwrap();
                reopened = true;
            }
        }
        // Live state equals the in-memory fold of the same log.
        let mut reference = LogFold::new();
        for e in &events {
            reference.apply(e);
        }
        let live = store.projection_snapshot();
        prop_assert_eq!(&live, &reference.projections().snapshot());
        prop_assert_eq!(store.checkpoint(), reference.last_seq());
        // The change records the batches wrote (a reopened, lazily restored state among them)
        // are what a fold of the same log with the watch says at each position.
        let said = changes_of_a_fold(&events);
        let positions: Vec<u64> = (1..=store.checkpoint()).collect();
        prop_assert_eq!(&store.changes_at(&positions).unwrap(), &said);
        CHANGES_RECORDED.fetch_add(
            said.iter().map(Vec::len).sum(),
            std::sync::atomic::Ordering::Relaxed,
        );
        // Time travel to any position equals folding that prefix.
        let target = (probe as u64).min(reference.last_seq() + 1);
        let mut prefix = LogFold::new();
        for e in &events {
            if prefix.next_seq() > target {
                break;
            }
            prefix.apply(e);
        }
        let (at_projections, at_seq) = store.projection_at(At::Seq(target)).unwrap();
        prop_assert_eq!(at_seq, target.min(reference.last_seq()));
        prop_assert_eq!(at_projections.snapshot(), prefix.projections().snapshot());
        // ... and folded forward from an earlier past state (time travel's kept states) too,
        // whether or not a snapshot is nearer.
        let base_seq = target / 2;
        let (base, base_seq) = store.projection_at(At::Seq(base_seq)).unwrap();
        let from_base = store
            .projection_at_from(At::Seq(target), Some((&base, base_seq)))
            .unwrap();
        prop_assert_eq!(from_base.seq, at_seq);
        prop_assert_eq!(
            from_base.projections.snapshot(),
            prefix.projections().snapshot()
        );
        // ... and to any time, by the prefix rule.
        if let Some(probe_event) = events.get(probe.min(events.len().saturating_sub(1))) {
            let t = probe_event.time;
            // The prefix of the stored log: repeated ids were never stored.
            let mut by_time = LogFold::new();
            for e in &events {
                if by_time.has_seen(&e.id) {
                    continue;
                }
                if e.time > t {
                    break;
                }
                by_time.apply(e);
            }
            let (views, _) = store.findings_at(At::Time(t)).unwrap();
            prop_assert_eq!(views, by_time.findings().views());
        }
        drop(store);
        // Reopening restores the same state from snapshot + log.
        let store = Store::open(&path, config).unwrap();
        prop_assert_eq!(&store.projection_snapshot(), &live);
        // Rebuilding from the log gives the same state.
        let report = store.rebuild(|_| {}).unwrap();
        prop_assert!(report.state_unchanged);
        prop_assert_eq!(&store.projection_snapshot(), &live);
        prop_assert_eq!(&store.changes_at(&positions).unwrap(), &said);
        prop_assert_eq!(&store.fold_log(|_, _| {}).unwrap().snapshot(), &live);
        // The orphans of dropped traces are in `dropped_orphans`, not in the live state.
        let span_orphans = |s: &tidemark_core::orphans::OrphansSnapshot| -> usize {
            s.clusters.iter().map(|c| c.spans.span_orphans.len()).sum()
        };
        let in_memory = store.read(|p| span_orphans(&p.live_snapshot().orphans));
        DROPPED_WRITTEN.fetch_add(
            span_orphans(&live.orphans) - in_memory,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("rebuild/live property failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}");
    }
    assert!(
        DROPPED_WRITTEN.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no run wrote an orphan of a dropped trace out"
    );
    assert!(
        CHANGES_RECORDED.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no run recorded a change"
    );
}

/// Changes recorded by every run of the property (some must be).
static CHANGES_RECORDED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What a fold of `events` in memory says at each position it stores (repeated ids are not
/// stored), with the watch (`apply_with_changes`).
fn changes_of_a_fold(events: &[Event]) -> Vec<Vec<tidemark_core::changes::Change>> {
    let mut fold = tidemark_core::Projections::new();
    let mut seen = std::collections::HashSet::new();
    let mut said = Vec::new();
    for event in events {
        if !seen.insert(event.id.clone()) {
            continue;
        }
        let mut changes = Vec::new();
        fold.apply_with_changes(said.len() as u64 + 1, event, &mut changes);
        said.push(changes);
    }
    said
}

/// Orphans of dropped traces written out by every run of the property (some must be).
static DROPPED_WRITTEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A finding's timeline read page by page, older from the latest or newer from the first,
/// with any page size, is exactly its whole timeline (flap changes named as in one read).
#[test]
fn finding_timeline_windows_followed_either_way_are_the_whole_timeline() {
    let (mut runner, seed) = seeded_runner(60);
    let result = runner.run(&(logs(), 1usize..4), |((events, _, _), limit)| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("w.redb"), StoreConfig::default()).unwrap();
        store.append(&inputs(&events), NOW).unwrap();
        let up_to = store.checkpoint();
        for view in store.read(|p| p.findings().views()) {
            let (cluster, key) = (view.cluster.as_str(), view.check_key.as_str());
            let whole = store.finding_timeline(cluster, key).unwrap();
            let page = |anchor| {
                store
                    .finding_timeline_window(cluster, key, anchor, up_to, limit)
                    .unwrap()
            };
            let mut newer = Vec::new();
            let mut window = page(TimelineAnchor::After(0));
            loop {
                prop_assert!(window.entries.len() <= limit);
                prop_assert_eq!(window.older.is_some(), !newer.is_empty());
                newer.extend(window.entries.clone());
                match window.newer {
                    Some(after) => window = page(TimelineAnchor::After(after)),
                    None => break,
                }
            }
            prop_assert_eq!(&newer, &whole, "{}/{} newer", cluster, key);
            let mut older = Vec::new();
            let mut window = page(TimelineAnchor::Before(u64::MAX));
            loop {
                prop_assert!(window.entries.len() <= limit);
                prop_assert_eq!(window.newer.is_some(), !older.is_empty());
                older.splice(0..0, window.entries.clone());
                match window.older {
                    Some(before) => window = page(TimelineAnchor::Before(before)),
                    None => break,
                }
            }
            prop_assert_eq!(&older, &whole, "{}/{} older", cluster, key);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!(
            "timeline windows property failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}"
        );
    }
}

#[test]
fn positioned_appends_keep_stream_sequences_with_gaps_and_refuse_going_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("follow.redb");
    let events = race_events();
    {
        let store = Store::open(
            &path,
            StoreConfig {
                snapshot_every: 3,
                snapshot_keep_every: 10,
                ..StoreConfig::default()
            },
        )
        .unwrap();
        // Stream sequences 10, 11, 13 (12 was poison), 14 is a duplicate id, 20 the next.
        let items = vec![
            (10, Input::Event(events[0].clone())),
            (11, Input::Event(events[1].clone())),
            (
                12,
                Input::Rejected {
                    raw: b"\x00\x01".to_vec(),
                    reason: "not UTF-8".into(),
                    origin: "nats seq 12".into(),
                },
            ),
            (13, Input::Event(events[2].clone())),
            (14, Input::Event(events[1].clone())),
        ];
        let outcomes = store.append_positioned(&items, NOW).unwrap();
        assert_eq!(outcomes[0], Outcome::Accepted { seq: 10 });
        assert_eq!(outcomes[3], Outcome::Accepted { seq: 13 });
        assert_eq!(outcomes[4], Outcome::Duplicate { seq: 11 });
        assert_eq!(
            store.checkpoint(),
            14,
            "duplicates and rejects still advance the checkpoint"
        );
        let err = store
            .append_positioned(&[(14, Input::Event(events[3].clone()))], NOW)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("position 14 is not after the checkpoint 14"),
            "{err}"
        );
        store
            .append_positioned(&[(20, Input::Event(events[3].clone()))], NOW)
            .unwrap();
        assert_eq!(
            store.last_logged(u64::MAX).unwrap(),
            Some((20, events[3].id.0.clone()))
        );
        assert_eq!(
            store.last_logged(12).unwrap(),
            Some((11, events[1].id.0.clone()))
        );
    }
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    assert_eq!(store.checkpoint(), 20);
    assert_eq!(store.stats().unwrap().events, 4);
    let finding = store.finding("pw-prod", "proxied:domain:42").unwrap();
    assert_eq!(finding.history[0].opened_seq, 11);
    assert_eq!(
        store.projection_snapshot(),
        store.fold_log(|_, _| {}).unwrap().snapshot()
    );
    let (views, at) = store.findings_at(At::Seq(12)).unwrap();
    assert_eq!((views.len(), at), (2, 12));
}

#[test]
fn a_replica_keeps_refused_input_in_quarantine_without_taking_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let events = race_events();
    let refused = |n: u8| Input::Rejected {
        raw: vec![b'x', n],
        reason: format!("refused {n}"),
        origin: format!("http 127.0.0.1:1 line {n}"),
    };
    {
        let store = Store::open(&path, StoreConfig::default()).unwrap();
        store
            .append_positioned(
                &[
                    (5, Input::Event(events[0].clone())),
                    (6, Input::Event(events[1].clone())),
                ],
                NOW,
            )
            .unwrap();
        let outcomes = store
            .quarantine_rejected(&[refused(1), refused(2)], NOW)
            .unwrap();
        assert!(matches!(
            &outcomes[..],
            [
                Outcome::Rejected {
                    quarantine_id: Some(1),
                    ..
                },
                Outcome::Rejected {
                    quarantine_id: Some(2),
                    ..
                }
            ]
        ));
        assert_eq!(store.checkpoint(), 6, "the checkpoint did not move");
        // An event is refused whole: it belongs in the log.
        let err = store
            .quarantine_rejected(&[refused(3), Input::Event(events[2].clone())], NOW)
            .unwrap_err();
        assert!(err.to_string().contains("belongs in the log"), "{err}");
        // The follower goes on at the next stream sequence, and shares the quarantine ids.
        store
            .append_positioned(
                &[(7, Input::Event(events[2].clone())), (8, refused(4))],
                NOW,
            )
            .unwrap();
    }
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    assert_eq!(store.checkpoint(), 8);
    let stats = store.stats().unwrap();
    assert_eq!((stats.events, stats.quarantined), (3, 3));
    let kept: Vec<(u64, String)> = store
        .quarantine(1, 10)
        .unwrap()
        .into_iter()
        .map(|q| (q.id, q.record.reason))
        .collect();
    assert_eq!(
        kept,
        vec![
            (1, "refused 1".to_owned()),
            (2, "refused 2".to_owned()),
            (3, "refused 4".to_owned())
        ]
    );
    assert_eq!(
        store.last_logged(u64::MAX).unwrap(),
        Some((7, events[2].id.0.clone()))
    );
}

#[test]
fn a_stored_flap_window_above_the_limit_opens_and_folds_as_the_limit() {
    // Written before the wire contract capped the window (log records are decoded by the codec,
    // not the wire decoder): the store opens, reopens and rebuilds it, read as 30 days.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let wide = Event {
        id: EventId::from("wide"),
        schema: CURRENT_SCHEMA,
        time: Timestamp::from_unix_secs(1_772_409_600),
        source: "admin".into(),
        cluster: "c1".into(),
        payload: Payload::SettingsChanged(SettingsChanged {
            flap_window_secs: Some(40 * 86_400),
            ..SettingsChanged::default()
        }),
    };
    assert!(tidemark_core::decode_event(&tidemark_core::encode_event(&wide)).is_err());
    let limit = tidemark_core::settings::MAX_FLAP_WINDOW_SECS;
    {
        let store = Store::open(&path, StoreConfig::default()).unwrap();
        store.append(&[Input::Event(wide)], NOW).unwrap();
        let window = store.read(|p| p.findings().settings("c1").flap_window_secs);
        assert_eq!(window, limit);
    }
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let window = store.read(|p| p.findings().settings("c1").flap_window_secs);
    assert_eq!(window, limit);
    let rebuilt = store.fold_log(|_, _| {}).unwrap();
    assert_eq!(rebuilt.findings().settings("c1").flap_window_secs, limit);
}

#[test]
fn a_late_span_of_a_dropped_trace_is_counted_in_the_stats_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let t0 = 1_772_409_600;
    let span = |id: &str, secs: i64, span_id: &str, parent: Option<&str>, start: i64| Event {
        id: EventId::from(id),
        schema: CURRENT_SCHEMA,
        time: Timestamp::from_unix_secs(t0 + secs),
        source: "agent".into(),
        cluster: "c1".into(),
        payload: Payload::SpanRecorded(SpanRecorded {
            trace_id: "trace-1".into(),
            span_id: span_id.into(),
            parent_span_id: parent.map(str::to_owned),
            name: "work".into(),
            service: "agents".into(),
            start: Timestamp::from_unix_secs(t0 + start),
            end: None,
            status: SpanStatus::Ok,
        }),
    };
    let later = |id: &str, secs: i64| Event {
        payload: Payload::SpanRecorded(SpanRecorded {
            trace_id: format!("other-{id}"),
            span_id: "root".into(),
            parent_span_id: None,
            name: "tick".into(),
            service: "agents".into(),
            start: Timestamp::from_unix_secs(t0 + secs),
            end: None,
            status: SpanStatus::Ok,
        }),
        ..span(id, secs, "x", None, secs)
    };
    {
        let store = Store::open(&path, StoreConfig::default()).unwrap();
        let log = [
            span("root", 0, "root", None, 0),
            // Judged after 5 minutes, dropped a day after its last span.
            later("tick-1", 86_401),
            // A span of the dropped trace that started with it: judged alone, counted.
            span("late", 86_402, "child", Some("root"), 1),
        ];
        store.append(&inputs(&log), NOW).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!((stats.late_spans, stats.traces_kept), (1, 2), "{stats:?}");
    }
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.late_spans, stats.traces_kept), (1, 2), "{stats:?}");
}

/// The live snapshot a store's `snapshots` table holds at `seq`, a per-cluster one read with
/// its parts from `parts`.
fn live_snapshot_in(
    snapshots: &impl redb::ReadableTable<u64, &'static [u8]>,
    parts: &impl redb::ReadableTable<(&'static str, u64), &'static [u8]>,
    seq: u64,
) -> tidemark_core::LiveProjectionsSnapshot {
    let bytes = snapshots.get(seq).unwrap().unwrap();
    let record = tidemark_store::codec::cluster_parts::decode_snapshot_reading_parts(
        seq,
        bytes.value(),
        |cluster, at| Some(parts.get((cluster, at)).unwrap()?.value().to_vec()),
    )
    .unwrap();
    match record.projections {
        tidemark_store::codec::StoredProjections::Live(live) => live,
        tidemark_store::codec::StoredProjections::WithHistory(_) => {
            panic!("the snapshot at {seq} holds the history")
        }
    }
}

/// Snapshots are thinned to the latest of each `snapshot_keep_every` span of positions (the
/// previous snapshot's position is read from `snapshot_times`, never by reading the previous
/// snapshot), `snapshot_times` keeps the same keys, and every kept snapshot, encoded in place
/// into its table value, decodes and restores the state folded up to it.
#[test]
fn snapshots_are_thinned_to_the_latest_of_each_span_and_each_restores_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let config = StoreConfig {
        snapshot_every: 10,
        snapshot_keep_every: 50,
        // Thinning by position only (the bytes rule has a test of its own).
        snapshot_bytes_ratio: 0,
        ..StoreConfig::default()
    };
    let events: Vec<Event> = (0..200)
        .map(|i| {
            decode_event(&format!(
                r#"{{"id":"thin-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T14:{:02}:{:02}Z","source":"probe","cluster":"c{}","data":{{"cycle":"{i}","categories":["pods"],"findings":[{{"check_key":"k{}","category":"pods","severity":"error","title":"down"}}]}}}}"#,
                i / 60,
                i % 60,
                i % 3,
                i % 7
            ))
            .unwrap()
        })
        .collect();
    {
        let store = Store::open(&path, config).unwrap();
        for event in &events {
            store.append(&[Input::Event(event.clone())], NOW).unwrap();
        }
    }
    use redb::{ReadableDatabase, ReadableTable};
    let database = redb::Database::builder().open_read_only(&path).unwrap();
    let txn = database.begin_read().unwrap();
    let snapshots = txn.open_table(tidemark_store::tables::SNAPSHOTS).unwrap();
    let times = txn
        .open_table(tidemark_store::tables::SNAPSHOT_TIMES)
        .unwrap();
    let snapshot_keys: Vec<u64> = snapshots
        .iter()
        .unwrap()
        .map(|entry| entry.unwrap().0.value())
        .collect();
    let time_keys: Vec<u64> = times
        .iter()
        .unwrap()
        .map(|entry| entry.unwrap().0.value())
        .collect();
    assert_eq!(snapshot_keys, vec![40, 90, 140, 190, 200]);
    assert_eq!(time_keys, snapshot_keys);
    let parts = txn
        .open_table(tidemark_store::tables::CLUSTER_SNAPSHOTS)
        .unwrap();
    for seq in snapshot_keys {
        // A store of layout 2 writes live snapshots: the history is in its tables.
        let live = live_snapshot_in(&snapshots, &parts, seq);
        let mut folded = tidemark_core::Projections::new();
        for (i, event) in events[..seq as usize].iter().enumerate() {
            folded.apply(i as u64 + 1, event);
        }
        assert!(
            live == folded.live_snapshot(),
            "the snapshot at {seq} holds another state than the fold up to it"
        );
    }
}

/// The bytes rule (`snapshot_bytes_ratio`): a small live state (here one that stays the same:
/// the same findings every cycle) is snapshotted as soon as the
/// log records since the last snapshot take `ratio` times its bytes (after at least
/// `snapshot_min_every` events), and those snapshots are kept, so time travel folds few events;
/// the snapshots kept that way take at most `1 / ratio` of the log's bytes.
#[test]
fn a_small_state_is_snapshotted_often_and_its_snapshots_take_a_bounded_share_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let config = StoreConfig {
        snapshot_every: 1_000,
        snapshot_keep_every: 1_000,
        snapshot_bytes_ratio: 4,
        snapshot_min_every: 20,
        ..StoreConfig::default()
    };
    let events: Vec<Event> = (0..600)
        .map(|i| {
            decode_event(&format!(
                r#"{{"id":"bytes-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T{:02}:{:02}:{:02}Z","source":"probe","cluster":"c{}","data":{{"cycle":"{i}","categories":["pods"],"findings":[{{"check_key":"k1","category":"pods","severity":"error","title":"down"}},{{"check_key":"k2","category":"pods","severity":"error","title":"down"}}]}}}}"#,
                10 + i / 3600,
                (i / 60) % 60,
                i % 60,
                i % 3,
            ))
            .unwrap()
        })
        .collect();
    {
        let store = Store::open(&path, config.clone()).unwrap();
        for event in &events {
            store.append(&[Input::Event(event.clone())], NOW).unwrap();
        }
        // Time travel to any position folds at most `snapshot_min_every` events past a kept
        // snapshot once the first one is written; the answer is the fold's.
        let (past, at) = store.projection_at(tidemark_store::At::Seq(333)).unwrap();
        assert_eq!(at, 333);
        let mut folded = tidemark_core::Projections::new();
        for (i, event) in events[..333].iter().enumerate() {
            folded.apply(i as u64 + 1, event);
        }
        assert!(past.snapshot() == folded.snapshot());
    }
    use redb::{ReadableDatabase, ReadableTable};
    let database = redb::Database::builder().open_read_only(&path).unwrap();
    let txn = database.begin_read().unwrap();
    let sizes = |table: redb::TableDefinition<u64, &[u8]>| -> Vec<(u64, u64)> {
        txn.open_table(table)
            .unwrap()
            .iter()
            .unwrap()
            .map(|entry| {
                let (k, v) = entry.unwrap();
                (k.value(), v.value().len() as u64)
            })
            .collect()
    };
    // A snapshot's bytes: its manifest and the parts it wrote.
    let mut snapshots = sizes(tidemark_store::tables::SNAPSHOTS);
    for entry in txn
        .open_table(tidemark_store::tables::CLUSTER_SNAPSHOTS)
        .unwrap()
        .iter()
        .unwrap()
    {
        let (key, value) = entry.unwrap();
        if let Some(snapshot) = snapshots.iter_mut().find(|(seq, _)| *seq == key.value().1) {
            snapshot.1 += value.value().len() as u64;
        }
    }
    let log_bytes: u64 = sizes(tidemark_store::tables::LOG)
        .iter()
        .map(|(_, n)| n)
        .sum();
    // Position thinning alone (one per 1,000 positions) would keep only the latest.
    assert!(snapshots.len() >= 5, "{snapshots:?}");
    for pair in snapshots.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= 20, "{snapshots:?}");
    }
    let kept: u64 = snapshots[..snapshots.len() - 1]
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!(
        kept * 4 <= log_bytes,
        "snapshots but the latest take {kept} bytes of a {log_bytes}-byte log"
    );
}

/// The `i`-th event of a small test log (ids `{prefix}-{i}`, 1 s apart from `{hour}:00`): a
/// cycle of cluster `c{cluster}` that sees the one key `k{i % 3}`.
fn one_key_cycle(prefix: &str, hour: u32, i: usize, cluster: usize) -> Event {
    decode_event(&format!(
        r#"{{"id":"{prefix}-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T{hour:02}:{:02}:{:02}Z","source":"probe","cluster":"c{cluster}","data":{{"cycle":"{i}","categories":["pods"],"findings":[{{"check_key":"k{}","category":"pods","severity":"error","title":"down"}}]}}}}"#,
        i / 60,
        i % 60,
        i % 3
    ))
    .unwrap()
}

/// The projections folded over the first `to` events of `events`.
fn fold_prefix(events: &[Event], to: usize) -> tidemark_core::Projections {
    let mut folded = tidemark_core::Projections::new();
    for (i, event) in events[..to].iter().enumerate() {
        folded.apply(i as u64 + 1, event);
    }
    folded
}

/// Per-cluster snapshots (snapshot format 8): a snapshot writes the parts of the clusters that
/// changed since the previous one and names the others' earlier parts; thinning a snapshot
/// removes only the parts no remaining snapshot names; every kept snapshot, reopen and time
/// travel read the state the fold gives.
#[test]
fn a_snapshot_writes_the_parts_of_the_clusters_that_changed_and_thinning_keeps_named_parts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let config = StoreConfig {
        snapshot_every: 10,
        snapshot_keep_every: 20,
        snapshot_bytes_ratio: 0,
        ..StoreConfig::default()
    };
    // Positions 1-10 cycle through clusters c0..c4; from 11 on, only c0 reports, until
    // position 41 on, where c1 reports too.
    let cluster_of = |i: usize| match i {
        0..10 => i % 5,
        10..40 => 0,
        _ => i % 2,
    };
    let events: Vec<Event> = (0..60)
        .map(|i| one_key_cycle("parts", 14, i, cluster_of(i)))
        .collect();
    let fold = |to: usize| fold_prefix(&events, to);
    {
        let store = Store::open(&path, config.clone()).unwrap();
        for event in &events {
            store.append(&[Input::Event(event.clone())], NOW).unwrap();
        }
        let (past, at) = store.projection_at(tidemark_store::At::Seq(25)).unwrap();
        assert_eq!(at, 25);
        assert!(past.snapshot() == fold(25).snapshot());
    }
    {
        use redb::{ReadableDatabase, ReadableTable};
        let database = redb::Database::builder().open_read_only(&path).unwrap();
        let txn = database.begin_read().unwrap();
        let snapshots = txn.open_table(tidemark_store::tables::SNAPSHOTS).unwrap();
        let parts = txn
            .open_table(tidemark_store::tables::CLUSTER_SNAPSHOTS)
            .unwrap();
        let part_keys: Vec<(String, u64)> = parts
            .iter()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let (cluster, at) = entry.0.value();
                (cluster.to_owned(), at)
            })
            .collect();
        let snapshot_keys: Vec<u64> = snapshots
            .iter()
            .unwrap()
            .map(|entry| entry.unwrap().0.value())
            .collect();
        // Snapshots at 10, 20, ..., 60; of each span of 20 positions the latest stays (20 and
        // 40 were thinned when 30 and 50 were written).
        assert_eq!(snapshot_keys, vec![10, 30, 50, 60]);
        let key = |c: &str, at: u64| (c.to_owned(), at);
        // At 10 every cluster's part was written; c2..c4 never changed again, so those parts
        // are still named (by every snapshot). c0 changed in every span: its parts at 20 and 40
        // went with the snapshots that named them alone. c1 changed again from 41 on.
        assert_eq!(
            part_keys,
            vec![
                key("c0", 10),
                key("c0", 30),
                key("c0", 50),
                key("c0", 60),
                key("c1", 10),
                key("c1", 50),
                key("c1", 60),
                key("c2", 10),
                key("c3", 10),
                key("c4", 10),
            ]
        );
        for seq in snapshot_keys {
            let live = live_snapshot_in(&snapshots, &parts, seq);
            assert!(
                live == fold(seq as usize).live_snapshot(),
                "the snapshot at {seq} holds another state than the fold up to it"
            );
        }
    }
    let store = Store::open(&path, config).unwrap();
    assert!(store.projection_snapshot() == fold(60).snapshot());
    let (past, _) = store.projection_at(tidemark_store::At::Seq(45)).unwrap();
    assert!(past.snapshot() == fold(45).snapshot());
}

/// A reopen restores the live state lazily (ADR 0006, "Reopen across clusters"): no cluster's
/// part is read until a read or a batch needs that cluster, and then only its part; a snapshot
/// written by that state names the parts of the clusters it never loaded, and every later open,
/// read-only or not, reads the state the fold gives.
#[test]
fn a_reopen_reads_a_clusters_part_only_when_the_cluster_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lazy.redb");
    let config = StoreConfig {
        snapshot_every: 10,
        snapshot_bytes_ratio: 0,
        ..StoreConfig::default()
    };
    let events: Vec<Event> = (0..32)
        .map(|i| one_key_cycle("lazy", 15, i, i % 5))
        .collect();
    let fold = |to: usize| fold_prefix(&events, to);
    {
        let store = Store::open(&path, config.clone()).unwrap();
        let inputs: Vec<Input> = events[..30].iter().cloned().map(Input::Event).collect();
        store.append(&inputs, NOW).unwrap();
        assert_eq!(store.clusters_in_memory(), 5);
    }
    for read_only in [true, false] {
        let store = if read_only {
            Store::open_read_only(&path, config.clone()).unwrap()
        } else {
            Store::open(&path, config.clone()).unwrap()
        };
        assert_eq!(store.clusters_in_memory(), 0, "the open read a part");
        let overview =
            |p: &tidemark_core::Projections| format!("{:?}", p.findings().overview("c3", "k0"));
        assert_eq!(
            store.read_at(None, overview).unwrap().0,
            overview(&fold(30))
        );
        assert_eq!(store.clusters_in_memory(), 1);
        // A page after a cursor in c3 past its last key restores c4 only, the page's cluster:
        // the clusters before the cursor are not restored.
        let page = |p: &tidemark_core::Projections| {
            let (page, more) = p
                .findings()
                .views_page(None, |_| true, Some(("c3", "k9")), 1);
            format!("{page:?} {more}")
        };
        assert_eq!(store.read_at(None, page).unwrap().0, page(&fold(30)));
        assert_eq!(store.clusters_in_memory(), 2);
    }
    {
        // Events of c1 and c2, then a snapshot: c0, c3 and c4 are never loaded.
        let store = Store::open(&path, config.clone()).unwrap();
        let inputs: Vec<Input> = events[30..].iter().cloned().map(Input::Event).collect();
        store.append(&inputs, NOW).unwrap();
        assert_eq!(store.clusters_in_memory(), 2);
        store.snapshot_now().unwrap();
        assert_eq!(store.clusters_in_memory(), 2);
    }
    for read_only in [true, false] {
        let store = if read_only {
            Store::open_read_only(&path, config.clone()).unwrap()
        } else {
            Store::open(&path, config.clone()).unwrap()
        };
        assert!(store.projection_snapshot() == fold(32).snapshot());
        assert_eq!(store.clusters_in_memory(), 5);
        let (past, _) = store.projection_at(tidemark_store::At::Seq(31)).unwrap();
        assert!(past.snapshot() == fold(31).snapshot());
    }
}

/// A batch prepared on another thread ([`PreparedBatch`]) is stored as the same batch appended
/// whole: the same outcomes, the same log and change records byte for byte (small records and
/// compressed ones), the same state and quarantine; positioned as well.
#[test]
fn a_prepared_batch_stores_the_bytes_of_the_same_batch_appended() {
    use redb::{ReadableDatabase, ReadableTable};
    let mut events = race_events();
    // A cycle large enough that its records are stored compressed.
    let findings: Vec<String> = (0..80)
        .map(|k| format!(r#"{{"check_key":"big{k}","category":"pods","severity":"error","title":"big{k} is down"}}"#))
        .collect();
    events.push(
        decode_event(&format!(
            r#"{{"id":"big","schema":1,"type":"cycle.completed","time":"2026-03-09T00:00:00Z","source":"probe","cluster":"a","data":{{"cycle":"big","categories":["pods"],"findings":[{}]}}}}"#,
            findings.join(",")
        ))
        .unwrap(),
    );
    let mut batches: Vec<Vec<Input>> = events.chunks(3).map(inputs).collect();
    // A repeated id and a refused input in the batches.
    batches[1].push(Input::Event(events[0].clone()));
    batches[2].push(Input::Rejected {
        raw: b"{not json".to_vec(),
        reason: "not valid JSON".into(),
        origin: "test".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    for positioned in [false, true] {
        let whole = dir.path().join(format!("whole-{positioned}.redb"));
        let prepared = dir.path().join(format!("prepared-{positioned}.redb"));
        let (a, b) = (
            Store::open(&whole, StoreConfig::default()).unwrap(),
            Store::open(&prepared, StoreConfig::default()).unwrap(),
        );
        let mut position = 0;
        for batch in &batches {
            let (outcomes, prepared_outcomes) = if positioned {
                let items: Vec<(u64, Input)> = batch
                    .iter()
                    .map(|input| {
                        position += 2;
                        (position, input.clone())
                    })
                    .collect();
                (
                    a.append_positioned(&items, NOW).unwrap(),
                    b.append_prepared(&PreparedBatch::positioned(items, NOW))
                        .unwrap(),
                )
            } else {
                // Prepared in two parts, joined as the server's writer joins a group commit.
                let (left, right) = batch.split_at(batch.len() / 2);
                let mut prepared = PreparedBatch::new(left.to_vec(), NOW);
                prepared.extend(PreparedBatch::new(right.to_vec(), NOW));
                (
                    a.append(batch, NOW).unwrap(),
                    b.append_prepared(&prepared).unwrap(),
                )
            };
            assert_eq!(outcomes, prepared_outcomes);
        }
        assert_eq!(a.checkpoint(), b.checkpoint());
        assert!(a.projection_snapshot() == b.projection_snapshot());
        assert_eq!(
            a.quarantine(1, 100).unwrap().len(),
            b.quarantine(1, 100).unwrap().len()
        );
        drop((a, b));
        let records = |path: &Path,
                       table: redb::TableDefinition<'static, u64, &'static [u8]>|
         -> Vec<(u64, Vec<u8>)> {
            let db = redb::ReadOnlyDatabase::open(path).unwrap();
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(table).unwrap();
            table
                .iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value(), v.value().to_vec())
                })
                .collect()
        };
        for table in [tidemark_store::tables::LOG, tidemark_store::tables::CHANGES] {
            let (plain, from_prepared) = (records(&whole, table), records(&prepared, table));
            assert!(!plain.is_empty());
            assert!(plain == from_prepared, "positioned {positioned}");
        }
        let log = records(&whole, tidemark_store::tables::LOG);
        assert!(
            log.iter()
                .any(|(_, r)| r[0] == tidemark_store::codec::EVENT_FORMAT_COMPRESSED),
            "a compressed record"
        );
    }
}
