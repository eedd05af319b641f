//! The live stream's cost and correctness under load (issue 19; driven by `benches/stream/run`):
//! durable ingest over HTTP with no stream subscriber and with IDLE idle ones (connected,
//! filtered to a cluster nothing is sent to: each wakes at every commit and reads nothing),
//! alternated round by round so that a noisy machine hits both alike; then FOLLOWERS
//! subscribers following a full-speed ingest from its start, each checking that it got every
//! event exactly once and in order, resuming by itself after a cut-off or a dropped connection
//! (counted).

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;

/// Drives a running `tidemark serve` (started with `--stream-heartbeat 1`).
#[derive(Parser, Debug)]
struct Args {
    /// The server's log, where it prints its address.
    #[arg(long)]
    log: std::path::PathBuf,
    /// Rounds of each ingest phase (none, idle), alternated (an even number balances them).
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// Requests per round.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Events per request.
    #[arg(long, default_value_t = 500)]
    events: usize,
    /// Client connections posting at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Idle subscribers.
    #[arg(long, default_value_t = 100)]
    idle: usize,
    /// Subscribers following the full-speed ingest.
    #[arg(long, default_value_t = 10)]
    followers: usize,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// One NDJSON request body of `events` notes, ids from `first`.
fn body(first: usize, events: usize) -> Vec<u8> {
    let mut out = String::new();
    for n in first..first + events {
        out.push_str(&format!(
            r#"{{"id":"stream-bench-{n}","schema":1,"type":"note.added","time":"2026-03-{:02}T{:02}:{:02}:{:02}Z","source":"bench","cluster":"bench-{}","data":{{"author":"bench","kind":"observation","text":"event {n} of the stream benchmark, long enough to look like a note"}}}}"#,
            // A second apart, from 2026-03-01: times only move on, as a live log's do.
            1 + n / 86_400,
            n / 3_600 % 24,
            n / 60 % 60,
            n % 60,
            n % 4
        ));
        out.push('\n');
    }
    out.into_bytes()
}

/// Posts `requests` bodies over `concurrency` connections; answers (events/s, the last
/// position stored).
fn ingest(url: &str, first: usize, args: &Args) -> Result<(f64, u64)> {
    let bodies: Vec<Vec<u8>> = (0..args.requests)
        .map(|r| body(first + r * args.events, args.events))
        .collect();
    let barrier = Arc::new(Barrier::new(args.concurrency + 1));
    let bodies = Arc::new(bodies);
    let threads: Vec<_> = (0..args.concurrency)
        .map(|thread| {
            let (barrier, bodies, url) = (barrier.clone(), bodies.clone(), url.to_owned());
            let concurrency = args.concurrency;
            std::thread::spawn(move || -> Result<u64> {
                let agent = agent();
                let mut last = 0;
                barrier.wait();
                for body in bodies.iter().skip(thread).step_by(concurrency) {
                    let mut response = agent
                        .post(format!("{url}/v1/events"))
                        .header("content-type", "application/x-ndjson")
                        .send(&body[..])?;
                    let text = response.body_mut().read_to_string()?;
                    ensure!(response.status() == 200, "{}: {text}", response.status());
                    let answer: serde_json::Value = serde_json::from_str(&text)?;
                    let seq = answer["results"]
                        .as_array()
                        .and_then(|r| r.last())
                        .and_then(|r| r["seq"].as_u64())
                        .context("no position in the answer")?;
                    last = last.max(seq);
                }
                Ok(last)
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut last = 0;
    for thread in threads {
        last = last.max(thread.join().expect("a client thread panicked")?);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(((args.requests * args.events) as f64 / seconds, last))
}

/// A stream connection's frames: (id, event name, data).
struct Frames {
    lines: std::io::Lines<BufReader<ureq::BodyReader<'static>>>,
}

impl Frames {
    fn open(url: &str, last_event_id: Option<u64>) -> Result<Self> {
        let mut request = agent().get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.call()?;
        ensure!(response.status() == 200, "{url}: {}", response.status());
        Ok(Self {
            lines: BufReader::new(response.into_body().into_reader()).lines(),
        })
    }

    /// The next frame (comments give an empty one, so a reader can check a flag), `None` at
    /// the end of the stream.
    fn next(&mut self) -> Option<(Option<u64>, String, String)> {
        let (mut id, mut event, mut data) = (None, String::new(), String::new());
        for line in self.lines.by_ref() {
            let line = line.ok()?;
            if line.is_empty() {
                return Some((id, event, data));
            }
            match line.split_once(':') {
                Some(("", _)) => {}
                Some(("id", v)) => id = v.trim().parse().ok(),
                Some(("event", v)) => event = v.trim().to_owned(),
                Some(("data", v)) => data.push_str(v.trim_start()),
                _ => {}
            }
        }
        None
    }
}

/// IDLE subscribers connected until `stop` (they notice it at the next heartbeat).
fn idle_subscribers(
    url: &str,
    count: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let ready = Arc::new(Barrier::new(count + 1));
    let threads = (0..count)
        .map(|_| {
            let (url, stop, ready) = (
                format!("{url}/v1/stream?cluster=bench-idle-nobody"),
                stop.clone(),
                ready.clone(),
            );
            std::thread::spawn(move || {
                let mut frames = Frames::open(&url, None).expect("an idle subscriber connects");
                let _ = frames.next(); // subscribed
                ready.wait();
                while !stop.load(Ordering::SeqCst) && frames.next().is_some() {}
            })
        })
        .collect();
    ready.wait();
    threads
}

/// What one follower saw.
#[derive(Debug, Default)]
struct Followed {
    events: u64,
    resumes: u64,
    cut_offs: u64,
    out_of_order: u64,
    /// When it received its last event.
    last_event_at: Option<Instant>,
}

fn follow(
    url: &str,
    after: u64,
    last: &Arc<std::sync::atomic::AtomicU64>,
    done: &Arc<AtomicBool>,
) -> Followed {
    let mut seen = Followed::default();
    let mut resume = after;
    loop {
        let Ok(mut frames) = Frames::open(&format!("{url}/v1/stream"), Some(resume)) else {
            seen.resumes += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        while let Some((id, event, data)) = frames.next() {
            match event.as_str() {
                "event" => {
                    let seq = id.unwrap_or(0);
                    if seq != resume + 1 {
                        seen.out_of_order += 1;
                    }
                    resume = seq;
                    seen.events += 1;
                    seen.last_event_at = Some(Instant::now());
                }
                "cut_off" => {
                    seen.cut_offs += 1;
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&data)
                        && let Some(at) = v["resume_after"].as_u64()
                    {
                        resume = at;
                    }
                }
                _ => {}
            }
            if done.load(Ordering::SeqCst) && resume >= last.load(Ordering::SeqCst) {
                return seen;
            }
        }
        seen.resumes += 1;
    }
}

fn checkpoint(url: &str) -> Result<u64> {
    let metrics = agent()
        .get(format!("{url}/metrics"))
        .call()?
        .body_mut()
        .read_to_string()?;
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("tidemark_events_ingested_total{outcome=\"accepted\"} ")?
                .parse()
                .ok()
        })
        .context("no tidemark_events_ingested_total in /metrics")
}

fn main() -> Result<()> {
    let args = Args::parse();
    let url = tidemark_benches::served::wait_ready(&args.log, Duration::from_secs(60))?;
    let mut next_id = 0;
    let mut rates: Vec<(&str, f64)> = Vec::new();
    for round in 0..args.rounds {
        // A, B, B, A, ...: the store grows as the run goes on, and each phase gets as many
        // early places as late ones.
        let order = if round % 2 == 0 {
            ["none", "idle"]
        } else {
            ["idle", "none"]
        };
        for phase in order {
            let stop = Arc::new(AtomicBool::new(false));
            let idle = if phase == "idle" {
                idle_subscribers(&url, args.idle, &stop)
            } else {
                Vec::new()
            };
            let (rate, _) = ingest(&url, next_id, &args)?;
            next_id += args.requests * args.events;
            stop.store(true, Ordering::SeqCst);
            for thread in idle {
                let _ = thread.join();
            }
            println!(
                "{}",
                serde_json::json!({"phase": phase, "round": round, "subscribers": if phase == "idle" { args.idle } else { 0 },
                    "events_per_sec": rate, "events": args.requests * args.events})
            );
            rates.push((phase, rate));
        }
    }
    let mean = |phase: &str| {
        let r: Vec<f64> = rates
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, r)| *r)
            .collect();
        r.iter().sum::<f64>() / r.len().max(1) as f64
    };
    let (none, idle) = (mean("none"), mean("idle"));
    println!(
        "{}",
        serde_json::json!({"summary": "idle", "idle_subscribers": args.idle,
            "events_per_sec_without": none, "events_per_sec_with_idle": idle,
            "cost_percent": (1.0 - idle / none) * 100.0})
    );

    // Followers from the current end of the log, through a full-speed ingest.
    let start = checkpoint(&url)?;
    let last = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let followers: Vec<_> = (0..args.followers)
        .map(|_| {
            let (url, last, done) = (url.clone(), last.clone(), done.clone());
            std::thread::spawn(move || follow(&url, start, &last, &done))
        })
        .collect();
    let (rate, last_seq) = ingest(&url, next_id, &args)?;
    let writer_done = Instant::now();
    last.store(last_seq, Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    let expected = last_seq - start;
    let mut all_exact = true;
    for (n, follower) in followers.into_iter().enumerate() {
        let seen = follower.join().expect("a follower panicked");
        let exact = seen.events == expected && seen.out_of_order == 0;
        all_exact &= exact;
        println!(
            "{}",
            serde_json::json!({"phase": "follow", "follower": n, "events": seen.events,
                "expected": expected, "exactly_once_in_order": exact, "resumes": seen.resumes,
                "cut_offs": seen.cut_offs,
                "caught_up_secs_after_writer": seen.last_event_at
                    .map_or(0.0, |at| at.saturating_duration_since(writer_done).as_secs_f64())})
        );
    }
    println!(
        "{}",
        serde_json::json!({"summary": "follow", "followers": args.followers,
            "events_per_sec_while_followed": rate, "events": expected, "all_exact": all_exact})
    );
    ensure!(all_exact, "a follower missed, repeated or reordered events");
    Ok(())
}
