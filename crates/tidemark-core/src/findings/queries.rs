//! Reading the findings: views and pages of them, flaps, churn, stuck findings, the facts other
//! projections read. Every list is sorted by (cluster, check_key), whatever the order of the
//! live state.

use crate::settings::ClusterSettings;
use crate::timestamp::Timestamp;

use super::churn::{CHURN_MIN_KEYS, CHURN_WINDOW_RUNS, ChurnRecord};
use super::flaps::FlapEpisode;
use super::views::{
    ChurnView, DriftView, FindingFacts, FindingState, FindingSummary, FindingView, FlapView,
    LongLivedView, StuckReport, UnreachableReason, UnreachableView,
};
use super::{Finding, FindingsProjection};

impl FindingsProjection {
    /// Every finding, sorted by (cluster, check_key).
    pub fn views(&self) -> Vec<FindingView> {
        let mut views = Vec::new();
        for (name, cluster) in &self.clusters {
            let mut findings: Vec<&Finding> = cluster.seen_findings().collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            views.extend(findings.into_iter().map(|f| cluster.view(name, f)));
        }
        views
    }

    /// One finding, if the projection has it.
    pub fn view(&self, cluster: &str, check_key: &str) -> Option<FindingView> {
        let state = self.clusters.get(cluster)?;
        let index = *state.by_key.get(check_key)?;
        let finding = &state.findings[index as usize];
        (!finding.occurrences.is_empty()).then(|| state.view(cluster, finding))
    }

    /// The settings in force for `cluster` (defaults for a cluster never seen).
    pub fn settings(&self, cluster: &str) -> ClusterSettings {
        self.clusters
            .get(cluster)
            .map(|c| c.settings.clone())
            .unwrap_or_default()
    }

    /// The clock of `cluster`: the latest event time seen for it.
    pub fn clock(&self, cluster: &str) -> Option<Timestamp> {
        self.clusters.get(cluster).and_then(|c| c.clock)
    }

    /// One page of findings sorted by (cluster, check_key): those of `cluster` (or every
    /// cluster) that `keep` accepts, after the finding `after` names (`(cluster, check_key)`,
    /// which need not exist), at most `limit`; and whether more follow. Views are built only for
    /// the page.
    pub fn views_page(
        &self,
        cluster: Option<&str>,
        keep: impl Fn(&FindingSummary<'_>) -> bool,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> (Vec<FindingView>, bool) {
        let (after_cluster, after_key) = after.unzip();
        let mut page = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            if after_cluster.is_some_and(|c| name.as_str() < c) {
                continue;
            }
            let mut findings: Vec<&Finding> = state
                .seen_findings()
                .filter(|f| {
                    after_cluster != Some(name.as_str())
                        || after_key.is_none_or(|k| &*f.check_key > k)
                })
                .filter(|f| {
                    keep(&FindingSummary {
                        state: FindingState::of(f.is_active()),
                        severity: f.severity,
                        category: &state.category_names[f.category as usize],
                    })
                })
                .collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            for finding in findings {
                if page.len() == limit {
                    return (page, true);
                }
                page.push(state.view(name, finding));
            }
        }
        (page, false)
    }

    /// The clusters the projection has seen, sorted.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    /// Auto-resolution times the count flap detector keeps, over every cluster: at most those
    /// of the last [`MAX_FLAP_WINDOW_SECS`](crate::settings::MAX_FLAP_WINDOW_SECS) of each
    /// cluster's clock, however long the log.
    pub fn auto_resolutions_kept(&self) -> usize {
        self.clusters
            .values()
            .map(|c| c.auto_resolutions_kept())
            .sum()
    }

    /// The settings in force for `cluster`, if the projection has seen it.
    pub fn settings_of(&self, cluster: &str) -> Option<&ClusterSettings> {
        self.clusters.get(cluster).map(|c| &c.settings)
    }

