//! Incidents that are not open, out of the live state (ADR 0006, step 4): what an incident is
//! (its types live here, below the projection, so the history readers can name them), the rows
//! the fold writes out for incidents an event leaves not open, and how they are read as of a
//! log position. One algorithm ([`write_body_records`], [`read_body`],
//! [`read_in_opening_order`]) over a table trait ([`BodyRows`]), which the store implements
//! over redb and [`MemoryIncidentBodies`] in memory.
//!
//! # The rows
//!
//! At the end of each event, the live state writes out every incident the event touched that
//! is not open (closed, or absorbed) and forgets it: an [`IncidentBodyRecord`] (its number in
//! the order incidents were created, and its body without the timeline, which goes to
//! `crate::timeline_rows`) written at the event's position. Rows are never rewritten: a closed
//! incident the fold changes again (a note, a deploy, an update, a reopen, a merge into it) is
//! read back, changed, and, if it is still not open at the end of that event, written again as
//! a new version. A read as of position `P` takes the latest version written at or before `P`.
//!
//! Each version also writes two opening rows, `(scope, opened_seq, id, written_at)`: one in
//! the scope of every cluster (`""`; a cluster's name is never empty) and one in its own
//! cluster's. Lists page them in key order; a row whose incident's version as of `P` opened
//! elsewhere (a merge moves the absorbing incident's opening earlier) is passed over, and an
//! incident with several versions is listed once.
//!
//! A state at `P` holds in memory its open incidents (and, for a past state, everything it
//! folded); an incident in memory is read from memory, any other from its rows as of `P`.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::Bound;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{ChangeKind, Severity};
use crate::timeline_rows::IncidentEntry;
use crate::timestamp::Timestamp;

/// How an incident came to be.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Declared by `incident.opened` (or named by a note, deploy or update first).
    Explicit,
    /// Grouped from findings by the projection.
    Automatic,
}

/// A finding of an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFinding {
    /// The finding's cluster (an explicit incident may span clusters).
    pub cluster: String,
    /// The finding's key.
    pub check_key: String,
    /// When it joined.
    pub joined_at: Timestamp,
    /// Log position where it joined.
    pub joined_seq: u64,
    /// Highest severity seen while in the incident.
    pub max_severity: Severity,
}

/// An incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// Explicit or automatic.
    pub kind: IncidentKind,
    /// Its cluster (of the event that opened it).
    pub cluster: String,
    /// Title given by `incident.*`.
    pub declared_title: Option<String>,
    /// Severity given by `incident.*`.
    pub declared_severity: Option<Severity>,
    /// Summary given by `incident.*`.
    pub summary: Option<String>,
    /// When it opened.
    pub opened_at: Timestamp,
    /// Log position.
    pub opened_seq: u64,
    /// When it closed.
    pub closed_at: Option<Timestamp>,
    /// Log position.
    pub closed_seq: Option<u64>,
    /// The incident that absorbed this one.
    pub merged_into: Option<String>,
    /// Its findings, in the order they joined.
    pub findings: Vec<IncidentFinding>,
    /// When its latest finding opened (automatic grouping window).
    pub last_opened_at: Timestamp,
    /// Namespaces of its findings' resources.
    pub namespaces: BTreeSet<String>,
    /// Resource-graph components of its findings' resources.
    pub components: BTreeSet<String>,
    /// Notes by kind.
    pub notes: BTreeMap<String, u32>,
    /// Failure layers by resource.
    pub layers: BTreeMap<String, ResourceLayers>,
    /// The events that touched it, in log order: those not written out to rows (ADR 0006
    /// step 3; every one, where nothing is written out). Read through
    /// [`IncidentProjection::timeline`] and its siblings, which union the rows.
    pub(crate) timeline: Vec<IncidentEntry>,
}

/// A deploy, rollback or config change, as a layer refers to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeRef {
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// Deploy, rollback or config.
    pub kind: ChangeKind,
    /// Log position.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
}

