//! Store layout 5 (ADR 0006, step 5): the orphans of traces dropped after the retention live in
//! `dropped_orphans`, not in the live state or its snapshots, and every read (live, reopened,
//! time travel, rebuilt, after a retention cut) lists them as the fold that keeps them in memory
//! does; `verify` and the reads check each row.

use std::path::Path;

use tidemark_core::orphans::OrphanView;
use tidemark_core::{Event, Projections, Timestamp, decode_event};
use tidemark_store::{At, EmbeddedRetention, Input, Store, StoreConfig, tables};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

fn config() -> StoreConfig {
    StoreConfig {
        snapshot_every: 20,
        snapshot_keep_every: 20,
        ..StoreConfig::default()
    }
}

fn time(secs: i64) -> String {
    Timestamp::from_unix_secs(1_779_000_000 + secs).to_rfc3339()
}

/// A span event of cluster `cluster` at `secs`.
fn span(
    i: usize,
    cluster: &str,
    secs: i64,
    trace: &str,
    span: &str,
    parent: Option<&str>,
) -> Event {
    let parent = parent.map_or("null".to_owned(), |p| format!("{p:?}"));
    decode_event(&format!(
        r#"{{"id":"span-{i}","schema":1,"type":"span.recorded","time":"{t}","source":"otel","cluster":"{cluster}","data":{{"trace_id":"{trace}","span_id":"{span}","parent_span_id":{parent},"name":"op","service":"agents","start":"{t}","end":"{t}","status":"ok"}}}}"#,
        t = time(secs)
    ))
    .unwrap()
}

/// A log of two clusters whose traces (one in three without a root, one in four with a span
/// whose parent never arrives) are judged after a minute and dropped after five; trace ids come
/// back after they are dropped.
fn events() -> Vec<Event> {
    let mut out = Vec::new();
    for (i, cluster) in ["edge", "pw-prod"].into_iter().enumerate() {
        out.push(
            decode_event(&format!(
                r#"{{"id":"settings-{i}","schema":1,"type":"settings.changed","time":"{}","source":"admin","cluster":"{cluster}","data":{{"span_grace_secs":60,"span_retention_secs":300}}}}"#,
                time(0)
            ))
            .unwrap(),
        );
    }
    for i in 0..240usize {
        let cluster = if i % 5 == 0 { "edge" } else { "pw-prod" };
        let secs = 30 * i as i64;
        let trace = format!("t{}", i % 17);
        let parent = (i % 3 == 0).then_some("gone");
        out.push(span(3 * i, cluster, secs, &trace, "root", parent));
        if i % 4 == 0 {
            out.push(span(
                3 * i + 1,
                cluster,
                secs,
                &trace,
                &format!("s{i}"),
                Some("gone"),
            ));
        }
    }
    out
}

/// The fold of the first `n` events, every orphan in memory.
fn fold(events: &[Event], n: usize) -> Projections {
    let mut p = Projections::new();
    for (i, e) in events.iter().take(n).enumerate() {
        p.apply(i as u64 + 1, e);
    }
    p
}

fn orphans(p: &Projections) -> Vec<OrphanView> {
    p.orphans().orphans(None)
}

fn make(path: &Path, events: &[Event]) -> Store {
    let store = Store::open(path, config()).unwrap();
    let inputs: Vec<Input> = events.iter().cloned().map(Input::Event).collect();
    for chunk in inputs.chunks(7) {
        store.append(chunk, NOW).unwrap();
    }
    store
}

/// A row's key, owned: (cluster, kind code, subject, detail, since_seq).
type RowKey = (String, u8, String, String, u64);

/// The rows of `dropped_orphans`, keys and bytes.
fn rows(path: &Path) -> Vec<(RowKey, Vec<u8>)> {
    use redb::{ReadableDatabase, ReadableTable};
    let db = redb::ReadOnlyDatabase::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(tables::DROPPED_ORPHANS).unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            let (c, kind, s, d, seq) = k.value();
            (
                (c.to_owned(), kind, s.to_owned(), d.to_owned(), seq),
                v.value().to_vec(),
            )
        })
        .collect()
}

#[test]
fn orphans_of_dropped_traces_live_in_their_table_and_read_as_the_fold_lists_them() {
    let events = events();
    let whole = orphans(&fold(&events, events.len()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = make(&path, &events);
    let (live, _) = store.read_at(None, orphans).unwrap();
    assert!(
        live == whole,
        "live: {} orphans, fold: {}",
        live.len(),
        whole.len()
    );
    // Memory holds the present: the snapshot's orphans are of traces it holds.
    store.snapshot_now().unwrap();
    let snapshot = store.read(|p| p.live_snapshot());
    let mut kept = 0;
    for cluster in &snapshot.orphans.clusters {
        let held: Vec<&str> = cluster
            .spans
            .traces
            .iter()
            .map(|t| t.trace_id.as_str())
            .collect();
        for orphan in &cluster.spans.span_orphans {
            assert!(
                held.contains(&orphan.trace_id.as_deref().unwrap()),
                "{orphan:?}"
            );
            kept += 1;
        }
    }
    // Time travel, at positions where traces were dropped and where they were not yet.
    for at in [40u64, 97, 150, 233, events.len() as u64] {
        let (past, _) = store.read_at(Some(At::Seq(at)), orphans).unwrap();
        assert!(past == orphans(&fold(&events, at as usize)), "at {at}");
    }
    drop(store);
    let written = rows(&path);
    assert!(
        written.len() > 50 && written.len() + kept == whole.len(),
        "{} rows, {kept} kept, {} listed",
        written.len(),
        whole.len()
    );
    // Reopened (restored from its latest snapshot), then rebuilt (the table written anew).
    let reopen = || Store::open(&path, config()).unwrap();
    let store = reopen();
    assert!(store.read_at(None, orphans).unwrap().0 == whole);
    store.rebuild(|_| {}).unwrap();
    assert!(store.read_at(None, orphans).unwrap().0 == whole);
    drop(store);
    assert_eq!(rows(&path), written, "rebuild writes the same rows");
    let report = Store::verify(&path, |_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:#?}");
    // A retention cut keeps the rows; a rebuild from the cut writes the same.
    let store = reopen();
    store
        .drop_events_before(Some(180), EmbeddedRetention::Allow)
        .unwrap();
    assert!(store.read_at(None, orphans).unwrap().0 == whole);
    store.rebuild(|_| {}).unwrap();
    assert!(store.read_at(None, orphans).unwrap().0 == whole);
    drop(store);
    assert_eq!(
        rows(&path),
        written,
        "rebuild from the cut writes the same rows"
    );
}

#[test]
fn a_damaged_row_is_a_fault_of_the_read_and_of_verify() {
    let events = events();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(make(&path, &events));
    let written = rows(&path);
    let ((cluster, kind, subject, detail, seq), bytes) = &written[written.len() / 2];
    {
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)]
        let txn = db.begin_write().unwrap();
        let mut table = txn.open_table(tables::DROPPED_ORPHANS).unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        table
            .insert(
                (
                    cluster.as_str(),
                    *kind,
                    subject.as_str(),
                    detail.as_str(),
                    *seq,
                ),
                flipped.as_slice(),
            )
            .unwrap();
        drop(table);
        txn.commit().unwrap();
    }
    let report = Store::verify(&path, |_, _| {}).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.table == "dropped_orphans" && p.problem.contains("checksum")),
        "{report:#?}"
    );
    let store = Store::open(&path, config()).unwrap();
    let error = store
        .read_at(None, orphans)
        .expect_err("the list met a damaged row")
        .to_string();
    assert!(error.contains("dropped_orphans"), "{error}");
}
