//! The findings fold on the workload of `performance.md`: 1,000 findings per cycle, 10% churn,
//! 10,000 cycles. Throughput is in finding observations (cycles × 1,000) per second.
//!
//! `cargo bench -p tidemark-benches --bench fold`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::Workload;
use tidemark_core::findings::FindingsProjection;
use tidemark_core::{LogFold, decode_event, encode_event};

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

criterion_group!(benches, fold, decode);
criterion_main!(benches);
