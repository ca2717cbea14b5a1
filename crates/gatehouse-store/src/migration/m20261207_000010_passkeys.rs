//! Passkeys (WebAuthn credentials) of mailboxes and administrators: one row per credential with its owner (the
//! principal kind and id TOTP uses), the credential id (and its SHA-256, unique: one credential belongs to one
//! account), the user handle the authenticator keeps, the name the user gave it, the relying party's record of
//! the public key as JSON, the signature counter and when it was added and last used.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000010_passkeys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(Passkeys::Table)
            .col(ColumnDef::new(Passkeys::Id).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Passkeys::PrincipalKind).string_len(32).not_null())
            .col(ColumnDef::new(Passkeys::PrincipalId).big_integer().not_null())
            .col(ColumnDef::new(Passkeys::CredentialId).text().not_null())
            .col(ColumnDef::new(Passkeys::CredentialHash).string_len(64).not_null().unique_key())
            .col(ColumnDef::new(Passkeys::UserHandle).string_len(64).not_null())
            .col(ColumnDef::new(Passkeys::Name).string_len(128).not_null())
            .col(ColumnDef::new(Passkeys::Credential).text().not_null())
            .col(ColumnDef::new(Passkeys::Counter).big_integer().not_null())
            .col(ColumnDef::new(Passkeys::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(Passkeys::LastUsedAt).big_integer().null())
            .take();
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            table.character_set("utf8mb4").collate("utf8mb4_bin");
        }
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("passkeys_principal")
                    .table(Passkeys::Table)
                    .col(Passkeys::PrincipalKind)
                    .col(Passkeys::PrincipalId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("passkeys_user_handle")
                    .table(Passkeys::Table)
                    .col(Passkeys::UserHandle)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    PrincipalKind,
    PrincipalId,
    CredentialId,
    CredentialHash,
    UserHandle,
    Name,
    Credential,
    Counter,
    CreatedAt,
    LastUsedAt,
}
