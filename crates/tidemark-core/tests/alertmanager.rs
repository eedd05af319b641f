//! The Alertmanager webhook bridge: payloads in, events out, every event valid on the wire.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use tidemark_core::alertmanager::{
    BridgeConfig, WebhookError, derived_name, label_fingerprint, map_severity, translate,
    translate_each, truncated_alerts,
};
use tidemark_core::event::Alert;
use tidemark_core::{Event, EventType, Payload, Severity, Timestamp, decode_event, encode_event};

fn config() -> BridgeConfig {
    BridgeConfig {
        default_cluster: "homelab".into(),
        cluster_label: "cluster".into(),
        source: "alertmanager".into(),
        resend_bucket_secs: 3_600,
    }
}

/// When the bridge received the webhooks of these tests (an hour's bucket starts at it).
fn received() -> Timestamp {
    ts("2026-03-02T14:05:00Z")
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// A webhook as Alertmanager v0.27 sends it: seed 001's crash loop firing in `bruno`, and an
/// earlier memory alert of the same group resolved.
fn payload() -> Value {
    json!({
        "receiver": "tidemark",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "AgentBrunoPodCrashLooping",
                    "namespace": "bruno",
                    "pod": "agent-bruno-7d9f8c6b5-x2k4p",
                    "severity": "critical",
                    "component": "agent-bruno",
                    "cluster": "studio"
                },
                "annotations": {
                    "summary": "Agent Bruno pod is crash looping",
                    "runbook_url": "https://runbooks.example/agent-bruno/pod-crash-loop"
                },
                "startsAt": "2026-03-02T14:03:53.112Z",
                "endsAt": "2026-03-02T14:08:53.112Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28kube_pod_container_status_restarts_total%5B5m%5D%29+%3E+0",
                "fingerprint": "c4b2a1f0e9d8c7b6"
            },
            {
                "status": "resolved",
                "labels": {
                    "alertname": "AgentBrunoHighMemory",
                    "namespace": "bruno",
                    "severity": "Warning"
                },
                "annotations": { "summary": "memory above 90%" },
                "startsAt": "2026-03-02T13:40:00+01:00",
                "endsAt": "2026-03-02T13:10:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": "9a8b7c6d5e4f3a2b"
            }
        ],
        "groupLabels": { "namespace": "bruno" },
        "commonLabels": { "namespace": "bruno", "cluster": "pw-prod" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": "{}/{namespace=\"bruno\"}:{namespace=\"bruno\"}",
        "truncatedAlerts": 0
    })
}

fn run(body: &Value) -> Result<Vec<Event>, WebhookError> {
    translate(body.to_string().as_bytes(), &config(), received())
}

fn alert(event: &Event) -> &Alert {
    match &event.payload {
        Payload::AlertFired(a) | Payload::AlertResolved(a) => a,
        other => panic!("not an alert: {other:?}"),
    }
}

/// Every event survives the wire: encoded and decoded with validation, it is unchanged.
fn assert_wire_valid(events: &[Event]) {
    for event in events {
        let line = encode_event(event);
        let back = decode_event(&line).unwrap_or_else(|e| panic!("{line}\n{e}"));
        assert_eq!(&back, event, "{line}");
    }
}

fn error_text(body: &[u8]) -> String {
    translate(body, &config(), received())
        .unwrap_err()
        .to_string()
}

#[test]
fn firing_and_resolved_alerts_become_two_events() {
    let events = run(&payload()).unwrap();
    assert_wire_valid(&events);
    assert_eq!(events.len(), 2);

    let fired = &events[0];
    assert_eq!(fired.event_type(), EventType::AlertFired);
    assert_eq!(fired.cluster, "studio");
    assert_eq!(fired.source, "alertmanager");
    assert_eq!(
        fired.time,
        received(),
        "a firing alert's time is when it was received"
    );
    let a = alert(fired);
    assert_eq!(a.name, "AgentBrunoPodCrashLooping");
    assert_eq!(a.fingerprint, "c4b2a1f0e9d8c7b6");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.starts_at, ts("2026-03-02T14:03:53.112Z"));
    assert_eq!(a.ends_at, None, "a firing alert's future endsAt is ignored");
    assert_eq!(a.labels["namespace"], "bruno");
    assert_eq!(a.labels.len(), 6);
    assert_eq!(
        a.annotations["runbook_url"],
        "https://runbooks.example/agent-bruno/pod-crash-loop"
    );
    assert!(fired.id.as_str().starts_with("am-"));
    assert_eq!(fired.id.as_str().len(), 3 + 16);

    let resolved = &events[1];
    assert_eq!(resolved.event_type(), EventType::AlertResolved);
    assert_eq!(resolved.cluster, "pw-prod", "from commonLabels");
    assert_eq!(resolved.time, ts("2026-03-02T13:10:00Z"), "time is endsAt");
    let r = alert(resolved);
    assert_eq!(r.name, "AgentBrunoHighMemory");
    assert_eq!(r.severity, Severity::Warning);
    assert_eq!(r.starts_at, ts("2026-03-02T12:40:00Z"));
    assert_eq!(r.ends_at, Some(ts("2026-03-02T13:10:00Z")));
    assert_eq!(r.annotations["summary"], "memory above 90%");
    assert_ne!(fired.id, resolved.id);
}

