//! How a handler describes itself: each of its inputs (query string, path, body) and its output
//! (statuses, media types, schemas) adds its part of the operation, so the document follows the
//! types the handler takes and returns, as axum's extractors follow them for requests.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use schemars::JsonSchema;
use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The schema generators of one document: responses as the API writes them (references into
/// `components/schemas`), query strings as the API reads them (inline, one parameter per
/// property).
#[derive(Debug)]
pub(crate) struct Schemas {
    responses: SchemaGenerator,
    queries: SchemaGenerator,
}

impl Schemas {
    pub(crate) fn new() -> Self {
        let settings = |contract: Contract| {
            SchemaSettings::draft2020_12().with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
                s.contract = contract;
            })
        };
        Self {
            responses: settings(Contract::Serialize).into_generator(),
            queries: settings(Contract::Deserialize)
                .with(|s| s.inline_subschemas = true)
                .into_generator(),
        }
    }

    /// The schema of `T` as the API writes it: a reference to its component, or inline for
    /// types that are always inlined.
    pub(crate) fn response<T: JsonSchema>(&mut self) -> Value {
        self.responses.subschema_for::<T>().to_value()
    }

    /// The schema of `T` as a query string is read into it, with every subschema inline.
    pub(crate) fn query<T: JsonSchema>(&mut self) -> Value {
        self.queries.root_schema_for::<T>().to_value()
    }

    /// The components the responses referred to.
    pub(crate) fn into_components(mut self) -> Map<String, Value> {
        self.responses.take_definitions(true)
    }
}

/// What the document says of one operation beyond its path, method and names; filled by the
/// handler's inputs and output (later ones override a status earlier ones described).
#[derive(Debug, Default)]
pub(crate) struct OperationDoc {
    /// Query parameters (path parameters come from the path template).
    pub(crate) parameters: Vec<Value>,
    /// `requestBody`.
    pub(crate) request_body: Option<Value>,
    /// Responses by status.
    pub(crate) responses: BTreeMap<u16, Value>,
}

impl OperationDoc {
    /// A response with `content` given as (media type, schema) pairs.
    pub(crate) fn respond(&mut self, status: u16, description: &str, content: &[(&str, Value)]) {
        let content: Map<String, Value> = content
            .iter()
            .map(|(media, schema)| ((*media).to_owned(), json!({ "schema": schema })))
            .collect();
        self.responses.insert(
            status,
            json!({"description": description, "content": content}),
        );
    }

    /// A JSON response of `schema`.
    pub(crate) fn json(&mut self, status: u16, description: &str, schema: Value) {
        self.respond(status, description, &[("application/json", schema)]);
    }

    /// A text (or binary) response of `media`.
    pub(crate) fn text(&mut self, status: u16, description: &str, media: &str) {
        self.respond(status, description, &[(media, json!({"type": "string"}))]);
    }

    /// An error response: [`ApiError`]'s JSON.
    pub(crate) fn error(&mut self, status: u16, description: &str) {
        self.json(
            status,
            description,
            json!({"$ref": "#/components/schemas/Error"}),
        );
    }

    /// The query parameters of a query string read into a type of this (object) schema: one
    /// parameter per property, required when the type requires it. An absent parameter is
    /// simply left out, so `null` is no value a parameter takes.
    pub(crate) fn query_parameters(&mut self, schema: &Value) {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(properties) = schema["properties"].as_object() else {
            return;
        };
        for (name, schema) in properties {
            let mut schema = without_null(schema.clone());
            let description = schema.as_object_mut().and_then(|o| o.remove("description"));
            let mut parameter = json!({
                "name": name, "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": schema,
            });
            if let Some(description) = description {
                parameter["description"] = description;
            }
            self.parameters.push(parameter);
        }
    }
}

/// A parameter's schema without the `null` an `Option` adds (`type: [T, "null"]`, a `null` in
/// its `enum`, `anyOf: [T, {type: null}]`, `default: null`).
fn without_null(mut schema: Value) -> Value {
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    // An absent parameter is no `null`: its default says nothing (and `null` is no value the
    // parameter's schema allows).
    if object.get("default").is_some_and(Value::is_null) {
        object.remove("default");
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(alternatives)) = object.get("anyOf") {
        let rest: Vec<&Value> = alternatives
            .iter()
            .filter(|a| **a != json!({"type": "null"}))
            .collect();
        if let [only] = rest[..] {
            let mut merged = only.clone();
            if let (Some(merged), Some(description)) =
                (merged.as_object_mut(), object.get("description"))
            {
                merged.insert("description".into(), description.clone());
            }
            return merged;
        }
    }
    schema
}

/// An input of a handler (an extractor) that shows in the document: a query string, a request
/// body. Extractors that show nothing (state, headers) describe nothing.
pub(crate) trait DescribeInput {
    /// Adds this input's part of the operation.
    fn describe(_schemas: &mut Schemas, _operation: &mut OperationDoc) {}
}

/// What a handler answers: its statuses, media types and schemas.
pub(crate) trait DescribeOutput {
    /// Adds this output's responses to the operation.
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc);
}

impl<S> DescribeInput for State<S> {}
impl<T> DescribeInput for Extension<T> {}
impl DescribeInput for HeaderMap {}
impl<T: DescribeInput> DescribeInput for Option<T> {
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc) {
        T::describe(schemas, operation);
    }
}

impl<T: JsonSchema> DescribeOutput for Json<T> {
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc) {
        let schema = schemas.response::<T>();
        operation.json(200, "success", schema);
    }
}

/// Errors are described for every operation (see `openapi::document`); the success is `T`'s.
impl<T: DescribeOutput> DescribeOutput for Result<T, ApiError> {
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc) {
        T::describe(schemas, operation);
    }
}

/// A handler function whose every argument is a [`DescribeInput`] and whose answer is a
/// [`DescribeOutput`]: it describes its operation from its signature. `Inputs` is the tuple of
/// its argument types (as axum's `Handler` has its own).
pub(crate) trait DescribedHandler<Inputs> {
    /// Adds the handler's inputs and output to the operation.
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc);
}

macro_rules! described_handler {
    ($($input:ident),*) => {
        impl<F, Answer, $($input,)*> DescribedHandler<($($input,)*)> for F
        where
            F: FnOnce($($input),*) -> Answer,
            Answer: Future,
            Answer::Output: DescribeOutput,
            $($input: DescribeInput,)*
        {
            fn describe(schemas: &mut Schemas, operation: &mut OperationDoc) {
                $(<$input as DescribeInput>::describe(schemas, operation);)*
                <Answer::Output as DescribeOutput>::describe(schemas, operation);
            }
        }
    };
}

described_handler!();
described_handler!(A);
described_handler!(A, B);
described_handler!(A, B, C);
described_handler!(A, B, C, D);
