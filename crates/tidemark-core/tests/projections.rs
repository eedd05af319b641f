//! Scenario tests of the projections, built from the stories of the catalogue (seed 003) and the
//! layered-bug postmortem (seed 000): each one a log a real on-call day could have produced.
//! Long because each scenario is a whole story, written out event by event.

mod support;

use support::*;
use tidemark_core::event::{
    Alert, ChangeDeployed, ChangeKind, FindingObservation, IncidentChange, InventoryObserved,
    InventoryResource, NoteAdded, NoteKind, ResourceRef, SettingsChanged,
};
use tidemark_core::findings::{FindingChange, UnreachableReason};
use tidemark_core::flaps::FlapDetector;
use tidemark_core::hygiene::UnstableKind;
use tidemark_core::incidents::{IncidentKind, IncidentState};
use tidemark_core::{Event, LogFold, Payload, Severity};

const CLUSTER: &str = "pw-prod";
const HOUR: i64 = 3_600;

/// A small builder: a log with ids and times in order, one cycle every `CYCLE_SECS`.
struct Log {
    events: Vec<Event>,
    secs: i64,
}

const CYCLE_SECS: i64 = 300;

impl Log {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            secs: 0,
        }
    }

    fn push(&mut self, payload: Payload) -> &mut Self {
        let id = format!("e{}", self.events.len());
        self.events.push(event(&id, CLUSTER, self.secs, payload));
        self
    }

    fn cycle(&mut self, categories: &[&str], findings: Vec<FindingObservation>) -> &mut Self {
        self.secs += CYCLE_SECS;
        let id = format!("e{}", self.events.len());
        self.events
            .push(cycle(&id, CLUSTER, self.secs, categories, findings));
        self
    }

    fn fold(&self) -> LogFold {
        let mut fold = LogFold::new();
        for e in &self.events {
            fold.apply(e);
        }
        fold
    }
}

fn pod(namespace: &str, name: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        kind: "Pod".into(),
        namespace: Some(namespace.into()),
        name: name.into(),
        uid: None,
    })
}

fn finding(key: &str, category: &str, resource: Option<ResourceRef>) -> FindingObservation {
    FindingObservation {
        resource,
        ..obs(key, category)
    }
}

// ---------------------------------------------------------------------------------------------
// Catalogue §1: flapping

/// A check keyed by the pod name: every restart makes a "new" finding, the old one resolves.
#[test]
fn a_key_built_from_the_pod_name_is_flagged_as_unstable_churn_and_drift() {
    let mut log = Log::new();
    let suffixes = ["xk2p9", "b7d4q", "m2n8z", "q9w4t", "z5c2v", "h8j2k"];
    for (i, suffix) in suffixes.iter().enumerate() {
        let name = format!("dnd-backend-7f9d4b8c6-{suffix}");
        let key = format!("pod:crashloop:dnd/{name}");
        log.cycle(&["pods"], vec![finding(&key, "pods", pod("dnd", &name))]);
        // The pod restarts every cycle in this story; one more clean cycle at the end.
        if i == suffixes.len() - 1 {
            log.cycle(&["pods"], vec![]);
        }
    }
    let fold = log.fold();
    let p = fold.projections();

    let unstable = p.unstable_keys(None);
    assert_eq!(unstable.len(), suffixes.len(), "{unstable:#?}");
    let first = &unstable[0].advice;
    assert_eq!(first.parts[0].kind, UnstableKind::PodTemplateHash);
    assert_eq!(first.suggestion, "pod:crashloop:dnd/dnd-backend");

    let churn = p.findings().churn(None);
    assert_eq!(churn.len(), 1, "{churn:#?}");
    assert_eq!(churn[0].category, "pods");
    // Every key but the last went absent one run after it was born.
    assert_eq!(churn[0].short_lived_keys, suffixes.len() as u64);

    let stuck = p.findings().stuck(None);
    let drifts: Vec<(&str, &str)> = stuck
        .drift_suspects
        .iter()
        .map(|d| {
            (
                d.record.old_check_key.as_str(),
                d.record.new_check_key.as_str(),
            )
        })
        .collect();
    assert_eq!(drifts.len(), suffixes.len() - 1, "{drifts:#?}");
    assert_eq!(
        drifts[0],
        (
            "pod:crashloop:dnd/dnd-backend-7f9d4b8c6-xk2p9",
            "pod:crashloop:dnd/dnd-backend-7f9d4b8c6-b7d4q"
        )
    );
}

