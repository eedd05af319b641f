//! Automatic grouping: the findings one event opens outside any open incident are grouped with
//! each other (union-find over shared namespace or resource-graph component), then each group
//! goes to an open explicit incident, joins an open automatic one, or opens a new one.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::{ResourceRef, Severity};
use crate::findings::FindingsProjection;
use crate::timestamp::Timestamp;

use super::{IncidentKind, IncidentProjection, ResourceGraph};

impl IncidentProjection {
    /// The findings one event opened outside any open incident: grouped with each other
    /// (union-find over shared namespace or graph component, so the order of the findings in
    /// the event does not matter), then each group, judged against the incidents as they were
    /// before the event, goes to the oldest open explicit incident one of whose findings is
    /// still failing next to it, else joins the oldest open automatic incident it may join,
    /// else opens one. `released` (a part of `opened`) opened earlier, inside a maintenance
    /// window that has ended: they are grouped as if they opened now.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn group(
        &mut self,
        seq: u64,
        at: Timestamp,
        cluster: &str,
        opened: &BTreeSet<&str>,
        released: &BTreeSet<&str>,
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
                    while self.exists(&id, seq) {
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
                // A finding a maintenance window held back joins when the window ends.
                let what = if released.contains(check_key) {
                    "maintenance_ended"
                } else {
                    "opened"
                };
                incident.touch(seq, at, what, Some(check_key));
            }
        }
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
