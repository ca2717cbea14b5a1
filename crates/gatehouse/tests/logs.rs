//! What Gatehouse writes about itself: no colour codes into files and pipes, one JSON object per line with
//! `log_format = "json"`, and values from clients (a username with a newline) can never forge a line — in the
//! server's log or in `gatehouse log auth`.

mod support;

use support::{Server, cli_ok};

const FORGED: &str = "evil\n2026-12-03T00:00:00Z  INFO gatehouse: login allowed user=admin@example.org";

fn forge(server: &Server) {
    let body = serde_json::json!({ "user": FORGED, "password": "x", "service": "imap", "remote_ip": "192.0.2.9" });
    let (status, answer) = server.post_internal("/dovecot/auth", &body.to_string()).unwrap();
    assert_eq!(status, 401, "a malformed name is a bad request: {answer}");
}

#[test]
fn text_logs_escape_what_clients_send_and_carry_no_colours_into_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    forge(&server);
    support::eventually("the attempt is in the auth log", || {
        cli_ok(dir.path(), db, &["log", "auth", "--json"], "").contains("evil")
    });
    let listed = cli_ok(dir.path(), db, &["log", "auth"], "");
    assert!(listed.contains("evil\\n2026-12-03"), "escaped in the listing: {listed}");
    assert!(!listed.lines().any(|l| l.trim_start().starts_with("2026-12-03T00:00:00Z")), "{listed}");
    let (status, stderr) = server.terminate();
    assert!(status.success());
    assert!(!stderr.contains('\u{1b}'), "no colour codes when stderr is a pipe");
    assert!(stderr.contains("evil\\n2026-12-03"), "the value is written escaped: {stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("2026-12-03T00:00:00Z")), "no forged line: {stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("GATEHOUSE_LOG_FORMAT", "json")]);
    forge(&server);
    let (status, stderr) = server.terminate();
    assert!(status.success());
    let mut denied = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["level"].is_string() && event["fields"].is_object(), "{line}");
        if event["fields"]["message"] == "login denied" {
            assert_eq!(event["fields"]["user"], FORGED, "the value is kept exactly, as JSON text");
            denied += 1;
        }
    }
    assert_eq!(denied, 1, "{stderr}");
}