/// A non-deterministic check: the same key comes and goes. Both detectors see it, and both
/// stop once the check is fixed.
#[test]
fn a_flaky_check_flaps_by_count_and_by_state_change_then_stops() {
    let mut log = Log::new();
    let key = "node:notready:k3s-worker-2";
    let seen = || vec![finding(key, "nodes", None)];
    // Present, then three clean cycles (resolved in the third, T = 2), four times.
    for _ in 0..4 {
        log.cycle(&["nodes"], seen());
        for _ in 0..3 {
            log.cycle(&["nodes"], vec![]);
        }
    }
    let fold = log.fold();
    let view = fold.findings().view(CLUSTER, key).unwrap();
    assert!(view.flapping, "four auto-resolutions in 80 minutes");
    let flaps = fold.findings().flaps(None);
    assert_eq!(flaps.len(), 1);
    let count_start = flaps[0]
        .episodes
        .iter()
        .find(|e| e.detector == FlapDetector::Count)
        .unwrap();
    // The third auto-resolution starts it: more than flap_threshold (2).
    assert_eq!(count_start.started_seq, 12);
    assert!(count_start.started_because.starts_with("3 auto-resolution"));

    // 8 state changes in the last 16 runs: well over 30 %.
    assert!(view.flapping_state_change, "{view:#?}");
    assert!(view.state_change_percent >= 30.0);

    // Fixed: 20 quiet runs later the state change detector has stopped...
    for _ in 0..20 {
        log.cycle(&["nodes"], vec![]);
    }
    let fold = log.fold();
    let view = fold.findings().view(CLUSTER, key).unwrap();
    assert!(!view.flapping_state_change);
    assert_eq!(view.state_change_percent, 0.0);
    // ...and the count rule still holds it: its window is a day.
    assert!(view.flapping);
    // A day later the window has passed; the next event of the cluster stops it.
    log.secs += 86_400;
    log.cycle(&["nodes"], vec![]);
    let fold = log.fold();
    assert!(!fold.findings().view(CLUSTER, key).unwrap().flapping);
    let episodes = &fold.findings().flaps(None)[0].episodes;
    assert!(
        episodes.iter().all(|e| e.stopped_seq.is_some()),
        "{episodes:#?}"
    );
}

#[test]
fn flap_starts_and_stops_are_timeline_changes() {
    let mut log = Log::new();
    let key = "dns:resolve:media.example.com";
    for i in 0..12 {
        let findings = if i % 2 == 0 {
            vec![finding(key, "dns", None)]
        } else {
            vec![]
        };
        log.cycle(&["dns"], findings);
    }
    let mut fold = LogFold::new();
    let mut projections = tidemark_core::Projections::new();
    let mut started_at = None;
    for (i, e) in log.events.iter().enumerate() {
        fold.apply(e);
        let changes = projections.apply(i as u64 + 1, e);
        if changes
            .iter()
            .any(|(_, c)| *c == FindingChange::FlapStarted(FlapDetector::StateChange))
        {
            started_at.get_or_insert(i as u64 + 1);
        }
    }
    // Alternating runs: 1 change (5.9 %), 2 (11.7 %), 3 (17.4 %), 4 (23.0 %), 5 (28.5 %),
    // 6 (33.9 %) >= 30 %: the seventh cycle.
    assert_eq!(started_at, Some(7));
    let episodes = &fold.findings().flaps(None)[0].episodes;
    assert_eq!(
        episodes[0].started_because,
        "33.9% state change over the last 20 runs of its category"
    );
}

// ---------------------------------------------------------------------------------------------
// Catalogue §2: stuck

/// #915: admission-bypass audit messages in a category no health check runs.
#[test]
fn the_admission_bypass_row_is_unreachable_and_a_persistent_problem_is_not() {
    let mut log = Log::new();
    log.cycle(
        &["admission_bypass"],
        vec![finding(
            "admission_bypass:media/plex",
            "admission_bypass",
            pod("media", "plex"),
        )],
    );
    let persistent = || {
        vec![finding(
            "pod:crashloop:dnd/dnd-backend",
            "pods",
            pod("dnd", "dnd-backend"),
        )]
    };
    for _ in 0..2 {
        log.cycle(&["pods", "infra_drift"], persistent());
    }
    let fold = log.fold();
    assert!(
        fold.findings().stuck(None).unreachable.is_empty(),
        "two cycles without the category are not yet N = 3"
    );
    log.cycle(&["pods", "infra_drift"], persistent());
    let stuck = log.fold().findings().stuck(None);
    assert_eq!(stuck.unreachable.len(), 1, "{stuck:#?}");
    let row = &stuck.unreachable[0];
    assert_eq!(row.check_key, "admission_bypass:media/plex");
    assert_eq!(row.reason, UnreachableReason::CategoryNotRun);
    assert_eq!(row.cycles_without_category, 3);
    assert_eq!(row.category_last_ran_at, at(CYCLE_SECS));
    assert!(
        stuck.long_lived.is_empty(),
        "the crash loop is 15 minutes old"
    );

    // A week on, the crash loop is still seen every cycle: long-lived, not stuck.
    log.secs += 7 * 24 * HOUR;
    log.cycle(&["pods", "infra_drift"], persistent());
    let stuck = log.fold().findings().stuck(None);
    assert_eq!(stuck.long_lived.len(), 1);
    assert_eq!(
        stuck.long_lived[0].check_key,
        "pod:crashloop:dnd/dnd-backend"
    );
    assert!(
        stuck
            .unreachable
            .iter()
            .all(|u| u.check_key != "pod:crashloop:dnd/dnd-backend")
    );
}

#[test]
fn a_disabled_category_makes_its_rows_unreachable_with_that_reason() {
    let mut log = Log::new();
    log.cycle(
        &["dns"],
        vec![finding("dns:resolve:media.example.com", "dns", None)],
    );
    log.push(Payload::SettingsChanged(SettingsChanged {
        enabled_categories: Some(Some(vec!["pods".into()])),
        ..SettingsChanged::default()
    }));
    for _ in 0..3 {
        // The probe still runs dns; the cluster's settings ignore it.
        log.cycle(&["pods", "dns"], vec![]);
    }
    let stuck = log.fold().findings().stuck(None);
    assert_eq!(stuck.unreachable.len(), 1);
    assert_eq!(
        stuck.unreachable[0].reason,
        UnreachableReason::CategoryDisabled
    );
}

