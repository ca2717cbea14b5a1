//! App passwords brought over from another system (mailcow's), whose clients type the bare secret rather than a
//! `gh_<id>_<secret>` token: a `legacy` flag, and the keyed fingerprint of the secret recorded at its first
//! successful use, indexed with the mailbox, so a later login verifies exactly one hash.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000009_legacy_app_passwords"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AppPasswords::Table)
                    .add_column(ColumnDef::new(AppPasswords::Legacy).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AppPasswords::Table)
                    .add_column(ColumnDef::new(AppPasswords::Fingerprint).string_len(64).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("app_passwords_mailbox_fingerprint")
                    .table(AppPasswords::Table)
                    .col(AppPasswords::MailboxId)
                    .col(AppPasswords::Fingerprint)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AppPasswords {
    Table,
    MailboxId,
    Legacy,
    Fingerprint,
}
