//! Mailboxes and their app passwords. Domain administrators reach only the mailboxes of their domains and do
//! not choose auth sources or templates; the store enforces the domains' limits and quotas for everyone.
//! Deactivating a mailbox, setting its password or removing it ends its web sessions.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::{DomainName, Error, MailboxAddress, ProtocolSet};
use gatehouse_store::{LOCAL_AUTH_SOURCE, Mailbox, MailboxChanges, MailboxOrder, MailboxSearch, NewMailbox, Store};

use super::listing::{Column, ListQuery, Pager};
use super::{
    Choice, Chrome, Confirm, Ctx, FormData, Section, date_time, done, enter, enter_form, finish, found, hash_password,
    not_found, protocol_choices, protocol_names, quota_text, role_of, segment, yes_no,
};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::user::app_password_state;

pub(super) struct MailboxView {
    address: String,
    path: String,
    display_name: String,
    auth_source: String,
    template: String,
    /// The protocols as the forms name them.
    protocol_names: String,
    quota_mib: i64,
    /// The quota as people read it ("unlimited", "2 GiB").
    quota: String,
    active: bool,
    active_text: &'static str,
    force_password_change: bool,
    force_totp: bool,
    has_local_password: bool,
}

impl From<&Mailbox> for MailboxView {
    fn from(m: &Mailbox) -> Self {
        MailboxView {
            address: m.address.clone(),
            path: segment(&m.address),
            display_name: m.display_name.clone(),
            auth_source: m.auth_source.clone(),
            template: m.template.clone().unwrap_or_else(|| "none".into()),
            protocol_names: protocol_names(m.protocols),
            quota_mib: m.quota_mib,
            quota: quota_text(m.quota_mib),
            active: m.active,
            active_text: yes_no(m.active),
            force_password_change: m.force_password_change,
            force_totp: m.force_totp,
            has_local_password: m.has_local_password,
        }
    }
}

