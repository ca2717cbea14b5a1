//! `gatehouse config …`: configuration for the mail server's own programs, filled in with this instance's
//! addresses and secrets. The templates live in `integrations/` and are compiled into the binary.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::CommandContext;
use crate::cli::ConfigCommand;

const DOVECOT_CONF: &str = include_str!("../../../../integrations/dovecot/gatehouse-auth.conf");
const DOVECOT_LUA: &str = include_str!("../../../../integrations/dovecot/gatehouse-passdb.lua");
const DOVECOT_OAUTH2: &str = include_str!("../../../../integrations/dovecot/gatehouse-oauth2.conf");
const DOVECOT_OAUTH2_ARGS: &str = include_str!("../../../../integrations/dovecot/gatehouse-oauth2.conf.ext");
const DOVEADM_CONF: &str = include_str!("../../../../integrations/dovecot/gatehouse-doveadm.conf");
const NGINX_CONF: &str = include_str!("../../../../integrations/nginx/gatehouse-sogo.conf");
const NGINX_SOGO_PROXY: &str = include_str!("../../../../integrations/nginx/sogo-proxy.inc");
const SOGO_CONF: &str = include_str!("../../../../integrations/sogo/sogo.conf");
const POSTFIX_MAIN_CF: &str = include_str!("../../../../integrations/postfix/main.cf");

/// Whom Postfix asks about SMTP AUTH.
pub enum PostfixRoute {
    /// Gatehouse's auth-protocol listener (`listen.sasl`).
    Gatehouse(gatehouse_server::SaslAddress),
    /// Dovecot's auth service at this `smtpd_sasl_path`, which asks Gatehouse.
    Dovecot(String),
}

/// Postfix's queue directory on Debian: smtpd runs chrooted there, and names sockets below it relative to it.
const POSTFIX_QUEUE_DIRECTORY: &str = "/var/spool/postfix/";

/// The `main.cf` lines for SMTP AUTH through `route`.
pub fn postfix_conf(route: &PostfixRoute) -> anyhow::Result<String> {
    let (sasl_path, route_text) = match route {
        PostfixRoute::Gatehouse(gatehouse_server::SaslAddress::Tcp(addr)) => (
            format!("inet:{}", reachable(*addr)),
            format!(
                "# Postfix asks Gatehouse's auth-protocol listener (listen.sasl = {addr}) directly, without Dovecot.\n"
            ),
        ),
        PostfixRoute::Gatehouse(gatehouse_server::SaslAddress::Unix(path)) => {
            let shown = path.display().to_string();
            let mut text = format!(
                "# Postfix asks Gatehouse's auth-protocol listener (listen.sasl = unix:{shown}) directly, without \
                 Dovecot.\n"
            );
            let sasl_path = match shown.strip_prefix(POSTFIX_QUEUE_DIRECTORY) {
                Some(relative) => relative.to_string(),
                None => {
                    text.push_str(
                        "# smtpd reaches a socket outside /var/spool/postfix only when it does not run chrooted (the \
                         chroot\n# column of its master.cf line is n); a socket in /var/spool/postfix/private avoids \
                         that.\n",
                    );
                    shown
                }
            };
            (sasl_path, text)
        }
        PostfixRoute::Dovecot(path) => {
            if path.is_empty() || path.contains(char::is_whitespace) {
                return Err(super::ConfigProblem(format!(
                    "--dovecot-auth '{path}' is not a socket path (private/auth, /run/dovecot/auth-client) or \
                     inet:host:port"
                ))
                .into());
            }
            let listener = if path.starts_with("inet:") {
                "an inet_listener in its service auth".to_string()
            } else {
                let absolute =
                    if path.starts_with('/') { path.clone() } else { format!("{POSTFIX_QUEUE_DIRECTORY}{path}") };
                format!(
                    "with this in dovecot.conf:\n#   service auth {{\n#     unix_listener {absolute} {{\n#       mode = \
                     0660\n#       user = postfix\n#       group = postfix\n#     }}\n#   }}"
                )
            };
            let text = format!(
                "# Postfix asks Dovecot's auth service, which asks Gatehouse through the passdb of `gatehouse config \
                 dovecot`.\n# Dovecot must listen where smtpd_sasl_path points, {listener}\n"
            );
            (path.clone(), text)
        }
    };
    Ok(POSTFIX_MAIN_CF.replace("@ROUTE@", &route_text).replace("@SASL_PATH@", &sasl_path))
}

