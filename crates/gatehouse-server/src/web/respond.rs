//! How the web pages answer: rendering a template, a redirect to a fixed path, an error by its fault, and the
//! small text helpers the pages share (a rule's refusal as a sentence, dates, URL-encoded names).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header::LOCATION};
use axum::response::{Html, IntoResponse, Response};
use gatehouse_core::{Error, Fault};

/// Renders a template, or a plain 500 page if rendering fails.
pub(super) fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!("rendering a page failed: {err}");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// 303 to `to`, a path the handler built (never one taken from the request).
pub(super) fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")));
    response
}

/// The answer to an error, by fault: the caller's (a rule refused it, the object is gone) is a page that says so,
/// with a way back (4xx); the server's (a database or directory unreachable) is 503 "try again", never "wrong
/// password".
pub(super) fn unavailable(err: impl Into<Error>) -> Response {
    let err = err.into();
    match err.fault() {
        Fault::Client => {
            tracing::info!("web request refused: {err}");
            let status = match &err {
                Error::NotFound { .. } => StatusCode::NOT_FOUND,
                Error::AlreadyExists { .. } => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            error_page(status, &sentence(&err), "/")
        }
        Fault::Server => {
            tracing::warn!("web request failed: {err}");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Gatehouse cannot answer right now (a database or directory is unreachable). Try again in a moment.",
                "/",
            )
        }
    }
}

/// A page that says what went wrong, with a link to `back` (a fixed path).
pub(super) fn error_page(status: StatusCode, message: &str, back: &'static str) -> Response {
    render(&ErrorPage { notice: None, message: message.to_string(), back }, status)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    notice: Option<String>,
    message: String,
    back: &'static str,
}

/// A rule's refusal as a sentence on a page ("The password needs at least 8 characters.").
pub(super) fn sentence(err: &Error) -> String {
    let text = err.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.')),
        None => text,
    }
}

pub(super) use gatehouse_core::text::percent_encode as segment;

/// The script that shows the administration pages' times in the viewer's time zone.
const LOCAL_TIMES: &str = include_str!("../../static/local-times.js");

/// `GET /local-times.js`.
pub(super) async fn local_times_script() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], LOCAL_TIMES).into_response()
}

/// A Unix time as `YYYY-MM-DD HH:MM` (UTC).
pub(super) fn date_time(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]")).ok())
        .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_answer_by_fault() {
        let refused = unavailable(Error::refused("domain example.org already has 2 of its 2 allowed mailboxes"));
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "a rule's refusal is the caller's");
        assert_eq!(unavailable(Error::not_found("mailbox", "x@example.org")).status(), StatusCode::NOT_FOUND);
        let down = unavailable(Error::Unavailable("database unreachable".into()));
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE, "a peer's outage is 'try again'");
        assert_eq!(unavailable(Error::Internal("bug".into())).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
