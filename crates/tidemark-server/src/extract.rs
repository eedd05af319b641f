//! Extractors whose rejection is an [`ApiError`]: the query string ([`ApiQuery`]), path
//! parameters ([`ApiPath`]) and ingest bodies ([`EventsBody`], [`WebhookBody`]). No handler
//! converts a rejection by hand, and every malformed request gets the same JSON error naming
//! what was wrong. Each also says what it takes in the OpenAPI document.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::openapi::{DescribeInput, OperationDoc, Schemas};
use crate::state::AppState;

/// The query string read into `T` (`#[serde(deny_unknown_fields)]` types refuse unknown
/// parameters); 400 naming the parameter and what it takes ([`ApiError::query_string`]).
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(query)| Self(query))
            .map_err(|rejection| ApiError::query_string(&rejection))
    }
}

/// The query parameters are `T`'s fields.
impl<T: JsonSchema> DescribeInput for ApiQuery<T> {
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc) {
        let schema = schemas.query::<T>();
        operation.query_parameters(&schema);
    }
}

/// A parameter a route takes several times (`label=a=1&label=b=2`): the query string's other
/// parameters are read into `T` as by [`ApiQuery`], and this one's values, in order, are set
/// apart (serde's urlencoded reader refuses a repeated key).
pub(crate) trait RepeatedParam {
    /// The parameter's name.
    const NAME: &'static str;
    /// Sets its values.
    fn set_repeated(&mut self, values: Vec<String>);
}

/// [`ApiQuery`] for a `T` with one [`RepeatedParam`].
#[derive(Debug)]
pub(crate) struct ApiQueryRepeated<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQueryRepeated<T>
where
    T: DeserializeOwned + RepeatedParam,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let mut repeated = Vec::new();
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name == T::NAME {
                repeated.push(value.into_owned());
            } else {
                rest.append_pair(&name, &value);
            }
        }
        let uri: axum::http::Uri = format!("/?{}", rest.finish())
            .parse()
            .map_err(|_| ApiError::bad_request("the query string is not a valid URI query"))?;
        let Query(mut query) = Query::<T>::try_from_uri(&uri)
            .map_err(|rejection| ApiError::query_string(&rejection))?;
        query.set_repeated(repeated);
        Ok(Self(query))
    }
}

/// The query parameters are `T`'s fields (the repeated one an array, sent as repeated keys).
impl<T: JsonSchema> DescribeInput for ApiQueryRepeated<T> {
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc) {
        let schema = schemas.query::<T>();
        operation.query_parameters(&schema);
    }
}

/// The path parameters read into `T` (a `String`, or a tuple of them in path order); 400 as
/// JSON when they cannot be ([`ApiError::path_params`]).
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(path)| Self(path))
            .map_err(|rejection| ApiError::path_params(&rejection))
    }
}

/// Path parameters are named by the route's path template (see `openapi::Route`).
impl<T> DescribeInput for ApiPath<T> {}

/// The whole body, at most `--max-body-bytes` (413 above, 400 when it cannot be read).
async fn body_within_limit(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(state.max_body_bytes)
        } else {
            ApiError::bad_request(e.body_text())
        }
    })
}

/// The body of `POST /v1/events`: one event, a JSON array of events, or NDJSON (parsed by
/// the `ingest` module, which answers each item).
#[derive(Debug)]
pub(crate) struct EventsBody(pub(crate) Bytes);

impl FromRequest<AppState> for EventsBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        body_within_limit(request, state).await.map(Self)
    }
}

impl DescribeInput for EventsBody {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.request_body = Some(
            json!({"required": true, "content": {"application/json": {"schema": {
                "description": "one event or a JSON array of events as `application/json`, or NDJSON (one event per line) as `application/x-ndjson`; other content types are answered 415",
                "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
            }}}}),
        );
        ingest_refusals(
            operation,
            "the body cannot be read as events at all: empty, not UTF-8, or not JSON (framed as one event or an array, it does not parse; an NDJSON line that does not is one rejected item, 422): nothing was stored",
        );
    }
}

/// The body of `POST /v1/bridges/alertmanager`: Alertmanager's webhook payload.
#[derive(Debug)]
pub(crate) struct WebhookBody(pub(crate) Bytes);

impl FromRequest<AppState> for WebhookBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        body_within_limit(request, state).await.map(Self)
    }
}

impl DescribeInput for WebhookBody {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.request_body = Some(
            json!({"required": true, "content": {"application/json": {"schema": alertmanager_payload()}}}),
        );
        ingest_refusals(
            operation,
            "the payload is not an Alertmanager version 4 webhook: nothing was stored, the payload is kept in quarantine once",
        );
    }
}

/// Alertmanager's webhook payload, as far as the bridge requires a shape.
fn alertmanager_payload() -> Value {
    json!({
        "type": "object",
        "description": "Alertmanager's webhook payload, version 4",
        "required": ["version", "alerts"],
        "properties": {
            "version": {"const": "4"},
            "commonLabels": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
            "alerts": {"type": "array", "items": {
                "description": "An alert as Alertmanager sends it: `status` (`firing` or `resolved`), `labels` and `annotations` (objects of strings; an alert without `alertname` is named `unnamed-` + its fingerprint), `startsAt`, `endsAt` (read when resolved; RFC 3339, years 1678 to 2261), `fingerprint` (computed from the labels when missing or null). Each alert is translated on its own, so no shape is required here: an alert that cannot become an event is rejected alone (its result says why, it is quarantined once) and the answer is still 200."
            }}
        }
    })
}