#[test]
fn ids_are_deterministic_and_keyed_by_fingerprint_status_and_start() {
    let base = run(&payload()).unwrap();
    // Re-sent: the same bytes, and the same alert re-serialized (key order, offsets, precision).
    assert_eq!(run(&payload()).unwrap(), base);
    let mut reformatted = payload();
    reformatted["alerts"][0]["startsAt"] = json!("2026-03-02T15:03:53.112000+01:00");
    reformatted["alerts"][0]["endsAt"] = json!("2026-03-02T19:00:00Z");
    reformatted["alerts"][0]["annotations"]["summary"] = json!("reworded");
    let pretty = serde_json::to_vec_pretty(&reformatted).unwrap();
    let again = translate(&pretty, &config(), received()).unwrap();
    assert_eq!(again[0].id, base[0].id);
    assert_eq!(again[1].id, base[1].id);

    let id_with = |path: (&str, Value)| {
        let mut body = payload();
        body["alerts"][0][path.0] = path.1;
        run(&body).unwrap()[0].id.clone()
    };
    let cases = [
        ("status", json!("resolved")),
        ("startsAt", json!("2026-03-02T14:03:54.112Z")),
        ("fingerprint", json!("c4b2a1f0e9d8c7b7")),
    ];
    for (field, value) in cases {
        assert_ne!(
            id_with((field, value.clone())),
            base[0].id,
            "{field} = {value} must change the id"
        );
    }
    // Labels and endsAt are not part of the identity.
    let mut body = payload();
    body["alerts"][0]["labels"]["pod"] = json!("agent-bruno-other");
    assert_eq!(run(&body).unwrap()[0].id, base[0].id);
}

#[test]
fn cluster_comes_from_the_alert_then_common_labels_then_the_default() {
    // (alert label, common label, expected cluster)
    let table = [
        (Some("studio"), Some("pw-prod"), "studio"),
        (None, Some("pw-prod"), "pw-prod"),
        (Some("  "), Some("pw-prod"), "pw-prod"),
        (None, None, "homelab"),
        (Some(""), Some(""), "homelab"),
    ];
    for (own, common, expected) in table {
        let mut body = payload();
        let labels = body["alerts"][0]["labels"].as_object_mut().unwrap();
        labels.remove("cluster");
        if let Some(c) = own {
            labels.insert("cluster".into(), json!(c));
        }
        let commons = body["commonLabels"].as_object_mut().unwrap();
        commons.remove("cluster");
        if let Some(c) = common {
            commons.insert("cluster".into(), json!(c));
        }
        let events = run(&body).unwrap();
        assert_wire_valid(&events);
        assert_eq!(events[0].cluster, expected, "{own:?} / {common:?}");
    }

    // A different cluster label.
    let mut body = payload();
    body["alerts"][0]["labels"]["k8s_cluster"] = json!("edge-1");
    let cfg = BridgeConfig {
        cluster_label: "k8s_cluster".into(),
        ..config()
    };
    let events = translate(body.to_string().as_bytes(), &cfg, received()).unwrap();
    assert_eq!(events[0].cluster, "edge-1");
    assert_eq!(events[1].cluster, "homelab");

    // No cluster anywhere and no default: the error names the label.
    let cfg = BridgeConfig {
        default_cluster: String::new(),
        ..cfg
    };
    let err = translate(body.to_string().as_bytes(), &cfg, received()).unwrap_err();
    assert!(
        err.to_string().contains("alerts[1].labels.k8s_cluster"),
        "{err}"
    );
}

