//! The alert workloads of issue 18 (benches/alerts/run): distinct Alertmanager alerts as webhook
//! payloads (version 4, as Alertmanager sends them), and a seeded stream of `alert.fired` /
//! `alert.resolved` events that fires, re-sends, resolves and re-fires alerts, for the fold.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tidemark_core::alertmanager::label_fingerprint;
use tidemark_core::event::{Alert, CURRENT_SCHEMA};
use tidemark_core::{Event, EventId, Payload, Severity, Timestamp};

use crate::SplitMix64;

/// Alert names the workloads cycle through.
const ALERT_NAMES: usize = 20;
/// Namespaces the workloads' pods are spread over.
const NAMESPACES: usize = 50;
/// Severity labels, by alert index modulo 4.
const SEVERITIES: [&str; 4] = ["critical", "warning", "warning", "info"];

/// The first `startsAt` of the workloads (2026-03-02T00:00:00Z).
pub fn workload_start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").expect("valid time")
}

/// The labels of alert `index` in cluster `cluster`: distinct for every index (its pod).
pub fn alert_labels(index: u64, cluster: &str) -> BTreeMap<String, String> {
    let name = format!("BenchAlert{}", index % ALERT_NAMES as u64);
    BTreeMap::from([
        ("alertname".to_owned(), name),
        ("cluster".to_owned(), cluster.to_owned()),
        (
            "namespace".to_owned(),
            format!("ns-{}", index % NAMESPACES as u64),
        ),
        ("pod".to_owned(), format!("app-{index}-7f9d4b8c6-xk2p9")),
        ("job".to_owned(), "kube-state-metrics".to_owned()),
        (
            "severity".to_owned(),
            SEVERITIES[(index % 4) as usize].to_owned(),
        ),
    ])
}

/// The annotations of alert `index`.
fn alert_annotations(index: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "summary".to_owned(),
            format!("Pod app-{index} is crash looping"),
        ),
        (
            "description".to_owned(),
            format!("Pod app-{index} restarted 5 times in the last 10 minutes."),
        ),
    ])
}

/// Alert `index` of a webhook as Alertmanager sends it: firing, its fingerprint computed from
/// its labels as Alertmanager does, so distinct indexes are distinct alerts.
pub fn webhook_alert(index: u64, cluster: &str) -> Value {
    let labels = alert_labels(index, cluster);
    let fingerprint = label_fingerprint(&labels);
    let starts_at = workload_start().plus_secs((index % 86_400) as i64);
    json!({
        "status": "firing",
        "labels": labels,
        "annotations": alert_annotations(index),
        "startsAt": starts_at.to_string(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": format!("http://prometheus.example:9090/graph?g0.expr=up&alert={index}"),
        "fingerprint": fingerprint,
    })
}

/// A version 4 webhook of `alerts` (from [`webhook_alert`]) of one cluster, grouped by cluster
/// and namespace when it holds one alert (so the group labels are its own), by cluster otherwise.
pub fn webhook_payload(alerts: Vec<Value>, cluster: &str) -> Vec<u8> {
    let group_labels = match alerts.as_slice() {
        [one] => json!({"cluster": cluster, "namespace": one["labels"]["namespace"]}),
        _ => json!({"cluster": cluster}),
    };
    let (common_labels, common_annotations) = match alerts.as_slice() {
        [one] => (one["labels"].clone(), one["annotations"].clone()),
        _ => (json!({"cluster": cluster}), json!({})),
    };
    let group_key = format!("{{}}:{group_labels}");
    serde_json::to_vec(&json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tidemark",
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    }))
    .expect("a JSON value serializes")
}

/// The cluster of alert `index` among `clusters` clusters.
pub fn cluster_of(index: u64, clusters: usize) -> String {
    format!("bench-{}", index % clusters.max(1) as u64)
}

/// Shape of an [`AlertChurn`] stream.
#[derive(Clone, Copy, Debug)]
pub struct AlertChurnShape {
    /// Clusters the alerts are spread over (round-robin by index).
    pub clusters: usize,
    /// Distinct alerts.
    pub alerts: usize,
    /// Seed of the generator.
    pub seed: u64,
}

