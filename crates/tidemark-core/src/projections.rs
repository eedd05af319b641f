//! Every projection together, applied in one fixed order per event: findings (with flaps,
//! stuck and churn), then the orphan graph, then incidents (which read the other two).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{Event, ResourceRef};
use crate::findings::changes::Change;
use crate::findings::{
    ClusterSnapshot, FindingChange, FindingsProjection, FindingsSnapshot, HistoryRecord,
    LiveFindingSnapshot, LiveFindingsSnapshot, SharedHistoryReader,
};
use crate::hygiene::{KeyAdvice, analyze_check_key};
use crate::incidents::{IncidentProjection, IncidentsSnapshot, ResourceGraph};
use crate::orphans::{ClusterOrphansSnapshot, OrphanProjection, OrphansSnapshot};
use crate::settings::ClusterSettings;

impl ResourceGraph for OrphanProjection {
    fn component_of(&self, cluster: &str, resource: &ResourceRef) -> Option<&str> {
        OrphanProjection::component_of(self, cluster, resource)
    }
}

/// A check key whose parts look unstable, in its cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnstableKeyView {
    /// The cluster.
    pub cluster: String,
    /// What looks unstable and what to key by instead.
    #[serde(flatten)]
    pub advice: KeyAdvice,
}

/// All projections of one log.
#[derive(Clone, Debug, Default)]
pub struct Projections {
    findings: FindingsProjection,
    orphans: OrphanProjection,
    incidents: IncidentProjection,
    /// The finding changes of the last event applied.
    changes: Vec<(String, FindingChange)>,
}

impl Projections {
    /// Nothing applied yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the event at log position `seq`; returns the finding changes it made (of the
    /// event's cluster), in the order the findings fold made them.
    pub fn apply(&mut self, seq: u64, event: &Event) -> &[(String, FindingChange)] {
        self.changes.clear();
        self.findings.apply_reporting(seq, event, &mut self.changes);
        self.apply_after_findings(seq, event, None)
    }

    /// [`Self::apply`], appending to `out` what the event changed, as `tidemark replay --step`
    /// says it (the same text and order as [`crate::findings::changes::Digest::changes`] of the whole
    /// state before and after the event), named by the fold as it goes rather than by
    /// comparing the whole state (ADR 0008): every part, `finding`, `flap`, `stuck`, `drift`,
    /// `unstable_key`, `orphan`, `candidate` and `incident`, in that order.
    pub fn apply_with_changes(
        &mut self,
        seq: u64,
        event: &Event,
        out: &mut Vec<Change>,
    ) -> &[(String, FindingChange)] {
        self.changes.clear();
        self.findings
            .apply_reporting_changes(seq, event, &mut self.changes, out);
        self.incidents.watch_next_event();
        self.apply_after_findings(seq, event, Some(&mut *out));
        self.incidents.append_changes_of_event(out);
        &self.changes
    }

    /// The projections that read the findings, once the findings applied the event; with `out`,
    /// appending what the event changed in them ([`Self::apply_with_changes`]).
    fn apply_after_findings(
        &mut self,
        seq: u64,
        event: &Event,
        out: Option<&mut Vec<Change>>,
    ) -> &[(String, FindingChange)] {
        let default_settings;
        let settings = match self.findings.settings_of(&event.cluster) {
            Some(settings) => settings,
            None => {
                default_settings = ClusterSettings::default();
                &default_settings
            }
        };
        match out {
            None => self.orphans.apply(seq, event, settings),
            Some(out) => {
                let named = self.orphans.apply_naming_changes(seq, event, settings);
                out.extend(crate::findings::changes::Digest::orphan_changes(&named));
            }
        }
        self.incidents
            .apply(seq, event, &self.changes, &self.findings, &self.orphans);
        &self.changes
    }

    /// The findings projection (flaps, stuck, churn included).
    pub fn findings(&self) -> &FindingsProjection {
        &self.findings
    }

