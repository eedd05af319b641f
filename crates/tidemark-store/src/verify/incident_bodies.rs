//! Incidents written out (`incident_bodies` and `incident_openings`; store layout 4) checked
//! against the fold of the log: every body row decodes under its key, every opening row names
//! a version that opened there in its scope, and, given the fold of the whole log (which keeps
//! every incident in memory), each incident's latest version is the incident the fold holds
//! (for one that is not open; an open one was written out before it reopened), under its
//! number, and every incident that is not open has one.
//!
//! After a retention cut the fold does not hold the whole log, so the rows are only decoded
//! and the openings checked against them.

use std::collections::{BTreeMap, BTreeSet};

use redb::ReadableTable;
use tidemark_core::Projections;
use tidemark_core::incident_bodies::{BodyRow, EVERY_CLUSTER};
use tidemark_core::incidents::IncidentState;

use super::{Findings, VerifyError};
use crate::codec;
use crate::tables::{self, Table, open_listed};

const BODIES: &str = "incident_bodies";
const OPENINGS: &str = "incident_openings";

/// Checks `incident_bodies` and `incident_openings` (see the module's documentation).
pub(super) fn check(
    txn: &redb::ReadTransaction,
    fold: Option<&Projections>,
    findings: &mut Findings,
    checked: &mut BTreeMap<&'static str, u64>,
) -> Result<(), VerifyError> {
    let Some(bodies) = open_listed(txn, Table::IncidentBodies, tables::INCIDENT_BODIES)? else {
        return Ok(());
    };
    // Every version, and the latest of each incident.
    let mut versions: BTreeMap<(String, u64), (u64, String)> = BTreeMap::new();
    let mut latest: BTreeMap<String, BodyRow> = BTreeMap::new();
    let mut undecodable: BTreeSet<String> = BTreeSet::new();
    for row in bodies.iter()? {
        let (key, value) = row?;
        let (id, written_at) = key.value();
        *checked.entry(BODIES).or_default() += 1;
        match codec::decode_body_row(id, written_at, value.value()) {
            Ok(row) => {
                versions.insert(
                    (id.to_owned(), written_at),
                    (row.incident.opened_seq, row.incident.cluster.clone()),
                );
                // Keys in order: the last one read of an incident is its latest.
                latest.insert(id.to_owned(), row);
            }
            Err(problem) => {
                findings.add(BODIES, format!("({id:?}, {written_at})"), problem);
                undecodable.insert(id.to_owned());
            }
        }
    }
    if let Some(openings) = open_listed(txn, Table::IncidentOpenings, tables::INCIDENT_OPENINGS)? {
        let mut named: BTreeSet<(bool, String, u64)> = BTreeSet::new();
        for row in openings.iter()? {
            let (key, _) = row?;
            let (scope, opened_seq, id, written_at) = key.value();
            *checked.entry(OPENINGS).or_default() += 1;
            let shown = format!("({scope:?}, {opened_seq}, {id:?}, {written_at})");
            if undecodable.contains(id) {
                continue;
            }
            match versions.get(&(id.to_owned(), written_at)) {
                None => findings.add(
                    OPENINGS,
                    shown,
                    "no version of the incident was written there",
                ),
                Some((seq, _)) if *seq != opened_seq => findings.add(
                    OPENINGS,
                    shown,
                    format!("the version written there opened at {seq}"),
                ),
                Some((_, cluster)) if scope != EVERY_CLUSTER && scope != cluster => findings.add(
                    OPENINGS,
                    shown,
                    format!("the incident is of cluster {cluster:?}"),
                ),
                Some(_) => {
                    named.insert((scope == EVERY_CLUSTER, id.to_owned(), written_at));
                }
            }
        }
        for (id, written_at) in versions.keys() {
            for every in [true, false] {
                if !named.contains(&(every, id.clone(), *written_at)) {
                    findings.add(
                        OPENINGS,
                        format!("(.., {id:?}, {written_at})"),
                        if every {
                            "missing: the version's opening in the scope of every cluster"
                        } else {
                            "missing: the version's opening in its cluster's scope"
                        },
                    );
                }
            }
        }
    }
    let Some(fold) = fold else {
        return Ok(());
    };
    // The fold of the whole log holds every incident in memory, numbered as created.
    let incidents = fold.incidents().incidents();
    for (number, incident) in incidents.iter().enumerate() {
        let id = &incident.id;
        if undecodable.contains(id) {
            continue;
        }
        let open = incident.state() == IncidentState::Open;
        match latest.remove(id) {
            None if !open => findings.add(
                BODIES,
                format!("({id:?}, ..)"),
                "missing: the incident is not open, so it is written out",
            ),
            None => {}
            Some(row) => {
                if row.number != number as u64 {
                    findings.add(
                        BODIES,
                        format!("({id:?}, ..)"),
                        format!("numbered {}, the fold numbers it {number}", row.number),
                    );
                }
                if !open && row.incident != incident.without_timeline() {
                    findings.add(
                        BODIES,
                        format!("({id:?}, ..)"),
                        "the latest version differs from the incident in the fold of the log",
                    );
                }
            }
        }
    }
    for id in latest.keys() {
        findings.add(
            BODIES,
            format!("({id:?}, ..)"),
            "the fold of the log has no such incident",
        );
    }
    Ok(())
}
