//! The Alertmanager webhook bridge: a version 4 payload becomes `alert.fired` / `alert.resolved`.
//!
//! Pure: no IO and no clock: the route passes in when it received the webhook. An event's
//! `time` is that receive time when the alert fired (its `startsAt` stays in `data`) and its
//! `endsAt` when it resolved. The HTTP route (`POST /v1/bridges/alertmanager`) lives
//! elsewhere; this module only translates bytes into events.
//!
//! # Rules
//!
//! - One event per alert, in payload order; an empty `alerts` array gives no events. Two alerts
//!   of one payload with the same identity give two events with the same id (the store keeps
//!   one).
//! - Each alert is translated on its own ([`translate_each`]): an alert that cannot become an
//!   event (say, a `startsAt` outside the years 1678..=2261) is reported with its reason and its
//!   bytes as received, and never keeps the other alerts of the payload from being stored. Its
//!   error paths start at `alert` (`alert.startsAt`), so the same alert gives the same reason
//!   wherever it sits in a group. [`translate`] is all or nothing, with paths such as
//!   `alerts[2].startsAt`. Only a payload that is not a version 4 webhook at all (not JSON, no
//!   `alerts` array, another `version`, a `commonLabels` that is not an object of strings) fails
//!   as a whole.
//! - `status: "firing"` gives `alert.fired` with `ends_at: null` (Alertmanager sends a future
//!   `endsAt` for firing alerts; it is ignored and not even read). `status: "resolved"` gives
//!   `alert.resolved` with `ends_at` = `endsAt`, which must then be a real time (not missing and
//!   not Go's zero time `0001-01-01T00:00:00Z`).
//! - Event id: `am-` followed by 16 hex digits of FNV-1a 64 over the fingerprint, the status,
//!   `startsAt` (normalized to UTC, so offsets and trailing zeros do not matter) and, for a
//!   firing alert, the re-send bucket: the receive time in whole seconds divided by
//!   [`BridgeConfig::resend_bucket_secs`] (rounded down), in decimal; separated by the byte
//!   `0xff`, which never occurs in UTF-8. So a webhook retried within a bucket is stored once,
//!   while Alertmanager's re-sends of a firing alert (every `repeat_interval`) reach the log at
//!   most once per alert per bucket: the log learns that the alert is still being notified (ADR
//!   0007, staleness) without a flood. A resolution has no bucket: however often it is re-sent,
//!   it is stored once; a new firing of the alert (a new `startsAt`) gets a new id.
//! - Fingerprint: the alert's `fingerprint`; when it is missing, null or blank, it is computed
//!   from the alert's labels exactly as Alertmanager does ([`label_fingerprint`]: FNV-1a 64 over
//!   the labels sorted by name, each name and value followed by `0xff`, 16 lowercase hex digits).
//! - Cluster: the alert's `labels[cluster_label]`, else `commonLabels[cluster_label]`, else
//!   [`BridgeConfig::default_cluster`]; blank values are skipped.
//! - Name: `labels.alertname` when it is there and not blank. Alertmanager accepts alerts without
//!   one (through its API), so such an alert gets a name derived from its identity:
//!   `unnamed-` followed by its fingerprint (see below), e.g. `unnamed-5b1531d93a0a490e`. The
//!   same alert always gets the same name, two alerts with different labels never share one, and
//!   the labels are kept as they came (no `alertname` is added).
//! - Severity: `labels.severity`, trimmed and compared case-insensitively (see [`map_severity`]):
//!   `critical`/`page`/`p1` → critical, `error`/`high`/`major` → error,
//!   `warning`/`warn`/`medium` → warning, `info`/`none`/`low` → info; missing or anything else →
//!   warning (an alert someone bothered to route deserves a look, but is not assumed broken).
//! - Labels and annotations are copied as they are (sorted maps, so output is deterministic);
//!   missing or null `labels` / `annotations` count as empty.
//! - Version: `version` must be the string `"4"`. Unknown fields are ignored (Alertmanager adds
//!   fields over time); the fields read are checked, and every error names its JSON path, such
//!   as `alerts[2].startsAt`, and what was expected. No cluster anywhere and a blank
//!   `default_cluster` is an error naming the alert's cluster label; a blank `source` is a
//!   configuration error.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::{Alert, Event, Payload, Severity};
use crate::timestamp::{Timestamp, TimestampError};

