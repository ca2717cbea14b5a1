//! Error types: [`PasswordError`] for generation and scheme parsing,
//! [`PoolError`] for the bounded hash pool.

/// Why a password hash could not be generated or a scheme name not parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The scheme name is not one Gatehouse can generate.
    #[error("cannot generate password scheme {0:?} (supported: BLF-CRYPT, ARGON2ID, SHA512-CRYPT, SSHA512, SSHA256)")]
    UnknownScheme(String),
    /// A cost/rounds parameter is outside what the scheme (and Dovecot) accept.
    #[error("invalid parameter for {scheme}: {reason}")]
    InvalidParameter {
        /// The scheme the parameter belongs to.
        scheme: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The password contains a NUL byte. Dovecot handles passwords as C
    /// strings, so such a password could never be verified there.
    #[error("password contains a NUL byte, which Dovecot cannot handle")]
    NulByte,
    /// The underlying hash implementation failed.
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Why the [`HashPool`](crate::HashPool) did not run a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every worker is busy and the queue is full. Map to a temporary failure.
    #[error("hash pool is busy (queue full)")]
    Busy,
    /// The job needs more memory than the pool's whole memory budget.
    #[error("hash needs {required_kib} KiB but the pool's memory budget is {budget_kib} KiB")]
    ExceedsMemoryBudget {
        /// Memory the job would use.
        required_kib: u32,
        /// The configured budget.
        budget_kib: u32,
    },
    /// The worker threads are gone (pool dropped or a worker panicked).
    #[error("hash pool worker unavailable")]
    Closed,
    /// Generation failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// The hash pool's failures in Gatehouse's error type: a busy or closed pool is a server fault ("try again"), a
/// password the schemes cannot take (a NUL byte) or a bad parameter the caller's.
impl From<PoolError> for gatehouse_core::Error {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Busy => gatehouse_core::Error::Unavailable(err.to_string()),
            PoolError::Password(PasswordError::NulByte | PasswordError::InvalidParameter { .. }) => {
                gatehouse_core::Error::Invalid(err.to_string())
            }
            other => gatehouse_core::Error::Internal(other.to_string()),
        }
    }
}
