//! The one door of the web pages: the browser's session, checked for its role, its stage and, on a form post,
//! the form's CSRF token. A handler says what it needs ([`Need`]); what the gate finds instead of a session it
//! can let through is a [`Refusal`], which the handler answers as its page does (the usual answer is
//! [`Refusal::response`]: the login page's redirect, the pending step, 403 for a forged form, 503).
//!
//! An unfinished login (second factor, forced enrolment or password change pending) reaches nothing but its
//! next step, whichever page it asks for.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::Error;

use super::respond::{error_page, redirect, unavailable};
use super::session::{Role, Session, Stage, same_token};
use crate::AppState;

/// What a handler needs of the session.
#[derive(Clone, Copy)]
pub(super) enum Need {
    /// A finished login of this role.
    Ready(Role),
    /// A finished login of any role (webmail).
    AnyReady,
    /// A login of any role at a stage this accepts (the steps between the password and a usable session).
    At(fn(Stage) -> bool),
    /// Any session (logout).
    Any,
}

/// Why the gate let no session through.
pub(super) enum Refusal {
    /// No session, or it ended.
    NoSession,
    /// A session of another role than the one needed.
    OtherRole,
    /// A login at another stage than the one needed; it continues at [`stage_page`].
    Pending { role: Role, stage: Stage },
    /// The form's CSRF token is not the session's.
    Forged,
    /// The sessions could not be read.
    Unavailable(Error),
}

impl Refusal {
    /// The usual answer on the pages of `role`: no session or another role's → that role's login ("your
    /// session has ended"), an unfinished login → its pending step, a forged form → 403, no database → 503.
    pub(super) fn response(self, role: Role) -> Response {
        match self {
            Refusal::NoSession | Refusal::OtherRole => redirect(&format!("{}?m=expired", role.home())),
            Refusal::Pending { role: pending_role, stage } => redirect(stage_page(pending_role, stage)),
            Refusal::Forged => error_page(
                StatusCode::FORBIDDEN,
                "The form is out of date or came from another site: nothing was changed. Go back, reload the page \
                 and try again.",
                role.home(),
            ),
            Refusal::Unavailable(err) => unavailable(err),
        }
    }
}

/// The session of this request if it is what `need` asks for.
pub(super) async fn gate(state: &AppState, headers: &HeaderMap, need: Need) -> Result<Session, Refusal> {
    let session = match state.web.sessions.load(&state.auth, &state.store, headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(Refusal::NoSession),
        Err(err) => return Err(Refusal::Unavailable(err)),
    };
    let stage = session.data.stage;
    match need {
        Need::Ready(role) if session.data.role != role => Err(Refusal::OtherRole),
        Need::Ready(_) | Need::AnyReady if stage != Stage::Ready => {
            Err(Refusal::Pending { role: session.data.role, stage })
        }
        Need::At(accepts) if !accepts(stage) => Err(Refusal::Pending { role: session.data.role, stage }),
        _ => Ok(session),
    }
}

/// [`gate`] for a form post: the session, once the form's CSRF token is the session's.
pub(super) async fn gate_form(
    state: &AppState,
    headers: &HeaderMap,
    need: Need,
    csrf: &str,
) -> Result<Session, Refusal> {
    let session = gate(state, headers, need).await?;
    check_csrf(&session, csrf)?;
    Ok(session)
}

/// Checks a form's CSRF token against the session's (for forms parsed after the session was admitted).
pub(super) fn check_csrf(session: &Session, form_token: &str) -> Result<(), Refusal> {
    if same_token(&session.data.csrf, form_token) {
        Ok(())
    } else {
        tracing::warn!(principal = session.data.principal, "a form was posted without this session's CSRF token");
        Err(Refusal::Forged)
    }
}

/// Where a session at `stage` continues.
pub(super) fn stage_page(role: Role, stage: Stage) -> &'static str {
    match stage {
        Stage::Ready => role.home(),
        Stage::PendingTotp => "/totp",
        Stage::TotpEnrolment => "/totp/setup",
        Stage::PasswordChange => "/password/required",
    }
}
