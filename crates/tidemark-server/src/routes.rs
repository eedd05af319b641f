//! The `/v1` routes of the embedded server, plus `/healthz` and `/readyz`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tidemark_core::Timestamp;
use tidemark_store::{At, Input, Outcome, QuarantineEntry, Store};

use crate::error::ApiError;
use crate::ingest;
use crate::query::{blocking, query, time_param};
use crate::replica::{Gauge, Health, PublishResult, Publisher};
use crate::writer::{WriteError, WriterClient};

/// Where ingested events go.
#[derive(Clone)]
pub enum Ingest {
    /// Embedded: the local writer appends them to the store.
    Local(WriterClient),
    /// Replica: they are published to the distributed log, which the follower applies.
    Publish {
        /// The log.
        publisher: Arc<dyn Publisher>,
        /// The follower's health.
        health: Arc<dyn Health>,
    },
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(_) => f.write_str("Ingest::Local"),
            Self::Publish { .. } => f.write_str("Ingest::Publish"),
        }
    }
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The store, for reads.
    pub store: Arc<Store>,
    /// Where ingested events go.
    pub ingest: Ingest,
    /// The request body limit, for messages.
    pub max_body_bytes: usize,
    /// Items per request, and how much of them an answer details.
    pub limits: ingest::IngestLimits,
    /// Who may read and write.
    pub auth: crate::auth::AuthPolicy,
    /// How Alertmanager webhooks become events.
    pub bridge: Arc<tidemark_core::alertmanager::BridgeConfig>,
    /// Request and ingest counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The bound on past states (`?at=`) in memory, shared between requests.
    pub time_travel: Arc<crate::time_travel::TimeTravel>,
}

// ---------------------------------------------------------------------------------------------
// Ingest

/// One item's result.
#[derive(Serialize)]
struct ItemResult {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    id: Option<String>,
    /// The alert's name (Alertmanager bridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The alert had no `alertname`: its name was derived.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    name_derived: bool,
    #[serde(flatten)]
    outcome: Outcome,
}

/// How many rejected items share one reason.
#[derive(Serialize, Debug, PartialEq, Eq)]
struct ReasonCount {
    reason: String,
    count: usize,
}

/// Lists the first rejected items of an answer one by one and counts every rejected item by
/// what is wrong with it, so an answer stays small however many items were rejected.
#[derive(Serialize, Debug, Default)]
struct RejectedSummary {
    /// Rejected items left out of `results` (past the first `max_rejected_listed`).
    rejected_not_listed: usize,
    /// Every rejected item, counted by what is wrong with it, most frequent first (at most
    /// `max_rejected_listed` reasons; the rest are counted under "other reasons").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rejected_reasons: Vec<ReasonCount>,
    #[serde(skip)]
    max_listed: usize,
    #[serde(skip)]
    listed: usize,
    #[serde(skip)]
    counts: BTreeMap<String, usize>,
}

impl RejectedSummary {
    fn new(max_listed: usize) -> Self {
        Self {
            max_listed,
            ..Self::default()
        }
    }

    /// Counts one rejected item; answers whether to list it.
    fn note(&mut self, problem: &str) -> bool {
        *self.counts.entry(problem.to_owned()).or_default() += 1;
        if self.listed < self.max_listed {
            self.listed += 1;
            true
        } else {
            self.rejected_not_listed += 1;
            false
        }
    }

    /// Orders the reasons, most frequent first, keeping at most `max_listed` of them.
    fn finish(mut self) -> Self {
        let mut reasons: Vec<ReasonCount> = std::mem::take(&mut self.counts)
            .into_iter()
            .map(|(reason, count)| ReasonCount { reason, count })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        if reasons.len() > self.max_listed {
            let other: usize = reasons[self.max_listed..].iter().map(|r| r.count).sum();
            reasons.truncate(self.max_listed);
            reasons.push(ReasonCount {
                reason: "other reasons".into(),
                count: other,
            });
        }
        self.rejected_reasons = reasons;
        self
    }
}

/// The answer to an ingest request.
#[derive(Serialize)]
struct IngestResponse {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    /// Rejected items whose raw bytes the quarantine did not keep (it was at its bound).
    raw_not_kept: usize,
    results: Vec<ItemResult>,
    #[serde(flatten)]
    summary: RejectedSummary,
}

