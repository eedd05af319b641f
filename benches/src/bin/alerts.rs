//! `alerts`: the programs behind `benches/alerts/run` (issue 18, alerts are findings) — a load
//! generator that posts Alertmanager webhooks of distinct alerts to `tidemark serve` from
//! CONCURRENCY threads (one connection each) and times every request, the check that every
//! alert sent was stored, the alert fold on one core, and the Markdown report against the
//! issue's goals.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidemark_benches::alerts::{
    AlertChurn, AlertChurnShape, AlertStep, cluster_of, webhook_alert, webhook_payload,
};
use tidemark_benches::live::Tables;
use tidemark_core::Projections;
use tidemark_core::findings::FindingsProjection;

#[derive(Parser, Debug)]
#[command(
    name = "alerts",
    about = "Alertmanager webhooks through HTTP and the alert fold (benches/alerts/run)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Wait until the server that logs to LOG answers /readyz; print its base URL.
    WaitReady {
        /// The server's stderr.
        #[arg(long)]
        log: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
    /// Post REQUESTS webhooks of ALERTS_PER_REQUEST distinct firing alerts each (alert indexes
    /// from FIRST_INDEX on) from CONCURRENCY threads; print one JSON line of figures.
    Load(LoadArgs),
    /// Count the alerts the server holds (every state, paging `GET /v1/alerts`) and the events
    /// it accepted (`/metrics`); fail unless both equal EXPECTED.
    Count {
        /// The server's base URL.
        #[arg(long)]
        url: String,
        /// A read token (`Authorization: Bearer`).
        #[arg(long, env = "ALERTS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Alerts sent in all.
        #[arg(long)]
        expected: u64,
    },
    /// Fold EVENTS alert notifications of ALERTS distinct alerts on this thread; print one JSON
    /// line with the best and the median events/s of REPEAT folds.
    Fold {
        /// Events folded.
        #[arg(long)]
        events: usize,
        /// Distinct alerts.
        #[arg(long)]
        alerts: usize,
        /// Clusters the alerts are spread over.
        #[arg(long, default_value_t = 4)]
        clusters: usize,
        /// What folds them.
        #[arg(long, value_enum, default_value_t = Fold::Live)]
        projection: Fold,
        /// With `live`: events per batch (a batch's records are written out at its end).
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        /// Folds timed (each from an empty state).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Seed of the stream.
        #[arg(long, default_value_t = 18)]
        seed: u64,
    },
    /// Print the Markdown tables of a results file (JSON lines of `load`, `count` and `fold`).
    Report {
        /// The results file.
        #[arg(long)]
        results: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// The server's base URL.
    #[arg(long)]
    url: String,
    /// A write token (`Authorization: Bearer`).
    #[arg(long, env = "ALERTS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The phase's name in the report.
    #[arg(long)]
    phase: String,
    /// Requests posted.
    #[arg(long)]
    requests: usize,
    /// Alerts in each webhook.
    #[arg(long, default_value_t = 1)]
    alerts_per_request: usize,
    /// Client threads, one connection each.
    #[arg(long)]
    concurrency: usize,
    /// Index of the first alert: phases use disjoint ranges, so every alert is distinct.
    #[arg(long, default_value_t = 0)]
    first_index: u64,
    /// Clusters the alerts are spread over.
    #[arg(long, default_value_t = 4)]
    clusters: usize,
    /// The server's process id, to read the CPU time it spent (`/proc/PID/stat`).
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Fold {
    /// Every projection as the store's live state folds them: the history, closed incidents
    /// and dropped orphans written out after each batch of `--batch` events (into in-memory
    /// tables standing for redb's, read back through them).
    Live,
    /// Every projection (findings with flaps, stuck and churn; orphans; incidents) with
    /// everything in memory, as `benches/benches/fold.rs` folds.
    All,
    /// The findings projection alone.
    Findings,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::WaitReady { log, timeout_secs } => {
            println!(
                "{}",
                tidemark_benches::served::wait_ready(&log, Duration::from_secs(timeout_secs))?
            );
            Ok(())
        }
        Command::Load(args) => load(&args),
        Command::Count {
            url,
            token,
            expected,
        } => count(&url, token.as_deref(), expected),
        Command::Fold {
            events,
            alerts,
            clusters,
            projection,
            batch,
            repeat,
            seed,
        } => fold(
            AlertChurnShape {
                clusters,
                alerts,
                seed,
            },
            events,
            (projection, batch),
            repeat,
        ),
        Command::Report { results } => report(&results),
    }
}

// ---------------------------------------------------------------------------------------------
// the HTTP client

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

fn bearer(token: Option<&str>) -> Option<String> {
    token.map(|t| format!("Bearer {t}"))
}

fn get_text(agent: &ureq::Agent, url: &str, auth: Option<&str>) -> Result<String> {
    let mut request = agent.get(url);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    let mut response = request.call().with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    ensure!(status == 200, "GET {url}: {status}: {body}");
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// load

/// The counts of an ingest answer.
#[derive(Deserialize, Debug, Default)]
struct Answer {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
}

/// What one client thread saw.
#[derive(Debug, Default)]
struct ThreadResult {
    latencies_ms: Vec<f64>,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    failed: u64,
    first_failure: Option<String>,
}

/// One line of the results file: a load phase.
#[derive(Serialize, Deserialize, Debug)]
struct LoadFigures {
    kind: String,
    phase: String,
    concurrency: usize,
    requests: usize,
    alerts_per_request: usize,
    alerts: u64,
    payload_bytes: usize,
    seconds: f64,
    requests_per_sec: f64,
    alerts_per_sec: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    failed: u64,
    client_cpu_secs: f64,
    server_cpu_secs: Option<f64>,
    /// Group commits of the server's writer during the phase (`tidemark_batch_apply_seconds`).
    writer_batches: u64,
    /// Seconds the writer spent applying and committing them.
    writer_busy_secs: f64,
}

fn load(args: &LoadArgs) -> Result<()> {
    ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let auth = bearer(args.token.as_deref());
    let url = format!("{}/v1/bridges/alertmanager", args.url);
    // Every thread builds its payloads before the clock starts.
    let barrier = Arc::new(Barrier::new(args.concurrency + 1));
    let payload_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..args.concurrency)
        .map(|thread| {
            let payloads: Vec<Vec<u8>> = (thread..args.requests)
                .step_by(args.concurrency)
                .map(|request| payload(args, request))
                .collect();
            let (barrier, url, auth) = (barrier.clone(), url.clone(), auth.clone());
            let payload_bytes = payload_bytes.clone();
            std::thread::spawn(move || {
                let bytes: usize = payloads.iter().map(Vec::len).sum();
                payload_bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
                barrier.wait();
                post_all(&url, auth.as_deref(), payloads)
            })
        })
        .collect();
    let metrics_agent = agent(Duration::from_secs(30));
    let writer_before = writer_batches(&metrics_agent, &args.url, auth.as_deref())?;
    let server_cpu_before = args.server_pid.map(cpu_seconds).transpose()?;
    let client_cpu_before = cpu_seconds_of("self")?;
    barrier.wait();
    let started = Instant::now();
    let mut all = ThreadResult::default();
    for thread in threads {
        let result = thread.join().expect("a client thread panicked")?;
        all.latencies_ms.extend(result.latencies_ms);
        all.accepted += result.accepted;
        all.duplicates += result.duplicates;
        all.rejected += result.rejected;
        all.failed += result.failed;
        all.first_failure = all.first_failure.or(result.first_failure);
    }
    let seconds = started.elapsed().as_secs_f64();
    let client_cpu_secs = cpu_seconds_of("self")? - client_cpu_before;
    let server_cpu_secs = match (args.server_pid, server_cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    let writer_after = writer_batches(&metrics_agent, &args.url, auth.as_deref())?;
    if let Some(failure) = &all.first_failure {
        eprintln!(
            "alerts load {}: {} requests failed, the first: {failure}",
            args.phase, all.failed
        );
    }
    let mut sorted = all.latencies_ms;
    sorted.sort_by(f64::total_cmp);
    let alerts = (args.requests * args.alerts_per_request) as u64;
    let figures = LoadFigures {
        kind: "load".to_owned(),
        phase: args.phase.clone(),
        concurrency: args.concurrency,
        requests: args.requests,
        alerts_per_request: args.alerts_per_request,
        alerts,
        payload_bytes: payload_bytes.load(std::sync::atomic::Ordering::Relaxed)
            / args.requests.max(1),
        seconds,
        requests_per_sec: args.requests as f64 / seconds,
        alerts_per_sec: alerts as f64 / seconds,
        p50_ms: percentile(&sorted, 50.0),
        p90_ms: percentile(&sorted, 90.0),
        p99_ms: percentile(&sorted, 99.0),
        max_ms: sorted.last().copied().unwrap_or(f64::NAN),
        accepted: all.accepted,
        duplicates: all.duplicates,
        rejected: all.rejected,
        failed: all.failed,
        client_cpu_secs,
        server_cpu_secs,
        writer_batches: writer_after.0 - writer_before.0,
        writer_busy_secs: writer_after.1 - writer_before.1,
    };
    println!("{}", serde_json::to_string(&figures)?);
    Ok(())
}

/// The writer's group commits so far and the seconds they took (`/metrics`).
fn writer_batches(agent: &ureq::Agent, url: &str, auth: Option<&str>) -> Result<(u64, f64)> {
    let metrics = get_text(agent, &format!("{url}/metrics"), auth)?;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .with_context(|| format!("{name} in /metrics"))
    };
    Ok((
        value("tidemark_batch_apply_seconds_count")? as u64,
        value("tidemark_batch_apply_seconds_sum")?,
    ))
}

/// Request `request`'s webhook: alerts `first_index + request × alerts_per_request ..`, all of
/// one cluster.
fn payload(args: &LoadArgs, request: usize) -> Vec<u8> {
    let first = args.first_index + (request * args.alerts_per_request) as u64;
    let cluster = cluster_of(request as u64, args.clusters);
    let alerts = (first..first + args.alerts_per_request as u64)
        .map(|index| webhook_alert(index, &cluster))
        .collect();
    webhook_payload(alerts, &cluster)
}

/// Posts `payloads` one after the other on one connection, timing each until its answer's last
/// byte.
fn post_all(url: &str, auth: Option<&str>, payloads: Vec<Vec<u8>>) -> Result<ThreadResult> {
    let agent = agent(Duration::from_secs(120));
    let mut result = ThreadResult {
        latencies_ms: Vec::with_capacity(payloads.len()),
        ..ThreadResult::default()
    };
    let mut body = Vec::new();
    for payload in payloads {
        let started = Instant::now();
        let mut request = agent.post(url).header("Content-Type", "application/json");
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let mut response = request
            .send(&payload[..])
            .with_context(|| format!("POST {url}"))?;
        body.clear();
        response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .reader()
            .read_to_end(&mut body)?;
        result.latencies_ms.push(millis(started.elapsed()));
        let status = response.status().as_u16();
        if status != 200 {
            result.failed += 1;
            result.first_failure.get_or_insert_with(|| {
                format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(500)])
                )
            });
            continue;
        }
        let answer: Answer = serde_json::from_slice(&body).context("the ingest answer")?;
        result.accepted += answer.accepted;
        result.duplicates += answer.duplicates;
        result.rejected += answer.rejected;
    }
    Ok(result)
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> Result<f64> {
    cpu_seconds_of(&pid.to_string())
}

