//! Real Dovecot 2.3, configured only with what `gatehouse config dovecot` prints, asking a real `gatehouse
//! serve`: IMAP, POP3 and ManageSieve logins, protocol flags, app-password scopes, master logins in both forms
//! with scopes (also after a cached success), revocation, and a Gatehouse outage.

mod support;

use support::mail::{imap_login, imap_login_from, imap_plain, pop3_login, sieve_plain};
use support::{Server, cli_ok};

#[test]
fn dovecot_logins_are_decided_by_gatehouse() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["domain", "add", "other.org"], "");
    run(
        &["mailbox", "add", "alice@example.org", "--password-stdin", "--protocols", "imap,pop3,sieve,smtp"],
        "alicepw\n",
    );
    run(&["mailbox", "add", "bob@example.org", "--password-stdin", "--protocols", "imap,smtp"], "bobpw\n");
    run(&["mailbox", "add", "carol@other.org", "--password-stdin"], "carolpw\n");
    run(&["master-user", "add", "master@example.org", "--scope", "domain", "--password-stdin"], "masterpw\n");
    let smtp_token = run(&["app-password", "add", "alice@example.org", "--name", "phone", "--protocols", "smtp"], "");
    let imap_token = run(&["app-password", "add", "alice@example.org", "--name", "laptop", "--protocols", "imap"], "");
    let (smtp_token, imap_token) = (smtp_token.trim().to_string(), imap_token.trim().to_string());

    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let Some(dovecot) = support::start_dovecot(dir.path(), db, server.internal) else { return };
    let log = || dovecot.log();

    // Plain logins over IMAP, POP3 and ManageSieve.
    assert!(imap_login(dovecot.imap, "alice@example.org", "alicepw").ok(), "{}", log());
    assert!(!imap_login(dovecot.imap, "alice@example.org", "wrong").ok());
    assert!(!imap_login(dovecot.imap, "nobody@example.org", "x").ok());
    assert!(imap_plain(dovecot.imap, "", "bob@example.org", "bobpw").ok(), "{}", log());
    assert!(pop3_login(dovecot.pop3, "alice@example.org", "alicepw").ok(), "{}", log());
    assert!(sieve_plain(dovecot.sieve, "alice@example.org", "alicepw").ok(), "{}", log());

    // Protocol flags: bob has no POP3; carol's password never reaches a hash for a disabled protocol.
    assert!(!pop3_login(dovecot.pop3, "bob@example.org", "bobpw").ok());

    // App passwords are scoped.
    assert!(!imap_login(dovecot.imap, "alice@example.org", &smtp_token).ok(), "smtp-only token refused on IMAP");
    assert!(imap_login(dovecot.imap, "alice@example.org", &imap_token).ok(), "{}", log());

    // Master logins, both forms; a domain-scoped master stays inside its domain, also right after a cached
    // success for a permitted target.
    assert!(imap_login(dovecot.imap, "alice@example.org*master@example.org", "masterpw").ok(), "{}", log());
    assert!(imap_plain(dovecot.imap, "bob@example.org", "master@example.org", "masterpw").ok(), "{}", log());
    assert!(!imap_login(dovecot.imap, "carol@other.org*master@example.org", "masterpw").ok());
    assert!(!imap_plain(dovecot.imap, "carol@other.org", "master@example.org", "masterpw").ok());
    assert!(!imap_login(dovecot.imap, "alice@example.org*master@example.org", "wrong").ok());
    support::eventually("master logins are audited", || {
        run(&["log", "audit", "--json", "--limit", "100"], "").contains("\"master_login\"")
    });

    // Revocation: Gatehouse refuses the token as soon as it has read the change (within a second); Dovecot does
    // once its cache entry is flushed.
    let id = run(&["app-password", "list", "alice@example.org", "--json"], "");
    let listed: serde_json::Value = serde_json::from_str(&id).unwrap();
    let laptop_id = listed.as_array().unwrap().iter().find(|p| p["name"] == "laptop").unwrap()["id"].to_string();
    run(&["app-password", "revoke", "alice@example.org", &laptop_id], "");
    server.caught_up();
    let body = format!("{{\"user\":\"alice@example.org\",\"password\":\"{imap_token}\",\"service\":\"imap\"}}");
    assert_eq!(server.post_internal("/dovecot/auth", &body).unwrap().0, 403);
    let flushed = dovecot.doveadm(&["auth", "cache", "flush"]);
    assert!(flushed.status.success(), "{}", String::from_utf8_lossy(&flushed.stderr));
    assert!(!imap_login(dovecot.imap, "alice@example.org", &imap_token).ok(), "a revoked token no longer works");

    // Gatehouse down: a new login is a temporary failure, never "wrong password"; a cached one (the same client
    // again: Dovecot's cache key has the client's address) still works.
    let client = std::net::Ipv4Addr::new(127, 2, 0, 1);
    assert!(imap_login_from(dovecot.imap, client, "alice@example.org", "alicepw").ok());
    let (status, _) = server.terminate();
    assert!(status.success());
    let refused = imap_login(dovecot.imap, "bob@example.org", "bobpw");
    assert!(!refused.ok());
    assert!(refused.line().contains("UNAVAILABLE"), "expected a temporary failure, got {refused:?}");
    assert!(
        imap_login_from(dovecot.imap, client, "alice@example.org", "alicepw").ok(),
        "cached login during the outage"
    );
}
