//! Every route of the server, in one list: each resource's module gives its routes (path,
//! method, operation id, summary, handler) beside the handlers, and both the router
//! (`crate::router`) and the OpenAPI document (`openapi::document`) are built from [`all`].
//! Adding an endpoint is a handler and a line in its module's `routes()`.

mod admin;
mod alerts;
mod bridges;
mod events;
mod findings;
mod flaps;
mod health;
mod incidents;
mod maintenance;
mod openapi;
mod orphans;
mod otlp;
mod pages;
mod postmortem;
mod quarantine;
mod stream;
mod stuck;
mod timeline;

use crate::error::ApiError;
use crate::openapi::Route;

/// Every route, in the order the document lists them.
pub(crate) fn all() -> Vec<Route> {
    [
        events::routes(),
        stream::routes(),
        findings::routes(),
        alerts::routes(),
        flaps::routes(),
        stuck::routes(),
        maintenance::routes(),
        orphans::routes(),
        incidents::routes(),
        postmortem::routes(),
        bridges::routes(),
        otlp::routes(),
        timeline::routes(),
        quarantine::routes(),
        admin::routes(),
        openapi::routes(),
        pages::routes(),
        health::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Any other path.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see GET /v1/findings, POST /v1/events, GET /healthz")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_route_is_one_path_and_method_with_a_unique_readable_operation_id() {
        let routes = all();
        assert!(routes.len() >= 20, "{routes:?}");
        let mut seen = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for route in &routes {
            assert!(
                seen.insert((route.method.clone(), route.path)),
                "{route:?} is listed twice"
            );
            assert!(ids.insert(route.operation_id), "{route:?}: its id is taken");
            let id = route.operation_id;
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{route:?}: operation ids are camelCase words"
            );
        }
    }

    #[test]
    fn the_document_lists_exactly_the_routes_with_their_ids() {
        let doc = openapi::document();
        let mut documented: Vec<(String, String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object().unwrap().iter().map(move |(method, op)| {
                    (
                        method.clone(),
                        path.clone(),
                        op["operationId"].as_str().unwrap().to_owned(),
                    )
                })
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String, String)> = all()
            .iter()
            .map(|r| {
                (
                    r.method.as_str().to_ascii_lowercase(),
                    r.path.replace("{*", "{"),
                    r.operation_id.to_owned(),
                )
            })
            .collect();
        served.sort();
        assert_eq!(documented, served);
    }
}
