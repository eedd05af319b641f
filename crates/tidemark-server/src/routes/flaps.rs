//! `/v1/flaps`: why the bell keeps ringing: flapping findings, unstable check keys, churn.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::findings::{ChurnView, FlapView};
use tidemark_core::projections::UnstableKeyView;

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::Route;
use crate::read::{page_size, paginate, with_projections};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/flaps",
        "getFlaps",
        "Flapping findings, unstable check keys, churn",
        flaps,
    )]
}

/// Parameters of `GET /v1/flaps`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FlapsQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::read::FINDING_CURSOR_PATTERN))]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// Why the bell keeps ringing.
#[derive(Debug, Serialize, JsonSchema)]
struct FlapsResponse {
    /// The log position.
    seq: u64,
    /// Findings that flap or have flapped, sorted by (cluster, check_key); paged.
    flapping: Vec<FlapView>,
    /// Cursor of the next page of `flapping`.
    next: Option<String>,
    /// Check keys whose parts look unstable (at most one page).
    unstable_keys: Vec<UnstableKeyView>,
    /// Categories whose new keys keep dying young.
    churn: Vec<ChurnView>,
}

/// `GET /v1/flaps`.
async fn flaps(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FlapsQuery>,
) -> Result<Json<FlapsResponse>, ApiError> {
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
