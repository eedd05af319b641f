//! A full disk, for real: `tidemark serve` under a file size limit (`RLIMIT_FSIZE`, set with
//! util-linux's `prlimit`, no root needed), so the kernel fails the store's writes with `EFBIG`.
//! Ingest must answer 507 and store nothing of the refused batch, every acknowledged event must
//! stay readable, and ingest must resume by itself once the limit is raised.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use tidemark_core::Projections;
use tidemark_store::{Store, StoreConfig};

/// The store file may grow to this many bytes (it starts at about 72 KiB).
const FILE_SIZE_LIMIT: u64 = 2 << 20;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// A deterministic log over three clusters: cycles with findings coming and going, and notes
/// with padding, so the store grows steadily.
fn events(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let cluster = ["alpha", "beta", "gamma"][i % 3];
            let time = format!(
                "2026-03-02T{:02}:{:02}:{:02}Z",
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60
            );
            if i % 5 == 4 {
                let text = "the disk is filling up; ".repeat(20);
                return format!(
                    r#"{{"id":"full-{i}","schema":1,"type":"note.added","time":"{time}","source":"oncall","cluster":"{cluster}","data":{{"author":"sam","kind":"observation","text":"{text}{i}"}}}}"#
                );
            }
            let findings: Vec<String> = (0..7)
                .filter(|k| !(i / 3 + k * 5).is_multiple_of(3))
                .map(|k| {
                    format!(
                        r#"{{"check_key":"k{k}","category":"c{}","severity":"error","title":"k{k} broken"}}"#,
                        k % 2
                    )
                })
                .collect();
            format!(
                r#"{{"id":"full-{i}","schema":1,"type":"cycle.completed","time":"{time}","source":"probe","cluster":"{cluster}","data":{{"cycle":"{i}","categories":["c0","c1"],"findings":[{}]}}}}"#,
                findings.join(",")
            )
        })
        .collect()
}

