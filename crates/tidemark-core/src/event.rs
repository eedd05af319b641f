//! The event envelope and every event type of the wire contract (`docs/events.md`).
//!
//! The serde derives here give two forms. Human-readable formats (JSON) get the wire form: the
//! envelope with `type` and `data`, exactly as producers send it. Compact formats (postcard, for
//! storage and snapshots) get a positional form tagged by variant index. Reading the JSON form,
//! with validation and error messages that name the event and the field, is the `wire` module's
//! (it implements `Deserialize for Event`); the JSON Schemas are the `schema` module's. This
//! module knows neither: they depend on it, not the other way round.
//!
//! Longer than 800 lines on purpose: this file is the wire contract of `docs/events.md`, every
//! payload type with its field documentation and schema bounds next to the one `event_types!`
//! table that makes the enum, the payload and their serde from them. One contract, one file:
//! split, a type could change without the reader of the table seeing it.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::timestamp::Timestamp;

/// The widest flap window the wire contract accepts: 30 days. The count flap detector keeps a
/// finding's auto-resolution times for this long at most, so its memory is bounded by it. A log
/// written before the limit may hold a wider window: it is read as this one
/// (`docs/lifecycle.md`, upgrade notes).
pub const MAX_FLAP_WINDOW_SECS: u64 = 30 * 86_400;

/// The longest span retention the wire contract accepts: 30 days. Traces judged and quiet for
/// the retention leave memory, so what the span forest holds is bounded by it.
pub const MAX_SPAN_RETENTION_SECS: u64 = 30 * 86_400;

/// The longest `settings.changed` `alert_stale_after_secs` (30 days), as the other windows.
pub const MAX_ALERT_STALE_AFTER_SECS: u64 = 30 * 86_400;

/// The longest maintenance window name, in characters.
pub const MAX_WINDOW_NAME_CHARS: usize = 200;

/// The most specs a recurring maintenance window's `time_intervals` lists.
pub const MAX_TIME_INTERVALS: usize = 64;

/// The envelope schema version this build writes and reads.
pub const CURRENT_SCHEMA: u32 = 1;

/// Objects of the wire form must be JSON objects: serde's derived structs also take a JSON
/// array of the fields in order, which no schema allows. In compact formats (postcard), where
/// structs are positional, these decode as the plain derive does.
mod object_only {
    use std::marker::PhantomData;

    use serde::de::value::MapAccessDeserializer;
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    struct Object<T>(T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct ObjectVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
                type Value = T;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                    T::deserialize(MapAccessDeserializer::new(map))
                }
            }
            if deserializer.is_human_readable() {
                deserializer
                    .deserialize_map(ObjectVisitor(PhantomData))
                    .map(Object)
            } else {
                T::deserialize(deserializer).map(Object)
            }
        }
    }

    /// A list of objects.
    pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        let items = Vec::<Object<T>>::deserialize(deserializer)?;
        Ok(items.into_iter().map(|Object(item)| item).collect())
    }

    /// One object.
    pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        Object::<T>::deserialize(deserializer).map(|Object(item)| item)
    }

    /// An object or `null`.
    pub fn optional<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(item)| item))
    }
}

/// A producer-assigned, globally unique event id (a ULID is recommended); the dedupe key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl EventId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EventId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// One immutable event: the envelope and its typed payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Producer-assigned unique id.
    pub id: EventId,
    /// Envelope schema version ([`CURRENT_SCHEMA`]).
    pub schema: u32,
    /// When it happened, by the producer's clock.
    pub time: Timestamp,
    /// Who emitted it.
    pub source: String,
    /// The scope it belongs to: a cluster, a site, a tenant.
    pub cluster: String,
    /// The type and its data.
    pub payload: Payload,
}

impl Event {
    /// An event of the current schema.
    pub fn new(
        id: impl Into<String>,
        time: Timestamp,
        source: impl Into<String>,
        cluster: impl Into<String>,
        payload: Payload,
    ) -> Self {
        Self {
            id: EventId(id.into()),
            schema: CURRENT_SCHEMA,
            time,
            source: source.into(),
            cluster: cluster.into(),
            payload,
        }
    }

    /// The wire name of this event's type, e.g. `cycle.completed`.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }
}

