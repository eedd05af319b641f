//! Older stored layouts, read forever and never written.
//!
//! - Log format 1: the layout of format 4, except that `settings.changed` carried only its first
//!   five fields, and `change.deployed` and `note.added` no incident and check keys.
//! - Log formats 2 and 3: the layout of format 5, except that `settings.changed` had no
//!   `span_retention_secs` and `alert_stale_after_secs` (its last fields); format 4 no
//!   `alert_stale_after_secs` (its last field).
//! - Snapshot formats 3 to 5: the layout of format 6, except that a cluster's settings had no
//!   `span_retention_secs` and its span forest no late-span count.
//! - Snapshot format 6: the layout of format 11, and format 7 (and cluster part format 1) the
//!   layout of format 12 (part format 2), except that a finding had no `alert` and a cluster no
//!   `alert_runs` (their last fields): they are read with none and 0.
//! - Snapshot formats 6 to 12 and cluster part formats 1 and 2: a cluster's settings had no
//!   `alert_stale_after_secs` (their last field): read with the default.
//! - Log format 5: `settings.changed` had no `maintenance_suppresses_incidents` and
//!   `maintenance_suppresses_flaps` (its last fields), and no log held a maintenance event.
//! - Snapshot formats 6 to 15 and cluster part formats 1 to 3: a cluster had no `maintenance`
//!   (its last field): read with none (no window was ever scheduled).

use std::borrow::Cow;

use serde::Deserialize;
use tidemark_core::event::ResourceRef;
use tidemark_core::event::{
    Alert, ChangeDeployed, ChangeKind, CycleCompleted, FindingResolved, IncidentChange,
    InventoryObserved, NoteAdded, NoteKind, SettingsChanged, SpanRecorded, Tracking,
};
use tidemark_core::findings::flaps::FlapEpisode;
use tidemark_core::findings::{
    CategorySnapshot, ClusterSnapshot, DriftRecord, FindingSnapshot, FindingsSnapshot, FlapStatus,
    LiveFindingSnapshot,
};
use tidemark_core::incidents::IncidentsSnapshot;
use tidemark_core::orphans::{
    ClusterOrphansSnapshot, GraphSnapshot, OrphanView, OrphansSnapshot, SpansSnapshot,
    TraceSnapshot,
};
use tidemark_core::{
    ClusterPart, ClusterSettings, Event, EventId, LiveProjectionsSnapshot, Occurrence, Payload,
    ProjectionsSnapshot, Severity, Timestamp,
};

use super::{CodecError, SnapshotRecord, StoredEvent};

/// The version byte of format 1.
pub const EVENT_FORMAT_1: u8 = 1;

#[derive(Deserialize)]
struct SettingsV1 {
    clean_cycles_to_resolve: Option<u32>,
    enabled_categories: Option<Option<Vec<String>>>,
    flap_window_secs: Option<u64>,
    flap_threshold: Option<u32>,
    notification_min_severity: Option<Severity>,
}

#[derive(Deserialize)]
struct ChangeV1 {
    service: String,
    version: String,
    kind: ChangeKind,
    link: Option<String>,
    summary: Option<String>,
}

#[derive(Deserialize)]
struct NoteV1 {
    incident: Option<String>,
    author: String,
    kind: NoteKind,
    text: String,
    links: Vec<String>,
}

/// Format 1's payload: variant order as in [`Payload`].
#[derive(Deserialize)]
enum PayloadV1 {
    CycleCompleted(CycleCompleted),
    FindingResolved(FindingResolved),
    SettingsChanged(SettingsV1),
    InventoryObserved(InventoryObserved),
    TrackingUpserted(Tracking),
    TrackingDeleted(Tracking),
    SpanRecorded(SpanRecorded),
    AlertFired(Alert),
    AlertResolved(Alert),
    ChangeDeployed(ChangeV1),
    NoteAdded(NoteV1),
    IncidentOpened(IncidentChange),
    IncidentUpdated(IncidentChange),
    IncidentClosed(IncidentChange),
}

#[derive(Deserialize)]
struct EventV1 {
    id: EventId,
    schema: u32,
    time: Timestamp,
    source: String,
    cluster: String,
    payload: PayloadV1,
}

