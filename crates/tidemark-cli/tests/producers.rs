//! The producer examples of `docs/examples/producers/`, run as a user runs them: `http_probe.py`
//! (standard library only) and `curl.sh` against a real `tidemark serve` with tokens, and
//! `nats_probe.py` (nats-py) against a real nats-server followed by a `tidemark serve --nats`
//! replica. Each first goes through a relay that loses answers the way networks and replicas do
//! (a connection closed after the server stored the events, a 503 `outcome_unknown`, a JetStream
//! ack that never arrives): the examples retry with the same ids, are answered `duplicate`, and
//! every event is stored exactly once, with the findings it describes.
//!
//! Python with nats-py comes from `scripts/install-python-deps` (`$TIDEMARK_PYTHON`, which
//! `scripts/test` sets, else the script is run here).

#[path = "../../tidemark-nats/tests/support/nats_server.rs"]
mod nats_server;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const WRITE_TOKEN: &str = "producer-write-token-0123456789";
const READ_TOKEN: &str = "producer-read-token-0123456789";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn example(name: &str) -> PathBuf {
    repo_root().join("docs/examples/producers").join(name)
}

/// The Python the examples run with: `$TIDEMARK_PYTHON`, else the one
/// `scripts/install-python-deps` installs (a virtualenv under `.tools/` with nats-py).
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(find_python).clone()
}

fn find_python() -> PathBuf {
    support::installed_tool(
        "TIDEMARK_PYTHON",
        "install-python-deps",
        "the producer examples need Python 3 with nats-py from PyPI",
    )
}

/// Child processes killed when the test ends, however it ends.
struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs an example to its end (at most a minute), returning what it printed.
fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shown} starts: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        stdout.read_to_end(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        stderr.read_to_end(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{shown} did not end within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    };
    eprintln!(
        "{shown}: {status}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port nothing listens on: a target that is down. Below the ephemeral range, and
/// never handed out twice in this process, so no relay or client socket of a test takes it.
fn closed_port() -> u16 {
    nats_server::free_port()
}

// ---------------------------------------------------------------------------------------------
// A relay that loses HTTP answers

/// What the relay does with one request; the requests after the planned ones are forwarded.
#[derive(Clone, Copy, Debug)]
enum HttpFault {
    /// Forwarded; once the server has answered (it stored the events), the client's connection
    /// is closed without the answer.
    LoseAnswer,
    /// Answered 503 `outcome_unknown` as a replica whose NATS did not acknowledge in time.
    Unavailable,
}

/// Reads one HTTP/1.1 request with a `Content-Length` body (what urllib and curl send).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        request.extend_from_slice(line.as_bytes());
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap();
        }
        assert!(
            !lower.starts_with("transfer-encoding:"),
            "the relay reads Content-Length bodies only"
        );
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    request.extend_from_slice(&body);
    Some(request)
}

/// Relays `127.0.0.1:PORT` to the server at `upstream` (`host:port`), applying `faults` to the
/// first requests in order. Answers the port and how many requests arrived.
fn http_relay(upstream: String, faults: Vec<HttpFault>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            client
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let Some(request) = read_request(&mut reader) else {
                continue;
            };
            let fault = faults.get(counter.fetch_add(1, Ordering::SeqCst)).copied();
            if let Some(HttpFault::Unavailable) = fault {
                let body = r#"{"code":"outcome_unknown","message":"1 event(s) were sent to the log but not acknowledged in time; retrying with the same ids is safe"}"#;
                let _ = write!(
                    client,
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            let mut server = TcpStream::connect(&upstream).unwrap();
            server.write_all(&request).unwrap();
            if let Some(HttpFault::LoseAnswer) = fault {
                // The server answers after it committed: wait for the first byte, then drop it.
                let mut first = [0u8; 1];
                server.read_exact(&mut first).unwrap();
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            // Forward the rest of this connection both ways (keep-alive requests included).
            let mut server_in = server.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut reader, &mut server_in);
                let _ = server_in.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(Shutdown::Both);
            });
        }
    });
    (port, requests)
}