/// What an [`AlertChurn`] event did to its alert, as the source saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertStep {
    /// First notification of a distinct alert.
    FirstFire,
    /// A firing alert notified again (same `startsAt`).
    Resend,
    /// A firing alert resolved.
    Resolve,
    /// A resolved alert's resolution notified again.
    ResendResolve,
    /// A resolved alert fired again (a later `startsAt`).
    Refire,
    /// A firing alert fired again with a later `startsAt` (its resolution never arrived).
    RefireWhileFiring,
    /// A re-send of an earlier `startsAt` than the latest (late).
    Late,
}

impl AlertStep {
    /// Every step, in order.
    pub const ALL: [Self; 7] = [
        Self::FirstFire,
        Self::Resend,
        Self::Resolve,
        Self::ResendResolve,
        Self::Refire,
        Self::RefireWhileFiring,
        Self::Late,
    ];

    /// A short name for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstFire => "first_fire",
            Self::Resend => "resend",
            Self::Resolve => "resolve",
            Self::ResendResolve => "resend_resolve",
            Self::Refire => "refire",
            Self::RefireWhileFiring => "refire_while_firing",
            Self::Late => "late",
        }
    }
}

/// One alert's state in the source.
#[derive(Clone, Copy, Debug)]
struct SourceAlert {
    firing: bool,
    starts_at: Timestamp,
    previous_starts_at: Option<Timestamp>,
}

/// A seeded, endless stream of alert notifications, one second apart on each cluster's clock:
/// first every alert fires once (distinct fires), then a random alert is notified at each step:
/// a firing one is re-sent (50%), resolved (30%), fired again with a later `startsAt` (15%) or
/// re-sent late (5%); a resolved one fires again (70%), has its resolution re-sent (20%) or a
/// late firing re-sent (10%).
#[derive(Debug)]
pub struct AlertChurn {
    shape: AlertChurnShape,
    rng: SplitMix64,
    alerts: Vec<Option<SourceAlert>>,
    labels: Vec<(String, BTreeMap<String, String>, String)>,
    emitted: u64,
}

impl AlertChurn {
    /// A stream of this shape.
    pub fn new(shape: AlertChurnShape) -> Self {
        assert!(shape.alerts > 0, "an alert stream needs alerts");
        let labels = (0..shape.alerts as u64)
            .map(|i| {
                let labels = alert_labels(i, &cluster_of(i, shape.clusters));
                let fingerprint = label_fingerprint(&labels);
                (labels["alertname"].clone(), labels, fingerprint)
            })
            .collect();
        Self {
            shape,
            rng: SplitMix64::new(shape.seed),
            alerts: vec![None; shape.alerts],
            labels,
            emitted: 0,
        }
    }

    /// The next event and what it did.
    pub fn next_event(&mut self) -> (Event, AlertStep) {
        let n = self.emitted;
        self.emitted += 1;
        // Each cluster's clock: one second per notification of the whole stream.
        let now = workload_start().plus_secs(3_600 + n as i64);
        let index = if (n as usize) < self.shape.alerts {
            n as usize
        } else {
            self.rng.below(self.shape.alerts)
        };
        let roll = self.rng.below(100);
        let (step, fired, starts_at, ends_at) = match self.alerts[index] {
            None => (AlertStep::FirstFire, true, now, None),
            Some(a) if a.firing => match roll {
                0..50 => (AlertStep::Resend, true, a.starts_at, None),
                50..80 => (AlertStep::Resolve, false, a.starts_at, Some(now)),
                80..95 => (AlertStep::RefireWhileFiring, true, now, None),
                _ => late(a),
            },
            Some(a) => match roll {
                0..70 => (AlertStep::Refire, true, now, None),
                70..90 => (AlertStep::ResendResolve, false, a.starts_at, Some(now)),
                _ => late(a),
            },
        };
        let state = &mut self.alerts[index];
        if step != AlertStep::Late {
            let previous_starts_at = match *state {
                Some(a) if a.starts_at != starts_at => Some(a.starts_at),
                Some(a) => a.previous_starts_at,
                None => None,
            };
            *state = Some(SourceAlert {
                firing: fired,
                starts_at,
                previous_starts_at,
            });
        }
        (self.event(n, index, fired, starts_at, ends_at, now), step)
    }

