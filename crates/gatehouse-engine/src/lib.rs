//! The login decision engine: every allow/deny of Gatehouse is decided here, and wire adapters (Dovecot,
//! Postfix, nginx, web UI, API) only translate to and from it. It does no IO of its own: accounts come
//! through the [`Directory`] trait (implemented by the store), hashes run on the password crate's pool.
//!
//! - [`login_name`]: reading who logs in, and as whom (master logins).
//! - [`decision`]: the request and the answer.
//! - [`directory`]: what the engine needs to know about accounts.
//! - [`app_password`]: the `gh_<id>_<secret>` token format; [`sso`]: webmail single-sign-on tokens; [`totp`]:
//!   the second factor's codes and recovery codes; [`passkey`]: the WebAuthn ceremonies of passkeys.
//! - [`guard`]: the brute-force guard.
//! - `engine`: the pipeline; `cache`: the revision-checked result cache; [`memory`]: the mailboxes remembered
//!   between logins, kept coherent by the change feed.

pub mod app_password;
mod cache;
pub mod decision;
pub mod directory;
mod engine;
pub mod guard;
pub mod login_name;
pub mod memory;
pub mod passkey;
pub mod sso;
pub mod totp;

pub use decision::{
    AccessTokenRequest, AccountSteps, AdminGrant, AdminLoginRequest, Credentials, Decision, DenyReason, EntryPoint,
    LoginRequest, LoginService, PasskeyFactorRequest, PasskeySignInRequest, ProviderAdminSignInRequest,
    ProviderSignInRequest, RequiredStep, SecondFactorRequest, SignInArea, TokenAccount, Via, WebmailOpener,
};
pub use directory::{
    AdminLogin, AppPasswordLogin, Directory, ExternalAccount, ExternalCheck, IdentitySources, LegacyCandidates,
    MailboxLogin, MasterLogin, MasterScopeLogin, NoIdentitySources, PasskeyLogin, PasskeyOwnerLogin, Provisioning,
    SecondFactorOwner, SsoTokenLogin, TotpSecretLogin,
};
pub use engine::{Engine, EngineConfig, passkey_account};
pub use guard::{Guard, GuardConfig, GuardEntry, Unbanned, Verdict};
pub use login_name::{LoginName, parse_login_name};
