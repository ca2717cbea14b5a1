//! A private OpenID provider for tests: npm `oidc-provider` (the package in `crates/gatehouse-testkit/oidc`,
//! installed there by `npm ci`, which `scripts/test` runs) on loopback, with the clients and accounts a test
//! gives. The issuer may carry a path: `/realms/<realm>` with Keycloak's endpoint paths
//! (`/protocol/openid-connect/…`) stands in for Keycloak's OIDC endpoints. Accounts sign in through the
//! provider's development login form (any password); their claims live in a file the provider reads at every
//! sign-in, so a test can change a claim between two sign-ins ([`OpenIdProvider::set_claims`]).
//!
//! With [`KeycloakAdminApi`] the same process serves Keycloak's admin REST API for the realm
//! (`oidc/keycloak-admin.mjs`, written from Keycloak's documented API, since Keycloak itself cannot run here):
//! users from a file the test rewrites ([`OpenIdProvider::set_keycloak_users`]), bearer tokens issued by the
//! provider's client-credentials grant, and 403 for service accounts without `view-users`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{free_port, program, require_peer, wait_for_port};

/// The resource indicator (RFC 8707) whose access tokens the provider issues as JWTs (scope `mail`), as
/// Keycloak issues its access tokens; without it they are opaque.
pub const JWT_RESOURCE: &str = "urn:gatehouse:mail";