/// Where a request came from, for quarantine origins.
fn origin_of(peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>) -> String {
    match peer {
        Some(Extension(ConnectInfo(peer))) => format!("http {peer}"),
        None => "http".to_owned(),
    }
}

/// `POST /v1/events`: one event, a JSON array, or NDJSON, at most `max_items_per_request`
/// items (413 above, nothing stored). 200 when nothing was rejected, 422 when something was (the
/// rest is stored; the rejected items are in quarantine, each distinct one once).
pub async fn post_events(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    let body = request_body(&state, body)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let origin = origin_of(peer);
    let max_items = state.limits.max_items_per_request;
    let items = ingest::parse(&body, content_type, &origin, max_items).inspect_err(|e| {
        if e.code == "too_many_items" {
            state.metrics.request_refused("max_items_per_request");
        }
    })?;
    let rejected: Vec<&str> = items.iter().filter_map(|i| i.problem.as_deref()).collect();
    if let Some(first) = rejected.first() {
        // Debug, not warn: the client is answered item by item and the quarantine and
        // tidemark_events_ingested_total{outcome="rejected"} count them; a client sending bad
        // events in a loop must not flood the log.
        tracing::debug!(
            %origin,
            items = items.len(),
            rejected = rejected.len(),
            first_reason = %first,
            "POST /v1/events: items rejected (kept in quarantine; the answer lists them)"
        );
    }
    store_inputs(&state, items, StatusCode::UNPROCESSABLE_ENTITY).await
}

/// The request body, or 413 above the limit and 400 when it cannot be read.
fn request_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(state.max_body_bytes)
        } else {
            ApiError::bad_request(e.body_text())
        }
    })
}

/// `POST /v1/bridges/alertmanager`: an Alertmanager webhook (version 4) becomes `alert.fired` /
/// `alert.resolved` events, one per alert, with ids from (fingerprint, status, start time) so
/// a re-sent notification is stored once. Each alert stands alone: one that cannot be
/// translated is rejected (logged at warn, kept in quarantine once however often Alertmanager
/// re-sends it) while the others are stored, and the answer is 200 with each alert's result,
/// so Alertmanager never holds back a group's good alerts. A payload that is not a version 4
/// webhook at all is answered 400 and kept in quarantine (once; on a replica, in its own).
pub async fn post_alertmanager(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    let body = request_body(&state, body)?;
    let origin = format!("{} alertmanager webhook", origin_of(peer));
    let alerts = match tidemark_core::alertmanager::translate_each(&body, &state.bridge) {
        Ok(alerts) => alerts,
        Err(error) => return Err(refuse_webhook(&state, &body, &origin, &error).await),
    };
    let max_items = state.limits.max_items_per_request;
    if alerts.len() > max_items {
        state.metrics.request_refused("max_items_per_request");
        let mut refused = ApiError::too_many_items(max_items);
        refused.message.push_str(
            " (set `max_alerts` in Alertmanager's webhook_config to at most this number)",
        );
        return Err(refused);
    }
    let items: Vec<ingest::Item> = alerts
        .into_iter()
        .map(|alert| ingest::alert_item(alert, &origin))
        .collect();
    // Every rejection at warn, at most `max_rejected_listed` lines per request.
    let rejected = items.iter().filter_map(|i| match &i.input {
        Input::Rejected { reason, origin, .. } => Some((reason, origin)),
        Input::Event(_) => None,
    });
    let mut more = 0;
    for (n, (reason, origin)) in rejected.enumerate() {
        if n < state.limits.max_rejected_listed {
            tracing::warn!(%origin, %reason, "alertmanager alert rejected (kept in quarantine; the other alerts are stored)");
        } else {
            more += 1;
        }
    }
    if more > 0 {
        tracing::warn!(%origin, more, "more alertmanager alerts of this webhook rejected (kept in quarantine)");
    }
    store_inputs(&state, items, StatusCode::OK).await
}

