//! What the commands print for people and write to files, run as a user runs them: tables that
//! fit the width (a long note wraps, it does not widen every row), no column that is always
//! empty, a merged incident said so, an export that does not overwrite a file unless told, and
//! logs without colour codes in a file.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const INCIDENT: &str = "inc-2026-03-02-dnd";
const CRASHLOOP: &str = "pod:crashloop:dnd/dnd-backend";

/// A note far wider than any terminal, with code in backticks.
fn long_note() -> String {
    let mut text = String::from("ran `alembic upgrade head` by hand:");
    for n in 1..=40 {
        text.push_str(&format!(" migration {n:03} creates its tables again,"));
    }
    text.push_str(" then the pod started");
    text
}

fn event(n: u32, minute: u32, event_type: &str, data: Value) -> String {
    json!({
        "id": format!("ev-{n:04}"), "schema": 1, "type": event_type,
        "time": format!("2026-03-02T{:02}:{:02}:00Z", 8 + minute / 60, minute % 60),
        "source": "probe", "cluster": "pw-prod", "data": data,
    })
    .to_string()
}

fn crashloop(detail: &str) -> Value {
    json!({"check_key": CRASHLOOP, "category": "pods", "severity": "critical",
           "title": "dnd-backend is in CrashLoopBackOff", "detail": detail,
           "resource": {"kind": "Pod", "namespace": "dnd", "name": "dnd-backend-7f9d4b8c6-xk2p9"}})
}

/// A crash loop grouped into an automatic incident, which a declared incident absorbs; a deploy
/// that reveals a second failure layer; a long note; then a new finding in its own automatic
/// incident.
fn day() -> String {
    let cycle = |n, minute, findings: Vec<Value>| {
        event(
            n,
            minute,
            "cycle.completed",
            json!({"cycle": format!("c{n}"), "categories": ["pods", "dns"], "findings": findings}),
        )
    };
    let dns = json!({"check_key": "dns:media.example.org", "category": "dns", "severity": "warning",
                     "title": "media.example.org does not resolve to the gateway",
                     "resource": {"kind": "Ingress", "namespace": "media", "name": "media"}});
    [
        cycle(1, 0, vec![crashloop("RuntimeError: asyncio.run()")]),
        event(
            2,
            5,
            "incident.opened",
            json!({"incident": INCIDENT, "title": "dnd-backend CrashLoopBackOff",
                   "severity": "critical", "check_keys": [CRASHLOOP]}),
        ),
        event(
            3,
            10,
            "note.added",
            json!({"incident": INCIDENT, "author": "operator", "kind": "action", "text": long_note()}),
        ),
        event(
            4,
            15,
            "change.deployed",
            json!({"service": "dnd-backend", "version": "sha-a1b2c3d", "kind": "deploy"}),
        ),
        cycle(5, 20, vec![crashloop("DatatypeMismatch: vector vs ARRAY")]),
        cycle(6, 25, vec![crashloop("DatatypeMismatch: vector vs ARRAY"), dns]),
    ]
    .join("\n")
        + "\n"
}

struct Store {
    dir: tempfile::TempDir,
    db: String,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("day.ndjson");
        std::fs::write(&log, day()).unwrap();
        let db = dir.path().join("day.redb").to_str().unwrap().to_owned();
        let store = Self { dir, db };
        let out = store.run(&["ingest", "--db", store.db(), log.to_str().unwrap()], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        store
    }

    fn db(&self) -> &str {
        &self.db
    }

    /// A file in the store's directory.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// `tidemark ARGS` with stdout and stderr captured (so not a terminal), `COLUMNS` unset
    /// unless given.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        command
            .args(args)
            .env_remove("COLUMNS")
            .env_remove("RUST_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("the tidemark binary runs")
    }

