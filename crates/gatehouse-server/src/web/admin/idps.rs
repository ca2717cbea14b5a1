//! Identity providers (administrators only): the list, an LDAP form and a settings editor for OpenID Connect
//! providers and Keycloak realms (both validated like the command line does before anything is stored), attribute mappings, a connection test that shows each step, sync and dry run
//! (their reports as notices and in the provider's recent runs), and removal.
//!
//! Secrets (the bind password, a client secret) are write-only: the forms never carry them back, and an empty
//! field keeps the stored one.

use std::collections::BTreeMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use gatehouse_core::{Error, Fault, MailboxAddress, Secret};
use gatehouse_sources::dispatch::{LDAP_BIND_PASSWORD, OIDC_CLIENT_SECRET, check_provider};
use gatehouse_sources::ldap::{LdapSecurity, LdapSettings};
use gatehouse_sources::provisioning::DeprovisionPolicy;
use gatehouse_sources::registry::build_source;
use gatehouse_sources::{Source, SourceRegistry, SourceSettings};
use gatehouse_store::{
    IdentityProvider, IdentityProviderChanges, IdentityProviderKind, LogFilter, NewIdentityProvider, Store,
};

use super::{
    Choice, Chrome, Confirm, Ctx, FormData, Section, date_time, done, enter, enter_form, finish, not_found, segment,
    yes_no,
};
use crate::AppState;
use crate::web::respond::render;
use crate::web::respond::unavailable;
use crate::web::session::Role;

pub(super) struct ProviderRow {
    name: String,
    path: String,
    kind: String,
    active: &'static str,
    hosts: String,
    secrets: String,
    mappings: usize,
    /// TLS certificates of this provider are not checked.
    insecure: bool,
}

/// The LDAP form's fields (never the bind password).
pub(super) struct LdapForm {
    hosts: String,
    port: String,
    security: Vec<Choice>,
    ca_file: String,
    ignore_tls_errors: bool,
    timeout_seconds: u64,
    bind_dn: String,
    has_bind_password: bool,
    base_dn: String,
    user_filter: String,
    mail_attribute: String,
    display_name_attribute: String,
    template_attribute: String,
    default_template: Vec<Choice>,
    sync_filter: String,
    disabled_filter: String,
    create_on_login: bool,
    periodic_sync: bool,
    import_users: bool,
    sync_interval_minutes: u64,
    deprovision: Vec<Choice>,
    deprovision_threshold_percent: u8,
}

impl LdapForm {
    fn new(settings: &LdapSettings, templates: &[String], has_bind_password: bool) -> Self {
        let security = [
            (LdapSecurity::StartTls, "starttls", "StartTLS (ldap:// upgraded)"),
            (LdapSecurity::Ldaps, "ldaps", "LDAPS (ldaps://)"),
            (LdapSecurity::Plain, "plain", "none (trusted networks only)"),
        ];
        let deprovision = [
            (DeprovisionPolicy::Ignore, "ignore", "leave them alone"),
            (DeprovisionPolicy::Deactivate, "deactivate", "deactivate them"),
        ];
        LdapForm {
            hosts: settings.hosts.join(", "),
            port: settings.port.map(|p| p.to_string()).unwrap_or_default(),
            security: security
                .iter()
                .map(|(s, value, label)| Choice::new(*value, *label, *s == settings.security))
                .collect(),
            ca_file: settings.ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            ignore_tls_errors: settings.ignore_tls_errors,
            timeout_seconds: settings.timeout_seconds,
            bind_dn: settings.bind_dn.clone(),
            has_bind_password,
            base_dn: settings.base_dn.clone(),
            user_filter: settings.user_filter.clone(),
            mail_attribute: settings.mail_attribute.clone(),
            display_name_attribute: settings.display_name_attribute.clone(),
            template_attribute: settings.template_attribute.clone().unwrap_or_default(),
            default_template: templates
                .iter()
                .map(|t| Choice::new(t.clone(), t.clone(), settings.provisioning.default_template.as_ref() == Some(t)))
                .collect(),
            sync_filter: settings.sync_filter.clone().unwrap_or_default(),
            disabled_filter: settings.disabled_filter.clone().unwrap_or_default(),
            create_on_login: settings.provisioning.create_on_login,
            periodic_sync: settings.provisioning.periodic_sync,
            import_users: settings.provisioning.import_users,
            sync_interval_minutes: settings.provisioning.sync_interval_minutes,
            deprovision: deprovision
                .iter()
                .map(|(p, value, label)| Choice::new(*value, *label, *p == settings.provisioning.deprovision))
                .collect(),
            deprovision_threshold_percent: settings.provisioning.deprovision_threshold_percent,
        }
    }
}