    /// The orphan graph.
    pub fn orphans(&self) -> &OrphanProjection {
        &self.orphans
    }

    /// The incidents.
    pub fn incidents(&self) -> &IncidentProjection {
        &self.incidents
    }

    /// Check keys whose parts looked unstable when the store first saw them, with advice,
    /// sorted by (cluster, check_key).
    pub fn unstable_keys(&self, cluster: Option<&str>) -> Vec<UnstableKeyView> {
        self.unstable_keys_first(cluster, usize::MAX)
    }

    /// The first `limit` of [`Self::unstable_keys`], analysed only as far as needed.
    pub fn unstable_keys_first(&self, cluster: Option<&str>, limit: usize) -> Vec<UnstableKeyView> {
        self.findings
            .unstable_keys(cluster)
            .into_iter()
            .filter_map(|(cluster, key)| {
                analyze_check_key(key).map(|advice| UnstableKeyView {
                    cluster: cluster.to_owned(),
                    advice,
                })
            })
            .take(limit)
            .collect()
    }

    /// A serializable copy of the whole state, in a deterministic order (what was written out
    /// read back in: every incident, every orphan of a dropped trace).
    pub fn snapshot(&self) -> ProjectionsSnapshot {
        ProjectionsSnapshot {
            findings: self.findings.snapshot(),
            orphans: self.orphans.whole_snapshot(),
            incidents: self.incidents.whole_snapshot(),
        }
    }