#[test]
fn severity_mapping_table() {
    let table = [
        (Some("critical"), Severity::Critical),
        (Some("CRITICAL"), Severity::Critical),
        (Some("page"), Severity::Critical),
        (Some("P1"), Severity::Critical),
        (Some("error"), Severity::Error),
        (Some("High"), Severity::Error),
        (Some("major"), Severity::Error),
        (Some("warning"), Severity::Warning),
        (Some("warn"), Severity::Warning),
        (Some("medium"), Severity::Warning),
        (Some("info"), Severity::Info),
        (Some(" None "), Severity::Info),
        (Some("low"), Severity::Info),
        (Some("p2"), Severity::Warning),
        (Some(""), Severity::Warning),
        (None, Severity::Warning),
    ];
    for (label, expected) in table {
        assert_eq!(map_severity(label), expected, "{label:?}");
        let mut body = payload();
        let labels = body["alerts"][0]["labels"].as_object_mut().unwrap();
        labels.remove("severity");
        if let Some(s) = label {
            labels.insert("severity".into(), json!(s));
        }
        assert_eq!(
            alert(&run(&body).unwrap()[0]).severity,
            expected,
            "{label:?}"
        );
    }
}

#[test]
fn a_missing_fingerprint_is_computed_like_alertmanager() {
    // Prometheus common/model's own test vectors for labelSetToFingerprint.
    assert_eq!(label_fingerprint(&BTreeMap::new()), "cbf29ce484222325");
    let labels = BTreeMap::from([
        ("name".to_owned(), "garland, briggs".to_owned()),
        ("fear".to_owned(), "love is not enough".to_owned()),
    ]);
    assert_eq!(
        label_fingerprint(&labels),
        format!("{:016x}", 5_799_056_148_416_392_346_u64)
    );

    let mut body = payload();
    body["alerts"][0]
        .as_object_mut()
        .unwrap()
        .remove("fingerprint");
    body["alerts"][1]["fingerprint"] = json!("");
    let events = run(&body).unwrap();
    assert_wire_valid(&events);
    for (i, event) in events.iter().enumerate() {
        let a = alert(event);
        assert_eq!(a.fingerprint, label_fingerprint(&a.labels), "alert {i}");
    }
    assert_ne!(events[0].id, run(&payload()).unwrap()[0].id);
    assert_eq!(run(&body).unwrap(), events);
}

#[test]
fn an_alert_without_a_name_gets_one_derived_from_its_fingerprint() {
    // Alertmanager accepts alerts without `alertname` (its API only wants some label).
    let mut body = payload();
    body["alerts"][1]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("alertname");
    body["alerts"][0]["labels"]["alertname"] = json!(" ");
    let events = run(&body).unwrap();
    assert_wire_valid(&events);
    assert_eq!(alert(&events[0]).name, "unnamed-c4b2a1f0e9d8c7b6");
    assert_eq!(alert(&events[1]).name, "unnamed-9a8b7c6d5e4f3a2b");
    assert_eq!(alert(&events[1]).name, derived_name("9a8b7c6d5e4f3a2b"));
    assert!(
        !alert(&events[1]).labels.contains_key("alertname"),
        "the labels are kept as they came"
    );
    // Without a fingerprint, from the labels: the same labels, the same name.
    body["alerts"][1]
        .as_object_mut()
        .unwrap()
        .remove("fingerprint");
    let labels: BTreeMap<String, String> =
        serde_json::from_value(body["alerts"][1]["labels"].clone()).unwrap();
    let events = run(&body).unwrap();
    assert_eq!(
        alert(&events[1]).name,
        format!("unnamed-{}", label_fingerprint(&labels))
    );
    assert_eq!(run(&body).unwrap(), events, "deterministic");
    let text = body.to_string();
    let each = translate_each(text.as_bytes(), &config(), received()).unwrap();
    let derived: Vec<bool> = each
        .iter()
        .map(|a| a.result.as_ref().unwrap().name_derived)
        .collect();
    assert_eq!(derived, vec![true, true]);
    assert_eq!(
        each[1].result.as_ref().unwrap().name,
        alert(&events[1]).name
    );
}

