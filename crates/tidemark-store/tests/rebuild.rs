//! `rebuild` on real redb files: it leaves the file no larger than before (it writes a fresh
//! file and renames it over the store; rewriting the derived tables in place grew a compacted
//! store to twice its size), reports its progress through to the end, and keeps the state.

use tidemark_core::{Event, Timestamp, decode_event};
use tidemark_store::{Input, RebuildProgress, Store, StoreConfig};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// Event `i`: a cycle of cluster `c{i % 5}` whose findings come and go.
fn event(i: usize) -> Event {
    let findings: Vec<String> = (0..20)
        .filter(|k| !(i / 5 + k).is_multiple_of(3))
        .map(|k| {
            format!(r#"{{"check_key":"k{k}","category":"c","severity":"error","title":"k{k} is broken"}}"#)
        })
        .collect();
    decode_event(&format!(
        r#"{{"id":"rebuild-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T{:02}:{:02}:{:02}Z","source":"probe","cluster":"c{}","data":{{"cycle":"{i}","categories":["c"],"findings":[{}]}}}}"#,
        i / 3600,
        (i / 60) % 60,
        i % 60,
        i % 5,
        findings.join(",")
    ))
    .unwrap()
}

#[test]
fn rebuild_leaves_the_file_no_larger_and_reports_progress_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let config = StoreConfig {
        snapshot_every: 500,
        snapshot_keep_every: 1000,
        snapshot_min_every: 100,
        ..StoreConfig::default()
    };
    let store = Store::open(&path, config.clone()).unwrap();
    let events = 3000;
    let inputs: Vec<Input> = (0..events).map(|i| Input::Event(event(i))).collect();
    for chunk in inputs.chunks(100) {
        store.append(chunk, NOW).unwrap();
    }
    let live = store.projection_snapshot();
    // Compacted first: no free pages for a rewrite in place to reuse.
    store.compact().unwrap();
    let snapshots_before = snapshot_positions(&store);
    // The bytes rule wrote snapshots between the `snapshot_every` ones, and kept them.
    assert!(snapshots_before.len() > 6, "{snapshots_before:?}");
    let before = std::fs::metadata(&path).unwrap().len();

    let mut copying = Vec::new();
    let mut folding = Vec::new();
    let report = store
        .rebuild(|step| match step {
            RebuildProgress::Copying { done, total } => copying.push((done, total)),
            RebuildProgress::Folding { done, total } => folding.push((done, total)),
            _ => {}
        })
        .unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    // The snapshots are written anew where the store had them (so time travel starts as near),
    // and at the checkpoint (where the next open starts).
    let mut expected = snapshots_before.clone();
    if expected.last() != Some(&(events as u64)) {
        expected.push(events as u64);
    }
    assert_eq!(snapshot_positions(&store), expected);
    assert!(report.state_unchanged);
    assert_eq!(store.projection_snapshot(), live);
    assert!(
        after <= before,
        "the rebuild grew the file from {before} to {after} bytes"
    );
    eprintln!("rebuild: {before} -> {after} bytes");
    assert_eq!((report.bytes_before, report.bytes_after), (before, after));
    assert_eq!(folding.first(), Some(&(0, events as u64)));
    assert_eq!(folding.last(), Some(&(events as u64, events as u64)));
    let (done, total) = *copying.last().unwrap();
    assert_eq!(done, total, "{copying:?}");
    assert!(total >= events as u64, "the log is copied: {copying:?}");

    // Again, and reopened: the same.
    store.rebuild(|_| {}).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() <= before);
    drop(store);
    let store = Store::open(&path, config).unwrap();
    assert_eq!(store.projection_snapshot(), live);
    assert_eq!(store.checkpoint(), events as u64);
}

/// The positions the store holds snapshots at, read through a backup (the store holds its file).
fn snapshot_positions(store: &Store) -> Vec<u64> {
    use redb::{ReadableDatabase, ReadableTable};
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.redb");
    store.backup_to(&copy, |_, _| {}).unwrap();
    let db = redb::ReadOnlyDatabase::open(&copy).unwrap();
    let txn = db.begin_read().unwrap();
    txn.open_table(tidemark_store::tables::SNAPSHOTS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|entry| entry.unwrap().0.value())
        .collect()
}
