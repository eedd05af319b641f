//! The API's one error type: a status, a stable code and a message for people, as JSON.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client as `{"code": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// What went wrong and what to do next.
    pub message: String,
    /// Seconds after which trying again may succeed, sent as `Retry-After` (503s of a busy
    /// server).
    pub retry_after_secs: Option<u64>,
}

/// What a client gets: the body of every error answer (`Error` in the OpenAPI document).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Error")]
pub(crate) struct ErrorBody<'a> {
    /// Stable, machine-readable: what kind of error (`not_found`, `bad_request`, ...).
    pub(crate) code: &'a str,
    /// For people: what was wrong and what to do next.
    pub(crate) message: &'a str,
}

impl ApiError {
    /// Any status, with its stable code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400 for a query string the route's parameters cannot be read from: one message that
    /// names the parameter and what it takes (`query parameter `state`: unknown value `bogus`,
    /// expected `active` or `resolved``), for every parameter of every route.
    pub fn query_string(rejection: &QueryRejection) -> Self {
        // axum's text is "Failed to deserialize query string: " + serde_path_to_error's
        // "PARAMETER: PROBLEM" (no parameter when the problem is the whole string's).
        let detail = std::error::Error::source(rejection)
            .map_or_else(|| rejection.body_text(), |inner| inner.to_string());
        Self::bad_request(query_problem(&detail))
    }

    /// A path the route's parameters cannot be read from (not UTF-8 once percent-decoded): 400
    /// naming the problem, as JSON like every other error.
    pub fn path_params(rejection: &PathRejection) -> Self {
        if rejection.status().is_server_error() {
            return Self::internal(rejection);
        }
        Self::bad_request(format!(
            "path: {}: percent-encode the path's parts as UTF-8",
            rejection.body_text()
        ))
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 413.
    pub fn too_large(limit_bytes: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!(
                "request body is larger than {limit_bytes} bytes: send the events in smaller batches"
            ),
            retry_after_secs: None,
        }
    }

    /// 413: more items in one request than the limit.
    pub fn too_many_items(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_many_items",
            message: format!(
                "the request holds more than {limit} items (the server's --max-items-per-request): nothing was stored; send at most {limit} events per request"
            ),
            retry_after_secs: None,
        }
    }

    /// 503: the store cannot take writes or answer now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 503 with `Retry-After`: a bounded resource is busy; the same request may succeed later.
    pub fn busy(code: &'static str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code,
            message: message.into(),
            retry_after_secs: Some(retry_after_secs),
        }
    }

    /// 507: the disk is full; the batch was not stored.
    pub fn insufficient_storage(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INSUFFICIENT_STORAGE,
            code: "disk_full",
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// A failed read: 410 for a point before the store's retained log (with what to do), 500
    /// for anything else.
    pub fn query(error: &tidemark_store::QueryError) -> Self {
        match error {
            tidemark_store::QueryError::BeforeRetainedLog { .. } => Self {
                status: StatusCode::GONE,
                code: "before_retained_log",
                message: error.to_string(),
                retry_after_secs: None,
            },
            other => Self::internal(other),
        }
    }

    /// 500: logged in full, answered without internals.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the server failed to handle this request; its log has the details".into(),
            retry_after_secs: None,
        }
    }
}

/// `PARAMETER: PROBLEM` (serde's wording) in the words of a query string.
fn query_problem(detail: &str) -> String {
    let (parameter, problem) = match detail.split_once(": ") {
        Some((name, problem))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            (Some(name), problem)
        }
        _ => (None, detail),
    };
    if let Some(rest) = problem.strip_prefix("unknown field ") {
        // "`x`, expected one of `a`, `b`" (or "there are no fields").
        return match rest.split_once(", expected ") {
            Some((name, expected)) => {
                format!("unknown query parameter {name}: this route takes {expected}")
            }
            None => format!(
                "unknown query parameter {}",
                rest.trim_end_matches(", there are no fields")
            ),
        };
    }
    if let Some(name) = problem.strip_prefix("duplicate field ") {
        return format!("query parameter {name} is given more than once");
    }
    if let Some(name) = problem.strip_prefix("missing field ") {
        return format!("missing query parameter {name}");
    }
    let problem = match problem.strip_prefix("unknown variant ") {
        Some(rest) => format!("unknown value {rest}"),
        None => problem.to_owned(),
    };
    // The three ways a number fails to parse (`ParseIntError`) say what they expected.
    let problem = if [
        "invalid digit found in string",
        "cannot parse integer from empty string",
        "number too large to fit in target type",
    ]
    .contains(&problem.as_str())
    {
        format!("{problem}: expected a whole number")
    } else {
        problem
    };
    match parameter {
        Some(name) => format!("query parameter `{name}`: {problem}"),
        None => format!("query string: {problem}"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                code: self.code,
                message: &self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::Query;
    use axum::http::Uri;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum State {
        Active,
        Resolved,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        cluster: String,
        state: Option<State>,
        limit: Option<usize>,
    }

    /// The message a real rejection of `query` gets.
    fn message(query: &str) -> String {
        let uri: Uri = format!("http://x/v1/findings?{query}").parse().unwrap();
        let rejection = Query::<Params>::try_from_uri(&uri).unwrap_err();
        let error = ApiError::query_string(&rejection);
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        error.message
    }

    #[test]
    fn query_rejections_name_the_parameter_and_what_it_takes_once() {
        assert_eq!(
            message("cluster=c&state=bogus"),
            "query parameter `state`: unknown value `bogus`, expected `active` or `resolved`"
        );
        assert_eq!(
            message("cluster=c&limit=ten"),
            "query parameter `limit`: invalid digit found in string: expected a whole number"
        );
        assert_eq!(
            message("cluster=c&bogus=1"),
            "unknown query parameter `bogus`: this route takes one of `cluster`, `state`, `limit`"
        );
        assert_eq!(message("state=active"), "missing query parameter `cluster`");
        assert_eq!(
            message("cluster=a&cluster=b"),
            "query parameter `cluster` is given more than once"
        );
        for query in ["state=bogus", "cluster=c&limit=-1", "x=1"] {
            let text = message(query);
            assert!(!text.contains("Failed to deserialize"), "{text}");
        }
    }
}
