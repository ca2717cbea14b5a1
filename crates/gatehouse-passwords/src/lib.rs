//! Dovecot-compatible password hashes for Gatehouse.
//!
//! This first version generates `{BLF-CRYPT}` (bcrypt, `$2y$`) hashes, the scheme mailcow and Gatehouse use
//! by default, and verifies them. The full Dovecot scheme table, the bounded hash pool and rehash-on-login
//! arrive with the [Passwords] issue; until then any other scheme is reported as unsupported.

use std::fmt;

/// Default bcrypt cost for new hashes.
pub const DEFAULT_BCRYPT_COST: u32 = 12;

/// Outcome of verifying a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The password is right.
    Match,
    /// The password is wrong.
    Mismatch,
    /// The stored hash uses a scheme this version cannot check (treated as a failed login).
    Unsupported(String),
}

/// The schemes new hashes can be generated in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateScheme {
    /// `{BLF-CRYPT}` bcrypt with the given cost (4–31).
    BlfCrypt {
        /// Cost factor (log2 rounds).
        cost: u32,
    },
}

impl Default for GenerateScheme {
    fn default() -> Self {
        GenerateScheme::BlfCrypt { cost: DEFAULT_BCRYPT_COST }
    }
}

impl GenerateScheme {
    /// Parses a doveadm-style scheme name with optional rounds / cost.
    pub fn from_name(name: &str, rounds: Option<u32>) -> Result<Self, PasswordError> {
        match name.trim().to_ascii_uppercase().as_str() {
            "BLF-CRYPT" => {
                let cost = rounds.unwrap_or(DEFAULT_BCRYPT_COST);
                if !(4..=31).contains(&cost) {
                    return Err(PasswordError::InvalidParameter(format!("bcrypt cost must be 4 to 31, not {cost}")));
                }
                Ok(GenerateScheme::BlfCrypt { cost })
            }
            other => Err(PasswordError::UnsupportedScheme(other.to_string())),
        }
    }
}

/// Errors from generating hashes.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The scheme cannot be generated.
    #[error("password scheme '{0}' cannot be generated")]
    UnsupportedScheme(String),
    /// A parameter is out of range.
    #[error("{0}")]
    InvalidParameter(String),
    /// The hashing library failed.
    #[error("hashing failed: {0}")]
    Hashing(String),
}

impl fmt::Display for GenerateScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenerateScheme::BlfCrypt { cost } => write!(f, "BLF-CRYPT (cost {cost})"),
        }
    }
}

/// Hashes `password` in `scheme`, returning a `{SCHEME}…` string Dovecot accepts.
pub fn generate(password: &[u8], scheme: &GenerateScheme) -> Result<String, PasswordError> {
    match scheme {
        GenerateScheme::BlfCrypt { cost } => {
            let parts = bcrypt::hash_with_result(password, *cost).map_err(|e| PasswordError::Hashing(e.to_string()))?;
            Ok(format!("{{BLF-CRYPT}}{}", parts.format_for_version(bcrypt::Version::TwoY)))
        }
    }
}

/// Verifies `candidate` against a stored `{SCHEME}…` hash.
pub fn verify(stored: &str, candidate: &[u8]) -> Verification {
    let Some(rest) = stored.strip_prefix('{') else {
        return Verification::Unsupported("no {SCHEME} prefix".into());
    };
    let Some((scheme, hash)) = rest.split_once('}') else {
        return Verification::Unsupported("malformed {SCHEME} prefix".into());
    };
    match scheme.to_ascii_uppercase().as_str() {
        "BLF-CRYPT" => match bcrypt::verify(candidate, hash) {
            Ok(true) => Verification::Match,
            Ok(false) => Verification::Mismatch,
            Err(_) => Verification::Unsupported("malformed BLF-CRYPT hash".into()),
        },
        other => Verification::Unsupported(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bcrypt_verifies() {
        let hash = generate("pässwörd".as_bytes(), &GenerateScheme::BlfCrypt { cost: 4 }).unwrap();
        assert!(hash.starts_with("{BLF-CRYPT}$2y$04$"), "{hash}");
        assert_eq!(verify(&hash, "pässwörd".as_bytes()), Verification::Match);
        assert_eq!(verify(&hash, b"wrong"), Verification::Mismatch);
        assert!(matches!(verify("{MD4}x", b"x"), Verification::Unsupported(_)));
    }
}
