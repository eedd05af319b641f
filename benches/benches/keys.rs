//! What the finding index's shape costs redb's inserts (issue 20, ADR 0009 decision 8): the
//! same entries, written as the store writes them (sorted per batch, one transaction per
//! batch), three ways: `by_finding`'s entry per change under its tuple key `(&str, &str, u64)`
//! (store layout 8 and earlier); the same entries under one byte string that sorts in the same
//! order (compared with one `memcmp`); and one entry per finding per batch holding its
//! (position, bits) pairs, the shape `finding_groups` took in layout 9 (without its checksum
//! and its cap of 64 entries a value). Measured before the stored format changed (the figures:
//! `docs/benchmarks.md`).
//!
//! The entries are the compare workload's: one cluster, 1,000 check keys, 77 picks per cycle
//! (about 74 entries once repeats are dropped) at increasing positions, 190 cycles per batch
//! (the 16 MiB batches of `tidemark ingest`), 10 batches, on redb's in-memory backend (no disk
//! in the figure).
//!
//! `cargo bench -p tidemark-benches --bench keys`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use redb::backends::InMemoryBackend;
use redb::{Database, TableDefinition};

const TUPLE: TableDefinition<(&str, &str, u64), u8> = TableDefinition::new("by_finding");
const BYTES: TableDefinition<&[u8], u8> = TableDefinition::new("by_finding_bytes");
const GROUPED: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("by_finding_grouped");

const CYCLES_PER_BATCH: u64 = 190;
const BATCHES: u64 = 10;
const ENTRIES_PER_CYCLE: usize = 77;
const KEYS: usize = 1_000;

/// One batch's entries, (cluster, check key, position, bits), sorted as the store sorts them.
type Batch = Vec<(&'static str, String, u64, u8)>;

/// The batches, from a seeded generator (xorshift: the same entries every run).
fn batches() -> Vec<Batch> {
    let keys: Vec<String> = (0..KEYS)
        .map(|i| {
            let category = ["pods", "infra_drift", "dns", "storage"][i % 4];
            format!("{category}:ns-{}/app-{i}:crashloop", i / 50)
        })
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut seq = 0;
    (0..BATCHES)
        .map(|_| {
            let mut batch = Vec::new();
            for _ in 0..CYCLES_PER_BATCH {
                seq += 1;
                let mut picked: Vec<usize> = (0..ENTRIES_PER_CYCLE)
                    .map(|_| (next() % KEYS as u64) as usize)
                    .collect();
                picked.sort_unstable();
                picked.dedup();
                for key in picked {
                    batch.push(("pw-bench", keys[key].clone(), seq, 2));
                }
            }
            batch.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
            batch
        })
        .collect()
}

/// `text` as bytes that sort as the strings do, ahead of anything after them: each 0x00 as
/// 0x00 0xFF, then 0x00 0x00 to end it.
fn push_ordered_str(out: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// The entry's key as one byte string in the tuple's order.
fn byte_key(out: &mut Vec<u8>, cluster: &str, check_key: &str, seq: u64) {
    out.clear();
    push_ordered_str(out, cluster);
    push_ordered_str(out, check_key);
    out.extend_from_slice(&seq.to_be_bytes());
}

// Bench-only databases in memory: quick repair (`store/write_txn.rs`) has no file to repair.
#[allow(clippy::disallowed_methods)]
fn begin_write(db: &Database) -> redb::WriteTransaction {
    db.begin_write().expect("a write transaction")
}

fn database() -> Database {
    Database::builder()
        .create_with_backend(InMemoryBackend::new())
        .expect("an in-memory database")
}

fn keys(c: &mut Criterion) {
    let batches = batches();
    let entries: usize = batches.iter().map(Vec::len).sum();

    // The two orders agree: each batch, sorted by tuple, has its byte keys in rising order.
    for batch in &batches {
        let mut keys = batch.iter().map(|(cluster, check_key, seq, _)| {
            let mut key = Vec::new();
            byte_key(&mut key, cluster, check_key, *seq);
            key
        });
        let mut previous = keys.next().expect("a batch has entries");
        for key in keys {
            assert!(previous < key, "byte keys out of the tuple order");
            previous = key;
        }
    }

    let mut group = c.benchmark_group("by_finding_inserts");
    group.sample_size(10);
    group.throughput(Throughput::Elements(entries as u64));
    group.bench_function("tuple_key", |b| {
        b.iter(|| black_box(write_tuple_keys(&batches)))
    });
    group.bench_function("byte_key", |b| {
        b.iter(|| black_box(write_byte_keys(&batches)))
    });
    group.bench_function("grouped_per_finding_per_batch", |b| {
        b.iter(|| black_box(write_grouped(&batches)))
    });
    group.finish();
}

/// A fresh database with `batches` written by `write`, one transaction each.
fn write_batches(
    batches: &[Batch],
    mut write: impl FnMut(&redb::WriteTransaction, &Batch),
) -> Database {
    let db = database();
    for batch in batches {
        let txn = begin_write(&db);
        write(&txn, batch);
        txn.commit().expect("committed");
    }
    db
}

/// The batches written under the tuple key.
fn write_tuple_keys(batches: &[Batch]) -> Database {
    write_batches(batches, |txn, batch| {
        let mut table = txn.open_table(TUPLE).expect("the table");
        for (cluster, check_key, seq, bits) in batch {
            table
                .insert((*cluster, check_key.as_str(), *seq), *bits)
                .expect("inserted");
        }
    })
}

/// The batches written under the byte key.
fn write_byte_keys(batches: &[Batch]) -> Database {
    let mut key = Vec::with_capacity(64);
    write_batches(batches, |txn, batch| {
        let mut table = txn.open_table(BYTES).expect("the table");
        for (cluster, check_key, seq, bits) in batch {
            byte_key(&mut key, cluster, check_key, *seq);
            table.insert(key.as_slice(), *bits).expect("inserted");
        }
    })
}

/// The batches written as one entry per finding per batch: (cluster, check key, the batch's
/// first position of it) → its (position, bits) pairs, positions as varint deltas. Fewer, larger
/// inserts: the "write less" of build item 2, for comparison.
fn write_grouped(batches: &[Batch]) -> Database {
    let mut value = Vec::with_capacity(256);
    write_batches(batches, |txn, batch| {
        let mut table = txn.open_table(GROUPED).expect("the table");
        for finding in batch.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let (cluster, check_key, first, _) = &finding[0];
            value.clear();
            let mut previous = *first;
            for (_, _, seq, bits) in finding {
                let mut delta = seq - previous;
                previous = *seq;
                while delta >= 0x80 {
                    value.push((delta as u8) | 0x80);
                    delta >>= 7;
                }
                value.push(delta as u8);
                value.push(*bits);
            }
            table
                .insert((*cluster, check_key.as_str(), *first), value.as_slice())
                .expect("inserted");
        }
    })
}

criterion_group!(benches, keys);

/// Criterion's benches; or, with `KEYS_ONCE=tuple`, `bytes` or `grouped`, one pass of that
/// variant and nothing else, to count its instructions:
/// `KEYS_ONCE=bytes valgrind --tool=callgrind target/release/deps/keys-*` (the binary
/// `cargo bench --bench keys --no-run` names).
fn main() {
    match std::env::var("KEYS_ONCE").as_deref() {
        Ok("tuple") => drop(black_box(write_tuple_keys(&batches()))),
        Ok("bytes") => drop(black_box(write_byte_keys(&batches()))),
        Ok("grouped") => drop(black_box(write_grouped(&batches()))),
        Ok(other) => panic!("KEYS_ONCE={other}: tuple, bytes or grouped"),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
