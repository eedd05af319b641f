//! Ingest cannot be amplified: items per request are capped, answers summarise rejected items
//! past a bound, identical rejected items are quarantined once with a count, the quarantine is
//! bounded and what it drops is counted; the Alertmanager bridge stores a group's good alerts
//! beside one it cannot translate. Through the router, over a real redb file and the real writer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tidemark_server::{AppState, Ingest, IngestLimits, Writer, router};
use tidemark_store::{QuarantineLimits, Store, StoreConfig};
use tower::ServiceExt;

struct Harness {
    app: axum::Router,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

fn harness(limits: IngestLimits, quarantine: QuarantineLimits) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        quarantine,
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path().join("ingest.redb"), config).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store: store.clone(),
            ingest: Ingest::Local(client),
            max_body_bytes: 8 << 20,
            limits,
            auth: tidemark_server::AuthPolicy::Open,
            bridge: Default::default(),
            otlp: Default::default(),
            metrics: Default::default(),
            time_travel: Default::default(),
        }),
        store,
        _dir: dir,
    }
}

impl Harness {
    async fn call(&self, method: &str, uri: &str, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            // What Alertmanager and JSON producers send; the framing follows the body's shape.
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    async fn post(&self, uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let (status, bytes) = self.call("POST", uri, body).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// The quarantine's entries (one page holds them all here).
    async fn quarantine(&self) -> Value {
        let (status, bytes) = self.call("GET", "/v1/quarantine", Body::empty()).await;
        assert_eq!(status, StatusCode::OK);
        let mut page: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(page["next"], Value::Null, "{page}");
        page["quarantine"].take()
    }

    async fn metrics(&self) -> String {
        let (_, bytes) = self.call("GET", "/metrics", Body::empty()).await;
        String::from_utf8(bytes).unwrap()
    }
}

fn note(id: &str) -> String {
    json!({"id": id, "schema": 1, "type": "note.added", "time": "2026-03-02T15:00:00Z", "source": "me",
           "cluster": "pw-prod", "data": {"author": "me", "kind": "observation", "text": "looking"}})
    .to_string()
}

#[tokio::test]
async fn the_issues_body_of_four_million_items_is_refused_whole_naming_the_limit() {
    let h = harness(IngestLimits::default(), QuarantineLimits::default());
    // 8 MB of `1\n`: 4,000,000 items, under the body limit.
    let body = "1\n".repeat(4_000_000);
    let (status, answer) = h.post("/v1/events", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["code"], "too_many_items");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("10000 items") && message.contains("--max-items-per-request"),
        "{message}"
    );
    // The same as a JSON array.
    let array = format!("[{}1]", "1,".repeat(20_000));
    let (status, answer) = h.post("/v1/events", array).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    // Nothing stored, and the refusals are counted.
    assert_eq!(h.quarantine().await, json!([]));
    assert_eq!(h.store.checkpoint(), 0);
    assert!(
        h.metrics()
            .await
            .contains("tidemark_ingest_requests_refused_total{limit=\"max_items_per_request\"} 2")
    );
}

#[tokio::test]
async fn many_identical_bad_items_are_one_quarantine_record_and_the_answer_summarises_them() {
    let h = harness(IngestLimits::default(), QuarantineLimits::default());
    let body = format!("{}\n{}", note("good"), "1\n".repeat(9_999));
    let (status, answer) = h.post("/v1/events", body.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (
            &answer["accepted"],
            &answer["rejected"],
            &answer["raw_not_kept"]
        ),
        (&json!(1), &json!(9_999), &json!(0))
    );
    // Every accepted item, the first 100 rejected ones, and the rest counted by reason.
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 101);
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(
        results[1],
        json!({"index": 1, "line": 2, "id": null, "status": "rejected",
               "reason": "event without a readable id: expected a JSON object (one event per line)",
               "quarantine_id": 1, "raw_kept": true})
    );
    assert_eq!(results[100]["line"], 101);
    assert_eq!(answer["rejected_not_listed"], 9_899);
    assert_eq!(
        answer["rejected_reasons"],
        json!([{"reason": "expected a JSON object (one event per line)", "count": 9_999}])
    );
    // The same request again: still one record, counted.
    let (status, _) = h.post("/v1/events", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let quarantine = h.quarantine().await;
    assert_eq!(quarantine.as_array().unwrap().len(), 1, "{quarantine}");
    assert_eq!(quarantine[0]["count"], 19_998);
    assert_eq!(quarantine[0]["raw"], "1");
    assert!(
        quarantine[0]["origin"]
            .as_str()
            .unwrap()
            .ends_with("line 2")
    );
}

#[tokio::test]
async fn past_the_quarantine_bound_raw_items_are_not_kept_and_the_drop_is_counted() {
    let limits = IngestLimits {
        max_items_per_request: 100,
        max_rejected_listed: 3,
    };
    let h = harness(
        limits,
        QuarantineLimits {
            max_records: 2,
            max_bytes: 1 << 20,
        },
    );
    let body: String = (0..5).map(|i| format!("{{\"bad\": {i}}}\n")).collect();
    let (status, answer) = h.post("/v1/events", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (&answer["rejected"], &answer["raw_not_kept"]),
        (&json!(5), &json!(3))
    );
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[1]["raw_kept"], true);
    assert_eq!(results[2]["raw_kept"], false);
    assert!(results[2].get("quarantine_id").is_none(), "{answer}");
    assert_eq!(answer["rejected_not_listed"], 2);
    assert_eq!(h.quarantine().await.as_array().unwrap().len(), 2);
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("tidemark_quarantine_dropped_total 3"),
        "{metrics}"
    );
    assert!(metrics.contains("tidemark_quarantined 2"), "{metrics}");
    assert_eq!(h.store.stats().unwrap().quarantine_dropped, 3);
    // An answer never lists more reasons than the bound either.
    let body: String = (0..10)
        .map(|i| format!("{{\"id\":\"x{i}\",\"schema\":1,\"type\":\"t{i}\"}}\n"))
        .collect();
    let (_, answer) = h.post("/v1/events", body).await;
    let reasons = answer["rejected_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 4, "{answer}");
    assert_eq!(reasons[3], json!({"reason": "other reasons", "count": 7}));
}

