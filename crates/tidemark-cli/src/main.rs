//! The `tidemark` binary: serve, ingest, emit, replay, and the store and projection queries.

mod alert_cmds;
mod corpus;
mod distributed;
mod maintenance_cmds;
mod ndjson;
mod ops_cmds;
mod projection_cmds;
mod replay;
mod runtime;
mod serve;
mod step;
mod store_cmds;
mod table;
mod tail_cmd;
mod views;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, after sysexits.h: scripts can tell bad input from a broken environment.
pub mod exit {
    /// The input held data that is not a valid event (EX_DATAERR).
    pub const DATA_ERROR: u8 = 65;
    /// An input file could not be opened (EX_NOINPUT).
    pub const NO_INPUT: u8 = 66;
    /// Anything else went wrong.
    pub const FAILURE: u8 = 1;
    /// An output file cannot be created, or exists (EX_CANTCREAT).
    pub const CANT_CREATE: u8 = 73;
    /// The disk (or the file size limit) had no room for a write (EX_IOERR).
    pub const IO_ERROR: u8 = 74;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
}

/// An error that knows its exit code.
#[derive(Debug)]
pub struct CliError {
    /// Process exit code.
    pub code: u8,
    /// What went wrong and what to do next.
    pub error: anyhow::Error,
}

impl CliError {
    /// An error with an explicit exit code.
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        Self {
            code: exit::FAILURE,
            error,
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "tidemark",
    version,
    about = "Tidemark: an event-sourced incident timeline store",
    long_about = "Tidemark folds immutable events from probes, bridges and agents into finding \
                  state, flap detection and incident timelines, and replays any past incident \
                  deterministically.",
    after_help = "Exit codes: 0 success, 1 failure (`verify`: problems found), 2 usage error, \
                  65 invalid input data (a --db file that is not a store), 66 input file not \
                  found, 73 output file exists, 74 disk full. A closed stdout (`| head`) ends a \
                  command quietly with 0."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fold an NDJSON log in memory and print the findings.
    Replay(replay::ReplayArgs),
    /// Serve the HTTP API over the embedded store (the default way to run Tidemark).
    Serve(serve::ServeArgs),
    /// Store events from NDJSON files.
    Ingest(store_cmds::IngestArgs),
    /// Print the findings of a store, now or at a point of its log.
    Findings(store_cmds::FindingsArgs),
    /// Print the timeline of a finding or a cluster.
    Timeline(store_cmds::TimelineArgs),
    /// Rebuild the projections from the stored log.
    Rebuild(store_cmds::RebuildArgs),
    /// Print figures about a store.
    Stats(store_cmds::StatsArgs),
    /// List quarantined inputs with their reasons.
    Quarantine(store_cmds::QuarantineArgs),
    /// Write a consistent copy of a store (offline, or from a running server).
    Backup(ops_cmds::BackupArgs),
    /// Restore a store from a backup file.
    Restore(ops_cmds::RestoreArgs),
    /// Return a store file's free pages to the filesystem.
    Compact(ops_cmds::CompactArgs),
    /// Check every record of a store and the file's integrity (read-only).
    Verify(ops_cmds::VerifyArgs),
    /// Recover a store a killed process left mid-write (read commands refuse such a file).
    Repair(ops_cmds::RepairArgs),
    /// Why the bell keeps ringing: flapping findings, unstable check keys, churn.
    Flaps(projection_cmds::FlapsArgs),
    /// Alerts from alerting systems: firing now (or resolved, or all), with their labels.
    Alerts(alert_cmds::AlertsArgs),
    /// Findings the sweep cannot resolve, drift suspects, and long-lived ones kept apart.
    Stuck(projection_cmds::StuckArgs),
    /// Maintenance windows in effect: open now (or at a time), what they cover, until when.
    Maintenance(maintenance_cmds::MaintenanceArgs),
    /// Live resources nobody tracks, tracked rows with nothing live, dangling ones, orphan spans.
    Orphans(projection_cmds::OrphansArgs),
    /// List incidents, explicit and automatic.
    Incidents(projection_cmds::IncidentsArgs),
    /// One incident: its findings, failure layers and timeline.
    Incident(projection_cmds::IncidentArgs),
    /// Write an incident's postmortem (Markdown, HTML or JSON).
    Export(projection_cmds::ExportArgs),
    /// Follow a running server's events live, one line each (reconnects and resumes by itself).
    Tail(tail_cmd::TailArgs),
    /// Publish events to the NATS JetStream stream.
    Emit(distributed::EmitArgs),
    /// Publish events from a replica's local log back to the stream.
    Republish(distributed::RepublishArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    catch_file_size_signal();
    quiet_on_broken_pipe();
    // A closed stdout (`tidemark flaps | head`) ends the command by unwinding, so every store
    // it opened is closed properly on the way out; then the process exits quietly.
    let result = match std::panic::catch_unwind(move || run(cli.command)) {
        Ok(result) => result,
        Err(_) if STDOUT_CLOSED.load(std::sync::atomic::Ordering::SeqCst) => {
            return ExitCode::SUCCESS;
        }
        Err(panic) => std::panic::resume_unwind(panic),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// Set when a write to stdout failed because its reader went away.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `println!` panics when stdout is a pipe whose reader closed it (`EPIPE`: Rust ignores
/// SIGPIPE, and this crate forbids the `unsafe` that would restore it). That panic is expected
/// and not a bug: it is not reported, and `main` exits 0 once it has unwound.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        report(info);
    }));
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Replay(args) => replay::run(&args),
        Command::Tail(args) => tail_cmd::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Ingest(args) => store_cmds::ingest(&args),
        Command::Findings(args) => store_cmds::findings(&args),
        Command::Timeline(args) => store_cmds::timeline(&args),
        Command::Rebuild(args) => store_cmds::rebuild(&args),
        Command::Stats(args) => store_cmds::stats(&args),
        Command::Quarantine(args) => store_cmds::quarantine(&args),
        Command::Backup(args) => ops_cmds::backup(&args),
        Command::Restore(args) => ops_cmds::restore(&args),
        Command::Compact(args) => ops_cmds::compact(&args),
        Command::Verify(args) => ops_cmds::verify(&args),
        Command::Repair(args) => ops_cmds::repair(&args),
        Command::Flaps(args) => projection_cmds::flaps(&args),
        Command::Alerts(args) => alert_cmds::alerts(&args),
        Command::Stuck(args) => projection_cmds::stuck(&args),
        Command::Maintenance(args) => maintenance_cmds::maintenance(&args),
        Command::Orphans(args) => projection_cmds::orphans(&args),
        Command::Incidents(args) => projection_cmds::incidents(&args),
        Command::Incident(args) => projection_cmds::incident(&args),
        Command::Export(args) => projection_cmds::export(&args),
        Command::Emit(args) => distributed::emit(&args),
        Command::Republish(args) => distributed::republish(&args),
    }
}

/// A write past the file size limit (`ulimit -f`, systemd's `LimitFSIZE=`) raises SIGXFSZ, whose
/// default action kills the process. Caught instead, the write fails with `EFBIG`, which the
/// store answers like a full disk: nothing of the batch stored, reads keep working, writes
/// resume when the limit is raised. (The handler tokio installs stays for the process's life.)
fn catch_file_size_signal() {
    #[cfg(unix)]
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build();
        let Ok(runtime) = runtime else { return };
        let _context = runtime.enter();
        let kind = tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ);
        if let Err(error) = tokio::signal::unix::signal(kind) {
            tracing::warn!(%error, "cannot catch SIGXFSZ: hitting the file size limit would stop the process");
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
