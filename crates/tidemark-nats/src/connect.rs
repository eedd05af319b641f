//! Connecting with the auth options users need, and provisioning the stream idempotently.

use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions};

use crate::config::{NatsConfig, StreamSettings};
use crate::error::NatsError;

/// Connects to the servers of `config`, retrying the first connection in the background and
/// reconnecting forever after that.
pub async fn connect(config: &NatsConfig, name: &str) -> Result<Client, NatsError> {
    let auth = &config.auth;
    let mut options = match (&auth.user, &auth.password, &auth.token, &auth.creds_file) {
        (Some(user), Some(password), _, _) => {
            ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        (Some(_), None, _, _) | (None, Some(_), _, _) => {
            return Err(NatsError::Config(
                "user and password go together: give both".into(),
            ));
        }
        (None, None, Some(token), _) => ConnectOptions::with_token(token.clone()),
        (None, None, None, Some(creds)) => ConnectOptions::with_credentials_file(creds)
            .await
            .map_err(|e| NatsError::Config(format!("credentials file {}: {e}", creds.display())))?,
        (None, None, None, None) => ConnectOptions::new(),
    };
    if let Some(ca) = &auth.tls_ca {
        options = options.add_root_certificates(ca.clone());
    }
    match (&auth.tls_cert, &auth.tls_key) {
        (Some(cert), Some(key)) => {
            options = options.add_client_certificate(cert.clone(), key.clone())
        }
        (None, None) => {}
        _ => {
            return Err(NatsError::Config(
                "--nats-tls-cert and --nats-tls-key go together: give both".into(),
            ));
        }
    }
    if auth.require_tls {
        options = options.require_tls(true);
    }
    let servers: Vec<String> = config
        .servers
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        return Err(NatsError::Config("no NATS server URL given".into()));
    }
    let client = options
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(std::time::Duration::from_secs(2))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("nats: connected"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("nats: disconnected; reconnecting")
                }
                other => tracing::debug!(event = %other, "nats event"),
            }
        })
        .connect(servers)
        .await
        .map_err(|e| NatsError::Connect(e.to_string()))?;
    Ok(client)
}

/// The stream configuration for `settings`.
pub fn stream_config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: settings.name.clone(),
        subjects: vec![format!("{}.>", settings.subject_prefix)],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        max_bytes: settings.max_bytes.unwrap_or(-1),
        max_age: settings.max_age.unwrap_or_default(),
        max_messages: settings.max_messages.unwrap_or(-1),
        discard: stream::DiscardPolicy::Old,
        allow_direct: true,
        ..Default::default()
    }
}

/// How long [`ensure_stream`] keeps retrying a cluster that cannot answer yet.
const PROVISIONING_PATIENCE: std::time::Duration = std::time::Duration::from_secs(90);

/// Creates the stream, or updates it to `settings`: safe to call on every start.
///
/// A cluster that is electing its meta leader, or whose peers are catching up (a node just
/// restarted, replicas starting together), times out or answers "temporarily unavailable":
/// those are retried with backoff for up to 90 s, logged, instead of failing the start.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, NatsError> {
    use jetstream::context::CreateStreamErrorKind;
    let started = std::time::Instant::now();
    let mut wait = std::time::Duration::from_millis(250);
    loop {
        let error = match js.create_or_update_stream(stream_config(settings)).await {
            Ok(_) => break,
            Err(error) => error,
        };
        let transient = match error.kind() {
            CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable => true,
            CreateStreamErrorKind::JetStream(api) => {
                let text = api.to_string().to_lowercase();
                text.contains("temporarily unavailable") || text.contains("no suitable peers")
            }
            _ => false,
        };
        if !transient || started.elapsed() >= PROVISIONING_PATIENCE {
            return Err(NatsError::Stream(format!(
                "provisioning stream {}: {error}",
                settings.name
            )));
        }
        tracing::warn!(stream = %settings.name, %error, retry_in_ms = wait.as_millis() as u64,
            "the JetStream cluster cannot provision the stream yet; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(5));
    }
    js.get_stream(&settings.name)
        .await
        .map_err(|e| NatsError::Stream(format!("opening stream {}: {e}", settings.name)))
}

/// The JetStream context type, for crates that do not depend on async-nats themselves.
pub type JetStreamContext = jetstream::Context;

/// A JetStream context over a connected client.
pub fn jetstream_context(client: Client) -> JetStreamContext {
    jetstream::new(client)
}
