//! Builds the store of the query-latency bench (`benches/query/run`): N small cycle events over
//! 100 clusters (the store bench's workload), with an explicit incident whose timeline gets one
//! note every N/10,000 events, so it ends with about 10,000 entries.
//!
//! `query-store PATH.redb [EVENTS]`

use std::time::Instant;

use tidemark_benches::small_cycles;
use tidemark_core::event::{IncidentChange, NoteAdded, NoteKind};
use tidemark_core::{Event, EventId, Payload, Timestamp};
use tidemark_store::{Input, Store, StoreConfig};

const CHUNK: usize = 10_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: query-store PATH.redb [EVENTS]");
    let total: usize = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("EVENTS is a number"));
    let note_every = (total / 10_000).max(1);
    let store = Store::open(&path, StoreConfig::default()).expect("the store opens");
    let start = Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").expect("valid time");
    let started = Instant::now();
    let mut written = 0usize;
    let mut chunk_seed = 1u64;
    while written < total {
        let n = CHUNK.min(total - written);
        let mut events: Vec<Event> = small_cycles(100, 100, 10, n, chunk_seed);
        chunk_seed += 1;
        for (i, event) in events.iter_mut().enumerate() {
            let global = written + i;
            event.id = EventId(format!("q{global:09}"));
            event.time = start.plus_secs(global as i64);
            if global == 0 {
                event.payload = Payload::IncidentOpened(IncidentChange {
                    incident: "inc-bench".into(),
                    title: Some("the bench incident".into()),
                    severity: None,
                    check_keys: vec![tidemark_benches::Workload::check_key(7)],
                    summary: None,
                });
                event.cluster = "cluster-000".into();
            } else if global.is_multiple_of(note_every) {
                event.payload = Payload::NoteAdded(NoteAdded {
                    incident: Some("inc-bench".into()),
                    author: "bench".into(),
                    kind: NoteKind::Observation,
                    text: format!("still looking, at event {global}"),
                    links: vec![],
                    check_keys: vec![],
                });
            }
        }
        let inputs: Vec<Input> = events.into_iter().map(Input::Event).collect();
        store
            .append(&inputs, tidemark_store::wall_clock())
            .expect("append");
        written += n;
        if written.is_multiple_of(100_000) {
            eprintln!(
                "{written} events ({:.0}/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    store.snapshot_now().expect("snapshot");
    eprintln!(
        "{written} events in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
