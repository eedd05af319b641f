//! Each rule of `lifecycle.md` as a short story, checked against the real fold.

mod support;

use support::*;
use tidemark_core::event::SettingsChanged;
use tidemark_core::{Event, FindingState, FindingView, LogFold, ResolutionKind, Severity};

const C: &str = "pw-prod";

fn fold(events: &[Event]) -> LogFold {
    let mut fold = LogFold::new();
    for e in events {
        fold.apply(e);
    }
    fold
}

fn view(fold: &LogFold, key: &str) -> FindingView {
    fold.findings()
        .view(C, key)
        .unwrap_or_else(|| panic!("no finding {key}"))
}

/// `n` clean cycles of `category` after a cycle that saw `key`, at 5-minute steps.
fn seen_then_clean(t: u32, key: &str, category: &str, clean: usize) -> Vec<Event> {
    let mut events = vec![
        threshold("t", C, 0, t),
        cycle("seen", C, 60, &[category], vec![obs(key, category)]),
    ];
    for i in 0..clean {
        events.push(cycle(
            &format!("clean{i}"),
            C,
            60 + 300 * (i as i64 + 1),
            &[category],
            vec![],
        ));
    }
    events
}

#[test]
fn t2_resolves_in_the_third_clean_cycle_not_the_second() {
    let two = fold(&seen_then_clean(2, "k", "pods", 2));
    assert_eq!(view(&two, "k").state, FindingState::Active);
    assert_eq!(view(&two, "k").clean_cycles, Some(2));
    let three = fold(&seen_then_clean(2, "k", "pods", 3));
    let v = view(&three, "k");
    assert_eq!(
        (v.state, v.resolution_kind),
        (FindingState::Resolved, Some(ResolutionKind::Auto))
    );
    assert_eq!(v.history[0].resolved_seq, Some(5));
}

#[test]
fn t0_resolves_in_the_first_clean_cycle() {
    let v = view(&fold(&seen_then_clean(0, "k", "pods", 1)), "k");
    assert_eq!(v.state, FindingState::Resolved);
}

#[test]
fn cycles_that_do_not_run_the_category_do_not_count() {
    let mut events = seen_then_clean(1, "k", "pods", 1);
    for i in 0..5 {
        events.push(cycle(
            &format!("dns{i}"),
            C,
            5_000 + i,
            &["dns"],
            vec![obs("other", "dns")],
        ));
    }
    let v = view(&fold(&events), "k");
    assert_eq!((v.state, v.clean_cycles), (FindingState::Active, Some(1)));
}

#[test]
fn a_category_that_only_appears_through_a_finding_counts_as_run() {
    // `categories` lists only dns, but a pods finding makes pods run this cycle.
    let mut events = seen_then_clean(0, "k", "pods", 0);
    events.push(cycle("c", C, 900, &["dns"], vec![obs("other", "pods")]));
    assert_eq!(view(&fold(&events), "k").state, FindingState::Resolved);
}

#[test]
fn disabled_categories_are_ignored_and_never_resolve() {
    let mut events = seen_then_clean(0, "k", "admission_bypass", 0);
    events.push(settings(
        "s",
        C,
        100,
        SettingsChanged {
            enabled_categories: Some(Some(vec!["pods".into()])),
            ..Default::default()
        },
    ));
    events.push(cycle(
        "c1",
        C,
        200,
        &["pods", "admission_bypass"],
        vec![obs("new", "admission_bypass")],
    ));
    let f = fold(&events);
    // Structurally unreachable: still active, never swept; the new one never opened.
    assert_eq!(view(&f, "k").state, FindingState::Active);
    assert_eq!(view(&f, "k").clean_cycles, Some(0));
    assert!(f.findings().view(C, "new").is_none());
    // Re-enabling makes it reachable again, from that point of the log on.
    events.push(settings(
        "s2",
        C,
        300,
        SettingsChanged {
            enabled_categories: Some(None),
            ..Default::default()
        },
    ));
    events.push(cycle("c2", C, 400, &["admission_bypass"], vec![]));
    assert_eq!(view(&fold(&events), "k").state, FindingState::Resolved);
}

#[test]
fn settings_apply_from_their_point_of_the_log() {
    // T = 4 while it goes clean twice, then T = 1: the count so far (2) already meets it.
    let mut events = seen_then_clean(4, "k", "pods", 2);
    events.push(threshold("lower", C, 1_000, 1));
    let before = fold(&events);
    assert_eq!(view(&before, "k").state, FindingState::Active);
    events.push(cycle("next", C, 1_100, &["pods"], vec![]));
    assert_eq!(view(&fold(&events), "k").state, FindingState::Resolved);
}

