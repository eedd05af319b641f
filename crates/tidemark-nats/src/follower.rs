//! Following the stream into the redb read model, exactly once.
//!
//! The redb checkpoint is the truth: every session creates an ephemeral pull consumer (no acks)
//! starting at checkpoint + 1, and any error ends the session and starts a new one from the
//! checkpoint then in force (ADR 0003). Each fetched batch is stored at its stream sequences in
//! one transaction. Deliveries are counted: one the consumer made that never arrived (a fetch
//! ended early under load, a dropped connection) ends the session before anything after it is
//! stored (`deliveries`). Before consuming, and every few seconds, the follower checks that the
//! stream still holds what this replica stored: if the stream lost its tail or was recreated, it
//! stops applying and says so. Messages are judged by their payload alone: the event id inside
//! it, never the `Nats-Msg-Id` header (a producer may set its own); a payload that is not a
//! valid event is quarantined and following goes on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, stream::Stream};
use futures::StreamExt;
use serde::Serialize;
use tidemark_core::{Contract, decode_event_bytes_under};
use tidemark_store::{Input, Outcome, PreparedBatch, Store};
use tokio::sync::watch;

use crate::deliveries::Deliveries;

/// What a follower is doing, for `/readyz` and `/metrics`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct FollowerStatus {
    /// A consumer is open and reading.
    pub consuming: bool,
    /// Last stream sequence applied (the redb checkpoint).
    pub checkpoint: u64,
    /// Last sequence of the stream, as last seen.
    pub stream_last_seq: u64,
    /// `stream_last_seq - checkpoint`.
    pub lag: u64,
    /// Why the follower stopped applying, when the stream no longer holds what it stored.
    pub diverged: Option<String>,
    /// What this process's follower did with the messages it read (the store's own totals, which
    /// survive restarts, are in its stats).
    pub since_start: MessageCounts,
    /// The last transient error, if any.
    pub last_error: Option<String>,
}

/// Stream messages by what became of them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MessageCounts {
    /// Events stored at their stream sequence.
    pub applied: u64,
    /// Events whose id was stored already (at an earlier sequence): not applied again.
    pub duplicates: u64,
    /// Payloads that are not valid events: kept in the store's quarantine.
    pub quarantined: u64,
}

impl MessageCounts {
    fn add(&mut self, other: &MessageCounts) {
        self.applied += other.applied;
        self.duplicates += other.duplicates;
        self.quarantined += other.quarantined;
    }
}

/// Called after every commit of the follower with how long the commit took and what it did
/// (for metrics).
pub type CommitObserver = Arc<dyn Fn(Duration, &MessageCounts) + Send + Sync>;

/// Tuning of a follower.
#[derive(Clone, Debug)]
pub struct FollowerConfig {
    /// The stream's name.
    pub stream: String,
    /// Messages per fetch (and at most per transaction).
    pub batch: usize,
    /// Bytes per fetch, roughly: the next fetch asks for as many messages as fit, going by the
    /// average size of the last one (the server's own byte limit ends a fetch with a status the
    /// client reports as an error). Bounds a batch of large events and keeps decoding,
    /// committing and fetching overlapping. 16 MiB by default, as `tidemark ingest`'s batches:
    /// a commit rewrites the index leaves its batch touched, so larger batches commit less
    /// often (issue 20).
    pub max_batch_bytes: usize,
    /// How long a fetch waits for a full batch.
    pub fetch_wait: Duration,
    /// How often the stream is checked for divergence while consuming.
    pub check_every: Duration,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        Self {
            stream: "TIDEMARK".to_owned(),
            batch: 5_000,
            max_batch_bytes: 16 << 20,
            fetch_wait: Duration::from_millis(50),
            check_every: Duration::from_secs(5),
        }
    }
}

