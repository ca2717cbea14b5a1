//! The SCIM User resource over mailboxes: the representation (what the client pushed, kept in the mailbox's
//! `scim` attribute, with the mailbox's id, state and times), reading a pushed User into a mailbox address and
//! an account for the provisioning rules, `eq` filters, PATCH operations, and the handlers of `/Users`.
//!
//! Every attribute a client pushes is kept and returned — the core ones this server declares, others such as
//! `phoneNumbers` and `addresses`, and extension schemas such as the enterprise extension — except `password`
//! (never kept: these mailboxes sign in at the provider) and `active`, which is the mailbox's own state. So
//! clients that PATCH attributes the server does not use (Entra ID does) are not refused.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::MailboxAddress;
use gatehouse_engine::ExternalAccount;
use gatehouse_sources::provisioning::{
    account_changes, mapped_template, new_mailbox, provider_mappings, template_for_new,
};
use gatehouse_store::{DEPROVISIONED_BY, Mailbox, MailboxChanges, SCIM_ATTRIBUTE, ScimSelect, ScimUser};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{ScimError, scim_json};
use super::{Caller, LIST_SCHEMA, MAX_RESULTS, PATCH_SCHEMA, ScimState, USER_SCHEMA};

/// The User attributes this server declares and spells this way, whatever case a client uses.
const DECLARED: [&str; 11] =
    ["externalId", "userName", "name", "displayName", "title", "userType", "emails", "active", "id", "meta", "schemas"];
/// Attributes that are not kept as pushed: the server's own (`id`, `meta`, `schemas`), the mailbox's state
/// (`active`) and `password`.
const NOT_KEPT: [&str; 5] = ["id", "meta", "schemas", "active", "password"];
/// The largest User document kept per mailbox, in bytes of JSON.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The longest `userName` and `externalId`, in characters.
const MAX_ID_CHARS: usize = 255;
/// Lists hold this many resources unless `count` says otherwise.
const DEFAULT_COUNT: usize = 100;

/// An attribute name as this server spells it when it declares it, found case-insensitively (SCIM names are
/// case-insensitive).
fn canonical(name: &str) -> Option<&'static str> {
    DECLARED.iter().copied().find(|declared| declared.eq_ignore_ascii_case(name))
}

/// Whether `name` is an attribute name (RFC 7643 §2.1: a letter, then letters, digits, `-` and `_`) or an
/// extension schema's URN.
fn is_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    is_extension(name)
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// Whether `name` is an extension schema's URN (the key of that extension's attributes in a User).
fn is_extension(name: &str) -> bool {
    name.get(..4).is_some_and(|head| head.eq_ignore_ascii_case("urn:"))
}

/// The key under which `user` holds attribute `name` (SCIM names are case-insensitive), or `name` itself.
fn key_of(user: &Map<String, Value>, name: &str) -> String {
    user.keys().find(|key| key.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_string())
}

/// `name` without the User schema's URN prefix (`urn:…:core:2.0:User:userName` → `userName`).
fn strip_urn(name: &str) -> &str {
    let prefix = format!("{USER_SCHEMA}:");
    match name.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(&prefix) => &name[prefix.len()..],
        _ => name,
    }
}

/// What a client pushed, as stored: its attributes (declared ones under their canonical names) but for those
/// in [`NOT_KEPT`] and empty values.
fn kept_attributes(document: &Map<String, Value>) -> Map<String, Value> {
    document
        .iter()
        .filter(|(key, value)| !value.is_null() && is_attribute_name(strip_urn(key)))
        .filter(|(key, _)| !NOT_KEPT.iter().any(|skip| skip.eq_ignore_ascii_case(strip_urn(key))))
        .map(|(key, value)| {
            let name = strip_urn(key);
            (canonical(name).map(str::to_string).unwrap_or_else(|| name.to_string()), value.clone())
        })
        .collect()
}

fn time(seconds: i64) -> String {
    gatehouse_core::clock::rfc3339(seconds).unwrap_or_default()
}

fn version(mailbox: &Mailbox) -> String {
    format!("W/\"{}\"", mailbox.revision)
}

/// What the client pushed about the mailbox (empty for a mailbox made otherwise, by a sign-in for example).
fn pushed(mailbox: &Mailbox) -> Map<String, Value> {
    mailbox.attributes.get(SCIM_ATTRIBUTE).and_then(Value::as_object).cloned().unwrap_or_default()
}

/// The User representation of a mailbox.
fn resource(state: &ScimState, mailbox: &Mailbox) -> Map<String, Value> {
    let mut kept = kept_attributes(&pushed(mailbox));
    if !kept.contains_key("userName") {
        kept.insert("userName".into(), json!(mailbox.address));
        kept.insert("displayName".into(), json!(mailbox.display_name));
        kept.insert("emails".into(), json!([{ "value": mailbox.address, "type": "work", "primary": true }]));
    }
    let id = mailbox.id.to_string();
    let mut schemas = vec![json!(USER_SCHEMA)];
    schemas.extend(kept.keys().filter(|key| is_extension(key)).map(|key| json!(key)));
    let mut user = Map::new();
    user.insert("schemas".into(), Value::Array(schemas));
    user.insert("id".into(), json!(id));
    user.extend(kept);
    user.insert("active".into(), json!(mailbox.active));
    user.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": time(mailbox.created_at),
            "lastModified": time(mailbox.modified_at),
            "location": state.location(&format!("/Users/{id}")),
            "version": version(mailbox),
        }),
    );
    user
}

