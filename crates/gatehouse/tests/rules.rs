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