/// The webhook payload version this bridge reads.
pub const SUPPORTED_VERSION: &str = "4";

/// How the bridge fills the envelope fields the payload does not carry.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// Cluster of an alert that names none (neither in its labels nor in `commonLabels`).
    pub default_cluster: String,
    /// The label that names an alert's cluster (`cluster`).
    pub cluster_label: String,
    /// The events' `source` (`alertmanager`).
    pub source: String,
    /// Seconds of one re-send bucket: a firing alert is stored at most once per bucket of
    /// receive time (3,600: an hour; at least 1).
    pub resend_bucket_secs: u64,
}

/// The default re-send bucket: an hour, a quarter of Alertmanager's default `repeat_interval`
/// (4 h), so every re-send of a firing alert reaches the log.
pub const DEFAULT_RESEND_BUCKET_SECS: u64 = 3_600;

impl Default for BridgeConfig {
    /// `cluster_label` `cluster`, `source` `alertmanager`, `default_cluster` `default`.
    fn default() -> Self {
        Self {
            default_cluster: "default".to_owned(),
            cluster_label: "cluster".to_owned(),
            source: "alertmanager".to_owned(),
            resend_bucket_secs: DEFAULT_RESEND_BUCKET_SECS,
        }
    }
}

/// Why a webhook payload could not be translated.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum WebhookError {
    /// The body is not JSON (or not UTF-8).
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The payload is JSON but not an object.
    #[error("expected the webhook payload to be a JSON object, found {found}")]
    NotAnObject {
        /// What arrived.
        found: &'static str,
    },
    /// `version` is not the one this bridge reads.
    #[error(
        "unsupported Alertmanager webhook version {found}: field `version`: expected \"{SUPPORTED_VERSION}\""
    )]
    UnsupportedVersion {
        /// The version that arrived, as JSON text.
        found: String,
    },
    /// A required field is absent (or null).
    #[error("field `{path}`: missing, expected {expected}")]
    Missing {
        /// JSON path, e.g. `alerts[0].labels.alertname`.
        path: String,
        /// What the field should hold.
        expected: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("field `{path}`: expected {expected}, found {found}")]
    WrongType {
        /// JSON path.
        path: String,
        /// What the field should hold.
        expected: &'static str,
        /// The JSON type that arrived.
        found: &'static str,
    },
    /// A field has the right type but an invalid value.
    #[error("field `{path}`: expected {expected}, found {found}")]
    Invalid {
        /// JSON path.
        path: String,
        /// What the field should hold.
        expected: &'static str,
        /// The value that arrived, as JSON text.
        found: String,
    },
    /// A time is not RFC 3339 (or is outside the representable years).
    #[error("field `{path}`: {source}")]
    BadTime {
        /// JSON path, e.g. `alerts[2].startsAt`.
        path: String,
        /// What the parser objected to.
        source: TimestampError,
    },
    /// No cluster could be found for an alert and no default is configured.
    #[error(
        "field `{path}`: missing, and `commonLabels.{label}` too, and the bridge has no default cluster"
    )]
    NoCluster {
        /// JSON path of the alert's cluster label.
        path: String,
        /// The cluster label.
        label: String,
    },
    /// The bridge's configuration cannot produce valid events.
    #[error("bridge configuration: {0}")]
    Config(&'static str),
}

