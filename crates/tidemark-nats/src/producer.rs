//! Publishing events with acknowledgements: `Nats-Msg-Id` = event id, bounded publishes in
//! flight, retries on timeouts and leader changes that cannot create duplicates.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use tidemark_core::{Event, encode_event};

use crate::config::subject_for;

/// What happened to one published event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Published {
    /// Stored by the stream at this sequence.
    Stored {
        /// Stream sequence.
        seq: u64,
    },
    /// The stream already had this id (within its duplicate window), at this sequence.
    Duplicate {
        /// Stream sequence of the first copy.
        seq: u64,
    },
    /// Not stored, after every retry.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Tuning of a producer.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// Subject prefix of the stream.
    pub subject_prefix: String,
    /// Publishes awaiting their ack at once.
    pub max_in_flight: usize,
    /// Attempts per event before giving up.
    pub attempts: u32,
    /// First retry delay; doubles per attempt, at most 5 s.
    pub retry_delay: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            subject_prefix: "tidemark.events".to_owned(),
            max_in_flight: 1_024,
            attempts: 12,
            retry_delay: Duration::from_millis(100),
        }
    }
}

/// Publishes events to the stream.
#[derive(Clone, Debug)]
pub struct Producer {
    js: jetstream::Context,
    config: ProducerConfig,
}

impl Producer {
    /// A producer over a JetStream context.
    pub fn new(js: jetstream::Context, config: ProducerConfig) -> Self {
        Self { js, config }
    }

    /// Publishes `events`, at most `max_in_flight` at once, and answers each in order.
    pub async fn publish_all(&self, events: Vec<Event>) -> Vec<Published> {
        let in_flight = self.config.max_in_flight.max(1);
        futures::stream::iter(events.into_iter().map(|event| {
            let producer = self.clone();
            async move { producer.publish(&event).await }
        }))
        .buffered(in_flight)
        .collect()
        .await
    }

    /// Publishes one event and waits for its ack, retrying what can be retried. The same
    /// `Nats-Msg-Id` on every attempt makes retries safe: a copy that did reach the stream is
    /// answered `Duplicate` with its sequence.
    pub async fn publish(&self, event: &Event) -> Published {
        let subject = subject_for(&self.config.subject_prefix, event);
        let payload = Bytes::from(encode_event(event));
        let mut delay = self.config.retry_delay;
        let mut last_error = String::new();
        for attempt in 1..=self.config.attempts.max(1) {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(event.id.as_str());
            let outcome = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(ack) if ack.duplicate => return Published::Duplicate { seq: ack.sequence },
                Ok(ack) => return Published::Stored { seq: ack.sequence },
                Err(e) => {
                    let retryable = matches!(
                        e.kind(),
                        PublishErrorKind::TimedOut
                            | PublishErrorKind::StreamNotFound
                            | PublishErrorKind::BrokenPipe
                            | PublishErrorKind::MaxAckPending
                            | PublishErrorKind::Other
                    );
                    last_error = e.to_string();
                    if !retryable {
                        break;
                    }
                    tracing::debug!(id = %event.id, attempt, error = %e, "publish failed; retrying with the same Nats-Msg-Id");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        Published::Failed {
            reason: format!("event {:?}: {last_error}", event.id.as_str()),
        }
    }
}
