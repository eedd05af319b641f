//! Stored-event encodings compared on our event types (ADR 0002): postcard (chosen), bincode
//! 2.0.1 (unmaintained, RUSTSEC-2025-0141) and JSON (the wire format).
//!
//! `cargo bench -p tidemark-benches --bench encoding`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::{Workload, small_cycles};
use tidemark_core::{Event, decode_event, encode_event};

fn samples() -> Vec<(&'static str, Event)> {
    let fixture = |name: &str| {
        let path = format!(
            "{}/../schemas/fixtures/v1/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        decode_event(&std::fs::read_to_string(path).expect("fixture exists"))
            .expect("fixture decodes")
    };
    vec![
        ("note", fixture("note.added")),
        ("cycle_10_findings", small_cycles(1, 50, 10, 1, 7).remove(0)),
        (
            "cycle_500_findings",
            Workload::standard(1).events().remove(1),
        ),
    ]
}

fn encodings(c: &mut Criterion) {
    let config = bincode::config::standard();
    for (name, event) in samples() {
        let json = encode_event(&event);
        let post = postcard::to_allocvec(&event).expect("postcard encodes");
        let bin = bincode::serde::encode_to_vec(&event, config).expect("bincode encodes");
        println!(
            "size/{name}: json {} B, postcard {} B, bincode {} B",
            json.len(),
            post.len(),
            bin.len()
        );

        let mut group = c.benchmark_group(format!("encode/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("postcard", |b| {
            b.iter(|| postcard::to_allocvec(black_box(&event)).unwrap())
        });
        group.bench_function("bincode", |b| {
            b.iter(|| bincode::serde::encode_to_vec(black_box(&event), config).unwrap())
        });
        group.bench_function("json", |b| b.iter(|| encode_event(black_box(&event))));
        group.finish();

        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("postcard", |b| {
            b.iter(|| postcard::from_bytes::<Event>(black_box(&post)).unwrap())
        });
        group.bench_function("bincode", |b| {
            b.iter(|| {
                bincode::serde::decode_from_slice::<Event, _>(black_box(&bin), config).unwrap()
            })
        });
        group.bench_function("json", |b| {
            b.iter(|| decode_event(black_box(&json)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, encodings);
criterion_main!(benches);