/// A client registered at the provider.
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret`; `None` for a public client.
    pub secret: Option<String>,
    /// Where the provider may send the browser back with a code.
    pub redirect_uris: Vec<String>,
    /// Where the provider may send the browser after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// The client's back-channel logout endpoint, if any.
    pub backchannel_logout_uri: Option<String>,
}

impl OidcClient {
    /// A confidential client with one redirect URI.
    pub fn confidential(id: &str, secret: &str, redirect_uri: &str) -> Self {
        OidcClient {
            id: id.into(),
            secret: Some(secret.into()),
            redirect_uris: vec![redirect_uri.into()],
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
        }
    }

    /// Gatehouse at `base` (its `web.public_url`) as a confidential client of the provider it knows as
    /// `provider`: the callback, the post-logout page and the back-channel logout endpoint registered.
    pub fn gatehouse(base: &str, provider: &str, secret: &str) -> Self {
        OidcClient {
            post_logout_redirect_uris: vec![format!("{base}/oidc/signed-out")],
            backchannel_logout_uri: Some(format!("{base}/oidc/backchannel-logout/{provider}")),
            ..OidcClient::confidential("gatehouse", secret, &format!("{base}/oidc/callback"))
        }
    }

    fn metadata(&self) -> Value {
        let mut client = json!({
            "client_id": self.id,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types": ["code"],
        });
        match &self.secret {
            Some(secret) => client["client_secret"] = json!(secret),
            None => client["token_endpoint_auth_method"] = json!("none"),
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            client["backchannel_logout_uri"] = json!(uri);
            client["backchannel_logout_session_required"] = json!(true);
        }
        client
    }
}

/// How the provider is set up.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// The issuer's path: "" for a generic provider, `/realms/<realm>` for a Keycloak stand-in.
    pub issuer_path: String,
    /// Keycloak's endpoint paths (`/protocol/openid-connect/auth`, `…/token`, `…/certs`, …).
    pub keycloak_routes: bool,
    /// Whether authorization requests must carry a PKCE challenge.
    pub pkce_required: bool,
    /// The scopes and the claims each releases (`openid` → `sub` is always there).
    pub claims: BTreeMap<String, Vec<String>>,
    /// The id of the signing key.
    pub key_id: String,
    /// Keycloak's admin REST API for the realm, when set.
    pub keycloak_admin: Option<KeycloakAdminApi>,
}

/// What Keycloak's admin REST API stand-in holds besides its users.
#[derive(Debug, Clone, Default)]
pub struct KeycloakAdminApi {
    /// Service accounts by client id, with their `realm-management` roles (`view-users`, …).
    pub service_accounts: BTreeMap<String, Vec<String>>,
    /// When set, only these attributes are returned, as Keycloak 24+ returns only what its user profile declares.
    pub user_profile: Option<Vec<String>>,
    /// The realm's clients, as (internal id, clientId), for client roles.
    pub clients: Vec<(String, String)>,
    /// Realm roles that exist even when no user holds them.
    pub realm_roles: Vec<String>,
}

impl KeycloakAdminApi {
    /// An admin API where the service account of `client` may view users.
    pub fn viewable_by(client: &str) -> Self {
        KeycloakAdminApi {
            service_accounts: BTreeMap::from([(client.to_string(), vec!["view-users".to_string()])]),
            ..KeycloakAdminApi::default()
        }
    }
}

/// A Keycloak user as its admin API represents it (`UserRepresentation`), with the roles it holds directly.
#[derive(Debug, Clone, Default)]
pub struct KeycloakUser {
    /// The user's id (the `sub` of its tokens).
    pub id: String,
    /// `username`.
    pub username: String,
    /// `email`, if any.
    pub email: Option<String>,
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `enabled`.
    pub enabled: bool,
    /// `attributes`: each a list of values.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Realm roles held directly.
    pub realm_roles: Vec<String>,
    /// Client roles held directly, by clientId.
    pub client_roles: BTreeMap<String, Vec<String>>,
}

impl KeycloakUser {
    /// An enabled user `username` with `email` and the given attributes.
    pub fn new(username: &str, email: &str, attributes: &[(&str, &str)]) -> Self {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in attributes {
            map.entry(name.to_string()).or_default().push(value.to_string());
        }
        KeycloakUser {
            id: format!("id-{username}"),
            username: username.to_string(),
            email: Some(email.to_string()),
            enabled: true,
            attributes: map,
            ..KeycloakUser::default()
        }
    }

    /// The JSON the stand-in serves (plus the role lists it keeps to itself).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "emailVerified": self.email.is_some(),
            "firstName": self.first_name,
            "lastName": self.last_name,
            "enabled": self.enabled,
            "createdTimestamp": 1_767_225_600_000_i64,
            "attributes": self.attributes,
            "realmRoles": self.realm_roles,
            "clientRoles": self.client_roles,
        })
    }
}

impl Default for ProviderOptions {
    fn default() -> Self {
        let claims = [
            ("openid", vec!["sub"]),
            ("email", vec!["email", "email_verified"]),
            ("profile", vec!["name", "mailcow_template", "roles"]),
        ];
        ProviderOptions {
            issuer_path: String::new(),
            keycloak_routes: false,
            pkce_required: true,
            claims: claims
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
                .collect(),
            key_id: "key-1".into(),
            keycloak_admin: None,
        }
    }
}

impl ProviderOptions {
    /// Keycloak's realm `realm`: issuer `/realms/<realm>`, Keycloak's endpoint paths.
    pub fn keycloak(realm: &str) -> Self {
        ProviderOptions { issuer_path: format!("/realms/{realm}"), keycloak_routes: true, ..ProviderOptions::default() }
    }
}

/// A running provider, stopped on drop.
pub struct OpenIdProvider {
    child: Option<Child>,
    dir: tempfile::TempDir,
    settings: Value,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its issuer URL, as its discovery document and tokens name it.
    pub issuer: String,
}

/// The folder of the provider's npm package.
fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

impl OpenIdProvider {
    /// Starts the provider with `clients` and `accounts` (account id → claims; `sub` defaults to the id).
    /// `None` (after [`require_peer`]) when node or the installed package is missing.
    pub fn start(
        options: &ProviderOptions,
        clients: &[OidcClient],
        accounts: &BTreeMap<String, Value>,
    ) -> Option<OpenIdProvider> {
        if program("node").is_none() {
            require_peer("oidc-provider", "node is not installed");
            return None;
        }
        if !package_dir().join("node_modules/oidc-provider/package.json").is_file() {
            let why = format!("run `npm ci` in {} (scripts/test does)", package_dir().display());
            require_peer("oidc-provider", &why);
            return None;
        }
        let dir = tempfile::Builder::new().prefix("gatehouse-oidc-").tempdir().unwrap();
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}{}", options.issuer_path);
        let accounts_file = dir.path().join("accounts.json");
        std::fs::write(&accounts_file, serde_json::to_vec(accounts).unwrap()).unwrap();
        let keycloak_admin = options.keycloak_admin.as_ref().map(|admin| {
            let users_file = dir.path().join("keycloak-users.json");
            std::fs::write(&users_file, b"[]").unwrap();
            let realm = options.issuer_path.strip_prefix("/realms/").expect("a Keycloak realm's issuer path");
            json!({
                "realm": realm,
                "users_file": users_file,
                "service_accounts": admin.service_accounts,
                "user_profile": admin.user_profile,
                "clients": admin.clients.iter().map(|(id, client_id)| json!({ "id": id, "clientId": client_id }))
                    .collect::<Vec<_>>(),
                "realm_roles": admin.realm_roles,
                "requests_file": dir.path().join("keycloak-requests.log"),
            })
        });
        let settings = json!({
            "issuer": issuer,
            "port": port,
            "keycloak_routes": options.keycloak_routes,
            "clients": clients.iter().map(OidcClient::metadata).collect::<Vec<_>>(),
            "accounts_file": accounts_file,
            "claims": options.claims,
            "pkce_required": options.pkce_required,
            "kid": options.key_id,
            "tamper_file": dir.path().join("tamper.json"),
            "jwt_resource": JWT_RESOURCE,
            "keycloak_admin": keycloak_admin,
        });
        let mut provider = OpenIdProvider { child: None, dir, settings, port, issuer };
        provider.launch();
        Some(provider)
    }

    /// Keycloak's realm `realm` with its admin REST API, whose service account is the confidential client
    /// `client` (secret `secret`, allowed to view users); no users yet ([`OpenIdProvider::set_keycloak_users`]).
    pub fn start_keycloak(realm: &str, client: &str, secret: &str) -> Option<OpenIdProvider> {
        let mut options = ProviderOptions::keycloak(realm);
        options.keycloak_admin = Some(KeycloakAdminApi::viewable_by(client));
        let clients = [OidcClient::confidential(client, secret, "https://mail.example.org/oidc/callback")];
        OpenIdProvider::start(&options, &clients, &BTreeMap::new())
    }

    fn launch(&mut self) {
        let settings_file = self.dir.path().join("settings.json");
        std::fs::write(&settings_file, serde_json::to_vec(&self.settings).unwrap()).unwrap();
        let log = std::fs::File::create(self.dir.path().join("provider.log")).unwrap();
        let child = Command::new(program("node").expect("node"))
            .current_dir(package_dir())
            .arg("provider.mjs")
            .arg(&settings_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start node");
        self.child = Some(child);
        // Node loads the provider and makes its key in a second or two, much longer on a machine busy with the
        // rest of the suite: wait up to a minute, but stop at once if it exits.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !wait_for_port(self.port, Duration::from_millis(500)) {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok()).flatten();
            assert!(exited.is_none(), "oidc-provider exited ({exited:?}):\n{}", self.log());
            assert!(std::time::Instant::now() < deadline, "oidc-provider did not start within 60 s:\n{}", self.log());
        }
    }

    /// Restarts the provider with a new signing key named `key_id` (a key rotation). Sessions and codes at the
    /// provider are lost, as its store is in memory.
    pub fn rotate_key(&mut self, key_id: &str) {
        self.stop();
        self.settings["kid"] = json!(key_id);
        self.launch();
    }

    /// Spoils the ID token of every token response from now on as `mode` says (`signature`, `alg-none`,
    /// `hs256` signed with the client's secret, `iss`, `aud`, `expired`, `nonce`: re-signed with the provider's
    /// key); `None` stops it.
    pub fn tamper_id_tokens(&self, mode: Option<&str>) {
        let file = self.dir.path().join("tamper.json");
        match mode {
            Some(mode) => std::fs::write(&file, serde_json::to_vec(&json!({ "mode": mode })).unwrap()).unwrap(),
            None => {
                let _ = std::fs::remove_file(&file);
            }
        }
    }

    /// Replaces the claims of `account` (read at its next sign-in).
    pub fn set_claims(&self, account: &str, claims: Value) {
        let file = self.dir.path().join("accounts.json");
        let mut accounts: BTreeMap<String, Value> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        accounts.insert(account.into(), claims);
        std::fs::write(&file, serde_json::to_vec(&accounts).unwrap()).unwrap();
    }

    /// Replaces every user of the Keycloak admin API (read at its next request).
    pub fn set_keycloak_users(&self, users: &[KeycloakUser]) {
        let json: Vec<Value> = users.iter().map(KeycloakUser::to_json).collect();
        let file = self.dir.path().join("keycloak-users.json");
        let staged = self.dir.path().join("keycloak-users.json.new");
        std::fs::write(&staged, serde_json::to_vec(&json).unwrap()).unwrap();
        std::fs::rename(staged, file).unwrap();
    }

    /// The admin API's requests so far, one line each: method, path with query, status.
    pub fn keycloak_requests(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("keycloak-requests.log")).unwrap_or_default();
        text.lines().map(String::from).collect()
    }

    /// Restarts the provider with the admin API's user profile declaring only `attributes` (`None`: every
    /// attribute shown). Tokens issued before are forgotten, as by any restart.
    pub fn set_user_profile(&mut self, attributes: Option<&[&str]>) {
        self.stop();
        self.settings["keycloak_admin"]["user_profile"] = json!(attributes);
        self.launch();
    }

    /// Stops the provider (a server that is down); [`OpenIdProvider::resume`] starts it again.
    pub fn halt(&mut self) {
        self.stop();
    }

    /// Starts a halted provider again on the same port, with a fresh in-memory store (tokens issued before
    /// are unknown to it).
    pub fn resume(&mut self) {
        self.launch();
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// What the provider wrote to its output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        crate::wait_for_port_closed(self.port, Duration::from_secs(10));
    }
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
