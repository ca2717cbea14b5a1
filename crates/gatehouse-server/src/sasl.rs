//! A server for Dovecot's auth-client protocol (version 1.2), so Postfix can use `smtpd_sasl_type = dovecot`
//! with Gatehouse directly, without Dovecot. Mechanisms PLAIN and LOGIN, both flagged `plaintext` (so
//! Postfix's `noplaintext` security option can filter them truthfully).
//!
//! The protocol is line based (LF), fields separated by TAB, values escaped with `\x01` + letter. The server
//! greets with VERSION, MECH lines, SPID, CUID, COOKIE and DONE — MECH before SPID, or Postfix takes the socket
//! for Dovecot's auth-master socket. Requests are `AUTH <id> <mech> service=… [rip=…] [secured] [resp=<b64>]`
//! and `CONT <id> <b64>`; answers are `CONT <id> <b64>`, `OK <id> user=<name>` (Postfix requires `user=`) and
//! `FAIL <id> …`, with `temp` and `code=temp_fail` when Gatehouse could not decide. Connections are persistent
//! and carry many requests; the listener's limits ([`crate::listener`]) cap how many are open and close idle
//! ones, and one connection may leave only a few exchanges unfinished.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gatehouse_engine::{Credentials, Decision, EntryPoint, LoginRequest, LoginService};
use gatehouse_passwords::Zeroizing;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::AuthService;
use crate::listener::{Connection, ConnectionLimiter};

/// Longest accepted line (Dovecot 2.3's own limit).
const MAX_LINE: usize = 16_384;

static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// Escapes a value the way Dovecot's `str_tabescape` does.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\x01' => out.push_str("\x011"),
            '\t' => out.push_str("\x01t"),
            '\r' => out.push_str("\x01r"),
            '\n' => out.push_str("\x01n"),
            other => out.push(other),
        }
    }
    out
}

/// Undoes [`escape`].
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push('\x01'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A mechanism exchange waiting for the client's next CONT.
enum Pending {
    /// PLAIN without an initial response: the next CONT carries it.
    Plain(Request),
    /// LOGIN after "Username:".
    LoginUser(Request),
    /// LOGIN after "Password:", with the username.
    LoginPassword(Request, String),
}

/// What an AUTH line said about the client.
#[derive(Clone)]
struct Request {
    service: String,
    remote_ip: Option<IpAddr>,
    secured: bool,
}

/// Serves one client connection until it closes, is idle too long or is asked to close; at most
/// `pending_limit` exchanges may wait for the client's next line at once.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    auth: Arc<AuthService>,
    connection: Connection,
    pending_limit: usize,
) {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::new(reader);
    let cuid = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let cookie: [u8; 16] = rand::random();
    let greeting = format!(
        "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t{}\nCUID\t{cuid}\nCOOKIE\t{}\nDONE\n",
        std::process::id(),
        cookie.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    if writer.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let read = tokio::select! {
            read = limited.read_until(b'\n', &mut line) => read,
            _ = connection.should_close() => return,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) if line.len() > MAX_LINE => {
                tracing::warn!("SASL client sent an over-long line; closing the connection");
                return;
            }
            Ok(_) => {}
        }
        let _busy = connection.busy();
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        let fields: Vec<&str> = text.split('\t').collect();
        let reply = match fields[0] {
            "VERSION" => {
                if fields.get(1) != Some(&"1") {
                    tracing::warn!("SASL client speaks protocol version {:?}; closing", fields.get(1));
                    return;
                }
                None
            }
            "AUTH" if fields.len() >= 3 && pending.len() >= pending_limit && !pending.contains_key(fields[1]) => {
                Some(format!("FAIL\t{}\treason=Too many unfinished authentications on this connection", fields[1]))
            }
            "AUTH" if fields.len() >= 3 => Some(start(&auth, &fields, &mut pending).await),
            "CONT" if fields.len() >= 2 => Some(cont(&auth, &fields, &mut pending).await),
            // CPID and anything unknown are ignored, as the protocol asks.
            _ => None,
        };
        if let Some(reply) = reply
            && writer.write_all(format!("{reply}\n").as_bytes()).await.is_err()
        {
            return;
        }
    }
}

async fn start(auth: &AuthService, fields: &[&str], pending: &mut HashMap<String, Pending>) -> String {
    let id = fields[1].to_string();
    let mechanism = fields[2].to_ascii_uppercase();
    let mut request = Request { service: "smtp".into(), remote_ip: None, secured: false };
    let mut initial = None;
    for field in &fields[3..] {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "service" => request.service = unescape(value),
            "rip" => request.remote_ip = unescape(value).parse().ok(),
            "secured" => request.secured = true,
            "resp" => {
                initial = Some(unescape(value));
                break; // resp= is always last
            }
            _ => {}
        }
    }
    match (mechanism.as_str(), initial) {
        ("PLAIN", Some(response)) => plain(auth, &id, &request, &response).await,
        ("PLAIN", None) => {
            pending.insert(id.clone(), Pending::Plain(request));
            format!("CONT\t{id}\t")
        }
        ("LOGIN", _) => {
            pending.insert(id.clone(), Pending::LoginUser(request));
            format!("CONT\t{id}\t{}", B64.encode("Username:"))
        }
        _ => format!("FAIL\t{id}\tcode=auth_mech_invalid\treason=Unsupported authentication mechanism"),
    }
}

