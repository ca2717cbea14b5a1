//! Sign-ins at OpenID Connect providers: the pending ones (started in one browser, finished by the provider's
//! redirect back to that browser) and the provider session a web session came from.
//!
//! A pending sign-in is keyed by the hash of its `state` and bound to the hash of a cookie set in the browser
//! that started it, so a `state` carried to another browser finishes nothing. It is taken once: of two
//! concurrent callbacks with the same `state`, one gets it, and an expired one is only deleted. The store never
//! sees the `state` or the cookie themselves. The nonce and the PKCE verifier are kept until the callback, which
//! needs them; they are worthless after it.

use gatehouse_core::Result;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, Set};

use crate::entity::{oidc_sign_in, web_session};
use crate::{Store, db_err, now};

/// A sign-in to remember until the provider sends the browser back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignIn {
    /// SHA-256 (hex) of the `state` sent to the provider.
    pub state_hash: String,
    /// The provider's name.
    pub provider: String,
    /// SHA-256 (hex) of the cookie that binds the sign-in to the browser.
    pub browser_hash: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// Which login it is for (`user`, `admin`, `domain_admin`).
    pub purpose: String,
    /// Unix seconds after which it cannot be finished.
    pub expires_at: i64,
}

/// A sign-in taken for its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The provider's name.
    pub provider: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// Which login it is for.
    pub purpose: String,
}

impl Store {
    /// Remembers a sign-in started at a provider, and forgets those that expired unfinished (so abandoned
    /// sign-ins, or a flood of started ones, never outlive their ten minutes).
    pub async fn begin_sign_in(&self, new: NewSignIn) -> Result<()> {
        self.purge_expired_sign_ins().await?;
        oidc_sign_in::ActiveModel {
            state_hash: Set(new.state_hash),
            provider: Set(new.provider),
            browser_hash: Set(new.browser_hash),
            nonce: Set(new.nonce),
            pkce_verifier: Set(new.pkce_verifier),
            purpose: Set(new.purpose),
            expires_at: Set(new.expires_at),
            created_at: Set(now()),
        }
        .insert(&self.db)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Takes the sign-in with this `state` hash started in the browser with this cookie hash: once, and only
    /// before it expires. `None` for an unknown, used, expired or other browser's sign-in; a sign-in shown with
    /// the wrong browser stays for its own.
    pub async fn take_sign_in(&self, state_hash: &str, browser_hash: &str) -> Result<Option<PendingSignIn>> {
        let mine =
            || oidc_sign_in::Column::StateHash.eq(state_hash).and(oidc_sign_in::Column::BrowserHash.eq(browser_hash));
        let Some(row) = oidc_sign_in::Entity::find().filter(mine()).one(&self.db).await.map_err(db_err)? else {
            return Ok(None);
        };
        let taken = oidc_sign_in::Entity::delete_many().filter(mine()).exec(&self.db).await.map_err(db_err)?;
        if taken.rows_affected != 1 || row.expires_at <= now() {
            return Ok(None);
        }
        Ok(Some(PendingSignIn {
            provider: row.provider,
            nonce: row.nonce,
            pkce_verifier: row.pkce_verifier,
            purpose: row.purpose,
        }))
    }

    /// Deletes sign-ins that expired unfinished. Returns how many.
    pub async fn purge_expired_sign_ins(&self) -> Result<u64> {
        let gone = oidc_sign_in::Entity::delete_many()
            .filter(oidc_sign_in::Column::ExpiresAt.lte(now()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(gone.rows_affected)
    }

    /// Records the provider session a web session was signed in at (`sid` and `sub` as the ID token gave them).
    pub async fn set_web_session_provider(
        &self,
        id: &str,
        provider: &str,
        session: Option<&str>,
        subject: &str,
    ) -> Result<()> {
        web_session::Entity::update_many()
            .col_expr(web_session::Column::IdpProvider, Some(provider.to_string()).into())
            .col_expr(web_session::Column::IdpSession, session.map(str::to_string).into())
            .col_expr(web_session::Column::IdpSubject, Some(subject.to_string()).into())
            .filter(web_session::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Ends the web sessions (and their webmail tokens) a provider's logout names: those of its session `sid`,
    /// or, without one, every session of its user `sub` (OpenID Connect Back-Channel Logout 1.0 §2.4). Returns
    /// how many; naming neither ends nothing.
    pub async fn end_provider_sessions(
        &self,
        provider: &str,
        session: Option<&str>,
        subject: Option<&str>,
    ) -> Result<u64> {
        let condition = match (session, subject) {
            (Some(sid), _) => web_session::Column::IdpSession.eq(sid),
            (None, Some(sub)) => web_session::Column::IdpSubject.eq(sub),
            (None, None) => return Ok(0),
        };
        let (_writer, txn) = self.begin().await?;
        let ids: Vec<String> = web_session::Entity::find()
            .filter(web_session::Column::IdpProvider.eq(provider))
            .filter(condition)
            .all(&txn)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|s| s.id)
            .collect();
        let ended = crate::web_sessions::end_sessions(&txn, ids).await?;
        crate::commit(txn).await?;
        let count = ended.len() as u64;
        self.announcer.announce_all(ended);
        Ok(count)
    }
}
