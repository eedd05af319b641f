//! The live stream's machinery (`GET /v1/stream`, `routes/stream.rs`): each subscriber follows
//! the log itself, page by page through the event filter indexes, from its resume position on,
//! and waits for the next commit once it has caught up.
//!
//! Why a subscriber reads the log rather than a fan-out of the writer's batches: resuming from
//! any position and following live are then one loop, so a resume can neither skip nor repeat
//! an event (every position at or before `read_to` was sent or does not match); the writer does
//! nothing per subscriber (a commit only moves a `watch` value); and a subscriber holds at most
//! one page and its bounded send buffer, however far behind it is. The same code follows a
//! replica's store, whose positions are its stream's sequences.
//!
//! Bounds (all in [`StreamLimits`], each exceedance counted in `/metrics`):
//! - at most `max_subscribers` at once: one more is answered 503;
//! - a subscriber's frames wait in a buffer of `buffer_events`; when it stays full for
//!   `max_stall` (the client is not reading), the subscriber is cut off: the buffered frames
//!   are still delivered, then a final `cut_off` event that says where to resume;
//! - a heartbeat every `heartbeat` while nothing is sent, so proxies keep the connection;
//! - shutting down ends every stream with a final `cut_off` event (`shutting_down`).
//!
//! A filtered subscriber does not read the store for commits that cannot hold an event it
//! wants: the hub keeps the clusters and types of the last [`RECENT_COMMITS`] commits, so an
//! idle subscriber (say, a page of a quiet cluster) costs a wake-up and a look at those, not a
//! read, per commit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use serde::Serialize;
use tidemark_core::EventType;
use tidemark_core::changes::{Change, drift_keys};
use tidemark_store::codec::StoredEvent;
use tidemark_store::{Commit, EventFilter, Store};
use tokio::sync::{mpsc, watch};

/// Events one page of a subscriber reads at most.
const PAGE_EVENTS: usize = 512;
/// How long a woken subscriber waits before reading, so that commits in quick succession are
/// read as one page (the latency this adds to a live view is not noticed; the cost it saves
/// under full-speed ingest is one read per commit per subscriber).
const WAKE_COALESCE: Duration = Duration::from_millis(20);
/// Commits whose clusters and types the hub remembers.
const RECENT_COMMITS: usize = 4_096;
/// Clusters one commit's summary names; a commit of more counts as holding every cluster.
const MAX_SUMMARY_CLUSTERS: usize = 16;

/// What one commit stored, as far as a filter on cluster and type can tell.
#[derive(Debug)]
struct CommitSummary {
    previous: u64,
    checkpoint: u64,
    /// Its events' clusters; `None` when there were more than [`MAX_SUMMARY_CLUSTERS`].
    clusters: Option<Vec<Box<str>>>,
    /// Its events' types, one bit per index in [`EventType::ALL`].
    types: u128,
}

impl CommitSummary {
    fn of(commit: &Commit<'_>) -> Self {
        let mut clusters: Option<Vec<Box<str>>> = Some(Vec::new());
        let mut types = 0u128;
        for (_, event) in commit.stored {
            types |= type_bit(event.event_type());
            if let Some(list) = &mut clusters
                && !list.iter().any(|c| **c == *event.cluster)
            {
                if list.len() == MAX_SUMMARY_CLUSTERS {
                    clusters = None;
                } else {
                    list.push(event.cluster.as_str().into());
                }
            }
        }
        Self {
            previous: commit.previous,
            checkpoint: commit.checkpoint,
            clusters,
            types,
        }
    }

    /// Whether an event of this commit may match `filter` (its cluster and type; the other
    /// filters are not summarised).
    fn may_match(&self, filter: &EventFilter) -> bool {
        let cluster_may = match (&filter.cluster, &self.clusters) {
            (Some(wanted), Some(clusters)) => clusters.iter().any(|c| **c == **wanted),
            _ => true,
        };
        let type_may = filter
            .event_type
            .is_none_or(|wanted| self.types & type_bit(wanted) != 0);
        cluster_may && type_may
    }
}

