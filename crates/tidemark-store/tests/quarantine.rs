//! The quarantine on real redb files: identical refused inputs are kept once with a count, the
//! quarantine stays within its bound, and what it did not keep is counted across restarts.

use std::path::Path;

use tidemark_core::{Event, Timestamp, decode_event};
use tidemark_store::{Input, Outcome, QuarantineLimits, Store, StoreConfig};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

fn later(secs: i64) -> Timestamp {
    Timestamp::from_unix_secs(1_800_000_000 + secs)
}

fn rejected(raw: &str, reason: &str, origin: &str) -> Input {
    Input::Rejected {
        raw: raw.as_bytes().to_vec(),
        reason: reason.into(),
        origin: origin.into(),
    }
}

fn note(id: &str) -> Event {
    decode_event(&format!(
        r#"{{"id":"{id}","schema":1,"type":"note.added","time":"2026-03-02T14:00:00Z","source":"s","cluster":"c","data":{{"author":"me","kind":"observation","text":"hi"}}}}"#
    ))
    .unwrap()
}

fn open(path: &Path, max_records: u64, max_bytes: u64) -> Store {
    Store::open(
        path,
        StoreConfig {
            quarantine: QuarantineLimits {
                max_records,
                max_bytes,
            },
            ..StoreConfig::default()
        },
    )
    .unwrap()
}

fn kept(outcome: &Outcome) -> Option<u64> {
    match outcome {
        Outcome::Rejected {
            quarantine_id,
            raw_kept,
            ..
        } => {
            assert_eq!(*raw_kept, quarantine_id.is_some(), "{outcome:?}");
            *quarantine_id
        }
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn identical_refused_inputs_are_one_record_with_a_count_across_batches_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.redb");
    {
        let store = open(&path, 100, 1 << 20);
        // The issue's body, smaller: the same bad line many times in one request.
        let mut batch: Vec<Input> = (1..=1_000)
            .map(|line| rejected("1", "not an object", &format!("http line {line}")))
            .collect();
        batch.push(Input::Event(note("good")));
        let outcomes = store.append(&batch, NOW).unwrap();
        assert!(outcomes[..1_000].iter().all(|o| kept(o) == Some(1)));
        assert_eq!(outcomes[1_000], Outcome::Accepted { seq: 1 });
        // Again later (an Alertmanager re-send): still one record.
        store
            .append(&[rejected("1", "not an object", "http line 7")], later(60))
            .unwrap();
        // Other bytes, or the same bytes for another reason: records of their own.
        let outcomes = store
            .append(
                &[
                    rejected("2", "not an object", "x"),
                    rejected("1", "another reason", "y"),
                ],
                later(61),
            )
            .unwrap();
        assert_eq!(
            outcomes.iter().map(kept).collect::<Vec<_>>(),
            vec![Some(2), Some(3)]
        );
    }
    let store = open(&path, 100, 1 << 20);
    store
        .append(&[rejected("1", "not an object", "http line 9")], later(120))
        .unwrap();
    let listed = store.quarantine(1, 10).unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|q| {
            (
                q.id,
                q.record.count,
                q.record.raw.as_str(),
                q.record.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, 1_002, "1", "not an object"),
            (2, 1, "2", "not an object"),
            (3, 1, "1", "another reason"),
        ]
    );
    let first = &listed[0].record;
    assert_eq!(first.origin, "http line 1", "the first origin is kept");
    assert_eq!((first.recorded_at, first.last_seen), (NOW, later(120)));
    assert_eq!(listed[1].record.last_seen, later(61));
    let stats = store.stats().unwrap();
    assert_eq!((stats.quarantined, stats.quarantine_dropped), (3, 0));
    assert!(stats.quarantine_bytes > 0);
}

