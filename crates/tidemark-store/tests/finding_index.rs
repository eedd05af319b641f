//! The finding index in groups (store layout 9, issue 20) on real redb files: a finding changed
//! more often in one batch than a group holds is read whole, both ways and page by page, and by
//! the event filter; retention cuts through a group and keeps its entries from the cut on; a
//! rebuild from the cut copies them; `verify` agrees with each.

use std::path::Path;

use tidemark_core::{Event, Timestamp, decode_event};
use tidemark_store::{
    EmbeddedRetention, EventFilter, Input, Store, StoreConfig, TimelineAnchor, codec, tables,
};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// Cycle `i` (from 0) of cluster `c`: finding `k` at a severity that flips every cycle (so every
/// cycle changes it), and finding `steady`, which never changes after it opens.
fn cycle(i: usize) -> Event {
    let severity = if i.is_multiple_of(2) {
        "error"
    } else {
        "warning"
    };
    decode_event(&format!(
        r#"{{"id":"fi-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T{:02}:{:02}:00Z","source":"probe","cluster":"c","data":{{"cycle":"{i}","categories":["x"],"findings":[{{"check_key":"k","category":"x","severity":"{severity}","title":"k"}},{{"check_key":"steady","category":"x","severity":"error","title":"s"}}]}}}}"#,
        i / 60,
        i % 60
    ))
    .unwrap()
}

fn config() -> StoreConfig {
    StoreConfig {
        snapshot_every: 40,
        ..StoreConfig::default()
    }
}

/// The first positions of the groups of finding `k` in the store at `path`.
fn group_starts(path: &Path) -> Vec<u64> {
    use redb::ReadableDatabase;
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let groups = txn.open_table(tables::FINDING_GROUPS).unwrap();
    groups
        .range(("c", "k", 0)..=("c", "k", u64::MAX))
        .unwrap()
        .map(|entry| entry.unwrap().0.value().2)
        .collect()
}

fn timeline_seqs(store: &Store) -> Vec<u64> {
    store
        .finding_timeline("c", "k")
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// Every page of `limit` of finding `k`'s timeline read forwards from the first, and backwards
/// from the latest, joined: each way gives `want`, and each page's cursors point at its
/// neighbours.
fn assert_pages_both_ways(store: &Store, limit: usize, want: &[u64]) {
    let up_to = store.checkpoint();
    let mut forwards: Vec<u64> = Vec::new();
    let mut anchor = TimelineAnchor::After(0);
    loop {
        let page = store
            .finding_timeline_window("c", "k", anchor, up_to, limit)
            .unwrap();
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        assert!(seqs.len() <= limit);
        if let Some(older) = page.older {
            assert_eq!(
                Some(&older),
                seqs.first(),
                "a page's older cursor is its first"
            );
        }
        forwards.extend(&seqs);
        match page.newer {
            Some(after) => anchor = TimelineAnchor::After(after),
            None => break,
        }
    }
    assert_eq!(forwards, want, "forwards in pages of {limit}");
    let mut backwards: Vec<u64> = Vec::new();
    let mut anchor = TimelineAnchor::Before(u64::MAX);
    loop {
        let page = store
            .finding_timeline_window("c", "k", anchor, up_to, limit)
            .unwrap();
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        backwards.splice(0..0, seqs.iter().copied());
        match page.older {
            Some(before) => anchor = TimelineAnchor::Before(before),
            None => break,
        }
    }
    assert_eq!(backwards, want, "backwards in pages of {limit}");
}

/// The positions of the events the event filter gives for finding `k`, after `after`, in pages
/// of `limit`.
fn filtered_positions(store: &Store, after: u64, limit: usize) -> Vec<u64> {
    let filter = EventFilter {
        cluster: Some("c".into()),
        check_key: Some("k".into()),
        ..EventFilter::default()
    };
    let mut out = Vec::new();
    let mut after = after;
    loop {
        let page = store.events_page(&filter, after, limit).unwrap();
        out.extend(page.events.iter().map(|(seq, _)| *seq));
        match page.next {
            Some(next) => after = next,
            None => return out,
        }
    }
}

fn assert_index_verified(path: &Path) {
    let report = Store::verify(path, |_, _| {}).unwrap();
    assert!(report.problems.is_empty(), "{report:#?}");
    assert!(report.checked["finding_groups"] > 0, "{report:#?}");
}

#[test]
fn a_finding_changed_more_often_in_a_batch_than_a_group_holds_reads_whole_every_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, config()).unwrap();
    let inputs: Vec<Input> = (0..150).map(|i| Input::Event(cycle(i))).collect();
    store.append(&inputs, NOW).unwrap();
    let all: Vec<u64> = (1..=150).collect();
    assert_eq!(timeline_seqs(&store), all);
    let changes = store.finding_timeline("c", "k").unwrap();
    assert_eq!(changes[0].changes, ["opened"]);
    assert_eq!(changes[1].changes, ["severity_changed"]);
    assert_eq!(
        store
            .finding_timeline("c", "steady")
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [1]
    );
    for limit in [1, 7, 50, 64, 65, 200] {
        assert_pages_both_ways(&store, limit, &all);
    }
    // The event filter, from positions inside, at the edges of and between groups.
    for after in [0, 1, 63, 64, 65, 100, 128, 129, 149, 150] {
        let want: Vec<u64> = (after + 1..=150).collect();
        assert_eq!(filtered_positions(&store, after, 10), want, "after {after}");
    }
    drop(store);
    // One batch: groups of 64 entries at most.
    let starts = group_starts(&path);
    assert_eq!(starts, [1, 65, 129]);
    assert_eq!(codec::FINDING_GROUP_MAX_ENTRIES, 64);
    assert_index_verified(&path);
}

#[test]
fn retention_cuts_through_a_group_and_a_rebuild_from_the_cut_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let store = Store::open(&path, config()).unwrap();
    let positioned = |range: std::ops::Range<usize>| -> Vec<(u64, Input)> {
        range
            .map(|i| (i as u64 + 1, Input::Event(cycle(i))))
            .collect()
    };
    store.append_positioned(&positioned(0..100), NOW).unwrap();
    store.snapshot_now().unwrap();
    store.append_positioned(&positioned(100..150), NOW).unwrap();
    let cut = store
        .drop_events_before(Some(120), EmbeddedRetention::Refuse)
        .unwrap()
        .first_retained;
    let want: Vec<u64> = (cut..=150).collect();
    assert_eq!(timeline_seqs(&store), want, "cut at {cut}");
    drop(store);
    // The cut fell inside a group: what it kept of it starts at the cut.
    let starts = group_starts(&path);
    assert!(starts.contains(&cut), "{starts:?}, cut {cut}");
    assert!(starts.iter().all(|s| *s >= cut), "{starts:?}");
    assert!(
        ![1, 65, 101].contains(&cut),
        "the cut {cut} is a group's start"
    );
    assert_index_verified(&path);

    let store = Store::open(&path, config()).unwrap();
    assert_pages_both_ways(&store, 7, &want);
    let rebuilt = store.rebuild(|_| {}).unwrap();
    assert!(rebuilt.from_snapshot.is_some(), "{rebuilt:?}");
    assert_eq!(timeline_seqs(&store), want);
    assert_eq!(filtered_positions(&store, 0, 9), want);
    drop(store);
    assert_index_verified(&path);
}