/// The bit of an event type in a [`CommitSummary`].
fn type_bit(event_type: EventType) -> u128 {
    // A fieldless enum's discriminant is its place in the declaration, which is `ALL`'s order
    // (one macro writes both); called for every event a commit stored, on the writer's thread.
    1u128 << (event_type as u32).min(127)
}

/// The stream's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Subscribers at once (`--max-stream-subscribers`); one more is answered 503.
    pub max_subscribers: usize,
    /// Frames (events) buffered for one subscriber (`--stream-buffer-events`).
    pub buffer_events: usize,
    /// How long a full buffer may wait for the client before it is cut off
    /// (`--stream-max-stall`).
    pub max_stall: Duration,
    /// A heartbeat after this long without a frame (`--stream-heartbeat`).
    pub heartbeat: Duration,
}

impl Default for StreamLimits {
    /// 256 subscribers, 1,024 buffered events each, cut off after 30 s of a full buffer, a
    /// heartbeat every 15 s (below the 30 to 60 s idle timeouts of common proxies).
    fn default() -> Self {
        Self {
            max_subscribers: 256,
            buffer_events: 1_024,
            max_stall: Duration::from_secs(30),
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// What every subscriber shares: the store's checkpoint as commits move it, the shutdown
/// signal, the limits and the counters.
#[derive(Debug)]
pub struct StreamHub {
    checkpoint: watch::Receiver<u64>,
    /// The last [`RECENT_COMMITS`] commits, oldest first.
    recent: Arc<Mutex<VecDeque<CommitSummary>>>,
    closing: watch::Receiver<bool>,
    close: watch::Sender<bool>,
    subscribers: AtomicUsize,
    limits: StreamLimits,
    counters: StreamCounters,
}

/// What `/metrics` shows of the stream.
#[derive(Debug, Default)]
struct StreamCounters {
    refused: AtomicU64,
    cut_off_slow: AtomicU64,
    cut_off_shutdown: AtomicU64,
    events_sent: AtomicU64,
}

/// Counts a subscriber as connected until dropped.
#[derive(Debug)]
pub(crate) struct Subscribed(Arc<StreamHub>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StreamHub {
    /// The hub of `store`'s subscribers: it learns of every later commit.
    pub fn for_store(store: &Store, limits: StreamLimits) -> Arc<Self> {
        let (moved, checkpoint) = watch::channel(store.checkpoint());
        let recent: Arc<Mutex<VecDeque<CommitSummary>>> = Arc::default();
        let summaries = recent.clone();
        store.on_commit(Arc::new(move |commit| {
            let summary = CommitSummary::of(commit);
            {
                let mut recent = summaries.lock().unwrap_or_else(|p| p.into_inner());
                if recent.len() == RECENT_COMMITS {
                    recent.pop_front();
                }
                recent.push_back(summary);
            }
            moved.send_replace(commit.checkpoint);
        }));
        let (close, closing) = watch::channel(false);
        Arc::new(Self {
            checkpoint,
            recent,
            closing,
            close,
            subscribers: AtomicUsize::new(0),
            limits,
            counters: StreamCounters::default(),
        })
    }

    /// Ends every stream (each with a final `cut_off` event saying the server is shutting
    /// down) and refuses new ones: called when the server starts shutting down, so that open
    /// streams do not hold the shutdown for its whole grace period.
    pub fn close(&self) {
        self.close.send_replace(true);
    }

    /// Where a subscriber at `after` may go on without reading the store: the last commit the
    /// hub knows of, when none of the commits after `after` holds an event of the filter's
    /// cluster and type. `None` when it must read (the filter names neither, a commit may
    /// match, or `after` is older than the commits the hub remembers).
    fn skip_to(&self, after: u64, filter: &EventFilter) -> Option<u64> {
        if filter.cluster.is_none() && filter.event_type.is_none() {
            return None;
        }
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let (oldest, latest) = (recent.front()?, recent.back()?);
        if after < oldest.previous || latest.checkpoint <= after {
            return None;
        }
        // Oldest first, by checkpoint: the commits after `after` are a suffix.
        let first_later = recent.partition_point(|c| c.checkpoint <= after);
        for commit in recent.range(first_later..) {
            if commit.may_match(filter) {
                return None;
            }
        }
        Some(latest.checkpoint)
    }

    /// The limits.
    pub(crate) fn limits(&self) -> &StreamLimits {
        &self.limits
    }

    /// A place for one more subscriber, or `None` at the limit (counted) or while shutting
    /// down.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Option<Subscribed> {
        if *self.closing.borrow() {
            return None;
        }
        let taken = self
            .subscribers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limits.max_subscribers).then_some(n + 1)
            });
        match taken {
            Ok(_) => Some(Subscribed(self.clone())),
            Err(_) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The counters in Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let c = &self.counters;
        let _ = writeln!(
            out,
            "# HELP tidemark_stream_subscribers subscribers of GET /v1/stream now (at most --max-stream-subscribers)\n# TYPE tidemark_stream_subscribers gauge\ntidemark_stream_subscribers {}",
            self.subscribers.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tidemark_stream_refused_total subscriptions answered 503: --max-stream-subscribers were open\n# TYPE tidemark_stream_refused_total counter\ntidemark_stream_refused_total {}",
            c.refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tidemark_stream_cut_off_total streams ended by the server with a cut_off event, by reason (slow_subscriber: the buffer stayed full for --stream-max-stall)\n# TYPE tidemark_stream_cut_off_total counter\ntidemark_stream_cut_off_total{{reason=\"slow_subscriber\"}} {}\ntidemark_stream_cut_off_total{{reason=\"shutting_down\"}} {}",
            c.cut_off_slow.load(Ordering::Relaxed),
            c.cut_off_shutdown.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tidemark_stream_events_sent_total events handed to stream subscribers\n# TYPE tidemark_stream_events_sent_total counter\ntidemark_stream_events_sent_total {}",
            c.events_sent.load(Ordering::Relaxed)
        );
    }
}

/// The `data` of an `event` frame: a stored event with its position, as `GET /v1/events` lists
/// them.
#[derive(Serialize)]
struct EventData<'a> {
    seq: u64,
    recorded_at: tidemark_core::Timestamp,
    event: &'a tidemark_core::Event,
}

