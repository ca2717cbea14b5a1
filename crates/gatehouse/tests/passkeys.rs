//! Passkeys in a real browser: headless Chromium with a virtual CTAP2 authenticator (WebDriver's WebAuthn
//! extension: resident keys, user verification) behind real nginx with the generated configuration. A mailbox
//! owner registers a passkey on the user page (confirmed with the password), and it becomes the second factor after the password (the mail
//! protocols then refuse the password); signing in with it works; then the refusals, each from the server: a
//! passkey of another account, an answer to another challenge, client data naming another origin, an answer
//! used twice, a removed passkey, and a mailbox deactivated while its login waits for the passkey. Signing in
//! with the passkey alone (a discoverable credential names its account) works, and is refused on another kind
//! of login page and for a deactivated mailbox. An administrator registers one on `/passkeys` and signs in with
//! it (also without the password); a mailbox that must set up a second factor may choose a passkey, and its
//! domain administrator removes it when the device is lost; the command line lists and removes them too.

mod support;

use std::path::PathBuf;

use gatehouse_testkit::browser::Browser;
use gatehouse_testkit::browser::fantoccini::Locator;
use gatehouse_testkit::free_port;
use serde_json::{Value, json};
use support::{Server, cli, cli_ok};

/// Where the screenshots go (kept for CI artifacts with the browser test's).
fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("passkey-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn log_in(browser: &Browser, base: &str, username: &str, password: &str) {
    log_in_at(browser, base, "/", username, password).await;
}

async fn log_in_at(browser: &Browser, base: &str, page: &str, username: &str, password: &str) {
    browser.goto(&format!("{base}{page}")).await;
    browser.fill("#username", username).await;
    browser.fill("#password", password).await;
    browser.click("#login button[type=submit]").await;
    wait_for(browser, &["#logout", "#totp", "#totp-start", "#totp-setup", "#error"]).await;
}

