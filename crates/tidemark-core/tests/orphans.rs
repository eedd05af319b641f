//! The orphans projection: scenarios from the seeds, and properties over random logs.
//! One file because every scenario and property drives the same graph and span rules; each test
//! is a self-contained story.
//!
//! Each property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES=N` runs more or fewer cases than the defaults here.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use support::{assert_property, at, event, note};
use tidemark_core::event::{
    InventoryObserved, InventoryResource, ResourceRef, SettingsChanged, SpanRecorded, SpanStatus,
    Tracking,
};
use tidemark_core::orphans::{OrphanKind, OrphanProjection, OrphanView, OrphansSnapshot, Relation};
use tidemark_core::{ClusterSettings, Event, Payload};

const C: &str = "pw-prod";

// ---------------------------------------------------------------------------------------------
// Builders and a fold that keeps each cluster's settings the way the store does

fn res(uid: &str, kind: &str, ns: Option<&str>, name: &str) -> InventoryResource {
    InventoryResource {
        uid: uid.to_owned(),
        kind: kind.to_owned(),
        namespace: ns.map(str::to_owned),
        name: name.to_owned(),
        owners: vec![],
        uses: vec![],
    }
}

fn owned(mut r: InventoryResource, owners: &[&str]) -> InventoryResource {
    r.owners = owners.iter().map(|o| (*o).to_owned()).collect();
    r
}

fn using(mut r: InventoryResource, uses: &[&str]) -> InventoryResource {
    r.uses = uses.iter().map(|u| (*u).to_owned()).collect();
    r
}

fn scan(
    id: &str,
    cluster: &str,
    secs: i64,
    kinds: &[&str],
    resources: Vec<InventoryResource>,
) -> Event {
    event(
        id,
        cluster,
        secs,
        Payload::InventoryObserved(InventoryObserved {
            scan: format!("scan-{id}"),
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            resources,
        }),
    )
}

fn tracking(kind: &str, key: &str, uid: Option<&str>) -> Tracking {
    Tracking {
        kind: kind.to_owned(),
        key: key.to_owned(),
        uid: uid.map(str::to_owned),
    }
}

fn track(id: &str, secs: i64, kind: &str, key: &str, uid: Option<&str>) -> Event {
    event(
        id,
        C,
        secs,
        Payload::TrackingUpserted(tracking(kind, key, uid)),
    )
}

fn untrack(id: &str, secs: i64, kind: &str, key: &str) -> Event {
    event(
        id,
        C,
        secs,
        Payload::TrackingDeleted(tracking(kind, key, None)),
    )
}

fn span(id: &str, secs: i64, trace: &str, span: &str, parent: Option<&str>, name: &str) -> Event {
    event(
        id,
        C,
        secs,
        Payload::SpanRecorded(SpanRecorded {
            trace_id: trace.to_owned(),
            span_id: span.to_owned(),
            parent_span_id: parent.map(str::to_owned),
            name: name.to_owned(),
            service: "langgraph-agents".to_owned(),
            start: at(secs),
            end: Some(at(secs + 1)),
            status: SpanStatus::Ok,
        }),
    )
}

fn confirm_scans(id: &str, cluster: &str, secs: i64, n: u32) -> Event {
    event(
        id,
        cluster,
        secs,
        Payload::SettingsChanged(SettingsChanged {
            orphan_confirm_scans: Some(n),
            ..Default::default()
        }),
    )
}

/// The projection plus what its caller keeps: positions and each cluster's settings.
#[derive(Clone, Debug, Default)]
struct Fold {
    projection: OrphanProjection,
    settings: BTreeMap<String, ClusterSettings>,
    seq: u64,
}

impl Fold {
    fn apply(&mut self, event: &Event) -> u64 {
        self.seq += 1;
        let settings = self.settings.entry(event.cluster.clone()).or_default();
        if let Payload::SettingsChanged(change) = &event.payload {
            settings.apply(change);
        }
        self.projection.apply(self.seq, event, settings);
        self.seq
    }

    fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            self.apply(e);
        }
    }

    fn orphans(&self) -> Vec<OrphanView> {
        self.projection.orphans(Some(C))
    }

    fn candidates(&self) -> Vec<OrphanView> {
        self.projection.candidates(Some(C))
    }

    fn snapshot(&self) -> OrphansSnapshot {
        self.projection.snapshot()
    }

    /// A fold resumed from this one's snapshot (settings and positions carried by the caller).
    fn resumed(&self) -> Self {
        Self {
            projection: OrphanProjection::restore(&self.projection.snapshot()),
            settings: self.settings.clone(),
            seq: self.seq,
        }
    }
}

fn uid_of(view: &OrphanView) -> Option<&str> {
    view.resource.as_ref().and_then(|r| r.uid.as_deref())
}

fn find<'a>(views: &'a [OrphanView], kind: OrphanKind, uid: &str) -> Option<&'a OrphanView> {
    views
        .iter()
        .find(|v| v.kind == kind && uid_of(v) == Some(uid))
}

// ---------------------------------------------------------------------------------------------
// 1. A PVC no pod uses

