//! The read API through the router (no socket) over a real store: pages and cursors, filters,
//! the projections, `?at=`, errors, and bearer tokens.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tidemark_server::{AppState, AuthPolicy, Ingest, Tokens, Writer, router};
use tidemark_store::{Store, StoreConfig};
use tower::ServiceExt;

struct Harness {
    app: Router,
    _dir: tempfile::TempDir,
}

fn harness(auth: AuthPolicy) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("q.redb"), StoreConfig::default()).unwrap());
    harness_over(store, dir, auth)
}

/// The router over `store` (whose file is in `dir`).
fn harness_over(store: Arc<Store>, dir: tempfile::TempDir, auth: AuthPolicy) -> Harness {
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store,
            ingest: Ingest::Local(client),
            max_body_bytes: 1 << 20,
            limits: Default::default(),
            auth,
            bridge: Default::default(),
            otlp: Default::default(),
            metrics: Default::default(),
            time_travel: Default::default(),
        }),
        _dir: dir,
    }
}

impl Harness {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: String,
        token: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(uri);
        if method == "POST" {
            request = request.header("content-type", "application/json");
        }
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, text) = self.call("GET", uri, String::new(), None).await;
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{uri}: not JSON: {text}"));
        (status, value)
    }

    async fn ok(&self, uri: &str) -> Value {
        let (status, value) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {value}");
        value
    }
}

/// A small day in cluster pw-prod: a crash loop with a declared incident and a note, a flaky
/// check, a scan with an unused PVC (twice), one event per minute.
fn day() -> String {
    let mut lines = Vec::new();
    let mut push = |kind: &str, data: Value| {
        let n = lines.len() + 1;
        lines.push(
            json!({"id": format!("ev-{n:03}"), "schema": 1, "type": kind,
                   "time": format!("2026-03-02T10:{:02}:00Z", n), "source": "probe",
                   "cluster": "pw-prod", "data": data})
            .to_string(),
        );
    };
    let scan = json!({"scan": "s", "kinds": ["Pod", "PersistentVolumeClaim"], "resources": [
        {"uid": "pvc-1", "kind": "PersistentVolumeClaim", "namespace": "media", "name": "plex-config"}]});
    push("inventory.observed", scan.clone());
    let crash = json!({"check_key": "pod:crashloop:dnd/dnd-backend", "category": "pods",
        "severity": "critical", "title": "dnd-backend is in CrashLoopBackOff",
        "resource": {"kind": "Pod", "namespace": "dnd", "name": "dnd-backend"}});
    let flaky = json!({"check_key": "node:notready:k3s-worker-2", "category": "nodes",
        "severity": "warning", "title": "k3s-worker-2 not ready"});
    for i in 0..8 {
        let mut findings = vec![crash.clone()];
        if i % 4 == 0 {
            findings.push(flaky.clone());
        }
        push(
            "cycle.completed",
            json!({"cycle": format!("c{i}"), "categories": ["pods", "nodes"], "findings": findings}),
        );
    }
    push(
        "incident.opened",
        json!({"incident": "inc-1", "title": "dnd down", "severity": "critical",
        "check_keys": ["pod:crashloop:dnd/dnd-backend"]}),
    );
    push(
        "note.added",
        json!({"incident": "inc-1", "author": "oncall", "kind": "hypothesis",
        "text": "pull secret expired?"}),
    );
    push("inventory.observed", scan);
    lines.join("\n")
}

