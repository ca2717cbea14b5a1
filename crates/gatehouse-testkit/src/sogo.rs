//! A private SOGo 5.8 (`sogod`) for tests, trusting proxy authentication (`x-webobjects-remote-user`), on a
//! fresh PostgreSQL database and role of its own.
//!
//! Configuration: sogod reads `/etc/sogo/sogo.conf` from a hard-coded path, but its defaults are searched
//! command line first (`NSArgumentDomain`), then the `sogod` domain of the user's `.GNUstepDefaults`, then
//! `/etc/{debconf,sogo}.conf` (SOGo 5.8 `SOGoSystemDefaults.m`, `prepareUserDefaults`). So every setting is
//! passed on sogod's command line as `-Key value` (values in property-list syntax, such as the
//! `SOGoUserSources` array) and overrides the system file: instances run in parallel, and `/etc/sogo` is never
//! written. Keys this module does not set still come from the system file, which is why the Debian file's
//! `OCSEMailAlarmsFolderURL`, `SOGoSieveServer` and `SOGoMemcachedHost` are overridden too. (GNUstep finds the
//! user's defaults from the passwd entry, not `$HOME`, so a private `.GNUstepDefaults` is not an option.)
//!
//! The PostgreSQL server is `TEST_POSTGRES_URL`, or `postgres://postgres@127.0.0.1:5432/postgres` when that is
//! unset. The database holds the `sogo_users` table of the SQL user source (`c_uid, c_name, c_password, c_cn,
//! mail`; see [`Sogo::add_user`]); sogod creates its own tables on start. memcached is not used: the cache
//! points to a closed port (`SOGoMemcachedHost = 127.0.0.1:1`), which SOGo only logs.
//!
//! sogod runs as user `sogo` in the foreground (`WONoDetach = YES`, one worker) and logs to the temporary folder.
//! Its worker ignores SIGTERM for about 30 s, so [`Sogo::stop`] kills the watchdog and its workers with SIGKILL
//! (after SIGSTOP, so no worker is respawned), waits until the port is closed and drops the database and role.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement};

use crate::{free_port, process, replace_database, require_peer, wait_for_port_closed};

/// The sogod binary (Debian package `sogo`).
pub const SOGOD: &str = "/usr/sbin/sogod";

/// The PostgreSQL server used when `TEST_POSTGRES_URL` is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The log line of a sogod worker that accepts requests.
const READY: &str = "notified the watchdog that we are ready";

/// What a test chooses about its SOGo.
#[derive(Debug, Clone)]
pub struct SogoOptions {
    /// `SOGoIMAPServer`, such as `imap://127.0.0.1:10143`.
    pub imap_url: String,
    /// `SOGoSMTPServer`, such as `smtp://127.0.0.1:10025`.
    pub smtp_url: String,
    /// `SOGoMailDomain`.
    pub mail_domain: String,
    /// The HTTP port (`WOPort`, on 127.0.0.1); `None` picks a free one.
    pub port: Option<u16>,
    /// More defaults, or replacements of this module's, as `(key, value)` with the value in property-list
    /// syntax as on sogod's command line: `("SOGoLanguage", "French")`, `("SOGoSuperUsernames", "(admin)")`.
    pub defaults: Vec<(String, String)>,
}

impl Default for SogoOptions {
    fn default() -> Self {
        SogoOptions {
            imap_url: "imap://127.0.0.1:10143".into(),
            smtp_url: "smtp://127.0.0.1:10025".into(),
            mail_domain: "example.org".into(),
            port: None,
            defaults: Vec::new(),
        }
    }
}

/// The fresh database and role of one instance.
struct SogoDatabase {
    /// The server's admin URL.
    admin_url: String,
    /// Database and role name.
    name: String,
    /// The database, reached with the admin account (for sea-orm).
    admin_db_url: String,
    /// `postgresql://role:password@host:port/name`, the prefix of SOGo's table URLs.
    sogo_url: String,
}

/// A running sogod, stopped (and its database dropped) on drop.
pub struct Sogo {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    db: Option<SogoDatabase>,
}

/// Runs `future` to completion on a private runtime in a scoped thread, so it works from sync code and from
/// inside another runtime alike.
fn block_on<F: std::future::Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(future)
            })
            .join()
            .expect("the database thread panicked")
    })
}

