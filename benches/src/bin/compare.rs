//! `compare`: the programs behind `benches/compare/run` — the workload of `performance.md` as
//! NDJSON and as the PostgreSQL peer's per-cycle SQL, the raw limits (JetStream drain, redb
//! sequential append), Tidemark's follow-and-commit, the final-state check and the report.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use tidemark_benches::Workload;
use tidemark_core::{Event, Payload, ResolutionKind, Timestamp, decode_event, encode_event};
use tidemark_store::{Store, StoreConfig};

#[derive(Parser, Debug)]
#[command(
    name = "compare",
    about = "Tidemark vs the PostgreSQL design it replaces, and vs the limits under it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the workload: `cycles.ndjson` (Tidemark's events) and `pg-schema.sql` +
    /// `pg-cycles.sql` (the PodWarden-style runner's table and per-cycle transactions).
    Generate {
        /// Cycles of the workload (1,000 observations each).
        #[arg(long, default_value_t = 10_000)]
        cycles: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Findings per cluster.
        #[arg(long, default_value_t = 1_000)]
        findings: usize,
        /// Directory to write into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the memory workload: `clusters` clusters of `findings` findings each, all present
    /// in each of `cycles` cycles (so every finding stays active), as NDJSON.
    GenerateWide {
        /// Clusters.
        #[arg(long, default_value_t = 100)]
        clusters: usize,
        /// Findings per cluster.
        #[arg(long, default_value_t = 10_000)]
        findings: usize,
        /// Cycles per cluster.
        #[arg(long, default_value_t = 2)]
        cycles: usize,
        /// The NDJSON file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Drain the stream with an ordered consumer doing no work: the raw JetStream limit. One
    /// drain of a short stream takes a fraction of a second and its rate swings between runs,
    /// so the stream is drained `repeats` times and the median drain is the measurement.
    Drain {
        /// NATS URL.
        #[arg(long)]
        nats: String,
        /// Messages to read.
        #[arg(long)]
        count: u64,
        /// Drains of the whole stream, one after another (each with a fresh consumer).
        #[arg(long, default_value_t = 7)]
        repeats: usize,
    },
    /// Follow the stream into a fresh redb replica with Tidemark's follower until `count`
    /// events are committed.
    Follow {
        /// NATS URL.
        #[arg(long)]
        nats: String,
        /// The replica's redb file (must not exist).
        #[arg(long)]
        db: PathBuf,
        /// Events to wait for.
        #[arg(long)]
        count: u64,
    },
    /// Append the stored bytes of every event of an NDJSON file to a bare redb table with
    /// sequential u64 keys, `batch` per durable transaction: the raw redb limit.
    Append {
        /// The NDJSON workload.
        #[arg(long)]
        ndjson: PathBuf,
        /// The redb file to create.
        #[arg(long)]
        db: PathBuf,
        /// Entries per transaction.
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
    },
    /// Compare the final finding state of a Tidemark store with the PostgreSQL runner's table
    /// (exported as `cluster|check_key|active|clean_cycles|resolution_kind` lines).
    Check {
        /// The Tidemark store.
        #[arg(long)]
        db: PathBuf,
        /// The PostgreSQL export.
        #[arg(long)]
        pg_rows: PathBuf,
    },
    /// Print the results table (Markdown) from a results file of JSON lines.
    Report {
        /// Results, one JSON object per line: {"name", "seconds", "observations", ...}.
        #[arg(long)]
        results: PathBuf,
    },
}

/// One measurement, as a line of the results file.
#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    name: String,
    seconds: f64,
    #[serde(default)]
    events: u64,
    #[serde(default)]
    observations: u64,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    peak_rss_kib: Option<u64>,
    /// The seconds of each repeat, when the measurement is the median of several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    repeats: Vec<f64>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("compare: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Generate {
            cycles,
            seed,
            findings,
            out,
        } => generate(cycles, seed, findings, &out)?,
        Command::GenerateWide {
            clusters,
            findings,
            cycles,
            out,
        } => generate_wide(clusters, findings, cycles, &out)?,
        Command::Drain {
            nats,
            count,
            repeats,
        } => print_measurement(&drain(&nats, count, repeats)?)?,
        Command::Follow { nats, db, count } => print_measurement(&follow(&nats, &db, count)?)?,
        Command::Append { ndjson, db, batch } => print_measurement(&append(&ndjson, &db, batch)?)?,
        Command::Check { db, pg_rows } => return check(&db, &pg_rows),
        Command::Report { results } => report(&results)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_measurement(measurement: &Measurement) -> Result<()> {
    println!("{}", serde_json::to_string(measurement)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// generate

fn generate(cycles: usize, seed: u64, findings: usize, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let workload = Workload {
        findings,
        seed,
        ..Workload::standard(cycles)
    };
    let events = workload.events();
    let mut ndjson = BufWriter::new(File::create(out.join("cycles.ndjson"))?);
    let mut sql = BufWriter::new(File::create(out.join("pg-cycles.sql"))?);
    let mut settings_t = 2;
    for event in &events {
        writeln!(ndjson, "{}", encode_event(event))?;
        match &event.payload {
            Payload::SettingsChanged(settings) => {
                settings_t = settings.clean_cycles_to_resolve.unwrap_or(2);
            }
            Payload::CycleCompleted(cycle) => {
                write_cycle_sql(&mut sql, event, cycle, settings_t)?;
            }
            other => bail!("the workload has no {other:?} events"),
        }
    }
    ndjson.flush()?;
    sql.flush()?;
    std::fs::write(out.join("pg-schema.sql"), PG_SCHEMA)?;
    std::fs::write(
        out.join("workload.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "cycles": cycles,
            "findings": findings,
            "seed": seed,
            "events": events.len(),
            "observations": workload.observations(),
        }))?,
    )?;
    Ok(())
}

