//! What real Dovecot 2.3 gets from Gatehouse beyond a yes or no, each rule its own test: the mailbox's quota
//! and state through the userdb (quota refused over the limit, `doveadm -A`, no delivery to inactive
//! mailboxes), master logins bound to the target's protocols, passwords as bytes (Latin-1), the banned
//! client's message, Unicode domains, and the second master pass that is never taken on trust.

mod support;

use gatehouse_testkit::dovecot::Dovecot;
use support::mail::{imap_append, imap_login, imap_login_bytes, imap_login_from, pop3_login, sieve_plain};
use support::{Server, cli, cli_bytes, cli_ok};

/// A server and Dovecot on a fresh SQLite database with example.org, after `setup` ran the CLI.
fn start(
    env: &[(&str, &str)],
    setup: impl Fn(&dyn Fn(&[&str], &str) -> String),
) -> Option<(tempfile::TempDir, Server, Dovecot)> {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    setup(&run);
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), env);
    let dovecot = support::start_dovecot(dir.path(), db, server.internal)?;
    Some((dir, server, dovecot))
}

#[test]
fn quotas_and_mailbox_state_reach_dovecot_through_its_userdb() {
    let Some((dir, _server, dovecot)) = start(&[], |run| {
        run(&["mailbox", "add", "alice@example.org", "--password-stdin", "--quota-mib", "1"], "alicepw\n");
        run(&["mailbox", "add", "bob@example.org", "--password-stdin", "--quota-mib", "0"], "bobpw\n");
        run(&["mailbox", "add", "carol@example.org", "--password-stdin"], "carolpw\n");
        run(&["mailbox", "edit", "carol@example.org", "--active", "false"], "");
    }) else {
        return;
    };
    let db = "sqlite://./data/gatehouse.db";
    let log = || dovecot.log();

    // doveadm sees the quota rule and the mail owner.
    let user = dovecot.doveadm(&["user", "alice@example.org"]);
    let shown = String::from_utf8_lossy(&user.stdout);
    assert!(user.status.success(), "{shown}{}", String::from_utf8_lossy(&user.stderr));
    assert!(shown.contains("quota_rule") && shown.contains("*:storage=1M"), "{shown}");
    let vmail =
        String::from_utf8(std::process::Command::new("id").args(["-u", "vmail"]).output().unwrap().stdout).unwrap();
    assert!(shown.lines().any(|l| l.split_whitespace().eq(["uid", vmail.trim()])), "the mail owner is vmail: {shown}");

    // The quota plugin refuses what does not fit; an unlimited mailbox takes it.
    let small = imap_append(dovecot.imap, "alice@example.org", "alicepw", 10_000);
    assert!(small.starts_with("b OK"), "{small}\n{}", log());
    let big = imap_append(dovecot.imap, "alice@example.org", "alicepw", 2 * 1024 * 1024);
    assert!(big.starts_with("b NO") && big.contains("OVERQUOTA"), "{big}\n{}", log());
    let unlimited = imap_append(dovecot.imap, "bob@example.org", "bobpw", 2 * 1024 * 1024);
    assert!(unlimited.starts_with("b OK"), "{unlimited}\n{}", log());

    // doveadm -A walks every active mailbox, and only those.
    let all = dovecot.doveadm(&["-f", "flow", "quota", "get", "-A"]);
    let listed = String::from_utf8_lossy(&all.stdout);
    assert!(all.status.success(), "{listed}{}", String::from_utf8_lossy(&all.stderr));
    assert!(listed.contains("alice@example.org") && listed.contains("bob@example.org"), "{listed}");
    assert!(!listed.contains("carol@example.org"), "an inactive mailbox is not listed: {listed}");

    // Delivery: the active mailbox takes mail, the inactive one is unknown (EX_NOUSER), and so is its domain's
    // mailbox once the domain is off.
    let message = "From: sender@example.net\r\nTo: alice@example.org\r\nSubject: hello\r\n\r\nhello\r\n";
    assert!(dovecot.deliver("alice@example.org", message).success(), "{}", log());
    assert_eq!(dovecot.deliver("carol@example.org", message).code(), Some(67), "{}", log());
    cli_ok(dir.path(), db, &["domain", "edit", "example.org", "--active", "false"], "");
    let flushed = dovecot.doveadm(&["auth", "cache", "flush"]);
    assert!(flushed.status.success());
    assert_eq!(dovecot.deliver("bob@example.org", message).code(), Some(67), "{}", log());
}