pub(super) struct AppPasswordView {
    id: i64,
    name: String,
    protocols: String,
    created: String,
    expires: String,
    last_used: String,
    state: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin_mailboxes.html")]
struct MailboxesPage {
    notice: Option<String>,
    chrome: Chrome,
    /// The search text.
    text: String,
    /// The state filter (`active`, `inactive` or empty).
    state: &'static str,
    columns: Vec<Column>,
    pager: Pager,
    mailboxes: Vec<MailboxView>,
    domains: Vec<Choice>,
    auth_sources: Vec<Choice>,
    templates: Vec<Choice>,
    protocols: Vec<Choice>,
    can_impersonate: bool,
}

#[derive(Template)]
#[template(path = "admin_mailbox.html")]
struct MailboxPage {
    notice: Option<String>,
    chrome: Chrome,
    mailbox: MailboxView,
    auth_sources: Vec<Choice>,
    templates: Vec<Choice>,
    protocols: Vec<Choice>,
    app_passwords: Vec<AppPasswordView>,
    passkeys: Vec<crate::web::passkeys::PasskeyView>,
    sessions: Vec<SessionView>,
    can_impersonate: bool,
}

use crate::web::session::SessionView;

/// The mailbox named in a path, if it exists in a domain this login manages (else 404, whether it exists or
/// not).
async fn owned_mailbox(ctx: &Ctx, address: &str) -> Result<(MailboxAddress, Mailbox), Response> {
    let address = MailboxAddress::parse(address).map_err(|_| not_found())?;
    let mailbox = found(ctx.store.mailbox(&address).await)?;
    Ok((address, mailbox))
}

/// [`enter_form`] for a post about the mailbox in the path: the login, the form, and that mailbox (if it is one
/// this login manages, see [`owned_mailbox`]).
async fn enter_mailbox_form<const DA: bool>(
    state: &AppState,
    headers: &HeaderMap,
    address: &str,
    body: &[u8],
) -> Result<(Ctx, FormData, MailboxAddress, Mailbox), Response> {
    let (ctx, form) = enter_form(state, headers, role_of::<DA>(), body).await?;
    let (address, mailbox) = owned_mailbox(&ctx, address).await?;
    Ok((ctx, form, address, mailbox))
}

/// The page of mailbox `address` (where its forms redirect to).
fn mailbox_page(ctx: &Ctx, address: &str) -> String {
    format!("{}/mailboxes/{}", ctx.prefix(), segment(address))
}

/// `local` and the identity providers, as options.
async fn auth_sources(store: &Store, current: &str) -> Result<Vec<Choice>, Error> {
    let mut choices =
        vec![Choice::new(LOCAL_AUTH_SOURCE, "local (password stored here)", current == LOCAL_AUTH_SOURCE)];
    for provider in store.list_identity_providers().await? {
        let label = format!("{} ({})", provider.name, provider.kind);
        choices.push(Choice::new(provider.name.clone(), label, provider.name == current));
    }
    Ok(choices)
}

async fn template_choices(store: &Store) -> Result<Vec<Choice>, Error> {
    Ok(store.template_names().await?.into_iter().map(|name| Choice::new(name.clone(), name, false)).collect())
}

/// The keys the mailbox list sorts by, the default first.
const MAILBOX_SORTS: [&str; 5] = ["address", "name", "source", "quota", "active"];

/// `GET {prefix}/mailboxes?q=&domain=&state=&sort=&dir=&page=&size=`: one page of the mailboxes this login
/// reaches, searched (part of the address or display name), filtered by domain and state, sorted and counted
/// in the database.
pub(super) async fn list<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let text = query.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let wanted = query.get("domain").map(|d| d.trim().to_lowercase()).filter(|d| !d.is_empty());
    let wanted_domain = match wanted.as_deref().map(DomainName::parse) {
        Some(Ok(domain)) => Some(domain),
        Some(Err(_)) => return Err(not_found()),
        None => None,
    };
    let active = match query.get("state").map(String::as_str) {
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        _ => None,
    };
    let mut list = ListQuery::new(format!("{}/mailboxes", ctx.prefix()), &query, &MAILBOX_SORTS);
    list.keep("q", text.clone());
    list.keep("domain", wanted.clone().unwrap_or_default());
    list.keep(
        "state",
        match active {
            Some(true) => "active",
            Some(false) => "inactive",
            None => "",
        },
    );
    let search = MailboxSearch {
        domains: wanted_domain.map(|d| vec![d]),
        text: Some(text.clone()).filter(|t| !t.is_empty()),
        active,
        auth_source: None,
        order: match list.sort {
            "name" => MailboxOrder::DisplayName,
            "source" => MailboxOrder::AuthSource,
            "quota" => MailboxOrder::Quota,
            "active" => MailboxOrder::Active,
            _ => MailboxOrder::Address,
        },
        descending: list.descending,
        window: list.window(),
    };
    let page = found(ctx.store.search_mailboxes(search).await)?;
    let loaded = async {
        let domains = ctx.store.domain_names().await?;
        let (sources, templates) = match ctx.store.instance() {
            Ok(store) => (auth_sources(store, LOCAL_AUTH_SOURCE).await?, template_choices(store).await?),
            Err(_) => (Vec::new(), Vec::new()),
        };
        Ok::<_, Error>((domains, sources, templates))
    };
    let (domains, auth_sources, templates) = loaded.await.map_err(unavailable)?;
    let notice = ctx.take_notice(&state).await?;
    let page = MailboxesPage {
        notice,
        can_impersonate: ctx.can_impersonate(&state),
        chrome: ctx.chrome(Section::Mailboxes, "Mailboxes"),
        columns: vec![
            list.column("address", "Address"),
            list.column("name", "Name"),
            list.column("source", "Auth source"),
            Column::plain("Protocols"),
            list.column("quota", "Quota"),
            list.column("active", "Active"),
        ],
        pager: list.pager(&page),
        mailboxes: page.items.iter().map(MailboxView::from).collect(),
        text,
        state: match active {
            Some(true) => "active",
            Some(false) => "inactive",
            None => "",
        },
        domains: domains
            .into_iter()
            .map(|name| {
                let selected = wanted.as_deref() == Some(name.as_str());
                let label = DomainName::parse(&name).map(|d| d.to_unicode()).unwrap_or_else(|_| name.clone());
                Choice::new(name, label, selected)
            })
            .collect(),
        auth_sources,
        templates,
        protocols: protocol_choices(ProtocolSet::NONE),
    };
    Ok(render(&page, StatusCode::OK))
}

