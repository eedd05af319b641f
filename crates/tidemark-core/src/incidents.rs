//! The incidents projection: explicit incidents (`incident.*`, with the notes, deploys and
//! alerts linked to them) and automatic ones (findings that open close together in a cluster and
//! share a namespace or a resource-graph component), each with its findings, a timeline of every
//! event that touched it, and its failure layers.
//!
//! **Automatic grouping.** The findings one event opens (not informational, at or above the
//! cluster's `notification_min_severity`, naming a resource) outside any open incident are
//! grouped with each other first: union-find over shared namespace or resource-graph component,
//! so their order in the event does not matter. Each group, judged against the incidents before
//! the event, goes to the oldest open explicit incident with a finding still active, seen within
//! `incident_window_secs` and sharing a namespace or component with it; else joins the oldest
//! open automatic incident of its cluster whose latest finding opened at most
//! `incident_window_secs` before and that shares a namespace or component; else opens a new one,
//! `auto-<cluster>-<seq>` (`-2`, `-3`... when one event opens several; most severe group first,
//! then by check key). An automatic incident closes when its last active finding resolves. An
//! explicit incident that names a finding of an open automatic incident absorbs it
//! (`merged_into`). Everything is keyed by log position and ordered maps: the same log gives the
//! same incidents, ids included.
//!
//! **Failure layers** (seed 000: three bugs, each hidden by the one before). Per resource of an
//! incident, a layer is a failure signature (check key and detail, else title). A deploy linked
//! to the incident (by id, by check key, or by its `service` naming the resource's workload)
//! arms the resource; the next observation of one of the incident's findings on that resource
//! is judged against the layer it is at (see `ResourceLayers::observe`): after a rollback it
//! is the rollback's outcome (no effect, or failed differently), never a layer; after a forward
//! change it is no effect, an earlier layer again, or, for a signature no layer has, a new layer.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{
    Alert, ChangeDeployed, ChangeKind, CycleCompleted, Event, IncidentChange, NoteAdded, NoteKind,
    Payload, ResourceRef, Severity,
};
use crate::findings::{FindingChange, FindingsProjection};
use crate::timestamp::Timestamp;

/// Where incidents learn which resources are connected (the orphan graph's components).
pub trait ResourceGraph {
    /// A deterministic id of the connected component of the live resource `resource` refers to.
    fn component_of(&self, cluster: &str, resource: &ResourceRef) -> Option<&str>;
}

/// A graph that knows no resources: grouping then goes by namespace alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGraph;

impl ResourceGraph for NoGraph {
    fn component_of(&self, _: &str, _: &ResourceRef) -> Option<&str> {
        None
    }
}

/// How an incident came to be.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Declared by `incident.opened` (or named by a note, deploy or update first).
    Explicit,
    /// Grouped from findings by the projection.
    Automatic,
}

/// One thing an event did to an incident.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Touch {
    /// What: `opened`, `resolved_auto`, `flap_started_count`, `joined`, `note_hypothesis`,
    /// `deploy`, `rollback`, `config`, `alert_fired`, `alert_resolved`, `incident_opened`,
    /// `incident_updated`, `incident_closed`, `merged`, `layer`, `layer_again`, `no_effect`,
    /// `failed_differently`.
    pub change: String,
    /// The finding it concerns, if any.
    // Stored in postcard snapshots: every field always present (no skip_serializing_if).
    pub check_key: Option<String>,
}

/// One entry of an incident's timeline: an event and what it did to the incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentEntry {
    /// Log position.
    pub seq: u64,
    /// Event time.
    pub at: Timestamp,
    /// What it did, sorted.
    pub touches: Vec<Touch>,
}

/// A finding of an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFinding {
    /// The finding's cluster (an explicit incident may span clusters).
    pub cluster: String,
    /// The finding's key.
    pub check_key: String,
    /// When it joined.
    pub joined_at: Timestamp,
    /// Log position where it joined.
    pub joined_seq: u64,
    /// Highest severity seen while in the incident.
    pub max_severity: Severity,
}

/// A deploy, rollback or config change, as a layer refers to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeRef {
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// Deploy, rollback or config.
    pub kind: ChangeKind,
    /// Log position.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
}

/// One failure layer of a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailureLayer {
    /// 1 for the first failure seen.
    pub number: u32,
    /// The finding that showed it.
    pub check_key: String,
    /// Its signature: the detail, else the title.
    pub signature: String,
    /// When it was first seen.
    pub first_seen_at: Timestamp,
    /// Log position.
    pub first_seen_seq: u64,
    /// The change after which it appeared (none for the first layer).
    pub after_change: Option<ChangeRef>,
    /// Changes after which the same failure came back (a rollback here is one that crashed
    /// the same way).
    pub changes_without_effect: Vec<ChangeRef>,
    /// Rollbacks tried while this layer was the current one that failed another way: their
    /// outcome, not a layer of the incident.
    // Stored in postcard snapshots: always present.
    pub failed_differently: Vec<DifferentFailure>,
    /// Forward changes after which this layer's failure was seen again, coming back from
    /// another failure (a rollback's, or a later layer's).
    pub seen_again_after: Vec<ChangeRef>,
}

