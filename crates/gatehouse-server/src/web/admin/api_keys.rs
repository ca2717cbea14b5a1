//! API keys (administrators only): listed with their access, networks, domains and last use; added through a
//! form whose answer shows the new key's token once (it is stored only as a hash); revoked after confirmation.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::{DomainName, Error, Fault};
use gatehouse_store::{ApiKey, ApiKeyAccess, NewApiKey};

use super::listing::{ListQuery, Pager};
use super::{Chrome, Confirm, Ctx, Section, date_time, enter, enter_form, finish, not_found, yes_no};
use crate::AppState;
use crate::web::respond::{render, sentence, unavailable};
use crate::web::session::Role;

pub(super) struct KeyView {
    id: i64,
    name: String,
    access: String,
    networks: String,
    domains: String,
    active: &'static str,
    is_active: bool,
    created: String,
    last_used: String,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        let list = |items: &[String], empty: &str| if items.is_empty() { empty.to_string() } else { items.join(", ") };
        KeyView {
            id: key.id,
            access: key.access.to_string(),
            networks: list(&key.allowed_networks, "any"),
            domains: list(&key.domains, "all"),
            active: yes_no(key.active),
            is_active: key.active,
            created: date_time(key.created_at),
            last_used: key.last_used_at.map(date_time).unwrap_or_else(|| "never".into()),
            name: key.name,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_api_keys.html")]
struct KeysPage {
    notice: Option<String>,
    chrome: Chrome,
    keys: Vec<KeyView>,
    /// The token of the key just added (shown once).
    token: Option<String>,
    text: String,
    search_label: &'static str,
    pager: Pager,
}

/// The page (searched by name as `query` says), with `token` when a key was just added.
async fn keys_page(
    state: &AppState,
    mut ctx: Ctx,
    query: &HashMap<String, String>,
    token: Option<String>,
) -> Result<Response, Response> {
    let store = ctx.instance()?;
    let text = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let mut list = ListQuery::new("/admin/api-keys".into(), query, &["created"]);
    list.keep("q", text.clone());
    let keys = store.search_api_keys(Some(&text), list.window()).await.map_err(unavailable)?;
    let notice = ctx.take_notice(state).await?;
    let page = KeysPage {
        notice,
        chrome: ctx.chrome(Section::ApiKeys, "API keys"),
        pager: list.pager(&keys),
        text,
        search_label: "Name contains",
        keys: keys.items.into_iter().map(KeyView::from).collect(),
        token,
    };
    Ok(render(&page, StatusCode::OK))
}

/// `GET /admin/api-keys?q=&page=&size=`.
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, Role::Admin).await?;
    keys_page(&state, ctx, &query, None).await
}

/// Words of a list field (separated by commas or white space).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// `POST /admin/api-keys`: adds a key and shows its token once.
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (mut ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let domains: Result<Vec<DomainName>, Error> =
        words(&form.text("domains")).iter().map(|d| DomainName::parse(d)).collect();
    let created = match domains {
        Ok(domains) => {
            let new = NewApiKey {
                name: form.text("name"),
                access: if form.checked("read_write") { ApiKeyAccess::ReadWrite } else { ApiKeyAccess::ReadOnly },
                allowed_networks: words(&form.text("networks")),
                domains,
            };
            store.create_api_key(&ctx.actor(), new).await
        }
        Err(err) => Err(err),
    };
    match created {
        Ok((key, token)) => {
            ctx.session.data.notice =
                Some(format!("API key {} added. Copy its token now: it is not shown again.", key.name));
            keys_page(&state, ctx, &HashMap::new(), Some(token)).await
        }
        Err(err) if err.fault() == Fault::Client => {
            ctx.session.data.notice = Some(format!("Not added: {}", sentence(&err)));
            keys_page(&state, ctx, &HashMap::new(), None).await
        }
        Err(err) => Err(unavailable(err)),
    }
}

/// `POST /admin/api-keys/{id}/revoke`: after confirmation, revokes a key.
pub(super) async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    if !form.confirmed() {
        let keys = store.list_api_keys().await.map_err(unavailable)?;
        let key = keys.into_iter().find(|k| k.id == id && k.active).ok_or_else(not_found)?;
        return Ok(Confirm {
            section: Section::ApiKeys,
            title: format!("Revoke API key {}?", key.name),
            action: format!("/admin/api-keys/{id}/revoke"),
            effects: vec![
                format!(
                    "revoke the API key {} ({}): every request with its token is refused from then on",
                    key.name, key.access
                ),
                "keep it in the list as revoked; it cannot be turned back on".into(),
            ],
            button: "Revoke API key",
            back: "/admin/api-keys".into(),
        }
        .page(&ctx));
    }
    let result = store.revoke_api_key(&ctx.actor(), id).await.map(|key| format!("API key {} revoked.", key.name));
    finish(&state, ctx, result, "/admin/api-keys").await
}
