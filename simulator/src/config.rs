//! Typed configuration of one simulator instance: accounts, limits, MO
//! delivery, receipts, the initial fault profile and the PDU journal.
//!
//! Every struct deserializes from TOML/JSON with every field optional; the
//! defaults are documented next to each field.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::faults::FaultProfile;

/// An ESME account allowed to bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `system_id` the ESME sends in its bind (at most 15 characters).
    pub system_id: String,
    /// Password the ESME sends in its bind (at most 8 characters).
    pub password: String,
}

impl Account {
    /// Builds an account from its two parts.
    pub fn new(system_id: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            system_id: system_id.into(),
            password: password.into(),
        }
    }

    /// The default account, `checkin:checkin`.
    pub fn default_account() -> Self {
        Self::new("checkin", "checkin")
    }
}

impl std::str::FromStr for Account {
    type Err = crate::Error;

    /// Parses `SYSTEM_ID:PASSWORD`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (system_id, password) = s.split_once(':').ok_or_else(|| {
            crate::Error::Config(format!("account {s:?} is not SYSTEM_ID:PASSWORD"))
        })?;
        if system_id.is_empty() || system_id.len() > 15 || password.len() > 8 {
            return Err(crate::Error::Config(
                "account system_id must be 1..=15 and password 0..=8 characters".into(),
            ));
        }
        Ok(Self::new(system_id, password))
    }
}

/// How `submit_sm_resp` message ids look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageIdFormat {
    /// Eight or more lowercase hex digits, e.g. `0000002a` (default).
    #[default]
    Hex,
    /// Decimal digits, e.g. `42`.
    Decimal,
}

/// How a GSM 7-bit (`data_coding` 0) short message is laid out (`auto`,
/// `unpacked`, `packed`).
pub use smpp_text::Gsm7Packing;

/// Bounds of one simulator; every queue and window is named here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest `command_length` accepted; longer PDUs get `generic_nack`
    /// ESME_RINVCMDLEN and their bytes are skipped. Default 8192.
    pub pdu_len_max: usize,
    /// Requests from one ESME whose responses are still pending (slow
    /// responses); above it a request is answered ESME_RMSGQFUL at once.
    /// Default 1000.
    pub inbound_outstanding_max: usize,
    /// `deliver_sm` the simulator sends to one ESME before it waits for a
    /// response (the SMSC-side window). Default 10.
    pub outbound_window_max: usize,
    /// Deliveries (MO, receipts) queued for one session. Default 1024.
    pub session_queue_max: usize,
    /// Simultaneous SMPP connections; more are closed at once. Default 256.
    pub connections_max: usize,
    /// MT messages kept for `GET /api/messages`; the oldest are dropped.
    /// Default 100 000.
    pub messages_max: usize,
    /// Journal lines waiting to be written; above it lines are dropped and
    /// counted. Default 10 000.
    pub journal_queue_max: usize,
    /// Time an unbinding session waits for `unbind_resp` on shutdown.
    /// Default 1000 ms.
    pub unbind_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pdu_len_max: 8192,
            inbound_outstanding_max: 1000,
            outbound_window_max: 10,
            session_queue_max: 1024,
            connections_max: 256,
            messages_max: 100_000,
            journal_queue_max: 10_000,
            unbind_timeout_ms: 1000,
        }
    }
}

/// How MO messages (and receipts: timeout and backoff) are delivered to ESMEs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryConfig {
    /// Destination of an injected MO when the caller names none. Default `7377`.
    pub default_to: String,
    /// Attempts per MO `deliver_sm` (first try included) before giving up;
    /// receipts retry until `receipts.validity_ms`. Default 5.
    pub attempts_max: u32,
    /// Time to wait for `deliver_sm_resp` (time queued behind a full window
    /// included) before the attempt counts as unanswered. Default 5000 ms.
    pub response_timeout_ms: u64,
    /// Wait before the second attempt; doubled each attempt. Default 200 ms.
    pub backoff_initial_ms: u64,
    /// Largest wait between attempts. Default 5000 ms.
    pub backoff_max_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            default_to: "7377".into(),
            attempts_max: 5,
            response_timeout_ms: 5000,
            backoff_initial_ms: 200,
            backoff_max_ms: 5000,
        }
    }
}

/// When and with which outcome delivery receipts are produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReceiptConfig {
    /// Time between `submit_sm` and its receipt. Default 200 ms.
    pub delay_ms: u64,
    /// Share (percent) of messages that end DELIVRD. Default 100.
    pub delivered_pct: f64,
    /// Share (percent) of messages that end UNDELIV. Default 0.
    pub undeliverable_pct: f64,
    /// Share (percent) of messages that end EXPIRED. Default 0.
    /// The three shares are normalized if they do not sum to 100.
    pub expired_pct: f64,
    /// Receipts kept per `system_id` while they wait for a receiver or
    /// transceiver bind, or for a retry after no answer or a temporary
    /// error; when full the oldest is dropped (counted `dropped`).
    /// Default 100 000.
    pub pending_max: usize,
    /// How long a waiting receipt is kept before it is given up (counted
    /// `expired`), like a real SMSC's validity period. Default 48 h
    /// (172 800 000 ms).
    pub validity_ms: u64,
    /// Receipts of one `system_id` sent at once without an answer yet
    /// (oldest first). Default 100.
    pub in_flight_max: usize,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            delay_ms: 200,
            delivered_pct: 100.0,
            undeliverable_pct: 0.0,
            expired_pct: 0.0,
            pending_max: 100_000,
            validity_ms: 48 * 3600 * 1000,
            in_flight_max: 100,
        }
    }
}

