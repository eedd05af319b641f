//! Failure layers (seed 000: three bugs, each hidden by the one before): per resource of an
//! incident, the failure signatures it showed, and what each change linked to the incident did
//! to them (see `ResourceLayers::observe`).

use crate::event::{ChangeKind, CycleCompleted};
use crate::timestamp::Timestamp;

use super::{
    ChangeRef, DifferentFailure, FailureLayer, IncidentProjection, ResourceLayers, resource_label,
};

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
            // An incident out of memory is not open (only those that are not are written out).
            let Some(incident) = self.incidents.get_mut(index).filter(|i| i.is_open()) else {
                self.armed.remove(&(cluster.to_owned(), index));
                continue;
            };
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
