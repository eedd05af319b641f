//! The history the fold writes out (ADR 0006, first step): the live state holds at most the
//! current occurrence and the open flap episodes of each finding, however long the log, and
//! the history sink receives exactly the history the views show.

mod support;

use support::*;
use tidemark_core::LogFold;

/// Over long random logs, no live finding ever holds more than its current occurrence and one
/// open flap episode per detector.
#[test]
fn live_findings_hold_a_bounded_history() {
    assert_property("bounded live history", 300, log(2, 600), |events| {
        let mut fold = LogFold::new();
        for (index, event) in events.iter().enumerate() {
            fold.apply(event);
            let held = fold.findings().largest_live_history();
            proptest::prop_assert!(
                held.occurrences <= 1,
                "after event {}: a live finding holds {:?}",
                index,
                held
            );
        }
        Ok(())
    });
}