/// CPU seconds of `/proc/{which}/stat` (`self` or a pid), in clock ticks of 1/100 s (Linux's
/// USER_HZ).
fn cpu_seconds_of(which: &str) -> Result<f64> {
    let path = format!("/proc/{which}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command (which may hold spaces) in parentheses: state is field 3, utime
    // field 14, stime field 15.
    let after = &stat[stat.rfind(')').context("a stat line")? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

/// The nearest-rank percentile `p` (0 to 100) of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

// ---------------------------------------------------------------------------------------------
// count

/// One line of the results file: what the server holds.
#[derive(Serialize, Deserialize, Debug)]
struct CountFigures {
    kind: String,
    expected: u64,
    alerts_listed: u64,
    events_ingested: u64,
    pages: u64,
}

fn count(url: &str, token: Option<&str>, expected: u64) -> Result<()> {
    let agent = agent(Duration::from_secs(120));
    let auth = bearer(token);
    let (mut alerts_listed, mut pages, mut after) = (0, 0, None::<String>);
    loop {
        let mut page_url = format!("{url}/v1/alerts?state=all&limit=1000");
        // Cursors are hex digits and a dot: nothing to encode.
        if let Some(after) = &after {
            page_url.push_str("&after=");
            page_url.push_str(after);
        }
        let page: Value = serde_json::from_str(&get_text(&agent, &page_url, auth.as_deref())?)?;
        pages += 1;
        alerts_listed += page["alerts"]
            .as_array()
            .context("an alerts page holds `alerts`")?
            .len() as u64;
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let metrics = get_text(&agent, &format!("{url}/metrics"), auth.as_deref())?;
    let events_ingested = metrics
        .lines()
        .filter(|line| line.starts_with("tidemark_events_ingested_total{outcome=\"accepted\"}"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64;
    let figures = CountFigures {
        kind: "count".to_owned(),
        expected,
        alerts_listed,
        events_ingested,
        pages,
    };
    println!("{}", serde_json::to_string(&figures)?);
    ensure!(
        alerts_listed == expected && events_ingested == expected,
        "sent {expected} distinct alerts, the server lists {alerts_listed} and ingested {events_ingested} events"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// fold

/// One line of the results file: a fold.
#[derive(Serialize, Deserialize, Debug)]
struct FoldFigures {
    kind: String,
    projection: Fold,
    batch: Option<usize>,
    events: usize,
    alerts: usize,
    clusters: usize,
    repeat: usize,
    best_events_per_sec: f64,
    median_events_per_sec: f64,
    firing_at_end: usize,
    steps: BTreeMap<String, u64>,
}

/// Events generated (untimed) before each timed chunk of the fold, so a million events need
/// not be held at once.
const FOLD_CHUNK: usize = 10_000;

fn fold(
    shape: AlertChurnShape,
    events: usize,
    (projection, batch): (Fold, usize),
    repeat: usize,
) -> Result<()> {
    ensure!(
        repeat > 0 && events > 0 && batch > 0,
        "--repeat, --events and --batch must be at least 1"
    );
    let mut rates = Vec::with_capacity(repeat);
    let mut steps = BTreeMap::new();
    let mut firing_at_end = 0;
    for _ in 0..repeat {
        let mut churn = AlertChurn::new(shape);
        let (mut live, tables) = Tables::live_projections();
        let mut all = Projections::new();
        let mut findings = FindingsProjection::new();
        let (mut folded, mut busy) = (0, Duration::ZERO);
        steps.clear();
        let mut chunk = Vec::with_capacity(FOLD_CHUNK);
        while folded < events {
            chunk.clear();
            for _ in 0..FOLD_CHUNK.min(events - folded) {
                let (event, step) = churn.next_event();
                *steps.entry(step.as_str().to_owned()).or_insert(0_u64) += 1;
                chunk.push(event);
            }
            let started = Instant::now();
            for (i, event) in chunk.iter().enumerate() {
                let seq = (folded + i + 1) as u64;
                match projection {
                    Fold::Live => {
                        live.apply(seq, event);
                        if seq.is_multiple_of(batch as u64) || seq == events as u64 {
                            tables.write_batch(&mut live, seq);
                        }
                    }
                    Fold::All => {
                        all.apply(seq, event);
                    }
                    Fold::Findings => findings.apply(seq, event),
                }
            }
            busy += started.elapsed();
            folded += chunk.len();
        }
        rates.push(events as f64 / busy.as_secs_f64());
        firing_at_end = match projection {
            Fold::Live => live.findings().active_count(),
            Fold::All => all.findings().active_count(),
            Fold::Findings => findings.active_count(),
        };
        std::hint::black_box((&live, &all, &findings));
    }
    debug_assert!(AlertStep::ALL.len() >= steps.len());
    rates.sort_by(f64::total_cmp);
    let figures = FoldFigures {
        kind: "fold".to_owned(),
        projection,
        batch: (projection == Fold::Live).then_some(batch),
        events,
        alerts: shape.alerts,
        clusters: shape.clusters,
        repeat,
        best_events_per_sec: *rates.last().expect("at least one fold"),
        median_events_per_sec: rates[rates.len() / 2],
        firing_at_end,
        steps,
    };
    println!("{}", serde_json::to_string(&figures)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the report

/// The goals.
const SINGLE_GOAL_RPS: f64 = 2_000.0;
const SINGLE_GOAL_P99_MS: f64 = 50.0;
const BATCH_GOAL_ALERTS_PER_SEC: f64 = 100_000.0;
const FOLD_GOAL_EVENTS_PER_SEC: f64 = 1_000_000.0;

fn report(results: &Path) -> Result<()> {
    let file = std::fs::File::open(results).with_context(|| format!("{}", results.display()))?;
    let (mut loads, mut folds, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for line in BufReader::new(file).lines() {
        let line = line?;
        let value: Value = serde_json::from_str(&line)?;
        match value["kind"].as_str() {
            Some("load") => loads.push(serde_json::from_value::<LoadFigures>(value)?),
            Some("fold") => folds.push(serde_json::from_value::<FoldFigures>(value)?),
            Some("count") => counts.push(serde_json::from_value::<CountFigures>(value)?),
            other => bail!("unknown result kind {other:?}"),
        }
    }
    if !loads.is_empty() {
        println!(
            "| phase | client connections | requests | alerts/request | payload | s | requests/s | alerts/s | p50 ms | p99 ms | max ms | server CPU s (µs/alert) | client CPU s | writer commits (alerts each, ms each, busy) | goal |"
        );
        println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        for l in &loads {
            let server = l.server_cpu_secs.map_or("-".to_owned(), |s| {
                format!("{s:.1} ({:.0})", s * 1e6 / l.alerts as f64)
            });
            let batches = l.writer_batches.max(1) as f64;
            let writer = format!(
                "{} ({:.0}, {:.1}, {:.0}%)",
                l.writer_batches,
                l.alerts as f64 / batches,
                l.writer_busy_secs * 1e3 / batches,
                l.writer_busy_secs * 100.0 / l.seconds
            );
            println!(
                "| {} | {} | {} | {} | {} B | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {server} | {:.1} | {writer} | {} |",
                l.phase,
                l.concurrency,
                l.requests,
                l.alerts_per_request,
                l.payload_bytes,
                l.seconds,
                l.requests_per_sec,
                l.alerts_per_sec,
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                l.client_cpu_secs,
                load_goal(l),
            );
        }
    }
    for c in &counts {
        println!(
            "\nStored: {} alerts listed by `GET /v1/alerts?state=all` ({} pages), {} events ingested, {} sent: {}.",
            c.alerts_listed,
            c.pages,
            c.events_ingested,
            c.expected,
            if c.alerts_listed == c.expected && c.events_ingested == c.expected {
                "every alert stored once"
            } else {
                "MISMATCH"
            }
        );
    }
    if !folds.is_empty() {
        println!(
            "\n| fold (one core) | events | distinct alerts | clusters | best events/s | median events/s | firing at the end | goal (≥ 1 M events/s) |"
        );
        println!("|---|--:|--:|--:|--:|--:|--:|---|");
        for f in &folds {
            let what = match (f.projection, f.batch) {
                (Fold::Live, Some(batch)) => format!("live state, batches of {batch}"),
                (Fold::Live, None) => "live state".to_owned(),
                (Fold::All, _) => "all in memory".to_owned(),
                (Fold::Findings, _) => "findings alone, in memory".to_owned(),
            };
            println!(
                "| {what} | {} | {} | {} | {:.0} | {:.0} | {} | {} |",
                f.events,
                f.alerts,
                f.clusters,
                f.best_events_per_sec,
                f.median_events_per_sec,
                f.firing_at_end,
                verdict(f.median_events_per_sec, FOLD_GOAL_EVENTS_PER_SEC),
            );
        }
        if let Some(f) = folds.first() {
            let mix: Vec<String> = f
                .steps
                .iter()
                .map(|(step, n)| format!("{step} {:.1}%", *n as f64 * 100.0 / f.events as f64))
                .collect();
            println!("\nMix of the first fold: {}.", mix.join(", "));
        }
    }
    Ok(())
}

/// Whether a load phase meets its goal, and by how much.
fn load_goal(l: &LoadFigures) -> String {
    if l.failed > 0 {
        return format!("{} requests failed", l.failed);
    }
    if l.alerts_per_request == 1 {
        let rate = verdict(l.requests_per_sec, SINGLE_GOAL_RPS);
        let p99 = if l.p99_ms < SINGLE_GOAL_P99_MS {
            format!("p99 met ({:.1}× under)", SINGLE_GOAL_P99_MS / l.p99_ms)
        } else {
            format!("p99 not met ({:.1}× over)", l.p99_ms / SINGLE_GOAL_P99_MS)
        };
        format!("≥ 2,000 req/s: {rate}; {p99}")
    } else {
        format!(
            "≥ 100,000 alerts/s: {}",
            verdict(l.alerts_per_sec, BATCH_GOAL_ALERTS_PER_SEC)
        )
    }
}

fn verdict(value: f64, goal: f64) -> String {
    if value >= goal {
        format!("met ({:.2}×)", value / goal)
    } else {
        format!("not met ({:.2}× of it)", value / goal)
    }
}
