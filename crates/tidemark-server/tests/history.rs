//! A finding's history through the API (issue 17, views are bounded): the lists answer each
//! finding's current occurrence and counts, and its history and flap episodes are paged
//! sub-resources whose pages, followed to the end with any page size, are exactly the `history`
//! and `episodes` that the CLI and the replay corpus still show (`FindingsProjection::views`
//! and `flaps`, read from the same store). Through the router, over a real store.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tidemark_server::{AppState, AuthPolicy, Ingest, Writer, router};
use tidemark_store::{Store, StoreConfig};
use tower::ServiceExt;

struct Harness {
    app: Router,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

/// A store holding the catalogue corpus: a finding with four occurrences and flap episodes by
/// both detectors, among others.
async fn catalogue() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("h.redb"), StoreConfig::default()).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    let h = Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store: store.clone(),
            ingest: Ingest::Local(client),
            max_body_bytes: 1 << 20,
            limits: Default::default(),
            auth: AuthPolicy::Open,
            bridge: Default::default(),
            otlp: Default::default(),
            metrics: Default::default(),
            time_travel: Default::default(),
        }),
        store,
        _dir: dir,
    };
    let log = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../replay/catalogue/events.ndjson"),
    )
    .unwrap();
    let (status, body) = h.call("POST", "/v1/events", log).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h
}

impl Harness {
    async fn call(&self, method: &str, uri: &str, body: String) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if method == "POST" {
            request = request.header("content-type", "application/json");
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{uri}: {text}"));
        (status, value)
    }

    async fn ok(&self, uri: &str) -> Value {
        let (status, value) = self.call("GET", uri, String::new()).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {value}");
        value
    }

    /// Every page of `list` (a path with its query) under `field`, following `next` as `after`.
    async fn follow(&self, list: &str, field: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut uri = list.to_owned();
        loop {
            let page = self.ok(&uri).await;
            items.extend(page[field].as_array().unwrap().iter().cloned());
            match &page["next"] {
                Value::Null => return items,
                Value::String(next) => uri = format!("{list}&after={next}"),
                next => uri = format!("{list}&after={next}"),
            }
        }
    }
}

/// A path segment, percent-encoded (check keys hold `/` and `:`).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_old_history_is_the_pages_of_the_new_sub_resource() {
    let h = catalogue().await;
    // What the CLI (`tidemark findings --json`, `replay --json`) and the corpus show.
    let views = serde_json::to_value(h.store.read(|p| p.findings().views())).unwrap();
    let flaps = serde_json::to_value(h.store.read(|p| p.findings().flaps(None))).unwrap();
    let views = views.as_array().unwrap();
    assert!(
        views
            .iter()
            .any(|v| v["history"].as_array().unwrap().len() > 3),
        "a history longer than a page"
    );
    let mut with_episodes = 0;
    for view in views {
        let path = format!(
            "{}/{}",
            segment(view["cluster"].as_str().unwrap()),
            segment(view["check_key"].as_str().unwrap())
        );
        let episodes = flaps
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["cluster"] == view["cluster"] && f["check_key"] == view["check_key"])
            .map_or_else(Vec::new, |f| f["episodes"].as_array().unwrap().clone());
        with_episodes += usize::from(episodes.len() > 1);
        for limit in [1, 2, 3, 1000] {
            let history = h
                .follow(
                    &format!("/v1/finding-history/{path}?limit={limit}"),
                    "history",
                )
                .await;
            assert_eq!(&Value::from(history), &view["history"], "{path} by {limit}");
            let paged = h
                .follow(
                    &format!("/v1/finding-flaps/{path}?limit={limit}"),
                    "episodes",
                )
                .await;
            assert_eq!(paged, episodes, "{path} by {limit}");
        }
        // The finding answers its counts, not its history.
        let one = h.ok(&format!("/v1/findings/{path}")).await;
        assert_eq!(one["finding"]["occurrences"], view["occurrences"]);
        assert_eq!(one["finding"]["flap_episodes"], episodes.len());
        assert!(one["finding"].get("history").is_none() && one.get("flaps").is_none());
        let first = h.ok(&format!("/v1/finding-history/{path}?limit=1")).await;
        assert_eq!(first["occurrences"], view["occurrences"]);
    }
    assert!(with_episodes > 0, "a finding with several flap episodes");
}

#[tokio::test]
async fn the_lists_answer_the_views_less_their_history() {
    let h = catalogue().await;
    let views = serde_json::to_value(h.store.read(|p| p.findings().views())).unwrap();
    let listed = h.follow("/v1/findings?limit=2", "findings").await;
    assert_eq!(listed.len(), views.as_array().unwrap().len());
    for (item, view) in listed.iter().zip(views.as_array().unwrap()) {
        let mut expected = view.as_object().unwrap().clone();
        expected.remove("history");
        let mut item = item.as_object().unwrap().clone();
        assert!(item.remove("flap_episodes").is_some());
        assert_eq!(item, expected);
    }
    let flaps = serde_json::to_value(h.store.read(|p| p.findings().flaps(None))).unwrap();
    let listed = h.follow("/v1/flaps?limit=1", "flapping").await;
    assert_eq!(listed.len(), flaps.as_array().unwrap().len());
    for (item, whole) in listed.iter().zip(flaps.as_array().unwrap()) {
        let episodes = whole["episodes"].as_array().unwrap();
        assert_eq!(item["flap_episodes"], episodes.len());
        assert_eq!(&item["latest_episode"], episodes.last().unwrap());
        assert!(item.get("episodes").is_none());
    }
}

