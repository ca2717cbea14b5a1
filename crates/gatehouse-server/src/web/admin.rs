//! The administration pages: the overview (counts, a chart of the logins, the most failures, bans, syncs and
//! warnings), domains, templates, mailboxes (searched, sorted and paged in the database, with their app
//! passwords, passkeys and web sessions), administrators and domain administrators, master users, app links,
//! API keys, identity providers (an LDAP form, a connection test, sync and dry run), and the auth, audit and
//! job logs (paged). Every destructive action (remove, revoke, end sessions, unban, sync now) is confirmed on
//! a page of its own that says what it will do.
//!
//! Administrators use the pages under `/admin/…`, domain administrators those under `/domainadmin/…`; a
//! session of the other role gets 403 there, and the admin-only pages (templates, administrators, master
//! users, app links, identity providers, job log) do not exist under `/domainadmin`. A domain administrator
//! sees and changes only its own domains and their mailboxes: any other domain or mailbox is "not found" (404),
//! whether it exists or not. Every page reaches the store through the [`gatehouse_store::ScopedStore`] of its login, which
//! decides that; the pages never check a domain themselves.
//!
//! Every change is a POST carrying the session's CSRF token (checked before anything else is read from the
//! form), and answers with a redirect to a fixed page and a notice (POST-redirect-GET). The store enforces the
//! rules (limits, quotas, references); its refusals become notices, its faults the 503 page. No page ever
//! contains a password hash or an identity provider's secret: password fields are write-only.

// Handlers return `Result<_, Response>` so a refusal is the page to send.
#![allow(clippy::result_large_err)]

mod accounts;
mod api_keys;
mod app_links;
mod dashboard;
mod domains;
mod idps;
mod listing;
mod logs;
mod mailboxes;
mod readable;
mod templates;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use gatehouse_core::{Error, Fault, ProtocolSet, Service};
use gatehouse_passwords::Zeroizing;
use gatehouse_store::{Actor, AdminAccount, AdminRole, Principal, ScopedStore, Store};

use super::gate::{Need, Refusal, check_csrf, gate};
use super::login::{login_message, login_page};
pub(super) use super::respond::{date_time, segment};
use super::respond::{error_page, redirect, render, sentence, unavailable};
use super::session::{Role, Session};
use crate::AppState;
use readable::PROTOCOL_LABELS;
pub(super) use readable::{protocol_names, quota_text};

/// The administration routes (both prefixes).
pub(super) fn routes() -> Router<AppState> {
    let router = shared::<false>(Router::new(), "/admin");
    let router = shared::<true>(router, "/domainadmin");
    router
        .route("/admin", get(home::<false>).post(super::login::admin_login))
        .route("/domainadmin", get(home::<true>).post(super::login::domain_admin_login))
        .route("/admin/domains/{name}/remove", post(domains::remove))
        .route("/admin/templates", get(templates::list).post(templates::create))
        .route("/admin/templates/{name}", get(templates::show).post(templates::update))
        .route("/admin/templates/{name}/remove", post(templates::remove))
        .route("/admin/admins", get(accounts::list).post(accounts::create_admin))
        .route("/admin/admins/{username}/remove", post(accounts::remove_admin))
        .route("/admin/domain-admins", post(accounts::create_domain_admin))
        .route("/admin/domain-admins/{username}", get(accounts::show_domain_admin).post(accounts::update_domain_admin))
        .route("/admin/domain-admins/{username}/remove", post(accounts::remove_domain_admin))
        .route("/admin/master-users", get(accounts::master_users).post(accounts::create_master_user))
        .route("/admin/master-users/{username}/remove", post(accounts::remove_master_user))
        .route("/admin/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/admin/api-keys/{id}/revoke", post(api_keys::revoke))
        .route("/admin/app-links", get(app_links::list).post(app_links::create))
        .route("/admin/app-links/{id}", get(app_links::show).post(app_links::update))
        .route("/admin/app-links/{id}/remove", post(app_links::remove))
        .route("/admin/identity-providers", get(idps::list).post(idps::create))
        .route("/admin/identity-providers/openid", post(idps::create_openid))
        .route("/admin/identity-providers/{name}", get(idps::show).post(idps::update))
        .route("/admin/identity-providers/{name}/mappings", post(idps::mappings))
        .route("/admin/identity-providers/{name}/test", post(idps::test))
        .route("/admin/identity-providers/{name}/sync", post(idps::sync))
        .route("/admin/identity-providers/{name}/dry-run", post(idps::dry_run))
        .route("/admin/identity-providers/{name}/remove", post(idps::remove))
        .route("/admin/logs/jobs", get(logs::jobs))
        .route("/admin/bans/{address}/unban", post(dashboard::unban))
        // The areas' own paths with a trailing slash lead to their landing pages.
        .route("/admin/", get(|| async { redirect("/admin") }))
        .route("/domainadmin/", get(|| async { redirect("/domainadmin") }))
        // Anything else under the two areas: a page that says so, with a way back.
        .route("/admin/{*rest}", axum::routing::any(no_such_page::<false>))
        .route("/domainadmin/{*rest}", axum::routing::any(no_such_page::<true>))
}

