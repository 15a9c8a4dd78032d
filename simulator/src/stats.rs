//! Counters behind `GET /api/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// Bind counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BindStats {
    /// Sessions bound now, by kind (`transmitter`, `receiver`, `transceiver`).
    pub current: BTreeMap<String, u64>,
    /// Successful binds since start.
    pub total: u64,
    /// Binds refused (bad credentials, faults, wrong state).
    pub rejected: u64,
}

/// MO counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MoStats {
    /// MO messages injected.
    pub injected: u64,
    /// MO messages every part of which an ESME acknowledged with ESME_ROK.
    pub delivered: u64,
    /// MO messages given up on (error statuses or no answer after every attempt).
    pub failed: u64,
    /// `deliver_sm` attempts made for MO parts.
    pub attempts: u64,
}

/// Receipt counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReceiptStats {
    /// Receipts produced.
    pub produced: u64,
    /// Receipts an ESME acknowledged with ESME_ROK.
    pub delivered: u64,
    /// Of `delivered`, those acknowledged only after waiting: no bind of
    /// their `system_id` when due, or an earlier try unanswered or refused.
    pub delivered_late: u64,
    /// Receipts waiting now (queued for a bind or a retry, or sent and not
    /// answered yet).
    pub pending: u64,
    /// Receipts given up after `receipts.validity_ms` without delivery.
    pub expired: u64,
    /// Receipts dropped because their queue held `receipts.pending_max`.
    pub dropped: u64,
    /// Receipts refused for good (ESME_RX_P_APPN, ESME_RX_R_APPN) or not built.
    pub failed: u64,
}

/// USSD dialog counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UssdStats {
    /// Dialogs dialled (`deliver_sm` with `ussd_service_op` 1 sent).
    pub opened: u64,
    /// Answers the user sent (`ussd_service_op` 18, USSR confirm).
    pub answered: u64,
    /// Dialogs ended by the ESME's final screen (`ussd_service_op` 17).
    pub completed: u64,
    /// Dialogs the user cancelled (an abort sent to the ESME).
    pub aborted: u64,
    /// Dialogs the simulator closed: no screen within `answer_timeout_ms`,
    /// or the user silent past `dialog_timeout_ms`.
    pub timed_out: u64,
    /// Dialogs the ESME refused (an error `deliver_sm_resp`, or no answer).
    pub refused: u64,
    /// Screens received (`submit_sm` matched to a dialog).
    pub screens: u64,
    /// USSD `submit_sm` that matched no dialog waiting for a screen.
    pub unmatched: u64,
}

/// A snapshot of every counter.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsSnapshot {
    /// Open SMPP connections.
    pub connections: u64,
    /// Bind counters.
    pub binds: BindStats,
    /// PDUs read, by command name.
    pub pdus_in: BTreeMap<String, u64>,
    /// PDUs written, by command name.
    pub pdus_out: BTreeMap<String, u64>,
    /// Submits refused by the throttle fault.
    pub throttled: u64,
    /// Error statuses the simulator answered, by status name.
    pub errors: BTreeMap<String, u64>,
    /// Error statuses ESMEs answered to `deliver_sm`, by status name.
    pub esme_errors: BTreeMap<String, u64>,
    /// Responses withheld by the drop fault.
    pub dropped_responses: u64,
    /// Connections closed by the disconnect fault.
    pub disconnects: u64,
    /// MO counters.
    pub mo: MoStats,
    /// Receipt counters.
    pub receipts: ReceiptStats,
    /// USSD dialog counters.
    pub ussd: UssdStats,
    /// Journal lines dropped because the writer fell behind.
    pub journal_dropped: u64,
}

/// Thread-safe counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    inner: Mutex<StatsSnapshot>,
}

impl Stats {
    /// Runs `f` on the counters.
    pub(crate) fn update(&self, f: impl FnOnce(&mut StatsSnapshot)) {
        // A poisoned lock only means another thread panicked mid-update;
        // counters stay usable.
        let mut guard = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let mut out = StatsSnapshot::default();
        self.update(|s| out = s.clone());
        out
    }
}

/// Adds one to `map[key]`.
pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_default() += 1;
}