// ---------------------------------------------------------------------------------------------
// Catalogue §3: the Cloudflare-proxied false orphan (#916)

#[test]
fn the_cloudflare_rows_auto_resolve_and_are_not_drift_while_a_real_drift_is() {
    let dns_record = |name: &str| {
        Some(ResourceRef {
            kind: "DNSRecord".into(),
            namespace: None,
            name: name.into(),
            uid: None,
        })
    };
    let proxied = |id: u32, name: &str| {
        finding(
            &format!("proxied:domain:{id}"),
            "infra_drift",
            dns_record(name),
        )
    };
    let mut log = Log::new();
    for _ in 0..3 {
        log.cycle(
            &["infra_drift"],
            vec![
                proxied(42, "media.example.com"),
                proxied(43, "vault.example.com"),
            ],
        );
    }
    // The fix: the detector stops emitting the rows. In the same cycle an unrelated drift of
    // the same category opens.
    let plex = finding(
        "infra_drift:pvc_attached_no_consumer:media/plex-config",
        "infra_drift",
        Some(ResourceRef {
            kind: "PersistentVolumeClaim".into(),
            namespace: Some("media".into()),
            name: "plex-config".into(),
            uid: None,
        }),
    );
    for _ in 0..3 {
        log.cycle(&["infra_drift"], vec![plex.clone()]);
    }
    let fold = log.fold();
    for key in ["proxied:domain:42", "proxied:domain:43"] {
        let view = fold.findings().view(CLUSTER, key).unwrap();
        assert_eq!(
            view.resolution_kind,
            Some(tidemark_core::ResolutionKind::Auto),
            "{key} resolves on the third clean cycle"
        );
        assert_eq!(view.resolved_at, Some(at(6 * CYCLE_SECS)));
    }
    let stuck = fold.findings().stuck(None);
    assert!(stuck.drift_suspects.is_empty(), "{stuck:#?}");
    assert!(stuck.unreachable.is_empty());

    // Whereas a key that really drifts on the fix side (same record, new key) is a suspect.
    log.cycle(
        &["infra_drift"],
        vec![plex.clone(), proxied(44, "media.example.com")],
    );
    log.cycle(
        &["infra_drift"],
        vec![plex, proxied(45, "media.example.com")],
    );
    let stuck = log.fold().findings().stuck(None);
    assert_eq!(stuck.drift_suspects.len(), 1, "{stuck:#?}");
    assert_eq!(
        stuck.drift_suspects[0].record.old_check_key,
        "proxied:domain:44"
    );
    assert_eq!(
        stuck.drift_suspects[0].record.new_check_key,
        "proxied:domain:45"
    );
    assert!(stuck.drift_suspects[0].old_active && stuck.drift_suspects[0].new_active);
}

// ---------------------------------------------------------------------------------------------
// Seed 000: seven issues at once, and dnd-backend's three layered bugs

fn crashloop(detail: &str) -> FindingObservation {
    FindingObservation {
        severity: Severity::Critical,
        title: "dnd-backend is in CrashLoopBackOff".into(),
        detail: Some(detail.into()),
        resource: pod("dnd", "dnd-backend-7c9f8d6b5-q2w4x"),
        ..obs("pod:crashloop:dnd/dnd-backend", "pods")
    }
}

fn deploy(version: &str, kind: ChangeKind) -> Payload {
    Payload::ChangeDeployed(ChangeDeployed {
        service: "dnd-backend".into(),
        version: version.into(),
        kind,
        link: None,
        summary: None,
        incident: None,
        check_keys: vec![],
    })
}

const BUG_1: &str = "RuntimeError: asyncio.run() cannot be called from a running event loop";
const BUG_2: &str = "DatatypeMismatch: column embedding is of type vector but default is ARRAY";
const BUG_3: &str = "InvalidTextRepresentation: invalid input value for enum campaign_status";
const IMPORT_ERROR: &str = "ImportError: cannot import name 'User' from 'app.models'";

