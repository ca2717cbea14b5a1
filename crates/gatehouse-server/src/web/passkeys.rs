//! Passkeys on the web pages: the script that runs the browser's side of the ceremonies, registering and
//! removing passkeys (a mailbox's on the user page, an administrator's on `/passkeys`, and any account's
//! during a forced second-factor enrolment), a passkey as the second factor of a login, and signing in with a
//! passkey alone on each login page (a discoverable credential names its account).
//!
//! The ceremonies' endpoints take and answer JSON (`{"csrf": …}` first, the session's token as on every form);
//! a refusal is `{"error": "…"}` with a status: 400 for an answer the relying party does not accept, 401 for a
//! refused second factor, 409 for a passkey registered already, 422 for a rule of the store, 429 for a banned
//! address, 503 when the database or the relying party is not available. The engine decides the second factor
//! (guard, auth log); the store keeps the passkeys.

// Handlers return `Result<_, Response>` so a refusal is the answer to send.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use askama::Template;
use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::{AdminRole, Error, Fault};
use gatehouse_engine::passkey::Challenge;
use gatehouse_engine::{
    Decision, DenyReason, PasskeyFactorRequest, PasskeySignInRequest, RequiredStep, SignInArea, passkey_account,
};
use gatehouse_store::NewPasskey;
use serde::Deserialize;
use serde_json::json;

use super::gate::{Need, Refusal, gate, gate_form, stage_page};
use super::login::TokenForm;
use super::respond::{date_time, redirect, render, sentence, unavailable};
use super::session::{LOGIN_CSRF_COOKIE, Role, Session, Stage, add_set_cookie, clear_cookie, cookie, same_token};
use super::steps::{advance_session, check_own_password, owner_of, principal_of, stage_after, stage_for};
use crate::AppState;

/// The browser's side of the ceremonies.
const SCRIPT: &str = include_str!("../../static/passkeys.js");

/// `GET /passkeys.js`.
pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

/// A ceremony's first request.
#[derive(Deserialize)]
pub struct StartRequest {
    #[serde(default)]
    csrf: String,
}

/// The start of a registration: the account's password confirms that the one adding a passkey is its owner.
#[derive(Deserialize)]
pub struct RegistrationStart {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// How long after signing in at an identity provider a passkey may be added without signing in again.
const RECENT_SIGN_IN: i64 = 600;

/// Whether adding a passkey asks for the account's password: not during a required enrolment (the password was
/// just checked) and not for a session from an identity provider (which must be recent instead).
pub(super) fn asks_password(session: &Session) -> bool {
    session.data.stage == Stage::Ready && session.data.provider.is_none()
}

/// Confirms that the one adding a passkey is the account's owner, not someone holding a session cookie: the
/// password through the engine (the guard counts a wrong one), or for a session from an identity provider, a
/// sign-in of the last ten minutes. A passkey outlives password changes, so this is asked every time.
async fn confirm_owner(
    state: &AppState,
    session: &Session,
    password: String,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), Response> {
    if session.data.stage != Stage::Ready {
        return Ok(());
    }
    if session.data.provider.is_some() {
        if gatehouse_core::clock::now() - session.data.created_at > RECENT_SIGN_IN {
            return Err(refusal(StatusCode::FORBIDDEN, "Sign in again to add a passkey."));
        }
        return Ok(());
    }
    if password.is_empty() {
        return Err(refusal(StatusCode::BAD_REQUEST, "Enter your password to add a passkey."));
    }
    let remote_ip = Some(state.web.client_ip(peer, headers));
    match check_own_password(state, session, password.into_bytes(), remote_ip).await {
        Decision::Allowed { .. } => Ok(()),
        refused => Err(refused_answer(refused, "The password is wrong.")),
    }
}

/// The browser's answer to a registration challenge.
#[derive(Deserialize)]
pub struct RegistrationAnswer {
    #[serde(default)]
    csrf: String,
    ceremony: String,
    name: String,
    credential: serde_json::Value,
}

/// The browser's answer to a sign-in challenge.
#[derive(Deserialize)]
pub struct SignInAnswer {
    #[serde(default)]
    csrf: String,
    ceremony: String,
    credential: serde_json::Value,
}

/// A JSON refusal.
fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A store or relying-party error as a JSON refusal.
fn error_answer(err: Error) -> Response {
    match err {
        Error::AlreadyExists { .. } => refusal(StatusCode::CONFLICT, "This passkey is registered already."),
        Error::Refused(message) => refusal(StatusCode::UNPROCESSABLE_ENTITY, message),
        err if err.fault() == Fault::Client => refusal(StatusCode::BAD_REQUEST, sentence(&err)),
        err => {
            tracing::warn!("passkeys: {err}");
            refusal(StatusCode::SERVICE_UNAVAILABLE, "Passkeys are not available right now. Try again later.")
        }
    }
}

/// A ceremony's challenge for the browser: its id and the options of `navigator.credentials`.
fn challenge_answer(challenge: Result<Challenge, Error>) -> Response {
    match challenge {
        Ok(challenge) => {
            Json(json!({ "ceremony": challenge.ceremony, "publicKey": challenge.options["publicKey"] })).into_response()
        }
        Err(err) => error_answer(err),
    }
}

/// A decision that let nobody in, as a JSON refusal (`denied` says a refused passkey).
fn refused_answer(decision: Decision, denied: &str) -> Response {
    match decision {
        Decision::Denied { reason: DenyReason::Banned, .. } => {
            refusal(StatusCode::TOO_MANY_REQUESTS, "Too many failed logins from your address. Try again later.")
        }
        Decision::TempFail { cause } => error_answer(cause),
        _ => refusal(StatusCode::UNAUTHORIZED, denied),
    }
}

/// What the gate's refusal means to a script: sign in again, or a forged request.
fn gate_answer(refused: Refusal) -> Response {
    match refused {
        Refusal::Forged => refusal(StatusCode::FORBIDDEN, "The page is out of date. Reload it."),
        Refusal::Unavailable(err) => error_answer(err),
        _ => refusal(StatusCode::UNAUTHORIZED, "Your session has ended. Log in again."),
    }
}

/// The session of a ceremony request: a finished user login (registration) or one waiting for its second
/// factor (sign-in).
async fn ceremony_session(state: &AppState, headers: &HeaderMap, need: Need, csrf: &str) -> Result<Session, Response> {
    gate_form(state, headers, need, csrf).await.map_err(gate_answer)
}

/// Who may register a passkey: a finished login, or one that must set up a second factor first.
const REGISTERING: Need = Need::At(|stage| matches!(stage, Stage::Ready | Stage::TotpEnrolment));

/// Where an account's passkeys are listed.
fn passkeys_page(role: Role) -> &'static str {
    if role == Role::User { "/" } else { "/passkeys" }
}

