//! The steps between a right password and a usable session, and TOTP management: the pending TOTP code (or a
//! recovery code), forced TOTP enrolment, forced password change, and turning TOTP on (QR code, confirmation,
//! recovery codes shown once) or off.
//!
//! Each finished step replaces the session by a new one (new cookie), so an id seen before the second factor
//! is worthless after it. Wrong codes count toward the brute-force guard like wrong passwords.

// Handlers return `Result<_, Response>` so a refusal is the page to send.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::{Error, MailboxAddress};
use gatehouse_passwords::Zeroizing;
use gatehouse_store::{AdminChanges, MailboxChanges, TotpPrincipal};
use serde::Deserialize;

use super::gate::{Need, gate, gate_form, stage_page};
use super::login::TokenForm;
use super::respond::{redirect, render, sentence, unavailable};
use super::session::{Role, Session, Stage, add_set_cookie};
use crate::{AppState, totp};
use gatehouse_engine::{
    AdminLoginRequest, Credentials, Decision, DenyReason, EntryPoint, LoginRequest, LoginService, RequiredStep,
    SecondFactorOwner, SecondFactorRequest,
};

#[derive(Template)]
#[template(path = "totp_login.html")]
struct CodePage {
    notice: Option<String>,
    error: Option<String>,
    action: &'static str,
    csrf: String,
    /// The account has passkeys: the page offers them.
    passkey: bool,
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct SetupPage {
    notice: Option<String>,
    error: Option<String>,
    required: bool,
    /// A passkey can be registered instead (the server has a relying party).
    passkeys: bool,
    /// Adding a passkey asks for the password (not during a required enrolment).
    ask_password: bool,
    qr: String,
    secret: String,
    csrf: String,
}

#[derive(Template)]
#[template(path = "totp_done.html")]
struct DonePage {
    notice: Option<String>,
    codes: Vec<String>,
    password_app_note: bool,
    next: String,
}

#[derive(Template)]
#[template(path = "password_required.html")]
struct PasswordPage {
    notice: Option<String>,
    error: Option<String>,
    csrf: String,
}

/// A form with a code.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    code: String,
}

/// The one clock, as the TOTP code check counts time (unsigned seconds).
fn now() -> u64 {
    gatehouse_core::clock::now().max(0) as u64
}

/// The session of a step's page when its stage is one `accepts`, or the answer to send instead (the login, or
/// the page of the stage it is at).
async fn step_session(state: &AppState, headers: &HeaderMap, accepts: fn(Stage) -> bool) -> Result<Session, Response> {
    gate(state, headers, Need::At(accepts)).await.map_err(|refusal| refusal.response(Role::User))
}

/// [`step_session`] for a step's form post, once the form's CSRF token is the session's.
async fn posting_session(
    state: &AppState,
    headers: &HeaderMap,
    accepts: fn(Stage) -> bool,
    csrf: &str,
) -> Result<Session, Response> {
    gate_form(state, headers, Need::At(accepts), csrf).await.map_err(|refusal| refusal.response(Role::User))
}

/// Who a session's TOTP and passkeys belong to.
pub(super) fn principal_of(session: &Session) -> Result<Principal, Error> {
    Ok(match session.data.role {
        Role::User => Principal::Mailbox(MailboxAddress::parse(&session.data.principal)?),
        Role::Admin | Role::DomainAdmin => Principal::Admin(session.data.principal.clone()),
    })
}

/// An owned [`TotpPrincipal`].
pub(super) enum Principal {
    Mailbox(MailboxAddress),
    Admin(String),
}

impl Principal {
    pub(super) fn as_ref(&self) -> TotpPrincipal<'_> {
        match self {
            Principal::Mailbox(address) => TotpPrincipal::Mailbox(address),
            Principal::Admin(name) => TotpPrincipal::Admin(name),
        }
    }
}

/// Checks the session holder's own password through the engine (the guard counts a wrong one, the auth log
/// records it): before a change only the owner may make.
pub(super) async fn check_own_password(
    state: &AppState,
    session: &Session,
    password: Vec<u8>,
    remote_ip: Option<std::net::IpAddr>,
) -> Decision {
    match session.data.role.admin_role() {
        None => {
            let request = LoginRequest {
                username: session.data.principal.clone(),
                authzid: None,
                credentials: Credentials::password(password),
                service: LoginService::Web,
                remote_ip,
                secured: false,
                entry: EntryPoint::WebUi,
                master_second_pass: None,
            };
            state.auth.login(&request).await
        }
        Some(kind) => {
            let request = AdminLoginRequest {
                username: session.data.principal.clone(),
                password: Zeroizing::new(password),
                kind,
                remote_ip,
            };
            state.auth.login_admin(&request).await
        }
    }
}

