//! Plain domain types shared by every Gatehouse crate. Nothing here does IO.
//!
//! - [`error`]: the one error type, split into client faults and server faults.
//! - [`clock`]: the one clock (Unix seconds).
//! - [`service`]: the services a login can be for and the protocol sets mailboxes carry.
//! - [`address`]: mailbox addresses and domain names, normalised the way the store keeps them.
//! - [`secret`]: a string type whose debug and display output is redacted.
//! - [`database_url`]: the database URL, with its password masked in every printout.
//! - [`text`]: the rule for free text (display names, descriptions, labels).
//! - [`password_policy`]: the rule for new passwords.
//! - [`expiry`]: expiry dates (a date means through that day, UTC), parsed and shown the same everywhere.

pub mod address;
pub mod clock;
pub mod database_url;
pub mod error;
pub mod expiry;
pub mod password_policy;
pub mod role;
pub mod secret;
pub mod service;
pub mod text;

pub use address::{DomainName, MailboxAddress};
pub use database_url::{DatabaseKind, DatabaseUrl};
pub use error::{Error, Fault, Result};
pub use password_policy::PasswordPolicy;
pub use role::AdminRole;
pub use secret::Secret;
pub use service::{ProtocolSet, Service};
