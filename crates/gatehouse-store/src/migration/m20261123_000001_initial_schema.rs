//! The initial schema: domains, templates, mailboxes, app passwords, administrators, master users, identity
//! providers, TOTP secrets, web sessions, API keys and the auth, audit and job logs.
//!
//! Portable column choices: 64-bit integer ids, booleans, `varchar(255)` names, `text` for JSON, and
//! timestamps as 64-bit Unix seconds (identical on all three engines, no time-zone or 2038 surprises).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_initial_schema"
    }
}

/// `CREATE TABLE` for `table`; on MariaDB/MySQL with a binary collation, so names compare exactly as on
/// SQLite and PostgreSQL (no case-insensitive uniqueness surprises).
fn create(manager: &SchemaManager, table: impl IntoIden) -> TableCreateStatement {
    let mut statement = Table::create().table(table).take();
    if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
        statement.character_set("utf8mb4").collate("utf8mb4_bin");
    }
    statement
}

fn id<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).big_integer().not_null().auto_increment().primary_key().take()
}
fn name<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).string_len(255).not_null().take()
}
fn text<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).text().not_null().take()
}
fn opt_text<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).text().null().take()
}
fn int<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).big_integer().not_null().take()
}
fn opt_int<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).big_integer().null().take()
}
fn flag<T: IntoIden>(column: T) -> ColumnDef {
    ColumnDef::new(column).boolean().not_null().take()
}
fn fk<F: IntoIden, T: IntoIden>(from: (F, F), to: (T, T), on_delete: ForeignKeyAction) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from.0, from.1).to(to.0, to.1).on_delete(on_delete).take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                create(manager, Domains::Table)
                    .col(id(Domains::Id))
                    .col(name(Domains::Name).unique_key())
                    .col(text(Domains::Description))
                    .col(flag(Domains::Active))
                    .col(int(Domains::MaxMailboxes))
                    .col(int(Domains::DefaultQuotaMib))
                    .col(int(Domains::MaxQuotaMib))
                    .col(int(Domains::TotalQuotaMib))
                    .col(int(Domains::CreatedAt))
                    .col(int(Domains::ModifiedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, MailboxTemplates::Table)
                    .col(id(MailboxTemplates::Id))
                    .col(name(MailboxTemplates::Name).unique_key())
                    .col(int(MailboxTemplates::QuotaMib))
                    .col(name(MailboxTemplates::Protocols))
                    .col(flag(MailboxTemplates::Active))
                    .col(text(MailboxTemplates::Attributes))
                    .col(int(MailboxTemplates::CreatedAt))
                    .col(int(MailboxTemplates::ModifiedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, IdentityProviders::Table)
                    .col(id(IdentityProviders::Id))
                    .col(name(IdentityProviders::Name).unique_key())
                    .col(name(IdentityProviders::Kind))
                    .col(flag(IdentityProviders::Active))
                    .col(text(IdentityProviders::Settings))
                    .col(int(IdentityProviders::CreatedAt))
                    .col(int(IdentityProviders::ModifiedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, IdentityProviderSecrets::Table)
                    .col(int(IdentityProviderSecrets::ProviderId))
                    .col(name(IdentityProviderSecrets::Name))
                    .col(text(IdentityProviderSecrets::Value))
                    .primary_key(
                        Index::create().col(IdentityProviderSecrets::ProviderId).col(IdentityProviderSecrets::Name),
                    )
                    .foreign_key(&mut fk(
                        (IdentityProviderSecrets::Table, IdentityProviderSecrets::ProviderId),
                        (IdentityProviders::Table, IdentityProviders::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, AttributeMappings::Table)
                    .col(id(AttributeMappings::Id))
                    .col(int(AttributeMappings::ProviderId))
                    .col(name(AttributeMappings::AttributeValue))
                    .col(int(AttributeMappings::TemplateId))
                    .col(int(AttributeMappings::Position))
                    .foreign_key(&mut fk(
                        (AttributeMappings::Table, AttributeMappings::ProviderId),
                        (IdentityProviders::Table, IdentityProviders::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        (AttributeMappings::Table, AttributeMappings::TemplateId),
                        (MailboxTemplates::Table, MailboxTemplates::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("attribute_mappings_provider_value")
                    .table(AttributeMappings::Table)
                    .col(AttributeMappings::ProviderId)
                    .col(AttributeMappings::AttributeValue)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, Mailboxes::Table)
                    .col(id(Mailboxes::Id))
                    .col(ColumnDef::new(Mailboxes::Address).string_len(320).not_null().unique_key())
                    .col(ColumnDef::new(Mailboxes::LocalPart).string_len(64).not_null())
                    .col(int(Mailboxes::DomainId))
                    .col(text(Mailboxes::DisplayName))
                    .col(opt_text(Mailboxes::PasswordHash))
                    .col(name(Mailboxes::AuthSource))
                    .col(opt_int(Mailboxes::TemplateId))
                    .col(int(Mailboxes::QuotaMib))
                    .col(name(Mailboxes::Protocols))
                    .col(flag(Mailboxes::Active))
                    .col(flag(Mailboxes::ForcePasswordChange))
                    .col(text(Mailboxes::Attributes))
                    .col(ColumnDef::new(Mailboxes::ExternalId).string_len(255).null())
                    .col(int(Mailboxes::CreatedAt))
                    .col(int(Mailboxes::ModifiedAt))
                    .foreign_key(&mut fk(
                        (Mailboxes::Table, Mailboxes::DomainId),
                        (Domains::Table, Domains::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut fk(
                        (Mailboxes::Table, Mailboxes::TemplateId),
                        (MailboxTemplates::Table, MailboxTemplates::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mailboxes_domain")
                    .table(Mailboxes::Table)
                    .col(Mailboxes::DomainId)
                    .col(Mailboxes::LocalPart)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mailboxes_external_id")
                    .table(Mailboxes::Table)
                    .col(Mailboxes::AuthSource)
                    .col(Mailboxes::ExternalId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, AppPasswords::Table)
                    .col(id(AppPasswords::Id))
                    .col(int(AppPasswords::MailboxId))
                    .col(name(AppPasswords::Name))
                    .col(text(AppPasswords::SecretHash))
                    .col(name(AppPasswords::Protocols))
                    .col(flag(AppPasswords::Active))
                    .col(opt_int(AppPasswords::ExpiresAt))
                    .col(int(AppPasswords::CreatedAt))
                    .col(opt_int(AppPasswords::LastUsedAt))
                    .foreign_key(&mut fk(
                        (AppPasswords::Table, AppPasswords::MailboxId),
                        (Mailboxes::Table, Mailboxes::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("app_passwords_mailbox")
                    .table(AppPasswords::Table)
                    .col(AppPasswords::MailboxId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, Admins::Table)
                    .col(id(Admins::Id))
                    .col(name(Admins::Username).unique_key())
                    .col(name(Admins::Role))
                    .col(text(Admins::PasswordHash))
                    .col(flag(Admins::Active))
                    .col(flag(Admins::ForcePasswordChange))
                    .col(name(Admins::Acl))
                    .col(int(Admins::CreatedAt))
                    .col(int(Admins::ModifiedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                create(manager, AdminDomains::Table)
                    .col(int(AdminDomains::AdminId))
                    .col(int(AdminDomains::DomainId))
                    .primary_key(Index::create().col(AdminDomains::AdminId).col(AdminDomains::DomainId))
                    .foreign_key(&mut fk(
                        (AdminDomains::Table, AdminDomains::AdminId),
                        (Admins::Table, Admins::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        (AdminDomains::Table, AdminDomains::DomainId),
                        (Domains::Table, Domains::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, MasterUsers::Table)
                    .col(id(MasterUsers::Id))
                    .col(name(MasterUsers::Username).unique_key())
                    .col(text(MasterUsers::PasswordHash))
                    .col(name(MasterUsers::Scope))
                    .col(opt_int(MasterUsers::DomainId))
                    .col(flag(MasterUsers::Active))
                    .col(int(MasterUsers::CreatedAt))
                    .col(int(MasterUsers::ModifiedAt))
                    .foreign_key(&mut fk(
                        (MasterUsers::Table, MasterUsers::DomainId),
                        (Domains::Table, Domains::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                create(manager, MasterUserDomains::Table)
                    .col(int(MasterUserDomains::MasterUserId))
                    .col(int(MasterUserDomains::DomainId))
                    .primary_key(Index::create().col(MasterUserDomains::MasterUserId).col(MasterUserDomains::DomainId))
                    .foreign_key(&mut fk(
                        (MasterUserDomains::Table, MasterUserDomains::MasterUserId),
                        (MasterUsers::Table, MasterUsers::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        (MasterUserDomains::Table, MasterUserDomains::DomainId),
                        (Domains::Table, Domains::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, TotpSecrets::Table)
                    .col(id(TotpSecrets::Id))
                    .col(name(TotpSecrets::PrincipalKind))
                    .col(int(TotpSecrets::PrincipalId))
                    .col(text(TotpSecrets::Secret))
                    .col(flag(TotpSecrets::Confirmed))
                    .col(opt_int(TotpSecrets::LastUsedStep))
                    .col(int(TotpSecrets::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("totp_secrets_principal")
                    .table(TotpSecrets::Table)
                    .col(TotpSecrets::PrincipalKind)
                    .col(TotpSecrets::PrincipalId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, WebSessions::Table)
                    .col(ColumnDef::new(WebSessions::Id).string_len(128).not_null().primary_key())
                    .col(text(WebSessions::Data))
                    .col(int(WebSessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("web_sessions_expiry")
                    .table(WebSessions::Table)
                    .col(WebSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, ApiKeys::Table)
                    .col(id(ApiKeys::Id))
                    .col(name(ApiKeys::Name).unique_key())
                    .col(text(ApiKeys::KeyHash))
                    .col(name(ApiKeys::Access))
                    .col(text(ApiKeys::AllowedNetworks))
                    .col(flag(ApiKeys::Active))
                    .col(int(ApiKeys::CreatedAt))
                    .col(opt_int(ApiKeys::LastUsedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, AuthLog::Table)
                    .col(id(AuthLog::Id))
                    .col(int(AuthLog::CreatedAt))
                    .col(name(AuthLog::Service))
                    .col(name(AuthLog::Username))
                    .col(ColumnDef::new(AuthLog::MasterUser).string_len(255).null())
                    .col(ColumnDef::new(AuthLog::RemoteIp).string_len(64).null())
                    .col(name(AuthLog::Result))
                    .col(text(AuthLog::Reason))
                    .col(flag(AuthLog::ViaAppPassword))
                    .col(opt_int(AuthLog::AppPasswordId))
                    .to_owned(),
            )
            .await?;
        for (index, column) in [("auth_log_time", AuthLog::CreatedAt), ("auth_log_user", AuthLog::Username)] {
            manager.create_index(Index::create().name(index).table(AuthLog::Table).col(column).to_owned()).await?;
        }

        manager
            .create_table(
                create(manager, AuditLog::Table)
                    .col(id(AuditLog::Id))
                    .col(int(AuditLog::CreatedAt))
                    .col(name(AuditLog::Actor))
                    .col(name(AuditLog::ActorRole))
                    .col(name(AuditLog::Action))
                    .col(name(AuditLog::Target))
                    .col(text(AuditLog::Details))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("audit_log_time").table(AuditLog::Table).col(AuditLog::CreatedAt).to_owned(),
            )
            .await?;

        manager
            .create_table(
                create(manager, JobLog::Table)
                    .col(id(JobLog::Id))
                    .col(name(JobLog::Job))
                    .col(ColumnDef::new(JobLog::Provider).string_len(255).null())
                    .col(int(JobLog::StartedAt))
                    .col(opt_int(JobLog::FinishedAt))
                    .col(name(JobLog::Status))
                    .col(text(JobLog::Summary))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("job_log_time").table(JobLog::Table).col(JobLog::StartedAt).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("Gatehouse migrations are forward-only; restore a backup to go back".into()))
    }
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
    Name,
    Description,
    Active,
    MaxMailboxes,
    DefaultQuotaMib,
    MaxQuotaMib,
    TotalQuotaMib,
    CreatedAt,
    ModifiedAt,
}

#[derive(DeriveIden)]
enum MailboxTemplates {
    Table,
    Id,
    Name,
    QuotaMib,
    Protocols,
    Active,
    Attributes,
    CreatedAt,
    ModifiedAt,
}

#[derive(DeriveIden)]
enum Mailboxes {
    Table,
    Id,
    Address,
    LocalPart,
    DomainId,
    DisplayName,
    PasswordHash,
    AuthSource,
    TemplateId,
    QuotaMib,
    Protocols,
    Active,
    ForcePasswordChange,
    Attributes,
    ExternalId,
    CreatedAt,
    ModifiedAt,
}

#[derive(DeriveIden)]
enum AppPasswords {
    Table,
    Id,
    MailboxId,
    Name,
    SecretHash,
    Protocols,
    Active,
    ExpiresAt,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Admins {
    Table,
    Id,
    Username,
    Role,
    PasswordHash,
    Active,
    ForcePasswordChange,
    Acl,
    CreatedAt,
    ModifiedAt,
}

#[derive(DeriveIden)]
enum AdminDomains {
    Table,
    AdminId,
    DomainId,
}

#[derive(DeriveIden)]
enum MasterUsers {
    Table,
    Id,
    Username,
    PasswordHash,
    Scope,
    DomainId,
    Active,
    CreatedAt,
    ModifiedAt,
}

#[derive(DeriveIden)]
enum MasterUserDomains {
    Table,
    MasterUserId,
    DomainId,
}

#[derive(DeriveIden)]
enum IdentityProviders {
    Table,
    Id,
    Name,
    Kind,
    Active,
    Settings,
    CreatedAt,
    ModifiedAt,
}

#[derive(DeriveIden)]
enum IdentityProviderSecrets {
    Table,
    ProviderId,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum AttributeMappings {
    Table,
    Id,
    ProviderId,
    AttributeValue,
    TemplateId,
    Position,
}

#[derive(DeriveIden)]
enum TotpSecrets {
    Table,
    Id,
    PrincipalKind,
    PrincipalId,
    Secret,
    Confirmed,
    LastUsedStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebSessions {
    Table,
    Id,
    Data,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Name,
    KeyHash,
    Access,
    AllowedNetworks,
    Active,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum AuthLog {
    Table,
    Id,
    CreatedAt,
    Service,
    Username,
    MasterUser,
    RemoteIp,
    Result,
    Reason,
    ViaAppPassword,
    AppPasswordId,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    CreatedAt,
    Actor,
    ActorRole,
    Action,
    Target,
    Details,
}

#[derive(DeriveIden)]
enum JobLog {
    Table,
    Id,
    Job,
    Provider,
    StartedAt,
    FinishedAt,
    Status,
    Summary,
}
