//! The login decision engine: every allow/deny of Gatehouse is decided here, and wire adapters (Dovecot,
//! Postfix, nginx, web UI, API) only translate to and from it. It does no IO of its own; the store and the
//! identity sources are handed to it.
//!
//! - [`login_name`]: step one of every decision — reading who logs in, and as whom (master logins).
//! - [`decision`]: what the engine answers.
//!
//! The pipeline itself (master users, mailbox lookup, protocol gate, app passwords, primary credential, result
//! cache, brute-force guard) is built by the [Engine] issue on these types.

pub mod decision;
pub mod login_name;

pub use decision::{Decision, Via};
pub use login_name::{LoginName, parse_login_name};