/// A reply holding one User, with its `ETag` (and `Location` when created).
fn user_reply(state: &ScimState, mailbox: &Mailbox, status: StatusCode, projection: &Projection) -> Response {
    let user = projection.apply(resource(state, mailbox));
    let mut response = (status, scim_json(&Value::Object(user))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&version(mailbox)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&state.location(&format!("/Users/{}", mailbox.id)))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `attributes` / `excludedAttributes` of a request: which attributes a reply shows.
#[derive(Debug, Default, Deserialize)]
pub struct Projection {
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

impl Projection {
    fn names(list: &Option<String>) -> Vec<(String, Option<String>)> {
        list.as_deref()
            .unwrap_or("")
            .split(',')
            .map(|name| strip_urn(name.trim()))
            .filter(|name| !name.is_empty())
            .map(|name| match name.split_once('.') {
                Some((attribute, sub)) => (attribute.to_ascii_lowercase(), Some(sub.to_ascii_lowercase())),
                None => (name.to_ascii_lowercase(), None),
            })
            .collect()
    }

    /// The user with only the asked-for attributes (`schemas` and `id` are always returned).
    fn apply(&self, user: Map<String, Value>) -> Map<String, Value> {
        let always = |key: &str| key == "schemas" || key == "id";
        let wanted = Projection::names(&self.attributes);
        let excluded = Projection::names(&self.excluded_attributes);
        user.into_iter()
            .filter_map(|(key, value)| {
                let lower = key.to_ascii_lowercase();
                if always(&key) {
                    return Some((key, value));
                }
                if !wanted.is_empty() {
                    let subs: Vec<&str> =
                        wanted.iter().filter(|(a, _)| *a == lower).filter_map(|(_, s)| s.as_deref()).collect();
                    let whole = wanted.iter().any(|(a, s)| *a == lower && s.is_none());
                    if whole {
                        return Some((key, value));
                    }
                    if subs.is_empty() {
                        return None;
                    }
                    return Some((key, keep_sub_attributes(value, &subs)));
                }
                if excluded.iter().any(|(a, s)| *a == lower && s.is_none()) {
                    return None;
                }
                Some((key, value))
            })
            .collect()
    }
}

/// `value` (an object, or a list of objects) with only the sub-attributes `subs`.
fn keep_sub_attributes(value: Value, subs: &[&str]) -> Value {
    let keep = |object: Map<String, Value>| -> Value {
        Value::Object(object.into_iter().filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k))).collect())
    };
    match value {
        Value::Object(object) => keep(object),
        Value::Array(items) => Value::Array(
            items.into_iter().map(|item| if let Value::Object(o) = item { keep(o) } else { item }).collect(),
        ),
        other => other,
    }
}

/// The User's `externalId`, when it is a string.
fn external_id(kept: &Map<String, Value>) -> Option<&str> {
    kept.get("externalId").and_then(Value::as_str)
}

/// A pushed User, read for the provisioning rules.
struct PushedUser {
    /// The mailbox it is.
    address: MailboxAddress,
    /// Its `userName`.
    user_name: String,
    /// Whether the client wants it active.
    active: bool,
    /// The account, for templates and the display name.
    account: ExternalAccount,
    /// What is kept of it.
    kept: Map<String, Value>,
}

impl PushedUser {
    /// What the mailbox keeps of the User.
    fn scim_user(&self) -> ScimUser {
        ScimUser {
            user_name: self.user_name.clone(),
            external_id: external_id(&self.kept).map(str::to_string),
            document: Value::Object(self.kept.clone()),
            deleted: false,
        }
    }
}

