//! Corruption in real redb files: bits flipped on disk in log records, snapshots and quarantine
//! records are reported with their table and key, never read back as data; a corrupt snapshot
//! is skipped (the state is folded from an earlier snapshot or the log, and rebuild needs
//! none); on a replica whose log retention cut, the answer names restoring or re-following.
//!
//! Records are located in the file by their exact bytes (read through redb first), and the
//! flip is made in the file itself, as a failing disk would.

use std::path::Path;

use tidemark_core::{Event, Projections, Timestamp, decode_event};
use tidemark_store::{
    At, EmbeddedRetention, Input, OpenError, Outcome, QueryError, Store, StoreConfig, codec, tables,
};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// Event `i`: a cycle of cluster `c{i % 2}` whose findings carry titles like "thing 17".
fn event(i: usize) -> Event {
    let findings: Vec<String> = (0..4)
        .filter(|k| !(i + k).is_multiple_of(3))
        .map(|k| {
            format!(
                r#"{{"check_key":"k{k}","category":"c","severity":"error","title":"thing {}"}}"#,
                10 + i * 4 + k
            )
        })
        .collect();
    decode_event(&format!(
        r#"{{"id":"corrupt-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T10:{:02}:{:02}Z","source":"probe","cluster":"c{}","data":{{"cycle":"{i}","categories":["c"],"findings":[{}]}}}}"#,
        i / 60,
        i % 60,
        i % 2,
        findings.join(",")
    ))
    .unwrap()
}

fn fold(count: usize) -> Projections {
    let mut projections = Projections::new();
    for i in 0..count {
        projections.apply(i as u64 + 1, &event(i));
    }
    projections
}

fn config() -> StoreConfig {
    StoreConfig {
        snapshot_every: 20,
        snapshot_keep_every: 20,
        ..StoreConfig::default()
    }
}

/// A closed embedded store of `count` events in batches of 5, with a snapshot at the end.
fn make_store(path: &Path, count: usize) {
    let store = Store::open(path, config()).unwrap();
    let inputs: Vec<Input> = (0..count).map(|i| Input::Event(event(i))).collect();
    for chunk in inputs.chunks(5) {
        store.append(chunk, NOW).unwrap();
    }
    store.snapshot_now().unwrap();
}

/// The store of `path`, opened read-only or read-write.
fn open(path: &Path, read_only: bool) -> Result<Store, tidemark_store::OpenError> {
    if read_only {
        Store::open_read_only(path, config())
    } else {
        Store::open(path, config())
    }
}

/// The stored bytes of `key` in a byte-valued table, read through redb.
fn stored_bytes(path: &Path, table: redb::TableDefinition<u64, &[u8]>, key: u64) -> Vec<u8> {
    use redb::ReadableDatabase;
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(table).unwrap();
    table.get(key).unwrap().unwrap().value().to_vec()
}

/// Flips bit `bit` of byte `offset` of every copy of `record` in the file (stale copies in
/// freed pages included), as a disk would; returns how many copies there were.
fn flip_in_file(path: &Path, record: &[u8], offset: usize, bit: u8) -> usize {
    flips_in_file(path, record, &[(offset, bit)])
}

/// [`flip_in_file`] of several bits.
fn flips_in_file(path: &Path, record: &[u8], flips: &[(usize, u8)]) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut found = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..]
        .windows(record.len())
        .position(|w| w == record)
        .map(|i| i + at)
    {
        for (offset, bit) in flips {
            bytes[i + offset] ^= 1 << bit;
        }
        found += 1;
        at = i + record.len();
    }
    assert!(found > 0, "the record is not in the file as stored");
    std::fs::write(path, bytes).unwrap();
    found
}

/// The offset of the first byte of `needle` in `haystack`.
fn offset_of(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

/// A title in a log record changed on disk ("thing 17" read as "thing 07" before checksums):
/// every open, read-write or read-only, refuses with the table and position and what to do,
/// and `rebuild`'s refold cannot run past it either.
#[test]
fn a_flipped_bit_in_a_log_record_is_refused_with_its_table_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // No snapshot after position 40: the record at 42 is folded at every open.
    let store = Store::open(
        &path,
        StoreConfig {
            snapshot_every: 1_000,
            ..config()
        },
    )
    .unwrap();
    for i in 0..50 {
        store.append(&[Input::Event(event(i))], NOW).unwrap();
    }
    drop(store);
    let record = stored_bytes(&path, tables::LOG, 42);
    // Event 41 names "thing 174": flip '1' to '0'.
    let title = offset_of(&record, b"thing 174");
    flip_in_file(&path, &record, title + 6, 0);

    for read_only in [true, false] {
        let opened = if read_only {
            Store::open_read_only(&path, config())
        } else {
            Store::open(&path, config())
        };
        let error = opened.expect_err("a corrupt log record was read back as data");
        let OpenError::Corrupt(corrupt) = &error else {
            panic!("{error}");
        };
        assert_eq!((corrupt.table, corrupt.key.as_str()), ("log", "42"));
        let message = error.to_string();
        assert!(
            message.contains("log record 42: checksum mismatch"),
            "{message}"
        );
        assert!(message.contains("tidemark restore"), "{message}");
    }
}

