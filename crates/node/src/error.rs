//! API errors: JSON `{"error": {"code": "...", "message": "..."}}` with a stable code and an
//! HTTP status. The codes are listed in docs/openapi.json and docs/node.md.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds after which a retry may succeed (for 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    /// 503 `overloaded`, with a Retry-After.
    pub fn overloaded(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<vouch_engine::EngineError> for ApiError {
    fn from(e: vouch_engine::EngineError) -> Self {
        use vouch_engine::EngineError as E;
        let (status, code) = match &e {
            E::UnsupportedOps(_) | E::UnsupportedType { .. } | E::ExternalData => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_model")
            }
            E::NotOnnx(_) | E::ModelTooLarge { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_model")
            }
            E::MissingInput { .. }
            | E::UnknownInput { .. }
            | E::InputDType { .. }
            | E::InputShape { .. }
            | E::BadInputs(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            E::Tract(_) => (StatusCode::UNPROCESSABLE_ENTITY, "engine_error"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<vouch_log::LogError> for ApiError {
    fn from(e: vouch_log::LogError) -> Self {
        use vouch_log::LogError as E;
        match &e {
            E::QueueFull => ApiError::overloaded("the transparency log's queue is full"),
            E::EntryTooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
            }
            E::BeyondLatest { .. } | E::ForeignCheckpoint { .. } => {
                ApiError::not_found(e.to_string())
            }
            _ => ApiError::internal(format!("transparency log: {e}")),
        }
    }
}

impl From<vouch_hub::HubError> for ApiError {
    fn from(e: vouch_hub::HubError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.code(), e.to_string())
    }
}