#[test]
fn seven_issues_group_by_namespace_and_the_layers_of_dnd_backend_are_told_apart() {
    let mut log = Log::new();
    let longhorn = |key: &str, name: &str| FindingObservation {
        severity: Severity::Warning,
        resource: Some(ResourceRef {
            kind: "LonghornVolume".into(),
            namespace: Some("longhorn-system".into()),
            name: name.into(),
            uid: None,
        }),
        ..obs(key, "storage")
    };
    let prometheus = FindingObservation {
        severity: Severity::Warning,
        resource: pod("monitoring", "prometheus-0"),
        ..obs("pod:notready:monitoring/prometheus-0", "pods")
    };
    let everything = |detail: &str| {
        vec![
            crashloop(detail),
            longhorn("longhorn:replica_faulted:pvc-3f2a", "pvc-3f2a"),
            longhorn("longhorn:volume_degraded:pvc-3f2a", "pvc-3f2a"),
            prometheus.clone(),
        ]
    };
    log.cycle(&["pods", "storage"], everything(BUG_1));
    // The on-call declares the incident for the real work.
    log.push(Payload::IncidentOpened(IncidentChange {
        incident: "inc-2026-03-02-dnd".into(),
        title: Some("dnd-backend CrashLoopBackOff".into()),
        severity: Some(Severity::Critical),
        check_keys: vec!["pod:crashloop:dnd/dnd-backend".into()],
        summary: None,
    }));
    log.push(Payload::NoteAdded(NoteAdded {
        incident: Some("inc-2026-03-02-dnd".into()),
        author: "operator".into(),
        kind: NoteKind::Hypothesis,
        text: "asyncio.run() inside the running loop kills startup".into(),
        links: vec![],
        check_keys: vec![],
    }));
    log.push(deploy("sha-a1b2c3d", ChangeKind::Deploy));
    // Longhorn healed itself; Prometheus recovered behind it.
    log.cycle(&["pods", "storage"], vec![crashloop(BUG_2)]);
    log.push(deploy("sha-6c9c12b", ChangeKind::Rollback));
    log.cycle(&["pods", "storage"], vec![crashloop(BUG_2)]);
    // Further back the old code fails another way: the rollback's outcome, not a layer.
    log.push(deploy("sha-74dfd42", ChangeKind::Rollback));
    log.cycle(&["pods", "storage"], vec![crashloop(IMPORT_ERROR)]);
    // Rolling forward brings bug 2 back: that layer again, not a new one.
    log.push(deploy("sha-a1b2c3d", ChangeKind::Deploy));
    log.cycle(&["pods", "storage"], vec![crashloop(BUG_2)]);
    log.push(deploy("sha-e4f5a6b", ChangeKind::Deploy));
    log.cycle(&["pods", "storage"], vec![crashloop(BUG_3)]);
    log.push(deploy("sha-0d9e8f7", ChangeKind::Deploy));
    for _ in 0..3 {
        log.cycle(&["pods", "storage"], vec![]);
    }
    log.push(Payload::IncidentClosed(IncidentChange {
        incident: "inc-2026-03-02-dnd".into(),
        title: None,
        severity: None,
        check_keys: vec![],
        summary: Some("three layered bugs fixed in three PRs".into()),
    }));

    let fold = log.fold();
    let p = fold.projections();
    let views = p.incidents().views(p.findings(), None, false);
    let ids: Vec<&str> = views.iter().map(|v| v.id.as_str()).collect();
    // The dnd crash loop opened an automatic incident (absorbed by the declared one, so not
    // listed); Longhorn's two findings share a namespace; Prometheus is on its own.
    assert_eq!(
        ids,
        ["auto-pw-prod-1-2", "auto-pw-prod-1-3", "inc-2026-03-02-dnd"]
    );
    let absorbed = p.incidents().incident("auto-pw-prod-1").unwrap();
    assert_eq!(absorbed.merged_into.as_deref(), Some("inc-2026-03-02-dnd"));
    let dnd = views
        .iter()
        .find(|v| v.id == "inc-2026-03-02-dnd")
        .expect("the declared incident");
    assert_eq!(dnd.kind, IncidentKind::Explicit);
    assert_eq!(dnd.state, IncidentState::Closed);
    assert_eq!(dnd.severity, Severity::Critical);
    assert_eq!(dnd.notes.get("hypothesis"), Some(&1));
    let automatic: Vec<_> = views
        .iter()
        .filter(|v| v.kind == IncidentKind::Automatic)
        .collect();
    assert_eq!(automatic.len(), 2, "{automatic:#?}");
    let storage = automatic
        .iter()
        .find(|v| v.findings.len() == 2)
        .expect("longhorn's findings grouped");
    assert!(
        storage
            .findings
            .iter()
            .all(|f| f.check_key.starts_with("longhorn:"))
    );
    assert_eq!(storage.state, IncidentState::Closed);

    // Layer by layer.
    assert_eq!(dnd.layers.len(), 1, "{:#?}", dnd.layers);
    let layers = &dnd.layers[0];
    assert_eq!(layers.resource, "Pod dnd/dnd-backend");
    let signatures: Vec<&str> = layers.layers.iter().map(|l| l.signature.as_str()).collect();
    assert_eq!(signatures, [BUG_1, BUG_2, BUG_3]);
    assert_eq!(
        layers.layers[1].after_change.as_ref().unwrap().version,
        "sha-a1b2c3d"
    );
    assert_eq!(
        layers.layers[1].changes_without_effect[0].version, "sha-6c9c12b",
        "the rollback crashed with the same error"
    );
    let different = &layers.layers[1].failed_differently;
    assert_eq!(different.len(), 1, "{different:#?}");
    assert_eq!(different[0].change.version, "sha-74dfd42");
    assert_eq!(different[0].change.kind, ChangeKind::Rollback);
    assert_eq!(different[0].signature, IMPORT_ERROR);
    let again: Vec<&str> = layers.layers[1]
        .seen_again_after
        .iter()
        .map(|c| c.version.as_str())
        .collect();
    assert_eq!(
        again,
        ["sha-a1b2c3d"],
        "the roll-forward brought bug 2 back"
    );
    assert_eq!(layers.current_layer, 3);
    assert!(!layers.diverted_by_rollback);
    assert_eq!(
        layers.layers[2].after_change.as_ref().unwrap().version,
        "sha-e4f5a6b"
    );

    // Its timeline: every event that touched it, in log order.
    let incident = p.incidents().incident("inc-2026-03-02-dnd").unwrap();
    let timeline = p.incidents().timeline(&incident);
    let seqs: Vec<u64> = timeline.iter().map(|e| e.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(seqs, sorted);
    let changes: Vec<&str> = timeline
        .iter()
        .flat_map(|e| e.touches.iter().map(|t| t.change.as_str()))
        .collect();
    for expected in [
        "opened",
        "incident_opened",
        "merged",
        "note_hypothesis",
        "deploy",
        "layer",
        "rollback",
        "no_effect",
        "failed_differently",
        "layer_again",
        "resolved_auto",
        "incident_closed",
    ] {
        assert!(
            changes.contains(&expected),
            "{expected} missing from {changes:?}"
        );
    }
}

/// Seed 000's sweep with the inventory that puts Prometheus' PVC on the Longhorn volume.
fn sweep_inventory() -> Payload {
    let resource =
        |uid: &str, kind: &str, namespace: &str, name: &str, uses: &[&str]| InventoryResource {
            uid: uid.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
            owners: vec![],
            uses: uses.iter().map(|u| (*u).to_owned()).collect(),
        };
    Payload::InventoryObserved(InventoryObserved {
        scan: "s-1".into(),
        kinds: vec![
            "Pod".into(),
            "PersistentVolumeClaim".into(),
            "LonghornVolume".into(),
        ],
        resources: vec![
            resource("lv-1", "LonghornVolume", "longhorn-system", "pvc-3f2a", &[]),
            resource(
                "pvc-1",
                "PersistentVolumeClaim",
                "monitoring",
                "prometheus-db-0",
                &["lv-1"],
            ),
            resource("pod-1", "Pod", "monitoring", "prometheus-0", &["pvc-1"]),
        ],
    })
}

fn sweep_findings() -> Vec<FindingObservation> {
    let warning = |key: &str, category: &str, resource: Option<ResourceRef>| FindingObservation {
        severity: Severity::Warning,
        resource,
        ..obs(key, category)
    };
    vec![
        warning(
            "pod:timeout:longhorn-system/instance-manager",
            "pods",
            pod("longhorn-system", "instance-manager-e-7d41"),
        ),
        warning(
            "pod:notready:monitoring/prometheus",
            "pods",
            pod("monitoring", "prometheus-0"),
        ),
        warning(
            "job:stale:cardboard/postgres-backup",
            "jobs",
            Some(ResourceRef {
                kind: "Job".into(),
                namespace: Some("cardboard".into()),
                name: "postgres-backup".into(),
                uid: None,
            }),
        ),
        warning(
            "pod:liveness:livekit/livekit",
            "pods",
            pod("livekit", "livekit-0"),
        ),
        FindingObservation {
            severity: Severity::Error,
            ..warning(
                "longhorn:replica_faulted:pvc-3f2a",
                "storage",
                Some(ResourceRef {
                    kind: "LonghornVolume".into(),
                    namespace: Some("longhorn-system".into()),
                    name: "pvc-3f2a".into(),
                    uid: None,
                }),
            )
        },
        warning("pod:readiness:media/plex", "pods", pod("media", "plex-0")),
        crashloop(BUG_1),
    ]
}

fn sweep_incidents(findings: Vec<FindingObservation>) -> Vec<tidemark_core::incidents::Incident> {
    let mut log = Log::new();
    log.push(sweep_inventory());
    log.cycle(&["pods", "jobs", "storage"], findings);
    let fold = log.fold();
    fold.projections()
        .incidents()
        .incidents()
        .into_iter()
        .map(std::borrow::Cow::into_owned)
        .collect()
}

/// Seed 000 lines 12 and 19: Prometheus is "Longhorn-dependent" and recovers behind it. The
/// graph connects its pod to the Longhorn volume, so it lands with the replica fault (and the
/// instance-manager, same namespace as the volume), whatever order the sweep lists them in.
#[test]
fn prometheus_lands_with_the_longhorn_replica_fault() {
    let incidents = sweep_incidents(sweep_findings());
    let grouped: Vec<(&str, Vec<&str>)> = incidents
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.findings.iter().map(|f| f.check_key.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        grouped,
        [
            ("auto-pw-prod-2", vec!["pod:crashloop:dnd/dnd-backend"]),
            (
                "auto-pw-prod-2-2",
                vec![
                    "longhorn:replica_faulted:pvc-3f2a",
                    "pod:notready:monitoring/prometheus",
                    "pod:timeout:longhorn-system/instance-manager",
                ]
            ),
            (
                "auto-pw-prod-2-3",
                vec!["job:stale:cardboard/postgres-backup"]
            ),
            ("auto-pw-prod-2-4", vec!["pod:liveness:livekit/livekit"]),
            ("auto-pw-prod-2-5", vec!["pod:readiness:media/plex"]),
        ]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The findings one event opens are grouped as a whole: any order of the sweep gives the
    /// same incidents, ids, findings, timelines and layers included.
    #[test]
    fn permuting_the_findings_of_a_cycle_gives_the_same_incidents(
        shuffled in proptest::strategy::Strategy::prop_shuffle(
            proptest::strategy::Just(sweep_findings())
        )
    ) {
        proptest::prop_assert_eq!(sweep_incidents(shuffled), sweep_incidents(sweep_findings()));
    }
}

/// Seed 002 line 29: adspy-80015 fails intermittently during the outage the explicit incident
/// declares. It opens while the named bots still crash-loop in the same namespace: the explicit
/// incident takes it, no automatic incident opens. A finding in another namespace, or one that
/// opens after the named findings resolved, is not taken.
#[test]
fn an_open_explicit_incident_takes_a_new_finding_next_to_its_failing_findings() {
    let bot = |name: &str| FindingObservation {
        severity: Severity::Critical,
        resource: pod("isolated", &format!("flexus-pod-bot-{name}-rx-0")),
        ..obs(
            &format!("pod:crashloop:isolated/flexus-pod-bot-{name}"),
            "pods",
        )
    };
    let elsewhere = FindingObservation {
        severity: Severity::Critical,
        resource: pod("billing", "invoice-0"),
        ..obs("pod:crashloop:billing/invoice", "pods")
    };
    let mut log = Log::new();
    log.cycle(&["pods"], vec![bot("admonster-20045"), bot("boss-20045")]);
    log.push(Payload::IncidentOpened(IncidentChange {
        incident: "inc-graphql".into(),
        title: Some("Bot platform outage".into()),
        severity: Some(Severity::Critical),
        check_keys: vec![
            "pod:crashloop:isolated/flexus-pod-bot-admonster-20045".into(),
            "pod:crashloop:isolated/flexus-pod-bot-boss-20045".into(),
        ],
        summary: None,
    }));
    // Hours later (far outside the grouping window of the first openings) the bots still fail.
    for _ in 0..24 {
        log.cycle(&["pods"], vec![bot("admonster-20045"), bot("boss-20045")]);
    }
    log.cycle(
        &["pods"],
        vec![
            bot("admonster-20045"),
            bot("boss-20045"),
            bot("adspy-80015"),
            elsewhere.clone(),
        ],
    );
    let fold = log.fold();
    let p = fold.projections();
    let explicit = p.incidents().incident("inc-graphql").unwrap();
    let keys: Vec<&str> = explicit
        .findings
        .iter()
        .map(|f| f.check_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "pod:crashloop:isolated/flexus-pod-bot-admonster-20045",
            "pod:crashloop:isolated/flexus-pod-bot-boss-20045",
            "pod:crashloop:isolated/flexus-pod-bot-adspy-80015",
        ]
    );
    let incidents = p.incidents().incidents();
    let automatic: Vec<Vec<&str>> = incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::Automatic && i.merged_into.is_none())
        .map(|i| i.findings.iter().map(|f| f.check_key.as_str()).collect())
        .collect();
    assert_eq!(automatic, [vec!["pod:crashloop:billing/invoice"]]);

    // Once the named findings have resolved, a new bot failure is a new story.
    let mut later = Log::new();
    later.cycle(&["pods"], vec![bot("admonster-20045")]);
    later.push(Payload::IncidentOpened(IncidentChange {
        incident: "inc-graphql".into(),
        title: None,
        severity: None,
        check_keys: vec!["pod:crashloop:isolated/flexus-pod-bot-admonster-20045".into()],
        summary: None,
    }));
    for _ in 0..4 {
        later.cycle(&["pods"], vec![]);
    }
    later.cycle(&["pods"], vec![bot("adspy-80015")]);
    let fold = later.fold();
    let p = fold.projections();
    let explicit = p.incidents().incident("inc-graphql").unwrap();
    assert_eq!(explicit.findings.len(), 1, "{:#?}", explicit.findings);
    assert!(
        p.incidents()
            .incidents()
            .iter()
            .any(|i| i.kind == IncidentKind::Automatic
                && i.merged_into.is_none()
                && i.findings[0].check_key.ends_with("adspy-80015"))
    );
}

