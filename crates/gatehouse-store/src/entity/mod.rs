//! sea-orm entities, one module per table. They mirror the migrations in [`crate::migration`].
#![allow(missing_docs)]

pub mod admin;
pub mod admin_domain;
pub mod api_key;
pub mod app_link;
pub mod app_password;
pub mod attribute_mapping;
pub mod audit_log;
pub mod auth_log;
pub mod domain;
pub mod identity_provider;
pub mod identity_provider_secret;
pub mod job_lease;
pub mod job_log;
pub mod login_change;
pub mod mailbox;
pub mod mailbox_template;
pub mod master_user;
pub mod master_user_domain;
pub mod oidc_sign_in;
pub mod passkey;
pub mod scim_token;
pub mod sso_token;
pub mod totp_recovery_code;
pub mod totp_secret;
pub mod web_session;
