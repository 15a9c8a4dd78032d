//! Drains the outbox through an `SmsSender` it owns: priority order
//! (OTP > confirmation > alert), a rate limit (governor), a bounded window of
//! sends in flight, and retries of temporary failures with backoff.
//!
//! Speaks to the `SmsSender` trait, never to `smsc_link` directly; only the
//! `checkin` binary connects the two. Producers never speak to it at all:
//! it subscribes to the store's outbox (`Store::outbox`), which they wake
//! and hand claimed messages to.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use checkin_core::store::{FeedEvent, OutboxFeed, SendResult};
use checkin_core::{Clock, Msisdn, OutboxMessage, Priority, Store, StoreError};
use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What happened to one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The SMSC accepted it; one id per segment.
    Accepted { message_ids: Vec<String> },
    /// Not sent, may succeed later (link down, throttled, SMSC queue full):
    /// retried with backoff.
    Temporary { reason: String },
    /// Not settled because the sender is stopping (never written, or in doubt
    /// and not yet resent): due again at once, for the next run.
    Interrupted { reason: String },
    /// Refused for good (invalid number, barred, expired): do not retry.
    Rejected { reason: String },
    /// Sent but the answer was lost: it may have been delivered. Not retried
    /// by the notifier (a sender asked to [`SendOptions::resend_unknown`]
    /// has already resent it once).
    Unknown { reason: String },
}

/// What a sender is told about one message besides its recipient and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOptions {
    /// The outbox row, so a receipt can be tied back to it.
    pub outbox_id: i64,
    pub priority: Priority,
    /// After this long the message must not be written any more (an OTP
    /// nobody can use later); `None`: no limit.
    pub send_within: Option<Duration>,
    /// Ask the SMSC for a delivery receipt.
    pub request_receipt: bool,
    /// An answer lost in flight (`Unknown`) is resent once, unless a receipt
    /// settled the message first: at-least-once, at most two copies.
    pub resend_unknown: bool,
}

impl SendOptions {
    /// The policy by priority: OTPs and confirmations ask for a receipt and
    /// are resent once when in doubt (a visitor without them waits outside);
    /// alerts are never sent twice. OTPs carry their deadline.
    pub fn for_message(
        message: &OutboxMessage,
        config: &NotifierConfig,
        now: DateTime<Utc>,
    ) -> Self {
        let urgent = message.priority != Priority::Alert;
        let send_within = (message.priority == Priority::Otp).then(|| {
            let deadline = message.created_at
                + chrono::Duration::from_std(config.otp_send_within)
                    .unwrap_or_else(|_| chrono::Duration::weeks(52));
            (deadline - now).to_std().unwrap_or(Duration::ZERO)
        });
        SendOptions {
            outbox_id: message.id,
            priority: message.priority,
            send_within,
            request_receipt: urgent,
            resend_unknown: urgent,
        }
    }
}

/// Anything that can send an SMS: the SMPP link in production.
pub trait SmsSender: Send + Sync + 'static {
    /// Sends `text` to `to` from the service's short number.
    fn send(
        &self,
        to: &Msisdn,
        text: &str,
        options: &SendOptions,
    ) -> impl Future<Output = SendOutcome> + Send;
}