/// The nginx locations, with Gatehouse's listeners, SOGo's address and static files, the shared secret (empty:
/// none) and the public URL redirects go to (`None`: redirects relative to the request, never to the host the
/// client named).
pub fn nginx_conf(
    public: &str,
    internal: &str,
    sogo: &str,
    resources: &str,
    secret: &str,
    public_url: Option<&str>,
) -> String {
    let secret_header = if secret.is_empty() {
        String::new()
    } else {
        format!("    proxy_set_header X-Gatehouse-Secret \"{}\";\n", secret.replace('"', "\\\""))
    };
    let (relative, base) = match public_url.map(|u| u.trim().trim_end_matches('/')).filter(|u| !u.is_empty()) {
        Some(url) => (String::new(), url.to_string()),
        None => ("    absolute_redirect off;\n".to_string(), String::new()),
    };
    NGINX_CONF
        .replace("@RELATIVE_REDIRECTS@", &relative)
        .replace("@REDIRECT_BASE@", &base)
        .replace("@SOGO_PROXY@", NGINX_SOGO_PROXY)
        .replace("@SECRET_HEADER@", &secret_header)
        .replace("@GATEHOUSE_PUBLIC@", public.trim_end_matches('/'))
        .replace("@GATEHOUSE_INTERNAL@", internal.trim_end_matches('/'))
        .replace("@SOGO_RESOURCES@", resources.trim_end_matches('/'))
        .replace("@SOGO@", sogo.trim_end_matches('/'))
}

/// The SOGo settings.
pub fn sogo_conf(imap: &str, sieve: &str, smtp: &str, view_url: &str, encryption_key: &str) -> String {
    SOGO_CONF
        .replace("@IMAP@", imap)
        .replace("@SIEVE@", sieve)
        .replace("@SMTP@", smtp)
        .replace("@VIEW_URL@", view_url)
        .replace("@ENCRYPTION_KEY@", encryption_key)
}

/// The `sogo_users` view over Gatehouse's mailboxes: active mailboxes with webmail enabled in active domains.
/// The password column holds `!`, which no crypt hash ever equals, so SOGo's own login form opens nothing.
pub fn sogo_view_sql(kind: gatehouse_core::DatabaseKind) -> String {
    let (active, concat) = match kind {
        gatehouse_core::DatabaseKind::Postgres => ("TRUE", "(',' || m.protocols || ',') LIKE '%,sogo,%'"),
        _ => ("1", "CONCAT(',', m.protocols, ',') LIKE '%,sogo,%'"),
    };
    format!(
        "CREATE VIEW sogo_users AS\n  SELECT m.address AS c_uid, m.address AS c_name, '!' AS c_password,\n         \
         m.display_name AS c_cn, m.address AS mail\n  FROM mailboxes m JOIN domains d ON d.id = m.domain_id\n  \
         WHERE m.active = {active} AND d.active = {active} AND ({concat} OR m.protocols = 'all');\n"
    )
}

/// A Lua string literal's contents.
fn lua_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The address other programs use to reach a listener bound to `addr` (wildcards become loopback).
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

/// The Dovecot passdb configuration for a Lua script installed at `lua_path`.
pub fn dovecot_conf(lua_path: &str) -> String {
    DOVECOT_CONF.replace("@LUA_PATH@", lua_path)
}

/// The Lua script, asking `url` with `secret` (empty: none).
pub fn dovecot_lua(url: &str, secret: &str) -> String {
    DOVECOT_LUA.replace("@GATEHOUSE_URL@", &lua_escape(url)).replace("@GATEHOUSE_SECRET@", &lua_escape(secret))
}