/// The `data` of the `subscribed` frame.
#[derive(Serialize)]
struct SubscribedData {
    /// The stream sends the matching events after this position.
    after: u64,
    /// The store's checkpoint when the stream started.
    checkpoint: u64,
}

/// The `data` of the final `cut_off` frame.
#[derive(Serialize)]
struct CutOffData {
    /// `slow_subscriber`, `shutting_down` or `store_error`.
    reason: &'static str,
    /// What happened and what to do.
    message: String,
    /// Resume with `Last-Event-ID: N` (or `?after=N`): every matching event up to it was sent.
    resume_after: u64,
}

/// One SSE frame: optional id, event name, JSON data.
fn frame(id: Option<u64>, event: &str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(json.len() + 48);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\ndata: ");
    // serde_json escapes line breaks inside strings: the data is one line.
    out.push_str(&json);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// What a subscriber follows: the filter and where it starts.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) filter: EventFilter,
    pub(crate) after: u64,
    /// Send one `moved` frame per page of matching events (the last one's position) instead of
    /// the events: for a page that only needs to know that something changed.
    pub(crate) positions_only: bool,
    /// Send each event's changes after it (`change` frames).
    pub(crate) changes: bool,
}

/// The `data` of a `moved` frame.
#[derive(Serialize)]
struct MovedData {
    /// The last matching position sent.
    seq: u64,
}

