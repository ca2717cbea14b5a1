//! Reading a mailcow database as mailcow's own schema has it (`data/web/inc/init_db.inc.php`): domains with their
//! limits, mailboxes with their hash, quota, flags and auth source, administrators with their domains and
//! `login_as`, second factors, app passwords, API keys, mailbox templates and the identity-provider settings — in
//! one read-only transaction, so the snapshot is consistent and nothing can
//! be written there.

use anyhow::Context;
use sea_orm::{AccessMode, ConnectOptions, ConnectionTrait, Database, Statement, TransactionTrait};

/// A mailcow domain (`domain` table; quotas in MiB).
#[derive(Debug, Clone)]
pub struct MailcowDomain {
    /// `domain`.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `active` = 1.
    pub active: bool,
    /// `mailboxes`: how many mailboxes it may have.
    pub max_mailboxes: i64,
    /// `defquota`.
    pub default_quota_mib: i64,
    /// `maxquota`: the most one mailbox may have.
    pub max_quota_mib: i64,
    /// `quota`: the most all its mailboxes may have together.
    pub total_quota_mib: i64,
}

/// A mailcow mailbox (`mailbox` table).
#[derive(Debug, Clone)]
pub struct MailcowMailbox {
    /// `username`: the address.
    pub username: String,
    /// `name`: the display name.
    pub name: String,
    /// `password`: a Dovecot hash with its `{SCHEME}` prefix; empty for identity-provider accounts.
    pub password: String,
    /// `quota`, in bytes.
    pub quota_bytes: i64,
    /// `attributes`: `imap_access`, `force_pw_update`, … as strings `"1"`/`"0"` (or numbers).
    pub attributes: serde_json::Value,
    /// `authsource`: `mailcow`, `ldap`, `keycloak` or `generic-oidc`.
    pub authsource: String,
    /// `active`: 1 active, 0 inactive, 2 receives mail but may not log in.
    pub active: i64,
    /// `kind`: empty for a person's mailbox, else a resource SOGo books (`location`, `equipment`, …).
    pub kind: String,
}

impl MailcowMailbox {
    /// Whether attribute `name` is on (`"1"`, `1` or `true`); a missing attribute is off, as mailcow's Dovecot
    /// queries read it.
    pub fn flag(&self, name: &str) -> bool {
        attribute_on(&self.attributes, name)
    }
}

/// A mailcow administrator (`admin` table) with its domains (`domain_admins`) and `login_as` (`da_acl`).
#[derive(Debug, Clone)]
pub struct MailcowAdmin {
    /// `username`.
    pub username: String,
    /// `password`: a Dovecot hash.
    pub password: String,
    /// `superadmin` = 1: an administrator; else a domain administrator.
    pub superadmin: bool,
    /// `active` = 1.
    pub active: bool,
    /// `attributes`: `force_pw_update`, `force_tfa`.
    pub attributes: serde_json::Value,
    /// The active `domain_admins` rows' domains.
    pub domains: Vec<String>,
    /// `da_acl.login_as` (mailcow's default, on, when the row is missing).
    pub login_as: bool,
}

/// An app password (`app_passwd` table): a hash of the bare secret mail clients type.
#[derive(Debug, Clone)]
pub struct MailcowAppPassword {
    /// `mailbox`: the owner's address.
    pub mailbox: String,
    /// `name`.
    pub name: String,
    /// `password`: a Dovecot hash.
    pub password: String,
    /// The protocols whose `*_access` column is 1 (`imap`, `pop3`, `smtp`, `sieve`, `dav`, `eas`).
    pub protocols: Vec<&'static str>,
    /// `active` = 1.
    pub active: bool,
}

/// An API key (`api` table). mailcow stores the key itself.
#[derive(Debug, Clone)]
pub struct MailcowApiKey {
    /// `api_key`.
    pub key: String,
    /// `allow_from`: addresses and networks, comma-separated.
    pub allow_from: String,
    /// `skip_ip_check` = 1: any address.
    pub skip_ip_check: bool,
    /// `access` = `rw`.
    pub read_write: bool,
    /// `active` = 1.
    pub active: bool,
}

