//! What users read about alerts (ADR 0007): the page of alerts `GET /v1/alerts` and
//! `tidemark alerts` answer, walked over the alerts' own index (never the probes' findings), the
//! alerts of one fingerprint, and the stale alerts `stuck` lists.

use std::ops::Bound;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::Severity;
use crate::timestamp::Timestamp;

use super::views::{StaleAlertView, StaleReason};
use super::{AlertFacts, ClusterFindings, Finding, FindingOverview, FindingsProjection};

/// Which alerts a list holds, by their state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Active: firing, as the alerting system last said and no operator resolved it.
    #[default]
    Firing,
    /// Resolved (by the alerting system or by hand).
    Resolved,
    /// Firing, and stale: no notification named it for longer than its cluster's
    /// `alert_stale_after_secs` at the reference time.
    Stale,
    /// Both.
    All,
}

/// What `GET /v1/alerts` (and `tidemark alerts`) keeps.
#[derive(Clone, Debug, Default)]
pub struct AlertFilter {
    /// Firing (the default), resolved or all.
    pub state: AlertState,
    /// Only alerts of this name.
    pub name: Option<String>,
    /// Only alerts of this severity.
    pub severity: Option<Severity>,
    /// Only alerts carrying every one of these labels with this value.
    pub labels: Vec<(String, String)>,
    /// Only alerts whose latest occurrence was still firing at or after this time.
    pub since: Option<Timestamp>,
    /// Only alerts whose latest occurrence opened at or before this time.
    pub until: Option<Timestamp>,
    /// The time staleness is judged at (`?reference=now`); `None`: each cluster's clock.
    pub reference: Option<Timestamp>,
}

impl AlertFilter {
    /// Whether it keeps the alert's finding `finding` of the cluster `state`.
    fn keeps(&self, state: &ClusterFindings, finding: &Finding, facts: &AlertFacts) -> bool {
        let active = finding.is_active();
        let current = &finding.current;
        (match self.state {
            AlertState::Firing => active,
            AlertState::Resolved => !active,
            AlertState::All => true,
            AlertState::Stale => state.staleness(finding, self.reference).is_some(),
        }) && self.name.as_deref().is_none_or(|n| n == facts.name)
            && self.severity.is_none_or(|s| s == finding.severity)
            && self
                .labels
                .iter()
                .all(|(name, value)| facts.labels.get(name) == Some(value))
            && self.since.is_none_or(|since| {
                active
                    || current
                        .resolved_at
                        .is_some_and(|resolved| resolved >= since)
            })
            && self.until.is_none_or(|until| current.opened_at <= until)
    }
}

impl FindingsProjection {
    /// One page of alerts, sorted by (cluster, check key): those of `cluster` (or every
    /// cluster) that `filter` keeps, after the alert `after` names (`(cluster, check_key)`,
    /// which need not exist), at most `limit`; and whether more follow. It walks the alerts'
    /// own index (never the probes' findings) from the cursor on, and builds only the page.
    pub fn alerts_page(
        &self,
        cluster: Option<&str>,
        filter: &AlertFilter,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> (Vec<FindingOverview>, bool) {
        let (after_cluster, after_key) = after.unzip();
        let mut page = Vec::new();
        for (name, state) in self.clusters_matching_from(cluster, after_cluster.unwrap_or("")) {
            let from = match after_key {
                Some(key) if after_cluster == Some(name.as_str()) => Bound::Excluded(key),
                _ => Bound::Unbounded,
            };
            for (_, &index) in state
                .alerts_by_key
                .range::<str, _>((from, Bound::Unbounded))
            {
                let finding = &state.findings[index as usize];
                let Some(facts) = finding.alert.as_deref() else {
                    continue;
                };
                if finding.occurrence_count == 0 || !filter.keeps(state, finding, facts) {
                    continue;
                }
                if page.len() == limit {
                    return (page, true);
                }
                page.push(state.alert_overview(name, finding, filter.reference));
            }
        }
        (page, false)
    }

    /// The alerts of `cluster` with the alerting system's identity `fingerprint` (one, unless
    /// it sent the fingerprint under several names), sorted by check key.
    /// Staleness is judged at `reference`, or at the cluster's clock when `None`.
    pub fn alerts_with_fingerprint(
        &self,
        cluster: &str,
        fingerprint: &str,
        reference: Option<Timestamp>,
    ) -> Vec<FindingOverview> {
        let Some(state) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        let mut found: Vec<&Finding> = state
            .alerts_by_fingerprint
            .range::<(Box<str>, u32), _>((
                Bound::Included((fingerprint.into(), 0)),
                Bound::Included((fingerprint.into(), u32::MAX)),
            ))
            .map(|&(_, index)| &state.findings[index as usize])
            .filter(|f| f.occurrence_count > 0)
            .collect();
        found.sort_unstable_by(|a, b| a.check_key.cmp(&b.check_key));
        found
            .into_iter()
            .map(|finding| state.alert_overview(cluster, finding, reference))
            .collect()
    }

    /// The first `cap` stale alerts (by (cluster, check key)) of `cluster` or every cluster,
    /// judged at `reference`, or at each cluster's clock when `None`: `stuck`'s list. Walks
    /// the alerts' own index, never the probes' findings.
    pub(super) fn stale_alerts_up_to(
        &self,
        cluster: Option<&str>,
        reference: Option<Timestamp>,
        cap: usize,
    ) -> Vec<StaleAlertView> {
        let mut stale = Vec::new();
        for (name, state) in self.clusters_matching(cluster) {
            for &index in state.alerts_by_key.values() {
                if stale.len() >= cap {
                    return stale;
                }
                let finding = &state.findings[index as usize];
                let (Some(facts), Some(staleness)) = (
                    finding.alert.as_deref(),
                    state.staleness(finding, reference),
                ) else {
                    continue;
                };
                stale.push(StaleAlertView {
                    cluster: name.clone(),
                    check_key: finding.check_key.to_string(),
                    name: facts.name.clone(),
                    fingerprint: facts.fingerprint.clone(),
                    severity: finding.severity,
                    title: finding.title.clone(),
                    opened_at: finding.current.opened_at,
                    last_notified_at: facts.last_notified_at,
                    reason: StaleReason::AlertStale,
                    staleness,
                });
            }
        }
        stale
    }
}

impl ClusterFindings {
    /// The alert's overview with its staleness judged at `reference` (the cluster's clock
    /// when `None`).
    fn alert_overview(
        &self,
        cluster: &str,
        finding: &Finding,
        reference: Option<Timestamp>,
    ) -> FindingOverview {
        let mut overview = self.overview(cluster, finding);
        if reference.is_some() {
            overview.stale = self.staleness(finding, reference);
        }
        overview
    }
}
