//! Store-and-forward of delivery receipts, as a real SMSC keeps them: each
//! `system_id` has a queue of receipts produced for it, oldest first, and
//! one forwarder task that sends them to its receiver/transceiver binds.
//!
//! A receipt that finds no such bind waits for one; a receipt unanswered
//! (timeout, the session closed first) or answered with a temporary error
//! goes back to its place in the queue and the forwarder backs off
//! (`delivery.backoff_initial_ms`, doubled up to `backoff_max_ms`). A
//! receipt is given up when older than `receipts.validity_ms` (`expired`)
//! or when the ESME refuses it for good (ESME_RX_P_APPN, ESME_RX_R_APPN:
//! `failed`). A queue holds at most `receipts.pending_max`: the oldest is
//! dropped to make room (`dropped`).

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use futures::{stream::FuturesUnordered, StreamExt};
use rusmpp::{pdus::DeliverSm, CommandStatus};
use tokio::{sync::Notify, time::Instant};

use crate::{delivery::Attempt, lock, Simulator};

/// A receipt waiting to be acknowledged.
#[derive(Debug)]
pub(crate) struct PendingReceipt {
    /// Order of production: retries go back to their place by it.
    seq: u64,
    pdu: DeliverSm,
    expires_at: Instant,
    /// Its first try did not deliver it (no bind, no answer, an error).
    late: bool,
}

/// One account's receipts, oldest first; at most `pending_max`. Since every
/// receipt has the same validity, the oldest is also the first to expire.
#[derive(Debug)]
pub(crate) struct ReceiptQueue {
    items: VecDeque<PendingReceipt>,
    pending_max: usize,
}

impl ReceiptQueue {
    pub(crate) fn new(pending_max: usize) -> Self {
        Self {
            items: VecDeque::new(),
            pending_max: pending_max.max(1),
        }
    }

    /// Adds a new receipt at the end; returns the oldest one when it had to
    /// be dropped to make room.
    pub(crate) fn push(&mut self, receipt: PendingReceipt) -> Option<PendingReceipt> {
        let dropped = self.make_room();
        self.items.push_back(receipt);
        dropped
    }

    /// Puts back a receipt whose try failed, in its place by age, so the
    /// queue keeps its order; returns the oldest one when it had to be
    /// dropped to make room (possibly this one).
    pub(crate) fn put_back(&mut self, receipt: PendingReceipt) -> Option<PendingReceipt> {
        let at = self.items.partition_point(|r| r.seq < receipt.seq);
        self.items.insert(at, receipt);
        if self.items.len() > self.pending_max {
            self.items.pop_front()
        } else {
            None
        }
    }

    fn make_room(&mut self) -> Option<PendingReceipt> {
        if self.items.len() >= self.pending_max {
            self.items.pop_front()
        } else {
            None
        }
    }

    /// The oldest receipt.
    pub(crate) fn pop(&mut self) -> Option<PendingReceipt> {
        self.items.pop_front()
    }

    /// Removes the receipts past their validity at `now`; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while self.items.front().is_some_and(|r| r.expires_at <= now) {
            self.items.pop_front();
            expired += 1;
        }
        expired
    }

    /// When the oldest receipt expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.items.front().map(|r| r.expires_at)
    }
}

#[derive(Debug)]
struct Account {
    queue: ReceiptQueue,
    /// Wakes the forwarder when a receipt is queued.
    wake: Arc<Notify>,
    forwarder: bool,
}

/// Every account's receipt queue (bounded by the configured accounts).
#[derive(Debug, Default)]
pub(crate) struct Receipts {
    accounts: HashMap<String, Account>,
    next_seq: u64,
}

/// Receipts ESMEs refuse for good: a real SMSC does not retry them.
fn permanent(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRxPAppn | CommandStatus::EsmeRxRAppn
    )
}

