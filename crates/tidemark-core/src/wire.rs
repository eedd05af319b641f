//! The JSON wire format: decoding with validation, and encoding.
//!
//! Every error names what it can: the line (when read from a file), the event `id` (when one
//! could be read), the field (a path such as `data.findings[2].severity`) and what was expected.
//! Unknown fields are refused rather than dropped, so nothing a producer sends is silently lost;
//! `seq` and `recorded_at`, which the store adds on read, are accepted and ignored so that
//! exported events can be ingested again.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::event::{
    ALERT_KEY_PREFIX, CURRENT_SCHEMA, Event, EventId, EventType, MAX_TIME_INTERVALS,
    MAX_WINDOW_NAME_CHARS, MaintenanceSchedule, MaintenanceScheduled, ManualResolutionKind,
    Payload,
};
use crate::settings::{MAX_ALERT_STALE_AFTER_SECS, MAX_FLAP_WINDOW_SECS, MAX_SPAN_RETENTION_SECS};
use crate::timestamp::{Timestamp, TimestampError};

/// Why an event could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// 1-based line number, when the event came from a file.
    pub line: Option<u64>,
    /// The event's `id`, when it could be read.
    pub event_id: Option<String>,
    /// The field at fault, as a path (`data.findings[0].title`), when there is one.
    pub field: Option<String>,
    /// What is wrong.
    pub problem: DecodeProblem,
}

/// What is wrong with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeProblem {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// The text is not JSON.
    Syntax(String),
    /// The JSON is not an object.
    NotAnObject,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType {
        /// What the contract says.
        expected: &'static str,
        /// What arrived.
        found: &'static str,
    },
    /// A string that must not be empty is empty.
    Empty,
    /// `type` names no known event type.
    UnknownType(String),
    /// `schema` is a version this build cannot read.
    UnsupportedSchema(u64),
    /// A time is not RFC 3339.
    BadTime(TimestampError),
    /// A field's value is invalid (serde's own words: unknown variant, missing field, ...).
    Invalid(String),
}

impl fmt::Display for DecodeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("not valid UTF-8"),
            Self::Syntax(msg) => write!(f, "not valid JSON: {msg}"),
            Self::NotAnObject => f.write_str("expected a JSON object (one event per line)"),
            Self::MissingField => f.write_str("missing required field"),
            Self::WrongType { expected, found } => write!(f, "expected {expected}, found {found}"),
            Self::Empty => f.write_str("must not be empty"),
            Self::UnknownType(name) => {
                write!(f, "unknown event type {name:?}, expected one of ")?;
                for (i, t) in EventType::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(t.as_str())?;
                }
                Ok(())
            }
            Self::UnsupportedSchema(v) => write!(
                f,
                "unsupported schema version {v}: this build reads schema {CURRENT_SCHEMA}; upgrade tidemark to read it"
            ),
            Self::BadTime(e) => e.fmt(f),
            Self::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match &self.event_id {
            Some(id) => write!(f, "event {id:?}: ")?,
            None => f.write_str("event without a readable id: ")?,
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        self.problem.fmt(f)
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    fn new(event_id: Option<&str>, field: Option<String>, problem: DecodeProblem) -> Self {
        Self {
            line: None,
            event_id: event_id.map(str::to_owned),
            field,
            problem,
        }
    }

    /// The same error, located at a line of a file.
    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
}

/// The envelope's fields, not yet interpreted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "type")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cluster: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    /// Added by the store on read; ignored on input.
    #[serde(borrow, default, rename = "seq")]
    _seq: Option<&'a RawValue>,
    /// Added by the store on read; ignored on input.
    #[serde(borrow, default, rename = "recorded_at")]
    _recorded_at: Option<&'a RawValue>,
}

/// serde_json's message without its " at line L column C" suffix.
fn serde_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Reads just the id of an event that failed to decode as a whole, so the error can name it.
fn salvage_id(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(json).ok()?.id
}

/// Which rules of the wire contract an event is judged by.
///
/// A limit added to the contract refuses new input, but a log is forever: a record that an
/// earlier version accepted (a stream that replicas follow, a log file replayed) must still be
/// read, and the fold reads its value with the limit. Limits added so far:
/// `settings.changed`'s `flap_window_secs` at most
/// [`MAX_FLAP_WINDOW_SECS`](crate::settings::MAX_FLAP_WINDOW_SECS), and `span_retention_secs`
/// likewise; a `cycle.completed` observation's key not starting with
/// [`ALERT_KEY_PREFIX`] (reserved for alerts, ADR 0007).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Contract {
    /// New input (ingest, publish): every rule.
    NewInput,
    /// A record of a log: every rule but the limits added since the contract's first version.
    Logged,
}

