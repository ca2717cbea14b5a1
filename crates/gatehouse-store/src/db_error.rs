//! Turns database driver errors into Gatehouse errors: lost connections and timeouts are server faults
//! ([`Error::Unavailable`]); a unique-key race becomes a clear client-side refusal.

use gatehouse_core::Error;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Maps a [`DbErr`] to an [`Error`].
pub(crate) fn db_err(err: DbErr) -> Error {
    if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
        return Error::refused(format!("the change conflicts with an existing entry ({detail})"));
    }
    if let Some(SqlErr::ForeignKeyConstraintViolation(detail)) = err.sql_err() {
        return Error::refused(format!("the change refers to something that does not exist or is in use ({detail})"));
    }
    match &err {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Error::Unavailable(err.to_string()),
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))
            if is_transient(inner) =>
        {
            Error::Unavailable(err.to_string())
        }
        _ => Error::Internal(err.to_string()),
    }
}

fn is_transient(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match err {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_) | E::Protocol(_) => true,
        // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6) mean another writer holds the database.
        E::Database(db) => matches!(db.code().as_deref(), Some("5" | "6" | "517" | "262")),
        _ => false,
    }
}
