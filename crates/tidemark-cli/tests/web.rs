//! The web timeline in a real headless Chromium: `tidemark serve --replay` an incident, load its
//! page in the browser, check that every timeline entry the API knows is on the page (as the
//! browser rendered it), and save a screenshot (`target/web-screenshots/`).
//!
//! Chromium comes from `scripts/install-chromium` (Debian's `chromium`); `TIDEMARK_CHROMIUM`
//! points at another binary.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::spawn_server;

fn chromium() -> String {
    if let Ok(path) = std::env::var("TIDEMARK_CHROMIUM") {
        return path;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-chromium");
    let out = Command::new(&script)
        .output()
        .expect("scripts/install-chromium runs");
    assert!(
        out.status.success(),
        "no Chromium for the browser test: {} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs headless Chromium on `url` with `args`; returns its stdout.
fn browse(chromium: &str, profile: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_incident_page_shows_every_timeline_entry_in_a_real_browser() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("web.redb");
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/incident-day.ndjson");
    let (mut server, base) = spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--replay",
        log.to_str().unwrap(),
    ]);

    // What the API says the incident's timeline is.
    let text = ureq::get(&format!("{base}/v1/incidents/inc-2026-03-02-dnd/timeline"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let api: Value = serde_json::from_str(&text).unwrap();
    let entries = api["timeline"].as_array().unwrap();
    assert!(entries.len() >= 8, "{api:#}");

    // What the browser renders.
    let profile = dir.path().join("chromium-profile");
    let url = format!("{base}/incidents/inc-2026-03-02-dnd");
    let dom = browse(&chromium, &profile, &url, &["--dump-dom"]);
    assert!(dom.contains("dnd-backend CrashLoopBackOff"), "{dom}");
    for entry in entries {
        let seq = entry["seq"].as_u64().unwrap();
        assert!(
            dom.contains(&format!("id=\"seq-{seq}\"")),
            "timeline entry {seq} ({}) missing from the page",
            entry["summary"]
        );
    }
    // Kinds are distinguished, findings have lanes, the note and the deploy are there.
    assert!(dom.contains("entry-note-added") && dom.contains("entry-change-deployed"));
    assert!(
        dom.matches("class=\"lane").count() >= 5,
        "one lane per finding"
    );
    assert!(dom.contains("ECR pull secret expired?"));
    assert!(!dom.contains("<script"), "the page needs no JavaScript");
    // The maintenance window over namespace dnd (09:02 to 09:08) is a band on its lanes, in the
    // legend too.
    assert!(
        dom.contains("class=\"maint\" data-window=\"dnd-node-drain\""),
        "no maintenance band on the dnd lanes"
    );
    assert!(dom.contains("maintenance window"), "no legend for the band");
    // The maintenance page lists every window in effect.
    let maintenance = browse(
        &chromium,
        &profile,
        &format!("{base}/maintenance?state=all"),
        &["--dump-dom"],
    );
    assert!(
        maintenance.contains("data-window=\"weekend-patching\"")
            && maintenance.contains("Maintenance windows"),
        "{maintenance}"
    );

    // A finding's page pages its timeline: from the latest page, the "older" links lead back
    // to the first entry, and the pages together are the whole timeline.
    let incident: Value = serde_json::from_str(
        &ureq::get(&format!("{base}/v1/incidents/inc-2026-03-02-dnd"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let finding = &incident["incident"]["findings"][0];
    let path = format!(
        "{}/{}",
        segment(finding["cluster"].as_str().unwrap()),
        segment(finding["check_key"].as_str().unwrap())
    );
    let api: Value = serde_json::from_str(
        &ureq::get(&format!("{base}/v1/findings/{path}?limit=1000"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let whole: Vec<u64> = api["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(
        whole.len() >= 2,
        "a timeline longer than a page of 1: {api:#}"
    );
    let mut shown: Vec<u64> = Vec::new();
    let mut page_url = format!("{base}/findings/{path}?limit=1");
    let mut pages = 0;
    loop {
        let dom = browse(&chromium, &profile, &page_url, &["--dump-dom"]);
        let table = &dom[dom.find("<table class=\"timeline\"").expect("a timeline")..];
        let table = &table[..table.find("</table>").unwrap()];
        let seqs: Vec<u64> = table
            .split("id=\"seq-")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
            .collect();
        assert_eq!(seqs.len(), 1, "{page_url}: {seqs:?}");
        shown.splice(0..0, seqs);
        pages += 1;
        let Some(link) = dom.find("class=\"older\"") else {
            break;
        };
        let href = &dom[link..];
        let href = &href[href.find("href=\"").unwrap() + 6..];
        let href = href[..href.find('"').unwrap()].replace("&amp;", "&");
        page_url = format!("{base}/findings/{path}{href}");
        assert!(pages < 100, "the older links never end");
    }
    assert_eq!(
        shown, whole,
        "the pages followed back are the whole timeline"
    );
    assert!(pages >= 2);

    let shot = screenshots().join("incident.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chromium,
        &profile,
        &url,
        &[
            "--window-size=1400,1700",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );

    // The incidents list links to it, and the orphans page draws the graph.
    let list = browse(&chromium, &profile, &format!("{base}/"), &["--dump-dom"]);
    assert!(list.contains("/incidents/inc-2026-03-02-dnd"), "{list}");
    let orphans = browse(
        &chromium,
        &profile,
        &format!("{base}/orphans"),
        &["--dump-dom"],
    );
    assert!(
        orphans.contains("plex-config") && orphans.contains("<svg"),
        "{orphans}"
    );

    server.kill().unwrap();
    server.wait().unwrap();
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

/// The text of a page as a reader sees it: tags dropped, entities read, whitespace collapsed.
fn visible_text(dom: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the README says the demo shows; each phrase must be in the README and on the page.
const DEMO_STORY: &[&str] = &[
    "dnd-backend CrashLoopBackOff",
    "ongoing · 5h 45m to the last event",
    "asyncio.run() cannot be called from a running event loop",
    "DatatypeMismatch: vector vs ARRAY",
    "sha-a1b2c3d",
];

/// `./scripts/demo`'s logs, served as the demo serves them: the incident page tells the README's
/// story, every finding of the incident opened at or before it was last seen, the timeline's
/// times never go back (and nothing is marked late), and the failure layers are in the README's
/// order. The screenshot (`target/web-screenshots/demo-incident.png`) is the README's picture.
#[test]
fn the_demo_incident_page_tells_the_readme_story() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    // As a reader sees it: lines joined.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    for phrase in DEMO_STORY {
        assert!(
            readme.contains(phrase),
            "the README does not say {phrase:?}"
        );
    }
    let listed = Command::new(root.join("scripts/demo"))
        .arg("--print-logs")
        .output()
        .unwrap();
    assert!(listed.status.success());
    let logs: Vec<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|l| root.join(l).to_str().unwrap().to_owned())
        .collect();
    assert!(logs.len() >= 2, "{logs:?}");

    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.redb");
    let mut args = vec![
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    for log in &logs {
        args.extend(["--replay", log.as_str()]);
    }
    let (mut server, base) = spawn_server(&args);

    let profile = dir.path().join("chromium-profile");
    let url = format!("{base}/incidents/inc-2026-03-02-dnd");
    let dom = browse(&chromium, &profile, &url, &["--dump-dom"]);
    let text = visible_text(&dom);
    for phrase in DEMO_STORY {
        assert!(
            text.contains(phrase),
            "the demo page does not say {phrase:?}: {text}"
        );
    }
    // The layers, in the README's order.
    let first = dom.find("asyncio.run()").unwrap();
    let second = dom.find("DatatypeMismatch").unwrap();
    assert!(first < second, "failure layers out of order");

    // Timeline times never go back, and nothing is late.
    let table_start = dom
        .find("<table class=\"timeline\"")
        .expect("a timeline table");
    let table = &dom[table_start..];
    let table = &table[..table.find("</table>").unwrap()];
    let times: Vec<&str> = table
        .split("<time datetime=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(times.len() >= 8, "{times:?}");
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "the timeline goes back in time: {times:?}"
    );
    assert!(!table.contains("late-mark"), "a timeline entry is late");

    // Every finding of the incident opened at or before it was last seen.
    let incident: Value = serde_json::from_str(
        &ureq::get(&format!("{base}/v1/incidents/inc-2026-03-02-dnd"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let findings = incident["incident"]["findings"].as_array().unwrap();
    assert!(findings.len() >= 2, "{incident:#}");
    for finding in findings {
        let (cluster, key) = (
            finding["cluster"].as_str().unwrap(),
            finding["check_key"].as_str().unwrap(),
        );
        let view: Value = serde_json::from_str(
            &ureq::get(&format!("{base}/v1/findings/{cluster}/{key}"))
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap(),
        )
        .unwrap();
        let finding = &view["finding"];
        let (opened, seen) = (
            finding["opened_at"].as_str().unwrap(),
            finding["last_seen_at"].as_str().unwrap(),
        );
        assert!(opened <= seen, "{key}: opened {opened}, last seen {seen}");
    }

    let shot = screenshots().join("demo-incident.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chromium,
        &profile,
        &url,
        &[
            "--window-size=1400,1700",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 20_000);
    server.kill().unwrap();
    server.wait().unwrap();
}
