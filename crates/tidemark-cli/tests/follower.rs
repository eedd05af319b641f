//! `tidemark serve --nats` killed with SIGKILL at random moments while it catches up on a
//! stream: every restart resumes from its checkpoint, and each event is applied exactly once.

#[path = "../../tidemark-nats/tests/support/nats_server.rs"]
mod nats_server;
mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nats_server::NatsServer;
use tidemark_nats::{NatsAuth, NatsConfig, Producer, ProducerConfig, Published, StreamSettings};
use tidemark_store::{Store, StoreConfig};

fn start_replica(db: &std::path::Path, nats: &str) -> (Child, String) {
    let db = db.to_str().unwrap();
    support::spawn_server(&[
        "serve",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--nats",
        nats,
        "--snapshot-every",
        "300",
    ])
}

fn checkpoint_of(db: &std::path::Path) -> u64 {
    Store::open(db, StoreConfig::default())
        .unwrap()
        .checkpoint()
}

#[test]
fn sigkilled_follower_resumes_from_its_checkpoint_exactly_once() {
    let kills: usize = std::env::var("TIDEMARK_FOLLOWER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::single(dir.path());
    let total = 30_000usize;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = NatsConfig { servers: server.url(), auth: NatsAuth::default(), stream: StreamSettings::default() };
        let client = tidemark_nats::connect(&config, "test").await.unwrap();
        let js = tidemark_nats::connect::jetstream_context(client);
        tidemark_nats::ensure_stream(&js, &config.stream).await.unwrap();
        let producer = Producer::new(js, ProducerConfig::default());
        let lines = (0..total).map(|i| {
            format!(
                r#"{{"id":"f-{i}","schema":1,"type":"cycle.completed","time":"2026-03-02T10:{:02}:{:02}Z","source":"p","cluster":"c{}","data":{{"cycle":"{i}","categories":["pods"],"findings":[{{"check_key":"k{}","category":"pods","severity":"error","title":"t"}}]}}}}"#,
                (i / 60) % 60, i % 60, i % 5, i % 9
            )
        });
        let events: Vec<_> = lines.map(|l| tidemark_core::decode_event(&l).unwrap()).collect();
        let results = producer.publish_all(events).await;
        assert!(results.iter().all(|r| matches!(r, Published::Stored { .. })));
    });

    let db = dir.path().join("replica.redb");
    let mut seed = std::process::id() as u64;
    let mut interrupted = 0;
    for kill in 0..kills {
        let (mut child, _) = start_replica(&db, &server.url());
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(150 + (seed >> 33) % 400);
        std::thread::sleep(wait);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let checkpoint = checkpoint_of(&db);
        eprintln!("kill {kill}: after {wait:?}, checkpoint {checkpoint}");
        if checkpoint < total as u64 {
            interrupted += 1;
        }
    }
    assert!(
        interrupted >= 3,
        "the kills must land while the replica catches up (only {interrupted} did)"
    );

    // One last run to the end, then a graceful stop.
    let (mut child, base) = start_replica(&db, &server.url());
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut response = agent.get(&format!("{base}/readyz")).call().unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        if body["follower"]["checkpoint"] == total && response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());

    let store = Store::open(&db, StoreConfig::default()).unwrap();
    let stored = store.events(1, usize::MAX).unwrap();
    assert_eq!(stored.len(), total, "every stream message applied once");
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, (seq, e))| *seq == i as u64 + 1 && e.event.id.0 == format!("f-{i}"))
    );
    assert_eq!(
        store.projection_snapshot(),
        store.fold_log(|_, _| {}).unwrap().snapshot()
    );
}
