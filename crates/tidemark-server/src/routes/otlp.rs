//! `/v1/traces`: OTLP/HTTP traces in (protobuf or JSON, gzip or not), each span a
//! `span.recorded` event (`ingest::otlp` maps them), answered as OTLP says: an
//! `ExportTraceServiceResponse` with `partial_success` for spans that could not be mapped, a
//! `google.rpc.Status` for a refused request, in the request's encoding.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use prost::Message as _;
use serde_json::json;
use tidemark_store::{Input, Outcome};

use crate::content_type;
use crate::error::ApiError;
use crate::extract::{OtlpBody, OtlpRefusal};
use crate::ingest::otlp::{self, Encoding};
use crate::ingest::{SubmitError, Submitted, keep_refused_body, origin_of, submit};
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::replica::PublishResult;
use crate::state::AppState;

/// Seconds an exporter is told to wait before retrying a request the store could not take now.
const RETRY_AFTER_SECS: u64 = 5;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::post(
        "/v1/traces",
        "postOtlpTraces",
        "OTLP/HTTP traces (protobuf or JSON, gzip or not): each span becomes a span.recorded event with the id otlp:TRACE_ID:SPAN_ID (a re-sent span is stored once); spans that cannot be mapped are kept in quarantine and counted in partial_success",
        post_traces,
    )
    .with(|handler| handler.route_layer(from_fn(content_type::otlp_body)))]
}

/// `google.rpc.Status`, the body of OTLP's error answers (`details`, field 3, is never sent).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    code: i32,
    /// For people: what was wrong and what to do.
    #[prost(string, tag = "2")]
    message: String,
}

/// The answer of `POST /v1/traces`, in the request's encoding.
#[derive(Debug)]
pub(crate) struct OtlpAnswer(Response);

impl IntoResponse for OtlpAnswer {
    fn into_response(self) -> Response {
        self.0
    }
}

/// A body in `encoding` with its content type.
fn encoded(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, encoding.media_type())],
        body,
    )
        .into_response()
}

/// An error as OTLP answers it: the status, and a `google.rpc.Status` in the request's encoding
/// (with `Retry-After` when the error has one).
fn otlp_error(encoding: Encoding, error: ApiError) -> Response {
    // google.rpc.Code: INVALID_ARGUMENT, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE.
    let code = match error.status.as_u16() {
        400 | 415 => 3,
        408 => 4,
        413 => 8,
        503 => 14,
        _ => 13,
    };
    let body = match encoding {
        Encoding::Protobuf => RpcStatus {
            code,
            message: error.message.clone(),
        }
        .encode_to_vec(),
        Encoding::Json => json!({"code": code, "message": error.message})
            .to_string()
            .into_bytes(),
    };
    let mut response = encoded(error.status, encoding, body);
    if let Some(secs) = error.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

impl IntoResponse for OtlpRefusal {
    fn into_response(self) -> Response {
        otlp_error(self.encoding, self.error)
    }
}

/// `ExportTraceServiceResponse`: empty when every span was taken (stored now or before),
/// `partial_success` with the rejected count and why when some were not.
fn export_response(encoding: Encoding, rejected: usize, error_message: String) -> Response {
    let partial = (rejected > 0).then(|| otlp::ExportTracePartialSuccess {
        rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message,
    });
    let body = match encoding {
        Encoding::Protobuf => otlp::ExportTraceServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        // The protobuf JSON mapping writes an int64 as a string.
        Encoding::Json => match partial {
            None => b"{}".to_vec(),
            Some(p) => json!({"partialSuccess": {
                "rejectedSpans": p.rejected_spans.to_string(),
                "errorMessage": p.error_message,
            }})
            .to_string()
            .into_bytes(),
        },
    };
    encoded(StatusCode::OK, encoding, body)
}

impl DescribeOutput for OtlpAnswer {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        let binary = json!({"type": "string", "format": "binary"});
        let status = json!({
            "type": "object",
            "description": "google.rpc.Status (in protobuf when the request was)",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer", "description": "google.rpc.Code: 3 invalid argument, 4 deadline exceeded, 8 resource exhausted, 14 unavailable"},
                "message": {"type": "string", "description": "what was wrong and what to do next"}
            }
        });
        let error = |operation: &mut OperationDoc, code: u16, description: &str| {
            operation.respond(
                code,
                description,
                &[
                    ("application/x-protobuf", binary.clone()),
                    ("application/json", status.clone()),
                ],
            );
        };
        operation.respond(
            200,
            "every span was taken (stored, or already stored: a re-sent span is a duplicate), except those `partialSuccess` counts, which could not be mapped to events and are kept in quarantine with the reason",
            &[
                ("application/x-protobuf", binary.clone()),
                ("application/json", json!({
                    "type": "object",
                    "description": "ExportTraceServiceResponse",
                    "properties": {"partialSuccess": {
                        "type": "object",
                        "required": ["rejectedSpans", "errorMessage"],
                        "properties": {
                            "rejectedSpans": {"type": "string", "pattern": "^[0-9]+$", "description": "int64, as the protobuf JSON mapping writes it"},
                            "errorMessage": {"type": "string"}
                        }
                    }}
                })),
            ],
        );
        error(
            operation,
            400,
            "the body is not an ExportTraceServiceRequest in its content type (or not gzip though it says so): nothing was stored, the body is kept in quarantine once",
        );
        error(
            operation,
            408,
            "the body did not arrive within `--body-read-timeout`; nothing of it was stored",
        );
        error(
            operation,
            413,
            "the body is larger than `--max-body-bytes` (as sent or decompressed), or holds more spans than `--max-items-per-request`: nothing was stored; export smaller batches",
        );
        operation.respond(
            415,
            "the Content-Type is neither `application/x-protobuf` nor `application/json` (an `Error`), or the Content-Encoding is neither gzip nor none (a Status): nothing was read",
            &[
                ("application/x-protobuf", binary.clone()),
                ("application/json", json!({"anyOf": [status.clone(), {"$ref": "#/components/schemas/Error"}]})),
            ],
        );
        error(
            operation,
            503,
            "nothing of the request is known to be stored (the disk is full, the writer stopped, or on a replica the log did not acknowledge every span in time): retry after `Retry-After` seconds (OTLP exporters do); a retried span is stored once",
        );
    }
}

