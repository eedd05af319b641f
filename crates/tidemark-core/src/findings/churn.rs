//! Churn and drift suspects, noted from a cycle's first absences: new keys that die young
//! (churn per category, the signature of an unstable check key), and a finding going absent as
//! another opens for the same category and resource (a check key that drifted).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::ResourceRef;
use crate::timestamp::Timestamp;

use super::ClusterFindings;

/// Runs of a category over which short-lived keys are counted for churn.
pub const CHURN_WINDOW_RUNS: u64 = 20;
/// Short-lived keys of one category inside the churn window from which the category churns.
pub const CHURN_MIN_KEYS: usize = 3;
/// A new key that goes absent after this many runs or fewer of its category is short-lived.
const SHORT_LIVED_RUNS: u64 = 2;
/// Short-lived keys kept per category (the window needs at most its runs' worth).
const CHURN_RECORDS_KEPT: usize = 64;

/// A new key that went absent within two runs of its category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChurnRecord {
    /// The category run in which it went absent.
    pub run: u64,
    /// The key.
    pub check_key: String,
    /// Log position of that cycle.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
}

/// In the cycle an active finding first went absent, a new finding opened with the same
/// category and resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DriftRecord {
    /// The finding that went absent.
    pub old_check_key: String,
    /// The finding that opened.
    pub new_check_key: String,
    /// Their category.
    pub category: String,
    /// Their resource.
    pub resource: ResourceRef,
    /// Log position of the cycle.
    pub seq: u64,
    /// Its time.
    pub at: Timestamp,
}

/// Whether two findings are about the same resource: same kind and namespace, and the same
/// name once generated suffixes (pod-template hashes) are set aside.
fn same_resource(a: &ResourceRef, b: &ResourceRef) -> bool {
    if a.kind != b.kind || a.namespace != b.namespace {
        return false;
    }
    a.name == b.name || crate::hygiene::stable_name(&a.name) == crate::hygiene::stable_name(&b.name)
}

impl ClusterFindings {
    /// Churn (new keys that die young) and drift suspects (a finding goes absent as another
    /// opens for the same category and resource), from the cycle's first absences.
    pub(super) fn note_first_absences(
        &mut self,
        first_absent: &[u32],
        opened_now: &[u32],
        seq: u64,
        at: Timestamp,
    ) {
        // Active-list order is not part of the state: sort, so records come out the same
        // however the fold got here (snapshot or not).
        let mut absent: Vec<u32> = first_absent.to_vec();
        absent.sort_unstable_by(|&a, &b| {
            self.findings[a as usize]
                .check_key
                .cmp(&self.findings[b as usize].check_key)
        });
        for &index in &absent {
            let finding = &self.findings[index as usize];
            let category = finding.category as usize;
            let run = self.category_runs[category];
            if finding.occurrence_count == 1
                && run.saturating_sub(finding.open_run) <= SHORT_LIVED_RUNS
            {
                let record = ChurnRecord {
                    run,
                    check_key: finding.check_key.to_string(),
                    seq,
                    at,
                };
                let churn = &mut self.category_churn[category];
                churn.retain(|r| r.run + CHURN_WINDOW_RUNS > run);
                churn.push(record);
                if churn.len() > CHURN_RECORDS_KEPT {
                    churn.remove(0);
                }
            }
        }
        for &old in &absent {
            let old_finding = &self.findings[old as usize];
            let Some(old_resource) = old_finding.resource.as_deref() else {
                continue;
            };
            for &new in opened_now {
                let new_finding = &self.findings[new as usize];
                if new_finding.category == old_finding.category
                    && new_finding
                        .resource
                        .as_deref()
                        .is_some_and(|r| same_resource(r, old_resource))
                {
                    self.drifts.push(DriftRecord {
                        old_check_key: old_finding.check_key.to_string(),
                        new_check_key: new_finding.check_key.to_string(),
                        category: self.category_names[old_finding.category as usize].clone(),
                        resource: old_resource.clone(),
                        seq,
                        at,
                    });
                }
            }
        }
    }
}
