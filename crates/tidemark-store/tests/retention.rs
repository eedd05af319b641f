//! Retention on a replica's store (real redb files): dropping the events before a snapshot
//! keeps the state, keeps time travel from the snapshot on, refuses time travel before it with
//! an error naming the stream, rebuilds from the cut, keeps deduplication; embedded stores refuse.

use tidemark_core::{Event, Projections, Timestamp, decode_event};
use tidemark_store::{
    At, EmbeddedRetention, EventFilter, Input, Outcome, QueryError, RetentionError, Store,
    StoreConfig,
};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

/// Event `i`: cycles over three clusters, and now and then a finding resolved by hand (which
/// the next cycle opens again).
fn event(i: usize) -> Event {
    let cluster = ["alpha", "beta", "gamma"][i % 3];
    let time = format!(
        "2026-03-02T{:02}:{:02}:{:02}Z",
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60
    );
    if i % 17 == 5 {
        return decode_event(&format!(
            r#"{{"id":"ret-{i}","schema":1,"type":"finding.resolved","time":"{time}","source":"oncall","cluster":"{cluster}","data":{{"check_key":"k{}","kind":"manual"}}}}"#,
            i % 5
        ))
        .unwrap();
    }
    let findings: Vec<String> = (0..5)
        .filter(|k| !(i / 3 + k * 5).is_multiple_of(3))
        .map(|k| {
            format!(
                r#"{{"check_key":"k{k}","category":"c{}","severity":"error","title":"k{k} broken"}}"#,
                k % 2
            )
        })
        .collect();
    decode_event(&format!(
        r#"{{"id":"ret-{i}","schema":1,"type":"cycle.completed","time":"{time}","source":"probe","cluster":"{cluster}","data":{{"cycle":"{i}","categories":["c0","c1"],"findings":[{}]}}}}"#,
        findings.join(",")
    ))
    .unwrap()
}

/// Stream positions of event `i`: 1, 2, 4, 5, 7, ... (a stream with gaps).
fn position(i: usize) -> u64 {
    (i + i / 2 + 1) as u64
}

fn config() -> StoreConfig {
    StoreConfig {
        snapshot_every: 40,
        snapshot_keep_every: 100,
        ..StoreConfig::default()
    }
}

/// The state after a clean fold of events 0..count at their positions.
fn fold(count: usize) -> Projections {
    let mut projections = Projections::new();
    for i in 0..count {
        projections.apply(position(i), &event(i));
    }
    projections
}

fn follow(store: &Store, range: std::ops::Range<usize>) {
    let items: Vec<(u64, Input)> = range
        .map(|i| (position(i), Input::Event(event(i))))
        .collect();
    for chunk in items.chunks(10) {
        store.append_positioned(chunk, NOW).unwrap();
    }
}

