//! The ID token check of OpenID Connect Core 1.0 §3.1.3.7, on jsonwebtoken (the signature and `iss`) with the
//! rest written out here so each rule is visible, against the caller's clock: only asymmetric algorithms (`none` and HMAC —
//! which a client secret could forge — are refused), the key named by `kid` in the provider's JWKS (an unknown
//! `kid` is told apart so the caller can re-fetch the keys once), `iss` exactly the issuer, `aud` the client
//! and no other audience, `azp` (when present) the client, `exp` and `nbf`, `iat` neither in the future nor too
//! old, `sub`
//! present, and the `nonce` of this sign-in, compared in constant time.

use std::collections::HashSet;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// Clock skew tolerated for `exp` and `iat`, in seconds.
pub const LEEWAY_SECONDS: u64 = 60;

/// The algorithms an ID token may be signed with: asymmetric ones only.
pub const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What an ID token must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The provider's issuer, exactly.
    pub issuer: &'a str,
    /// Our client id: the only audience.
    pub client_id: &'a str,
    /// The nonce this sign-in sent.
    pub nonce: &'a str,
    /// Now, in Unix seconds.
    pub now: i64,
    /// The oldest `iat` accepted, as an age in seconds.
    pub max_age_seconds: i64,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It names a key the key set does not have (re-fetch the keys, then try once more).
    UnknownKey(String),
    /// It is not acceptable, and re-fetching changes nothing.
    Invalid(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::UnknownKey(kid) => {
                write!(f, "the ID token is signed with key '{kid}', which the provider does not publish")
            }
            Refused::Invalid(why) => write!(f, "the ID token is refused: {why}"),
        }
    }
}

fn invalid(why: impl Into<String>) -> Refused {
    Refused::Invalid(why.into())
}

/// Checks `token` against `keys` and `expected`; returns its claims.
pub fn verify(token: &str, keys: &JwkSet, expected: &Expected<'_>) -> Result<Map<String, Value>, Refused> {
    let claims = signed_claims(token, keys, expected, &["exp", "iss", "sub", "aud"])?;
    check_audience(&claims, expected.client_id)?;
    check_times(&claims, expected)?;
    if claims.get("sub").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(invalid("sub is missing"));
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if nonce.is_empty() || !bool::from(nonce.as_bytes().ct_eq(expected.nonce.as_bytes())) {
        return Err(invalid("nonce is not this sign-in's"));
    }
    Ok(claims)
}

/// Checks a back-channel logout token (Back-Channel Logout 1.0 §2.6 steps 3–5 and 7): the signature and
/// algorithm as for ID tokens, `iss`, `aud` the client, `iat` recent, `exp` ahead when present, a `jti`, and no
/// `nonce` (so an ID token cannot pass for one). The events, `sid` and `sub` are the caller's to read.
pub fn verify_logout(token: &str, keys: &JwkSet, expected: &Expected<'_>) -> Result<Map<String, Value>, Refused> {
    let claims = signed_claims(token, keys, expected, &["iss", "aud"])?;
    check_audience(&claims, expected.client_id)?;
    let leeway = LEEWAY_SECONDS as i64;
    if claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp + leeway <= expected.now) {
        return Err(invalid("the logout token has expired"));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else { return Err(invalid("iat is missing")) };
    if iat > expected.now + leeway || expected.now - iat > expected.max_age_seconds {
        return Err(invalid("the logout token was not issued just now (iat)"));
    }
    if claims.get("jti").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(invalid("jti is missing"));
    }
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token must not carry a nonce"));
    }
    Ok(claims)
}