    /// The snapshot as a serializer: the same bytes as [`Self::snapshot`], with the findings
    /// (the bulk of the state) borrowed rather than copied.
    pub fn snapshot_serializer(&self) -> impl Serialize + '_ {
        ProjectionsSnapshot {
            findings: self.findings.snapshot_serializer(),
            orphans: self.orphans.snapshot(),
            incidents: self.incidents.snapshot_serializer(),
        }
    }

    /// Resumes from a snapshot: folding on gives the same state as never having stopped.
    pub fn restore(snapshot: &ProjectionsSnapshot) -> Self {
        Self::restore_owned(snapshot.clone())
    }

    /// The live snapshot (store layout 2): the snapshot without the findings' history (which
    /// the store keeps in its tables), as a serializer borrowing the live state.
    pub fn live_snapshot_serializer(&self) -> impl Serialize + '_ {
        ProjectionsSnapshot {
            findings: self.findings.live_snapshot_serializer(),
            orphans: self.orphans.snapshot(),
            incidents: self.incidents.snapshot_serializer(),
        }
    }

    /// The live snapshot with what the state wrote out read back in (every incident whole,
    /// every orphan of a dropped trace): the same for two states at one position whatever
    /// each wrote out or still holds in memory. For comparing states (`verify`, `rebuild`).
    pub fn whole_live_snapshot(&self) -> LiveProjectionsSnapshot {
        let mut snapshot = self.live_snapshot();
        snapshot.incidents = self.incidents.whole_snapshot();
        snapshot.orphans = self.orphans.whole_snapshot();
        snapshot
    }

    /// An owned copy of the live snapshot (the same bytes as the serializer).
    pub fn live_snapshot(&self) -> LiveProjectionsSnapshot {
        ProjectionsSnapshot {
            findings: self.findings.live_snapshot(),
            orphans: self.orphans.snapshot(),
            incidents: self.incidents.snapshot(),
        }
    }

    /// Resumes from a live snapshot, the findings' history read through `reader`: the live
    /// state's (`as_of` `None`) or a past state's (as of position `as_of`); see
    /// [`FindingsProjection::read_history_from`].
    pub fn restore_live_owned(
        snapshot: LiveProjectionsSnapshot,
        reader: std::sync::Arc<dyn SharedHistoryReader>,
        as_of: Option<u64>,
    ) -> Self {
        let mut projections = Self {
            findings: FindingsProjection::restore_live_owned(snapshot.findings),
            orphans: OrphanProjection::restore_owned(snapshot.orphans),
            incidents: IncidentProjection::restore_owned(snapshot.incidents),
            changes: Vec::new(),
        };
        projections.read_history_from(reader, as_of);
        projections
    }

    /// The clusters, by name, each with whether an event of it was applied since the
    /// projections were restored or last marked snapshotted: a per-cluster snapshot writes the
    /// parts of those that changed (every projection's state of a cluster changes only with
    /// that cluster's events; the incidents, which span clusters, are written whole).
    pub fn clusters_changed(&self) -> impl Iterator<Item = (&str, bool)> + '_ {
        self.findings.clusters_changed()
    }

    /// Every cluster's part is now in a snapshot: none has changed since.
    pub fn mark_snapshotted(&mut self) {
        self.findings.mark_snapshotted();
    }

    /// One cluster's part of the live snapshot, borrowed from the live state; `None` for a
    /// cluster the projections never saw. [`LiveProjectionsSnapshot::from_parts`] puts the
    /// parts back together.
    pub fn live_cluster_part_serializer(&self, cluster: &str) -> Option<impl Serialize + '_> {
        Some(ClusterPart {
            findings: self.findings.live_cluster_serializer(cluster)?,
            orphans: self.orphans.cluster_snapshot(cluster),
        })
    }

    /// The part of the live snapshot no cluster owns (the incidents, which span clusters),
    /// borrowed from the live state.
    /// Its `numbers` are not in its bytes: a snapshot stores them next to it.
    pub fn live_shared_part_serializer(&self) -> crate::incidents::IncidentsSnapshot<'_> {
        self.incidents.snapshot_serializer()
    }

    /// Resumes from a per-cluster snapshot: its cluster parts restored one at a time, as
    /// `parts` yields them (so a store never holds every cluster's decoded part at once), and
    /// its `incidents`; the findings' history read through `reader` as
    /// [`Self::restore_live_owned`] reads it. Gives what `restore_live_owned` gives for the
    /// snapshot [`LiveProjectionsSnapshot::from_parts`] makes of the same parts; the first
    /// error `parts` yields is the answer.
    pub fn restore_live_parts<E>(
        parts: impl IntoIterator<Item = Result<ClusterPart, E>>,
        incidents: IncidentsSnapshot<'static>,
        reader: std::sync::Arc<dyn SharedHistoryReader>,
        as_of: Option<u64>,
    ) -> Result<Self, E> {
        let mut findings = FindingsProjection::new();
        let mut orphans = OrphanProjection::new();
        for part in parts {
            let part = part?;
            findings.restore_live_cluster(part.findings);
            if let Some(saved) = part.orphans {
                orphans.restore_cluster(saved);
            }
        }
        let mut projections = Self {
            findings,
            orphans,
            incidents: IncidentProjection::restore_owned(incidents),
            changes: Vec::new(),
        };
        projections.read_history_from(reader, as_of);
        Ok(projections)
    }

    /// Resumes from a per-cluster snapshot without reading its parts: `parts` names each
    /// cluster's part (by the position that wrote it), and a cluster is restored from its part
    /// the first time a read or the fold needs it (ADR 0006, "Reopen across clusters"), through
    /// `source`; the findings' history read through `reader` as [`Self::restore_live_parts`]
    /// reads it. Every answer is the one [`Self::restore_live_parts`] gives over the same parts
    /// (a part `source` cannot read makes its cluster read as absent once, after `source`
    /// recorded the fault for the store to answer).
    pub fn restore_live_lazily(
        parts: Vec<(String, u64)>,
        source: std::sync::Arc<dyn ClusterPartSource>,
        incidents: IncidentsSnapshot<'static>,
        reader: std::sync::Arc<dyn SharedHistoryReader>,
        as_of: Option<u64>,
    ) -> Self {
        // A part holds both projections' halves of its cluster: the one not asked for is kept
        // until the other projection asks (the fold of an event asks both), so a part is read
        // and decoded once.
        let halves = std::sync::Arc::new(std::sync::Mutex::new(UnclaimedHalves::default()));
        let (findings_source, findings_halves) = (source.clone(), halves.clone());
        let findings = FindingsProjection::restore_live_lazily(
            parts.iter().cloned(),
            std::sync::Arc::new(move |cluster, part| {
                let unclaimed = findings_halves
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .findings
                    .remove(cluster);
                if let Some(findings) = unclaimed {
                    return Some(findings);
                }
                let read = findings_source.read_part(cluster, part)?;
                findings_halves
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .orphans
                    .insert(cluster.to_owned(), read.orphans);
                Some(read.findings)
            }),
        );
        let orphans = OrphanProjection::restore_lazily(
            parts,
            std::sync::Arc::new(move |cluster, part| {
                let unclaimed = halves
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .orphans
                    .remove(cluster);
                if let Some(orphans) = unclaimed {
                    return Some(orphans);
                }
                let read = source.read_part(cluster, part)?;
                halves
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .findings
                    .insert(cluster.to_owned(), read.findings);
                Some(read.orphans)
            }),
        );
        let mut projections = Self {
            findings,
            orphans,
            incidents: IncidentProjection::restore_owned(incidents),
            changes: Vec::new(),
        };
        projections.read_history_from(reader, as_of);
        projections
    }

    /// How many clusters' findings are in memory (see [`Self::restore_live_lazily`]).
    pub fn clusters_in_memory(&self) -> usize {
        self.findings.clusters_in_memory()
    }

    /// Reads the findings' history, and the timeline entries incidents wrote out, through
    /// `reader` from now on (see [`FindingsProjection::read_history_from`] and
    /// [`IncidentProjection::read_entries_from`]: incidents keep their entries in memory until
    /// [`Self::write_timelines_out`]).
    pub fn read_history_from(
        &mut self,
        reader: std::sync::Arc<dyn SharedHistoryReader>,
        as_of: Option<u64>,
    ) {
        self.incidents.read_entries_from(reader.clone(), as_of);
        self.orphans.read_dropped_from(reader.clone(), as_of);
        self.findings.read_history_from(reader, as_of);
    }

    /// Reads a shared history as of position `as_of` (a past state folded further).
    pub fn set_history_as_of(&mut self, as_of: u64) {
        self.findings.set_history_as_of(as_of);
        self.incidents.set_entries_as_of(as_of);
        self.orphans.set_dropped_as_of(as_of);
    }

    /// From now on the fold writes out the timeline entries of incidents that are not open
    /// ([`IncidentProjection::write_entries_out`]; the live state of a store of layout 3).
    pub fn write_timelines_out(&mut self) {
        self.incidents.write_entries_out();
    }

    /// From now on the fold writes out every incident an event leaves not open, with its
    /// timeline entries ([`IncidentProjection::write_incidents_out`]; the live state of a store
    /// of layout 4).
    pub fn write_incidents_out(&mut self) {
        self.incidents.write_incidents_out();
    }

    /// From now on the fold writes out the orphans of the traces a cluster drops after the
    /// retention ([`OrphanProjection::write_dropped_out`]; the live state of a store of layout
    /// 5).
    pub fn write_dropped_orphans_out(&mut self) {
        self.orphans.write_dropped_out();
    }

    /// The orphans of dropped traces the fold wrote out since the last call, in fold order
    /// (see [`Self::write_dropped_orphans_out`]).
    pub fn take_dropped_orphan_records(&mut self) -> Vec<crate::orphans::DroppedOrphanRecord> {
        self.orphans.take_dropped_records()
    }

    /// The incident versions the fold wrote out since the last call, in fold order (see
    /// [`Self::write_incidents_out`]).
    pub fn take_incident_body_records(
        &mut self,
    ) -> Vec<crate::incident_bodies::IncidentBodyRecord> {
        self.incidents.take_body_records()
    }

    /// The timeline entries the fold wrote out since the last call, in fold order (see
    /// [`Self::write_timelines_out`]).
    pub fn take_timeline_records(&mut self) -> Vec<crate::timeline_rows::IncidentEntryRecord> {
        self.incidents.take_entry_records()
    }

    /// Writes out, at position `at`, what incidents that are not open hold in memory (see
    /// [`IncidentProjection::write_out_every_closed`]): nothing in a live state that writes
    /// out as incidents close, except after a restore (what the replay after its snapshot, or
    /// a snapshot written before layout 4, left in memory). A batch does it before it takes
    /// the records, so its snapshot holds the open incidents only.
    pub fn write_out_closed_incidents(&mut self, at: u64) {
        self.incidents.write_out_every_closed(at);
    }

    /// The history records the fold wrote out since the last call (a shared history's; see
    /// [`FindingsProjection::take_history_records`]).
    pub fn take_history_records(&mut self) -> Vec<HistoryRecord> {
        self.findings.take_history_records()
    }

    /// [`Self::restore`], consuming the snapshot (its parts move instead of being copied).
    pub fn restore_owned(snapshot: ProjectionsSnapshot) -> Self {
        Self {
            findings: FindingsProjection::restore_owned(snapshot.findings),
            orphans: OrphanProjection::restore_owned(snapshot.orphans),
            incidents: IncidentProjection::restore_owned(snapshot.incidents),
            changes: Vec::new(),
        }
    }
}