/// The notifier's settings, with documented defaults.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Messages per second this instance may send (its share of the operator's
    /// contract). Default 100.
    pub messages_per_second: NonZeroU32,
    /// Sends in flight at once (fills the link's windows). Default 256.
    pub in_flight_max: usize,
    /// Most messages claimed from the outbox at once. An OTP queued behind a
    /// burst of alerts waits for at most one claim (at the rate limit).
    /// Default 256.
    pub claim_max: u32,
    /// How often the outbox is polled when nobody wakes the notifier. Default 1 s.
    pub poll_interval: Duration,
    /// First retry delay after a temporary failure; doubles each attempt. Default 2 s.
    pub retry_delay_min: Duration,
    /// Longest retry delay. Default 5 min.
    pub retry_delay_max: Duration,
    /// Attempts before a message is given up as failed. Default 10.
    pub attempts_max: u32,
    /// An OTP not written within this long after it was queued is never
    /// sent (the code is useless by then). Default 5 min.
    pub otp_send_within: Duration,
    /// Messages producers may hand over in memory (claimed in their own
    /// commit, see `Store::outbox`) before they leave the rest `pending`: a
    /// few windows' worth, so a burst of check-ins needs no claim
    /// transactions. Default 2048.
    pub handoff_max: usize,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            messages_per_second: NonZeroU32::new(100).expect("non-zero"),
            in_flight_max: 256,
            claim_max: 256,
            poll_interval: Duration::from_secs(1),
            retry_delay_min: Duration::from_secs(2),
            retry_delay_max: Duration::from_secs(300),
            attempts_max: 10,
            otp_send_within: Duration::from_secs(300),
            handoff_max: 2048,
        }
    }
}

/// Why the notifier stopped.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

/// Drains the outbox. Construct, optionally [`Notifier::prepare`], then
/// `run`. Producers reach it through the store (`Store::outbox`), never
/// through this crate.
#[derive(Debug)]
pub struct Notifier<S> {
    store: Store,
    sender: Arc<S>,
    clock: Arc<dyn Clock>,
    config: NotifierConfig,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// The store's outbox subscription, once prepared.
    feed: Option<OutboxFeed>,
}

impl<S: SmsSender> Notifier<S> {
    pub fn new(store: Store, sender: S, clock: Arc<dyn Clock>, config: NotifierConfig) -> Self {
        let limiter = Arc::new(RateLimiter::direct(Quota::per_second(
            config.messages_per_second,
        )));
        Notifier {
            store,
            sender: Arc::new(sender),
            clock,
            config,
            limiter,
            feed: None,
        }
    }

    /// Subscribes to the store's outbox: messages a previous run left claimed
    /// (`sending`) are queued again, then the hand-off lane opens (producers
    /// claim nothing before). `run` does it itself if not done; doing it
    /// first reports a storage failure to whoever starts the notifier.
    pub async fn prepare(mut self) -> Result<Self, NotifierError> {
        if self.feed.is_none() {
            self.feed = Some(self.subscribe().await?);
        }
        Ok(self)
    }

    async fn subscribe(&self) -> Result<OutboxFeed, NotifierError> {
        Ok(self
            .store
            .outbox()
            .subscribe(self.config.handoff_max, self.clock.now())
            .await?)
    }