// ---------------------------------------------------------------------------------------------
// The HTTP examples

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn get_json(agent: &ureq::Agent, url: &str) -> Value {
    let mut response = agent
        .get(url)
        .header("authorization", &format!("Bearer {READ_TOKEN}"))
        .call()
        .unwrap();
    let body = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status(), 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The events of `cluster`, as (position, id, type), every page.
fn events_of(agent: &ureq::Agent, base: &str, cluster: &str) -> Vec<(u64, String, String)> {
    let mut events = Vec::new();
    let mut after = String::new();
    loop {
        let page = get_json(
            agent,
            &format!("{base}/v1/events?cluster={cluster}&limit=100{after}"),
        );
        for item in page["events"].as_array().unwrap() {
            events.push((
                item["seq"].as_u64().unwrap(),
                item["event"]["id"].as_str().unwrap().to_owned(),
                item["event"]["type"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return events,
        }
    }
}

/// The active findings of `cluster`, as check keys.
fn active_findings(agent: &ureq::Agent, base: &str, cluster: &str) -> Vec<String> {
    let page = get_json(
        agent,
        &format!("{base}/v1/findings?cluster={cluster}&state=active&limit=100"),
    );
    assert!(page["next"].is_null(), "{page}");
    page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check_key"].as_str().unwrap().to_owned())
        .collect()
}

/// `http_probe.py --once`, with only Python's standard library (`-I -S`: no site-packages, no
/// user site, no PYTHON* variables).
fn http_probe(url: &str, cluster: &str, targets: &str) -> Output {
    let mut command = Command::new(python());
    command
        .args(["-I", "-S"])
        .arg(example("http_probe.py"))
        .arg("--once")
        .env_clear()
        .env("TIDEMARK_URL", url)
        .env("TIDEMARK_TOKEN", WRITE_TOKEN)
        .env("TIDEMARK_CLUSTER", cluster)
        .env("PROBE_TARGETS", targets);
    run(command)
}

/// Where `tool` is on this process's PATH.
fn on_path(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{tool} is on PATH"))
}

fn curl_example(url: &str, path: Option<&Path>) -> Output {
    let mut command = Command::new(on_path("bash"));
    command
        .arg(example("curl.sh"))
        .env("TIDEMARK_URL", url)
        .env("TIDEMARK_TOKEN", WRITE_TOKEN);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    run(command)
}

/// A PATH with what `curl.sh` needs and no `jq`.
fn path_without_jq(dir: &Path) -> PathBuf {
    let bin = dir.join("bin-without-jq");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["curl", "mktemp", "rm", "cat"] {
        std::os::unix::fs::symlink(on_path(tool), bin.join(tool)).unwrap();
    }
    bin
}

/// Writes a tokens file (a write token for the examples, a read token for the checks).
fn tokens_file(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("write {WRITE_TOKEN}\nread {READ_TOKEN}\n")).unwrap();
    tokens
}

/// `tidemark serve` with tokens, on a store in `dir`; answers the process and its base URL.
fn start_server(dir: &Path) -> (Killed, String) {
    let db = dir.join("producers.redb");
    let (server, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        tokens_file(dir).to_str().unwrap(),
    ]);
    (Killed(vec![server]), base)
}

#[test]
fn the_http_probe_stores_each_cycle_once_through_lost_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start_server(dir.path());
    let agent = agent();
    // Its own server's /healthz answers, a closed port does not. The first answer is lost after
    // the server stored the cycle, the second attempt is answered 503: the third carries the
    // same id and is answered `duplicate`.
    let targets = format!(
        "tidemark={base}/healthz db-admin=http://127.0.0.1:{}/health",
        closed_port()
    );
    let faults = vec![HttpFault::LoseAnswer, HttpFault::Unavailable];
    let (relay, requests) = http_relay(base.trim_start_matches("http://").to_owned(), faults);
    let first = http_probe(&format!("http://127.0.0.1:{relay}"), "probe-test", &targets);
    assert!(first.status.success(), "exits 0 once its cycle is stored");
    assert_eq!(requests.load(Ordering::SeqCst), 3, "sent three times");
    let stderr = text(&first.stderr);
    assert!(
        stderr.contains("attempt 1:") && stderr.contains("attempt 2: 503"),
        "{stderr}"
    );
    let stdout = text(&first.stdout);
    let first_id = stdout
        .strip_prefix("duplicate ")
        .and_then(|rest| rest.strip_suffix(" at 1\n"))
        .unwrap_or_else(|| panic!("the retry is answered duplicate of position 1: {stdout}"));
    assert_eq!(first_id.len(), 26, "a ULID: {first_id}");
    // The next scan, straight to the server: a new cycle, a new id.
    let second = http_probe(&base, "probe-test", &targets);
    assert!(second.status.success());
    let stdout = text(&second.stdout);
    let second_id = stdout
        .strip_prefix("accepted ")
        .and_then(|rest| rest.strip_suffix(" at 2\n"))
        .unwrap_or_else(|| panic!("the next cycle is stored at position 2: {stdout}"));
    assert_eq!(
        events_of(&agent, &base, "probe-test"),
        [(1, first_id), (2, second_id)].map(|(seq, id)| (
            seq,
            id.to_owned(),
            "cycle.completed".to_owned()
        )),
        "each cycle stored once"
    );
    assert_eq!(
        active_findings(&agent, &base, "probe-test"),
        vec!["http:down:db-admin"],
        "the target that is down is a finding, the one that answers is not"
    );
    // A probe whose events Tidemark refuses says which item and why, and fails.
    let refused = http_probe(&base, " ", &targets);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.starts_with("rejected ") && stderr.contains("field `cluster`: must not be empty"),
        "{stderr}"
    );
}

