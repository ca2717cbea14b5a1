//! What Gatehouse reads through Keycloak's admin API: users as accounts, the mailpassword login (one user with
//! exactly the address, enabled, holding the role, whose password attribute verifies on the hash pool), every
//! user for a sync (paged, counted before and after so a listing that raced with changes is read again), and the
//! connection test.

use std::collections::{BTreeMap, HashSet};

use gatehouse_core::{Error, MailboxAddress};
use gatehouse_passwords::{HashPool, Verification, VerifyOptions};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::KeycloakRealm;
use crate::{ExternalAccount, SourceLogin};

/// Users per page of a listing (Keycloak's own default page).
const PAGE_SIZE: usize = 100;

/// How often a listing that raced with changes at Keycloak is read again before the sync gives up.
const LISTING_ATTEMPTS: usize = 3;

/// A user as the admin API represents it (`UserRepresentation`), as far as Gatehouse reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KeycloakUser {
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    /// Absent reads as disabled: nothing is let in on a representation that does not say so.
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    attributes: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct RoleRepresentation {
    name: String,
}

#[derive(Deserialize)]
struct UserId {
    id: String,
}

/// The stored hash in a password attribute's value: `{SCHEME}hash` (or a crypt string) as it is, or that text
/// base64-encoded (as an LDAP `userPassword` federated through Keycloak arrives).
pub fn password_hash_of(value: &str) -> String {
    use base64::Engine;
    let value = value.trim();
    let looks_like_hash = |text: &str| text.starts_with('{') || text.starts_with('$');
    if looks_like_hash(value) {
        return value.to_string();
    }
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| looks_like_hash(text))
        .unwrap_or_else(|| value.to_string())
}

impl KeycloakRealm {
    /// A user as an account: the id as subject, the address in lower case, "first last" as the display name,
    /// the template values from the attribute named by `template_claim`.
    fn account(&self, user: KeycloakUser) -> ExternalAccount {
        let display_name = [user.first_name.as_deref(), user.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let template_values = user.attributes.get(&self.oidc.client().template_claim).cloned().unwrap_or_default();
        let mut attributes: BTreeMap<String, Vec<String>> = user
            .attributes
            .into_iter()
            .filter(|(name, _)| *name != self.settings.password_attribute)
            .map(|(name, values)| (name.to_lowercase(), values))
            .collect();
        attributes.insert("username".into(), vec![user.username]);
        ExternalAccount {
            subject: user.id,
            address: user.email.unwrap_or_default().trim().to_lowercase(),
            display_name: Some(display_name).filter(|name| !name.is_empty()),
            enabled: user.enabled,
            template_values,
            attributes,
        }
    }

    /// The users whose `email` is exactly `address` (case-insensitively), looked up with `exact=true`.
    async fn users_with_address(&self, address: &MailboxAddress) -> Result<Vec<KeycloakUser>, Error> {
        let text = address.to_string();
        let query = [("email", text.as_str()), ("exact", "true"), ("briefRepresentation", "false")];
        let users: Vec<KeycloakUser> = self.admin_get("/users", &query).await?.unwrap_or_default();
        // `exact=true` already asks for equality; what comes back is checked all the same.
        Ok(users
            .into_iter()
            .filter(|user| user.email.as_deref().is_some_and(|e| e.trim().eq_ignore_ascii_case(&text)))
            .collect())
    }

    /// Whether the user holds the configured role directly (true when no role is configured).
    async fn holds_role(&self, user_id: &str) -> Result<bool, Error> {
        let Some(role) = &self.settings.user_role else { return Ok(true) };
        let id: String = url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
        let path = match &role.client {
            Some(client) => format!("/users/{id}/role-mappings/clients/{}", self.client_uuid(client).await?),
            None => format!("/users/{id}/role-mappings/realm"),
        };
        let roles: Vec<RoleRepresentation> = self.admin_get(&path, &[]).await?.unwrap_or_default();
        Ok(roles.iter().any(|r| r.name == role.name))
    }

    /// The mailpassword login: the one user with exactly this address, enabled and holding the role, whose
    /// password attribute's hash the password matches (verified on `hashes`).
    pub async fn mailpassword_login(
        &self,
        address: &MailboxAddress,
        password: &[u8],
        hashes: Option<&HashPool>,
    ) -> Result<SourceLogin, Error> {
        if password.is_empty() {
            return Ok(SourceLogin::WrongPassword);
        }
        let mut users = self.users_with_address(address).await?;
        let user = match users.len() {
            0 => return Ok(SourceLogin::NotFound),
            1 => users.remove(0),
            many => {
                tracing::error!(
                    realm = self.settings.realm,
                    %address,
                    users = many,
                    "directory error: several Keycloak users have this address; the login is refused"
                );
                return Ok(SourceLogin::Ambiguous(many));
            }
        };
        let attribute = &self.settings.password_attribute;
        let Some(stored) = user.attributes.get(attribute).and_then(|values| values.first()).filter(|v| !v.is_empty())
        else {
            tracing::warn!(
                realm = self.settings.realm,
                %address,
                "the Keycloak user has no {attribute} attribute (declared in the realm's user profile?): no \
                 password login"
            );
            return Ok(SourceLogin::WrongPassword);
        };
        let stored = password_hash_of(stored);
        let Some(hashes) = hashes else {
            return Err(Error::Internal("the mailpassword flow needs the hash pool, which this process lacks".into()));
        };
        let candidate = Zeroizing::new(password.to_vec());
        match hashes.verify(stored, candidate, VerifyOptions::default()).await {
            Ok(Verification::Match) => {}
            Ok(Verification::Mismatch) => return Ok(SourceLogin::WrongPassword),
            Ok(Verification::Unsupported(why) | Verification::Malformed(why)) => {
                tracing::error!(realm = self.settings.realm, %address, "the {attribute} hash cannot be verified: {why}");
                return Ok(SourceLogin::WrongPassword);
            }
            Err(err) => return Err(Error::Unavailable(format!("hashing: {err}"))),
        }
        // The account's state is told only to who knows its password.
        if !user.enabled {
            return Ok(SourceLogin::NotAllowed("the Keycloak user is disabled".into()));
        }
        if !self.holds_role(&user.id).await? {
            let role = self.settings.user_role.as_ref().map(ToString::to_string).unwrap_or_default();
            return Ok(SourceLogin::NotAllowed(format!("the Keycloak user lacks the {role}")));
        }
        Ok(SourceLogin::Valid(self.account(user)))
    }

    /// Reads a paged listing at `path` to its end.
    async fn read_pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        brief: bool,
        mut each: impl FnMut(T),
    ) -> Result<usize, Error> {
        let mut first = 0;
        loop {
            let (start, max) = (first.to_string(), PAGE_SIZE.to_string());
            let brief = if brief { "true" } else { "false" };
            let query = [("first", start.as_str()), ("max", max.as_str()), ("briefRepresentation", brief)];
            let Some(page): Option<Vec<T>> = self.admin_get(path, &query).await? else {
                return Err(Error::Unavailable(format!("Keycloak admin API: {path} does not exist (HTTP 404)")));
            };
            let count = page.len();
            page.into_iter().for_each(&mut each);
            first += count;
            if count < PAGE_SIZE {
                return Ok(first);
            }
        }
    }