/// Dovecot's settings for doveadm's HTTP API as `dovecot` names it: the API key, the listener on the URL's address
/// and port, and only the command Gatehouse sends allowed.
pub fn doveadm_conf(dovecot: &gatehouse_config::Dovecot) -> anyhow::Result<String> {
    let problem = |what: &str| super::ConfigProblem(what.into());
    let url = dovecot.doveadm_url.as_deref().ok_or_else(|| {
        problem("set dovecot.doveadm_url (GATEHOUSE_DOVECOT__DOVEADM_URL), e.g. http://127.0.0.1:8080/doveadm/v1")
    })?;
    let key = dovecot.doveadm_api_key.as_ref().filter(|k| !k.expose().is_empty()).ok_or_else(|| {
        problem("set dovecot.doveadm_api_key (GATEHOUSE_DOVECOT__DOVEADM_API_KEY): a long random string")
    })?;
    let parsed = url::Url::parse(url).map_err(|err| problem(&format!("dovecot.doveadm_url {url}: {err}")))?;
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return Err(problem(&format!("dovecot.doveadm_url {url} names no host and port")).into());
    };
    if key.expose().contains(['"', '\n', '\\']) {
        return Err(problem("dovecot.doveadm_api_key must not contain quotes, backslashes or line breaks").into());
    }
    Ok(DOVEADM_CONF
        .replace("@ADDRESS@", host.trim_start_matches('[').trim_end_matches(']'))
        .replace("@PORT@", &port.to_string())
        .replace("@API_KEY@", key.expose()))
}

/// Runs a `config` command.
pub fn run(ctx: &CommandContext, command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Nginx { public, internal, sogo, sogo_resources } => {
            let public = public.unwrap_or_else(|| format!("http://{}", reachable(ctx.config.listen.public)));
            let internal = internal.unwrap_or_else(|| format!("http://{}", reachable(ctx.config.listen.internal)));
            let secret = ctx.internal_secret()?;
            let public_url = ctx.config.web.public_url.as_deref();
            out!("{}", nginx_conf(&public, &internal, &sogo, &sogo_resources, secret.expose(), public_url));
        }
        ConfigCommand::Sogo { imap, sieve, smtp, view_url } => {
            use rand::distr::{Alphanumeric, SampleString};
            let kind = ctx.config.database_url.kind().map_err(|err| anyhow::anyhow!(err))?;
            let users_url = ctx.config.sogo.users_url.as_ref().filter(|u| !u.is_empty());
            let view_url = match (view_url, users_url, kind) {
                (Some(url), _, _) => url,
                (None, Some(users_url), _) => gatehouse_server::sogo_users::view_url(users_url.expose()),
                (None, None, gatehouse_core::DatabaseKind::Sqlite) => {
                    return Err(super::ConfigProblem(
                        "SOGo reads its users from PostgreSQL or MariaDB, not from Gatehouse's SQLite database. SOGo \
                         keeps its own data in one of those anyway: set sogo.users_url (GATEHOUSE_SOGO__USERS_URL) to \
                         that database, e.g. postgres://sogo:PASSWORD@127.0.0.1/sogo, and Gatehouse keeps the table \
                         sogo_users there for it (`gatehouse sogo sync` fills it now, `gatehouse serve` keeps it up \
                         to date); then run `gatehouse config sogo` again"
                            .into(),
                    )
                    .into());
                }
                (None, None, _) => {
                    let url = ctx.config.database_url.expose().to_string();
                    let url = url.replacen("postgres://", "postgresql://", 1);
                    format!("{}/sogo_users", url.split('?').next().unwrap_or(&url))
                }
            };
            let key = Alphanumeric.sample_string(&mut rand::rng(), 32);
            out!("{}", sogo_conf(&imap, &sieve, &smtp, &view_url, &key));
            if users_url.is_none() && kind != gatehouse_core::DatabaseKind::Sqlite {
                outln!("\n/* The view, created once in Gatehouse's database:\n\n{}*/", sogo_view_sql(kind));
            }
        }
        ConfigCommand::Postfix { via, dovecot_auth } => {
            let route = if via == "dovecot" {
                PostfixRoute::Dovecot(dovecot_auth)
            } else {
                let listen = ctx.config.listen.sasl.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
                    super::ConfigProblem(
                        "listen.sasl (GATEHOUSE_LISTEN__SASL) is not set, so Gatehouse's auth-protocol listener is \
                         off: set it, e.g. to unix:/var/spool/postfix/private/gatehouse-auth or 127.0.0.1:10013, or \
                         print the lines for Postfix through Dovecot with --via dovecot"
                            .into(),
                    )
                })?;
                let address = listen.parse().map_err(|err| super::ConfigProblem(format!("listen.sasl: {err}")))?;
                PostfixRoute::Gatehouse(address)
            };
            out!("{}", postfix_conf(&route)?);
        }
        ConfigCommand::Secret => outln!("{}", ctx.internal_secret()?.expose()),
        ConfigCommand::Dovecot { part, lua_path, oauth2_path, url, oauth2_url } => {
            let internal = reachable(ctx.config.listen.internal);
            let secret = ctx.internal_secret()?;
            let secret = secret.expose();
            let all = part == "all";
            let header = |what: &str| {
                if all {
                    outln!("{what}");
                }
            };
            if all || part == "conf" {
                header("# ---- dovecot.conf (or conf.d/auth-gatehouse.conf.ext) ----");
                out!("{}", dovecot_conf(&lua_path));
            }
            if all || part == "lua" {
                header(&format!("\n-- ---- {lua_path} ----"));
                let url = url.unwrap_or_else(|| format!("http://{internal}/dovecot/auth"));
                out!("{}", dovecot_lua(&url, secret));
            }
            if all || part == "oauth2" {
                header("\n# ---- dovecot.conf, after the part above: access tokens of identity providers ----");
                out!("{}", DOVECOT_OAUTH2.replace("@OAUTH2_ARGS_PATH@", &oauth2_path));
            }
            if part == "doveadm" || (all && ctx.config.dovecot.doveadm_url.is_some()) {
                header("\n# ---- dovecot.conf: doveadm's HTTP API, for Gatehouse to empty the auth cache ----");
                out!("{}", doveadm_conf(&ctx.config.dovecot)?);
            }
            if all || part == "oauth2-args" {
                header(&format!("\n# ---- {oauth2_path} ----"));
                let oauth2_url = oauth2_url.unwrap_or_else(|| format!("http://{internal}/dovecot/oauth2"));
                out!(
                    "{}",
                    DOVECOT_OAUTH2_ARGS.replace("@GATEHOUSE_URL@", &oauth2_url).replace("@GATEHOUSE_SECRET@", secret)
                );
            }
        }
    }
    Ok(())
}