pub(super) struct StepView {
    name: String,
    ok: bool,
    detail: String,
}

pub(super) struct JobView {
    job: String,
    started: String,
    finished: String,
    status: String,
    /// The run's summary as named fields.
    summary: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin_idps.html")]
struct ProvidersPage {
    notice: Option<String>,
    chrome: Chrome,
    providers: Vec<ProviderRow>,
    ldap: LdapForm,
}

#[derive(Template)]
#[template(path = "admin_idp.html")]
struct ProviderPage {
    notice: Option<String>,
    chrome: Chrome,
    path: String,
    kind: String,
    active: bool,
    /// TLS certificates of this provider are not checked.
    insecure: bool,
    ldap: Option<LdapForm>,
    settings: String,
    mappings: String,
    template_names: String,
    test_steps: Vec<StepView>,
    sample: String,
    jobs: Vec<JobView>,
}

/// The defaults of a new LDAP provider.
fn default_settings() -> LdapSettings {
    serde_json::from_value(serde_json::json!({ "hosts": [], "bind_dn": "", "base_dn": "" }))
        .expect("the LDAP settings have defaults")
}

async fn template_names(store: &Store) -> Result<Vec<String>, Error> {
    store.template_names().await
}

/// `GET /admin/identity-providers`.
pub(super) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Response> {
    let mut ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let loaded = async { Ok::<_, Error>((store.list_identity_providers().await?, template_names(&store).await?)) };
    let (providers, templates) = loaded.await.map_err(unavailable)?;
    let notice = ctx.take_notice(&state).await?;
    let page = ProvidersPage {
        notice,
        chrome: ctx.chrome(Section::IdentityProviders, "Identity providers"),
        providers: providers
            .into_iter()
            .map(|p| ProviderRow {
                path: segment(&p.name),
                kind: p.kind.to_string(),
                active: yes_no(p.active),
                hosts: p.settings.get("hosts").and_then(|h| h.as_array()).map_or_else(String::new, |hosts| {
                    hosts.iter().filter_map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
                }),
                secrets: p.secret_names.join(", "),
                mappings: p.mappings.len(),
                insecure: p.ignores_tls_errors(),
                name: p.name,
            })
            .collect(),
        ldap: LdapForm::new(&default_settings(), &templates, false),
    };
    Ok(render(&page, StatusCode::OK))
}

/// The LDAP settings of a posted form, checked like the command line checks them (hosts, filter, CA file,
/// default template).
fn ldap_settings(form: &FormData, templates: &[String]) -> Result<LdapSettings, String> {
    let mut settings = default_settings();
    settings.hosts =
        form.get("hosts").split([',', ' ', '\n', '\r', '\t']).filter(|h| !h.is_empty()).map(str::to_string).collect();
    settings.port = form.number("port", "The port")?;
    settings.security = match form.text("security").as_str() {
        "plain" => LdapSecurity::Plain,
        "ldaps" => LdapSecurity::Ldaps,
        _ => LdapSecurity::StartTls,
    };
    settings.ca_file = form.optional("ca_file").map(Into::into);
    settings.ignore_tls_errors = form.checked("ignore_tls_errors");
    settings.timeout_seconds = form.number("timeout_seconds", "The timeout")?.unwrap_or(settings.timeout_seconds);
    settings.bind_dn = form.text("bind_dn");
    settings.base_dn = form.text("base_dn");
    if settings.base_dn.is_empty() {
        return Err("The base DN is required.".into());
    }
    if let Some(filter) = form.optional("user_filter") {
        settings.user_filter = filter;
    }
    if let Some(attribute) = form.optional("mail_attribute") {
        settings.mail_attribute = attribute;
    }
    if let Some(attribute) = form.optional("display_name_attribute") {
        settings.display_name_attribute = attribute;
    }
    settings.template_attribute = form.optional("template_attribute");
    settings.provisioning.default_template = form.optional("default_template");
    if let Some(template) = &settings.provisioning.default_template
        && !templates.contains(template)
    {
        return Err(format!("There is no template named '{template}'."));
    }
    settings.sync_filter = form.optional("sync_filter");
    settings.disabled_filter = form.optional("disabled_filter");
    settings.provisioning.create_on_login = form.checked("create_on_login");
    settings.provisioning.periodic_sync = form.checked("periodic_sync");
    settings.provisioning.import_users = form.checked("import_users");
    settings.provisioning.sync_interval_minutes = form
        .number("sync_interval_minutes", "The sync interval")?
        .unwrap_or(settings.provisioning.sync_interval_minutes)
        .max(1);
    settings.provisioning.deprovision = if form.text("deprovision") == "deactivate" {
        DeprovisionPolicy::Deactivate
    } else {
        DeprovisionPolicy::Ignore
    };
    let threshold: u8 = form
        .number("deprovision_threshold_percent", "The threshold")?
        .unwrap_or(settings.provisioning.deprovision_threshold_percent);
    if threshold > 100 {
        return Err("The threshold is a percentage (0 to 100).".into());
    }
    settings.provisioning.deprovision_threshold_percent = threshold;
    // What can be checked without the network (hosts, filter, CA file); the password is not needed for that.
    Source::build(SourceSettings::Ldap(settings.clone()), &BTreeMap::new())
        .map_err(|err| format!("Not saved: {err}"))?;
    Ok(settings)
}

/// `POST /admin/identity-providers`: adds an LDAP provider with its bind password.
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    let to = "/admin/identity-providers";
    let templates = template_names(&store).await.map_err(unavailable)?;
    let settings = match ldap_settings(&form, &templates) {
        Ok(settings) => settings,
        Err(problem) => return done(&state, ctx, problem, to).await,
    };
    let settings = serde_json::to_value(&settings).map_err(|err| unavailable(Error::Internal(err.to_string())))?;
    let mut secrets = BTreeMap::new();
    let password = form.get("bind_password");
    if !password.is_empty() {
        secrets.insert(LDAP_BIND_PASSWORD.to_string(), Secret::new(password));
    }
    let new = NewIdentityProvider { name: form.text("name"), kind: IdentityProviderKind::Ldap, settings, secrets };
    add_provider(&state, ctx, new).await
}

