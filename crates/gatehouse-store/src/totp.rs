//! TOTP secrets and recovery codes of mailboxes and administrators.
//!
//! A principal (a mailbox, or an administrator or domain administrator: one `admins` table) has at most one
//! secret row (unique per principal): unconfirmed while the user enrols, confirmed once a first code was
//! checked. Codes themselves are checked by the web layer (`gatehouse_server::totp`); the store keeps what
//! must hold across processes sharing one database:
//!
//! - replay protection: [`Store::use_totp_step`] claims a time step with one conditional `UPDATE`, so a code
//!   works once even when two processes check it at the same moment;
//! - single use of recovery codes: [`Store::use_recovery_code`] marks a code used with an `UPDATE … WHERE
//!   used_at IS NULL`.
//!
//! Recovery codes are stored as hashes computed by the caller. Enabling or disabling TOTP on a mailbox bumps
//! its revision: the login engine refuses the primary password for mail protocols while TOTP is on, and
//! caches its results per revision.

use gatehouse_core::text::login_name;
use gatehouse_core::{Error, MailboxAddress, Result};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, Set};
use serde::Serialize;
use serde_json::json;

use crate::entity::{admin, totp_recovery_code, totp_secret};
use crate::login::bump_mailbox_revision;
use crate::logs::audit;
use crate::{Actor, Store, commit, db_err, now};

/// Whose TOTP: a mailbox (user), or an administrator or domain administrator by username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpPrincipal<'a> {
    /// A mailbox, for its web logins.
    Mailbox(&'a MailboxAddress),
    /// An administrator or domain administrator (one username namespace).
    Admin(&'a str),
}

/// TOTP as set up for one principal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TotpState {
    /// A confirmed secret exists: web logins need a code, mail protocols need app passwords (mailboxes).
    pub enabled: bool,
    /// An enrolment was started and not confirmed yet.
    pub pending: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: usize,
}

/// A principal resolved to its row.
pub(crate) struct Principal {
    /// `mailbox` or `admin`, as stored in `principal_kind`.
    pub(crate) kind: &'static str,
    /// The mailbox's or admin's id.
    pub(crate) id: i64,
    /// The address or username, for messages and the audit log.
    pub(crate) name: String,
}

impl Principal {
    /// Bumps the mailbox revision when TOTP on a mailbox changed (admins have no login cache entry to expire);
    /// [`Principal::change`] is then announced after the commit.
    pub(crate) async fn bump_revision(&self, db: &impl ConnectionTrait) -> Result<()> {
        if self.kind == "mailbox" { bump_mailbox_revision(db, self.id, &self.name).await } else { Ok(()) }
    }

    /// The login change a TOTP change of this principal is (none for administrators).
    pub(crate) fn change(&self) -> Option<crate::LoginChange> {
        (self.kind == "mailbox").then(|| crate::LoginChange::Mailbox(self.name.clone()))
    }
}

