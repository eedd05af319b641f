//! The distributed mode: `serve --nats`, `emit`, `republish`, and the adapters that let the
//! server publish to JetStream and report the follower's health without knowing NATS.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tidemark_core::event::CURRENT_SCHEMA;
use tidemark_core::{Event, EventType, Timestamp, decode_event};
use tidemark_nats::connect::JetStreamContext;
use tidemark_nats::{
    FollowerConfig, FollowerStatus, NatsAuth, NatsConfig, Producer, ProducerConfig, Published,
    StreamSettings,
};
use tidemark_server::{BoxFuture, Gauge, Health, PublishResult, Publisher};

use crate::ndjson::{byte_progress, for_each_event};
use crate::runtime::{bind, runtime};
use crate::store_cmds::{DbArgs, open_existing};
use crate::{CliError, exit};

/// Where the NATS servers are, how to authenticate, and the stream.
#[derive(Args, Debug, Clone)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated, e.g. nats://127.0.0.1:4222.
    #[arg(long = "nats", value_name = "URL", env = "TIDEMARK_NATS")]
    pub url: Option<String>,
    /// User name (with --nats-password).
    #[arg(long, env = "TIDEMARK_NATS_USER")]
    pub nats_user: Option<String>,
    /// Password (with --nats-user).
    #[arg(long, env = "TIDEMARK_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// Token authentication.
    #[arg(long, env = "TIDEMARK_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// A .creds file (JWT and nkey seed).
    #[arg(long, value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// CA certificate(s) to trust (PEM).
    #[arg(long, value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with --nats-tls-key.
    #[arg(long, value_name = "FILE")]
    pub nats_tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, value_name = "FILE")]
    pub nats_tls_key: Option<PathBuf>,
    /// Refuse to connect without TLS.
    #[arg(long)]
    pub nats_require_tls: bool,
    /// JetStream stream name.
    #[arg(long, default_value = "TIDEMARK")]
    pub stream: String,
    /// Subject prefix: events go to PREFIX.<cluster>.<type>.
    #[arg(long, default_value = "tidemark.events")]
    pub subject_prefix: String,
    /// Stream replicas (1 on one node; 3 on a cluster).
    #[arg(long, default_value_t = 1)]
    pub stream_replicas: usize,
    /// How long the stream drops repeated event ids (seconds).
    #[arg(long, default_value_t = 600)]
    pub stream_duplicate_window_secs: u64,
    /// Stream size limit in bytes (default: unlimited).
    #[arg(long)]
    pub stream_max_bytes: Option<i64>,
    /// Stream age limit in seconds (default: keep forever).
    #[arg(long)]
    pub stream_max_age_secs: Option<u64>,
}

impl NatsArgs {
    /// The server URL(s), required by commands that talk to NATS.
    pub fn url(&self) -> Result<&str, CliError> {
        self.url.as_deref().ok_or_else(|| {
            CliError::new(
                exit::USAGE,
                anyhow::anyhow!("--nats URL is required (or set TIDEMARK_NATS)"),
            )
        })
    }

    fn config(&self) -> NatsConfig {
        NatsConfig {
            servers: self.url.clone().unwrap_or_default(),
            auth: NatsAuth {
                user: self.nats_user.clone(),
                password: self.nats_password.clone(),
                token: self.nats_token.clone(),
                creds_file: self.nats_creds.clone(),
                tls_ca: self.nats_tls_ca.clone(),
                tls_cert: self.nats_tls_cert.clone(),
                tls_key: self.nats_tls_key.clone(),
                require_tls: self.nats_require_tls,
            },
            stream: StreamSettings {
                name: self.stream.clone(),
                subject_prefix: self.subject_prefix.clone(),
                replicas: self.stream_replicas,
                duplicate_window: Duration::from_secs(self.stream_duplicate_window_secs),
                max_bytes: self.stream_max_bytes,
                max_age: self.stream_max_age_secs.map(Duration::from_secs),
                max_messages: None,
            },
        }
    }

    /// Connects and provisions the stream.
    async fn jetstream(&self, name: &str) -> Result<JetStreamContext, CliError> {
        let url = self.url()?.to_owned();
        let config = self.config();
        let client = tidemark_nats::connect(&config, name)
            .await
            .map_err(|e| CliError::new(exit::FAILURE, e))?;
        let js = tidemark_nats::connect::jetstream_context(client);
        tidemark_nats::ensure_stream(&js, &config.stream).await.map_err(|e| {
            CliError::new(
                exit::FAILURE,
                anyhow::anyhow!("{e}\nis a JetStream-enabled nats-server reachable at {url}? (see docs/distributed.md)"),
            )
        })?;
        Ok(js)
    }

    fn producer(&self, js: JetStreamContext) -> Producer {
        self.producer_with(js, ProducerConfig::default().max_in_flight, None)
    }

