//! `tidemark alerts`: the alerts from alerting systems (ADR 0007), firing now by default, as a
//! table or `--json` (the shape of `GET /v1/alerts`' `alerts`).

use clap::{Args, ValueEnum};
use serde::Serialize;
use tidemark_core::findings::{AlertFilter, AlertState};
use tidemark_core::{FindingOverview, FindingState, Severity, Timestamp};

use crate::projection_cmds::{ReferenceArg, ViewArgs, print_json, with_projections};
use crate::store_cmds::open_existing;
use crate::{CliError, table};

/// Which alerts to list.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AlertStateArg {
    /// Firing now.
    Firing,
    /// Resolved (by the alerting system or by hand).
    Resolved,
    /// Firing, and no notification named it for longer than its cluster's
    /// `alert_stale_after_secs`.
    Stale,
    /// Both.
    All,
}

/// What the alerting systems said: the alerts firing now (or resolved, or all), with their
/// labels, since when and how often they were notified.
#[derive(Args, Debug)]
#[command(
    long_about = "Lists the alerts from alerting systems (Alertmanager through \
                  POST /v1/bridges/alertmanager, or alert.fired / alert.resolved events): each is \
                  a finding keyed alert:NAME:FINGERPRINT, opened when it fires, resolved when the \
                  alerting system (or an operator) resolves it. Firing ones by default.",
    after_help = "Examples:\n  tidemark alerts --db tidemark.redb\n  tidemark alerts --db tidemark.redb --state all --label namespace=bruno --json\n  tidemark alerts --db tidemark.redb --state stale --reference now"
)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// Firing (the default), resolved, stale or all.
    #[arg(long, value_enum, default_value = "firing")]
    pub state: AlertStateArg,
    /// The time staleness is judged at: each cluster's clock (log) or this machine's (now).
    #[arg(long, value_enum, default_value = "log")]
    pub reference: ReferenceArg,
    /// Only alerts of this name (`alertname`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only alerts of this severity (info, warning, error, critical).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Only alerts with this label (repeat for several; all must match).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_label)]
    pub label: Vec<(String, String)>,
    /// Only alerts whose latest occurrence was firing at or after this time.
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<Timestamp>,
    /// Only alerts whose latest occurrence opened at or before this time.
    #[arg(long, value_name = "RFC3339")]
    pub until: Option<Timestamp>,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| "expected info, warning, error or critical".to_owned())
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!(
            "expected NAME=VALUE (e.g. namespace=bruno), found {text:?}"
        )),
    }
}

/// `tidemark alerts --json`.
#[derive(Serialize)]
struct AlertsOutput {
    /// The log position the alerts are at.
    seq: u64,
    /// The alerts, by (cluster, check_key).
    alerts: Vec<FindingOverview>,
}

pub fn alerts(args: &AlertsArgs) -> Result<(), CliError> {
    let store = open_existing(&args.view.db.db)?;
    let filter = AlertFilter {
        state: match args.state {
            AlertStateArg::Firing => AlertState::Firing,
            AlertStateArg::Resolved => AlertState::Resolved,
            AlertStateArg::Stale => AlertState::Stale,
            AlertStateArg::All => AlertState::All,
        },
        name: args.name.clone(),
        severity: args.severity,
        labels: args.label.clone(),
        since: args.since,
        until: args.until,
        reference: args.reference.time(),
    };
    let cluster = args.view.cluster.as_deref();
    let ((alerts, _), seq) = with_projections(&store, args.view.at, |p| {
        p.findings().alerts_page(cluster, &filter, None, usize::MAX)
    })?;
    if args.view.json {
        return print_json(&AlertsOutput { seq, alerts });
    }
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            let facts = a.alert.as_ref();
            let labels = facts.map_or_else(String::new, |f| {
                f.labels
                    .iter()
                    .filter(|(name, _)| !matches!(name.as_str(), "alertname" | "severity"))
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            vec![
                a.cluster.clone(),
                facts.map_or_else(|| a.check_key.clone(), |f| f.name.clone()),
                a.severity.to_string(),
                match (a.state, &a.stale) {
                    (FindingState::Active, Some(stale)) => format!(
                        "firing, stale {}",
                        crate::projection_cmds::duration(Some(stale.stale_for_secs))
                    ),
                    (FindingState::Active, None) => "firing".to_owned(),
                    (FindingState::Resolved, _) => format!(
                        "resolved ({})",
                        a.resolution_kind.map_or("?", |k| k.as_str())
                    ),
                },
                a.opened_at.to_string(),
                facts.map_or_else(String::new, |f| f.last_notified_at.to_string()),
                a.occurrences.to_string(),
                if a.flapping || a.flapping_state_change {
                    "yes"
                } else {
                    ""
                }
                .to_owned(),
                labels,
                a.title.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render_fitted(
            &[
                "CLUSTER", "ALERT", "SEVERITY", "STATE", "SINCE", "NOTIFIED", "OCC", "FLAP",
                "LABELS", "TITLE",
            ],
            &rows,
            &[8, 9],
        )
    );
    println!("{} alert(s) at log position {seq}", alerts.len());
    if alerts.is_empty() && matches!(args.state, AlertStateArg::Firing) {
        println!("nothing firing; `--state all` lists the resolved ones too");
    }
    Ok(())
}
