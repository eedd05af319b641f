//! Counters and histograms for `/metrics` (Prometheus text format): requests by route and
//! status, request latency, events ingested by outcome, and the writer's batch apply-and-commit
//! latency. Kept in ordered maps, so the exposition is stable from one scrape to the next.
//!
//! Every label value comes from a fixed set, whatever a client sends: the method is one of the
//! standard ones or `other`, the route is the router's pattern or `unmatched`, so the number
//! of series is bounded by the code, not by the traffic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Bucket bounds of every latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The label of a request's method: a standard method, or `other` for any extension method a
/// client makes up (each would otherwise be a new series).
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// The route label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Default)]
struct Inner {
    /// (method label, route pattern, status): both labels from fixed sets.
    requests: BTreeMap<(&'static str, String, u16), u64>,
    request_seconds: BTreeMap<String, Histogram>,
    ingested: BTreeMap<&'static str, u64>,
    /// Replicas: events sent to the distributed log, by outcome.
    published: BTreeMap<&'static str, u64>,
    batch_seconds: Histogram,
    batches_failed: u64,
    batches_disk_full: u64,
    events_pages_cut: u64,
    /// Ingest requests refused whole, by the limit they passed.
    requests_refused: BTreeMap<&'static str, u64>,
    /// Alerts Alertmanager left out of its webhooks (`truncatedAlerts`).
    alerts_truncated: u64,
    /// OTLP spans (`POST /v1/traces`), by outcome.
    otlp_spans: BTreeMap<&'static str, u64>,
}

/// Connections and their limits (see `connections.rs`), counted without a lock.
#[derive(Debug, Default)]
struct ConnectionCounters {
    open: AtomicU64,
    over_limit: AtomicU64,
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
    write_stalls: AtomicU64,
    dropped_at_shutdown: AtomicU64,
}

/// Counts a connection as open until dropped.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a AtomicU64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    connections: ConnectionCounters,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request answered. `method` is a [`method_label`], `route` a route pattern of the
    /// router or [`UNMATCHED_ROUTE`].
    pub fn request(&self, method: &'static str, route: &str, status: u16, took: Duration) {
        let mut inner = self.lock();
        *inner
            .requests
            .entry((method, route.to_owned(), status))
            .or_default() += 1;
        inner
            .request_seconds
            .entry(route.to_owned())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// One batch applied and committed by the writer, with its outcomes.
    pub fn batch(&self, took: Duration, accepted: u64, duplicates: u64, rejected: u64) {
        let mut inner = self.lock();
        inner.batch_seconds.observe(took.as_secs_f64());
        *inner.ingested.entry("accepted").or_default() += accepted;
        *inner.ingested.entry("duplicate").or_default() += duplicates;
        *inner.ingested.entry("rejected").or_default() += rejected;
    }

    /// Events a replica sent to the distributed log, by outcome (`unknown`: not acknowledged
    /// within the publish timeout).
    pub fn published(&self, published: u64, duplicates: u64, unknown: u64, failed: u64) {
        let mut inner = self.lock();
        *inner.published.entry("published").or_default() += published;
        *inner.published.entry("duplicate").or_default() += duplicates;
        *inner.published.entry("unknown").or_default() += unknown;
        *inner.published.entry("failed").or_default() += failed;
    }

    /// A batch the store could not commit (`disk_full`: for lack of space).
    pub fn batch_failed(&self, disk_full: bool) {
        let mut inner = self.lock();
        inner.batches_failed += 1;
        if disk_full {
            inner.batches_disk_full += 1;
        }
    }

    /// A page of `GET /v1/events` ended early because its scan budget was spent.
    pub fn events_page_cut(&self) {
        self.lock().events_pages_cut += 1;
    }

    /// An ingest request refused whole because it passed `limit` (e.g. `max_items_per_request`).
    pub fn request_refused(&self, limit: &'static str) {
        *self.lock().requests_refused.entry(limit).or_default() += 1;
    }

    /// Alertmanager left `count` alerts out of a webhook (its `truncatedAlerts`, past the
    /// receiver's `max_alerts`).
    pub fn alerts_truncated(&self, count: u64) {
        self.lock().alerts_truncated += count;
    }

    /// Spans of OTLP requests by outcome: stored (or published), already stored, rejected
    /// (kept in quarantine), not acknowledged by the distributed log in time (replicas).
    pub fn otlp_spans(&self, accepted: u64, duplicates: u64, rejected: u64, unpublished: u64) {
        let mut inner = self.lock();
        *inner.otlp_spans.entry("accepted").or_default() += accepted;
        *inner.otlp_spans.entry("duplicate").or_default() += duplicates;
        *inner.otlp_spans.entry("rejected").or_default() += rejected;
        *inner.otlp_spans.entry("unpublished").or_default() += unpublished;
    }

    /// A connection opened; it counts as open until the guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(&self.connections.open)
    }

