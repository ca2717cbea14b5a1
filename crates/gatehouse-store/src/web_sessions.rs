//! Server-side web sessions and the webmail single-sign-on tokens bound to them.
//!
//! A session row is keyed by a hash of the cookie value (a database reader learns no usable cookie), holds who
//! it belongs to (so every session of an account can be ended) and the web layer's state as JSON, and expires
//! on its own. An SSO token belongs to exactly one session and one mailbox; it dies with the session (logout,
//! expiry) or when the web layer ends the impersonation it was minted for.

use gatehouse_core::Result;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set,
};

use crate::changes::{self, LoginChange};
use crate::entity::{sso_token, web_session};
use crate::{Store, db_err, now};

/// The `principal_kind` of mailbox owners' sessions.
pub const USER_SESSIONS: &str = "user";
/// The `principal_kind` of administrators' sessions.
pub const ADMIN_SESSIONS: &str = "admin";
/// The `principal_kind` of domain administrators' sessions.
pub const DOMAIN_ADMIN_SESSIONS: &str = "domain_admin";

/// Ends every web session of one account (and the SSO tokens they minted) inside the caller's transaction: a
/// deactivated, removed or re-passworded account keeps no open session anywhere. The ends are written to the
/// change feed; the caller announces the returned changes once its transaction has committed.
pub(crate) async fn end_sessions_of(
    db: &impl ConnectionTrait,
    principal_kind: &str,
    principal: &str,
) -> Result<Vec<LoginChange>> {
    let ids: Vec<String> = web_session::Entity::find()
        .filter(web_session::Column::PrincipalKind.eq(principal_kind))
        .filter(web_session::Column::Principal.eq(principal))
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|s| s.id)
        .collect();
    end_sessions(db, ids).await
}

/// Ends the web sessions `ids` (and their SSO tokens) inside the caller's transaction and writes their ends to the
/// change feed; returns the changes to announce after the commit.
pub(crate) async fn end_sessions(db: &impl ConnectionTrait, ids: Vec<String>) -> Result<Vec<LoginChange>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sso_token::Entity::delete_many()
        .filter(sso_token::Column::SessionId.is_in(ids.clone()))
        .exec(db)
        .await
        .map_err(db_err)?;
    web_session::Entity::delete_many()
        .filter(web_session::Column::Id.is_in(ids.clone()))
        .exec(db)
        .await
        .map_err(db_err)?;
    let mut ended = Vec::with_capacity(ids.len());
    for id in ids {
        let change = LoginChange::Session(id);
        changes::record(db, &change).await?;
        ended.push(change);
    }
    Ok(ended)
}

/// A stored web session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSessionRow {
    /// The hash of the cookie value.
    pub id: String,
    /// `user`, `admin` or `domain_admin`.
    pub principal_kind: String,
    /// The mailbox address or administrator name.
    pub principal: String,
    /// The web layer's state (JSON).
    pub data: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A live opening of a mailbox's webmail ([`Store::webmail_openings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebmailOpening {
    /// The web session that opened it.
    pub session_id: String,
    /// The administrator who opened it, for an impersonation.
    pub impersonator: Option<String>,
    /// Unix seconds.
    pub opened_at: i64,
}

/// A stored SSO token, as the login engine checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoTokenRow {
    /// Row id (part of the token).
    pub id: i64,
    /// The mailbox it opens.
    pub mailbox: String,
    /// SHA-256 (hex) of the secret part.
    pub secret_hash: String,
    /// The administrator who opened the mailbox, for impersonations.
    pub impersonator: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Whether the session that minted it still exists and has not expired.
    pub session_alive: bool,
}

impl Store {
    /// Stores a new session.
    pub async fn create_web_session(&self, row: &WebSessionRow) -> Result<()> {
        web_session::ActiveModel {
            id: Set(row.id.clone()),
            data: Set(row.data.clone()),
            expires_at: Set(row.expires_at),
            principal_kind: Set(row.principal_kind.clone()),
            principal: Set(row.principal.clone()),
            idp_provider: Set(None),
            idp_session: Set(None),
            idp_subject: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// A session that has not expired.
    pub async fn web_session(&self, id: &str) -> Result<Option<WebSessionRow>> {
        let row = web_session::Entity::find_by_id(id.to_string())
            .filter(web_session::Column::ExpiresAt.gt(now()))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| WebSessionRow {
            id: r.id,
            principal_kind: r.principal_kind,
            principal: r.principal,
            data: r.data,
            expires_at: r.expires_at,
        }))
    }

    /// Replaces a session's state and expiry.
    pub async fn update_web_session(&self, id: &str, data: &str, expires_at: i64) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        web_session::Entity::update_many()
            .col_expr(web_session::Column::Data, data.into())
            .col_expr(web_session::Column::ExpiresAt, expires_at.into())
            .filter(web_session::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let change = LoginChange::Session(id.to_string());
        changes::record(&txn, &change).await?;
        crate::commit(txn).await?;
        self.announcer.announce(change);
        Ok(())
    }

