//! The count detector's stored verdict agrees with the count it is judged from, after every
//! event: a finding whose views say `flapping` (more auto-resolutions in the window at its
//! cluster's clock than the threshold) has an open count episode, and one that has an open
//! count episode is `flapping`. Change records (ADR 0008) report flap starts and stops where the
//! fold flips the stored verdict, and `replay --step` reads the count: they can only agree if
//! this holds, the clock-driven stops (`check_count_flaps`) included.
//!
//! The property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`).

mod support;

use proptest::prelude::*;
use support::*;
use tidemark_core::LogFold;
use tidemark_core::flaps::FlapDetector;

#[test]
fn the_count_detectors_verdict_is_the_count_after_every_event() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // How often a finding was flapping by count, and stopped, across the cases: the property
    // must see both, or it proves nothing.
    static FLAPPING: AtomicUsize = AtomicUsize::new(0);
    static STOPPED: AtomicUsize = AtomicUsize::new(0);
    assert_property("count verdict = count", 1_000, log(3, 80), |events| {
        let mut fold = LogFold::new();
        for (n, event) in events.iter().enumerate() {
            fold.apply(event);
            let findings = fold.projections().findings();
            for view in findings.flaps(None) {
                let episodes = findings.flap_episodes(&view.cluster, &view.check_key);
                let count = episodes
                    .iter()
                    .filter(|e| e.detector == FlapDetector::Count);
                let open = count.clone().any(|e| e.stopped_at.is_none());
                if view.flapping {
                    FLAPPING.fetch_add(1, Ordering::Relaxed);
                }
                if count.clone().any(|e| e.stopped_at.is_some()) {
                    STOPPED.fetch_add(1, Ordering::Relaxed);
                }
                prop_assert_eq!(
                    view.flapping,
                    open,
                    "after event {} ({}): {} {} is{} flapping by count but has{} an open count episode",
                    n,
                    event.id.0,
                    view.cluster,
                    view.check_key,
                    if view.flapping { "" } else { " not" },
                    if open { "" } else { " no" }
                );
            }
        }
        Ok(())
    });
    let (flapping, stopped) = (
        FLAPPING.load(Ordering::Relaxed),
        STOPPED.load(Ordering::Relaxed),
    );
    eprintln!(
        "findings flapping by count after an event: {flapping}; with a stopped count episode: {stopped}"
    );
    assert!(
        flapping > 0 && stopped > 0,
        "the logs never made a finding flap and stop"
    );
}
