//! The single writer: a dedicated thread that group-commits concurrent requests.
//!
//! Requests queue on a bounded channel; the thread takes the first, then every request already
//! waiting up to `max_batch_inputs`, appends them all in one store transaction, and answers each
//! with its own outcomes. Blocking redb work never runs on the async runtime's threads. When
//! every sender is gone the thread drains the queue, commits, and stops.

use std::sync::Arc;
use std::thread::JoinHandle;

use tidemark_store::{Input, Outcome, Store};
use tokio::sync::{mpsc, oneshot};

/// One request's inputs and where to send its outcomes.
#[derive(Debug)]
struct WriteRequest {
    inputs: Vec<Input>,
    reply: oneshot::Sender<Result<Vec<Outcome>, String>>,
}

/// Sends inputs to the writer thread.
#[derive(Clone, Debug)]
pub struct WriterClient {
    tx: mpsc::Sender<WriteRequest>,
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The writer has stopped (shutting down).
    #[error("the writer has stopped: the server is shutting down")]
    Stopped,
    /// The store refused the batch; nothing of it was stored.
    #[error("the store could not commit the batch: {0}")]
    Store(String),
}

impl WriterClient {
    /// Appends `inputs` (in one transaction, possibly with other requests' inputs).
    pub async fn write(&self, inputs: Vec<Input>) -> Result<Vec<Outcome>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(WriteRequest { inputs, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer
            .await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Store)
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
        let mut count = first.inputs.len();
        requests.push(first);
        while count < max_batch_inputs {
            match rx.try_recv() {
                Ok(next) => {
                    count += next.inputs.len();
                    requests.push(next);
                }
                Err(_) => break,
            }
        }
        let mut inputs = Vec::with_capacity(count);
        let mut lengths = Vec::with_capacity(requests.len());
        for request in &mut requests {
            lengths.push(request.inputs.len());
            inputs.append(&mut request.inputs);
        }
        let started = std::time::Instant::now();
        let result = store.append(&inputs, tidemark_store::wall_clock());
        tracing::debug!(
            inputs = count,
            requests = requests.len(),
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
                for (request, len) in requests.drain(..).zip(lengths) {
                    let mine: Vec<Outcome> = outcomes.by_ref().take(len).collect();
                    let _ = request.reply.send(Ok(mine));
                }
            }
            Err(error) => {
                if let Some(metrics) = &metrics {
                    metrics.batch_failed();
                }
                tracing::error!(%error, inputs = count, "append failed; nothing of the batch was stored");
                let message = error.to_string();
                for request in requests.drain(..) {
                    let _ = request.reply.send(Err(message.clone()));
                }
            }
        }
    }
    tracing::info!("writer stopped: queue drained");
}