    fn producer_with(
        &self,
        js: JetStreamContext,
        max_in_flight: usize,
        deadline: Option<Duration>,
    ) -> Producer {
        Producer::new(
            js,
            ProducerConfig {
                subject_prefix: self.subject_prefix.clone(),
                max_in_flight,
                deadline,
                ..ProducerConfig::default()
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Adapters for the server

struct NatsPublisher(Producer);

impl Publisher for NatsPublisher {
    fn publish(&self, events: Vec<Event>) -> BoxFuture<'_, Vec<PublishResult>> {
        Box::pin(async move {
            self.0
                .publish_all(events)
                .await
                .into_iter()
                .map(|p| match p {
                    Published::Stored { seq } => PublishResult::Published { seq },
                    Published::Duplicate { seq } => PublishResult::Duplicate { seq },
                    Published::Unknown { reason } => PublishResult::Unknown { reason },
                    Published::Failed { reason } => PublishResult::Failed { reason },
                })
                .collect()
        })
    }
}

struct FollowerHealth {
    status: Arc<Mutex<FollowerStatus>>,
    max_lag: u64,
}

impl Health for FollowerHealth {
    fn readiness(&self) -> (bool, serde_json::Value) {
        let status = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (ready, state) = if let Some(reason) = &status.diverged {
            (false, format!("diverged: {reason}"))
        } else if !status.consuming {
            (false, "not consuming: connecting to the stream".to_owned())
        } else if status.lag > self.max_lag {
            (
                false,
                format!(
                    "catching up: {} behind (ready at {} or less)",
                    status.lag, self.max_lag
                ),
            )
        } else {
            (true, "ready".to_owned())
        };
        (
            ready,
            serde_json::json!({"status": state, "follower": status}),
        )
    }

    fn gauges(&self) -> Vec<Gauge> {
        let s = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        vec![
            Gauge {
                name: "tidemark_follower_lag",
                help: "stream last sequence minus checkpoint",
                value: s.lag as f64,
            },
            Gauge {
                name: "tidemark_follower_stream_last_seq",
                help: "stream last sequence",
                value: s.stream_last_seq as f64,
            },
            Gauge {
                name: "tidemark_follower_consuming",
                help: "1 while a consumer is reading",
                value: f64::from(u8::from(s.consuming)),
            },
            Gauge {
                name: "tidemark_follower_diverged",
                help: "1 when the stream no longer holds what this replica stored",
                value: f64::from(u8::from(s.diverged.is_some())),
            },
            Gauge {
                name: "tidemark_follower_applied",
                help: "events applied by this process",
                value: s.since_start.applied as f64,
            },
            Gauge {
                name: "tidemark_follower_quarantined",
                help: "messages quarantined by this process",
                value: s.since_start.quarantined as f64,
            },
        ]
    }
}

/// How a replica serves, beside the server's own settings.
#[derive(Clone, Copy, Debug)]
pub struct ReplicaSettings {
    /// `/readyz` answers 503 while the follower is more than this many events behind.
    pub max_lag: u64,
    /// How long `POST /v1/events` waits for the stream's acknowledgements.
    pub publish_timeout: Duration,
}

/// `serve --nats`: follow the stream into the local store and serve it; ingest publishes.
pub fn serve_replica(
    nats: &NatsArgs,
    store: Arc<tidemark_store::Store>,
    listen: std::net::SocketAddr,
    config: tidemark_server::ServerConfig,
    settings: ReplicaSettings,
) -> Result<(), CliError> {
    runtime()?.block_on(async {
        let js = nats.jetstream("tidemark-serve").await?;
        // What the follower applies is what this replica ingests: counted as the writer counts
        // it in embedded mode, under the same metric names.
        let metrics = Arc::new(tidemark_server::Metrics::default());
        let counted = metrics.clone();
        let follower = tidemark_nats::spawn_observed_follower(
            store.clone(),
            js.clone(),
            FollowerConfig {
                stream: nats.stream.clone(),
                ..FollowerConfig::default()
            },
            Arc::new(move |took, counts| {
                counted.batch(took, counts.applied, counts.duplicates, counts.quarantined)
            }),
        );
        let producer = nats.producer_with(
            js,
            ProducerConfig::default().max_in_flight,
            Some(settings.publish_timeout),
        );
        let mode = tidemark_server::Mode::Replica {
            publisher: Arc::new(NatsPublisher(producer)),
            health: Arc::new(FollowerHealth {
                status: follower.status_handle(),
                max_lag: settings.max_lag,
            }),
            metrics,
        };
        let (listener, addr) = bind(listen).await?;
        eprintln!(
            "tidemark: replica of stream {} at {} serving on http://{addr} (Ctrl-C to stop)",
            nats.stream,
            nats.url.as_deref().unwrap_or_default()
        );
        let served = tidemark_server::serve(
            listener,
            store,
            config,
            mode,
            tidemark_server::shutdown_signal(),
        )
        .await;
        follower.stop().await;
        served.map_err(|e| CliError::new(exit::FAILURE, e))
    })
}

// ---------------------------------------------------------------------------------------------
// emit

/// Publish events to the stream: from NDJSON (a file or stdin) or one built from flags.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what_to_emit").required(true).args(["input", "event_type"])))]
pub struct EmitArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// NDJSON file of events, or - for stdin.
    pub input: Option<PathBuf>,
    /// Build one event of this type (with --cluster and --data).
    #[arg(long = "type", value_name = "TYPE", requires_all = ["cluster", "data"])]
    pub event_type: Option<String>,
    /// The built event's cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The built event's data, as JSON.
    #[arg(long, value_name = "JSON")]
    pub data: Option<String>,
    /// The built event's source.
    #[arg(long, default_value = "tidemark-emit")]
    pub source: String,
    /// The built event's id (default: a new ULID).
    #[arg(long)]
    pub id: Option<String>,
    /// The built event's time (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<Timestamp>,
    /// Events read per round.
    #[arg(long, default_value_t = 4_096)]
    pub batch: usize,
    /// Publishes awaiting their ack at once. Events land in the order given; one that must be
    /// retried after a fault can land after later ones unless this is 1.
    #[arg(long, default_value_t = 1_024)]
    pub max_in_flight: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Serialize)]
struct EmitSummary {
    published: u64,
    duplicates: u64,
    /// Sent but not acknowledged: they may be in the stream.
    unknown: u64,
    failed: u64,
    rejected: u64,
    failures: Vec<String>,
}

impl EmitSummary {
    fn count(&mut self, results: &[Published]) {
        for result in results {
            match result {
                Published::Stored { .. } => self.published += 1,
                Published::Duplicate { .. } => self.duplicates += 1,
                Published::Unknown { reason } => {
                    self.unknown += 1;
                    if self.failures.len() < 100 {
                        self.failures.push(reason.clone());
                    }
                }
                Published::Failed { reason } => {
                    self.failed += 1;
                    if self.failures.len() < 100 {
                        self.failures.push(reason.clone());
                    }
                }
            }
        }
    }

