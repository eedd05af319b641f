//! Alerts as findings (ADR 0007), each rule as a short story against the real fold: the
//! lifecycle by `startsAt`, late re-sends, manual resolution, the count and state change flap
//! detectors on `source` resolutions and notifications, cycles that never sweep an alert, the
//! keys of older logs, and automatic incidents grouped by an alert's labels.

mod support;

use support::*;
use tidemark_core::event::SettingsChanged;
use tidemark_core::findings::alert_check_key;
use tidemark_core::{Event, FindingState, FindingView, LogFold, ResolutionKind, Severity};

const C: &str = "pw-prod";
/// `KubePodCrashLooping` of [`ALERTS`], in namespace `dnd`.
const CRASH: usize = 0;
/// `HighLatency` of [`ALERTS`]: names no resource.
const LATENCY: usize = 2;

fn fold(events: &[Event]) -> LogFold {
    let mut fold = LogFold::new();
    for e in events {
        fold.apply(e);
    }
    fold
}

fn key(alert: usize) -> String {
    let (name, fingerprint, _) = ALERTS[alert];
    alert_check_key(name, fingerprint)
}

fn view(fold: &LogFold, alert: usize) -> FindingView {
    fold.findings()
        .view(C, &key(alert))
        .unwrap_or_else(|| panic!("no finding for alert {alert}"))
}

fn fired(id: &str, secs: i64, alert: usize, starts: i64) -> Event {
    alert_event(id, C, secs, alert, true, starts, Severity::Error, None)
}

fn resolved(id: &str, secs: i64, alert: usize, starts: i64) -> Event {
    alert_event(id, C, secs, alert, false, starts, Severity::Error, None)
}

fn kinds(view: &FindingView) -> Vec<Option<ResolutionKind>> {
    view.history.iter().map(|o| o.resolution_kind).collect()
}

#[test]
fn a_fire_opens_a_resend_refreshes_and_a_resolve_resolves_source() {
    let mut events = vec![
        fired("f1", 100, CRASH, 90),
        alert_event(
            "f2",
            C,
            3_700,
            CRASH,
            true,
            90,
            Severity::Critical,
            Some("bruno restarts"),
        ),
    ];
    let v = view(&fold(&events), CRASH);
    assert_eq!(v.category, "alert");
    assert_eq!(
        v.occurrences, 1,
        "a re-send with the same startsAt opens nothing"
    );
    assert_eq!(v.severity, Severity::Critical, "refreshed by the re-send");
    assert_eq!(
        v.title, "bruno restarts",
        "the summary annotation is the title"
    );
    assert_eq!(v.state, FindingState::Active);
    events.push(resolved("r1", 4_000, CRASH, 90));
    let f = fold(&events);
    let v = view(&f, CRASH);
    assert_eq!(v.state, FindingState::Resolved);
    assert_eq!(kinds(&v), vec![Some(ResolutionKind::Source)]);
    assert_eq!(v.history[0].opened_at, at(100));
    assert_eq!(v.history[0].resolved_at, Some(at(4_000)));
    let facts = v.alert.expect("an alert's facts");
    assert_eq!(facts.name, "KubePodCrashLooping");
    assert_eq!(facts.starts_at, at(90));
    assert_eq!(facts.last_notified_at, at(4_000));
    assert_eq!((facts.notifications, facts.late_notifications), (3, 0));
    assert_eq!(facts.labels["pod"], "dnd-backend-7f9c");
}

#[test]
fn a_later_starts_at_resolves_the_open_occurrence_and_opens_a_new_one() {
    let f = fold(&[fired("f1", 100, CRASH, 90), fired("f2", 900, CRASH, 800)]);
    let v = view(&f, CRASH);
    assert_eq!(v.occurrences, 2);
    assert_eq!(kinds(&v), vec![Some(ResolutionKind::Source), None]);
    assert_eq!(v.history[0].resolved_at, Some(at(900)));
    assert_eq!(v.history[1].opened_at, at(900));
    assert_eq!(v.state, FindingState::Active);
}

#[test]
fn late_resends_and_late_resolves_change_nothing_but_are_counted() {
    let f = fold(&[
        fired("f1", 100, CRASH, 90),
        resolved("r1", 200, CRASH, 90),
        fired("f2", 900, CRASH, 800),
        // Both name the first occurrence's startsAt: late.
        fired("late-fire", 950, CRASH, 90),
        resolved("late-resolve", 960, CRASH, 90),
    ]);
    let v = view(&f, CRASH);
    assert_eq!(v.occurrences, 2);
    assert_eq!(
        v.state,
        FindingState::Active,
        "a late resolve resolves nothing"
    );
    let facts = v.alert.unwrap();
    assert_eq!(facts.late_notifications, 2);
    assert_eq!(facts.starts_at, at(800));
    assert_eq!(
        facts.last_notified_at,
        at(900),
        "late ones are not notifications of it"
    );
    // A resolve of an alert never seen firing makes no finding.
    let f = fold(&[resolved("r", 100, LATENCY, 90)]);
    assert!(f.findings().view(C, &key(LATENCY)).is_none());
}

