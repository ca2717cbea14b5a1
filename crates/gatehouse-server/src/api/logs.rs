//! `/logs/auth`, `/logs/audit` and `/logs/jobs`: the three logs, newest first. A key limited to domains sees
//! only auth-log entries of its domains' mailboxes and audit-log entries about its domains and their
//! mailboxes; job runs belong to identity providers, not domains, so it sees none.

use axum::Extension;
use axum::response::Json;
use gatehouse_store::ScopedStore;
use gatehouse_store::{AuditEntry, AuthLogEntry, AuthResult, JobRun, LogFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiQuery, ApiResult, ErrorBody};

/// Entries returned when `limit` is not given.
const DEFAULT_LIMIT: u64 = 100;
/// Most entries one request returns.
const MAX_LIMIT: u64 = 1000;

/// Filters of the log listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only entries about this user (auth log), target (audit log) or identity provider (job log).
    pub subject: Option<String>,
    /// Only entries at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<u64>,
}

impl LogQuery {
    fn filter(self) -> LogFilter {
        LogFilter {
            subject: self.subject.filter(|s| !s.trim().is_empty()),
            since: self.since,
            limit: Some(self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)),
            ..LogFilter::default()
        }
    }
}

/// Outcome of a login decision.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthOutcome {
    /// Allowed.
    Success,
    /// Denied.
    Failure,
    /// Not decided because a peer failed.
    TempFail,
}

/// One login decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthLogEntryView {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Service (`imap`, `smtp`, `web`, …).
    pub service: String,
    /// The user the login was for.
    pub username: String,
    /// The master user, for master logins.
    pub master_user: Option<String>,
    /// The client's address.
    pub remote_ip: Option<String>,
    /// Outcome.
    pub result: AuthOutcome,
    /// Why.
    pub reason: String,
    /// Whether an app password was used.
    pub via_app_password: bool,
    /// Which app password.
    pub app_password_id: Option<i64>,
}

impl From<AuthLogEntry> for AuthLogEntryView {
    fn from(entry: AuthLogEntry) -> Self {
        AuthLogEntryView {
            id: entry.id,
            created_at: entry.created_at,
            service: entry.service,
            username: entry.username,
            master_user: entry.master_user,
            remote_ip: entry.remote_ip,
            result: match entry.result {
                AuthResult::Success => AuthOutcome::Success,
                AuthResult::Failure => AuthOutcome::Failure,
                AuthResult::TempFail => AuthOutcome::TempFail,
            },
            reason: entry.reason,
            via_app_password: entry.via_app_password,
            app_password_id: entry.app_password_id,
        }
    }
}

/// One change or impersonation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Who (`api-key:<name>`, `cli:root`, an admin's username, …).
    pub actor: String,
    /// In which role (`api`, `cli`, `admin`, …).
    pub actor_role: String,
    /// What (`mailbox.add`, `domain.edit`, …).
    pub action: String,
    /// On what.
    pub target: String,
    /// Details (never secrets).
    pub details: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(entry: AuditEntry) -> Self {
        AuditEntryView {
            id: entry.id,
            created_at: entry.created_at,
            actor: entry.actor,
            actor_role: entry.actor_role,
            action: entry.action,
            target: entry.target,
            details: entry.details,
        }
    }
}

/// One sync or import run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRunView {
    /// Row id.
    pub id: i64,
    /// Job name (`sync`, `import`, …).
    pub job: String,
    /// Identity provider it ran for.
    pub provider: Option<String>,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; absent while running.
    pub finished_at: Option<i64>,
    /// `running`, `ok`, `failed`, …
    pub status: String,
    /// Counts and messages.
    pub summary: serde_json::Value,
}

impl From<JobRun> for JobRunView {
    fn from(run: JobRun) -> Self {
        JobRunView {
            id: run.id,
            job: run.job,
            provider: run.provider,
            started_at: run.started_at,
            finished_at: run.finished_at,
            status: run.status,
            summary: run.summary,
        }
    }
}

/// The auth log: login decisions, newest first.
#[utoipa::path(
    get, path = "/logs/auth", tag = "logs",
    params(LogQuery),
    responses(
        (status = 200, description = "Entries, newest first", body = Vec<AuthLogEntryView>),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn auth_log(
    Extension(store): Extension<ScopedStore>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> ApiResult<Json<Vec<AuthLogEntryView>>> {
    let entries = store.auth_log(&query.filter()).await?;
    Ok(Json(entries.into_iter().map(AuthLogEntryView::from).collect()))
}

/// The audit log: changes and impersonations, newest first.
#[utoipa::path(
    get, path = "/logs/audit", tag = "logs",
    params(LogQuery),
    responses(
        (status = 200, description = "Entries, newest first", body = Vec<AuditEntryView>),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn audit_log(
    Extension(store): Extension<ScopedStore>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> ApiResult<Json<Vec<AuditEntryView>>> {
    let entries = store.audit_log(&query.filter()).await?;
    Ok(Json(entries.into_iter().map(AuditEntryView::from).collect()))
}

/// The job log: sync and import runs, newest first (empty for keys limited to domains).
#[utoipa::path(
    get, path = "/logs/jobs", tag = "logs",
    params(LogQuery),
    responses(
        (status = 200, description = "Runs, newest first", body = Vec<JobRunView>),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "Source address not allowed", body = ErrorBody),
        (status = 503, description = "Temporarily unavailable", body = ErrorBody),
    ),
)]
pub async fn job_log(
    Extension(store): Extension<ScopedStore>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> ApiResult<Json<Vec<JobRunView>>> {
    let runs = store.job_log(&query.filter()).await?;
    Ok(Json(runs.into_iter().map(JobRunView::from).collect()))
}
