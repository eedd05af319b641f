//! The JSON views of the projection commands (`flaps`, `stuck`, `orphans`, `incidents`), built
//! from a [`Projections`] so the store commands and the replay corpus print the same shapes.

use serde::Serialize;
use tidemark_core::Projections;
use tidemark_core::findings::{ChurnView, FlapView, StuckReport};
use tidemark_core::incidents::IncidentView;
use tidemark_core::orphans::OrphanView;
use tidemark_core::projections::UnstableKeyView;

/// The `flaps --json` report.
#[derive(Debug, Serialize)]
pub struct FlapsReport {
    /// The log position the report is at (`seq`, as in the HTTP API's answers).
    pub seq: u64,
    pub flapping: Vec<FlapView>,
    pub unstable_keys: Vec<UnstableKeyView>,
    pub churn: Vec<ChurnView>,
}

impl FlapsReport {
    pub fn of(p: &Projections, cluster: Option<&str>, seq: u64) -> Self {
        Self {
            seq,
            flapping: p.findings().flaps(cluster),
            unstable_keys: p.unstable_keys(cluster),
            churn: p.findings().churn(cluster),
        }
    }
}

/// The `stuck --json` report.
#[derive(Debug, Serialize)]
pub struct StuckOutput {
    /// The log position the report is at (`seq`, as in the HTTP API's answers).
    pub seq: u64,
    #[serde(flatten)]
    pub report: StuckReport,
}

impl StuckOutput {
    /// The report of `cluster` (or every cluster), stale alerts judged at `reference` (each
    /// cluster's clock when `None`).
    pub fn of(
        p: &Projections,
        cluster: Option<&str>,
        reference: Option<tidemark_core::Timestamp>,
        seq: u64,
    ) -> Self {
        Self {
            seq,
            report: p.findings().stuck_page(cluster, reference, usize::MAX).0,
        }
    }
}

/// The `orphans --json [--candidates]` report.
#[derive(Debug, Serialize)]
pub struct OrphansOutput {
    /// The log position the report is at (`seq`, as in the HTTP API's answers).
    pub seq: u64,
    pub orphans: Vec<OrphanView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<OrphanView>>,
}

impl OrphansOutput {
    pub fn of(p: &Projections, cluster: Option<&str>, candidates: bool, seq: u64) -> Self {
        Self {
            seq,
            orphans: p.orphans().orphans(cluster),
            candidates: candidates.then(|| p.orphans().candidates(cluster)),
        }
    }
}

/// The `incidents --json [--all]` report.
#[derive(Debug, Serialize)]
pub struct IncidentsOutput {
    /// The log position the report is at (`seq`, as in the HTTP API's answers).
    pub seq: u64,
    pub incidents: Vec<IncidentView>,
}

impl IncidentsOutput {
    pub fn of(p: &Projections, cluster: Option<&str>, all: bool, seq: u64) -> Self {
        Self {
            seq,
            incidents: p.incidents().views(p.findings(), cluster, all),
        }
    }
}