/// A running follower.
#[derive(Debug)]
pub struct FollowerHandle {
    status: Arc<Mutex<FollowerStatus>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FollowerHandle {
    /// A copy of the current status.
    pub fn status(&self) -> FollowerStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A shared view of the status, for the HTTP side.
    pub fn status_handle(&self) -> Arc<Mutex<FollowerStatus>> {
        self.status.clone()
    }

    /// Stops after the batch in flight is committed.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

enum SessionEnd {
    Stopped,
    Diverged(String),
    Transient(String),
}

fn transient(e: impl std::fmt::Display) -> SessionEnd {
    SessionEnd::Transient(e.to_string())
}

struct Follower {
    store: Arc<Store>,
    js: jetstream::Context,
    config: FollowerConfig,
    status: Arc<Mutex<FollowerStatus>>,
    on_commit: Option<CommitObserver>,
}

/// One commit's result: what it did, and the repeated ids it did not apply again.
struct Committed {
    took: Duration,
    counts: MessageCounts,
    /// (stream sequence, event id, position first stored at) of each repeated id.
    duplicates: Vec<(u64, String, u64)>,
}

/// Starts following the stream into `store`.
pub fn spawn(store: Arc<Store>, js: jetstream::Context, config: FollowerConfig) -> FollowerHandle {
    spawn_inner(store, js, config, None)
}

/// Starts following the stream into `store`, telling `on_commit` about every commit.
pub fn spawn_observed(
    store: Arc<Store>,
    js: jetstream::Context,
    config: FollowerConfig,
    on_commit: CommitObserver,
) -> FollowerHandle {
    spawn_inner(store, js, config, Some(on_commit))
}

fn spawn_inner(
    store: Arc<Store>,
    js: jetstream::Context,
    config: FollowerConfig,
    on_commit: Option<CommitObserver>,
) -> FollowerHandle {
    let status = Arc::new(Mutex::new(FollowerStatus {
        checkpoint: store.checkpoint(),
        ..Default::default()
    }));
    let (stop, stopped) = watch::channel(false);
    let follower = Follower {
        store,
        js,
        config,
        status: status.clone(),
        on_commit,
    };
    let task = tokio::spawn(follower.run(stopped));
    FollowerHandle { status, stop, task }
}

impl Follower {
    fn update(&self, change: impl FnOnce(&mut FollowerStatus)) {
        change(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *stopped.borrow() {
                break;
            }
            let end = self.session(&mut stopped).await;
            self.update(|s| s.consuming = false);
            let wait = match end {
                SessionEnd::Stopped => break,
                SessionEnd::Diverged(reason) => {
                    let known = self
                        .status
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .diverged
                        .as_deref()
                        == Some(&reason);
                    if known {
                        tracing::debug!(%reason, "still diverged");
                    } else {
                        tracing::error!(stream = %self.config.stream, %reason, "the stream diverged from this replica: applying stopped");
                    }
                    self.update(|s| s.diverged = Some(reason));
                    Duration::from_secs(2)
                }
                SessionEnd::Transient(error) => {
                    tracing::warn!(stream = %self.config.stream, %error, "following interrupted; resuming from the checkpoint");
                    self.update(|s| s.last_error = Some(error));
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    backoff
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => break,
            }
        }
        tracing::info!("follower stopped");
    }

    async fn session(&self, stopped: &mut watch::Receiver<bool>) -> SessionEnd {
        let mut stream = match self.js.get_stream(&self.config.stream).await {
            Ok(stream) => stream,
            Err(e) => return transient(format!("opening stream {}: {e}", self.config.stream)),
        };
        if let Err(end) = self.check(&mut stream).await {
            return end;
        }
        let checkpoint = self.store.checkpoint();
        let deliver_policy = if checkpoint == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: checkpoint + 1,
            }
        };
        let consumer = match stream
            .create_consumer(pull::Config {
                deliver_policy,
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
        {
            Ok(consumer) => consumer,
            Err(e) => return transient(format!("creating a consumer at {}: {e}", checkpoint + 1)),
        };
        tracing::info!(stream = %self.config.stream, from = checkpoint + 1, "following");
        self.update(|s| {
            s.consuming = true;
            s.last_error = None;
        });
        let mut last_check = Instant::now();
        let mut last_info = Instant::now();
        let mut last_seen = checkpoint;
        // The consumer is new: its deliveries are numbered from 1, without gaps.
        let mut deliveries = Deliveries::new();
        // The first fetch of a session is small (the message size is not known yet: 5,000
        // cycle events of 1,000 findings would be 430 MB); later ones follow `max_batch_bytes`.
        let mut fetch_messages = self.config.batch.clamp(1, 256);
        // One commit runs on a blocking thread while the next batch is fetched.
        let mut committing: Option<tokio::task::JoinHandle<Result<Committed, String>>> = None;
        let end = loop {
            if *stopped.borrow() {
                break SessionEnd::Stopped;
            }
            let fetch = consumer
                .batch()
                .max_messages(fetch_messages)
                .expires(self.config.fetch_wait)
                .messages()
                .await;
            let mut batch = match fetch {
                Ok(batch) => batch,
                Err(e) => break transient(format!("fetching: {e}")),
            };
            let mut raw: Vec<RawMessage> = Vec::new();
            let mut failed = None;
            while let Some(message) = batch.next().await {
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        failed = Some(transient(format!("reading: {e}")));
                        break;
                    }
                };
                let (seq, delivery) = match message.info() {
                    Ok(info) => (info.stream_sequence, info.consumer_sequence),
                    Err(e) => {
                        failed = Some(transient(format!("message without stream info: {e}")));
                        break;
                    }
                };
                // Never store past a delivery that did not arrive: what came before it is
                // committed below, and the next session starts from that checkpoint.
                if let Err(gap) = deliveries.receive(delivery) {
                    failed = Some(transient(gap));
                    break;
                }
                if seq <= last_seen {
                    continue; // redelivered: applied already
                }
                last_seen = seq;
                raw.push(RawMessage {
                    seq,
                    subject: message.subject.to_string(),
                    msg_id: message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(NATS_MESSAGE_ID))
                        .map(|id| id.as_str().to_owned()),
                    payload: message.payload.clone(),
                });
            }
            if !raw.is_empty() {
                let bytes: usize = raw.iter().map(|m| m.payload.len()).sum();
                let average = (bytes / raw.len()).max(1);
                fetch_messages =
                    (self.config.max_batch_bytes / average).clamp(1, self.config.batch.max(1));
            }
            // Decode this batch, and encode its log records, on a blocking thread while the
            // previous commit runs on another.
            let decoding = (!raw.is_empty()).then(|| {
                let stream = self.config.stream.clone();
                tokio::task::spawn_blocking(move || {
                    let items = raw
                        .into_iter()
                        .map(|message| (message.seq, decode(&stream, &message)))
                        .collect::<Vec<(u64, Input)>>();
                    PreparedBatch::positioned(items, tidemark_store::wall_clock())
                })
            });
            // Let the previous commit finish before the next one starts: positions stay in order.
            if let Some(previous) = committing.take()
                && let Err(end) = self.settle(previous).await
            {
                break end;
            }
            if let Some(decoding) = decoding {
                let items = match decoding.await {
                    Ok(items) => items,
                    Err(e) => break transient(format!("decoding: {e}")),
                };
                let store = self.store.clone();
                committing = Some(tokio::task::spawn_blocking(move || commit(&store, &items)));
            }
            if let Some(end) = failed {
                break end;
            }
            if last_check.elapsed() >= self.config.check_every {
                if let Some(previous) = committing.take()
                    && let Err(end) = self.settle(previous).await
                {
                    break end;
                }
                if let Err(end) = self.check(&mut stream).await {
                    break end;
                }
                // A fetch whose tail was lost, with nothing delivered after it, shows only here.
                match consumer.get_info().await {
                    Ok(info) => {
                        if let Err(gap) = deliveries.confirm(info.delivered.consumer_sequence) {
                            break transient(gap);
                        }
                    }
                    Err(e) => break transient(format!("consumer info: {e}")),
                }
                last_check = Instant::now();
                last_info = Instant::now();
            } else if last_info.elapsed() >= Duration::from_secs(1) {
                if let Ok(info) = stream.get_info().await {
                    let checkpoint = self.store.checkpoint();
                    self.update(|s| {
                        s.stream_last_seq = info.state.last_sequence;
                        s.checkpoint = checkpoint;
                        s.lag = info.state.last_sequence.saturating_sub(checkpoint);
                    });
                }
                last_info = Instant::now();
            }
        };
        // Never leave a commit behind: the next session starts from the checkpoint it writes.
        if let Some(previous) = committing.take()
            && let Err(settle_end) = self.settle(previous).await
            && matches!(end, SessionEnd::Stopped)
        {
            return settle_end;
        }
        end
    }

