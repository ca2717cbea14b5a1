//! App links (administrators only): the store accepts only http(s) URLs and paths on this site.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::Error;
use gatehouse_store::{AppLink, AppLinkChanges, NewAppLink};

use super::listing::{ListQuery, Pager};
use super::{Chrome, Confirm, Section, done, enter, enter_form, finish, found, not_found, yes_no};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::session::Role;

pub(super) struct LinkView {
    id: i64,
    name: String,
    url: String,
    user_url: String,
    hidden_on_login: bool,
    hidden_text: &'static str,
    position: i64,
}

impl From<AppLink> for LinkView {
    fn from(link: AppLink) -> Self {
        LinkView {
            id: link.id,
            name: link.name,
            url: link.url,
            user_url: link.user_url.unwrap_or_default(),
            hidden_on_login: link.hidden_on_login,
            hidden_text: yes_no(link.hidden_on_login),
            position: link.position,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_app_links.html")]
struct LinksPage {
    notice: Option<String>,
    chrome: Chrome,
    text: String,
    search_label: &'static str,
    pager: Pager,
    links: Vec<LinkView>,
}

#[derive(Template)]
#[template(path = "admin_app_link.html")]
struct LinkPage {
    notice: Option<String>,
    chrome: Chrome,
    link: LinkView,
}

/// `GET /admin/app-links?q=&page=&size=`.
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let text = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let mut list = ListQuery::new("/admin/app-links".into(), &query, &["position"]);
    list.keep("q", text.clone());
    let found = store.search_app_links(Some(&text), list.window()).await.map_err(unavailable)?;
    let notice = ctx.take_notice(&state).await?;
    let page = LinksPage {
        notice,
        chrome: ctx.chrome(Section::AppLinks, "App links"),
        pager: list.pager(&found),
        text,
        search_label: "Name or URL contains",
        links: found.items.into_iter().map(LinkView::from).collect(),
    };
    Ok(render(&page, StatusCode::OK))
}

/// `POST /admin/app-links`.
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let new = NewAppLink {
        name: form.text("name"),
        url: form.text("url"),
        user_url: form.optional("user_url"),
        hidden_on_login: form.checked("hidden_on_login"),
    };
    let result = store.create_app_link(&ctx.actor(), new).await.map(|l| format!("App link {} added.", l.name));
    finish(&state, ctx, result, "/admin/app-links").await
}

/// `GET /admin/app-links/{id}`.
pub(super) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let link = LinkView::from(found(store.app_link(id).await)?);
    let notice = ctx.take_notice(&state).await?;
    let chrome = ctx.chrome(Section::AppLinks, format!("App link {}", link.name));
    Ok(render(&LinkPage { notice, chrome, link }, StatusCode::OK))
}

/// `POST /admin/app-links/{id}`.
pub(super) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = format!("/admin/app-links/{id}");
    let position = match form.number("position", "The position") {
        Ok(position) => position,
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    let changes = AppLinkChanges {
        name: Some(form.text("name")),
        url: Some(form.text("url")),
        user_url: Some(form.optional("user_url")),
        hidden_on_login: Some(form.checked("hidden_on_login")),
        position,
    };
    match store.update_app_link(&ctx.actor(), id, changes).await {
        Err(Error::NotFound { .. }) => Err(not_found()),
        result => finish(&state, ctx, result.map(|l| format!("App link {} saved.", l.name)), &to).await,
    }
}

/// `POST /admin/app-links/{id}/remove`.
pub(super) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    if !form.confirmed() {
        return Ok(Confirm {
            section: Section::AppLinks,
            title: "Remove this app link?".into(),
            action: format!("/admin/app-links/{id}/remove"),
            effects: vec!["remove the link from the login page and every user page".into()],
            button: "Remove link",
            back: format!("/admin/app-links/{id}"),
        }
        .page(&ctx));
    }
    let result = store.remove_app_link(&ctx.actor(), id).await.map(|()| "App link removed.".to_string());
    finish(&state, ctx, result, "/admin/app-links").await
}
