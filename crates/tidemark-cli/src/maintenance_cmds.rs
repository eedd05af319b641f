//! `tidemark maintenance`: the maintenance windows in effect (ADR 0007), open at a time by
//! default, as a table or `--json` (the shape of `GET /v1/maintenance`).

use clap::Args;
use serde::Serialize;
use tidemark_core::event::MaintenanceSchedule;
use tidemark_core::findings::{ClusterMaintenanceView, MaintenanceWindowView};

use crate::projection_cmds::{ViewArgs, print_json, with_projections};
use crate::replay::Until;
use crate::store_cmds::open_existing;
use crate::{CliError, table};

/// Which maintenance windows hold findings and alerts back, and from when to when.
#[derive(Args, Debug)]
#[command(
    long_about = "Lists the maintenance windows in effect (maintenance.scheduled events not \
                  cancelled or over): those open at the reference time by default (each \
                  cluster's clock, or the time given with --at), or all of them with --all. A \
                  finding or alert a window covers is still recorded, marked in_maintenance; by \
                  default it opens no automatic incident until the window ends and does not \
                  count towards flapping.",
    after_help = "Examples:\n  tidemark maintenance --db tidemark.redb\n  tidemark maintenance --db tidemark.redb --all --json\n  tidemark maintenance --db tidemark.redb --at 2026-03-02T02:14:00Z   # why was it quiet then?"
)]
pub struct MaintenanceArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// Every window in effect, open or not.
    #[arg(long)]
    pub all: bool,
}

/// `tidemark maintenance --json`.
#[derive(Serialize)]
struct MaintenanceOutput {
    /// The log position of the state read.
    seq: u64,
    /// The windows, by cluster, in the order they were scheduled.
    windows: Vec<MaintenanceWindowView>,
    /// Each cluster's counts and settings.
    clusters: Vec<ClusterMaintenanceView>,
}

fn when(view: &MaintenanceWindowView) -> String {
    let schedule = match &view.schedule {
        MaintenanceSchedule::Once(span) => format!("{} to {}", span.starts_at, span.ends_at),
        MaintenanceSchedule::TimeIntervals(specs) => serde_json::to_string(specs)
            .unwrap_or_else(|_| format!("{} time interval(s)", specs.len())),
    };
    match (view.open, view.open_until, view.next_open) {
        (true, Some(until), _) => format!("open until {until}; {schedule}"),
        (true, None, _) => format!("open (over 7 days more); {schedule}"),
        (false, _, Some(next)) => format!("next open {next}; {schedule}"),
        (false, _, None) => format!("not open within 7 days; {schedule}"),
    }
}

pub fn maintenance(args: &MaintenanceArgs) -> Result<(), CliError> {
    let store = open_existing(&args.view.db.db)?;
    let reference = match args.view.at {
        Some(Until::Time(time)) => Some(time),
        _ => None,
    };
    let cluster = args.view.cluster.as_deref();
    let only_open = !args.all;
    let ((windows, _, clusters), seq) = with_projections(&store, args.view.at, |p| {
        p.findings()
            .maintenance_page(cluster, reference, only_open, usize::MAX)
    })?;
    if args.view.json {
        return print_json(&MaintenanceOutput {
            seq,
            windows,
            clusters,
        });
    }
    let rows: Vec<Vec<String>> = windows
        .iter()
        .map(|w| {
            vec![
                w.cluster.clone(),
                w.window.clone(),
                if w.open { "open" } else { "closed" }.to_owned(),
                tidemark_core::describe::maintenance_matchers(&w.matchers),
                w.by.clone(),
                when(w),
                w.reason.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render_fitted(
            &["CLUSTER", "WINDOW", "NOW", "COVERS", "BY", "WHEN", "REASON"],
            &rows,
            &[5, 6],
        )
    );
    let marked: u64 = clusters.iter().map(|c| c.summary.marked).sum();
    println!(
        "{} window(s) at log position {seq}; {marked} finding(s) or alert(s) marked in_maintenance",
        windows.len()
    );
    if windows.is_empty() && only_open {
        println!("none open; `--all` lists every window in effect");
    }
    Ok(())
}
