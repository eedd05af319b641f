//! Store files as the binary meets them (real redb files, real pipes, a real killed writer):
//! read commands write nothing and work on a read-only file; an empty or non-redb file is
//! refused once with 65; a closed stdout ends a command quietly; a store left by a killed writer
//! is refused by reads (naming `tidemark repair`) and recovered by `repair`; bits flipped on
//! disk are found by `verify` and never shown as data; a corrupt snapshot is skipped.

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    command
        .args(args)
        .env_remove("TIDEMARK_DB")
        .env_remove("TIDEMARK_TOKEN")
        .env_remove("TIDEMARK_TOKENS")
        .env("RUST_LOG", "warn");
    command
}

fn tidemark(args: &[&str]) -> Output {
    command(args).output().expect("tidemark runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Event `i`: a cycle with five findings whose titles are "thing N", and an incident now and
/// then (so `incidents`, `incident` and `export` have something to show).
fn event(i: usize) -> String {
    if i % 50 == 7 {
        return format!(
            r#"{{"id":"sf-{i}","schema":1,"type":"incident.opened","time":"2026-03-02T10:{:02}:{:02}Z","source":"oncall","cluster":"c{}","data":{{"incident":"inc-{i}","title":"outage {i}","check_keys":["k1"]}}}}"#,
            (i / 60) % 60,
            i % 60,
            i % 3
        );
    }
    let findings: Vec<String> = (0..5)
        .filter(|k| !(i + k).is_multiple_of(4))
        .map(|k| {
            format!(
                r#"{{"check_key":"k{k}-{}","category":"c","severity":"error","title":"thing {}"}}"#,
                i % 40,
                10 + i * 5 + k
            )
        })
        .collect();
    format!(
        r#"{{"id":"sf-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T10:{:02}:{:02}Z","source":"probe","cluster":"c{}","data":{{"cycle":"{i}","categories":["c"],"findings":[{}]}}}}"#,
        (i / 60) % 60,
        i % 60,
        i % 3,
        findings.join(",")
    )
}

/// A store of `count` events (ingested, so it ends with a snapshot), in a directory others may
/// enter (the read-only test runs commands as an unprivileged user).
fn store(count: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("events.ndjson");
    let text: String = (0..count).map(|i| event(i) + "\n").collect();
    std::fs::write(&log, text).unwrap();
    let db = dir.path().join("store.redb");
    let out = tidemark(&[
        "ingest",
        log.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, db)
}

/// Runs as an unprivileged user when the tests run as root (root may write a 0444 file, so a
/// read-only file only means something to another user).
fn as_file_reader(args: &[&str]) -> Output {
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if !root {
        return tidemark(args);
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .env_remove("TIDEMARK_DB")
        .env("RUST_LOG", "warn");
    command.output().expect("setpriv runs (util-linux)")
}

/// Every read command on a file with mode 0444 (run by a user who cannot write it): each
/// succeeds, and the file's bytes are exactly as before.
#[test]
fn read_commands_write_nothing_and_work_on_a_read_only_file() {
    let (dir, db) = store(120);
    let before = std::fs::read(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let db_arg = db.to_str().unwrap();
    let backup = dir.path().join("backup-dir");
    std::fs::create_dir(&backup).unwrap();
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o777)).unwrap();
    let backup_file = backup.join("copy.redb");
    let commands: Vec<Vec<&str>> = vec![
        vec!["findings", "--db", db_arg],
        vec!["findings", "--db", db_arg, "--at", "40"],
        vec!["timeline", "--db", db_arg, "--cluster", "c1"],
        vec!["timeline", "--db", db_arg, "--check-key", "k0-3"],
        vec!["stats", "--db", db_arg],
        vec!["quarantine", "--db", db_arg],
        vec!["flaps", "--db", db_arg],
        vec!["stuck", "--db", db_arg],
        vec!["orphans", "--db", db_arg],
        vec!["incidents", "--db", db_arg],
        vec!["incident", "inc-7", "--db", db_arg],
        vec!["export", "inc-7", "--db", db_arg],
        vec!["verify", "--db", db_arg],
        vec!["repair", "--db", db_arg],
        vec![
            "backup",
            "--db",
            db_arg,
            "--to",
            backup_file.to_str().unwrap(),
        ],
    ];
    for args in &commands {
        let out = as_file_reader(args);
        assert!(
            out.status.success(),
            "{args:?}: {:?}\n{}",
            out.status,
            stderr(&out)
        );
        assert!(
            std::fs::read(&db).unwrap() == before,
            "{args:?} changed the store file"
        );
    }
}

/// An empty file and a file that is not redb: read and write commands alike print one line,
/// saying what --db must be, exit 65, and leave the file as it was.
#[test]
fn an_empty_or_non_redb_file_is_refused_once_with_65() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.ndjson");
    std::fs::write(&log, event(0) + "\n").unwrap();
    for (name, content) in [
        ("empty.redb", &b""[..]),
        ("notes.redb", b"these are my notes\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let db = path.to_str().unwrap();
        for args in [
            vec!["findings", "--db", db],
            vec!["verify", "--db", db],
            vec!["ingest", log.to_str().unwrap(), "--db", db],
        ] {
            let out = tidemark(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(65), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
            assert!(err.contains("is not a Tidemark store"), "{err}");
            assert!(err.contains("--db must name a store file"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), content, "{args:?}");
        }
    }
}

/// `tidemark findings --json | head -c 100`: the reader goes away early, the command ends
/// with 0 and says nothing (no panic message).
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let (_dir, db) = store(400);
    for args in [
        vec!["findings", "--json", "--db", db.to_str().unwrap()],
        vec!["timeline", "--cluster", "c1", "--db", db.to_str().unwrap()],
    ] {
        let mut child = command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 100];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

/// Waits until a running `serve` says it serves (its store is open and committed to).
fn wait_until_serving(serve: &mut std::process::Child) {
    use std::io::BufRead as _;
    let stderr = serve.stderr.take().unwrap();
    for line in std::io::BufReader::new(stderr).lines() {
        if line.unwrap().contains("tidemark: serving") {
            return;
        }
    }
    panic!("serve ended before serving");
}

/// A writer killed with the store open leaves it needing recovery: read commands and verify
/// refuse it (exit 1, naming `tidemark repair`) without touching it; `repair` recovers it once;
/// then reads work again and verify finds it clean.
#[test]
fn a_store_left_by_a_killed_writer_is_refused_by_reads_and_recovered_by_repair() {
    let (_dir, db) = store(60);
    let db_arg = db.to_str().unwrap();
    let mut serve = command(&["serve", "--db", db_arg, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_serving(&mut serve);
    serve.kill().unwrap(); // SIGKILL
    serve.wait().unwrap();
    let before = std::fs::read(&db).unwrap();
    for args in [
        vec!["findings", "--db", db_arg],
        vec!["verify", "--db", db_arg],
    ] {
        let out = tidemark(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("needs recovery"), "{err}");
        assert!(err.contains("tidemark repair --db"), "{err}");
        assert!(std::fs::read(&db).unwrap() == before, "{args:?} wrote");
    }
    let out = tidemark(&["repair", "--db", db_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("recovered"), "{}", stderr(&out));
    let out = tidemark(&["findings", "--db", db_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tidemark(&["verify", "--db", db_arg]);
    assert!(out.status.success(), "{}", stdout(&out));
}

/// The stored bytes of `key` in a byte-valued table.
fn stored_bytes(path: &Path, table: &str, key: u64) -> Vec<u8> {
    use redb::ReadableDatabase;
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn
        .open_table(redb::TableDefinition::<u64, &[u8]>::new(table))
        .unwrap();
    table.get(key).unwrap().unwrap().value().to_vec()
}

/// Flips bits (byte offset, bit) of every copy of `record` in the file, as a disk would.
fn flips_in_file(path: &Path, record: &[u8], flips: &[(usize, u8)]) {
    let mut bytes = std::fs::read(path).unwrap();
    let starts: Vec<usize> = bytes
        .windows(record.len())
        .enumerate()
        .filter(|(_, w)| *w == record)
        .map(|(i, _)| i)
        .collect();
    assert!(!starts.is_empty(), "the record is not in the file");
    for start in starts {
        for (offset, bit) in flips {
            bytes[start + offset] ^= 1 << bit;
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// A title flipped on disk in a log record ("thing 17x" -> "thing 07x"): `findings` refuses
/// with the table and position instead of showing the changed title, and `verify` lists it
/// (text and JSON) with exit 1; a clean store verifies with 0.
#[test]
fn a_flipped_log_record_is_found_by_verify_and_never_shown_as_data() {
    let (_dir, db) = store(60);
    let db_arg = db.to_str().unwrap();
    let clean = tidemark(&["verify", "--db", db_arg]);
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(stdout(&clean).contains("clean"), "{}", stdout(&clean));
    // Position 36 is event 35, whose first finding is titled "thing 185": flip its '1' to '0'.
    let record = stored_bytes(&db, "log", 36);
    let title = record.windows(9).position(|w| w == b"thing 185").unwrap();
    flips_in_file(&db, &record, &[(title + 6, 0)]);
    // Before the only snapshot (at 60): the state is folded from the log, through position 36.
    let out = tidemark(&["findings", "--at", "50", "--json", "--db", db_arg]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "read back as data: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("log record 36: checksum mismatch"),
        "{}",
        stderr(&out)
    );
    let out = tidemark(&["verify", "--db", db_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("log 36: checksum mismatch"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("docs/runbooks/corrupt-store.md"),
        "{}",
        stderr(&out)
    );
    let out = tidemark(&["verify", "--json", "--db", db_arg]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clean"], false);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["table"] == "log" && p["key"] == "36"),
        "{report}"
    );
}

/// Eight bytes flipped in the latest snapshot (the issue's case): `findings` and `rebuild`
/// still work from the log, say which snapshot they skipped, and show the clean state.
#[test]
fn a_corrupt_snapshot_is_skipped_by_findings_and_rebuild() {
    let (_dir, db) = store(60);
    let db_arg = db.to_str().unwrap();
    let clean = tidemark(&["findings", "--json", "--db", db_arg]);
    assert!(clean.status.success());
    let snapshot = stored_bytes(&db, "snapshots", 60);
    let flips: Vec<(usize, u8)> = (0..8).map(|b| (snapshot.len() / 3 + b * 17, 4)).collect();
    flips_in_file(&db, &snapshot, &flips);
    let out = tidemark(&["findings", "--json", "--db", db_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, clean.stdout);
    assert!(
        stderr(&out).contains("snapshot is corrupt"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("key=60"), "{}", stderr(&out));
    let out = tidemark(&["rebuild", "--db", db_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tidemark(&["verify", "--db", db_arg]);
    assert!(
        out.status.success(),
        "rebuild rewrote the snapshots: {}",
        stdout(&out)
    );
}

/// A store of layout 1 (the golden file, as an older build wrote it): read commands read it as
/// it is, writing nothing; `repair` upgrades it in place to today's layout, after which it
/// verifies clean and answers the same findings.
#[test]
fn repair_upgrades_a_store_of_an_older_layout_and_reads_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.redb");
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tidemark-store/tests/golden/store-v1.redb");
    std::fs::copy(golden, &db).unwrap();
    let db_arg = db.to_str().unwrap();
    let before = std::fs::read(&db).unwrap();
    let findings = tidemark(&["findings", "--db", db_arg, "--json"]);
    assert!(findings.status.success(), "{}", stderr(&findings));
    assert!(
        std::fs::read(&db).unwrap() == before,
        "a read command wrote"
    );

    let out = tidemark(&["repair", "--db", db_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("upgraded"), "{}", stderr(&out));
    let again = tidemark(&["findings", "--db", db_arg, "--json"]);
    assert_eq!(stdout(&again), stdout(&findings));
    let out = tidemark(&["verify", "--db", db_arg]);
    assert!(out.status.success(), "{}", stdout(&out));
    // Upgraded once: a second repair writes nothing.
    let upgraded = std::fs::read(&db).unwrap();
    let out = tidemark(&["repair", "--db", db_arg]);
    assert!(
        stderr(&out).contains("needs no recovery"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read(&db).unwrap() == upgraded,
        "a second repair wrote"
    );
}