/// Decodes one event from JSON bytes (UTF-8).
pub fn decode_event_bytes(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode_event_bytes_under(bytes, Contract::NewInput)
}

/// [`decode_event_bytes`] under the rules of `contract`.
pub fn decode_event_bytes_under(bytes: &[u8], contract: Contract) -> Result<Event, DecodeError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| DecodeError::new(None, None, DecodeProblem::NotUtf8))?;
    decode_event_under(text, contract)
}

/// Decodes and validates one event of new input from its JSON text.
pub fn decode_event(json: &str) -> Result<Event, DecodeError> {
    decode_event_under(json, Contract::NewInput)
}

/// Decodes and validates one event from its JSON text, under the rules of `contract`.
///
/// Two paths, one answer: [`decode_in_one_pass`] reads a valid event in one pass over its text;
/// whatever it does not accept is decoded again by [`decode_naming_errors`], which says what is
/// wrong and where (and decodes what the one pass left, e.g. `data` before `type`).
pub fn decode_event_under(json: &str, contract: Contract) -> Result<Event, DecodeError> {
    match decode_in_one_pass(json, contract) {
        Some(event) => Ok(event),
        None => decode_naming_errors(json, contract),
    }
}

/// The fast path of [`decode_event_under`] (issue 20, ADR 0009): the envelope and, when `type`
/// comes before `data` (as every producer of ours writes it), the payload decoded while the
/// text is read once; `None` for anything it does not accept, which the path naming errors
/// then judges. A valid event's `data` used to be read twice (scanned as raw JSON, then
/// decoded); this reads it once. `tests/wire_paths.rs` checks that the two paths give the same
/// answer on every fixture, corpus event and thousands of damaged ones.
///
/// Public for the test of the two paths' agreement; decode with [`decode_event_under`].
pub fn decode_in_one_pass(json: &str, contract: Contract) -> Option<Event> {
    if !json.trim_start().starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let read = serde::Deserializer::deserialize_map(&mut de, one_pass::EnvelopeVisitor).ok()?;
    de.end().ok()?;
    let non_empty = |text: String| (!text.trim().is_empty()).then_some(text);
    let id = non_empty(read.id?)?;
    if read.schema? != u64::from(CURRENT_SCHEMA) {
        return None;
    }
    let event_type = read.event_type?;
    let time = read.time?;
    if time.trim().is_empty() {
        return None;
    }
    let time = Timestamp::parse_rfc3339(&time).ok()?;
    let source = non_empty(read.source?)?;
    let cluster = non_empty(read.cluster?)?;
    let payload = match (read.payload, read.data) {
        (Some(payload), _) => payload,
        (None, Some(data)) if data.get().starts_with('{') => {
            Payload::decode_json_data(event_type, data.get()).ok()?
        }
        _ => return None,
    };
    validate_payload(&payload, contract).ok()?;
    Some(Event {
        id: EventId(id),
        schema: CURRENT_SCHEMA,
        time,
        source,
        cluster,
        payload,
    })
}