/// The body of `POST /v1/traces`: an OTLP/HTTP export request, its encoding (from the
/// `Content-Type`, which `content_type::otlp_body` checked) and its bytes, decompressed when
/// sent with `Content-Encoding: gzip`. Within `--max-body-bytes` both as sent and decompressed,
/// so a small body that inflates without bound (a zip bomb) is refused (413) after reading at
/// most the limit. Refusals are answered in OTLP's form (`routes/otlp.rs`).
#[derive(Debug)]
pub(crate) struct OtlpBody {
    pub(crate) encoding: crate::ingest::otlp::Encoding,
    pub(crate) bytes: Vec<u8>,
}

/// Why an OTLP body was refused, and in which encoding to say so (answered as OTLP says, by
/// `routes/otlp.rs`).
#[derive(Debug)]
pub(crate) struct OtlpRefusal {
    pub(crate) encoding: crate::ingest::otlp::Encoding,
    pub(crate) error: ApiError,
}

impl FromRequest<AppState> for OtlpBody {
    type Rejection = OtlpRefusal;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OtlpRefusal> {
        use crate::ingest::otlp::Encoding;
        let encoding = crate::content_type::media_type(&request)
            .as_deref()
            .and_then(Encoding::of_media_type)
            .unwrap_or(Encoding::Json);
        let refuse = |error| OtlpRefusal { encoding, error };
        let gzip = content_encoding_is_gzip(request.headers()).map_err(refuse)?;
        let body = body_within_limit(request, state).await.map_err(refuse)?;
        let bytes = if gzip {
            gunzip(&body, state.max_body_bytes).map_err(refuse)?
        } else {
            body.to_vec()
        };
        Ok(Self { encoding, bytes })
    }
}

/// Whether the body is gzip-compressed; 415 for any encoding but gzip or none (`identity`).
fn content_encoding_is_gzip(headers: &axum::http::HeaderMap) -> Result<bool, ApiError> {
    let mut values = headers.get_all(axum::http::header::CONTENT_ENCODING).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(false),
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Err(unsupported_encoding("several Content-Encoding headers")),
    };
    let value = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match value.as_str() {
        "gzip" | "x-gzip" => Ok(true),
        "identity" | "" => Ok(false),
        other => Err(unsupported_encoding(&format!("Content-Encoding `{other}`"))),
    }
}

fn unsupported_encoding(found: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_encoding",
        format!(
            "POST /v1/traces takes bodies as they are or gzip-compressed (`Content-Encoding: \
             gzip`); the request had {found}: set the exporter's compression to gzip or none"
        ),
    )
}

/// The body decompressed, at most `max_bytes` (413 past it, having inflated at most one byte
/// more); 400 when it is not gzip. Concatenated gzip members are read as one body.
fn gunzip(body: &[u8], max_bytes: usize) -> Result<Vec<u8>, ApiError> {
    use std::io::Read as _;
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut inflated = Vec::with_capacity(body.len().saturating_mul(4).min(max_bytes));
    flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut inflated)
        .map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not valid gzip ({e}) though sent with `Content-Encoding: gzip`: \
                 send it compressed, or without the header"
            ))
        })?;
    if inflated.len() > max_bytes {
        let mut refused = ApiError::too_large(max_bytes);
        refused.message = format!(
            "the body is larger than {max_bytes} bytes once decompressed (--max-body-bytes): \
             export smaller batches (the SDK's OTEL_BSP_MAX_EXPORT_BATCH_SIZE, the Collector's \
             batch size)"
        );
        return Err(refused);
    }
    Ok(inflated)
}

impl DescribeInput for OtlpBody {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.request_body = Some(json!({"required": true, "content": {
            "application/x-protobuf": {"schema": {
                "type": "string", "format": "binary",
                "description": "an OTLP `ExportTraceServiceRequest` (opentelemetry/proto/collector/trace/v1) in protobuf, as the OpenTelemetry SDKs' and the Collector's OTLP/HTTP exporters send it; `Content-Encoding: gzip` or none"
            }},
            "application/json": {"schema": {
                "type": "object",
                "description": "an OTLP/JSON `ExportTraceServiceRequest`: camelCase fields, trace and span ids in hex, times in Unix nanoseconds (strings or numbers), enums as integers; unknown fields are ignored",
                "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}}
            }}
        }}));
    }
}

/// The answers of a request whose body is ingested: refused whole (`refused_whole`, too large,
/// too slow, the wrong content type), some items rejected, the disk full.
fn ingest_refusals(operation: &mut OperationDoc, refused_whole: &str) {
    operation.error(400, refused_whole);
    operation.error(408, "the body did not arrive within the body read timeout (`--body-read-timeout`); nothing of it was stored: send it again");
    operation.error(413, "the body is larger than the limit (`payload_too_large`, `--max-body-bytes`), or holds more items than the limit (`too_many_items`, `--max-items-per-request`): nothing was stored");
    operation.error(415, "the Content-Type is not one the route takes (POST /v1/events: `application/json` or `application/x-ndjson`; the Alertmanager bridge: `application/json`); nothing was read or stored");
    operation.json(
        422,
        "some items were invalid: the rest were stored, the invalid ones quarantined",
        json!({"type": "object"}),
    );
    operation.error(507, "the disk is full: nothing of the request was stored; send it again after `Retry-After` seconds (reads keep working)");
}
