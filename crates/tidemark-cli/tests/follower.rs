//! `tidemark serve --nats` killed with SIGKILL at random moments while it catches up on a
//! stream: every restart resumes from its checkpoint, and each event is applied exactly once.
//! A replica's writes with NATS down are answered within the publish timeout, and a replica is
//! observed like an embedded server: its own quarantine, ingest counters, `/readyz`. Alerts
//! posted to one replica are the same findings on every replica (ADR 0007).

#[path = "../../tidemark-nats/tests/support/nats_server.rs"]
mod nats_server;
mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nats_server::NatsServer;
use tidemark_nats::{NatsAuth, NatsConfig, Producer, ProducerConfig, Published, StreamSettings};
use tidemark_store::{Store, StoreConfig};

fn start_replica(db: &std::path::Path, nats: &str) -> (Child, String) {
    let db = db.to_str().unwrap();
    support::spawn_server(&[
        "serve",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--nats",
        nats,
        "--snapshot-every",
        "300",
    ])
}

fn checkpoint_of(db: &std::path::Path) -> u64 {
    Store::open(db, StoreConfig::default())
        .unwrap()
        .checkpoint()
}

#[test]
fn sigkilled_follower_resumes_from_its_checkpoint_exactly_once() {
    let kills: usize = std::env::var("TIDEMARK_FOLLOWER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let total = 30_000usize;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = NatsConfig { servers: server.url(), auth: NatsAuth::default(), stream: StreamSettings::default() };
        let client = tidemark_nats::connect(&config, "test").await.unwrap();
        let js = tidemark_nats::connect::jetstream_context(client);
        tidemark_nats::ensure_stream(&js, &config.stream).await.unwrap();
        let producer = Producer::new(js, ProducerConfig::default());
        let lines = (0..total).map(|i| {
            format!(
                r#"{{"id":"f-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T10:{:02}:{:02}Z","source":"p","cluster":"c{}","data":{{"cycle":"{i}","categories":["pods"],"findings":[{{"check_key":"k{}","category":"pods","severity":"error","title":"t"}}]}}}}"#,
                (i / 60) % 60, i % 60, i % 5, i % 9
            )
        });
        let events: Vec<_> = lines.map(|l| tidemark_core::decode_event(&l).unwrap()).collect();
        let results = producer.publish_all(events).await;
        assert!(results.iter().all(|r| matches!(r, Published::Stored { .. })));
    });

    let db = dir.path().join("replica.redb");
    let mut seed = std::process::id() as u64;
    let mut interrupted = 0;
    for kill in 0..kills {
        let (mut child, _) = start_replica(&db, &server.url());
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(150 + (seed >> 33) % 400);
        std::thread::sleep(wait);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let checkpoint = checkpoint_of(&db);
        eprintln!("kill {kill}: after {wait:?}, checkpoint {checkpoint}");
        if checkpoint < total as u64 {
            interrupted += 1;
        }
    }
    assert!(
        interrupted >= 3,
        "the kills must land while the replica catches up (only {interrupted} did)"
    );

    // One last run to the end, then a graceful stop.
    let (mut child, base) = start_replica(&db, &server.url());
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut response = agent.get(&format!("{base}/readyz")).call().unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        if body["follower"]["checkpoint"] == total && response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());

    let store = Store::open(&db, StoreConfig::default()).unwrap();
    let stored = store.events(1, usize::MAX).unwrap();
    assert_eq!(stored.len(), total, "every stream message applied once");
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, (seq, e))| *seq == i as u64 + 1 && e.event.id.0 == format!("f-{i}"))
    );
    assert_eq!(
        store.projection_snapshot(),
        store.fold_log(|_, _| {}).unwrap().snapshot()
    );
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

