//! Administrators who sign in at an identity provider (their `auth_source` and the account they are bound to),
//! and the index that finds the mailbox an access token's account is bound to.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000006_provider_admins"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Admins::Table)
                    .add_column(ColumnDef::new(Admins::AuthSource).string_len(255).not_null().default("local"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Admins::Table)
                    .add_column(ColumnDef::new(Admins::ExternalId).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mailboxes_auth_source_external_id")
                    .table(Mailboxes::Table)
                    .col(Mailboxes::AuthSource)
                    .col(Mailboxes::ExternalId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Admins {
    Table,
    AuthSource,
    ExternalId,
}

#[derive(DeriveIden)]
enum Mailboxes {
    Table,
    AuthSource,
    ExternalId,
}
