//! Signing in through OpenID Connect providers: the pending sign-ins (state, nonce and PKCE verifier kept on
//! the server, bound to one browser, single-use, expiring), and the provider session a web session came from,
//! so a provider's back-channel logout finds the sessions it ends.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000005_oidc_sign_in"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OidcSignIns::Table)
                    .col(ColumnDef::new(OidcSignIns::StateHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(OidcSignIns::Provider).string_len(255).not_null())
                    .col(ColumnDef::new(OidcSignIns::BrowserHash).string_len(64).not_null())
                    .col(ColumnDef::new(OidcSignIns::Nonce).string_len(128).not_null())
                    .col(ColumnDef::new(OidcSignIns::PkceVerifier).string_len(128).not_null())
                    .col(ColumnDef::new(OidcSignIns::Purpose).string_len(32).not_null())
                    .col(ColumnDef::new(OidcSignIns::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(OidcSignIns::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("oidc_sign_ins_expires_at")
                    .table(OidcSignIns::Table)
                    .col(OidcSignIns::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        for column in [WebSessions::IdpProvider, WebSessions::IdpSession, WebSessions::IdpSubject] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebSessions::Table)
                        .add_column(ColumnDef::new(column).string_len(255).null())
                        .to_owned(),
                )
                .await?;
        }
        for (name, column) in [
            ("web_sessions_idp_session", WebSessions::IdpSession),
            ("web_sessions_idp_subject", WebSessions::IdpSubject),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(WebSessions::Table)
                        .col(WebSessions::IdpProvider)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OidcSignIns {
    Table,
    StateHash,
    Provider,
    BrowserHash,
    Nonce,
    PkceVerifier,
    Purpose,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    IdpProvider,
    IdpSession,
    IdpSubject,
}