    fn print(&self, json: bool) -> Result<(), CliError> {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(self).map_err(anyhow::Error::from)?
            );
        } else {
            eprintln!(
                "published {}, duplicates {} (already in the stream), unknown {} (not acknowledged), failed {}, invalid lines {}",
                self.published, self.duplicates, self.unknown, self.failed, self.rejected
            );
            for failure in self.failures.iter().take(20) {
                eprintln!("  {failure}");
            }
        }
        if self.failed + self.unknown > 0 {
            return Err(CliError::new(
                exit::FAILURE,
                anyhow::anyhow!(
                    "{} event(s) not published or not acknowledged: run the same command again (ids make it safe)",
                    self.failed + self.unknown
                ),
            ));
        }
        if self.rejected > 0 {
            return Err(CliError::new(
                exit::DATA_ERROR,
                anyhow::anyhow!(
                    "{} invalid line(s) were not published: fix them and run again (ids make it safe)",
                    self.rejected
                ),
            ));
        }
        Ok(())
    }
}

fn built_event(args: &EmitArgs, event_type: &str) -> Result<Event, CliError> {
    let now = tidemark_store::wall_clock();
    let id = args.id.clone().unwrap_or_else(tidemark_nats::new_event_id);
    let Some(known) = EventType::from_wire(event_type) else {
        return Err(CliError::new(
            exit::DATA_ERROR,
            anyhow::anyhow!("--type {event_type:?} is not an event type"),
        ));
    };
    let data: serde_json::Value = serde_json::from_str(args.data.as_deref().unwrap_or("{}"))
        .map_err(|e| CliError::new(exit::DATA_ERROR, anyhow::anyhow!("--data is not JSON: {e}")))?;
    let envelope = serde_json::json!({
        "id": id, "schema": CURRENT_SCHEMA, "type": known.as_str(), "time": args.time.unwrap_or(now),
        "source": args.source, "cluster": args.cluster, "data": data,
    });
    decode_event(&envelope.to_string()).map_err(|e| CliError::new(exit::DATA_ERROR, e))
}