/// The envelope as [`decode_in_one_pass`] reads it: the rules of [`RawEnvelope`] (no unknown
/// field, none twice), with `data` decoded as it is read when its type is known by then.
mod one_pass {
    use serde::Deserializer;
    use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, Visitor};
    use serde_json::value::RawValue;

    use crate::event::{EventType, Payload};

    /// What the pass read; checked afterwards as [`super::decode_naming_errors`] checks it.
    #[derive(Default)]
    pub(super) struct Envelope<'de> {
        pub id: Option<String>,
        pub schema: Option<u64>,
        pub event_type: Option<EventType>,
        pub time: Option<String>,
        pub source: Option<String>,
        pub cluster: Option<String>,
        /// `data`, decoded as read (its `type` came first).
        pub payload: Option<Payload>,
        /// `data`, unread (it came before `type`).
        pub data: Option<&'de RawValue>,
    }

    /// The envelope's fields, in [`RawEnvelope`](super::RawEnvelope)'s order.
    const FIELDS: [&str; 9] = [
        "id",
        "schema",
        "type",
        "time",
        "source",
        "cluster",
        "data",
        "seq",
        "recorded_at",
    ];

    pub(super) struct EnvelopeVisitor;

    impl<'de> Visitor<'de> for EnvelopeVisitor {
        type Value = Envelope<'de>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an event object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
            let mut read = Envelope::default();
            let mut seen = [false; FIELDS.len()];
            // A key with escapes cannot be borrowed: the path naming errors reads it.
            while let Some(key) = map.next_key::<&'de str>()? {
                let Some(field) = FIELDS.iter().position(|f| *f == key) else {
                    return Err(A::Error::unknown_field(key, &FIELDS));
                };
                if std::mem::replace(&mut seen[field], true) {
                    return Err(A::Error::duplicate_field(FIELDS[field]));
                }
                match field {
                    0 => read.id = Some(map.next_value()?),
                    1 => read.schema = Some(map.next_value()?),
                    2 => {
                        let name: &'de str = map.next_value()?;
                        let event_type = EventType::from_wire(name)
                            .ok_or_else(|| A::Error::custom("unknown event type"))?;
                        read.event_type = Some(event_type);
                    }
                    3 => read.time = Some(map.next_value()?),
                    4 => read.source = Some(map.next_value()?),
                    5 => read.cluster = Some(map.next_value()?),
                    6 => match read.event_type {
                        Some(event_type) => {
                            read.payload = Some(map.next_value_seed(PayloadSeed(event_type))?);
                        }
                        None => read.data = Some(map.next_value()?),
                    },
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(read)
        }
    }

    /// The payload of a type, from an object only (as the path naming errors requires `data`
    /// to be one: a struct would otherwise also be read from an array).
    struct PayloadSeed(EventType);

    impl<'de> DeserializeSeed<'de> for PayloadSeed {
        type Value = Payload;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Payload, D::Error> {
            deserializer.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for PayloadSeed {
        type Value = Payload;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Payload, A::Error> {
            Payload::decode_from_object(self.0, map)
        }
    }
}

/// The path of [`decode_event_under`] that names what is wrong: the envelope read as raw
/// values, then each field judged on its own, `data` decoded with its error path.
///
/// Public for the test of the two paths' agreement; decode with [`decode_event_under`].
pub fn decode_naming_errors(json: &str, contract: Contract) -> Result<Event, DecodeError> {
    let first = json.trim_start().as_bytes().first().copied();
    if first.is_some()
        && first != Some(b'{')
        && serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok()
    {
        return Err(DecodeError::new(None, None, DecodeProblem::NotAnObject));
    }
    let raw: RawEnvelope<'_> = match serde_json::from_str(json) {
        Ok(raw) => raw,
        Err(err) => {
            let problem = if err.is_syntax() || err.is_eof() {
                DecodeProblem::Syntax(serde_message(&err))
            } else {
                DecodeProblem::Invalid(serde_message(&err))
            };
            return Err(DecodeError::new(salvage_id(json).as_deref(), None, problem));
        }
    };

    let id = required_string(None, "id", raw.id)?;
    let id_ref = Some(id.as_str());
    let fail =
        |field: &str, problem| Err(DecodeError::new(id_ref, Some(field.to_owned()), problem));

    let schema = match raw.schema {
        None => return fail("schema", DecodeProblem::MissingField),
        Some(value) => match serde_json::from_str::<u64>(value.get()) {
            Ok(v) => v,
            Err(_) => {
                return fail(
                    "schema",
                    DecodeProblem::WrongType {
                        expected: "a positive integer",
                        found: json_kind(value),
                    },
                );
            }
        },
    };
    if schema != u64::from(CURRENT_SCHEMA) {
        return fail("schema", DecodeProblem::UnsupportedSchema(schema));
    }

    let type_name = required_string(id_ref, "type", raw.event_type)?;
    let Some(event_type) = EventType::from_wire(&type_name) else {
        return fail("type", DecodeProblem::UnknownType(type_name));
    };

    let time_text = required_string(id_ref, "time", raw.time)?;
    let time = match Timestamp::parse_rfc3339(&time_text) {
        Ok(t) => t,
        Err(e) => return fail("time", DecodeProblem::BadTime(e)),
    };
    let source = required_string(id_ref, "source", raw.source)?;
    let cluster = required_string(id_ref, "cluster", raw.cluster)?;

    let Some(data) = raw.data else {
        return fail("data", DecodeProblem::MissingField);
    };
    if !data.get().starts_with('{') {
        return fail(
            "data",
            DecodeProblem::WrongType {
                expected: "an object",
                found: json_kind(data),
            },
        );
    }
    let payload = match Payload::decode_json_data(event_type, data.get()) {
        Ok(payload) => payload,
        Err(err) => {
            let path = err.path().to_string();
            let field = if path == "." {
                "data".to_owned()
            } else {
                format!("data.{path}")
            };
            let inner = err.into_inner();
            return fail(&field, DecodeProblem::Invalid(serde_message(&inner)));
        }
    };
    if let Err((field, problem)) = validate_payload(&payload, contract) {
        return fail(&format!("data.{field}"), problem);
    }

    Ok(Event {
        id: EventId(id),
        schema: CURRENT_SCHEMA,
        time,
        source,
        cluster,
        payload,
    })
}

