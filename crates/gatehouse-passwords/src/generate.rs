//! Generation of new password hashes in the strong schemes
//! ([`GenerateScheme`]), producing `{SCHEME}…` strings `doveadm pw -t` accepts.

use core::fmt;
use core::str::FromStr;

use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::PasswordError;
use crate::crypt::{self, ShaVariant, bcrypt};
use crate::encoding::base64_encode;

/// Default bcrypt cost for [`GenerateScheme::default`].
pub const DEFAULT_BCRYPT_COST: u32 = 12;
/// Default Argon2id memory in KiB (Dovecot/libsodium `ARGON2ID` default).
pub const DEFAULT_ARGON2_M_COST_KIB: u32 = 65_536;
/// Default Argon2id passes (Dovecot/libsodium `ARGON2ID` default).
pub const DEFAULT_ARGON2_T_COST: u32 = 3;
/// Default Argon2id lanes (libsodium only writes 1).
pub const DEFAULT_ARGON2_P_COST: u32 = 1;
/// Default SHA512-CRYPT rounds (glibc/Dovecot default).
pub const DEFAULT_SHA512_CRYPT_ROUNDS: u32 = 5_000;
/// Salt bytes used for SSHA256/SSHA512.
const SSHA_SALT_LEN: usize = 16;

/// A scheme Gatehouse generates new hashes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenerateScheme {
    /// `{BLF-CRYPT}$2y$…`; `cost` is log2 of the iterations, 4..=31.
    BlfCrypt {
        /// log2 iteration count.
        cost: u32,
    },
    /// `{ARGON2ID}$argon2id$v=19$…` (16-byte salt, 32-byte output).
    Argon2id {
        /// Memory in KiB (at least 8 × `p_cost`).
        m_cost_kib: u32,
        /// Passes (at least 1).
        t_cost: u32,
        /// Lanes (1..=255 here; libsodium writes 1).
        p_cost: u32,
    },
    /// `{SHA512-CRYPT}$6$…`; `rounds` in 1000..=999999999.
    Sha512Crypt {
        /// SHA-512-crypt rounds.
        rounds: u32,
    },
    /// `{SSHA512}` salted SHA-512 (fast; only for compatibility).
    Ssha512,
    /// `{SSHA256}` salted SHA-256 (fast; only for compatibility).
    Ssha256,
}

impl Default for GenerateScheme {
    /// BLF-CRYPT with cost 12.
    fn default() -> Self {
        GenerateScheme::BlfCrypt { cost: DEFAULT_BCRYPT_COST }
    }
}

impl GenerateScheme {
    /// Parses a doveadm-style scheme name (case-insensitive) plus the
    /// optional `-r` value: bcrypt cost for BLF-CRYPT, passes (`t_cost`) for
    /// ARGON2ID, rounds for SHA512-CRYPT. SSHA512/SSHA256 take no rounds.
    ///
    /// ```
    /// use gatehouse_passwords::GenerateScheme;
    /// assert_eq!(
    ///     GenerateScheme::from_name("blf-crypt", Some(10)).unwrap(),
    ///     GenerateScheme::BlfCrypt { cost: 10 }
    /// );
    /// ```
    pub fn from_name(name: &str, rounds: Option<u32>) -> Result<Self, PasswordError> {
        let upper = name.trim().to_ascii_uppercase();
        let scheme = match upper.as_str() {
            "BLF-CRYPT" => GenerateScheme::BlfCrypt { cost: rounds.unwrap_or(DEFAULT_BCRYPT_COST) },
            "ARGON2ID" => GenerateScheme::Argon2id {
                m_cost_kib: DEFAULT_ARGON2_M_COST_KIB,
                t_cost: rounds.unwrap_or(DEFAULT_ARGON2_T_COST),
                p_cost: DEFAULT_ARGON2_P_COST,
            },
            "SHA512-CRYPT" => GenerateScheme::Sha512Crypt { rounds: rounds.unwrap_or(DEFAULT_SHA512_CRYPT_ROUNDS) },
            "SSHA512" | "SSHA256" => {
                if rounds.is_some() {
                    return Err(PasswordError::InvalidParameter {
                        scheme: if upper == "SSHA512" { "SSHA512" } else { "SSHA256" },
                        reason: "this scheme takes no rounds".into(),
                    });
                }
                if upper == "SSHA512" { GenerateScheme::Ssha512 } else { GenerateScheme::Ssha256 }
            }
            _ => return Err(PasswordError::UnknownScheme(name.to_string())),
        };
        scheme.validate()?;
        Ok(scheme)
    }