/// The latest snapshot changed on disk: the store opens (read-write and read-only) from the
/// snapshot before it and the log, says which one it skipped, and equals a clean fold; time
/// travel to that position skips it too; rebuild rewrites the snapshots from the log.
#[test]
fn a_corrupt_snapshot_is_skipped_and_the_state_folded_from_an_earlier_one_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let count = 47;
    make_store(&path, count);
    let snapshot = stored_bytes(&path, tables::SNAPSHOTS, count as u64);
    // Eight bytes in the middle of the snapshot, as in the issue.
    let flips: Vec<(usize, u8)> = (0..8)
        .map(|byte| (snapshot.len() / 2 + byte * 13, 3))
        .collect();
    flips_in_file(&path, &snapshot, &flips);
    let expected = fold(count).snapshot();
    for read_only in [true, false] {
        let store = open(&path, read_only)
            .unwrap_or_else(|e| panic!("a corrupt snapshot stopped the open: {e}"));
        let skipped = store.skipped_snapshots();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(
            (skipped[0].table, skipped[0].key.as_str()),
            ("snapshots", "47")
        );
        assert!(store.projection_snapshot() == expected);
        let (past, at) = store.projection_at(At::Seq(count as u64)).unwrap();
        assert_eq!(at, count as u64);
        assert!(past.snapshot() == expected);
        let (past, _) = store
            .projection_at(At::Time(event(count - 1).time))
            .unwrap();
        assert!(past.snapshot() == expected);
    }
    let store = Store::open(&path, config()).unwrap();
    let report = store.rebuild(|_| {}).unwrap();
    assert!(report.state_unchanged);
    drop(store);
    let store = Store::open_read_only(&path, config()).unwrap();
    assert!(store.skipped_snapshots().is_empty(), "rebuild rewrote them");
    assert!(store.projection_snapshot() == expected);
}

/// Bits flipped in one cluster's part of a per-cluster snapshot. An open restores lazily and
/// does not read the part; the first read that needs that cluster answers the fault, named by
/// the part (never an answer without the cluster), and the state is restored whole, which
/// skips the snapshot: from then on the state equals a clean fold. Verify lists the part. A
/// batch that needs the cluster first restores the state whole and is applied (nothing
/// refused).
#[test]
fn a_corrupt_cluster_part_fails_the_read_that_needs_it_then_its_snapshot_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let count = 47;
    make_store(&path, count);
    let part = {
        use redb::ReadableDatabase;
        let db = redb::ReadOnlyDatabase::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let parts = txn.open_table(tables::CLUSTER_SNAPSHOTS).unwrap();
        parts
            .get(("c1", count as u64))
            .unwrap()
            .unwrap()
            .value()
            .to_vec()
    };
    flip_in_file(&path, &part, part.len() / 2, 4);
    let expected = fold(count).snapshot();
    let part_named = |skipped: &[tidemark_store::CorruptRecord]| {
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(
            (skipped[0].table, skipped[0].key.as_str()),
            ("cluster_snapshots", r#"("c1", 47)"#)
        );
    };
    for read_only in [true, false] {
        let store = open(&path, read_only)
            .unwrap_or_else(|e| panic!("a corrupt part stopped the open: {e}"));
        assert!(
            store.skipped_snapshots().is_empty(),
            "the open read no part"
        );
        // A read of the other cluster needs only its part.
        let c0 = |p: &Projections| format!("{:?}", p.findings().overview("c0", "k1"));
        let read = store.read_at(None, c0).unwrap().0;
        assert!(read.contains("Some"), "{read}");
        assert_eq!(read, c0(&fold(count)));
        let error = store
            .read_at(None, |p| p.snapshot())
            .expect_err("a read that needs the corrupt part answered");
        let message = error.to_string();
        assert!(message.contains("cluster_snapshots"), "{message}");
        assert!(message.contains(r#"("c1", 47)"#), "{message}");
        part_named(&store.skipped_snapshots());
        assert!(store.read_at(None, |p| p.snapshot()).unwrap().0 == expected);
        let (past, _) = store.projection_at(At::Seq(count as u64)).unwrap();
        assert!(past.snapshot() == expected);
    }
    let report = verify(&path);
    assert_eq!(
        listed(&report),
        [("cluster_snapshots", r#"("c1", 47)"#)],
        "{report:#?}"
    );
    // A batch of the cluster whose part is corrupt, as the first thing after the open.
    {
        let store = open(&path, false).unwrap();
        let more = Input::Event(event(count));
        assert_eq!(count % 2, 1, "event `count` is of c1");
        let outcomes = store.append(std::slice::from_ref(&more), NOW).unwrap();
        assert!(
            matches!(outcomes[..], [Outcome::Accepted { seq }] if seq == count as u64 + 1),
            "{outcomes:?}"
        );
        part_named(&store.skipped_snapshots());
        assert!(store.projection_snapshot() == fold(count + 1).snapshot());
    }
}

/// On a replica whose log retention cut at a snapshot, a corrupt snapshot there cannot be
/// refolded around: the open says to restore a backup or follow the stream into a new store.
#[test]
fn a_corrupt_snapshot_at_the_retention_cut_names_restoring_or_refollowing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let store = Store::open(&path, config()).unwrap();
    let items: Vec<(u64, Input)> = (0..60)
        .map(|i| (i as u64 * 2 + 1, Input::Event(event(i))))
        .collect();
    for chunk in items.chunks(5) {
        store.append_positioned(chunk, NOW).unwrap();
    }
    let cut = store
        .drop_events_before(None, EmbeddedRetention::Refuse)
        .unwrap()
        .first_retained;
    drop(store);
    let snapshot = stored_bytes(&path, tables::SNAPSHOTS, cut);
    flip_in_file(&path, &snapshot, snapshot.len() / 2, 1);
    for read_only in [true, false] {
        let opened = if read_only {
            Store::open_read_only(&path, config())
        } else {
            Store::open(&path, config())
        };
        let error = opened.expect_err("a replica without a usable snapshot opened");
        assert!(
            matches!(error, OpenError::NoUsableSnapshot { first_retained } if first_retained == cut),
            "{error}"
        );
        let message = error.to_string();
        assert!(message.contains("tidemark restore"), "{message}");
        assert!(message.contains("tidemark serve --nats"), "{message}");
    }
}

/// A quarantine record changed on disk is named by its table and id when listed.
#[test]
fn a_flipped_bit_in_a_quarantine_record_is_refused_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, config()).unwrap();
    store
        .append(
            &[Input::Rejected {
                raw: br#"{"title":"thing 17"}"#.to_vec(),
                reason: "not an event".into(),
                origin: "line 1".into(),
            }],
            NOW,
        )
        .unwrap();
    drop(store);
    let record = stored_bytes(&path, tables::QUARANTINE, 1);
    let title = offset_of(&record, b"thing 17");
    flip_in_file(&path, &record, title + 6, 0);
    let store = Store::open_read_only(&path, config()).unwrap();
    let error = store.quarantine(1, 10).expect_err("read back as data");
    let QueryError::Corrupt(corrupt) = &error else {
        panic!("{error}");
    };
    assert_eq!((corrupt.table, corrupt.key.as_str()), ("quarantine", "1"));
}

/// A flipped checkpoint (an unchecksummed meta value) would show the state at another point of
/// the log: it is checked against the log at every open.
#[test]
fn a_checkpoint_that_disagrees_with_the_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, 47);
    for flipped in [47 ^ 8, 47 ^ 64] {
        {
            let db = redb::Database::open(&path).unwrap();
            #[allow(clippy::disallowed_methods)]
            // damaging the file on purpose, as a bad tool would
            let txn = db.begin_write().unwrap();
            txn.open_table(tables::META)
                .unwrap()
                .insert(tables::CHECKPOINT, flipped)
                .unwrap();
            txn.commit().unwrap();
        }
        let error = Store::open_read_only(&path, config()).expect_err("read back as data");
        let OpenError::Corrupt(corrupt) = &error else {
            panic!("{error}");
        };
        assert_eq!(corrupt.table, "meta", "{error}");
    }
}

