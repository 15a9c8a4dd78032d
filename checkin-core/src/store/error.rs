//! Why a storage operation failed: the engine's own failures ([`DbError`]),
//! the store's ([`StoreError`], caller's or service's), and a check-in's
//! ([`CheckinError`], the visitor's mistakes beside storage trouble). A leaf:
//! the engine and every storage module import it, it imports none of them.

use crate::privacy::PrivacyError;
use crate::sms_decision::Rejection;
use crate::venue_code::CodeError;

/// Why a statement failed, on either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("no column {0:?} in the result")]
    NoColumn(String),
    #[error("column {column:?}: {message}")]
    Decode { column: String, message: String },
    #[error("the database is closed")]
    Closed,
    /// A failure shared by every unit of a group commit (the commit's).
    #[error("{0}")]
    Shared(String),
}

impl DbError {
    /// The same failure again, for the next unit of a group that shares it.
    pub(crate) fn again(&self) -> DbError {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, m)) => {
                DbError::Sqlite(rusqlite::Error::SqliteFailure(*e, m.clone()))
            }
            DbError::Closed => DbError::Closed,
            other => DbError::Shared(other.to_string()),
        }
    }

    /// A UNIQUE or PRIMARY KEY constraint refused the row.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            DbError::Postgres(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}

/// Whose problem a [`StoreError`] is (see [`StoreError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (an empty name, an e-mail taken, a batch
    /// too large): asking again unchanged fails again; the web answers 4xx.
    Caller,
    /// The service could not do it (database down, corrupt row, misconfigured
    /// store): not the caller's fault; the web answers 500, SMPP a temporary
    /// error.
    Service,
}

/// Why a storage operation failed: either the caller's request is wrong or the
/// service failed; [`StoreError::kind`] tells which.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] DbError),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url scheme {0:?} (use sqlite: or postgres://)")]
    UnsupportedUrl(String),
    #[error("could not create the database folder {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error("a stored row is invalid: {0}")]
    Corrupt(String),
    /// A write that rode along with another transaction (see `Writer::carry`,
    /// and the grouped code confirmations of `confirm.rs`) failed, or that
    /// transaction did, or the queue that groups them has stopped.
    #[error("a write carried by another transaction failed: {0}")]
    SharedWrite(String),
    #[error("no free venue code found after {0} attempts")]
    CodeSpaceExhausted(u32),
    /// The store's own settings cannot be used (e.g. a window too long to
    /// count in milliseconds).
    #[error("the store's configuration is invalid: {0}")]
    Config(String),
    /// The caller's request is wrong (see [`ErrorKind::Caller`]).
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(DbError::Postgres(e))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(DbError::Sqlite(e))
    }
}

impl StoreError {
    /// Whether the caller or the service is to blame. An exhaustive match, so
    /// a new variant has to pick its side.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Invalid(_) | StoreError::UnsupportedUrl(_) => ErrorKind::Caller,
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::DataDir { .. }
            | StoreError::Privacy(_)
            | StoreError::Corrupt(_)
            | StoreError::SharedWrite(_)
            | StoreError::CodeSpaceExhausted(_)
            | StoreError::Config(_) => ErrorKind::Service,
        }
    }

    /// True when the request itself is wrong (`kind() == ErrorKind::Caller`).
    pub fn is_caller_error(&self) -> bool {
        self.kind() == ErrorKind::Caller
    }
}

