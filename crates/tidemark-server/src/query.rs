//! The read side of `/v1`: events, findings, flaps, stuck, orphans and incidents, each now or at
//! a point of the log (`?at=`), in pages with a cursor over a stable order.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::describe::one_line;
use tidemark_core::findings::{ChurnView, DriftView, FlapView, LongLivedView, UnreachableView};
use tidemark_core::flaps::FlapEpisodeView;
use tidemark_core::incidents::{IncidentEntry, IncidentState, IncidentView};
use tidemark_core::orphans::{OrphanGraph, OrphanKind, OrphanView};
use tidemark_core::projections::UnstableKeyView;
use tidemark_core::{
    Event, EventType, FindingState, FindingView, Payload, Projections, Severity, Timestamp,
};
use tidemark_store::{EventFilter, TimelineEntry};

use crate::cursor;
use crate::error::ApiError;
use crate::routes::{AppState, parse_at};

/// What `at=` accepts: a log position or an RFC 3339 time.
pub const AT_PATTERN: &str = r"^([0-9]{1,19}|(19[7-9][0-9]|2[01][0-9]{2}|22[0-5][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$";
/// What `since=` and `until=` accept: an RFC 3339 time.
pub const TIME_PATTERN: &str = r"^(19[7-9][0-9]|2[01][0-9]{2}|22[0-5][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
pub use crate::cursor::{
    FINDING_CURSOR_PATTERN, INCIDENT_CURSOR_PATTERN, ORPHAN_CURSOR_PATTERN, TIMELINE_CURSOR_PATTERN,
};

/// Default page size.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page any list answers.
pub const MAX_PAGE: usize = 1_000;

pub(crate) fn query<T>(extracted: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    extracted
        .map(|Query(q)| q)
        .map_err(|rejection| ApiError::query_string(&rejection))
}

/// Runs blocking store work (redb reads, rebuilding a past state) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// The largest log position a parameter may name (2^53 − 1: exact in every JSON client).
pub const MAX_POSITION: u64 = 9_007_199_254_740_991;

/// A log position parameter, checked against [`MAX_POSITION`].
pub(crate) fn position_param(name: &str, value: Option<u64>) -> Result<u64, ApiError> {
    match value {
        Some(v) if v > MAX_POSITION => Err(ApiError::bad_request(format!(
            "`{name}`: {v} is past the largest log position ({MAX_POSITION})"
        ))),
        v => Ok(v.unwrap_or(0)),
    }
}

pub(crate) fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(0) => Err(ApiError::bad_request("`limit`: must be at least 1")),
        Some(n) if n > MAX_PAGE => Err(ApiError::bad_request(format!(
            "`limit`: at most {MAX_PAGE} per page; follow `next` for more"
        ))),
        Some(n) => Ok(n),
    }
}

/// Runs `read` over the projections now, or rebuilt at `at` (within the time travel limits,
/// shared with concurrent requests for the same point); with the log position they are at.
async fn with_projections<T: Send + 'static>(
    state: &AppState,
    at: Option<&str>,
    read: impl FnOnce(&Projections) -> T + Send + 'static,
) -> Result<(T, u64), ApiError> {
    let store = state.store.clone();
    match at.map(parse_at).transpose()? {
        None => blocking(move || store.read_at(None, read).map_err(|e| ApiError::query(&e))).await,
        Some(at) => {
            let past = state.time_travel.past_state(&store, at).await?;
            blocking(move || Ok((read(&past.projections), past.seq))).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pages of projection lists, by cursor (`crate::cursor`).

/// One page of `items` in the order of `key` (a key per item, no two alike), after the cursor;
/// with the cursor of the next page.
fn paginate<T, K>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> K,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError>
where
    K: Ord + cursor::CursorKey,
{
    let after: Option<K> = after.map(|c| cursor::decode("after", c)).transpose()?;
    items.sort_by_cached_key(&key);
    debug_assert!(
        items.windows(2).all(|w| key(&w[0]) < key(&w[1])),
        "sort keys are unique"
    );
    let start = match &after {
        Some(after) => items.partition_point(|item| key(item) <= *after),
        None => 0,
    };
    let more = items.len() > start + limit;
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = if more {
        page.last().map(|last| cursor::encode(&key(last)))
    } else {
        None
    };
    Ok((page, next))
}

// ---------------------------------------------------------------------------------------------
// Events

/// Filters of `GET /v1/events`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Only this event type, e.g. `cycle.completed`.
    #[serde(rename = "type")]
    #[serde(default)]
    #[schemars(schema_with = "crate::query::event_type_schema")]
    pub event_type: Option<String>,
    /// Event time at or after (RFC 3339).
    #[schemars(regex(pattern = crate::query::TIME_PATTERN))]
    pub since: Option<String>,
    /// Event time at or before (RFC 3339).
    #[schemars(regex(pattern = crate::query::TIME_PATTERN))]
    pub until: Option<String>,
    /// Events that changed or named this finding.
    pub check_key: Option<String>,
    /// Events on this incident's timeline.
    pub incident: Option<String>,
    /// Only this source.
    pub source: Option<String>,
    /// Events after this log position (the `next` of the previous page).
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    pub after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// A stored event with its position.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StoredEventView {
    /// Log position.
    pub seq: u64,
    /// When the store recorded it.
    pub recorded_at: Timestamp,
    /// The event in the wire format.
    pub event: Event,
}

/// A page of events, in log order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventsResponse {
    /// The events.
    pub events: Vec<StoredEventView>,
    /// Pass as `after` for the next page; null when there are no more. A page may hold fewer
    /// than `limit` events, even none, and still have a `next`: its scan budget ended it.
    pub next: Option<u64>,
}

/// The schema of `type=`: one of the event types.
pub(crate) fn event_type_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    schemars::json_schema!({"type": "string", "enum": types})
}