/// Whose second factor a session's holder has.
pub(super) fn owner_of(session: &Session) -> SecondFactorOwner {
    match session.data.role {
        Role::User => SecondFactorOwner::Mailbox(session.data.principal.clone()),
        Role::Admin | Role::DomainAdmin => SecondFactorOwner::Administrator(session.data.principal.clone()),
    }
}

/// The stage a session continues at, for the engine's next required step.
pub(super) fn stage_for(next: Option<RequiredStep>) -> Stage {
    match next {
        None => Stage::Ready,
        Some(RequiredStep::SecondFactor) => Stage::PendingTotp,
        Some(RequiredStep::EnrolSecondFactor) => Stage::TotpEnrolment,
        Some(RequiredStep::ChangePassword) => Stage::PasswordChange,
    }
}

/// The stage after `done`, as the engine decides it from the account's state now.
pub(super) async fn stage_after(state: &AppState, session: &Session, done: RequiredStep) -> Result<Stage, Response> {
    match state.auth.step_after(&owner_of(session), done).await {
        Ok(next) => Ok(stage_for(next)),
        Err(Decision::TempFail { cause }) => Err(unavailable(cause)),
        Err(_) => Err(redirect(&format!("{}?m=expired", session.data.role.home()))),
    }
}

/// Replaces the session by a new one at `stage`: the page to go to and the new cookie's `Set-Cookie` value.
pub(super) async fn advance_session(
    state: &AppState,
    session: &Session,
    stage: Stage,
) -> Result<(&'static str, String), Error> {
    let (next, cookie) = state
        .web
        .sessions
        .create(
            &state.store,
            session.data.role,
            &session.data.principal,
            stage,
            session.data.provider.clone(),
            session.data.remote_ip.clone(),
        )
        .await?;
    if stage == Stage::TotpEnrolment {
        begin_enrolment(state, &next).await?;
    }
    state.store.delete_web_session(&session.id).await?;
    Ok((stage_page(session.data.role, stage), state.web.sessions.cookie_header(&cookie)))
}

/// Replaces the session by a new one at `stage` (new cookie), and sends the browser on.
async fn advance(state: &AppState, session: &Session, stage: Stage) -> Response {
    match advance_session(state, session, stage).await {
        Ok((page, cookie)) => {
            let mut response = redirect(page);
            add_set_cookie(response.headers_mut(), &cookie);
            response
        }
        Err(err) => unavailable(err),
    }
}

/// `GET /totp`: the code form of a login waiting for its second factor.
pub async fn code_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match step_session(&state, &headers, |stage| stage == Stage::PendingTotp).await {
        Ok(session) => {
            let passkey = match has_passkeys(&state, &session).await {
                Ok(passkey) => passkey,
                Err(err) => return unavailable(err),
            };
            let page =
                CodePage { notice: None, error: None, action: "/totp", csrf: session.data.csrf.clone(), passkey };
            render(&page, StatusCode::OK)
        }
        Err(response) => response,
    }
}

/// Whether the session's holder has passkeys this server can check.
async fn has_passkeys(state: &AppState, session: &Session) -> Result<bool, Error> {
    if state.auth.passkeys().is_none() {
        return Ok(false);
    }
    Ok(!state.store.passkeys(principal_of(session)?.as_ref()).await?.is_empty())
}

/// `POST /totp`: the second factor.
pub async fn check_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let session = match posting_session(&state, &headers, |stage| stage == Stage::PendingTotp, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let service = match session.data.role {
        Role::User => "web-totp",
        Role::Admin => "web-admin-totp",
        Role::DomainAdmin => "web-domainadmin-totp",
    };
    let request = SecondFactorRequest {
        owner: owner_of(&session),
        code: Zeroizing::new(form.code.clone()),
        remote_ip: Some(state.web.client_ip(peer, &headers)),
    };
    // The engine decides (guard, code or recovery code, replay) and counts; this only translates.
    match state.auth.second_factor(&request, service).await {
        Decision::Allowed { next, .. } => advance(&state, &session, stage_for(next)).await,
        Decision::Denied { reason: DenyReason::Banned, .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many failed logins from your address. Try again later.")
                .into_response()
        }
        Decision::Denied { .. } => {
            let passkey = match has_passkeys(&state, &session).await {
                Ok(passkey) => passkey,
                Err(err) => return unavailable(err),
            };
            let page = CodePage {
                notice: None,
                error: Some("Wrong or already used code.".into()),
                action: "/totp",
                csrf: session.data.csrf.clone(),
                passkey,
            };
            render(&page, StatusCode::UNAUTHORIZED)
        }
        Decision::TempFail { cause } => unavailable(cause),
    }
}

