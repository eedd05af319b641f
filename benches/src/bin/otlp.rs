//! `otlp`: the load generator of `benches/otlp/run`. Waits for `tidemark serve` to be ready
//! (its address read from the server's log), builds every OTLP/HTTP protobuf
//! `ExportTraceServiceRequest` before the clock starts (SPANS spans each, the SDK's default batch
//! of 512; distinct trace and span ids, traces of 8 spans — a root and 7 children — spread over
//! a few clusters), posts them over N concurrent ureq connections (one per thread, a write
//! token), and prints spans/s and the per-request latency as one JSON line; then checks that the
//! server stored every span (`tidemark_otlp_spans_total{outcome="accepted"}` in `/metrics`).

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

/// Drive `POST /v1/traces` with OTLP protobuf batches.
#[derive(Parser, Debug)]
struct Args {
    /// The server's log, where `tidemark serve` prints the address it listens on.
    #[arg(long)]
    log: PathBuf,
    /// The write token (sent as `Authorization: Bearer`).
    #[arg(long, env = "OTLP_TOKEN")]
    token: Option<String>,
    /// Requests to send.
    #[arg(long, default_value_t = 400)]
    requests: usize,
    /// Spans per request (the OpenTelemetry SDKs' default batch: 512).
    #[arg(long, default_value_t = 512)]
    spans: usize,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Clusters the spans are spread over (one resource per cluster in each request).
    #[arg(long, default_value_t = 4)]
    clusters: usize,
}

/// Spans of one trace: a root and its children.
const SPANS_PER_TRACE: u64 = 8;
/// 2026-03-02T14:00:00Z.
const START_NANOS: u64 = 1_772_460_000_000_000_000;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

/// Span number `n` of the whole run: trace `n / 8`, the first of each trace its root; a
/// millisecond apart, so the clusters' clocks move and traces are judged as the run goes.
fn span(n: u64) -> Span {
    let trace = n / SPANS_PER_TRACE;
    let mut trace_id = [0_u8; 16];
    trace_id[..8].copy_from_slice(&0x7d3e_a5a5_0000_0001_u64.to_be_bytes());
    trace_id[8..].copy_from_slice(&(trace + 1).to_be_bytes());
    let span_id = (n + 1).to_be_bytes().to_vec();
    let root = trace * SPANS_PER_TRACE + 1;
    let parent_span_id = if n.is_multiple_of(SPANS_PER_TRACE) {
        Vec::new()
    } else {
        root.to_be_bytes().to_vec()
    };
    let start = START_NANOS + n * 1_000_000;
    Span {
        trace_id: trace_id.to_vec(),
        span_id,
        parent_span_id,
        name: format!("operation-{}", n % 16),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 750_000,
        attributes: vec![text("http.route", "/checkout")],
        status: Some(Status {
            code: i32::from(n.is_multiple_of(50)) * 2,
            message: String::new(),
        }),
        ..Span::default()
    }
}

/// Request `r`: its spans, whole traces, in one resource per cluster.
fn request(args: &Args, r: usize) -> Vec<u8> {
    let first = (r * args.spans) as u64;
    let mut by_cluster: Vec<Vec<Span>> = vec![Vec::new(); args.clusters];
    for n in first..first + args.spans as u64 {
        let cluster = (n / SPANS_PER_TRACE) as usize % args.clusters;
        by_cluster[cluster].push(span(n));
    }
    ExportTraceServiceRequest {
        resource_spans: by_cluster
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(c, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        text("service.name", "bench"),
                        text("k8s.cluster.name", &format!("bench-{c}")),
                    ],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// What one client thread saw.
#[derive(Debug, Default)]
struct Seen {
    latencies_ms: Vec<f64>,
    failures: Vec<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn accepted_spans(url: &str, token: Option<&str>) -> Result<u64> {
    let mut request = agent().get(format!("{url}/metrics"));
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let text = request.call()?.body_mut().read_to_string()?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("tidemark_otlp_spans_total{outcome=\"accepted\"} ")?
                .parse()
                .ok()
        })
        .context("no tidemark_otlp_spans_total in /metrics")
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.concurrency > 0 && args.spans > 0 && args.clusters > 0);
    let url = tidemark_benches::served::wait_ready(&args.log, Duration::from_secs(60))?;
    let endpoint = format!("{url}/v1/traces");
    let auth = args.token.as_ref().map(|t| format!("Bearer {t}"));
    let barrier = Arc::new(Barrier::new(args.concurrency + 1));
    let mut body_bytes = 0;
    let threads: Vec<_> = (0..args.concurrency)
        .map(|thread| {
            let bodies: Vec<Vec<u8>> = (thread..args.requests)
                .step_by(args.concurrency)
                .map(|r| request(&args, r))
                .collect();
            body_bytes += bodies.iter().map(Vec::len).sum::<usize>();
            let (barrier, endpoint, auth) = (barrier.clone(), endpoint.clone(), auth.clone());
            std::thread::spawn(move || {
                let agent = agent();
                let mut seen = Seen::default();
                barrier.wait();
                for body in bodies {
                    let started = Instant::now();
                    let mut request = agent
                        .post(&endpoint)
                        .header("content-type", "application/x-protobuf");
                    if let Some(auth) = &auth {
                        request = request.header("authorization", auth);
                    }
                    match request.send(&body[..]) {
                        Ok(mut response) if response.status() == 200 => {
                            let _ = response.body_mut().read_to_vec();
                            seen.latencies_ms
                                .push(started.elapsed().as_secs_f64() * 1e3);
                        }
                        Ok(mut response) => seen.failures.push(format!(
                            "{}: {}",
                            response.status(),
                            response.body_mut().read_to_string().unwrap_or_default()
                        )),
                        Err(e) => seen.failures.push(e.to_string()),
                    }
                }
                seen
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for thread in threads {
        let seen = thread.join().expect("a client thread panicked");
        latencies.extend(seen.latencies_ms);
        failures.extend(seen.failures);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let spans = (args.requests * args.spans) as u64;
    let stored = accepted_spans(&url, args.token.as_deref())?;
    let figures = serde_json::json!({
        "requests": args.requests, "spans_per_request": args.spans,
        "concurrency": args.concurrency, "clusters": args.clusters, "spans": spans,
        "body_bytes_per_request": body_bytes / args.requests.max(1),
        "seconds": seconds, "spans_per_sec": spans as f64 / seconds,
        "p50_ms": percentile(&latencies, 50.0), "p99_ms": percentile(&latencies, 99.0),
        "max_ms": latencies.last().copied().unwrap_or(0.0),
        "failed_requests": failures.len(), "stored_spans": stored,
    });
    println!("{figures}");
    ensure!(
        failures.is_empty(),
        "{} requests failed, the first: {}",
        failures.len(),
        failures[0]
    );
    ensure!(
        stored == spans,
        "the server stored {stored} spans of the {spans} sent"
    );
    Ok(())
}
