//! `/v1/stuck`: findings the sweep cannot resolve, stale alerts, check-key drift suspects,
//! long-lived ones.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::findings::{DriftView, LongLivedView, StaleAlertView, UnreachableView};

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::Route;
use crate::read::{Reference, page_size, with_projections};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/stuck",
        "getStuck",
        "Unreachable findings, stale alerts, drift suspects, long-lived ones",
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
    /// The time stale alerts are judged at: `log` (the default: each cluster's clock, the
    /// latest time of its events) or `now` (this server's clock). Each stale alert states it.
    reference: Option<Reference>,
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
    /// Firing alerts no notification named for longer than their cluster's
    /// `alert_stale_after_secs` (at most `limit`), reason `alert_stale`; never resolved by
    /// Tidemark.
    stale_alerts: Vec<StaleAlertView>,
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
    let reference = Reference::time(params.reference);
    let ((report, truncated), seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.findings()
            .stuck_page(cluster.as_deref(), reference, limit)
    })
    .await?;
    Ok(Json(StuckResponse {
        seq,
        unreachable: report.unreachable,
        stale_alerts: report.stale_alerts,
        drift_suspects: report.drift_suspects,
        long_lived: report.long_lived,
        truncated,
    }))
}