/// The schema of the graph's `format=`.
pub(crate) fn graph_format_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["json", "dot"]})
}

pub(crate) fn time_param(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            Timestamp::parse_rfc3339(v).map_err(|e| ApiError::bad_request(format!("`{name}`: {e}")))
        })
        .transpose()
}

/// `GET /v1/events`.
pub async fn list_events(
    State(state): State<AppState>,
    params: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsResponse>, ApiError> {
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let event_type = params
        .event_type
        .as_deref()
        .map(|t| {
            EventType::from_wire(t).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                ApiError::bad_request(format!(
                    "`type`: unknown event type {t:?}; expected one of {}",
                    known.join(", ")
                ))
            })
        })
        .transpose()?;
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

// ---------------------------------------------------------------------------------------------
// Findings

/// Filters of `GET /v1/findings`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// `active` or `resolved`.
    pub state: Option<FindingState>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// A log position or an RFC 3339 time: the state then, instead of now.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::query::FINDING_CURSOR_PATTERN))]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// A page of findings, sorted by (cluster, check_key).
#[derive(Debug, Serialize, JsonSchema)]
pub struct FindingsResponse {
    /// The log position the findings are at.
    pub seq: u64,
    /// Findings on this page.
    pub count: usize,
    /// The findings.
    pub findings: Vec<FindingView>,
    /// Cursor of the next page; absent when there are no more.
    pub next: Option<String>,
}

fn finding_key(view: &FindingView) -> (String, String) {
    (view.cluster.clone(), view.check_key.clone())
}

/// `GET /v1/findings`.
pub async fn list_findings(
    State(state): State<AppState>,
    filters: Result<Query<FindingsQuery>, QueryRejection>,
) -> Result<Json<FindingsResponse>, ApiError> {
    let filters = query(filters)?;
    let limit = page_size(filters.limit)?;
    let after: Option<(String, String)> = filters
        .after
        .as_deref()
        .map(|c| cursor::decode("after", c))
        .transpose()?;
    let (cluster, category) = (filters.cluster.clone(), filters.category.clone());
    let (state_filter, severity) = (filters.state, filters.severity);
    let ((findings, more), seq) = with_projections(&state, filters.at.as_deref(), move |p| {
        p.findings().views_page(
            cluster.as_deref(),
            |f: &tidemark_core::findings::FindingSummary<'_>| {
                state_filter.is_none_or(|s| s == f.state)
                    && severity.is_none_or(|s| s == f.severity)
                    && category.as_deref().is_none_or(|c| c == f.category)
            },
            after.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
            limit,
        )
    })
    .await?;
    let next = if more {
        findings.last().map(|f| cursor::encode(&finding_key(f)))
    } else {
        None
    };
    Ok(Json(FindingsResponse {
        seq,
        count: findings.len(),
        findings,
        next,
    }))
}

