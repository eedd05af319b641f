//! Operating a store: `backup` (offline, or from a running server), `restore`, `compact`,
//! `verify` (read-only) and `repair` (recovery after a killed writer).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use tidemark_store::{BackupInfo, Store};

use crate::store_cmds::{open_existing, open_existing_writable};
use crate::{CliError, exit};

// ---------------------------------------------------------------------------------------------
// Files written atomically

/// A scratch name next to `target` (same directory, so the final rename is atomic).
pub(crate) fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    target.with_file_name(name)
}

pub(crate) fn io_error(path: &Path, what: &str, error: std::io::Error) -> CliError {
    let code = if tidemark_store::is_disk_full(&error) {
        exit::IO_ERROR
    } else {
        exit::FAILURE
    };
    CliError::new(code, anyhow::anyhow!("{what} {}: {error}", path.display()))
}

/// Refuses to replace `target` unless `force`.
pub(crate) fn check_target(target: &Path, force: bool, what: &str) -> Result<(), CliError> {
    if target.exists() && !force {
        return Err(CliError::new(
            exit::CANT_CREATE,
            anyhow::anyhow!(
                "{} exists: pass --force to replace it with {what}",
                target.display()
            ),
        ));
    }
    Ok(())
}

/// Makes `partial` durable and moves it to `target` (replacing it), then makes the rename
/// durable: a crash leaves the old file or the new one, never half of one.
pub(crate) fn commit_file(partial: &Path, target: &Path) -> Result<(), CliError> {
    File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(partial, "syncing", e))?;
    std::fs::rename(partial, target).map_err(|e| io_error(target, "moving the copy to", e))?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Removes the scratch file when dropped (unless it was moved into place).
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn entries_progress(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} entries · {per_sec} · eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// backup