#[test]
fn pvc_without_consumer_is_a_candidate_then_confirmed_on_the_second_scan() {
    let kinds = ["Pod", "PersistentVolumeClaim"];
    let mut fold = Fold::default();
    let first = scan(
        "s1",
        C,
        60,
        &kinds,
        vec![
            res("pvc-data", "PersistentVolumeClaim", Some("dnd"), "dnd-data"),
            using(
                res("pod-1", "Pod", Some("dnd"), "dnd-backend"),
                &["pvc-used"],
            ),
            res("pvc-used", "PersistentVolumeClaim", Some("dnd"), "dnd-db"),
        ],
    );
    let first_seq = fold.apply(&first);
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
    let candidates = fold.candidates();
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    assert_eq!(candidates[0].kind, OrphanKind::Dangling);
    assert_eq!(uid_of(&candidates[0]), Some("pvc-data"));
    assert_eq!(candidates[0].scans, 1);

    fold.apply(&note("n1", C, 90));
    assert!(fold.orphans().is_empty(), "a note is not a scan");

    let second = scan(
        "s2",
        C,
        120,
        &kinds,
        vec![
            using(
                res("pod-1", "Pod", Some("dnd"), "dnd-backend"),
                &["pvc-used"],
            ),
            res("pvc-used", "PersistentVolumeClaim", Some("dnd"), "dnd-db"),
            res("pvc-data", "PersistentVolumeClaim", Some("dnd"), "dnd-data"),
        ],
    );
    fold.apply(&second);
    let orphans = fold.orphans();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    let pvc = &orphans[0];
    assert_eq!(pvc.kind, OrphanKind::Dangling);
    assert_eq!(pvc.cluster, C);
    assert_eq!(
        pvc.resource,
        Some(ResourceRef {
            kind: "PersistentVolumeClaim".into(),
            namespace: Some("dnd".into()),
            name: "dnd-data".into(),
            uid: Some("pvc-data".into()),
        })
    );
    assert!(
        pvc.reason.contains("no live resource uses"),
        "{}",
        pvc.reason
    );
    assert_eq!(pvc.since, at(60));
    assert_eq!(pvc.since_seq, first_seq);
    assert_eq!(pvc.scans, 2);
    assert!(fold.candidates().is_empty());

    // A pod starts using it: gone at the next scan.
    fold.apply(&scan(
        "s3",
        C,
        180,
        &kinds,
        vec![
            using(
                res("pod-1", "Pod", Some("dnd"), "dnd-backend"),
                &["pvc-used", "pvc-data"],
            ),
            res("pvc-used", "PersistentVolumeClaim", Some("dnd"), "dnd-db"),
            res("pvc-data", "PersistentVolumeClaim", Some("dnd"), "dnd-data"),
        ],
    ));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
    assert!(fold.candidates().is_empty());
}

#[test]
fn a_streak_that_breaks_starts_again_from_one() {
    let kinds = ["PersistentVolumeClaim", "Pod"];
    let lonely = || vec![res("pvc", "PersistentVolumeClaim", Some("a"), "data")];
    let used = || {
        vec![
            res("pvc", "PersistentVolumeClaim", Some("a"), "data"),
            using(res("pod", "Pod", Some("a"), "p"), &["pvc"]),
        ]
    };
    let mut fold = Fold::default();
    fold.apply(&scan("s1", C, 0, &kinds, lonely()));
    fold.apply(&scan("s2", C, 60, &kinds, used()));
    let s3 = fold.apply(&scan("s3", C, 120, &kinds, lonely()));
    assert!(fold.orphans().is_empty());
    assert_eq!(fold.candidates()[0].since_seq, s3);
    fold.apply(&scan("s4", C, 180, &kinds, lonely()));
    assert_eq!(fold.orphans()[0].since, at(120));
}

// ---------------------------------------------------------------------------------------------
// 2. The race: an owner not observed yet

#[test]
fn owner_that_appears_within_one_scan_is_never_reported() {
    let kinds = ["Pod", "ReplicaSet"];
    let pod = || {
        owned(
            res("pod-1", "Pod", Some("dnd"), "web-7f9d-xk2p9"),
            &["rs-1"],
        )
    };
    let rs = || res("rs-1", "ReplicaSet", Some("dnd"), "web-7f9d");
    let mut fold = Fold::default();
    fold.apply(&scan("s1", C, 0, &kinds, vec![pod()]));
    let candidates = fold.candidates();
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    assert_eq!(uid_of(&candidates[0]), Some("pod-1"));
    assert!(
        candidates[0].reason.contains("owner rs-1"),
        "{}",
        candidates[0].reason
    );
    fold.apply(&scan("s2", C, 60, &kinds, vec![pod(), rs()]));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
    assert!(fold.candidates().is_empty(), "{:?}", fold.candidates());
    fold.apply(&scan("s3", C, 120, &kinds, vec![rs(), pod()]));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
}

