//! The web UI on the public listener, server-rendered HTML that works without JavaScript, and webmail single
//! sign-on.
//!
//! - [`session`]: server-side sessions, cookies, CSRF tokens.
//! - `gate`: the one check of a request's session (role, stage, CSRF token) every page goes through.
//! - `login`: the three logins (users at `/`, admins at `/admin`, domain admins at `/domainadmin`) and logout.
//! - `steps`: the second factor, forced TOTP enrolment and password change, turning TOTP on and off.
//! - `user`: the mailbox owner's page (app passwords, password, recent logins).
//! - `admin`: the administration pages of both administrator roles.
//! - `sign_in`: signing in at identity providers (OpenID Connect), signing out there, back-channel logout.
//! - `webmail`: `/sogo-auth`, opening webmail or an administrator's impersonation.
//! - `nginx`: `GET /nginx/auth` on the internal listener, nginx's `auth_request` for SOGo.
//! - `respond`: rendering, redirects, and errors answered by their fault.
//!
//! Every state-changing request is a POST checked twice against cross-site forgery: tower-http's origin check
//! (`Sec-Fetch-Site` / `Origin` against the host or the configured public URL) and a token bound to the
//! session (or, on the login forms, to a cookie). Redirects only ever go to fixed paths.

mod admin;
mod gate;
mod login;
pub mod nginx;
mod passkeys;
pub mod remembered;
mod respond;
pub mod session;
mod sign_in;
mod steps;
mod user;
mod webmail;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use ipnet::IpNet;
use tower_http::csrf::CsrfLayer;

use crate::AppState;
use session::SessionPolicy;

/// The web settings the handlers need.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Administrators (and domain administrators with `login_as`) may open mailboxes' webmail.
    pub allow_admin_email_login: bool,
    /// The public URL, if configured (its origin is trusted for form posts; https makes cookies Secure).
    pub public_url: Option<url::Url>,
    /// Proxies whose `X-Real-IP` / `X-Forwarded-For` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Session lifetimes and cookie flags.
    pub sessions: SessionPolicy,
    /// Where webmail starts (`/SOGo/so/`).
    pub webmail_path: String,
    /// The mailbox login page shows its password form only with `?local=1`.
    pub hide_local_login: bool,
    /// The mailbox login page sends the browser straight to this provider's sign-in (not with `?local=1`).
    pub sign_in_provider: Option<String>,
    /// The scheme of new password hashes.
    pub password_scheme: gatehouse_passwords::GenerateScheme,
    /// The rule for new passwords.
    pub password_policy: gatehouse_core::PasswordPolicy,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            allow_admin_email_login: false,
            public_url: None,
            trusted_proxies: vec!["127.0.0.1/32".parse().expect("a network"), "::1/128".parse().expect("a network")],
            sessions: SessionPolicy {
                idle: Duration::from_secs(30 * 60),
                max: Duration::from_secs(12 * 3600),
                secure_cookies: false,
            },
            webmail_path: "/SOGo/so/".into(),
            hide_local_login: false,
            sign_in_provider: None,
            password_scheme: gatehouse_passwords::GenerateScheme::BlfCrypt { cost: 12 },
            password_policy: gatehouse_core::PasswordPolicy::default(),
        }
    }
}

impl WebConfig {
    /// The client's address: the peer, or what a trusted proxy says the client was.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer_ip = peer.ip().to_canonical();
        if !self.trusted_proxies.iter().any(|net| net.contains(&peer_ip)) {
            return peer_ip;
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        header("x-real-ip")
            .and_then(|v| v.parse().ok())
            .or_else(|| {
                header("x-forwarded-for").and_then(|v| v.rsplit(',').next()).and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(peer_ip)
    }
}

/// The public listener's web routes (the caller adds `/healthz` and the API).
pub fn router(state: &AppState) -> Router<AppState> {
    // A post from another site is refused with a page that says so (not a blank 403).
    let refused = |_: tower_http::csrf::ProtectionError| {
        respond::error_page(
            axum::http::StatusCode::FORBIDDEN,
            "The form came from another site and was refused: nothing was changed. Open Gatehouse's own page and \
             try again.",
            "/",
        )
    };
    let mut csrf = CsrfLayer::new().with_rejection_response(refused);
    if let Some(url) = &state.web.public_url
        && let Ok(with_origin) =
            CsrfLayer::new().with_rejection_response(refused).add_trusted_origin(url.origin().ascii_serialization())
    {
        csrf = with_origin;
    }
    Router::new()
        .route("/", get(user::user_page).post(login::user_login))
        .route("/logout", post(login::logout))
        .route("/password", post(user::change_password))
        .route("/app-passwords", post(user::create_app_password))
        .route("/app-passwords/{id}/revoke", post(user::revoke_app_password))
        .route("/sessions/{reference}/end", post(user::end_session))
        .route("/webmail/close", post(user::close_webmail))
        .route("/sogo-auth", get(webmail::sogo_auth))
        .route("/totp", get(steps::code_form).post(steps::check_code))
        .route("/totp/setup", get(steps::setup_form).post(steps::confirm_setup))
        .route("/totp/setup/start", post(steps::start_setup))
        .route("/totp/disable", post(steps::disable))
        .route("/totp/passkey/start", post(passkeys::start_sign_in))
        .route("/totp/passkey/finish", post(passkeys::finish_sign_in))
        .route("/passkeys.js", get(passkeys::script))
        .route("/local-times.js", get(respond::local_times_script))
        .route("/passkeys", get(passkeys::page))
        .route("/passkeys/register/start", post(passkeys::start_registration))
        .route("/passkeys/register/finish", post(passkeys::finish_registration))
        .route("/passkeys/{id}/remove", post(passkeys::remove))
        .route("/passkeys/sign-in/start", post(passkeys::start_passwordless))
        .route("/passkeys/sign-in/finish", post(passkeys::finish_passwordless))
        .route("/password/required", get(steps::password_form).post(steps::password_required))
        .route("/oidc/sign-in/{provider}", get(sign_in::start))
        .route("/oidc/callback", get(sign_in::callback))
        .route("/oidc/signed-out", get(sign_in::signed_out))
        .merge(admin::routes())
        .layer(csrf)
        // The provider's server posts here, signed: not a browser's form, so not behind the origin check.
        .route("/oidc/backchannel-logout/{provider}", post(sign_in::backchannel_logout))
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers every page carries: no framing, no sniffing, no caching of pages with personal data, a strict
/// content security policy (scripts only from this site's own files: the passkey ceremonies).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    response
}