/// A mailbox template (`templates` table, `type = 'mailbox'`).
#[derive(Debug, Clone)]
pub struct MailcowTemplate {
    /// `template`: its name.
    pub name: String,
    /// `attributes`: `quota` (bytes), `active`, `*_access`, ….
    pub attributes: serde_json::Value,
}

/// A second factor (`tfa` table).
#[derive(Debug, Clone)]
pub struct MailcowSecondFactor {
    /// `username`: a mailbox's address or an administrator's name.
    pub username: String,
    /// `authmech`: `totp`, `webauthn`, `yubi_otp`, `u2f` or `hotp`.
    pub authmech: String,
    /// `key_id`: the name the user gave it.
    pub key_id: String,
    /// `secret`: for TOTP the base32 key.
    pub secret: String,
}

/// Whether attribute `name` of a mailcow `attributes` object is on (`"1"`, `1` or `true`); missing is off, as
/// mailcow's queries read it.
pub fn attribute_on(attributes: &serde_json::Value, name: &str) -> bool {
    match attributes.get(name) {
        Some(serde_json::Value::String(text)) => text.trim() == "1",
        Some(serde_json::Value::Number(number)) => number.as_i64() == Some(1),
        Some(serde_json::Value::Bool(on)) => *on,
        _ => false,
    }
}

/// What the import reads from mailcow.
#[derive(Debug, Default)]
pub struct MailcowData {
    /// Every domain, by name.
    pub domains: Vec<MailcowDomain>,
    /// Every mailbox, by address.
    pub mailboxes: Vec<MailcowMailbox>,
    /// Every administrator and domain administrator, by name.
    pub admins: Vec<MailcowAdmin>,
    /// Every second factor, oldest first.
    pub second_factors: Vec<MailcowSecondFactor>,
    /// Every app password, oldest first.
    pub app_passwords: Vec<MailcowAppPassword>,
    /// Every API key.
    pub api_keys: Vec<MailcowApiKey>,
    /// Every mailbox template.
    pub templates: Vec<MailcowTemplate>,
    /// The identity-provider settings (`identity_provider` table: key → value, secrets included).
    pub identity_provider: std::collections::BTreeMap<String, String>,
}

