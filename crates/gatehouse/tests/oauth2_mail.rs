//! Mail clients log in with an access token from the real OpenID provider (npm `oidc-provider`) through real
//! Dovecot's oauth2 passdb, configured from `gatehouse config dovecot`: IMAP `AUTHENTICATE XOAUTH2` and
//! `OAUTHBEARER` open the mailbox bound to the token's account, with an opaque token (asked about at the
//! provider's introspection endpoint) and with a JWT (checked with the provider's keys); a token for another mailbox's name, for a
//! mailbox without IMAP, of a client whose tokens do not open mail, or one the provider does not know, fails
//! as a failure (never as Dovecot's temporary failure); SMTP submission through Postfix and Dovecot's auth
//! service takes the same token.

mod support;

use std::collections::BTreeMap;

use base64::Engine;
use gatehouse_testkit::dovecot::Dovecot;
use gatehouse_testkit::free_port;
use gatehouse_testkit::oidc::{OidcClient, OpenIdProvider, ProviderOptions};
use gatehouse_testkit::postfix::Postfix;
use serde_json::{Value, json};
use sha2::Digest;
use support::http::{form, request};
use support::mail::imap_oauth;
use support::sign_in::Browser;
use support::{Server, cli_ok};

const DB: &str = "sqlite://./data/gatehouse.db";
const APP_REDIRECT: &str = "http://127.0.0.1:9/cb";

/// A public client of a mail app (PKCE, no secret).
fn app(id: &str) -> OidcClient {
    OidcClient { secret: None, ..OidcClient::confidential(id, "", APP_REDIRECT) }
}

/// An access token for `account`, as the mail app `client` gets it: the code flow with PKCE at the provider (for
/// `resource`, when given: then a JWT).
fn access_token(op: &OpenIdProvider, client: &str, account: &str) -> String {
    access_token_for(op, client, account, None)
}

fn access_token_for(op: &OpenIdProvider, client: &str, account: &str, resource: Option<&str>) -> String {
    let verifier = "mail-app-verifier-0123456789-0123456789-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", APP_REDIRECT),
        ("scope", if resource.is_some() { "openid email mail" } else { "openid email" }),
        ("state", "app-state"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(resource) = resource {
        query.push(("resource", resource));
    }
    let authorize = format!("{}/auth?{}", op.issuer, form(&query));
    let back = Browser::default().at_provider(op.port, &authorize, account, true);
    let url = url::Url::parse(&back).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.to_string()).expect("a code");
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", APP_REDIRECT),
        ("client_id", client),
        ("code_verifier", verifier),
    ];
    if let Some(resource) = resource {
        fields.push(("resource", resource));
    }
    let body = form(&fields);
    let answer = request(op.port, "POST", "/token", &[("Content-Type", "application/x-www-form-urlencoded")], &body);
    let tokens: Value = serde_json::from_str(&answer.body).unwrap_or_else(|_| panic!("{}", answer.body));
    tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}")).to_string()
}

/// SMTP `AUTH XOAUTH2` with an initial response; the reply code (a failure's JSON challenge answered empty).
fn smtp_xoauth2(postfix: &Postfix, port: u16, user: &str, token: &str) -> u16 {
    let mut smtp = postfix.smtp_over_tls(port);
    let payload =
        base64::engine::general_purpose::STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
    let mut code = smtp.command(&format!("AUTH XOAUTH2 {payload}"));
    if code == 334 {
        code = smtp.command("");
    }
    smtp.command("QUIT");
    code
}