#[test]
fn dropping_events_before_a_snapshot_keeps_the_state_and_says_where_the_rest_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.redb");
    let count = 400;
    let store = Store::open(&path, config()).unwrap();
    follow(&store, 0..count);
    let checkpoint = store.checkpoint();
    assert_eq!(checkpoint, position(count - 1));
    let live = store.projection_snapshot();
    assert_eq!(live, fold(count).snapshot());

    // Ask for position 350: the cut is the latest snapshot at or before it.
    let report = store
        .drop_events_before(Some(350), EmbeddedRetention::Refuse)
        .unwrap();
    let cut = report.first_retained;
    assert!(cut <= 350 && cut > 100, "{report:?}");
    let kept: Vec<u64> = store
        .events(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(kept.first(), Some(&cut), "the log starts at the snapshot");
    assert_eq!(
        report.dropped_events,
        (0..count).filter(|i| position(*i) < cut).count() as u64
    );
    assert_eq!(
        store.projection_snapshot(),
        live,
        "the live state is unchanged"
    );

    // Time travel from the cut on is the fold of that prefix; before it, a clear error.
    let after_cut = (0..count).filter(|i| position(*i) <= cut + 30).count();
    let (at, seq) = store
        .projection_at(At::Seq(position(after_cut - 1)))
        .unwrap();
    assert_eq!(seq, position(after_cut - 1));
    assert_eq!(at.snapshot(), fold(after_cut).snapshot());
    let error = store.projection_at(At::Seq(cut - 1)).unwrap_err();
    assert!(
        matches!(error, QueryError::BeforeRetainedLog { first_retained, .. } if first_retained == cut)
    );
    let message = error.to_string();
    assert!(
        message.contains("JetStream stream") && message.contains("tidemark serve --nats"),
        "{message}"
    );
    let early = Timestamp::parse_rfc3339("2026-03-02T00:00:10Z").unwrap();
    assert!(matches!(
        store.projection_at(At::Time(early)),
        Err(QueryError::BeforeRetainedLog { .. })
    ));
    assert!(matches!(
        store.fold_log(|_, _| {}),
        Err(QueryError::BeforeRetainedLog { .. })
    ));
    // Change records: those of the retained log are kept, those before the cut are gone and
    // refused as such (not answered as "nothing changed").
    let retained: Vec<u64> = (0..count).map(position).filter(|p| *p >= cut).collect();
    let records = store.changes_at(&retained).unwrap();
    assert!(records.iter().any(|c| !c.is_empty()));
    assert!(matches!(
        store.changes_at(&[position(0)]),
        Err(QueryError::BeforeRetainedLog { first_retained, .. }) if first_retained == cut
    ));
    // A rebuild starts from the snapshot at the cut: the same state, the same retained range.
    let rebuilt = store.rebuild(|_| {}).unwrap();
    assert_eq!(store.changes_at(&retained).unwrap(), records);
    assert_eq!(rebuilt.from_snapshot, Some(cut), "{rebuilt:?}");
    assert!(rebuilt.state_unchanged, "{rebuilt:?}");
    assert_eq!(store.projection_snapshot(), live);
    let (at, _) = store
        .projection_at(At::Seq(position(after_cut - 1)))
        .unwrap();
    assert_eq!(at.snapshot(), fold(after_cut).snapshot());
    assert!(matches!(
        store.projection_at(At::Seq(cut - 1)),
        Err(QueryError::BeforeRetainedLog { first_retained, .. }) if first_retained == cut
    ));

    // Timelines and event pages read only what is kept, without dangling index entries.
    let mut entries = 0;
    for cluster in ["alpha", "beta", "gamma"] {
        for k in 0..5 {
            let timeline = store.finding_timeline(cluster, &format!("k{k}")).unwrap();
            assert!(timeline.iter().all(|e| e.seq >= cut));
            entries += timeline.len();
        }
    }
    assert!(entries > 0, "findings changed after the cut");
    let page = store
        .events_page(
            &EventFilter {
                cluster: Some("beta".into()),
                ..EventFilter::default()
            },
            0,
            1000,
        )
        .unwrap();
    assert!(page.events.iter().all(|(seq, _)| *seq >= cut));

    // Following goes on; an id stored before the cut is still a duplicate.
    let old = Input::Event(event(3));
    let outcomes = store
        .append_positioned(&[(checkpoint + 1, old)], NOW)
        .unwrap();
    assert_eq!(outcomes, vec![Outcome::Duplicate { seq: position(3) }]);
    drop(store);

    // Reopened: the same state, the same retained range.
    let store = Store::open(&path, config()).unwrap();
    assert_eq!(store.projection_snapshot(), live);
    assert!(matches!(
        store.projection_at(At::Seq(cut - 1)),
        Err(QueryError::BeforeRetainedLog { .. })
    ));
    follow(&store, count..count + 50);
    assert_eq!(store.projection_snapshot(), fold(count + 50).snapshot());
}