/// Stores a new provider and shows its page (or the list with the refusal).
async fn add_provider(state: &AppState, ctx: Ctx, new: NewIdentityProvider) -> Result<Response, Response> {
    match ctx.instance()?.create_identity_provider(&ctx.actor(), new).await {
        Ok(created) => {
            let notice = format!("Identity provider {} added; test its connection below.", created.name);
            done(state, ctx, notice, &provider_path(&created.name)).await
        }
        result => finish(state, ctx, result.map(|_| String::new()), "/admin/identity-providers").await,
    }
}

/// `POST /admin/identity-providers/openid`: adds an `oidc` or `keycloak` provider from its settings (JSON)
/// and client secret.
pub(super) async fn create_openid(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let to = "/admin/identity-providers";
    let kind = match form.text("kind").as_str() {
        "oidc" => IdentityProviderKind::Oidc,
        "keycloak" => IdentityProviderKind::Keycloak,
        _ => return done(&state, ctx, "Not saved: choose OpenID Connect or Keycloak.".to_string(), to).await,
    };
    let settings = match serde_json::from_str::<serde_json::Value>(form.get("settings")) {
        Ok(settings) => settings,
        Err(err) => return done(&state, ctx, format!("Not saved: the settings are not JSON: {err}."), to).await,
    };
    let secrets = client_secret(&form);
    if let Err(err) = check_provider(kind, &settings, &secrets, &[]) {
        return done(&state, ctx, format!("Not saved: {err}."), to).await;
    }
    let new = NewIdentityProvider { name: form.text("name"), kind, settings, secrets };
    add_provider(&state, ctx, new).await
}

