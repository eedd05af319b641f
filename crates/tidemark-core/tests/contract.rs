//! The JSON Schemas in `schemas/v1` and the decoder agree: every event one accepts, the other
//! accepts.
//!
//! An independent JSON Schema 2020-12 validator (the `jsonschema` crate, with format
//! assertion) judges mutations of every fixture event (blank and whitespace strings, nulls,
//! dropped and unknown fields, wrong types, time and enum spellings, integer edge values) and
//! the 167 events an outside validator found disagreeing (`tests/fixtures/
//! schema-disagreements.ndjson`), against `decode_event`. A disagreement fails the test unless
//! the decoder's answer is explained by a rule JSON Schema cannot state, listed in
//! `schemas/rules-beyond-json-schema.json` (which producers read too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tidemark_core::{EventType, decode_event};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// One validator per event type, from the committed schema files.
struct Schemas(BTreeMap<&'static str, jsonschema::Validator>);

impl Schemas {
    fn load() -> Self {
        let mut validators = BTreeMap::new();
        for &event_type in EventType::ALL {
            let path = repo(&format!("schemas/v1/{}.schema.json", event_type.as_str()));
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            validators.insert(event_type.as_str(), validator);
        }
        Self(validators)
    }

    /// Whether the schema of the event's `type` accepts it (an event whose `type` names no
    /// schema is refused, as no schema accepts it).
    fn accepts(&self, event: &Value) -> bool {
        event
            .get("type")
            .and_then(Value::as_str)
            .and_then(|t| self.0.get(t))
            .is_some_and(|validator| validator.is_valid(event))
    }
}

/// A rule the decoder enforces that JSON Schema 2020-12 cannot state.
#[derive(serde::Deserialize)]
struct BeyondSchema {
    id: String,
    rule: String,
    /// The decoder's error names it with one of these.
    decoder_error_contains: Vec<String>,
}

fn rules_beyond_schema() -> Vec<BeyondSchema> {
    #[derive(serde::Deserialize)]
    struct File {
        rules: Vec<BeyondSchema>,
    }
    let text = std::fs::read_to_string(repo("schemas/rules-beyond-json-schema.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    for rule in &file.rules {
        assert!(!rule.rule.trim().is_empty() && !rule.decoder_error_contains.is_empty());
    }
    file.rules
}

/// Why the decoder and the schema disagree on `event`, or `None` when they agree.
fn disagreement(
    schemas: &Schemas,
    rules: &[BeyondSchema],
    case: &str,
    event: &Value,
) -> Option<String> {
    let schema_accepts = schemas.accepts(event);
    let decoded = decode_event(&event.to_string());
    match (schema_accepts, &decoded) {
        (true, Ok(_)) | (false, Err(_)) => None,
        (false, Ok(_)) => Some(format!(
            "{case}: the schema refuses it, the decoder accepts it\n    {event}"
        )),
        (true, Err(error)) => {
            let message = error.to_string();
            if rules
                .iter()
                .any(|r| r.decoder_error_contains.iter().any(|m| message.contains(m)))
            {
                return None;
            }
            Some(format!(
                "{case}: the schema accepts it, the decoder refuses it ({message})\n    {event}"
            ))
        }
    }
}

const TIME_FIELDS: &[&str] = &["time", "starts_at", "ends_at", "start", "end"];

const TIME_SPELLINGS: &[&str] = &[
    "2026-03-02T14:05:00Z",
    "2026-03-02 14:05:00Z",
    "2026-03-02t14:05:00z",
    "2026-03-02T14:05:00+00:00",
    "2026-03-02T14:05:00-00:00",
    "2026-03-02T16:05:00+02:00",
    "2026-03-02T14:05:00+23:59",
    "2026-03-02T14:05:00+24:00",
    "2026-03-02T14:05:00.5Z",
    "2026-03-02T14:05:00.123456789Z",
    "2026-03-02T14:05:00.1234567891Z",
    "2026-03-02T14:05:00,5Z",
    "2026-03-02T14:05:00",
    "2026-03-02T14:05Z",
    "2026-03-02",
    "2026-03-02T23:59:60Z",
    "2026-12-31T23:59:60Z",
    "2026-02-29T14:05:00Z",
    "2028-02-29T14:05:00Z",
    "2026-03-02T24:00:00Z",
    " 2026-03-02T14:05:00Z",
    "2026-03-02T14:05:00Z ",
    "20260302T140500Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "1677-09-21T00:12:44Z",
    "1678-01-01T00:00:00Z",
    "2261-12-31T23:59:59Z",
    "2262-04-11T23:47:16Z",
    "2262-04-12T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
];

const BLANKS: &[&str] = &[
    "", " ", "\t", "\n", "\r\n", "\u{b}", "\u{c}", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}",
    "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}", "\u{feff}", "\u{200b}",
    "\u{180e}", " x ", "\u{0}",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "1.0",
    "2.5",
    "1e2",
    "100",
    "101",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-0",
];

/// The mutations of one fixture: `(what was mutated, the event)`.
fn mutations(name: &str, fixture: &Value) -> Vec<(String, Value)> {
    let mut out = vec![(format!("{name}: as is"), fixture.clone())];
    let mut paths = Vec::new();
    collect_paths(fixture, &mut Vec::new(), &mut paths);
    for path in paths {
        let label = path
            .iter()
            .map(|p| match p {
                Step::Key(k) => k.clone(),
                Step::Index(i) => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".");
        let current = get(fixture, &path).clone();
        let last_key = path.iter().rev().find_map(|p| match p {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        });
        let mut replace = |what: String, value: Value| {
            let mut event = fixture.clone();
            *get_mut(&mut event, &path) = value;
            out.push((format!("{name}: {label}={what}"), event));
        };
        replace("null".into(), Value::Null);
        match &current {
            Value::String(_) => {
                for blank in BLANKS {
                    replace(format!("{blank:?}"), json!(blank));
                }
                replace("a number".into(), json!(7));
                replace("an array".into(), json!(["x"]));
                if last_key.is_some_and(|k| TIME_FIELDS.contains(&k)) {
                    for spelling in TIME_SPELLINGS {
                        replace(format!("{spelling:?}"), json!(spelling));
                    }
                }
                for spelling in ["CRITICAL", "Critical", "fatal", "ok", "deploy", "manual"] {
                    replace(format!("{spelling:?}"), json!(spelling));
                }
            }
            Value::Number(_) => {
                for number in NUMBERS {
                    replace((*number).into(), serde_json::from_str(number).unwrap());
                }
                replace("a string".into(), json!("1"));
            }
            Value::Bool(_) => {
                replace("a string".into(), json!("true"));
                replace("a number".into(), json!(1));
            }
            Value::Array(items) => {
                replace("[]".into(), json!([]));
                replace("{}".into(), json!({}));
                for blank in ["", " ", "\t"] {
                    let mut with_blank = items.clone();
                    with_blank.push(json!(blank));
                    replace(format!("+[{blank:?}]"), Value::Array(with_blank));
                }
                replace("+[7]".into(), json!([7]));
            }
            Value::Object(map) => {
                replace("[]".into(), json!([]));
                let mut with_unknown = map.clone();
                with_unknown.insert("zz_unknown".into(), json!(1));
                replace("+zz_unknown".into(), Value::Object(with_unknown));
                // serde's derived structs take their fields as an array, in order.
                replace(
                    "positional array".into(),
                    Value::Array(map.values().cloned().collect()),
                );
                let mut with_number = map.clone();
                with_number.insert("zz_label".into(), json!(7));
                replace("+zz_label=7".into(), Value::Object(with_number));
            }
            Value::Null => {
                replace("\"x\"".into(), json!("x"));
                replace("\"\"".into(), json!(""));
                replace("\" \"".into(), json!(" "));
                replace("2026-03-02T14:05:00Z".into(), json!("2026-03-02T14:05:00Z"));
            }
        }
        if let Some(Step::Key(key)) = path.last() {
            let mut event = fixture.clone();
            let parent = get_mut(&mut event, &path[..path.len() - 1]);
            parent.as_object_mut().unwrap().remove(key);
            out.push((format!("{name}: drop {label}"), event));
        }
    }
    // Every other type name with this payload.
    for &other in EventType::ALL {
        let mut event = fixture.clone();
        event["type"] = json!(other.as_str());
        out.push((format!("{name}: type={}", other.as_str()), event));
    }
    // Settings that are valid alone and not together.
    if name == "settings.changed.json" {
        let mut event = fixture.clone();
        event["data"]["flap_start_percent"] = json!(20);
        event["data"]["flap_stop_percent"] = json!(30);
        out.push((
            format!("{name}: flap_stop_percent above flap_start_percent"),
            event,
        ));
    }
    // Optional fields the fixture leaves out, with blank and null values.
    for (field, values) in optional_fields(name) {
        for value in values {
            let mut event = fixture.clone();
            event["data"][field] = value.clone();
            out.push((format!("{name}: data.{field}={value}"), event));
        }
    }
    out
}

/// Optional `data` fields worth trying on each type even where its fixture omits them.
fn optional_fields(name: &str) -> Vec<(&'static str, Vec<Value>)> {
    let strings = || vec![json!(""), json!(" "), json!("x"), Value::Null];
    let lists = || {
        vec![
            json!([]),
            json!([""]),
            json!([" "]),
            json!(["x"]),
            Value::Null,
        ]
    };
    match name.trim_end_matches(".json") {
        "finding.resolved" => vec![
            ("recipe", strings()),
            ("by", strings()),
            ("reason", strings()),
            ("kind", vec![json!("recipe"), json!("manual")]),
        ],
        "settings.changed" => vec![
            (
                "flap_start_percent",
                vec![json!(0), json!(1), json!(20), json!(100), json!(101)],
            ),
            (
                "flap_stop_percent",
                vec![json!(0), json!(1), json!(20), json!(100), json!(101)],
            ),
            ("enabled_categories", lists()),
            ("orphan_consumer_kinds", lists()),
            ("unreachable_after_cycles", vec![json!(0), json!(1)]),
            ("orphan_confirm_scans", vec![json!(0), json!(1)]),
        ],
        "incident.opened" | "incident.updated" | "incident.closed" => vec![
            ("title", strings()),
            ("summary", strings()),
            ("check_keys", lists()),
        ],
        "change.deployed" => vec![
            ("check_keys", lists()),
            ("incident", strings()),
            ("link", strings()),
        ],
        "note.added" => vec![
            ("check_keys", lists()),
            ("incident", strings()),
            ("links", lists()),
        ],
        "span.recorded" => vec![("parent_span_id", strings()), ("end", strings())],
        _ => Vec::new(),
    }
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn collect_paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                out.push(prefix.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                collect_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get<'a>(value: &'a Value, path: &[Step]) -> &'a Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &v[k.as_str()],
        Step::Index(i) => &v[*i],
    })
}

