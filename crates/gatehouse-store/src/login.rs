//! The store as the login engine's [`Directory`]: the lookups a login needs, and the revision numbers that
//! keep the engine's result cache honest.

use gatehouse_core::{AdminRole, Error, MailboxAddress, Result};
use gatehouse_engine::{
    AdminLogin, AppPasswordLogin, Directory, LegacyCandidates, MailboxLogin, MasterLogin, MasterScopeLogin,
    PasskeyLogin, PasskeyOwnerLogin, SecondFactorOwner, SsoTokenLogin, TotpSecretLogin,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query, QueryStatementBuilder, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use zeroize::Zeroize;

use crate::changes::{self, LoginChange};
use crate::entity::{
    admin, admin_domain, app_password, domain, identity_provider, mailbox, master_user, master_user_domain, passkey,
    totp_secret,
};
use crate::templates::parse_protocols;
use crate::{Store, db_err};

/// Bumps the revision of one mailbox (any change that can affect its logins) and writes the change to the feed;
/// the caller announces it once its transaction has committed.
pub(crate) async fn bump_mailbox_revision(db: &impl ConnectionTrait, mailbox_id: i64, address: &str) -> Result<()> {
    mailbox::Entity::update_many()
        .col_expr(mailbox::Column::Revision, Expr::col(mailbox::Column::Revision).add(1))
        .filter(mailbox::Column::Id.eq(mailbox_id))
        .exec(db)
        .await
        .map_err(db_err)?;
    changes::record(db, &LoginChange::Mailbox(address.to_string())).await
}

/// Bumps the revision of every mailbox of a domain (the domain changed) and writes the change to the feed; the
/// caller announces it once its transaction has committed.
pub(crate) async fn bump_domain_revisions(db: &impl ConnectionTrait, domain_id: i64, name: &str) -> Result<()> {
    mailbox::Entity::update_many()
        .col_expr(mailbox::Column::Revision, Expr::col(mailbox::Column::Revision).add(1))
        .filter(mailbox::Column::DomainId.eq(domain_id))
        .exec(db)
        .await
        .map_err(db_err)?;
    changes::record(db, &LoginChange::Domain(name.to_string())).await
}

/// The names of the domains with these ids (ids without a domain are skipped).
async fn domain_names(db: &impl ConnectionTrait, ids: impl Iterator<Item = i64>) -> Result<Vec<String>> {
    let ids: Vec<i64> = ids.collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = domain::Entity::find()
        .filter(domain::Column::Id.is_in(ids))
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    Ok(names)
}

/// What legacy app passwords' fingerprints are keyed for.
const LEGACY_FINGERPRINT: &str = "gatehouse legacy app password fingerprint v1";

impl Store {
    /// The keyed fingerprint of a legacy app password's secret, bound to its mailbox.
    fn legacy_fingerprint(&self, mailbox_id: i64, secret: &[u8]) -> String {
        let mut data = mailbox_id.to_be_bytes().to_vec();
        data.extend_from_slice(secret);
        let fingerprint = self.secret_key.fingerprint(LEGACY_FINGERPRINT, &data);
        data.zeroize();
        fingerprint
    }
}

/// An app-password row as the engine sees it.
fn app_password_login(row: app_password::Model) -> Result<AppPasswordLogin, Error> {
    Ok(AppPasswordLogin {
        id: row.id,
        mailbox_id: row.mailbox_id,
        protocols: parse_protocols(&row.protocols)?,
        secret_hash: row.secret_hash,
        active: row.active,
        expires_at: row.expires_at,
    })
}

impl Directory for Store {
    async fn mailbox(&self, address: &str) -> Result<Option<MailboxLogin>, Error> {
        // One statement per login (the mailbox, its domain, whether a confirmed TOTP secret or a passkey exists): this runs
        // for every login, cached ones included, so it stays a single round trip.
        let totp = Query::select()
            .expr(Expr::col((totp_secret::Entity, totp_secret::Column::Id)).count())
            .from(totp_secret::Entity)
            .and_where(Expr::col((totp_secret::Entity, totp_secret::Column::PrincipalKind)).eq("mailbox"))
            .and_where(
                Expr::col((totp_secret::Entity, totp_secret::Column::PrincipalId))
                    .equals((mailbox::Entity, mailbox::Column::Id)),
            )
            .and_where(Expr::col((totp_secret::Entity, totp_secret::Column::Confirmed)).eq(true))
            .to_owned();
        let passkeys = Query::select()
            .expr(Expr::col((passkey::Entity, passkey::Column::Id)).count())
            .from(passkey::Entity)
            .and_where(Expr::col((passkey::Entity, passkey::Column::PrincipalKind)).eq("mailbox"))
            .and_where(
                Expr::col((passkey::Entity, passkey::Column::PrincipalId))
                    .equals((mailbox::Entity, mailbox::Column::Id)),
            )
            .to_owned();
        let legacy = Query::select()
            .expr(Expr::col((app_password::Entity, app_password::Column::Id)).count())
            .from(app_password::Entity)
            .and_where(
                Expr::col((app_password::Entity, app_password::Column::MailboxId))
                    .equals((mailbox::Entity, mailbox::Column::Id)),
            )
            .and_where(Expr::col((app_password::Entity, app_password::Column::Legacy)).eq(true))
            .to_owned();
        let query = Query::select()
            .columns([
                (mailbox::Entity, mailbox::Column::Id),
                (mailbox::Entity, mailbox::Column::Address),
                (mailbox::Entity, mailbox::Column::Protocols),
                (mailbox::Entity, mailbox::Column::Active),
                (mailbox::Entity, mailbox::Column::AuthSource),
                (mailbox::Entity, mailbox::Column::ExternalId),
                (mailbox::Entity, mailbox::Column::PasswordHash),
                (mailbox::Entity, mailbox::Column::Revision),
                (mailbox::Entity, mailbox::Column::ForceTotp),
                (mailbox::Entity, mailbox::Column::ForcePasswordChange),
            ])
            .expr_as(Expr::col((domain::Entity, domain::Column::Name)), "domain_name")
            .expr_as(Expr::col((domain::Entity, domain::Column::Active)), "domain_active")
            .expr_as(Expr::col((identity_provider::Entity, identity_provider::Column::Active)), "provider_active")
            .expr_as(SimpleExpr::SubQuery(None, Box::new(totp.into_sub_query_statement())), "totp")
            .expr_as(SimpleExpr::SubQuery(None, Box::new(passkeys.into_sub_query_statement())), "passkeys")
            .expr_as(SimpleExpr::SubQuery(None, Box::new(legacy.into_sub_query_statement())), "legacy")
            .from(mailbox::Entity)
            .inner_join(
                domain::Entity,
                Expr::col((domain::Entity, domain::Column::Id)).equals((mailbox::Entity, mailbox::Column::DomainId)),
            )
            .left_join(
                identity_provider::Entity,
                Expr::col((identity_provider::Entity, identity_provider::Column::Name))
                    .equals((mailbox::Entity, mailbox::Column::AuthSource)),
            )
            .and_where(Expr::col((mailbox::Entity, mailbox::Column::Address)).eq(address))
            .to_owned();
        let backend = self.db.get_database_backend();
        let Some(row) = self.db.query_one_raw(backend.build(&query)).await.map_err(db_err)? else {
            return Ok(None);
        };
        let get = |err: sea_orm::DbErr| Error::Internal(format!("reading mailbox {address}: {err}"));
        let totp: i64 = row.try_get("", "totp").map_err(get)?;
        let passkeys: i64 = row.try_get("", "passkeys").map_err(get)?;
        let legacy: i64 = row.try_get("", "legacy").map_err(get)?;
        let protocols: String = row.try_get("", "protocols").map_err(get)?;
        let auth_source: String = row.try_get("", "auth_source").map_err(get)?;
        let provider_active: Option<bool> = row.try_get("", "provider_active").map_err(get)?;
        Ok(Some(MailboxLogin {
            id: row.try_get("", "id").map_err(get)?,
            protocols: parse_protocols(&protocols)?,
            address: row.try_get("", "address").map_err(get)?,
            domain: row.try_get("", "domain_name").map_err(get)?,
            active: row.try_get("", "active").map_err(get)?,
            domain_active: row.try_get("", "domain_active").map_err(get)?,
            source_active: auth_source == "local" || provider_active == Some(true),
            auth_source,
            external_id: row.try_get("", "external_id").map_err(get)?,
            password_hash: row.try_get("", "password_hash").map_err(get)?,
            second_factor_enabled: totp > 0 || passkeys > 0,
            legacy_app_passwords: legacy > 0,
            force_totp: row.try_get("", "force_totp").map_err(get)?,
            force_password_change: row.try_get("", "force_password_change").map_err(get)?,
            revision: row.try_get("", "revision").map_err(get)?,
        }))
    }

    async fn app_password(&self, id: i64) -> Result<Option<AppPasswordLogin>, Error> {
        let Some(row) = app_password::Entity::find_by_id(id).one(&self.db).await.map_err(db_err)? else {
            return Ok(None);
        };
        // A legacy app password is typed as the bare secret, never as a token.
        if row.legacy {
            return Ok(None);
        }
        app_password_login(row).map(Some)
    }

    async fn legacy_app_passwords(&self, mailbox_id: i64, secret: &[u8]) -> Result<LegacyCandidates, Error> {
        let fingerprint = self.legacy_fingerprint(mailbox_id, secret);
        let rows = app_password::Entity::find()
            .filter(app_password::Column::MailboxId.eq(mailbox_id))
            .filter(app_password::Column::Legacy.eq(true))
            .filter(
                Condition::any()
                    .add(app_password::Column::Fingerprint.eq(fingerprint.as_str()))
                    .add(app_password::Column::Fingerprint.is_null()),
            )
            .order_by_asc(app_password::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut candidates = LegacyCandidates::default();
        for row in rows {
            if row.fingerprint.as_deref() == Some(fingerprint.as_str()) {
                candidates.by_fingerprint = Some(app_password_login(row)?);
            } else {
                candidates.unrecorded.push(app_password_login(row)?);
            }
        }
        Ok(candidates)
    }

    async fn remember_legacy_app_password(&self, mailbox_id: i64, id: i64, secret: &[u8]) -> Result<(), Error> {
        app_password::Entity::update_many()
            .col_expr(app_password::Column::Fingerprint, Expr::value(self.legacy_fingerprint(mailbox_id, secret)))
            .filter(app_password::Column::Id.eq(id))
            .filter(app_password::Column::MailboxId.eq(mailbox_id))
            .filter(app_password::Column::Legacy.eq(true))
            .filter(app_password::Column::Fingerprint.is_null())
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn master_user(&self, username: &str) -> Result<Option<MasterLogin>, Error> {
        let Some(row) = master_user::Entity::find()
            .filter(master_user::Column::Username.eq(username))
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let scope = match row.scope.as_str() {
            "global" => MasterScopeLogin::Global,
            "domain" => {
                let id = row.domain_id.ok_or_else(|| Error::Internal("domain master without domain".into()))?;
                let domain = domain::Entity::find_by_id(id).one(&self.db).await.map_err(db_err)?;
                MasterScopeLogin::Domain(domain.map(|d| d.name).unwrap_or_default())
            }
            _ => {
                let links = master_user_domain::Entity::find()
                    .filter(master_user_domain::Column::MasterUserId.eq(row.id))
                    .all(&self.db)
                    .await
                    .map_err(db_err)?;
                MasterScopeLogin::Owned(domain_names(&self.db, links.iter().map(|l| l.domain_id)).await?)
            }
        };
        Ok(Some(MasterLogin {
            username: row.username,
            password_hash: row.password_hash,
            scope,
            active: row.active,
            revision: row.revision,
        }))
    }

    async fn admin_as_master(&self, username: &str) -> Result<Option<MasterLogin>, Error> {
        let Some(row) =
            admin::Entity::find().filter(admin::Column::Username.eq(username)).one(&self.db).await.map_err(db_err)?
        else {
            return Ok(None);
        };
        let scope = match row.role.as_str() {
            "admin" => MasterScopeLogin::Global,
            _ if row.acl.split(',').any(|p| p == "login_as") => {
                let links = admin_domain::Entity::find()
                    .filter(admin_domain::Column::AdminId.eq(row.id))
                    .all(&self.db)
                    .await
                    .map_err(db_err)?;
                MasterScopeLogin::Owned(domain_names(&self.db, links.iter().map(|l| l.domain_id)).await?)
            }
            _ => return Ok(None),
        };
        // Admin rows carry no revision; their modification time changes with every edit.
        Ok(Some(MasterLogin {
            username: row.username,
            password_hash: row.password_hash,
            scope,
            active: row.active,
            revision: row.modified_at,
        }))
    }

    async fn sso_token(&self, id: i64) -> Result<Option<SsoTokenLogin>, Error> {
        Ok(Store::sso_token(self, id).await?.map(|t| SsoTokenLogin {
            mailbox: t.mailbox,
            secret_hash: t.secret_hash,
            expires_at: t.expires_at,
            session_alive: t.session_alive,
            impersonator: t.impersonator,
        }))
    }

    async fn admin(&self, username: &str) -> Result<Option<AdminLogin>, Error> {
        let row =
            admin::Entity::find().filter(admin::Column::Username.eq(username)).one(&self.db).await.map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let principal = crate::TotpPrincipal::Admin(&row.username);
        let second_factor_enabled =
            self.totp_state(principal).await?.enabled || !self.passkeys(principal).await?.is_empty();
        Ok(Some(AdminLogin {
            kind: AdminRole::parse(&row.role)?,
            username: row.username,
            password_hash: row.password_hash,
            active: row.active,
            second_factor_enabled,
            force_totp: row.force_totp,
            force_password_change: row.force_password_change,
        }))
    }

    async fn totp_secret(&self, owner: &SecondFactorOwner) -> Result<Option<TotpSecretLogin>, Error> {
        let secret = match owner {
            SecondFactorOwner::Mailbox(address) => {
                self.totp_secret(crate::TotpPrincipal::Mailbox(&MailboxAddress::parse(address)?)).await?
            }
            SecondFactorOwner::Administrator(name) => self.totp_secret(crate::TotpPrincipal::Admin(name)).await?,
        };
        Ok(secret.map(|(secret, _)| TotpSecretLogin { secret }))
    }

    async fn passkeys(&self, owner: &SecondFactorOwner) -> Result<Vec<PasskeyLogin>, Error> {
        let found = match owner {
            SecondFactorOwner::Mailbox(address) => {
                Store::passkeys(self, crate::TotpPrincipal::Mailbox(&MailboxAddress::parse(address)?)).await
            }
            SecondFactorOwner::Administrator(name) => Store::passkeys(self, crate::TotpPrincipal::Admin(name)).await,
        };
        match found {
            Ok(passkeys) => {
                Ok(passkeys.into_iter().map(|p| PasskeyLogin { id: p.id, credential: p.credential }).collect())
            }
            Err(Error::NotFound { .. }) => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }

    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<PasskeyOwnerLogin>, Error> {
        Ok(Store::passkey_by_credential(self, credential_id).await?.map(|(owner, passkey)| PasskeyOwnerLogin {
            owner: match owner {
                crate::PasskeyOwner::Mailbox(address) => SecondFactorOwner::Mailbox(address),
                crate::PasskeyOwner::Admin(name) => SecondFactorOwner::Administrator(name),
            },
            user_handle: passkey.user_handle,
            passkey: PasskeyLogin { id: passkey.id, credential: passkey.credential },
        }))
    }

    async fn record_passkey_use(&self, id: i64, counter: i64, credential: String) -> Result<(), Error> {
        Store::record_passkey_use(self, id, counter, credential).await
    }

    async fn claim_totp_step(&self, owner: &SecondFactorOwner, step: i64) -> Result<bool, Error> {
        match owner {
            SecondFactorOwner::Mailbox(address) => {
                self.use_totp_step(crate::TotpPrincipal::Mailbox(&MailboxAddress::parse(address)?), step).await
            }
            SecondFactorOwner::Administrator(name) => self.use_totp_step(crate::TotpPrincipal::Admin(name), step).await,
        }
    }

    async fn use_recovery_code(&self, owner: &SecondFactorOwner, code_hash: &str) -> Result<bool, Error> {
        match owner {
            SecondFactorOwner::Mailbox(address) => {
                let address = MailboxAddress::parse(address)?;
                let actor = crate::Actor { name: address.to_string(), role: crate::ActorRole::User };
                Store::use_recovery_code(self, &actor, crate::TotpPrincipal::Mailbox(&address), code_hash).await
            }
            SecondFactorOwner::Administrator(name) => {
                let kind = Directory::admin(self, name).await?.map(|admin| admin.kind);
                let role = kind.map_or(crate::ActorRole::Admin, crate::ActorRole::from);
                let actor = crate::Actor { name: name.clone(), role };
                Store::use_recovery_code(self, &actor, crate::TotpPrincipal::Admin(name), code_hash).await
            }
        }
    }

    async fn replace_password_hash(&self, mailbox_id: i64, old: &str, new: &str) -> Result<bool, Error> {
        let (_writer, txn) = self.begin().await?;
        let result = mailbox::Entity::update_many()
            .col_expr(mailbox::Column::PasswordHash, Expr::value(new))
            .filter(mailbox::Column::Id.eq(mailbox_id))
            .filter(mailbox::Column::PasswordHash.eq(old))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if result.rows_affected != 1 {
            return Ok(false);
        }
        // The same password, hashed anew: no revision bump (remembered successes stay valid), but whoever
        // remembers the old hash reads the new one.
        let address = mailbox::Entity::find_by_id(mailbox_id).one(&txn).await.map_err(db_err)?.map(|m| m.address);
        let change = address.map(LoginChange::Mailbox);
        if let Some(change) = &change {
            changes::record(&txn, change).await?;
        }
        crate::commit(txn).await?;
        if let Some(change) = change {
            self.announcer.announce(change);
        }
        Ok(true)
    }
}
