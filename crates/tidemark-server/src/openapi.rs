//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of every route, generated from the types the
//! handlers take and return (their JSON Schemas come from `schemars` derives), so the document
//! cannot describe a shape the code does not produce. A test checks that every route the router
//! registers is documented.

use std::sync::OnceLock;

use axum::Json;
use axum::response::IntoResponse;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};
use tidemark_core::orphans::OrphanGraph;

use crate::pages::{AtQuery, PostmortemQuery};
use crate::query::{
    EventsQuery, EventsResponse, FindingQuery, FindingResponse, FindingsQuery, FindingsResponse,
    FlapsResponse, GraphQuery, IncidentQuery, IncidentResponse, IncidentTimelineQuery,
    IncidentTimelineResponse, IncidentsQuery, IncidentsResponse, ListQuery, OrphansQuery,
    OrphansResponse, StuckQuery, StuckResponse,
};

/// What a response body is.
enum Body {
    /// JSON of this schema.
    Json(Schema),
    /// Text of this media type.
    Text(&'static str),
    /// One of these media types (JSON ones with their schema, others text).
    Either(Vec<(&'static str, Option<Schema>)>),
}

/// One documented operation.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    scope: &'static str,
    /// Query parameters: the properties of this schema.
    query: Option<Schema>,
    request: Option<(&'static str, Schema)>,
    ok: (u16, Body),
}

struct Builder {
    responses: SchemaGenerator,
    queries: SchemaGenerator,
    operations: Vec<Operation>,
}

/// A schema written by hand (an object or a boolean).
fn schema(value: Value) -> Schema {
    Schema::try_from(value).expect("hand-written schemas are objects")
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable, machine-readable"},
            "message": {"type": "string", "description": "for people: what was wrong and what to do"}
        }
    })
}

