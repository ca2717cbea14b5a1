//! Gatehouse's two HTTP listeners and their lifecycle.
//!
//! - The **public** listener serves what browsers reach: the web UI ([`web`]), the REST API, the webmail
//!   login redirector (`/sogo-auth`), and SCIM 2.0 push provisioning for identity providers ([`scim`]).
//! - The **internal** listener serves what the mail server's own programs call: Dovecot's passdb
//!   (`/dovecot/auth`), userdb (`/dovecot/userdb`, `/dovecot/users`) and policy (`/dovecot/policy`) endpoints,
//!   the guard's state (`/guard`) and counters (`/stats`); nginx's `auth_request` for SOGo (`/nginx/auth`).
//!   Keep it on loopback or a private network; optionally also over TLS on a second address.
//! - The optional **SASL** listener speaks Dovecot's auth protocol for Postfix ([`sasl`]).
//!
//! Both HTTP listeners answer `GET /healthz`: 200 while the database answers, 503 while it does not.
//! [`Bound::run`] stops everything gracefully when the shutdown future completes (SIGTERM or SIGINT).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use gatehouse_passwords::HashPool;
use gatehouse_store::Store;
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

/// How long `/healthz` waits for the database before answering 503.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound for any request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a shutdown waits for the auth log's queued records to be written.
const LOG_FINISH_LIMIT: Duration = Duration::from_secs(10);

pub mod api;
pub mod auth;
pub mod doveadm;
pub mod dovecot;
pub mod dovecot_oauth2;
pub mod feed;
pub mod listener;
pub mod operators;
pub mod sasl;
pub mod scim;
pub mod sogo_users;
pub mod tls;
pub mod totp;
pub mod web;

pub use auth::AuthService;
pub use dovecot::CallerPolicy;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The bounded pool every password hash runs on.
    pub hash_pool: HashPool,
    /// The login decision engine with its logging.
    pub auth: Arc<AuthService>,
    /// Who may call the Dovecot endpoints (and nginx's `auth_request` endpoint).
    pub dovecot_callers: Arc<CallerPolicy>,
    /// Dovecot's userdb.
    pub userdb: Arc<dovecot::Userdb>,
    /// The web UI's settings.
    pub web: Arc<web::WebConfig>,
}

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// The public listener.
    pub public: SocketAddr,
    /// The internal listener.
    pub internal: SocketAddr,
    /// The Dovecot auth-protocol listener for Postfix, if wanted.
    pub sasl: Option<SaslAddress>,
    /// The internal endpoints over TLS, if wanted.
    pub internal_tls: Option<SocketAddr>,
}

/// Connection limits of the listeners.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// The public and internal HTTP listeners (each).
    pub http: listener::ConnectionLimits,
    /// The SASL listener.
    pub sasl: listener::ConnectionLimits,
    /// Unfinished exchanges one SASL connection may hold.
    pub sasl_pending_per_connection: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            http: listener::ConnectionLimits::default(),
            sasl: listener::ConnectionLimits { idle_timeout: Duration::from_secs(600), ..Default::default() },
            sasl_pending_per_connection: 16,
        }
    }
}

/// Where the auth-protocol (SASL) listener listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslAddress {
    /// A TCP address (`127.0.0.1:10013`).
    Tcp(SocketAddr),
    /// A unix socket (`unix:/var/spool/postfix/private/gatehouse-auth`). It is created with mode 0666: put it
    /// in a directory only Postfix can enter, as `/var/spool/postfix/private` is.
    Unix(std::path::PathBuf),
}

impl std::str::FromStr for SaslAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:").or_else(|| text.starts_with('/').then_some(text)) {
            return Ok(SaslAddress::Unix(path.into()));
        }
        let tcp = text.strip_prefix("inet:").unwrap_or(text);
        tcp.parse().map(SaslAddress::Tcp).map_err(|_| format!("'{text}' is neither host:port nor unix:/path"))
    }
}

impl std::fmt::Display for SaslAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslAddress::Tcp(addr) => write!(f, "inet:{addr}"),
            SaslAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Bound listeners, ready to serve (binding first lets the caller report the real addresses and fail early).
pub struct Bound {
    public: TcpListener,
    internal: TcpListener,
    internal_tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    sasl: Option<sasl::Listener>,
}

