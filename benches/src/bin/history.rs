//! `history`: the programs behind `benches/history/run` (issue 17, history out of memory) — the
//! workload as NDJSON (10 clusters × 100 keys of churning cycles plus a scripted incident every
//! 2,000 events), the store's snapshot positions, an HTTP client that times reads, and the
//! Markdown report of what grows with the length of the log.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};
use tidemark_benches::served::served_address;
use tidemark_benches::{ChurnShape, ChurningCycles, Workload};
use tidemark_core::event::{
    CURRENT_SCHEMA, ChangeDeployed, ChangeKind, IncidentChange, NoteAdded, NoteKind,
};
use tidemark_core::{Event, EventId, Payload, Severity, Timestamp, encode_event};

#[derive(Parser, Debug)]
#[command(
    name = "history",
    about = "Reads, memory, restart and maintenance as the log grows (benches/history/run)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the workload to stdout as NDJSON: one `cycle.completed` per event, round-robin over
    /// the clusters (each cycle flips 10 of a cluster's 100 keys, so findings open, auto-resolve
    /// and flap), and every `--incident-every` events a scripted incident (opened, a note, a
    /// deploy, a note, closed). Events are 6 s apart: 10 clusters each report once a minute.
    Generate {
        /// Events to write.
        #[arg(long)]
        events: usize,
        /// Clusters the cycles go round.
        #[arg(long, default_value_t = 10)]
        clusters: usize,
        /// Check keys per cluster.
        #[arg(long, default_value_t = 100)]
        keys: usize,
        /// Keys flipped in each cycle of a cluster after its first (drawn with replacement).
        #[arg(long, default_value_t = 10)]
        flips: usize,
        /// A scripted incident starts every this many events.
        #[arg(long, default_value_t = 2_000)]
        incident_every: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 17)]
        seed: u64,
    },
    /// Print the store's snapshots as JSON lines `{"seq", "bytes"}`, the latest with the bytes
    /// of each part (`findings`, `orphans`, `incidents`: what of the state grows) (opens the
    /// file read-only; run it while no server holds the file).
    Snapshots {
        #[arg(long)]
        db: PathBuf,
    },
    /// Print each table of a store as JSON lines `{"table", "entries", "leaf_pages",
    /// "branch_pages", "stored_bytes", "metadata_bytes", "fragmented_bytes"}` (redb's table
    /// statistics: where a file's bytes are; opens the file read-only).
    Tables {
        #[arg(long)]
        db: PathBuf,
    },
    /// Time `--repeat` GETs of a URL (after `--warmup` untimed ones), one connection at a time;
    /// print p50, p99 and the body size as JSON. Any answer but 200 fails.
    Get {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
    },
    /// Page a `GET /v1/events` URL (or a finding's timeline) to its end, following `next` as
    /// `after`; print the pages, the events, the wall time and the time spent in requests
    /// (parsing the pages excluded).
    Page {
        #[arg(long)]
        url: String,
    },
    /// Time one GET of `--base` + `--path` with `{}` replaced by each of `--values`, one after
    /// the other (`--concurrent`: all at once, one thread each); print the times and statuses.
    Each {
        #[arg(long)]
        base: String,
        #[arg(long)]
        path: String,
        #[arg(long, value_delimiter = ',', required = true)]
        values: Vec<String>,
        #[arg(long)]
        concurrent: bool,
    },
    /// Wait until the server whose stderr is `--log` prints its address and answers 200 on
    /// /readyz; print the address and the seconds since `--since-ns` (Unix nanoseconds, taken
    /// just before the server was started).
    WaitReady {
        #[arg(long)]
        log: PathBuf,
        #[arg(long)]
        since_ns: u128,
        #[arg(long, default_value_t = 1_800)]
        timeout_secs: u64,
    },
    /// Quick repair's cost, at redb's level, within one run: the NDJSON on stdin (the workload)
    /// encoded as the store's log records and committed in batches of `--batch` into two new
    /// files in `--dir`, one with redb's quick repair and one without, batch by batch (which
    /// file goes first alternates, so the machine's noise falls on both); the time of the
    /// commits is summed per file. Then a SIGKILL of the process holding both files, and each
    /// reopened (redb's recovery) and timed. Prints JSON; deletes the files.
    CommitCost {
        #[arg(long)]
        dir: PathBuf,
        /// Events per transaction (`tidemark ingest`'s default).
        #[arg(long, default_value_t = 4_096)]
        batch: usize,
        /// The child that writes and waits to be killed (run by the command itself).
        #[arg(long, hide = true)]
        hold: bool,
    },
    /// Print the Markdown tables from the results file (JSON lines `{"size", "clusters",
    /// "metric", "value"}` that `benches/history/run` appends to).
    Report {
        #[arg(long)]
        results: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("history: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Generate {
            events,
            clusters,
            keys,
            flips,
            incident_every,
            seed,
        } => generate(
            events,
            ChurnShape {
                clusters,
                keys_per_cluster: keys,
                // A random half present at first: the level the churn keeps, so every cluster's
                // events are about the same size from the start (the 6,000-cluster run holds
                // the same bytes as the 10-cluster one).
                initially_present: keys / 2,
                flips_per_cycle: flips,
                seed,
            },
            incident_every,
        ),
        Command::Snapshots { db } => snapshots(&db),
        Command::Tables { db } => tables(&db),
        Command::Get {
            url,
            repeat,
            warmup,
        } => get(&url, repeat, warmup),
        Command::Page { url } => page(&url),
        Command::Each {
            base,
            path,
            values,
            concurrent,
        } => each(&base, &path, &values, concurrent),
        Command::WaitReady {
            log,
            since_ns,
            timeout_secs,
        } => wait_ready(&log, since_ns, Duration::from_secs(timeout_secs)),
        Command::Report { results } => report(&results),
        Command::CommitCost { dir, batch, hold } => {
            if hold {
                commit_cost_child(&dir, batch)
            } else {
                commit_cost(&dir, batch)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// commit-cost

const COMMIT_COST_LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");

fn commit_cost_files(dir: &Path) -> [PathBuf; 2] {
    [
        dir.join("commit-cost-without.redb"),
        dir.join("commit-cost-with.redb"),
    ]
}

/// What the child wrote.
#[derive(Serialize, Deserialize)]
struct CommitCostWrites {
    events: u64,
    record_bytes: u64,
    /// Seconds spent in the commits, without and with quick repair.
    commit_s: [f64; 2],
}

/// Appends stdin's events to both files, prints what it wrote, and waits to be killed.
fn commit_cost_child(dir: &Path, batch: usize) -> Result<()> {
    let files = commit_cost_files(dir);
    for file in &files {
        if file.exists() {
            bail!("{} exists", file.display());
        }
    }
    let databases = [
        redb::Database::create(&files[0])?,
        redb::Database::create(&files[1])?,
    ];
    let recorded_at = Timestamp::from_unix_secs(1_800_000_000);
    let mut commit_s = [0.0f64; 2];
    let mut seq = 0u64;
    let mut record_bytes = 0u64;
    let mut batches = 0usize;
    let mut lines = std::io::stdin().lock().lines();
    loop {
        let mut records = Vec::with_capacity(batch);
        for line in lines.by_ref() {
            let event = tidemark_core::decode_event(&line?).context("an event of the workload")?;
            let mut bytes = Vec::new();
            tidemark_store::codec::encode_event(
                seq + records.len() as u64 + 1,
                &event,
                recorded_at,
                &mut bytes,
            );
            record_bytes += bytes.len() as u64;
            records.push(bytes);
            if records.len() == batch.max(1) {
                break;
            }
        }
        if records.is_empty() {
            break;
        }
        for turn in 0..2 {
            let which = (batches + turn) % 2;
            let started = Instant::now();
            // The two ways to commit, side by side: the store always enables quick repair
            // (its `write_txn`); here one file goes without, on purpose.
            #[allow(clippy::disallowed_methods)]
            let mut txn = databases[which].begin_write()?;
            txn.set_quick_repair(which == 1);
            {
                let mut table = txn.open_table(COMMIT_COST_LOG)?;
                for (i, record) in records.iter().enumerate() {
                    table.insert(seq + i as u64 + 1, record.as_slice())?;
                }
            }
            txn.commit()?;
            commit_s[which] += started.elapsed().as_secs_f64();
        }
        seq += records.len() as u64;
        batches += 1;
    }
    println!(
        "{}",
        serde_json::to_string(&CommitCostWrites {
            events: seq,
            record_bytes,
            commit_s,
        })?
    );
    std::io::stdout().flush()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Runs the child, kills it once it wrote, and times the reopen of each file.
fn commit_cost(dir: &Path, batch: usize) -> Result<()> {
    let files = commit_cost_files(dir);
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "commit-cost",
            "--hold",
            "--batch",
            &batch.to_string(),
            "--dir",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the writer")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    child.kill()?; // SIGKILL, holding both files
    let status = child.wait()?;
    let writes: CommitCostWrites = serde_json::from_str(&line)
        .with_context(|| format!("the writer ended ({status}) without saying what it wrote"))?;
    let mut restart_s = [0.0f64; 2];
    let mut walked = [false; 2];
    let mut file_bytes = [0u64; 2];
    for (i, file) in files.iter().enumerate() {
        file_bytes[i] = std::fs::metadata(file)?.len();
        let repaired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::clone(&repaired);
        let started = Instant::now();
        let db = redb::Database::builder()
            .set_repair_callback(move |_| seen.store(true, std::sync::atomic::Ordering::Relaxed))
            .create(file)?;
        restart_s[i] = started.elapsed().as_secs_f64();
        walked[i] = repaired.load(std::sync::atomic::Ordering::Relaxed);
        let events = db.begin_read()?.open_table(COMMIT_COST_LOG)?.len()?;
        if events != writes.events {
            bail!(
                "{} holds {events} events, {} were committed",
                file.display(),
                writes.events
            );
        }
        drop(db);
        std::fs::remove_file(file)?;
    }
    println!(
        "{}",
        serde_json::json!({
            "events": writes.events,
            "batch": batch,
            "record_bytes": writes.record_bytes,
            "file_bytes": { "without": file_bytes[0], "with": file_bytes[1] },
            "commit_s": { "without": writes.commit_s[0], "with": writes.commit_s[1] },
            "commit_ratio": writes.commit_s[1] / writes.commit_s[0],
            "events_per_s": {
                "without": writes.events as f64 / writes.commit_s[0],
                "with": writes.events as f64 / writes.commit_s[1],
            },
            "restart_after_kill_s": { "without": restart_s[0], "with": restart_s[1] },
            "restart_ratio": restart_s[1] / restart_s[0],
            "walked_whole_file": { "without": walked[0], "with": walked[1] },
        })
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the workload

/// Seconds between two events: 10 clusters reporting once a minute.
const SECONDS_PER_EVENT: i64 = 6;

/// Offsets in each incident's block of events, and what happens there.
const SCRIPT: [(usize, ScriptStep); 5] = [
    (0, ScriptStep::Opened),
    (40, ScriptStep::Note),
    (80, ScriptStep::Deploy),
    (120, ScriptStep::Note),
    (160, ScriptStep::Closed),
];

#[derive(Clone, Copy, Debug)]
enum ScriptStep {
    Opened,
    Note,
    Deploy,
    Closed,
}

fn generate(events: usize, shape: ChurnShape, incident_every: usize) -> Result<()> {
    if shape.clusters == 0 || shape.keys_per_cluster == 0 {
        bail!("--clusters and --keys must be at least 1");
    }
    let incident_every = incident_every.max(SCRIPT[SCRIPT.len() - 1].0 + 1);
    let start = Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").expect("valid time");
    let mut cycles = ChurningCycles::new(shape);
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    for position in 0..events {
        let block = position / incident_every;
        let step = SCRIPT
            .iter()
            .find(|(offset, _)| *offset == position % incident_every)
            .map(|(_, step)| *step);
        let mut event = match step {
            Some(step) => scripted(block, step, shape),
            None => cycles.next().expect("the cycles never end"),
        };
        event.id = EventId(format!("h{position:010}"));
        event.time = start.plus_secs(SECONDS_PER_EVENT * position as i64);
        if let Err(e) = writeln!(out, "{}", encode_event(&event)) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e).context("writing the workload");
        }
    }
    out.flush().context("writing the workload")
}

/// One step of incident `block`'s script: it concerns one key of one cluster, in turn.
fn scripted(block: usize, step: ScriptStep, shape: ChurnShape) -> Event {
    let incident = format!("inc-{block:06}");
    let cluster = format!("cluster-{:03}", block % shape.clusters);
    let key = Workload::check_key((block * 7) % shape.keys_per_cluster);
    let change = |title: Option<String>, summary: Option<String>| IncidentChange {
        incident: incident.clone(),
        title,
        severity: Some(Severity::Error),
        check_keys: vec![key.clone()],
        summary,
    };
    let note = |text: &str| {
        Payload::NoteAdded(NoteAdded {
            incident: Some(incident.clone()),
            author: "oncall".to_owned(),
            kind: NoteKind::Observation,
            text: text.to_owned(),
            links: vec![],
            check_keys: vec![key.clone()],
        })
    };
    let payload = match step {
        ScriptStep::Opened => Payload::IncidentOpened(change(
            Some(format!("{key} keeps crash-looping on {cluster}")),
            None,
        )),
        ScriptStep::Note => note("restarts continue; looking at the last deploy"),
        ScriptStep::Deploy => Payload::ChangeDeployed(ChangeDeployed {
            service: "api".to_owned(),
            version: format!("1.{block}.0"),
            kind: ChangeKind::Deploy,
            link: None,
            summary: Some("raise the memory limit".to_owned()),
            incident: Some(incident.clone()),
            check_keys: vec![key.clone()],
        }),
        ScriptStep::Closed => Payload::IncidentClosed(change(
            None,
            Some("memory limit raised; restarts stopped".to_owned()),
        )),
    };
    Event {
        id: EventId(String::new()),
        schema: CURRENT_SCHEMA,
        time: Timestamp::from_unix_nanos(0),
        source: "bench-oncall".to_owned(),
        cluster,
        payload,
    }
}

// ---------------------------------------------------------------------------------------------
// the store's snapshots

fn snapshots(db: &Path) -> Result<()> {
    let database = redb::Database::builder()
        .open_read_only(db)
        .with_context(|| format!("opening {} read-only", db.display()))?;
    let txn = database.begin_read()?;
    let table = txn.open_table(tidemark_store::tables::SNAPSHOTS)?;
    // A per-cluster snapshot's parts, by the snapshot that wrote them (none in a store
    // written before them).
    let parts = txn
        .open_table(tidemark_store::tables::CLUSTER_SNAPSHOTS)
        .ok();
    let mut written_parts: std::collections::BTreeMap<u64, (usize, usize)> = Default::default();
    if let Some(parts) = &parts {
        for entry in parts.iter()? {
            let (key, value) = entry?;
            let at = written_parts.entry(key.value().1).or_default();
            at.0 += 1;
            at.1 += value.value().len();
        }
    }
    let last = table.last()?.map(|(seq, _)| seq.value());
    for entry in table.iter()? {
        let (seq, record) = entry?;
        let (seq, bytes) = (seq.value(), record.value());
        // What the snapshot wrote: its record, and the parts of the clusters that changed.
        let (clusters_written, part_bytes) = written_parts.get(&seq).copied().unwrap_or_default();
        let mut line = serde_json::json!({"seq": seq, "bytes": bytes.len() + part_bytes});
        if bytes.first() == Some(&tidemark_store::codec::SNAPSHOT_FORMAT) {
            line["clusters_written"] = clusters_written.into();
        }
        if Some(seq) == last {
            line["parts"] = snapshot_parts(seq, bytes, parts.as_ref())?;
        }
        println!("{line}");
    }
    Ok(())
}

/// redb's statistics of every table of the store.
fn tables(db: &Path) -> Result<()> {
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let database = redb::Database::builder()
        .open_read_only(db)
        .with_context(|| format!("opening {} read-only", db.display()))?;
    let txn = database.begin_read()?;
    for handle in txn.list_tables()? {
        let name = redb::TableHandle::name(&handle).to_owned();
        let table = txn.open_untyped_table(handle)?;
        let stats = table.stats()?;
        println!(
            "{}",
            serde_json::json!({
                "table": name,
                "entries": table.len()?,
                "leaf_pages": stats.leaf_pages(),
                "branch_pages": stats.branch_pages(),
                "stored_bytes": stats.stored_bytes(),
                "metadata_bytes": stats.metadata_bytes(),
                "fragmented_bytes": stats.fragmented_bytes(),
            })
        );
    }
    Ok(())
}

/// The encoded bytes of each projection's part of a snapshot (a per-cluster one read with its
/// parts from `parts`).
fn snapshot_parts(
    seq: u64,
    bytes: &[u8],
    parts: Option<&redb::ReadOnlyTable<(&'static str, u64), &'static [u8]>>,
) -> Result<serde_json::Value> {
    use tidemark_store::codec::{StoredProjections, cluster_parts};
    let size = |part: &dyn erased::Part| part.bytes();
    let record = cluster_parts::decode_snapshot_reading_parts(seq, bytes, |cluster, at| {
        let part = parts?.get((cluster, at)).ok()??;
        Some(part.value().to_vec())
    })?;
    Ok(match &record.projections {
        StoredProjections::Live(s) => serde_json::json!({
            "layout": "live",
            "findings": size(&s.findings),
            "orphans": size(&s.orphans),
            "incidents": size(&s.incidents),
        }),
        StoredProjections::WithHistory(s) => serde_json::json!({
            "layout": "with history",
            "findings": size(&s.findings),
            "orphans": size(&s.orphans),
            "incidents": size(&s.incidents),
        }),
    })
}

/// A snapshot part, sized as postcard encodes it.
mod erased {
    pub trait Part {
        fn bytes(&self) -> usize;
    }

    impl<T: serde::Serialize> Part for T {
        fn bytes(&self) -> usize {
            postcard::experimental::serialized_size(self).unwrap_or(0)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the HTTP client

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .new_agent()
}

/// One timed GET: the status, the body, and the time until its last byte arrived.
fn timed_get(agent: &ureq::Agent, url: &str) -> Result<(u16, Vec<u8>, Duration)> {
    let started = Instant::now();
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .with_context(|| format!("reading the answer of GET {url}"))?;
    Ok((response.status().as_u16(), body, started.elapsed()))
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

fn get(url: &str, repeat: usize, warmup: usize) -> Result<()> {
    let agent = agent();
    let mut times = Vec::with_capacity(repeat);
    let mut bytes = 0;
    for i in 0..warmup + repeat.max(1) {
        let (status, body, took) = timed_get(&agent, url)?;
        if status != 200 {
            bail!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        bytes = body.len();
        if i >= warmup {
            times.push(millis(took));
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "n": times.len(),
            "p50_ms": percentile(&times, 50.0),
            "p99_ms": percentile(&times, 99.0),
            "bytes": bytes,
        })
    );
    Ok(())
}

/// A page of `GET /v1/events`, or of a finding's timeline (`GET /v1/findings/{cluster}/{key}`).
#[derive(Deserialize)]
struct EventsPage {
    #[serde(alias = "timeline")]
    events: Vec<serde::de::IgnoredAny>,
    next: Option<u64>,
}

fn page(url: &str) -> Result<()> {
    let agent = agent();
    let separator = if url.contains('?') { '&' } else { '?' };
    let started = Instant::now();
    let (mut pages, mut events, mut in_requests, mut bytes) = (0u64, 0u64, Duration::ZERO, 0u64);
    let mut after = None;
    loop {
        let page_url = match after {
            Some(after) => format!("{url}{separator}after={after}"),
            None => url.to_owned(),
        };
        let (status, body, took) = timed_get(&agent, &page_url)?;
        if status != 200 {
            bail!(
                "GET {page_url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        in_requests += took;
        bytes += body.len() as u64;
        let page: EventsPage = serde_json::from_slice(&body)
            .with_context(|| format!("GET {page_url}: not an events page"))?;
        pages += 1;
        events += page.events.len() as u64;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "pages": pages,
            "events": events,
            "bytes": bytes,
            "seconds": started.elapsed().as_secs_f64(),
            "request_seconds": in_requests.as_secs_f64(),
        })
    );
    Ok(())
}

fn each(base: &str, path: &str, values: &[String], concurrent: bool) -> Result<()> {
    let urls: Vec<String> = values
        .iter()
        .map(|value| format!("{base}{}", path.replace("{}", value)))
        .collect();
    let started = Instant::now();
    let answers: Vec<(u16, usize, Duration)> = if concurrent {
        std::thread::scope(|scope| {
            let handles: Vec<_> = urls
                .iter()
                .map(|url| scope.spawn(move || timed_get(&agent(), url)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    let (status, body, took) = handle.join().expect("a request thread panicked")?;
                    Ok((status, body.len(), took))
                })
                .collect::<Result<_>>()
        })?
    } else {
        let agent = agent();
        urls.iter()
            .map(|url| {
                let (status, body, took) = timed_get(&agent, url)?;
                Ok((status, body.len(), took))
            })
            .collect::<Result<_>>()?
    };
    let wall = started.elapsed();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut ok_times: Vec<f64> = Vec::new();
    for (status, _, took) in &answers {
        *statuses.entry(*status).or_default() += 1;
        if *status == 200 {
            ok_times.push(millis(*took));
        }
    }
    ok_times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "n": answers.len(),
            "statuses": statuses,
            "p50_ms": percentile(&ok_times, 50.0),
            "p99_ms": percentile(&ok_times, 99.0),
            "max_ms": ok_times.last().copied().unwrap_or(f64::NAN),
            "wall_ms": millis(wall),
            "ms": answers.iter().map(|(_, _, took)| millis(*took)).collect::<Vec<_>>(),
        })
    );
    Ok(())
}

fn wait_ready(log: &Path, since_ns: u128, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut addr: Option<String> = None;
    loop {
        if Instant::now() > deadline {
            bail!(
                "the server did not get ready within {timeout:?}: see {}",
                log.display()
            );
        }
        if addr.is_none() {
            addr = std::fs::read_to_string(log)
                .ok()
                .and_then(|text| served_address(&text));
        }
        if let Some(addr) = &addr
            && let Ok(response) = agent.get(format!("{addr}/readyz")).call()
            && response.status().as_u16() == 200
        {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
            println!(
                "{}",
                serde_json::json!({
                    "addr": addr,
                    "seconds": now.saturating_sub(since_ns) as f64 / 1e9,
                })
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// the report

#[derive(Debug, Deserialize, Serialize)]
struct Measurement {
    size: u64,
    clusters: u64,
    metric: String,
    /// Null when nothing was measured (no request answered 200).
    value: Option<f64>,
}

/// The rows of the main table: a label and how to show a size's cell; the growth column is the
/// ratio of the cell's first metric between the largest and the smallest size.
struct Row {
    label: &'static str,
    metrics: &'static [&'static str],
    show: fn(&[Option<f64>]) -> String,
}

/// How a cell shows one measured value.
type Show = fn(Option<f64>) -> String;

fn ms(value: Option<f64>) -> String {
    match value {
        None => "–".to_owned(),
        Some(v) if v >= 1_000.0 => format!("{:.2} s", v / 1_000.0),
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) if v >= 10.0 => format!("{v:.1} ms"),
        Some(v) => format!("{v:.2} ms"),
    }
}

fn secs(value: Option<f64>) -> String {
    ms(value.map(|v| v * 1_000.0))
}

fn size(value: Option<f64>) -> String {
    match value {
        None => "–".to_owned(),
        Some(v) if v >= 1e9 => format!("{:.2} GB", v / 1e9),
        Some(v) if v >= 1e6 => format!("{:.1} MB", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.0} KB", v / 1e3),
        Some(v) => format!("{v:.0} B"),
    }
}

fn mib(value: Option<f64>) -> String {
    value.map_or("–".to_owned(), |kib| format!("{:.0} MiB", kib / 1024.0))
}

fn count(value: Option<f64>) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.0}"))
}

const ROWS: &[Row] = &[
    Row {
        label: "`GET /v1/findings?limit=100` p50 / p99 / body",
        metrics: &["findings_p50_ms", "findings_p99_ms", "findings_bytes"],
        show: |v| format!("{} / {} / {}", ms(v[0]), ms(v[1]), size(v[2])),
    },
    Row {
        label: "`GET /v1/flaps?limit=1` p50 / p99",
        metrics: &["flaps_p50_ms", "flaps_p99_ms"],
        show: |v| format!("{} / {}", ms(v[0]), ms(v[1])),
    },
    Row {
        label: "`GET /v1/incidents?limit=100` p50 / p99 / body",
        metrics: &["incidents_p50_ms", "incidents_p99_ms", "incidents_bytes"],
        show: |v| format!("{} / {} / {}", ms(v[0]), ms(v[1]), size(v[2])),
    },
    Row {
        label: "finding web page `/findings/cluster-001/{key}` p50 / p99 / body",
        metrics: &["page_p50_ms", "page_p99_ms", "page_bytes"],
        show: |v| format!("{} / {} / {}", ms(v[0]), ms(v[1]), size(v[2])),
    },
    Row {
        label: "a finding and its first timeline page, `GET /v1/findings/cluster-001/{key}?limit=100` p50 / p99 / body",
        metrics: &["finding_p50_ms", "finding_p99_ms", "finding_bytes"],
        show: |v| format!("{} / {} / {}", ms(v[0]), ms(v[1]), size(v[2])),
    },
    Row {
        label: "paging `/v1/events?cluster=cluster-001&limit=1000` to the end: total (events)",
        metrics: &["paging_s", "paging_events"],
        show: |v| format!("{} ({})", secs(v[0]), count(v[1])),
    },
    Row {
        label: "… the same, per returned event",
        metrics: &["paging_us_per_event"],
        show: |v| v[0].map_or("–".to_owned(), |v| format!("{v:.1} µs")),
    },
    Row {
        label: "`?at=` worst point, just before a kept snapshot (events replayed)",
        metrics: &["at_worst_ms", "at_worst_replayed"],
        show: |v| format!("{} ({})", ms(v[0]), count(v[1])),
    },
    Row {
        label: "`?at=` random distinct positions, p50 / p99",
        metrics: &["at_random_p50_ms", "at_random_p99_ms"],
        show: |v| format!("{} / {}", ms(v[0]), ms(v[1])),
    },
    Row {
        label: "10 concurrent `?at=` (`--max-time-travel 2`): wall, answered 200 / 503",
        metrics: &[
            "at_concurrent_wall_ms",
            "at_concurrent_200",
            "at_concurrent_503",
        ],
        show: |v| format!("{}, {} / {}", ms(v[0]), count(v[1]), count(v[2])),
    },
    Row {
        label: "… RSS before → peak during → after",
        metrics: &[
            "at_concurrent_rss_before_kib",
            "at_concurrent_peak_kib",
            "at_concurrent_rss_after_kib",
        ],
        show: |v| format!("{} → {} → {}", mib(v[0]), mib(v[1]), mib(v[2])),
    },
    Row {
        label: "`serve` RSS after start (peak while opening)",
        metrics: &["serve_rss_kib", "serve_hwm_kib"],
        show: |v| format!("{} ({})", mib(v[0]), mib(v[1])),
    },
    Row {
        label: "reopen after a clean stop (start → `/readyz` 200)",
        metrics: &["reopen_s"],
        show: |v| secs(v[0]),
    },
    Row {
        label: "restart after SIGKILL of an idle `serve` (start → `/readyz` 200; redb repair)",
        metrics: &["restart_after_kill_s"],
        show: |v| secs(v[0]),
    },
    Row {
        label: "`tidemark ingest` of the NDJSON stream (events/s)",
        metrics: &["ingest_s", "ingest_events_per_s"],
        show: |v| format!("{} ({})", secs(v[0]), count(v[1])),
    },
    Row {
        label: "restart after SIGKILL ÷ reopen after a clean stop (same run)",
        metrics: &["restart_after_kill_s", "reopen_s"],
        show: |v| match (v[0], v[1]) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "–".to_owned(),
        },
    },
    Row {
        label: "redb alone, the log's records in batches of 4,096: commits without → with quick repair (events/s), with ÷ without",
        metrics: &[
            "qr_commit_without_s",
            "qr_commit_with_s",
            "qr_events_per_s_without",
            "qr_events_per_s_with",
        ],
        show: |v| match (v[0], v[1]) {
            (Some(a), Some(b)) if a > 0.0 => format!(
                "{} ({}) → {} ({}), {:.2}×",
                secs(v[0]),
                count(v[2]),
                secs(v[1]),
                count(v[3]),
                b / a
            ),
            _ => "–".to_owned(),
        },
    },
    Row {
        label: "redb alone, then SIGKILL: reopen without → with quick repair (walked the file?)",
        metrics: &[
            "qr_restart_without_s",
            "qr_restart_with_s",
            "qr_walked_without",
            "qr_walked_with",
        ],
        show: |v| {
            let walked = |w: Option<f64>| match w {
                Some(w) if w > 0.0 => "walked",
                Some(_) => "loaded",
                None => "–",
            };
            format!(
                "{} ({}) → {} ({})",
                secs(v[0]),
                walked(v[2]),
                secs(v[1]),
                walked(v[3])
            )
        },
    },
    Row {
        label: "store file after ingest; snapshots kept, the latest's size",
        metrics: &["file_bytes", "snapshots", "latest_snapshot_bytes"],
        show: |v| format!("{}; {}, {}", size(v[0]), count(v[1]), size(v[2])),
    },
    Row {
        label: "`compact` of the ingested store: time, file before → after",
        metrics: &["compact_s", "compact_before_bytes", "compact_after_bytes"],
        show: |v| format!("{}, {} → {}", secs(v[0]), size(v[1]), size(v[2])),
    },
    Row {
        label: "`rebuild` of the compacted store: time, file before → after",
        metrics: &["rebuild_s", "rebuild_before_bytes", "rebuild_after_bytes"],
        show: |v| format!("{}, {} → {}", secs(v[0]), size(v[1]), size(v[2])),
    },
    Row {
        label: "per finding (`cluster-001`, the page's key): occurrences, timeline entries, flap episodes",
        metrics: &[
            "finding_occurrences",
            "finding_timeline",
            "finding_flap_episodes",
        ],
        show: |v| format!("{} / {} / {}", count(v[0]), count(v[1]), count(v[2])),
    },
];

fn human_events(events: u64) -> String {
    match events {
        e if e >= 1_000_000 && e.is_multiple_of(1_000_000) => format!("{} M", e / 1_000_000),
        e if e >= 1_000 && e.is_multiple_of(1_000) => format!("{} k", e / 1_000),
        e => e.to_string(),
    }
}

fn report(results: &Path) -> Result<()> {
    let file = File::open(results).with_context(|| format!("opening {}", results.display()))?;
    let mut values: BTreeMap<(u64, u64, String), f64> = BTreeMap::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let m: Measurement =
            serde_json::from_str(&line).with_context(|| format!("result line {line}"))?;
        if let Some(value) = m.value {
            values.insert((m.size, m.clusters, m.metric), value);
        }
    }
    let value = |size: u64, clusters: u64, metric: &str| {
        values.get(&(size, clusters, metric.to_owned())).copied()
    };
    // The columns: the sizes measured in full (the cross-cluster section may add a 10-cluster
    // store of its own size with only its ingest and reopen).
    let mut sizes: Vec<u64> = values
        .keys()
        .filter(|(_, clusters, metric)| *clusters == 10 && metric == "findings_p50_ms")
        .map(|(size, _, _)| *size)
        .collect();
    sizes.dedup();
    let (Some(&first), Some(&last)) = (sizes.first(), sizes.last()) else {
        bail!("no results in {}", results.display());
    };
    let growth = first != last;
    let mut out = String::new();
    out.push_str("| read |");
    for &s in &sizes {
        out.push_str(&format!(" {} |", human_events(s)));
    }
    if growth {
        out.push_str(&format!(
            " growth {} ÷ {} |",
            human_events(last),
            human_events(first)
        ));
    }
    let columns = sizes.len() + usize::from(growth);
    out.push_str(&format!("\n| --- |{}\n", " --- |".repeat(columns)));
    for row in ROWS {
        out.push_str(&format!("| {} |", row.label));
        for &s in &sizes {
            let cell: Vec<Option<f64>> = row.metrics.iter().map(|m| value(s, 10, m)).collect();
            out.push_str(&format!(" {} |", (row.show)(&cell)));
        }
        if growth {
            let ratio = match (
                value(first, 10, row.metrics[0]),
                value(last, 10, row.metrics[0]),
            ) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
                _ => "–".to_owned(),
            };
            out.push_str(&format!(" {ratio} |"));
        }
        out.push('\n');
    }
    let cross: Vec<u64> = values
        .keys()
        .filter(|(_, clusters, _)| *clusters != 10)
        .map(|(size, _, _)| *size)
        .collect();
    if let Some(&events) = cross.first() {
        let wide = values
            .keys()
            .find(|(size, clusters, _)| *size == events && *clusters != 10)
            .map(|(_, clusters, _)| *clusters)
            .expect("a cross-cluster result");
        out.push_str(&format!(
            "\n| {} events | 10 clusters | {wide} clusters | {wide} ÷ 10 |\n| --- | --- | --- | --- |\n",
            human_events(events)
        ));
        let lines: [(&str, &str, Show); 8] = [
            ("`tidemark ingest` of the NDJSON stream", "ingest_s", secs),
            (
                "reopen after a clean stop (start → `/readyz` 200)",
                "reopen_s",
                secs,
            ),
            ("`serve` RSS after start", "serve_rss_kib", mib),
            ("`serve` peak RSS while opening", "serve_hwm_kib", mib),
            (
                "first `/v1/findings?limit=100` after it (restores the clusters it reaches)",
                "first_list_s",
                secs,
            ),
            (
                "first `/metrics` after that (counts every cluster: restores them all)",
                "first_metrics_s",
                secs,
            ),
            ("`serve` RSS after that", "rss_after_all_clusters_kib", mib),
            ("store file", "file_bytes", size),
        ];
        for (label, metric, show) in lines {
            let (narrow, broad) = (value(events, 10, metric), value(events, wide, metric));
            let ratio = match (narrow, broad) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.2}×", b / a),
                _ => "–".to_owned(),
            };
            out.push_str(&format!(
                "| {label} | {} | {} | {ratio} |\n",
                show(narrow),
                show(broad)
            ));
        }
        // Paging cluster-001's events: per returned event, since the cluster holds 1/10 or
        // 1/6,000 of the log.
        let per_event = |clusters: u64| match (
            value(events, clusters, "paging_s"),
            value(events, clusters, "paging_events"),
        ) {
            (Some(s), Some(n)) if n > 0.0 => Some(s / n),
            _ => None,
        };
        let cell = |clusters: u64| {
            format!(
                "{} ({}), {} per event",
                secs(value(events, clusters, "paging_s")),
                count(value(events, clusters, "paging_events")),
                secs(per_event(clusters))
            )
        };
        let ratio = match (per_event(10), per_event(wide)) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.0}× per event", b / a),
            _ => "–".to_owned(),
        };
        out.push_str(&format!(
            "| paging `/v1/events?cluster=cluster-001&limit=1000` to the end | {} | {} | {ratio} |\n",
            cell(10),
            cell(wide)
        ));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_only_from_a_whole_line() {
        let warning = "WARN tidemark_server::auth: no tokens configured addr=127.0.0.1:0\n";
        let line = "tidemark: serving /tmp/s.redb on http://127.0.0.1:35749 (Ctrl-C to stop)\n";
        assert_eq!(served_address(warning), None);
        // A read while the server writes its line sees only part of it.
        let cut = format!("{warning}{}", &line[..line.find(":35749").unwrap() + 3]);
        assert_eq!(served_address(&cut), None);
        assert_eq!(
            served_address(&format!("{warning}{line}")).as_deref(),
            Some("http://127.0.0.1:35749")
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 10.0);
        assert_eq!(percentile(&values, 99.0), 20.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
