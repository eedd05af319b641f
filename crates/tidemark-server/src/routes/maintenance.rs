//! `/v1/maintenance`: the maintenance windows in effect (ADR 0007), open at a time by default,
//! or all of them; with each cluster's counts and settings. `at=` reads the state at a log
//! position or a time (time travel): "why was this quiet at 02:14?" is
//! `GET /v1/maintenance?at=2026-03-02T02:14:00Z`.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::findings::{ClusterMaintenanceView, MaintenanceWindowView};

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::Route;
use tidemark_store::At;

use crate::read::{page_size, parse_at, with_projections};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/maintenance",
        "listMaintenanceWindows",
        "Maintenance windows in effect: open at a time (by default each cluster's clock), or all",
        list_windows,
    )]
}

/// Which windows `GET /v1/maintenance` lists.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum WindowState {
    /// Open at the reference time (the default).
    Open,
    /// Every window in effect: scheduled, not cancelled, not over.
    All,
}

/// Parameters of `GET /v1/maintenance`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MaintenanceQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// A log position or an RFC 3339 time: the windows in effect then. A time is also the
    /// time they are judged open at; without one, each cluster's clock is.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// `open` (the default): the windows open at the reference time; `all`: every window in
    /// effect.
    state: Option<WindowState>,
    /// Most windows, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// The windows, and the clusters' counts.
#[derive(Debug, Serialize, JsonSchema)]
struct MaintenanceResponse {
    /// The log position of the state read.
    seq: u64,
    /// The windows, by cluster, in the order they were scheduled (at most `limit`).
    windows: Vec<MaintenanceWindowView>,
    /// Whether the list was cut at `limit`.
    truncated: bool,
    /// Each cluster that has seen a window or a maintenance setting: windows in effect, refused
    /// over the limit, findings marked `in_maintenance`, and its settings.
    clusters: Vec<ClusterMaintenanceView>,
}

/// `GET /v1/maintenance`.
async fn list_windows(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<MaintenanceQuery>,
) -> Result<Json<MaintenanceResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let reference = match params.at.as_deref().map(parse_at).transpose()? {
        Some(At::Time(time)) => Some(time),
        _ => None,
    };
    let only_open = params.state.unwrap_or(WindowState::Open) == WindowState::Open;
    let cluster = params.cluster.clone();
    let ((windows, truncated, clusters), seq) =
        with_projections(&state, params.at.as_deref(), move |p| {
            p.findings()
                .maintenance_page(cluster.as_deref(), reference, only_open, limit)
        })
        .await?;
    Ok(Json(MaintenanceResponse {
        seq,
        windows,
        truncated,
        clusters,
    }))
}
