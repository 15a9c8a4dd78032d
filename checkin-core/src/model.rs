//! The domain's records: organizations, premises, check-ins, cases and outbox
//! messages. Plain data; storage lives in `store`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::msisdn::Msisdn;
use crate::venue_code::VenueCode;

/// Stay length assumed when an organization does not set one: long enough for a
/// shop visit or a meal, short enough not to flood alerts.
pub const STAY_MINUTES_DEFAULT: u32 = 60;
/// Longest stay an organization may set (a full working day plus overtime).
pub const STAY_MINUTES_MAX: u32 = 16 * 60;

/// An organization that registers premises (a shop, a bar, an office, a council).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// A building or room with its own code and poster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Premises {
    pub id: i64,
    pub org_id: i64,
    pub code: VenueCode,
    pub address: String,
    /// The short name SMS texts use instead of the address (the confirmation
    /// must fit one segment, see `texts::SMS_LABEL_UNITS_MAX`); `None`: the
    /// address shortened by `texts::sms_place`. Web pages keep the address.
    pub sms_label: Option<String>,
    /// Free text such as `магазин`, `бар`, `офис`.
    pub kind: String,
    /// How long a visit is assumed to last, for exposure matching.
    pub stay_minutes: u32,
    /// Inactive premises refuse check-ins (closed, or the code was withdrawn).
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// How the visitor checked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `ВХОД*…` texted to the short number.
    Sms,
    /// The poster's QR code and the web page.
    Web,
    /// `*7377*…#` or the `*7377#` menu dialled on any phone.
    Ussd,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Web => "web",
            Channel::Ussd => "ussd",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "sms" => Some(Channel::Sms),
            "web" => Some(Channel::Web),
            "ussd" => Some(Channel::Ussd),
            _ => None,
        }
    }
}

/// A recorded visit. The phone number is not here: only the store can turn the
/// row's hash and sealed number back into one, and only for sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckIn {
    pub id: i64,
    pub premises_id: i64,
    pub channel: Channel,
    pub at: DateTime<Utc>,
    /// The visitor agreed to be alerted of a possible contact.
    pub consent: bool,
}

/// A check-in to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckIn {
    pub phone: Msisdn,
    pub code: VenueCode,
    pub channel: Channel,
    pub at: DateTime<Utc>,
    pub consent: bool,
}

/// What `record_checkin` did: a new row, or the existing one inside the dedupe window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub checkin: CheckIn,
    pub premises: Premises,
    /// True when an earlier check-in of the same phone at the same premises inside
    /// the dedupe window was returned instead of a new row (e.g. a redelivered SMS).
    pub duplicate: bool,
}

/// A confirmed case submitted by the health authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    pub id: i64,
    pub authority_id: Option<i64>,
    pub confirmed_at: DateTime<Utc>,
    /// The window in which the person is considered contagious.
    pub contagious_from: DateTime<Utc>,
    pub contagious_to: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A case to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    pub authority_id: Option<i64>,
    pub phone: Msisdn,
    pub confirmed_at: DateTime<Utc>,
    pub contagious_from: DateTime<Utc>,
    pub contagious_to: DateTime<Utc>,
}

/// Which outbox messages go first: a visitor waiting for an OTP at the door beats a
/// confirmation, which beats an alert. Lower value = sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Otp = 0,
    Confirmation = 1,
    Alert = 2,
}

impl Priority {
    pub fn as_i64(self) -> i64 {
        self as i64
    }

    pub fn from_i64(value: i64) -> Option<Priority> {
        match value {
            0 => Some(Priority::Otp),
            1 => Some(Priority::Confirmation),
            2 => Some(Priority::Alert),
            _ => None,
        }
    }
}

/// Where an outbox message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Waiting to be sent (possibly after a retry delay).
    Pending,
    /// Claimed by a sender; not yet answered.
    Sending,
    /// Accepted by the SMSC (message ids known).
    Sent,
    /// Delivered to the handset (a receipt said so).
    Delivered,
    /// Given up: rejected permanently or retries exhausted.
    Failed,
    /// Sent but the answer was lost: it may or may not have gone out.
    Unknown,
    /// Not sent: older than its priority's life (an OTP after 5 min, an
    /// alert after 48 h, see the notifier's `*_max_age`). Never sent late.
    Expired,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Unknown => "unknown",
            OutboxStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<OutboxStatus> {
        Some(match text {
            "pending" => OutboxStatus::Pending,
            "sending" => OutboxStatus::Sending,
            "sent" => OutboxStatus::Sent,
            "delivered" => OutboxStatus::Delivered,
            "failed" => OutboxStatus::Failed,
            "unknown" => OutboxStatus::Unknown,
            "expired" => OutboxStatus::Expired,
            _ => return None,
        })
    }
}

/// An SMS waiting in, or done with, the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: i64,
    /// Sealed: a claimed batch holds no number in clear. The sender opens it
    /// (`PhoneVault::open_phone`) right before the submit and drops it after;
    /// elsewhere, [`crate::Store::open_recipient`].
    pub recipient: crate::privacy::SealedPhone,
    /// The recipient's look-up hash (the daily cap counts by it, unopened).
    pub recipient_hash: crate::privacy::PhoneHash,
    pub text: String,
    pub priority: Priority,
    pub status: OutboxStatus,
    pub attempts: u32,
    /// One id per segment, as the SMSC returned them.
    pub smsc_message_ids: Vec<String>,
    /// Copies written to the SMSC whose answer was lost (in doubt), over every
    /// run: a sender resumes the count after a restart instead of starting
    /// again, so the bound on copies holds across restarts.
    pub copies_in_doubt: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    /// The operator it goes through as far as storage knows: the row's own
    /// (a reply: its MO's), else the operator the recipient was last learned
    /// through, else `None` (the sender asks the numbering plan, then the
    /// default: `routing::route`).
    pub route: Option<crate::routing::OperatorName>,
}

/// A message to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub recipient: Msisdn,
    pub text: String,
    pub priority: Priority,
}