/// 404 for a path under `/admin/` or `/domainadmin/` that names no page.
async fn no_such_page<const DA: bool>() -> Response {
    let home = if DA { Role::DomainAdmin.home() } else { Role::Admin.home() };
    error_page(StatusCode::NOT_FOUND, "There is no such page, or it is not one this login may see.", home)
}

/// The pages both roles have, under `prefix` (`DA`: the domain-administrator instance).
fn shared<const DA: bool>(router: Router<AppState>, prefix: &str) -> Router<AppState> {
    let mut domain_list = get(domains::list::<DA>);
    if !DA {
        domain_list = domain_list.post(domains::create);
    }
    router
        .route(&format!("{prefix}/domains"), domain_list)
        .route(&format!("{prefix}/domains/{{name}}"), get(domains::show::<DA>).post(domains::update::<DA>))
        .route(&format!("{prefix}/mailboxes"), get(mailboxes::list::<DA>).post(mailboxes::create::<DA>))
        .route(&format!("{prefix}/mailboxes/{{address}}"), get(mailboxes::show::<DA>).post(mailboxes::update::<DA>))
        .route(&format!("{prefix}/mailboxes/{{address}}/password"), post(mailboxes::set_password::<DA>))
        .route(&format!("{prefix}/mailboxes/{{address}}/remove"), post(mailboxes::remove::<DA>))
        .route(
            &format!("{prefix}/mailboxes/{{address}}/app-passwords/{{id}}/revoke"),
            post(mailboxes::revoke_app_password::<DA>),
        )
        .route(&format!("{prefix}/mailboxes/{{address}}/passkeys/{{id}}/remove"), post(mailboxes::remove_passkey::<DA>))
        .route(&format!("{prefix}/mailboxes/{{address}}/sessions/end"), post(mailboxes::end_sessions::<DA>))
        .route(
            &format!("{prefix}/mailboxes/{{address}}/sessions/{{reference}}/end"),
            post(mailboxes::end_sessions::<DA>),
        )
        .route(&format!("{prefix}/logs/auth"), get(logs::auth::<DA>))
        .route(&format!("{prefix}/logs/audit"), get(logs::audit::<DA>))
}

/// `GET /admin` and `GET /domainadmin`: the login page, or the dashboard ([`dashboard`]).
pub(super) async fn home<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let role = role_of::<DA>();
    let message = login_message(query.get("m").map(String::as_str));
    let session = match gate(&state, &headers, Need::Ready(role)).await {
        Ok(session) => session,
        Err(Refusal::NoSession | Refusal::OtherRole) => {
            return Ok(login_page(&state, role, message, None, StatusCode::OK).await);
        }
        Err(refusal) => return Err(refusal.response(role)),
    };
    let mut ctx = context(&state, session, role).await?;
    let notice = ctx.take_notice(&state).await?.or(message);
    let page = dashboard::DashboardPage::load(&state, &ctx, &query, notice).await.map_err(unavailable)?;
    Ok(render(&page, StatusCode::OK))
}

/// The role of a route instance.
const fn role_of<const DA: bool>() -> Role {
    if DA { Role::DomainAdmin } else { Role::Admin }
}

// ---------------------------------------------------------------------------------------------------------
// Who is asking

