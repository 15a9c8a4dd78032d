//! The receipt gate: a receipt whose `submit_sm_resp` has not been turned
//! into a [`crate::SubmitOutcome`] yet is held (with its unanswered
//! `deliver_sm`) until it has, so the caller always knows the id a receipt
//! names. Bounded by `receipts_held_max` and `receipt_hold_ms`.

use std::collections::{HashMap, VecDeque};

use rusmpp::CommandStatus;
use tokio::{
    sync::{mpsc, oneshot},
    time::{Duration, Instant},
};

use crate::receipt::Receipt;

/// Which response answers a delivery: the SMSC delivers by `deliver_sm`,
/// or (some USSD gateways) by `data_sm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckKind {
    /// `deliver_sm_resp`.
    DeliverSm,
    /// `data_sm_resp`.
    DataSm,
}

/// A `deliver_sm_resp` or `data_sm_resp` to write on a session.
#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) seq: u32,
    pub(crate) kind: AckKind,
    pub(crate) status: CommandStatus,
    /// Told once the answer is written (a reply waits for that).
    pub(crate) written: Option<oneshot::Sender<()>>,
}

/// How to answer one `deliver_sm` (or `data_sm`): the session it came on,
/// its sequence number and which response it takes. Dropped unanswered (a handler that panicked, a path that forgot
/// it), it answers ESME_RX_T_APPN itself: the SMSC delivers again, and the
/// session's count of unanswered deliveries (its back-pressure) stays true.
#[derive(Debug)]
pub(crate) struct AckToken {
    tx: Option<mpsc::Sender<Ack>>,
    seq: u32,
    kind: AckKind,
}

impl AckToken {
    /// A token answering delivery number `seq` on the session of `tx`
    /// with the response of `kind`.
    pub(crate) fn new(tx: mpsc::Sender<Ack>, seq: u32, kind: AckKind) -> Self {
        Self {
            tx: Some(tx),
            seq,
            kind,
        }
    }

    /// Answers without waiting. The session's queue holds as many answers
    /// as it lets deliveries be outstanding, so it is never full here;
    /// when the session is gone, the SMSC delivers again.
    pub(crate) fn answer_now(mut self, status: CommandStatus) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.try_send(Ack {
                seq: self.seq,
                kind: self.kind,
                status,
                written: None,
            });
        }
    }

    /// Answers, waiting for room in the session's queue.
    pub(crate) async fn answer(mut self, status: CommandStatus) {
        if let Some(tx) = self.tx.take() {
            let _ = tx
                .send(Ack {
                    seq: self.seq,
                    kind: self.kind,
                    status,
                    written: None,
                })
                .await;
        }
    }
}

impl AckToken {
    /// Answers, and waits until the answer is written: false when it never
    /// will be (the session ended first).
    pub(crate) async fn answer_written(mut self, status: CommandStatus) -> bool {
        let Some(tx) = self.tx.take() else {
            return false;
        };
        let (written, done) = oneshot::channel();
        let sent = tx
            .send(Ack {
                seq: self.seq,
                kind: self.kind,
                status,
                written: Some(written),
            })
            .await;
        sent.is_ok() && done.await.is_ok()
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.try_send(Ack {
                seq: self.seq,
                kind: self.kind,
                status: CommandStatus::EsmeRxTAppn,
                written: None,
            });
        }
    }
}

#[derive(Debug)]
struct Held {
    receipt: Receipt,
    token: AckToken,
    deadline: Instant,
}

/// Receipts waiting for their submit's outcome.
#[derive(Debug)]
pub(crate) struct ReceiptGate {
    /// Ids accepted by the SMSC whose message's outcome is not out yet.
    pending: HashMap<String, usize>,
    held: VecDeque<Held>,
    held_max: usize,
    hold: Duration,
}

impl ReceiptGate {
    pub(crate) fn new(held_max: usize, hold: Duration) -> Self {
        Self {
            pending: HashMap::new(),
            held: VecDeque::new(),
            held_max,
            hold,
        }
    }

    /// The SMSC accepted a segment with `id`; its message is not done.
    pub(crate) fn accepted(&mut self, id: &str) {
        *self.pending.entry(id.to_string()).or_default() += 1;
    }