    /// A connection accepted above `--max-connections`, into the probe headroom.
    pub fn connection_over_limit(&self) {
        self.connections.over_limit.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed as soon as it was accepted (the probe headroom was full too).
    pub fn connection_refused(&self) {
        self.connections.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed for not sending its request headers in time.
    pub fn header_read_timeout(&self) {
        self.connections
            .header_timeouts
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A request answered 408 for not sending its body in time.
    pub fn body_read_timeout(&self) {
        self.connections
            .body_timeouts
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed because its client took no byte of an answer in time.
    pub fn write_stall_timeout(&self) {
        self.connections
            .write_stalls
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Connections still open when the shutdown grace period ended, dropped.
    pub fn connections_dropped_at_shutdown(&self, count: u64) {
        self.connections
            .dropped_at_shutdown
            .fetch_add(count, Ordering::Relaxed);
    }

    fn render_connections(&self, out: &mut String) {
        let c = &self.connections;
        let _ = writeln!(
            out,
            "# HELP tidemark_http_connections connections open now (at most --max-connections, plus the probe headroom)\n# TYPE tidemark_http_connections gauge\ntidemark_http_connections {}",
            c.open.load(Ordering::Relaxed)
        );
        let counters = [
            (
                "tidemark_http_connections_over_limit_total",
                "connections accepted above --max-connections, answered for probes only",
                &c.over_limit,
            ),
            (
                "tidemark_http_connections_refused_total",
                "connections closed at once: above --max-connections and the probe headroom",
                &c.refused,
            ),
            (
                "tidemark_http_header_read_timeouts_total",
                "connections closed for not sending request headers within --header-read-timeout",
                &c.header_timeouts,
            ),
            (
                "tidemark_http_body_read_timeouts_total",
                "requests answered 408 for not sending their body within --body-read-timeout",
                &c.body_timeouts,
            ),
            (
                "tidemark_http_write_stall_timeouts_total",
                "connections closed because the client took no byte of an answer within --write-stall-timeout",
                &c.write_stalls,
            ),
            (
                "tidemark_http_connections_dropped_at_shutdown_total",
                "connections still open when the --shutdown-grace period ended",
                &c.dropped_at_shutdown,
            ),
        ];
        for (name, help, value) in counters {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
    }

    /// The counters and histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        self.render_connections(out);
        let inner = self.lock();
        out.push_str("# HELP tidemark_http_requests_total requests answered, by method, route and status\n# TYPE tidemark_http_requests_total counter\n");
        for ((method, route, status), count) in &inner.requests {
            let _ = writeln!(
                out,
                "tidemark_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP tidemark_http_request_duration_seconds time to answer a request, by route\n# TYPE tidemark_http_request_duration_seconds histogram\n");
        for (route, histogram) in &inner.request_seconds {
            histogram.render(
                out,
                "tidemark_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str("# HELP tidemark_events_ingested_total inputs written by this server, by outcome (rate() of accepted is the ingest rate)\n# TYPE tidemark_events_ingested_total counter\n");
        for outcome in ["accepted", "duplicate", "rejected"] {
            let count = inner.ingested.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tidemark_events_ingested_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP tidemark_events_published_total events a replica sent to the distributed log, by outcome (unknown: not acknowledged within the publish timeout)\n# TYPE tidemark_events_published_total counter\n");
        for outcome in ["published", "duplicate", "unknown", "failed"] {
            let count = inner.published.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tidemark_events_published_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP tidemark_batch_apply_seconds time to apply a batch to the projections and commit it\n# TYPE tidemark_batch_apply_seconds histogram\n");
        inner
            .batch_seconds
            .render(out, "tidemark_batch_apply_seconds", "");
        let _ = writeln!(
            out,
            "# HELP tidemark_batches_failed_total batches the store could not commit\n# TYPE tidemark_batches_failed_total counter\ntidemark_batches_failed_total {}",
            inner.batches_failed
        );
        let _ = writeln!(
            out,
            "# HELP tidemark_batches_disk_full_total batches refused because the disk (or the file size limit) was full\n# TYPE tidemark_batches_disk_full_total counter\ntidemark_batches_disk_full_total {}",
            inner.batches_disk_full
        );
        let _ = writeln!(
            out,
            "# HELP tidemark_events_pages_cut_total pages of GET /v1/events that ended early at the scan budget (--events-scan-budget)\n# TYPE tidemark_events_pages_cut_total counter\ntidemark_events_pages_cut_total {}",
            inner.events_pages_cut
        );
        let _ = writeln!(
            out,
            "# HELP tidemark_alerts_truncated_total alerts Alertmanager left out of its webhooks (truncatedAlerts: raise max_alerts up to --max-items-per-request)\n# TYPE tidemark_alerts_truncated_total counter\ntidemark_alerts_truncated_total {}",
            inner.alerts_truncated
        );
        out.push_str("# HELP tidemark_otlp_spans_total spans of OTLP requests (POST /v1/traces), by outcome (rejected: kept in quarantine, counted in partial_success; unpublished: a replica's log did not acknowledge them in time, answered 503)\n# TYPE tidemark_otlp_spans_total counter\n");
        for outcome in ["accepted", "duplicate", "rejected", "unpublished"] {
            let count = inner.otlp_spans.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tidemark_otlp_spans_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP tidemark_ingest_requests_refused_total ingest requests refused whole (nothing stored), by the limit they passed\n# TYPE tidemark_ingest_requests_refused_total counter\n");
        // Every limit is listed, at 0 until it is hit.
        const LIMITS: &[&str] = &["max_items_per_request"];
        for limit in LIMITS {
            let count = inner.requests_refused.get(limit).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tidemark_ingest_requests_refused_total{{limit=\"{limit}\"}} {count}"
            );
        }
    }
}

/// The time travel counters (see [`crate::time_travel`]) in Prometheus text format.
pub fn render_time_travel(counts: &crate::time_travel::TimeTravelCounts, out: &mut String) {
    let gauges = [
        (
            "tidemark_time_travel_states",
            "past states (at=) being rebuilt or read now, at most --max-time-travel",
            counts.states as u64,
        ),
        (
            "tidemark_time_travel_queued",
            "requests waiting for a past state slot now, at most --time-travel-queue",
            counts.queued as u64,
        ),
        (
            "tidemark_time_travel_cached",
            "past states kept after their last reader now, at most --time-travel-cache",
            counts.cached as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let counters = [
        (
            "tidemark_time_travel_rebuilds_total",
            "past states rebuilt",
            counts.rebuilds,
        ),
        (
            "tidemark_time_travel_shared_total",
            "requests answered from a past state another request rebuilt",
            counts.shared,
        ),
        (
            "tidemark_time_travel_waits_total",
            "requests that waited for a past state slot",
            counts.waits,
        ),
        (
            "tidemark_time_travel_refused_total",
            "requests answered 503 because no past state slot was free in time",
            counts.refused,
        ),
        (
            "tidemark_time_travel_cache_hits_total",
            "requests answered from a kept past state",
            counts.cache_hits,
        ),
        (
            "tidemark_time_travel_folded_from_cache_total",
            "past states folded forward from a kept earlier state instead of a snapshot",
            counts.folded_from_cache,
        ),
        (
            "tidemark_time_travel_evicted_total",
            "kept past states evicted to free a slot",
            counts.evicted,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
}

/// The middleware that counts every request by its method label and route pattern (never the
/// raw method or path, so labels stay bounded).
pub async fn count(
    State(metrics): State<std::sync::Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "XYZZY-1", "PROPFIND"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{made_up}");
        }
    }

    #[test]
    fn histograms_are_cumulative_and_counters_add_up() {
        let metrics = Metrics::default();
        metrics.request("GET", "/v1/findings", 200, Duration::from_micros(700));
        metrics.request("GET", "/v1/findings", 200, Duration::from_millis(30));
        metrics.request("GET", "/v1/findings", 400, Duration::from_micros(100));
        metrics.batch(Duration::from_millis(2), 10, 1, 2);
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains(
            "tidemark_http_requests_total{method=\"GET\",route=\"/v1/findings\",status=\"200\"} 2"
        ));
        assert!(out.contains(
            "tidemark_http_request_duration_seconds_bucket{route=\"/v1/findings\",le=\"0.001\"} 2"
        ));
        assert!(out.contains(
            "tidemark_http_request_duration_seconds_bucket{route=\"/v1/findings\",le=\"+Inf\"} 3"
        ));
        assert!(out.contains("tidemark_events_ingested_total{outcome=\"accepted\"} 10"));
        assert!(out.contains("tidemark_batch_apply_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(out.contains("tidemark_batch_apply_seconds_count 1"));
    }
}