/// What a rollback showed when it failed another way than the layer it was meant to escape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DifferentFailure {
    /// The rollback.
    pub change: ChangeRef,
    /// The finding that showed the failure.
    pub check_key: String,
    /// The failure it showed: the detail, else the title.
    pub signature: String,
    /// When it was seen.
    pub seen_at: Timestamp,
    /// Log position.
    pub seen_seq: u64,
}

/// The failure layers of one resource of an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceLayers {
    /// The resource: `Kind namespace/workload`, or the check key when the finding names none.
    pub resource: String,
    /// Its layers, in order.
    pub layers: Vec<FailureLayer>,
    /// A change waiting for the next observation.
    // Stored in postcard snapshots: always present.
    pub armed_by: Option<ChangeRef>,
    /// The number of the layer the resource is at: the last one a forward change showed.
    pub current_layer: u32,
    /// Whether the latest observation after a change was a rollback failing another way (the
    /// resource is off its layers until a change shows one of them again).
    pub diverted_by_rollback: bool,
}

/// An incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// Explicit or automatic.
    pub kind: IncidentKind,
    /// Its cluster (of the event that opened it).
    pub cluster: String,
    /// Title given by `incident.*`.
    pub declared_title: Option<String>,
    /// Severity given by `incident.*`.
    pub declared_severity: Option<Severity>,
    /// Summary given by `incident.*`.
    pub summary: Option<String>,
    /// When it opened.
    pub opened_at: Timestamp,
    /// Log position.
    pub opened_seq: u64,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
    /// Log position.
    pub closed_seq: Option<u64>,
    /// The incident that absorbed this one.
    pub merged_into: Option<String>,
    /// Its findings, in the order they joined.
    pub findings: Vec<IncidentFinding>,
    /// When its latest finding opened (automatic grouping window).
    pub last_opened_at: Timestamp,
    /// Namespaces of its findings' resources.
    pub namespaces: BTreeSet<String>,
    /// Resource-graph components of its findings' resources.
    pub components: BTreeSet<String>,
    /// Notes by kind.
    pub notes: BTreeMap<String, u32>,
    /// Failure layers by resource.
    pub layers: BTreeMap<String, ResourceLayers>,
    /// Every event that touched it, in log order.
    pub timeline: Vec<IncidentEntry>,
}

impl Incident {
    fn is_open(&self) -> bool {
        self.closed_seq.is_none() && self.merged_into.is_none()
    }

    fn has_finding(&self, cluster: &str, check_key: &str) -> bool {
        self.findings
            .iter()
            .any(|f| f.check_key == check_key && f.cluster == cluster)
    }

    fn touch(&mut self, seq: u64, at: Timestamp, change: &str, check_key: Option<&str>) {
        let touch = Touch {
            change: change.to_owned(),
            check_key: check_key.map(str::to_owned),
        };
        match self.timeline.last_mut() {
            Some(entry) if entry.seq == seq => {
                if let Err(pos) = entry.touches.binary_search(&touch) {
                    entry.touches.insert(pos, touch);
                }
            }
            _ => self.timeline.push(IncidentEntry {
                seq,
                at,
                touches: vec![touch],
            }),
        }
    }
}

impl ResourceLayers {
    /// What a resource showed at the first observation after `change`; returns the timeline
    /// change it makes (`no_effect`, `failed_differently`, `layer_again` or `layer`).
    ///
    /// - After a **rollback**, the failure is the rollback's outcome, never a layer: the same
    ///   failure as the current layer is "no effect", another one is "failed differently".
    /// - After a forward change (deploy, config), the current layer's failure again is "no
    ///   effect" (or "seen again" when a rollback had diverted it), an earlier layer's failure is
    ///   that layer again, and a failure that matches no layer is a new layer.
    fn observe(
        &mut self,
        change: ChangeRef,
        check_key: &str,
        signature: String,
        seq: u64,
        at: Timestamp,
    ) -> &'static str {
        let same =
            |layer: &FailureLayer| layer.check_key == check_key && layer.signature == signature;
        let current = (self.current_layer.max(1) - 1) as usize;
        if change.kind == ChangeKind::Rollback {
            let layer = &mut self.layers[current];
            if same(layer) {
                layer.changes_without_effect.push(change);
                self.diverted_by_rollback = false;
                return "no_effect";
            }
            layer.failed_differently.push(DifferentFailure {
                change,
                check_key: check_key.to_owned(),
                signature,
                seen_at: at,
                seen_seq: seq,
            });
            self.diverted_by_rollback = true;
            return "failed_differently";
        }
        if let Some(index) = self.layers.iter().position(same) {
            let diverted = std::mem::take(&mut self.diverted_by_rollback);
            let layer = &mut self.layers[index];
            if index == current && !diverted {
                layer.changes_without_effect.push(change);
                return "no_effect";
            }
            layer.seen_again_after.push(change);
            self.current_layer = layer.number;
            return "layer_again";
        }
        let number = self.layers.len() as u32 + 1;
        self.layers.push(FailureLayer {
            number,
            check_key: check_key.to_owned(),
            signature,
            first_seen_at: at,
            first_seen_seq: seq,
            after_change: Some(change),
            changes_without_effect: Vec::new(),
            failed_differently: Vec::new(),
            seen_again_after: Vec::new(),
        });
        self.current_layer = number;
        self.diverted_by_rollback = false;
        "layer"
    }
}

