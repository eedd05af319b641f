//! Maintenance windows (ADR 0007), each rule as a short story against the real fold: a covered
//! finding is recorded and marked, opens no automatic incident until its window ends, never
//! counts towards flapping; a window is never backdated; a cancel releases; a recurrence in
//! Alertmanager's `time_intervals` form; both settings. Then the property: a window never loses
//! an event (the same log with and without windows differs only in the marks, and with both
//! settings on, in no occurrence), and a fold with windows resumes exactly from a snapshot.

mod support;

use proptest::prelude::*;
use support::*;
use tidemark_core::event::{
    MaintenanceCancelled, MaintenanceMatchers, MaintenanceSchedule, MaintenanceScheduled,
    MaintenanceSpan, SettingsChanged,
};
use tidemark_core::maintenance::{TimeIntervalSpec, TimeRangeSpec};
use tidemark_core::{Event, FindingView, FoldSnapshot, LogFold, Payload, ResolutionKind};

const C: &str = "pw-prod";
/// Has a resource in namespace `dnd`: automatic incidents group it.
const DND: &str = "pod:crashloop:dnd/dnd-backend";
/// In namespace `media`.
const PLEX: &str = "pod:oom:media/plex";

fn fold(events: &[Event]) -> LogFold {
    let mut fold = LogFold::new();
    for e in events {
        fold.apply(e);
    }
    fold
}

fn dnd_obs() -> tidemark_core::event::FindingObservation {
    tidemark_core::event::FindingObservation {
        resource: Some(tidemark_core::event::ResourceRef {
            kind: "Pod".into(),
            namespace: Some("dnd".into()),
            name: "dnd-backend-7f9d4b8c6-xk2p9".into(),
            uid: None,
        }),
        ..obs(DND, "pods")
    }
}

fn plex_obs() -> tidemark_core::event::FindingObservation {
    tidemark_core::event::FindingObservation {
        resource: Some(tidemark_core::event::ResourceRef {
            kind: "Pod".into(),
            namespace: Some("media".into()),
            name: "plex-5d8f7c9b6-abc12".into(),
            uid: None,
        }),
        ..obs(PLEX, "pods")
    }
}

fn window(
    id: &str,
    secs: i64,
    name: &str,
    namespace: Option<&str>,
    schedule: MaintenanceSchedule,
) -> Event {
    event(
        id,
        C,
        secs,
        Payload::MaintenanceScheduled(MaintenanceScheduled {
            window: name.into(),
            by: "alice".into(),
            reason: "node pool upgrade".into(),
            matchers: MaintenanceMatchers {
                namespace: namespace.map(str::to_owned),
                ..MaintenanceMatchers::default()
            },
            schedule,
        }),
    )
}

fn once(from: i64, to: i64) -> MaintenanceSchedule {
    MaintenanceSchedule::Once(MaintenanceSpan {
        starts_at: at(from),
        ends_at: at(to),
    })
}

fn cancel(id: &str, secs: i64, name: &str) -> Event {
    event(
        id,
        C,
        secs,
        Payload::MaintenanceCancelled(MaintenanceCancelled {
            window: name.into(),
            by: "alice".into(),
            reason: Some("done early".into()),
        }),
    )
}

fn view(fold: &LogFold, key: &str) -> FindingView {
    fold.findings().view(C, key).expect("the finding")
}

fn incidents(fold: &LogFold) -> Vec<(String, Vec<String>, Vec<String>)> {
    let projection = fold.projections().incidents();
    projection
        .incidents()
        .iter()
        .map(|i| {
            (
                i.id.clone(),
                i.findings.iter().map(|f| f.check_key.clone()).collect(),
                projection
                    .timeline(i)
                    .iter()
                    .flat_map(|e| e.touches.iter().map(|t| t.change.clone()))
                    .collect(),
            )
        })
        .collect()
}

