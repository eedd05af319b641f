//! Turning a request body into store inputs: one JSON event, a JSON array of events, or NDJSON.
//!
//! Framing errors refuse the whole request (400) and store nothing: a body that is empty, not
//! UTF-8, or not JSON (framed as one event or an array, it does not parse); so does holding more
//! items than the request limit (413). An item that is not a valid event (an NDJSON line that is
//! not JSON, or JSON that is not an event) is refused alone, kept in quarantine with its reason
//! (once, however often it is sent), and reported in the response (422). What becomes of the
//! items (stored, or published on a replica) and the answer that says so: `answer`.

mod answer;
pub(crate) mod otlp;

use serde_json::value::RawValue;
use tidemark_core::alertmanager::AlertTranslation;
use tidemark_core::decode_event;
use tidemark_store::Input;

pub(crate) use answer::{
    IngestAnswer, SubmitError, Submitted, keep_refused_body, origin_of, store_inputs, submit,
};

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

/// Picks the framing from the content type, else from the body's shape: an array when it starts
/// with `[`, one event when the whole body is one JSON value (pretty-printed over several lines
/// or not), else NDJSON when it has several lines; a single line that is not JSON is `Single`
/// (and [`parse`] refuses it whole).
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
    } else if is_one_json_value(trimmed) {
        Framing::Single
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

/// Whether `text` is exactly one JSON value (checked without building it).
fn is_one_json_value(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// A body framed as one event that is not JSON at all: refused whole (400), nothing stored or
/// quarantined, like an array that is not one. (An NDJSON line that is not JSON is an item of its
/// body: rejected alone, 422.)
fn not_json(text: &str) -> ApiError {
    let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(text) else {
        unreachable!("called only for a body that does not parse");
    };
    let hint = if error.to_string().starts_with("trailing characters") {
        " (several events on one line? NDJSON takes one event per line, and `curl -d` drops \
         line breaks: use --data-binary)"
    } else {
        ""
    };
    ApiError::bad_request(format!(
        "the body is not JSON ({error}){hint}: send one JSON event, a JSON array of events, or \
         NDJSON (one event per line)"
    ))
}

/// One item of a request: what the store gets, and what the answer says about it.
#[derive(Debug)]
pub struct Item {
    /// The event's id, when it could be read.
    pub id: Option<String>,
    /// Its line in an NDJSON body (1-based, blank lines counted).
    pub line: Option<u64>,
    /// What is wrong with it, without naming the event or where it was (`field `type`: unknown
    /// event type "x"`): the key that groups rejected items in an answer's summary.
    pub problem: Option<String>,
    /// The name of the alert it came from (Alertmanager bridge), and whether it was derived.
    pub alert_name: Option<(String, bool)>,
    /// The input for the store. A rejected item's reason says what is wrong, not where: the
    /// origin names the request and the item or line, so the same bad item sent again is the
    /// same quarantine record (counted), wherever it sits in a request.
    pub input: Input,
}

impl Item {
    /// A valid event, for the store.
    pub(crate) fn event(event: tidemark_core::Event) -> Self {
        Self {
            id: Some(event.id.0.clone()),
            line: None,
            problem: None,
            alert_name: None,
            input: Input::Event(event),
        }
    }

    /// Bytes refused for `reason` (also the answer's problem), kept in quarantine from `origin`.
    pub(crate) fn rejected(raw: Vec<u8>, reason: String, origin: String) -> Self {
        Self {
            id: None,
            line: None,
            problem: Some(reason.clone()),
            alert_name: None,
            input: Input::Rejected {
                raw,
                reason,
                origin,
            },
        }
    }
}

fn item(text: &str, origin: String, line: Option<u64>) -> Item {
    match decode_event(text) {
        Ok(event) => Item {
            line,
            ..Item::event(event)
        },
        Err(error) => {
            let problem = match &error.field {
                Some(field) => format!("field `{field}`: {}", error.problem),
                None => error.problem.to_string(),
            };
            Item {
                id: error.event_id.clone(),
                line,
                problem: Some(problem),
                alert_name: None,
                input: Input::Rejected {
                    raw: text.as_bytes().to_vec(),
                    reason: error.to_string(),
                    origin,
                },
            }
        }
    }
}

/// One alert of an Alertmanager webhook as an item: its event, or (when it cannot be
/// translated) its own bytes rejected with the reason, from `origin`'s `alerts[i]`.
pub fn alert_item(alert: AlertTranslation<'_>, origin: &str) -> Item {
    match alert.result {
        Ok(translated) => Item {
            alert_name: Some((translated.name, translated.name_derived)),
            ..Item::event(translated.event)
        },
        Err(error) => Item::rejected(
            alert.raw.as_bytes().to_vec(),
            format!("alertmanager alert: {error}"),
            format!("{origin} alerts[{}]", alert.index),
        ),
    }
}

/// Why a body was refused whole.
fn too_many(max_items: usize) -> ApiError {
    ApiError::too_many_items(max_items)
}

/// The elements of a JSON array, refusing the array as soon as it holds more than `max_items`
/// (so a huge array is refused without listing its elements).
struct BoundedArray<'flag> {
    max_items: usize,
    exceeded: &'flag std::cell::Cell<bool>,
}

impl<'de> serde::de::DeserializeSeed<'de> for BoundedArray<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BoundedArray<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max_items));
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max_items {
                self.exceeded.set(true);
                return Err(serde::de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

fn array_items(text: &str, max_items: usize) -> Result<Vec<&RawValue>, ApiError> {
    let exceeded = std::cell::Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = BoundedArray {
        max_items,
        exceeded: &exceeded,
    };
    let parsed = serde::de::DeserializeSeed::deserialize(seed, &mut deserializer)
        .and_then(|items| deserializer.end().map(|()| items));
    parsed.map_err(|e| {
        if exceeded.get() {
            too_many(max_items)
        } else {
            ApiError::bad_request(format!(
                "the body starts like a JSON array but is not one: {e}"
            ))
        }
    })
}

/// Parses a body into at most `max_items` items, each tagged with where it came from (`origin`
/// names the request). More items refuse the whole body (413) before any is decoded.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    origin: &str,
    max_items: usize,
) -> Result<Vec<Item>, ApiError> {
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
    let max_items = max_items.max(1);
    let inputs = match framing(content_type, text) {
        Framing::Single if !is_one_json_value(text.trim()) => return Err(not_json(text.trim())),
        Framing::Single => vec![item(text.trim(), format!("{origin} body"), None)],
        Framing::Array => array_items(text, max_items)?
            .iter()
            .enumerate()
            .map(|(i, raw)| item(raw.get(), format!("{origin} item {i}"), None))
            .collect(),
        Framing::Lines => {
            let lines = || {
                text.lines()
                    .enumerate()
                    .filter(|(_, line)| !line.trim().is_empty())
            };
            if lines().nth(max_items).is_some() {
                return Err(too_many(max_items));
            }
            lines()
                .map(|(i, line)| {
                    let number = i as u64 + 1;
                    item(line.trim(), format!("{origin} line {number}"), Some(number))
                })
                .collect()
        }
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
    fn one_event_over_several_lines_is_one_event_not_ndjson() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(EVENT).unwrap(),
        )
        .unwrap();
        assert!(pretty.lines().count() > 3);
        for content_type in [None, Some("application/json")] {
            assert_eq!(framing(content_type, &pretty), Framing::Single);
            let items = parse(pretty.as_bytes(), content_type, "http", 10).unwrap();
            assert_eq!(items.len(), 1);
            assert!(matches!(&items[0].input, Input::Event(_)), "{items:?}");
        }
        // Declared NDJSON stays line by line.
        assert_eq!(
            framing(Some("application/x-ndjson"), &pretty),
            Framing::Lines
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_whole_but_an_ndjson_line_alone() {
        for body in [
            "hello",
            "id=a&type=note.added",
            "{\"id\": \"a\",",
            "<event/>",
        ] {
            let refused = parse(body.as_bytes(), None, "http", 10).unwrap_err();
            assert_eq!(
                refused.status,
                axum::http::StatusCode::BAD_REQUEST,
                "{body}"
            );
            assert!(
                refused.message.starts_with("the body is not JSON ("),
                "{}",
                refused.message
            );
        }
        // Events run together on one line (`curl -d @file` drops the line breaks): said so.
        let joined = format!("{EVENT}{EVENT}");
        let refused = parse(joined.as_bytes(), None, "http", 10).unwrap_err();
        assert!(
            refused.message.contains("--data-binary"),
            "{}",
            refused.message
        );
        // JSON that is not an event is an item, rejected alone (422 in the answer).
        let items = parse(b"42", None, "http", 10).unwrap();
        assert!(matches!(&items[0].input, Input::Rejected { .. }));
        // In NDJSON, a line that is not JSON is one rejected item among the others.
        let body = format!("{EVENT}\nhello\n");
        let items = parse(body.as_bytes(), None, "http", 10).unwrap();
        assert!(matches!(&items[0].input, Input::Event(_)));
        assert!(matches!(&items[1].input, Input::Rejected { .. }));
    }

    #[test]
    fn bad_items_are_rejected_alone_with_their_place() {
        let body = format!("{EVENT}\n{{\"id\":\"b\"}}\n\n{EVENT}");
        let inputs = parse(body.as_bytes(), None, "http", 10).unwrap();
        assert_eq!(inputs.len(), 3);
        assert!(matches!(&inputs[0].input, Input::Event(_)));
        assert_eq!(inputs[1].id.as_deref(), Some("b"));
        assert_eq!(inputs[1].line, Some(2));
        assert_eq!(inputs[2].line, Some(4), "blank lines count");
        assert_eq!(
            inputs[1].problem.as_deref(),
            Some("field `schema`: missing required field")
        );
        match &inputs[1].input {
            Input::Rejected { reason, origin, .. } => {
                // What is wrong, not where: the origin says where.
                assert!(
                    reason.starts_with("event \"b\": field `schema`"),
                    "{reason}"
                );
                assert_eq!(origin, "http line 2");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn framing_errors_refuse_the_request() {
        assert_eq!(
            parse(b"  ", None, "http", 10).unwrap_err().code,
            "bad_request"
        );
        assert!(
            parse(b"[1, 2", None, "http", 10)
                .unwrap_err()
                .message
                .contains("not one")
        );
        assert!(
            parse(&[0xff, 0xfe], None, "http", 10)
                .unwrap_err()
                .message
                .contains("UTF-8")
        );
    }

    #[test]
    fn more_items_than_the_limit_refuse_the_body_before_any_is_decoded() {
        for body in ["1\n".repeat(4), "[1,1,1,1]".to_owned()] {
            let refused = parse(body.as_bytes(), None, "http", 3).unwrap_err();
            assert_eq!(refused.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
            assert_eq!(refused.code, "too_many_items");
            assert!(refused.message.contains("3 items"), "{}", refused.message);
            assert_eq!(parse(body.as_bytes(), None, "http", 4).unwrap().len(), 4);
        }
        // Blank lines are not items; a malformed array past the limit is still too many.
        assert_eq!(parse(b"1\n\n\n1\n", None, "http", 2).unwrap().len(), 2);
        assert_eq!(
            parse(b"[1,1,1,1,", None, "http", 3).unwrap_err().code,
            "too_many_items"
        );
        assert_eq!(
            parse(b"[1,1] x", None, "http", 3).unwrap_err().code,
            "bad_request"
        );
    }
}
