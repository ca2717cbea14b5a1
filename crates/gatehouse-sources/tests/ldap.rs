//! The LDAP identity source against a real OpenLDAP slapd: bind authentication over plain, StartTLS and LDAPS,
//! CA checks, multi-valued attributes, ambiguous and unknown entries, empty passwords, failover and outages.

use gatehouse_core::{Error, Fault, MailboxAddress, Secret};
use gatehouse_sources::SourceLogin;
use gatehouse_sources::ldap::{LdapDirectory, LdapSecurity, LdapSettings};
use gatehouse_testkit::slapd::{Slapd, make_ca};

const PEOPLE: &str = "dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Example
displayName: Carol Example
mail: carol@example.org
employeeType: staff
employeeType: it
userPassword: carolpw

dn: uid=dave1,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dave1
cn: Dave
sn: One
mail: dave@example.org
userPassword: davepw

dn: uid=dave2,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dave2
cn: Dave
sn: Two
mail: dave@example.org
userPassword: davepw
";

fn settings(slapd: &Slapd, security: LdapSecurity) -> LdapSettings {
    LdapSettings {
        hosts: vec!["127.0.0.1".into()],
        port: Some(if security == LdapSecurity::Ldaps { slapd.ldaps_port } else { slapd.ldap_port }),
        security,
        ca_file: Some(slapd.ca_file()),
        ignore_tls_errors: false,
        bind_dn: "cn=admin,dc=example,dc=org".into(),
        base_dn: "ou=people,dc=example,dc=org".into(),
        user_filter: "(&(objectClass=inetOrgPerson)(mail=%u))".into(),
        mail_attribute: "mail".into(),
        template_attribute: Some("employeeType".into()),
        display_name_attribute: "displayName".into(),
        timeout_seconds: 5,
        sync_filter: None,
        disabled_filter: None,
        provisioning: Default::default(),
    }
}

