//! Login state: a revision number on mailboxes and master users, bumped by every change that can affect a
//! login (the mailbox, its app passwords, its domain, the master user), so cached login results are checked
//! against it and a revoked credential stops working at once.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_login_state"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Mailboxes::Table)
                    .add_column(ColumnDef::new(Mailboxes::Revision).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MasterUsers::Table)
                    .add_column(ColumnDef::new(MasterUsers::Revision).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("Gatehouse migrations are forward-only; restore a backup to go back".into()))
    }
}

#[derive(DeriveIden)]
enum Mailboxes {
    Table,
    Revision,
}

#[derive(DeriveIden)]
enum MasterUsers {
    Table,
    Revision,
}