/// A boolean as clients send it (Entra ID sends `"True"` / `"False"` in PATCH values).
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The values of the template attribute: at the top level or in an extension schema's object, a string, a
/// list of strings, or a list of `{"value": …}`.
fn template_values(document: &Map<String, Value>, attribute: Option<&str>) -> Vec<String> {
    let Some(attribute) = attribute else { return Vec::new() };
    let find = |object: &Map<String, Value>| {
        object.iter().find(|(key, _)| strip_urn(key).eq_ignore_ascii_case(attribute)).map(|(_, v)| v.clone())
    };
    let found = find(document).or_else(|| {
        document
            .iter()
            .filter(|(key, _)| key.starts_with("urn:"))
            .find_map(|(_, value)| value.as_object().and_then(&find))
    });
    let text = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(object) => object.get("value").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    match found {
        Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
        Some(value) => text(&value).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The primary email, else the first one.
fn primary_email(document: &Map<String, Value>) -> Option<String> {
    let emails = document.get("emails")?.as_array()?;
    let value = |email: &Value| email.get("value").and_then(Value::as_str).map(str::to_string);
    emails
        .iter()
        .find(|email| email.get("primary").and_then(boolean) == Some(true))
        .and_then(value)
        .or_else(|| emails.iter().find_map(value))
}

fn display_name(kept: &Map<String, Value>) -> Option<String> {
    if let Some(name) = kept.get("displayName").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) {
        return Some(name.to_string());
    }
    let name = kept.get("name")?.as_object()?;
    if let Some(formatted) = name.get("formatted").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) {
        return Some(formatted.to_string());
    }
    let parts: Vec<&str> =
        ["givenName", "familyName"].iter().filter_map(|part| name.get(*part).and_then(Value::as_str)).collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Reads a pushed User (a POST or PUT body, or a patched representation) for `caller`.
fn read_user(caller: &Caller, document: &Map<String, Value>) -> Result<PushedUser, ScimError> {
    if let Some(schemas) = document.get("schemas") {
        let names: Vec<&str> =
            schemas.as_array().map(|s| s.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if !names.iter().any(|name| name.eq_ignore_ascii_case(USER_SCHEMA)) {
            return Err(ScimError::syntax(format!("schemas must include {USER_SCHEMA}")));
        }
    }
    let kept = kept_attributes(document);
    if Value::Object(kept.clone()).to_string().len() > MAX_DOCUMENT_BYTES {
        return Err(ScimError::value(format!("the User is larger than {} KiB", MAX_DOCUMENT_BYTES / 1024)));
    }
    let user_name = kept
        .get("userName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ScimError::value("userName is required"))?
        .to_string();
    for (attribute, value) in [("userName", Some(user_name.as_str())), ("externalId", external_id(&kept))] {
        if value.is_some_and(|value| value.to_lowercase().chars().count() > MAX_ID_CHARS) {
            return Err(ScimError::value(format!("{attribute} is longer than {MAX_ID_CHARS} characters")));
        }
    }
    let address = MailboxAddress::parse(&user_name)
        .ok()
        .or_else(|| primary_email(&kept).and_then(|email| MailboxAddress::parse(&email).ok()))
        .ok_or_else(|| ScimError::value("neither userName nor the primary email is a mail address"))?;
    if !caller.token.allows_domain(address.domain().as_str()) {
        return Err(ScimError::forbidden(format!(
            "this token may not provision mailboxes in {} (it is limited to {})",
            address.domain(),
            caller.token.domains.join(", ")
        )));
    }
    let active = match document.iter().find(|(key, _)| strip_urn(key).eq_ignore_ascii_case("active")) {
        Some((_, value)) => boolean(value).ok_or_else(|| ScimError::value("active must be true or false"))?,
        None => true,
    };
    let account = ExternalAccount {
        subject: String::new(),
        address: address.to_string(),
        display_name: display_name(&kept),
        enabled: active,
        template_values: template_values(document, caller.template_attribute.as_deref()),
        attributes: Default::default(),
    };
    Ok(PushedUser { address, user_name, active, account, kept })
}

/// The body of a request as a JSON object (SCIM clients send `application/scim+json`, some `application/json`).
fn json_object(body: &Bytes) -> Result<Map<String, Value>, ScimError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ScimError::syntax("the body must be a JSON object")),
        Err(err) => Err(ScimError::syntax(format!("the body is not JSON: {err}"))),
    }
}