/// Write a consistent copy of a store to a file.
#[derive(Args, Debug)]
#[command(
    long_about = "Writes a consistent copy of a store: the store exactly as one commit left \
                  it, as a redb file that `tidemark restore` (or any command's --db) opens. \
                  Offline with --db (the store must not be served), or from a running server \
                  with --server (GET /v1/admin/backup, which needs a token with the write scope \
                  when the server has tokens). The copy is checked (it opens, its layout is \
                  readable, its state restores, its checkpoint is the one copied) before it is \
                  moved into place."
)]
pub struct BackupArgs {
    /// The store to copy, when it is not served (default: $TIDEMARK_DB, else tidemark.redb).
    #[arg(long, env = "TIDEMARK_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Copy from this running server instead (http://HOST:PORT).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for --server (the write scope).
    #[arg(
        long,
        env = "TIDEMARK_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// The backup file to write.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print what the backup holds as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `backup` reports.
#[derive(Debug, Serialize)]
struct BackupSummary {
    file: PathBuf,
    source: String,
    #[serde(flatten)]
    info: BackupInfo,
}

pub fn backup(args: &BackupArgs) -> Result<(), CliError> {
    check_target(&args.to, args.force, "the backup")?;
    let partial = partial_path(&args.to);
    let _ = std::fs::remove_file(&partial);
    let scratch = Scratch(partial.clone());
    let (source, info) = match &args.server {
        Some(server) => (
            server.clone(),
            download_backup(server, args.token.as_deref(), &partial)?,
        ),
        None => {
            let db = args
                .db
                .clone()
                .unwrap_or_else(|| PathBuf::from("tidemark.redb"));
            let store = open_existing(&db).map_err(|e| {
                CliError::new(
                    e.code,
                    anyhow::anyhow!(
                        "{:#}\n(to back up a store while `tidemark serve` runs on it: tidemark backup --server URL --to FILE)",
                        e.error
                    ),
                )
            })?;
            let progress = entries_progress("copying");
            let info = store
                .backup_to(&partial, |done, total| {
                    progress.set_length(total);
                    progress.set_position(done);
                })
                .map_err(|e| backup_failure(&e))?;
            progress.finish_and_clear();
            (db.display().to_string(), info)
        }
    };
    commit_file(&partial, &args.to)?;
    std::mem::forget(scratch);
    let summary = BackupSummary {
        file: args.to.clone(),
        source,
        info,
    };
    if args.json {
        print_json(&summary)?;
    } else {
        eprintln!(
            "backed up {} at checkpoint {} ({} events, {} findings, {} quarantined) to {} ({} bytes)",
            summary.source,
            summary.info.checkpoint,
            summary.info.events,
            summary.info.findings,
            summary.info.quarantined,
            summary.file.display(),
            summary.info.bytes
        );
    }
    Ok(())
}

fn backup_failure(error: &tidemark_store::BackupError) -> CliError {
    let disk_full = match error {
        tidemark_store::BackupError::Storage(fault) => fault.is_disk_full(),
        tidemark_store::BackupError::Io { source, .. } => tidemark_store::is_disk_full(source),
        _ => false,
    };
    let code = if disk_full {
        exit::IO_ERROR
    } else {
        exit::FAILURE
    };
    CliError::new(code, anyhow::anyhow!("backup failed: {error}"))
}

/// A server's base URL without its trailing `/`, or a usage error for `https://` (this build
/// has no TLS client).
pub(crate) fn plain_http_base(server: &str) -> Result<&str, CliError> {
    let base = server.trim_end_matches('/');
    if base.starts_with("https://") {
        return Err(CliError::new(
            exit::USAGE,
            anyhow::anyhow!(
                "this build speaks plain http only: reach the server through a local tunnel or proxy (http://...)"
            ),
        ));
    }
    Ok(base)
}

/// What an error answer of the API says: its JSON `message`, else the text as it is.
pub(crate) fn error_message(text: String) -> String {
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or(text)
}

/// Streams `GET /v1/admin/backup` into `partial` and checks what arrived.
fn download_backup(
    server: &str,
    token: Option<&str>,
    partial: &Path,
) -> Result<BackupInfo, CliError> {
    let base = plain_http_base(server)?;
    let url = format!("{base}/v1/admin/backup");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.get(&url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.call().map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow::anyhow!("cannot reach {url}: {e} (is `tidemark serve` running there?)"),
        )
    })?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let checkpoint = header("x-tidemark-checkpoint");
    let length = header("content-length");
    let mut body = response.into_body();
    if status != 200 {
        let message = error_message(body.read_to_string().unwrap_or_default());
        let hint = match status {
            401 | 403 => " (pass a token with the write scope: --token or TIDEMARK_TOKEN)",
            _ => "",
        };
        return Err(CliError::new(
            exit::FAILURE,
            anyhow::anyhow!("{url} answered {status}: {message}{hint}"),
        ));
    }
    let mut file = File::create(partial).map_err(|e| io_error(partial, "creating", e))?;
    let progress = crate::ndjson::byte_progress(length.unwrap_or(0), "downloading");
    let mut reader = progress.wrap_read(body.into_reader());
    std::io::copy(&mut reader, &mut file).map_err(|e| io_error(partial, "writing", e))?;
    file.flush().map_err(|e| io_error(partial, "writing", e))?;
    progress.finish_and_clear();
    let info = Store::inspect_backup(partial).map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow::anyhow!("the backup downloaded from {url} is not usable: {e}"),
        )
    })?;
    if checkpoint.is_some_and(|c| c != info.checkpoint) {
        return Err(CliError::new(
            exit::FAILURE,
            anyhow::anyhow!(
                "the server announced checkpoint {checkpoint:?}, but the file holds {}: discarded",
                info.checkpoint
            ),
        ));
    }
    Ok(info)
}

// ---------------------------------------------------------------------------------------------
// restore

