//! The three logins (mailbox owners at `/`, administrators at `/admin`, domain administrators at
//! `/domainadmin`), their login pages, and logout.
//!
//! Every login goes through the engine and so through the brute-force guard; failures say only "login failed"
//! (the reason goes to the auth log). The login forms carry a double-submit token against login CSRF. A right
//! password starts a session at the step the engine names (second factor, enrolment, new password, or ready).

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_engine::{AdminLoginRequest, Credentials, Decision, DenyReason, EntryPoint, LoginRequest, LoginService};
use gatehouse_passwords::Zeroizing;
use serde::Deserialize;

use super::gate::{Need, Refusal, gate_form};
use super::respond::{redirect, render, segment, unavailable};
use super::session::{
    LOGIN_CSRF_COOKIE, ProviderSession, Role, SESSION_COOKIE, Stage, add_set_cookie, clear_cookie, cookie,
    random_token, same_token, set_cookie,
};
use crate::AppState;

/// A link on a page.
pub(super) struct LinkView {
    pub(super) name: String,
    pub(super) url: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    notice: Option<String>,
    error: Option<String>,
    title: &'static str,
    action: &'static str,
    username_label: &'static str,
    csrf: String,
    links: Vec<LinkView>,
    other_logins: Vec<(&'static str, &'static str)>,
    providers: Vec<ProviderButton>,
    show_form: bool,
    /// "Sign in with a passkey" is offered (the server has a relying party).
    passkeys: bool,
    /// Which login this is, for the passkey sign-in (`user`, `admin`, `domainadmin`).
    area: &'static str,
}

/// A button that starts a sign-in at an identity provider.
struct ProviderButton {
    name: String,
    url: String,
    label: String,
}

/// Messages the login pages show for `?m=`; only these fixed texts, never text from the URL.
pub(super) fn login_message(code: Option<&str>) -> Option<String> {
    let text = match code? {
        "webmail" => "Log in to open webmail.",
        "ended" => "You have been logged out.",
        "password" => "Your password was changed. Log in with the new one.",
        "expired" => "Your session has ended. Log in again.",
        "forbidden" => "That is not available to this login.",
        _ => return None,
    };
    Some(text.to_string())
}

/// Which login a role uses, for the login page.
fn login_texts(role: Role) -> (&'static str, &'static str, &'static str) {
    match role {
        Role::User => ("Log in", "/", "Mail address"),
        Role::Admin => ("Administrator login", "/admin", "Administrator"),
        Role::DomainAdmin => ("Domain administrator login", "/domainadmin", "Domain administrator"),
    }
}

/// The app links shown on the login page (those not hidden there). A store error shows none rather than
/// failing the login page.
async fn login_links(state: &AppState) -> Vec<LinkView> {
    match state.store.list_app_links().await {
        Ok(links) => {
            links.into_iter().filter(|l| !l.hidden_on_login).map(|l| LinkView { name: l.name, url: l.url }).collect()
        }
        Err(err) => {
            tracing::warn!("app links unavailable: {err}");
            Vec::new()
        }
    }
}

/// The buttons of the identity providers users sign in at (on the mailbox login page). A store error shows
/// none rather than failing the login page.
async fn provider_buttons(state: &AppState, role: Role) -> Vec<ProviderButton> {
    let area = match role {
        Role::User => "",
        Role::Admin => "?for=admin",
        Role::DomainAdmin => "?for=domain_admin",
    };
    match state.auth.sources().sign_in_buttons(role != Role::User).await {
        Ok(buttons) => buttons
            .into_iter()
            .map(|(name, label)| ProviderButton { url: format!("/oidc/sign-in/{}{area}", segment(&name)), name, label })
            .collect(),
        Err(err) => {
            tracing::warn!("identity providers unavailable for the login page: {err}");
            Vec::new()
        }
    }
}

