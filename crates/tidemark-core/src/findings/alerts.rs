//! Alerts as findings (ADR 0007): the check key of an alert, the resource its labels name, and
//! its lifecycle, driven by the alerting system's notifications (`alert.fired`,
//! `alert.resolved`) instead of by cycles.
//!
//! - An alert is identified per cluster by (name, fingerprint) and keyed
//!   `alert:<name>:<fingerprint>` ([`alert_check_key`]); its category is [`ALERT_CATEGORY`].
//!   Cycles never sweep it (whatever categories they list), so it never auto-resolves.
//! - `alert.fired`: no open occurrence and a `startsAt` later than the latest seen (or the
//!   first notification) → an occurrence opens. The same `startsAt` while open → refreshed
//!   (severity, title, labels, annotations). A later `startsAt` while open → the source
//!   resolved it and fired it again: the open occurrence resolves `source`, a new one opens.
//!   An earlier `startsAt` → a late re-send: counted, nothing else changes.
//! - `alert.resolved` of the latest (or a later) `startsAt` → the open occurrence resolves
//!   `source`; of an earlier one → late, counted; of an alert never fired → ignored.
//! - An operator's `finding.resolved` naming the key resolves it `manual`; a notification of
//!   the same `startsAt` does not reopen it, a later one does.
//! - Flaps: the count detector counts `source` resolutions as it counts `auto` ones. The state
//!   change detector's runs of the cluster's alerts are its alert notifications (every
//!   `alert.fired` and `alert.resolved`, as a cycle is a run of its categories); an alert's
//!   state in a run is what the alerting system last said of it (firing or resolved: an
//!   operator's resolution does not change it), which changes only when it is notified, so the
//!   runs between two of its notifications keep its state (recorded lazily, `flaps::steady_runs`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{Alert, FindingResolved, ResourceRef};
use crate::findings::changes::Watch;
use crate::timestamp::Timestamp;

use super::{ClusterFindings, Finding, FindingChange, FoldOutput, ResolutionKind};

/// The category of every alert's finding.
pub const ALERT_CATEGORY: &str = "alert";

/// The prefix under which a `cycle.completed` observation keyed `alert:...` in a log written
/// before alerts were findings is folded (`probe:alert:...`), so it never shares a key with an
/// alert.
pub const LEGACY_CYCLE_ALERT_KEY_PREFIX: &str = "probe:";

/// The labels that name an alert's resource, in the order they are looked for, with the
/// resource kind each gives. The first one present (and not blank) wins.
pub const RESOURCE_LABELS: &[(&str, &str)] = &[
    ("pod", "Pod"),
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("job", "Job"),
    ("service", "Service"),
    ("instance", "Instance"),
];

/// What a finding that is an alert keeps besides a finding's fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertFacts {
    /// The alerting system's identity of the alert.
    pub fingerprint: String,
    /// The alert's name (`alertname`).
    pub name: String,
    /// The labels of its latest notification that was not late.
    pub labels: BTreeMap<String, String>,
    /// The annotations of its latest notification that was not late.
    pub annotations: BTreeMap<String, String>,
    /// The latest `startsAt` the source reported: of the current occurrence, or of a resolve
    /// that named a later one.
    pub starts_at: Timestamp,
    /// When the latest notification that was not late arrived (the cluster's clock at it):
    /// staleness is judged from it.
    pub last_notified_at: Timestamp,
    /// Notifications that were not late (the first one included).
    pub notifications: u64,
    /// Late notifications: a `startsAt` earlier than the latest, which change nothing.
    pub late_notifications: u64,
}

/// How stale a firing alert is at a reference time: no notification naming it arrived for
/// longer than its cluster's `alert_stale_after_secs` (a missed resolve, a receiver with
/// `send_resolved: false`, an alerting system that stopped sending). A read, never state:
/// Tidemark never resolves a stale alert (the log says what the source said).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertStaleness {
    /// When it became stale: its last notification plus `alert_stale_after_secs`.
    pub stale_since: Timestamp,
    /// How long it has been stale at the reference time, in seconds.
    pub stale_for_secs: u64,
    /// The time it was judged at: its cluster's clock (the log's latest time there), or the
    /// reader's clock when the reader asked for `now`.
    pub reference: Timestamp,
}

