//! SIGKILL after each kind of write, on real redb files: a child process opens the store, makes
//! one kind of write (an append batch, a quarantine write, a snapshot, `compact`, `rebuild`,
//! retention), says so, and is killed with SIGKILL while it still holds the file. The store then
//! opens with everything the child was told was written, verifies clean, and opens WITHOUT
//! redb's walk of the whole file: each of those writes ended with a commit that saved the
//! allocator state (quick repair, `store/write_txn.rs`). A control kill after a plain commit
//! shows that the walk is seen when it happens. And a `rebuild` killed at each of its steps
//! leaves the old store, complete, and no partial file.
//!
//! The child is this test binary run again on its ignored `child` test, told what to do
//! through `TIDEMARK_CRASH_CHILD`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use tidemark_core::{Event, Projections, Timestamp, decode_event};
use tidemark_store::{
    EmbeddedRetention, Input, Outcome, RebuildProgress, Store, StoreConfig, VerifyReport,
};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);
const CHILD: &str = "TIDEMARK_CRASH_CHILD";
/// The line the child prints once its write returned (or, for `rebuild-step-N`, once the
/// rebuild reached step N).
const WRITTEN: &str = "crash-child: written";

/// Event `i`: a cycle of cluster `c{i % 3}` whose findings come and go; every other one names
/// 40 findings, so its log and change records are large enough to be stored compressed.
fn event(i: usize) -> Event {
    let keys = if i.is_multiple_of(2) { 40 } else { 5 };
    let findings: Vec<String> = (0..keys)
        .filter(|k| !(i / 3 + k).is_multiple_of(3))
        .map(|k| {
            format!(r#"{{"check_key":"k{k}","category":"c","severity":"error","title":"k{k} is broken again"}}"#)
        })
        .collect();
    decode_event(&format!(
        r#"{{"id":"crash-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T{:02}:{:02}:{:02}Z","source":"probe","cluster":"c{}","data":{{"cycle":"{i}","categories":["c"],"findings":[{}]}}}}"#,
        i / 3600,
        (i / 60) % 60,
        i % 60,
        i % 3,
        findings.join(",")
    ))
    .unwrap()
}

fn fold(range: std::ops::Range<usize>) -> Projections {
    let mut projections = Projections::new();
    for i in range {
        projections.apply(i as u64 + 1, &event(i));
    }
    projections
}

fn rejected(i: usize) -> Input {
    Input::Rejected {
        raw: format!("not json {i}").into_bytes(),
        reason: "not json".into(),
        origin: format!("line {i}"),
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        snapshot_every: 50,
        snapshot_keep_every: 100,
        ..StoreConfig::default()
    }
}

/// Events the store starts with (appended by the parent, closed cleanly).
const BEFORE: usize = 300;

fn append(store: &Store, range: std::ops::Range<usize>) {
    let inputs: Vec<Input> = range.map(|i| Input::Event(event(i))).collect();
    for chunk in inputs.chunks(25) {
        let outcomes = store.append(chunk, NOW).unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Accepted { .. })),
            "{outcomes:?}"
        );
    }
}

/// The child: opens the store, makes the write `kind` names, prints [`WRITTEN`] and waits to be
/// killed. Does nothing unless run by a test of this file.
#[test]
#[ignore = "the child process of this file's SIGKILL tests, run by them"]
fn child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (kind, path) = spec.split_once(':').expect("KIND:PATH");
    let path = Path::new(path);
    let written = || {
        println!("{WRITTEN}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    };
    if kind == "plain-commit" {
        // The control: a commit made the way redb does by default, without quick repair.
        let db = redb::Database::open(path).unwrap();
        #[allow(clippy::disallowed_methods)] // the commit without quick repair, on purpose
        let txn = db.begin_write().unwrap();
        txn.open_table(tidemark_store::tables::LOG).unwrap();
        txn.commit().unwrap();
        written();
    }
    let store = Store::open(path, config()).unwrap();
    match kind {
        "open" => {}
        "append" => append(&store, BEFORE..BEFORE + 10),
        "quarantine" => {
            let inputs: Vec<Input> = (0..3).map(rejected).collect();
            store.quarantine_rejected(&inputs, NOW).unwrap();
        }
        "snapshot" => {
            append(&store, BEFORE..BEFORE + 10);
            store.snapshot_now().unwrap();
        }
        "snapshot-one-cluster" => {
            let inputs: Vec<Input> = ONE_CLUSTER
                .iter()
                .map(|&i| Input::Event(event(i)))
                .collect();
            store.append(&inputs, NOW).unwrap();
            store.snapshot_now().unwrap();
        }
        "compact" => {
            store.compact().unwrap();
        }
        "rebuild" => {
            let report = store.rebuild(|_| {}).unwrap();
            assert!(report.state_unchanged);
        }
        "retention" => {
            store
                .drop_events_before(None, EmbeddedRetention::Allow)
                .unwrap();
        }
        kind => {
            let step: usize = kind
                .strip_prefix("rebuild-step-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unknown kind {kind}"));
            let mut steps = 0;
            store
                .rebuild(|_: RebuildProgress| {
                    steps += 1;
                    if steps == step {
                        written();
                    }
                })
                .unwrap();
            println!("crash-child: rebuilt in {steps} steps");
            std::process::exit(0);
        }
    }
    written();
}

