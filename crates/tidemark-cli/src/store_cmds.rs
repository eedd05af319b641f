//! The store commands: `ingest`, `findings`, `timeline`, `rebuild`, `stats`, `quarantine`.
//!
//! Read commands open the store read-only (`open_existing`): they never write a byte of it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use tidemark_core::Timestamp;
use tidemark_store::{
    At, Input, OpenError, Outcome, PreparedBatch, Store, StoreConfig, TimelineEntry,
};

use crate::ndjson::{byte_progress, for_each_event, open};
use crate::replay::{Until, findings_table, parse_until};
use crate::{CliError, exit, table};

/// Where the store lives.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The store file (created by `ingest` and `serve` when missing).
    #[arg(
        long,
        env = "TIDEMARK_DB",
        default_value = "tidemark.redb",
        value_name = "PATH"
    )]
    pub db: PathBuf,
}

/// How much the quarantine may hold (`serve` and `ingest`).
#[derive(Args, Debug, Clone)]
pub struct QuarantineBoundArgs {
    /// Most quarantine records. Past the bound a refused input is still answered with its
    /// reason (and its repeats of kept records still counted), but its raw bytes are not kept:
    /// `tidemark stats` and tidemark_quarantine_dropped_total count it.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub quarantine_max_records: u64,
    /// Most bytes of quarantine records (raw input, reason and origin); past it, as above.
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES")]
    pub quarantine_max_bytes: u64,
}

impl QuarantineBoundArgs {
    /// The store's quarantine limits.
    pub fn limits(&self) -> tidemark_store::QuarantineLimits {
        tidemark_store::QuarantineLimits {
            max_records: self.quarantine_max_records,
            max_bytes: self.quarantine_max_bytes,
        }
    }
}

/// Opens the store for writing, creating it if needed.
pub fn open_store(db: &Path) -> Result<Store, CliError> {
    open_store_with(db, StoreConfig::default())
}

/// Opens the store for writing with explicit tuning, creating it if needed.
pub fn open_store_with(db: &Path, config: StoreConfig) -> Result<Store, CliError> {
    Store::open(db, config).map_err(open_failed)
}

/// The exit code of a store that cannot be opened: 65 for a file that is not a store (empty,
/// not redb, not Tidemark's), 66 for no file, 1 otherwise (held by another process, needs
/// recovery, corrupt, ...). One message, saying what to do.
pub fn open_failed(error: OpenError) -> CliError {
    let code = match &error {
        OpenError::NotAStore { .. } => exit::DATA_ERROR,
        OpenError::Missing { .. } => exit::NO_INPUT,
        error if error.is_disk_full() => {
            return CliError::new(
                exit::IO_ERROR,
                anyhow::anyhow!(
                    "{error}: the disk is full (or the file size limit was reached) while \
                     opening the store, which writes to it; nothing was changed (the next \
                     read-write open recovers the file from its last commit). Free space on its \
                     filesystem (or raise the limit) and run the command again"
                ),
            );
        }
        _ => exit::FAILURE,
    };
    CliError::new(code, error)
}

/// Opens an existing store read-only, for the read commands: nothing is written to the file
/// (which may be read-only), and a store that needs recovery is refused with the command that
/// recovers it (`tidemark repair`).
pub fn open_existing(db: &Path) -> Result<Store, CliError> {
    Store::open_read_only(db, StoreConfig::default()).map_err(open_failed)
}

/// Opens an existing store for writing (`rebuild`, `compact`): never creates one.
pub fn open_existing_writable(db: &Path) -> Result<Store, CliError> {
    if !db.exists() {
        return Err(open_failed(OpenError::Missing {
            path: db.to_path_buf(),
        }));
    }
    open_store(db)
}

// ---------------------------------------------------------------------------------------------
// ingest

/// Store events from NDJSON files.
#[derive(Args, Debug)]
#[command(
    long_about = "Stores the events of NDJSON files (one event per line) in the store, in batches of \
                  one transaction each. Events whose id is already stored are counted as duplicates \
                  and not stored again. A line that is not a valid event is reported with its line \
                  number and reason, kept in quarantine (the same bad line again is counted on \
                  its record, not stored twice; past the quarantine's bound it is only counted), \
                  and does not stop the rest (unless --strict). Exits 65 when any line was \
                  rejected."
)]
pub struct IngestArgs {
    /// NDJSON files to store, in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Stop at the first invalid line (the events before it are stored; it is not).
    #[arg(long)]
    pub strict: bool,
    /// Events per transaction (a batch is also cut at 16 MiB of JSON).
    #[arg(long, default_value_t = 4_096, value_name = "N")]
    pub batch: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub quarantine: QuarantineBoundArgs,
}