#[test]
fn the_curl_example_stores_each_event_once_through_lost_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start_server(dir.path());
    let agent = agent();
    // The first request's answer is lost, then 503, then `duplicate`; the batch goes through.
    let faults = vec![HttpFault::LoseAnswer, HttpFault::Unavailable];
    let (relay, requests) = http_relay(base.trim_start_matches("http://").to_owned(), faults);
    let first = curl_example(&format!("http://127.0.0.1:{relay}"), None);
    assert!(first.status.success());
    assert_eq!(
        requests.load(Ordering::SeqCst),
        4,
        "the note three times, the batch once"
    );
    assert_eq!(
        text(&first.stdout),
        "duplicate example-note-0001 1\naccepted example-deploy-0001 2\n\
         accepted example-cycle-0001 3\n"
    );
    // A second run is answered `duplicate` throughout, and so is a third without jq.
    let second = curl_example(&base, None);
    assert!(second.status.success());
    assert_eq!(
        text(&second.stdout),
        "duplicate example-note-0001 1\nduplicate example-deploy-0001 2\n\
         duplicate example-cycle-0001 3\n"
    );
    let third = curl_example(&base, Some(&path_without_jq(dir.path())));
    assert!(third.status.success());
    let raw: Vec<Value> = text(&third.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(raw.len(), 2, "the two answers as they came");
    assert!(
        raw.iter()
            .flat_map(|answer| answer["results"].as_array().unwrap())
            .all(|item| item["status"] == "duplicate")
    );
    assert_eq!(
        events_of(&agent, &base, "example"),
        [
            (1, "example-note-0001", "note.added"),
            (2, "example-deploy-0001", "change.deployed"),
            (3, "example-cycle-0001", "cycle.completed"),
        ]
        .map(|(seq, id, kind)| (seq, id.to_owned(), kind.to_owned())),
        "each event stored once"
    );
    assert_eq!(
        active_findings(&agent, &base, "example"),
        vec!["pod:crashloop:shop/checkout"]
    );
}

// ---------------------------------------------------------------------------------------------
// The NATS example

/// Relays NATS connections on a new loopback port to the server at `upstream_port`, dropping the
/// first message the server delivers to a client: the probe's first PubAck. Its publish times out
/// although the stream stored the event. Answers the port and whether the ack was dropped.
fn nats_relay_losing_first_ack(upstream_port: u16) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dropped = Arc::new(AtomicBool::new(false));
    let relay_dropped = dropped.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(Shutdown::Both);
            });
            let dropped = relay_dropped.clone();
            std::thread::spawn(move || {
                let mut server = BufReader::new(server);
                loop {
                    let mut line = Vec::new();
                    if server.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut frame = line.clone();
                    // `MSG subject sid [reply] size` / `HMSG subject sid [reply] hsize size`:
                    // the payload (and its CRLF) follows.
                    if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
                        let size: usize = std::str::from_utf8(&line)
                            .unwrap()
                            .split_whitespace()
                            .last()
                            .unwrap()
                            .parse()
                            .unwrap();
                        let mut payload = vec![0; size + 2];
                        if server.read_exact(&mut payload).is_err() {
                            break;
                        }
                        if !dropped.swap(true, Ordering::SeqCst) {
                            continue;
                        }
                        frame.extend_from_slice(&payload);
                    }
                    if client.write_all(&frame).is_err() {
                        break;
                    }
                }
                let _ = client.shutdown(Shutdown::Both);
            });
        }
    });
    (port, dropped)
}

fn nats_probe(nats_url: &str, cluster: &str, targets: &str) -> Output {
    let mut command = Command::new(python());
    command
        .arg(example("nats_probe.py"))
        .arg("--once")
        .env_clear()
        .env("NATS_URL", nats_url)
        .env("TIDEMARK_CLUSTER", cluster)
        .env("PROBE_TARGETS", targets)
        .env("NATS_ACK_TIMEOUT_SECS", "1");
    run(command)
}

