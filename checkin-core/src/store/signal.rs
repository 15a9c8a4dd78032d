//! The outbox's signal and in-memory hand-off lane, owned by the store so any
//! producer (the SMS inbox, web OTPs, the exposure job, USSD) reaches the
//! sender without knowing it: `enqueue` and the SMS group commit wake it, and
//! replies claimed in a producer's own commit are handed over in memory.
//!
//! The sender subscribes with [`Outbox::subscribe`], which first queues again
//! what a previous run left claimed (`sending`) and only then opens the lane:
//! until it is open [`Outbox::room`] is 0, so nobody claims before the
//! recovery, whatever order the parts are started in.

use std::future::Future;
use std::sync::Arc;
use std::task::Context;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::error::StoreError;
use super::handles::Outbox;
use super::outbox::SendResult;
use super::shared::OutboxSignal;
use crate::model::OutboxMessage;

impl Outbox {
    /// Tells the subscribed sender that messages are waiting (kept for it if
    /// it is busy or not subscribed yet).
    pub fn wake(&self) {
        self.store.outbox_signal().wake();
    }

    /// How many claimed messages the sender takes in memory now: 0 while no
    /// sender is subscribed (or once it stopped), so a producer then claims
    /// nothing and leaves its messages `pending`.
    pub fn room(&self) -> usize {
        self.store
            .outbox_signal()
            .open_lane()
            .map_or(0, |tx| tx.capacity())
    }

    /// Hands messages a producer claimed in its own transaction (queued as
    /// `sending`, e.g. by `Sms::handle_prepared_sms_claiming` with at most
    /// [`Outbox::room`]) to the sender. What does not fit (the sender stopped)
    /// goes back to the outbox, due at `now`, and the sender is woken; if even
    /// that write fails the rows stay `sending` and the next subscription
    /// queues them again. Returns those that went back.
    pub async fn hand_over(
        &self,
        messages: Vec<OutboxMessage>,
        now: DateTime<Utc>,
    ) -> Vec<OutboxMessage> {
        if messages.is_empty() {
            return messages;
        }
        let lane = self.store.outbox_signal().open_lane();
        let mut left = Vec::new();
        for message in messages {
            match &lane {
                Some(tx) => {
                    if let Err(e) = tx.try_send(message) {
                        left.push(e.into_inner());
                    }
                }
                None => left.push(message),
            }
        }
        if left.is_empty() {
            return left;
        }
        let results: Vec<(i64, SendResult)> = left
            .iter()
            .map(|m| {
                let result = SendResult::Retry {
                    reason: "not handed to the sender".into(),
                    next_attempt_at: now,
                };
                (m.id, result)
            })
            .collect();
        if let Err(e) = self.record_send_results(&results, now).await {
            tracing::warn!(error = %e, messages = results.len(), "putting claimed messages back in the outbox failed; they are queued again at the next start");
        }
        self.wake();
        left
    }

    /// Subscribes the store's sender: queues again what a previous run left
    /// claimed (`sending`), then opens a lane of `lane_max` messages. Until
    /// then no producer claims (room 0), so a message handed over is never
    /// also requeued (sent twice). One subscriber at a time.
    pub async fn subscribe(
        &self,
        lane_max: usize,
        now: DateTime<Utc>,
    ) -> Result<OutboxFeed, StoreError> {
        let signal = self.store.outbox_signal().clone();
        let _gate = signal.subscribing.lock().await;
        if signal.open_lane().is_some() {
            return Err(StoreError::Invalid(
                "the outbox already has a subscribed sender".into(),
            ));
        }
        let requeued = self.requeue_sending(now).await?;
        if requeued > 0 {
            tracing::warn!(
                requeued,
                "messages left in flight by a previous run are queued again"
            );
        }
        let (tx, rx) = mpsc::channel(lane_max.max(1));
        *signal.lane() = Some(tx);
        Ok(OutboxFeed {
            lane: rx,
            signal: signal.clone(),
            requeued,
        })
    }
}

/// What [`OutboxFeed::next`] brought.
#[derive(Debug)]
pub enum FeedEvent {
    /// A message a producer claimed and handed over.
    Handed(OutboxMessage),
    /// The outbox may hold something new: claim.
    Woken,
}

/// The subscribed sender's end: the hand-off lane and the wake-up. Dropping
/// it (or [`OutboxFeed::close`]) sets the room to 0.
#[derive(Debug)]
pub struct OutboxFeed {
    lane: mpsc::Receiver<OutboxMessage>,
    signal: Arc<OutboxSignal>,
    requeued: u64,
}

impl OutboxFeed {
    /// How many `sending` rows the subscription queued again.
    pub fn requeued(&self) -> u64 {
        self.requeued
    }

    /// A message handed over, if one is waiting.
    pub fn try_recv(&mut self) -> Option<OutboxMessage> {
        self.lane.try_recv().ok()
    }

    /// Whether a wake-up arrived since the last one taken (takes it).
    pub fn take_wake(&self) -> bool {
        let notified = std::pin::pin!(self.signal.notify.notified());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // A stored wake-up makes the first poll ready; otherwise the future
        // is dropped unregistered and nothing is lost.
        Future::poll(notified, &mut cx).is_ready()
    }

    /// Waits for a message handed over or a wake-up (cancel-safe).
    pub async fn next(&mut self) -> FeedEvent {
        tokio::select! {
            handed = self.lane.recv() => match handed {
                Some(message) => FeedEvent::Handed(message),
                // The store holds the producer end while the lane is open.
                None => {
                    self.signal.notify.notified().await;
                    FeedEvent::Woken
                }
            },
            _ = self.signal.notify.notified() => FeedEvent::Woken,
        }
    }

    /// Closes the lane: producers see no room from now on; what is in it
    /// still comes out of [`OutboxFeed::try_recv`].
    pub fn close(&mut self) {
        self.lane.close();
    }
}

impl Drop for OutboxFeed {
    fn drop(&mut self) {
        self.lane.close();
        let mut lane = self.signal.lane();
        if lane.as_ref().is_some_and(|tx| tx.is_closed()) {
            *lane = None;
        }
    }
}