#[test]
fn mail_clients_log_in_with_provider_access_tokens_through_dovecot() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let clients = [
        OidcClient::confidential("gatehouse", "client-secret", &format!("{base}/oidc/callback")),
        app("mail-app"),
        app("jwt-app"),
        app("short-app"),
        app("other-app"),
    ];
    let mut accounts = BTreeMap::new();
    for (id, template) in [("alice", "staff"), ("bob", "smtponly")] {
        let claims =
            json!({ "email": format!("{id}@example.org"), "email_verified": true, "mailcow_template": template });
        accounts.insert(id.to_string(), claims);
    }
    let Some(op) = OpenIdProvider::start(&ProviderOptions::default(), &clients, &accounts) else { return };
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), DB, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["template", "add", "staff", "--protocols", "imap,smtp"], "");
    run(&["template", "add", "smtponly", "--protocols", "smtp"], "");
    let settings = json!({
        "issuer": op.issuer, "client_id": "gatehouse", "create_on_login": true, "access_token_clients": ["mail-app", "jwt-app", "short-app"],
    });
    run(
        &["idp", "add", "corp", "--type", "oidc", "--settings", &settings.to_string(), "--secret-stdin"],
        "client-secret\n",
    );
    run(&["idp", "map", "corp", "staff=staff", "smtponly=smtponly"], "");
    let server =
        Server::start_at(dir.path(), DB, Some("admin-pw"), &[("GATEHOUSE_WEB__PUBLIC_URL", base.as_str())], port);
    // The first sign-in in the browser binds each mailbox to its account.
    for account in ["alice", "bob"] {
        let mut browser = Browser::default();
        let callback = browser.sign_in(port, op.port, "/oidc/sign-in/corp", account);
        assert_eq!(browser.gatehouse.get(port, &callback).status, 303);
    }

    let internal = server.internal;
    let Some(dovecot) = Dovecot::start_with(|root| {
        let lua_path = root.join("gatehouse-passdb.lua");
        let args_path = root.join("gatehouse-oauth2.conf.ext");
        let lua_url = format!("http://127.0.0.1:{internal}/dovecot/auth");
        let oauth2_url = format!("http://127.0.0.1:{internal}/dovecot/oauth2");
        std::fs::write(&lua_path, run(&["config", "dovecot", "--part", "lua", "--url", &lua_url], "")).unwrap();
        let args = run(&["config", "dovecot", "--part", "oauth2-args", "--oauth2-url", &oauth2_url], "");
        std::fs::write(&args_path, args).unwrap();
        let conf = run(&["config", "dovecot", "--part", "conf", "--lua-path", lua_path.to_str().unwrap()], "");
        let oauth2 = run(&["config", "dovecot", "--part", "oauth2", "--oauth2-path", args_path.to_str().unwrap()], "");
        format!("{conf}\n{oauth2}")
    }) else {
        return;
    };

    let alice = access_token(&op, "mail-app", "alice");
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        let login = imap_oauth(dovecot.imap, mechanism, "alice@example.org", &alice);
        assert!(login.ok(), "{mechanism}: {}\n{}", login.line(), dovecot.log());
    }
    // A JWT access token (as Keycloak issues them) is checked with the provider's keys.
    let jwt = access_token_for(&op, "jwt-app", "alice", Some(gatehouse_testkit::oidc::JWT_RESOURCE));
    assert_eq!(jwt.split('.').count(), 3, "a JWT: {jwt}");
    let login = imap_oauth(dovecot.imap, "XOAUTH2", "alice@example.org", &jwt);
    assert!(login.ok(), "JWT: {}\n{}", login.line(), dovecot.log());
    let failed = |login: support::mail::Login, what: &str| {
        assert!(!login.ok(), "{what} was let in");
        assert!(login.line().contains("AUTHENTICATIONFAILED"), "{what} must fail as a failure: {}", login.line());
    };
    failed(imap_oauth(dovecot.imap, "XOAUTH2", "bob@example.org", &alice), "alice's token for bob");
    let bob = access_token(&op, "mail-app", "bob");
    failed(imap_oauth(dovecot.imap, "XOAUTH2", "bob@example.org", &bob), "a mailbox without IMAP");
    let foreign = access_token(&op, "other-app", "alice");
    failed(imap_oauth(dovecot.imap, "XOAUTH2", "alice@example.org", &foreign), "another client's token");
    failed(
        imap_oauth(dovecot.imap, "OAUTHBEARER", "alice@example.org", "not-a-token-the-provider-issued"),
        "an unknown token",
    );

    // SMTP submission through Postfix, which asks Dovecot's auth service: the same token.
    let unused = free_port();
    let Some(postfix) = support::start_postfix(dir.path(), DB, unused, dovecot.auth) else { return };
    assert_eq!(smtp_xoauth2(&postfix, postfix.via_dovecot, "alice@example.org", &alice), 235, "{}", postfix.log());
    assert_eq!(smtp_xoauth2(&postfix, postfix.via_dovecot, "alice@example.org", &foreign), 535);

    // Deactivating the provider refuses the tokens it issued, remembered or not (Dovecot's cache flushed).
    run(&["idp", "edit", "corp", "--active", "false"], "");
    server.caught_up();
    dovecot.doveadm(&["auth", "cache", "flush"]);
    failed(imap_oauth(dovecot.imap, "XOAUTH2", "alice@example.org", &alice), "a token of a deactivated provider");
    run(&["idp", "edit", "corp", "--active", "true"], "");
    server.caught_up();
    dovecot.doveadm(&["auth", "cache", "flush"]);
    assert!(imap_oauth(dovecot.imap, "XOAUTH2", "alice@example.org", &alice).ok(), "active again");

    // Deactivating the mailbox refuses its token once the server has read the change (Dovecot's cache flushed).
    run(&["mailbox", "edit", "alice@example.org", "--active", "false"], "");
    server.caught_up();
    dovecot.doveadm(&["auth", "cache", "flush"]);
    failed(imap_oauth(dovecot.imap, "XOAUTH2", "alice@example.org", &alice), "a deactivated mailbox");

    support::eventually_logged(
        "the token logins are logged",
        || run(&["log", "auth", "--json"], ""),
        |log| log.contains("AccessToken(\\\"corp\\\")") && log.contains("whose tokens do not open mail"),
    );
    let (_, stderr) = server.terminate();
    assert!(!stderr.contains(&alice) && !stderr.contains(&jwt), "tokens are never logged");
}
