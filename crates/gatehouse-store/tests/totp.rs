//! TOTP in the store, run unchanged against SQLite, PostgreSQL and MariaDB, each test in its own fresh
//! database: enrolment, replay protection (also under concurrent claims), single-use recovery codes, the
//! mailbox revision the login engine caches by, and principals that do not exist. Without
//! `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` the server variants skip on a developer machine and fail in CI.

use gatehouse_core::{DomainName, Error, MailboxAddress};
use gatehouse_engine::Directory;
use gatehouse_store::*;

gatehouse_testkit::on_every_engine!(
    enrolment_enable_and_disable_a_mailbox,
    a_used_step_and_older_steps_are_refused,
    concurrent_claims_of_one_step_succeed_once,
    recovery_codes_work_once,
    administrators_have_their_own_totp,
    unknown_principals_are_not_found,
    removing_an_account_removes_its_totp,
);

fn cli() -> Actor {
    Actor { name: "cli:test".into(), role: ActorRole::Cli }
}

fn address(text: &str) -> MailboxAddress {
    MailboxAddress::parse(text).unwrap()
}

/// A domain with one mailbox, `alice@example.org`.
async fn alice(store: &Store) -> MailboxAddress {
    store.create_domain(&cli(), NewDomain::new(DomainName::parse("example.org").unwrap())).await.unwrap();
    let alice = address("alice@example.org");
    store.create_mailbox(&cli(), NewMailbox::new(alice.clone())).await.unwrap();
    alice
}

/// The mailbox as the login engine sees it: (TOTP enabled, revision).
async fn login_view(store: &Store, address: &str) -> (bool, i64) {
    let login = Directory::mailbox(store, address).await.unwrap().unwrap();
    (login.second_factor_enabled, login.revision)
}

async fn audit_actions(store: &Store, subject: &str) -> Vec<String> {
    let filter = LogFilter { subject: Some(subject.into()), limit: Some(1000), ..Default::default() };
    let mut actions: Vec<String> = store
        .audit_log(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("totp."))
        .collect();
    actions.reverse();
    actions
}

/// Enables TOTP with `step` as the first code's step and these recovery code hashes.
async fn enable(store: &Store, principal: TotpPrincipal<'_>, step: i64, hashes: &[&str]) {
    store.begin_totp(&cli(), principal, "JBSWY3DPEHPK3PXP").await.unwrap();
    store.confirm_totp(&cli(), principal, step, hashes.iter().map(|h| h.to_string()).collect()).await.unwrap();
}

async fn enrolment_enable_and_disable_a_mailbox(store: Store) {
    let alice = alice(&store).await;
    let me = TotpPrincipal::Mailbox(&alice);
    assert_eq!(store.totp_state(me).await.unwrap(), TotpState::default());
    assert_eq!(store.pending_totp_secret(me).await.unwrap(), None);
    let (enabled, initial) = login_view(&store, "alice@example.org").await;
    assert!(!enabled);

    // Confirming needs a pending enrolment.
    let err = store.confirm_totp(&cli(), me, 10, vec![]).await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");

    // An enrolment in progress: pending, not enabled, nothing changes for logins.
    store.begin_totp(&cli(), me, "FIRSTSECRET").await.unwrap();
    store.begin_totp(&cli(), me, "SECONDSECRET").await.unwrap();
    assert_eq!(store.pending_totp_secret(me).await.unwrap().as_deref(), Some("SECONDSECRET"), "replaced");
    assert_eq!(store.totp_secret(me).await.unwrap(), None, "unconfirmed secrets are not for logins");
    assert_eq!(
        store.totp_state(me).await.unwrap(),
        TotpState { enabled: false, pending: true, recovery_codes_left: 0 }
    );
    assert_eq!(login_view(&store, "alice@example.org").await, (false, initial));
    assert!(!store.use_totp_step(me, 5).await.unwrap(), "no step can be claimed before confirmation");

    // Confirmed: enabled, the first code's step counts as used, recovery codes stored, revision bumped.
    store.confirm_totp(&cli(), me, 1000, vec!["h1".into(), "h2".into(), "h3".into()]).await.unwrap();
    assert_eq!(
        store.totp_state(me).await.unwrap(),
        TotpState { enabled: true, pending: false, recovery_codes_left: 3 }
    );
    assert_eq!(store.totp_secret(me).await.unwrap(), Some(("SECONDSECRET".to_string(), Some(1000))));
    assert_eq!(store.pending_totp_secret(me).await.unwrap(), None);
    let (enabled, after_enable) = login_view(&store, "alice@example.org").await;
    assert!(enabled, "the login engine sees TOTP on");
    assert!(after_enable > initial, "enabling bumps the revision");

    // While enabled, a new enrolment or a second confirmation is refused and changes nothing.
    let err = store.begin_totp(&cli(), me, "THIRDSECRET").await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("disable it"), "{err}");
    let err = store.confirm_totp(&cli(), me, 1001, vec![]).await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    assert_eq!(store.totp_secret(me).await.unwrap(), Some(("SECONDSECRET".to_string(), Some(1000))));
    assert_eq!(store.totp_state(me).await.unwrap().recovery_codes_left, 3);

    // Disabled: secret and codes gone, revision bumped; disabling again is a no-op.
    assert!(store.disable_totp(&cli(), me).await.unwrap());
    assert_eq!(store.totp_state(me).await.unwrap(), TotpState::default());
    assert_eq!(store.totp_secret(me).await.unwrap(), None);
    let (enabled, after_disable) = login_view(&store, "alice@example.org").await;
    assert!(!enabled);
    assert!(after_disable > after_enable, "disabling bumps the revision");
    assert!(!store.disable_totp(&cli(), me).await.unwrap());
    assert_eq!(login_view(&store, "alice@example.org").await.1, after_disable);

    // A fresh enrolment after disabling starts without recovery codes or a used step.
    enable(&store, me, 2000, &["h9"]).await;
    assert_eq!(store.totp_state(me).await.unwrap().recovery_codes_left, 1);
    assert!(!store.use_recovery_code(&cli(), me, "h1").await.unwrap(), "old codes are gone");
    assert!(store.use_totp_step(me, 2001).await.unwrap());

    // Cancelling a pending enrolment is disabling too.
    store.disable_totp(&cli(), me).await.unwrap();
    store.begin_totp(&cli(), me, "PENDING").await.unwrap();
    assert!(store.disable_totp(&cli(), me).await.unwrap());
    assert_eq!(store.totp_state(me).await.unwrap(), TotpState::default());

    assert_eq!(
        audit_actions(&store, "alice@example.org").await,
        [
            "totp.begin",
            "totp.begin",
            "totp.enable",
            "totp.disable",
            "totp.begin",
            "totp.enable",
            "totp.disable",
            "totp.begin",
            "totp.disable"
        ]
    );
    let err = store.begin_totp(&cli(), me, "  ").await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
}