#[test]
fn master_logins_are_refused_for_the_targets_disabled_protocols() {
    let Some((dir, _server, dovecot)) = start(&[], |run| {
        run(&["mailbox", "add", "alice@example.org", "--password-stdin", "--protocols", "imap,smtp"], "alicepw\n");
        run(&["master-user", "add", "spam", "--scope", "global", "--password-stdin"], "spampw\n");
    }) else {
        return;
    };
    let db = "sqlite://./data/gatehouse.db";
    assert!(imap_login(dovecot.imap, "alice@example.org*spam", "spampw").ok(), "{}", dovecot.log());
    assert!(!pop3_login(dovecot.pop3, "alice@example.org*spam", "spampw").ok(), "POP3 is off for alice");
    assert!(!sieve_plain(dovecot.sieve, "alice@example.org*spam", "spampw").ok(), "ManageSieve is off for alice");
    // The same decision from the command line.
    let (code, out, _) =
        cli(dir.path(), db, &["auth", "test", "alice@example.org*spam", "--service", "pop3"], "spampw\n");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("pop3 is disabled for this mailbox"), "{out}");
}

#[test]
fn passwords_are_bytes_from_the_imap_client_to_the_hash() {
    let latin1 = b"caf\xe9-cr\xe8me";
    let Some((dir, server, dovecot)) = start(&[], |_| {}) else { return };
    let db = "sqlite://./data/gatehouse.db";
    let mut stdin = latin1.to_vec();
    stdin.push(b'\n');
    let (code, _, stderr) =
        cli_bytes(dir.path(), db, &["mailbox", "add", "old@example.org", "--password-stdin"], &stdin);
    assert_eq!(code, 0, "{stderr}");
    assert!(imap_login_bytes(dovecot.imap, "old@example.org", latin1).ok(), "{}", dovecot.log());
    let wrong = imap_login_bytes(dovecot.imap, "old@example.org", b"caf\xe9-cr\xe8mf");
    assert!(!wrong.ok());
    assert!(!wrong.line().contains("UNAVAILABLE"), "a wrong Latin-1 password is a wrong password: {wrong:?}");
    // Both were decided (and the wrong one counted), none was a temporary failure.
    support::eventually("both Latin-1 logins are in the auth log", || {
        let logged = cli_ok(dir.path(), db, &["log", "auth", "--json", "--subject", "old@example.org"], "");
        logged.matches("\"success\"").count() >= 1 && logged.contains("wrong password") && !logged.contains("temp")
    });
    drop(server);
}

