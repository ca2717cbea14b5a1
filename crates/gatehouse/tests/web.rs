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
    support::init(dir.path(), db, "admin-pw");
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
    // Refusals are pages that say what happened and lead back, not blank 403s.
    assert!(cross_site.body.contains("came from another site") && cross_site.body.contains(r#"id="back""#));

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
    assert!(forged.body.contains("nothing was changed") && forged.body.contains(r#"href="/" id="back""#));
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

    // A second browser: listed on the page, and ended from the first one (not the other way round for the
    // page's own session, which logging out ends).
    let mut other = Client::default();
    assert_eq!(other.login(port, "/", "alice@example.org", "alicepw").status, 303);
    let page = alice.get(port, "/");
    let sessions = page.body.split(r#"<table id="sessions">"#).nth(1).unwrap().split("</table>").next().unwrap();
    assert_eq!(sessions.matches("<td>127.0.0.1</td>").count(), 2, "{sessions}");
    let reference = page.body.split(r#"action="/sessions/"#).nth(1).unwrap().split('/').next().unwrap().to_string();
    let ended = alice.post(port, &format!("/sessions/{reference}/end"), &[("csrf", &csrf)]);
    assert_eq!(ended.status, 303);
    assert!(alice.get(port, "/").body.contains("The session was ended"));
    assert!(other.get(port, "/").body.contains(r#"id="login""#), "the other browser must sign in again");
    let unknown = alice.post(port, "/sessions/0123456789abcdef/end", &[("csrf", &csrf)]);
    assert_eq!(unknown.status, 303);
    assert!(alice.get(port, "/").body.contains("No such session"));

    // /sogo-auth takes no redirect target from the request, and administrators cannot use it while
    // ALLOW_ADMIN_EMAIL_LOGIN is off.
    let odd = alice.get(port, "/sogo-auth?login=alice%40example.org&rd=https://evil.example/");
    assert_eq!(odd.header("location"), Some("/SOGo/so/"));
    // A webmail link followed from another site does nothing.
    let cross =
        alice.send(port, "GET", "/sogo-auth?login=alice%40example.org", &[("Sec-Fetch-Site", "cross-site")], "");
    assert_eq!(cross.header("location"), Some("/?m=forbidden"));
    let mut admin = Client::default();
    assert_eq!(admin.login(port, "/admin", "admin", "admin-pw").status, 303);
    let page = admin.get(port, "/admin/mailboxes");
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

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn totp_enrolment_second_factor_recovery_codes_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("GATEHOUSE_GUARD__MAX_DELAY_MS", "0")]);
    let port = server.public;
    let imap_with_password = || {
        let body = r#"{"user":"alice@example.org","password":"alicepw","service":"imap"}"#;
        server.post_internal("/dovecot/auth", body).unwrap().0
    };
    assert_eq!(imap_with_password(), 200);

    let mut alice = Client::default();
    assert_eq!(alice.login(port, "/", "alice@example.org", "alicepw").status, 303);
    // Looking at the setup page changes nothing; the enrolment starts with a posted form.
    let before = cli_ok(dir.path(), db, &["log", "audit", "--json"], "");
    let page = alice.get(port, "/totp/setup");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<svg") && page.body.contains("/totp/setup/start"), "{}", page.body);
    assert_eq!(cli_ok(dir.path(), db, &["log", "audit", "--json"], ""), before, "a GET writes nothing");
    let forged = alice.post(port, "/totp/setup/start", &[("csrf", "not-the-token")]);
    assert_eq!(forged.status, 403);
    let user_page = alice.get(port, "/");
    let started = alice.post(port, "/totp/setup/start", &[("csrf", &user_page.form_value("csrf").unwrap())]);
    assert_eq!(started.header("location"), Some("/totp/setup"));
    let setup = alice.get(port, "/totp/setup");
    assert_eq!(setup.status, 200);
    assert!(setup.body.contains("<svg"), "a QR code is shown");
    let secret = setup.body.split("id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let csrf = setup.form_value("csrf").unwrap();
    let wrong = alice.post(port, "/totp/setup", &[("csrf", &csrf), ("code", "000000")]);
    assert_eq!(wrong.status, 422);
    let code = gatehouse_server::totp::current_code(&secret, unix_now()).unwrap();
    let done = alice.post(port, "/totp/setup", &[("csrf", &csrf), ("code", &code)]);
    assert_eq!(done.status, 200, "{}", done.body);
    let codes: Vec<String> = done
        .body
        .split("<li class=\"secret\">")
        .skip(1)
        .map(|part| part.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    assert!(alice.get(port, "/").body.contains("id=\"totp-state\">On."));
    // With TOTP on, mail protocols need app passwords.
    assert_ne!(imap_with_password(), 200);

    // The next login waits for the second factor and reaches nothing else until then.
    let mut again = Client::default();
    assert_eq!(again.login(port, "/", "alice@example.org", "alicepw").status, 303);
    let before = again.cookies["gatehouse_session"].clone();
    assert_eq!(again.get(port, "/").header("location"), Some("/totp"));
    assert_eq!(again.get(port, "/sogo-auth?login=alice%40example.org").header("location"), Some("/?m=webmail"));
    let form = again.get(port, "/totp");
    let csrf = form.form_value("csrf").unwrap();
    // The code used at enrolment cannot be replayed.
    assert_eq!(again.post(port, "/totp", &[("csrf", &csrf), ("code", &code)]).status, 401);
    let next = gatehouse_server::totp::current_code(&secret, unix_now() + 30).unwrap();
    let passed = again.post(port, "/totp", &[("csrf", &csrf), ("code", &next)]);
    assert_eq!((passed.status, passed.header("location")), (303, Some("/")), "{passed:?}");
    assert_ne!(again.cookies["gatehouse_session"], before, "a new session after the second factor");
    assert_eq!(again.get(port, "/").status, 200);
    let replay = request(port, "GET", "/", &[("Cookie", &format!("gatehouse_session={before}"))], "");
    assert!(replay.body.contains("id=\"login\""), "the pre-TOTP cookie is worthless");

    // A recovery code works once.
    for (attempt, expected) in [(1, 303), (2, 401)] {
        let mut client = Client::default();
        assert_eq!(client.login(port, "/", "alice@example.org", "alicepw").status, 303, "attempt {attempt}");
        let csrf = client.get(port, "/totp").form_value("csrf").unwrap();
        assert_eq!(client.post(port, "/totp", &[("csrf", &csrf), ("code", &codes[0])]).status, expected);
    }
    let log = support::eventually_logged(
        "second factors are in the auth log",
        || run(&["log", "auth", "--json"], ""),
        |log| log.contains("web-totp"),
    );
    assert!(!log.contains(&codes[0]) && !log.contains(&secret), "no code or secret in the log");

    // Turning it off needs a valid code.
    let csrf = again.get(port, "/").form_value("csrf").unwrap();
    again.post(port, "/totp/disable", &[("csrf", &csrf), ("code", "123456")]);
    assert!(again.get(port, "/").body.contains("id=\"totp-state\">On."));
    let off = gatehouse_server::totp::current_code(&secret, unix_now() - 30).unwrap();
    again.post(port, "/totp/disable", &[("csrf", &csrf), ("code", &off)]);
    // An older step than the last one used is refused (replay protection is by step).
    assert!(again.get(port, "/").body.contains("id=\"totp-state\">On."));
    // The codes of this and the next step are used up; a recovery code still turns it off.
    again.post(port, "/totp/disable", &[("csrf", &csrf), ("code", &codes[1])]);
    assert!(again.get(port, "/").body.contains("id=\"totp-state\">Off."));
    assert_eq!(imap_with_password(), 200, "the password opens IMAP again");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn forced_totp_enrolment_and_forced_password_change_come_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "dana@example.org", "--password-stdin"], "danapw-old\n");
    run(&["mailbox", "edit", "dana@example.org", "--force-totp", "true", "--force-password-change", "true"], "");
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    let port = server.public;

    let mut dana = Client::default();
    assert_eq!(dana.login(port, "/", "dana@example.org", "danapw-old").status, 303);
    for path in ["/", "/sogo-auth?login=dana%40example.org"] {
        let answer = dana.get(port, path);
        assert!(answer.header("location").is_some_and(|l| l != "/SOGo/so/"), "{path}: {answer:?}");
    }
    assert_eq!(dana.get(port, "/").header("location"), Some("/totp/setup"));
    let setup = dana.get(port, "/totp/setup");
    assert!(setup.body.contains("requires two-factor authentication"), "{}", setup.body);
    let secret = setup.body.split("id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let code = gatehouse_server::totp::current_code(&secret, unix_now()).unwrap();
    let csrf = setup.form_value("csrf").unwrap();
    let done = dana.post(port, "/totp/setup", &[("csrf", &csrf), ("code", &code)]);
    assert_eq!(done.status, 200);
    assert!(done.body.contains("href=\"/password/required\""), "the next step is the password: {}", done.body);
    assert_eq!(dana.get(port, "/").header("location"), Some("/password/required"));
    let form = dana.get(port, "/password/required");
    let csrf = form.form_value("csrf").unwrap();
    let short = dana.post(port, "/password/required", &[("csrf", &csrf), ("new", "short"), ("repeat", "short")]);
    assert_eq!(short.status, 422);
    let saved =
        dana.post(port, "/password/required", &[("csrf", &csrf), ("new", "danapw-new"), ("repeat", "danapw-new")]);
    assert_eq!((saved.status, saved.header("location")), (303, Some("/")));
    let home = dana.get(port, "/");
    assert_eq!(home.status, 200);
    // TOTP required by the administrator cannot be turned off by the user.
    let csrf = home.form_value("csrf").unwrap();
    let next = gatehouse_server::totp::current_code(&secret, unix_now() + 30).unwrap();
    dana.post(port, "/totp/disable", &[("csrf", &csrf), ("code", &next)]);
    let home = dana.get(port, "/").body;
    assert!(home.contains("requires two-factor") && home.contains("id=\"totp-state\">On."), "{home}");
    // The new password works (with the second factor) and the old one does not.
    assert_eq!(Client::default().login(port, "/", "dana@example.org", "danapw-old").status, 401);
    assert_eq!(Client::default().login(port, "/", "dana@example.org", "danapw-new").status, 303);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn administrators_have_the_same_required_steps_and_every_user_form_needs_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw\n");
    let server = Server::start(dir.path(), db, Some("admin-pw"));
    run(&["admin", "edit", "admin", "--force-totp", "true", "--force-password-change", "true"], "");
    let port = server.public;

    let mut admin = Client::default();
    assert_eq!(admin.login(port, "/admin", "admin", "admin-pw").status, 303);
    assert_eq!(admin.get(port, "/admin").header("location"), Some("/totp/setup"));
    assert_eq!(admin.get(port, "/admin/domains").status, 303, "nothing else before the required steps");
    let setup = admin.get(port, "/totp/setup");
    let secret = setup.body.split("id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    let code = gatehouse_server::totp::current_code(&secret, unix_now()).unwrap();
    let csrf = setup.form_value("csrf").unwrap();
    let done = admin.post(port, "/totp/setup", &[("csrf", &csrf), ("code", &code)]);
    assert!(done.body.contains("href=\"/password/required\""), "{}", done.body);
    let csrf = admin.get(port, "/password/required").form_value("csrf").unwrap();
    let saved =
        admin.post(port, "/password/required", &[("csrf", &csrf), ("new", "admin-pw-2"), ("repeat", "admin-pw-2")]);
    assert_eq!((saved.status, saved.header("location")), (303, Some("/admin")));
    assert_eq!(admin.get(port, "/admin").status, 200);
    assert_eq!(Client::default().login(port, "/admin", "admin", "admin-pw").status, 401);
    let listed = run(&["admin", "list", "--json"], "");
    assert!(
        listed.contains("\"force_password_change\": false") || listed.contains("\"force_password_change\":false"),
        "{listed}"
    );

    // Every state-changing user form refuses a request without this session's token, and changes nothing.
    let mut alice = Client::default();
    assert_eq!(alice.login(port, "/", "alice@example.org", "alicepw").status, 303);
    for path in [
        "/logout",
        "/password",
        "/app-passwords",
        "/app-passwords/1/revoke",
        "/totp/setup",
        "/totp/setup/start",
        "/totp/disable",
    ] {
        let refused = alice.post(
            port,
            path,
            &[
                ("csrf", "forged"),
                ("name", "x"),
                ("protocol", "imap"),
                ("code", "123456"),
                ("current", "alicepw"),
                ("new", "newpassword"),
                ("repeat", "newpassword"),
            ],
        );
        assert_eq!(refused.status, 403, "{path}: {refused:?}");
    }
    assert_eq!(alice.get(port, "/").status, 200, "still logged in: the forged logout did nothing");
    assert_eq!(run(&["app-password", "list", "alice@example.org", "--json"], "").trim(), "[]");
    assert_eq!(Client::default().login(port, "/", "alice@example.org", "alicepw").status, 303, "password unchanged");
    let (status, _) = server.terminate();
    assert!(status.success());
}