fn directory(settings: LdapSettings) -> LdapDirectory {
    LdapDirectory::new(settings, Secret::new("adminpw")).unwrap()
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

#[tokio::test]
async fn bind_authentication_over_plain_starttls_and_ldaps() {
    let Some(slapd) = Slapd::start(PEOPLE) else { return };
    for security in [LdapSecurity::Plain, LdapSecurity::StartTls, LdapSecurity::Ldaps] {
        let ldap = directory(settings(&slapd, security));
        let SourceLogin::Valid(account) = ldap.authenticate(&address("carol@example.org"), b"carolpw").await.unwrap()
        else {
            panic!("carol should log in over {security:?}");
        };
        assert_eq!(account.subject, "uid=carol,ou=people,dc=example,dc=org");
        assert_eq!(account.address, "carol@example.org");
        assert_eq!(account.display_name.as_deref(), Some("Carol Example"));
        assert_eq!(account.attributes["employeetype"], vec!["staff".to_string(), "it".to_string()]);
        assert_eq!(
            ldap.authenticate(&address("carol@example.org"), b"wrong").await.unwrap(),
            SourceLogin::WrongPassword
        );
        assert_eq!(ldap.authenticate(&address("nobody@example.org"), b"x").await.unwrap(), SourceLogin::NotFound);
    }
}

#[tokio::test]
async fn empty_passwords_ambiguous_entries_and_filter_values_are_refused() {
    let Some(slapd) = Slapd::start(PEOPLE) else { return };
    let ldap = directory(settings(&slapd, LdapSecurity::Plain));
    // An empty simple bind would be an anonymous bind, which slapd accepts: it must never reach the server.
    assert_eq!(ldap.authenticate(&address("carol@example.org"), b"").await.unwrap(), SourceLogin::WrongPassword);
    assert_eq!(ldap.authenticate(&address("dave@example.org"), b"davepw").await.unwrap(), SourceLogin::Ambiguous(2));
    // A filter on the local part: values are escaped, so a crafted name cannot widen the search.
    let by_uid = LdapSettings { user_filter: "(uid=%n)".into(), ..settings(&slapd, LdapSecurity::Plain) };
    let ldap = directory(by_uid);
    assert!(matches!(
        ldap.authenticate(&address("carol@example.org"), b"carolpw").await.unwrap(),
        SourceLogin::Valid(_)
    ));
    assert_eq!(ldap.authenticate(&address("dave+x@example.org"), b"davepw").await.unwrap(), SourceLogin::NotFound);
    assert_eq!(gatehouse_sources::ldap::user_filter("(uid=%n)", &address("a=b@example.org")), "(uid=a=b)");
    let filter_without_placeholder =
        LdapSettings { user_filter: "(objectClass=*)".into(), ..settings(&slapd, LdapSecurity::Plain) };
    assert!(LdapDirectory::new(filter_without_placeholder, Secret::new("x")).is_err());
}

#[tokio::test]
async fn certificates_are_checked_unless_told_otherwise() {
    let Some(slapd) = Slapd::start(PEOPLE) else { return };
    let other_ca = make_ca(slapd.dir(), "other");
    for security in [LdapSecurity::StartTls, LdapSecurity::Ldaps] {
        let wrong_ca = LdapSettings { ca_file: Some(other_ca.clone()), ..settings(&slapd, security) };
        let err = directory(wrong_ca).authenticate(&address("carol@example.org"), b"carolpw").await.unwrap_err();
        assert_eq!(err.fault(), Fault::Server, "{err}");
        let ignored = LdapSettings { ca_file: None, ignore_tls_errors: true, ..settings(&slapd, security) };
        let login = directory(ignored).authenticate(&address("carol@example.org"), b"carolpw").await.unwrap();
        assert!(matches!(login, SourceLogin::Valid(_)), "{security:?} with ignore_tls_errors");
    }
}

#[tokio::test]
async fn every_host_is_tried_and_an_outage_is_a_temporary_failure() {
    let Some(mut slapd) = Slapd::start(PEOPLE) else { return };
    // 127.0.0.2 has no server: the second host answers.
    let failover =
        LdapSettings { hosts: vec!["127.0.0.2".into(), "127.0.0.1".into()], ..settings(&slapd, LdapSecurity::Plain) };
    let ldap = directory(failover);
    assert!(matches!(
        ldap.authenticate(&address("carol@example.org"), b"carolpw").await.unwrap(),
        SourceLogin::Valid(_)
    ));
    slapd.stop();
    let err = ldap.authenticate(&address("carol@example.org"), b"carolpw").await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    let err = ldap.authenticate(&address("carol@example.org"), b"wrong").await.unwrap_err();
    assert_eq!(err.fault(), Fault::Server, "an outage is never a wrong password: {err}");
}

#[tokio::test]
async fn the_connection_test_reports_each_step() {
    let Some(slapd) = Slapd::start(PEOPLE) else { return };
    let steps = directory(settings(&slapd, LdapSecurity::Ldaps)).test(Some(&address("carol@example.org"))).await;
    let names: Vec<&str> = steps.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "connect (TCP and TLS)",
            "bind as the service account",
            "read the search base ou=people,dc=example,dc=org",
            "find carol@example.org"
        ]
    );
    assert!(steps.iter().all(|(_, outcome)| outcome.is_ok()), "{steps:?}");
    assert!(steps[3].1.as_ref().unwrap().ends_with("template values: staff, it"), "{steps:?}");

    let wrong = LdapDirectory::new(settings(&slapd, LdapSecurity::StartTls), Secret::new("not-the-password")).unwrap();
    let steps = wrong.test(None).await;
    assert_eq!(steps.len(), 2, "stops at the failed bind: {steps:?}");
    assert!(steps[0].1.is_ok() && steps[1].1.is_err(), "{steps:?}");
    let other_ca = make_ca(slapd.dir(), "other");
    let untrusted = LdapSettings { ca_file: Some(other_ca), ..settings(&slapd, LdapSecurity::Ldaps) };
    let steps = directory(untrusted).test(None).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0].1.is_err(), "{steps:?}");
}