/// The severity order with a floor for incidents that have none.
fn max_severity(a: Option<Severity>, b: Severity) -> Severity {
    a.map_or(b, |a| a.max(b))
}

/// `Kind namespace/workload` of a resource, with generated name suffixes set aside.
pub fn resource_label(resource: &ResourceRef) -> String {
    let name = crate::hygiene::stable_name(&resource.name);
    match &resource.namespace {
        Some(ns) => format!("{} {ns}/{name}", resource.kind),
        None => format!("{} {name}", resource.kind),
    }
}

/// The incidents of every cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentProjection {
    /// Every incident, in the order they opened.
    incidents: Vec<Incident>,
    /// Index by id (rebuilt on restore).
    #[serde(skip)]
    by_id: BTreeMap<String, usize>,
    /// Incidents each finding (by cluster, then check_key) has joined, by index (rebuilt on
    /// restore).
    #[serde(skip)]
    by_finding: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    /// Open incidents (not closed, not absorbed), by index, oldest first (rebuilt on restore).
    #[serde(skip)]
    open: BTreeSet<usize>,
    /// The open automatic ones, by cluster (what a new finding may join; rebuilt on restore).
    #[serde(skip)]
    open_auto: BTreeMap<String, BTreeSet<usize>>,
    /// Resources armed by a change, waiting for an observation: (cluster, incident index).
    armed: BTreeSet<(String, usize)>,
}

/// Serializable state of the incidents projection (the projection is plain ordered data).
pub type IncidentsSnapshot = IncidentProjection;

impl IncidentProjection {
    /// No incidents.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the event at `seq`, after the findings projection applied it and reported
    /// `changes` (of the event's cluster).
    pub fn apply(
        &mut self,
        seq: u64,
        event: &Event,
        changes: &[(String, FindingChange)],
        findings: &FindingsProjection,
        graph: &impl ResourceGraph,
    ) {
        let cluster = event.cluster.as_str();
        // The cluster's clock, which the findings fold just moved: a late event is placed at it,
        // as findings place it (ADR 0004).
        let at = findings.clock(cluster).unwrap_or(event.time);
        let mut resolved_in: BTreeSet<usize> = BTreeSet::new();
        // Findings that open outside any open incident are grouped together, whatever their
        // order in the event; the other changes touch the incidents their findings are in.
        let opened_outside: BTreeSet<&str> = changes
            .iter()
            .filter(|(key, change)| {
                *change == FindingChange::Opened && self.open_incidents_of(cluster, key).is_empty()
            })
            .map(|(key, _)| key.as_str())
            .collect();
        if !opened_outside.is_empty() {
            self.group(seq, at, cluster, &opened_outside, findings, graph);
        }
        for (check_key, change) in changes {
            if *change == FindingChange::Opened && opened_outside.contains(check_key.as_str()) {
                continue;
            }
            self.apply_finding_change(
                seq,
                at,
                cluster,
                check_key,
                *change,
                findings,
                &mut resolved_in,
            );
        }
        // After every change of the event (their order is the fold's, not part of the state):
        // automatic incidents whose findings are all resolved close.
        for index in resolved_in {
            let incident = &mut self.incidents[index];
            if incident.kind == IncidentKind::Automatic
                && incident.is_open()
                && incident
                    .findings
                    .iter()
                    .all(|f| !findings.is_active(&f.cluster, &f.check_key))
            {
                incident.closed_at = Some(at.max(incident.opened_at));
                incident.closed_seq = Some(seq);
                incident.touch(seq, at, "incident_closed", None);
                Self::set_open(
                    &mut self.open,
                    &mut self.open_auto,
                    &self.incidents[index],
                    index,
                    false,
                );
            }
        }
        match &event.payload {
            Payload::CycleCompleted(cycle) if self.armed.iter().any(|(c, _)| c == cluster) => {
                self.observe_layers(seq, at, cluster, cycle);
            }
            Payload::IncidentOpened(change) => {
                self.apply_incident(seq, at, cluster, change, "incident_opened", findings)
            }
            Payload::IncidentUpdated(change) => {
                self.apply_incident(seq, at, cluster, change, "incident_updated", findings)
            }
            Payload::IncidentClosed(change) => {
                self.apply_incident(seq, at, cluster, change, "incident_closed", findings)
            }
            Payload::NoteAdded(note) => self.apply_note(seq, at, cluster, note),
            Payload::ChangeDeployed(deploy) => {
                self.apply_deploy(seq, at, cluster, deploy, findings)
            }
            Payload::AlertFired(alert) => self.apply_alert(seq, at, cluster, alert, "alert_fired"),
            Payload::AlertResolved(alert) => {
                self.apply_alert(seq, at, cluster, alert, "alert_resolved")
            }
            _ => {}
        }
    }

