//! The wire decoder's two paths give one answer (issue 20, ADR 0009): the one pass
//! (`wire::decode_in_one_pass`) accepts an event only when the path naming errors
//! (`wire::decode_naming_errors`) decodes the same event, and `decode_event_under` answers what
//! the path naming errors answers, error for error, on every fixture, every event of the replay
//! corpus, and damaged copies of them (bytes removed, inserted, replaced; fields repeated;
//! string values emptied or blanked).

mod support;

use proptest::prelude::*;
use tidemark_core::wire::{decode_in_one_pass, decode_naming_errors};
use tidemark_core::{Contract, decode_event_under};

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Every fixture and every line of the replay corpus.
fn originals() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo("schemas/fixtures/v1")).unwrap() {
        out.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for case in std::fs::read_dir(repo("replay")).unwrap() {
        if let Ok(text) = std::fs::read_to_string(case.unwrap().path().join("events.ndjson")) {
            out.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned),
            );
        }
    }
    out
}

/// The two paths agree on `json` under both contracts.
fn agree(json: &str) -> Result<(), TestCaseError> {
    for contract in [Contract::NewInput, Contract::Logged] {
        let precise = decode_naming_errors(json, contract);
        if let Some(fast) = decode_in_one_pass(json, contract) {
            prop_assert_eq!(
                Ok(fast),
                precise.clone(),
                "the one pass accepted what the precise path does not: {}",
                json
            );
        }
        prop_assert_eq!(decode_event_under(json, contract), precise, "{}", json);
    }
    Ok(())
}

#[test]
fn every_valid_event_takes_the_one_pass_and_decodes_as_the_precise_path_does() {
    let originals = originals();
    let mut one_pass = 0;
    for json in &originals {
        agree(json).unwrap();
        if decode_naming_errors(json, Contract::Logged).is_ok() {
            // Our producers write `type` before `data`: the one pass decodes them all.
            let fast = decode_in_one_pass(json, Contract::Logged);
            assert!(fast.is_some(), "the one pass refused a valid event: {json}");
            one_pass += 1;
        }
    }
    assert!(one_pass > 100, "only {one_pass} valid events");
}

#[test]
fn data_before_type_is_read_as_well() {
    let cycle = std::fs::read_to_string(repo("schemas/fixtures/v1/cycle.completed.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&cycle).unwrap();
    let object = value.as_object().unwrap();
    let mut reordered = String::from("{");
    for key in ["data", "id", "schema", "type", "time", "source", "cluster"] {
        if reordered.len() > 1 {
            reordered.push(',');
        }
        reordered.push_str(&format!("{:?}:{}", key, object[key]));
    }
    reordered.push('}');
    agree(&reordered).unwrap();
    assert!(decode_in_one_pass(&reordered, Contract::NewInput).is_some());
}

/// A damage done to an event's text.
#[derive(Clone, Debug)]
enum Damage {
    Remove(usize),
    Insert(usize, &'static str),
    Replace(usize, &'static str),
    RepeatField(usize),
    /// The n-th string value made `""` or blank (`" "`): the rules serde cannot express.
    BlankString(usize, bool),
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "0",
    "-1",
    "1.5",
    "null",
    "true",
    "\"\"",
    " ",
    "\\",
    "\\u00e9",
    "\"x\"",
    "{}",
    "[]",
    "\"data\":{}",
    "\"type\":\"note.added\",",
    "\"seq\":1,",
    "\"extra\":1,",
    "\u{e9}",
    "\"schema\":2,",
    "\"id\":\"\",",
    "\"data\":[],",
];

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    let one = prop_oneof![
        any::<usize>().prop_map(Damage::Remove),
        (any::<usize>(), prop::sample::select(PIECES)).prop_map(|(at, p)| Damage::Insert(at, p)),
        (any::<usize>(), prop::sample::select(PIECES)).prop_map(|(at, p)| Damage::Replace(at, p)),
        any::<usize>().prop_map(Damage::RepeatField),
        (any::<usize>(), any::<bool>()).prop_map(|(n, blank)| Damage::BlankString(n, blank)),
    ];
    prop::collection::vec(one, 1..4)
}

/// `json` with `damage` done, at char boundaries.
fn damaged(json: &str, damage: &[Damage]) -> String {
    let mut text = json.to_owned();
    for d in damage {
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        let at = |n: usize| boundaries[n % boundaries.len()];
        match d {
            Damage::Remove(n) => {
                let start = at(*n);
                if let Some(c) = text[start..].chars().next() {
                    text.replace_range(start..start + c.len_utf8(), "");
                }
            }
            Damage::Insert(n, piece) => text.insert_str(at(*n), piece),
            Damage::Replace(n, piece) => {
                let start = at(*n);
                let end = text[start..]
                    .chars()
                    .next()
                    .map_or(start, |c| start + c.len_utf8());
                text.replace_range(start..end, piece);
            }
            Damage::BlankString(n, blank) => {
                let starts: Vec<usize> = text.match_indices("\":\"").map(|(i, _)| i + 3).collect();
                if let Some(&start) = starts.get(n % starts.len().max(1))
                    && let Some(len) = text[start..].find('"')
                {
                    text.replace_range(start..start + len, if *blank { " " } else { "" });
                }
            }
            Damage::RepeatField(n) => {
                // The first field again, before the closing brace: a duplicate key.
                if let (Some(open), Some(close)) = (text.find('{'), text.rfind('}')) {
                    let body = &text[open + 1..close];
                    let fields: Vec<&str> = body.split(",\"").collect();
                    let field = fields[n % fields.len()].trim_start_matches('"');
                    let repeated = format!(",\"{field}");
                    text.insert_str(close, &repeated);
                }
            }
        }
    }
    text
}

#[test]
fn damaged_events_get_the_same_answer_from_both_paths() {
    let originals = originals();
    let strategy = (0..originals.len(), damage());
    support::check(
        "wire paths agree on damaged events",
        3_000,
        strategy,
        |(i, d)| agree(&damaged(&originals[i], &d)),
    )
    .unwrap();
}
