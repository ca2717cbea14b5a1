//! LDAP lookups: the user filter, searches with the service account (one page or all of them, RFC 2696), entries
//! as accounts, and the login itself — exactly one entry, then a bind as it.

use gatehouse_core::{Error, MailboxAddress};
use ldap3::{Ldap, Scope, SearchEntry, ldap_escape};

use super::{LdapDirectory, PAGE_SIZE, unavailable};
use crate::{ExternalAccount, SourceLogin};

/// Replaces `%u`, `%n` and `%d` in a filter with the escaped address, local part and domain.
pub fn user_filter(template: &str, address: &MailboxAddress) -> String {
    let full = ldap_escape(address.to_string());
    let local = ldap_escape(address.local_part());
    let domain = ldap_escape(address.domain().as_str());
    template.replace("%u", &full).replace("%n", &local).replace("%d", &domain)
}

impl LdapDirectory {
    /// The entries matching an address (searched with the service account).
    pub(super) async fn search(&self, address: &MailboxAddress) -> Result<Vec<SearchEntry>, Error> {
        let filter = self.settings.enabled_only(user_filter(&self.settings.user_filter, address));
        let attributes = self.wanted_attributes();
        // A pooled connection may have gone stale: retry once on a fresh one.
        for attempt in 0..2 {
            let mut ldap = self.service_connection().await?;
            match ldap
                .with_timeout(self.timeout())
                .search(&self.settings.base_dn, Scope::Subtree, &filter, attributes.clone())
                .await
                .and_then(|result| result.success())
            {
                Ok((entries, _)) => {
                    self.give_back(ldap).await;
                    return Ok(entries.into_iter().map(SearchEntry::construct).collect());
                }
                Err(err) if attempt == 0 => tracing::debug!("LDAP search failed, retrying on a new connection: {err}"),
                Err(err) => return Err(unavailable(format!("search failed: {err}"))),
            }
        }
        unreachable!("the loop returns")
    }

    /// The attributes a search asks for.
    pub(super) fn wanted_attributes(&self) -> Vec<String> {
        let mut attributes = vec![self.settings.mail_attribute.clone(), self.settings.display_name_attribute.clone()];
        attributes.extend(self.settings.template_attribute.clone());
        attributes
    }

    pub(super) async fn paged_search(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        attributes: Vec<String>,
    ) -> Result<Vec<SearchEntry>, Error> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(PAGE_SIZE))];
        let failed = |err: ldap3::LdapError| unavailable(format!("listing entries with {filter} failed: {err}"));
        let mut stream = ldap
            .with_timeout(self.timeout())
            .streaming_search_with(adapters, &self.settings.base_dn, Scope::Subtree, filter, attributes)
            .await
            .map_err(failed)?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await.map_err(failed)? {
            entries.push(SearchEntry::construct(entry));
        }
        stream.finish().await.success().map_err(failed)?;
        Ok(entries)
    }

    pub(super) fn account(&self, entry: SearchEntry) -> ExternalAccount {
        let first = |name: &str| {
            entry
                .attrs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, values)| values.first().cloned())
        };
        ExternalAccount {
            subject: entry.dn.clone(),
            address: first(&self.settings.mail_attribute).unwrap_or_default().to_lowercase(),
            display_name: first(&self.settings.display_name_attribute),
            enabled: true,
            template_values: self
                .settings
                .template_attribute
                .as_ref()
                .and_then(|name| entry.attrs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)))
                .map(|(_, values)| values.clone())
                .unwrap_or_default(),
            attributes: entry.attrs.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect(),
        }
    }

    /// Checks a password: one matching entry, then a bind as it on a fresh connection.
    pub async fn authenticate(&self, address: &MailboxAddress, password: &[u8]) -> Result<SourceLogin, Error> {
        if password.is_empty() {
            return Ok(SourceLogin::WrongPassword);
        }
        let Ok(password) = std::str::from_utf8(password) else {
            // LDAP simple binds carry UTF-8 passwords; anything else cannot be right.
            return Ok(SourceLogin::WrongPassword);
        };
        let mut entries = self.search(address).await?;
        match entries.len() {
            0 => return Ok(SourceLogin::NotFound),
            1 => {}
            many => return Ok(SourceLogin::Ambiguous(many)),
        }
        let entry = entries.remove(0);
        let mut ldap = self.connect().await?;
        let bound = ldap.with_timeout(self.timeout()).simple_bind(&entry.dn, password).await.map_err(unavailable)?;
        let _ = ldap.unbind().await;
        match bound.rc {
            0 => Ok(SourceLogin::Valid(self.account(entry))),
            // 49 invalidCredentials; 53 unwillingToPerform (e.g. disabled accounts in some servers).
            49 | 53 => Ok(SourceLogin::WrongPassword),
            other => Err(unavailable(format!("bind as {} answered {other}: {}", entry.dn, bound.text))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped() {
        let address = MailboxAddress::parse("alice+news@example.org").unwrap();
        assert_eq!(
            user_filter("(|(mail=%u)(uid=%n)(o=%d))", &address),
            "(|(mail=alice+news@example.org)(uid=alice+news)(o=example.org))"
        );
        // Addresses never contain filter syntax (they are validated first), and values are escaped anyway.
        assert_eq!(ldap_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
    }
}
