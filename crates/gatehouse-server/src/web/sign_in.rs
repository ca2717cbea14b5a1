//! Signing in at an identity provider (OpenID Connect) from the mailbox login page, signing out there, and the
//! provider's back-channel logout.
//!
//! - `GET /oidc/sign-in/{provider}`: a new sign-in (`state`, nonce and PKCE verifier kept server-side, bound to
//!   a cookie of this browser, valid ten minutes), then off to the provider.
//! - `GET /oidc/callback`: the provider sends the browser back; the sign-in is taken (once, by its own
//!   browser), the code exchanged and the tokens checked by the provider's source, and the engine decides which
//!   mailbox it opens. Every failure is a clear message on the login page.
//! - `GET /oidc/signed-out`: where the provider sends the browser after its logout (on to the login page of the
//!   session that ended).
//! - `POST /oidc/backchannel-logout/{provider}`: the provider's server says a session ended (Back-Channel
//!   Logout 1.0); the matching web sessions and their webmail tokens end at once.

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::now;
use gatehouse_engine::{Decision, DenyReason, ProviderAdminSignInRequest, ProviderSignInRequest};
use gatehouse_store::NewSignIn;
use serde::Deserialize;

use super::login::{login_page_with_form, start_session};
use super::respond::{redirect, render};
use super::session::{
    ProviderSession, Role, add_set_cookie, clear_cookie, cookie, random_token, set_cookie, token_hash,
};
use crate::AppState;

/// The cookie that binds a pending sign-in to the browser that started it.
const SIGN_IN_COOKIE: &str = "gatehouse_sign_in";
/// How long a started sign-in can be finished.
const SIGN_IN_SECONDS: i64 = 600;
/// The sign-in's purpose when none is named (the mailbox login).
const PURPOSE_MAILBOX: &str = "user";

/// Where the provider sends the browser back: `<public_url>/oidc/callback`.
fn callback_url(state: &AppState) -> Option<String> {
    state.web.public_url.as_ref().map(|url| format!("{}/oidc/callback", url.as_str().trim_end_matches('/')))
}

/// Where the provider sends the browser after its logout.
fn signed_out_url(state: &AppState) -> Option<String> {
    state.web.public_url.as_ref().map(|url| format!("{}/oidc/signed-out", url.as_str().trim_end_matches('/')))
}

/// The mailbox login page with a sign-in's failure.
async fn failed(state: &AppState, status: StatusCode, message: &str) -> Response {
    failed_at(state, Role::User, status, message).await
}

/// The login page of `role` with a sign-in's failure.
async fn failed_at(state: &AppState, role: Role, status: StatusCode, message: &str) -> Response {
    let show_form = role != Role::User || !state.web.hide_local_login;
    login_page_with_form(state, role, None, Some(message), status, show_form).await
}

/// `?for=` on the start of a sign-in: which login it is for (the mailbox login unless an administrator area
/// is named).
#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default, rename = "for")]
    area: Option<String>,
}

/// `GET /oidc/sign-in/{provider}`: starts a sign-in at `provider`.
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(role) = Role::from_name(query.area.as_deref().unwrap_or(PURPOSE_MAILBOX)) else {
        return failed(&state, StatusCode::BAD_REQUEST, "There is no such login.").await;
    };
    let Some(redirect_uri) = callback_url(&state) else {
        tracing::error!("a sign-in at an identity provider needs web.public_url, which is not set");
        return failed(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in at an identity provider is not set up on this server (web.public_url is missing).",
        )
        .await;
    };
    let source = match state.auth.sources().sign_in_provider(&name).await {
        Ok(Some((_, source))) => source,
        Ok(None) => return failed(&state, StatusCode::NOT_FOUND, "There is no such identity provider.").await,
        Err(err) => {
            tracing::warn!(provider = name, "identity provider unavailable: {err}");
            return failed(&state, StatusCode::SERVICE_UNAVAILABLE, "Gatehouse cannot check logins right now.").await;
        }
    };
    let Some(provider) = source.as_oidc() else {
        return failed(&state, StatusCode::NOT_FOUND, "There is no such identity provider.").await;
    };
    let started = match provider.start_sign_in(&redirect_uri).await {
        Ok(started) => started,
        Err(err) => {
            tracing::warn!(provider = name, "cannot start a sign-in: {err}");
            return failed(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "The identity provider cannot be reached right now. Try again in a moment.",
            )
            .await;
        }
    };
    // One cookie per browser: sign-ins started in two tabs are both bound to it.
    let browser = cookie(&headers, SIGN_IN_COOKIE).filter(|value| value.len() == 43).unwrap_or_else(random_token);
    let pending = NewSignIn {
        state_hash: token_hash(&started.state),
        provider: name.clone(),
        browser_hash: token_hash(&browser),
        nonce: started.nonce,
        pkce_verifier: started.pkce_verifier,
        purpose: role.as_str().to_string(),
        expires_at: now() + SIGN_IN_SECONDS,
    };
    if let Err(err) = state.store.begin_sign_in(pending).await {
        tracing::warn!(provider = name, "cannot remember a sign-in: {err}");
        return failed(&state, StatusCode::SERVICE_UNAVAILABLE, "Gatehouse cannot check logins right now.").await;
    }
    let Ok(location) = HeaderValue::from_str(&started.url) else {
        return failed(&state, StatusCode::SERVICE_UNAVAILABLE, "The identity provider's address is unusable.").await;
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    let max_age = std::time::Duration::from_secs(SIGN_IN_SECONDS as u64);
    add_set_cookie(
        response.headers_mut(),
        &set_cookie(SIGN_IN_COOKIE, &browser, Some(max_age), state.web.sessions.secure_cookies),
    );
    response
}

