//! `GET /v1/stream` over a real socket, with real HTTP clients (ureq) and a writer that keeps
//! posting: resuming from any position gives exactly the log's events after it, once each and
//! in order; a subscriber that stops reading is cut off with a position to resume from, and the
//! writer goes on unaffected.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tidemark_server::{Mode, ServerConfig, StreamLimits};
use tidemark_store::{Store, StoreConfig};

/// A server on a free loopback port over a fresh store, in its own runtime thread.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(stream: StreamLimits) -> Self {
        Self::start_with(ServerConfig {
            stream,
            ..ServerConfig::default()
        })
    }

    fn start_with(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(Store::open(dir.path().join("stream.redb"), StoreConfig::default()).unwrap());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                tidemark_server::serve(listener, store, config, Mode::Embedded, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        Self {
            addr: addr_rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // No stream of these tests lasts this long: a wait that never ends fails the test
        // instead of holding the suite until CI's time runs out.
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

fn note(id: &str, cluster: &str, text: &str) -> Value {
    json!({"id": id, "schema": 1, "type": "note.added", "time": "2026-03-02T14:00:00Z",
           "source": "stream-test", "cluster": cluster,
           "data": {"author": "writer", "kind": "observation", "text": text}})
}

/// Posts `events` as one NDJSON request; answers the positions they were stored at.
fn post(agent: &ureq::Agent, base: &str, events: &[Value]) -> Vec<u64> {
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let mut response = agent
        .post(&format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "accepted", "{r}");
            r["seq"].as_u64().unwrap()
        })
        .collect()
}

/// One frame of a stream.
#[derive(Debug, Default)]
struct Frame {
    id: Option<u64>,
    event: Option<String>,
    data: String,
}

/// Reads frames off an open stream.
struct Reader {
    lines: std::io::Lines<BufReader<ureq::BodyReader<'static>>>,
}

impl Reader {
    fn open(agent: &ureq::Agent, url: &str, last_event_id: Option<u64>) -> Self {
        let mut request = agent.get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.call().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            lines: BufReader::new(response.into_body().into_reader()).lines(),
        }
    }

    /// The next frame with an event or an id (comments skipped); `None` at the end.
    fn next(&mut self) -> Option<Frame> {
        self.read(false)
    }

    /// The next frame, a heartbeat without an id included (as a frame with neither event nor
    /// id): a follower that waits for a condition must look at it again on every heartbeat,
    /// or it waits forever once the events it waits for were all read before the condition
    /// became true.
    fn next_or_heartbeat(&mut self) -> Option<Frame> {
        self.read(true)
    }

    fn read(&mut self, heartbeats: bool) -> Option<Frame> {
        let mut frame = Frame::default();
        let mut comment = false;
        for line in self.lines.by_ref() {
            let line = line.ok()?;
            if line.is_empty() {
                if frame.event.is_some() || frame.id.is_some() || (heartbeats && comment) {
                    return Some(frame);
                }
                continue;
            }
            if line.starts_with(':') {
                comment = true;
                continue;
            }
            let (name, value) = line.split_once(": ").unwrap_or((&line, ""));
            match name {
                "id" => frame.id = Some(value.parse().unwrap()),
                "event" => frame.event = Some(value.to_owned()),
                "data" => frame.data.push_str(value),
                _ => {}
            }
        }
        None
    }
}

/// What one subscriber saw: the event ids of its frames, in order.
fn follow_until(
    agent: &ureq::Agent,
    url: &str,
    start_after: u64,
    last_seq: &AtomicU64,
    writer_done: &AtomicBool,
    disconnect_every: u64,
) -> (Vec<(u64, String)>, u64) {
    let mut seen = Vec::new();
    let mut resume = start_after;
    let mut reconnects = 0;
    loop {
        let mut reader = Reader::open(agent, url, Some(resume));
        let mut this_connection = 0;
        while let Some(frame) = reader.next_or_heartbeat() {
            if frame.event.as_deref() == Some("event") {
                let data: Value = serde_json::from_str(&frame.data).unwrap();
                let seq = frame.id.unwrap();
                assert_eq!(data["seq"], seq);
                seen.push((seq, data["event"]["id"].as_str().unwrap().to_owned()));
                this_connection += 1;
            }
            if let Some(id) = frame.id {
                resume = id;
            }
            if writer_done.load(Ordering::SeqCst) && resume >= last_seq.load(Ordering::SeqCst) {
                return (seen, reconnects);
            }
            if this_connection == disconnect_every {
                break;
            }
        }
        reconnects += 1;
    }
}

