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
//! the prefix a time names, so a time is only shared while the log has not moved).
//!
//! States are also kept after their last reader, in a small cache (`cache`, most recent
//! first), for two uses: a request for a point already rebuilt is answered from it, and a
//! rebuild for a position is folded forward from the latest kept state at or before it when
//! that is nearer than the store's nearest snapshot (`Store::projection_at_from`). A kept state
//! keeps its slot, so the bound above still holds for every state in memory; a request that
//! needs a slot when none is free first evicts kept states nobody is reading, oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tidemark_core::{Projections, Timestamp};
use tidemark_store::{At, Store};
use tokio::sync::{Notify, OnceCell, OwnedSemaphorePermit, Semaphore};

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
    /// Past states kept after their last reader (each keeps one of the `max_concurrent` slots
    /// until a request needs it); 0 keeps none.
    pub cache: usize,
}

impl Default for TimeTravelConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            max_queued: 32,
            max_wait: Duration::from_secs(5),
            cache: 1,
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
pub struct PastStateRef {
    /// Always `Some` until dropped.
    cell: Option<Arc<Shared>>,
    /// Told when this reader lets go: a kept state may have become evictable.
    released: Arc<Notify>,
}

impl Drop for PastStateRef {
    fn drop(&mut self) {
        // Let go first, then tell: a waiter woken before the reference is gone would find the
        // kept state still read, and wait again for a release that was already announced.
        drop(self.cell.take());
        self.released.notify_waiters();
    }
}

impl std::ops::Deref for PastStateRef {
    type Target = PastState;

