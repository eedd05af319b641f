//! Readers through the router (no socket) over real redb stores: every paged list followed to
//! its end lists each item once, in its order, whatever the strings (NUL included) and the scan
//! budget; malformed cursors are 400s naming the parameter; pages render for events at the ends
//! of the representable time range.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tidemark_core::{Timestamp, decode_event};
use tidemark_server::{AppState, AuthPolicy, Ingest, Writer, router};
use tidemark_store::{Input, Store, StoreConfig};
use tower::ServiceExt;

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

struct Harness {
    app: Router,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("r.redb"), StoreConfig::default()).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store: store.clone(),
            ingest: Ingest::Local(client),
            max_body_bytes: 8 << 20,
            auth: AuthPolicy::Open,
            bridge: Default::default(),
            otlp: Default::default(),
            limits: Default::default(),
            metrics: Default::default(),
            time_travel: Default::default(),
        }),
        store,
        _dir: dir,
    }
}

impl Harness {
    async fn call(&self, method: &str, uri: &str, body: String) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/x-ndjson")
            .body(Body::from(body))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn post(&self, events: &[Value]) {
        let body: Vec<String> = events.iter().map(Value::to_string).collect();
        let (status, text) = self.call("POST", "/v1/events", body.join("\n")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, text) = self.call("GET", uri, String::new()).await;
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{uri}: not JSON: {text}"));
        (status, value)
    }

    async fn ok(&self, uri: &str) -> Value {
        let (status, value) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {value}");
        value
    }

    /// Every page of `path` from the start, following `next` (passed back as `after`): the
    /// items of `list`, in the order served. Fails on a page that repeats the cursor it was
    /// asked with, which is how a list pages forever.
    async fn all_pages(&self, path: &str, list: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let uri = match &after {
                Some(after) => format!("{path}{sep}after={}", encode_query(after)),
                None => path.to_owned(),
            };
            let page = self.ok(&uri).await;
            items.extend(page[list].as_array().unwrap().iter().cloned());
            let next = match &page["next"] {
                Value::Null => return items,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_ne!(after.as_ref(), Some(&next), "{path}: the same page again");
            assert!(items.len() < 100_000, "{path}: pages without end");
            after = Some(next);
        }
    }
}

/// Percent-encodes a query value (cursors are URL-safe already; positions are digits).
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn event(id: &str, kind: &str, time: &str, cluster: &str, data: Value) -> Value {
    json!({"id": id, "schema": 1, "type": kind, "time": time, "source": "probe",
           "cluster": cluster, "data": data})
}

fn cycle(id: &str, time: &str, cluster: &str, keys: &[&str]) -> Value {
    let findings: Vec<Value> = keys
        .iter()
        .map(|k| json!({"check_key": k, "category": "pods", "severity": "error", "title": format!("{k} broken")}))
        .collect();
    event(
        id,
        "cycle.completed",
        time,
        cluster,
        json!({"cycle": id, "categories": ["pods"], "findings": findings}),
    )
}

// ---------------------------------------------------------------------------------------------
// Item 1: events by check key across clusters

