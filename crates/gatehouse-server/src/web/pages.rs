//! The web UI's handlers: the three logins, the user page (webmail, app passwords, password, recent logins),
//! the admin and domain-admin pages, logout, and `/sogo-auth`, which opens webmail for the owner or starts an
//! administrator's impersonation.
//!
//! Login failures say only "login failed" (the reason goes to the auth log); every login goes through the
//! engine and so through the brute-force guard. Redirects go to fixed paths only.

// Handlers return `Result<_, Response>` so a refusal is the page to send; a boxed error would gain nothing.
#![allow(clippy::result_large_err)]

use gatehouse_core::clock::now;
use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header::LOCATION};
use axum::response::{IntoResponse, Response};
use gatehouse_core::{Error, MailboxAddress, ProtocolSet, Service};
use gatehouse_engine::{
    AdminLoginRequest, Credentials, Decision, DenyReason, EntryPoint, LoginRequest, LoginService, app_password, sso,
};
use gatehouse_passwords::{GenerateScheme, Zeroizing};
use gatehouse_store::{
    Actor, ActorRole, AppPassword, AuthResult, LogFilter, MailboxChanges, NewAppPassword, TotpPrincipal,
};
use serde::Deserialize;

use super::session::{
    LOGIN_CSRF_COOKIE, Role, Session, Stage, WebmailGrant, add_set_cookie, clear_cookie, cookie, random_token,
    same_token, set_cookie,
};
use super::{WebConfig, render};
use crate::AppState;

// ---------------------------------------------------------------------------------------------------------
// Templates

/// A link on a page.
struct LinkView {
    name: String,
    url: String,
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
}

struct AppPasswordView {
    id: i64,
    name: String,
    protocols: String,
    expires: String,
    last_used: String,
    state: &'static str,
    active: bool,
}

struct LogView {
    time: String,
    service: String,
    result: String,
    remote_ip: String,
    by: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    notice: Option<String>,
    address: String,
    address_encoded: String,
    csrf: String,
    new_token: Option<String>,
    webmail: bool,
    links: Vec<LinkView>,
    totp_enabled: bool,
    app_passwords: Vec<AppPasswordView>,
    protocol_choices: Vec<(&'static str, &'static str)>,
    local_password: bool,
    log: Vec<LogView>,
}

