//! The one table list (`tables::Table::ALL`) against real redb files: a fresh store holds
//! exactly the tables of the list, a store with entries in every table holds no other, and its
//! backup holds the same tables with the same number of entries. A file that lacks a table of the
//! list is refused by the backup check (so by `tidemark restore`) and named by `verify`.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};
use tidemark_core::{Timestamp, decode_event};
use tidemark_store::tables::{self, Table};
use tidemark_store::{BackupError, Input, Store, StoreConfig};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// The names of the tables of the list, sorted.
fn listed() -> Vec<&'static str> {
    let mut names: Vec<&str> = Table::ALL.iter().map(|table| table.name()).collect();
    names.sort_unstable();
    names
}

/// Every table of the file with its number of entries, read by redb's own listing.
fn tables_in(path: &Path) -> BTreeMap<String, u64> {
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let tables = txn.list_tables().unwrap();
    tables
        .map(|handle| {
            let name = handle.name().to_owned();
            let entries = txn.open_untyped_table(handle).unwrap().len().unwrap();
            (name, entries)
        })
        .collect()
}

/// A store with entries in every table: one event of each type (an open and a manually resolved
/// finding, an incident), a snapshot, a refused input refused twice (a record, its digest and
/// its repeat count), and a row of each history table.
fn store_with_every_table_filled(path: &Path) -> Store {
    let store = Store::open(path, StoreConfig::default()).unwrap();
    let mut fixtures: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/fixtures/v1"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
    fixtures.sort();
    let events: Vec<Input> = fixtures
        .iter()
        .map(|fixture| {
            Input::Event(decode_event(&std::fs::read_to_string(fixture).unwrap()).unwrap())
        })
        .collect();
    store.append(&events, NOW).unwrap();
    let refused = Input::Rejected {
        raw: b"{not json".to_vec(),
        reason: "not valid JSON".into(),
        origin: "line 1".into(),
    };
    store.append(std::slice::from_ref(&refused), NOW).unwrap();
    store.append(&[refused], NOW).unwrap();
    store.snapshot_now().unwrap();
    drop(store);
    write_history_rows(path);
    Store::open(path, StoreConfig::default()).unwrap()
}

/// Writes a closed occurrence and an ended flap episode of a finding of its own, and an orphan
/// of a dropped trace, into the history tables of the store file at `path` (the fixtures' log need not close either).
fn write_history_rows(path: &Path) {
    use tidemark_core::findings::{Occurrence, ResolutionKind};
    use tidemark_core::flaps::{FlapDetector, FlapEpisode};
    let (cluster, check_key) = ("tables-test", "history/rows");
    let occurrence = Occurrence {
        opened_at: NOW,
        opened_seq: 1,
        resolved_at: Some(NOW),
        resolved_seq: Some(2),
        resolution_kind: Some(ResolutionKind::Manual),
    };
    let episode = FlapEpisode {
        detector: FlapDetector::Count,
        started_at: NOW,
        started_seq: 1,
        start_figure: 3,
        stopped_at: Some(NOW),
        stopped_seq: Some(2),
        stop_figure: Some(1),
    };
    let db = redb::Database::open(path).unwrap();
    #[allow(clippy::disallowed_methods)] // a test's fixture rows; no crash follows this commit
    let txn = db.begin_write().unwrap();
    let mut bytes = Vec::new();
    tidemark_store::codec::encode_occurrence(cluster, check_key, 1, &occurrence, &mut bytes);
    txn.open_table(tables::FINDING_OCCURRENCES)
        .unwrap()
        .insert((cluster, check_key, 1), bytes.as_slice())
        .unwrap();
    tidemark_store::codec::encode_flap_episode(cluster, check_key, 1, &episode, &mut bytes);
    txn.open_table(tables::FINDING_FLAP_EPISODES)
        .unwrap()
        .insert((cluster, check_key, 1, 1), bytes.as_slice())
        .unwrap();
    // And an entry of `by_finding`, which only stores of layout 8 and earlier fill (a store of
    // this layout reads its finding index there while it has one: the copy must keep it).
    txn.open_table(tables::BY_FINDING)
        .unwrap()
        .insert((cluster, check_key, 1), 2)
        .unwrap();
    // And an orphan of a dropped trace.
    let orphan = tidemark_core::orphans::OrphanView {
        cluster: cluster.to_owned(),
        kind: tidemark_core::orphans::OrphanKind::RootlessTrace,
        resource: None,
        tracking: None,
        trace_id: Some("trace".to_owned()),
        span: None,
        reason: "trace has no root span".to_owned(),
        since: NOW,
        since_seq: 1,
        scans: 0,
    };
    let order = tidemark_core::orphans::OrphanOrder::of(&orphan);
    tidemark_store::codec::encode_dropped_orphan_row(cluster, 2, &orphan, &mut bytes);
    txn.open_table(tables::DROPPED_ORPHANS)
        .unwrap()
        .insert(
            tidemark_store::codec::dropped_orphan_key(cluster, &order),
            bytes.as_slice(),
        )
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn the_list_names_each_table_once() {
    let names = listed();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "a table is listed twice");
}

#[test]
fn a_fresh_store_holds_exactly_the_listed_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.redb");
    drop(Store::open(&path, StoreConfig::default()).unwrap());
    let found: Vec<String> = tables_in(&path).into_keys().collect();
    assert_eq!(found, listed(), "redb's list_tables() of a fresh store");
}

#[test]
fn a_backup_holds_every_listed_table_with_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = store_with_every_table_filled(&path);
    let copy = dir.path().join("backup.redb");
    store.backup_to(&copy, |_, _| {}).unwrap();
    drop(store);

    let source = tables_in(&path);
    assert_eq!(
        source.keys().map(String::as_str).collect::<Vec<_>>(),
        listed(),
        "the store holds a table the list does not name, or lacks one it names"
    );
    for (name, entries) in &source {
        assert!(
            *entries > 0,
            "table {name} is empty: the test must fill every table"
        );
    }
    assert_eq!(
        tables_in(&copy),
        source,
        "the backup's tables and their entries"
    );
}

/// Deletes the table `definition` from the redb file at `path`.
fn delete_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    path: &Path,
    definition: redb::TableDefinition<K, V>,
) {
    let db = redb::Database::open(path).unwrap();
    #[allow(clippy::disallowed_methods)] // damaging the file on purpose, as a bad tool would
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_table(definition).unwrap());
    txn.commit().unwrap();
}

#[test]
fn a_backup_that_lacks_a_listed_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = store_with_every_table_filled(&path);
    let copy = dir.path().join("backup.redb");
    store.backup_to(&copy, |_, _| {}).unwrap();
    drop(store);
    // Without its id index a restored store would store every event again.
    delete_table(&copy, tables::IDS);
    match Store::inspect_backup(&copy) {
        Err(error @ BackupError::MissingTables { .. }) => {
            let message = error.to_string();
            assert!(message.contains("`ids`"), "{message}");
        }
        other => panic!("a backup without the `ids` table: {other:?}"),
    }
}

#[test]
fn verify_names_a_listed_table_the_file_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(store_with_every_table_filled(&path));
    delete_table(&path, tables::BY_TYPE);
    let report = Store::verify(&path, |_, _| {}).unwrap();
    assert!(!report.is_clean());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.table == "by_type" && p.problem.contains("missing")),
        "{:?}",
        report.problems
    );
}