#[test]
fn resuming_from_any_position_gives_exactly_the_logs_events_after_it_while_a_writer_runs() {
    // A short heartbeat: it carries the position a filtered stream has read to.
    let server = Server::start(StreamLimits {
        heartbeat: Duration::from_secs(1),
        ..StreamLimits::default()
    });
    let agent = new_agent();
    // Some history before anyone subscribes.
    let mut positions: Vec<(u64, String, String)> = Vec::new();
    let first: Vec<Value> = (0..50)
        .map(|i| note(&format!("e{i}"), ["a", "b"][i % 2], "before"))
        .collect();
    for (seq, event) in post(&agent, &server.url(""), &first)
        .into_iter()
        .zip(&first)
    {
        positions.push((
            seq,
            event["id"].as_str().unwrap().to_owned(),
            event["cluster"].as_str().unwrap().to_owned(),
        ));
    }
    let last_seq = Arc::new(AtomicU64::new(50));
    let writer_done = Arc::new(AtomicBool::new(false));
    let written = Arc::new(std::sync::Mutex::new(positions));
    // The writer: batches of 1 to 40 events, never pausing, over two clusters, and every tenth
    // batch all of a third (a subscriber of it skips the other commits unread).
    let writer = {
        let (base, last_seq, writer_done, written) = (
            server.url(""),
            last_seq.clone(),
            writer_done.clone(),
            written.clone(),
        );
        std::thread::spawn(move || {
            let agent = new_agent();
            let mut n = 50;
            for batch in 0..60usize {
                let size = 1 + (batch * 7) % 40;
                let events: Vec<Value> = (0..size)
                    .map(|i| {
                        n += 1;
                        let cluster = if batch % 10 == 3 {
                            "c"
                        } else {
                            ["a", "b"][(n + i) % 2]
                        };
                        note(&format!("e{n}"), cluster, "live")
                    })
                    .collect();
                let seqs = post(&agent, &base, &events);
                let mut written = written.lock().unwrap();
                for (seq, event) in seqs.iter().zip(&events) {
                    written.push((
                        *seq,
                        event["id"].as_str().unwrap().to_owned(),
                        event["cluster"].as_str().unwrap().to_owned(),
                    ));
                }
                last_seq.store(*seqs.last().unwrap(), Ordering::SeqCst);
            }
            writer_done.store(true, Ordering::SeqCst);
        })
    };
    // Subscribers from several positions, some dropping their connection every few events and
    // resuming with Last-Event-ID; one filtered to cluster `a`.
    let subscribers: Vec<_> = [
        (0u64, 7u64, ""),
        (10, 1000, ""),
        (25, 13, ""),
        (3, 5, "a"),
        (0, 3, "c"),
    ]
    .into_iter()
    .map(|(after, every, cluster)| {
        let (last_seq, writer_done) = (last_seq.clone(), writer_done.clone());
        let url = if cluster.is_empty() {
            server.url("/v1/stream")
        } else {
            server.url(&format!("/v1/stream?cluster={cluster}"))
        };
        std::thread::spawn(move || {
            let agent = new_agent();
            let (seen, reconnects) =
                follow_until(&agent, &url, after, &last_seq, &writer_done, every);
            (after, cluster, seen, reconnects)
        })
    })
    .collect();
    writer.join().unwrap();
    let written = written.lock().unwrap().clone();
    assert_eq!(
        written.len(),
        50 + (0..60).map(|b| 1 + (b * 7) % 40).sum::<usize>()
    );
    for subscriber in subscribers {
        let (after, cluster, seen, reconnects) = subscriber.join().unwrap();
        let expected: Vec<(u64, String)> = written
            .iter()
            .filter(|(seq, _, c)| *seq > after && (cluster.is_empty() || c == cluster))
            .map(|(seq, id, _)| (*seq, id.clone()))
            .collect();
        assert_eq!(
            seen, expected,
            "subscriber after {after} (cluster {cluster:?}) saw other events"
        );
        eprintln!(
            "subscriber after {after} cluster {cluster:?}: {} events, {reconnects} resumes",
            seen.len()
        );
    }
}