#[derive(Deserialize)]
struct StoredV1 {
    recorded_at: Timestamp,
    event: EventV1,
}

fn upcast(payload: PayloadV1) -> Payload {
    match payload {
        PayloadV1::CycleCompleted(p) => Payload::CycleCompleted(p),
        PayloadV1::FindingResolved(p) => Payload::FindingResolved(p),
        PayloadV1::SettingsChanged(p) => Payload::SettingsChanged(SettingsChanged {
            clean_cycles_to_resolve: p.clean_cycles_to_resolve,
            enabled_categories: p.enabled_categories,
            flap_window_secs: p.flap_window_secs,
            flap_threshold: p.flap_threshold,
            notification_min_severity: p.notification_min_severity,
            ..SettingsChanged::default()
        }),
        PayloadV1::InventoryObserved(p) => Payload::InventoryObserved(p),
        PayloadV1::TrackingUpserted(p) => Payload::TrackingUpserted(p),
        PayloadV1::TrackingDeleted(p) => Payload::TrackingDeleted(p),
        PayloadV1::SpanRecorded(p) => Payload::SpanRecorded(p),
        PayloadV1::AlertFired(p) => Payload::AlertFired(p),
        PayloadV1::AlertResolved(p) => Payload::AlertResolved(p),
        PayloadV1::ChangeDeployed(p) => {
            Payload::ChangeDeployed(tidemark_core::event::ChangeDeployed {
                service: p.service,
                version: p.version,
                kind: p.kind,
                link: p.link,
                summary: p.summary,
                incident: None,
                check_keys: Vec::new(),
            })
        }
        PayloadV1::NoteAdded(p) => Payload::NoteAdded(tidemark_core::event::NoteAdded {
            incident: p.incident,
            author: p.author,
            kind: p.kind,
            text: p.text,
            links: p.links,
            check_keys: Vec::new(),
        }),
        PayloadV1::IncidentOpened(p) => Payload::IncidentOpened(p),
        PayloadV1::IncidentUpdated(p) => Payload::IncidentUpdated(p),
        PayloadV1::IncidentClosed(p) => Payload::IncidentClosed(p),
    }
}

/// Decodes the body (after the version byte) of a format-1 record.
pub fn decode_event_v1(body: &[u8]) -> Result<StoredEvent, CodecError> {
    let stored: StoredV1 = super::decode_body(body)?;
    let e = stored.event;
    Ok(StoredEvent {
        recorded_at: stored.recorded_at,
        event: Event {
            id: e.id,
            schema: e.schema,
            time: e.time,
            source: e.source,
            cluster: e.cluster,
            payload: upcast(e.payload),
        },
    })
}

/// `settings.changed` of log formats 2 and 3: every field but `span_retention_secs`.
#[derive(Deserialize)]
struct SettingsV3 {
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
}

/// `settings.changed` of log format 4: every field but `alert_stale_after_secs`.
#[derive(Deserialize)]
struct SettingsV4 {
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
}

impl From<SettingsV3> for SettingsChanged {
    fn from(p: SettingsV3) -> Self {
        Self {
            clean_cycles_to_resolve: p.clean_cycles_to_resolve,
            enabled_categories: p.enabled_categories,
            flap_window_secs: p.flap_window_secs,
            flap_threshold: p.flap_threshold,
            notification_min_severity: p.notification_min_severity,
            flap_start_percent: p.flap_start_percent,
            flap_stop_percent: p.flap_stop_percent,
            unreachable_after_cycles: p.unreachable_after_cycles,
            orphan_confirm_scans: p.orphan_confirm_scans,
            orphan_consumer_kinds: p.orphan_consumer_kinds,
            span_grace_secs: p.span_grace_secs,
            incident_window_secs: p.incident_window_secs,
            long_lived_secs: p.long_lived_secs,
            span_retention_secs: None,
            alert_stale_after_secs: None,
            maintenance_suppresses_incidents: None,
            maintenance_suppresses_flaps: None,
        }
    }
}