/// Waits (up to 10 s) until an element matches one of `selectors`; returns the one that did.
async fn wait_for(browser: &Browser, selectors: &[&str]) -> String {
    for _ in 0..100 {
        for selector in selectors {
            if browser.exists(selector).await {
                return selector.to_string();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("none of {selectors:?} appeared: {}", browser.source().await);
}

/// Presses the button of the passkey form `form` (the page's script runs the ceremony) and waits until `lands_on`
/// appears, or fails with the error the page shows instead.
async fn press_passkey(browser: &Browser, form: &str, lands_on: &str) {
    browser.click(&format!("{form} button[type=submit]")).await;
    let seen = wait_for(browser, &[lands_on, "#passkey-error:not([hidden])"]).await;
    if seen != lands_on {
        panic!("{form}: {}", browser.text("#passkey-error").await);
    }
}

async fn log_out(browser: &Browser) {
    browser.click("#logout button").await;
    browser.find("#login").await;
}

/// Registers a passkey named `name` through the page's own script, confirming with the account's `password`.
async fn add_passkey(browser: &Browser, name: &str, password: &str) {
    browser.fill("#passkey-name", name).await;
    browser.fill("#passkey-password", password).await;
    browser.click("#passkey-add button[type=submit]").await;
    for _ in 0..100 {
        // The page is replaced when the passkey is in: an element found may be gone a moment later.
        if let Ok(notice) = browser.client().find(Locator::Css("#notice")).await
            && notice.text().await.is_ok_and(|text| text.contains(name))
        {
            return;
        }
        if browser.exists("#passkey-error:not([hidden])").await {
            panic!("registering {name}: {}", browser.text("#passkey-error").await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("registering {name} did not finish: {}", browser.source().await);
}

/// A second-factor attempt made by hand from the `/totp` page, with the browser's authenticator, to reach
/// what the page's script never sends: `allow` replaces the credentials the server named; with `other_ceremony`
/// the answer is posted under a second challenge's ceremony; `times` posts the same answer again; `origin`
/// replaces the origin the browser wrote into the signed client data. Returns the status and body of each post.
const ATTEMPT: &str = r#"
const [allow, otherCeremony, times, origin, done] = arguments;
const bytes = (text) => Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - text.length % 4) % 4)), c => c.charCodeAt(0)).buffer;
const b64 = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const post = async (url, body) => {
  const response = await fetch(url, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  try { return { status: response.status, body: JSON.parse(text) }; } catch (err) { return { status: response.status, body: text }; }
};
(async () => {
  const csrf = document.querySelector('#passkey-use input[name=csrf]').value;
  const started = await post('/totp/passkey/start', { csrf });
  if (started.status !== 200) return [started];
  const options = started.body.publicKey;
  const ids = allow || options.allowCredentials.map(c => c.id);
  const credential = await navigator.credentials.get({ publicKey: {
    challenge: bytes(options.challenge), rpId: options.rpId, userVerification: 'required', timeout: 10000,
    allowCredentials: ids.map(id => ({ type: 'public-key', id: bytes(id) })),
  } });
  let clientData = credential.response.clientDataJSON;
  if (origin) {
    const parsed = JSON.parse(new TextDecoder().decode(clientData));
    parsed.origin = origin;
    clientData = new TextEncoder().encode(JSON.stringify(parsed)).buffer;
  }
  const answer = { id: credential.id, rawId: b64(credential.rawId), type: credential.type, extensions: {}, response: {
    authenticatorData: b64(credential.response.authenticatorData), clientDataJSON: b64(clientData),
    signature: b64(credential.response.signature),
    userHandle: credential.response.userHandle ? b64(credential.response.userHandle) : null,
  } };
  const ceremony = otherCeremony ? (await post("/totp/passkey/start", { csrf })).body.ceremony : started.body.ceremony;
  const results = [];
  for (let i = 0; i < times; i++) results.push(await post('/totp/passkey/finish', { csrf, ceremony, credential: answer }));
  return results;
})().then(done, err => done([{ status: 0, body: String(err) }]));
"#;

async fn attempt(browser: &Browser, allow: Option<Vec<String>>, other_ceremony: bool, times: u32) -> Vec<(u64, Value)> {
    attempt_from(browser, allow, other_ceremony, times, None).await
}

async fn attempt_from(
    browser: &Browser,
    allow: Option<Vec<String>>,
    other_ceremony: bool,
    times: u32,
    origin: Option<&str>,
) -> Vec<(u64, Value)> {
    let result = browser
        .client()
        .execute_async(ATTEMPT, vec![json!(allow), json!(other_ceremony), json!(times), json!(origin)])
        .await
        .expect("the attempt's script");
    result
        .as_array()
        .unwrap_or_else(|| panic!("{result}"))
        .iter()
        .map(|r| (r["status"].as_u64().unwrap_or(0), r["body"].clone()))
        .collect()
}

/// The credential ids a virtual authenticator holds.
async fn credential_ids(browser: &Browser, authenticator: &str) -> Vec<String> {
    let credentials = browser.virtual_credentials(authenticator).await;
    credentials.iter().map(|c| c["credentialId"].as_str().unwrap().to_string()).collect()
}

/// Gatehouse behind nginx at `base` (`http://localhost:<port>`, its `web.public_url`), and a browser.
struct Site {
    base: String,
    browser: Browser,
    _server: Server,
    _nginx: gatehouse_testkit::nginx::Nginx,
}

impl Site {
    /// `None` (after `require_peer`) when nginx or Chromium is missing.
    async fn start(dir: &std::path::Path, db: &str) -> Option<Site> {
        // WebAuthn needs a secure context and a domain as RP ID: http://localhost is both.
        let port = free_port();
        let base = format!("http://localhost:{port}");
        let server = Server::start_with_env(dir, db, Some("admin-pw"), &[("GATEHOUSE_WEB__PUBLIC_URL", &base)]);
        let locations = support::nginx_locations(dir, db, &server, "http://127.0.0.1:9");
        let nginx = support::start_nginx(port, &locations)?;
        let browser = Browser::start().await?;
        Some(Site { base, browser, _server: server, _nginx: nginx })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_as_second_factor_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    for (address, password) in [("alice@example.org", "alicepw"), ("bob@example.org", "bobpw")] {
        run(&["mailbox", "add", address, "--password-stdin"], &format!("{password}\n"));
    }
    // The server and nginx live as long as their bindings.
    let Some(Site { base, browser, _server, _nginx }) = Site::start(dir.path(), db).await else { return };
    let shots = shots_dir();
    let first = browser.add_virtual_authenticator().await;

    // alice registers a passkey: a discoverable credential of this site on the authenticator.
    log_in(&browser, &base, "alice@example.org", "alicepw").await;
    assert!(browser.exists("#logout").await, "no second factor yet");
    // A session alone does not add a passkey: the password confirms the owner.
    browser.fill("#passkey-name", "Intruder").await;
    browser.fill("#passkey-password", "not-alicepw").await;
    press_passkey(&browser, "#passkey-add", "#passkey-error:not([hidden])").await;
    assert_eq!(browser.text("#passkey-error").await.trim(), "The password is wrong.");
    assert!(browser.virtual_credentials(&first).await.is_empty(), "no credential was made");
    add_passkey(&browser, "Laptop", "alicepw").await;
    browser.screenshot(shots.join("01-passkey-added.png")).await;
    assert!(browser.text("#passkeys").await.contains("Laptop"));
    let credentials = browser.virtual_credentials(&first).await;
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!((&credentials[0]["rpId"], &credentials[0]["isResidentCredential"]), (&json!("localhost"), &json!(true)));
    let laptop = credentials[0]["credentialId"].as_str().unwrap().to_string();
    // A passkey is a second factor: the mail protocols now take app passwords only.
    let (code, _, stderr) =
        cli(dir.path(), db, &["auth", "test", "alice@example.org", "--service", "imap"], "alicepw\n");
    assert_ne!(code, 0, "the password no longer opens IMAP: {stderr}");
    log_out(&browser).await;

    // The password, then the passkey.
    log_in(&browser, &base, "alice@example.org", "alicepw").await;
    assert!(browser.exists("#passkey-use").await, "the second factor page offers the passkey");
    browser.screenshot(shots.join("02-second-factor.png")).await;
    press_passkey(&browser, "#passkey-use", "#logout").await;
    assert!(!browser.text("#passkeys").await.contains("never"), "its last use is shown");
    support::eventually_logged(
        "the passkey sign-in is in the auth log",
        || run(&["log", "auth", "--json", "--subject", "alice@example.org"], ""),
        |log| log.contains("\"web-passkey\""),
    );
    log_out(&browser).await;

    // bob registers his own passkey on the same authenticator.
    log_in(&browser, &base, "bob@example.org", "bobpw").await;
    add_passkey(&browser, "Bob's key", "bobpw").await;
    log_out(&browser).await;
    let bobs = credential_ids(&browser, &first).await.into_iter().find(|id| *id != laptop).expect("bob's credential");

    // Refused by the server: bob's passkey for alice; an answer under another challenge; one answer twice.
    log_in(&browser, &base, "alice@example.org", "alicepw").await;
    let refused = attempt(&browser, Some(vec![bobs.clone()]), false, 1).await;
    assert_eq!(refused[0].0, 401, "another account's passkey: {refused:?}");
    let refused = attempt(&browser, None, true, 1).await;
    assert_eq!(refused[0].0, 401, "an answer to another challenge: {refused:?}");
    let refused = attempt_from(&browser, None, false, 1, Some("http://evil.example")).await;
    assert_eq!(refused[0].0, 401, "another origin: {refused:?}");
    support::eventually_logged(
        "the refusals and their reasons are in the auth log",
        || run(&["log", "auth", "--json", "--subject", "alice@example.org"], ""),
        |log| log.contains("not registered to the account") && log.contains("origin does not match"),
    );
    let twice = attempt(&browser, None, false, 2).await;
    assert_eq!((twice[0].0, &twice[0].1["next"]), (200, &json!("/")), "{twice:?}");
    assert_eq!(twice[1].0, 401, "the same answer again: {twice:?}");
    browser.goto(&format!("{base}/")).await;
    browser.find("#logout").await;

    // A second authenticator with a second passkey; the first one removed on the page.
    let saved = browser.virtual_credentials(&first).await;
    browser.remove_virtual_authenticator(&first).await;
    let second = browser.add_virtual_authenticator().await;
    add_passkey(&browser, "Key", "alicepw").await;
    let remove = browser.find("#passkeys tbody tr:first-child button").await;
    remove.click().await.unwrap();
    browser.wait_text("#notice", "Passkey removed.").await;
    let table = browser.text("#passkeys").await;
    assert!(table.contains("Key") && !table.contains("Laptop"), "{table}");
    log_out(&browser).await;

    // The removed passkey, still on an authenticator, is refused; the remaining one works.
    let saved = saved.into_iter().find(|c| c["credentialId"] == json!(laptop)).unwrap();
    // Not resident: the authenticator keeps one resident credential per account and site, "Key" now.
    let laptop_credential = json!({
        "credentialId": saved["credentialId"], "isResidentCredential": false, "rpId": saved["rpId"],
        "privateKey": saved["privateKey"], "signCount": saved["signCount"],
    });
    browser.add_virtual_credential(&second, laptop_credential).await;
    log_in(&browser, &base, "alice@example.org", "alicepw").await;
    let refused = attempt(&browser, Some(vec![laptop.clone()]), false, 1).await;
    assert_eq!(refused[0].0, 401, "a removed passkey: {refused:?}");
    press_passkey(&browser, "#passkey-use", "#logout").await;
    log_out(&browser).await;

    // Without a password: the passkey names its account. Not on the administrators' login page, though.
    browser.goto(&format!("{base}/")).await;
    press_passkey(&browser, "#passkey-sign-in", "#logout").await;
    assert_eq!(browser.current_url().await.path(), "/");
    assert!(browser.source().await.contains("alice@example.org"));
    browser.screenshot(shots.join("03-passwordless.png")).await;
    log_out(&browser).await;
    browser.goto(&format!("{base}/admin")).await;
    press_passkey(&browser, "#passkey-sign-in", "#passkey-error:not([hidden])").await;
    assert_eq!(browser.text("#passkey-error").await.trim(), "Login failed.");

    // Deactivated while the login waits for its passkey: the session is gone, the passkey opens nothing.
    log_in(&browser, &base, "alice@example.org", "alicepw").await;
    assert!(browser.exists("#passkey-use").await);
    run(&["mailbox", "edit", "alice@example.org", "--active", "false"], "");
    // Another process's change reaches the server within a second (the change feed).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    press_passkey(&browser, "#passkey-use", "#passkey-error:not([hidden])").await;
    let message = browser.text("#passkey-error").await;
    assert!(message.contains("Log in again"), "{message}");
    browser.screenshot(shots.join("04-refused.png")).await;
    // Nor does it sign in without a password.
    browser.goto(&format!("{base}/")).await;
    press_passkey(&browser, "#passkey-sign-in", "#passkey-error:not([hidden])").await;
    assert_eq!(browser.text("#passkey-error").await.trim(), "Login failed.");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_and_forced_enrolment_take_passkeys() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "carol@example.org", "--password-stdin"], "carolpw\n");
    run(&["mailbox", "edit", "carol@example.org", "--force-totp", "true"], "");
    run(&["domain-admin", "add", "helper", "--domains", "example.org", "--password-stdin"], "helperpw\n");
    // The server and nginx live as long as their bindings.
    let Some(Site { base, browser, _server, _nginx }) = Site::start(dir.path(), db).await else { return };
    let first = browser.add_virtual_authenticator().await;

    // The administrator adds a passkey on /passkeys (linked from the admin pages) and signs in with it.
    log_in_at(&browser, &base, "/admin", "admin", "admin-pw").await;
    browser.click("#admin-nav a[href='/passkeys']").await;
    browser.find("#no-passkeys").await;
    add_passkey(&browser, "Admin key", "admin-pw").await;
    assert!(browser.text("#passkeys").await.contains("Admin key"));
    // A copy of the key as it is now, for the signature counter below.
    let copy = browser.virtual_credentials(&first).await.remove(0);
    log_out(&browser).await;
    log_in_at(&browser, &base, "/admin", "admin", "admin-pw").await;
    assert!(browser.exists("#passkey-use").await, "the administrator's second factor");
    press_passkey(&browser, "#passkey-use", "#admin-nav").await;
    assert_eq!(browser.current_url().await.path(), "/admin");
    log_out(&browser).await;
    // And without the password.
    browser.goto(&format!("{base}/admin")).await;
    press_passkey(&browser, "#passkey-sign-in", "#admin-nav").await;
    support::eventually_logged(
        "the administrator's passkey sign-in is in the auth log",
        || run(&["log", "auth", "--json", "--subject", "admin"], ""),
        |log| log.contains("\"web-admin-passkey\""),
    );
    log_out(&browser).await;

    // The copy signs with a counter the server has seen already: refused, and said why.
    browser.remove_virtual_authenticator(&first).await;
    let second = browser.add_virtual_authenticator().await;
    browser.add_virtual_credential(&second, copy).await;
    browser.goto(&format!("{base}/admin")).await;
    press_passkey(&browser, "#passkey-sign-in", "#passkey-error:not([hidden])").await;
    assert_eq!(browser.text("#passkey-error").await.trim(), "Login failed.");
    support::eventually_logged(
        "the counter that went back is in the auth log",
        || run(&["log", "auth", "--json", "--subject", "(passkey)"], ""),
        |log| log.contains("may have been copied"),
    );
    browser.remove_virtual_authenticator(&second).await;

    // A domain administrator's passkey: its own login page, not the administrators'.
    browser.add_virtual_authenticator().await;
    log_in_at(&browser, &base, "/domainadmin", "helper", "helperpw").await;
    browser.click("#admin-nav a[href='/passkeys']").await;
    add_passkey(&browser, "Helper key", "helperpw").await;
    log_out(&browser).await;
    browser.goto(&format!("{base}/admin")).await;
    press_passkey(&browser, "#passkey-sign-in", "#passkey-error:not([hidden])").await;
    assert_eq!(browser.text("#passkey-error").await.trim(), "Login failed.");
    browser.goto(&format!("{base}/domainadmin")).await;
    press_passkey(&browser, "#passkey-sign-in", "#admin-nav").await;
    assert_eq!(browser.current_url().await.path(), "/domainadmin");
    log_out(&browser).await;

    // carol must set up a second factor: a passkey does, and the login goes on to her page.
    log_in(&browser, &base, "carol@example.org", "carolpw").await;
    assert!(browser.exists("#passkey-add").await, "the enrolment page offers a passkey");
    browser.fill("#passkey-name", "Phone").await;
    press_passkey(&browser, "#passkey-add", "#logout").await;
    assert!(browser.text("#passkeys").await.contains("Phone"));
    log_out(&browser).await;
    log_in(&browser, &base, "carol@example.org", "carolpw").await;
    assert!(browser.exists("#passkey-use").await, "now the passkey is asked for");
    press_passkey(&browser, "#passkey-use", "#logout").await;
    log_out(&browser).await;

    // carol lost her phone: her domain administrator sees her passkey and removes it.
    log_in_at(&browser, &base, "/domainadmin", "helper", "helperpw").await;
    press_passkey(&browser, "#passkey-use", "#admin-nav").await;
    browser.goto(&format!("{base}/domainadmin/mailboxes/carol%40example.org")).await;
    assert!(browser.text("#passkeys").await.contains("Phone"));
    browser.find("#passkeys tbody tr:first-child button").await.click().await.unwrap();
    // Confirmed on a page of its own.
    browser.wait_text("#effects", "it no longer signs in to carol@example.org").await;
    browser.click("#confirm").await;
    browser.wait_text("#notice", "Passkey of carol@example.org removed.").await;
    assert!(browser.exists("#no-passkeys").await);
    let audit = run(&["log", "audit", "--json", "--subject", "carol@example.org"], "");
    assert!(audit.contains("passkey.remove") && audit.contains("helper"), "{audit}");
    browser.close().await;

    // The operator's way, for an administrator locked out: the command line.
    let listed: Value = serde_json::from_str(&run(&["passkey", "list", "admin", "--admin", "--json"], "")).unwrap();
    assert_eq!(listed[0]["name"], "Admin key", "{listed}");
    assert!(listed[0].get("credential").is_none(), "the credential record stays inside: {listed}");
    let id = listed[0]["id"].to_string();
    run(&["passkey", "remove", "admin", &id, "--admin"], "");
    assert_eq!(run(&["passkey", "list", "admin", "--admin", "--json"], "").trim(), "[]");
    assert_eq!(run(&["passkey", "list", "carol@example.org", "--json"], "").trim(), "[]");
    let (code, _, stderr) = cli(dir.path(), db, &["passkey", "remove", "carol@example.org", &id], "");
    assert_ne!(code, 0, "{stderr}");
}
