//! Explicit incidents (`incident.*`) and what links to incidents: notes, deploys and alerts, by
//! incident id, by check key, or (deploys) by the service a resource's workload names; a deploy
//! linked to none of an open incident of its cluster is on its timeline anyway, linked only by
//! time (`deploy_during`, ...). An explicit incident that names a finding of an open automatic
//! incident absorbs it.

use std::collections::BTreeSet;

use crate::event::{
    Alert, ChangeDeployed, ChangeKind, IncidentChange, NoteAdded, NoteKind, ResourceRef,
};
use crate::findings::FindingsProjection;
use crate::timestamp::Timestamp;

use super::{ChangeRef, IncidentKind, IncidentProjection};
use crate::timeline_rows::merge_entries;

impl IncidentProjection {
    /// An explicit incident names a finding that an open automatic incident holds: the
    /// automatic one is absorbed.
    pub(super) fn absorb(&mut self, into: usize, from: usize, seq: u64, at: Timestamp) {
        let absorbed = std::mem::take(&mut self.incidents[from].findings);
        let from_id = self.incidents[from].id.clone();
        let into_id = self.incidents[into].id.clone();
        let written = self.take_written_for_absorb(from, seq);
        let from_timeline =
            merge_entries(written, std::mem::take(&mut self.incidents[from].timeline));
        self.touched.extend([from, into]);
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
        // Both in log order, each position once: the touches of a position in both unioned.
        target.timeline = merge_entries(std::mem::take(&mut target.timeline), from_timeline);
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

    pub(super) fn apply_incident(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        change: &IncidentChange,
        what: &str,
        findings: &FindingsProjection,
    ) {
        let index = match self.find(&change.incident, seq) {
            Some(index) => index,
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
            self.touched.push(index);
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
    pub(super) fn linked(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        incident: Option<&str>,
        check_keys: &[String],
    ) -> Vec<usize> {
        let mut targets = BTreeSet::new();
        if let Some(id) = incident {
            let index = match self.find(id, seq) {
                Some(index) => index,
                None => {
                    // Named before it was opened: recorded anyway, explicit, untitled.
                    self.create(id, IncidentKind::Explicit, cluster, seq, at);
                    self.by_id[id]
                }
            };
            targets.insert(self.resolve_merged(index, seq));
        }
        for check_key in check_keys {
            targets.extend(self.open_incidents_of(cluster, check_key));
        }
        targets.into_iter().collect()
    }

    /// The incident `index` was absorbed into, followed to the end (read back into memory for
    /// the event at `seq`).
    pub(super) fn resolve_merged(&mut self, mut index: usize, seq: u64) -> usize {
        while let Some(into) = self.incidents[index].merged_into.clone() {
            match self.find(&into, seq) {
                Some(next) => index = next,
                None => break,
            }
        }
        index
    }

    pub(super) fn apply_note(&mut self, seq: u64, at: Timestamp, cluster: &str, note: &NoteAdded) {
        let kind = note_kind(note.kind);
        for index in self.linked(seq, at, cluster, note.incident.as_deref(), &note.check_keys) {
            let incident = &mut self.incidents[index];
            *incident.notes.entry(kind.to_owned()).or_default() += 1;
            incident.touch(seq, at, &format!("note_{kind}"), None);
            self.touched.push(index);
        }
    }

    pub(super) fn apply_deploy(
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
        // Linked only by time: every other open incident that spans the cluster (ADR 0007,
        // "Changes during an incident"). On its timeline, never arming its layers.
        let during: Vec<usize> = self
            .open
            .iter()
            .copied()
            .filter(|i| !targets.contains(i))
            .filter(|&i| self.incidents[i].spans_cluster(cluster))
            .collect();
        for index in during {
            self.incidents[index].touch(seq, at, during_kind(deploy.kind), None);
        }
        for index in targets {
            self.touched.push(index);
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

    pub(super) fn apply_alert(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        alert: &Alert,
        what: &str,
    ) {
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
}

/// The timeline change of a `change.deployed` on an open incident of its cluster that it is not
/// linked to (by id, check key or resource): a change during the incident, linked only by time.
fn during_kind(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Deploy => "deploy_during",
        ChangeKind::Rollback => "rollback_during",
        ChangeKind::Config => "config_during",
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
