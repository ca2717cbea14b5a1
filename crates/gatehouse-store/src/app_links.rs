//! App links: the links the login and user pages show (webmail, a calendar, a password manager, …). Each has a
//! name, a URL for the login page, an optional per-user URL in which `%u` stands for the logged-in mailbox
//! (URL-encoded), a flag hiding it on the login page, and a position.
//!
//! Only `http`/`https` URLs and paths on this site (`/SOGo/so/`) are accepted, so a link can never run script
//! (`javascript:`, `data:`, `vbscript:` and every other scheme are refused).

use gatehouse_core::{Error, Result};
use sea_orm::{
    ActiveModelTrait, EntityTrait, ModelTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
    sea_query::ExprTrait,
};
use serde::Serialize;
use serde_json::json;

use crate::entity::app_link;
use crate::listing::{Page, Window, any_contains, window_of};
use crate::logs::audit;
use crate::{Actor, Store, commit, db_err, now};

/// Longest accepted URL.
const MAX_URL: usize = 2048;
/// Longest accepted name (the column's size).
const MAX_NAME: usize = 128;

/// An app link.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AppLink {
    /// Row id.
    pub id: i64,
    /// What the link says.
    pub name: String,
    /// Where it leads (on the login page, and on the user page when there is no per-user URL).
    pub url: String,
    /// Where it leads for a logged-in user; `%u` is replaced by the URL-encoded mailbox address.
    pub user_url: Option<String>,
    /// Not shown on the login page.
    pub hidden_on_login: bool,
    /// Links are listed by position, then id.
    pub position: i64,
    /// Unix seconds.
    pub created_at: i64,
}

impl AppLink {
    /// The link for `mailbox`: the per-user URL with every `%u` replaced by the percent-encoded address, or the
    /// plain URL when there is no per-user URL.
    pub fn url_for(&self, mailbox: &str) -> String {
        match self.user_url.as_deref().filter(|u| !u.is_empty()) {
            Some(template) => template.replace("%u", &gatehouse_core::text::percent_encode(mailbox)),
            None => self.url.clone(),
        }
    }
}

/// An app link to create.
#[derive(Debug, Clone)]
pub struct NewAppLink {
    /// What the link says.
    pub name: String,
    /// See [`AppLink::url`].
    pub url: String,
    /// See [`AppLink::user_url`]; empty means none.
    pub user_url: Option<String>,
    /// See [`AppLink::hidden_on_login`].
    pub hidden_on_login: bool,
}

/// Changes to an app link; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AppLinkChanges {
    /// New name.
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// New per-user URL; `Some(None)` (or an empty string) removes it.
    pub user_url: Option<Option<String>>,
    /// New flag.
    pub hidden_on_login: Option<bool>,
    /// New position.
    pub position: Option<i64>,
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!("an app link needs a name of 1 to {MAX_NAME} characters")));
    }
    Ok(name.to_string())
}

/// Checks a link URL: an absolute `http`/`https` URL with a host, or a path on this site (`/…`, not `//…`).
fn check_url(what: &str, url: &str) -> Result<String> {
    let url = url.trim();
    let refuse = |why: &str| Err(Error::invalid(format!("the {what} '{url}' {why}")));
    if url.is_empty() {
        return refuse("is empty");
    }
    if url.len() > MAX_URL {
        return refuse(&format!("is longer than {MAX_URL} characters"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return refuse("contains spaces or control characters");
    }
    // `%u` is not a valid percent escape; check the URL as it will be with an address in its place.
    let sample = url.replace("%u", "user%40example.org");
    if sample.starts_with('/') {
        if sample.starts_with("//") || sample.starts_with("/\\") || sample.contains('\\') {
            return refuse("must be a path on this site (/…) or an http(s) URL");
        }
        return Ok(url.to_string());
    }
    match url::Url::parse(&sample) {
        Ok(parsed)
            if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            Ok(url.to_string())
        }
        Ok(_) => refuse("must be an http or https URL (or a path on this site starting with /)"),
        Err(err) => refuse(&format!("is not a URL: {err}")),
    }
}

fn check_user_url(user_url: Option<String>) -> Result<Option<String>> {
    match user_url.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(url) => check_url("per-user URL", url).map(Some),
    }
}

fn to_record(model: app_link::Model) -> AppLink {
    AppLink {
        id: model.id,
        name: model.name,
        url: model.url,
        user_url: model.user_url,
        hidden_on_login: model.hidden_on_login,
        position: model.position,
        created_at: model.created_at,
    }
}

impl Store {
    /// All app links, by position then id.
    pub async fn list_app_links(&self) -> Result<Vec<AppLink>> {
        let rows = app_link::Entity::find()
            .order_by_asc(app_link::Column::Position)
            .order_by_asc(app_link::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(to_record).collect())
    }