/// `POST {prefix}/mailboxes`: adds a mailbox in one of this login's domains.
pub(super) async fn create<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, role_of::<DA>(), &body).await?;
    let to = format!("{}/mailboxes", ctx.prefix());
    let domain = match DomainName::parse(&form.text("domain")) {
        Ok(domain) => domain,
        Err(err) => return done(&state, ctx, format!("Not saved: {err}"), &to).await,
    };
    let address = match MailboxAddress::from_parts(&form.text("local_part"), domain) {
        Ok(address) => address,
        Err(err) => return done(&state, ctx, format!("Not saved: {err}"), &to).await,
    };
    let mut new = NewMailbox::new(address);
    new.display_name = form.optional("display_name");
    new.quota_mib = match form.number("quota_mib", "The quota") {
        Ok(quota) => quota,
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    let protocols = form.protocols();
    new.protocols = (!protocols.is_empty()).then_some(protocols);
    new.active = Some(form.checked("active"));
    new.force_password_change = form.checked("force_password_change");
    new.force_totp = form.checked("force_totp");
    if ctx.is_admin() {
        new.auth_source = form.optional("auth_source");
        new.template = form.optional("template");
    }
    let password = match form.new_password(&state.web.password_policy) {
        Ok(password) => password,
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    if let Some(password) = password {
        new.password_hash = Some(hash_password(&state, password).await?);
    }
    let result = ctx.store.create_mailbox(new).await.map(|m| format!("Mailbox {} added.", m.address));
    finish(&state, ctx, result, &to).await
}

/// `GET {prefix}/mailboxes/{address}`: the settings, the password form and the app passwords.
pub(super) async fn show<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(address): Path<String>,
) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, role_of::<DA>()).await?;
    let (address, mailbox) = owned_mailbox(&ctx, &address).await?;
    let loaded = async {
        let apps = ctx.store.list_app_passwords(&address).await?;
        let passkeys = ctx.store.list_passkeys(&address).await?;
        let sessions = ctx.store.list_web_sessions(&address).await?;
        let (sources, templates) = match ctx.store.instance() {
            Ok(store) => (auth_sources(store, &mailbox.auth_source).await?, template_choices(store).await?),
            Err(_) => (Vec::new(), Vec::new()),
        };
        Ok::<_, Error>((apps, passkeys, sessions, sources, templates))
    };
    let (apps, passkeys, sessions, auth_sources, templates) = loaded.await.map_err(unavailable)?;
    let notice = ctx.take_notice(&state).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let page = MailboxPage {
        notice,
        can_impersonate: ctx.can_impersonate(&state),
        chrome: ctx.chrome(Section::Mailboxes, format!("Mailbox {}", mailbox.address)),
        mailbox: MailboxView::from(&mailbox),
        auth_sources,
        templates,
        protocols: protocol_choices(mailbox.protocols),
        app_passwords: apps
            .into_iter()
            .map(|app| AppPasswordView {
                id: app.id,
                state: app_password_state(&app, now),
                active: app.active,
                name: app.name,
                protocols: protocol_names(app.protocols),
                created: date_time(app.created_at),
                expires: gatehouse_core::expiry::describe(app.expires_at),
                last_used: app.last_used_at.map(date_time).unwrap_or_else(|| "never".into()),
            })
            .collect(),
        passkeys: crate::web::passkeys::views(passkeys),
        sessions: sessions.iter().map(|row| SessionView::from_row(row, None)).collect(),
    };
    Ok(render(&page, StatusCode::OK))
}

