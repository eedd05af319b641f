//! `tidemark serve`: the embedded default, one process with its redb file and the HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tidemark_server::ServerConfig;

use crate::runtime::{bind, runtime};
use crate::store_cmds::{DbArgs, ingest_files, open_store_with, print_summary};
use crate::{CliError, exit};

/// Serve the HTTP API over the embedded store.
#[derive(Args, Debug)]
#[command(
    long_about = "Runs Tidemark embedded: one process, one redb file, no broker. Serves the \
                  /v1 API (events, findings, flaps, stuck, orphans, incidents, postmortems; \
                  /v1/openapi.json describes it), the web timeline at /, /healthz, /readyz and \
                  /metrics. With tokens (--tokens FILE, TIDEMARK_TOKENS) requests need \
                  `Authorization: Bearer TOKEN`: read tokens for GET, write tokens for POST (a \
                  `tidemark_token` cookie only reads). POST bodies must be application/json or \
                  application/x-ndjson (POST /v1/traces: OTLP/HTTP, application/x-protobuf or \
                  application/json). Without tokens it serves loopback only, unless \
                  --insecure. SIGINT or SIGTERM stops it gracefully: requests in flight have \
                  --shutdown-grace to finish, and every batch handed to the writer is committed. \
                  docs/limits.md lists every limit and its flag."
)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on (port 0 picks a free one and prints it).
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Store these NDJSON logs before serving (ids already stored are skipped, so this is safe
    /// to repeat).
    #[arg(long, value_name = "FILE.ndjson")]
    pub replay: Vec<PathBuf>,
    /// Largest request body accepted; larger ones get 413.
    #[arg(long, default_value_t = 8 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Most items (events, or alerts of an Alertmanager webhook) in one ingest request; a
    /// request with more gets 413 and nothing of it is stored.
    #[arg(long, default_value_t = 10_000, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_items_per_request: usize,
    /// Rejected items an ingest answer lists one by one; past them it counts them by reason.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_rejected_listed: usize,
    #[command(flatten)]
    pub quarantine: crate::store_cmds::QuarantineBoundArgs,
    /// Write a projection snapshot at least every N events (a restart replays at most N
    /// events); the bytes rule below writes them sooner, as often as the log pays for them.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub snapshot_every: u64,
    /// Also write (and keep, for time travel) a snapshot once the log written since the last
    /// one takes R times the bytes that snapshot wrote, at least 1,000 events apart: a small
    /// live state is snapshotted often, and the snapshots kept so take at most 1/R of the log.
    /// 0: off.
    #[arg(long, default_value_t = 4, value_name = "R")]
    pub snapshot_bytes_ratio: u64,
    /// Most index entries and events one `GET /v1/events` page reads: filters that match often
    /// but rarely together answer a short (even empty) page with a `next` cursor instead of
    /// reading on in one request.
    #[arg(
        long,
        default_value_t = tidemark_store::EVENTS_SCAN_BUDGET,
        value_name = "EVENTS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub events_scan_budget: usize,
    /// After a batch failed because the disk was full, refuse writes (507) for this long before
    /// trying again; each failed try reopens the store, which re-verifies the file.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub disk_full_retry: u64,
    /// Close a connection that has not sent a request's complete headers this long after it
    /// opened or after its previous request (idle keep-alive connections, slowloris).
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = seconds())]
    pub header_read_timeout: u64,
    /// Close a connection whose client takes no byte of an answer for this long (it stopped
    /// reading a long answer or a live stream).
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = seconds())]
    pub write_stall_timeout: u64,
    /// Answer 408 to a request whose body has not fully arrived this long after its headers.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = seconds())]
    pub body_read_timeout: u64,
    /// Connections served at once. Above it, 32 more are accepted for one request each,
    /// answered only on /healthz, /readyz and /metrics (others get 503), so probes get through
    /// a flood; beyond those, connections are closed at once. Keep it well below the open
    /// files limit (`ulimit -n`).
    #[arg(long, default_value_t = 512, value_name = "N", value_parser = at_least_one())]
    pub max_connections: usize,
    /// On SIGTERM or SIGINT, let requests in flight finish for this long, then close the
    /// connections still open; what they handed to the writer is committed either way.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub shutdown_grace: u64,
    /// Past states (`?at=`) rebuilt or read at once; each is as large as the live state, so
    /// this bounds time travel's memory. Requests for the same point share one.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = at_least_one())]
    pub max_time_travel: usize,
    /// Past states kept after their last reader, for the same point asked again and as the
    /// starting point of a later position; each keeps one of --max-time-travel's slots until
    /// another point needs it (0: none).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub time_travel_cache: usize,
    /// Requests that may wait for a time travel slot; more are answered 503 at once.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub time_travel_queue: usize,
    /// How long a time travel request waits for a slot before it is answered 503 (with
    /// Retry-After).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub time_travel_wait: u64,
    /// Subscribers of `GET /v1/stream` at once (each holds a connection of --max-connections);
    /// one more is answered 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_stream_subscribers: usize,
    /// Events buffered for one stream subscriber while its connection takes them.
    #[arg(long, default_value_t = 1_024, value_name = "EVENTS", value_parser = at_least_one())]
    pub stream_buffer_events: usize,
    /// A stream subscriber whose buffer stays full this long (it is not reading) is cut off
    /// with a final `cut_off` event saying where to resume.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = seconds())]
    pub stream_max_stall: u64,
    /// A heartbeat on a stream after this long without a frame, so proxies keep it open.
    #[arg(long, default_value_t = 15, value_name = "SECONDS", value_parser = seconds())]
    pub stream_heartbeat: u64,
    /// Alertmanager webhooks: a firing alert is stored at most once per this many seconds of
    /// receive time (its re-send bucket), so Alertmanager's re-sends (every `repeat_interval`)
    /// tell Tidemark it is still firing without flooding the log. Keep it below
    /// `repeat_interval`, or re-sends land in one bucket and an alert can look stale.
    #[arg(
        long,
        default_value_t = tidemark_core::alertmanager::DEFAULT_RESEND_BUCKET_SECS,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub alert_resend_bucket_secs: u64,
    /// OTLP traces (`POST /v1/traces`): the cluster of spans whose resource has no
    /// `k8s.cluster.name` attribute.
    #[arg(long, default_value = tidemark_server::OTLP_DEFAULT_CLUSTER, value_name = "NAME",
          value_parser = non_blank())]
    pub otlp_default_cluster: String,
    /// With --nats: /readyz answers 503 while the replica is more than this many events behind.
    #[arg(long, default_value_t = 1_000, value_name = "EVENTS")]
    pub max_lag: u64,
    /// With --nats: how long `POST /v1/events` waits for the stream to acknowledge its events
    /// (retries included). Events not acknowledged by then are answered 503 `unknown`: they may
    /// still be stored; retrying with the same ids is safe.
    #[arg(
        long,
        env = "TIDEMARK_PUBLISH_TIMEOUT_SECS",
        default_value_t = 10,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=3_600)
    )]
    pub publish_timeout_secs: u64,
    /// Follow a NATS JetStream stream instead of running alone (distributed mode).
    #[command(flatten)]
    pub nats: crate::distributed::NatsArgs,
    /// A tokens file: lines `read TOKEN` or `write TOKEN` (write includes read), `#` comments.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Tokens as `read:TOKEN,write:TOKEN` (added to --tokens).
    #[arg(
        long = "tokens-env",
        env = "TIDEMARK_TOKENS",
        hide_env_values = true,
        value_name = "LIST"
    )]
    pub tokens_env: Option<String>,
    /// Serve without tokens on an address other machines can reach (only behind something
    /// that authenticates).
    #[arg(long)]
    pub insecure: bool,
}