/// A logged-in administrator or domain administrator, with its (re-read) account and the store scoped to it.
pub(super) struct Ctx {
    session: Session,
    role: Role,
    account: AdminAccount,
    /// The store as this login may use it: every domain, mailbox, app password and log entry a page touches
    /// goes through it, so tenancy is decided there.
    store: ScopedStore,
}

impl Ctx {
    fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Who changes are recorded as.
    fn actor(&self) -> Actor {
        self.store.actor().clone()
    }

    /// `/admin` or `/domainadmin`.
    fn prefix(&self) -> &'static str {
        self.role.home()
    }

    /// The whole store, for the pages about instance-wide objects (templates, administrators, master users,
    /// app links, identity providers, the job log); a domain administrator gets 403.
    fn instance(&self) -> Result<Store, Response> {
        self.store.instance().cloned().map_err(|_| forbidden())
    }

    /// Whether the "webmail as this user" button is offered.
    fn can_impersonate(&self, state: &AppState) -> bool {
        state.web.allow_admin_email_login
            && (self.is_admin() || self.account.acl.iter().any(|permission| permission == "login_as"))
    }

    /// The one-time notice for this page (the session is saved only when there was one).
    async fn take_notice(&mut self, state: &AppState) -> Result<Option<String>, Response> {
        let notice = self.session.data.notice.take();
        if notice.is_some() {
            state.web.sessions.save(&state.store, &self.session).await.map_err(unavailable)?;
        }
        Ok(notice)
    }

    /// What every page's frame shows: the navigation (with `section` marked as the current page) and the title.
    fn chrome(&self, section: Section, page: impl Into<String>) -> Chrome {
        let prefix = self.prefix();
        let admin = self.is_admin();
        let entries = [
            (Section::Overview, prefix.to_string(), "Overview", true),
            (Section::Domains, format!("{prefix}/domains"), "Domains", true),
            (Section::Templates, "/admin/templates".into(), "Templates", admin),
            (Section::Mailboxes, format!("{prefix}/mailboxes"), "Mailboxes", true),
            (Section::Administrators, "/admin/admins".into(), "Administrators", admin),
            (Section::MasterUsers, "/admin/master-users".into(), "Master users", admin),
            (Section::AppLinks, "/admin/app-links".into(), "App links", admin),
            (Section::ApiKeys, "/admin/api-keys".into(), "API keys", admin),
            (Section::IdentityProviders, "/admin/identity-providers".into(), "Identity providers", admin),
            (Section::AuthLog, format!("{prefix}/logs/auth"), "Auth log", true),
            (Section::AuditLog, format!("{prefix}/logs/audit"), "Audit log", true),
            (Section::JobLog, "/admin/logs/jobs".into(), "Job log", admin),
            (Section::Passkeys, "/passkeys".into(), "Passkeys", true),
        ];
        let nav = entries
            .into_iter()
            .filter(|(_, _, _, shown)| *shown)
            .map(|(of, href, label, _)| NavLink { href, label, current: of == section })
            .collect();
        Chrome {
            title: if admin { "Administration" } else { "Domain administration" },
            username: self.account.username.clone(),
            csrf: self.session.data.csrf.clone(),
            prefix,
            admin,
            page: page.into(),
            nav,
        }
    }
}

/// The part of the administration a page belongs to (marked as current in the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Overview,
    Domains,
    Templates,
    Mailboxes,
    Administrators,
    MasterUsers,
    AppLinks,
    ApiKeys,
    IdentityProviders,
    AuthLog,
    AuditLog,
    JobLog,
    Passkeys,
}

/// An entry of the navigation.
pub(super) struct NavLink {
    href: String,
    label: &'static str,
    /// The page shown is this entry's (`aria-current="page"`).
    current: bool,
}

/// The frame of every administration page (`admin_layout.html`).
pub(super) struct Chrome {
    title: &'static str,
    username: String,
    csrf: String,
    prefix: &'static str,
    admin: bool,
    page: String,
    nav: Vec<NavLink>,
}

/// 403: a session of the other role.
fn forbidden() -> Response {
    error_page(StatusCode::FORBIDDEN, "That is not available to this login.", "/")
}

/// 404: no such object, or not one of this domain administrator's.
fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is no such page, or it is not one this login may see.", "/")
}