fn verify(path: &Path) -> tidemark_store::VerifyReport {
    let before = std::fs::read(path).unwrap();
    let report = Store::verify(path, |_, _| {}).unwrap();
    assert!(
        std::fs::read(path).unwrap() == before,
        "verify changed the file"
    );
    report
}

fn listed(report: &tidemark_store::VerifyReport) -> Vec<(&str, &str)> {
    report
        .problems
        .iter()
        .map(|p| (p.table, p.key.as_str()))
        .collect()
}

/// The golden stores (embedded and replica, the replica's log cut by retention) and a fresh
/// store verify clean, redb's integrity check included, and the files are left unchanged.
#[test]
fn verify_passes_clean_stores_without_changing_them() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("store.redb");
    make_store(&fresh, 47);
    for path in [
        golden.join("store-v1.redb"),
        golden.join("store-v1-replica.redb"),
        fresh.clone(),
    ] {
        let report = verify(&path);
        assert!(report.is_clean(), "{}: {report:#?}", path.display());
        assert!(report.checked["log"] > 0 && report.checked["ids"] > 0);
        // The golden stores were written before the event filter indexes and before alerts
        // were findings: not problems, notes (the next read-write open builds the indexes and
        // writes what it derived anew).
        assert_eq!(
            report.notes.len(),
            2 * usize::from(path != fresh),
            "{}: {report:#?}",
            path.display()
        );
    }
    // Copies of the golden stores, opened read-write (which builds the filter indexes, the
    // replica's log cut by retention before they existed, and upgrades them to this build's
    // layout),
    // verify clean with them, compared with the fold.
    for name in ["store-v1.redb", "store-v1-replica.redb"] {
        let copy = dir.path().join(name);
        std::fs::copy(golden.join(name), &copy).unwrap();
        drop(Store::open(&copy, config()).unwrap());
        let report = verify(&copy);
        assert!(
            report.is_clean() && report.notes.is_empty(),
            "{name}: {report:#?}"
        );
        assert!(report.checked["by_cluster"] > 0, "{name}: {report:#?}");
    }
}

