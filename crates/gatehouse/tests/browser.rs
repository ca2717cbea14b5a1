//! The web UI in a real browser (headless Chromium through chromedriver), behind real nginx with SOGo and
//! Dovecot: a user enrols TOTP and logs in with a code, creates and revokes an app password, opens webmail and
//! logs out; an administrator opens a mailbox's webmail; a domain administrator is refused for another
//! domain; a mailbox user signs in at an OpenID provider (Keycloak's paths) and out again, and the provider's
//! back-channel logout ends the session and its webmail. Screenshots of the main pages go to `<target>/tmp/browser-screenshots/` (kept for CI artifacts;
//! the last one shows where a failing run stopped).

mod support;

use std::path::PathBuf;

use gatehouse_testkit::browser::Browser;
use gatehouse_testkit::browser::fantoccini::Locator;
use gatehouse_testkit::free_port;
use support::{Server, cli_ok};

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Numbered screenshots of one run.
struct Shots {
    dir: PathBuf,
    count: usize,
}

impl Shots {
    fn new() -> Shots {
        Shots::new_named("browser-screenshots")
    }

    fn new_named(folder: &str) -> Shots {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(folder);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Shots { dir, count: 0 }
    }

    async fn take(&mut self, browser: &Browser, name: &str) {
        self.count += 1;
        browser.screenshot(self.dir.join(format!("{:02}-{name}.png", self.count))).await;
    }
}

async fn log_in(browser: &Browser, base: &str, page: &str, username: &str, password: &str) {
    browser.goto(&format!("{base}{page}")).await;
    browser.fill("#username", username).await;
    browser.fill("#password", password).await;
    browser.click("#login button[type=submit]").await;
    // The login page and the page after it can share a path: wait for something only the next page has.
    wait_for_any(browser, &["#logout", "#totp", "#totp-setup", "#password-required", "#error"]).await;
}

