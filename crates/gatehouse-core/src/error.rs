//! The error type used across Gatehouse.
//!
//! Every error is either a *client fault* (the request was wrong: bad input, a rule refused it, the object
//! does not exist) or a *server fault* (a database, directory or identity provider is unreachable, or a bug).
//! Client faults may count toward brute-force bans; server faults must be reported as "temporary failure",
//! never as "wrong password".

use std::fmt;

/// Who is to blame for an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller asked for something invalid or forbidden.
    Client,
    /// Gatehouse or one of its peers failed; retrying later may succeed.
    Server,
}

/// Result alias using the Gatehouse [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Gatehouse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Input that cannot be accepted (malformed address, bad option value, …).
    #[error("{0}")]
    Invalid(String),
    /// The named object does not exist.
    #[error("{kind} '{name}' does not exist")]
    NotFound {
        /// What kind of object was looked up ("domain", "mailbox", …).
        kind: &'static str,
        /// The name that was looked up.
        name: String,
    },
    /// An object with that name exists already.
    #[error("{kind} '{name}' already exists")]
    AlreadyExists {
        /// What kind of object would have been duplicated.
        kind: &'static str,
        /// The duplicated name.
        name: String,
    },
    /// A business rule refused the change (limit reached, object still in use, …).
    #[error("{0}")]
    Refused(String),
    /// The caller may not do this: outside its domains, a read-only key writing, a domain administrator
    /// changing what only administrators change.
    #[error("{0}")]
    Forbidden(String),
    /// A peer (database, directory, identity provider) is unreachable or timed out.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A job that runs once at a time (a sync) is running already, here or in another Gatehouse process.
    #[error("{0} is already running (in this or another Gatehouse process); try again later")]
    AlreadyRunning(String),
    /// An unexpected internal failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the client or the server is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Invalid(_)
            | Error::NotFound { .. }
            | Error::AlreadyExists { .. }
            | Error::Refused(_)
            | Error::Forbidden(_) => Fault::Client,
            Error::Unavailable(_) | Error::AlreadyRunning(_) | Error::Internal(_) => Fault::Server,
        }
    }

    /// Shorthand for [`Error::Invalid`] from anything printable.
    pub fn invalid(message: impl fmt::Display) -> Self {
        Error::Invalid(message.to_string())
    }

    /// Shorthand for [`Error::Refused`] from anything printable.
    pub fn refused(message: impl fmt::Display) -> Self {
        Error::Refused(message.to_string())
    }

    /// Shorthand for [`Error::Forbidden`] from anything printable.
    pub fn forbidden(message: impl fmt::Display) -> Self {
        Error::Forbidden(message.to_string())
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound { kind, name: name.into() }
    }

    /// Shorthand for [`Error::AlreadyExists`].
    pub fn already_exists(kind: &'static str, name: impl Into<String>) -> Self {
        Error::AlreadyExists { kind, name: name.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_split_between_client_and_server() {
        assert_eq!(Error::invalid("x").fault(), Fault::Client);
        assert_eq!(Error::not_found("domain", "x").fault(), Fault::Client);
        assert_eq!(Error::already_exists("domain", "x").fault(), Fault::Client);
        assert_eq!(Error::refused("x").fault(), Fault::Client);
        assert_eq!(Error::forbidden("x").fault(), Fault::Client);
        assert_eq!(Error::Unavailable("db".into()).fault(), Fault::Server);
        assert_eq!(Error::Internal("bug".into()).fault(), Fault::Server);
    }

    #[test]
    fn messages_name_the_object() {
        assert_eq!(Error::not_found("domain", "example.org").to_string(), "domain 'example.org' does not exist");
    }
}
