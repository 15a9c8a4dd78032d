//! The domain and its storage: venue codes, phone numbers, premises, check-ins,
//! cases and the outbox, on SQLite or PostgreSQL. No network, no SMPP, no HTTP:
//! the gateway's other crates call in with valid values (`Msisdn`, `VenueCode`).

pub mod case_csv;
pub mod clock;
pub mod delivery;
pub mod exposure;
mod group;
pub mod guard;
pub mod model;
pub mod msisdn;
pub mod otp;
pub mod privacy;
pub mod routing;
pub mod short_address;
pub mod sms_decision;
pub mod spreadsheet;
pub mod store;
pub mod texts;
pub mod time_fmt;
pub mod ussd;
pub mod venue_code;
pub mod visits;

pub use clock::{Clock, ManualClock, SystemClock};
pub use exposure::ExposureConfig;
pub use model::{
    Case, Channel, CheckIn, NewCase, NewCheckIn, NewMessage, Organization, OutboxMessage,
    OutboxStatus, Premises, Priority, Recorded,
};
pub use msisdn::{Msisdn, MsisdnError, MsisdnPolicy};
pub use privacy::{Keys, PhoneHash, PhoneVault, PrivacyError, SealedPhone};
pub use routing::{NumberPlan, NumberRange, OperatorName, PlanRowError, Route, RouteSource};
pub use spreadsheet::csv_cell;
pub use store::confirm::{self, ConfirmCommitter, ConfirmConfig, Confirmations};
pub use store::inbox::{self, Committed, InboxConfig, InboxError, SmsInbox};
pub use store::{Backend, CheckinError, ErrorKind, PurgeReport, Store, StoreConfig, StoreError};
pub use time_fmt::ServiceZone;
pub use venue_code::{CodeError, VenueCode};