/// The uid and gid of `user` from /etc/passwd.
fn lookup_user(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == user).then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))?
    })
}

impl Sogo {
    /// Creates the database and role, starts sogod and waits until its worker is ready (about 1 s). `None` (after
    /// [`require_peer`]) when sogod, the `sogo` user or PostgreSQL are missing. Panics, with sogod's log, when it
    /// does not come up.
    pub fn start(options: SogoOptions) -> Option<Sogo> {
        if !Path::new(SOGOD).exists() {
            require_peer("SOGo", &format!("{SOGOD} is missing (package sogo)"));
            return None;
        }
        let Some((uid, gid)) = lookup_user("sogo") else {
            require_peer("SOGo", "the system user `sogo` is missing (package sogo)");
            return None;
        };
        let admin_url = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
        let db = match block_on(create_database(&admin_url)) {
            Ok(db) => db,
            Err(err) => {
                require_peer("PostgreSQL (for SOGo)", &format!("cannot prepare a database on {admin_url}: {err}"));
                return None;
            }
        };
        let dir = tempfile::Builder::new().prefix("gatehouse-sogo-").tempdir().expect("temporary folder");
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("give the folder to sogo");
        let port = options.port.unwrap_or_else(free_port);
        let mut sogo = Sogo { child: None, dir, port, db: Some(db) };
        let args = sogo.arguments(&options);
        let stderr = std::fs::File::create(sogo.dir.path().join("stderr.log")).unwrap();
        let spawned = Command::new(SOGOD)
            .uid(uid)
            .gid(gid)
            .args(&args)
            .current_dir(sogo.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn();
        match spawned {
            Ok(child) => sogo.child = Some(child),
            Err(err) => {
                require_peer("SOGo", &format!("cannot start sogod as user sogo (root is needed): {err}"));
                return None;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The watchdog listens before its worker is ready; a probe connection would only log an error.
            if sogo.log().contains(READY) {
                break;
            }
            if let Some(Ok(Some(status))) = sogo.child.as_mut().map(Child::try_wait) {
                panic!("sogod exited ({status}) on start:\n{}{}", sogo.read("stderr.log"), sogo.log());
            }
            assert!(
                Instant::now() < deadline,
                "sogod was not ready in 30 s:\n{}{}",
                sogo.read("stderr.log"),
                sogo.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sogo)
    }

    /// sogod's command line: every default as `-Key value`, the caller's replacing this module's.
    fn arguments(&self, options: &SogoOptions) -> Vec<String> {
        let db = self.db.as_ref().expect("database").sogo_url.clone();
        let dir = self.dir.path().display();
        let mut defaults: Vec<(String, String)> = [
            ("WONoDetach", "YES".to_string()),
            ("WOPort", format!("127.0.0.1:{}", self.port)),
            ("WOWorkersCount", "1".into()),
            ("WOLogFile", format!("{dir}/sogo.log")),
            ("WOPidFile", format!("{dir}/sogo.pid")),
            ("SOGoProfileURL", format!("{db}/sogo_user_profile")),
            ("OCSFolderInfoURL", format!("{db}/sogo_folder_info")),
            ("OCSSessionsFolderURL", format!("{db}/sogo_sessions_folder")),
            ("OCSEMailAlarmsFolderURL", format!("{db}/sogo_alarms_folder")),
            ("SOGoTrustProxyAuthentication", "YES".into()),
            ("SOGoEncryptionKey", "0123456789abcdef".into()),
            ("SOGoIMAPServer", options.imap_url.clone()),
            ("SOGoSMTPServer", options.smtp_url.clone()),
            ("SOGoMailingMechanism", "smtp".into()),
            ("SOGoMailDomain", options.mail_domain.clone()),
            ("SOGoSieveServer", "sieve://127.0.0.1:1".into()),
            ("SOGoMemcachedHost", "127.0.0.1:1".into()),
            ("SOGoTimeZone", "UTC".into()),
            ("SOGoLanguage", "English".into()),
            ("SOGoSieveScriptsEnabled", "NO".into()),
            ("SOGoVacationEnabled", "NO".into()),
            ("SOGoForwardEnabled", "NO".into()),
            ("SOGoEnableEMailAlarms", "NO".into()),
            (
                "SOGoUserSources",
                format!(
                    "({{type = sql; id = users; canAuthenticate = YES; isAddressBook = NO; \
                     userPasswordAlgorithm = plain; viewURL = \"{db}/sogo_users\";}})"
                ),
            ),
            ("SOGoDebugRequests", "YES".into()),
            ("ImapDebugEnabled", "YES".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (key, value) in &options.defaults {
            match defaults.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value.clone(),
                None => defaults.push((key.clone(), value.clone())),
            }
        }
        defaults.into_iter().flat_map(|(k, v)| [format!("-{k}"), v]).collect()
    }

    /// The HTTP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>` (for `proxy_pass`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The temporary folder (logs, pid file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file's path.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("sogo.log")
    }

    /// sogod's log so far (requests with `SOGoDebugRequests`, IMAP traffic with `ImapDebugEnabled`).
    pub fn log(&self) -> String {
        self.read("sogo.log")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The instance's database, reached with the admin account (a sea-orm / sqlx URL).
    pub fn database_url(&self) -> &str {
        &self.db.as_ref().expect("database").admin_db_url
    }

    /// Adds a user to the SQL user source: login, `c_name` and `mail` are `address`, `c_cn` is `display_name`.
    /// The password is a placeholder, never checked with proxy authentication.
    pub fn add_user(&self, address: &str, display_name: &str) {
        let url = self.database_url().to_string();
        let (address, display_name) = (address.to_string(), display_name.to_string());
        block_on(async move {
            let conn = Database::connect(url.as_str()).await.expect("connect to the SOGo database");
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO sogo_users (c_uid, c_name, c_password, c_cn, mail) VALUES ($1, $1, '-', $2, $1)",
                [address.into(), display_name.into()],
            ))
            .await
            .expect("add a SOGo user");
            let _ = conn.close().await;
        });
    }

    /// Stops sogod and its worker (SIGKILL, immediate), waits until the port is closed, then drops the
    /// database and role. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::stop_child(&mut child, None, Duration::ZERO);
            if !wait_for_port_closed(self.port, Duration::from_secs(30)) {
                eprintln!("sogod's port {} is still open after 30 s", self.port);
            }
        }
        if let Some(db) = self.db.take() {
            block_on(drop_database(&db));
        }
    }
}