#[test]
fn a_partial_scan_replaces_only_its_kinds() {
    let mut fold = Fold::default();
    fold.apply(&scan(
        "s1",
        C,
        0,
        &["Pod", "ReplicaSet"],
        vec![
            owned(res("pod-1", "Pod", Some("a"), "p1"), &["rs-1"]),
            res("rs-1", "ReplicaSet", Some("a"), "rs"),
        ],
    ));
    // Pods only: the ReplicaSet stays live; pod-1 is gone, pod-2 is new.
    fold.apply(&scan(
        "s2",
        C,
        60,
        &["Pod"],
        vec![owned(res("pod-2", "Pod", Some("a"), "p2"), &["rs-1"])],
    ));
    fold.apply(&scan("s3", C, 120, &["Pod"], vec![]));
    let graph = fold.projection.graph(Some(C));
    let uids: Vec<&str> = graph.nodes.iter().map(|n| n.uid.as_str()).collect();
    assert_eq!(uids, ["rs-1"]);
    // Now the ReplicaSet goes: an empty scan of its kind.
    fold.apply(&scan(
        "s4",
        C,
        180,
        &["Pod"],
        vec![owned(res("pod-3", "Pod", Some("a"), "p3"), &["rs-1"])],
    ));
    fold.apply(&scan("s5", C, 240, &["ReplicaSet"], vec![]));
    assert!(fold.orphans().is_empty(), "one scan without its owner");
    fold.apply(&scan("s6", C, 300, &["ReplicaSet"], vec![]));
    let orphans = fold.orphans();
    let pod = find(&orphans, OrphanKind::Dangling, "pod-3").expect("pod-3 lost its owner");
    assert!(
        pod.reason
            .contains("owner rs-1 (ReplicaSet a/rs) is not live"),
        "{}",
        pod.reason
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Orphans of orphans

#[test]
fn longhorn_replica_whose_volume_is_gone_is_reported_after_two_scans() {
    let kinds = ["LonghornVolume", "LonghornReplica"];
    let mut fold = Fold::default();
    fold.apply(&scan(
        "s0",
        C,
        0,
        &kinds,
        vec![
            res("vol-1", "LonghornVolume", Some("longhorn-system"), "pvc-42"),
            using(
                res(
                    "rep-1",
                    "LonghornReplica",
                    Some("longhorn-system"),
                    "pvc-42-r-1",
                ),
                &["vol-1"],
            ),
        ],
    ));
    assert!(fold.candidates().is_empty());
    let replica_only = || {
        vec![using(
            res(
                "rep-1",
                "LonghornReplica",
                Some("longhorn-system"),
                "pvc-42-r-1",
            ),
            &["vol-1"],
        )]
    };
    fold.apply(&scan("s1", C, 60, &kinds, replica_only()));
    assert!(fold.orphans().is_empty());
    assert_eq!(fold.candidates().len(), 1);
    fold.apply(&scan("s2", C, 120, &kinds, replica_only()));
    let orphans = fold.orphans();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    let replica = &orphans[0];
    assert_eq!(uid_of(replica), Some("rep-1"));
    assert_eq!(replica.kind, OrphanKind::Dangling);
    assert_eq!(
        replica.reason,
        "uses vol-1 (LonghornVolume longhorn-system/pvc-42), which is not live"
    );
    assert_eq!(replica.since, at(60));
}

#[test]
fn pod_of_a_replicaset_whose_deployment_is_gone_is_dangling_transitively() {
    let kinds = ["Deployment", "ReplicaSet", "Pod", "PersistentVolumeClaim"];
    let rs = || {
        owned(
            res("rs-1", "ReplicaSet", Some("dnd"), "web-7f9d"),
            &["dep-1"],
        )
    };
    let pod = || {
        using(
            owned(
                res("pod-1", "Pod", Some("dnd"), "web-7f9d-xk2p9"),
                &["rs-1"],
            ),
            &["pvc-1"],
        )
    };
    let pvc = || res("pvc-1", "PersistentVolumeClaim", Some("dnd"), "web-data");
    let mut fold = Fold::default();
    fold.apply(&scan(
        "s0",
        C,
        0,
        &kinds,
        vec![
            res("dep-1", "Deployment", Some("dnd"), "web"),
            rs(),
            pod(),
            pvc(),
        ],
    ));
    assert!(fold.candidates().is_empty(), "{:?}", fold.candidates());
    fold.apply(&scan("s1", C, 60, &kinds, vec![pod(), rs(), pvc()]));
    fold.apply(&scan("s2", C, 120, &kinds, vec![pvc(), rs(), pod()]));
    let orphans = fold.orphans();
    assert_eq!(orphans.len(), 2, "{orphans:?}");
    let rs_view = find(&orphans, OrphanKind::Dangling, "rs-1").expect("rs dangling");
    assert_eq!(
        rs_view.reason,
        "owner dep-1 (Deployment dnd/web) is not live"
    );
    let pod_view = find(&orphans, OrphanKind::Dangling, "pod-1").expect("pod dangling");
    assert_eq!(
        pod_view.reason,
        "owner rs-1 (ReplicaSet dnd/web-7f9d) is dangling: owner dep-1 (Deployment dnd/web) \
         is not live"
    );
    // Not through `uses`: the PVC the pod uses is not an orphan.
    assert!(find(&orphans, OrphanKind::Dangling, "pvc-1").is_none());

    // A ReplicaSet whose owner set loops back on itself is not dangling by the loop alone.
    let mut fold = Fold::default();
    for (i, secs) in [0, 60].into_iter().enumerate() {
        fold.apply(&scan(
            &format!("loop{i}"),
            C,
            secs,
            &kinds,
            vec![
                owned(res("a", "ReplicaSet", Some("x"), "a"), &["b"]),
                owned(res("b", "ReplicaSet", Some("x"), "b"), &["a"]),
            ],
        ));
    }
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
}

// ---------------------------------------------------------------------------------------------
// 4. Unmanaged and ghost (3a and 3b)

#[test]
fn unmanaged_ingressroute_is_confirmed_then_withdrawn_by_tracking_at_once() {
    let kinds = ["IngressRoute"];
    let live = || {
        vec![
            res("ir-plex", "IngressRoute", Some("media"), "plex"),
            res("ir-dnd", "IngressRoute", Some("dnd"), "dnd"),
        ]
    };
    let mut fold = Fold::default();
    fold.apply(&track(
        "t1",
        0,
        "IngressRoute",
        "ingressroute:dnd/dnd",
        None,
    ));
    fold.apply(&scan("s1", C, 60, &kinds, live()));
    assert!(fold.orphans().is_empty());
    assert_eq!(fold.candidates().len(), 1, "{:?}", fold.candidates());
    fold.apply(&scan("s2", C, 120, &kinds, live()));
    let orphans = fold.orphans();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    let plex = &orphans[0];
    assert_eq!(plex.kind, OrphanKind::Unmanaged);
    assert_eq!(uid_of(plex), Some("ir-plex"));
    assert!(plex.reason.contains("media/plex"), "{}", plex.reason);
    assert_eq!(plex.since, at(60));

    // The management database imports it: withdrawn before any scan.
    fold.apply(&track(
        "t2",
        130,
        "IngressRoute",
        "ingressroute:media/plex",
        None,
    ));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
    assert!(fold.candidates().is_empty());
    fold.apply(&scan("s3", C, 180, &kinds, live()));
    assert!(fold.orphans().is_empty());
    assert!(fold.candidates().is_empty());
    let graph = fold.projection.graph(Some(C));
    assert!(graph.nodes.iter().all(|n| n.tracked), "{graph:?}");

    // Deleting the row makes it unmanaged again, from the next scan on.
    fold.apply(&untrack(
        "t3",
        200,
        "IngressRoute",
        "ingressroute:media/plex",
    ));
    assert!(fold.candidates().is_empty());
    fold.apply(&scan("s4", C, 240, &kinds, live()));
    assert_eq!(fold.candidates().len(), 1);

    // Tracking by uid works too.
    fold.apply(&track(
        "t4",
        250,
        "IngressRoute",
        "anything",
        Some("ir-plex"),
    ));
    assert!(fold.candidates().is_empty());
}

#[test]
fn ghost_ingress_row_is_confirmed_after_two_scans_and_withdrawn_when_deleted() {
    let kinds = ["IngressRoute"];
    let live = || vec![res("ir-dnd", "IngressRoute", Some("dnd"), "dnd")];
    let mut fold = Fold::default();
    fold.apply(&track(
        "t1",
        0,
        "IngressRoute",
        "ingressroute:dnd/dnd",
        None,
    ));
    fold.apply(&track(
        "t2",
        0,
        "IngressRoute",
        "ingressroute:media/jellyfin",
        None,
    ));
    fold.apply(&track("t3", 0, "Node", "node:worker-9", None));
    // No scan yet: nothing is judged.
    fold.apply(&note("n0", C, 10));
    assert!(fold.candidates().is_empty());
    fold.apply(&scan("s1", C, 60, &kinds, live()));
    let candidates = fold.candidates();
    assert_eq!(candidates.len(), 1, "{candidates:?}");
    assert_eq!(candidates[0].kind, OrphanKind::Ghost);
    fold.apply(&scan("s2", C, 120, &kinds, live()));
    let orphans = fold.orphans();
    assert_eq!(
        orphans.len(),
        1,
        "the Node kind is never scanned: {orphans:?}"
    );
    let ghost = &orphans[0];
    assert_eq!(ghost.kind, OrphanKind::Ghost);
    let row = ghost.tracking.as_ref().expect("a ghost names its row");
    assert_eq!(
        (row.kind.as_str(), row.key.as_str()),
        ("IngressRoute", "ingressroute:media/jellyfin")
    );
    assert!(ghost.reason.contains("media/jellyfin"), "{}", ghost.reason);
    assert_eq!(ghost.since, at(60));
    let graph = fold.projection.graph(Some(C));
    assert!(
        graph
            .nodes
            .iter()
            .any(|n| n.orphan == Some(OrphanKind::Ghost) && !n.live && n.name == "jellyfin"),
        "{graph:?}"
    );

    fold.apply(&untrack(
        "t4",
        130,
        "IngressRoute",
        "ingressroute:media/jellyfin",
    ));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());

    // A row for a resource that does come back is withdrawn as soon as it is upserted again
    // with the live uid.
    fold.apply(&track(
        "t5",
        140,
        "IngressRoute",
        "ingressroute:media/x",
        None,
    ));
    fold.apply(&scan("s3", C, 180, &kinds, live()));
    fold.apply(&scan("s4", C, 240, &kinds, live()));
    assert_eq!(fold.orphans().len(), 1);
    fold.apply(&track(
        "t6",
        250,
        "IngressRoute",
        "ingressroute:media/x",
        Some("ir-dnd"),
    ));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
}

#[test]
fn a_kind_without_tracking_rows_is_never_unmanaged() {
    let kinds = ["IngressRoute", "Node", "Deployment", "ReplicaSet"];
    let live = || {
        vec![
            res("ir-plex", "IngressRoute", Some("media"), "plex"),
            res("node-1", "Node", None, "worker-1"),
            res("dep-1", "Deployment", Some("a"), "web"),
            owned(res("rs-1", "ReplicaSet", Some("a"), "web-1"), &["dep-1"]),
        ]
    };
    let mut fold = Fold::default();
    for (i, secs) in [0, 60, 120].into_iter().enumerate() {
        fold.apply(&scan(&format!("s{i}"), C, secs, &kinds, live()));
    }
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
    assert!(fold.candidates().is_empty());

    // Deployments become tracked (not this one): only the root is unmanaged, not its ReplicaSet.
    fold.apply(&track("t1", 130, "Deployment", "deployment:a/api", None));
    fold.apply(&track("t2", 130, "ReplicaSet", "replicaset:a/other", None));
    fold.apply(&track("t3", 130, "Node", "node:worker-1", None));
    fold.apply(&scan("s3", C, 180, &kinds, live()));
    fold.apply(&scan("s4", C, 240, &kinds, live()));
    let orphans = fold.orphans();
    let unmanaged: Vec<&str> = orphans
        .iter()
        .filter(|v| v.kind == OrphanKind::Unmanaged)
        .filter_map(uid_of)
        .collect();
    assert_eq!(unmanaged, ["dep-1"], "{orphans:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Seed 004: worker spans with no ingress root

const TRACE: &str = "019e649c5b0dd1cde425877f0b28cc14";
const INGRESS: &str = "9f00c0ffee000001";

#[test]
fn worker_spans_whose_ingress_root_was_never_recorded_are_orphans_after_the_grace_period() {
    let mut fold = Fold::default();
    fold.apply(&span(
        "w1",
        0,
        TRACE,
        "a1b2c3d4e5f60718",
        Some(INGRESS),
        "triager",
    ));
    fold.apply(&span(
        "w2",
        5,
        TRACE,
        "a1b2c3d4e5f60719",
        Some(INGRESS),
        "worker",
    ));
    fold.apply(&span(
        "w3",
        10,
        TRACE,
        "a1b2c3d4e5f6071a",
        Some("a1b2c3d4e5f60719"),
        "tool",
    ));
    fold.apply(&note("n1", C, 200));
    fold.apply(&note("n2", C, 309));
    assert!(fold.orphans().is_empty(), "still in the grace period");
    let due = fold.apply(&note("n3", C, 310));
    let orphans = fold.orphans();
    assert_eq!(orphans.len(), 3, "{orphans:#?}");
    let spans: Vec<&str> = orphans
        .iter()
        .filter(|v| v.kind == OrphanKind::OrphanSpan)
        .map(|v| v.span.as_ref().expect("span").span_id.as_str())
        .collect();
    assert_eq!(spans, ["a1b2c3d4e5f60718", "a1b2c3d4e5f60719"]);
    for v in &orphans {
        assert_eq!(v.trace_id.as_deref(), Some(TRACE));
        assert_eq!((v.since, v.since_seq, v.scans), (at(310), due, 0));
    }
    let orphan_span = &orphans[0];
    assert_eq!(
        orphan_span.reason,
        format!("parent span {INGRESS} is not in trace {TRACE}")
    );
    let rootless = orphans
        .iter()
        .find(|v| v.kind == OrphanKind::RootlessTrace)
        .expect("rootless trace");
    assert!(
        rootless.reason.contains("no root span"),
        "{}",
        rootless.reason
    );
    assert!(fold.candidates().is_empty(), "span orphans need no scans");

    // The ingress span arrives late: the trace re-opens, its orphans are withdrawn at once,
    // and once quiet again it is complete.
    fold.apply(&span("i1", 400, TRACE, INGRESS, None, "ingress"));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
    fold.apply(&note("n4", C, 699));
    assert!(fold.orphans().is_empty());
    fold.apply(&note("n5", C, 700));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());
}

#[test]
fn a_late_span_that_does_not_complete_the_trace_reports_again_when_quiet() {
    let mut fold = Fold::default();
    fold.apply(&span("w1", 0, TRACE, "s1", Some(INGRESS), "worker"));
    fold.apply(&note("n1", C, 300));
    assert_eq!(fold.orphans().len(), 2);
    fold.apply(&span("w2", 350, TRACE, "s2", Some("s1"), "tool"));
    assert!(fold.orphans().is_empty());
    fold.apply(&note("n2", C, 649));
    assert!(fold.orphans().is_empty());
    let due = fold.apply(&note("n3", C, 650));
    let orphans = fold.orphans();
    assert_eq!(orphans.len(), 2, "{orphans:?}");
    assert!(orphans.iter().all(|v| v.since_seq == due));
}

#[test]
fn a_complete_trace_reports_nothing_and_grace_follows_the_settings() {
    let mut fold = Fold::default();
    fold.apply(&span("r", 0, TRACE, "root", None, "ingress"));
    fold.apply(&span("a", 1, TRACE, "child-a", Some("root"), "triager"));
    fold.apply(&span("b", 2, TRACE, "child-b", Some("child-a"), "worker"));
    fold.apply(&note("n1", C, 10_000));
    assert!(fold.orphans().is_empty(), "{:?}", fold.orphans());

    // A shorter grace period, and another cluster's clock does not move this one's.
    fold.apply(&event(
        "g",
        C,
        10_000,
        Payload::SettingsChanged(SettingsChanged {
            span_grace_secs: Some(30),
            ..Default::default()
        }),
    ));
    fold.apply(&span(
        "x",
        10_001,
        "trace-2",
        "lonely",
        Some("gone"),
        "worker",
    ));
    fold.apply(&note("other", "other-cluster", 20_000));
    assert!(fold.orphans().is_empty());
    fold.apply(&note("n2", C, 10_031));
    assert_eq!(fold.orphans().len(), 2, "{:?}", fold.orphans());
}

#[test]
fn a_judged_trace_leaves_memory_after_the_retention_and_a_late_span_is_judged_alone() {
    const DAY: i64 = 86_400;
    let mut fold = Fold::default();
    // A complete trace, judged after the grace period and kept for the retention (a day).
    fold.apply(&span("r", 0, TRACE, "root", None, "ingress"));
    fold.apply(&span("a", 1, TRACE, "child-a", Some("root"), "worker"));
    fold.apply(&note("n1", C, 600));
    assert!(fold.orphans().is_empty());
    assert_eq!(fold.projection.traces_kept(Some(C)), 1);
    fold.apply(&note("n2", C, DAY));
    assert_eq!(
        fold.projection.traces_kept(Some(C)),
        1,
        "quiet for less than a day"
    );
    fold.apply(&note("n3", C, DAY + 1));
    assert_eq!(
        fold.projection.traces_kept(Some(C)),
        0,
        "dropped after the retention"
    );
    assert_eq!(fold.projection.late_spans(Some(C)), 0);

    // A span of it that started before the retention arrives: judged alone (its parent is
    // not in the trace any more, and the trace has no root), and counted.
    let mut late = span("late", 2 * DAY, TRACE, "child-b", Some("root"), "worker");
    if let Payload::SpanRecorded(s) = &mut late.payload {
        s.start = at(2);
    }
    fold.apply(&late);
    assert_eq!(fold.projection.late_spans(Some(C)), 1);
    assert_eq!(fold.projection.late_spans(None), 1);
    assert_eq!(fold.projection.traces_kept(Some(C)), 1);
    let resumed = fold.resumed();
    fold.apply(&note("n4", C, 2 * DAY + 300));
    let orphans = fold.orphans();
    let kinds: Vec<OrphanKind> = orphans.iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        [OrphanKind::OrphanSpan, OrphanKind::RootlessTrace],
        "{orphans:?}"
    );
    // The count and the traces held survive a snapshot.
    let mut resumed = resumed;
    resumed.apply(&note("n4", C, 2 * DAY + 300));
    assert_eq!(resumed.snapshot(), fold.snapshot());
    assert_eq!(resumed.projection.late_spans(Some(C)), 1);

    // A span of a trace memory holds is never late, whatever its start.
    let mut old_start = span(
        "old",
        2 * DAY + 301,
        TRACE,
        "child-c",
        Some("child-b"),
        "tool",
    );
    if let Payload::SpanRecorded(s) = &mut old_start.payload {
        s.start = at(3);
    }
    fold.apply(&old_start);
    assert_eq!(fold.projection.late_spans(Some(C)), 1);
}

#[test]
fn traces_held_stay_bounded_by_the_retention_over_a_long_log() {
    // A trace every minute for 10 days, with a one-hour retention: memory holds about an hour
    // and the grace period of traces, never the log.
    let mut fold = Fold::default();
    fold.apply(&event(
        "retention",
        C,
        0,
        Payload::SettingsChanged(SettingsChanged {
            span_retention_secs: Some(3_600),
            ..Default::default()
        }),
    ));
    let mut most = 0;
    for minute in 0..10 * 24 * 60i64 {
        let trace = format!("trace-{minute}");
        fold.apply(&span(
            &format!("s{minute}"),
            60 * minute,
            &trace,
            "root",
            None,
            "ingress",
        ));
        most = most.max(fold.projection.traces_kept(Some(C)));
    }
    // Held: judged within the last hour (60) and waiting for the 5-minute grace (5), plus the
    // one that just arrived.
    assert!(most <= 66, "{most} traces held");
    assert_eq!(fold.projection.late_spans(Some(C)), 0);
}

// ---------------------------------------------------------------------------------------------
// 6. Properties

/// A ReplicaSet whose pods appear one scan before it does (pods may use a PVC that lives with
/// them), plus pods whose owner never appears.
#[derive(Clone, Debug)]
struct Family {
    start: usize,
    len: usize,
    pods: usize,
    pvc: bool,
    owner_extra: usize,
    tracked_owner: bool,
}

#[derive(Clone, Debug)]
struct LateOwnerCase {
    scans: usize,
    confirm: u32,
    families: Vec<Family>,
    stray_pods: usize,
    order_seeds: Vec<u64>,
}

fn late_owner_case() -> impl Strategy<Value = LateOwnerCase> {
    (2usize..9, 2u32..=3).prop_flat_map(|(scans, confirm)| {
        let family = (
            0..scans,
            1..=scans,
            1usize..4,
            any::<bool>(),
            0usize..3,
            any::<bool>(),
        )
            .prop_map(
                |(start, len, pods, pvc, owner_extra, tracked_owner)| Family {
                    start,
                    len,
                    pods,
                    pvc,
                    owner_extra,
                    tracked_owner,
                },
            );
        (
            Just(scans),
            Just(confirm),
            proptest::collection::vec(family, 0..8),
            0usize..3,
            proptest::collection::vec(any::<u64>(), scans),
        )
            .prop_map(|(scans, confirm, families, stray_pods, order_seeds)| {
                LateOwnerCase {
                    scans,
                    confirm,
                    families,
                    stray_pods,
                    order_seeds,
                }
            })
    })
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn shuffle(resources: &mut [InventoryResource], seed: u64) {
    resources.sort_by_key(|r| mix(seed ^ r.uid.bytes().fold(0u64, |h, b| mix(h ^ u64::from(b)))));
}

/// The events of the case, and the uids of the pods whose owner arrives one scan late.
fn late_owner_log(case: &LateOwnerCase) -> (Vec<Event>, Vec<String>) {
    let kinds = ["Pod", "ReplicaSet", "PersistentVolumeClaim"];
    let mut events = vec![confirm_scans("confirm", C, 0, case.confirm)];
    let mut late = Vec::new();
    for (f, family) in case.families.iter().enumerate() {
        late.extend((0..family.pods).map(|p| format!("pod-{f}-{p}")));
        if family.tracked_owner {
            events.push(track(
                &format!("track-{f}"),
                0,
                "ReplicaSet",
                &format!("replicaset:ns/rs-{f}"),
                None,
            ));
        }
    }
    for s in 0..case.scans {
        let mut resources = Vec::new();
        for (f, family) in case.families.iter().enumerate() {
            let end = family.start + family.len; // exclusive: pods live in start..end
            let pods_live = (family.start..end).contains(&s);
            let owner_live = s > family.start && s < end + family.owner_extra;
            let rs = format!("rs-{f}");
            let pvc = format!("pvc-{f}");
            if pods_live {
                for p in 0..family.pods {
                    let mut pod = owned(
                        res(
                            &format!("pod-{f}-{p}"),
                            "Pod",
                            Some("ns"),
                            &format!("web-{f}-{p}"),
                        ),
                        &[&rs],
                    );
                    if family.pvc {
                        pod = using(pod, &[&pvc]);
                    }
                    resources.push(pod);
                }
                if family.pvc {
                    resources.push(res(&pvc, "PersistentVolumeClaim", Some("ns"), &pvc));
                }
            }
            if owner_live {
                resources.push(res(&rs, "ReplicaSet", Some("ns"), &rs));
            }
        }
        for p in 0..case.stray_pods {
            resources.push(owned(
                res(
                    &format!("stray-{p}"),
                    "Pod",
                    Some("ns"),
                    &format!("stray-{p}"),
                ),
                &[&format!("never-{p}")],
            ));
        }
        shuffle(&mut resources, case.order_seeds[s]);
        events.push(scan(
            &format!("s{s}"),
            C,
            60 * (s as i64 + 1),
            &kinds,
            resources,
        ));
        // Tracking churn between scans never counts as a scan.
        events.push(track(
            &format!("churn-{s}"),
            60 * (s as i64 + 1) + 1,
            "Pod",
            &format!("pod:ns/web-0-{s}"),
            None,
        ));
    }
    (events, late)
}

#[test]
fn property_a_resource_whose_owner_appears_within_one_scan_is_never_reported() {
    assert_property(
        "late owner never reported",
        1_000,
        late_owner_case(),
        |case| {
            let (events, late) = late_owner_log(&case);
            let mut fold = Fold::default();
            for e in &events {
                fold.apply(e);
                for orphan in fold.orphans() {
                    if let Some(uid) = uid_of(&orphan) {
                        prop_assert!(
                            !late.iter().any(|l| l == uid),
                            "{uid} reported after {}: {orphan:?}",
                            e.id
                        );
                    }
                }
            }
            // Not vacuous: the pods whose owner never comes are reported once confirmed.
            if case.scans as u32 >= case.confirm {
                for p in 0..case.stray_pods {
                    let orphans = fold.orphans();
                    let stray = find(&orphans, OrphanKind::Dangling, &format!("stray-{p}"));
                    prop_assert!(stray.is_some(), "stray-{p} not reported: {orphans:?}");
                }
            }
            Ok(())
        },
    );
}

const CLUSTERS: &[&str] = &["pw-prod", "pw-stage"];
const KINDS: &[&str] = &[
    "Pod",
    "ReplicaSet",
    "PersistentVolumeClaim",
    "IngressRoute",
    "LonghornReplica",
];
const NAMESPACES: &[Option<&str>] = &[Some("a"), Some("b"), None];

/// uid, kind, namespace, name, owners, uses (as pool indexes).
type RandomResource = (usize, usize, usize, usize, Vec<usize>, Vec<usize>);

#[derive(Clone, Debug)]
enum Step {
    Scan {
        cluster: usize,
        kinds: Vec<usize>,
        resources: Vec<RandomResource>,
    },
    Track {
        cluster: usize,
        kind: usize,
        ns: usize,
        name: usize,
        uid: Option<usize>,
        delete: bool,
    },
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
        consumers: Option<Vec<usize>>,
    },
    Note {
        cluster: usize,
    },
}

fn random_step() -> impl Strategy<Value = Step> {
    let cluster = 0..CLUSTERS.len();
    let resource = (
        0usize..14,
        0..KINDS.len(),
        0..NAMESPACES.len(),
        0usize..4,
        proptest::collection::vec(0usize..16, 0..2),
        proptest::collection::vec(0usize..16, 0..2),
    );
    prop_oneof![
        4 => (
            cluster.clone(),
            proptest::sample::subsequence((0..KINDS.len()).collect::<Vec<_>>(), 0..=KINDS.len()),
            proptest::collection::vec(resource, 0..12),
        )
            .prop_map(|(cluster, kinds, resources)| Step::Scan { cluster, kinds, resources }),
        3 => (
            cluster.clone(),
            0..KINDS.len(),
            0..NAMESPACES.len(),
            0usize..4,
            proptest::option::weighted(0.4, 0usize..16),
            proptest::bool::weighted(0.3),
        )
            .prop_map(|(cluster, kind, ns, name, uid, delete)| Step::Track {
                cluster,
                kind,
                ns,
                name,
                uid,
                delete
            }),
        3 => (
            cluster.clone(),
            0usize..4,
            0usize..5,
            proptest::option::weighted(0.7, 0usize..6),
        )
            .prop_map(|(cluster, trace, span, parent)| Step::Span {
                cluster,
                trace,
                span,
                parent
            }),
        1 => (
            cluster.clone(),
            proptest::option::of(1u32..=3),
            proptest::option::of(prop_oneof![Just(0u64), Just(60), Just(300)]),
            proptest::option::weighted(
                0.3,
                proptest::sample::subsequence((0..KINDS.len()).collect::<Vec<_>>(), 0..=2)
            ),
        )
            .prop_map(|(cluster, confirm, grace, consumers)| Step::Settings {
                cluster,
                confirm,
                grace,
                consumers
            }),
        1 => cluster.prop_map(|cluster| Step::Note { cluster }),
    ]
}

/// A random log; with `reversed`, every scan lists its resources in the opposite order.
fn build_random_log(steps: &[(Step, i64)], reversed: bool) -> Vec<Event> {
    let mut secs = 0;
    let mut events = Vec::new();
    for (i, (step, dt)) in steps.iter().enumerate() {
        secs += dt;
        let id = format!("e{i}");
        let e = match step {
            Step::Scan {
                cluster,
                kinds,
                resources,
            } => {
                // One entry per uid (the last), so that order alone differs when reversed.
                let mut unique: BTreeMap<usize, InventoryResource> = BTreeMap::new();
                for (uid, kind, ns, name, owners, uses) in resources {
                    let mut r = res(
                        &format!("u{uid}"),
                        KINDS[*kind],
                        NAMESPACES[*ns],
                        &format!("x{name}"),
                    );
                    r.owners = owners.iter().map(|o| format!("u{o}")).collect();
                    r.uses = uses.iter().map(|u| format!("u{u}")).collect();
                    unique.insert(*uid, r);
                }
                let mut list: Vec<InventoryResource> = unique.into_values().collect();
                if reversed {
                    list.reverse();
                }
                let kinds: Vec<&str> = kinds.iter().map(|k| KINDS[*k]).collect();
                scan(&id, CLUSTERS[*cluster], secs, &kinds, list)
            }
            Step::Track {
                cluster,
                kind,
                ns,
                name,
                uid,
                delete,
            } => {
                let kind = KINDS[*kind];
                let key = match NAMESPACES[*ns] {
                    Some(ns) => format!("{}:{ns}/x{name}", kind.to_lowercase()),
                    None => format!("{}:x{name}", kind.to_lowercase()),
                };
                let row = tracking(kind, &key, uid.map(|u| format!("u{u}")).as_deref());
                let payload = if *delete {
                    Payload::TrackingDeleted(row)
                } else {
                    Payload::TrackingUpserted(row)
                };
                event(&id, CLUSTERS[*cluster], secs, payload)
            }
            Step::Span {
                cluster,
                trace,
                span: s,
                parent,
            } => {
                let mut e = span(
                    &id,
                    secs,
                    &format!("trace-{trace}"),
                    &format!("span-{s}"),
                    parent.map(|p| format!("span-{p}")).as_deref(),
                    "op",
                );
                e.cluster = CLUSTERS[*cluster].to_owned();
                e
            }
            Step::Settings {
                cluster,
                confirm,
                grace,
                consumers,
            } => event(
                &id,
                CLUSTERS[*cluster],
                secs,
                Payload::SettingsChanged(SettingsChanged {
                    orphan_confirm_scans: *confirm,
                    span_grace_secs: *grace,
                    orphan_consumer_kinds: consumers
                        .as_ref()
                        .map(|c| c.iter().map(|k| KINDS[*k].to_owned()).collect()),
                    ..Default::default()
                }),
            ),
            Step::Note { cluster } => note(&id, CLUSTERS[*cluster], secs),
        };
        events.push(e);
    }
    events
}

fn random_log_case() -> impl Strategy<Value = (Vec<(Step, i64)>, usize)> {
    proptest::collection::vec(
        (random_step(), prop_oneof![9 => 0i64..200, 1 => -100i64..0]),
        0..60,
    )
    .prop_flat_map(|steps| {
        let n = steps.len();
        (Just(steps), 0..=n)
    })
}

fn same(a: &Fold, b: &Fold, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.snapshot(), b.snapshot(), "snapshot differs ({})", what);
    prop_assert_eq!(
        a.projection.orphans(None),
        b.projection.orphans(None),
        "orphans ({})",
        what
    );
    prop_assert_eq!(
        a.projection.candidates(None),
        b.projection.candidates(None),
        "candidates ({})",
        what
    );
    prop_assert_eq!(
        a.projection.graph(None),
        b.projection.graph(None),
        "graph ({})",
        what
    );
    for cluster in CLUSTERS {
        for uid in 0..16 {
            let r = ResourceRef {
                kind: String::new(),
                namespace: None,
                name: String::new(),
                uid: Some(format!("u{uid}")),
            };
            prop_assert_eq!(
                a.projection.component_of(cluster, &r),
                b.projection.component_of(cluster, &r),
                "component of u{} ({})",
                uid,
                what
            );
        }
    }
    Ok(())
}

