//! Metric names (through the `metrics` facade; the binary installs the
//! recorder/exporter). Labels never carry phone numbers or text; every
//! series carries `operator` ([`crate::LinkConfig::operator`]), so a gateway
//! with several SMSCs tells them apart.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram};

tokio::task_local! {
    /// The operator label of the link a supervisor task (and the sessions
    /// it runs) belongs to: the refusals are counted deep in the session's
    /// reading and writing, where only the task knows its link.
    pub(crate) static OPERATOR: Arc<str>;
}

use crate::{Error, SubmitOutcome};

/// Gauge: binds currently bound.
pub const BINDS: &str = "smsc_link_binds";
/// Gauge: `submit_sm` written and not yet answered, all binds.
pub const IN_FLIGHT: &str = "smsc_link_in_flight";
/// Counter: finished submits, label `outcome` = accepted | rejected | unknown
/// | not_sent (expired or shut down unsent) | withdrawn (taken back by its caller).
pub const SUBMITS: &str = "smsc_link_submits_total";
/// Counter: segments answered ESME_RTHROTTLED / ESME_RMSGQFUL.
pub const THROTTLED: &str = "smsc_link_throttled_total";
/// Histogram: seconds from writing a `submit_sm` to reading its response.
pub const SUBMIT_RTT: &str = "smsc_link_submit_rtt_seconds";
/// Counter: MO messages handed to the handler, label `result` = ok | error.
pub const MO: &str = "smsc_link_mo_total";
/// Counter: receipts handed to the handler, label `result` = ok | error.
pub const RECEIPTS: &str = "smsc_link_receipts_total";
/// Counter: reconnect attempts after a failure.
pub const RECONNECTS: &str = "smsc_link_reconnects_total";
/// Counter: what the link refused from the SMSC, label `kind` (see
/// [`Refused`]).
pub const PROTOCOL_ERRORS: &str = "smsc_link_protocol_errors_total";

/// What the link refused from the SMSC and how it answered: the `kind`
/// label of [`PROTOCOL_ERRORS`]. Rare by nature, so counted by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `bad_length`: a `command_length` under 16 or over the limit
    /// (garbage): `generic_nack` ESME_RINVCMDLEN, `unbind`, closed.
    BadLength,
    /// `undecodable`: a well-framed body `rusmpp` refused: `generic_nack`
    /// ESME_RINVCMDLEN (a response: its submit is in doubt).
    Undecodable,
    /// `unknown_command`: a request an ESME does not serve:
    /// `generic_nack` ESME_RINVCMDID.
    UnknownCommand,
    /// `unexpected_response`: a response to a sequence number not
    /// outstanding (never sent, or already timed out): dropped unanswered.
    UnexpectedResponse,
    /// `stalled_read`: a PDU begun and not whole within
    /// `response_timeout_ms` (a trickling SMSC): `unbind`, closed.
    StalledRead,
    /// `stalled_write`: the SMSC did not take a write of the link within
    /// `response_timeout_ms` (it stopped reading): closed.
    StalledWrite,
}

impl Refused {
    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::BadLength => "bad_length",
            Self::Undecodable => "undecodable",
            Self::UnknownCommand => "unknown_command",
            Self::UnexpectedResponse => "unexpected_response",
            Self::StalledRead => "stalled_read",
            Self::StalledWrite => "stalled_write",
        }
    }

    /// Counts one, under the operator of the link whose task this is
    /// ([`OPERATOR`]; `default` outside one).
    pub(crate) fn count(self) {
        let operator = OPERATOR
            .try_with(|o| o.clone())
            .unwrap_or_else(|_| Arc::from("default"));
        metrics::counter!(PROTOCOL_ERRORS, "kind" => self.label(), "operator" => operator.to_string())
            .increment(1);
    }
}

/// Handles to the metrics touched once per segment or message. The
/// `metrics::counter!` family looks its key up in the recorder on every
/// call (building the label set first); a session registers these once.
#[derive(Clone)]
pub(crate) struct SubmitMeters {
    accepted: Counter,
    rejected: Counter,
    unknown: Counter,
    not_sent: Counter,
    pub(crate) throttled: Counter,
    pub(crate) in_flight: Gauge,
    pub(crate) rtt: Histogram,
}

impl std::fmt::Debug for SubmitMeters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitMeters").finish_non_exhaustive()
    }
}

impl SubmitMeters {
    /// Registers the handles with the recorder installed now.
    pub(crate) fn register(operator: &str) -> Self {
        let op = || ("operator", operator.to_owned());
        Self {
            accepted: metrics::counter!(SUBMITS, "outcome" => "accepted", op().0 => op().1),
            rejected: metrics::counter!(SUBMITS, "outcome" => "rejected", op().0 => op().1),
            unknown: metrics::counter!(SUBMITS, "outcome" => "unknown", op().0 => op().1),
            not_sent: metrics::counter!(SUBMITS, "outcome" => "not_sent", op().0 => op().1),
            throttled: metrics::counter!(THROTTLED, op().0 => op().1),
            in_flight: metrics::gauge!(IN_FLIGHT, op().0 => op().1),
            rtt: metrics::histogram!(SUBMIT_RTT, op().0 => op().1),
        }
    }

    /// Counts a finished submit under its outcome.
    pub(crate) fn count(&self, outcome: &Result<SubmitOutcome, Error>) {
        let counter = match outcome {
            Ok(SubmitOutcome::Accepted { .. }) => &self.accepted,
            Ok(SubmitOutcome::Rejected { .. }) => &self.rejected,
            Ok(SubmitOutcome::Unknown { .. }) => &self.unknown,
            Err(_) => &self.not_sent,
        };
        counter.increment(1);
    }
}