/// A payload that is not a version 4 webhook: kept in quarantine (once, however often it is
/// re-sent), logged, and answered 400 with the reason.
async fn refuse_webhook(
    state: &AppState,
    body: &[u8],
    origin: &str,
    error: &tidemark_core::alertmanager::WebhookError,
) -> ApiError {
    let reason = format!("alertmanager webhook: {error}");
    tracing::warn!(%origin, %reason, "alertmanager webhook refused");
    let rejected = Input::Rejected {
        raw: body.to_vec(),
        reason: reason.clone(),
        origin: origin.to_owned(),
    };
    let kept = match &state.ingest {
        Ingest::Local(writer) => match writer.write(vec![rejected]).await.as_deref() {
            Ok(
                [
                    Outcome::Rejected {
                        quarantine_id: Some(id),
                        ..
                    },
                ],
            ) => format!(" (kept in quarantine as #{id})"),
            Ok(_) => " (not kept: the quarantine is full)".to_owned(),
            Err(e) => format!(" (not kept: {e})"),
        },
        Ingest::Publish { .. } => {
            keep_rejected_locally(state, vec![rejected]).await;
            String::new()
        }
    };
    ApiError::bad_request(format!("{reason}{kept}"))
}

/// Stores (or, on a replica, publishes) parsed items and answers with each one's outcome:
/// every accepted and duplicate item, the first rejected ones, and every rejected one counted
/// by reason. `status_when_rejected` is the status when some were rejected.
async fn store_inputs(
    state: &AppState,
    items: Vec<ingest::Item>,
    status_when_rejected: StatusCode,
) -> Result<axum::response::Response, ApiError> {
    let mut inputs = Vec::with_capacity(items.len());
    let mut about = Vec::with_capacity(items.len());
    for item in items {
        inputs.push(item.input);
        about.push((item.id, item.line, item.problem, item.alert_name));
    }
    let writer = match &state.ingest {
        Ingest::Local(writer) => writer,
        Ingest::Publish { publisher, .. } => {
            let ids = about.into_iter().map(|(id, ..)| id).collect();
            let mut response = publish_events(state, publisher.as_ref(), ids, inputs).await?;
            if response.status() == StatusCode::UNPROCESSABLE_ENTITY {
                // Rejected items (and nothing unpublished): the bridge answers 200 here too.
                *response.status_mut() = status_when_rejected;
            }
            return Ok(response);
        }
    };
    let outcomes = match writer.write(inputs).await {
        Ok(outcomes) => outcomes,
        Err(WriteError::DiskFull {
            message,
            retry_after_secs,
        }) => {
            // 507, and when to try again: nothing of the request was stored.
            let mut response = ApiError::insufficient_storage(message).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            return Ok(response);
        }
        Err(e @ WriteError::Stopped) => return Err(ApiError::unavailable(e.to_string())),
        Err(e @ WriteError::Store(_)) => {
            return Err(ApiError::unavailable(format!("{e}; retry later")));
        }
    };
    let mut response = IngestResponse {
        accepted: 0,
        duplicates: 0,
        rejected: 0,
        raw_not_kept: 0,
        results: Vec::with_capacity(outcomes.len()),
        summary: RejectedSummary::new(state.limits.max_rejected_listed),
    };
    for (index, (outcome, (id, line, problem, alert_name))) in
        outcomes.into_iter().zip(about).enumerate()
    {
        match &outcome {
            Outcome::Accepted { .. } => response.accepted += 1,
            Outcome::Duplicate { .. } => response.duplicates += 1,
            Outcome::Rejected {
                reason, raw_kept, ..
            } => {
                response.rejected += 1;
                response.raw_not_kept += usize::from(!raw_kept);
                if !response.summary.note(problem.as_deref().unwrap_or(reason)) {
                    continue;
                }
            }
        }
        let (name, name_derived) = alert_name.map_or((None, false), |(n, d)| (Some(n), d));
        response.results.push(ItemResult {
            index,
            line,
            id,
            name,
            name_derived,
            outcome,
        });
    }
    response.summary = response.summary.finish();
    let status = if response.rejected == 0 {
        StatusCode::OK
    } else {
        status_when_rejected
    };
    Ok((status, Json(response)).into_response())
}

