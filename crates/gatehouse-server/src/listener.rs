//! Accepting connections, with the same limits on every listener (public, internal, SASL):
//!
//! - **A cap on open connections.** At the cap, the connection that has been idle the longest (no request in
//!   progress) is asked to close, so a new client is always served; a connection busy with a request is never
//!   cut. Only when every connection is busy is the new one refused. A flood of idle connections therefore
//!   cannot lock Dovecot, nginx or Postfix out.
//! - **Idle timeouts.** A connection without a request for the idle time is closed, and an HTTP client must send
//!   a request's headers within it.
//! - **Accept errors** (out of file descriptors, …) back off up to a second instead of spinning, and every
//!   repeated warning is logged at most every ten seconds, with a count of what was held back.
//!
//! HTTP is served by hyper's HTTP/1 connection directly (plain or, on the internal listener, TLS), which is what
//! makes closing idle keep-alive connections possible; the axum routers are the services.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// How long a TLS client may take for its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long running requests may take to finish after a shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The longest pause after failed accepts.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// A connection without a request (or exchange) for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { max_connections: 1000, idle_timeout: Duration::from_secs(60) }
    }
}

/// A warning that is logged at most every ten seconds; what is held back in between is counted in the next one.
pub struct RateLimitedWarning {
    what: &'static str,
    last: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

impl RateLimitedWarning {
    /// A warning about `what` (the listener's name, for example).
    pub const fn new(what: &'static str) -> Self {
        RateLimitedWarning { what, last: Mutex::new(None), held_back: AtomicU64::new(0) }
    }

    /// Logs `message` unless one was logged in the last ten seconds.
    pub fn warn(&self, message: impl std::fmt::Display) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(10)) {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        let held_back = self.held_back.swap(0, Ordering::Relaxed);
        if held_back > 0 {
            tracing::warn!(listener = self.what, held_back, "{message} ({held_back} similar warnings held back)");
        } else {
            tracing::warn!(listener = self.what, "{message}");
        }
    }
}

/// What the limiter knows about one open connection.
struct ConnectionState {
    /// Requests (or exchanges) in progress.
    busy: AtomicUsize,
    /// Milliseconds since the limiter started, at the last start or end of a request.
    last_active_ms: AtomicU64,
    /// Set when the connection is asked to close.
    close: Notify,
}

/// Counts a listener's connections and picks the one to close when the cap is reached.
pub struct ConnectionLimiter {
    limits: ConnectionLimits,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnectionState>>>,
    /// Every open connection, for shutdown.
    all_closed: Notify,
    warning: RateLimitedWarning,
}

impl ConnectionLimiter {
    /// A limiter for the listener named `what`.
    pub fn new(limits: ConnectionLimits, what: &'static str) -> Arc<Self> {
        Arc::new(ConnectionLimiter {
            limits,
            started: Instant::now(),
            next_id: AtomicU64::new(1),
            open: Mutex::new(HashMap::new()),
            all_closed: Notify::new(),
            warning: RateLimitedWarning::new(what),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnectionState>>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Open connections now.
    pub fn open_connections(&self) -> usize {
        self.lock().len()
    }

    /// Admits a new connection. At the cap, the connection idle the longest is asked to close (and no longer
    /// counted); when every connection is busy, the new one is refused (`None`).
    pub fn admit(self: &Arc<Self>) -> Option<Connection> {
        let mut open = self.lock();
        if open.len() >= self.limits.max_connections {
            let oldest_idle = open
                .iter()
                .filter(|(_, state)| state.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, state)| state.last_active_ms.load(Ordering::Relaxed))
                .map(|(id, _)| *id);
            match oldest_idle.and_then(|id| open.remove(&id)) {
                Some(evicted) => {
                    evicted.close.notify_one();
                    self.warning.warn(format_args!(
                        "{} connections are open (the limit): closing the one idle the longest to admit a new one",
                        self.limits.max_connections
                    ));
                }
                None => {
                    self.warning.warn(format_args!(
                        "{} connections are open and busy (the limit): refusing a new one",
                        self.limits.max_connections
                    ));
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            busy: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
        });
        open.insert(id, state.clone());
        Some(Connection { limiter: self.clone(), id, state })
    }

    /// Asks every open connection to close (after its running request).
    fn close_all(&self) {
        for state in self.lock().values() {
            state.close.notify_one();
        }
    }

    /// Waits until every connection has closed, at most `grace`.
    async fn wait_all_closed(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.all_closed.notified();
            if self.open_connections() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(open = self.open_connections(), "connections still open after the shutdown grace");
                return;
            }
        }
    }
}

/// One admitted connection; dropping it frees its place.
pub struct Connection {
    limiter: Arc<ConnectionLimiter>,
    id: u64,
    state: Arc<ConnectionState>,
}

impl Connection {
    /// Marks a request (or exchange) in progress until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.state.busy.fetch_add(1, Ordering::AcqRel);
        self.state.last_active_ms.store(self.limiter.now_ms(), Ordering::Relaxed);
        Busy { limiter: self.limiter.clone(), state: self.state.clone() }
    }