impl From<SettingsV4> for SettingsChanged {
    fn from(p: SettingsV4) -> Self {
        Self {
            clean_cycles_to_resolve: p.clean_cycles_to_resolve,
            enabled_categories: p.enabled_categories,
            flap_window_secs: p.flap_window_secs,
            flap_threshold: p.flap_threshold,
            notification_min_severity: p.notification_min_severity,
            flap_start_percent: p.flap_start_percent,
            flap_stop_percent: p.flap_stop_percent,
            unreachable_after_cycles: p.unreachable_after_cycles,
            orphan_confirm_scans: p.orphan_confirm_scans,
            orphan_consumer_kinds: p.orphan_consumer_kinds,
            span_grace_secs: p.span_grace_secs,
            incident_window_secs: p.incident_window_secs,
            long_lived_secs: p.long_lived_secs,
            span_retention_secs: p.span_retention_secs,
            alert_stale_after_secs: None,
            maintenance_suppresses_incidents: None,
            maintenance_suppresses_flaps: None,
        }
    }
}

/// `settings.changed` of log format 5: every field but the two `maintenance_` ones.
#[derive(Deserialize)]
struct SettingsV5 {
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
}

impl From<SettingsV5> for SettingsChanged {
    fn from(p: SettingsV5) -> Self {
        Self {
            clean_cycles_to_resolve: p.clean_cycles_to_resolve,
            enabled_categories: p.enabled_categories,
            flap_window_secs: p.flap_window_secs,
            flap_threshold: p.flap_threshold,
            notification_min_severity: p.notification_min_severity,
            flap_start_percent: p.flap_start_percent,
            flap_stop_percent: p.flap_stop_percent,
            unreachable_after_cycles: p.unreachable_after_cycles,
            orphan_confirm_scans: p.orphan_confirm_scans,
            orphan_consumer_kinds: p.orphan_consumer_kinds,
            span_grace_secs: p.span_grace_secs,
            incident_window_secs: p.incident_window_secs,
            long_lived_secs: p.long_lived_secs,
            span_retention_secs: p.span_retention_secs,
            alert_stale_after_secs: p.alert_stale_after_secs,
            maintenance_suppresses_incidents: None,
            maintenance_suppresses_flaps: None,
        }
    }
}

/// The payload of log formats 2 to 5 (`Settings`: their `settings.changed`): variant order as
/// in [`Payload`], whose maintenance variants came after.
#[derive(Deserialize)]
enum PayloadV3<Settings> {
    CycleCompleted(CycleCompleted),
    FindingResolved(FindingResolved),
    SettingsChanged(Settings),
    InventoryObserved(InventoryObserved),
    TrackingUpserted(Tracking),
    TrackingDeleted(Tracking),
    SpanRecorded(SpanRecorded),
    AlertFired(Alert),
    AlertResolved(Alert),
    ChangeDeployed(ChangeDeployed),
    NoteAdded(NoteAdded),
    IncidentOpened(IncidentChange),
    IncidentUpdated(IncidentChange),
    IncidentClosed(IncidentChange),
}

#[derive(Deserialize)]
struct EventV3<Settings> {
    id: EventId,
    schema: u32,
    time: Timestamp,
    source: String,
    cluster: String,
    payload: PayloadV3<Settings>,
}

#[derive(Deserialize)]
struct StoredV3<Settings> {
    recorded_at: Timestamp,
    event: EventV3<Settings>,
}

fn upcast_v3<Settings: Into<SettingsChanged>>(payload: PayloadV3<Settings>) -> Payload {
    match payload {
        PayloadV3::CycleCompleted(p) => Payload::CycleCompleted(p),
        PayloadV3::FindingResolved(p) => Payload::FindingResolved(p),
        PayloadV3::SettingsChanged(p) => Payload::SettingsChanged(p.into()),
        PayloadV3::InventoryObserved(p) => Payload::InventoryObserved(p),
        PayloadV3::TrackingUpserted(p) => Payload::TrackingUpserted(p),
        PayloadV3::TrackingDeleted(p) => Payload::TrackingDeleted(p),
        PayloadV3::SpanRecorded(p) => Payload::SpanRecorded(p),
        PayloadV3::AlertFired(p) => Payload::AlertFired(p),
        PayloadV3::AlertResolved(p) => Payload::AlertResolved(p),
        PayloadV3::ChangeDeployed(p) => Payload::ChangeDeployed(p),
        PayloadV3::NoteAdded(p) => Payload::NoteAdded(p),
        PayloadV3::IncidentOpened(p) => Payload::IncidentOpened(p),
        PayloadV3::IncidentUpdated(p) => Payload::IncidentUpdated(p),
        PayloadV3::IncidentClosed(p) => Payload::IncidentClosed(p),
    }
}