#[test]
fn each_alert_is_translated_on_its_own_with_its_bytes_as_received() {
    // A good alert, one Alertmanager passes on with a start before 1678 (its API takes it), a
    // good one: the bad one fails alone, with a path relative to the alert.
    let text = r#"{"version":"4","commonLabels":{},"alerts":[
        {"status":"firing","labels":{"alertname":"A","cluster":"c"},"startsAt":"2026-03-02T14:00:00Z"},
        {"status":"firing", "labels":{"alertname":"Old"},"startsAt":"1500-01-01T00:00:00Z"},
        {"status":"firing","labels":{"alertname":"B"},"startsAt":"2026-03-02T14:00:00Z"}]}"#;
    let each = translate_each(text.as_bytes(), &config(), received()).unwrap();
    assert_eq!(each.len(), 3);
    assert!(each[0].result.is_ok() && each[2].result.is_ok());
    assert_eq!(each[1].index, 1);
    assert_eq!(
        each[1].raw,
        r#"{"status":"firing", "labels":{"alertname":"Old"},"startsAt":"1500-01-01T00:00:00Z"}"#,
        "the alert's own bytes, spacing and all"
    );
    let error = each[1].result.as_ref().unwrap_err().to_string();
    assert!(
        error.starts_with("field `alert.startsAt`: ") && error.contains("1678"),
        "{error}"
    );
    // The same alert elsewhere in a payload gives the same reason; all-or-nothing names its place.
    let moved = text.replace(
        r#"{"status":"firing","labels":{"alertname":"A","cluster":"c"},"startsAt":"2026-03-02T14:00:00Z"},"#,
        "",
    );
    let each_moved = translate_each(moved.as_bytes(), &config(), received()).unwrap();
    assert_eq!(
        each_moved[0].result.as_ref().unwrap_err().to_string(),
        error
    );
    let whole = translate(text.as_bytes(), &config(), received())
        .unwrap_err()
        .to_string();
    assert!(whole.starts_with("field `alerts[1].startsAt`: "), "{whole}");
    // Not an alert object at all.
    let each = translate_each(br#"{"version":"4","alerts":[7]}"#, &config(), received()).unwrap();
    assert_eq!(each[0].raw, "7");
    assert_eq!(
        each[0].result.as_ref().unwrap_err().to_string(),
        "field `alert`: expected an alert object, found a number"
    );
    // A repeated `alerts` key: the last one counts, and its alerts are re-serialized.
    let each = translate_each(
        br#"{"version":"4","alerts":[1,2],"alerts":[ 3 ]}"#,
        &config(),
        received(),
    )
    .unwrap();
    assert_eq!((each.len(), each[0].raw.as_ref()), (1, "3"));
}

#[test]
fn empty_alerts_give_no_events() {
    let mut body = payload();
    body["alerts"] = json!([]);
    assert_eq!(run(&body).unwrap(), vec![]);
}

#[test]
fn errors_name_the_path_and_what_was_expected() {
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = payload();
        edit(&mut body);
        error_text(body.to_string().as_bytes())
    };
    let cases: Vec<(String, &[&str])> = vec![
        (error_text(b"{\"version\": \"4\", "), &["not valid JSON"]),
        (error_text(b"\xff\xfe"), &["not valid JSON"]),
        (error_text(b"[1, 2]"), &["JSON object", "an array"]),
        (
            with(&|b| b["version"] = json!("3")),
            &["version \"3\"", "`version`", "expected \"4\""],
        ),
        (
            with(&|b| b["version"] = json!(4)),
            &["version 4", "expected \"4\""],
        ),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("version");
            }),
            &["`version`", "missing"],
        ),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("alerts");
            }),
            &["`alerts`", "missing", "array"],
        ),
        (
            with(&|b| b["alerts"] = json!({})),
            &["`alerts`", "an array", "found an object"],
        ),
        (
            with(&|b| b["alerts"][1] = json!("alert")),
            &["`alerts[1]`", "found a string"],
        ),
        (
            with(&|b| b["alerts"][1]["labels"]["severity"] = json!(3)),
            &["`alerts[1].labels.severity`", "a string", "a number"],
        ),
        (
            with(&|b| b["alerts"][0]["annotations"] = json!(["x"])),
            &["`alerts[0].annotations`", "object of strings"],
        ),
        (
            with(&|b| b["commonLabels"]["team"] = json!(null)),
            &["`commonLabels.team`", "a string", "null"],
        ),
        (
            with(&|b| b["alerts"][1]["startsAt"] = json!("yesterday")),
            &["`alerts[1].startsAt`", "RFC 3339", "\"yesterday\""],
        ),
        (
            with(&|b| {
                b["alerts"][0].as_object_mut().unwrap().remove("startsAt");
            }),
            &["`alerts[0].startsAt`", "missing", "RFC 3339"],
        ),
        (
            with(&|b| b["alerts"][1]["endsAt"] = json!("0001-01-01T00:00:00Z")),
            &["`alerts[1].endsAt`", "resolved alert ended"],
        ),
        (
            with(&|b| b["alerts"][1]["endsAt"] = json!("2026-13-01T00:00:00Z")),
            &["`alerts[1].endsAt`", "RFC 3339"],
        ),
        (
            with(&|b| b["alerts"][0]["status"] = json!("pending")),
            &[
                "`alerts[0].status`",
                "\"firing\" or \"resolved\"",
                "\"pending\"",
            ],
        ),
        (
            with(&|b| b["alerts"][0]["fingerprint"] = json!(42)),
            &["`alerts[0].fingerprint`", "a string", "a number"],
        ),
    ];
    for (message, needles) in cases {
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }

    // A firing alert's endsAt is not read at all, even when it is garbage.
    let mut body = payload();
    body["alerts"][0]["endsAt"] = json!("0001-01-01T00:00:00Z");
    assert!(run(&body).is_ok());
    body["alerts"][0]["endsAt"] = json!(17);
    assert!(run(&body).is_ok());
}