/// A number of seconds, 1 or more.
fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(1..)
}

/// A name that is not blank.
fn non_blank() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::TypedValueParser as _;
    clap::builder::NonEmptyStringValueParser::new().try_map(|value: String| {
        if value.trim().is_empty() {
            Err("a cluster name cannot be blank")
        } else {
            Ok(value)
        }
    })
}

/// A count of 1 or more.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

/// The auth policy from --tokens, TIDEMARK_TOKENS and --insecure, for `listen`.
pub fn auth_policy(
    tokens_file: Option<&PathBuf>,
    tokens_env: Option<&str>,
    listen: SocketAddr,
    insecure: bool,
) -> Result<tidemark_server::AuthPolicy, CliError> {
    let mut tokens = tidemark_server::Tokens::none();
    if let Some(file) = tokens_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            CliError::new(
                exit::NO_INPUT,
                anyhow::anyhow!("cannot read the tokens file {}: {e}", file.display()),
            )
        })?;
        tokens
            .add_file_text(&file.display().to_string(), &text)
            .map_err(|e| CliError::new(exit::USAGE, e))?;
    }
    if let Some(value) = tokens_env {
        tokens
            .add_env_value("TIDEMARK_TOKENS", value)
            .map_err(|e| CliError::new(exit::USAGE, e))?;
    }
    tidemark_server::auth_policy(tokens, listen, insecure)
        .map_err(|e| CliError::new(exit::USAGE, e))
}

pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    let auth = auth_policy(
        args.tokens.as_ref(),
        args.tokens_env.as_deref(),
        args.listen,
        args.insecure,
    )?;
    let store_config = tidemark_store::StoreConfig {
        snapshot_every: args.snapshot_every.max(1),
        snapshot_bytes_ratio: args.snapshot_bytes_ratio,
        disk_full_retry: Duration::from_secs(args.disk_full_retry),
        events_scan_budget: args.events_scan_budget,
        quarantine: args.quarantine.limits(),
        ..tidemark_store::StoreConfig::default()
    };
    let store = Arc::new(open_store_with(&args.db.db, store_config)?);
    let server_config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        ingest: tidemark_server::IngestLimits {
            max_items_per_request: args.max_items_per_request,
            max_rejected_listed: args.max_rejected_listed,
        },
        auth,
        time_travel: tidemark_server::TimeTravelConfig {
            max_concurrent: args.max_time_travel,
            max_queued: args.time_travel_queue,
            max_wait: Duration::from_secs(args.time_travel_wait),
            cache: args.time_travel_cache,
        },
        connections: tidemark_server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            body_read_timeout: Duration::from_secs(args.body_read_timeout),
            max_connections: args.max_connections,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            write_stall_timeout: Duration::from_secs(args.write_stall_timeout),
        },
        stream: tidemark_server::StreamLimits {
            max_subscribers: args.max_stream_subscribers,
            buffer_events: args.stream_buffer_events,
            max_stall: Duration::from_secs(args.stream_max_stall),
            heartbeat: Duration::from_secs(args.stream_heartbeat),
        },
        bridge: tidemark_core::alertmanager::BridgeConfig {
            resend_bucket_secs: args.alert_resend_bucket_secs,
            ..tidemark_core::alertmanager::BridgeConfig::default()
        },
        otlp: tidemark_server::OtlpConfig {
            default_cluster: args.otlp_default_cluster.clone(),
        },
        ..ServerConfig::default()
    };
    if args.nats.url.is_some() {
        if !args.replay.is_empty() {
            return Err(CliError::new(
                exit::USAGE,
                anyhow::anyhow!(
                    "--replay writes locally; with --nats publish the file instead: tidemark emit --nats URL FILE"
                ),
            ));
        }
        return crate::distributed::serve_replica(
            &args.nats,
            store,
            args.listen,
            server_config,
            crate::distributed::ReplicaSettings {
                max_lag: args.max_lag,
                publish_timeout: std::time::Duration::from_secs(args.publish_timeout_secs),
            },
        );
    }
    if !args.replay.is_empty() {
        let summary = ingest_files(&store, &args.replay, false, 4_096)?;
        print_summary(&summary, &args.db.db);
    }
    let runtime = runtime()?;
    runtime.block_on(async {
        let (listener, addr) = bind(args.listen).await?;
        eprintln!("tidemark: serving {} on http://{addr} (Ctrl-C to stop)", args.db.db.display());
        tracing::info!(%addr, db = %args.db.db.display(), checkpoint = store.checkpoint(), "listening");
        let mode = tidemark_server::Mode::Embedded;
        tidemark_server::serve(listener, store, server_config, mode, tidemark_server::shutdown_signal())
            .await
            .map_err(|e| CliError::new(exit::FAILURE, e))
    })?;
    // The store is committed and snapshotted; a read still rebuilding a past state for a
    // client that is gone is not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    eprintln!("tidemark: stopped cleanly");
    Ok(())
}
