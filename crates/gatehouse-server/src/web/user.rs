//! The user page of a mailbox owner: webmail, app links, app passwords (created with the token shown once,
//! revoked), the password of a local mailbox, TOTP, passkeys, and the mailbox's recent logins.

// Handlers return `Result<_, Response>` so a refusal is the page to send; a boxed error would gain nothing.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::now;
use gatehouse_core::{Error, MailboxAddress, ProtocolSet, Service};
use gatehouse_engine::{Decision, app_password};
use gatehouse_passwords::{GenerateScheme, Zeroizing};
use gatehouse_store::{
    Actor, ActorRole, AppPassword, AuthResult, LogFilter, MailboxChanges, NewAppPassword, TotpPrincipal, USER_SESSIONS,
};
use serde::Deserialize;

use super::gate::{Need, Refusal, check_csrf, gate, gate_form};
use super::login::{LinkView, MessageQuery, TokenForm, login_message, user_login_page};
use super::respond::{date_time, redirect, render, segment, sentence, unavailable};
use super::session::{Role, SESSION_COOKIE, Session, SessionView, add_set_cookie, clear_cookie};
use crate::AppState;

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
    /// TOTP or a passkey is on: the mail protocols take app passwords only.
    second_factor: bool,
    totp_enabled: bool,
    passkeys: Vec<super::passkeys::PasskeyView>,
    passkeys_available: bool,
    ask_password: bool,
    app_passwords: Vec<AppPasswordView>,
    protocol_choices: Vec<(&'static str, &'static str)>,
    local_password: bool,
    /// The identity provider this session signed in at, when it did.
    signed_in_at: Option<String>,
    log: Vec<LogView>,
    /// The mailbox's web sessions, this one marked.
    sessions: Vec<SessionView>,
    /// This session has the mailbox's webmail open.
    webmail_open_here: bool,
    /// Administrators who have the webmail open now: who, and since when.
    impersonations: Vec<(String, String)>,
}

/// `GET /`: the user page, or the login.
pub async fn user_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<MessageQuery>,
) -> Response {
    match gate(&state, &headers, Need::Ready(Role::User)).await {
        Ok(mut session) => {
            if session.data.notice.is_none() {
                session.data.notice = login_message(query.m.as_deref());
            }
            show_user_page(&state, session, None).await
        }
        Err(Refusal::NoSession | Refusal::OtherRole) => user_login_page(&state, &query).await,
        Err(refusal) => refusal.response(Role::User),
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
        let passkeys = state.store.passkeys(TotpPrincipal::Mailbox(&address)).await?;
        let sessions = state.store.web_sessions_of(USER_SESSIONS, &address.to_string()).await?;
        let openings = state.store.webmail_openings(&address.to_string()).await?;
        Ok::<_, Error>((mailbox, apps, log, totp, links, passkeys, sessions, openings))
    };
    let (mailbox, apps, log, totp, links, passkeys, sessions, openings) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return unavailable(err),
    };
    let at = now();
    let page = UserPage {
        notice,
        address_encoded: segment(&mailbox.address),
        address: mailbox.address.clone(),
        csrf: session.data.csrf.clone(),
        new_token,
        webmail: mailbox.protocols.contains(Service::Sogo),
        links: links.iter().map(|l| LinkView { name: l.name.clone(), url: l.url_for(&mailbox.address) }).collect(),
        second_factor: totp.enabled || !passkeys.is_empty(),
        totp_enabled: totp.enabled,
        passkeys: super::passkeys::views(passkeys),
        passkeys_available: state.auth.passkeys().is_some(),
        ask_password: super::passkeys::asks_password(&session),
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
        signed_in_at: session.data.provider.as_ref().map(|provider| provider.name.clone()),
        sessions: sessions.iter().map(|row| SessionView::from_row(row, Some(&session.id))).collect(),
        webmail_open_here: session
            .data
            .webmail
            .iter()
            .any(|grant| grant.mailbox == mailbox.address && !grant.impersonation),
        impersonations: openings
            .into_iter()
            .filter_map(|opening| opening.impersonator.map(|admin| (admin, date_time(opening.opened_at))))
            .collect(),
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
    let mut session = match gate(&state, &headers, Need::Ready(Role::User)).await {
        Ok(session) => session,
        Err(refusal) => return refusal.response(Role::User),
    };
    let Ok(form) = serde_urlencoded_form::<AppPasswordForm>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed form").into_response();
    };
    if let Err(refusal) = check_csrf(&session, &form.csrf) {
        return refusal.response(Role::User);
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

/// `POST /sessions/{reference}/end`: ends another web session of this mailbox (a browser left signed in
/// elsewhere), with the webmail it opened.
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(form): Form<TokenForm>,
) -> Response {
    let (mut session, address) = match user_form(&state, &headers, &form.csrf).await {
        Ok(entered) => entered,
        Err(response) => return response,
    };
    let sessions = match state.store.web_sessions_of(USER_SESSIONS, &address.to_string()).await {
        Ok(sessions) => sessions,
        Err(err) => return unavailable(err),
    };
    let found = sessions.iter().find(|row| SessionView::names(row, &reference) && row.id != session.id);
    session.data.notice = Some(match found {
        Some(row) => {
            if let Err(err) = state.store.delete_web_session(&row.id).await {
                return unavailable(err);
            }
            let details = serde_json::json!({ "ended": 1, "all": false });
            if let Err(err) =
                state.store.record_audit(&user_actor(&address), "web_session.end", &address.to_string(), details).await
            {
                return unavailable(err);
            }
            "The session was ended; that browser must sign in again.".to_string()
        }
        None => "No such session (to end this one, log out).".to_string(),
    });
    if let Err(err) = state.web.sessions.save(&state.store, &session).await {
        return unavailable(err);
    }
    redirect("/")
}

