//! [`DatabaseUrl`]: the database connection URL, whose password never appears in logs or error messages.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The default database: an SQLite file beside the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/gatehouse.db";

/// Which SQL engine a URL points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    MySql,
}

/// A database URL. `Debug` and `Display` mask the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl Default for DatabaseUrl {
    fn default() -> Self {
        DatabaseUrl(DEFAULT_DATABASE_URL.to_string())
    }
}

impl DatabaseUrl {
    /// Wraps a URL string (checked by [`DatabaseUrl::kind`] when used).
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The full URL, password included. Only for handing to the database driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SQL engine, from the URL scheme.
    pub fn kind(&self) -> Result<DatabaseKind, String> {
        let scheme = self.0.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Ok(DatabaseKind::Sqlite),
            Some("postgres" | "postgresql") => Ok(DatabaseKind::Postgres),
            Some("mysql" | "mariadb") => Ok(DatabaseKind::MySql),
            _ => Err(format!("unsupported database URL '{self}': expected sqlite://…, postgres://… or mysql://…")),
        }
    }

    /// For SQLite URLs, the database file (None for in-memory databases and other engines).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.0.strip_prefix("sqlite://").or_else(|| self.0.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
            return None;
        }
        Some(PathBuf::from(path))
    }

    /// Whether the URL carries a password.
    pub fn has_password(&self) -> bool {
        url::Url::parse(&self.0).is_ok_and(|parsed| parsed.password().is_some())
    }

    /// The URL with the password replaced by `***`.
    pub fn masked(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_masked_everywhere() {
        let url = DatabaseUrl::new("postgres://gatehouse:s3cret@db.internal:5432/gatehouse");
        assert_eq!(url.to_string(), "postgres://gatehouse:***@db.internal:5432/gatehouse");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.kind().unwrap(), DatabaseKind::Postgres);
    }

    #[test]
    fn kinds_and_sqlite_paths() {
        assert_eq!(DatabaseUrl::default().kind().unwrap(), DatabaseKind::Sqlite);
        assert_eq!(DatabaseUrl::default().sqlite_path().unwrap(), PathBuf::from("./data/gatehouse.db"));
        assert_eq!(DatabaseUrl::new("mysql://root@127.0.0.1/x").kind().unwrap(), DatabaseKind::MySql);
        assert!(DatabaseUrl::new("sqlite::memory:").sqlite_path().is_none());
        assert!(DatabaseUrl::new("redis://x").kind().is_err());
    }
}
