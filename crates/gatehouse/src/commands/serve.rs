//! `gatehouse serve`: opens the store (applying migrations), creates the first administrator on an empty
//! database, binds both listeners and serves until SIGTERM or SIGINT.

use anyhow::Context;
use gatehouse_core::Secret;
use gatehouse_server::{AppState, Bound, Listeners, SaslAddress};
use rand::distr::{Alphanumeric, SampleString};
use zeroize::Zeroizing;

use super::{CommandContext, ConfigProblem};
use crate::cli::ServeArgs;

/// Name of the administrator created on the first start.
const FIRST_ADMIN: &str = "admin";
/// How long a stopping server waits for the sync scheduler to give back its lease.
const SCHEDULER_STOP: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the server.
pub async fn run(ctx: &CommandContext, args: ServeArgs) -> anyhow::Result<()> {
    let sasl = args.sasl.or(ctx.config.listen.sasl.clone());
    let listeners = Listeners {
        public: args.public.unwrap_or(ctx.config.listen.public),
        internal: args.internal.unwrap_or(ctx.config.listen.internal),
        sasl: sasl
            .map(|text| text.parse::<SaslAddress>())
            .transpose()
            .map_err(|err| ConfigProblem(format!("--sasl / listen.sasl: {err}")))?,
        internal_tls: args.internal_tls.or(ctx.config.listen.internal_tls),
    };
    let limits = ctx.server_limits()?;
    let store = ctx.create_store().await?;
    tracing::info!(database = %ctx.config.database_url, "database ready");
    let hash_pool = ctx.hash_pool(None)?;
    bootstrap_admin(ctx, &store, &hash_pool).await?;
    // The dummy hash for unknown users is made now, so the first such login costs the same as later ones.
    hash_pool.warm_up().await.context("preparing the dummy hash")?;

    let tls = match listeners.internal_tls {
        Some(address) => Some(ctx.internal_tls_config(address)?),
        None => None,
    };
    let bound = Bound::bind(listeners, tls).await.map_err(|err| ConfigProblem(err.to_string()))?;
    let addrs = bound.local_addrs()?;
    let sasl = addrs.sasl.as_ref().map(|s| s.to_string()).unwrap_or_else(|| "off".into());
    let internal_tls = addrs.internal_tls.map(|a| a.to_string()).unwrap_or_else(|| "off".into());
    tracing::info!(public = %addrs.public, internal = %addrs.internal, internal_tls, sasl, "listening");
    let state = AppState {
        store: store.clone(),
        hash_pool: hash_pool.clone(),
        auth: ctx.auth_service(&store, &hash_pool)?,
        dovecot_callers: std::sync::Arc::new(ctx.dovecot_callers()?),
        userdb: std::sync::Arc::new(gatehouse_server::dovecot::Userdb::new(
            gatehouse_server::dovecot::UserdbSettings {
                uid: ctx.config.dovecot.mail_uid.clone(),
                gid: ctx.config.dovecot.mail_gid.clone(),
                home: ctx.config.dovecot.mail_home.clone().filter(|h| !h.is_empty()),
                mail: ctx.config.dovecot.mail_location.clone().filter(|m| !m.is_empty()),
            },
            std::time::Duration::from_secs(ctx.config.auth.outage_grace_seconds),
        )),
        web: std::sync::Arc::new(ctx.web_config()?),
    };
    // Dovecot's auth cache emptied of what changes, when doveadm's HTTP API is configured.
    if let Some(url) = ctx.config.dovecot.doveadm_url.as_deref().filter(|u| !u.is_empty()) {
        let key = ctx.config.dovecot.doveadm_api_key.as_ref();
        let doveadm =
            gatehouse_server::doveadm::Doveadm::start(url, key).map_err(|err| ConfigProblem(err.to_string()))?;
        state.auth.flush_dovecot_with(doveadm);
        tracing::info!(url, "changes empty Dovecot's auth cache through doveadm");
    }
    // Periodic identity-provider syncs; the lease in the store keeps other processes from running the same one.
    let (stop_scheduler, stopped) = tokio::sync::watch::channel(false);
    let scheduler = (ctx.config.sync.check_seconds > 0).then(|| {
        let registry = std::sync::Arc::new(gatehouse_sources::SourceRegistry::new(store.clone()));
        let tick = std::time::Duration::from_secs(ctx.config.sync.check_seconds);
        tokio::spawn(registry.run_scheduler(tick, stopped.clone()))
    });
    // SOGo's user list in SOGo's own database, when configured.
    if let Some(users_url) = ctx.config.sogo.users_url.clone().filter(|u| !u.is_empty()) {
        let every = std::time::Duration::from_secs(ctx.config.sogo.sync_seconds.max(5));
        tokio::spawn(gatehouse_server::sogo_users::SogoUsers::run(users_url, store.clone(), every, stopped.clone()));
    }
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop_scheduler.send(true);
    };
    bound.run(state, limits, shutdown).await.context("a listener failed")?;
    // A sync cut short by the shutdown gives its lease back before the database is closed.
    if let Some(scheduler) = scheduler
        && tokio::time::timeout(SCHEDULER_STOP, scheduler).await.is_err()
    {
        tracing::warn!("the sync scheduler did not stop in time; its lease expires by itself");
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `gatehouse init`: the database (with its migrations), the secret key file and the first administrator, as the
/// first `serve` would make them; nothing that exists already is changed.
pub async fn init(ctx: &CommandContext) -> anyhow::Result<()> {
    let store = ctx.create_store().await?;
    let hash_pool = ctx.hash_pool(Some(1))?;
    bootstrap_admin(ctx, &store, &hash_pool).await?;
    store.close().await;
    let path = ctx.secret_key_path();
    eprintln!(
        "Gatehouse is ready: database {}, secret key {}.",
        ctx.config.database_url,
        std::path::absolute(&path).unwrap_or(path).display()
    );
    Ok(())
}

/// Creates the `admin` account when no administrator exists yet. Its password comes from
/// `GATEHOUSE_ADMIN_PASSWORD` (or the configuration); otherwise a random one is printed once to stderr.
async fn bootstrap_admin(
    ctx: &CommandContext,
    store: &gatehouse_store::Store,
    pool: &gatehouse_passwords::HashPool,
) -> anyhow::Result<()> {
    if !store.list_admins(gatehouse_store::AdminRole::Admin).await?.is_empty() {
        return Ok(());
    }
    let configured = ctx.config.admin_password.clone().filter(|p| !p.is_empty());
    let password = match &configured {
        Some(secret) => Zeroizing::new(secret.expose().to_string()),
        None => Zeroizing::new(Alphanumeric.sample_string(&mut rand::rng(), 24)),
    };
    let shown = Secret::new(password.as_str());
    let hash = ctx.hash(pool, Zeroizing::new(password.as_bytes().to_vec())).await?;
    if store.bootstrap_admin(FIRST_ADMIN, hash).await? {
        if configured.is_some() {
            tracing::info!("created the administrator '{FIRST_ADMIN}' with the configured password");
        } else {
            eprintln!(
                "\nCreated the administrator '{FIRST_ADMIN}' with the password:\n\n    {}\n\nIt is shown only \
                 this once. Log in at /admin and change it.\n",
                shown.expose()
            );
        }
    }
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("received SIGTERM"),
        result = tokio::signal::ctrl_c() => {
            if let Err(err) = result.context("SIGINT handler") {
                tracing::error!(error = %err);
            }
            tracing::info!("received SIGINT");
        }
    }
}
