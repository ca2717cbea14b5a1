//! Server-side web sessions: the cookie carries 256 random bits, the database keeps a SHA-256 of it with the
//! session's state, and nothing else about the session ever reaches the browser.
//!
//! A new id is made at every login (no fixation), expiry slides with use up to an absolute limit, and logout
//! deletes the row (with the webmail tokens it minted), so a copied cookie stops working at once. Each session
//! carries its own CSRF token for forms.

use gatehouse_core::clock::now;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::{COOKIE, SET_COOKIE};
use base64::Engine as _;
use gatehouse_core::{AdminRole, Error};
use gatehouse_store::{Actor, ActorRole, Store, WebSessionRow};

use crate::AuthService;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "gatehouse_session";
/// The cookie that protects the login forms before there is a session (double submit).
pub const LOGIN_CSRF_COOKIE: &str = "gatehouse_login_csrf";

impl From<AdminRole> for Role {
    fn from(role: AdminRole) -> Self {
        match role {
            AdminRole::Admin => Role::Admin,
            AdminRole::DomainAdmin => Role::DomainAdmin,
        }
    }
}

/// Who a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A mailbox owner.
    User,
    /// An administrator.
    Admin,
    /// A domain administrator.
    DomainAdmin,
}

impl Role {
    /// The name stored with the session.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::DomainAdmin => "domain_admin",
        }
    }

    /// The role of a stored name ([`Role::as_str`]).
    pub fn from_name(name: &str) -> Option<Role> {
        [Role::User, Role::Admin, Role::DomainAdmin].into_iter().find(|role| role.as_str() == name)
    }

    /// The kind of administrator of an administrator's session; `None` for a mailbox owner's.
    pub fn admin_role(self) -> Option<AdminRole> {
        match self {
            Role::User => None,
            Role::Admin => Some(AdminRole::Admin),
            Role::DomainAdmin => Some(AdminRole::DomainAdmin),
        }
    }

    /// The role the holder of such a session has in the audit log.
    pub fn actor_role(self) -> ActorRole {
        match self.admin_role() {
            None => ActorRole::User,
            Some(role) => role.into(),
        }
    }

    /// The page this role logs in at (and returns to).
    pub fn home(self) -> &'static str {
        match self {
            Role::User => "/",
            Role::Admin => "/admin",
            Role::DomainAdmin => "/domainadmin",
        }
    }
}

/// How far a login has come: only `Ready` sessions reach anything but their pending step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The password was right; a TOTP code is due.
    PendingTotp,
    /// TOTP enrolment is required before anything else.
    TotpEnrolment,
    /// A new password is required before anything else.
    PasswordChange,
    /// Logged in.
    Ready,
}

/// A mailbox whose webmail this session may open, with the SSO token minted for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebmailGrant {
    /// The mailbox.
    pub mailbox: String,
    /// The token SOGo logs into Dovecot with.
    pub token: String,
    /// Opened by an administrator rather than the owner.
    pub impersonation: bool,
}

/// What a session knows, stored server-side as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    /// Who.
    pub role: Role,
    /// The mailbox address or administrator name.
    pub principal: String,
    /// How far the login has come.
    pub stage: Stage,
    /// The token every form of this session carries.
    pub csrf: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request.
    pub last_seen: i64,
    /// The client's address when the session started (shown to the account's owner and administrators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    /// Mailboxes whose webmail this session opened, newest last.
    #[serde(default)]
    pub webmail: Vec<WebmailGrant>,
    /// A one-time message for the next page.
    #[serde(default)]
    pub notice: Option<String>,
    /// The identity provider the session was signed in at.
    #[serde(default)]
    pub provider: Option<ProviderSession>,
}

/// The identity-provider session a web session came from: a back-channel logout names it, and logout ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSession {
    /// The provider's name.
    pub name: String,
    /// The provider's session id (`sid`), when it names one.
    pub session_id: Option<String>,
    /// The account at the provider (`sub`).
    pub subject: String,
    /// The ID token, the hint of the logout at the provider.
    pub id_token: String,
}

/// A loaded session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The database key (hash of the cookie value).
    pub id: String,
    /// The state.
    pub data: SessionData,
}

impl Session {
    /// Who the session's holder is, as the audit log and the engine name them.
    pub fn actor(&self) -> Actor {
        Actor { name: self.data.principal.clone(), role: self.data.role.actor_role() }
    }
}

/// Lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Inactivity that ends a session.
    pub idle: Duration,
    /// Age that ends a session.
    pub max: Duration,
    /// Mark cookies `Secure` (the UI is served over https).
    pub secure_cookies: bool,
}

/// 256 random bits, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The database key of a cookie value (SHA-256, hex): what the store keeps of session cookies and sign-in
/// `state`s.
pub fn token_hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// Constant-time string comparison (for CSRF tokens).
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The value of cookie `name` in the request, if present (the last one wins, as browsers send the most specific
/// path first; Gatehouse only sets Path=/ cookies).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .next_back()
}

/// A `Set-Cookie` header value: HttpOnly, SameSite=Lax, Path=/, Secure when configured.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", Some(Duration::ZERO), secure)
}

impl SessionPolicy {
    fn expiry(&self, data: &SessionData, at: i64) -> i64 {
        (at + self.idle.as_secs() as i64).min(data.created_at + self.max.as_secs() as i64)
    }

