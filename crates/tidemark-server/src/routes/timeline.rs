//! `/v1/timeline`: a cluster's events by event time, paged by a cursor over (event time,
//! position), so events sharing a time are neither repeated nor skipped.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::{Event, Timestamp};
use tidemark_store::TimelineEntry;

use crate::cursor;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::Route;
use crate::read::{blocking, page_size, time_param};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/timeline",
        "getClusterTimeline",
        "A cluster's events by event time",
        cluster_timeline,
    )]
}

/// Parameters of `GET /v1/timeline`.
#[derive(Deserialize, Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    /// The cluster.
    cluster: String,
    /// Event time at or after (RFC 3339).
    #[schemars(regex(pattern = crate::read::TIME_PATTERN))]
    since: Option<String>,
    /// Event time at or before (RFC 3339).
    #[schemars(regex(pattern = crate::read::TIME_PATTERN))]
    until: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::read::TIMELINE_CURSOR_PATTERN))]
    after: Option<String>,
    /// At most this many (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// An event of a cluster's timeline, with its position.
#[derive(Debug, Serialize, JsonSchema)]
struct ClusterTimelineEntry {
    /// Log position.
    seq: u64,
    /// When the store recorded it.
    recorded_at: Timestamp,
    /// The event in the wire format.
    event: Event,
}

impl From<TimelineEntry> for ClusterTimelineEntry {
    fn from(entry: TimelineEntry) -> Self {
        debug_assert!(
            entry.changes.is_empty(),
            "a cluster timeline names no changes"
        );
        Self {
            seq: entry.seq,
            recorded_at: entry.recorded_at,
            event: entry.event,
        }
    }
}

/// A page of a cluster's events, by event time (ties in log order).
#[derive(Debug, Serialize, JsonSchema)]
struct ClusterTimelineResponse {
    /// The events, with their positions.
    timeline: Vec<ClusterTimelineEntry>,
    /// Pass as `after` for the next page; null when there are no more.
    next: Option<String>,
}

/// `GET /v1/timeline?cluster=C[&since][&until][&after][&limit]`.
async fn cluster_timeline(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<TimelineQuery>,
) -> Result<Json<ClusterTimelineResponse>, ApiError> {
    let since = time_param("since", params.since.as_deref())?;
    let until = time_param("until", params.until.as_deref())?;
    let limit = page_size(params.limit)?;
    let after = params
        .after
        .as_deref()
        .map(|c| cursor::decode::<(i64, u64)>("after", c))
        .transpose()?
        .map(|(nanos, seq)| (Timestamp::from_unix_nanos(nanos), seq));
    let store = state.store.clone();
    let page = blocking(move || {
        store
            .cluster_timeline_page(&params.cluster, since, until, after, limit)
            .map_err(|e| ApiError::internal(&e))
    })
    .await?;
    Ok(Json(ClusterTimelineResponse {
        timeline: page.entries.into_iter().map(Into::into).collect(),
        next: page
            .next
            .map(|(time, seq)| cursor::encode(&(time.unix_nanos(), seq))),
    }))
}