impl Simulator {
    /// Queues a receipt for `system_id`'s binds and makes sure its
    /// forwarder runs.
    pub(crate) fn enqueue_receipt(&self, system_id: &str, pdu: DeliverSm) {
        let inner = &self.inner;
        let cfg = &inner.config.receipts;
        let late = !lock(&inner.registry).can_receive(system_id);
        let expires_at = Instant::now() + Duration::from_millis(cfg.validity_ms);
        let (dropped, wake, start) = {
            let mut receipts = lock(&inner.receipts);
            let seq = receipts.next_seq;
            receipts.next_seq += 1;
            let account = receipts
                .accounts
                .entry(system_id.to_string())
                .or_insert_with(|| Account {
                    queue: ReceiptQueue::new(cfg.pending_max),
                    wake: Arc::new(Notify::new()),
                    forwarder: false,
                });
            let dropped = account.queue.push(PendingReceipt {
                seq,
                pdu,
                expires_at,
                late,
            });
            let start = !account.forwarder;
            account.forwarder = true;
            (dropped.is_some(), account.wake.clone(), start)
        };
        inner.stats.update(|s| {
            if dropped {
                s.receipts.dropped += 1;
            } else {
                s.receipts.pending += 1;
            }
        });
        if dropped {
            tracing::warn!(system_id, "receipt queue full: oldest receipt dropped");
        }
        if start {
            let sim = self.clone();
            let system_id = system_id.to_string();
            inner
                .tasks
                .spawn(async move { sim.forward_receipts(system_id).await });
        } else {
            wake.notify_one();
        }
    }

    /// Runs `f` on `system_id`'s queue.
    fn with_queue<T>(&self, system_id: &str, f: impl FnOnce(&mut ReceiptQueue) -> T) -> Option<T> {
        lock(&self.inner.receipts)
            .accounts
            .get_mut(system_id)
            .map(|a| f(&mut a.queue))
    }