    /// The Dovecot scheme name written in `{…}`.
    pub fn name(&self) -> &'static str {
        match self {
            GenerateScheme::BlfCrypt { .. } => "BLF-CRYPT",
            GenerateScheme::Argon2id { .. } => "ARGON2ID",
            GenerateScheme::Sha512Crypt { .. } => "SHA512-CRYPT",
            GenerateScheme::Ssha512 => "SSHA512",
            GenerateScheme::Ssha256 => "SSHA256",
        }
    }

    /// Checks the parameters against the ranges Dovecot and the algorithms
    /// accept.
    pub fn validate(&self) -> Result<(), PasswordError> {
        let bad = |scheme, reason: String| Err(PasswordError::InvalidParameter { scheme, reason });
        match *self {
            GenerateScheme::BlfCrypt { cost } => {
                if !(bcrypt::MIN_COST..=bcrypt::MAX_COST).contains(&cost) {
                    return bad("BLF-CRYPT", format!("cost {cost} is outside 4..=31"));
                }
            }
            GenerateScheme::Argon2id { m_cost_kib, t_cost, p_cost } => {
                if !(1..=255).contains(&p_cost) {
                    return bad("ARGON2ID", format!("p_cost {p_cost} is outside 1..=255"));
                }
                if t_cost < 1 {
                    return bad("ARGON2ID", "t_cost must be at least 1".into());
                }
                if m_cost_kib < 8 * p_cost {
                    return bad("ARGON2ID", format!("m_cost {m_cost_kib} KiB is below 8 × p_cost"));
                }
            }
            GenerateScheme::Sha512Crypt { rounds } => {
                if !(crypt::SHA_ROUNDS_MIN..=crypt::SHA_ROUNDS_MAX).contains(&rounds) {
                    return bad("SHA512-CRYPT", format!("rounds {rounds} is outside 1000..=999999999"));
                }
            }
            GenerateScheme::Ssha512 | GenerateScheme::Ssha256 => {}
        }
        Ok(())
    }

    /// Memory (KiB) generating or verifying this scheme allocates; non-zero
    /// only for Argon2id.
    pub fn memory_cost_kib(&self) -> u32 {
        match *self {
            GenerateScheme::Argon2id { m_cost_kib, .. } => m_cost_kib,
            _ => 0,
        }
    }
}

impl fmt::Display for GenerateScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GenerateScheme {
    type Err = PasswordError;

    /// Same as [`GenerateScheme::from_name`] with default parameters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GenerateScheme::from_name(s, None)
    }
}

/// Hashes `password` (raw bytes, never normalised) in `scheme`, returning a
/// `{SCHEME}…` string. Fails on NUL bytes (Dovecot could never verify them)
/// and on invalid parameters.
pub fn generate(password: &[u8], scheme: &GenerateScheme) -> Result<String, PasswordError> {
    if password.contains(&0) {
        return Err(PasswordError::NulByte);
    }
    scheme.validate()?;
    let body = match *scheme {
        GenerateScheme::BlfCrypt { cost } => bcrypt::generate(password, cost),
        GenerateScheme::Argon2id { m_cost_kib, t_cost, p_cost } => {
            crate::argon2::generate(password, m_cost_kib, t_cost, p_cost).map_err(PasswordError::Hash)?
        }
        GenerateScheme::Sha512Crypt { rounds } => {
            let salt = crypt::random_crypt_salt(16);
            // Like doveadm, write `rounds=` only when it differs from the default.
            crypt::format_sha_crypt(
                password,
                salt.as_bytes(),
                rounds,
                rounds != crypt::SHA_ROUNDS_DEFAULT,
                ShaVariant::Sha512,
            )
        }
        GenerateScheme::Ssha512 => ssha::<Sha512>(password),
        GenerateScheme::Ssha256 => ssha::<Sha256>(password),
    };
    Ok(format!("{{{}}}{body}", scheme.name()))
}

fn ssha<D: Digest>(password: &[u8]) -> String {
    let salt: [u8; SSHA_SALT_LEN] = rand::random();
    let mut h = D::new();
    h.update(password);
    h.update(salt);
    let mut raw = Zeroizing::new(h.finalize().to_vec());
    raw.extend_from_slice(&salt);
    base64_encode(&raw)
}
