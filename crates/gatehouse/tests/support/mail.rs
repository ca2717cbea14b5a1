//! Tiny clients for the mail protocols, enough to log in: IMAP (LOGIN, AUTHENTICATE PLAIN), POP3 (USER/PASS),
//! ManageSieve (AUTHENTICATE PLAIN).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The outcome of a login attempt, with the server's final line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Logged in.
    Ok(String),
    /// Refused.
    No(String),
}

impl Login {
    /// Whether it logged in.
    pub fn ok(&self) -> bool {
        matches!(self, Login::Ok(_))
    }

    /// The server's line.
    pub fn line(&self) -> &str {
        match self {
            Login::Ok(line) | Login::No(line) => line,
        }
    }
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// Each connection comes from its own loopback address (127.1.x.y), so Dovecot's per-IP auth penalty, which
/// delays logins after failures from one address by up to 15 s, does not slow the tests down.
fn connect(port: u16) -> TcpStream {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() % 200 * 256;
    let source = std::net::Ipv4Addr::new(127, 1, (n >> 8) as u8, (n & 0xff).max(1) as u8);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).expect("connect to the mail server");
    socket.into()
}

/// A connection from a chosen loopback source address.
fn connect_from(port: u16, source: std::net::Ipv4Addr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).expect("connect to the mail server");
    socket.into()
}

impl Conn {
    fn open(port: u16) -> Conn {
        Conn::wrap(connect(port))
    }

    fn wrap(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let writer = stream.try_clone().unwrap();
        Conn { reader: BufReader::new(stream), writer }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from the mail server");
        line.trim_end().to_string()
    }

    fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// Reads lines until one starts with `prefix`.
    fn until(&mut self, prefix: &str) -> String {
        loop {
            let line = self.line();
            assert!(!line.is_empty() || prefix.is_empty(), "connection closed while waiting for {prefix:?}");
            if line.starts_with(prefix) {
                return line;
            }
        }
    }
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn plain(authzid: &str, authcid: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{authzid}\0{authcid}\0{password}"))
}

/// IMAP `LOGIN user password`.
pub fn imap_login(port: u16, user: &str, password: &str) -> Login {
    let mut conn = Conn::open(port);
    conn.until("* OK");
    conn.send(&format!("a LOGIN {} {}", quote(user), quote(password)));
    let reply = conn.until("a ");
    conn.send("b LOGOUT");
    if reply.starts_with("a OK") { Login::Ok(reply) } else { Login::No(reply) }
}

/// IMAP `AUTHENTICATE PLAIN` with an initial response (authzid may be empty).
pub fn imap_plain(port: u16, authzid: &str, authcid: &str, password: &str) -> Login {
    let mut conn = Conn::open(port);
    conn.until("* OK");
    conn.send(&format!("a AUTHENTICATE PLAIN {}", plain(authzid, authcid, password)));
    let reply = conn.until("a ");
    conn.send("b LOGOUT");
    if reply.starts_with("a OK") { Login::Ok(reply) } else { Login::No(reply) }
}

/// IMAP `AUTHENTICATE XOAUTH2` or `OAUTHBEARER` (`mechanism`) with an access token as the initial response; a
/// failure's JSON challenge is answered with an empty line, as clients must.
pub fn imap_oauth(port: u16, mechanism: &str, user: &str, token: &str) -> Login {
    use base64::Engine;
    let payload = match mechanism {
        "XOAUTH2" => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
        _ => format!("n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01"),
    };
    let mut conn = Conn::open(port);
    conn.until("* OK");
    conn.send(&format!("a AUTHENTICATE {mechanism} {}", base64::engine::general_purpose::STANDARD.encode(payload)));
    let mut reply = conn.line();
    if reply.starts_with('+') {
        conn.send("");
        reply = conn.until("a ");
    } else if !reply.starts_with("a ") {
        reply = conn.until("a ");
    }
    conn.send("b LOGOUT");
    if reply.starts_with("a OK") { Login::Ok(reply) } else { Login::No(reply) }
}

/// POP3 `USER` / `PASS`.
pub fn pop3_login(port: u16, user: &str, password: &str) -> Login {
    let mut conn = Conn::open(port);
    conn.until("+OK");
    conn.send(&format!("USER {user}"));
    conn.until("+OK");
    conn.send(&format!("PASS {password}"));
    let reply = conn.line();
    conn.send("QUIT");
    if reply.starts_with("+OK") { Login::Ok(reply) } else { Login::No(reply) }
}

/// ManageSieve `AUTHENTICATE "PLAIN"` with an initial response.
pub fn sieve_plain(port: u16, user: &str, password: &str) -> Login {
    let mut conn = Conn::open(port);
    conn.until("OK");
    conn.send(&format!("AUTHENTICATE \"PLAIN\" \"{}\"", plain("", user, password)));
    let reply = loop {
        let line = conn.line();
        if line.starts_with("OK") || line.starts_with("NO") || line.starts_with("BYE") || line.is_empty() {
            break line;
        }
    };
    conn.send("LOGOUT");
    if reply.starts_with("OK") { Login::Ok(reply) } else { Login::No(reply) }
}

/// IMAP `LOGIN user password` from the loopback address `source`.
pub fn imap_login_from(port: u16, source: std::net::Ipv4Addr, user: &str, password: &str) -> Login {
    let mut conn = Conn::wrap(connect_from(port, source));
    conn.until("* OK");
    conn.send(&format!("a LOGIN {} {}", quote(user), quote(password)));
    let reply = conn.until("a ");
    conn.send("b LOGOUT");
    if reply.starts_with("a OK") { Login::Ok(reply) } else { Login::No(reply) }
}

/// IMAP `LOGIN` with the password as a literal of raw bytes (any byte sequence, Latin-1 say).
pub fn imap_login_bytes(port: u16, user: &str, password: &[u8]) -> Login {
    let mut conn = Conn::open(port);
    conn.until("* OK");
    conn.send(&format!("a LOGIN {} {{{}}}", quote(user), password.len()));
    let go_ahead = conn.line();
    if !go_ahead.starts_with('+') {
        return Login::No(go_ahead);
    }
    conn.writer.write_all(password).unwrap();
    conn.writer.write_all(b"\r\n").unwrap();
    let reply = conn.until("a ");
    conn.send("b LOGOUT");
    if reply.starts_with("a OK") { Login::Ok(reply) } else { Login::No(reply) }
}

/// Logs in over IMAP and APPENDs a message of about `size` bytes to INBOX; returns the APPEND's tagged reply.
pub fn imap_append(port: u16, user: &str, password: &str, size: usize) -> String {
    let mut conn = Conn::open(port);
    conn.until("* OK");
    conn.send(&format!("a LOGIN {} {}", quote(user), quote(password)));
    let login = conn.until("a ");
    assert!(login.starts_with("a OK"), "login for APPEND failed: {login}");
    let mut message = String::from("From: test@example.org\r\nSubject: size test\r\n\r\n");
    let line = "x".repeat(76) + "\r\n";
    while message.len() < size {
        message.push_str(&line);
    }
    conn.send(&format!("b APPEND INBOX {{{}}}", message.len()));
    let go_ahead = conn.line();
    if !go_ahead.starts_with('+') {
        return go_ahead;
    }
    conn.writer.write_all(message.as_bytes()).unwrap();
    conn.writer.write_all(b"\r\n").unwrap();
    let reply = conn.until("b ");
    conn.send("c LOGOUT");
    reply
}