/// A required, non-empty string field of the envelope.
fn required_string(
    event_id: Option<&str>,
    field: &str,
    raw: Option<&RawValue>,
) -> Result<String, DecodeError> {
    let fail = |problem| DecodeError::new(event_id, Some(field.to_owned()), problem);
    let raw = raw.ok_or_else(|| fail(DecodeProblem::MissingField))?;
    let text: String = serde_json::from_str(raw.get()).map_err(|_| {
        fail(DecodeProblem::WrongType {
            expected: "a string",
            found: json_kind(raw),
        })
    })?;
    if text.trim().is_empty() {
        return Err(fail(DecodeProblem::Empty));
    }
    Ok(text)
}

type FieldProblem = (String, DecodeProblem);

fn non_empty(value: &str, field: impl FnOnce() -> String) -> Result<(), FieldProblem> {
    if value.trim().is_empty() {
        Err((field(), DecodeProblem::Empty))
    } else {
        Ok(())
    }
}

fn all_non_empty(values: &[String], list: &str) -> Result<(), FieldProblem> {
    for (i, value) in values.iter().enumerate() {
        non_empty(value, || format!("{list}[{i}]"))?;
    }
    Ok(())
}

/// Rules serde cannot express: non-empty strings, fields required by another field's value,
/// limits (those added since the first contract only for new input).
fn validate_payload(payload: &Payload, contract: Contract) -> Result<(), FieldProblem> {
    match payload {
        Payload::CycleCompleted(cycle) => {
            non_empty(&cycle.cycle, || "cycle".into())?;
            all_non_empty(&cycle.categories, "categories")?;
            for (i, f) in cycle.findings.iter().enumerate() {
                non_empty(&f.check_key, || format!("findings[{i}].check_key"))?;
                if contract == Contract::NewInput && f.check_key.starts_with(ALERT_KEY_PREFIX) {
                    return Err((
                        format!("findings[{i}].check_key"),
                        DecodeProblem::Invalid(format!(
                            "keys starting with {ALERT_KEY_PREFIX:?} are reserved for alerts \
                             (alert.fired / alert.resolved): choose another key"
                        )),
                    ));
                }
                non_empty(&f.category, || format!("findings[{i}].category"))?;
                non_empty(&f.title, || format!("findings[{i}].title"))?;
                if let Some(r) = &f.resource {
                    non_empty(&r.kind, || format!("findings[{i}].resource.kind"))?;
                    non_empty(&r.name, || format!("findings[{i}].resource.name"))?;
                }
            }
        }
        Payload::FindingResolved(resolved) => {
            non_empty(&resolved.check_key, || "check_key".into())?;
            if resolved.kind == ManualResolutionKind::Recipe
                && resolved
                    .recipe
                    .as_deref()
                    .is_none_or(|r| r.trim().is_empty())
            {
                return Err((
                    "recipe".into(),
                    DecodeProblem::Invalid(
                        "required when kind is \"recipe\": name the recipe".into(),
                    ),
                ));
            }
        }
        Payload::SettingsChanged(settings) => {
            if let Some(Some(categories)) = &settings.enabled_categories {
                all_non_empty(categories, "enabled_categories")?;
            }
            if contract == Contract::NewInput
                && let Some(window) = settings.flap_window_secs
                && window > MAX_FLAP_WINDOW_SECS
            {
                return Err((
                    "flap_window_secs".into(),
                    DecodeProblem::Invalid(format!(
                        "{window} is above the limit of {MAX_FLAP_WINDOW_SECS} seconds (30 days): \
                         send a window of at most {MAX_FLAP_WINDOW_SECS}"
                    )),
                ));
            }
            if let Some(stale_after) = settings.alert_stale_after_secs
                && !(1..=MAX_ALERT_STALE_AFTER_SECS).contains(&stale_after)
            {
                return Err((
                    "alert_stale_after_secs".into(),
                    DecodeProblem::Invalid(format!(
                        "{stale_after} is outside 1 to {MAX_ALERT_STALE_AFTER_SECS} seconds (30 \
                         days): send how long a firing alert may go without a notification"
                    )),
                ));
            }
            if let Some(retention) = settings.span_retention_secs
                && retention > MAX_SPAN_RETENTION_SECS
            {
                return Err((
                    "span_retention_secs".into(),
                    DecodeProblem::Invalid(format!(
                        "{retention} is above the limit of {MAX_SPAN_RETENTION_SECS} seconds (30 \
                         days): send a retention of at most {MAX_SPAN_RETENTION_SECS}"
                    )),
                ));
            }
            let percents = [
                ("flap_start_percent", settings.flap_start_percent),
                ("flap_stop_percent", settings.flap_stop_percent),
            ];
            for (field, value) in percents {
                if let Some(value) = value
                    && !(1..=100).contains(&value)
                {
                    return Err((
                        field.into(),
                        DecodeProblem::Invalid(format!("{value} is not a percent from 1 to 100")),
                    ));
                }
            }
            if let (Some(start), Some(stop)) =
                (settings.flap_start_percent, settings.flap_stop_percent)
                && stop > start
            {
                return Err((
                    "flap_stop_percent".into(),
                    DecodeProblem::Invalid(format!(
                        "{stop} is above flap_start_percent {start}: the stop threshold must not be higher than the start threshold"
                    )),
                ));
            }
            let counts = [
                (
                    "unreachable_after_cycles",
                    settings.unreachable_after_cycles,
                ),
                ("orphan_confirm_scans", settings.orphan_confirm_scans),
            ];
            for (field, value) in counts {
                if value == Some(0) {
                    return Err((
                        field.into(),
                        DecodeProblem::Invalid("must be at least 1".into()),
                    ));
                }
            }
            if let Some(kinds) = &settings.orphan_consumer_kinds {
                all_non_empty(kinds, "orphan_consumer_kinds")?;
            }
        }
        Payload::InventoryObserved(scan) => {
            non_empty(&scan.scan, || "scan".into())?;
            all_non_empty(&scan.kinds, "kinds")?;
            for (i, r) in scan.resources.iter().enumerate() {
                non_empty(&r.uid, || format!("resources[{i}].uid"))?;
                non_empty(&r.kind, || format!("resources[{i}].kind"))?;
                non_empty(&r.name, || format!("resources[{i}].name"))?;
            }
        }
        Payload::TrackingUpserted(t) | Payload::TrackingDeleted(t) => {
            non_empty(&t.kind, || "kind".into())?;
            non_empty(&t.key, || "key".into())?;
        }
        Payload::SpanRecorded(span) => {
            non_empty(&span.trace_id, || "trace_id".into())?;
            non_empty(&span.span_id, || "span_id".into())?;
            non_empty(&span.name, || "name".into())?;
            non_empty(&span.service, || "service".into())?;
        }
        Payload::AlertFired(alert) | Payload::AlertResolved(alert) => {
            non_empty(&alert.fingerprint, || "fingerprint".into())?;
            non_empty(&alert.name, || "name".into())?;
        }
        Payload::ChangeDeployed(change) => {
            non_empty(&change.service, || "service".into())?;
            non_empty(&change.version, || "version".into())?;
            all_non_empty(&change.check_keys, "check_keys")?;
        }
        Payload::NoteAdded(note) => {
            non_empty(&note.author, || "author".into())?;
            non_empty(&note.text, || "text".into())?;
            all_non_empty(&note.check_keys, "check_keys")?;
        }
        Payload::IncidentOpened(incident) => {
            non_empty(&incident.incident, || "incident".into())?;
            match &incident.title {
                Some(title) => non_empty(title, || "title".into())?,
                None => return Err(("title".into(), DecodeProblem::MissingField)),
            }
        }
        Payload::IncidentUpdated(incident) | Payload::IncidentClosed(incident) => {
            non_empty(&incident.incident, || "incident".into())?;
        }
        Payload::MaintenanceScheduled(window) => validate_maintenance(window)?,
        Payload::MaintenanceCancelled(cancel) => {
            non_empty(&cancel.window, || "window".into())?;
            window_name_within_limit(&cancel.window)?;
            non_empty(&cancel.by, || "by".into())?;
            if let Some(reason) = &cancel.reason {
                non_empty(reason, || "reason".into())?;
            }
        }
    }
    Ok(())
}

