//! Request bodies must say they are JSON (or NDJSON): anything else is answered 415 before the
//! body is read.
//!
//! Besides telling a client that sent the wrong thing what to send, this closes the door that
//! cross-site request forgery uses: a page on another site can make a browser send a POST only
//! as `text/plain`, a form or without a content type, unless the server grants a CORS preflight,
//! which this one never does. Applied per route (`route_layer` on the POST endpoints), so other
//! methods on those paths still get 405.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::ingest::{Framing, framing};

/// The media types `POST /v1/events` takes, for messages (the NDJSON aliases `ingest::framing`
/// knows are accepted too).
pub const EVENTS_MEDIA_TYPES: &str =
    "`application/json` (one event or an array) or `application/x-ndjson` (one event per line)";

/// The media type of a content type header: `type/subtype` in lower case, parameters dropped.
pub(crate) fn media_type(request: &Request) -> Option<String> {
    let value = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or("").trim();
    Some(media.to_ascii_lowercase())
}

fn is_json(media: &str) -> bool {
    media == "application/json"
}

fn is_lines(media: &str) -> bool {
    // An empty body leaves the content type alone to decide the framing.
    framing(Some(media), "") == Framing::Lines
}

fn unsupported(route: &str, accepted: &str, found: Option<&str>) -> Response {
    let found = found.map_or_else(|| "none".to_owned(), |m| format!("`{m}`"));
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("{route} takes {accepted}; the request's Content-Type was {found}: set the header and send again"),
    )
    .into_response()
}

/// `POST /v1/events`: JSON or NDJSON.
pub async fn events_body(request: Request, next: Next) -> Response {
    match media_type(&request) {
        Some(media) if is_json(&media) || is_lines(&media) => next.run(request).await,
        found => unsupported("POST /v1/events", EVENTS_MEDIA_TYPES, found.as_deref()),
    }
}

/// `POST /v1/traces`: OTLP/HTTP in protobuf or JSON (the OTLP specification's two encodings).
pub async fn otlp_body(request: Request, next: Next) -> Response {
    match media_type(&request) {
        Some(media) if crate::ingest::otlp::Encoding::of_media_type(&media).is_some() => {
            next.run(request).await
        }
        found => unsupported(
            "POST /v1/traces",
            "OTLP/HTTP as `application/x-protobuf` or `application/json`",
            found.as_deref(),
        ),
    }
}

/// JSON bodies only (the Alertmanager webhook, which Alertmanager sends as `application/json`).
pub async fn json_body(request: Request, next: Next) -> Response {
    match media_type(&request) {
        Some(media) if is_json(&media) => next.run(request).await,
        found => {
            let route = format!("{} {}", request.method(), request.uri().path());
            unsupported(&route, "`application/json`", found.as_deref())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_the_ndjson_names_are_recognised_with_parameters_and_any_case() {
        for media in [
            "application/json",
            "application/x-ndjson",
            "application/jsonl",
        ] {
            assert!(is_json(media) || is_lines(media), "{media}");
        }
        for media in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/json-seq",
            "",
        ] {
            assert!(!is_json(media) && !is_lines(media), "{media}");
        }
        let request = Request::builder()
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(media_type(&request).as_deref(), Some("application/json"));
    }
}
