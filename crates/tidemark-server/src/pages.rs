//! The web timeline's routes (`/`, `/incidents/{id}`, `/findings/{cluster}/{key}`, `/orphans`)
//! and the postmortem export (`/v1/incidents/{id}/postmortem`): data from the store, HTML from
//! `web`, documents from `tidemark-export`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use tidemark_core::describe::one_line;
use tidemark_core::incidents::Touch;
use tidemark_core::{Event, Projections};
use tidemark_export::{Format, Postmortem};

use crate::error::ApiError;
use crate::query::{blocking, query};
use crate::routes::{AppState, parse_at};
use crate::web::{self, FindingLane, TimelineLine};

/// `?at=` of the pages.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
}

/// Reads the projections (now, or rebuilt at `at` within the time travel limits) and the
/// events they point at, in one consistent view of the store: `positions` names the events
/// `render` needs. (A past state's events are all stored: positions up to it never change.)
async fn read_with_events<T: Send + 'static>(
    state: &AppState,
    at: Option<&str>,
    positions: impl FnOnce(&Projections) -> Vec<u64> + Send + 'static,
    render: impl FnOnce(&Projections, &[(u64, Event)], u64) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    let Some(at) = at.map(parse_at).transpose()? else {
        return blocking(move || {
            store
                .read_with_events(None, positions, render)
                .map_err(|e| ApiError::query(&e))
        })
        .await;
    };
    let past = state.time_travel.past_state(&store, at).await?;
    blocking(move || {
        let wanted = positions(&past.projections);
        let events: Vec<(u64, Event)> = if wanted.is_empty() {
            Vec::new()
        } else {
            store
                .events_at(&wanted)
                .map_err(|e| ApiError::query(&e))?
                .into_iter()
                .map(|(seq, stored)| (seq, stored.event))
                .collect()
        };
        Ok(render(&past.projections, &events, past.seq))
    })
    .await
}

fn timeline_of(id: String) -> impl FnOnce(&Projections) -> Vec<u64> + Send + 'static {
    move |p: &Projections| {
        p.incidents()
            .incident(&id)
            .map(|i| i.timeline.iter().map(|e| e.seq).collect())
            .unwrap_or_default()
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// `GET /`: the incidents.
pub async fn incidents(
    State(state): State<AppState>,
    params: Result<Query<AtQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    read_with_events(
        &state,
        params.at.as_deref(),
        |_| Vec::new(),
        |p, _, seq| {
            let views = p.incidents().views(p.findings(), None, true);
            html(StatusCode::OK, web::incidents_page(&views, seq))
        },
    )
    .await
}

/// `GET /incidents/{id}`: one incident, its lanes and its timeline.
pub async fn incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<AtQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    read_with_events(
        &state,
        params.at.as_deref(),
        timeline_of(id.clone()),
        move |p, events, seq| {
            let Some(incident) = p.incidents().incident(&id) else {
                return html(
                    StatusCode::NOT_FOUND,
                    web::not_found_page(&format!("incident {id}")),
                );
            };
            let view = p.incidents().view(incident, p.findings());
            let timeline: Vec<TimelineLine> = incident
                .timeline
                .iter()
                .zip(events)
                .map(|(entry, (_, event))| TimelineLine {
                    seq: entry.seq,
                    // The event's own time: a late event shows where it landed in the log,
                    // marked late (ADR 0004).
                    at: event.time,
                    event_type: event.event_type(),
                    summary: one_line(event),
                    touches: entry.touches.clone(),
                })
                .collect();
            let lanes: Vec<FindingLane> = incident
                .findings
                .iter()
                .filter_map(|f| {
                    let finding = p.findings().view(&f.cluster, &f.check_key)?;
                    let window = p.findings().settings(&f.cluster).flap_window_secs;
                    Some(FindingLane {
                        check_key: f.check_key.clone(),
                        severity: f.max_severity,
                        history: finding.history,
                        flaps: p
                            .findings()
                            .flap_episodes(&f.cluster, &f.check_key)
                            .iter()
                            .map(|e| e.view(window))
                            .collect(),
                    })
                })
                .collect();
            html(
                StatusCode::OK,
                web::incident_page(&view, &timeline, &lanes, seq),
            )
        },
    )
    .await
}

/// `GET /findings/{cluster}/{*check_key}`: one finding's history.
pub async fn finding(
    State(state): State<AppState>,
    Path((cluster, check_key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let found = store.read(|p| {
            p.findings().view(&cluster, &check_key).map(|view| {
                let window = p.findings().settings(&cluster).flap_window_secs;
                let flaps: Vec<_> = p
                    .findings()
                    .flap_episodes(&cluster, &check_key)
                    .iter()
                    .map(|e| e.view(window))
                    .collect();
                (view, flaps)
            })
        });
        let Some((view, flaps)) = found else {
            return Ok(html(
                StatusCode::NOT_FOUND,
                web::not_found_page(&format!("finding {check_key} in {cluster}")),
            ));
        };
        let timeline: Vec<TimelineLine> = store
            .finding_timeline(&cluster, &check_key)
            .map_err(|e| ApiError::internal(&e))?
            .into_iter()
            .map(|entry| TimelineLine {
                seq: entry.seq,
                at: entry.event.time,
                event_type: entry.event.event_type(),
                summary: one_line(&entry.event),
                touches: entry
                    .changes
                    .iter()
                    .map(|change| Touch {
                        change: (*change).to_owned(),
                        check_key: None,
                    })
                    .collect(),
            })
            .collect();
        Ok(html(
            StatusCode::OK,
            web::finding_page(&view, &timeline, &flaps),
        ))
    })
    .await
}

/// `GET /orphans`: the orphans and the resource graph.
pub async fn orphans(
    State(state): State<AppState>,
    params: Result<Query<AtQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    read_with_events(
        &state,
        params.at.as_deref(),
        |_| Vec::new(),
        |p, _, _| {
            html(
                StatusCode::OK,
                web::orphans_page(&p.orphans().orphans(None), &p.orphans().graph(None)),
            )
        },
    )
    .await
}

/// Parameters of `GET /v1/incidents/{id}/postmortem`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostmortemQuery {
    /// `md` (default), `html` or `json`.
    #[serde(default)]
    #[schemars(schema_with = "crate::pages::postmortem_format_schema")]
    pub format: Option<String>,
    /// A log position or an RFC 3339 time: the postmortem as it would have read then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
}

/// The schema of the postmortem's `format=`.
pub(crate) fn postmortem_format_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["md", "markdown", "html", "json"]})
}

/// `GET /v1/incidents/{id}/postmortem?format=md|html|json`.
pub async fn postmortem(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<PostmortemQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let format: Format = params
        .format
        .as_deref()
        .unwrap_or("md")
        .parse()
        .map_err(|e| ApiError::bad_request(format!("`format`: {e}")))?;
    let built = read_with_events(
        &state,
        params.at.as_deref(),
        timeline_of(id.clone()),
        move |p, events, seq| {
            Postmortem::build(&id, p, events, seq).map_err(|e| match e {
                tidemark_export::BuildError::UnknownIncident { .. } => {
                    crate::query::no_incident(&id, seq)
                }
                other => ApiError::internal(&other),
            })
        },
    )
    .await??;
    let content_type = match format {
        Format::Markdown => "text/markdown; charset=utf-8",
        Format::Html => "text/html; charset=utf-8",
        Format::Json => "application/json",
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        tidemark_export::render(&built, format),
    )
        .into_response())
}