/// The numbers: cluster `a` has 20,000 index entries for the key (the default scan
/// budget), cluster `b` 50, among the first of them. Before, paging to the end returned 1 of
/// b's 50 events: the budget was spent on `a` and the cursor moved past the rest of `b`.
#[tokio::test]
async fn events_by_check_key_page_to_the_end_across_a_cluster_past_the_budget() {
    let h = harness();
    let resolved = |i: usize, cluster: &str| {
        decode_event(
            &event(
                &format!("{cluster}-{i}"),
                "finding.resolved",
                "2026-03-02T10:00:00Z",
                cluster,
                json!({"check_key": "k", "kind": "manual"}),
            )
            .to_string(),
        )
        .unwrap()
    };
    let mut log = Vec::new();
    let mut b_seqs = Vec::new();
    for i in 0..tidemark_store::EVENTS_SCAN_BUDGET {
        if i % 10 == 5 && b_seqs.len() < 50 {
            log.push(Input::Event(resolved(i, "b")));
            b_seqs.push(log.len() as u64);
        }
        log.push(Input::Event(resolved(i, "a")));
    }
    for batch in log.chunks(2_000) {
        h.store.append(batch, NOW).unwrap();
    }
    let total = log.len() as u64;
    assert_eq!(b_seqs.len(), 50);

    for limit in [100, 1000] {
        let events = h
            .all_pages(&format!("/v1/events?check_key=k&limit={limit}"), "events")
            .await;
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        let expected: Vec<u64> = (1..=total).collect();
        assert_eq!(seqs.len(), expected.len(), "limit {limit}");
        assert!(
            seqs == expected,
            "limit {limit}: not every event once in order"
        );
        let in_b: Vec<u64> = events
            .iter()
            .filter(|e| e["event"]["cluster"] == "b")
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(in_b, b_seqs, "limit {limit}");
    }
    let only_b = h
        .all_pages("/v1/events?check_key=k&cluster=b&limit=7", "events")
        .await;
    let seqs: Vec<u64> = only_b.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, b_seqs);
}

