//! Deterministic workloads for the benches, as docs/benchmarks.md describes them (the PostgreSQL peer's workload).
//!
//! One cluster, 1,000 distinct findings over 4 categories, every category run every cycle.
//! Cycle 0 has a random half present; each later cycle flips a random 10% (100 keys), so about
//! 500 are present per cycle. "Observations" are cycles × findings, present or not.

pub mod alerts;
pub mod live;
pub mod served;

use tidemark_core::event::{
    CURRENT_SCHEMA, CycleCompleted, FindingObservation, InventoryObserved, InventoryResource,
    ResourceRef, SettingsChanged,
};
use tidemark_core::{Event, EventId, Payload, Severity, Timestamp};

/// The four categories of the workload.
pub const CATEGORIES: [&str; 4] = ["pods", "infra_drift", "dns", "storage"];

/// SplitMix64: a tiny, well-known, seedable generator, so workloads need no extra dependency.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// Shape of a workload.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Cluster name.
    pub cluster: &'static str,
    /// Distinct findings.
    pub findings: usize,
    /// Findings flipped (present ↔ absent) per cycle after the first.
    pub flips_per_cycle: usize,
    /// Cycles.
    pub cycles: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// Findings name their resource (a Pod in namespace `ns-<i/50>`): what incident grouping
    /// and drift detection look at.
    pub with_resources: bool,
}

impl Workload {
    /// The workload of `performance.md` with `cycles` cycles.
    pub fn standard(cycles: usize) -> Self {
        Self {
            cluster: "bench",
            findings: 1_000,
            flips_per_cycle: 100,
            cycles,
            seed: 42,
            with_resources: false,
        }
    }

    /// The standard workload whose findings name their resources.
    pub fn standard_with_resources(cycles: usize) -> Self {
        Self {
            with_resources: true,
            ..Self::standard(cycles)
        }
    }

    /// Observations the workload represents (cycles × findings).
    pub fn observations(&self) -> u64 {
        (self.cycles * self.findings) as u64
    }

    /// The check key of finding `i`.
    pub fn check_key(i: usize) -> String {
        format!("{}:ns-{}/app-{i}:crashloop", CATEGORIES[i % 4], i / 50)
    }

    /// The presence of every finding in every cycle.
    pub fn presence(&self) -> Vec<Vec<bool>> {
        let mut rng = SplitMix64::new(self.seed);
        let mut present: Vec<bool> = (0..self.findings).map(|_| rng.below(2) == 1).collect();
        let mut cycles = Vec::with_capacity(self.cycles);
        for cycle in 0..self.cycles {
            if cycle > 0 {
                for _ in 0..self.flips_per_cycle {
                    let i = rng.below(self.findings);
                    present[i] = !present[i];
                }
            }
            cycles.push(present.clone());
        }
        cycles
    }

    /// The settings event (T = 2) and one `cycle.completed` per cycle, 5 minutes apart.
    pub fn events(&self) -> Vec<Event> {
        let keys: Vec<String> = (0..self.findings).map(Self::check_key).collect();
        let start = Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").expect("valid time");
        let mut events = Vec::with_capacity(self.cycles + 1);
        events.push(self.event(
            "settings".into(),
            start,
            Payload::SettingsChanged(SettingsChanged {
                clean_cycles_to_resolve: Some(2),
                ..Default::default()
            }),
        ));
        for (cycle, present) in self.presence().into_iter().enumerate() {
            let findings = present
                .iter()
                .enumerate()
                .filter(|(_, p)| **p)
                .map(|(i, _)| FindingObservation {
                    check_key: keys[i].clone(),
                    category: CATEGORIES[i % 4].to_owned(),
                    severity: Severity::Error,
                    title: format!("app-{i} is crash-looping"),
                    detail: None,
                    resource: self.with_resources.then(|| ResourceRef {
                        kind: "Pod".to_owned(),
                        namespace: Some(format!("ns-{}", i / 50)),
                        name: format!("app-{i}"),
                        uid: None,
                    }),
                    informational: false,
                })
                .collect();
            events.push(self.event(
                format!("cycle-{cycle:08}"),
                start.plus_secs(300 * (cycle as i64 + 1)),
                Payload::CycleCompleted(CycleCompleted {
                    cycle: format!("c-{cycle:08}"),
                    categories: CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
                    findings,
                }),
            ));
        }
        events
    }

    fn event(&self, id: String, time: Timestamp, payload: Payload) -> Event {
        Event {
            id: EventId(format!("{}-{id}", self.cluster)),
            schema: CURRENT_SCHEMA,
            time,
            source: "bench-probe".to_owned(),
            cluster: self.cluster.to_owned(),
            payload,
        }
    }
}