/// The logged-in, fully authenticated session of `role` with its account, or the response to send instead (a
/// session of the other role: 403).
async fn enter(state: &AppState, headers: &HeaderMap, role: Role) -> Result<Ctx, Response> {
    let session = gate(state, headers, Need::Ready(role)).await.map_err(|refusal| match refusal {
        Refusal::OtherRole => forbidden(),
        refusal => refusal.response(role),
    })?;
    context(state, session, role).await
}

/// The context of an admitted session: its account, re-read on every request (removed or deactivated since the
/// login: the session ends), and the store scoped to it.
async fn context(state: &AppState, session: Session, role: Role) -> Result<Ctx, Response> {
    let Some(kind) = role.admin_role() else { return Err(forbidden()) };
    let account = match state.store.admin(kind, &session.data.principal).await {
        Ok(account) => account.filter(|a| a.active),
        Err(err) => return Err(unavailable(err)),
    };
    let Some(account) = account else {
        if let Err(err) = state.store.delete_web_session(&session.id).await {
            return Err(unavailable(err));
        }
        return Err(redirect(&format!("{}?m=expired", role.home())));
    };
    let principal = match kind {
        AdminRole::Admin => Principal::admin(&account.username),
        AdminRole::DomainAdmin => Principal::domain_admin(&account.username, &account.domains),
    };
    Ok(Ctx { session, role, store: state.store.scoped(principal), account })
}

/// [`enter`] for a form post: the session's CSRF token is checked before the form is used.
async fn enter_form(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
    body: &[u8],
) -> Result<(Ctx, FormData), Response> {
    let ctx = enter(state, headers, role).await?;
    let form = FormData::parse(body);
    check_csrf(&ctx.session, form.get("csrf")).map_err(|refusal| refusal.response(role))?;
    Ok((ctx, form))
}

/// A store lookup of the object named in a path: "not found" (or outside this login's domains) is the 404
/// page, a fault the 503 page.
fn found<T>(result: Result<T, Error>) -> Result<T, Response> {
    match result {
        Ok(found) => Ok(found),
        Err(Error::NotFound { .. } | Error::Forbidden(_)) => Err(not_found()),
        Err(err) => Err(unavailable(err)),
    }
}

/// A destructive action's own confirmation page: what the action will do, a button that posts the same form
/// again with `confirmed=yes`, and a way back. Every remove, revoke, unban and sync handler answers with it
/// until the form says the action was confirmed (see [`FormData::confirmed`]).
#[derive(Template)]
#[template(path = "admin_confirm.html")]
struct ConfirmPage {
    notice: Option<String>,
    chrome: Chrome,
    /// Where the confirmed form goes (the handler's own path, built by the handler).
    action: String,
    /// What the action will do, one consequence per entry.
    effects: Vec<String>,
    button: &'static str,
    /// Where "Cancel" leads.
    back: String,
    /// The fields of the form being confirmed, posted again with it (the CSRF token aside).
    carry: Vec<(String, String)>,
}

/// What a confirmation page says.
struct Confirm {
    section: Section,
    /// The question, as the page's title.
    title: String,
    action: String,
    effects: Vec<String>,
    button: &'static str,
    back: String,
}

impl Confirm {
    /// The confirmation page for `ctx`'s login.
    fn page(self, ctx: &Ctx) -> Response {
        self.page_carrying(ctx, &FormData(Vec::new()))
    }

    /// The confirmation page of a form whose fields are posted again once confirmed.
    fn page_carrying(self, ctx: &Ctx, form: &FormData) -> Response {
        let carry = form.0.iter().filter(|(key, _)| key != "csrf" && key != "confirmed").cloned().collect();
        let page = ConfirmPage {
            notice: None,
            chrome: ctx.chrome(self.section, self.title),
            action: self.action,
            effects: self.effects,
            button: self.button,
            back: self.back,
            carry,
        };
        render(&page, StatusCode::OK)
    }
}

/// Saves `notice` for the next page and redirects to `to` (a path this module built).
async fn done(state: &AppState, mut ctx: Ctx, notice: impl Into<String>, to: &str) -> Result<Response, Response> {
    ctx.session.data.notice = Some(notice.into());
    state.web.sessions.save(&state.store, &ctx.session).await.map_err(unavailable)?;
    Ok(redirect(to))
}

