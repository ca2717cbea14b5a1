//! Shared test support: a running `gatehouse serve`, the CLI against the same database, a tiny HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_testkit::dovecot::Dovecot;
use gatehouse_testkit::free_port;
use gatehouse_testkit::postfix::Postfix;

/// Milliseconds since the Unix epoch.
fn unix_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Two directory users for LDAP tests: carol (employeeType staff) and dave (employeeType contractor, it), with
/// passwords carolpw and davepw.
pub const LDAP_PEOPLE: &str = "dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Example
displayName: Carol Example
mail: carol@example.org
employeeType: staff
userPassword: carolpw

dn: uid=dave,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: Example
displayName: Dave Example
mail: dave@example.org
employeeType: contractor
employeeType: it
userPassword: davepw
";

pub mod http;
pub mod mail;
pub mod sign_in;

/// A running `gatehouse serve`, killed on drop if a test fails before stopping it.
pub struct Server {
    child: Child,
    pub public: u16,
    pub internal: u16,
    /// The shared secret callers of the internal listener present.
    pub secret: String,
}

impl Server {
    pub fn start(dir: &std::path::Path, database_url: &str, admin_password: Option<&str>) -> Server {
        Server::start_with_env(dir, database_url, admin_password, &[])
    }

    /// Like [`Server::start`], with extra environment variables (configuration).
    pub fn start_with_env(
        dir: &std::path::Path,
        database_url: &str,
        admin_password: Option<&str>,
        env: &[(&str, &str)],
    ) -> Server {
        Server::start_at(dir, database_url, admin_password, env, free_port())
    }

