//! Incidents as users see them: title, severity, state, duration, findings, notes and the
//! layers worth showing.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::Severity;
use crate::findings::FindingsProjection;
use crate::timestamp::Timestamp;

use super::{
    Incident, IncidentFinding, IncidentKind, IncidentProjection, ResourceLayers, max_severity,
};

impl Incident {
    /// The title users see: the declared one, else its first finding's latest title
    /// (`first_title`; the check key when the finding is not known) and how many findings
    /// follow, else its id.
    pub(super) fn title(
        &self,
        first_title: impl FnOnce(&IncidentFinding) -> Option<String>,
    ) -> String {
        if let Some(declared) = &self.declared_title {
            return declared.clone();
        }
        let Some(first) = self.findings.first() else {
            return self.id.clone();
        };
        let title = first_title(first).unwrap_or_else(|| first.check_key.clone());
        match self.findings.len() {
            1 => title,
            n => format!("{title} (+{} more)", n - 1),
        }
    }

    /// Open, closed, or absorbed into another incident.
    pub fn state(&self) -> IncidentState {
        if self.merged_into.is_some() {
            IncidentState::Merged
        } else if self.closed_seq.is_some() {
            IncidentState::Closed
        } else {
            IncidentState::Open
        }
    }
}

impl IncidentProjection {
    /// An incident as users see it.
    pub fn view(&self, incident: &Incident, findings: &FindingsProjection) -> IncidentView {
        let finding_views: Vec<IncidentFindingView> = incident
            .findings
            .iter()
            .map(|f| {
                let facts = findings.finding_facts(&f.cluster, &f.check_key);
                IncidentFindingView {
                    cluster: f.cluster.clone(),
                    check_key: f.check_key.clone(),
                    title: facts.map(|x| x.title.to_owned()),
                    severity: f.max_severity,
                    active: facts.is_some_and(|x| x.active),
                    joined_at: f.joined_at,
                }
            })
            .collect();
        let severity = incident
            .findings
            .iter()
            .map(|f| f.max_severity)
            .fold(incident.declared_severity, |acc, s| {
                Some(max_severity(acc, s))
            })
            .unwrap_or(Severity::Info);
        let title = incident.title(|_| finding_views.first().and_then(|f| f.title.clone()));
        IncidentView {
            id: incident.id.clone(),
            kind: incident.kind,
            cluster: incident.cluster.clone(),
            title,
            severity,
            state: incident.state(),
            opened_at: incident.opened_at,
            opened_seq: incident.opened_seq,
            closed_at: incident.closed_at,
            closed_seq: incident.closed_seq,
            duration_secs: incident.closed_at.map(|closed| {
                closed
                    .saturating_duration_since(incident.opened_at)
                    .as_secs()
            }),
            summary: incident.summary.clone(),
            merged_into: incident.merged_into.clone(),
            findings: finding_views,
            notes: incident.notes.clone(),
            layers: incident
                .layers
                .values()
                .filter(|l| l.is_shown())
                .cloned()
                .collect(),
            timeline_entries: self.timeline_len(incident) as u64,
        }
    }

    /// One page of incidents in the order they opened, by (opened_seq, id): those of
    /// `cluster` (or every cluster) in a state `keep` accepts (absorbed ones only with
    /// `include_merged`), after `after` (an `(opened_seq, id)`, which need not exist), at most
    /// `limit`; and whether more follow. Views are built only for the page. The incidents in
    /// memory are filtered there; those written out (ADR 0006 step 4) are read in opening order
    /// from their rows, as far as the page needs. (Incidents are not kept in that order: a
    /// merge gives the target the earlier opening of the incident it absorbs.)
    pub fn views_page(
        &self,
        findings: &FindingsProjection,
        cluster: Option<&str>,
        include_merged: bool,
        keep: impl Fn(IncidentState) -> bool,
        after: Option<(u64, &str)>,
        limit: usize,
    ) -> (Vec<IncidentView>, bool) {
        fn key(i: &Incident) -> (u64, &str) {
            (i.opened_seq, i.id.as_str())
        }
        let wanted = limit.saturating_add(1);
        let chosen_here = |i: &Incident| {
            cluster.is_none_or(|c| c == i.cluster)
                && (include_merged || i.merged_into.is_none())
                && keep(i.state())
                && after.is_none_or(|after| key(i) > after)
        };
        let mut chosen: Vec<Cow<'_, Incident>> = self
            .incidents
            .iter()
            .map(|(_, i)| i)
            .filter(|i| chosen_here(i))
            .map(Cow::Borrowed)
            .collect();
        // Only the first `limit + 1` in key order can be on this page (or say more follow).
        if chosen.len() > wanted {
            chosen.select_nth_unstable_by(wanted - 1, |a, b| key(a).cmp(&key(b)));
            chosen.truncate(wanted);
        }
        // Written out: never open; read in key order, at most `limit + 1` chosen.
        if keep(IncidentState::Closed) || (include_merged && keep(IncidentState::Merged)) {
            let mut taken = 0;
            self.visit_written(cluster, after, &mut |_, incident| {
                if chosen_here(&incident) {
                    chosen.push(Cow::Owned(incident));
                    taken += 1;
                }
                taken < wanted
            });
        }
        chosen.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        let more = chosen.len() > limit;
        chosen.truncate(limit);
        let page = chosen.iter().map(|i| self.view(i, findings)).collect();
        (page, more)
    }