impl Builder {
    fn new() -> Self {
        let settings = |serialize: bool| {
            SchemaSettings::draft2020_12().with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
                if serialize {
                    s.contract = schemars::generate::Contract::Serialize;
                }
            })
        };
        Self {
            responses: settings(true).into_generator(),
            queries: settings(false)
                .with(|s| s.inline_subschemas = true)
                .into_generator(),
            operations: Vec::new(),
        }
    }

    fn json<T: JsonSchema>(&mut self) -> Body {
        Body::Json(self.responses.subschema_for::<T>())
    }

    fn query<Q: JsonSchema>(&mut self) -> Option<Schema> {
        Some(self.queries.root_schema_for::<Q>())
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
        &mut self,
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        scope: &'static str,
        query: Option<Schema>,
        request: Option<(&'static str, Schema)>,
        ok: (u16, Body),
    ) {
        self.operations.push(Operation {
            method,
            path,
            summary,
            scope,
            query,
            request,
            ok,
        });
    }

    fn document(mut self) -> Value {
        let mut paths = Map::new();
        for op in &self.operations {
            let mut parameters: Vec<Value> = Vec::new();
            for segment in op.path.split('/') {
                if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    parameters.push(json!({
                        "name": name, "in": "path", "required": true,
                        "schema": {"type": "string", "minLength": 1}
                    }));
                }
            }
            if let Some(query) = &op.query {
                let value = query.as_value();
                let required: Vec<&str> = value["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(properties) = value["properties"].as_object() {
                    for (name, schema) in properties {
                        let mut schema = schema.clone();
                        let description = schema
                            .as_object_mut()
                            .and_then(|o| o.remove("description"))
                            .unwrap_or(Value::Null);
                        let mut parameter = json!({
                            "name": name, "in": "query",
                            "required": required.contains(&name.as_str()),
                            "schema": schema,
                        });
                        if !description.is_null() {
                            parameter["description"] = description;
                        }
                        parameters.push(parameter);
                    }
                }
            }
            let (status, body) = &op.ok;
            let content = match body {
                Body::Json(schema) => json!({"application/json": {"schema": schema}}),
                Body::Text(media) => json!({*media: {"schema": {"type": "string"}}}),
                Body::Either(media) => {
                    let mut content = Map::new();
                    for (media, schema) in media {
                        let schema = schema
                            .as_ref()
                            .map_or_else(|| json!({"type": "string"}), |s| s.as_value().clone());
                        content.insert((*media).to_owned(), json!({ "schema": schema }));
                    }
                    Value::Object(content)
                }
            };
            let mut responses = json!({
                status.to_string(): {"description": "success", "content": content},
                "400": {"description": "a parameter or the body is malformed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "no token or an unknown one (when tokens are configured)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "403": {"description": "a read token on a write route", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "404": {"description": "no such thing", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "500": {"description": "the server failed; its log has the details", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "410": {"description": "`at` is before this replica's retained local log (the events live in the JetStream stream)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "503": {"description": "the store cannot answer now, too many past states (`at`) are being rebuilt (`time_travel_busy`), or too many connections are open (`too_many_connections`): retry, after `Retry-After` seconds when it is sent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            });
            if op.request.is_some() {
                let refused_whole = if op.path == "/v1/events" {
                    "the body cannot be read as events at all: empty, not UTF-8, or not JSON (framed as one event or an array, it does not parse; an NDJSON line that does not is one rejected item, 422): nothing was stored"
                } else {
                    "the payload is not an Alertmanager version 4 webhook: nothing was stored, the payload is kept in quarantine once"
                };
                responses["400"] = json!({"description": refused_whole, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
                responses["413"] = json!({"description": "the body is larger than the limit (`payload_too_large`, `--max-body-bytes`), or holds more items than the limit (`too_many_items`, `--max-items-per-request`): nothing was stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
                responses["422"] = json!({"description": "some items were invalid: the rest were stored, the invalid ones quarantined", "content": {"application/json": {"schema": {"type": "object"}}}});
                responses["507"] = json!({"description": "the disk is full: nothing of the request was stored; send it again after `Retry-After` seconds (reads keep working)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
                responses["408"] = json!({"description": "the body did not arrive within the body read timeout (`--body-read-timeout`); nothing of it was stored: send it again", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
                responses["415"] = json!({"description": "the Content-Type is not one the route takes (POST /v1/events: `application/json` or `application/x-ndjson`; the Alertmanager bridge: `application/json`); nothing was read or stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
            }
            if matches!(
                op.path,
                "/" | "/incidents/{id}" | "/findings/{cluster}/{check_key}"
            ) {
                // Pages answer their own 404 as HTML.
                responses["404"] = json!({"description": "no such thing", "content": {"text/html": {"schema": {"type": "string"}}}});
            }
            let mut operation = json!({
                "summary": op.summary,
                "operationId": format!("{} {}", op.method, op.path),
                "parameters": parameters,
                "responses": responses,
                "x-tidemark-scope": op.scope,
            });
            if let Some((media, schema)) = &op.request {
                operation["requestBody"] =
                    json!({"required": true, "content": {*media: {"schema": schema}}});
            }
            if op.scope != "none" {
                operation["security"] = json!([{"bearer": []}, {}]);
            }
            let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
            entry[op.method] = operation;
        }
        let mut schemas = self.responses.take_definitions(true);
        schemas.insert("Error".into(), error_schema());
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Tidemark",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "An event-sourced incident timeline store: ingest events, read findings, flaps, stuck findings, orphans and incidents, now or at any point of the log (`at`), and export postmortems. Lists are paged: pass `next` back as `after`."
            },
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "read tokens for GET, write tokens for POST; not required when the server runs without tokens on loopback. Browsers may send a token as the `tidemark_token` cookie, which grants reading only"}}
            }
        })
    }
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let mut b = Builder::new();
    let events_body = schemars::json_schema!({
        "description": "one event or a JSON array of events as `application/json`, or NDJSON (one event per line) as `application/x-ndjson`; other content types are answered 415",
        "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
    });
    let ndjson = schemars::json_schema!({"type": "string"});
    let object = schemars::json_schema!({"type": "object"});

    let r = b.json::<EventsResponse>();
    let q = b.query::<EventsQuery>();
    b.op(
        "get",
        "/v1/events",
        "Events in log order, filtered, paged",
        "read",
        q,
        None,
        (200, r),
    );
    let r = Body::Json(schema(ingest_answer()));
    b.op(
        "post",
        "/v1/events",
        "Ingest events (one, an array, or NDJSON)",
        "write",
        None,
        Some(("application/json", events_body)),
        (200, r),
    );
    let _ = ndjson;
    let r = b.json::<FindingsResponse>();
    let q = b.query::<FindingsQuery>();
    b.op(
        "get",
        "/v1/findings",
        "Findings, filtered, paged by (cluster, check_key)",
        "read",
        q,
        None,
        (200, r),
    );
    let r = b.json::<FindingResponse>();
    let q = b.query::<FindingQuery>();
    b.op(
        "get",
        "/v1/findings/{cluster}/{check_key}",
        "One finding: history, flap episodes, a page of its timeline",
        "read",
        q,
        None,
        (200, r),
    );
    let r = b.json::<FlapsResponse>();
    let q = b.query::<ListQuery>();
    b.op(
        "get",
        "/v1/flaps",
        "Flapping findings, unstable check keys, churn",
        "read",
        q,
        None,
        (200, r),
    );
    let r = b.json::<StuckResponse>();
    let q = b.query::<StuckQuery>();
    b.op(
        "get",
        "/v1/stuck",
        "Unreachable findings, drift suspects, long-lived ones",
        "read",
        q,
        None,
        (200, r),
    );
    let r = b.json::<OrphansResponse>();
    let q = b.query::<OrphansQuery>();
    b.op(
        "get",
        "/v1/orphans",
        "Confirmed orphans (and candidates), paged",
        "read",
        q,
        None,
        (200, r),
    );
    let graph = b.responses.subschema_for::<OrphanGraph>();
    let r = Body::Either(vec![
        ("application/json", Some(graph)),
        ("text/vnd.graphviz", None),
    ]);
    let q = b.query::<GraphQuery>();
    b.op(
        "get",
        "/v1/orphans/graph",
        "The resource graph with its orphans (JSON, or DOT with format=dot)",
        "read",
        q,
        None,
        (200, r),
    );
    let r = b.json::<IncidentsResponse>();
    let q = b.query::<IncidentsQuery>();
    b.op(
        "get",
        "/v1/incidents",
        "Incidents in the order they opened, paged",
        "read",
        q,
        None,
        (200, r),
    );
    let r = b.json::<IncidentResponse>();
    let q = b.query::<IncidentQuery>();
    b.op(
        "get",
        "/v1/incidents/{id}",
        "One incident",
        "read",
        q,
        None,
        (200, r),
    );
    let r = b.json::<IncidentTimelineResponse>();
    let q = b.query::<IncidentTimelineQuery>();
    b.op(
        "get",
        "/v1/incidents/{id}/timeline",
        "An incident's timeline with its events, paged",
        "read",
        q,
        None,
        (200, r),
    );
    let q = b.query::<PostmortemQuery>();
    b.op(
        "get",
        "/v1/incidents/{id}/postmortem",
        "The postmortem: Markdown, HTML or JSON",
        "read",
        q,
        None,
        (
            200,
            Body::Either(vec![
                ("text/markdown", None),
                ("text/html", None),
                ("application/json", Some(schema(json!({"type": "object"})))),
            ]),
        ),
    );
    let r = Body::Json(schema(ingest_answer()));
    let alertmanager = schema(json!({
        "type": "object",
        "description": "Alertmanager's webhook payload, version 4",
        "required": ["version", "alerts"],
        "properties": {
            "version": {"const": "4"},
            "commonLabels": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
            "alerts": {"type": "array", "items": {
                "description": "An alert as Alertmanager sends it: `status` (`firing` or `resolved`), `labels` and `annotations` (objects of strings; an alert without `alertname` is named `unnamed-` + its fingerprint), `startsAt`, `endsAt` (read when resolved; RFC 3339, years 1678 to 2261), `fingerprint` (computed from the labels when missing or null). Each alert is translated on its own, so no shape is required here: an alert that cannot become an event is rejected alone (its result says why, it is quarantined once) and the answer is still 200."
            }}
        }
    }));
    b.op(
        "post",
        "/v1/bridges/alertmanager",
        "Alertmanager webhook (version 4): alerts become alert.fired / alert.resolved events, each on its own (200 with each alert's result; an alert that cannot be translated is rejected alone and quarantined once)",
        "write",
        None,
        Some(("application/json", alertmanager)),
        (200, r),
    );
    let _ = object;
    let r = Body::Json(schema(json!({
        "type": "object", "required": ["timeline", "next"],
        "properties": {
            "timeline": {"type": "array", "items": {"type": "object"}},
            "next": {"type": ["string", "null"], "description": "Pass as `after` for the next page; null when there are no more."}
        }
    })));
    b.op(
        "get",
        "/v1/timeline",
        "A cluster's events by event time",
        "read",
        b_query_timeline(),
        None,
        (200, r),
    );
    let r = Body::Json(schema(json!({
        "type": "object", "required": ["quarantine", "next"],
        "properties": {
            "quarantine": {"type": "array", "items": {
                "type": "object",
                "description": "a refused input, kept once however often it was refused",
                "required": ["id", "recorded_at", "origin", "reason", "raw", "raw_bytes", "count", "last_seen"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "recorded_at": {"type": "string"},
                    "origin": {"type": "string", "description": "where it was first refused"},
                    "reason": {"type": "string"},
                    "raw": {"type": "string"},
                    "raw_bytes": {"type": "integer", "minimum": 0},
                    "count": {"type": "integer", "minimum": 1, "description": "how often the same bytes were refused for the same reason"},
                    "last_seen": {"type": "string"}
                }
            }},
            "next": {"type": ["integer", "null"], "minimum": 1, "description": "Pass as `after` for the next page; null when there are no more."}
        }
    })));
    b.op(
        "get",
        "/v1/quarantine",
        "Inputs that could not be decoded or validated, with their reasons",
        "read",
        b_query_quarantine(),
        None,
        (200, r),
    );
    b.op(
        "get",
        "/v1/openapi.json",
        "This document",
        "read",
        None,
        None,
        (200, Body::Json(schemars::json_schema!({"type": "object"}))),
    );
    let q = b.query::<AtQuery>();
    b.op(
        "get",
        "/",
        "Web: the incidents",
        "read",
        q,
        None,
        (200, Body::Text("text/html")),
    );
    let q = b.query::<AtQuery>();
    b.op(
        "get",
        "/incidents/{id}",
        "Web: one incident's lanes and timeline",
        "read",
        q,
        None,
        (200, Body::Text("text/html")),
    );
    b.op(
        "get",
        "/findings/{cluster}/{check_key}",
        "Web: one finding's history",
        "read",
        None,
        None,
        (200, Body::Text("text/html")),
    );
    let q = b.query::<AtQuery>();
    b.op(
        "get",
        "/orphans",
        "Web: the orphans and the resource graph",
        "read",
        q,
        None,
        (200, Body::Text("text/html")),
    );
    b.op(
        "get",
        "/v1/admin/backup",
        "A consistent copy of the store (a redb file, from one read transaction); needs the write scope",
        "write",
        None,
        None,
        (200, Body::Text("application/octet-stream")),
    );
    b.op(
        "get",
        "/healthz",
        "The process answers",
        "none",
        None,
        None,
        (200, Body::Json(schemars::json_schema!({"type": "object"}))),
    );
    b.op(
        "get",
        "/readyz",
        "Ready to serve (embedded: the writer runs; replica: caught up)",
        "none",
        None,
        None,
        (200, Body::Json(schemars::json_schema!({"type": "object"}))),
    );
    b.op(
        "get",
        "/metrics",
        "Prometheus metrics",
        "read",
        None,
        None,
        (200, Body::Text("text/plain")),
    );
    b.document()
}

fn b_query_timeline() -> Option<Schema> {
    Some(schemars::json_schema!({
        "type": "object", "required": ["cluster"],
        "properties": {
            "cluster": {"type": "string", "description": "The cluster."},
            "since": {"type": "string", "pattern": crate::query::TIME_PATTERN, "description": "Event time at or after (RFC 3339)."},
            "until": {"type": "string", "pattern": crate::query::TIME_PATTERN, "description": "Event time at or before (RFC 3339)."},
            "after": {"type": "string", "pattern": crate::query::TIMELINE_CURSOR_PATTERN, "description": "The `next` of the previous page."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "At most this many (default 100)."}
        }
    }))
}

/// The answer to an ingest request (embedded mode): counts, each item's outcome (every accepted
/// and duplicate item, the first `--max-rejected-listed` rejected ones) and the rejected ones
/// counted by reason.
fn ingest_answer() -> Value {
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "type": "object",
        "description": "accepted, duplicates, rejected; `results` lists every accepted and duplicate item and the first `--max-rejected-listed` (100) rejected ones, `rejected_not_listed` counts the rest and `rejected_reasons` counts every rejected item by what is wrong with it; `raw_not_kept` counts rejected items whose raw bytes the full quarantine did not keep",
        "properties": {
            "accepted": count, "duplicates": count, "rejected": count,
            "raw_not_kept": count, "rejected_not_listed": count,
            "results": {"type": "array", "items": {
                "type": "object",
                "required": ["index", "status"],
                "properties": {
                    "index": count,
                    "line": {"type": "integer", "minimum": 1, "description": "its NDJSON line"},
                    "id": {"type": ["string", "null"]},
                    "name": {"type": "string", "description": "the alert's name (bridge)"},
                    "name_derived": {"type": "boolean", "description": "the alert had no `alertname`"},
                    "status": {"enum": ["accepted", "duplicate", "rejected"]},
                    "seq": count,
                    "reason": {"type": "string"},
                    "quarantine_id": {"type": "integer", "minimum": 1},
                    "raw_kept": {"type": "boolean", "description": "false when the quarantine was full and the raw item was not kept"}
                }
            }},
            "rejected_reasons": {"type": "array", "items": {
                "type": "object",
                "required": ["reason", "count"],
                "properties": {"reason": {"type": "string"}, "count": count}
            }}
        }
    })
}

fn b_query_quarantine() -> Option<Schema> {
    Some(schemars::json_schema!({
        "type": "object",
        "properties": {
            "after": {"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_u64, "description": "Inputs after this quarantine id (the `next` of the previous page)."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "At most this many (default 100)."}
        }
    }))
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    Json(document().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route("PATH", get(..).post(..))` of `lib.rs`, as (method, documented path).
    fn registered_routes() -> Vec<(String, String)> {
        let source = include_str!("lib.rs");
        let router = &source[source.find("pub fn router").expect("router fn")..];
        let router = &router[..router.find("\n}\n").expect("end of router fn")];
        let v1_end = router.find(".nest(\"/v1\"").expect("v1 nest");
        let mut routes = Vec::new();
        let mut rest = router;
        let mut offset = 0;
        while let Some(at) = rest.find(".route(") {
            let start = at + ".route(".len();
            let call = &rest[start..];
            // The balanced arguments of this call.
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in call.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &call[..end];
            let path = args.split('"').nth(1).expect("a path literal").to_owned();
            let prefix = if offset + at < v1_end { "/v1" } else { "" };
            let path = format!("{prefix}{path}").replace("{*", "{");
            let path = if path == "/v1/" { "/v1".into() } else { path };
            for method in ["get", "post", "put", "delete", "patch"] {
                let needle = format!("{method}(");
                let found = args.match_indices(&needle).any(|(i, _)| {
                    i == 0
                        || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && args.as_bytes()[i - 1] != b'_'
                });
                if found {
                    routes.push((method.to_owned(), path.clone()));
                }
            }
            offset += start + end;
            rest = &call[end..];
        }
        routes.sort();
        routes
    }

    #[test]
    fn every_route_is_documented_and_nothing_else_is() {
        let doc = document();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.clone(), path.clone()))
            })
            .collect();
        documented.sort();
        let registered = registered_routes();
        assert!(registered.len() >= 20, "{registered:?}");
        assert_eq!(documented, registered);
    }

    #[test]
    fn the_document_is_openapi_3_1_with_resolvable_references() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (i, _) in text.match_indices("\"$ref\":\"#/components/schemas/") {
            let name: String = text[i + "\"$ref\":\"#/components/schemas/".len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            assert!(schemas.contains_key(&name), "dangling reference to {name}");
        }
        assert!(schemas.contains_key("FindingView") && schemas.contains_key("IncidentView"));
        // Every operation that takes a body documents the 415 of a wrong content type.
        for path in ["/v1/events", "/v1/bridges/alertmanager"] {
            assert!(
                doc["paths"][path]["post"]["responses"]["415"].is_object(),
                "{path}"
            );
        }
        // Query parameters carry their descriptions and types.
        let params = doc["paths"]["/v1/events"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "type" && p["in"] == "query")
        );
    }
}