struct MailboxView {
    address: String,
    address_encoded: String,
    auth_source: String,
    protocols: String,
    quota_mib: i64,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    notice: Option<String>,
    title: &'static str,
    username: String,
    csrf: String,
    impersonating: Vec<String>,
    mailboxes: Vec<MailboxView>,
    can_impersonate: bool,
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

pub(super) fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(LOCATION, HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")));
    response
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn date_time(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]")).ok())
        .unwrap_or_else(|| seconds.to_string())
}

/// The answer to an error, by fault: the caller's (a rule refused it, the object is gone) is a page that says so,
/// with a way back (4xx); the server's (a database or directory unreachable) is 503 "try again", never "wrong
/// password".
pub(super) fn unavailable(err: impl Into<Error>) -> Response {
    let err = err.into();
    match err.fault() {
        gatehouse_core::Fault::Client => {
            tracing::info!("web request refused: {err}");
            let status = match &err {
                Error::NotFound { .. } => StatusCode::NOT_FOUND,
                Error::AlreadyExists { .. } => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let page = ErrorPage { notice: None, message: super::steps::sentence(&err) };
            render(&page, status)
        }
        gatehouse_core::Fault::Server => {
            tracing::warn!("web request failed: {err}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Gatehouse cannot answer right now (a database or directory is unreachable). Try again in a moment.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    notice: Option<String>,
    message: String,
}

/// Messages the login pages show for `?m=`; only these fixed texts, never text from the URL.
fn login_message(code: Option<&str>) -> Option<String> {
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

/// The login page with a fresh double-submit token.
async fn login_page(
    state: &AppState,
    role: Role,
    notice: Option<String>,
    error: Option<&str>,
    status: StatusCode,
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
    };
    let mut response = render(&page, status);
    let secure = state.web.sessions.secure_cookies;
    add_set_cookie(
        response.headers_mut(),
        &set_cookie(LOGIN_CSRF_COOKIE, &csrf, Some(std::time::Duration::from_secs(3600)), secure),
    );
    response
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

/// The live, fully logged-in session of `role`, or the response to send instead (the login page, or the pending
/// step of an unfinished login).
async fn require(state: &AppState, headers: &HeaderMap, role: Role) -> Result<Session, Response> {
    let session = match state.web.sessions.load(&state.store, headers).await {
        Ok(Some(session)) if session.data.role == role => session,
        Ok(_) => return Err(redirect(&format!("{}?m=expired", role.home()))),
        Err(err) => return Err(unavailable(err)),
    };
    match session.data.stage {
        Stage::Ready => Ok(session),
        // An unfinished login reaches nothing but its next step.
        stage => Err(redirect(stage_page(role, stage))),
    }
}

/// How an app password stands at `now`: "revoked", "expired" or "active".
pub(super) fn app_password_state(app: &AppPassword, now: i64) -> &'static str {
    if !app.active {
        "revoked"
    } else if app.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

/// Checks a form's CSRF token against the session's.
pub(super) fn check_csrf(session: &Session, form_token: &str) -> Result<(), Response> {
    if same_token(&session.data.csrf, form_token) {
        Ok(())
    } else {
        tracing::warn!(principal = session.data.principal, "a form was posted without this session's CSRF token");
        Err((StatusCode::FORBIDDEN, "The form is out of date or came from another site. Reload the page.")
            .into_response())
    }
}

/// [`require`] for a form post: the session, once the form's CSRF token matches it.
async fn require_form(state: &AppState, headers: &HeaderMap, role: Role, csrf: &str) -> Result<Session, Response> {
    let session = require(state, headers, role).await?;
    check_csrf(&session, csrf)?;
    Ok(session)
}

/// The address of a user session's mailbox (a session that does not name one is a server fault).
fn user_address(session: &Session) -> Result<MailboxAddress, Response> {
    MailboxAddress::parse(&session.data.principal).map_err(unavailable)
}

/// [`require_form`] for a user's change: the session and its mailbox's address.
async fn user_form(state: &AppState, headers: &HeaderMap, csrf: &str) -> Result<(Session, MailboxAddress), Response> {
    let session = require_form(state, headers, Role::User, csrf).await?;
    let address = user_address(&session)?;
    Ok((session, address))
}

/// Who a user's own changes are recorded as.
fn user_actor(address: &MailboxAddress) -> Actor {
    Actor { name: address.to_string(), role: ActorRole::User }
}

// ---------------------------------------------------------------------------------------------------------
// Logins

/// `?m=` on the login pages.
#[derive(Deserialize)]
pub struct MessageQuery {
    m: Option<String>,
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

/// Starts the session after a successful password check and sends the browser on.
async fn start_session(state: &AppState, role: Role, principal: &str, stage: Stage) -> Response {
    match state.web.sessions.create(&state.store, role, principal, stage).await {
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
    start_session(&state, Role::User, user, super::steps::stage_for(*next)).await
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
    start_session(&state, role, user, super::steps::stage_for(*next)).await
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
    let session = match state.web.sessions.load(&state.store, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return redirect("/?m=ended"),
        Err(err) => return unavailable(err),
    };
    if let Err(refused) = check_csrf(&session, &form.csrf) {
        return refused;
    }
    if let Err(err) = state.store.delete_web_session(&session.id).await {
        return unavailable(err);
    }
    tracing::info!(principal = session.data.principal, role = session.data.role.as_str(), "logged out");
    let mut response = redirect(&format!("{}?m=ended", session.data.role.home()));
    add_set_cookie(
        response.headers_mut(),
        &clear_cookie(super::session::SESSION_COOKIE, state.web.sessions.secure_cookies),
    );
    response
}

// ---------------------------------------------------------------------------------------------------------
// The user page

/// `GET /`: the user page, or the login.
pub async fn user_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<MessageQuery>,
) -> Response {
    match state.web.sessions.load(&state.store, &headers).await {
        Ok(Some(mut session)) if session.data.role == Role::User && session.data.stage == Stage::Ready => {
            if session.data.notice.is_none() {
                session.data.notice = login_message(query.m.as_deref());
            }
            show_user_page(&state, session, None).await
        }
        Ok(Some(session)) if session.data.role == Role::User => redirect(stage_page(Role::User, session.data.stage)),
        Ok(_) => login_page(&state, Role::User, login_message(query.m.as_deref()), None, StatusCode::OK).await,
        Err(err) => unavailable(err),
    }
}

const PROTOCOL_CHOICES: [(&str, &str); 6] = [
    ("imap", "IMAP"),
    ("pop3", "POP3"),
    ("smtp", "SMTP"),
    ("sieve", "ManageSieve"),
    ("dav", "CalDAV/CardDAV"),
    ("eas", "ActiveSync"),
];

async fn show_user_page(state: &AppState, mut session: Session, new_token: Option<String>) -> Response {
    let notice = session.data.notice.take();
    if notice.is_some()
        && let Err(err) = state.web.sessions.save(&state.store, &session).await
    {
        return unavailable(err);
    }
    let address = match user_address(&session) {
        Ok(address) => address,
        Err(response) => return response,
    };
    let loaded = async {
        let mailbox = state.store.mailbox(&address).await?;
        let apps = state.store.list_app_passwords(&address).await?;
        let filter = LogFilter { subject: Some(address.to_string()), limit: Some(20), ..LogFilter::default() };
        let log = state.store.auth_log(&filter).await?;
        let totp = state.store.totp_state(TotpPrincipal::Mailbox(&address)).await?;
        let links = state.store.list_app_links().await?;
        Ok::<_, Error>((mailbox, apps, log, totp, links))
    };
    let (mailbox, apps, log, totp, links) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return unavailable(err),
    };
    let at = now();
    let page = UserPage {
        notice,
        address_encoded: encode(&mailbox.address),
        address: mailbox.address.clone(),
        csrf: session.data.csrf.clone(),
        new_token,
        webmail: mailbox.protocols.contains(Service::Sogo),
        links: links.iter().map(|l| LinkView { name: l.name.clone(), url: l.url_for(&mailbox.address) }).collect(),
        totp_enabled: totp.enabled,
        app_passwords: apps
            .into_iter()
            .map(|app| AppPasswordView {
                id: app.id,
                state: app_password_state(&app, at),
                active: app.active,
                name: app.name,
                protocols: app.protocols.to_string(),
                expires: gatehouse_core::expiry::describe(app.expires_at),
                last_used: app.last_used_at.map(date_time).unwrap_or_else(|| "never".into()),
            })
            .collect(),
        protocol_choices: PROTOCOL_CHOICES.to_vec(),
        local_password: mailbox.auth_source == "local",
        log: log
            .into_iter()
            .map(|entry| LogView {
                time: date_time(entry.created_at),
                service: entry.service,
                result: match entry.result {
                    AuthResult::Success => "success".into(),
                    AuthResult::Failure => format!("failed ({})", entry.reason.split(':').next().unwrap_or("")),
                    AuthResult::TempFail => "not decided".into(),
                },
                remote_ip: entry.remote_ip.unwrap_or_default(),
                by: entry.master_user.map(|m| format!("{m} (impersonation)")).unwrap_or_default(),
            })
            .collect(),
    };
    render(&page, StatusCode::OK)
}

/// The new-app-password form (checkboxes repeat `protocol`).
#[derive(Deserialize)]
pub struct AppPasswordForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    expires: String,
}

/// `POST /app-passwords`: creates one; the token is shown on this response only.
pub async fn create_app_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut session = match require(&state, &headers, Role::User).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(form) = serde_urlencoded_form::<AppPasswordForm>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed form").into_response();
    };
    if let Err(refused) = check_csrf(&session, &form.csrf) {
        return refused;
    }
    let protocols: Vec<String> = url::form_urlencoded::parse(&body)
        .filter(|(key, _)| key == "protocol")
        .map(|(_, value)| value.into_owned())
        .collect();
    let protocols: ProtocolSet = match protocols.join(",").parse() {
        Ok(set) => set,
        Err(_) => ProtocolSet::NONE,
    };
    // The rules (a name, at least one protocol, never webmail) are the store's, as for the CLI and the API.
    let name = form.name.trim();
    let expires_at = match form.expires.trim() {
        "" => None,
        text => match gatehouse_core::expiry::end_of_day(text) {
            Ok(at) => Some(at),
            Err(_) => {
                session.data.notice = Some("The expiry date is not a date.".into());
                return show_user_page(&state, session, None).await;
            }
        },
    };
    let secret = Zeroizing::new(app_password::new_secret());
    let hashed = state.hash_pool.generate(Zeroizing::new(secret.as_bytes().to_vec()), GenerateScheme::Ssha256).await;
    let secret_hash = match hashed {
        Ok(hash) => hash,
        Err(err) => return unavailable(err),
    };
    let address = match user_address(&session) {
        Ok(address) => address,
        Err(response) => return response,
    };
    let new = NewAppPassword { name: name.to_string(), protocols, expires_at, secret_hash };
    match state.store.create_app_password(&user_actor(&address), &address, new).await {
        Ok(created) => {
            let token = app_password::token(created.id, &secret);
            show_user_page(&state, session, Some(token)).await
        }
        Err(err) if err.fault() == gatehouse_core::Fault::Client => {
            session.data.notice = Some(format!("The app password was not created: {err}"));
            show_user_page(&state, session, None).await
        }
        Err(err) => unavailable(err),
    }
}

/// Parses an `application/x-www-form-urlencoded` body into `T` (ignoring repeated keys it does not name).
fn serde_urlencoded_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ()> {
    let pairs: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(body)
        .map(|(key, value)| (key.into_owned(), serde_json::Value::String(value.into_owned())))
        .collect();
    serde_json::from_value(serde_json::Value::Object(pairs)).map_err(drop)
}

/// `POST /app-passwords/{id}/revoke`.
pub async fn revoke_app_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<TokenForm>,
) -> Response {
    let (mut session, address) = match user_form(&state, &headers, &form.csrf).await {
        Ok(entered) => entered,
        Err(response) => return response,
    };
    // The store only revokes an app password of this mailbox; another mailbox's id is "not found".
    session.data.notice = Some(match state.store.revoke_app_password(&user_actor(&address), &address, id).await {
        Ok(app) => format!("App password \"{}\" revoked.", app.name),
        Err(err) if err.fault() == gatehouse_core::Fault::Client => "No such app password.".to_string(),
        Err(err) => return unavailable(err),
    });
    if let Err(err) = state.web.sessions.save(&state.store, &session).await {
        return unavailable(err);
    }
    redirect("/")
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

/// `POST /password`: changes a local mailbox's password (the current one is checked through the engine, so
/// the guard applies), then ends every session of the mailbox, this one included.
pub async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let mut session = match require_form(&state, &headers, Role::User, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let problem = if form.new != form.repeat {
        Some("The new passwords differ.".to_string())
    } else {
        state.web.password_policy.check(form.new.as_bytes()).err().map(|err| super::steps::sentence(&err))
    };
    if let Some(problem) = problem {
        session.data.notice = Some(problem);
        return show_user_page(&state, session, None).await;
    }
    let request = LoginRequest {
        username: session.data.principal.clone(),
        authzid: None,
        credentials: Credentials::password(form.current.into_bytes()),
        service: LoginService::Web,
        remote_ip: Some(state.web.client_ip(peer, &headers)),
        secured: false,
        entry: EntryPoint::WebUi,
        master_second_pass: None,
    };
    match state.auth.login(&request).await {
        Decision::Allowed { .. } => {}
        Decision::TempFail { cause } => return unavailable(cause),
        Decision::Denied { .. } => {
            session.data.notice = Some("The current password is wrong.".into());
            return show_user_page(&state, session, None).await;
        }
    }
    let changed = async {
        let address = MailboxAddress::parse(&session.data.principal)?;
        let mailbox = state.store.mailbox(&address).await?;
        if mailbox.auth_source != "local" {
            return Err(Error::refused("this mailbox's password is managed by its identity provider"));
        }
        let hash = state
            .hash_pool
            .generate(Zeroizing::new(form.new.as_bytes().to_vec()), state.web.password_scheme)
            .await
            .map_err(Error::from)?;
        let changes =
            MailboxChanges { password_hash: Some(hash), force_password_change: Some(false), ..Default::default() };
        state.store.update_mailbox(&user_actor(&address), &address, changes).await?;
        state.store.delete_web_sessions_of(Role::User.as_str(), &address.to_string()).await
    };
    match changed.await {
        Ok(ended) => {
            tracing::info!(mailbox = session.data.principal, sessions_ended = ended, "password changed in the web UI");
            let mut response = redirect("/?m=password");
            add_set_cookie(
                response.headers_mut(),
                &clear_cookie(super::session::SESSION_COOKIE, state.web.sessions.secure_cookies),
            );
            response
        }
        Err(err) if err.fault() == gatehouse_core::Fault::Client => {
            session.data.notice = Some(err.to_string());
            show_user_page(&state, session, None).await
        }
        Err(err) => unavailable(err),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Admin pages

/// `GET /admin`.
pub async fn admin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<MessageQuery>,
) -> Response {
    admin_page_common(state, headers, query, Role::Admin).await
}

/// `GET /domainadmin`.
pub async fn domain_admin_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<MessageQuery>,
) -> Response {
    admin_page_common(state, headers, query, Role::DomainAdmin).await
}

async fn admin_page_common(state: AppState, headers: HeaderMap, query: MessageQuery, role: Role) -> Response {
    let mut session = match state.web.sessions.load(&state.store, &headers).await {
        Ok(Some(session)) if session.data.role == role && session.data.stage == Stage::Ready => session,
        Ok(Some(session)) if session.data.role == role => return redirect(stage_page(role, session.data.stage)),
        Ok(_) => return login_page(&state, role, login_message(query.m.as_deref()), None, StatusCode::OK).await,
        Err(err) => return unavailable(err),
    };
    let stored_notice = session.data.notice.take();
    if stored_notice.is_some()
        && let Err(err) = state.web.sessions.save(&state.store, &session).await
    {
        return unavailable(err);
    }
    let notice = stored_notice.or_else(|| login_message(query.m.as_deref()));
    let loaded = async {
        let account = match role.admin_role() {
            Some(kind) => state.store.admin(kind, &session.data.principal).await?,
            None => None,
        };
        let Some(account) = account.filter(|a| a.active) else {
            return Err(Error::refused("the administrator no longer exists or is inactive"));
        };
        let mut mailboxes = state.store.list_mailboxes(None).await?;
        if role == Role::DomainAdmin {
            mailboxes.retain(|m| account.domains.contains(&m.domain));
        }
        Ok((account, mailboxes))
    };
    let (account, mailboxes) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) if err.fault() == gatehouse_core::Fault::Client => {
            let _ = state.store.delete_web_session(&session.id).await;
            return redirect(&format!("{}?m=expired", role.home()));
        }
        Err(err) => return unavailable(err),
    };
    let can_impersonate = state.web.allow_admin_email_login
        && (role == Role::Admin || account.acl.iter().any(|permission| permission == "login_as"));
    let page = AdminPage {
        notice,
        title: if role == Role::Admin { "Administration" } else { "Domain administration" },
        username: account.username,
        csrf: session.data.csrf.clone(),
        impersonating: session.data.webmail.iter().filter(|g| g.impersonation).map(|g| g.mailbox.clone()).collect(),
        mailboxes: mailboxes
            .into_iter()
            .map(|m| MailboxView {
                address_encoded: encode(&m.address),
                address: m.address,
                auth_source: m.auth_source,
                protocols: m.protocols.to_string(),
                quota_mib: m.quota_mib,
                active: m.active,
            })
            .collect(),
        can_impersonate,
    };
    render(&page, StatusCode::OK)
}

// ---------------------------------------------------------------------------------------------------------
// Webmail

/// `?login=` of `/sogo-auth`.
#[derive(Deserialize)]
pub struct SogoAuthQuery {
    login: Option<String>,
}

/// `GET /sogo-auth?login=M`: the owner opens their webmail, or an administrator allowed to starts an
/// impersonation of M (audited, and shown in M's own log); then on to webmail. Anything else goes back to a
/// login page with a fixed message.
pub async fn sogo_auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<SogoAuthQuery>,
) -> Response {
    let mut session = match state.web.sessions.load(&state.store, &headers).await {
        Ok(Some(session)) if session.data.stage == Stage::Ready => session,
        Ok(_) => return redirect("/?m=webmail"),
        Err(err) => return unavailable(err),
    };
    let role = session.data.role;
    // This GET grants webmail access (and, for administrators, records an impersonation): a link on another
    // site must not be able to do that with the user's cookie. Browsers say where a navigation came from.
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).unwrap_or("");
    if matches!(fetch_site, "cross-site" | "same-site") {
        tracing::warn!(
            principal = session.data.principal,
            fetch_site,
            "webmail link followed from another site refused"
        );
        return redirect(&format!("{}?m=forbidden", role.home()));
    }
    let Some(target) = query.login.as_deref().and_then(|l| MailboxAddress::parse(l).ok()) else {
        return redirect(&format!("{}?m=forbidden", role.home()));
    };
    let opener = session.actor();
    let impersonation = role != Role::User;
    // The engine decides (the owner's own mailbox, or the impersonation rule) and the audit record of an
    // impersonation is written before anything is granted.
    let target_text =
        match state.auth.open_webmail(&opener, &target.to_string(), state.web.client_ip(peer, &headers)).await {
            Decision::Allowed { user, .. } => user,
            Decision::Denied { .. } => return redirect(&format!("{}?m=forbidden", role.home())),
            Decision::TempFail { cause } => return unavailable(cause),
        };
    if !session.data.webmail.iter().any(|g| g.mailbox == target_text.as_str()) {
        let token = match mint_sso_token(&state.web, &state, &session, &target_text, impersonation).await {
            Ok(token) => token,
            Err(err) => return unavailable(err),
        };
        session.data.webmail.push(WebmailGrant { mailbox: target_text.clone(), token, impersonation });
    } else {
        // The most recently opened mailbox is what a bare `/SOGo/so/` shows.
        let position = session.data.webmail.iter().position(|g| g.mailbox == target_text.as_str()).expect("present");
        let grant = session.data.webmail.remove(position);
        session.data.webmail.push(grant);
    }
    if let Err(err) = state.web.sessions.save(&state.store, &session).await {
        return unavailable(err);
    }
    redirect(&state.web.webmail_path)
}

async fn mint_sso_token(
    config: &WebConfig,
    state: &AppState,
    session: &Session,
    mailbox: &str,
    impersonation: bool,
) -> Result<String, Error> {
    let secret = sso::new_secret();
    let expires_at = session.data.created_at + config.sessions.max.as_secs() as i64;
    let impersonator = impersonation.then_some(session.data.principal.as_str());
    let id = state
        .store
        .create_sso_token(&session.id, mailbox, &sso::hash_secret(secret.as_bytes()), impersonator, expires_at)
        .await?;
    Ok(sso::token(id, &secret))
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