pub fn emit(args: &EmitArgs) -> Result<(), CliError> {
    runtime()?.block_on(async {
        let js = args.nats.jetstream("tidemark-emit").await?;
        let producer = args.nats.producer_with(js, args.max_in_flight, None);
        let mut summary = EmitSummary::default();
        if let Some(event_type) = &args.event_type {
            let event = built_event(args, event_type)?;
            let id = event.id.clone();
            summary.count(&producer.publish_all(vec![event]).await);
            eprintln!("event id {id}");
            return summary.print(args.json);
        }
        let input = args
            .input
            .clone()
            .expect("clap requires an input or --type");
        let (reader, len): (Box<dyn BufRead + Send>, u64) = if input.as_os_str() == "-" {
            (Box::new(std::io::BufReader::new(std::io::stdin())), 0)
        } else {
            let (reader, len) = crate::ndjson::open(&input)?;
            (Box::new(reader), len)
        };
        let progress = byte_progress(len, "publishing");
        // A blocking reader hands rounds of --batch events to the publisher through a bounded
        // channel: memory stays bounded however large the input is.
        let (rounds, mut incoming) = tokio::sync::mpsc::channel::<Vec<Event>>(2);
        let batch = args.batch.max(1);
        let reader_progress = progress.clone();
        let reading = tokio::task::spawn_blocking(move || {
            let mut pending: Vec<Event> = Vec::with_capacity(batch);
            let mut invalid = Vec::new();
            for_each_event(
                reader,
                &reader_progress,
                tidemark_core::Contract::NewInput,
                |_, _, decoded| {
                    match decoded {
                        Ok(event) => pending.push(event),
                        Err(error) => invalid.push(error.to_string()),
                    }
                    if pending.len() >= batch {
                        let round = std::mem::replace(&mut pending, Vec::with_capacity(batch));
                        if rounds.blocking_send(round).is_err() {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                },
            )?;
            if !pending.is_empty() {
                let _ = rounds.blocking_send(pending);
            }
            Ok::<_, CliError>(invalid)
        });
        while let Some(round) = incoming.recv().await {
            summary.count(&producer.publish_all(round).await);
            progress.set_message(format!(
                "publishing: {} published",
                summary.published + summary.duplicates
            ));
        }
        let invalid = reading.await.map_err(|e| {
            CliError::new(exit::FAILURE, anyhow::anyhow!("reading the input: {e}"))
        })??;
        for error in &invalid {
            eprintln!("skipping {error}");
        }
        summary.rejected = invalid.len() as u64;
        progress.finish_and_clear();
        summary.print(args.json)
    })
}

// ---------------------------------------------------------------------------------------------
// republish

/// Publish events from this replica's local log back to the stream (ids preserved, so
/// dedupe keeps it safe): how a stream that lost its tail or was recreated is restored.
#[derive(Args, Debug)]
pub struct RepublishArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// First local log position to publish.
    #[arg(long, value_name = "SEQ")]
    pub from: u64,
    /// Last local log position to publish (default: the end).
    #[arg(long, value_name = "SEQ")]
    pub to: Option<u64>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn republish(args: &RepublishArgs) -> Result<(), CliError> {
    let store = open_existing(&args.db.db)?;
    runtime()?.block_on(async {
        let js = args.nats.jetstream("tidemark-republish").await?;
        let producer = args.nats.producer(js);
        let mut summary = EmitSummary::default();
        let mut from = args.from;
        let to = args.to.unwrap_or(u64::MAX);
        loop {
            let chunk = store
                .events(from, 4_096)
                .map_err(|e| CliError::new(exit::FAILURE, e))?;
            let events: Vec<Event> = chunk
                .iter()
                .filter(|(seq, _)| *seq <= to)
                .map(|(_, s)| s.event.clone())
                .collect();
            if events.is_empty() {
                break;
            }
            summary.count(&producer.publish_all(events).await);
            from = chunk.last().map_or(u64::MAX, |(seq, _)| seq + 1);
        }
        summary.print(args.json)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{EmitArgs, built_event};
    use crate::{Cli, Command};

    const NOTE: &str = r#"{"author":"me","kind":"observation","text":"restarted the pod"}"#;

    fn emit_args(extra: &[&str]) -> EmitArgs {
        let mut argv = vec![
            "tidemark",
            "emit",
            "--type",
            "note.added",
            "--cluster",
            "pw-prod",
            "--data",
            NOTE,
        ];
        argv.extend(extra);
        match Cli::try_parse_from(argv)
            .expect("a valid command line")
            .command
        {
            Command::Emit(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_built_event_gets_a_new_ulid_unless_given_an_id() {
        let args = emit_args(&[]);
        let first = built_event(&args, "note.added").expect("a valid note");
        let second = built_event(&args, "note.added").expect("a valid note");
        for id in [&first.id.0, &second.id.0] {
            assert!(ulid::Ulid::from_string(id).is_ok(), "a ULID: {id}");
        }
        assert!(first.id.0 < second.id.0, "in creation order");
        let given = emit_args(&["--id", "note-2026-03-02-1"]);
        let event = built_event(&given, "note.added").expect("a valid note");
        assert_eq!(event.id.0, "note-2026-03-02-1");
    }
}
