//! Rehash-on-login policy: [`needs_rehash`] decides whether a stored hash
//! that just verified should be replaced by one in the configured default.

use crate::crypt::{self, CryptKind, ShaVariant};
use crate::generate::GenerateScheme;
use crate::scheme::{self, Scheme};

/// bcrypt costs below this count as weak when the default is not bcrypt.
pub const MIN_BCRYPT_COST: u32 = 10;

/// Rough strength classes used to avoid "upgrading" to a weaker default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Plaintext, MD5/MD4-based, unsalted SHA, DES.
    Weak,
    /// Salted single-pass SHA (SSHA*).
    Salted,
    /// Iterated or memory-hard (crypt SHA-2, bcrypt, PBKDF2, SCRAM, Argon2).
    Strong,
}

fn default_tier(d: &GenerateScheme) -> Tier {
    match d {
        GenerateScheme::Ssha256 | GenerateScheme::Ssha512 => Tier::Salted,
        _ => Tier::Strong,
    }
}

/// Whether a hash that has just verified should be re-generated with
/// `default` and stored.
///
/// Policy (true when any applies, and never towards a weaker default):
/// * the stored scheme is weak: plaintext (`PLAIN`, `CLEAR`, `CLEARTEXT`,
///   `PLAIN-TRUNC`, unprefixed plaintext), MD5/MD4-based (`MD5`,
///   `MD5-CRYPT`, `SMD5`, `PLAIN-MD5`, `LDAP-MD5`, `PLAIN-MD4`, `CRAM-MD5`,
///   crypt `$1$`),
///   unsalted SHA (`SHA`, `SHA1`, `SHA256`, `SHA512`) or DES crypt;
/// * bcrypt with a cost below the default's cost (when the default is
///   BLF-CRYPT) or below [`MIN_BCRYPT_COST`] otherwise;
/// * the same family as the default with weaker parameters (SHA512-CRYPT
///   rounds, Argon2id `m`/`t`), or salted SHA-1 (`SSHA`) when the default
///   is SSHA256/SSHA512;
/// * the default is stronger in class (e.g. `SSHA512` stored, `BLF-CRYPT`
///   default).
///
/// Strings that cannot be parsed return false: they never verify anyway.
pub fn needs_rehash(stored: &str, default: &GenerateScheme) -> bool {
    let dtier = default_tier(default);
    let parsed = match scheme::parse(stored) {
        Ok(p) => p,
        // Unprefixed plaintext (only verifies when the operator allowed it).
        Err(scheme::ParseError::NoPrefix) => return Tier::Weak < dtier,
        Err(scheme::ParseError::Unsupported(_)) => return false,
    };
    // Only crypt-family strings are inspected further; they are never
    // encoded, so the payload is the hash itself.
    let payload = parsed.payload.as_bytes();
    let (tier, weaker_params) = match parsed.scheme {
        Scheme::Plain
        | Scheme::Clear
        | Scheme::Cleartext
        | Scheme::PlainTrunc
        | Scheme::Md5
        | Scheme::Md5Crypt
        | Scheme::Smd5
        | Scheme::PlainMd5
        | Scheme::LdapMd5
        | Scheme::PlainMd4
        | Scheme::CramMd5
        | Scheme::HmacMd5
        | Scheme::Sha
        | Scheme::Sha1
        | Scheme::Sha256
        | Scheme::Sha512 => (Tier::Weak, false),
        Scheme::Ssha => (Tier::Salted, matches!(default, GenerateScheme::Ssha256 | GenerateScheme::Ssha512)),
        Scheme::Ssha256 | Scheme::Ssha512 => (Tier::Salted, false),
        Scheme::BlfCrypt => bcrypt_rehash(payload, default),
        Scheme::Crypt | Scheme::DesCrypt | Scheme::Sha256Crypt | Scheme::Sha512Crypt => {
            match crypt::classify(payload) {
                Ok(CryptKind::Des | CryptKind::Md5) => (Tier::Weak, false),
                Ok(CryptKind::Bcrypt) => bcrypt_rehash(payload, default),
                Ok(CryptKind::Sha256 | CryptKind::Yescrypt) => (Tier::Strong, false),
                Ok(CryptKind::Sha512) => (Tier::Strong, sha512_weaker(payload, default)),
                Err(_) => return false,
            }
        }
        Scheme::Argon2 | Scheme::Argon2i | Scheme::Argon2id => (Tier::Strong, argon2_weaker(parsed.payload, default)),
        Scheme::Pbkdf2
        | Scheme::Pbkdf2Sha1
        | Scheme::Pbkdf2Sha256
        | Scheme::Pbkdf2Sha512
        | Scheme::ScramSha1
        | Scheme::ScramSha256 => (Tier::Strong, false),
    };
    tier < dtier || weaker_params
}

fn bcrypt_rehash(payload: &[u8], default: &GenerateScheme) -> (Tier, bool) {
    let Ok(setting) = crypt::bcrypt::parse_setting(payload) else {
        return (Tier::Strong, false);
    };
    let weak = match default {
        GenerateScheme::BlfCrypt { cost } => setting.cost < *cost,
        _ => setting.cost < MIN_BCRYPT_COST,
    };
    // A low-cost bcrypt is never replaced by a merely salted SHA default.
    (Tier::Strong, weak && default_tier(default) == Tier::Strong)
}

fn sha512_weaker(payload: &[u8], default: &GenerateScheme) -> bool {
    match (default, crypt::parse_sha_setting(payload, ShaVariant::Sha512)) {
        (GenerateScheme::Sha512Crypt { rounds }, Ok(s)) => s.rounds < *rounds,
        _ => false,
    }
}

fn argon2_weaker(payload: &str, default: &GenerateScheme) -> bool {
    match (default, crate::argon2::parse(payload)) {
        (GenerateScheme::Argon2id { m_cost_kib, t_cost, .. }, Ok(p)) => {
            p.algorithm != argon2::Algorithm::Argon2id || p.m_cost < *m_cost_kib || p.t_cost < *t_cost
        }
        _ => false,
    }
}
