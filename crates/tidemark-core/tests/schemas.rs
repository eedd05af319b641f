//! The checked-in JSON Schemas match the code, and every fixture event of every version decodes.
//!
//! Regenerate the schemas after changing an event type with
//! `TIDEMARK_UPDATE_SCHEMAS=1 cargo test -p tidemark-core --test schemas`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use tidemark_core::event::CURRENT_SCHEMA;
use tidemark_core::schema::event_schema_file;
use tidemark_core::{EventType, decode_event, encode_event};

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

#[test]
fn checked_in_schemas_match_the_code() {
    let dir = schemas_dir().join(format!("v{CURRENT_SCHEMA}"));
    let update = std::env::var_os("TIDEMARK_UPDATE_SCHEMAS").is_some();
    if update {
        fs::create_dir_all(&dir).unwrap();
    }
    let mut drifted = Vec::new();
    for &event_type in EventType::ALL {
        let path = dir.join(format!("{}.schema.json", event_type.as_str()));
        let expected = event_schema_file(event_type);
        if update {
            fs::write(&path, &expected).unwrap();
            continue;
        }
        match fs::read_to_string(&path) {
            Ok(actual) if actual == expected => {}
            Ok(_) => drifted.push(format!("{} differs from the code", path.display())),
            Err(e) => drifted.push(format!("{}: {e}", path.display())),
        }
    }
    let known: BTreeSet<String> = EventType::ALL
        .iter()
        .map(|t| format!("{}.schema.json", t.as_str()))
        .collect();
    for entry in fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !known.contains(&name) {
            drifted.push(format!("{name} is for no event type of the code"));
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas drifted from the code:\n  {}\nrun TIDEMARK_UPDATE_SCHEMAS=1 cargo test -p tidemark-core --test schemas and commit the result",
        drifted.join("\n  ")
    );
}

#[test]
fn every_fixture_of_every_version_decodes_and_round_trips() {
    let fixtures = schemas_dir().join("fixtures");
    let mut covered_current = BTreeSet::new();
    let mut count = 0;
    for version in fs::read_dir(&fixtures).unwrap() {
        let version = version.unwrap().path();
        for file in fs::read_dir(&version).unwrap() {
            let path = file.unwrap().path();
            let text = fs::read_to_string(&path).unwrap();
            let event = decode_event(&text)
                .unwrap_or_else(|e| panic!("{} no longer decodes: {e}", path.display()));
            let again = decode_event(&encode_event(&event)).unwrap();
            assert_eq!(event, again, "{} does not round-trip", path.display());
            if version.ends_with(format!("v{CURRENT_SCHEMA}")) {
                covered_current.insert(event.event_type());
            }
            count += 1;
        }
    }
    let missing: Vec<_> = EventType::ALL
        .iter()
        .filter(|t| !covered_current.contains(t))
        .map(|t| t.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "no v{CURRENT_SCHEMA} fixture for {missing:?}"
    );
    assert!(count >= EventType::ALL.len());
}

#[test]
fn schemas_require_the_fields_the_decoder_requires() {
    let schema: serde_json::Value =
        serde_json::from_str(&event_schema_file(EventType::CycleCompleted)).unwrap();
    let finding = &schema["$defs"]["FindingObservation"];
    let required: BTreeSet<&str> = finding["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        BTreeSet::from(["check_key", "category", "severity", "title"])
    );
    assert_eq!(finding["additionalProperties"], serde_json::json!(false));
    assert_eq!(schema["properties"]["type"]["const"], "cycle.completed");
}

/// `docs/events.md` lists the fields of every event type from the schemas: the tables between
/// `<!-- fields: TYPE -->` and `<!-- end fields -->` are generated (regenerated with the
/// schemas), so the reference cannot drift from the contract.
#[test]
fn the_event_reference_lists_every_field_of_every_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    let text = fs::read_to_string(&path).unwrap();
    let mut expected = String::new();
    let mut rest = text.as_str();
    let mut seen = BTreeSet::new();
    while let Some(start) = rest.find("<!-- fields: ") {
        let header_end = start + rest[start..].find("-->").unwrap() + 3;
        let type_name = rest[start + 13..header_end - 3].trim();
        let event_type = EventType::from_wire(type_name)
            .unwrap_or_else(|| panic!("docs/events.md names no event type {type_name:?}"));
        seen.insert(event_type);
        expected.push_str(&rest[..header_end]);
        expected.push('\n');
        expected.push_str(&field_table(event_type));
        let end = rest[header_end..]
            .find("<!-- end fields -->")
            .expect("<!-- end fields --> after every <!-- fields: TYPE -->");
        rest = &rest[header_end + end..];
    }
    expected.push_str(rest);
    let missing: Vec<_> = EventType::ALL
        .iter()
        .filter(|t| !seen.contains(t))
        .map(|t| t.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/events.md has no field table for {missing:?}"
    );
    if std::env::var_os("TIDEMARK_UPDATE_SCHEMAS").is_some() {
        fs::write(&path, &expected).unwrap();
        return;
    }
    assert!(
        text == expected,
        "docs/events.md's field tables differ from the schemas: run \
         TIDEMARK_UPDATE_SCHEMAS=1 cargo test -p tidemark-core --test schemas and commit the result"
    );
}

