//! Mailbox users sign in at a real OpenID provider (npm `oidc-provider`): the login page's button, the
//! authorization code flow with PKCE, state and nonce, the mailbox created from the template the claim names
//! and updated when the claim changes, bound to the account (`sub`) at its first sign-in; every refusal a
//! clear message (a replayed or foreign callback, ID tokens forged on the wire — a changed signature, `alg:
//! none`, HS256 with the client secret, another issuer or audience, expired, another nonce — a cancelled sign-in, an unverified address, a second account
//! for the same address, a domain that does not exist or is full, a missing required claim value, a local
//! mailbox); a key rotation at the provider; logout at the provider (RP-initiated) and the provider's
//! back-channel logout ending the session.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use gatehouse_testkit::free_port;
use gatehouse_testkit::oidc::{OidcClient, OpenIdProvider, ProviderOptions};
use serde_json::{Value, json};
use support::http::{Client, form};
use support::sign_in::{Browser, path_of};
use support::{Server, cli_ok};

const DB: &str = "sqlite://./data/gatehouse.db";
const START: &str = "/oidc/sign-in/corp";

fn person(email: &str, template: &str) -> Value {
    json!({ "email": email, "email_verified": true, "name": "Alice Liddell", "mailcow_template": template,
            "roles": ["mail"] })
}

fn accounts() -> BTreeMap<String, Value> {
    let mut accounts = BTreeMap::new();
    accounts.insert("alice".to_string(), person("alice@example.org", "staff"));
    // Another account of the provider with alice's address.
    accounts.insert("mallory".to_string(), person("alice@example.org", "staff"));
    let mut unverified = person("bob@example.org", "staff");
    unverified["email_verified"] = json!(false);
    accounts.insert("unverified".to_string(), unverified);
    accounts.insert("nodomain".to_string(), person("x@nowhere.example", "staff"));
    accounts.insert("full".to_string(), person("second@full.example", "staff"));
    let mut norole = person("norole@example.org", "staff");
    norole["roles"] = json!(["other"]);
    accounts.insert("norole".to_string(), norole);
    accounts.insert("local".to_string(), person("local@example.org", "staff"));
    accounts.insert("notemplate".to_string(), person("nt@example.org", "unmapped"));
    let mut boss = person("boss@example.org", "staff");
    boss["roles"] = json!(["mail", "mail-admin"]);
    accounts.insert("boss".to_string(), boss);
    let mut helper = person("helper@example.org", "staff");
    helper["roles"] = json!(["mail", "example-admin"]);
    accounts.insert("helper".to_string(), helper);
    accounts
}

fn mailbox(dir: &std::path::Path, address: &str) -> Option<Value> {
    let listed: Value = serde_json::from_str(&cli_ok(dir, DB, &["mailbox", "list", "--json"], "")).unwrap();
    listed.as_array().unwrap().iter().find(|m| m["address"] == address).cloned()
}

/// A sign-in as `account` in `browser`, delivered to Gatehouse: its answer.
fn sign_in(browser: &mut Browser, port: u16, op: &OpenIdProvider, account: &str) -> support::http::Response {
    let callback = browser.sign_in(port, op.port, START, account);
    assert!(callback.starts_with("/oidc/callback?"), "{callback}");
    browser.gatehouse.get(port, &callback)
}

fn assert_refused(answer: &support::http::Response, status: u16, text: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(answer.body.contains(text), "expected {text:?} in:\n{}", answer.body);
}