    /// Every incident as users see it, in the order they were created; absorbed ones only with
    /// `include_merged`.
    pub fn views(
        &self,
        findings: &FindingsProjection,
        cluster: Option<&str>,
        include_merged: bool,
    ) -> Vec<IncidentView> {
        self.incidents()
            .iter()
            .filter(|i| cluster.is_none_or(|c| c == i.cluster))
            .filter(|i| include_merged || i.merged_into.is_none())
            .map(|i| self.view(i, findings))
            .collect()
    }

    /// Every incident, in the order they were created (absorbed ones included, marked): those
    /// in memory and those written out, read back. A whole read, for the CLI, the corpus,
    /// checks and tests; pages go through [`Self::views_page`].
    pub fn incidents(&self) -> Vec<Cow<'_, Incident>> {
        self.every_incident_numbered()
            .into_iter()
            .map(|(_, incident)| incident)
            .collect()
    }

    /// Every incident with its number, in number order: those in memory borrowed, those
    /// written out read back.
    pub(super) fn every_incident_numbered(&self) -> Vec<(usize, Cow<'_, Incident>)> {
        let mut every: Vec<(usize, Cow<'_, Incident>)> = self
            .incidents
            .iter()
            .map(|(number, incident)| (number, Cow::Borrowed(incident)))
            .collect();
        self.visit_written(None, None, &mut |number, incident| {
            every.push((number, Cow::Owned(incident)));
            true
        });
        every.sort_by_key(|(number, _)| *number);
        every
    }

    /// One incident by id, as of the state's position.
    pub fn incident(&self, id: &str) -> Option<Cow<'_, Incident>> {
        self.read_incident(id)
    }
}

impl ResourceLayers {
    /// Whether users are shown the resource's layers: it failed in more than one way, or a
    /// change had an effect on it (none, another failure, a layer again).
    pub(super) fn is_shown(&self) -> bool {
        self.layers.len() > 1
            || self.layers.iter().any(|x| {
                !x.changes_without_effect.is_empty()
                    || !x.failed_differently.is_empty()
                    || !x.seen_again_after.is_empty()
            })
    }
}

/// Open, closed, or absorbed into another incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// Still going.
    Open,
    /// Over.
    Closed,
    /// Absorbed into an explicit incident.
    Merged,
}

/// A finding of an incident as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentFindingView {
    /// Its cluster.
    pub cluster: String,
    /// Its key.
    pub check_key: String,
    /// Latest title, when the finding is known.
    pub title: Option<String>,
    /// Highest severity seen while in the incident.
    pub severity: Severity,
    /// Active now.
    pub active: bool,
    /// When it joined.
    pub joined_at: Timestamp,
}

/// An incident as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentView {
    /// Id.
    pub id: String,
    /// Explicit or automatic.
    pub kind: IncidentKind,
    /// Cluster.
    pub cluster: String,
    /// Declared title, else from its findings.
    pub title: String,
    /// Max of its findings' severities (and the declared one).
    pub severity: Severity,
    /// Open, closed or merged.
    pub state: IncidentState,
    /// When it opened.
    pub opened_at: Timestamp,
    /// Log position.
    pub opened_seq: u64,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
    /// Log position.
    pub closed_seq: Option<u64>,
    /// Closed minus opened.
    pub duration_secs: Option<u64>,
    /// Declared summary.
    pub summary: Option<String>,
    /// The incident that absorbed it.
    pub merged_into: Option<String>,
    /// Its findings.
    pub findings: Vec<IncidentFindingView>,
    /// Notes by kind.
    pub notes: BTreeMap<String, u32>,
    /// Resources that failed in more than one way across changes, layer by layer.
    pub layers: Vec<ResourceLayers>,
    /// Entries in its timeline.
    pub timeline_entries: u64,
}
