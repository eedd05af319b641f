//! Publishing events with acknowledgements: `Nats-Msg-Id` = event id, bounded publishes in
//! flight, retries on timeouts and leader changes that cannot create duplicates.

use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

use tidemark_core::{Event, Payload, Timestamp, encode_event};

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

    /// Publishes `events` in order, with up to `max_in_flight` acks outstanding, and answers
    /// each in order.
    ///
    /// Messages are queued on the connection in the order given, so without faults the stream
    /// holds them in that order. An event whose publish fails is retried after the others (with
    /// the same `Nats-Msg-Id`, so it is never stored twice): around a fault, it can land after
    /// events published after it. Producers that need strict order use `max_in_flight = 1`:
    /// then each event is acknowledged (retried in place if need be) before the next is sent.
    pub async fn publish_all(&self, events: Vec<Event>) -> Vec<Published> {
        let max_in_flight = self.config.max_in_flight.max(1);
        if max_in_flight == 1 {
            let mut results = Vec::with_capacity(events.len());
            for event in &events {
                results.push(self.publish(event).await);
            }
            return results;
        }
        let mut results: Vec<Option<Published>> = vec![None; events.len()];
        // Acks are awaited concurrently: an ack's timeout starts when it is polled, so awaiting
        // lost acks one after another (after a disconnect) would add their timeouts up.
        let mut in_flight = FuturesUnordered::new();
        let mut retry: Vec<usize> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            while in_flight.len() >= max_in_flight {
                let (done, ack) = in_flight.next().await.expect("not empty");
                settle(done, ack, &mut results, &mut retry);
            }
            let message = PublishMessage::build()
                .payload(Bytes::from(encode_event(event)))
                .message_id(event.id.as_str());
            match self
                .js
                .send_publish(subject_for(&self.config.subject_prefix, event), message)
                .await
            {
                Ok(ack) => in_flight.push(async move { (index, ack.await) }),
                Err(e) => {
                    tracing::debug!(index, error = %e, "queueing failed; will retry");
                    retry.push(index);
                }
            }
        }
        while let Some((done, ack)) = in_flight.next().await {
            settle(done, ack, &mut results, &mut retry);
        }
        retry.sort_unstable();
        if !retry.is_empty() {
            tracing::debug!(
                events = events.len(),
                retrying = retry.len(),
                "publishes to retry"
            );
        }
        for index in retry {
            results[index] = Some(self.publish(&events[index]).await);
        }
        results
            .into_iter()
            .map(|r| r.expect("every event was answered"))
            .collect()
    }

    /// Publishes a typed payload (`Payload::CycleCompleted(..)`, `Payload::NoteAdded(..)`, ...)
    /// as a new event of `cluster` from `source` at `time`, with a fresh time-ordered id, and
    /// returns the event it published with the outcome. Invalid payloads are refused by
    /// replicas into quarantine, so callers build payloads from the typed structs.
    pub async fn publish_payload(
        &self,
        source: &str,
        cluster: &str,
        time: Timestamp,
        payload: Payload,
    ) -> (Event, Published) {
        let event = Event::new(new_event_id(), time, source, cluster, payload);
        let outcome = self.publish(&event).await;
        (event, outcome)
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

/// Records an ack, or schedules the event for a retry.
fn settle(
    index: usize,
    ack: Result<PublishAck, PublishError>,
    results: &mut [Option<Published>],
    retry: &mut Vec<usize>,
) {
    match ack {
        Ok(ack) if ack.duplicate => {
            results[index] = Some(Published::Duplicate { seq: ack.sequence })
        }
        Ok(ack) => results[index] = Some(Published::Stored { seq: ack.sequence }),
        Err(_) => retry.push(index),
    }
}

/// A new event id: the wall clock in nanoseconds, this process and a counter, so ids sort by
/// creation time (like ULIDs) and never repeat within a process.
pub fn new_event_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:020}-{:08x}-{count:06}", std::process::id())
}
