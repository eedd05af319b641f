//! `/v1/findings`: the findings, filtered and paged, and one finding with a page of its
//! timeline; `/v1/finding-history` and `/v1/finding-flaps`: a finding's occurrences and flap
//! episodes, paged. A finding in an answer carries its current occurrence and its counts, never
//! its whole history (which grows with the log).

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::flaps::{FlapDetector, FlapEpisodeView};
use tidemark_core::{
    Event, FindingOverview, FindingState, Occurrence, Payload, Severity, Timestamp,
};
use tidemark_store::TimelineEntry;

use crate::cursor;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::Route;
use crate::read::{blocking, page_size, position_param, with_projections};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/findings",
            "listFindings",
            "Findings, filtered, paged by (cluster, check_key)",
            list_findings,
        ),
        Route::get(
            "/v1/findings/{cluster}/{*check_key}",
            "getFinding",
            "One finding: its current occurrence, its counts, a page of its timeline",
            get_finding,
        ),
        // A check key may hold `/`, so it ends the path: the sub-resources go before it.
        Route::get(
            "/v1/finding-history/{cluster}/{*check_key}",
            "getFindingHistory",
            "A finding's occurrences, oldest first, paged",
            finding_history,
        ),
        Route::get(
            "/v1/finding-flaps/{cluster}/{*check_key}",
            "getFindingFlapEpisodes",
            "A finding's flap episodes, in the order they started, paged",
            finding_flap_episodes,
        ),
    ]
}

/// Filters of `GET /v1/findings`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindingsQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// `active` or `resolved`.
    state: Option<FindingState>,
    /// Only this category.
    category: Option<String>,
    /// Only this severity.
    severity: Option<Severity>,
    /// A log position or an RFC 3339 time: the state then, instead of now.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::read::FINDING_CURSOR_PATTERN))]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// A page of findings, sorted by (cluster, check_key).
#[derive(Debug, Serialize, JsonSchema)]
struct FindingsResponse {
    /// The log position the findings are at.
    seq: u64,
    /// Findings on this page.
    count: usize,
    /// The findings: each with its current occurrence and counts; its occurrences are at
    /// `GET /v1/finding-history/{cluster}/{check_key}`.
    findings: Vec<FindingOverview>,
    /// Cursor of the next page; absent when there are no more.
    next: Option<String>,
}

fn finding_key(view: &FindingOverview) -> (String, String) {
    (view.cluster.clone(), view.check_key.clone())
}

/// `GET /v1/findings`.
async fn list_findings(
    State(state): State<AppState>,
    ApiQuery(filters): ApiQuery<FindingsQuery>,
) -> Result<Json<FindingsResponse>, ApiError> {
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
struct FindingQuery {
    /// A log position or an RFC 3339 time: the finding then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// Timeline entries after this log position.
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    after: Option<u64>,
    /// Timeline page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
    /// Whole events in the timeline; by default a cycle event keeps only this finding's entries.
    full_events: Option<bool>,
}

/// One finding and a page of its timeline.
#[derive(Debug, Serialize, JsonSchema)]
struct FindingResponse {
    /// The log position it is at.
    seq: u64,
    /// The finding: its current occurrence and counts. Its occurrences are at
    /// `GET /v1/finding-history/{cluster}/{check_key}`, its flap episodes at
    /// `GET /v1/finding-flaps/{cluster}/{check_key}`.
    finding: FindingOverview,
    /// Events that changed or named it, in log order.
    timeline: Vec<TimelineEntryView>,
    /// Pass as `after` for the next timeline page.
    next: Option<u64>,
}

/// A timeline entry: an event and what it did to the finding.
#[derive(Debug, Serialize, JsonSchema)]
struct TimelineEntryView {
    /// Log position.
    seq: u64,
    /// When the store recorded it.
    recorded_at: Timestamp,
    /// What it did: `opened`, `resolved_auto`, `flap_started_count`, ...
    changes: Vec<String>,
    /// The event (a cycle event keeps only this finding's entries unless `full_events=true`).
    event: Event,
    /// Whether other findings' entries were left out of the cycle event.
    trimmed: bool,
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
async fn get_finding(
    State(state): State<AppState>,
    ApiPath((cluster, check_key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<FindingQuery>,
) -> Result<Json<FindingResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let (c, k) = (cluster.clone(), check_key.clone());
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.findings().overview(&c, &k)
    })
    .await?;
    let finding = found.ok_or_else(|| no_finding(&cluster, &check_key, seq))?;
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
        timeline,
        next,
    }))
}

