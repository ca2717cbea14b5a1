//! Real Postfix 3.7 configured with what `gatehouse config postfix` prints, driven with swaks: SMTP AUTH PLAIN and
//! LOGIN through Gatehouse's auth-protocol listener directly, and through Dovecot's auth service; 235 for good
//! credentials, 535 for bad ones, no AUTH before STARTTLS, relaying only when authenticated; "temporary failure"
//! (454) while Gatehouse is down. And what the command says when the listener is not configured.

mod support;

use support::{Server, cli, cli_ok};

#[test]
fn postfix_smtp_auth_through_gatehouse_directly_and_through_dovecot() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "pw");
    cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    cli_ok(
        dir.path(),
        db,
        &["mailbox", "add", "alice@example.org", "--password-stdin", "--protocols", "imap,smtp"],
        "alicepw\n",
    );
    cli_ok(
        dir.path(),
        db,
        &["mailbox", "add", "bob@example.org", "--password-stdin", "--protocols", "imap"],
        "bobpw\n",
    );
    let sasl = gatehouse_testkit::free_port();
    let server =
        Server::start_with_env(dir.path(), db, Some("pw"), &[("GATEHOUSE_LISTEN__SASL", &format!("127.0.0.1:{sasl}"))]);
    let Some(dovecot) = support::start_dovecot(dir.path(), db, server.internal) else { return };
    let Some(postfix) = support::start_postfix(dir.path(), db, sasl, dovecot.auth) else { return };
    let auth_with = |tls: bool, port: u16, mechanism: &str, user: &str, password: &str| {
        let args = ["--auth", mechanism, "--auth-user", user, "--auth-password", password, "--quit-after", "AUTH"];
        if tls { postfix.swaks(port, &args) } else { postfix.swaks_without_tls(port, &args) }
    };
    let auth =
        |port: u16, mechanism: &str, user: &str, password: &str| auth_with(true, port, mechanism, user, password);

    for port in [postfix.direct, postfix.via_dovecot] {
        let plain = auth(port, "PLAIN", "alice@example.org", "alicepw");
        assert!(plain.has("235"), "PLAIN on {port}:\n{}\n{}", plain.transcript, postfix.log());
        assert!(auth(port, "LOGIN", "alice@example.org", "alicepw").has("235"));
        assert!(auth(port, "PLAIN", "alice@example.org", "wrong").has("535"));
        assert!(auth(port, "LOGIN", "nobody@example.org", "x").has("535"));
        assert!(auth(port, "PLAIN", "bob@example.org", "bobpw").has("535"), "bob may not use SMTP");
        let in_clear = auth_with(false, port, "PLAIN", "alice@example.org", "alicepw");
        assert!(
            !in_clear.has("235") && !in_clear.transcript.contains("AUTH PLAIN"),
            "no AUTH before STARTTLS: {}",
            in_clear.transcript
        );

        let relayed = postfix.swaks(
            port,
            &[
                "--auth",
                "PLAIN",
                "--auth-user",
                "alice@example.org",
                "--auth-password",
                "alicepw",
                "--from",
                "alice@example.org",
                "--to",
                "someone@elsewhere.example",
            ],
        );
        assert!(relayed.has("250 2.0.0 Ok: queued"), "{}", relayed.transcript);
        let refused = postfix.swaks(port, &["--from", "x@elsewhere.example", "--to", "someone@elsewhere.example"]);
        assert!(refused.has("554"), "relaying without authentication: {}", refused.transcript);
    }

    // Gatehouse down: Postfix answers "temporary failure" on the direct path, never "wrong password".
    let (status, _) = server.terminate();
    assert!(status.success());
    let during_outage = auth(postfix.direct, "PLAIN", "alice@example.org", "alicepw");
    assert!(during_outage.has("454"), "{}", during_outage.transcript);
}

#[test]
fn postfix_lines_name_the_listener_or_say_how_to_configure_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "pw");
    let (code, _, stderr) = cli(dir.path(), db, &["config", "postfix"], "");
    assert_ne!(code, 0);
    assert!(stderr.contains("listen.sasl") && stderr.contains("--via dovecot"), "{stderr}");

    let via_dovecot = cli_ok(dir.path(), db, &["config", "postfix", "--via", "dovecot"], "");
    assert!(via_dovecot.contains("smtpd_sasl_path = private/auth\n"), "{via_dovecot}");
    assert!(via_dovecot.contains("unix_listener /var/spool/postfix/private/auth"), "{via_dovecot}");
    let (code, _, stderr) =
        cli(dir.path(), db, &["config", "postfix", "--via", "dovecot", "--dovecot-auth", "a b"], "");
    assert!(code != 0 && stderr.contains("not a socket path"), "{stderr}");
}
