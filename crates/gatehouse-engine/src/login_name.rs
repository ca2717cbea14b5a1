//! Reading the login name: trimming and lowercasing, and recognising master logins, which come in two forms
//! (Dovecot's master-user page): `target*master` in the username field (the separator is configurable), or a
//! SASL authorization id that differs from the authentication id.

use gatehouse_core::Error;

/// Who is logging in, after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginName {
    /// The account whose data the session will use (the mailbox).
    pub target: String,
    /// The master user whose password is checked, for master logins.
    pub master: Option<String>,
}

/// A login name as the store keeps names: trimmed, lowercase, and the domain of an address in its ASCII form,
/// so `user@bücher.test` finds the mailbox stored as `user@xn--bcher-kva.test`. A domain that is not a valid
/// name stays as typed (and finds nothing).
pub fn normalise_name(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    match lower.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() => match gatehouse_core::DomainName::parse(domain) {
            Ok(ascii) => format!("{local}@{ascii}"),
            Err(_) => lower,
        },
        _ => lower,
    }
}

/// Parses a login. `authzid` is the SASL authorization id (empty or absent when not used); `separator` is
/// the master-user separator (Dovecot's `auth_master_user_separator`, usually `*`).
///
/// - `alice@example.org` → target alice, no master.
/// - `alice@example.org*admin` → target alice, master admin.
/// - authcid `admin`, authzid `alice@example.org` → target alice, master admin.
///
/// Both forms at once, an empty part, or a master logging in as itself are refused.
pub fn parse_login_name(username: &str, authzid: Option<&str>, separator: &str) -> Result<LoginName, Error> {
    let username = username.trim().to_lowercase();
    if username.is_empty() {
        return Err(Error::invalid("empty username"));
    }
    let authzid = authzid.map(normalise_name).filter(|a| !a.is_empty());
    let split = (!separator.is_empty()).then(|| username.split_once(separator)).flatten();
    let login = match (split, authzid) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("a master login uses either the separator or an authorization id, not both"));
        }
        (Some((target, master)), None) => {
            LoginName { target: normalise_name(target), master: Some(normalise_name(master)) }
        }
        (None, Some(target)) if target != normalise_name(&username) => {
            LoginName { target, master: Some(normalise_name(&username)) }
        }
        (None, _) => LoginName { target: normalise_name(&username), master: None },
    };
    if login.target.is_empty() || login.master.as_deref() == Some("") {
        return Err(Error::invalid("a master login needs both a target user and a master user"));
    }
    if login.master.as_deref() == Some(login.target.as_str()) {
        return Err(Error::invalid("a master user cannot log in as itself through a master login"));
    }
    Ok(login)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(user: &str, authzid: Option<&str>) -> Result<LoginName, Error> {
        parse_login_name(user, authzid, "*")
    }

    #[test]
    fn plain_logins_are_trimmed_and_lowercased() {
        assert_eq!(
            parse(" Alice@Example.ORG ", None).unwrap(),
            LoginName { target: "alice@example.org".into(), master: None }
        );
        assert_eq!(parse("alice@example.org", Some("alice@example.org")).unwrap().master, None);
    }

    #[test]
    fn both_master_forms_are_recognised() {
        let expected = LoginName { target: "alice@example.org".into(), master: Some("admin".into()) };
        assert_eq!(parse("alice@example.org*admin", None).unwrap(), expected);
        assert_eq!(parse("ADMIN", Some("Alice@example.org")).unwrap(), expected);
        assert_eq!(parse_login_name("alice@example.org%admin", None, "%").unwrap(), expected);
    }

    #[test]
    fn unicode_domains_are_read_in_their_stored_ascii_form() {
        assert_eq!(parse("User@Bücher.Test", None).unwrap().target, "user@xn--bcher-kva.test");
        let master = parse("user@bücher.test*admin@bücher.test", None).unwrap();
        assert_eq!(master.target, "user@xn--bcher-kva.test");
        assert_eq!(master.master.as_deref(), Some("admin@xn--bcher-kva.test"));
        assert_eq!(parse("admin", Some("user@BÜCHER.test")).unwrap().target, "user@xn--bcher-kva.test");
        assert_eq!(parse("user@not a domain ü", None).unwrap().target, "user@not a domain ü");
    }

    #[test]
    fn malformed_master_logins_are_refused() {
        assert!(parse("", None).is_err());
        assert!(parse("*admin", None).is_err());
        assert!(parse("alice@example.org*", None).is_err());
        assert!(parse("admin*admin", None).is_err());
        assert!(parse("alice@example.org*admin", Some("bob@example.org")).is_err());
    }
}
