//! The projection commands as a user runs them: a catalogue day ingested into a real store, then
//! `flaps`, `stuck`, `orphans`, `incidents` and `incident` with `--json` (and `--at`, `--dot`).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("the tidemark binary runs")
}

fn json_of(args: &[&str]) -> Value {
    let out = tidemark(args);
    assert!(
        out.status.success(),
        "tidemark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tidemark {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Builds the day: one event per call, five minutes apart, in cluster pw-prod.
struct Day {
    lines: Vec<String>,
    minute: i64,
}

impl Day {
    fn push(&mut self, event_type: &str, source: &str, data: Value) -> u64 {
        self.minute += 5;
        let seq = self.lines.len() as u64 + 1;
        let time = format!(
            "2026-03-02T{:02}:{:02}:00Z",
            8 + self.minute / 60,
            self.minute % 60
        );
        self.lines.push(
            json!({
                "id": format!("ev-{seq:04}"),
                "schema": 1,
                "type": event_type,
                "time": time,
                "source": source,
                "cluster": "pw-prod",
                "data": data,
            })
            .to_string(),
        );
        seq
    }

    fn scan(&mut self, n: u32) -> u64 {
        self.push(
            "inventory.observed",
            "inventory-scanner",
            json!({
                "scan": format!("s-{n}"),
                "kinds": ["Deployment", "ReplicaSet", "Pod", "PersistentVolumeClaim"],
                "resources": [
                    {"uid": "dep-dnd", "kind": "Deployment", "namespace": "dnd", "name": "dnd-backend"},
                    {"uid": "rs-dnd", "kind": "ReplicaSet", "namespace": "dnd", "name": "dnd-backend-7f9d4b8c6", "owners": ["dep-dnd"]},
                    {"uid": "pod-dnd", "kind": "Pod", "namespace": "dnd", "name": "dnd-backend-7f9d4b8c6-xk2p9", "owners": ["rs-dnd"], "uses": ["pvc-dnd"]},
                    {"uid": "pvc-dnd", "kind": "PersistentVolumeClaim", "namespace": "dnd", "name": "dnd-data"},
                    {"uid": "pvc-plex", "kind": "PersistentVolumeClaim", "namespace": "media", "name": "plex-config"}
                ]
            }),
        )
    }

    fn cycle(&mut self, findings: Value) -> u64 {
        self.push(
            "cycle.completed",
            "podwarden-runner/pw-prod",
            json!({"cycle": format!("c-{}", self.minute), "categories": ["pods", "nodes"], "findings": findings}),
        )
    }
}

#[test]
fn a_catalogue_day_is_answered_by_every_projection_command() {
    let mut day = Day {
        lines: Vec::new(),
        minute: 0,
    };
    let first_scan = day.scan(1);
    // #915: an audit producer writes a row in a category no health check runs.
    day.push(
        "cycle.completed",
        "admission-audit",
        json!({"cycle": "audit-1", "categories": ["admission_bypass"], "findings": [
            {"check_key": "admission_bypass:media/plex", "category": "admission_bypass",
             "severity": "warning", "title": "plex bypassed admission"}
        ]}),
    );
    // Seed 004: worker spans whose ingress root was never exported.
    for (span, name) in [("w1", "triager"), ("w2", "historian")] {
        day.push(
            "span.recorded",
            "langgraph-agents",
            json!({"trace_id": "019e649c5b0dd1cde425877f0b28cc14", "span_id": span,
                   "parent_span_id": "ingress-root", "name": name, "service": "langgraph-agents",
                   "start": "2026-03-02T08:15:00Z", "end": "2026-03-02T08:16:00Z", "status": "ok"}),
        );
    }
    // A check keyed by the pod name, and a crash loop the on-call declares an incident for.
    let crashloop = json!({"check_key": "pod:crashloop:dnd/dnd-backend", "category": "pods",
        "severity": "critical", "title": "dnd-backend is in CrashLoopBackOff",
        "detail": "asyncio.run() cannot be called from a running event loop",
        "resource": {"kind": "Pod", "namespace": "dnd", "name": "dnd-backend-7f9d4b8c6-xk2p9"}});
    for suffix in ["xk2p9", "b7d4q", "m2n8z", "q9w4t"] {
        day.cycle(json!([
            crashloop.clone(),
            {"check_key": format!("pod:restarting:dnd/dnd-backend-7f9d4b8c6-{suffix}"),
             "category": "pods", "severity": "warning", "title": "pod restarting",
             "resource": {"kind": "Pod", "namespace": "dnd", "name": format!("dnd-backend-7f9d4b8c6-{suffix}")}}
        ]));
    }
    day.push(
        "incident.opened",
        "oncall",
        json!({"incident": "inc-2026-03-02-dnd", "title": "dnd-backend CrashLoopBackOff",
               "severity": "critical", "check_keys": ["pod:crashloop:dnd/dnd-backend"]}),
    );
    day.push(
        "note.added",
        "oncall",
        json!({"incident": "inc-2026-03-02-dnd", "author": "operator", "kind": "hypothesis",
               "text": "ECR pull secret expired?"}),
    );
    let second_scan = day.scan(2);
    day.cycle(json!([crashloop]));

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("day.ndjson");
    std::fs::write(&log, day.lines.join("\n") + "\n").unwrap();
    let db = dir.path().join("day.redb");
    let db = db.to_str().unwrap();
    let out = tidemark(&["ingest", "--db", db, log.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Orphans: the PVC nobody uses is confirmed by the second scan, not before.
    let orphans = json_of(&["orphans", "--db", db, "--json"]);
    let list = orphans["orphans"].as_array().unwrap();
    let pvc = list
        .iter()
        .find(|o| o["resource"]["name"] == "plex-config")
        .unwrap_or_else(|| panic!("no plex-config orphan in {list:#?}"));
    assert_eq!(pvc["kind"], "dangling");
    assert_eq!(pvc["scans"], 2);
    assert_eq!(pvc["since_seq"], first_scan);
    assert!(
        list.iter().all(|o| o["resource"]["name"] != "dnd-data"),
        "dnd-data is used by the dnd pod"
    );
    let before = json_of(&[
        "orphans",
        "--db",
        db,
        "--json",
        "--at",
        &(second_scan - 1).to_string(),
    ]);
    assert!(
        before["orphans"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["resource"]["name"] != "plex-config"),
        "one scan is only a candidate: {before:#}"
    );
    // ... and the worker spans without their ingress root, once the trace went quiet.
    let spans: Vec<&Value> = list.iter().filter(|o| o["kind"] == "orphan_span").collect();
    assert_eq!(spans.len(), 2, "{list:#?}");
    assert!(list.iter().any(|o| o["kind"] == "rootless_trace"));
    let dot = tidemark(&["orphans", "--db", db, "--dot"]);
    let dot = String::from_utf8(dot.stdout).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("plex-config"));

    // Stuck: the admission-bypass row, three cycles of the cluster without its category.
    let stuck = json_of(&["stuck", "--db", db, "--json"]);
    let unreachable = stuck["unreachable"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{stuck:#}");
    assert_eq!(unreachable[0]["check_key"], "admission_bypass:media/plex");
    assert_eq!(unreachable[0]["reason"], "category_not_run");

    // Flaps: the restart keys are unstable and churn; drift suspects pair them.
    let flaps = json_of(&["flaps", "--db", db, "--json"]);
    let unstable = flaps["unstable_keys"].as_array().unwrap();
    assert_eq!(unstable.len(), 4, "{flaps:#}");
    assert_eq!(unstable[0]["suggestion"], "pod:restarting:dnd/dnd-backend");
    assert_eq!(flaps["churn"][0]["category"], "pods");
    assert_eq!(stuck["drift_suspects"].as_array().unwrap().len(), 3);

    // Incidents: the declared one absorbed the automatic one that the crash loop opened.
    let incidents = json_of(&["incidents", "--db", db, "--json"]);
    let ids: Vec<&str> = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"inc-2026-03-02-dnd"), "{ids:?}");
    let incident = json_of(&["incident", "inc-2026-03-02-dnd", "--db", db, "--json"]);
    assert_eq!(incident["incident"]["severity"], "critical");
    let summaries: Vec<&str> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("hypothesis by operator: ECR pull secret expired?")),
        "{summaries:#?}"
    );

    // The postmortem, in each format.
    let md = tidemark(&["export", "inc-2026-03-02-dnd", "--db", db]);
    assert!(
        md.status.success(),
        "{}",
        String::from_utf8_lossy(&md.stderr)
    );
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(
        md.starts_with("# Postmortem: dnd-backend CrashLoopBackOff"),
        "{md}"
    );
    assert!(md.contains("ECR pull secret expired?"), "{md}");
    let html_file = dir.path().join("pm.html");
    let out = tidemark(&[
        "export",
        "inc-2026-03-02-dnd",
        "--db",
        db,
        "--format",
        "html",
        "--output",
        html_file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(html.to_lowercase().starts_with("<!doctype html"), "{html}");
    let json: Value = serde_json::from_slice(
        &tidemark(&[
            "export",
            "inc-2026-03-02-dnd",
            "--db",
            db,
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(json["incident"]["id"], "inc-2026-03-02-dnd");
    let out = tidemark(&[
        "export",
        "inc-2026-03-02-dnd",
        "--db",
        db,
        "--format",
        "pdf",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("html"));
    let out = tidemark(&["export", "inc-nope", "--db", db]);
    assert_eq!(out.status.code(), Some(66));

    // An unknown incident is a clear error with the next step, exit 66.
    let out = tidemark(&["incident", "inc-nope", "--db", db]);
    assert_eq!(out.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tidemark incidents --db"));
}

#[test]
fn every_projection_command_has_help_and_refuses_a_missing_store() {
    let missing = Path::new("/nonexistent/tidemark.redb").to_str().unwrap();
    for command in ["flaps", "stuck", "orphans", "incidents", "alerts"] {
        let help = tidemark(&[command, "--help"]);
        assert!(help.status.success());
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("--json") && text.contains("--at"), "{text}");
        let out = tidemark(&[command, "--db", missing, "--json"]);
        assert_eq!(out.status.code(), Some(66), "{command}");
    }
}

/// `tidemark alerts`: what Alertmanager said, as findings: firing by default, all with
/// `--state all`, filtered by `--label`, at a past position with `--at`; a table without
/// `--json`; a bad `--label` is a usage error.
#[test]
fn alerts_lists_what_is_firing_and_filters_by_state_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alerts.redb");
    let db = db.to_str().unwrap();
    let alert = |id: &str, minute: u32, fired: bool, fingerprint: &str, namespace: &str| {
        json!({"id": id, "schema": 1, "type": if fired { "alert.fired" } else { "alert.resolved" },
            "time": format!("2026-03-02T11:{minute:02}:00Z"), "source": "alertmanager",
            "cluster": "pw-prod", "data": {"fingerprint": fingerprint, "name": "KubePodCrashLooping",
            "severity": "critical", "labels": {"namespace": namespace, "pod": format!("{namespace}-0")},
            "annotations": {"summary": format!("{namespace} crash-loops")},
            "starts_at": "2026-03-02T11:00:00Z",
            "ends_at": if fired { Value::Null } else { json!(format!("2026-03-02T11:{minute:02}:00Z")) }}})
        .to_string()
    };
    let log = dir.path().join("alerts.ndjson");
    std::fs::write(
        &log,
        [
            alert("a1", 1, true, "fp-bruno", "bruno"),
            alert("a2", 2, true, "fp-dnd", "dnd"),
            alert("a3", 9, false, "fp-dnd", "dnd"),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = tidemark(&["ingest", "--db", db, log.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fingerprints = |v: &Value| -> Vec<String> {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert"]["fingerprint"].as_str().unwrap().to_owned())
            .collect()
    };
    let firing = json_of(&["alerts", "--db", db, "--json"]);
    assert_eq!(fingerprints(&firing), ["fp-bruno"], "{firing}");
    assert_eq!(firing["seq"], 3);
    let all = json_of(&["alerts", "--db", db, "--json", "--state", "all"]);
    assert_eq!(fingerprints(&all), ["fp-bruno", "fp-dnd"]);
    assert_eq!(all["alerts"][1]["resolution_kind"], "source");
    let dnd = json_of(&[
        "alerts",
        "--db",
        db,
        "--json",
        "--state",
        "all",
        "--label",
        "namespace=dnd",
    ]);
    assert_eq!(fingerprints(&dnd), ["fp-dnd"]);
    // Before the resolve, both were firing.
    let before = json_of(&["alerts", "--db", db, "--json", "--at", "2"]);
    assert_eq!(fingerprints(&before), ["fp-bruno", "fp-dnd"]);
    let table = tidemark(&["alerts", "--db", db]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("KubePodCrashLooping")
            && text.contains("namespace=bruno")
            && text.contains("pod=bruno-0"),
        "{text}"
    );
    assert!(text.contains("1 alert(s) at log position 3"), "{text}");
    let bad = tidemark(&["alerts", "--db", db, "--label", "namespace"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
