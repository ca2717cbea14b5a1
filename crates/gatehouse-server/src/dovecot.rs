//! `POST /dovecot/auth` on the internal listener: the endpoint Gatehouse's Lua passdb (and mailcow's, with
//! only its URL changed) calls for every Dovecot login.
//!
//! Request: JSON with `user` (or mailcow's `username`), `password`, `service`, and optionally `login_user`
//! (set in Dovecot's master passdb: `user` is then the master and `login_user` the target), `remote_ip`,
//! `real_rip`, `secured`, `mech`, `session`, `skip_password_check` (Dovecot's second pass after a master
//! login). Reply: 200 `{"success":true,"user":…}`, 401 wrong password, 404 unknown user, 403 disabled or not
//! allowed, 503 temporary failure — each failure `{"success":false,"reason":…}`.
//!
//! Callers must present the shared secret (`X-Gatehouse-Secret`) or come from an allowed network; mailcow's
//! endpoint answers anyone on its network and is a password oracle there.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use gatehouse_engine::{Decision, DenyReason, LoginRequest, LoginService};
use gatehouse_passwords::Zeroizing;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::AppState;

/// Header carrying the shared secret.
pub const SECRET_HEADER: &str = "x-gatehouse-secret";

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
    service: Option<String>,
    remote_ip: Option<String>,
    real_rip: Option<String>,
    secured: Option<serde_json::Value>,
    #[serde(default)]
    skip_password_check: bool,
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

fn failure(status: StatusCode, reason: &str) -> Response {
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
    let Ok(body) = serde_json::from_slice::<AuthBody>(&body) else {
        return failure(StatusCode::BAD_REQUEST, "malformed JSON");
    };
    let Some(user) = body.user.or(body.username).filter(|u| !u.trim().is_empty()) else {
        return failure(StatusCode::BAD_REQUEST, "no user");
    };
    let password = Zeroizing::new(body.password.unwrap_or_default().into_bytes());
    let Some(service) = body.service.as_deref().and_then(LoginService::from_name) else {
        return failure(StatusCode::FORBIDDEN, "unknown service");
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
        password,
        service,
        remote_ip: ip(body.remote_ip.as_deref()).or_else(|| ip(body.real_rip.as_deref())),
        secured,
        master_verified: body.skip_password_check,
    };
    match state.auth.login(&request).await {
        // In the master passdb the name must stay the master's; Dovecot switches to the target itself.
        Decision::Allowed { .. } if is_master_pass => {
            (StatusCode::OK, Json(json!({ "success": true }))).into_response()
        }
        Decision::Allowed { user, .. } => {
            (StatusCode::OK, Json(json!({ "success": true, "user": user }))).into_response()
        }
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
            match state.auth.guard().check(remote) {
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

/// `GET /guard`: what the brute-force guard tracks (for `gatehouse guard list`).
pub async fn guard_list(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "internal") {
        return refused;
    }
    Json(state.auth.guard().snapshot()).into_response()
}

/// `DELETE /guard/{address}`: ends a ban (for `gatehouse guard unban`).
pub async fn guard_unban(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Path(address): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "internal") {
        return refused;
    }
    let Ok(address) = address.parse::<IpAddr>() else {
        return failure(StatusCode::BAD_REQUEST, "not an IP address");
    };
    let known = state.auth.guard().unban(address);
    tracing::info!(%address, known, "ban lifted by an operator");
    Json(json!({ "success": true, "was_tracked": known })).into_response()
}

/// `GET /stats`: the hash pool's counters (queue wait, busy rejections, memory budget) and the guard's size,
/// for monitoring.
pub async fn stats(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse_unauthorised(&state, peer, &headers, "internal") {
        return refused;
    }
    let pool = state.hash_pool.stats();
    let guard = state.auth.guard().snapshot();
    Json(json!({
        "hash_pool": {
            "submitted": pool.submitted,
            "completed": pool.completed,
            "in_flight": pool.in_flight,
            "rejected_busy": pool.rejected_busy,
            "queue_wait_mean_ms": pool.queue_wait_mean().as_secs_f64() * 1000.0,
            "queue_wait_max_ms": pool.queue_wait_max.as_secs_f64() * 1000.0,
            "queue_wait_last_ms": pool.queue_wait_last.as_secs_f64() * 1000.0,
            "memory_in_use_kib": pool.memory_in_use_kib,
            "memory_peak_kib": pool.memory_peak_kib,
            "memory_budget_kib": state.hash_pool.memory_budget_kib(),
        },
        "guard": {
            "banned_addresses": guard.iter().filter(|e| e.banned_until.is_some()).count(),
            "tracked": guard.len(),
        },
    }))
    .into_response()
}
