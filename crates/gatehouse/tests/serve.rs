//! `gatehouse serve`, tested as a real process: both listeners answer `/healthz`, the first start creates the
//! administrator, SIGTERM stops it cleanly, and a lost database turns the health check to 503.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_testkit::{Engine, TestDatabase, free_port};

/// A running `gatehouse serve`, killed on drop if a test fails before stopping it.
struct Server {
    child: Child,
    public: u16,
    internal: u16,
}

impl Server {
    fn start(dir: &std::path::Path, database_url: &str, admin_password: Option<&str>) -> Server {
        let (public, internal) = (free_port(), free_port());
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
        let child = cmd.spawn().expect("start gatehouse serve");
        let server = Server { child, public, internal };
        server.wait_until_up();
        server
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

    /// Sends SIGTERM and returns the exit status and everything written to stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
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
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).ok()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut rest = String::new();
    reader.read_to_string(&mut rest).ok()?;
    let body = rest.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    Some((status, body))
}

#[test]
fn serve_answers_health_on_both_listeners_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sqlite://./data/gatehouse.db", None);
    for port in [server.public, server.internal] {
        let (status, body) = get(port, "/healthz").unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"status\":\"ok\""), "{body}");
    }
    assert_eq!(get(server.public, "/nope").unwrap().0, 404);
    let (status, stderr) = server.terminate();
    assert!(status.success(), "exit status {status:?}\n{stderr}");
    assert!(stderr.contains("Created the administrator 'admin' with the password:"), "{stderr}");
    assert!(stderr.contains("received SIGTERM"), "{stderr}");

    // The second start finds the administrator and prints no password.
    let server = Server::start(dir.path(), "sqlite://./data/gatehouse.db", None);
    let (status, stderr) = server.terminate();
    assert!(status.success());
    assert!(!stderr.contains("with the password"), "{stderr}");
}

#[test]
fn a_configured_admin_password_is_used_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sqlite://./data/gatehouse.db", Some("configured-secret-pw"));
    let (status, stderr) = server.terminate();
    assert!(status.success());
    assert!(stderr.contains("created the administrator 'admin' with the configured password"), "{stderr}");
    assert!(!stderr.contains("configured-secret-pw"), "{stderr}");
}

#[test]
fn health_turns_to_503_when_the_database_goes_away() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(TestDatabase::create(Engine::Postgres)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), database.url().expose(), Some("pw"));
    assert_eq!(get(server.internal, "/healthz").unwrap().0, 200);
    runtime.block_on(database.drop_database());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(server.internal, "/healthz").expect("the server still answers");
        if status == 503 {
            assert!(body.contains("unavailable"), "{body}");
            assert_eq!(get(server.public, "/healthz").unwrap().0, 503);
            break;
        }
        assert!(Instant::now() < deadline, "health stayed {status} after the database was dropped");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _) = server.terminate();
    assert!(status.success());
}
