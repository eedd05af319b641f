//! What the document does to the generated schemas as a whole: events typed per event type
//! (from `tidemark_core::schema`, the schemas producers validate against), and enums written as
//! a plain `enum` that client generators read.

use serde_json::{Map, Value, json};
use tidemark_core::EventType;
use tidemark_core::schema::event_schema;

/// The component name of the events of one type: `cycle.completed` → `CycleCompletedEvent`.
fn event_component(event_type: EventType) -> String {
    let mut name: String = event_type
        .as_str()
        .split(['.', '_'])
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    name.push_str("Event");
    name
}

/// `Event` becomes one of the event types' envelopes, told apart by `type`: each envelope is
/// `tidemark_core::schema::event_schema` of its type (the schema of `schemas/v1/`, what a
/// producer validates against), its definitions moved into the components as `Wire` + their
/// name. (The API's own components describe the same Rust types as the API writes them, which
/// may differ: a field the wire form may leave out is always written.) Two event types
/// defining one name differently panic, which the document's tests catch.
pub(super) fn type_events(components: &mut Map<String, Value>) {
    let mut alternatives = Vec::new();
    let mut mapping = Map::new();
    for &event_type in EventType::ALL {
        let mut schema = event_schema(event_type);
        let object = schema
            .as_object_mut()
            .expect("an event schema is an object");
        object.remove("$schema");
        object.remove("$id");
        let definitions = object.remove("$defs");
        move_references(&mut schema);
        if let Some(Value::Object(definitions)) = definitions {
            for (name, mut definition) in definitions {
                move_references(&mut definition);
                let name = format!("{WIRE_PREFIX}{name}");
                match components.get(&name) {
                    Some(existing) if *existing != definition => panic!(
                        "the event schemas define {name} twice, differently: {definition} vs {existing}"
                    ),
                    Some(_) => {}
                    None => {
                        components.insert(name, definition);
                    }
                }
            }
        }
        if let Some(data) = schema.pointer_mut("/properties/data") {
            narrow_in_place(data, components);
        }
        let name = event_component(event_type);
        let reference = format!("#/components/schemas/{name}");
        alternatives.push(json!({ "$ref": reference }));
        mapping.insert(event_type.as_str().to_owned(), Value::String(reference));
        components.insert(name, schema);
    }
    components.insert(
        "Event".into(),
        json!({
            "description": "An event in the wire format (docs/events.md): the envelope, and `data` as its `type` has it.",
            "oneOf": alternatives,
            "discriminator": {"propertyName": "type", "mapping": mapping}
        }),
    );
}

/// A type rule of `event_schema` (`allOf: [payload, {required, properties}]`: e.g.
/// `incident.opened` requires the `title` its payload type leaves optional) written as the one
/// object it means: the payload's schema with the rule's properties narrowing its own (key by
/// key, the rule's keywords win) and the rule's required names added. Client generators cannot
/// merge an optional property with a required one; the schema accepts the same documents.
/// Anything else (`if`/`then` rules) is left as it is.
fn narrow_in_place(data: &mut Value, components: &Map<String, Value>) {
    let Some([Value::Object(payload), Value::Object(rule)]) = data
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    else {
        return;
    };
    if !rule.keys().all(|k| k == "required" || k == "properties") {
        return;
    }
    let mut narrowed = match payload.get("$ref").and_then(Value::as_str) {
        None => Value::Object(payload.clone()),
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let Some(definition) = components.get(name) else {
                return;
            };
            definition.clone()
        }
    };
    for (name, property) in rule
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let own = &mut narrowed["properties"][name];
        if !own.is_object() {
            *own = json!({});
        }
        for (keyword, value) in property.as_object().into_iter().flatten() {
            own[keyword] = value.clone();
        }
        // The payload's default (`null`, for an optional field) is no value the rule allows.
        if let Some(own) = own.as_object_mut() {
            own.remove("default");
        }
    }
    if let Some(Value::Array(required)) = rule.get("required") {
        let own = narrowed["required"].as_array().cloned().unwrap_or_default();
        let mut all = own;
        for name in required {
            if !all.contains(name) {
                all.push(name.clone());
            }
        }
        narrowed["required"] = Value::Array(all);
    }
    *data = narrowed;
}

/// The prefix of the event schemas' definitions in the components.
const WIRE_PREFIX: &str = "Wire";

/// `#/$defs/X` (a schema file's own definitions) → `#/components/schemas/WireX`.
fn move_references(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(name) = reference.strip_prefix("#/$defs/")
            {
                *reference = format!("#/components/schemas/{WIRE_PREFIX}{name}");
            }
            map.values_mut().for_each(move_references);
        }
        Value::Array(items) => items.iter_mut().for_each(move_references),
        _ => {}
    }
}

/// Enums of documented unit variants come out of `schemars` as `oneOf` of `const`s, each with
/// its description; client generators read that as a union of one-value types and refuse the
/// values (openapi-python-client raises `ValueError`). Every such `oneOf` becomes a plain
/// `enum` of the values, the variants' descriptions kept in the schema's description.
pub(super) fn plain_enums(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(plain) = plain_enum(map) {
                *map = plain;
            }
            map.values_mut().for_each(plain_enums);
        }
        Value::Array(items) => items.iter_mut().for_each(plain_enums),
        _ => {}
    }
}

/// The plain enum of a `oneOf` whose every alternative is one string `const` (with at most a
/// type and a description).
fn plain_enum(schema: &Map<String, Value>) -> Option<Map<String, Value>> {
    let alternatives = schema.get("oneOf")?.as_array()?;
    let mut values = Vec::new();
    let mut described = Vec::new();
    for alternative in alternatives {
        let alternative = alternative.as_object()?;
        let value = alternative.get("const")?.as_str()?;
        let only_const = alternative
            .keys()
            .all(|key| matches!(key.as_str(), "const" | "type" | "description"));
        if !only_const || alternative.get("type").is_some_and(|t| t != "string") {
            return None;
        }
        if let Some(description) = alternative.get("description").and_then(Value::as_str) {
            described.push(format!("`{value}`: {description}"));
        }
        values.push(Value::String(value.to_owned()));
    }
    let mut plain = schema.clone();
    plain.remove("oneOf");
    plain.insert("type".into(), json!("string"));
    plain.insert("enum".into(), Value::Array(values));
    if !described.is_empty() {
        let mut description = plain
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!("{d} "))
            .unwrap_or_default();
        description.push_str(&described.join(" "));
        plain.insert("description".into(), Value::String(description));
    }
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_unit_variants_become_a_plain_enum_keeping_their_descriptions() {
        let mut schema = json!({
            "description": "Whether a finding has an active occurrence.",
            "oneOf": [
                {"const": "active", "description": "An occurrence is open.", "type": "string"},
                {"const": "resolved", "description": "Every occurrence is resolved.", "type": "string"}
            ]
        });
        plain_enums(&mut schema);
        assert_eq!(
            schema,
            json!({
                "type": "string",
                "enum": ["active", "resolved"],
                "description": "Whether a finding has an active occurrence. `active`: An occurrence is open. `resolved`: Every occurrence is resolved."
            })
        );
        // A union of object schemas is left alone.
        let mut union = json!({"oneOf": [{"const": "a"}, {"type": "object"}]});
        let before = union.clone();
        plain_enums(&mut union);
        assert_eq!(union, before);
    }

    #[test]
    fn event_components_are_named_after_the_wire_type() {
        assert_eq!(
            event_component(EventType::CycleCompleted),
            "CycleCompletedEvent"
        );
        assert_eq!(
            event_component(EventType::FindingResolved),
            "FindingResolvedEvent"
        );
    }
}
