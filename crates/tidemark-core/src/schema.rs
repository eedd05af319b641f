//! JSON Schema of every event type, generated from the Rust types, and of the envelope for API
//! documents (`impl JsonSchema for Event`).
//!
//! Each schema describes the whole envelope with `type` fixed to one value, so a producer can
//! validate an event of that type on its own. `schemas/` holds the generated files, and a test
//! fails when they drift from the code.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::event::{CURRENT_SCHEMA, Event, EventType};
use crate::timestamp::Timestamp;

/// The envelope, for API documents: `data` is the type's payload, described per type in
/// `schemas/v1/` and by [`event_schema`].
impl JsonSchema for Event {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Event".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        schemars::json_schema!({
            "type": "object",
            "description": "An event in the wire format (docs/events.md).",
            "required": ["id", "schema", "type", "time", "source", "cluster", "data"],
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "schema": {"type": "integer", "minimum": 1},
                "type": {"type": "string", "enum": types},
                "time": generator.subschema_for::<Timestamp>(),
                "source": {"type": "string", "minLength": 1},
                "cluster": {"type": "string", "minLength": 1},
                "data": {"type": "object"}
            }
        })
    }
}

/// The JSON Schema (draft 2020-12) of events of `event_type`.
pub fn event_schema(event_type: EventType) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let data = event_type.data_schema(&mut generator);
    let definitions = generator.take_definitions(true);
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://tidemark.dev/schemas/v{CURRENT_SCHEMA}/{}.json", event_type.as_str()),
        "title": event_type.as_str(),
        "description": format!("A Tidemark `{}` event, schema version {CURRENT_SCHEMA}.", event_type.as_str()),
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "schema", "type", "time", "source", "cluster", "data"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "description": "producer-assigned unique id (a ULID is recommended); the dedupe key"},
            "schema": {"const": CURRENT_SCHEMA, "description": "envelope schema version"},
            "type": {"const": event_type.as_str()},
            "time": {"type": "string", "format": "date-time", "pattern": crate::timestamp::TIME_PATTERN, "description": "when it happened, RFC 3339 with an offset or Z, years 1678 to 2261"},
            "source": {"type": "string", "minLength": 1, "description": "who emitted it"},
            "cluster": {"type": "string", "minLength": 1, "description": "the scope it belongs to"},
            "data": data.to_value(),
            "seq": {"description": "added by the store on read; ignored on input"},
            "recorded_at": {"description": "added by the store on read; ignored on input"}
        }
    });
    if !definitions.is_empty() {
        schema["$defs"] = Value::Object(definitions);
    }
    if let Some(rule) = type_rule(event_type) {
        schema["properties"]["data"] =
            json!({"allOf": [schema["properties"]["data"].take(), rule]});
    }
    require_not_blank(&mut schema);
    bound_integers(&mut schema);
    schema
}

/// schemars marks unsigned integers with `format: uint32` / `uint64`, which validators do not
/// check: the maximum states the range the decoder takes.
fn bound_integers(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let maximum = match map.get("format").and_then(Value::as_str) {
                Some("uint32") => Some(json!(u32::MAX)),
                Some("uint64") => Some(json!(u64::MAX)),
                _ => None,
            };
            if let Some(maximum) = maximum {
                map.entry("maximum").or_insert(maximum);
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// Rules of one event type beyond its payload's type (several types share a payload type).
fn type_rule(event_type: EventType) -> Option<Value> {
    match event_type {
        EventType::IncidentOpened => Some(json!({
            "required": ["title"],
            "properties": {"title": {"type": "string", "minLength": 1}}
        })),
        EventType::FindingResolved => Some(json!({
            "if": {"required": ["kind"], "properties": {"kind": {"const": "recipe"}}},
            "then": {
                "required": ["recipe"],
                "properties": {"recipe": {"type": "string", "minLength": 1}}
            }
        })),
        _ => None,
    }
}

/// The decoder's "must not be empty" means "holds something besides whitespace" (Rust's
/// `char::is_whitespace`, what `str::trim` strips): every string the schemas give a
/// `minLength` of 1 gets the pattern that says so.
fn require_not_blank(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.get("minLength") == Some(&json!(1)) {
                map.insert("pattern".into(), json!(NOT_BLANK_PATTERN));
            }
            map.values_mut().for_each(require_not_blank);
        }
        Value::Array(items) => items.iter_mut().for_each(require_not_blank),
        _ => {}
    }
}

/// A character that is not whitespace by Rust's `char::is_whitespace` (Unicode White_Space),
/// spelled as an explicit class so that every regex dialect (ECMA-262's `\s` differs on
/// U+0085 and U+FEFF) reads it the same.
pub const NOT_BLANK_PATTERN: &str =
    "[^\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// Pretty-printed schema file contents for `event_type`, with a trailing newline.
pub fn event_schema_file(event_type: EventType) -> String {
    let mut text =
        serde_json::to_string_pretty(&event_schema(event_type)).expect("schemas always serialize");
    text.push('\n');
    text
}
