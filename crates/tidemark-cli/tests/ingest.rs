//! `tidemark ingest` as a user runs it: the decoding thread and the writer keep file order,
//! invalid lines go to quarantine (or stop the run with `--strict`) and nothing valid is lost,
//! whatever the batch size.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .output()
        .expect("the tidemark binary runs")
}

fn cycle(n: usize, key: &str) -> String {
    json!({
        "id": format!("ev-{n:04}"), "schema": 1, "type": "cycle.completed",
        "time": format!("2026-03-02T{:02}:{:02}:00Z", 8 + n / 60, n % 60),
        "source": "probe", "cluster": "pw-prod",
        "data": {"cycle": format!("c-{n}"), "categories": ["pods"], "findings": [
            {"check_key": key, "category": "pods", "severity": "error", "title": "crash-looping"}
        ]}
    })
    .to_string()
}

/// 300 lines: valid cycles, with a line of broken JSON at 100 and an unknown field at 200.
fn write_log(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for n in 1..=300 {
        lines.push(match n {
            100 => "{\"id\": \"broken\", ".to_owned(),
            200 => cycle(n, "k").replace("\"source\"", "\"surprise\":1,\"source\""),
            _ => cycle(n, &format!("pods:app-{}", n % 7)),
        });
    }
    let path = dir.join("log.ndjson");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn stored_ids(db: &Path) -> Vec<String> {
    let out = tidemark(&[
        "timeline",
        "--db",
        db.to_str().unwrap(),
        "--cluster",
        "pw-prod",
        "--limit",
        "1000",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Value = serde_json::from_slice(&out.stdout).unwrap();
    entries
        .as_array()
        .expect("an array of timeline entries")
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_valid_line_is_stored_in_file_order_and_invalid_ones_are_quarantined() {
    for batch in ["1", "7", "4096"] {
        let dir = tempfile::tempdir().unwrap();
        let log = write_log(dir.path());
        let db = dir.path().join("t.redb");
        let out = tidemark(&[
            "ingest",
            "--db",
            db.to_str().unwrap(),
            "--batch",
            batch,
            "--json",
            log.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(65),
            "batch {batch}: rejected lines exit 65"
        );
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["accepted"], 298, "batch {batch}: {summary}");
        assert_eq!(summary["rejected"], 2);
        let expected: Vec<String> = (1..=300)
            .filter(|n| *n != 100 && *n != 200)
            .map(|n| format!("ev-{n:04}"))
            .collect();
        assert_eq!(stored_ids(&db), expected, "batch {batch}: file order kept");
        let quarantine = tidemark(&["quarantine", "--db", db.to_str().unwrap(), "--json"]);
        let text = String::from_utf8_lossy(&quarantine.stdout);
        assert!(
            text.contains("line 100") && text.contains("line 200"),
            "{text}"
        );
    }
}

#[test]
fn strict_stops_at_the_first_invalid_line_with_everything_before_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let db = dir.path().join("t.redb");
    let out = tidemark(&[
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--batch",
        "7",
        "--strict",
        log.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 100"), "{stderr}");
    assert!(
        stderr.contains("99 event(s) before it were stored"),
        "{stderr}"
    );
    assert_eq!(stored_ids(&db).len(), 99);
}

#[test]
fn a_bad_line_repeated_is_one_quarantine_record_and_past_the_bound_lines_are_only_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.ndjson");
    // The same bad line 500 times between good ones, then three different bad lines.
    let mut lines = vec![cycle(1, "k")];
    lines.extend(std::iter::repeat_n("1".to_owned(), 500));
    lines.extend(["[2]", "[3]", "[4]"].map(str::to_owned));
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let db = dir.path().join("t.redb");
    let out = tidemark(&[
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--quarantine-max-records",
        "2",
        "--json",
        log.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(65));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            &summary["accepted"],
            &summary["rejected"],
            &summary["raw_not_kept"]
        ),
        (&json!(1), &json!(503), &json!(2)),
        "{summary}"
    );
    assert!(
        summary["rejected_lines"][0].as_str().unwrap().ends_with(
            "line 2: event without a readable id: expected a JSON object (one event per line)"
        ),
        "{summary}"
    );
    let listed = tidemark(&["quarantine", "--db", db.to_str().unwrap(), "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(
        (&listed[0]["raw"], &listed[0]["count"]),
        (&json!("1"), &json!(500))
    );
    let text = tidemark(&["quarantine", "--db", db.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("(refused 500 times, last at "),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    let stats = tidemark(&["stats", "--db", db.to_str().unwrap(), "--json"]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        (&stats["quarantined"], &stats["quarantine_dropped"]),
        (&json!(2), &json!(2))
    );
}