/// Severity of a finding, an alert or an incident, ordered from least to most severe.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Warning,
    /// Broken.
    Error,
    /// Broken and hurting people.
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kubernetes-style reference to the resource a finding is about.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    /// Resource kind, e.g. `Pod`.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Namespace, for namespaced kinds.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Resource name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Live uid, when the probe knows it (links the finding to the inventory graph).
    #[serde(default)]
    pub uid: Option<String>,
}

/// `cycle.completed`: a probe finished one scan of a cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CycleCompleted {
    /// The probe's name for this cycle.
    #[schemars(length(min = 1))]
    pub cycle: String,
    /// The categories the probe ran in this cycle (with every finding's category).
    #[schemars(inner(length(min = 1)))]
    pub categories: Vec<String>,
    /// What the probe saw now.
    #[serde(deserialize_with = "object_only::list")]
    pub findings: Vec<FindingObservation>,
}

/// One finding as seen in one cycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingObservation {
    /// Identifies the finding within its cluster; stable across cycles; not `alert:...` (alerts').
    #[schemars(length(min = 1), extend("not" = {"pattern": "^alert:"}))]
    pub check_key: String,
    /// The check category that produced it.
    #[schemars(length(min = 1))]
    pub category: String,
    /// How bad it is.
    pub severity: Severity,
    /// One line for people.
    #[schemars(length(min = 1))]
    pub title: String,
    /// More words for people.
    #[serde(default)]
    pub detail: Option<String>,
    /// The resource it is about.
    #[serde(default, deserialize_with = "object_only::optional")]
    pub resource: Option<ResourceRef>,
    /// Recorded in the timeline and resolved at once: never in the active list.
    #[serde(default)]
    pub informational: bool,
}

/// The check keys of alerts start with this (`alert:<name>:<fingerprint>`, ADR 0007): a
/// `cycle.completed` observation may not use it (new input; the JSON Schema says the same).
pub const ALERT_KEY_PREFIX: &str = "alert:";

/// How a finding was resolved from outside the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManualResolutionKind {
    /// An operator.
    Manual,
    /// An automated remediation (the `recipe` field names it).
    Recipe,
}

/// `finding.resolved`: someone or something resolved a finding outside the sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingResolved {
    /// The finding, within the event's cluster.
    #[schemars(length(min = 1))]
    pub check_key: String,
    /// `manual` or `recipe`.
    pub kind: ManualResolutionKind,
    /// Who resolved it.
    #[serde(default)]
    pub by: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// The recipe's name; required when `kind` is `recipe`.
    #[serde(default)]
    pub recipe: Option<String>,
}

/// `settings.changed`: per-cluster lifecycle settings; an absent field keeps its value.
///
/// `enabled_categories` has three states: absent (keep), `null` (every category enabled) and a
/// list. JSON omits absent fields; compact formats store every field positionally.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SettingsChanged {
    /// Clean cycles a finding needs before it auto-resolves (T).
    pub clean_cycles_to_resolve: Option<u32>,
    /// `Some(None)`: all categories; `Some(Some(list))`: only these; `None`: unchanged.
    pub enabled_categories: Option<Option<Vec<String>>>,
    /// Width of the flap window, at most [`MAX_FLAP_WINDOW_SECS`] on the wire
    /// (a log written before the limit may hold more: the fold reads it as the limit).
    pub flap_window_secs: Option<u64>,
    /// Auto-resolutions inside the window above which a finding is flapping.
    pub flap_threshold: Option<u32>,
    /// Lowest severity that notifies.
    pub notification_min_severity: Option<Severity>,
    /// Percent state change at or above which a finding starts flapping.
    pub flap_start_percent: Option<u32>,
    /// Percent state change below which a flapping finding stops flapping.
    pub flap_stop_percent: Option<u32>,
    /// Cycles a category may be missing before its active findings are unreachable (N).
    pub unreachable_after_cycles: Option<u32>,
    /// Consecutive scans an orphan must be seen in before it is reported.
    pub orphan_confirm_scans: Option<u32>,
    /// Kinds that are orphans when no live resource uses them (e.g. a PVC no pod uses).
    pub orphan_consumer_kinds: Option<Vec<String>>,
    /// Quiet period after which a trace's missing parents and root are reported.
    pub span_grace_secs: Option<u64>,
    /// Quiet period after which a judged trace leaves memory, at most
    /// [`MAX_SPAN_RETENTION_SECS`].
    pub span_retention_secs: Option<u64>,
    /// Findings that open this close together may be grouped into one incident.
    pub incident_window_secs: Option<u64>,
    /// Age from which a persistent active finding is listed as long-lived.
    pub long_lived_secs: Option<u64>,
    /// Seconds without a notification naming a firing alert after which it is stale, 1 to
    /// [`MAX_ALERT_STALE_AFTER_SECS`].
    pub alert_stale_after_secs: Option<u64>,
    /// Whether a finding that opens inside a maintenance window opens no automatic incident
    /// until the window ends (default true).
    pub maintenance_suppresses_incidents: Option<bool>,
    /// Whether what happens to a finding inside a maintenance window does not count towards
    /// flapping (default true).
    pub maintenance_suppresses_flaps: Option<bool>,
}

