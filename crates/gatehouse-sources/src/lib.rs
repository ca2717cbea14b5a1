//! Identity sources share one shape: whatever a source is, it checks [`Credentials`] and lists accounts as
//! [`ExternalAccount`]s, and the provisioning rules shared by all of them decide what an account means for the
//! mailbox ([`provisioning`]: which template applies, create on login, the update on login, whole sync runs).
//!
//! - Each kind of source is one folder: `ldap/` with `config` (its settings, which embed the shared
//!   [`provisioning::ProvisioningSettings`]), `pool` (connections), `lookup` (searches, binds) and `mod` (the
//!   client itself); `oidc/` (the `oidc` and `keycloak` kinds) with `config`, `discovery` (metadata and
//!   signing keys), `id_token` (the token checks), `sign_in` (the browser sign-in, logout and back-channel
//!   logout) and `mod` (the HTTP client).
//! - `keycloak/` with `config`, `admin` (the admin REST API client and its service-account token) and `lookup`
//!   (the mailpassword login, the user list of syncs, the connection test); its browser sign-in is `oidc/`'s.
//! - [`dispatch`]: the one enum of sources ([`Source`]) and of their typed settings ([`SourceSettings`]), and the
//!   one place that matches on the kind.
//! - [`SourceRegistry`]: what the login engine, the CLI and the scheduler talk to; it builds sources from the
//!   store and caches them until the provider is edited.
//!
//! Adding a kind touches its folder, one arm in each enum of [`dispatch`], and its settings form (the CLI takes
//! the settings as JSON; the admin page has a fieldset per kind beside the shared provisioning fields).

pub mod dispatch;
pub mod keycloak;
pub mod ldap;
pub mod oidc;
pub mod provisioning;
pub mod registry;

pub use dispatch::{Source, SourceSettings};
pub use gatehouse_engine::{Credentials, ExternalAccount};
pub use registry::SourceRegistry;

/// What a source says about credentials for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLogin {
    /// The credentials are right.
    Valid(ExternalAccount),
    /// The account exists but the credentials are wrong (or empty).
    WrongPassword,
    /// No account matches.
    NotFound,
    /// Several accounts match: refused, because the login would be ambiguous.
    Ambiguous(usize),
    /// The credentials are right, but the account may not log in (disabled at the source, lacking a role).
    NotAllowed(String),
    /// This source cannot check this kind of credentials.
    Unsupported(String),
}

/// Picks the template for an account: the first of `values` (in the source's order) that has a mapping wins,
/// so a multi-valued attribute such as `memberOf` can drive templates. `mappings` are (attribute value,
/// template) pairs; values compare exactly (LDAP DNs and claim values are taken as the source gives them).
pub fn select_template<'m>(values: &[String], mappings: &'m [(String, String)]) -> Option<&'m str> {
    values.iter().find_map(|value| mappings.iter().find(|(mapped, _)| mapped == value).map(|(_, t)| t.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_first_mapped_value_wins() {
        let mappings = vec![
            ("cn=staff,ou=groups".to_string(), "staff".to_string()),
            ("cn=it,ou=groups".to_string(), "it".to_string()),
        ];
        let values = strings(&["cn=all,ou=groups", "cn=it,ou=groups", "cn=staff,ou=groups"]);
        assert_eq!(select_template(&values, &mappings), Some("it"));
        assert_eq!(select_template(&strings(&["cn=other"]), &mappings), None);
        assert_eq!(select_template(&strings(&["CN=IT,OU=GROUPS"]), &mappings), None, "values compare exactly");
        assert_eq!(select_template(&[], &mappings), None);
    }
}