/// A finding that opens inside a window is recorded and marked, opens no automatic incident;
/// the first event after the window ends releases it, and the incident opens then, saying so.
#[test]
fn a_covered_finding_is_marked_and_its_incident_waits_for_the_window_to_end() {
    let events = vec![
        window("w", 0, "dnd-upgrade", Some("dnd"), once(100, 1_000)),
        cycle("c1", C, 200, &["pods"], vec![dnd_obs(), plex_obs()]),
        cycle("c2", C, 500, &["pods"], vec![dnd_obs(), plex_obs()]),
    ];
    let quiet = fold(&events);
    let dnd = view(&quiet, DND);
    assert_eq!(dnd.occurrences, 1, "recorded: nothing is dropped");
    let mark = dnd.in_maintenance.expect("marked");
    assert_eq!(mark.windows, vec!["dnd-upgrade".to_owned()]);
    assert_eq!(mark.since, Some(at(200)));
    assert_eq!(mark.reference, at(500));
    assert!(mark.incident_deferred);
    assert!(
        view(&quiet, PLEX).in_maintenance.is_none(),
        "other namespace"
    );
    let open = incidents(&quiet);
    assert_eq!(
        open.len(),
        1,
        "only media's finding opened an incident: {open:?}"
    );
    assert_eq!(open[0].1, vec![PLEX.to_owned()]);

    let mut later = events.clone();
    later.push(cycle(
        "c3",
        C,
        1_000,
        &["pods"],
        vec![dnd_obs(), plex_obs()],
    ));
    let released = fold(&later);
    assert!(view(&released, DND).in_maintenance.is_none());
    let all = incidents(&released);
    let dnd_incident = all
        .iter()
        .find(|(_, findings, _)| findings.contains(&DND.to_owned()))
        .expect("the window ended: dnd's finding is grouped now");
    assert!(
        dnd_incident.2.contains(&"maintenance_ended".to_owned()),
        "{dnd_incident:?}"
    );
}

/// A window takes effect from its position: scheduling one that started earlier marks nothing
/// that happened before it in the log, and holds back no incident already decided.
#[test]
fn a_window_is_never_backdated() {
    let events = vec![
        cycle("c1", C, 200, &["pods"], vec![dnd_obs()]),
        window("w", 300, "dnd-upgrade", Some("dnd"), once(0, 10_000)),
    ];
    let folded = fold(&events);
    assert_eq!(
        incidents(&folded).len(),
        1,
        "opened before the window was scheduled"
    );
    // Not touched since the window: covered at the clock, but with no time of its own yet.
    let mark = view(&folded, DND).in_maintenance.expect("covered now");
    assert_eq!(mark.since, None);
    assert!(!mark.incident_deferred);
}

/// Absence resolutions inside a window do not count towards flapping (by default); with
/// `maintenance_suppresses_flaps: false` they do; the occurrences are the same either way.
#[test]
fn resolutions_inside_a_window_do_not_count_towards_flapping() {
    let mut flapping = vec![threshold("t", C, 0, 0)];
    for i in 0..8 {
        let secs = 100 + i * 200;
        let seen = if i % 2 == 0 { vec![dnd_obs()] } else { vec![] };
        flapping.push(cycle(&format!("c{i}"), C, secs, &["pods"], seen));
    }
    let without = fold(&flapping);
    assert!(view(&without, DND).flapping, "the plain log flaps");

    let mut covered = vec![window("w", 1, "dnd-upgrade", Some("dnd"), once(0, 100_000))];
    covered.extend(flapping.iter().cloned());
    let quiet = fold(&covered);
    let quiet_view = view(&quiet, DND);
    assert!(!quiet_view.flapping && !quiet_view.flapping_state_change);
    assert_eq!(
        view(&without, DND).history.len(),
        quiet_view.history.len(),
        "every occurrence is recorded"
    );
    assert!(
        quiet_view
            .history
            .iter()
            .filter_map(|o| o.resolution_kind)
            .all(|k| k == ResolutionKind::Auto)
    );

    let mut counted = vec![settings(
        "s",
        C,
        0,
        SettingsChanged {
            maintenance_suppresses_flaps: Some(false),
            ..SettingsChanged::default()
        },
    )];
    counted.extend(covered.iter().cloned());
    assert!(view(&fold(&counted), DND).flapping);
}

