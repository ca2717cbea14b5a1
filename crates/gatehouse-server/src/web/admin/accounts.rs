//! Administrators, domain administrators (their domains and `login_as` permission) and master users
//! (administrators only). Removing, deactivating or setting the password of an account ends its web sessions.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::{DomainName, Error};
use gatehouse_store::{
    AdminRole, DomainAdminChanges, MasterScope, NewDomainAdmin, NewMasterScope, NewMasterUser, Store,
};

use super::listing::{ListQuery, Pager};
use super::{
    Choice, Chrome, Confirm, Ctx, FormData, Section, date_time, done, enter, enter_form, finish, hash_password,
    not_found, segment, yes_no,
};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::session::Role;

pub(super) struct AdminView {
    username: String,
    path: String,
    active: &'static str,
    created: String,
}

pub(super) struct DomainAdminView {
    username: String,
    path: String,
    domains: String,
    acl: String,
    active: &'static str,
}

pub(super) struct MasterView {
    username: String,
    path: String,
    scope: &'static str,
    domains: String,
    active: &'static str,
    created: String,
}

#[derive(Template)]
#[template(path = "admin_admins.html")]
struct AdminsPage {
    notice: Option<String>,
    chrome: Chrome,
    admins: Vec<AdminView>,
    /// The search of the domain administrators, and its page.
    text: String,
    pager: Pager,
    domain_admins: Vec<DomainAdminView>,
    domains: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "admin_domain_admin.html")]
struct DomainAdminPage {
    notice: Option<String>,
    chrome: Chrome,
    path: String,
    domains: Vec<Choice>,
    login_as: bool,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin_master_users.html")]
struct MasterUsersPage {
    notice: Option<String>,
    chrome: Chrome,
    text: String,
    search_label: &'static str,
    pager: Pager,
    masters: Vec<MasterView>,
    domains: Vec<Choice>,
}

/// Every domain as a checkbox, ticked when in `ticked`.
async fn domain_choices(store: &Store, ticked: &[String]) -> Result<Vec<Choice>, Error> {
    Ok(store
        .list_domains()
        .await?
        .into_iter()
        .map(|d| {
            let selected = ticked.contains(&d.name);
            Choice::new(d.name, d.unicode_name, selected)
        })
        .collect())
}

/// The ticked `domain` checkboxes.
fn ticked_domains(form: &FormData) -> Result<Vec<DomainName>, Error> {
    form.all("domain").into_iter().map(DomainName::parse).collect()
}

/// `GET /admin/admins?q=&page=&size=`: administrators, and one page of the domain administrators (searched by
/// username in the database).
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let text = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let mut list = ListQuery::new("/admin/admins".into(), &query, &["username"]);
    list.keep("q", text.clone());
    let loaded = async {
        let admins = store.list_admins(AdminRole::Admin).await?;
        let domain_admins = store.search_admins(AdminRole::DomainAdmin, Some(&text), list.window()).await?;
        Ok::<_, Error>((admins, domain_admins, domain_choices(&store, &[]).await?))
    };
    let (admins, domain_admins, domains) = loaded.await.map_err(unavailable)?;
    let pager = list.pager(&domain_admins);
    let domain_admins = domain_admins.items;
    let notice = ctx.take_notice(&state).await?;
    let page = AdminsPage {
        notice,
        chrome: ctx.chrome(Section::Administrators, "Administrators"),
        text,
        pager,
        admins: admins
            .into_iter()
            .map(|a| AdminView {
                path: segment(&a.username),
                username: a.username,
                active: yes_no(a.active),
                created: date_time(a.created_at),
            })
            .collect(),
        domain_admins: domain_admins
            .into_iter()
            .map(|a| DomainAdminView {
                path: segment(&a.username),
                username: a.username,
                domains: a.domains.join(", "),
                acl: if a.acl.is_empty() { "none".into() } else { a.acl.join(", ") },
                active: yes_no(a.active),
            })
            .collect(),
        domains,
    };
    Ok(render(&page, StatusCode::OK))
}