impl Store {
    /// Resolves a principal to its row id; an unknown one is [`Error::NotFound`].
    pub(crate) async fn totp_principal(
        &self,
        db: &impl ConnectionTrait,
        principal: TotpPrincipal<'_>,
    ) -> Result<Principal> {
        match principal {
            TotpPrincipal::Mailbox(address) => {
                let row = self.mailbox_row(db, address).await?;
                Ok(Principal { kind: "mailbox", id: row.id, name: row.address })
            }
            TotpPrincipal::Admin(username) => {
                let name = login_name("admin", username)?;
                let row = admin::Entity::find()
                    .filter(admin::Column::Username.eq(name.as_str()))
                    .one(db)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("admin", name))?;
                Ok(Principal { kind: "admin", id: row.id, name: row.username })
            }
        }
    }

    /// The secret row of a principal, confirmed or not (there is at most one).
    async fn totp_row(&self, db: &impl ConnectionTrait, principal: &Principal) -> Result<Option<totp_secret::Model>> {
        totp_secret::Entity::find()
            .filter(totp_secret::Column::PrincipalKind.eq(principal.kind))
            .filter(totp_secret::Column::PrincipalId.eq(principal.id))
            .one(db)
            .await
            .map_err(db_err)
    }

    /// Whether TOTP is enabled or being set up, and how many recovery codes are left.
    pub async fn totp_state(&self, principal: TotpPrincipal<'_>) -> Result<TotpState> {
        let principal = self.totp_principal(&self.db, principal).await?;
        let row = self.totp_row(&self.db, &principal).await?;
        let left = totp_recovery_code::Entity::find()
            .filter(totp_recovery_code::Column::PrincipalKind.eq(principal.kind))
            .filter(totp_recovery_code::Column::PrincipalId.eq(principal.id))
            .filter(totp_recovery_code::Column::UsedAt.is_null())
            .count(&self.db)
            .await
            .map_err(db_err)?;
        Ok(TotpState {
            enabled: row.as_ref().is_some_and(|r| r.confirmed),
            pending: row.as_ref().is_some_and(|r| !r.confirmed),
            recovery_codes_left: usize::try_from(left).unwrap_or(usize::MAX),
        })
    }

    /// Starts an enrolment: stores `secret` (base32, made by the caller) unconfirmed, replacing an earlier
    /// unconfirmed one. Refused while TOTP is enabled: disable it first.
    pub async fn begin_totp(&self, actor: &Actor, principal: TotpPrincipal<'_>, secret: &str) -> Result<()> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(Error::invalid("a TOTP secret cannot be empty"));
        }
        let (_writer, txn) = self.begin().await?;
        let principal = self.totp_principal(&txn, principal).await?;
        match self.totp_row(&txn, &principal).await? {
            Some(row) if row.confirmed => {
                return Err(Error::refused(format!(
                    "TOTP is already enabled for {}; disable it before setting it up again",
                    principal.name
                )));
            }
            Some(row) => {
                let mut pending: totp_secret::ActiveModel = row.into();
                pending.secret = Set(secret.to_string());
                pending.last_used_step = Set(None);
                pending.created_at = Set(now());
                pending.update(&txn).await.map_err(db_err)?;
            }
            None => {
                totp_secret::ActiveModel {
                    id: NotSet,
                    principal_kind: Set(principal.kind.to_string()),
                    principal_id: Set(principal.id),
                    secret: Set(secret.to_string()),
                    confirmed: Set(false),
                    last_used_step: Set(None),
                    created_at: Set(now()),
                }
                .insert(&txn)
                .await
                .map_err(db_err)?;
            }
        }
        audit(&txn, actor, "totp.begin", &principal.name, json!({ "principal": principal.kind })).await?;
        commit(txn).await
    }

    /// The secret of an enrolment in progress (to check the first code against), if any.
    pub async fn pending_totp_secret(&self, principal: TotpPrincipal<'_>) -> Result<Option<String>> {
        let principal = self.totp_principal(&self.db, principal).await?;
        Ok(self.totp_row(&self.db, &principal).await?.filter(|row| !row.confirmed).map(|row| row.secret))
    }

    /// The confirmed secret and the last time step used with it, if TOTP is enabled.
    pub async fn totp_secret(&self, principal: TotpPrincipal<'_>) -> Result<Option<(String, Option<i64>)>> {
        let principal = self.totp_principal(&self.db, principal).await?;
        Ok(self
            .totp_row(&self.db, &principal)
            .await?
            .filter(|row| row.confirmed)
            .map(|row| (row.secret, row.last_used_step)))
    }

    /// Enables TOTP: confirms the pending secret after the caller checked a first code (of time `step`, which
    /// counts as used), and replaces the recovery codes with these hashes. Refused without a pending
    /// enrolment (or when another request confirmed or replaced it meanwhile).
    pub async fn confirm_totp(
        &self,
        actor: &Actor,
        principal: TotpPrincipal<'_>,
        step: i64,
        recovery_code_hashes: Vec<String>,
    ) -> Result<()> {
        if step < 0 {
            return Err(Error::invalid("a TOTP time step cannot be negative"));
        }
        if recovery_code_hashes.iter().any(|hash| hash.trim().is_empty()) {
            return Err(Error::invalid("a recovery code hash cannot be empty"));
        }
        let (_writer, txn) = self.begin().await?;
        let principal = self.totp_principal(&txn, principal).await?;
        let row = match self.totp_row(&txn, &principal).await? {
            Some(row) if row.confirmed => {
                return Err(Error::refused(format!("TOTP is already enabled for {}", principal.name)));
            }
            Some(row) => row,
            None => {
                return Err(Error::refused(format!(
                    "no TOTP setup is pending for {}; start the setup again",
                    principal.name
                )));
            }
        };
        // Conditional on the row still being the unconfirmed one read above: of two concurrent confirmations,
        // one wins.
        let confirmed = totp_secret::Entity::update_many()
            .col_expr(totp_secret::Column::Confirmed, Expr::value(true))
            .col_expr(totp_secret::Column::LastUsedStep, Expr::value(step))
            .filter(totp_secret::Column::Id.eq(row.id))
            .filter(totp_secret::Column::Confirmed.eq(false))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if confirmed.rows_affected != 1 {
            return Err(Error::refused(format!("the TOTP setup of {} changed meanwhile; start again", principal.name)));
        }
        delete_recovery_codes(&txn, &principal).await?;
        let count = recovery_code_hashes.len();
        if !recovery_code_hashes.is_empty() {
            let created_at = now();
            let rows = recovery_code_hashes.into_iter().map(|hash| totp_recovery_code::ActiveModel {
                id: NotSet,
                principal_kind: Set(principal.kind.to_string()),
                principal_id: Set(principal.id),
                code_hash: Set(hash),
                used_at: Set(None),
                created_at: Set(created_at),
            });
            totp_recovery_code::Entity::insert_many(rows).exec(&txn).await.map_err(db_err)?;
        }
        principal.bump_revision(&txn).await?;
        audit(
            &txn,
            actor,
            "totp.enable",
            &principal.name,
            json!({
                "principal": principal.kind, "recovery_codes": count,
            }),
        )
        .await?;
        commit(txn).await?;
        if let Some(change) = principal.change() {
            self.announcer.announce(change);
        }
        Ok(())
    }

    /// Claims time step `step` of the confirmed secret after the caller checked a code: true if no code of
    /// this or a later step was used before. One conditional `UPDATE`, so it holds across processes: of
    /// concurrent claims of one step, exactly one succeeds. False also when TOTP is not enabled.
    pub async fn use_totp_step(&self, principal: TotpPrincipal<'_>, step: i64) -> Result<bool> {
        let principal = self.totp_principal(&self.db, principal).await?;
        let result = totp_secret::Entity::update_many()
            .col_expr(totp_secret::Column::LastUsedStep, Expr::value(step))
            .filter(totp_secret::Column::PrincipalKind.eq(principal.kind))
            .filter(totp_secret::Column::PrincipalId.eq(principal.id))
            .filter(totp_secret::Column::Confirmed.eq(true))
            .filter(
                Condition::any()
                    .add(totp_secret::Column::LastUsedStep.is_null())
                    .add(totp_secret::Column::LastUsedStep.lt(step)),
            )
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(result.rows_affected == 1)
    }

    /// Uses a recovery code (given as its hash): true if an unused code with this hash existed; it is marked
    /// used (conditionally, so a code works once even when submitted twice at the same moment) and the use is
    /// audited.
    pub async fn use_recovery_code(
        &self,
        actor: &Actor,
        principal: TotpPrincipal<'_>,
        code_hash: &str,
    ) -> Result<bool> {
        let (_writer, txn) = self.begin().await?;
        let principal = self.totp_principal(&txn, principal).await?;
        let unused = || {
            totp_recovery_code::Entity::find()
                .filter(totp_recovery_code::Column::PrincipalKind.eq(principal.kind))
                .filter(totp_recovery_code::Column::PrincipalId.eq(principal.id))
                .filter(totp_recovery_code::Column::UsedAt.is_null())
        };
        let Some(code) =
            unused().filter(totp_recovery_code::Column::CodeHash.eq(code_hash)).one(&txn).await.map_err(db_err)?
        else {
            return Ok(false);
        };
        let marked = totp_recovery_code::Entity::update_many()
            .col_expr(totp_recovery_code::Column::UsedAt, Expr::value(now()))
            .filter(totp_recovery_code::Column::Id.eq(code.id))
            .filter(totp_recovery_code::Column::UsedAt.is_null())
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if marked.rows_affected != 1 {
            return Ok(false);
        }
        let left = unused().count(&txn).await.map_err(db_err)?;
        audit(
            &txn,
            actor,
            "totp.recovery_code",
            &principal.name,
            json!({
                "principal": principal.kind, "codes_left": left,
            }),
        )
        .await?;
        commit(txn).await?;
        Ok(true)
    }

    /// Disables TOTP (or cancels an enrolment): removes the secret and the recovery codes. False, with nothing
    /// written, when there was nothing to remove.
    pub async fn disable_totp(&self, actor: &Actor, principal: TotpPrincipal<'_>) -> Result<bool> {
        let (_writer, txn) = self.begin().await?;
        let principal = self.totp_principal(&txn, principal).await?;
        let was_enabled = self.totp_row(&txn, &principal).await?.map(|row| row.confirmed);
        let secrets = totp_secret::Entity::delete_many()
            .filter(totp_secret::Column::PrincipalKind.eq(principal.kind))
            .filter(totp_secret::Column::PrincipalId.eq(principal.id))
            .exec(&txn)
            .await
            .map_err(db_err)?
            .rows_affected;
        let codes = delete_recovery_codes(&txn, &principal).await?;
        if secrets == 0 && codes == 0 {
            return Ok(false);
        }
        principal.bump_revision(&txn).await?;
        audit(
            &txn,
            actor,
            "totp.disable",
            &principal.name,
            json!({
                "principal": principal.kind, "was_enabled": was_enabled.unwrap_or(false),
            }),
        )
        .await?;
        commit(txn).await?;
        if let Some(change) = principal.change() {
            self.announcer.announce(change);
        }
        Ok(true)
    }
}

