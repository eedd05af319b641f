//! `tidemark serve`'s connection limits over real sockets: idle, slowloris and slow-body clients
//! are cut off by the read timeouts, a flood of connections (under a low open files limit)
//! leaves room for probes, and SIGTERM ends within the grace period whatever clients hold.
//! Settings are small (1-2 s) and the bounds asserted generous: these catch hangs, not speed.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tidemark_store::{Store, StoreConfig};

/// Far longer than any setting below: reaching it means the server never acted.
const HANG: Duration = Duration::from_secs(20);

fn serve_args<'a>(db: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    args
}

/// `host:port` of a base URL.
fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Sends `request` on a new connection and reads the answer to its end: `(status, text)`, or
/// `None` when the connection was refused or closed without one.
fn exchange(addr: &str, request: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

/// `get` until it is answered (a probe's retries), for at most [`HANG`].
fn get_answered(addr: &str, path: &str) -> (u16, String) {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(answer) = get(addr, path) {
            return answer;
        }
        assert!(Instant::now() < deadline, "GET {path} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the server to close `stream`, sending `drip` a byte every 100 ms meanwhile (a slow
/// client; an empty drip is an idle one). Returns what the server sent before closing, or
/// `None` when the connection is still open after [`HANG`].
fn closed_by_server(stream: &mut TcpStream, drip: impl IntoIterator<Item = u8>) -> Option<Vec<u8>> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + HANG;
    let mut drip = drip.into_iter();
    let mut received = Vec::new();
    while Instant::now() < deadline {
        if let Some(byte) = drip.next()
            && stream.write_all(&[byte]).is_err()
        {
            return Some(received);
        }
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => return Some(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(received),
        }
    }
    None
}

/// The value of an unlabelled metric.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("/metrics has no {name}"))
        .trim()
        .parse()
        .unwrap()
}

/// The server child, killed if a test fails before it stops it.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn terminate(child: &Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits for the child to exit, for at most [`HANG`] (then kills it and answers `None`).
fn exited_within_hang(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const NOTE: &str = r#"{"id":"n1","schema":1,"type":"note.added","time":"2026-03-02T15:00:00Z","source":"t","cluster":"c","data":{"author":"t","kind":"observation","text":"x"}}"#;

#[test]
fn idle_slowloris_and_slow_body_clients_are_cut_off_by_the_read_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let args = serve_args(
        &db,
        &["--header-read-timeout", "1", "--body-read-timeout", "2"],
    );
    let (child, base) = support::spawn_server(&args);
    let mut served = Served(child);
    let child = &mut served.0;
    let addr = addr(&base);

    // Connected, never sends a byte.
    let mut idle = TcpStream::connect(&addr).unwrap();
    let sent = closed_by_server(&mut idle, []).expect("an idle connection is closed");
    assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));

    // One request, then idle on a keep-alive connection.
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let sent = closed_by_server(&mut kept, []).expect("an idle keep-alive connection is closed");
    assert!(
        sent.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&sent)
    );

    // Slowloris: headers a byte at a time, never finished.
    let mut slowloris = TcpStream::connect(&addr).unwrap();
    let headers = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "
        .iter()
        .copied();
    closed_by_server(&mut slowloris, headers.chain(std::iter::repeat(b'a')))
        .expect("headers sent a byte at a time are cut off");

    // A body that stalls: answered 408, saying what to do.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\"")
        .unwrap();
    let sent = closed_by_server(&mut stalled, []).expect("a stalled body is cut off");
    let sent = String::from_utf8_lossy(&sent);
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(
        sent.contains("body_timeout") && sent.contains("--body-read-timeout"),
        "{sent}"
    );

    // A body dripping a byte every 100 ms: the deadline is for the whole body, not per read.
    let mut dripping = TcpStream::connect(&addr).unwrap();
    dripping
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    closed_by_server(&mut dripping, std::iter::repeat(b' ')).expect("a dripping body is cut off");

    // Counted, and the server still serves.
    let (status, metrics) = get(&addr, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metric(&metrics, "tidemark_http_header_read_timeouts_total") >= 3,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tidemark_http_body_read_timeouts_total"),
        2,
        "{metrics}"
    );
    let (status, _) = exchange(
        &addr,
        &format!(
            "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{NOTE}",
            NOTE.len()
        ),
    )
    .expect("a prompt request is answered");
    assert_eq!(status, 200);
    terminate(child);
    assert!(exited_within_hang(child).expect("stops").success());
}

