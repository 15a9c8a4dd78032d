//! SMPP 3.4 ESME sessions to the operator's SMSC: binds, enquire_link, windowed
//! `submit_sm`, inbound `deliver_sm` (MO and receipts), reconnects.
//!
//! Moves messages and reports what happened; knows nothing of check-ins (it
//! never depends on `checkin-core`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), smsc_link::Error> {
//! use smsc_link::{HandlerError, Link, LinkConfig, Mo, MoHandler, Receipt, ReceiptHandler, SubmitOptions};
//!
//! struct Inbox;
//! impl MoHandler for Inbox {
//!     async fn on_mo(&self, mo: Mo) -> Result<(), HandlerError> { Ok(()) }
//! }
//! impl ReceiptHandler for Inbox {
//!     async fn on_receipt(&self, receipt: Receipt) -> Result<(), HandlerError> { Ok(()) }
//! }
//!
//! let link = Link::start(LinkConfig::new("127.0.0.1", 2775, "checkin", "checkin"), Inbox, Inbox)?;
//! let outcome = link.submit("+79161234567", "Вы отметились", SubmitOptions::default()).await?;
//! link.shutdown().await;
//! # Ok(()) }
//! ```

pub mod codec;
pub mod config;
mod error;
mod gate;
mod job;
mod link;
pub mod pdu;
pub mod reassembly;
pub mod receipt;
mod session;
mod shared;
mod supervisor;
pub mod telemetry;
pub mod text;
mod tlv;

use std::future::Future;

pub use config::{BindMode, DefaultAlphabet, Host, IdRadix, LinkConfig, PartAck, Password, TonNpi};
pub use error::Error;
pub use link::{bind_once, Link};
pub use receipt::{DeliveryState, Receipt};
pub use rusmpp::CommandStatus;
pub use supervisor::{BindState, LinkState};
pub use tlv::Tlv;

/// An MO message, whole (multipart messages are reassembled first).
/// `Debug` masks the sender and hides the text, so a stray `{:?}` in a log
/// cannot leak them.
#[derive(Clone, PartialEq, Eq)]
pub struct Mo {
    /// Sender: `+7…` when the SMSC said the number is international,
    /// otherwise as the SMSC wrote it.
    pub from: String,
    /// Destination (the short code).
    pub to: String,
    /// The decoded text.
    pub text: String,
    /// `data_coding` of the (first) part.
    pub data_coding: u8,
    /// Number of parts it arrived in.
    pub parts: usize,
    /// Every TLV it arrived with (of the part that completed it), e.g.
    /// `ussd_service_op` and `its_session_info` of a USSD dialog.
    pub tlvs: Vec<Tlv>,
}

impl std::fmt::Debug for Mo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mo")
            .field("from", &masked(&self.from))
            .field("to", &self.to)
            .field("text_chars", &self.text.chars().count())
            .field("data_coding", &self.data_coding)
            .field("parts", &self.parts)
            // Tags only: a value (`message_payload`) may hold the text.
            .field(
                "tlv_tags",
                &self.tlvs.iter().map(|t| t.tag).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A phone number for logs: its last four characters only (`***4567`).
pub(crate) fn masked(number: &str) -> String {
    let tail: String = {
        let mut tail: Vec<char> = number.chars().rev().take(4).collect();
        tail.reverse();
        tail.into_iter().collect()
    };
    if number.chars().count() <= 4 {
        // A short code is not personal.
        return number.to_string();
    }
    format!("***{tail}")
}

/// A handler refused a delivery for now; the SMSC is answered
/// ESME_RX_T_APPN (0x64) and delivers it again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handler failed: {0}")]
pub struct HandlerError(pub String);

/// Receives MO messages. `deliver_sm_resp` ESME_ROK is sent only after
/// the handler returned `Ok` (for a multipart MO: every part's response).
pub trait MoHandler: Send + Sync + 'static {
    /// Handles one whole MO message.
    fn on_mo(&self, mo: Mo) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Handles one whole MO message and may answer it in the same dialog
    /// (e.g. the next USSD menu): the link calls this one. By default it
    /// is [`MoHandler::on_mo`] with no reply, so plain handlers implement
    /// `on_mo` only; a dialog handler overrides this too.
    fn on_mo_dialog(&self, mo: Mo) -> impl Future<Output = Result<MoAnswer, HandlerError>> + Send {
        async move {
            self.on_mo(mo).await?;
            Ok(MoAnswer::default())
        }
    }
}