    /// Like [`Server::start_with_env`], with the public listener on `public` (for a configuration that names
    /// its own URL).
    pub fn start_at(
        dir: &std::path::Path,
        database_url: &str,
        admin_password: Option<&str>,
        env: &[(&str, &str)],
        public: u16,
    ) -> Server {
        let internal = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.current_dir(dir)
            .env_remove("GATEHOUSE_ADMIN_PASSWORD")
            .env_remove("RUST_LOG")
            .env("GATEHOUSE_PASSWORDS__ROUNDS", "4")
            .args(["--database-url", database_url, "serve"])
            .args(["--public", &format!("127.0.0.1:{public}"), "--internal", &format!("127.0.0.1:{internal}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(password) = admin_password {
            cmd.env("GATEHOUSE_ADMIN_PASSWORD", password);
        }
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().expect("start gatehouse serve");
        let mut server = Server { child, public, internal, secret: String::new() };
        server.wait_until_up();
        let configured = env.iter().find(|(name, _)| *name == "GATEHOUSE_DOVECOT__SHARED_SECRET").map(|(_, v)| *v);
        server.secret = match configured {
            Some(secret) => secret.to_string(),
            None => internal_secret(dir, database_url),
        };
        server
    }

    /// `POST path` on the internal listener with a JSON body and the shared secret.
    pub fn post_internal(&self, path: &str, body: &str) -> Option<(u16, String)> {
        post_json_with(self.internal, path, body, &[("X-Gatehouse-Secret", &self.secret)])
    }

    /// `GET path` on the internal listener with the shared secret and `headers`.
    pub fn get_internal(&self, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        let mut all = vec![("X-Gatehouse-Secret", self.secret.as_str())];
        all.extend_from_slice(headers);
        get_with(self.internal, path, &all)
    }

    /// Waits until the server has read the change feed after this call: a change another process (the CLI)
    /// committed before it has reached the server. The server does so within a second by itself; tests that
    /// check the effect of such a change at once wait for it here.
    pub fn caught_up(&self) {
        let since = unix_millis();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get_internal("/stats", &[]).expect("/stats answers");
            assert_eq!(status, 200, "{body}");
            let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
            let now = unix_millis();
            if let Some(ago) = stats["change_feed"]["last_read_ms_ago"].as_i64()
                && now - ago > since
            {
                return;
            }
            assert!(Instant::now() < deadline, "the server did not read the change feed within 10 s: {stats}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if get(self.internal, "/healthz").is_some() && get(self.public, "/healthz").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("gatehouse serve did not come up within 30 s");
    }

    /// The process id of `gatehouse serve`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL gatehouse serve");
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and returns the exit status and everything written to stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "gatehouse did not stop within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET; returns the status code and body, or None if nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    get_with(port, path, &[])
}

/// [`get`] with extra request headers.
pub fn get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n").ok()?;
    read_response(stream)
}

/// Reads a `Connection: close` response: the status code and the body.
fn read_response(stream: TcpStream) -> Option<(u16, String)> {
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = String::new();
    reader.read_to_string(&mut rest).ok()?;
    Some((status, rest.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()))
}

/// Runs the CLI against `database_url` in `dir`, with `stdin`; returns (exit code, stdout, stderr).
pub fn cli(dir: &Path, database_url: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    cli_bytes(dir, database_url, args, stdin.as_bytes())
}

/// [`cli`] with standard input as bytes (a password in another encoding, say).
///
/// The tests' accounts have short passwords (`alicepw`): these commands accept passwords of any length
/// (`passwords.min_length = 1`); [`cli_as_configured`] runs with the product's own rule.
pub fn cli_bytes(dir: &Path, database_url: &str, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    run_cli(dir, database_url, args, stdin, &[("GATEHOUSE_PASSWORDS__MIN_LENGTH", "1")])
}

/// [`cli`] with the password rule as configured (at least 8 characters by default).
pub fn cli_as_configured(dir: &Path, database_url: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    run_cli(dir, database_url, args, stdin.as_bytes(), &[])
}

fn run_cli(dir: &Path, database_url: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("GATEHOUSE_PASSWORDS__ROUNDS", "4")
        .envs(env.iter().copied())
        .arg("--database-url")
        .arg(database_url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gatehouse");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `gatehouse init` in `dir`: the database, the secret key file and the administrator `admin` with
/// `admin_password` (what a later `Server::start` with the same password would have made).
pub fn init(dir: &Path, database_url: &str, admin_password: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("GATEHOUSE_PASSWORDS__ROUNDS", "4")
        .env("GATEHOUSE_ADMIN_PASSWORD", admin_password)
        .args(["--database-url", database_url, "init"])
        .output()
        .expect("run gatehouse init");
    assert!(output.status.success(), "gatehouse init failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// The internal endpoints' shared secret of the instance in `dir` (`gatehouse config secret`).
pub fn internal_secret(dir: &Path, database_url: &str) -> String {
    cli_ok(dir, database_url, &["config", "secret"], "").trim().to_string()
}

/// Like [`cli`], panicking unless the command succeeds; returns stdout.
pub fn cli_ok(dir: &Path, database_url: &str, args: &[&str], stdin: &str) -> String {
    let (code, stdout, stderr) = cli(dir, database_url, args, stdin);
    assert_eq!(code, 0, "gatehouse {args:?} failed: {stderr}");
    stdout
}

/// A private Dovecot configured with what `gatehouse config dovecot` prints for the Gatehouse whose internal
/// listener is `gatehouse_internal`; `None` (after `require_peer`) when Dovecot or what it needs is missing.
pub fn start_dovecot(workdir: &Path, database_url: &str, gatehouse_internal: u16) -> Option<Dovecot> {
    Dovecot::start_with(|root| {
        let lua_path = root.join("gatehouse-passdb.lua");
        let url = format!("http://127.0.0.1:{gatehouse_internal}/dovecot/auth");
        let lua = cli_ok(workdir, database_url, &["config", "dovecot", "--part", "lua", "--url", &url], "");
        std::fs::write(&lua_path, lua).unwrap();
        cli_ok(
            workdir,
            database_url,
            &["config", "dovecot", "--part", "conf", "--lua-path", lua_path.to_str().unwrap()],
            "",
        )
    })
}

/// The settings of an LDAP provider for the private `slapd` (StartTLS with its CA, the admin bind, people under
/// `ou=people`, found by `mail`); tests add what they exercise.
#[allow(dead_code)]
pub fn ldap_settings(slapd: &gatehouse_testkit::slapd::Slapd) -> serde_json::Value {
    serde_json::json!({
        "hosts": ["127.0.0.1"],
        "port": slapd.ldap_port,
        "security": "starttls",
        "ca_file": slapd.ca_file(),
        "bind_dn": "cn=admin,dc=example,dc=org",
        "base_dn": "ou=people,dc=example,dc=org",
        "user_filter": "(&(objectClass=inetOrgPerson)(mail=%u))",
    })
}

/// A private Postfix configured with what `gatehouse config postfix` prints: one port asking the Gatehouse whose
/// auth-protocol listener is `gatehouse_sasl` directly, one asking Dovecot's auth service at `dovecot_auth`;
/// `None` (after `require_peer`) when Postfix or what it needs is missing.
#[allow(dead_code)]
pub fn start_postfix(workdir: &Path, database_url: &str, gatehouse_sasl: u16, dovecot_auth: u16) -> Option<Postfix> {
    let sasl = format!("127.0.0.1:{gatehouse_sasl}");
    let (code, direct, stderr) =
        run_cli(workdir, database_url, &["config", "postfix"], b"", &[("GATEHOUSE_LISTEN__SASL", &sasl)]);
    assert_eq!(code, 0, "gatehouse config postfix: {stderr}");
    let dovecot = format!("inet:127.0.0.1:{dovecot_auth}");
    let via_dovecot =
        cli_ok(workdir, database_url, &["config", "postfix", "--via", "dovecot", "--dovecot-auth", &dovecot], "");
    Postfix::start(&direct, &via_dovecot)
}

/// A minimal HTTP/1.1 POST with a JSON body; returns the status code and body.
pub fn post_json(port: u16, path: &str, body: &str) -> Option<(u16, String)> {
    post_json_with(port, path, body, &[])
}

/// [`post_json`] with extra request headers.
pub fn post_json_with(port: u16, path: &str, body: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         {extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    read_response(stream)
}

/// Reads `read` (a log listing) until `check` accepts it, for up to five seconds (log records are written in the
/// background), and returns it; the panic shows the last listing.
#[allow(dead_code)]
pub fn eventually_logged(what: &str, mut read: impl FnMut() -> String, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listing = read();
        if check(&listing) {
            return listing;
        }
        assert!(Instant::now() < deadline, "not within 5 s: {what}: {listing}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `check` for up to five seconds (log records are written in the background).
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Real Dovecot asking the Gatehouse whose internal listener is `gatehouse_internal`, and SOGo reading mail from
/// it (mail domain example.org); `None` (after `require_peer`) when either is missing.
pub fn start_dovecot_and_sogo(
    workdir: &Path,
    database_url: &str,
    gatehouse_internal: u16,
) -> Option<(Dovecot, gatehouse_testkit::sogo::Sogo)> {
    let dovecot = start_dovecot(workdir, database_url, gatehouse_internal)?;
    let options = gatehouse_testkit::sogo::SogoOptions {
        imap_url: format!("imap://127.0.0.1:{}", dovecot.imap),
        smtp_url: "smtp://127.0.0.1:1".into(),
        mail_domain: "example.org".into(),
        ..gatehouse_testkit::sogo::SogoOptions::default()
    };
    let sogo = gatehouse_testkit::sogo::Sogo::start(options)?;
    Some((dovecot, sogo))
}

/// The locations `gatehouse config nginx` prints for `server` and a webmail backend at `sogo`.
pub fn nginx_locations(workdir: &Path, database_url: &str, server: &Server, sogo: &str) -> String {
    let public = format!("http://127.0.0.1:{}", server.public);
    let internal = format!("http://127.0.0.1:{}", server.internal);
    cli_ok(
        workdir,
        database_url,
        &["config", "nginx", "--public", &public, "--internal", &internal, "--sogo", sogo],
        "",
    )
}

/// Real nginx on 127.0.0.1:`port` with `locations` in its server block.
pub fn start_nginx(port: u16, locations: &str) -> Option<gatehouse_testkit::nginx::Nginx> {
    gatehouse_testkit::nginx::Nginx::start(&format!(
        "server {{\n listen 127.0.0.1:{port};\n server_name localhost;\n{locations}\n}}\n"
    ))
}