/// Bits flipped on disk in a log record and in a snapshot: verify lists both by table and key
/// and redb's own check fails too; the file is unchanged.
#[test]
fn verify_lists_flipped_records_by_table_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, 47);
    let record = stored_bytes(&path, tables::LOG, 42);
    flip_in_file(&path, &record, offset_of(&record, b"thing 17") + 6, 0);
    let snapshot = stored_bytes(&path, tables::SNAPSHOTS, 20);
    flip_in_file(&path, &snapshot, snapshot.len() / 2, 5);
    let report = verify(&path);
    assert!(!report.is_clean());
    // Exactly the two records: the indexes still agree with the log around them.
    let mut listed = listed(&report);
    listed.sort();
    assert_eq!(listed, [("log", "42"), ("snapshots", "20")], "{report:#?}");
    assert!(
        report.problems[0].problem.contains("checksum mismatch"),
        "{report:#?}"
    );
    assert_ne!(report.integrity, tidemark_store::IntegrityCheck::Passed);
}

/// A `finding_groups` entry as redb gives it.
type GroupEntry<'a> = (
    redb::AccessGuard<'a, (&'static str, &'static str, u64)>,
    redb::AccessGuard<'a, &'static [u8]>,
);

/// Most index entries have no checksum: verify checks them against the log, so a missing id,
/// a stray type entry and wrong change bits (in a finding group whose checksum was made anew)
/// are each listed; a finding group whose bytes changed fails its checksum, and is listed
/// under its key.
#[test]
fn verify_checks_the_indexes_against_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, 47);
    let (bits_changed, damaged_key, damaged_finding) = {
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose, as a bad tool would
        let txn = db.begin_write().unwrap();
        txn.open_table(tables::IDS)
            .unwrap()
            .remove("corrupt-7")
            .unwrap();
        txn.open_table(tables::BY_TYPE)
            .unwrap()
            .insert(("cycle.completed", 4_000), ())
            .unwrap();
        // The finding index: one group's change bits changed (its checksum made anew, as a
        // bad tool would), and another group damaged (its checksum no longer matches).
        let mut groups = txn.open_table(tables::FINDING_GROUPS).unwrap();
        let group = |entry: Option<GroupEntry<'_>>| {
            let (k, v) = entry.unwrap();
            let (c, key, seq) = k.value();
            ((c.to_owned(), key.to_owned(), seq), v.value().to_vec())
        };
        let ((c, key, seq), bytes) = group(groups.first().unwrap());
        let mut entries = Vec::new();
        codec::decode_finding_group(&c, &key, seq, &bytes, &mut entries).unwrap();
        entries[0].1 ^= 0x40;
        let mut changed = Vec::new();
        codec::encode_finding_group(&c, &key, &entries, &mut changed);
        groups
            .insert((c.as_str(), key.as_str(), seq), changed.as_slice())
            .unwrap();
        let ((last_c, last_key, last_seq), mut damaged) = group(groups.last().unwrap());
        assert_ne!(
            (&last_c, &last_key),
            (&c, &key),
            "two groups of two findings"
        );
        let end = damaged.len() - 1;
        damaged[end] ^= 0x01;
        groups
            .insert(
                (last_c.as_str(), last_key.as_str(), last_seq),
                damaged.as_slice(),
            )
            .unwrap();
        drop(groups);
        txn.commit().unwrap();
        (
            format!("({c}, {key}, {})", entries[0].0),
            format!("({last_c}, {last_key}, {last_seq})"),
            (last_c, last_key),
        )
    };
    let report = verify(&path);
    let tables: Vec<&str> = report.problems.iter().map(|p| p.table).collect();
    assert!(
        listed(&report).contains(&("ids", "corrupt-7")),
        "{report:#?}"
    );
    assert!(
        listed(&report).contains(&("by_type", "(cycle.completed, 4000)")),
        "{report:#?}"
    );
    assert!(tables.contains(&"finding_groups"), "{report:#?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.key == bits_changed && p.problem.contains("change bits")),
        "{report:#?}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.key == damaged_key && p.problem.contains("checksum")),
        "{report:#?}"
    );
    assert_eq!(report.integrity, tidemark_store::IntegrityCheck::Passed);
    // The damaged group's finding: its timeline fails naming the record and what to do.
    let (cluster, check_key) = damaged_finding;
    let store = Store::open_read_only(&path, config()).unwrap();
    let error = store
        .finding_timeline(&cluster, &check_key)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("finding_groups record {damaged_key}"))
            && error.contains("tidemark rebuild"),
        "{error}"
    );
    drop(store);
    // A rebuild writes the finding index anew from the log.
    let store = Store::open(&path, config()).unwrap();
    store.rebuild(|_| {}).unwrap();
    assert!(store.finding_timeline(&cluster, &check_key).is_ok());
    drop(store);
    let report = verify(&path);
    assert!(
        report.problems.iter().all(|p| p.table != "finding_groups"),
        "{report:#?}"
    );
}

/// A store of 60 cycles of cluster `h`: finding `k` seen for five cycles, then absent for five
/// (resolved after the clean-cycle dampener), again and again: occurrences close.
fn make_history_store(path: &Path) {
    make_cycles_store(
        path,
        r#"{"check_key":"k","category":"c","severity":"error","title":"down"}"#,
    );
}

