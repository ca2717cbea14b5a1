//! `POST /dovecot/auth` on the internal listener: the endpoint Gatehouse's Lua passdb (and mailcow's, with
//! only its URL changed) calls for every Dovecot login.
//!
//! Request: JSON with `user` (or mailcow's `username`), the password as `password_hex` (hex of its bytes, what
//! Gatehouse's Lua script sends, so any byte sequence arrives intact) or `password`, `service`, and optionally
//! `login_user` (set in Dovecot's master passdb: `user` is then the master and `login_user` the target),
//! `remote_ip`, `real_rip`, `secured`, `mech`, `session`, and `skip_password_check` with `master_user`
//! (Dovecot's second pass after a master login: decided as that master login again, never taken on trust). A
//! body that is not UTF-8 (mailcow's script sends a Latin-1 password as raw bytes) is read byte for byte.
//!
//! Reply: 200 `{"success":true,"user":…}`, 401 wrong password, 404 unknown user, 403 disabled or not allowed,
//! 429 the client address is banned (with a `message` for the user), 503 temporary failure — each failure
//! `{"success":false,"reason":…}`.
//!
//! Callers must present the shared secret (`X-Gatehouse-Secret`) or come from an allowed network (none by
//! default); mailcow's endpoint answers anyone on its network and is a password oracle there.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use gatehouse_engine::{Credentials, Decision, DenyReason, EntryPoint, LoginRequest, LoginService};
use gatehouse_passwords::Zeroizing;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::AppState;

/// Header carrying the shared secret.
pub const SECRET_HEADER: &str = "x-gatehouse-secret";

/// What a banned client is told (through Dovecot).
pub const BANNED_MESSAGE: &str = "Too many failed logins; try again later";

/// Who may call the internal Dovecot endpoints.
#[derive(Clone, Debug, Default)]
pub struct CallerPolicy {
    /// The shared secret, if configured.
    pub shared_secret: Option<gatehouse_core::Secret>,
    /// Networks allowed without the secret.
    pub allowed_networks: Vec<ipnet::IpNet>,
}

impl CallerPolicy {
    /// Whether a request from `peer` with `headers` may use the endpoint.
    pub fn allows(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        if let (Some(secret), Some(given)) = (&self.shared_secret, headers.get(SECRET_HEADER))
            && bool::from(secret.expose().as_bytes().ct_eq(given.as_bytes()))
        {
            return true;
        }
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.allowed_networks.iter().any(|net| net.contains(&peer))
    }
}

/// The JSON Dovecot's Lua script sends (ours, or mailcow's).
#[derive(Deserialize)]
struct AuthBody {
    user: Option<String>,
    username: Option<String>,
    login_user: Option<String>,
    password: Option<String>,
    password_hex: Option<String>,
    service: Option<String>,
    remote_ip: Option<String>,
    real_rip: Option<String>,
    secured: Option<serde_json::Value>,
    #[serde(default)]
    skip_password_check: bool,
    master_user: Option<String>,
}

/// Reads the body. JSON must be UTF-8, but a Lua script that puts a Latin-1 password into its JSON as raw bytes
/// (mailcow's) sends something else: such a body is read with every byte as one character, and the password
/// turned back into exactly those bytes (the other fields into text, as well as they decode).
fn parse_auth_body(body: &[u8]) -> Option<(AuthBody, Zeroizing<Vec<u8>>)> {
    let (mut parsed, raw) = match serde_json::from_slice::<AuthBody>(body) {
        Ok(parsed) => (parsed, false),
        Err(_) if std::str::from_utf8(body).is_err() => {
            let as_latin1 = Zeroizing::new(body.iter().map(|b| char::from(*b)).collect::<String>());
            (serde_json::from_str::<AuthBody>(&as_latin1).ok()?, true)
        }
        Err(_) => return None,
    };
    let bytes_of = |text: &str| -> Vec<u8> {
        if raw { text.chars().map(|c| c as u32 as u8).collect() } else { text.as_bytes().to_vec() }
    };
    if raw {
        let text_of = |field: &mut Option<String>| {
            if let Some(value) = field.take() {
                *field = Some(
                    String::from_utf8_lossy(&value.chars().map(|c| c as u32 as u8).collect::<Vec<_>>()).into_owned(),
                );
            }
        };
        for field in [&mut parsed.user, &mut parsed.username, &mut parsed.login_user, &mut parsed.master_user] {
            text_of(field);
        }
    }
    let password = match (&parsed.password_hex, &parsed.password) {
        (Some(hex_text), _) => Zeroizing::new(hex::decode(hex_text.trim()).ok()?),
        (None, Some(text)) => Zeroizing::new(bytes_of(text)),
        (None, None) => Zeroizing::new(Vec::new()),
    };
    if let Some(password) = parsed.password.as_mut() {
        zeroize::Zeroize::zeroize(password);
    }
    Some((parsed, password))
}

/// The refusal for callers that are neither on an allowed network nor present the shared secret.
pub(crate) fn refuse_unauthorised(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    endpoint: &str,
) -> Option<Response> {
    if state.dovecot_callers.allows(peer.ip(), headers) {
        return None;
    }
    tracing::warn!(peer = %peer, endpoint, "refused a call from an unauthorised caller");
    Some(failure(StatusCode::UNAUTHORIZED, "caller not authorised"))
}

