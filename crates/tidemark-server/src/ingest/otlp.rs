//! OTLP/HTTP traces as store inputs: an `ExportTraceServiceRequest` (protobuf or OTLP/JSON, the
//! official definitions of `opentelemetry-proto`) read from a body, and each of its spans
//! mapped to one `span.recorded` event, or rejected alone with what is wrong with it. Pure: no
//! IO, no clock; the route (`routes/otlp.rs`) does the rest.
//!
//! The mapping (docs/api.md, "POST /v1/traces", says the same for users):
//! - `id`: `otlp:` + the trace id + `:` + the span id, both lowercase hex, so an exporter's
//!   retry of a span is answered `duplicate` and stored once.
//! - `source`: `otlp`; `type`: `span.recorded`; `time`: the span's end (its start when the end
//!   is 0).
//! - `cluster`: the resource attribute [`CLUSTER_ATTRIBUTE`] (`k8s.cluster.name`, the
//!   OpenTelemetry semantic convention), else [`OtlpConfig::default_cluster`](crate::OtlpConfig)
//!   (`--otlp-default-cluster`, `default`). Present but not a non-blank string: the span is
//!   rejected (a trace judged in the wrong cluster would be silently wrong).
//! - `data.service`: the resource attribute `service.name` when it is a non-blank string, else
//!   `unknown_service` (what the SDKs send when none is set); `trace_id`, `span_id`,
//!   `parent_span_id` (absent when empty), `name`, `start`, `end` (absent when 0), `status`
//!   (`status.code` 0 unset, 1 ok, 2 error).
//! - Not kept: other attributes (resource, scope, span), kind, events, links, trace state,
//!   flags, the status message, the scope, dropped counts, schema URLs.
//!
//! Every event is built as its wire JSON and read back through [`tidemark_core::decode_event`],
//! so an OTLP span passes exactly the checks a JSON producer's event does.

use std::collections::BTreeMap;

pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde::Serialize;
use serde_json::Value;
use tidemark_core::Timestamp;

use super::Item;
use crate::state::OtlpConfig;

/// The resource attribute that names a span's cluster (OpenTelemetry semantic conventions).
pub const CLUSTER_ATTRIBUTE: &str = "k8s.cluster.name";
/// The resource attribute that names a span's service.
pub const SERVICE_ATTRIBUTE: &str = "service.name";
/// The service of a span whose resource names none (as the OpenTelemetry SDKs say it).
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// The `source` of every event made from OTLP.
pub const SOURCE: &str = "otlp";
/// The longest `partial_success.error_message`, in bytes.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1_024;
/// How an OTLP body is encoded (its `Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// The encoding of a media type (`type/subtype`, lower case), if OTLP has it.
    pub fn of_media_type(media: &str) -> Option<Self> {
        match media {
            "application/x-protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    /// The media type answers in this encoding are sent as.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Why a body is not an `ExportTraceServiceRequest`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestDecodeError {
    /// Not the protobuf message.
    #[error(
        "the body is not an OTLP ExportTraceServiceRequest in protobuf ({0}): send the \
         exporter's http/protobuf body as it is (gzip-compressed with `Content-Encoding: gzip`)"
    )]
    Protobuf(#[from] prost::DecodeError),
    /// Not the OTLP/JSON message.
    #[error(
        "the body is not an OTLP/JSON ExportTraceServiceRequest ({0}): send \
         {{\"resourceSpans\": [...]}} with hex trace and span ids"
    )]
    Json(#[from] serde_json::Error),
}