/// `gatehouse sogo sync`: SOGo's user list brought up to date now.
pub async fn sogo_users(ctx: &CommandContext, command: crate::cli::SogoCommand) -> anyhow::Result<()> {
    let crate::cli::SogoCommand::Sync = command;
    let Some(users_url) = ctx.config.sogo.users_url.clone().filter(|u| !u.is_empty()) else {
        return Err(super::ConfigProblem(
            "sogo.users_url (GATEHOUSE_SOGO__USERS_URL) is not set: name SOGo's PostgreSQL or MariaDB database".into(),
        )
        .into());
    };
    let store = ctx.store().await?;
    let users = gatehouse_server::sogo_users::SogoUsers::connect(&users_url).await?;
    let counts = users.sync(&store).await?;
    store.close().await;
    eprintln!(
        "SOGo's user list: {} added, {} updated, {} removed, {} unchanged",
        counts.added, counts.updated, counts.removed, counts.unchanged
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_path(route: &PostfixRoute) -> String {
        let conf = postfix_conf(route).unwrap();
        conf.lines().find_map(|line| line.strip_prefix("smtpd_sasl_path = ")).unwrap().to_string()
    }

    #[test]
    fn postfix_names_gatehouse_sockets_as_smtpd_reaches_them() {
        let gatehouse = |listen: &str| PostfixRoute::Gatehouse(listen.parse().unwrap());
        assert_eq!(sasl_path(&gatehouse("0.0.0.0:10013")), "inet:127.0.0.1:10013");
        assert_eq!(sasl_path(&gatehouse("[::1]:10013")), "inet:[::1]:10013");
        // Inside the queue directory: relative, so a chrooted smtpd finds it.
        let queued = gatehouse("unix:/var/spool/postfix/private/gatehouse-auth");
        assert_eq!(sasl_path(&queued), "private/gatehouse-auth");
        assert!(!postfix_conf(&queued).unwrap().contains("chroot"));
        let elsewhere = gatehouse("unix:/run/gatehouse/auth");
        assert_eq!(sasl_path(&elsewhere), "/run/gatehouse/auth");
        assert!(postfix_conf(&elsewhere).unwrap().contains("does not run chrooted"));
        assert_eq!(sasl_path(&PostfixRoute::Dovecot("inet:127.0.0.1:10001".into())), "inet:127.0.0.1:10001");
    }
}
