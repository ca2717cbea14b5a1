//! The three logs: the auth log (every login decision), the audit log (every change and impersonation, written
//! in the same transaction as the change) and the job log (sync and import runs).

use gatehouse_core::{DomainName, Result};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, NotSet, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement, Value,
};
use serde::Serialize;
use std::fmt::Write as _;

use crate::entity::{audit_log, auth_log, job_log};
use crate::listing::{Page, Window};
use crate::{Actor, JobRun, Store, db_err, now};

/// Outcome of one login decision, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthResult {
    /// Allowed.
    Success,
    /// Denied (client fault).
    Failure,
    /// Not decided because a peer failed (server fault).
    TempFail,
}

impl AuthResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthResult::Success => "success",
            AuthResult::Failure => "failure",
            AuthResult::TempFail => "tempfail",
        }
    }

    pub(crate) fn parse(value: &str) -> Self {
        match value {
            "success" => AuthResult::Success,
            "failure" => AuthResult::Failure,
            _ => AuthResult::TempFail,
        }
    }
}

/// An auth-log entry to write.
#[derive(Debug, Clone)]
pub struct NewAuthLogEntry {
    /// Service (`imap`, `smtp`, `web`, …).
    pub service: String,
    /// The user the login was for.
    pub username: String,
    /// The master user, for master logins.
    pub master_user: Option<String>,
    /// The client's address.
    pub remote_ip: Option<String>,
    /// Outcome.
    pub result: AuthResult,
    /// Why (never contains the password).
    pub reason: String,
    /// The app password used, if any.
    pub app_password_id: Option<i64>,
}

/// An auth-log entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthLogEntry {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Service.
    pub service: String,
    /// User.
    pub username: String,
    /// Master user, for master logins.
    pub master_user: Option<String>,
    /// Client address.
    pub remote_ip: Option<String>,
    /// Outcome.
    pub result: AuthResult,
    /// Why.
    pub reason: String,
    /// Whether an app password was used.
    pub via_app_password: bool,
    /// Which app password.
    pub app_password_id: Option<i64>,
}

/// An audit-log entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Who.
    pub actor: String,
    /// In which role.
    pub actor_role: String,
    /// What (`mailbox.add`, `impersonate`, …).
    pub action: String,
    /// On what.
    pub target: String,
    /// Details, as JSON (never secrets).
    pub details: serde_json::Value,
}

/// Filter for log listings.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only entries about this user / target.
    pub subject: Option<String>,
    /// Only entries at or after this Unix time.
    pub since: Option<i64>,
    /// At most this many (newest first); default 100.
    pub limit: Option<u64>,
    /// Only entries about these domains (their mailboxes, or the domains themselves); `Some(empty)` matches
    /// nothing. For domain administrators and domain-limited API keys.
    pub domains: Option<Vec<DomainName>>,
    /// Auth log: only this service (`imap`, `web`, …).
    pub service: Option<String>,
    /// Auth log: only this outcome.
    pub result: Option<AuthResult>,
    /// Audit log: only changes by this actor.
    pub actor: Option<String>,
    /// Audit log: only actions starting with this (`mailbox`, `domain.add`, …).
    pub action_prefix: Option<String>,
    /// Job log: only runs with this status (`ok`, `refused`, `failed`, `running`).
    pub status: Option<String>,
    /// Auth log: only decisions about clients at this address.
    pub remote_ip: Option<String>,
    /// Entries skipped before the first one returned.
    pub offset: Option<u64>,
}

impl LogFilter {
    /// The filter's `offset` and `limit` as a window.
    pub fn window(&self) -> Window {
        Window::new(self.offset.unwrap_or(0), self.limit.unwrap_or(DEFAULT_LIMIT))
    }
}

/// The most entries a log page counts: beyond this, it says "more than" (counting a million rows on every page
/// would cost more than showing them).
pub const LOG_COUNT_CAP: u64 = 10_000;

const DEFAULT_LIMIT: u64 = 100;

/// Writes an audit-log entry inside the caller's transaction.
pub(crate) async fn audit(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<()> {
    audit_log::ActiveModel {
        id: NotSet,
        created_at: Set(now()),
        actor: Set(actor.name.clone()),
        actor_role: Set(actor.role.as_str().to_string()),
        action: Set(action.to_string()),
        target: Set(target.to_string()),
        details: Set(details.to_string()),
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(())
}

fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.to_string()))
}