    /// Runs until `shutdown`, then waits for the sends in flight. Subscribes
    /// first if [`Notifier::prepare`] was not called: messages a previous run
    /// left claimed are queued again before anything is claimed or handed
    /// over.
    ///
    /// Each turn gathers what the hand-off lane holds and, when the outbox may
    /// hold something (woken, polled, or the last claim came back full), a
    /// claim from it, and starts the most urgent of all of them first, as many
    /// as the window has room for: priority order holds across both sources.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), NotifierError> {
        let mut feed = match self.feed.take() {
            Some(feed) => feed,
            None => self.subscribe().await?,
        };
        let window = Arc::new(Semaphore::new(self.config.in_flight_max.max(1)));
        let tracker = TaskTracker::new();
        let (results, results_rx) = mpsc::channel(RESULTS_QUEUE_MAX);
        let recorder = tokio::spawn(record_results(
            self.store.clone(),
            self.clock.clone(),
            results_rx,
        ));
        // Claimed (from the outbox or the lane) and not yet started, most
        // urgent first. Bounded: a turn adds at most `carry_max - len`.
        let carry_max = 2 * (self.config.claim_max as usize).max(1);
        let mut carry: Vec<OutboxMessage> = Vec::new();
        let mut outbox_due = true;
        let mut next_poll = tokio::time::Instant::now();
        'turns: loop {
            if shutdown.is_cancelled() {
                break;
            }
            // Start only what the window can take now, so priorities stay fresh.
            let free = window
                .available_permits()
                .min(self.config.claim_max as usize);
            if free == 0 {
                tokio::select! {
                    permit = window.clone().acquire_owned() => drop(permit),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            if feed.take_wake() {
                outbox_due = true;
            }
            // Both sources feed `carry`, which is sorted before anything starts:
            // an OTP in the outbox goes before handed-over confirmations, and
            // those before alerts in the outbox.
            let take = free.min(carry_max.saturating_sub(carry.len()));
            for _ in 0..take {
                match feed.try_recv() {
                    Some(message) => carry.push(message),
                    None => break,
                }
            }
            let room = free.min(carry_max.saturating_sub(carry.len()));
            if room > 0 && (outbox_due || tokio::time::Instant::now() >= next_poll) {
                match self
                    .store
                    .outbox()
                    .claim_ready(room as u32, self.clock.now())
                    .await
                {
                    Ok(claimed) => {
                        outbox_due = claimed.len() == room;
                        carry.extend(claimed);
                    }
                    Err(e) => {
                        // Tried again at the next poll.
                        tracing::warn!(error = %e, "claiming from the outbox failed; retrying");
                        outbox_due = false;
                    }
                }
                next_poll = tokio::time::Instant::now() + self.config.poll_interval;
            }
            if carry.is_empty() {
                tokio::select! {
                    event = feed.next() => match event {
                        FeedEvent::Handed(message) => carry.push(message),
                        FeedEvent::Woken => outbox_due = true,
                    },
                    _ = tokio::time::sleep_until(next_poll) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            carry.sort_by_key(|m| (m.priority, m.next_attempt_at, m.id));
            let starting: Vec<OutboxMessage> = carry.drain(..free.min(carry.len())).collect();
            let mut starting = starting.into_iter();
            while let Some(message) = starting.next() {
                let ready = async {
                    let permit = window
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the window semaphore is never closed");
                    self.limiter.until_ready().await;
                    permit
                };
                let permit = tokio::select! {
                    permit = ready => permit,
                    _ = shutdown.cancelled() => {
                        carry.push(message);
                        carry.extend(starting);
                        break 'turns;
                    }
                };
                let job = SendJob {
                    sender: self.sender.clone(),
                    clock: self.clock.clone(),
                    config: self.config.clone(),
                    results: results.clone(),
                };
                tracker.spawn(async move {
                    job.send(message).await;
                    drop(permit);
                });
            }
        }
        // Claimed but not started, or handed over and not taken: due again, for
        // the next run.
        for message in carry {
            give_back(&results, message.id, self.clock.now()).await;
        }
        feed.close();
        while let Some(message) = feed.try_recv() {
            give_back(&results, message.id, self.clock.now()).await;
        }
        drop(feed);
        tracker.close();
        tracker.wait().await;
        drop(results);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the send-result recorder failed");
        }
        Ok(())
    }
}

/// A claimed message that was not sent goes back to the outbox, due now.
async fn give_back(results: &mpsc::Sender<(i64, SendResult)>, id: i64, now: DateTime<Utc>) {
    let result = SendResult::Retry {
        reason: "not sent before shutdown".into(),
        next_attempt_at: now,
    };
    // The recorder outlives this loop, so this cannot fail; if it did, the row
    // stays `sending` and the next start queues it again.
    let _ = results.send((id, result)).await;
}

/// Send results waiting to be written.
const RESULTS_QUEUE_MAX: usize = 4096;
/// Most results written in one transaction.
const RESULTS_BATCH_MAX: usize = 1024;
/// How long the first result of a batch waits for others to join it. Each
/// write is a transaction on the store's single SQLite writer, shared with the
/// MO group commits: fewer, larger ones leave it more time for check-ins.
/// Only the outbox row's status waits; nothing a visitor sees.
const RESULTS_LINGER: Duration = Duration::from_millis(20);
/// Attempts to write a batch of results before leaving them to the next start.
const RESULTS_WRITE_ATTEMPTS_MAX: u32 = 5;

/// Writes send results in batches: whatever arrived while the last write ran,
/// in one transaction. Ends when every sender of results is gone.
async fn record_results(
    store: Store,
    clock: Arc<dyn Clock>,
    mut rx: mpsc::Receiver<(i64, SendResult)>,
) {
    let mut batch = Vec::with_capacity(RESULTS_BATCH_MAX);
    while rx.recv_many(&mut batch, RESULTS_BATCH_MAX).await > 0 {
        if batch.len() < RESULTS_BATCH_MAX {
            // Closed or not, whatever is queued after the linger joins.
            tokio::time::sleep(RESULTS_LINGER).await;
            while batch.len() < RESULTS_BATCH_MAX {
                match rx.try_recv() {
                    Ok(result) => batch.push(result),
                    Err(_) => break,
                }
            }
        }
        let mut attempt = 1;
        loop {
            match store
                .outbox()
                .record_send_results(&batch, clock.now())
                .await
            {
                Ok(()) => break,
                Err(e) if attempt < RESULTS_WRITE_ATTEMPTS_MAX => {
                    tracing::warn!(error = %e, attempt, "recording send results failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    // The rows stay `sending`; the next start queues them again.
                    tracing::error!(error = %e, results = batch.len(), "recording send results failed");
                    break;
                }
            }
        }
        batch.clear();
    }
}

/// One message's trip through the sender; its result goes to the recorder.
struct SendJob<S> {
    sender: Arc<S>,
    clock: Arc<dyn Clock>,
    config: NotifierConfig,
    results: mpsc::Sender<(i64, SendResult)>,
}

impl<S: SmsSender> SendJob<S> {
    async fn send(self, message: OutboxMessage) {
        let options = SendOptions::for_message(&message, &self.config, self.clock.now());
        let outcome = if options.send_within == Some(Duration::ZERO) {
            SendOutcome::Rejected {
                reason: "not sent within the time allowed".into(),
            }
        } else {
            self.sender
                .send(&message.recipient, &message.text, &options)
                .await
        };
        tracing::debug!(message_id = message.id, ?outcome, to = %message.recipient.masked(), "send finished");
        let result = match outcome {
            SendOutcome::Accepted { message_ids } => SendResult::Sent { message_ids },
            SendOutcome::Rejected { reason } => SendResult::Failed { reason },
            SendOutcome::Unknown { reason } => SendResult::Unknown { reason },
            SendOutcome::Interrupted { reason } => SendResult::Retry {
                reason,
                next_attempt_at: self.clock.now(),
            },
            SendOutcome::Temporary { reason } if message.attempts >= self.config.attempts_max => {
                SendResult::Failed {
                    reason: format!("gave up after {} attempts: {reason}", message.attempts),
                }
            }
            SendOutcome::Temporary { reason } => {
                let delay = retry_delay(&self.config, message.attempts);
                let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                SendResult::Retry {
                    reason,
                    next_attempt_at: self.clock.now() + delay,
                }
            }
        };
        if self.results.send((message.id, result)).await.is_err() {
            // Only at shutdown; the row stays `sending` and is queued again at start.
            tracing::warn!(
                message_id = message.id,
                "send result not recorded: shutting down"
            );
        }
    }
}

/// Exponential backoff with jitter: `min · 2^(attempt-1)`, at most `max`, ±25 %.
fn retry_delay(config: &NotifierConfig, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let base = config
        .retry_delay_min
        .saturating_mul(1u32 << exponent)
        .min(config.retry_delay_max);
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.75..1.25);
    base.mul_f64(jitter).min(config.retry_delay_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let config = NotifierConfig::default();
        let first = retry_delay(&config, 1);
        assert!(first >= Duration::from_millis(1500) && first <= Duration::from_millis(2500));
        let fourth = retry_delay(&config, 4);
        assert!(fourth >= Duration::from_secs(12) && fourth <= Duration::from_secs(20));
        assert!(retry_delay(&config, 30) <= config.retry_delay_max);
    }
}
