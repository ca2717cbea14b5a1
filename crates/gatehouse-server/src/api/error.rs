//! The API's error replies and the extractors that turn malformed requests into them.
//!
//! Every failure is JSON `{"error": "<kind>", "detail": "…"}`:
//!
//! | status | kind | when |
//! | --- | --- | --- |
//! | 400 | `invalid` | malformed JSON, path or query; input a rule rejects as invalid |
//! | 401 | `unauthorized` | no API key, or one that is unknown, wrong or revoked |
//! | 403 | `forbidden` | read-only key on a change, client outside the key's networks, creating outside its domains |
//! | 404 | `not_found` | the object does not exist, or lies outside the key's domains; unknown endpoint |
//! | 405 | `method_not_allowed` | the endpoint exists, but not with this method |
//! | 409 | `already_exists` | an object with that name exists already |
//! | 422 | `refused` | a business rule refused a well-formed change (limit reached, object still in use, …) |
//! | 503 | `unavailable` | the database or the hash pool is unavailable for now; retry later |
//! | 500 | `internal` | a bug; the detail is only in the server log |
//!
//! Server faults never carry their cause to the client; it is logged instead.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Json, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use gatehouse_core::Error;
use gatehouse_passwords::PoolError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The body of every failed request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong: `invalid`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `already_exists`, `refused`, `unavailable` or `internal`.
    #[schema(example = "not_found")]
    pub error: String,
    /// A sentence for people.
    #[schema(example = "mailbox 'user@example.org' does not exist")]
    pub detail: String,
}

/// A failed request: its status and [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, kind, detail: detail.into() }
    }

    /// 400: the request is malformed.
    pub fn invalid(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", detail)
    }

    /// 401: no usable API key.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403: the key may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 for an unknown endpoint.
    pub fn no_such_endpoint() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
    }

    /// 405 for a known path with another method.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not support that method",
        )
    }

    /// 503 with the cause logged, not returned.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "API request failed: temporarily unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "temporarily unavailable; try again later")
    }

    /// 500 with the cause logged, not returned.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "API request failed: internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(detail) => ApiError::invalid(detail),
            Error::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string()),
            Error::AlreadyExists { .. } => ApiError::new(StatusCode::CONFLICT, "already_exists", err.to_string()),
            Error::Refused(detail) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", detail),
            Error::Forbidden(detail) => ApiError::forbidden(detail),
            Error::Unavailable(_) => ApiError::unavailable(&err),
            Error::AlreadyRunning(_) => ApiError::new(StatusCode::CONFLICT, "already_running", err.to_string()),
            Error::Internal(_) => ApiError::internal(&err),
        }
    }
}

impl From<PoolError> for ApiError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Busy => ApiError::unavailable(&err),
            PoolError::Password(gatehouse_passwords::PasswordError::NulByte) => {
                ApiError::invalid("the password contains a NUL byte, which the mail server cannot handle")
            }
            other => ApiError::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.kind.to_string(), detail: self.detail };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"gatehouse\""),
            );
        }
        response
    }
}

/// What a handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON body; malformed ones become 400 `invalid` (413 and 415 keep their status).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = match rejection.status() {
        status @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => status,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, "invalid", rejection.body_text())
}

/// Query parameters; malformed ones become 400 `invalid`.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| ApiError::invalid(rejection.body_text()))
    }
}

/// Path parameters; malformed ones become 400 `invalid`.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection: PathRejection| ApiError::invalid(rejection.body_text()))
    }
}