/// 60 cycles of cluster `h`, `finding` (JSON) in five, absent from the next five, and so on.
fn make_cycles_store(path: &Path, finding: &str) {
    let store = Store::open(path, config()).unwrap();
    let events: Vec<Input> = (0..60)
        .map(|i| {
            let findings = if (i / 5) % 2 == 0 { finding } else { "" };
            Input::Event(
                decode_event(&format!(
                    r#"{{"id":"h-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T11:{:02}:{:02}Z","source":"probe","cluster":"h","data":{{"cycle":"{i}","categories":["c"],"findings":[{findings}]}}}}"#,
                    i / 60,
                    i % 60
                ))
                .unwrap(),
            )
        })
        .collect();
    store.append(&events, NOW).unwrap();
}

/// A corrupt row of a finding's history: a read of that history, now or of a past state,
/// answers the fault (naming the table), never a history with the row left out.
#[test]
fn a_corrupt_history_row_fails_the_read_now_and_in_the_past() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_history_store(&path);
    {
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose, as a disk would
        let txn = db.begin_write().unwrap();
        let mut rows = txn.open_table(tables::FINDING_OCCURRENCES).unwrap();
        let (key, mut bytes) = {
            let (k, v) = rows.first().unwrap().expect("the fold closed occurrences");
            let (c, key, seq) = k.value();
            ((c.to_owned(), key.to_owned(), seq), v.value().to_vec())
        };
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        rows.insert((key.0.as_str(), key.1.as_str(), key.2), bytes.as_slice())
            .unwrap();
        drop(rows);
        txn.commit().unwrap();
    }
    let store = Store::open(&path, config()).unwrap();
    let now = store.read_at(None, |p| p.findings().views());
    let error = now
        .expect_err("the live state's history read met a corrupt row")
        .to_string();
    assert!(error.contains("finding_occurrences"), "{error}");
    let (past, _) = store.projection_at(At::Seq(40)).unwrap();
    let error = store
        .read_past(&past, |p| p.findings().views())
        .expect_err("the past state's history read met a corrupt row")
        .to_string();
    assert!(error.contains("finding_occurrences"), "{error}");
    // A read that does not touch the history answers.
    assert!(
        store
            .read_past(&past, |p| p.findings().finding_count())
            .is_ok()
    );
}

/// Store layout 2: `verify` checks a finding's history tables against the history the fold of
/// the log writes out: a row that went missing and a row moved under another key are listed.
#[test]
fn verify_checks_the_history_tables_against_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_history_store(&path);
    assert!(verify(&path).is_clean());
    let (moved, removed) = {
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose, as a bad tool would
        let txn = db.begin_write().unwrap();
        let mut rows = txn.open_table(tables::FINDING_OCCURRENCES).unwrap();
        let mut first_two = rows.iter().unwrap().take(2).map(|entry| {
            let (k, v) = entry.unwrap();
            let (c, key, seq) = k.value();
            ((c.to_owned(), key.to_owned(), seq), v.value().to_vec())
        });
        let (first, bytes) = first_two.next().expect("the fold closed occurrences");
        let (second, _) = first_two.next().expect("the fold closed two occurrences");
        drop(first_two);
        rows.remove((first.0.as_str(), first.1.as_str(), first.2))
            .unwrap();
        // The first row's bytes under the second's key: its checksum names its own key.
        rows.insert(
            (second.0.as_str(), second.1.as_str(), second.2),
            bytes.as_slice(),
        )
        .unwrap();
        drop(rows);
        txn.commit().unwrap();
        (second, first)
    };
    let report = verify(&path);
    let shown = |(c, key, seq): &(String, String, u64)| format!("({c}, {key}, {seq})");
    let problems: Vec<(&str, &str, String)> = report
        .problems
        .iter()
        .map(|p| (p.table, p.key.as_str(), p.problem.clone()))
        .collect();
    assert!(
        problems.iter().any(|(t, k, p)| *t == "finding_occurrences"
            && *k == shown(&removed)
            && p.starts_with("missing")),
        "{report:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|(t, k, _)| *t == "finding_occurrences" && *k == shown(&moved)),
        "{report:#?}"
    );
}

/// Event `i` of the filter index tests: a cycle of cluster `f{i % 3}` from source `s{i % 2}`,
/// 10 s after the one before (so each cluster's clock moves 30 s an event, and marks a minute
/// every other event); every tenth event is 20 minutes late (a `late_events` entry).
fn filter_event(i: usize) -> Event {
    let mut secs = 1_772_000_000 + i as i64 * 10;
    if i % 10 == 9 {
        secs -= 20 * 60;
    }
    decode_event(&format!(
        r#"{{"id":"filter-{i}","schema":1,"type":"cycle.completed","time":"{}","source":"s{}","cluster":"f{}","data":{{"cycle":"{i}","categories":["c"],"findings":[]}}}}"#,
        Timestamp::from_unix_secs(secs),
        i % 2,
        i % 3
    ))
    .unwrap()
}

