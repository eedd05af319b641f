//! What every handler shares: the store, where ingested events go, the limits and counters.

use std::sync::Arc;

use tidemark_store::Store;

use crate::replica::{Health, Publisher};
use crate::writer::WriterClient;

/// Where ingested events go.
#[derive(Clone)]
pub enum Ingest {
    /// Embedded: the local writer appends them to the store.
    Local(WriterClient),
    /// Replica: they are published to the distributed log, which the follower applies.
    Publish {
        /// The log.
        publisher: Arc<dyn Publisher>,
        /// The follower's health.
        health: Arc<dyn Health>,
    },
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(_) => f.write_str("Ingest::Local"),
            Self::Publish { .. } => f.write_str("Ingest::Publish"),
        }
    }
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The store, for reads.
    pub store: Arc<Store>,
    /// Where ingested events go.
    pub ingest: Ingest,
    /// The request body limit, for messages.
    pub max_body_bytes: usize,
    /// Items per request, and how much of them an answer details.
    pub limits: IngestLimits,
    /// Who may read and write.
    pub auth: crate::auth::AuthPolicy,
    /// How Alertmanager webhooks become events.
    pub bridge: Arc<tidemark_core::alertmanager::BridgeConfig>,
    /// How OTLP spans become events (`POST /v1/traces`).
    pub otlp: Arc<OtlpConfig>,
    /// Request and ingest counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The bound on past states (`?at=`) in memory, shared between requests.
    pub time_travel: Arc<crate::time_travel::TimeTravel>,
    /// The subscribers of `GET /v1/stream`.
    pub stream: Arc<crate::stream::StreamHub>,
}

/// How much one ingest request may hold, and how much of it the answer details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestLimits {
    /// Items (events, or alerts of a webhook) in one request; more refuse it whole (413).
    pub max_items_per_request: usize,
    /// Rejected items an answer lists one by one; past them it counts them by reason.
    pub max_rejected_listed: usize,
}

impl Default for IngestLimits {
    /// 10,000 items (an 8 MiB body of typical 300 B–2 KB events holds 4,000–25,000; the answer
    /// stays under about 1 MB) and 100 rejected items listed.
    fn default() -> Self {
        Self {
            max_items_per_request: 10_000,
            max_rejected_listed: 100,
        }
    }
}

/// The cluster of spans whose resource names none, unless configured.
pub const OTLP_DEFAULT_CLUSTER: &str = "default";
/// How OTLP spans become events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The cluster of spans whose resource has no `k8s.cluster.name` attribute
    /// (`--otlp-default-cluster`).
    pub default_cluster: String,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            default_cluster: OTLP_DEFAULT_CLUSTER.to_owned(),
        }
    }
}
