//! `/sogo-auth`: the owner opens their webmail, or an administrator allowed to impersonates a mailbox. The
//! engine decides either (and audits an impersonation before anything is granted); this handler only mints the
//! per-mailbox webmail token the session holds, which `/nginx/auth` then re-checks on every webmail request.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::{Error, MailboxAddress};
use gatehouse_engine::{Decision, sso};
use serde::Deserialize;

use super::WebConfig;
use super::gate::{Need, Refusal, gate};
use super::respond::{redirect, unavailable};
use super::session::{Role, Session, WebmailGrant};
use crate::AppState;

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
    let mut session = match gate(&state, &headers, Need::AnyReady).await {
        Ok(session) => session,
        Err(Refusal::Unavailable(err)) => return unavailable(err),
        Err(_) => return redirect("/?m=webmail"),
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