impl WebhookError {
    /// The JSON path the error names, if it names one.
    fn path_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::Missing { path, .. }
            | Self::WrongType { path, .. }
            | Self::Invalid { path, .. }
            | Self::BadTime { path, .. }
            | Self::NoCluster { path, .. } => Some(path),
            Self::NotJson(_)
            | Self::NotAnObject { .. }
            | Self::UnsupportedVersion { .. }
            | Self::Config(_) => None,
        }
    }

    /// The same error with an alert-relative path (`alert.startsAt`) placed in the payload
    /// (`alerts[2].startsAt`).
    fn in_payload(mut self, index: usize) -> Self {
        if let Some(path) = self.path_mut()
            && let Some(rest) = path.strip_prefix(ALERT_ROOT)
        {
            *path = format!("alerts[{index}]{rest}");
        }
        self
    }
}

/// The root of the paths of one alert's errors in [`translate_each`].
const ALERT_ROOT: &str = "alert";

/// The prefix of a derived alert name.
pub const DERIVED_NAME_PREFIX: &str = "unnamed-";

/// One alert of a payload, translated on its own.
#[derive(Debug, PartialEq)]
pub struct AlertTranslation<'a> {
    /// Its position in the payload's `alerts`.
    pub index: usize,
    /// The alert's JSON text exactly as it came in the payload (re-serialized only when the
    /// payload repeats its `alerts` key, which a JSON reader resolves to the last one).
    pub raw: Cow<'a, str>,
    /// Its event, or why it cannot become one (paths start at `alert`: `alert.startsAt`).
    pub result: Result<TranslatedAlert, WebhookError>,
}

/// An alert that became an event.
#[derive(Clone, Debug, PartialEq)]
pub struct TranslatedAlert {
    /// The event.
    pub event: Event,
    /// The alert's name: its `alertname`, or the derived one.
    pub name: String,
    /// Whether the alert had no `alertname` (or a blank one) and its name was derived.
    pub name_derived: bool,
}

/// One alert's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Firing,
    Resolved,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One event per alert, in payload order, or the first alert's error (with its path in the
/// payload, `alerts[2].startsAt`), for a webhook received at `received_at`. Event ids are
/// deterministic: the same alert (fingerprint, status, startsAt, and for a firing one the
/// re-send bucket of `received_at`) always gets the same id, so a re-sent webhook is stored
/// once (the store dedupes by id).
///
/// See the [module documentation](self) for every rule; [`translate_each`] keeps going past an
/// alert that cannot be translated.
pub fn translate(
    body: &[u8],
    config: &BridgeConfig,
    received_at: Timestamp,
) -> Result<Vec<Event>, WebhookError> {
    translate_each(body, config, received_at)?
        .into_iter()
        .map(|alert| {
            let index = alert.index;
            alert
                .result
                .map(|translated| translated.event)
                .map_err(|error| error.in_payload(index))
        })
        .collect()
}

/// A webhook recorded as the bridge received it, one line of a log (a replay case,
/// `tidemark replay FILE`): `{"alertmanager_webhook": BODY, "received_at": RFC3339}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedWebhook {
    /// The webhook body (version 4) as Alertmanager sent it.
    alertmanager_webhook: serde_json::Value,
    /// When the bridge received it: its firing alerts' event time and re-send bucket.
    received_at: Timestamp,
}

/// The events the bridge stores for a recorded webhook `line` (see [`RecordedWebhook`]: a JSON
/// object with `alertmanager_webhook` and `received_at`), translated by [`translate`] with the
/// bridge's defaults ([`BridgeConfig::default`]); `None` when the line is not one.
pub fn translate_recorded(line: &[u8]) -> Option<Result<Vec<Event>, WebhookError>> {
    let recorded: RecordedWebhook = serde_json::from_slice(line).ok()?;
    let body = recorded.alertmanager_webhook.to_string();
    Some(translate(
        body.as_bytes(),
        &BridgeConfig::default(),
        recorded.received_at,
    ))
}