/// The mailbox a User id names, if the caller may see it.
async fn visible(state: &ScimState, caller: &Caller, id: &str) -> Result<Mailbox, ScimError> {
    let missing = || ScimError::not_found(format!("no User '{id}'"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    let mailbox = state.store.mailbox_by_id(id).await?.ok_or_else(missing)?;
    if mailbox.auth_source != caller.provider.name
        || !caller.token.allows_domain(&mailbox.domain)
        || mailbox.scim_deleted
    {
        return Err(missing());
    }
    Ok(mailbox)
}

/// The mailbox a User id names, if the caller may see it and `If-Match` (when sent) names its current version.
async fn changeable(state: &ScimState, caller: &Caller, id: &str, headers: &HeaderMap) -> Result<Mailbox, ScimError> {
    let mailbox = visible(state, caller, id).await?;
    check_version(headers, &mailbox)?;
    Ok(mailbox)
}

/// Refuses a change when `If-Match` names another version of `mailbox`.
fn check_version(headers: &HeaderMap, mailbox: &Mailbox) -> Result<(), ScimError> {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let current = version(mailbox);
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").trim_matches('"').to_string();
    let matches = wanted.split(',').any(|tag| tag.trim() == "*" || strip(tag) == strip(&current));
    if matches { Ok(()) } else { Err(ScimError::precondition_failed()) }
}

/// The changes that make `mailbox` what `user` says: the template and name as a sync would change them, the
/// kept attributes, and `active` (false deactivates, as the provider's; true undoes only the provider's own
/// deactivation, never an administrator's).
async fn changes_for(
    state: &ScimState,
    caller: &Caller,
    mailbox: &Mailbox,
    user: &PushedUser,
) -> Result<MailboxChanges, ScimError> {
    let templates = state.store.template_hashes().await?;
    let mappings = provider_mappings(&caller.provider);
    let mapped = mapped_template(&user.account, &mappings);
    let mut changes =
        account_changes(&caller.provider.name, mailbox, &user.account, mapped, &templates).unwrap_or_default();
    if !user.active && mailbox.active {
        changes.deprovisioned_by = Some(Some(caller.provider.name.clone()));
    }
    let deactivated_here =
        mailbox.attributes.get(DEPROVISIONED_BY).and_then(Value::as_str) == Some(caller.provider.name.as_str());
    if user.active && !mailbox.active && deactivated_here {
        changes.deprovisioned_by = Some(None);
    }
    changes.scim = Some(user.scim_user());
    Ok(changes)
}

/// `GET /Users` with `filter`, `startIndex`, `count`, `attributes`, `excludedAttributes`. Unfiltered lists
/// and `userName`, `externalId` and `id` filters are answered from indexes; `emails` and `displayName` filters
/// look through the token's Users.
pub async fn list(
    State(state): State<ScimState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let filter = query.get("filter").map(|text| Filter::parse(text)).transpose()?;
    let number = |name: &str| -> Result<Option<i64>, ScimError> {
        query
            .get(name)
            .map(|text| text.trim().parse::<i64>().map_err(|_| ScimError::value(format!("{name} must be a number"))))
            .transpose()
    };
    // RFC 7644 §3.4.2.4: a startIndex below 1 means 1, a negative count means 0.
    let start = number("startIndex")?.unwrap_or(1).max(1);
    let count = number("count")?.unwrap_or(DEFAULT_COUNT as i64).clamp(0, MAX_RESULTS as i64);
    let (offset, limit) = (u64::try_from(start - 1).unwrap_or(0), u64::try_from(count).unwrap_or(0));
    let projection = Projection {
        attributes: query.get("attributes").cloned(),
        excluded_attributes: query.get("excludedAttributes").cloned(),
    };
    let (provider, domains) = (caller.provider.name.as_str(), caller.token.domains.as_slice());
    let (total, users): (u64, Vec<Map<String, Value>>) = match &filter {
        None => {
            let (total, mailboxes) =
                state.store.scim_users(provider, domains, ScimSelect::All, offset, Some(limit)).await?;
            (total, mailboxes.iter().map(|m| resource(&state, m)).collect())
        }
        Some(filter) => {
            let candidates = match filter.attribute {
                "id" => match visible(&state, &caller, &filter.value).await {
                    Ok(mailbox) => vec![mailbox],
                    Err(_) => Vec::new(),
                },
                attribute => {
                    let select = match attribute {
                        "userName" => ScimSelect::UserName(&filter.value),
                        "externalId" => ScimSelect::ExternalId(&filter.value),
                        _ => ScimSelect::All,
                    };
                    state.store.scim_users(provider, domains, select, 0, None).await?.1
                }
            };
            let matching: Vec<Map<String, Value>> =
                candidates.iter().map(|m| resource(&state, m)).filter(|user| filter.matches(user)).collect();
            let total = matching.len() as u64;
            (total, matching.into_iter().skip(offset as usize).take(limit as usize).collect())
        }
    };
    let page: Vec<Value> = users.into_iter().map(|user| Value::Object(projection.apply(user))).collect();
    Ok(scim_json(&json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    })))
}

/// `GET /Users/{id}`.
pub async fn get(
    State(state): State<ScimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(projection): Query<Projection>,
) -> Result<Response, ScimError> {
    let mailbox = visible(&state, &caller, &id).await?;
    Ok(user_reply(&state, &mailbox, StatusCode::OK, &projection))
}

/// `POST /Users`: creates the mailbox with the provider's template rules (or takes back a mailbox whose User
/// the provider deleted).
pub async fn create(
    State(state): State<ScimState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let user = read_user(&caller, &json_object(&body)?)?;
    let actor = caller.token.actor();
    let existing = match state.store.mailbox(&user.address).await {
        Ok(mailbox) => Some(mailbox),
        Err(gatehouse_core::Error::NotFound { .. }) => None,
        Err(err) => return Err(err.into()),
    };
    if let Some(mailbox) = existing {
        if mailbox.auth_source != caller.provider.name {
            return Err(ScimError::uniqueness(format!(
                "mailbox {} exists and is not managed by identity provider '{}'",
                mailbox.address, caller.provider.name
            )));
        }
        if !mailbox.scim_deleted {
            return Err(ScimError::uniqueness(format!("a User with the mail address {} exists", mailbox.address)));
        }
        // The provider deleted this User before and now creates it again: the mailbox (and its mail) returns.
        let changes = changes_for(&state, &caller, &mailbox, &user).await?;
        let updated = state.store.update_mailbox(&actor, &user.address, changes).await?;
        tracing::info!(address = %user.address, provider = caller.provider.name, token = caller.token.name, "mailbox taken back by SCIM");
        return Ok(user_reply(&state, &updated, StatusCode::CREATED, &Projection::default()));
    }
    let template = template_for_new(&user.account, &provider_mappings(&caller.provider), &caller.settings)
        .map_err(|why| ScimError::value(format!("no mailbox for {}: {why}", user.address)))?;
    let mut new = new_mailbox(&caller.provider.name, user.address.clone(), template, user.account.clone());
    new.scim = Some(user.scim_user());
    // A domain (or template) that is missing is a fault of the pushed User, not a missing resource.
    let mut created = state.store.create_mailbox(&actor, new).await.map_err(|err| match err {
        gatehouse_core::Error::NotFound { .. } => ScimError::value(format!("no mailbox for {}: {err}", user.address)),
        err => err.into(),
    })?;
    if !user.active {
        let changes =
            MailboxChanges { deprovisioned_by: Some(Some(caller.provider.name.clone())), ..Default::default() };
        created = state.store.update_mailbox(&actor, &user.address, changes).await?;
    }
    tracing::info!(address = %user.address, provider = caller.provider.name, token = caller.token.name, "mailbox created by SCIM");
    Ok(user_reply(&state, &created, StatusCode::CREATED, &Projection::default()))
}