/// `POST /admin/admins`: adds an administrator.
pub(super) async fn create_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = "/admin/admins";
    let password = match form.required_password(&state.web.password_policy, "An administrator needs a password.") {
        Ok(password) => password,
        Err(problem) => return done(&state, ctx, problem, to).await,
    };
    let hash = hash_password(&state, password).await?;
    let result = store
        .create_admin(&ctx.actor(), &form.text("username"), hash)
        .await
        .map(|a| format!("Administrator {} added.", a.username));
    finish(&state, ctx, result, to).await
}

/// `POST /admin/admins/{username}/remove`: removes another administrator (never the last active one).
pub(super) async fn remove_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = "/admin/admins";
    if username.trim().eq_ignore_ascii_case(&ctx.account.username) {
        return done(&state, ctx, "You cannot remove your own account here.", to).await;
    }
    if !form.confirmed() {
        return Ok(account_removal(
            &ctx,
            "administrator",
            &format!("/admin/admins/{}/remove", segment(&username)),
            &username,
            to,
        ));
    }
    let result = async {
        store.remove_admin(&ctx.actor(), &username, AdminRole::Admin).await?;
        Ok(format!("Administrator {username} removed."))
    };
    let result = result.await;
    finish(&state, ctx, result, to).await
}

/// `POST /admin/domain-admins`: adds a domain administrator.
pub(super) async fn create_domain_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = "/admin/admins";
    let domains = match ticked_domains(&form) {
        Ok(domains) if !domains.is_empty() => domains,
        Ok(_) => return done(&state, ctx, "Tick at least one domain.", to).await,
        Err(err) => return done(&state, ctx, format!("Not saved: {err}"), to).await,
    };
    let password = match form.required_password(&state.web.password_policy, "A domain administrator needs a password.")
    {
        Ok(password) => password,
        Err(problem) => return done(&state, ctx, problem, to).await,
    };
    let password_hash = hash_password(&state, password).await?;
    let acl = if form.checked("login_as") { vec!["login_as".to_string()] } else { Vec::new() };
    let new = NewDomainAdmin { username: form.text("username"), password_hash, domains, acl };
    let result = store
        .create_domain_admin(&ctx.actor(), new)
        .await
        .map(|a| format!("Domain administrator {} added.", a.username));
    finish(&state, ctx, result, to).await
}

/// `GET /admin/domain-admins/{username}`.
pub(super) async fn show_domain_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let loaded = async {
        let Some(account) = store.admin(AdminRole::DomainAdmin, &username).await? else { return Ok(None) };
        let domains = domain_choices(&store, &account.domains).await?;
        Ok::<_, Error>(Some((account, domains)))
    };
    let (account, domains) = match loaded.await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Err(not_found()),
        Err(err) => return Err(unavailable(err)),
    };
    let notice = ctx.take_notice(&state).await?;
    let page = DomainAdminPage {
        notice,
        chrome: ctx.chrome(Section::Administrators, format!("Domain administrator {}", account.username)),
        path: segment(&account.username),
        domains,
        login_as: account.acl.iter().any(|p| p == "login_as"),
        active: account.active,
    };
    Ok(render(&page, StatusCode::OK))
}

/// `POST /admin/domain-admins/{username}`: domains, permission, active flag, and optionally a new password.
pub(super) async fn update_domain_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = format!("/admin/domain-admins/{}", segment(&username));
    let domains = match ticked_domains(&form) {
        Ok(domains) if !domains.is_empty() => domains,
        Ok(_) => return done(&state, ctx, "Tick at least one domain.", &to).await,
        Err(err) => return done(&state, ctx, format!("Not saved: {err}"), &to).await,
    };
    let password_hash = match form.new_password(&state.web.password_policy) {
        Ok(None) => None,
        Ok(Some(password)) => Some(hash_password(&state, password).await?),
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    let login_as = form.checked("login_as");
    let changes = DomainAdminChanges {
        password_hash,
        domains: Some(domains),
        acl: Some(if login_as { vec!["login_as".to_string()] } else { Vec::new() }),
        active: Some(form.checked("active")),
        ..DomainAdminChanges::default()
    };
    let result = async {
        // The store ends the account's web sessions when its password, domains, rights or activation change.
        let updated = store.update_domain_admin(&ctx.actor(), &username, changes).await?;
        Ok(format!("Domain administrator {} saved.", updated.username))
    };
    match result.await {
        Err(Error::NotFound { kind: "domain admin", .. }) => Err(not_found()),
        result => finish(&state, ctx, result, &to).await,
    }
}