#[test]
fn mailbox_users_sign_in_at_an_openid_provider() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = OidcClient::gatehouse(&base, "corp", "client-secret");
    let Some(mut op) = OpenIdProvider::start(&ProviderOptions::default(), &[client], &accounts()) else { return };

    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), DB, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["domain", "add", "full.example", "--max-mailboxes", "1"], "");
    run(&["mailbox", "add", "first@full.example", "--password-stdin"], "firstpw1\n");
    run(&["mailbox", "add", "local@example.org", "--password-stdin"], "localpw1\n");
    run(&["template", "add", "staff", "--quota-mib", "100", "--protocols", "imap,smtp"], "");
    run(&["template", "add", "sales", "--quota-mib", "200", "--protocols", "imap"], "");
    let settings = json!({
        "issuer": op.issuer, "client_id": "gatehouse", "label": "Company login", "create_on_login": true,
        "required_claim": { "claim": "roles", "value": "mail" },
        "admin_roles": { "claim": "roles", "administrator": ["mail-admin"],
            "domain_administrators": [{ "value": "example-admin", "domains": ["example.org"], "login_as": true }] },
    });
    run(
        &["idp", "add", "corp", "--type", "oidc", "--settings", &settings.to_string(), "--secret-stdin"],
        "client-secret\n",
    );
    run(&["idp", "map", "corp", "staff=staff", "sales=sales"], "");
    let public_url = ("GATEHOUSE_WEB__PUBLIC_URL", base.as_str());
    let server = Server::start_at(dir.path(), DB, Some("admin-pw"), &[public_url], port);

    // The login page offers the provider by its label.
    let page = Client::default().get(port, "/");
    assert!(page.body.contains("id=\"sign-in-corp\"") && page.body.contains("Company login"), "{}", page.body);

    // The first sign-in creates the mailbox from the template the claim names, bound to the account.
    let mut alice = Browser::default();
    let answer = sign_in(&mut alice, port, &op, "alice");
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.header("location"), Some("/"));
    let home = alice.gatehouse.get(port, "/");
    assert!(home.status == 200 && home.body.contains("alice@example.org"), "{}", home.body);
    assert!(home.body.contains("You signed in through corp") && home.body.contains("id=\"new-app-password\""));
    let created = mailbox(dir.path(), "alice@example.org").expect("the mailbox was created");
    assert_eq!(created["template"], "staff");
    assert_eq!(created["auth_source"], "corp");
    assert_eq!(created["quota_mib"], 100, "{created}");
    assert_eq!(created["display_name"], "Alice Liddell");
    assert_eq!(created["external_id"], "alice", "bound to the account's sub");

    // A callback is good once, and only in the browser that started the sign-in.
    let mut second = Browser::default();
    let callback = second.sign_in(port, op.port, START, "alice");
    let mut thief = Client::default();
    assert_refused(&thief.get(port, &callback), 400, "started in another browser");
    assert_eq!(second.gatehouse.get(port, &callback).status, 303, "the sign-in stays for its own browser");
    assert_refused(&second.gatehouse.get(port, &callback), 400, "already used");

    // A code intercepted on its way back is worth nothing without the PKCE verifier, which never leaves Gatehouse.
    let started = second.start(port, START);
    let authorize = started.header("location").unwrap().to_string();
    let intercepted = path_of(&second.at_provider(op.port, &authorize, "alice", true));
    let code = intercepted.split("code=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "gatehouse:client-secret")
    );
    let redeemed = support::http::request(
        op.port,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", &basic)],
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &format!("{base}/oidc/callback")),
        ]),
    );
    assert_eq!(redeemed.status, 400, "{}", redeemed.body);
    assert!(redeemed.body.contains("invalid_grant") || redeemed.body.contains("code_verifier"), "{}", redeemed.body);

    // A code Gatehouse did not get from this sign-in is refused by the provider's token endpoint.
    let started = second.start(port, START);
    let authorize = started.header("location").unwrap().to_string();
    let callback = path_of(&second.at_provider(op.port, &authorize, "alice", true));
    let (path, query) = callback.split_once('?').unwrap();
    let forged: String = query
        .split('&')
        .map(|pair| if pair.starts_with("code=") { "code=forged-code".to_string() } else { pair.to_string() })
        .collect::<Vec<_>>()
        .join("&");
    assert_refused(&second.gatehouse.get(port, &format!("{path}?{forged}")), 403, "invalid_grant");

    // ID tokens forged on their way from the real token endpoint are refused, each for its reason.
    for (mode, reason) in [
        ("signature", "InvalidSignature"),
        ("alg-none", "unreadable header"),
        ("hs256", "algorithm HS256 is not accepted"),
        ("iss", "InvalidIssuer"),
        ("aud", "aud does not name this client"),
        ("expired", "the token has expired"),
        ("nonce", "nonce is not this sign-in"),
    ] {
        op.tamper_id_tokens(Some(mode));
        let answer = sign_in(&mut Browser::default(), port, &op, "alice");
        assert_refused(&answer, 403, reason);
        assert!(op.log().contains(&format!("tampered an ID token ({mode})")), "{}", op.log());
    }
    op.tamper_id_tokens(None);

    // A changed claim re-applies the new template at the next sign-in.
    let mut changed = person("alice@example.org", "sales");
    changed["name"] = json!("Alice Pleasance Liddell");
    op.set_claims("alice", changed);
    assert_eq!(sign_in(&mut Browser::default(), port, &op, "alice").status, 303);
    let updated = mailbox(dir.path(), "alice@example.org").unwrap();
    assert_eq!(updated["template"], "sales");
    assert_eq!(updated["quota_mib"], 200);
    assert_eq!(updated["display_name"], "Alice Pleasance Liddell");

    // Refusals, each a clear message on the login page.
    let refused = |account: &str| sign_in(&mut Browser::default(), port, &op, account);
    assert_refused(&refused("mallory"), 403, "belongs to another account at corp");
    assert_refused(&refused("unverified"), 403, "has not verified the address bob@example.org");
    assert_refused(&refused("nodomain"), 403, "no mailbox was created for x@nowhere.example");
    assert_refused(&refused("full"), 403, "no mailbox was created for second@full.example");
    assert_refused(&refused("norole"), 403, "lacks roles = mail");
    assert_refused(&refused("local"), 403, "signs in with its password, not through corp");
    assert_refused(&refused("notemplate"), 403, "no template is mapped");
    for address in
        ["bob@example.org", "x@nowhere.example", "second@full.example", "norole@example.org", "nt@example.org"]
    {
        assert!(mailbox(dir.path(), address).is_none(), "{address} was not created");
    }
    let mut cancelled = Browser::default();
    let started = cancelled.start(port, START);
    let back = cancelled.at_provider(op.port, started.header("location").unwrap(), "alice", false);
    assert_refused(
        &cancelled.gatehouse.get(port, &path_of(&back)),
        401,
        "cancelled or refused at the identity provider",
    );
    support::eventually_logged(
        "the provider sign-ins are logged",
        || run(&["log", "auth", "--json"], ""),
        |log| log.contains("signed in at corp") && log.contains("belongs to another account"),
    );

    // Administrators and domain administrators by the role claim, each at their own login only.
    let admin_page = Client::default().get(port, "/admin");
    assert!(admin_page.body.contains("href=\"/oidc/sign-in/corp?for=admin\""), "{}", admin_page.body);
    let mut boss = Browser::default();
    let callback = boss.sign_in(port, op.port, "/oidc/sign-in/corp?for=admin", "boss");
    let answer = boss.gatehouse.get(port, &callback);
    assert_eq!(answer.header("location"), Some("/admin"), "{}", answer.body);
    let page = boss.gatehouse.get(port, "/admin");
    assert!(page.body.contains("boss@example.org") && page.body.contains("id=\"logout\""), "{}", page.body);
    let mut helper = Browser::default();
    let callback = helper.sign_in(port, op.port, "/oidc/sign-in/corp?for=domain_admin", "helper");
    assert_eq!(helper.gatehouse.get(port, &callback).header("location"), Some("/domainadmin"));
    let listed: Value = serde_json::from_str(&run(&["domain-admin", "list", "--json"], "")).unwrap();
    let made = listed.as_array().unwrap().iter().find(|a| a["username"] == "helper@example.org").expect("made");
    assert_eq!(
        (&made["domains"], &made["acl"], &made["auth_source"]),
        (&json!(["example.org"]), &json!(["login_as"]), &json!("corp"))
    );
    let refused_at = |area: &str, account: &str| {
        let mut browser = Browser::default();
        let callback = browser.sign_in(port, op.port, &format!("/oidc/sign-in/corp?for={area}"), account);
        browser.gatehouse.get(port, &callback)
    };
    assert_refused(&refused_at("admin", "alice"), 403, "gives alice@example.org no administrator role");
    assert_refused(&refused_at("domain_admin", "boss"), 403, "makes boss@example.org an administrator");
    let (code, _, _) = support::cli(dir.path(), DB, &["admin", "list", "--json"], "");
    assert_eq!(code, 0);
    let audit = run(&["log", "audit", "--json"], "");
    assert!(audit.contains("admin.add") && audit.contains("idp:corp"), "provider-made administrators are audited");
    // The administrator's logout goes through the provider and back to the administrator login.
    let csrf = boss.gatehouse.get(port, "/admin").form_value("csrf").unwrap();
    let out = boss.gatehouse.post(port, "/logout", &[("csrf", &csrf)]);
    let end_session =
        out.body.split("url=").nth(1).and_then(|rest| rest.split('"').next()).unwrap().replace("&#38;", "&");
    let confirm = boss.provider.get(op.port, &path_of(&end_session));
    let xsrf = confirm.form_value("xsrf").unwrap();
    let action = confirm.body.split("action=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_string();
    let done =
        boss.provider.send(op.port, "POST", &path_of(&action), &[], &form(&[("xsrf", &xsrf), ("logout", "yes")]));
    assert_eq!(done.header("location").map(path_of).as_deref(), Some("/oidc/signed-out"));
    assert_eq!(boss.gatehouse.get(port, "/oidc/signed-out").header("location"), Some("/admin?m=ended"));

    // Logout ends the session and sends the browser to the provider's logout, which comes back.
    let home = alice.gatehouse.get(port, "/");
    let csrf = home.form_value("csrf").expect("the logout form's token");
    let out = alice.gatehouse.post(port, "/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 200, "{}", out.body);
    let end_session = out
        .body
        .split("url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    assert!(end_session.starts_with(&format!("{}/session/end?", op.issuer)), "{end_session}");
    assert!(
        end_session.contains("id_token_hint=") && end_session.contains("post_logout_redirect_uri="),
        "{end_session}"
    );
    assert!(alice.gatehouse.get(port, "/").body.contains("id=\"login\""), "the Gatehouse session ended");
    let confirm = alice.provider.get(op.port, &path_of(&end_session));
    let xsrf = confirm.form_value("xsrf").unwrap_or_else(|| panic!("the provider's logout form: {}", confirm.body));
    let action = confirm.body.split("action=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_string();
    let body = form(&[("xsrf", &xsrf), ("logout", "yes")]);
    let done = alice.provider.send(op.port, "POST", &path_of(&action), &[], &body);
    let back = done.header("location").unwrap_or_else(|| panic!("{} {}", done.status, done.body)).to_string();
    assert_eq!(back, format!("{base}/oidc/signed-out"), "{end_session}");
    assert_eq!(alice.gatehouse.get(port, "/oidc/signed-out").header("location"), Some("/?m=ended"));

    // A logout at the provider alone reaches Gatehouse over the back channel: the session ends at once.
    let mut carol = Browser::default();
    assert_eq!(sign_in(&mut carol, port, &op, "alice").status, 303);
    assert!(carol.gatehouse.get(port, "/").body.contains("alice@example.org"));
    let end = format!("{}/session/end", op.issuer);
    let confirm = carol.provider.get(op.port, &path_of(&end));
    let xsrf = confirm.form_value("xsrf").unwrap();
    let action = confirm.body.split("action=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_string();
    let body = form(&[("xsrf", &xsrf), ("logout", "yes")]);
    let done = carol.provider.send(op.port, "POST", &path_of(&action), &[], &body);
    assert_eq!(done.status, 303, "the provider's logout: {}", done.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !carol.gatehouse.get(port, "/").body.contains("id=\"login\"") {
        if std::time::Instant::now() > deadline {
            let (_, stderr) = server.terminate();
            panic!("the back-channel logout did not end the session:\n{stderr}\n{}", op.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let bad = support::http::request(
        port,
        "POST",
        "/oidc/backchannel-logout/corp",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(&[("logout_token", "not.a.token")]),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);

    // A new signing key at the provider: the unknown kid makes Gatehouse fetch the keys again.
    op.rotate_key("key-2");
    std::thread::sleep(Duration::from_secs(11));
    let answer = sign_in(&mut Browser::default(), port, &op, "alice");
    assert_eq!(answer.status, 303, "a token signed with the new key is accepted: {}", answer.body);

    let (_, stderr) = server.terminate();
    assert!(!stderr.contains("client-secret"), "the client secret is never logged");
}

#[test]
fn the_login_page_can_send_mailbox_users_to_one_provider() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), DB, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["mailbox", "add", "local@example.org", "--password-stdin"], "localpw1\n");
    // A provider that does not answer (nothing listens on port 1).
    let settings = json!({ "issuer": "http://127.0.0.1:1", "client_id": "gatehouse", "public_client": true });
    run(&["idp", "add", "corp", "--type", "oidc", "--settings", &settings.to_string()], "");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("GATEHOUSE_WEB__PUBLIC_URL", base.as_str()),
        ("GATEHOUSE_WEB__SIGN_IN_PROVIDER", "corp"),
        ("GATEHOUSE_WEB__HIDE_LOCAL_LOGIN", "true"),
    ];
    let _server = Server::start_at(dir.path(), DB, Some("admin-pw"), &env, port);
    let mut browser = Client::default();

    let straight = browser.get(port, "/");
    assert_eq!(straight.status, 303);
    assert_eq!(straight.header("location"), Some(START));
    let down = browser.get(port, START);
    assert_refused(&down, 503, "The identity provider cannot be reached right now");
    assert!(!down.body.contains("id=\"login\""), "the password form stays hidden: {}", down.body);

    let hidden = browser.get(port, "/?m=ended");
    assert!(hidden.body.contains("You have been logged out") && hidden.body.contains("id=\"local-login\""));
    assert!(!hidden.body.contains("id=\"login\"") && hidden.body.contains("Sign in with corp"), "{}", hidden.body);
    let local = browser.get(port, "/?local=1");
    assert!(local.body.contains("id=\"login\""), "?local=1 shows the password form: {}", local.body);
    let csrf = local.form_value("csrf").unwrap();
    let login =
        browser.post(port, "/", &[("csrf", &csrf), ("username", "local@example.org"), ("password", "localpw1")]);
    assert_eq!(login.status, 303, "a local mailbox still logs in with its password: {}", login.body);
    assert!(browser.get(port, "/").body.contains("local@example.org"));
    let admin = Client::default().get(port, "/admin");
    assert!(admin.body.contains("id=\"login\"") && !admin.body.contains("sign-in-corp"), "{}", admin.body);
    let unknown = Client::default().get(port, "/oidc/sign-in/nobody");
    assert_refused(&unknown, 404, "There is no such identity provider");
}
