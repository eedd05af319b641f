//! Test support: event builders, an independent reference fold, a deliberately wrong fold,
//! random log generators, and a property runner that prints the seed of every failure.
//! One file: the reference fold and the generators must change together with the rules.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseResult, TestRunner};
use tidemark_core::event::{
    Alert, CURRENT_SCHEMA, ChangeDeployed, ChangeKind, CycleCompleted, FindingObservation,
    FindingResolved, IncidentChange, InventoryObserved, InventoryResource, ManualResolutionKind,
    NoteAdded, NoteKind, ResourceRef, SettingsChanged, SpanRecorded, SpanStatus, Tracking,
};
use tidemark_core::findings::{AlertFacts, FindingsProjection};
use tidemark_core::{
    Event, EventId, FindingState, FindingView, LogFold, Occurrence, Payload, ResolutionKind,
    Severity, Timestamp,
};

// ---------------------------------------------------------------------------------------------
// Builders

/// Seconds after 2026-03-02T00:00:00Z.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_secs(1_772_409_600 + secs)
}

pub fn event(id: &str, cluster: &str, secs: i64, payload: Payload) -> Event {
    Event {
        id: EventId::from(id),
        schema: CURRENT_SCHEMA,
        time: at(secs),
        source: "test-probe".to_owned(),
        cluster: cluster.to_owned(),
        payload,
    }
}

pub fn obs(check_key: &str, category: &str) -> FindingObservation {
    FindingObservation {
        check_key: check_key.to_owned(),
        category: category.to_owned(),
        severity: Severity::Error,
        title: format!("{check_key} is broken"),
        detail: None,
        resource: None,
        informational: false,
    }
}

pub fn cycle(
    id: &str,
    cluster: &str,
    secs: i64,
    categories: &[&str],
    findings: Vec<FindingObservation>,
) -> Event {
    event(
        id,
        cluster,
        secs,
        Payload::CycleCompleted(CycleCompleted {
            cycle: format!("cycle-{id}"),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            findings,
        }),
    )
}

pub fn settings(id: &str, cluster: &str, secs: i64, change: SettingsChanged) -> Event {
    event(id, cluster, secs, Payload::SettingsChanged(change))
}

pub fn threshold(id: &str, cluster: &str, secs: i64, t: u32) -> Event {
    settings(
        id,
        cluster,
        secs,
        SettingsChanged {
            clean_cycles_to_resolve: Some(t),
            ..Default::default()
        },
    )
}

pub fn manual_resolve(id: &str, cluster: &str, secs: i64, check_key: &str) -> Event {
    event(
        id,
        cluster,
        secs,
        Payload::FindingResolved(FindingResolved {
            check_key: check_key.to_owned(),
            kind: ManualResolutionKind::Manual,
            by: Some("oncall".into()),
            reason: None,
            recipe: None,
        }),
    )
}

