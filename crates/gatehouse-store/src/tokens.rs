//! Bearer tokens that select one row and prove themselves with a secret: `<prefix><id>_<secret>`, where the
//! secret is 32 random alphanumeric characters (about 190 bits). Only a SHA-256 (hex) of the secret is stored:
//! the secret is random and long, so a fast hash is right, and it is compared in constant time. Used by REST
//! API keys (`gk_`) and SCIM tokens (`gs_`).

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of the random secret part of a token.
pub(crate) const SECRET_LEN: usize = 32;

/// A new random secret.
pub(crate) fn new_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), SECRET_LEN)
}

/// The stored form of a secret: SHA-256, hex.
pub(crate) fn hash_secret(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// Whether `secret` is the one whose stored form is `stored` (constant time).
pub(crate) fn secret_matches(secret: &str, stored: &str) -> bool {
    hash_secret(secret.as_bytes()).as_bytes().ct_eq(stored.as_bytes()).into()
}

/// Splits `<prefix><id>_<secret>` into its id and secret; `None` when the token is not in that form.
pub(crate) fn parse_token<'a>(prefix: &str, token: &'a str) -> Option<(i64, &'a str)> {
    let rest = token.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if secret.len() != SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((id.parse().ok()?, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_form() {
        let secret = "a".repeat(SECRET_LEN);
        assert_eq!(parse_token("gk_", &format!("gk_12_{secret}")), Some((12, secret.as_str())));
        assert_eq!(parse_token("gs_", &format!("gk_12_{secret}")), None, "another prefix");
        for bad in ["", "gk_", "gk__x", "gk_1_short", "gk_x_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "gk_-1_aaaa"] {
            assert_eq!(parse_token("gk_", bad), None, "{bad}");
        }
        assert_eq!(parse_token("gk_", &format!("gk_1_{}", "-".repeat(SECRET_LEN))), None);
        let fresh = new_secret();
        assert!(secret_matches(&fresh, &hash_secret(fresh.as_bytes())));
        assert!(!secret_matches(&secret, &hash_secret(fresh.as_bytes())));
    }
}