async fn a_used_step_and_older_steps_are_refused(store: Store) {
    let alice = alice(&store).await;
    let me = TotpPrincipal::Mailbox(&alice);
    enable(&store, me, 100, &[]).await;
    assert!(!store.use_totp_step(me, 100).await.unwrap(), "the confirming code's step is used");
    assert!(!store.use_totp_step(me, 99).await.unwrap(), "an older step");
    assert!(store.use_totp_step(me, 101).await.unwrap());
    assert!(!store.use_totp_step(me, 101).await.unwrap(), "replay of the same step");
    assert!(!store.use_totp_step(me, 100).await.unwrap(), "an older step");
    assert!(store.use_totp_step(me, 105).await.unwrap(), "a later step, skipping some");
    assert_eq!(store.totp_secret(me).await.unwrap().unwrap().1, Some(105));
    assert!(!store.use_totp_step(me, 104).await.unwrap());
}

async fn concurrent_claims_of_one_step_succeed_once(store: Store) {
    let alice = alice(&store).await;
    enable(&store, TotpPrincipal::Mailbox(&alice), 100, &[]).await;
    for step in [200, 201] {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let alice = alice.clone();
                tokio::spawn(async move { store.use_totp_step(TotpPrincipal::Mailbox(&alice), step).await.unwrap() })
            })
            .collect();
        let mut successes = 0;
        for task in tasks {
            successes += usize::from(task.await.unwrap());
        }
        assert_eq!(successes, 1, "exactly one of 8 concurrent claims of step {step} succeeds");
    }
}

async fn recovery_codes_work_once(store: Store) {
    let alice = alice(&store).await;
    let me = TotpPrincipal::Mailbox(&alice);
    assert!(!store.use_recovery_code(&cli(), me, "h1").await.unwrap(), "no codes before enabling");
    enable(&store, me, 100, &["h1", "h2", "h3"]).await;
    let before = login_view(&store, "alice@example.org").await;
    assert!(store.use_recovery_code(&cli(), me, "h1").await.unwrap());
    assert!(!store.use_recovery_code(&cli(), me, "h1").await.unwrap(), "a code works once");
    assert!(!store.use_recovery_code(&cli(), me, "unknown").await.unwrap());
    assert_eq!(store.totp_state(me).await.unwrap().recovery_codes_left, 2);
    assert_eq!(login_view(&store, "alice@example.org").await, before, "using a code changes nothing for logins");

    // Submitted 8 times at once, a code still works once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let alice = alice.clone();
            tokio::spawn(
                async move { store.use_recovery_code(&cli(), TotpPrincipal::Mailbox(&alice), "h2").await.unwrap() },
            )
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        successes += usize::from(task.await.unwrap());
    }
    assert_eq!(successes, 1);
    assert_eq!(store.totp_state(me).await.unwrap().recovery_codes_left, 1);

    let uses = audit_actions(&store, "alice@example.org").await;
    assert_eq!(uses.iter().filter(|a| *a == "totp.recovery_code").count(), 2, "{uses:?}");

    // Confirming a new enrolment replaces the codes.
    store.disable_totp(&cli(), me).await.unwrap();
    enable(&store, me, 300, &["n1", "n2"]).await;
    assert!(!store.use_recovery_code(&cli(), me, "h3").await.unwrap());
    assert!(store.use_recovery_code(&cli(), me, "n2").await.unwrap());
    assert_eq!(store.totp_state(me).await.unwrap().recovery_codes_left, 1);
}