pub fn note(id: &str, cluster: &str, secs: i64) -> Event {
    event(
        id,
        cluster,
        secs,
        Payload::NoteAdded(NoteAdded {
            incident: None,
            author: "operator".into(),
            kind: NoteKind::Observation,
            text: "looked at it".into(),
            links: vec![],
            check_keys: vec![],
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Folds under test

/// Anything that folds a log into findings the way users see them.
pub trait Fold {
    fn apply(&mut self, event: &Event);
    fn views(&self) -> Vec<FindingView>;
    fn view(&self, cluster: &str, check_key: &str) -> Option<FindingView> {
        self.views()
            .into_iter()
            .find(|v| v.cluster == cluster && v.check_key == check_key)
    }
}

impl Fold for LogFold {
    fn apply(&mut self, event: &Event) {
        LogFold::apply(self, event);
    }
    fn views(&self) -> Vec<FindingView> {
        self.findings().views()
    }
    fn view(&self, cluster: &str, check_key: &str) -> Option<FindingView> {
        self.findings().view(cluster, check_key)
    }
}

/// The projection alone, with positions given by the caller.
pub fn fold_with_positions<'a>(
    events: impl IntoIterator<Item = (u64, &'a Event)>,
) -> FindingsProjection {
    let mut projection = FindingsProjection::new();
    for (seq, event) in events {
        projection.apply(seq, event);
    }
    projection
}

#[derive(Clone, Debug)]
struct RefFinding {
    category: String,
    severity: Severity,
    title: String,
    active: bool,
    clean_cycles: u32,
    last_seen_at: Timestamp,
    history: Vec<Occurrence>,
    /// Raw state (present and active) in every run of its category since it was first raw
    /// present.
    raw: Vec<bool>,
    flapping_state_change: bool,
    /// An alert's facts (ADR 0007); `None` for a probe's finding.
    alert: Option<AlertFacts>,
    /// An alert's state as the alerting system last said: firing (its raw state in every run
    /// of the cluster's alerts).
    source_firing: bool,
}

impl RefFinding {
    /// The state change detector's hysteresis on its raw states, after a run was recorded.
    fn judge_state_change(&mut self, start: u32, stop: u32) {
        let tenths = reference_state_change_tenths(&self.raw);
        if !self.flapping_state_change && tenths >= start {
            self.flapping_state_change = true;
        } else if self.flapping_state_change && tenths < stop {
            self.flapping_state_change = false;
        }
    }
}

/// Weighted percent state change of the last 20 changes of `raw`, in tenths of a percent,
/// straight from the Icinga formula: 100 · Σ (0.8 + 0.02 · i) / 20, i = 0 for the oldest.
fn reference_state_change_tenths(raw: &[bool]) -> u32 {
    let changes: Vec<bool> = raw.windows(2).map(|w| w[0] != w[1]).collect();
    let last20 = &changes[changes.len().saturating_sub(20)..];
    // The window always has 20 slots; missing old runs count as no change.
    let offset = 20 - last20.len();
    last20
        .iter()
        .enumerate()
        .filter(|(_, changed)| **changed)
        .map(|(i, _)| 40 + (offset + i) as u32) // (0.8 + 0.02 i) * 100 / 20 * 10 = 40 + i
        .sum()
}

#[derive(Clone, Debug)]
struct RefCluster {
    clean_cycles_to_resolve: u32,
    enabled_categories: Option<BTreeSet<String>>,
    flap_window_secs: u64,
    flap_threshold: u32,
    flap_start_percent: u32,
    flap_stop_percent: u32,
    alert_stale_after_secs: u64,
    now: Option<Timestamp>,
    findings: BTreeMap<String, RefFinding>,
}

impl RefCluster {
    fn judge_state_change(&mut self) {
        let start = self.flap_start_percent * 10;
        let stop = self.flap_stop_percent.min(self.flap_start_percent) * 10;
        for f in self.findings.values_mut() {
            let tenths = reference_state_change_tenths(&f.raw);
            if !f.flapping_state_change && !f.raw.is_empty() && tenths >= start {
                f.flapping_state_change = true;
            } else if f.flapping_state_change && tenths < stop {
                f.flapping_state_change = false;
            }
        }
    }
}

impl Default for RefCluster {
    fn default() -> Self {
        Self {
            clean_cycles_to_resolve: 2,
            enabled_categories: None,
            flap_window_secs: 86_400,
            flap_threshold: 2,
            flap_start_percent: 30,
            flap_stop_percent: 25,
            alert_stale_after_secs: 28_800,
            now: None,
            findings: BTreeMap::new(),
        }
    }
}

/// A naive fold written straight from `lifecycle.md`, sharing no code with the real one but the
/// event types. With `increment_first` it has the bug of section 7 of the catalogue.
#[derive(Clone, Debug, Default)]
pub struct ReferenceFold {
    pub increment_first: bool,
    seen: BTreeSet<String>,
    seq: u64,
    clusters: BTreeMap<String, RefCluster>,
}

impl ReferenceFold {
    pub fn correct() -> Self {
        Self::default()
    }

    /// Increments before resolving: the "original sin" of the catalogue, section 7.
    pub fn increment_first() -> Self {
        Self {
            increment_first: true,
            ..Self::default()
        }
    }

    fn close(f: &mut RefFinding, t: Timestamp, seq: u64, kind: ResolutionKind) {
        f.active = false;
        f.clean_cycles = 0;
        let last = f.history.last_mut().unwrap();
        last.resolved_at = Some(t);
        last.resolved_seq = Some(seq);
        last.resolution_kind = Some(kind);
    }
}

impl Fold for ReferenceFold {
    fn apply(&mut self, event: &Event) {
        if !self.seen.insert(event.id.0.clone()) {
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        let c = self.clusters.entry(event.cluster.clone()).or_default();
        c.now = Some(match c.now {
            Some(now) if now > event.time => now,
            _ => event.time,
        });
        // A late event (earlier than the cluster's clock) is applied at the clock: times in the
        // state never go back (lifecycle.md, "Late events").
        let t = c.now.expect("set just above");
        match &event.payload {
            Payload::SettingsChanged(s) => {
                if let Some(v) = s.clean_cycles_to_resolve {
                    c.clean_cycles_to_resolve = v;
                }
                if let Some(v) = &s.enabled_categories {
                    c.enabled_categories = v.as_ref().map(|l| l.iter().cloned().collect());
                }
                if let Some(v) = s.flap_window_secs {
                    c.flap_window_secs = v;
                }
                if let Some(v) = s.alert_stale_after_secs {
                    c.alert_stale_after_secs = v;
                }
                if let Some(v) = s.flap_threshold {
                    c.flap_threshold = v;
                }
                if let Some(v) = s.flap_start_percent {
                    c.flap_start_percent = v;
                }
                if let Some(v) = s.flap_stop_percent {
                    c.flap_stop_percent = v;
                }
                c.judge_state_change();
            }
            Payload::FindingResolved(r) => {
                if let Some(f) = c.findings.get_mut(&r.check_key)
                    && f.active
                {
                    let kind = match r.kind {
                        ManualResolutionKind::Manual => ResolutionKind::Manual,
                        ManualResolutionKind::Recipe => ResolutionKind::Recipe,
                    };
                    Self::close(f, t, seq, kind);
                }
            }
            Payload::CycleCompleted(cycle) => {
                // 1. ran = listed ∪ findings' categories, ∩ enabled.
                let mut ran: BTreeSet<String> = cycle.categories.iter().cloned().collect();
                ran.extend(cycle.findings.iter().map(|f| f.category.clone()));
                if let Some(enabled) = &c.enabled_categories {
                    ran = ran.intersection(enabled).cloned().collect();
                }
                // 2. present: last entry wins.
                let mut present: BTreeMap<String, &FindingObservation> = BTreeMap::new();
                for f in &cycle.findings {
                    if ran.contains(&f.category) {
                        present.insert(f.check_key.clone(), f);
                    }
                }
                // 3. upsert.
                for (key, o) in &present {
                    let f = c.findings.entry(key.clone()).or_insert_with(|| RefFinding {
                        category: o.category.clone(),
                        severity: o.severity,
                        title: o.title.clone(),
                        active: false,
                        clean_cycles: 0,
                        last_seen_at: t,
                        history: vec![],
                        raw: vec![],
                        flapping_state_change: false,
                        alert: None,
                        source_firing: false,
                    });
                    f.category = o.category.clone();
                    f.severity = o.severity;
                    f.title = o.title.clone();
                    f.last_seen_at = t;
                    f.clean_cycles = 0;
                    if !f.active {
                        f.active = true;
                        f.history.push(Occurrence {
                            opened_at: t,
                            opened_seq: seq,
                            resolved_at: None,
                            resolved_seq: None,
                            resolution_kind: None,
                        });
                        if o.informational {
                            Self::close(f, t, seq, ResolutionKind::Informational);
                        }
                    }
                }
                let threshold = c.clean_cycles_to_resolve;
                let swept: Vec<String> = c
                    .findings
                    .iter()
                    .filter(|(k, f)| {
                        f.active
                            && f.alert.is_none()
                            && ran.contains(&f.category)
                            && !present.contains_key(*k)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                if self.increment_first {
                    for k in &swept {
                        c.findings.get_mut(k).unwrap().clean_cycles += 1;
                    }
                    for k in &swept {
                        let f = c.findings.get_mut(k).unwrap();
                        if f.clean_cycles >= threshold {
                            Self::close(f, t, seq, ResolutionKind::Auto);
                        }
                    }
                } else {
                    // 4. resolve first ...
                    let mut resolved = BTreeSet::new();
                    for k in &swept {
                        let f = c.findings.get_mut(k).unwrap();
                        if f.clean_cycles >= threshold {
                            Self::close(f, t, seq, ResolutionKind::Auto);
                            resolved.insert(k.clone());
                        }
                    }
                    // 5. ... then increment the rest.
                    for k in swept.iter().filter(|k| !resolved.contains(*k)) {
                        c.findings.get_mut(k).unwrap().clean_cycles += 1;
                    }
                }
                // The raw state of every finding whose category ran, judged run by run.
                let start = c.flap_start_percent * 10;
                let stop = c.flap_stop_percent.min(c.flap_start_percent) * 10;
                for (key, f) in c.findings.iter_mut() {
                    if !ran.contains(&f.category) || f.alert.is_some() {
                        continue;
                    }
                    let raw_present = f.active && present.contains_key(key);
                    if f.raw.is_empty() && !raw_present {
                        continue;
                    }
                    f.raw.push(raw_present);
                    f.judge_state_change(start, stop);
                }
            }
            Payload::AlertFired(a) | Payload::AlertResolved(a) => {
                let fired = matches!(event.payload, Payload::AlertFired(_));
                let key = reference_alert_key(&a.name, &a.fingerprint);
                let title = a
                    .annotations
                    .get("summary")
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or(&a.name)
                    .clone();
                if fired && !c.findings.contains_key(&key) {
                    c.findings.insert(
                        key.clone(),
                        RefFinding {
                            category: "alert".to_owned(),
                            severity: a.severity,
                            title: title.clone(),
                            active: false,
                            clean_cycles: 0,
                            last_seen_at: t,
                            history: vec![],
                            raw: vec![],
                            flapping_state_change: false,
                            alert: Some(AlertFacts {
                                fingerprint: a.fingerprint.clone(),
                                name: a.name.clone(),
                                labels: a.labels.clone(),
                                annotations: a.annotations.clone(),
                                starts_at: a.starts_at,
                                last_notified_at: t,
                                notifications: 0,
                                late_notifications: 0,
                            }),
                            source_firing: false,
                        },
                    );
                }
                // A resolve of an alert never seen firing changes no alert.
                if let Some(f) = c.findings.get_mut(&key) {
                    let first = f.history.is_empty();
                    let facts = f.alert.as_mut().unwrap();
                    if !first && a.starts_at < facts.starts_at {
                        facts.late_notifications += 1;
                    } else {
                        let later = a.starts_at > facts.starts_at;
                        facts.starts_at = a.starts_at;
                        facts.last_notified_at = t;
                        facts.notifications += 1;
                        if fired || f.active {
                            facts.labels = a.labels.clone();
                            facts.annotations = a.annotations.clone();
                            f.severity = a.severity;
                            f.title = title;
                        }
                        if fired {
                            f.last_seen_at = t;
                            if first || later {
                                if f.active {
                                    Self::close(f, t, seq, ResolutionKind::Source);
                                }
                                f.active = true;
                                f.history.push(Occurrence {
                                    opened_at: t,
                                    opened_seq: seq,
                                    resolved_at: None,
                                    resolved_seq: None,
                                    resolution_kind: None,
                                });
                            }
                        } else if f.active {
                            Self::close(f, t, seq, ResolutionKind::Source);
                        }
                        f.source_firing = fired;
                    }
                }
                // Every notification is a run of the cluster's alerts: each alert's state in it
                // is what the alerting system last said of it.
                let start = c.flap_start_percent * 10;
                let stop = c.flap_stop_percent.min(c.flap_start_percent) * 10;
                for f in c.findings.values_mut().filter(|f| f.alert.is_some()) {
                    f.raw.push(f.source_firing);
                    f.judge_state_change(start, stop);
                }
            }
            _ => {}
        }
    }

    fn views(&self) -> Vec<FindingView> {
        let mut out = vec![];
        for (cluster, c) in &self.clusters {
            for (key, f) in &c.findings {
                let last = f.history.last().unwrap();
                let flapping = match c.now {
                    None => false,
                    Some(now) => {
                        let from = now.plus_secs(-(c.flap_window_secs as i64));
                        let n = f
                            .history
                            .iter()
                            .filter(|o| {
                                matches!(
                                    o.resolution_kind,
                                    Some(ResolutionKind::Auto | ResolutionKind::Source)
                                )
                            })
                            .filter(|o| o.resolved_at.is_some_and(|r| r > from && r <= now))
                            .count() as u64;
                        n > u64::from(c.flap_threshold)
                    }
                };
                out.push(FindingView {
                    cluster: cluster.clone(),
                    check_key: key.clone(),
                    category: f.category.clone(),
                    severity: f.severity,
                    title: f.title.clone(),
                    state: if f.active {
                        FindingState::Active
                    } else {
                        FindingState::Resolved
                    },
                    clean_cycles: f.active.then_some(f.clean_cycles),
                    opened_at: last.opened_at,
                    last_seen_at: f.last_seen_at,
                    resolved_at: last.resolved_at,
                    resolution_kind: last.resolution_kind,
                    occurrences: f.history.len() as u64,
                    flapping,
                    flapping_state_change: f.flapping_state_change,
                    state_change_percent: f64::from(reference_state_change_tenths(&f.raw)) / 10.0,
                    alert: f.alert.clone(),
                    // The reference folds logs without maintenance windows.
                    in_maintenance: None,
                    // Stale: firing, and the cluster's clock is past the last notification by
                    // more than the setting.
                    stale: match (&f.alert, c.now) {
                        (Some(facts), Some(now)) if f.active => {
                            let since = facts
                                .last_notified_at
                                .plus_secs(c.alert_stale_after_secs as i64);
                            (now > since).then(|| tidemark_core::findings::AlertStaleness {
                                stale_since: since,
                                stale_for_secs: ((now.unix_nanos() - since.unix_nanos())
                                    / 1_000_000_000)
                                    as u64,
                                reference: now,
                            })
                        }
                        _ => None,
                    },
                    history: f.history.clone(),
                });
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

pub const CLUSTERS: &[&str] = &["pw-prod", "pw-staging", "edge"];
pub const CATEGORIES: &[&str] = &["pods", "infra_drift", "dns", "admission_bypass"];
pub const KEYS: &[&str] = &[
    "pod:crashloop:dnd/dnd-backend",
    "pod:oom:media/plex",
    "proxied:domain:42",
    "node:notready:n3",
    "pvc:no_consumer:dnd/data",
    "job:stale:backup",
    // The first key's workload under its pod's generated name (an unstable key): a cycle that
    // stops seeing one as it opens the other in `pods` makes a drift suspect.
    "pod:crashloop:dnd/dnd-backend-7f9d4b8c6-q8z2m",
];

/// The key of [`KEYS`] that is the first key's workload under another pod name.
const DRIFTING_KEY: usize = 6;

/// The check key of an alert, written from ADR 0007 apart from the fold's: `alert:`, the name
/// and the fingerprint, `%` and `:` percent-encoded in each.
pub fn reference_alert_key(name: &str, fingerprint: &str) -> String {
    let encode = |s: &str| s.replace('%', "%25").replace(':', "%3A");
    format!("alert:{}:{}", encode(name), encode(fingerprint))
}

/// An alert of [`ALERTS`]: name, fingerprint, labels.
pub type TestAlert = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Alerts of the random logs: name, fingerprint, labels (a `:` and a `%` in the second's
/// identity, to try the key's encoding; the third names no resource).
pub const ALERTS: &[TestAlert] = &[
    (
        "KubePodCrashLooping",
        "5b1531d93a0a490e",
        &[("namespace", "dnd"), ("pod", "dnd-backend-7f9c")],
    ),
    ("Node:Down", "a%3Ab", &[("instance", "n3:9100")]),
    ("HighLatency", "c0ffee", &[("team", "web")]),
];

/// An `alert.fired` (or, `fired` false, `alert.resolved`) of alert `alert` of [`ALERTS`],
/// started at `starts` seconds.
#[allow(clippy::too_many_arguments)]
pub fn alert_event(
    id: &str,
    cluster: &str,
    secs: i64,
    alert: usize,
    fired: bool,
    starts: i64,
    severity: Severity,
    summary: Option<&str>,
) -> Event {
    let (name, fingerprint, labels) = ALERTS[alert];
    let data = Alert {
        fingerprint: fingerprint.to_owned(),
        name: name.to_owned(),
        severity,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        annotations: summary
            .map(|s| ("summary".to_owned(), s.to_owned()))
            .into_iter()
            .collect(),
        starts_at: at(starts),
        ends_at: (!fired).then(|| at(secs)),
    };
    event(
        id,
        cluster,
        secs,
        if fired {
            Payload::AlertFired(data)
        } else {
            Payload::AlertResolved(data)
        },
    )
}

/// kind, namespace, name, live uid.
type KeyResource = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
);
/// uid, kind, namespace, name, owners, uses.
type LiveResource = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The resource each key is about, if any.
pub const KEY_RESOURCES: &[Option<KeyResource>] = &[
    Some((
        "Pod",
        Some("dnd"),
        "dnd-backend-7f9d4b8c6-xk2p9",
        "u-pod-dnd",
    )),
    Some(("Pod", Some("media"), "plex-5d8f7c9b6-abc12", "u-pod-plex")),
    None,
    Some(("Node", None, "n3", "u-node-n3")),
    Some(("PersistentVolumeClaim", Some("dnd"), "data", "u-pvc-dnd")),
    Some(("Job", Some("ops"), "backup", "u-job-backup")),
    Some((
        "Pod",
        Some("dnd"),
        "dnd-backend-7f9d4b8c6-q8z2m",
        "u-pod-dnd-2",
    )),
];

/// The live resource universe of inventory scans.
pub const INVENTORY: &[LiveResource] = &[
    (
        "u-dep-dnd",
        "Deployment",
        Some("dnd"),
        "dnd-backend",
        &[],
        &[],
    ),
    (
        "u-rs-dnd",
        "ReplicaSet",
        Some("dnd"),
        "dnd-backend-7f9d4b8c6",
        &["u-dep-dnd"],
        &[],
    ),
    (
        "u-pod-dnd",
        "Pod",
        Some("dnd"),
        "dnd-backend-7f9d4b8c6-xk2p9",
        &["u-rs-dnd"],
        &["u-pvc-dnd"],
    ),
    (
        "u-pvc-dnd",
        "PersistentVolumeClaim",
        Some("dnd"),
        "data",
        &[],
        &[],
    ),
    (
        "u-pod-plex",
        "Pod",
        Some("media"),
        "plex-5d8f7c9b6-abc12",
        &["u-rs-plex"],
        &[],
    ),
    ("u-node-n3", "Node", None, "n3", &[], &[]),
];

/// Deployable services.
pub const SERVICES: &[&str] = &["dnd-backend", "plex", "backup"];

fn key_resource(key_index: usize) -> Option<ResourceRef> {
    KEY_RESOURCES[key_index].map(|(kind, namespace, name, uid)| ResourceRef {
        kind: kind.to_owned(),
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
        uid: Some(uid.to_owned()),
    })
}

/// The category a key usually comes from.
pub fn home_category(key_index: usize) -> &'static str {
    if key_index == DRIFTING_KEY {
        return home_category(0);
    }
    CATEGORIES[key_index % CATEGORIES.len()]
}

#[derive(Clone, Debug)]
pub enum Step {
    Cycle {
        cluster: usize,
        categories: Vec<usize>,
        /// (key, category override, severity, informational, detail variant: 0 = none).
        findings: Vec<(usize, Option<usize>, Severity, bool, u8)>,
    },
    Incident {
        cluster: usize,
        id: usize,
        /// 0 opened, 1 updated, 2 closed.
        action: u8,
        keys: Vec<usize>,
    },
    Deploy {
        cluster: usize,
        service: usize,
        version: u8,
        /// 0 unlinked, 1 by incident id, 2 by check key.
        link: u8,
        id: usize,
        key: usize,
    },
    LinkedNote {
        cluster: usize,
        id: usize,
    },
    Inventory {
        cluster: usize,
        /// Which resources of [`INVENTORY`] are live.
        live: Vec<bool>,
    },
    Settings {
        cluster: usize,
        threshold: Option<u32>,
        enabled: Option<Option<Vec<usize>>>,
        flap_window_secs: Option<u64>,
        flap_threshold: Option<u32>,
        /// Start and stop thresholds of the state change detector.
        flap_percents: (Option<u32>, Option<u32>),
        /// When a firing alert is stale.
        alert_stale_after_secs: Option<u64>,
        /// Cycles a category may miss before its active findings are unreachable.
        unreachable_after_cycles: Option<u32>,
    },
    Resolve {
        cluster: usize,
        key: usize,
        recipe: bool,
    },
    /// An alert's notification: fired or resolved, with a `startsAt` of 0 to 3 (thousands of
    /// seconds), so re-sends, re-fires and late ones all come.
    Alert {
        cluster: usize,
        alert: usize,
        fired: bool,
        starts: u8,
        severity: Severity,
        summary: bool,
    },
    /// An operator resolves an alert.
    ResolveAlert {
        cluster: usize,
        alert: usize,
    },
    Note {
        cluster: usize,
    },
    /// Repeat the id of an earlier event (by index modulo the events so far), with new content.
    Duplicate {
        of: usize,
        then: Box<Step>,
    },
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Info),
        Just(Severity::Warning),
        Just(Severity::Error),
        Just(Severity::Critical)
    ]
}

fn cycle_step(clusters: usize) -> impl Strategy<Value = Step> {
    (
        0..clusters,
        proptest::sample::subsequence(
            (0..CATEGORIES.len()).collect::<Vec<_>>(),
            0..=CATEGORIES.len(),
        ),
        proptest::collection::vec(
            (
                0..KEYS.len(),
                proptest::option::weighted(0.15, 0..CATEGORIES.len()),
                severity(),
                proptest::bool::weighted(0.1),
                0u8..3,
            ),
            0..6,
        ),
    )
        .prop_map(|(cluster, categories, findings)| Step::Cycle {
            cluster,
            categories,
            findings,
        })
}

fn base_step(clusters: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        14 => cycle_step(clusters),
        2 => (
            0..clusters,
            proptest::option::of(0u32..=4),
            proptest::option::weighted(0.3, proptest::option::of(proptest::sample::subsequence(
                (0..CATEGORIES.len()).collect::<Vec<_>>(), 0..=CATEGORIES.len()))),
            proptest::option::weighted(0.3, prop_oneof![Just(60u64), Just(600), Just(3_600), Just(86_400)]),
            proptest::option::weighted(0.3, 0u32..4),
            (proptest::option::weighted(0.3, 1u32..=100), proptest::option::weighted(0.3, 1u32..=100)),
            proptest::option::weighted(0.3, prop_oneof![Just(1u64), Just(60), Just(600), Just(3_600)]),
            proptest::option::weighted(0.3, 1u32..=4),
        )
            .prop_map(|(cluster, threshold, enabled, flap_window_secs, flap_threshold, (start, stop), alert_stale_after_secs, unreachable_after_cycles)| Step::Settings {
                cluster, threshold, enabled, flap_window_secs, flap_threshold, alert_stale_after_secs, unreachable_after_cycles,
                // Both given: the decoder refuses a stop above the start.
                flap_percents: match (start, stop) {
                    (Some(a), Some(b)) => (Some(a.max(b)), Some(a.min(b))),
                    other => other,
                },
            }),
        2 => (0..clusters, 0..KEYS.len(), any::<bool>())
            .prop_map(|(cluster, key, recipe)| Step::Resolve { cluster, key, recipe }),
        2 => (0..clusters, 0..ALERTS.len(), proptest::bool::weighted(0.6), 0u8..4, severity(), any::<bool>())
            .prop_map(|(cluster, alert, fired, starts, severity, summary)| Step::Alert { cluster, alert, fired, starts, severity, summary }),
        1 => (0..clusters, 0..ALERTS.len())
            .prop_map(|(cluster, alert)| Step::ResolveAlert { cluster, alert }),
        1 => (0..clusters).prop_map(|cluster| Step::Note { cluster }),
        1 => (0..clusters, 0..3usize, 0u8..3, proptest::collection::vec(0..KEYS.len(), 0..3))
            .prop_map(|(cluster, id, action, keys)| Step::Incident { cluster, id, action, keys }),
        1 => (0..clusters, 0..SERVICES.len(), 0u8..4, 0u8..3, 0..3usize, 0..KEYS.len())
            .prop_map(|(cluster, service, version, link, id, key)| Step::Deploy { cluster, service, version, link, id, key }),
        1 => (0..clusters, 0..3usize).prop_map(|(cluster, id)| Step::LinkedNote { cluster, id }),
        1 => (0..clusters, proptest::collection::vec(proptest::bool::weighted(0.8), INVENTORY.len()))
            .prop_map(|(cluster, live)| Step::Inventory { cluster, live }),
    ]
}

pub fn step(clusters: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        19 => base_step(clusters),
        1 => (any::<usize>(), base_step(clusters)).prop_map(|(of, then)| Step::Duplicate { of, then: Box::new(then) }),
    ]
}

/// Seconds to advance between events: mostly forward, sometimes a skewed clock goes back.
pub fn time_steps(len: usize) -> impl Strategy<Value = Vec<i64>> {
    proptest::collection::vec(prop_oneof![9 => 0i64..900, 1 => -300i64..0], len)
}

/// Builds events from steps; ids are unique except for `Duplicate` steps.
pub fn build_log(steps: &[Step], time_steps: &[i64]) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut secs = 0i64;
    for (i, step) in steps.iter().enumerate() {
        secs += time_steps.get(i).copied().unwrap_or(60);
        let (id, step) = match step {
            Step::Duplicate { of, then } if !events.is_empty() => {
                (events[of % events.len()].id.0.clone(), then.as_ref())
            }
            Step::Duplicate { then, .. } => (format!("e{i}"), then.as_ref()),
            other => (format!("e{i}"), other),
        };
        events.push(build_event(&id, secs, step));
    }
    events
}

fn build_event(id: &str, secs: i64, step: &Step) -> Event {
    match step {
        Step::Cycle {
            cluster,
            categories,
            findings,
        } => {
            let categories: Vec<&str> = categories.iter().map(|&c| CATEGORIES[c]).collect();
            let findings = findings
                .iter()
                .map(
                    |&(key, category, severity, informational, detail)| FindingObservation {
                        severity,
                        informational,
                        detail: (detail > 0).then(|| format!("failure signature {detail}")),
                        resource: key_resource(key),
                        ..obs(
                            KEYS[key],
                            category.map_or(home_category(key), |c| CATEGORIES[c]),
                        )
                    },
                )
                .collect();
            cycle(id, CLUSTERS[*cluster], secs, &categories, findings)
        }
        Step::Settings {
            cluster,
            threshold,
            enabled,
            flap_window_secs,
            flap_threshold,
            flap_percents,
            alert_stale_after_secs,
            unreachable_after_cycles,
        } => settings(
            id,
            CLUSTERS[*cluster],
            secs,
            SettingsChanged {
                clean_cycles_to_resolve: *threshold,
                enabled_categories: enabled.as_ref().map(|e| {
                    e.as_ref()
                        .map(|list| list.iter().map(|&c| CATEGORIES[c].to_owned()).collect())
                }),
                flap_window_secs: *flap_window_secs,
                flap_threshold: *flap_threshold,
                notification_min_severity: None,
                flap_start_percent: flap_percents.0,
                flap_stop_percent: flap_percents.1,
                alert_stale_after_secs: *alert_stale_after_secs,
                unreachable_after_cycles: *unreachable_after_cycles,
                ..SettingsChanged::default()
            },
        ),
        Step::Resolve {
            cluster,
            key,
            recipe,
        } => {
            let mut e = manual_resolve(id, CLUSTERS[*cluster], secs, KEYS[*key]);
            if *recipe && let Payload::FindingResolved(r) = &mut e.payload {
                r.kind = ManualResolutionKind::Recipe;
                r.recipe = Some("restart_pod".into());
            }
            e
        }
        Step::Note { cluster } => note(id, CLUSTERS[*cluster], secs),
        Step::Alert {
            cluster,
            alert,
            fired,
            starts,
            severity,
            summary,
        } => alert_event(
            id,
            CLUSTERS[*cluster],
            secs,
            *alert,
            *fired,
            i64::from(*starts) * 1_000,
            *severity,
            summary.then_some("pods keep restarting"),
        ),
        Step::ResolveAlert { cluster, alert } => {
            let (name, fingerprint, _) = ALERTS[*alert];
            manual_resolve(
                id,
                CLUSTERS[*cluster],
                secs,
                &reference_alert_key(name, fingerprint),
            )
        }
        Step::Incident {
            cluster,
            id: incident,
            action,
            keys,
        } => {
            let change = IncidentChange {
                incident: format!("inc-{incident}"),
                title: Some(format!("incident {incident}")),
                severity: (*action == 1).then_some(Severity::Critical),
                check_keys: keys.iter().map(|&k| KEYS[k].to_owned()).collect(),
                summary: None,
            };
            let payload = match action {
                0 => Payload::IncidentOpened(change),
                1 => Payload::IncidentUpdated(change),
                _ => Payload::IncidentClosed(change),
            };
            event(id, CLUSTERS[*cluster], secs, payload)
        }
        Step::Deploy {
            cluster,
            service,
            version,
            link,
            id: incident,
            key,
        } => event(
            id,
            CLUSTERS[*cluster],
            secs,
            Payload::ChangeDeployed(ChangeDeployed {
                service: SERVICES[*service].to_owned(),
                version: format!("v{version}"),
                kind: if *version == 0 {
                    ChangeKind::Rollback
                } else {
                    ChangeKind::Deploy
                },
                link: None,
                summary: None,
                incident: (*link == 1).then(|| format!("inc-{incident}")),
                check_keys: if *link == 2 {
                    vec![KEYS[*key].to_owned()]
                } else {
                    vec![]
                },
            }),
        ),
        Step::LinkedNote {
            cluster,
            id: incident,
        } => {
            let mut e = note(id, CLUSTERS[*cluster], secs);
            if let Payload::NoteAdded(n) = &mut e.payload {
                n.incident = Some(format!("inc-{incident}"));
                n.kind = NoteKind::Hypothesis;
            }
            e
        }
        Step::Inventory { cluster, live } => event(
            id,
            CLUSTERS[*cluster],
            secs,
            Payload::InventoryObserved(InventoryObserved {
                scan: format!("scan-{id}"),
                kinds: [
                    "Deployment",
                    "ReplicaSet",
                    "Pod",
                    "PersistentVolumeClaim",
                    "Node",
                ]
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
                resources: INVENTORY
                    .iter()
                    .zip(live)
                    .filter(|(_, live)| **live)
                    .map(
                        |((uid, kind, namespace, name, owners, uses), _)| InventoryResource {
                            uid: (*uid).to_owned(),
                            kind: (*kind).to_owned(),
                            namespace: namespace.map(str::to_owned),
                            name: (*name).to_owned(),
                            owners: owners.iter().map(|o| (*o).to_owned()).collect(),
                            uses: uses.iter().map(|u| (*u).to_owned()).collect(),
                        },
                    )
                    .collect(),
            }),
        ),
        Step::Duplicate { then, .. } => build_event(id, secs, then),
    }
}

/// A random log over `clusters` clusters, up to `max_len` events.
pub fn log(clusters: usize, max_len: usize) -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(step(clusters), 0..=max_len)
        .prop_flat_map(|steps| {
            let n = steps.len();
            (Just(steps), time_steps(n))
        })
        .prop_map(|(steps, times)| build_log(&steps, &times))
}

// ---------------------------------------------------------------------------------------------
// Orphan-heavy logs: the orphan fold's own steps (as `tests/orphans.rs` draws them: scans of a
// small pool of uids sharing few names, tracking rows, spans of a few traces, confirm, grace and
// retention settings) mixed with the steps above.

/// Kinds of the orphan pool.
pub const ORPHAN_KINDS: &[&str] = &[
    "Pod",
    "ReplicaSet",
    "PersistentVolumeClaim",
    "IngressRoute",
    "LonghornReplica",
];
/// Namespaces of the orphan pool.
pub const ORPHAN_NAMESPACES: &[Option<&str>] = &[Some("a"), Some("b"), None];

/// uid, kind, namespace, name, owners, uses (as pool indexes): 14 uids share 4 names, so two
/// live resources often share a label.
pub type PoolResource = (usize, usize, usize, usize, Vec<usize>, Vec<usize>);

#[derive(Clone, Debug)]
pub enum OrphanStep {
    Scan {
        cluster: usize,
        kinds: Vec<usize>,
        resources: Vec<PoolResource>,
    },
    Track {
        cluster: usize,
        kind: usize,
        ns: usize,
        name: usize,
        uid: Option<usize>,
        delete: bool,
    },
    /// A span of one of a few traces; span ids repeat across traces (same labels).
    Span {
        cluster: usize,
        trace: usize,
        span: usize,
        parent: Option<usize>,
    },
    Settings {
        cluster: usize,
        confirm: Option<u32>,
        grace: Option<u64>,
        retention: Option<u64>,
        consumers: Option<Vec<usize>>,
    },
    /// A step of [`step`] (cycles, alerts, incidents, …).
    Other(Step),
}

pub fn orphan_step(clusters: usize) -> impl Strategy<Value = OrphanStep> {
    let cluster = 0..clusters;
    let resource = (
        0usize..14,
        0..ORPHAN_KINDS.len(),
        0..ORPHAN_NAMESPACES.len(),
        0usize..4,
        proptest::collection::vec(0usize..16, 0..2),
        proptest::collection::vec(0usize..16, 0..2),
    );
    prop_oneof![
        4 => (
            cluster.clone(),
            proptest::sample::subsequence((0..ORPHAN_KINDS.len()).collect::<Vec<_>>(), 0..=ORPHAN_KINDS.len()),
            proptest::collection::vec(resource, 0..12),
        )
            .prop_map(|(cluster, kinds, resources)| OrphanStep::Scan { cluster, kinds, resources }),
        3 => (
            cluster.clone(),
            0..ORPHAN_KINDS.len(),
            0..ORPHAN_NAMESPACES.len(),
            0usize..4,
            proptest::option::weighted(0.4, 0usize..16),
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(cluster, kind, ns, name, uid, delete)| OrphanStep::Track { cluster, kind, ns, name, uid, delete }),
        4 => (cluster.clone(), 0usize..4, 0usize..5, proptest::option::weighted(0.7, 0usize..6))
            .prop_map(|(cluster, trace, span, parent)| OrphanStep::Span { cluster, trace, span, parent }),
        2 => (
            cluster.clone(),
            proptest::option::of(1u32..=3),
            proptest::option::of(prop_oneof![Just(0u64), Just(60), Just(300)]),
            proptest::option::weighted(0.4, prop_oneof![Just(0u64), Just(120), Just(600), Just(1_800)]),
            proptest::option::weighted(
                0.3,
                proptest::sample::subsequence((0..ORPHAN_KINDS.len()).collect::<Vec<_>>(), 0..=2)
            ),
        )
            .prop_map(|(cluster, confirm, grace, retention, consumers)| OrphanStep::Settings { cluster, confirm, grace, retention, consumers }),
        3 => step(clusters).prop_map(OrphanStep::Other),
    ]
}

/// A random orphan-heavy log over `clusters` clusters, up to `max_len` events; ids are unique
/// except for the `Duplicate` steps of [`step`].
pub fn orphan_log(clusters: usize, max_len: usize) -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        (
            orphan_step(clusters),
            prop_oneof![9 => 0i64..200, 1 => -100i64..0],
        ),
        0..=max_len,
    )
    .prop_map(|steps| build_orphan_log(&steps))
}

pub fn build_orphan_log(steps: &[(OrphanStep, i64)]) -> Vec<Event> {
    let mut secs = 0;
    let mut events: Vec<Event> = Vec::new();
    for (i, (step, dt)) in steps.iter().enumerate() {
        secs += dt;
        let id = format!("e{i}");
        let e = match step {
            OrphanStep::Scan {
                cluster,
                kinds,
                resources,
            } => {
                let mut unique: BTreeMap<usize, InventoryResource> = BTreeMap::new();
                for (uid, kind, ns, name, owners, uses) in resources {
                    let resource = InventoryResource {
                        uid: format!("u{uid}"),
                        kind: ORPHAN_KINDS[*kind].to_owned(),
                        namespace: ORPHAN_NAMESPACES[*ns].map(str::to_owned),
                        name: format!("x{name}"),
                        owners: owners.iter().map(|o| format!("u{o}")).collect(),
                        uses: uses.iter().map(|u| format!("u{u}")).collect(),
                    };
                    unique.insert(*uid, resource);
                }
                let payload = Payload::InventoryObserved(InventoryObserved {
                    scan: format!("scan-{id}"),
                    kinds: kinds.iter().map(|k| ORPHAN_KINDS[*k].to_owned()).collect(),
                    resources: unique.into_values().collect(),
                });
                event(&id, CLUSTERS[*cluster], secs, payload)
            }
            OrphanStep::Track {
                cluster,
                kind,
                ns,
                name,
                uid,
                delete,
            } => {
                let kind = ORPHAN_KINDS[*kind];
                let key = match ORPHAN_NAMESPACES[*ns] {
                    Some(ns) => format!("{}:{ns}/x{name}", kind.to_lowercase()),
                    None => format!("{}:x{name}", kind.to_lowercase()),
                };
                let row = Tracking {
                    kind: kind.to_owned(),
                    key,
                    uid: uid.map(|u| format!("u{u}")),
                };
                let payload = if *delete {
                    Payload::TrackingDeleted(row)
                } else {
                    Payload::TrackingUpserted(row)
                };
                event(&id, CLUSTERS[*cluster], secs, payload)
            }
            OrphanStep::Span {
                cluster,
                trace,
                span,
                parent,
            } => {
                let payload = Payload::SpanRecorded(SpanRecorded {
                    trace_id: format!("trace-{trace}"),
                    span_id: format!("span-{span}"),
                    parent_span_id: parent.map(|p| format!("span-{p}")),
                    name: "op".to_owned(),
                    service: "agents".to_owned(),
                    start: at(secs),
                    end: Some(at(secs + 1)),
                    status: SpanStatus::Ok,
                });
                event(&id, CLUSTERS[*cluster], secs, payload)
            }
            OrphanStep::Settings {
                cluster,
                confirm,
                grace,
                retention,
                consumers,
            } => {
                let change = SettingsChanged {
                    orphan_confirm_scans: *confirm,
                    span_grace_secs: *grace,
                    span_retention_secs: *retention,
                    orphan_consumer_kinds: consumers
                        .as_ref()
                        .map(|c| c.iter().map(|k| ORPHAN_KINDS[*k].to_owned()).collect()),
                    ..Default::default()
                };
                settings(&id, CLUSTERS[*cluster], secs, change)
            }
            OrphanStep::Other(Step::Duplicate { of, then }) if !events.is_empty() => {
                let id = events[of % events.len()].id.0.clone();
                build_event(&id, secs, then)
            }
            OrphanStep::Other(step) => build_event(&id, secs, step),
        };
        events.push(e);
    }
    events
}

// ---------------------------------------------------------------------------------------------
// Runner

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    if let Some(seed) = std::env::var("TIDEMARK_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return seed;
    }
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

/// Runs a property; on failure returns a message with the seed and the smallest failing input.
pub fn check<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) -> Result<(), String> {
    let seed = seed();
    let config = Config {
        cases: cases(default_cases),
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner.run(&strategy, test).map_err(|e| {
        format!("property `{name}` failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}")
    })
}

/// Runs a property and panics with the seed when it fails.
pub fn assert_property<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) {
    if let Err(message) = check(name, default_cases, strategy, test) {
        panic!("{message}");
    }
}