/// One failure layer of a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailureLayer {
    /// 1 for the first failure seen.
    pub number: u32,
    /// The finding that showed it.
    pub check_key: String,
    /// Its signature: the detail, else the title.
    pub signature: String,
    /// When it was first seen.
    pub first_seen_at: Timestamp,
    /// Log position.
    pub first_seen_seq: u64,
    /// The change after which it appeared (none for the first layer).
    pub after_change: Option<ChangeRef>,
    /// Changes after which the same failure came back (a rollback here is one that crashed
    /// the same way).
    pub changes_without_effect: Vec<ChangeRef>,
    /// Rollbacks tried while this layer was the current one that failed another way: their
    /// outcome, not a layer of the incident.
    // Stored in postcard snapshots: always present.
    pub failed_differently: Vec<DifferentFailure>,
    /// Forward changes after which this layer's failure was seen again, coming back from
    /// another failure (a rollback's, or a later layer's).
    pub seen_again_after: Vec<ChangeRef>,
}

/// What a rollback showed when it failed another way than the layer it was meant to escape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DifferentFailure {
    /// The rollback.
    pub change: ChangeRef,
    /// The finding that showed the failure.
    pub check_key: String,
    /// The failure it showed: the detail, else the title.
    pub signature: String,
    /// When it was seen.
    pub seen_at: Timestamp,
    /// Log position.
    pub seen_seq: u64,
}

/// The failure layers of one resource of an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceLayers {
    /// The resource: `Kind namespace/workload`, or the check key when the finding names none.
    pub resource: String,
    /// Its layers, in order.
    pub layers: Vec<FailureLayer>,
    /// A change waiting for the next observation.
    // Stored in postcard snapshots: always present.
    pub armed_by: Option<ChangeRef>,
    /// The number of the layer the resource is at: the last one a forward change showed.
    pub current_layer: u32,
    /// Whether the latest observation after a change was a rollback failing another way (the
    /// resource is off its layers until a change shows one of them again).
    pub diverted_by_rollback: bool,
}

/// The stored body of one version of an incident: its number (the order incidents were
/// created in) and the incident without its timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyRow {
    /// Its number: incidents are numbered 0, 1, 2... as they are created.
    pub number: u64,
    /// The incident (its timeline empty: the entries are rows of their own).
    pub incident: Incident,
}

/// A version of an incident's body the fold wrote out, for the store to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentBodyRecord {
    /// The position of the event that wrote it.
    pub written_at: u64,
    /// The version.
    pub row: BodyRow,
}

/// The scope of the opening rows of every cluster (a cluster's name is never empty).
pub const EVERY_CLUSTER: &str = "";

/// A key of the opening rows after the scope: (opened_seq, id, written_at).
pub type OpeningKey = (u64, String, u64);

/// The body rows, as the algorithm reads them: a store's tables or [`MemoryIncidentBodies`].
pub trait BodyRows {
    /// What a read can fail with.
    type Error;

    /// The latest version of `id` written at or before `as_of`, with the position it was
    /// written at.
    fn latest_body(&self, id: &str, as_of: u64) -> Result<Option<(u64, BodyRow)>, Self::Error>;

    /// The opening rows of `scope` after `(opened_seq, id)` (every version of it included:
    /// strictly after that pair), in key order.
    fn openings_after(
        &self,
        scope: &str,
        after: Option<(u64, &str)>,
    ) -> Result<impl Iterator<Item = Result<OpeningKey, Self::Error>>, Self::Error>;
}

/// The body rows, as the algorithm writes them.
pub trait BodyRowsMut: BodyRows {
    /// Writes a version (replacing one written at the same position: the later one wins).
    fn insert_body(&mut self, id: &str, written_at: u64, row: &BodyRow) -> Result<(), Self::Error>;

    /// Writes an opening row.
    fn insert_opening(
        &mut self,
        scope: &str,
        opened_seq: u64,
        id: &str,
        written_at: u64,
    ) -> Result<(), Self::Error>;
}

/// Writes the records a fold wrote out, in order: each version and its two opening rows.
pub fn write_body_records<T: BodyRowsMut>(
    table: &mut T,
    records: &[IncidentBodyRecord],
) -> Result<(), T::Error> {
    for record in records {
        let incident = &record.row.incident;
        table.insert_body(&incident.id, record.written_at, &record.row)?;
        for scope in [EVERY_CLUSTER, incident.cluster.as_str()] {
            table.insert_opening(scope, incident.opened_seq, &incident.id, record.written_at)?;
        }
    }
    Ok(())
}

/// The version of `id` as of position `as_of`, if it was written out by then.
pub fn read_body<T: BodyRows>(
    table: &T,
    id: &str,
    as_of: u64,
) -> Result<Option<BodyRow>, T::Error> {
    Ok(table.latest_body(id, as_of)?.map(|(_, row)| row))
}