async fn loaded() -> Harness {
    let h = harness(AuthPolicy::Open);
    let (status, body) = h.call("POST", "/v1/events", day(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h
}

#[tokio::test]
async fn events_page_by_cursor_and_filter_by_type_finding_and_incident() {
    let h = loaded().await;
    let first = h.ok("/v1/events?limit=5").await;
    let seqs: Vec<u64> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(first["next"], 5);
    let second = h.ok("/v1/events?limit=5&after=5").await;
    assert_eq!(second["events"][0]["seq"], 6);
    let rest = h.ok("/v1/events?after=10").await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next"], Value::Null);

    let scans = h.ok("/v1/events?type=inventory.observed").await;
    assert_eq!(scans["events"].as_array().unwrap().len(), 2);
    let flaky = h
        .ok("/v1/events?check_key=node:notready:k3s-worker-2")
        .await;
    assert!(flaky["events"].as_array().unwrap().len() >= 2, "{flaky}");
    let incident = h.ok("/v1/events?incident=inc-1").await;
    let types: Vec<&str> = incident["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"note.added") && types.contains(&"incident.opened"),
        "{types:?}"
    );
    let window = h
        .ok("/v1/events?since=2026-03-02T10:03:00Z&until=2026-03-02T10:04:00Z")
        .await;
    assert_eq!(window["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn findings_pages_follow_the_cursor_to_the_end_in_a_stable_order() {
    let h = loaded().await;
    let mut keys = Vec::new();
    let mut uri = "/v1/findings?limit=1".to_owned();
    loop {
        let page = h.ok(&uri).await;
        for f in page["findings"].as_array().unwrap() {
            keys.push(f["check_key"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => uri = format!("/v1/findings?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(
        keys,
        [
            "node:notready:k3s-worker-2",
            "pod:crashloop:dnd/dnd-backend"
        ]
    );
    let active = h.ok("/v1/findings?state=active&severity=critical").await;
    assert_eq!(active["count"], 1);

    let one = h
        .ok("/v1/findings/pw-prod/node:notready:k3s-worker-2?limit=2")
        .await;
    assert_eq!(one["finding"]["check_key"], "node:notready:k3s-worker-2");
    assert_eq!(one["timeline"].as_array().unwrap().len(), 2);
    let next = one["next"].as_u64().unwrap();
    let more = h
        .ok(&format!(
            "/v1/findings/pw-prod/node:notready:k3s-worker-2?limit=2&after={next}"
        ))
        .await;
    assert!(more["timeline"][0]["seq"].as_u64().unwrap() > next);
    // Cycle events in a finding's timeline keep only that finding's entry, unless asked.
    let crash = h
        .ok("/v1/findings/pw-prod/pod:crashloop:dnd/dnd-backend?limit=1")
        .await;
    let first = &crash["timeline"][0];
    assert_eq!(first["trimmed"], true, "{first}");
    let entries = first["event"]["data"]["findings"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["check_key"], "pod:crashloop:dnd/dnd-backend");
    let full = h
        .ok("/v1/findings/pw-prod/pod:crashloop:dnd/dnd-backend?limit=1&full_events=true")
        .await;
    assert_eq!(full["timeline"][0]["trimmed"], false);
    assert_eq!(
        full["timeline"][0]["event"]["data"]["findings"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The finding as it was at position 2: seen once, active.
    let then = h
        .ok("/v1/findings/pw-prod/node:notready:k3s-worker-2?at=2")
        .await;
    assert_eq!(then["seq"], 2);
    assert_eq!(then["finding"]["occurrences"], 1);
    assert_eq!(then["timeline"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn projections_answer_with_their_figures() {
    let h = loaded().await;
    let orphans = h.ok("/v1/orphans").await;
    assert_eq!(orphans["orphans"][0]["resource"]["name"], "plex-config");
    assert_eq!(orphans["orphans"][0]["scans"], 2);
    let before = h.ok("/v1/orphans?at=11").await;
    assert_eq!(before["orphans"].as_array().unwrap().len(), 0);
    let candidates = h.ok("/v1/orphans?at=11&candidates=true").await;
    assert_eq!(candidates["orphans"].as_array().unwrap().len(), 1);
    let (status, dot) = h
        .call("GET", "/v1/orphans/graph?format=dot", String::new(), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(dot.starts_with("digraph"), "{dot}");
    let graph = h.ok("/v1/orphans/graph").await;
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 1);

    let stuck = h.ok("/v1/stuck").await;
    assert_eq!(stuck["truncated"], false);
    let flaps = h.ok("/v1/flaps").await;
    assert!(flaps["flapping"].is_array() && flaps["churn"].is_array());

    let incidents = h.ok("/v1/incidents").await;
    let ids: Vec<&str> = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"inc-1"), "{ids:?}");
    let one = h.ok("/v1/incidents/inc-1").await;
    assert_eq!(one["incident"]["severity"], "critical");
    let timeline = h.ok("/v1/incidents/inc-1/timeline").await;
    let summaries: Vec<&str> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries.iter().any(|s| s.contains("pull secret expired?")),
        "{summaries:?}"
    );
    let page = h.ok("/v1/incidents/inc-1/timeline?limit=1").await;
    assert_eq!(page["timeline"].as_array().unwrap().len(), 1);
    assert!(page["next"].is_u64());
}

#[tokio::test]
async fn bad_parameters_are_4xx_json_naming_the_parameter() {
    let h = loaded().await;
    for (uri, status, needle) in [
        (
            "/v1/events?type=cycle.done",
            StatusCode::BAD_REQUEST,
            "`type`",
        ),
        ("/v1/events?limit=0", StatusCode::BAD_REQUEST, "`limit`"),
        (
            "/v1/events?limit=5000",
            StatusCode::BAD_REQUEST,
            "at most 1000",
        ),
        ("/v1/findings?after=zz", StatusCode::BAD_REQUEST, "`after`"),
        ("/v1/findings?at=yesterday", StatusCode::BAD_REQUEST, "`at`"),
        ("/v1/findings?colour=red", StatusCode::BAD_REQUEST, "colour"),
        (
            "/v1/orphans/graph?format=svg",
            StatusCode::BAD_REQUEST,
            "`format`",
        ),
        (
            "/v1/incidents/nope",
            StatusCode::NOT_FOUND,
            "GET /v1/incidents",
        ),
        ("/v1/findings/pw-prod/nope", StatusCode::NOT_FOUND, "nope"),
    ] {
        let (got, body) = h.get(uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{uri}: {body}"
        );
        assert!(body["code"].is_string());
    }
}

#[tokio::test]
async fn tokens_gate_reads_and_writes_but_not_health() {
    let mut tokens = Tokens::none();
    tokens
        .add_env_value(
            "TIDEMARK_TOKENS",
            "read:reader-0123456789abcdef,write:writer-0123456789abcdef",
        )
        .unwrap();
    let h = harness(AuthPolicy::Tokens(Arc::new(tokens)));
    let reader = Some("reader-0123456789abcdef");
    let writer = Some("writer-0123456789abcdef");
    let (status, body) = h.call("GET", "/v1/findings", String::new(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("Authorization: Bearer"));
    let (status, _) = h
        .call(
            "GET",
            "/v1/findings",
            String::new(),
            Some("wrong-0123456789abcdef"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h.call("GET", "/v1/findings", String::new(), reader).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h.call("POST", "/v1/events", day(), reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = h.call("POST", "/v1/events", day(), writer).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.call("GET", "/v1/incidents", String::new(), writer).await;
    assert_eq!(status, StatusCode::OK, "write includes read");
    let (status, _) = h.call("GET", "/healthz", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.call("GET", "/readyz", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.call("GET", "/metrics", String::new(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A reopened store restores a cluster when it is first needed: `/readyz`, asked every few
/// seconds, needs none (it says the quarantine's count without the stats that read every
/// cluster); `/metrics` counts every cluster's findings, so it restores them all.
#[tokio::test]
async fn readiness_restores_no_cluster_of_a_reopened_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.redb");
    {
        let store = Store::open(&path, StoreConfig::default()).unwrap();
        let events: Vec<tidemark_store::Input> = day()
            .lines()
            .map(|line| tidemark_store::Input::Event(tidemark_core::decode_event(line).unwrap()))
            .collect();
        store
            .append(
                &events,
                tidemark_core::Timestamp::from_unix_secs(1_800_000_000),
            )
            .unwrap();
        store.snapshot_now().unwrap();
    }
    let store = Arc::new(Store::open(&path, StoreConfig::default()).unwrap());
    let h = harness_over(store.clone(), dir, AuthPolicy::Open);
    let ready = h.ok("/readyz").await;
    assert_eq!(ready["quarantined"], 0, "{ready}");
    assert_eq!(store.clusters_in_memory(), 0);
    let (status, _) = h.call("GET", "/metrics", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(store.clusters_in_memory(), 1, "the day is of one cluster");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_quarantine() {
    let h = loaded().await;
    h.ok("/v1/findings/pw-prod/node:notready:k3s-worker-2")
        .await;
    h.get("/v1/incidents/nope").await;
    let (status, text) = h.call("GET", "/metrics", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    // Route patterns, not raw paths: labels stay bounded.
    assert!(
        text.contains("tidemark_http_requests_total{method=\"GET\",route=\"/v1/findings/{cluster}/{*check_key}\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("route=\"/v1/incidents/{id}\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("tidemark_quarantined 0"), "{text}");
    // What the live state holds, and spans judged alone past the retention.
    assert!(text.contains("# TYPE tidemark_traces_kept gauge"), "{text}");
    assert!(
        text.contains("# TYPE tidemark_flap_auto_resolutions_kept gauge"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE tidemark_late_spans_total counter\ntidemark_late_spans_total 0\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE tidemark_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn alertmanager_webhooks_land_on_the_timeline_once_and_bad_ones_in_quarantine() {
    let h = harness(AuthPolicy::Open);
    let webhook = json!({
        "version": "4", "groupKey": "{}:{alertname=\"AgentBrunoPodCrashLooping\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "tidemark", "groupLabels": {}, "commonLabels": {"cluster": "pw-prod"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "AgentBrunoPodCrashLooping", "namespace": "bruno", "severity": "critical"},
            "annotations": {"summary": "agent-bruno is crash-looping"},
            "startsAt": "2026-03-02T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": "c4b2a1d3e5f60789"
        }]
    })
    .to_string();
    let (status, body) = h
        .call("POST", "/v1/bridges/alertmanager", webhook.clone(), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["accepted"], 1);
    // Alertmanager re-sends the group: stored once.
    let (_, body) = h
        .call("POST", "/v1/bridges/alertmanager", webhook.clone(), None)
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["duplicates"], 1);
    // A group larger than the receiver's max_alerts: Alertmanager leaves some out and says how
    // many; they are counted.
    let mut truncated: Value = serde_json::from_str(&webhook).unwrap();
    truncated["truncatedAlerts"] = json!(5);
    let (status, body) = h
        .call(
            "POST",
            "/v1/bridges/alertmanager",
            truncated.to_string(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, metrics) = h.call("GET", "/metrics", String::new(), None).await;
    assert!(
        metrics.contains("\ntidemark_alerts_truncated_total 5\n"),
        "{metrics}"
    );
    let fired = h.ok("/v1/events?type=alert.fired&cluster=pw-prod").await;
    assert_eq!(
        fired["events"][0]["event"]["data"]["name"],
        "AgentBrunoPodCrashLooping"
    );

    let (status, body) = h
        .call(
            "POST",
            "/v1/bridges/alertmanager",
            r#"{"version": "3", "alerts": []}"#.into(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("\\\"4\\\"") || body.contains("4"), "{body}");
    let quarantine = h.ok("/v1/quarantine").await["quarantine"].take();
    assert_eq!(quarantine.as_array().unwrap().len(), 1, "{quarantine}");
    assert!(
        quarantine[0]["origin"]
            .as_str()
            .unwrap()
            .contains("alertmanager")
    );
}

/// An `alert.fired` or `alert.resolved` event of the alert `name`/`fingerprint`.
fn alert_event(
    id: &str,
    minute: u32,
    fired: bool,
    name: &str,
    fingerprint: &str,
    labels: Value,
) -> String {
    json!({"id": id, "schema": 1, "type": if fired { "alert.fired" } else { "alert.resolved" },
        "time": format!("2026-03-02T11:{minute:02}:00Z"), "source": "alertmanager",
        "cluster": "pw-prod", "data": {"fingerprint": fingerprint, "name": name,
        "severity": if name == "NodeDown" { "warning" } else { "critical" }, "labels": labels,
        "annotations": {"summary": format!("{name} summary")},
        "starts_at": "2026-03-02T11:00:00Z",
        "ends_at": if fired { Value::Null } else { json!(format!("2026-03-02T11:{minute:02}:00Z")) }}})
    .to_string()
}

/// ADR 0007: `GET /v1/alerts` lists the firing alerts by default, filters by state, name,
/// severity and repeated labels, pages by cursor; `GET /v1/alerts/{cluster}/{fingerprint}`
/// answers the alert with its occurrences (with durations); a missing one is a 404.
#[tokio::test]
async fn alerts_are_listed_filtered_paged_and_found_by_fingerprint() {
    let h = loaded().await;
    let bruno = json!({"alertname": "KubePodCrashLooping", "namespace": "bruno", "pod": "bruno-0"});
    let dnd = json!({"alertname": "KubePodCrashLooping", "namespace": "dnd", "pod": "dnd-0"});
    let node = json!({"alertname": "NodeDown", "instance": "n3:9100"});
    let events = [
        alert_event("a1", 1, true, "KubePodCrashLooping", "fp-bruno", bruno),
        alert_event("a2", 2, true, "KubePodCrashLooping", "fp-dnd", dnd.clone()),
        alert_event("a3", 3, true, "NodeDown", "fp-node", node),
        alert_event("a4", 10, false, "KubePodCrashLooping", "fp-dnd", dnd),
    ]
    .join("\n");
    let (status, body) = h.call("POST", "/v1/events", events, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let names = |v: &Value| -> Vec<String> {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert"]["fingerprint"].as_str().unwrap().to_owned())
            .collect()
    };
    // Firing by default: the resolved one is left out; probes' findings never appear.
    let firing = h.ok("/v1/alerts").await;
    assert_eq!(names(&firing), ["fp-bruno", "fp-node"], "{firing}");
    assert_eq!(firing["alerts"][0]["category"], "alert");
    assert_eq!(
        names(&h.ok("/v1/alerts?state=all").await),
        ["fp-bruno", "fp-dnd", "fp-node"]
    );
    assert_eq!(names(&h.ok("/v1/alerts?state=resolved").await), ["fp-dnd"]);
    assert_eq!(
        names(&h.ok("/v1/alerts?state=all&name=NodeDown").await),
        ["fp-node"]
    );
    assert_eq!(
        names(&h.ok("/v1/alerts?state=all&severity=critical").await),
        ["fp-bruno", "fp-dnd"]
    );
    assert_eq!(
        names(
            &h.ok("/v1/alerts?state=all&label=alertname=KubePodCrashLooping&label=namespace=dnd")
                .await
        ),
        ["fp-dnd"]
    );
    assert!(names(&h.ok("/v1/alerts?label=namespace=nowhere").await).is_empty());
    assert_eq!(
        names(
            &h.ok("/v1/alerts?state=all&until=2026-03-02T11:01:30Z")
                .await
        ),
        ["fp-bruno"],
        "opened at or before until"
    );
    assert_eq!(
        names(
            &h.ok("/v1/alerts?state=all&since=2026-03-02T11:20:00Z")
                .await
        ),
        ["fp-bruno", "fp-node"],
        "still firing at or after since"
    );
    // Paged: one at a time, the cursor to the end.
    let mut seen = Vec::new();
    let mut uri = "/v1/alerts?state=all&limit=1".to_owned();
    loop {
        let page = h.ok(&uri).await;
        seen.extend(names(&page));
        match page["next"].as_str() {
            Some(next) => uri = format!("/v1/alerts?state=all&limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["fp-bruno", "fp-dnd", "fp-node"]);
    // One alert, by fingerprint.
    let one = h.ok("/v1/alerts/pw-prod/fp-dnd").await;
    let alert = &one["alerts"][0];
    assert_eq!(
        alert["finding"]["check_key"],
        "alert:KubePodCrashLooping:fp-dnd"
    );
    assert_eq!(alert["finding"]["resolution_kind"], "source");
    assert_eq!(alert["occurrences"][0]["duration_secs"], 8 * 60, "{one}");
    assert_eq!(alert["more_occurrences"], false);
    let (status, body) = h.get("/v1/alerts/pw-prod/fp-none").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A label filter without `=` is a 400 naming the parameter.
    let (status, body) = h.get("/v1/alerts?label=namespace").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`label`"),
        "{body}"
    );
    let (status, body) = h.get("/v1/alerts?state=burning").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`state`"),
        "{body}"
    );

    // The pages: `/alerts` lists the firing ones; the home page lists, beside the incidents,
    // what fires in no incident: an alert naming no resource opens none.
    let latency = alert_event(
        "a5",
        12,
        true,
        "HighLatency",
        "fp-latency",
        json!({"team": "web"}),
    );
    let (status, body) = h.call("POST", "/v1/events", latency, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, page) = h.call("GET", "/alerts", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("alert%3ANodeDown%3Afp-node") && !page.contains("fp-dnd"),
        "{page}"
    );
    let (status, page) = h
        .call("GET", "/alerts?state=all", String::new(), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("fp-dnd"), "{page}");
    let (status, home) = h.call("GET", "/", String::new(), None).await;
    assert_eq!(status, StatusCode::OK);
    let unheld = &home[home.find("id=\"unheld\"").expect("the home page's section")..];
    assert!(
        unheld.contains("alert%3AHighLatency%3Afp-latency"),
        "{unheld}"
    );
    assert!(
        !unheld.contains("fp-bruno"),
        "held by its automatic incident: {unheld}"
    );
}

/// ADR 0007, staleness: a firing alert no notification named for longer than its cluster's
/// `alert_stale_after_secs` is `stale` in its views, listed by `/v1/alerts?state=stale` and by
/// `/v1/stuck` with reason `alert_stale` and for how long, judged at the cluster's clock or, with
/// `reference=now`, at the server's; never resolved.
#[tokio::test]
async fn stale_alerts_are_judged_at_the_clusters_clock_or_now_and_never_resolved() {
    let h = harness(AuthPolicy::Open);
    let event = |id: &str, minute: u32, kind: &str, data: Value| {
        json!({"id": id, "schema": 1, "type": kind,
            "time": format!("2026-03-02T11:{minute:02}:00Z"), "source": "test",
            "cluster": "quiet", "data": data})
        .to_string()
    };
    let fire = |id: &str, minute: u32, fingerprint: &str| {
        event(
            id,
            minute,
            "alert.fired",
            json!({"fingerprint": fingerprint, "name": "Quiet",
            "severity": "warning", "labels": {"alertname": "Quiet", "namespace": "q"},
            "annotations": {}, "starts_at": "2026-03-02T11:00:00Z", "ends_at": null}),
        )
    };
    let events = [
        fire("q1", 1, "fp-old"),
        event(
            "q2",
            2,
            "settings.changed",
            json!({"alert_stale_after_secs": 600}),
        ),
        fire("q3", 25, "fp-new"),
        // The cluster's clock moves to 11:30 with a probe's cycle.
        event(
            "q4",
            30,
            "cycle.completed",
            json!({"cycle": "c1", "categories": ["pods"], "findings": []}),
        ),
    ]
    .join("\n");
    let (status, body) = h.call("POST", "/v1/events", events, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let fingerprints = |v: &Value, list: &str| -> Vec<String> {
        v[list]
            .as_array()
            .unwrap_or_else(|| panic!("{list} in {v}"))
            .iter()
            .map(|a| {
                a["fingerprint"]
                    .as_str()
                    .or(a["alert"]["fingerprint"].as_str())
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    // At the cluster's clock (11:30): the one notified at 11:01 is stale since 11:11.
    let stale = h.ok("/v1/alerts?state=stale").await;
    assert_eq!(fingerprints(&stale, "alerts"), ["fp-old"], "{stale}");
    assert_eq!(stale["alerts"][0]["state"], "active", "never resolved");
    assert_eq!(
        stale["alerts"][0]["stale"]["stale_since"],
        "2026-03-02T11:11:00Z"
    );
    assert_eq!(stale["alerts"][0]["stale"]["stale_for_secs"], 19 * 60);
    assert_eq!(
        stale["alerts"][0]["stale"]["reference"],
        "2026-03-02T11:30:00Z"
    );
    let firing = h.ok("/v1/alerts").await;
    assert_eq!(fingerprints(&firing, "alerts"), ["fp-new", "fp-old"]);
    assert!(firing["alerts"][0].get("stale").is_none(), "{firing}");
    let stuck = h.ok("/v1/stuck").await;
    assert_eq!(fingerprints(&stuck, "stale_alerts"), ["fp-old"], "{stuck}");
    assert_eq!(stuck["stale_alerts"][0]["reason"], "alert_stale");
    assert_eq!(stuck["stale_alerts"][0]["stale_for_secs"], 19 * 60);
    assert_eq!(
        stuck["stale_alerts"][0]["last_notified_at"],
        "2026-03-02T11:01:00Z"
    );

    // At the server's clock (months later): both, each judged at the time it states.
    let now = h.ok("/v1/stuck?reference=now").await;
    assert_eq!(
        fingerprints(&now, "stale_alerts"),
        ["fp-new", "fp-old"],
        "{now}"
    );
    let reference = now["stale_alerts"][0]["reference"].as_str().unwrap();
    assert!(reference > "2026-03-03", "{reference}");
    let one = h.ok("/v1/alerts/quiet/fp-new?reference=now").await;
    assert!(
        one["alerts"][0]["finding"]["stale"]["stale_for_secs"]
            .as_u64()
            .unwrap()
            > 86_400
    );
    let one = h.ok("/v1/alerts/quiet/fp-new").await;
    assert!(one["alerts"][0]["finding"].get("stale").is_none(), "{one}");

    let (status, body) = h.get("/v1/stuck?reference=tomorrow").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`reference`"),
        "{body}"
    );

    // The pages say it.
    let (status, page) = h
        .call("GET", "/alerts?state=stale", String::new(), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("stale 19m 00s") && !page.contains("fp-new"),
        "{page}"
    );
    let (status, page) = h
        .call(
            "GET",
            "/findings/quiet/alert%3AQuiet%3Afp-old",
            String::new(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("stale for 19m 00s"), "{page}");
}

/// ADR 0007, maintenance windows: `GET /v1/maintenance` lists the windows open at the cluster's
/// clock (or every one in effect, or those open at a past time, by time travel); a covered
/// finding is marked `in_maintenance` and opens its incident only when the window ends, saying
/// so; the lanes draw the window as a band; the postmortem names it; the page lists it.
#[tokio::test]
async fn maintenance_windows_are_listed_marked_banded_and_named_in_the_postmortem() {
    let h = harness(AuthPolicy::Open);
    let event = |id: &str, time: &str, kind: &str, data: Value| {
        json!({"id": id, "schema": 1, "type": kind, "time": time, "source": "test",
            "cluster": "maint", "data": data})
        .to_string()
    };
    let cycle = |id: &str, time: &str, present: bool| {
        let findings = if present {
            json!([{"check_key": "pod:crashloop:db/postgres", "category": "pods",
                "severity": "critical", "title": "postgres CrashLoopBackOff",
                "resource": {"kind": "Pod", "namespace": "db", "name": "postgres-0"}}])
        } else {
            json!([])
        };
        event(
            id,
            time,
            "cycle.completed",
            json!({"cycle": id, "categories": ["pods"], "findings": findings}),
        )
    };
    let events = [
        event(
            "w1",
            "2026-03-02T02:00:00Z",
            "maintenance.scheduled",
            json!({"window": "db-upgrade", "by": "alice", "reason": "PostgreSQL 17",
                "matchers": {"namespace": "db"},
                "schedule": {"once": {"starts_at": "2026-03-02T02:00:00Z",
                    "ends_at": "2026-03-02T03:00:00Z"}}}),
        ),
        event(
            "w2",
            "2026-03-02T02:00:00Z",
            "maintenance.scheduled",
            json!({"window": "weekend", "by": "bob", "reason": "patching",
                "schedule": {"time_intervals": [{"weekdays": ["saturday"]}]}}),
        ),
        cycle("c1", "2026-03-02T02:14:00Z", true),
        cycle("c2", "2026-03-02T02:30:00Z", true),
        cycle("c3", "2026-03-02T03:05:00Z", true),
    ]
    .join("\n");
    let (status, body) = h.call("POST", "/v1/events", events, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Now (03:05): the one-off window is over; the weekend one is in effect, closed (a monday).
    let now = h.ok("/v1/maintenance").await;
    assert_eq!(now["windows"], json!([]), "{now}");
    let all = h.ok("/v1/maintenance?state=all").await;
    assert_eq!(all["windows"][0]["window"], "weekend", "{all}");
    assert_eq!(all["windows"][0]["open"], false);
    assert_eq!(all["windows"][0]["next_open"], "2026-03-07T00:00:00Z");
    assert_eq!(all["clusters"][0]["cluster"], "maint");
    assert_eq!(all["clusters"][0]["suppresses_incidents"], true);
    // Why was it quiet at 02:14? The window open then, and the finding marked then.
    let then = h.ok("/v1/maintenance?at=2026-03-02T02:14:00Z").await;
    assert_eq!(then["windows"][0]["window"], "db-upgrade", "{then}");
    assert_eq!(then["windows"][0]["open_until"], "2026-03-02T03:00:00Z");
    let finding_then = h
        .ok("/v1/findings/maint/pod:crashloop:db%2Fpostgres?at=2026-03-02T02:30:00Z")
        .await;
    let mark = &finding_then["finding"]["in_maintenance"];
    assert_eq!(mark["windows"], json!(["db-upgrade"]), "{finding_then}");
    assert_eq!(mark["incident_deferred"], true);
    // No incident while covered; one when the window ended, its timeline saying so.
    let incidents_then = h.ok("/v1/incidents?at=2026-03-02T02:30:00Z").await;
    assert_eq!(incidents_then["incidents"], json!([]), "{incidents_then}");
    let incidents = h.ok("/v1/incidents").await;
    let id = incidents["incidents"][0]["id"].as_str().unwrap().to_owned();
    let timeline = h.ok(&format!("/v1/incidents/{id}/timeline")).await;
    assert!(
        timeline.to_string().contains("maintenance_ended"),
        "{timeline}"
    );

    // The finding's lane draws the window where it was open.
    let (status, page) = h
        .call(
            "GET",
            "/findings/maint/pod:crashloop:db%2Fpostgres",
            String::new(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("class=\"maint\" data-window=\"db-upgrade\""),
        "{page}"
    );
    // The postmortem names it (the incident opened at 03:05, after it: it overlapped none).
    let (status, markdown) = h
        .call(
            "GET",
            &format!("/v1/incidents/{id}/postmortem?format=md"),
            String::new(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(markdown.contains("## Maintenance windows"), "{markdown}");
    // The page lists the windows in effect.
    let (status, page) = h
        .call("GET", "/maintenance?state=all", String::new(), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-window=\"weekend\""), "{page}");
    let (status, _) = h
        .call("GET", "/maintenance?state=sometimes", String::new(), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
