//! The web timeline's routes (`/`, `/incidents/{id}`, `/findings/{cluster}/{key}`, `/alerts`,
//! `/orphans`):
//! data from the store, HTML from `web`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use tidemark_core::describe::one_line;
use tidemark_core::incidents::Touch;
use tidemark_core::maintenance::WindowBook;
use tidemark_store::TimelineAnchor;

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::read::{
    blocking, incident_timeline_positions, page_size, position_param, with_projections,
    with_projections_and_events,
};
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
            "/alerts",
            "getAlertsPage",
            "Web: the alerts (firing by default)",
            alerts,
        ),
        Route::get(
            "/maintenance",
            "getMaintenancePage",
            "Web: the maintenance windows (open ones by default)",
            maintenance,
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
    // The present follows the log; a page of the past (`at=`) stays as it is.
    let live = params.at.is_none();
    with_projections_and_events(
        &state,
        params.at.as_deref(),
        |_| Vec::new(),
        move |p, _, seq| {
            let views = p.incidents().views(p.findings(), None, true);
            let (unheld, more) = unheld_findings(p, &views);
            let live = live.then(|| web::Live::stream(&[], seq));
            html(
                StatusCode::OK,
                web::incidents_page(&views, &unheld, more, seq, live.as_ref()),
            )
        },
    )
    .await
}

/// What is firing or open that no open incident of `incidents` holds: the first
/// [`web::UNHELD_SHOWN`] active findings (alerts among them) in (cluster, check_key) order, read
/// a page at a time, and whether more follow.
fn unheld_findings(
    p: &tidemark_core::Projections,
    incidents: &[tidemark_core::incidents::IncidentView],
) -> (Vec<tidemark_core::FindingOverview>, bool) {
    let held: std::collections::BTreeSet<(&str, &str)> = incidents
        .iter()
        .filter(|i| i.state == tidemark_core::incidents::IncidentState::Open)
        .flat_map(|i| i.findings.iter())
        .map(|f| (f.cluster.as_str(), f.check_key.as_str()))
        .collect();
    let mut unheld = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let (page, more) = p.findings().views_page(
            None,
            |f| f.state == tidemark_core::FindingState::Active,
            after.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
            crate::read::MAX_PAGE,
        );
        after = page
            .last()
            .map(|f| (f.cluster.clone(), f.check_key.clone()));
        for finding in page {
            if held.contains(&(finding.cluster.as_str(), finding.check_key.as_str())) {
                continue;
            }
            if unheld.len() == web::UNHELD_SHOWN {
                return (unheld, true);
            }
            unheld.push(finding);
        }
        if !more {
            return (unheld, false);
        }
    }
}

/// Parameters of `/alerts`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AlertsPageQuery {
    /// `firing` (the default), `resolved` or `all`.
    state: Option<tidemark_core::findings::AlertState>,
    /// A log position or an RFC 3339 time: the alerts then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
}

/// `GET /alerts`: the alerts, firing by default.
async fn alerts(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AlertsPageQuery>,
) -> Result<HtmlPage, ApiError> {
    let alert_state = params.state.unwrap_or_default();
    with_projections_and_events(
        &state,
        params.at.as_deref(),
        |_| Vec::new(),
        move |p, _, seq| {
            let filter = tidemark_core::findings::AlertFilter {
                state: alert_state,
                ..Default::default()
            };
            let (alerts, more) = p
                .findings()
                .alerts_page(None, &filter, None, web::ALERTS_SHOWN);
            let word = match alert_state {
                tidemark_core::findings::AlertState::Firing => "firing",
                tidemark_core::findings::AlertState::Resolved => "resolved",
                tidemark_core::findings::AlertState::Stale => "stale",
                tidemark_core::findings::AlertState::All => "all",
            };
            html(StatusCode::OK, web::alerts_page(&alerts, more, word, seq))
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
    // The maintenance windows of the incident's clusters, read from their events up to the
    // state shown (the lanes' bands).
    let books = incident_maintenance_books(&state, params.at.as_deref(), &id).await?;
    let live = params.at.is_none();
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
            let view = p.incidents().view(&incident, p.findings());
            let timeline: Vec<TimelineLine> = p
                .incidents()
                .timeline(&incident)
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
                    let maintenance = books
                        .get(&f.cluster)
                        .map(|book| {
                            p.findings()
                                .book_windows_of(&f.cluster, &f.check_key, book)
                                .into_iter()
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
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
                        maintenance,
                    })
                })
                .collect();
            html(
                StatusCode::OK,
                web::incident_page(
                    &view,
                    &timeline,
                    &lanes,
                    seq,
                    live.then(|| web::Live::stream(&[("incident", &view.id)], seq))
                        .as_ref(),
                ),
            )
        },
    )
    .await
}

/// Parameters of the finding page: which page of its timeline.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindingPageQuery {
    /// The timeline entries before this log position (the "older" link); by default the
    /// latest ones. With `after` too: the entries between the two, oldest first.
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    before: Option<u64>,
    /// The timeline entries after this log position (the "newer" link).
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    after: Option<u64>,
    /// Timeline entries per page, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// `GET /findings/{cluster}/{*check_key}`: one finding, a page of its timeline (`limit`