/// Each alert of a payload on its own, in payload order: its event, or why it cannot become one,
/// with its bytes as received, for a webhook received at `received_at`. Fails as a whole only
/// when the payload is not a version 4 webhook (or the configuration cannot produce valid
/// events).
pub fn translate_each<'a>(
    body: &'a [u8],
    config: &BridgeConfig,
    received_at: Timestamp,
) -> Result<Vec<AlertTranslation<'a>>, WebhookError> {
    translate_webhook(body, config, received_at).map(|webhook| webhook.alerts)
}

/// A webhook translated alert by alert ([`translate_each`]), with what the payload says of the
/// alerts it left out.
#[derive(Debug, PartialEq)]
pub struct Webhook<'a> {
    /// Each alert on its own, in payload order.
    pub alerts: Vec<AlertTranslation<'a>>,
    /// Its `truncatedAlerts` ([`truncated_alerts`]).
    pub truncated_alerts: u64,
}

/// [`translate_each`], and the payload's `truncatedAlerts`, from one parse of `body`.
pub fn translate_webhook<'a>(
    body: &'a [u8],
    config: &BridgeConfig,
    received_at: Timestamp,
) -> Result<Webhook<'a>, WebhookError> {
    if config.source.trim().is_empty() {
        return Err(WebhookError::Config("`source` must not be blank"));
    }
    if config.resend_bucket_secs == 0 {
        return Err(WebhookError::Config(
            "`resend_bucket_secs` must be at least 1",
        ));
    }
    if config.cluster_label.is_empty() {
        return Err(WebhookError::Config("`cluster_label` must not be empty"));
    }
    let root: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    let Value::Object(root) = root else {
        return Err(WebhookError::NotAnObject { found: kind(&root) });
    };

    match root.get("version") {
        None | Some(Value::Null) => {
            return Err(WebhookError::Missing {
                path: "version".into(),
                expected: "the string \"4\"",
            });
        }
        Some(Value::String(v)) if v == SUPPORTED_VERSION => {}
        Some(other) => {
            return Err(WebhookError::UnsupportedVersion {
                found: other.to_string(),
            });
        }
    }

    let common_labels = string_map(root.get("commonLabels"), "commonLabels")?;
    let alerts = match root.get("alerts") {
        None | Some(Value::Null) => {
            return Err(WebhookError::Missing {
                path: "alerts".into(),
                expected: "an array of alerts",
            });
        }
        Some(Value::Array(alerts)) => alerts,
        Some(other) => {
            return Err(WebhookError::WrongType {
                path: "alerts".into(),
                expected: "an array of alerts",
                found: kind(other),
            });
        }
    };
    let raw = raw_alerts(body).filter(|raw| raw.len() == alerts.len());

    let alerts = alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| AlertTranslation {
            index,
            raw: match &raw {
                Some(raw) => Cow::Borrowed(raw[index].get()),
                None => Cow::Owned(alert.to_string()),
            },
            result: translate_alert(alert, &common_labels, config, received_at),
        })
        .collect();
    Ok(Webhook {
        alerts,
        truncated_alerts: truncated_of(root.get("truncatedAlerts")),
    })
}

/// How many alerts Alertmanager left out of the webhook `body` (its `truncatedAlerts`, when
/// a group holds more than the receiver's `max_alerts`): 0 when the field is missing or not a
/// whole number. Those alerts never reach Tidemark; the route counts them and says so.
pub fn truncated_alerts(body: &[u8]) -> u64 {
    #[derive(serde::Deserialize)]
    struct Truncated {
        #[serde(default, rename = "truncatedAlerts")]
        truncated_alerts: Option<Value>,
    }
    let parsed = serde_json::from_slice::<Truncated>(body).ok();
    truncated_of(parsed.as_ref().and_then(|t| t.truncated_alerts.as_ref()))
}

/// A `truncatedAlerts` value as a count: 0 when missing or not a whole number.
fn truncated_of(value: Option<&Value>) -> u64 {
    value.and_then(Value::as_u64).unwrap_or(0)
}