    /// Waits for a commit, counts what it did and names the repeated ids it skipped.
    async fn settle(
        &self,
        commit: tokio::task::JoinHandle<Result<Committed, String>>,
    ) -> Result<(), SessionEnd> {
        let committed = match commit.await {
            Ok(Ok(committed)) => committed,
            Ok(Err(e)) => return Err(transient(format!("committing: {e}"))),
            Err(e) => return Err(transient(format!("committing: {e}"))),
        };
        for (seq, id, first) in &committed.duplicates {
            tracing::debug!(
                seq,
                id,
                first,
                "repeated event id: stored already, not applied again"
            );
        }
        if let Some((seq, id, first)) = committed.duplicates.first() {
            tracing::info!(
                stream = %self.config.stream,
                repeated = committed.duplicates.len(),
                seq,
                id,
                first,
                "stream messages repeat event ids stored already: not applied again (the first named)"
            );
        }
        if let Some(on_commit) = &self.on_commit {
            on_commit(committed.took, &committed.counts);
        }
        let checkpoint = self.store.checkpoint();
        self.update(|s| {
            s.since_start.add(&committed.counts);
            s.checkpoint = checkpoint;
            // The stream holds at least what was just read from it (its info is refreshed
            // every second).
            s.stream_last_seq = s.stream_last_seq.max(checkpoint);
            s.lag = s.stream_last_seq.saturating_sub(checkpoint);
        });
        Ok(())
    }