#[test]
fn a_slow_subscriber_is_cut_off_with_a_resumable_position_and_the_writer_is_unaffected() {
    let server = Server::start(StreamLimits {
        buffer_events: 4,
        max_stall: Duration::from_secs(1),
        ..StreamLimits::default()
    });
    let agent = new_agent();
    // Opened from the start of the log, then not read while the writer posts large events that
    // fill the socket buffers and the subscriber's buffer.
    let mut slow = Reader::open(&agent, &server.url("/v1/stream?after=0"), None);
    let text = "x".repeat(16_000);
    let started = Instant::now();
    let mut written = Vec::new();
    for batch in 0..50 {
        let events: Vec<Value> = (0..20)
            .map(|i| note(&format!("big{batch}-{i}"), "a", &text))
            .collect();
        written.extend(post(&agent, &server.url(""), &events));
    }
    let writing = started.elapsed();
    assert_eq!(written.len(), 1000);
    // Past the stall limit, the subscriber is cut off (its buffered frames still come first).
    std::thread::sleep(Duration::from_secs(2));
    let metrics = agent
        .get(&server.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("tidemark_stream_cut_off_total{reason=\"slow_subscriber\"} 1"),
        "{metrics}"
    );
    let mut seen = Vec::new();
    let mut cut_off = None;
    while let Some(frame) = slow.next() {
        match frame.event.as_deref() {
            Some("event") => seen.push(frame.id.unwrap()),
            Some("cut_off") => {
                cut_off = Some(serde_json::from_str::<Value>(&frame.data).unwrap());
                break;
            }
            _ => {}
        }
    }
    let cut_off = cut_off.expect("a final cut_off event");
    assert_eq!(cut_off["reason"], "slow_subscriber");
    let resume = cut_off["resume_after"].as_u64().unwrap();
    assert_eq!(
        Some(&resume),
        seen.last(),
        "resume after the last event sent"
    );
    assert!(seen.len() < written.len(), "it was cut off before the end");
    assert_eq!(slow.next().map(|f| f.event), None, "the stream ends there");
    // Resuming gives the rest, exactly.
    let mut rest = Reader::open(&agent, &server.url("/v1/stream"), Some(resume));
    while seen.len() < written.len() {
        let frame = rest.next().unwrap();
        if frame.event.as_deref() == Some("event") {
            seen.push(frame.id.unwrap());
        }
    }
    assert_eq!(seen, written);
    eprintln!(
        "the writer stored {} events in {writing:?} while the subscriber did not read",
        written.len()
    );
}

