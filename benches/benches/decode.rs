//! The wire decode of one 1,000-finding cycle (the `benches/compare/run` workload's event, 86 KB
//! of JSON): `decode_event` (the one pass, ADR 0009), the path naming errors alone (the decode
//! before issue 20), and the floors under them: serde_json only parsing the text, serde_json and
//! sonic-rs (a SIMD parser) decoding its `data` into the payload type.
//!
//! `cargo bench -p tidemark-benches --bench decode`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::Workload;
use tidemark_core::event::CycleCompleted;
use tidemark_core::{Contract, Payload, decode_event, encode_event};

fn decoding(c: &mut Criterion) {
    let workload = Workload {
        seed: 42,
        ..Workload::standard(2)
    };
    let event = workload.events().remove(1);
    let json = encode_event(&event);
    let Payload::CycleCompleted(cycle) = &event.payload else {
        unreachable!("the workload's second event is a cycle")
    };
    let data = serde_json::to_string(cycle).expect("a cycle encodes");
    let mut group = c.benchmark_group("decode/cycle_1000_findings");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("decode_event", |b| {
        b.iter(|| decode_event(black_box(&json)).unwrap())
    });
    group.bench_function("decode_naming_errors", |b| {
        b.iter(|| {
            tidemark_core::wire::decode_naming_errors(black_box(&json), Contract::NewInput).unwrap()
        })
    });
    group.bench_function("serde_json_data_only", |b| {
        b.iter(|| serde_json::from_str::<CycleCompleted>(black_box(&data)).unwrap())
    });
    group.bench_function("sonic_rs_data_only", |b| {
        b.iter(|| sonic_rs::from_str::<CycleCompleted>(black_box(&data)).unwrap())
    });
    group.bench_function("serde_json_parse_only", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&json)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, decoding);
criterion_main!(benches);