/// Why a check-in was not recorded. Each visitor-facing variant gets its own reply.
#[derive(Debug, thiserror::Error)]
pub enum CheckinError {
    #[error("the code has {digits} digits instead of 9")]
    WrongLength { digits: usize },
    #[error("the code's check digit does not match (a typo?)")]
    Typo,
    #[error("the code contains characters other than digits")]
    NotACode,
    #[error("no premises has this code")]
    UnknownCode,
    #[error("the premises is not accepting check-ins")]
    InactivePremises,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl CheckinError {
    /// True when retrying later may succeed (the SMSC should redeliver): every
    /// storage failure, whatever its [`ErrorKind`], since the visit was not
    /// stored and the house rule answers that with a temporary error.
    pub fn is_temporary(&self) -> bool {
        matches!(self, CheckinError::Storage(_))
    }

    /// The visitor's mistakes are the caller's; storage trouble is classified
    /// by [`StoreError::kind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            CheckinError::Storage(e) => e.kind(),
            _ => ErrorKind::Caller,
        }
    }

    /// The visitor-facing reason, in the SMS path's terms ([`Rejection`]):
    /// one taxonomy for what a visitor is told, whichever way they came in.
    /// `None` for storage trouble (the service's problem, not theirs).
    pub fn rejection(&self) -> Option<Rejection> {
        Some(match self {
            CheckinError::WrongLength { .. } => Rejection::WrongLength,
            CheckinError::Typo => Rejection::Typo,
            // The SMS path answers a code with other characters as unrecognized.
            CheckinError::NotACode => Rejection::Unrecognized,
            CheckinError::UnknownCode => Rejection::UnknownCode,
            CheckinError::InactivePremises => Rejection::InactivePremises,
            CheckinError::Storage(_) => return None,
        })
    }
}

impl From<CodeError> for CheckinError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::WrongLength { digits } => CheckinError::WrongLength { digits },
            CodeError::CheckDigit => CheckinError::Typo,
            CodeError::InvalidCharacter => CheckinError::NotACode,
        }
    }
}

impl From<sqlx::Error> for CheckinError {
    fn from(e: sqlx::Error) -> Self {
        CheckinError::Storage(e.into())
    }
}

impl From<DbError> for CheckinError {
    fn from(e: DbError) -> Self {
        CheckinError::Storage(StoreError::Database(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms_decision::Rejection;

    #[test]
    fn caller_errors_are_the_callers() {
        for e in [
            StoreError::Invalid("the organization name is empty".into()),
            StoreError::UnsupportedUrl("mysql://x".into()),
        ] {
            assert_eq!(e.kind(), ErrorKind::Caller, "{e:?}");
            assert!(e.is_caller_error(), "{e:?}");
        }
    }

    #[test]
    fn service_errors_are_the_services() {
        for e in [
            StoreError::Database(DbError::Closed),
            StoreError::Migrate(sqlx::migrate::MigrateError::VersionMissing(1)),
            StoreError::DataDir {
                path: "/x".into(),
                source: std::io::Error::other("denied"),
            },
            StoreError::Privacy(PrivacyError::Decrypt),
            StoreError::Corrupt("channel".into()),
            StoreError::SharedWrite("rolled back".into()),
            StoreError::CodeSpaceExhausted(100),
            StoreError::Config("retention is too long".into()),
        ] {
            assert_eq!(e.kind(), ErrorKind::Service, "{e:?}");
            assert!(!e.is_caller_error(), "{e:?}");
        }
    }

    #[test]
    fn a_visitors_mistake_is_the_callers_and_storage_keeps_its_kind() {
        assert_eq!(CheckinError::Typo.kind(), ErrorKind::Caller);
        assert_eq!(CheckinError::InactivePremises.kind(), ErrorKind::Caller);
        let service = CheckinError::Storage(StoreError::Corrupt("x".into()));
        assert_eq!(service.kind(), ErrorKind::Service);
        assert!(service.is_temporary());
    }

    #[test]
    fn every_visitor_error_has_its_rejection_and_storage_has_none() {
        let cases = [
            (
                CheckinError::WrongLength { digits: 8 },
                Some(Rejection::WrongLength),
            ),
            (CheckinError::Typo, Some(Rejection::Typo)),
            (CheckinError::NotACode, Some(Rejection::Unrecognized)),
            (CheckinError::UnknownCode, Some(Rejection::UnknownCode)),
            (
                CheckinError::InactivePremises,
                Some(Rejection::InactivePremises),
            ),
            (CheckinError::Storage(StoreError::Invalid("x".into())), None),
        ];
        for (error, rejection) in cases {
            assert_eq!(error.rejection(), rejection, "{error:?}");
            assert_eq!(error.is_temporary(), rejection.is_none());
        }
    }
}
