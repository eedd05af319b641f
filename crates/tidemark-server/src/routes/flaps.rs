//! `/v1/flaps`: why the bell keeps ringing: flapping findings, unstable check keys, churn.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::findings::{ChurnView, FlapOverview};
use tidemark_core::projections::UnstableKeyView;

use crate::cursor;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::Route;
use crate::read::{page_size, with_projections};
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
    /// Findings that flap or have flapped, sorted by (cluster, check_key); paged. Each has its
    /// latest episode; all of them are at `GET /v1/finding-flaps/{cluster}/{check_key}`.
    flapping: Vec<FlapOverview>,
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
    let after: Option<(String, String)> = params
        .after
        .as_deref()
        .map(|c| cursor::decode("after", c))
        .transpose()?;
    let cluster = params.cluster.clone();
    let (((flapping, more), unstable_keys, churn), seq) =
        with_projections(&state, params.at.as_deref(), move |p| {
            let after = after.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
            (
                p.findings().flaps_page(cluster.as_deref(), after, limit),
                p.unstable_keys_first(cluster.as_deref(), limit),
                p.findings().churn(cluster.as_deref()),
            )
        })
        .await?;
    let next = if more {
        flapping
            .last()
            .map(|f| cursor::encode(&(f.cluster.clone(), f.check_key.clone())))
    } else {
        None
    };
    Ok(Json(FlapsResponse {
        seq,
        flapping,
        next,
        unstable_keys,
        churn,
    }))
}