fn present_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Per-cluster lifecycle settings; an absent field keeps its value (JSON form of the Rust type).
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SettingsChanged")]
struct SettingsChangedJson {
    /// Clean cycles a finding needs before it auto-resolves (T); default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clean_cycles_to_resolve: Option<u32>,
    /// `null`: every category enabled (the default); a list: only these.
    #[serde(
        default,
        deserialize_with = "present_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(inner(length(min = 1)))]
    enabled_categories: Option<Option<Vec<String>>>,
    /// Width of the flap window in seconds; at most 2592000 (30 days), default 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = MAX_FLAP_WINDOW_SECS))]
    flap_window_secs: Option<u64>,
    /// A finding with more auto-resolutions than this inside the window is flapping; default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flap_threshold: Option<u32>,
    /// Lowest severity that notifies; default warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notification_min_severity: Option<Severity>,
    /// Percent state change (weighted, last 20 runs of the category) at or above which a
    /// finding starts flapping; 1 to 100, default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    flap_start_percent: Option<u32>,
    /// Percent state change below which a flapping finding stops flapping; 1 to 100, default 25
    /// (never above the start threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    flap_stop_percent: Option<u32>,
    /// Consecutive cycles of the cluster without a category after which its active findings
    /// are unreachable (N); at least 1, default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    unreachable_after_cycles: Option<u32>,
    /// Consecutive inventory scans an orphan must be seen in before it is reported; at least
    /// 1, default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    orphan_confirm_scans: Option<u32>,
    /// Kinds that are orphans when no live resource uses them; default
    /// `["PersistentVolumeClaim"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(length(min = 1)))]
    orphan_consumer_kinds: Option<Vec<String>>,
    /// Seconds a trace must be quiet before its missing parents and root are reported;
    /// default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    span_grace_secs: Option<u64>,
    /// Seconds a judged trace must be quiet before it leaves memory; a later span of it is
    /// judged alone, as a trace of its own, and counted as late. At most 2592000 (30 days),
    /// default 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = MAX_SPAN_RETENTION_SECS))]
    span_retention_secs: Option<u64>,
    /// Findings of one cluster that open within this many seconds of an open automatic
    /// incident's latest finding, and share a namespace or a resource-graph link with it, join
    /// it; default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incident_window_secs: Option<u64>,
    /// Age in seconds from which a persistent active finding is listed as long-lived; default
    /// 604800 (a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    long_lived_secs: Option<u64>,
    /// Seconds without a notification naming a firing alert after which it is stale (a missed
    /// resolve, a receiver with `send_resolved: false`, an alerting system that stopped
    /// sending): listed by `stuck` and marked on the alert's views, never resolved. 1 to
    /// 2592000 (30 days), default 28800 (twice Alertmanager's default `repeat_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_ALERT_STALE_AFTER_SECS))]
    alert_stale_after_secs: Option<u64>,
    /// Whether a finding or alert that opens inside a maintenance window opens no automatic
    /// incident until the window ends (then it may); default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maintenance_suppresses_incidents: Option<bool>,
    /// Whether resolutions and state changes inside a maintenance window do not count towards
    /// flapping; default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maintenance_suppresses_flaps: Option<bool>,
}