fn generate_wide(clusters: usize, findings: usize, cycles: usize, out: &Path) -> Result<()> {
    let mut ndjson = BufWriter::new(File::create(out)?);
    let start = Timestamp::parse_rfc3339("2026-03-02T00:00:00Z")?;
    for cycle in 0..cycles {
        for cluster in 0..clusters {
            let event = Event {
                id: tidemark_core::EventId(format!("wide-{cluster:03}-{cycle:04}")),
                schema: tidemark_core::event::CURRENT_SCHEMA,
                time: start.plus_secs(300 * (cycle as i64 + 1)),
                source: "bench-probe".to_owned(),
                cluster: format!("cluster-{cluster:03}"),
                payload: Payload::CycleCompleted(tidemark_core::event::CycleCompleted {
                    cycle: format!("c-{cycle:04}"),
                    categories: tidemark_benches::CATEGORIES
                        .iter()
                        .map(|c| (*c).to_owned())
                        .collect(),
                    findings: (0..findings)
                        .map(|i| tidemark_core::event::FindingObservation {
                            check_key: Workload::check_key(i),
                            category: tidemark_benches::CATEGORIES[i % 4].to_owned(),
                            severity: tidemark_core::Severity::Error,
                            title: format!("app-{i} is crash-looping"),
                            detail: None,
                            resource: None,
                            informational: false,
                        })
                        .collect(),
                }),
            };
            writeln!(ndjson, "{}", encode_event(&event))?;
        }
    }
    ndjson.flush()?;
    Ok(())
}

/// The PodWarden design on PostgreSQL 15, `performance.md`: one row per occurrence, a partial
/// unique index on the active rows, a partial sweep index, `fillfactor = 50` (its best
/// configuration: HOT updates), and the three statements of a cycle prepared once.
const PG_SCHEMA: &str = r#"-- The PodWarden-style findings table (benches/compare): one row per occurrence.
CREATE TABLE findings (
    id             bigserial PRIMARY KEY,
    cluster        text        NOT NULL,
    check_key      text        NOT NULL,
    category       text        NOT NULL,
    severity       text        NOT NULL,
    title          text        NOT NULL,
    opened_at      timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    clean_cycles   integer     NOT NULL DEFAULT 0,
    resolved_at    timestamptz,
    resolution_kind text
) WITH (fillfactor = 50);
CREATE UNIQUE INDEX findings_active ON findings (cluster, check_key) WHERE resolved_at IS NULL;
CREATE INDEX findings_sweep ON findings (cluster, category) WHERE resolved_at IS NULL;
"#;

/// The statements of one cycle, prepared once per session (first lines of `pg-cycles.sql`).
const PG_PREPARE: &str = r#"-- Per-cycle transactions of the PodWarden-style runner (benches/compare), generated.
PREPARE upsert(text, timestamptz, text[], text[], text[], text[]) AS
  INSERT INTO findings (cluster, check_key, category, severity, title, opened_at, last_seen_at)
  SELECT $1, k, c, s, t, $2, $2 FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS u(k, c, s, t)
  ON CONFLICT (cluster, check_key) WHERE resolved_at IS NULL
  DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, clean_cycles = 0,
                category = EXCLUDED.category, severity = EXCLUDED.severity, title = EXCLUDED.title;
