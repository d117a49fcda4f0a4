//! Turning the hub's [`Error`] into an HTTP answer: a status code and
//! `{"error": "..."}`. Internal failures are logged with their detail and
//! answered with a generic text, so nothing about the server leaks.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Error;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Config(_)
            | Error::Db(_)
            | Error::Io { .. }
            | Error::Tls(_)
            | Error::Mqtt(_)
            | Error::Broker(_)
            | Error::Password(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let text = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
            "internal error; the hub's log says more".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(json!({ "error": text }))).into_response();
        if let Error::TooManyRequests { retry_after, .. } = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        response
    }
}