/// Reads mailcow's database at `url` (a `mysql://` URL) in one read-only transaction.
pub async fn read(url: &str) -> anyhow::Result<MailcowData> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(1)
        .connect_timeout(std::time::Duration::from_secs(5))
        .acquire_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|err| gatehouse_core::Error::Unavailable(format!("cannot connect to mailcow's database: {}", err)))?;
    let txn = db
        .begin_with_config(None, Some(AccessMode::ReadOnly))
        .await
        .map_err(|err| gatehouse_core::Error::Unavailable(format!("mailcow's database: {}", err)))?;
    let backend = txn.get_database_backend();
    let query = |sql: &str| Statement::from_string(backend, sql.to_string());
    let read_error = |table: &str| format!("reading mailcow's {table} table (is this mailcow's database?)");

    let rows = txn
        .query_all_raw(query(
            "SELECT domain, COALESCE(description, '') AS description, CAST(active AS SIGNED) AS active, \
             CAST(mailboxes AS SIGNED) AS mailboxes, CAST(defquota AS SIGNED) AS defquota, \
             CAST(maxquota AS SIGNED) AS maxquota, CAST(quota AS SIGNED) AS quota FROM domain ORDER BY domain",
        ))
        .await
        .with_context(|| read_error("domain"))?;
    let mut data = MailcowData::default();
    for row in rows {
        data.domains.push(MailcowDomain {
            name: row.try_get("", "domain")?,
            description: row.try_get("", "description")?,
            active: row.try_get::<i64>("", "active")? == 1,
            max_mailboxes: row.try_get("", "mailboxes")?,
            default_quota_mib: row.try_get("", "defquota")?,
            max_quota_mib: row.try_get("", "maxquota")?,
            total_quota_mib: row.try_get("", "quota")?,
        });
    }

    let rows = txn
        .query_all_raw(query(
            "SELECT username, COALESCE(name, '') AS name, password, CAST(quota AS SIGNED) AS quota, \
             COALESCE(CAST(attributes AS CHAR), '{}') AS attributes, COALESCE(CAST(authsource AS CHAR), 'mailcow') \
             AS authsource, CAST(active AS SIGNED) AS active, kind FROM mailbox ORDER BY username",
        ))
        .await
        .with_context(|| read_error("mailbox"))?;
    for row in rows {
        let username: String = row.try_get("", "username")?;
        let attributes: String = row.try_get("", "attributes")?;
        let attributes = serde_json::from_str(&attributes)
            .with_context(|| format!("mailcow's attributes of {username} are not JSON"))?;
        data.mailboxes.push(MailcowMailbox {
            name: row.try_get("", "name")?,
            password: row.try_get("", "password")?,
            quota_bytes: row.try_get("", "quota")?,
            attributes,
            authsource: row.try_get("", "authsource")?,
            active: row.try_get("", "active")?,
            kind: row.try_get("", "kind")?,
            username,
        });
    }

    let rows = txn
        .query_all_raw(query("SELECT username, domain FROM domain_admins WHERE active = 1 ORDER BY username, domain"))
        .await
        .with_context(|| read_error("domain_admins"))?;
    let mut admin_domains: Vec<(String, String)> = Vec::new();
    for row in rows {
        admin_domains.push((row.try_get("", "username")?, row.try_get("", "domain")?));
    }
    let rows = txn
        .query_all_raw(query("SELECT username, CAST(login_as AS SIGNED) AS login_as FROM da_acl"))
        .await
        .with_context(|| read_error("da_acl"))?;
    let mut login_as: Vec<(String, bool)> = Vec::new();
    for row in rows {
        login_as.push((row.try_get("", "username")?, row.try_get::<i64>("", "login_as")? == 1));
    }
    let rows = txn
        .query_all_raw(query(
            "SELECT username, password, CAST(superadmin AS SIGNED) AS superadmin, CAST(active AS SIGNED) AS active, \
             COALESCE(CAST(attributes AS CHAR), '{}') AS attributes FROM admin ORDER BY username",
        ))
        .await
        .with_context(|| read_error("admin"))?;
    for row in rows {
        let username: String = row.try_get("", "username")?;
        let attributes: String = row.try_get("", "attributes")?;
        data.admins.push(MailcowAdmin {
            password: row.try_get("", "password")?,
            superadmin: row.try_get::<i64>("", "superadmin")? == 1,
            active: row.try_get::<i64>("", "active")? == 1,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
            domains: admin_domains.iter().filter(|(name, _)| *name == username).map(|(_, d)| d.clone()).collect(),
            login_as: login_as.iter().find(|(name, _)| *name == username).is_none_or(|(_, on)| *on),
            username,
        });
    }
    let rows = txn
        .query_all_raw(query(
            "SELECT username, COALESCE(CAST(authmech AS CHAR), '') AS authmech, key_id, \
             COALESCE(secret, '') AS secret FROM tfa ORDER BY id",
        ))
        .await
        .with_context(|| read_error("tfa"))?;
    for row in rows {
        data.second_factors.push(MailcowSecondFactor {
            username: row.try_get("", "username")?,
            authmech: row.try_get("", "authmech")?,
            key_id: row.try_get("", "key_id")?,
            secret: row.try_get("", "secret")?,
        });
    }
    let rows = txn
        .query_all_raw(query(
            "SELECT mailbox, name, password, CAST(active AS SIGNED) AS active, CAST(imap_access AS SIGNED) AS imap, \
             CAST(pop3_access AS SIGNED) AS pop3, CAST(smtp_access AS SIGNED) AS smtp, \
             CAST(sieve_access AS SIGNED) AS sieve, CAST(dav_access AS SIGNED) AS dav, \
             CAST(eas_access AS SIGNED) AS eas FROM app_passwd ORDER BY id",
        ))
        .await
        .with_context(|| read_error("app_passwd"))?;
    for row in rows {
        let mut protocols = Vec::new();
        for protocol in ["imap", "pop3", "smtp", "sieve", "dav", "eas"] {
            if row.try_get::<i64>("", protocol)? == 1 {
                protocols.push(protocol);
            }
        }
        data.app_passwords.push(MailcowAppPassword {
            mailbox: row.try_get("", "mailbox")?,
            name: row.try_get("", "name")?,
            password: row.try_get("", "password")?,
            protocols,
            active: row.try_get::<i64>("", "active")? == 1,
        });
    }
    let rows = txn
        .query_all_raw(query(
            "SELECT api_key, allow_from, CAST(skip_ip_check AS SIGNED) AS skip_ip_check, \
             CAST(access AS CHAR) AS access, CAST(active AS SIGNED) AS active FROM api ORDER BY created, api_key",
        ))
        .await
        .with_context(|| read_error("api"))?;
    for row in rows {
        data.api_keys.push(MailcowApiKey {
            key: row.try_get("", "api_key")?,
            allow_from: row.try_get("", "allow_from")?,
            skip_ip_check: row.try_get::<i64>("", "skip_ip_check")? == 1,
            read_write: row.try_get::<String>("", "access")? == "rw",
            active: row.try_get::<i64>("", "active")? == 1,
        });
    }
    let rows = txn
        .query_all_raw(query(
            "SELECT template, COALESCE(CAST(attributes AS CHAR), '{}') AS attributes FROM templates \
             WHERE type = 'mailbox' ORDER BY id",
        ))
        .await
        .with_context(|| read_error("templates"))?;
    for row in rows {
        let attributes: String = row.try_get("", "attributes")?;
        data.templates.push(MailcowTemplate {
            name: row.try_get("", "template")?,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        });
    }
    let rows = txn
        .query_all_raw(query("SELECT `key`, COALESCE(CAST(`value` AS CHAR), '') AS `value` FROM identity_provider"))
        .await
        .with_context(|| read_error("identity_provider"))?;
    for row in rows {
        data.identity_provider.insert(row.try_get("", "key")?, row.try_get("", "value")?);
    }
    txn.commit().await?;
    let _ = db.close().await;
    Ok(data)
}