/// Filters that rarely agree answer short pages with a cursor: the budget ends a page early,
/// and the pages cut so are counted.
#[tokio::test]
async fn a_page_the_budget_ends_early_goes_on_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        events_scan_budget: 10,
        ..StoreConfig::default()
    };
    let store = Arc::new(Store::open(dir.path().join("b.redb"), config).unwrap());
    let (_writer, client) = Writer::spawn(store.clone(), 16, 1024);
    let h = Harness {
        app: router(AppState {
            stream: tidemark_server::StreamHub::for_store(&store, Default::default()),
            store: store.clone(),
            ingest: Ingest::Local(client),
            max_body_bytes: 8 << 20,
            auth: AuthPolicy::Open,
            bridge: Default::default(),
            otlp: Default::default(),
            limits: Default::default(),
            metrics: Default::default(),
            time_travel: Default::default(),
        }),
        store,
        _dir: dir,
    };
    // Two clusters taking turns, each with its own source, then one event of `pw` from
    // `oncall`: `cluster=pw&source=oncall` matches it alone, and each filter alone matches every
    // other event, so the page reads both indexes turn by turn (the budget of 10 ends a page
    // after about 10 entries).
    let mut events: Vec<Value> = (0..36)
        .map(|i| {
            let cluster = if i % 2 == 0 { "pw" } else { "other" };
            let mut e = cycle(&format!("c{i}"), "2026-03-02T10:00:00Z", cluster, &[]);
            if i % 2 == 1 {
                e["source"] = json!("oncall");
            }
            e
        })
        .collect();
    let mut note = event(
        "note",
        "note.added",
        "2026-03-02T10:00:00Z",
        "pw",
        json!({"author": "me", "kind": "hypothesis", "text": "here"}),
    );
    note["source"] = json!("oncall");
    events.push(note);
    h.post(&events).await;
    let path = "/v1/events?cluster=pw&source=oncall";
    let first = h.ok(path).await;
    assert_eq!(first["events"].as_array().unwrap().len(), 0);
    assert!(first["next"].as_u64().is_some(), "{first}");
    // Every page to the end: each but the last ends early at the budget.
    let mut found = Vec::new();
    let mut pages = 0;
    let mut after = 0;
    loop {
        let page = h.ok(&format!("{path}&after={after}")).await;
        pages += 1;
        found.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next"].as_u64() {
            Some(next) => {
                assert!(next > after);
                after = next;
            }
            None => break,
        }
    }
    assert!(pages > 2, "{pages} pages");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["seq"], 37);
    let (_, metrics) = h.call("GET", "/metrics", String::new()).await;
    let cut = 1 + (pages - 1);
    assert!(
        metrics.contains(&format!("tidemark_events_pages_cut_total {cut}")),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 2: cursors over any string

/// Clusters and check keys with NUL, separators, quotes and non-ASCII; each pair a string
/// concatenation with NUL cannot tell apart from another.
const ODD_CLUSTERS: [&str; 5] = ["a", "a\u{0}b", "a\u{0}", "\u{0}", "ä \"/%"];
const ODD_KEYS: [&str; 4] = ["b\u{0}c", "c", "", "\u{0}\u{0}"];

#[tokio::test]
async fn findings_with_nul_in_names_page_to_the_end_each_once_in_order() {
    let h = harness();
    let keys: Vec<&str> = ODD_KEYS.iter().copied().filter(|k| !k.is_empty()).collect();
    let events: Vec<Value> = ODD_CLUSTERS
        .iter()
        .enumerate()
        .map(|(i, cluster)| cycle(&format!("c{i}"), "2026-03-02T10:00:00Z", cluster, &keys))
        .collect();
    h.post(&events).await;
    let mut expected: Vec<(String, String)> = ODD_CLUSTERS
        .iter()
        .flat_map(|c| keys.iter().map(|k| (c.to_string(), k.to_string())))
        .collect();
    expected.sort();
    for limit in [1, 2, 3, 100] {
        let findings = h
            .all_pages(&format!("/v1/findings?limit={limit}"), "findings")
            .await;
        let got: Vec<(String, String)> = findings
            .iter()
            .map(|f| {
                (
                    f["cluster"].as_str().unwrap().to_owned(),
                    f["check_key"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, expected, "limit {limit}");
    }
}

/// Two findings, `("a\0b", "c")` and `("a", "b\0c")`, both flapping: joined with NUL their keys
/// were the same string, so a page ending on one skipped the other.
#[tokio::test]
async fn flaps_orphans_and_incidents_page_over_odd_names_each_once() {
    let h = harness();
    let mut events = Vec::new();
    let pairs = [
        ("a\u{0}b", "c"),
        ("a", "b\u{0}c"),
        ("a", "c"),
        ("\u{0}", "\u{0}"),
    ];
    for (n, (cluster, key)) in pairs.iter().enumerate() {
        events.push(event(
            &format!("s{n}"),
            "settings.changed",
            "2026-03-02T09:00:00Z",
            cluster,
            json!({"clean_cycles_to_resolve": 1, "flap_threshold": 2, "flap_window_secs": 86400}),
        ));
        // Seen, then two clean cycles (the second resolves it), four times over: flapping.
        for i in 0..12 {
            let keys: &[&str] = if i % 3 == 0 { &[key] } else { &[] };
            let time = format!("2026-03-02T10:{i:02}:00Z");
            events.push(cycle(&format!("f{n}-{i}"), &time, cluster, keys));
        }
        // An unused volume, seen in two scans: an orphan of this cluster.
        for scan in 0..2 {
            events.push(event(
                &format!("inv{n}-{scan}"),
                "inventory.observed",
                &format!("2026-03-02T11:0{scan}:00Z"),
                cluster,
                json!({"scan": format!("s{scan}"), "kinds": ["PersistentVolumeClaim"], "resources": [
                    {"uid": format!("pvc-{key}"), "kind": "PersistentVolumeClaim", "namespace": "m", "name": "data"}]}),
            ));
        }
        events.push(event(
            &format!("inc{n}"),
            "incident.opened",
            "2026-03-02T12:00:00Z",
            cluster,
            json!({"incident": format!("inc{cluster}{key}"), "title": "odd", "severity": "error",
                   "check_keys": [key]}),
        ));
    }
    h.post(&events).await;

    let mut expected: Vec<(String, String)> = pairs
        .iter()
        .map(|(c, k)| (c.to_string(), k.to_string()))
        .collect();
    expected.sort();
    let flapping = h.all_pages("/v1/flaps?limit=1", "flapping").await;
    let got: Vec<(String, String)> = flapping
        .iter()
        .map(|f| {
            (
                f["cluster"].as_str().unwrap().to_owned(),
                f["check_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // One unused volume per cluster (the second scan of cluster `a` replaced the first).
    let orphans = h.all_pages("/v1/orphans?limit=1", "orphans").await;
    let unpaged = h.ok("/v1/orphans").await["orphans"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(orphans, unpaged);
    let clusters: Vec<&str> = orphans
        .iter()
        .map(|o| o["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["\u{0}", "a", "a\u{0}b"]);

    let all = h.ok("/v1/incidents?all=true&limit=1000").await["incidents"]
        .as_array()
        .unwrap()
        .clone();
    let paged = h
        .all_pages("/v1/incidents?all=true&limit=1", "incidents")
        .await;
    assert_eq!(paged, all);
    let ids: Vec<&str> = paged.iter().map(|i| i["id"].as_str().unwrap()).collect();
    for (cluster, key) in pairs {
        assert!(
            ids.contains(&format!("inc{cluster}{key}").as_str()),
            "{ids:?}"
        );
    }
}

#[tokio::test]
async fn cluster_timeline_pages_through_events_sharing_a_time() {
    let h = harness();
    let events: Vec<Value> = (0..25)
        .map(|i| {
            let time = ["2026-03-02T10:00:00Z", "2026-03-02T09:00:00Z"][i % 2];
            cycle(&format!("c{i}"), time, "a\u{0}b", &[])
        })
        .collect();
    h.post(&events).await;
    let all = h.ok("/v1/timeline?cluster=a%00b&limit=1000").await;
    let all = all["timeline"].as_array().unwrap().clone();
    assert_eq!(all.len(), 25);
    for limit in [1, 4, 10] {
        let paged = h
            .all_pages(
                &format!("/v1/timeline?cluster=a%00b&limit={limit}"),
                "timeline",
            )
            .await;
        assert_eq!(paged, all, "limit {limit}");
    }
    let times: Vec<&str> = all
        .iter()
        .map(|e| e["event"]["time"].as_str().unwrap())
        .collect();
    assert!(times.is_sorted(), "{times:?}");
}

#[tokio::test]
async fn malformed_cursors_are_400_naming_the_parameter() {
    let h = harness();
    h.post(&[cycle("c0", "2026-03-02T10:00:00Z", "pw", &["k"])])
        .await;
    // A cursor of another list's shape, text that is not hex, an old cursor (hex of
    // `cluster NUL key`, in one part), uppercase hex.
    let of_incidents = "1.696e63"; // (1, "inc")
    for path in [
        "/v1/findings",
        "/v1/flaps",
        "/v1/orphans",
        "/v1/incidents",
        "/v1/timeline?cluster=pw",
    ] {
        let sep = if path.contains('?') { '&' } else { '?' };
        for cursor in ["%00", "zz!", "7077006b", "====", "6A.6B", of_incidents] {
            if path == "/v1/incidents" && cursor == of_incidents {
                continue;
            }
            let uri = format!("{path}{sep}after={cursor}");
            let (status, body) = h.get(&uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains("`after`"), "{uri}: {message}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Item 7: the ends of time

/// An incident whose finding opened at `opened`, was seen at `seen` and resolved at `resolved`,
/// declared at `declared` and closed at `closed`: the pages and the postmortem render.
/// The instant of one of the times below. Producers can no longer send years outside
/// 1678..=2261, but stores written before that rule may hold any instant an `i64` of
/// nanoseconds can name, so these events are appended to the store directly.
fn instant(time: &str) -> Timestamp {
    match time {
        EPOCH => Timestamp::from_unix_nanos(0),
        LATE => Timestamp::from_unix_secs(9_222_422_400),
        FIRST => Timestamp::from_unix_nanos(i64::MIN),
        LAST => Timestamp::from_unix_nanos(i64::MAX),
        other => Timestamp::parse_rfc3339(other).unwrap(),
    }
}

impl Harness {
    /// Appends events whose `time` may be outside what the decoder takes today.
    fn append_any_time(&self, events: &[Value]) {
        let inputs: Vec<Input> = events
            .iter()
            .map(|value| {
                let mut sendable = value.clone();
                sendable["time"] = json!("2026-01-01T00:00:00Z");
                let mut event = decode_event(&sendable.to_string()).unwrap();
                event.time = instant(value["time"].as_str().unwrap());
                Input::Event(event)
            })
            .collect();
        self.store
            .append(&inputs, Timestamp::from_unix_secs(1_800_000_000))
            .unwrap();
    }
}

async fn renders_at(times: [&str; 5]) {
    let [opened, seen, resolved, declared, closed] = times;
    let h = harness();
    h.append_any_time(&[
        event(
            "s",
            "settings.changed",
            opened,
            "edge",
            json!({"clean_cycles_to_resolve": 1}),
        ),
        cycle("c1", opened, "edge", &["pod:crash"]),
        cycle("c2", seen, "edge", &["pod:crash", "node:down"]),
        event(
            "inc",
            "incident.opened",
            declared,
            "edge",
            json!({"incident": "inc-edge", "title": "edge", "severity": "critical",
                   "check_keys": ["pod:crash", "node:down"]}),
        ),
        event(
            "dep",
            "change.deployed",
            seen,
            "edge",
            json!({"service": "app", "version": "v2", "kind": "deploy"}),
        ),
        cycle("c3", resolved, "edge", &["node:down"]),
        event(
            "note",
            "note.added",
            closed,
            "edge",
            json!({"incident": "inc-edge", "author": "me", "kind": "hypothesis", "text": "time"}),
        ),
        event(
            "close",
            "incident.closed",
            closed,
            "edge",
            json!({"incident": "inc-edge", "summary": "done"}),
        ),
    ]);
    for uri in [
        "/",
        "/incidents/inc-edge",
        "/findings/edge/pod:crash",
        "/findings/edge/node:down",
        "/v1/incidents/inc-edge/postmortem?format=md",
        "/v1/incidents/inc-edge/postmortem?format=html",
        "/v1/incidents/inc-edge/postmortem?format=json",
        "/v1/incidents/inc-edge",
        "/v1/incidents?all=true",
        "/v1/findings/edge/pod:crash",
        "/v1/stuck",
        "/v1/flaps",
    ] {
        let (status, body) = h.call("GET", uri, String::new()).await;
        assert_eq!(status, StatusCode::OK, "{times:?} {uri}: {body}");
        assert!(!body.is_empty());
        if uri.starts_with("/incidents/") || uri.starts_with("/findings/") {
            // The lanes chart is drawn, with finite coordinates.
            assert!(body.contains("<svg class=\"lanes\""), "{times:?} {uri}");
            assert!(
                !body.contains("NaN") && !body.contains("inf\""),
                "{times:?} {uri}"
            );
        }
    }
    let incident = h.ok("/v1/incidents/inc-edge").await;
    let duration = incident["incident"]["duration_secs"].as_u64().unwrap();
    // Late events are applied at the cluster's clock (ADR 0004): the incident opens at the
    // latest time seen when it is declared, and closes at the latest time seen of all.
    let declared_at = [opened, seen, declared]
        .map(instant)
        .into_iter()
        .max()
        .unwrap();
    let closed_at = times.map(instant).into_iter().max().unwrap();
    let expected = closed_at.saturating_duration_since(declared_at).as_secs();
    assert_eq!(duration, expected, "{times:?}");
}

const EPOCH: &str = "1970-01-01T00:00:00Z";
const LATE: &str = "2262-04-01T00:00:00Z";
/// The first and last instants an event time can name (nanoseconds in an `i64`).
const FIRST: &str = "1677-09-21T00:12:43.145224192Z";
const LAST: &str = "2262-04-11T23:47:16.854775807Z";

#[tokio::test]
async fn pages_and_postmortems_render_for_events_at_the_ends_of_time() {
    renders_at([EPOCH; 5]).await;
    renders_at([LATE; 5]).await;
    renders_at([EPOCH, EPOCH, LATE, EPOCH, LATE]).await;
    renders_at([EPOCH, LATE, LATE, EPOCH, LATE]).await;
    renders_at([LATE, EPOCH, EPOCH, LATE, EPOCH]).await;
    renders_at([FIRST, LAST, LAST, FIRST, LAST]).await;
    renders_at([LAST, FIRST, LAST, FIRST, FIRST]).await;
    renders_at([LAST; 5]).await;
    renders_at([FIRST; 5]).await;
}
