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
use tidemark_server::{AppState, AuthPolicy, Ingest, Tokens, Writer, router};
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
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("l.redb"), StoreConfig::default()).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    Harness {
        app: router(AppState {
            store,
            ingest: Ingest::Local(client),
            max_body_bytes: 1 << 20,
            auth,
            bridge: Default::default(),
            metrics: Default::default(),
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
