//! `/v1/orphans`: confirmed orphans (and candidates), paged, and the resource graph with its
//! orphans as JSON or Graphviz DOT.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tidemark_core::orphans::{OrphanFilter, OrphanGraph, OrphanKind, OrphanOrder, OrphanView};

use crate::cursor;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::openapi::{DescribeOutput, OperationDoc, Route, Schemas};
use crate::read::{page_size, with_projections};
use crate::state::AppState;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/orphans",
            "listOrphans",
            "Confirmed orphans (and candidates), paged",
            orphans,
        ),
        Route::get(
            "/v1/orphans/graph",
            "getOrphanGraph",
            "The resource graph with its orphans (JSON, or DOT with format=dot)",
            orphan_graph,
        ),
    ]
}

/// Parameters of `GET /v1/orphans`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OrphansQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// Only this kind of orphan.
    kind: Option<OrphanKind>,
    /// Also list candidates not yet confirmed.
    candidates: Option<bool>,
    /// A log position or an RFC 3339 time: the state then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
    /// The `next` of the previous page.
    #[schemars(regex(pattern = crate::read::ORPHAN_CURSOR_PATTERN))]
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// Confirmed orphans (and candidates when asked).
#[derive(Debug, Serialize, JsonSchema)]
struct OrphansResponse {
    /// The log position.
    seq: u64,
    /// Orphans, sorted by cluster, then kind (in the order of `kind`'s values), subject (the
    /// resource's uid; the tracking row's kind and key; the trace and span ids), then
    /// `since_seq`; paged.
    orphans: Vec<OrphanView>,
    /// Cursor of the next page.
    next: Option<String>,
}

/// `GET /v1/orphans`: the page is chosen before it is built (`OrphanProjection::page`): it
/// costs what it returns, never the orphans of dropped traces before it.
async fn orphans(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<OrphansQuery>,
) -> Result<Json<OrphansResponse>, ApiError> {
    let limit = page_size(params.limit)?;
    let after: Option<cursor::OrphanKey> = params
        .after
        .as_deref()
        .map(|c| cursor::decode("after", c))
        .transpose()?;
    let filter = OrphanFilter {
        cluster: params.cluster.clone(),
        kind: params.kind,
        candidates: params.candidates == Some(true),
    };
    let (page, seq) = with_projections(&state, params.at.as_deref(), move |p| {
        let after = after.map(cursor::orphan_order);
        p.orphans().page(
            &filter,
            after
                .as_ref()
                .map(|(cluster, order)| (cluster.as_str(), order)),
            limit,
        )
    })
    .await?;
    let next = page
        .more
        .then(|| page.orphans.last())
        .flatten()
        .map(|last| cursor::encode(&cursor::orphan_key(&last.cluster, OrphanOrder::of(last))));
    Ok(Json(OrphansResponse {
        seq,
        orphans: page.orphans,
        next,
    }))
}

/// Parameters of `GET /v1/orphans/graph`.
#[derive(Deserialize, Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GraphQuery {
    /// Only this cluster.
    cluster: Option<String>,
    /// `json` (default) or `dot` (Graphviz).
    #[schemars(with = "Option<GraphFormat>")]
    format: Option<String>,
    /// A log position or an RFC 3339 time: the graph then.
    #[schemars(regex(pattern = crate::read::AT_PATTERN))]
    at: Option<String>,
}

/// `GET /v1/orphans/graph`: the resource graph with its orphans, as JSON or Graphviz DOT.
async fn orphan_graph(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<GraphQuery>,
) -> Result<GraphAnswer, ApiError> {
    let dot = match params.format.as_deref() {
        None | Some("json") => false,
        Some("dot") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`format`: {other:?} is not one of json, dot"
            )));
        }
    };
    let cluster = params.cluster.clone();
    let (graph, _): (OrphanGraph, u64) = with_projections(&state, params.at.as_deref(), move |p| {
        p.orphans().graph(cluster.as_deref())
    })
    .await?;
    Ok(if dot {
        GraphAnswer::Dot(graph.to_dot())
    } else {
        GraphAnswer::Json(graph)
    })
}

/// What the graph's `format=` takes (read as text, so the handler's message names the choices).
struct GraphFormat;

impl JsonSchema for GraphFormat {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GraphFormat".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "enum": ["json", "dot"]})
    }
}

/// The graph as JSON, or as Graphviz DOT.
#[derive(Debug)]
enum GraphAnswer {
    Json(OrphanGraph),
    Dot(String),
}

impl IntoResponse for GraphAnswer {
    fn into_response(self) -> Response {
        match self {
            Self::Json(graph) => Json(graph).into_response(),
            Self::Dot(dot) => (
                [(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
                dot,
            )
                .into_response(),
        }
    }
}

impl DescribeOutput for GraphAnswer {
    fn describe(schemas: &mut Schemas, operation: &mut OperationDoc) {
        let graph = schemas.response::<OrphanGraph>();
        operation.respond(
            200,
            "success",
            &[
                ("application/json", graph),
                ("text/vnd.graphviz", json!({"type": "string"})),
            ],
        );
    }
}