PREPARE resolve(text, timestamptz, text[], integer) AS
  UPDATE findings SET resolved_at = $2, resolution_kind = 'auto'
  WHERE cluster = $1 AND resolved_at IS NULL AND category = ANY($3) AND last_seen_at < $2
    AND clean_cycles >= $4;
PREPARE increment(text, timestamptz, text[]) AS
  UPDATE findings SET clean_cycles = clean_cycles + 1
  WHERE cluster = $1 AND resolved_at IS NULL AND category = ANY($3) AND last_seen_at < $2;
"#;

fn write_cycle_sql(
    out: &mut impl Write,
    event: &Event,
    cycle: &tidemark_core::event::CycleCompleted,
    clean_cycles_to_resolve: u32,
) -> Result<()> {
    if event.id.0.ends_with("cycle-00000000") {
        out.write_all(PG_PREPARE.as_bytes())?;
    }
    // The categories run: the cycle's plus its findings' (lifecycle.md step 1).
    let mut ran: Vec<&str> = cycle.categories.iter().map(String::as_str).collect();
    ran.extend(cycle.findings.iter().map(|f| f.category.as_str()));
    ran.sort_unstable();
    ran.dedup();
    // A key listed twice counts once, the last entry's fields win.
    let mut present: BTreeMap<&str, &tidemark_core::event::FindingObservation> = BTreeMap::new();
    for finding in &cycle.findings {
        present.insert(finding.check_key.as_str(), finding);
    }
    let cluster = sql_literal(&event.cluster);
    let time = sql_literal(&event.time.to_string());
    let array = |values: &mut dyn Iterator<Item = &str>| {
        let items: Vec<String> = values.map(array_item).collect();
        sql_literal(&format!("{{{}}}", items.join(",")))
    };
    writeln!(out, "BEGIN;")?;
    writeln!(
        out,
        "EXECUTE upsert({cluster}, {time}, {}, {}, {}, {});",
        array(&mut present.keys().copied()),
        array(&mut present.values().map(|f| f.category.as_str())),
        array(&mut present.values().map(|f| f.severity.as_str())),
        array(&mut present.values().map(|f| f.title.as_str())),
    )?;
    let ran = array(&mut ran.iter().copied());
    writeln!(
        out,
        "EXECUTE resolve({cluster}, {time}, {ran}, {clean_cycles_to_resolve});"
    )?;
    writeln!(out, "EXECUTE increment({cluster}, {time}, {ran});")?;
    writeln!(out, "COMMIT;")?;
    Ok(())
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn array_item(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---------------------------------------------------------------------------------------------
// the raw limits and the follower

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn nats_config(url: &str) -> tidemark_nats::NatsConfig {
    tidemark_nats::NatsConfig {
        servers: url.to_owned(),
        auth: tidemark_nats::NatsAuth::default(),
        stream: tidemark_nats::StreamSettings::default(),
    }
}

fn drain(url: &str, count: u64, repeats: usize) -> Result<Measurement> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    use futures::StreamExt;
    if repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    runtime()?.block_on(async {
        let config = nats_config(url);
        let client = tidemark_nats::connect(&config, "compare-drain").await?;
        let js = tidemark_nats::connect::jetstream_context(client);
        let stream = js
            .get_stream(&config.stream.name)
            .await
            .context("the stream Tidemark publishes to")?;
        let mut runs = Vec::with_capacity(repeats);
        let mut bytes = 0;
        for _ in 0..repeats {
            let started = Instant::now();
            let consumer = stream
                .create_consumer(pull::OrderedConfig {
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                })
                .await?;
            let mut messages = consumer.messages().await?;
            let mut drained = 0u64;
            bytes = 0;
            while drained < count {
                match messages.next().await {
                    Some(Ok(message)) => {
                        bytes += message.payload.len() as u64;
                        drained += 1;
                    }
                    Some(Err(error)) => bail!("draining: {error}"),
                    None => bail!("the stream ended after {drained} of {count} messages"),
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "drain {} of {repeats}: {seconds:.3} s, {:.0} events/s",
                runs.len() + 1,
                count as f64 / seconds
            );
            runs.push(seconds);
        }
        Ok(Measurement {
            name: "jetstream_drain".into(),
            seconds: median(&runs),
            events: count,
            observations: 0,
            bytes,
            peak_rss_kib: peak_rss_kib(),
            repeats: runs,
        })
    })
}

/// The median of `values` (the mean of the middle two for an even count); `values` is not empty.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn follow(url: &str, db: &Path, count: u64) -> Result<Measurement> {
    if db.exists() {
        bail!("{} exists; the replica must start empty", db.display());
    }
    runtime()?.block_on(async {
        let config = nats_config(url);
        let client = tidemark_nats::connect(&config, "compare-follow").await?;
        let js = tidemark_nats::connect::jetstream_context(client);
        let store = Arc::new(Store::open(db, StoreConfig::default())?);
        let started = Instant::now();
        let follower = tidemark_nats::spawn_follower(
            store.clone(),
            js,
            tidemark_nats::FollowerConfig::default(),
        );
        while store.checkpoint() < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        follower.stop().await;
        Ok(Measurement {
            name: "tidemark_follow".into(),
            seconds,
            events: count,
            observations: 0,
            bytes: 0,
            peak_rss_kib: peak_rss_kib(),
            repeats: Vec::new(),
        })
    })
}

fn append(ndjson: &Path, db: &Path, batch: usize) -> Result<Measurement> {
    const LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
    if db.exists() {
        bail!("{} exists", db.display());
    }
    // The bytes Tidemark stores for each event, prepared before timing starts.
    let recorded_at = Timestamp::from_unix_secs(1_800_000_000);
    let mut records = Vec::new();
    for (line, text) in BufReader::new(File::open(ndjson)?).lines().enumerate() {
        let event = decode_event(&text?).with_context(|| format!("line {}", line + 1))?;
        let mut bytes = Vec::new();
        // Records are sealed with their log position (the checksum covers it).
        tidemark_store::codec::encode_event(line as u64 + 1, &event, recorded_at, &mut bytes);
        records.push(bytes);
    }
    let bytes: u64 = records.iter().map(|r| r.len() as u64).sum();
    let database = redb::Database::create(db)?;
    let started = Instant::now();
    let mut seq = 0u64;
    for chunk in records.chunks(batch.max(1)) {
        // The raw limit under the store, not a store: redb's defaults, no quick repair.
        #[allow(clippy::disallowed_methods)]
        let txn = database.begin_write()?;
        {
            let mut table = txn.open_table(LOG)?;
            for record in chunk {
                seq += 1;
                table.insert(seq, record.as_slice())?;
            }
        }
        txn.commit()?;
    }
    Ok(Measurement {
        name: "redb_append".into(),
        seconds: started.elapsed().as_secs_f64(),
        events: seq,
        observations: 0,
        bytes,
        peak_rss_kib: peak_rss_kib(),
        repeats: Vec::new(),
    })
}

/// This process's peak resident set (VmHWM), from /proc.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// check

/// The comparable facts of one finding.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Facts {
    /// `clean_cycles` of the active occurrence, `None` when not active.
    active_clean_cycles: Option<u32>,
    /// Occurrences resolved automatically.
    auto_resolutions: u64,
    /// Occurrences, the active one included.
    occurrences: u64,
}