fn get_mut<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn fixtures() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo("schemas/fixtures/v1")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, serde_json::from_str(&text).unwrap()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_schemas_and_the_decoder_agree_on_every_mutation_of_every_fixture() {
    let schemas = Schemas::load();
    let rules = rules_beyond_schema();
    let mut judged = 0;
    let mut both_refuse = 0;
    let mut disagreements = Vec::new();
    for (name, fixture) in fixtures() {
        for (case, event) in mutations(&name, &fixture) {
            judged += 1;
            both_refuse += usize::from(!schemas.accepts(&event));
            disagreements.extend(disagreement(&schemas, &rules, &case, &event));
        }
    }
    eprintln!("{judged} events judged, {both_refuse} refused by the schemas");
    assert!(judged > 2_000, "only {judged} mutations");
    assert!(
        disagreements.is_empty(),
        "{} of {judged} events judged differently by the schemas and the decoder:\n  {}",
        disagreements.len(),
        disagreements.join("\n  ")
    );
}

#[test]
fn the_schemas_and_the_decoder_agree_on_the_disagreements_found_outside() {
    let schemas = Schemas::load();
    let rules = rules_beyond_schema();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-disagreements.ndjson"),
    )
    .unwrap();
    let mut disagreements = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        let found: Value = serde_json::from_str(line).unwrap();
        let case = found["case"].as_str().unwrap();
        disagreements.extend(disagreement(&schemas, &rules, case, &found["event"]));
        count += 1;
    }
    assert_eq!(count, 167);
    assert!(
        disagreements.is_empty(),
        "{} of {count} still disagree:\n  {}",
        disagreements.len(),
        disagreements.join("\n  ")
    );
}

