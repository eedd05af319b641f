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

/// A server killed when the test ends, however it ends (a failed assertion included).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// How every test runs Chromium: headless, in a container (no sandbox, no GPU, no /dev/shm).
const HEADLESS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
];

/// Runs headless Chromium on `url` with `args`; returns its stdout.
fn browse(chromium: &str, profile: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(chromium)
        .args(HEADLESS)
        .args([
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
    let (server, base) = spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--replay",
        log.to_str().unwrap(),
    ]);
    let server = Killed(server);

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
    // One script, the live update; the page needs none of it: every entry is in the HTML the
    // server sends, which is what a browser without JavaScript shows.
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "one script: the live update"
    );
    let without_scripts = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for entry in entries {
        let seq = entry["seq"].as_u64().unwrap();
        assert!(
            without_scripts.contains(&format!("id=\"seq-{seq}\"")),
            "without JavaScript, timeline entry {seq} is missing"
        );
    }
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

    drop(server);
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
    let (server, base) = spawn_server(&args);
    let server = Killed(server);

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
    drop(server);
}

/// Headless Chromium driven over its DevTools protocol: the one page it opened, evaluated.
struct Browser {
    child: std::process::Child,
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next_id: u64,
}

impl Browser {
    /// Opens `url` in headless Chromium with remote debugging on a free port.
    fn open(chromium: &str, profile: &Path, url: &str) -> Self {
        use std::io::BufRead as _;
        let mut child = Command::new(chromium)
            .args(HEADLESS)
            .args([
                "--remote-debugging-port=0",
                &format!("--user-data-dir={}", profile.display()),
            ])
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("chromium runs");
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let browser_ws = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("DevTools listening on ").nth(1).map(str::to_owned))
            .expect("chromium prints its DevTools address");
        // Keep draining its stderr so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let port = browser_ws
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let page_ws = loop {
            let targets = ureq::get(&format!("http://{port}/json/list"))
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap();
            let targets: Value = serde_json::from_str(&targets).unwrap();
            let found = targets.as_array().unwrap().iter().find_map(|t| {
                (t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url)))
                    .then(|| t["webSocketDebuggerUrl"].as_str().unwrap().to_owned())
            });
            if let Some(found) = found {
                break found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no page target: {targets}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let (socket, _) = tungstenite::connect(page_ws).expect("the page's DevTools socket");
        Self {
            child,
            socket,
            next_id: 0,
        }
    }

    /// The value of a JavaScript expression in the page.
    fn evaluate(&mut self, expression: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = serde_json::json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true}});
        self.socket
            .send(tungstenite::Message::text(request.to_string()))
            .unwrap();
        loop {
            let message = self.socket.read().unwrap();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let answer: Value = serde_json::from_str(text).unwrap();
            if answer["id"] == id {
                return answer["result"]["result"]["value"].clone();
            }
        }
    }

    /// Waits (at most 30 s) until `expression` is true in the page.
    fn wait_for(&mut self, expression: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.evaluate(expression) != Value::Bool(true) {
            assert!(
                std::time::Instant::now() < deadline,
                "the page never had {expression}: {}",
                self.evaluate("document.body.outerHTML.slice(0, 3000)")
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_event_posted_while_a_page_is_open_appears_on_it_without_a_reload() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.redb");
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/incident-day.ndjson");
    let (server, base) = spawn_server(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--replay",
        log.to_str().unwrap(),
    ]);
    let server = Killed(server);
    let post = |event: Value| {
        let response = ureq::post(&format!("{base}/v1/events"))
            .header("content-type", "application/json")
            .send(event.to_string().as_bytes())
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    };
    let pages = [
        (
            format!("{base}/incidents/inc-2026-03-02-dnd"),
            serde_json::json!({"id": "live-note-1", "schema": 1, "type": "note.added",
                "time": "2026-03-02T14:30:00Z", "source": "web-test", "cluster": "pw-prod",
                "data": {"incident": "inc-2026-03-02-dnd", "author": "ana", "kind": "observation",
                         "text": "posted while the incident page was open"}}),
            "document.querySelector('main').innerText.includes('posted while the incident page was open')",
        ),
        (
            format!("{base}/findings/pw-prod/pod%3Acrashloop%3Adnd%2Fdnd-backend"),
            // A clean cycle: the finding's clean count moves, a timeline entry of its own.
            serde_json::json!({"id": "live-cycle-1", "schema": 1, "type": "cycle.completed",
                "time": "2026-03-02T14:30:30Z", "source": "runner", "cluster": "pw-prod",
                "data": {"cycle": "live-page-cycle", "categories": ["pods", "nodes"],
                         "findings": []}}),
            "[...document.querySelectorAll('main .facts div')].some(d => d.textContent === 'Clean cycles1')",
        ),
        (
            format!("{base}/"),
            serde_json::json!({"id": "live-incident-1", "schema": 1, "type": "incident.opened",
                "time": "2026-03-02T14:31:00Z", "source": "web-test", "cluster": "pw-prod",
                "data": {"incident": "inc-live-1", "title": "Opened while the home page was open",
                         "severity": "warning", "check_keys": []}}),
            "document.querySelector('main').innerText.includes('Opened while the home page was open')",
        ),
    ];
    for (n, (url, event, shows)) in pages.into_iter().enumerate() {
        let profile = dir.path().join(format!("chromium-live-{n}"));
        let mut browser = Browser::open(&chromium, &profile, &url);
        browser.wait_for("document.body.getAttribute('data-live-state') === 'open'");
        assert_eq!(browser.evaluate(shows), Value::Bool(false), "{url}");
        // A mark on this document: gone if the page reloaded.
        browser.evaluate("window.tidemarkNotReloaded = true");
        post(event);
        browser.wait_for(shows);
        assert_eq!(
            browser.evaluate("window.tidemarkNotReloaded === true"),
            Value::Bool(true),
            "{url} reloaded instead of updating itself"
        );
    }
    drop(server);
}
