//! OpenID Connect providers as identity sources, against the real npm `oidc-provider`: added with
//! `gatehouse idp add --type oidc|keycloak`, checked with `gatehouse idp test` (discovery with the exact issuer
//! check, the endpoints, PKCE, the signing keys), the client secret never shown, and a provider that is down
//! or names another issuer reported as a failed step, and "ignore TLS errors" shown as a warning wherever the
//! provider is shown.

mod support;

use std::collections::BTreeMap;

use gatehouse_testkit::oidc::{OidcClient, OpenIdProvider, ProviderOptions};
use serde_json::json;
use support::http::Client;
use support::{Server, cli, cli_ok};

const DB: &str = "sqlite://./data/gatehouse.db";

fn accounts() -> BTreeMap<String, serde_json::Value> {
    [("alice".to_string(), json!({ "email": "alice@example.org", "email_verified": true }))].into_iter().collect()
}

#[test]
fn oidc_and_keycloak_providers_are_added_and_tested_against_the_real_provider() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let clients = [OidcClient::confidential("gatehouse", "client-secret", "http://127.0.0.1:1/oidc/callback")];
    let Some(generic) = OpenIdProvider::start(&ProviderOptions::default(), &clients, &accounts()) else { return };
    let Some(keycloak) = OpenIdProvider::start(&ProviderOptions::keycloak("mail"), &clients, &accounts()) else {
        return;
    };

    // A generic provider with discovery and a client secret.
    let settings = json!({ "issuer": generic.issuer, "client_id": "gatehouse", "label": "Company login" });
    let add = ["idp", "add", "corp", "--type", "oidc", "--settings", &settings.to_string(), "--secret-stdin"];
    cli_ok(dir.path(), DB, &add, "client-secret\n");
    // Without web.public_url the provider cannot send browsers back: the test says so.
    let (code, out, _) = cli(dir.path(), DB, &["idp", "test", "corp"], "");
    assert!(code != 0 && out.contains("FAIL  browser sign-in: web.public_url is not set"), "{out}");
    std::fs::write(dir.path().join("gatehouse.toml"), "[web]\npublic_url = \"https://mail.example.org/\"\n").unwrap();
    let tested = cli_ok(dir.path(), DB, &["idp", "test", "corp"], "");
    assert!(
        tested.contains(
            "ok    browser sign-in: register the redirect URI https://mail.example.org/oidc/callback, the post-logout \
             redirect URI https://mail.example.org/oidc/signed-out and, for back-channel logout, \
             https://mail.example.org/oidc/backchannel-logout/corp"
        ),
        "{tested}"
    );
    for line in [
        "ok    client secret: stored".to_string(),
        format!(
            "ok    endpoints: from the discovery document: sign-in {}/auth, token {}/token",
            generic.issuer, generic.issuer
        ),
        "ok    PKCE: S256 supported".to_string(),
        "ok    signing keys: 1 usable: key-1 (RS256)".to_string(),
    ] {
        assert!(tested.contains(&line), "missing {line:?} in:\n{tested}");
    }
    let shown = cli_ok(dir.path(), DB, &["idp", "show", "corp"], "");
    assert!(!shown.contains("client-secret"), "the secret is write-only: {shown}");
    assert!(shown.contains("\"client_secret\""), "its name is listed: {shown}");

    // A Keycloak realm, as a public client: the issuer follows from the server and the realm.
    let server_url = format!("http://127.0.0.1:{}", keycloak.port);
    let settings =
        json!({ "server_url": server_url, "realm": "mail", "client_id": "gatehouse", "public_client": true });
    cli_ok(dir.path(), DB, &["idp", "add", "kc", "--type", "keycloak", "--settings", &settings.to_string()], "");
    let tested = cli_ok(dir.path(), DB, &["idp", "test", "kc"], "");
    assert!(tested.contains("ok    client secret: a public client"), "{tested}");
    let realm = format!("{server_url}/realms/mail");
    assert!(tested.contains(&format!("sign-in {realm}/protocol/openid-connect/auth")), "{tested}");
    assert!(tested.contains(&format!("sign-out {realm}/protocol/openid-connect/logout")), "{tested}");

    // The issuer must be the provider's exactly: a trailing slash is another issuer.
    let settings = json!({ "issuer": format!("{}/", generic.issuer), "client_id": "gatehouse", "public_client": true });
    cli_ok(dir.path(), DB, &["idp", "add", "slash", "--type", "oidc", "--settings", &settings.to_string()], "");
    let (code, out, _) = cli(dir.path(), DB, &["idp", "test", "slash"], "");
    assert_ne!(code, 0);
    assert!(out.contains("FAIL  discovery:") && out.contains("equal exactly"), "{out}");

    // Typos and impossible settings are refused before anything is stored.
    let typo = json!({ "issuer": generic.issuer, "client_id": "gatehouse", "scope": "openid" });
    let (code, _, err) =
        cli(dir.path(), DB, &["idp", "add", "typo", "--type", "oidc", "--settings", &typo.to_string()], "x\n");
    assert_ne!(code, 0);
    assert!(err.contains("unknown oidc setting(s): scope"), "{err}");
    let sync =
        json!({ "issuer": generic.issuer, "client_id": "gatehouse", "public_client": true, "periodic_sync": true });
    let (code, _, err) =
        cli(dir.path(), DB, &["idp", "add", "sync", "--type", "oidc", "--settings", &sync.to_string()], "");
    assert_ne!(code, 0);
    assert!(err.contains("no user list"), "{err}");
    let listed = cli_ok(dir.path(), DB, &["idp", "list"], "");
    assert!(!listed.contains("typo") && !listed.contains("sync"), "{listed}");

    // "Ignore TLS errors" is a warning wherever the provider is shown: idp test, show, list and the admin pages.
    let insecure =
        json!({ "issuer": generic.issuer, "client_id": "gatehouse", "public_client": true, "ignore_tls_errors": true });
    cli_ok(dir.path(), DB, &["idp", "add", "lab", "--type", "oidc", "--settings", &insecure.to_string()], "");
    let tested = cli_ok(dir.path(), DB, &["idp", "test", "lab"], "");
    assert!(tested.contains("WARNING: TLS certificates are not checked"), "{tested}");
    let warning = "warning: lab: TLS certificates are not checked (ignore_tls_errors)";
    for args in [&["idp", "show", "lab"][..], &["idp", "list"][..]] {
        let (code, _, err) = cli(dir.path(), DB, args, "");
        assert_eq!(code, 0);
        assert!(err.contains(warning), "{args:?}: {err}");
    }
    let (_, _, err) = cli(dir.path(), DB, &["idp", "show", "corp"], "");
    assert!(!err.contains("warning"), "a checked provider has no warning: {err}");
    let server = Server::start(dir.path(), DB, Some("admin-pw"));
    let mut admin = Client::default();
    assert_eq!(admin.login(server.public, "/admin", "admin", "admin-pw").status, 303);
    let list = admin.get(server.public, "/admin/identity-providers");
    assert_eq!(list.body.matches("TLS certificates not checked").count(), 1, "{}", list.body);
    let page = admin.get(server.public, "/admin/identity-providers/lab");
    assert!(page.body.contains("id=\"tls-warning\""), "{}", page.body);
    assert!(!admin.get(server.public, "/admin/identity-providers/corp").body.contains("tls-warning"));

    // The admin pages add and edit OpenID Connect providers: the settings as JSON, checked as the command line
    // checks them, the client secret write-only.
    let post = |admin: &mut Client, path: &str, form_id: &str, fields: &[(&str, &str)]| {
        let page = admin.get(server.public, path);
        assert!(page.body.contains(&format!("id=\"{form_id}\"")), "{}", page.body);
        let csrf = page.form_value("csrf").unwrap();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let target =
            if form_id == "new-openid" { "/admin/identity-providers/openid".to_string() } else { path.to_string() };
        let answer = admin.post(server.public, &target, &all);
        let location = answer.header("location").unwrap_or_else(|| panic!("{} {}", answer.status, answer.body));
        admin.get(server.public, location).body
    };
    let settings = json!({ "server_url": format!("http://127.0.0.1:{}", keycloak.port), "realm": "mail",
                           "client_id": "gatehouse", "label": "Keycloak" });
    let typo = json!({ "server_url": "http://127.0.0.1:1", "realm": "mail", "client_id": "x", "realms": "y" });
    let text = typo.to_string();
    let refused = post(
        &mut admin,
        "/admin/identity-providers",
        "new-openid",
        &[("name", "web-kc"), ("kind", "keycloak"), ("settings", &text), ("client_secret", "web-secret")],
    );
    assert!(refused.contains("unknown keycloak setting(s): realms"), "{refused}");
    let text = settings.to_string();
    let missing = post(
        &mut admin,
        "/admin/identity-providers",
        "new-openid",
        &[("name", "web-kc"), ("kind", "keycloak"), ("settings", &text), ("client_secret", "")],
    );
    assert!(missing.contains("client secret is required"), "{missing}");
    let added = post(
        &mut admin,
        "/admin/identity-providers",
        "new-openid",
        &[("name", "web-kc"), ("kind", "keycloak"), ("settings", &text), ("client_secret", "web-secret")],
    );
    assert!(added.contains("Identity provider web-kc added") && added.contains("id=\"edit-settings\""), "{added}");
    assert!(!added.contains("web-secret"), "the secret is never shown");
    let mut edited = settings.clone();
    edited["label"] = json!("Company Keycloak");
    let text = edited.to_string();
    let saved = post(
        &mut admin,
        "/admin/identity-providers/web-kc",
        "edit-settings",
        &[("active", "on"), ("settings", &text), ("client_secret", "")],
    );
    assert!(saved.contains("Identity provider web-kc saved") && saved.contains("Company Keycloak"), "{saved}");
    let tested = cli_ok(dir.path(), DB, &["idp", "test", "web-kc"], "");
    assert!(tested.contains("ok    client secret: stored") && tested.contains("ok    signing keys"), "{tested}");
    drop(server);

    // A provider that is down is a failed step that says so, not a crash or a hang.
    drop(generic);
    let (code, out, _) = cli(dir.path(), DB, &["idp", "test", "corp"], "");
    assert_ne!(code, 0);
    assert!(out.contains("FAIL  discovery:") && out.contains("cannot connect"), "{out}");
}
