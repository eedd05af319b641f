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

/// What became of one submitted input.
#[derive(Debug)]
pub(crate) enum Submitted {
    /// Embedded: the store's outcome (accepted, duplicate, rejected and quarantined).
    Stored(Outcome),
    /// Replica: the distributed log's answer for an event.
    Logged(PublishResult),
    /// Replica: an input refused here, not published, kept in this replica's own quarantine
    /// (`quarantine_id` absent when it could not be kept; `reason` then says why).
    KeptHere {
        reason: String,
        quarantine_id: Option<u64>,
    },
}

/// Why nothing of a submission was stored (embedded mode).
#[derive(Debug)]
pub(crate) enum SubmitError {
    /// The disk is full: try again after `retry_after_secs`.
    DiskFull {
        message: String,
        retry_after_secs: u64,
    },
    /// The writer stopped or the store failed: try again later.
    Unavailable(String),
}

/// Submits inputs where this server's ingest goes, answering each one's outcome in order: the
/// local writer stores them (one group commit), or on a replica valid events are published to
/// the distributed log and refused inputs kept in the replica's own quarantine. Every ingest
/// route answers from these outcomes in its own format.
pub(crate) async fn submit(
    state: &AppState,
    inputs: Vec<Input>,
) -> Result<Vec<Submitted>, SubmitError> {
    let writer = match &state.ingest {
        Ingest::Local(writer) => writer,
        Ingest::Publish { publisher, .. } => {
            return Ok(publish_inputs(state, publisher.as_ref(), inputs).await);
        }
    };
    match writer.write(inputs).await {
        Ok(outcomes) => Ok(outcomes.into_iter().map(Submitted::Stored).collect()),
        Err(WriteError::DiskFull {
            message,
            retry_after_secs,
        }) => Err(SubmitError::DiskFull {
            message,
            retry_after_secs,
        }),
        Err(e @ WriteError::Stopped) => Err(SubmitError::Unavailable(e.to_string())),
        Err(e @ WriteError::Store(_)) => Err(SubmitError::Unavailable(format!("{e}; retry later"))),
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
    let outcomes = match submit(state, inputs).await {
        Ok(outcomes) => outcomes,
        Err(SubmitError::DiskFull {
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
        Err(SubmitError::Unavailable(message)) => return Err(ApiError::unavailable(message)),
    };
    if matches!(state.ingest, Ingest::Publish { .. }) {
        let ids = about.into_iter().map(|(id, ..)| id).collect();
        let mut response = publish_response(ids, outcomes);
        if response.status() == StatusCode::UNPROCESSABLE_ENTITY {
            // Rejected items (and nothing unpublished): the bridge answers 200 here too.
            *response.status_mut() = status_when_rejected;
        }
        return Ok(IngestAnswer(response));
    }
    let mut response = IngestResponse {
        accepted: 0,
        duplicates: 0,
        rejected: 0,
        raw_not_kept: 0,
        results: Vec::with_capacity(outcomes.len()),
        summary: RejectedSummary::new(state.limits.max_rejected_listed),
    };
    for (index, (submitted, (id, line, problem, alert_name))) in
        outcomes.into_iter().zip(about).enumerate()
    {
        let Submitted::Stored(outcome) = submitted else {
            debug_assert!(false, "embedded mode answers store outcomes");
            continue;
        };
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

/// Replica mode: valid events go to the distributed log; invalid ones are not published and
/// are kept in this replica's own quarantine. Answers each input's outcome in order, and
/// counts what was published.
async fn publish_inputs(
    state: &AppState,
    publisher: &dyn Publisher,
    inputs: Vec<Input>,
) -> Vec<Submitted> {
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
    let mut counts = [0_u64; 4];
    let outcomes = is_event
        .into_iter()
        .map(|is_event| {
            if is_event {
                let result = published.next().unwrap_or(PublishResult::Failed {
                    reason: "no answer from the publisher".into(),
                });
                let slot = match &result {
                    PublishResult::Published { .. } => 0,
                    PublishResult::Duplicate { .. } => 1,
                    PublishResult::Unknown { .. } => 2,
                    PublishResult::Failed { .. } => 3,
                };
                counts[slot] += 1;
                Submitted::Logged(result)
            } else {
                let (reason, quarantine_id) = kept.next().unwrap_or_default();
                Submitted::KeptHere {
                    reason,
                    quarantine_id,
                }
            }
        })
        .collect();
    state
        .metrics
        .published(counts[0], counts[1], counts[2], counts[3]);
    outcomes
}

/// Replica mode's answer: 200 when all are in the log, 422 when some were invalid, 503 when
/// some were not acknowledged in time (their outcome is unknown) or not sent: retrying with the
/// same ids is safe, the log dedupes them.
fn publish_response(ids: Vec<Option<String>>, outcomes: Vec<Submitted>) -> Response {
    let mut response = PublishResponse {
        published: 0,
        duplicates: 0,
        rejected: 0,
        unknown: 0,
        failed: 0,
        code: None,
        message: None,
        results: Vec::with_capacity(outcomes.len()),
    };
    for (index, (submitted, id)) in outcomes.into_iter().zip(ids).enumerate() {
        let result = match submitted {
            Submitted::Logged(result) => {
                match &result {
                    PublishResult::Published { .. } => response.published += 1,
                    PublishResult::Duplicate { .. } => response.duplicates += 1,
                    PublishResult::Unknown { .. } => response.unknown += 1,
                    PublishResult::Failed { .. } => response.failed += 1,
                }
                PublishItemResult::Log(result)
            }
            Submitted::KeptHere {
                reason,
                quarantine_id,
            } => {
                response.rejected += 1;
                PublishItemResult::Rejected {
                    status: "rejected",
                    reason,
                    quarantine_id,
                }
            }
            Submitted::Stored(_) => {
                debug_assert!(false, "replica mode answers log outcomes");
                continue;
            }
        };
        response.results.push(PublishItem { index, id, result });
    }
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
    (status, Json(response)).into_response()
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

/// A body refused whole (it is not what the route takes at all) kept in quarantine once,
/// however often it is sent again (on a replica, in its own). Answers what to add to the
/// refusal's message: where it is kept, or why it is not.
pub(crate) async fn keep_refused_body(state: &AppState, rejected: Input) -> String {
    match &state.ingest {
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
        Ingest::Publish { .. } => match keep_rejected_locally(state, vec![rejected]).await[..] {
            [(_, Some(id))] => format!(" (kept in this replica's quarantine as #{id})"),
            _ => String::new(),
        },
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
