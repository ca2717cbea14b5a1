//! Dummy verification for unknown users: [`DummyHash`] holds a hash of a
//! random secret in the configured default scheme, so checking a password
//! for a mailbox that does not exist costs the same as for one that does.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::{GenerateScheme, PasswordError, VerifyOptions, generate, verify};

/// A hash of a random, never-disclosed secret in a given scheme.
#[derive(Debug, Clone)]
pub struct DummyHash {
    stored: String,
    scheme: GenerateScheme,
}

impl DummyHash {
    /// Generates the dummy hash (costs one hash in `scheme`).
    pub fn new(scheme: &GenerateScheme) -> Result<Self, PasswordError> {
        let secret =
            Zeroizing::new(base64::engine::general_purpose::STANDARD_NO_PAD.encode(rand::random::<[u8; 32]>()));
        Ok(DummyHash { stored: generate(secret.as_bytes(), scheme)?, scheme: *scheme })
    }

    /// The scheme the dummy hash uses.
    pub fn scheme(&self) -> &GenerateScheme {
        &self.scheme
    }

    /// Runs a full verification of `candidate` against the dummy hash and
    /// discards the result. The answer to the caller is always "no".
    pub fn verify(&self, candidate: &[u8]) {
        let result = verify(&self.stored, candidate, &VerifyOptions::default());
        core::hint::black_box(result);
    }
}
