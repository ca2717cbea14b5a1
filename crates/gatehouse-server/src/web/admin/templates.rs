//! Mailbox templates (administrators only).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::{Error, ProtocolSet};
use gatehouse_store::{NewTemplate, Template, TemplateChanges};

use super::listing::{ListQuery, Pager};
use super::{
    Choice, Chrome, Confirm, FormData, Section, done, enter, enter_form, finish, not_found, protocol_choices, segment,
    yes_no,
};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::session::Role;

pub(super) struct TemplateView {
    name: String,
    path: String,
    quota_mib: i64,
    protocols: String,
    active: bool,
    active_text: &'static str,
    attributes: String,
    mailboxes: i64,
}

impl From<Template> for TemplateView {
    fn from(t: Template) -> Self {
        TemplateView {
            path: segment(&t.name),
            name: t.name,
            quota_mib: t.quota_mib,
            protocols: t.protocols.to_string(),
            active: t.active,
            active_text: yes_no(t.active),
            attributes: t.attributes.to_string(),
            mailboxes: t.mailboxes,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "admin_templates.html")]
struct TemplatesPage {
    notice: Option<String>,
    chrome: Chrome,
    text: String,
    search_label: &'static str,
    pager: Pager,
    templates: Vec<TemplateView>,
    protocols: Vec<Choice>,
}

#[derive(askama::Template)]
#[template(path = "admin_template.html")]
struct TemplatePage {
    notice: Option<String>,
    chrome: Chrome,
    template: TemplateView,
    protocols: Vec<Choice>,
}

/// `GET /admin/templates?q=&page=&size=`: one page of the templates, searched by name in the database.
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let text = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let mut list = ListQuery::new("/admin/templates".into(), &query, &["name"]);
    list.keep("q", text.clone());
    let found = store.search_templates(Some(&text), list.window()).await.map_err(unavailable)?;
    let notice = ctx.take_notice(&state).await?;
    let page = TemplatesPage {
        notice,
        chrome: ctx.chrome(Section::Templates, "Templates"),
        pager: list.pager(&found),
        text,
        search_label: "Name contains",
        templates: found.items.into_iter().map(TemplateView::from).collect(),
        protocols: protocol_choices(ProtocolSet::ALL),
    };
    Ok(render(&page, StatusCode::OK))
}

/// The quota, protocols, active flag and attributes of a template form.
fn settings(form: &FormData) -> Result<(i64, ProtocolSet, bool, serde_json::Value), String> {
    let quota = form.number("quota_mib", "The quota")?.unwrap_or(0);
    let attributes = match form.text("attributes").as_str() {
        "" => serde_json::json!({}),
        text => serde_json::from_str(text).map_err(|err| format!("The attributes are not JSON: {err}"))?,
    };
    Ok((quota, form.protocols(), form.checked("active"), attributes))
}

/// `POST /admin/templates`.
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = "/admin/templates";
    let (quota_mib, protocols, active, attributes) = match settings(&form) {
        Ok(settings) => settings,
        Err(problem) => return done(&state, ctx, problem, to).await,
    };
    let new = NewTemplate { name: form.text("name"), quota_mib, protocols, active, attributes };
    let result = store.create_template(&ctx.actor(), new).await.map(|t| format!("Template {} added.", t.name));
    finish(&state, ctx, result, to).await
}

/// `GET /admin/templates/{name}`.
pub(super) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let template = match store.list_templates().await {
        Ok(templates) => match templates.into_iter().find(|t| t.name == name) {
            Some(template) => template,
            None => return Err(not_found()),
        },
        Err(err) => return Err(unavailable(err)),
    };
    let notice = ctx.take_notice(&state).await?;
    let protocols = protocol_choices(template.protocols);
    let chrome = ctx.chrome(Section::Templates, format!("Template {}", template.name));
    Ok(render(&TemplatePage { notice, chrome, template: template.into(), protocols }, StatusCode::OK))
}

/// `POST /admin/templates/{name}`.
pub(super) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = format!("/admin/templates/{}", segment(&name));
    let (quota_mib, protocols, active, attributes) = match settings(&form) {
        Ok(settings) => settings,
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    let changes = TemplateChanges {
        quota_mib: Some(quota_mib),
        protocols: Some(protocols),
        active: Some(active),
        attributes: Some(attributes),
    };
    match store.update_template(&ctx.actor(), &name, changes).await {
        Err(Error::NotFound { .. }) => Err(not_found()),
        result => finish(&state, ctx, result.map(|t| format!("Template {} saved.", t.name)), &to).await,
    }
}

/// `POST /admin/templates/{name}/remove`.
pub(super) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    if !form.confirmed() {
        return Ok(Confirm {
            section: Section::Templates,
            title: format!("Remove template {name}?"),
            action: format!("/admin/templates/{}/remove", segment(&name)),
            effects: vec![
                format!("remove the template {name}; the mailboxes made from it keep their settings"),
                "refused while an identity provider's mapping selects it".into(),
            ],
            button: "Remove template",
            back: format!("/admin/templates/{}", segment(&name)),
        }
        .page(&ctx));
    }
    let result = store.remove_template(&ctx.actor(), &name).await.map(|()| format!("Template {name} removed."));
    finish(&state, ctx, result, "/admin/templates").await
}