/// Whether a filter lets every event through.
fn matches_everything(filter: &EventFilter) -> bool {
    let EventFilter {
        cluster,
        event_type,
        since,
        until,
        check_key,
        incident,
        source,
    } = filter;
    cluster.is_none()
        && event_type.is_none()
        && since.is_none()
        && until.is_none()
        && check_key.is_none()
        && incident.is_none()
        && source.is_none()
}

/// The frames of one subscriber: its buffer, then (after the producer ended it) the final frame.
pub(crate) type FinalFrame = Arc<Mutex<Option<Bytes>>>;

/// Starts following for one subscriber; answers the receiving end of its buffer and the slot
/// of its final frame, which the response body sends in that order. The body holds the
/// subscriber's place ([`Subscribed`]) for as long as the connection has it: a subscriber cut
/// off but not yet gone still counts.
pub(crate) fn start(
    hub: Arc<StreamHub>,
    store: Arc<Store>,
    subscription: Subscription,
) -> (mpsc::Receiver<Bytes>, FinalFrame) {
    let (tx, rx) = mpsc::channel(hub.limits.buffer_events.max(1));
    let last = FinalFrame::default();
    let slot = last.clone();
    tokio::spawn(async move {
        let closing = hub.closing.clone();
        let mut follower = Follower {
            hub,
            store,
            tx,
            closing,
            last_id: subscription.after,
            last_frame: tokio::time::Instant::now(),
        };
        let end = follower.run(subscription).await;
        if let Some(end) = end {
            let counter = match end.reason {
                "slow_subscriber" => Some(&follower.hub.counters.cut_off_slow),
                "shutting_down" => Some(&follower.hub.counters.cut_off_shutdown),
                _ => None,
            };
            if let Some(counter) = counter {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(frame(None, "cut_off", &end));
        }
        // Dropping the sender lets the body send what is buffered, then the final frame.
    });
    (rx, last)
}

/// Why sending a frame stopped the stream.
enum SendStop {
    /// The client is gone.
    Gone,
    /// The buffer stayed full for `max_stall`.
    Stalled,
    /// The server started shutting down while the buffer was full.
    Closing,
}

/// One subscriber's producer.
struct Follower {
    hub: Arc<StreamHub>,
    /// The hub's shutdown signal.
    closing: watch::Receiver<bool>,
    store: Arc<Store>,
    tx: mpsc::Sender<Bytes>,
    /// The last id handed to the buffer: a resume from it misses nothing.
    last_id: u64,
    /// When the last frame was handed to the buffer: the heartbeat is due `heartbeat` after.
    last_frame: tokio::time::Instant,
}

impl Follower {
    /// Follows until the client leaves (`None`) or the stream is ended with a final frame.
    async fn run(&mut self, subscription: Subscription) -> Option<CutOffData> {
        let Subscription {
            filter,
            mut after,
            positions_only,
            changes,
        } = subscription;
        let with_changes = changes && !positions_only;
        // Positions of an unfiltered log need no read: every commit moves them.
        let unread = positions_only && matches_everything(&filter);
        let mut checkpoint = self.hub.checkpoint.clone();
        let mut closing = self.hub.closing.clone();
        let started = SubscribedData {
            after,
            checkpoint: *checkpoint.borrow(),
        };
        let mut hello = b"retry: 3000\n\n".to_vec();
        hello.extend_from_slice(&frame(None, "subscribed", &started));
        let hello = Bytes::from(hello);
        if let Err(stop) = self.send(hello).await {
            return self.stopped(stop);
        }
        let filter = Arc::new(filter);
        loop {
            // Catch up: page after page until a page reaches the checkpoint it read at.
            loop {
                if *closing.borrow() {
                    return Some(self.shutting_down());
                }
                if self.tx.is_closed() {
                    return None;
                }
                if let Err(stop) = self.heartbeat_if_due(after).await {
                    return self.stopped(stop);
                }
                if let Some(to) = self.hub.skip_to(after, &filter) {
                    after = to;
                    break;
                }
                if unread {
                    let to = *checkpoint.borrow();
                    if to > after {
                        if let Err(stop) = self
                            .send(frame(Some(to), "moved", &MovedData { seq: to }))
                            .await
                        {
                            return self.stopped(stop);
                        }
                        self.last_id = to;
                        after = to;
                    }
                    break;
                }
                let store = self.store.clone();
                let page_filter = filter.clone();
                let page = tokio::task::spawn_blocking(move || {
                    let page = store.events_page(&page_filter, after, PAGE_EVENTS)?;
                    let changes = if with_changes {
                        let positions: Vec<u64> = page.events.iter().map(|(seq, _)| *seq).collect();
                        store.changes_at(&positions)?
                    } else {
                        Vec::new()
                    };
                    Ok::<_, tidemark_store::QueryError>((page, changes))
                })
                .await;
                let (page, mut changes) = match page {
                    Ok(Ok(page)) => page,
                    Ok(Err(error)) => return Some(self.store_error(error.to_string())),
                    Err(error) => return Some(self.store_error(error.to_string())),
                };
                let sent = page.events.len() as u64;
                if positions_only {
                    if let Some(&(seq, _)) = page.events.last() {
                        if let Err(stop) = self
                            .send(frame(Some(seq), "moved", &MovedData { seq }))
                            .await
                        {
                            return self.stopped(stop);
                        }
                        self.last_id = seq;
                    }
                } else {
                    let mut changes = changes.drain(..);
                    for (seq, stored) in page.events {
                        let bytes = match changes.next() {
                            Some(said) => {
                                position_frames(seq, &stored, &narrowed(&filter, &stored, said))
                            }
                            None => event_frame(seq, &stored, true),
                        };
                        if let Err(stop) = self.send(bytes).await {
                            return self.stopped(stop);
                        }
                        self.last_id = seq;
                    }
                    self.hub
                        .counters
                        .events_sent
                        .fetch_add(sent, Ordering::Relaxed);
                }
                after = after.max(page.read_to);
                if page.next.is_none() {
                    break;
                }
            }
            // Caught up: wait for a commit past it, a heartbeat, the shutdown or the client.
            // Due a heartbeat after the last frame, however often commits wake the subscriber
            // (a filtered stream may be woken often and send nothing).
            let heartbeat = tokio::time::sleep_until(self.last_frame + self.hub.limits.heartbeat);
            tokio::select! {
                moved = async { checkpoint.wait_for(|c| *c > after).await.is_ok() } => {
                    if !moved {
                        return Some(self.shutting_down());
                    }
                    tokio::time::sleep(WAKE_COALESCE).await;
                }
                () = heartbeat => {
                    // The id moves a reconnecting client past what it has seen (filtered
                    // streams may match nothing for long), without an event to dispatch.
                    if let Err(stop) = self.heartbeat_if_due(after).await {
                        return self.stopped(stop);
                    }
                }
                () = async { let _ = closing.wait_for(|c| *c).await; } => {
                    return Some(self.shutting_down());
                }
                () = self.tx.closed() => return None,
            }
        }
    }

    /// Hands a frame to the buffer, waiting at most `max_stall` for room.
    /// Hands a frame to the buffer, waiting at most `max_stall` for room (and not past the
    /// start of a shutdown).
    async fn send(&mut self, bytes: Bytes) -> Result<(), SendStop> {
        let mut closing = self.closing.clone();
        let sent = tokio::select! {
            sent = self.tx.send_timeout(bytes, self.hub.limits.max_stall) => sent,
            () = async { let _ = closing.wait_for(|c| *c).await; } => return Err(SendStop::Closing),
        };
        match sent {
            Ok(()) => {
                self.last_frame = tokio::time::Instant::now();
                Ok(())
            }
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(SendStop::Stalled),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(SendStop::Gone),
        }
    }

    /// A heartbeat when one is due: the catch-up of a rare filter may read many pages without
    /// a match, and the client must still hear from it (with the position read to).
    async fn heartbeat_if_due(&mut self, after: u64) -> Result<(), SendStop> {
        if tokio::time::Instant::now() < self.last_frame + self.hub.limits.heartbeat {
            return Ok(());
        }
        let beat = if after > self.last_id {
            Bytes::from(format!("id: {after}\n: heartbeat\n\n"))
        } else {
            Bytes::from_static(b": heartbeat\n\n")
        };
        self.send(beat).await?;
        self.last_id = self.last_id.max(after);
        Ok(())
    }

    fn stopped(&self, stop: SendStop) -> Option<CutOffData> {
        match stop {
            SendStop::Gone => None,
            SendStop::Closing => Some(self.shutting_down()),
            SendStop::Stalled => Some(CutOffData {
                reason: "slow_subscriber",
                message: format!(
                    "this subscriber fell behind: its buffer of {} events stayed full for {}s (--stream-buffer-events, --stream-max-stall); reconnect with Last-Event-ID: {} (or ?after={}) to go on without a gap",
                    self.hub.limits.buffer_events,
                    self.hub.limits.max_stall.as_secs_f64(),
                    self.last_id,
                    self.last_id
                ),
                resume_after: self.last_id,
            }),
        }
    }

    fn shutting_down(&self) -> CutOffData {
        CutOffData {
            reason: "shutting_down",
            message: format!(
                "the server is shutting down; reconnect (to it once it is back, or to another replica) with Last-Event-ID: {} to go on without a gap",
                self.last_id
            ),
            resume_after: self.last_id,
        }
    }

    fn store_error(&self, error: String) -> CutOffData {
        tracing::warn!(%error, "a stream could not read the log");
        CutOffData {
            reason: "store_error",
            message: format!(
                "the store could not be read ({error}); reconnect with Last-Event-ID: {} to go on",
                self.last_id
            ),
            resume_after: self.last_id,
        }
    }
}

/// The `event` frame of the stored event at `seq`, with `seq` as its `id` line when `with_id`
/// (its data says `seq` either way).
fn event_frame(seq: u64, stored: &StoredEvent, with_id: bool) -> Bytes {
    frame(
        with_id.then_some(seq),
        "event",
        &EventData {
            seq,
            recorded_at: stored.recorded_at,
            event: &stored.event,
        },
    )
}

/// The `data` of a `change` frame: one change the projections drew from the event at `seq`.
#[derive(Serialize)]
struct ChangeData<'a> {
    seq: u64,
    what: &'static str,
    subject: &'a str,
    change: &'a str,
}

