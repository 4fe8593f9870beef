//! Request extractors whose rejections are [`ApiError`]s with stable codes, so malformed input
//! never turns into a plain-text 400 or a 500.

use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use mftplus_types::ErrorCode;
use serde::de::DeserializeOwned;

/// A JSON request body. Every request body of the API is an object: serde would also read a
/// struct from an array (`[null, null]`), which no client means, so that is refused too.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let ApiJsonVerbatim(value, _) = ApiJsonVerbatim::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// Path parameters (`{id}`, `{index}`): one that does not parse (a chunk index that is not a
/// number, a broken percent-encoding) is a coded JSON 400, like every other bad input.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::validation(format!(
                "path: {}",
                rejection.body_text()
            ))),
        }
    }
}

pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(err)) => {
                Err(ApiError::validation(err.body_text()))
            }
            Err(other) => Err(ApiError::new(ErrorCode::BadRequest, other.body_text())),
        }
    }
}

/// A JSON body parsed like [`ApiJson`], together with the exact bytes received, for bodies that
/// are stored verbatim (reports).
pub struct ApiJsonVerbatim<T>(pub T, pub bytes::Bytes);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonVerbatim<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = bytes::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
                } else {
                    ApiError::new(ErrorCode::BadRequest, rejection.body_text())
                }
            })?;
        let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        if first.is_some_and(|byte| *byte != b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
        {
            return Err(ApiError::validation("the body must be a JSON object"));
        }
        let value = serde_json::from_slice(&bytes).map_err(|err| {
            if err.is_data() {
                ApiError::validation(err.to_string())
            } else {
                ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON: {err}"))
            }
        })?;
        Ok(ApiJsonVerbatim(value, bytes))
    }
}
