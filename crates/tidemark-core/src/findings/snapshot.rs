//! The findings snapshot: its layout, written once ([`FindingsSnapshot`] and its parts), taken
//! from the live state by one capture function per part, borrowed to serialize a snapshot in
//! place ([`FindingsProjection::snapshot_serializer`]) and owned for a copy
//! ([`FindingsProjection::snapshot`]); restored by moving the decoded parts into a projection
//! ([`FindingsProjection::restore_owned`]). See `crate::snapshot` for the two forms.
//!
//! The layout is stored (postcard is positional): a change is a new snapshot format (ADR 0002),
//! and the store's golden files hold today's bytes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};

use crate::event::{ResourceRef, Severity};
use crate::settings::ClusterSettings;
use crate::snapshot::{Borrow, Own, Take};
use crate::timestamp::Timestamp;

use super::churn::{ChurnRecord, DriftRecord};
use super::flaps::{FlapEpisode, FlapState, FlapStatus};
use super::history::{HistoryRange, HistoryReader};
use super::maintenance::{ClusterMaintenance, MaintenanceSnapshot};
use super::projection_history::ProjectionHistory;
use super::{
    AlertFacts, ClusterFindings, Finding, FindingsProjection, MemoryHistory, NOT_ACTIVE, Occurrence,
};

/// Serializable state of the findings projection. `Clusters` is a list of [`ClusterSnapshot`]s:
/// owned (the default) when read, borrowed from the live state when written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "FindingsSnapshot")]
pub struct FindingsSnapshot<Clusters = Vec<ClusterSnapshot<'static>>> {
    /// Per cluster, sorted by name.
    pub clusters: Clusters,
}

/// Serializable state of one cluster. `Findings` is a list of [`FindingSnapshot`]s (when
/// written, a sequence serialized one finding at a time, so a million findings are never
/// copied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ClusterSnapshot")]
pub struct ClusterSnapshot<'a, Findings = Vec<FindingSnapshot<'a>>> {
    /// Cluster name.
    pub cluster: Cow<'a, str>,
    /// Settings in force.
    pub settings: Cow<'a, ClusterSettings>,
    /// Latest event time seen.
    pub clock: Option<Timestamp>,
    /// Cycles applied.
    pub cycles: u64,
    /// Keys flagged by check-key hygiene, sorted.
    pub unstable_keys: Vec<Cow<'a, str>>,
    /// Categories, sorted by name.
    pub categories: Vec<CategorySnapshot<'a>>,
    /// Drift suspects, in log order.
    pub drifts: Cow<'a, [DriftRecord]>,
    /// Findings seen at least once, sorted by check_key.
    pub findings: Findings,
    /// Notifications of alerts applied: the runs of the state change detector for the
    /// cluster's alerts (snapshot format 10 on; 0 before).
    pub alert_runs: u64,
    /// Maintenance windows in effect and what they cover (snapshot format 16 and cluster part
    /// format 4 on; none before): `None` for a cluster that never saw one.
    pub maintenance: Option<MaintenanceSnapshot>,
}

/// Serializable state of one category of one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "CategorySnapshot")]
pub struct CategorySnapshot<'a> {
    /// Category name.
    pub name: Cow<'a, str>,
    /// Cycles it ran in.
    pub runs: u64,
    /// Cycle number of its latest run.
    pub last_cycle: u64,
    /// Time of its latest run.
    pub last_at: Timestamp,
    /// Position of its latest run.
    pub last_seq: u64,
    /// Recent short-lived keys.
    pub churn: Cow<'a, [ChurnRecord]>,
}

/// Serializable state of one finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "FindingSnapshot")]
pub struct FindingSnapshot<
    'a,
    Occurrences = Cow<'a, [Occurrence]>,
    Episodes = Cow<'a, [FlapEpisode]>,
> {
    /// Key within the cluster.
    pub check_key: Cow<'a, str>,
    /// Latest category.
    pub category: Cow<'a, str>,
    /// Latest severity.
    pub severity: Severity,
    /// Latest title.
    pub title: Cow<'a, str>,
    /// Latest detail.
    pub detail: Option<Cow<'a, str>>,
    /// Latest resource.
    pub resource: Option<Cow<'a, ResourceRef>>,
    /// Has an open occurrence.
    pub active: bool,
    /// Clean cycles of the open occurrence.
    pub clean_cycles: u32,
    /// Last seen by a cycle.
    pub last_seen_at: Timestamp,
    /// Every occurrence, oldest first: the history's closed ones, then the open one (when
    /// written, a sequence serialized from both without copying them).
    pub occurrences: Occurrences,
    /// Where the flap detectors stand on it.
    pub flap: FlapStatus,
    /// Run of its category in which the current occurrence opened.
    pub open_run: u64,
    /// Flapping episodes, oldest first: the history's ended ones and the open ones, by number
    /// (when written, a sequence merged from both without copying them).
    pub flap_episodes: Episodes,
    /// What an alert keeps; `None` for a probe's finding (snapshot format 10 on).
    pub alert: Option<Cow<'a, AlertFacts>>,
}

