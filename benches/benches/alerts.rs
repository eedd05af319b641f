//! The alert fold (issue 18): 100,000 alert notifications (fires, re-sends, resolves, re-fires,
//! late re-sends; benches/src/alerts.rs) of 100 and of 25,000 distinct alerts over 4 clusters
//! through every projection, as the store folds them. Throughput is in events per second;
//! `benches/alerts/run` measures the same fold at 10 k, 100 k and 1 M events.
//!
//! `cargo bench -p tidemark-benches --bench alerts`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tidemark_benches::alerts::{AlertChurn, AlertChurnShape};
use tidemark_core::{Event, Projections};

const EVENTS: usize = 100_000;

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
        group.bench_function(
            format!("all_projections/100k_events_{alerts}_alerts"),
            |b| {
                b.iter_batched(
                    Projections::new,
                    |mut projections| {
                        for (seq, event) in events.iter().enumerate() {
                            projections.apply(seq as u64 + 1, event);
                        }
                        black_box(projections)
                    },
                    BatchSize::PerIteration,
                );
            },
        );
    }
    group.finish();
}

criterion_group!(benches, alert_fold);
criterion_main!(benches);