/// The client secret typed into a form, if one was.
fn client_secret(form: &FormData) -> BTreeMap<String, Secret> {
    let secret = form.get("client_secret");
    let mut secrets = BTreeMap::new();
    if !secret.is_empty() {
        secrets.insert(OIDC_CLIENT_SECRET.to_string(), Secret::new(secret));
    }
    secrets
}

/// The settings of an OpenID Connect provider from its page's editor (the whole JSON), with the active flag
/// and a new client secret if one was typed.
async fn update_openid(
    state: &AppState,
    ctx: Ctx,
    form: FormData,
    current: IdentityProvider,
) -> Result<Response, Response> {
    let to = provider_path(&current.name);
    let settings = match serde_json::from_str::<serde_json::Value>(form.get("settings")) {
        Ok(settings) => settings,
        Err(err) => return done(state, ctx, format!("Not saved: the settings are not JSON: {err}."), &to).await,
    };
    let secrets = client_secret(&form);
    if let Err(err) = check_provider(current.kind, &settings, &secrets, &current.secret_names) {
        return done(state, ctx, format!("Not saved: {err}."), &to).await;
    }
    let changes = IdentityProviderChanges { settings: Some(settings), active: Some(form.checked("active")), secrets };
    let result = ctx
        .instance()?
        .update_identity_provider(&ctx.actor(), &current.name, changes)
        .await
        .map(|p| format!("Identity provider {} saved.", p.name));
    finish(state, ctx, result, &to).await
}

/// The provider named in a path.
async fn provider(store: &Store, name: &str) -> Result<IdentityProvider, Response> {
    match store.identity_provider(name).await {
        Ok(Some(provider)) => Ok(provider),
        Ok(None) => Err(not_found()),
        Err(err) => Err(unavailable(err)),
    }
}

/// [`enter_form`] for a post about the provider in the path: the login, the form, and that provider.
async fn enter_provider_form(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
) -> Result<(Ctx, FormData, IdentityProvider), Response> {
    let (ctx, form) = enter_form(state, headers, Role::Admin, body).await?;
    let provider = provider(&ctx.instance()?, name).await?;
    Ok((ctx, form, provider))
}

/// The page of provider `name` (where its forms redirect to).
fn provider_path(name: &str) -> String {
    format!("/admin/identity-providers/{}", segment(name))
}

/// The provider page, with the connection test's steps when there are some.
async fn provider_page(
    state: &AppState,
    mut ctx: Ctx,
    provider: IdentityProvider,
    test_steps: Vec<StepView>,
    sample: String,
) -> Result<Response, Response> {
    let store = ctx.instance()?;
    let loaded = async {
        let templates = template_names(&store).await?;
        let filter = LogFilter { subject: Some(provider.name.clone()), limit: Some(5), ..LogFilter::default() };
        Ok::<_, Error>((templates, store.job_log(&filter).await?))
    };
    let (templates, jobs) = loaded.await.map_err(unavailable)?;
    let notice = ctx.take_notice(state).await?;
    let ldap = match provider.kind {
        IdentityProviderKind::Ldap => serde_json::from_value::<LdapSettings>(provider.settings.clone())
            .ok()
            .map(|s| LdapForm::new(&s, &templates, provider.secret_names.iter().any(|n| n == LDAP_BIND_PASSWORD))),
        _ => None,
    };
    let page = ProviderPage {
        notice,
        chrome: ctx.chrome(Section::IdentityProviders, format!("Identity provider {}", provider.name)),
        path: segment(&provider.name),
        kind: provider.kind.to_string(),
        active: provider.active,
        insecure: provider.ignores_tls_errors(),
        ldap,
        settings: serde_json::to_string_pretty(&provider.settings).unwrap_or_default(),
        mappings: provider.mappings.iter().map(|m| format!("{}={}\n", m.attribute_value, m.template)).collect(),
        template_names: templates.join(", "),
        test_steps,
        sample,
        jobs: jobs
            .into_iter()
            .map(|run| JobView {
                job: run.job,
                started: date_time(run.started_at),
                finished: run.finished_at.map(date_time).unwrap_or_else(|| "running".into()),
                status: run.status,
                summary: super::readable::summary_fields(&run.summary),
            })
            .collect(),
    };
    Ok(render(&page, StatusCode::OK))
}