/// What a handler answers an MO with, besides `Ok`.
#[derive(Debug, Clone, Default)]
pub struct MoAnswer {
    /// A message the link submits once the MO is acknowledged. Its
    /// outcome is logged (masked) and counted like any submit; the
    /// handler does not wait for it. Default none.
    pub reply: Option<Reply>,
}

/// A message sent back in the dialog of an MO (see [`MoAnswer`]).
#[derive(Clone, Default)]
pub struct Reply {
    /// Destination: usually the MO's `from`.
    pub to: String,
    /// The text.
    pub text: String,
    /// As for [`Link::submit`]: TLVs (`ussd_service_op`,
    /// `its_session_info`), sender, receipt, `send_within`.
    pub options: SubmitOptions,
}

/// Masked on purpose: a `{:?}` in a log must not leak the number or text.
impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("to", &masked(&self.to))
            .field("text_chars", &self.text.chars().count())
            .field(
                "tlv_tags",
                &self.options.tlvs.iter().map(|t| t.tag).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Receives delivery receipts, acknowledged like MO after `Ok`.
pub trait ReceiptHandler: Send + Sync + 'static {
    /// Handles one receipt; `receipt.message_id` equals one of the ids
    /// of the [`SubmitOutcome::Accepted`] it reports on.
    fn on_receipt(&self, receipt: Receipt)
        -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Options of one submit.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Ask the SMSC for a delivery receipt (`registered_delivery` 1).
    /// Default false.
    pub registered_delivery: bool,
    /// Sender instead of the configured `source_addr`. Default none.
    pub source_addr: Option<String>,
    /// Latest delay before the first segment is written (e.g. an OTP that
    /// is useless later). Past it, a message still queued (no bind, queue
    /// full, throttled) fails with [`Error::Expired`] and is never sent;
    /// one already being written runs to its normal outcome. Default none.
    pub send_within: Option<std::time::Duration>,
    /// Optional parameters written on every segment, in order (e.g.
    /// `ussd_service_op`, `its_session_info`, `user_message_reference`).
    /// A submit with TLVs is encoded through `rusmpp`'s owned PDU, the
    /// others through the encode-once fast path. Default none.
    pub tlvs: Vec<Tlv>,
    /// `service_type` (at most 5 characters, e.g. `USSD` for an operator's
    /// USSD gateway); such a submit takes the owned path like one with
    /// TLVs. Default none (empty: the SMSC's default).
    pub service_type: Option<String>,
    /// The `data_coding` written on GSM 7-bit segments instead of 0 (e.g.
    /// 0x0F, the USSD "GSM 7-bit, language unspecified"); UCS2 segments
    /// keep 0x08. Default none.
    pub gsm7_data_coding: Option<u8>,
    /// Lets the caller take the message back while it still waits (for a
    /// bind, for room in the queue, or behind the rate): once cancelled, a
    /// message no session has started writing is answered
    /// [`Error::Withdrawn`] and never sent; one being written runs to its
    /// normal outcome. The notifier's kill switch uses it so that alerts
    /// already handed over stop too. Default none.
    pub withdraw: Option<tokio_util::sync::CancellationToken>,
}

/// What became of a submitted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Every segment was accepted; one normalized id per segment, in order.
    Accepted {
        /// Segment ids (see [`receipt::normalize_id`]).
        message_ids: Vec<String>,
    },
    /// The SMSC refused the message for good (a segment's status). Not
    /// retried by the link.
    Rejected {
        /// The refusing status.
        status: CommandStatus,
    },
    /// At least one segment was written but its response never came (the
    /// connection broke or the response timed out): the message may or may
    /// not be delivered. The link never resends it on its own.
    Unknown {
        /// Ids of the segments that were accepted before the doubt arose.
        accepted_ids: Vec<String>,
    },
}
