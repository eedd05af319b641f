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
//!
//! **Changes during an incident** (ADR 0007). Every other open incident of the deploy's cluster
//! (of it, or holding a finding of it) gets the change on its timeline as `deploy_during`,
//! `rollback_during` or `config_during`: linked only by time, so it arms no layer.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::{Event, Payload, ResourceRef, Severity};
use crate::findings::{FindingChange, FindingsProjection};
use crate::timestamp::Timestamp;

mod explicit;
mod grouping;
mod layers;
mod rows;
mod slots;
mod snapshot;
mod timeline;
mod views;
mod watch;

pub use self::snapshot::{IncidentNumbers, IncidentsSnapshot};
pub use self::views::{IncidentFindingView, IncidentState, IncidentView};
pub use crate::incident_bodies::{
    ChangeRef, DifferentFailure, FailureLayer, Incident, IncidentFinding, IncidentKind,
    ResourceLayers,
};
pub use crate::timeline_rows::{IncidentEntry, Touch};

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

impl Incident {
    /// The incident without its timeline: what a body row holds (ADR 0006 step 4).
    pub fn without_timeline(&self) -> Incident {
        Incident {
            timeline: Vec::new(),
            ..self.clone()
        }
    }

    fn is_open(&self) -> bool {
        self.closed_seq.is_none() && self.merged_into.is_none()
    }

    /// The clusters it spans: its own and its findings', sorted.
    pub fn clusters(&self) -> BTreeSet<String> {
        std::iter::once(self.cluster.clone())
            .chain(self.findings.iter().map(|f| f.cluster.clone()))
            .collect()
    }

    /// Whether the incident is of `cluster` or holds a finding of it.
    fn spans_cluster(&self, cluster: &str) -> bool {
        self.cluster == cluster || self.findings.iter().any(|f| f.cluster == cluster)
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
#[derive(Clone, Debug, Default)]
pub struct IncidentProjection {
    /// The incidents in memory, by number (the order they were created): every one, or, where
    /// the live state writes incidents out (`rows.rs`), the open ones.
    incidents: slots::Slots,
    /// The number the next incident gets.
    next_number: usize,
    /// The numbers of the incidents in memory by id (rebuilt on restore).
    by_id: BTreeMap<String, usize>,
    /// Incidents in memory each finding (by cluster, then check_key) has joined, by number
    /// (rebuilt on restore).
    by_finding: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    /// Open incidents (not closed, not absorbed), by number, oldest first (rebuilt on restore).
    open: BTreeSet<usize>,
    /// The open automatic ones, by cluster (what a new finding may join; rebuilt on restore).
    open_auto: BTreeMap<String, BTreeSet<usize>>,
    /// Resources armed by a change, waiting for an observation: (cluster, incident number).
    armed: BTreeSet<(String, usize)>,
    /// Where the entries of incidents that are not open go (`rows.rs`).
    rows: rows::TimelineRows,
    /// The incidents the event being applied touched in a way that may leave them not open
    /// with entries in memory (by number, unsorted): written out at its end.
    touched: Vec<usize>,
    /// The incidents the event being applied read back from their rows (by number): forgotten
    /// at its end unless open.
    loaded: Vec<usize>,
    /// `Some` while the event being applied is watched: what it changed is said at its end
    /// (`watch.rs`, ADR 0008).
    watched: Option<watch::WatchedEvent>,
}

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
        // A finding that opened inside a maintenance window waits for it to end
        // (`maintenance_suppresses_incidents`); the findings whose window ended by this event
        // are grouped now, as if they opened now.
        // A released finding that also opened again in this event opened outside any window:
        // it is grouped as opened.
        let released: BTreeSet<&str> = findings
            .maintenance_released(cluster)
            .into_iter()
            .filter(|key| self.open_incidents_of(cluster, key).is_empty())
            .filter(|key| {
                !changes
                    .iter()
                    .any(|(k, c)| k == key && *c == FindingChange::Opened)
            })
            .collect();
        let opened_outside: BTreeSet<&str> = changes
            .iter()
            .filter(|(key, change)| {
                *change == FindingChange::Opened
                    && self.open_incidents_of(cluster, key).is_empty()
                    && !findings.incident_deferred(cluster, key)
            })
            .map(|(key, _)| key.as_str())
            .chain(released.iter().copied())
            .collect();
        if !opened_outside.is_empty() {
            self.group(
                seq,
                at,
                cluster,
                &opened_outside,
                &released,
                findings,
                graph,
            );
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
                self.touched.push(index);
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
        if self.watched.is_some() {
            self.say_changes_of_event(seq, findings);
        }
        self.write_out_touched(seq);
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

    fn create(&mut self, id: &str, kind: IncidentKind, cluster: &str, seq: u64, at: Timestamp) {
        let index = self.next_number;
        self.next_number += 1;
        self.incidents.insert(
            index,
            Incident {
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
            },
        );
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

    /// Records that the findings of incident `index` (in memory) belong to it (it enters
    /// memory: restored, or read back).
    fn link_all(&mut self, index: usize) {
        let findings: Vec<(String, String)> = self.incidents[index]
            .findings
            .iter()
            .map(|f| (f.cluster.clone(), f.check_key.clone()))
            .collect();
        for (cluster, check_key) in findings {
            self.link(&cluster, &check_key, index);
        }
    }

    /// Forgets that the findings of incident `index` belong to it (it leaves memory).
    fn unlink_all(&mut self, index: usize) {
        let Some(incident) = self.incidents.get(index) else {
            return;
        };
        for finding in &incident.findings {
            let Some(keys) = self.by_finding.get_mut(&finding.cluster) else {
                continue;
            };
            if let Some(list) = keys.get_mut(&finding.check_key) {
                list.retain(|&i| i != index);
                if list.is_empty() {
                    keys.remove(&finding.check_key);
                }
            }
            if keys.is_empty() {
                self.by_finding.remove(&finding.cluster);
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
