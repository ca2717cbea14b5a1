//! Test support shared by Gatehouse's test suites.
//!
//! - [`TestDatabase`]: a fresh, empty database on SQLite, PostgreSQL or MariaDB for one test.
//! - [`require_peer`]: the rule for real peers that are missing: skip on a developer machine, fail in CI.
//! - [`free_port`]: a loopback port nobody listens on.
//! - [`dovecot`]: a private Dovecot (IMAP, POP3, ManageSieve, auth-client) with the caller's authentication part.
//! - [`oidc`]: a private OpenID provider (npm `oidc-provider`), generic or with Keycloak's paths.
//! - [`postfix`]: a private Postfix with two submission ports, driven with swaks.
//! - [`slapd`]: a private OpenLDAP server with TLS.
//! - [`postgres`]: a private PostgreSQL server a test may stop and start (a database outage).
//! - [`redis`]: a private Redis with a password.
//! - [`nginx`]: a private nginx with the caller's `server { ... }` block.
//! - [`scim`]: the SCIM 2.0 conformance checker (PyPI scim2-tester).
//! - [`sogo`]: a private SOGo 5.8 (`sogod`) on a fresh PostgreSQL database, trusting proxy authentication.
//! - [`browser`]: headless Chromium driven through chromedriver (WebDriver).
//! - [`wait_for_port`] / [`wait_for_port_closed`]: wait for a loopback listener to come up or go away.
//!
//! PostgreSQL and MariaDB are found through `TEST_POSTGRES_URL` and `TEST_MYSQL_URL`: URLs of a server and an
//! account allowed to create databases (for example `postgres://postgres@127.0.0.1:55432/postgres`). The test
//! script (`scripts/test`) starts private servers on unusual ports and sets both.

pub mod browser;
pub mod dovecot;
pub mod nginx;
pub mod oidc;
pub mod postfix;
pub mod postgres;
mod process;
pub mod redis;
pub mod scim;
pub mod slapd;
pub mod sogo;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gatehouse_core::DatabaseUrl;
use sea_orm::{ConnectionTrait, Database};

/// The SQL engines the store supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite (a temporary file).
    Sqlite,
    /// PostgreSQL, from `TEST_POSTGRES_URL`.
    Postgres,
    /// MariaDB / MySQL, from `TEST_MYSQL_URL`.
    MariaDb,
}

impl Engine {
    /// The environment variable naming the server, if the engine needs one.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Engine::Sqlite => None,
            Engine::Postgres => Some("TEST_POSTGRES_URL"),
            Engine::MariaDb => Some("TEST_MYSQL_URL"),
        }
    }
}

/// Declares one test per engine (modules `sqlite`, `postgres`, `mariadb`) for each named `async fn(Store)` of
/// the calling test file: each runs on a fresh database of that engine (skipped, or failed in CI, when the
/// server is not configured), and the database is dropped afterwards. The calling crate must have
/// `gatehouse_store` and `tokio` available.
#[macro_export]
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        $crate::on_every_engine!(@engine sqlite, Sqlite, $($name),*);
        $crate::on_every_engine!(@engine postgres, Postgres, $($name),*);
        $crate::on_every_engine!(@engine mariadb, MariaDb, $($name),*);
    };
    (@engine $module:ident, $engine:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(database) = $crate::TestDatabase::create($crate::Engine::$engine).await else { return };
                    let store = gatehouse_store::Store::open(database.url()).await.expect("open the store");
                    super::$name(store.clone()).await;
                    store.close().await;
                    database.drop_database().await;
                }
            )*
        }
    };
}

/// Whether the tests run in CI, where every real peer is required.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Decides what to do when a real peer is missing: in CI (`CI=true`) the test fails with `why`; elsewhere it
/// prints why it is skipped, adds a line to the file `GATEHOUSE_TEST_SKIPS` names (the test script lists them
/// at the end, since the test itself shows as passed) and returns `false`.
pub fn require_peer(peer: &str, why: &str) -> bool {
    if in_ci() {
        panic!("{peer} is required in CI but missing: {why}");
    }
    eprintln!("SKIPPED: {peer} is not available ({why}); run ./scripts/test to start it");
    if let Ok(path) = std::env::var("GATEHOUSE_TEST_SKIPS") {
        let test = std::thread::current().name().unwrap_or("a test").to_string();
        record_skip(std::path::Path::new(&path), &test, peer, why);
    }
    false
}

