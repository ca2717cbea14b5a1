//! Job leases: one row per exclusive background job (an identity provider's sync), naming the process that
//! runs it and until when. A process takes the lease by inserting the row or by taking over an expired one,
//! renews it while it works and deletes it when done, so several Gatehouse processes on one database never run
//! the same sync at once, and a crashed process blocks it only until its lease expires.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000003_job_leases"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JobLeases::Table)
                    .col(ColumnDef::new(JobLeases::Name).string_len(191).not_null().primary_key())
                    .col(ColumnDef::new(JobLeases::Holder).string_len(191).not_null())
                    .col(ColumnDef::new(JobLeases::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("Gatehouse migrations are forward-only; restore a backup to go back".into()))
    }
}

#[derive(DeriveIden)]
enum JobLeases {
    Table,
    Name,
    Holder,
    ExpiresAt,
}