/// Runs the child on `path` with `kind`, waits for its [`WRITTEN`] line and kills it with
/// SIGKILL. Answers whether it got that far (a `rebuild-step-N` past the rebuild's last step
/// ends on its own).
fn write_then_kill(path: &Path, kind: &str) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{kind}:{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reached = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains(WRITTEN) {
            reached = true;
            break;
        }
    }
    let _ = child.kill(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        reached || status.success(),
        "the child ({kind}) failed before it wrote: {status}"
    );
    reached
}

/// A store of [`BEFORE`] events, closed cleanly.
fn prepared(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, config()).unwrap();
    append(&store, 0..BEFORE);
    drop(store);
    path
}

fn verified(path: &Path) -> VerifyReport {
    let report = Store::verify(path, |_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    // What was verified holds both forms of log record: plain, and compressed (the large
    // cycles, store layout 8); a log cut by retention to its last positions may hold one.
    use redb::{ReadableDatabase, ReadableTable};
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let formats: std::collections::BTreeSet<u8> = db
        .begin_read()
        .unwrap()
        .open_table(tidemark_store::tables::LOG)
        .unwrap()
        .iter()
        .unwrap()
        .map(|entry| entry.unwrap().1.value()[0])
        .collect();
    let both = [
        tidemark_store::codec::EVENT_FORMAT,
        tidemark_store::codec::EVENT_FORMAT_COMPRESSED,
    ]
    .into();
    let cut = report
        .checked
        .get("log")
        .is_some_and(|&records| records < 4);
    assert!(
        formats == both || (cut && formats.is_subset(&both)),
        "log record formats {formats:?}"
    );
    report
}

/// Kills the child after the write `kind`, then reopens: answers the reopened store, after
/// checking it opened without walking the file and verifies clean.
fn kill_after(path: &Path, kind: &str) -> Store {
    assert!(write_then_kill(path, kind));
    let store = Store::open(path, config()).unwrap();
    assert!(
        !store.walked_whole_file_on_open(),
        "after a SIGKILL following `{kind}`, redb walked the whole file: its last commit did not save the allocator state"
    );
    drop(store);
    verified(path);
    Store::open(path, config()).unwrap()
}

#[test]
fn a_kill_after_a_plain_commit_walks_the_whole_file_and_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    assert!(write_then_kill(&path, "plain-commit"));
    let store = Store::open(&path, config()).unwrap();
    assert!(store.walked_whole_file_on_open());
    assert_eq!(store.checkpoint(), BEFORE as u64);
}

#[test]
fn a_kill_after_opening_keeps_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "open");
    assert_eq!(
        store.projection_snapshot(),
        fold(0..BEFORE).snapshot(),
        "the state"
    );
}

#[test]
fn a_kill_after_an_append_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "append");
    assert_eq!(store.checkpoint(), BEFORE as u64 + 10);
    assert_eq!(store.events(0, usize::MAX).unwrap().len(), BEFORE + 10);
    assert_eq!(store.projection_snapshot(), fold(0..BEFORE + 10).snapshot());
}

#[test]
fn a_kill_after_a_quarantine_write_keeps_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "quarantine");
    assert_eq!(store.stats().unwrap().quarantined, 3);
    assert_eq!(store.checkpoint(), BEFORE as u64);
}