/// Parameters of `GET /v1/findings/{cluster}/{check_key}`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingQuery {
    /// A log position or an RFC 3339 time: the finding then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
    /// Timeline entries after this log position.
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    pub after: Option<u64>,
    /// Timeline page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
    /// Whole events in the timeline; by default a cycle event keeps only this finding's entries.
    pub full_events: Option<bool>,
}

/// One finding, its flap episodes, and a page of its timeline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FindingResponse {
    /// The log position it is at.
    pub seq: u64,
    /// The finding, with its history.
    pub finding: FindingView,
    /// Its flapping episodes.
    pub flaps: Vec<FlapEpisodeView>,
    /// Events that changed or named it, in log order.
    pub timeline: Vec<TimelineEntryView>,
    /// Pass as `after` for the next timeline page.
    pub next: Option<u64>,
}

/// A timeline entry: an event and what it did to the finding.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimelineEntryView {
    /// Log position.
    pub seq: u64,
    /// When the store recorded it.
    pub recorded_at: Timestamp,
    /// What it did: `opened`, `resolved_auto`, `flap_started_count`, ...
    pub changes: Vec<String>,
    /// The event (a cycle event keeps only this finding's entries unless `full_events=true`).
    pub event: Event,
    /// Whether other findings' entries were left out of the cycle event.
    pub trimmed: bool,
}

impl From<TimelineEntry> for TimelineEntryView {
    fn from(entry: TimelineEntry) -> Self {
        Self {
            seq: entry.seq,
            recorded_at: entry.recorded_at,
            changes: entry.changes.iter().map(|c| (*c).to_owned()).collect(),
            event: entry.event,
            trimmed: false,
        }
    }
}

/// `GET /v1/findings/{cluster}/{*check_key}`.
pub async fn get_finding(
    State(state): State<AppState>,
    Path((cluster, check_key)): Path<(String, String)>,
    params: Result<Query<FindingQuery>, QueryRejection>,
) -> Result<Json<FindingResponse>, ApiError> {
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let (c, k) = (cluster.clone(), check_key.clone());
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.findings().view(&c, &k).map(|view| {
            let window = p.findings().settings(&c).flap_window_secs;
            let flaps: Vec<FlapEpisodeView> = p
                .findings()
                .flap_episodes(&c, &k)
                .iter()
                .map(|e| e.view(window))
                .collect();
            (view, flaps)
        })
    })
    .await?;
    let (finding, flaps) = found.ok_or_else(|| {
        ApiError::not_found(format!(
            "no finding {check_key:?} in cluster {cluster:?} at log position {seq}"
        ))
    })?;
    let after = position_param("after", params.after)?;
    let store = state.store.clone();
    let (timeline, next) = blocking(move || {
        let entries = store
            .finding_timeline_page(&cluster, &check_key, after, seq, limit)
            .map_err(|e| ApiError::internal(&e))?;
        Ok(entries)
    })
    .await?;
    let full = params.full_events == Some(true);
    let key = finding.check_key.clone();
    let timeline = timeline
        .into_iter()
        .map(|entry| {
            let mut view = TimelineEntryView::from(entry);
            if !full && let Payload::CycleCompleted(cycle) = &mut view.event.payload {
                // A cycle event lists every finding of the scan; this timeline is about one.
                let before = cycle.findings.len();
                cycle.findings.retain(|f| f.check_key == key);
                view.trimmed = cycle.findings.len() != before;
            }
            view
        })
        .collect();
    Ok(Json(FindingResponse {
        seq,
        finding,
        flaps,
        timeline,
        next,
    }))
}

// ---------------------------------------------------------------------------------------------
// Flaps, stuck

/// Parameters of the projection lists.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::query::FINDING_CURSOR_PATTERN))]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// Why the bell keeps ringing.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FlapsResponse {
    /// The log position.
    pub seq: u64,
    /// Findings that flap or have flapped, sorted by (cluster, check_key); paged.
    pub flapping: Vec<FlapView>,
    /// Cursor of the next page of `flapping`.
    pub next: Option<String>,
    /// Check keys whose parts look unstable (at most one page).
    pub unstable_keys: Vec<UnstableKeyView>,
    /// Categories whose new keys keep dying young.
    pub churn: Vec<ChurnView>,
}