/// Decodes the postcard body of a format-2 or format-3 record (after its envelope).
pub fn decode_event_v3(body: &[u8]) -> Result<StoredEvent, CodecError> {
    decode_event_with::<SettingsV3>(body)
}

/// Decodes the postcard body of a format-4 record (after its envelope).
pub fn decode_event_v4(body: &[u8]) -> Result<StoredEvent, CodecError> {
    decode_event_with::<SettingsV4>(body)
}

/// Decodes the postcard body of a format-5 record (after its envelope).
pub fn decode_event_v5(body: &[u8]) -> Result<StoredEvent, CodecError> {
    decode_event_with::<SettingsV5>(body)
}

/// Decodes a record of log formats 2 to 5, whose `settings.changed` is `Settings`.
fn decode_event_with<Settings>(body: &[u8]) -> Result<StoredEvent, CodecError>
where
    Settings: Into<SettingsChanged> + serde::de::DeserializeOwned,
{
    let stored: StoredV3<Settings> = super::decode_body(body)?;
    let e = stored.event;
    Ok(StoredEvent {
        recorded_at: stored.recorded_at,
        event: Event {
            id: e.id,
            schema: e.schema,
            time: e.time,
            source: e.source,
            cluster: e.cluster,
            payload: upcast_v3(e.payload),
        },
    })
}

/// A cluster's settings in snapshot formats 3 to 5: every field but `span_retention_secs`.
#[derive(Deserialize)]
struct ClusterSettingsV5 {
    clean_cycles_to_resolve: u32,
    enabled_categories: Option<std::collections::BTreeSet<String>>,
    flap_window_secs: u64,
    flap_threshold: u32,
    notification_min_severity: Severity,
    flap_start_percent: u32,
    flap_stop_percent: u32,
    unreachable_after_cycles: u32,
    orphan_confirm_scans: u32,
    orphan_consumer_kinds: std::collections::BTreeSet<String>,
    span_grace_secs: u64,
    incident_window_secs: u64,
    long_lived_secs: u64,
}

impl From<ClusterSettingsV5> for ClusterSettings {
    fn from(s: ClusterSettingsV5) -> Self {
        Self {
            clean_cycles_to_resolve: s.clean_cycles_to_resolve,
            enabled_categories: s.enabled_categories,
            flap_window_secs: s.flap_window_secs,
            flap_threshold: s.flap_threshold,
            notification_min_severity: s.notification_min_severity,
            flap_start_percent: s.flap_start_percent,
            flap_stop_percent: s.flap_stop_percent,
            unreachable_after_cycles: s.unreachable_after_cycles,
            orphan_confirm_scans: s.orphan_confirm_scans,
            orphan_consumer_kinds: s.orphan_consumer_kinds,
            span_grace_secs: s.span_grace_secs,
            span_retention_secs: ClusterSettings::default().span_retention_secs,
            incident_window_secs: s.incident_window_secs,
            long_lived_secs: s.long_lived_secs,
            alert_stale_after_secs: ClusterSettings::default().alert_stale_after_secs,
        }
    }
}

/// A cluster's settings in snapshot formats 6 to 12 and cluster part formats 1 and 2: every
/// field but `alert_stale_after_secs`.
#[derive(Deserialize)]
struct ClusterSettingsV12 {
    clean_cycles_to_resolve: u32,
    enabled_categories: Option<std::collections::BTreeSet<String>>,
    flap_window_secs: u64,
    flap_threshold: u32,
    notification_min_severity: Severity,
    flap_start_percent: u32,
    flap_stop_percent: u32,
    unreachable_after_cycles: u32,
    orphan_confirm_scans: u32,
    orphan_consumer_kinds: std::collections::BTreeSet<String>,
    span_grace_secs: u64,
    span_retention_secs: u64,
    incident_window_secs: u64,
    long_lived_secs: u64,
}