/// Waits until the replica is ready with its checkpoint at the stream's last sequence, `seq`.
fn wait_replica_at(agent: &ureq::Agent, base: &str, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut response = agent.get(&format!("{base}/readyz")).call().unwrap();
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        let follower = &body["follower"];
        if response.status() == 200
            && follower["checkpoint"] == seq
            && follower["stream_last_seq"] == seq
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never reached {seq}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_nats_probe_publishes_each_cycle_once_through_a_lost_ack() {
    let python = python(); // before any server: a missing Python fails first, naming the script
    assert!(python.is_file());
    let dir = tempfile::tempdir().unwrap();
    let nats = nats_server::NatsServer::single(dir.path());
    let tokens = tokens_file(dir.path());
    let db = dir.path().join("replica.redb");
    let (replica, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tokens",
        tokens.to_str().unwrap(),
        "--nats",
        &nats.url(),
    ]);
    let _replica = Killed(vec![replica]);
    let agent = agent();
    wait_replica_at(&agent, &base, 0); // the replica made the stream

    // NATS itself accepts connections, a closed port does not. The first ack is lost: the
    // probe publishes again with the same Nats-Msg-Id, and the stream answers `duplicate`.
    let targets = format!(
        "nats=127.0.0.1:{} cache=127.0.0.1:{}",
        nats.port,
        closed_port()
    );
    let (relay, ack_lost) = nats_relay_losing_first_ack(nats.port);
    let first = nats_probe(&format!("nats://127.0.0.1:{relay}"), "tcp-test", &targets);
    assert!(
        first.status.success(),
        "the probe exits 0 once its cycle is in the stream"
    );
    assert!(ack_lost.load(Ordering::SeqCst));
    let stderr = text(&first.stderr);
    assert!(
        stderr.contains("attempt 1: no ack (TimeoutError)"),
        "{stderr}"
    );
    let stdout = text(&first.stdout);
    let first_id = stdout
        .strip_prefix("duplicate ")
        .and_then(|rest| rest.strip_suffix(" at stream sequence 1\n"))
        .unwrap_or_else(|| panic!("the retry is a duplicate of sequence 1: {stdout}"));
    let second = nats_probe(&nats.url(), "tcp-test", &targets);
    assert!(second.status.success());
    let stdout = text(&second.stdout);
    let second_id = stdout
        .strip_prefix("published ")
        .and_then(|rest| rest.strip_suffix(" at stream sequence 2\n"))
        .unwrap_or_else(|| panic!("the next cycle is sequence 2: {stdout}"));

    // The stream holds two messages, and the replica applied each once.
    wait_replica_at(&agent, &base, 2);
    assert_eq!(
        events_of(&agent, &base, "tcp-test"),
        [(1, first_id), (2, second_id)].map(|(seq, id)| (
            seq,
            id.to_owned(),
            "cycle.completed".to_owned()
        )),
    );
    assert_eq!(
        active_findings(&agent, &base, "tcp-test"),
        vec!["tcp:unreachable:cache"]
    );
}

// ---------------------------------------------------------------------------------------------
// The guide

/// The producer guide quotes the examples: every excerpt (the code block after a line
/// `<!-- excerpt: PATH -->`) is the file's own lines, so the guide shows what the suite runs.
#[test]
fn the_producer_guide_quotes_the_examples_as_they_are() {
    let docs = repo_root().join("docs");
    let guide = std::fs::read_to_string(docs.join("producer-guide.md")).unwrap();
    let mut lines = guide.lines();
    let mut checked = Vec::new();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- excerpt: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "the excerpt of {path} is a code block right after its marker"
        );
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|line| !line.starts_with("```"))
            .collect();
        let quoted = block.join("\n") + "\n";
        let file = std::fs::read_to_string(docs.join(path))
            .unwrap_or_else(|e| panic!("docs/producer-guide.md quotes {path}: {e}"));
        assert!(
            file.contains(&quoted),
            "docs/producer-guide.md quotes lines that are not in {path} (copy them again):\n{quoted}"
        );
        checked.push(path.to_owned());
    }
    checked.sort();
    checked.dedup();
    assert_eq!(
        checked,
        [
            "examples/producers/curl.sh",
            "examples/producers/http_probe.py",
            "examples/producers/nats_probe.py"
        ],
        "the guide quotes every example"
    );
}