    /// Does the stream still hold what this replica stored? Also refreshes the lag.
    ///
    /// The stored event at the highest position the stream still covers must be in the stream
    /// at that position with the same id; and the stream must reach the checkpoint.
    async fn check(&self, stream: &mut Stream) -> Result<(), SessionEnd> {
        let info = stream
            .get_info()
            .await
            .map_err(|e| transient(format!("stream info: {e}")))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let checkpoint = self.store.checkpoint();
        self.update(|s| {
            s.stream_last_seq = last;
            s.checkpoint = checkpoint;
            s.lag = last.saturating_sub(checkpoint);
        });
        let name = &self.config.stream;
        let store = self.store.clone();
        let probe = tokio::task::spawn_blocking(move || store.last_logged(last))
            .await
            .map_err(transient)?
            .map_err(transient)?;
        if let Some((position, id)) = probe
            && position >= first
        {
            // Like with like: the id in the stream's payload against the id this replica stored
            // from a payload. The `Nats-Msg-Id` header is the producer's dedupe key and may be
            // anything.
            let found = match stream.get_raw_message(position).await {
                Ok(message) => match payload_event_id(&message.payload) {
                    Some(their_id) if their_id == id => None,
                    Some(their_id) => Some(format!("event {their_id:?}")),
                    None => Some("a message that is not an event".to_owned()),
                },
                Err(e) if matches!(e.kind(), RawMessageErrorKind::NoMessageFound) => {
                    Some("nothing".to_owned())
                }
                Err(e) => return Err(transient(format!("reading sequence {position}: {e}"))),
            };
            if let Some(found) = found {
                return Err(SessionEnd::Diverged(format!(
                    "stream {name} sequence {position} holds {found}, but this replica stored event {id:?} there: \
                     the stream was recreated, rewritten or lost messages. Restore this replica's events with \
                     `tidemark republish --from 1`, then rebuild replicas from the stream (docs/distributed.md)"
                )));
            }
        }
        if checkpoint > last {
            return Err(SessionEnd::Diverged(format!(
                "stream {name} ends at sequence {last}, but this replica applied up to {checkpoint}: the stream \
                 lost its tail; positions {}..={checkpoint} exist only in replicas. Restore them with \
                 `tidemark republish --from {}` from this replica's store, then rebuild replicas from the stream \
                 (docs/distributed.md)",
                last + 1,
                last + 1
            )));
        }
        self.update(|s| s.diverged = None);
        Ok(())
    }
}