/// The halves of the cluster parts read for one projection of a lazily restored state and not
/// yet asked for by the other (see [`Projections::restore_live_lazily`]).
#[derive(Default)]
struct UnclaimedHalves {
    findings: std::collections::BTreeMap<
        String,
        crate::findings::ClusterSnapshot<'static, Vec<LiveFindingSnapshot<'static>>>,
    >,
    orphans: std::collections::BTreeMap<String, Option<ClusterOrphansSnapshot>>,
}

/// Reads a cluster's snapshot part for a projection restored lazily
/// ([`Projections::restore_live_lazily`]): the store's tables, read at the edge.
pub trait ClusterPartSource: Send + Sync {
    /// The part of `cluster` the snapshot at position `part` wrote; `None` after recording the
    /// fault that kept it from being read (missing, corrupt, named for another cluster, the
    /// engine), for the store's read path to answer instead of the read.
    fn read_part(&self, cluster: &str, part: u64) -> Option<ClusterPart>;
}

/// The live snapshot of every projection (store layout 2): the findings without their history.
pub type LiveProjectionsSnapshot = ProjectionsSnapshot<LiveFindingsSnapshot>;

/// One cluster's part of a live snapshot: its findings (without their history) and its orphan
/// state. The layout is stored (postcard is positional): a change is a new format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ClusterPart")]
pub struct ClusterPart<
    Findings = ClusterSnapshot<'static, Vec<LiveFindingSnapshot<'static>>>,
    Orphans = Option<ClusterOrphansSnapshot>,