async fn cont(auth: &AuthService, fields: &[&str], pending: &mut HashMap<String, Pending>) -> String {
    let id = fields[1].to_string();
    let data = unescape(fields.get(2).copied().unwrap_or(""));
    match pending.remove(&id) {
        Some(Pending::Plain(request)) => plain(auth, &id, &request, &data).await,
        Some(Pending::LoginUser(request)) => {
            match B64.decode(data.as_bytes()).ok().and_then(|u| String::from_utf8(u).ok()) {
                Some(user) => {
                    pending.insert(id.clone(), Pending::LoginPassword(request, user));
                    format!("CONT\t{id}\t{}", B64.encode("Password:"))
                }
                None => invalid_base64(&id),
            }
        }
        Some(Pending::LoginPassword(request, user)) => match B64.decode(data.as_bytes()) {
            Ok(password) => decide(auth, &id, &request, user, None, Zeroizing::new(password)).await,
            Err(_) => invalid_base64(&id),
        },
        None => format!("FAIL\t{id}\treason=Unexpected continuation"),
    }
}

fn invalid_base64(id: &str) -> String {
    format!("FAIL\t{id}\tcode=invalid_base64\treason=Invalid base64 data")
}

async fn plain(auth: &AuthService, id: &str, request: &Request, response: &str) -> String {
    let Ok(decoded) = B64.decode(response.as_bytes()) else { return invalid_base64(id) };
    let decoded = Zeroizing::new(decoded);
    let mut parts = decoded.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return format!("FAIL\t{id}\treason=Malformed PLAIN response");
    };
    let (Ok(authzid), Ok(authcid)) = (std::str::from_utf8(authzid), std::str::from_utf8(authcid)) else {
        return format!("FAIL\t{id}\treason=Malformed PLAIN response");
    };
    let authzid = Some(authzid.to_string()).filter(|a| !a.is_empty());
    decide(auth, id, request, authcid.to_string(), authzid, Zeroizing::new(password.to_vec())).await
}

async fn decide(
    auth: &AuthService,
    id: &str,
    request: &Request,
    username: String,
    authzid: Option<String>,
    password: Zeroizing<Vec<u8>>,
) -> String {
    let Some(service) = LoginService::from_name(&request.service) else {
        return format!("FAIL\t{id}\tuser={}\treason=Unknown service", escape(&username));
    };
    let login = LoginRequest {
        username: username.clone(),
        authzid,
        credentials: Credentials::Password(password),
        service,
        remote_ip: request.remote_ip,
        secured: request.secured,
        entry: EntryPoint::MailServer,
        master_second_pass: None,
    };
    match auth.login(&login).await {
        Decision::Allowed { user, .. } => format!("OK\t{id}\tuser={}", escape(&user)),
        Decision::Denied { .. } => format!("FAIL\t{id}\tuser={}\treason=Authentication failed", escape(&username)),
        Decision::TempFail { .. } => format!(
            "FAIL\t{id}\tuser={}\tcode=temp_fail\ttemp\treason=Temporary authentication failure",
            escape(&username)
        ),
    }
}

/// A bound SASL listener: TCP or a unix socket.
pub enum Listener {
    /// `host:port`.
    Tcp(tokio::net::TcpListener),
    /// A unix socket.
    Unix(tokio::net::UnixListener),
}

/// An accepted client of either kind.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Listener::Tcp(listener) => Stream::Tcp(listener.accept().await?.0),
            Listener::Unix(listener) => Stream::Unix(listener.accept().await?.0),
        })
    }
}

/// Accepts connections on `listener` within `limiter`'s limits until `stop` fires.
pub async fn serve(
    listener: Listener,
    auth: Arc<AuthService>,
    limiter: Arc<ConnectionLimiter>,
    pending_limit: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    crate::listener::accept_loop(
        limiter,
        || listener.accept(),
        stop,
        move |stream, connection| {
            let auth = auth.clone();
            async move {
                match stream {
                    Stream::Tcp(stream) => serve_connection(stream, auth, connection, pending_limit).await,
                    Stream::Unix(stream) => serve_connection(stream, auth, connection, pending_limit).await,
                }
            }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        let value = "a\tb\nc\rd\x01e";
        assert_eq!(escape(value), "a\x01tb\x01nc\x01rd\x011e");
        assert_eq!(unescape(&escape(value)), value);
    }
}
