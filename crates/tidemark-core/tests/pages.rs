//! The API's pages against the whole lists, on random logs: following each `*_page` from the
//! start to its end gives exactly the whole list (the overviews say what the full views say,
//! less the history), a finding's history and flap episodes paged are its whole history, a
//! window of them is the naive filter, and the stuck and incident pages are the whole lists
//! cut as the API cuts them.
//!
//! Each property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`).

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestCaseResult};
use support::*;
use tidemark_core::findings::{FindingOverview, FindingView, FlapOverview, FlapView};
use tidemark_core::flaps::FlapEpisodeView;
use tidemark_core::incidents::{IncidentState, IncidentView};
use tidemark_core::{Event, LogFold, Projections};

fn fold_all(events: &[Event]) -> LogFold {
    let mut fold = LogFold::new();
    for event in events {
        fold.apply(event);
    }
    fold
}

/// What the overview of a full view must say.
fn overview_of(view: &FindingView, flap_episodes: u64) -> FindingOverview {
    FindingOverview {
        cluster: view.cluster.clone(),
        check_key: view.check_key.clone(),
        category: view.category.clone(),
        severity: view.severity,
        title: view.title.clone(),
        state: view.state,
        clean_cycles: view.clean_cycles,
        opened_at: view.opened_at,
        last_seen_at: view.last_seen_at,
        resolved_at: view.resolved_at,
        resolution_kind: view.resolution_kind,
        occurrences: view.occurrences,
        flap_episodes,
        flapping: view.flapping,
        flapping_state_change: view.flapping_state_change,
        state_change_percent: view.state_change_percent,
        alert: view.alert.clone(),
        stale: view.stale,
        in_maintenance: view.in_maintenance.clone(),
    }
}

/// What the flap overview of a full flap view must say.
fn flap_overview_of(view: &FlapView) -> FlapOverview {
    FlapOverview {
        cluster: view.cluster.clone(),
        check_key: view.check_key.clone(),
        category: view.category.clone(),
        severity: view.severity,
        title: view.title.clone(),
        state: view.state,
        flapping: view.flapping,
        flapping_state_change: view.flapping_state_change,
        auto_resolutions_in_window: view.auto_resolutions_in_window,
        state_change_percent: view.state_change_percent,
        flap_episodes: view.episodes.len() as u64,
        latest_episode: view
            .episodes
            .last()
            .expect("a flap view has episodes")
            .clone(),
    }
}

/// Every page of a (cluster, check_key) list, followed from the start.
fn follow<T>(
    limit: usize,
    key: impl Fn(&T) -> (String, String),
    page: impl Fn(Option<(&str, &str)>, usize) -> (Vec<T>, bool),
) -> Result<Vec<T>, TestCaseError> {
    let mut all: Vec<T> = Vec::new();
    let mut after: Option<(String, String)> = None;
    for _ in 0..10_000 {
        let (items, more) = page(after.as_ref().map(|(c, k)| (c.as_str(), k.as_str())), limit);
        prop_assert!(items.len() <= limit);
        prop_assert!(
            !more || items.len() == limit,
            "a short page says more follow"
        );
        after = items.last().map(&key);
        all.extend(items);
        if !more {
            return Ok(all);
        }
    }
    Err(TestCaseError::fail("the pages never ended"))
}

fn findings_and_flaps_pages(p: &Projections, limit: usize) -> TestCaseResult {
    let findings = p.findings();
    let views = findings.views();
    let expected: Vec<FindingOverview> = views
        .iter()
        .map(|v| {
            let episodes = findings.flap_episodes(&v.cluster, &v.check_key).len();
            overview_of(v, episodes as u64)
        })
        .collect();
    let paged = follow(
        limit,
        |f: &FindingOverview| (f.cluster.clone(), f.check_key.clone()),
        |after, limit| findings.views_page(None, |_| true, after, limit),
    )?;
    prop_assert_eq!(&paged, &expected);
    // No bound at all is one page of everything (the limit's arithmetic must not overflow).
    let (all, more) = findings.views_page(None, |_| true, None, usize::MAX);
    prop_assert!(!more);
    prop_assert_eq!(&all, &expected);

    // A filter and a cluster: the same as filtering the whole list.
    for cluster in findings.cluster_names() {
        let expected: Vec<&FindingOverview> = expected
            .iter()
            .filter(|f| f.cluster == cluster && f.state == tidemark_core::FindingState::Active)
            .collect();
        let paged = follow(
            limit,
            |f: &FindingOverview| (f.cluster.clone(), f.check_key.clone()),
            |after, limit| {
                findings.views_page(
                    Some(&cluster),
                    |f| f.state == tidemark_core::FindingState::Active,
                    after,
                    limit,
                )
            },
        )?;
        prop_assert_eq!(paged.iter().collect::<Vec<_>>(), expected);
    }

    let flaps = findings.flaps(None);
    let paged = follow(
        limit,
        |f: &FlapOverview| (f.cluster.clone(), f.check_key.clone()),
        |after, limit| findings.flaps_page(None, after, limit),
    )?;
    prop_assert_eq!(
        paged,
        flaps.iter().map(flap_overview_of).collect::<Vec<_>>()
    );
    Ok(())
}