/// `POST /v1/traces`.
async fn post_traces(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: OtlpBody,
) -> OtlpAnswer {
    let encoding = body.encoding;
    let origin = origin_of(peer);
    let request = match otlp::decode_request(&body.bytes, encoding) {
        Ok(request) => request,
        Err(error) => {
            let reason = error.to_string();
            tracing::warn!(%origin, %reason, "otlp request refused");
            let rejected = Input::Rejected {
                raw: body.bytes,
                reason: reason.clone(),
                origin: format!("{origin} otlp body"),
            };
            let kept = keep_refused_body(&state, rejected).await;
            let error = ApiError::bad_request(format!("{reason}{kept}"));
            return OtlpAnswer(otlp_error(encoding, error));
        }
    };
    drop(body.bytes);
    let spans = otlp::span_count(&request);
    let max_items = state.limits.max_items_per_request;
    if spans > max_items {
        state.metrics.request_refused("max_items_per_request");
        let mut refused = ApiError::too_many_items(max_items);
        refused.message = format!(
            "the request holds {spans} spans, more than {max_items} (the server's \
             --max-items-per-request): nothing was stored; export at most {max_items} spans per \
             request (the SDK's OTEL_BSP_MAX_EXPORT_BATCH_SIZE, the Collector's batch size)"
        );
        return OtlpAnswer(otlp_error(encoding, refused));
    }
    let items = otlp::items(&request, &state.otlp, &origin);
    drop(request);
    let mut reasons = Vec::new();
    let mut inputs = Vec::with_capacity(items.len());
    for item in items {
        if let Input::Rejected { reason, origin, .. } = &item.input {
            if reasons.len() < state.limits.max_rejected_listed {
                tracing::warn!(%origin, %reason, "otlp span rejected (kept in quarantine; the other spans are stored)");
            }
            reasons.push(reason.clone());
        }
        inputs.push(item.input);
    }
    if reasons.len() > state.limits.max_rejected_listed {
        let more = reasons.len() - state.limits.max_rejected_listed;
        tracing::warn!(%origin, more, "more otlp spans of this request rejected (kept in quarantine)");
    }
    OtlpAnswer(answer(&state, encoding, inputs, &reasons).await)
}

/// Submits the spans' inputs and answers what became of them.
async fn answer(
    state: &AppState,
    encoding: Encoding,
    inputs: Vec<Input>,
    reasons: &[String],
) -> Response {
    let outcomes = match submit(state, inputs).await {
        Ok(outcomes) => outcomes,
        Err(SubmitError::DiskFull {
            message,
            retry_after_secs,
        }) => {
            // 503, not 507: OTLP exporters retry 429, 502, 503 and 504 only.
            let error = ApiError::busy("disk_full", message, retry_after_secs);
            return otlp_error(encoding, error);
        }
        Err(SubmitError::Unavailable(message)) => {
            return otlp_error(
                encoding,
                ApiError::busy("unavailable", message, RETRY_AFTER_SECS),
            );
        }
    };
    let (mut accepted, mut duplicates, mut rejected, mut unpublished) = (0, 0, 0, 0);
    for outcome in &outcomes {
        match outcome {
            Submitted::Stored(Outcome::Accepted { .. })
            | Submitted::Logged(PublishResult::Published { .. }) => accepted += 1,
            Submitted::Stored(Outcome::Duplicate { .. })
            | Submitted::Logged(PublishResult::Duplicate { .. }) => duplicates += 1,
            Submitted::Stored(Outcome::Rejected { .. }) | Submitted::KeptHere { .. } => {
                rejected += 1;
            }
            Submitted::Logged(PublishResult::Unknown { .. } | PublishResult::Failed { .. }) => {
                unpublished += 1;
            }
        }
    }
    state
        .metrics
        .otlp_spans(accepted, duplicates, rejected, unpublished);
    if unpublished > 0 {
        let message = format!(
            "{unpublished} span(s) were not acknowledged by the distributed log in time: they \
             may be stored or not; retry (a span stored already is a duplicate, stored once)"
        );
        return otlp_error(
            encoding,
            ApiError::busy("outcome_unknown", message, RETRY_AFTER_SECS),
        );
    }
    let message = if rejected > 0 {
        otlp::error_message(reasons.iter().map(String::as_str))
    } else {
        String::new()
    };
    export_response(encoding, rejected as usize, message)
}
