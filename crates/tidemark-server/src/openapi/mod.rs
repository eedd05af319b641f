//! The route table's row type and the OpenAPI 3.1 document built from the table.
//!
//! A [`Route`] is a path, a method, its operation's id and summary, and its handler. The router
//! (`router` in `lib.rs`) and the document ([`document`]) are both built from the one list of
//! routes in the `routes` module, so a route cannot be served undocumented or documented
//! unserved. What an operation takes and answers comes from the handler's own types
//! ([`describe`]): its query type's schema gives the query parameters, its body extractor the
//! request body, its answer type the success response; the path template names the path
//! parameters; the scope comes from the rule `auth` enforces.

mod describe;
mod schemas;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};

pub(crate) use describe::{DescribeInput, DescribeOutput, DescribedHandler, OperationDoc, Schemas};

use crate::auth::{Scope, needed_scope};
use crate::state::AppState;

/// One row of the route table: what is served at a path and method, and how the document
/// names it.
pub(crate) struct Route {
    /// `GET` or `POST`.
    pub(crate) method: Method,
    /// The axum path template (`{name}` parameters, `{*name}` for the rest of the path).
    pub(crate) path: &'static str,
    /// The operation's id: a verb and the resource, in camelCase (`listIncidents`), so that
    /// generated clients get readable names.
    pub(crate) operation_id: &'static str,
    /// One line for people.
    pub(crate) summary: &'static str,
    /// The handler, with its route layers.
    pub(crate) handler: MethodRouter<AppState>,
    /// Describes the operation from the handler's types.
    describe: fn(&mut Schemas, &mut OperationDoc),
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.method, self.path, self.operation_id)
    }
}

impl Route {
    /// A `GET` route.
    pub(crate) fn get<H, T, Inputs>(
        path: &'static str,
        operation_id: &'static str,
        summary: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState> + DescribedHandler<Inputs>,
        T: 'static,
    {
        Self {
            method: Method::GET,
            path,
            operation_id,
            summary,
            handler: axum::routing::get(handler),
            describe: <H as DescribedHandler<Inputs>>::describe,
        }
    }

    /// A `POST` route.
    pub(crate) fn post<H, T, Inputs>(
        path: &'static str,
        operation_id: &'static str,
        summary: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState> + DescribedHandler<Inputs>,
        T: 'static,
    {
        Self {
            method: Method::POST,
            path,
            operation_id,
            summary,
            handler: axum::routing::post(handler),
            describe: <H as DescribedHandler<Inputs>>::describe,
        }
    }

    /// The same route with its handler wrapped (e.g. a `route_layer` that checks the content
    /// type before the body is read).
    pub(crate) fn with(
        mut self,
        wrap: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
    ) -> Self {
        self.handler = wrap(self.handler);
        self
    }

    /// The path as the document writes it: `{*rest}` becomes `{rest}`.
    fn document_path(&self) -> String {
        self.path.replace("{*", "{")
    }

    /// The operation object of this route.
    fn operation(&self, schemas: &mut Schemas) -> Value {
        let mut doc = OperationDoc::default();
        common_errors(&mut doc);
        (self.describe)(schemas, &mut doc);
        let mut parameters: Vec<Value> = self
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({
                    "name": name.trim_start_matches('*'), "in": "path", "required": true,
                    "schema": {"type": "string", "minLength": 1}
                })
            })
            .collect();
        parameters.append(&mut doc.parameters);
        let responses: Map<String, Value> = doc
            .responses
            .into_iter()
            .map(|(status, response)| (status.to_string(), response))
            .collect();
        let scope = needed_scope(&self.method, self.path);
        let mut operation = json!({
            "summary": self.summary,
            "operationId": self.operation_id,
            "parameters": parameters,
            "responses": responses,
            "x-tidemark-scope": match scope {
                None => "none",
                Some(Scope::Read) => "read",
                Some(Scope::Write) => "write",
            },
        });
        if let Some(body) = doc.request_body {
            operation["requestBody"] = body;
        }
        if scope.is_some() {
            operation["security"] = json!([{"bearer": []}, {}]);
        }
        operation
    }
}

/// The answers any operation may get, whatever its handler: from the auth layer, the time
/// travel bound, the connection limit, the store.
fn common_errors(doc: &mut OperationDoc) {
    doc.error(400, "a parameter or the body is malformed");
    doc.error(
        401,
        "no token or an unknown one (when tokens are configured)",
    );
    doc.error(403, "a read token on a write route");
    doc.error(404, "no such thing");
    doc.error(
        410,
        "`at` is before the store's retained local log (retention, `compact --drop-events-before`, dropped the events before it: a replica's live on in its JetStream stream, an embedded store's only in a backup taken before the cut)",
    );
    doc.error(500, "the server failed; its log has the details");
    doc.error(
        503,
        "the store cannot answer now, too many past states (`at`) are being rebuilt (`time_travel_busy`), or too many connections are open (`too_many_connections`): retry, after `Retry-After` seconds when it is sent",
    );
}

/// The OpenAPI 3.1 document of `routes`.
pub(crate) fn document(routes: &[Route]) -> Value {
    let mut schemas = Schemas::new();
    let mut paths = Map::new();
    for route in routes {
        let operation = route.operation(&mut schemas);
        let item = paths
            .entry(route.document_path())
            .or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    let error = schemas.response::<crate::error::ErrorBody>();
    debug_assert_eq!(error, json!({"$ref": "#/components/schemas/Error"}));
    let mut components = schemas.into_components();
    schemas::type_events(&mut components);
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tidemark",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An event-sourced incident timeline store: ingest events, read findings, flaps, stuck findings, orphans and incidents, now or at any point of the log (`at`), and export postmortems. Lists are paged: pass `next` back as `after`."
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "read tokens for GET, write tokens for POST; not required when the server runs without tokens on loopback. Browsers may send a token as the `tidemark_token` cookie, which grants reading only"}}
        }
    });
    schemas::plain_enums(&mut document);
    document
}
