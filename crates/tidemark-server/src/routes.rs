//! The `/v1` routes of the embedded server, plus `/healthz` and `/readyz`.

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
    id: Option<String>,
    #[serde(flatten)]
    outcome: Outcome,
}

/// The answer to an ingest request.
#[derive(Serialize)]
struct IngestResponse {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    results: Vec<ItemResult>,
}

/// `POST /v1/events`: one event, a JSON array, or NDJSON. 200 when nothing was rejected, 422
/// when something was (the rest is stored; the rejected items are in quarantine).
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
    let origin = match peer {
        Some(Extension(ConnectInfo(peer))) => format!("http {peer}"),
        None => "http".to_owned(),
    };
    let (ids, inputs): (Vec<Option<String>>, Vec<Input>) =
        ingest::parse(&body, content_type, &origin)?
            .into_iter()
            .unzip();
    store_inputs(&state, ids, inputs).await
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
/// a re-sent notification is stored once. A payload that cannot be translated is answered 400
/// and kept in quarantine with the reason.
pub async fn post_alertmanager(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    let body = request_body(&state, body)?;
    match tidemark_core::alertmanager::translate(&body, &state.bridge) {
        Ok(events) => {
            let ids = events.iter().map(|e| Some(e.id.0.clone())).collect();
            let inputs = events.into_iter().map(Input::Event).collect();
            store_inputs(&state, ids, inputs).await
        }
        Err(error) => {
            let reason = format!("alertmanager webhook: {error}");
            if let Ingest::Local(writer) = &state.ingest {
                // Kept, so nothing sent is lost; the sender is told why.
                let rejected = Input::Rejected {
                    raw: body.to_vec(),
                    reason: reason.clone(),
                    origin: "POST /v1/bridges/alertmanager".into(),
                };
                let _ = writer.write(vec![rejected]).await;
            }
            Err(ApiError::bad_request(reason))
        }
    }
}

/// Stores (or, on a replica, publishes) parsed inputs and answers with each one's outcome.
async fn store_inputs(
    state: &AppState,
    ids: Vec<Option<String>>,
    inputs: Vec<Input>,
) -> Result<axum::response::Response, ApiError> {
    let writer = match &state.ingest {
        Ingest::Local(writer) => writer,
        Ingest::Publish { publisher, .. } => {
            return publish_events(publisher.as_ref(), ids, inputs).await;
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
        results: Vec::with_capacity(outcomes.len()),
    };
    for (index, (outcome, id)) in outcomes.into_iter().zip(ids).enumerate() {
        match outcome {
            Outcome::Accepted { .. } => response.accepted += 1,
            Outcome::Duplicate { .. } => response.duplicates += 1,
            Outcome::Rejected { .. } => response.rejected += 1,
        }
        response.results.push(ItemResult { index, id, outcome });
    }
    let status = if response.rejected == 0 {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
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
    },
}

#[derive(Serialize)]
struct PublishResponse {
    published: usize,
    duplicates: usize,
    rejected: usize,
    failed: usize,
    results: Vec<PublishItem>,
}

/// Replica mode: valid events go to the distributed log; invalid ones are answered with their
/// reason and not published (the client still holds them). 200 when all are in the log, 422
/// when some were invalid, 503 when some could not be published (retry them: ids dedupe).
async fn publish_events(
    publisher: &dyn Publisher,
    ids: Vec<Option<String>>,
    inputs: Vec<Input>,
) -> Result<axum::response::Response, ApiError> {
    let events: Vec<tidemark_core::Event> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Event(e) => Some(e.clone()),
            Input::Rejected { .. } => None,
        })
        .collect();
    let mut published = publisher.publish(events).await.into_iter();
    let mut response = PublishResponse {
        published: 0,
        duplicates: 0,
        rejected: 0,
        failed: 0,
        results: Vec::new(),
    };
    for (index, (input, id)) in inputs.into_iter().zip(ids).enumerate() {
        let result = match input {
            Input::Event(_) => {
                let result = published.next().unwrap_or(PublishResult::Failed {
                    reason: "no answer from the publisher".into(),
                });
                match &result {
                    PublishResult::Published { .. } => response.published += 1,
                    PublishResult::Duplicate { .. } => response.duplicates += 1,
                    PublishResult::Failed { .. } => response.failed += 1,
                }
                PublishItemResult::Log(result)
            }
            Input::Rejected { reason, .. } => {
                response.rejected += 1;
                PublishItemResult::Rejected {
                    status: "rejected",
                    reason,
                }
            }
        };
        response.results.push(PublishItem { index, id, result });
    }
    let status = if response.failed > 0 {
        StatusCode::SERVICE_UNAVAILABLE
    } else if response.rejected > 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(response)).into_response())
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
    limit: Option<usize>,
}

/// `GET /v1/timeline?cluster=C[&since][&until][&limit]`: a cluster's events by time.
pub async fn cluster_timeline(
    State(state): State<AppState>,
    params: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let params = query(params)?;
    let since = time_param("since", params.since.as_deref())?;
    let until = time_param("until", params.until.as_deref())?;
    let limit = crate::query::page_size(params.limit)?;
    let store = state.store.clone();
    let entries = blocking(move || {
        store
            .cluster_timeline(&params.cluster, since, until, limit)
            .map_err(|e| ApiError::internal(&e))
    })
    .await?;
    Ok(Json(entries))
}

/// Parameters of `GET /v1/quarantine`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct QuarantineQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /v1/quarantine`: inputs that could not be decoded or validated, with their reasons.
pub async fn quarantine(
    State(state): State<AppState>,
    params: Result<Query<QuarantineQuery>, QueryRejection>,
) -> Result<Json<Vec<QuarantineEntry>>, ApiError> {
    let params = query(params)?;
    let store = state.store.clone();
    let limit = crate::query::page_size(params.limit)?;
    let from = crate::query::position_param("from", params.from)?.max(1);
    let entries = blocking(move || {
        store
            .quarantine(from, limit)
            .map_err(|e| ApiError::internal(&e))
    })
    .await?;
    Ok(Json(entries))
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
    let checkpoint = blocking(move || Ok(store.checkpoint())).await.unwrap_or(0);
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
            help: "inputs kept in quarantine",
            value: stats.quarantined as f64,
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
    state.metrics.render(&mut text);
    crate::metrics::render_time_travel(&state.time_travel.counts(), &mut text);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see GET /v1/findings, POST /v1/events, GET /healthz")
}