/// `GET /v1/flaps`.
pub async fn flaps(
    State(state): State<AppState>,
    params: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<FlapsResponse>, ApiError> {
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let cluster = params.cluster.clone();
    let ((flapping, mut unstable_keys, churn), seq) =
        with_projections(&state, params.at.as_deref(), move |p| {
            (
                p.findings().flaps(cluster.as_deref()),
                p.unstable_keys(cluster.as_deref()),
                p.findings().churn(cluster.as_deref()),
            )
        })
        .await?;
    let (flapping, next) = paginate(
        flapping,
        |f| (f.cluster.clone(), f.check_key.clone()),
        params.after.as_deref(),
        limit,
    )?;
    unstable_keys.truncate(limit);
    Ok(Json(FlapsResponse {
        seq,
        flapping,
        next,
        unstable_keys,
        churn,
    }))
}

/// Parameters of `GET /v1/stuck`: one bounded page per list.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StuckQuery {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
    /// Most entries per list, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// Stuck findings, drift suspects, long-lived ones.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StuckResponse {
    /// The log position.
    pub seq: u64,
    /// Findings the sweep cannot resolve (at most `limit`).
    pub unreachable: Vec<UnreachableView>,
    /// Check-key drift suspects (the latest `limit`).
    pub drift_suspects: Vec<DriftView>,
    /// Persistent, old findings (at most `limit`).
    pub long_lived: Vec<LongLivedView>,
    /// Whether a list was cut at `limit`.
    pub truncated: bool,
}

/// `GET /v1/stuck`.
pub async fn stuck(
    State(state): State<AppState>,
    params: Result<Query<StuckQuery>, QueryRejection>,
) -> Result<Json<StuckResponse>, ApiError> {
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let cluster = params.cluster.clone();
    let (mut report, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.findings().stuck(cluster.as_deref())
    })
    .await?;
    let truncated = report.unreachable.len() > limit
        || report.drift_suspects.len() > limit
        || report.long_lived.len() > limit;
    report.unreachable.truncate(limit);
    let drop = report.drift_suspects.len().saturating_sub(limit);
    report.drift_suspects.drain(..drop);
    report.long_lived.truncate(limit);
    Ok(Json(StuckResponse {
        seq,
        unreachable: report.unreachable,
        drift_suspects: report.drift_suspects,
        long_lived: report.long_lived,
        truncated,
    }))
}

// ---------------------------------------------------------------------------------------------
// Orphans

/// Parameters of `GET /v1/orphans`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrphansQuery {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Only this kind of orphan.
    pub kind: Option<OrphanKind>,
    /// Also list candidates not yet confirmed.
    pub candidates: Option<bool>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::query::ORPHAN_CURSOR_PATTERN))]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// Confirmed orphans (and candidates when asked).
#[derive(Debug, Serialize, JsonSchema)]
pub struct OrphansResponse {
    /// The log position.
    pub seq: u64,
    /// Orphans, sorted by (cluster, kind, subject); paged.
    pub orphans: Vec<OrphanView>,
    /// Cursor of the next page.
    pub next: Option<String>,
}

/// (cluster, kind, what it is about): an orphan's identity, in JSON for the last part.
fn orphan_key(o: &OrphanView) -> (String, String, String) {
    let subject = serde_json::to_string(&(&o.resource, &o.tracking, &o.trace_id, &o.span))
        .unwrap_or_default();
    (o.cluster.clone(), o.kind.as_str().to_owned(), subject)
}

/// `GET /v1/orphans`.
pub async fn orphans(
    State(state): State<AppState>,
    params: Result<Query<OrphansQuery>, QueryRejection>,
) -> Result<Json<OrphansResponse>, ApiError> {
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let (cluster, kind, candidates) = (params.cluster.clone(), params.kind, params.candidates);
    let (list, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        let mut list = p.orphans().orphans(cluster.as_deref());
        if candidates == Some(true) {
            list.extend(p.orphans().candidates(cluster.as_deref()));
        }
        list.retain(|o| kind.is_none_or(|k| k == o.kind));
        list
    })
    .await?;
    let (orphans, next) = paginate(list, orphan_key, params.after.as_deref(), limit)?;
    Ok(Json(OrphansResponse { seq, orphans, next }))
}

/// Parameters of `GET /v1/orphans/graph`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// `json` (default) or `dot` (Graphviz).
    #[serde(default)]
    #[schemars(schema_with = "crate::query::graph_format_schema")]
    pub format: Option<String>,
    /// A log position or an RFC 3339 time: the graph then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
}