/// Applies `document` (a whole User) to the mailbox `id` names.
async fn apply_document(
    state: &ScimState,
    caller: &Caller,
    mailbox: Mailbox,
    document: &Map<String, Value>,
) -> Result<Response, ScimError> {
    let user = read_user(caller, document)?;
    if user.address.to_string() != mailbox.address {
        return Err(ScimError::mutability(format!(
            "the mail address of a mailbox cannot change ({} is not {})",
            user.address, mailbox.address
        )));
    }
    let changes = changes_for(state, caller, &mailbox, &user).await?;
    let address = user.address.clone();
    let updated = state.store.update_mailbox(&caller.token.actor(), &address, changes).await?;
    Ok(user_reply(state, &updated, StatusCode::OK, &Projection::default()))
}

/// `PUT /Users/{id}`: replaces what is kept of the User.
pub async fn replace(
    State(state): State<ScimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let document = json_object(&body)?;
    let mailbox = changeable(&state, &caller, &id, &headers).await?;
    apply_document(&state, &caller, mailbox, &document).await
}

/// `PATCH /Users/{id}`: add, replace and remove operations on the User's representation.
pub async fn patch(
    State(state): State<ScimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let request = json_object(&body)?;
    let schemas = request.get("schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_SCHEMA)))) {
        return Err(ScimError::syntax(format!("a PATCH request has the schema {PATCH_SCHEMA}")));
    }
    let operations = request
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| ScimError::syntax("a PATCH request needs Operations"))?;
    let mailbox = changeable(&state, &caller, &id, &headers).await?;
    let mut document = resource(&state, &mailbox);
    for operation in operations {
        apply_operation(&mut document, operation)?;
    }
    apply_document(&state, &caller, mailbox, &document).await
}

