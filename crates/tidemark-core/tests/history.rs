//! The history the fold writes out (ADR 0006, first step): the live state holds at most the
//! current occurrence and the open flap episodes of each finding, however long the log, and
//! the history sink receives exactly the history the views show.

mod support;

use std::collections::BTreeMap;

use proptest::prop_assert;
use proptest::prop_assert_eq;
use support::*;
use tidemark_core::findings::{FindingsProjection, HistorySink};
use tidemark_core::flaps::FlapEpisode;
use tidemark_core::{Applied, FindingState, LogFold, Occurrence};

/// Over long random logs, no live finding ever holds more than its current occurrence and one
/// open flap episode per detector.
#[test]
fn live_findings_hold_a_bounded_history() {
    assert_property("bounded live history", 300, log(2, 600), |events| {
        let mut fold = LogFold::new();
        for (index, event) in events.iter().enumerate() {
            fold.apply(event);
            let held = fold.findings().largest_live_history();
            prop_assert!(
                held.occurrences <= 1 && held.flap_episodes <= 2,
                "after event {}: a live finding holds {:?}",
                index,
                held
            );
        }
        Ok(())
    });
}

/// Records what a history sink receives, in the order it receives it.
#[derive(Default)]
struct Recorder {
    occurrences: BTreeMap<(String, String), Vec<(u64, Occurrence)>>,
    flap_episodes: BTreeMap<(String, String), Vec<(u64, FlapEpisode)>>,
}

impl HistorySink for Recorder {
    fn occurrence_closed(&mut self, cluster: &str, key: &str, number: u64, o: &Occurrence) {
        let finding = (cluster.to_owned(), key.to_owned());
        self.occurrences
            .entry(finding)
            .or_default()
            .push((number, o.clone()));
    }

    fn flap_episode_ended(&mut self, cluster: &str, key: &str, number: u64, e: &FlapEpisode) {
        let finding = (cluster.to_owned(), key.to_owned());
        self.flap_episodes
            .entry(finding)
            .or_default()
            .push((number, e.clone()));
    }
}

/// Folding a random log into a sink of its own: the sink receives exactly the closed
/// occurrences and ended flap episodes the views show (their whole history but the open
/// ones), each once, numbered as the views number them.
#[test]
fn the_history_sink_receives_exactly_the_history_the_views_show() {
    assert_property("history sink", 1_000, log(3, 120), |events| {
        let mut fold = LogFold::new();
        let mut written_out = FindingsProjection::new();
        let mut sink = Recorder::default();
        for event in &events {
            if let Applied::At(seq) = fold.apply(event) {
                written_out.apply_writing_history(seq, event, &mut Vec::new(), &mut sink);
            }
        }
        let mut closed = BTreeMap::new();
        for view in fold.findings().views() {
            let finding = (view.cluster.clone(), view.check_key.clone());
            let numbered: Vec<(u64, Occurrence)> = (1..).zip(view.history).collect();
            let open = numbered
                .iter()
                .filter(|(_, o)| o.resolved_seq.is_none())
                .count();
            prop_assert!(open <= usize::from(view.state == FindingState::Active));
            let done: Vec<_> = numbered
                .into_iter()
                .filter(|(_, o)| o.resolved_seq.is_some())
                .collect();
            if !done.is_empty() {
                closed.insert(finding, done);
            }
        }
        prop_assert_eq!(&sink.occurrences, &closed);

        let mut ended = BTreeMap::new();
        for flap in fold.findings().flaps(None) {
            let finding = (flap.cluster.clone(), flap.check_key.clone());
            let mut done: Vec<(u64, FlapEpisode)> = (1..)
                .zip(
                    fold.findings()
                        .flap_episodes(&flap.cluster, &flap.check_key),
                )
                .filter(|(_, e)| !e.is_open())
                .collect();
            // The sink receives episodes as they end, which need not be the order they started.
            let received = sink.flap_episodes.get_mut(&finding);
            if let Some(received) = received {
                received.sort_by_key(|(number, _)| *number);
            }
            done.sort_by_key(|(number, _)| *number);
            if !done.is_empty() {
                ended.insert(finding, done);
            }
        }
        prop_assert_eq!(&sink.flap_episodes, &ended);
        Ok(())
    });
}