/// `GET /v1/orphans/graph`: the resource graph with its orphans, as JSON or Graphviz DOT.
pub async fn orphan_graph(
    State(state): State<AppState>,
    params: Result<Query<GraphQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let dot = match params.format.as_deref() {
        None | Some("json") => false,
        Some("dot") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`format`: {other:?} is not one of json, dot"
            )));
        }
    };
    let cluster = params.cluster.clone();
    let (graph, _): (OrphanGraph, u64) = with_projections(&state, params.at.as_deref(), move |p| {
        p.orphans().graph(cluster.as_deref())
    })
    .await?;
    if dot {
        return Ok((
            [(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
            graph.to_dot(),
        )
            .into_response());
    }
    Ok(Json(graph).into_response())
}

// ---------------------------------------------------------------------------------------------
// Incidents

/// Parameters of `GET /v1/incidents`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    /// Only this cluster.
    pub cluster: Option<String>,
    /// `open`, `closed` or `merged`.
    pub state: Option<IncidentState>,
    /// Include automatic incidents absorbed into explicit ones.
    pub all: Option<bool>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::query::INCIDENT_CURSOR_PATTERN))]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// A page of incidents, in the order they opened.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentsResponse {
    /// The log position.
    pub seq: u64,
    /// The incidents.
    pub incidents: Vec<IncidentView>,
    /// Cursor of the next page.
    pub next: Option<String>,
}

fn incident_key(i: &IncidentView) -> (u64, String) {
    (i.opened_seq, i.id.clone())
}

/// `GET /v1/incidents`.
pub async fn list_incidents(
    State(state): State<AppState>,
    params: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Result<Json<IncidentsResponse>, ApiError> {
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let (cluster, wanted, all) = (
        params.cluster.clone(),
        params.state,
        params.all == Some(true) || params.state == Some(IncidentState::Merged),
    );
    let (list, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        let mut list = p.incidents().views(p.findings(), cluster.as_deref(), all);
        list.retain(|i| wanted.is_none_or(|s| s == i.state));
        list
    })
    .await?;
    let (incidents, next) = paginate(list, incident_key, params.after.as_deref(), limit)?;
    Ok(Json(IncidentsResponse {
        seq,
        incidents,
        next,
    }))
}

/// Parameters of one incident.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentQuery {
    /// A log position or an RFC 3339 time: the incident then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
}

/// One incident.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentResponse {
    /// The log position.
    pub seq: u64,
    /// The incident.
    pub incident: IncidentView,
}

/// `GET /v1/incidents/{id}`.
pub async fn get_incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<IncidentResponse>, ApiError> {
    let params = query(params)?;
    let wanted = id.clone();
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.incidents()
            .incident(&wanted)
            .map(|i| p.incidents().view(i, p.findings()))
    })
    .await?;
    let incident = found.ok_or_else(|| no_incident(&id, seq))?;
    Ok(Json(IncidentResponse { seq, incident }))
}

pub(crate) fn no_incident(id: &str, seq: u64) -> ApiError {
    ApiError::not_found(format!(
        "no incident {id:?} at log position {seq}: list them with GET /v1/incidents"
    ))
}

/// Parameters of an incident's timeline.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentTimelineQuery {
    /// A log position or an RFC 3339 time: the timeline up to then.
    #[schemars(regex(pattern = crate::query::AT_PATTERN))]
    pub at: Option<String>,
    /// Entries after this log position.
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    pub after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// An incident timeline entry with its event.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentTimelineLine {
    /// Position, time and what it did to the incident.
    #[serde(flatten)]
    pub entry: IncidentEntry,
    /// The event in one line.
    pub summary: String,
    /// The event.
    pub event: Event,
}

/// A page of an incident's timeline, in log order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentTimelineResponse {
    /// The log position.
    pub seq: u64,
    /// The entries.
    pub timeline: Vec<IncidentTimelineLine>,
    /// Pass as `after` for the next page.
    pub next: Option<u64>,
}

/// `GET /v1/incidents/{id}/timeline`.
pub async fn incident_timeline(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<IncidentTimelineQuery>, QueryRejection>,
) -> Result<Json<IncidentTimelineResponse>, ApiError> {
    let params = query(params)?;
    let limit = page_size(params.limit)?;
    let after = position_param("after", params.after)?;
    let wanted = id.clone();
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.incidents().incident(&wanted).map(|i| {
            let start = i.timeline.partition_point(|e| e.seq <= after);
            let more = i.timeline.len() > start + limit;
            (
                i.timeline[start..(start + limit).min(i.timeline.len())].to_vec(),
                more,
            )
        })
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
