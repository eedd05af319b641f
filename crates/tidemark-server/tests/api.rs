//! The HTTP API through the router (no socket), over a real redb file and the real writer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tidemark_server::{AppState, Ingest, Writer, router};
use tidemark_store::{Store, StoreConfig};
use tower::ServiceExt;

struct Harness {
    app: axum::Router,
    _dir: tempfile::TempDir,
}

fn harness(max_body_bytes: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("api.redb"), StoreConfig::default()).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store,
            ingest: Ingest::Local(client),
            max_body_bytes,
            limits: Default::default(),
            auth: tidemark_server::AuthPolicy::Open,
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
        body: impl Into<Body>,
        content_type: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// Posts events as `content_type` (JSON when `None`: the framing then comes from the body).
    async fn post(&self, body: &str, content_type: Option<&str>) -> (StatusCode, Value) {
        let content_type = content_type.unwrap_or("application/json");
        self.call("POST", "/v1/events", body.to_owned(), Some(content_type))
            .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, Body::empty(), None).await
    }
}

fn race_log() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../replay/auto-resolve-race/events.ndjson"),
    )
    .unwrap()
}

fn note(id: &str) -> String {
    json!({"id": id, "schema": 1, "type": "note.added", "time": "2026-03-02T15:00:00Z", "source": "me",
           "cluster": "pw-prod", "data": {"author": "me", "kind": "observation", "text": "looking"}}).to_string()
}

#[tokio::test]
async fn ndjson_array_and_single_event_are_all_accepted_and_deduped() {
    let h = harness(1 << 20);
    let (status, body) = h.post(&race_log(), Some("application/x-ndjson")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(9), Some(0))
    );
    assert_eq!(
        body["results"][8],
        json!({"index": 8, "line": 9, "id": "01JNQ7A0000000000000000009", "status": "accepted", "seq": 9})
    );

    let (status, body) = h
        .post(&format!("[{}, {}]", note("n1"), note("n1")), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"][0]["status"], "accepted");
    assert_eq!(
        body["results"][1],
        json!({"index": 1, "id": "n1", "status": "duplicate", "seq": 10})
    );

    let (_, body) = h.post(&note("n1"), Some("application/json")).await;
    assert_eq!(body["duplicates"], 1);
}

#[tokio::test]
async fn findings_filters_and_one_finding_with_its_timeline() {
    let h = harness(1 << 20);
    h.post(&race_log(), None).await;
    let (status, body) = h.get("/v1/findings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["count"].as_u64(), body["seq"].as_u64()),
        (Some(2), Some(9))
    );
    let (_, body) = h.get("/v1/findings?state=active").await;
    assert_eq!(
        body["findings"][0]["check_key"],
        "pod:crashloop:dnd/dnd-backend"
    );
    let (_, body) = h
        .get("/v1/findings?cluster=pw-prod&category=infra_drift&severity=warning&state=resolved")
        .await;
    assert_eq!(body["count"], 1);
    let (_, body) = h.get("/v1/findings?at=7&category=infra_drift").await;
    assert_eq!(
        (body["findings"][0]["state"].as_str(), body["seq"].as_u64()),
        (Some("active"), Some(7))
    );

    // check_keys with slashes work without escaping.
    let (status, body) = h
        .get("/v1/findings/pw-prod/pod:crashloop:dnd/dnd-backend")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["finding"]["state"], "active");
    let (_, body) = h.get("/v1/findings/pw-prod/proxied:domain:42").await;
    let timeline: Vec<(u64, Value)> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["changes"].clone()))
        .collect();
    assert_eq!(
        timeline,
        vec![(2, json!(["opened"])), (8, json!(["resolved_auto"]))]
    );
    assert_eq!(body["timeline"][1]["event"]["type"], "cycle.completed");

    let (status, body) = h
        .get("/v1/timeline?cluster=pw-prod&since=2026-03-02T14:10:00Z&limit=2")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![4, 5]
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_loses_nothing_accepted() {
    let h = harness(4096);
    h.post(&note("kept"), None).await;

    // Unknown type and missing field: rejected alone, quarantined, the good one stored.
    let batch = format!(
        "[{}, {}, {}]",
        note("good"),
        note("bad-type").replace("note.added", "note.deleted"),
        note("no-text").replace(r#","text":"looking""#, "")
    );
    let (status, body) = h.post(&batch, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(2))
    );
    let reason = body["results"][1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("event \"bad-type\": field `type`: unknown event type \"note.deleted\""),
        "{reason}"
    );
    assert_eq!(body["results"][1]["id"], "bad-type");
    let reason = body["results"][2]["reason"].as_str().unwrap();
    assert!(
        reason.contains("field `data`: missing field `text`"),
        "{reason}"
    );

    // Malformed JSON framing: refused whole, nothing stored.
    let (status, body) = h.post("[{\"id\": 1,", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");

    // Too large: 413 with a JSON error.
    let big = format!("[{}]", vec![note("x"); 60].join(","));
    let (status, body) = h.post(&big, None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("smaller batches")
    );

    // Empty body.
    let (status, _) = h.post("", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A body that is not JSON at all: refused whole (400), nothing stored or quarantined,
    // whatever the content type says.
    for content_type in [None, Some("application/json")] {
        let (status, body) = h.post("hello", content_type).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "bad_request");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("the body is not JSON"),
            "{body}"
        );
    }
    // One event pretty-printed over several lines is one event, not NDJSON.
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&note("pretty")).unwrap())
            .unwrap();
    let (status, body) = h.post(&pretty, Some("application/json")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1);

    // What was accepted is all there, and the rejects are in quarantine with their reasons.
    let (_, body) = h.get("/v1/timeline?cluster=pw-prod").await;
    let ids: Vec<&str> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["kept", "good", "pretty"]);
    let (_, body) = h.get("/v1/quarantine").await;
    let quarantine = body["quarantine"].as_array().unwrap();
    assert_eq!(quarantine.len(), 2, "{body}");
    assert_eq!(body["next"], Value::Null);
    assert!(
        quarantine[0]["raw"]
            .as_str()
            .unwrap()
            .contains("note.deleted")
    );
    assert!(
        quarantine[0]["origin"]
            .as_str()
            .unwrap()
            .starts_with("http item 1")
    );
}