> {
    /// The cluster's findings.
    pub findings: Findings,
    /// Its orphan state (`None`: nothing of it).
    pub orphans: Orphans,
}

impl LiveProjectionsSnapshot {
    /// The live snapshot of the cluster `parts` (in any order) and the `incidents`: the same
    /// value as [`Projections::live_snapshot`] of the projections they were taken from.
    pub fn from_parts(mut parts: Vec<ClusterPart>, incidents: IncidentsSnapshot<'static>) -> Self {
        parts.sort_by(|a, b| a.findings.cluster.cmp(&b.findings.cluster));
        let mut orphans = Vec::new();
        let clusters = parts
            .into_iter()
            .map(|part| {
                orphans.extend(part.orphans);
                part.findings
            })
            .collect();
        ProjectionsSnapshot {
            findings: FindingsSnapshot { clusters },
            orphans: OrphansSnapshot { clusters: orphans },
            incidents,
        }
    }

    /// The snapshot split into its cluster parts (by cluster name) and its incidents: what
    /// [`Self::from_parts`] puts back together.
    pub fn into_parts(self) -> (Vec<ClusterPart>, IncidentsSnapshot<'static>) {
        let mut orphans: std::collections::BTreeMap<String, ClusterOrphansSnapshot> = self
            .orphans
            .clusters
            .into_iter()
            .map(|c| (c.cluster.clone(), c))
            .collect();
        let parts = self
            .findings
            .clusters
            .into_iter()
            .map(|findings| ClusterPart {
                orphans: orphans.remove(findings.cluster.as_ref()),
                findings,
            })
            .collect();
        (parts, self.incidents)
    }
}

