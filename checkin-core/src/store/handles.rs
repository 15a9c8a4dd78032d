//! The store's handles per area: `store.checkins()`, `store.orgs()`,
//! `store.sms()`, `store.cases()`, `store.otps()` (and `store.outbox()` in
//! `signal.rs`), so each area's methods live on their own type instead of one
//! grab bag on [`Store`]. Each borrows the store; they are free to make.

use super::base::Store;

/// Check-ins: recording visits and reading them back (`checkins.rs`, `lookups.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Checkins<'a> {
    pub(crate) store: &'a Store,
}

/// Organizations, their premises and health authorities (`orgs.rs`, `lookups.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Orgs<'a> {
    pub(crate) store: &'a Store,
}

/// The SMS inbox: a batch of inbound SMS and their replies in one commit (`sms.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Sms<'a> {
    pub(crate) store: &'a Store,
}

/// Confirmed cases (`cases.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Cases<'a> {
    pub(crate) store: &'a Store,
}

/// One-time passwords of the web check-in (`otp.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Otps<'a> {
    pub(crate) store: &'a Store,
}

/// Accounts, sessions and tokens of organizations (`store.accounts()`).
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    pub(crate) store: &'a Store,
}

/// The health authority's people, sessions, tokens and audit log
/// (`store.authority()`, `authority.rs`).
#[derive(Debug, Clone, Copy)]
pub struct AuthorityAccounts<'a> {
    pub(crate) store: &'a Store,
}

/// Learned routes and the numbering plan (`store.routes()`, `routes.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    pub(crate) store: &'a Store,
}

/// The store's switches (`store.flags()`).
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    pub(crate) store: &'a Store,
}

/// The outbox as producers and the sender see it: a cheap handle from
/// [`Store::outbox`]; its methods are in `signal.rs`, `outbox.rs`
/// and `ops.rs`.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub(crate) store: Store,
}

impl Store {
    /// Check-ins (see [`Checkins`]).
    pub fn checkins(&self) -> Checkins<'_> {
        Checkins { store: self }
    }

    /// Organizations and premises (see [`Orgs`]).
    pub fn orgs(&self) -> Orgs<'_> {
        Orgs { store: self }
    }

    /// The SMS inbox (see [`Sms`]).
    pub fn sms(&self) -> Sms<'_> {
        Sms { store: self }
    }

    /// Confirmed cases (see [`Cases`]).
    pub fn cases(&self) -> Cases<'_> {
        Cases { store: self }
    }

    /// One-time passwords (see [`Otps`]).
    pub fn otps(&self) -> Otps<'_> {
        Otps { store: self }
    }

    /// Organization accounts (see [`Accounts`]).
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }

    /// The health authority's cabinet (see [`AuthorityAccounts`]).
    pub fn authority(&self) -> AuthorityAccounts<'_> {
        AuthorityAccounts { store: self }
    }

    /// Service-wide switches (see [`Flags`]).
    pub fn flags(&self) -> Flags<'_> {
        Flags { store: self }
    }

    /// Learned routes and the numbering plan (see [`Routes`]).
    pub fn routes(&self) -> Routes<'_> {
        Routes { store: self }
    }

    /// The outbox's signal and hand-off lane (see [`Outbox`]).
    pub fn outbox(&self) -> Outbox {
        Outbox {
            store: self.clone(),
        }
    }
}