/// A finding's occurrences as the snapshot lists them: the closed ones from the history
/// (borrowed from a history in memory, read from a shared one), then the open one from the
/// live state; serialized exactly as the list of them.
struct OccurrencesOf<'a> {
    closed: Cow<'a, [Occurrence]>,
    open: Option<&'a Occurrence>,
}

impl Serialize for OccurrencesOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq =
            serializer.serialize_seq(Some(self.closed.len() + usize::from(self.open.is_some())))?;
        for occurrence in self.closed.iter().chain(self.open) {
            seq.serialize_element(occurrence)?;
        }
        seq.end()
    }
}

/// A finding's flap episodes as the snapshot lists them: the history's ended ones and the live
/// state's open ones, merged by number; serialized exactly as the list of them.
struct EpisodesOf<'a> {
    ended: Cow<'a, [(u64, FlapEpisode)]>,
    open: &'a [(u64, FlapEpisode)],
}

impl EpisodesOf<'_> {
    /// Every episode, by number.
    fn in_order(&self) -> impl Iterator<Item = &FlapEpisode> + '_ {
        let mut ended = self.ended.iter().peekable();
        let mut open = self.open.iter().peekable();
        std::iter::from_fn(move || match (ended.peek(), open.peek()) {
            (Some((e, _)), Some((o, _))) if o < e => open.next(),
            (Some(_), _) => ended.next(),
            (None, _) => open.next(),
        })
        .map(|(_, episode)| episode)
    }
}

impl Serialize for EpisodesOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.ended.len() + self.open.len()))?;
        for episode in self.in_order() {
            seq.serialize_element(episode)?;
        }
        seq.end()
    }
}

/// The capture functions: the only code that reads the live state into a snapshot.
impl ClusterFindings {
    /// A finding's snapshot, its occurrences (read from the history) given.
    fn finding_snapshot<'a, 'o, T: Take<'a, 'o>, Occurrences, Episodes>(
        &'a self,
        f: &'a Finding,
        (occurrences, flap_episodes): (Occurrences, Episodes),
    ) -> FindingSnapshot<'o, Occurrences, Episodes> {
        FindingSnapshot {
            check_key: T::take(&*f.check_key),
            category: T::take(self.category_names[f.category as usize].as_str()),
            severity: f.severity,
            title: T::take(f.title.as_str()),
            detail: f.detail.as_deref().map(T::take),
            resource: f.resource.as_deref().map(T::take),
            active: f.is_active(),
            clean_cycles: f.clean_cycles,
            last_seen_at: f.last_seen_at,
            occurrences,
            flap: f.flap.status(),
            open_run: f.open_run,
            flap_episodes,
            alert: f.alert.as_deref().map(T::take),
        }
    }

    /// A finding's occurrences and flap episodes: borrowed from the live state and a history
    /// in memory, or read from a shared one.
    fn history_of<'a>(
        cluster: &str,
        f: &'a Finding,
        history: &'a ProjectionHistory,
    ) -> (OccurrencesOf<'a>, EpisodesOf<'a>) {
        let (closed, ended) = match history.memory() {
            Some(memory) => (
                Cow::Borrowed(memory.occurrences_of(cluster, &f.check_key)),
                Cow::Borrowed(memory.flap_episodes_of(cluster, &f.check_key)),
            ),
            None => {
                // A shared history read as of a past position returns the rows still open then
                // as open: those are the live state's (its current occurrence, its open
                // episodes), listed from there.
                let all = HistoryRange::all();
                let closed = history.closed_occurrences(cluster, &f.check_key, &all);
                let ended = history.ended_flap_episodes(cluster, &f.check_key, &all);
                (
                    Cow::Owned(
                        closed
                            .into_iter()
                            .filter(|(_, o)| o.resolved_seq.is_some())
                            .map(|(_, o)| o)
                            .collect(),
                    ),
                    Cow::Owned(ended.into_iter().filter(|(_, e)| !e.is_open()).collect()),
                )
            }
        };
        (
            OccurrencesOf {
                closed,
                open: f.is_active().then_some(&f.current),
            },
            EpisodesOf {
                ended,
                open: f.flap.open_episodes(),
            },
        )
    }

    fn category_snapshot<'a, 'o, T: Take<'a, 'o>>(&'a self, id: usize) -> CategorySnapshot<'o> {
        let (last_cycle, last_at, last_seq) = self.category_last_run[id];
        CategorySnapshot {
            name: T::take(self.category_names[id].as_str()),
            runs: self.category_runs[id],
            last_cycle,
            last_at,
            last_seq,
            churn: T::take(self.category_churn[id].as_slice()),
        }
    }

    pub(super) fn cluster_snapshot<'a, 'o, T: Take<'a, 'o>, Findings>(
        &'a self,
        name: &'a str,
        findings: Findings,
    ) -> ClusterSnapshot<'o, Findings> {
        let mut category_ids: Vec<usize> = (0..self.category_names.len()).collect();
        category_ids.sort_unstable_by(|&a, &b| self.category_names[a].cmp(&self.category_names[b]));
        ClusterSnapshot {
            cluster: T::take(name),
            settings: T::take(&self.settings),
            clock: self.clock,
            cycles: self.cycle_stamp,
            unstable_keys: self
                .sorted_unstable_keys()
                .into_iter()
                .map(T::take)
                .collect(),
            categories: category_ids
                .into_iter()
                .map(|id| self.category_snapshot::<T>(id))
                .collect(),
            drifts: T::take(self.drifts.as_slice()),
            findings,
            alert_runs: self.alert_runs,
            maintenance: self
                .maintenance
                .as_deref()
                .map(|m| m.snapshot(&self.findings)),
        }
    }

    /// Indices of the findings a snapshot keeps (seen at least once), sorted by check key.
    pub(super) fn snapshot_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.findings.len() as u32)
            .filter(|&i| self.findings[i as usize].occurrence_count > 0)
            .collect();
        order.sort_unstable_by(|&a, &b| {
            self.findings[a as usize]
                .check_key
                .cmp(&self.findings[b as usize].check_key)
        });
        order
    }
}