    fn open_incidents_of(&self, cluster: &str, check_key: &str) -> Vec<usize> {
        self.by_finding
            .get(cluster)
            .and_then(|keys| keys.get(check_key))
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&i| self.incidents[i].is_open())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_finding_change(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        check_key: &str,
        change: FindingChange,
        findings: &FindingsProjection,
        resolved_in: &mut BTreeSet<usize>,
    ) {
        let open = self.open_incidents_of(cluster, check_key);
        let facts = findings.finding_facts(cluster, check_key);
        for i in open {
            let incident = &mut self.incidents[i];
            incident.touch(seq, at, change.as_str(), Some(check_key));
            if let Some(facts) = facts
                && let Some(f) = incident
                    .findings
                    .iter_mut()
                    .find(|f| f.check_key == check_key && f.cluster == cluster)
            {
                f.max_severity = f.max_severity.max(facts.severity);
            }
            if change == FindingChange::Opened {
                incident.last_opened_at = at;
            }
            if matches!(change, FindingChange::Resolved(_)) {
                resolved_in.insert(i);
            }
        }
    }

    /// The findings one event opened outside any open incident: grouped with each other
    /// (union-find over shared namespace or graph component, so the order of the findings in
    /// the event does not matter), then each group, judged against the incidents as they were
    /// before the event, goes to the oldest open explicit incident one of whose findings is
    /// still failing next to it, else joins the oldest open automatic incident it may join,
    /// else opens one.
    fn group(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        opened: &BTreeSet<&str>,
        findings: &FindingsProjection,
        graph: &impl ResourceGraph,
    ) {
        let settings = findings.settings_of(cluster);
        let min_severity = settings.map_or(Severity::Warning, |s| s.notification_min_severity);
        let window_secs = settings.map_or(600, |s| s.incident_window_secs);
        let window_start = at.plus_secs(-i64::try_from(window_secs).unwrap_or(i64::MAX));
        // The candidates, most severe first, then by check key: the order groups are numbered
        // and findings join in, independent of the event's order.
        let mut candidates: Vec<Candidate<'_>> = opened
            .iter()
            .filter_map(|&check_key| {
                let facts = findings.finding_facts(cluster, check_key)?;
                // Informational findings are resolved as they open: no incident. A finding
                // that names no resource can share nothing with another: grouping has nothing
                // to go on, so it opens no automatic incident (an explicit one may name it).
                let resource = facts.resource.filter(|_| facts.active)?;
                (facts.severity >= min_severity).then(|| Candidate {
                    check_key,
                    severity: facts.severity,
                    keys: GroupKeys::of(cluster, resource, graph),
                })
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.check_key.cmp(b.check_key))
        });
        // Union-find: two findings that share a namespace or a component are one group.
        let mut parent: Vec<usize> = (0..candidates.len()).collect();
        fn root(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for i in 0..candidates.len() {
            for j in i + 1..candidates.len() {
                if candidates[i].keys.shares(&candidates[j].keys) {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    // The root is the group's first candidate in the order above.
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..candidates.len() {
            groups.entry(root(&mut parent, i)).or_default().push(i);
        }
        // Where each group goes, judged against the incidents before this event.
        let targets: Vec<(Vec<usize>, Option<usize>)> = groups
            .into_values()
            .map(|members| {
                let shares =
                    |keys: &GroupKeys| members.iter().any(|&m| candidates[m].keys.shares(keys));
                let explicit = self.open.iter().copied().find(|&i| {
                    let incident = &self.incidents[i];
                    incident.kind == IncidentKind::Explicit
                        && incident.findings.iter().any(|f| {
                            f.cluster == cluster
                                && findings
                                    .finding_facts(cluster, &f.check_key)
                                    .filter(|facts| {
                                        facts.active && facts.last_seen_at >= window_start
                                    })
                                    .and_then(|facts| facts.resource)
                                    .is_some_and(|r| shares(&GroupKeys::of(cluster, r, graph)))
                        })
                });
                let automatic = || {
                    self.open_auto
                        .get(cluster)
                        .into_iter()
                        .flatten()
                        .copied()
                        .find(|&i| {
                            let incident = &self.incidents[i];
                            incident.last_opened_at >= window_start
                                && shares(&GroupKeys {
                                    namespaces: incident.namespaces.iter().cloned().collect(),
                                    components: incident.components.iter().cloned().collect(),
                                })
                        })
                };
                let target = explicit.or_else(automatic);
                (members, target)
            })
            .collect();
        for (members, target) in targets {
            let index = match target {
                Some(index) => index,
                None => {
                    // Named after the position that opened it; several in one event get -2, -3...
                    let mut id = format!("auto-{cluster}-{seq}");
                    let mut n = 1;
                    while self.by_id.contains_key(&id) {
                        n += 1;
                        id = format!("auto-{cluster}-{seq}-{n}");
                    }
                    self.create(&id, IncidentKind::Automatic, cluster, seq, at);
                    self.by_id[&id]
                }
            };
            for member in members {
                let check_key = candidates[member].check_key;
                self.add_finding(index, seq, at, cluster, check_key, findings, Some(graph));
                let incident = &mut self.incidents[index];
                incident.last_opened_at = at;
                incident.touch(seq, at, "opened", Some(check_key));
            }
        }
    }

    fn create(&mut self, id: &str, kind: IncidentKind, cluster: &str, seq: u64, at: Timestamp) {
        let index = self.incidents.len();
        self.incidents.push(Incident {
            id: id.to_owned(),
            kind,
            cluster: cluster.to_owned(),
            declared_title: None,
            declared_severity: None,
            summary: None,
            opened_at: at,
            opened_seq: seq,
            closed_at: None,
            closed_seq: None,
            merged_into: None,
            findings: Vec::new(),
            last_opened_at: at,
            namespaces: BTreeSet::new(),
            components: BTreeSet::new(),
            notes: BTreeMap::new(),
            layers: BTreeMap::new(),
            timeline: Vec::new(),
        });
        self.by_id.insert(id.to_owned(), index);
        Self::set_open(
            &mut self.open,
            &mut self.open_auto,
            &self.incidents[index],
            index,
            true,
        );
    }

    /// Adds a finding to an incident (once), with its namespace, component and first layer.
    #[allow(clippy::too_many_arguments)]
    fn add_finding(
        &mut self,
        index: usize,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        check_key: &str,
        findings: &FindingsProjection,
        graph: Option<&dyn ResourceGraphDyn>,
    ) {
        if self.incidents[index].has_finding(cluster, check_key) {
            return;
        }
        let facts = findings.finding_facts(cluster, check_key);
        let incident = &mut self.incidents[index];
        incident.findings.push(IncidentFinding {
            cluster: cluster.to_owned(),
            check_key: check_key.to_owned(),
            joined_at: at,
            joined_seq: seq,
            max_severity: facts.map_or(Severity::Info, |f| f.severity),
        });
        if let Some(facts) = facts {
            if let Some(resource) = facts.resource {
                if let Some(ns) = &resource.namespace {
                    incident.namespaces.insert(ns.clone());
                }
                if let Some(component) = graph.and_then(|g| g.component_of_dyn(cluster, resource)) {
                    incident.components.insert(component.to_owned());
                }
            }
            let resource = facts
                .resource
                .map_or_else(|| check_key.to_owned(), resource_label);
            let layers =
                incident
                    .layers
                    .entry(resource.clone())
                    .or_insert_with(|| ResourceLayers {
                        resource,
                        layers: Vec::new(),
                        armed_by: None,
                        current_layer: 0,
                        diverted_by_rollback: false,
                    });
            if layers.layers.is_empty() {
                layers.layers.push(FailureLayer {
                    number: 1,
                    check_key: check_key.to_owned(),
                    signature: facts.detail.unwrap_or(facts.title).to_owned(),
                    first_seen_at: at,
                    first_seen_seq: seq,
                    after_change: None,
                    changes_without_effect: Vec::new(),
                    failed_differently: Vec::new(),
                    seen_again_after: Vec::new(),
                });
                layers.current_layer = 1;
            }
        }
        self.link(cluster, check_key, index);
    }

    /// Keeps the open sets in step with an incident's state.
    fn set_open(
        open: &mut BTreeSet<usize>,
        open_auto: &mut BTreeMap<String, BTreeSet<usize>>,
        incident: &Incident,
        index: usize,
        is_open: bool,
    ) {
        if is_open {
            open.insert(index);
            if incident.kind == IncidentKind::Automatic {
                open_auto
                    .entry(incident.cluster.clone())
                    .or_default()
                    .insert(index);
            }
        } else {
            open.remove(&index);
            if let Some(set) = open_auto.get_mut(&incident.cluster) {
                set.remove(&index);
                if set.is_empty() {
                    open_auto.remove(&incident.cluster);
                }
            }
        }
    }

    /// Records that a finding belongs to an incident (indices kept sorted and unique).
    fn link(&mut self, cluster: &str, check_key: &str, index: usize) {
        if !self.by_finding.contains_key(cluster) {
            self.by_finding.insert(cluster.to_owned(), BTreeMap::new());
        }
        let keys = self.by_finding.get_mut(cluster).expect("inserted above");
        if !keys.contains_key(check_key) {
            keys.insert(check_key.to_owned(), Vec::new());
        }
        let list = keys.get_mut(check_key).expect("inserted above");
        if let Err(pos) = list.binary_search(&index) {
            list.insert(pos, index);
        }
    }

    /// An explicit incident names a finding that an open automatic incident holds: the
    /// automatic one is absorbed.
    fn absorb(&mut self, into: usize, from: usize, seq: u64, at: Timestamp) {
        let absorbed = std::mem::take(&mut self.incidents[from].findings);
        let from_id = self.incidents[from].id.clone();
        let into_id = self.incidents[into].id.clone();
        let from_timeline = std::mem::take(&mut self.incidents[from].timeline);
        let from_layers = std::mem::take(&mut self.incidents[from].layers);
        let from_namespaces = std::mem::take(&mut self.incidents[from].namespaces);
        let from_components = std::mem::take(&mut self.incidents[from].components);
        {
            let source = &mut self.incidents[from];
            source.merged_into = Some(into_id);
            // (leaves the open sets below)
            source.findings = absorbed.clone();
            source.touch(seq, at, "merged", None);
        }
        Self::set_open(
            &mut self.open,
            &mut self.open_auto,
            &self.incidents[from],
            from,
            false,
        );
        for finding in absorbed {
            if !self.incidents[into].has_finding(&finding.cluster, &finding.check_key) {
                self.link(&finding.cluster, &finding.check_key, into);
                self.incidents[into].findings.push(finding);
            }
        }
        let target = &mut self.incidents[into];
        target.namespaces.extend(from_namespaces);
        target.components.extend(from_components);
        for (resource, layers) in from_layers {
            target.layers.entry(resource).or_insert(layers);
        }
        let mut merged: BTreeMap<u64, IncidentEntry> = target
            .timeline
            .drain(..)
            .chain(from_timeline)
            .fold(BTreeMap::new(), |mut map, entry| {
                map.entry(entry.seq)
                    .and_modify(|e: &mut IncidentEntry| {
                        for touch in &entry.touches {
                            if let Err(pos) = e.touches.binary_search(touch) {
                                e.touches.insert(pos, touch.clone());
                            }
                        }
                    })
                    .or_insert(entry);
                map
            });
        target.timeline = std::mem::take(&mut merged).into_values().collect();
        target.touch(seq, at, "merged", Some(&from_id));
        let (from_opened_at, from_opened_seq) = (
            self.incidents[from].opened_at,
            self.incidents[from].opened_seq,
        );
        let target = &mut self.incidents[into];
        if target.opened_at > from_opened_at {
            // The explicit incident started when its first finding did.
            target.opened_at = from_opened_at;
            target.opened_seq = from_opened_seq;
        }
    }

    fn apply_incident(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        change: &IncidentChange,
        what: &str,
        findings: &FindingsProjection,
    ) {
        let index = match self.by_id.get(&change.incident) {
            Some(&index) => index,
            None => {
                self.create(&change.incident, IncidentKind::Explicit, cluster, seq, at);
                self.by_id[&change.incident]
            }
        };
        {
            let incident = &mut self.incidents[index];
            if change.title.is_some() {
                incident.declared_title.clone_from(&change.title);
            }
            if change.severity.is_some() {
                incident.declared_severity = change.severity;
            }
            if change.summary.is_some() {
                incident.summary.clone_from(&change.summary);
            }
            match what {
                "incident_closed" => {
                    // Clusters have clocks of their own: an incident closed from a cluster whose
                    // clock is behind the one that opened it never closes before it opened.
                    incident.closed_at = Some(at.max(incident.opened_at));
                    incident.closed_seq = Some(seq);
                }
                "incident_opened" if incident.closed_seq.is_some() => {
                    // Reopened.
                    incident.closed_at = None;
                    incident.closed_seq = None;
                }
                _ => {}
            }
            incident.touch(seq, at, what, None);
            if incident.is_open() {
                Self::set_open(
                    &mut self.open,
                    &mut self.open_auto,
                    &self.incidents[index],
                    index,
                    true,
                );
            } else {
                Self::set_open(
                    &mut self.open,
                    &mut self.open_auto,
                    &self.incidents[index],
                    index,
                    false,
                );
            }
        }
        for check_key in &change.check_keys {
            let absorb: Vec<usize> = self
                .open_incidents_of(cluster, check_key)
                .into_iter()
                .filter(|&i| i != index && self.incidents[i].kind == IncidentKind::Automatic)
                .collect();
            for from in absorb {
                self.absorb(index, from, seq, at);
            }
            if !self.incidents[index].has_finding(cluster, check_key) {
                self.add_finding(index, seq, at, cluster, check_key, findings, None);
                self.incidents[index].touch(seq, at, "joined", Some(check_key));
            }
        }
    }

    /// The incidents an entry linked by id or by check keys belongs to.
    fn linked(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        incident: Option<&str>,
        check_keys: &[String],
    ) -> Vec<usize> {
        let mut targets = BTreeSet::new();
        if let Some(id) = incident {
            let index = match self.by_id.get(id) {
                Some(&index) => index,
                None => {
                    // Named before it was opened: recorded anyway, explicit, untitled.
                    self.create(id, IncidentKind::Explicit, cluster, seq, at);
                    self.by_id[id]
                }
            };
            targets.insert(self.resolve_merged(index));
        }
        for check_key in check_keys {
            targets.extend(self.open_incidents_of(cluster, check_key));
        }
        targets.into_iter().collect()
    }

    fn resolve_merged(&self, mut index: usize) -> usize {
        while let Some(into) = &self.incidents[index].merged_into {
            index = self.by_id[into];
        }
        index
    }

    fn apply_note(&mut self, seq: u64, at: Timestamp, cluster: &str, note: &NoteAdded) {
        let kind = note_kind(note.kind);
        for index in self.linked(seq, at, cluster, note.incident.as_deref(), &note.check_keys) {
            let incident = &mut self.incidents[index];
            *incident.notes.entry(kind.to_owned()).or_default() += 1;
            incident.touch(seq, at, &format!("note_{kind}"), None);
        }
    }

    fn apply_deploy(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        deploy: &ChangeDeployed,
        findings: &FindingsProjection,
    ) {
        let mut targets = self.linked(
            seq,
            at,
            cluster,
            deploy.incident.as_deref(),
            &deploy.check_keys,
        );
        // Unlinked: the open incidents of this cluster with a finding on the deployed workload.
        if targets.is_empty() {
            targets = self
                .open
                .iter()
                .copied()
                .filter(|&i| {
                    let incident = &self.incidents[i];
                    incident.findings.iter().any(|f| {
                        f.cluster == cluster
                            && findings
                                .finding_facts(cluster, &f.check_key)
                                .and_then(|facts| facts.resource)
                                .is_some_and(|r| workload_matches(r, &deploy.service))
                    })
                })
                .collect();
        }
        let change = ChangeRef {
            service: deploy.service.clone(),
            version: deploy.version.clone(),
            kind: deploy.kind,
            seq,
            at,
        };
        let what = match deploy.kind {
            ChangeKind::Deploy => "deploy",
            ChangeKind::Rollback => "rollback",
            ChangeKind::Config => "config",
        };
        for index in targets {
            let incident = &mut self.incidents[index];
            incident.touch(seq, at, what, None);
            // Arm the resources the change is about: by service name, else all of them.
            let matching: Vec<String> = incident
                .layers
                .keys()
                .filter(|label| label_matches_service(label, &deploy.service))
                .cloned()
                .collect();
            let arm: Vec<String> = if matching.is_empty() {
                incident.layers.keys().cloned().collect()
            } else {
                matching
            };
            for label in arm {
                if let Some(layers) = incident.layers.get_mut(&label) {
                    layers.armed_by = Some(change.clone());
                }
            }
            self.armed.insert((cluster.to_owned(), index));
        }
    }

    fn apply_alert(&mut self, seq: u64, at: Timestamp, cluster: &str, alert: &Alert, what: &str) {
        let Some(namespace) = alert.labels.get("namespace") else {
            return;
        };
        for &i in &self.open {
            let incident = &mut self.incidents[i];
            if incident.cluster == cluster && incident.namespaces.contains(namespace) {
                incident.touch(seq, at, what, None);
            }
        }
    }

    /// A cycle after a change: what the armed resources show now.
    fn observe_layers(&mut self, seq: u64, at: Timestamp, cluster: &str, cycle: &CycleCompleted) {
        let armed: Vec<usize> = self
            .armed
            .iter()
            .filter(|(c, _)| c == cluster)
            .map(|&(_, i)| i)
            .collect();
        for index in armed {
            let incident = &mut self.incidents[index];
            if !incident.is_open() {
                self.armed.remove(&(cluster.to_owned(), index));
                continue;
            }
            let mut still_armed = false;
            let labels: Vec<String> = incident
                .layers
                .iter()
                .filter(|(_, l)| l.armed_by.is_some())
                .map(|(label, _)| label.clone())
                .collect();
            for label in labels {
                // The last entry of the cycle for one of the incident's findings on this resource.
                let seen = cycle.findings.iter().rev().find(|obs| {
                    incident.has_finding(cluster, &obs.check_key)
                        && obs
                            .resource
                            .as_ref()
                            .map_or_else(|| obs.check_key.clone(), resource_label)
                            == label
                });
                let Some(obs) = seen else {
                    still_armed = true;
                    continue;
                };
                let signature = obs.detail.as_deref().unwrap_or(&obs.title).to_owned();
                let layers = incident.layers.get_mut(&label).expect("listed above");
                let change = layers.armed_by.take().expect("armed");
                let what = layers.observe(change, &obs.check_key, signature, seq, at);
                incident.touch(seq, at, what, Some(&obs.check_key));
            }
            if !still_armed {
                self.armed.remove(&(cluster.to_owned(), index));
            }
        }
    }

    /// Every incident, in the order they opened (absorbed ones included, marked).
    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    /// One incident by id.
    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.by_id.get(id).map(|&i| &self.incidents[i])
    }

    /// An incident as users see it.
    pub fn view(&self, incident: &Incident, findings: &FindingsProjection) -> IncidentView {
        let finding_views: Vec<IncidentFindingView> = incident
            .findings
            .iter()
            .map(|f| {
                let facts = findings.finding_facts(&f.cluster, &f.check_key);
                IncidentFindingView {
                    cluster: f.cluster.clone(),
                    check_key: f.check_key.clone(),
                    title: facts.map(|x| x.title.to_owned()),
                    severity: f.max_severity,
                    active: facts.is_some_and(|x| x.active),
                    joined_at: f.joined_at,
                }
            })
            .collect();
        let severity = incident
            .findings
            .iter()
            .map(|f| f.max_severity)
            .fold(incident.declared_severity, |acc, s| {
                Some(max_severity(acc, s))
            })
            .unwrap_or(Severity::Info);
        let title =
            incident
                .declared_title
                .clone()
                .unwrap_or_else(|| match finding_views.first() {
                    Some(first) => {
                        let title = first
                            .title
                            .clone()
                            .unwrap_or_else(|| first.check_key.clone());
                        match finding_views.len() {
                            1 => title,
                            n => format!("{title} (+{} more)", n - 1),
                        }
                    }
                    None => incident.id.clone(),
                });
        IncidentView {
            id: incident.id.clone(),
            kind: incident.kind,
            cluster: incident.cluster.clone(),
            title,
            severity,
            state: if incident.merged_into.is_some() {
                IncidentState::Merged
            } else if incident.closed_seq.is_some() {
                IncidentState::Closed
            } else {
                IncidentState::Open
            },
            opened_at: incident.opened_at,
            opened_seq: incident.opened_seq,
            closed_at: incident.closed_at,
            closed_seq: incident.closed_seq,
            duration_secs: incident.closed_at.map(|closed| {
                closed
                    .saturating_duration_since(incident.opened_at)
                    .as_secs()
            }),
            summary: incident.summary.clone(),
            merged_into: incident.merged_into.clone(),
            findings: finding_views,
            notes: incident.notes.clone(),
            layers: incident
                .layers
                .values()
                .filter(|l| {
                    l.layers.len() > 1
                        || l.layers.iter().any(|x| {
                            !x.changes_without_effect.is_empty()
                                || !x.failed_differently.is_empty()
                                || !x.seen_again_after.is_empty()
                        })
                })
                .cloned()
                .collect(),
            timeline_entries: incident.timeline.len() as u64,
        }
    }

    /// Every incident as users see it, in the order they opened; absorbed ones only with
    /// `include_merged`.
    pub fn views(
        &self,
        findings: &FindingsProjection,
        cluster: Option<&str>,
        include_merged: bool,
    ) -> Vec<IncidentView> {
        self.incidents
            .iter()
            .filter(|i| cluster.is_none_or(|c| c == i.cluster))
            .filter(|i| include_merged || i.merged_into.is_none())
            .map(|i| self.view(i, findings))
            .collect()
    }

    /// A serializable copy of the whole state.
    pub fn snapshot(&self) -> IncidentsSnapshot {
        self.clone()
    }

    /// Resumes from a snapshot.
    pub fn restore(snapshot: &IncidentsSnapshot) -> Self {
        let mut projection = Self {
            incidents: snapshot.incidents.clone(),
            armed: snapshot.armed.clone(),
            ..Self::default()
        };
        for (index, incident) in snapshot.incidents.iter().enumerate() {
            projection.by_id.insert(incident.id.clone(), index);
            if incident.is_open() {
                Self::set_open(
                    &mut projection.open,
                    &mut projection.open_auto,
                    incident,
                    index,
                    true,
                );
            }
            for finding in &incident.findings {
                projection.link(&finding.cluster, &finding.check_key, index);
            }
        }
        projection
    }
}

/// A finding that opened outside any open incident, waiting to be grouped.
struct Candidate<'a> {
    check_key: &'a str,
    severity: Severity,
    keys: GroupKeys,
}

/// What grouping goes by: namespaces and resource-graph components.
struct GroupKeys {
    namespaces: Vec<String>,
    components: Vec<String>,
}

impl GroupKeys {
    fn of(cluster: &str, resource: &ResourceRef, graph: &impl ResourceGraph) -> Self {
        Self {
            namespaces: resource.namespace.iter().cloned().collect(),
            components: graph
                .component_of(cluster, resource)
                .map(str::to_owned)
                .into_iter()
                .collect(),
        }
    }

