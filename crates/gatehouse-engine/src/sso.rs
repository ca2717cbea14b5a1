//! Webmail single-sign-on tokens, `ghsso_<id>_<secret>`: minted by the web layer for one mailbox and one web
//! session, handed to SOGo through nginx, and presented by SOGo as the IMAP / ManageSieve / SMTP password. The
//! token carries its id, so a check reads one row and compares one SHA-256 (the secret is random and long, so
//! a fast hash is right), in constant time.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every SSO token.
pub const PREFIX: &str = "ghsso_";
/// Length of the random secret part.
pub const SECRET_LEN: usize = 40;

/// A new random secret.
pub fn new_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), SECRET_LEN)
}

/// The token: `ghsso_<id>_<secret>`.
pub fn token(id: i64, secret: &str) -> String {
    format!("{PREFIX}{id}_{secret}")
}

/// The stored form of a secret: SHA-256, hex.
pub fn hash_secret(secret: &[u8]) -> String {
    hex_encode(&Sha256::digest(secret))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` matches the stored hash (constant time).
pub fn secret_matches(secret: &[u8], stored_hash: &str) -> bool {
    hash_secret(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Splits a token into its id and secret; `None` when the password is not an SSO token.
pub fn parse(password: &[u8]) -> Option<(i64, &[u8])> {
    crate::app_password::parse_token(password, PREFIX, SECRET_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_compare() {
        let secret = new_secret();
        let token = token(7, &secret);
        let (id, parsed) = parse(token.as_bytes()).unwrap();
        assert_eq!((id, parsed), (7, secret.as_bytes()));
        let stored = hash_secret(secret.as_bytes());
        assert!(secret_matches(parsed, &stored));
        assert!(!secret_matches(b"something else entirely, same length maybe", &stored));
        assert_eq!(parse(b"ghsso_7_short"), None);
        assert_eq!(parse(b"gh_7_0123456789012345678901234567890123456789"), None);
        assert_eq!(parse(b"ghsso_x_0123456789012345678901234567890123456789"), None);
    }
}