/// `POST /webmail/close`: closes the webmail this session opened (its token is deleted; the webmail's next
/// request asks to sign in), keeping this page's session.
pub async fn close_webmail(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    let (mut session, address) = match user_form(&state, &headers, &form.csrf).await {
        Ok(entered) => entered,
        Err(response) => return response,
    };
    let own = address.to_string();
    let before = session.data.webmail.len();
    session.data.webmail.retain(|grant| grant.mailbox != own || grant.impersonation);
    if session.data.webmail.len() != before
        && let Err(err) = state.store.delete_sso_tokens(&session.id, &own).await
    {
        return unavailable(err);
    }
    session.data.notice = Some(if session.data.webmail.len() != before {
        "Webmail closed.".to_string()
    } else {
        "Webmail was not open in this browser.".to_string()
    });
    // Saving the session writes the change that ends the webmail on every node at once.
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
    let mut session = match gate_form(&state, &headers, Need::Ready(Role::User), &form.csrf).await {
        Ok(session) => session,
        Err(refusal) => return refusal.response(Role::User),
    };
    let problem = if form.new != form.repeat {
        Some("The new passwords differ.".to_string())
    } else {
        state.web.password_policy.check(form.new.as_bytes()).err().map(|err| sentence(&err))
    };
    if let Some(problem) = problem {
        session.data.notice = Some(problem);
        return show_user_page(&state, session, None).await;
    }
    let remote_ip = Some(state.web.client_ip(peer, &headers));
    match super::steps::check_own_password(&state, &session, form.current.into_bytes(), remote_ip).await {
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
            add_set_cookie(response.headers_mut(), &clear_cookie(SESSION_COOKIE, state.web.sessions.secure_cookies));
            response
        }
        Err(err) if err.fault() == gatehouse_core::Fault::Client => {
            session.data.notice = Some(err.to_string());
            show_user_page(&state, session, None).await
        }
        Err(err) => unavailable(err),
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

/// The address of a user session's mailbox (a session that does not name one is a server fault).
fn user_address(session: &Session) -> Result<MailboxAddress, Response> {
    MailboxAddress::parse(&session.data.principal).map_err(unavailable)
}

/// The session of a user's form post and its mailbox's address.
async fn user_form(state: &AppState, headers: &HeaderMap, csrf: &str) -> Result<(Session, MailboxAddress), Response> {
    let session = gate_form(state, headers, Need::Ready(Role::User), csrf)
        .await
        .map_err(|refusal| refusal.response(Role::User))?;
    let address = user_address(&session)?;
    Ok((session, address))
}

/// Who a user's own changes are recorded as.
fn user_actor(address: &MailboxAddress) -> Actor {
    Actor { name: address.to_string(), role: ActorRole::User }
}