/// The findings of one cluster in snapshot order, serialized one borrowed
/// [`FindingSnapshot`] at a time.
struct FindingsInOrder<'a> {
    name: &'a str,
    cluster: &'a ClusterFindings,
    history: &'a ProjectionHistory,
    order: Vec<u32>,
}

impl Serialize for FindingsInOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cluster = self.cluster;
        serializer.collect_seq(self.order.iter().map(|&i| {
            let finding = &cluster.findings[i as usize];
            let history = ClusterFindings::history_of(self.name, finding, self.history);
            cluster.finding_snapshot::<Borrow, _, _>(finding, history)
        }))
    }
}

impl FindingsProjection {
    /// A serializable copy of the whole state, in a deterministic order.
    pub fn snapshot(&self) -> FindingsSnapshot {
        let clusters = self
            .clusters
            .iter()
            .map(|(name, cluster)| {
                let findings = cluster
                    .snapshot_order()
                    .into_iter()
                    .map(|i| {
                        let finding = &cluster.findings[i as usize];
                        let (OccurrencesOf { closed, open }, episodes) =
                            ClusterFindings::history_of(name, finding, &self.history);
                        let occurrences = closed.iter().chain(open).cloned().collect();
                        let episodes = episodes.in_order().cloned().collect();
                        cluster.finding_snapshot::<Own, _, _>(
                            finding,
                            (Cow::Owned(occurrences), Cow::Owned(episodes)),
                        )
                    })
                    .collect();
                cluster.cluster_snapshot::<Own, _>(name, findings)
            })
            .collect();
        FindingsSnapshot { clusters }
    }

    /// The snapshot borrowed from the live state: serializes to exactly the bytes (and JSON) of
    /// [`Self::snapshot`], one finding at a time, so writing a snapshot of a million findings
    /// does not hold a second copy of them.
    pub fn snapshot_serializer(
        &self,
    ) -> FindingsSnapshot<Vec<ClusterSnapshot<'_, impl Serialize + '_>>> {
        let clusters = self
            .clusters
            .iter()
            .map(|(name, cluster)| {
                let findings = FindingsInOrder {
                    name,
                    cluster,
                    history: &self.history,
                    order: cluster.snapshot_order(),
                };
                cluster.cluster_snapshot::<Borrow, _>(name, findings)
            })
            .collect();
        FindingsSnapshot { clusters }
    }

    /// Rebuilds the projection from a snapshot; folding on from here gives the same state as
    /// never having stopped.
    pub fn restore(snapshot: &FindingsSnapshot) -> Self {
        Self::restore_owned(snapshot.clone())
    }

