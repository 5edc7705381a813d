//! Errors as OpenAI-style answers: `{"error": {"message", "type", "param",
//! "code"}}` with the matching HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

/// Why a request got no completion.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The request is malformed or asks for what the model cannot do.
    #[error("{message}")]
    Invalid {
        /// What is wrong, for the client.
        message: String,
        /// The request field at fault, if one is.
        param: Option<String>,
    },
    /// More requests than the queue holds.
    #[error("the server is busy: {0} requests are queued or running; retry later")]
    QueueFull(usize),
    /// The engine failed while generating.
    #[error("the engine failed: {0}")]
    Engine(String),
    /// No such endpoint.
    #[error("no such endpoint")]
    NotFound,
}

impl ApiError {
    /// An [`ApiError::Invalid`] about `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::QueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The JSON body (also sent as an SSE event when a stream fails).
    pub fn body(&self) -> serde_json::Value {
        let (kind, code, param) = match self {
            ApiError::Invalid { param, .. } => ("invalid_request_error", None, param.as_deref()),
            ApiError::QueueFull(_) => ("rate_limit_error", Some("queue_full"), None),
            ApiError::Engine(_) => ("server_error", Some("engine_error"), None),
            ApiError::NotFound => ("invalid_request_error", Some("not_found"), None),
        };
        json!({"error": {"message": self.to_string(), "type": kind, "param": param, "code": code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let ApiError::QueueFull(_) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
