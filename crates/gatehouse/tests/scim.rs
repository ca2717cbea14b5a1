//! SCIM 2.0 push provisioning at `/scim/v2` of a real `gatehouse serve`: tokens made with `gatehouse
//! scim-token add`, Users created, found by filter, paged, patched (Entra ID's and Okta's shapes), replaced
//! with ETags, deactivated and deleted (= deactivated, the mailbox kept), the provider's template rules and the
//! domains' limits applied, a token kept to its domains and its provider's mailboxes, a revoked token refused —
//! and the PyPI conformance checker scim2-tester run against the endpoint.

mod support;

use serde_json::{Value, json};
use support::http::{Response, request};
use support::{Server, cli, cli_ok};

const DB: &str = "sqlite://./data/gatehouse.db";
const SCIM_JSON: &str = "application/scim+json";

struct Scim {
    port: u16,
    token: String,
}

impl Scim {
    fn send(&self, method: &str, path: &str, body: Option<Value>, extra: &[(&str, &str)]) -> Response {
        let authorization = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", authorization.as_str()), ("Content-Type", SCIM_JSON)];
        headers.extend_from_slice(extra);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(self.port, method, &format!("/scim/v2{path}"), &headers, &body)
    }

    fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.send(method, path, body, &[]);
        let parsed = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        (response.status, parsed)
    }
}

fn user(user_name: &str, extra: Value) -> Value {
    let mut user = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name });
    for (key, value) in extra.as_object().unwrap() {
        user[key] = value.clone();
    }
    user
}

fn patch(operations: Value) -> Value {
    json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations })
}

fn mailbox(dir: &std::path::Path, address: &str) -> Option<Value> {
    let listed: Value = serde_json::from_str(&cli_ok(dir, DB, &["mailbox", "list", "--json"], "")).unwrap();
    listed.as_array().unwrap().iter().find(|m| m["address"] == address).cloned()
}

fn scim_error(body: &Value, status: u16) -> bool {
    body["schemas"] == json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        && body["status"].as_str() == Some(status.to_string().as_str())
}