#[test]
fn property_folding_is_deterministic_order_independent_and_resumable() {
    assert_property(
        "orphans resumable",
        1_000,
        random_log_case(),
        |(steps, split)| {
            let events = build_random_log(&steps, false);
            let mut whole = Fold::default();
            whole.apply_all(&events);

            let mut again = Fold::default();
            again.apply_all(&events);
            same(&whole, &again, "folded twice")?;

            let mut reversed = Fold::default();
            reversed.apply_all(&build_random_log(&steps, true));
            same(&whole, &reversed, "scan order reversed")?;

            let mut prefix = Fold::default();
            prefix.apply_all(&events[..split]);
            let snapshot = prefix.snapshot();
            let json = serde_json::to_string(&snapshot).expect("snapshot serializes");
            let parsed: OrphansSnapshot = serde_json::from_str(&json).expect("snapshot parses");
            prop_assert_eq!(&parsed, &snapshot);
            let mut resumed = prefix.resumed();
            prop_assert_eq!(resumed.snapshot(), snapshot, "restore then snapshot");
            resumed.apply_all(&events[split..]);
            same(&whole, &resumed, "resumed from a snapshot")?;
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 7. The graph, DOT, components

fn graph_scan(order_reversed: bool) -> Event {
    let mut resources = vec![
        res("dep-1", "Deployment", Some("dnd"), "web"),
        owned(
            res("rs-1", "ReplicaSet", Some("dnd"), "web-7f9d"),
            &["dep-1"],
        ),
        using(
            owned(
                res("pod-1", "Pod", Some("dnd"), "web-7f9d-xk2p9"),
                &["rs-1"],
            ),
            &["pvc-1"],
        ),
        res("pvc-1", "PersistentVolumeClaim", Some("dnd"), "web-data"),
        res(
            "pvc-2",
            "PersistentVolumeClaim",
            Some("dnd"),
            "we\"ird\\name",
        ),
        using(
            res("rep-1", "LonghornReplica", Some("longhorn-system"), "r-1"),
            &["vol-gone"],
        ),
    ];
    if order_reversed {
        resources.reverse();
    }
    scan(
        if order_reversed { "r" } else { "f" },
        C,
        0,
        &[
            "Deployment",
            "ReplicaSet",
            "Pod",
            "PersistentVolumeClaim",
            "LonghornReplica",
        ],
        resources,
    )
}

fn graph_fold(order_reversed: bool) -> Fold {
    let mut fold = Fold::default();
    fold.apply(&track("t", 0, "Deployment", "deployment:dnd/web", None));
    let mut first = graph_scan(order_reversed);
    fold.apply(&first);
    first.id = "second".into();
    first.time = at(60);
    fold.apply(&first);
    fold
}

#[test]
fn dot_output_names_every_node_and_edge_and_is_deterministic() {
    let fold = graph_fold(false);
    let graph = fold.projection.graph(Some(C));
    let uids: Vec<&str> = graph.nodes.iter().map(|n| n.uid.as_str()).collect();
    assert_eq!(
        uids,
        [
            "dep-1", "pod-1", "pvc-1", "pvc-2", "rep-1", "rs-1", "vol-gone"
        ]
    );
    let edges: Vec<(&str, &str, Relation)> = graph
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.relation))
        .collect();
    assert_eq!(
        edges,
        [
            ("dep-1", "rs-1", Relation::Owns),
            ("pod-1", "pvc-1", Relation::Uses),
            ("rep-1", "vol-gone", Relation::Uses),
            ("rs-1", "pod-1", Relation::Owns),
        ]
    );
    let node = |uid: &str| graph.nodes.iter().find(|n| n.uid == uid).expect(uid);
    assert!(node("dep-1").tracked);
    assert_eq!(node("dep-1").orphan, None);
    assert_eq!(node("pvc-2").orphan, Some(OrphanKind::Dangling));
    assert_eq!(node("rep-1").orphan, Some(OrphanKind::Dangling));
    assert!(!node("vol-gone").live);

    let dot = graph.to_dot();
    assert!(dot.starts_with("digraph"), "{dot}");
    for uid in uids {
        assert!(
            dot.contains(&format!("\"{C}/{uid}\" [")),
            "{uid} missing:\n{dot}"
        );
    }
    assert!(
        dot.contains(&format!("\"{C}/dep-1\" -> \"{C}/rs-1\" [label=\"owns\"]")),
        "{dot}"
    );
    assert!(
        dot.contains(&format!(
            "\"{C}/rep-1\" -> \"{C}/vol-gone\" [label=\"uses\"]"
        )),
        "{dot}"
    );
    assert!(
        dot.contains(r#"we\"ird\\name"#),
        "label not escaped:\n{dot}"
    );
    let rep_line = dot
        .lines()
        .find(|l| l.contains(&format!("\"{C}/rep-1\" [")))
        .expect("rep-1 line");
    assert!(rep_line.contains("color=\"red\""), "{rep_line}");
    assert!(
        rep_line.contains("ORPHAN dangling: uses vol-gone, which is not live"),
        "{rep_line}"
    );

    assert_eq!(
        dot,
        fold.projection.graph(Some(C)).to_dot(),
        "same output twice"
    );
    assert_eq!(
        dot,
        graph_fold(true).projection.graph(Some(C)).to_dot(),
        "independent of the order of resources within a scan"
    );
    assert_eq!(
        serde_json::to_string(&graph).unwrap(),
        serde_json::to_string(&graph_fold(true).projection.graph(None)).unwrap()
    );
}

#[test]
fn component_of_is_the_smallest_uid_of_the_connected_live_resources() {
    let fold = graph_fold(false);
    let by_uid = |uid: &str| ResourceRef {
        kind: String::new(),
        namespace: None,
        name: String::new(),
        uid: Some(uid.to_owned()),
    };
    for uid in ["dep-1", "rs-1", "pod-1", "pvc-1"] {
        assert_eq!(fold.projection.component_of(C, &by_uid(uid)), Some("dep-1"));
    }
    assert_eq!(
        fold.projection.component_of(C, &by_uid("pvc-2")),
        Some("pvc-2")
    );
    assert_eq!(
        fold.projection.component_of(C, &by_uid("rep-1")),
        Some("rep-1")
    );
    assert_eq!(fold.projection.component_of(C, &by_uid("vol-gone")), None);
    assert_eq!(
        fold.projection.component_of("elsewhere", &by_uid("rep-1")),
        None
    );
    let by_name = ResourceRef {
        kind: "PersistentVolumeClaim".into(),
        namespace: Some("dnd".into()),
        name: "web-data".into(),
        uid: None,
    };
    assert_eq!(fold.projection.component_of(C, &by_name), Some("dep-1"));
}

#[test]
fn fifty_thousand_resources_per_scan() {
    let mut resources = Vec::new();
    for i in 0..12_500 {
        let rs = format!("rs-{i:05}");
        resources.push(res(&rs, "ReplicaSet", Some("load"), &rs));
        let pvc = format!("pvc-{i:05}");
        resources.push(res(&pvc, "PersistentVolumeClaim", Some("load"), &pvc));
        for p in 0..2 {
            let mut pod = owned(
                res(
                    &format!("pod-{i:05}-{p}"),
                    "Pod",
                    Some("load"),
                    &format!("p{i}-{p}"),
                ),
                &[&rs],
            );
            // Every tenth PVC has no consumer.
            if i % 10 != 0 {
                pod = using(pod, &[&pvc]);
            }
            resources.push(pod);
        }
    }
    assert_eq!(resources.len(), 50_000);
    let kinds = ["ReplicaSet", "PersistentVolumeClaim", "Pod"];
    let mut fold = Fold::default();
    let started = std::time::Instant::now();
    fold.apply(&scan("s1", C, 0, &kinds, resources.clone()));
    resources.reverse();
    fold.apply(&scan("s2", C, 60, &kinds, resources));
    let orphans = fold.orphans();
    assert_eq!(orphans.len(), 1_250);
    assert!(
        orphans
            .iter()
            .all(|v| v.reason.contains("no live resource uses"))
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "two scans of 50,000 resources took {:?}",
        started.elapsed()
    );
}