    /// A receipt arrived. Returned when it can go to the handler now;
    /// held when its id is pending, or unknown while submits are in flight.
    pub(crate) fn admit(
        &mut self,
        receipt: Receipt,
        token: AckToken,
        submits_in_flight: usize,
        now: Instant,
    ) -> Option<(Receipt, AckToken)> {
        let wait = self.pending.contains_key(&receipt.message_id) || submits_in_flight > 0;
        if wait && self.held.len() < self.held_max {
            self.held.push_back(Held {
                receipt,
                token,
                deadline: now + self.hold,
            });
            None
        } else {
            Some((receipt, token))
        }
    }

    /// Nothing pending and nothing held: [`ReceiptGate::done`] would do nothing.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.held.is_empty()
    }

    /// The outcome of the message with these ids is out: their held
    /// receipts go to the handler. `uncounted` is the index in `ids` of
    /// the segment whose acceptance completed the message (never passed
    /// to [`ReceiptGate::accepted`]).
    pub(crate) fn done(
        &mut self,
        ids: &[String],
        uncounted: Option<usize>,
    ) -> Vec<(Receipt, AckToken)> {
        if self.is_idle() {
            return Vec::new();
        }
        for (index, id) in ids.iter().enumerate() {
            if Some(index) == uncounted {
                continue;
            }
            if let Some(n) = self.pending.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    self.pending.remove(id);
                }
            }
        }
        self.take(|h| ids.contains(&h.receipt.message_id))
    }

    /// Receipts held too long (or, when nothing is in flight, held for an
    /// id nobody is waiting for) go to the handler anyway.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        submits_in_flight: usize,
    ) -> Vec<(Receipt, AckToken)> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let pending = &self.pending;
        let drained: Vec<Held> = self.held.drain(..).collect();
        let mut out = Vec::new();
        for h in drained {
            let orphan = submits_in_flight == 0 && !pending.contains_key(&h.receipt.message_id);
            if now >= h.deadline || orphan {
                out.push((h.receipt, h.token));
            } else {
                self.held.push_back(h);
            }
        }
        out
    }

    fn take(&mut self, pick: impl Fn(&Held) -> bool) -> Vec<(Receipt, AckToken)> {
        let drained: Vec<Held> = self.held.drain(..).collect();
        let mut out = Vec::new();
        for h in drained {
            if pick(&h) {
                out.push((h.receipt, h.token));
            } else {
                self.held.push_back(h);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::DeliveryState;

    fn receipt(id: &str) -> Receipt {
        Receipt {
            message_id: id.into(),
            raw_message_id: id.into(),
            state: DeliveryState::Delivered,
            error: None,
            submit_date: None,
            done_date: None,
            recipient: "79161234567".into(),
        }
    }

    fn token(seq: u32) -> AckToken {
        let (tx, _rx) = mpsc::channel(1);
        AckToken::new(tx, seq, AckKind::DeliverSm)
    }

    #[test]
    fn a_receipt_waits_for_its_submit_outcome() {
        let mut gate = ReceiptGate::new(10, Duration::from_secs(10));
        let now = Instant::now();
        // Accepted segment of an unfinished message: held.
        gate.accepted("42");
        assert!(gate.admit(receipt("42"), token(1), 0, now).is_none());
        // Unknown id while submits are in flight: held.
        assert!(gate.admit(receipt("43"), token(2), 1, now).is_none());
        // Unknown id and nothing in flight: straight through.
        assert!(gate.admit(receipt("44"), token(3), 0, now).is_some());
        let released = gate.done(&["42".to_string()], None);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].0.message_id, "42");
        // Nothing in flight any more: the orphan goes out at the next expiry.
        let orphans = gate.expire(now, 0);
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].0.message_id, "43");
    }

    #[test]
    fn holding_is_bounded_in_count_and_time() {
        let mut gate = ReceiptGate::new(1, Duration::from_secs(1));
        let now = Instant::now();
        assert!(gate.admit(receipt("1"), token(1), 5, now).is_none());
        assert!(gate.admit(receipt("2"), token(2), 5, now).is_some());
        assert!(gate.expire(now, 5).is_empty());
        assert_eq!(gate.expire(now + Duration::from_secs(1), 5).len(), 1);
    }
}