/// Deletes all recovery codes of a principal; returns how many.
async fn delete_recovery_codes(db: &impl ConnectionTrait, principal: &Principal) -> Result<u64> {
    Ok(totp_recovery_code::Entity::delete_many()
        .filter(totp_recovery_code::Column::PrincipalKind.eq(principal.kind))
        .filter(totp_recovery_code::Column::PrincipalId.eq(principal.id))
        .exec(db)
        .await
        .map_err(db_err)?
        .rows_affected)
}

/// Deletes the TOTP secret and recovery codes of a mailbox (`"mailbox"`) or admin (`"admin"`) about to be
/// removed, inside the caller's transaction: the tables have no foreign key (two kinds of principal), so
/// nothing else cleans them up, and a later row could otherwise inherit them if an id were reused.
pub(crate) async fn delete_totp_of(db: &impl ConnectionTrait, kind: &'static str, id: i64) -> Result<()> {
    let principal = Principal { kind, id, name: String::new() };
    totp_secret::Entity::delete_many()
        .filter(totp_secret::Column::PrincipalKind.eq(kind))
        .filter(totp_secret::Column::PrincipalId.eq(id))
        .exec(db)
        .await
        .map_err(db_err)?;
    delete_recovery_codes(db, &principal).await?;
    Ok(())
}
