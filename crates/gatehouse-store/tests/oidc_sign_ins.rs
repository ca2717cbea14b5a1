//! Pending OpenID Connect sign-ins and provider sessions in the store, on SQLite, PostgreSQL and MariaDB: a
//! sign-in is finished once, only by the browser that started it and only before it expires (also under
//! concurrent callbacks), and a provider's logout ends the web sessions of its `sid` or `sub` with their webmail
//! tokens, and nothing else.

use gatehouse_store::*;

gatehouse_testkit::on_every_engine!(
    a_sign_in_is_taken_once_by_its_own_browser_before_it_expires,
    concurrent_callbacks_take_a_sign_in_once,
    a_provider_logout_ends_the_sessions_of_its_sid_or_sub,
);

fn sign_in(state: &str, browser: &str, expires_at: i64) -> NewSignIn {
    NewSignIn {
        state_hash: format!("state-{state}"),
        provider: "corp".into(),
        browser_hash: format!("browser-{browser}"),
        nonce: format!("nonce-{state}"),
        pkce_verifier: format!("verifier-{state}"),
        purpose: "user".into(),
        expires_at,
    }
}

fn in_ten_minutes() -> i64 {
    gatehouse_core::clock::now() + 600
}

async fn a_sign_in_is_taken_once_by_its_own_browser_before_it_expires(store: Store) {
    store.begin_sign_in(sign_in("a", "one", in_ten_minutes())).await.unwrap();
    assert_eq!(store.take_sign_in("state-a", "browser-two").await.unwrap(), None, "another browser's state");
    assert_eq!(store.take_sign_in("state-x", "browser-one").await.unwrap(), None, "an unknown state");
    let taken = store.take_sign_in("state-a", "browser-one").await.unwrap().expect("its own browser takes it");
    assert_eq!(
        taken,
        PendingSignIn {
            provider: "corp".into(),
            nonce: "nonce-a".into(),
            pkce_verifier: "verifier-a".into(),
            purpose: "user".into()
        }
    );
    assert_eq!(store.take_sign_in("state-a", "browser-one").await.unwrap(), None, "a replayed state");

    store.begin_sign_in(sign_in("b", "one", in_ten_minutes())).await.unwrap();
    store.begin_sign_in(sign_in("old", "one", gatehouse_core::clock::now() - 1)).await.unwrap();
    assert_eq!(store.purge_expired_sign_ins().await.unwrap(), 1, "only the expired one");
    store.begin_sign_in(sign_in("older", "one", gatehouse_core::clock::now() - 1)).await.unwrap();
    store.begin_sign_in(sign_in("d", "one", in_ten_minutes())).await.unwrap();
    assert_eq!(store.purge_expired_sign_ins().await.unwrap(), 0, "starting a sign-in forgets the expired ones");
    assert_eq!(store.take_sign_in("state-old", "browser-one").await.unwrap(), None);
    store.begin_sign_in(sign_in("late", "one", gatehouse_core::clock::now() - 1)).await.unwrap();
    assert_eq!(store.take_sign_in("state-late", "browser-one").await.unwrap(), None, "an expired state");
    assert_eq!(store.purge_expired_sign_ins().await.unwrap(), 0, "taking an expired sign-in deleted it");
    assert!(store.take_sign_in("state-b", "browser-one").await.unwrap().is_some());
    store.begin_sign_in(sign_in("c", "one", in_ten_minutes())).await.unwrap();
    assert!(store.begin_sign_in(sign_in("c", "two", in_ten_minutes())).await.is_err(), "a state is unique");
}

async fn concurrent_callbacks_take_a_sign_in_once(store: Store) {
    store.begin_sign_in(sign_in("race", "one", in_ten_minutes())).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_sign_in("state-race", "browser-one").await.unwrap().is_some() })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(task.await.unwrap());
    }
    assert_eq!(taken, 1, "exactly one of 8 concurrent callbacks finishes the sign-in");
}

async fn a_provider_logout_ends_the_sessions_of_its_sid_or_sub(store: Store) {
    let session = |id: &str, principal: &str| WebSessionRow {
        id: id.into(),
        principal_kind: USER_SESSIONS.into(),
        principal: principal.into(),
        data: "{}".into(),
        expires_at: in_ten_minutes(),
    };
    for (id, principal) in [
        ("s1", "alice@example.org"),
        ("s2", "alice@example.org"),
        ("s3", "bob@example.org"),
        ("s4", "alice@example.org"),
    ] {
        store.create_web_session(&session(id, principal)).await.unwrap();
    }
    store.set_web_session_provider("s1", "corp", Some("sid-1"), "sub-alice").await.unwrap();
    store.set_web_session_provider("s2", "corp", Some("sid-2"), "sub-alice").await.unwrap();
    store.set_web_session_provider("s3", "corp", Some("sid-3"), "sub-bob").await.unwrap();
    store.set_web_session_provider("s4", "other", Some("sid-1"), "sub-alice").await.unwrap();
    let token = store.create_sso_token("s1", "alice@example.org", "hash", None, in_ten_minutes()).await.unwrap();

    assert_eq!(store.end_provider_sessions("corp", None, None).await.unwrap(), 0, "naming nothing ends nothing");
    assert_eq!(store.end_provider_sessions("corp", Some("sid-1"), Some("sub-alice")).await.unwrap(), 1);
    assert!(store.web_session("s1").await.unwrap().is_none());
    assert!(store.sso_token(token).await.unwrap().is_none(), "its webmail token ended with it");
    assert!(store.web_session("s2").await.unwrap().is_some(), "a sid ends only its own session");
    assert!(store.web_session("s4").await.unwrap().is_some(), "another provider's sid is another session");

    assert_eq!(store.end_provider_sessions("corp", None, Some("sub-alice")).await.unwrap(), 1, "every session of sub");
    assert!(store.web_session("s2").await.unwrap().is_none());
    assert!(store.web_session("s3").await.unwrap().is_some(), "bob's stays");
    assert!(store.web_session("s4").await.unwrap().is_some(), "the other provider's stays");
}
