//! `/v1/alerts`: the alerts from alerting systems (findings keyed `alert:...`, ADR 0007), firing
//! now by default, filtered by name, severity and labels, paged; and one alert, by the alerting
//! system's fingerprint, with its first pages of occurrences (with durations) and flap episodes.
//! Everything else about an alert is a finding's: its timeline is
//! `GET /v1/findings/{cluster}/{check_key}`, its pages of history `GET /v1/finding-history/...`.

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tidemark_core::findings::{AlertFilter, AlertState};
use tidemark_core::flaps::FlapEpisodeView;
use tidemark_core::{FindingOverview, Occurrence, Severity, Timestamp};

use crate::cursor;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, ApiQueryRepeated, RepeatedParam};
use crate::openapi::Route;
use crate::read::{Reference, page_size, time_param, with_projections};
use crate::state::AppState;

/// Occurrences and flap episodes one alert's answer holds (the rest are paged at
/// `/v1/finding-history` and `/v1/finding-flaps`).
pub(crate) const ALERT_FIRST_PAGE: usize = 100;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/alerts",
            "listAlerts",
            "Alerts from alerting systems (firing by default), filtered, paged by (cluster, check_key)",
            list_alerts,
        ),
        Route::get(
            "/v1/alerts/{cluster}/{fingerprint}",
            "getAlert",
            "One alert by its fingerprint: its finding, its first occurrences with durations and its flap episodes",
            get_alert,
        ),
    ]
}

/// Filters of `GET /v1/alerts`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// `firing` (the default), `resolved`, `stale` (firing, and no notification named it for
    /// longer than its cluster's `alert_stale_after_secs`) or `all`.
    state: Option<AlertState>,
    /// The time staleness is judged at: `log` (the default: each cluster's clock, the latest
    /// time of its events) or `now` (this server's clock). Each alert's `stale` states it.
    reference: Option<Reference>,
    /// Only alerts of this name (`alertname`).
    name: Option<String>,
    /// Only this severity.
    severity: Option<Severity>,
    /// `NAME=VALUE`: only alerts with this label (repeat for several; all must match).
    #[schemars(inner(regex(pattern = r"^[^=]+=")))]
    label: Option<Vec<String>>,
    /// Only alerts whose latest occurrence was firing at or after this RFC 3339 time.
    #[schemars(regex(pattern = crate::read::TIME_PATTERN))]
    since: Option<String>,
    /// Only alerts whose latest occurrence opened at or before this RFC 3339 time.
    #[schemars(regex(pattern = crate::read::TIME_PATTERN))]
    until: Option<String>,
    /// A log position or an RFC 3339 time: the alerts then, instead of now.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::read::FINDING_CURSOR_PATTERN))]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

impl RepeatedParam for AlertsQuery {
    const NAME: &'static str = "label";

    fn set_repeated(&mut self, values: Vec<String>) {
        self.label = Some(values);
    }
}

/// A page of alerts, sorted by (cluster, check_key).
#[derive(Debug, Serialize, JsonSchema)]
struct AlertsResponse {
    /// The log position the alerts are at.
    seq: u64,
    /// Alerts on this page.
    count: usize,
    /// The alerts: each a finding (category `alert`) with the alert's facts in `alert`.
    alerts: Vec<FindingOverview>,
    /// Cursor of the next page; absent when there are no more.
    next: Option<String>,
}

/// `NAME=VALUE` as a label filter.
fn label_filter(text: &str) -> Result<(String, String), ApiError> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(ApiError::bad_request(format!(
            "query parameter `label`: expected NAME=VALUE (e.g. label=namespace=bruno), found {text:?}"
        ))),
    }
}

/// `GET /v1/alerts`.
async fn list_alerts(
    State(state): State<AppState>,
    ApiQueryRepeated(params): ApiQueryRepeated<AlertsQuery>,
) -> Result<Json<AlertsResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let after: Option<(String, String)> = params
        .after
        .as_deref()
        .map(|c| cursor::decode("after", c))
        .transpose()?;
    let filter = AlertFilter {
        state: params.state.unwrap_or_default(),
        name: params.name,
        severity: params.severity,
        labels: params
            .label
            .iter()
            .flatten()
            .map(|l| label_filter(l))
            .collect::<Result<_, _>>()?,
        since: time_param("since", params.since.as_deref())?,
        until: time_param("until", params.until.as_deref())?,
        reference: Reference::time(params.reference),
    };
    let cluster = params.cluster;
    let ((alerts, more), seq) = with_projections(&state, params.at.as_deref(), move |p| {
        p.findings().alerts_page(
            cluster.as_deref(),
            &filter,
            after.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
            limit,
        )
    })
    .await?;
    let next = if more {
        alerts
            .last()
            .map(|a| cursor::encode(&(a.cluster.clone(), a.check_key.clone())))
    } else {
        None
    };
    Ok(Json(AlertsResponse {
        seq,
        count: alerts.len(),
        alerts,
        next,
    }))
}

