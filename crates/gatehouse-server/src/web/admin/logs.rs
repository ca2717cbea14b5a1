//! The auth, audit and job logs with filters, all applied by the database, a page at a time (counted up to
//! [`gatehouse_store::LOG_COUNT_CAP`] entries), newest or oldest first. Domain administrators see only the
//! entries about their domains and their mailboxes; the job log is for administrators. Job summaries and audit
//! details are shown as named fields.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_store::{AuthResult, LogFilter, Page};

use super::listing::{Column, ListQuery, Pager};
use super::readable::{detail_fields, summary_fields};
use super::{Choice, Chrome, Ctx, Section, date_time, enter, not_found, role_of};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::session::Role;

pub(super) struct FilterView {
    name: &'static str,
    label: &'static str,
    value: String,
    options: Vec<Choice>,
}

/// A cell of a log table: text, or named fields (a job summary, audit details).
pub(super) struct Cell {
    text: String,
    fields: Vec<(String, String)>,
    /// The cell's column heading (shown beside the value on narrow screens).
    label: &'static str,
    /// The text is a time (UTC), shown in the viewer's time zone where scripts run.
    time: bool,
}

#[derive(Template)]
#[template(path = "admin_log.html")]
struct LogPage {
    notice: Option<String>,
    chrome: Chrome,
    action: String,
    filters: Vec<FilterView>,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
    pager: Pager,
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