#[test]
fn retention_refuses_embedded_stores_and_cuts_only_at_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Store::open(dir.path().join("embedded.redb"), config()).unwrap();
    let inputs: Vec<Input> = (0..100).map(|i| Input::Event(event(i))).collect();
    embedded.append(&inputs, NOW).unwrap();
    let error = embedded
        .drop_events_before(None, EmbeddedRetention::Refuse)
        .unwrap_err();
    assert!(matches!(error, RetentionError::EmbeddedStore));
    assert!(error.to_string().contains("source of truth"), "{error}");
    assert_eq!(embedded.events(0, usize::MAX).unwrap().len(), 100);

    let replica = Store::open(dir.path().join("replica.redb"), config()).unwrap();
    follow(&replica, 0..20); // positions up to 29 < snapshot_every: no snapshot yet
    let error = replica
        .drop_events_before(None, EmbeddedRetention::Refuse)
        .unwrap_err();
    assert!(
        matches!(error, RetentionError::NoSnapshot { .. }),
        "{error}"
    );
    assert_eq!(replica.events(0, usize::MAX).unwrap().len(), 20);
}

#[test]
fn an_embedded_store_drops_old_events_when_allowed_and_says_they_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embedded.redb");
    let count = 400;
    let store = Store::open(&path, config()).unwrap();
    let inputs: Vec<Input> = (0..count).map(|i| Input::Event(event(i))).collect();
    for chunk in inputs.chunks(10) {
        store.append(chunk, NOW).unwrap();
    }
    let live = store.projection_snapshot();
    let fold_seq = |n: usize| {
        let mut projections = Projections::new();
        for i in 0..n {
            projections.apply(i as u64 + 1, &event(i));
        }
        projections.snapshot()
    };
    assert_eq!(live, fold_seq(count));

    let report = store
        .drop_events_before(Some(250), EmbeddedRetention::Allow)
        .unwrap();
    let cut = report.first_retained;
    assert!(report.embedded);
    assert!(cut <= 250 && cut > 1, "{report:?}");
    assert_eq!(report.dropped_events, cut - 1);
    assert_eq!(store.events(0, usize::MAX).unwrap()[0].0, cut);
    assert_eq!(store.projection_snapshot(), live);

    // Time travel from the cut on works; before it, an error that says the events are gone
    // but for a backup.
    let (at, _) = store.projection_at(At::Seq(cut + 20)).unwrap();
    assert_eq!(at.snapshot(), fold_seq(cut as usize + 20));
    let error = store.projection_at(At::Seq(cut - 1)).unwrap_err();
    assert!(
        matches!(error, QueryError::BeforeRetainedLog { first_retained, .. } if first_retained == cut)
    );
    assert!(error.to_string().contains("backup taken before"), "{error}");

    // Rebuild starts from the cut; appends and reopens go on; an old id is still a duplicate.
    let rebuilt = store.rebuild(|_| {}).unwrap();
    assert_eq!(rebuilt.from_snapshot, Some(cut));
    assert!(rebuilt.state_unchanged);
    let outcomes = store.append(&[Input::Event(event(3))], NOW).unwrap();
    assert_eq!(outcomes, vec![Outcome::Duplicate { seq: 4 }]);
    store.append(&[Input::Event(event(count))], NOW).unwrap();

    // Cut again at the latest snapshot, then write the next snapshot in the same
    // `snapshot_keep_every` span: the snapshot at the cut is kept (not thinned away), because
    // time travel and rebuild start from it.
    let cut = store
        .drop_events_before(None, EmbeddedRetention::Allow)
        .unwrap()
        .first_retained;
    let more = 60;
    let inputs: Vec<Input> = (count + 1..count + 1 + more)
        .map(|i| Input::Event(event(i)))
        .collect();
    store.append(&inputs, NOW).unwrap();
    store.snapshot_now().unwrap();
    assert_eq!(
        store.stats().unwrap().snapshot_seq / config().snapshot_keep_every,
        cut / config().snapshot_keep_every,
        "the next snapshot is in the cut's span"
    );
    let (at, _) = store.projection_at(At::Seq(cut + 5)).unwrap();
    assert_eq!(at.snapshot(), fold_seq(cut as usize + 5));
    let rebuilt = store.rebuild(|_| {}).unwrap();
    assert_eq!(rebuilt.from_snapshot, Some(cut));
    drop(store);
    let store = Store::open(&path, config()).unwrap();
    assert_eq!(store.projection_snapshot(), fold_seq(count + 1 + more));
    drop(store);
    let verified = Store::verify(&path, |_, _| {}).unwrap();
    assert!(verified.is_clean(), "{verified:?}");
}

