//! The projection commands: `flaps`, `stuck`, `orphans`, `incidents`, `incident`.
//!
//! Longer than most files on purpose: the five commands share one shape (arguments, the
//! projection at `--at`, a table or `--json`) and read best side by side.

use clap::Args;
use serde::Serialize;
use tidemark_core::describe::one_line;
use tidemark_core::findings::UnreachableReason;
use tidemark_core::incidents::{IncidentEntry, IncidentView};
use tidemark_core::orphans::{OrphanGraph, OrphanView};
use tidemark_core::{Projections, Timestamp};
use tidemark_store::{At, Store};

use crate::replay::{Until, parse_until};
use crate::store_cmds::{DbArgs, open_existing};
use crate::views::{FlapsReport, IncidentsOutput, OrphansOutput, StuckOutput};
use crate::{CliError, exit, table};

/// What every projection command takes.
#[derive(Args, Debug)]
pub struct ViewArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The state at a log position (the events at 1..=SEQ) or a time (RFC 3339: before the
    /// first event later than it).
    #[arg(long, value_name = "SEQ|RFC3339", value_parser = parse_until)]
    pub at: Option<Until>,
    /// Only this cluster.
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `read` over the projections now or at `--at`; returns its result and the log position.
pub(crate) fn with_projections<R>(
    store: &Store,
    at: Option<Until>,
    read: impl FnOnce(&Projections) -> R,
) -> Result<(R, u64), CliError> {
    store
        .read_at(at.map(to_at), read)
        .map_err(|e| CliError::new(exit::FAILURE, e))
}

/// Builds a view of the projections now or at `--at`, knowing the log position it reads.
fn read_view<R>(
    store: &Store,
    at: Option<Until>,
    view: impl FnOnce(&Projections, u64) -> R,
) -> Result<R, CliError> {
    store
        .read_with_events(at.map(to_at), |_| Vec::new(), |p, _, seq| view(p, seq))
        .map_err(|e| CliError::new(exit::FAILURE, e))
}

fn to_at(until: Until) -> At {
    match until {
        Until::Seq(seq) => At::Seq(seq),
        Until::Time(t) => At::Time(t),
    }
}

pub(crate) fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?
    );
    Ok(())
}

fn time(t: Timestamp) -> String {
    t.to_string()
}

// ---------------------------------------------------------------------------------------------
// flaps

/// Why the bell keeps ringing: flapping findings, unstable check keys, churning categories.
#[derive(Args, Debug)]
#[command(
    long_about = "Lists findings that flap or have flapped, by either detector: the count rule \
                  (more auto-resolutions inside flap_window_secs than flap_threshold) and the \
                  weighted percent state change over the last 20 runs of the finding's category \
                  (starts at flap_start_percent, stops below flap_stop_percent). Then the check \
                  keys whose parts look unstable (UUIDs, pod-template hashes, timestamps, IPs, \
                  ports, long hex, positional indices) with the stable form to use, and the \
                  categories whose new keys keep dying within two runs (churn)."
)]
pub struct FlapsArgs {
    #[command(flatten)]
    pub view: ViewArgs,
}

