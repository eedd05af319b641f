//! The router's limits and guards (issue 14), over a real store and the real writer, no socket:
//! bounded metrics labels, bounded and shared time travel, and the rules that keep a browser's
//! cookie from writing (timeouts and connection limits are tested over real sockets in
//! `crates/tidemark-cli/tests/serve.rs`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tidemark_server::{
    AppState, AuthPolicy, Ingest, TimeTravel, TimeTravelConfig, Tokens, Writer, router,
};
use tidemark_store::{Store, StoreConfig};
use tower::ServiceExt;

const READ_TOKEN: &str = "reader-0123456789abcdef";
const WRITE_TOKEN: &str = "writer-0123456789abcdef";

struct Harness {
    app: Router,
    _dir: tempfile::TempDir,
}

fn tokens() -> AuthPolicy {
    let mut tokens = Tokens::none();
    tokens
        .add_env_value("test", &format!("read:{READ_TOKEN},write:{WRITE_TOKEN}"))
        .unwrap();
    AuthPolicy::Tokens(Arc::new(tokens))
}

fn harness(auth: AuthPolicy) -> Harness {
    harness_with(auth, Arc::new(TimeTravel::default()))
}

fn harness_with(auth: AuthPolicy, time_travel: Arc<TimeTravel>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("l.redb"), StoreConfig::default()).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store,
            ingest: Ingest::Local(client),
            max_body_bytes: 1 << 20,
            auth,
            bridge: Default::default(),
            otlp: Default::default(),
            limits: Default::default(),
            metrics: Default::default(),
            time_travel,
        }),
        _dir: dir,
    }
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    async fn metrics(&self) -> String {
        let request = Request::get("/metrics")
            .header("authorization", format!("Bearer {READ_TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, text) = self.send(request).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        text
    }
}

/// SplitMix64, seeded, so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn word(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

/// The label sets of a metric family in an exposition.
fn series(text: &str, family: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{family}{{")))
        .filter_map(|line| line.split_once('}').map(|(labels, _)| labels.to_owned()))
        .collect()
}

#[tokio::test]
async fn random_methods_and_paths_without_a_token_leave_metrics_bounded() {
    let seed = std::env::var("TIDEMARK_METRICS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14_08);
    println!("TIDEMARK_METRICS_SEED={seed}");
    let h = harness(tokens());
    let before = h.metrics().await.len();
    let mut rng = Rng(seed);
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_!";
    let path = b"abcdefghijklmnopqrstuvwxyz0123456789-._~%";
    let routes = ["/v1/findings", "/v1/events", "/metrics", "/v1/incidents/x"];
    for i in 0..1_000 {
        let method = match i % 4 {
            1 => ["GET", "POST", "DELETE", "PATCH"][(rng.next() % 4) as usize].to_owned(),
            _ => {
                let len = 1 + (rng.next() % 20) as usize;
                rng.word(upper, len)
            }
        };
        let uri = if i % 3 == 0 {
            routes[(rng.next() % routes.len() as u64) as usize].to_owned()
        } else {
            format!("/{}/{}", rng.word(path, 8), rng.word(path, 12))
        };
        let request = Request::builder()
            .method(method.as_str())
            .uri(uri.as_str())
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = h.send(request).await;
        assert!(status.is_client_error(), "{method} {uri}: {status}");
    }
    let text = h.metrics().await;
    let requests = series(&text, "tidemark_http_requests_total");
    let methods: BTreeSet<&str> = requests
        .iter()
        .filter_map(|labels| labels.split("method=\"").nth(1)?.split('"').next())
        .collect();
    let known = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
    ];
    let unknown: Vec<&&str> = methods.iter().filter(|m| !known.contains(m)).collect();
    assert!(
        unknown.is_empty(),
        "method labels come from a fixed set, but {} do not, e.g. {:?}",
        unknown.len(),
        &unknown[..unknown.len().min(5)]
    );
    // Methods (5 seen) × routes (5 + unmatched) × statuses (401, 404, 405): far below the
    // thousand label sets the requests would make if labels were what clients send.
    assert!(requests.len() <= 60, "{} series", requests.len());
    let durations = series(&text, "tidemark_http_request_duration_seconds_bucket");
    assert!(durations.len() <= 13 * 6, "{} series", durations.len());
    assert!(
        text.len() < before + 32 * 1024,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
}

fn note(id: &str) -> String {
    serde_json::json!({"id": id, "schema": 1, "type": "note.added", "time": "2026-03-02T15:00:00Z",
        "source": "me", "cluster": "pw-prod", "data": {"author": "me", "kind": "observation", "text": "x"}})
    .to_string()
}

/// A POST of `body` with these headers (name, value).
fn post(uri: &str, headers: &[(&str, &str)], body: String) -> Request<Body> {
    let mut request = Request::post(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(body)).unwrap()
}

impl Harness {
    /// How many events the store holds (read with the read token).
    async fn stored(&self) -> usize {
        let request = Request::get("/v1/events")
            .header("authorization", format!("Bearer {READ_TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, text) = self.send(request).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let page: serde_json::Value = serde_json::from_str(&text).unwrap();
        page["events"].as_array().unwrap().len()
    }
}

#[tokio::test]
async fn a_cookie_never_writes_so_a_cross_site_post_with_it_stores_nothing() {
    let h = harness(tokens());
    let cookie = format!("theme=dark; tidemark_token={WRITE_TOKEN}");
    // What a page on another site can make a browser send: text/plain, a form, no content
    // type, and (with a preflight this server never grants) JSON; each with the cookie.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
        Some("application/json"),
    ] {
        let mut headers = vec![
            ("cookie", cookie.as_str()),
            ("origin", "https://evil.example"),
        ];
        headers.extend(content_type.map(|ct| ("content-type", ct)));
        let (status, _, text) = h.send(post("/v1/events", &headers, note("csrf"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{content_type:?}: {text}");
        assert!(text.contains("Authorization: Bearer"), "{text}");
    }
    let (status, _, text) = h
        .send(post(
            "/v1/bridges/alertmanager",
            &[("cookie", &cookie), ("content-type", "application/json")],
            "{}".into(),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(h.stored().await, 0, "nothing the cookie sent was stored");
    // Administration needs the header too; reading with the cookie still works.
    let get = |uri: &str| {
        Request::get(uri)
            .header("cookie", &cookie)
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, _) = h.send(get("/v1/admin/backup")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, text) = h.send(get("/v1/findings")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // The header with the same token writes.
    let bearer = format!("Bearer {WRITE_TOKEN}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, _, text) = h.send(post("/v1/events", &headers, note("ok"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(h.stored().await, 1);
}

#[tokio::test]
async fn post_bodies_must_be_json_or_ndjson_and_others_get_415_naming_what_to_send() {
    // Without tokens (loopback), the content type is what stops a cross-site POST.
    let h = harness(AuthPolicy::Open);
    for content_type in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json-seq"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        let (status, _, text) = h.send(post("/v1/events", &headers, note("refused"))).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {text}"
        );
        let error: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["code"], "unsupported_media_type");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("application/json") && message.contains("application/x-ndjson"),
            "{message}"
        );
        let (status, _, text) = h
            .send(post("/v1/bridges/alertmanager", &headers, "{}".into()))
            .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {text}"
        );
    }
    assert_eq!(h.stored().await, 0);
    let lines = format!("{}\n{}\n", note("l1"), note("l2"));
    for (content_type, body) in [
        ("application/json", note("j1")),
        (
            "Application/JSON; charset=utf-8",
            format!("[{}]", note("j2")),
        ),
        ("application/x-ndjson", lines),
    ] {
        let (status, _, text) = h
            .send(post("/v1/events", &[("content-type", content_type)], body))
            .await;
        assert_eq!(status, StatusCode::OK, "{content_type}: {text}");
    }
    assert_eq!(h.stored().await, 4);
    // Other methods on the path are still 405, whatever they carry.
    let request = Request::put("/v1/events")
        .header("content-type", "text/plain")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = h.send(request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A GET with the read token.
fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {READ_TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_states_are_bounded_shared_for_one_position_and_refused_with_retry_after() {
    // One past state at a time, no waiting line; every rebuild waits for the test to release
    // it, so what is concurrent is decided here, not by timing.
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (release_tx, release) = std::sync::mpsc::channel::<()>();
    let release = std::sync::Mutex::new(release);
    let time_travel = Arc::new(
        TimeTravel::new(TimeTravelConfig {
            max_concurrent: 1,
            max_queued: 0,
            max_wait: std::time::Duration::from_secs(600),
            // Kept states are tested on their own below.
            cache: 0,
        })
        .with_rebuild_hook(Arc::new(move |at| {
            started_tx.send(at).unwrap();
            release.lock().unwrap().recv().unwrap();
        })),
    );
    let h = Arc::new(harness_with(tokens(), time_travel.clone()));
    let bearer = format!("Bearer {WRITE_TOKEN}");
    let lines: Vec<String> = (0..10).map(|i| note(&format!("n{i}"))).collect();
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/x-ndjson"),
    ];
    let (status, _, text) = h.send(post("/v1/events", &headers, lines.join("\n"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");

    let spawn_get = |uri: &'static str| {
        let h = h.clone();
        tokio::spawn(async move { h.send(get(uri)).await })
    };
    let first = spawn_get("/v1/findings?at=5");
    let at = tokio::time::timeout(std::time::Duration::from_secs(60), started.recv())
        .await
        .expect("the request went through the time travel limiter")
        .unwrap();
    assert_eq!(at, tidemark_store::At::Seq(5));
    // Requests for the same position wait for that rebuild instead of starting their own.
    let same: Vec<_> = [
        "/v1/incidents?at=5",
        "/v1/flaps?at=5",
        "/v1/stuck?at=5",
        "/?at=5",
    ]
    .into_iter()
    .map(spawn_get)
    .collect();
    while time_travel.counts().shared < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Another position finds the one slot taken and no place in line: 503 at once, saying
    // when to retry; for the API, the pages and the postmortem alike.
    for uri in [
        "/v1/findings?at=6",
        "/v1/orphans?at=7",
        "/orphans?at=7",
        "/v1/incidents/x/postmortem?at=8",
    ] {
        let (status, headers, text) = h.send(get(uri)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}: {text}");
        assert_eq!(
            headers.get("retry-after").map(|v| v.to_str().unwrap()),
            Some("600"),
            "{uri}: {text}"
        );
        let error: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["code"], "time_travel_busy", "{uri}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("--max-time-travel"),
            "{text}"
        );
    }
    // The current state is not time travel: answered while the slot is taken.
    let (status, _, _) = h.send(get("/v1/findings")).await;
    assert_eq!(status, StatusCode::OK);

    release_tx.send(()).unwrap();
    let (status, _, text) = first.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["seq"], 5);
    for request in same {
        let (status, _, text) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    assert!(started.try_recv().is_err(), "one rebuild for position 5");
    let counts = time_travel.counts();
    assert_eq!(
        (
            counts.states,
            counts.queued,
            counts.rebuilds,
            counts.shared,
            counts.refused
        ),
        (0, 0, 1, 4, 4),
        "{counts:?}"
    );
    let text = h.metrics().await;
    for line in [
        "tidemark_time_travel_rebuilds_total 1",
        "tidemark_time_travel_shared_total 4",
        "tidemark_time_travel_refused_total 4",
        "tidemark_time_travel_states 0",
    ] {
        assert!(text.contains(line), "/metrics has {line}");
    }
}
