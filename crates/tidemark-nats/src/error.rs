//! Errors of the NATS side. Messages are lowercase and say what to do next.

/// What went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The options do not make sense.
    #[error("nats options: {0}")]
    Config(String),
    /// The first connection could not be set up.
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// The stream could not be created, updated or read.
    #[error("{0}")]
    Stream(String),
}