/// The login page with a fresh double-submit token; the mailbox login page shows the password form unless
/// the configuration hides it (then `?local=1` shows it).
pub(super) async fn login_page(
    state: &AppState,
    role: Role,
    notice: Option<String>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    login_page_with_form(state, role, notice, error, status, role != Role::User || !state.web.hide_local_login).await
}

/// The login page, with or without its password form.
pub(super) async fn login_page_with_form(
    state: &AppState,
    role: Role,
    notice: Option<String>,
    error: Option<&str>,
    status: StatusCode,
    show_form: bool,
) -> Response {
    let (title, action, username_label) = login_texts(role);
    let csrf = random_token();
    let other_logins = match role {
        Role::User => vec![("/admin", "Administrator login"), ("/domainadmin", "Domain administrator login")],
        _ => vec![("/", "Mailbox login")],
    };
    let page = LoginPage {
        notice,
        error: error.map(str::to_string),
        title,
        action,
        username_label,
        csrf: csrf.clone(),
        links: login_links(state).await,
        other_logins,
        providers: provider_buttons(state, role).await,
        show_form,
        passkeys: state.auth.passkeys().is_some(),
        area: match role {
            Role::User => "user",
            Role::Admin => "admin",
            Role::DomainAdmin => "domainadmin",
        },
    };
    let mut response = render(&page, status);
    let secure = state.web.sessions.secure_cookies;
    add_set_cookie(
        response.headers_mut(),
        &set_cookie(LOGIN_CSRF_COOKIE, &csrf, Some(std::time::Duration::from_secs(3600)), secure),
    );
    response
}

/// `?m=` on the login pages, and `?local=1` (the password form even where it is hidden or the page would
/// send the browser to an identity provider).
#[derive(Deserialize)]
pub struct MessageQuery {
    pub(super) m: Option<String>,
    #[serde(default)]
    pub(super) local: Option<String>,
}

impl MessageQuery {
    /// Whether `?local=1` asks for the password form.
    pub(super) fn local(&self) -> bool {
        self.local.as_deref() == Some("1")
    }
}

/// `GET /` without a session: the mailbox login page — or, when the configuration names a provider to sign in
/// at and neither `?local=1` nor a message is asked for, that provider's sign-in.
pub(super) async fn user_login_page(state: &AppState, query: &MessageQuery) -> Response {
    if let Some(provider) = &state.web.sign_in_provider
        && !query.local()
        && query.m.is_none()
    {
        return redirect(&format!("/oidc/sign-in/{}", segment(provider)));
    }
    let show_form = !state.web.hide_local_login || query.local();
    login_page_with_form(state, Role::User, login_message(query.m.as_deref()), None, StatusCode::OK, show_form).await
}

/// A login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

/// Whether the login form's token matches its cookie (login CSRF).
fn login_csrf_ok(headers: &HeaderMap, form: &LoginForm) -> bool {
    cookie(headers, LOGIN_CSRF_COOKIE).is_some_and(|expected| same_token(&expected, &form.csrf))
}

