//! What the read routes share: their parameters (`at`, `after`, `limit`, times) checked into
//! values or a 400 naming the parameter, reading the projections now or at a point of the log
//! (`?at=`, within the time travel limits), pages by cursor, and blocking reads off the async
//! workers.

use schemars::JsonSchema;
use serde::Deserialize;
use tidemark_core::{Event, Projections, Timestamp};
use tidemark_store::At;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) use crate::cursor::{
    FINDING_CURSOR_PATTERN, FLAP_EPISODE_CURSOR_PATTERN, INCIDENT_CURSOR_PATTERN,
    ORPHAN_CURSOR_PATTERN, TIMELINE_CURSOR_PATTERN,
};

/// What `at=` accepts: a log position or an RFC 3339 time.
pub(crate) const AT_PATTERN: &str = r"^([0-9]{1,19}|(19[7-9][0-9]|2[01][0-9]{2}|22[0-5][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$";
/// What `since=` and `until=` accept: an RFC 3339 time.
pub(crate) const TIME_PATTERN: &str = r"^(19[7-9][0-9]|2[01][0-9]{2}|22[0-5][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

/// Default page size.
pub(crate) const DEFAULT_PAGE: usize = 100;
/// The largest page any list answers.
pub(crate) const MAX_PAGE: usize = 1_000;
/// The largest log position a parameter may name (2^53 − 1: exact in every JSON client).
pub(crate) const MAX_POSITION: u64 = 9_007_199_254_740_991;

/// Runs blocking store work (redb reads, rebuilding a past state) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// A log position parameter, checked against [`MAX_POSITION`].
pub(crate) fn position_param(name: &str, value: Option<u64>) -> Result<u64, ApiError> {
    match value {
        Some(v) if v > MAX_POSITION => Err(ApiError::bad_request(format!(
            "`{name}`: {v} is past the largest log position ({MAX_POSITION})"
        ))),
        v => Ok(v.unwrap_or(0)),
    }
}

/// `limit=`: [`DEFAULT_PAGE`] when absent, 1 to [`MAX_PAGE`].
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

/// The time a stale alert is judged at (`?reference=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reference {
    /// Each cluster's clock: the latest time of its events in the log (the default; the same
    /// answer whenever it is asked, and a cluster that went silent still shows its stale
    /// alerts).
    #[default]
    Log,
    /// This server's clock when it answers.
    Now,
}

impl Reference {
    /// The time to judge at: `None` for each cluster's clock, the wall clock for `now`.
    pub(crate) fn time(param: Option<Self>) -> Option<Timestamp> {
        match param.unwrap_or_default() {
            Self::Log => None,
            Self::Now => Some(tidemark_store::wall_clock()),
        }
    }
}

/// An RFC 3339 time parameter (`since`, `until`).
pub(crate) fn time_param(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            Timestamp::parse_rfc3339(v).map_err(|e| ApiError::bad_request(format!("`{name}`: {e}")))
        })
        .transpose()
}

/// Parses `at=` as a position or an RFC 3339 time.
pub(crate) fn parse_at(text: &str) -> Result<At, ApiError> {
    if let Ok(seq) = text.parse::<u64>() {
        return Ok(At::Seq(seq));
    }
    Timestamp::parse_rfc3339(text).map(At::Time).map_err(|e| {
        ApiError::bad_request(format!(
            "`at`: expected a log position or an RFC 3339 time: {e}"
        ))
    })
}

/// The 404 of an incident that is not there at `seq`.
pub(crate) fn no_incident(id: &str, seq: u64) -> ApiError {
    ApiError::not_found(format!(
        "no incident {id:?} at log position {seq}: list them with GET /v1/incidents"
    ))
}

/// Runs `read` over the projections now, or rebuilt at `at` (within the time travel limits,
/// shared with concurrent requests for the same point); with the log position they are at.
pub(crate) async fn with_projections<T: Send + 'static>(
    state: &AppState,
    at: Option<&str>,
    read: impl FnOnce(&Projections) -> T + Send + 'static,
) -> Result<(T, u64), ApiError> {
    let store = state.store.clone();
    match at.map(parse_at).transpose()? {
        None => blocking(move || store.read_at(None, read).map_err(|e| ApiError::query(&e))).await,
        Some(at) => {
            let past = state.time_travel.past_state(&store, at).await?;
            blocking(move || {
                let answer = store
                    .read_past(&past.projections, read)
                    .map_err(|e| ApiError::query(&e))?;
                Ok((answer, past.seq))
            })
            .await
        }
    }
}

/// Reads the projections (now, or rebuilt at `at` within the time travel limits) and the
/// events they point at, in one consistent view of the store: `positions` names the events
/// `render` needs. (A past state's events are all stored: positions up to it never change.)
pub(crate) async fn with_projections_and_events<T: Send + 'static>(
    state: &AppState,
    at: Option<&str>,
    positions: impl FnOnce(&Projections) -> Vec<u64> + Send + 'static,
    render: impl FnOnce(&Projections, &[(u64, Event)], u64) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    let Some(at) = at.map(parse_at).transpose()? else {
        return blocking(move || {
            store
                .read_with_events(None, positions, render)
                .map_err(|e| ApiError::query(&e))
        })
        .await;
    };
    let past = state.time_travel.past_state(&store, at).await?;
    blocking(move || {
        let wanted = positions(&past.projections);
        let events: Vec<(u64, Event)> = if wanted.is_empty() {
            Vec::new()
        } else {
            store
                .events_at(&wanted)
                .map_err(|e| ApiError::query(&e))?
                .into_iter()
                .map(|(seq, stored)| (seq, stored.event))
                .collect()
        };
        store
            .read_past(&past.projections, |p| render(p, &events, past.seq))
            .map_err(|e| ApiError::query(&e))
    })
    .await
}

/// The positions of an incident's timeline (none when there is no such incident).
pub(crate) fn incident_timeline_positions(
    id: String,
) -> impl FnOnce(&Projections) -> Vec<u64> + Send + 'static {
    move |p: &Projections| {
        p.incidents()
            .incident(&id)
            .map(|i| p.incidents().timeline_positions(&i, 0, usize::MAX))
            .unwrap_or_default()
    }
}