/// An app link as mailcow keeps it in Redis (key `APP_LINKS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailcowAppLink {
    /// The app's name, which the link says.
    pub name: String,
    /// `link`: where it leads on the login page.
    pub link: String,
    /// `user_link`: where it leads for a logged-in user (`%u` stands for the mailbox).
    pub user_link: String,
    /// `hide`: not shown on the login page.
    pub hidden: bool,
}

/// The Redis key of mailcow's app links.
pub const APP_LINKS_KEY: &str = "APP_LINKS";

/// Reads mailcow's app links from its Redis at `url` (`redis://[:password@]host:port`): one `GET`, nothing
/// written. A missing key means no app links.
pub async fn read_app_links(url: &str) -> anyhow::Result<Vec<MailcowAppLink>> {
    let unavailable = |err: &dyn std::fmt::Display| {
        gatehouse_core::Error::Unavailable(format!("mailcow's Redis: {}", err.to_string().replace('\n', " ")))
    };
    let client = redis::Client::open(url)
        .map_err(|err| crate::commands::ConfigProblem(format!("--redis: not a Redis URL ({err})")))?;
    let read = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("GET").arg(APP_LINKS_KEY).query_async::<Option<String>>(&mut connection).await
    };
    let value = match tokio::time::timeout(std::time::Duration::from_secs(10), read).await {
        Err(_) => return Err(unavailable(&"no answer within 10 seconds").into()),
        Ok(Err(err))
            if matches!(err.kind(), redis::ErrorKind::AuthenticationFailed) || err.code() == Some("NOAUTH") =>
        {
            return Err(crate::commands::ConfigProblem(format!(
                "mailcow's Redis refused the password ({}); give REDISPASS from mailcow.conf in the URL \
                 (redis://:PASSWORD@127.0.0.1:7654) or in MAILCOW_REDIS_PASSWORD",
                err.to_string().replace('\n', " ")
            ))
            .into());
        }
        Ok(Err(err)) => return Err(unavailable(&err).into()),
        Ok(Ok(value)) => value,
    };
    match value {
        None => Ok(Vec::new()),
        Some(text) => parse_app_links(&text),
    }
}