#[test]
fn errors_are_typed() {
    let mut body = payload();
    body["version"] = json!("3");
    assert_eq!(
        run(&body).unwrap_err(),
        WebhookError::UnsupportedVersion {
            found: "\"3\"".into()
        }
    );
    let mut body = payload();
    body["alerts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"status": "firing", "labels": {"alertname": "X"}, "startsAt": "soon"}));
    assert!(matches!(
        run(&body).unwrap_err(),
        WebhookError::BadTime { path, .. } if path == "alerts[2].startsAt"
    ));
    let cfg = BridgeConfig {
        source: " ".into(),
        ..config()
    };
    assert!(matches!(
        translate(payload().to_string().as_bytes(), &cfg, received()),
        Err(WebhookError::Config(_))
    ));
    let cfg = BridgeConfig {
        resend_bucket_secs: 0,
        ..config()
    };
    assert!(matches!(
        translate(payload().to_string().as_bytes(), &cfg, received()),
        Err(WebhookError::Config(_))
    ));
}

/// ADR 0007: a firing alert re-sent within one bucket of receive time is stored once; each
/// new bucket stores it again, stamped with when it arrived; a resolution is stored once
/// whenever it comes.
#[test]
fn a_firing_alerts_resends_reach_the_log_once_per_bucket() {
    let body = payload().to_string();
    let at = |text: &str| translate(body.as_bytes(), &config(), ts(text)).unwrap();
    let first = at("2026-03-02T14:05:00Z");
    let retried = at("2026-03-02T14:59:59.999Z");
    let next_bucket = at("2026-03-02T15:00:00Z");
    let repeat_interval = at("2026-03-02T18:05:00Z");
    assert_eq!(first[0].id, retried[0].id, "the same hour: a duplicate");
    assert_eq!(retried[0].time, ts("2026-03-02T14:59:59.999Z"));
    assert_ne!(first[0].id, next_bucket[0].id);
    assert_ne!(next_bucket[0].id, repeat_interval[0].id);
    assert_eq!(repeat_interval[0].time, ts("2026-03-02T18:05:00Z"));
    assert_eq!(
        alert(&repeat_interval[0]).starts_at,
        alert(&first[0]).starts_at
    );
    // The resolved alert of the payload: one id, its time its endsAt, whenever received.
    assert_eq!(first[1].id, repeat_interval[1].id);
    assert_eq!(first[1].time, repeat_interval[1].time);
    // A bucket of a minute tells 14:05:00 from 14:05:59.9 apart from 14:06:00.
    let minute = BridgeConfig {
        resend_bucket_secs: 60,
        ..config()
    };
    let by_minute = |text: &str| {
        translate(body.as_bytes(), &minute, ts(text)).unwrap()[0]
            .id
            .clone()
    };
    assert_eq!(
        by_minute("2026-03-02T14:05:00Z"),
        by_minute("2026-03-02T14:05:59.9Z")
    );
    assert_ne!(
        by_minute("2026-03-02T14:05:59.9Z"),
        by_minute("2026-03-02T14:06:00Z")
    );
}

// ---------------------------------------------------------------------------------------------
// Property: never panics, every produced event is wire-valid, ids depend only on the identity.

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings that matter to the bridge, and some that do not.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("4".to_owned()),
        Just("firing".to_owned()),
        Just("resolved".to_owned()),
        Just("".to_owned()),
        Just(" ".to_owned()),
        Just("AgentBrunoPodCrashLooping".to_owned()),
        Just("critical".to_owned()),
        Just("0001-01-01T00:00:00Z".to_owned()),
        Just("2026-03-02T14:03:53Z".to_owned()),
        Just("2026-03-02T14:03:53.5+02:00".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("2026-02-30T00:00:00Z".to_owned()),
        "[a-z|]{1,6}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("cluster".to_owned()),
        Just("alertname".to_owned()),
        Just("severity".to_owned()),
        "[a-z]{1,4}",
    ]
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(0.85, s)
}

