//! `tidemark tail` against a real server: it prints each event once, in order, and when the
//! server goes away and comes back it reconnects and resumes after the last position it
//! printed, by itself.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn note(n: usize) -> String {
    format!(
        r#"{{"id":"tail-{n}","schema":1,"type":"note.added","time":"2026-03-02T14:00:{n:02}Z","source":"test","cluster":"c","data":{{"author":"me","kind":"observation","text":"note {n}"}}}}"#
    )
}

fn post(base: &str, notes: std::ops::Range<usize>) {
    let body: String = notes.map(|n| note(n) + "\n").collect();
    let response = ureq::post(&format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// A free loopback port (bound, then released for the server).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(db: &std::path::Path, port: u16) -> Killed {
    let (child, _) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    Killed(child)
}

#[test]
fn tail_resumes_by_itself_across_a_server_restart_printing_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tail.redb");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&db, port);
    post(&base, 0..5);
    let mut tail = Killed(
        Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["tail", "--server", &base, "--from", "1", "--json"])
            .args(["--max-events", "10"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(tail.0.stdout.take().unwrap()).lines();
    let mut seen: Vec<Value> = (0..5)
        .map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap())
        .collect();
    // The server stops (its streams end with where to resume) and starts again.
    stop_gracefully(&mut server);
    std::thread::sleep(Duration::from_millis(500));
    let _server = serve(&db, port);
    post(&base, 5..10);
    seen.extend(lines.map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap()));
    let status = tail.0.wait().unwrap();
    assert!(status.success(), "tail exits 0 after --max-events");
    let seqs: Vec<u64> = seen.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=10).collect::<Vec<_>>(),
        "each event once, in order"
    );
    let ids: Vec<&str> = seen
        .iter()
        .map(|v| v["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[9], "tail-9");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut tail.0.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!("tail's stderr: {stderr}");
    assert!(
        stderr.contains("(shutting_down); resuming after position 5"),
        "tail says it reconnects: {stderr}"
    );
}

/// Stops the server with SIGTERM (gracefully: its streams end with a cut-off) and waits.
fn stop_gracefully(server: &mut Killed) {
    let pid = server.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let _ = server.0.wait();
}

#[test]
fn tail_prints_one_line_per_event_and_refuses_a_bad_filter_with_the_servers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = support::spawn_server(&[
        "serve",
        "--db",
        dir.path().join("lines.redb").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let _server = Killed(child);
    post(&base, 0..3);
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "tail",
            "--server",
            &base,
            "--from",
            "2",
            "--max-events",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("#2 ") && lines[0].contains("note.added"),
        "{text}"
    );
    assert!(lines[1].contains("observation by me: note 2"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["tail", "--server", &base, "--type", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown event type"), "{stderr}");
    // A server without its scheme is a usage error, not a server to wait for forever.
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["tail", "--server", base.trim_start_matches("http://")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("with its scheme"), "{stderr}");
}

/// The lines of `text` that are effects (indented under their event), less `replay --step`'s
/// "(no projection changed)" and checkpoint lines, which `tail` does not print.
fn effect_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("    ") && !l.contains("(no projection changed)"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn tail_prints_each_events_effects_under_it_as_replay_step_says_them_unless_asked_not_to() {
    let case = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../replay/cluster-health-sweep/events.ndjson");
    let log = std::fs::read_to_string(&case).unwrap();
    let events = log.lines().filter(|l| !l.trim().is_empty()).count();
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = support::spawn_server(&[
        "serve",
        "--db",
        dir.path().join("effects.redb").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let _server = Killed(child);
    let response = ureq::post(&format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .send(log.as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let tail = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["tail", "--server", &base, "--from", "1"])
            .args(["--max-events", &events.to_string()])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // The effects, under each event, are what `replay --step` says of the same log.
    let text = tail(&[]);
    let step = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["replay", "--step", case.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(step.status.success());
    let expected = effect_lines(&String::from_utf8(step.stdout).unwrap());
    assert!(expected.len() > 5, "the case changes things");
    assert_eq!(effect_lines(&text), expected, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with('#')).count(),
        events,
        "one line per event: {text}"
    );
    // --no-effects: the events alone.
    let plain = tail(&["--no-effects"]);
    assert!(effect_lines(&plain).is_empty(), "{plain}");
    assert_eq!(plain.lines().count(), events);
    // --json: one event per line; with --effects each change frame's data after its event.
    let json = tail(&["--json"]);
    assert_eq!(json.lines().count(), events);
    let with_effects = tail(&["--json", "--effects"]);
    let lines: Vec<Value> = with_effects
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let changes: Vec<&Value> = lines.iter().filter(|v| v.get("what").is_some()).collect();
    assert_eq!(changes.len(), expected.len(), "{with_effects}");
    assert_eq!(lines.len(), events + expected.len());
    // Each change follows its event (or a change of the same position).
    let mut current = 0;
    for line in &lines {
        if line.get("event").is_some() {
            current = line["seq"].as_u64().unwrap();
        } else {
            assert_eq!(line["seq"].as_u64().unwrap(), current, "{line}");
        }
    }
}
