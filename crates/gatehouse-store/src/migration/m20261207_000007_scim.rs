//! SCIM 2.0 push provisioning: the bearer tokens identity providers push users with (only a hash of each
//! secret), each tied to one identity provider and limited to domains; and on each mailbox the SCIM User it
//! is — its `userName` (lowercased, unique per identity provider), its `externalId`, both cleared when the
//! client deletes the User, and whether it did — so lookups and uniqueness checks use indexes.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000007_scim"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(ScimTokens::Table)
            .col(ColumnDef::new(ScimTokens::Id).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(ScimTokens::Name).string_len(255).not_null().unique_key())
            .col(ColumnDef::new(ScimTokens::TokenHash).string_len(64).not_null())
            .col(ColumnDef::new(ScimTokens::Provider).string_len(255).not_null())
            .col(ColumnDef::new(ScimTokens::Domains).text().not_null())
            .col(ColumnDef::new(ScimTokens::Active).boolean().not_null())
            .col(ColumnDef::new(ScimTokens::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(ScimTokens::LastUsedAt).big_integer().null())
            .take();
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            table.character_set("utf8mb4").collate("utf8mb4_bin");
        }
        manager.create_table(table).await?;

        // One column per statement: SQLite adds one column per ALTER TABLE.
        for column in [
            ColumnDef::new(Mailboxes::ScimUserName).string_len(255).null().take(),
            ColumnDef::new(Mailboxes::ScimExternalId).string_len(255).null().take(),
            ColumnDef::new(Mailboxes::ScimDeleted).boolean().not_null().default(false).take(),
        ] {
            manager.alter_table(Table::alter().table(Mailboxes::Table).add_column(column).to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("mailboxes_auth_source_scim_user_name")
                    .table(Mailboxes::Table)
                    .col(Mailboxes::AuthSource)
                    .col(Mailboxes::ScimUserName)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mailboxes_auth_source_scim_external_id")
                    .table(Mailboxes::Table)
                    .col(Mailboxes::AuthSource)
                    .col(Mailboxes::ScimExternalId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ScimTokens {
    Table,
    Id,
    Name,
    TokenHash,
    Provider,
    Domains,
    Active,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Mailboxes {
    Table,
    AuthSource,
    ScimUserName,
    ScimExternalId,
    ScimDeleted,
}
