//! Changes reach Dovecot's auth cache: with doveadm's HTTP API in real Dovecot's configuration (`gatehouse config
//! dovecot --part doveadm`) and `dovecot.doveadm_url` / `doveadm_api_key` set, an app password revoked and a
//! mailbox deactivated with the CLI are refused by IMAP within a second, although Dovecot had cached their
//! successes; without the API key's match, Gatehouse warns that it cannot flush.

mod support;

use std::time::{Duration, Instant};

use gatehouse_testkit::dovecot::Dovecot;
use gatehouse_testkit::free_port;
use support::mail::imap_login_from;
use support::{Server, cli_ok};

const DB: &str = "sqlite://./data/gatehouse.db";
const WITHIN: Duration = Duration::from_secs(1);

/// Logs in over IMAP, always from the same address for a user (Dovecot's cache key has the client's address),
/// and from another for each user (Dovecot slows down an address after a failure from it).
fn login(dovecot: &Dovecot, user: &str, password: &str) -> bool {
    let host = if user.starts_with("alice") { 1 } else { 2 };
    imap_login_from(dovecot.imap, std::net::Ipv4Addr::new(127, 3, 0, host), user, password).ok()
}

/// Tries the login until IMAP refuses it; how long that took.
fn refused_within(dovecot: &Dovecot, user: &str, password: &str) -> Duration {
    let since = Instant::now();
    while login(dovecot, user, password) {
        assert!(since.elapsed() < Duration::from_secs(10), "{user} was never refused: {}", dovecot.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    since.elapsed()
}

/// How many logins Gatehouse was asked about (Dovecot's cache hits never reach it).
fn asked(server: &Server) -> u64 {
    let (_, body) = server.get_internal("/stats", &[]).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    stats["auth_log"]["queued"].as_u64().unwrap()
}

#[test]
fn revocations_empty_dovecots_auth_cache() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), DB, args, stdin);
    let doveadm = free_port();
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        format!(
            "[dovecot]\ndoveadm_url = \"http://127.0.0.1:{doveadm}/doveadm/v1\"\n\
             doveadm_api_key = \"a-long-random-doveadm-key-for-the-test\"\n"
        ),
    )
    .unwrap();
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "alice@example.org", "--password-stdin", "--protocols", "imap"], "alicepw\n");
    run(&["mailbox", "add", "bob@example.org", "--password-stdin", "--protocols", "imap"], "bobpw\n");
    let token = run(&["app-password", "add", "alice@example.org", "--name", "phone", "--protocols", "imap"], "");
    let token = token.trim().to_string();
    let conf = run(&["config", "dovecot", "--part", "doveadm"], "");
    assert!(conf.contains(&format!("port = {doveadm}")) && conf.contains("auth cache flush"), "{conf}");

    let server = Server::start(dir.path(), DB, Some("admin-pw"));
    let internal = server.internal;
    let Some(dovecot) = Dovecot::start_with(|root| {
        let lua_path = root.join("gatehouse-passdb.lua");
        let url = format!("http://127.0.0.1:{internal}/dovecot/auth");
        std::fs::write(&lua_path, run(&["config", "dovecot", "--part", "lua", "--url", &url], "")).unwrap();
        let passdbs = run(&["config", "dovecot", "--part", "conf", "--lua-path", lua_path.to_str().unwrap()], "");
        format!("{passdbs}\n{conf}")
    }) else {
        return;
    };

    // Both logins succeed, and the second time Dovecot answers from its cache without asking Gatehouse.
    for (user, password) in [("alice@example.org", token.as_str()), ("bob@example.org", "bobpw")] {
        assert!(login(&dovecot, user, password), "{user}: {}", dovecot.log());
        let before = asked(&server);
        assert!(login(&dovecot, user, password));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(asked(&server), before, "{user}'s second login came from Dovecot's cache");
    }

    // Changes made with the CLI (another process) empty that cache: refused within a second.
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["app-password", "list", "alice@example.org", "--json"], "")).unwrap();
    run(&["app-password", "revoke", "alice@example.org", &listed[0]["id"].to_string()], "");
    let took = refused_within(&dovecot, "alice@example.org", &token);
    assert!(took <= WITHIN, "the revoked app password worked through Dovecot for {took:?}");
    run(&["mailbox", "edit", "bob@example.org", "--active", "false"], "");
    let took = refused_within(&dovecot, "bob@example.org", "bobpw");
    assert!(took <= WITHIN, "the deactivated mailbox logged in through Dovecot for {took:?}");

    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(!log.contains("cannot flush Dovecot's auth cache"), "{log}");
    assert!(!log.contains("a-long-random-doveadm-key"), "the key is never logged");
}

#[test]
fn a_doveadm_that_cannot_be_reached_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let nobody = free_port();
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        format!(
            "[dovecot]\ndoveadm_url = \"http://127.0.0.1:{nobody}/doveadm/v1\"\ndoveadm_api_key = \"secret-key-x\"\n"
        ),
    )
    .unwrap();
    cli_ok(dir.path(), DB, &["domain", "add", "example.org"], "");
    cli_ok(dir.path(), DB, &["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    let server = Server::start(dir.path(), DB, Some("admin-pw"));
    cli_ok(dir.path(), DB, &["mailbox", "edit", "alice@example.org", "--active", "false"], "");
    server.caught_up();
    std::thread::sleep(Duration::from_millis(500));
    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(log.contains("cannot flush Dovecot's auth cache") && log.contains("cannot be reached"), "{log}");
    assert!(!log.contains("secret-key-x"), "the key is never logged: {log}");

    // A URL without a key is a configuration error at start.
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        format!("[dovecot]\ndoveadm_url = \"http://127.0.0.1:{nobody}/\"\n"),
    )
    .unwrap();
    let (code, _, stderr) =
        support::cli(dir.path(), DB, &["serve", "--public", "127.0.0.1:0", "--internal", "127.0.0.1:0"], "");
    assert!(code == 78 && stderr.contains("doveadm_api_key"), "{code}: {stderr}");
}
