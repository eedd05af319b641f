//! The finding lifecycle, proven by replaying random event logs.
//!
//! Each property prints the seed that reproduces a failure (`TIDEMARK_PROPTEST_SEED=...`);
//! `PROPTEST_CASES=N` runs more or fewer cases than the defaults here.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestCaseResult};
use support::*;
use tidemark_core::findings::FindingsProjection;
use tidemark_core::{
    Event, FindingState, FindingView, FoldSnapshot, LogFold, Payload, ResolutionKind, Severity,
};

// ---------------------------------------------------------------------------------------------
// 1 + 2. The dampener

const TARGET_CLUSTER: &str = "pw-prod";
const TARGET_KEY: &str = "proxied:domain:42";
const TARGET_CATEGORY: &str = "pods";
const OTHER_CATEGORIES: &[&str] = &["infra_drift", "dns", "admission_bypass"];

#[derive(Clone, Debug)]
struct DampenerCase {
    threshold: u32,
    /// For each later cycle of the target cluster: does it run the target's category, which
    /// other categories it runs, and noise events before it (other clusters, notes).
    cycles: Vec<(bool, Vec<usize>, Vec<Step>)>,
}

fn dampener_case() -> impl Strategy<Value = DampenerCase> {
    (
        0u32..=4,
        proptest::collection::vec(
            (
                proptest::bool::weighted(0.6),
                proptest::sample::subsequence(vec![0usize, 1, 2], 0..=3),
                proptest::collection::vec(step(CLUSTERS.len()), 0..3),
            ),
            1..16,
        ),
    )
        .prop_map(|(threshold, cycles)| DampenerCase { threshold, cycles })
}

/// Events of the case, and for each target-cluster cycle after the first: (event index, runs?).
fn dampener_log(case: &DampenerCase) -> (Vec<Event>, Vec<(usize, bool)>) {
    let mut events = vec![
        threshold("set", TARGET_CLUSTER, 0, case.threshold),
        cycle(
            "seen",
            TARGET_CLUSTER,
            60,
            &[TARGET_CATEGORY],
            vec![obs(TARGET_KEY, TARGET_CATEGORY)],
        ),
    ];
    let mut checkpoints = Vec::new();
    let mut secs = 60;
    for (i, (runs, others, noise)) in case.cycles.iter().enumerate() {
        // Noise: other clusters' events (which may even carry the target key) and notes.
        let noise_events = build_log(noise, &[]);
        for (j, mut e) in noise_events.into_iter().enumerate() {
            if e.cluster == TARGET_CLUSTER
                && matches!(
                    e.payload,
                    tidemark_core::Payload::CycleCompleted(_)
                        | tidemark_core::Payload::SettingsChanged(_)
                        | tidemark_core::Payload::FindingResolved(_)
                )
            {
                continue;
            }
            e.id = format!("noise-{i}-{j}").as_str().into();
            e.time = at(secs + 1);
            events.push(e);
        }
        secs += 300;
        let mut categories: Vec<&str> = others.iter().map(|&c| OTHER_CATEGORIES[c]).collect();
        if *runs {
            categories.push(TARGET_CATEGORY);
        }
        // Other findings, only in categories this cycle runs, never the target key.
        let findings = categories
            .iter()
            .enumerate()
            .map(|(k, c)| obs(&format!("other:{k}:{c}"), c))
            .collect();
        events.push(cycle(
            &format!("cycle-{i}"),
            TARGET_CLUSTER,
            secs,
            &categories,
            findings,
        ));
        checkpoints.push((events.len() - 1, *runs));
    }
    (events, checkpoints)
}

/// With threshold T, the target is resolved exactly in the (T+1)-th later cycle that runs its
/// category — never earlier, never later — and cycles that do not run it do not count.
fn dampener_holds<F: Fold>(mut fold: F, case: &DampenerCase) -> TestCaseResult {
    let (events, checkpoints) = dampener_log(case);
    let mut next = 0;
    let mut clean_runs = 0u32;
    for (index, event) in events.iter().enumerate() {
        fold.apply(event);
        if next < checkpoints.len() && checkpoints[next].0 == index {
            if checkpoints[next].1 {
                clean_runs += 1;
            }
            next += 1;
            let view = fold
                .view(TARGET_CLUSTER, TARGET_KEY)
                .expect("target was seen");
            if clean_runs <= case.threshold {
                prop_assert_eq!(
                    view.state,
                    FindingState::Active,
                    "resolved early after {} clean cycles with T = {}",
                    clean_runs,
                    case.threshold
                );
                prop_assert_eq!(view.clean_cycles, Some(clean_runs));
            } else {
                prop_assert_eq!(
                    view.state,
                    FindingState::Resolved,
                    "not resolved after {} clean cycles with T = {}",
                    clean_runs,
                    case.threshold
                );
                prop_assert_eq!(view.resolution_kind, Some(ResolutionKind::Auto));
                prop_assert_eq!(view.occurrences, 1);
                // Resolved in the (T+1)-th running cycle, at that cycle's position.
                let resolving = checkpoints
                    .iter()
                    .filter(|(_, runs)| *runs)
                    .nth(case.threshold as usize)
                    .unwrap();
                prop_assert_eq!(view.history[0].resolved_seq, Some(resolving.0 as u64 + 1));
                prop_assert_eq!(view.resolved_at, Some(events[resolving.0].time));
            }
        }
    }
    Ok(())
}

