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
