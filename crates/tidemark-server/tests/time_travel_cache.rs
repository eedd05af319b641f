//! Time travel's kept states (`--time-travel-cache`): a point asked again is answered from the
//! kept state, a later position is folded forward from the latest kept state before it when no
//! snapshot is nearer, and a kept state gives its slot up when another point needs it. Every
//! answer equals the one rebuilt without the cache. Through the router, over a real store.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tidemark_server::{AppState, AuthPolicy, Ingest, TimeTravel, TimeTravelConfig, Writer, router};
use tidemark_store::{Store, StoreConfig};
use tower::ServiceExt;

fn app(store: &Arc<Store>, ingest: Ingest, time_travel: Arc<TimeTravel>) -> Router {
    router(AppState {
        stream: tidemark_server::StreamHub::for_store(store, Default::default()),
        store: store.clone(),
        ingest,
        max_body_bytes: 1 << 20,
        limits: Default::default(),
        auth: AuthPolicy::Open,
        bridge: Default::default(),
        otlp: Default::default(),
        metrics: Default::default(),
        time_travel,
    })
}

async fn call(app: &Router, method: &str, uri: &str, body: String) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if method == "POST" {
        request = request.header("content-type", "application/x-ndjson");
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn limiter(max_concurrent: usize, cache: usize) -> Arc<TimeTravel> {
    Arc::new(TimeTravel::new(TimeTravelConfig {
        max_concurrent,
        max_queued: 4,
        max_wait: Duration::from_secs(600),
        cache,
    }))
}

/// Two routers over one store holding the schema-rename outage (56 events, a snapshot every
/// 8): one with kept states, one without.
async fn outage(max_concurrent: usize) -> (Router, Router, Arc<TimeTravel>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        snapshot_every: 8,
        snapshot_keep_every: 8,
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path().join("t.redb"), config).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    let (_plain_writer, plain_client) = Writer::spawn(store.clone(), 16, 1024);
    let cached = limiter(max_concurrent, 1);
    let with_cache = app(&store, Ingest::Local(client), cached.clone());
    let without = app(&store, Ingest::Local(plain_client), limiter(2, 0));
    let log = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../replay/schema-rename-outage/events.ndjson"),
    )
    .unwrap();
    // One event per batch: a snapshot lands at every 8th position.
    for line in log.lines() {
        let (status, text) = call(&with_cache, "POST", "/v1/events", line.to_owned()).await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    (with_cache, without, cached, dir)
}

/// The answers of `path` at `at` from both routers, which must agree.
async fn same_answer(with_cache: &Router, without: &Router, path: &str, at: u64) {
    let uri = format!("{path}?at={at}");
    let (status, cached) = call(with_cache, "GET", &uri, String::new()).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {cached}");
    let (status, plain) = call(without, "GET", &uri, String::new()).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {plain}");
    assert_eq!(cached, plain, "{uri}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_states_answer_again_and_fold_forward_with_the_same_answers() {
    let (with_cache, without, limiter, _dir) = outage(2).await;
    // A position between snapshots (8 and 16): rebuilt from snapshot 8, then kept.
    same_answer(&with_cache, &without, "/v1/findings", 11).await;
    let counts = limiter.counts();
    assert_eq!(
        (counts.rebuilds, counts.cached, counts.cache_hits),
        (1, 1, 0)
    );
    // Asked again after its reader let go: answered from the kept state, no rebuild.
    same_answer(&with_cache, &without, "/v1/incidents", 11).await;
    let counts = limiter.counts();
    assert_eq!((counts.rebuilds, counts.cache_hits), (1, 1), "{counts:?}");
    // A later position with no snapshot in between (the next is 16): folded forward from the
    // kept state at 11.
    same_answer(&with_cache, &without, "/v1/findings", 15).await;
    let counts = limiter.counts();
    assert_eq!(
        (counts.rebuilds, counts.folded_from_cache),
        (2, 1),
        "{counts:?}"
    );
    // A snapshot (40) is nearer than the kept state (15): rebuilt from the snapshot.
    same_answer(&with_cache, &without, "/v1/findings", 43).await;
    let counts = limiter.counts();
    assert_eq!(
        (counts.rebuilds, counts.folded_from_cache),
        (3, 1),
        "{counts:?}"
    );
    // An earlier position cannot start from a later state.
    same_answer(&with_cache, &without, "/v1/incidents", 3).await;
    let counts = limiter.counts();
    assert_eq!(
        (counts.rebuilds, counts.folded_from_cache),
        (4, 1),
        "{counts:?}"
    );
    // One kept state at most (--time-travel-cache 1), holding one of the two slots.
    assert_eq!((counts.cached, counts.states), (1, 1), "{counts:?}");
    // Every position, in an order that mixes both ways of rebuilding, answers as without.
    for at in [20, 21, 29, 30, 31, 56, 55, 1, 2, 9] {
        same_answer(&with_cache, &without, "/v1/findings", at).await;
        same_answer(&with_cache, &without, "/v1/orphans", at).await;
    }
    assert!(limiter.counts().folded_from_cache > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_state_gives_its_slot_to_another_point() {
    // One slot: the kept state holds it until another point needs it.
    let (with_cache, without, limiter, _dir) = outage(1).await;
    same_answer(&with_cache, &without, "/v1/findings", 11).await;
    assert_eq!(limiter.counts().states, 1);
    same_answer(&with_cache, &without, "/v1/findings", 13).await;
    let counts = limiter.counts();
    // Evicted for its slot (not refused, not waited for), so it could not be the base.
    assert_eq!(
        (
            counts.evicted,
            counts.refused,
            counts.waits,
            counts.folded_from_cache,
            counts.cached
        ),
        (1, 0, 0, 0, 1),
        "{counts:?}"
    );
}
