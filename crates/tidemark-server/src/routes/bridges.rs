//! `/v1/bridges/alertmanager`: Alertmanager's webhook, each alert an `alert.fired` or
//! `alert.resolved` event.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use tidemark_store::Input;

use crate::content_type;
use crate::error::ApiError;
use crate::extract::WebhookBody;
use crate::ingest::{self, IngestAnswer, keep_refused_body, origin_of, store_inputs};
use crate::openapi::Route;
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::post(
        "/v1/bridges/alertmanager",
        "postAlertmanagerWebhook",
        "Alertmanager webhook (version 4): alerts become alert.fired / alert.resolved events, each on its own (200 with each alert's result; an alert that cannot be translated is rejected alone and quarantined once)",
        post_alertmanager,
    )
    .with(|handler| handler.route_layer(from_fn(content_type::json_body)))]
}

/// `POST /v1/bridges/alertmanager`: an Alertmanager webhook (version 4) becomes `alert.fired` /
/// `alert.resolved` events, one per alert, with ids from (fingerprint, status, start time, and
/// for a firing alert the re-send bucket of the receive time) so a retried notification is
/// stored once and a firing alert's re-sends at most once per bucket. Each alert stands alone: one that cannot be
/// translated is rejected (logged at warn, kept in quarantine once however often Alertmanager
/// re-sends it) while the others are stored, and the answer is 200 with each alert's result,
/// so Alertmanager never holds back a group's good alerts. A payload that is not a version 4
/// webhook at all is answered 400 and kept in quarantine (once; on a replica, in its own).
async fn post_alertmanager(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    WebhookBody(body): WebhookBody,
) -> Result<IngestAnswer, ApiError> {
    let origin = format!("{} alertmanager webhook", origin_of(peer));
    // The receive time: a firing alert's event time, and its re-send bucket (ADR 0007).
    let received_at = tidemark_store::wall_clock();
    let webhook =
        match tidemark_core::alertmanager::translate_webhook(&body, &state.bridge, received_at) {
            Ok(webhook) => webhook,
            Err(error) => return Err(refuse_webhook(&state, &body, &origin, &error).await),
        };
    let (alerts, truncated) = (webhook.alerts, webhook.truncated_alerts);
    if truncated > 0 {
        state.metrics.alerts_truncated(truncated);
        tracing::warn!(%origin, truncated, "alertmanager left alerts out of this webhook (truncatedAlerts): they are not stored; raise max_alerts in the receiver's webhook_config (up to --max-items-per-request)");
    }
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
    let kept = keep_refused_body(state, rejected).await;
    ApiError::bad_request(format!("{reason}{kept}"))
}