impl AlertFacts {
    /// How stale the alert is at `reference` under a staleness threshold of
    /// `stale_after_secs`; `None` when it is not (notified within it). Judged of firing alerts
    /// only: the caller asks for active ones.
    pub fn staleness(&self, reference: Timestamp, stale_after_secs: u64) -> Option<AlertStaleness> {
        let stale_since = self
            .last_notified_at
            .plus_secs(i64::try_from(stale_after_secs).unwrap_or(i64::MAX));
        (reference > stale_since).then(|| AlertStaleness {
            stale_since,
            stale_for_secs: reference.saturating_duration_since(stale_since).as_secs(),
            reference,
        })
    }
}

/// Percent-encodes the two characters a key part may not hold as they are: `%` and `:`.
fn encode_key_part(part: &str, out: &mut String) {
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

/// The check key of an alert: `alert:<name>:<fingerprint>`, each part with `%` and `:`
/// percent-encoded. Injective: the encoding is one-to-one and leaves no `:` in a part, so the
/// first `:` after the prefix ends the name and the rest is the fingerprint.
pub fn alert_check_key(name: &str, fingerprint: &str) -> String {
    let mut key = String::with_capacity(
        crate::event::ALERT_KEY_PREFIX.len() + name.len() + fingerprint.len() + 1,
    );
    key.push_str(crate::event::ALERT_KEY_PREFIX);
    encode_key_part(name, &mut key);
    key.push(':');
    encode_key_part(fingerprint, &mut key);
    key
}

/// The resource an alert's labels name: the first of [`RESOURCE_LABELS`] present, in the
/// `namespace` label's namespace; with only a `namespace` label, that namespace itself (kind
/// `Namespace`, so automatic incidents still group by it); none otherwise.
pub fn alert_resource(labels: &BTreeMap<String, String>) -> Option<ResourceRef> {
    let present = |name: &str| labels.get(name).filter(|v| !v.trim().is_empty());
    let namespace = present("namespace").cloned();
    RESOURCE_LABELS
        .iter()
        .find_map(|&(label, kind)| {
            present(label).map(|name| ResourceRef {
                kind: kind.to_owned(),
                namespace: namespace.clone(),
                name: name.clone(),
                uid: None,
            })
        })
        .or_else(|| {
            namespace.map(|ns| ResourceRef {
                kind: "Namespace".to_owned(),
                namespace: Some(ns.clone()),
                name: ns,
                uid: None,
            })
        })
}

/// The title of an alert's finding: its `summary` annotation, else its name.
fn alert_title(alert: &Alert) -> &str {
    alert
        .annotations
        .get("summary")
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&alert.name)
}

/// The detail of an alert's finding: its `description` annotation.
fn alert_detail(alert: &Alert) -> Option<&str> {
    alert
        .annotations
        .get("description")
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The key a cycle's observation is folded under: its own, or, for a key under the alert
/// prefix (logs written before the prefix was reserved), the same key under
/// [`LEGACY_CYCLE_ALERT_KEY_PREFIX`].
pub(super) fn cycle_key(check_key: &str) -> std::borrow::Cow<'_, str> {
    if check_key.starts_with(crate::event::ALERT_KEY_PREFIX) {
        format!("{LEGACY_CYCLE_ALERT_KEY_PREFIX}{check_key}").into()
    } else {
        check_key.into()
    }
}

impl Finding {
    /// Whether it is an alert (never swept by cycles).
    pub(super) fn is_alert(&self) -> bool {
        self.alert.is_some()
    }

    /// Severity, title, detail, resource, labels and annotations from a notification.
    fn refresh_from_alert(&mut self, alert: &Alert) {
        self.severity = alert.severity;
        let title = alert_title(alert);
        if self.title != title {
            title.clone_into(&mut self.title);
        }
        let detail = alert_detail(alert);
        if self.detail.as_deref() != detail {
            self.detail = detail.map(str::to_owned);
        }
        let resource = alert_resource(&alert.labels);
        if self.resource.as_deref() != resource.as_ref() {
            self.resource = resource.map(Box::new);
        }
        let facts = self.alert.as_deref_mut().expect("an alert's finding");
        if facts.labels != alert.labels {
            facts.labels.clone_from(&alert.labels);
        }
        if facts.annotations != alert.annotations {
            facts.annotations.clone_from(&alert.annotations);
        }
    }
}