    /// The ids of the users holding the configured role directly (`None` when no role is configured).
    async fn role_holders(&self) -> Result<Option<HashSet<String>>, Error> {
        let Some(role) = &self.settings.user_role else { return Ok(None) };
        let name: String = url::form_urlencoded::byte_serialize(role.name.as_bytes()).collect();
        let path = match &role.client {
            Some(client) => format!("/clients/{}/roles/{name}/users", self.client_uuid(client).await?),
            None => format!("/roles/{name}/users"),
        };
        let mut holders = HashSet::new();
        self.read_pages(&path, true, |user: UserId| {
            holders.insert(user.id);
        })
        .await
        .map_err(|err| match err {
            Error::Unavailable(why) if why.contains("HTTP 404") => {
                Error::Unavailable(format!("Keycloak has no {role} (user_role)"))
            }
            other => other,
        })?;
        Ok(Some(holders))
    }

    /// The number of users Keycloak counts.
    async fn user_count(&self) -> Result<u64, Error> {
        self.admin_get::<u64>("/users/count", &[])
            .await?
            .ok_or_else(|| Error::Unavailable("Keycloak admin API: /users/count does not exist (HTTP 404)".into()))
    }

    /// Every user of the realm (those holding the role, when one is configured), for a sync. The users are
    /// counted before and after: a listing during which users were added or removed (its pages may have
    /// shifted, skipping someone) is read again, and refused after [`LISTING_ATTEMPTS`].
    pub async fn list_accounts(&self, progress: &(dyn Fn(usize) + Send + Sync)) -> Result<Vec<ExternalAccount>, Error> {
        let holders = self.role_holders().await?;
        for attempt in 1..=LISTING_ATTEMPTS {
            let before = self.user_count().await?;
            let mut seen = HashSet::new();
            let mut accounts = Vec::new();
            self.read_pages("/users", false, |user: KeycloakUser| {
                if !seen.insert(user.id.clone()) {
                    return;
                }
                if holders.as_ref().is_none_or(|ids| ids.contains(&user.id)) {
                    accounts.push(self.account(user));
                }
                if seen.len() % (PAGE_SIZE * 10) == 0 {
                    progress(seen.len());
                }
            })
            .await?;
            progress(seen.len());
            let after = self.user_count().await?;
            if before == after {
                return Ok(accounts);
            }
            tracing::info!(
                realm = self.settings.realm,
                attempt,
                before,
                after,
                "users changed at Keycloak during the listing; reading it again"
            );
        }
        Err(Error::Unavailable(format!(
            "Keycloak's users kept changing during {LISTING_ATTEMPTS} listings; the next run tries again"
        )))
    }

