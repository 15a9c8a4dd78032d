//! Adapters between the SMPP link and the rest: the notifier's `SmsSender` on
//! top of `Link::submit`, and the receipt handler.

use checkin_core::Msisdn;
use notifier::{SendOutcome, SmsSender};
use smsc_link::{HandlerError, Link, Receipt, ReceiptHandler, SubmitOptions, SubmitOutcome};

/// Sends outbox messages through the link.
pub(crate) struct LinkSender(pub Link);

impl SmsSender for LinkSender {
    async fn send(&self, to: &Msisdn, text: &str) -> SendOutcome {
        // Receipts are not stored yet (the exposure issue adds delivery
        // tracking), so none are asked for.
        let options = SubmitOptions::default();
        match self.0.submit(to.as_str(), text, options).await {
            Ok(SubmitOutcome::Accepted { message_ids }) => SendOutcome::Accepted { message_ids },
            Ok(SubmitOutcome::Rejected { status }) => SendOutcome::Rejected {
                reason: format!("SMSC refused: {status:?}"),
            },
            Ok(SubmitOutcome::Unknown { accepted_ids }) => SendOutcome::Unknown {
                reason: format!(
                    "response lost after {} segment(s) were accepted",
                    accepted_ids.len()
                ),
            },
            Err(
                e @ (smsc_link::Error::InvalidAddress
                | smsc_link::Error::TextTooLong { .. }
                | smsc_link::Error::Config(_)),
            ) => SendOutcome::Rejected {
                reason: e.to_string(),
            },
            Err(e) => SendOutcome::Temporary {
                reason: e.to_string(),
            },
        }
    }
}

/// Delivery receipts: logged at debug until delivery tracking lands.
pub(crate) struct ReceiptLog;

impl ReceiptHandler for ReceiptLog {
    async fn on_receipt(&self, receipt: Receipt) -> Result<(), HandlerError> {
        tracing::debug!(message_id = %receipt.message_id, state = ?receipt.state, "delivery receipt");
        Ok(())
    }
}
