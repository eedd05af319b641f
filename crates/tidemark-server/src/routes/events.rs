//! `/v1/events`: the log, read in order and filtered (`GET`), and ingest (`POST`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::{Event, EventType, Timestamp};
use tidemark_store::EventFilter;

use crate::content_type;
use crate::error::ApiError;
use crate::extract::{ApiQuery, EventsBody};
use crate::ingest::{self, IngestAnswer, origin_of, store_inputs};
use crate::openapi::Route;
use crate::read::{blocking, page_size, position_param, time_param};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/events",
            "listEvents",
            "Events in log order, filtered, paged",
            list_events,
        ),
        // The content type is checked on the POST endpoint only (other methods get 405).
        Route::post(
            "/v1/events",
            "postEvents",
            "Ingest events (one, an array, or NDJSON)",
            post_events,
        )
        .with(|handler| handler.route_layer(from_fn(content_type::events_body))),
    ]
}

/// Filters of `GET /v1/events`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// Only this event type, e.g. `cycle.completed`.
    #[serde(rename = "type")]
    #[schemars(with = "Option<EventTypeName>")]
    event_type: Option<String>,
    /// Event time at or after (RFC 3339).
    #[schemars(regex(pattern = crate::read::TIME_PATTERN))]
    since: Option<String>,
    /// Event time at or before (RFC 3339).
    #[schemars(regex(pattern = crate::read::TIME_PATTERN))]
    until: Option<String>,
    /// Events that changed or named this finding.
    check_key: Option<String>,
    /// Events on this incident's timeline.
    incident: Option<String>,
    /// Only this source.
    source: Option<String>,
    /// Events after this log position (the `next` of the previous page).
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// A stored event with its position.
#[derive(Debug, Serialize, JsonSchema)]
struct StoredEventView {
    /// Log position.
    seq: u64,
    /// When the store recorded it.
    recorded_at: Timestamp,
    /// The event in the wire format.
    event: Event,
}

/// A page of events, in log order.
#[derive(Debug, Serialize, JsonSchema)]
struct EventsResponse {
    /// The events.
    events: Vec<StoredEventView>,
    /// Pass as `after` for the next page; null when there are no more. A page may hold fewer
    /// than `limit` events, even none, and still have a `next`: its scan budget ended it.
    next: Option<u64>,
}

/// What `type=` takes: an event type's wire name (the handler reads it as text, to name the
/// known types when it is none of them).
pub(super) struct EventTypeName;

impl JsonSchema for EventTypeName {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EventTypeName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        schemars::json_schema!({"type": "string", "enum": types})
    }
}

/// `type=`: an event type's wire name, or a 400 naming the known ones.
pub(super) fn event_type_param(name: Option<&str>) -> Result<Option<EventType>, ApiError> {
    name.map(|t| {
        EventType::from_wire(t).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::bad_request(format!(
                "`type`: unknown event type {t:?}; expected one of {}",
                known.join(", ")
            ))
        })
    })
    .transpose()
}

/// `GET /v1/events`.
async fn list_events(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<EventsQuery>,
) -> Result<Json<EventsResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let event_type = event_type_param(params.event_type.as_deref())?;
    let filter = EventFilter {
        cluster: params.cluster,
        event_type,
        since: time_param("since", params.since.as_deref())?,
        until: time_param("until", params.until.as_deref())?,
        check_key: params.check_key,
        incident: params.incident,
        source: params.source,
    };
    let after = position_param("after", params.after)?;
    let store = state.store.clone();
    let page = blocking(move || {
        store
            .events_page(&filter, after, limit)
            .map_err(|e| ApiError::internal(&e))
    })
    .await?;
    if page.scan_budget_reached {
        state.metrics.events_page_cut();
    }
    Ok(Json(EventsResponse {
        events: page
            .events
            .into_iter()
            .map(|(seq, stored)| StoredEventView {
                seq,
                recorded_at: stored.recorded_at,
                event: stored.event,
            })
            .collect(),
        next: page.next,
    }))
}

/// `POST /v1/events`: one event, a JSON array, or NDJSON, at most `max_items_per_request`
/// items (413 above, nothing stored). 200 when nothing was rejected, 422 when something was (the
/// rest is stored; the rejected items are in quarantine, each distinct one once).
async fn post_events(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    EventsBody(body): EventsBody,
) -> Result<IngestAnswer, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let origin = origin_of(peer);
    let max_items = state.limits.max_items_per_request;
    let items = ingest::parse(&body, content_type, &origin, max_items).inspect_err(|e| {
        if e.code == "too_many_items" {
            state.metrics.request_refused("max_items_per_request");
        }
    })?;
    let rejected: Vec<&str> = items.iter().filter_map(|i| i.problem.as_deref()).collect();
    if let Some(first) = rejected.first() {
        // Debug, not warn: the client is answered item by item and the quarantine and
        // tidemark_events_ingested_total{outcome="rejected"} count them; a client sending bad
        // events in a loop must not flood the log.
        tracing::debug!(
            %origin,
            items = items.len(),
            rejected = rejected.len(),
            first_reason = %first,
            "POST /v1/events: items rejected (kept in quarantine; the answer lists them)"
        );
    }
    store_inputs(&state, items, StatusCode::UNPROCESSABLE_ENTITY).await
}
