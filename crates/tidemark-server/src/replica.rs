//! What the server needs from a distributed log, without knowing which one: a way to publish
//! ingested events to it, and the health of the follower that applies it locally.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use tidemark_core::Event;

/// The answer for one published event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PublishResult {
    /// In the log at this sequence.
    Published {
        /// Log sequence.
        seq: u64,
    },
    /// The log already had this id, at this sequence.
    Duplicate {
        /// Log sequence of the first copy.
        seq: u64,
    },
    /// Sent, but the log did not acknowledge it in time: it may be in the log, or get there
    /// later. Sending it again with the same id is safe (answered `duplicate` if it landed).
    Unknown {
        /// Why.
        reason: String,
    },
    /// Not in the log: it was never sent.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A future that can cross threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Publishes events to the distributed log (in replica mode, `POST /v1/events` does this
/// instead of writing locally, so there is one log).
pub trait Publisher: Send + Sync + 'static {
    /// Publishes `events` and answers each, in order.
    fn publish(&self, events: Vec<Event>) -> BoxFuture<'_, Vec<PublishResult>>;
}

/// One gauge for `/metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gauge {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Value.
    pub value: f64,
}

/// Health of the follower that applies the distributed log to this replica.
pub trait Health: Send + Sync + 'static {
    /// Ready to serve reads, and the details `/readyz` shows.
    fn readiness(&self) -> (bool, serde_json::Value);
    /// Gauges for `/metrics`.
    fn gauges(&self) -> Vec<Gauge>;
}