    /// The forwarder of one account: sends its queued receipts, oldest
    /// first, at most `in_flight_max` unanswered, until the simulator stops.
    async fn forward_receipts(self, system_id: String) {
        let inner = &self.inner;
        let cfg = &inner.config;
        let in_flight_max = cfg.receipts.in_flight_max.max(1);
        let timeout = Duration::from_millis(cfg.delivery.response_timeout_ms);
        let backoff_initial = Duration::from_millis(cfg.delivery.backoff_initial_ms);
        let backoff_max = Duration::from_millis(cfg.delivery.backoff_max_ms);
        let Some(wake) = lock(&inner.receipts)
            .accounts
            .get(&system_id)
            .map(|a| a.wake.clone())
        else {
            return;
        };
        let mut changes = lock(&inner.registry).subscribe();
        let mut backoff = backoff_initial;
        let mut retry_at: Option<Instant> = None;
        let mut in_flight = FuturesUnordered::new();
        let system_id: Arc<str> = system_id.into();
        loop {
            let now = Instant::now();
            // Seen before the bind check: a bind after it wakes the select.
            changes.borrow_and_update();
            let expired = self.with_queue(&system_id, |q| q.expire(now)).unwrap_or(0);
            if expired > 0 {
                inner.stats.update(|s| {
                    s.receipts.expired += expired as u64;
                    s.receipts.pending = s.receipts.pending.saturating_sub(expired as u64);
                });
                tracing::info!(system_id = %system_id, expired, "receipts expired undelivered");
            }
            let bound = lock(&inner.registry).can_receive(&system_id);
            if !bound {
                // The next bind is a new session: no reason to hold back.
                retry_at = None;
                backoff = backoff_initial;
            } else if retry_at.is_none_or(|at| at <= now) {
                retry_at = None;
                while in_flight.len() < in_flight_max {
                    let Some(receipt) = self.with_queue(&system_id, ReceiptQueue::pop).flatten()
                    else {
                        break;
                    };
                    in_flight.push(self.try_receipt(system_id.clone(), receipt, timeout));
                }
            }
            let expiry = self.with_queue(&system_id, |q| q.next_expiry()).flatten();
            let wake_at = match (retry_at, expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                _ = inner.stopping.cancelled() => return,
                Some((receipt, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                    match outcome {
                        Attempt::Answered(CommandStatus::EsmeRok) => {
                            backoff = backoff_initial;
                            inner.stats.update(|s| {
                                s.receipts.pending = s.receipts.pending.saturating_sub(1);
                                s.receipts.delivered += 1;
                                if receipt.late {
                                    s.receipts.delivered_late += 1;
                                }
                            });
                        }
                        Attempt::Answered(status) if permanent(status) => {
                            inner.stats.update(|s| {
                                s.receipts.pending = s.receipts.pending.saturating_sub(1);
                                s.receipts.failed += 1;
                            });
                        }
                        Attempt::Answered(_) | Attempt::NoAnswer | Attempt::NoReceiver => {
                            let mut receipt = receipt;
                            receipt.late = true;
                            let dropped = self
                                .with_queue(&system_id, |q| q.put_back(receipt).is_some())
                                .unwrap_or(false);
                            if dropped {
                                inner.stats.update(|s| {
                                    s.receipts.pending = s.receipts.pending.saturating_sub(1);
                                    s.receipts.dropped += 1;
                                });
                            }
                            // A bind still up that fails gets time to recover;
                            // a bind gone is waited for instead (above).
                            if lock(&inner.registry).can_receive(&system_id) && retry_at.is_none() {
                                retry_at = Some(Instant::now() + backoff);
                                backoff = (backoff * 2).min(backoff_max);
                            }
                        }
                    }
                }
                _ = wake.notified() => {}
                Ok(()) = changes.changed() => {}
                _ = sleep_until(wake_at), if wake_at.is_some() => {}
            }
        }
    }

    /// One try of one receipt; the receipt comes back with its outcome.
    async fn try_receipt(
        &self,
        system_id: Arc<str>,
        receipt: PendingReceipt,
        timeout: Duration,
    ) -> (PendingReceipt, Attempt) {
        let outcome = self
            .attempt(Some(&system_id), receipt.pdu.clone(), timeout)
            .await;
        (receipt, outcome)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(seq: u64, expires_at: Instant) -> PendingReceipt {
        PendingReceipt {
            seq,
            pdu: DeliverSm::default(),
            expires_at,
            late: false,
        }
    }

    fn seqs(q: &ReceiptQueue) -> Vec<u64> {
        q.items.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn a_full_queue_drops_its_oldest() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut q = ReceiptQueue::new(3);
        for seq in 0..3 {
            assert!(q.push(receipt(seq, later)).is_none());
        }
        assert_eq!(q.push(receipt(3, later)).map(|r| r.seq), Some(0));
        assert_eq!(seqs(&q), [1, 2, 3]);
        // A retry of an older receipt than all kept is the one dropped.
        let first = q.pop().unwrap();
        assert!(q.push(receipt(4, later)).is_none());
        assert_eq!(q.put_back(first).map(|r| r.seq), Some(1));
        assert_eq!(seqs(&q), [2, 3, 4]);
    }

    #[test]
    fn retries_go_back_to_their_place() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut q = ReceiptQueue::new(10);
        for seq in 0..5 {
            q.push(receipt(seq, later));
        }
        let (a, b) = (q.pop().unwrap(), q.pop().unwrap());
        q.push(receipt(5, later));
        q.put_back(b);
        q.put_back(a);
        assert_eq!(seqs(&q), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_oldest_expire_first() {
        let now = Instant::now();
        let mut q = ReceiptQueue::new(10);
        q.push(receipt(0, now));
        q.push(receipt(1, now + Duration::from_millis(1)));
        q.push(receipt(2, now + Duration::from_secs(60)));
        assert_eq!(q.expire(now + Duration::from_millis(1)), 2);
        assert_eq!(seqs(&q), [2]);
        assert_eq!(q.next_expiry(), Some(now + Duration::from_secs(60)));
    }
}