/// A snapshot holds the state and nothing derived: the one read back from its bytes equals the
/// snapshot of the live state it was written from, incidents included (whose indexes by id, by
/// finding and of open incidents are rebuilt on restore, not stored).
#[test]
fn a_decoded_snapshot_equals_the_live_one_incidents_included() {
    let mut log = Log::new();
    log.cycle(&["pods"], vec![crashloop(BUG_1)]);
    log.push(Payload::IncidentOpened(IncidentChange {
        incident: "inc-dnd".into(),
        title: Some("dnd-backend CrashLoopBackOff".into()),
        severity: Some(Severity::Critical),
        check_keys: vec!["pod:crashloop:dnd/dnd-backend".into()],
        summary: None,
    }));
    log.push(deploy("sha-a1b2c3d", ChangeKind::Deploy));
    log.cycle(&["pods"], vec![crashloop(BUG_2)]);
    let fold = log.fold();
    let live = fold.projections().snapshot();
    assert!(
        !fold.projections().incidents().incidents().is_empty(),
        "the log opens incidents"
    );

    let json = serde_json::to_string(&live).unwrap();
    let decoded: tidemark_core::ProjectionsSnapshot = serde_json::from_str(&json).unwrap();
    assert!(
        decoded.incidents == live.incidents,
        "the incidents read back differ from the live ones"
    );
    assert!(
        decoded == live,
        "the snapshot read back differs from the live one"
    );
    assert!(
        tidemark_core::Projections::restore_owned(decoded).snapshot() == live,
        "restoring the snapshot read back gives another state"
    );
}

