//! What an event changed in the findings, as `tidemark replay --step` says it (ADR 0008, plan
//! step 2): the before-values of the subjects an event may change in the parts `stuck`, `drift`
//! and `unstable_key` (those of `finding` and `flap` are named where the fold mutates them), and
//! at the end of the event the after-values of exactly the named subjects, both compared by
//! [`Digest::changes`] itself.

use crate::findings::changes::{Change, Collect, Digest, FindingEntry, finding_change, flap_how};

use super::{ClusterFindings, UnreachableReason};

impl ClusterFindings {
    /// Whether finding `index` is unreachable, and why: active, not an alert, and its category
    /// missed `unreachable_after_cycles` cycles (the rule of `FindingsProjection::stuck`).
    fn unreachable(&self, index: u32) -> Option<UnreachableReason> {
        let finding = &self.findings[index as usize];
        if !finding.is_active() || finding.is_alert() {
            return None;
        }
        let category = finding.category as usize;
        let missing = self.cycle_stamp - self.category_last_run[category].0;
        (missing >= u64::from(self.settings.unreachable_after_cycles)).then(|| {
            if self.settings.is_enabled(&self.category_names[category]) {
                UnreachableReason::CategoryNotRun
            } else {
                UnreachableReason::CategoryDisabled
            }
        })
    }

    /// Names, with their before-values, the findings whose unreachable verdict the event may
    /// change: finding `index` (a resolution), or every active finding (a cycle, a settings
    /// change: `None`), of which only the unreachable ones are kept (the others are read after
    /// the event anyway).
    pub(super) fn name_unreachable(&self, index: Option<u32>, collect: &mut Collect) {
        match index {
            Some(index) => collect.stuck.push((index, self.unreachable(index))),
            None => {
                collect.stuck_cluster = true;
                for &index in &self.active {
                    if let Some(reason) = self.unreachable(index) {
                        collect.stuck.push((index, Some(reason)));
                    }
                }
            }
        }
    }

    /// At the end of an event of this cluster (`name`): appends to `out` what changed in the
    /// subjects `collect` named, in `--step` text and order.
    pub(super) fn changes_of_event(
        &self,
        name: &str,
        collect: &mut Collect,
        out: &mut Vec<Change>,
    ) {
        let mut before = Digest::default();
        let mut after = Digest::default();

        // The first value named for a finding is its before-value (a stable sort keeps it first).
        collect.findings.sort_by_key(|&(index, _)| index);
        collect.findings.dedup_by_key(|&mut (index, _)| index);
        // The findings' lines come first, in the digest's key order (`cluster check_key`: with
        // one cluster, the check keys' order), worded by `finding_change` as the digest's are,
        // from the typed values: no digest entry is built per finding (a cycle names every
        // absent finding, whose clean count moves).
        let mut named: Vec<(&str, Option<FindingEntry>, FindingEntry)> = collect
            .findings
            .iter()
            .filter_map(|&(index, before)| {
                let finding = &self.findings[index as usize];
                let after = finding.digest_entry()?;
                Some((&*finding.check_key, before, after))
            })
            .collect();
        named.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (check_key, before, after) in named {
            let (state, clean, severity, occurrences, kind) = after;
            let old = before.map(|(state, clean, severity, occurrences, _)| {
                (state, clean, severity, occurrences)
            });
            let how = kind.map_or("", |k| k.as_str());
            if let Some(change) = finding_change(old, (state, clean, severity, occurrences), how) {
                out.push(Change {
                    what: "finding",
                    // `format!` costs several times this, once per changed finding per event.
                    subject: [name, " ", check_key].concat(),
                    change,
                });
            }
        }

        for (check_key, value) in &collect.flaps {
            if let Some(how) = value {
                before.insert_flap(name, check_key, how);
            }
            let Some(index) = self.index_of(check_key) else {
                continue;
            };
            let finding = &self.findings[index as usize];
            if finding.flap.episode_count() > 0
                && let Some(how) = flap_how(
                    self.is_flapping(finding),
                    finding.flap.flapping_state_change(),
                )
            {
                after.insert_flap(name, check_key, how);
            }
        }

        let mut unreachable_after = |index: u32| {
            if let Some(reason) = self.unreachable(index) {
                let check_key = &self.findings[index as usize].check_key;
                after.insert_unreachable(name, check_key, reason);
            }
        };
        for &(index, value) in &collect.stuck {
            if let Some(reason) = value {
                let check_key = &self.findings[index as usize].check_key;
                before.insert_unreachable(name, check_key, reason);
            }
            unreachable_after(index);
        }
        if collect.stuck_cluster {
            for &index in &self.active {
                unreachable_after(index);
            }
        }

        // Drift suspects and unstable keys are only ever pushed: the new ones are at the end. A
        // drift suspect is a set member: one recorded before under the same pair is no change.
        let (old, new) = self
            .drifts
            .split_at(collect.drifts_before.min(self.drifts.len()));
        for record in new {
            let (from, to) = (&record.old_check_key, &record.new_check_key);
            after.insert_drift(name, from, to);
            if old
                .iter()
                .any(|o| o.old_check_key == *from && o.new_check_key == *to)
            {
                before.insert_drift(name, from, to);
            }
        }
        for &index in self.unstable_keys.iter().skip(collect.unstable_before) {
            after.insert_unstable(name, &self.findings[index as usize].check_key);
        }

        out.extend(before.changes(&after));
    }
}
