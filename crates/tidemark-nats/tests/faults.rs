//! Fault tests on real nats-server processes (own ports and store directories per test):
//! duplicates from concurrent producers, a server killed mid-stream, a cluster losing its
//! stream leader, poison messages, two followers agreeing, a stream that diverges, and fetches
//! that the client ends while the server is still delivering.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::holding_proxy::HoldingProxy;
use support::nats_server::NatsServer;
use support::*;
use tidemark_core::{Event, LogFold};
use tidemark_nats::{FollowerConfig, Producer, ProducerConfig, Published};

fn producer(js: &tidemark_nats::connect::JetStreamContext) -> Producer {
    Producer::new(js.clone(), ProducerConfig::default())
}

fn acked(results: &[Published], events: &[Event]) -> Vec<String> {
    results
        .iter()
        .zip(events)
        .filter(|(r, _)| matches!(r, Published::Stored { .. } | Published::Duplicate { .. }))
        .map(|(_, e)| e.id.0.clone())
        .collect()
}

/// Publishes `all` in rounds from a task; returns the count acknowledged so far (live) and the
/// task, which ends with every acknowledged id.
fn publish_in_rounds(
    js: &tidemark_nats::connect::JetStreamContext,
    all: &[Event],
    round: usize,
    pause: Duration,
) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<Vec<String>>) {
    let progress = Arc::new(AtomicUsize::new(0));
    let task = {
        let producer = producer(js);
        let all = all.to_vec();
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for round in all.chunks(round) {
                let results = producer.publish_all(round.to_vec()).await;
                acknowledged.extend(acked(&results, round));
                progress.store(acknowledged.len(), Ordering::SeqCst);
                tokio::time::sleep(pause).await;
            }
            acknowledged
        })
    };
    (progress, task)
}