/// `POST {prefix}/mailboxes/{address}`: saves what differs from the stored mailbox.
pub(super) async fn update<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(address): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, address, current) = enter_mailbox_form::<DA>(&state, &headers, &address, &body).await?;
    let to = mailbox_page(&ctx, &current.address);
    let quota = match form.number("quota_mib", "The quota") {
        Ok(quota) => quota.unwrap_or(0),
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    let differs = |old: bool, new: bool| (old != new).then_some(new);
    let mut changes = MailboxChanges {
        display_name: Some(form.text("display_name")).filter(|name| *name != current.display_name),
        quota_mib: (quota != current.quota_mib).then_some(quota),
        protocols: Some(form.protocols()).filter(|set| *set != current.protocols),
        active: differs(current.active, form.checked("active")),
        force_password_change: differs(current.force_password_change, form.checked("force_password_change")),
        force_totp: differs(current.force_totp, form.checked("force_totp")),
        ..MailboxChanges::default()
    };
    if ctx.is_admin() {
        changes.auth_source = form.optional("auth_source").filter(|source| *source != current.auth_source);
        if let Some(template) = form.optional("template") {
            // The template's quota and protocols replace the form's.
            changes.template = Some(template);
            changes.quota_mib = None;
            changes.protocols = None;
        }
    }
    let deactivated = changes.active == Some(false);
    let nothing = changes.active.is_none() && nothing_else(&changes);
    if nothing {
        return done(&state, ctx, "Nothing changed.", &to).await;
    }
    if deactivated && !form.confirmed() {
        let sessions = ctx.store.count_web_sessions(&address).await.map_err(unavailable)?;
        let mut effects = vec![
            format!("deactivate {}: every login to it is refused (mail, webmail and this site)", current.address),
            match sessions {
                0 => "it has no open web session to end".into(),
                n => format!("end its {}", counted_things(&[(usize::try_from(n).unwrap_or(0), "open web session")])),
            },
            "keep its password, app passwords and passkeys: they work again once it is active".into(),
        ];
        if nothing_else(&changes) {
            effects.push("change nothing else".into());
        } else {
            effects.push("save the other changes of the form".into());
        }
        return Ok(Confirm {
            section: Section::Mailboxes,
            title: format!("Deactivate mailbox {}?", current.address),
            action: to.clone(),
            effects,
            button: "Deactivate mailbox",
            back: to,
        }
        .page_carrying(&ctx, &form));
    }
    // The store ends a deactivated mailbox's web sessions in the same transaction.
    let result = async {
        let updated = ctx.store.update_mailbox(&address, changes).await?;
        Ok(if deactivated {
            format!("Mailbox {} saved and deactivated; its web sessions were ended.", updated.address)
        } else {
            format!("Mailbox {} saved.", updated.address)
        })
    };
    let result = result.await;
    finish(&state, ctx, result, &to).await
}

/// `POST {prefix}/mailboxes/{address}/password`: sets the local password and ends the mailbox's web sessions.
pub(super) async fn set_password<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(address): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, address, current) = enter_mailbox_form::<DA>(&state, &headers, &address, &body).await?;
    let to = mailbox_page(&ctx, &current.address);
    let password = match form.required_password(&state.web.password_policy, "Type the new password twice.") {
        Ok(password) => password,
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    let hash = hash_password(&state, password).await?;
    let changes = MailboxChanges {
        password_hash: Some(hash),
        force_password_change: Some(form.checked("force_password_change")),
        ..MailboxChanges::default()
    };
    // The store ends the mailbox's web sessions in the same transaction.
    let result = ctx
        .store
        .update_mailbox(&address, changes)
        .await
        .map(|_| format!("Password of {} set; its web sessions were ended.", current.address));
    finish(&state, ctx, result, &to).await
}