/// Addresses (`…@domain`, compared case-insensitively) in any of `domains`; no domains match nothing.
pub(crate) fn addresses_in(column: impl sea_orm::sea_query::IntoColumnRef + Copy, domains: &[DomainName]) -> Condition {
    domains.iter().fold(Condition::any(), |any, domain| {
        any.add(Expr::expr(Func::lower(Expr::col(column))).like(format!("%@{}", domain.as_str())))
    })
}

/// The row counts of the auth log's multi-row inserts, largest first: a batch is written as the fewest of these
/// that add up to it (512 rows of nine values stay within every database's parameter limit).
const AUTH_LOG_CHUNKS: [usize; 10] = [512, 256, 128, 64, 32, 16, 8, 4, 2, 1];

/// The auth log's columns as [`Store::record_auth_batch`] fills them, in order.
const AUTH_LOG_COLUMNS: [&str; 9] = [
    "created_at",
    "service",
    "username",
    "master_user",
    "remote_ip",
    "result",
    "reason",
    "via_app_password",
    "app_password_id",
];

/// `INSERT INTO auth_log (…) VALUES (…), …` for `rows` rows, with `backend`'s placeholders.
fn auth_log_insert(backend: DbBackend, rows: usize) -> String {
    let columns = AUTH_LOG_COLUMNS.len();
    let mut sql = format!("INSERT INTO auth_log ({}) VALUES ", AUTH_LOG_COLUMNS.join(", "));
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                DbBackend::Postgres => {
                    let _ = write!(sql, "${}", row * columns + column + 1);
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Appends a login decision to the auth log.
    pub async fn record_auth(&self, entry: NewAuthLogEntry) -> Result<()> {
        self.record_auth_batch(vec![(now(), entry)]).await
    }

    /// Appends several login decisions (with their times) in one transaction. The rows go in as multi-row
    /// inserts of [`AUTH_LOG_CHUNKS`] sizes, so the database sees a handful of statement shapes it has already
    /// prepared; the values are moved into the statement, and nothing is read back.
    pub async fn record_auth_batch(&self, entries: Vec<(i64, NewAuthLogEntry)>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let backend = self.db.get_database_backend();
        let (_writer, txn) = self.begin().await?;
        let mut rows = entries.into_iter();
        let mut left = rows.len();
        while left > 0 {
            let size = AUTH_LOG_CHUNKS.iter().copied().find(|size| *size <= left).unwrap_or(1);
            let mut values = Vec::with_capacity(size * AUTH_LOG_COLUMNS.len());
            for (at, entry) in rows.by_ref().take(size) {
                values.extend([
                    Value::from(at),
                    Value::from(entry.service),
                    Value::from(entry.username),
                    Value::from(entry.master_user),
                    Value::from(entry.remote_ip),
                    Value::from(entry.result.as_str()),
                    Value::from(entry.reason),
                    Value::from(entry.app_password_id.is_some()),
                    Value::from(entry.app_password_id),
                ]);
            }
            let sql = auth_log_insert(backend, size);
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.map_err(db_err)?;
            left -= size;
        }
        txn.commit().await.map_err(db_err)
    }

    /// Writes an audit-log entry on its own (for events that are not part of a store change, such as an
    /// impersonation starting).
    pub async fn record_audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        audit(&self.db, actor, action, target, details).await
    }

    /// Auth-log entries, newest first, filtered in the database (so `limit` counts matching entries).
    pub async fn auth_log(&self, filter: &LogFilter) -> Result<Vec<AuthLogEntry>> {
        let Some(query) = auth_select(filter, self.db.get_database_backend()) else { return Ok(Vec::new()) };
        let rows = windowed(query.order_by_desc(auth_log::Column::Id), filter).all(&self.db).await.map_err(db_err)?;
        Ok(rows.into_iter().map(auth_entry).collect())
    }

    /// One page of [`Store::auth_log`] (the filter's `offset` and `limit`), with the matching entries counted up
    /// to [`LOG_COUNT_CAP`]; `oldest_first` reverses the order.
    pub async fn auth_log_page(&self, filter: &LogFilter, oldest_first: bool) -> Result<Page<AuthLogEntry>> {
        let window = filter.window();
        let backend = self.db.get_database_backend();
        let Some(query) = auth_select(filter, backend) else { return Ok(Page::empty(window.offset, window.limit)) };
        let (total, more) = self.capped_count(query.clone()).await?;
        let order = if oldest_first { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
        let rows = windowed(query.order_by(auth_log::Column::Id, order), filter).all(&self.db).await.map_err(db_err)?;
        Ok(Page {
            items: rows.into_iter().map(auth_entry).collect(),
            total,
            more,
            offset: window.offset,
            limit: window.limit,
        })
    }

    /// Audit-log entries, newest first, filtered in the database (so `limit` counts matching entries). With
    /// `domains`, an entry matches when its target is one of the domains or an address in one.
    pub async fn audit_log(&self, filter: &LogFilter) -> Result<Vec<AuditEntry>> {
        let Some(query) = audit_select(filter) else { return Ok(Vec::new()) };
        let rows = windowed(query.order_by_desc(audit_log::Column::Id), filter).all(&self.db).await.map_err(db_err)?;
        Ok(rows.into_iter().map(audit_entry).collect())
    }

    /// One page of [`Store::audit_log`], counted as [`Store::auth_log_page`] counts.
    pub async fn audit_log_page(&self, filter: &LogFilter, oldest_first: bool) -> Result<Page<AuditEntry>> {
        let window = filter.window();
        let Some(query) = audit_select(filter) else { return Ok(Page::empty(window.offset, window.limit)) };
        let (total, more) = self.capped_count(query.clone()).await?;
        let order = if oldest_first { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
        let rows =
            windowed(query.order_by(audit_log::Column::Id, order), filter).all(&self.db).await.map_err(db_err)?;
        Ok(Page {
            items: rows.into_iter().map(audit_entry).collect(),
            total,
            more,
            offset: window.offset,
            limit: window.limit,
        })
    }

    /// How many rows `query` selects, counting no further than [`LOG_COUNT_CAP`]: the count and whether there
    /// are more.
    async fn capped_count<E: EntityTrait>(&self, query: sea_orm::Select<E>) -> Result<(u64, bool)> {
        use sea_orm::{Iterable, PrimaryKeyToColumn, QueryTrait};
        let first = E::PrimaryKey::iter().next().expect("a primary key").into_column();
        let inner = query.select_only().column(first).limit(LOG_COUNT_CAP + 1).into_query();
        let statement = sea_orm::sea_query::Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from_subquery(inner, Alias::new("capped"))
            .to_owned();
        let backend = self.db.get_database_backend();
        let row = self.db.query_one_raw(backend.build(&statement)).await.map_err(db_err)?;
        let counted: i64 = match row {
            Some(row) => row.try_get("", "n").map_err(db_err)?,
            None => 0,
        };
        let counted = u64::try_from(counted).unwrap_or(0);
        Ok((Ord::min(counted, LOG_COUNT_CAP), counted > LOG_COUNT_CAP))
    }

    /// Records the start of a job run and returns its id.
    pub async fn start_job(&self, job: &str, provider: Option<&str>) -> Result<i64> {
        let inserted = job_log::ActiveModel {
            id: NotSet,
            job: Set(job.to_string()),
            provider: Set(provider.map(str::to_string)),
            started_at: Set(now()),
            finished_at: Set(None),
            status: Set("running".to_string()),
            summary: Set("{}".to_string()),
        }
        .insert(&self.db)
        .await
        .map_err(db_err)?;
        Ok(inserted.id)
    }

    /// Records the end of a job run.
    pub async fn finish_job(&self, id: i64, status: &str, summary: serde_json::Value) -> Result<()> {
        job_log::ActiveModel {
            id: Set(id),
            finished_at: Set(Some(now())),
            status: Set(status.to_string()),
            summary: Set(summary.to_string()),
            ..Default::default()
        }
        .update(&self.db)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Marks the runs of `job` for `provider` still recorded as `running` as `interrupted` (finished now): the
    /// caller holds the job's lease, so those runs belong to a process that died. Returns how many there were.
    pub async fn close_interrupted_jobs(&self, job: &str, provider: &str) -> Result<u64> {
        let closed = job_log::Entity::update_many()
            .col_expr(job_log::Column::Status, "interrupted".into())
            .col_expr(job_log::Column::FinishedAt, now().into())
            .col_expr(
                job_log::Column::Summary,
                r#"{"error":"the process running it stopped before it finished"}"#.into(),
            )
            .filter(job_log::Column::Job.eq(job))
            .filter(job_log::Column::Provider.eq(provider))
            .filter(job_log::Column::Status.eq("running"))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(closed.rows_affected)
    }

    /// Job runs, newest first. The filter's subject matches the provider name.
    pub async fn job_log(&self, filter: &LogFilter) -> Result<Vec<JobRun>> {
        let rows = windowed(job_select(filter).order_by_desc(job_log::Column::Id), filter)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(job_run).collect())
    }

    /// One page of [`Store::job_log`], counted as [`Store::auth_log_page`] counts.
    pub async fn job_log_page(&self, filter: &LogFilter, oldest_first: bool) -> Result<Page<JobRun>> {
        let window = filter.window();
        let query = job_select(filter);
        let (total, more) = self.capped_count(query.clone()).await?;
        let order = if oldest_first { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
        let rows = windowed(query.order_by(job_log::Column::Id, order), filter).all(&self.db).await.map_err(db_err)?;
        Ok(Page {
            items: rows.into_iter().map(job_run).collect(),
            total,
            more,
            offset: window.offset,
            limit: window.limit,
        })
    }
}

/// The filter's window on a query: `offset` entries skipped, `limit` (default 100) returned.
fn windowed<E: EntityTrait>(query: sea_orm::Select<E>, filter: &LogFilter) -> sea_orm::Select<E> {
    query.offset(filter.offset).limit(filter.limit.unwrap_or(DEFAULT_LIMIT))
}

/// The auth-log rows `filter` selects (`None`: none can match). On SQLite the outcome is compared as `+result`:
/// an index that starts with the outcome (the overview's) would otherwise make SQLite collect and sort every
/// failure instead of walking the log newest first until a page is full.
fn auth_select(filter: &LogFilter, backend: DbBackend) -> Option<sea_orm::Select<auth_log::Entity>> {
    if filter.domains.as_ref().is_some_and(Vec::is_empty) {
        return None;
    }
    let mut query = auth_log::Entity::find();
    if let Some(user) = &filter.subject {
        query = query.filter(auth_log::Column::Username.eq(user.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(auth_log::Column::CreatedAt.gte(since));
    }
    if let Some(domains) = &filter.domains {
        query = query.filter(addresses_in(auth_log::Column::Username, domains));
    }
    if let Some(service) = &filter.service {
        query = query.filter(auth_log::Column::Service.eq(service.as_str()));
    }
    if let Some(result) = filter.result {
        query = match backend {
            DbBackend::Sqlite => query.filter(Expr::cust_with_values("+\"result\" = ?", [result.as_str()])),
            _ => query.filter(auth_log::Column::Result.eq(result.as_str())),
        };
    }
    if let Some(address) = &filter.remote_ip {
        query = query.filter(auth_log::Column::RemoteIp.eq(address.as_str()));
    }
    Some(query)
}

fn auth_entry(row: auth_log::Model) -> AuthLogEntry {
    AuthLogEntry {
        id: row.id,
        created_at: row.created_at,
        service: row.service,
        username: row.username,
        master_user: row.master_user,
        remote_ip: row.remote_ip,
        result: AuthResult::parse(&row.result),
        reason: row.reason,
        via_app_password: row.via_app_password,
        app_password_id: row.app_password_id,
    }
}

/// The audit-log rows `filter` selects (`None`: none can match).
fn audit_select(filter: &LogFilter) -> Option<sea_orm::Select<audit_log::Entity>> {
    if filter.domains.as_ref().is_some_and(Vec::is_empty) {
        return None;
    }
    let mut query = audit_log::Entity::find();
    if let Some(target) = &filter.subject {
        query = query.filter(audit_log::Column::Target.eq(target.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_log::Column::CreatedAt.gte(since));
    }
    if let Some(domains) = &filter.domains {
        let names: Vec<&str> = domains.iter().map(DomainName::as_str).collect();
        query =
            query.filter(addresses_in(audit_log::Column::Target, domains).add(audit_log::Column::Target.is_in(names)));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_log::Column::Actor.eq(actor.as_str()));
    }
    if let Some(prefix) = &filter.action_prefix {
        query = query.filter(audit_log::Column::Action.starts_with(prefix.as_str()));
    }
    Some(query)
}

fn audit_entry(row: audit_log::Model) -> AuditEntry {
    AuditEntry {
        id: row.id,
        created_at: row.created_at,
        actor: row.actor,
        actor_role: row.actor_role,
        action: row.action,
        target: row.target,
        details: parse_json(&row.details),
    }
}

/// The job runs `filter` selects.
fn job_select(filter: &LogFilter) -> sea_orm::Select<job_log::Entity> {
    let mut query = job_log::Entity::find();
    if let Some(provider) = &filter.subject {
        query = query.filter(job_log::Column::Provider.eq(provider.as_str()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(job_log::Column::Status.eq(status.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(job_log::Column::StartedAt.gte(since));
    }
    query
}

pub(crate) fn job_run(row: job_log::Model) -> JobRun {
    JobRun {
        id: row.id,
        job: row.job,
        provider: row.provider,
        started_at: row.started_at,
        finished_at: row.finished_at,
        status: row.status,
        summary: parse_json(&row.summary),
    }
}