/// `POST /admin/domain-admins/{username}/remove`.
pub(super) async fn remove_domain_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    if !form.confirmed() {
        let back = format!("/admin/domain-admins/{}", segment(&username));
        return Ok(account_removal(&ctx, "domain administrator", &format!("{back}/remove"), &username, &back));
    }
    let result = async {
        store.remove_admin(&ctx.actor(), &username, AdminRole::DomainAdmin).await?;
        Ok(format!("Domain administrator {username} removed."))
    };
    let result = result.await;
    finish(&state, ctx, result, "/admin/admins").await
}

/// `GET /admin/master-users`.
pub(super) async fn master_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let text = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let mut list = ListQuery::new("/admin/master-users".into(), &query, &["username"]);
    list.keep("q", text.clone());
    let loaded = async {
        let masters = store.search_master_users(Some(&text), list.window()).await?;
        Ok::<_, Error>((masters, domain_choices(&store, &[]).await?))
    };
    let (masters, domains) = loaded.await.map_err(unavailable)?;
    let notice = ctx.take_notice(&state).await?;
    let page = MasterUsersPage {
        notice,
        chrome: ctx.chrome(Section::MasterUsers, "Master users"),
        pager: list.pager(&masters),
        text,
        search_label: "Username contains",
        masters: masters
            .items
            .into_iter()
            .map(|m| MasterView {
                path: segment(&m.username),
                scope: m.scope.kind(),
                domains: match &m.scope {
                    MasterScope::Global => "all".into(),
                    MasterScope::Domain(domain) => domain.clone(),
                    MasterScope::Owned(domains) => domains.join(", "),
                },
                username: m.username,
                active: yes_no(m.active),
                created: date_time(m.created_at),
            })
            .collect(),
        domains,
    };
    Ok(render(&page, StatusCode::OK))
}

/// `POST /admin/master-users`.
pub(super) async fn create_master_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = "/admin/master-users";
    let scope = match form.text("scope").as_str() {
        "global" => NewMasterScope::Global,
        "domain" => NewMasterScope::Domain,
        "owned" => match ticked_domains(&form) {
            Ok(domains) => NewMasterScope::Owned(domains),
            Err(err) => return done(&state, ctx, format!("Not saved: {err}"), to).await,
        },
        _ => return done(&state, ctx, "Choose a scope.", to).await,
    };
    let password = match form.required_password(&state.web.password_policy, "A master user needs a password.") {
        Ok(password) => password,
        Err(problem) => return done(&state, ctx, problem, to).await,
    };
    let password_hash = hash_password(&state, password).await?;
    let new = NewMasterUser { username: form.text("username"), password_hash, scope };
    let result =
        store.create_master_user(&ctx.actor(), new).await.map(|m| format!("Master user {} added.", m.username));
    finish(&state, ctx, result, to).await
}

/// `POST /admin/master-users/{username}/remove`.
pub(super) async fn remove_master_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    if !form.confirmed() {
        let action = format!("/admin/master-users/{}/remove", segment(&username));
        return Ok(account_removal(&ctx, "master user", &action, &username, "/admin/master-users"));
    }
    let result =
        store.remove_master_user(&ctx.actor(), &username).await.map(|()| format!("Master user {username} removed."));
    finish(&state, ctx, result, "/admin/master-users").await
}

/// The confirmation page for removing an account of `kind`.
fn account_removal(ctx: &Ctx, kind: &str, action: &str, username: &str, back: &str) -> Response {
    let section = if kind == "master user" { Section::MasterUsers } else { Section::Administrators };
    Confirm {
        section,
        title: format!("Remove {kind} {username}?"),
        action: action.to_string(),
        effects: vec![
            format!("remove the {kind} {username}: its logins are refused from then on"),
            "end its open sessions and remove its passkeys and second factor".into(),
        ],
        button: "Remove account",
        back: back.to_string(),
    }
    .page(ctx)
}
