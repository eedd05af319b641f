//! Paged readers on real redb files: following `next` to the end gives exactly the unpaged
//! answer, each event once and in position order, whatever the page size and the scan budget;
//! the cluster timeline pages by (time, position) without repeating or skipping ties.
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES` changes the number of cases.

#[path = "../src/property_runner.rs"]
mod property_runner;

use property_runner::seeded_runner;
use proptest::prelude::*;
use tidemark_core::{Event, EventType, Timestamp, decode_event};
use tidemark_store::{EventFilter, Input, Store, StoreConfig};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);
const CLUSTERS: [&str; 4] = ["a", "b", "a\u{0}b", "c"];
const KEYS: [&str; 3] = ["k", "k\u{0}x", "other"];
const SOURCES: [&str; 2] = ["probe", "oncall"];

/// One generated event: what it is, where, about which key, when.
#[derive(Clone, Debug)]
struct Step {
    kind: usize,
    cluster: usize,
    key: usize,
    minute: i64,
    source: usize,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Event `i` of a log: a hand resolution naming a key, a cycle that opens or resolves it, an
/// incident naming it, or a note naming none.
fn event(i: usize, step: &Step) -> Event {
    let cluster = json_str(CLUSTERS[step.cluster]);
    let key = json_str(KEYS[step.key]);
    let time = Timestamp::from_unix_secs(1_772_000_000 + step.minute * 60);
    let (kind, data) = match step.kind {
        0 => (
            "finding.resolved",
            format!(r#"{{"check_key":{key},"kind":"manual"}}"#),
        ),
        1 | 2 => {
            let findings = if step.kind == 1 {
                format!(
                    r#"{{"check_key":{key},"category":"pods","severity":"error","title":"broken"}}"#
                )
            } else {
                String::new()
            };
            (
                "cycle.completed",
                format!(r#"{{"cycle":"c{i}","categories":["pods"],"findings":[{findings}]}}"#),
            )
        }
        3 => (
            "incident.opened",
            format!(
                r#"{{"incident":"inc-{i}","title":"t","severity":"error","check_keys":[{key}]}}"#
            ),
        ),
        _ => (
            "note.added",
            r#"{"author":"me","kind":"hypothesis","text":"hello"}"#.to_owned(),
        ),
    };
    decode_event(&format!(
        r#"{{"id":"e{i}","schema":1,"type":"{kind}","time":"{time}","source":"{}","cluster":{cluster},"data":{data}}}"#,
        SOURCES[step.source]
    ))
    .unwrap()
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        0..5usize,
        0..CLUSTERS.len(),
        0..KEYS.len(),
        0..120i64,
        0..2usize,
    )
        .prop_map(|(kind, cluster, key, minute, source)| Step {
            kind,
            cluster,
            key,
            minute,
            source,
        });
    proptest::collection::vec(step, 0..120)
}

fn filters() -> impl Strategy<Value = EventFilter> {
    let types = [
        EventType::CycleCompleted,
        EventType::FindingResolved,
        EventType::NoteAdded,
    ];
    (
        proptest::option::of(0..CLUSTERS.len()),
        proptest::option::weighted(0.3, proptest::sample::select(types.to_vec())),
        proptest::option::weighted(0.2, 0..120i64),
        proptest::option::weighted(0.2, 0..120i64),
        proptest::option::weighted(0.7, 0..KEYS.len()),
        proptest::option::weighted(0.2, 0..2usize),
    )
        .prop_map(|(cluster, event_type, since, until, key, source)| {
            let minute = |m: i64| Timestamp::from_unix_secs(1_772_000_000 + m * 60);
            EventFilter {
                cluster: cluster.map(|c| CLUSTERS[c].to_owned()),
                event_type,
                since: since.map(minute),
                until: until.map(minute),
                check_key: key.map(|k| KEYS[k].to_owned()),
                incident: None,
                source: source.map(|s| SOURCES[s].to_owned()),
            }
        })
}

/// The positions `filter` names, read without paging: the finding timelines of the key (merged
/// over the clusters) or the whole log, then every other filter on the event.
fn unpaged(store: &Store, log: &[(u64, Event)], filter: &EventFilter) -> Vec<u64> {
    let candidates: Vec<u64> = match &filter.check_key {
        Some(key) => {
            let mut seqs: Vec<u64> = CLUSTERS
                .iter()
                .flat_map(|c| store.finding_timeline(c, key).unwrap())
                .map(|entry| entry.seq)
                .collect();
            seqs.sort_unstable();
            seqs
        }
        None => log.iter().map(|(seq, _)| *seq).collect(),
    };
    candidates
        .into_iter()
        .filter(|seq| {
            let e = &log[(*seq - 1) as usize].1;
            filter.cluster.as_ref().is_none_or(|c| *c == e.cluster)
                && filter.event_type.is_none_or(|t| t == e.event_type())
                && filter.since.is_none_or(|t| e.time >= t)
                && filter.until.is_none_or(|t| e.time <= t)
                && filter.source.as_ref().is_none_or(|s| *s == e.source)
        })
        .collect()
}

/// Every page from the start, following `next`; each `next` must move on.
fn paged(store: &Store, filter: &EventFilter, limit: usize) -> Result<Vec<u64>, TestCaseError> {
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_page(filter, after, limit).unwrap();
        prop_assert!(page.events.len() <= limit);
        seqs.extend(page.events.iter().map(|(seq, _)| *seq));
        match page.next {
            Some(next) => {
                prop_assert!(next > after, "the cursor moved back or stood still");
                after = next;
            }
            None => return Ok(seqs),
        }
    }
}

fn store_of(dir: &tempfile::TempDir, budget: usize, events: &[Event]) -> Store {
    let config = StoreConfig {
        events_scan_budget: budget,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path().join("pages.redb"), config).unwrap();
    for batch in events.chunks(50) {
        let inputs: Vec<Input> = batch.iter().cloned().map(Input::Event).collect();
        store.append(&inputs, NOW).unwrap();
    }
    store
}

#[test]
fn paging_to_the_end_gives_the_unpaged_answer_for_any_budget_and_page_size() {
    let (mut runner, seed) = seeded_runner(100);
    let cases = (
        steps(),
        1..25usize,
        proptest::collection::vec((filters(), 1..8usize), 1..8),
    );
    let result = runner.run(&cases, |(steps, budget, queries)| {
        let events: Vec<Event> = steps.iter().enumerate().map(|(i, s)| event(i, s)).collect();
        let dir = tempfile::tempdir().unwrap();
        let store = store_of(&dir, budget, &events);
        let log: Vec<(u64, Event)> = (1..).zip(events).collect();
        for (filter, limit) in &queries {
            let expected = unpaged(&store, &log, filter);
            let got = paged(&store, filter, *limit)?;
            prop_assert_eq!(&got, &expected, "{:?}, limit {}", filter, limit);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("paging property failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}");
    }
}

/// The issue's shape, scaled to a small budget: one cluster with more entries for the key than
/// the budget, another with a few, interleaved. Paging returned one event of `b` (of 50).
#[test]
fn a_cluster_past_the_budget_does_not_hide_another_clusters_events() {
    let budget = 100;
    let mut steps = Vec::new();
    for i in 0..300 {
        let in_b = i % 6 == 5;
        steps.push(Step {
            kind: 0,
            cluster: usize::from(in_b),
            key: 0,
            minute: i,
            source: 0,
        });
    }
    let events: Vec<Event> = steps.iter().enumerate().map(|(i, s)| event(i, s)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(&dir, budget, &events);
    let filter = EventFilter {
        check_key: Some("k".into()),
        ..EventFilter::default()
    };
    let all: Vec<u64> = (1..=300).collect();
    for limit in [1, 7, 100, 1000] {
        let got = paged(&store, &filter, limit).unwrap();
        assert_eq!(got, all, "limit {limit}");
    }
    let only_b = EventFilter {
        cluster: Some("b".into()),
        ..filter
    };
    let b: Vec<u64> = (1..=300).filter(|seq| (seq - 1) % 6 == 5).collect();
    assert_eq!(b.len(), 50);
    assert_eq!(paged(&store, &only_b, 10).unwrap(), b);
}

/// A cluster's timeline by event time: many events share a time, and every page boundary
/// falls among them; following `next` lists each once, in (time, position) order.
#[test]
fn cluster_timeline_pages_through_ties_without_repeating_or_skipping() {
    let mut steps = Vec::new();
    for i in 0..40 {
        steps.push(Step {
            kind: 4,
            cluster: [0, 2][i % 2],
            key: 0,
            minute: [30, 10, 10, 20][i % 4],
            source: 0,
        });
    }
    let events: Vec<Event> = steps.iter().enumerate().map(|(i, s)| event(i, s)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(&dir, 1000, &events);
    for cluster in ["a", "a\u{0}b"] {
        let all = store.cluster_timeline(cluster, None, None, 1000).unwrap();
        assert_eq!(all.len(), 20);
        let since = Some(Timestamp::from_unix_secs(1_772_000_000 + 10 * 60));
        for limit in [1, 3, 7] {
            let mut listed = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .cluster_timeline_page(cluster, since, None, after, limit)
                    .unwrap();
                assert!(page.entries.len() <= limit);
                listed.extend(page.entries.iter().map(|e| (e.event.time, e.seq)));
                match page.next {
                    Some(next) => {
                        assert!(Some(next) > after);
                        after = Some(next);
                    }
                    None => break,
                }
            }
            let expected: Vec<(Timestamp, u64)> = all
                .iter()
                .filter(|e| since.is_none_or(|t| e.event.time >= t))
                .map(|e| (e.event.time, e.seq))
                .collect();
            assert!(expected.is_sorted());
            assert_eq!(listed, expected, "{cluster:?}, limit {limit}");
        }
    }
}