fn labels() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => proptest::collection::btree_map(key(), text(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect())),
        1 => any_json(),
    ]
}

/// Mostly a good value from a small pool (so alerts of one payload share identities), rarely
/// anything at all.
fn mostly(good: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        60 => proptest::sample::select(good).prop_map(|s| Some(Value::from(s))),
        1 => Just(None),
        1 => text().prop_map(|s| Some(Value::from(s))),
        1 => any_json().prop_map(Some),
    ]
}

const TIMES: &[&str] = &[
    "2026-03-02T14:03:53Z",
    "2026-03-02T16:03:53+02:00",
    "2026-03-02T14:03:53.250Z",
    "2026-03-02T14:10:00Z",
    "1999-12-31T23:59:59.999999999Z",
];

fn good_labels() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            40 => proptest::sample::select(&["AgentBrunoPodCrashLooping", "KubePodNotReady", "x|y"][..]),
            1 => Just(" "),
        ],
        proptest::option::of(proptest::sample::select(
            &["critical", "P1", "high", "warn", "low", "none", "bogus", ""][..],
        )),
        proptest::option::of(proptest::sample::select(&["studio", "pw-prod", "", " "][..])),
        proptest::collection::btree_map("[a-z]{1,4}", text(), 0..3),
    )
        .prop_map(|(name, severity, cluster, extra)| {
            let mut labels: serde_json::Map<String, Value> =
                extra.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
            labels.insert("alertname".into(), name.into());
            if let Some(s) = severity {
                labels.insert("severity".into(), s.into());
            }
            if let Some(c) = cluster {
                labels.insert("cluster".into(), c.into());
            }
            Value::Object(labels)
        })
}

fn alert_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => (
            mostly(&["firing", "resolved"]),
            prop_oneof![40 => good_labels().prop_map(Some), 1 => maybe(labels())],
            prop_oneof![40 => Just(Some(json!({"summary": "s"}))), 1 => maybe(labels())],
            mostly(TIMES),
            mostly(TIMES),
            prop_oneof![
                20 => proptest::sample::select(&["c4b2a1f0e9d8c7b6", "9a8b", "a|b"][..])
                    .prop_map(|f| Some(Value::from(f))),
                6 => Just(None),
                3 => Just(Some(Value::from(""))),
                1 => any_json().prop_map(Some),
            ],
        )
            .prop_map(|(status, labels, annotations, starts, ends, fingerprint)| {
                let mut alert = serde_json::Map::new();
                let fields = [
                    ("status", status),
                    ("labels", labels),
                    ("annotations", annotations),
                    ("startsAt", starts),
                    ("endsAt", ends),
                    ("fingerprint", fingerprint),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        alert.insert(k.to_owned(), v);
                    }
                }
                Value::Object(alert)
            }),
        1 => any_json(),
    ]
}