/// Waits (up to 10 s) until an element matches one of `selectors`.
async fn wait_for_any(browser: &Browser, selectors: &[&str]) {
    for _ in 0..100 {
        for selector in selectors {
            if browser.exists(selector).await {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("none of {selectors:?} appeared: {:?}", page_text(browser).await);
}

/// The page's text, or `None` while the page is being replaced (a navigation in flight).
async fn page_text(browser: &Browser) -> Option<String> {
    let body = browser.client().find(Locator::Css("body")).await.ok()?;
    body.text().await.ok()
}

/// Waits (up to 15 s) until the page's text shows all of `texts`.
async fn shows(browser: &Browser, texts: &[&str]) -> bool {
    for _ in 0..75 {
        let body = page_text(browser).await.unwrap_or_default();
        if texts.iter().all(|t| body.contains(t)) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}

/// Logs out and waits for the login page, so the logout's cookie deletion cannot race the next login.
async fn log_out(browser: &Browser) {
    browser.click("#logout button").await;
    browser.find("#login").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["domain", "add", "other.org"], "");
    for (address, password) in
        [("alice@example.org", "alicepw"), ("bob@example.org", "bobpw"), ("carol@other.org", "carolpw")]
    {
        run(&["mailbox", "add", address, "--password-stdin"], &format!("{password}\n"));
    }
    run(
        &["domain-admin", "add", "helper", "--domains", "example.org", "--acl", "login_as", "--password-stdin"],
        "helperpw\n",
    );
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("ALLOW_ADMIN_EMAIL_LOGIN", "yes")]);
    let Some((dovecot, sogo)) = support::start_dovecot_and_sogo(dir.path(), db, server.internal) else { return };
    for (address, name) in [("alice@example.org", "Alice"), ("bob@example.org", "Bob"), ("carol@other.org", "Carol")] {
        sogo.add_user(address, name);
    }
    let locations = support::nginx_locations(dir.path(), db, &server, &sogo.url());
    let port = free_port();
    let Some(_nginx) = support::start_nginx(port, &locations) else { return };
    let Some(browser) = Browser::start().await else { return };
    let base = format!("http://127.0.0.1:{port}");
    let mut shots = Shots::new();

    // alice: log in, enrol TOTP, create and revoke an app password.
    log_in(&browser, &base, "/", "alice@example.org", "alicepw").await;
    shots.take(&browser, "user-page").await;
    assert!(browser.exists("#open-webmail").await, "{}", browser.source().await);
    browser.click("#totp-enable").await;
    shots.take(&browser, "totp-setup").await;
    let secret = browser.text("#totp-secret").await;
    let code = gatehouse_server::totp::current_code(secret.trim(), unix_now()).unwrap();
    browser.fill("#code", &code).await;
    browser.click("#totp-setup button").await;
    shots.take(&browser, "recovery-codes").await;
    assert!(browser.text("#recovery-codes").await.lines().count() >= 10);
    browser.click("#continue").await;
    assert_eq!(browser.text("#totp-state").await.trim(), "On.");
    browser.fill("#app-name", "phone").await;
    browser.click("input[name=protocol][value=imap]").await;
    browser.click("#new-app-password button").await;
    shots.take(&browser, "app-password-created").await;
    let token = browser.text("#new-token").await;
    assert!(token.trim().starts_with("gh_"), "{token}");
    assert!(support::mail::imap_login(dovecot.imap, "alice@example.org", token.trim()).ok());
    browser.click("#app-passwords button.danger").await;
    assert!(shows(&browser, &["revoked"]).await, "{}", browser.text("body").await);
    shots.take(&browser, "app-password-revoked").await;
    // Gatehouse refuses it at once; Dovecot once its auth cache (60 s) forgets the earlier success.
    dovecot.doveadm(&["auth", "cache", "flush"]);
    assert!(!support::mail::imap_login(dovecot.imap, "alice@example.org", token.trim()).ok());

    // Log out, log in again: the code is asked for; then webmail opens in SOGo.
    log_out(&browser).await;
    assert!(browser.text("#notice").await.contains("logged out"));
    log_in(&browser, &base, "/", "alice@example.org", "alicepw").await;
    shots.take(&browser, "totp-code").await;
    let url = browser.current_url().await;
    assert_eq!(url.path(), "/totp", "{url}: {}", browser.text("body").await);
    let next = gatehouse_server::totp::current_code(secret.trim(), unix_now() + 30).unwrap();
    browser.fill("#code", &next).await;
    browser.click("#totp button[type=submit]").await;
    browser.click("#open-webmail").await;
    let url = browser.current_url().await;
    assert!(url.path().replace("%40", "@").starts_with("/SOGo/so/alice@example.org"), "webmail opened: {url}");
    // SOGo's own interface really loads: its scripts (static files served by nginx) draw the folder list,
    // which SOGo reads over IMAP with the SSO token.
    let loaded = shows(&browser, &["alice@example.org", "Inbox"]).await;
    shots.take(&browser, "webmail").await;
    assert!(loaded, "SOGo's webmail did not load: {}", browser.source().await);
    browser.goto(&format!("{base}/")).await;
    log_out(&browser).await;
    browser.goto(&format!("{base}/SOGo/so/alice@example.org/Mail/view")).await;
    assert_eq!(browser.current_url().await.path(), "/", "after logout webmail sends the browser to the login");

    // The administrator opens bob's webmail.
    log_in(&browser, &base, "/admin", "admin", "admin-pw").await;
    shots.take(&browser, "admin-page").await;
    browser.goto(&format!("{base}/sogo-auth?login=bob%40example.org")).await;
    let url = browser.current_url().await;
    let path = url.path().replace("%40", "@");
    assert!(path.starts_with("/SOGo/so/bob@example.org"), "impersonation opened bob's webmail: {url}");
    let loaded = shows(&browser, &["bob@example.org", "Inbox"]).await;
    shots.take(&browser, "admin-webmail").await;
    assert!(loaded, "bob's webmail did not load: {}", browser.source().await);
    browser.goto(&format!("{base}/admin")).await;
    log_out(&browser).await;

    // A domain administrator of example.org is refused for other.org.
    log_in(&browser, &base, "/domainadmin", "helper", "helperpw").await;
    browser.goto(&format!("{base}/sogo-auth?login=carol%40other.org")).await;
    let url = browser.current_url().await;
    let body = browser.text("body").await;
    assert_eq!((url.path(), url.query()), ("/domainadmin", Some("m=forbidden")), "{body}");
    assert!(body.contains("not available"), "{body}");
    shots.take(&browser, "domain-admin-refused").await;
    log_out(&browser).await;

    browser.close().await;
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// Signs in at the test provider's development pages (any password) and gives consent, from its login page.
async fn sign_in_at_provider(browser: &Browser, account: &str) {
    browser.fill("input[name=login]", account).await;
    browser.fill("input[name=password]", "any password").await;
    browser.click("button[type=submit]").await;
    // The consent page (the first time), then back to Gatehouse.
    for _ in 0..100 {
        if browser.exists("#logout").await {
            return;
        }
        if browser.exists("input[name=prompt][value=consent]").await {
            browser.click("button[type=submit]").await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the sign-in did not come back to Gatehouse: {}", browser.source().await);
}

/// Confirms the logout on the provider's logout page.
async fn confirm_provider_logout(browser: &Browser) {
    browser.click("button[name=logout]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_at_an_openid_provider_in_chromium() {
    use gatehouse_testkit::oidc::{OidcClient, OpenIdProvider, ProviderOptions};
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = OidcClient::gatehouse(&base, "corp", "client-secret");
    let claims = serde_json::json!({ "email": "alice@example.org", "email_verified": true, "name": "Alice",
                                     "mailcow_template": "staff" });
    let accounts = [("alice".to_string(), claims)].into_iter().collect();
    let Some(op) = OpenIdProvider::start(&ProviderOptions::keycloak("mail"), &[client], &accounts) else { return };
    run(&["domain", "add", "example.org"], "");
    run(&["template", "add", "staff", "--quota-mib", "300", "--protocols", "imap,smtp,sogo"], "");
    let settings = serde_json::json!({
        "server_url": format!("http://127.0.0.1:{}", op.port), "realm": "mail", "client_id": "gatehouse",
        "label": "Sign in with Keycloak", "create_on_login": true,
    });
    run(
        &["idp", "add", "corp", "--type", "keycloak", "--settings", &settings.to_string(), "--secret-stdin"],
        "client-secret\n",
    );
    run(&["idp", "map", "corp", "staff=staff"], "");
    let public_url = ("GATEHOUSE_WEB__PUBLIC_URL", base.as_str());
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[public_url]);
    let Some((_dovecot, sogo)) = support::start_dovecot_and_sogo(dir.path(), db, server.internal) else { return };
    sogo.add_user("alice@example.org", "Alice");
    let locations = support::nginx_locations(dir.path(), db, &server, &sogo.url());
    let Some(_nginx) = support::start_nginx(port, &locations) else { return };
    let Some(browser) = Browser::start().await else { return };
    let mut shots = Shots::new_named("oidc-screenshots");

    // The provider's button on the login page, the provider's sign-in, back on the user page.
    browser.goto(&format!("{base}/")).await;
    shots.take(&browser, "login-page").await;
    assert_eq!(browser.text("#sign-in-corp").await.trim(), "Sign in with Keycloak");
    browser.click("#sign-in-corp").await;
    browser.find("input[name=login]").await;
    let at = browser.current_url().await;
    assert!(at.as_str().starts_with(&op.issuer), "the browser is at the provider: {at}");
    shots.take(&browser, "provider-login").await;
    sign_in_at_provider(&browser, "alice").await;
    shots.take(&browser, "user-page").await;
    assert!(shows(&browser, &["alice@example.org", "You signed in through corp"]).await, "{}", browser.source().await);
    let listed: serde_json::Value = serde_json::from_str(&run(&["mailbox", "list", "--json"], "")).unwrap();
    assert_eq!((&listed[0]["template"], &listed[0]["auth_source"]), (&"staff".into(), &"corp".into()), "{listed}");

    // Webmail opens with the session; the provider's back-channel logout ends both.
    browser.click("#open-webmail").await;
    let loaded = shows(&browser, &["alice@example.org", "Inbox"]).await;
    shots.take(&browser, "webmail").await;
    assert!(loaded, "SOGo's webmail did not load: {}", browser.source().await);
    browser.goto(&format!("{}/protocol/openid-connect/logout", op.issuer)).await;
    shots.take(&browser, "provider-logout").await;
    confirm_provider_logout(&browser).await;
    assert!(shows(&browser, &["sign-out"]).await, "{}", browser.source().await);
    browser.goto(&format!("{base}/SOGo/so/alice@example.org/Mail/view")).await;
    assert_eq!(browser.current_url().await.path(), "/", "webmail asks to sign in again");
    assert!(browser.exists("#sign-in-corp").await, "{}", browser.source().await);

    // Sign in again, then log out of Gatehouse: the browser signs out at the provider too and comes back.
    browser.click("#sign-in-corp").await;
    browser.find("input[name=login]").await;
    sign_in_at_provider(&browser, "alice").await;
    log_out_at_provider(&browser).await;
    shots.take(&browser, "provider-logout-confirm").await;
    confirm_provider_logout(&browser).await;
    assert!(shows(&browser, &["You have been logged out."]).await, "{}", browser.source().await);
    assert_eq!(browser.current_url().await.as_str(), format!("{base}/?m=ended"));
    shots.take(&browser, "signed-out").await;

    browser.close().await;
    let (status, stderr) = server.terminate();
    assert!(status.success());
    assert!(!stderr.contains("client-secret"), "the client secret is never logged");
}

/// Clicks Gatehouse's logout and waits for the provider's logout page.
async fn log_out_at_provider(browser: &Browser) {
    browser.click("#logout button").await;
    browser.find("button[name=logout]").await;
}
