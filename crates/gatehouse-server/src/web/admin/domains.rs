//! Domains: administrators list, add, change and remove them; domain administrators see their own and may
//! change only the description.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::DomainName;
use std::collections::HashMap;

use axum::extract::Query;
use gatehouse_store::{Domain, DomainChanges, DomainOrder, DomainSearch, NewDomain};

use super::listing::{Column, ListQuery, Pager};
use super::{
    Chrome, Confirm, FormData, Section, done, enter, enter_form, finish, found, not_found, quota_text, role_of,
    segment, yes_no,
};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::session::Role;

pub(super) struct DomainView {
    path: String,
    unicode_name: String,
    description: String,
    active: bool,
    active_text: &'static str,
    max_mailboxes: i64,
    default_quota_mib: i64,
    max_quota_mib: i64,
    total_quota_mib: i64,
    mailboxes: i64,
    quota_used_mib: i64,
    /// The quotas as people read them.
    quota_used: String,
    total_quota: String,
    max_quota: String,
    default_quota: String,
}

impl From<Domain> for DomainView {
    fn from(d: Domain) -> Self {
        DomainView {
            path: segment(&d.name),
            unicode_name: d.unicode_name,
            description: d.description,
            active: d.active,
            active_text: yes_no(d.active),
            max_mailboxes: d.max_mailboxes,
            default_quota_mib: d.default_quota_mib,
            max_quota_mib: d.max_quota_mib,
            total_quota_mib: d.total_quota_mib,
            mailboxes: d.mailboxes,
            quota_used_mib: d.quota_used_mib,
            quota_used: if d.quota_used_mib > 0 { quota_text(d.quota_used_mib) } else { "0 MiB".into() },
            total_quota: quota_text(d.total_quota_mib),
            max_quota: quota_text(d.max_quota_mib),
            default_quota: quota_text(d.default_quota_mib),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_domains.html")]
struct DomainsPage {
    notice: Option<String>,
    chrome: Chrome,
    text: String,
    state: &'static str,
    columns: Vec<Column>,
    pager: Pager,
    domains: Vec<DomainView>,
}

#[derive(Template)]
#[template(path = "admin_domain.html")]
struct DomainPage {
    notice: Option<String>,
    chrome: Chrome,
    domain: DomainView,
}

/// The domain named in a path (404 when the name is not one).
fn domain_name(name: &str) -> Result<DomainName, Response> {
    DomainName::parse(name).map_err(|_| not_found())
}

/// `GET {prefix}/domains?q=&state=&sort=&dir=&page=&size=`: one page of the domains this login reaches.
pub(super) async fn list<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let text = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let (active, state_name) = match query.get("state").map(String::as_str) {
        Some("active") => (Some(true), "active"),
        Some("inactive") => (Some(false), "inactive"),
        _ => (None, ""),
    };
    let mut list = ListQuery::new(format!("{}/domains", ctx.prefix()), &query, &["name", "active", "created"]);
    list.keep("q", text.clone());
    list.keep("state", state_name);
    let search = DomainSearch {
        names: None,
        text: Some(text.clone()).filter(|t| !t.is_empty()),
        active,
        order: match list.sort {
            "active" => DomainOrder::Active,
            "created" => DomainOrder::Created,
            _ => DomainOrder::Name,
        },
        descending: list.descending,
        window: list.window(),
    };
    let page = ctx.store.search_domains(search).await.map_err(unavailable)?;
    let notice = ctx.take_notice(&state).await?;
    let page = DomainsPage {
        notice,
        chrome: ctx.chrome(Section::Domains, "Domains"),
        text,
        state: state_name,
        columns: vec![
            list.column("name", "Domain"),
            Column::plain("Description"),
            list.column("active", "Active"),
            Column::plain("Mailboxes"),
            Column::plain("Quota used"),
            Column::plain("Per mailbox"),
        ],
        pager: list.pager(&page),
        domains: page.items.into_iter().map(DomainView::from).collect(),
    };
    Ok(render(&page, StatusCode::OK))
}

/// The limit fields of the domain forms.
fn limits(form: &FormData) -> Result<[i64; 4], String> {
    Ok([
        form.number("max_mailboxes", "Most mailboxes")?.unwrap_or(0),
        form.number("default_quota_mib", "The default quota")?.unwrap_or(0),
        form.number("max_quota_mib", "The largest quota")?.unwrap_or(0),
        form.number("total_quota_mib", "The total quota")?.unwrap_or(0),
    ])
}

/// `POST /admin/domains`: adds a domain.
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let to = "/admin/domains";
    let name = match DomainName::parse(&form.text("name")) {
        Ok(name) => name,
        Err(err) => return done(&state, ctx, format!("Not saved: {err}"), to).await,
    };
    let [max_mailboxes, default_quota_mib, max_quota_mib, total_quota_mib] = match limits(&form) {
        Ok(limits) => limits,
        Err(problem) => return done(&state, ctx, problem, to).await,
    };
    let new = NewDomain {
        name,
        description: form.text("description"),
        active: form.checked("active"),
        max_mailboxes,
        default_quota_mib,
        max_quota_mib,
        total_quota_mib,
    };
    let result = ctx.store.create_domain(new).await.map(|d| format!("Domain {} added.", d.name));
    finish(&state, ctx, result, to).await
}

/// `GET {prefix}/domains/{name}`.
pub(super) async fn show<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let name = domain_name(&name)?;
    let domain = DomainView::from(found(ctx.store.domain(&name).await)?);
    let notice = ctx.take_notice(&state).await?;
    let chrome = ctx.chrome(Section::Domains, format!("Domain {}", domain.unicode_name));
    Ok(render(&DomainPage { notice, chrome, domain }, StatusCode::OK))
}