/// `GET /admin/identity-providers/{name}`.
pub(super) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Response> {
    let ctx = enter(&state, &headers, Role::Admin).await?;
    let store = ctx.instance()?;
    let current = provider(&store, &name).await?;
    provider_page(&state, ctx, current, Vec::new(), String::new()).await
}

/// `POST /admin/identity-providers/{name}`: the LDAP settings, the active flag, and a new bind password if one
/// was typed.
pub(super) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, current) = enter_provider_form(&state, &headers, &name, &body).await?;
    let store = ctx.instance()?;
    let to = provider_path(&current.name);
    if current.kind != IdentityProviderKind::Ldap {
        return update_openid(&state, ctx, form, current).await;
    }
    let templates = template_names(&store).await.map_err(unavailable)?;
    let settings = match ldap_settings(&form, &templates) {
        Ok(settings) => settings,
        Err(problem) => return done(&state, ctx, problem, &to).await,
    };
    let mut changes = IdentityProviderChanges {
        settings: Some(serde_json::to_value(&settings).unwrap_or_default()),
        active: Some(form.checked("active")),
        ..IdentityProviderChanges::default()
    };
    let password = form.get("bind_password");
    if !password.is_empty() {
        changes.secrets.insert(LDAP_BIND_PASSWORD.to_string(), Secret::new(password));
    }
    let result = store
        .update_identity_provider(&ctx.actor(), &current.name, changes)
        .await
        .map(|p| format!("Identity provider {} saved.", p.name));
    finish(&state, ctx, result, &to).await
}

/// `POST /admin/identity-providers/{name}/mappings`: `value=template` lines, in priority order.
pub(super) async fn mappings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, current) = enter_provider_form(&state, &headers, &name, &body).await?;
    let store = ctx.instance()?;
    let to = provider_path(&current.name);
    let mut pairs = Vec::new();
    for line in form.get("mappings").lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.rsplit_once('=') {
            Some((value, template)) => pairs.push((value.trim().to_string(), template.trim().to_string())),
            None => return done(&state, ctx, format!("'{line}' is not value=template."), &to).await,
        }
    }
    let result = store
        .set_attribute_mappings(&ctx.actor(), &current.name, &pairs)
        .await
        .map(|p| format!("{} now maps {} attribute value(s) to templates.", p.name, p.mappings.len()));
    finish(&state, ctx, result, &to).await
}

/// `POST /admin/identity-providers/{name}/test`: runs the connection test and shows each step (nothing is
/// changed, so the page is the answer).
pub(super) async fn test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form, current) = enter_provider_form(&state, &headers, &name, &body).await?;
    let store = ctx.instance()?;
    let sample_text = form.text("sample");
    let step = |name: &str, outcome: Result<String, String>| StepView {
        name: name.to_string(),
        ok: outcome.is_ok(),
        detail: outcome.unwrap_or_else(|err| err),
    };
    let steps = match (sample_text.is_empty(), MailboxAddress::parse(&sample_text)) {
        (false, Err(err)) => vec![step("read the sample address", Err(err.to_string()))],
        (_, sample) => match build_source(&store, &current).await {
            Ok(source) => {
                let sample = sample.ok();
                let outcome = source.test(sample.as_ref()).await;
                outcome.into_iter().map(|(name, outcome)| step(&name, outcome)).collect()
            }
            Err(err) if err.fault() == Fault::Client => vec![step("read the settings", Err(err.to_string()))],
            Err(err) => return Err(unavailable(err)),
        },
    };
    provider_page(&state, ctx, current, steps, sample_text).await
}

