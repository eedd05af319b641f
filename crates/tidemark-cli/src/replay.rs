//! `tidemark replay`: fold an NDJSON log in memory and print the findings.

use std::path::PathBuf;

use clap::Args;
use tidemark_core::{Applied, FindingState, FindingView, LogFold, Timestamp};

use crate::ndjson::{byte_progress, for_each_event, open};
use crate::{CliError, exit, table};

/// Fold an NDJSON event log and print the findings.
#[derive(Args, Debug)]
#[command(
    long_about = "Folds an NDJSON event log (one event per line) in log order, exactly as the \
                  store would, and prints every finding. Events whose id was already seen are \
                  skipped and take no position, so positions match the store's."
)]
pub struct ReplayArgs {
    /// The NDJSON log to fold.
    pub log: PathBuf,
    /// Stop at a log position (a number: the events at positions 1..=SEQ are applied) or at a
    /// time (RFC 3339: stop before the first event whose time is later).
    #[arg(long, value_name = "SEQ|RFC3339", value_parser = parse_until)]
    pub until: Option<Until>,
    /// Print a JSON array sorted by (cluster, check_key) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip lines that are not valid events (and report them) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// Where to stop a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// After this log position.
    Seq(u64),
    /// Before the first event later than this.
    Time(Timestamp),
}

pub fn parse_until(text: &str) -> Result<Until, String> {
    if let Ok(seq) = text.parse::<u64>() {
        return Ok(Until::Seq(seq));
    }
    Timestamp::parse_rfc3339(text)
        .map(Until::Time)
        .map_err(|e| format!("expected a log position (a number) or an RFC 3339 time: {e}"))
}

/// What a replay did, besides the state it built.
#[derive(Debug, Default)]
pub struct ReplayOutcome {
    pub applied: u64,
    pub duplicates: u64,
    pub skipped: Vec<String>,
}

/// Folds the log at `args.log` and returns the fold with what happened on the way.
pub fn fold_file(args: &ReplayArgs) -> Result<(LogFold, ReplayOutcome), CliError> {
    let (reader, len) = open(&args.log)?;
    let progress = byte_progress(len, "replaying");
    let mut fold = LogFold::new();
    let mut outcome = ReplayOutcome::default();
    for_each_event(reader, &progress, |_, _, decoded| {
        let event = match decoded {
            Ok(event) => event,
            Err(error) if args.skip_invalid => {
                outcome.skipped.push(error.to_string());
                return Ok(true);
            }
            Err(error) => {
                return Err(CliError::new(
                    exit::DATA_ERROR,
                    anyhow::anyhow!(
                        "{}: {error}\nfix the line, or pass --skip-invalid to replay without it",
                        args.log.display()
                    ),
                ));
            }
        };
        // A repeated id is not part of the log (the store never stores it), so its time
        // cannot end a replay --until TIME.
        if fold.has_seen(&event.id) {
            outcome.duplicates += 1;
            return Ok(true);
        }
        match args.until {
            Some(Until::Seq(until)) if fold.next_seq() > until => return Ok(false),
            Some(Until::Time(until)) if event.time > until => return Ok(false),
            _ => {}
        }
        if let Applied::At(_) = fold.apply(&event) {
            outcome.applied += 1;
        }
        Ok(true)
    })?;
    progress.finish_and_clear();
    Ok((fold, outcome))
}

pub fn run(args: &ReplayArgs) -> Result<(), CliError> {
    let (fold, outcome) = fold_file(args)?;
    let views = fold.findings().views();
    if !outcome.skipped.is_empty() {
        eprintln!("skipped {} invalid line(s):", outcome.skipped.len());
        for reason in outcome.skipped.iter().take(20) {
            eprintln!("  {reason}");
        }
        if outcome.skipped.len() > 20 {
            eprintln!("  ... and {} more", outcome.skipped.len() - 20);
        }
    }
    if args.json {
        let json = serde_json::to_string_pretty(&views).map_err(anyhow::Error::from)?;
        println!("{json}");
    } else {
        print!("{}", findings_table(&views));
        let active = views
            .iter()
            .filter(|v| v.state == FindingState::Active)
            .count();
        let flapping = views.iter().filter(|v| v.flapping).count();
        println!(
            "{} finding(s): {active} active, {} resolved, {flapping} flapping · {} event(s) applied (positions 1..={}), {} duplicate id(s) skipped",
            views.len(),
            views.len() - active,
            outcome.applied,
            fold.last_seq(),
            outcome.duplicates,
        );
    }
    Ok(())
}

/// The findings as a table for people.
pub fn findings_table(views: &[FindingView]) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.cluster.clone(),
                v.check_key.clone(),
                match v.state {
                    FindingState::Active => "active".to_owned(),
                    FindingState::Resolved => format!(
                        "resolved ({})",
                        v.resolution_kind.map_or("?", |k| k.as_str())
                    ),
                },
                v.clean_cycles
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                v.severity.to_string(),
                v.category.clone(),
                v.occurrences.to_string(),
                if v.flapping { "yes" } else { "" }.to_owned(),
                v.opened_at.to_string(),
                v.resolved_at.map_or_else(String::new, |t| t.to_string()),
                v.title.clone(),
            ]
        })
        .collect();
    table::render(
        &[
            "CLUSTER",
            "CHECK_KEY",
            "STATE",
            "CLEAN",
            "SEVERITY",
            "CATEGORY",
            "OCC",
            "FLAP",
            "OPENED",
            "RESOLVED",
            "TITLE",
        ],
        &rows,
    )
}