fn get_json(agent: &ureq::Agent, url: &str) -> (u16, serde_json::Value) {
    let mut response = agent.get(url).call().unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    (
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut response = agent
        .post(url)
        .header("content-type", content_type)
        .send(body)
        .unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    (
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn note(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","schema":1,"type":"note.added","time":"2026-03-02T14:00:00Z","source":"test","cluster":"c","data":{{"author":"me","kind":"observation","text":"{id}"}}}}"#
    )
}

/// Waits until `/readyz` is 200 with the follower's checkpoint at `seq` or past it.
fn wait_ready_at(agent: &ureq::Agent, base: &str, seq: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get_json(agent, &format!("{base}/readyz"));
        if status == 200 && body["follower"]["checkpoint"].as_u64() >= Some(seq) {
            return body;
        }
        assert!(Instant::now() < deadline, "never ready at {seq}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Positions of `id` in the replica's log (through its API).
fn positions_of(agent: &ureq::Agent, base: &str, id: &str) -> Vec<u64> {
    let (status, body) = get_json(
        agent,
        &format!("{base}/v1/events?type=note.added&limit=1000"),
    );
    assert_eq!(status, 200, "{body}");
    let events = body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    events
        .iter()
        .filter(|e| e["event"]["id"] == id)
        .map(|e| e["seq"].as_u64().unwrap_or_else(|| panic!("{e}")))
        .collect()
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
}

/// Waits until `/metrics` shows `series` at `value`, and answers the whole text.
fn wait_metric(agent: &ureq::Agent, base: &str, series: &str, value: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut response = agent.get(&format!("{base}/metrics")).call().unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        if metric(&text, series) == value {
            return text;
        }
        assert!(Instant::now() < deadline, "{series} never {value}:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_replica_write_with_nats_down_is_answered_within_the_publish_timeout_and_retrying_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::single(dir.path());
    let db = dir.path().join("replica.redb");
    let (mut child, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--nats",
        &server.url(),
        "--publish-timeout-secs",
        "2",
    ]);
    // A bound on hanging, far above the 2 s setting: without it the answer took ~100 s.
    let agent = agent(Duration::from_secs(60));
    let events = format!("{base}/v1/events");
    let (status, body) = post(&agent, &events, "application/json", &note("before"));
    assert_eq!(status, 200, "{body}");
    wait_ready_at(&agent, &base, 1);

    server.kill();
    let started = Instant::now();
    let (status, body) = post(&agent, &events, "application/json", &note("during"));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "answered after {took:?}");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "outcome_unknown", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("unknown"), "{message}");
    assert!(
        message.contains("retrying with the same ids is safe"),
        "{message}"
    );
    assert_eq!(body["results"][0]["status"], "unknown", "{body}");
    assert!(
        body["results"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("publish timeout (2s)"),
        "{body}"
    );

    // NATS is back: the client sends what it had queued, so the event answered 503 lands. The
    // retry the answer invited is then a duplicate, and the replica holds the event once.
    server.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while positions_of(&agent, &base, "during").is_empty() {
        assert!(Instant::now() < deadline, "the queued publish never landed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = post(&agent, &events, "application/json", &note("during"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "duplicate", "{body}");
    let (status, body) = post(&agent, &events, "application/json", &note("after"));
    assert_eq!(status, 200, "{body}");
    let last = body["results"][0]["seq"].as_u64().unwrap();
    wait_ready_at(&agent, &base, last);
    assert_eq!(positions_of(&agent, &base, "during").len(), 1);

    let mut response = agent.get(&format!("{base}/metrics")).call().unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    assert_eq!(
        metric(
            &text,
            r#"tidemark_events_published_total{outcome="unknown"}"#
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            r#"tidemark_events_published_total{outcome="duplicate"}"#
        ),
        1
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_replica_keeps_its_own_quarantine_and_counts_what_it_ingests_like_an_embedded_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let db = dir.path().join("replica.redb");
    let (mut child, base) = start_replica(&db, &server.url());
    let agent = agent(Duration::from_secs(60));

    // Through the replica's API: two events and one invalid item, then a webhook that cannot be
    // translated. Neither refusal takes a stream sequence.
    let body = format!(
        "{}\n{{\"id\":\"broken\",\"schema\":1}}\n{}",
        note("n-1"),
        note("n-2")
    );
    let (status, answer) = post(
        &agent,
        &format!("{base}/v1/events"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["results"][1]["status"], "rejected", "{answer}");
    assert_eq!(answer["results"][1]["quarantine_id"], 1, "{answer}");
    let (status, answer) = post(
        &agent,
        &format!("{base}/v1/bridges/alertmanager"),
        "application/json",
        r#"{"not":"a webhook"}"#,
    );
    assert_eq!(status, 400, "{answer}");
    // Straight onto the stream without a Msg-Id: a repeated event id, and a payload that is no
    // event.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let last = runtime.block_on(async {
        let config = NatsConfig {
            servers: server.url(),
            auth: NatsAuth::default(),
            stream: StreamSettings::default(),
        };
        let client = tidemark_nats::connect(&config, "raw").await.unwrap();
        let js = tidemark_nats::connect::jetstream_context(client);
        let subject = "tidemark.events.c.note_added";
        js.publish(subject, note("n-1").into())
            .await
            .unwrap()
            .await
            .unwrap();
        js.publish(subject, "not an event".into())
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    });
    assert_eq!(last, 4, "the refusals took no stream sequence");
    let ready = wait_ready_at(&agent, &base, last);
    assert_eq!(ready["quarantined"], 3, "{ready}");

    let (status, quarantine) = get_json(&agent, &format!("{base}/v1/quarantine"));
    assert_eq!(status, 200);
    let origins: Vec<&str> = quarantine["quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins.len(), 3, "{quarantine}");
    assert!(origins[0].starts_with("http 127.0.0.1:"), "{origins:?}");
    // The webhook's origin names the request, as an embedded server's does (ea72362).
    assert!(
        origins[1].starts_with("http 127.0.0.1:") && origins[1].ends_with(" alertmanager webhook"),
        "{origins:?}"
    );
    assert!(origins[2].contains("seq 4"), "{origins:?}");

    // The follower counts a commit once it has settled it, just after the checkpoint moved.
    let text = wait_metric(
        &agent,
        &base,
        r#"tidemark_events_ingested_total{outcome="duplicate"}"#,
        1,
    );
    assert_eq!(
        metric(
            &text,
            r#"tidemark_events_ingested_total{outcome="accepted"}"#
        ),
        2
    );
    assert_eq!(
        metric(
            &text,
            r#"tidemark_events_ingested_total{outcome="duplicate"}"#
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            r#"tidemark_events_ingested_total{outcome="rejected"}"#
        ),
        3
    );
    assert_eq!(metric(&text, "tidemark_quarantined"), 3);
    assert!(metric(&text, "tidemark_batch_apply_seconds_count") >= 2);

    // After a restart `/readyz` still counts what the store holds.
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    let (mut child, base) = start_replica(&db, &server.url());
    let ready = wait_ready_at(&agent, &base, last);
    assert_eq!(ready["quarantined"], 3, "{ready}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Child processes killed when the test ends, however it ends.
struct KilledOnDrop(Vec<Child>);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// ADR 0007 through NATS: Alertmanager webhooks posted to one replica are alerts on every
/// replica, the same on each: occurrences, a re-send in a later bucket, a source resolution,
/// and staleness judged at the cluster's clock.
#[test]
fn alerts_posted_to_one_replica_are_the_same_findings_on_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let spawn = |name: &str| {
        support::spawn_server(&[
            "serve",
            "--db",
            dir.path().join(name).to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--nats",
            &server.url(),
            "--alert-resend-bucket-secs",
            "4",
        ])
    };
    let (a, base_a) = spawn("a.redb");
    let (b, base_b) = spawn("b.redb");
    let _children = KilledOnDrop(vec![a, b]);
    let agent = agent(Duration::from_secs(60));
    let now = tidemark_store::wall_clock();

    let settings = format!(
        r#"{{"id":"stale-5","schema":1,"type":"settings.changed","time":"{}","source":"test","cluster":"lab","data":{{"alert_stale_after_secs":5}}}}"#,
        now.plus_secs(-60).to_rfc3339()
    );
    let (status, answer) = post(
        &agent,
        &format!("{base_a}/v1/events"),
        "application/x-ndjson",
        &settings,
    );
    assert_eq!(status, 200, "{answer}");
    let alert = |name: &str, fingerprint: &str, resolved: bool| {
        serde_json::json!({
            "status": if resolved { "resolved" } else { "firing" },
            "labels": {"alertname": name, "cluster": "lab", "namespace": "shop", "pod": format!("{name}-0")},
            "annotations": {"summary": name},
            "startsAt": now.plus_secs(-30).to_rfc3339(),
            "endsAt": if resolved { now.to_rfc3339() } else { "0001-01-01T00:00:00Z".to_owned() },
            "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint
        })
    };
    let webhook = |alerts: Vec<serde_json::Value>| {
        serde_json::json!({
            "version": "4", "groupKey": "{}:{namespace=\"shop\"}", "truncatedAlerts": 0,
            "status": "firing", "receiver": "tidemark", "groupLabels": {"namespace": "shop"},
            "commonLabels": {"cluster": "lab"}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": alerts
        })
        .to_string()
    };
    let bridge = format!("{base_a}/v1/bridges/alertmanager");
    let first = webhook(vec![
        alert("Quiet", "fp-quiet", false),
        alert("Cart", "fp-cart", false),
    ]);
    // Sent just after a re-send bucket begins (4 s of receive time), so that the retry below
    // falls in the same bucket however slow a loaded machine is.
    let bucket = Duration::from_secs(4);
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_bucket = Duration::from_nanos((since_epoch.as_nanos() % bucket.as_nanos()) as u64);
    std::thread::sleep(bucket - into_bucket + Duration::from_millis(20));
    let (status, answer) = post(&agent, &bridge, "application/json", &first);
    assert_eq!(
        (status, &answer["published"]),
        (200, &serde_json::json!(2)),
        "{answer}"
    );
    // Retried at once: the same re-send bucket, stored once.
    let (_, answer) = post(&agent, &bridge, "application/json", &first);
    assert_eq!(answer["duplicates"], 2, "{answer}");
    // A re-send of Quiet in a later bucket, then Cart resolved.
    std::thread::sleep(bucket + Duration::from_millis(100));
    let (_, answer) = post(
        &agent,
        &bridge,
        "application/json",
        &webhook(vec![alert("Quiet", "fp-quiet", false)]),
    );
    assert_eq!(answer["published"], 1, "{answer}");
    let (_, answer) = post(
        &agent,
        &bridge,
        "application/json",
        &webhook(vec![alert("Cart", "fp-cart", true)]),
    );
    assert_eq!(answer["published"], 1, "{answer}");
    // A maintenance window over Quiet, scheduled through the other replica.
    let window = format!(
        r#"{{"id":"window-quiet","schema":1,"type":"maintenance.scheduled","time":"{}","source":"test","cluster":"lab","data":{{"window":"quiet-upgrade","by":"oncall","reason":"upgrade","matchers":{{"alert_name":"Quiet"}},"schedule":{{"once":{{"starts_at":"{}","ends_at":"{}"}}}}}}}}"#,
        tidemark_store::wall_clock().to_rfc3339(),
        now.plus_secs(-120).to_rfc3339(),
        now.plus_secs(3_600).to_rfc3339()
    );
    let (status, answer) = post(
        &agent,
        &format!("{base_b}/v1/events"),
        "application/x-ndjson",
        &window,
    );
    assert_eq!(status, 200, "{answer}");
    // The cluster's clock moves 10 s past Quiet's last notification (a probe's cycle).
    let cycle = format!(
        r#"{{"id":"cycle-lab","schema":1,"type":"cycle.completed","time":"{}","source":"test","cluster":"lab","data":{{"cycle":"c1","categories":["pods"],"findings":[]}}}}"#,
        tidemark_store::wall_clock().plus_secs(10).to_rfc3339()
    );
    let (status, answer) = post(
        &agent,
        &format!("{base_a}/v1/events"),
        "application/x-ndjson",
        &cycle,
    );
    assert_eq!(status, 200, "{answer}");

    // Seven events on the stream: the settings, two fires, a re-send, a resolve, the window,
    // the cycle.
    let mut answers = Vec::new();
    for base in [&base_a, &base_b] {
        wait_ready_at(&agent, base, 7);
        let read = |path: &str| {
            let (status, body) = get_json(&agent, &format!("{base}{path}"));
            assert_eq!(status, 200, "{path}: {body}");
            body
        };
        let all = read("/v1/alerts?state=all");
        let stale = read("/v1/alerts?state=stale");
        let stuck = read("/v1/stuck");
        let windows = read("/v1/maintenance");
        answers.push((all, stale, stuck, windows));
    }
    assert_eq!(answers[0], answers[1], "both replicas answer the same");
    let (all, stale, stuck, windows) = &answers[0];
    assert_eq!(
        windows["windows"][0]["window"], "quiet-upgrade",
        "{windows}"
    );
    let by_name = |name: &str| {
        all["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["alert"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {all}"))
            .clone()
    };
    let quiet = by_name("Quiet");
    assert_eq!(quiet["state"], "active", "{quiet}");
    assert_eq!(
        quiet["alert"]["notifications"], 2,
        "the re-send reached the log: {quiet}"
    );
    assert_eq!(
        quiet["in_maintenance"]["windows"],
        serde_json::json!(["quiet-upgrade"]),
        "{quiet}"
    );
    assert!(by_name("Cart").get("in_maintenance").is_none());
    let cart = by_name("Cart");
    assert_eq!(cart["state"], "resolved", "{cart}");
    assert_eq!(cart["resolution_kind"], "source", "{cart}");
    assert_eq!(stale["count"], 1, "{stale}");
    assert_eq!(stale["alerts"][0]["alert"]["name"], "Quiet", "{stale}");
    assert_eq!(stuck["stale_alerts"][0]["reason"], "alert_stale", "{stuck}");
}

/// `tidemark tail --json` against `base` from `from`, until `count` events; their positions
/// and ids.
fn tail_events(base: &str, from: u64, count: usize) -> Vec<(u64, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "tail",
            "--server",
            base,
            "--json",
            "--from",
            &from.to_string(),
        ])
        .args(["--max-events", &count.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["event"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_stream_read_from_one_replica_resumes_on_another_with_no_gap_and_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let (a, base_a) = start_replica(&dir.path().join("a.redb"), &server.url());
    let (b, base_b) = start_replica(&dir.path().join("b.redb"), &server.url());
    let _children = KilledOnDrop(vec![a, b]);
    let agent = agent(Duration::from_secs(60));
    let body: String = (0..20).map(|i| note(&format!("r{i}")) + "\n").collect();
    let (status, answer) = post(
        &agent,
        &format!("{base_a}/v1/events"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    // Positions are the stream's sequences: the same on both replicas.
    let first = tail_events(&base_a, 1, 8);
    assert_eq!(first.len(), 8);
    let resume = first.last().unwrap().0 + 1;
    // The rest from replica B, live too: 12 stored, 5 posted to A while B's tail runs.
    let rest = {
        let base_b = base_b.clone();
        std::thread::spawn(move || tail_events(&base_b, resume, 17))
    };
    std::thread::sleep(Duration::from_millis(500));
    let body: String = (20..25).map(|i| note(&format!("r{i}")) + "\n").collect();
    let (status, answer) = post(
        &agent,
        &format!("{base_a}/v1/events"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    let mut seen = first;
    seen.extend(rest.join().unwrap());
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    let expected: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
    assert_eq!(
        ids, expected,
        "every event once, in order, across the two replicas"
    );
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    // Cycles that open findings and resolve them after the clean-cycle dampener: each replica
    // recorded the same changes at the same positions (the same log folded in the same order),
    // so their streams' change frames are the same.
    let body: String = (0..6)
        .map(|i| {
            let findings = if i < 2 {
                r#"[{"check_key":"k","category":"pods","severity":"error","title":"t"}]"#
            } else {
                "[]"
            };
            format!(
                r#"{{"id":"rc-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T11:0{i}:00Z","source":"p","cluster":"c","data":{{"cycle":"{i}","categories":["pods"],"findings":{findings}}}}}"#
            ) + "\n"
        })
        .collect();
    let (status, answer) = post(
        &agent,
        &format!("{base_a}/v1/events"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    let effects = |base: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args([
                "tail",
                "--server",
                base,
                "--json",
                "--effects",
                "--from",
                "1",
            ])
            .args(["--max-events", "31"])
            .output()
            .unwrap();
        assert!(out.status.success());
        // The change lines (an event's `recorded_at` is each replica's own clock).
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|line| line.contains(r#""what":"#))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (on_a, on_b) = (effects(&base_a), effects(&base_b));
    let text = on_a.join("\n");
    assert!(text.contains(r#""change":"opened (error)""#), "{text}");
    assert!(text.contains(r#""change":"resolved (auto)""#), "{text}");
    assert_eq!(on_a, on_b, "the same changes from either replica");
}