/// What the provider sends back (OAuth 2.0 §4.1.2 and §4.1.2.1).
#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The sentence for an error code a provider sends back (its own description is not shown: it is text from
/// the URL).
fn provider_error(code: &str) -> String {
    match code {
        "access_denied" => "The sign-in was cancelled or refused at the identity provider.".to_string(),
        "login_required" | "interaction_required" | "consent_required" | "account_selection_required" => {
            "The identity provider needs you to sign in there first. Try again.".to_string()
        }
        "temporarily_unavailable" | "server_error" => {
            "The identity provider cannot sign you in right now. Try again in a moment.".to_string()
        }
        other if other.len() <= 40 && other.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
            format!("The identity provider refused the sign-in ({other}).")
        }
        _ => "The identity provider refused the sign-in.".to_string(),
    }
}

/// `GET /oidc/callback`: finishes a sign-in.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let remote_ip = state.web.client_ip(peer, &headers);
    let browser = cookie(&headers, SIGN_IN_COOKIE);
    let pending = match (query.state.as_deref(), browser.as_deref()) {
        (Some(sent), Some(browser)) => state.store.take_sign_in(&token_hash(sent), &token_hash(browser)).await,
        _ => Ok(None),
    };
    let pending = match pending {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            tracing::info!(%remote_ip, "a sign-in callback matched no pending sign-in of this browser");
            return failed(
                &state,
                StatusCode::BAD_REQUEST,
                "This sign-in expired, was already used, or was started in another browser. Start it again.",
            )
            .await;
        }
        Err(err) => {
            tracing::warn!("cannot read a pending sign-in: {err}");
            return failed(&state, StatusCode::SERVICE_UNAVAILABLE, "Gatehouse cannot check logins right now.").await;
        }
    };
    let name = pending.provider.clone();
    let role = Role::from_name(&pending.purpose).unwrap_or(Role::User);
    if let Some(code) = &query.error {
        tracing::info!(provider = name, error = code, "the identity provider sent an error back");
        return failed_at(&state, role, StatusCode::UNAUTHORIZED, &provider_error(code)).await;
    }
    let (Some(code), Some(redirect_uri)) = (query.code.as_deref(), callback_url(&state)) else {
        return failed(&state, StatusCode::BAD_REQUEST, "The identity provider sent no sign-in code back.").await;
    };
    let source = match state.auth.sources().sign_in_provider(&name).await {
        Ok(Some((_, source))) => source,
        Ok(None) => {
            return failed(&state, StatusCode::NOT_FOUND, "This identity provider is no longer available.").await;
        }
        Err(err) => {
            tracing::warn!(provider = name, "identity provider unavailable: {err}");
            return failed(&state, StatusCode::SERVICE_UNAVAILABLE, "Gatehouse cannot check logins right now.").await;
        }
    };
    let Some(provider) = source.as_oidc() else {
        return failed(&state, StatusCode::NOT_FOUND, "This identity provider is no longer available.").await;
    };
    let finished = provider.finish_sign_in(code, &pending.nonce, &pending.pkce_verifier, &redirect_uri).await;
    let (account, provider_session) = match finished {
        Ok(Ok(signed)) => {
            let session = ProviderSession {
                name: name.clone(),
                session_id: signed.session_id,
                subject: signed.account.subject.clone(),
                id_token: signed.id_token,
            };
            (Ok((signed.account, signed.admin)), Some(session))
        }
        Ok(Err(refusal)) => (Err(refusal.0), None),
        Err(err) => {
            tracing::warn!(provider = name, "the sign-in could not be finished: {err}");
            return failed(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "The identity provider cannot be reached right now. Try again in a moment.",
            )
            .await;
        }
    };
    let decision = match role.admin_role() {
        None => {
            let account = account.map(|(account, _)| account);
            let request = ProviderSignInRequest { provider: name, account, remote_ip: Some(remote_ip) };
            state.auth.sign_in_with_provider(&request).await
        }
        Some(kind) => {
            let request = ProviderAdminSignInRequest { provider: name, account, kind, remote_ip: Some(remote_ip) };
            state.auth.sign_in_admin_with_provider(&request).await
        }
    };
    match decision {
        Decision::Allowed { user, next, .. } => {
            start_session(&state, role, &user, super::steps::stage_for(next), provider_session, remote_ip).await
        }
        Decision::Denied { reason: DenyReason::Banned, .. } => {
            let message = "Too many failed logins from your address. Try again later.";
            failed_at(&state, role, StatusCode::TOO_MANY_REQUESTS, message).await
        }
        // The refusal is about the account that just signed in at the provider: it may read why.
        Decision::Denied { detail, .. } => {
            failed_at(&state, role, StatusCode::FORBIDDEN, &format!("The sign-in was refused: {detail}.")).await
        }
        Decision::TempFail { .. } => {
            let message = "Gatehouse cannot check logins right now. Try again in a moment.";
            failed_at(&state, role, StatusCode::SERVICE_UNAVAILABLE, message).await
        }
    }
}