/// `DELETE /Users/{id}`: deactivates the mailbox (it is never deleted: its mail stays); the User is gone, and
/// its `userName` and `externalId` are free again.
pub async fn delete(
    State(state): State<ScimState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let mailbox = changeable(&state, &caller, &id, &headers).await?;
    let document = pushed(&mailbox);
    let user_name = document.get("userName").and_then(Value::as_str).unwrap_or(&mailbox.address).to_string();
    let scim = ScimUser { user_name, external_id: None, document: Value::Object(document), deleted: true };
    let mut changes = MailboxChanges { scim: Some(scim), ..Default::default() };
    if mailbox.active {
        changes.deprovisioned_by = Some(Some(caller.provider.name.clone()));
    }
    let address = MailboxAddress::parse(&mailbox.address)?;
    state.store.update_mailbox(&caller.token.actor(), &address, changes).await?;
    tracing::info!(%address, provider = caller.provider.name, token = caller.token.name, "mailbox deactivated by a SCIM delete");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A filter this server evaluates: `<attribute> eq <value>`, for `userName`, `emails` / `emails.value`,
/// `externalId`, `id` and `displayName`.
#[derive(Debug)]
struct Filter {
    attribute: &'static str,
    sub: Option<&'static str>,
    value: String,
    case_exact: bool,
}

impl Filter {
    fn parse(text: &str) -> Result<Filter, ScimError> {
        let unsupported = || {
            ScimError::filter(format!(
                "unsupported filter '{text}': this server evaluates <attribute> eq \"value\" for userName, \
                 emails.value, externalId, id and displayName"
            ))
        };
        let text = text.trim();
        let (attribute, rest) = text.split_once(char::is_whitespace).ok_or_else(unsupported)?;
        let (operator, value) = rest.trim().split_once(char::is_whitespace).ok_or_else(unsupported)?;
        if !operator.eq_ignore_ascii_case("eq") {
            return Err(unsupported());
        }
        let value: Value = serde_json::from_str(value.trim()).map_err(|_| unsupported())?;
        let value = match value {
            Value::String(text) => text,
            Value::Bool(_) | Value::Number(_) => value.to_string(),
            _ => return Err(unsupported()),
        };
        let attribute = strip_urn(attribute);
        let (name, sub) = match attribute.split_once('.') {
            Some((name, sub)) if sub.eq_ignore_ascii_case("value") => (name, Some("value")),
            Some(_) => return Err(unsupported()),
            None => (attribute, None),
        };
        let (attribute, sub, case_exact) = match canonical(name).ok_or_else(unsupported)? {
            "emails" => ("emails", Some("value"), false),
            "userName" if sub.is_none() => ("userName", None, false),
            "displayName" if sub.is_none() => ("displayName", None, false),
            "externalId" if sub.is_none() => ("externalId", None, true),
            "id" if sub.is_none() => ("id", None, true),
            _ => return Err(unsupported()),
        };
        Ok(Filter { attribute, sub, value, case_exact })
    }

    fn matches(&self, user: &Map<String, Value>) -> bool {
        let equal = |candidate: &str| {
            if self.case_exact { candidate == self.value } else { candidate.eq_ignore_ascii_case(&self.value) }
        };
        match (user.get(self.attribute), self.sub) {
            (Some(Value::Array(items)), Some(sub)) => {
                items.iter().any(|item| item.get(sub).and_then(Value::as_str).is_some_and(equal))
            }
            (Some(Value::String(text)), None) => equal(text),
            _ => false,
        }
    }
}

/// A PATCH path: `attribute`, `attribute.sub`, `attribute[sub eq value]` or `attribute[sub eq value].sub`, for
/// a core attribute (with or without the User schema's URN before it) or an extension's (its schema URN, then
/// `:attribute`, as in `urn:…:enterprise:2.0:User:department`).
#[derive(Debug)]
struct PatchPath {
    /// The key in the User: a core attribute or an extension schema's URN.
    attribute: String,
    selector: Option<(String, Value)>,
    /// A sub-attribute, possibly dotted (`manager.value` in an extension).
    sub: Option<String>,
}

impl PatchPath {
    /// Reads `text` as a path into `user` (whose keys it matches case-insensitively).
    fn parse(text: &str, user: &Map<String, Value>) -> Result<PatchPath, ScimError> {
        let invalid = || ScimError::path(format!("cannot follow the path '{text}'"));
        let text = strip_urn(text.trim());
        if is_extension(text) {
            return Ok(PatchPath::extension(text, user));
        }
        let (head, selector, tail) = match text.split_once('[') {
            Some((head, rest)) => {
                let (inside, after) = rest.split_once(']').ok_or_else(invalid)?;
                let mut words = inside.trim().splitn(3, char::is_whitespace);
                let (sub, operator, value) =
                    (words.next().ok_or_else(invalid)?, words.next().ok_or_else(invalid)?, words.next());
                if !operator.eq_ignore_ascii_case("eq") {
                    return Err(ScimError::path(format!("only eq selects values in a path: '{text}'")));
                }
                let value: Value = serde_json::from_str(value.ok_or_else(invalid)?.trim()).map_err(|_| invalid())?;
                (head, Some((sub.to_string(), value)), after.strip_prefix('.').filter(|t| !t.is_empty()))
            }
            None => match text.split_once('.') {
                Some((head, sub)) => (head, None, Some(sub)),
                None => (text, None, None),
            },
        };
        if !is_attribute_name(head) {
            return Err(invalid());
        }
        let attribute = canonical(head).map(str::to_string).unwrap_or_else(|| key_of(user, head));
        match attribute.as_str() {
            "id" => Err(ScimError::mutability("id is assigned by the server")),
            "meta" | "schemas" => Err(ScimError::mutability(format!("{attribute} is kept by the server"))),
            _ => Ok(PatchPath { attribute, selector, sub: tail.map(str::to_string) }),
        }
    }

    /// An extension path: the whole extension (its URN, a key of `user` or ending in `:User`), or one of its
    /// attributes after the last `:`.
    fn extension(text: &str, user: &Map<String, Value>) -> PatchPath {
        let whole = user.keys().any(|key| key.eq_ignore_ascii_case(text))
            || text.rsplit(':').next().is_some_and(|last| last.eq_ignore_ascii_case("User"));
        match text.rsplit_once(':') {
            Some((urn, attribute)) if !whole && !attribute.is_empty() => {
                PatchPath { attribute: key_of(user, urn), selector: None, sub: Some(attribute.to_string()) }
            }
            _ => PatchPath { attribute: key_of(user, text), selector: None, sub: None },
        }
    }
}

/// Whether `item` is selected by `attribute eq value` (strings compared case-insensitively).
fn selected(item: &Value, (attribute, value): &(String, Value)) -> bool {
    let found =
        item.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(attribute)).map(|(_, v)| v));
    match (found, value) {
        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Some(found), value) => found == value || boolean(found).is_some_and(|f| boolean(value) == Some(f)),
        (None, _) => false,
    }
}

/// Sets `sub` (possibly dotted: `manager.value`) of an object value, case-insensitively replacing an
/// existing key.
fn set_sub(object: &mut Map<String, Value>, sub: &str, value: Value) {
    let (head, rest) = match sub.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (sub, None),
    };
    let key = key_of(object, head);
    match rest {
        None => {
            object.insert(key, value);
        }
        Some(rest) => {
            let inner = object.entry(key).or_insert_with(|| json!({}));
            if !inner.is_object() {
                *inner = json!({});
            }
            if let Value::Object(inner) = inner {
                set_sub(inner, rest, value);
            }
        }
    }
}

/// Removes `sub` (possibly dotted) of an object value.
fn remove_sub(object: &mut Map<String, Value>, sub: &str) {
    let (head, rest) = match sub.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (sub, None),
    };
    let key = key_of(object, head);
    match (rest, object.get_mut(&key)) {
        (None, _) => {
            object.remove(&key);
        }
        (Some(rest), Some(Value::Object(inner))) => remove_sub(inner, rest),
        (Some(_), _) => {}
    }
}