    /// [`Self::restore`], consuming the snapshot: each cluster's strings and histories move into
    /// the projection, so a restore never holds the state twice.
    pub fn restore_owned(snapshot: FindingsSnapshot) -> Self {
        let mut history = MemoryHistory::new();
        let mut projection = Self::restore_clusters(snapshot.clusters, |name, cluster, f| {
            let check_key: Box<str> = f.check_key.into_owned().into_boxed_str();
            let mut occurrences = f.occurrences.into_owned();
            let suppressed = cluster
                .maintenance
                .as_deref()
                .map_or(&[][..], |m| m.suppressed_resolutions_of(&check_key));
            let (flap, ended_episodes) = FlapState::restore(
                f.flap,
                f.flap_episodes.into_owned(),
                &occurrences,
                suppressed,
                cluster.clock,
                cluster.settings.flap_window_secs,
            );
            let occurrence_count = occurrences.len() as u64;
            // The open occurrence stays live; the closed ones are history.
            let current = if f.active {
                occurrences.pop()
            } else {
                occurrences.last().cloned()
            };
            if !occurrences.is_empty() || !ended_episodes.is_empty() {
                history.update(name, &check_key, |saved_history| {
                    saved_history.occurrences = occurrences;
                    saved_history.flap_episodes = ended_episodes;
                });
            }
            let finding = Finding {
                check_key,
                category: cluster.intern_category(&f.category),
                severity: f.severity,
                title: f.title.into_owned(),
                detail: f.detail.map(Cow::into_owned),
                resource: f.resource.map(|r| Box::new(r.into_owned())),
                clean_cycles: f.clean_cycles,
                last_seen_at: f.last_seen_at,
                current: current.unwrap_or(Occurrence::NONE),
                occurrence_count,
                active_slot: NOT_ACTIVE,
                seen_stamp: 0,
                seen_index: 0,
                open_run: f.open_run,
                flap,
                alert: f.alert.map(|a| Box::new(a.into_owned())),
            };
            (finding, f.active)
        });
        projection.history = ProjectionHistory::Memory(history);
        projection
    }

    /// A projection of the clusters of a snapshot, each finding of which `finding` turns into
    /// a live one (and whether it is active): the cluster-wide state is restored here, once for
    /// every snapshot layout.
    pub(super) fn restore_clusters<F>(
        clusters: Vec<ClusterSnapshot<'static, Vec<F>>>,
        mut finding: impl FnMut(&str, &mut ClusterFindings, F) -> (Finding, bool),
    ) -> Self {
        let mut projection = Self::new();
        for saved in clusters {
            projection.restore_cluster(saved, &mut finding);
        }
        projection
    }

    /// Restores one cluster of a snapshot into this projection (see [`Self::restore_clusters`]).
    pub(super) fn restore_cluster<F>(
        &mut self,
        saved: ClusterSnapshot<'static, Vec<F>>,
        finding: impl FnMut(&str, &mut ClusterFindings, F) -> (Finding, bool),
    ) {
        self.cluster_mut(&saved.cluster)
            .restore_from(saved, finding);
    }
}

impl ClusterFindings {
    /// Restores a snapshot's cluster into this one (empty, but for a snapshot that repeats a
    /// cluster): `finding` turns each of its findings into a live one (see
    /// [`FindingsProjection::restore_clusters`]).
    pub(super) fn restore_from<F>(
        &mut self,
        saved: ClusterSnapshot<'static, Vec<F>>,
        mut finding: impl FnMut(&str, &mut ClusterFindings, F) -> (Finding, bool),
    ) {
        let cluster = self;
        cluster.settings = saved.settings.into_owned().within_limits();
        cluster.clock = saved.clock;
        cluster.cycle_stamp = saved.cycles;
        cluster.alert_runs = saved.alert_runs;
        cluster.maintenance = saved
            .maintenance
            .as_ref()
            .map(|m| Box::new(ClusterMaintenance::restore(m)));
        cluster.drifts = saved.drifts.into_owned();
        for c in saved.categories {
            let id = cluster.intern_category(&c.name) as usize;
            cluster.category_runs[id] = c.runs;
            cluster.category_last_run[id] = (c.last_cycle, c.last_at, c.last_seq);
            cluster.category_churn[id] = c.churn.into_owned();
        }
        cluster.findings.reserve_exact(saved.findings.len());
        cluster
            .by_key
            .reserve(&cluster.findings, saved.findings.len());
        for f in saved.findings {
            let index = cluster.findings.len() as u32;
            let (restored, active) = finding(&saved.cluster, cluster, f);
            cluster.findings.push(restored);
            // A snapshot's keys are unique (it is written from a map); were one repeated,
            // the later finding is the one found by key, as before.
            cluster.by_key.insert_or_replace(&cluster.findings, index);
            cluster.index_alert(index);
            if active {
                cluster.activate(index);
            }
            cluster.restore_flap_queues(index);
        }
        for key in &saved.unstable_keys {
            if let Some(index) = cluster.index_of(key) {
                cluster.unstable_keys.push(index);
            }
        }
        if let Some(saved_maintenance) = &saved.maintenance {
            cluster.restore_marks(saved_maintenance);
        }
        // A snapshot of an earlier version kept every auto-resolution of the last 30 days:
        // the live state keeps those inside the cluster's window.
        cluster.forget_old_auto_resolutions();
    }
}