#[test]
fn an_operator_resolves_an_alert_until_it_fires_again_with_a_later_starts_at() {
    let f = fold(&[
        fired("f1", 100, CRASH, 90),
        manual_resolve("m", C, 200, &key(CRASH)),
        fired("f2", 3_700, CRASH, 90),
    ]);
    let v = view(&f, CRASH);
    assert_eq!(kinds(&v), vec![Some(ResolutionKind::Manual)]);
    assert_eq!(
        v.state,
        FindingState::Resolved,
        "the same startsAt does not reopen"
    );
    let f = fold(&[
        fired("f1", 100, CRASH, 90),
        manual_resolve("m", C, 200, &key(CRASH)),
        fired("f2", 3_700, CRASH, 3_000),
    ]);
    let v = view(&f, CRASH);
    assert_eq!(kinds(&v), vec![Some(ResolutionKind::Manual), None]);
}

#[test]
fn source_resolutions_make_an_alert_flap_by_count() {
    // Threshold 2 (the default): a third resolution inside the window flaps.
    let mut events = vec![];
    for i in 0..3 {
        let t = 1_000 * (i + 1);
        events.push(fired(&format!("f{i}"), t, CRASH, t));
        events.push(resolved(&format!("r{i}"), t + 100, CRASH, t));
    }
    let f = fold(&events);
    let v = view(&f, CRASH);
    assert!(v.flapping, "three source resolutions in the window");
    let flaps = f.findings().flaps(Some(C));
    assert_eq!(flaps.len(), 1);
    assert_eq!(flaps[0].check_key, key(CRASH));
    // Two are not enough.
    let f = fold(&events[..4]);
    assert!(!view(&f, CRASH).flapping);
}

#[test]
fn the_state_change_detector_counts_each_notification_as_a_run() {
    // fire, resolve, fire, resolve...: every notification changes the state.
    let mut events = vec![settings(
        "s",
        C,
        0,
        SettingsChanged {
            flap_threshold: Some(1_000),
            ..SettingsChanged::default()
        },
    )];
    for i in 0..6 {
        let t = 1_000 * (i + 1);
        events.push(fired(&format!("f{i}"), t, CRASH, t));
        events.push(resolved(&format!("r{i}"), t + 100, CRASH, t));
    }
    let v = view(&fold(&events), CRASH);
    assert!(v.flapping_state_change, "{}", v.state_change_percent);
    assert!(
        !v.flapping,
        "the count detector's threshold is out of reach"
    );
    // The same alert re-sent while it stays firing changes nothing: no flapping.
    let mut events = vec![fired("f", 100, CRASH, 90)];
    for i in 0..12 {
        events.push(fired(&format!("again{i}"), 3_700 * (i + 1), CRASH, 90));
    }
    let v = view(&fold(&events), CRASH);
    assert_eq!(v.state_change_percent, 0.0);
}

#[test]
fn no_cycle_sweeps_an_alert_even_one_listing_the_category_alert() {
    let mut events = vec![threshold("t", C, 0, 0), fired("f1", 100, CRASH, 90)];
    for i in 0..5 {
        events.push(cycle(
            &format!("c{i}"),
            C,
            200 + 100 * i,
            &["alert"],
            vec![],
        ));
    }
    let v = view(&fold(&events), CRASH);
    assert_eq!(v.state, FindingState::Active);
    assert_eq!(v.clean_cycles, Some(0));
    // Cycles of other categories never make it unreachable, nor long-lived: `stuck` is about
    // what cycles sweep.
    let mut events = vec![fired("f1", 100, CRASH, 90)];
    for i in 0..5 {
        events.push(cycle(&format!("c{i}"), C, 200 + 100 * i, &["pods"], vec![]));
    }
    events.push(fired("f2", 30 * 86_400, CRASH, 90));
    let stuck = fold(&events).findings().stuck(None);
    assert!(
        stuck.unreachable.is_empty() && stuck.long_lived.is_empty(),
        "{stuck:?}"
    );
}

