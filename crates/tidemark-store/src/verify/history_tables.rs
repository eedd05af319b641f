//! A finding's history tables (`finding_occurrences`, `finding_flap_episodes`; store layout 2)
//! checked against the history the fold of the log writes out: every row decodes under its
//! key, equals the fold's record, and the fold's every record has its row.
//!
//! Compared when the fold folded the whole log (its history is in memory). After a retention
//! cut the rows before it are not derivable from the retained log (and may come from a snapshot
//! written under an older format's rules), so the rows are only decoded then.

use std::collections::BTreeMap;

use redb::ReadableTable;
use tidemark_core::Projections;
use tidemark_core::findings::{HistoryRecord, Occurrence};
use tidemark_core::flaps::FlapEpisode;

use super::{Findings, VerifyError};
use crate::codec;
use crate::tables::{self, Table, open_listed};

/// Checks both tables: each row decodes under its key, and, given `fold` (the fold of the whole
/// log, its history in memory), equals its record, and every record has its row.
pub(super) fn check(
    txn: &redb::ReadTransaction,
    fold: Option<&Projections>,
    findings: &mut Findings,
    checked: &mut BTreeMap<&'static str, u64>,
) -> Result<(), VerifyError> {
    let mut occurrences: BTreeMap<(String, String, u64), (u64, Occurrence)> = BTreeMap::new();
    let mut episodes: BTreeMap<(String, String, u64, u64), FlapEpisode> = BTreeMap::new();
    let memory = fold.and_then(|fold| fold.findings().memory_history());
    for record in memory.into_iter().flat_map(|memory| memory.records()) {
        match record {
            HistoryRecord::OccurrenceClosed {
                cluster,
                check_key,
                number,
                occurrence,
            } => {
                let key = (cluster, check_key.into(), occurrence.opened_seq);
                occurrences.insert(key, (number, occurrence));
            }
            HistoryRecord::FlapEpisodeEnded {
                cluster,
                check_key,
                number,
                episode,
            } => {
                episodes.insert(
                    (cluster, check_key.into(), episode.started_seq, number),
                    episode,
                );
            }
        }
    }
    let compare = memory.is_some();

    if let Some(table) = open_listed(txn, Table::FindingOccurrences, tables::FINDING_OCCURRENCES)? {
        const NAME: &str = "finding_occurrences";
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (cluster, check_key, opened_seq) = key.value();
            let shown = format!("({cluster}, {check_key}, {opened_seq})");
            *checked.entry(NAME).or_default() += 1;
            let row = match codec::decode_occurrence(cluster, check_key, opened_seq, value.value())
            {
                Ok(row) => row,
                Err(problem) => {
                    findings.add(NAME, shown, problem);
                    continue;
                }
            };
            if !compare {
                continue;
            }
            match occurrences.remove(&(cluster.to_owned(), check_key.to_owned(), opened_seq)) {
                Some(want) if want == row => {}
                Some(_) => findings.add(NAME, shown, "differs from the fold of the log"),
                None => findings.add(NAME, shown, "the fold of the log closes no such occurrence"),
            }
        }
    }
    if let Some(table) = open_listed(
        txn,
        Table::FindingFlapEpisodes,
        tables::FINDING_FLAP_EPISODES,
    )? {
        const NAME: &str = "finding_flap_episodes";
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (cluster, check_key, started_seq, number) = key.value();
            let shown = format!("({cluster}, {check_key}, {started_seq}, {number})");
            *checked.entry(NAME).or_default() += 1;
            let row = match codec::decode_flap_episode(
                cluster,
                check_key,
                started_seq,
                number,
                value.value(),
            ) {
                Ok(row) => row,
                Err(problem) => {
                    findings.add(NAME, shown, problem);
                    continue;
                }
            };
            if !compare {
                continue;
            }
            let key = (
                cluster.to_owned(),
                check_key.to_owned(),
                started_seq,
                number,
            );
            match episodes.remove(&key) {
                Some(want) if want == row => {}
                Some(_) => findings.add(NAME, shown, "differs from the fold of the log"),
                None => findings.add(NAME, shown, "the fold of the log ends no such episode"),
            }
        }
    }
    for (cluster, check_key, opened_seq) in occurrences.into_keys() {
        findings.add(
            "finding_occurrences",
            format!("({cluster}, {check_key}, {opened_seq})"),
            "missing: the fold of the log closes this occurrence",
        );
    }
    for (cluster, check_key, started_seq, number) in episodes.into_keys() {
        findings.add(
            "finding_flap_episodes",
            format!("({cluster}, {check_key}, {started_seq}, {number})"),
            "missing: the fold of the log ends this episode",
        );
    }
    Ok(())
}