#[test]
fn manual_resolve_closes_and_a_real_problem_opens_again() {
    let mut events = seen_then_clean(2, "k", "pods", 0);
    events.push(manual_resolve("m", C, 100, "k"));
    let v = view(&fold(&events), "k");
    assert_eq!(v.resolution_kind, Some(ResolutionKind::Manual));
    // Resolving again changes nothing.
    events.push(manual_resolve("m2", C, 110, "k"));
    assert_eq!(view(&fold(&events), "k").history, v.history);
    // The check still emits it: a new occurrence opens.
    events.push(cycle("again", C, 200, &["pods"], vec![obs("k", "pods")]));
    let v = view(&fold(&events), "k");
    assert_eq!((v.state, v.occurrences), (FindingState::Active, 2));
    assert_eq!(v.history[0].resolution_kind, Some(ResolutionKind::Manual));
    assert_eq!(v.opened_at, at(200));
}

#[test]
fn informational_findings_live_in_the_timeline_not_the_active_list() {
    let info = |key: &str| tidemark_core::event::FindingObservation {
        informational: true,
        ..obs(key, "admission_bypass")
    };
    let events = vec![cycle(
        "c1",
        C,
        0,
        &["admission_bypass"],
        vec![info("audit:1")],
    )];
    let f = fold(&events);
    let v = view(&f, "audit:1");
    assert_eq!(
        (v.state, v.resolution_kind),
        (FindingState::Resolved, Some(ResolutionKind::Informational))
    );
    assert_eq!(v.resolved_at, Some(at(0)));
    assert_eq!(f.findings().active_count(), 0);

    // Informational for an already active finding just refreshes it.
    let mut events = seen_then_clean(2, "k", "admission_bypass", 1);
    events.push(cycle("c", C, 900, &["admission_bypass"], vec![info("k")]));
    let v = view(&fold(&events), "k");
    assert_eq!(
        (v.state, v.clean_cycles, v.occurrences),
        (FindingState::Active, Some(0), 1)
    );
}

#[test]
fn a_key_listed_twice_counts_once_and_the_last_entry_wins() {
    let first = tidemark_core::event::FindingObservation {
        severity: Severity::Warning,
        ..obs("k", "pods")
    };
    let last = tidemark_core::event::FindingObservation {
        severity: Severity::Critical,
        informational: true,
        ..obs("k", "pods")
    };
    let f = fold(&[cycle(
        "c",
        C,
        0,
        &["pods"],
        vec![first.clone(), last.clone()],
    )]);
    let v = view(&f, "k");
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(v.resolution_kind, Some(ResolutionKind::Informational));
    let f = fold(&[cycle("c", C, 0, &["pods"], vec![last, first])]);
    assert_eq!(view(&f, "k").state, FindingState::Active);
}

#[test]
fn flapping_is_three_auto_resolutions_in_the_window_by_the_log_clock() {
    // Open, then resolve after one clean cycle (T = 0), four times, 10 minutes apart.
    let mut events = vec![threshold("t", C, 0, 0)];
    for i in 0..4i64 {
        let base = 600 * i;
        events.push(cycle(
            &format!("on{i}"),
            C,
            base + 60,
            &["pods"],
            vec![obs("flappy", "pods")],
        ));
        events.push(cycle(&format!("off{i}"), C, base + 360, &["pods"], vec![]));
        let v = view(&fold(&events), "flappy");
        assert_eq!(v.flapping, i >= 2, "after {} auto-resolutions", i + 1);
    }
    // A day later by the log's clock (any event of the cluster moves it): no longer flapping.
    events.push(note("later", C, 86_400 + 2_400));
    assert!(!view(&fold(&events), "flappy").flapping);
    // Another cluster's clock does not move this one's.
    let mut other = events[..events.len() - 1].to_vec();
    other.push(note("elsewhere", "edge", 10 * 86_400));
    assert!(view(&fold(&other), "flappy").flapping);
}

#[test]
fn manual_and_informational_resolutions_never_count_towards_flapping() {
    let mut events = vec![threshold("t", C, 0, 0)];
    for i in 0..5i64 {
        events.push(cycle(
            &format!("on{i}"),
            C,
            100 * i,
            &["pods"],
            vec![obs("k", "pods")],
        ));
        events.push(manual_resolve(&format!("m{i}"), C, 100 * i + 50, "k"));
    }
    let v = view(&fold(&events), "k");
    assert_eq!(v.occurrences, 5);
    assert!(!v.flapping);
}