/// Compact form of [`SettingsChanged`]: every field, in order. Stored-format 1 records hold the
/// first five fields only, formats 2 and 3 all but `span_retention_secs` and
/// `alert_stale_after_secs`, format 4 all but `alert_stale_after_secs`, format 5 all but the two
/// `maintenance_` fields (the last); the store reads those through its own legacy layouts.
#[derive(Serialize, Deserialize)]
struct SettingsChangedCompact {
    clean_cycles_to_resolve: Option<u32>,
    enabled_categories: Option<Option<Vec<String>>>,
    flap_window_secs: Option<u64>,
    flap_threshold: Option<u32>,
    notification_min_severity: Option<Severity>,
    flap_start_percent: Option<u32>,
    flap_stop_percent: Option<u32>,
    unreachable_after_cycles: Option<u32>,
    orphan_confirm_scans: Option<u32>,
    orphan_consumer_kinds: Option<Vec<String>>,
    span_grace_secs: Option<u64>,
    incident_window_secs: Option<u64>,
    long_lived_secs: Option<u64>,
    span_retention_secs: Option<u64>,
    alert_stale_after_secs: Option<u64>,
    maintenance_suppresses_incidents: Option<bool>,
    maintenance_suppresses_flaps: Option<bool>,
}

macro_rules! settings_mirror {
    ($from:ident => $to:ident) => {
        impl From<$from> for $to {
            fn from(v: $from) -> Self {
                Self {
                    clean_cycles_to_resolve: v.clean_cycles_to_resolve,
                    enabled_categories: v.enabled_categories,
                    flap_window_secs: v.flap_window_secs,
                    flap_threshold: v.flap_threshold,
                    notification_min_severity: v.notification_min_severity,
                    flap_start_percent: v.flap_start_percent,
                    flap_stop_percent: v.flap_stop_percent,
                    unreachable_after_cycles: v.unreachable_after_cycles,
                    orphan_confirm_scans: v.orphan_confirm_scans,
                    orphan_consumer_kinds: v.orphan_consumer_kinds,
                    span_grace_secs: v.span_grace_secs,
                    incident_window_secs: v.incident_window_secs,
                    long_lived_secs: v.long_lived_secs,
                    span_retention_secs: v.span_retention_secs,
                    alert_stale_after_secs: v.alert_stale_after_secs,
                    maintenance_suppresses_incidents: v.maintenance_suppresses_incidents,
                    maintenance_suppresses_flaps: v.maintenance_suppresses_flaps,
                }
            }
        }
    };
}
settings_mirror!(SettingsChanged => SettingsChangedJson);
settings_mirror!(SettingsChangedJson => SettingsChanged);
settings_mirror!(SettingsChanged => SettingsChangedCompact);
settings_mirror!(SettingsChangedCompact => SettingsChanged);

impl Serialize for SettingsChanged {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            SettingsChangedJson::from(self.clone()).serialize(serializer)
        } else {
            SettingsChangedCompact::from(self.clone()).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for SettingsChanged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            SettingsChangedJson::deserialize(deserializer).map(Into::into)
        } else {
            SettingsChangedCompact::deserialize(deserializer).map(Into::into)
        }
    }
}

impl JsonSchema for SettingsChanged {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        SettingsChangedJson::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        SettingsChangedJson::json_schema(generator)
    }
}

/// `inventory.observed`: a full snapshot of the listed kinds in the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryObserved {
    /// The scanner's name for this scan.
    #[schemars(length(min = 1))]
    pub scan: String,
    /// The kinds this scan covers completely.
    #[schemars(inner(length(min = 1)))]
    pub kinds: Vec<String>,
    /// Every live resource of those kinds.
    #[serde(deserialize_with = "object_only::list")]
    pub resources: Vec<InventoryResource>,
}

/// One live resource in an inventory scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryResource {
    /// Live uid.
    #[schemars(length(min = 1))]
    pub uid: String,
    /// Resource kind.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Namespace, for namespaced kinds.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Resource name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Uids of owner references.
    #[serde(default)]
    pub owners: Vec<String>,
    /// Uids of resources it depends on.
    #[serde(default)]
    pub uses: Vec<String>,
}