/// Waits until at least `count` events are acknowledged.
async fn wait_for_progress(progress: &AtomicUsize, count: usize) {
    while progress.load(Ordering::SeqCst) < count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_ids_from_four_producers_are_stored_once_and_fold_like_replay() {
    // Every field bound: `..` would drop the server (and its directory) right here.
    let Replica {
        dir: _dir,
        server: _server,
        config: _config,
        js,
        store,
        follower,
    } = single_node_replica().await;

    // 100,000 publishes: 75,000 unique events, 25,000 repeats of earlier ids, over 4 producers.
    let unique = events("dup", 0, 75_000);
    let mut all: Vec<Event> = unique.clone();
    all.extend((0..25_000).map(|i| unique[(i * 7_919) % 75_000].clone()));
    let chunks: Vec<Vec<Event>> = (0..4)
        .map(|p| all.iter().skip(p).step_by(4).cloned().collect())
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let producer = producer(&js);
        tasks.push(tokio::spawn(async move {
            let mut failed = 0;
            for round in chunk.chunks(2_000) {
                failed += producer
                    .publish_all(round.to_vec())
                    .await
                    .iter()
                    .filter(|r| matches!(r, Published::Failed { .. } | Published::Unknown { .. }))
                    .count();
            }
            failed
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 0, "every publish is acknowledged");
    }
    let last = last_seq(&js, "TIDEMARK").await;
    assert_eq!(last, 75_000, "the stream dropped the repeated ids");
    wait_caught_up(&follower, &store, last, Duration::from_secs(120)).await;
    follower.stop().await;

    let ids = assert_consistent(&store);
    assert_eq!(ids.len(), 75_000);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        unique.iter().map(|e| &e.id.0).collect::<BTreeSet<_>>()
    );
    // The same unique events, replayed in stream order, give the same findings.
    let mut replay = LogFold::new();
    for (_, stored) in store.events(1, usize::MAX).unwrap() {
        replay.apply(&stored.event);
    }
    assert_eq!(store.findings(), replay.findings().views());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_loses_nothing_acknowledged_and_applies_nothing_twice() {
    let Replica {
        dir: _dir,
        mut server,
        config: _config,
        js,
        store,
        follower,
    } = single_node_replica().await;

    let all = events("kill", 0, 20_000);
    let (progress, publishing) = publish_in_rounds(&js, &all, 500, Duration::from_millis(5));
    wait_for_progress(&progress, 2_000).await;
    server.kill(); // SIGKILL mid-stream
    let at_kill = progress.load(Ordering::SeqCst);
    assert!(
        at_kill < all.len(),
        "the kill must land while publishing ({at_kill} acknowledged)"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.start(); // same store directory
    let acknowledged = publishing.await.unwrap();
    assert_eq!(
        acknowledged.len(),
        all.len(),
        "the producers recovered and every event was acknowledged"
    );
    let last = last_seq(&js, "TIDEMARK").await;
    wait_caught_up(&follower, &store, last, Duration::from_secs(120)).await;
    follower.stop().await;

    let ids: BTreeSet<String> = assert_consistent(&store).into_iter().collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost: {} (first {:?})",
        lost.len(),
        lost.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_losing_its_stream_leader_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = NatsServer::cluster(dir.path());
    let urls: Vec<String> = nodes.iter().map(NatsServer::url).collect();
    let config = nats_config(&urls.join(","), 3);
    let js = jetstream(&config).await;
    let store = open_store(dir.path(), "replica.redb");
    let follower = follow(&store, &js);

    let all = events("r3", 0, 6_000);
    let (progress, publishing) = publish_in_rounds(&js, &all, 200, Duration::from_millis(10));
    wait_for_progress(&progress, 1_000).await;
    let info = js
        .get_stream("TIDEMARK")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    let leader = info
        .cluster
        .and_then(|c| c.leader)
        .expect("an R3 stream has a leader");
    let node = nodes
        .iter_mut()
        .find(|n| n.name == leader)
        .expect("the leader is one of ours");
    eprintln!("killing stream leader {leader}");
    node.kill();
    let at_kill = progress.load(Ordering::SeqCst);
    assert!(
        at_kill < all.len(),
        "the kill must land while publishing ({at_kill} acknowledged)"
    );
    let acknowledged = publishing.await.unwrap();
    assert_eq!(
        acknowledged.len(),
        all.len(),
        "publishing went on through the leader change"
    );
    let last = last_seq(&js, "TIDEMARK").await;
    wait_caught_up(&follower, &store, last, Duration::from_secs(120)).await;
    follower.stop().await;

    let ids: BTreeSet<String> = assert_consistent(&store).into_iter().collect();
    assert!(
        acknowledged.iter().all(|id| ids.contains(id)),
        "every acknowledged event reached the follower"
    );
    assert_eq!(ids.len(), all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_quarantined_with_their_sequence_and_the_follower_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let config = nats_config(&server.url(), 1);
    let client = tidemark_nats::connect(&config, "poisoner").await.unwrap();
    let js = jetstream(&config).await;
    let store = open_store(dir.path(), "replica.redb");
    let follower = follow(&store, &js);

    let good = events("good", 0, 10);
    producer(&js).publish_all(good[..4].to_vec()).await;
    // The typed helper: a payload in, an event with a fresh id out.
    let note = tidemark_core::event::NoteAdded {
        incident: None,
        author: "oncall".into(),
        kind: tidemark_core::event::NoteKind::Observation,
        text: "poison incoming".into(),
        links: vec![],
        check_keys: vec![],
    };
    let (noted, outcome) = producer(&js)
        .publish_payload(
            "test",
            "alpha",
            tidemark_core::Timestamp::from_unix_secs(1_772_409_600),
            tidemark_core::Payload::NoteAdded(note),
        )
        .await;
    assert_eq!(outcome, Published::Stored { seq: 5 });
    // Straight onto a subject of the stream, no producer library: raw bytes and a bad event.
    let jsr = tidemark_nats::connect::jetstream_context(client);
    jsr.publish(
        "tidemark.events.alpha.cycle_completed",
        vec![0xff, 0xfe, 0x00].into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    jsr.publish(
        "tidemark.events.alpha.note_added",
        r#"{"id":"no-type","schema":1}"#.into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    producer(&js).publish_all(good[5..].to_vec()).await;
    wait_caught_up(&follower, &store, 12, Duration::from_secs(30)).await;
    // Counters are settled when the follower stops (the checkpoint moves at commit time).
    let status = follower.status_handle();
    follower.stop().await;
    let status = status.lock().unwrap().clone();

    assert_eq!(status.since_start.quarantined, 2);
    let quarantine = store.quarantine(1, 10).unwrap();
    assert_eq!(quarantine.len(), 2);
    assert!(
        quarantine[0].record.origin.contains("seq 6"),
        "{:?}",
        quarantine[0].record.origin
    );
    assert!(
        quarantine[0].record.reason.contains("not valid UTF-8"),
        "{}",
        quarantine[0].record.reason
    );
    assert_eq!(quarantine[0].record.raw_bytes, 3);
    assert!(quarantine[1].record.origin.contains("seq 7"));
    assert!(
        quarantine[1]
            .record
            .reason
            .contains("event \"no-type\": field `type`: missing"),
        "{}",
        quarantine[1].record.reason
    );
    let ids = assert_consistent(&store);
    assert_eq!(
        ids.len(),
        10,
        "the good events around the poison were applied"
    );
    assert!(
        ids.contains(&noted.id.0),
        "the typed helper's event was applied"
    );
    assert_eq!(store.checkpoint(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_followers_of_one_stream_end_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let config = nats_config(&server.url(), 1);
    let js = jetstream(&config).await;
    let first = open_store(dir.path(), "first.redb");
    let second = open_store(dir.path(), "second.redb");
    let follower_one = follow(&first, &js);
    let all = events("two", 0, 8_000);
    producer(&js).publish_all(all[..4_000].to_vec()).await;
    // The second replica starts late and catches up.
    let follower_two = follow(&second, &js);
    producer(&js).publish_all(all[4_000..].to_vec()).await;
    let last = last_seq(&js, "TIDEMARK").await;
    wait_caught_up(&follower_one, &first, last, Duration::from_secs(60)).await;
    wait_caught_up(&follower_two, &second, last, Duration::from_secs(60)).await;
    follower_one.stop().await;
    follower_two.stop().await;
    let bytes = |store: &Arc<tidemark_store::Store>| {
        serde_json::to_vec(&store.projection_snapshot()).unwrap()
    };
    assert_eq!(bytes(&first), bytes(&second));
    assert_eq!(first.findings(), second.findings());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_stream_is_detected_and_republishing_restores_every_event() {
    let Replica {
        dir,
        server: _server,
        config,
        js,
        store,
        follower,
    } = single_node_replica().await;
    let before = events("old", 0, 300);
    producer(&js).publish_all(before.clone()).await;
    wait_caught_up(&follower, &store, 300, Duration::from_secs(30)).await;

    // The stream is reset under the running follower (as a lost or rebuilt stream would be),
    // and producers go on publishing into the new one.
    assert!(js.delete_stream("TIDEMARK").await.unwrap().success);
    tidemark_nats::ensure_stream(&js, &config.stream)
        .await
        .unwrap();
    let after = events("new", 0, 20);
    producer(&js).publish_all(after.clone()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let reason = loop {
        if let Some(reason) = follower.status().diverged {
            break reason;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "divergence not detected: {:?}",
            follower.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reason.contains("republish"), "{reason}");
    assert_eq!(
        store.checkpoint(),
        300,
        "nothing of the new stream was applied over the old positions"
    );
    follower.stop().await;

    // `tidemark republish --from 1` from this replica restores what the stream lost (ids kept,
    // so running it twice is harmless); a replica rebuilt from the stream has every event.
    for _ in 0..2 {
        let stored: Vec<Event> = store
            .events(1, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(_, s)| s.event)
            .collect();
        let results = producer(&js).publish_all(stored).await;
        assert!(
            results
                .iter()
                .all(|r| !matches!(r, Published::Failed { .. } | Published::Unknown { .. }))
        );
    }
    let rebuilt = open_store(dir.path(), "rebuilt.redb");
    let follower = follow(&rebuilt, &js);
    let last = last_seq(&js, "TIDEMARK").await;
    assert_eq!(last, 320);
    wait_caught_up(&follower, &rebuilt, last, Duration::from_secs(30)).await;
    follower.stop().await;
    let ids: BTreeSet<String> = assert_consistent(&rebuilt).into_iter().collect();
    assert!(before.iter().chain(&after).all(|e| ids.contains(&e.id.0)));
}

/// A server with `count` events stored, and a follower whose connection goes through a relay
/// that holds back the answer to its first fetch until async-nats gives up on that fetch (its
/// own timer, `fetch_wait` + 5 s), as a loaded machine does. The server delivered the batch;
/// with no acks its consumer has moved past it; the client drops it on arrival.
async fn replica_whose_first_fetch_is_dropped(
    count: usize,
    check_every: Duration,
) -> (
    tempfile::TempDir,
    NatsServer,
    HoldingProxy,
    tidemark_nats::connect::JetStreamContext,
    Arc<tidemark_store::Store>,
    tidemark_nats::FollowerHandle,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let js = jetstream(&nats_config(&server.url(), 1)).await;
    let results = producer(&js).publish_all(events("held", 0, count)).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Published::Stored { .. }))
    );
    let proxy = HoldingProxy::start(server.port);
    let client = tidemark_nats::connect(&nats_config(&proxy.url(), 1), "held-follower")
        .await
        .unwrap();
    let follower_js = tidemark_nats::connect::jetstream_context(client);
    let store = open_store(dir.path(), "replica.redb");
    let follower = tidemark_nats::spawn_follower(
        store.clone(),
        follower_js,
        FollowerConfig {
            check_every,
            ..FollowerConfig::default()
        },
    );
    proxy.wait_released(Duration::from_secs(60)).await;
    (dir, server, proxy, js, store, follower)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_dropped_by_a_fetch_cut_short_are_fetched_again_before_later_ones_are_stored() {
    // No periodic check in this test: only the delivery numbers can reveal the gap.
    let (_dir, _server, _proxy, js, store, follower) =
        replica_whose_first_fetch_is_dropped(200, Duration::from_secs(3_600)).await;
    // Later events: a follower that skipped the dropped deliveries stores these at 201..=300
    // and its checkpoint passes positions 1..=200, never stored.
    producer(&js).publish_all(events("held", 200, 100)).await;
    wait_caught_up(&follower, &store, 300, Duration::from_secs(120)).await;
    follower.stop().await;
    let ids: BTreeSet<String> = assert_consistent(&store).into_iter().collect();
    let missing: Vec<String> = events("held", 0, 300)
        .into_iter()
        .map(|e| e.id.0)
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} events of the stream were skipped (first {:?})",
        missing.len(),
        missing.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_last_fetch_is_noticed_from_the_consumers_count_and_fetched_again() {
    // Nothing is published after the dropped fetch: no later delivery reveals the gap, only the
    // consumer's count of what it delivered does (checked with the stream, every 500 ms here).
    let (_dir, _server, _proxy, _js, store, follower) =
        replica_whose_first_fetch_is_dropped(200, Duration::from_millis(500)).await;
    wait_caught_up(&follower, &store, 200, Duration::from_secs(120)).await;
    follower.stop().await;
    assert_eq!(assert_consistent(&store).len(), 200);
}

/// Publishes `payload` with the producer's own `Nats-Msg-Id`, as any NATS client may.
async fn publish_with_own_msg_id(
    js: &tidemark_nats::connect::JetStreamContext,
    subject: &str,
    msg_id: &str,
    payload: Vec<u8>,
) -> u64 {
    let message = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(msg_id);
    let ack = js
        .send_publish(subject.to_owned(), message)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(!ack.duplicate, "{msg_id} is new to the stream");
    ack.sequence
}

/// Waits until the follower applied the stream up to `last_seq`, failing at once if it
/// diverges instead.
async fn wait_applied_without_diverging(
    follower: &tidemark_nats::FollowerHandle,
    store: &tidemark_store::Store,
    last_seq: u64,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.checkpoint() < last_seq {
        let status = follower.status();
        assert_eq!(status.diverged, None, "the replica halted");
        assert!(
            std::time::Instant::now() < deadline,
            "follower stuck at {} of {last_seq}: {status:?}",
            store.checkpoint()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producers_own_msg_ids_never_halt_a_replica_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let config = nats_config(&server.url(), 1);
    let js = jetstream(&config).await;
    let store = open_store(dir.path(), "replica.redb");
    let subject = "tidemark.events.alpha.cycle_completed";
    let own = events("payload-id", 0, 30);
    // Header ids unrelated to the payload ids, a payload that is no event, and an event id
    // repeated under a new header id (new to the stream's dedupe, a repeat for the store's).
    for (i, event) in own[..20].iter().enumerate() {
        let payload = tidemark_core::encode_event(event).into_bytes();
        publish_with_own_msg_id(&js, subject, &format!("header-id-{i}"), payload).await;
    }
    publish_with_own_msg_id(&js, subject, "header-id-poison", b"\xff\xfe".to_vec()).await;
    let repeated = tidemark_core::encode_event(&own[3]).into_bytes();
    let last = publish_with_own_msg_id(&js, subject, "header-id-again", repeated).await;
    assert_eq!(last, 22);

    let follower = follow(&store, &js);
    wait_applied_without_diverging(&follower, &store, last).await;
    // Several divergence checks (every 500 ms here) and a restart, whose session starts with
    // one: later events must still be applied.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let first = follower.status_handle();
    follower.stop().await;
    let first = first.lock().unwrap().clone();
    assert_eq!(first.diverged, None, "the replica halted");
    assert_eq!(
        first.since_start,
        tidemark_nats::MessageCounts {
            applied: 20,
            duplicates: 1,
            quarantined: 1
        }
    );
    let follower = follow(&store, &js);
    let mut last = 0;
    for (i, event) in own[20..].iter().enumerate() {
        let payload = tidemark_core::encode_event(event).into_bytes();
        last =
            publish_with_own_msg_id(&js, subject, &format!("header-id-{}", i + 20), payload).await;
    }
    wait_applied_without_diverging(&follower, &store, last).await;
    let status = follower.status_handle();
    follower.stop().await;
    let status = status.lock().unwrap().clone();
    assert_eq!(status.diverged, None);
    assert_eq!(status.since_start.applied, 10, "{status:?}");

    let ids = assert_consistent(&store);
    assert_eq!(
        ids,
        own.iter().map(|e| e.id.0.clone()).collect::<Vec<_>>(),
        "every event once, by its payload id"
    );
    let quarantine = store.quarantine(1, 10).unwrap();
    assert_eq!(quarantine.len(), 1);
    assert!(
        quarantine[0].record.origin.contains(
            r#"seq 21 subject tidemark.events.alpha.cycle_completed Nats-Msg-Id "header-id-poison""#
        ),
        "{}",
        quarantine[0].record.origin
    );
    assert_eq!(store.checkpoint(), 32);
}