/// `GET /totp/setup`: the QR code and key of the pending secret, or the button that starts an enrolment.
pub async fn setup_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session =
        match step_session(&state, &headers, |stage| matches!(stage, Stage::Ready | Stage::TotpEnrolment)).await {
            Ok(session) => session,
            Err(response) => return response,
        };
    setup_page(&state, &session, None).await
}

/// Starts an enrolment for the session's holder (a new pending secret, audited) unless one is pending or TOTP is
/// on already. Only state-changing requests call it: the form post that starts the enrolment, or the login
/// post that leads into a required one.
pub(super) async fn begin_enrolment(state: &AppState, session: &Session) -> Result<(), Error> {
    let principal = principal_of(session)?;
    if state.store.totp_state(principal.as_ref()).await?.enabled
        || state.store.pending_totp_secret(principal.as_ref()).await?.is_some()
    {
        return Ok(());
    }
    state.store.begin_totp(&session.actor(), principal.as_ref(), &totp::new_secret()).await
}

/// `POST /totp/setup/start`: begins the enrolment, then shows its QR code.
pub async fn start_setup(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    let session = match posting_session(
        &state,
        &headers,
        |stage| matches!(stage, Stage::Ready | Stage::TotpEnrolment),
        &form.csrf,
    )
    .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    match begin_enrolment(&state, &session).await {
        Ok(()) => redirect("/totp/setup"),
        Err(err) => unavailable(err),
    }
}

async fn setup_page(state: &AppState, session: &Session, error: Option<&str>) -> Response {
    let prepared = async {
        let principal = principal_of(session)?;
        if state.store.totp_state(principal.as_ref()).await?.enabled {
            return Ok(None);
        }
        // Showing the page changes nothing: without a pending secret it offers to start one.
        let Some(secret) = state.store.pending_totp_secret(principal.as_ref()).await? else {
            return Ok(Some((String::new(), String::new())));
        };
        let issuer = state.web.public_url.as_ref().and_then(|u| u.host_str().map(str::to_string));
        let uri = totp::provisioning_uri(&secret, issuer.as_deref().unwrap_or("Gatehouse"), &session.data.principal);
        Ok::<_, Error>(Some((secret, totp::qr_svg(&uri)?)))
    };
    match prepared.await {
        Ok(Some((secret, qr))) => render(
            &SetupPage {
                notice: None,
                error: error.map(str::to_string),
                required: session.data.stage == Stage::TotpEnrolment,
                passkeys: state.auth.passkeys().is_some(),
                ask_password: super::passkeys::asks_password(session),
                qr,
                secret,
                csrf: session.data.csrf.clone(),
            },
            if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK },
        ),
        Ok(None) => redirect(session.data.role.home()),
        Err(err) => unavailable(err),
    }
}

