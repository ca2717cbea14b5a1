//! The auth, audit and job logs with filters, all applied by the database. Domain administrators see only the
//! entries about their domains and their mailboxes; the job log is for administrators.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_store::{AuthResult, LogFilter};

use super::{Choice, Chrome, Ctx, Section, date_time, enter, not_found, role_of};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::session::Role;

/// Entries shown.
const SHOWN: usize = 100;

pub(super) struct FilterView {
    name: &'static str,
    label: &'static str,
    value: String,
    options: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "admin_log.html")]
struct LogPage {
    notice: Option<String>,
    chrome: Chrome,
    action: String,
    filters: Vec<FilterView>,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    limited: bool,
    limit: usize,
}

/// The query's filters, trimmed.
struct Filters(HashMap<String, String>);

impl Filters {
    fn get(&self, name: &str) -> String {
        self.0.get(name).map(|v| v.trim().to_string()).unwrap_or_default()
    }

    fn text(&self, name: &'static str, label: &'static str) -> FilterView {
        FilterView { name, label, value: self.get(name), options: Vec::new() }
    }

    fn select(&self, name: &'static str, label: &'static str, options: &[(&str, &str)]) -> FilterView {
        let value = self.get(name);
        let options = options.iter().map(|(v, l)| Choice::new(*v, *l, *v == value)).collect();
        FilterView { name, label, value, options }
    }

    /// `since` (YYYY-MM-DD) as Unix seconds at midnight UTC; a problem for the notice when it is not a date.
    fn since(&self) -> (Option<i64>, Option<String>) {
        let text = self.get("since");
        if text.is_empty() {
            return (None, None);
        }
        match time::Date::parse(&text, time::macros::format_description!("[year]-[month]-[day]")) {
            Ok(date) => (Some(date.midnight().assume_utc().unix_timestamp()), None),
            Err(_) => (None, Some(format!("'{text}' is not a date (YYYY-MM-DD); the date filter was left out."))),
        }
    }

    /// The store's filter: `subject` when not empty, `since`, and one more entry than is shown (to say that
    /// there are more); with the problem of an unreadable `since`. Every filter runs in the database, and the
    /// scoped store adds the login's domains.
    fn log_filter(&self, subject: String) -> (LogFilter, Option<String>) {
        let (since, problem) = self.since();
        let filter = LogFilter {
            subject: Some(subject).filter(|s| !s.is_empty()),
            since,
            limit: Some(SHOWN as u64 + 1),
            ..LogFilter::default()
        };
        (filter, problem)
    }
}

/// 404 unless `subject` (an address or domain; empty: any) is about a domain this login manages.
fn check_subject(ctx: &Ctx, subject: &str) -> Result<(), Response> {
    if subject.is_empty() || ctx.store.reaches(domain_of(&subject.to_lowercase())) { Ok(()) } else { Err(not_found()) }
}

/// The domain of an address or domain name (`alice@example.org` → `example.org`).
fn domain_of(subject: &str) -> &str {
    subject.rsplit_once('@').map_or(subject, |(_, domain)| domain)
}

/// The page, with the session's notice and any filter problem.
#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    mut ctx: Ctx,
    section: Section,
    title: &'static str,
    action: String,
    filters: Vec<FilterView>,
    headers: Vec<&'static str>,
    mut rows: Vec<Vec<String>>,
    problem: Option<String>,
) -> Result<Response, Response> {
    let notice = ctx.take_notice(state).await?;
    let notice = match (notice, problem) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.or(b),
    };
    let limited = rows.len() > SHOWN;
    rows.truncate(SHOWN);
    let page =
        LogPage { notice, chrome: ctx.chrome(section, title), action, filters, headers, rows, limited, limit: SHOWN };
    Ok(render(&page, StatusCode::OK))
}

