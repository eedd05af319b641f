//! `POST /v1/traces` through the router over a real redb file and the real writer: OTLP
//! protobuf (plain and gzip) and OTLP/JSON stored as `span.recorded` events once however often
//! they are re-sent, unmappable spans in quarantine and counted in `partial_success`, refused
//! bodies (not OTLP, not gzip, a zip bomb, too many spans, other content types) answered with a
//! `google.rpc.Status` in the request's encoding and nothing stored.

use std::io::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use tidemark_server::{AppState, Ingest, IngestLimits, Writer, router};
use tidemark_store::{Store, StoreConfig};
use tower::ServiceExt;

/// `google.rpc.Status` as the test reads it (an independent definition of the same fields).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

struct Harness {
    app: axum::Router,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

const MAX_BODY_BYTES: usize = 1 << 20;

fn harness(max_items_per_request: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::open(dir.path().join("otlp.redb"), StoreConfig::default()).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store: store.clone(),
            ingest: Ingest::Local(client),
            max_body_bytes: MAX_BODY_BYTES,
            limits: IngestLimits {
                max_items_per_request,
                ..IngestLimits::default()
            },
            auth: tidemark_server::AuthPolicy::Open,
            bridge: Default::default(),
            otlp: Arc::new(tidemark_server::OtlpConfig {
                default_cluster: "lab".into(),
            }),
            metrics: Default::default(),
            time_travel: Default::default(),
        }),
        store,
        _dir: dir,
    }
}

impl Harness {
    async fn call(&self, request: Request<Body>) -> (StatusCode, Option<String>, Vec<u8>) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, bytes.to_vec())
    }

    async fn post(
        &self,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Option<String>, Vec<u8>) {
        let mut request = Request::post("/v1/traces").header("content-type", content_type);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        self.call(request.body(Body::from(body)).unwrap()).await
    }

    async fn get(&self, uri: &str) -> Vec<u8> {
        let (status, _, body) = self
            .call(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        body
    }

    async fn get_json(&self, uri: &str) -> Value {
        serde_json::from_slice(&self.get(uri).await).unwrap()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

fn span(trace: u8, id: u8, parent: Option<u8>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("op-{id}"),
        start_time_unix_nano: 1_772_460_000_000_000_000,
        end_time_unix_nano: 1_772_460_001_000_000_000,
        ..Span::default()
    }
}

fn request(cluster: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    let mut attributes = vec![text("service.name", "checkout")];
    attributes.extend(cluster.map(|c| text("k8s.cluster.name", c)));
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const PROTOBUF: &str = "application/x-protobuf";

#[tokio::test]
async fn protobuf_spans_are_stored_once_and_an_unmappable_one_is_quarantined_and_counted() {
    let h = harness(10_000);
    let mut bad = span(0xab, 3, Some(1));
    bad.trace_id.truncate(15);
    let body = request(
        Some("prod-eu"),
        vec![span(0xab, 1, None), span(0xab, 2, Some(1)), bad],
    )
    .encode_to_vec();
    for (attempt, encoding) in [(0, None), (1, Some("gzip"))] {
        let sent = if encoding.is_some() {
            gzip(&body)
        } else {
            body.clone()
        };
        let (status, content_type, answer) = h.post(PROTOBUF, encoding, sent).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}");
        assert_eq!(content_type.as_deref(), Some(PROTOBUF));
        let answer = ExportTraceServiceResponse::decode(&answer[..]).unwrap();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 1);
        assert!(
            partial.error_message.contains("trace_id is 15 bytes"),
            "{}",
            partial.error_message
        );
        // The re-sent spans are duplicates: two events however often they come.
        assert_eq!(h.store.checkpoint(), 2, "attempt {attempt}");
    }
    let events = h.get_json("/v1/events?source=otlp").await;
    let event = &events["events"][0]["event"];
    assert_eq!(
        event["id"],
        format!("otlp:{}:{}", "ab".repeat(16), "01".repeat(8))
    );
    assert_eq!(event["cluster"], "prod-eu");
    assert_eq!(event["data"]["service"], "checkout");
    assert_eq!(event["data"]["status"], "unset");
    // The bad span is one quarantine record, seen twice, readable as OTLP/JSON.
    let quarantine = h.get_json("/v1/quarantine").await["quarantine"].clone();
    assert_eq!(quarantine.as_array().unwrap().len(), 1, "{quarantine}");
    let record = &quarantine[0];
    assert!(
        record["origin"]
            .as_str()
            .unwrap()
            .ends_with("otlp resource_spans[0].scope_spans[0].spans[2]"),
        "{record}"
    );
    assert!(record.to_string().contains("op-3"), "{record}");
    let metrics = String::from_utf8(h.get("/metrics").await).unwrap();
    for line in [
        "tidemark_otlp_spans_total{outcome=\"accepted\"} 2",
        "tidemark_otlp_spans_total{outcome=\"duplicate\"} 2",
        "tidemark_otlp_spans_total{outcome=\"rejected\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
}

#[tokio::test]
async fn otlp_json_as_the_specification_shows_it_is_answered_in_json() {
    let h = harness(10_000);
    // From the OTLP specification's example shape: hex ids, string times, integer enums.
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
            "scope": {"name": "my.library", "version": "1.0.0"},
            "spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "parentSpanId": "eee19b7ec3c1b173",
                "name": "I'm a server span",
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
                "kind": 2,
                "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}],
                "status": {"code": 1}
            }]
        }]
    }]});
    let (status, content_type, answer) = h
        .post("application/json", None, body.to_string().into_bytes())
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap(), json!({}));
    let events = h.get_json("/v1/events?source=otlp").await;
    let event = &events["events"][0]["event"];
    assert_eq!(
        event["id"],
        "otlp:5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174"
    );
    assert_eq!(event["cluster"], "lab", "the configured default cluster");
    assert_eq!(event["time"], "2018-12-13T14:51:01Z");
    assert_eq!(
        event["data"],
        json!({"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
               "parent_span_id": "eee19b7ec3c1b173", "name": "I'm a server span",
               "service": "my.service", "start": "2018-12-13T14:51:00Z",
               "end": "2018-12-13T14:51:01Z", "status": "ok"})
    );
    // A rejected span in JSON: partialSuccess with the int64 as a string.
    let bad = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "", "spanId": "01", "name": "x"}]}]}]});
    let (status, _, answer) = h
        .post("application/json", None, bad.to_string().into_bytes())
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1", "{answer}");
}

