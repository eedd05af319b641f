//! `tidemark replay`: fold an NDJSON log in memory and print the findings; walk it step by step
//! (`--step`); check or write the replay corpus' expectations (`--check`, `--bless`).

use std::path::PathBuf;

use clap::Args;
use tidemark_core::{Applied, FindingState, FindingView, LogFold, Timestamp};

use crate::corpus::{self, Case, ViewStatus};
use crate::ndjson::{byte_progress, for_each_event, open};
use crate::{CliError, exit, table};

/// Fold an NDJSON event log and print the findings; walk it; check the replay corpus.
#[derive(Args, Debug)]
#[command(
    long_about = "Folds an NDJSON event log (one event per line) in log order, exactly as the \
                  store would, and prints every finding. Events whose id was already seen are \
                  skipped and take no position, so positions match the store's.\n\n\
                  --step walks the log event by event and prints what each one changed in the \
                  projections (findings opened, resolved, cleaned; flaps started and stopped; \
                  rows unreachable; orphans confirmed and withdrawn; incidents opened, linked, \
                  closed).\n\n\
                  --check compares a replay corpus case (a folder with events.ndjson, \
                  checkpoints.json and expected/) or every case under a folder (replay/) with \
                  its expectations: every view at every checkpoint. A difference prints a \
                  unified diff naming the case, the checkpoint and the view, and exits 1. \
                  --bless writes expected/ from what the replay concludes: review it against the \
                  seed before committing.",
    after_help = "Examples:\n  tidemark replay --until 7 replay/auto-resolve-race/events.ndjson\n  \
                  tidemark replay --step replay/catalogue --from 10 --until 20\n  \
                  tidemark replay --check replay/\n  tidemark replay --bless replay/catalogue"
)]
pub struct ReplayArgs {
    /// The NDJSON log to fold (--step: a log or a case folder; --check/--bless: a case folder
    /// or the corpus folder).
    #[arg(value_name = "PATH")]
    pub log: PathBuf,
    /// Stop at a log position (a number: the events at positions 1..=SEQ are applied) or at a
    /// time (RFC 3339: stop before the first event whose time is later).
    #[arg(long, value_name = "SEQ|RFC3339", value_parser = parse_until)]
    pub until: Option<Until>,
    /// Print JSON: the findings sorted by (cluster, check_key); with --step the steps; with
    /// --check a summary.
    #[arg(long)]
    pub json: bool,
    /// Skip lines that are not valid events (and report them) instead of stopping.
    #[arg(long, conflicts_with_all = ["check", "bless", "step"])]
    pub skip_invalid: bool,
    /// Walk the log event by event, printing what each event changed.
    #[arg(long, conflicts_with_all = ["check", "bless"])]
    pub step: bool,
    /// With --step: also compare each event's changes with the whole state before and after
    /// it (slower: for debugging the change records; exit 1 at the first difference).
    #[arg(long, requires = "step")]
    pub verify: bool,
    /// With --step: start showing at this log position (earlier events are folded silently).
    #[arg(long, value_name = "SEQ", requires = "step")]
    pub from: Option<u64>,
    /// Check corpus cases against their expected/ files (exit 1 on a difference).
    #[arg(long, conflicts_with_all = ["bless", "until"])]
    pub check: bool,
    /// Write corpus cases' expected/ files from this replay (replaces expected/).
    #[arg(long, conflicts_with = "until")]
    pub bless: bool,
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
    for_each_event(
        reader,
        &progress,
        tidemark_core::Contract::Logged,
        |line, raw, decoded| {
            // A line is an event, or an Alertmanager webhook as the bridge received it (the
            // events it stores); either way one message says why a line is not.
            let events = match (decoded, corpus::bridged_events(raw)) {
                (Ok(event), _) => Ok(vec![event]),
                (Err(_), Some(bridged)) => bridged.map_err(|error| format!("line {line}: {error}")),
                (Err(error), None) => Err(error.to_string()),
            };
            let events = match events {
                Ok(events) => events,
                Err(error) if args.skip_invalid => {
                    outcome.skipped.push(error);
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
            for event in events {
                // A repeated id is not part of the log (the store never stores it), so its time
                // cannot end a replay --until TIME.
                if fold.has_seen(&event.id) {
                    outcome.duplicates += 1;
                    continue;
                }
                match args.until {
                    Some(Until::Seq(until)) if fold.next_seq() > until => return Ok(false),
                    Some(Until::Time(until)) if event.time > until => return Ok(false),
                    _ => {}
                }
                if let Applied::At(_) = fold.apply(&event) {
                    outcome.applied += 1;
                }
            }
            Ok(true)
        },
    )?;
    progress.finish_and_clear();
    Ok((fold, outcome))
}

pub fn run(args: &ReplayArgs) -> Result<(), CliError> {
    if args.check {
        return check(args);
    }
    if args.bless {
        return bless(args);
    }
    if args.step {
        return step(args);
    }
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
                {
                    let state = match v.state {
                        FindingState::Active => "active".to_owned(),
                        FindingState::Resolved => format!(
                            "resolved ({})",
                            v.resolution_kind.map_or("?", |k| k.as_str())
                        ),
                    };
                    match &v.in_maintenance {
                        Some(m) => format!("{state}, in maintenance ({})", m.windows.join(", ")),
                        None => state,
                    }
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

/// `--check`: every case under the path against its expected/ files.
fn check(args: &ReplayArgs) -> Result<(), CliError> {
    let mut results = Vec::new();
    for dir in corpus::case_dirs(&args.log)? {
        let case = Case::load(&dir)?;
        let mut result = corpus::check_case(&case)?;
        result.changes_disagree = crate::step::walk(&case.events, &[], 1, None, true)
            .err()
            .map(|d| d.to_string());
        results.push(result);
    }
    let failures: usize = results.iter().map(corpus::CaseResult::failures).sum();
    let views: usize = results
        .iter()
        .flat_map(|r| &r.checkpoints)
        .map(|c| c.views.len())
        .sum();
    let checkpoints: usize = results.iter().map(|r| r.checkpoints.len()).sum();
    if args.json {
        #[derive(serde::Serialize)]
        struct Summary<'a> {
            ok: bool,
            cases: usize,
            checkpoints: usize,
            views: usize,
            failures: usize,
            results: &'a [corpus::CaseResult],
        }
        let summary = Summary {
            ok: failures == 0,
            cases: results.len(),
            checkpoints,
            views,
            failures,
            results: &results,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(anyhow::Error::from)?
        );
    } else {
        for result in &results {
            for checkpoint in &result.checkpoints {
                for view in checkpoint
                    .views
                    .iter()
                    .filter(|v| v.status != ViewStatus::Match)
                {
                    let position = if checkpoint.seq == 0 {
                        "not a checkpoint of the case".to_owned()
                    } else {
                        format!("log position {}", checkpoint.seq)
                    };
                    let what = match view.status {
                        ViewStatus::Match => unreachable!("filtered out"),
                        ViewStatus::Differ => "differs",
                        ViewStatus::Missing => "has no expected file",
                        ViewStatus::Unexpected => "is expected but the replay does not produce it",
                    };
                    println!(
                        "MISMATCH case {} · checkpoint {} ({position}) · view {} {what}",
                        result.case, checkpoint.name, view.view
                    );
                    if let Some(diff) = &view.diff {
                        print!("{diff}");
                    }
                    println!();
                }
            }
            if let Some(disagreement) = &result.changes_disagree {
                println!(
                    "MISMATCH case {} · change records: the fold's changes differ from the whole-state comparison {disagreement}\n",
                    result.case
                );
            }
            println!(
                "{} {}: {} event(s), {} checkpoint(s), {} view(s){}",
                if result.failures() == 0 {
                    "ok  "
                } else {
                    "FAIL"
                },
                result.case,
                result.events,
                result.checkpoints.len(),
                result
                    .checkpoints
                    .iter()
                    .map(|c| c.views.len())
                    .sum::<usize>(),
                match result.failures() {
                    0 => String::new(),
                    n => format!(", {n} differ"),
                }
            );
        }
        println!(
            "{} case(s), {checkpoints} checkpoint(s), {views} view(s): {}",
            results.len(),
            if failures == 0 {
                "all match".to_owned()
            } else {
                format!("{failures} differ")
            }
        );
    }
    if failures > 0 {
        return Err(CliError::new(
            exit::FAILURE,
            anyhow::anyhow!(
                "{failures} view(s) differ from expected/: fix the code, or if the seed says the \
                 new answer is right, run `tidemark replay --bless CASE` and review the diff"
            ),
        ));
    }
    Ok(())
}

/// `--bless`: write expected/ of every case under the path.
fn bless(args: &ReplayArgs) -> Result<(), CliError> {
    for dir in corpus::case_dirs(&args.log)? {
        let case = Case::load(&dir)?;
        let written = corpus::bless_case(&case)?;
        eprintln!(
            "wrote {written} file(s) to {}: review them against the seed (see the case README)",
            dir.join(corpus::EXPECTED_DIR).display()
        );
    }
    Ok(())
}

/// `--step`: walk a log or a case, event by event.
fn step(args: &ReplayArgs) -> Result<(), CliError> {
    let (events, checkpoints) = if args.log.is_dir() {
        let case = Case::load(&args.log)?;
        (case.events, case.checkpoints)
    } else {
        (corpus::read_log(&args.log)?, Vec::new())
    };
    let until = match args.until {
        None => None,
        Some(Until::Seq(seq)) => Some(seq),
        Some(Until::Time(t)) => Some(
            events
                .iter()
                .take_while(|(_, e)| e.time <= t)
                .last()
                .map_or(0, |(seq, _)| *seq),
        ),
    };
    let steps = crate::step::walk(
        &events,
        &checkpoints,
        args.from.unwrap_or(1),
        until,
        args.verify,
    )
    .map_err(|disagreement| {
        CliError::new(
            exit::FAILURE,
            anyhow::anyhow!(
                "the fold's changes differ from the whole-state comparison {disagreement}\n(a bug: please report it with this log)"
            ),
        )
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&steps).map_err(anyhow::Error::from)?
        );
    } else {
        print!("{}", crate::step::render_text(&steps));
    }
    Ok(())
}
