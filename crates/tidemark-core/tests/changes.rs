//! The fold's own change records (ADR 0008, test 1, restricted to the findings' parts for plan
//! step 2): folding each event with `Projections::apply_with_changes` says, for the parts
//! `finding`, `flap`, `stuck`, `drift` and `unstable_key`, exactly what `tidemark replay --step`
//! says by comparing the whole digest before and after the event (`Digest::of`,
//! `Digest::changes`): the same lines, element by element. And watching never changes the
//! state: both folds end with equal snapshots.
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use support::*;
use tidemark_core::Projections;
use tidemark_core::changes::{Change, Digest};

/// The parts the fold reports until plan step 3, in `--step` order.
const PARTS: [&str; 5] = ["finding", "flap", "stuck", "drift", "unstable_key"];

#[test]
fn the_folds_changes_are_the_step_digests_changes_for_the_findings_parts() {
    // How many cases produced a change of each part: the property must see every part, or it
    // proves nothing about it.
    static EXERCISED: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
    assert_property(
        "fold changes = --step changes",
        1_000,
        log(3, 80),
        |events| {
            let mut watched = Projections::new();
            let mut walked = Projections::new();
            let mut seen = [false; 5];
            let mut before = Digest::of(&walked);
            for (n, event) in events.iter().enumerate() {
                let seq = n as u64 + 1;
                let mut said = Vec::new();
                let watched_changes = watched.apply_with_changes(seq, event, &mut said).to_vec();
                let walked_changes = walked.apply(seq, event).to_vec();
                prop_assert_eq!(watched_changes, walked_changes);
                let after = Digest::of(&walked);
                let expected: Vec<Change> = before
                    .changes(&after)
                    .into_iter()
                    .filter(|c| PARTS.contains(&c.what))
                    .collect();
                for change in &expected {
                    let part = PARTS
                        .iter()
                        .position(|p| *p == change.what)
                        .expect("a part");
                    seen[part] = true;
                }
                prop_assert_eq!(
                    &said,
                    &expected,
                    "event {} (position {}, {}, {} {}): the fold said {:#?}, --step says {:#?}",
                    n,
                    seq,
                    event.id.0,
                    event.cluster,
                    event.event_type(),
                    said,
                    expected
                );
                before = after;
            }
            prop_assert!(
                watched.snapshot() == walked.snapshot(),
                "watching changed the state"
            );
            for (part, seen) in seen.iter().enumerate() {
                if *seen {
                    EXERCISED[part].fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        },
    );
    let exercised: Vec<(&str, usize)> = PARTS
        .iter()
        .zip(&EXERCISED)
        .map(|(part, n)| (*part, n.load(Ordering::Relaxed)))
        .collect();
    eprintln!("cases with changes, by part: {exercised:?}");
    for (part, n) in exercised {
        assert!(n > 0, "no case changed the part `{part}`");
    }
}
