//! The findings' live snapshot (ADR 0006; the store's layout 2, snapshot format 7): each
//! finding's live state — its current occurrence, open flap episodes, counts and the count
//! detector's kept auto-resolution times — without its history, which is in the store's tables.
//! So a snapshot's size follows the number of findings, not the length of the log.
//!
//! Written borrowed ([`FindingsProjection::live_snapshot_serializer`]) or owned
//! ([`FindingsProjection::live_snapshot`]), restored by moving the decoded parts
//! ([`FindingsProjection::restore_live_owned`]); the cluster-wide parts are the ones of
//! [`ClusterSnapshot`], shared with the snapshot that holds the history.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};

use crate::event::{ResourceRef, Severity};
use crate::lazy_clusters::{ClusterLoader, LazyClusters};
use crate::snapshot::{Borrow, Own, Take};
use crate::timestamp::Timestamp;

use super::flaps::{FlapEpisode, FlapState, FlapStatus};
use super::snapshot::{ClusterSnapshot, FindingsSnapshot};
use super::{AlertFacts, ClusterFindings, Finding, FindingsProjection, NOT_ACTIVE, Occurrence};

/// The findings' live snapshot, owned (as read).
pub type LiveFindingsSnapshot =
    FindingsSnapshot<Vec<ClusterSnapshot<'static, Vec<LiveFindingSnapshot<'static>>>>>;

/// The live state of one finding. The layout is stored (postcard is positional): a change is
/// a new snapshot format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "LiveFindingSnapshot")]
pub struct LiveFindingSnapshot<'a> {
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
    /// The current occurrence: the open one while active, else the last closed one.
    pub current: Cow<'a, Occurrence>,
    /// Occurrences, the current one included (the closed ones are in the history).
    pub occurrence_count: u64,
    /// Where the flap detectors stand on it.
    pub flap: FlapStatus,
    /// Run of its category in which the current occurrence opened.
    pub open_run: u64,
    /// The open flap episodes (at most one per detector), with their numbers.
    pub open_flap_episodes: Cow<'a, [(u64, FlapEpisode)]>,
    /// Flap episodes, open ones included (the ended ones are in the history).
    pub flap_episode_count: u64,
    /// Where each detector's first episode started (count, then state change).
    pub first_flap_started: [Option<u64>; 2],
    /// The count detector's auto-resolution times inside the cluster's flap window.
    pub auto_resolved_at: Cow<'a, [Timestamp]>,
    /// What an alert keeps; `None` for a probe's finding (cluster part format 2 and snapshot
    /// format 11 on).
    pub alert: Option<Cow<'a, AlertFacts>>,
}

/// The capture function: the only code that reads a live finding into a live snapshot.
impl ClusterFindings {
    fn live_finding_snapshot<'a, 'o, T: Take<'a, 'o>>(
        &'a self,
        f: &'a Finding,
    ) -> LiveFindingSnapshot<'o> {
        LiveFindingSnapshot {
            check_key: T::take(&*f.check_key),
            category: T::take(self.category_names[f.category as usize].as_str()),
            severity: f.severity,
            title: T::take(f.title.as_str()),
            detail: f.detail.as_deref().map(T::take),
            resource: f.resource.as_deref().map(T::take),
            active: f.is_active(),
            clean_cycles: f.clean_cycles,
            last_seen_at: f.last_seen_at,
            current: T::take(&f.current),
            occurrence_count: f.occurrence_count,
            flap: f.flap.status(),
            open_run: f.open_run,
            open_flap_episodes: T::take(f.flap.open_episodes()),
            flap_episode_count: f.flap.episode_count(),
            first_flap_started: f.flap.first_started_by_detector(),
            auto_resolved_at: T::take(f.flap.auto_resolutions()),
            alert: f.alert.as_deref().map(T::take),
        }
    }
}

/// The findings of one cluster in snapshot order, serialized one borrowed
/// [`LiveFindingSnapshot`] at a time.
struct LiveFindingsInOrder<'a> {
    cluster: &'a ClusterFindings,
    order: Vec<u32>,
}

impl Serialize for LiveFindingsInOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let cluster = self.cluster;
        serializer.collect_seq(
            self.order
                .iter()
                .map(|&i| cluster.live_finding_snapshot::<Borrow>(&cluster.findings[i as usize])),
        )
    }
}

impl FindingsProjection {
    /// A serializable copy of the live state, without the history, in a deterministic order.
    pub fn live_snapshot(&self) -> LiveFindingsSnapshot {
        let clusters = self
            .clusters
            .iter()
            .map(|(name, cluster)| {
                let findings = cluster
                    .snapshot_order()
                    .into_iter()
                    .map(|i| cluster.live_finding_snapshot::<Own>(&cluster.findings[i as usize]))
                    .collect();
                cluster.cluster_snapshot::<Own, _>(name, findings)
            })
            .collect();
        FindingsSnapshot { clusters }
    }

