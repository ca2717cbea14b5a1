//! The web UI's state: who a server-side session belongs to (so sessions can be listed and ended when an
//! account changes), single-sign-on tokens for webmail, TOTP recovery codes, forced TOTP enrolment, app links,
//! and the domains an API key is limited to.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000004_web"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebSessions::Table)
                    .add_column(ColumnDef::new(WebSessions::PrincipalKind).string_len(32).not_null().default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebSessions::Table)
                    .add_column(ColumnDef::new(WebSessions::Principal).string_len(320).not_null().default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("web_sessions_principal")
                    .table(WebSessions::Table)
                    .col(WebSessions::PrincipalKind)
                    .col(WebSessions::Principal)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SsoTokens::Table)
                    .col(ColumnDef::new(SsoTokens::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(SsoTokens::SessionId).string_len(128).not_null())
                    .col(ColumnDef::new(SsoTokens::Mailbox).string_len(320).not_null())
                    .col(ColumnDef::new(SsoTokens::SecretHash).text().not_null())
                    .col(ColumnDef::new(SsoTokens::Impersonator).string_len(320).null())
                    .col(ColumnDef::new(SsoTokens::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(SsoTokens::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("sso_tokens_session").table(SsoTokens::Table).col(SsoTokens::SessionId).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TotpRecoveryCodes::Table)
                    .col(ColumnDef::new(TotpRecoveryCodes::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(TotpRecoveryCodes::PrincipalKind).string_len(32).not_null())
                    .col(ColumnDef::new(TotpRecoveryCodes::PrincipalId).big_integer().not_null())
                    .col(ColumnDef::new(TotpRecoveryCodes::CodeHash).text().not_null())
                    .col(ColumnDef::new(TotpRecoveryCodes::UsedAt).big_integer().null())
                    .col(ColumnDef::new(TotpRecoveryCodes::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("totp_recovery_codes_principal")
                    .table(TotpRecoveryCodes::Table)
                    .col(TotpRecoveryCodes::PrincipalKind)
                    .col(TotpRecoveryCodes::PrincipalId)
                    .to_owned(),
            )
            .await?;

        for table in [Alias::new("mailboxes"), Alias::new("admins")] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(ColumnDef::new(Alias::new("force_totp")).boolean().not_null().default(false))
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AppLinks::Table)
                    .col(ColumnDef::new(AppLinks::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(AppLinks::Name).string_len(128).not_null())
                    .col(ColumnDef::new(AppLinks::Url).text().not_null())
                    .col(ColumnDef::new(AppLinks::UserUrl).text().null())
                    .col(ColumnDef::new(AppLinks::HiddenOnLogin).boolean().not_null().default(false))
                    .col(ColumnDef::new(AppLinks::Position).big_integer().not_null().default(0))
                    .col(ColumnDef::new(AppLinks::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(ApiKeys::Domains).string_len(2000).not_null().default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("Gatehouse migrations are forward-only; restore a backup to go back".into()))
    }
}

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    PrincipalKind,
    Principal,
}

#[derive(DeriveIden)]
enum SsoTokens {
    Table,
    Id,
    SessionId,
    Mailbox,
    SecretHash,
    Impersonator,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TotpRecoveryCodes {
    Table,
    Id,
    PrincipalKind,
    PrincipalId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AppLinks {
    Table,
    Id,
    Name,
    Url,
    UserUrl,
    HiddenOnLogin,
    Position,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Domains,
}
