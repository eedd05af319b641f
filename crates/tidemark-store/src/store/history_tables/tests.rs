//! The history tables against the specification, `MemoryHistory`, on real redb files: random
//! histories written to both, read back through random pages and counts; a corrupt record read
//! as a fault naming its table and key; a file without the tables read as empty.
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES` changes the number of cases.

use std::ops::Bound;
use std::path::Path;

use crate::property_runner::seeded_runner;
use proptest::prelude::*;
use redb::{ReadableDatabase, ReadableTable};
use tidemark_core::Timestamp;
use tidemark_core::findings::{MemoryHistory, ResolutionKind};

use super::*;
use crate::store::{Handle, write_txn};

const CLUSTERS: [&str; 3] = ["c1", "c2", "c-without-history"];
const KEYS: [&str; 3] = ["pod/crashloop", "node/disk", "k-without-history"];
/// The clusters and keys histories are generated for (the last of each stays empty).
const WITH_HISTORY: usize = 2;

fn at(seq: u64) -> Timestamp {
    Timestamp::from_unix_secs(1_800_000_000 + seq as i64)
}

/// A history reader over a database slot holding `handle` that lives as long as the test
/// process (a store holds its slot; the reader only refers to it).
fn slot_of(handle: Option<Handle>) -> StoreHistory {
    let slot = Arc::new(DbSlot::new(handle));
    let history = StoreHistory::over(&slot);
    std::mem::forget(slot);
    history
}

/// A store file's history slot, as `Store` holds it, on a fresh file at `path`.
fn fresh_slot(path: &Path) -> StoreHistory {
    let db = redb::Database::create(path).unwrap();
    slot_of(Some(Handle::Write(db)))
}

impl StoreHistory {
    /// Writes `records` in one write transaction, as a batch does.
    fn commit(&self, records: &[HistoryRecord]) {
        let db = self.db.upgrade().unwrap();
        let slot = db.read();
        let txn = slot.as_ref().unwrap().begin_write().unwrap();
        HistoryTables::open(&txn).unwrap().write(records).unwrap();
        txn.commit().unwrap();
    }

    /// A reader of the latest commit.
    fn reader(&self) -> HistoryTableReader {
        let db = self.db.upgrade().unwrap();
        let slot = db.read();
        let txn = slot.as_ref().unwrap().begin_read().unwrap();
        HistoryTableReader::open(&txn).unwrap()
    }
}

/// The history of one finding, as generated: occurrences one after the other, and each
/// detector's episodes one after the other (the last of each maybe still open).
#[derive(Clone, Debug)]
struct FindingPlan {
    /// (gap after the previous close, duration) of each closed occurrence.
    occurrences: Vec<(u64, u64)>,
    /// Per detector, (gap after its previous episode stopped, duration) of each episode.
    episodes: [Vec<(u64, u64)>; 2],
    /// Per detector, whether its last episode is still open (no row).
    last_open: [bool; 2],
    /// Whether both detectors' first episodes start at the same position.
    same_start: bool,
    /// Which detector's episode is numbered first when two start at one position.
    state_change_first: bool,
}

fn finding_plan() -> impl Strategy<Value = FindingPlan> {
    let occurrences = proptest::collection::vec((1..4u64, 0..5u64), 0..7);
    let episodes = || proptest::collection::vec((0..5u64, 1..6u64), 0..6);
    (
        occurrences,
        [episodes(), episodes()],
        [any::<bool>(), any::<bool>()],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(occurrences, episodes, last_open, same_start, state_change_first)| FindingPlan {
                occurrences,
                episodes,
                last_open,
                same_start,
                state_change_first,
            },
        )
}

/// The records of a plan, each with the position it became final at (the fold writes them in
/// that order).
fn records_of(cluster: &str, check_key: &str, plan: &FindingPlan) -> Vec<(u64, HistoryRecord)> {
    let mut out = Vec::new();
    let mut position = 0;
    for (number, (gap, duration)) in (1..).zip(&plan.occurrences) {
        let opened = position + gap;
        let resolved = opened + duration;
        position = resolved;
        out.push((
            resolved,
            HistoryRecord::OccurrenceClosed {
                cluster: cluster.to_owned(),
                check_key: check_key.into(),
                number,
                occurrence: Occurrence {
                    opened_at: at(opened),
                    opened_seq: opened,
                    resolved_at: Some(at(resolved)),
                    resolved_seq: Some(resolved),
                    resolution_kind: Some(if number % 2 == 0 {
                        ResolutionKind::Manual
                    } else {
                        ResolutionKind::Auto
                    }),
                },
            },
        ));
    }
    // Every episode of both detectors, open ones included: (start, tie order, episode).
    let mut episodes = Vec::new();
    let first_start = 1 + plan.episodes[0].first().map_or(0, |(gap, _)| *gap);
    for (index, detector) in [FlapDetector::Count, FlapDetector::StateChange]
        .into_iter()
        .enumerate()
    {
        let planned = &plan.episodes[index];
        let mut position = 1;
        for (i, (gap, duration)) in planned.iter().enumerate() {
            let started = if i == 0 && plan.same_start {
                first_start
            } else {
                position + gap
            };
            let stopped = started + duration;
            position = stopped;
            let open = plan.last_open[index] && i + 1 == planned.len();
            let tie = usize::from(plan.state_change_first) ^ index;
            episodes.push((
                started,
                tie,
                FlapEpisode {
                    detector,
                    started_at: at(started),
                    started_seq: started,
                    start_figure: 3 + i as u32,
                    stopped_at: (!open).then(|| at(stopped)),
                    stopped_seq: (!open).then_some(stopped),
                    stop_figure: (!open).then_some(1),
                },
            ));
        }
    }
    // Numbered in the order they started; written in the order they ended.
    episodes.sort_by_key(|(started, tie, _)| (*started, *tie));
    for (number, (_, _, episode)) in (1..).zip(episodes) {
        if let Some(stopped) = episode.stopped_seq {
            out.push((
                stopped,
                HistoryRecord::FlapEpisodeEnded {
                    cluster: cluster.to_owned(),
                    check_key: check_key.into(),
                    number,
                    episode,
                },
            ));
        }
    }
    out
}

fn bound() -> impl Strategy<Value = Bound<u64>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0..45u64).prop_map(Bound::Included),
        (0..45u64).prop_map(Bound::Excluded),
        Just(Bound::Included(u64::MAX)),
        Just(Bound::Excluded(u64::MAX)),
        Just(Bound::Excluded(0)),
    ]
}

fn as_of() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(u64::MAX), 0..45u64]
}

/// A query: which finding, and a range or a count.
#[derive(Clone, Debug)]
struct Query {
    cluster: usize,
    key: usize,
    range: HistoryRange,
}

fn query() -> impl Strategy<Value = Query> {
    (
        0..CLUSTERS.len(),
        0..KEYS.len(),
        (bound(), bound()),
        as_of(),
        any::<bool>(),
        prop_oneof![0..8usize, Just(usize::MAX)],
    )
        .prop_map(|(cluster, key, opened, as_of, backward, limit)| Query {
            cluster,
            key,
            range: HistoryRange {
                opened,
                as_of,
                direction: if backward {
                    Direction::Backward
                } else {
                    Direction::Forward
                },
                limit,
            },
        })
}

/// Random histories of several findings, written into `MemoryHistory` and into the tables (in a
/// few commits, in fold order), answer every page and count alike, through the reader of one
/// transaction and through the adapter.
#[test]
fn the_tables_answer_as_the_memory_history_does() {
    let (mut runner, seed) = seeded_runner(64);
    eprintln!("seed {seed} (TIDEMARK_PROPTEST_SEED={seed} reproduces)");
    let cases = (
        proptest::collection::vec(finding_plan(), WITH_HISTORY * WITH_HISTORY),
        proptest::collection::vec(1..6usize, 1..5),
        proptest::collection::vec(query(), 1..40),
    );
    let result = runner.run(&cases, |(plans, commit_sizes, queries)| {
        let mut records = Vec::new();
        for (index, plan) in plans.iter().enumerate() {
            let (cluster, key) = (CLUSTERS[index / WITH_HISTORY], KEYS[index % WITH_HISTORY]);
            records.extend(records_of(cluster, key, plan));
        }
        records.sort_by_key(|(final_at, _)| *final_at);
        let records: Vec<HistoryRecord> = records.into_iter().map(|(_, r)| r).collect();

        let mut memory = MemoryHistory::new();
        for record in &records {
            record.replay_into(&mut memory);
        }
        let dir = tempfile::tempdir().unwrap();
        let store = fresh_slot(&dir.path().join("history.redb"));
        let mut rest = records.as_slice();
        for size in commit_sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, after) = rest.split_at((*size).min(rest.len()));
            store.commit(batch);
            rest = after;
        }
        let reader = store.reader();

        for query in &queries {
            let (cluster, key, range) = (CLUSTERS[query.cluster], KEYS[query.key], &query.range);
            let expected = memory.closed_occurrences(cluster, key, range);
            prop_assert_eq!(
                &reader.closed_occurrences(cluster, key, range).unwrap(),
                &expected,
                "occurrences of {}/{} in {:?}",
                cluster,
                key,
                range
            );
            prop_assert_eq!(&store.closed_occurrences(cluster, key, range), &expected);
            let expected = memory.ended_flap_episodes(cluster, key, range);
            prop_assert_eq!(
                &reader.ended_flap_episodes(cluster, key, range).unwrap(),
                &expected,
                "episodes of {}/{} in {:?}",
                cluster,
                key,
                range
            );
            prop_assert_eq!(&store.ended_flap_episodes(cluster, key, range), &expected);

            let as_of = range.as_of;
            let expected = memory.closed_occurrence_count(cluster, key, as_of);
            prop_assert_eq!(
                reader.closed_occurrence_count(cluster, key, as_of).unwrap(),
                expected,
                "occurrence count of {}/{} at {}",
                cluster,
                key,
                as_of
            );
            prop_assert_eq!(store.closed_occurrence_count(cluster, key, as_of), expected);
            let expected = memory.ended_flap_episode_count(cluster, key, as_of);
            prop_assert_eq!(
                reader
                    .ended_flap_episode_count(cluster, key, as_of)
                    .unwrap(),
                expected,
                "episode count of {}/{} at {}",
                cluster,
                key,
                as_of
            );
            prop_assert_eq!(
                store.ended_flap_episode_count(cluster, key, as_of),
                expected
            );
        }
        // Every count at every position of the history, too.
        for index in 0..WITH_HISTORY * WITH_HISTORY {
            let (cluster, key) = (CLUSTERS[index / WITH_HISTORY], KEYS[index % WITH_HISTORY]);
            for as_of in 0..60 {
                prop_assert_eq!(
                    reader.closed_occurrence_count(cluster, key, as_of).unwrap(),
                    memory.closed_occurrence_count(cluster, key, as_of),
                    "occurrence count of {}/{} at {}",
                    cluster,
                    key,
                    as_of
                );
                prop_assert_eq!(
                    reader
                        .ended_flap_episode_count(cluster, key, as_of)
                        .unwrap(),
                    memory.ended_flap_episode_count(cluster, key, as_of),
                    "episode count of {}/{} at {}",
                    cluster,
                    key,
                    as_of
                );
            }
        }
        prop_assert!(take_history_fault().is_none());
        Ok(())
    });
    if let Err(e) = result {
        panic!("history tables property failed; reproduce with TIDEMARK_PROPTEST_SEED={seed}\n{e}");
    }
}

fn occurrence_record(number: u64, opened: u64, resolved: u64) -> HistoryRecord {
    HistoryRecord::OccurrenceClosed {
        cluster: "c1".into(),
        check_key: "pod/crashloop".into(),
        number,
        occurrence: Occurrence {
            opened_at: at(opened),
            opened_seq: opened,
            resolved_at: Some(at(resolved)),
            resolved_seq: Some(resolved),
            resolution_kind: Some(ResolutionKind::Auto),
        },
    }
}

fn episode_record(number: u64, started: u64, stopped: u64) -> HistoryRecord {
    HistoryRecord::FlapEpisodeEnded {
        cluster: "c1".into(),
        check_key: "pod/crashloop".into(),
        number,
        episode: FlapEpisode {
            detector: FlapDetector::Count,
            started_at: at(started),
            started_seq: started,
            start_figure: 4,
            stopped_at: Some(at(stopped)),
            stopped_seq: Some(stopped),
            stop_figure: Some(1),
        },
    }
}

/// Flips the first byte after the envelope's checksum of the value under `key` in `table`,
/// with a raw write: what a damaged page would hold.
fn flip_a_byte<K: redb::Key + 'static>(
    store: &StoreHistory,
    table: redb::TableDefinition<'static, K, &'static [u8]>,
    key: K::SelfType<'_>,
) where
    for<'a> K::SelfType<'a>: Clone,
{
    let db = store.db.upgrade().unwrap();
    let slot = db.read();
    let Some(Handle::Write(db)) = slot.as_ref() else {
        unreachable!("a fresh slot is read-write")
    };
    let txn = write_txn::begin(db).unwrap();
    {
        let mut open = txn.open_table(table).unwrap();
        let mut bytes = open.get(key.clone()).unwrap().unwrap().value().to_vec();
        bytes[6] ^= 0x40;
        open.insert(key, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

/// A record whose bytes changed is a fault naming its table and key, never data; through the
/// adapter, an empty answer and the fault kept for the thread (once).
#[test]
fn a_corrupt_record_is_a_fault_naming_its_table_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_slot(&dir.path().join("corrupt.redb"));
    store.commit(&[
        occurrence_record(1, 3, 5),
        occurrence_record(2, 8, 9),
        episode_record(1, 2, 12),
    ]);
    flip_a_byte(
        &store,
        tables::FINDING_OCCURRENCES,
        ("c1", "pod/crashloop", 8),
    );
    flip_a_byte(
        &store,
        tables::FINDING_FLAP_EPISODES,
        ("c1", "pod/crashloop", 2, 1),
    );
    let reader = store.reader();
    let all = HistoryRange::all();

    let expect_corrupt = |fault: Option<ReadFault>, table: &str, key: &str| match fault {
        Some(ReadFault::Corrupt(corrupt)) => {
            assert_eq!(corrupt.table, table);
            assert_eq!(corrupt.key, key);
            assert!(
                matches!(corrupt.problem, CodecError::ChecksumMismatch { .. }),
                "{corrupt}"
            );
            let message = corrupt.to_string();
            assert!(
                message.contains(table) && message.contains(key),
                "{message}"
            );
        }
        other => panic!("expected a corrupt {table} record {key}, got {other:?}"),
    };
    let occurrence_key = r#"("c1", "pod/crashloop", 8)"#;
    let episode_key = r#"("c1", "pod/crashloop", 2, 1)"#;
    expect_corrupt(
        reader.closed_occurrences("c1", "pod/crashloop", &all).err(),
        "finding_occurrences",
        occurrence_key,
    );
    expect_corrupt(
        reader
            .closed_occurrence_count("c1", "pod/crashloop", 100)
            .err(),
        "finding_occurrences",
        occurrence_key,
    );
    expect_corrupt(
        reader
            .ended_flap_episodes("c1", "pod/crashloop", &all)
            .err(),
        "finding_flap_episodes",
        episode_key,
    );
    expect_corrupt(
        reader
            .ended_flap_episode_count("c1", "pod/crashloop", 100)
            .err(),
        "finding_flap_episodes",
        episode_key,
    );
    // A page that does not reach the corrupt row reads.
    let first = HistoryRange {
        limit: 1,
        ..HistoryRange::all()
    };
    assert_eq!(
        reader
            .closed_occurrences("c1", "pod/crashloop", &first)
            .unwrap()
            .len(),
        1
    );

    assert!(take_history_fault().is_none());
    assert!(
        store
            .closed_occurrences("c1", "pod/crashloop", &all)
            .is_empty()
    );
    // Only the first fault is kept; the second call answers empty as well.
    assert_eq!(
        store.ended_flap_episode_count("c1", "pod/crashloop", 100),
        0
    );
    expect_corrupt(take_history_fault(), "finding_occurrences", occurrence_key);
    assert!(take_history_fault().is_none(), "a fault is taken once");
    assert!(
        store
            .ended_flap_episodes("c1", "pod/crashloop", &all)
            .is_empty()
    );
    expect_corrupt(take_history_fault(), "finding_flap_episodes", episode_key);
    assert_eq!(store.closed_occurrence_count("c1", "pod/crashloop", 100), 0);
    expect_corrupt(take_history_fault(), "finding_occurrences", occurrence_key);
}

/// A store file without the history tables (layout 1, opened read-only) reads as empty: through
/// the reader and through the adapter, without a fault.
#[test]
fn a_store_without_the_tables_reads_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout-1.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = write_txn::begin(&db).unwrap();
        txn.open_table(tables::META)
            .unwrap()
            .insert(tables::FORMAT, 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let db = redb::ReadOnlyDatabase::open(&path).unwrap();
    {
        let txn = db.begin_read().unwrap();
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| redb::TableHandle::name(&t).to_owned())
            .collect();
        assert_eq!(names, ["meta"]);
        let reader = HistoryTableReader::open(&txn).unwrap();
        let all = HistoryRange::all();
        assert!(
            reader
                .closed_occurrences("c", "k", &all)
                .unwrap()
                .is_empty()
        );
        assert!(
            reader
                .ended_flap_episodes("c", "k", &all)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            reader.closed_occurrence_count("c", "k", u64::MAX).unwrap(),
            0
        );
        assert_eq!(
            reader.ended_flap_episode_count("c", "k", u64::MAX).unwrap(),
            0
        );
    }
    let history = slot_of(Some(Handle::Read(db)));
    assert!(
        history
            .closed_occurrences("c", "k", &HistoryRange::all())
            .is_empty()
    );
    assert_eq!(history.ended_flap_episode_count("c", "k", 7), 0);
    assert!(take_history_fault().is_none());
}

/// A closed database (a reopen after an I/O error that failed) is a storage fault, answered
/// empty.
#[test]
fn a_closed_database_is_a_fault_answered_empty() {
    let history = slot_of(None);
    assert!(
        history
            .ended_flap_episodes("c", "k", &HistoryRange::all())
            .is_empty()
    );
    assert!(matches!(take_history_fault(), Some(ReadFault::Storage(_))));
}

/// The store shares the adapter across threads, and logs it.
#[test]
fn the_adapter_is_send_sync_and_debug() {
    fn shareable<T: Send + Sync + std::fmt::Debug>() {}
    shareable::<StoreHistory>();
}

/// The adapter of a real store reads the tables of that store's file.
#[test]
fn a_store_hands_out_an_adapter_over_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store.redb"), Default::default()).unwrap();
    let history = store.history();
    history.commit(&[occurrence_record(1, 3, 5)]);
    assert_eq!(history.closed_occurrence_count("c1", "pod/crashloop", 5), 1);
    assert_eq!(history.closed_occurrence_count("c1", "pod/crashloop", 4), 0);
    assert!(format!("{history:?}").contains("StoreHistory"));
}
