//! Tidemark's HTTP server: the `/v1` API over the embedded store, with a single writer thread
//! that group-commits concurrent ingest requests.
//!
//! Layout: `routes` is the one list of routes, a module per resource with its handlers;
//! `openapi` builds the document from that list; `extract` has the extractors whose rejection
//! is an [`ApiError`]; `read` what the read routes share; `ingest` turns bodies into inputs and
//! answers them; `state` is what handlers share. Everything else is a private detail: the
//! public API is this file's items and re-exports.

mod auth;
mod connections;
mod content_type;
mod cursor;
mod error;
mod extract;
mod ingest;
mod metrics;
mod openapi;
#[cfg(test)]
mod property;
mod read;
mod replica;
mod routes;
mod state;
mod stream;
mod time_travel;
mod web;
mod writer;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use tidemark_store::Store;
use tokio::net::TcpListener;

pub use auth::{AuthConfigError, AuthPolicy, Tokens, TokensError, policy as auth_policy};
pub use connections::ConnectionLimits;
pub use error::ApiError;
pub use ingest::otlp::CLUSTER_ATTRIBUTE as OTLP_CLUSTER_ATTRIBUTE;
pub use metrics::Metrics;
pub use replica::{BoxFuture, Gauge, Health, PublishResult, Publisher};
pub use state::{AppState, Ingest, IngestLimits, OTLP_DEFAULT_CLUSTER, OtlpConfig};
pub use stream::{StreamHub, StreamLimits};
pub use time_travel::{TimeTravel, TimeTravelConfig};
pub use writer::{Writer, WriterClient};

/// Limits and sizes of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Items per ingest request (413 above), and rejected items an answer lists one by one.
    pub ingest: IngestLimits,
    /// Requests waiting for the writer before new ones wait to be queued.
    pub queue_capacity: usize,
    /// Most inputs committed in one transaction.
    pub max_batch_inputs: usize,
    /// Who may read and write (see [`auth_policy`]).
    pub auth: AuthPolicy,
    /// How Alertmanager webhooks become events (the cluster of alerts without a cluster label).
    pub bridge: tidemark_core::alertmanager::BridgeConfig,
    /// How OTLP spans become events (the cluster of spans whose resource names none).
    pub otlp: OtlpConfig,
    /// How many past states (`?at=`) may be in memory at once, and how long requests wait.
    pub time_travel: TimeTravelConfig,
    /// Read timeouts, the connection limit and the shutdown grace period.
    pub connections: ConnectionLimits,
    /// Subscribers of `GET /v1/stream`, their buffers and heartbeats.
    pub stream: StreamLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            ingest: IngestLimits::default(),
            queue_capacity: 1_024,
            max_batch_inputs: 8_192,
            auth: AuthPolicy::Open,
            bridge: tidemark_core::alertmanager::BridgeConfig::default(),
            otlp: OtlpConfig::default(),
            time_travel: TimeTravelConfig::default(),
            connections: ConnectionLimits::default(),
            stream: StreamLimits::default(),
        }
    }
}

/// The router over `state`: every route of the table (`routes`), behind the body limit, the
/// body read deadline, the auth check and the request counter.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new();
    for route in routes::all() {
        app = app.route(route.path, route.handler);
    }
    app.fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(from_fn_with_state(
            state.metrics.clone(),
            connections::body_deadline,
        ))
        .layer(from_fn_with_state(state.auth.clone(), auth::require))
        .layer(from_fn_with_state(state.metrics.clone(), metrics::count))
        .with_state(state)
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// How the server gets its data.
pub enum Mode {
    /// One process: ingest appends to the local store through the writer thread.
    Embedded,
    /// A replica of a distributed log: ingest publishes, a follower applies.
    Replica {
        /// Publishes ingested events.
        publisher: Arc<dyn Publisher>,
        /// The follower's health.
        health: Arc<dyn Health>,
        /// Where the follower counts what it applies (`tidemark_events_ingested_total`,
        /// `tidemark_batch_apply_seconds`), as the writer does in embedded mode; the server
        /// adds its own counts and renders them at `/metrics`.
        metrics: Arc<Metrics>,
    },
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Embedded => "Mode::Embedded",
            Self::Replica { .. } => "Mode::Replica",
        })
    }
}

/// Serves on `listener` until `shutdown` resolves, then lets in-flight requests finish within
/// the grace period (dropping the connections still open after it); in embedded mode, drains
/// the writer (committing every batch handed to it) and writes a snapshot.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    config: ServerConfig,
    mode: Mode,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (writer, ingest, metrics) = match mode {
        Mode::Embedded => {
            let metrics = Arc::new(Metrics::default());
            let (writer, client) = Writer::spawn_with_metrics(
                store.clone(),
                config.queue_capacity,
                config.max_batch_inputs,
                Some(metrics.clone()),
            );
            (Some(writer), Ingest::Local(client), metrics)
        }
        Mode::Replica {
            publisher,
            health,
            metrics,
        } => (None, Ingest::Publish { publisher, health }, metrics),
    };
    let stream = StreamHub::for_store(&store, config.stream.clone());
    let app = router(AppState {
        store: store.clone(),
        ingest,
        max_body_bytes: config.max_body_bytes,
        limits: config.ingest,
        auth: config.auth.clone(),
        bridge: Arc::new(config.bridge.clone()),
        otlp: Arc::new(config.otlp.clone()),
        metrics: metrics.clone(),
        time_travel: Arc::new(TimeTravel::new(config.time_travel.clone())),
        stream: stream.clone(),
    });
    // Open streams end (each told where to resume) as soon as shutting down starts, so that
    // they do not hold the shutdown for its grace period.
    let shutdown = async move {
        shutdown.await;
        stream.close();
    };
    connections::serve(listener, app, config.connections.clone(), metrics, shutdown).await;
    // Every connection is closed and the router (holding the last writer client) is gone.
    let joined = tokio::task::spawn_blocking(move || {
        if let Some(writer) = writer {
            writer.join();
        }
        if let Err(error) = store.snapshot_now() {
            tracing::error!(%error, "could not write the shutdown snapshot; the next start replays the log tail");
        }
    })
    .await;
    if joined.is_err() {
        tracing::error!("the shutdown task panicked");
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