pub fn flaps(args: &FlapsArgs) -> Result<(), CliError> {
    let store = open_existing(&args.view.db.db)?;
    let cluster = args.view.cluster.as_deref();
    let report = read_view(&store, args.view.at, |p, seq| {
        FlapsReport::of(p, cluster, seq)
    })?;
    let at_seq = report.seq;
    if args.view.json {
        return print_json(&report);
    }
    let rows: Vec<Vec<String>> = report
        .flapping
        .iter()
        .map(|f| {
            let now = match (f.flapping, f.flapping_state_change) {
                (true, true) => "count + state change",
                (true, false) => "count",
                (false, true) => "state change",
                (false, false) => "no (stopped)",
            };
            let last = f.episodes.last().expect("listed findings have episodes");
            vec![
                f.cluster.clone(),
                f.check_key.clone(),
                now.to_owned(),
                f.auto_resolutions_in_window.to_string(),
                format!("{:.1}%", f.state_change_percent),
                f.episodes.len().to_string(),
                last.stopped_because
                    .clone()
                    .unwrap_or_else(|| last.started_because.clone()),
            ]
        })
        .collect();
    println!("Flapping findings");
    print!(
        "{}",
        table::render(
            &[
                "CLUSTER",
                "CHECK_KEY",
                "FLAPPING NOW",
                "AUTO-RESOLVED",
                "STATE CHANGE",
                "EPISODES",
                "LAST FIGURE"
            ],
            &rows
        )
    );
    println!();
    println!("Unstable check keys");
    let rows: Vec<Vec<String>> = report
        .unstable_keys
        .iter()
        .map(|k| {
            vec![
                k.cluster.clone(),
                k.advice.check_key.clone(),
                k.advice.suggestion.clone(),
                k.advice.advice.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["CLUSTER", "CHECK_KEY", "KEY IT BY", "WHY"], &rows)
    );
    println!();
    println!("Churning categories (new keys that die within two runs, last 20 runs)");
    let rows: Vec<Vec<String>> = report
        .churn
        .iter()
        .map(|c| {
            vec![
                c.cluster.clone(),
                c.category.clone(),
                c.short_lived_keys.to_string(),
                time(c.since),
                c.examples.join(", "),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["CLUSTER", "CATEGORY", "SHORT-LIVED", "SINCE", "LATEST KEYS"],
            &rows
        )
    );
    println!(
        "{} flapping, {} unstable key(s), {} churning categor(ies) at log position {at_seq}",
        report.flapping.len(),
        report.unstable_keys.len(),
        report.churn.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// stuck

/// The time stale alerts are judged at.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum ReferenceArg {
    /// Each cluster's clock: the latest time of its events in the log (the same answer
    /// whenever it is asked).
    #[default]
    Log,
    /// This machine's clock.
    Now,
}

impl ReferenceArg {
    /// The time to judge at: `None` for each cluster's clock.
    pub fn time(self) -> Option<Timestamp> {
        match self {
            Self::Log => None,
            Self::Now => Some(tidemark_store::wall_clock()),
        }
    }
}

/// Why a row never resolves: unreachable findings and drift suspects, apart from long-lived ones.
#[derive(Args, Debug)]
#[command(
    long_about = "Lists active findings the sweep cannot resolve: their category has not run in \
                  the last unreachable_after_cycles cycles of the cluster (reason \
                  category_disabled when enabled_categories excludes it, else category_not_run). \
                  Then firing alerts gone stale (reason alert_stale): no notification named \
                  them for longer than their cluster's alert_stale_after_secs (default 8 h), \
                  judged at the cluster's clock or, with --reference now, at this machine's; \
                  Tidemark never resolves them. Then check-key drift suspects: a finding that went absent in the same cycle a \
                  new one opened with the same category and resource. Then, kept apart, findings \
                  that are real and persistent: present in the latest run of their category and \
                  older than long_lived_secs."
)]
pub struct StuckArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// The time stale alerts are judged at: each cluster's clock (log) or this machine's
    /// (now).
    #[arg(long, value_enum, default_value = "log")]
    pub reference: ReferenceArg,
}