impl From<ClusterSettingsV12> for ClusterSettings {
    fn from(s: ClusterSettingsV12) -> Self {
        Self {
            clean_cycles_to_resolve: s.clean_cycles_to_resolve,
            enabled_categories: s.enabled_categories,
            flap_window_secs: s.flap_window_secs,
            flap_threshold: s.flap_threshold,
            notification_min_severity: s.notification_min_severity,
            flap_start_percent: s.flap_start_percent,
            flap_stop_percent: s.flap_stop_percent,
            unreachable_after_cycles: s.unreachable_after_cycles,
            orphan_confirm_scans: s.orphan_confirm_scans,
            orphan_consumer_kinds: s.orphan_consumer_kinds,
            span_grace_secs: s.span_grace_secs,
            span_retention_secs: s.span_retention_secs,
            incident_window_secs: s.incident_window_secs,
            long_lived_secs: s.long_lived_secs,
            alert_stale_after_secs: ClusterSettings::default().alert_stale_after_secs,
        }
    }
}

/// [`ClusterSnapshot`] of snapshot formats 3 to 5.
#[derive(Deserialize)]
struct ClusterSnapshotV5 {
    cluster: String,
    settings: ClusterSettingsV5,
    clock: Option<Timestamp>,
    cycles: u64,
    unstable_keys: Vec<Cow<'static, str>>,
    categories: Vec<CategorySnapshot<'static>>,
    drifts: Vec<DriftRecord>,
    findings: Vec<FindingSnapshotV6>,
}

/// [`SpansSnapshot`] of snapshot formats 3 to 5.
#[derive(Deserialize)]
struct SpansSnapshotV5 {
    traces: Vec<TraceSnapshot>,
    span_orphans: Vec<OrphanView>,
}

/// [`ClusterOrphansSnapshot`] of snapshot formats 3 to 5.
#[derive(Deserialize)]
struct ClusterOrphansSnapshotV5 {
    cluster: String,
    clock: Option<Timestamp>,
    graph: GraphSnapshot,
    spans: SpansSnapshotV5,
}

/// [`OrphansSnapshot`] of snapshot formats 3 to 5.
#[derive(Deserialize)]
struct OrphansSnapshotV5 {
    clusters: Vec<ClusterOrphansSnapshotV5>,
}

type SnapshotRecordV5 = SnapshotRecord<
    ProjectionsSnapshot<
        FindingsSnapshot<Vec<ClusterSnapshotV5>>,
        OrphansSnapshotV5,
        IncidentsSnapshot<'static>,
    >,
>;

/// Decodes the postcard body of a snapshot of formats 3 to 5 (after its envelope) into today's
/// layout: the settings get the default span retention, the span forests no late spans.
pub fn decode_snapshot_v5(body: &[u8]) -> Result<SnapshotRecord, CodecError> {
    let old: SnapshotRecordV5 = super::decode_body(body)?;
    let findings = FindingsSnapshot {
        clusters: old
            .projections
            .findings
            .clusters
            .into_iter()
            .map(|c| ClusterSnapshot {
                cluster: Cow::Owned(c.cluster),
                settings: Cow::Owned(c.settings.into()),
                clock: c.clock,
                cycles: c.cycles,
                unstable_keys: c.unstable_keys,
                categories: c.categories,
                drifts: Cow::Owned(c.drifts),
                findings: c.findings.into_iter().map(Into::into).collect(),
                alert_runs: 0,
                maintenance: None,
            })
            .collect(),
    };
    let orphans = OrphansSnapshot {
        clusters: old
            .projections
            .orphans
            .clusters
            .into_iter()
            .map(|c| ClusterOrphansSnapshot {
                cluster: c.cluster,
                clock: c.clock,
                graph: c.graph,
                spans: SpansSnapshot {
                    traces: c.spans.traces,
                    span_orphans: c.spans.span_orphans,
                    late_spans: 0,
                },
            })
            .collect(),
    };
    Ok(SnapshotRecord {
        seq: old.seq,
        max_time: old.max_time,
        projections: ProjectionsSnapshot {
            findings,
            orphans,
            incidents: old.projections.incidents,
        },
    })
}

