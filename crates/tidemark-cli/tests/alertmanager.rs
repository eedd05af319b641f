//! The Alertmanager bridge against a real Alertmanager (Debian's `prometheus-alertmanager`,
//! `$TIDEMARK_ALERTMANAGER`, else installed by `scripts/install-alertmanager`): a group holding
//! good alerts, one without `alertname` and one no event can hold reaches `tidemark serve`
//! through Alertmanager's webhook, is re-sent every few seconds, and every good alert is stored
//! once while the bad one stays one quarantine record whose count grows. And the alert lifecycle
//! driven by a real Alertmanager (ADR 0007): occurrences, a flapping alert, a stale one whose
//! receiver sends no resolves, the automatic incident of a namespace, one inside a maintenance
//! window (marked, its incident held back until the window is cancelled), nothing lost.

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

/// The tests of this file one at a time: each starts an Alertmanager on a port chosen from the
/// process id ([`free_port`]), which two tests of one process would share.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`ONE_AT_A_TIME`] for the rest of the test (a test that failed before does not stop
/// the next).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
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
    let _serial = one_at_a_time();
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
    let am = start_alertmanager(
        dir.path(),
        &format!(
            "route:\n  receiver: tidemark\n  group_by: ['namespace']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 2s\nreceivers:\n  - name: tidemark\n    \
             webhook_configs:\n      - url: {base}/v1/bridges/alertmanager\n        \
             send_resolved: true\n"
        ),
        &mut children,
    );
    let agent = agent();

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

/// Starts a real Alertmanager with `config` (YAML) on a free loopback port and waits until it
/// is ready; answers its base URL. The child is pushed onto `children`.
fn start_alertmanager(dir: &Path, config: &str, children: &mut Killed) -> String {
    let config_file = dir.join("alertmanager.yml");
    std::fs::write(&config_file, config).unwrap();
    let port = free_port();
    let am = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
    children.0.push(
        Command::new(alertmanager_binary())
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
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
    am
}

/// Posts `alerts` to Alertmanager's API v2.
fn post_alerts(agent: &ureq::Agent, am: &str, alerts: Value) {
    let response = agent
        .post(format!("{am}/api/v2/alerts"))
        .header("content-type", "application/json")
        .send(alerts.to_string())
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "alertmanager took {alerts}"
    );
}

/// An RFC 3339 time `offset_secs` from now (Alertmanager takes alerts' times from its clients).
fn rfc3339_from_now(offset_secs: i64) -> String {
    tidemark_store::wall_clock()
        .plus_secs(offset_secs)
        .to_rfc3339()
}

/// Polls `url` until `done` holds of its JSON answer (at most `secs`), and answers it.
fn wait_for(
    agent: &ureq::Agent,
    url: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let value = get_json(agent, url);
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: {value}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The fingerprint Alertmanager gave the alert named `name`.
fn fingerprint_of(agent: &ureq::Agent, am: &str, name: &str) -> String {
    let alerts = get_json(agent, &format!("{am}/api/v2/alerts"));
    alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == name)
        .and_then(|a| a["fingerprint"].as_str())
        .unwrap_or_else(|| panic!("alertmanager lists {name}: {alerts}"))
        .to_owned()
}