/// A page, the positions and the whole timeline agree, at every cursor and limit.
#[test]
fn pages_and_positions_are_slices_of_the_whole_timeline() {
    let mut projections = tidemark_core::Projections::new();
    for (i, kind) in [
        "incident.opened",
        "note.added",
        "note.added",
        "incident.closed",
    ]
    .iter()
    .enumerate()
    {
        let data = if kind.starts_with("note") {
            r#"{"incident":"inc-1","author":"ana","kind":"observation","text":"looking"}"#
        } else {
            r#"{"incident":"inc-1","title":"down"}"#
        };
        let event = tidemark_core::decode_event(&format!(
            r#"{{"id":"t-{i}","schema":1,"type":"{kind}","time":"2026-03-02T10:0{i}:00Z","source":"op","cluster":"c1","data":{data}}}"#
        ))
        .unwrap();
        projections.apply(i as u64 + 1, &event);
    }
    let incidents = projections.incidents();
    let incident = incidents.incident("inc-1").unwrap();
    let whole = incidents.timeline(&incident);
    assert_eq!(whole.len(), 4);
    assert_eq!(incidents.timeline_len(&incident), 4);
    for after in 0..=5 {
        for limit in 0..=5 {
            let (page, more) = incidents.timeline_page(&incident, after, limit);
            let rest: Vec<&tidemark_core::incidents::IncidentEntry> =
                whole.iter().filter(|e| e.seq > after).collect();
            assert_eq!(
                page.iter().collect::<Vec<_>>(),
                rest[..limit.min(rest.len())]
            );
            assert_eq!(more, rest.len() > limit, "after {after}, limit {limit}");
            let positions: Vec<u64> = page.iter().map(|e| e.seq).collect();
            assert_eq!(
                incidents.timeline_positions(&incident, after, limit),
                positions
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ADR 0007: changes during an incident

/// A change of `service` in the log's cluster, linked to nothing unless `check_keys` or
/// `incident` say so.
fn change_of(
    service: &str,
    version: &str,
    kind: ChangeKind,
    incident: Option<&str>,
    check_keys: &[&str],
) -> Payload {
    Payload::ChangeDeployed(ChangeDeployed {
        service: service.into(),
        version: version.into(),
        kind,
        link: None,
        summary: None,
        incident: incident.map(str::to_owned),
        check_keys: check_keys.iter().map(|k| (*k).to_owned()).collect(),
    })
}

/// An alert's notification with these labels, started when the log is now.
fn alert_notification(log: &Log, name: &str, fired: bool, labels: &[(&str, &str)]) -> Payload {
    let alert = Alert {
        fingerprint: format!("{name}-fp"),
        name: name.into(),
        severity: Severity::Critical,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        annotations: Default::default(),
        starts_at: at(log.secs),
        ends_at: None,
    };
    if fired {
        Payload::AlertFired(alert)
    } else {
        Payload::AlertResolved(Alert {
            ends_at: Some(at(log.secs)),
            ..alert
        })
    }
}

/// The change touches of an incident's timeline: (log position, change).
fn change_touches(fold: &LogFold, id: &str) -> Vec<(u64, String)> {
    let p = fold.projections();
    let incident = p
        .incidents()
        .incident(id)
        .unwrap_or_else(|| panic!("no incident {id}"));
    p.incidents()
        .timeline(&incident)
        .iter()
        .flat_map(|e| e.touches.iter().map(move |t| (e.seq, t)))
        .filter(|(_, t)| {
            let kind = t.change.trim_end_matches("_during");
            matches!(kind, "deploy" | "rollback" | "config")
        })
        .map(|(seq, t)| (seq, t.change.clone()))
        .collect()
}

/// The issue's example: `checkout-api sha-51f00d7` is deployed while a checkout-api crash loop
/// is open, naming no incident and no check key, and no finding's resource is its workload (the
/// pods are the `checkout` Deployment's; the alerts name a namespace or nothing). Every open
/// incident of the cluster has it on its timeline as `deploy_during`, linked only by time: the
/// automatic one of the cycle's finding, the automatic one of a namespace alert and a declared
/// one holding an alert that names no resource. A change before they opened, after they
/// closed, or in another cluster is on none; explicitly and resource-linked ones stay as they
/// were (`rollback`, `config`), and are linked only by time on the others.
#[test]
fn every_change_of_the_cluster_while_an_incident_is_open_is_on_its_timeline() {
    const CRASH: &str = "pod:crashloop:shop/checkout";
    let crashloop = FindingObservation {
        severity: Severity::Critical,
        title: "checkout-api is in CrashLoopBackOff".into(),
        resource: pod("shop", "checkout-7d9f8b6c5-q2w4x"),
        ..obs(CRASH, "pods")
    };
    let mut log = Log::new();
    // Seq 1: before any incident.
    log.push(change_of(
        "checkout-api",
        "sha-0aa11bb",
        ChangeKind::Deploy,
        None,
        &[],
    ));
    // Seq 2: the crash loop opens auto-pw-prod-2.
    log.cycle(&["pods"], vec![crashloop.clone()]);
    // Seq 3: an alert naming only its namespace opens auto-pw-prod-3 (no namespace shared).
    let errors = alert_notification(&log, "CheckoutErrors", true, &[("namespace", "payments")]);
    log.push(errors);
    // Seq 4 and 5: an alert naming nothing (no automatic incident) and a declared incident on it.
    let latency = alert_notification(&log, "CheckoutLatency", true, &[("team", "web")]);
    log.push(latency);
    let latency_key =
        tidemark_core::findings::alert_check_key("CheckoutLatency", "CheckoutLatency-fp");
    log.push(Payload::IncidentOpened(IncidentChange {
        incident: "inc-checkout-latency".into(),
        title: Some("checkout is slow".into()),
        severity: Some(Severity::Critical),
        check_keys: vec![latency_key.clone()],
        summary: None,
    }));
    // Seq 6: the issue's deploy, linked to nothing.
    log.push(change_of(
        "checkout-api",
        "sha-51f00d7",
        ChangeKind::Deploy,
        None,
        &[],
    ));
    // Seq 7: a rollback naming the crash loop's check key; seq 8: a config change of the
    // crash-looping workload; seq 9: a deploy in another cluster.
    log.push(change_of(
        "checkout-api",
        "sha-0aa11bb",
        ChangeKind::Rollback,
        None,
        &[CRASH],
    ));
    log.push(change_of(
        "checkout",
        "memory-1Gi",
        ChangeKind::Config,
        None,
        &[],
    ));
    let staging = format!("e{}", log.events.len());
    let staging = event(
        &staging,
        "pw-staging",
        log.secs,
        change_of("checkout-api", "sha-51f00d7", ChangeKind::Deploy, None, &[]),
    );
    log.events.push(staging);
    // Seq 10: the crash loop again, after the config change: it had no effect. Seq 11: a deploy
    // of another service, linked to nothing; seq 12: the crash loop again (that deploy armed
    // nothing, so nothing is judged).
    log.cycle(&["pods"], vec![crashloop.clone()]);
    log.push(change_of(
        "cart-api",
        "sha-2b3c4d5",
        ChangeKind::Deploy,
        None,
        &[],
    ));
    log.cycle(&["pods"], vec![crashloop.clone()]);
    // Everything ends: the alerts resolve, the declared incident closes, the crash loop
    // auto-resolves after its clean cycles.
    let errors = alert_notification(&log, "CheckoutErrors", false, &[("namespace", "payments")]);
    log.push(errors);
    let latency = alert_notification(&log, "CheckoutLatency", false, &[("team", "web")]);
    log.push(latency);
    log.push(Payload::IncidentClosed(IncidentChange {
        incident: "inc-checkout-latency".into(),
        title: None,
        severity: None,
        check_keys: vec![],
        summary: None,
    }));
    for _ in 0..5 {
        log.cycle(&["pods"], vec![]);
    }
    // After they all closed.
    log.push(change_of(
        "checkout-api",
        "sha-9ff8e7d",
        ChangeKind::Deploy,
        None,
        &[],
    ));
    let fold = log.fold();
    let p = fold.projections();
    for id in ["auto-pw-prod-2", "auto-pw-prod-3", "inc-checkout-latency"] {
        let incident = p.incidents().incident(id).unwrap();
        assert_eq!(
            p.incidents().view(&incident, p.findings()).state,
            IncidentState::Closed,
            "{id}"
        );
    }
    let owned = |touches: &[(u64, &str)]| -> Vec<(u64, String)> {
        touches.iter().map(|(s, c)| (*s, (*c).to_owned())).collect()
    };
    assert_eq!(
        change_touches(&fold, "auto-pw-prod-2"),
        owned(&[
            (6, "deploy_during"),
            (7, "rollback"),
            (8, "config"),
            (11, "deploy_during")
        ]),
        "the crash loop: the issue's deploy by time, the rollback explicitly, the config change \
         by resource"
    );
    for id in ["auto-pw-prod-3", "inc-checkout-latency"] {
        assert_eq!(
            change_touches(&fold, id),
            owned(&[
                (6, "deploy_during"),
                (7, "rollback_during"),
                (8, "config_during"),
                (11, "deploy_during")
            ]),
            "{id}: alerts name no workload, every change is linked by time"
        );
    }
    // Linked only by time arms nothing: the crash loop after the config change is judged
    // against it, after the deploy of cart-api against nothing.
    let crash = p.incidents().incident("auto-pw-prod-2").unwrap();
    let judged: Vec<u64> = p
        .incidents()
        .timeline(&crash)
        .iter()
        .filter(|e| e.touches.iter().any(|t| t.change == "no_effect"))
        .map(|e| e.seq)
        .collect();
    assert_eq!(judged, [10]);
    let without_effect: Vec<u64> = crash
        .layers
        .values()
        .flat_map(|l| &l.layers)
        .flat_map(|l| &l.changes_without_effect)
        .map(|c| c.seq)
        .collect();
    assert_eq!(without_effect, [8]);
}
