//! `/v1/stream`: the log live, as Server-Sent Events, filtered, resumable from any position
//! (`Last-Event-ID` or `?after=`). The following itself is `crate::stream`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tidemark_store::EventFilter;

use super::events::{EventTypeName, event_type_param};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::read::MAX_POSITION;
use crate::state::AppState;
use crate::stream::{self, FinalFrame, Subscribed, Subscription};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/stream",
        "streamEvents",
        "The log live as Server-Sent Events: each stored event matching the filters (and, with changes=true, what the projections drew from it), with its log position as the SSE id; resumable from any position (Last-Event-ID or after=) with no gap and no duplicate",
        stream_events,
    )]
}

/// Filters and the start of `GET /v1/stream`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// Only this event type, e.g. `alert.fired`.
    #[serde(rename = "type")]
    #[schemars(with = "Option<EventTypeName>")]
    event_type: Option<String>,
    /// Events that changed or named this finding.
    check_key: Option<String>,
    /// Events on this incident's timeline.
    incident: Option<String>,
    /// Only this source.
    source: Option<String>,
    /// Start after this log position (`0`: the whole log). A `Last-Event-ID` header (what a
    /// reconnecting `EventSource` sends) takes precedence. Without either the stream starts at
    /// the store's checkpoint: new events only.
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    after: Option<u64>,
    /// `true`: instead of the events, one `moved` frame (data `{seq}`, `id` the same position)
    /// per batch of matching events, for a client that only needs to know that something
    /// changed (the web pages). Unfiltered, it reads nothing from the store.
    positions_only: Option<bool>,
    /// `true`: after each event, one `change` frame per change the projections drew from it
    /// (data `{seq, what, subject, change}`, as `tidemark replay --step` says it), the
    /// position's `id` on its last frame. Under `check_key` only the changes of that finding,
    /// under `incident` only those of that incident. Ignored with `positions_only`.
    changes: Option<bool>,
}

/// `GET /v1/stream`.
async fn stream_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamQuery>,
) -> Result<EventStream, ApiError> {
    let event_type = event_type_param(params.event_type.as_deref())?;
    let resume = last_event_id(&headers)?;
    let after = match resume.or(params.after) {
        Some(after) if after > MAX_POSITION => {
            return Err(ApiError::bad_request(format!(
                "`after`: {after} is past the largest log position ({MAX_POSITION})"
            )));
        }
        Some(after) => after,
        None => state.store.checkpoint(),
    };
    let log_start = state.store.log_start();
    if log_start > 1 && after + 1 < log_start {
        return Err(ApiError::query(
            &tidemark_store::QueryError::BeforeRetainedLog {
                requested: format!("the events after position {after}"),
                first_retained: log_start,
            },
        ));
    }
    let Some(place) = state.stream.subscribe() else {
        let limit = state.stream.limits().max_subscribers;
        return Err(ApiError::busy(
            "too_many_subscribers",
            format!(
                "{limit} stream subscribers are connected (--max-stream-subscribers), or the server is shutting down: retry after Retry-After seconds"
            ),
            5,
        ));
    };
    let subscription = Subscription {
        filter: EventFilter {
            cluster: params.cluster,
            event_type,
            since: None,
            until: None,
            check_key: params.check_key,
            incident: params.incident,
            source: params.source,
        },
        after,
        positions_only: params.positions_only.unwrap_or(false),
        changes: params.changes.unwrap_or(false),
    };
    let (frames, last) = stream::start(state.stream.clone(), state.store.clone(), subscription);
    Ok(EventStream {
        frames,
        last,
        place,
    })
}

/// `Last-Event-ID`: a log position, or a 400 saying what it takes.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| {
            ApiError::bad_request(
                "`Last-Event-ID` is not text: send the id (a log position) of a frame of this stream",
            )
        })?
        .trim();
    if text.is_empty() {
        // What an EventSource sends before it saw any id: start as without it.
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "`Last-Event-ID`: {text:?} is not a log position (the id of a frame of this stream)"
        ))
    })
}

/// The stream's response: the subscriber's buffered frames, then its final frame; it holds
/// the subscriber's place until the connection lets go of it.
struct EventStream {
    frames: tokio::sync::mpsc::Receiver<Bytes>,
    last: FinalFrame,
    place: Subscribed,
}

impl IntoResponse for EventStream {
    fn into_response(self) -> Response {
        let body = futures::stream::unfold(
            (self.frames, Some(self.last), self.place),
            |(mut frames, last, place)| async move {
                match frames.recv().await {
                    Some(frame) => Some((Ok::<_, Infallible>(frame), (frames, last, place))),
                    None => {
                        let frame = last?.lock().unwrap_or_else(|p| p.into_inner()).take()?;
                        Some((Ok(frame), (frames, None, place)))
                    }
                }
            },
        );
        let mut response = Body::from_stream(body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // nginx would buffer the stream otherwise.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }
}

impl DescribeOutput for EventStream {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.respond(
            200,
            "a stream of Server-Sent Events that lasts until the client leaves: first `subscribed` (data `{after, checkpoint}`), then one `event` frame per matching stored event in log order (`id:` its log position; data `{seq, recorded_at, event}` as GET /v1/events lists them), with `changes=true` followed by one `change` frame per change the projections drew from it (data `{seq, what, subject, change}`; the position's `id:` is then on its last frame, so a resume never skips part of a position), or with `positions_only=true` one `moved` frame (data `{seq}`, `id:` the same) per batch of them; a comment line `: heartbeat` while nothing else is sent (with an `id:` when the stream has read further without a match); and, when the server ends the stream, a final `cut_off` event (data `{reason, message, resume_after}`; reason `slow_subscriber`, `shutting_down` or `store_error`). Reconnect with `Last-Event-ID` set to the last id received (an EventSource does this by itself) to go on with no gap and no duplicate",
            &[(
                "text/event-stream",
                json!({"type": "string", "description": "Server-Sent Events (text/event-stream)"}),
            )],
        );
        operation.error(
            503,
            "`--max-stream-subscribers` are connected or the server is shutting down (`too_many_subscribers`): retry after `Retry-After` seconds",
        );
    }
}