impl ClusterFindings {
    /// How stale `finding` is, if it is a firing alert no notification named for longer than
    /// the cluster's `alert_stale_after_secs`: judged at `reference`, or at the cluster's
    /// clock (the log's latest time there) when `None`.
    pub(super) fn staleness(
        &self,
        finding: &Finding,
        reference: Option<Timestamp>,
    ) -> Option<AlertStaleness> {
        let facts = finding.alert.as_deref()?;
        if !finding.is_active() {
            return None;
        }
        let reference = reference.or(self.clock)?;
        facts.staleness(reference, self.settings.alert_stale_after_secs)
    }

    /// The index of the alert's finding, made (not yet seen: no occurrence) when it is new.
    fn alert_index(&mut self, alert: &Alert) -> u32 {
        let key = alert_check_key(&alert.name, &alert.fingerprint);
        if let Some(index) = self.index_of(&key) {
            return index;
        }
        let category = self.intern_category(ALERT_CATEGORY);
        self.push_unseen(Finding::unseen(
            key.into_boxed_str(),
            category,
            alert.severity,
            alert_title(alert).to_owned(),
            alert_detail(alert).map(str::to_owned),
            alert_resource(&alert.labels).map(Box::new),
            Some(Box::new(AlertFacts {
                fingerprint: alert.fingerprint.clone(),
                name: alert.name.clone(),
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
                starts_at: alert.starts_at,
                last_notified_at: Timestamp::default(),
                notifications: 0,
                late_notifications: 0,
            })),
        ))
    }

    /// Indexes finding `index` among the alerts, if it is one (by key and by fingerprint).
    pub(super) fn index_alert(&mut self, index: u32) {
        let finding = &self.findings[index as usize];
        if let Some(facts) = finding.alert.as_deref() {
            self.alerts_by_key.insert(finding.check_key.clone(), index);
            self.alerts_by_fingerprint
                .insert((facts.fingerprint.as_str().into(), index));
        }
    }

    /// `alert.fired` (`fired`) or `alert.resolved` at log position `seq`, applied at the
    /// cluster's clock `at`: a run of the cluster's alerts for the state change detector.
    pub(super) fn apply_alert(
        &mut self,
        seq: u64,
        at: Timestamp,
        alert: &Alert,
        fired: bool,
        sink: &mut impl FoldOutput,
    ) {
        self.alert_runs += 1;
        let notified = if fired {
            self.apply_alert_fired(seq, at, alert, sink)
        } else {
            self.apply_alert_resolved(seq, at, alert, sink)
        };
        if let Some(index) = notified {
            if self.findings[index as usize].is_active() {
                self.note_maintenance(index, at, false);
            }
            self.record_run(index, fired, seq, at, sink);
            self.watch_if_needed(index);
        }
        self.record_watched_runs(true, seq, at, sink);
    }

    /// `alert.fired` at log position `seq`, applied at the cluster's clock `at`; the alert's
    /// index unless the notification was late.
    fn apply_alert_fired<O: FoldOutput>(
        &mut self,
        seq: u64,
        at: Timestamp,
        alert: &Alert,
        sink: &mut O,
    ) -> Option<u32> {
        let index = self.alert_index(alert);
        if O::W::ON {
            let before = self.findings[index as usize].digest_entry();
            sink.watch().finding(index, before);
        }
        let finding = &mut self.findings[index as usize];
        let facts = finding.alert.as_deref_mut().expect("an alert's finding");
        let first = finding.occurrence_count == 0;
        if !first && alert.starts_at < facts.starts_at {
            facts.late_notifications += 1;
            return None;
        }
        let later = alert.starts_at > facts.starts_at;
        facts.starts_at = alert.starts_at;
        facts.last_notified_at = at;
        facts.notifications += 1;
        let active = finding.is_active();
        if active && finding.severity != alert.severity {
            sink.change(&finding.check_key, FindingChange::SeverityChanged);
        }
        finding.refresh_from_alert(alert);
        finding.last_seen_at = at;
        if first || later {
            if active {
                // Resolved and fired again by the source, between two notifications.
                self.resolve(index, at, seq, ResolutionKind::Source, sink);
            }
            self.open_occurrence(index, seq, at, sink);
        }
        Some(index)
    }

