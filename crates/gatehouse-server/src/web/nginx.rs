//! `GET /nginx/auth`: nginx's `auth_request` in front of SOGo, on the internal listener.
//!
//! nginx forwards the client's request headers (`X-Original-URI`, `X-Real-IP` set by nginx, `Cookie`,
//! `Authorization`). The answer:
//! - Basic credentials (CalDAV/CardDAV clients, ActiveSync): the engine decides with service `dav` or `eas`
//!   from the URI (`sogo` for anything else); success is 200 with `X-User`, `X-Auth` (the credentials, for
//!   SOGo's own IMAP login) and `X-Auth-Type: Basic`; failure is 401 with `WWW-Authenticate`.
//! - A Gatehouse web session that opened webmail for a mailbox: 200 with `X-User: <mailbox>` and
//!   `X-Auth: Basic base64(<mailbox>:<SSO token>)`, as long as the engine still allows that grant (asked for
//!   every request); the token opens only that mailbox, only while the session lives.
//! - Otherwise 401: DAV and ActiveSync URIs get `WWW-Authenticate` (so clients ask for credentials), webmail
//!   URIs do not (nginx's `error_page 401` sends the browser to Gatehouse's login).
//!
//! Headers a client sends to name a user (`x-webobjects-remote-user`, `X-User`, …) are never read: identity
//! comes only from credentials Gatehouse checked or from its own session.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use gatehouse_core::Service;
use gatehouse_engine::{Credentials, Decision, EntryPoint, LoginRequest, LoginService};
use gatehouse_passwords::Zeroizing;

use super::gate::{Need, Refusal, gate};
use super::session::Role;
use crate::AppState;

/// What the request is for, from the original URI.
fn service_of(uri: &str) -> Service {
    let path = uri.split('?').next().unwrap_or("").to_ascii_lowercase();
    if path.starts_with("/microsoft-server-activesync") || path.starts_with("/sogo/microsoft-server-activesync") {
        Service::Eas
    } else if path.starts_with("/sogo/dav")
        || path.starts_with("/.well-known/caldav")
        || path.starts_with("/.well-known/carddav")
    {
        Service::Dav
    } else {
        Service::Sogo
    }
}

/// The mailbox a SOGo URI names (`/SOGo/so/<mailbox>/…`, `/SOGo/dav/<mailbox>/…`), if any.
fn mailbox_in_uri(uri: &str) -> Option<String> {
    let path = uri.split('?').next()?;
    let rest = path.strip_prefix("/SOGo/so/").or_else(|| path.strip_prefix("/SOGo/dav/"))?;
    let segment = rest.split('/').next()?;
    let decoded: String = url::form_urlencoded::parse(format!("m={segment}").as_bytes()).next()?.1.into_owned();
    decoded.contains('@').then(|| decoded.to_lowercase())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, Zeroizing<Vec<u8>>)> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?);
    let split = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..split].to_vec()).ok()?;
    Some((user, Zeroizing::new(decoded[split + 1..].to_vec())))
}

fn identity(user: &str, password: &[u8]) -> Response {
    let mut credentials = Zeroizing::new(user.as_bytes().to_vec());
    credentials.push(b':');
    credentials.extend_from_slice(password);
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&*credentials));
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    if let (Ok(user), Ok(auth)) = (HeaderValue::from_str(user), HeaderValue::from_str(&auth)) {
        headers.insert("x-user", user);
        let mut auth = auth;
        auth.set_sensitive(true);
        headers.insert("x-auth", auth);
        headers.insert("x-auth-type", HeaderValue::from_static("Basic"));
    }
    response
}

fn unauthorised(service: Service) -> Response {
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    if service != Service::Sogo {
        response
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Basic realm=\"Mail\", charset=\"UTF-8\""));
    }
    response
}

/// The handler.
pub async fn auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = crate::dovecot::refuse_unauthorised(&state, peer, &headers, "/nginx/auth") {
        return refused;
    }
    let uri = headers.get("x-original-uri").and_then(|v| v.to_str().ok()).unwrap_or("/");
    let service = service_of(uri);
    // nginx sets X-Real-IP from the connection; the caller check above makes it trustworthy.
    let remote_ip = headers.get("x-real-ip").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());

    if let Some((user, password)) = basic_credentials(&headers) {
        let request = LoginRequest {
            username: user,
            authzid: None,
            credentials: Credentials::Password(password),
            service: LoginService::Protocol(service),
            remote_ip,
            secured: false,
            entry: EntryPoint::WebmailProxy,
            master_second_pass: None,
        };
        return match state.auth.login(&request).await {
            // The engine refuses master logins (`mailbox*master`) from this entry point.
            Decision::Allowed { user, .. } => identity(&user, request.credentials.secret()),
            Decision::Denied { .. } => unauthorised(service),
            Decision::TempFail { .. } => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        };
    }

    let session = match gate(&state, &headers, Need::AnyReady).await {
        Ok(session) => session,
        Err(Refusal::Unavailable(err)) => {
            tracing::warn!("nginx auth: {err}");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Err(_) => return unauthorised(service),
    };
    // An owner's session opens only the owner's mailbox, even if its state says otherwise.
    let grants = session
        .data
        .webmail
        .iter()
        .filter(|g| session.data.role != Role::User || g.mailbox == session.data.principal)
        .collect::<Vec<_>>();
    let chosen = match mailbox_in_uri(uri) {
        Some(named) => grants.iter().find(|g| g.mailbox == named),
        None => grants.last(),
    };
    let Some(grant) = chosen else { return unauthorised(service) };
    // Every request re-checks what allowed the grant: the setting, the administrator's permission and domains,
    // the mailbox's state and its webmail flag.
    match state.auth.webmail_access(&session.actor(), &grant.mailbox).await {
        Decision::Allowed { .. } => identity(&grant.mailbox, grant.token.as_bytes()),
        Decision::Denied { .. } => unauthorised(service),
        Decision::TempFail { .. } => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_services_and_mailboxes() {
        assert_eq!(service_of("/Microsoft-Server-ActiveSync?Cmd=Sync"), Service::Eas);
        assert_eq!(service_of("/SOGo/dav/alice@example.org/Calendar/"), Service::Dav);
        assert_eq!(service_of("/.well-known/caldav"), Service::Dav);
        assert_eq!(service_of("/SOGo/so/alice@example.org/Mail/view"), Service::Sogo);
        assert_eq!(mailbox_in_uri("/SOGo/so/Alice%40example.org/Mail/0/view").as_deref(), Some("alice@example.org"));
        assert_eq!(mailbox_in_uri("/SOGo/dav/bob@example.org/"), Some("bob@example.org".into()));
        assert_eq!(mailbox_in_uri("/SOGo/so/"), None);
        assert_eq!(mailbox_in_uri("/SOGo/so/index"), None);
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("a@b.org:p:w"));
        headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
        let (user, password) = basic_credentials(&headers).unwrap();
        assert_eq!((user.as_str(), password.as_slice()), ("a@b.org", b"p:w".as_slice()));
    }
}