pub fn stuck(args: &StuckArgs) -> Result<(), CliError> {
    let store = open_existing(&args.view.db.db)?;
    let cluster = args.view.cluster.as_deref();
    let reference = args.reference.time();
    let output = read_view(&store, args.view.at, |p, seq| {
        StuckOutput::of(p, cluster, reference, seq)
    })?;
    if args.view.json {
        return print_json(&output);
    }
    let StuckOutput {
        seq: at_seq,
        report,
    } = output;
    println!("Unreachable (the sweep cannot resolve these)");
    let rows: Vec<Vec<String>> = report
        .unreachable
        .iter()
        .map(|u| {
            vec![
                u.cluster.clone(),
                u.check_key.clone(),
                u.category.clone(),
                match u.reason {
                    UnreachableReason::CategoryDisabled => "category_disabled",
                    UnreachableReason::CategoryNotRun => "category_not_run",
                }
                .to_owned(),
                u.cycles_without_category.to_string(),
                time(u.category_last_ran_at),
                time(u.opened_at),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "CLUSTER",
                "CHECK_KEY",
                "CATEGORY",
                "REASON",
                "CYCLES WITHOUT IT",
                "CATEGORY LAST RAN",
                "OPENED"
            ],
            &rows
        )
    );
    println!();
    println!("Stale alerts (firing, and no notification for longer than alert_stale_after_secs)");
    let rows: Vec<Vec<String>> = report
        .stale_alerts
        .iter()
        .map(|a| {
            vec![
                a.cluster.clone(),
                a.name.clone(),
                a.fingerprint.clone(),
                time(a.last_notified_at),
                duration(Some(a.staleness.stale_for_secs)),
                time(a.staleness.reference),
                time(a.opened_at),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "CLUSTER",
                "ALERT",
                "FINGERPRINT",
                "LAST NOTIFIED",
                "STALE FOR",
                "JUDGED AT",
                "FIRING SINCE"
            ],
            &rows
        )
    );
    println!();
    println!("Check-key drift suspects");
    let rows: Vec<Vec<String>> = report
        .drift_suspects
        .iter()
        .map(|d| {
            vec![
                d.cluster.clone(),
                format!(
                    "{}{}",
                    d.record.old_check_key,
                    if d.old_active { " (active)" } else { "" }
                ),
                format!(
                    "{}{}",
                    d.record.new_check_key,
                    if d.new_active { " (active)" } else { "" }
                ),
                d.record.category.clone(),
                time(d.record.at),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["CLUSTER", "WENT ABSENT", "OPENED", "CATEGORY", "AT"],
            &rows
        )
    );
    println!();
    println!("Long-lived (real, persistent problems: not stuck)");
    let rows: Vec<Vec<String>> = report
        .long_lived
        .iter()
        .map(|l| {
            vec![
                l.cluster.clone(),
                l.check_key.clone(),
                l.severity.to_string(),
                format!("{:.1} d", l.age_secs as f64 / 86_400.0),
                time(l.opened_at),
                l.title.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["CLUSTER", "CHECK_KEY", "SEVERITY", "AGE", "OPENED", "TITLE"],
            &rows
        )
    );
    println!(
        "{} unreachable, {} drift suspect(s), {} long-lived at log position {at_seq}",
        report.unreachable.len(),
        report.drift_suspects.len(),
        report.long_lived.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// orphans

/// What is live that nobody owns, what is tracked that is not live, and orphaned spans.
#[derive(Args, Debug)]
#[command(
    long_about = "Lists confirmed orphans: unmanaged (live, untracked, no owner), ghost (tracked, \
                  not live), dangling (an owner or used resource is not live, or nothing live \
                  uses a kind of orphan_consumer_kinds; transitive over owners), orphan spans \
                  (parent missing once the trace is quiet for span_grace_secs) and traces with \
                  no root span. A resource orphan is reported only after orphan_confirm_scans \
                  consecutive scans. --graph prints the resource graph as JSON, --dot as \
                  Graphviz (render with `dot -Tsvg`)."
)]
pub struct OrphansArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// Print the resource graph in Graphviz DOT instead.
    #[arg(long, conflicts_with_all = ["graph", "json"])]
    pub dot: bool,
    /// Print the resource graph as JSON instead.
    #[arg(long)]
    pub graph: bool,
    /// Also list candidates not yet confirmed.
    #[arg(long)]
    pub candidates: bool,
}

fn orphan_rows(orphans: &[OrphanView]) -> Vec<Vec<String>> {
    orphans
        .iter()
        .map(|o| {
            let what = tidemark_core::changes::orphan_subject(o);
            vec![
                o.cluster.clone(),
                o.kind.as_str().to_owned(),
                what,
                time(o.since),
                o.scans.to_string(),
                o.reason.clone(),
            ]
        })
        .collect()
}

pub fn orphans(args: &OrphansArgs) -> Result<(), CliError> {
    let store = open_existing(&args.view.db.db)?;
    let cluster = args.view.cluster.as_deref();
    if args.dot || args.graph {
        let (graph, _): (OrphanGraph, u64) =
            with_projections(&store, args.view.at, |p| p.orphans().graph(cluster))?;
        if args.dot {
            print!("{}", graph.to_dot());
            return Ok(());
        }
        return print_json(&graph);
    }
    let output = read_view(&store, args.view.at, |p, seq| {
        OrphansOutput::of(p, cluster, args.candidates, seq)
    })?;
    let at_seq = output.seq;
    if args.view.json {
        return print_json(&output);
    }
    let header = ["CLUSTER", "KIND", "WHAT", "SINCE", "SCANS", "REASON"];
    print!("{}", table::render(&header, &orphan_rows(&output.orphans)));
    if let Some(candidates) = &output.candidates {
        println!();
        println!("Candidates (not yet confirmed)");
        print!("{}", table::render(&header, &orphan_rows(candidates)));
    }
    println!(
        "{} orphan(s) at log position {at_seq}",
        output.orphans.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// incidents

/// List incidents, explicit and automatic.
#[derive(Args, Debug)]
pub struct IncidentsArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// Also list automatic incidents absorbed into explicit ones.
    #[arg(long)]
    pub all: bool,
}

/// How many failure layers the incident's deepest resource showed: 1 when every failing
/// resource failed one way, more when each fix revealed the next failure (the incident page's
/// "Failure layers" lists those), 0 without a finding.
fn failure_layers(incident: &tidemark_core::incidents::Incident) -> usize {
    incident
        .layers
        .values()
        .map(|resource| resource.layers.len())
        .max()
        .unwrap_or(0)
}

pub(crate) fn duration(secs: Option<u64>) -> String {
    match secs {
        None => "ongoing".to_owned(),
        Some(s) if s < 3_600 => format!("{}m", s / 60),
        Some(s) => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
    }
}

pub fn incidents(args: &IncidentsArgs) -> Result<(), CliError> {
    let store = open_existing(&args.view.db.db)?;
    let cluster = args.view.cluster.as_deref();
    let (output, depths) = read_view(&store, args.view.at, |p, seq| {
        let output = IncidentsOutput::of(p, cluster, args.all, seq);
        let depths: Vec<usize> = output
            .incidents
            .iter()
            .map(|i| {
                p.incidents()
                    .incident(&i.id)
                    .map_or(0, |i| failure_layers(&i))
            })
            .collect();
        (output, depths)
    })?;
    if args.view.json {
        return print_json(&output);
    }
    let IncidentsOutput {
        seq: at_seq,
        incidents,
    } = output;
    let rows: Vec<Vec<String>> = incidents
        .iter()
        .zip(depths)
        .map(|(i, depth)| {
            // An absorbed incident handed its findings' layers to the one it merged into.
            let (state, duration, layers) = match &i.merged_into {
                Some(into) => (
                    format!("merged into {into}"),
                    "-".to_owned(),
                    "-".to_owned(),
                ),
                None => (
                    format!("{:?}", i.state).to_lowercase(),
                    duration(i.duration_secs),
                    depth.to_string(),
                ),
            };
            vec![
                i.id.clone(),
                format!("{:?}", i.kind).to_lowercase(),
                state,
                i.severity.to_string(),
                i.cluster.clone(),
                time(i.opened_at),
                duration,
                i.findings.len().to_string(),
                layers,
                i.title.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render_fitted(
            &[
                "ID", "KIND", "STATE", "SEVERITY", "CLUSTER", "OPENED", "DURATION", "FINDINGS",
                "LAYERS", "TITLE"
            ],
            &rows,
            &[9]
        )
    );
    println!("{} incident(s) at log position {at_seq}", incidents.len());
    Ok(())
}

/// One incident: what it is, its failure layers, and its timeline.
#[derive(Args, Debug)]
pub struct IncidentArgs {
    /// The incident id (see `tidemark incidents`).
    pub id: String,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// One entry of an incident's timeline with its event.
#[derive(Serialize)]
struct TimelineLine {
    #[serde(flatten)]
    entry: IncidentEntry,
    summary: String,
    event: tidemark_core::Event,
}

#[derive(Serialize)]
struct IncidentOutput {
    /// The log position (`seq`, as in the HTTP API's answers).
    seq: u64,
    incident: IncidentView,
    timeline: Vec<TimelineLine>,
}

pub fn incident(args: &IncidentArgs) -> Result<(), CliError> {
    let store = open_existing(&args.view.db.db)?;
    let (found, at_seq) = store
        .read_with_events(
            args.view.at.map(to_at),
            |p| {
                p.incidents()
                    .incident(&args.id)
                    .map(|i| p.incidents().timeline_positions(&i, 0, usize::MAX))
                    .unwrap_or_default()
            },
            |p, events, seq| {
                let found = p.incidents().incident(&args.id).map(|i| {
                    let lines: Vec<TimelineLine> = p
                        .incidents()
                        .timeline(&i)
                        .iter()
                        .cloned()
                        .zip(events)
                        .map(|(entry, (_, event))| TimelineLine {
                            summary: one_line(event),
                            entry,
                            event: event.clone(),
                        })
                        .collect();
                    (p.incidents().view(&i, p.findings()), lines)
                });
                (found, seq)
            },
        )
        .map_err(|e| CliError::new(exit::FAILURE, e))?;
    let Some((incident, timeline)) = found else {
        return Err(CliError::new(
            exit::NO_INPUT,
            anyhow::anyhow!(
                "no incident {:?} at log position {at_seq}: list them with `tidemark incidents --db {}`",
                args.id,
                args.view.db.db.display()
            ),
        ));
    };
    if args.view.json {
        return print_json(&IncidentOutput {
            seq: at_seq,
            incident,
            timeline,
        });
    }
    let width = table::output_width();
    let fill = |text: String| textwrap::fill(&text, table::wrap_options(width));
    println!("{}", fill(format!("{} — {}", incident.id, incident.title)));
    let summary = format!(
        "{} incident, {}, severity {}, cluster {}; opened {} (log position {}), {}",
        format!("{:?}", incident.kind).to_lowercase(),
        format!("{:?}", incident.state).to_lowercase(),
        incident.severity,
        incident.cluster,
        time(incident.opened_at),
        incident.opened_seq,
        match incident.closed_at {
            Some(t) => format!(
                "closed {} after {}",
                time(t),
                duration(incident.duration_secs)
            ),
            None => "still open".to_owned(),
        }
    );
    println!("{}", fill(summary));
    if let Some(into) = &incident.merged_into {
        println!("absorbed into {into}");
    }
    println!();
    println!("Findings");
    let rows: Vec<Vec<String>> = incident
        .findings
        .iter()
        .map(|f| {
            vec![
                f.check_key.clone(),
                f.severity.to_string(),
                if f.active { "active" } else { "resolved" }.to_owned(),
                time(f.joined_at),
                f.title.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render_fitted(
            &["CHECK_KEY", "SEVERITY", "NOW", "JOINED", "TITLE"],
            &rows,
            &[4]
        )
    );
    // Failure layers: one item per layer and per change after it, wrapped to the width with
    // their continuation lines indented.
    let item = |indent: &str, text: String| {
        let options = table::wrap_options(width)
            .initial_indent(indent)
            .subsequent_indent("       ");
        println!("{}", textwrap::fill(&text, options));
    };
    for resource in &incident.layers {
        println!();
        println!("Failure layers of {}", resource.resource);
        for layer in &resource.layers {
            let after = layer.after_change.as_ref().map_or_else(
                || "first seen".to_owned(),
                |c| format!("after {} {} ({})", c.service, c.version, time(c.at)),
            );
            item(
                "  ",
                format!(
                    "{}. {} — {} [{}], {after}",
                    layer.number,
                    layer.signature,
                    time(layer.first_seen_at),
                    layer.check_key
                ),
            );
            for change in &layer.changes_without_effect {
                item(
                    "     ",
                    format!(
                        "unchanged after {:?} {} {} ({})",
                        change.kind,
                        change.service,
                        change.version,
                        time(change.at)
                    ),
                );
            }
            for failure in &layer.failed_differently {
                let change = &failure.change;
                item(
                    "     ",
                    format!(
                        "{:?} {} {} ({}) failed differently: {} [{}]",
                        change.kind,
                        change.service,
                        change.version,
                        time(change.at),
                        failure.signature,
                        failure.check_key
                    ),
                );
            }
            for change in &layer.seen_again_after {
                item(
                    "     ",
                    format!(
                        "seen again after {:?} {} {} ({})",
                        change.kind,
                        change.service,
                        change.version,
                        time(change.at)
                    ),
                );
            }
        }
    }
    println!();
    println!("Timeline");
    let late = tidemark_core::describe::late_entries(timeline.iter().map(|l| l.event.time));
    let rows: Vec<Vec<String>> = timeline
        .iter()
        .zip(late)
        .map(|(line, late)| {
            vec![
                // The event's own time, marked when late (as on the web page and postmortems).
                crate::store_cmds::late_marked(line.event.time, late),
                line.entry.seq.to_string(),
                line.event.event_type().to_string(),
                line.summary.clone(),
                line.entry
                    .touches
                    .iter()
                    .map(|t| match &t.check_key {
                        Some(key) => format!("{} {key}", t.change),
                        None => t.change.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        })
        .collect();
    // Notes can be paragraphs long: EVENT and EFFECT wrap to the width (`--json` has them whole).
    print!(
        "{}",
        table::render_fitted(
            &["TIME (UTC)", "SEQ", "TYPE", "EVENT", "EFFECT"],
            &rows,
            &[3, 4]
        )
    );
    println!(
        "{} timeline entr(ies) at log position {at_seq}",
        timeline.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// export

/// Write an incident's postmortem: Markdown, HTML or JSON.
#[derive(Args, Debug)]
#[command(
    long_about = "Renders the postmortem of an incident from the store: TL;DR, impact and \
                  duration, the triage table of its findings (initial state, resolution and \
                  how), the timeline in UTC, the failure layers, flaps and orphans seen during \
                  it, the notes and the follow-ups. --at renders it as it would have read at \
                  that point of the log."
)]
pub struct ExportArgs {
    /// The incident id (see `tidemark incidents`).
    pub id: String,
    /// md (Markdown), html or json.
    #[arg(long, default_value = "md", value_name = "FORMAT")]
    pub format: String,
    /// Write to this file instead of standard output (refused if it exists, unless --force).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
    #[command(flatten)]
    pub db: crate::store_cmds::DbArgs,
    /// The state at a log position or a time (RFC 3339).
    #[arg(long, value_name = "SEQ|RFC3339", value_parser = parse_until)]
    pub at: Option<Until>,
}

pub fn export(args: &ExportArgs) -> Result<(), CliError> {
    let format: tidemark_export::Format = args
        .format
        .parse()
        .map_err(|e| CliError::new(exit::USAGE, anyhow::anyhow!("--format: {e}")))?;
    if let Some(path) = &args.output {
        crate::ops_cmds::check_target(path, args.force, "the postmortem")?;
    }
    let store = open_existing(&args.db.db)?;
    // The maintenance windows of the incident's clusters, from their events up to the state
    // exported.
    let (clusters, up_to) = store
        .read_at(args.at.map(to_at), |p| {
            p.incidents()
                .incident(&args.id)
                .map(|i| i.clusters())
                .unwrap_or_default()
        })
        .map_err(|e| CliError::new(exit::FAILURE, e))?;
    let mut books = std::collections::BTreeMap::new();
    for cluster in clusters {
        let (book, _) = store
            .maintenance_book(&cluster, Some(up_to))
            .map_err(|e| CliError::new(exit::FAILURE, e))?;
        books.insert(cluster, book);
    }
    let (built, at_seq) = store
        .read_with_events(
            args.at.map(to_at),
            |p: &Projections| -> Vec<u64> {
                p.incidents()
                    .incident(&args.id)
                    .map(|i| p.incidents().timeline_positions(&i, 0, usize::MAX))
                    .unwrap_or_default()
            },
            |p, events, seq| {
                (
                    tidemark_export::Postmortem::build(&args.id, p, events, seq, &books),
                    seq,
                )
            },
        )
        .map_err(|e| CliError::new(exit::FAILURE, e))?;
    let postmortem = built.map_err(|e| match e {
        tidemark_export::BuildError::UnknownIncident { .. } => CliError::new(
            exit::NO_INPUT,
            anyhow::anyhow!(
                "no incident {:?} at log position {at_seq}: list them with `tidemark incidents --db {}`",
                args.id,
                args.db.db.display()
            ),
        ),
        other => CliError::new(exit::FAILURE, other),
    })?;
    let text = tidemark_export::render(&postmortem, format);
    match &args.output {
        Some(path) => {
            write_file_atomically(path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Writes `bytes` to a scratch file next to `path` and moves it into place, as backups are: a
/// failed write (a full disk: exit 74) leaves no half-written file and whatever was there.
fn write_file_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    use crate::ops_cmds::{Scratch, commit_file, io_error, partial_path};
    let partial = partial_path(path);
    let scratch = Scratch(partial.clone());
    std::fs::write(&partial, bytes).map_err(|e| io_error(path, "cannot write", e))?;
    commit_file(&partial, path)?;
    std::mem::forget(scratch);
    Ok(())
}