    /// Ends a session and every SSO token it minted.
    pub async fn delete_web_session(&self, id: &str) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let ended = end_sessions(&txn, vec![id.to_string()]).await?;
        crate::commit(txn).await?;
        self.announcer.announce_all(ended);
        Ok(())
    }

    /// The unexpired sessions of one account, the longest-lived last.
    pub async fn web_sessions_of(&self, principal_kind: &str, principal: &str) -> Result<Vec<WebSessionRow>> {
        let rows = web_session::Entity::find()
            .filter(web_session::Column::PrincipalKind.eq(principal_kind))
            .filter(web_session::Column::Principal.eq(principal))
            .filter(web_session::Column::ExpiresAt.gt(now()))
            .order_by_desc(web_session::Column::ExpiresAt)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| WebSessionRow {
                id: r.id,
                principal_kind: r.principal_kind,
                principal: r.principal,
                data: r.data,
                expires_at: r.expires_at,
            })
            .collect())
    }

    /// Who has the webmail of `mailbox` open now: the live SSO tokens minted for it, oldest first, each with its
    /// session, the administrator who opened it (for impersonations) and when.
    pub async fn webmail_openings(&self, mailbox: &str) -> Result<Vec<WebmailOpening>> {
        let at = now();
        let tokens = sso_token::Entity::find()
            .filter(sso_token::Column::Mailbox.eq(mailbox))
            .filter(sso_token::Column::ExpiresAt.gt(at))
            .order_by_asc(sso_token::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let ids: Vec<String> = tokens.iter().map(|t| t.session_id.clone()).collect();
        let alive: std::collections::HashSet<String> = web_session::Entity::find()
            .filter(web_session::Column::Id.is_in(ids))
            .filter(web_session::Column::ExpiresAt.gt(at))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|s| s.id)
            .collect();
        Ok(tokens
            .into_iter()
            .filter(|t| alive.contains(&t.session_id))
            .map(|t| WebmailOpening { session_id: t.session_id, impersonator: t.impersonator, opened_at: t.created_at })
            .collect())
    }

    /// How many unexpired sessions one account has open.
    pub async fn count_web_sessions_of(&self, principal_kind: &str, principal: &str) -> Result<u64> {
        web_session::Entity::find()
            .filter(web_session::Column::PrincipalKind.eq(principal_kind))
            .filter(web_session::Column::Principal.eq(principal))
            .filter(web_session::Column::ExpiresAt.gt(now()))
            .count(&self.db)
            .await
            .map_err(db_err)
    }

    /// Ends every session of one account (after a password change, deactivation, removal). Returns how many.
    pub async fn delete_web_sessions_of(&self, principal_kind: &str, principal: &str) -> Result<u64> {
        let (_writer, txn) = self.begin().await?;
        let ended = end_sessions_of(&txn, principal_kind, principal).await?;
        crate::commit(txn).await?;
        let count = ended.len() as u64;
        self.announcer.announce_all(ended);
        Ok(count)
    }

    /// Deletes expired sessions and SSO tokens. Returns how many sessions.
    pub async fn purge_expired_web_sessions(&self) -> Result<u64> {
        let time = now();
        let (_writer, txn) = self.begin().await?;
        sso_token::Entity::delete_many()
            .filter(sso_token::Column::ExpiresAt.lte(time))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let gone = web_session::Entity::delete_many()
            .filter(web_session::Column::ExpiresAt.lte(time))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        crate::commit(txn).await?;
        Ok(gone.rows_affected)
    }

    /// Stores an SSO token for `mailbox`, bound to session `session_id`; returns its id.
    pub async fn create_sso_token(
        &self,
        session_id: &str,
        mailbox: &str,
        secret_hash: &str,
        impersonator: Option<&str>,
        expires_at: i64,
    ) -> Result<i64> {
        let row = sso_token::ActiveModel {
            id: NotSet,
            session_id: Set(session_id.to_string()),
            mailbox: Set(mailbox.to_string()),
            secret_hash: Set(secret_hash.to_string()),
            impersonator: Set(impersonator.map(str::to_string)),
            expires_at: Set(expires_at),
            created_at: Set(now()),
        }
        .insert(&self.db)
        .await
        .map_err(db_err)?;
        Ok(row.id)
    }

    /// One SSO token with the state of its session.
    pub async fn sso_token(&self, id: i64) -> Result<Option<SsoTokenRow>> {
        let Some(token) = sso_token::Entity::find_by_id(id).one(&self.db).await.map_err(db_err)? else {
            return Ok(None);
        };
        let session_alive = web_session::Entity::find_by_id(token.session_id.clone())
            .filter(web_session::Column::ExpiresAt.gt(now()))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .is_some();
        Ok(Some(SsoTokenRow {
            id: token.id,
            mailbox: token.mailbox,
            secret_hash: token.secret_hash,
            impersonator: token.impersonator,
            expires_at: token.expires_at,
            session_alive,
        }))
    }

    /// Deletes the SSO tokens a session minted for `mailbox` (the end of an impersonation).
    pub async fn delete_sso_tokens(&self, session_id: &str, mailbox: &str) -> Result<()> {
        sso_token::Entity::delete_many()
            .filter(sso_token::Column::SessionId.eq(session_id))
            .filter(sso_token::Column::Mailbox.eq(mailbox))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