/// Restore a store from a backup file.
#[derive(Args, Debug)]
#[command(
    long_about = "Checks a backup (it opens read-only, its layout is one this build reads, \
                  its projection state restores from its snapshot and log) and puts a copy at \
                  --db, atomically (a temporary file renamed into place). Refuses to replace an \
                  existing store without --force, and refuses while a process holds it. A \
                  restored replica (serve --nats) resumes following the stream from the \
                  backup's checkpoint."
)]
pub struct RestoreArgs {
    /// The backup file (from `tidemark backup`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Where the store goes (default: $TIDEMARK_DB, else tidemark.redb).
    #[arg(
        long,
        env = "TIDEMARK_DB",
        default_value = "tidemark.redb",
        value_name = "PATH"
    )]
    pub db: PathBuf,
    /// Replace an existing store at --db.
    #[arg(long)]
    pub force: bool,
    /// Print what was restored as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn restore(args: &RestoreArgs) -> Result<(), CliError> {
    if !args.from.exists() {
        return Err(CliError::new(
            exit::NO_INPUT,
            anyhow::anyhow!("no backup at {}", args.from.display()),
        ));
    }
    check_target(&args.db, args.force, "the backup")?;
    let info = Store::inspect_backup(&args.from).map_err(|e| {
        CliError::new(
            exit::DATA_ERROR,
            anyhow::anyhow!(
                "{e}\nnothing was restored; {} is unchanged",
                args.db.display()
            ),
        )
    })?;
    if args.db.exists() {
        // Never swap the file under a running server.
        Store::open(&args.db, tidemark_store::StoreConfig::default())
            .map(drop)
            .or_else(|e| match e {
                tidemark_store::OpenError::AlreadyOpen { .. } => Err(CliError::new(
                    exit::FAILURE,
                    anyhow::anyhow!("{e}\nstop it before restoring over its store"),
                )),
                // A damaged store is what a restore is for.
                _ => Ok(()),
            })?;
    }
    let partial = partial_path(&args.db);
    let _ = std::fs::remove_file(&partial);
    let scratch = Scratch(partial.clone());
    std::fs::copy(&args.from, &partial).map_err(|e| io_error(&partial, "copying to", e))?;
    // The copy must restore as the backup did.
    let copied = Store::inspect_backup(&partial)
        .map_err(|e| CliError::new(exit::FAILURE, anyhow::anyhow!("the copy: {e}")))?;
    if copied.checkpoint != info.checkpoint {
        return Err(CliError::new(
            exit::FAILURE,
            anyhow::anyhow!("the copy differs from the backup; nothing was restored"),
        ));
    }
    commit_file(&partial, &args.db)?;
    std::mem::forget(scratch);
    if args.json {
        print_json(&BackupSummary {
            file: args.db.clone(),
            source: args.from.display().to_string(),
            info,
        })?;
    } else {
        eprintln!(
            "restored {} to {}: checkpoint {}, {} events, {} findings",
            args.from.display(),
            args.db.display(),
            info.checkpoint,
            info.events,
            info.findings
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// compact

/// Compact a store's file.
#[derive(Args, Debug)]
#[command(
    long_about = "Returns the free pages of the store file to the filesystem (redb's \
                  compaction), printing the size before and after. The store must not be \
                  served. Compaction needs some free space to work in; on a full disk free a \
                  little first."
)]
pub struct CompactArgs {
    #[command(flatten)]
    pub db: crate::store_cmds::DbArgs,
    /// First drop the local log's events before the latest snapshot at or before POSITION
    /// (`snapshot`: the latest snapshot), with their index entries and older snapshots. Time
    /// travel before it then fails, and `rebuild` starts from it. For replicas (serve --nats),
    /// whose events live on in the stream; an embedded store refuses unless --allow-embedded.
    #[arg(long, value_name = "POSITION|snapshot", value_parser = parse_retention)]
    pub drop_events_before: Option<Retention>,
    /// Let --drop-events-before drop an embedded store's events. They are gone for good (the
    /// store is their only copy): time travel and rebuild start at the cut, and only a backup
    /// taken before holds them. Duplicates of dropped events are still recognised.
    #[arg(long, requires = "drop_events_before")]
    pub allow_embedded: bool,
    /// Print the sizes as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where `--drop-events-before` cuts.
#[derive(Clone, Copy, Debug)]
pub enum Retention {
    /// The latest snapshot at or before this position.
    Position(u64),
    /// The latest snapshot.
    LatestSnapshot,
}

fn parse_retention(text: &str) -> Result<Retention, String> {
    if text == "snapshot" {
        return Ok(Retention::LatestSnapshot);
    }
    text.parse::<u64>()
        .map(Retention::Position)
        .map_err(|_| format!("expected a log position or `snapshot`, got {text:?}"))
}

/// What `compact` reports.
#[derive(Debug, Serialize)]
struct CompactSummary {
    #[serde(flatten)]
    sizes: tidemark_store::CompactReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<tidemark_store::RetentionReport>,
}

pub fn compact(args: &CompactArgs) -> Result<(), CliError> {
    let store = open_existing_writable(&args.db.db)?;
    let retention = match args.drop_events_before {
        None => None,
        Some(cut) => {
            let before = match cut {
                Retention::Position(position) => Some(position),
                Retention::LatestSnapshot => None,
            };
            let embedded = if args.allow_embedded {
                tidemark_store::EmbeddedRetention::Allow
            } else {
                tidemark_store::EmbeddedRetention::Refuse
            };
            let report = store.drop_events_before(before, embedded).map_err(|e| {
                let code = match e {
                    tidemark_store::RetentionError::EmbeddedStore
                    | tidemark_store::RetentionError::NoSnapshot { .. } => exit::USAGE,
                    _ => exit::FAILURE,
                };
                CliError::new(code, anyhow::anyhow!("{e}; nothing was dropped"))
            })?;
            Some(report)
        }
    };
    let mut report = store.compact().map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow::anyhow!("{e}; the store is unchanged"),
        )
    })?;
    // Closing writes the file's final header: measure what stays on disk.
    drop(store);
    if let Ok(metadata) = std::fs::metadata(&args.db.db) {
        report.bytes_after = metadata.len();
    }
    if args.json {
        print_json(&CompactSummary {
            sizes: report,
            retention,
        })?;
    } else {
        if let Some(retention) = &retention {
            let earlier = if retention.embedded {
                "earlier events are gone but for backups taken before"
            } else {
                "earlier events live in the JetStream stream"
            };
            println!(
                "dropped {} event(s) from the local log: it starts at position {} now ({earlier}; time travel and rebuild start there)",
                retention.dropped_events, retention.first_retained
            );
        }
        let saved = report.bytes_before.saturating_sub(report.bytes_after);
        println!(
            "compacted {}: {} -> {} bytes ({saved} bytes returned)",
            args.db.db.display(),
            report.bytes_before,
            report.bytes_after
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// verify

/// Check every record of a store and the file's own integrity, without writing to it.
#[derive(Args, Debug)]
#[command(
    long_about = "Checks a store file without writing to it (it is opened read-only): every log, \
                  snapshot and quarantine record against its checksum, the index tables and \
                  snapshots against the log, the checkpoint, and redb's own integrity check \
                  (page checksums, allocator state; run on a copy-on-write view, so a repair it \
                  would make is not written). Lists every problem with its table and key. \
                  Exit codes: 0 clean, 1 problems found (or the check could not run), 65 not a \
                  Tidemark store, 66 no such file. What to do about a problem: \
                  docs/runbooks/corrupt-store.md."
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: crate::store_cmds::DbArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `verify --json` prints.
#[derive(Debug, Serialize)]
struct VerifySummary<'a> {
    file: &'a Path,
    clean: bool,
    #[serde(flatten)]
    report: &'a tidemark_store::VerifyReport,
}

pub fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let path = &args.db.db;
    let progress = entries_progress("verifying");
    let report = Store::verify(path, |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    })
    .map_err(|e| match e {
        tidemark_store::VerifyError::Open(open) => crate::store_cmds::open_failed(open),
        other => CliError::new(exit::FAILURE, other),
    })?;
    progress.finish_and_clear();
    if args.json {
        print_json(&VerifySummary {
            file: path,
            clean: report.is_clean(),
            report: &report,
        })?;
    } else {
        let checked: Vec<String> = report
            .checked
            .iter()
            .map(|(table, n)| format!("{table} {n}"))
            .collect();
        println!("checked {}: {}", path.display(), checked.join(", "));
        match &report.integrity {
            tidemark_store::IntegrityCheck::Passed => println!("redb integrity check: passed"),
            tidemark_store::IntegrityCheck::Repairable(detail) => {
                println!("redb integrity check: FAILED, repairable: {detail}")
            }
            tidemark_store::IntegrityCheck::Failed(detail) => {
                println!("redb integrity check: FAILED: {detail}")
            }
        }
        for note in &report.notes {
            println!("note: {note}");
        }
        for problem in &report.problems {
            println!("{} {}: {}", problem.table, problem.key, problem.problem);
        }
        let unlisted = report.problem_count - report.problems.len() as u64;
        if unlisted > 0 {
            println!(
                "... and {unlisted} more problem(s) (the first {} are listed)",
                report.problems.len()
            );
        }
    }
    if report.is_clean() {
        if !args.json {
            println!("clean: no problem found");
        }
        return Ok(());
    }
    Err(CliError::new(
        exit::FAILURE,
        anyhow::anyhow!(
            "{} is damaged: {} problem(s) in its records{}. What each means and what to do: \
             docs/runbooks/corrupt-store.md (a corrupt log record: restore a backup, or re-follow \
             the stream on a replica; only snapshots or indexes other than `ids`: `tidemark rebuild`)",
            path.display(),
            report.problem_count,
            if report.integrity == tidemark_store::IntegrityCheck::Passed {
                ""
            } else {
                ", and redb's integrity check failed"
            }
        ),
    ))
}