/// ADR 0007 with a real Alertmanager: alerts fold into findings, with their occurrences, a
/// flapping alert, a stale one (its receiver does not send resolves, so Alertmanager resolving
/// it never reaches Tidemark), a nameless one grouped with good ones, and the automatic
/// incident of their namespace; every alert Alertmanager holds is a finding, nothing is
/// quarantined.
#[test]
fn a_real_alertmanager_drives_occurrences_flaps_staleness_and_incidents() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("am.redb");
    // Re-send buckets of 1 s: each of Alertmanager's re-sends (every 2 s) is stored, so the
    // alerts it keeps notifying stay fresh at a 6 s staleness threshold.
    let (server, base) = support::spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--alert-resend-bucket-secs",
        "1",
    ]);
    let mut children = Killed(vec![server]);
    let agent = agent();
    let settings = json!({"id": "settings-lab", "schema": 1, "type": "settings.changed",
        "time": rfc3339_from_now(-60), "source": "test", "cluster": "lab",
        "data": {"alert_stale_after_secs": 6}});
    let response = agent
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .send(settings.to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // A maintenance window over the DBA team's alerts, open for the whole test.
    let window = json!({"id": "window-db", "schema": 1, "type": "maintenance.scheduled",
        "time": rfc3339_from_now(-60), "source": "change-calendar", "cluster": "lab",
        "data": {"window": "db-upgrade", "by": "dba-oncall", "reason": "PostgreSQL 17 upgrade",
            "matchers": {"labels": {"team": "dba"}},
            "schedule": {"once": {"starts_at": rfc3339_from_now(-120),
                "ends_at": rfc3339_from_now(3_600)}}}});
    let response = agent
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .send(window.to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // Namespace `shop` re-sends every 2 s and sends resolves; namespace `quiet` goes to a
    // receiver that does not send resolves and re-sends only hourly.
    let am = start_alertmanager(
        dir.path(),
        &format!(
            "route:\n  receiver: tidemark\n  group_by: ['namespace']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 2s\n  routes:\n    - matchers: ['namespace=\"quiet\"']\n      \
             receiver: tidemark-no-resolve\n      repeat_interval: 1h\nreceivers:\n  - name: tidemark\n    \
             webhook_configs:\n      - url: {base}/v1/bridges/alertmanager\n        \
             send_resolved: true\n  - name: tidemark-no-resolve\n    webhook_configs:\n      \
             - url: {base}/v1/bridges/alertmanager\n        send_resolved: false\n"
        ),
        &mut children,
    );
    let shop = |name: &str, pod: &str| json!({"alertname": name, "namespace": "shop", "pod": pod, "cluster": "lab", "severity": "critical"});
    post_alerts(
        &agent,
        &am,
        json!([
            {"labels": shop("CheckoutCrashLooping", "checkout-0"), "annotations": {"summary": "checkout-0 restarts"}},
            {"labels": {"namespace": "shop", "pod": "cart-0", "cluster": "lab"}},
            {"labels": shop("CartFlapping", "cart-1")},
            {"labels": {"alertname": "QuietDisk", "namespace": "quiet", "instance": "n1", "cluster": "lab"}},
        ]),
    );
    let flapping = fingerprint_of(&agent, &am, "CartFlapping");
    let quiet = fingerprint_of(&agent, &am, "QuietDisk");
    wait_for(
        &agent,
        &format!("{base}/v1/alerts?cluster=lab"),
        20,
        "four alerts firing",
        |v| v["count"] == 4,
    );

    // CartFlapping: resolved and fired again three times, each change waited for.
    for round in 1..=3u64 {
        post_alerts(
            &agent,
            &am,
            json!([{"labels": shop("CartFlapping", "cart-1"), "endsAt": rfc3339_from_now(-1)}]),
        );
        wait_for(
            &agent,
            &format!("{base}/v1/alerts/lab/{flapping}"),
            20,
            "resolved",
            |v| v["alerts"][0]["finding"]["state"] == "resolved",
        );
        post_alerts(
            &agent,
            &am,
            json!([{"labels": shop("CartFlapping", "cart-1"), "startsAt": rfc3339_from_now(0)}]),
        );
        wait_for(
            &agent,
            &format!("{base}/v1/alerts/lab/{flapping}"),
            20,
            "fired again",
            |v| {
                v["alerts"][0]["finding"]["occurrences"] == round + 1
                    && v["alerts"][0]["finding"]["state"] == "active"
            },
        );
    }
    let cart = get_json(&agent, &format!("{base}/v1/alerts/lab/{flapping}"));
    let finding = &cart["alerts"][0]["finding"];
    assert_eq!(
        finding["flapping"], true,
        "three source resolutions in the window: {cart}"
    );
    let kinds: Vec<&Value> = cart["alerts"][0]["occurrences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["resolution_kind"])
        .collect();
    assert_eq!(
        kinds,
        [
            &json!("source"),
            &json!("source"),
            &json!("source"),
            &Value::Null
        ]
    );
    let flaps = get_json(&agent, &format!("{base}/v1/flaps?cluster=lab"));
    assert!(flaps.to_string().contains(&flapping), "{flaps}");

    // QuietDisk: Alertmanager resolves it, but its receiver sends no resolve: it stays firing
    // in Tidemark and goes stale once the cluster's clock (the other alerts' re-sends) is 6 s
    // past its last notification.
    post_alerts(
        &agent,
        &am,
        json!([{"labels": {"alertname": "QuietDisk", "namespace": "quiet", "instance": "n1", "cluster": "lab"}, "endsAt": rfc3339_from_now(-1)}]),
    );
    let stale = wait_for(
        &agent,
        &format!("{base}/v1/alerts?state=stale&cluster=lab"),
        30,
        "QuietDisk stale",
        |v| v["count"] == 1,
    );
    assert_eq!(
        stale["alerts"][0]["alert"]["fingerprint"],
        quiet.as_str(),
        "{stale}"
    );
    assert_eq!(
        stale["alerts"][0]["state"], "active",
        "never resolved by Tidemark"
    );
    let stuck = get_json(&agent, &format!("{base}/v1/stuck?cluster=lab"));
    assert_eq!(
        stuck["stale_alerts"].as_array().unwrap().len(),
        1,
        "{stuck}"
    );
    assert_eq!(stuck["stale_alerts"][0]["reason"], "alert_stale");
    assert!(stuck["stale_alerts"][0]["stale_for_secs"].is_u64());

    // The shop alerts with a pod opened one automatic incident of namespace shop.
    let incidents = get_json(&agent, &format!("{base}/v1/incidents"));
    let shop_incidents: Vec<&Value> = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["kind"] == "automatic" && i.to_string().contains("alert:CheckoutCrashLooping")
        })
        .collect();
    assert_eq!(shop_incidents.len(), 1, "{incidents}");
    assert!(
        shop_incidents[0].to_string().contains("alert:CartFlapping"),
        "{incidents}"
    );

    // DbReplicaLag fires inside the DBA team's maintenance window: recorded and marked, and
    // its automatic incident (it names a pod) waits for the window to end.
    post_alerts(
        &agent,
        &am,
        json!([{"labels": {"alertname": "DbReplicaLag", "namespace": "db", "pod": "pg-1", "team": "dba", "cluster": "lab", "severity": "critical"}}]),
    );
    let lagging = fingerprint_of(&agent, &am, "DbReplicaLag");
    // (Listed by name: the alert's own route is 404 until its first notification arrives.)
    let marked = wait_for(
        &agent,
        &format!("{base}/v1/alerts?cluster=lab&name=DbReplicaLag"),
        20,
        "DbReplicaLag in maintenance",
        |v| v["alerts"][0]["in_maintenance"].is_object(),
    );
    let mark = &marked["alerts"][0]["in_maintenance"];
    assert_eq!(mark["windows"], json!(["db-upgrade"]), "{marked}");
    assert_eq!(mark["incident_deferred"], true, "{marked}");
    assert_eq!(
        marked["alerts"][0]["alert"]["fingerprint"],
        lagging.as_str()
    );
    assert_eq!(marked["alerts"][0]["state"], "active");
    let open = get_json(&agent, &format!("{base}/v1/maintenance?cluster=lab"));
    assert_eq!(open["windows"][0]["window"], "db-upgrade", "{open}");
    assert_eq!(open["clusters"][0]["marked"], 1, "{open}");
    let incidents = get_json(&agent, &format!("{base}/v1/incidents"));
    assert!(
        !incidents.to_string().contains("alert:DbReplicaLag"),
        "no incident while the window covers it: {incidents}"
    );
    // The window is cancelled: the cancel itself releases it to an automatic incident, saying
    // so.
    let cancel = json!({"id": "window-db-cancel", "schema": 1, "type": "maintenance.cancelled",
        "time": rfc3339_from_now(0), "source": "change-calendar", "cluster": "lab",
        "data": {"window": "db-upgrade", "by": "dba-oncall", "reason": "done"}});
    let response = agent
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .send(cancel.to_string())
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let released = wait_for(
        &agent,
        &format!("{base}/v1/incidents"),
        20,
        "DbReplicaLag's incident once the window is cancelled",
        |v| v.to_string().contains("alert:DbReplicaLag"),
    );
    let id = released["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.to_string().contains("alert:DbReplicaLag"))
        .and_then(|i| i["id"].as_str())
        .unwrap()
        .to_owned();
    let timeline = get_json(&agent, &format!("{base}/v1/incidents/{id}/timeline"));
    assert!(
        timeline.to_string().contains("maintenance_ended"),
        "{timeline}"
    );
    let after = get_json(&agent, &format!("{base}/v1/alerts/lab/{lagging}"));
    assert!(
        after["alerts"][0]["finding"]
            .get("in_maintenance")
            .is_none(),
        "{after}"
    );

    // Nothing lost: every alert Alertmanager holds is a finding, the nameless one under its
    // derived name; nothing was quarantined.
    for alert in get_json(&agent, &format!("{am}/api/v2/alerts"))
        .as_array()
        .unwrap()
    {
        let fingerprint = alert["fingerprint"].as_str().unwrap();
        let found = get_json(&agent, &format!("{base}/v1/alerts/lab/{fingerprint}"));
        let name = alert["labels"]["alertname"]
            .as_str()
            .map_or_else(|| format!("unnamed-{fingerprint}"), str::to_owned);
        assert_eq!(
            found["alerts"][0]["finding"]["alert"]["name"],
            name.as_str(),
            "{found}"
        );
    }
    let quarantine = get_json(&agent, &format!("{base}/v1/quarantine"));
    assert_eq!(quarantine["quarantine"], json!([]), "{quarantine}");
}
