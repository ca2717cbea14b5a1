//! The change feed: one row per committed change that can affect logins (a mailbox, a domain, an identity
//! provider), written in the transaction that makes the change. Every Gatehouse process follows it to keep what
//! it remembers about logins coherent with changes made elsewhere (the CLI, another node); rows older than an
//! hour are pruned.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000008_login_changes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(LoginChanges::Table)
            .col(ColumnDef::new(LoginChanges::Id).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(LoginChanges::Kind).string_len(16).not_null())
            .col(ColumnDef::new(LoginChanges::Subject).string_len(320).not_null())
            .col(ColumnDef::new(LoginChanges::CreatedAt).big_integer().not_null())
            .take();
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            table.character_set("utf8mb4").collate("utf8mb4_bin");
        }
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("login_changes_created_at")
                    .table(LoginChanges::Table)
                    .col(LoginChanges::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("Gatehouse migrations are forward-only; restore a backup to go back".into()))
    }
}

#[derive(DeriveIden)]
enum LoginChanges {
    Table,
    Id,
    Kind,
    Subject,
    CreatedAt,
}