/// Applies one PATCH operation to a User's representation.
fn apply_operation(user: &mut Map<String, Value>, operation: &Value) -> Result<(), ScimError> {
    let field = |name: &str| {
        operation.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
    };
    let op = field("op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| ScimError::syntax("each operation needs op (add, replace or remove)"))?;
    let value = field("value").cloned();
    let path = field("path").and_then(Value::as_str).filter(|p| !p.trim().is_empty());
    match (op.as_str(), path) {
        ("add" | "replace", None) => {
            let Some(Value::Object(values)) = value else {
                return Err(ScimError::value("an operation without a path needs an object value"));
            };
            for (key, value) in values {
                let path = PatchPath::parse(&key, user)?;
                set(user, &path, value, op == "add")?;
            }
            Ok(())
        }
        ("add" | "replace", Some(path)) => {
            let value = value.ok_or_else(|| ScimError::value(format!("{op} of {path} needs a value")))?;
            set(user, &PatchPath::parse(path, user)?, value, op == "add")
        }
        ("remove", Some(path)) => remove(user, &PatchPath::parse(path, user)?),
        ("remove", None) => Err(ScimError::no_target("remove needs a path")),
        (other, _) => Err(ScimError::syntax(format!("unknown op '{other}' (add, replace or remove)"))),
    }
}

fn set(user: &mut Map<String, Value>, path: &PatchPath, value: Value, add: bool) -> Result<(), ScimError> {
    let attribute = path.attribute.as_str();
    match (&path.selector, &path.sub) {
        (None, None) => {
            let merged = match (add, user.remove(attribute), value) {
                // Adding to a multi-valued attribute adds the values that are not there yet.
                (true, Some(Value::Array(mut items)), Value::Array(new)) => {
                    for item in new {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                    Value::Array(items)
                }
                // A complex attribute (or an extension) takes the sub-attributes given and keeps the others
                // (RFC 7644 §3.5.2.1 and §3.5.2.3).
                (_, Some(Value::Object(mut object)), Value::Object(new)) => {
                    for (key, value) in new {
                        set_sub(&mut object, &key, value);
                    }
                    Value::Object(object)
                }
                (_, _, value) => value,
            };
            user.insert(attribute.to_string(), merged);
        }
        (None, Some(sub)) => match user.entry(attribute.to_string()).or_insert_with(|| json!({})) {
            Value::Object(object) => set_sub(object, sub, value),
            // A sub-attribute of a multi-valued attribute without a filter: in each of its values.
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if let Value::Object(object) = item {
                        set_sub(object, sub, value.clone());
                    }
                }
            }
            _ => return Err(ScimError::path(format!("{attribute} has no sub-attribute {sub}"))),
        },
        (Some(selector), sub) => {
            let entry = user.entry(attribute.to_string()).or_insert_with(|| json!([]));
            let Value::Array(items) = entry else {
                return Err(ScimError::path(format!("{attribute} is not multi-valued")));
            };
            let mut touched = false;
            for item in items.iter_mut().filter(|item| selected(item, selector)) {
                if let (Value::Object(object), Some(sub)) = (&mut *item, sub) {
                    set_sub(object, sub, value.clone());
                } else {
                    *item = value.clone();
                }
                touched = true;
            }
            if !touched {
                // Entra ID replaces emails[type eq "work"].value on users that have no work address yet.
                let mut item = Map::new();
                item.insert(selector.0.clone(), selector.1.clone());
                match sub {
                    Some(sub) => set_sub(&mut item, sub, value),
                    None => {
                        if let Value::Object(values) = value {
                            item.extend(values);
                        }
                    }
                }
                items.push(Value::Object(item));
            }
        }
    }
    Ok(())
}

