//! The findings fold on the workload of `performance.md`: 1,000 findings per cycle, 10% churn,
//! 10,000 cycles. Throughput is in finding observations (cycles × 1,000) per second. Then every
//! projection together (findings with flaps, stuck and churn; orphans; incidents) against the
//! findings alone on the same events, and the orphan graph on scans of 50,000 resources.
//!
//! `cargo bench -p tidemark-benches --bench fold`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::{Workload, inventory_scan};
use tidemark_core::findings::FindingsProjection;
use tidemark_core::{LogFold, Projections, Timestamp, decode_event, encode_event};

fn fold(c: &mut Criterion) {
    let workload = Workload::standard(10_000);
    let events = workload.events();
    let mut group = c.benchmark_group("fold");
    group.sample_size(10);
    group.throughput(Throughput::Elements(workload.observations()));
    group.bench_function("findings_projection/10k_cycles_x_1k_findings", |b| {
        b.iter(|| {
            let mut projection = FindingsProjection::new();
            for (seq, event) in events.iter().enumerate() {
                projection.apply(seq as u64 + 1, event);
            }
            black_box(projection.active_count())
        });
    });
    // The same fold saying what each event changed (ADR 0008): the price of the watch.
    group.bench_function(
        "findings_projection_with_changes/10k_cycles_x_1k_findings",
        |b| {
            b.iter(|| {
                let mut projection = FindingsProjection::new();
                let mut changes = Vec::new();
                let mut lines = 0;
                for (seq, event) in events.iter().enumerate() {
                    changes.clear();
                    projection.apply_with_changes(seq as u64 + 1, event, &mut changes);
                    lines += changes.len();
                }
                black_box((projection.active_count(), lines))
            });
        },
    );
    group.bench_function("log_fold_with_dedupe/10k_cycles_x_1k_findings", |b| {
        b.iter(|| {
            let mut fold = LogFold::new();
            for event in &events {
                fold.apply(event);
            }
            black_box(fold.last_seq())
        });
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let workload = Workload::standard(200);
    let lines: Vec<String> = workload.events().iter().map(encode_event).collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("decode_json/200_cycles_of_500_findings", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(decode_event(line).expect("valid"));
            }
        });
    });
    group.finish();
}

/// Every projection against the findings alone, on findings that name their resources (so
/// incident grouping and drift detection have work to do).
fn all_projections(c: &mut Criterion) {
    let workload = Workload::standard_with_resources(10_000);
    let events = workload.events();
    let mut group = c.benchmark_group("projections");
    group.sample_size(10);
    group.throughput(Throughput::Elements(workload.observations()));
    group.bench_function("findings_alone/10k_cycles_x_1k_findings", |b| {
        b.iter(|| {
            let mut projection = FindingsProjection::new();
            for (seq, event) in events.iter().enumerate() {
                projection.apply(seq as u64 + 1, event);
            }
            black_box(projection.active_count())
        });
    });
    group.bench_function("all_projections/10k_cycles_x_1k_findings", |b| {
        b.iter(|| {
            let mut projections = Projections::new();
            for (seq, event) in events.iter().enumerate() {
                projections.apply(seq as u64 + 1, event);
            }
            black_box(projections.incidents().incidents().len())
        });
    });
    group.finish();

    // The orphan graph: a scan of 50,000 live resources (Deployments, ReplicaSets, Pods, PVCs).
    let start = Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").expect("valid time");
    let scans: Vec<_> = (0..4)
        .map(|i| inventory_scan("bench", i, 50_000, start.plus_secs(600 * i as i64)))
        .collect();
    let mut group = c.benchmark_group("inventory");
    group.sample_size(10);
    group.throughput(Throughput::Elements(4 * 50_000));
    group.bench_function("all_projections/4_scans_x_50k_resources", |b| {
        b.iter(|| {
            let mut projections = Projections::new();
            for (seq, event) in scans.iter().enumerate() {
                projections.apply(seq as u64 + 1, event);
            }
            black_box(projections.orphans().orphans(None).len())
        });
    });
    group.finish();
}

criterion_group!(benches, fold, decode, all_projections);
criterion_main!(benches);
