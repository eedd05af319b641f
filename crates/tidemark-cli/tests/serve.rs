//! `tidemark serve` as a user runs it: the real binary, a real socket, SIGKILL at random moments.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;
use tidemark_store::{Store, StoreConfig};

struct Server {
    child: Child,
    base: String,
}

/// Starts `tidemark serve` on a free port and waits until it listens.
fn start(db: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let (child, base) = support::spawn_server(&args);
    Server { child, base }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn get_json(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    let mut response = agent.get(url).call().unwrap();
    (
        response.status().as_u16(),
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn serve_replay_shows_findings_and_a_timeline_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.redb");
    let race = repo("replay/auto-resolve-race/events.ndjson");
    let mut server = start(&db, &["--replay", race.to_str().unwrap()]);
    let agent = agent();
    let (status, body) = get_json(&agent, &format!("{}/v1/findings", server.base));
    assert_eq!(status, 200);
    assert_eq!(body["count"], 2);
    let (status, body) = get_json(
        &agent,
        &format!("{}/v1/findings/pw-prod/proxied:domain:42", server.base),
    );
    assert_eq!(status, 200);
    assert_eq!(body["finding"]["resolution_kind"], "auto");
    assert_eq!(body["timeline"].as_array().unwrap().len(), 2);

    // SIGTERM: graceful, with a final snapshot; a restart with the same --replay stores nothing new.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let store = Store::open(&db, StoreConfig::default()).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.events, stats.snapshot_seq), (9, 9));
}

/// A deterministic stream of events over three clusters with findings coming and going; one
/// cycle in five names 40 findings, so its log and change records are stored compressed.
fn events(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let cluster = ["alpha", "beta", "gamma"][i % 3];
            let time = format!("2026-03-02T{:02}:{:02}:{:02}Z", (i / 3600) % 24, (i / 60) % 60, i % 60);
            if i % 17 == 5 {
                return format!(r#"{{"id":"crash-{i}","schema":1,"type":"finding.resolved","time":"{time}","source":"oncall","cluster":"{cluster}","data":{{"check_key":"k{}","kind":"manual"}}}}"#, i % 7);
            }
            let keys = if i % 5 == 0 { 40 } else { 7 };
            let findings: Vec<String> = (0..keys)
                .filter(|k| (i / 3 + k * 5) % 3 != 0)
                .map(|k| format!(r#"{{"check_key":"k{k}","category":"c{}","severity":"error","title":"k{k} broken: the probe saw it fail again"}}"#, k % 2))
                .collect();
            format!(
                r#"{{"id":"crash-{i}","schema":1,"type":"cycle.completed","time":"{time}","source":"probe","cluster":"{cluster}","data":{{"cycle":"{i}","categories":["c0","c1"],"findings":[{}]}}}}"#,
                findings.join(",")
            )
        })
        .collect()
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
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged_and_applies_everything_once() {
    let iterations: usize = std::env::var("TIDEMARK_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("TIDEMARK_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        });
    eprintln!("crash test: {iterations} kills, TIDEMARK_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.redb");
    let all = events(200_000);
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut next = 0usize;
    for iteration in 0..iterations {
        // Frequent snapshots, so restarts restore from snapshots as well as from the log.
        let mut server = start(&db, &["--snapshot-every", "500"]);
        let kill_after = Duration::from_millis(20 + rng.next() % 250);
        let batch_seed = rng.next();
        let base = server.base.clone();
        let from = next;
        let client = std::thread::spawn({
            let all = all.clone();
            move || {
                let agent = agent();
                let mut rng = Rng(batch_seed);
                let mut next = from;
                let mut acked = Vec::new();
                while next < all.len() {
                    let size = 1 + (rng.next() % 40) as usize;
                    let batch = &all[next..(next + size).min(all.len())];
                    let response = agent
                        .post(&format!("{base}/v1/events"))
                        .header("content-type", "application/x-ndjson")
                        .send(batch.join("\n"));
                    match response {
                        Ok(mut r) if r.status() == 200 => {
                            let body: Value =
                                serde_json::from_str(&r.body_mut().read_to_string().unwrap())
                                    .unwrap();
                            for result in body["results"].as_array().unwrap() {
                                let status = result["status"].as_str().unwrap();
                                assert!(status == "accepted" || status == "duplicate", "{result}");
                                acked.push(result["id"].as_str().unwrap().to_owned());
                            }
                            next += batch.len();
                        }
                        // The server died under us: this batch is not acknowledged.
                        _ => break,
                    }
                }
                (next, acked)
            }
        });
        std::thread::sleep(kill_after);
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        let (sent_up_to, acked) = client.join().unwrap();
        acknowledged.extend(acked);
        // Resend from the first unacknowledged batch: duplicates must be harmless.
        next = sent_up_to;
        eprintln!(
            "kill {iteration}: after {kill_after:?}, {} acknowledged so far",
            acknowledged.len()
        );
    }
    assert!(
        acknowledged.len() > iterations,
        "the test must actually write"
    );

    let store = Store::open(&db, StoreConfig::default()).unwrap();
    let checkpoint = store.checkpoint();
    let stored = store.events(1, usize::MAX).unwrap();
    // Positions are 1..=checkpoint with no gaps, and the checkpoint is the last position.
    assert_eq!(stored.len() as u64, checkpoint);
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, (seq, _))| *seq == i as u64 + 1)
    );
    // Every id at most once; every acknowledged id present.
    let mut ids = BTreeSet::new();
    for (seq, event) in &stored {
        assert!(
            ids.insert(event.event.id.0.clone()),
            "{} stored twice (again at {seq})",
            event.event.id
        );
    }
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?} (seed {seed})"
    );
    // The projection restored on open equals a fresh fold of the log.
    assert!(
        store.stats().unwrap().snapshot_seq > 0,
        "snapshots were written"
    );
    assert_eq!(
        store.projection_snapshot(),
        store.fold_log(|_, _| {}).unwrap().snapshot(),
        "seed {seed}"
    );
}

#[test]
fn an_open_api_is_refused_off_loopback_and_bad_tokens_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ])
        .env_remove("TIDEMARK_TOKENS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to serve") && stderr.contains("--insecure"),
        "{stderr}"
    );
    assert!(
        !db.exists(),
        "nothing is created when the server refuses to start"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ])
        .env("TIDEMARK_TOKENS", "admin:0123456789abcdef0123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TIDEMARK_TOKENS: entry 1"), "{stderr}");
    assert!(
        !stderr.contains("0123456789abcdef0123"),
        "the token is never printed: {stderr}"
    );
}

#[test]
fn a_tokens_file_without_a_token_refuses_to_start_instead_of_serving_an_open_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    for (name, text) in [
        ("empty.tokens", ""),
        ("comments.tokens", "# readers\n\n# writers\n"),
    ] {
        let tokens = dir.path().join(name);
        std::fs::write(&tokens, text).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        command
            .args(["serve", "--db", db.to_str().unwrap()])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--tokens",
                tokens.to_str().unwrap(),
            ])
            .env_remove("TIDEMARK_TOKENS");
        let out = output_within(command, Duration::from_secs(30)).unwrap_or_else(|| {
            panic!("{name}: the server started (an open API) instead of refusing")
        });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("no token") && stderr.contains("read TOKEN"),
            "{name}: the error names the file and what it must hold: {stderr}"
        );
        assert!(!db.exists(), "{name}: nothing is created");
    }
}

/// Runs `command` to its end, or kills it after `limit` and answers `None` (a server that
/// started when it should have refused).
fn output_within(mut command: Command, limit: Duration) -> Option<std::process::Output> {
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(child.wait_with_output().unwrap())
}
