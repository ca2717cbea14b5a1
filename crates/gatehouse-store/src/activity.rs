//! Summaries of the auth log for the dashboard, counted by the database: decisions per time bucket, service and
//! outcome, and the users and addresses with the most failures. Only rows since a given time are read (the
//! `auth_log_time` index), and domain-limited principals count only their domains' mailboxes.

use gatehouse_core::{DomainName, Result};
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::auth_log;
use crate::logs::addresses_in;
use crate::{AuthResult, Store, db_err};

/// The decisions of one time bucket for one service and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCount {
    /// Unix time the bucket starts at (a multiple of the bucket length).
    pub bucket: i64,
    /// The service (`imap`, `web`, …).
    pub service: String,
    /// The outcome.
    pub result: AuthResult,
    /// How many decisions.
    pub count: u64,
}

/// Who failed most: a username or an address, and its failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    /// The username or the client's address.
    pub key: String,
    /// Failures since the time asked for.
    pub failures: u64,
}

/// What [`Store::top_failures`] groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKey {
    /// The username tried.
    Username,
    /// The client's address.
    RemoteIp,
}

impl Store {
    /// Decisions since `since`, counted per `bucket_seconds`-long bucket, service and outcome (only those of
    /// `domains`' mailboxes when given).
    pub async fn auth_activity(
        &self,
        since: i64,
        bucket_seconds: i64,
        domains: Option<&[DomainName]>,
    ) -> Result<Vec<ActivityCount>> {
        let bucket_seconds = Ord::max(bucket_seconds, 1);
        let created = Expr::col(auth_log::Column::CreatedAt);
        let bucket = created.clone().sub(created.modulo(bucket_seconds));
        let mut query = auth_log::Entity::find()
            .select_only()
            .column_as(bucket, "bucket")
            .column(auth_log::Column::Service)
            .column(auth_log::Column::Result)
            // COUNT(*): the rows are counted from the (created_at, service, result) index alone.
            .column_as(Expr::cust("COUNT(*)"), "n")
            .filter(auth_log::Column::CreatedAt.gte(since));
        if let Some(domains) = domains {
            if domains.is_empty() {
                return Ok(Vec::new());
            }
            query = query.filter(addresses_in(auth_log::Column::Username, domains));
        }
        let rows: Vec<(i64, String, String, i64)> = query
            // By the output name: PostgreSQL does not see two parameterised copies of an expression as one.
            .group_by(Expr::col(Alias::new("bucket")))
            .group_by(auth_log::Column::Service)
            .group_by(auth_log::Column::Result)
            .order_by_asc(Expr::col(Alias::new("bucket")))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(bucket, service, result, count)| ActivityCount {
                bucket,
                service,
                result: AuthResult::parse(&result),
                count: u64::try_from(count).unwrap_or(0),
            })
            .collect())
    }

    /// The `limit` usernames or addresses with the most failures since `since` (only those of `domains`'
    /// mailboxes when given), most first.
    pub async fn top_failures(
        &self,
        key: FailureKey,
        since: i64,
        limit: u64,
        domains: Option<&[DomainName]>,
    ) -> Result<Vec<FailureCount>> {
        let column = match key {
            FailureKey::Username => auth_log::Column::Username,
            FailureKey::RemoteIp => auth_log::Column::RemoteIp,
        };
        let failures = Expr::cust("COUNT(*)");
        let mut query = auth_log::Entity::find()
            .select_only()
            .column(column)
            .column_as(failures.clone(), "n")
            .filter(auth_log::Column::CreatedAt.gte(since))
            .filter(auth_log::Column::Result.eq(AuthResult::Failure.as_str()))
            .filter(column.is_not_null());
        if let Some(domains) = domains {
            if domains.is_empty() {
                return Ok(Vec::new());
            }
            query = query.filter(addresses_in(auth_log::Column::Username, domains));
        }
        // SQLite would otherwise serve the GROUP BY from the username index by reading the whole table in its
        // order; the unary plus keeps it on the (result, created_at, …) index and the rows since `since`.
        let group: sea_orm::sea_query::SimpleExpr = if self.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            Expr::cust(format!("+\"{}\"", sea_orm::IdenStatic::as_str(&column)))
        } else {
            Expr::col(column)
        };
        let rows: Vec<(Option<String>, i64)> = query
            .group_by(group)
            .order_by_desc(failures)
            .order_by_asc(column)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(key, n)| key.map(|key| FailureCount { key, failures: u64::try_from(n).unwrap_or(0) }))
            .collect())
    }
}
