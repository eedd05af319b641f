//! `/v1/incidents`: incidents in the order they opened, one incident, and its timeline with
//! its events.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::Event;
use tidemark_core::describe::one_line;
use tidemark_core::incidents::{IncidentEntry, IncidentState, IncidentView};

use crate::cursor;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::Route;
use crate::read::{blocking, no_incident, page_size, position_param, with_projections};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/incidents",
            "listIncidents",
            "Incidents in the order they opened, paged",
            list_incidents,
        ),
        Route::get(
            "/v1/incidents/{id}",
            "getIncident",
            "One incident",
            get_incident,
        ),
        Route::get(
            "/v1/incidents/{id}/timeline",
            "getIncidentTimeline",
            "An incident's timeline with its events, paged",
            incident_timeline,
        ),
    ]
}

/// Parameters of `GET /v1/incidents`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IncidentsQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// `open`, `closed` or `merged`.
    state: Option<IncidentState>,
    /// Include automatic incidents absorbed into explicit ones.
    all: Option<bool>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::read::INCIDENT_CURSOR_PATTERN))]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// A page of incidents, in the order they opened.
#[derive(Debug, Serialize, JsonSchema)]
struct IncidentsResponse {
    /// The log position.
    seq: u64,
    /// The incidents.
    incidents: Vec<IncidentView>,
    /// Cursor of the next page.
    next: Option<String>,
}

fn incident_key(i: &IncidentView) -> (u64, String) {
    (i.opened_seq, i.id.clone())
}

/// `GET /v1/incidents`.
async fn list_incidents(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<IncidentsQuery>,
) -> Result<Json<IncidentsResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let (cluster, wanted, all) = (
        params.cluster.clone(),
        params.state,
        params.all == Some(true) || params.state == Some(IncidentState::Merged),
    );
    let after: Option<(u64, String)> = params
        .after
        .as_deref()
        .map(|c| cursor::decode("after", c))
        .transpose()?;
    let ((incidents, more), seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.incidents().views_page(
            p.findings(),
            cluster.as_deref(),
            all,
            |s| wanted.is_none_or(|w| w == s),
            after.as_ref().map(|(seq, id)| (*seq, id.as_str())),
            limit,
        )
    })
    .await?;
    let next = if more {
        incidents.last().map(|i| cursor::encode(&incident_key(i)))
    } else {
        None
    };
    Ok(Json(IncidentsResponse {
        seq,
        incidents,
        next,
    }))
}

/// Parameters of one incident.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    /// A log position or an RFC 3339 time: the incident then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
}

/// One incident.
#[derive(Debug, Serialize, JsonSchema)]
struct IncidentResponse {
    /// The log position.
    seq: u64,
    /// The incident.
    incident: IncidentView,
}

/// `GET /v1/incidents/{id}`.
async fn get_incident(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<IncidentQuery>,
) -> Result<Json<IncidentResponse>, ApiError> {
    let wanted = id.clone();
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.incidents()
            .incident(&wanted)
            .map(|i| p.incidents().view(&i, p.findings()))
    })
    .await?;
    let incident = found.ok_or_else(|| no_incident(&id, seq))?;
    Ok(Json(IncidentResponse { seq, incident }))
}

/// Parameters of an incident's timeline.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IncidentTimelineQuery {
    /// A log position or an RFC 3339 time: the timeline up to then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// Entries after this log position.
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// An incident timeline entry with its event.
#[derive(Debug, Serialize, JsonSchema)]
struct IncidentTimelineLine {
    /// Position, time and what it did to the incident.
    #[serde(flatten)]
    entry: IncidentEntry,
    /// The event in one line.
    summary: String,
    /// The event.
    event: Event,
}

/// A page of an incident's timeline, in log order.
#[derive(Debug, Serialize, JsonSchema)]
struct IncidentTimelineResponse {
    /// The log position.
    seq: u64,
    /// The entries.
    timeline: Vec<IncidentTimelineLine>,
    /// Pass as `after` for the next page.
    next: Option<u64>,
}

/// `GET /v1/incidents/{id}/timeline`.
async fn incident_timeline(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<IncidentTimelineQuery>,
) -> Result<Json<IncidentTimelineResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let after = position_param("after", params.after)?;
    let wanted = id.clone();
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.incidents()
            .incident(&wanted)
            .map(|i| p.incidents().timeline_page(&i, after, limit))
    })
    .await?;
    let (entries, more) = found.ok_or_else(|| no_incident(&id, seq))?;
    let positions: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    let store = state.store.clone();
    let events = blocking(move || {
        store
            .events_at(&positions)
            .map_err(|e| ApiError::internal(&e))
    })
    .await?;
    let next = if more {
        entries.last().map(|e| e.seq)
    } else {
        None
    };
    let timeline = entries
        .into_iter()
        .zip(events)
        .map(|(entry, (_, stored))| IncidentTimelineLine {
            summary: one_line(&stored.event),
            entry,
            event: stored.event,
        })
        .collect();
    Ok(Json(IncidentTimelineResponse {
        seq,
        timeline,
        next,
    }))
}