    /// Starts a session for `principal` and returns it with the cookie value to send.
    pub async fn create(
        &self,
        store: &Store,
        role: Role,
        principal: &str,
        stage: Stage,
        provider: Option<ProviderSession>,
        remote_ip: Option<String>,
    ) -> Result<(Session, String), Error> {
        let cookie = random_token();
        let at = now();
        let data = SessionData {
            role,
            principal: principal.to_string(),
            stage,
            csrf: random_token(),
            created_at: at,
            last_seen: at,
            remote_ip,
            webmail: Vec::new(),
            notice: None,
            provider,
        };
        let row = WebSessionRow {
            id: token_hash(&cookie),
            principal_kind: role.as_str().to_string(),
            principal: principal.to_string(),
            data: serde_json::to_string(&data).map_err(|err| Error::Internal(err.to_string()))?,
            expires_at: self.expiry(&data, at),
        };
        store.create_web_session(&row).await?;
        if let Some(provider) = &data.provider {
            store
                .set_web_session_provider(&row.id, &provider.name, provider.session_id.as_deref(), &provider.subject)
                .await?;
        }
        Ok((Session { id: row.id, data }, cookie))
    }

    /// The live session the request's cookie names, if any. Its expiry slides (written at most once a minute).
    pub async fn load(&self, auth: &AuthService, store: &Store, headers: &HeaderMap) -> Result<Option<Session>, Error> {
        let Some(cookie) = cookie(headers, SESSION_COOKIE).filter(|c| !c.is_empty() && c.len() <= 128) else {
            return Ok(None);
        };
        let Some(row) = auth.web_session(&token_hash(&cookie)).await? else { return Ok(None) };
        let Ok(mut data) = serde_json::from_str::<SessionData>(&row.data) else {
            tracing::warn!("a web session with unreadable state was ended");
            store.delete_web_session(&row.id).await?;
            return Ok(None);
        };
        // The row and its JSON must agree on who this is (a defence against a tampered row).
        if row.principal != data.principal || row.principal_kind != data.role.as_str() {
            store.delete_web_session(&row.id).await?;
            return Ok(None);
        }
        let at = now();
        if at - data.last_seen >= 60 {
            data.last_seen = at;
            let session = Session { id: row.id.clone(), data };
            self.save(store, &session).await?;
            return Ok(Some(session));
        }
        Ok(Some(Session { id: row.id.clone(), data }))
    }

    /// Writes a session's state back.
    pub async fn save(&self, store: &Store, session: &Session) -> Result<(), Error> {
        let data = serde_json::to_string(&session.data).map_err(|err| Error::Internal(err.to_string()))?;
        store.update_web_session(&session.id, &data, self.expiry(&session.data, session.data.last_seen)).await
    }

    /// The `Set-Cookie` value for a new session cookie (a browser-session cookie; the server decides expiry).
    pub fn cookie_header(&self, cookie: &str) -> String {
        set_cookie(SESSION_COOKIE, cookie, None, self.secure_cookies)
    }
}

/// Appends a `Set-Cookie` header.
pub fn add_set_cookie(headers: &mut HeaderMap, value: &str) {
    if let Ok(value) = value.parse() {
        headers.append(SET_COOKIE, value);
    }
}

/// A web session as the pages list it (the owner's page, a mailbox's admin page).
pub struct SessionView {
    /// The start of the session's id: how the page names it.
    pub reference: String,
    /// When it was signed in (UTC, as `date_time` writes it).
    pub started: String,
    /// When it was last used.
    pub last_seen: String,
    /// The client's address when it was signed in.
    pub from: String,
    /// "password", or the identity provider it was signed in at.
    pub via: String,
    /// Whether it has webmail open ("yes" / "no").
    pub webmail: &'static str,
    /// Whether it is the session of the request (the browser looking at the page).
    pub current: bool,
}

/// How many characters of a session's id name it on a page (the id is a SHA-256 of the cookie: its start
/// reveals nothing, and 16 hex digits are unique among one account's sessions).
const SESSION_REFERENCE: usize = 16;

impl SessionView {
    /// The view of a stored session; `current` is the id of the request's session.
    pub fn from_row(row: &WebSessionRow, current: Option<&str>) -> Self {
        let data: Option<SessionData> = serde_json::from_str(&row.data).ok();
        let reference = row.id.chars().take(SESSION_REFERENCE).collect();
        let current = current == Some(row.id.as_str());
        let yes_no = |flag: bool| if flag { "yes" } else { "no" };
        match data {
            Some(data) => SessionView {
                reference,
                started: super::respond::date_time(data.created_at),
                last_seen: super::respond::date_time(data.last_seen),
                from: data.remote_ip.unwrap_or_else(|| "unknown".into()),
                via: data
                    .provider
                    .map(|p| format!("identity provider {}", p.name))
                    .unwrap_or_else(|| "password".into()),
                webmail: yes_no(!data.webmail.is_empty()),
                current,
            },
            None => SessionView {
                reference,
                started: "unknown".into(),
                last_seen: "unknown".into(),
                from: "unknown".into(),
                via: "unknown".into(),
                webmail: "unknown",
                current,
            },
        }
    }

    /// Whether `reference` (taken from a path) names the stored session `row`.
    pub fn names(row: &WebSessionRow, reference: &str) -> bool {
        reference.len() >= SESSION_REFERENCE && row.id.starts_with(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_and_written_strictly() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; gatehouse_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        let written = set_cookie(SESSION_COOKIE, "v", None, true);
        assert_eq!(written, "gatehouse_session=v; Path=/; HttpOnly; SameSite=Lax; Secure");
        assert!(clear_cookie(SESSION_COOKIE, false).contains("Max-Age=0"));
        assert!(same_token("x1", "x1") && !same_token("x1", "x2") && !same_token("", ""));
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }
}
