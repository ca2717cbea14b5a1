//! The browser sign-in at a provider (OpenID Connect Core §3.1, the authorization code flow): the
//! authorization request with `state`, `nonce` and a PKCE S256 challenge; the code exchanged at the token
//! endpoint; the ID token checked against the provider's keys (cached, re-fetched once on an unknown `kid`,
//! at most once per cooldown); userinfo read with the access token (its `sub` must be the ID token's); and the
//! claims turned into an account: the address (verified unless that check is turned off), the required claim
//! value, the template values and the name. RP-initiated logout and back-channel logout tokens are here too.
//!
//! Provider faults (unreachable, an error page, an answer that is not the JSON expected) are
//! [`Error::Unavailable`]; what the provider or its tokens say against the user is [`Refusal`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use gatehouse_core::Error;
use gatehouse_core::clock::now;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::OidcProvider;
use super::config::OidcClientSettings;
use super::discovery::{DiscoveryDocument, ProviderEndpoints};
use super::id_token::{self, Expected, Refused};
use crate::ExternalAccount;

/// How long the discovery document and the endpoints are kept.
const METADATA_TTL: Duration = Duration::from_secs(15 * 60);
/// How long the signing keys are kept when every token names a known key.
const KEYS_TTL: Duration = Duration::from_secs(60 * 60);
/// The shortest time between two key fetches caused by an unknown `kid`.
pub const KEY_REFETCH_COOLDOWN: Duration = Duration::from_secs(10);
/// The oldest ID token accepted (a sign-in itself lasts at most ten minutes).
const ID_TOKEN_MAX_AGE_SECONDS: i64 = 10 * 60;
/// The event a back-channel logout token carries (Back-Channel Logout 1.0 §2.4).
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What the provider or its tokens say against a sign-in: shown to the user and written to the auth log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sign-in's outcome: an account, a refusal, or a provider fault.
pub type SignInResult<T> = Result<Result<T, Refusal>, Error>;

/// The provider's metadata and keys as last read.
#[derive(Default)]
pub(super) struct ProviderCache {
    metadata: Mutex<Option<(Instant, ProviderEndpoints, Option<DiscoveryDocument>)>>,
    keys: Mutex<Option<(Instant, JwkSet)>>,
}

/// A sign-in to send the browser to.
#[derive(Debug, Clone)]
pub struct SignInStart {
    /// The provider's authorization URL with every parameter.
    pub url: String,
    /// The `state` (kept hashed, bound to the browser).
    pub state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
}

/// A sign-in the provider completed and Gatehouse checked.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account, from the ID token's and userinfo's claims.
    pub account: ExternalAccount,
    /// The administrator role the claims give (see `admin_roles`), if any.
    pub admin: Option<gatehouse_engine::AdminGrant>,
    /// The provider's session (`sid`), when it names one.
    pub session_id: Option<String>,
    /// The ID token (the hint of an RP-initiated logout).
    pub id_token: String,
}

/// A back-channel logout: which provider session or user it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// The provider session (`sid`).
    pub session_id: Option<String>,
    /// The user (`sub`).
    pub subject: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// 32 random bytes, URL-safe base64 without padding (43 characters: a valid PKCE verifier, RFC 7636 §4.1).
fn random_value() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 challenge of a PKCE verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `base` with the query pairs added (a `?` or `&` as `base` needs).
fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{query}")
}

