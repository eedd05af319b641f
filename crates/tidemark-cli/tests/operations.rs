//! `tidemark backup`, `restore` and `compact` on real files: backups of a server under ingest
//! are the store as one commit left it, restores are checked and atomic, compaction keeps the
//! state.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tidemark_core::Projections;
use tidemark_store::{Store, StoreConfig};

const READ_TOKEN: &str = "r-0123456789abcdef0123";
const WRITE_TOKEN: &str = "w-0123456789abcdef0123";

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .env_remove("TIDEMARK_DB")
        .env_remove("TIDEMARK_TOKEN")
        .env_remove("TIDEMARK_TOKENS")
        .output()
        .expect("tidemark runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Event `i` of a deterministic log over three clusters with findings coming and going.
fn event(i: usize) -> String {
    let cluster = ["alpha", "beta", "gamma"][i % 3];
    let time = format!(
        "2026-03-02T{:02}:{:02}:{:02}Z",
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60
    );
    let findings: Vec<String> = (0..7)
        .filter(|k| !(i / 3 + k * 5).is_multiple_of(3))
        .map(|k| {
            format!(
                r#"{{"check_key":"k{k}","category":"c{}","severity":"error","title":"k{k} broken"}}"#,
                k % 2
            )
        })
        .collect();
    format!(
        r#"{{"id":"ops-{i}","schema":1,"type":"cycle.completed","time":"{time}","source":"probe","cluster":"{cluster}","data":{{"cycle":"{i}","categories":["c0","c1"],"findings":[{}]}}}}"#,
        findings.join(",")
    )
}

/// The projections after a clean fold of events 0..count.
fn fold(count: usize) -> Projections {
    let mut projections = Projections::new();
    for i in 0..count {
        let event = tidemark_core::decode_event_bytes(event(i).as_bytes()).unwrap();
        projections.apply(i as u64 + 1, &event);
    }
    projections
}

/// A store is exactly the first `checkpoint` events: ids in order, and the state of a fold.
fn assert_is_prefix(db: &Path) -> u64 {
    let store = Store::open(db, StoreConfig::default()).unwrap();
    let checkpoint = store.checkpoint();
    let ids: Vec<String> = store
        .events(1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.event.id.0)
        .collect();
    let expected: Vec<String> = (0..checkpoint as usize)
        .map(|i| format!("ops-{i}"))
        .collect();
    assert_eq!(ids, expected, "{}", db.display());
    assert_eq!(
        store.projection_snapshot(),
        fold(checkpoint as usize).snapshot(),
        "{}: the state is the state at its checkpoint",
        db.display()
    );
    checkpoint
}

#[test]
fn backups_of_a_serving_store_under_ingest_are_consistent_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.redb");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    command
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--snapshot-every",
            "150",
        ])
        .env(
            "TIDEMARK_TOKENS",
            format!("read:{READ_TOKEN},write:{WRITE_TOKEN}"),
        );
    let (mut child, base) = support::spawn_command(command);

    // A producer sends batches in order until told to stop; a batch is acknowledged by a 200.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = std::thread::spawn({
        let base = base.clone();
        let stop = stop.clone();
        move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into();
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) || sent < 300 {
                let batch: Vec<String> = (sent..sent + 20).map(event).collect();
                let response = agent
                    .post(&format!("{base}/v1/events"))
                    .header("authorization", &format!("Bearer {WRITE_TOKEN}"))
                    .header("content-type", "application/x-ndjson")
                    .send(batch.join("\n"))
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
                sent += 20;
            }
            sent
        }
    });

    // A read token may not take a backup.
    let refused = dir.path().join("refused.redb");
    let out = tidemark(&[
        "backup",
        "--server",
        &base,
        "--token",
        READ_TOKEN,
        "--to",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("write scope"), "{}", stderr(&out));
    assert!(!refused.exists());

    // Backups while the producer writes: each is the store as one commit left it.
    let mut checkpoints = Vec::new();
    for n in 0..3 {
        let file = dir.path().join(format!("backup-{n}.redb"));
        let out = tidemark(&[
            "backup",
            "--server",
            &base,
            "--token",
            WRITE_TOKEN,
            "--to",
            file.to_str().unwrap(),
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let checkpoint = assert_is_prefix(&file);
        assert_eq!(summary["checkpoint"], checkpoint);
        // Any command reads a backup as a store.
        let out = tidemark(&["findings", "--db", file.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            findings,
            serde_json::to_value(fold(checkpoint as usize).findings().views()).unwrap()
        );
        checkpoints.push(checkpoint);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = producer.join().unwrap();
    assert!(checkpoints.iter().all(|c| *c as usize <= sent));
    assert!(
        checkpoints.windows(2).all(|w| w[0] <= w[1]),
        "{checkpoints:?}"
    );
    // No scratch copy is left next to the store.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp") || name.contains(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // An existing file is not replaced without --force.
    let first = dir.path().join("backup-0.redb");
    let out = tidemark(&[
        "backup",
        "--server",
        &base,
        "--token",
        WRITE_TOKEN,
        "--to",
        first.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));

    // Restoring over the store the server holds is refused, and changes nothing.
    let out = tidemark(&[
        "restore",
        "--from",
        first.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("open in another process"),
        "{}",
        stderr(&out)
    );

    // Stop the server: the live store holds everything sent.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    assert_eq!(assert_is_prefix(&db) as usize, sent);

    // Restore the first backup over the stopped store: the store goes back to its checkpoint.
    let out = tidemark(&[
        "restore",
        "--from",
        first.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    let out = tidemark(&[
        "restore",
        "--from",
        first.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--force",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(assert_is_prefix(&db), checkpoints[0]);
}

#[test]
fn restore_refuses_what_is_not_a_store_and_leaves_the_target_alone() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, b"this is not a database").unwrap();
    let db = dir.path().join("t.redb");
    let out = tidemark(&[
        "restore",
        "--from",
        garbage.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a readable Tidemark store"),
        "{}",
        stderr(&out)
    );
    assert!(
        !db.exists(),
        "nothing is written when the backup is refused"
    );

    let out = tidemark(&[
        "restore",
        "--from",
        dir.path().join("missing.redb").to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
}

#[test]
fn offline_backup_and_compact_keep_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.ndjson");
    let lines: Vec<String> = (0..3_000).map(event).collect();
    std::fs::write(&log, lines.join("\n")).unwrap();
    let db = dir.path().join("t.redb");
    let out = tidemark(&[
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--batch",
        "7",
        log.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let backup = dir.path().join("b.redb");
    let out = tidemark(&[
        "backup",
        "--db",
        db.to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(assert_is_prefix(&backup), 3_000);

    // Many small commits leave free pages behind; compaction returns them, state unchanged.
    let out = tidemark(&["compact", "--db", db.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (before, after) = (
        report["bytes_before"].as_u64().unwrap(),
        report["bytes_after"].as_u64().unwrap(),
    );
    assert!(after < before, "{report}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), after);
    assert_eq!(assert_is_prefix(&db), 3_000);
}

/// `compact --drop-events-before` on an embedded store: refused (exit 2, naming the flag)
/// unless `--allow-embedded`; then the log starts at the cut, the output says the events are
/// gone but for backups, time travel before the cut fails saying so, rebuild starts from the
/// cut, the file is no larger after the rebuild, and the store verifies.
#[test]
fn embedded_retention_is_an_explicit_opt_in_and_rebuild_starts_at_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("embedded.redb");
    let db_arg = db.to_str().unwrap();
    {
        let store = Store::open(
            &db,
            StoreConfig {
                snapshot_every: 500,
                snapshot_keep_every: 1_000,
                ..StoreConfig::default()
            },
        )
        .unwrap();
        let inputs: Vec<tidemark_store::Input> = (0..3_000)
            .map(|i| {
                tidemark_store::Input::Event(
                    tidemark_core::decode_event_bytes(event(i).as_bytes()).unwrap(),
                )
            })
            .collect();
        for chunk in inputs.chunks(100) {
            store
                .append(chunk, tidemark_core::Timestamp::from_unix_secs(0))
                .unwrap();
        }
    }
    let clean = tidemark(&["findings", "--json", "--db", db_arg]);
    assert!(clean.status.success(), "{}", stderr(&clean));

    let out = tidemark(&["compact", "--db", db_arg, "--allow-embedded"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "needs --drop-events-before: {}",
        stderr(&out)
    );
    let out = tidemark(&["compact", "--db", db_arg, "--drop-events-before", "2600"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allow-embedded"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("nothing was dropped"),
        "{}",
        stderr(&out)
    );
    assert_eq!(assert_is_prefix(&db), 3_000);

    let out = tidemark(&[
        "compact",
        "--db",
        db_arg,
        "--drop-events-before",
        "2600",
        "--allow-embedded",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("starts at position 2500 now"), "{said}");
    assert!(said.contains("gone but for backups"), "{said}");
    let out = tidemark(&[
        "compact",
        "--db",
        db_arg,
        "--drop-events-before",
        "2600",
        "--allow-embedded",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["retention"]["first_retained"], 2500, "{report}");
    assert_eq!(report["retention"]["dropped_events"], 0, "{report}");
    assert_eq!(report["retention"]["embedded"], true, "{report}");

    // The state is the same; time travel from the cut on works, before it says why not.
    let out = tidemark(&["findings", "--json", "--db", db_arg]);
    assert_eq!(out.stdout, clean.stdout);
    let out = tidemark(&["findings", "--json", "--db", db_arg, "--at", "2550"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let at: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        at,
        serde_json::to_value(fold(2550).findings().views()).unwrap()
    );
    let out = tidemark(&["findings", "--json", "--db", db_arg, "--at", "2499"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("starts at position 2500") && stderr(&out).contains("backup"),
        "{}",
        stderr(&out)
    );

    // Rebuild starts at the cut and leaves the file no larger.
    let before = std::fs::metadata(&db).unwrap().len();
    let out = tidemark(&["rebuild", "--db", db_arg, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["from_snapshot"], 2500, "{report}");
    assert_eq!(report["events"], 500, "{report}");
    assert_eq!(report["state_unchanged"], true, "{report}");
    assert!(std::fs::metadata(&db).unwrap().len() <= before);
    let out = tidemark(&["findings", "--json", "--db", db_arg]);
    assert_eq!(out.stdout, clean.stdout);
    let out = tidemark(&["verify", "--db", db_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
