//! The link's MO handler, adapted to the core's SMS inbox
//! (`checkin_core::inbox`): each `deliver_sm` is submitted there and
//! acknowledged only after its group committed; a failed commit answers a
//! temporary error, so the SMSC redelivers. What is left here is what only
//! the link knows: the sender's address as the SMSC gave it.

use std::sync::Arc;

use checkin_core::store::{InboundSms, SmsOutcome};
use checkin_core::{Clock, Msisdn, MsisdnPolicy, OperatorName, SmsInbox};
use smsc_link::{HandlerError, Mo, MoHandler};

/// Bounds of the MO path: the core inbox's (`queue_max`, `batch_max`).
pub type PipelineConfig = checkin_core::InboxConfig;

/// The link's MO handler: hands each text to the core inbox and waits for
/// its group's commit.
#[derive(Clone)]
pub(crate) struct MoInbox {
    inbox: SmsInbox,
    policy: MsisdnPolicy,
    clock: Arc<dyn Clock>,
    /// The operator whose link delivers these MO: the reply goes back
    /// through it and the sender's route is learned.
    operator: OperatorName,
}

impl MoInbox {
    pub(crate) fn new(
        inbox: SmsInbox,
        policy: MsisdnPolicy,
        clock: Arc<dyn Clock>,
        operator: OperatorName,
    ) -> MoInbox {
        MoInbox {
            inbox,
            policy,
            clock,
            operator,
        }
    }
}

impl MoHandler for MoInbox {
    async fn on_mo(&self, mo: Mo) -> Result<(), HandlerError> {
        let from = match Msisdn::parse_with(&mo.from, &self.policy) {
            Ok(from) => from,
            Err(e) => {
                // Nobody to record or answer (an alphanumeric sender, a foreign
                // number): acknowledge, so the SMSC does not redeliver forever.
                metrics::counter!("checkin_mo_total", "outcome" => "sender_refused").increment(1);
                tracing::info!(reason = %e, sender_chars = mo.from.chars().count(), "MO from a number the service does not serve; acknowledged, not recorded");
                return Ok(());
            }
        };
        let sms = InboundSms {
            from,
            text: mo.text,
            received_at: self.clock.now(),
            operator: Some(self.operator.clone()),
        };
        match self.inbox.submit(sms).await {
            Ok(outcome) => {
                count_checkin(&outcome);
                tracing::debug!(?outcome, "MO committed");
                Ok(())
            }
            Err(e) => Err(HandlerError(e.to_string())),
        }
    }
}

/// Counter: SMS check-ins by outcome (`checkin_checkins_total`, label
/// `channel` = sms; the web counts its own under `channel` = web).
fn count_checkin(outcome: &SmsOutcome) {
    let outcome = match outcome {
        SmsOutcome::CheckedIn { .. } => "checked_in",
        SmsOutcome::Duplicate { .. } => "duplicate",
        SmsOutcome::Repeat { .. } => "repeat",
        SmsOutcome::OptedOut => "opted_out",
        SmsOutcome::Rejected { .. } => "rejected",
    };
    metrics::counter!("checkin_checkins_total", "channel" => "sms", "outcome" => outcome)
        .increment(1);
}