    /// The live snapshot borrowed from the live state: the same bytes as
    /// [`Self::live_snapshot`], one finding at a time.
    pub fn live_snapshot_serializer(
        &self,
    ) -> FindingsSnapshot<Vec<ClusterSnapshot<'_, impl Serialize + '_>>> {
        let clusters = self
            .clusters
            .iter()
            .map(|(name, cluster)| {
                let findings = LiveFindingsInOrder {
                    cluster,
                    order: cluster.snapshot_order(),
                };
                cluster.cluster_snapshot::<Borrow, _>(name, findings)
            })
            .collect();
        FindingsSnapshot { clusters }
    }

    /// The clusters, by name, each with whether an event of it was applied since the
    /// projection was restored or last marked snapshotted.
    pub fn clusters_changed(&self) -> impl Iterator<Item = (&str, bool)> + '_ {
        // A cluster not in memory was not restored since its part was written: unchanged.
        self.clusters.in_memory().map(|(name, cluster)| {
            (
                name.as_str(),
                cluster.is_some_and(|c| c.changed_since_snapshot),
            )
        })
    }

    /// Every cluster's state is now in a snapshot: none has changed since.
    pub fn mark_snapshotted(&mut self) {
        for cluster in self.clusters.in_memory_mut() {
            cluster.changed_since_snapshot = false;
        }
    }

    /// One cluster's part of the live snapshot, borrowed from the live state (the same bytes
    /// as that cluster's entry of [`Self::live_snapshot`]); `None` for a cluster it never saw.
    pub fn live_cluster_serializer(
        &self,
        name: &str,
    ) -> Option<ClusterSnapshot<'_, impl Serialize + '_>> {
        let (name, cluster) = self.clusters.get_key_value(name)?;
        let findings = LiveFindingsInOrder {
            cluster,
            order: cluster.snapshot_order(),
        };
        Some(cluster.cluster_snapshot::<Borrow, _>(name, findings))
    }

    /// The projection of a live snapshot, with its history in memory and empty: give it the
    /// reader of the history the snapshot was written beside
    /// ([`Self::read_history_from`]) before reading a finding's past.
    pub fn restore_live_owned(snapshot: LiveFindingsSnapshot) -> Self {
        Self::restore_clusters(snapshot.clusters, live_finding)
    }

    /// Restores one cluster of a live snapshot into this projection (whose history is in
    /// memory until [`Self::read_history_from`]): a snapshot's clusters restored one at a time,
    /// as a per-cluster snapshot's parts are read, give the projection
    /// [`Self::restore_live_owned`] gives.
    pub fn restore_live_cluster(
        &mut self,
        saved: ClusterSnapshot<'static, Vec<LiveFindingSnapshot<'static>>>,
    ) {
        self.restore_cluster(saved, live_finding);
    }

    /// A projection of the clusters `parts` names (each with the position of its snapshot
    /// part), each restored from the live cluster `read` answers for its part when first
    /// needed (`None`: a fault `read` recorded; see `lazy_clusters`): the same state
    /// [`Self::restore_live_cluster`] gives, cluster by cluster. Its history is in memory
    /// until [`Self::read_history_from`].
    pub fn restore_live_lazily(
        parts: impl IntoIterator<Item = (String, u64)>,
        read: LiveClusterReader,
    ) -> Self {
        let load: ClusterLoader<ClusterFindings> = std::sync::Arc::new(move |name, part| {
            let mut cluster = ClusterFindings::default();
            cluster.restore_from(read(name, part)?, live_finding);
            Some(Some(cluster))
        });
        Self {
            clusters: LazyClusters::unloaded(parts, load),
            ..Self::default()
        }
    }

    /// How many clusters' findings are in memory: restored from their part, or never in one.
    pub fn clusters_in_memory(&self) -> usize {
        self.clusters.loaded()
    }
}

/// Reads a live cluster from a snapshot part: `None` after a fault it recorded.
pub type LiveClusterReader = std::sync::Arc<
    dyn Fn(&str, u64) -> Option<ClusterSnapshot<'static, Vec<LiveFindingSnapshot<'static>>>>
        + Send
        + Sync,
>;

/// The live finding a live snapshot's finding restores to, and whether it is active.
fn live_finding(
    _: &str,
    cluster: &mut ClusterFindings,
    f: LiveFindingSnapshot<'static>,
) -> (Finding, bool) {
    let finding = Finding {
        check_key: f.check_key.into_owned().into_boxed_str(),
        category: cluster.intern_category(&f.category),
        severity: f.severity,
        title: f.title.into_owned(),
        detail: f.detail.map(Cow::into_owned),
        resource: f.resource.map(|r| Box::new(r.into_owned())),
        clean_cycles: f.clean_cycles,
        last_seen_at: f.last_seen_at,
        current: f.current.into_owned(),
        occurrence_count: f.occurrence_count,
        active_slot: NOT_ACTIVE,
        seen_stamp: 0,
        seen_index: 0,
        open_run: f.open_run,
        flap: FlapState::restore_live(
            f.flap,
            f.open_flap_episodes.into_owned(),
            f.flap_episode_count,
            f.first_flap_started,
            f.auto_resolved_at.into_owned(),
        ),
        alert: f.alert.map(|a| Box::new(a.into_owned())),
    };
    (finding, f.active)
}
