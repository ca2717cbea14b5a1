//! The brute-force guard through the real server: 20 wrong passwords from one address ban it (even the right
//! password is then refused), another address still works, loopback is never banned; Dovecot's policy
//! endpoint and `gatehouse guard` see the ban, and an operator can lift it.

mod support;

use support::{Server, cli, cli_ok};

fn login(server: &Server, password: &str, remote: &str) -> u16 {
    let body = format!(
        "{{\"user\":\"alice@example.org\",\"password\":\"{password}\",\"service\":\"imap\",\"remote_ip\":\"{remote}\"}}"
    );
    server.post_internal("/dovecot/auth", &body).expect("the server answers").0
}

#[test]
fn repeated_failures_ban_an_address_but_never_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "pw");
    cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    cli_ok(dir.path(), db, &["mailbox", "add", "alice@example.org", "--password-stdin"], "right\n");
    // Short delays keep the test quick; they still escalate.
    let server = Server::start_with_env(dir.path(), db, Some("pw"), &[("GATEHOUSE_GUARD__MAX_DELAY_MS", "40")]);
    let internal = format!("127.0.0.1:{}", server.internal);

    assert_eq!(login(&server, "right", "203.0.113.7"), 200);
    // The fifteenth failure bans the address; from then on the answer says so (429, with a message Dovecot
    // shows the client).
    for attempt in 1..=20 {
        assert_eq!(login(&server, "wrong", "203.0.113.7"), if attempt <= 15 { 401 } else { 429 }, "attempt {attempt}");
    }
    assert_eq!(login(&server, "right", "203.0.113.7"), 429, "a banned address is refused even with the password");
    assert_eq!(login(&server, "right", "198.51.100.7"), 200, "another address still works");
    for _ in 0..30 {
        assert_eq!(login(&server, "wrong", "127.0.0.1"), 401);
    }
    assert_eq!(login(&server, "right", "127.0.0.1"), 200, "loopback is never banned");

    // Dovecot's policy server answers from the same state.
    let allow = |remote: &str| {
        let body =
            format!("{{\"login\":\"alice@example.org\",\"remote\":\"{remote}\",\"protocol\":\"imap\",\"tls\":false}}");
        server.post_internal("/dovecot/policy?command=allow", &body).unwrap()
    };
    let (status, body) = allow("203.0.113.7");
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":-1"), "{body}");
    assert!(allow("198.51.100.7").1.contains("\"status\":0"));
    let report = server.post_internal(
        "/dovecot/policy?command=report",
        "{\"login\":\"a@example.org\",\"remote\":\"192.0.2.1\",\"success\":false,\"policy_reject\":false,\"tls\":false}",
    )
    .unwrap();
    assert_eq!(report.0, 200);

    // Operators see the ban and can lift it.
    let (code, _, stderr) = cli(dir.path(), db, &["guard", "list"], "");
    assert_ne!(code, 0, "without the server's address the CLI says so");
    assert!(stderr.contains("internal listener"), "{stderr}");
    let entries = cli_with_internal(&dir, db, &internal, &["guard", "list", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&entries).unwrap();
    let banned = entries.as_array().unwrap().iter().find(|e| e["key"] == "203.0.113.7").expect("the ban is listed");
    assert!(banned["banned_until"].is_number(), "{banned}");
    cli_with_internal(&dir, db, &internal, &["guard", "unban", "203.0.113.7"]);
    // An address that is not banned is not "lifted": the command says so and fails.
    let config = dir.path().join("cli.toml");
    let (code, _, stderr) =
        cli(dir.path(), db, &["--config", config.to_str().unwrap(), "guard", "unban", "192.0.2.200"], "");
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim_end(), "gatehouse: error: 192.0.2.200 is not banned");
    assert_eq!(login(&server, "right", "203.0.113.7"), 200, "the lifted ban no longer applies");

    support::eventually("refusals of banned addresses are logged", || {
        cli_ok(dir.path(), db, &["log", "auth", "--json", "--limit", "200"], "").contains("banned")
    });
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// Runs the CLI pointed at this server's internal listener.
fn cli_with_internal(dir: &tempfile::TempDir, db: &str, internal: &str, args: &[&str]) -> String {
    let config = dir.path().join("cli.toml");
    std::fs::write(&config, format!("[listen]\ninternal = \"{internal}\"\n")).unwrap();
    let mut full = vec!["--config", config.to_str().unwrap()];
    full.extend_from_slice(args);
    cli_ok(dir.path(), db, &full, "")
}