/// entries, 100 by default) and the part of its history that page covers.
async fn finding(
    State(state): State<AppState>,
    ApiPath((cluster, check_key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<FindingPageQuery>,
) -> Result<HtmlPage, ApiError> {
    // Both: the window between them, read forward from `after` and ending before `before`.
    let (anchor, end) = match (params.before, params.after) {
        (Some(before), Some(after)) => (
            TimelineAnchor::After(position_param("after", Some(after))?),
            position_param("before", Some(before))?.saturating_sub(1),
        ),
        (Some(before), None) => (
            TimelineAnchor::Before(position_param("before", Some(before))?),
            u64::MAX,
        ),
        (None, Some(after)) => (
            TimelineAnchor::After(position_param("after", Some(after))?),
            u64::MAX,
        ),
        (None, None) => (TimelineAnchor::Before(u64::MAX), u64::MAX),
    };
    let limit = page_size(params.limit)?;
    // The latest entries follow the log live; an older page stays as it is. Every event of the
    // cluster: a clean cycle changes the finding's clean count without naming it.
    let live = params.before.is_none() && params.after.is_none();
    let store = state.store.clone();
    blocking(move || {
        let up_to = store.checkpoint().min(end);
        let window = store
            .finding_timeline_window(&cluster, &check_key, anchor, up_to, limit)
            .map_err(|e| ApiError::query(&e))?;
        let (book, _) = store
            .maintenance_book(&cluster, Some(up_to))
            .map_err(|e| ApiError::query(&e))?;
        // The stretch of the log the page covers: from its first entry (the start of the log
        // on the oldest page) to its last (the end on the newest).
        let (from, to) = (window.older.unwrap_or(0), window.newer.unwrap_or(u64::MAX));
        // Every opening, resolution and flap change is a timeline entry: the page overlaps at
        // most one more occurrence (or episode per detector) than it has entries.
        let most = limit + 2;
        // Checked: a finding's history read from the store's tables that meets a fault answers
        // it, never a page with an occurrence left out.
        let (found, _) = store
            .read_at(None, |p| {
                let findings = p.findings();
                Some((
                    findings.overview(&cluster, &check_key)?,
                    findings.history_between(&cluster, &check_key, from, to, most)?,
                    findings.flap_episodes_between(&cluster, &check_key, from, to, most)?,
                    findings
                        .book_windows_of(&cluster, &check_key, &book)
                        .into_iter()
                        .cloned()
                        .collect(),
                ))
            })
            .map_err(|e| ApiError::query(&e))?;
        let Some((finding, history, flaps, maintenance)) = found else {
            return Ok(html(
                StatusCode::NOT_FOUND,
                web::not_found_page(&format!("finding {check_key} in {cluster}")),
            ));
        };
        let timeline: Vec<TimelineLine> = window
            .entries
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
            web::finding_page(&web::FindingPage {
                finding,
                timeline,
                history,
                flaps,
                older: window.older,
                newer: window.newer,
                limit: params.limit,
                maintenance,
                live: live.then(|| web::Live::stream(&[("cluster", &cluster)], up_to)),
            }),
        ))
    })
    .await
}

/// `?state=` and `?at=` of the maintenance page.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MaintenancePageQuery {
    /// `open` (the default) or `all` (every window in effect).
    #[schemars(regex(pattern = "^(open|all)$"))]
    state: Option<String>,
    /// A log position or an RFC 3339 time: the windows then (a time is also the time they are
    /// judged open at).
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
}

/// `GET /maintenance`: the maintenance windows, open ones by default.
async fn maintenance(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<MaintenancePageQuery>,
) -> Result<HtmlPage, ApiError> {
    let all = match params.state.as_deref() {
        None | Some("open") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`state`: expected open or all, found {other:?}"
            )));
        }
    };
    let reference = match params
        .at
        .as_deref()
        .map(crate::read::parse_at)
        .transpose()?
    {
        Some(tidemark_store::At::Time(time)) => Some(time),
        _ => None,
    };
    with_projections_and_events(
        &state,
        params.at.as_deref(),
        |_| Vec::new(),
        move |p, _, seq| {
            let (windows, more, clusters) =
                p.findings()
                    .maintenance_page(None, reference, !all, web::WINDOWS_SHOWN);
            html(
                StatusCode::OK,
                web::maintenance_page(&windows, &clusters, more, all, seq),
            )
        },
    )
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
            html(StatusCode::OK, {
                let filter = tidemark_core::orphans::OrphanFilter::default();
                let page = p.orphans().page(&filter, None, web::ORPHANS_SHOWN);
                web::orphans_page(&page.orphans, page.more, &p.orphans().graph(None))
            })
        },
    )
    .await
}

/// The maintenance books of incident `id`'s clusters (its own and its findings'), from their
/// events up to the state `at` names (none when there is no such incident).
pub(crate) async fn incident_maintenance_books(
    state: &AppState,
    at: Option<&str>,
    id: &str,
) -> Result<BTreeMap<String, WindowBook>, ApiError> {
    let wanted = id.to_owned();
    let (clusters, up_to) = with_projections(state, at, move |p| {
        p.incidents()
            .incident(&wanted)
            .map(|i| i.clusters())
            .unwrap_or_default()
    })
    .await?;
    maintenance_books(state, clusters, up_to).await
}

/// The maintenance books of `clusters` from their events up to position `up_to`
/// (`Store::maintenance_book`): what the lanes draw as bands.
pub(crate) async fn maintenance_books(
    state: &AppState,
    clusters: BTreeSet<String>,
    up_to: u64,
) -> Result<BTreeMap<String, WindowBook>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        clusters
            .into_iter()
            .map(|cluster| {
                let (book, _) = store
                    .maintenance_book(&cluster, Some(up_to))
                    .map_err(|e| ApiError::query(&e))?;
                Ok((cluster, book))
            })
            .collect()
    })
    .await
}