async fn run_sync(
    state: AppState,
    headers: HeaderMap,
    name: String,
    body: Bytes,
    dry_run: bool,
) -> Result<Response, Response> {
    let (ctx, form, current) = enter_provider_form(&state, &headers, &name, &body).await?;
    let store = ctx.instance()?;
    let to = provider_path(&current.name);
    if !dry_run && !form.confirmed() {
        let bound = store
            .search_mailboxes(&gatehouse_store::MailboxSearch {
                auth_source: Some(current.name.clone()),
                window: gatehouse_store::Window::new(0, 1),
                ..gatehouse_store::MailboxSearch::default()
            })
            .await
            .map_err(unavailable)?
            .total;
        return Ok(Confirm {
            section: Section::IdentityProviders,
            title: format!("Sync {} now?", current.name),
            action: format!("{to}/sync"),
            effects: vec![
                format!("read every user of {} and change the mailboxes as its settings say: create, update and deactivate them", current.name),
                format!("{bound} mailbox(es) belong to {} now; the sync is refused if it would deactivate more than the configured share of them", current.name),
                "record the run in the job log (a dry run shows the same changes without making them)".into(),
            ],
            button: "Sync now",
            back: to,
        }
        .page(&ctx));
    }
    // A task of its own: if the request times out, the run still finishes (and releases its lease); its
    // outcome is in the job log either way.
    let (store, provider) = (store.clone(), current.name.clone());
    let run = tokio::spawn(async move { SourceRegistry::new(store).sync(&provider, dry_run, &()).await });
    let outcome = run.await.map_err(|err| unavailable(Error::Internal(format!("the sync task failed: {err}"))))?;
    match outcome {
        Ok(report) => {
            let mut notice = report.summary();
            for skipped in report.skipped_examples.iter().take(5) {
                notice.push_str(&format!("; skipped {}: {}", skipped.address, skipped.reason));
            }
            done(&state, ctx, notice, &to).await
        }
        Err(err) if err.fault() == Fault::Client => {
            done(&state, ctx, format!("The sync of {} was refused: {err}", current.name), &to).await
        }
        Err(err) => Err(unavailable(err)),
    }
}

/// `POST /admin/identity-providers/{name}/sync`: a sync now; the report is the notice.
pub(super) async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    run_sync(state, headers, name, body, false).await
}

/// `POST /admin/identity-providers/{name}/dry-run`: what a sync would do, changing nothing.
pub(super) async fn dry_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    run_sync(state, headers, name, body, true).await
}

/// `POST /admin/identity-providers/{name}/remove`: refused while mailboxes use it.
pub(super) async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    let store = ctx.instance()?;
    if !form.confirmed() {
        let provider = store.identity_provider(&name).await.map_err(unavailable)?.ok_or_else(not_found)?;
        return Ok(Confirm {
            section: Section::IdentityProviders,
            title: format!("Remove identity provider {}?", provider.name),
            action: format!("{}/remove", provider_path(&provider.name)),
            effects: vec![
                format!("remove {} with its settings, secrets and template mappings", provider.name),
                "refused while mailboxes still use it as their auth source: move them first".into(),
            ],
            button: "Remove identity provider",
            back: provider_path(&provider.name),
        }
        .page(&ctx));
    }
    match store.remove_identity_provider(&ctx.actor(), &name).await {
        Ok(()) => done(&state, ctx, format!("Identity provider {name} removed."), "/admin/identity-providers").await,
        Err(Error::NotFound { .. }) => Err(not_found()),
        Err(err) => {
            let to = provider_path(&name);
            finish(&state, ctx, Err(err), &to).await
        }
    }
}