/// A closed embedded store of `filter_event`s `0..count` in batches of 7.
fn make_filter_store(path: &Path, count: usize) {
    let store = Store::open(path, config()).unwrap();
    let inputs: Vec<Input> = (0..count).map(|i| Input::Event(filter_event(i))).collect();
    for chunk in inputs.chunks(7) {
        store.append(chunk, NOW).unwrap();
    }
    store.snapshot_now().unwrap();
}

/// The event filters' indexes have no checksum either: verify derives them from the log, so a
/// deleted `by_cluster` entry, a `by_source` entry naming another source and a `late_events`
/// entry with another time are each listed with table and key (and nothing else is).
#[test]
fn verify_checks_the_event_filter_indexes_against_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_filter_store(&path, 90);
    let clean = verify(&path);
    assert!(clean.is_clean() && clean.notes.is_empty(), "{clean:#?}");
    for table in ["by_cluster", "by_source", "cluster_clock", "late_events"] {
        assert!(clean.checked[table] > 0, "{table}: {clean:#?}");
    }
    let late = {
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose, as a bad tool would
        let txn = db.begin_write().unwrap();
        // Position 5 is event 4, of cluster f1.
        txn.open_table(tables::BY_CLUSTER)
            .unwrap()
            .remove(("f1", 5))
            .unwrap()
            .expect("position 5 is indexed");
        // Position 7 is event 6, from source s0.
        txn.open_table(tables::BY_SOURCE)
            .unwrap()
            .insert(("s1", 7), ())
            .unwrap();
        let mut late_events = txn.open_table(tables::LATE_EVENTS).unwrap();
        let ((cluster, seq), time) = late_events
            .first()
            .unwrap()
            .map(|(k, v)| {
                let (c, seq) = k.value();
                ((c.to_owned(), seq), v.value())
            })
            .expect("the log has late events");
        late_events
            .insert((cluster.as_str(), seq), time + 1)
            .unwrap();
        drop(late_events);
        txn.commit().unwrap();
        format!("({cluster}, {seq})")
    };
    let report = verify(&path);
    let mut listed = listed(&report);
    listed.sort();
    assert_eq!(
        listed,
        [
            ("by_cluster", "(f1, 5)"),
            ("by_source", "(s1, 7)"),
            ("late_events", late.as_str()),
        ],
        "{report:#?}"
    );
    let problem = |table| {
        report
            .problems
            .iter()
            .find(|p| p.table == table)
            .unwrap()
            .problem
            .as_str()
    };
    assert_eq!(problem("by_cluster"), "missing");
    assert!(
        problem("by_source").contains("the event at position 7 is from source s0"),
        "{report:#?}"
    );
    assert!(
        problem("late_events").contains("the event's time is"),
        "{report:#?}"
    );
    assert_eq!(report.integrity, tidemark_store::IntegrityCheck::Passed);
    // The filter indexes are derived from the log: a rebuild writes them anew, repaired.
    {
        let store =
            tidemark_store::Store::open(&path, tidemark_store::StoreConfig::default()).unwrap();
        store.rebuild(|_| {}).unwrap();
    }
    let rebuilt = verify(&path);
    assert!(
        rebuilt.is_clean() && rebuilt.notes.is_empty(),
        "{rebuilt:#?}"
    );
}

/// Retention drops the log before its cut with the filter index entries of those positions,
/// but keeps the clock marks (the events after the cut are marked and found late against
/// them): the store verifies clean after the cut and after appending more, late events
/// included. Without those marks, the first event of each cluster after the cut would be
/// expected to be a mark.
#[test]
fn verify_passes_a_store_whose_retention_cut_kept_the_clock_marks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_filter_store(&path, 90);
    let store = Store::open(&path, config()).unwrap();
    let cut = store
        .drop_events_before(Some(61), EmbeddedRetention::Allow)
        .unwrap()
        .first_retained;
    assert!(cut > 1, "the log was cut");
    let inputs: Vec<Input> = (90..130).map(|i| Input::Event(filter_event(i))).collect();
    store.append(&inputs, NOW).unwrap();
    drop(store);
    {
        use redb::{ReadableDatabase, ReadableTable};
        let db = redb::ReadOnlyDatabase::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let marks_before_cut = txn
            .open_table(tables::CLUSTER_CLOCK)
            .unwrap()
            .iter()
            .unwrap()
            .filter(|e| e.as_ref().unwrap().0.value().2 < cut)
            .count();
        assert!(marks_before_cut > 0, "retention kept the clock marks");
    }
    let report = verify(&path);
    assert!(report.is_clean() && report.notes.is_empty(), "{report:#?}");
    assert!(report.checked["late_events"] > 0, "{report:#?}");
    // A rebuild after the cut starts from the snapshot there: it keeps the filter index
    // entries (and clock marks) up to it and writes the rest anew, the same entries.
    {
        let store =
            tidemark_store::Store::open(&path, tidemark_store::StoreConfig::default()).unwrap();
        store.rebuild(|_| {}).unwrap();
    }
    let rebuilt = verify(&path);
    assert!(
        rebuilt.is_clean() && rebuilt.notes.is_empty(),
        "{rebuilt:#?}"
    );
    for table in [
        "by_cluster",
        "by_source",
        "cluster_clock",
        "late_events",
        "log",
    ] {
        assert_eq!(
            rebuilt.checked[table], report.checked[table],
            "{table}: the same entries after the rebuild"
        );
    }
}

