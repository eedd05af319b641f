//! The Alertmanager bridge against a real Alertmanager (Debian's `prometheus-alertmanager`,
//! `$TIDEMARK_ALERTMANAGER`, else installed by `scripts/install-alertmanager`): a group holding
//! good alerts, one without `alertname` and one no event can hold reaches `tidemark serve`
//! through Alertmanager's webhook, is re-sent every few seconds, and every good alert is stored
//! once while the bad one stays one quarantine record whose count grows.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The Alertmanager binary: `$TIDEMARK_ALERTMANAGER`, else installed by the project's script.
fn alertmanager_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TIDEMARK_ALERTMANAGER") {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-alertmanager");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/install-alertmanager runs");
    assert!(out.status.success(), "scripts/install-alertmanager failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A free loopback port below Linux's ephemeral range (so no outgoing connection takes it
/// between this check and Alertmanager's bind).
fn free_port() -> u16 {
    let base = 33_000 - (std::process::id() % 2_000) as u16 * 4;
    (base..base + 4)
        .chain(20_000..30_000)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port")
}

/// Child processes killed when the test ends, however it ends.
struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn get_json(agent: &ureq::Agent, url: &str) -> Value {
    let mut response = agent.get(url).call().unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

/// How often the quarantine's inputs were refused in all (records from before counts: 1 each).
fn refusals(quarantine: &Value) -> u64 {
    quarantine
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["count"].as_u64().unwrap_or(1))
        .sum()
}

#[test]
fn a_real_alertmanager_group_with_a_nameless_and_an_untranslatable_alert_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("am.redb");
    let (server, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let mut children = Killed(vec![server]);

    // Alertmanager re-sends the group every 2 s (repeat_interval) to the bridge.
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: tidemark\n  group_by: ['namespace']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 2s\nreceivers:\n  - name: tidemark\n    \
             webhook_configs:\n      - url: {base}/v1/bridges/alertmanager\n        \
             send_resolved: true\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let am = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
    children.0.push(
        Command::new(alertmanager_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("alertmanager starts"),
    );
    let agent = agent();
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent
        .get(format!("{am}/-/ready"))
        .call()
        .map_or(true, |r| r.status().as_u16() != 200)
    {
        assert!(Instant::now() < deadline, "alertmanager did not get ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    // One group (namespace ns): two good alerts, one without alertname (Alertmanager takes it),
    // one starting in 1500 (Alertmanager takes it; no event time can hold it).
    let alerts = json!([
        {"labels": {"alertname": "DiskFull", "namespace": "ns", "cluster": "lab"}},
        {"labels": {"namespace": "ns", "pod": "worker-0", "cluster": "lab"}},
        {"labels": {"alertname": "Ancient", "namespace": "ns"}, "startsAt": "1500-01-01T00:00:00Z"},
        {"labels": {"alertname": "PodCrashLooping", "namespace": "ns", "cluster": "lab"}}
    ]);
    let response = agent
        .post(format!("{am}/api/v2/alerts"))
        .header("content-type", "application/json")
        .send(alerts.to_string())
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "alertmanager took the alerts"
    );

    // Wait for Alertmanager to deliver the group three times (the bad alert's refusals).
    let deadline = Instant::now() + Duration::from_secs(25);
    let quarantine = loop {
        let quarantine = get_json(&agent, &format!("{base}/v1/quarantine"))["quarantine"].take();
        if refusals(&quarantine) >= 3 {
            break quarantine;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.path().join("alertmanager.log")).unwrap();
            panic!("alertmanager did not deliver three times: {quarantine}\n{log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    // The untranslatable alert: one record, counted, holding that alert alone.
    assert_eq!(quarantine.as_array().unwrap().len(), 1, "{quarantine}");
    let raw: Value = serde_json::from_str(quarantine[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["labels"]["alertname"], "Ancient");
    assert!(
        quarantine[0]["reason"]
            .as_str()
            .unwrap()
            .contains("alert.startsAt"),
        "{quarantine}"
    );

    // The good alerts, each stored once however often the group came.
    let events = get_json(&agent, &format!("{base}/v1/events?type=alert.fired"));
    let mut names: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["data"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let nameless = get_json(&agent, &format!("{am}/api/v2/alerts"))
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"].is_null())
        .map(|a| a["fingerprint"].as_str().unwrap().to_owned())
        .expect("alertmanager lists the nameless alert");
    let derived = format!("unnamed-{nameless}");
    let mut expected = vec!["DiskFull", "PodCrashLooping", derived.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected, "{events}");
    let metrics = agent
        .get(format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("tidemark_events_ingested_total{outcome=\"accepted\"} 3"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("tidemark_events_ingested_total{outcome=\"duplicate\"} 0\n"),
        "the re-sent alerts were answered duplicate: {metrics}"
    );
    assert!(
        !metrics.contains("route=\"/v1/bridges/alertmanager\",status=\"400\""),
        "{metrics}"
    );
}