/// `tracking.upserted` / `tracking.deleted`: what the management database believes exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tracking {
    /// Resource kind.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// The tracking row's key.
    #[schemars(length(min = 1))]
    pub key: String,
    /// The live uid it tracks, when known.
    #[serde(default)]
    pub uid: Option<String>,
}

/// Outcome of a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpanStatus {
    /// Succeeded.
    Ok,
    /// Failed.
    Error,
    /// Not set by the instrumentation.
    Unset,
}

/// `span.recorded`: one span of an agent or pipeline trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpanRecorded {
    /// Trace id.
    #[schemars(length(min = 1))]
    pub trace_id: String,
    /// Span id.
    #[schemars(length(min = 1))]
    pub span_id: String,
    /// Parent span id; `null` for a root span.
    #[serde(default)]
    pub parent_span_id: Option<String>,
    /// Operation name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Service that recorded it.
    #[schemars(length(min = 1))]
    pub service: String,
    /// Start time.
    pub start: Timestamp,
    /// End time; `null` while open.
    #[serde(default)]
    pub end: Option<Timestamp>,
    /// Outcome.
    pub status: SpanStatus,
}

/// `alert.fired` / `alert.resolved`: from an alerting system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// The alerting system's identity of the alert.
    #[schemars(length(min = 1))]
    pub fingerprint: String,
    /// Alert name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Severity.
    pub severity: Severity,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at: Timestamp,
    /// When it stopped, if it has.
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
}

/// Kind of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A new version rolled out.
    Deploy,
    /// Back to an earlier version.
    Rollback,
    /// Configuration only.
    Config,
}

/// `change.deployed`: a deploy, a merged fix, a rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeDeployed {
    /// What changed.
    #[schemars(length(min = 1))]
    pub service: String,
    /// To which version.
    #[schemars(length(min = 1))]
    pub version: String,
    /// Deploy, rollback or config.
    pub kind: ChangeKind,
    /// A link: a PR, a pipeline.
    #[serde(default)]
    pub link: Option<String>,
    /// What it does.
    #[serde(default)]
    pub summary: Option<String>,
    /// The incident it belongs to, if the producer knows it.
    #[serde(default)]
    pub incident: Option<String>,
    /// Findings it is meant to fix (links it to their incidents).
    #[serde(default)]
    #[schemars(inner(length(min = 1)))]
    pub check_keys: Vec<String>,
}

/// Kind of timeline note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NoteKind {
    /// Something seen.
    Observation,
    /// Something suspected.
    Hypothesis,
    /// Something done.
    Action,
    /// Something decided.
    Decision,
    /// How it ended.
    Resolution,
}

/// `note.added`: a human or agent entry in the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteAdded {
    /// The incident it belongs to, if any.
    #[serde(default)]
    pub incident: Option<String>,
    /// Who wrote it.
    #[schemars(length(min = 1))]
    pub author: String,
    /// Observation, hypothesis, action, decision or resolution.
    pub kind: NoteKind,
    /// The note.
    #[schemars(length(min = 1))]
    pub text: String,
    /// Links.
    #[serde(default)]
    pub links: Vec<String>,
    /// Findings it is about (links it to their incidents when `incident` is absent).
    #[serde(default)]
    #[schemars(inner(length(min = 1)))]
    pub check_keys: Vec<String>,
}

/// `maintenance.scheduled`: a maintenance window of the event's cluster, in effect from this
/// event's position in the log (never before). Scheduling a `window` name again replaces that
/// window from then on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceScheduled {
    /// The window's name in its cluster (`db-upgrade-2026-12`, `weekly-patching`).
    #[schemars(length(min = 1, max = MAX_WINDOW_NAME_CHARS))]
    pub window: String,
    /// Who scheduled it.
    #[schemars(length(min = 1))]
    pub by: String,
    /// Why.
    #[schemars(length(min = 1))]
    pub reason: String,
    /// What it covers: every matcher given must match; none given covers the whole cluster.
    #[serde(default, deserialize_with = "object_only::object")]
    pub matchers: MaintenanceMatchers,
    /// When: `{"once": {"starts_at": …, "ends_at": …}}` (from `starts_at`, inclusive, to
    /// `ends_at`, exclusive), or `{"time_intervals": [spec, …]}` (a recurrence in
    /// Alertmanager's `time_intervals` form, 1 to 64 specs).
    pub schedule: MaintenanceSchedule,
}