/// Checks a JWT access token's signature, algorithm and issuer (`iss`, `sub` and `exp` required; `nbf` honoured).
/// What it grants (its client, expiry and scope) is the caller's to judge.
pub fn verify_access(token: &str, keys: &JwkSet, issuer: &str) -> Result<Map<String, Value>, Refused> {
    let expected = Expected { issuer, client_id: "", nonce: "", now: gatehouse_core::clock::now(), max_age_seconds: 0 };
    let claims = signed_claims(token, keys, &expected, &["iss", "sub", "exp"])?;
    if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf - LEEWAY_SECONDS as i64 > expected.now) {
        return Err(invalid("the token is not valid yet (nbf)"));
    }
    Ok(claims)
}

/// The claims of a token signed by one of `keys` with an allowed algorithm and issued by the expected issuer.
fn signed_claims(
    token: &str,
    keys: &JwkSet,
    expected: &Expected<'_>,
    required: &[&str],
) -> Result<Map<String, Value>, Refused> {
    let header = jsonwebtoken::decode_header(token).map_err(|err| invalid(format!("unreadable header: {err}")))?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(invalid(format!("algorithm {:?} is not accepted (asymmetric signatures only)", header.alg)));
    }
    let key = signing_key(keys, header.kid.as_deref(), header.alg)?;
    let decoding_key =
        DecodingKey::from_jwk(key).map_err(|err| invalid(format!("the provider's key is unusable: {err}")))?;
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.leeway = LEEWAY_SECONDS;
    // Times are checked by the callers against Gatehouse's one clock, not jsonwebtoken's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.set_issuer(&[expected.issuer]);
    validation.required_spec_claims = required.iter().map(|c| c.to_string()).collect::<HashSet<_>>();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &decoding_key, &validation)
        .map_err(|err| invalid(err.to_string()))?;
    let claims = data.claims;
    if claims.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
        return Err(invalid("iss is not the provider's issuer"));
    }
    Ok(claims)
}

/// The key that must have signed a token with `kid` and `alg`.
fn signing_key<'k>(keys: &'k JwkSet, kid: Option<&str>, alg: Algorithm) -> Result<&'k Jwk, Refused> {
    let asymmetric = |key: &&Jwk| !matches!(key.algorithm, AlgorithmParameters::OctetKey(_));
    let key = match kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(asymmetric)
            .find(|key| key.common.key_id.as_deref() == Some(kid))
            .ok_or_else(|| Refused::UnknownKey(kid.to_string()))?,
        None => {
            let candidates: Vec<&'k Jwk> = keys.keys.iter().filter(asymmetric).collect();
            match candidates.len() {
                1 => candidates[0],
                0 => return Err(Refused::UnknownKey("(none)".into())),
                _ => return Err(invalid("the token names no key (kid) and the provider publishes several")),
            }
        }
    };
    let family_fits = match &key.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(_) => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        // A shared secret, or a kind of key this check does not know: never.
        _ => false,
    };
    if !family_fits {
        return Err(invalid(format!("algorithm {alg:?} does not fit the key it names")));
    }
    Ok(key)
}

/// `aud` must be the client, alone (a string, or an array of only the client); `azp`, when present, the client.
fn check_audience(claims: &Map<String, Value>, client_id: &str) -> Result<(), Refused> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().map(|v| v.as_str().unwrap_or("")).collect(),
        _ => return Err(invalid("aud is missing")),
    };
    if !audiences.contains(&client_id) {
        return Err(invalid("aud does not name this client"));
    }
    if audiences.iter().any(|aud| *aud != client_id) {
        return Err(invalid("aud names other audiences than this client"));
    }
    if let Some(azp) = claims.get("azp")
        && azp.as_str() != Some(client_id)
    {
        return Err(invalid("azp is not this client"));
    }
    Ok(())
}