/// One item's result in replica mode.
#[derive(Serialize)]
struct PublishItem {
    index: usize,
    id: Option<String>,
    #[serde(flatten)]
    result: PublishItemResult,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PublishItemResult {
    Log(PublishResult),
    Rejected {
        status: &'static str,
        reason: String,
        /// Where this replica keeps the item (absent when it could not be kept).
        #[serde(skip_serializing_if = "Option::is_none")]
        quarantine_id: Option<u64>,
    },
}

#[derive(Serialize)]
struct PublishResponse {
    published: usize,
    duplicates: usize,
    rejected: usize,
    /// Sent, but not acknowledged in time: they may be in the log (or get there later).
    unknown: usize,
    failed: usize,
    /// With a 503: what happened and what to do (`unknown` or `failed` items).
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    results: Vec<PublishItem>,
}

/// Replica mode: valid events go to the distributed log; invalid ones are answered with their
/// reason, not published, and kept in this replica's own quarantine. 200 when all are in the
/// log, 422 when some were invalid, 503 when some were not acknowledged in time (their outcome
/// is unknown) or not sent: retrying with the same ids is safe, the log dedupes them.
async fn publish_events(
    state: &AppState,
    publisher: &dyn Publisher,
    ids: Vec<Option<String>>,
    inputs: Vec<Input>,
) -> Result<axum::response::Response, ApiError> {
    let mut events: Vec<tidemark_core::Event> = Vec::new();
    let mut rejected: Vec<Input> = Vec::new();
    let mut is_event = Vec::with_capacity(inputs.len());
    for input in inputs {
        is_event.push(matches!(input, Input::Event(_)));
        match input {
            Input::Event(event) => events.push(event),
            rejected_input @ Input::Rejected { .. } => rejected.push(rejected_input),
        }
    }
    let mut kept = keep_rejected_locally(state, rejected).await.into_iter();
    let mut published = publisher.publish(events).await.into_iter();
    let mut response = PublishResponse {
        published: 0,
        duplicates: 0,
        rejected: 0,
        unknown: 0,
        failed: 0,
        code: None,
        message: None,
        results: Vec::new(),
    };
    for (index, (is_event, id)) in is_event.into_iter().zip(ids).enumerate() {
        let result = if is_event {
            let result = published.next().unwrap_or(PublishResult::Failed {
                reason: "no answer from the publisher".into(),
            });
            match &result {
                PublishResult::Published { .. } => response.published += 1,
                PublishResult::Duplicate { .. } => response.duplicates += 1,
                PublishResult::Unknown { .. } => response.unknown += 1,
                PublishResult::Failed { .. } => response.failed += 1,
            }
            PublishItemResult::Log(result)
        } else {
            response.rejected += 1;
            let (reason, quarantine_id) = kept.next().unwrap_or_default();
            PublishItemResult::Rejected {
                status: "rejected",
                reason,
                quarantine_id,
            }
        };
        response.results.push(PublishItem { index, id, result });
    }
    state.metrics.published(
        response.published as u64,
        response.duplicates as u64,
        response.unknown as u64,
        response.failed as u64,
    );
    let status = if response.unknown > 0 || response.failed > 0 {
        let (code, message) = unpublished_message(response.unknown, response.failed);
        response.code = Some(code);
        response.message = Some(message);
        StatusCode::SERVICE_UNAVAILABLE
    } else if response.rejected > 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(response)).into_response())
}

/// The 503's code and message when events are not known to be in the log.
fn unpublished_message(unknown: usize, failed: usize) -> (&'static str, String) {
    let retry = "retrying with the same ids is safe: an event the log holds already is answered \
                 `duplicate` and applied once";
    if unknown > 0 {
        (
            "outcome_unknown",
            format!(
                "{unknown} event(s) were sent to the log but not acknowledged in time (see their \
                 `reason`), {failed} were not sent: the outcome of the unacknowledged ones is \
                 unknown, they may be in the log now or get there when it is reachable again; \
                 {retry}"
            ),
        )
    } else {
        (
            "not_published",
            format!("{failed} event(s) were not sent to the log (see their `reason`); {retry}"),
        )
    }
}

