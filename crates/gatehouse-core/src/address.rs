//! Mailbox addresses and domain names, normalised as the store keeps them: lowercase, domains in their ASCII
//! (IDNA / punycode) form.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A domain name in ASCII form (`xn--…` for internationalised names), lowercase, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Parses and normalises a domain name given in Unicode or ASCII form.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(Error::invalid("domain name is empty"));
        }
        let ascii = idna::domain_to_ascii_strict(trimmed)
            .map_err(|_| Error::invalid(format!("'{trimmed}' is not a valid domain name")))?;
        if ascii.len() > 253 {
            return Err(Error::invalid(format!("domain name '{trimmed}' is longer than 253 characters")));
        }
        if !ascii.contains('.') {
            return Err(Error::invalid(format!(
                "domain name '{trimmed}' has no dot; a mail domain needs at least two labels"
            )));
        }
        for label in ascii.split('.') {
            let valid = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                return Err(Error::invalid(format!("'{trimmed}' is not a valid domain name")));
            }
        }
        Ok(DomainName(ascii))
    }

    /// The ASCII (punycode) form of a part of a domain name typed in Unicode ("bücher" → "xn--bcher-kva"),
    /// for searching stored names; `None` when it has none.
    pub fn ascii_form(text: &str) -> Option<String> {
        idna::domain_to_ascii(text.trim()).ok().filter(|ascii| !ascii.is_empty())
    }

    /// The stored ASCII form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Unicode form, for display.
    pub fn to_unicode(&self) -> String {
        idna::domain_to_unicode(&self.0).0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DomainName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DomainName::parse(s)
    }
}

/// A mailbox address `local@domain`, lowercase, with the domain in ASCII form.
///
/// Local parts are limited to letters, digits and `. _ - + = ' ! # $ & / ? ^ ` { | } ~`; `*` and `%` are refused
/// because Dovecot and other tools use them as master-user separators, and an address containing one would be
/// ambiguous at login.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxAddress {
    local_part: String,
    domain: DomainName,
}

impl MailboxAddress {
    /// Parses and normalises an address.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        let (local, domain) = trimmed
            .rsplit_once('@')
            .ok_or_else(|| Error::invalid(format!("'{trimmed}' is not a mail address (no '@')")))?;
        let local_part = local.to_lowercase();
        Self::check_local_part(&local_part, trimmed)?;
        let domain = DomainName::parse(domain)
            .map_err(|err| Error::invalid(format!("'{trimmed}' is not a valid mail address: {err}")))?;
        Ok(MailboxAddress { local_part, domain })
    }

    /// Builds an address from an already-normalised domain and a local part.
    pub fn from_parts(local_part: &str, domain: DomainName) -> Result<Self, Error> {
        let local_part = local_part.trim().to_lowercase();
        Self::check_local_part(&local_part, &format!("{local_part}@{domain}"))?;
        Ok(MailboxAddress { local_part, domain })
    }

    fn check_local_part(local: &str, whole: &str) -> Result<(), Error> {
        const SPECIALS: &[u8] = b"._-+='!#$&/?^`{|}~";
        if local.is_empty() || local.len() > 64 {
            return Err(Error::invalid(format!("'{whole}': the part before '@' must be 1 to 64 characters")));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(Error::invalid(format!("'{whole}': dots may not start, end or repeat in the local part")));
        }
        if let Some(bad) = local.chars().find(|c| !(c.is_ascii_alphanumeric() || SPECIALS.contains(&(*c as u8)))) {
            return Err(Error::invalid(format!("'{whole}': the character '{bad}' is not allowed in a mailbox name")));
        }
        Ok(())
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        &self.local_part
    }

    /// The domain.
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }
}

impl fmt::Display for MailboxAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.domain)
    }
}

impl FromStr for MailboxAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MailboxAddress::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internationalised_domains_are_stored_as_ascii() {
        let domain = DomainName::parse("Bücher.Example").unwrap();
        assert_eq!(domain.as_str(), "xn--bcher-kva.example");
        assert_eq!(domain.to_unicode(), "bücher.example");
        let address = MailboxAddress::parse(" Alice@BÜCHER.example ").unwrap();
        assert_eq!(address.to_string(), "alice@xn--bcher-kva.example");
    }

    #[test]
    fn bad_domains_are_refused() {
        for bad in ["", "localhost", "-a.example", "a..example", "a_b.example", "exa mple.org"] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn bad_addresses_are_refused_with_a_reason() {
        for bad in ["alice", "@example.org", "a..b@example.org", ".a@example.org", "a*b@example.org", "a%b@example.org"]
        {
            assert!(MailboxAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let err = MailboxAddress::parse("a*master@example.org").unwrap_err();
        assert!(err.to_string().contains("'*' is not allowed"), "{err}");
    }
}