/// The cookie that tells `/oidc/signed-out` which login page the browser returns to.
const SIGNED_OUT_COOKIE: &str = "gatehouse_signed_out";

/// `GET /oidc/signed-out`: back from the provider's logout, to the login page of the session that ended.
pub async fn signed_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let role = cookie(&headers, SIGNED_OUT_COOKIE).and_then(|name| Role::from_name(&name)).unwrap_or(Role::User);
    let mut response = redirect(&format!("{}?m=ended", role.home()));
    add_set_cookie(response.headers_mut(), &clear_cookie(SIGNED_OUT_COOKIE, state.web.sessions.secure_cookies));
    response
}

#[derive(Template)]
#[template(path = "signing_out.html")]
struct SigningOutPage {
    notice: Option<String>,
    url: String,
}

/// The answer to a logout of a session signed in at a provider: on to the provider's logout (a page that
/// goes there at once: a form's redirect to another origin would break the pages' `form-action 'self'`), or
/// to the login page when the provider has no logout endpoint or cannot be asked.
pub(super) async fn provider_logout(state: &AppState, provider: &ProviderSession, role: Role) -> Option<Response> {
    let after = signed_out_url(state)?;
    let source = match state.auth.sources().sign_in_provider(&provider.name).await {
        Ok(Some((_, source))) => source,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(provider = provider.name, "no logout at the provider: {err}");
            return None;
        }
    };
    match source.as_oidc()?.end_session_url(Some(&provider.id_token), &after).await {
        Ok(Some(url)) => {
            let mut page = render(&SigningOutPage { notice: None, url }, StatusCode::OK);
            let max_age = Some(std::time::Duration::from_secs(SIGN_IN_SECONDS as u64));
            let secure = state.web.sessions.secure_cookies;
            add_set_cookie(page.headers_mut(), &set_cookie(SIGNED_OUT_COOKIE, role.as_str(), max_age, secure));
            Some(page)
        }
        Ok(None) => None,
        Err(err) => {
            tracing::warn!(provider = provider.name, "no logout at the provider: {err}");
            None
        }
    }
}

/// A back-channel logout request.
#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    logout_token: String,
}

/// An answer of the back-channel logout endpoint (never cached, Back-Channel Logout 1.0 §2.8).
fn logout_answer(status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let body = match error {
        Some((code, description)) => serde_json::json!({ "error": code, "error_description": description }).to_string(),
        None => String::new(),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if error.is_some() {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

/// `POST /oidc/backchannel-logout/{provider}`: the provider ends sessions.
pub async fn backchannel_logout(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(form): Form<LogoutForm>,
) -> Response {
    if form.logout_token.is_empty() {
        return logout_answer(StatusCode::BAD_REQUEST, Some(("invalid_request", "logout_token is missing")));
    }
    let source = match state.auth.sources().sign_in_provider(&name).await {
        Ok(Some((_, source))) => source,
        Ok(None) => return logout_answer(StatusCode::BAD_REQUEST, Some(("invalid_request", "unknown provider"))),
        Err(err) => {
            tracing::warn!(provider = name, "back-channel logout not decided: {err}");
            return logout_answer(StatusCode::SERVICE_UNAVAILABLE, None);
        }
    };
    let Some(provider) = source.as_oidc() else {
        return logout_answer(StatusCode::BAD_REQUEST, Some(("invalid_request", "unknown provider")));
    };
    let logout = match provider.check_logout_token(&form.logout_token).await {
        Ok(Ok(logout)) => logout,
        Ok(Err(refusal)) => {
            tracing::warn!(provider = name, "back-channel logout refused: {refusal}");
            return logout_answer(StatusCode::BAD_REQUEST, Some(("invalid_request", &refusal.0)));
        }
        Err(err) => {
            tracing::warn!(provider = name, "back-channel logout not decided: {err}");
            return logout_answer(StatusCode::SERVICE_UNAVAILABLE, None);
        }
    };
    match state.store.end_provider_sessions(&name, logout.session_id.as_deref(), logout.subject.as_deref()).await {
        Ok(ended) => {
            tracing::info!(provider = name, sid = ?logout.session_id, sub = ?logout.subject, ended, "back-channel logout");
            logout_answer(StatusCode::OK, None)
        }
        Err(err) => {
            tracing::warn!(provider = name, "back-channel logout failed: {err}");
            logout_answer(StatusCode::SERVICE_UNAVAILABLE, None)
        }
    }
}
