//! Turning a request body into store inputs: one JSON event, a JSON array of events, or NDJSON.
//!
//! Framing errors (not UTF-8, not JSON at all) refuse the whole request and store nothing; an
//! item that is JSON but not a valid event is refused alone, kept in quarantine with its reason,
//! and reported in its place in the response.

use serde_json::value::RawValue;
use tidemark_core::decode_event;
use tidemark_store::Input;

use crate::error::ApiError;

/// How the body frames its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One JSON object.
    Single,
    /// A JSON array of objects.
    Array,
    /// One JSON object per line.
    Lines,
}

/// Picks the framing from the content type, else from the body's shape.
pub fn framing(content_type: Option<&str>, body: &str) -> Framing {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if matches!(
        media,
        "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
    ) {
        return Framing::Lines;
    }
    let trimmed = body.trim();
    if trimmed.starts_with('[') {
        Framing::Array
    } else if trimmed
        .lines()
        .filter(|l| !l.trim().is_empty())
        .nth(1)
        .is_some()
    {
        Framing::Lines
    } else {
        Framing::Single
    }
}

/// One item: its id (when it could be read) and the input for the store.
pub type Item = (Option<String>, Input);

fn item(text: &str, origin: String, line: Option<u64>) -> Item {
    match decode_event(text) {
        Ok(event) => (Some(event.id.0.clone()), Input::Event(event)),
        Err(error) => {
            let error = match line {
                Some(line) => error.at_line(line),
                None => error,
            };
            (
                error.event_id.clone(),
                Input::Rejected {
                    raw: text.as_bytes().to_vec(),
                    reason: error.to_string(),
                    origin,
                },
            )
        }
    }
}

/// Parses a body into items, each tagged with where it came from (`origin` names the request).
pub fn parse(body: &[u8], content_type: Option<&str>, origin: &str) -> Result<Vec<Item>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not UTF-8 (byte {}): events are JSON text",
            e.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "empty body: send one JSON event, a JSON array of events, or NDJSON (one event per line)",
        ));
    }
    let inputs = match framing(content_type, text) {
        Framing::Single => vec![item(text.trim(), format!("{origin} body"), None)],
        Framing::Array => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body starts like a JSON array but is not one: {e}"
                ))
            })?;
            items
                .iter()
                .enumerate()
                .map(|(i, raw)| item(raw.get(), format!("{origin} item {i}"), None))
                .collect()
        }
        Framing::Lines => text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                item(
                    line.trim(),
                    format!("{origin} line {}", i + 1),
                    Some(i as u64 + 1),
                )
            })
            .collect(),
    };
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"a","schema":1,"type":"note.added","time":"2026-03-02T14:00:00Z","source":"s","cluster":"c","data":{"author":"me","kind":"observation","text":"hi"}}"#;

    #[test]
    fn framing_follows_content_type_then_shape() {
        assert_eq!(framing(Some("application/x-ndjson"), EVENT), Framing::Lines);
        assert_eq!(framing(Some("application/json"), EVENT), Framing::Single);
        assert_eq!(framing(None, &format!("[{EVENT}]")), Framing::Array);
        assert_eq!(
            framing(None, &format!("{EVENT}\n{EVENT}\n")),
            Framing::Lines
        );
    }

    #[test]
    fn bad_items_are_rejected_alone_with_their_place() {
        let body = format!("{EVENT}\n{{\"id\":\"b\"}}\n\n{EVENT}");
        let inputs = parse(body.as_bytes(), None, "http").unwrap();
        assert_eq!(inputs.len(), 3);
        assert!(matches!(&inputs[0].1, Input::Event(_)));
        assert_eq!(inputs[1].0.as_deref(), Some("b"));
        match &inputs[1].1 {
            Input::Rejected { reason, origin, .. } => {
                assert!(
                    reason.starts_with("line 2: event \"b\": field `schema`"),
                    "{reason}"
                );
                assert_eq!(origin, "http line 2");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn framing_errors_refuse_the_request() {
        assert_eq!(parse(b"  ", None, "http").unwrap_err().code, "bad_request");
        assert!(
            parse(b"[1, 2", None, "http")
                .unwrap_err()
                .message
                .contains("not one")
        );
        assert!(
            parse(&[0xff, 0xfe], None, "http")
                .unwrap_err()
                .message
                .contains("UTF-8")
        );
    }
}