fn remove(user: &mut Map<String, Value>, path: &PatchPath) -> Result<(), ScimError> {
    let attribute = path.attribute.as_str();
    if (attribute == "userName" || attribute == "active") && path.sub.is_none() && path.selector.is_none() {
        return Err(ScimError::mutability(format!("{attribute} is required and cannot be removed")));
    }
    match (&path.selector, &path.sub) {
        (None, None) => {
            user.remove(attribute);
        }
        (None, Some(sub)) => match user.get_mut(attribute) {
            Some(Value::Object(object)) => remove_sub(object, sub),
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::Object(object) = item {
                        remove_sub(object, sub);
                    }
                }
            }
            _ => {}
        },
        (Some(selector), None) => {
            if let Some(Value::Array(items)) = user.get_mut(attribute) {
                items.retain(|item| !selected(item, selector));
            }
        }
        (Some(selector), Some(sub)) => {
            if let Some(Value::Array(items)) = user.get_mut(attribute) {
                for item in items.iter_mut().filter(|item| selected(item, selector)) {
                    if let Value::Object(object) = item {
                        remove_sub(object, sub);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_evaluate_eq_on_the_supported_attributes() {
        let user: Map<String, Value> = serde_json::from_value(json!({
            "id": "7", "userName": "Alice@example.org", "externalId": "ABC",
            "emails": [{ "value": "alice@example.org", "primary": true }],
        }))
        .unwrap();
        for (filter, expected) in [
            (r#"userName eq "alice@example.org""#, true),
            (r#"USERNAME Eq "ALICE@EXAMPLE.ORG""#, true),
            (r#"emails.value eq "alice@example.org""#, true),
            (r#"emails eq "alice@example.org""#, true),
            (r#"externalId eq "ABC""#, true),
            (r#"externalId eq "abc""#, false),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "alice@example.org""#, true),
            (r#"id eq "7""#, true),
        ] {
            assert_eq!(Filter::parse(filter).unwrap().matches(&user), expected, "{filter}");
        }
        for unsupported in [r#"userName co "ali""#, "userName pr", r#"name.givenName eq "x""#, "active eq"] {
            assert!(Filter::parse(unsupported).is_err(), "{unsupported}");
        }
    }

    #[test]
    fn patch_operations_follow_paths_and_value_selectors() {
        let mut user: Map<String, Value> = serde_json::from_value(json!({
            "userName": "bob@example.org", "active": true,
            "emails": [{ "value": "bob@example.org", "type": "work", "primary": true }],
        }))
        .unwrap();
        let ops = [
            json!({ "op": "Replace", "path": "displayName", "value": "Bob" }),
            json!({ "op": "add", "path": "name.givenName", "value": "Bob" }),
            json!({ "op": "replace", "value": { "active": "False", "title": "IT" } }),
            json!({ "op": "replace", "path": "emails[type eq \"work\"].display", "value": "Work" }),
            json!({ "op": "add", "path": "emails", "value": [{ "value": "b@example.org", "type": "home" }] }),
            json!({ "op": "remove", "path": "emails[type eq \"home\"]" }),
            json!({ "op": "remove", "path": "title" }),
        ];
        for op in &ops {
            apply_operation(&mut user, op).unwrap();
        }
        assert_eq!(user["displayName"], "Bob");
        assert_eq!(user["name"], json!({ "givenName": "Bob" }));
        assert_eq!(user["active"], "False");
        assert_eq!(
            user["emails"],
            json!([{ "value": "bob@example.org", "type": "work", "primary": true, "display": "Work" }])
        );
        assert!(!user.contains_key("title"));
        let refused = apply_operation(&mut user, &json!({ "op": "remove", "path": "userName" })).unwrap_err();
        assert!(format!("{refused:?}").contains("mutability"));
        for refused in [
            json!({ "op": "replace", "path": "meta", "value": {} }),
            json!({ "op": "replace", "path": "id", "value": "9" }),
            json!({ "op": "replace", "path": "two words", "value": "x" }),
            json!({ "op": "replace", "path": "emails[type co \"w\"].value", "value": "x" }),
            json!({ "op": "move", "path": "title", "value": "x" }),
        ] {
            assert!(apply_operation(&mut user, &refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn patches_of_attributes_the_server_does_not_use_are_kept() {
        const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let mut user: Map<String, Value> = serde_json::from_value(json!({
            "userName": "bob@example.org", "name": { "givenName": "Bob", "familyName": "Old" },
        }))
        .unwrap();
        // What Entra ID sends for its default attribute mappings.
        let ops = [
            json!({ "op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "engineering" }),
            json!({ "op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "4711" }),
            json!({ "op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+49 30 1234" }),
            json!({ "op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Berlin" }),
            json!({ "op": "Replace", "path": "preferredLanguage", "value": "de-DE" }),
            json!({ "op": "Replace", "path": "name", "value": { "familyName": "New" } }),
            json!({ "op": "Replace", "path": "password", "value": "secret" }),
            json!({ "op": "add", "value": { "nickName": "b", ENTERPRISE: { "employeeNumber": "7" } } }),
        ];
        for op in &ops {
            apply_operation(&mut user, op).unwrap();
        }
        let kept = kept_attributes(&user);
        assert_eq!(kept[ENTERPRISE], json!({ "department": "engineering", "manager": "4711", "employeeNumber": "7" }));
        assert_eq!(kept["phoneNumbers"], json!([{ "type": "work", "value": "+49 30 1234" }]));
        assert_eq!(kept["addresses"], json!([{ "type": "work", "locality": "Berlin" }]));
        assert_eq!(kept["name"], json!({ "givenName": "Bob", "familyName": "New" }), "the other parts are kept");
        assert_eq!((&kept["preferredLanguage"], &kept["nickName"]), (&json!("de-DE"), &json!("b")));
        assert!(!kept.contains_key("password"), "a pushed password is never kept");
        assert_eq!(template_values(&kept, Some("department")), ["engineering"]);
        apply_operation(&mut user, &json!({ "op": "remove", "path": format!("{ENTERPRISE}:manager") })).unwrap();
        assert_eq!(user[ENTERPRISE], json!({ "department": "engineering", "employeeNumber": "7" }));
        apply_operation(&mut user, &json!({ "op": "remove", "path": ENTERPRISE })).unwrap();
        assert!(!user.contains_key(ENTERPRISE));
    }

    #[test]
    fn template_values_come_from_the_top_level_or_an_extension() {
        let document: Map<String, Value> = serde_json::from_value(json!({
            "userType": "staff",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "it" },
            "roles": [{ "value": "a" }, { "value": "b" }],
        }))
        .unwrap();
        assert_eq!(template_values(&document, Some("usertype")), ["staff"]);
        assert_eq!(template_values(&document, Some("department")), ["it"]);
        assert_eq!(template_values(&document, Some("roles")), ["a", "b"]);
        assert!(template_values(&document, Some("mailcow_template")).is_empty());
    }
}