/// The payload's alerts as the JSON text they came as, or `None` when the payload repeats its
/// `alerts` key (JSON readers keep the last; this one refuses the duplicate).
fn raw_alerts(body: &[u8]) -> Option<Vec<&RawValue>> {
    #[derive(serde::Deserialize)]
    struct Alerts<'a> {
        #[serde(borrow)]
        alerts: Vec<&'a RawValue>,
    }
    serde_json::from_slice::<Alerts<'_>>(body)
        .ok()
        .map(|payload| payload.alerts)
}

fn translate_alert(
    alert: &Value,
    common_labels: &BTreeMap<String, String>,
    config: &BridgeConfig,
    received_at: Timestamp,
) -> Result<TranslatedAlert, WebhookError> {
    let path = |field: &str| format!("{ALERT_ROOT}.{field}");
    let Value::Object(alert) = alert else {
        return Err(WebhookError::WrongType {
            path: ALERT_ROOT.into(),
            expected: "an alert object",
            found: kind(alert),
        });
    };

    let status = match required_str(alert, "status", &path, "\"firing\" or \"resolved\"")? {
        "firing" => Status::Firing,
        "resolved" => Status::Resolved,
        other => {
            return Err(WebhookError::Invalid {
                path: path("status"),
                expected: "\"firing\" or \"resolved\"",
                found: Value::from(other).to_string(),
            });
        }
    };

    let labels = string_map(alert.get("labels"), &path("labels"))?;
    let annotations = string_map(alert.get("annotations"), &path("annotations"))?;

    let starts_text = required_str(alert, "startsAt", &path, "an RFC 3339 time")?;
    let starts_at =
        Timestamp::parse_rfc3339(starts_text).map_err(|source| WebhookError::BadTime {
            path: path("startsAt"),
            source,
        })?;

    let ends_at = match status {
        Status::Firing => None,
        Status::Resolved => {
            let expected = "the time a resolved alert ended (RFC 3339)";
            let text = required_str(alert, "endsAt", &path, expected)?;
            if text.starts_with("0001-01-01") {
                return Err(WebhookError::Invalid {
                    path: path("endsAt"),
                    expected,
                    found: Value::from(text).to_string(),
                });
            }
            Some(
                Timestamp::parse_rfc3339(text).map_err(|source| WebhookError::BadTime {
                    path: path("endsAt"),
                    source,
                })?,
            )
        }
    };

    let fingerprint = match alert.get("fingerprint") {
        None | Some(Value::Null) => label_fingerprint(&labels),
        Some(Value::String(f)) if f.trim().is_empty() => label_fingerprint(&labels),
        Some(Value::String(f)) => f.clone(),
        Some(other) => {
            return Err(WebhookError::WrongType {
                path: path("fingerprint"),
                expected: "a string",
                found: kind(other),
            });
        }
    };

    let cluster = [
        labels.get(&config.cluster_label),
        common_labels.get(&config.cluster_label),
    ]
    .into_iter()
    .flatten()
    .chain(std::iter::once(&config.default_cluster))
    .find(|c| !c.trim().is_empty())
    .cloned()
    .ok_or_else(|| WebhookError::NoCluster {
        path: path(&format!("labels.{}", config.cluster_label)),
        label: config.cluster_label.clone(),
    })?;

    let given_name = labels
        .get("alertname")
        .filter(|name| !name.trim().is_empty())
        .cloned();
    let name_derived = given_name.is_none();
    let name = given_name.unwrap_or_else(|| derived_name(&fingerprint));
    let severity = map_severity(labels.get("severity").map(String::as_str));
    let bucket = (status == Status::Firing).then(|| {
        let secs = received_at.unix_nanos().div_euclid(1_000_000_000);
        secs.div_euclid(i64::try_from(config.resend_bucket_secs).unwrap_or(i64::MAX))
    });
    let id = event_id(&fingerprint, status, starts_at, bucket);
    let time = ends_at.unwrap_or(received_at);
    let data = Alert {
        fingerprint,
        name: name.clone(),
        severity,
        labels,
        annotations,
        starts_at,
        ends_at,
    };
    let payload = match status {
        Status::Firing => Payload::AlertFired(data),
        Status::Resolved => Payload::AlertResolved(data),
    };
    Ok(TranslatedAlert {
        event: Event::new(id, time, config.source.clone(), cluster, payload),
        name,
        name_derived,
    })
}