/// What a maintenance window covers. Every matcher given must match; a finding or alert that
/// lacks what a matcher reads (a probe's finding has no labels) is not covered by it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceMatchers {
    /// The namespace: of the finding's resource, or an alert's `namespace` label.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub namespace: Option<String>,
    /// A service: the name of the finding's resource or its workload, or an alert's `service`
    /// or `job` label.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub service: Option<String>,
    /// An alert's name (`alertname`): only alerts match.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub alert_name: Option<String>,
    /// A check-key pattern: `*` matches any run of characters, everything else itself
    /// (`pods:payments/*`, `alert:KubePodCrashLooping:*`).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub check_key: Option<String>,
    /// Label equality (alerts only): every label named must have exactly this value.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl MaintenanceMatchers {
    /// Whether no matcher is given (the window covers its whole cluster).
    pub fn is_empty(&self) -> bool {
        self.namespace.is_none()
            && self.service.is_none()
            && self.alert_name.is_none()
            && self.check_key.is_none()
            && self.labels.is_empty()
    }
}

/// When a maintenance window is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MaintenanceSchedule {
    /// Once: from `starts_at` (inclusive) to `ends_at` (exclusive).
    Once(#[serde(deserialize_with = "object_only::object")] MaintenanceSpan),
    /// Recurring: open whenever one of these Alertmanager `time_intervals` specs matches.
    TimeIntervals(
        #[serde(deserialize_with = "object_only::list")]
        #[schemars(length(min = 1, max = MAX_TIME_INTERVALS))]
        Vec<TimeIntervalSpec>,
    ),
}

/// A one-off maintenance window's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpan {
    /// The first instant inside.
    pub starts_at: Timestamp,
    /// The first instant past the window; later than `starts_at`.
    pub ends_at: Timestamp,
}

/// A recurring interval of time in Alertmanager's `time_interval_spec` form. Within a field one
/// element must match, every field given must match, and an absent field matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TimeIntervalSpec {
    /// Times of day, in the location's civil time: each from `start_time` (inclusive) to
    /// `end_time` (exclusive).
    #[schemars(length(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<Vec<TimeRangeSpec>>,
    /// Days of the week by name, any case (`"monday"`), or inclusive ranges of them
    /// (`"monday:friday"`); weeks run from sunday to saturday.
    #[schemars(length(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<String>>,
    /// Days of the month, 1 to 31, or -31 to -1 counting from the month's end (-1 is its last
    /// day), or inclusive ranges of them (`"1:5"`, `"-3:-1"`, `"20:-1"`); a range past the end of
    /// a shorter month stops at its last day.
    #[schemars(length(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_of_month: Option<Vec<String>>,
    /// Months by name, any case (`"may"`), or number, 1 to 12 (`"12"`), or inclusive ranges of
    /// them (`"january:march"`).
    #[schemars(length(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub months: Option<Vec<String>>,
    /// Years (`"2026"`) or inclusive ranges of them (`"2020:2022"`).
    #[schemars(length(min = 1))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub years: Option<Vec<String>>,
    /// The IANA time zone every other field is read in (`"Europe/Berlin"`); UTC when absent.
    /// `"Local"` is refused: it would depend on the machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A range of times of day, `"HH:MM"`: the start inclusive, the end exclusive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeSpec {
    /// The first minute inside, `"00:00"` to `"23:59"`.
    #[schemars(regex(pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub start_time: String,
    /// The first minute past the range, later than `start_time`; `"24:00"` is the end of the day.
    #[schemars(regex(pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub end_time: String,
}

