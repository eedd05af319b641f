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