async fn administrators_have_their_own_totp(store: Store) {
    // Mailbox 1 and admin 1 share an id; their TOTP must not mix.
    let alice = alice(&store).await;
    store.create_admin(&cli(), "root", "{PLAIN}x".into()).await.unwrap();
    store
        .create_domain_admin(
            &cli(),
            NewDomainAdmin {
                username: "postmaster".into(),
                password_hash: "{PLAIN}x".into(),
                domains: vec![DomainName::parse("example.org").unwrap()],
                acl: vec![],
            },
        )
        .await
        .unwrap();
    let revision = login_view(&store, "alice@example.org").await.1;

    enable(&store, TotpPrincipal::Admin("root"), 500, &["r1"]).await;
    let root = store.totp_state(TotpPrincipal::Admin("ROOT")).await.unwrap();
    assert_eq!(root, TotpState { enabled: true, pending: false, recovery_codes_left: 1 }, "usernames are normalised");
    assert_eq!(store.totp_state(TotpPrincipal::Mailbox(&alice)).await.unwrap(), TotpState::default());
    assert_eq!(store.totp_state(TotpPrincipal::Admin("postmaster")).await.unwrap(), TotpState::default());
    assert_eq!(login_view(&store, "alice@example.org").await, (false, revision));
    assert!(!store.use_recovery_code(&cli(), TotpPrincipal::Mailbox(&alice), "r1").await.unwrap());
    assert!(!store.use_totp_step(TotpPrincipal::Mailbox(&alice), 600).await.unwrap());

    // A domain admin enrols the same way.
    let postmaster = TotpPrincipal::Admin("postmaster");
    store.begin_totp(&cli(), postmaster, "PMSECRET").await.unwrap();
    assert!(store.totp_state(postmaster).await.unwrap().pending);
    store.confirm_totp(&cli(), postmaster, 700, vec!["p1".into()]).await.unwrap();
    assert!(store.use_totp_step(postmaster, 701).await.unwrap());
    assert!(!store.use_totp_step(postmaster, 701).await.unwrap());
    assert!(store.use_recovery_code(&cli(), postmaster, "p1").await.unwrap());
    assert_eq!(
        store.totp_secret(TotpPrincipal::Admin("root")).await.unwrap(),
        Some(("JBSWY3DPEHPK3PXP".into(), Some(500)))
    );

    assert!(store.disable_totp(&cli(), TotpPrincipal::Admin("root")).await.unwrap());
    assert!(!store.totp_state(TotpPrincipal::Admin("root")).await.unwrap().enabled);
    assert!(store.totp_state(postmaster).await.unwrap().enabled);
    assert_eq!(audit_actions(&store, "root").await, ["totp.begin", "totp.enable", "totp.disable"]);
}

async fn unknown_principals_are_not_found(store: Store) {
    alice(&store).await;
    let bob = address("bob@example.org");
    for principal in [TotpPrincipal::Mailbox(&bob), TotpPrincipal::Admin("nobody")] {
        let errors = [
            store.totp_state(principal).await.unwrap_err(),
            store.begin_totp(&cli(), principal, "SECRET").await.unwrap_err(),
            store.pending_totp_secret(principal).await.unwrap_err(),
            store.totp_secret(principal).await.unwrap_err(),
            store.confirm_totp(&cli(), principal, 1, vec![]).await.unwrap_err(),
            store.use_totp_step(principal, 1).await.unwrap_err(),
            store.use_recovery_code(&cli(), principal, "h").await.unwrap_err(),
            store.disable_totp(&cli(), principal).await.unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, Error::NotFound { .. }), "{principal:?}: {err:?}");
        }
    }
    assert!(audit_actions(&store, "bob@example.org").await.is_empty());
}

async fn removing_an_account_removes_its_totp(store: Store) {
    let alice = alice(&store).await;
    enable(&store, TotpPrincipal::Mailbox(&alice), 100, &["h1", "h2"]).await;
    store.remove_mailbox(&cli(), &alice).await.unwrap();
    store.create_mailbox(&cli(), NewMailbox::new(alice.clone())).await.unwrap();
    let state = store.totp_state(TotpPrincipal::Mailbox(&alice)).await.unwrap();
    assert!(!state.enabled && !state.pending && state.recovery_codes_left == 0, "{state:?}");

    store.create_admin(&cli(), "second", "{PLAIN}x".into()).await.unwrap();
    store.create_admin(&cli(), "third", "{PLAIN}x".into()).await.unwrap();
    enable(&store, TotpPrincipal::Admin("second"), 7, &["h3"]).await;
    store.remove_admin(&cli(), "second", AdminRole::Admin).await.unwrap();
    store.create_admin(&cli(), "second", "{PLAIN}x".into()).await.unwrap();
    assert!(!store.totp_state(TotpPrincipal::Admin("second")).await.unwrap().enabled);
}