    /// The place in the list (newest first unless the query says otherwise), keeping `names`' filters in its
    /// links.
    fn list(&self, path: String, names: &[&'static str]) -> ListQuery {
        let mut list = ListQuery::descending(path, &self.0, &["time"]);
        for name in names {
            list.keep(name, self.get(name));
        }
        list
    }

    /// The store's filter: `subject` when not empty, `since`, and the page's window; with the problem of an
    /// unreadable `since`. Every filter runs in the database, and the scoped store adds the login's domains.
    fn log_filter(&self, subject: String, list: &ListQuery) -> (LogFilter, Option<String>) {
        let (since, problem) = self.since();
        let window = list.window();
        let filter = LogFilter {
            subject: Some(subject).filter(|s| !s.is_empty()),
            since,
            limit: Some(window.limit),
            offset: Some(window.offset),
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

/// A text cell.
fn text(label: &'static str, text: impl Into<String>) -> Cell {
    Cell { text: text.into(), fields: Vec::new(), label, time: false }
}

/// A time cell (Unix seconds).
fn time(label: &'static str, seconds: i64) -> Cell {
    Cell { text: date_time(seconds), fields: Vec::new(), label, time: true }
}

/// What a log page shows besides its rows.
struct LogView {
    section: Section,
    title: &'static str,
    action: String,
    filters: Vec<FilterView>,
    /// Column headings after the time (which sorts).
    headings: Vec<&'static str>,
}

/// The page, with the session's notice and any filter problem.
async fn page<T>(
    state: &AppState,
    mut ctx: Ctx,
    view: LogView,
    list: &ListQuery,
    entries: Page<T>,
    row: impl Fn(T) -> Vec<Cell>,
    problem: Option<String>,
) -> Result<Response, Response> {
    let notice = ctx.take_notice(state).await?;
    let notice = match (notice, problem) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.or(b),
    };
    let mut columns = vec![list.column("time", "Time")];
    columns.extend(view.headings.into_iter().map(Column::plain));
    let pager = list.pager(&entries);
    let page = LogPage {
        notice,
        chrome: ctx.chrome(view.section, view.title),
        action: view.action,
        filters: view.filters,
        columns,
        rows: entries.items.into_iter().map(row).collect(),
        pager,
    };
    Ok(render(&page, StatusCode::OK))
}

/// `GET {prefix}/logs/auth?user=&result=&service=&from=&since=&page=`.
pub(super) async fn auth<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let query = Filters(query);
    let user = query.get("user").to_lowercase();
    check_subject(&ctx, &user)?;
    let action = format!("{}/logs/auth", ctx.prefix());
    let list = query.list(action.clone(), &["user", "result", "service", "from", "since"]);
    let (result, service) = (query.get("result"), query.get("service"));
    let (mut filter, problem) = query.log_filter(user, &list);
    filter.service = Some(service).filter(|s| !s.is_empty());
    filter.remote_ip = Some(query.get("from")).filter(|s| !s.is_empty());
    filter.result = match result.as_str() {
        "success" => Some(AuthResult::Success),
        "failure" => Some(AuthResult::Failure),
        "tempfail" => Some(AuthResult::TempFail),
        _ => None,
    };
    let entries = ctx.store.auth_log_page(&filter, !list.descending).await.map_err(unavailable)?;
    let row = |e: gatehouse_store::AuthLogEntry| {
        vec![
            time("Time", e.created_at),
            text("Service", e.service),
            text("User", e.username),
            text(
                "Result",
                match e.result {
                    AuthResult::Success => "allowed",
                    AuthResult::Failure => "refused",
                    AuthResult::TempFail => "temporary failure",
                },
            ),
            text("Reason", e.reason),
            text("From", e.remote_ip.unwrap_or_default()),
            text("By", e.master_user.unwrap_or_default()),
            text("App password", e.app_password_id.map(|id| format!("#{id}")).unwrap_or_default()),
        ]
    };
    let view = LogView {
        section: Section::AuthLog,
        title: "Auth log",
        action,
        filters: vec![
            query.text("user", "User"),
            query.select(
                "result",
                "Result",
                &[("", "any"), ("success", "allowed"), ("failure", "refused"), ("tempfail", "temporary failure")],
            ),
            query.text("service", "Service (imap, smtp, web, …)"),
            query.text("from", "Client address"),
            query.text("since", "Since (YYYY-MM-DD)"),
        ],
        headings: vec!["Service", "User", "Result", "Reason", "From", "By (master user / admin)", "App password"],
    };
    page(&state, ctx, view, &list, entries, row, problem).await
}

/// `GET {prefix}/logs/audit?target=&actor=&action=&since=&page=`.
pub(super) async fn audit<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let query = Filters(query);
    let target = query.get("target");
    check_subject(&ctx, &target)?;
    let action = format!("{}/logs/audit", ctx.prefix());
    let list = query.list(action.clone(), &["target", "actor", "action", "since"]);
    let (actor, prefix) = (query.get("actor"), query.get("action"));
    let (mut filter, problem) = query.log_filter(target, &list);
    filter.actor = Some(actor).filter(|a| !a.is_empty());
    filter.action_prefix = Some(prefix).filter(|a| !a.is_empty());
    let entries = ctx.store.audit_log_page(&filter, !list.descending).await.map_err(unavailable)?;
    let row = |e: gatehouse_store::AuditEntry| {
        vec![
            time("Time", e.created_at),
            text("Actor", e.actor),
            text("Role", e.actor_role),
            text("Action", e.action),
            text("Target", e.target),
            Cell { text: String::new(), fields: detail_fields(&e.details), label: "Details", time: false },
        ]
    };
    let view = LogView {
        section: Section::AuditLog,
        title: "Audit log",
        action,
        filters: vec![
            query.text("target", "Target (domain, mailbox, …)"),
            query.text("actor", "Actor"),
            query.text("action", "Action (prefix: mailbox, domain.add, …)"),
            query.text("since", "Since (YYYY-MM-DD)"),
        ],
        headings: vec!["Actor", "Role", "Action", "Target", "Details"],
    };
    page(&state, ctx, view, &list, entries, row, problem).await
}

/// `GET /admin/logs/jobs?provider=&status=&since=&page=`.
pub(super) async fn jobs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, Role::Admin).await?;
    let query = Filters(query);
    let action = "/admin/logs/jobs".to_string();
    let list = query.list(action.clone(), &["provider", "status", "since"]);
    let (mut filter, problem) = query.log_filter(query.get("provider"), &list);
    filter.status = Some(query.get("status")).filter(|s| !s.is_empty());
    let runs = ctx.store.job_log_page(&filter, !list.descending).await.map_err(unavailable)?;
    let row = |run: gatehouse_store::JobRun| {
        vec![
            time("Started", run.started_at),
            match run.finished_at {
                Some(at) => time("Finished", at),
                None => text("Finished", "running"),
            },
            text("Job", run.job),
            text("Provider", run.provider.unwrap_or_default()),
            text("Status", run.status),
            Cell { text: String::new(), fields: summary_fields(&run.summary), label: "Summary", time: false },
        ]
    };
    let view = LogView {
        section: Section::JobLog,
        title: "Job log",
        action,
        filters: vec![
            query.text("provider", "Identity provider"),
            query.select(
                "status",
                "Status",
                &[("", "any"), ("ok", "ok"), ("refused", "refused"), ("failed", "failed"), ("running", "running")],
            ),
            query.text("since", "Since (YYYY-MM-DD)"),
        ],
        headings: vec!["Finished", "Job", "Provider", "Status", "Summary"],
    };
    page(&state, ctx, view, &list, runs, row, problem).await
}