/// [`FindingSnapshot`] of snapshot formats 3 to 6: no `alert`.
#[derive(Deserialize)]
struct FindingSnapshotV6 {
    check_key: Cow<'static, str>,
    category: Cow<'static, str>,
    severity: Severity,
    title: Cow<'static, str>,
    detail: Option<Cow<'static, str>>,
    resource: Option<Cow<'static, ResourceRef>>,
    active: bool,
    clean_cycles: u32,
    last_seen_at: Timestamp,
    occurrences: Vec<Occurrence>,
    flap: FlapStatus,
    open_run: u64,
    flap_episodes: Vec<FlapEpisode>,
}

impl From<FindingSnapshotV6> for FindingSnapshot<'static> {
    fn from(f: FindingSnapshotV6) -> Self {
        Self {
            check_key: f.check_key,
            category: f.category,
            severity: f.severity,
            title: f.title,
            detail: f.detail,
            resource: f.resource,
            active: f.active,
            clean_cycles: f.clean_cycles,
            last_seen_at: f.last_seen_at,
            occurrences: Cow::Owned(f.occurrences),
            flap: f.flap,
            open_run: f.open_run,
            flap_episodes: Cow::Owned(f.flap_episodes),
            alert: None,
        }
    }
}

/// [`LiveFindingSnapshot`] of snapshot format 7 and cluster part format 1: no `alert`.
#[derive(Deserialize)]
struct LiveFindingSnapshotV7 {
    check_key: Cow<'static, str>,
    category: Cow<'static, str>,
    severity: Severity,
    title: Cow<'static, str>,
    detail: Option<Cow<'static, str>>,
    resource: Option<Cow<'static, ResourceRef>>,
    active: bool,
    clean_cycles: u32,
    last_seen_at: Timestamp,
    current: Occurrence,
    occurrence_count: u64,
    flap: FlapStatus,
    open_run: u64,
    open_flap_episodes: Vec<(u64, FlapEpisode)>,
    flap_episode_count: u64,
    first_flap_started: [Option<u64>; 2],
    auto_resolved_at: Vec<Timestamp>,
}

impl From<LiveFindingSnapshotV7> for LiveFindingSnapshot<'static> {
    fn from(f: LiveFindingSnapshotV7) -> Self {
        Self {
            check_key: f.check_key,
            category: f.category,
            severity: f.severity,
            title: f.title,
            detail: f.detail,
            resource: f.resource,
            active: f.active,
            clean_cycles: f.clean_cycles,
            last_seen_at: f.last_seen_at,
            current: Cow::Owned(f.current),
            occurrence_count: f.occurrence_count,
            flap: f.flap,
            open_run: f.open_run,
            open_flap_episodes: Cow::Owned(f.open_flap_episodes),
            flap_episode_count: f.flap_episode_count,
            first_flap_started: f.first_flap_started,
            auto_resolved_at: Cow::Owned(f.auto_resolved_at),
            alert: None,
        }
    }
}

/// [`ClusterSnapshot`] of snapshot formats 6 to 9 and cluster part format 1: no alert runs.
#[derive(Deserialize)]
struct ClusterSnapshotV9<Finding> {
    cluster: Cow<'static, str>,
    settings: ClusterSettingsV12,
    clock: Option<Timestamp>,
    cycles: u64,
    unstable_keys: Vec<Cow<'static, str>>,
    categories: Vec<CategorySnapshot<'static>>,
    drifts: Cow<'static, [DriftRecord]>,
    findings: Vec<Finding>,
}

/// A cluster's snapshot in today's layout: its findings converted, no alert run (alerts were
/// no findings).
fn cluster_of<Old: Into<New>, New>(
    c: ClusterSnapshotV9<Old>,
) -> ClusterSnapshot<'static, Vec<New>> {
    ClusterSnapshot {
        cluster: c.cluster,
        settings: Cow::Owned(c.settings.into()),
        clock: c.clock,
        cycles: c.cycles,
        unstable_keys: c.unstable_keys,
        categories: c.categories,
        drifts: c.drifts,
        findings: c.findings.into_iter().map(Into::into).collect(),
        alert_runs: 0,
        maintenance: None,
    }
}

