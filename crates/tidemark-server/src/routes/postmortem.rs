//! `/v1/incidents/{id}/postmortem`: the incident's postmortem as Markdown, HTML or JSON, built
//! by `tidemark-export` from the projections and the incident's events.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tidemark_export::{Format, Postmortem};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::read::{incident_timeline_positions, no_incident, with_projections_and_events};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get(
        "/v1/incidents/{id}/postmortem",
        "getIncidentPostmortem",
        "The postmortem: Markdown, HTML or JSON",
        postmortem,
    )]
}

/// Parameters of `GET /v1/incidents/{id}/postmortem`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PostmortemQuery {
    /// `md` (default), `html` or `json`.
    #[schemars(with = "Option<PostmortemFormat>")]
    format: Option<String>,
    /// A log position or an RFC 3339 time: the postmortem as it would have read then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
}

/// What the postmortem's `format=` takes (read as text and parsed by `tidemark-export`, whose
/// message names the choices).
struct PostmortemFormat;

impl JsonSchema for PostmortemFormat {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PostmortemFormat".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "enum": ["md", "markdown", "html", "json"]})
    }
}

/// `GET /v1/incidents/{id}/postmortem?format=md|html|json`.
async fn postmortem(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PostmortemQuery>,
) -> Result<PostmortemAnswer, ApiError> {
    let format: Format = params
        .format
        .as_deref()
        .unwrap_or("md")
        .parse()
        .map_err(|e| ApiError::bad_request(format!("`format`: {e}")))?;
    let books = super::pages::incident_maintenance_books(&state, params.at.as_deref(), &id).await?;
    let built = with_projections_and_events(
        &state,
        params.at.as_deref(),
        incident_timeline_positions(id.clone()),
        move |p, events, seq| {
            Postmortem::build(&id, p, events, seq, &books).map_err(|e| match e {
                tidemark_export::BuildError::UnknownIncident { .. } => no_incident(&id, seq),
                other => ApiError::internal(&other),
            })
        },
    )
    .await??;
    Ok(PostmortemAnswer {
        body: tidemark_export::render(&built, format),
        format,
    })
}

/// A rendered postmortem.
#[derive(Debug)]
struct PostmortemAnswer {
    format: Format,
    body: String,
}

impl IntoResponse for PostmortemAnswer {
    fn into_response(self) -> Response {
        let content_type = match self.format {
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
        };
        ([(header::CONTENT_TYPE, content_type)], self.body).into_response()
    }
}

impl DescribeOutput for PostmortemAnswer {
    fn describe(_: &mut Schemas, operation: &mut OperationDoc) {
        let text = json!({"type": "string"});
        operation.respond(
            200,
            "success",
            &[
                ("text/markdown", text.clone()),
                ("text/html", text),
                ("application/json", json!({"type": "object"})),
            ],
        );
    }
}
