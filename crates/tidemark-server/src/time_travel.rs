//! Past states (`?at=`) in bounded memory: at most `max_concurrent` are rebuilt or held at once,
//! requests for the same position share one rebuild, and a request that cannot get a slot (the
//! waiting line is full, or no slot freed within `max_wait`) is answered 503 with `Retry-After`.
//!
//! A past state is as large as the live projections, so the bound is on states in memory, not
//! only on rebuilds running: a state keeps its slot until the last request reading it is done,
//! and a rebuild whose request went away keeps its slot until the rebuild ends. Memory for time
//! travel is at most `max_concurrent` states, whatever the number of clients.
//!
//! Requests share a state when they resolve to the same point: a position (a position after the
//! checkpoint is the checkpoint), or a time at the same checkpoint (later events could extend
//! the prefix a time names, so a time is only shared while the log has not moved). Making one
//! rebuild cheaper, and keeping states across positions, is issue 13's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tidemark_core::{Projections, Timestamp};
use tidemark_store::{At, Store};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The limits of time travel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeTravelConfig {
    /// Past states rebuilt or read at once (each as large as the live state).
    pub max_concurrent: usize,
    /// Requests waiting for a slot; more are answered 503 at once.
    pub max_queued: usize,
    /// How long a request waits for a slot before it is answered 503.
    pub max_wait: Duration,
}

impl Default for TimeTravelConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            max_queued: 32,
            max_wait: Duration::from_secs(5),
        }
    }
}

/// The point a request resolves to: requests with equal keys share a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// After this position (never past the checkpoint: positions up to it never change).
    Seq(u64),
    /// The longest prefix up to this time, while the checkpoint is this.
    Time { time: Timestamp, checkpoint: u64 },
}

impl Key {
    fn resolve(at: At, checkpoint: u64) -> Self {
        match at {
            At::Seq(seq) => Self::Seq(seq.min(checkpoint)),
            At::Time(time) => Self::Time { time, checkpoint },
        }
    }

    fn at(self) -> At {
        match self {
            Self::Seq(seq) => At::Seq(seq),
            Self::Time { time, .. } => At::Time(time),
        }
    }
}

/// A rebuilt past state, holding its slot for as long as anyone reads it.
#[derive(Debug)]
pub struct PastState {
    /// The projections at that point.
    pub projections: Projections,
    /// The log position they are at.
    pub seq: u64,
    _slot: OwnedSemaphorePermit,
}

/// A point's state, rebuilt once by whichever request gets there first.
type Shared = OnceCell<Result<PastState, ApiError>>;

/// A past state as a request holds it. While any request holds it, new requests for the same
/// point are answered from it; when the last one lets go, its memory and slot are freed.
#[derive(Debug)]
pub struct PastStateRef(Arc<Shared>);

impl std::ops::Deref for PastStateRef {
    type Target = PastState;

    fn deref(&self) -> &PastState {
        match self.0.get() {
            Some(Ok(state)) => state,
            // A `PastStateRef` is only made from a cell that holds a state.
            _ => unreachable!("a PastStateRef holds a rebuilt state"),
        }
    }
}

/// What time travel counted, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeTravelCounts {
    /// Past states being rebuilt or read now.
    pub states: usize,
    /// Requests waiting for a slot now.
    pub queued: usize,
    /// Past states rebuilt.
    pub rebuilds: u64,
    /// Requests answered from a state another request rebuilt (or was rebuilding).
    pub shared: u64,
    /// Requests that had to wait for a slot.
    pub waits: u64,
    /// Requests answered 503 (the line was full, or no slot freed in time).
    pub refused: u64,
}

/// Called in the rebuild, before the store is read: lets tests hold a rebuild deterministically.
pub type RebuildHook = Arc<dyn Fn(At) + Send + Sync>;

/// The limiter and the table of states being shared.
pub struct TimeTravel {
    config: TimeTravelConfig,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    states: Mutex<HashMap<Key, Weak<Shared>>>,
    rebuilds: AtomicU64,
    shared: AtomicU64,
    waits: AtomicU64,
    refused: AtomicU64,
    hook: Option<RebuildHook>,
}

