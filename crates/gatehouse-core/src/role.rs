//! The two kinds of administrator, as every crate names them: the store keeps them, the engine decides their
//! logins, the web UI gives them their own areas.

use serde::Serialize;

use crate::Error;

/// The two kinds of administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// Manages everything.
    Admin,
    /// Manages the mailboxes of its domains.
    DomainAdmin,
}

impl AdminRole {
    /// `admin` or `domain_admin`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Admin => "admin",
            AdminRole::DomainAdmin => "domain_admin",
        }
    }

    /// The stored form back; anything else is an internal error (the database holds only these two).
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value {
            "admin" => Ok(AdminRole::Admin),
            "domain_admin" => Ok(AdminRole::DomainAdmin),
            other => Err(Error::Internal(format!("unknown admin role '{other}' in the database"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_read_back() {
        for role in [AdminRole::Admin, AdminRole::DomainAdmin] {
            assert_eq!(AdminRole::parse(role.as_str()), Ok(role));
        }
        assert!(AdminRole::parse("root").is_err());
    }
}