impl OidcProvider {
    /// The endpoints, from the cache while it is fresh.
    pub(super) async fn cached_endpoints(&self) -> Result<(ProviderEndpoints, Option<DiscoveryDocument>), Error> {
        if let Some((at, endpoints, document)) = self.cache.metadata.lock().expect("cache lock").as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok((endpoints.clone(), document.clone()));
        }
        let (endpoints, document) = self.endpoints().await?;
        *self.cache.metadata.lock().expect("cache lock") = Some((Instant::now(), endpoints.clone(), document.clone()));
        Ok((endpoints, document))
    }

    /// The signing keys: cached, or fetched when `refresh` is asked and the last fetch is older than the
    /// cooldown. Keys of a kind jsonwebtoken cannot read are left out.
    async fn signing_keys(&self, endpoints: &ProviderEndpoints, refresh: bool) -> Result<(JwkSet, bool), Error> {
        if let Some((at, keys)) = self.cache.keys.lock().expect("cache lock").as_ref() {
            let stale = at.elapsed() >= KEYS_TTL;
            let may_refresh = refresh && at.elapsed() >= KEY_REFETCH_COOLDOWN;
            if !stale && !may_refresh {
                return Ok((keys.clone(), false));
            }
        }
        let document: Value = self.get_json("the signing keys", &endpoints.jwks_uri).await?;
        let keys: Vec<Jwk> = document
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(|key| serde_json::from_value(key.clone()).ok()).collect())
            .unwrap_or_default();
        let set = JwkSet { keys };
        *self.cache.keys.lock().expect("cache lock") = Some((Instant::now(), set.clone()));
        Ok((set, true))
    }

    /// Checks a token with the provider's keys; an unknown `kid` re-fetches the keys once (not within the
    /// cooldown) and tries again.
    pub(super) async fn check_signed<T>(
        &self,
        endpoints: &ProviderEndpoints,
        check: impl Fn(&JwkSet) -> Result<T, Refused>,
    ) -> SignInResult<T> {
        let (keys, fresh) = self.signing_keys(endpoints, false).await?;
        match check(&keys) {
            Ok(claims) => Ok(Ok(claims)),
            Err(Refused::UnknownKey(kid)) if !fresh => {
                let (keys, fetched) = self.signing_keys(endpoints, true).await?;
                if !fetched {
                    return Ok(Err(Refusal(format!(
                        "{} (the keys were fetched less than {} s ago)",
                        Refused::UnknownKey(kid),
                        KEY_REFETCH_COOLDOWN.as_secs()
                    ))));
                }
                Ok(check(&keys).map_err(|refused| Refusal(refused.to_string())))
            }
            Err(refused) => Ok(Err(Refusal(refused.to_string()))),
        }
    }

    /// Starts a sign-in: the authorization URL for `redirect_uri` with a fresh `state`, `nonce` and PKCE
    /// challenge (S256).
    pub async fn start_sign_in(&self, redirect_uri: &str) -> Result<SignInStart, Error> {
        let (endpoints, _) = self.cached_endpoints().await?;
        let (state, nonce, pkce_verifier) = (random_value(), random_value(), random_value());
        let challenge = pkce_challenge(&pkce_verifier);
        let scope = self.client.scope_text();
        let url = with_query(
            &endpoints.authorization,
            &[
                ("response_type", "code"),
                ("client_id", &self.client.client_id),
                ("redirect_uri", redirect_uri),
                ("scope", &scope),
                ("state", &state),
                ("nonce", &nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        Ok(SignInStart { url, state, nonce, pkce_verifier })
    }

    /// Finishes a sign-in: exchanges `code` (with the PKCE verifier), checks the ID token against the sign-in's
    /// `nonce`, reads userinfo, and turns the claims into an account.
    pub async fn finish_sign_in(
        &self,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
    ) -> SignInResult<SignedIn> {
        let (endpoints, document) = self.cached_endpoints().await?;
        let tokens = match self.exchange_code(&endpoints, document.as_ref(), code, pkce_verifier, redirect_uri).await? {
            Ok(tokens) => tokens,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let Some(id_token) = tokens.id_token else {
            return Ok(Err(Refusal("the provider sent no ID token (is openid among the scopes?)".into())));
        };
        let expected = Expected {
            issuer: &self.issuer,
            client_id: &self.client.client_id,
            nonce,
            now: now(),
            max_age_seconds: ID_TOKEN_MAX_AGE_SECONDS,
        };
        let mut claims =
            match self.check_signed(&endpoints, |keys| id_token::verify(&id_token, keys, &expected)).await? {
                Ok(claims) => claims,
                Err(refusal) => return Ok(Err(refusal)),
            };
        if let Some(userinfo) = &endpoints.userinfo {
            let info = self.userinfo(userinfo, &tokens.access_token).await?;
            if info.get("sub") != claims.get("sub") {
                return Ok(Err(Refusal("userinfo names another subject (sub) than the ID token".into())));
            }
            for (name, value) in info {
                if !matches!(name.as_str(), "iss" | "aud" | "sub" | "exp" | "iat" | "nonce" | "azp") {
                    claims.insert(name, value);
                }
            }
        }
        let session_id = claims.get("sid").and_then(Value::as_str).map(str::to_string);
        let admin = admin_grant(&self.client, &claims);
        Ok(account_from_claims(&self.client, &claims).map(|account| SignedIn { account, admin, session_id, id_token }))
    }

    /// The token request (RFC 6749 §4.1.3 with RFC 7636's verifier): the client authenticates with HTTP Basic
    /// (or in the form, when the provider offers only that), a public client names itself in the form.
    async fn exchange_code(
        &self,
        endpoints: &ProviderEndpoints,
        document: Option<&DiscoveryDocument>,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
    ) -> SignInResult<TokenResponse> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect_uri.to_string()),
            ("code_verifier", pkce_verifier.to_string()),
        ];
        let post_only = document.is_some_and(|d| {
            let methods = &d.token_endpoint_auth_methods_supported;
            !methods.is_empty()
                && !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post")
        });
        let request = self.http.post(&endpoints.token).header(reqwest::header::ACCEPT, "application/json");
        let request = self.client_authentication(request, &mut form, post_only);
        let url = &endpoints.token;
        let unavailable = |detail: String| Error::Unavailable(format!("the token endpoint {url}: {detail}"));
        let response = request.form(&form).send().await.map_err(|err| unavailable(super::describe(&err)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|err| unavailable(super::describe(&err)))?;
        if body.len() > super::MAX_RESPONSE_BYTES {
            return Err(unavailable("the answer is too large".into()));
        }
        if status.is_success() {
            return serde_json::from_slice::<TokenResponse>(&body)
                .map(Ok)
                .map_err(|err| unavailable(format!("not the JSON expected: {err}")));
        }
        // RFC 6749 §5.2: a 400 (or 401 for client authentication) with an error code.
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(error) if status.is_client_error() && error.error != "invalid_client" => {
                let description = error.error_description.map(|d| format!(" ({d})")).unwrap_or_default();
                Ok(Err(Refusal(format!("the provider refused the code: {}{description}", error.error))))
            }
            // A wrong client secret is the operator's to fix, not the user's fault.
            Ok(error) => Err(unavailable(format!("HTTP {status}: {}", error.error))),
            Err(_) => Err(unavailable(format!("HTTP {status}"))),
        }
    }

    /// The client's authentication on a request to the token or introspection endpoint (RFC 6749 §2.3.1): HTTP
    /// Basic with the form-encoded id and secret, or both in the form (`post_only`, for providers that offer
    /// only that); a public client names itself in the form.
    pub(crate) fn client_authentication(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
        post_only: bool,
    ) -> reqwest::RequestBuilder {
        match &self.client_secret {
            Some(secret) if !self.client.public_client => {
                if post_only {
                    form.push(("client_id", self.client.client_id.clone()));
                    form.push(("client_secret", secret.expose().to_string()));
                    request
                } else {
                    let encode = |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
                    request.basic_auth(encode(&self.client.client_id), Some(encode(secret.expose())))
                }
            }
            _ => {
                form.push(("client_id", self.client.client_id.clone()));
                request
            }
        }
    }

    /// The userinfo claims for an access token.
    async fn userinfo(&self, url: &str, access_token: &str) -> Result<Map<String, Value>, Error> {
        let unavailable = |detail: String| Error::Unavailable(format!("userinfo at {url}: {detail}"));
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| unavailable(super::describe(&err)))?;
        super::read_json(response, unavailable).await
    }

    /// Where the browser signs out at the provider (RP-initiated logout 1.0), or `None` when it names no
    /// end-session endpoint.
    pub async fn end_session_url(&self, id_token_hint: Option<&str>, after: &str) -> Result<Option<String>, Error> {
        let (endpoints, _) = self.cached_endpoints().await?;
        let Some(end_session) = endpoints.end_session else { return Ok(None) };
        let mut pairs = vec![("client_id", self.client.client_id.as_str()), ("post_logout_redirect_uri", after)];
        if let Some(hint) = id_token_hint {
            pairs.push(("id_token_hint", hint));
        }
        Ok(Some(with_query(&end_session, &pairs)))
    }

    /// Checks a back-channel logout token (Back-Channel Logout 1.0 §2.6): signed by the provider, `iss` the
    /// issuer, `aud` this client, `iat` recent, `exp` (when given) ahead, the logout event, a `sid` or a `sub`,
    /// and no `nonce`.
    pub async fn check_logout_token(&self, token: &str) -> SignInResult<LogoutRequest> {
        let (endpoints, _) = self.cached_endpoints().await?;
        let expected = Expected {
            issuer: &self.issuer,
            client_id: &self.client.client_id,
            nonce: "",
            now: now(),
            max_age_seconds: ID_TOKEN_MAX_AGE_SECONDS,
        };
        let claims = match self.check_signed(&endpoints, |keys| id_token::verify_logout(token, keys, &expected)).await?
        {
            Ok(claims) => claims,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let events = claims.get("events").and_then(Value::as_object);
        if !events.is_some_and(|events| events.get(BACKCHANNEL_LOGOUT_EVENT).is_some_and(Value::is_object)) {
            return Ok(Err(Refusal("the logout token carries no back-channel logout event".into())));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
        let request = LogoutRequest { session_id: text("sid"), subject: text("sub") };
        if request.session_id.is_none() && request.subject.is_none() {
            return Ok(Err(Refusal("the logout token names neither a session (sid) nor a user (sub)".into())));
        }
        Ok(Ok(request))
    }
}

/// A claim by name; a dotted name (`realm_access.roles`) reaches into objects when no claim has the name itself.
fn claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A claim's values: a string is one value, an array its string (and number) members.
fn claim_values(value: Option<&Value>) -> Vec<String> {
    let one = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(value) => one(value).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The administrator role the claims give: an administrator value wins; domain-administrator values add up
/// (their domains, and `login_as` when any of them has it).
pub fn admin_grant(client: &OidcClientSettings, claims: &Map<String, Value>) -> Option<gatehouse_engine::AdminGrant> {
    let roles = client.admin_roles.as_ref()?;
    let values = claim_values(claim(claims, &roles.claim));
    if roles.administrator.iter().any(|value| values.contains(value)) {
        return Some(gatehouse_engine::AdminGrant {
            role: gatehouse_core::AdminRole::Admin,
            domains: Vec::new(),
            login_as: true,
        });
    }
    let matching: Vec<_> = roles.domain_administrators.iter().filter(|role| values.contains(&role.value)).collect();
    if matching.is_empty() {
        return None;
    }
    let mut domains: Vec<String> = matching.iter().flat_map(|role| role.domains.iter().cloned()).collect();
    domains.sort();
    domains.dedup();
    Some(gatehouse_engine::AdminGrant {
        role: gatehouse_core::AdminRole::DomainAdmin,
        domains,
        login_as: matching.iter().any(|role| role.login_as),
    })
}

/// The account the claims describe, or why they do not let the user in.
pub fn account_from_claims(
    client: &OidcClientSettings,
    claims: &Map<String, Value>,
) -> Result<ExternalAccount, Refusal> {
    let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("").to_string();
    let Some(address) = claim(claims, &client.address_claim).and_then(Value::as_str).map(str::trim) else {
        return Err(Refusal(format!("the provider gave no mail address (claim {})", client.address_claim)));
    };
    if client.require_verified_email {
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
            _ => false,
        };
        if !verified {
            return Err(Refusal(format!("the provider has not verified the address {address} (email_verified)")));
        }
    }
    if let Some(required) = &client.required_claim
        && !claim_values(claim(claims, &required.claim)).contains(&required.value)
    {
        return Err(Refusal(format!(
            "the account lacks {} = {}, which signing in here requires",
            required.claim, required.value
        )));
    }
    let display_name = claims.get("name").and_then(Value::as_str).map(str::to_string).or_else(|| {
        let part = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("").trim().to_string();
        let joined = format!("{} {}", part("given_name"), part("family_name")).trim().to_string();
        (!joined.is_empty()).then_some(joined)
    });
    Ok(ExternalAccount {
        subject,
        address: address.to_lowercase(),
        display_name,
        enabled: true,
        template_values: claim_values(claim(claims, &client.template_claim)),
        attributes: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(patch: Value) -> OidcClientSettings {
        let mut value = json!({ "client_id": "gatehouse" });
        for (key, item) in patch.as_object().unwrap() {
            value[key] = item.clone();
        }
        serde_json::from_value(value).unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn claims_give_the_account_and_the_rules_refuse() {
        let settings = client(json!({ "required_claim": { "claim": "realm_access.roles", "value": "mail" } }));
        let good = claims(json!({
            "sub": "u1", "email": "Alice@Example.org", "email_verified": true, "given_name": "Alice",
            "family_name": "Liddell", "mailcow_template": ["none", "staff"], "realm_access": { "roles": ["mail"] }
        }));
        let account = account_from_claims(&settings, &good).unwrap();
        assert_eq!(account.address, "alice@example.org");
        assert_eq!(account.subject, "u1");
        assert_eq!(account.display_name.as_deref(), Some("Alice Liddell"));
        assert_eq!(account.template_values, ["none", "staff"]);

        let mut unverified = good.clone();
        unverified.insert("email_verified".into(), json!(false));
        assert!(account_from_claims(&settings, &unverified).unwrap_err().0.contains("not verified"));
        unverified.insert("email_verified".into(), json!("true"));
        assert!(account_from_claims(&settings, &unverified).is_ok(), "a string \"true\" counts");
        let mut no_role = good.clone();
        no_role.insert("realm_access".into(), json!({ "roles": ["other"] }));
        assert!(account_from_claims(&settings, &no_role).unwrap_err().0.contains("realm_access.roles = mail"));
        let mut no_mail = good.clone();
        no_mail.remove("email");
        assert!(account_from_claims(&settings, &no_mail).unwrap_err().0.contains("no mail address"));

        let lax = client(json!({ "require_verified_email": false, "template_claim": "group" }));
        let mut plain = good.clone();
        plain.remove("email_verified");
        plain.insert("group".into(), json!("staff"));
        let account = account_from_claims(&lax, &plain).unwrap();
        assert_eq!(account.template_values, ["staff"]);
    }

    #[test]
    fn admin_roles_come_from_a_claim() {
        let settings = client(json!({ "admin_roles": { "claim": "groups", "administrator": ["mail-admins"],
            "domain_administrators": [
                { "value": "ex-admins", "domains": ["example.org"], "login_as": true },
                { "value": "other-admins", "domains": ["other.org", "example.org"] } ] } }));
        let grant = |groups: Value| admin_grant(&settings, &claims(json!({ "groups": groups })));
        assert_eq!(grant(json!(["staff"])), None);
        assert_eq!(grant(json!(["ex-admins", "mail-admins"])).unwrap().role, gatehouse_core::AdminRole::Admin);
        let domain = grant(json!(["other-admins", "ex-admins"])).unwrap();
        assert_eq!(domain.role, gatehouse_core::AdminRole::DomainAdmin);
        assert_eq!(domain.domains, ["example.org", "other.org"]);
        assert!(domain.login_as);
        assert!(!grant(json!("other-admins")).unwrap().login_as);
        assert_eq!(admin_grant(&client(json!({})), &claims(json!({ "groups": ["mail-admins"] }))), None);
    }

    #[test]
    fn pkce_challenges_follow_rfc_7636() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = random_value();
        assert_eq!(verifier.len(), 43);
        assert_ne!(verifier, random_value());
        assert_eq!(with_query("https://op/auth", &[("a", "b c")]), "https://op/auth?a=b+c");
        assert_eq!(with_query("https://op/auth?x=1", &[("a", "&")]), "https://op/auth?x=1&a=%26");
    }
}
