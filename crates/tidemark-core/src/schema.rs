//! JSON Schema of every event type, generated from the Rust types.
//!
//! Each schema describes the whole envelope with `type` fixed to one value, so a producer can
//! validate an event of that type on its own. `schemas/` holds the generated files, and a test
//! fails when they drift from the code.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::event::{CURRENT_SCHEMA, EventType};

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
            "time": {"type": "string", "format": "date-time", "description": "when it happened, RFC 3339 with an offset or Z"},
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
    schema
}

/// Pretty-printed schema file contents for `event_type`, with a trailing newline.
pub fn event_schema_file(event_type: EventType) -> String {
    let mut text =
        serde_json::to_string_pretty(&event_schema(event_type)).expect("schemas always serialize");
    text.push('\n');
    text
}