/// A message as the follower read it.
struct RawMessage {
    seq: u64,
    subject: String,
    /// The producer's `Nats-Msg-Id`, if it set one: named in quarantine, never used to judge.
    msg_id: Option<String>,
    payload: bytes::Bytes,
}

/// A message as a store input: the event, or the raw bytes with the reason, for quarantine.
fn decode(stream: &str, message: &RawMessage) -> Input {
    let RawMessage {
        seq,
        subject,
        msg_id,
        payload,
    } = message;
    // The stream is the log of a distributed deployment: a message an earlier version accepted
    // (a flap window above today's limit) is read as every replica read it, not quarantined
    // by a replica rebuilt from the stream. Publishers judge new input by every rule.
    match decode_event_bytes_under(payload, Contract::Logged) {
        Ok(event) => Input::Event(event),
        Err(error) => {
            tracing::warn!(seq, subject, msg_id, %error, "quarantining a message that is not a valid event");
            let msg_id = msg_id
                .as_deref()
                .map(|id| format!(" Nats-Msg-Id {id:?}"))
                .unwrap_or_default();
            Input::Rejected {
                raw: payload.to_vec(),
                reason: error.to_string(),
                origin: format!("nats stream {stream} seq {seq} subject {subject}{msg_id}"),
            }
        }
    }
}

/// Stores a batch at its stream sequences and says what became of each message.
fn commit(store: &Store, batch: &PreparedBatch) -> Result<Committed, String> {
    let started = Instant::now();
    let outcomes = store.append_prepared(batch).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let mut counts = MessageCounts::default();
    let mut duplicates = Vec::new();
    for ((seq, input), outcome) in batch.positions().zip(batch.inputs()).zip(&outcomes) {
        match outcome {
            Outcome::Accepted { .. } => counts.applied += 1,
            Outcome::Rejected { .. } => counts.quarantined += 1,
            Outcome::Duplicate { seq: first } => {
                counts.duplicates += 1;
                if let (Some(seq), Input::Event(event)) = (seq, input) {
                    duplicates.push((seq, event.id.0.clone(), *first));
                }
            }
        }
    }
    Ok(Committed {
        took,
        counts,
        duplicates,
    })
}

/// The event id in a payload, judged the way the follower stored it: from a valid event, or,
/// when this version no longer accepts a payload it once stored, from its `id` field alone.
fn payload_event_id(payload: &[u8]) -> Option<String> {
    match decode_event_bytes_under(payload, Contract::Logged) {
        Ok(event) => Some(event.id.0),
        Err(error) => error.event_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_an_earlier_version_accepted_is_read_not_quarantined() {
        // A flap window above today's limit: refused as new input, read from the stream (the
        // fold reads it as the limit), as every replica that followed it before read it.
        let wide = r#"{"id":"wide-1","schema":1,"type":"settings.changed","time":"2026-03-02T14:00:00Z","source":"s","cluster":"c","data":{"flap_window_secs":3456000}}"#;
        assert!(tidemark_core::decode_event(wide).is_err());
        let message = RawMessage {
            seq: 7,
            subject: "tidemark.events.c".into(),
            msg_id: None,
            payload: bytes::Bytes::from_static(wide.as_bytes()),
        };
        assert!(matches!(decode("s", &message), Input::Event(_)));
    }

    #[test]
    fn payloads_are_judged_by_the_event_id_inside_them() {
        let event = r#"{"id":"payload-id-1","schema":1,"type":"note.added","time":"2026-03-02T14:00:00Z","source":"s","cluster":"c","data":{"author":"me","kind":"observation","text":"hi"}}"#;
        assert_eq!(
            payload_event_id(event.as_bytes()).as_deref(),
            Some("payload-id-1")
        );
        // Not valid for this version, but its id can be read: it is judged by that id.
        let invalid = r#"{"id":"payload-id-2","schema":1,"type":"note.added"}"#;
        assert_eq!(
            payload_event_id(invalid.as_bytes()).as_deref(),
            Some("payload-id-2")
        );
        assert_eq!(payload_event_id(b"\xff\xfe"), None);
        assert_eq!(payload_event_id(br#"{"schema":1}"#), None);
    }
}
