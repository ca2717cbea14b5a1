//! SCIM error replies (RFC 7644 §3.12): `{"schemas": [Error], "status": "404", "scimType": …, "detail": …}`
//! as `application/scim+json`, and the mapping of Gatehouse's errors onto them. Server faults never carry
//! their cause to the client; it is logged instead.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::Error;
use serde_json::json;

/// The SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The media type of every SCIM reply.
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// A failed SCIM request.
#[derive(Debug, Clone)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError { status, scim_type, detail: detail.into() }
    }

    /// 400 `invalidSyntax`: the body is not the JSON a SCIM request needs.
    pub fn syntax(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), detail)
    }

    /// 400 `invalidValue`: a required value is missing or not acceptable.
    pub fn value(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidValue"), detail)
    }

    /// 400 `invalidFilter`: a filter this server does not evaluate.
    pub fn filter(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidFilter"), detail)
    }

    /// 400 `invalidPath`: a PATCH path this server does not understand.
    pub fn path(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
    }

    /// 400 `mutability`: the change would alter what cannot change (the mail address) or remove what is
    /// required.
    pub fn mutability(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("mutability"), detail)
    }

    /// 400 `noTarget`: the operation names nothing to change.
    pub fn no_target(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some("noTarget"), detail)
    }

    /// 409 `uniqueness`: the user exists already.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }

    /// 401: no usable SCIM token.
    pub fn unauthorized() -> Self {
        ScimError::new(StatusCode::UNAUTHORIZED, None, "a valid SCIM bearer token is required")
    }

    /// 403: the token may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::FORBIDDEN, None, detail)
    }

    /// 404: no such resource (or one outside the token's reach).
    pub fn not_found(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::NOT_FOUND, None, detail)
    }

    /// 405 for a known endpoint with another method.
    pub fn method_not_allowed() -> Self {
        ScimError::new(StatusCode::METHOD_NOT_ALLOWED, None, "this endpoint does not support that method")
    }

    /// 412: `If-Match` names another version.
    pub fn precondition_failed() -> Self {
        ScimError::new(StatusCode::PRECONDITION_FAILED, None, "the resource changed since that version")
    }

    /// 501 for what this server does not offer.
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::NOT_IMPLEMENTED, None, detail)
    }
}

impl From<Error> for ScimError {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(detail) => ScimError::value(detail),
            err @ Error::NotFound { .. } => ScimError::not_found(err.to_string()),
            err @ Error::AlreadyExists { .. } => ScimError::uniqueness(err.to_string()),
            Error::Refused(detail) => ScimError::value(detail),
            Error::Forbidden(detail) => ScimError::forbidden(detail),
            err @ (Error::Unavailable(_) | Error::AlreadyRunning(_)) => {
                tracing::warn!("SCIM request: {err}");
                ScimError::new(StatusCode::SERVICE_UNAVAILABLE, None, "temporarily unavailable; try again later")
            }
            Error::Internal(detail) => {
                tracing::error!("SCIM request: internal error: {detail}");
                ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error")
            }
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        let mut response = (self.status, scim_json(&body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON value as a SCIM reply body: `application/scim+json`.
pub fn scim_json(value: &serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_MEDIA_TYPE))], value.to_string()).into_response()
}