    /// Latest category, severity, title and resource of a finding, if the projection has it.
    pub fn finding_facts(&self, cluster: &str, check_key: &str) -> Option<FindingFacts<'_>> {
        let state = self.clusters.get(cluster)?;
        let finding = &state.findings[*state.by_key.get(check_key)? as usize];
        Some(FindingFacts {
            category: &state.category_names[finding.category as usize],
            severity: finding.severity,
            title: &finding.title,
            detail: finding.detail.as_deref(),
            resource: finding.resource.as_deref(),
            active: finding.is_active(),
            last_seen_at: finding.last_seen_at,
        })
    }

    /// The flapping episodes of a finding, oldest first.
    pub fn flap_episodes(&self, cluster: &str, check_key: &str) -> &[FlapEpisode] {
        self.clusters
            .get(cluster)
            .and_then(|state| {
                let index = *state.by_key.get(check_key)?;
                Some(state.findings[index as usize].flap.episodes())
            })
            .unwrap_or(&[])
    }

    /// Whether a finding has an active occurrence.
    pub fn is_active(&self, cluster: &str, check_key: &str) -> bool {
        self.clusters.get(cluster).is_some_and(|state| {
            state
                .by_key
                .get(check_key)
                .is_some_and(|&i| state.findings[i as usize].is_active())
        })
    }

    /// Findings that flap now or have flapped, by either detector, sorted by (cluster,
    /// check_key); only `cluster`'s when given.
    pub fn flaps(&self, cluster: Option<&str>) -> Vec<FlapView> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            let mut findings: Vec<&Finding> = state
                .findings
                .iter()
                .filter(|f| !f.flap.episodes().is_empty())
                .collect();
            findings.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            out.extend(findings.into_iter().map(|f| state.flap_view(name, f)));
        }
        out
    }

    /// Categories whose new keys keep dying young (at least [`CHURN_MIN_KEYS`] in the last
    /// [`CHURN_WINDOW_RUNS`] runs of the category).
    pub fn churn(&self, cluster: Option<&str>) -> Vec<ChurnView> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            let mut categories: Vec<(&str, &Vec<ChurnRecord>, u64)> = state
                .category_names
                .iter()
                .enumerate()
                .map(|(id, category)| {
                    (
                        category.as_str(),
                        &state.category_churn[id],
                        state.category_runs[id],
                    )
                })
                .collect();
            categories.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (category, records, run) in categories {
                let recent: Vec<&ChurnRecord> = records
                    .iter()
                    .filter(|r| r.run + CHURN_WINDOW_RUNS > run)
                    .collect();
                if recent.len() < CHURN_MIN_KEYS {
                    continue;
                }
                out.push(ChurnView {
                    cluster: name.clone(),
                    category: category.to_owned(),
                    short_lived_keys: recent.len() as u64,
                    examples: recent
                        .iter()
                        .rev()
                        .take(3)
                        .map(|r| r.check_key.clone())
                        .collect(),
                    since: recent[0].at,
                });
            }
        }
        out
    }

    /// Unreachable findings, drift suspects and long-lived findings.
    pub fn stuck(&self, cluster: Option<&str>) -> StuckReport {
        let mut report = StuckReport::default();
        for (name, state) in self.clusters_matching(cluster) {
            let settings = &state.settings;
            let now = state.clock.unwrap_or_default();
            let mut active: Vec<&Finding> = state
                .active
                .iter()
                .map(|&i| &state.findings[i as usize])
                .collect();
            active.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
            for finding in active {
                let category = finding.category as usize;
                let category_name = &state.category_names[category];
                let (last_cycle, last_at, _) = state.category_last_run[category];
                let missing = state.cycle_stamp - last_cycle;
                let opened_at = finding
                    .occurrences
                    .last()
                    .expect("an active finding has an open occurrence")
                    .opened_at;
                if missing >= u64::from(settings.unreachable_after_cycles) {
                    report.unreachable.push(UnreachableView {
                        cluster: name.clone(),
                        check_key: finding.check_key.to_string(),
                        category: category_name.clone(),
                        severity: finding.severity,
                        title: finding.title.clone(),
                        opened_at,
                        reason: if settings.is_enabled(category_name) {
                            UnreachableReason::CategoryNotRun
                        } else {
                            UnreachableReason::CategoryDisabled
                        },
                        category_last_ran_at: last_at,
                        cycles_without_category: missing,
                    });
                    continue;
                }
                let age_secs = now.saturating_duration_since(opened_at).as_secs();
                if finding.clean_cycles == 0 && age_secs >= settings.long_lived_secs {
                    report.long_lived.push(LongLivedView {
                        cluster: name.clone(),
                        check_key: finding.check_key.to_string(),
                        category: category_name.clone(),
                        severity: finding.severity,
                        title: finding.title.clone(),
                        opened_at,
                        last_seen_at: finding.last_seen_at,
                        age_secs,
                    });
                }
            }
            for record in &state.drifts {
                let active = |key: &str| {
                    state
                        .by_key
                        .get(key)
                        .is_some_and(|&i| state.findings[i as usize].is_active())
                };
                report.drift_suspects.push(DriftView {
                    cluster: name.clone(),
                    old_active: active(&record.old_check_key),
                    new_active: active(&record.new_check_key),
                    record: record.clone(),
                });
            }
        }
        report
    }

    /// Keys flagged by check-key hygiene when first seen, as (cluster, check_key), sorted.
    pub fn unstable_keys<'a>(&'a self, cluster: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            out.extend(
                state
                    .sorted_unstable_keys()
                    .into_iter()
                    .map(|k| (name.as_str(), k)),
            );
        }
        out
    }

    /// Number of findings (active or not) over all clusters.
    pub fn finding_count(&self) -> usize {
        self.clusters
            .values()
            .map(|c| c.seen_findings().count())
            .sum()
    }

    /// Number of active findings over all clusters.
    pub fn active_count(&self) -> usize {
        self.clusters.values().map(|c| c.active.len()).sum()
    }
}