/// Counts of one ingest.
#[derive(Debug, Default, Serialize, Clone)]
pub struct IngestSummary {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Rejected lines whose raw bytes the quarantine did not keep (it was at its bound).
    pub raw_not_kept: u64,
    /// `file F line N: reason` of rejected lines (the first 100).
    pub rejected_lines: Vec<String>,
    pub seconds: f64,
}

impl IngestSummary {
    fn count<'a>(&mut self, inputs: impl Iterator<Item = &'a Input>, outcomes: &[Outcome]) {
        for (input, outcome) in inputs.zip(outcomes) {
            match outcome {
                Outcome::Accepted { .. } => self.accepted += 1,
                Outcome::Duplicate { .. } => self.duplicates += 1,
                Outcome::Rejected {
                    reason, raw_kept, ..
                } => {
                    self.rejected += 1;
                    self.raw_not_kept += u64::from(!raw_kept);
                    if self.rejected_lines.len() < 100 {
                        let origin = match input {
                            Input::Rejected { origin, .. } => origin.as_str(),
                            Input::Event(_) => "",
                        };
                        self.rejected_lines.push(format!("{origin}: {reason}"));
                    }
                }
            }
        }
    }
}

/// JSON bytes per batch at most, whatever `--batch` says: bounds the memory of a batch of large
/// events and keeps the decoder and the writer overlapping. 16 MiB rather than 8: each commit
/// rewrites the index leaves its batch touched, so 1,000-finding cycles ingest 11-13 % faster
/// for about 90 MB more peak memory (issue 20, `docs/benchmarks.md`).
const MAX_BATCH_JSON_BYTES: usize = 16 << 20;

/// What the decoding thread hands the writer.
enum Decoded {
    /// A batch of decoded events and rejected lines, in file order.
    Batch(PreparedBatch),
    /// `--strict` met an invalid line: this names it; nothing after it follows.
    Stopped(String),
}

