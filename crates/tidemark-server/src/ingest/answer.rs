//! What becomes of ingested items and what the client is told: stored by the local writer (or,
//! on a replica, published to the distributed log, the refused ones kept in the replica's own
//! quarantine), and answered item by item with the rejected ones counted by reason.

use std::collections::BTreeMap;

use axum::Extension;
use axum::Json;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tidemark_store::{Input, Outcome};

use super::Item;
use crate::error::ApiError;
use crate::openapi::{DescribeOutput, OperationDoc, Schemas};
use crate::replica::{PublishResult, Publisher};
use crate::state::{AppState, Ingest};
use crate::writer::WriteError;

/// The answer to an ingest request: 200 with each item's outcome, 422 when some were rejected
/// (the bridge answers 200 then too), 507 when the disk is full, 503 on a replica when events
/// are not known to be in the log.
#[derive(Debug)]
pub(crate) struct IngestAnswer(Response);

impl IntoResponse for IngestAnswer {
    fn into_response(self) -> Response {
        self.0
    }
}

impl DescribeOutput for IngestAnswer {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.json(200, "success", answer_schema());
    }
}

/// The answer to an ingest request (embedded mode): counts, each item's outcome (every accepted
/// and duplicate item, the first `--max-rejected-listed` rejected ones) and the rejected ones
/// counted by reason.
fn answer_schema() -> Value {
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "type": "object",
        "description": "accepted, duplicates, rejected; `results` lists every accepted and duplicate item and the first `--max-rejected-listed` (100) rejected ones, `rejected_not_listed` counts the rest and `rejected_reasons` counts every rejected item by what is wrong with it; `raw_not_kept` counts rejected items whose raw bytes the full quarantine did not keep",
        "properties": {
            "accepted": count, "duplicates": count, "rejected": count,
            "raw_not_kept": count, "rejected_not_listed": count,
            "results": {"type": "array", "items": {
                "type": "object",
                "required": ["index", "status"],
                "properties": {
                    "index": count,
                    "line": {"type": "integer", "minimum": 1, "description": "its NDJSON line"},
                    "id": {"type": ["string", "null"]},
                    "name": {"type": "string", "description": "the alert's name (bridge)"},
                    "name_derived": {"type": "boolean", "description": "the alert had no `alertname`"},
                    "status": {"enum": ["accepted", "duplicate", "rejected"]},
                    "seq": count,
                    "reason": {"type": "string"},
                    "quarantine_id": {"type": "integer", "minimum": 1},
                    "raw_kept": {"type": "boolean", "description": "false when the quarantine was full and the raw item was not kept"}
                }
            }},
            "rejected_reasons": {"type": "array", "items": {
                "type": "object",
                "required": ["reason", "count"],
                "properties": {"reason": {"type": "string"}, "count": count}
            }}
        }
    })
}

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
pub(crate) fn origin_of(peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>) -> String {
    match peer {
        Some(Extension(ConnectInfo(peer))) => format!("http {peer}"),
        None => "http".to_owned(),
    }
}

/// Stores (or, on a replica, publishes) parsed items and answers with each one's outcome:
/// every accepted and duplicate item, the first rejected ones, and every rejected one counted
/// by reason. `status_when_rejected` is the status when some were rejected.
pub(crate) async fn store_inputs(
    state: &AppState,
    items: Vec<Item>,
    status_when_rejected: StatusCode,
) -> Result<IngestAnswer, ApiError> {
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
            return Ok(IngestAnswer(response));
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
            return Ok(IngestAnswer(response));
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
    Ok(IngestAnswer((status, Json(response)).into_response()))
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
) -> Result<Response, ApiError> {
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
pub(crate) async fn keep_rejected_locally(
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
