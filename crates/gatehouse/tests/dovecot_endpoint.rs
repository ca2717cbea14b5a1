//! `POST /dovecot/auth` as a wire contract: who may call it, the two body formats (Gatehouse's Lua script
//! and mailcow's), and the status codes the Lua script maps.

mod support;

use support::{Server, cli_ok, post_json_with};

#[test]
fn callers_must_be_authorised_and_both_body_formats_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin");
    cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    cli_ok(dir.path(), db, &["mailbox", "add", "alice@example.org", "--password-stdin", "--protocols", "imap"], "pw\n");
    // No network is trusted: only the shared secret opens the endpoint.
    let server = Server::start_with_env(
        dir.path(),
        db,
        Some("admin"),
        &[("GATEHOUSE_DOVECOT__ALLOWED_NETWORKS", ""), ("GATEHOUSE_DOVECOT__SHARED_SECRET", "s3cret-value")],
    );
    let ours =
        r#"{"user":"alice@example.org","password":"pw","service":"imap","remote_ip":"192.0.2.4","secured":"TLS"}"#;
    let call = |body: &str, secret: Option<&str>| {
        let headers: Vec<(&str, &str)> = secret.map(|s| vec![("X-Gatehouse-Secret", s)]).unwrap_or_default();
        post_json_with(server.internal, "/dovecot/auth", body, &headers).unwrap()
    };
    let (status, body) = call(ours, None);
    assert_eq!((status, body.contains("caller not authorised")), (401, true), "{body}");
    assert_eq!(call(ours, Some("wrong-secret")).0, 401);
    let (status, body) = call(ours, Some("s3cret-value"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"success": true, "user": "alice@example.org"})
    );

    // mailcow's Lua script sends username / password / real_rip / service.
    let mailcow = r#"{"username":"alice@example.org","password":"pw","real_rip":"192.0.2.5","service":"imap"}"#;
    assert_eq!(call(mailcow, Some("s3cret-value")).0, 200);

    let status_of = |body: &str| call(body, Some("s3cret-value")).0;
    assert_eq!(status_of(r#"{"user":"alice@example.org","password":"bad","service":"imap"}"#), 401);
    assert_eq!(status_of(r#"{"user":"nobody@example.org","password":"pw","service":"imap"}"#), 404);
    assert_eq!(status_of(r#"{"user":"alice@example.org","password":"pw","service":"pop3"}"#), 403);
    assert_eq!(status_of(r#"{"user":"alice@example.org","password":"pw","service":"lmtp"}"#), 403);
    assert_eq!(status_of(r#"{"user":"#), 400);
    assert_eq!(status_of(r#"{"password":"pw","service":"imap"}"#), 400);
    let stats = support::get(server.internal, "/stats").unwrap();
    assert_eq!(stats.0, 401, "monitoring needs the secret too");
    let (status, stats) =
        support::get_with(server.internal, "/stats", &[("X-Gatehouse-Secret", "s3cret-value")]).unwrap();
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["hash_pool"]["completed"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["hash_pool"]["queue_wait_mean_ms"].is_number(), "{stats}");
    let (status, _) = server.terminate();
    assert!(status.success());
}
