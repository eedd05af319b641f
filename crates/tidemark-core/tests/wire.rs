//! Decoding errors name the line, the event id and the field, and say what was expected.

use tidemark_core::event::{Payload, SettingsChanged};
use tidemark_core::{
    Contract, DecodeProblem, decode_event, decode_event_under, decode_ndjson_line, encode_event,
};

const GOOD: &str = r#"{"id":"e1","schema":1,"type":"cycle.completed","time":"2026-03-02T14:03:53Z","source":"probe","cluster":"c1","data":{"cycle":"c-1","categories":["pods"],"findings":[{"check_key":"k1","category":"pods","severity":"error","title":"t"}]}}"#;

fn error_of(json: &str) -> String {
    decode_event(json).unwrap_err().to_string()
}

fn with(field: &str, value: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    let pointer = format!("/{}", field.replace('.', "/"));
    *v.pointer_mut(&pointer).unwrap() = serde_json::from_str(value).unwrap();
    v.to_string()
}

fn without(field: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    v.as_object_mut().unwrap().remove(field);
    v.to_string()
}

#[test]
fn good_event_decodes() {
    let event = decode_event(GOOD).unwrap();
    assert_eq!(event.id.as_str(), "e1");
    let Payload::CycleCompleted(cycle) = &event.payload else {
        panic!()
    };
    assert_eq!(cycle.findings[0].check_key, "k1");
    assert!(!cycle.findings[0].informational);
}