/// With `maintenance_suppresses_incidents: false`, a covered finding opens its incident at once
/// (and is still marked).
#[test]
fn incidents_in_maintenance_are_a_setting() {
    let events = vec![
        settings(
            "s",
            C,
            0,
            SettingsChanged {
                maintenance_suppresses_incidents: Some(false),
                ..SettingsChanged::default()
            },
        ),
        window("w", 1, "dnd-upgrade", Some("dnd"), once(0, 10_000)),
        cycle("c1", C, 200, &["pods"], vec![dnd_obs()]),
    ];
    let folded = fold(&events);
    assert_eq!(incidents(&folded).len(), 1);
    let mark = view(&folded, DND).in_maintenance.expect("still marked");
    assert!(!mark.incident_deferred);
}

/// A cancel ends the window's effect: the next event releases what it held back.
#[test]
fn a_cancel_releases_what_the_window_held_back() {
    let events = vec![
        window("w", 0, "dnd-upgrade", Some("dnd"), once(0, 100_000)),
        cycle("c1", C, 200, &["pods"], vec![dnd_obs()]),
        cancel("x", 300, "dnd-upgrade"),
    ];
    let held = fold(&events[..2]);
    assert!(incidents(&held).is_empty());
    let cancelled = fold(&events);
    assert!(view(&cancelled, DND).in_maintenance.is_none());
    assert_eq!(incidents(&cancelled).len(), 1, "released at the cancel");
}