#[tokio::test]
async fn history_pages_are_bounded_and_checked() {
    let h = catalogue().await;
    let views = h.store.read(|p| p.findings().views());
    let longest = views.iter().max_by_key(|v| v.history.len()).unwrap();
    let path = format!(
        "{}/{}",
        segment(&longest.cluster),
        segment(&longest.check_key)
    );
    for (query, names) in [
        ("limit=0", "`limit`"),
        ("limit=1001", "`limit`"),
        ("after=9007199254740992", "`after`"),
        ("after=x", "after"),
        ("bogus=1", "bogus"),
    ] {
        let (status, body) = h
            .call(
                "GET",
                &format!("/v1/finding-history/{path}?{query}"),
                String::new(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["message"].as_str().unwrap().contains(names), "{body}");
    }
    for after in ["1", "1.Count", "x.count", "61.62"] {
        let (status, body) = h
            .call(
                "GET",
                &format!("/v1/finding-flaps/{path}?after={after}"),
                String::new(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{after}: {body}");
    }
    for route in ["finding-history", "finding-flaps"] {
        let (status, body) = h
            .call(
                "GET",
                &format!("/v1/{route}/nowhere/nothing"),
                String::new(),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    // A past state: the history up to then.
    let opened = longest.history[1].opened_seq;
    let then = h
        .ok(&format!("/v1/finding-history/{path}?at={opened}"))
        .await;
    assert_eq!(then["seq"], opened);
    assert_eq!(then["occurrences"], 2);
    assert_eq!(then["history"].as_array().unwrap().len(), 2);
}

/// The finding page given both `after` and `before` shows the timeline entries between them
/// (a schema-valid request, so not a 400).
#[tokio::test]
async fn the_finding_page_between_two_positions_shows_the_entries_between_them() {
    let h = catalogue().await;
    let views = h.store.read(|p| p.findings().views());
    let view = views
        .iter()
        .max_by_key(|v| {
            h.store
                .finding_timeline(&v.cluster, &v.check_key)
                .unwrap()
                .len()
        })
        .unwrap();
    let timeline = h
        .store
        .finding_timeline(&view.cluster, &view.check_key)
        .unwrap();
    assert!(timeline.len() >= 4, "a timeline of at least four entries");
    let (after, before) = (timeline[0].seq, timeline[3].seq);
    let uri = format!(
        "/findings/{}/{}?after={after}&before={before}",
        segment(&view.cluster),
        segment(&view.check_key)
    );
    let response = h
        .app
        .clone()
        .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8_lossy(&bytes);
    assert_eq!(status, StatusCode::OK, "{uri}: {page}");
    assert!(
        page.contains(r#"<span class="count">2</span>"#),
        "{uri}: the two entries between {after} and {before}"
    );
}

/// A corrupt row of a finding's history in the store's tables: the finding's web page, its
/// history page and a time-travel read of it answer 500 (the server's log names the row),
/// never a history with the row left out.
#[tokio::test]
async fn a_corrupt_history_row_is_a_server_error_never_a_shorter_history() {
    let h = catalogue().await;
    let path = h.store.path().to_path_buf();
    let Harness { app, store, _dir } = h;
    drop(app);
    // The writer task lets its clone of the store go once the router's client is gone.
    for _ in 0..500 {
        if Arc::strong_count(&store) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(Arc::strong_count(&store), 1, "the store is still held");
    drop(store);
    // The first closed occurrence, its bytes flipped as a disk would.
    let (cluster, check_key, opened) = {
        use redb::ReadableTable;
        let db = redb::Database::open(&path).unwrap();
        #[allow(clippy::disallowed_methods)] // damaging the file on purpose
        let txn = db.begin_write().unwrap();
        let found = {
            let mut rows = txn
                .open_table(tidemark_store::tables::FINDING_OCCURRENCES)
                .unwrap();
            let (key, mut bytes) = {
                let (k, v) = rows
                    .first()
                    .unwrap()
                    .expect("the corpus closes occurrences");
                let (c, key, seq) = k.value();
                ((c.to_owned(), key.to_owned(), seq), v.value().to_vec())
            };
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            rows.insert((key.0.as_str(), key.1.as_str(), key.2), bytes.as_slice())
                .unwrap();
            key
        };
        txn.commit().unwrap();
        found
    };
    let store = Arc::new(Store::open(&path, StoreConfig::default()).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    let app = router(AppState {
        stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
        store: store.clone(),
        ingest: Ingest::Local(client),
        max_body_bytes: 1 << 20,
        limits: Default::default(),
        auth: AuthPolicy::Open,
        bridge: Default::default(),
        otlp: Default::default(),
        metrics: Default::default(),
        time_travel: Default::default(),
    });
    let path = format!("{}/{}", segment(&cluster), segment(&check_key));
    let at = store.checkpoint();
    for uri in [
        format!("/findings/{path}"),
        format!("/v1/finding-history/{path}"),
        format!("/v1/finding-history/{path}?at={at}"),
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{uri} (the row opened at {opened})"
        );
    }
}