/// Serializable state of every projection: owned (the defaults) when read, with parts borrowed
/// from the live state when written ([`Projections::snapshot_serializer`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ProjectionsSnapshot")]
pub struct ProjectionsSnapshot<
    Findings = FindingsSnapshot,
    Orphans = OrphansSnapshot,
    Incidents = IncidentsSnapshot<'static>,
> {
    /// Findings, flaps, stuck, churn.
    pub findings: Findings,
    /// The orphan graph.
    pub orphans: Orphans,
    /// Incidents.
    pub incidents: Incidents,
}

/// The `--step` digest of a whole state (`changes::Digest`), built here: the digest reads every
/// projection, and the findings fold, which the `changes` module serves, must not depend on the
/// projections it is part of.
impl crate::findings::changes::Digest {
    /// The digest of the whole state.
    pub fn of(p: &Projections) -> Self {
        let f = p.findings();
        let findings = f
            .views()
            .into_iter()
            .map(|v| {
                (
                    crate::findings::changes::key(&v.cluster, &v.check_key),
                    (
                        v.state,
                        v.clean_cycles,
                        v.severity.to_string(),
                        v.occurrences,
                        v.resolution_kind
                            .map_or_else(String::new, |k| k.as_str().to_owned()),
                    ),
                )
            })
            .collect();
        let flapping = f
            .flaps(None)
            .into_iter()
            .filter_map(|v| {
                let how = crate::findings::changes::flap_how(v.flapping, v.flapping_state_change)?;
                Some((
                    crate::findings::changes::key(&v.cluster, &v.check_key),
                    how.to_owned(),
                ))
            })
            .collect();
        let stuck = f.stuck(None);
        let unreachable = stuck
            .unreachable
            .iter()
            .map(|u| {
                (
                    crate::findings::changes::key(&u.cluster, &u.check_key),
                    crate::findings::changes::unreachable_reason(u.reason).to_owned(),
                )
            })
            .collect();
        let drift = stuck
            .drift_suspects
            .iter()
            .map(|d| {
                crate::findings::changes::drift_subject(
                    &d.cluster,
                    &d.record.old_check_key,
                    &d.record.new_check_key,
                )
            })
            .collect();
        let unstable = p
            .unstable_keys(None)
            .into_iter()
            .map(|k| crate::findings::changes::key(&k.cluster, &k.advice.check_key))
            .collect();
        let mut digest = Self::default();
        for view in &p.orphans().orphans(None) {
            let confirmed = true;
            digest.insert_orphan(&crate::orphans::ListedOrphan { view, confirmed });
        }
        for view in &p.orphans().candidates(None) {
            let confirmed = false;
            digest.insert_orphan(&crate::orphans::ListedOrphan { view, confirmed });
        }
        let incidents = p
            .incidents()
            .views(f, None, true)
            .into_iter()
            .map(|i| {
                let state = format!("{:?}", i.state).to_lowercase();
                let keys = i.findings.iter().map(|f| f.check_key.clone()).collect();
                let layers = i.layers.iter().map(|l| l.layers.len()).sum();
                (i.id, (state, keys, layers, i.timeline_entries, i.title))
            })
            .collect();
        Self {
            findings,
            flapping,
            unreachable,
            drift,
            unstable,
            orphans: digest.orphans,
            candidates: digest.candidates,
            incidents,
        }
    }
}