/// A recurring window in Alertmanager's form: open on the days and times it names only.
#[test]
fn a_recurring_window_covers_only_its_times() {
    // Day 0 (2026-03-02) is a monday; the window is 01:00 to 02:00 UTC on mondays.
    let nightly = MaintenanceSchedule::TimeIntervals(vec![TimeIntervalSpec {
        times: Some(vec![TimeRangeSpec {
            start_time: "01:00".into(),
            end_time: "02:00".into(),
        }]),
        weekdays: Some(vec!["monday".into()]),
        ..TimeIntervalSpec::default()
    }]);
    let inside = vec![
        window("w", 0, "nightly", None, nightly.clone()),
        cycle("c1", C, 3_600 + 60, &["pods"], vec![dnd_obs()]),
    ];
    assert!(view(&fold(&inside), DND).in_maintenance.is_some());
    let outside = vec![
        window("w", 0, "nightly", None, nightly),
        cycle("c1", C, 2 * 3_600, &["pods"], vec![dnd_obs()]),
    ];
    let folded = fold(&outside);
    assert!(
        view(&folded, DND).in_maintenance.is_none(),
        "02:00 is past the end"
    );
    assert_eq!(incidents(&folded).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The property

/// A maintenance event to insert: where (a fraction of the log), which cluster, and what.
#[derive(Clone, Debug)]
struct Insert {
    position: usize,
    cluster: usize,
    window: usize,
    action: u8,
    namespace: Option<usize>,
    from: i64,
    length: i64,
}

fn inserts() -> impl Strategy<Value = Vec<Insert>> {
    proptest::collection::vec(
        (
            any::<usize>(),
            0..2usize,
            0..2usize,
            0u8..4,
            proptest::option::of(0..2usize),
            -3_000i64..20_000,
            1i64..20_000,
        )
            .prop_map(
                |(position, cluster, window, action, namespace, from, length)| Insert {
                    position,
                    cluster,
                    window,
                    action,
                    namespace,
                    from,
                    length,
                },
            ),
        0..6,
    )
}

/// The log with maintenance events at the inserts' places, and the same log where each is a
/// cancel of a window never scheduled (a no-op that moves the clock the same way), so that
/// positions agree. Every cluster starts with `settings` of both maintenance settings.
fn with_and_without(
    events: &[Event],
    inserts: &[Insert],
    suppress: bool,
) -> (Vec<Event>, Vec<Event>) {
    let mut with: Vec<Event> = Vec::new();
    let mut without: Vec<Event> = Vec::new();
    for (i, cluster) in CLUSTERS.iter().enumerate() {
        let change = settings(
            &format!("ms{i}"),
            cluster,
            0,
            SettingsChanged {
                maintenance_suppresses_incidents: Some(suppress),
                maintenance_suppresses_flaps: Some(suppress),
                ..SettingsChanged::default()
            },
        );
        with.push(change.clone());
        without.push(change);
    }
    let mut places: Vec<(usize, &Insert)> = inserts
        .iter()
        .map(|insert| (insert.position % (events.len() + 1), insert))
        .collect();
    places.sort_by_key(|(place, _)| *place);
    let mut next = places.iter().peekable();
    for n in 0..=events.len() {
        while let Some((_, insert)) = next.next_if(|(place, _)| *place == n) {
            let id = format!("m{}-{}", n, with.len());
            // At the time of the event before it (its cluster's clock may be later: then the
            // fold applies it at the clock, as any late event).
            let secs = n.checked_sub(1).map_or(0, |p| {
                (events[p].time.unix_nanos() - at(0).unix_nanos()) / 1_000_000_000
            });
            let cluster = CLUSTERS[insert.cluster];
            let name = ["w-a", "w-b"][insert.window];
            let payload = if insert.action == 0 {
                Payload::MaintenanceCancelled(MaintenanceCancelled {
                    window: name.into(),
                    by: "alice".into(),
                    reason: None,
                })
            } else {
                let schedule = if insert.action == 3 {
                    MaintenanceSchedule::TimeIntervals(vec![TimeIntervalSpec {
                        times: Some(vec![TimeRangeSpec {
                            start_time: "00:20".into(),
                            end_time: "03:10".into(),
                        }]),
                        ..TimeIntervalSpec::default()
                    }])
                } else {
                    once(secs + insert.from, secs + insert.from + insert.length)
                };
                Payload::MaintenanceScheduled(MaintenanceScheduled {
                    window: name.into(),
                    by: "alice".into(),
                    reason: "test".into(),
                    matchers: MaintenanceMatchers {
                        namespace: insert.namespace.map(|i| ["dnd", "media"][i].to_owned()),
                        ..MaintenanceMatchers::default()
                    },
                    schedule,
                })
            };
            with.push(event(&id, cluster, secs, payload));
            without.push(event(
                &id,
                cluster,
                secs,
                Payload::MaintenanceCancelled(MaintenanceCancelled {
                    window: "never-scheduled".into(),
                    by: "alice".into(),
                    reason: None,
                }),
            ));
        }
        if let Some(event) = events.get(n) {
            with.push(event.clone());
            without.push(event.clone());
        }
    }
    (with, without)
}

fn unmarked(mut views: Vec<FindingView>) -> Vec<FindingView> {
    for view in &mut views {
        view.in_maintenance = None;
    }
    views
}

/// What a window must never change, whatever the settings: every finding's occurrences (when
/// they opened and closed, and how), its state and its latest facts.
fn recorded(
    views: &[FindingView],
) -> Vec<(String, String, Vec<tidemark_core::Occurrence>, String)> {
    views
        .iter()
        .map(|v| {
            (
                v.cluster.clone(),
                v.check_key.clone(),
                v.history.clone(),
                format!("{:?} {:?} {}", v.state, v.severity, v.title),
            )
        })
        .collect()
}

#[test]
fn property_a_window_never_loses_an_event() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The generated logs must exercise windows: cases in which a finding was marked, and cases
    // in which held-back incidents or flaps made the two logs differ.
    let marked = AtomicUsize::new(0);
    let differed = AtomicUsize::new(0);
    let strategy = (log(2, 60), inserts(), any::<bool>());
    assert_property(
        "a maintenance window never loses an event",
        800,
        strategy,
        |(events, inserts, suppress)| {
            let (with, without) = with_and_without(&events, &inserts, suppress);
            let folded_with = fold(&with);
            let folded_without = fold(&without);
            let views_with = folded_with.findings().views();
            let views_without = folded_without.findings().views();
            prop_assert_eq!(recorded(&views_with), recorded(&views_without));
            if views_with.iter().any(|v| v.in_maintenance.is_some()) {
                marked.fetch_add(1, Ordering::Relaxed);
            }
            if unmarked(views_with.clone()) != unmarked(views_without.clone())
                || incidents(&folded_with) != incidents(&folded_without)
            {
                differed.fetch_add(1, Ordering::Relaxed);
            }
            if !suppress {
                // Nothing held back: the two logs differ only in the marks.
                prop_assert_eq!(unmarked(views_with), unmarked(views_without.clone()));
                prop_assert_eq!(incidents(&folded_with), incidents(&folded_without));
            }
            prop_assert!(views_without.iter().all(|v| v.in_maintenance.is_none()));

            // A fold with windows resumes exactly from a snapshot at any point.
            let split = inserts.first().map_or(0, |i| i.position % (with.len() + 1));
            let whole = serde_json::to_vec(&folded_with.snapshot()).unwrap();
            let first = fold(&with[..split]);
            let restored: FoldSnapshot =
                serde_json::from_slice(&serde_json::to_vec(&first.snapshot()).unwrap()).unwrap();
            let mut resumed = LogFold::restore(&restored);
            for event in &with[split..] {
                resumed.apply(event);
            }
            prop_assert!(
                whole == serde_json::to_vec(&resumed.snapshot()).unwrap(),
                "split at {}: the resumed fold differs",
                split
            );
            Ok(())
        },
    );
    let (marked, differed) = (marked.into_inner(), differed.into_inner());
    eprintln!(
        "cases with a marked finding: {marked}; with held-back incidents or flaps: {differed}"
    );
    assert!(
        marked > 0 && differed > 0,
        "the generated logs never exercised a window"
    );
}

/// At most 1,000 windows are in effect in a cluster: one more is recorded but counted as
/// refused; windows already over do not count, even before any other event removed them.
#[test]
fn windows_over_the_limit_are_refused_and_counted_but_ended_ones_make_room() {
    let mut events: Vec<Event> = (0..1_000)
        .map(|i| window(&format!("w{i}"), 0, &format!("w{i}"), None, once(0, 100)))
        .collect();
    events.push(window("extra", 1, "extra", None, once(0, 10_000)));
    let full = fold(&events);
    let (windows, summary) = full.findings().maintenance_windows(C);
    assert_eq!((windows.len(), summary.refused_over_limit), (1_000, 1));
    // At 200 the first thousand are over: the next one is in effect.
    events.push(window("late", 200, "late", None, once(0, 10_000)));
    let (windows, summary) = fold(&events).findings().maintenance_windows(C);
    assert_eq!(summary.refused_over_limit, 1);
    assert_eq!(
        windows.iter().map(|w| w.name()).collect::<Vec<_>>(),
        ["late"],
        "the ended ones left, the late one is in effect"
    );
}

/// A window's name is at most 200 characters, in both events, as the schema says; the error
/// names the field and the limit.
#[test]
fn a_window_name_over_200_characters_is_refused() {
    let event = |kind: &str, name: &str| {
        let data = if kind == "maintenance.cancelled" {
            serde_json::json!({"window": name, "by": "alice"})
        } else {
            serde_json::json!({"window": name, "by": "alice", "reason": "r",
                "schedule": {"once": {"starts_at": "2026-03-02T14:00:00Z",
                    "ends_at": "2026-03-02T15:00:00Z"}}})
        };
        serde_json::json!({"id": "w", "schema": 1, "type": kind, "time": "2026-03-02T13:00:00Z",
            "source": "t", "cluster": "c", "data": data})
        .to_string()
    };
    for kind in ["maintenance.scheduled", "maintenance.cancelled"] {
        // 200 characters of two bytes each: within the limit, which counts characters.
        assert!(tidemark_core::decode_event(&event(kind, &"é".repeat(200))).is_ok());
        let error = tidemark_core::decode_event(&event(kind, &"é".repeat(201)))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("data.window") && error.contains("limit of 200"),
            "{error}"
        );
    }
}

/// An alert held back by a window that fires again (a later `startsAt`) in the event at which
/// no window covers it any more opened outside the window: its incident says `opened`.
#[test]
fn a_finding_that_reopens_as_its_window_ends_is_grouped_as_opened() {
    let events = vec![
        window("w", 0, "dnd-upgrade", Some("dnd"), once(0, 100)),
        alert_event(
            "a1",
            C,
            10,
            0,
            true,
            10,
            tidemark_core::Severity::Error,
            None,
        ),
        alert_event(
            "a2",
            C,
            150,
            0,
            true,
            140,
            tidemark_core::Severity::Error,
            None,
        ),
    ];
    let held = fold(&events[..2]);
    assert!(incidents(&held).is_empty(), "held back while covered");
    let all = incidents(&fold(&events));
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].2.contains(&"opened".to_owned()), "{all:?}");
    assert!(
        !all[0].2.contains(&"maintenance_ended".to_owned()),
        "{all:?}"
    );
}