// ---------------------------------------------------------------------------------------------
// repair

/// Recover a store that a killed process left in the middle of a write.
#[derive(Args, Debug)]
#[command(
    long_about = "A process killed (or a machine that lost power) while it had a store open for \
                  writing leaves the file needing recovery: redb rolls it back to its last \
                  commit on the next read-write open. `serve`, `ingest`, `rebuild` and `compact` \
                  do that as they start; read commands open stores read-only and refuse such a \
                  file instead, naming this command. `repair` opens the store read-write once \
                  (the recovery), and closes it. A store of an older layout is upgraded in \
                  place the same way (store layout 2: a finding's history in its own tables; \
                  the log is folded once, with progress in the log). A store that needs \
                  neither is not written. It does not fix corrupt records: see `tidemark verify`."
)]
pub struct RepairArgs {
    #[command(flatten)]
    pub db: crate::store_cmds::DbArgs,
}

pub fn repair(args: &RepairArgs) -> Result<(), CliError> {
    let path = &args.db.db;
    match Store::open_read_only(path, tidemark_store::StoreConfig::default()) {
        Ok(store) if store.upgrade_due() => {
            drop(store);
            let store = crate::store_cmds::open_store(path)?;
            let checkpoint = store.checkpoint();
            drop(store);
            eprintln!(
                "upgraded {} to store layout {} (checkpoint {checkpoint}): a finding's history \
                 is in its own tables now; builds before it refuse the file",
                path.display(),
                tidemark_store::tables::STORE_FORMAT
            );
            Ok(())
        }
        Ok(store) => {
            eprintln!(
                "{} needs no recovery (checkpoint {}); nothing was written",
                path.display(),
                store.checkpoint()
            );
            Ok(())
        }
        Err(tidemark_store::OpenError::NeedsRecovery { .. }) => {
            let store = crate::store_cmds::open_store(path)?;
            let checkpoint = store.checkpoint();
            drop(store);
            eprintln!(
                "recovered {}: redb rolled it back to its last commit (checkpoint {checkpoint}); \
                 read commands open it again",
                path.display()
            );
            Ok(())
        }
        Err(error) => Err(crate::store_cmds::open_failed(error)),
    }
}