/// `POST /passkeys/register/start`: a registration challenge for the session's account, once its owner is
/// confirmed.
pub async fn start_registration(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(request): Json<RegistrationStart>,
) -> Response {
    let session = match ceremony_session(&state, &headers, REGISTERING, &request.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Err(response) = confirm_owner(&state, &session, request.password, peer, &headers).await {
        return response;
    }
    let Some(passkeys) = state.auth.passkeys() else {
        return error_answer(Error::Unavailable("passkeys need web.public_url".into()));
    };
    let principal = match principal_of(&session) {
        Ok(principal) => principal,
        Err(err) => return error_answer(err),
    };
    let existing = match state.store.passkeys(principal.as_ref()).await {
        Ok(existing) => existing,
        Err(err) => return error_answer(err),
    };
    // One user handle per account: the authenticator keeps it with each of the account's passkeys.
    let handle = existing
        .first()
        .map(|p| p.user_handle.clone())
        .unwrap_or_else(gatehouse_engine::passkey::Passkeys::new_user_handle);
    let credentials: Vec<String> = existing.into_iter().map(|p| p.credential).collect();
    let name = &session.data.principal;
    let account = passkey_account(&owner_of(&session));
    challenge_answer(passkeys.start_registration(&account, &handle, name, name, &credentials))
}

/// `POST /passkeys/register/finish`: checks the browser's new credential and keeps it under the name given.
pub async fn finish_registration(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(answer): Json<RegistrationAnswer>,
) -> Response {
    let mut session = match ceremony_session(&state, &headers, REGISTERING, &answer.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Some(passkeys) = state.auth.passkeys() else {
        return error_answer(Error::Unavailable("passkeys need web.public_url".into()));
    };
    let principal = match principal_of(&session) {
        Ok(principal) => principal,
        Err(err) => return error_answer(err),
    };
    let account = passkey_account(&owner_of(&session));
    let registered = match passkeys.finish_registration(&answer.ceremony, &account, &answer.credential.to_string()) {
        Ok(registered) => registered,
        Err(err) => return error_answer(err),
    };
    let new = NewPasskey {
        name: answer.name,
        credential_id: registered.credential_id,
        user_handle: registered.user_handle,
        credential: registered.credential,
        counter: registered.counter,
    };
    let added = match state.store.add_passkey(&session.actor(), principal.as_ref(), new).await {
        Ok(added) => added,
        Err(err) => return error_answer(err),
    };
    if session.data.stage == Stage::TotpEnrolment {
        // The required second factor is in place: the login goes on to its next step, with a new session.
        let stage = match stage_after(&state, &session, RequiredStep::EnrolSecondFactor).await {
            Ok(stage) => stage,
            Err(response) => return response,
        };
        return match advance_session(&state, &session, stage).await {
            Ok((page, cookie)) => {
                let mut response = Json(json!({ "id": added.id, "name": added.name, "next": page })).into_response();
                add_set_cookie(response.headers_mut(), &cookie);
                response
            }
            Err(err) => error_answer(err),
        };
    }
    session.data.notice = Some(format!("Passkey \"{}\" added.", added.name));
    if let Err(err) = state.web.sessions.save(&state.store, &session).await {
        return error_answer(err);
    }
    Json(json!({ "id": added.id, "name": added.name, "next": passkeys_page(session.data.role) })).into_response()
}

/// `POST /passkeys/{id}/remove`: removes one of the session holder's passkeys.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let mut session = match gate_form(&state, &headers, Need::AnyReady, &form.csrf).await {
        Ok(session) => session,
        Err(refused) => return refused.response(Role::User),
    };
    let principal = match principal_of(&session) {
        Ok(principal) => principal,
        Err(err) => return unavailable(err),
    };
    // The store only removes a passkey of this account; another account's id is "not found".
    session.data.notice = Some(match state.store.remove_passkey(&session.actor(), principal.as_ref(), id).await {
        Ok(()) => "Passkey removed.".to_string(),
        Err(err) if err.fault() == Fault::Client => "No such passkey.".to_string(),
        Err(err) => return unavailable(err),
    });
    if let Err(err) = state.web.sessions.save(&state.store, &session).await {
        return unavailable(err);
    }
    redirect(passkeys_page(session.data.role))
}