/// The 404 of a finding that is not there at `seq`.
fn no_finding(cluster: &str, check_key: &str, seq: u64) -> ApiError {
    ApiError::not_found(format!(
        "no finding {check_key:?} in cluster {cluster:?} at log position {seq}: list them with GET /v1/findings"
    ))
}

/// Parameters of `GET /v1/finding-history/{cluster}/{check_key}`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// A log position or an RFC 3339 time: the history up to then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// Occurrences that opened after this log position (the `next` of the previous page).
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// A page of a finding's occurrences: followed to the end, the `history` that
/// `tidemark findings --json` and `tidemark replay --json` show.
#[derive(Debug, Serialize, JsonSchema)]
struct HistoryResponse {
    /// The log position it is at.
    seq: u64,
    /// How many occurrences the finding has in all.
    occurrences: u64,
    /// Its occurrences on this page, oldest first.
    history: Vec<Occurrence>,
    /// The `opened_seq` of the last one: pass as `after` for the next page; absent when there
    /// are no more.
    next: Option<u64>,
}

/// `GET /v1/finding-history/{cluster}/{*check_key}`.
async fn finding_history(
    State(state): State<AppState>,
    ApiPath((cluster, check_key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let after = position_param("after", params.after)?;
    let (c, k) = (cluster.clone(), check_key.clone());
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        let findings = p.findings();
        let overview = findings.overview(&c, &k)?;
        let page = findings.history_page(&c, &k, after, limit)?;
        Some((overview.occurrences, page))
    })
    .await?;
    let (occurrences, (history, more)) =
        found.ok_or_else(|| no_finding(&cluster, &check_key, seq))?;
    let next = if more {
        history.last().map(|o| o.opened_seq)
    } else {
        None
    };
    Ok(Json(HistoryResponse {
        seq,
        occurrences,
        history,
        next,
    }))
}

/// Parameters of `GET /v1/finding-flaps/{cluster}/{check_key}`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FlapEpisodesQuery {
    /// A log position or an RFC 3339 time: the episodes up to then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::read::FLAP_EPISODE_CURSOR_PATTERN))]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// A page of a finding's flap episodes: followed to the end, the `episodes` that
/// `tidemark flaps --json` shows for it.
#[derive(Debug, Serialize, JsonSchema)]
struct FlapEpisodesResponse {
    /// The log position it is at.
    seq: u64,
    /// How many episodes the finding has in all, by either detector.
    flap_episodes: u64,
    /// Its episodes on this page, in the order they started.
    episodes: Vec<FlapEpisodeView>,
    /// Cursor of the next page; absent when there are no more.
    next: Option<String>,
}

/// `GET /v1/finding-flaps/{cluster}/{*check_key}`.
async fn finding_flap_episodes(
    State(state): State<AppState>,
    ApiPath((cluster, check_key)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<FlapEpisodesQuery>,
) -> Result<Json<FlapEpisodesResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let after: Option<(u64, FlapDetector)> = params
        .after
        .as_deref()
        .map(|c| cursor::decode("after", c))
        .transpose()?;
    let (c, k) = (cluster.clone(), check_key.clone());
    let (found, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        let findings = p.findings();
        let overview = findings.overview(&c, &k)?;
        let page = findings.flap_episodes_page(&c, &k, after, limit)?;
        Some((overview.flap_episodes, page))
    })
    .await?;
    let (flap_episodes, (episodes, more)) =
        found.ok_or_else(|| no_finding(&cluster, &check_key, seq))?;
    let next = if more {
        episodes
            .last()
            .map(|e| cursor::encode(&(e.started_seq, e.detector)))
    } else {
        None
    };
    Ok(Json(FlapEpisodesResponse {
        seq,
        flap_episodes,
        episodes,
        next,
    }))
}