    /// One page of the app links whose name or URL contains `text` (ignoring case), in their order.
    pub async fn search_app_links(&self, text: Option<&str>, window: Window) -> Result<Page<AppLink>> {
        let mut query =
            app_link::Entity::find().order_by_asc(app_link::Column::Position).order_by_asc(app_link::Column::Id);
        if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
            query = query.filter(any_contains(&[app_link::Column::Name, app_link::Column::Url], text));
        }
        let (rows, total) = window_of(&self.db, query, window).await?;
        Ok(Page {
            items: rows.into_iter().map(to_record).collect(),
            total,
            more: false,
            offset: window.offset,
            limit: window.limit,
        })
    }

    /// One app link.
    pub async fn app_link(&self, id: i64) -> Result<AppLink> {
        app_link::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(to_record)
            .ok_or_else(|| Error::not_found("app link", id.to_string()))
    }

    /// Creates an app link after the last one.
    pub async fn create_app_link(&self, actor: &Actor, new: NewAppLink) -> Result<AppLink> {
        let name = check_name(&new.name)?;
        let url = check_url("URL", &new.url)?;
        let user_url = check_user_url(new.user_url)?;
        let (_writer, txn) = self.begin().await?;
        let last: Option<Option<i64>> = app_link::Entity::find()
            .select_only()
            .column_as(Expr::col(app_link::Column::Position).max(), "position")
            .into_tuple()
            .one(&txn)
            .await
            .map_err(db_err)?;
        let position = last.flatten().map_or(0, |p| p + 1);
        let inserted = app_link::ActiveModel {
            id: NotSet,
            name: Set(name),
            url: Set(url),
            user_url: Set(user_url),
            hidden_on_login: Set(new.hidden_on_login),
            position: Set(position),
            created_at: Set(now()),
        }
        .insert(&txn)
        .await
        .map_err(db_err)?;
        audit(
            &txn,
            actor,
            "app_link.add",
            &inserted.name,
            json!({
                "id": inserted.id, "url": inserted.url, "user_url": inserted.user_url,
                "hidden_on_login": inserted.hidden_on_login,
            }),
        )
        .await?;
        commit(txn).await?;
        Ok(to_record(inserted))
    }

    /// Changes an app link.
    pub async fn update_app_link(&self, actor: &Actor, id: i64, changes: AppLinkChanges) -> Result<AppLink> {
        let name = changes.name.as_deref().map(check_name).transpose()?;
        let url = changes.url.as_deref().map(|u| check_url("URL", u)).transpose()?;
        let user_url = changes.user_url.map(check_user_url).transpose()?;
        let (_writer, txn) = self.begin().await?;
        let current = app_link::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("app link", id.to_string()))?;
        let mut row: app_link::ActiveModel = current.into();
        if let Some(name) = name {
            row.name = Set(name);
        }
        if let Some(url) = url {
            row.url = Set(url);
        }
        if let Some(user_url) = user_url {
            row.user_url = Set(user_url);
        }
        if let Some(flag) = changes.hidden_on_login {
            row.hidden_on_login = Set(flag);
        }
        if let Some(position) = changes.position {
            row.position = Set(position);
        }
        let updated = row.update(&txn).await.map_err(db_err)?;
        audit(
            &txn,
            actor,
            "app_link.edit",
            &updated.name,
            json!({
                "id": updated.id, "url": updated.url, "user_url": updated.user_url,
                "hidden_on_login": updated.hidden_on_login, "position": updated.position,
            }),
        )
        .await?;
        commit(txn).await?;
        Ok(to_record(updated))
    }

    /// Removes an app link.
    pub async fn remove_app_link(&self, actor: &Actor, id: i64) -> Result<()> {
        let (_writer, txn) = self.begin().await?;
        let current = app_link::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("app link", id.to_string()))?;
        let name = current.name.clone();
        current.delete(&txn).await.map_err(db_err)?;
        audit(&txn, actor, "app_link.remove", &name, json!({ "id": id })).await?;
        commit(txn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_links_and_site_paths_are_accepted() {
        for good in ["https://cloud.example.org/", "http://x.example:8080/a?b=c", "/SOGo/so/", "https://x.org/u/%u"] {
            assert!(check_url("URL", good).is_ok(), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "data:text/html,<script>",
            "vbscript:x",
            "//evil.example/",
            "/\\evil.example",
            "ftp://x.org/",
            "https://",
            "https://x.org/a b",
            "",
        ] {
            assert!(check_url("URL", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_mailbox_is_url_encoded_into_the_user_url() {
        let link = AppLink {
            id: 1,
            name: "Cloud".into(),
            url: "https://cloud.example.org/".into(),
            user_url: Some("https://cloud.example.org/login?user=%u&again=%u".into()),
            hidden_on_login: false,
            position: 0,
            created_at: 0,
        };
        assert_eq!(
            link.url_for("a+b&c@example.org"),
            "https://cloud.example.org/login?user=a%2Bb%26c%40example.org&again=a%2Bb%26c%40example.org"
        );
        let plain = AppLink { user_url: None, ..link };
        assert_eq!(plain.url_for("a@example.org"), "https://cloud.example.org/");
    }
}
