//! Forward-only, versioned schema migrations, run on every start-up.
//!
//! Each migration is written once with sea-query's builders and renders correctly on SQLite, PostgreSQL and
//! MariaDB/MySQL. Applied versions are recorded in `seaql_migrations`. A database that has a migration this
//! binary does not know (it was upgraded by a newer Gatehouse) is refused rather than used. There are no down
//! migrations: to go back, restore a backup. Note that MariaDB/MySQL commit DDL implicitly, so a migration that
//! fails half-way there must be finished by hand; PostgreSQL and SQLite roll it back.

use sea_orm_migration::prelude::*;

mod m20261123_000001_initial_schema;
mod m20261123_000002_login_state;
mod m20261123_000003_job_leases;
mod m20261123_000004_web;
mod m20261204_000005_oidc_sign_in;
mod m20261204_000006_provider_admins;
mod m20261207_000007_scim;
mod m20261207_000008_login_changes;
mod m20261207_000009_legacy_app_passwords;
mod m20261207_000010_passkeys;
mod m20261208_000011_admin_lists;

/// The list of migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial_schema::Migration),
            Box::new(m20261123_000002_login_state::Migration),
            Box::new(m20261123_000003_job_leases::Migration),
            Box::new(m20261123_000004_web::Migration),
            Box::new(m20261204_000005_oidc_sign_in::Migration),
            Box::new(m20261204_000006_provider_admins::Migration),
            Box::new(m20261207_000007_scim::Migration),
            Box::new(m20261207_000008_login_changes::Migration),
            Box::new(m20261207_000009_legacy_app_passwords::Migration),
            Box::new(m20261207_000010_passkeys::Migration),
            Box::new(m20261208_000011_admin_lists::Migration),
        ]
    }
}

/// Whether the database holds Gatehouse's schema (its migration table), without creating anything.
pub async fn schema_exists(db: &sea_orm::DatabaseConnection) -> Result<bool, gatehouse_core::Error> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'"
        }
        DbBackend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() \
             AND table_name = 'seaql_migrations'"
        }
        _ => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() \
             AND table_name = 'seaql_migrations'"
        }
    };
    let row = db.query_one_raw(Statement::from_string(backend, sql)).await.map_err(crate::db_err)?;
    let count: i64 = match row {
        Some(row) => row.try_get("", "n").map_err(crate::db_err)?,
        None => 0,
    };
    Ok(count > 0)
}