/// JSON (human-readable) leaves absent fields out, as Alertmanager users write them (the
/// `skip_serializing_if` on the fields says so to the JSON Schema of answers; this impl, not a
/// derive, is what serializes); the compact
/// (postcard) form is positional and always writes every field (ADR 0002: no
/// `skip_serializing_if` on stored types). Both read back through the derived `Deserialize`.
impl Serialize for TimeIntervalSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let human = serializer.is_human_readable();
        let present = [
            self.times.is_some(),
            self.weekdays.is_some(),
            self.days_of_month.is_some(),
            self.months.is_some(),
            self.years.is_some(),
            self.location.is_some(),
        ];
        let len = if human {
            present.iter().filter(|p| **p).count()
        } else {
            present.len()
        };
        let mut state = serializer.serialize_struct("TimeIntervalSpec", len)?;
        put_present(&mut state, human, "times", &self.times)?;
        put_present(&mut state, human, "weekdays", &self.weekdays)?;
        put_present(&mut state, human, "days_of_month", &self.days_of_month)?;
        put_present(&mut state, human, "months", &self.months)?;
        put_present(&mut state, human, "years", &self.years)?;
        put_present(&mut state, human, "location", &self.location)?;
        state.end()
    }
}

fn put_present<S: SerializeStruct, T: Serialize>(
    state: &mut S,
    human: bool,
    name: &'static str,
    value: &Option<T>,
) -> Result<(), S::Error> {
    if human && value.is_none() {
        state.skip_field(name)
    } else {
        state.serialize_field(name, value)
    }
}

/// `maintenance.cancelled`: a window of the event's cluster ends at this event's position
/// (what it covered is treated normally from then).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceCancelled {
    /// The window's name, as scheduled.
    #[schemars(length(min = 1, max = MAX_WINDOW_NAME_CHARS))]
    pub window: String,
    /// Who cancelled it.
    #[schemars(length(min = 1))]
    pub by: String,
    /// Why, if said.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub reason: Option<String>,
}

/// `incident.opened` / `incident.updated` / `incident.closed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentChange {
    /// Incident id.
    #[schemars(length(min = 1))]
    pub incident: String,
    /// Title; required when opening.
    #[serde(default)]
    pub title: Option<String>,
    /// Severity.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Findings that belong to it.
    #[serde(default)]
    pub check_keys: Vec<String>,
    /// Summary.
    #[serde(default)]
    pub summary: Option<String>,
}

macro_rules! event_types {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal => $data:ty ),* $(,)?) => {
        /// The `type` of an event.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum EventType {
            $( $(#[$doc])* #[serde(rename = $wire)] $variant, )*
        }

        impl EventType {
            /// Every type, in wire-contract order.
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant, )* ];

            /// The wire name, e.g. `cycle.completed`.
            pub fn as_str(self) -> &'static str {
                match self { $( EventType::$variant => $wire, )* }
            }

            /// The type with this wire name.
            pub fn from_wire(name: &str) -> Option<Self> {
                match name { $( $wire => Some(EventType::$variant), )* _ => None }
            }

            /// The JSON Schema of this type's `data`, with its definitions.
            pub(crate) fn data_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                match self { $( EventType::$variant => generator.subschema_for::<$data>(), )* }
            }
        }

        /// The payload of an event, by type.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum Payload {
            $( $(#[$doc])* $variant($data), )*
        }

        impl Payload {
            /// The event type this payload belongs to.
            pub fn event_type(&self) -> EventType {
                match self { $( Payload::$variant(_) => EventType::$variant, )* }
            }

            /// Decodes the `data` of an event of type `event_type` from the entries of a JSON
            /// object being read (`crate::wire`'s single pass): what
            /// [`Payload::decode_json_data`] decodes from the object's text, without its error
            /// path (a failure is decoded again from the text to name the field).
            pub(crate) fn decode_from_object<'de, A: serde::de::MapAccess<'de>>(
                event_type: EventType,
                object: A,
            ) -> Result<Self, A::Error> {
                let object = serde::de::value::MapAccessDeserializer::new(object);
                match event_type {
                    $( EventType::$variant => <$data>::deserialize(object).map(Payload::$variant), )*
                }
            }

            /// Decodes the `data` of an event of type `event_type` from JSON, reporting the path
            /// of the field that failed.
            pub(crate) fn decode_json_data(
                event_type: EventType,
                json: &str,
            ) -> Result<Self, serde_path_to_error::Error<serde_json::Error>> {
                // Fast path: plain serde. Tracking the path of every field costs about half of
                // the decode; only a payload that fails is decoded again to name the field.
                let fast = match event_type {
                    $( EventType::$variant => serde_json::from_str(json).map(Payload::$variant), )*
                };
                if let Ok(payload) = fast {
                    return Ok(payload);
                }
                let mut de = serde_json::Deserializer::from_str(json);
                let payload = match event_type {
                    $( EventType::$variant => Payload::$variant(serde_path_to_error::deserialize(&mut de)?), )*
                };
                Ok(payload)
            }

            fn serialize_data<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self { $( Payload::$variant(data) => data.serialize(serializer), )* }
            }
        }
    };
}