/// One `inventory.observed` scan of a cluster with `resources` live resources: Deployments
/// owning ReplicaSets owning Pods, each Pod using a PVC, plus one in 50 PVCs that nothing uses
/// and one in 100 Pods whose ReplicaSet is gone (what the orphan graph is for).
pub fn inventory_scan(cluster: &str, scan: usize, resources: usize, time: Timestamp) -> Event {
    let groups = resources / 4;
    let mut live = Vec::with_capacity(resources);
    for g in 0..groups {
        let ns = format!("ns-{}", g / 100);
        let dep = format!("dep-{g}");
        let rs = format!("rs-{g}");
        let pvc = format!("pvc-{g}");
        let pod = format!("pod-{g}");
        live.push(InventoryResource {
            uid: dep.clone(),
            kind: "Deployment".into(),
            namespace: Some(ns.clone()),
            name: format!("app-{g}"),
            owners: vec![],
            uses: vec![],
        });
        if g % 100 != 7 {
            live.push(InventoryResource {
                uid: rs.clone(),
                kind: "ReplicaSet".into(),
                namespace: Some(ns.clone()),
                name: format!("app-{g}-7f9d4b8c6"),
                owners: vec![dep],
                uses: vec![],
            });
        }
        live.push(InventoryResource {
            uid: pod,
            kind: "Pod".into(),
            namespace: Some(ns.clone()),
            name: format!("app-{g}-7f9d4b8c6-xk2p9"),
            owners: vec![rs],
            uses: if g % 50 == 3 {
                vec![]
            } else {
                vec![pvc.clone()]
            },
        });
        live.push(InventoryResource {
            uid: pvc,
            kind: "PersistentVolumeClaim".into(),
            namespace: Some(ns),
            name: format!("data-{g}"),
            owners: vec![],
            uses: vec![],
        });
    }
    Event {
        id: EventId(format!("{cluster}-scan-{scan}")),
        schema: CURRENT_SCHEMA,
        time,
        source: "bench-scanner".into(),
        cluster: cluster.into(),
        payload: Payload::InventoryObserved(InventoryObserved {
            scan: format!("s-{scan}"),
            kinds: ["Deployment", "ReplicaSet", "Pod", "PersistentVolumeClaim"]
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            resources: live,
        }),
    }
}

/// Cycle events over `clusters` clusters (round-robin), each cluster with `keys_per_cluster`
/// keys of which about `findings_per_cycle` are present: a seeded random half-ish set at first,
/// then each cycle flips 10% of `findings_per_cycle` keys (at least one), like `performance.md`'s
/// workload. The "10-finding cycle event" workload of the store benches.
pub fn small_cycles(
    clusters: usize,
    keys_per_cluster: usize,
    findings_per_cycle: usize,
    count: usize,
    seed: u64,
) -> Vec<Event> {
    ChurningCycles::new(ChurnShape {
        clusters,
        keys_per_cluster,
        initially_present: findings_per_cycle,
        flips_per_cycle: (findings_per_cycle / 10).max(1),
        seed,
    })
    .take(count)
    .collect()
}

/// The shape of a [`ChurningCycles`] stream.
#[derive(Clone, Copy, Debug)]
pub struct ChurnShape {
    /// Clusters, reporting round-robin.
    pub clusters: usize,
    /// Distinct check keys per cluster.
    pub keys_per_cluster: usize,
    /// Keys present in each cluster's first cycle (a seeded random set).
    pub initially_present: usize,
    /// Keys flipped (present ↔ absent, drawn with replacement) in each later cycle of a cluster.
    pub flips_per_cycle: usize,
    /// Seed of the generator.
    pub seed: u64,
}

/// An endless, seeded stream of `cycle.completed` events (what [`small_cycles`] collects),
/// generated one at a time so a workload of millions of events needs no memory for them.
///
/// Event `i` is cluster `cluster-{i % clusters:03}`'s cycle, time-ordered (one second apart,
/// ULID-like ids); callers may restamp ids and times.
#[derive(Clone, Debug)]
pub struct ChurningCycles {
    shape: ChurnShape,
    rng: SplitMix64,
    present: Vec<Vec<bool>>,
    start: Timestamp,
    next: usize,
}

impl ChurningCycles {
    /// The stream of `shape`, from its first cycle.
    pub fn new(shape: ChurnShape) -> Self {
        let mut rng = SplitMix64::new(shape.seed);
        let present = (0..shape.clusters)
            .map(|_| {
                let mut keys = vec![false; shape.keys_per_cluster];
                let mut on = 0;
                while on < shape.initially_present.min(shape.keys_per_cluster) {
                    let k = rng.below(shape.keys_per_cluster);
                    if !keys[k] {
                        keys[k] = true;
                        on += 1;
                    }
                }
                keys
            })
            .collect();
        Self {
            shape,
            rng,
            present,
            start: Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").expect("valid time"),
            next: 0,
        }
    }
}

impl Iterator for ChurningCycles {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let i = self.next;
        self.next += 1;
        let c = i % self.shape.clusters;
        if i >= self.shape.clusters {
            for _ in 0..self.shape.flips_per_cycle {
                let k = self.rng.below(self.shape.keys_per_cluster);
                self.present[c][k] = !self.present[c][k];
            }
        }
        let findings = self.present[c]
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .map(|(k, _)| FindingObservation {
                check_key: Workload::check_key(k),
                category: CATEGORIES[k % 4].to_owned(),
                severity: Severity::Error,
                title: format!("app-{k} is crash-looping"),
                detail: Some("exit code 137; OOMKilled".to_owned()),
                resource: None,
                informational: false,
            })
            .collect();
        Some(Event {
            // Time-ordered ids, as producers using ULIDs send them.
            id: EventId(format!("01JNQ{i:021}")),
            schema: CURRENT_SCHEMA,
            time: self.start.plus_secs(i as i64),
            source: "bench-probe".to_owned(),
            cluster: format!("cluster-{c:03}"),
            payload: Payload::CycleCompleted(CycleCompleted {
                cycle: format!("c-{i:08}"),
                categories: CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
                findings,
            }),
        })
    }
}
