//! Connection, auth and stream settings, and the subject an event is published on.

use std::path::PathBuf;
use std::time::Duration;

use tidemark_core::Event;

/// How to reach and authenticate to NATS.
#[derive(Clone, Debug, Default)]
pub struct NatsAuth {
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password (with `user`).
    pub password: Option<String>,
    /// Token authentication.
    pub token: Option<String>,
    /// A `.creds` file (JWT + nkey seed).
    pub creds_file: Option<PathBuf>,
    /// CA certificate(s) to trust (PEM).
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), with `tls_key`, for mutual TLS.
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Refuse to talk without TLS.
    pub require_tls: bool,
}

/// The JetStream stream Tidemark's events live in.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// Stream name.
    pub name: String,
    /// Subject prefix; events go to `<prefix>.<cluster>.<type>`.
    pub subject_prefix: String,
    /// Replicas (1 on one node, 3 on a cluster).
    pub replicas: usize,
    /// How long the stream remembers `Nats-Msg-Id`s to drop duplicates.
    pub duplicate_window: Duration,
    /// Size limit in bytes (`None`: unlimited).
    pub max_bytes: Option<i64>,
    /// Age limit (`None`: keep forever).
    pub max_age: Option<Duration>,
    /// Message count limit (`None`: unlimited).
    pub max_messages: Option<i64>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "TIDEMARK".to_owned(),
            subject_prefix: "tidemark.events".to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(600),
            max_bytes: None,
            max_age: None,
            max_messages: None,
        }
    }
}

/// Everything needed to talk to the stream.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// Server URLs, comma-separated (`nats://a:4222,nats://b:4222`).
    pub servers: String,
    /// Authentication and TLS.
    pub auth: NatsAuth,
    /// The stream.
    pub stream: StreamSettings,
}

/// A subject token from free text: NATS tokens cannot hold `.`, `*`, `>` or whitespace, nor
/// be empty, so anything but ASCII letters, digits, `-` and `_` becomes `_`.
pub fn subject_token(text: &str) -> String {
    let token: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        "_".to_owned()
    } else {
        token
    }
}

/// `<prefix>.<cluster>.<type>`, e.g. `tidemark.events.pw-prod.cycle_completed`.
pub fn subject_for(prefix: &str, event: &Event) -> String {
    format!(
        "{prefix}.{}.{}",
        subject_token(&event.cluster),
        subject_token(event.event_type().as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_sanitised() {
        assert_eq!(subject_token("pw-prod"), "pw-prod");
        assert_eq!(subject_token("eu.west 1>*"), "eu_west_1__");
        assert_eq!(subject_token(""), "_");
        assert_eq!(subject_token("cycle.completed"), "cycle_completed");
    }
}
