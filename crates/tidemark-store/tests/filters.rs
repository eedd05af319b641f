//! The event filters served from indexes, on real redb files: a page costs what it returns
//! (counted in `EventsPage::rows_read`, never timed), paging to the end gives exactly what a
//! naive filter over the whole log gives (for random logs with late events and random filters,
//! whose stores `verify` then finds clean: it derives the same index entries from the log),
//! and stores written before the filter indexes answer the same, read-only (from the log) or
//! after a read-write open built the indexes (the golden stores, and a store whose indexes an
//! older build left behind).
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES` changes the number of cases.

#[path = "../src/property_runner.rs"]
mod property_runner;

use property_runner::seeded_runner;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use tidemark_core::{Event, EventType, Timestamp, decode_event};
use tidemark_store::{EventFilter, Input, Store, StoreConfig, tables};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);
const BASE_SECS: i64 = 1_772_000_000;

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// What one generated event is.
#[derive(Clone, Debug)]
enum Kind {
    Cycle,
    Note { incident: Option<String> },
    Resolved { check_key: String },
    IncidentOpened { incident: String, check_key: String },
}

fn event(id: usize, kind: &Kind, cluster: &str, source: &str, secs: i64) -> Event {
    let (name, data) = match kind {
        Kind::Cycle => (
            "cycle.completed",
            format!(r#"{{"cycle":"c{id}","categories":["pods"],"findings":[]}}"#),
        ),
        Kind::Note { incident } => (
            "note.added",
            match incident {
                Some(i) => format!(
                    r#"{{"incident":{},"author":"me","kind":"hypothesis","text":"hello"}}"#,
                    json_str(i)
                ),
                None => r#"{"author":"me","kind":"hypothesis","text":"hello"}"#.to_owned(),
            },
        ),
        Kind::Resolved { check_key } => (
            "finding.resolved",
            format!(r#"{{"check_key":{},"kind":"manual"}}"#, json_str(check_key)),
        ),
        Kind::IncidentOpened {
            incident,
            check_key,
        } => (
            "incident.opened",
            format!(
                r#"{{"incident":{},"title":"t","severity":"error","check_keys":[{}]}}"#,
                json_str(incident),
                json_str(check_key)
            ),
        ),
    };
    let time = Timestamp::from_unix_secs(BASE_SECS + secs);
    decode_event(&format!(
        r#"{{"id":"e{id}","schema":1,"type":"{name}","time":"{time}","source":{},"cluster":{},"data":{data}}}"#,
        json_str(source),
        json_str(cluster)
    ))
    .unwrap()
}

fn store_of(path: &Path, budget: usize, events: &[Event]) -> Store {
    let config = StoreConfig {
        events_scan_budget: budget,
        ..StoreConfig::default()
    };
    let store = Store::open(path, config).unwrap();
    for batch in events.chunks(500) {
        let inputs: Vec<Input> = batch.iter().cloned().map(Input::Event).collect();
        store.append(&inputs, NOW).unwrap();
    }
    store
}

/// Every event the store's log holds, by position.
fn logged(store: &Store) -> BTreeMap<u64, Event> {
    store
        .events(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(seq, stored)| (seq, stored.event))
        .collect()
}

/// The positions `filter` names, from the whole log: every event checked against every field;
/// `check_key` and `incident` name what the finding timelines (every cluster's) and the
/// incident's timeline hold.
fn naive(store: &Store, log: &BTreeMap<u64, Event>, filter: &EventFilter) -> Vec<u64> {
    let clusters: BTreeSet<&str> = log.values().map(|e| e.cluster.as_str()).collect();
    let of_key: Option<BTreeSet<u64>> = filter.check_key.as_ref().map(|key| {
        clusters
            .iter()
            .flat_map(|c| store.finding_timeline(c, key).unwrap())
            .map(|entry| entry.seq)
            .collect()
    });
    let of_incident: Option<BTreeSet<u64>> = filter.incident.as_ref().map(|id| {
        store.read(|p| {
            p.incidents()
                .incident(id)
                .map(|i| p.incidents().timeline(&i).iter().map(|e| e.seq).collect())
                .unwrap_or_default()
        })
    });
    log.iter()
        .filter(|(seq, e)| {
            of_key.as_ref().is_none_or(|s| s.contains(seq))
                && of_incident.as_ref().is_none_or(|s| s.contains(seq))
                && filter.cluster.as_ref().is_none_or(|c| *c == e.cluster)
                && filter.event_type.is_none_or(|t| t == e.event_type())
                && filter.since.is_none_or(|t| e.time >= t)
                && filter.until.is_none_or(|t| e.time <= t)
                && filter.source.as_ref().is_none_or(|s| *s == e.source)
        })
        .map(|(seq, _)| *seq)
        .collect()
}

/// Every page from the start, following `next` (each must move on): the positions, and the
/// rows each page read with the events it returned.
fn paged(store: &Store, filter: &EventFilter, limit: usize) -> (Vec<u64>, Vec<(usize, usize)>) {
    let mut seqs = Vec::new();
    let mut costs = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_page(filter, after, limit).unwrap();
        assert!(page.events.len() <= limit);
        seqs.extend(page.events.iter().map(|(seq, _)| *seq));
        costs.push((page.rows_read, page.events.len()));
        match page.next {
            Some(next) => {
                assert!(next > after, "the cursor moved back or stood still");
                after = next;
            }
            None => return (seqs, costs),
        }
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_secs(BASE_SECS + secs)
}

/// 10,000 events over ten clusters (one every 6 s, so each cluster's clock moves a minute every
/// ten events), of which each filter below matches a few dozen at most, spread over the log; one
/// event in a thousand is two hours late.
fn sparse_log() -> Vec<Event> {
    let mut events = Vec::new();
    events.push(event(
        0,
        &Kind::IncidentOpened {
            incident: "inc-1".into(),
            check_key: "k-incident".into(),
        },
        "c0",
        "oncall-bot",
        0,
    ));
    for i in 1..10_000usize {
        let cluster = format!("c{}", i % 10);
        let mut secs = i as i64 * 6;
        let (kind, cluster, source) = match i % 500 {
            7 => (Kind::Cycle, "lonely".to_owned(), "probe"),
            123 => (Kind::Cycle, cluster, "oncall"),
            250 => (Kind::Note { incident: None }, cluster, "probe"),
            400 => (
                Kind::Resolved {
                    check_key: "k-rare".into(),
                },
                "c4".to_owned(),
                "probe",
            ),
            450 => (
                Kind::Note {
                    incident: Some("inc-1".into()),
                },
                cluster,
                "oncall-bot",
            ),
            _ => (Kind::Cycle, cluster, "probe"),
        };
        if i % 1000 == 999 {
            secs -= 2 * 3600;
        }
        events.push(event(i, &kind, &cluster, source, secs));
    }
    events
}

fn sparse_filters() -> Vec<(&'static str, EventFilter)> {
    let note = Some(EventType::NoteAdded);
    vec![
        (
            "cluster",
            EventFilter {
                cluster: Some("lonely".into()),
                ..EventFilter::default()
            },
        ),
        (
            "source",
            EventFilter {
                source: Some("oncall".into()),
                ..EventFilter::default()
            },
        ),
        (
            "type",
            EventFilter {
                event_type: note,
                ..EventFilter::default()
            },
        ),
        (
            "check_key",
            EventFilter {
                check_key: Some("k-rare".into()),
                ..EventFilter::default()
            },
        ),
        (
            "incident",
            EventFilter {
                incident: Some("inc-1".into()),
                ..EventFilter::default()
            },
        ),
        (
            "since and until",
            EventFilter {
                since: Some(at(5_000 * 6)),
                until: Some(at(5_029 * 6)),
                ..EventFilter::default()
            },
        ),
        (
            "until (with a late event far after it)",
            EventFilter {
                until: Some(at(30 * 6)),
                ..EventFilter::default()
            },
        ),
        (
            "since",
            EventFilter {
                since: Some(at(9_980 * 6)),
                ..EventFilter::default()
            },
        ),
        (
            "cluster, since and until",
            EventFilter {
                cluster: Some("c3".into()),
                since: Some(at(5_000 * 6)),
                until: Some(at(5_100 * 6)),
                ..EventFilter::default()
            },
        ),
        (
            "cluster and type",
            EventFilter {
                cluster: Some("c0".into()),
                event_type: note,
                ..EventFilter::default()
            },
        ),
        (
            "type, source and since",
            EventFilter {
                event_type: note,
                source: Some("probe".into()),
                since: Some(at(5_000 * 6)),
                ..EventFilter::default()
            },
        ),
        (
            "check_key and cluster",
            EventFilter {
                check_key: Some("k-rare".into()),
                cluster: Some("c4".into()),
                ..EventFilter::default()
            },
        ),
        (
            "incident and source",
            EventFilter {
                incident: Some("inc-1".into()),
                source: Some("oncall-bot".into()),
                ..EventFilter::default()
            },
        ),
    ]
}

/// What a page may read at most: a few rows per event returned, plus a constant per cluster
/// (a filter over every cluster seeks each one's ranges, and a time window's edge reads up to
/// six minutes of a cluster's clock beyond it: six events a cluster here). Reading the log
/// between the matches (the 10,000 events) is far above it.
fn page_bound(returned: usize, clusters: usize) -> usize {
    4 * returned + 12 * clusters + 20
}

#[test]
fn a_page_reads_rows_in_proportion_to_what_it_returns_for_every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let events = sparse_log();
    let store = store_of(&dir.path().join("sparse.redb"), 20_000, &events);
    let log = logged(&store);
    let clusters = 11;
    for (name, filter) in sparse_filters() {
        let expected = naive(&store, &log, &filter);
        assert!(
            !expected.is_empty() && expected.len() <= 100,
            "{name}: {} matches",
            expected.len()
        );
        for limit in [5, 1000] {
            let (got, costs) = paged(&store, &filter, limit);
            assert_eq!(got, expected, "{name}, limit {limit}");
            for (page, &(rows, returned)) in costs.iter().enumerate() {
                assert!(
                    rows <= page_bound(returned, clusters),
                    "{name}, limit {limit}: page {page} read {rows} rows for {returned} events \
                     (bound {})",
                    page_bound(returned, clusters)
                );
            }
            let total: usize = costs.iter().map(|(rows, _)| rows).sum();
            eprintln!(
                "{name}, limit {limit}: {} events in {} pages, {total} rows read",
                got.len(),
                costs.len()
            );
        }
    }
}

/// A generated log: each step an event of a kind, cluster, source and key at a time that
/// mostly moves on and sometimes jumps back (a late event, by up to three hours).
#[derive(Clone, Debug)]
struct Step {
    kind: usize,
    cluster: usize,
    source: usize,
    key: usize,
    advance_secs: i64,
    late_secs: Option<i64>,
}

const CLUSTERS: [&str; 5] = ["a", "b", "a\u{0}b", "c", "lonely"];
const SOURCES: [&str; 3] = ["probe", "oncall", "bot"];
const KEYS: [&str; 3] = ["k", "k\u{0}x", "other"];
const INCIDENTS: [&str; 2] = ["inc-a", "inc-b"];

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        0..6usize,
        prop_oneof![4 => 0..4usize, 1 => Just(4usize)],
        0..SOURCES.len(),
        0..KEYS.len(),
        0..240i64,
        proptest::option::weighted(0.1, 0..3 * 3600i64),
    )
        .prop_map(
            |(kind, cluster, source, key, advance_secs, late_secs)| Step {
                kind,
                cluster,
                source,
                key,
                advance_secs,
                late_secs,
            },
        );
    proptest::collection::vec(step, 0..300)
}

fn log_of(steps: &[Step]) -> Vec<Event> {
    let mut clock = 0;
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            clock += step.advance_secs;
            let secs = clock - step.late_secs.unwrap_or(0);
            let key = KEYS[step.key].to_owned();
            let incident = INCIDENTS[step.key % 2].to_owned();
            let kind = match step.kind {
                0 | 1 => Kind::Cycle,
                2 => Kind::Note { incident: None },
                3 => Kind::Note {
                    incident: Some(incident),
                },
                4 => Kind::Resolved { check_key: key },
                _ => Kind::IncidentOpened {
                    incident,
                    check_key: key,
                },
            };
            event(i, &kind, CLUSTERS[step.cluster], SOURCES[step.source], secs)
        })
        .collect()
}

fn filters(horizon_secs: i64) -> impl Strategy<Value = EventFilter> {
    let types = [
        EventType::CycleCompleted,
        EventType::NoteAdded,
        EventType::FindingResolved,
        EventType::IncidentOpened,
    ];
    let horizon = horizon_secs.max(1);
    (
        proptest::option::weighted(0.4, 0..CLUSTERS.len()),
        proptest::option::weighted(0.3, proptest::sample::select(types.to_vec())),
        proptest::option::weighted(0.3, -3600..horizon),
        proptest::option::weighted(0.3, -3600..horizon),
        proptest::option::weighted(0.2, 0..KEYS.len()),
        proptest::option::weighted(0.15, 0..INCIDENTS.len()),
        proptest::option::weighted(0.3, 0..SOURCES.len()),
    )
        .prop_map(
            |(cluster, event_type, since, until, key, incident, source)| EventFilter {
                cluster: cluster.map(|c| CLUSTERS[c].to_owned()),
                event_type,
                since: since.map(at),
                until: until.map(at),
                check_key: key.map(|k| KEYS[k].to_owned()),
                incident: incident.map(|i| INCIDENTS[i].to_owned()),
                source: source.map(|s| SOURCES[s].to_owned()),
            },
        )
}

#[test]
fn paging_any_filter_to_the_end_gives_the_naive_filter_of_the_log() {
    let (mut runner, seed) = seeded_runner(64);
    eprintln!("seed {seed} (TIDEMARK_PROPTEST_SEED={seed} reproduces)");
    let cases = (steps(), 1..40usize).prop_flat_map(|(steps, budget)| {
        let horizon: i64 = steps.iter().map(|s| s.advance_secs).sum();
        (
            Just(steps),
            Just(budget),
            proptest::collection::vec((filters(horizon), 1..12usize), 1..10),
        )
    });
    let result = runner.run(&cases, |(steps, budget, queries)| {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(&dir.path().join("random.redb"), budget, &log_of(&steps));
        let log = logged(&store);
        for (filter, limit) in &queries {
            let expected = naive(&store, &log, filter);
            let (got, _) = paged(&store, filter, *limit);
            prop_assert_eq!(
                &got,
                &expected,
                "{:?}, limit {}, budget {}",
                filter,
                limit,
                budget
            );
        }
        // verify derives the same filter index entries from the log as the append wrote.
        drop(store);
        let report = Store::verify(&dir.path().join("random.redb"), |_, _| {}).unwrap();
        prop_assert!(
            report.is_clean() && report.notes.is_empty(),
            "{:#?}",
            report
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("filter property failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}");
    }
}

/// The check keys and incidents an event's JSON names (`check_key`, `check_keys`, `incident`
/// fields at any depth).
fn named(value: &serde_json::Value, keys: &mut BTreeSet<String>, incidents: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                match (name.as_str(), field) {
                    ("check_key", serde_json::Value::String(k)) => {
                        keys.insert(k.clone());
                    }
                    ("check_keys", serde_json::Value::Array(ks)) => {
                        keys.extend(ks.iter().filter_map(|k| k.as_str().map(str::to_owned)));
                    }
                    ("incident", serde_json::Value::String(i)) => {
                        incidents.insert(i.clone());
                    }
                    _ => named(field, keys, incidents),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                named(item, keys, incidents);
            }
        }
        _ => {}
    }
}

/// Filters made of what a log holds: each cluster, type, source, check key and incident alone,
/// time windows at its quartiles, and some of them combined.
fn filters_of(log: &BTreeMap<u64, Event>) -> Vec<EventFilter> {
    let mut clusters = BTreeSet::new();
    let mut types = BTreeSet::new();
    let mut sources = BTreeSet::new();
    let mut times: Vec<Timestamp> = Vec::new();
    for e in log.values() {
        clusters.insert(e.cluster.clone());
        types.insert(e.event_type().as_str());
        sources.insert(e.source.clone());
        times.push(e.time);
    }
    times.sort();
    let mut keys = BTreeSet::new();
    let mut incidents = BTreeSet::new();
    for e in log.values() {
        named(&serde_json::to_value(e).unwrap(), &mut keys, &mut incidents);
    }
    let quartile = |q: usize| times[(times.len() - 1) * q / 4];
    let mut filters = vec![EventFilter::default()];
    let base = EventFilter::default;
    filters.extend(clusters.iter().map(|c| EventFilter {
        cluster: Some(c.clone()),
        ..base()
    }));
    filters.extend(types.iter().map(|t| EventFilter {
        event_type: EventType::from_wire(t),
        ..base()
    }));
    filters.extend(sources.iter().map(|s| EventFilter {
        source: Some(s.clone()),
        ..base()
    }));
    filters.extend(keys.iter().map(|k| EventFilter {
        check_key: Some(k.clone()),
        ..base()
    }));
    filters.extend(incidents.iter().map(|i| EventFilter {
        incident: Some(i.clone()),
        ..base()
    }));
    for (since, until) in [(1, 3), (0, 1), (2, 4), (3, 3)] {
        let window = EventFilter {
            since: Some(quartile(since)),
            until: Some(quartile(until)),
            ..base()
        };
        filters.extend(clusters.iter().map(|c| EventFilter {
            cluster: Some(c.clone()),
            ..window.clone()
        }));
        filters.push(EventFilter {
            since: None,
            ..window.clone()
        });
        filters.push(window);
    }
    for c in &clusters {
        for t in &types {
            filters.push(EventFilter {
                cluster: Some(c.clone()),
                event_type: EventType::from_wire(t),
                ..base()
            });
        }
        for k in &keys {
            filters.push(EventFilter {
                cluster: Some(c.clone()),
                check_key: Some(k.clone()),
                since: Some(quartile(1)),
                ..base()
            });
        }
    }
    filters
}

fn golden_stores() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut stores: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "redb"))
        .collect();
    stores.sort();
    assert!(!stores.is_empty());
    stores
}

/// Every filter of `filters_of` paged to the end equals the naive filter, at a small budget.
fn check_every_filter(store: &Store, what: &str) {
    let log = logged(store);
    assert!(!log.is_empty(), "{what}: an empty log");
    for filter in filters_of(&log) {
        let expected = naive(store, &log, &filter);
        for limit in [1, 7, 1000] {
            let (got, _) = paged(store, &filter, limit);
            assert_eq!(got, expected, "{what}: {filter:?}, limit {limit}");
        }
    }
}

fn small_budget() -> StoreConfig {
    StoreConfig {
        events_scan_budget: 9,
        ..StoreConfig::default()
    }
}

#[test]
fn golden_stores_answer_every_filter_read_only_and_after_a_read_write_open_built_the_indexes() {
    for golden in golden_stores() {
        let name = golden.file_name().unwrap().to_string_lossy().into_owned();
        let before = std::fs::read(&golden).unwrap();
        {
            // Read-only: the committed file, without the filter indexes (read from the log).
            let store = Store::open_read_only(&golden, small_budget()).unwrap();
            check_every_filter(&store, &format!("{name}, read-only"));
        }
        assert!(std::fs::read(&golden).unwrap() == before, "{name} changed");
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("store.redb");
        std::fs::copy(&golden, &copy).unwrap();
        {
            let store = Store::open(&copy, small_budget()).unwrap();
            check_every_filter(&store, &format!("{name}, built at a read-write open"));
        }
        {
            let store = Store::open_read_only(&copy, small_budget()).unwrap();
            check_every_filter(&store, &format!("{name}, built, read-only"));
        }
        // A rebuild writes a new file: the filter indexes go with it, complete.
        let store = Store::open(&copy, small_budget()).unwrap();
        let checkpoint = store.checkpoint();
        store.rebuild(|_| {}).unwrap();
        drop(store);
        {
            use redb::{ReadableDatabase, ReadableTableMetadata};
            let db = redb::Database::open(&copy).unwrap();
            let txn = db.begin_read().unwrap();
            let indexed = txn.open_table(tables::BY_CLUSTER).unwrap().len().unwrap();
            let logged = txn.open_table(tables::LOG).unwrap().len().unwrap();
            assert_eq!(indexed, logged, "{name}: every logged event in by_cluster");
            let meta = txn.open_table(tables::META).unwrap();
            let to = meta
                .get(tables::EVENT_INDEXES_TO)
                .unwrap()
                .map(|v| v.value());
            assert_eq!(
                to,
                Some(checkpoint as i64),
                "{name}: complete after the rebuild"
            );
        }
        let store = Store::open_read_only(&copy, small_budget()).unwrap();
        check_every_filter(&store, &format!("{name}, rebuilt, read-only"));
    }
}

/// A store whose filter indexes stop before its checkpoint (an older build appended to it) or
/// were never written: read-only, it answers from the log; a read-write open completes them.
#[test]
fn filter_indexes_an_older_build_left_behind_are_completed_at_a_read_write_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    let events = log_of(
        &(0..600)
            .map(|i| Step {
                kind: i % 6,
                cluster: i % 5,
                source: i % 3,
                key: i % 3,
                advance_secs: 50,
                late_secs: (i % 37 == 0).then_some(5_000),
            })
            .collect::<Vec<_>>(),
    );
    drop(store_of(&path, 9, &events));
    // What an older build leaves: the indexes up to position 250, none of them after it.
    {
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)] // writing as an older build would, not as the store
        let txn = db.begin_write().unwrap();
        txn.open_table(tables::BY_CLUSTER)
            .unwrap()
            .retain(|(_, seq), _| seq <= 250)
            .unwrap();
        txn.open_table(tables::BY_SOURCE)
            .unwrap()
            .retain(|(_, seq), _| seq <= 250)
            .unwrap();
        txn.open_table(tables::CLUSTER_CLOCK)
            .unwrap()
            .retain(|(_, _, seq), _| seq <= 250)
            .unwrap();
        txn.open_table(tables::LATE_EVENTS)
            .unwrap()
            .retain(|(_, seq), _| seq <= 250)
            .unwrap();
        txn.open_table(tables::META)
            .unwrap()
            .insert(tables::EVENT_INDEXES_TO, 250)
            .unwrap();
        txn.commit().unwrap();
    }
    {
        let store = Store::open_read_only(&path, small_budget()).unwrap();
        check_every_filter(&store, "indexed up to 250, read-only");
    }
    // Not corrupt: verify checks the entries up to 250 and says, as a note, that the rest is
    // built at the next read-write open.
    let report = Store::verify(&path, |_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.notes.len(), 1, "{report:#?}");
    assert!(
        report.notes[0].contains("complete up to position 250 of 600"),
        "{report:#?}"
    );
    let store = Store::open(&path, small_budget()).unwrap();
    check_every_filter(&store, "completed at a read-write open");
    drop(store);
    let report = Store::verify(&path, |_, _| {}).unwrap();
    assert!(report.is_clean() && report.notes.is_empty(), "{report:#?}");
    let db = redb::ReadOnlyDatabase::open(&path).unwrap();
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(tables::META).unwrap();
    assert_eq!(
        meta.get(tables::EVENT_INDEXES_TO).unwrap().unwrap().value(),
        600
    );
    assert_eq!(
        txn.open_table(tables::BY_CLUSTER).unwrap().len().unwrap(),
        600
    );
}
