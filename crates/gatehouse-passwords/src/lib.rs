//! Dovecot-compatible password schemes for Gatehouse.
//!
//! * [`verify`] checks a candidate against a stored `{SCHEME}hash` (every
//!   scheme mailcow accepts, byte-for-byte like Dovecot 2.3) and answers
//!   [`Verification::Match`], [`Verification::Mismatch`],
//!   [`Verification::Unsupported`] or [`Verification::Malformed`].
//! * [`generate`] writes new hashes in the strong schemes ([`GenerateScheme`]).
//! * [`needs_rehash`] says whether a verified hash should be upgraded.
//! * [`DummyHash`] makes unknown-user logins cost the same as real ones.
//! * [`HashPool`] runs all of that on a bounded set of OS threads with a
//!   queue limit and a memory budget, so async runtime threads never hash.
//!
//! Passwords are raw bytes and are never normalised. A candidate containing
//! a NUL byte never matches: Dovecot handles passwords as C strings.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod argon2;
mod crypt;
mod dummy;
mod encoding;
mod error;
mod generate;
mod pool;
mod rehash;
mod scheme;
mod verify;

pub use dummy::DummyHash;
pub use error::{PasswordError, PoolError};
pub use generate::{
    DEFAULT_ARGON2_M_COST_KIB, DEFAULT_ARGON2_P_COST, DEFAULT_ARGON2_T_COST, DEFAULT_BCRYPT_COST,
    DEFAULT_SHA512_CRYPT_ROUNDS, GenerateScheme, generate,
};
pub use pool::{HashPool, HashPoolConfig, JobKind, PoolStats, QueueWaitObserver};
pub use rehash::{MIN_BCRYPT_COST, needs_rehash};
pub use scheme::Scheme;
pub use zeroize::Zeroizing;

/// The outcome of [`verify`]. Anything but [`Verification::Match`] is a
/// failed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The candidate is the password.
    Match,
    /// The candidate is not the password.
    Mismatch,
    /// The scheme is unknown or not supported (or the hash has no prefix and
    /// unprefixed plaintext is off). A configuration error: log it.
    Unsupported(String),
    /// The scheme is known but the stored hash is broken (bad encoding,
    /// invalid parameters, over a configured limit), where Dovecot reports
    /// an error. A data error: log it.
    Malformed(String),
}

impl Verification {
    /// True only for [`Verification::Match`].
    pub fn is_match(&self) -> bool {
        matches!(self, Verification::Match)
    }
}

/// Upper bounds on work parameters read from stored hashes, so a corrupted
/// or hostile entry cannot pin a worker for minutes or exhaust memory.
/// Exceeding one yields [`Verification::Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Highest bcrypt cost (default 16; Dovecot allows up to 31).
    pub max_bcrypt_cost: u32,
    /// Highest SHA-crypt `rounds=` (default 10 000 000).
    pub max_sha_crypt_rounds: u32,
    /// Highest PBKDF2 / SCRAM iteration count (default 10 000 000).
    pub max_pbkdf2_rounds: u32,
    /// Most memory one verification may use, in KiB: Argon2 `m`, yescrypt
    /// `128·r·N·p` bytes (default 1 GiB).
    pub max_memory_kib: u32,
    /// Highest Argon2 `t` (default 64).
    pub max_argon2_t_cost: u32,
    /// Highest Argon2 `p` (default 16).
    pub max_argon2_p_cost: u32,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits {
            max_bcrypt_cost: 16,
            max_sha_crypt_rounds: 10_000_000,
            max_pbkdf2_rounds: 10_000_000,
            max_memory_kib: 1_048_576,
            max_argon2_t_cost: 64,
            max_argon2_p_cost: 16,
        }
    }
}

/// Options for [`verify`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Compare a stored string that has no `{SCHEME}` prefix and no
    /// recognisable crypt form as plaintext (default false: refuse it).
    pub allow_unprefixed_plaintext: bool,
    /// Work-parameter limits.
    pub limits: VerifyLimits,
}

/// Verifies `candidate` against `stored` (`{SCHEME}hash`, or an unprefixed
/// `$2y$…`/`$6$…`/`$5$…`/`$1$…`/`$argon2id$…` string). Synchronous and
/// CPU-bound: call it through [`HashPool`] from async code.
///
/// ```
/// use gatehouse_passwords::{verify, Verification, VerifyOptions};
/// let stored = "{SHA}9Rfd8dMqES/xrVXGbRsSyzjn6Pc=";
/// let opts = VerifyOptions::default();
/// assert_eq!(verify(stored, "pässwörd".as_bytes(), &opts), Verification::Match);
/// assert_eq!(verify(stored, b"wrong", &opts), Verification::Mismatch);
/// assert!(matches!(verify("{NOPE}x", b"x", &opts), Verification::Unsupported(_)));
/// ```
pub fn verify(stored: &str, candidate: &[u8], options: &VerifyOptions) -> Verification {
    verify::verify(stored, candidate, options)
}

/// The scheme that would verify `stored`: its `{SCHEME}` prefix, or the
/// crypt/PHC form of an unprefixed hash. `None` for unknown or unprefixed
/// plaintext strings. Useful for logging and metrics.
pub fn stored_scheme(stored: &str) -> Option<Scheme> {
    scheme::parse(stored).ok().map(|p| p.scheme)
}
