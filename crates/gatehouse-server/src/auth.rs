//! [`AuthService`]: the engine plus what every adapter needs around it — the auth log, the audit entry for
//! every master login, and the "last used" mark of app passwords. Adapters call [`AuthService::login`] and
//! only translate its [`Decision`].

use std::future::Future;
use std::sync::Arc;

use gatehouse_engine::{Decision, Engine, LoginRequest, Via, parse_login_name};
use gatehouse_store::{Actor, ActorRole, AuthResult, NewAuthLogEntry, Store};
use serde_json::json;

/// The engine over the store, with logging.
pub struct AuthService {
    engine: Engine<Store>,
    master_separator: String,
}

impl AuthService {
    /// Wraps an engine; `master_separator` must be the engine's.
    pub fn new(engine: Engine<Store>, master_separator: &str) -> Arc<Self> {
        Arc::new(AuthService { engine, master_separator: master_separator.to_string() })
    }

    /// The brute-force guard.
    pub fn guard(&self) -> &gatehouse_engine::Guard {
        self.engine.guard()
    }

    /// Decides a login and records it. Logging happens in the background: a slow log write never delays the
    /// answer, and a failing one is reported in the process log.
    pub async fn login(&self, request: &LoginRequest) -> Decision {
        let decision = self.engine.authenticate(request).await;
        tokio::spawn(self.record(request, &decision));
        decision
    }

    /// Decides a login and waits until it is recorded (for short-lived processes such as the CLI).
    pub async fn login_and_record(&self, request: &LoginRequest) -> Decision {
        let decision = self.engine.authenticate(request).await;
        self.record(request, &decision).await;
        decision
    }

    /// The log writes for one decision, as a future that owns everything it needs.
    fn record(&self, request: &LoginRequest, decision: &Decision) -> impl Future<Output = ()> + Send + 'static {
        let store = self.engine.directory().clone();
        let entry = log_entry(request, decision);
        let master_audit = master_audit(request, decision, &self.master_separator);
        let used_app_password = match decision {
            Decision::Allowed { via: Via::AppPassword(id), cached: false, .. } => Some(*id),
            _ => None,
        };
        trace_decision(request, decision);
        async move {
            if let Err(err) = store.record_auth(entry).await {
                tracing::warn!("could not write the auth log: {err}");
            }
            if let Some((actor, target, details)) = master_audit
                && let Err(err) = store.record_audit(&actor, "master_login", &target, details).await
            {
                tracing::warn!("could not write the audit log: {err}");
            }
            if let Some(id) = used_app_password
                && let Err(err) = store.mark_app_password_used(id).await
            {
                tracing::debug!("could not mark app password {id} used: {err}");
            }
        }
    }
}

fn trace_decision(request: &LoginRequest, decision: &Decision) {
    match decision {
        Decision::Allowed { user, master_user, via, cached } => {
            tracing::info!(service = request.service.as_str(), user, master = ?master_user, ?via, cached, "login allowed")
        }
        Decision::Denied { reason, detail } => tracing::info!(
            service = request.service.as_str(),
            user = %request.username,
            remote_ip = ?request.remote_ip,
            reason = reason.as_str(),
            detail,
            "login denied"
        ),
        Decision::TempFail { cause } => {
            tracing::warn!(service = request.service.as_str(), user = %request.username, cause, "login not decided")
        }
    }
}

fn log_entry(request: &LoginRequest, decision: &Decision) -> NewAuthLogEntry {
    let (username, master_user, result, reason, app_password_id) = match decision {
        Decision::Allowed { user, master_user, via, cached } => (
            user.clone(),
            master_user.clone(),
            AuthResult::Success,
            format!("{via:?}{}", if *cached { " (cached)" } else { "" }),
            match via {
                Via::AppPassword(id) => Some(*id),
                _ => None,
            },
        ),
        Decision::Denied { reason, detail } => (
            request.username.trim().to_lowercase(),
            None,
            AuthResult::Failure,
            format!("{}: {detail}", reason.as_str()),
            None,
        ),
        Decision::TempFail { cause } => {
            (request.username.trim().to_lowercase(), None, AuthResult::TempFail, cause.clone(), None)
        }
    };
    NewAuthLogEntry {
        service: request.service.as_str().to_string(),
        username,
        master_user,
        remote_ip: request.remote_ip.map(|ip| ip.to_string()),
        result,
        reason,
        app_password_id,
    }
}

/// Every master login (allowed or not) is an impersonation attempt and goes to the audit log.
fn master_audit(
    request: &LoginRequest,
    decision: &Decision,
    separator: &str,
) -> Option<(Actor, String, serde_json::Value)> {
    let name = parse_login_name(&request.username, request.authzid.as_deref(), separator).ok()?;
    let master = name.master?;
    let outcome = match decision {
        Decision::Allowed { .. } => "allowed".to_string(),
        Decision::Denied { reason, .. } => format!("denied: {}", reason.as_str()),
        Decision::TempFail { cause } => format!("not decided: {cause}"),
    };
    let (actor, target) = (master, name.target);
    let details = json!({
        "service": request.service.as_str(),
        "remote_ip": request.remote_ip.map(|ip| ip.to_string()),
        "outcome": outcome,
    });
    Some((Actor { name: actor, role: ActorRole::MasterUser }, target, details))
}