impl std::fmt::Debug for TimeTravel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeTravel")
            .field("config", &self.config)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Default for TimeTravel {
    fn default() -> Self {
        Self::new(TimeTravelConfig::default())
    }
}

impl TimeTravel {
    /// A limiter with these limits (`max_concurrent` of at least 1).
    pub fn new(config: TimeTravelConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        Self {
            config,
            slots,
            queued: AtomicUsize::new(0),
            states: Mutex::new(HashMap::new()),
            rebuilds: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            hook: None,
        }
    }

    /// Calls `hook` in every rebuild before the store is read (for tests that need a rebuild
    /// to last until they say so).
    #[doc(hidden)]
    pub fn with_rebuild_hook(mut self, hook: RebuildHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// What was counted so far.
    pub fn counts(&self) -> TimeTravelCounts {
        TimeTravelCounts {
            states: self.config.max_concurrent.max(1) - self.slots.available_permits(),
            queued: self.queued.load(Ordering::Relaxed),
            rebuilds: self.rebuilds.load(Ordering::Relaxed),
            shared: self.shared.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// The state at `at`: shared with concurrent requests for the same point, rebuilt within
    /// the limits otherwise.
    pub async fn past_state(&self, store: &Arc<Store>, at: At) -> Result<PastStateRef, ApiError> {
        let key = Key::resolve(at, store.checkpoint());
        let (store, hook) = (store.clone(), self.hook.clone());
        self.share_or_rebuild(key, move || {
            if let Some(hook) = hook {
                hook(key.at());
            }
            store
                .projection_at(key.at())
                .map_err(|e| ApiError::query(&e))
        })
        .await
    }

    async fn share_or_rebuild(
        &self,
        key: Key,
        rebuild: impl FnOnce() -> Result<(Projections, u64), ApiError> + Send + 'static,
    ) -> Result<PastStateRef, ApiError> {
        let cell = self.cell_for(key);
        let failed = cell
            .get_or_init(|| self.rebuild(rebuild))
            .await
            .as_ref()
            .err()
            .cloned();
        match failed {
            None => Ok(PastStateRef(cell)),
            Some(error) => Err(error),
        }
    }

    /// The shared cell for `key`: the one another request made (unless it failed), or a new one.
    fn cell_for(&self, key: Key) -> Arc<Shared> {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cell) = states.get(&key).and_then(Weak::upgrade)
            && !matches!(cell.get(), Some(Err(_)))
        {
            self.shared.fetch_add(1, Ordering::Relaxed);
            return cell;
        }
        // Entries of states nobody holds any more go; the table stays as small as the number
        // of requests in flight.
        states.retain(|_, cell| cell.strong_count() > 0);
        let cell = Arc::new(Shared::new());
        states.insert(key, Arc::downgrade(&cell));
        cell
    }

    async fn rebuild(
        &self,
        rebuild: impl FnOnce() -> Result<(Projections, u64), ApiError> + Send + 'static,
    ) -> Result<PastState, ApiError> {
        let slot = self.slot().await?;
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        // The slot goes with the work: if this request goes away, the rebuild still holds it
        // until it ends, so abandoned rebuilds count against the limit too.
        let (built, slot) = tokio::task::spawn_blocking(move || (rebuild(), slot))
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let (projections, seq) = built?;
        Ok(PastState {
            projections,
            seq,
            _slot: slot,
        })
    }

    /// A slot now, or after waiting in a bounded line for a bounded time, or 503.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        let line = self.queued.fetch_add(1, Ordering::AcqRel);
        let slot = if line >= self.config.max_queued {
            None
        } else {
            tokio::time::timeout(self.config.max_wait, self.slots.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        };
        self.queued.fetch_sub(1, Ordering::AcqRel);
        slot.ok_or_else(|| self.refuse())
    }

    fn refuse(&self) -> ApiError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let retry_after_secs = self.config.max_wait.as_secs().max(1);
        ApiError::busy(
            "time_travel_busy",
            format!(
                "{} past states (`at`) are being rebuilt or read, the limit (--max-time-travel): retry after {retry_after_secs} s, or ask without `at` for the current state",
                self.config.max_concurrent.max(1)
            ),
            retry_after_secs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A rebuild that says it started and then waits to be released.
    fn held(
        started: mpsc::Sender<u64>,
        release: Arc<Mutex<mpsc::Receiver<()>>>,
        seq: u64,
    ) -> impl FnOnce() -> Result<(Projections, u64), ApiError> + Send + 'static {
        move || {
            started.send(seq).unwrap();
            release.lock().unwrap().recv().unwrap();
            Ok((Projections::new(), seq))
        }
    }

    fn config(max_concurrent: usize, max_queued: usize, max_wait: Duration) -> TimeTravelConfig {
        TimeTravelConfig {
            max_concurrent,
            max_queued,
            max_wait,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_state_keeps_its_slot_until_its_last_reader_lets_go() {
        let limiter = Arc::new(TimeTravel::new(config(1, 4, Duration::from_millis(50))));
        let state = limiter
            .share_or_rebuild(Key::Seq(1), || Ok((Projections::new(), 1)))
            .await
            .unwrap();
        assert_eq!(limiter.counts().states, 1);
        // Rebuilt, but still read: another position has to wait, and is refused in time.
        let error = limiter
            .share_or_rebuild(Key::Seq(2), || Ok((Projections::new(), 2)))
            .await
            .unwrap_err();
        assert_eq!(
            (error.status.as_u16(), error.code, error.retry_after_secs),
            (503, "time_travel_busy", Some(1))
        );
        // The same position is shared while it is held.
        let again = limiter
            .share_or_rebuild(Key::Seq(1), || unreachable!("shared, not rebuilt"))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&state.0, &again.0));
        drop((state, again));
        assert_eq!(limiter.counts().states, 0);
        limiter
            .share_or_rebuild(Key::Seq(2), || Ok((Projections::new(), 2)))
            .await
            .unwrap();
        let counts = limiter.counts();
        assert_eq!(
            (counts.rebuilds, counts.shared, counts.waits, counts.refused),
            (2, 1, 1, 1)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_line_longer_than_the_limit_is_refused_at_once() {
        let limiter = Arc::new(TimeTravel::new(config(1, 1, Duration::from_secs(600))));
        let (started_tx, started) = mpsc::channel();
        let (release_tx, release) = mpsc::channel();
        let release = Arc::new(Mutex::new(release));
        let first = tokio::spawn({
            let limiter = limiter.clone();
            let rebuild = held(started_tx, release.clone(), 1);
            async move { limiter.share_or_rebuild(Key::Seq(1), rebuild).await }
        });
        assert_eq!(started.recv().unwrap(), 1);
        // The one place in line.
        let second = tokio::spawn({
            let limiter = limiter.clone();
            async move {
                limiter
                    .share_or_rebuild(Key::Seq(2), || Ok((Projections::new(), 2)))
                    .await
            }
        });
        while limiter.counts().queued < 1 {
            tokio::task::yield_now().await;
        }
        // The line is full: refused at once, long before the 600 s wait.
        let error = limiter
            .share_or_rebuild(Key::Seq(3), || unreachable!("refused"))
            .await
            .unwrap_err();
        assert_eq!(error.code, "time_travel_busy");
        // A request for the refused point gets its own try later.
        release_tx.send(()).unwrap();
        let first = first.await.unwrap().unwrap();
        assert_eq!(first.seq, 1);
        drop(first);
        assert_eq!(second.await.unwrap().unwrap().seq, 2);
        let third = limiter
            .share_or_rebuild(Key::Seq(3), || Ok((Projections::new(), 3)))
            .await
            .unwrap();
        assert_eq!(third.seq, 3);
        assert_eq!(limiter.counts().refused, 1);
    }
}