    fn stdout(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(
            out.status.success(),
            "tidemark {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// The words of `text` in order, whatever the line breaks and padding between them.
fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[test]
fn an_incident_with_a_long_note_fits_the_width_and_says_all_of_it() {
    let store = Store::new();
    assert!(long_note().len() > 700);
    // Not a terminal: 120 columns. `COLUMNS` sets it.
    for (env, width) in [(vec![], 120), (vec![("COLUMNS", "100")], 100)] {
        let text = store.stdout(&["incident", INCIDENT, "--db", store.db()], &env);
        let timeline = &text[text.find("\nTimeline\n").expect("a timeline") + 1..];
        assert!(widest(&text) <= width, "wider than {width}:\n{text}");
        let mut lines = timeline.lines().skip(1);
        let header = lines.next().unwrap();
        let (event_at, effect_at) = (
            header.find("EVENT").unwrap(),
            header.find("EFFECT").unwrap(),
        );
        // The note's row: its first line, then continuation lines (blank before EVENT).
        let mut row = lines.skip_while(|l| !l.contains("note.added"));
        let first = row.next().expect("the note's row");
        assert_eq!(
            first.find("note_action"),
            Some(effect_at),
            "EFFECT stays aligned: {timeline}"
        );
        let continuation: Vec<&str> = row
            .take_while(|l| l.len() > event_at && l[..event_at].trim().is_empty())
            .collect();
        assert!(continuation.len() > 3, "{timeline}");
        // Every word of the note is in the EVENT column, in order.
        let column: Vec<&str> = std::iter::once(first)
            .chain(continuation.iter().copied())
            .flat_map(|l| words(&l[event_at..effect_at.min(l.len())]))
            .collect();
        assert_eq!(
            column.join(" "),
            format!("action by operator: {}", words(&long_note()).join(" ")),
            "{timeline}"
        );
    }
    // --json keeps the note whole, on one line.
    let json: Value = serde_json::from_str(
        &store.stdout(&["incident", INCIDENT, "--db", store.db(), "--json"], &[]),
    )
    .unwrap();
    let event = json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["type"] == "note.added")
        .unwrap();
    assert_eq!(event["event"]["data"]["text"], long_note());
}

#[test]
fn a_cluster_timeline_has_no_changes_column_and_a_finding_timeline_has_one() {
    let store = Store::new();
    let text = store.stdout(
        &["timeline", "--db", store.db(), "--cluster", "pw-prod"],
        &[],
    );
    let header = text.lines().next().unwrap();
    assert_eq!(words(header), ["SEQ", "TIME", "CLUSTER", "TYPE", "WHAT"]);
    assert!(widest(&text) <= 120, "{text}");
    assert!(
        words(&text)
            .join(" ")
            .contains(&words(&long_note()).join(" ")),
        "the note wraps, whole: {text}"
    );

    let text = store.stdout(
        &["timeline", "--db", store.db(), "--check-key", CRASHLOOP],
        &[],
    );
    let mut lines = text.lines();
    assert_eq!(
        words(lines.next().unwrap()),
        ["SEQ", "TIME", "CLUSTER", "TYPE", "CHANGES", "WHAT"]
    );
    assert!(words(lines.next().unwrap()).contains(&"opened"), "{text}");
}

#[test]
fn incidents_all_says_what_a_merged_incident_merged_into_and_counts_failure_layers() {
    let store = Store::new();
    let text = store.stdout(&["incidents", "--db", store.db(), "--all"], &[]);
    let row = |id: &str| -> Vec<&str> {
        words(
            text.lines()
                .find(|l| l.starts_with(&format!("{id} ")))
                .unwrap_or_else(|| panic!("no row {id}:\n{text}")),
        )
    };
    let header = words(text.lines().next().unwrap());
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (state, duration, layers) = (column("STATE"), column("DURATION"), column("LAYERS"));

    let merged: Vec<&str> = text.lines().filter(|l| l.contains("merged into")).collect();
    assert_eq!(merged.len(), 1, "{text}");
    let merged = words(merged[0]);
    // STATE is three words here: the columns after it move by two.
    assert_eq!(
        merged[state..state + 3],
        ["merged", "into", INCIDENT],
        "{text}"
    );
    assert_eq!(merged[duration + 2], "-", "not `ongoing`: {text}");
    assert_eq!(merged[layers + 2], "-", "{text}");

    // The declared incident shows the two layers its deploy revealed; the later automatic one,
    // one failure.
    let declared = row(INCIDENT);
    assert_eq!(declared[state], "open");
    assert_eq!(declared[layers], "2", "{text}");
    let automatic: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .filter(|l| l.contains("automatic") && !l.contains("merged"))
        .map(words)
        .collect();
    assert_eq!(automatic.len(), 1, "{text}");
    assert_eq!(automatic[0][layers], "1", "{text}");
}

#[test]
fn export_to_an_existing_file_is_refused_without_force() {
    let store = Store::new();
    let target = &store.path("postmortem.md");
    std::fs::write(target, "my notes\n").unwrap();
    let export = |extra: &[&str]| {
        let mut args = vec!["export", INCIDENT, "--db", store.db(), "-o", target];
        args.extend_from_slice(extra);
        store.run(&args, &[])
    };
    let out = export(&[]);
    assert_eq!(
        out.status.code(),
        Some(73),
        "exit 73 like backup and restore"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(target).unwrap(), "my notes\n");

    let out = export(&["--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(target).unwrap();
    assert!(
        written.starts_with("# Postmortem: dnd-backend CrashLoopBackOff"),
        "{written}"
    );
    // No scratch file is left next to it.
    let left: Vec<_> = std::fs::read_dir(store.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A new file needs no --force; --force needs -o.
    let fresh = &store.path("fresh.md");
    let out = store.run(&["export", INCIDENT, "--db", store.db(), "-o", fresh], &[]);
    assert!(out.status.success() && Path::new(fresh).exists());
    let out = store.run(&["export", INCIDENT, "--db", store.db(), "--force"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let store = Store::new();
    let log = &store.path("verify.log");
    // Opening a store logs at info; stderr is a file, not a terminal.
    let day = store.path("day.ndjson");
    let status = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["ingest", "--db", store.db(), &day])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("INFO"),
        "some log lines were written: {text:?}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escape codes in a log file: {text:?}"
    );
}

/// A note sent late (its time earlier than events of its cluster already stored) is marked
/// where it landed in the incident's and the cluster's timelines; the rest is not.
#[test]
fn a_late_event_is_marked_late_in_the_timelines() {
    let store = Store::new();
    let late = store.path("late.ndjson");
    std::fs::write(
        &late,
        event(
            7,
            1,
            "note.added",
            json!({"incident": INCIDENT, "author": "operator", "kind": "observation",
                   "text": "written at 08:01, sent after the 08:25 cycle"}),
        ) + "\n",
    )
    .unwrap();
    let out = store.run(&["ingest", "--db", store.db(), &late], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let incident = store.stdout(&["incident", INCIDENT, "--db", store.db()], &[]);
    let late_lines: Vec<&str> = incident.lines().filter(|l| l.contains("(late)")).collect();
    assert_eq!(late_lines.len(), 1, "{incident}");
    assert!(late_lines[0].contains("2026-03-02T08:01:00Z"), "{incident}");

    let timeline = store.stdout(
        &["timeline", "--db", store.db(), "--cluster", "pw-prod"],
        &[],
    );
    let late_lines: Vec<&str> = timeline.lines().filter(|l| l.contains("(late)")).collect();
    assert_eq!(late_lines.len(), 1, "{timeline}");
    assert!(late_lines[0].contains("08:01:00Z"), "{timeline}");
}