#[test]
fn unknown_type_is_named_with_the_known_ones() {
    let msg = error_of(&with("type", r#""cycle.finished""#));
    assert!(msg.contains(r#"event "e1""#), "{msg}");
    assert!(msg.contains("field `type`"), "{msg}");
    assert!(
        msg.contains(r#"unknown event type "cycle.finished""#),
        "{msg}"
    );
    assert!(msg.contains("cycle.completed"), "{msg}");
}

#[test]
fn missing_envelope_field_is_named() {
    for field in ["schema", "type", "time", "source", "cluster", "data"] {
        let msg = error_of(&without(field));
        assert!(
            msg.contains(&format!("field `{field}`: missing required field")),
            "{msg}"
        );
        assert!(msg.contains(r#"event "e1""#), "{msg}");
    }
    let msg = error_of(&without("id"));
    assert!(
        msg.contains("without a readable id") && msg.contains("field `id`"),
        "{msg}"
    );
}

#[test]
fn wrong_typed_field_says_what_was_expected() {
    let msg = error_of(&with("source", "42"));
    assert!(
        msg.contains("field `source`: expected a string, found a number"),
        "{msg}"
    );
    let bad = GOOD.replace(r#""title":"t""#, r#""title":"t","informational":"yes""#);
    let msg = error_of(&bad);
    assert!(
        msg.contains("field `data.findings[0].informational`"),
        "{msg}"
    );
    assert!(msg.contains("expected a boolean"), "{msg}");
}

#[test]
fn missing_data_field_names_its_parent() {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    v["data"]["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("title");
    let msg = error_of(&v.to_string());
    assert!(
        msg.contains("field `data.findings[0]`: missing field `title`"),
        "{msg}"
    );
}

#[test]
fn bad_time_is_explained() {
    let msg = error_of(&with("time", r#""2026-03-02 14:03""#));
    assert!(
        msg.contains("field `time`: expected an RFC 3339 time"),
        "{msg}"
    );
    assert!(msg.contains("2026-03-02 14:03"), "{msg}");
}

#[test]
fn empty_identity_fields_are_refused() {
    assert!(error_of(&with("cluster", r#""""#)).contains("field `cluster`: must not be empty"));
    assert!(error_of(&with("source", r#""  ""#)).contains("field `source`: must not be empty"));
    let msg = error_of(&with("data.findings.0.check_key", r#""""#));
    assert!(
        msg.contains("field `data.findings[0].check_key`: must not be empty"),
        "{msg}"
    );
}

#[test]
fn unknown_severity_lists_the_known_ones() {
    let msg = error_of(&with("data.findings.0.severity", r#""fatal""#));
    assert!(msg.contains("field `data.findings[0].severity`"), "{msg}");
    assert!(msg.contains("unknown variant `fatal`"), "{msg}");
    assert!(msg.contains("`critical`"), "{msg}");
}

#[test]
fn unknown_fields_are_refused_not_dropped() {
    let bad = GOOD.replace(r#""title":"t""#, r#""title":"t","informationl":true"#);
    let msg = error_of(&bad);
    assert!(msg.contains("unknown field `informationl`"), "{msg}");
    let bad = GOOD.replace(r#""schema":1"#, r#""schema":1,"tenant":"x""#);
    let msg = error_of(&bad);
    assert!(
        msg.contains("unknown field `tenant`") && msg.contains(r#"event "e1""#),
        "{msg}"
    );
}

#[test]
fn store_added_fields_are_accepted_on_input() {
    let exported = GOOD.replace(
        r#""schema":1"#,
        r#""schema":1,"seq":7,"recorded_at":"2026-03-02T14:03:54Z""#,
    );
    assert_eq!(
        decode_event(&exported).unwrap(),
        decode_event(GOOD).unwrap()
    );
}

#[test]
fn future_schema_says_to_upgrade() {
    let msg = error_of(&with("schema", "2"));
    assert!(
        msg.contains("unsupported schema version 2") && msg.contains("upgrade"),
        "{msg}"
    );
}

#[test]
fn syntax_errors_and_non_objects() {
    assert!(matches!(
        decode_event("{\"id\":").unwrap_err().problem,
        DecodeProblem::Syntax(_)
    ));
    assert_eq!(
        decode_event("[1,2]").unwrap_err().problem,
        DecodeProblem::NotAnObject
    );
    let err = decode_ndjson_line(17, "not json").unwrap().unwrap_err();
    assert!(err.to_string().starts_with("line 17: "), "{err}");
    assert!(decode_ndjson_line(3, "   ").is_none());
}

#[test]
fn recipe_resolution_must_name_the_recipe() {
    let ev = r#"{"id":"r1","schema":1,"type":"finding.resolved","time":"2026-03-02T14:03:53Z","source":"doctor","cluster":"c1","data":{"check_key":"k","kind":"recipe"}}"#;
    let msg = error_of(ev);
    assert!(
        msg.contains("field `data.recipe`: required when kind is \"recipe\""),
        "{msg}"
    );
}

#[test]
fn settings_distinguish_absent_null_and_list() {
    let base = r#"{"id":"s1","schema":1,"type":"settings.changed","time":"2026-03-02T14:03:53Z","source":"ui","cluster":"c1","data":DATA}"#;
    let decode = |data: &str| {
        let event = decode_event(&base.replace("DATA", data)).unwrap();
        let Payload::SettingsChanged(s) = event.payload.clone() else {
            panic!()
        };
        (s, encode_event(&event))
    };
    let (absent, json) = decode(r#"{"clean_cycles_to_resolve":3}"#);
    assert_eq!(
        absent,
        SettingsChanged {
            clean_cycles_to_resolve: Some(3),
            ..Default::default()
        }
    );
    assert!(
        json.contains(r#""data":{"clean_cycles_to_resolve":3}"#),
        "{json}"
    );
    let (null, json) = decode(r#"{"enabled_categories":null}"#);
    assert_eq!(null.enabled_categories, Some(None));
    assert!(
        json.contains(r#""data":{"enabled_categories":null}"#),
        "{json}"
    );
    let (list, _) = decode(r#"{"enabled_categories":["pods"]}"#);
    assert_eq!(list.enabled_categories, Some(Some(vec!["pods".to_owned()])));
}

#[test]
fn offsets_are_normalised_to_utc() {
    let event = decode_event(&with("time", r#""2026-03-02T16:03:53+02:00""#)).unwrap();
    assert!(encode_event(&event).contains(r#""time":"2026-03-02T14:03:53Z""#));
}

/// `Deserialize for Event` (JSON read through serde, e.g. an event inside a larger document) is
/// the wire decoder on the text as sent: one parse, the same answers as `decode_event`, also for
/// text a JSON tree would have changed before the decoder saw it (a repeated key, which a tree
/// keeps only the last of).
#[test]
fn serde_json_reads_events_with_the_wire_decoder_on_the_text_as_sent() {
    let event: tidemark_core::Event = serde_json::from_str(GOOD).unwrap();
    assert_eq!(event, decode_event(GOOD).unwrap());

    let repeated = GOOD.replacen(
        r#""source":"probe","#,
        r#""source":"probe","source":"other","#,
        1,
    );
    let direct = decode_event(&repeated).unwrap_err().to_string();
    assert!(direct.contains("duplicate field `source`"), "{direct}");
    let through_serde = serde_json::from_str::<tidemark_core::Event>(&repeated)
        .expect_err("a repeated key is refused, as decode_event refuses it");
    assert!(
        through_serde
            .to_string()
            .contains("duplicate field `source`"),
        "{through_serde}"
    );

    let bad_field = with("data.findings", r#"[{"check_key":"k1"}]"#);
    let through_serde = serde_json::from_str::<tidemark_core::Event>(&bad_field).unwrap_err();
    assert!(
        through_serde
            .to_string()
            .starts_with(&decode_event(&bad_field).unwrap_err().to_string()),
        "{through_serde}"
    );
}

#[test]
fn a_flap_window_above_thirty_days_is_refused_naming_the_limit() {
    let event = |window: u64| {
        format!(
            r#"{{"id":"s1","schema":1,"type":"settings.changed","time":"2026-03-02T14:03:53Z","source":"ui","cluster":"c1","data":{{"flap_window_secs":{window}}}}}"#
        )
    };
    assert!(decode_event(&event(2_592_000)).is_ok());
    let msg = error_of(&event(2_592_001));
    assert!(
        msg.contains(
            "field `data.flap_window_secs`: 2592001 is above the limit of 2592000 seconds (30 days)"
        ),
        "{msg}"
    );
    // A record of a log an earlier version accepted is still read (the fold reads it as the
    // limit); every other rule still holds for it.
    let logged = decode_event_under(&event(2_592_001), Contract::Logged).unwrap();
    let Payload::SettingsChanged(change) = logged.payload else {
        panic!()
    };
    assert_eq!(change.flap_window_secs, Some(2_592_001));
    let bad_percent = event(2_592_001).replace("}}", r#","flap_start_percent":0}}"#);
    assert!(decode_event_under(&bad_percent, Contract::Logged).is_err());
}

#[test]
fn a_span_retention_above_thirty_days_is_refused_naming_the_limit() {
    let event = |retention: u64| {
        format!(
            r#"{{"id":"s1","schema":1,"type":"settings.changed","time":"2026-03-02T14:03:53Z","source":"ui","cluster":"c1","data":{{"span_retention_secs":{retention}}}}}"#
        )
    };
    let Payload::SettingsChanged(change) = decode_event(&event(2_592_000)).unwrap().payload else {
        panic!()
    };
    assert_eq!(change.span_retention_secs, Some(2_592_000));
    let msg = error_of(&event(2_592_001));
    assert!(
        msg.contains("field `data.span_retention_secs`: 2592001 is above the limit of 2592000 seconds (30 days)"),
        "{msg}"
    );
    // No log holds a larger one (the field is new): refused from logs too.
    assert!(decode_event_under(&event(2_592_001), Contract::Logged).is_err());
}

#[test]
fn a_cycle_observation_keyed_like_an_alert_is_refused_and_the_schema_agrees() {
    let event = |key: &str| {
        format!(
            r#"{{"id":"c1","schema":1,"type":"cycle.completed","time":"2026-03-02T14:03:53Z","source":"probe","cluster":"c1","data":{{"cycle":"k","categories":["pods"],"findings":[{{"check_key":"{key}","category":"pods","severity":"error","title":"t"}}]}}}}"#
        )
    };
    // Reserved for alerts (ADR 0007): `alert:` starts the key of every alert.
    let msg = error_of(&event("alert:KubePodCrashLooping:5b1531d93a0a490e"));
    assert!(
        msg.contains("field `data.findings[0].check_key`: keys starting with \"alert:\" are reserved for alerts"),
        "{msg}"
    );
    // Elsewhere in the key, or in another case, it is an ordinary key.
    for fine in ["pods:alert:x", "Alert:x", "alert", "alerts:x"] {
        assert!(decode_event(&event(fine)).is_ok(), "{fine}");
    }
    // A record of a log an earlier version accepted is still read.
    assert!(decode_event_under(&event("alert:x"), Contract::Logged).is_ok());
    // The JSON Schema says the same.
    let schema: serde_json::Value = serde_json::from_str(
        &tidemark_core::schema::event_schema_file(tidemark_core::EventType::CycleCompleted),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (key, valid) in [
        ("alert:x", false),
        ("pods:alert:x", true),
        ("Alert:x", true),
    ] {
        let instance: serde_json::Value = serde_json::from_str(&event(key)).unwrap();
        assert_eq!(validator.is_valid(&instance), valid, "{key}");
    }
}