/// The name of an alert without `alertname`: `unnamed-` and its fingerprint.
pub fn derived_name(fingerprint: &str) -> String {
    format!("{DERIVED_NAME_PREFIX}{fingerprint}")
}

/// Maps an Alertmanager `severity` label to a [`Severity`], trimmed and case-insensitively:
/// `critical`/`page`/`p1` → critical, `error`/`high`/`major` → error, `warning`/`warn`/`medium`
/// → warning, `info`/`none`/`low` → info; missing or anything else → warning.
pub fn map_severity(label: Option<&str>) -> Severity {
    let Some(label) = label else {
        return Severity::Warning;
    };
    match label.trim().to_ascii_lowercase().as_str() {
        "critical" | "page" | "p1" => Severity::Critical,
        "error" | "high" | "major" => Severity::Error,
        "warning" | "warn" | "medium" => Severity::Warning,
        "info" | "none" | "low" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// Alertmanager's fingerprint of a label set (Prometheus `labelSetToFingerprint`): FNV-1a 64
/// over the labels sorted by name, each name and each value followed by the byte `0xff`, as 16
/// lowercase hex digits.
pub fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash = Fnv1a64::new();
    for (name, value) in labels {
        hash.write(name.as_bytes());
        hash.write(&[SEPARATOR]);
        hash.write(value.as_bytes());
        hash.write(&[SEPARATOR]);
    }
    format!("{:016x}", hash.finish())
}

/// The id of the event for an alert: `am-` + FNV-1a 64 of fingerprint, status, start time and
/// (a firing alert's) re-send bucket.
fn event_id(
    fingerprint: &str,
    status: Status,
    starts_at: Timestamp,
    bucket: Option<i64>,
) -> String {
    let mut hash = Fnv1a64::new();
    hash.write(fingerprint.as_bytes());
    hash.write(&[SEPARATOR]);
    hash.write(status.as_str().as_bytes());
    hash.write(&[SEPARATOR]);
    hash.write(starts_at.to_rfc3339().as_bytes());
    if let Some(bucket) = bucket {
        hash.write(&[SEPARATOR]);
        hash.write(bucket.to_string().as_bytes());
    }
    format!("am-{:016x}", hash.finish())
}

/// A byte that never occurs in UTF-8, so joined fields cannot be confused.
const SEPARATOR: u8 = 0xff;

/// FNV-1a, 64 bits: tiny, stable across platforms and releases (unlike `std`'s hashers).
#[derive(Debug)]
struct Fnv1a64(u64);

impl Fnv1a64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A required string field of an alert.
fn required_str<'a>(
    alert: &'a Map<String, Value>,
    field: &str,
    path: &impl Fn(&str) -> String,
    expected: &'static str,
) -> Result<&'a str, WebhookError> {
    match alert.get(field) {
        None | Some(Value::Null) => Err(WebhookError::Missing {
            path: path(field),
            expected,
        }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(WebhookError::WrongType {
            path: path(field),
            expected: "a string",
            found: kind(other),
        }),
    }
}

/// An optional object of string values (labels, annotations); missing or null is empty.
fn string_map(value: Option<&Value>, path: &str) -> Result<BTreeMap<String, String>, WebhookError> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(WebhookError::WrongType {
                    path: format!("{path}.{k}"),
                    expected: "a string",
                    found: kind(other),
                }),
            })
            .collect(),
        Some(other) => Err(WebhookError::WrongType {
            path: path.to_owned(),
            expected: "an object of strings",
            found: kind(other),
        }),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
