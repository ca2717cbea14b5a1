//! One rule set whatever the entry point: the same invalid input, sent through the command line, the REST API and
//! the admin web form, is refused with the same words by each, and nothing is written.

mod support;

use support::http::{Client, request};
use support::{Server, cli, cli_ok};

/// The page's notice.
fn notice(body: &str) -> String {
    body.split("id=\"notice\">").nth(1).and_then(|rest| rest.split('<').next()).unwrap_or("").to_string()
}

#[test]
fn free_text_is_refused_alike_by_the_cli_the_api_and_the_web() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let token = cli_ok(dir.path(), db, &["api-key", "add", "provisioning", "--read-write"], "").trim().to_string();
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let mut admin = Client::default();
    assert_eq!(admin.login(server.public, "/admin", "admin", "admin-pw").status, 303);
    let csrf = admin.get(server.public, "/admin/domains").form_value("csrf").unwrap();
    let long = "x".repeat(10 * 1024);

    for (description, expected) in [
        ("two\nlines", "the description contains a control character (\\n); only printable text is allowed"),
        ("nul\0byte", "the description contains a control character (\\u{0}); only printable text is allowed"),
        (long.as_str(), "the description is 10240 characters long; at most 255 are allowed"),
    ] {
        // The command line (a NUL cannot be an argument at all).
        if !description.contains('\0') {
            let args = ["domain", "add", "bad.example", "--description", description];
            let (code, _, stderr) = cli(dir.path(), db, &args, "");
            assert_eq!(code, 1, "{stderr}");
            assert_eq!(stderr.trim_end(), format!("gatehouse: error: {expected}"));
        }

        // The REST API.
        let body = serde_json::json!({ "name": "bad.example", "description": description }).to_string();
        let auth = format!("Bearer {token}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let answer = request(server.public, "POST", "/api/v1/domains", &headers, &body);
        assert_eq!(answer.status, 400, "{}", answer.body);
        let detail: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(detail["detail"], expected, "{}", answer.body);

        // The admin page.
        let posted = admin.post(
            server.public,
            "/admin/domains",
            &[("csrf", &csrf), ("name", "bad.example"), ("description", description), ("active", "on")],
        );
        assert_eq!(posted.status, 303, "{}", posted.body);
        let page = admin.get(server.public, posted.header("location").unwrap());
        assert_eq!(notice(&page.body), format!("Not saved: {expected}").replace('&', "&amp;"), "{}", page.body);
    }
    let domains = cli_ok(dir.path(), db, &["domain", "list", "--json"], "");
    assert!(!domains.contains("bad.example"), "nothing was written: {domains}");
}

#[test]
fn passwords_and_app_password_protocols_are_refused_alike_by_the_cli_the_api_and_the_web() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw-long");
    cli_ok(dir.path(), db, &["domain", "add", "example.org"], "");
    let token = cli_ok(dir.path(), db, &["api-key", "add", "provisioning", "--read-write"], "").trim().to_string();
    let server = Server::start(dir.path(), db, Some("admin-pw-long"));
    let auth = format!("Bearer {token}");
    let json_headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let mut admin = Client::default();
    assert_eq!(admin.login(server.public, "/admin", "admin", "admin-pw-long").status, 303);
    let csrf = admin.get(server.public, "/admin/mailboxes").form_value("csrf").unwrap();
    let expected = "the password needs at least 8 characters";

    let (code, _, stderr) =
        support::cli_as_configured(dir.path(), db, &["mailbox", "add", "a@example.org", "--password-stdin"], "short\n");
    assert_eq!((code, stderr.trim_end()), (1, format!("gatehouse: error: {expected}").as_str()));
    let body = serde_json::json!({ "address": "a@example.org", "password": "short" }).to_string();
    let answer = request(server.public, "POST", "/api/v1/mailboxes", &json_headers, &body);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["detail"], expected);
    let posted = admin.post(
        server.public,
        "/admin/mailboxes",
        &[
            ("csrf", &csrf),
            ("local_part", "a"),
            ("domain", "example.org"),
            ("active", "on"),
            ("password", "short"),
            ("repeat", "short"),
        ],
    );
    let page = admin.get(server.public, posted.header("location").unwrap_or("/admin/mailboxes"));
    assert!(notice(&page.body).contains("The password needs at least 8 characters."), "{}", page.body);
    assert!(
        !cli_ok(dir.path(), db, &["mailbox", "list", "--json"], "").contains("a@example.org"),
        "nothing was written"
    );

    // App passwords never open webmail, whoever asks.
    cli_ok(dir.path(), db, &["mailbox", "add", "b@example.org", "--password-stdin"], "long-enough-pw\n");
    let expected = "an app password cannot open webmail (sogo): webmail opens from the web session";
    let (code, _, stderr) =
        cli(dir.path(), db, &["app-password", "add", "b@example.org", "--name", "x", "--protocols", "imap,sogo"], "");
    assert_eq!((code, stderr.trim_end()), (1, format!("gatehouse: error: {expected}").as_str()));
    let body = serde_json::json!({ "name": "x", "protocols": ["imap", "sogo"] }).to_string();
    let answer = request(server.public, "POST", "/api/v1/mailboxes/b@example.org/app-passwords", &json_headers, &body);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["detail"], expected);
    let mut bob = Client::default();
    assert_eq!(bob.login(server.public, "/", "b@example.org", "long-enough-pw").status, 303);
    let csrf = bob.get(server.public, "/").form_value("csrf").unwrap();
    let created = bob.send(
        server.public,
        "POST",
        "/app-passwords",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("csrf={csrf}&name=x&protocol=imap&protocol=sogo&expires="),
    );
    assert!(created.body.contains(expected), "{}", created.body);
    assert!(cli_ok(dir.path(), db, &["app-password", "list", "b@example.org", "--json"], "").trim() == "[]");
}