/// `exp` must lie ahead and `nbf` (when present) behind, both within the leeway; `iat` must be present, not in the
/// future and not older than the allowed age.
fn check_times(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), Refused> {
    let leeway = LEEWAY_SECONDS as i64;
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else { return Err(invalid("exp is missing")) };
    if exp + leeway <= expected.now {
        return Err(invalid("the token has expired"));
    }
    if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf - leeway > expected.now) {
        return Err(invalid("the token is not valid yet (nbf)"));
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else { return Err(invalid("iat is missing")) };
    if iat > expected.now + leeway {
        return Err(invalid("iat lies in the future"));
    }
    if expected.now - iat > expected.max_age_seconds {
        return Err(invalid("the token was issued too long ago"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    /// Test-only P-256 keys (made with openssl for these tests; they sign nothing else).
    const KEY_A: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/+X2abI428kW9NR+
a5s8y454PvftOr5hczBxKISvJJyhRANCAATrJ+fBujLyRcQadAm5YmWlNcxA27H7
dzDzAQRduIiz/CAsZmdniZeWCN+G+tAZ1nFq6uluKoZrq12Z5QIq8v2r
-----END PRIVATE KEY-----
";
    const KEY_B: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLr0ZswbUgieIgroI
9pASbrtzs632ZhMA/ZcVE51i11KhRANCAASc+uFZeTxk/cua6SVKPNcwaYclbZY7
T6RbBygfhFrDfvIOEJ0cYXl+SEC6St6g6YsWGJAABnKwoGUQANxQWUb2
-----END PRIVATE KEY-----
";
    const NOW: i64 = 1_800_000_000;
    const ISSUER: &str = "https://op.example/realms/mail";

    fn keys() -> JwkSet {
        serde_json::from_value(json!({ "keys": [
            { "kty": "EC", "crv": "P-256", "x": "6yfnwboy8kXEGnQJuWJlpTXMQNux-3cw8wEEXbiIs_w",
              "y": "ICxmZ2eJl5YI34b60BnWcWrq6W4qhmurXZnlAiry_as", "use": "sig", "alg": "ES256", "kid": "key-a" },
            { "kty": "oct", "k": "Y2xpZW50LXNlY3JldA", "kid": "shared" }
        ]}))
        .unwrap()
    }

    fn expected() -> Expected<'static> {
        Expected { issuer: ISSUER, client_id: "gatehouse", nonce: "n-123", now: NOW, max_age_seconds: 600 }
    }

    fn claims() -> Value {
        json!({ "iss": ISSUER, "aud": "gatehouse", "sub": "alice", "nonce": "n-123", "iat": NOW - 5, "exp": NOW + 300,
                "email": "alice@example.org" })
    }

    fn signed(claims: &Value, pem: &str, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_string);
        encode(&header, claims, &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()).unwrap()
    }

    fn refused(claims: &Value) -> String {
        verify(&signed(claims, KEY_A, Some("key-a")), &keys(), &expected()).unwrap_err().to_string()
    }

    fn with(patch: Value) -> Value {
        let mut claims = claims();
        for (key, value) in patch.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    }

    #[test]
    fn a_good_token_gives_its_claims() {
        let token = signed(&claims(), KEY_A, Some("key-a"));
        let got = verify(&token, &keys(), &expected()).unwrap();
        assert_eq!(got["email"], "alice@example.org");
        assert!(
            verify(
                &signed(&with(json!({ "aud": ["gatehouse"], "azp": "gatehouse" })), KEY_A, Some("key-a")),
                &keys(),
                &expected()
            )
            .is_ok()
        );
    }

    #[test]
    fn every_rule_of_the_check_refuses() {
        assert!(refused(&with(json!({ "iss": "https://op.example/realms/mail/" }))).contains("InvalidIssuer"));
        assert!(refused(&with(json!({ "aud": "someone-else" }))).contains("aud does not name this client"));
        assert!(refused(&with(json!({ "aud": ["gatehouse", "someone-else"] }))).contains("other audiences"));
        assert!(refused(&with(json!({ "azp": "someone-else" }))).contains("azp"));
        assert!(refused(&with(json!({ "exp": NOW - 120 }))).contains("expired"));
        assert!(refused(&with(json!({ "exp": null }))).contains("exp"));
        assert!(refused(&with(json!({ "nbf": NOW + 600 }))).contains("not valid yet"));
        assert!(refused(&with(json!({ "iat": NOW + 3600, "exp": NOW + 7200 }))).contains("future"));
        assert!(refused(&with(json!({ "iat": NOW - 3600 }))).contains("too long ago"));
        assert!(refused(&with(json!({ "nonce": "n-124" }))).contains("nonce"));
        assert!(refused(&with(json!({ "nonce": null }))).contains("nonce"));
        assert!(refused(&with(json!({ "sub": null }))).contains("sub"));
    }

    #[test]
    fn logout_tokens_are_checked_and_id_tokens_do_not_pass_for_them() {
        let logout = json!({ "iss": ISSUER, "aud": "gatehouse", "sub": "alice", "sid": "s-1", "iat": NOW - 5,
            "jti": "j-1", "events": { "http://schemas.openid.net/event/backchannel-logout": {} } });
        let check = |claims: &Value| verify_logout(&signed(claims, KEY_A, Some("key-a")), &keys(), &expected());
        assert_eq!(check(&logout).unwrap()["sid"], "s-1");
        let patched = |patch: Value| {
            let mut claims = logout.clone();
            for (key, value) in patch.as_object().unwrap() {
                claims[key] = value.clone();
            }
            claims
        };
        let refused = |claims: Value| check(&claims).unwrap_err().to_string();
        assert!(refused(patched(json!({ "nonce": "n-123" }))).contains("must not carry a nonce"));
        assert!(refused(patched(json!({ "aud": "someone-else" }))).contains("aud"));
        assert!(refused(patched(json!({ "iat": NOW - 3600 }))).contains("iat"));
        assert!(refused(patched(json!({ "exp": NOW - 600 }))).contains("expired"));
        assert!(refused(patched(json!({ "jti": "" }))).contains("jti"));
        assert!(refused(patched(json!({ "iss": "https://elsewhere.example" }))).contains("InvalidIssuer"));
        // An ID token carries a nonce: it cannot end sessions.
        assert!(check(&claims()).is_err());
        let forged = verify_logout(&signed(&logout, KEY_B, Some("key-a")), &keys(), &expected()).unwrap_err();
        assert!(forged.to_string().contains("InvalidSignature"), "{forged}");
    }

    #[test]
    fn forged_signatures_and_algorithms_are_refused() {
        // Signed with another key under the published kid.
        let forged = verify(&signed(&claims(), KEY_B, Some("key-a")), &keys(), &expected()).unwrap_err();
        assert!(forged.to_string().contains("InvalidSignature"), "{forged}");
        // A changed claim after signing.
        let token = signed(&claims(), KEY_A, Some("key-a"));
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = String::from_utf8(b64.decode(&parts[1]).unwrap()).unwrap().replace("alice", "mallory");
        parts[1] = b64.encode(body);
        assert!(verify(&parts.join("."), &keys(), &expected()).is_err(), "a tampered payload");
        // alg none, and HS256 with the shared (client) secret, even under a published oct key.
        let none_header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", b64.encode(claims().to_string()));
        assert!(verify(&unsigned, &keys(), &expected()).is_err(), "alg none");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("shared".into());
        let hmac = encode(&header, &claims(), &EncodingKey::from_secret(b"client-secret")).unwrap();
        assert!(verify(&hmac, &keys(), &expected()).unwrap_err().to_string().contains("not accepted"));
        // A kid the provider does not publish: told apart, so the keys can be re-fetched.
        let unknown = verify(&signed(&claims(), KEY_B, Some("key-b")), &keys(), &expected()).unwrap_err();
        assert_eq!(unknown, Refused::UnknownKey("key-b".into()));
        // Without a kid, the one asymmetric key is used.
        assert!(verify(&signed(&claims(), KEY_A, None), &keys(), &expected()).is_ok());
    }
}