#[test]
fn identity_providers_push_users_over_scim() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let run = |args: &[&str]| cli_ok(dir.path(), DB, args, "");
    run(&["domain", "add", "example.org"]);
    run(&["domain", "add", "small.org", "--max-mailboxes", "1"]);
    run(&["domain", "add", "other.org"]);
    run(&["template", "add", "staff", "--quota-mib", "512", "--protocols", "imap,smtp"]);
    run(&["template", "add", "it", "--quota-mib", "2048", "--protocols", "imap"]);
    let settings = json!({
        "issuer": "https://sso.example.org", "client_id": "gatehouse", "public_client": true,
        "template_claim": "userType", "default_template": "staff",
    });
    run(&["idp", "add", "authentik", "--type", "oidc", "--settings", &settings.to_string()]);
    run(&["idp", "map", "authentik", "engineering=it"]);
    cli_ok(dir.path(), DB, &["mailbox", "add", "carol@example.org", "--password-stdin"], "carolpw\n");

    // Tokens: limited to domains, tied to an OpenID Connect provider, shown once, listed without secrets.
    let (code, _, stderr) = cli(dir.path(), DB, &["scim-token", "add", "push", "--idp", "authentik"], "");
    assert!(code != 0 && stderr.contains("--domains"), "a token needs domains: {stderr}");
    let (code, _, stderr) =
        cli(dir.path(), DB, &["scim-token", "add", "x", "--idp", "nope", "--domains", "example.org"], "");
    assert!(code != 0 && stderr.contains("identity provider 'nope' does not exist"), "{stderr}");
    let token = run(&["scim-token", "add", "push", "--idp", "authentik", "--domains", "example.org,small.org"]);
    let token = token.trim().to_string();
    assert!(token.starts_with("gs_"), "{token}");
    let other = run(&["scim-token", "add", "other", "--idp", "authentik", "--domains", "other.org"]).trim().to_string();
    let (code, unhosted, stderr) =
        cli(dir.path(), DB, &["scim-token", "add", "unhosted", "--idp", "authentik", "--domains", "gone.org"], "");
    assert!(code == 0 && stderr.contains("domain gone.org does not exist"), "{stderr}");
    let unhosted = unhosted.trim().to_string();
    let listed = run(&["scim-token", "list", "--json"]);
    assert!(listed.contains("\"push\"") && !listed.contains(&token[10..]), "no secrets listed: {listed}");
    let api_key = run(&["api-key", "add", "ops", "--read-write"]).trim().to_string();

    let server = Server::start(dir.path(), DB, Some("admin-pw"));
    let scim = Scim { port: server.public, token: token.clone() };
    let stranger = |token: &str| Scim { port: server.public, token: token.to_string() };

    // Only SCIM tokens open /scim/v2: none, garbage and a REST API key are refused with a SCIM error.
    for wrong in ["", "gs_1_nope", api_key.as_str()] {
        let (status, body) = stranger(wrong).json("GET", "/Users", None);
        assert!(status == 401 && scim_error(&body, 401), "{wrong}: {status} {body}");
    }
    let refused =
        request(server.public, "GET", "/api/v1/domains", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(refused.status, 401, "a SCIM token is no API key");

    // Discovery.
    let config = scim.send("GET", "/ServiceProviderConfig", None, &[]);
    assert_eq!((config.status, config.header("content-type")), (200, Some(SCIM_JSON)));
    let config: Value = serde_json::from_str(&config.body).unwrap();
    assert_eq!((&config["patch"]["supported"], &config["bulk"]["supported"]), (&json!(true), &json!(false)));
    let (status, types) = scim.json("GET", "/ResourceTypes", None);
    assert_eq!((status, &types["Resources"][0]["endpoint"]), (200, &json!("/Users")));
    let (status, _) = scim.json("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", None);
    assert_eq!(status, 200);
    let (status, body) = scim.json("POST", "/ServiceProviderConfig", Some(json!({})));
    assert!(status == 405 && scim_error(&body, 405), "{status} {body}");

    // Create: the template comes from the provider's mapping of userType, else its default.
    let alice = user(
        "alice@example.org",
        json!({
            "externalId": "ak-1", "userType": "engineering", "active": true,
            "name": { "givenName": "Alice", "familyName": "Example" },
            "emails": [{ "value": "alice@example.org", "type": "work", "primary": true }],
        }),
    );
    let created = scim.send("POST", "/Users", Some(alice.clone()), &[]);
    assert_eq!(created.status, 201, "{}", created.body);
    let created_user: Value = serde_json::from_str(&created.body).unwrap();
    let alice_id = created_user["id"].as_str().unwrap().to_string();
    assert_eq!(created.header("location"), Some(format!("/scim/v2/Users/{alice_id}").as_str()));
    assert_eq!(created.header("etag"), created_user["meta"]["version"].as_str());
    assert_eq!((&created_user["userName"], &created_user["externalId"]), (&json!("alice@example.org"), &json!("ak-1")));
    let stored = mailbox(dir.path(), "alice@example.org").expect("alice's mailbox");
    assert_eq!(
        (&stored["auth_source"], &stored["template"], &stored["quota_mib"]),
        (&json!("authentik"), &json!("it"), &json!(2048))
    );
    assert_eq!(stored["display_name"], "Alice Example");
    let (status, body) = scim.json("POST", "/Users", Some(alice.clone()));
    assert!(status == 409 && body["scimType"] == "uniqueness", "{status} {body}");
    // userName need not be an address: then the primary email is the mailbox.
    let bob = user("bob", json!({ "emails": [{ "value": "bob@example.org", "primary": true }], "displayName": "Bob" }));
    let (status, bob) = scim.json("POST", "/Users", Some(bob));
    assert_eq!(status, 201, "{bob}");
    let bob_id = bob["id"].as_str().unwrap().to_string();
    assert_eq!(mailbox(dir.path(), "bob@example.org").unwrap()["template"], "staff", "the default template");
    // A userName is unique among the provider's Users, case-insensitively, whatever the address.
    let second_bob = user("BOB", json!({ "emails": [{ "value": "bob2@example.org", "primary": true }] }));
    let (status, body) = scim.json("POST", "/Users", Some(second_bob));
    assert!(status == 409 && body["scimType"] == "uniqueness", "{status} {body}");
    assert!(mailbox(dir.path(), "bob2@example.org").is_none(), "nothing is created");
    let (status, body) = scim.json("POST", "/Users", Some(user("nobody", json!({}))));
    assert!(status == 400 && body["scimType"] == "invalidValue", "{status} {body}");
    // A local mailbox is not the provider's to take.
    let (status, body) = scim.json("POST", "/Users", Some(user("carol@example.org", json!({}))));
    assert!(status == 409 && body["detail"].as_str().unwrap().contains("not managed"), "{body}");

    // Filters and paging.
    for (filter, expected) in [
        ("userName eq \"ALICE@example.org\"", Some(&alice_id)),
        ("emails.value eq \"bob@example.org\"", Some(&bob_id)),
        ("userName eq \"Bob\"", Some(&bob_id)),
        ("userName eq \"bob@example.org\"", None),
        (&format!("id eq \"{bob_id}\""), Some(&bob_id)),
        ("displayName eq \"bob\"", Some(&bob_id)),
        ("externalId eq \"ak-1\"", Some(&alice_id)),
        ("externalId eq \"AK-1\"", None),
        ("userName eq \"carol@example.org\"", None),
    ] {
        let query: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let (status, list) = scim.json("GET", &format!("/Users?filter={query}"), None);
        assert_eq!(status, 200, "{filter}: {list}");
        let ids: Vec<&str> = list["Resources"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
        assert_eq!(ids, expected.map(|id| vec![id.as_str()]).unwrap_or_default(), "{filter}");
    }
    let (status, body) = scim.json("GET", "/Users?filter=userName%20co%20%22a%22", None);
    assert!(status == 400 && body["scimType"] == "invalidFilter", "{body}");
    let (_, page) = scim.json("GET", "/Users?startIndex=2&count=1", None);
    assert_eq!((&page["totalResults"], &page["itemsPerPage"], &page["startIndex"]), (&json!(2), &json!(1), &json!(2)));
    let (_, only) = scim.json("GET", &format!("/Users/{alice_id}?attributes=userName"), None);
    assert!(only.get("userName").is_some() && only.get("emails").is_none() && only["id"] == json!(alice_id), "{only}");

    // PATCH as Entra ID sends it (capitalised op, "False" as text), and as Okta does (no path).
    let (status, patched) = scim.json(
        "PATCH",
        &format!("/Users/{alice_id}"),
        Some(patch(json!([{ "op": "Replace", "path": "active", "value": "False" }]))),
    );
    assert_eq!((status, &patched["active"]), (200, &json!(false)), "{patched}");
    assert_eq!(mailbox(dir.path(), "alice@example.org").unwrap()["active"], false);
    let (_, patched) = scim.json(
        "PATCH",
        &format!("/Users/{alice_id}"),
        Some(patch(json!([{ "op": "replace", "value": { "active": true, "displayName": "Alice E." } }]))),
    );
    assert_eq!((&patched["active"], &patched["displayName"]), (&json!(true), &json!("Alice E.")));
    let stored = mailbox(dir.path(), "alice@example.org").unwrap();
    assert_eq!((&stored["active"], &stored["display_name"]), (&json!(true), &json!("Alice E.")));
    // Attributes Gatehouse does not use are kept and returned, as Entra ID's default mappings PATCH them.
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let (status, patched) = scim.json(
        "PATCH",
        &format!("/Users/{alice_id}"),
        Some(patch(json!([
            { "op": "Add", "path": format!("{enterprise}:department"), "value": "Research" },
            { "op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+49 30 1234" },
            { "op": "Replace", "path": "password", "value": "never-kept" },
        ]))),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched[enterprise]["department"], "Research");
    assert_eq!(patched["phoneNumbers"], json!([{ "type": "work", "value": "+49 30 1234" }]));
    assert!(patched["schemas"].as_array().unwrap().contains(&json!(enterprise)), "{patched}");
    assert!(patched.get("password").is_none() && !patched.to_string().contains("never-kept"));
    // An administrator's deactivation is not the provider's to undo.
    run(&["mailbox", "edit", "bob@example.org", "--active", "false"]);
    let (_, bob_now) = scim.json(
        "PATCH",
        &format!("/Users/{bob_id}"),
        Some(patch(json!([{ "op": "replace", "path": "active", "value": true }]))),
    );
    assert_eq!(bob_now["active"], false, "{bob_now}");
    let (status, body) = scim.json(
        "PATCH",
        &format!("/Users/{alice_id}"),
        Some(patch(json!([{ "op": "replace", "path": "userName", "value": "alicia@example.org" }]))),
    );
    assert!(status == 400 && body["scimType"] == "mutability", "{body}");

    // PUT with ETags: a stale version is refused, the current one accepted.
    let (_, current) = scim.json("GET", &format!("/Users/{alice_id}"), None);
    let version = current["meta"]["version"].as_str().unwrap().to_string();
    let replacement = user("alice@example.org", json!({ "userType": "sales", "active": true, "displayName": "A" }));
    let stale = scim.send("PUT", &format!("/Users/{alice_id}"), Some(replacement.clone()), &[("If-Match", "W/\"0\"")]);
    assert_eq!(stale.status, 412, "{}", stale.body);
    let put = scim.send("PUT", &format!("/Users/{alice_id}"), Some(replacement), &[("If-Match", &version)]);
    assert_eq!(put.status, 200, "{}", put.body);
    let replaced: Value = serde_json::from_str(&put.body).unwrap();
    assert!(replaced.get("emails").is_none() && replaced.get("externalId").is_none(), "PUT replaces: {replaced}");
    assert_ne!(replaced["meta"]["version"], json!(version));

    // The domains' limits apply; a token stays inside its domains and its provider's mailboxes.
    let (status, _) = scim.json("POST", "/Users", Some(user("one@small.org", json!({}))));
    assert_eq!(status, 201);
    let (status, body) = scim.json("POST", "/Users", Some(user("two@small.org", json!({}))));
    assert!(status == 400 && body["detail"].as_str().unwrap().contains("allowed mailboxes"), "{body}");
    let (status, body) = scim.json("POST", "/Users", Some(user("x@other.org", json!({}))));
    assert!(status == 403 && scim_error(&body, 403), "{body}");
    let (status, body) = stranger(&unhosted).json("POST", "/Users", Some(user("x@gone.org", json!({}))));
    assert!(status == 400 && body["detail"].as_str().unwrap().contains("domain 'gone.org' does not exist"), "{body}");
    let outsider = stranger(&other);
    let (status, _) = outsider.json("GET", &format!("/Users/{alice_id}"), None);
    assert_eq!(status, 404, "another domain's token does not see alice");
    let (_, list) = outsider.json("GET", "/Users", None);
    assert_eq!(list["totalResults"], 0);
    let (status, _) = outsider.json("DELETE", &format!("/Users/{alice_id}"), None);
    assert_eq!(status, 404);

    // DELETE deactivates: the User is gone for SCIM, the mailbox (and its mail) stays, inactive.
    let deleted = scim.send("DELETE", &format!("/Users/{alice_id}"), None, &[]);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let (status, body) = scim.json("GET", &format!("/Users/{alice_id}"), None);
    assert!(status == 404 && scim_error(&body, 404), "{body}");
    let stored = mailbox(dir.path(), "alice@example.org").expect("the mailbox is kept");
    assert_eq!(stored["active"], false);
    let (_, list) = scim.json("GET", "/Users?filter=userName%20eq%20%22alice@example.org%22", None);
    assert_eq!(list["totalResults"], 0);
    // Created again later, it is the same mailbox, active again.
    let (status, again) = scim.json("POST", "/Users", Some(user("alice@example.org", json!({ "active": true }))));
    assert_eq!((status, again["id"].as_str()), (201, Some(alice_id.as_str())), "{again}");
    assert_eq!(mailbox(dir.path(), "alice@example.org").unwrap()["active"], true);
    // bob, deactivated by an administrator, stays inactive through a delete and a new create.
    assert_eq!(scim.send("DELETE", &format!("/Users/{bob_id}"), None, &[]).status, 204);
    let bob_again = user("bob", json!({ "emails": [{ "value": "bob@example.org", "primary": true }], "active": true }));
    let (status, bob_again) = scim.json("POST", "/Users", Some(bob_again));
    assert_eq!((status, &bob_again["active"]), (201, &json!(false)), "{bob_again}");

    // Everything is audited under the token's name; a revoked token stops at once.
    let audit = run(&["log", "audit", "--json", "--limit", "200"]);
    assert!(audit.contains("scim:push") && audit.contains("scim_token.add"), "{audit}");
    run(&["scim-token", "revoke", "push"]);
    let (status, _) = scim.json("GET", "/Users", None);
    assert_eq!(status, 401);

    // The provider deactivated: its tokens are refused.
    run(&["idp", "edit", "authentik", "--active", "false"]);
    let (status, body) = outsider.json("GET", "/Users", None);
    assert!(status == 403 && body["detail"].as_str().unwrap().contains("inactive"), "{body}");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn the_scim_endpoint_passes_the_conformance_checker() {
    let dir = tempfile::tempdir().unwrap();
    support::init(dir.path(), DB, "admin-pw");
    let run = |args: &[&str]| cli_ok(dir.path(), DB, args, "");
    run(&["domain", "add", "example.org"]);
    run(&["template", "add", "staff"]);
    let settings = json!({
        "issuer": "https://sso.example.org", "client_id": "gatehouse", "public_client": true,
        "default_template": "staff",
    });
    run(&["idp", "add", "okta", "--type", "oidc", "--settings", &settings.to_string()]);
    let token = run(&["scim-token", "add", "tester", "--idp", "okta", "--domains", "example.org"]).trim().to_string();
    let server = Server::start(dir.path(), DB, Some("admin-pw"));
    let url = format!("http://127.0.0.1:{}/scim/v2", server.public);
    let Some(result) = gatehouse_testkit::scim::check_server(&url, &token, "scim-check@example.org") else { return };
    eprintln!("{}", result.report);
    assert!(result.passed, "scim2-tester found failures:\n{}", result.report);
    assert!(result.report.contains("SUCCESS"), "{}", result.report);
    let (status, _) = server.terminate();
    assert!(status.success());
}
