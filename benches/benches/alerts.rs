//! The alert fold (issue 18): 100,000 alert notifications (fires, re-sends, resolves, re-fires,
//! late re-sends; benches/src/alerts.rs) of 100 and of 25,000 distinct alerts over 4 clusters
//! through every projection set up as the store's live state (what it writes out handed over
//! after each batch of 1,000 events; benches/src/live.rs). Throughput is in events per second;
//! `benches/alerts/run` measures the same fold at 10 k, 100 k and 1 M events.
//!
//! `cargo bench -p tidemark-benches --bench alerts`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::alerts::{AlertChurn, AlertChurnShape};
use tidemark_benches::live::Tables;
use tidemark_core::Event;

const EVENTS: usize = 100_000;
/// Events per batch.
const BATCH: u64 = 1_000;

fn events(alerts: usize) -> Vec<Event> {
    let mut churn = AlertChurn::new(AlertChurnShape {
        clusters: 4,
        alerts,
        seed: 18,
    });
    (0..EVENTS).map(|_| churn.next_event().0).collect()
}

fn alert_fold(c: &mut Criterion) {
    let mut group = c.benchmark_group("alert_fold");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    for alerts in [100, EVENTS / 4] {
        let events = events(alerts);
        group.bench_function(format!("live_state/100k_events_{alerts}_alerts"), |b| {
            b.iter_batched(
                Tables::live_projections,
                |(mut projections, tables)| {
                    for (seq, event) in (1..).zip(&events) {
                        projections.apply(seq, event);
                        if seq.is_multiple_of(BATCH) {
                            tables.write_batch(&mut projections, seq);
                        }
                    }
                    black_box((projections, tables))
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, alert_fold);
criterion_main!(benches);