/// A webhook as Debian's Alertmanager 0.25 sends it: a group with a good alert, one without
/// `alertname` (its API accepts those), and one whose start it passes on but no event can hold.
fn webhook(extra_good: bool) -> String {
    let alert = |labels: Value, starts: &str, fingerprint: &str| {
        json!({"status": "firing", "labels": labels, "annotations": {}, "startsAt": starts,
               "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fingerprint})
    };
    let mut alerts = vec![
        alert(
            json!({"namespace": "ns", "pod": "p"}),
            "2026-12-06T07:43:06.806330475Z",
            "5b1531d93a0a490e",
        ),
        alert(
            json!({"alertname": "A", "namespace": "ns"}),
            "2026-12-06T07:43:06.806330475Z",
            "fff194a781f9165d",
        ),
        alert(
            json!({"alertname": "Old", "namespace": "ns"}),
            "1500-01-01T00:00:00Z",
            "adf7c4bf294237d3",
        ),
    ];
    if extra_good {
        alerts.push(alert(
            json!({"alertname": "B", "namespace": "ns"}),
            "2026-12-06T07:44:00Z",
            "0123456789abcdef",
        ));
    }
    json!({"receiver": "tm", "status": "firing", "alerts": alerts, "groupLabels": {"namespace": "ns"},
           "commonLabels": {"namespace": "ns"}, "commonAnnotations": {}, "externalURL": "http://vm:9093",
           "version": "4", "groupKey": "{}:{namespace=\"ns\"}", "truncatedAlerts": 0})
    .to_string()
}

#[tokio::test]
async fn the_bridge_stores_a_groups_good_alerts_beside_one_it_cannot_translate() {
    let h = harness(IngestLimits::default(), QuarantineLimits::default());
    let (status, answer) = h.post("/v1/bridges/alertmanager", webhook(false)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "2xx, so Alertmanager does not hold the group back: {answer}"
    );
    assert_eq!(
        (&answer["accepted"], &answer["rejected"]),
        (&json!(2), &json!(1))
    );
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["name"], "unnamed-5b1531d93a0a490e");
    assert_eq!(results[0]["name_derived"], true);
    assert_eq!(results[1]["name"], "A");
    assert!(results[1].get("name_derived").is_none());
    assert_eq!(results[2]["status"], "rejected");
    let reason = results[2]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("alertmanager alert: field `alert.startsAt`"),
        "{reason}"
    );

    // Re-sent every group_interval, once with a new alert in the group (which moves nothing):
    // the good alerts are duplicates, the new one is stored, the bad one stays one record.
    for extra in [false, true, true] {
        let (status, _) = h.post("/v1/bridges/alertmanager", webhook(extra)).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        h.store.checkpoint(),
        3,
        "A, the unnamed one and B, once each"
    );
    let quarantine = h.quarantine().await;
    assert_eq!(quarantine.as_array().unwrap().len(), 1, "{quarantine}");
    assert_eq!(quarantine[0]["count"], 4);
    let raw: Value = serde_json::from_str(quarantine[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(
        raw["labels"]["alertname"], "Old",
        "the alert itself is kept, not the group"
    );

    // A payload that is no webhook at all: 400, quarantined once however often it comes.
    for _ in 0..3 {
        let (status, answer) = h
            .post(
                "/v1/bridges/alertmanager",
                r#"{"version": "3", "alerts": []}"#,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("kept in quarantine as #2"),
            "{answer}"
        );
    }
    let quarantine = h.quarantine().await;
    assert_eq!(quarantine.as_array().unwrap().len(), 2, "{quarantine}");
    assert_eq!(quarantine[1]["count"], 3);
}