/// Where a USSD dialog's id travels (`session_key` of a [`UssdProfile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UssdSessionKey {
    /// `its_session_info` (TLV 0x1383): octet 1 the session number (unique
    /// among open dialogs), octet 2 the sequence number in bits 7..1 and
    /// end-of-session in bit 0. Answers are matched on the MSISDN and the
    /// session number.
    ItsSessionInfo,
    /// `user_message_reference` (TLV 0x0204), unique only together with the
    /// MSISDN: answers are matched on both.
    UserMessageReference,
    /// Nothing: answers are matched on the MSISDN alone.
    Msisdn,
}

/// How one operator's USSD gateway writes its `deliver_sm` (an operator
/// profile). The presets are [`UssdProfile::preset`]'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UssdProfile {
    /// Where the dialog id travels.
    pub session_key: UssdSessionKey,
    /// `service_type` of every `deliver_sm` (at most 5 characters).
    pub service_type: String,
    /// `data_coding` of the dialled string and of the user's answers
    /// (0x0F: GSM 7-bit, language unspecified, the USSD default; 0x00;
    /// 0x08 UCS2).
    pub data_coding: u8,
    /// False: `destination_addr` is the service code (`7377`) and
    /// `short_message` the whole dialled string (`*7377*123456789#`). True:
    /// the string is split, `destination_addr` the service code and
    /// `short_message` the rest (`*123456789#`, `#` for `*7377#`), so that
    /// `*` + destination + short_message is what was dialled.
    #[serde(default)]
    pub split_dial: bool,
    /// `ussd_service_op` of the abort the simulator sends when the user
    /// cancels or the dialog times out (0x81 in the wild).
    #[serde(default = "abort_op_default")]
    pub abort_ussd_service_op: u8,
    /// With `its_session_info`: the abort also sets the end-of-session bit.
    #[serde(default)]
    pub abort_end_of_session: bool,
}

fn abort_op_default() -> u8 {
    0x81
}

/// Names of the built-in profiles.
pub const USSD_PROFILE_NAMES: [&str; 4] = ["its_session_info", "umr", "none", "p2"];

impl UssdProfile {
    /// A built-in profile: `its_session_info` (session in TLV 0x1383,
    /// abort with 0x81 and the end-of-session bit), `umr`
    /// (`user_message_reference`), `none` (MSISDN only), all with
    /// `service_type` `USSD`; and `p2`, the PDU seen in the wild
    /// (`service_type` `P2`, no session id). Every preset uses
    /// `data_coding` 0x0F and the whole dialled string in `short_message`.
    pub fn preset(name: &str) -> Option<Self> {
        let base = |session_key, service_type: &str| Self {
            session_key,
            service_type: service_type.into(),
            data_coding: 0x0F,
            split_dial: false,
            abort_ussd_service_op: abort_op_default(),
            abort_end_of_session: false,
        };
        Some(match name {
            "its_session_info" => Self {
                abort_end_of_session: true,
                ..base(UssdSessionKey::ItsSessionInfo, "USSD")
            },
            "umr" => base(UssdSessionKey::UserMessageReference, "USSD"),
            "none" => base(UssdSessionKey::Msisdn, "USSD"),
            "p2" => base(UssdSessionKey::Msisdn, "P2"),
            _ => return None,
        })
    }
}

/// The USSD gateway role: operator profiles, dialog bounds and timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UssdConfig {
    /// Profile of a dial that names none. Default `its_session_info`.
    pub profile: String,
    /// Profiles of this configuration, by name; a name of a preset
    /// (`its_session_info`, `umr`, `none`, `p2`) replaces the preset.
    pub profiles: std::collections::BTreeMap<String, UssdProfile>,
    /// Time the simulator waits for the ESME's screen (`submit_sm`) after
    /// each `deliver_sm` of a dialog; then it answers 504 and aborts the
    /// dialog towards the ESME. Default 5000 ms.
    pub answer_timeout_ms: u64,
    /// A dialog waiting for the user longer than this is closed the way a
    /// network does: an abort towards the ESME; later calls get 410.
    /// Default 60 000 ms.
    pub dialog_timeout_ms: u64,
    /// Open dialogs at once (one per MSISDN at most, as on a phone); more
    /// dials are answered 503. Default 10 000.
    pub dialogs_max: usize,
}