/// Visits the incidents written out as of `as_of` (of `cluster`, or every cluster) in opening
/// order, `(opened_seq, id)`, after `after`, each once as its version as of `as_of`, until
/// `visit` returns `false`.
pub fn read_in_opening_order<T: BodyRows>(
    table: &T,
    cluster: Option<&str>,
    after: Option<(u64, &str)>,
    as_of: u64,
    visit: &mut dyn FnMut(BodyRow) -> bool,
) -> Result<(), T::Error> {
    let scope = cluster.unwrap_or(EVERY_CLUSTER);
    let mut previous: Option<(u64, String)> = None;
    for row in table.openings_after(scope, after)? {
        let (opened_seq, id, written_at) = row?;
        if written_at > as_of
            || previous
                .as_ref()
                .is_some_and(|(seq, prev)| *seq == opened_seq && *prev == id)
        {
            continue;
        }
        let Some(body) = read_body(table, &id, as_of)? else {
            continue;
        };
        previous = Some((opened_seq, id));
        // A version that opened elsewhere: this row is an earlier version's opening.
        if body.incident.opened_seq != opened_seq {
            continue;
        }
        if !visit(body) {
            break;
        }
    }
    Ok(())
}

/// Reads the incidents written out (the store's tables, or [`MemoryIncidentBodies`]) as of a
/// position. Infallible as the core reads it: a store that meets a fault answers empty and
/// records it for its read path to answer instead.
pub trait IncidentBodyReader {
    /// [`read_body`].
    fn incident_body(&self, id: &str, as_of: u64) -> Option<BodyRow>;

    /// [`read_in_opening_order`].
    fn incidents_in_opening_order(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        as_of: u64,
        visit: &mut dyn FnMut(BodyRow) -> bool,
    );
}

/// The body rows in memory: the specification the store's tables follow, and what a history
/// in memory holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryIncidentBodies {
    bodies: BTreeMap<(String, u64), BodyRow>,
    openings: BTreeSet<(String, u64, String, u64)>,
}

impl MemoryIncidentBodies {
    /// No rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes records (see [`write_body_records`]).
    pub fn write(&mut self, records: &[IncidentBodyRecord]) {
        let Ok(()) = write_body_records(self, records);
    }
}

impl BodyRows for MemoryIncidentBodies {
    type Error = Infallible;

    fn latest_body(&self, id: &str, as_of: u64) -> Result<Option<(u64, BodyRow)>, Infallible> {
        Ok(self
            .bodies
            .range((id.to_owned(), 0)..=(id.to_owned(), as_of))
            .next_back()
            .map(|((_, written_at), row)| (*written_at, row.clone())))
    }

    fn openings_after(
        &self,
        scope: &str,
        after: Option<(u64, &str)>,
    ) -> Result<impl Iterator<Item = Result<OpeningKey, Infallible>>, Infallible> {
        let start = match after {
            Some((seq, id)) => Bound::Excluded((scope.to_owned(), seq, id.to_owned(), u64::MAX)),
            None => Bound::Included((scope.to_owned(), 0, String::new(), 0)),
        };
        let scope = scope.to_owned();
        Ok(self
            .openings
            .range((start, Bound::Unbounded))
            .take_while(move |(s, ..)| *s == scope)
            .map(|(_, seq, id, written_at)| Ok((*seq, id.clone(), *written_at))))
    }
}

impl BodyRowsMut for MemoryIncidentBodies {
    fn insert_body(&mut self, id: &str, written_at: u64, row: &BodyRow) -> Result<(), Infallible> {
        self.bodies.insert((id.to_owned(), written_at), row.clone());
        Ok(())
    }

    fn insert_opening(
        &mut self,
        scope: &str,
        opened_seq: u64,
        id: &str,
        written_at: u64,
    ) -> Result<(), Infallible> {
        self.openings
            .insert((scope.to_owned(), opened_seq, id.to_owned(), written_at));
        Ok(())
    }
}

impl IncidentBodyReader for MemoryIncidentBodies {
    fn incident_body(&self, id: &str, as_of: u64) -> Option<BodyRow> {
        let Ok(row) = read_body(self, id, as_of);
        row
    }

    fn incidents_in_opening_order(
        &self,
        cluster: Option<&str>,
        after: Option<(u64, &str)>,
        as_of: u64,
        visit: &mut dyn FnMut(BodyRow) -> bool,
    ) {
        let Ok(()) = read_in_opening_order(self, cluster, after, as_of, visit);
    }
}