fn history_pages(p: &Projections, limit: usize) -> TestCaseResult {
    // Pages of one also split the episodes that two detectors started at one event.
    history_pages_of(p, 1)?;
    history_pages_of(p, limit)
}

fn history_pages_of(p: &Projections, limit: usize) -> TestCaseResult {
    let findings = p.findings();
    let flaps: Vec<FlapView> = findings.flaps(None);
    for view in findings.views() {
        let (cluster, key) = (view.cluster.as_str(), view.check_key.as_str());
        let mut history = Vec::new();
        let mut after = 0;
        loop {
            let (page, more) = findings
                .history_page(cluster, key, after, limit)
                .expect("a listed finding has a history");
            prop_assert!(page.len() <= limit && (!more || page.len() == limit));
            after = page.last().map_or(after, |o| o.opened_seq);
            history.extend(page);
            if !more {
                break;
            }
        }
        prop_assert_eq!(&history, &view.history, "{}/{}", cluster, key);

        let mut episodes: Vec<FlapEpisodeView> = Vec::new();
        loop {
            let after = episodes.last().map(|e| (e.started_seq, e.detector));
            let (page, more) = findings
                .flap_episodes_page(cluster, key, after, limit)
                .expect("a listed finding has flap episodes, maybe none");
            prop_assert!(page.len() <= limit && (!more || page.len() == limit));
            episodes.extend(page);
            if !more {
                break;
            }
        }
        let whole = flaps
            .iter()
            .find(|f| f.cluster == cluster && f.check_key == key)
            .map(|f| f.episodes.clone())
            .unwrap_or_default();
        prop_assert_eq!(&episodes, &whole, "{}/{}", cluster, key);
        prop_assert_eq!(
            findings.overview(cluster, key),
            Some(overview_of(&view, whole.len() as u64))
        );
    }
    prop_assert!(
        findings
            .history_page("nowhere", "nothing", 0, limit)
            .is_none()
    );
    prop_assert!(
        findings
            .flap_episodes_page("nowhere", "nothing", None, limit)
            .is_none()
    );
    Ok(())
}

fn history_windows(p: &Projections, last_seq: u64) -> TestCaseResult {
    let findings = p.findings();
    let flaps: Vec<FlapView> = findings.flaps(None);
    for view in findings.views() {
        let (cluster, key) = (view.cluster.as_str(), view.check_key.as_str());
        let episodes = flaps
            .iter()
            .find(|f| f.cluster == cluster && f.check_key == key)
            .map(|f| f.episodes.clone())
            .unwrap_or_default();
        for from in 0..=last_seq + 1 {
            for to in from..=last_seq + 1 {
                let window = findings
                    .history_between(cluster, key, from, to, usize::MAX)
                    .expect("a listed finding");
                let naive: Vec<(usize, _)> = (1..)
                    .zip(view.history.iter().cloned())
                    .filter(|(_, o)| o.opened_seq <= to && o.resolved_seq.is_none_or(|r| r >= from))
                    .collect();
                prop_assert_eq!(
                    &window.items,
                    &naive,
                    "{}/{} {}..={}",
                    cluster,
                    key,
                    from,
                    to
                );
                prop_assert_eq!(window.total, view.history.len());
                let cut = findings
                    .history_between(cluster, key, from, to, 1)
                    .expect("a listed finding");
                prop_assert_eq!(
                    cut.items,
                    naive.last().cloned().into_iter().collect::<Vec<_>>()
                );

                let window = findings
                    .flap_episodes_between(cluster, key, from, to, usize::MAX)
                    .expect("a listed finding");
                let naive: Vec<(usize, FlapEpisodeView)> = (1..)
                    .zip(episodes.iter().cloned())
                    .filter(|(_, e)| e.started_seq <= to && e.stopped_seq.is_none_or(|s| s >= from))
                    .collect();
                prop_assert_eq!(
                    &window.items,
                    &naive,
                    "{}/{} {}..={}",
                    cluster,
                    key,
                    from,
                    to
                );
                prop_assert_eq!(window.total, episodes.len());

                let positions: Vec<u64> = (from..=to).step_by(2).collect();
                let mut changes = findings.flap_changes_at(cluster, key, &positions);
                changes.sort_unstable();
                let mut naive: Vec<(u64, _, bool)> = episodes
                    .iter()
                    .flat_map(|e| {
                        [
                            Some((e.started_seq, e.detector, true)),
                            e.stopped_seq.map(|s| (s, e.detector, false)),
                        ]
                    })
                    .flatten()
                    .filter(|(seq, _, _)| positions.contains(seq))
                    .collect();
                naive.sort_unstable();
                prop_assert_eq!(changes, naive, "{}/{} at {:?}", cluster, key, positions);
            }
        }
    }
    Ok(())
}

