//! Serving HTTP connections within limits: a header read timeout, a body read timeout, a limit
//! on open connections that keeps headroom for probes, and a shutdown that ends after a grace
//! period whatever clients do.
//!
//! - **Headers** must arrive within `header_read_timeout` of the connection waiting for a
//!   request (hyper's timer: it covers idle keep-alive connections and headers sent a byte at
//!   a time); the connection is then closed.
//! - **Bodies** must arrive within `body_read_timeout` of their headers: the body is read
//!   through a deadline, and a request whose body was cut off is answered 408.
//! - **Writes** must make progress: a connection whose client takes no byte of an answer for
//!   `write_stall_timeout` is closed (a client that stopped reading a long answer or a live
//!   stream; the kernel's buffers are full and the answer can go no further).
//! - **Connections**: up to `max_connections` are served. Above that, [`PROBE_HEADROOM`] more
//!   are accepted, each for one request with a short header timeout: `/healthz`, `/readyz` and
//!   `/metrics` are answered (so probes and scrapes still get through a flood), anything else
//!   gets 503 `too_many_connections` with `Retry-After`. Beyond the headroom a connection is
//!   closed as soon as it is accepted, so file descriptors never run out under a flood.
//! - **Shutdown**: the listener closes, idle connections close, requests in flight may finish
//!   within `shutdown_grace`; connections still open after it are dropped. What a dropped
//!   request had handed to the writer is still committed (the writer drains after this).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Connections accepted above `max_connections`, for probes: each serves one request.
pub const PROBE_HEADROOM: usize = 32;
/// The header read timeout of a connection in the probe headroom (or the configured one, when
/// shorter): a probe sends its request at once, and a slot held idle is soon given back.
pub const PROBE_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// The paths a connection in the probe headroom answers.
pub const PROBE_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The limits of connections and reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may take to send a request's headers (and may stay idle).
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive after its headers.
    pub body_read_timeout: Duration,
    /// Connections served at once (plus [`PROBE_HEADROOM`] for probes).
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight before it drops their connections.
    pub shutdown_grace: Duration,
    /// How long a connection may take no byte of an answer before it is closed.
    pub write_stall_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
            write_stall_timeout: Duration::from_secs(60),
        }
    }
}

/// The body read timeout of a request, put in its extensions by the connection that read it
/// (requests that did not come over a connection, as in tests with `oneshot`, have none).
#[derive(Clone, Copy, Debug)]
pub struct BodyReadTimeout(pub Duration);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then shuts down within
/// the grace period. Returns when every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let probe_slots = Arc::new(Semaphore::new(PROBE_HEADROOM));
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        // Finished connections are collected as new ones come, so the set stays as large as
        // the number open.
        while connections.try_join_next().is_some() {}
        let (slot, kind) = match slots.clone().try_acquire_owned() {
            Ok(slot) => (slot, Kind::Full),
            Err(_) => match probe_slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    metrics.connection_over_limit();
                    (slot, Kind::ProbesOnly)
                }
                Err(_) => {
                    metrics.connection_refused();
                    drop(stream);
                    continue;
                }
            },
        };
        let connection = Connection {
            peer,
            app: app.clone(),
            limits: limits.clone(),
            kind,
            metrics: metrics.clone(),
            _slot: slot,
        };
        connections.spawn(connection.serve(stream, stop.clone()));
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let left = connections.len();
        tracing::warn!(
            connections = left,
            grace_secs = limits.shutdown_grace.as_secs_f64(),
            "shutdown grace period over: closing the connections still open (what they handed to the writer is committed)"
        );
        metrics.connections_dropped_at_shutdown(left as u64);
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// An accept error: a connection that failed before it was accepted is skipped; anything else
/// (out of file descriptors) is logged, and accepting resumes after a pause rather than spinning.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed (out of file descriptors? lower --max-connections or raise the limit); retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What a connection may ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Anything, as many requests as it likes.
    Full,
    /// One request, answered only for [`PROBE_PATHS`].
    ProbesOnly,
}

struct Connection {
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    kind: Kind,
    metrics: Arc<Metrics>,
    /// Held while the connection is open.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream, mut stop: watch::Receiver<bool>) {
        let _open = self.metrics.connection_opened();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new());
        match self.kind {
            Kind::Full => http.header_read_timeout(self.limits.header_read_timeout),
            Kind::ProbesOnly => http
                .header_read_timeout(
                    self.limits
                        .header_read_timeout
                        .min(PROBE_HEADER_READ_TIMEOUT),
                )
                .keep_alive(false),
        };
        let (peer, app, kind) = (self.peer, self.app, self.kind);
        let body_read_timeout = BodyReadTimeout(self.limits.body_read_timeout);
        let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(body_read_timeout);
            let app = app.clone();
            async move {
                if kind == Kind::ProbesOnly && !PROBE_PATHS.contains(&request.uri().path()) {
                    return Ok::<_, std::convert::Infallible>(too_many_connections());
                }
                app.oneshot(request).await
            }
        });
        let stream = StallGuard::new(stream, self.limits.write_stall_timeout);
        let stalled = stream.stalled.clone();
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let served = tokio::select! {
            served = connection.as_mut() => served,
            () = stopping(&mut stop) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = served {
            if stalled.load(Ordering::Relaxed) {
                self.metrics.write_stall_timeout();
                tracing::debug!(%peer, "closed a connection whose client took no byte of its answer in time");
            } else if error.is_timeout() {
                self.metrics.header_read_timeout();
                tracing::debug!(%peer, "closed a connection that sent no complete request headers in time");
            } else {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        }
    }
}

/// A connection's socket whose writes fail with `TimedOut` once a write has waited
/// `timeout` without the client taking a byte (`stalled` says it happened).
struct StallGuard {
    inner: TcpStream,
    timeout: Duration,
    /// Armed while a write waits; cleared when one makes progress.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl StallGuard {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
            stalled: Arc::default(),
        }
    }

    /// What a write answered: progress disarms the deadline; waiting arms it, and past it the
    /// write fails.
    fn judge<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let timeout = self.timeout;
        let deadline = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if deadline.as_mut().poll(cx).is_ready() {
            self.stalled.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client took no byte of the answer within the write stall timeout",
            )));
        }
        Poll::Pending
    }
}

impl tokio::io::AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.judge(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.judge(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.judge(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves when the server starts shutting down (or is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

fn too_many_connections() -> Response {
    let mut response = ApiError::busy(
        "too_many_connections",
        "the server has as many connections open as it serves (--max-connections): retry after 1 s, and reuse connections (keep-alive) rather than opening many",
        1,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

// ---------------------------------------------------------------------------------------------
// Body read timeout

/// The middleware that reads a request's body through its deadline and answers 408 when the
/// body did not arrive in time (whatever the handler made of the cut-off body).
pub async fn body_deadline(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(BodyReadTimeout(timeout)) = request.extensions().get::<BodyReadTimeout>().copied()
    else {
        return next.run(request).await;
    };
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            expired: expired.clone(),
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    metrics.body_read_timeout();
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        format!(
            "the request body did not arrive within {} s of its headers (--body-read-timeout): nothing of it was stored; send it again, faster or in smaller batches",
            timeout.as_secs_f64()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a body read ended early.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs_f64())]
struct BodyTimedOut(Duration);

/// A body that fails once its deadline passes (the whole body, not each read: a body sent a
/// byte at a time is cut off too).
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    expired: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