/// A store of 60 cycles of cluster `h` whose finding `k` (on a pod) is seen for five cycles,
/// then absent for five, again and again: each time it opens an automatic incident, which
/// closes when it resolves, so closed incidents' timelines are written out (store layout 3).
fn make_incident_store(path: &Path) {
    make_cycles_store(
        path,
        r#"{"check_key":"k","category":"c","severity":"error","title":"down","resource":{"kind":"Pod","namespace":"web","name":"a"}}"#,
    );
}

/// The rows of `incident_entries`, keys and bytes.
fn incident_rows(path: &Path) -> Vec<((String, u64, u64), Vec<u8>)> {
    use redb::{ReadableDatabase, ReadableTable};
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let rows = txn.open_table(tables::INCIDENT_ENTRIES).unwrap();
    rows.iter()
        .unwrap()
        .map(|entry| {
            let (k, v) = entry.unwrap();
            let (id, seq, at) = k.value();
            ((id.to_owned(), seq, at), v.value().to_vec())
        })
        .collect()
}

/// Store layout 3: a corrupt row of a closed incident's timeline fails the reads of that
/// timeline (naming the table), never a timeline with the entry left out; `verify` lists it,
/// and lists a row re-encoded with other touches and a closed incident whose rows are gone.
#[test]
fn incident_timeline_rows_are_checked_by_reads_and_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_incident_store(&path);
    let rows = incident_rows(&path);
    let incidents: std::collections::BTreeSet<&str> =
        rows.iter().map(|((id, _, _), _)| id.as_str()).collect();
    assert!(
        incidents.len() >= 3,
        "closed incidents wrote their timelines out: {incidents:?}"
    );
    assert!(verify(&path).is_clean(), "{:#?}", verify(&path));
    let first = *incidents.iter().next().unwrap();
    let (second, third) = {
        let mut rest = incidents.iter().skip(1);
        (*rest.next().unwrap(), *rest.next().unwrap())
    };
    let timeline_of = |store: &Store, id: &str| {
        store.read_at(None, |p| {
            let incidents = p.incidents();
            let incident = incidents.incident(id).unwrap();
            incidents.timeline(&incident).into_owned()
        })
    };
    let before = {
        let store = Store::open(&path, config()).unwrap();
        timeline_of(&store, first).unwrap().0
    };
    assert!(before.len() >= 2, "{before:?}");
    {
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)]
        let txn = db.begin_write().unwrap();
        let mut table = txn.open_table(tables::INCIDENT_ENTRIES).unwrap();
        // The first incident's first entry: a flipped byte.
        let ((id, seq, at), bytes) = rows
            .iter()
            .find(|((id, seq, _), _)| id == first && *seq > 0)
            .unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        table
            .insert((id.as_str(), *seq, *at), flipped.as_slice())
            .unwrap();
        // The second's first entry: another touch, encoded under its own key.
        let ((id, seq, at), bytes) = rows
            .iter()
            .find(|((id, seq, _), _)| id == second && *seq > 0)
            .unwrap();
        let mut row = tidemark_store::codec::decode_entry_row(id, *seq, *at, bytes).unwrap();
        row.touches[0].change = "note_decision".into();
        let mut encoded = Vec::new();
        tidemark_store::codec::encode_entry_row(id, *seq, *at, &row, &mut encoded);
        table
            .insert((id.as_str(), *seq, *at), encoded.as_slice())
            .unwrap();
        // The third's rows: gone.
        for ((id, seq, at), _) in rows.iter().filter(|((id, _, _), _)| id == third) {
            table.remove((id.as_str(), *seq, *at)).unwrap();
        }
        drop(table);
        txn.commit().unwrap();
    }
    let report = verify(&path);
    let problems: Vec<(&str, &str, String)> = report
        .problems
        .iter()
        .map(|p| (p.table, p.key.as_str(), p.problem.clone()))
        .collect();
    let about = |id: &str| {
        problems
            .iter()
            .filter(|(t, k, _)| *t == "incident_entries" && k.contains(&format!("{id:?}")))
            .count()
    };
    assert!(about(first) > 0, "{report:#?}");
    assert!(about(second) > 0, "{report:#?}");
    assert!(
        problems.iter().any(|(t, k, p)| *t == "incident_entries"
            && k.contains(&format!("{third:?}"))
            && p.starts_with("missing")),
        "{report:#?}"
    );
    let store = Store::open(&path, config()).unwrap();
    let error = timeline_of(&store, first)
        .expect_err("the timeline read met a corrupt row")
        .to_string();
    assert!(error.contains("incident_entries"), "{error}");
}