impl Drop for Sogo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates a role and a database it owns, with the `sogo_users` table.
async fn create_database(admin_url: &str) -> Result<SogoDatabase, String> {
    let name = format!("gh_sogo_{:016x}", rand::random::<u64>());
    let password = format!("{:016x}", rand::random::<u64>());
    let parsed = url::Url::parse(admin_url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().ok_or("the URL has no host")?.to_string();
    let port = parsed.port().unwrap_or(5432);
    // A server that is not there should skip the test quickly, not after the pool's 30 s.
    let mut options = ConnectOptions::new(admin_url);
    options.connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(5));
    let admin = Database::connect(options).await.map_err(|e| e.to_string())?;
    admin
        .execute_unprepared(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
        .await
        .map_err(|e| e.to_string())?;
    admin.execute_unprepared(&format!("CREATE DATABASE {name} OWNER {name}")).await.map_err(|e| e.to_string())?;
    let _ = admin.close().await;
    let admin_db_url = replace_database(admin_url, &name);
    let db = Database::connect(admin_db_url.as_str()).await.map_err(|e| e.to_string())?;
    db.execute_unprepared(&format!(
        "CREATE TABLE sogo_users (c_uid varchar(128) PRIMARY KEY, c_name varchar(128) NOT NULL, \
         c_password varchar(256) NOT NULL, c_cn varchar(128), mail varchar(128)); \
         ALTER TABLE sogo_users OWNER TO {name}"
    ))
    .await
    .map_err(|e| e.to_string())?;
    let _ = db.close().await;
    let sogo_url = format!("postgresql://{name}:{password}@{host}:{port}/{name}");
    Ok(SogoDatabase { admin_url: admin_url.to_string(), name, admin_db_url, sogo_url })
}

/// Drops the database (forcing sessions off) and the role.
async fn drop_database(db: &SogoDatabase) {
    let Ok(admin) = Database::connect(db.admin_url.as_str()).await else { return };
    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name)).await;
    let _ = admin.execute_unprepared(&format!("DROP ROLE IF EXISTS {}", db.name)).await;
    let _ = admin.close().await;
}
