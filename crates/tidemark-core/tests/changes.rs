//! The fold's own change records (ADR 0008, test 1, for the parts of plan steps 2 and 3):
//! folding each event with `Projections::apply_with_changes` says, for the parts `finding`,
//! `flap`, `stuck`, `drift`, `unstable_key`, `orphan` and `candidate`, exactly what
//! `tidemark replay --step` says by comparing the whole digest before and after the event
//! (`Digest::of`, `Digest::changes`): the same lines, element by element. The same log folded
//! on from a snapshot restored halfway says the same from there. And watching never changes the
//! state: the watched and the plain fold end with equal snapshots.
//!
//! Two generators: the findings' (`support::log`), and an orphan-heavy one
//! (`support::orphan_log`: scans of uids sharing few names, tracking rows, spans of a few traces
//! with span ids repeated across traces, confirm, grace and retention settings, mixed with the
//! findings' steps), in which orphans sharing a label are common.
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`).

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use support::*;
use tidemark_core::changes::{Change, Digest, orphan_label};
use tidemark_core::{Event, Projections};

/// The parts the fold reports until the incidents join (plan step 3), in `--step` order.
const PARTS: [&str; 7] = [
    "finding",
    "flap",
    "stuck",
    "drift",
    "unstable_key",
    "orphan",
    "candidate",
];

/// Cases that changed each part, then cases where two listed orphans or candidates shared a
/// label.
type Exercised = [AtomicUsize; PARTS.len() + 1];

/// Folds `events` watched, plain, and watched again from a snapshot restored halfway: the
/// watched folds must say, at every event, what the whole-digest comparison says.
fn says_what_step_says(events: &[Event], exercised: &Exercised) -> TestCaseResult {
    let mut watched = Projections::new();
    let mut walked = Projections::new();
    let mut resumed: Option<Projections> = None;
    let restore_at = events.len() / 2;
    let mut seen = [false; PARTS.len() + 1];
    let mut before = Digest::of(&walked);
    for (n, event) in events.iter().enumerate() {
        if n == restore_at {
            resumed = Some(Projections::restore(&watched.snapshot()));
        }
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
        if let Some(resumed) = &mut resumed {
            let mut said_resumed = Vec::new();
            resumed.apply_with_changes(seq, event, &mut said_resumed);
            prop_assert_eq!(
                &said_resumed,
                &expected,
                "event {} (position {}), folded on from a snapshot at position {}",
                n,
                seq,
                restore_at
            );
        }
        let orphans = walked.orphans();
        let listed = orphans.orphans(None).into_iter().map(|o| orphan_label(&o));
        let candidates = orphans.candidates(None).into_iter();
        let mut labels = BTreeSet::new();
        let shared = listed
            .chain(candidates.map(|o| orphan_label(&o)))
            .any(|label| !labels.insert(label));
        seen[PARTS.len()] |= shared;
        before = after;
    }
    prop_assert!(
        watched.snapshot() == walked.snapshot(),
        "watching changed the state"
    );
    for (part, seen) in seen.iter().enumerate() {
        if *seen {
            exercised[part].fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Reports how many cases exercised each part, and fails if one of `required` was never.
fn assert_exercised(exercised: &Exercised, required: &[&str], same_label_required: bool) {
    let counts: Vec<(&str, usize)> = PARTS
        .iter()
        .copied()
        .chain(["same-label orphans"])
        .zip(exercised)
        .map(|(part, n)| (part, n.load(Ordering::Relaxed)))
        .collect();
    eprintln!("cases with changes, by part: {counts:?}");
    for (part, n) in &counts[..PARTS.len()] {
        assert!(
            *n > 0 || !required.contains(part),
            "no case changed the part `{part}`"
        );
    }
    assert!(
        counts[PARTS.len()].1 > 0 || !same_label_required,
        "no case listed two orphans sharing a label"
    );
}

#[test]
fn the_folds_changes_are_the_step_digests_changes_on_findings_logs() {
    static EXERCISED: Exercised = [const { AtomicUsize::new(0) }; PARTS.len() + 1];
    assert_property(
        "fold changes = --step changes (findings logs)",
        1_000,
        log(3, 80),
        |events| says_what_step_says(&events, &EXERCISED),
    );
    assert_exercised(&EXERCISED, &PARTS[..5], false);
}

#[test]
fn the_folds_changes_are_the_step_digests_changes_on_orphan_logs() {
    static EXERCISED: Exercised = [const { AtomicUsize::new(0) }; PARTS.len() + 1];
    assert_property(
        "fold changes = --step changes (orphan logs)",
        500,
        orphan_log(2, 80),
        |events| says_what_step_says(&events, &EXERCISED),
    );
    assert_exercised(&EXERCISED, &["orphan", "candidate"], true);
}
