//! `tidemark replay` as a user runs it: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("the tidemark binary runs")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn replay_json(log: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["replay", "--json"];
    args.extend_from_slice(extra);
    args.push(log.to_str().unwrap());
    let out = tidemark(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn finding<'a>(views: &'a [Value], key: &str) -> &'a Value {
    views
        .iter()
        .find(|v| v["check_key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {views:?}"))
}

#[test]
fn seed_003_section_7_resolves_on_the_third_clean_cycle() {
    let log = repo("replay/auto-resolve-race/events.ndjson");
    // After the second clean infra_drift cycle (position 7): still active, two clean cycles.
    let at_7 = replay_json(&log, &["--until", "7"]);
    let f = finding(&at_7, "proxied:domain:42");
    assert_eq!(f["state"], "active");
    assert_eq!(f["clean_cycles"], 2);
    // The third clean cycle (position 8) resolves it, automatically, at its time.
    let at_end = replay_json(&log, &[]);
    let f = finding(&at_end, "proxied:domain:42");
    assert_eq!(f["state"], "resolved");
    assert_eq!(f["clean_cycles"], Value::Null);
    assert_eq!(f["resolution_kind"], "auto");
    assert_eq!(f["resolved_at"], "2026-03-02T14:23:00Z");
    assert_eq!(f["history"][0]["resolved_seq"], 8);
    assert_eq!(f["history"][0]["opened_seq"], 2);
    assert_eq!(f["occurrences"], 1);
    assert_eq!(f["flapping"], false);
    // The same by time.
    let by_time = replay_json(&log, &["--until", "2026-03-02T14:20:00Z"]);
    assert_eq!(finding(&by_time, "proxied:domain:42")["state"], "active");
}