#[test]
fn bad_resume_positions_are_refused_with_what_to_send() {
    let server = Server::start(StreamLimits::default());
    let agent = new_agent();
    let mut response = agent
        .get(&server.url("/v1/stream"))
        .header("last-event-id", "abc")
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body = response.body_mut().read_to_string().unwrap();
    assert!(body.contains("Last-Event-ID"), "{body}");
    let response = agent
        .get(&server.url("/v1/stream?type=nope"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[test]
fn subscribers_past_the_limit_are_answered_503_and_shutdown_ends_streams_with_a_resume_point() {
    // A long grace period: a stream that held the shutdown would hold it for all of it.
    let grace = Duration::from_secs(120);
    let mut config = ServerConfig {
        stream: StreamLimits {
            max_subscribers: 1,
            ..StreamLimits::default()
        },
        ..ServerConfig::default()
    };
    config.connections.shutdown_grace = grace;
    let server = Server::start_with(config);
    let agent = new_agent();
    let mut first = Reader::open(&agent, &server.url("/v1/stream"), None);
    let subscribed = first.next().unwrap();
    assert_eq!(subscribed.event.as_deref(), Some("subscribed"));
    let second = agent.get(&server.url("/v1/stream")).call().unwrap();
    assert_eq!(second.status().as_u16(), 503);
    assert!(second.headers().contains_key("retry-after"));
    post(&agent, &server.url(""), &[note("one", "a", "hello")]);
    let event = first.next().unwrap();
    assert_eq!(event.id, Some(1));
    // Shutting down ends the stream at once with where to resume.
    let started = Instant::now();
    drop(server);
    let last = first.next().unwrap();
    assert_eq!(last.event.as_deref(), Some("cut_off"));
    let data: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(data["reason"], "shutting_down");
    assert_eq!(data["resume_after"], 1);
    assert!(
        started.elapsed() < grace,
        "the stream did not hold the shutdown for its grace period"
    );
}

#[test]
fn a_filtered_stream_woken_by_other_clusters_commits_still_sends_heartbeats_with_its_position() {
    let server = Server::start(StreamLimits {
        heartbeat: Duration::from_secs(1),
        ..StreamLimits::default()
    });
    let agent = new_agent();
    let mut quiet = Reader::open(
        &agent,
        &server.url("/v1/stream?cluster=quiet&after=0"),
        None,
    );
    assert_eq!(quiet.next().unwrap().event.as_deref(), Some("subscribed"));
    // Commits to another cluster every 50 ms, for longer than the heartbeat.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (base, writing) = (server.url(""), writing.clone());
        std::thread::spawn(move || {
            let agent = new_agent();
            for n in 0..80 {
                post(&agent, &base, &[note(&format!("busy-{n}"), "busy", "x")]);
                std::thread::sleep(Duration::from_millis(50));
            }
            writing.store(false, Ordering::SeqCst);
        })
    };
    // The heartbeat comes while the commits keep waking the subscriber, and carries the
    // position it has read to (nothing matched: no event frame).
    let beat = quiet.next().unwrap();
    assert!(
        writing.load(Ordering::SeqCst),
        "no heartbeat while other clusters' commits kept coming"
    );
    assert_eq!(beat.event, None, "{beat:?}");
    assert!(beat.id.is_some_and(|id| id > 0), "{beat:?}");
    writer.join().unwrap();
}

#[test]
fn a_client_that_takes_no_byte_loses_its_connection_and_its_place_goes_to_the_next() {
    let mut config = ServerConfig {
        stream: StreamLimits {
            max_subscribers: 1,
            buffer_events: 4,
            max_stall: Duration::from_secs(1),
            ..StreamLimits::default()
        },
        ..ServerConfig::default()
    };
    config.connections.write_stall_timeout = Duration::from_secs(2);
    let server = Server::start_with(config);
    let agent = new_agent();
    // Opened, then never read again, while large events fill every buffer on the way.
    let mut stuck = Reader::open(&agent, &server.url("/v1/stream?after=0"), None);
    assert_eq!(stuck.next().unwrap().event.as_deref(), Some("subscribed"));
    let text = "x".repeat(16_000);
    for batch in 0..50 {
        let events: Vec<Value> = (0..20)
            .map(|i| note(&format!("stuck{batch}-{i}"), "a", &text))
            .collect();
        post(&agent, &server.url(""), &events);
    }
    // Its place is held until its connection goes: cut off from the log, it is still a
    // subscriber while the connection holds frames for it.
    let metrics = |agent: &ureq::Agent| {
        agent
            .get(&server.url("/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    // Then the connection is closed for taking no byte, and the place is free again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics(&agent);
        if text.contains("tidemark_http_write_stall_timeouts_total 1") {
            assert!(text.contains("tidemark_stream_subscribers 0"), "{text}");
            break;
        }
        assert!(
            text.contains("tidemark_stream_subscribers 1"),
            "the place went before the connection: {text}"
        );
        assert!(Instant::now() < deadline, "never closed: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let next = agent.get(&server.url("/v1/stream")).call().unwrap();
    assert_eq!(next.status().as_u16(), 200);
    drop(stuck);
}

#[test]
fn positions_only_sends_where_the_log_moved_not_the_events() {
    let server = Server::start(StreamLimits::default());
    let agent = new_agent();
    let mut all = Reader::open(&agent, &server.url("/v1/stream?positions_only=true"), None);
    let mut of_b = Reader::open(
        &agent,
        &server.url("/v1/stream?positions_only=true&cluster=b"),
        None,
    );
    for reader in [&mut all, &mut of_b] {
        assert_eq!(reader.next().unwrap().event.as_deref(), Some("subscribed"));
    }
    let events: Vec<Value> = (0..10)
        .map(|i| note(&format!("p{i}"), if i == 6 { "b" } else { "a" }, "x"))
        .collect();
    let seqs = post(&agent, &server.url(""), &events);
    // Unfiltered: `moved` frames up to the last position, none with an event in it.
    let mut last = 0;
    while last < seqs[9] {
        let frame = all.next().unwrap();
        assert_eq!(frame.event.as_deref(), Some("moved"), "{frame:?}");
        let data: Value = serde_json::from_str(&frame.data).unwrap();
        assert_eq!(data["seq"], frame.id.unwrap());
        assert!(frame.id.unwrap() > last);
        last = frame.id.unwrap();
    }
    assert_eq!(last, seqs[9]);
    // Filtered: the position of the cluster's event.
    let frame = of_b.next().unwrap();
    assert_eq!(
        (frame.event.as_deref(), frame.id),
        (Some("moved"), Some(seqs[6]))
    );
}

/// A cycle of cluster `cluster` at minute `minute` that sees the findings `keys` (category
/// `pods`).
fn cycle(id: &str, cluster: &str, minute: u32, keys: &[&str]) -> Value {
    let findings: Vec<Value> = keys
        .iter()
        .map(|k| json!({"check_key": k, "category": "pods", "severity": "warning", "title": format!("{k} is broken")}))
        .collect();
    json!({"id": id, "schema": 1, "type": "cycle.completed",
           "time": format!("2026-03-02T14:{minute:02}:00Z"), "source": "stream-test",
           "cluster": cluster,
           "data": {"cycle": id, "categories": ["pods"], "findings": findings}})
}

/// One change frame's (what, subject, change).
type ChangeSaid = (String, String, String);

/// What one `?changes=true` stream said: each position's event and changes, and the ids seen
/// (each frame's, in order).
#[derive(Debug, Default, PartialEq)]
struct Said {
    /// (position, (what, subject, change) of each change frame after its event frame).
    positions: Vec<(u64, Vec<ChangeSaid>)>,
    /// (position of the frame, its id line) of every event and change frame.
    ids: Vec<(u64, Option<u64>)>,
}

/// Reads a `changes=true` stream until position `until` was received whole.
fn read_changes(agent: &ureq::Agent, url: &str, until: u64) -> Said {
    let mut reader = Reader::open(agent, url, None);
    let mut said = Said::default();
    while let Some(frame) = reader.next() {
        match frame.event.as_deref() {
            Some("event") => {
                let data: Value = serde_json::from_str(&frame.data).unwrap();
                let seq = data["seq"].as_u64().unwrap();
                said.positions.push((seq, Vec::new()));
                said.ids.push((seq, frame.id));
            }
            Some("change") => {
                let data: Value = serde_json::from_str(&frame.data).unwrap();
                let seq = data["seq"].as_u64().unwrap();
                let (last_seq, changes) = said.positions.last_mut().expect("an event first");
                assert_eq!(*last_seq, seq, "a change frame of another position");
                changes.push((
                    data["what"].as_str().unwrap().to_owned(),
                    data["subject"].as_str().unwrap().to_owned(),
                    data["change"].as_str().unwrap().to_owned(),
                ));
                said.ids.push((seq, frame.id));
            }
            _ => {}
        }
        if frame.id == Some(until) {
            break;
        }
    }
    said
}

#[test]
fn changes_come_after_their_event_with_the_id_on_the_positions_last_frame_from_any_resume() {
    let server = Server::start(StreamLimits::default());
    let agent = new_agent();
    // A finding opening, seen again, absent until the clean-cycle dampener resolves it, again
    // and again, beside a finding that stays, in two clusters, with notes between.
    let mut events = Vec::new();
    for minute in 0..24u32 {
        let cluster = ["a", "b"][minute as usize % 2];
        let keys: &[&str] = if (minute / 2) % 4 < 2 {
            &["pod/web", "pod/db"]
        } else {
            &["pod/db"]
        };
        events.push(cycle(&format!("c{minute}"), cluster, minute, keys));
        if minute == 3 {
            events.push(json!({"id": "inc", "schema": 1, "type": "incident.opened",
                "time": "2026-03-02T14:03:30Z", "source": "operator", "cluster": "b",
                "data": {"incident": "inc-web", "title": "web keeps failing",
                         "severity": "warning", "check_keys": ["pod/web"]}}));
        }
        if minute % 5 == 0 {
            events.push(note(&format!("n{minute}"), cluster, "looking"));
        }
    }
    let positions = post(&agent, &server.url(""), &events);
    let last = *positions.last().unwrap();
    // What a fold of the same log with the watch says.
    let mut fold = tidemark_core::Projections::new();
    let expected: Vec<(u64, Vec<ChangeSaid>)> = events
        .iter()
        .zip(&positions)
        .map(|(event, &seq)| {
            let event = tidemark_core::decode_event(&event.to_string()).unwrap();
            let mut said = Vec::new();
            fold.apply_with_changes(seq, &event, &mut said);
            let said = said
                .into_iter()
                .map(|c| (c.what.to_owned(), c.subject, c.change))
                .collect();
            (seq, said)
        })
        .collect();
    let parts: std::collections::BTreeSet<&str> = expected
        .iter()
        .flat_map(|(_, c)| c.iter().map(|(what, _, _)| what.as_str()))
        .collect();
    assert!(
        parts.contains("finding"),
        "the log changes findings: {parts:?}"
    );
    // From every position: exactly the changes after it, each position's id on its last
    // frame and on no other.
    for after in 0..last {
        let said = read_changes(
            &agent,
            &server.url(&format!("/v1/stream?after={after}&changes=true")),
            last,
        );
        let want: Vec<_> = expected
            .iter()
            .filter(|(seq, _)| *seq > after)
            .cloned()
            .collect();
        assert_eq!(said.positions, want, "resumed after {after}");
        for (n, (seq, id)) in said.ids.iter().enumerate() {
            let last_of_position = said.ids.get(n + 1).is_none_or(|(next, _)| next != seq);
            assert_eq!(
                *id,
                last_of_position.then_some(*seq),
                "frame {n} of position {seq}, resumed after {after}"
            );
        }
    }
    // Narrowed by check_key: that finding's events and only its changes.
    let said = read_changes(
        &agent,
        &server.url("/v1/stream?after=0&changes=true&cluster=a&check_key=pod/web"),
        last,
    );
    assert!(!said.positions.is_empty());
    for (seq, changes) in &said.positions {
        for (_, subject, _) in changes {
            assert_eq!(subject, "a pod/web", "position {seq}");
        }
    }
    assert!(said.positions.iter().any(|(_, c)| !c.is_empty()));
    // Narrowed by incident: its timeline's events and only its changes.
    let incident = expected
        .iter()
        .flat_map(|(_, c)| c.iter())
        .find(|(what, _, _)| what == "incident")
        .map(|(_, subject, _)| subject.clone())
        .expect("the log opens an incident");
    let said = read_changes(
        &agent,
        &server.url(&format!(
            "/v1/stream?after=0&changes=true&incident={incident}"
        )),
        last,
    );
    assert!(said.positions.iter().any(|(_, c)| !c.is_empty()));
    for (seq, changes) in &said.positions {
        for (what, subject, _) in changes {
            assert_eq!(
                (what.as_str(), subject.as_str()),
                ("incident", incident.as_str()),
                "position {seq}"
            );
        }
    }
    // Without changes=true: the event frames alone, as before.
    let plain = read_changes(&agent, &server.url("/v1/stream?after=0"), last);
    assert!(plain.positions.iter().all(|(_, c)| c.is_empty()));
    assert_eq!(plain.positions.len(), events.len());
}