/// A store call's outcome as a redirect: success and refusals become notices, server faults the 503 page.
async fn finish(state: &AppState, ctx: Ctx, result: Result<String, Error>, to: &str) -> Result<Response, Response> {
    match result {
        Ok(message) => done(state, ctx, message, to).await,
        // Outside this login's domains: as if the object did not exist, whether it does or not.
        Err(Error::Forbidden(_)) => Err(not_found()),
        Err(err) if err.fault() == Fault::Client => done(state, ctx, format!("Not saved: {err}"), to).await,
        Err(err) => Err(unavailable(err)),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Forms

/// A posted form (`application/x-www-form-urlencoded`), keeping repeated keys (checkbox lists).
pub(super) struct FormData(Vec<(String, String)>);

impl FormData {
    fn parse(body: &[u8]) -> Self {
        FormData(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The first value of `name`, or "".
    fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).unwrap_or("")
    }

    /// The first value of `name`, trimmed.
    fn text(&self, name: &str) -> String {
        self.get(name).trim().to_string()
    }

    /// The trimmed value of `name`, `None` when empty.
    fn optional(&self, name: &str) -> Option<String> {
        Some(self.text(name)).filter(|value| !value.is_empty())
    }

    /// Every value of `name`.
    fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str()).collect()
    }

    /// Whether the form comes from a confirmation page ([`Confirm`]).
    fn confirmed(&self) -> bool {
        self.get("confirmed") == "yes"
    }

    /// Whether checkbox `name` was ticked.
    fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(key, value)| key == name && !value.is_empty())
    }

    /// A whole number; empty means `None`.
    fn number<T: std::str::FromStr>(&self, name: &str, label: &str) -> Result<Option<T>, String> {
        match self.text(name).as_str() {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| format!("{label} must be a whole number, not '{text}'.")),
        }
    }

    /// The protocols ticked in the `protocol` checkboxes.
    fn protocols(&self) -> ProtocolSet {
        self.all("protocol").into_iter().filter_map(|value| value.parse::<Service>().ok()).collect()
    }

    /// A new password from `password` and `repeat`: `Ok(None)` when both are empty.
    fn new_password(&self, policy: &gatehouse_core::PasswordPolicy) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        let (password, repeat) = (self.get("password"), self.get("repeat"));
        if password.is_empty() && repeat.is_empty() {
            return Ok(None);
        }
        if password != repeat {
            return Err("The passwords differ.".into());
        }
        policy.check(password.as_bytes()).map_err(|err| sentence(&err))?;
        Ok(Some(Zeroizing::new(password.as_bytes().to_vec())))
    }

    /// [`Self::new_password`] where one is required: `missing` is the problem when both fields are empty.
    fn required_password(
        &self,
        policy: &gatehouse_core::PasswordPolicy,
        missing: &str,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        self.new_password(policy)?.ok_or_else(|| missing.to_string())
    }
}

/// Hashes a password typed into an admin form with the configured scheme.
async fn hash_password(state: &AppState, password: Zeroizing<Vec<u8>>) -> Result<String, Response> {
    state.hash_pool.generate(password, state.web.password_scheme).await.map_err(unavailable)
}

/// An option of a select, or a checkbox.
pub(super) struct Choice {
    value: String,
    label: String,
    selected: bool,
}

impl Choice {
    fn new(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Self {
        Choice { value: value.into(), label: label.into(), selected }
    }
}

/// The protocol checkboxes, ticked as in `set`.
fn protocol_choices(set: ProtocolSet) -> Vec<Choice> {
    PROTOCOL_LABELS
        .into_iter()
        .map(|(service, label)| Choice::new(service.as_str(), label, set.contains(service)))
        .collect()
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_keep_repeated_keys() {
        let form = FormData::parse(b"csrf=t&protocol=imap&protocol=sogo&protocol=bogus&quota=12&flag=on&x=+a+");
        assert_eq!(form.get("csrf"), "t");
        assert_eq!(form.protocols().to_string(), "imap,sogo");
        assert_eq!(form.number::<i64>("quota", "Quota"), Ok(Some(12)));
        assert_eq!(form.number::<i64>("missing", "Quota"), Ok(None));
        assert!(form.number::<i64>("x", "Quota").is_err());
        assert!(form.checked("flag") && !form.checked("other"));
        assert_eq!(form.text("x"), "a");
    }
}