    /// The connection test: the OpenID Connect steps, then, when the admin API is used, the service account's
    /// token, reading users (`view-users`), the role, and whether users carry the template and password
    /// attributes (Keycloak 24+ hides attributes its user profile does not declare). `sample` is looked up.
    pub async fn test(&self, sample: Option<&MailboxAddress>) -> Vec<(String, Result<String, String>)> {
        let mut steps = self.oidc.test().await;
        if !self.settings.uses_admin_api() {
            steps.push((
                "admin API".into(),
                Ok("not used (mailpassword_flow, periodic_sync and import_users are off)".into()),
            ));
            return steps;
        }
        match self.service_token(None).await {
            Ok(_) => steps.push((
                "client credentials".into(),
                Ok(format!("the service account of {} has a token", self.oidc.client().client_id)),
            )),
            Err(err) => {
                steps.push(("client credentials".into(), Err(err.to_string())));
                return steps;
            }
        }
        match self.user_count().await {
            Ok(count) => steps.push(("admin API readable (view-users)".into(), Ok(format!("{count} users")))),
            Err(err) => {
                steps.push(("admin API readable (view-users)".into(), Err(err.to_string())));
                return steps;
            }
        }
        if let Some(role) = &self.settings.user_role {
            let outcome = match self.role_holders().await {
                Ok(holders) => Ok(format!("{} users hold the {role}", holders.map_or(0, |h| h.len()))),
                Err(err) => Err(err.to_string()),
            };
            steps.push(("user role".into(), outcome));
        }
        steps.push(("attributes visible".into(), self.attribute_check().await));
        if let Some(address) = sample {
            let outcome = match self.users_with_address(address).await {
                Ok(mut users) if users.len() == 1 => {
                    let user = users.remove(0);
                    let has_password = user.attributes.contains_key(&self.settings.password_attribute);
                    let enabled = user.enabled;
                    let account = self.account(user);
                    Ok(format!(
                        "{} ({}; {}; template values: {}; {})",
                        account.subject,
                        account.display_name.as_deref().unwrap_or("no name"),
                        if enabled { "enabled" } else { "DISABLED" },
                        if account.template_values.is_empty() {
                            "none".into()
                        } else {
                            account.template_values.join(", ")
                        },
                        if has_password {
                            format!("{} set", self.settings.password_attribute)
                        } else {
                            format!("no {}", self.settings.password_attribute)
                        },
                    ))
                }
                Ok(users) if users.is_empty() => Err("no user has this address".to_string()),
                Ok(users) => Err(format!("{} users have this address; exactly one is needed", users.len())),
                Err(err) => Err(err.to_string()),
            };
            steps.push((format!("find {address}"), outcome));
        }
        steps
    }

    /// Whether any of the first page of users carries the attributes Gatehouse reads.
    async fn attribute_check(&self) -> Result<String, String> {
        let query = [("first", "0"), ("max", "100"), ("briefRepresentation", "false")];
        let users: Vec<KeycloakUser> =
            self.admin_get("/users", &query).await.map_err(|err| err.to_string())?.unwrap_or_default();
        if users.is_empty() {
            return Err("the realm has no users".into());
        }
        let template = &self.oidc.client().template_claim;
        let password = &self.settings.password_attribute;
        let mut wanted = vec![template.as_str()];
        if self.settings.mailpassword_flow {
            wanted.push(password.as_str());
        }
        let missing: Vec<&str> =
            wanted.iter().copied().filter(|name| !users.iter().any(|u| u.attributes.contains_key(*name))).collect();
        if missing.is_empty() {
            let carrying = |name: &str| users.iter().filter(|u| u.attributes.contains_key(name)).count();
            let counts: Vec<String> =
                wanted.iter().map(|name| format!("{name} on {} of {}", carrying(name), users.len())).collect();
            return Ok(counts.join(", "));
        }
        let named: Vec<String> = missing.iter().map(|name| format!("`{name}`")).collect();
        Err(format!(
            "no user carries {} — is the attribute declared in the realm's user profile? (Keycloak 24 and later \
             return only declared attributes; {} users read)",
            named.join(" / "),
            users.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_attributes_may_be_base64_wrapped() {
        assert_eq!(password_hash_of("{BLF-CRYPT}$2y$05$abc"), "{BLF-CRYPT}$2y$05$abc");
        assert_eq!(password_hash_of(" $6$salt$hash "), "$6$salt$hash");
        use base64::Engine;
        let wrapped = base64::engine::general_purpose::STANDARD.encode("{SSHA}c2FsdGVkaGFzaA==");
        assert_eq!(password_hash_of(&wrapped), "{SSHA}c2FsdGVkaGFzaA==");
        assert_eq!(password_hash_of("plain-text"), "plain-text", "not a hash, not base64 of one: left to refuse");
    }
}
