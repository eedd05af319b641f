//! Publishing events with acknowledgements: `Nats-Msg-Id` = event id, bounded publishes in
//! flight, retries on timeouts and leader changes that cannot create duplicates, and an optional
//! deadline for a whole call, past which what was sent but not acknowledged is `Unknown`.

use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use std::sync::{Mutex, PoisonError};

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
    /// Sent but not acknowledged (within the deadline, or after every retry): the stream may
    /// have stored it, or may still store it (the client sends what it queued once NATS is
    /// reachable again). Publishing it again with the same id is safe: a stored copy is
    /// answered `Duplicate` by the stream, and a replica applies an id once.
    Unknown {
        /// Why.
        reason: String,
    },
    /// Never sent to NATS (refused by the client before sending, or the deadline passed before
    /// its turn): not stored. Publish it again.
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
    /// How long one call of [`Producer::publish_all`] (or [`Producer::publish`]) may take in
    /// all, retries included; `None`: until the attempts run out. Events not acknowledged by
    /// then are answered `Unknown` (or `Failed`, when they were never sent).
    pub deadline: Option<Duration>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            subject_prefix: "tidemark.events".to_owned(),
            max_in_flight: 1_024,
            attempts: 12,
            retry_delay: Duration::from_millis(100),
            deadline: None,
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
        let mut answers = Answers {
            results: vec![None; events.len()],
            sent: vec![false; events.len()],
        };
        let work = self.publish_into(&events, &mut answers);
        let unanswered = match self.config.deadline {
            None => {
                work.await;
                Unanswered::GaveUp
            }
            Some(deadline) => match tokio::time::timeout(deadline, work).await {
                Ok(()) => Unanswered::GaveUp,
                Err(_) => Unanswered::DeadlinePassed(deadline),
            },
        };
        answers
            .results
            .into_iter()
            .zip(answers.sent)
            .zip(&events)
            .map(|((result, sent), event)| result.unwrap_or_else(|| unanswered.answer(event, sent)))
            .collect()
    }

    /// Publishes `events`, writing each answer into `answers` as it comes: the caller may stop
    /// waiting at any point and still has every answer given so far.
    async fn publish_into(&self, events: &[Event], answers: &mut Answers) {
        let max_in_flight = self.config.max_in_flight.max(1);
        if max_in_flight == 1 {
            for (index, event) in events.iter().enumerate() {
                let answer = self.publish_retrying(event, &mut answers.sent[index]).await;
                answers.results[index] = Some(answer);
            }
            return;
        }
        // Acks are awaited concurrently: an ack's timeout starts when it is polled, so awaiting
        // lost acks one after another (after a disconnect) would add their timeouts up.
        let mut in_flight = FuturesUnordered::new();
        let mut retry: Vec<usize> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            while in_flight.len() >= max_in_flight {
                let (done, ack) = in_flight.next().await.expect("not empty");
                settle(done, ack, &mut answers.results, &mut retry);
            }
            let message = PublishMessage::build()
                .payload(Bytes::from(encode_event(event)))
                .message_id(event.id.as_str());
            // Counted as sent before the call: if the deadline ends the call midway, the message
            // may be queued on the connection.
            answers.sent[index] = true;
            match self
                .js
                .send_publish(subject_for(&self.config.subject_prefix, event), message)
                .await
            {
                Ok(ack) => in_flight.push(async move { (index, ack.await) }),
                Err(e) => {
                    // Not queued: this attempt cannot reach the stream.
                    answers.sent[index] = false;
                    tracing::debug!(index, error = %e, "queueing failed; will retry");
                    retry.push(index);
                }
            }
        }
        while let Some((done, ack)) = in_flight.next().await {
            settle(done, ack, &mut answers.results, &mut retry);
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
            let answer = self
                .publish_retrying(&events[index], &mut answers.sent[index])
                .await;
            answers.results[index] = Some(answer);
        }
    }

    /// Publishes a typed payload (`Payload::CycleCompleted(..)`, `Payload::NoteAdded(..)`, ...)
    /// as a new event of `cluster` from `source` at `time`, with a new ULID as its id, and
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

    /// Publishes one event and waits for its ack, retrying what can be retried, within the
    /// deadline. The same `Nats-Msg-Id` on every attempt makes retries safe: a copy that did
    /// reach the stream is answered `Duplicate` with its sequence.
    pub async fn publish(&self, event: &Event) -> Published {
        self.publish_all(vec![event.clone()])
            .await
            .pop()
            .expect("one answer per event")
    }

    /// Publishes one event, retrying until it is acknowledged or the attempts run out. `sent`
    /// becomes true once an attempt may have reached the stream (it stays true).
    async fn publish_retrying(&self, event: &Event, sent: &mut bool) -> Published {
        let subject = subject_for(&self.config.subject_prefix, event);
        let payload = Bytes::from(encode_event(event));
        let mut delay = self.config.retry_delay;
        let mut last_error = String::new();
        for attempt in 1..=self.config.attempts.max(1) {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(event.id.as_str());
            let sent_before = *sent;
            *sent = true;
            let outcome = match self.js.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await,
                Err(e) => {
                    // Not queued: this attempt cannot reach the stream.
                    *sent = sent_before;
                    Err(e)
                }
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
        Unanswered::GaveUp.answer_with(event, *sent, &last_error)
    }
}

/// The answers of one `publish_all` call so far.
struct Answers {
    results: Vec<Option<Published>>,
    /// Whether an attempt may have reached the stream, per event.
    sent: Vec<bool>,
}

/// Why an event has no acknowledgement.
#[derive(Clone, Copy, Debug)]
enum Unanswered {
    /// The attempts ran out, or an error that retrying cannot fix.
    GaveUp,
    /// The call's deadline passed first.
    DeadlinePassed(Duration),
}

impl Unanswered {
    fn answer(self, event: &Event, sent: bool) -> Published {
        self.answer_with(event, sent, "")
    }

    fn answer_with(self, event: &Event, sent: bool, last_error: &str) -> Published {
        let id = event.id.as_str();
        let why = match self {
            Self::GaveUp => format!("not acknowledged ({last_error})"),
            Self::DeadlinePassed(deadline) => {
                format!("no acknowledgement within the publish timeout ({deadline:?})")
            }
        };
        if sent {
            Published::Unknown {
                reason: format!(
                    "event {id:?}: {why}: the outcome is unknown, the stream may store it now or \
                     once NATS is reachable again; publishing it again with the same id is safe \
                     (a stored copy is answered duplicate and applied once)"
                ),
            }
        } else {
            Published::Failed {
                reason: format!("event {id:?}: not sent: {why}; publish it again"),
            }
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

/// A new event id: a ULID (48 bits of Unix milliseconds and 80 random bits, as `docs/events.md`
/// recommends), from one monotonic generator per process, so the ids a process makes sort by
/// creation time even within one millisecond and never repeat.
pub fn new_event_id() -> String {
    static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
    let id = match generator.generate() {
        Ok(id) => id,
        // 2^80 ids within one millisecond: the next ones borrow the following millisecond.
        Err(overflow) => overflow.commit_overflow_increment(),
    };
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::new_event_id;

    #[test]
    fn new_event_ids_are_ulids_in_creation_order() {
        let before = std::time::SystemTime::now();
        let ids: Vec<String> = (0..1_000).map(|_| new_event_id()).collect();
        for id in &ids {
            let ulid = ulid::Ulid::from_string(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            let made = ulid.datetime();
            // A ULID holds whole milliseconds.
            let lower = before - std::time::Duration::from_millis(1);
            assert!(made >= lower, "{id} made before the test started");
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    }
}