/// Parameters of `GET /v1/alerts/{cluster}/{fingerprint}`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    /// A log position or an RFC 3339 time: the alert then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// The time staleness is judged at: `log` (the default: the cluster's clock) or `now`
    /// (this server's clock).
    reference: Option<Reference>,
}

/// An occurrence of an alert with how long it lasted.
#[derive(Debug, Serialize, JsonSchema)]
struct AlertOccurrence {
    /// The occurrence.
    #[serde(flatten)]
    occurrence: Occurrence,
    /// Seconds from its opening to its resolution, or, while it fires, to the cluster's clock.
    duration_secs: u64,
}

/// One alert: its finding and the first pages of its history.
#[derive(Debug, Serialize, JsonSchema)]
struct AlertDetail {
    /// The alert's finding, with its facts in `alert`; its timeline is at
    /// `GET /v1/findings/{cluster}/{check_key}`.
    finding: FindingOverview,
    /// Its first occurrences, oldest first, with durations (all of them at
    /// `GET /v1/finding-history/{cluster}/{check_key}`).
    occurrences: Vec<AlertOccurrence>,
    /// Whether it has more occurrences than these.
    more_occurrences: bool,
    /// Its first flap episodes, in the order they started (all of them at
    /// `GET /v1/finding-flaps/{cluster}/{check_key}`).
    flap_episodes: Vec<FlapEpisodeView>,
    /// Whether it has more flap episodes than these.
    more_flap_episodes: bool,
}

/// The alerts of one fingerprint (one, unless the alerting system sent it under several names).
#[derive(Debug, Serialize, JsonSchema)]
struct AlertResponse {
    /// The log position it is at.
    seq: u64,
    /// The alerts with this fingerprint in the cluster, by check key.
    alerts: Vec<AlertDetail>,
}

/// Seconds from `from` to `to` (0 when `to` is earlier).
fn secs_between(from: Timestamp, to: Timestamp) -> u64 {
    to.saturating_duration_since(from).as_secs()
}

/// `GET /v1/alerts/{cluster}/{fingerprint}`.
async fn get_alert(
    State(state): State<AppState>,
    ApiPath((cluster, fingerprint)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<AlertQuery>,
) -> Result<Json<AlertResponse>, ApiError> {
    let (c, f) = (cluster.clone(), fingerprint.clone());
    let reference = Reference::time(params.reference);
    let (alerts, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        let findings = p.findings();
        let clock = findings.clock(&c).unwrap_or_default();
        findings
            .alerts_with_fingerprint(&c, &f, reference)
            .into_iter()
            .map(|finding| {
                let (history, more_occurrences) = findings
                    .history_page(&c, &finding.check_key, 0, ALERT_FIRST_PAGE)
                    .unwrap_or_default();
                let (flap_episodes, more_flap_episodes) = findings
                    .flap_episodes_page(&c, &finding.check_key, None, ALERT_FIRST_PAGE)
                    .unwrap_or_default();
                let occurrences = history
                    .into_iter()
                    .map(|occurrence| AlertOccurrence {
                        duration_secs: secs_between(
                            occurrence.opened_at,
                            occurrence.resolved_at.unwrap_or(clock),
                        ),
                        occurrence,
                    })
                    .collect();
                AlertDetail {
                    finding,
                    occurrences,
                    more_occurrences,
                    flap_episodes,
                    more_flap_episodes,
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    if alerts.is_empty() {
        return Err(ApiError::not_found(format!(
            "no alert with fingerprint {fingerprint:?} in cluster {cluster:?} at log position {seq}: list them with GET /v1/alerts?state=all"
        )));
    }
    Ok(Json(AlertResponse { seq, alerts }))
}