#[test]
fn a_kill_after_a_snapshot_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "snapshot");
    assert_eq!(store.stats().unwrap().snapshot_seq, BEFORE as u64 + 10);
    assert_eq!(store.projection_snapshot(), fold(0..BEFORE + 10).snapshot());
}

/// Events of cluster `c0` only (event `i` is of cluster `c{i % 3}`), after [`BEFORE`].
const ONE_CLUSTER: [usize; 10] = {
    let mut events = [0; 10];
    let mut j = 0;
    while j < 10 {
        events[j] = BEFORE + 3 * j;
        j += 1;
    }
    events
};

/// A per-cluster snapshot that wrote the part of the one cluster that changed and named the
/// others' earlier parts: after the kill, the store reopens from it with the fold's state.
#[test]
fn a_kill_after_a_per_cluster_snapshot_of_one_changed_cluster_keeps_it() {
    assert_eq!(BEFORE % 3, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "snapshot-one-cluster");
    let seq = BEFORE as u64 + ONE_CLUSTER.len() as u64;
    assert_eq!(store.stats().unwrap().snapshot_seq, seq);
    let mut folded = fold(0..BEFORE);
    for (position, &i) in (BEFORE as u64 + 1..).zip(&ONE_CLUSTER) {
        folded.apply(position, &event(i));
    }
    assert_eq!(store.projection_snapshot(), folded.snapshot());
    drop(store);
    use redb::{ReadableDatabase, ReadableTable};
    let database = redb::Database::builder().open_read_only(&path).unwrap();
    let txn = database.begin_read().unwrap();
    let parts = txn
        .open_table(tidemark_store::tables::CLUSTER_SNAPSHOTS)
        .unwrap();
    let written: Vec<String> = parts
        .iter()
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.unwrap();
            let (cluster, at) = entry.0.value();
            (at == seq).then(|| cluster.to_owned())
        })
        .collect();
    assert_eq!(
        written,
        ["c0"],
        "the snapshot wrote the part of the cluster that changed"
    );
}

#[test]
fn a_kill_after_compact_keeps_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "compact");
    assert_eq!(store.events(0, usize::MAX).unwrap().len(), BEFORE);
    assert_eq!(store.projection_snapshot(), fold(0..BEFORE).snapshot());
}

#[test]
fn a_kill_after_rebuild_keeps_the_rebuilt_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "rebuild");
    assert_eq!(store.events(0, usize::MAX).unwrap().len(), BEFORE);
    assert_eq!(store.projection_snapshot(), fold(0..BEFORE).snapshot());
    assert!(!dir.path().join("store.redb.rebuild-partial").exists());
}

#[test]
fn a_kill_after_embedded_retention_keeps_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let store = kill_after(&path, "retention");
    let kept = store.events(0, usize::MAX).unwrap();
    let first = kept.first().unwrap().0;
    assert!(first > 1, "the log was cut at {first}");
    assert_eq!(kept.last().unwrap().0, BEFORE as u64);
    assert_eq!(store.projection_snapshot(), fold(0..BEFORE).snapshot());
}

/// A rebuild killed at each of its steps (every progress report: copying the tables it keeps,
/// folding the log) leaves the old store, complete, and the next open removes the partial new
/// file; killed after it returned, the new one.
#[test]
fn a_rebuild_killed_at_any_step_leaves_the_old_store_or_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(&dir);
    let partial = dir.path().join("store.redb.rebuild-partial");
    let expected = fold(0..BEFORE).snapshot();
    let mut step = 1;
    while write_then_kill(&path, &format!("rebuild-step-{step}")) {
        assert!(
            partial.exists(),
            "step {step}: the rebuild writes its new file"
        );
        let store = Store::open(&path, config()).unwrap();
        assert!(
            !partial.exists(),
            "step {step}: the open removed the partial file"
        );
        assert!(!store.walked_whole_file_on_open(), "step {step}");
        assert_eq!(store.checkpoint(), BEFORE as u64, "step {step}");
        assert_eq!(store.projection_snapshot(), expected, "step {step}");
        drop(store);
        verified(&path);
        step += 1;
    }
    assert!(step > 3, "the rebuild reported {} steps", step - 1);
    // The child ran the rebuild to its end the last time: the new store, complete.
    assert!(!partial.exists());
    let store = Store::open(&path, config()).unwrap();
    assert_eq!(store.projection_snapshot(), expected);
    drop(store);
    verified(&path);
}