#[test]
fn a_skewed_clock_never_moves_the_cluster_clock_back() {
    let mut events = seen_then_clean(2, "k", "pods", 0);
    events.push(note("late", C, -10_000));
    let f = fold(&events);
    assert_eq!(f.findings().clock(C), Some(at(60)));
}

#[test]
fn a_logged_flap_window_above_the_limit_folds_as_the_limit_and_says_so() {
    // A log written before the limit may hold a 40-day window (new input is refused): the fold
    // reads it as 30 days, and the event's line says so.
    const DAY: i64 = 86_400;
    let wide = settings(
        "wide",
        C,
        0,
        SettingsChanged {
            clean_cycles_to_resolve: Some(0),
            flap_window_secs: Some(40 * 86_400),
            flap_threshold: Some(0),
            ..Default::default()
        },
    );
    let mut events = vec![
        wide.clone(),
        cycle("on", C, 60, &["pods"], vec![obs("k", "pods")]),
        cycle("off", C, 360, &["pods"], vec![]),
    ];
    assert!(view(&fold(&events), "k").flapping, "one auto-resolution");
    let f = fold(&events);
    assert_eq!(
        f.findings().settings(C).flap_window_secs,
        tidemark_core::settings::MAX_FLAP_WINDOW_SECS
    );
    // 31 days later the auto-resolution is outside the 30-day window the fold reads.
    events.push(note("later", C, 31 * DAY));
    assert!(!view(&fold(&events), "k").flapping);
    assert_eq!(
        tidemark_core::describe::one_line(&wide),
        "settings changed; flap_window_secs 3456000 is above the limit of 2592000 and is read \
         as 2592000"
    );
}

/// A snapshot of a format written before the limit (read through its old layout by a replica
/// whose retention cut its log) may hold a 40-day window: restored, it is read as 30 days,
/// as the fold reads the event.
#[test]
fn a_restored_snapshot_holding_a_window_above_the_limit_reads_it_as_the_limit() {
    let events = vec![cycle("on", C, 60, &["pods"], vec![obs("k", "pods")])];
    let mut snapshot = fold(&events).findings().snapshot();
    let settings = snapshot.clusters[0].settings.to_mut();
    settings.flap_window_secs = 40 * 86_400;
    settings.span_retention_secs = 40 * 86_400;
    let restored = tidemark_core::FindingsProjection::restore(&snapshot);
    let settings = restored.settings(C);
    assert_eq!(
        (settings.flap_window_secs, settings.span_retention_secs),
        (
            tidemark_core::settings::MAX_FLAP_WINDOW_SECS,
            tidemark_core::settings::MAX_SPAN_RETENTION_SECS
        )
    );
}

#[test]
fn the_count_detector_keeps_auto_resolutions_of_thirty_days_at_most() {
    // A finding that opens and auto-resolves every hour for 100 days (2,400 auto-resolutions):
    // the count detector keeps those of the last 30 days only (the widest window allowed), and
    // still calls it flapping the same way.
    const HOUR: i64 = 3_600;
    let mut fold = LogFold::new();
    fold.apply(&settings(
        "s",
        C,
        0,
        SettingsChanged {
            clean_cycles_to_resolve: Some(0),
            flap_window_secs: Some(30 * 86_400),
            ..Default::default()
        },
    ));
    let mut most_kept = 0;
    for hour in 0..100 * 24i64 {
        let base = hour * HOUR;
        fold.apply(&cycle(
            &format!("on{hour}"),
            C,
            base + 60,
            &["pods"],
            vec![obs("k", "pods")],
        ));
        fold.apply(&cycle(
            &format!("off{hour}"),
            C,
            base + 120,
            &["pods"],
            vec![],
        ));
        most_kept = most_kept.max(fold.findings().auto_resolutions_kept());
    }
    assert_eq!(most_kept, 30 * 24, "a 30-day window of hourly resolutions");
    assert!(view(&fold, "k").flapping);
    // Restored from a snapshot, it keeps the same (rebuilt from the occurrences).
    let restored = LogFold::restore(&fold.snapshot());
    assert_eq!(restored.findings().auto_resolutions_kept(), 30 * 24);
    assert_eq!(view(&restored, "k"), view(&fold, "k"));
    // The clock moves on without the finding: everything is forgotten once 30 days old, and
    // nothing is left to count.
    fold.apply(&note("much-later", C, 131 * 86_400));
    assert_eq!(fold.findings().auto_resolutions_kept(), 0);
    assert!(!view(&fold, "k").flapping);
}