#[test]
fn an_older_logs_cycle_key_under_the_alert_prefix_folds_under_probe() {
    let f = fold(&[
        cycle(
            "c1",
            C,
            100,
            &["legacy"],
            vec![obs("alert:disk-full", "legacy")],
        ),
        manual_resolve("m", C, 200, "alert:disk-full"),
    ]);
    assert!(f.findings().view(C, "alert:disk-full").is_none());
    let v = f
        .findings()
        .view(C, "probe:alert:disk-full")
        .expect("folded under probe:");
    assert_eq!(kinds(&v), vec![Some(ResolutionKind::Manual)]);
    assert!(v.alert.is_none());
}

#[test]
fn alerts_of_one_namespace_open_one_automatic_incident() {
    let f = fold(&[
        fired("f1", 100, CRASH, 90),
        alert_event("f2", C, 120, CRASH, true, 90, Severity::Error, None),
    ]);
    let incidents = f.projections().incidents().views(f.findings(), None, true);
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert!(
        incidents[0]
            .findings
            .iter()
            .any(|x| x.check_key == key(CRASH))
    );
    // An alert that names no resource opens none.
    let f = fold(&[fired("f1", 100, LATENCY, 90)]);
    assert!(
        f.projections()
            .incidents()
            .views(f.findings(), None, true)
            .is_empty()
    );
}

#[test]
fn a_firing_alert_no_notification_names_goes_stale_and_is_never_resolved() {
    use tidemark_core::Timestamp;
    use tidemark_core::findings::{AlertStaleness, StaleReason};
    // The default threshold is 8 h (28,800 s). CRASH is notified once; LATENCY is re-sent.
    let mut events = vec![
        fired("f1", 100, CRASH, 90),
        fired("f2", 100, LATENCY, 90),
        fired("f3", 20_000, LATENCY, 90),
        // The cluster's clock moves on with a probe's cycle: 60 s past CRASH's threshold.
        cycle("c1", C, 28_960, &["pods"], vec![]),
    ];
    let f = fold(&events);
    let crash = view(&f, CRASH);
    assert_eq!(crash.state, FindingState::Active, "stale is never resolved");
    assert_eq!(
        crash.stale,
        Some(AlertStaleness {
            stale_since: at(28_900),
            stale_for_secs: 60,
            reference: at(28_960),
        }),
        "judged at the cluster's clock"
    );
    assert_eq!(
        view(&f, LATENCY).stale,
        None,
        "re-sent within the threshold"
    );
    let stuck = f.findings().stuck(None);
    assert_eq!(stuck.stale_alerts.len(), 1);
    let listed = &stuck.stale_alerts[0];
    assert_eq!(listed.check_key, key(CRASH));
    assert_eq!(listed.reason, StaleReason::AlertStale);
    assert_eq!(listed.last_notified_at, at(100));
    assert_eq!(listed.staleness.stale_for_secs, 60);
    assert!(
        stuck.unreachable.is_empty() && stuck.long_lived.is_empty(),
        "an alert is in no other list"
    );

    // Judged at a reader's clock instead: both are stale then, each for its own time.
    let (later, _) = f.findings().stuck_page(None, Some(at(100_000)), 10);
    let stale_for: Vec<(String, u64, Timestamp)> = later
        .stale_alerts
        .iter()
        .map(|a| {
            (
                a.check_key.clone(),
                a.staleness.stale_for_secs,
                a.staleness.reference,
            )
        })
        .collect();
    let mut expected = vec![
        (key(CRASH), 100_000 - 28_900, at(100_000)),
        (key(LATENCY), 100_000 - 48_800, at(100_000)),
    ];
    expected.sort();
    assert_eq!(stale_for, expected);

    // A notification makes it fresh; a resolved alert is never stale; the threshold is a
    // cluster setting from its position on.
    events.push(fired("f4", 29_000, CRASH, 90));
    events.push(resolved("r1", 29_010, LATENCY, 90));
    let f = fold(&events);
    assert_eq!(view(&f, CRASH).stale, None, "notified again");
    let (later, _) = f.findings().stuck_page(None, Some(at(1_000_000)), 10);
    assert_eq!(
        later
            .stale_alerts
            .iter()
            .map(|a| a.check_key.clone())
            .collect::<Vec<_>>(),
        vec![key(CRASH)],
        "the resolved alert is not stale, however late"
    );
    events.push(support::settings(
        "s1",
        C,
        29_100,
        SettingsChanged {
            alert_stale_after_secs: Some(60),
            ..SettingsChanged::default()
        },
    ));
    let v = view(&fold(&events), CRASH);
    assert_eq!(
        v.stale.map(|s| (s.stale_since, s.stale_for_secs)),
        Some((at(29_060), 40)),
        "a 60 s threshold at the clock of 29,100"
    );
}
