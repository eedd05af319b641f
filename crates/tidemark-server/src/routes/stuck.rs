//! `/v1/stuck`: findings the sweep cannot resolve, check-key drift suspects, long-lived ones.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::findings::{DriftView, LongLivedView, UnreachableView};

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::Route;
use crate::read::{page_size, with_projections};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/stuck",
        "getStuck",
        "Unreachable findings, drift suspects, long-lived ones",
        stuck,
    )]
}

/// Parameters of `GET /v1/stuck`: one bounded page per list.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StuckQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// Most entries per list, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// Stuck findings, drift suspects, long-lived ones.
#[derive(Debug, Serialize, JsonSchema)]
struct StuckResponse {
    /// The log position.
    seq: u64,
    /// Findings the sweep cannot resolve (at most `limit`).
    unreachable: Vec<UnreachableView>,
    /// Check-key drift suspects (the latest `limit`).
    drift_suspects: Vec<DriftView>,
    /// Persistent, old findings (at most `limit`).
    long_lived: Vec<LongLivedView>,
    /// Whether a list was cut at `limit`.
    truncated: bool,
}

/// `GET /v1/stuck`.
async fn stuck(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StuckQuery>,
) -> Result<Json<StuckResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let cluster = params.cluster.clone();
    let ((report, truncated), seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.findings().stuck_page(cluster.as_deref(), limit)
    })
    .await?;
    Ok(Json(StuckResponse {
        seq,
        unreachable: report.unreachable,
        drift_suspects: report.drift_suspects,
        long_lived: report.long_lived,
        truncated,
    }))
}
