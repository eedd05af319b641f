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