    /// How long the connection has been without a request (zero while one runs).
    pub fn idle_for(&self) -> Duration {
        if self.state.busy.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let since = self.state.last_active_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.limiter.now_ms().saturating_sub(since))
    }

    /// Completes when the connection should close: asked to (the cap, a shutdown), or idle for the idle time.
    pub async fn should_close(&self) {
        let idle = self.limiter.limits.idle_timeout;
        loop {
            let remaining = idle.saturating_sub(self.idle_for());
            if remaining.is_zero() {
                return;
            }
            tokio::select! {
                _ = self.state.close.notified() => return,
                _ = tokio::time::sleep(remaining.max(Duration::from_millis(50))) => {}
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        open.remove(&self.id);
        if open.is_empty() {
            self.limiter.all_closed.notify_waiters();
        }
    }
}

/// A request in progress on a [`Connection`].
pub struct Busy {
    limiter: Arc<ConnectionLimiter>,
    state: Arc<ConnectionState>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.state.last_active_ms.store(self.limiter.now_ms(), Ordering::Relaxed);
        self.state.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections with `accept` until `stop` fires, handing each admitted one to `serve`; accept errors
/// back off. Then asks every connection to close and waits for them (at most the shutdown grace).
pub async fn accept_loop<S, A, AF, F, FF>(
    limiter: Arc<ConnectionLimiter>,
    mut accept: A,
    mut stop: watch::Receiver<bool>,
    serve: F,
) where
    A: FnMut() -> AF,
    AF: Future<Output = std::io::Result<S>>,
    F: Fn(S, Connection) -> FF,
    FF: Future<Output = ()> + Send + 'static,
{
    let mut backoff = Duration::from_millis(10);
    let accept_warning = RateLimitedWarning::new("accept");
    loop {
        let accepted = tokio::select! {
            accepted = accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        match accepted {
            Ok(stream) => {
                backoff = Duration::from_millis(10);
                if let Some(connection) = limiter.admit() {
                    tokio::spawn(serve(stream, connection));
                }
            }
            Err(err) => {
                accept_warning.warn(format_args!("cannot accept a connection: {err}; pausing {backoff:?}"));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|stopped| *stopped) => break,
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
    limiter.close_all();
    limiter.wait_all_closed(SHUTDOWN_GRACE).await;
}

/// Serves HTTP/1 on `listener` with `router` (TLS first when `tls` is given) until `stop` fires; running
/// requests then finish.
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limiter: Arc<ConnectionLimiter>,
    stop: watch::Receiver<bool>,
) {
    let idle = limiter.limits.idle_timeout;
    let handshake_warning = Arc::new(RateLimitedWarning::new("TLS"));
    accept_loop(
        limiter,
        || listener.accept(),
        stop,
        move |(stream, peer): (tokio::net::TcpStream, SocketAddr), connection| {
            let router = router.clone();
            let tls = tls.clone();
            let handshake_warning = handshake_warning.clone();
            async move {
                let _ = stream.set_nodelay(true);
                match tls {
                    None => serve_http_connection(stream, peer, router, connection, idle).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => serve_http_connection(stream, peer, router, connection, idle).await,
                            Ok(Err(err)) => {
                                handshake_warning.warn(format_args!("TLS handshake with {peer} failed: {err}"))
                            }
                            Err(_) => handshake_warning.warn(format_args!("TLS handshake with {peer} timed out")),
                        }
                    }
                }
            }
        },
    )
    .await;
}

/// One HTTP/1 connection: requests are served until the client closes, the connection is idle too long, or it
/// is asked to close (then after its running request).
async fn serve_http_connection<IO>(io: IO, peer: SocketAddr, router: Router, connection: Connection, idle: Duration)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = Arc::new(connection);
    let marks = connection.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let busy = marks.busy();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    let mut closing = false;
    loop {
        tokio::select! {
            result = http.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, "HTTP connection ended: {err}");
                }
                return;
            }
            _ = connection.should_close(), if !closing => {
                http.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_makes_room_and_busy_ones_stay() {
        let limiter = ConnectionLimiter::new(
            ConnectionLimits { max_connections: 2, idle_timeout: Duration::from_secs(60) },
            "test",
        );
        let first = limiter.admit().unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = limiter.admit().unwrap();
        let _working = second.busy();
        let third = limiter.admit().expect("the idle first connection makes room");
        assert_eq!(limiter.open_connections(), 2);
        tokio::time::timeout(Duration::from_secs(1), first.should_close()).await.expect("the first is told to close");
        let _also_working = third.busy();
        assert!(limiter.admit().is_none(), "every connection is busy: the new one is refused");
        drop(first);
        assert_eq!(limiter.open_connections(), 2, "an evicted connection was already not counted");
    }

    #[tokio::test]
    async fn idle_connections_are_told_to_close() {
        let limiter = ConnectionLimiter::new(
            ConnectionLimits { max_connections: 10, idle_timeout: Duration::from_millis(200) },
            "test",
        );
        let connection = limiter.admit().unwrap();
        let started = Instant::now();
        {
            let _busy = connection.busy();
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(connection.idle_for(), Duration::ZERO, "a running request is not idle time");
        }
        tokio::time::timeout(Duration::from_secs(2), connection.should_close()).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(500), "idle time counts from the end of the request");
    }
}