/// A listener could not be bound: its address is in use, not available or not permitted. The operator must
/// change the configuration or the system (a configuration / OS error, not a refused request).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} ({what} listener): {source}")]
pub struct BindError {
    /// The address.
    pub address: String,
    /// Which listener.
    pub what: &'static str,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl Bound {
    /// Binds every listener; `tls` is the TLS configuration of the internal TLS listener, if there is one.
    pub async fn bind(listeners: Listeners, tls: Option<Arc<rustls::ServerConfig>>) -> Result<Bound, BindError> {
        let tcp = |address: SocketAddr, what: &'static str| async move {
            TcpListener::bind(address).await.map_err(|source| BindError { address: address.to_string(), what, source })
        };
        let public = tcp(listeners.public, "public").await?;
        let internal = tcp(listeners.internal, "internal").await?;
        let sasl = match &listeners.sasl {
            None => None,
            Some(SaslAddress::Tcp(addr)) => Some(sasl::Listener::Tcp(tcp(*addr, "SASL").await?)),
            Some(SaslAddress::Unix(path)) => {
                let failed = |source| BindError { address: path.display().to_string(), what: "SASL", source };
                if path.exists() {
                    std::fs::remove_file(path).map_err(failed)?;
                }
                let listener = tokio::net::UnixListener::bind(path).map_err(failed)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(failed)?;
                Some(sasl::Listener::Unix(listener))
            }
        };
        let internal_tls = match (listeners.internal_tls, tls) {
            (Some(address), Some(tls)) => {
                Some((tcp(address, "internal TLS").await?, tokio_rustls::TlsAcceptor::from(tls)))
            }
            _ => None,
        };
        Ok(Bound { public, internal, internal_tls, sasl })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> std::io::Result<Listeners> {
        let sasl = match &self.sasl {
            None => None,
            Some(sasl::Listener::Tcp(listener)) => Some(SaslAddress::Tcp(listener.local_addr()?)),
            Some(sasl::Listener::Unix(listener)) => {
                listener.local_addr()?.as_pathname().map(|path| SaslAddress::Unix(path.to_path_buf()))
            }
        };
        let internal_tls = self.internal_tls.as_ref().map(|(listener, _)| listener.local_addr()).transpose()?;
        Ok(Listeners { public: self.public.local_addr()?, internal: self.internal.local_addr()?, sasl, internal_tls })
    }

    /// Serves every listener until `shutdown` completes, then lets running requests finish.
    pub async fn run(
        self,
        state: AppState,
        limits: ServerLimits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tokio::task::JoinError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let auth = state.auth.clone();
        let public = tokio::spawn(listener::serve_http(
            self.public,
            None,
            public_router(state.clone()),
            listener::ConnectionLimiter::new(limits.http, "public"),
            stop_rx.clone(),
        ));
        let internal_tls = self.internal_tls.map(|(bound, acceptor)| {
            tokio::spawn(listener::serve_http(
                bound,
                Some(acceptor),
                internal_router(state.clone()),
                listener::ConnectionLimiter::new(limits.http, "internal TLS"),
                stop_rx.clone(),
            ))
        });
        let internal = tokio::spawn(listener::serve_http(
            self.internal,
            None,
            internal_router(state),
            listener::ConnectionLimiter::new(limits.http, "internal"),
            stop_rx.clone(),
        ));
        let sasl = self.sasl.map(|bound| {
            let limiter = listener::ConnectionLimiter::new(limits.sasl, "SASL");
            tokio::spawn(sasl::serve(bound, auth.clone(), limiter, limits.sasl_pending_per_connection, stop_rx.clone()))
        });
        shutdown.await;
        tracing::info!("shutting down: finishing running requests");
        let _ = stop_tx.send(true);
        public.await?;
        internal.await?;
        if let Some(internal_tls) = internal_tls {
            internal_tls.await?;
        }
        if let Some(sasl) = sasl {
            sasl.await?;
        }
        auth.finish_logs(LOG_FINISH_LIMIT).await;
        Ok(())
    }
}

fn common_layers(router: Router<AppState>, state: AppState) -> Router {
    router
        .layer(SetSensitiveRequestHeadersLayer::new([axum::http::header::AUTHORIZATION, axum::http::header::COOKIE]))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .with_state(state)
}

/// The public listener's routes.
pub fn public_router(state: AppState) -> Router {
    let api = api::router(api::ApiState {
        store: state.store.clone(),
        hash_pool: state.hash_pool.clone(),
        password_scheme: state.web.password_scheme,
        password_policy: state.web.password_policy,
        trusted_proxies: state.web.trusted_proxies.clone(),
    });
    let scim = scim::router(scim::ScimState { store: state.store.clone(), public_url: state.web.public_url.clone() });
    common_layers(
        Router::new()
            .route("/healthz", get(healthz))
            .merge(web::router(&state))
            .nest("/api/v1", api)
            .nest("/scim/v2", scim),
        state,
    )
}

/// The internal listener's routes.
pub fn internal_router(state: AppState) -> Router {
    common_layers(
        Router::new()
            .route("/healthz", get(healthz))
            .route("/dovecot/auth", axum::routing::post(dovecot::auth))
            .route("/dovecot/oauth2", axum::routing::post(dovecot_oauth2::introspect))
            .route("/dovecot/policy", axum::routing::post(dovecot::policy))
            .route("/dovecot/userdb", axum::routing::post(dovecot::userdb))
            .route("/dovecot/users", get(dovecot::users))
            .route("/guard", get(operators::guard_list))
            .route("/stats", get(operators::stats))
            .route("/guard/{address}", axum::routing::delete(operators::guard_unban))
            .route("/nginx/auth", get(web::nginx::auth)),
        state,
    )
}

/// 200 when the database answers within [`HEALTH_TIMEOUT`], else 503. The reason is logged, not returned.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ok", "database": "ok" }))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "unreachable" })))
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer within {HEALTH_TIMEOUT:?}");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "timeout" })))
        }
    }
}