/// Reads an `ExportTraceServiceRequest` from a (decompressed) body.
pub fn decode_request(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, RequestDecodeError> {
    match encoding {
        Encoding::Protobuf => Ok(ExportTraceServiceRequest::decode(body)?),
        Encoding::Json => {
            let mut value: Value = serde_json::from_slice(body)?;
            normalize_json(&mut value);
            Ok(serde_json::from_value(value)?)
        }
    }
}

/// The fields `opentelemetry-proto`'s serde reads only as strings, though OTLP/JSON (the
/// protobuf JSON mapping) allows a 64-bit integer as a number too.
const NANOS_FIELDS: [&str; 3] = ["startTimeUnixNano", "endTimeUnixNano", "timeUnixNano"];

/// Fixes what `opentelemetry-proto`'s serde reads differently from the OTLP/JSON encoding: a
/// request without `resourceSpans` is an empty request (the crate requires the field), times
/// given as JSON numbers are read as their decimal strings, and an attribute whose value is
/// `{}` (an empty `AnyValue`, which the crate refuses) has no value.
fn normalize_json(value: &mut Value) {
    if let Value::Object(root) = value
        && !root.contains_key("resourceSpans")
    {
        root.insert("resourceSpans".into(), Value::Array(Vec::new()));
    }
    normalize_numbers(value);
}

fn normalize_numbers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if let Value::Number(number) = field
                    && NANOS_FIELDS.contains(&key.as_str())
                {
                    *field = Value::String(number.to_string());
                } else if key == "value" && field.as_object().is_some_and(|o| o.is_empty()) {
                    *field = Value::Null;
                } else {
                    normalize_numbers(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// How many spans a request holds (the limit counts them before any is mapped).
pub fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// What a resource says of its spans.
struct ResourceFacts<'a> {
    service: &'a str,
    /// The cluster, or why the resource's cluster attribute cannot be one.
    cluster: Result<&'a str, String>,
}

/// The string value of a resource's first attribute `key`: `None` when absent, `Err` with a
/// description of the value when it is not a string.
fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<Result<&'a str, String>> {
    let attribute = attributes.iter().find(|a| a.key == key)?;
    Some(
        match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(text)) => Ok(text.as_str()),
            Some(other) => Err(format!("{other:?}")),
            None => Err("an empty value".to_owned()),
        },
    )
}

fn resource_facts<'a>(resource: Option<&'a Resource>, config: &'a OtlpConfig) -> ResourceFacts<'a> {
    let attributes = resource.map_or(&[][..], |r| &r.attributes[..]);
    let service = match string_attribute(attributes, SERVICE_ATTRIBUTE) {
        Some(Ok(name)) if !name.trim().is_empty() => name,
        _ => UNKNOWN_SERVICE,
    };
    let cluster = match string_attribute(attributes, CLUSTER_ATTRIBUTE) {
        None => Ok(config.default_cluster.as_str()),
        Some(Ok(name)) if !name.trim().is_empty() => Ok(name),
        Some(Ok(_)) => Err(format!(
            "the resource attribute `{CLUSTER_ATTRIBUTE}` is blank: set it to the cluster's \
             name, or leave it out for --otlp-default-cluster"
        )),
        Some(Err(found)) => Err(format!(
            "the resource attribute `{CLUSTER_ATTRIBUTE}` is not a string ({found}): set it \
             to the cluster's name as a string"
        )),
    };
    ResourceFacts { service, cluster }
}

/// The wire JSON of a span's event, borrowed.
#[derive(Serialize)]
struct EventJson<'a> {
    id: &'a str,
    schema: u32,
    #[serde(rename = "type")]
    event_type: &'static str,
    time: String,
    source: &'static str,
    cluster: &'a str,
    data: SpanJson<'a>,
}

#[derive(Serialize)]
struct SpanJson<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    parent_span_id: Option<String>,
    name: &'a str,
    service: &'a str,
    start: String,
    end: Option<String>,
    status: &'static str,
}