/// The `data` fields of one event type as a Markdown table.
fn field_table(event_type: EventType) -> String {
    use serde_json::Value;
    let schema: Value = serde_json::from_str(&event_schema_file(event_type)).unwrap();
    let defs = &schema["$defs"];
    let resolve = |v: &Value| -> Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => defs[r.trim_start_matches("#/$defs/")].clone(),
            None => v.clone(),
        }
    };
    let mut data = schema["properties"]["data"].clone();
    let mut extra_required = BTreeSet::new();
    if let Some(all) = data.get("allOf").and_then(Value::as_array).cloned() {
        for part in &all[1..] {
            for r in part["required"].as_array().into_iter().flatten() {
                extra_required.insert(r.as_str().unwrap().to_owned());
            }
        }
        data = all[0].clone();
    }
    let mut rows = Vec::new();
    walk_object(&resolve(&data), "", &resolve, &extra_required, &mut rows);
    let mut out =
        String::from("| field | type | required | description |\n| --- | --- | --- | --- |\n");
    for (field, kind, required, description) in rows {
        out.push_str(&format!(
            "| `{field}` | {kind} | {} | {} |\n",
            if required { "yes" } else { "no" },
            description.replace('\n', " ").replace('|', "\\|")
        ));
    }
    out
}

type Row = (String, String, bool, String);

fn walk_object(
    object: &serde_json::Value,
    prefix: &str,
    resolve: &dyn Fn(&serde_json::Value) -> serde_json::Value,
    extra_required: &BTreeSet<String>,
    rows: &mut Vec<Row>,
) {
    use serde_json::Value;
    let required: BTreeSet<&str> = object["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(properties) = object["properties"].as_object() else {
        return;
    };
    // Required fields first, then the rest, each in name order.
    let mut names: Vec<&String> = properties.keys().collect();
    names.sort_by_key(|n| {
        (
            !(required.contains(n.as_str()) || (prefix.is_empty() && extra_required.contains(*n))),
            n.as_str(),
        )
    });
    for name in names {
        let property = &properties[name];
        let field = format!("{prefix}{name}");
        let description = property["description"].as_str().unwrap_or("").to_owned();
        let is_required = required.contains(name.as_str())
            || (prefix.is_empty() && extra_required.contains(name));
        let (kind, nested) = describe_type(property, resolve);
        rows.push((field.clone(), kind, is_required, description));
        if let Some((nested, suffix)) = nested {
            walk_object(
                &nested,
                &format!("{field}{suffix}."),
                resolve,
                &BTreeSet::new(),
                rows,
            );
        }
    }
}

/// A property's type in words, and the object inside it (with the path suffix) if any.
fn describe_type(
    property: &serde_json::Value,
    resolve: &dyn Fn(&serde_json::Value) -> serde_json::Value,
) -> (String, Option<(serde_json::Value, &'static str)>) {
    use serde_json::Value;
    if let Some(any) = property.get("anyOf").and_then(Value::as_array) {
        let inner = any
            .iter()
            .find(|v| v["type"] != "null")
            .expect("an anyOf with a non-null branch");
        let (kind, nested) = describe_type(inner, resolve);
        return (format!("{kind} or null"), nested);
    }
    let resolved = resolve(property);
    if let Some(variants) = resolved.get("oneOf").and_then(Value::as_array) {
        let names: Vec<_> = variants
            .iter()
            .filter_map(|v| v["const"].as_str())
            .map(|c| format!("`{c}`"))
            .collect();
        if !names.is_empty() {
            return (format!("one of {}", names.join(", ")), None);
        }
        // An externally tagged enum: each variant an object of one required property.
        let keys: Vec<_> = variants
            .iter()
            .filter_map(|v| v["required"].get(0).and_then(Value::as_str))
            .map(|k| format!("`{{\"{k}\": …}}`"))
            .collect();
        return (format!("object, one of {}", keys.join(", ")), None);
    }
    if let Some(names) = resolved.get("enum").and_then(Value::as_array) {
        let names: Vec<_> = names
            .iter()
            .filter_map(Value::as_str)
            .map(|c| format!("`{c}`"))
            .collect();
        return (format!("one of {}", names.join(", ")), None);
    }
    let types: Vec<&str> = match &resolved["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let nullable = types.contains(&"null");
    let main = types
        .iter()
        .find(|t| **t != "null")
        .copied()
        .unwrap_or("any");
    let mut kind = match main {
        "string" if resolved["format"] == "date-time" => "time (RFC 3339)".to_owned(),
        "string" if resolved["minLength"] == 1 => "text, not blank".to_owned(),
        "string" => "text".to_owned(),
        "integer" => {
            let min = resolved["minimum"].as_u64().unwrap_or(0);
            match resolved["maximum"].as_u64() {
                Some(max) if max < u64::from(u32::MAX) => format!("integer {min}–{max}"),
                _ if min > 0 => format!("integer ≥ {min}"),
                _ => "integer ≥ 0".to_owned(),
            }
        }
        "boolean" => "boolean".to_owned(),
        "object"
            if resolved
                .get("additionalProperties")
                .is_some_and(Value::is_object) =>
        {
            "object of text values".to_owned()
        }
        "object" => "object".to_owned(),
        "array" => {
            let items = resolve(&resolved["items"]);
            let (item_kind, nested) = describe_type(&items, resolve);
            let kind = if nullable {
                format!("list of {item_kind}, or null")
            } else {
                format!("list of {item_kind}")
            };
            return (
                kind,
                nested
                    .map(|(n, _)| (n, "[]"))
                    .or_else(|| items.get("properties").map(|_| (items.clone(), "[]"))),
            );
        }
        other => other.to_owned(),
    };
    if let Some(default) = resolved.get("default").filter(|d| !d.is_null()) {
        kind.push_str(&format!(", default `{default}`"));
    }
    if nullable {
        kind.push_str(" or null");
    }
    let nested = resolved.get("properties").map(|_| (resolved.clone(), ""));
    (kind, nested)
}
