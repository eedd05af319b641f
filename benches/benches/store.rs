//! The embedded store on real redb files: ingest with every projection and index, at several
//! batch sizes, and rebuild from the log.
//!
//! `cargo bench -p tidemark-benches --bench store`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::{Workload, small_cycles};
use tidemark_core::{Timestamp, decode_event, encode_event};
use tidemark_store::{Input, Store, StoreConfig};

const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Store::open(dir.path().join("bench.redb"), StoreConfig::default()).expect("store opens");
    (dir, store)
}

fn ingest(c: &mut Criterion) {
    // 10-finding cycle events: 100 clusters, 20 keys each.
    let small: Vec<Input> = small_cycles(100, 20, 10, 20_000, 1)
        .into_iter()
        .map(Input::Event)
        .collect();
    let mut group = c.benchmark_group("ingest/cycle_10_findings");
    group.sample_size(10);
    group.throughput(Throughput::Elements(small.len() as u64));
    for batch in [100usize, 1_000, 10_000] {
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_batched(
                fresh_store,
                |(dir, store)| {
                    for chunk in small.chunks(batch) {
                        store.append(chunk, NOW).unwrap();
                    }
                    black_box(store.checkpoint());
                    drop(store);
                    dir
                },
                BatchSize::PerIteration,
            );
        });
    }
    // The same, decoding the JSON lines too (what `tidemark ingest` does per line).
    let lines: Vec<String> = small
        .iter()
        .map(|i| match i {
            Input::Event(e) => encode_event(e),
            Input::Rejected { .. } => unreachable!(),
        })
        .collect();
    group.bench_function("batch_1000_with_json_decode", |b| {
        b.iter_batched(
            fresh_store,
            |(dir, store)| {
                for chunk in lines.chunks(1_000) {
                    let inputs: Vec<Input> = chunk
                        .iter()
                        .map(|l| Input::Event(decode_event(l).unwrap()))
                        .collect();
                    store.append(&inputs, NOW).unwrap();
                }
                drop(store);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    // 1,000-finding cycle events (about 500 present each): the performance.md workload.
    let big: Vec<Input> = Workload::standard(2_000)
        .events()
        .into_iter()
        .map(Input::Event)
        .collect();
    let mut group = c.benchmark_group("ingest/cycle_1000_findings");
    group.sample_size(10);
    group.throughput(Throughput::Elements(big.len() as u64));
    for batch in [10usize, 100, 1_000] {
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_batched(
                fresh_store,
                |(dir, store)| {
                    for chunk in big.chunks(batch) {
                        store.append(chunk, NOW).unwrap();
                    }
                    drop(store);
                    dir
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn rebuild(c: &mut Criterion) {
    let (_dir, store) = fresh_store();
    let events: Vec<Input> = small_cycles(100, 20, 10, 200_000, 2)
        .into_iter()
        .map(Input::Event)
        .collect();
    for chunk in events.chunks(10_000) {
        store.append(chunk, NOW).unwrap();
    }
    let mut group = c.benchmark_group("rebuild/cycle_10_findings");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("fold_log_read_only", |b| {
        b.iter(|| black_box(store.fold_log(|_, _| {}).unwrap().findings().active_count()))
    });
    group.bench_function("rebuild", |b| {
        b.iter(|| black_box(store.rebuild(|_| {}).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, ingest, rebuild);
criterion_main!(benches);