event_types! {
    /// A probe finished one scan of a cluster.
    CycleCompleted = "cycle.completed" => CycleCompleted,
    /// A finding was resolved outside the sweep.
    FindingResolved = "finding.resolved" => FindingResolved,
    /// Per-cluster lifecycle settings changed.
    SettingsChanged = "settings.changed" => SettingsChanged,
    /// A scan of what is live.
    InventoryObserved = "inventory.observed" => InventoryObserved,
    /// The management database tracks a resource.
    TrackingUpserted = "tracking.upserted" => Tracking,
    /// The management database stopped tracking a resource.
    TrackingDeleted = "tracking.deleted" => Tracking,
    /// One span of a trace.
    SpanRecorded = "span.recorded" => SpanRecorded,
    /// An alert started firing.
    AlertFired = "alert.fired" => Alert,
    /// An alert stopped firing.
    AlertResolved = "alert.resolved" => Alert,
    /// A deploy, a merged fix, a rollback.
    ChangeDeployed = "change.deployed" => ChangeDeployed,
    /// A human or agent note.
    NoteAdded = "note.added" => NoteAdded,
    /// An incident was opened.
    IncidentOpened = "incident.opened" => IncidentChange,
    /// An incident changed.
    IncidentUpdated = "incident.updated" => IncidentChange,
    /// An incident was closed.
    IncidentClosed = "incident.closed" => IncidentChange,
    /// A maintenance window was scheduled (or rescheduled).
    MaintenanceScheduled = "maintenance.scheduled" => MaintenanceScheduled,
    /// A maintenance window was cancelled.
    MaintenanceCancelled = "maintenance.cancelled" => MaintenanceCancelled,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

struct WireData<'a>(&'a Payload);

impl Serialize for WireData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_data(serializer)
    }
}

/// Compact (positional) form of an event, for postcard and other non-self-describing formats.
#[derive(Serialize)]
struct CompactEventRef<'a> {
    id: &'a EventId,
    schema: u32,
    time: Timestamp,
    source: &'a str,
    cluster: &'a str,
    payload: &'a Payload,
}

#[derive(Deserialize)]
struct CompactEvent {
    id: EventId,
    schema: u32,
    time: Timestamp,
    source: String,
    cluster: String,
    payload: Payload,
}

/// JSON gets the wire envelope; compact formats get the positional form.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let mut envelope = serializer.serialize_struct("Event", 7)?;
            envelope.serialize_field("id", &self.id)?;
            envelope.serialize_field("schema", &self.schema)?;
            envelope.serialize_field("type", self.event_type().as_str())?;
            envelope.serialize_field("time", &self.time)?;
            envelope.serialize_field("source", &self.source)?;
            envelope.serialize_field("cluster", &self.cluster)?;
            envelope.serialize_field("data", &WireData(&self.payload))?;
            envelope.end()
        } else {
            CompactEventRef {
                id: &self.id,
                schema: self.schema,
                time: self.time,
                source: &self.source,
                cluster: &self.cluster,
                payload: &self.payload,
            }
            .serialize(serializer)
        }
    }
}

impl Event {
    /// Reads the compact (positional) form that [`Serialize`] writes for non-human-readable
    /// formats. The JSON form is read by the wire decoder (`impl Deserialize for Event` is there).
    pub(crate) fn deserialize_compact<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        let e = CompactEvent::deserialize(deserializer)?;
        Ok(Event {
            id: e.id,
            schema: e.schema,
            time: e.time,
            source: e.source,
            cluster: e.cluster,
            payload: e.payload,
        })
    }
}
