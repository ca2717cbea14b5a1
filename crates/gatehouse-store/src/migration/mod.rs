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
        ]
    }
}
