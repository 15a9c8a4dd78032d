//! Storage: units of work that read what a decision needs, call the domain's
//! pure decision, and write its effects in one transaction, on SQLite (the
//! embedded default) or PostgreSQL (for scale) through the engine (`db/`).
//! This file is the folder's face: its modules and what they hand on.

mod accounts;
mod authority;
mod base;
mod cases;
mod checkins;
pub mod confirm;
pub(crate) mod db;
mod error;
mod exposure;
mod flags;
mod handles;
pub mod inbox;
mod lookups;
mod ops;
mod orgs;
mod otp;
mod outbox;
mod routes;
mod shared;
mod signal;
mod sms;

pub use base::{sqlite_url_in, PurgeReport, Store, StoreConfig};
pub use db::{Backend, SqliteSync};
pub use error::{CheckinError, DbError, ErrorKind, StoreError};

pub use accounts::{
    check_password, password_matches, LoginRecord, NewSession, SessionOrg, TokenInfo,
    PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN, TOKENS_PER_ORG_MAX,
};
pub use authority::{
    AuditEntry, AuditNote, AuthorityLogin, AuthoritySession, AuthorityUser, ExposedVisit,
    AUDIT_PAGE_MAX, AUTHORITY_CASES_PAGE_MAX, AUTHORITY_TOKENS_MAX, CASE_VISITS_MAX,
};
pub use exposure::{AlertStates, CaseRecorded, CaseReport, ExposureCounts, CASES_BATCH_MAX};
pub use handles::{
    Accounts, AuthorityAccounts, Cases, Checkins, Flags, Orgs, Otps, Outbox, Routes, Sms,
};
pub use ops::{Authority, OutboxDepth, TokenHolder};
pub use orgs::{
    checked_premises, stay_minutes_default, HourCount, NewOrganization, NewPremises, OrgCreated,
    ADDRESS_CHARS_MAX, KIND_CHARS_MAX, PREMISES_KINDS, PREMISES_PAGE_MAX, STATS_DAYS_MAX,
};
pub use otp::{IssuedOtp, NewOtp, OtpCheck, OtpEntry, OTP_GROUP_MAX};
pub use outbox::SendResult;
pub use routes::ROUTE_REFRESH_MS;
pub use signal::{FeedEvent, OutboxFeed};
pub use sms::{
    InboundSms, PreparedSms, Rejection, SmsBatch, SmsOutcome, SmsVisit, REPEAT_REPLY_INTERVAL_MS,
    SMS_BATCH_MAX,
};
