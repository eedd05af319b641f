//! The API's one error type: a status, a stable code and a message for people, as JSON.

use axum::Json;
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

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
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

    /// A failed read: 410 for a point before a replica's retained log (with what to do), 500
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Body {
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