    fn deref(&self) -> &PastState {
        match self.cell.as_ref().and_then(|cell| cell.get()) {
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
    /// Past states kept after their last reader now.
    pub cached: usize,
    /// Requests answered from a kept state (no rebuild).
    pub cache_hits: u64,
    /// Rebuilds that started from a kept state of an earlier position instead of a snapshot.
    pub folded_from_cache: u64,
    /// Kept states evicted to free a slot for another point.
    pub evicted: u64,
}

/// Called in the rebuild, before the store is read: lets tests hold a rebuild deterministically.
pub type RebuildHook = Arc<dyn Fn(At) + Send + Sync>;

/// A kept state a rebuild may fold forward from: held (so it cannot be evicted) until the
/// rebuild is done.
pub struct Base(Arc<Shared>);

impl Base {
    /// The state and the position it is at.
    pub fn state(&self) -> (&Projections, u64) {
        match self.0.get() {
            Some(Ok(state)) => (&state.projections, state.seq),
            // Only cells holding a state are kept.
            _ => unreachable!("a kept state holds a rebuilt state"),
        }
    }
}

/// The limiter and the table of states being shared.
pub struct TimeTravel {
    config: TimeTravelConfig,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    states: Mutex<HashMap<Key, Weak<Shared>>>,
    /// Kept states, the most recently used last.
    cache: Mutex<VecDeque<(Key, Arc<Shared>)>>,
    /// Told whenever a reader lets go of a state.
    released: Arc<Notify>,
    rebuilds: AtomicU64,
    shared: AtomicU64,
    waits: AtomicU64,
    refused: AtomicU64,
    cache_hits: AtomicU64,
    folded_from_cache: Arc<AtomicU64>,
    evicted: AtomicU64,
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
            cache: Mutex::new(VecDeque::new()),
            released: Arc::new(Notify::new()),
            rebuilds: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            folded_from_cache: Arc::new(AtomicU64::new(0)),
            evicted: AtomicU64::new(0),
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
            cached: self.lock_cache().len(),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            folded_from_cache: self.folded_from_cache.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, VecDeque<(Key, Arc<Shared>)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state at `at`: shared with concurrent requests for the same point, rebuilt within
    /// the limits otherwise.
    pub async fn past_state(&self, store: &Arc<Store>, at: At) -> Result<PastStateRef, ApiError> {
        let key = Key::resolve(at, store.checkpoint());
        let (store, hook) = (store.clone(), self.hook.clone());
        let folded_from_cache = self.folded_from_cache.clone();
        self.share_or_rebuild(key, move |base: Option<Base>| {
            if let Some(hook) = hook {
                hook(key.at());
            }
            let past = store
                .projection_at_from(key.at(), base.as_ref().map(Base::state))
                .map_err(|e| ApiError::query(&e))?;
            if past.from_base {
                folded_from_cache.fetch_add(1, Ordering::Relaxed);
            }
            Ok((past.projections, past.seq))
        })
        .await
    }

    async fn share_or_rebuild(
        &self,
        key: Key,
        rebuild: impl FnOnce(Option<Base>) -> Result<(Projections, u64), ApiError> + Send + 'static,
    ) -> Result<PastStateRef, ApiError> {
        let cell = self.cell_for(key);
        let failed = cell
            .get_or_init(|| self.rebuild(key, rebuild))
            .await
            .as_ref()
            .err()
            .cloned();
        match failed {
            None => {
                self.keep(key, &cell);
                Ok(PastStateRef {
                    cell: Some(cell),
                    released: self.released.clone(),
                })
            }
            Some(error) => Err(error),
        }
    }

    /// Keeps the state of `key` as the most recently used, evicting the least recently used
    /// beyond the cache's size (its slot is freed once its last reader lets go).
    fn keep(&self, key: Key, cell: &Arc<Shared>) {
        if self.config.cache == 0 {
            return;
        }
        let mut cache = self.lock_cache();
        cache.retain(|(_, kept)| !Arc::ptr_eq(kept, cell));
        cache.push_back((key, cell.clone()));
        while cache.len() > self.config.cache {
            cache.pop_front();
        }
    }

    /// The kept state a rebuild of `key` may fold forward from: for a position, the latest
    /// kept state at or before it (the store still decides whether a snapshot is nearer).
    fn base_for(&self, key: Key) -> Option<Base> {
        let Key::Seq(target) = key else {
            return None;
        };
        let cache = self.lock_cache();
        let (_, cell) = cache
            .iter()
            .filter_map(|(_, cell)| match cell.get() {
                Some(Ok(state)) if state.seq <= target => Some((state.seq, cell)),
                _ => None,
            })
            .max_by_key(|(seq, _)| *seq)?;
        Some(Base(cell.clone()))
    }

    /// Evicts the least recently used kept state that nobody is reading (its slot is freed);
    /// false when there is none.
    fn evict_one(&self) -> bool {
        let mut cache = self.lock_cache();
        let Some(unread) = cache
            .iter()
            .position(|(_, cell)| Arc::strong_count(cell) == 1)
        else {
            return false;
        };
        let evicted = cache.remove(unread);
        drop(cache);
        drop(evicted);
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The shared cell for `key`: the one another request made (unless it failed), or a new one.
    fn cell_for(&self, key: Key) -> Arc<Shared> {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cell) = states.get(&key).and_then(Weak::upgrade)
            && !matches!(cell.get(), Some(Err(_)))
        {
            // Strong references: the cache's, this one, and any reader's.
            let kept = self
                .lock_cache()
                .iter()
                .any(|(_, kept)| Arc::ptr_eq(kept, &cell));
            if kept && Arc::strong_count(&cell) == 2 {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
            } else {
                self.shared.fetch_add(1, Ordering::Relaxed);
            }
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
        key: Key,
        rebuild: impl FnOnce(Option<Base>) -> Result<(Projections, u64), ApiError> + Send + 'static,
    ) -> Result<PastState, ApiError> {
        let slot = self.slot().await?;
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        // Chosen after the slot: evicting kept states to get one must not keep the base alive.
        let base = self.base_for(key);
        // The slot goes with the work: if this request goes away, the rebuild still holds it
        // until it ends, so abandoned rebuilds count against the limit too.
        let (built, slot) = tokio::task::spawn_blocking(move || (rebuild(base), slot))
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
        loop {
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                return Ok(slot);
            }
            if !self.evict_one() {
                break;
            }
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        let line = self.queued.fetch_add(1, Ordering::AcqRel);
        let slot = if line >= self.config.max_queued {
            None
        } else {
            self.wait_for_slot(tokio::time::Instant::now() + self.config.max_wait)
                .await
        };
        self.queued.fetch_sub(1, Ordering::AcqRel);
        slot.ok_or_else(|| self.refuse())
    }

    /// Waits until a slot is freed, or a kept state's last reader lets go (then it is evicted
    /// for its slot), or the deadline passes.
    async fn wait_for_slot(&self, deadline: tokio::time::Instant) -> Option<OwnedSemaphorePermit> {
        loop {
            // Registered before trying to evict, so a release in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.evict_one()
                && let Ok(slot) = self.slots.clone().try_acquire_owned()
            {
                return Some(slot);
            }
            tokio::select! {
                slot = self.slots.clone().acquire_owned() => return slot.ok(),
                () = &mut released => {}
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
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
    ) -> impl FnOnce(Option<Base>) -> Result<(Projections, u64), ApiError> + Send + 'static {
        move |_| {
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
            cache: 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_state_keeps_its_slot_until_its_last_reader_lets_go() {
        let limiter = Arc::new(TimeTravel::new(config(1, 4, Duration::from_millis(50))));
        let state = limiter
            .share_or_rebuild(Key::Seq(1), |_| Ok((Projections::new(), 1)))
            .await
            .unwrap();
        assert_eq!(limiter.counts().states, 1);
        // Rebuilt, but still read: another position has to wait, and is refused in time.
        let error = limiter
            .share_or_rebuild(Key::Seq(2), |_| Ok((Projections::new(), 2)))
            .await
            .unwrap_err();
        assert_eq!(
            (error.status.as_u16(), error.code, error.retry_after_secs),
            (503, "time_travel_busy", Some(1))
        );
        // The same position is shared while it is held.
        let again = limiter
            .share_or_rebuild(Key::Seq(1), |_| unreachable!("shared, not rebuilt"))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(
            state.cell.as_ref().unwrap(),
            again.cell.as_ref().unwrap()
        ));
        drop((state, again));
        assert_eq!(limiter.counts().states, 0);
        limiter
            .share_or_rebuild(Key::Seq(2), |_| Ok((Projections::new(), 2)))
            .await
            .unwrap();
        let counts = limiter.counts();
        assert_eq!(
            (counts.rebuilds, counts.shared, counts.waits, counts.refused),
            (2, 1, 1, 1)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_request_takes_the_slot_of_a_kept_state_its_last_reader_let_go() {
        let limiter = Arc::new(TimeTravel::new(TimeTravelConfig {
            cache: 1,
            ..config(1, 4, Duration::from_secs(600))
        }));
        let first = limiter
            .share_or_rebuild(Key::Seq(1), |_| Ok((Projections::new(), 1)))
            .await
            .unwrap();
        // Kept and still read: the one slot is taken, and not evictable while it is read.
        let second = tokio::spawn({
            let limiter = limiter.clone();
            async move {
                limiter
                    .share_or_rebuild(Key::Seq(2), |base| {
                        // Evicted for its slot, so it is not offered as a base.
                        assert!(base.is_none());
                        Ok((Projections::new(), 2))
                    })
                    .await
            }
        });
        while limiter.counts().queued < 1 {
            tokio::task::yield_now().await;
        }
        // Letting go makes the kept state evictable: the waiting request is told at once
        // rather than when its 600 s wait ends.
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(60), second)
            .await
            .expect("woken when the kept state's last reader let go")
            .unwrap()
            .unwrap();
        assert_eq!(second.seq, 2);
        let counts = limiter.counts();
        assert_eq!(
            (counts.evicted, counts.refused, counts.cached, counts.states),
            (1, 0, 1, 1)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_kept_state_at_or_before_a_position_is_offered_as_its_base() {
        let limiter = Arc::new(TimeTravel::new(TimeTravelConfig {
            cache: 2,
            ..config(3, 4, Duration::from_secs(600))
        }));
        for seq in [5, 9] {
            limiter
                .share_or_rebuild(Key::Seq(seq), move |_| Ok((Projections::new(), seq)))
                .await
                .unwrap();
        }
        let offered = |target: u64| {
            let limiter = limiter.clone();
            async move {
                let (tx, rx) = mpsc::channel();
                limiter
                    .share_or_rebuild(Key::Seq(target), move |base| {
                        tx.send(base.map(|b| b.state().1)).unwrap();
                        Ok((Projections::new(), target))
                    })
                    .await
                    .unwrap();
                rx.recv().unwrap()
            }
        };
        // The latest kept state at or before the position; none before the earliest.
        assert_eq!(offered(7).await, Some(5));
        assert_eq!(offered(4).await, None);
        // 7 and 4 were kept in turn (two at most), so 5 and 9 are gone.
        assert_eq!(offered(12).await, Some(7));
        // A point in time is never folded forward (its prefix is not known before reading).
        let (tx, rx) = mpsc::channel();
        let time = Key::Time {
            time: Timestamp::from_unix_nanos(0),
            checkpoint: 20,
        };
        limiter
            .share_or_rebuild(time, move |base| {
                tx.send(base.is_some()).unwrap();
                Ok((Projections::new(), 3))
            })
            .await
            .unwrap();
        assert!(!rx.recv().unwrap());
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
                    .share_or_rebuild(Key::Seq(2), |_| Ok((Projections::new(), 2)))
                    .await
            }
        });
        while limiter.counts().queued < 1 {
            tokio::task::yield_now().await;
        }
        // The line is full: refused at once, long before the 600 s wait.
        let error = limiter
            .share_or_rebuild(Key::Seq(3), |_| unreachable!("refused"))
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
            .share_or_rebuild(Key::Seq(3), |_| Ok((Projections::new(), 3)))
            .await
            .unwrap();
        assert_eq!(third.seq, 3);
        assert_eq!(limiter.counts().refused, 1);
    }
}
