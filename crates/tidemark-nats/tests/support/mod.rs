//! Shared test support: nats-server processes, event generators, waiting for followers.

#![allow(dead_code)]

pub mod holding_proxy;
pub mod nats_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_core::{Event, decode_event};
use tidemark_nats::connect::JetStreamContext;
use tidemark_nats::{FollowerConfig, FollowerHandle, NatsAuth, NatsConfig, StreamSettings};
use tidemark_store::{Store, StoreConfig};

/// A deterministic stream of events over three clusters, findings coming and going, with
/// ids `{prefix}-{i}`.
pub fn events(prefix: &str, from: usize, count: usize) -> Vec<Event> {
    (from..from + count)
        .map(|i| {
            let cluster = ["alpha", "beta", "gamma"][i % 3];
            let time = format!("2026-03-02T{:02}:{:02}:{:02}Z", (i / 3600) % 24, (i / 60) % 60, i % 60);
            let json = if i % 17 == 5 {
                format!(r#"{{"id":"{prefix}-{i}","schema":1,"type":"finding.resolved","time":"{time}","source":"oncall","cluster":"{cluster}","data":{{"check_key":"k{}","kind":"manual"}}}}"#, i % 7)
            } else {
                let findings: Vec<String> = (0..7)
                    .filter(|k| (i / 3 + k * 5) % 3 != 0)
                    .map(|k| format!(r#"{{"check_key":"k{k}","category":"c{}","severity":"error","title":"k{k} broken"}}"#, k % 2))
                    .collect();
                format!(
                    r#"{{"id":"{prefix}-{i}","schema":1,"type":"cycle.completed","time":"{time}","source":"probe","cluster":"{cluster}","data":{{"cycle":"{i}","categories":["c0","c1"],"findings":[{}]}}}}"#,
                    findings.join(",")
                )
            };
            decode_event(&json).unwrap()
        })
        .collect()
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=async_nats=debug`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub fn nats_config(urls: &str, replicas: usize) -> NatsConfig {
    init_logs();
    NatsConfig {
        servers: urls.to_owned(),
        auth: NatsAuth::default(),
        stream: StreamSettings {
            replicas,
            ..StreamSettings::default()
        },
    }
}

/// Connects and provisions the stream, retrying while a cluster elects its leaders.
pub async fn jetstream(config: &NatsConfig) -> JetStreamContext {
    let client = tidemark_nats::connect(config, "test").await.unwrap();
    let js = tidemark_nats::connect::jetstream_context(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tidemark_nats::ensure_stream(&js, &config.stream).await {
            Ok(_) => return js,
            Err(e) if Instant::now() < deadline => {
                eprintln!("stream not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

pub fn open_store(dir: &std::path::Path, name: &str) -> Arc<Store> {
    Arc::new(
        Store::open(
            dir.join(name),
            StoreConfig {
                snapshot_every: 500,
                snapshot_keep_every: 5_000,
                ..StoreConfig::default()
            },
        )
        .unwrap(),
    )
}

pub fn follow(store: &Arc<Store>, js: &JetStreamContext) -> FollowerHandle {
    tidemark_nats::spawn_follower(
        store.clone(),
        js.clone(),
        FollowerConfig {
            check_every: Duration::from_millis(500),
            ..FollowerConfig::default()
        },
    )
}

/// Waits until the follower has applied the stream up to `last_seq`.
pub async fn wait_caught_up(
    follower: &FollowerHandle,
    store: &Store,
    last_seq: u64,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while store.checkpoint() < last_seq {
        assert!(
            Instant::now() < deadline,
            "follower stuck at {} of {last_seq}: {:?}",
            store.checkpoint(),
            follower.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream's last sequence.
pub async fn last_seq(js: &JetStreamContext, stream: &str) -> u64 {
    js.get_stream(stream)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .last_sequence
}

/// Every stored event's id once, and the restored projection equal to a fresh fold.
pub fn assert_consistent(store: &Store) -> Vec<String> {
    let stored = store.events(1, usize::MAX).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for (seq, e) in &stored {
        assert!(
            ids.insert(e.event.id.0.clone()),
            "{} stored twice (again at {seq})",
            e.event.id
        );
    }
    assert_eq!(
        store.projection_snapshot(),
        store.fold_log(|_, _| {}).unwrap().snapshot()
    );
    stored.into_iter().map(|(_, e)| e.event.id.0).collect()
}

/// A single durable nats-server with the stream, and one replica following it.
pub struct Replica {
    /// Holds the server's and the store's files (dropped last).
    pub dir: tempfile::TempDir,
    pub server: nats_server::NatsServer,
    pub config: NatsConfig,
    pub js: JetStreamContext,
    pub store: Arc<Store>,
    pub follower: FollowerHandle,
}

/// Starts a server, provisions the stream and starts a replica's follower.
pub async fn single_node_replica() -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let server = nats_server::NatsServer::single(dir.path());
    let config = nats_config(&server.url(), 1);
    let js = jetstream(&config).await;
    let store = open_store(dir.path(), "replica.redb");
    let follower = follow(&store, &js);
    Replica {
        dir,
        server,
        config,
        js,
        store,
        follower,
    }
}