/// A window's name is at most [`MAX_WINDOW_NAME_CHARS`] characters (as the schema counts them).
fn window_name_within_limit(name: &str) -> Result<(), FieldProblem> {
    let chars = name.chars().count();
    if chars > MAX_WINDOW_NAME_CHARS {
        return Err((
            "window".into(),
            DecodeProblem::Invalid(format!(
                "{chars} characters, above the limit of {MAX_WINDOW_NAME_CHARS}: name the window shorter"
            )),
        ));
    }
    Ok(())
}

/// A `maintenance.scheduled` event's rules: names and matchers not blank, a span that ends after
/// it starts, and `time_intervals` specs that Alertmanager's rules accept (with Tidemark's three
/// stricter ones: `crate::maintenance::time_intervals`).
fn validate_maintenance(window: &MaintenanceScheduled) -> Result<(), FieldProblem> {
    non_empty(&window.window, || "window".into())?;
    window_name_within_limit(&window.window)?;
    non_empty(&window.by, || "by".into())?;
    non_empty(&window.reason, || "reason".into())?;
    let m = &window.matchers;
    let named = [
        ("namespace", &m.namespace),
        ("service", &m.service),
        ("alert_name", &m.alert_name),
        ("check_key", &m.check_key),
    ];
    for (field, value) in named {
        if let Some(value) = value {
            non_empty(value, || format!("matchers.{field}"))?;
        }
    }
    for name in m.labels.keys() {
        non_empty(name, || "matchers.labels".into())?;
    }
    match &window.schedule {
        MaintenanceSchedule::Once(span) => {
            if span.ends_at <= span.starts_at {
                return Err((
                    "schedule.once.ends_at".into(),
                    DecodeProblem::Invalid(format!(
                        "{} is not after starts_at {}: a window must end after it starts",
                        span.ends_at, span.starts_at
                    )),
                ));
            }
        }
        MaintenanceSchedule::TimeIntervals(specs) => {
            if specs.is_empty() || specs.len() > MAX_TIME_INTERVALS {
                return Err((
                    "schedule.time_intervals".into(),
                    DecodeProblem::Invalid(format!(
                        "lists {} specs: give 1 to {MAX_TIME_INTERVALS}",
                        specs.len()
                    )),
                ));
            }
            for (i, spec) in specs.iter().enumerate() {
                if let Err(error) = spec.parse() {
                    return Err((
                        format!("schedule.time_intervals[{i}]"),
                        DecodeProblem::Invalid(format!("time interval refused: {error}")),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// JSON goes through the validating decoder; compact formats (postcard) read the positional form.
///
/// The JSON is taken as raw text (`RawValue`: checked for syntax, not built into a tree) and
/// decoded once, by [`decode_event`].
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let raw = Box::<RawValue>::deserialize(deserializer)?;
            decode_event(raw.get()).map_err(serde::de::Error::custom)
        } else {
            Event::deserialize_compact(deserializer)
        }
    }
}

/// Encodes an event in the wire format, as one line of JSON.
pub fn encode_event(event: &Event) -> String {
    serde_json::to_string(event).expect("events always serialize to JSON")
}

/// One line of NDJSON new input: `None` for a blank line, else the decoded event or an error
/// that names the line.
pub fn decode_ndjson_line(line_number: u64, line: &str) -> Option<Result<Event, DecodeError>> {
    decode_ndjson_line_under(line_number, line, Contract::NewInput)
}

/// [`decode_ndjson_line`] under the rules of `contract`.
pub fn decode_ndjson_line_under(
    line_number: u64,
    line: &str,
    contract: Contract,
) -> Option<Result<Event, DecodeError>> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return None;
    }
    Some(decode_event_under(trimmed, contract).map_err(|e| e.at_line(line_number)))
}