/// `GET {prefix}/logs/auth?user=&result=&service=&since=`.
pub(super) async fn auth<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let query = Filters(query);
    let user = query.get("user").to_lowercase();
    check_subject(&ctx, &user)?;
    let (result, service) = (query.get("result"), query.get("service"));
    let (mut filter, problem) = query.log_filter(user);
    filter.service = Some(service).filter(|s| !s.is_empty());
    filter.result = match result.as_str() {
        "success" => Some(AuthResult::Success),
        "failure" => Some(AuthResult::Failure),
        "tempfail" => Some(AuthResult::TempFail),
        _ => None,
    };
    let entries = ctx.store.auth_log(&filter).await.map_err(unavailable)?;
    let rows = entries
        .into_iter()
        .map(|e| {
            vec![
                date_time(e.created_at),
                e.service,
                e.username,
                match e.result {
                    AuthResult::Success => "success".into(),
                    AuthResult::Failure => "failure".into(),
                    AuthResult::TempFail => "temporary failure".into(),
                },
                e.reason,
                e.remote_ip.unwrap_or_default(),
                e.master_user.unwrap_or_default(),
                e.app_password_id.map(|id| id.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let filters = vec![
        query.text("user", "User"),
        query.select(
            "result",
            "Result",
            &[("", "any"), ("success", "success"), ("failure", "failure"), ("tempfail", "temporary failure")],
        ),
        query.text("service", "Service (imap, smtp, web, …)"),
        query.text("since", "Since (YYYY-MM-DD)"),
    ];
    let headers =
        vec!["Time", "Service", "User", "Result", "Reason", "From", "By (master user / admin)", "App password"];
    let action = format!("{}/logs/auth", ctx.prefix());
    page(&state, ctx, Section::AuthLog, "Auth log", action, filters, headers, rows, problem).await
}

/// `GET {prefix}/logs/audit?target=&actor=&action=&since=`.
pub(super) async fn audit<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let query = Filters(query);
    let target = query.get("target");
    check_subject(&ctx, &target)?;
    let (actor, action) = (query.get("actor"), query.get("action"));
    let (mut filter, problem) = query.log_filter(target);
    filter.actor = Some(actor).filter(|a| !a.is_empty());
    filter.action_prefix = Some(action).filter(|a| !a.is_empty());
    let entries = ctx.store.audit_log(&filter).await.map_err(unavailable)?;
    let rows = entries
        .into_iter()
        .map(|e| vec![date_time(e.created_at), e.actor, e.actor_role, e.action, e.target, e.details.to_string()])
        .collect();
    let filters = vec![
        query.text("target", "Target (domain, mailbox, …)"),
        query.text("actor", "Actor"),
        query.text("action", "Action (prefix: mailbox, domain.add, …)"),
        query.text("since", "Since (YYYY-MM-DD)"),
    ];
    let headers = vec!["Time", "Actor", "Role", "Action", "Target", "Details"];
    let action = format!("{}/logs/audit", ctx.prefix());
    page(&state, ctx, Section::AuditLog, "Audit log", action, filters, headers, rows, problem).await
}

/// `GET /admin/logs/jobs?provider=&status=&since=`.
pub(super) async fn jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, Role::Admin).await?;
    let query = Filters(query);
    let status = query.get("status");
    let (mut filter, problem) = query.log_filter(query.get("provider"));
    filter.status = Some(status).filter(|s| !s.is_empty());
    let runs = ctx.store.job_log(&filter).await.map_err(unavailable)?;
    let rows = runs
        .into_iter()
        .map(|run| {
            vec![
                date_time(run.started_at),
                run.finished_at.map(date_time).unwrap_or_else(|| "running".into()),
                run.job,
                run.provider.unwrap_or_default(),
                run.status,
                run.summary.to_string(),
            ]
        })
        .collect();
    let filters = vec![
        query.text("provider", "Identity provider"),
        query.select(
            "status",
            "Status",
            &[("", "any"), ("ok", "ok"), ("refused", "refused"), ("failed", "failed"), ("running", "running")],
        ),
        query.text("since", "Since (YYYY-MM-DD)"),
    ];
    let headers = vec!["Started", "Finished", "Job", "Provider", "Status", "Summary"];
    page(&state, ctx, Section::JobLog, "Job log", "/admin/logs/jobs".into(), filters, headers, rows, problem).await
}
