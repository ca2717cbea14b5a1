//! Access tokens a mail client got from the provider (XOAUTH2 and OAUTHBEARER through Dovecot): a JWT is
//! checked with the provider's keys (`iss` exact, `exp`, the client it was issued to in `azp` or `client_id`,
//! the scope); any other token is asked about at the provider's introspection endpoint (RFC 7662, as this
//! client). Either way the token must belong to one of the clients whose tokens open mail, and it names the
//! account (`sub`) whose bound mailbox it opens.

use gatehouse_core::Error;
use gatehouse_core::clock::now;
use serde_json::{Map, Value};

use super::OidcProvider;
use super::id_token::LEEWAY_SECONDS;
use super::sign_in::{Refusal, SignInResult};

/// What a valid access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The account (`sub`).
    pub subject: String,
    /// The client it was issued to.
    pub client: String,
    /// Unix seconds after which it is worth nothing.
    pub expires_at: i64,
}

/// Whether `token` has the form of a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .take(2)
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// The issuer a JWT names, read without checking anything (to pick the provider that must check it).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let claims = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token).ok()?.claims;
    claims.get("iss").and_then(Value::as_str).map(str::to_string)
}

impl OidcProvider {
    /// Checks an access token a mail client presents.
    pub async fn check_access_token(&self, token: &str) -> SignInResult<AccessGrant> {
        let (endpoints, _) = self.cached_endpoints().await?;
        let claims = if looks_like_jwt(token) && unverified_issuer(token).as_deref() == Some(self.issuer.as_str()) {
            let check = |keys: &jsonwebtoken::jwk::JwkSet| super::id_token::verify_access(token, keys, &self.issuer);
            match self.check_signed(&endpoints, check).await? {
                Ok(claims) => claims,
                Err(refusal) => return Ok(Err(refusal)),
            }
        } else {
            let Some(url) = endpoints.introspection.clone() else {
                return Ok(Err(Refusal("the provider has no introspection endpoint for opaque tokens".into())));
            };
            let claims = self.introspect(&url, token).await?;
            if claims.get("active") != Some(&Value::Bool(true)) {
                return Ok(Err(Refusal("the provider says the token is not active".into())));
            }
            if let Some(issuer) = claims.get("iss").and_then(Value::as_str)
                && issuer != self.issuer
            {
                return Ok(Err(Refusal("the token was issued by another issuer".into())));
            }
            claims
        };
        Ok(self.grant_from(&claims))
    }

    /// What the token's claims grant, by the rules every kind of token follows.
    fn grant_from(&self, claims: &Map<String, Value>) -> Result<AccessGrant, Refusal> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
        let Some(subject) = text("sub") else { return Err(Refusal("the token names no account (sub)".into())) };
        let Some(client) = text("client_id").or_else(|| text("azp")) else {
            return Err(Refusal("the token names no client (client_id or azp)".into()));
        };
        if !self.client.accepts_tokens_of(client) {
            return Err(Refusal(format!("the token was issued to client '{client}', whose tokens do not open mail")));
        }
        let Some(expires_at) = claims.get("exp").and_then(Value::as_i64) else {
            return Err(Refusal("the token has no expiry (exp)".into()));
        };
        if expires_at + LEEWAY_SECONDS as i64 <= now() {
            return Err(Refusal("the token has expired".into()));
        }
        if let Some(scope) = &self.client.access_token_scope
            && !text("scope").is_some_and(|scopes| scopes.split(' ').any(|s| s == scope))
        {
            return Err(Refusal(format!("the token lacks the scope {scope}")));
        }
        Ok(AccessGrant { subject: subject.to_string(), client: client.to_string(), expires_at })
    }

    /// RFC 7662: what the provider says about `token`, asked as this client.
    async fn introspect(&self, url: &str, token: &str) -> Result<Map<String, Value>, Error> {
        let unavailable = |detail: String| Error::Unavailable(format!("the introspection endpoint {url}: {detail}"));
        let request = self.http.post(url).header(reqwest::header::ACCEPT, "application/json");
        let mut form = vec![("token", token.to_string()), ("token_type_hint", "access_token".to_string())];
        let request = self.client_authentication(request, &mut form, false);
        let response = request.form(&form).send().await.map_err(|err| unavailable(super::describe(&err)))?;
        super::read_json(response, unavailable).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_opens_mail_only_for_listed_clients_with_the_scope_before_it_expires() {
        let settings = serde_json::from_value(json!({
            "issuer": "https://login.example.org", "client_id": "gatehouse", "public_client": true,
            "access_token_clients": ["mail-app"], "access_token_scope": "mail",
        }))
        .unwrap();
        let provider = OidcProvider::generic(settings, None).unwrap();
        let claims = |patch: serde_json::Value| {
            let mut claims =
                json!({ "sub": "u1", "client_id": "mail-app", "scope": "openid mail", "exp": now() + 300 });
            for (key, value) in patch.as_object().unwrap() {
                claims[key] = value.clone();
            }
            claims.as_object().unwrap().clone()
        };
        let grant = provider.grant_from(&claims(json!({}))).unwrap();
        assert_eq!((grant.subject.as_str(), grant.client.as_str()), ("u1", "mail-app"));
        let refused = |patch| provider.grant_from(&claims(patch)).unwrap_err().0;
        assert!(refused(json!({ "client_id": "gatehouse" })).contains("whose tokens do not open mail"));
        assert!(refused(json!({ "scope": "openid email" })).contains("lacks the scope mail"));
        assert!(refused(json!({ "exp": now() - 3600 })).contains("expired"));
        assert!(refused(json!({ "sub": "" })).contains("names no account"));
        let by_azp = claims(json!({ "client_id": null, "azp": "mail-app" }));
        assert!(provider.grant_from(&by_azp).is_ok(), "azp names the client when client_id is absent");
    }

    #[test]
    fn jwts_are_told_from_opaque_tokens() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL29wIn0.c2ln"));
        assert!(!looks_like_jwt("opaque-token_123"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a b.c.d"));
        assert_eq!(
            unverified_issuer("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL29wIn0.c2ln").as_deref(),
            Some("https://op")
        );
    }
}