/// `POST {prefix}/mailboxes/{address}/remove`: after confirmation, removes the mailbox with its app passwords
/// and passkeys, and ends its web sessions.
pub(super) async fn remove<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(address): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, address, current) = enter_mailbox_form::<DA>(&state, &headers, &address, &body).await?;
    if !form.confirmed() {
        let counted = async {
            let apps = ctx.store.list_app_passwords(&address).await?.into_iter().filter(|a| a.active).count();
            let passkeys = ctx.store.list_passkeys(&address).await?.len();
            let sessions = ctx.store.count_web_sessions(&address).await?;
            Ok::<_, Error>((apps, passkeys, sessions))
        };
        let (apps, passkeys, sessions) = counted.await.map_err(unavailable)?;
        let mut effects = vec![format!(
            "remove the mailbox {} from Gatehouse: every login to it is refused from then on (the mail in Dovecot \
             stays until it is deleted there)",
            current.address
        )];
        effects.push(match (apps, passkeys) {
            (0, 0) => "it has no active app password or passkey to remove".into(),
            _ => format!("remove its {}", counted_things(&[(apps, "active app password"), (passkeys, "passkey")])),
        });
        effects.push(match sessions {
            0 => "it has no open web session to end".into(),
            n => {
                format!("end its {}", counted_things(&[(usize::try_from(n).unwrap_or(usize::MAX), "open web session")]))
            }
        });
        return Ok(Confirm {
            section: Section::Mailboxes,
            title: format!("Remove mailbox {}?", current.address),
            action: format!("{}/remove", mailbox_page(&ctx, &current.address)),
            effects,
            button: "Remove mailbox",
            back: mailbox_page(&ctx, &current.address),
        }
        .page(&ctx));
    }
    let result = ctx.store.remove_mailbox(&address).await.map(|()| format!("Mailbox {} removed.", current.address));
    let to = format!("{}/mailboxes", ctx.prefix());
    finish(&state, ctx, result, &to).await
}

/// Whether `changes` change nothing but the mailbox's activation.
fn nothing_else(changes: &MailboxChanges) -> bool {
    changes.display_name.is_none()
        && changes.quota_mib.is_none()
        && changes.protocols.is_none()
        && changes.force_password_change.is_none()
        && changes.force_totp.is_none()
        && changes.auth_source.is_none()
        && changes.template.is_none()
}

/// "3 app passwords and 1 passkey", "no web session": counts with their nouns.
fn counted_things(things: &[(usize, &str)]) -> String {
    let parts: Vec<String> = things
        .iter()
        .map(|(count, noun)| match count {
            0 => format!("no {noun}"),
            1 => format!("1 {noun}"),
            n => format!("{n} {noun}s"),
        })
        .collect();
    parts.join(" and ")
}

/// `POST {prefix}/mailboxes/{address}/app-passwords/{id}/revoke`.
pub(super) async fn revoke_app_password<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((address, id)): Path<(String, i64)>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, address, current) = enter_mailbox_form::<DA>(&state, &headers, &address, &body).await?;
    let to = mailbox_page(&ctx, &current.address);
    if !form.confirmed() {
        let apps = ctx.store.list_app_passwords(&address).await.map_err(unavailable)?;
        let app = apps.into_iter().find(|app| app.id == id).ok_or_else(not_found)?;
        return Ok(Confirm {
            section: Section::Mailboxes,
            title: format!("Revoke app password \"{}\" of {}?", app.name, current.address),
            action: format!("{to}/app-passwords/{id}/revoke"),
            effects: vec![
                format!(
                    "revoke the app password \"{}\" ({}): every mail client that uses it is refused from its next login",
                    app.name,
                    protocol_names(app.protocols)
                ),
                "keep it in the list as revoked; it cannot be turned back on".into(),
            ],
            button: "Revoke app password",
            back: to,
        }
        .page(&ctx));
    }
    // The store revokes only an app password of this mailbox; another mailbox's id is "not found".
    let result = ctx
        .store
        .revoke_app_password(&address, id)
        .await
        .map(|app| format!("App password \"{}\" of {} revoked.", app.name, current.address));
    finish(&state, ctx, result, &to).await
}