#[test]
fn past_its_bound_the_quarantine_keeps_nothing_new_and_counts_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.redb");
    {
        let store = open(&path, 3, 1 << 20);
        let batch: Vec<Input> = (0..5)
            .map(|i| rejected(&format!("bad {i}"), "not JSON", "http"))
            .chain([Input::Event(note("kept"))])
            .collect();
        let outcomes = store.append(&batch, NOW).unwrap();
        let ids: Vec<Option<u64>> = outcomes[..5].iter().map(kept).collect();
        assert_eq!(ids, vec![Some(1), Some(2), Some(3), None, None]);
        assert_eq!(
            outcomes[5],
            Outcome::Accepted { seq: 1 },
            "events are stored"
        );
        // Full: a repeat of a kept input is still counted on its record (a count takes no room).
        let outcomes = store
            .append(&[rejected("bad 0", "not JSON", "again")], later(1))
            .unwrap();
        assert_eq!(kept(&outcomes[0]), Some(1));
        assert_eq!(store.stats().unwrap().quarantine_dropped, 2);
    }
    // Across a restart: still full, still counting.
    let store = open(&path, 3, 1 << 20);
    let outcomes = store
        .append(&[rejected("bad 9", "not JSON", "http")], later(2))
        .unwrap();
    assert_eq!(kept(&outcomes[0]), None);
    let stats = store.stats().unwrap();
    assert_eq!((stats.quarantined, stats.quarantine_dropped), (3, 3));
    assert_eq!(store.quarantine(1, 10).unwrap()[0].record.count, 2);

    // A larger bound takes new records again.
    drop(store);
    let store = open(&path, 4, 1 << 20);
    let outcomes = store
        .append(&[rejected("bad 9", "not JSON", "http")], later(3))
        .unwrap();
    assert_eq!(kept(&outcomes[0]), Some(4));
}

#[test]
fn the_byte_bound_counts_each_records_encoded_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.redb"), 1_000, 4_096);
    let big = "x".repeat(1_500);
    let batch: Vec<Input> = (0..4)
        .map(|i| rejected(&format!("{big}{i}"), "too long", "http"))
        .collect();
    let outcomes = store.append(&batch, NOW).unwrap();
    let ids: Vec<Option<u64>> = outcomes.iter().map(kept).collect();
    assert_eq!(ids, vec![Some(1), Some(2), None, None]);
    let stats = store.stats().unwrap();
    assert!(stats.quarantine_bytes <= 4_096, "{stats:?}");
    assert!(stats.quarantine_bytes > 3_000, "{stats:?}");
    assert_eq!(stats.quarantine_dropped, 2);
}

#[test]
fn backups_keep_the_counts_and_the_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.redb"), 100, 1 << 20);
    let batch = vec![rejected("1", "r", "a"), rejected("1", "r", "b")];
    store.append(&batch, NOW).unwrap();
    let backup = dir.path().join("backup.redb");
    store.backup_to(&backup, |_, _| {}).unwrap();
    drop(store);
    let restored = open(&backup, 100, 1 << 20);
    let outcomes = restored
        .append(&[rejected("1", "r", "c")], later(5))
        .unwrap();
    assert_eq!(kept(&outcomes[0]), Some(1), "the digest table was copied");
    assert_eq!(restored.quarantine(1, 10).unwrap()[0].record.count, 3);
}

#[test]
fn a_store_written_before_the_dedupe_opens_with_its_records_counted_against_the_bound() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/store-v1.redb");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    std::fs::copy(&golden, &path).unwrap();
    // The golden store holds 3 quarantine records, written without digests.
    let store = open(&path, 4, 1 << 20);
    let listed = store.quarantine(1, 10).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|q| q.record.count == 1));
    assert!(store.stats().unwrap().quarantine_bytes > 0);
    let outcomes = store
        .append(
            &[
                rejected("{not json", "a new reason", "x"),
                rejected("{also not json", "a new reason", "y"),
            ],
            NOW,
        )
        .unwrap();
    assert_eq!(
        outcomes.iter().map(kept).collect::<Vec<_>>(),
        vec![Some(4), None]
    );
}