/// A replica keeps the items its API refused in its own quarantine (they take no log position:
/// a replica's positions are the stream's). Answers each item's reason and quarantine id; an
/// item that could not be kept says so in its reason (the error is logged and counted).
async fn keep_rejected_locally(
    state: &AppState,
    rejected: Vec<Input>,
) -> Vec<(String, Option<u64>)> {
    if rejected.is_empty() {
        return Vec::new();
    }
    let reasons: Vec<String> = rejected
        .iter()
        .map(|input| match input {
            Input::Rejected { reason, .. } => reason.clone(),
            Input::Event(_) => String::new(),
        })
        .collect();
    let store = state.store.clone();
    let started = std::time::Instant::now();
    let kept = tokio::task::spawn_blocking(move || {
        store.quarantine_rejected(&rejected, tidemark_store::wall_clock())
    })
    .await;
    let error = match kept {
        Ok(Ok(outcomes)) => {
            state
                .metrics
                .batch(started.elapsed(), 0, 0, outcomes.len() as u64);
            return reasons
                .into_iter()
                .zip(outcomes)
                .map(|(reason, outcome)| match outcome {
                    Outcome::Rejected { quarantine_id, .. } => (reason, quarantine_id),
                    _ => (reason, None),
                })
                .collect();
        }
        Ok(Err(e)) => {
            let disk_full = matches!(e, tidemark_store::AppendError::DiskFull { .. });
            state.metrics.batch_failed(disk_full);
            e.to_string()
        }
        Err(e) => e.to_string(),
    };
    tracing::error!(%error, items = reasons.len(), "could not keep refused items in quarantine");
    reasons
        .into_iter()
        .map(|reason| (format!("{reason} (not kept in quarantine: {error})"), None))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shared parameters

/// Parses `at=` as a position or an RFC 3339 time.
pub fn parse_at(text: &str) -> Result<At, ApiError> {
    if let Ok(seq) = text.parse::<u64>() {
        return Ok(At::Seq(seq));
    }
    Timestamp::parse_rfc3339(text).map(At::Time).map_err(|e| {
        ApiError::bad_request(format!(
            "`at`: expected a log position or an RFC 3339 time: {e}"
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Timeline and quarantine

/// Parameters of `GET /v1/timeline`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    cluster: String,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// A page of a cluster's events, by event time (ties in log order).
#[derive(Debug, Serialize)]
pub struct ClusterTimelineResponse {
    /// The events, with their positions.
    pub timeline: Vec<tidemark_store::TimelineEntry>,
    /// Pass as `after` for the next page; null when there are no more.
    pub next: Option<String>,
}

/// `GET /v1/timeline?cluster=C[&since][&until][&after][&limit]`: a cluster's events by time,
/// paged by a cursor over (event time, position), so events sharing a time are neither repeated
/// nor skipped.
pub async fn cluster_timeline(
    State(state): State<AppState>,
    params: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let params = query(params)?;
    let since = time_param("since", params.since.as_deref())?;
    let until = time_param("until", params.until.as_deref())?;
    let limit = crate::query::page_size(params.limit)?;
    let after = params
        .after
        .as_deref()
        .map(|c| crate::cursor::decode::<(i64, u64)>("after", c))
        .transpose()?
        .map(|(nanos, seq)| (Timestamp::from_unix_nanos(nanos), seq));
    let store = state.store.clone();
    let page = blocking(move || {
        store
            .cluster_timeline_page(&params.cluster, since, until, after, limit)
            .map_err(|e| ApiError::internal(&e))
    })
    .await?;
    Ok(Json(ClusterTimelineResponse {
        timeline: page.entries,
        next: page
            .next
            .map(|(time, seq)| crate::cursor::encode(&(time.unix_nanos(), seq))),
    }))
}

/// Parameters of `GET /v1/quarantine`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct QuarantineQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// A page of the quarantine, by quarantine id.
#[derive(Debug, Serialize)]
pub struct QuarantineResponse {
    /// The refused inputs, each kept once however often it was refused.
    pub quarantine: Vec<QuarantineEntry>,
    /// Pass as `after` for the next page; null when there are no more.
    pub next: Option<u64>,
}

/// `GET /v1/quarantine[?after][&limit]`: inputs that could not be decoded or validated, with
/// their reasons, by id, paged like every list (`next` back as `after`).
pub async fn quarantine(
    State(state): State<AppState>,
    params: Result<Query<QuarantineQuery>, QueryRejection>,
) -> Result<Json<QuarantineResponse>, ApiError> {
    let params = query(params)?;
    let store = state.store.clone();
    let limit = crate::query::page_size(params.limit)?;
    let after = crate::query::position_param("after", params.after)?;
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
        quarantine: entries,
        next,
    }))
}

// ---------------------------------------------------------------------------------------------
// Health

/// `GET /healthz`: the process answers.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: embedded, the store is open and the writer runs; replica, the follower is
/// consuming, has not diverged, and its lag is under the threshold.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    // The store's count (every origin, across restarts), the same in both modes.
    let (checkpoint, quarantined) = blocking(move || {
        Ok((
            store.checkpoint(),
            store.stats().ok().map(|stats| stats.quarantined),
        ))
    })
    .await
    .unwrap_or((0, None));
    let (ready, mut detail) = match &state.ingest {
        Ingest::Local(writer) => {
            let ready = writer.is_running();
            (
                ready,
                serde_json::json!({"status": if ready { "ready" } else { "stopping" }, "checkpoint": checkpoint}),
            )
        }
        Ingest::Publish { health, .. } => health.readiness(),
    };
    // Reads keep working on a full disk, so the server stays ready; `writes` says why ingest
    // (or, on a replica, applying the stream) is refused.
    if let Some(object) = detail.as_object_mut() {
        if let Some(quarantined) = quarantined {
            object.insert("quarantined".into(), quarantined.into());
        }
        match state.store.disk_full() {
            None => {
                object.insert("writes".into(), "ok".into());
            }
            Some(full) => {
                object.insert("writes".into(), "disk_full".into());
                object.insert(
                    "disk_full".into(),
                    serde_json::to_value(&full).unwrap_or_default(),
                );
            }
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(detail))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let store = state.store.clone();
    let stats = blocking(move || store.stats().map_err(|e| ApiError::internal(&e))).await?;
    let mut gauges = vec![
        Gauge {
            name: "tidemark_checkpoint",
            help: "last applied log position",
            value: stats.checkpoint as f64,
        },
        Gauge {
            name: "tidemark_events_stored",
            help: "events in the local log",
            value: stats.events as f64,
        },
        Gauge {
            name: "tidemark_quarantined",
            help: "quarantine records (each counts how often its input was refused)",
            value: stats.quarantined as f64,
        },
        Gauge {
            name: "tidemark_quarantine_bytes",
            help: "bytes the quarantine records take (bounded by --quarantine-max-bytes)",
            value: stats.quarantine_bytes as f64,
        },
        Gauge {
            name: "tidemark_findings_active",
            help: "active findings",
            value: stats.active_findings as f64,
        },
        Gauge {
            name: "tidemark_store_bytes",
            help: "size of the store file",
            value: stats.size_on_disk_bytes as f64,
        },
        Gauge {
            name: "tidemark_store_disk_full",
            help: "1 while writes are refused because the disk (or the file size limit) is full",
            value: if state.store.disk_full().is_some() {
                1.0
            } else {
                0.0
            },
        },
    ];
    if let Ingest::Publish { health, .. } = &state.ingest {
        gauges.extend(health.gauges());
    }
    let mut text = String::new();
    for gauge in gauges {
        text.push_str(&format!(
            "# HELP {} {}\n# TYPE {} gauge\n{} {}\n",
            gauge.name, gauge.help, gauge.name, gauge.name, gauge.value
        ));
    }
    text.push_str(&format!(
        "# HELP tidemark_quarantine_dropped_total refused inputs whose raw bytes were not kept because the quarantine was full (kept in the store: survives restarts)\n# TYPE tidemark_quarantine_dropped_total counter\ntidemark_quarantine_dropped_total {}\n",
        stats.quarantine_dropped
    ));
    state.metrics.render(&mut text);
    crate::metrics::render_time_travel(&state.time_travel.counts(), &mut text);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see GET /v1/findings, POST /v1/events, GET /healthz")
}
