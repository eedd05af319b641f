//! The distributed path, measured in one run on one machine: acked publish throughput into
//! JetStream, the raw drain rate of the stream (ordered consumer, no work), and Tidemark's
//! follow-and-commit rate of the same stream into a redb replica, with their ratio.
//!
//! `cargo bench -p tidemark-benches --bench nats` (`TIDEMARK_BENCH_EVENTS` to change the size).

#[path = "../../crates/tidemark-nats/tests/support/nats_server.rs"]
mod nats_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use tidemark_benches::small_cycles;
use tidemark_core::encode_event;
use tidemark_nats::{
    FollowerConfig, NatsAuth, NatsConfig, Producer, ProducerConfig, StreamSettings,
};
use tidemark_store::{Store, StoreConfig};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, so stay tiny there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::var("TIDEMARK_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 2_000 } else { 100_000 });
    let dir = tempfile::tempdir().expect("temp dir");
    let server = nats_server::NatsServer::single(dir.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = NatsConfig {
            servers: server.url(),
            auth: NatsAuth::default(),
            stream: StreamSettings::default(),
        };
        let client = tidemark_nats::connect(&config, "bench")
            .await
            .expect("connect");
        let js = tidemark_nats::connect::jetstream_context(client);
        tidemark_nats::ensure_stream(&js, &config.stream)
            .await
            .expect("stream");
        let events = small_cycles(100, 20, 10, count, 3);
        let bytes: usize = events.iter().map(|e| encode_event(e).len()).sum();

        // 1. Acked publishes (durable: the server fsyncs before acking, sync_interval: always).
        let producer = Producer::new(
            js.clone(),
            ProducerConfig {
                max_in_flight: 4_096,
                ..ProducerConfig::default()
            },
        );
        let started = Instant::now();
        for round in events.chunks(20_000) {
            let results = producer.publish_all(round.to_vec()).await;
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, tidemark_nats::Published::Stored { .. }))
            );
        }
        let publish = started.elapsed();

        // 2. Raw drain: an ordered consumer reading every message, doing nothing with it.
        let stream = js.get_stream("TIDEMARK").await.expect("stream");
        let started = Instant::now();
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut drained = 0;
        while drained < count {
            if let Some(Ok(message)) = messages.next().await {
                std::hint::black_box(message.payload.len());
                drained += 1;
            }
        }
        let drain = started.elapsed();

        // 3. Follow and commit: decode, quarantine check, store at stream sequences with every
        //    index and the findings projection, durable commits.
        let store = Arc::new(
            Store::open(dir.path().join("replica.redb"), StoreConfig::default()).expect("store"),
        );
        let started = Instant::now();
        let follower =
            tidemark_nats::spawn_follower(store.clone(), js.clone(), FollowerConfig::default());
        while store.checkpoint() < count as u64 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let follow = started.elapsed();
        follower.stop().await;

        let rate = |d: Duration| count as f64 / d.as_secs_f64();
        println!(
            "events: {count} cycle events of 10 findings, {:.0} B each on average (JSON)",
            bytes as f64 / count as f64
        );
        println!("{:<44} {:>12} {:>10}", "measurement", "events/s", "seconds");
        let fsync = if std::env::var_os("TIDEMARK_NATS_LAZY_FSYNC").is_some() {
            "lazy fsync"
        } else {
            "fsync always"
        };
        println!(
            "{:<44} {:>12.0} {:>10.2}",
            format!("acked publish (4,096 in flight, {fsync})"),
            rate(publish),
            publish.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.0} {:>10.2}",
            "raw drain (ordered consumer, no work)",
            rate(drain),
            drain.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.0} {:>10.2}",
            "tidemark follow-and-commit (redb replica)",
            rate(follow),
            follow.as_secs_f64()
        );
        println!(
            "follow-and-commit / raw drain = {:.1}%",
            100.0 * rate(follow) / rate(drain)
        );
    });
}