    fn shares(&self, other: &GroupKeys) -> bool {
        self.namespaces.iter().any(|n| other.namespaces.contains(n))
            || self.components.iter().any(|c| other.components.contains(c))
    }
}

/// Object-safe form of [`ResourceGraph`] for the places that hold it as a trait object.
trait ResourceGraphDyn {
    fn component_of_dyn(&self, cluster: &str, resource: &ResourceRef) -> Option<&str>;
}

impl<T: ResourceGraph> ResourceGraphDyn for T {
    fn component_of_dyn(&self, cluster: &str, resource: &ResourceRef) -> Option<&str> {
        self.component_of(cluster, resource)
    }
}

fn note_kind(kind: NoteKind) -> &'static str {
    match kind {
        NoteKind::Observation => "observation",
        NoteKind::Hypothesis => "hypothesis",
        NoteKind::Action => "action",
        NoteKind::Decision => "decision",
        NoteKind::Resolution => "resolution",
    }
}

/// Whether a deploy of `service` is about this resource: its name or workload name.
fn workload_matches(resource: &ResourceRef, service: &str) -> bool {
    resource.name == service || crate::hygiene::stable_name(&resource.name) == service
}

/// Whether a layer label (`Kind ns/workload`) names the deployed service.
fn label_matches_service(label: &str, service: &str) -> bool {
    let name = label.rsplit(['/', ' ']).next().unwrap_or(label);
    name == service
}

