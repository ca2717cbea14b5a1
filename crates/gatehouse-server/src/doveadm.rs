//! Emptying Dovecot's auth cache of what changed: Dovecot remembers Gatehouse's answers for its `auth_cache_ttl`,
//! so without this a revoked app password, a deactivated mailbox or a changed password would keep working
//! through Dovecot's cache until that expires. With `dovecot.doveadm_url` and `dovecot.doveadm_api_key` set,
//! every change Gatehouse learns of — made in this process, or read from the change feed — flushes the
//! mailbox's entries through doveadm's HTTP API (`authCacheFlush`); a domain or an identity provider that
//! changed flushes the whole cache.
//!
//! Flushes are sent in the background, a few changes together (within [`GATHER`]), so a burst of changes (a
//! sync) is a few requests. A failed flush is logged (at most once a minute) and not retried: the entry then
//! lives until Dovecot's TTL, as it would without this.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use base64::Engine as _;
use gatehouse_core::{Error, Secret};
use gatehouse_store::LoginChange;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How long the flusher gathers changes before it sends them.
pub const GATHER: Duration = Duration::from_millis(50);
/// How long a flush may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How often failures are warned about.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What to flush.
#[derive(Debug)]
enum Flush {
    /// One mailbox's entries.
    User(String),
    /// Everything.
    All,
}

/// The handle the change listeners send flushes to.
#[derive(Debug, Clone)]
pub struct Doveadm {
    queue: mpsc::UnboundedSender<Flush>,
}

impl Doveadm {
    /// Starts the flusher for doveadm's HTTP API at `url` (`http://127.0.0.1:8080/doveadm/v1`) with its API key,
    /// which must be set. Must be called inside the async runtime.
    pub fn start(url: &str, api_key: Option<&Secret>) -> Result<Doveadm, Error> {
        let url = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::invalid(format!("dovecot.doveadm_url is not an http(s) URL: {url}")))?;
        let api_key = api_key
            .filter(|key| !key.expose().is_empty())
            .ok_or_else(|| Error::invalid("dovecot.doveadm_url is set but dovecot.doveadm_api_key is not"))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(api_key.expose());
        let mut authorization = HeaderValue::from_str(&format!("X-Dovecot-API {encoded}"))
            .map_err(|_| Error::invalid("dovecot.doveadm_api_key cannot be sent in a header"))?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| Error::Internal(format!("cannot build the doveadm client: {err}")))?;
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(receiver, client, url, authorization));
        Ok(Doveadm { queue })
    }

    /// Flushes what `change` touches (a web session: nothing).
    pub fn flush(&self, change: Option<&LoginChange>) {
        let flush = match change {
            Some(LoginChange::Mailbox(address)) => Flush::User(address.clone()),
            Some(LoginChange::Session(_)) => return,
            Some(LoginChange::Domain(_) | LoginChange::Provider(_)) | None => Flush::All,
        };
        // The flusher lives as long as the runtime; a send after that has nothing to flush.
        let _ = self.queue.send(flush);
    }
}

/// The flusher: gathers, then sends one request per gathering.
async fn run(
    mut receiver: mpsc::UnboundedReceiver<Flush>,
    client: reqwest::Client,
    url: url::Url,
    authorization: HeaderValue,
) {
    let mut last_warning: Option<Instant> = None;
    while let Some(first) = receiver.recv().await {
        let mut users = BTreeSet::new();
        let mut all = false;
        let mut take = |flush: Flush| match flush {
            Flush::User(user) => {
                users.insert(user);
            }
            Flush::All => all = true,
        };
        take(first);
        let deadline = tokio::time::Instant::now() + GATHER;
        while let Ok(Some(flush)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
            take(flush);
        }
        // Without users, doveadm flushes the whole cache.
        let parameters = if all { json!({}) } else { json!({ "user": users }) };
        let body = json!([["authCacheFlush", parameters, "gatehouse"]]);
        match send(&client, &url, &authorization, &body).await {
            Ok(()) => tracing::debug!(all, users = users.len(), "Dovecot's auth cache flushed"),
            Err(why) => {
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(
                        "cannot flush Dovecot's auth cache ({why}); changed credentials may keep working through \
                         it until its TTL"
                    );
                    last_warning = Some(Instant::now());
                }
            }
        }
    }
}

/// Sends one request and reads doveadm's answer: `[["doveadmResponse", …, tag]]` or `[["error", {…}, tag]]`.
async fn send(
    client: &reqwest::Client,
    url: &url::Url,
    authorization: &HeaderValue,
    body: &Value,
) -> Result<(), String> {
    let answer = client
        .post(url.clone())
        .header(reqwest::header::AUTHORIZATION, authorization.clone())
        .json(body)
        .send()
        .await
        .map_err(|err| format!("doveadm at {url} cannot be reached: {err}"))?;
    let status = answer.status();
    let text = answer.text().await.map_err(|err| format!("reading doveadm's answer: {err}"))?;
    if !status.is_success() {
        return Err(format!("doveadm answered HTTP {status}"));
    }
    let parsed: Value = serde_json::from_str(&text).map_err(|_| "doveadm's answer is not JSON".to_string())?;
    match parsed.get(0).and_then(|reply| reply.get(0)).and_then(Value::as_str) {
        Some("doveadmResponse") => Ok(()),
        Some("error") => Err(format!("doveadm refused the flush: {}", parsed[0][1])),
        _ => Err("doveadm's answer has an unexpected form".to_string()),
    }
}