#[test]
fn json_has_every_documented_field_sorted_by_cluster_and_key() {
    let views = replay_json(&repo("replay/auto-resolve-race/events.ndjson"), &[]);
    let keys: Vec<(&str, &str)> = views
        .iter()
        .map(|v| {
            (
                v["cluster"].as_str().unwrap(),
                v["check_key"].as_str().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    for field in [
        "cluster",
        "check_key",
        "category",
        "severity",
        "title",
        "state",
        "clean_cycles",
        "opened_at",
        "last_seen_at",
        "resolved_at",
        "resolution_kind",
        "occurrences",
        "flapping",
        "history",
    ] {
        assert!(views[0].get(field).is_some(), "missing {field}");
    }
    for field in [
        "opened_at",
        "resolved_at",
        "resolution_kind",
        "opened_seq",
        "resolved_seq",
    ] {
        assert!(
            views[0]["history"][0].get(field).is_some(),
            "history misses {field}"
        );
    }
}

#[test]
fn a_bad_line_stops_the_replay_naming_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bad.ndjson");
    let good = std::fs::read_to_string(repo("replay/auto-resolve-race/events.ndjson")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    let bad = r#"{"id":"bad-1","schema":1,"type":"cycle.completed","time":"2026-03-02T14:09:00Z","source":"p","cluster":"pw-prod","data":{"cycle":"x","categories":[],"findings":[{"check_key":"k","category":"pods","severity":"fatal","title":"t"}]}}"#;
    lines.insert(3, bad);
    std::fs::write(&log, lines.join("\n")).unwrap();

    let out = tidemark(&["replay", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 4: event \"bad-1\": field `data.findings[0].severity`"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown variant `fatal`"), "{stderr}");
    assert!(stderr.contains("--skip-invalid"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = tidemark(&["replay", "--skip-invalid", "--json", log.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped 1 invalid line(s)") && stderr.contains("line 4"),
        "{stderr}"
    );
    let views: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        finding(&views, "proxied:domain:42")["resolution_kind"],
        "auto"
    );
}

#[test]
fn duplicate_ids_are_skipped_and_take_no_position() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dup.ndjson");
    let good = std::fs::read_to_string(repo("replay/auto-resolve-race/events.ndjson")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let mut with_dups = lines.clone();
    with_dups.insert(5, lines[1]);
    with_dups.push(lines[2]);
    std::fs::write(&log, with_dups.join("\n")).unwrap();
    assert_eq!(
        replay_json(&log, &[]),
        replay_json(&repo("replay/auto-resolve-race/events.ndjson"), &[])
    );
    let out = tidemark(&["replay", log.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 duplicate id(s) skipped"));
}

#[test]
fn missing_file_and_bad_until_are_clear() {
    let out = tidemark(&["replay", "/nonexistent/log.ndjson"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/log.ndjson"));
    let out = tidemark(&["replay", "--until", "yesterday", "x.ndjson"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a log position"));
}

#[test]
fn a_repeated_id_with_a_later_time_does_not_end_until_time_early() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("late-dup.ndjson");
    let original = repo("replay/auto-resolve-race/events.ndjson");
    let good = std::fs::read_to_string(&original).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    // The id of line 2 again, stamped hours later: not part of the log, so not its clock.
    lines.insert(
        3,
        lines[1].replace("2026-03-02T14:03:00Z", "2026-03-02T23:00:00Z"),
    );
    std::fs::write(&log, lines.join("\n")).unwrap();
    let until = ["--until", "2026-03-02T14:20:00Z"];
    assert_eq!(replay_json(&log, &until), replay_json(&original, &until));
}

#[test]
fn the_replay_corpus_matches_its_reviewed_expectations() {
    let out = tidemark(&["replay", "--check", repo("replay").to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for case in [
        "auto-resolve-race",
        "catalogue",
        "cluster-health-sweep",
        "crash-loop-runbook",
        "homeaiops-audit",
        "schema-rename-outage",
    ] {
        assert!(stdout.contains(&format!("ok   {case}:")), "{stdout}");
    }
    let out = tidemark(&[
        "replay",
        "--check",
        "--json",
        repo("replay").to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["cases"], 6);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_wrong_expectation_fails_the_check_with_a_diff_naming_case_checkpoint_and_view() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("catalogue");
    copy_dir(&repo("replay/catalogue"), &case);
    // Pretend someone recorded the increment-then-resolve answer at the race checkpoint.
    let path = case.join("expected/wrong-order-would-resolve-here/findings.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut views: Vec<Value> = serde_json::from_str(&text).unwrap();
    let race = views
        .iter_mut()
        .find(|v| v["check_key"] == "proxied:domain:42")
        .unwrap();
    race["state"] = "resolved".into();
    std::fs::write(&path, serde_json::to_string_pretty(&views).unwrap() + "\n").unwrap();
    std::fs::write(case.join("expected/end/stale.json"), "{}\n").unwrap();

    let out = tidemark(&["replay", "--check", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "MISMATCH case catalogue · checkpoint wrong-order-would-resolve-here (log position"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("view findings.json differs"), "{stdout}");
    assert!(stdout.contains("-    \"state\": \"resolved\","), "{stdout}");
    assert!(stdout.contains("+    \"state\": \"active\","), "{stdout}");
    assert!(
        stdout.contains("view stale.json is expected but the replay does not produce it"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL catalogue"), "{stdout}");

    // --bless rewrites expected/ from the replay: the check passes again.
    let out = tidemark(&["replay", "--bless", case.to_str().unwrap()]);
    assert!(out.status.success());
    let out = tidemark(&["replay", "--check", case.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn step_says_what_each_event_changed() {
    let log = repo("replay/auto-resolve-race/events.ndjson");
    let out = tidemark(&[
        "replay",
        "--step",
        "--json",
        "--from",
        "7",
        "--until",
        "8",
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let seqs: Vec<u64> = steps.iter().map(|s| s["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [7, 8]);
    assert_eq!(
        steps[0]["changes"][0]["change"], "clean 1 → 2",
        "{steps:#?}"
    );
    let resolved = steps[1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == "pw-prod proxied:domain:42")
        .expect("the race finding changed at 8");
    assert_eq!(resolved["change"], "resolved (auto)");
    let text = tidemark(&[
        "replay",
        "--step",
        repo("replay/catalogue").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("── checkpoint pvc-confirmed"), "{text}");
    assert!(
        text.contains("dangling PersistentVolumeClaim media/old-downloads: confirmed"),
        "{text}"
    );
    // The fold's changes (what --step prints) are the whole-state comparison's, event by
    // event, for every case of the corpus (--verify compares them; exit 1 at a difference).
    let mut cases: Vec<std::path::PathBuf> = std::fs::read_dir(repo("replay"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("events.ndjson").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "{cases:?}");
    for path in cases {
        let case = path.display();
        let verified = tidemark(&["replay", "--step", "--verify", path.to_str().unwrap()]);
        assert!(
            verified.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
        let plain = tidemark(&["replay", "--step", path.to_str().unwrap()]);
        assert_eq!(verified.stdout, plain.stdout, "{case}");
    }
}

/// A log line may be an Alertmanager webhook as the bridge received it: it stands for the
/// events the bridge stores (a retried one is stored once); one that does not translate stops
/// the replay naming its line.
#[test]
fn a_webhook_line_replays_as_the_events_the_bridge_stores() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("webhooks.ndjson");
    let line = |received: &str, status: &str, starts: &str, ends: &str| {
        serde_json::json!({
            "received_at": received,
            "alertmanager_webhook": {
                "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status,
                "receiver": "tidemark", "groupLabels": {}, "commonLabels": {"cluster": "lab"},
                "commonAnnotations": {}, "externalURL": "http://am",
                "alerts": [{"status": status,
                    "labels": {"alertname": "DiskFull", "namespace": "ns", "cluster": "lab"},
                    "annotations": {}, "startsAt": starts, "endsAt": ends,
                    "generatorURL": "http://prom", "fingerprint": "fp-disk"}]
            }
        })
        .to_string()
    };
    let zero = "0001-01-01T00:00:00Z";
    let fired = line(
        "2026-03-02T10:01:00Z",
        "firing",
        "2026-03-02T10:00:00Z",
        zero,
    );
    let lines = [
        fired.clone(),
        fired,
        line(
            "2026-03-02T10:20:00Z",
            "resolved",
            "2026-03-02T10:00:00Z",
            "2026-03-02T10:19:00Z",
        ),
    ];
    std::fs::write(&log, lines.join("\n")).unwrap();
    let views = replay_json(&log, &[]);
    let alert = finding(&views, "alert:DiskFull:fp-disk");
    assert_eq!(alert["cluster"], "lab");
    assert_eq!(
        alert["occurrences"], 1,
        "the retried webhook is stored once"
    );
    assert_eq!(alert["resolution_kind"], "source");
    assert_eq!(alert["resolved_at"], "2026-03-02T10:19:00Z");

    let bad = line(
        "2026-03-02T10:30:00Z",
        "firing",
        "1500-01-01T00:00:00Z",
        zero,
    );
    std::fs::write(&log, [lines[0].clone(), bad].join("\n")).unwrap();
    let out = tidemark(&["replay", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2: the Alertmanager webhook does not translate"),
        "{stderr}"
    );
}