/// [`ClusterSnapshot`] of snapshot formats 10 to 12 and cluster part format 2: settings
/// without `alert_stale_after_secs`.
#[derive(Deserialize)]
struct ClusterSnapshotV12<Finding> {
    cluster: Cow<'static, str>,
    settings: ClusterSettingsV12,
    clock: Option<Timestamp>,
    cycles: u64,
    unstable_keys: Vec<Cow<'static, str>>,
    categories: Vec<CategorySnapshot<'static>>,
    drifts: Cow<'static, [DriftRecord]>,
    findings: Vec<Finding>,
    alert_runs: u64,
}

impl<Finding> From<ClusterSnapshotV12<Finding>> for ClusterSnapshot<'static, Vec<Finding>> {
    fn from(c: ClusterSnapshotV12<Finding>) -> Self {
        ClusterSnapshot {
            cluster: c.cluster,
            settings: Cow::Owned(c.settings.into()),
            clock: c.clock,
            cycles: c.cycles,
            unstable_keys: c.unstable_keys,
            categories: c.categories,
            drifts: c.drifts,
            findings: c.findings,
            alert_runs: c.alert_runs,
            maintenance: None,
        }
    }
}

/// [`ClusterSnapshot`] of snapshot formats 13 to 15 and cluster part format 3: no
/// `maintenance` (no window was ever scheduled).
#[derive(Deserialize)]
struct ClusterSnapshotV15<Finding> {
    cluster: Cow<'static, str>,
    settings: Cow<'static, ClusterSettings>,
    clock: Option<Timestamp>,
    cycles: u64,
    unstable_keys: Vec<Cow<'static, str>>,
    categories: Vec<CategorySnapshot<'static>>,
    drifts: Cow<'static, [DriftRecord]>,
    findings: Vec<Finding>,
    alert_runs: u64,
}

impl<Finding> From<ClusterSnapshotV15<Finding>> for ClusterSnapshot<'static, Vec<Finding>> {
    fn from(c: ClusterSnapshotV15<Finding>) -> Self {
        ClusterSnapshot {
            cluster: c.cluster,
            settings: c.settings,
            clock: c.clock,
            cycles: c.cycles,
            unstable_keys: c.unstable_keys,
            categories: c.categories,
            drifts: c.drifts,
            findings: c.findings,
            alert_runs: c.alert_runs,
            maintenance: None,
        }
    }
}

/// A snapshot record of formats 14 and 15 in today's layout.
fn record_of_v15<Finding>(
    old: RecordOf<ClusterSnapshotV15<Finding>>,
) -> RecordOf<ClusterSnapshot<'static, Vec<Finding>>> {
    let p = old.projections;
    SnapshotRecord {
        seq: old.seq,
        max_time: old.max_time,
        projections: ProjectionsSnapshot {
            findings: FindingsSnapshot {
                clusters: p.findings.clusters.into_iter().map(Into::into).collect(),
            },
            orphans: p.orphans,
            incidents: p.incidents,
        },
    }
}

/// Decodes the postcard body of a snapshot of format 14 (after its envelope) into today's
/// layout (format 17): no maintenance.
pub fn decode_snapshot_v14(body: &[u8]) -> Result<SnapshotRecord, CodecError> {
    Ok(record_of_v15::<FindingSnapshot<'static>>(
        super::decode_body(body)?,
    ))
}

/// Decodes the postcard body of a snapshot of format 15 (after its envelope) into today's
/// layout (format 18): no maintenance.
pub fn decode_snapshot_v15(
    body: &[u8],
) -> Result<SnapshotRecord<LiveProjectionsSnapshot>, CodecError> {
    Ok(record_of_v15::<LiveFindingSnapshot<'static>>(
        super::decode_body(body)?,
    ))
}

/// Decodes the postcard body of a cluster part of format 3 (after its envelope) into today's
/// layout (format 4): no maintenance.
pub fn decode_cluster_part_v3(body: &[u8]) -> Result<ClusterPart, CodecError> {
    let old: ClusterPart<ClusterSnapshotV15<LiveFindingSnapshot<'static>>> =
        super::decode_body(body)?;
    Ok(ClusterPart {
        findings: old.findings.into(),
        orphans: old.orphans,
    })
}

