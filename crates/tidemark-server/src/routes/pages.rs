//! The web timeline's routes (`/`, `/incidents/{id}`, `/findings/{cluster}/{key}`, `/orphans`):
//! data from the store, HTML from `web`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use tidemark_core::describe::one_line;
use tidemark_core::incidents::Touch;

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::read::{blocking, incident_timeline_positions, with_projections_and_events};
use crate::state::AppState;
use crate::web::{self, FindingLane, TimelineLine};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/", "getIncidentsPage", "Web: the incidents", incidents),
        Route::get(
            "/incidents/{id}",
            "getIncidentPage",
            "Web: one incident's lanes and timeline",
            incident,
        ),
        Route::get(
            "/findings/{cluster}/{*check_key}",
            "getFindingPage",
            "Web: one finding's history",
            finding,
        ),
        Route::get(
            "/orphans",
            "getOrphansPage",
            "Web: the orphans and the resource graph",
            orphans,
        ),
    ]
}

/// `?at=` of the pages.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
}

fn html(status: StatusCode, body: String) -> HtmlPage {
    HtmlPage(status, body)
}

/// A page, or the page that says what was not found (404).
#[derive(Debug)]
struct HtmlPage(StatusCode, String);

impl IntoResponse for HtmlPage {
    fn into_response(self) -> Response {
        (self.0, Html(self.1)).into_response()
    }
}

impl DescribeOutput for HtmlPage {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.text(200, "success", "text/html");
        // Pages answer their own 404 as HTML.
        operation.text(404, "no such thing", "text/html");
    }
}

/// `GET /`: the incidents.
async fn incidents(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AtQuery>,
) -> Result<HtmlPage, ApiError> {
    with_projections_and_events(
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
async fn incident(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<AtQuery>,
) -> Result<HtmlPage, ApiError> {
    with_projections_and_events(
        &state,
        params.at.as_deref(),
        incident_timeline_positions(id.clone()),
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
async fn finding(
    State(state): State<AppState>,
    ApiPath((cluster, check_key)): ApiPath<(String, String)>,
) -> Result<HtmlPage, ApiError> {
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
async fn orphans(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AtQuery>,
) -> Result<HtmlPage, ApiError> {
    with_projections_and_events(
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