impl Default for UssdConfig {
    fn default() -> Self {
        Self {
            profile: "its_session_info".into(),
            profiles: std::collections::BTreeMap::new(),
            answer_timeout_ms: 5000,
            dialog_timeout_ms: 60_000,
            dialogs_max: 10_000,
        }
    }
}

impl UssdConfig {
    /// The profile called `name`: this configuration's, else a preset.
    pub fn profile_named(&self, name: &str) -> Option<UssdProfile> {
        self.profiles
            .get(name)
            .cloned()
            .or_else(|| UssdProfile::preset(name))
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if self.profile_named(&self.profile).is_none() {
            return Err(crate::Error::Config(format!(
                "ussd.profile {:?} is neither a preset ({}) nor in ussd.profiles",
                self.profile,
                USSD_PROFILE_NAMES.join(", ")
            )));
        }
        for (name, profile) in &self.profiles {
            if profile.service_type.len() > 5 || !profile.service_type.is_ascii() {
                return Err(crate::Error::Config(format!(
                    "ussd.profiles.{name}.service_type must be at most 5 ASCII characters"
                )));
            }
        }
        if self.dialogs_max == 0 || self.answer_timeout_ms == 0 || self.dialog_timeout_ms == 0 {
            return Err(crate::Error::Config(
                "ussd.dialogs_max, answer_timeout_ms and dialog_timeout_ms must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Everything one simulator needs; built once (from flags or a TOML file)
/// and handed to [`crate::Simulator::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Accounts allowed to bind. Default: `checkin:checkin`.
    pub accounts: Vec<Account>,
    /// Format of message ids. Default hex.
    pub message_id_format: MessageIdFormat,
    /// Layout of GSM 7-bit short messages. Default auto.
    pub gsm7_packing: Gsm7Packing,
    /// Bounds.
    pub limits: Limits,
    /// MO and receipt delivery.
    pub delivery: DeliveryConfig,
    /// Receipt delay and outcome mix.
    pub receipts: ReceiptConfig,
    /// Fault profile at start; `PUT /api/faults` replaces it.
    pub faults: FaultProfile,
    /// The USSD gateway role.
    pub ussd: UssdConfig,
    /// When set, every PDU in and out is appended to this file as one JSON
    /// line (with several operators, one file each: the path plus `.NAME`).
    pub journal_path: Option<PathBuf>,
    /// The operators this process plays (`[[operator]]` in TOML), each its
    /// own SMSC; none: one operator configured by the fields above. Read by
    /// [`crate::Network::new`]; [`crate::Simulator::new`] ignores it.
    #[serde(rename = "operator", skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<OperatorConfig>,
    /// Set by [`crate::Network::new`] for an operator with `foreign =
    /// "refuse"`: the numbers it serves; a `submit_sm` to any other is
    /// answered ESME_RINVDSTADR (an SMSC without interconnect for them).
    /// Empty: every number is delivered.
    #[serde(skip)]
    pub serves_only: Vec<crate::NumberRange>,
}

/// One operator's SMSC when the simulator plays several (`[[operator]]`).
/// Everything not named here (limits, delivery, USSD) is the top level's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// Unique name, e.g. `mts`: 1..=32 ASCII letters, digits, `-`, `_`.
    pub name: String,
    /// Listen address of its SMPP server. Default `127.0.0.1:0` (any free port).
    #[serde(default)]
    pub smpp: Option<SocketAddr>,
    /// Accounts allowed to bind, `SYSTEM_ID:PASSWORD`. Default: the top-level `accounts`.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Numbers it serves: prefixes (`+7916`) or ranges of equal-length
    /// numbers (`+79030000000-+79030999999`). A sender goes to the operator
    /// with the longest matching prefix (a range counts as its full length);
    /// numbers matching none go to the first operator.
    #[serde(default)]
    pub ranges: Vec<String>,
    /// Fault profile at start. Default: the top-level `faults`.
    #[serde(default)]
    pub faults: Option<FaultProfile>,
    /// Receipt delay and outcome mix. Default: the top-level `receipts`.
    #[serde(default)]
    pub receipts: Option<ReceiptConfig>,
    /// What it does with a `submit_sm` to a number outside its `ranges`:
    /// `deliver` (default: interconnect) or `refuse` (ESME_RINVDSTADR, as an
    /// SMSC that reaches only its own subscribers).
    #[serde(default)]
    pub foreign: Foreign,
}

/// An operator's answer to a message for another operator's number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Foreign {
    /// Delivered as any other.
    #[default]
    Deliver,
    /// Answered ESME_RINVDSTADR.
    Refuse,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            accounts: vec![Account::default_account()],
            message_id_format: MessageIdFormat::default(),
            gsm7_packing: Gsm7Packing::default(),
            limits: Limits::default(),
            delivery: DeliveryConfig::default(),
            receipts: ReceiptConfig::default(),
            faults: FaultProfile::default(),
            ussd: UssdConfig::default(),
            journal_path: None,
            operators: Vec::new(),
            serves_only: Vec::new(),
        }
    }
}