async fn login_failed(state: &AppState, role: Role, decision: &Decision) -> Response {
    match decision {
        Decision::TempFail { .. } => {
            login_page(
                state,
                role,
                None,
                Some("Gatehouse cannot check logins right now. Try again in a moment."),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await
        }
        Decision::Denied { reason: DenyReason::Banned, .. } => {
            login_page(
                state,
                role,
                None,
                Some("Too many failed logins from your address. Try again later."),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        _ => login_page(state, role, None, Some("Login failed."), StatusCode::UNAUTHORIZED).await,
    }
}

/// Starts the session after a successful login and sends the browser on.
pub(super) async fn start_session(
    state: &AppState,
    role: Role,
    principal: &str,
    stage: Stage,
    provider: Option<ProviderSession>,
    remote_ip: std::net::IpAddr,
) -> Response {
    let remote_ip = Some(remote_ip.to_string());
    match state.web.sessions.create(&state.store, role, principal, stage, provider, remote_ip).await {
        Ok((session, cookie_value)) => {
            // A required enrolment starts with this (posted) login, so its page only shows it.
            if stage == Stage::TotpEnrolment
                && let Err(err) = super::steps::begin_enrolment(state, &session).await
            {
                return unavailable(err);
            }
            let mut response = redirect(role.home());
            let secure = state.web.sessions.secure_cookies;
            add_set_cookie(response.headers_mut(), &state.web.sessions.cookie_header(&cookie_value));
            add_set_cookie(response.headers_mut(), &clear_cookie(LOGIN_CSRF_COOKIE, secure));
            response
        }
        Err(err) => unavailable(err),
    }
}

/// `POST /`: a mailbox owner logs in.
pub async fn user_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !login_csrf_ok(&headers, &form) {
        return login_page(&state, Role::User, None, Some("The form expired. Try again."), StatusCode::FORBIDDEN).await;
    }
    let username = form.username.trim().to_lowercase();
    // Master-user logins (`mailbox*master`) are for mail protocols only: the engine refuses them here (counted
    // by the guard and logged like any refusal).
    let request = LoginRequest {
        username: username.clone(),
        authzid: None,
        credentials: Credentials::password(form.password.into_bytes()),
        service: LoginService::Web,
        remote_ip: Some(state.web.client_ip(peer, &headers)),
        secured: false,
        entry: EntryPoint::WebUi,
        master_second_pass: None,
    };
    let decision = state.auth.login(&request).await;
    let Decision::Allowed { user, next, .. } = &decision else {
        return login_failed(&state, Role::User, &decision).await;
    };
    // The engine says what the session must do first (second factor, enrolment, new password).
    start_session(&state, Role::User, user, super::steps::stage_for(*next), None, state.web.client_ip(peer, &headers))
        .await
}

async fn admin_login_common(
    state: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    form: LoginForm,
    role: Role,
) -> Response {
    if !login_csrf_ok(&headers, &form) {
        return login_page(&state, role, None, Some("The form expired. Try again."), StatusCode::FORBIDDEN).await;
    }
    let Some(kind) = role.admin_role() else { return StatusCode::NOT_FOUND.into_response() };
    let request = AdminLoginRequest {
        username: form.username.trim().to_string(),
        password: Zeroizing::new(form.password.into_bytes()),
        kind,
        remote_ip: Some(state.web.client_ip(peer, &headers)),
    };
    let decision = state.auth.login_admin(&request).await;
    let Decision::Allowed { user, next, .. } = &decision else {
        return login_failed(&state, role, &decision).await;
    };
    start_session(&state, role, user, super::steps::stage_for(*next), None, state.web.client_ip(peer, &headers)).await
}

/// `POST /admin`.
pub async fn admin_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    admin_login_common(state, peer, headers, form, Role::Admin).await
}

/// `POST /domainadmin`.
pub async fn domain_admin_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    admin_login_common(state, peer, headers, form, Role::DomainAdmin).await
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// `POST /logout`: ends the session and every webmail token it minted.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    let session = match gate_form(&state, &headers, Need::Any, &form.csrf).await {
        Ok(session) => session,
        Err(Refusal::NoSession) => return redirect("/?m=ended"),
        Err(refusal) => return refusal.response(Role::User),
    };
    if let Err(err) = state.store.delete_web_session(&session.id).await {
        return unavailable(err);
    }
    tracing::info!(principal = session.data.principal, role = session.data.role.as_str(), "logged out");
    // A session signed in at an identity provider signs out there too.
    let at_provider = match &session.data.provider {
        Some(provider) => super::sign_in::provider_logout(&state, provider, session.data.role).await,
        None => None,
    };
    let mut response = at_provider.unwrap_or_else(|| redirect(&format!("{}?m=ended", session.data.role.home())));
    add_set_cookie(response.headers_mut(), &clear_cookie(SESSION_COOKIE, state.web.sessions.secure_cookies));
    response
}