/// Open, closed, or absorbed into another incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Still going.
    Open,
    /// Over.
    Closed,
    /// Absorbed into an explicit incident.
    Merged,
}

/// A finding of an incident as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentFindingView {
    /// Its cluster.
    pub cluster: String,
    /// Its key.
    pub check_key: String,
    /// Latest title, when the finding is known.
    pub title: Option<String>,
    /// Highest severity seen while in the incident.
    pub severity: Severity,
    /// Active now.
    pub active: bool,
    /// When it joined.
    pub joined_at: Timestamp,
}

/// An incident as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentView {
    /// Id.
    pub id: String,
    /// Explicit or automatic.
    pub kind: IncidentKind,
    /// Cluster.
    pub cluster: String,
    /// Declared title, else from its findings.
    pub title: String,
    /// Max of its findings' severities (and the declared one).
    pub severity: Severity,
    /// Open, closed or merged.
    pub state: IncidentState,
    /// When it opened.
    pub opened_at: Timestamp,
    /// Log position.
    pub opened_seq: u64,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
    /// Log position.
    pub closed_seq: Option<u64>,
    /// Closed minus opened.
    pub duration_secs: Option<u64>,
    /// Declared summary.
    pub summary: Option<String>,
    /// The incident that absorbed it.
    pub merged_into: Option<String>,
    /// Its findings.
    pub findings: Vec<IncidentFindingView>,
    /// Notes by kind.
    pub notes: BTreeMap<String, u32>,
    /// Resources that failed in more than one way across changes, layer by layer.
    pub layers: Vec<ResourceLayers>,
    /// Entries in its timeline.
    pub timeline_entries: u64,
}