#[test]
fn a_flood_of_connections_under_a_low_open_files_limit_leaves_room_for_probes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    // 16 connections served, 32 more for probes, 128 file descriptors in all: a flood of 250
    // idle connections would exhaust them if the server accepted everything.
    let mut command = Command::new("prlimit");
    command
        .arg("--nofile=128:128")
        .arg(env!("CARGO_BIN_EXE_tidemark"))
        .args(serve_args(
            &db,
            &["--max-connections", "16", "--header-read-timeout", "60"],
        ));
    let (child, base) = support::spawn_command(command);
    let mut served = Served(child);
    let child = &mut served.0;
    let addr = addr(&base);

    let mut flood: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // Connections are accepted in order, so this one comes after the 16: into the headroom,
    // where probes are answered and anything else is told to come back.
    let (status, text) = get(&addr, "/healthz").expect("a probe is answered over the limit");
    assert_eq!(status, 200, "{text}");
    let (status, text) = get(&addr, "/v1/findings").expect("answered, not dropped");
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("too_many_connections") && text.contains("--max-connections"),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );

    flood.extend((0..234).filter_map(|_| TcpStream::connect(&addr).ok()));
    // Probes get through (the headroom's idle connections are closed within 2 s).
    let (status, text) = get_answered(&addr, "/healthz");
    assert_eq!(status, 200, "{text}");
    let (status, metrics) = get_answered(&addr, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metric(&metrics, "tidemark_http_connections_refused_total") > 0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "tidemark_http_connections_over_limit_total") >= 3,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "tidemark_http_connections") <= 16 + 32,
        "{metrics}"
    );

    // The flood gone, everything is served again.
    drop(flood);
    let deadline = Instant::now() + HANG;
    while get(&addr, "/v1/findings").map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "served again once the flood is gone"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    terminate(child);
    assert!(exited_within_hang(child).expect("stops").success());
}

#[test]
fn sigterm_with_half_sent_requests_ends_within_the_grace_period_and_keeps_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let args = serve_args(
        &db,
        &[
            "--shutdown-grace",
            "1",
            "--header-read-timeout",
            "600",
            "--body-read-timeout",
            "600",
        ],
    );
    let (child, base) = support::spawn_server(&args);
    let mut served = Served(child);
    let child = &mut served.0;
    let addr = addr(&base);
    let (status, text) = exchange(
        &addr,
        &format!(
            "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{NOTE}",
            NOTE.len()
        ),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");

    // Half-sent headers, and a request whose body stops half-way; the read timeouts are far
    // away, so only the grace period can end them.
    let mut half_headers = TcpStream::connect(&addr).unwrap();
    half_headers
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut half_body = TcpStream::connect(&addr).unwrap();
    half_body
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":")
        .unwrap();
    // Answered after both were accepted (connections are accepted in order).
    assert_eq!(get(&addr, "/healthz").unwrap().0, 200);

    terminate(child);
    let status = exited_within_hang(child)
        .expect("SIGTERM ends the server within the grace period, whatever clients hold");
    assert!(status.success(), "{status:?}");
    drop((half_headers, half_body));
    let store = Store::open(&db, StoreConfig::default()).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.events, stats.snapshot_seq),
        (1, 1),
        "committed, and the shutdown snapshot written"
    );
}