/// The rows of `incident_bodies`, keys and bytes.
fn incident_body_rows(path: &Path) -> Vec<((String, u64), Vec<u8>)> {
    use redb::{ReadableDatabase, ReadableTable};
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let rows = txn.open_table(tables::INCIDENT_BODIES).unwrap();
    rows.iter()
        .unwrap()
        .map(|entry| {
            let (k, v) = entry.unwrap();
            let (id, at) = k.value();
            ((id.to_owned(), at), v.value().to_vec())
        })
        .collect()
}

/// Store layout 4: a corrupt row of a closed incident fails the reads of that incident and of
/// the lists that reach it (naming the table), never an answer without it; `verify` lists it,
/// and lists a row re-encoded with another title and a closed incident whose rows are gone.
#[test]
fn incident_body_rows_are_checked_by_reads_and_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_incident_store(&path);
    let rows = incident_body_rows(&path);
    let incidents: std::collections::BTreeSet<&str> =
        rows.iter().map(|((id, _), _)| id.as_str()).collect();
    assert!(
        incidents.len() >= 3,
        "closed incidents were written out: {incidents:?}"
    );
    assert!(verify(&path).is_clean(), "{:#?}", verify(&path));
    let mut ids = incidents.iter().copied();
    let (first, second, third) = (
        ids.next().unwrap(),
        ids.next().unwrap(),
        ids.next().unwrap(),
    );
    let latest = |id: &str| rows.iter().rfind(|((i, _), _)| i == id).unwrap();
    {
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)]
        let txn = db.begin_write().unwrap();
        let mut table = txn.open_table(tables::INCIDENT_BODIES).unwrap();
        // The first incident's latest version: a flipped byte.
        let ((id, at), bytes) = latest(first);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        table
            .insert((id.as_str(), *at), flipped.as_slice())
            .unwrap();
        // The second's: another title, encoded under its own key.
        let ((id, at), bytes) = latest(second);
        let mut row = tidemark_store::codec::decode_body_row(id, *at, bytes).unwrap();
        row.incident.declared_title = Some("not what the log says".into());
        let mut encoded = Vec::new();
        tidemark_store::codec::encode_body_row(id, *at, &row, &mut encoded);
        table
            .insert((id.as_str(), *at), encoded.as_slice())
            .unwrap();
        // The third's versions: gone (their openings stay).
        for ((id, at), _) in rows.iter().filter(|((id, _), _)| id == third) {
            table.remove((id.as_str(), *at)).unwrap();
        }
        drop(table);
        txn.commit().unwrap();
    }
    let report = verify(&path);
    let about = |table: &str, id: &str, problem: &str| {
        report.problems.iter().any(|p| {
            p.table == table && p.key.contains(&format!("{id:?}")) && p.problem.contains(problem)
        })
    };
    assert!(about("incident_bodies", first, "checksum"), "{report:#?}");
    assert!(about("incident_bodies", second, "differs"), "{report:#?}");
    assert!(about("incident_bodies", third, "missing"), "{report:#?}");
    assert!(
        about("incident_openings", third, "no version"),
        "{report:#?}"
    );
    let store = Store::open(&path, config()).unwrap();
    let error = store
        .read_at(None, |p| {
            p.incidents().incident(first).map(|i| i.id.clone())
        })
        .expect_err("the read met a corrupt row")
        .to_string();
    assert!(error.contains("incident_bodies"), "{error}");
    let error = store
        .read_at(None, |p| {
            p.incidents()
                .views_page(p.findings(), None, true, |_| true, None, 100)
                .0
                .len()
        })
        .expect_err("the list met a corrupt row")
        .to_string();
    assert!(error.contains("incident_bodies"), "{error}");
}

/// Change records are checked against the fold of the log (ADR 0008): one removed, one that
/// reads back but says something else, one whose bits flipped, each listed by position.
#[test]
fn verify_checks_the_change_records_against_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    make_store(&path, 47);
    assert!(verify(&path).is_clean());
    let (removed, rewritten, flipped) = {
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose, as a bad tool would
        let txn = db.begin_write().unwrap();
        let mut changes = txn.open_table(tables::CHANGES).unwrap();
        let recorded: Vec<u64> = changes
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert!(recorded.len() > 3, "{recorded:?}");
        let (removed, rewritten, flipped) =
            (recorded[0], recorded[1], recorded[recorded.len() - 1]);
        changes.remove(removed).unwrap();
        let mut said = tidemark_store::codec::decode_changes(
            rewritten,
            changes.get(rewritten).unwrap().unwrap().value(),
        )
        .unwrap();
        said.pop();
        let mut bytes = Vec::new();
        tidemark_store::codec::encode_changes(rewritten, &said, &mut bytes);
        changes.insert(rewritten, bytes.as_slice()).unwrap();
        let mut damaged = changes.get(flipped).unwrap().unwrap().value().to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        changes.insert(flipped, damaged.as_slice()).unwrap();
        drop(changes);
        txn.commit().unwrap();
        (removed, rewritten, flipped)
    };
    let report = verify(&path);
    let mut found: Vec<(&str, u64)> = listed(&report)
        .into_iter()
        .map(|(table, key)| (table, key.parse().unwrap()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("changes", removed),
            ("changes", rewritten),
            ("changes", flipped)
        ],
        "{report:#?}"
    );
    assert!(report.checked["changes"] >= 47, "{report:#?}");
}
