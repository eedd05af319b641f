//! `/v1/openapi.json`: the OpenAPI document of every route of the table, built once.

use std::sync::OnceLock;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/openapi.json",
        "getOpenApi",
        "This document",
        openapi,
    )]
}

/// The document of [`super::all`], built once.
pub(crate) fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| crate::openapi::document(&super::all()))
}

/// `GET /v1/openapi.json`.
async fn openapi() -> OpenApiDocument {
    OpenApiDocument(document())
}

/// The document, as JSON.
#[derive(Debug)]
struct OpenApiDocument(&'static Value);

impl IntoResponse for OpenApiDocument {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

impl DescribeOutput for OpenApiDocument {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        operation.json(200, "success", json!({"type": "object"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(schemas.contains_key("FindingOverview") && schemas.contains_key("IncidentView"));
        assert!(
            !schemas.contains_key("FindingView"),
            "no answer carries a whole history"
        );
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

    #[test]
    fn enums_are_plain_ids_readable_and_events_typed_per_type() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Severity"]["enum"],
            serde_json::json!(["info", "warning", "error", "critical"])
        );
        assert!(
            !doc.to_string().contains("\"const\":\"info\""),
            "no enum is a oneOf of consts"
        );
        assert_eq!(
            doc["paths"]["/v1/incidents"]["get"]["operationId"],
            "listIncidents"
        );
        let event = &schemas["Event"];
        assert_eq!(event["discriminator"]["propertyName"], "type");
        assert_eq!(
            event["oneOf"].as_array().unwrap().len(),
            tidemark_core::EventType::ALL.len()
        );
        assert_eq!(
            event["discriminator"]["mapping"]["cycle.completed"],
            "#/components/schemas/CycleCompletedEvent"
        );
        // The envelope of a type is its schema from `schemas/v1/`, `data` included.
        let cycle = &schemas["CycleCompletedEvent"];
        assert_eq!(cycle["properties"]["type"]["const"], "cycle.completed");
        assert_eq!(
            cycle["properties"]["data"]["$ref"],
            "#/components/schemas/WireCycleCompleted"
        );
        // incident.opened's rule (a title) is part of its data's one object.
        let opened = &schemas["IncidentOpenedEvent"]["properties"]["data"];
        assert!(
            opened["required"]
                .as_array()
                .unwrap()
                .contains(&"title".into())
        );
        assert_eq!(opened["properties"]["title"]["type"], "string");
        // No query parameter is required by accident or defaults to null.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for operation in item.as_object().unwrap().values() {
                for parameter in operation["parameters"].as_array().unwrap() {
                    assert!(
                        parameter["schema"].get("default").is_none(),
                        "{path}: {parameter}"
                    );
                    if parameter["in"] == "query" && parameter["required"] == true {
                        assert_eq!(
                            (path.as_str(), &parameter["name"]),
                            ("/v1/timeline", &"cluster".into())
                        );
                    }
                }
            }
        }
    }
}