    fn event(
        &self,
        n: u64,
        index: usize,
        fired: bool,
        starts_at: Timestamp,
        ends_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Event {
        let (name, labels, fingerprint) = &self.labels[index];
        let alert = Alert {
            fingerprint: fingerprint.clone(),
            name: name.clone(),
            severity: tidemark_core::alertmanager::map_severity(
                labels.get("severity").map(String::as_str),
            ),
            labels: labels.clone(),
            annotations: alert_annotations(index as u64),
            starts_at,
            ends_at,
        };
        Event {
            id: EventId(format!("am-bench-{n:012}")),
            schema: CURRENT_SCHEMA,
            time: ends_at.unwrap_or(now),
            source: "alertmanager".to_owned(),
            cluster: labels["cluster"].clone(),
            payload: if fired {
                Payload::AlertFired(alert)
            } else {
                Payload::AlertResolved(alert)
            },
        }
    }
}

/// A late re-send of `alert`: its earlier `startsAt` (firing), or, for an alert that fired
/// once, a `startsAt` before its first.
fn late(alert: SourceAlert) -> (AlertStep, bool, Timestamp, Option<Timestamp>) {
    let earlier = alert
        .previous_starts_at
        .unwrap_or(alert.starts_at.plus_secs(-60));
    (AlertStep::Late, true, earlier, None)
}

/// The severity the workloads give alert `index`.
pub fn severity_of(index: u64) -> Severity {
    tidemark_core::alertmanager::map_severity(Some(SEVERITIES[(index % 4) as usize]))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use tidemark_core::Projections;
    use tidemark_core::alertmanager::{BridgeConfig, translate};

    use super::*;

    #[test]
    fn a_webhook_of_distinct_alerts_translates_into_as_many_distinct_fires() {
        let alerts = (0..1_000).map(|i| webhook_alert(i, "bench-0")).collect();
        let body = webhook_payload(alerts, "bench-0");
        let events = translate(&body, &BridgeConfig::default(), workload_start()).unwrap();
        assert_eq!(events.len(), 1_000);
        let ids: BTreeSet<_> = events.iter().map(|e| &e.id).collect();
        assert_eq!(ids.len(), 1_000, "every alert is a distinct event");
        assert!(events.iter().all(|e| e.cluster == "bench-0"));
        assert!(
            events
                .iter()
                .all(|e| matches!(e.payload, Payload::AlertFired(_)))
        );
    }

    #[test]
    fn a_single_alert_webhook_names_its_cluster_and_severity() {
        let body = webhook_payload(vec![webhook_alert(7, "bench-3")], "bench-3");
        let events = translate(&body, &BridgeConfig::default(), workload_start()).unwrap();
        let [event] = events.as_slice() else {
            panic!("one event: {events:?}")
        };
        assert_eq!(event.cluster, "bench-3");
        let Payload::AlertFired(alert) = &event.payload else {
            panic!("a fire: {event:?}")
        };
        assert_eq!(alert.severity, severity_of(7));
        assert_eq!(alert.name, "BenchAlert7");
    }

    #[test]
    fn the_churn_fires_every_alert_once_then_mixes_every_step() {
        let mut churn = AlertChurn::new(AlertChurnShape {
            clusters: 4,
            alerts: 100,
            seed: 18,
        });
        let mut steps: BTreeMap<AlertStep, usize> = BTreeMap::new();
        let mut projections = Projections::new();
        for seq in 1..=10_000 {
            let (event, step) = churn.next_event();
            *steps.entry(step).or_default() += 1;
            projections.apply(seq, &event);
        }
        assert_eq!(steps[&AlertStep::FirstFire], 100);
        for step in AlertStep::ALL {
            assert!(
                steps.get(&step).copied().unwrap_or(0) > 0,
                "{step:?} never occurs"
            );
        }
        let firing = churn.alerts.iter().flatten().filter(|a| a.firing).count();
        assert_eq!(projections.findings().active_count(), firing);
    }
}
