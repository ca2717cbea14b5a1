//! The auth, audit and job logs with filters. Domain administrators see only the entries about their domains
//! and their mailboxes (the newest ones among the last entries scanned); the job log is for administrators.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_store::{AuthResult, LogFilter};

use super::{Choice, Chrome, Ctx, date_time, enter, not_found, role_of};
use crate::AppState;
use crate::web::pages::unavailable;
use crate::web::render;
use crate::web::session::Role;

/// Entries shown.
const SHOWN: usize = 100;
/// Entries read when filtering here rather than in the database.
const SCANNED: u64 = 2000;

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
    title: &'static str,
    action: String,
    filters: Vec<FilterView>,
    headers: Vec<&'static str>,
    mut rows: Vec<Vec<String>>,
    problem: Option<String>,
) -> Response {
    let notice = match ctx.take_notice(state).await {
        Ok(notice) => notice,
        Err(response) => return response,
    };
    let notice = match (notice, problem) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.or(b),
    };
    let limited = rows.len() > SHOWN;
    rows.truncate(SHOWN);
    let page = LogPage { notice, chrome: ctx.chrome(title), action, filters, headers, rows, limited, limit: SHOWN };
    render(&page, StatusCode::OK)
}

/// `GET {prefix}/logs/auth?user=&result=&service=&since=`.
pub(super) async fn auth<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match enter(&state, &headers, role_of::<DA>()).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let query = Filters(query);
    let user = query.get("user").to_lowercase();
    if !user.is_empty() && !ctx.owns(domain_of(&user)) {
        return not_found();
    }
    let (result, service) = (query.get("result"), query.get("service"));
    let (since, problem) = query.since();
    let scan = !ctx.is_admin() || !result.is_empty() || !service.is_empty();
    let filter = LogFilter {
        subject: Some(user).filter(|u| !u.is_empty()),
        since,
        limit: Some(if scan { SCANNED } else { SHOWN as u64 + 1 }),
    };
    let entries = match state.store.auth_log(&filter).await {
        Ok(entries) => entries,
        Err(err) => return unavailable(err),
    };
    let rows = entries
        .into_iter()
        .filter(|e| ctx.owns(domain_of(&e.username)))
        .filter(|e| service.is_empty() || e.service == service)
        .filter(|e| {
            result.is_empty()
                || matches!(
                    (result.as_str(), e.result),
                    ("success", AuthResult::Success)
                        | ("failure", AuthResult::Failure)
                        | ("tempfail", AuthResult::TempFail)
                )
        })
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
    page(&state, ctx, "Auth log", action, filters, headers, rows, problem).await
}

/// `GET {prefix}/logs/audit?target=&actor=&action=&since=`.
pub(super) async fn audit<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match enter(&state, &headers, role_of::<DA>()).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let query = Filters(query);
    let target = query.get("target");
    if !target.is_empty() && !ctx.owns(domain_of(&target.to_lowercase())) {
        return not_found();
    }
    let (actor, action) = (query.get("actor"), query.get("action"));
    let (since, problem) = query.since();
    let scan = !ctx.is_admin() || !actor.is_empty() || !action.is_empty();
    let filter = LogFilter {
        subject: Some(target).filter(|t| !t.is_empty()),
        since,
        limit: Some(if scan { SCANNED } else { SHOWN as u64 + 1 }),
    };
    let entries = match state.store.audit_log(&filter).await {
        Ok(entries) => entries,
        Err(err) => return unavailable(err),
    };
    let rows = entries
        .into_iter()
        .filter(|e| ctx.owns(domain_of(&e.target)))
        .filter(|e| actor.is_empty() || e.actor == actor)
        .filter(|e| action.is_empty() || e.action.starts_with(&action))
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
    page(&state, ctx, "Audit log", action, filters, headers, rows, problem).await
}

/// `GET /admin/logs/jobs?provider=&status=&since=`.
pub(super) async fn jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ctx = match enter(&state, &headers, Role::Admin).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let query = Filters(query);
    let status = query.get("status");
    let (since, problem) = query.since();
    let filter = LogFilter {
        subject: Some(query.get("provider")).filter(|p| !p.is_empty()),
        since,
        limit: Some(if status.is_empty() { SHOWN as u64 + 1 } else { SCANNED }),
    };
    let runs = match state.store.job_log(&filter).await {
        Ok(runs) => runs,
        Err(err) => return unavailable(err),
    };
    let rows = runs
        .into_iter()
        .filter(|run| status.is_empty() || run.status == status)
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
    page(&state, ctx, "Job log", "/admin/logs/jobs".into(), filters, headers, rows, problem).await
}
