//! Indexes for the administration pages' searches at scale: the auth log by client address (the "from" filter),
//! by time with service and outcome (the overview's chart, read from the index alone), and by outcome and time
//! with the username or the client address (the most failing users and addresses, read from the index alone);
//! mailboxes by quota and by state (sorting and filtering the list).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000011_admin_lists"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let indexes = [
            Index::create().name("auth_log_remote_ip").table(AuthLog::Table).col(AuthLog::RemoteIp).to_owned(),
            Index::create()
                .name("auth_log_activity")
                .table(AuthLog::Table)
                .col(AuthLog::CreatedAt)
                .col(AuthLog::Service)
                .col(AuthLog::Result)
                .to_owned(),
            Index::create()
                .name("auth_log_failing_users")
                .table(AuthLog::Table)
                .col(AuthLog::Result)
                .col(AuthLog::CreatedAt)
                .col(AuthLog::Username)
                .to_owned(),
            Index::create()
                .name("auth_log_failing_addresses")
                .table(AuthLog::Table)
                .col(AuthLog::Result)
                .col(AuthLog::CreatedAt)
                .col(AuthLog::RemoteIp)
                .to_owned(),
            Index::create().name("mailboxes_quota").table(Mailboxes::Table).col(Mailboxes::QuotaMib).to_owned(),
            Index::create().name("mailboxes_active").table(Mailboxes::Table).col(Mailboxes::Active).to_owned(),
        ];
        for index in indexes {
            manager.create_index(index).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum AuthLog {
    Table,
    CreatedAt,
    Service,
    Username,
    RemoteIp,
    Result,
}

#[derive(DeriveIden)]
enum Mailboxes {
    Table,
    QuotaMib,
    Active,
}