/// A passkey as the pages list it.
pub(super) struct PasskeyView {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) created: String,
    pub(super) last_used: String,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    notice: Option<String>,
    home: &'static str,
    csrf: String,
    passkeys: Vec<PasskeyView>,
    passkeys_available: bool,
    ask_password: bool,
}

/// `GET /passkeys`: an administrator's or domain administrator's passkeys (a mailbox's are on its user page).
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut session = match gate(&state, &headers, Need::AnyReady).await {
        Ok(session) => session,
        Err(refused) => return refused.response(Role::Admin),
    };
    if session.data.role == Role::User {
        return redirect("/");
    }
    let notice = session.data.notice.take();
    if notice.is_some()
        && let Err(err) = state.web.sessions.save(&state.store, &session).await
    {
        return unavailable(err);
    }
    let listed = match principal_of(&session) {
        Ok(principal) => state.store.passkeys(principal.as_ref()).await,
        Err(err) => Err(err),
    };
    let passkeys = match listed {
        Ok(passkeys) => passkeys,
        Err(err) => return unavailable(err),
    };
    let page = PasskeysPage {
        notice,
        home: session.data.role.home(),
        csrf: session.data.csrf.clone(),
        passkeys: views(passkeys),
        passkeys_available: state.auth.passkeys().is_some(),
        ask_password: asks_password(&session),
    };
    render(&page, StatusCode::OK)
}

/// Passkeys as the pages list them.
pub(super) fn views(passkeys: Vec<gatehouse_store::Passkey>) -> Vec<PasskeyView> {
    passkeys
        .into_iter()
        .map(|p| PasskeyView {
            id: p.id,
            name: p.name,
            created: date_time(p.created_at),
            last_used: p.last_used_at.map(date_time).unwrap_or_else(|| "never".into()),
        })
        .collect()
}