#[tokio::test]
async fn refused_requests_get_a_status_in_their_encoding_and_store_nothing() {
    let h = harness(3);
    // Not OTLP: 400, the body kept in quarantine once however often it comes.
    for _ in 0..2 {
        let (status, content_type, answer) = h.post(PROTOBUF, None, vec![0xff; 7]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type.as_deref(), Some(PROTOBUF));
        let answer = RpcStatus::decode(&answer[..]).unwrap();
        assert_eq!(answer.code, 3);
        assert!(
            answer
                .message
                .contains("not an OTLP ExportTraceServiceRequest"),
            "{}",
            answer.message
        );
    }
    let (status, _, answer) = h.post("application/json", None, b"[1]".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["code"], 3, "{answer}");
    let quarantine = h.get_json("/v1/quarantine").await["quarantine"].clone();
    assert_eq!(quarantine.as_array().unwrap().len(), 2, "{quarantine}");
    // Said to be gzip but is not: 400.
    let (status, ..) = h.post(PROTOBUF, Some("gzip"), b"plain".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A zip bomb: 64 MiB of zeros in about 64 KB, refused after inflating the limit.
    let bomb = gzip(&vec![0; 64 << 20]);
    assert!(bomb.len() < MAX_BODY_BYTES);
    let (status, _, answer) = h.post(PROTOBUF, Some("gzip"), bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(RpcStatus::decode(&answer[..]).unwrap().code, 8);
    // More spans than --max-items-per-request: 413, nothing stored.
    let many = request(None, (1..=4).map(|i| span(1, i, None)).collect()).encode_to_vec();
    let (status, _, answer) = h.post(PROTOBUF, None, many).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let message = RpcStatus::decode(&answer[..]).unwrap().message;
    assert!(message.contains("4 spans, more than 3"), "{message}");
    // Other content types and encodings: 415.
    let (status, ..) = h.post("text/plain", None, b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, answer) = h.post("application/json", Some("br"), b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert!(
        answer["message"].as_str().unwrap().contains("`br`"),
        "{answer}"
    );
    assert_eq!(h.store.checkpoint(), 0);
    // An empty request is a success.
    let (status, _, answer) = h.post(PROTOBUF, None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(answer.is_empty());
}