/// A snapshot record of formats 11 and 12 in today's layout.
fn record_of_v12<Finding>(
    old: RecordOf<ClusterSnapshotV12<Finding>>,
) -> RecordOf<ClusterSnapshot<'static, Vec<Finding>>> {
    let p = old.projections;
    SnapshotRecord {
        seq: old.seq,
        max_time: old.max_time,
        projections: ProjectionsSnapshot {
            findings: FindingsSnapshot {
                clusters: p.findings.clusters.into_iter().map(Into::into).collect(),
            },
            orphans: p.orphans,
            incidents: p.incidents,
        },
    }
}

/// Decodes the postcard body of a snapshot of format 11 (after its envelope) into today's
/// layout (format 17): the default `alert_stale_after_secs`.
pub fn decode_snapshot_v11(body: &[u8]) -> Result<SnapshotRecord, CodecError> {
    Ok(record_of_v12::<FindingSnapshot<'static>>(
        super::decode_body(body)?,
    ))
}

/// Decodes the postcard body of a snapshot of format 12 (after its envelope) into today's
/// layout (format 18): the default `alert_stale_after_secs`.
pub fn decode_snapshot_v12(
    body: &[u8],
) -> Result<SnapshotRecord<LiveProjectionsSnapshot>, CodecError> {
    Ok(record_of_v12::<LiveFindingSnapshot<'static>>(
        super::decode_body(body)?,
    ))
}

/// Decodes the postcard body of a cluster part of format 2 (after its envelope) into today's
/// layout (format 4): the default `alert_stale_after_secs`.
pub fn decode_cluster_part_v2(body: &[u8]) -> Result<ClusterPart, CodecError> {
    let old: ClusterPart<ClusterSnapshotV12<LiveFindingSnapshot<'static>>> =
        super::decode_body(body)?;
    Ok(ClusterPart {
        findings: old.findings.into(),
        orphans: old.orphans,
    })
}

/// A snapshot record whose clusters are `Cluster`s.
type RecordOf<Cluster> = SnapshotRecord<
    ProjectionsSnapshot<
        FindingsSnapshot<Vec<Cluster>>,
        OrphansSnapshot,
        IncidentsSnapshot<'static>,
    >,
>;

/// A snapshot's record with its clusters' findings in today's layout.
fn record_of<Old: Into<New>, New>(
    old: RecordOf<ClusterSnapshotV9<Old>>,
) -> RecordOf<ClusterSnapshot<'static, Vec<New>>> {
    let p = old.projections;
    SnapshotRecord {
        seq: old.seq,
        max_time: old.max_time,
        projections: ProjectionsSnapshot {
            findings: FindingsSnapshot {
                clusters: p.findings.clusters.into_iter().map(cluster_of).collect(),
            },
            orphans: p.orphans,
            incidents: p.incidents,
        },
    }
}

/// Decodes the postcard body of a snapshot of format 6 (after its envelope) into today's
/// layout (format 11): no finding is an alert.
pub fn decode_snapshot_v6(body: &[u8]) -> Result<SnapshotRecord, CodecError> {
    Ok(record_of::<FindingSnapshotV6, FindingSnapshot<'static>>(
        super::decode_body(body)?,
    ))
}

/// Decodes the postcard body of a snapshot of format 7 (after its envelope) into today's
/// layout (format 12): no finding is an alert.
pub fn decode_snapshot_v7(
    body: &[u8],
) -> Result<SnapshotRecord<LiveProjectionsSnapshot>, CodecError> {
    Ok(record_of::<
        LiveFindingSnapshotV7,
        LiveFindingSnapshot<'static>,
    >(super::decode_body(body)?))
}

/// Decodes the postcard body of a cluster part of format 1 (after its envelope) into today's
/// layout (format 2): no finding is an alert.
pub fn decode_cluster_part_v1(body: &[u8]) -> Result<ClusterPart, CodecError> {
    let old: ClusterPart<ClusterSnapshotV9<LiveFindingSnapshotV7>> = super::decode_body(body)?;
    Ok(ClusterPart {
        findings: cluster_of(old.findings),
        orphans: old.orphans,
    })
}