    /// `alert.resolved` at log position `seq`, applied at the cluster's clock `at`; the alert's
    /// index unless it was never notified firing or the notification was late.
    fn apply_alert_resolved<O: FoldOutput>(
        &mut self,
        seq: u64,
        at: Timestamp,
        alert: &Alert,
        sink: &mut O,
    ) -> Option<u32> {
        let key = alert_check_key(&alert.name, &alert.fingerprint);
        // Resolved before any notification of it firing: nothing to resolve.
        let index = self.index_of(&key)?;
        if O::W::ON {
            let before = self.findings[index as usize].digest_entry();
            sink.watch().finding(index, before);
        }
        let finding = &mut self.findings[index as usize];
        let facts = finding.alert.as_deref_mut().expect("an alert's finding");
        if alert.starts_at < facts.starts_at {
            facts.late_notifications += 1;
            return None;
        }
        facts.starts_at = alert.starts_at;
        facts.last_notified_at = at;
        facts.notifications += 1;
        if finding.is_active() {
            finding.refresh_from_alert(alert);
            self.resolve(index, at, seq, ResolutionKind::Source, sink);
        }
        Some(index)
    }

    /// A `finding.resolved`'s finding: the key it names, or, when that is under the alert
    /// prefix and names no alert, the key a cycle of an older log folded it under.
    pub(super) fn resolved_index(&self, resolved: &FindingResolved) -> Option<u32> {
        self.index_of(&resolved.check_key).or_else(|| {
            resolved
                .check_key
                .starts_with(crate::event::ALERT_KEY_PREFIX)
                .then(|| self.index_of(&cycle_key(&resolved.check_key)))
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_percent_and_colon_so_two_alerts_never_share_one() {
        assert_eq!(
            alert_check_key("KubePodCrashLooping", "5b1531d93a0a490e"),
            "alert:KubePodCrashLooping:5b1531d93a0a490e"
        );
        assert_eq!(alert_check_key("a:b", "c"), "alert:a%3Ab:c");
        assert_eq!(alert_check_key("a", "b:c"), "alert:a:b%3Ac");
        assert_eq!(alert_check_key("100%", "x"), "alert:100%25:x");
        // Without the encoding these would collide ("alert:a:b:c").
        assert_ne!(alert_check_key("a:b", "c"), alert_check_key("a", "b:c"));
        assert_ne!(alert_check_key("%3A", "x"), alert_check_key(":", "x"));
    }

    #[test]
    fn the_resource_is_the_first_naming_label_in_the_namespace() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let r = alert_resource(&labels(&[
            ("namespace", "agents"),
            ("service", "bruno"),
            ("pod", "bruno-7f"),
        ]))
        .unwrap();
        assert_eq!(
            (r.kind.as_str(), r.namespace.as_deref(), r.name.as_str()),
            ("Pod", Some("agents"), "bruno-7f")
        );
        let r = alert_resource(&labels(&[("namespace", "agents"), ("pod", " ")])).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.namespace.as_deref(), r.name.as_str()),
            ("Namespace", Some("agents"), "agents")
        );
        let r = alert_resource(&labels(&[("instance", "n3:9100")])).unwrap();
        assert_eq!((r.kind.as_str(), r.namespace), ("Instance", None));
        assert_eq!(alert_resource(&labels(&[("team", "x")])), None);
    }

    #[test]
    fn old_cycle_keys_under_the_alert_prefix_fold_under_probe() {
        assert_eq!(cycle_key("alert:x"), "probe:alert:x");
        assert_eq!(cycle_key("pod:crashloop:a/b"), "pod:crashloop:a/b");
    }
}