/// Mostly webhook-shaped payloads, sometimes anything.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let shaped = (
        prop_oneof![20 => Just(Some(json!("4"))), 1 => Just(None), 1 => any_json().prop_map(Some)],
        prop_oneof![
            20 => Just(Some(json!({"cluster": "common"}))),
            5 => Just(None),
            1 => maybe(labels()),
        ],
        proptest::option::weighted(
            0.95,
            prop_oneof![
                12 => proptest::collection::vec(alert_value(), 0..6).prop_map(Value::Array),
                1 => any_json(),
            ],
        ),
    )
        .prop_map(|(version, common, alerts)| {
            let mut body = serde_json::Map::new();
            for (k, v) in [
                ("version", version),
                ("commonLabels", common),
                ("alerts", alerts),
            ] {
                if let Some(v) = v {
                    body.insert(k.to_owned(), v);
                }
            }
            serde_json::to_vec(&Value::Object(body)).unwrap()
        });
    prop_oneof![
        12 => shaped,
        2 => any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

#[test]
fn translation_never_panics_and_ids_are_deterministic() {
    support::assert_property("alertmanager translate", 600, body(), |body| {
        let cfg = config();
        let first = translate(&body, &cfg, received());
        prop_assert_eq!(
            &translate(&body, &cfg, received()),
            &first,
            "translation is deterministic"
        );
        // Alert by alert: the payload fails as a whole exactly when `translate` fails on it
        // with a payload-level error; else `translate` is the alerts' events, or the first
        // alert's error placed in the payload.
        let each = translate_each(&body, &cfg, received());
        match (&first, &each) {
            (Err(whole), Err(each_error)) => prop_assert_eq!(whole, each_error),
            (Ok(events), Ok(each)) => {
                let each_events: Vec<&Event> = each
                    .iter()
                    .map(|a| &a.result.as_ref().unwrap().event)
                    .collect();
                prop_assert_eq!(events.iter().collect::<Vec<_>>(), each_events);
            }
            (Err(whole), Ok(each)) => {
                let failed = each.iter().find(|a| a.result.is_err());
                prop_assert!(failed.is_some(), "{}", whole);
                let failed = failed.unwrap();
                let text = failed.result.as_ref().unwrap_err().to_string();
                prop_assert!(text.contains("`alert"), "{}", text);
                prop_assert!(
                    whole
                        .to_string()
                        .contains(&format!("`alerts[{}]", failed.index)),
                    "{} vs {}",
                    whole,
                    text
                );
            }
            (Ok(_), Err(e)) => prop_assert!(false, "translate_each failed alone: {}", e),
        }
        let Ok(events) = first else {
            return Ok(());
        };
        let alerts = serde_json::from_slice::<Value>(&body).unwrap()["alerts"]
            .as_array()
            .map_or(0, Vec::len);
        prop_assert_eq!(events.len(), alerts);
        for event in &events {
            let a = alert(event);
            let named = a.labels.get("alertname").filter(|n| !n.trim().is_empty());
            match named {
                Some(name) => prop_assert_eq!(&a.name, name),
                None => prop_assert_eq!(&a.name, &derived_name(&a.fingerprint)),
            }
            let line = encode_event(event);
            let back = decode_event(&line);
            prop_assert!(back.is_ok(), "{} does not decode: {:?}", line, back);
            prop_assert_eq!(&back.unwrap(), event);
            let a = alert(event);
            match (&event.payload, a.ends_at) {
                (Payload::AlertFired(_), None) => prop_assert_eq!(event.time, received()),
                (Payload::AlertResolved(_), Some(end)) => prop_assert_eq!(event.time, end),
                _ => prop_assert!(false, "ends_at must match the type: {:?}", event),
            }
        }
        // The id is a function of (fingerprint, type, starts_at), and tells them apart.
        for x in &events {
            for y in &events {
                let same_identity = (
                    alert(x).fingerprint.as_str(),
                    x.event_type(),
                    alert(x).starts_at,
                ) == (
                    alert(y).fingerprint.as_str(),
                    y.event_type(),
                    alert(y).starts_at,
                );
                prop_assert_eq!(x.id == y.id, same_identity, "{:?} vs {:?}", x, y);
            }
        }
        Ok(())
    });
}

/// `truncatedAlerts`: how many alerts Alertmanager left out (0 when absent or not a count).
#[test]
fn truncated_alerts_are_read_from_the_payload() {
    let mut body = payload();
    assert_eq!(truncated_alerts(body.to_string().as_bytes()), 0);
    body["truncatedAlerts"] = json!(12);
    assert_eq!(truncated_alerts(body.to_string().as_bytes()), 12);
    body["truncatedAlerts"] = json!("many");
    assert_eq!(truncated_alerts(body.to_string().as_bytes()), 0);
    assert_eq!(truncated_alerts(b"not json"), 0);
}
