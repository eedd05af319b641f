//! The finding index against a plain model, on real redb files: random entries of a few
//! findings, written in random batches as groups (`finding_groups`) and one entry each (the
//! older `by_finding`), answer every forward range, backward range and point read as the model
//! does, from either table; and again after retention cuts at a random position.
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES` changes the number of cases.

use std::collections::BTreeMap;

use crate::property_runner::seeded_runner;
use proptest::prelude::*;
use redb::ReadableDatabase;

use super::*;

/// Clusters and check keys, with a NUL and a prefix of another, so key order is exercised.
const FINDINGS: [(&str, &str); 4] = [("c", "k"), ("c", "k\u{0}x"), ("c", "kk"), ("c\u{0}", "k")];

/// (finding, position) → change bits: what the index must answer.
type Model = BTreeMap<(usize, u64), u8>;

/// Events at positions 1, 2, ...: each the findings it changed (a bit mask over `FINDINGS`)
/// and the change bits; and the sizes of the batches they are written in.
fn log() -> impl Strategy<Value = (Vec<(u8, u8)>, Vec<usize>)> {
    (
        proptest::collection::vec((0u8..16, 1u8..=255), 0..260),
        proptest::collection::vec(1..150usize, 1..8),
    )
}

/// The model of `events`, and the batches of entries as a batch gathers them (per finding, in
/// position order), one per size of `sizes` (the last size repeats).
fn model_and_batches(events: &[(u8, u8)], sizes: &[usize]) -> (Model, Vec<Model>) {
    let mut model = Model::new();
    let mut batches = Vec::new();
    let mut at = 0;
    let mut size_at = 0;
    while at < events.len() {
        let size = sizes[size_at.min(sizes.len() - 1)];
        size_at += 1;
        let mut batch = Model::new();
        for (i, (mask, bits)) in events.iter().enumerate().skip(at).take(size) {
            for finding in (0..FINDINGS.len()).filter(|f| mask & (1 << f) != 0) {
                batch.insert((finding, i as u64 + 1), *bits);
                model.insert((finding, i as u64 + 1), *bits);
            }
        }
        batches.push(batch);
        at += size;
    }
    (model, batches)
}

/// Writes the batches into both tables of a fresh file, a transaction per batch.
fn write(path: &std::path::Path, batches: &[Model]) -> redb::Database {
    let db = redb::Database::create(path).unwrap();
    // Both tables exist, whatever the batches hold (none, when the log is empty).
    #[allow(clippy::disallowed_methods)] // a bare file
    let txn = db.begin_write().unwrap();
    txn.open_table(tables::FINDING_GROUPS).unwrap();
    txn.open_table(tables::BY_FINDING).unwrap();
    txn.commit().unwrap();
    for batch in batches {
        #[allow(clippy::disallowed_methods)] // a bare file: no store, no retries to add
        let txn = db.begin_write().unwrap();
        {
            let mut groups = txn.open_table(tables::FINDING_GROUPS).unwrap();
            let mut entries = txn.open_table(tables::BY_FINDING).unwrap();
            let mut buffer = Vec::new();
            for (finding, (cluster, check_key)) in FINDINGS.iter().enumerate() {
                let run: Vec<(u64, u8)> = batch
                    .range((finding, 0)..=(finding, u64::MAX))
                    .map(|(&(_, seq), &bits)| (seq, bits))
                    .collect();
                if !run.is_empty() {
                    write_groups(&mut groups, cluster, check_key, &run, &mut buffer).unwrap();
                }
                for (seq, bits) in run {
                    entries.insert((*cluster, *check_key, seq), bits).unwrap();
                }
            }
        }
        txn.commit().unwrap();
    }
    db
}

/// Both forms of the index of the file's latest commit: from `finding_groups` (`by_finding`
/// read as empty) and from `by_finding`.
fn both(db: &redb::Database) -> [FindingIndex; 2] {
    let txn = db.begin_read().unwrap();
    let groups = FindingIndex::Groups(Some(txn.open_table(tables::FINDING_GROUPS).unwrap()));
    let entries = FindingIndex::Entries(txn.open_table(tables::BY_FINDING).unwrap());
    [groups, entries]
}

/// Every read of every finding, from either form, is the model's.
fn check(index: &FindingIndex, model: &Model, last: u64) -> Result<(), TestCaseError> {
    let name = index.table_name();
    for (finding, (cluster, check_key)) in FINDINGS.iter().enumerate() {
        let of = |from: u64, to: u64| -> Vec<(u64, u8)> {
            model
                .range((finding, from)..=(finding, to))
                .map(|(&(_, seq), &bits)| (seq, bits))
                .collect()
        };
        for from in 0..=last + 1 {
            for to in [
                from,
                from + 1,
                from + 63,
                from + 64,
                from + 65,
                last,
                u64::MAX,
            ] {
                let read: Vec<(u64, u8)> = index
                    .forward(cluster, check_key, from, to)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let want = if from <= to { of(from, to) } else { Vec::new() };
                prop_assert_eq!(
                    read,
                    want,
                    "{}: forward {}..={} of {}",
                    name,
                    from,
                    to,
                    finding
                );
            }
            let read: Vec<(u64, u8)> = index
                .backward(cluster, check_key, from)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let mut want = of(0, from);
            want.reverse();
            prop_assert_eq!(read, want, "{}: backward to {} of {}", name, from, finding);
            prop_assert_eq!(
                index.get(cluster, check_key, from).unwrap(),
                model.get(&(finding, from)).copied(),
                "{}: at {} of {}",
                name,
                from,
                finding
            );
        }
    }
    let mut walked = Model::new();
    index
        .for_each(
            |cluster, check_key, seq, bits| {
                let finding = FINDINGS
                    .iter()
                    .position(|f| *f == (cluster, check_key))
                    .unwrap();
                walked.insert((finding, seq), bits);
                Ok(())
            },
            |record| panic!("{record}"),
        )
        .unwrap();
    prop_assert_eq!(&walked, model, "{}: every entry", name);
    Ok(())
}

#[test]
fn the_index_answers_every_read_as_its_model_from_either_table_and_after_a_cut() {
    let (mut runner, seed) = seeded_runner(24);
    eprintln!("seed {seed} (TIDEMARK_PROPTEST_SEED={seed} reproduces)");
    let cases = (log(), 0..300u64);
    let result = runner.run(&cases, |((events, sizes), cut)| {
        let dir = tempfile::tempdir().unwrap();
        let (model, batches) = model_and_batches(&events, &sizes);
        let last = events.len() as u64;
        let db = write(&dir.path().join("index.redb"), &batches);
        for index in both(&db) {
            check(&index, &model, last)?;
        }
        // Retention: the groups a cut falls inside are rewritten from the cut on.
        #[allow(clippy::disallowed_methods)] // a bare file
        let txn = db.begin_write().unwrap();
        cut_groups_before(&txn, cut).unwrap();
        txn.open_table(tables::BY_FINDING)
            .unwrap()
            .retain(|(_, _, seq), _| seq >= cut)
            .unwrap();
        txn.commit().unwrap();
        let kept: Model = model
            .into_iter()
            .filter(|((_, seq), _)| *seq >= cut)
            .collect();
        for index in both(&db) {
            check(&index, &kept, last)?;
        }
        // No group is left starting before the cut, and none holds more than the cap.
        let txn = db.begin_read().unwrap();
        let groups = txn.open_table(tables::FINDING_GROUPS).unwrap();
        for entry in redb::ReadableTable::iter(&groups).unwrap() {
            let (key, value) = entry.unwrap();
            let (cluster, check_key, first) = key.value();
            prop_assert!(first >= cut, "a group at {} before the cut {}", first, cut);
            let mut entries = Vec::new();
            decode_group(cluster, check_key, first, value.value(), &mut entries).unwrap();
            prop_assert!(entries.len() <= FINDING_GROUP_MAX_ENTRIES);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("finding index property failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}");
    }
}