/// Each rule beyond JSON Schema is real: an event the schema accepts and the decoder refuses
/// with that rule's words exists among the mutations (a stale entry would excuse nothing, or
/// worse, excuse a real disagreement later).
#[test]
fn every_rule_beyond_json_schema_is_needed() {
    let schemas = Schemas::load();
    let rules = rules_beyond_schema();
    let mut used = vec![false; rules.len()];
    for (name, fixture) in fixtures() {
        for (_, event) in mutations(&name, &fixture) {
            if !schemas.accepts(&event) {
                continue;
            }
            if let Err(error) = decode_event(&event.to_string()) {
                let message = error.to_string();
                for (i, rule) in rules.iter().enumerate() {
                    if rule
                        .decoder_error_contains
                        .iter()
                        .any(|m| message.contains(m))
                    {
                        used[i] = true;
                    }
                }
            }
        }
    }
    let unused: Vec<_> = rules
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|(r, _)| r.id.as_str())
        .collect();
    assert!(unused.is_empty(), "rules no mutation needs: {unused:?}");
}

/// The schemas' "not blank" pattern is the decoder's whitespace, character by character, in an
/// independent regex engine.
#[test]
fn the_not_blank_pattern_is_the_decoders_whitespace() {
    let schema = json!({"type": "string", "pattern": tidemark_core::schema::NOT_BLANK_PATTERN});
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut checked = 0;
    for c in (0..=0xFFFFu32)
        .chain([0x1_F600, 0x10_FFFF])
        .filter_map(char::from_u32)
    {
        let text = c.to_string();
        assert_eq!(
            validator.is_valid(&json!(text)),
            !c.is_whitespace(),
            "U+{:04X}",
            c as u32
        );
        checked += 1;
    }
    assert!(checked > 60_000);
}
