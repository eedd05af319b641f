//! OTLP traces into a real `tidemark serve` from the real OpenTelemetry Python SDK and its
//! OTLP/HTTP exporter (`scripts/install-otel-python`, `$TIDEMARK_OTEL_PYTHON`; the driver is
//! `tests/fixtures/otlp/export.py`), with a write token: a complete trace is no orphan, a trace
//! whose root never arrives is reported `rootless_trace` once later spans move the cluster's
//! clock past the grace period (the default 300 s, not lowered), and re-exported spans are
//! stored once. An OTLP/JSON body posted from Rust, and one posted to `serve --nats` (a real
//! nats-server, `$TIDEMARK_NATS_SERVER`), end up stored.

#[path = "../../tidemark-nats/tests/support/nats_server.rs"]
mod nats_server;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "otlp-test-write-token";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Python with the OpenTelemetry SDK: `$TIDEMARK_OTEL_PYTHON`, else the one
/// `scripts/install-otel-python` installs (a virtualenv under `.tools/`).
fn otel_python() -> PathBuf {
    support::installed_tool(
        "TIDEMARK_OTEL_PYTHON",
        "install-otel-python",
        "this test needs Python 3 with opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http from PyPI",
    )
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

fn get_json(agent: &ureq::Agent, url: &str) -> Value {
    let mut response = agent
        .get(url)
        .header("authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let body = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status(), 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn post_otlp_json(agent: &ureq::Agent, base: &str, body: &Value) -> (u16, String) {
    let mut response = agent
        .post(&format!("{base}/v1/traces"))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .send(body.to_string().as_str())
        .unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), text)
}

/// The ids of the events `source=otlp` stored, every page.
fn otlp_event_ids(agent: &ureq::Agent, base: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let page = get_json(
            agent,
            &format!("{base}/v1/events?source=otlp&limit=100{after}"),
        );
        for item in page["events"].as_array().unwrap() {
            ids.push(item["event"]["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_u64() {
            Some(next) => after = format!("&after={next}"),
            None => return ids,
        }
    }
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in the metrics"))
}

fn metrics(agent: &ureq::Agent, base: &str) -> String {
    let mut response = agent
        .get(&format!("{base}/metrics"))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    response.body_mut().read_to_string().unwrap()
}

/// An OTLP/JSON request of one root span, as the OTLP specification shows the encoding.
fn one_span_json(trace_id: &str, cluster: &str) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "billing"}},
            {"key": "k8s.cluster.name", "value": {"stringValue": cluster}}
        ]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_id, "spanId": "00f067aa0ba902b7", "name": "invoice",
            "kind": 2, "startTimeUnixNano": "1772460000000000000",
            "endTimeUnixNano": "1772460000250000000", "status": {"code": 1}
        }]}]
    }]})
}

#[test]
fn the_python_sdk_exports_traces_judged_after_the_grace_period_and_retries_are_stored_once() {
    let python = otel_python();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("otlp.redb");
    let tokens = format!("--tokens-env=write:{TOKEN}");
    let (child, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        &tokens,
    ]);
    let _server = Killed(child);
    let agent = agent();

    let out = Command::new(&python)
        .arg(repo_root().join("crates/tidemark-cli/tests/fixtures/otlp/export.py"))
        .args(["--endpoint", &format!("{base}/v1/traces")])
        .args(["--token", TOKEN, "--cluster", "otlp-test"])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the exporter failed: {stdout}");
    let exported: Value = serde_json::from_str(stdout.trim()).unwrap();
    let complete = exported["complete_trace"].as_str().unwrap();
    let rootless = exported["rootless_trace"].as_str().unwrap();
    assert_eq!(exported["spans"], 6, "{exported}");

    // Every span stored once, though the first five were exported twice.
    let ids = otlp_event_ids(&agent, &base);
    assert_eq!(ids.len(), 6, "{ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("otlp:")), "{ids:?}");
    let text = metrics(&agent, &base);
    assert_eq!(
        metric(&text, "tidemark_otlp_spans_total{outcome=\"accepted\"}"),
        6
    );
    assert_eq!(
        metric(&text, "tidemark_otlp_spans_total{outcome=\"duplicate\"}"),
        5
    );
    assert_eq!(
        metric(&text, "tidemark_otlp_spans_total{outcome=\"rejected\"}"),
        0
    );

    // The later span moved the cluster's clock 600 s on: both traces were judged.
    let orphans = get_json(&agent, &format!("{base}/v1/orphans?cluster=otlp-test"));
    let orphans = orphans["orphans"].as_array().unwrap();
    let of = |trace: &str| -> Vec<&str> {
        orphans
            .iter()
            .filter(|o| o["trace_id"] == trace)
            .map(|o| o["kind"].as_str().unwrap())
            .collect()
    };
    assert_eq!(of(complete), Vec::<&str>::new(), "{orphans:?}");
    assert!(of(rootless).contains(&"rootless_trace"), "{orphans:?}");

    // An OTLP/JSON body posted from Rust: stored, answered `{}`; without the token, 401.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, answer) = post_otlp_json(&agent, &base, &one_span_json(trace_id, "otlp-test"));
    assert_eq!((status, answer.as_str()), (200, "{}"));
    assert!(otlp_event_ids(&agent, &base).contains(&format!("otlp:{trace_id}:00f067aa0ba902b7")));
    let response = agent
        .post(&format!("{base}/v1/traces"))
        .header("content-type", "application/json")
        .send("{}")
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[test]
fn spans_posted_to_a_replica_are_published_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = nats_server::NatsServer::single(dir.path());
    let db = dir.path().join("replica.redb");
    let tokens = format!("--tokens-env=write:{TOKEN}");
    let (child, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--nats",
        &server.url(),
        &tokens,
    ]);
    let _replica = Killed(child);
    let agent = agent();
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let mut body = one_span_json(trace_id, "replica-test");
    // And one span that cannot be mapped: kept in the replica's quarantine, counted.
    body["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap()
        .push(json!({"traceId": trace_id, "spanId": "0000000000000000", "name": "bad"}));
    let (status, answer) = post_otlp_json(&agent, &base, &body);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1", "{answer}");
    let id = format!("otlp:{trace_id}:00f067aa0ba902b7");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !otlp_event_ids(&agent, &base).contains(&id) {
        assert!(
            Instant::now() < deadline,
            "the published span was not stored by the replica's follower within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A retry is a duplicate in the log.
    let (status, _) = post_otlp_json(&agent, &base, &body);
    assert_eq!(status, 200);
    let text = metrics(&agent, &base);
    assert_eq!(
        metric(&text, "tidemark_otlp_spans_total{outcome=\"duplicate\"}"),
        1
    );
    let quarantine = get_json(&agent, &format!("{base}/v1/quarantine"));
    assert_eq!(
        quarantine["quarantine"].as_array().unwrap().len(),
        1,
        "{quarantine}"
    );
}