/// The frames of one position with its changes, as one buffer (so a slow subscriber is cut
/// off between positions, never inside one): the `event` frame, then a `change` frame per
/// change; the position's `id` on the last, so a client that resumes from the last id it saw
/// never skips the rest of a position.
fn position_frames(seq: u64, stored: &StoredEvent, changes: &[Change]) -> Bytes {
    if changes.is_empty() {
        return event_frame(seq, stored, true);
    }
    let mut out = Vec::from(&event_frame(seq, stored, false)[..]);
    for (n, change) in changes.iter().enumerate() {
        let id = (n + 1 == changes.len()).then_some(seq);
        out.extend_from_slice(&frame(
            id,
            "change",
            &ChangeData {
                seq,
                what: change.what,
                subject: &change.subject,
                change: &change.change,
            },
        ));
    }
    Bytes::from(out)
}

/// The changes of an event a subscriber is sent: under `check_key` only those of that finding
/// (of the event's cluster: its own state, flaps, reachability, an unstable key, a drift that
/// names it), under `incident` only those of that incident; the other filters select events
/// and keep all their changes.
fn narrowed(filter: &EventFilter, stored: &StoredEvent, said: Vec<Change>) -> Vec<Change> {
    if filter.check_key.is_none() && filter.incident.is_none() {
        return said;
    }
    let finding = filter
        .check_key
        .as_deref()
        .map(|key| format!("{} {key}", stored.event.cluster));
    said.into_iter()
        .filter(|change| {
            let of_finding = filter
                .check_key
                .as_deref()
                .is_none_or(|key| match change.what {
                    "finding" | "flap" | "stuck" | "unstable_key" => {
                        finding.as_deref() == Some(change.subject.as_str())
                    }
                    "drift" => drift_keys(&stored.event.cluster, &change.subject)
                        .is_some_and(|(old, new)| old == key || new == key),
                    _ => false,
                });
            let of_incident = filter
                .incident
                .as_deref()
                .is_none_or(|id| change.what == "incident" && change.subject == id);
            of_finding && of_incident
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_one_data_line_even_when_the_event_holds_line_breaks() {
        let bytes = frame(Some(7), "event", &serde_json::json!({"text": "a\nb\r\nc"}));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(
            text,
            "id: 7\nevent: event\ndata: {\"text\":\"a\\nb\\r\\nc\"}\n\n"
        );
    }

    fn event(cluster: &str, event_type: &str) -> tidemark_core::Event {
        let data = match event_type {
            "note.added" => r#"{"author":"a","kind":"observation","text":"t"}"#,
            _ => r#"{"cycle":"c","categories":["pods"],"findings":[]}"#,
        };
        tidemark_core::decode_event(&format!(
            r#"{{"id":"{cluster}-{event_type}","schema":1,"type":"{event_type}","time":"2026-03-02T14:00:00Z","source":"s","cluster":"{cluster}","data":{data}}}"#
        ))
        .unwrap()
    }

    fn filter(cluster: Option<&str>, event_type: Option<&str>) -> EventFilter {
        EventFilter {
            cluster: cluster.map(str::to_owned),
            event_type: event_type.and_then(EventType::from_wire),
            since: None,
            until: None,
            check_key: None,
            incident: None,
            source: None,
        }
    }

    #[test]
    fn every_event_type_has_a_bit_of_its_own() {
        assert!(EventType::ALL.len() <= 128);
        for (index, event_type) in EventType::ALL.iter().enumerate() {
            assert_eq!(type_bit(*event_type), 1u128 << index, "{event_type:?}");
        }
    }

    #[test]
    fn a_commit_summary_rules_out_only_what_it_knows_it_does_not_hold() {
        let events = [event("a", "note.added"), event("b", "cycle.completed")];
        let stored: Vec<(u64, &tidemark_core::Event)> = vec![(1, &events[0]), (2, &events[1])];
        let summary = CommitSummary::of(&Commit {
            previous: 0,
            checkpoint: 2,
            stored: &stored,
        });
        assert!(summary.may_match(&filter(Some("a"), None)));
        assert!(summary.may_match(&filter(None, Some("cycle.completed"))));
        // Both are in the commit, though not in one event: it may match, so it is read.
        assert!(summary.may_match(&filter(Some("a"), Some("cycle.completed"))));
        assert!(!summary.may_match(&filter(Some("c"), None)));
        assert!(!summary.may_match(&filter(None, Some("span.recorded"))));
        // Past the clusters a summary names, any cluster may match.
        let many: Vec<tidemark_core::Event> = (0..=MAX_SUMMARY_CLUSTERS)
            .map(|n| event(&format!("c{n}"), "note.added"))
            .collect();
        let stored: Vec<(u64, &tidemark_core::Event)> = many
            .iter()
            .enumerate()
            .map(|(n, e)| (n as u64 + 1, e))
            .collect();
        let summary = CommitSummary::of(&Commit {
            previous: 0,
            checkpoint: stored.len() as u64,
            stored: &stored,
        });
        assert!(summary.clusters.is_none());
        assert!(summary.may_match(&filter(Some("elsewhere"), None)));
        assert!(!summary.may_match(&filter(Some("elsewhere"), Some("cycle.completed"))));
    }
}
