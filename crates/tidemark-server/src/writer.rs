//! The single writer: a dedicated thread that group-commits concurrent requests.
//!
//! Requests queue on a bounded channel; the thread takes the first, then every request already
//! waiting up to `max_batch_inputs`, appends them all in one store transaction, and answers each
//! with its own outcomes. Blocking redb work never runs on the async runtime's threads. When
//! every sender is gone the thread drains the queue, commits, and stops.

use std::sync::Arc;
use std::thread::JoinHandle;

use tidemark_store::{AppendError, Input, Outcome, PreparedBatch, Store};
use tokio::sync::{mpsc, oneshot};

/// One request's inputs, their log records encoded, and where to send its outcomes.
#[derive(Debug)]
struct WriteRequest {
    batch: PreparedBatch,
    reply: oneshot::Sender<Result<Vec<Outcome>, WriteError>>,
}

/// Sends inputs to the writer thread.
#[derive(Clone, Debug)]
pub struct WriterClient {
    tx: mpsc::Sender<WriteRequest>,
}

/// Why a write did not happen.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    /// The writer has stopped (shutting down).
    #[error("the writer has stopped: the server is shutting down")]
    Stopped,
    /// The disk is full; nothing of the batch was stored (the message says what to do).
    #[error("{message}")]
    DiskFull {
        /// The store's explanation.
        message: String,
        /// Seconds until the store tries writing again.
        retry_after_secs: u64,
    },
    /// The store refused the batch; nothing of it was stored.
    #[error("the store could not commit the batch: {0}")]
    Store(String),
}

impl From<&AppendError> for WriteError {
    fn from(error: &AppendError) -> Self {
        match error {
            AppendError::DiskFull { retry_after, .. } => {
                let retry_after_secs = retry_after.as_secs().max(1);
                Self::DiskFull {
                    message: format!(
                        "{error}: the server tries writing again in {retry_after_secs}s (Retry-After)"
                    ),
                    retry_after_secs,
                }
            }
            other => Self::Store(other.to_string()),
        }
    }
}

impl WriterClient {
    /// Appends `inputs` (in one transaction, possibly with other requests' inputs). Their log
    /// records are encoded here, on the request's thread, not on the writer's (issue 20).
    pub async fn write(&self, inputs: Vec<Input>) -> Result<Vec<Outcome>, WriteError> {
        let (reply, answer) = oneshot::channel();
        let batch = PreparedBatch::new(inputs, tidemark_store::wall_clock());
        self.tx
            .send(WriteRequest { batch, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Whether the writer thread is still running.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

/// The writer thread.
#[derive(Debug)]
pub struct Writer {
    join: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub fn spawn(
        store: Arc<Store>,
        queue_capacity: usize,
        max_batch_inputs: usize,
    ) -> (Writer, WriterClient) {
        Self::spawn_with_metrics(store, queue_capacity, max_batch_inputs, None)
    }

    /// Starts the writer thread on `store`, counting its batches in `metrics`.
    pub fn spawn_with_metrics(
        store: Arc<Store>,
        queue_capacity: usize,
        max_batch_inputs: usize,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> (Writer, WriterClient) {
        let (tx, rx) = mpsc::channel(queue_capacity);
        let join = std::thread::Builder::new()
            .name("tidemark-writer".into())
            .spawn(move || run(store, rx, max_batch_inputs, metrics))
            .expect("spawning the writer thread");
        (Writer { join }, WriterClient { tx })
    }

    /// Waits for the thread to drain its queue and stop (after every client is dropped).
    pub fn join(self) {
        if self.join.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
    }
}

fn run(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<WriteRequest>,
    max_batch_inputs: usize,
    metrics: Option<Arc<crate::metrics::Metrics>>,
) {
    let mut requests: Vec<WriteRequest> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut count = first.batch.len();
        requests.push(first);
        while count < max_batch_inputs {
            match rx.try_recv() {
                Ok(next) => {
                    count += next.batch.len();
                    requests.push(next);
                }
                Err(_) => break,
            }
        }
        let group = requests.len();
        let mut lengths = Vec::with_capacity(group);
        let mut replies = Vec::with_capacity(group);
        let mut parts = requests.drain(..).map(|request| {
            lengths.push(request.batch.len());
            replies.push(request.reply);
            request.batch
        });
        let mut batch = parts.next().expect("the first request is in the group");
        parts.for_each(|part| batch.extend(part));
        let started = std::time::Instant::now();
        let result = store.append_prepared(&batch);
        tracing::debug!(
            inputs = count,
            requests = group,
            micros = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        match result {
            Ok(outcomes) => {
                if let Some(metrics) = &metrics {
                    let count =
                        |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
                    metrics.batch(
                        started.elapsed(),
                        count(|o| matches!(o, Outcome::Accepted { .. })),
                        count(|o| matches!(o, Outcome::Duplicate { .. })),
                        count(|o| matches!(o, Outcome::Rejected { .. })),
                    );
                }
                let mut outcomes = outcomes.into_iter();
                for (reply, len) in replies.into_iter().zip(lengths) {
                    let mine: Vec<Outcome> = outcomes.by_ref().take(len).collect();
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(error) => {
                let disk_full = matches!(error, AppendError::DiskFull { .. });
                if let Some(metrics) = &metrics {
                    metrics.batch_failed(disk_full);
                }
                if disk_full {
                    // The store logs when writes stop and resume; one line per refusal is noise.
                    tracing::debug!(%error, inputs = count, "batch refused: disk full");
                } else {
                    tracing::error!(%error, inputs = count, "append failed; nothing of the batch was stored");
                }
                let answer = WriteError::from(&error);
                for reply in replies {
                    let _ = reply.send(Err(answer.clone()));
                }
            }
        }
    }
    tracing::info!("writer stopped: queue drained");
}