fn stuck_and_incident_pages(p: &Projections, limit: usize) -> TestCaseResult {
    let findings = p.findings();
    let whole = findings.stuck(None);
    let (page, truncated) = findings.stuck_page(None, None, limit);
    prop_assert_eq!(
        truncated,
        whole.unreachable.len() > limit
            || whole.stale_alerts.len() > limit
            || whole.drift_suspects.len() > limit
            || whole.long_lived.len() > limit
    );
    prop_assert_eq!(
        &page.unreachable[..],
        &whole.unreachable[..whole.unreachable.len().min(limit)]
    );
    prop_assert_eq!(
        &page.stale_alerts[..],
        &whole.stale_alerts[..whole.stale_alerts.len().min(limit)]
    );
    prop_assert_eq!(
        &page.long_lived[..],
        &whole.long_lived[..whole.long_lived.len().min(limit)]
    );
    let drifts = &whole.drift_suspects;
    prop_assert_eq!(
        &page.drift_suspects[..],
        &drifts[drifts.len().saturating_sub(limit)..]
    );

    let unstable = p.unstable_keys(None);
    prop_assert_eq!(
        p.unstable_keys_first(None, limit),
        unstable[..unstable.len().min(limit)].to_vec()
    );

    let incidents = p.incidents();
    for (include_merged, wanted) in [
        (false, None),
        (true, None),
        (true, Some(IncidentState::Closed)),
        (false, Some(IncidentState::Open)),
    ] {
        let mut expected: Vec<IncidentView> = incidents.views(findings, None, include_merged);
        expected.retain(|i| wanted.is_none_or(|s| s == i.state));
        expected.sort_by(|a, b| (a.opened_seq, &a.id).cmp(&(b.opened_seq, &b.id)));
        let mut paged: Vec<IncidentView> = Vec::new();
        let mut after: Option<(u64, String)> = None;
        loop {
            let (page, more) = incidents.views_page(
                findings,
                None,
                include_merged,
                |s| wanted.is_none_or(|w| w == s),
                after.as_ref().map(|(seq, id)| (*seq, id.as_str())),
                limit,
            );
            prop_assert!(page.len() <= limit && (!more || page.len() == limit));
            after = page.last().map(|i| (i.opened_seq, i.id.clone()));
            paged.extend(page);
            if !more {
                break;
            }
        }
        prop_assert_eq!(paged, expected);
    }
    Ok(())
}

#[test]
fn pages_followed_to_the_end_are_the_whole_lists() {
    let strategy = log(3, 80).prop_flat_map(|events| (Just(events), 1..5usize));
    assert_property(
        "pages are the whole lists",
        1_000,
        strategy,
        |(events, limit)| {
            let fold = fold_all(&events);
            findings_and_flaps_pages(fold.projections(), limit)?;
            history_pages(fold.projections(), limit)?;
            stuck_and_incident_pages(fold.projections(), limit)
        },
    );
}

#[test]
fn a_window_of_a_history_is_what_overlaps_it() {
    assert_property("history windows", 300, log(2, 40), |events| {
        let fold = fold_all(&events);
        history_windows(fold.projections(), events.len() as u64)
    });
}

#[test]
fn the_random_logs_reach_flap_episodes_and_incidents() {
    // The properties above mean little unless the logs they draw have what they page.
    let (mut episodes, mut incidents, mut long_histories) = (0, 0, 0);
    // Both detectors starting at one event, the state change one first (not in detector order).
    let mut ties_out_of_detector_order = 0;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    // 2,000 logs (about a second): since the logs draw alerts too, such ties come about once
    // in 300.
    for _ in 0..2000 {
        let events = log(3, 80).new_tree(&mut runner).expect("a log").current();
        let fold = fold_all(&events);
        let p = fold.projections();
        episodes += p
            .findings()
            .flaps(None)
            .iter()
            .filter(|f| f.episodes.len() > 1)
            .count();
        let ties = p
            .findings()
            .flaps(None)
            .iter()
            .filter(|f| {
                f.episodes
                    .windows(2)
                    .any(|w| w[0].started_seq == w[1].started_seq && w[0].detector > w[1].detector)
            })
            .count();
        if ties > 0 {
            // A page boundary between them: the cursor must not skip the second.
            history_pages_of(p, 1).unwrap_or_else(|e| panic!("{e}"));
        }
        ties_out_of_detector_order += ties;
        incidents += p.incidents().views(p.findings(), None, true).len();
        long_histories += p
            .findings()
            .views()
            .iter()
            .filter(|v| v.history.len() > 4)
            .count();
    }
    assert!(
        ties_out_of_detector_order > 0,
        "no two episodes started at one event, the state change one first"
    );
    assert!(
        episodes > 0 && incidents > 0 && long_histories > 0,
        "findings with several flap episodes {episodes}, incidents {incidents}, histories \
         longer than a page {long_histories}"
    );
}
