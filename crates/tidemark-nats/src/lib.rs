//! NATS JetStream as Tidemark's distributed log: stream provisioning, producers that publish
//! with acknowledgements and dedupe ids, and followers that apply the stream to a replica's
//! redb read model exactly once, noticing when the stream no longer holds what they stored.

pub mod config;
pub mod connect;
mod deliveries;
mod error;
pub mod follower;
pub mod producer;

pub use config::{NatsAuth, NatsConfig, StreamSettings, subject_for, subject_token};
pub use connect::{connect, ensure_stream, stream_config};
pub use error::NatsError;
pub use follower::{
    CommitObserver, FollowerConfig, FollowerHandle, FollowerStatus, MessageCounts,
    spawn as spawn_follower, spawn_observed as spawn_observed_follower,
};
pub use producer::{Producer, ProducerConfig, Published, new_event_id};