/// `POST /totp/setup`: confirms the pending secret with a code; shows the recovery codes once.
pub async fn confirm_setup(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CodeForm>) -> Response {
    let session = match posting_session(
        &state,
        &headers,
        |stage| matches!(stage, Stage::Ready | Stage::TotpEnrolment),
        &form.csrf,
    )
    .await
    {
        Ok(session) => session,
        Err(response) => return response,
    };
    let confirmed = async {
        let principal = principal_of(&session)?;
        let Some(secret) = state.store.pending_totp_secret(principal.as_ref()).await? else { return Ok(None) };
        let Some(step) = totp::check_code(&secret, &form.code, now()) else { return Ok(None) };
        let codes = totp::new_recovery_codes();
        let hashes = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
        state.store.confirm_totp(&session.actor(), principal.as_ref(), step, hashes).await?;
        Ok::<_, Error>(Some(codes))
    };
    let codes = match confirmed.await {
        Ok(Some(codes)) => codes,
        Ok(None) => return setup_page(&state, &session, Some("That code does not match. Try the next one.")).await,
        Err(err) => return unavailable(err),
    };
    tracing::info!(principal = session.data.principal, "TOTP turned on");
    let (next, response_cookie) = if session.data.stage == Stage::TotpEnrolment {
        // The enrolment was the pending step: a new session continues.
        let stage = match stage_after(&state, &session, RequiredStep::EnrolSecondFactor).await {
            Ok(stage) => stage,
            Err(response) => return response,
        };
        let advanced = advance(&state, &session, stage).await;
        let cookie = advanced.headers().get_all(axum::http::header::SET_COOKIE).iter().cloned().collect::<Vec<_>>();
        (stage_page(session.data.role, stage).to_string(), cookie)
    } else {
        (session.data.role.home().to_string(), Vec::new())
    };
    let page = DonePage { notice: None, codes, password_app_note: session.data.role == Role::User, next };
    let mut response = render(&page, StatusCode::OK);
    for cookie in response_cookie {
        response.headers_mut().append(axum::http::header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /totp/disable`: turns TOTP off with a current code, unless an administrator requires it.
pub async fn disable(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let session = match posting_session(&state, &headers, |stage| stage == Stage::Ready, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let outcome = async {
        let principal = &session.data.principal;
        let required = match session.data.role.admin_role() {
            None => state.store.mailbox(&MailboxAddress::parse(principal)?).await?.force_totp,
            Some(role) => state.store.admin(role, principal).await?.is_some_and(|a| a.force_totp),
        };
        if required {
            return Ok("Your administrator requires two-factor authentication for this account.");
        }
        // A current code, decided (and counted) by the engine like the second factor of a login.
        let request = SecondFactorRequest {
            owner: owner_of(&session),
            code: Zeroizing::new(form.code.clone()),
            remote_ip: Some(state.web.client_ip(peer, &headers)),
        };
        match state.auth.second_factor(&request, "web-totp-disable").await {
            Decision::Allowed { .. } => {}
            Decision::TempFail { cause } => return Err(cause),
            Decision::Denied { .. } => return Ok("Wrong or already used code; two-factor authentication stays on."),
        }
        state.store.disable_totp(&session.actor(), principal_of(&session)?.as_ref()).await?;
        Ok::<_, Error>("The authenticator app (TOTP) is off.")
    };
    let outcome = outcome.await;
    let mut session = session;
    match outcome {
        Ok(message) => {
            session.data.notice = Some(message.into());
            if let Err(err) = state.web.sessions.save(&state.store, &session).await {
                return unavailable(err);
            }
            redirect(session.data.role.home())
        }
        Err(err) => unavailable(err),
    }
}

/// The forced-password form.
#[derive(Deserialize)]
pub struct NewPasswordForm {
    #[serde(default)]
    csrf: String,
    new: String,
    repeat: String,
}

/// `GET /password/required`.
pub async fn password_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match step_session(&state, &headers, |stage| stage == Stage::PasswordChange).await {
        Ok(session) => {
            render(&PasswordPage { notice: None, error: None, csrf: session.data.csrf.clone() }, StatusCode::OK)
        }
        Err(response) => response,
    }
}

/// `POST /password/required`: the new password, then on to a usable session (other sessions end).
pub async fn password_required(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewPasswordForm>,
) -> Response {
    let session = match posting_session(&state, &headers, |stage| stage == Stage::PasswordChange, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let problem = if form.new != form.repeat {
        Some("The passwords differ.".to_string())
    } else {
        state.web.password_policy.check(form.new.as_bytes()).err().map(|err| sentence(&err))
    };
    if let Some(problem) = problem {
        let page = PasswordPage { notice: None, error: Some(problem), csrf: session.data.csrf.clone() };
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let changed = async {
        let hash = state
            .hash_pool
            .generate(Zeroizing::new(form.new.as_bytes().to_vec()), state.web.password_scheme)
            .await
            .map_err(Error::from)?;
        // The store ends every session of the account with the old password, this one included.
        match session.data.role.admin_role() {
            None => {
                let address = MailboxAddress::parse(&session.data.principal)?;
                let changes = MailboxChanges {
                    password_hash: Some(hash),
                    force_password_change: Some(false),
                    ..Default::default()
                };
                state.store.update_mailbox(&session.actor(), &address, changes).await?;
            }
            Some(role) => {
                let changes = AdminChanges {
                    password_hash: Some(hash),
                    force_password_change: Some(false),
                    ..Default::default()
                };
                state.store.update_admin(&session.actor(), &session.data.principal, role, changes).await?;
            }
        }
        Ok::<_, Error>(())
    };
    if let Err(err) = changed.await {
        return unavailable(err);
    }
    advance(&state, &session, Stage::Ready).await
}
