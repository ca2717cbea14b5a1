//! The web UI over HTTP, like a browser without JavaScript: separate logins per role, CSRF on every form,
//! no session fixation, logout that really ends the session, app passwords shown once, fixed redirects, the
//! guard on web logins, and no secret in any page.

mod support;

use support::http::{Client, request};
use support::{Server, cli_ok};

#[test]
fn logins_sessions_forms_and_app_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    run(&["domain-admin", "add", "helper", "--domains", "example.org", "--password-stdin"], "helperpw\n");
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("GATEHOUSE_GUARD__MAX_DELAY_MS", "0")]);
    let port = server.public;

    // Each role logs in only at its own page, and failures say nothing more than "login failed".
    let mut wrong = Client::default();
    let failed = wrong.login(port, "/", "alice@example.org", "nope");
    assert_eq!(failed.status, 401);
    assert!(failed.body.contains("Login failed.") && !failed.body.contains("wrong password"), "{}", failed.body);
    assert_eq!(Client::default().login(port, "/admin", "helper", "helperpw").status, 401);
    assert_eq!(Client::default().login(port, "/domainadmin", "admin", "admin-pw").status, 401);
    assert_eq!(Client::default().login(port, "/", "alice@example.org*admin", "admin-pw").status, 401);
    assert_eq!(Client::default().login(port, "/domainadmin", "helper", "helperpw").status, 303);

    // A login form posted without its token (or from another site) is refused.
    let mut forged = Client::default();
    let no_token = forged.post(port, "/", &[("username", "alice@example.org"), ("password", "alicepw")]);
    assert_eq!(no_token.status, 403);
    let cross_site = forged.send(
        port,
        "POST",
        "/",
        &[("Sec-Fetch-Site", "cross-site"), ("Content-Type", "application/x-www-form-urlencoded")],
        "username=alice%40example.org&password=alicepw&csrf=x",
    );
    assert_eq!(cross_site.status, 403);

    // Session fixation: a session cookie planted before the login is not the one after it.
    let mut alice = Client::default();
    alice.cookies.insert("gatehouse_session".into(), "planted-by-an-attacker".into());
    let login = alice.login(port, "/", "alice@example.org", "alicepw");
    assert_eq!((login.status, login.header("location")), (303, Some("/")));
    let cookie = login.headers.iter().find(|(n, v)| n == "set-cookie" && v.starts_with("gatehouse_session="));
    let cookie = &cookie.expect("a session cookie").1;
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let session = alice.cookies["gatehouse_session"].clone();
    assert_ne!(session, "planted-by-an-attacker");
    let home = alice.get(port, "/");
    assert_eq!(home.status, 200);
    assert!(home.body.contains("alice@example.org") && home.body.contains("App passwords"));
    assert_eq!(home.header("x-frame-options"), Some("DENY"));
    assert!(home.header("content-security-policy").is_some_and(|v| v.contains("frame-ancestors 'none'")));
    let csrf = home.form_value("csrf").unwrap();

    // App passwords: a form without the session's token is refused; with it, the secret is shown once.
    let forged = alice.post(port, "/app-passwords", &[("csrf", "wrong"), ("name", "phone"), ("protocol", "imap")]);
    assert_eq!(forged.status, 403);
    let created = alice.send(
        port,
        "POST",
        "/app-passwords",
        &[],
        &format!("csrf={csrf}&name=phone&protocol=imap&protocol=smtp&expires="),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let token = created.body.split("id=\"new-token\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(token.starts_with("gh_"), "{token}");
    let later = alice.get(port, "/");
    assert!(later.body.contains("phone") && later.body.contains("imap,smtp") && !later.body.contains(&token));
    let listed = run(&["app-password", "list", "alice@example.org", "--json"], "");
    let id = serde_json::from_str::<serde_json::Value>(&listed).unwrap()[0]["id"].as_i64().unwrap();
    let revoked = alice.post(port, &format!("/app-passwords/{id}/revoke"), &[("csrf", &csrf)]);
    assert_eq!(revoked.status, 303);
    assert!(alice.get(port, "/").body.contains("revoked"));

    // /sogo-auth takes no redirect target from the request, and administrators cannot use it while
    // ALLOW_ADMIN_EMAIL_LOGIN is off.
    let odd = alice.get(port, "/sogo-auth?login=alice%40example.org&rd=https://evil.example/");
    assert_eq!(odd.header("location"), Some("/SOGo/so/"));
    let mut admin = Client::default();
    assert_eq!(admin.login(port, "/admin", "admin", "admin-pw").status, 303);
    let page = admin.get(port, "/admin");
    assert!(page.body.contains("alice@example.org") && !page.body.contains("Webmail as this user"));
    assert_eq!(admin.get(port, "/sogo-auth?login=alice%40example.org").header("location"), Some("/admin?m=forbidden"));

    // No page shows a password hash.
    let hash = run(&["mailbox", "list", "--json"], "");
    assert!(!hash.contains("$2y$"), "the CLI list shows no hash either");
    for body in [&home.body, &page.body] {
        assert!(!body.contains("$2y$") && !body.contains("{BLF-CRYPT}"));
    }

    // Logout: the old cookie opens nothing any more.
    let out = alice.post(port, "/logout", &[("csrf", &csrf)]);
    assert_eq!((out.status, out.header("location")), (303, Some("/?m=ended")));
    let replay = request(port, "GET", "/", &[("Cookie", &format!("gatehouse_session={session}"))], "");
    assert!(replay.body.contains("id=\"login\""), "the copied cookie no longer works");

    // The guard counts web failures: a banned address gets 429.
    let mut attacker = Client::default();
    attacker.extra.push(("X-Real-IP".into(), "198.51.100.9".into()));
    let mut last = 0;
    for _ in 0..20 {
        last = attacker.login(port, "/", "alice@example.org", "guess").status;
    }
    assert_eq!(last, 429, "banned after repeated failures");
    let (status, _) = server.terminate();
    assert!(status.success());
}