fn check(db: &Path, pg_rows: &Path) -> Result<ExitCode> {
    let store = Store::open(db, StoreConfig::default())?;
    let mut tidemark: BTreeMap<(String, String), Facts> = BTreeMap::new();
    for view in store.findings() {
        let facts = Facts {
            active_clean_cycles: view.clean_cycles,
            auto_resolutions: view
                .history
                .iter()
                .filter(|o| o.resolution_kind == Some(ResolutionKind::Auto))
                .count() as u64,
            occurrences: view.occurrences,
        };
        tidemark.insert((view.cluster, view.check_key), facts);
    }
    let mut postgres: BTreeMap<(String, String), Facts> = BTreeMap::new();
    for (number, line) in BufReader::new(File::open(pg_rows)?).lines().enumerate() {
        let line = line?;
        let fields: Vec<&str> = line.split('|').collect();
        let [cluster, key, active, clean, kind] = fields[..] else {
            bail!(
                "{} line {}: expected 5 fields",
                pg_rows.display(),
                number + 1
            );
        };
        let facts = postgres
            .entry((cluster.to_owned(), key.to_owned()))
            .or_default();
        facts.occurrences += 1;
        if active == "t" {
            facts.active_clean_cycles = Some(clean.parse()?);
        }
        if kind == "auto" {
            facts.auto_resolutions += 1;
        }
    }
    let mut differences = Vec::new();
    for key in tidemark.keys().chain(postgres.keys()) {
        let (a, b) = (tidemark.get(key), postgres.get(key));
        if a != b && !differences.iter().any(|(k, _, _)| k == key) {
            differences.push((key.clone(), a.cloned(), b.cloned()));
        }
    }
    let active = tidemark
        .values()
        .filter(|f| f.active_clean_cycles.is_some())
        .count();
    let resolutions: u64 = tidemark.values().map(|f| f.auto_resolutions).sum();
    if differences.is_empty() {
        println!(
            "same final state: {} findings, {active} active, {resolutions} auto-resolutions, \
             every clean_cycles equal",
            tidemark.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} findings differ between Tidemark and PostgreSQL; the first ones:",
            differences.len()
        );
        for ((cluster, key), a, b) in differences.iter().take(10) {
            println!("  {cluster}/{key}: tidemark {a:?}, postgres {b:?}");
        }
        Ok(ExitCode::FAILURE)
    }
}