pub(crate) fn failure(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({ "success": false, "reason": reason }))).into_response()
}

fn ip(text: Option<&str>) -> Option<IpAddr> {
    text.map(str::trim).filter(|t| !t.is_empty()).and_then(|t| t.parse().ok())
}

/// The handler.
pub async fn auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "/dovecot/auth") {
        return refused;
    }
    let Some((body, password)) = parse_auth_body(&body) else {
        return failure(StatusCode::BAD_REQUEST, "malformed JSON");
    };
    let Some(user) = body.user.or(body.username).filter(|u| !u.trim().is_empty()) else {
        return failure(StatusCode::BAD_REQUEST, "no user");
    };
    let Some(service) = body.service.as_deref().and_then(LoginService::from_name) else {
        return failure(StatusCode::FORBIDDEN, "unknown service");
    };
    let master_second_pass = match (body.skip_password_check, body.master_user.filter(|m| !m.trim().is_empty())) {
        (false, _) => None,
        (true, Some(master)) => Some(master),
        (true, None) => {
            tracing::warn!(
                "/dovecot/auth: skip_password_check without master_user is refused; install the Lua script \
                 `gatehouse config dovecot` prints"
            );
            return failure(StatusCode::BAD_REQUEST, "skip_password_check needs master_user");
        }
    };
    // In Dovecot's master passdb, `user` is the master and `login_user` the mailbox: SASL's authcid/authzid.
    let authzid = body.login_user.filter(|target| !target.trim().is_empty() && !target.eq_ignore_ascii_case(&user));
    let is_master_pass = authzid.is_some();
    let secured = match &body.secured {
        Some(serde_json::Value::Bool(flag)) => *flag,
        Some(serde_json::Value::String(text)) => !text.is_empty(),
        _ => false,
    };
    let request = LoginRequest {
        username: user,
        authzid,
        credentials: Credentials::Password(password),
        service,
        remote_ip: ip(body.remote_ip.as_deref()).or_else(|| ip(body.real_rip.as_deref())),
        secured,
        entry: EntryPoint::MailServer,
        master_second_pass,
    };
    match state.auth.login(&request).await {
        // In the master passdb the name must stay the master's; Dovecot switches to the target itself.
        Decision::Allowed { .. } if is_master_pass => {
            (StatusCode::OK, Json(json!({ "success": true }))).into_response()
        }
        Decision::Allowed { user, .. } => {
            (StatusCode::OK, Json(json!({ "success": true, "user": user }))).into_response()
        }
        Decision::Denied { reason: DenyReason::Banned, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "success": false, "reason": "banned", "message": BANNED_MESSAGE })),
        )
            .into_response(),
        Decision::Denied { reason, .. } => {
            let status = match reason {
                DenyReason::UnknownUser => StatusCode::NOT_FOUND,
                DenyReason::Disabled | DenyReason::ServiceNotAllowed => StatusCode::FORBIDDEN,
                DenyReason::WrongPassword | DenyReason::BadRequest | DenyReason::Banned => StatusCode::UNAUTHORIZED,
            };
            failure(status, reason.as_str())
        }
        Decision::TempFail { .. } => failure(StatusCode::SERVICE_UNAVAILABLE, "temporary failure"),
    }
}

/// Dovecot's userdb: the settings it hands every mailbox, and the mailboxes it saw recently, which it still
/// answers for while the database is unreachable (as the login engine does for recently verified logins).
pub struct Userdb {
    /// The settings.
    pub settings: UserdbSettings,
    recent: moka::sync::Cache<String, gatehouse_store::DeliverableMailbox>,
}

impl Userdb {
    /// A userdb with `settings`, remembering what the database said for `outage_grace`.
    pub fn new(settings: UserdbSettings, outage_grace: std::time::Duration) -> Self {
        Userdb {
            settings,
            recent: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(outage_grace).build(),
        }
    }
}

/// What Dovecot's userdb hands every mailbox, besides its quota: the mail owner and where the mail lives.
#[derive(Debug, Clone)]
pub struct UserdbSettings {
    /// The system user (name or number) that owns the mail.
    pub uid: String,
    /// Its group.
    pub gid: String,
    /// The home folder; `%u` (address), `%n` (local part), `%d` (domain) and `%%` are filled in; unset leaves
    /// Dovecot's `mail_home`.
    pub home: Option<String>,
    /// The mail location (`mail` field), same variables; unset leaves Dovecot's `mail_location`.
    pub mail: Option<String>,
}

impl Default for UserdbSettings {
    fn default() -> Self {
        UserdbSettings { uid: "vmail".into(), gid: "vmail".into(), home: None, mail: None }
    }
}

