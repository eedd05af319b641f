//! `/v1/quarantine`: inputs that could not be decoded or validated, with their reasons, by id,
//! paged like every list (`next` back as `after`).

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::Timestamp;
use tidemark_store::QuarantineEntry;

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::Route;
use crate::read::{blocking, page_size, position_param};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/quarantine",
        "listQuarantine",
        "Inputs that could not be decoded or validated, with their reasons",
        quarantine,
    )]
}

/// Parameters of `GET /v1/quarantine`.
#[derive(Deserialize, Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
struct QuarantineQuery {
    /// Inputs after this quarantine id (the `next` of the previous page).
    #[schemars(range(max = 9_007_199_254_740_991_u64))]
    after: Option<u64>,
    /// At most this many (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// A refused input, kept once however often it was refused.
#[derive(Debug, Serialize, JsonSchema)]
struct QuarantinedInput {
    /// Quarantine id.
    #[schemars(range(min = 1))]
    id: u64,
    /// When it was first refused.
    recorded_at: Timestamp,
    /// Where it was first refused.
    origin: String,
    /// Why it was refused.
    reason: String,
    /// The bytes, as text (lossy for bytes that are not UTF-8).
    raw: String,
    /// Byte length of the raw input.
    raw_bytes: usize,
    /// How often the same bytes were refused for the same reason.
    #[schemars(range(min = 1))]
    count: u64,
    /// When it was last refused (`recorded_at` when it was refused once).
    last_seen: Timestamp,
}

impl From<QuarantineEntry> for QuarantinedInput {
    fn from(entry: QuarantineEntry) -> Self {
        let record = entry.record;
        Self {
            id: entry.id,
            recorded_at: record.recorded_at,
            origin: record.origin,
            reason: record.reason,
            raw: record.raw,
            raw_bytes: record.raw_bytes,
            count: record.count,
            last_seen: record.last_seen,
        }
    }
}

/// A page of the quarantine, by quarantine id.
#[derive(Debug, Serialize, JsonSchema)]
struct QuarantineResponse {
    /// The refused inputs, each kept once however often it was refused.
    quarantine: Vec<QuarantinedInput>,
    /// Pass as `after` for the next page; null when there are no more.
    #[schemars(range(min = 1))]
    next: Option<u64>,
}

/// `GET /v1/quarantine[?after][&limit]`.
async fn quarantine(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<QuarantineQuery>,
) -> Result<Json<QuarantineResponse>, ApiError> {
    let store = state.store.clone();
    let limit = page_size(params.limit)?;
    let after = position_param("after", params.after)?;
    let mut entries = blocking(move || {
        store
            .quarantine(after + 1, limit + 1)
            .map_err(|e| ApiError::internal(&e))
    })
    .await?;
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(QuarantineResponse {
        quarantine: entries.into_iter().map(Into::into).collect(),
        next,
    }))
}