/// `POST {prefix}/domains/{name}`: administrators change everything, domain administrators the description.
pub(super) async fn update<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, role_of::<DA>(), &body).await?;
    let name = domain_name(&name)?;
    found(ctx.store.domain(&name).await)?;
    let to = format!("{}/domains/{}", ctx.prefix(), segment(name.as_str()));
    let mut changes = DomainChanges { description: Some(form.text("description")), ..DomainChanges::default() };
    if ctx.is_admin() {
        let [max_mailboxes, default_quota_mib, max_quota_mib, total_quota_mib] = match limits(&form) {
            Ok(limits) => limits,
            Err(problem) => return done(&state, ctx, problem, &to).await,
        };
        changes.active = Some(form.checked("active"));
        changes.max_mailboxes = Some(max_mailboxes);
        changes.default_quota_mib = Some(default_quota_mib);
        changes.max_quota_mib = Some(max_quota_mib);
        changes.total_quota_mib = Some(total_quota_mib);
    }
    let result = ctx.store.update_domain(&name, changes).await.map(|d| format!("Domain {} saved.", d.name));
    finish(&state, ctx, result, &to).await
}

/// `POST /admin/domains/{name}/remove`.
pub(super) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let name = domain_name(&name)?;
    if !form.confirmed() {
        let domain = found(ctx.store.domain(&name).await)?;
        return Ok(Confirm {
            section: Section::Domains,
            title: format!("Remove domain {}?", domain.unicode_name),
            action: format!("/admin/domains/{}/remove", segment(&domain.name)),
            effects: vec![
                format!("remove the domain {} and its settings", domain.unicode_name),
                "refused while it has mailboxes: remove or move them first".into(),
            ],
            button: "Remove domain",
            back: format!("/admin/domains/{}", segment(&domain.name)),
        }
        .page(&ctx));
    }
    let result = ctx.store.remove_domain(&name).await.map(|()| format!("Domain {name} removed."));
    finish(&state, ctx, result, "/admin/domains").await
}