/// Parses mailcow's `APP_LINKS` value: a JSON list (or, as PHP writes a list with gaps, an object) of one-key
/// objects `{name: {link, user_link, hide}}`; older mailcow versions kept `{name: url}`, which stands for both
/// links.
pub fn parse_app_links(text: &str) -> anyhow::Result<Vec<MailcowAppLink>> {
    let value: serde_json::Value = serde_json::from_str(text).context("mailcow's APP_LINKS in Redis is not JSON")?;
    let entries: Vec<&serde_json::Value> = match &value {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(items) => items.iter().collect(),
        serde_json::Value::Object(items) => items.values().collect(),
        _ => anyhow::bail!("mailcow's APP_LINKS in Redis is not a list of app links"),
    };
    let mut links = Vec::new();
    for entry in entries {
        let Some(apps) = entry.as_object() else {
            anyhow::bail!("mailcow's APP_LINKS in Redis holds an entry that is not an object: {entry}");
        };
        for (name, link) in apps {
            let text = |field: &str| link.get(field).and_then(serde_json::Value::as_str).unwrap_or("").to_string();
            let parsed = match link {
                serde_json::Value::String(url) => {
                    MailcowAppLink { name: name.clone(), link: url.clone(), user_link: url.clone(), hidden: false }
                }
                serde_json::Value::Object(_) => MailcowAppLink {
                    name: name.clone(),
                    link: text("link"),
                    user_link: text("user_link"),
                    hidden: match link.get("hide") {
                        Some(serde_json::Value::Bool(on)) => *on,
                        Some(serde_json::Value::Number(n)) => n.as_i64() != Some(0),
                        Some(serde_json::Value::String(s)) => !matches!(s.trim(), "" | "0" | "false"),
                        _ => false,
                    },
                },
                other => anyhow::bail!("mailcow's app link {name} is neither a URL nor an object: {other}"),
            };
            links.push(parsed);
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_links_in_every_shape_mailcow_wrote() {
        let links = parse_app_links(
            r#"[{"Webmail":{"link":"/SOGo/so/","user_link":"/SOGo/so/%u","hide":true}},
                {"Wiki":{"link":"https://wiki.example.org","user_link":"","hide":false}},
                {"Old":"https://old.example.org"}]"#,
        )
        .unwrap();
        assert_eq!(
            links,
            vec![
                MailcowAppLink {
                    name: "Webmail".into(),
                    link: "/SOGo/so/".into(),
                    user_link: "/SOGo/so/%u".into(),
                    hidden: true
                },
                MailcowAppLink {
                    name: "Wiki".into(),
                    link: "https://wiki.example.org".into(),
                    user_link: String::new(),
                    hidden: false
                },
                MailcowAppLink {
                    name: "Old".into(),
                    link: "https://old.example.org".into(),
                    user_link: "https://old.example.org".into(),
                    hidden: false
                },
            ]
        );
        let gapped = parse_app_links(r#"{"1":{"A":{"link":"/a","user_link":"/a","hide":"0"}}}"#).unwrap();
        assert_eq!(gapped.len(), 1);
        assert!(!gapped[0].hidden);
        assert!(parse_app_links("null").unwrap().is_empty());
        assert!(parse_app_links("not json").is_err());
        assert!(parse_app_links(r#"[1]"#).is_err());
    }
}