#[test]
fn a_banned_client_is_told_why() {
    // The test's clients come from 127.1.x.y: trust no network, so they can be banned.
    let env = [
        ("GATEHOUSE_GUARD__TRUSTED_NETWORKS", ""),
        ("GATEHOUSE_GUARD__MAX_DELAY_MS", "0"),
        ("GATEHOUSE_GUARD__BAN_AFTER", "3"),
    ];
    let Some((_dir, _server, dovecot)) = start(&env, |run| {
        run(&["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    }) else {
        return;
    };
    let attacker = std::net::Ipv4Addr::new(127, 3, 0, 9);
    for _ in 0..3 {
        assert!(!imap_login_from(dovecot.imap, attacker, "alice@example.org", "guess").ok());
    }
    let refused = imap_login_from(dovecot.imap, attacker, "alice@example.org", "alicepw");
    assert!(!refused.ok(), "{}", dovecot.log());
    assert!(refused.line().contains("Too many failed logins"), "the client hears why: {refused:?}\n{}", dovecot.log());
    let elsewhere =
        imap_login_from(dovecot.imap, std::net::Ipv4Addr::new(127, 3, 0, 10), "alice@example.org", "alicepw");
    assert!(elsewhere.ok(), "another address is not banned: {elsewhere:?}");
}

#[test]
fn unicode_domains_log_in_as_their_ascii_mailbox() {
    let Some((_dir, _server, dovecot)) = start(&[], |run| {
        run(&["domain", "add", "bücher.test"], "");
        run(&["mailbox", "add", "leser@bücher.test", "--password-stdin"], "leserpw\n");
    }) else {
        return;
    };
    // Dovecot lowercases ASCII only; Gatehouse turns the domain into its stored form and names the mailbox.
    let login = imap_login(dovecot.imap, "leser@bücher.test", "leserpw");
    assert!(login.ok(), "{login:?}\n{}", dovecot.log());
    assert!(dovecot.log().contains("user=<leser@xn--bcher-kva.test>"), "{}", dovecot.log());
}

#[test]
fn the_second_master_pass_is_not_a_password_oracle() {
    let Some((_dir, server, _dovecot)) = start(&[], |run| {
        run(&["mailbox", "add", "alice@example.org", "--password-stdin", "--protocols", "imap"], "alicepw\n");
        run(&["master-user", "add", "master@example.org", "--scope", "domain", "--password-stdin"], "masterpw\n");
    }) else {
        return;
    };
    let ask = |body: &str| server.post_internal("/dovecot/auth", body).unwrap();
    // Without the shared secret, even from loopback, nothing.
    let open = support::post_json(
        server.internal,
        "/dovecot/auth",
        r#"{"user":"alice@example.org","password":"alicepw","service":"imap"}"#,
    );
    assert_eq!(open.unwrap().0, 401, "the internal endpoints need their secret by default");
    // skip_password_check alone is refused; with a master user, that master login is decided again.
    let (status, _) = ask(r#"{"user":"alice@example.org","password":"x","service":"imap","skip_password_check":true}"#);
    assert_eq!(status, 400);
    let (status, _) = ask(
        r#"{"user":"alice@example.org","password":"x","service":"imap","skip_password_check":true,"master_user":"master@example.org"}"#,
    );
    assert_eq!(status, 401, "a wrong master password");
    let (status, _) = ask(
        r#"{"user":"alice@example.org","password":"masterpw","service":"web","skip_password_check":true,"master_user":"master@example.org"}"#,
    );
    assert_eq!(status, 403, "the web UI is not Dovecot's to ask for");
    let (status, body) = ask(
        r#"{"user":"alice@example.org","password":"masterpw","service":"imap","skip_password_check":true,"master_user":"master@example.org"}"#,
    );
    assert_eq!(status, 200, "{body}");
    // service web is refused here, even with the right password.
    let (status, _) = ask(r#"{"user":"alice@example.org","password":"alicepw","service":"web"}"#);
    assert_eq!(status, 403);
}

#[test]
fn during_a_database_outage_recently_verified_logins_still_work_and_revocations_hold() {
    let Some(postgres) = gatehouse_testkit::postgres::PrivatePostgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = postgres.url();
    let db = db.as_str();
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "alice@example.org", "--password-stdin", "--protocols", "imap"], "alicepw\n");
    run(&["mailbox", "add", "bob@example.org", "--password-stdin", "--protocols", "imap"], "bobpw\n");
    run(&["mailbox", "add", "carol@example.org", "--password-stdin", "--protocols", "imap"], "carolpw\n");
    let token = run(&["app-password", "add", "alice@example.org", "--name", "laptop", "--protocols", "imap"], "");
    let token = token.trim().to_string();
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let Some(dovecot) = support::start_dovecot(dir.path(), db, server.internal) else { return };
    // Each login from its own address (Dovecot's penalty for failures per address would slow the test down).
    let login = |user: &str, password: &str| imap_login(dovecot.imap, user, password);
    let flush = || assert!(dovecot.doveadm(&["auth", "cache", "flush"]).status.success());

    for (user, password) in
        [("alice@example.org", "alicepw"), ("alice@example.org", token.as_str()), ("bob@example.org", "bobpw")]
    {
        assert!(login(user, password).ok(), "{user}: {}", dovecot.log());
    }
    // Changes made before the outage, by another process (the CLI), seen by a login before it.
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["app-password", "list", "alice@example.org", "--json"], "")).unwrap();
    let id = listed[0]["id"].to_string();
    run(&["app-password", "revoke", "alice@example.org", &id], "");
    run(&["mailbox", "edit", "bob@example.org", "--active", "false"], "");
    server.caught_up();
    flush();
    assert!(!login("alice@example.org", &token).ok(), "revoked");
    assert!(!login("bob@example.org", "bobpw").ok(), "deactivated");

    // PostgreSQL goes away. Dovecot's own cache is emptied, so Gatehouse is asked each time.
    postgres.stop();
    flush();
    let alice = login("alice@example.org", "alicepw");
    assert!(alice.ok(), "a login verified a moment ago still works: {alice:?}\n{}", dovecot.log());
    for (user, password, what) in [
        ("alice@example.org", token.as_str(), "the revoked app password"),
        ("bob@example.org", "bobpw", "the deactivated mailbox"),
        ("carol@example.org", "carolpw", "a login not verified before the outage"),
    ] {
        let refused = login(user, password);
        assert!(!refused.ok(), "{what} is not let in during the outage");
        assert!(
            refused.line().contains("UNAVAILABLE"),
            "{what}: a temporary failure, never a wrong password: {refused:?}"
        );
    }

    // PostgreSQL returns: everything is decided by the database again.
    postgres.start_again();
    flush();
    let carol = (0..50).find_map(|_| {
        let attempt = login("carol@example.org", "carolpw");
        if attempt.ok() {
            Some(attempt)
        } else {
            std::thread::sleep(std::time::Duration::from_millis(200));
            None
        }
    });
    assert!(carol.is_some(), "logins work again once the database is back\n{}", dovecot.log());
    assert!(!login("alice@example.org", &token).ok());
}