/// `POST /totp/passkey/start`: a challenge for the passkeys of a login waiting for its second factor.
pub async fn start_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<StartRequest>,
) -> Response {
    let need = Need::At(|stage| stage == Stage::PendingTotp);
    let session = match ceremony_session(&state, &headers, need, &request.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    challenge_answer(state.auth.start_passkey_factor(&owner_of(&session)).await)
}

/// `POST /totp/passkey/finish`: the second factor by passkey. Allowed, the session is replaced by one at the
/// next step (new cookie) and the answer names the page to go to.
pub async fn finish_sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(answer): Json<SignInAnswer>,
) -> Response {
    let need = Need::At(|stage| stage == Stage::PendingTotp);
    let session = match ceremony_session(&state, &headers, need, &answer.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let service = match session.data.role {
        Role::User => "web-passkey",
        Role::Admin => "web-admin-passkey",
        Role::DomainAdmin => "web-domainadmin-passkey",
    };
    let request = PasskeyFactorRequest {
        owner: owner_of(&session),
        ceremony: answer.ceremony,
        answer: answer.credential.to_string(),
        remote_ip: Some(state.web.client_ip(peer, &headers)),
    };
    match state.auth.passkey_factor(&request, service).await {
        Decision::Allowed { next, .. } => match advance_session(&state, &session, stage_for(next)).await {
            Ok((page, cookie)) => {
                let mut response = Json(json!({ "next": page })).into_response();
                add_set_cookie(response.headers_mut(), &cookie);
                response
            }
            Err(err) => error_answer(err),
        },
        refused => refused_answer(refused, "The passkey was not accepted."),
    }
}

/// The start of a passwordless sign-in, from a login page.
#[derive(Deserialize)]
pub struct SignInStart {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    area: String,
}

/// The browser's answer to a passwordless sign-in.
#[derive(Deserialize)]
pub struct SignInFinish {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    area: String,
    ceremony: String,
    credential: serde_json::Value,
}

/// The login page a passwordless sign-in came from.
fn sign_in_area(area: &str) -> Option<(SignInArea, Role)> {
    match area {
        "user" => Some((SignInArea::Mailbox, Role::User)),
        "admin" => Some((SignInArea::Admin(AdminRole::Admin), Role::Admin)),
        "domainadmin" => Some((SignInArea::Admin(AdminRole::DomainAdmin), Role::DomainAdmin)),
        _ => None,
    }
}

/// Whether the request carries the login page's token (the double-submit cookie against login CSRF).
fn login_token_ok(headers: &HeaderMap, csrf: &str) -> bool {
    cookie(headers, LOGIN_CSRF_COOKIE).is_some_and(|expected| same_token(&expected, csrf))
}

/// `POST /passkeys/sign-in/start`: a challenge for any of this site's passkeys.
pub async fn start_passwordless(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<SignInStart>,
) -> Response {
    if !login_token_ok(&headers, &request.csrf) {
        return refusal(StatusCode::FORBIDDEN, "The page is out of date. Reload it.");
    }
    if sign_in_area(&request.area).is_none() {
        return refusal(StatusCode::BAD_REQUEST, "Unknown login.");
    }
    challenge_answer(state.auth.start_passkey_sign_in())
}

/// `POST /passkeys/sign-in/finish`: signs in with the passkey that answered; allowed, a session starts at the
/// account's next step and the answer names its page.
pub async fn finish_passwordless(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(answer): Json<SignInFinish>,
) -> Response {
    if !login_token_ok(&headers, &answer.csrf) {
        return refusal(StatusCode::FORBIDDEN, "The page is out of date. Reload it.");
    }
    let Some((area, role)) = sign_in_area(&answer.area) else {
        return refusal(StatusCode::BAD_REQUEST, "Unknown login.");
    };
    let service = match role {
        Role::User => "web-passkey",
        Role::Admin => "web-admin-passkey",
        Role::DomainAdmin => "web-domainadmin-passkey",
    };
    let request = PasskeySignInRequest {
        area,
        ceremony: answer.ceremony,
        answer: answer.credential.to_string(),
        remote_ip: Some(state.web.client_ip(peer, &headers)),
    };
    match state.auth.passkey_sign_in(&request, service).await {
        Decision::Allowed { user, next, .. } => {
            let stage = stage_for(next);
            let remote_ip = request.remote_ip.map(|ip| ip.to_string());
            match state.web.sessions.create(&state.store, role, &user, stage, None, remote_ip).await {
                Ok((_, cookie_value)) => {
                    let mut response = Json(json!({ "next": stage_page(role, stage) })).into_response();
                    let secure = state.web.sessions.secure_cookies;
                    add_set_cookie(response.headers_mut(), &state.web.sessions.cookie_header(&cookie_value));
                    add_set_cookie(response.headers_mut(), &clear_cookie(LOGIN_CSRF_COOKIE, secure));
                    response
                }
                Err(err) => error_answer(err),
            }
        }
        refused => refused_answer(refused, "Login failed."),
    }
}
