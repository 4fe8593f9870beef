//! The one error type of the HTTP layer and its single mapping to responses.

use axum::response::{IntoResponse, Response};
use axum::Json;
use mftplus_store::StoreError;
use mftplus_types::{ApiErrorBody, ErrorCode, ErrorInfo};

/// An error answered to a client: a stable code, a message safe to show, and, for internal
/// failures, a cause that goes to the log only.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    internal: Option<String>,
    retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            internal: None,
            retry_after: None,
        }
    }

    /// A 500 whose cause is logged but never sent.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError {
            code: ErrorCode::Internal,
            message: "internal error; see the server log".into(),
            internal: Some(cause.to_string()),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthenticated, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ValidationFailed, message)
    }
}

impl ApiError {
    /// Maps a store error as `From` does, except that a `Conflict` reads `{context}: {why}`:
    /// for store calls whose conflict is a state ("not uploading"), not a duplicate.
    pub fn store_conflict(context: String) -> impl FnOnce(StoreError) -> ApiError {
        move |err| match err {
            StoreError::Conflict(why) => {
                ApiError::new(ErrorCode::Conflict, format!("{context}: {why}"))
            }
            other => other.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::new(ErrorCode::NotFound, "not found"),
            StoreError::Conflict(what) => {
                ApiError::new(ErrorCode::Conflict, format!("{what} already exists"))
            }
            StoreError::Unstorable(_) => ApiError::validation(
                "a value in the request holds a character that cannot be stored (such as NUL)",
            ),
            StoreError::Backend(_) | StoreError::Migration(_) => ApiError::internal(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            tracing::error!(code = %self.code, cause = %cause, "request failed");
        }
        let status = http::StatusCode::from_u16(self.code.http_status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = ApiErrorBody {
            error: ErrorInfo {
                code: self.code.as_str().to_string(),
                message: self.message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