/// Adds "`test`: `peer` (`why`)" to the skip list at `path`.
fn record_skip(path: &std::path::Path, test: &str, peer: &str, why: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{test}: {peer} ({why})");
    }
}

/// A fresh database for one test. Server databases are dropped by [`TestDatabase::drop_database`]; a test
/// that panics leaves its database behind for inspection (the test script's private servers are deleted
/// afterwards anyway).
pub struct TestDatabase {
    /// The engine.
    pub engine: Engine,
    url: DatabaseUrl,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Creates an empty database, or returns `None` (after [`require_peer`]) when the server is not configured
    /// or cannot be reached.
    pub async fn create(engine: Engine) -> Option<TestDatabase> {
        let name = format!("gh_test_{:016x}", rand::random::<u64>());
        let Some(var) = engine.env_var() else {
            let dir = tempfile::tempdir().expect("temporary folder");
            let url = format!("sqlite://{}/gatehouse.db", dir.path().display());
            return Some(TestDatabase { engine, url: DatabaseUrl::new(url), admin_url: None, name, _dir: Some(dir) });
        };
        let Ok(admin_url) = std::env::var(var) else {
            require_peer(&format!("{engine:?}"), &format!("{var} is not set"));
            return None;
        };
        let admin = match Database::connect(admin_url.as_str()).await {
            Ok(admin) => admin,
            Err(err) => {
                require_peer(&format!("{engine:?}"), &format!("cannot connect with {var}: {err}"));
                return None;
            }
        };
        let create = match engine {
            Engine::MariaDb => format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
            _ => format!("CREATE DATABASE {name}"),
        };
        admin.execute_unprepared(&create).await.expect("create a test database");
        let _ = admin.close().await;
        let url = replace_database(&admin_url, &name);
        Some(TestDatabase { engine, url: DatabaseUrl::new(url), admin_url: Some(admin_url), name, _dir: None })
    }

    /// The URL of the fresh database.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Runs SQL statements on the database behind Gatehouse's back (a table renamed to break something, a row
    /// changed by hand).
    pub async fn execute(&self, sql: &str) {
        let db = Database::connect(self.url.expose()).await.expect("connect to the test database");
        db.execute_unprepared(sql).await.unwrap_or_else(|err| panic!("{sql}: {err}"));
        let _ = db.close().await;
    }

    /// Drops a server database (forcing other sessions off on PostgreSQL). Nothing to do for SQLite.
    pub async fn drop_database(&self) {
        let Some(admin_url) = &self.admin_url else { return };
        let Ok(admin) = Database::connect(admin_url.as_str()).await else { return };
        let statement = match self.engine {
            Engine::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let _ = admin.execute_unprepared(&statement).await;
        let _ = admin.close().await;
    }
}

/// Replaces the database name (the URL path) of a server URL, keeping credentials and parameters.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_start..].find('/').map(|i| authority_start + i).unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Waits until something accepts TCP connections on `addr`; `false` once `timeout` has passed.
pub fn wait_for_addr(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`; `false` once `timeout` has passed.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    wait_for_addr(SocketAddr::from(([127, 0, 0, 1], port)), timeout)
}

/// Waits until nothing accepts TCP connections on `127.0.0.1:port` any more; `false` once `timeout` has passed.
pub fn wait_for_port_closed(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether this process runs as root (needed to start Dovecot, Postfix and the private servers as their users).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Finds a program on PATH or in the sbin folders.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::{record_skip, replace_database};

    #[test]
    fn skips_are_listed_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("skipped");
        record_skip(&list, "dovecot::logins", "Dovecot", "not installed");
        record_skip(&list, "sogo::webmail", "SOGo", "sogod is missing");
        let text = std::fs::read_to_string(&list).unwrap();
        assert_eq!(text, "dovecot::logins: Dovecot (not installed)\nsogo::webmail: SOGo (sogod is missing)\n");
    }

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(replace_database("postgres://p@127.0.0.1:5/postgres", "x"), "postgres://p@127.0.0.1:5/x");
        assert_eq!(replace_database("mysql://root@127.0.0.1:3306", "x"), "mysql://root@127.0.0.1:3306/x");
        assert_eq!(
            replace_database("mysql://root:pw@h/y?ssl-mode=disabled", "x"),
            "mysql://root:pw@h/x?ssl-mode=disabled"
        );
    }
}