// ---------------------------------------------------------------------------------------------
// report

fn report(results: &Path) -> Result<()> {
    let mut rows: BTreeMap<String, Measurement> = BTreeMap::new();
    for line in BufReader::new(File::open(results)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let measurement: Measurement =
            serde_json::from_str(&line).with_context(|| format!("result line {line}"))?;
        rows.insert(measurement.name.clone(), measurement);
    }
    let rate = |name: &str, per: fn(&Measurement) -> u64| -> Option<f64> {
        rows.get(name).map(|m| per(m) as f64 / m.seconds)
    };
    let observations = |m: &Measurement| m.observations;
    let events = |m: &Measurement| m.events;
    println!("| measurement | seconds | events/s | observations/s | peak RSS |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, name) in [
        (
            "PostgreSQL runner (fillfactor 50, one txn per cycle)",
            "postgres",
        ),
        ("Tidemark embedded `ingest` (durable)", "tidemark_ingest"),
        (
            "Tidemark `emit` to JetStream (acked, sync always)",
            "tidemark_emit",
        ),
        ("JetStream raw drain (ordered consumer)", "jetstream_drain"),
        (
            "Tidemark follow-and-commit (redb replica)",
            "tidemark_follow",
        ),
        ("redb sequential append of the stored bytes", "redb_append"),
        (
            "memory: `tidemark ingest` of 1,000,000 active findings in 100 clusters",
            "memory_1m_active",
        ),
    ] {
        let Some(m) = rows.get(name) else { continue };
        let obs = if m.observations > 0 {
            format!("{:.0}", m.observations as f64 / m.seconds)
        } else {
            String::new()
        };
        // The PostgreSQL row's peak is psql's, not the server's: left out.
        let rss = m
            .peak_rss_kib
            .filter(|_| name != "postgres")
            .map(|k| format!("{:.0} MiB", k as f64 / 1024.0))
            .unwrap_or_default();
        println!(
            "| {label} | {:.2} | {:.0} | {obs} | {rss} |",
            m.seconds,
            m.events as f64 / m.seconds
        );
    }
    println!();
    if let (Some(t), Some(p)) = (
        rate("tidemark_ingest", observations),
        rate("postgres", observations),
    ) {
        println!("embedded ingest / PostgreSQL = {:.1}x (goal >= 20x)", t / p);
    }
    if let (Some(f), Some(d)) = (
        rate("tidemark_follow", events),
        rate("jetstream_drain", events),
    ) {
        println!(
            "follow-and-commit / raw drain = {:.0}% (goal >= 50%)",
            100.0 * f / d
        );
        if let Some(drain) = rows.get("jetstream_drain")
            && drain.repeats.len() > 1
        {
            let fastest = drain.repeats.iter().copied().fold(f64::INFINITY, f64::min);
            let slowest = drain.repeats.iter().copied().fold(0.0, f64::max);
            let per_second = |seconds: f64| drain.events as f64 / seconds;
            println!(
                "  (the raw drain is the median of {} drains: {:.0} to {:.0} events/s; \
                 against the fastest and the slowest, {:.0}% to {:.0}%)",
                drain.repeats.len(),
                per_second(slowest),
                per_second(fastest),
                100.0 * f / per_second(fastest),
                100.0 * f / per_second(slowest),
            );
        }
    }
    if let (Some(t), Some(a)) = (rate("tidemark_ingest", events), rate("redb_append", events)) {
        println!("embedded ingest / redb raw append = {:.0}%", 100.0 * t / a);
    }
    if let Some(kib) = rows.get("memory_1m_active").and_then(|m| m.peak_rss_kib) {
        println!(
            "peak RSS holding 1,000,000 active findings = {:.0} MiB (goal < 1024 MiB)",
            kib as f64 / 1024.0
        );
    }
    Ok(())
}