/// Fills `%u`, `%n`, `%d` and `%%` in for `address`.
fn expand(template: &str, address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let mut out = String::with_capacity(template.len() + address.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(address),
            Some('n') => out.push_str(local),
            Some('d') => out.push_str(domain),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// A userdb lookup: `{"user": …}`.
#[derive(Deserialize)]
struct UserdbBody {
    user: Option<String>,
}

/// `POST /dovecot/userdb`: the fields of an active mailbox in an active domain — `uid`, `gid`, `home`, `mail`
/// (when configured) and `quota_rule` (`*:storage=<MiB>M`, 0 meaning unlimited) — or 404 for anything else,
/// so that nothing is delivered to an inactive mailbox.
pub async fn userdb(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "/dovecot/userdb") {
        return refused;
    }
    let Some(user) = serde_json::from_slice::<UserdbBody>(&body).ok().and_then(|b| b.user) else {
        return failure(StatusCode::BAD_REQUEST, "no user");
    };
    let address = gatehouse_engine::login_name::normalise_name(&user);
    let found = match state.store.deliverable_mailbox(&address).await {
        Ok(Some(mailbox)) => {
            state.userdb.recent.insert(address.clone(), mailbox.clone());
            Ok(Some(mailbox))
        }
        Ok(None) => {
            state.userdb.recent.invalidate(&address);
            Ok(None)
        }
        Err(err) if err.fault() == gatehouse_core::Fault::Server => match state.userdb.recent.get(&address) {
            Some(mailbox) => {
                tracing::warn!(
                    user = address,
                    "/dovecot/userdb: the database is unreachable ({err}); answered from memory"
                );
                Ok(Some(mailbox))
            }
            None => Err(err),
        },
        Err(err) => Err(err),
    };
    match found {
        Ok(Some(mailbox)) => {
            let settings = &state.userdb.settings;
            let mut fields = serde_json::Map::new();
            fields.insert("uid".into(), json!(settings.uid));
            fields.insert("gid".into(), json!(settings.gid));
            if let Some(home) = &settings.home {
                fields.insert("home".into(), json!(expand(home, &mailbox.address)));
            }
            if let Some(mail) = &settings.mail {
                fields.insert("mail".into(), json!(expand(mail, &mailbox.address)));
            }
            fields.insert("quota_rule".into(), json!(format!("*:storage={}M", mailbox.quota_mib.max(0))));
            Json(json!({ "user": mailbox.address, "fields": fields })).into_response()
        }
        Ok(None) => failure(StatusCode::NOT_FOUND, "no such mailbox"),
        Err(err) => {
            tracing::warn!("/dovecot/userdb: {err}");
            failure(StatusCode::SERVICE_UNAVAILABLE, "temporary failure")
        }
    }
}

/// `GET /dovecot/users`: every active mailbox of an active domain (`doveadm -A`, userdb iteration).
pub async fn users(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "/dovecot/users") {
        return refused;
    }
    match state.store.deliverable_addresses().await {
        Ok(users) => Json(json!({ "users": users })).into_response(),
        Err(err) => {
            tracing::warn!("/dovecot/users: {err}");
            failure(StatusCode::SERVICE_UNAVAILABLE, "temporary failure")
        }
    }
}

/// What Dovecot's auth policy client sends (`auth_policy_request_attributes`, default set).
#[derive(Deserialize)]
struct PolicyBody {
    remote: Option<String>,
    login: Option<String>,
}

/// The `command=` of a policy request.
#[derive(Deserialize)]
pub struct PolicyQuery {
    command: Option<String>,
}

/// `POST /dovecot/policy?command=allow|report` for Dovecot's `auth_policy_server_url`. `allow` answers
/// `{"status":-1}` for banned addresses (Dovecot then refuses before asking any passdb) and `{"status":0}`
/// otherwise; `report` is acknowledged only, because Gatehouse counts failures where it decides them.
pub async fn policy(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Query(query): axum::extract::Query<PolicyQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "/dovecot/policy") {
        return refused;
    }
    let Ok(body) = serde_json::from_slice::<PolicyBody>(&body) else {
        return failure(StatusCode::BAD_REQUEST, "malformed JSON");
    };
    match query.command.as_deref() {
        Some("allow") => {
            let remote = ip(body.remote.as_deref());
            match state.auth.address_verdict(remote) {
                gatehouse_engine::Verdict::Banned { remaining } => {
                    tracing::info!(remote = ?remote, login = ?body.login, "policy: refused a banned address");
                    let msg =
                        format!("Too many failed logins; try again in {} minutes", remaining.as_secs().div_ceil(60));
                    Json(json!({ "status": -1, "msg": msg })).into_response()
                }
                gatehouse_engine::Verdict::Allow => Json(json!({ "status": 0, "msg": "" })).into_response(),
            }
        }
        Some("report") => Json(json!({ "status": 0, "msg": "" })).into_response(),
        _ => failure(StatusCode::BAD_REQUEST, "command must be allow or report"),
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn userdb_templates_are_filled_in() {
        assert_eq!(expand("/var/vmail/%d/%n", "alice@example.org"), "/var/vmail/example.org/alice");
        assert_eq!(expand("maildir:~/Maildir:LAYOUT=fs", "a@b.org"), "maildir:~/Maildir:LAYOUT=fs");
        assert_eq!(expand("%u 100%% %x %", "a@b.org"), "a@b.org 100% %x %");
    }
}
