//! Failure layers (seed 000: three bugs, each hidden by the one before): per resource of an
//! incident, the failure signatures it showed, and what each change linked to the incident did
//! to them (see `ResourceLayers::observe`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{ChangeKind, CycleCompleted};
use crate::timestamp::Timestamp;

use super::{IncidentProjection, resource_label};

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

impl IncidentProjection {
    /// A cycle after a change: what the armed resources show now.
    pub(super) fn observe_layers(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        cycle: &CycleCompleted,
    ) {
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
}