/// An id of `bytes` bytes, not all zero, as lowercase hex; else what is wrong with it.
fn hex_id(id: &[u8], field: &str, bytes: usize) -> Result<String, String> {
    if id.len() != bytes {
        return Err(format!(
            "{field} is {} bytes: OTLP {field}s are {bytes} bytes, not all zero",
            id.len()
        ));
    }
    if id.iter().all(|b| *b == 0) {
        return Err(format!(
            "{field} is all zero: OTLP {field}s are {bytes} bytes, not all zero"
        ));
    }
    let mut hex = String::with_capacity(bytes * 2);
    for byte in id {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

/// Unix nanoseconds as an instant; else what is wrong with them.
fn instant(nanos: u64, field: &str) -> Result<Timestamp, String> {
    i64::try_from(nanos)
        .map(Timestamp::from_unix_nanos)
        .map_err(|_| {
            format!(
                "{field} {nanos} is past the supported range (years {} to {})",
                tidemark_core::timestamp::FIRST_YEAR,
                tidemark_core::timestamp::LAST_YEAR
            )
        })
}

/// One span's event, or what is wrong with it (without saying where: the origin does).
fn span_event(span: &Span, facts: &ResourceFacts<'_>) -> Result<tidemark_core::Event, String> {
    let cluster = facts.cluster.as_ref().map_err(Clone::clone)?;
    let trace_id = hex_id(&span.trace_id, "trace_id", 16)?;
    let span_id = hex_id(&span.span_id, "span_id", 8)?;
    let parent_span_id = if span.parent_span_id.is_empty() {
        None
    } else {
        Some(
            hex_id(&span.parent_span_id, "parent_span_id", 8).map_err(|problem| {
                format!("{problem} (a root span has an empty parent_span_id)")
            })?,
        )
    };
    if span.name.trim().is_empty() {
        return Err("the span's name is empty: OTLP requires a name".to_owned());
    }
    let status = match span.status.as_ref().map_or(0, |s| s.code) {
        0 => "unset",
        1 => "ok",
        2 => "error",
        other => {
            return Err(format!(
                "status.code {other} is not an OTLP status code (0 unset, 1 ok, 2 error)"
            ));
        }
    };
    let start = instant(span.start_time_unix_nano, "start_time_unix_nano")?;
    let end = match span.end_time_unix_nano {
        0 => None,
        nanos => Some(instant(nanos, "end_time_unix_nano")?),
    };
    let id = format!("otlp:{trace_id}:{span_id}");
    let json = EventJson {
        id: &id,
        schema: tidemark_core::event::CURRENT_SCHEMA,
        event_type: "span.recorded",
        time: end.unwrap_or(start).to_rfc3339(),
        source: SOURCE,
        cluster,
        data: SpanJson {
            trace_id: &trace_id,
            span_id: &span_id,
            parent_span_id,
            name: &span.name,
            service: facts.service,
            start: start.to_rfc3339(),
            end: end.map(Timestamp::to_rfc3339),
            status,
        },
    };
    let text = serde_json::to_string(&json).map_err(|e| e.to_string())?;
    tidemark_core::decode_event(&text).map_err(|error| match &error.field {
        Some(field) => format!("as an event, field `{field}`: {}", error.problem),
        None => format!("as an event: {}", error.problem),
    })
}

/// Every span of a request as an item, in request order: its event, or (when it cannot be
/// mapped) the span re-encoded as OTLP/JSON, rejected with the reason, from `origin`'s
/// `resource_spans[i].scope_spans[j].spans[k]`.
pub fn items(request: &ExportTraceServiceRequest, config: &OtlpConfig, origin: &str) -> Vec<Item> {
    let mut items = Vec::with_capacity(span_count(request));
    for (r, resource_spans) in request.resource_spans.iter().enumerate() {
        let facts = resource_facts(resource_spans.resource.as_ref(), config);
        for (s, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            for (k, span) in scope_spans.spans.iter().enumerate() {
                items.push(match span_event(span, &facts) {
                    Ok(event) => Item::event(event),
                    Err(problem) => Item::rejected(
                        serde_json::to_vec(span).unwrap_or_default(),
                        format!("otlp span: {problem}"),
                        format!("{origin} otlp resource_spans[{r}].scope_spans[{s}].spans[{k}]"),
                    ),
                });
            }
        }
    }
    items
}

/// The `partial_success.error_message` of rejected spans: how many, and their reasons counted,
/// most frequent first, at most [`MAX_ERROR_MESSAGE_BYTES`] bytes.
pub fn error_message<'a>(reasons: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in reasons {
        *counts.entry(reason).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let mut ordered: Vec<(&str, usize)> = counts.into_iter().collect();
    ordered.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut message = format!(
        "{total} span(s) could not be stored as span.recorded events and are kept in Tidemark's \
         quarantine (GET /v1/quarantine): "
    );
    for (n, (reason, count)) in ordered.iter().enumerate() {
        let part = format!("{}{reason} ({count})", if n == 0 { "" } else { "; " });
        if message.len() + part.len() > MAX_ERROR_MESSAGE_BYTES {
            let rest = ordered.len() - n;
            let more = format!("; {rest} more reason(s)");
            if message.len() + more.len() <= MAX_ERROR_MESSAGE_BYTES {
                message.push_str(&more);
            }
            break;
        }
        message.push_str(&part);
    }
    truncate_at_char(&mut message, MAX_ERROR_MESSAGE_BYTES);
    message
}

fn truncate_at_char(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
    use tidemark_core::Payload;
    use tidemark_core::event::SpanStatus;
    use tidemark_store::Input;

    use super::*;

    fn attribute(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn text(value: &str) -> any_value::Value {
        any_value::Value::StringValue(value.to_owned())
    }

    fn span(trace: u8, id: u8, parent: Option<u8>) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("op-{id}"),
            start_time_unix_nano: 1_772_460_000_000_000_000,
            end_time_unix_nano: 1_772_460_001_500_000_000,
            status: Some(Status {
                code: 2,
                message: "boom".into(),
            }),
            ..Span::default()
        }
    }

    fn request(attributes: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
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

    fn event(item: &Item) -> &tidemark_core::Event {
        match &item.input {
            Input::Event(event) => event,
            other => panic!("{other:?}"),
        }
    }

    fn rejected(item: &Item) -> (&str, &str, &[u8]) {
        match &item.input {
            Input::Rejected {
                reason,
                origin,
                raw,
            } => (reason, origin, raw),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_span_becomes_a_span_recorded_event_with_a_deterministic_id() {
        let request = request(
            vec![
                attribute("service.name", text("checkout")),
                attribute("k8s.cluster.name", text("prod-eu")),
                attribute("host.name", text("n1")),
            ],
            vec![span(0xab, 0x01, None), span(0xab, 0x02, Some(0x01))],
        );
        let items = items(&request, &OtlpConfig::default(), "http 127.0.0.1:1");
        assert_eq!(items.len(), 2);
        let root = event(&items[0]);
        assert_eq!(
            root.id.0,
            format!("otlp:{}:{}", "ab".repeat(16), "01".repeat(8))
        );
        assert_eq!(root.source, "otlp");
        assert_eq!(root.cluster, "prod-eu");
        assert_eq!(root.time.to_rfc3339(), "2026-03-02T14:00:01.5Z");
        let Payload::SpanRecorded(data) = &root.payload else {
            panic!("{root:?}");
        };
        assert_eq!(data.trace_id, "ab".repeat(16));
        assert_eq!(data.parent_span_id, None);
        assert_eq!(data.name, "op-1");
        assert_eq!(data.service, "checkout");
        assert_eq!(data.start.to_rfc3339(), "2026-03-02T14:00:00Z");
        assert_eq!(data.status, SpanStatus::Error);
        let Payload::SpanRecorded(child) = &event(&items[1]).payload else {
            panic!();
        };
        assert_eq!(child.parent_span_id.as_deref(), Some("0101010101010101"));
        // The same span again is the same event: an exporter's retry is a duplicate.
        let again = super::items(&request, &OtlpConfig::default(), "http 127.0.0.1:2");
        assert_eq!(event(&again[0]), root);
    }

    #[test]
    fn defaults_for_a_resource_without_cluster_or_service_and_an_open_span() {
        let mut open = span(1, 1, None);
        open.end_time_unix_nano = 0;
        open.status = None;
        let config = OtlpConfig {
            default_cluster: "lab".into(),
        };
        let items = items(&request(Vec::new(), vec![open]), &config, "http");
        let event = event(&items[0]);
        assert_eq!(event.cluster, "lab");
        assert_eq!(event.time.to_rfc3339(), "2026-03-02T14:00:00Z");
        let Payload::SpanRecorded(data) = &event.payload else {
            panic!();
        };
        assert_eq!(data.service, "unknown_service");
        assert_eq!(data.end, None);
        assert_eq!(data.status, SpanStatus::Unset);
    }

    #[test]
    fn spans_that_cannot_be_mapped_are_rejected_alone_with_the_reason_and_place() {
        let good = span(1, 1, None);
        type Spoil = Box<dyn Fn(&mut Span)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (
                Box::new(|s| s.trace_id = vec![1; 15]),
                "trace_id is 15 bytes",
            ),
            (
                Box::new(|s| s.trace_id = vec![0; 16]),
                "trace_id is all zero",
            ),
            (Box::new(|s| s.span_id = Vec::new()), "span_id is 0 bytes"),
            (Box::new(|s| s.span_id = vec![0; 8]), "span_id is all zero"),
            (
                Box::new(|s| s.parent_span_id = vec![1; 4]),
                "parent_span_id is 4 bytes",
            ),
            (Box::new(|s| s.name = " ".into()), "name is empty"),
            (
                Box::new(|s| s.end_time_unix_nano = u64::MAX),
                "end_time_unix_nano 18446744073709551615 is past the supported range",
            ),
            (
                // 2262-01-01: an i64 of nanoseconds, past the last supported year.
                Box::new(|s| s.end_time_unix_nano = 9_214_646_400_000_000_000),
                "as an event, field `time`: ",
            ),
            (
                Box::new(|s| {
                    s.status = Some(Status {
                        code: 7,
                        message: String::new(),
                    });
                }),
                "status.code 7",
            ),
        ];
        for (spoil, expected) in cases {
            let mut bad = span(1, 2, Some(1));
            spoil(&mut bad);
            let items = items(
                &request(Vec::new(), vec![good.clone(), bad]),
                &OtlpConfig::default(),
                "http 127.0.0.1:9",
            );
            event(&items[0]);
            let (reason, origin, raw) = rejected(&items[1]);
            assert!(reason.starts_with("otlp span: "), "{reason}");
            assert!(reason.contains(expected), "{reason} lacks {expected}");
            assert_eq!(items[1].problem.as_deref(), Some(reason));
            assert_eq!(
                origin,
                "http 127.0.0.1:9 otlp resource_spans[0].scope_spans[0].spans[1]"
            );
            // A person reads the span in quarantine as OTLP/JSON.
            let raw: Value = serde_json::from_slice(raw).unwrap();
            assert!(raw["startTimeUnixNano"].is_string(), "{raw}");
        }
    }

    #[test]
    fn a_cluster_attribute_that_is_not_a_name_rejects_the_resource_spans() {
        for value in [text(" "), any_value::Value::IntValue(3)] {
            let items = items(
                &request(
                    vec![attribute("k8s.cluster.name", value)],
                    vec![span(1, 1, None)],
                ),
                &OtlpConfig::default(),
                "http",
            );
            let (reason, ..) = rejected(&items[0]);
            assert!(reason.contains("`k8s.cluster.name`"), "{reason}");
        }
    }

    #[test]
    fn protobuf_and_otlp_json_read_the_same_request() {
        let request = request(
            vec![attribute("service.name", text("api"))],
            vec![span(0xab, 0x01, None)],
        );
        let protobuf = request.encode_to_vec();
        assert_eq!(
            decode_request(&protobuf, Encoding::Protobuf).unwrap(),
            request
        );
        // OTLP/JSON as the specification shows it: hex ids, times as strings, enums as integers.
        let json = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"api"}}}}]}},
            "scopeSpans":[{{"scope":{{"name":"lib"}},"spans":[{{"traceId":"{}","spanId":"{}","parentSpanId":"",
            "name":"op-1","kind":2,"startTimeUnixNano":"1772460000000000000","endTimeUnixNano":1772460001500000000,
            "attributes":[{{"key":"http.status","value":{{"intValue":"500"}}}},{{"key":"e","value":{{}}}}],
            "status":{{"code":2,"message":"boom"}},"unknownField":true}}]}}]}}]}}"#,
            "AB".repeat(16),
            "01".repeat(8)
        );
        let decoded = decode_request(json.as_bytes(), Encoding::Json).unwrap();
        let items_json = items(&decoded, &OtlpConfig::default(), "http");
        let items_proto = items(&request, &OtlpConfig::default(), "http");
        assert_eq!(event(&items_json[0]), event(&items_proto[0]));
        // An empty request is a request.
        let empty = decode_request(b"{}", Encoding::Json).unwrap();
        assert_eq!(span_count(&empty), 0);
        for bad in [&b"[1]"[..], b"{\"resourceSpans\": 3}", b"\xff", b""] {
            assert!(decode_request(bad, Encoding::Json).is_err());
        }
        assert!(decode_request(b"\xff\xff\xff", Encoding::Protobuf).is_err());
    }

    #[test]
    fn the_error_message_counts_reasons_within_its_bound() {
        let long = |n: u8| format!("{n}{}", "x".repeat(400));
        let (one, two, three) = (long(1), long(2), long(3));
        let reasons = [&one, &one, &one, "a", "a", &two, &three, "c"];
        let message = error_message(reasons.iter().map(|r| r.as_ref()));
        assert!(message.starts_with("8 span(s)"), "{message}");
        assert!(message.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(
            message.contains(&format!("{one} (3); a (2); {two} (1)")),
            "{message}"
        );
        assert!(message.contains("more reason(s)"), "{message}");
    }
}