fn post(agent: &ureq::Agent, base: &str, batch: &[String]) -> (u16, Option<String>, Value) {
    let mut response = agent
        .post(&format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .send(batch.join("\n"))
        .expect("the server answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.body_mut().read_to_string().unwrap();
    (
        response.status().as_u16(),
        retry_after,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut response = agent.get(url).call().expect("the server answers");
    (
        response.status().as_u16(),
        response.body_mut().read_to_string().unwrap(),
    )
}

/// Every stored event id, in log order, with its position, through the paged API.
fn stored_ids(agent: &ureq::Agent, base: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let (status, body) = get(agent, &format!("{base}/v1/events?limit=1000&after={after}"));
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        for item in page["events"].as_array().unwrap() {
            out.push((
                item["seq"].as_u64().unwrap(),
                item["event"]["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => return out,
        }
    }
}

/// The findings a clean fold of `lines` gives, as the API renders them.
fn folded_findings(lines: &[String]) -> (Projections, Value) {
    let mut projections = Projections::new();
    for (i, line) in lines.iter().enumerate() {
        let event = tidemark_core::decode_event_bytes(line.as_bytes()).unwrap();
        projections.apply(i as u64 + 1, &event);
    }
    // What `GET /v1/findings` answers: each finding's overview (its history is paged apart).
    let (overviews, more) = projections
        .findings()
        .views_page(None, |_| true, None, usize::MAX);
    assert!(!more);
    let views = serde_json::to_value(overviews).unwrap();
    (projections, views)
}

fn api_findings(agent: &ureq::Agent, base: &str) -> Value {
    let (status, body) = get(agent, &format!("{base}/v1/findings?limit=1000"));
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert!(page["next"].is_null(), "one page holds every finding");
    page["findings"].clone()
}

fn prlimit(args: &[&str]) -> Command {
    let mut command = Command::new("prlimit");
    command.args(args);
    command
}

fn set_file_size_limit(child: &Child, limit: &str) {
    let status = prlimit(&[
        &format!("--pid={}", child.id()),
        &format!("--fsize={limit}"),
    ])
    .status()
    .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --pid failed: {status}");
}

fn terminate(mut child: Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "tidemark serve stopped cleanly: {status:?}"
    );
}

#[test]
fn a_full_disk_refuses_ingest_keeps_reads_and_resumes_when_space_returns() {
    let have_prlimit = Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        have_prlimit,
        "this test needs `prlimit` from util-linux (apt-get install util-linux)"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("full.redb");
    // Soft limit FILE_SIZE_LIMIT, hard limit unlimited: the test may raise it again later.
    let mut command = prlimit(&[&format!("--fsize={FILE_SIZE_LIMIT}:unlimited"), "--"]);
    command.args([
        env!("CARGO_BIN_EXE_tidemark"),
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--snapshot-every",
        "300",
        "--disk-full-retry",
        "1",
    ]);
    let (child, base) = support::spawn_command(command);
    let agent = agent();
    let all = events(40_000);

    // 1. Ingest until the store cannot grow.
    let batch_size = 25;
    let mut acknowledged: Vec<String> = Vec::new();
    let mut next = 0;
    let refused = loop {
        assert!(
            next < all.len(),
            "the file size limit of {FILE_SIZE_LIMIT} bytes was never hit"
        );
        let batch = &all[next..next + batch_size];
        let (status, retry_after, body) = post(&agent, &base, batch);
        match status {
            200 => {
                acknowledged.extend(batch.iter().cloned());
                next += batch_size;
            }
            507 => break (batch.to_vec(), retry_after, body),
            other => panic!("unexpected answer {other}: {body}"),
        }
    };
    let (refused_batch, retry_after, body) = refused;
    assert!(
        acknowledged.len() > 100,
        "the store took events before it filled"
    );
    assert_eq!(body["code"], "disk_full", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("the disk is full")
            && message.contains("nothing of this batch was stored")
            && message.contains("File too large"),
        "{message}"
    );
    assert!(retry_after.is_some(), "507 says when to retry");
    eprintln!(
        "the disk filled after {} events: {message}",
        acknowledged.len()
    );

    // 2. Reads keep working, from exactly the acknowledged events: nothing lost, nothing of the
    //    refused batch half-applied.
    let ids = stored_ids(&agent, &base);
    let expected_ids: Vec<String> = (0..acknowledged.len())
        .map(|i| format!("full-{i}"))
        .collect();
    assert_eq!(
        ids.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        expected_ids
    );
    assert!(
        ids.iter()
            .enumerate()
            .all(|(i, (seq, _))| *seq == i as u64 + 1)
    );
    let (_, expected_findings) = folded_findings(&acknowledged);
    assert_eq!(api_findings(&agent, &base), expected_findings);
    let (status, body) = get(&agent, &format!("{base}/readyz"));
    assert_eq!(status, 200, "reads still work, so the server stays ready");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["writes"], "disk_full", "{ready}");
    assert_eq!(ready["checkpoint"], acknowledged.len() as u64, "{ready}");
    let (_, metrics) = get(&agent, &format!("{base}/metrics"));
    assert!(
        metrics.contains("\ntidemark_store_disk_full 1\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("\ntidemark_batches_disk_full_total 0\n"),
        "{metrics}"
    );
    // Still full: refused again, and still nothing stored.
    let (status, _, body) = post(&agent, &base, &refused_batch);
    assert_eq!(status, 507, "{body}");
    assert_eq!(stored_ids(&agent, &base).len(), acknowledged.len());

    // 3. Space returns: the refused batch, sent again, is stored; the rest follows.
    set_file_size_limit(&child, "unlimited:unlimited");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _, body) = post(&agent, &base, &refused_batch);
        match status {
            200 => {
                assert_eq!(body["accepted"], batch_size as u64, "{body}");
                break;
            }
            507 => {
                assert!(
                    Instant::now() < deadline,
                    "ingest did not resume after the limit was raised: {body}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    acknowledged.extend(refused_batch.iter().cloned());
    next += batch_size;
    for batch in all[next..next + 40 * batch_size].chunks(batch_size) {
        let (status, _, body) = post(&agent, &base, batch);
        assert_eq!(status, 200, "{body}");
        acknowledged.extend(batch.iter().cloned());
    }
    let (_, body) = get(&agent, &format!("{base}/readyz"));
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["writes"], "ok", "{ready}");
    let (_, metrics) = get(&agent, &format!("{base}/metrics"));
    assert!(
        metrics.contains("\ntidemark_store_disk_full 0\n"),
        "{metrics}"
    );

    // 4. The final state is a clean fold of every acknowledged event, live and after a restart.
    let (folded, expected_findings) = folded_findings(&acknowledged);
    assert_eq!(api_findings(&agent, &base), expected_findings);
    terminate(child);
    check_reopened(&db, &acknowledged, &folded);
}

fn check_reopened(db: &Path, acknowledged: &[String], folded: &Projections) {
    let store = Store::open(db, StoreConfig::default()).unwrap();
    assert_eq!(store.checkpoint(), acknowledged.len() as u64);
    let stored: BTreeSet<String> = store
        .events(1, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.event.id.0)
        .collect();
    assert_eq!(stored.len(), acknowledged.len());
    assert_eq!(store.projection_snapshot(), folded.snapshot());
    assert_eq!(
        store.fold_log(|_, _| {}).unwrap().snapshot(),
        folded.snapshot()
    );
}

/// `rebuild` and the other writing commands on a full disk exit 74 and change nothing: when
/// opening the store already needs a write the disk refuses, and when the rebuild's new file
/// outgrows the room. The store is as it was, and no partial file is left beside it.
#[test]
fn rebuild_on_a_full_disk_exits_74_and_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.redb");
    let log = dir.path().join("events.ndjson");
    std::fs::write(&log, events(300).join("\n")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "ingest",
            "--db",
            db.to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let size = std::fs::metadata(&db).unwrap().len();
    // Read-write: a process stopped by the limit leaves the file to be recovered at the next
    // read-write open (from the last commit, which saved redb's allocator state).
    let state = || {
        let store = Store::open(&db, StoreConfig::default()).unwrap();
        (store.checkpoint(), store.projection_snapshot())
    };
    let before = state();
    // Below the store's own size: the open's first write is refused. Above it, below twice:
    // the new file runs out of room.
    for limit in [4096, size + size / 20] {
        let output = prlimit(&[&format!("--fsize={limit}")])
            .args([env!("CARGO_BIN_EXE_tidemark"), "rebuild", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(74), "limit {limit}: {stderr}");
        assert!(stderr.contains("File too large"), "limit {limit}: {stderr}");
        assert_eq!(state(), before, "limit {limit}: the store is unchanged");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("rebuild"))
            .collect();
        assert!(left.is_empty(), "limit {limit}: left behind {left:?}");
    }
}
