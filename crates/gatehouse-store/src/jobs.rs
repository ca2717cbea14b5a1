//! Exclusive background jobs across processes: leases in the `job_leases` table (see the migration for the
//! protocol), and the last run of a job for schedulers deciding whether one is due.

use gatehouse_core::Result;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, SqlErr};
use serde::Serialize;

use crate::entity::{job_lease, job_log};
use crate::{Store, db_err, now};

/// A job-log entry (a sync or import run).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobRun {
    /// Row id.
    pub id: i64,
    /// Job name (`sync`, `import`, …).
    pub job: String,
    /// Identity provider it ran for.
    pub provider: Option<String>,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while running (or if the process died).
    pub finished_at: Option<i64>,
    /// `running`, `ok`, `failed`, …
    pub status: String,
    /// Counts and messages, as JSON.
    pub summary: serde_json::Value,
}

impl Store {
    /// Takes the lease `name` for `holder` for `seconds`, if nobody else holds an unexpired one. Taking a lease
    /// one already holds renews it. Returns whether the lease is now held by `holder`.
    pub async fn acquire_lease(&self, name: &str, holder: &str, seconds: i64) -> Result<bool> {
        let time = now();
        let row = job_lease::ActiveModel {
            name: Set(name.to_string()),
            holder: Set(holder.to_string()),
            expires_at: Set(time + seconds),
        };
        match job_lease::Entity::insert(row).exec_without_returning(&self.db).await {
            Ok(_) => return Ok(true),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
            Err(err) => return Err(db_err(err)),
        }
        // The row exists: take it over only if it expired or is ours. One conditional UPDATE, so two
        // processes racing for an expired lease cannot both win.
        let taken = job_lease::Entity::update_many()
            .col_expr(job_lease::Column::Holder, holder.into())
            .col_expr(job_lease::Column::ExpiresAt, (time + seconds).into())
            .filter(job_lease::Column::Name.eq(name))
            .filter(job_lease::Column::ExpiresAt.lt(time).or(job_lease::Column::Holder.eq(holder)))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(taken.rows_affected == 1)
    }

    /// Extends the lease `name` that `holder` holds by `seconds` from now. Never takes a lease: once the lease
    /// is given back or taken over, a late renewal changes nothing. Returns whether `holder` still holds it.
    pub async fn renew_lease(&self, name: &str, holder: &str, seconds: i64) -> Result<bool> {
        let renewed = job_lease::Entity::update_many()
            .col_expr(job_lease::Column::ExpiresAt, (now() + seconds).into())
            .filter(job_lease::Column::Name.eq(name))
            .filter(job_lease::Column::Holder.eq(holder))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(renewed.rows_affected == 1)
    }

    /// Who holds the lease `name` and until when (Unix seconds), if anybody holds an unexpired one.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>> {
        let row = job_lease::Entity::find_by_id(name.to_string())
            .filter(job_lease::Column::ExpiresAt.gte(now()))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        Ok(row.map(|lease| (lease.holder, lease.expires_at)))
    }

    /// Gives a lease back (only if `holder` still holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        job_lease::Entity::delete_many()
            .filter(job_lease::Column::Name.eq(name))
            .filter(job_lease::Column::Holder.eq(holder))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Gives back every lease `holder` holds (a process that stops in the middle of its work).
    pub async fn release_leases_of(&self, holder: &str) -> Result<()> {
        job_lease::Entity::delete_many()
            .filter(job_lease::Column::Holder.eq(holder))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// The newest run of `job` for `provider` that finished (whatever its status).
    pub async fn last_finished_job(&self, job: &str, provider: &str) -> Result<Option<JobRun>> {
        let row = job_log::Entity::find()
            .filter(job_log::Column::Job.eq(job))
            .filter(job_log::Column::Provider.eq(provider))
            .filter(job_log::Column::FinishedAt.is_not_null())
            .order_by_desc(job_log::Column::Id)
            .one(&self.db)
            .await
            .map_err(db_err)?;
        Ok(row.map(crate::logs::job_run))
    }
}