#[test]
fn property_1_dampener_resolves_in_the_t_plus_first_clean_cycle() {
    assert_property("dampener (real fold)", 3_000, dampener_case(), |case| {
        dampener_holds(LogFold::new(), &case)
    });
    assert_property("dampener (reference fold)", 500, dampener_case(), |case| {
        dampener_holds(ReferenceFold::correct(), &case)
    });
}

#[test]
fn property_2_the_suite_catches_increment_before_resolve() {
    let dampener = check(
        "dampener (increment-first fold)",
        3_000,
        dampener_case(),
        |case| dampener_holds(ReferenceFold::increment_first(), &case),
    );
    let message = dampener
        .expect_err("the dampener property must fail on a fold that increments before resolving");
    assert!(
        message.contains("resolved early"),
        "it must fail for the right reason:\n{message}"
    );

    let model = check(
        "model check (increment-first fold)",
        3_000,
        log(3, 80),
        |events| agrees_with(LogFold::new(), ReferenceFold::increment_first(), &events),
    );
    assert!(
        model.is_err(),
        "the model check must tell the real fold from the increment-first one"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Model check

fn agrees_with<A: Fold, B: Fold>(
    mut real: A,
    mut reference: B,
    events: &[Event],
) -> TestCaseResult {
    for (index, event) in events.iter().enumerate() {
        real.apply(event);
        reference.apply(event);
        let checkpoint = index % 4 == 0 || index + 1 == events.len();
        if checkpoint && let Some(difference) = first_difference(&real.views(), &reference.views())
        {
            return Err(TestCaseError::fail(format!(
                "after event {index} ({}): {difference}",
                event.id
            )));
        }
    }
    Ok(())
}

/// The first finding on which two folds disagree, described briefly.
fn first_difference(ours: &[FindingView], theirs: &[FindingView]) -> Option<String> {
    for (a, b) in ours.iter().zip(theirs) {
        if a != b {
            return Some(format!("real fold: {a:?}\nreference: {b:?}"));
        }
    }
    (ours.len() != theirs.len()).then(|| {
        format!(
            "real fold has {} findings, reference has {}",
            ours.len(),
            theirs.len()
        )
    })
}

#[test]
fn property_3_model_check_against_a_naive_reference_fold() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static FLAPPING_BY_COUNT: AtomicUsize = AtomicUsize::new(0);
    static FLAPPING_BY_STATE_CHANGE: AtomicUsize = AtomicUsize::new(0);
    assert_property("model check", 3_000, log(3, 80), |events| {
        let mut fold = LogFold::new();
        for event in &events {
            fold.apply(event);
        }
        for view in fold.findings().views() {
            if view.flapping {
                FLAPPING_BY_COUNT.fetch_add(1, Ordering::Relaxed);
            }
            if view.flapping_state_change {
                FLAPPING_BY_STATE_CHANGE.fetch_add(1, Ordering::Relaxed);
            }
        }
        agrees_with(LogFold::new(), ReferenceFold::correct(), &events)
    });
    // The generated logs must reach both flap detectors, or the model check proves little.
    assert!(FLAPPING_BY_COUNT.load(Ordering::Relaxed) > 0);
    assert!(FLAPPING_BY_STATE_CHANGE.load(Ordering::Relaxed) > 0);
}

// ---------------------------------------------------------------------------------------------
// 4. Determinism and resumability

fn fold_all(events: &[Event]) -> LogFold {
    let mut fold = LogFold::new();
    for event in events {
        fold.apply(event);
    }
    fold
}

#[test]
fn property_4_same_log_same_state_and_snapshots_resume_exactly() {
    let strategy = log(3, 80).prop_flat_map(|events| {
        let len = events.len();
        (Just(events), 0..=len)
    });
    assert_property(
        "determinism and resumability",
        3_000,
        strategy,
        |(events, split)| {
            let whole = fold_all(&events);
            let again = fold_all(&events);
            let whole_bytes = serde_json::to_vec(&whole.snapshot()).unwrap();
            prop_assert_eq!(
                &whole_bytes,
                &serde_json::to_vec(&again.snapshot()).unwrap()
            );

            let first_half = fold_all(&events[..split]);
            let bytes = serde_json::to_vec(&first_half.snapshot()).unwrap();
            let restored: FoldSnapshot = serde_json::from_slice(&bytes).unwrap();
            let mut resumed = LogFold::restore(&restored);
            for event in &events[split..] {
                resumed.apply(event);
            }
            let resumed_bytes = serde_json::to_vec(&resumed.snapshot()).unwrap();
            if whole_bytes != resumed_bytes {
                let at = whole_bytes
                    .iter()
                    .zip(&resumed_bytes)
                    .position(|(a, b)| a != b)
                    .unwrap_or(whole_bytes.len().min(resumed_bytes.len()));
                let context = |bytes: &[u8]| {
                    String::from_utf8_lossy(
                        &bytes[at.saturating_sub(300)..(at + 200).min(bytes.len())],
                    )
                    .into_owned()
                };
                prop_assert!(
                    false,
                    "split at {}: snapshots differ at byte {}\nwhole:   {}\nresumed: {}",
                    split,
                    at,
                    context(&whole_bytes),
                    context(&resumed_bytes)
                );
            }
            prop_assert_eq!(whole.findings().views(), resumed.findings().views());
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Idempotency

fn unique_ids(mut events: Vec<Event>) -> Vec<Event> {
    let mut seen = std::collections::BTreeSet::new();
    events.retain(|e| seen.insert(e.id.clone()));
    events
}

#[test]
fn property_5_an_id_seen_again_changes_nothing() {
    let strategy = log(3, 60)
        .prop_map(unique_ids)
        .prop_filter("needs an event", |e| !e.is_empty())
        .prop_flat_map(|events| {
            let len = events.len();
            (
                Just(events),
                0..len,
                any::<proptest::sample::Index>(),
                0..len,
            )
        });
    assert_property(
        "idempotency",
        3_000,
        strategy,
        |(events, original, later, content_from)| {
            // A copy of event `original`'s id, carrying any event's content and a new time,
            // inserted anywhere after the original.
            let mut copy = events[content_from].clone();
            copy.id = events[original].id.clone();
            copy.time = copy.time.plus_secs(7);
            let position = original + 1 + later.index(events.len() - original);
            let mut with_copy = events.clone();
            with_copy.insert(position, copy);

            let plain = fold_all(&events);
            let duplicated = fold_all(&with_copy);
            prop_assert_eq!(plain.snapshot(), duplicated.snapshot());
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Isolation

fn cluster_views(projection: &FindingsProjection, cluster: &str) -> Vec<FindingView> {
    projection
        .views()
        .into_iter()
        .filter(|v| v.cluster == cluster)
        .collect()
}

#[test]
fn property_6_one_cluster_never_changes_another() {
    assert_property(
        "isolation",
        3_000,
        log(3, 80).prop_map(unique_ids),
        |events| {
            let positioned: Vec<(u64, &Event)> = events
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64 + 1, e))
                .collect();
            let everything = fold_with_positions(positioned.iter().copied());
            for cluster in CLUSTERS {
                let alone = fold_with_positions(
                    positioned
                        .iter()
                        .copied()
                        .filter(|(_, e)| e.cluster == *cluster),
                );
                prop_assert_eq!(
                    cluster_views(&everything, cluster),
                    cluster_views(&alone, cluster),
                    "cluster {}",
                    cluster
                );
                prop_assert_eq!(everything.settings(cluster), alone.settings(cluster));
                prop_assert_eq!(everything.clock(cluster), alone.clock(cluster));
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Flap hysteresis of the state change detector

/// The thresholds in force for a cluster after the events so far (the defaults, then every
/// `settings.changed`).
fn thresholds(events: &[Event], cluster: &str) -> (f64, f64) {
    let mut start = 30u32;
    let mut stop = 25u32;
    for event in events.iter().filter(|e| e.cluster == cluster) {
        if let tidemark_core::Payload::SettingsChanged(s) = &event.payload {
            start = s.flap_start_percent.unwrap_or(start);
            stop = s.flap_stop_percent.unwrap_or(stop);
        }
    }
    (f64::from(start), f64::from(stop.min(start)))
}

#[test]
fn property_7_flap_hysteresis_and_flapping_ends_within_20_quiet_runs() {
    assert_property("flap hysteresis", 1_000, log(2, 80), |events| {
        let events = unique_ids(events);
        let mut fold = LogFold::new();
        let mut was_flapping: std::collections::BTreeMap<(String, String), bool> =
            Default::default();
        for (i, event) in events.iter().enumerate() {
            fold.apply(event);
            let (start, stop) = thresholds(&events[..=i], &event.cluster);
            for view in fold.findings().views() {
                if view.cluster != event.cluster {
                    continue;
                }
                let key = (view.cluster.clone(), view.check_key.clone());
                let before = was_flapping.get(&key).copied().unwrap_or(false);
                if view.flapping_state_change {
                    // Never flapping below the stop threshold...
                    prop_assert!(
                        view.state_change_percent >= stop,
                        "after {}: {} flaps at {}% < stop {}%",
                        event.id,
                        view.check_key,
                        view.state_change_percent,
                        stop
                    );
                    // ... and never starting below the start threshold.
                    if !before {
                        prop_assert!(
                            view.state_change_percent >= start,
                            "after {}: {} started at {}% < start {}%",
                            event.id,
                            view.check_key,
                            view.state_change_percent,
                            start
                        );
                    }
                }
                was_flapping.insert(key, view.flapping_state_change);
            }
        }
        // Then every category of every cluster runs 21 times with nothing present: the last
        // change of any finding is in the first of those runs, and 20 runs later none may still
        // flap.
        let last = events
            .last()
            .map_or(0, |e| e.time.unix_nanos() / 1_000_000_000 - 1_772_409_600);
        // An alert's runs are its cluster's alert notifications: 21 that change nothing (a
        // resolve of an alert never seen firing) end every alert's flapping likewise.
        let mut quiet = Vec::new();
        for run in 0..21 {
            for cluster in CLUSTERS.iter().take(2) {
                quiet.push(cycle(
                    &format!("quiet-{cluster}-{run}"),
                    cluster,
                    last + 60 * (run + 1),
                    CATEGORIES,
                    vec![],
                ));
                let mut unknown = alert_event(
                    &format!("quiet-alert-{cluster}-{run}"),
                    cluster,
                    last + 60 * (run + 1),
                    0,
                    false,
                    0,
                    Severity::Info,
                    None,
                );
                if let Payload::AlertResolved(a) = &mut unknown.payload {
                    a.fingerprint = "never-fired".to_owned();
                }
                quiet.push(unknown);
            }
        }
        // Unless settings disabled a category: enable everything first.
        for cluster in CLUSTERS.iter().take(2) {
            fold.apply(&settings(
                &format!("enable-{cluster}"),
                cluster,
                last,
                tidemark_core::event::SettingsChanged {
                    enabled_categories: Some(None),
                    ..Default::default()
                },
            ));
        }
        for event in &quiet {
            fold.apply(event);
        }
        for view in fold.findings().views() {
            prop_assert!(
                !view.flapping_state_change,
                "{} still flaps 20 runs after its last change: {}%",
                view.check_key,
                view.state_change_percent
            );
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 8. Late events: times in the state never go back

/// Producers' clocks skew and logs are backfilled: `log` moves time back now and then. However
/// late an event is, a finding is never last seen before it opened, an occurrence never
/// resolves before it opened, occurrences follow each other in time, and an incident never
/// closes before it opened (a late event is applied at its cluster's clock: ADR 0004).
#[test]
fn property_8_times_in_the_state_never_go_back() {
    assert_property("late events", 3_000, log(3, 80), |events| {
        let mut projections = tidemark_core::Projections::new();
        for (i, event) in events.iter().enumerate() {
            projections.apply(i as u64 + 1, event);
        }
        for view in projections.findings().views() {
            let name = format!("{}/{}", view.cluster, view.check_key);
            prop_assert!(
                view.opened_at <= view.last_seen_at,
                "{name}: last seen before opened"
            );
            let mut previous_end = None;
            for occurrence in &view.history {
                if let Some(end) = previous_end {
                    prop_assert!(
                        end <= occurrence.opened_at,
                        "{name}: occurrences overlap in time"
                    );
                }
                if let Some(resolved) = occurrence.resolved_at {
                    prop_assert!(
                        occurrence.opened_at <= resolved,
                        "{name}: resolved before opened"
                    );
                }
                previous_end = occurrence.resolved_at;
            }
        }
        for incident in projections.incidents().incidents() {
            if let Some(closed) = incident.closed_at {
                prop_assert!(
                    incident.opened_at <= closed,
                    "{}: closed before opened",
                    incident.id
                );
            }
        }
        Ok(())
    });
}