/// `POST {prefix}/mailboxes/{address}/passkeys/{id}/remove`: removes a passkey (a lost device).
pub(super) async fn remove_passkey<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((address, id)): Path<(String, i64)>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, address, current) = enter_mailbox_form::<DA>(&state, &headers, &address, &body).await?;
    let to = mailbox_page(&ctx, &current.address);
    if !form.confirmed() {
        let passkeys = ctx.store.list_passkeys(&address).await.map_err(unavailable)?;
        let passkey = passkeys.into_iter().find(|p| p.id == id).ok_or_else(not_found)?;
        return Ok(Confirm {
            section: Section::Mailboxes,
            title: format!("Remove passkey \"{}\" of {}?", passkey.name, current.address),
            action: format!("{to}/passkeys/{id}/remove"),
            effects: vec![format!(
                "remove the passkey \"{}\": it no longer signs in to {} or confirms its logins",
                passkey.name, current.address
            )],
            button: "Remove passkey",
            back: to,
        }
        .page(&ctx));
    }
    // The store removes only a passkey of this mailbox; another mailbox's id is "not found".
    let result =
        ctx.store.remove_passkey(&address, id).await.map(|()| format!("Passkey of {} removed.", current.address));
    finish(&state, ctx, result, &to).await
}

/// `POST {prefix}/mailboxes/{address}/sessions/{reference}/end` (one session) and
/// `POST {prefix}/mailboxes/{address}/sessions/end` (all): after confirmation, ends the mailbox's web sessions
/// and the webmail they opened.
pub(super) async fn end_sessions<const DA: bool>(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(path): Path<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, Response> {
    let address = path.get("address").cloned().unwrap_or_default();
    let reference = path.get("reference").cloned();
    let (ctx, form, address, current) = enter_mailbox_form::<DA>(&state, &headers, &address, &body).await?;
    let to = mailbox_page(&ctx, &current.address);
    if !form.confirmed() {
        let sessions = ctx.store.list_web_sessions(&address).await.map_err(unavailable)?;
        let (title, effects, action) = match &reference {
            Some(reference) => {
                let session = sessions.iter().find(|s| SessionView::names(s, reference)).ok_or_else(not_found)?;
                let view = SessionView::from_row(session, None);
                (
                    format!("End a web session of {}?", current.address),
                    vec![
                        format!("end the session started {} UTC from {}", view.started, view.from),
                        "end the webmail it opened: its next page asks to sign in".into(),
                    ],
                    format!("{to}/sessions/{reference}/end"),
                )
            }
            None => (
                format!("End every web session of {}?", current.address),
                vec![
                    format!("end its {}", counted_things(&[(sessions.len(), "open web session")])),
                    "end the webmail they opened: every browser of the mailbox must sign in again".into(),
                    "leave its password, app passwords and passkeys as they are".into(),
                ],
                format!("{to}/sessions/end"),
            ),
        };
        return Ok(Confirm {
            section: Section::Mailboxes,
            title,
            action,
            effects,
            button: if reference.is_some() { "End session" } else { "End all sessions" },
            back: to,
        }
        .page(&ctx));
    }
    let result = ctx.store.end_web_sessions(&address, reference.as_deref()).await.map(|n| {
        format!("{} of {} ended.", counted_things(&[(usize::try_from(n).unwrap_or(0), "web session")]), current.address)
    });
    finish(&state, ctx, result, &to).await
}