/// A flap window widened after a retention cut: the store's fold reads the auto-resolutions
/// the wider window reaches back to (from before the cut) from its history tables, and so does
/// `verify`, which folds from the snapshot at the cut: the store verifies clean, and the
/// finding flaps by the count rule as the fold of the whole log says.
#[test]
fn a_window_widened_after_a_cut_reads_the_history_from_before_it_and_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("widened.redb");
    let config = StoreConfig {
        snapshot_every: 10,
        snapshot_keep_every: 10,
        snapshot_bytes_ratio: 0,
        ..StoreConfig::default()
    };
    // A minute apart; a 60-second window and one clean cycle to resolve: k0 comes and goes
    // every other cycle (each absence auto-resolves it), so at most one auto-resolution is
    // ever inside the window.
    let at = |i: usize| format!("2026-03-02T{:02}:{:02}:00Z", 10 + i / 60, i % 60);
    let mut events = vec![decode_event(&format!(
        r#"{{"id":"w-0","schema":1,"type":"settings.changed","time":"{}","source":"ui","cluster":"c1","data":{{"clean_cycles_to_resolve":0,"flap_window_secs":60,"flap_threshold":2}}}}"#,
        at(0)
    ))
    .unwrap()];
    for i in 1..40 {
        let findings = if i % 2 == 1 {
            r#"{"check_key":"k0","category":"pods","severity":"error","title":"down"}"#
        } else {
            ""
        };
        events.push(
            decode_event(&format!(
                r#"{{"id":"w-{i}","schema":1,"type":"cycle.completed","time":"{}","source":"probe","cluster":"c1","data":{{"cycle":"{i}","categories":["pods"],"findings":[{findings}]}}}}"#,
                at(i)
            ))
            .unwrap(),
        );
    }
    // Widened to a day after the cut: the auto-resolutions before it count again.
    let widen = decode_event(&format!(
        r#"{{"id":"w-widen","schema":1,"type":"settings.changed","time":"{}","source":"ui","cluster":"c1","data":{{"flap_window_secs":86400}}}}"#,
        at(40)
    ))
    .unwrap();
    let mut whole = Projections::new();
    for (seq, event) in (1..).zip(events.iter().chain([&widen])) {
        whole.apply(seq, event);
    }
    let flapping = |p: &Projections| {
        p.findings()
            .flaps(None)
            .iter()
            .any(|f| f.check_key == "k0" && f.flapping)
    };
    assert!(
        flapping(&whole),
        "the fold of the whole log: k0 flaps once the window widens"
    );
    {
        let store = Store::open(&path, config.clone()).unwrap();
        let inputs: Vec<Input> = events.iter().cloned().map(Input::Event).collect();
        for batch in inputs.chunks(10) {
            store.append(batch, NOW).unwrap();
        }
        store
            .drop_events_before(Some(30), EmbeddedRetention::Allow)
            .unwrap();
        store.append(&[Input::Event(widen.clone())], NOW).unwrap();
        store.snapshot_now().unwrap();
        assert!(store.projection_snapshot() == whole.snapshot());
        assert!(store.read(flapping));
    }
    let report = Store::verify(&path, |_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let store = Store::open(&path, config).unwrap();
    assert!(store.projection_snapshot() == whole.snapshot());
}