#[tokio::test]
async fn the_quarantine_is_paged_like_every_list() {
    let h = harness(1 << 20);
    // Five distinct refused inputs: five records.
    let body: String = (0..5)
        .map(|i| {
            format!(
                "{}\n",
                note(&format!("bad-{i}")).replace("note.added", "note.deleted")
            )
        })
        .collect();
    let (status, _) = h.post(&body, Some("application/x-ndjson")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let mut ids = Vec::new();
    let mut uri = "/v1/quarantine?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = h.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let entries = page["quarantine"].as_array().unwrap();
        assert!(entries.len() <= 2);
        ids.extend(entries.iter().map(|e| e["id"].as_u64().unwrap()));
        match page["next"].as_u64() {
            Some(next) => {
                assert_eq!(
                    Some(next),
                    entries.last().map(|e| e["id"].as_u64().unwrap())
                );
                uri = format!("/v1/quarantine?limit=2&after={next}");
            }
            None => break,
        }
    }
    assert_eq!((ids, pages), (vec![1, 2, 3, 4, 5], 3));
    // A full last page has no `next` when nothing follows it.
    let (_, page) = h.get("/v1/quarantine?after=3").await;
    assert_eq!(page["next"], Value::Null);
    assert_eq!(page["quarantine"].as_array().unwrap().len(), 2);
    let (status, page) = h.get("/v1/quarantine?after=9007199254740992").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
}

/// A path whose parameters cannot be read (not UTF-8 once percent-decoded) is a 400 in the
/// API's JSON like every other error, not a plain text rejection.
#[tokio::test]
async fn a_path_that_cannot_be_read_answers_json_naming_the_path() {
    let h = harness(4096);
    for uri in [
        "/v1/incidents/%FF",
        "/v1/incidents/%FF/timeline",
        "/v1/findings/pw-prod/%C3%28",
        "/incidents/%FF",
    ] {
        let (status, body) = h.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["code"], "bad_request", "{uri}");
        assert!(
            body["message"].as_str().unwrap().starts_with("path: "),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_findings_and_bad_queries_answer_json() {
    let h = harness(4096);
    let (status, body) = h.get("/v1/findings/pw-prod/nothing").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = h.get("/v2/anything").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // A parameter the route cannot read: one message naming it and what it takes, for every
    // parameter of every route.
    for (uri, message) in [
        (
            "/v1/findings?state=bogus",
            "query parameter `state`: unknown value `bogus`, expected `active` or `resolved`",
        ),
        (
            "/v1/incidents?state=x",
            "query parameter `state`: unknown value `x`, expected one of `open`, `closed`, `merged`",
        ),
        (
            "/v1/quarantine?from=1",
            "unknown query parameter `from`: this route takes `after` or `limit`",
        ),
        ("/v1/timeline?limit=5", "missing query parameter `cluster`"),
        (
            "/v1/events?after=ten",
            "query parameter `after`: invalid digit found in string: expected a whole number",
        ),
    ] {
        let (status, body) = h.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["code"], "bad_request");
        assert_eq!(body["message"], message, "{uri}");
    }
    let (status, body) = h.get("/v1/findings?severity=fatal").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("query parameter `severity`: unknown value `fatal`, expected one of"),
        "{body}"
    );
    let (status, body) = h.get("/v1/findings?at=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("`at`"));
    let (status, body) = h.get("/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = h.get("/readyz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    // The store's count, as on a replica.
    assert_eq!(body["quarantined"], 0, "{body}");
}