/// Stores the events of `files`; rejected lines go to quarantine unless `strict` stops at them.
///
/// Two threads: one reads and decodes the JSON lines into batches, the other appends each batch
/// in one durable transaction while the next is decoded (a bounded queue of two batches between
/// them). Batches are cut at `batch_size` events or 16 MiB of JSON.
pub fn ingest_files(
    store: &Store,
    files: &[PathBuf],
    strict: bool,
    batch_size: usize,
) -> Result<IngestSummary, CliError> {
    let started = Instant::now();
    let mut summary = IngestSummary::default();
    let batch_size = batch_size.max(1);
    for file in files {
        let (reader, len) = open(file)?;
        let progress = byte_progress(len, &format!("ingesting {}", file.display()));
        let stopped_at = std::thread::scope(|scope| -> Result<Option<String>, CliError> {
            // Created inside the scope: if the writer fails, `receiver` is dropped before the
            // scope joins the decoder, whose next send then fails and ends it.
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Decoded>(2);
            // Appended batches go back to the decoding thread, which frees them: the writer's
            // thread is the busy one (issue 20).
            let (spent, spent_receiver) = std::sync::mpsc::channel::<PreparedBatch>();
            let decoder_progress = progress.clone();
            let decoder = scope.spawn(move || {
                let decoded = decode_batches(
                    reader,
                    file,
                    (strict, batch_size),
                    &decoder_progress,
                    &sender,
                    &spent_receiver,
                );
                // The writer's loop ends when this hangs up; then this thread frees the
                // batches the writer still appends, until the writer hangs up too.
                drop(sender);
                spent_receiver.into_iter().for_each(drop);
                decoded
            });
            let mut stopped_at = None;
            for decoded in &receiver {
                match decoded {
                    Decoded::Batch(batch) => {
                        let outcomes = store
                            .append_prepared(&batch)
                            .map_err(|e| append_failed(file, &e, summary.accepted))?;
                        summary.count(batch.inputs(), &outcomes);
                        // Refused only when the decoder ended early (its error is reported
                        // below): then this thread frees it.
                        let _ = spent.send(batch);
                        let rate =
                            summary.accepted as f64 / started.elapsed().as_secs_f64().max(1e-9);
                        progress.set_message(format!(
                            "ingesting {}: {} events ({rate:.0}/s)",
                            file.display(),
                            summary.accepted
                        ));
                    }
                    Decoded::Stopped(reason) => stopped_at = Some(reason),
                }
            }
            // The decoder frees spent batches until this hangs up.
            drop(spent);
            decoder
                .join()
                .map_err(|_| anyhow::anyhow!("the decoding thread panicked"))??;
            Ok(stopped_at)
        })?;
        progress.finish_and_clear();
        if let Some(reason) = stopped_at {
            return Err(CliError::new(
                exit::DATA_ERROR,
                anyhow::anyhow!(
                    "{reason}\nstopped (--strict): {} event(s) before it were stored; fix the line and ingest again (stored ids are skipped)",
                    summary.accepted
                ),
            ));
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// What a failed batch means for the user, and what to do next.
fn append_failed(file: &Path, error: &tidemark_store::AppendError, stored_before: u64) -> CliError {
    let (code, next) = if matches!(error, tidemark_store::AppendError::DiskFull { .. }) {
        (
            exit::IO_ERROR,
            "run the same command again when there is space",
        )
    } else {
        (exit::FAILURE, "nothing of the failed batch was stored")
    };
    CliError::new(
        code,
        anyhow::anyhow!(
            "{}: {error}\n{stored_before} event(s) of this run were stored before it; {next} \
             (stored ids are skipped)",
            file.display()
        ),
    )
}

/// The decoding side of [`ingest_files`]: reads `reader`'s lines and sends batches in order,
/// their log records encoded ([`PreparedBatch`]), and frees the batches the writer sends back.
/// Stops quietly when the writer hung up (it failed and reports why).
fn decode_batches(
    reader: std::io::BufReader<std::fs::File>,
    file: &Path,
    (strict, batch_size): (bool, usize),
    progress: &indicatif::ProgressBar,
    sender: &std::sync::mpsc::SyncSender<Decoded>,
    spent: &std::sync::mpsc::Receiver<PreparedBatch>,
) -> Result<(), CliError> {
    let prepared = |batch: Vec<Input>| {
        // Freed here, on the thread that allocated them.
        spent.try_iter().for_each(drop);
        Decoded::Batch(PreparedBatch::new(batch, tidemark_store::wall_clock()))
    };
    let mut batch: Vec<Input> = Vec::with_capacity(batch_size.min(4_096));
    let mut batch_bytes = 0usize;
    let mut writer_gone = false;
    for_each_event(
        reader,
        progress,
        tidemark_core::Contract::NewInput,
        |line, raw, decoded| {
            match decoded {
                Ok(event) => batch.push(Input::Event(event)),
                Err(error) if strict => {
                    let reason = format!("{}: {error}", file.display());
                    let before = std::mem::take(&mut batch);
                    writer_gone = (!before.is_empty() && sender.send(prepared(before)).is_err())
                        || sender.send(Decoded::Stopped(reason)).is_err();
                    return Ok(false);
                }
                Err(mut error) => {
                    // What is wrong, not where (the origin says where): the same bad line
                    // elsewhere is the same quarantine record, counted.
                    error.line = None;
                    batch.push(Input::Rejected {
                        raw: raw.to_vec(),
                        reason: error.to_string(),
                        origin: format!("file {} line {line}", file.display()),
                    });
                }
            }
            batch_bytes += raw.len();
            if batch.len() >= batch_size || batch_bytes >= MAX_BATCH_JSON_BYTES {
                batch_bytes = 0;
                if sender.send(prepared(std::mem::take(&mut batch))).is_err() {
                    writer_gone = true;
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    if !batch.is_empty() && !writer_gone {
        // An error here means the writer failed; it reports that.
        let _ = sender.send(prepared(batch));
    }
    Ok(())
}

/// Prints a summary the way people read it.
pub fn print_summary(summary: &IngestSummary, db: &Path) {
    let rate = summary.accepted as f64 / summary.seconds.max(1e-9);
    eprintln!(
        "stored {} event(s) in {:.2}s ({rate:.0}/s): {} duplicate(s) skipped, {} rejected",
        summary.accepted, summary.seconds, summary.duplicates, summary.rejected
    );
    if summary.rejected > 0 {
        for line in summary.rejected_lines.iter().take(20) {
            eprintln!("  rejected {line}");
        }
        if summary.rejected > 20 {
            eprintln!("  ... and {} more", summary.rejected - 20);
        }
        eprintln!(
            "rejected lines are kept with their reasons: tidemark quarantine --db {}",
            db.display()
        );
        if summary.raw_not_kept > 0 {
            eprintln!(
                "{} rejected line(s) were not kept: the quarantine is full (--quarantine-max-records, --quarantine-max-bytes)",
                summary.raw_not_kept
            );
        }
    }
}

pub fn ingest(args: &IngestArgs) -> Result<(), CliError> {
    let config = StoreConfig {
        quarantine: args.quarantine.limits(),
        ..StoreConfig::default()
    };
    let store = open_store_with(&args.db.db, config)?;
    let summary = ingest_files(&store, &args.files, args.strict, args.batch)?;
    store
        .snapshot_now()
        .map_err(|e| CliError::new(exit::FAILURE, e))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(anyhow::Error::from)?
        );
    } else {
        print_summary(&summary, &args.db.db);
    }
    if summary.rejected > 0 {
        return Err(CliError::new(
            exit::DATA_ERROR,
            anyhow::anyhow!(
                "{} line(s) rejected; the other events were stored",
                summary.rejected
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// findings

/// Print the findings of a store, now or at a point of its log.
#[derive(Args, Debug)]
pub struct FindingsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The state at a log position (the events at 1..=SEQ) or a time (RFC 3339: before the
    /// first event later than it).
    #[arg(long, value_name = "SEQ|RFC3339", value_parser = parse_until)]
    pub at: Option<Until>,
    /// Print a JSON array sorted by (cluster, check_key), the shape of `tidemark replay --json`.
    #[arg(long)]
    pub json: bool,
}

pub fn findings(args: &FindingsArgs) -> Result<(), CliError> {
    let store = open_existing(&args.db.db)?;
    let (views, seq) = match args.at {
        None => (store.findings(), store.checkpoint()),
        Some(at) => {
            let at = match at {
                Until::Seq(seq) => At::Seq(seq),
                Until::Time(t) => At::Time(t),
            };
            store
                .findings_at(at)
                .map_err(|e| CliError::new(exit::FAILURE, e))?
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&views).map_err(anyhow::Error::from)?
        );
    } else {
        print!("{}", findings_table(&views));
        println!("{} finding(s) at log position {seq}", views.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// timeline

/// Print the timeline of a finding or of a cluster.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["check_key", "cluster"])))]
pub struct TimelineArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// A finding's check_key: the events that opened, resolved, escalated or named it.
    #[arg(long, value_name = "KEY")]
    pub check_key: Option<String>,
    /// A cluster: its events by time (with --check-key: that cluster's finding only).
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// Only events at or after this time (cluster timelines).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<Timestamp>,
    /// Only events at or before this time (cluster timelines).
    #[arg(long, value_name = "RFC3339")]
    pub until: Option<Timestamp>,
    /// Most entries printed.
    #[arg(long, default_value_t = 1_000)]
    pub limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn timeline(args: &TimelineArgs) -> Result<(), CliError> {
    let store = open_existing(&args.db.db)?;
    let fail = |e: tidemark_store::QueryError| CliError::new(exit::FAILURE, e);
    let entries: Vec<(String, TimelineEntry)> = match (&args.check_key, &args.cluster) {
        (Some(key), cluster) => {
            let clusters: Vec<String> = match cluster {
                Some(c) => vec![c.clone()],
                None => {
                    let mut found: Vec<String> = store
                        .findings()
                        .into_iter()
                        .filter(|v| &v.check_key == key)
                        .map(|v| v.cluster)
                        .collect();
                    found.dedup();
                    found
                }
            };
            if clusters.is_empty() {
                return Err(CliError::new(
                    exit::NO_INPUT,
                    anyhow::anyhow!(
                        "no finding with check_key {key:?} in {}",
                        args.db.db.display()
                    ),
                ));
            }
            let mut all = Vec::new();
            for c in clusters {
                for entry in store.finding_timeline(&c, key).map_err(fail)? {
                    all.push((c.clone(), entry));
                }
            }
            all.sort_by_key(|(_, e)| e.seq);
            all.truncate(args.limit);
            all
        }
        (None, Some(cluster)) => store
            .cluster_timeline(cluster, args.since, args.until, args.limit)
            .map_err(fail)?
            .into_iter()
            .map(|e| (cluster.clone(), e))
            .collect(),
        (None, None) => unreachable!("clap requires --check-key or --cluster"),
    };
    if args.json {
        let list: Vec<&TimelineEntry> = entries.iter().map(|(_, e)| e).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    // What an event did to a finding is known per finding: a cluster's timeline has no CHANGES
    // column (`--check-key` shows them, `tidemark incident` shows what each event did).
    let finding_timeline = args.check_key.is_some();
    // A finding's timeline is in log order; a cluster's is in time order.
    let late = if finding_timeline {
        tidemark_core::describe::late_entries(entries.iter().map(|(_, e)| e.event.time))
    } else {
        tidemark_core::describe::late_entries_in_time_order(entries.iter().map(|(_, e)| e.seq))
    };
    let rows: Vec<Vec<String>> = entries
        .iter()
        .zip(late)
        .map(|((cluster, e), late)| {
            let mut row = vec![
                e.seq.to_string(),
                late_marked(e.event.time, late),
                cluster.clone(),
                e.event.event_type().to_string(),
            ];
            if finding_timeline {
                row.push(e.changes.join(","));
            }
            row.push(describe(&e.event));
            row
        })
        .collect();
    let header: &[&str] = if finding_timeline {
        &["SEQ", "TIME", "CLUSTER", "TYPE", "CHANGES", "WHAT"]
    } else {
        &["SEQ", "TIME", "CLUSTER", "TYPE", "WHAT"]
    };
    print!(
        "{}",
        table::render_fitted(header, &rows, &[header.len() - 1])
    );
    Ok(())
}

/// An event's time, with `(late)` when it is earlier than an entry before it: it was applied
/// where it landed in the log, at its cluster's clock (docs/lifecycle.md, "Late events").
pub(crate) fn late_marked(time: tidemark_core::Timestamp, late: bool) -> String {
    if late {
        format!("{time} (late)")
    } else {
        time.to_string()
    }
}

/// One line about an event, for tables.
pub fn describe(event: &tidemark_core::Event) -> String {
    use tidemark_core::Payload as P;
    match &event.payload {
        P::CycleCompleted(c) => format!(
            "cycle {} ran {} categories, {} finding(s)",
            c.cycle,
            c.categories.len(),
            c.findings.len()
        ),
        P::FindingResolved(r) => format!(
            "{} resolved ({:?}) by {}",
            r.check_key,
            r.kind,
            r.by.as_deref().unwrap_or("?")
        )
        .to_lowercase(),
        // The core says when a logged value is read with a limit.
        P::SettingsChanged(_) => tidemark_core::describe::one_line(event),
        P::InventoryObserved(i) => format!("scan {}: {} resource(s)", i.scan, i.resources.len()),
        P::TrackingUpserted(t) => format!("tracking {} {}", t.kind, t.key),
        P::TrackingDeleted(t) => format!("untracked {} {}", t.kind, t.key),
        P::SpanRecorded(s) => format!("span {} of {}", s.name, s.service),
        P::AlertFired(a) => format!("alert {} firing", a.name),
        P::AlertResolved(a) => format!("alert {} resolved", a.name),
        P::ChangeDeployed(c) => format!(
            "{} {} {}",
            c.service,
            c.version,
            c.summary.as_deref().unwrap_or("")
        ),
        P::NoteAdded(n) => format!("{}: {}", n.author, n.text),
        P::IncidentOpened(i) | P::IncidentUpdated(i) | P::IncidentClosed(i) => {
            format!(
                "{} {}",
                i.incident,
                i.title.as_deref().or(i.summary.as_deref()).unwrap_or("")
            )
        }
        P::MaintenanceScheduled(_) | P::MaintenanceCancelled(_) => {
            tidemark_core::describe::one_line(event)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rebuild, stats, quarantine

/// Drop the projections and rebuild them from the stored log.
#[derive(Args, Debug)]
#[command(
    long_about = "Folds the stored log again and writes everything derived from it anew: the \
                  indexes and the projection snapshots. It writes a new file beside the store \
                  (FILE.rebuild-partial: the log, the id index and the quarantine copied, the \
                  rest refolded), checks it and renames it over the store, so a crash leaves the \
                  old store or the new one, and the store is no larger afterwards (the new file \
                  is compacted before it is moved into place). The directory needs room for \
                  that second file while it runs. After retention (compact --drop-events-before) the fold starts \
                  from the snapshot at the cut. The store must not be served."
)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn rebuild(args: &RebuildArgs) -> Result<(), CliError> {
    let store = open_existing_writable(&args.db.db)?;
    let progress = indicatif::ProgressBar::new(0);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} · {per_sec} · eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut stage = "";
    let report = store
        .rebuild(|step| {
            let (name, done, total) = match step {
                tidemark_store::RebuildProgress::Copying { done, total } => {
                    ("rebuilding: copying the log (entries)", done, total)
                }
                tidemark_store::RebuildProgress::Folding { done, total } => {
                    ("rebuilding: folding the log (events)", done, total)
                }
                _ => return,
            };
            if name != stage {
                stage = name;
                progress.reset();
                progress.set_message(name);
            }
            progress.set_length(total);
            progress.set_position(done);
        })
        .map_err(|e| {
            let disk_full = match &e {
                tidemark_store::RebuildError::Storage(fault) => fault.is_disk_full(),
                tidemark_store::RebuildError::Write { source, .. } => source.is_disk_full(),
                tidemark_store::RebuildError::Io { source, .. } => {
                    tidemark_store::is_disk_full(source)
                }
                _ => false,
            };
            let code = if disk_full {
                exit::IO_ERROR
            } else {
                exit::FAILURE
            };
            CliError::new(code, e)
        })?;
    progress.finish_and_clear();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        );
    } else {
        let from = match report.from_snapshot {
            Some(seq) => {
                format!(" after the snapshot at position {seq} (retention cut the log there)")
            }
            None => String::new(),
        };
        println!(
            "rebuilt the projections from {} event(s){from} in {:.2}s; file {} -> {} bytes; state {}",
            report.events,
            started.elapsed().as_secs_f64(),
            report.bytes_before,
            report.bytes_after,
            if report.state_unchanged {
                "unchanged"
            } else {
                "CHANGED (the old state did not match the log)"
            }
        );
    }
    Ok(())
}

/// Print figures about a store.
#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn stats(args: &StatsArgs) -> Result<(), CliError> {
    let store = open_existing(&args.db.db)?;
    let stats = store.stats().map_err(|e| CliError::new(exit::FAILURE, e))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).map_err(anyhow::Error::from)?
        );
    } else {
        let rows = vec![
            vec!["events".into(), stats.events.to_string()],
            vec!["checkpoint".into(), stats.checkpoint.to_string()],
            vec![
                "findings".into(),
                format!("{} ({} active)", stats.findings, stats.active_findings),
            ],
            vec![
                "traces held".into(),
                format!(
                    "{} ({} late span(s) judged alone)",
                    stats.traces_kept, stats.late_spans
                ),
            ],
            vec![
                "auto-resolutions held".into(),
                stats.auto_resolutions_kept.to_string(),
            ],
            vec![
                "quarantined".into(),
                format!(
                    "{} record(s), {} bytes; {} dropped when full",
                    stats.quarantined, stats.quarantine_bytes, stats.quarantine_dropped
                ),
            ],
            vec![
                "snapshots".into(),
                format!("{} (latest at {})", stats.snapshots, stats.snapshot_seq),
            ],
            vec![
                "size on disk".into(),
                format!("{} bytes", stats.size_on_disk_bytes),
            ],
        ];
        print!(
            "{}",
            table::render(&["STORE", &args.db.db.display().to_string()], &rows)
        );
    }
    Ok(())
}

/// List inputs that could not be decoded or validated, with their reasons.
#[derive(Args, Debug)]
pub struct QuarantineArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// First quarantine id to list.
    #[arg(long, default_value_t = 1)]
    pub from: u64,
    /// Most entries listed.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn quarantine(args: &QuarantineArgs) -> Result<(), CliError> {
    let store = open_existing(&args.db.db)?;
    let entries = store
        .quarantine(args.from, args.limit)
        .map_err(|e| CliError::new(exit::FAILURE, e))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    for e in &entries {
        let repeats = if e.record.count > 1 {
            format!(
                " (refused {} times, last at {})",
                e.record.count, e.record.last_seen
            )
        } else {
            String::new()
        };
        println!(
            "#{} {} {}{repeats}\n  reason: {}\n  raw: {}",
            e.id, e.record.recorded_at, e.record.origin, e.record.reason, e.record.raw
        );
    }
    println!("{} quarantined input(s) listed", entries.len());
    Ok(())
}
