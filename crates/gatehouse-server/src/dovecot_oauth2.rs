//! `POST /dovecot/oauth2` on the internal listener: the introspection endpoint of Dovecot's oauth2 passdb, for
//! mail clients that log in with an identity provider's access token (XOAUTH2, OAUTHBEARER).
//!
//! Request (Dovecot's `introspection_mode = post`): a form with `token`, `client_id` and `client_secret`, and
//! with `send_auth_headers = yes` the `X-Dovecot-Auth-Service` and `X-Dovecot-Auth-Remote` headers. The caller
//! is Dovecot when `client_secret` is Gatehouse's shared secret (Dovecot cannot send other headers), or when it
//! presents the secret header or comes from an allowed network as for the other internal endpoints.
//!
//! Reply: always 200 with a flat JSON object, the shape Dovecot reads: `{"active": true, "email": <mailbox>}`
//! when the engine allows the login, `{"active": false, "email": <mailbox>}` when it refuses (the address of the
//! token's mailbox when it is known: Dovecot then compares it with the login name and fails the login cleanly).
//! A provider or database that cannot be asked is a 503, which Dovecot reports as a temporary failure.

use std::net::{IpAddr, SocketAddr};

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use gatehouse_core::Service;
use gatehouse_engine::{AccessTokenRequest, Decision, LoginService, TokenAccount};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::dovecot::{failure, refuse_unauthorised};

/// Dovecot's introspection request.
#[derive(Deserialize)]
pub struct IntrospectionForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    client_secret: String,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The client's address from `X-Dovecot-Auth-Remote` (`ip:port`, or `[v6]:port`).
fn remote_ip(headers: &HeaderMap) -> Option<IpAddr> {
    let text = header(headers, "x-dovecot-auth-remote")?;
    text.parse::<SocketAddr>().map(|addr| addr.ip()).ok().or_else(|| text.parse().ok())
}

/// `POST /dovecot/oauth2`.
pub async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<IntrospectionForm>,
) -> Response {
    let secret_in_form = state.dovecot_callers.shared_secret.as_ref().is_some_and(|secret| {
        !form.client_secret.is_empty() && bool::from(secret.expose().as_bytes().ct_eq(form.client_secret.as_bytes()))
    });
    if !secret_in_form && let Some(refused) = refuse_unauthorised(&state, peer, &headers, "/dovecot/oauth2") {
        return refused;
    }
    let service = match header(&headers, "x-dovecot-auth-service").and_then(LoginService::from_name) {
        Some(LoginService::Protocol(service)) => service,
        // Without `send_auth_headers` Dovecot does not say which service: IMAP, the common case, is assumed
        // only then; a named service that is not a mail protocol is refused.
        None if header(&headers, "x-dovecot-auth-service").is_none() => Service::Imap,
        _ => return inactive(None),
    };
    if form.token.is_empty() {
        return inactive(None);
    }
    let token = match state.auth.sources().resolve_access_token(&form.token).await {
        Ok(Ok(owner)) => Ok(TokenAccount { provider: owner.provider, subject: owner.subject, address: owner.address }),
        Ok(Err(why)) => Err(why),
        Err(err) => {
            tracing::warn!("an access token could not be checked: {err}");
            return failure(StatusCode::SERVICE_UNAVAILABLE, "temporary failure");
        }
    };
    let address = token.as_ref().ok().and_then(|account| account.address.clone());
    let request = AccessTokenRequest { token, service, remote_ip: remote_ip(&headers) };
    match state.auth.login_with_token(&request).await {
        Decision::Allowed { user, .. } => {
            (StatusCode::OK, Json(json!({ "active": true, "email": user }))).into_response()
        }
        Decision::Denied { .. } => inactive(address),
        Decision::TempFail { .. } => failure(StatusCode::SERVICE_UNAVAILABLE, "temporary failure"),
    }
}

/// RFC 7662's answer for a token that opens nothing, with the mailbox when it is known.
fn inactive(address: Option<String>) -> Response {
    let body = match address {
        Some(address) => json!({ "active": false, "email": address }),
        None => json!({ "active": false }),
    };
    (StatusCode::OK, Json(body)).into_response()
}
