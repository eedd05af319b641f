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

/// An event of cluster `c` from its JSON `type` and `data`, at minute `minute`.
fn incident_event(i: usize, minute: usize, kind: &str, data: &str) -> Event {
    decode_event(&format!(
        r#"{{"id":"t-{i}","schema":1,"type":"{kind}","time":"2026-03-0{}T{:02}:{:02}:00Z","source":"probe","cluster":"c","data":{data}}}"#,
        2 + minute / 1440,
        (minute / 60) % 24,
        minute % 60
    ))
    .unwrap()
}

/// ADR 0006 step 3 through the store: an automatic incident closes (its timeline written out),
/// more than a rebuild's chunk of events later it is reopened and absorbed (its rows read back
/// from committed batches: by the live store, and by a rebuild from the file it is writing),
/// and the absorbing incident is closed and noted. The store's state (every timeline whole)
/// equals the fold in memory live, after a reopen, after a rebuild, and at every position of
/// the incident's events by time travel.
#[test]
fn an_incident_reopened_and_absorbed_past_a_rebuild_chunk_reads_the_same_everywhere() {
    let pod = r#"{"check_key":"pod:a","category":"pods","severity":"error","title":"down","resource":{"kind":"Pod","namespace":"web","name":"a"}}"#;
    let cycle = |i, minute, findings: &str| {
        incident_event(
            i,
            minute,
            "cycle.completed",
            &format!(r#"{{"cycle":"{i}","categories":["pods"],"findings":[{findings}]}}"#),
        )
    };
    let mut events = vec![
        cycle(0, 0, pod),
        incident_event(
            1,
            1,
            "finding.resolved",
            r#"{"check_key":"pod:a","kind":"manual","by":"oncall"}"#,
        ),
    ];
    // Filler: another cluster's empty cycles, more than a rebuild folds per transaction.
    events.extend((0..10_050).map(|i| {
        decode_event(&format!(
            r#"{{"id":"f-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T00:02:00Z","source":"probe","cluster":"other","data":{{"cycle":"{i}","categories":[],"findings":[]}}}}"#
        ))
        .unwrap()
    }));
    let incident = |i, minute, kind: &str, id: &str, keys: &str| {
        incident_event(
            i,
            minute,
            kind,
            &format!(r#"{{"incident":"{id}","title":"{id}","check_keys":[{keys}]}}"#),
        )
    };
    events.extend([
        incident(2, 3, "incident.opened", "auto-c-1", ""),
        cycle(3, 4, pod),
        incident(4, 5, "incident.opened", "inc-x", r#""pod:a""#),
        incident(5, 6, "incident.closed", "inc-x", ""),
        incident_event(
            6,
            7,
            "note.added",
            r#"{"incident":"inc-x","author":"oncall","kind":"observation","text":"seen"}"#,
        ),
    ]);
    let mut fold = tidemark_core::LogFold::new();
    let mut states = Vec::new();
    for event in &events {
        fold.apply(event);
        states.push(fold.projections().snapshot());
    }
    let absorbed = fold.projections().incidents().incident("auto-c-1").unwrap();
    assert_eq!(
        absorbed.merged_into.as_deref(),
        Some("inc-x"),
        "the path is taken"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let (head, tail) = events.split_at(events.len() - 5);
    let inputs =
        |events: &[Event]| -> Vec<Input> { events.iter().cloned().map(Input::Event).collect() };
    store.append(&inputs(head), NOW).unwrap();
    // The reopen and the absorb in batches of their own: the rows are read back committed.
    for event in tail {
        store
            .append(&inputs(std::slice::from_ref(event)), NOW)
            .unwrap();
    }
    let expected = fold.projections().snapshot();
    assert!(store.projection_snapshot() == expected, "live");
    drop(store);
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    assert!(store.projection_snapshot() == expected, "reopened");
    for seq in [
        2,
        events.len() as u64 - 4,
        events.len() as u64 - 2,
        events.len() as u64,
    ] {
        let (past, at) = store.projection_at(tidemark_store::At::Seq(seq)).unwrap();
        assert_eq!(at, seq);
        assert!(past.snapshot() == states[seq as usize - 1], "as of {seq}");
    }
    let report = store.rebuild(|_| {}).unwrap();
    assert!(report.state_unchanged);
    assert!(store.projection_snapshot() == expected, "rebuilt");
    drop(store);
    let verified = Store::verify(&path, |_, _| {}).unwrap();
    assert!(verified.is_clean(), "{verified:#?}");
}
