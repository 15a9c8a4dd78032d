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
    /// and not yet resent): due again at once, for the next run, which
    /// continues from `copies_in_doubt` more copies that may have reached
    /// the SMSC (stored on the row, so the bound on copies survives a restart).
    Interrupted {
        reason: String,
        copies_in_doubt: u32,
    },
    /// Not written before the message's deadline ([`SendOptions::send_within`]):
    /// never sent late.
    Expired { reason: String },
    /// Taken back unsent because [`SendOptions::withdraw`] was cancelled (the
    /// kill switch): due again when alerts are released.
    Withdrawn { reason: String },
    /// Not tried: the way out it needs is down (with several operators, its
    /// operator has no bind). Due again after `retry_delay_min` whatever its
    /// attempts, so an operator's outage costs its messages only time,
    /// within their max age.
    Deferred { reason: String },
    /// Refused for good (invalid number, barred, expired): do not retry.
    Rejected { reason: String },
    /// Sent but the answer was lost: it may have been delivered. Not retried
    /// by the notifier (a sender asked to [`SendOptions::resend_unknown`]
    /// has already resent it once).
    Unknown { reason: String },
}

/// What a sender is told about one message besides its recipient and text.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The outbox row, so a receipt can be tied back to it.
    pub outbox_id: i64,
    pub priority: Priority,
    /// After this long the message must not be written any more (an OTP
    /// nobody can use later, an alert days late): what is left of its
    /// priority's `*_max_age`. `None`: no limit.
    pub send_within: Option<Duration>,
    /// Ask the SMSC for a delivery receipt.
    pub request_receipt: bool,
    /// An answer lost in flight (`Unknown`) is resent once, unless a receipt
    /// settled the message first: at-least-once, at most two copies.
    pub resend_unknown: bool,
    /// Copies earlier runs wrote whose answer was lost (the row's count): the
    /// in-doubt budget continues from there.
    pub copies_in_doubt: u32,
    /// The operator to send through, when the row names one (a reply: the
    /// operator its MO came through) or the phone's route was learned;
    /// `None`: the sender's numbering plan or default decides.
    pub route: Option<checkin_core::OperatorName>,
    /// The recipient's look-up hash: a sender that learns a route (a
    /// refusal answered by another operator) stores it by this.
    pub recipient_hash: Option<checkin_core::PhoneHash>,
    /// For alerts: cancelled by the kill switch. A sender takes back a
    /// message it has not started writing ([`SendOutcome::Withdrawn`]), so
    /// alerts already handed over stop as well. `None` for the others.
    pub withdraw: Option<CancellationToken>,
}

impl SendOptions {
    /// The policy: every message asks for a receipt (the authority's case
    /// view counts delivered alerts) and is resent once when in doubt unless
    /// a receipt settled it (at least once, at most two copies): a visitor
    /// without an OTP waits outside, and an alert lost with a dropped
    /// connection leaves an exposed person unwarned, while a second copy of
    /// the same advice costs little. Every message carries its deadline: its
    /// priority's life counted from when it was queued.
    pub fn for_message(
        message: &OutboxMessage,
        config: &NotifierConfig,
        now: DateTime<Utc>,
    ) -> Self {
        let deadline = message.created_at
            + chrono::Duration::from_std(config.max_age(message.priority))
                .unwrap_or_else(|_| chrono::Duration::weeks(52));
        SendOptions {
            outbox_id: message.id,
            priority: message.priority,
            send_within: Some((deadline - now).to_std().unwrap_or(Duration::ZERO)),
            request_receipt: true,
            resend_unknown: true,
            copies_in_doubt: message.copies_in_doubt,
            route: message.route.clone(),
            recipient_hash: Some(message.recipient_hash),
            withdraw: None,
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

    /// SMS segments `text` takes on the wire: the operator's contract counts
    /// segments, and the alerts' rate is kept in them. Default 1.
    fn segments(&self, _text: &str) -> u32 {
        1
    }

    /// Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) seen since the
    /// start, a count that only grows: the alerts' rate halves when it moves.
    /// Default 0 (never throttled).
    fn throttled_total(&self) -> u64 {
        0
    }
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
    /// How often the kill switch is read from storage, where another
    /// instance (or the authority's API on another process) may have set
    /// it; one set in this process takes effect at once. Default 250 ms.
    pub kill_switch_poll_interval: Duration,
    /// First retry delay after a temporary failure; doubles each attempt. Default 2 s.
    pub retry_delay_min: Duration,
    /// Longest retry delay. Default 5 min.
    pub retry_delay_max: Duration,
    /// Attempts before a message is given up as failed. Default 10.
    pub attempts_max: u32,
    /// An OTP not written within this long after it was queued is never
    /// sent (the code is useless by then): `expired`. Default 5 min
    /// (`otp_max_age_ms`).
    pub otp_max_age: Duration,
    /// The same for confirmations and other replies to a visitor: one a day
    /// late answers nothing. Default 24 h (`confirmation_max_age_ms`).
    pub confirmation_max_age: Duration,
    /// The same for exposure alerts: advice to get tested is stale after two
    /// days. Default 48 h (`alert_max_age_ms`).
    pub alert_max_age: Duration,
    /// The alerts' rate at most, in SMS segments per second: this instance's
    /// share of the operator's contract for bulk messages. It halves on
    /// throttling and climbs back by `alert_rate_step` a second. 0: alerts
    /// are paced only by `messages_per_second`. Default 50.
    pub alert_segments_per_second: u32,
    /// Segments per second the alerts' rate climbs back each second without
    /// throttling. Default 5.
    pub alert_rate_step: u32,
    /// Alerts one recipient gets per UTC day at most (the operator's cap),
    /// counted in storage; the next waits for the next day. 0: no cap.
    /// Default 10.
    pub recipient_daily_max: u32,
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
            kill_switch_poll_interval: Duration::from_millis(KILL_SWITCH_POLL_MS_DEFAULT),
            retry_delay_min: Duration::from_secs(2),
            retry_delay_max: Duration::from_secs(300),
            attempts_max: 10,
            otp_max_age: Duration::from_millis(OTP_MAX_AGE_MS_DEFAULT),
            confirmation_max_age: Duration::from_millis(CONFIRMATION_MAX_AGE_MS_DEFAULT),
            alert_max_age: Duration::from_millis(ALERT_MAX_AGE_MS_DEFAULT),
            alert_segments_per_second: ALERT_SEGMENTS_PER_SECOND_DEFAULT,
            alert_rate_step: 5,
            recipient_daily_max: RECIPIENT_DAILY_MAX_DEFAULT,
            handoff_max: 2048,
        }
    }
}

/// Default ceiling of the alerts' rate: 50 segments per second, a common
/// contract per bind.
pub const ALERT_SEGMENTS_PER_SECOND_DEFAULT: u32 = 50;
/// Default period of reading the kill switch from storage: 250 ms, so a
/// pause set by another process stops alerts well within a second.
pub const KILL_SWITCH_POLL_MS_DEFAULT: u64 = 250;
/// Default cap of alerts per recipient per day.
pub const RECIPIENT_DAILY_MAX_DEFAULT: u32 = 10;
/// Default life of an OTP in the outbox: 5 min.
pub const OTP_MAX_AGE_MS_DEFAULT: u64 = 5 * 60 * 1000;
/// Default life of a confirmation: 24 h.
pub const CONFIRMATION_MAX_AGE_MS_DEFAULT: u64 = 24 * 3600 * 1000;
/// Default life of an alert: 48 h.
pub const ALERT_MAX_AGE_MS_DEFAULT: u64 = 48 * 3600 * 1000;

impl NotifierConfig {
    /// How long after being queued a message of `priority` may still be sent.
    pub fn max_age(&self, priority: Priority) -> Duration {
        match priority {
            Priority::Otp => self.otp_max_age,
            Priority::Confirmation => self.confirmation_max_age,
            Priority::Alert => self.alert_max_age,
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
    /// Alerts also wait for their own rate ([`AlertPacer`]) and for the kill
    /// switch (`Store::flags`); neither ever holds back an OTP or a
    /// confirmation, which are claimed even while alerts fill the carry.
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
        let mut paused_rx = self.store.flags().watch_alerts_paused();
        self.refresh_paused().await;
        let gate = Arc::new(AlertGate::default());
        gate.set(*paused_rx.borrow());
        // Reads the kill switch on its own clock: this loop may wait for the
        // window or the rate for a while, and the switch must not.
        let watcher_stop = shutdown.child_token();
        let watcher = tokio::spawn(watch_kill_switch(
            self.store.clone(),
            gate.clone(),
            self.config.kill_switch_poll_interval,
            watcher_stop.clone(),
        ));
        let mut pacer = AlertPacer::new(&self.config, self.sender.throttled_total());
        // Claimed (from the outbox or the lane) and not yet started, most
        // urgent first. Bounded: at most `carry_max` alerts waiting for their
        // rate plus `carry_max` others.
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
            let paused = *paused_rx.borrow_and_update();
            pacer.adjust(self.sender.throttled_total(), tokio::time::Instant::now());
            let alerts = carry
                .iter()
                .filter(|m| m.priority == Priority::Alert)
                .count();
            let others = carry.len() - alerts;
            // Both sources feed `carry`, which is sorted before anything starts:
            // an OTP in the outbox goes before handed-over confirmations, and
            // those before alerts in the outbox.
            let take = free.min(carry_max.saturating_sub(others));
            for _ in 0..take {
                match feed.try_recv() {
                    Some(message) => carry.push(message),
                    None => break,
                }
            }
            let room = free.min(carry_max.saturating_sub(others));
            let now = tokio::time::Instant::now();
            if room > 0 && (outbox_due || now >= next_poll) {
                // Alerts only while they may go and the carry has room for
                // them; OTPs and confirmations always. The carry holds no
                // more alerts than their rate starts in a few seconds, so
                // instances sharing the outbox share its alerts.
                let alert_room = pacer.carry_max(carry_max).saturating_sub(alerts);
                let (upto, limit) = if paused || alert_room == 0 {
                    (Priority::Confirmation, room)
                } else {
                    (Priority::Alert, room.min(alert_room))
                };
                match self
                    .store
                    .outbox()
                    .claim_ready_upto(limit as u32, upto, self.clock.now())
                    .await
                {
                    Ok(claimed) => {
                        outbox_due = claimed.len() == limit;
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
            carry.sort_by_key(|m| (m.priority, m.next_attempt_at, m.id));
            if paused && carry.iter().any(|m| m.priority == Priority::Alert) {
                // The kill switch: alerts claimed before it go back, due now,
                // and are not claimed again until it is released.
                let (held, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut carry)
                    .into_iter()
                    .partition(|m| m.priority == Priority::Alert);
                carry = rest;
                for message in held {
                    give_back(&results, message.id, self.clock.now()).await;
                }
            }
            // Start in order while the window has room; alerts also while
            // their rate allows (the rest of the carry are alerts too).
            let mut started = 0;
            let mut alerts_ready_at = None;
            let mut waiting = Vec::new();
            let mut starting = std::mem::take(&mut carry).into_iter();
            while let Some(message) = starting.next() {
                if started >= free || alerts_ready_at.is_some() {
                    waiting.push(message);
                    continue;
                }
                if message.priority == Priority::Alert {
                    let segments = self.sender.segments(&message.text);
                    if let Err(at) = pacer.try_take(segments, tokio::time::Instant::now()) {
                        alerts_ready_at = Some(at);
                        waiting.push(message);
                        continue;
                    }
                }
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
                        carry = waiting;
                        carry.push(message);
                        carry.extend(starting);
                        break 'turns;
                    }
                };
                let job = SendJob {
                    sender: self.sender.clone(),
                    store: self.store.clone(),
                    clock: self.clock.clone(),
                    config: self.config.clone(),
                    results: results.clone(),
                    gate: gate.clone(),
                };
                tracker.spawn(async move {
                    job.send(message).await;
                    drop(permit);
                });
                started += 1;
            }
            carry = waiting;
            if started == 0 {
                // Nothing could start: wait for a message, a wake-up, the
                // poll, the alerts' rate, or the kill switch.
                let until = alerts_ready_at.map_or(next_poll, |at| at.min(next_poll));
                tokio::select! {
                    event = feed.next() => match event {
                        FeedEvent::Handed(message) => carry.push(message),
                        FeedEvent::Woken => outbox_due = true,
                    },
                    _ = tokio::time::sleep_until(until) => {}
                    _ = paused_rx.changed() => {}
                    _ = shutdown.cancelled() => break,
                }
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
        watcher_stop.cancel();
        if let Err(e) = watcher.await {
            tracing::error!(error = %e, "the kill-switch watcher failed");
        }
        drop(results);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the send-result recorder failed");
        }
        Ok(())
    }

    /// Reads the kill switch from storage (another instance may have set it),
    /// which publishes it to the watch; on a storage error the last value holds.
    async fn refresh_paused(&self) {
        if let Err(e) = self.store.flags().alerts_paused().await {
            tracing::warn!(error = %e, "reading the kill switch failed; keeping the last value");
        }
    }
}

/// The kill switch as the sends see it: while alerts may go, a live token
/// that every alert's submit carries ([`SendOptions::withdraw`]); pausing
/// cancels it, so alerts the sender still holds are taken back, and
/// resuming hands out a fresh one.
#[derive(Debug, Default)]
struct AlertGate {
    token: std::sync::Mutex<CancellationToken>,
}

impl AlertGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, CancellationToken> {
        // Only a token behind it: a panic elsewhere leaves nothing torn.
        self.token.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, paused: bool) {
        let mut token = self.lock();
        if paused {
            token.cancel();
        } else if token.is_cancelled() {
            *token = CancellationToken::new();
        }
    }

    /// The token for an alert starting now (cancelled while paused).
    fn token(&self) -> CancellationToken {
        self.lock().clone()
    }
}

/// Keeps `gate` in step with the kill switch: at once when this process
/// sets it (the store's watch), within `every` when another does (read
/// from storage). Until `stop`.
async fn watch_kill_switch(
    store: Store,
    gate: Arc<AlertGate>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut paused = store.flags().watch_alerts_paused();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        gate.set(*paused.borrow_and_update());
        tokio::select! {
            _ = tick.tick() => {
                // Publishes what it read to the watch, read at the loop's top.
                if let Err(e) = store.flags().alerts_paused().await {
                    tracing::warn!(error = %e, "reading the kill switch failed; keeping the last value");
                }
            }
            changed = paused.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = stop.cancelled() => return,
        }
    }
}

/// Seconds of the alerts' rate the notifier holds claimed at most: enough
/// to never starve the pacer between claims, little enough that another
/// instance finds alerts to claim and a pause gives few back.
pub const ALERT_CARRY_SECONDS: f64 = 2.0;

/// The alerts' own rate, in SMS segments per second (the operator's contract
/// counts segments): additive increase, multiplicative decrease. Every
/// throttling answer the sender reports halves it (at most once a second,
/// never below [`ALERT_RATE_MIN`]); every second without one adds
/// `alert_rate_step`, never above `alert_segments_per_second`. Alerts are
/// spaced evenly (no burst), so no one-second window holds more than the
/// rate plus one message's segments. OTPs and confirmations never wait for it.
#[derive(Debug)]
struct AlertPacer {
    /// Segments per second now; 0 when alerts are not paced.
    rate: f64,
    ceiling: f64,
    step: f64,
    /// When the next alert may start.
    next_free: tokio::time::Instant,
    throttles_seen: u64,
    /// Last change of the rate (a halving or a step).
    adjusted_at: tokio::time::Instant,
}

/// The alerts' rate never drops below this (segments per second).
pub const ALERT_RATE_MIN: f64 = 1.0;

/// Share of a second added to the alerts' spacing: the SMSC counts segments
/// on its own clock, after a network and a link queue that move a message a
/// few milliseconds either way (2 % of a second is 20 ms).
pub const ALERT_PACE_MARGIN: f64 = 0.02;

impl AlertPacer {
    fn new(config: &NotifierConfig, throttles_seen: u64) -> Self {
        let ceiling = f64::from(config.alert_segments_per_second);
        let now = tokio::time::Instant::now();
        AlertPacer {
            rate: ceiling,
            ceiling,
            step: f64::from(config.alert_rate_step.max(1)),
            next_free: now,
            throttles_seen,
            adjusted_at: now,
        }
    }

    /// Alerts worth holding claimed: [`ALERT_CARRY_SECONDS`] of the rate
    /// (as if each were one segment), at least one, at most `carry_max`
    /// (also the bound when alerts are not paced).
    fn carry_max(&self, carry_max: usize) -> usize {
        if self.ceiling <= 0.0 {
            return carry_max;
        }
        let worth = (self.rate * ALERT_CARRY_SECONDS).ceil() as usize;
        worth.clamp(1, carry_max.max(1))
    }

    /// Takes the rate's room for `segments`, or says when it will be there.
    fn try_take(
        &mut self,
        segments: u32,
        now: tokio::time::Instant,
    ) -> Result<(), tokio::time::Instant> {
        if self.ceiling <= 0.0 {
            return Ok(());
        }
        if now < self.next_free {
            return Err(self.next_free);
        }
        // A message's segments go out together, so the starts are spaced for
        // whole messages in a second: 4 segments at 30/s may start 7 times a
        // second (28), not every 4/30 s (8 starts in some second: 32). The
        // margin keeps an eighth start out of any second at the SMSC's clock.
        let segments = f64::from(segments.max(1));
        let per_second = (self.rate / segments).floor();
        let spacing = if per_second >= 1.0 {
            (1.0 + ALERT_PACE_MARGIN) / per_second
        } else {
            (1.0 + ALERT_PACE_MARGIN) * segments / self.rate
        };
        self.next_free = self.next_free.max(now) + Duration::from_secs_f64(spacing);
        Ok(())
    }

    /// Halves on new throttling, else adds a step per clean second.
    fn adjust(&mut self, throttles: u64, now: tokio::time::Instant) {
        if self.ceiling <= 0.0 {
            return;
        }
        let second = Duration::from_secs(1);
        if throttles > self.throttles_seen {
            self.throttles_seen = throttles;
            if now.duration_since(self.adjusted_at) >= second || self.rate >= self.ceiling {
                self.rate = (self.rate / 2.0).max(ALERT_RATE_MIN);
                self.adjusted_at = now;
                metrics::gauge!(ALERT_RATE).set(self.rate);
                tracing::info!(rate = self.rate, "throttled: alert rate halved");
            }
        } else if self.rate < self.ceiling && now.duration_since(self.adjusted_at) >= second {
            self.rate = (self.rate + self.step).min(self.ceiling);
            self.adjusted_at = now;
            metrics::gauge!(ALERT_RATE).set(self.rate);
        }
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
    store: Store,
    clock: Arc<dyn Clock>,
    config: NotifierConfig,
    results: mpsc::Sender<(i64, SendResult)>,
    /// The kill switch, looked at once more just before an alert is handed
    /// to the sender, and carried with it ([`SendOptions::withdraw`]).
    gate: Arc<AlertGate>,
}

impl<S: SmsSender> SendJob<S> {
    /// For an alert: `Some(result)` when it must not go now (the kill switch,
    /// or its recipient's daily cap), else `None`.
    async fn hold_alert(&self, message: &OutboxMessage) -> Option<SendResult> {
        if message.priority != Priority::Alert {
            return None;
        }
        let now = self.clock.now();
        if self.gate.token().is_cancelled() {
            return Some(SendResult::Retry {
                reason: "alerts paused".into(),
                next_attempt_at: now,
            });
        }
        let max = self.config.recipient_daily_max;
        if max == 0 {
            return None;
        }
        let taken = self
            .store
            .outbox()
            .take_daily_quota_of(&message.recipient_hash, now, max)
            .await;
        match taken {
            Ok(true) => None,
            Ok(false) => {
                metrics::counter!(DAILY_CAP_HELD).increment(1);
                let tomorrow = (now.date_naive() + chrono::Days::new(1))
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc())
                    .unwrap_or(now);
                Some(SendResult::Retry {
                    reason: format!("recipient's daily cap ({max}) reached; due tomorrow"),
                    next_attempt_at: tomorrow,
                })
            }
            Err(e) => Some(SendResult::Retry {
                reason: format!("counting the recipient's daily cap failed: {e}"),
                next_attempt_at: now + chrono::Duration::seconds(5),
            }),
        }
    }

    /// Opens the recipient's number, submits, and drops the number: the only
    /// place a claimed message's phone is in clear, one message at a time.
    async fn submit(&self, message: &OutboxMessage, options: &SendOptions) -> SendOutcome {
        let to = match self.store.vault().open_phone(&message.recipient) {
            Ok(to) => to,
            // A row no key opens never will: give up on it, loudly.
            Err(e) => {
                tracing::error!(message_id = message.id, error = %e, "recipient not opened");
                return SendOutcome::Rejected {
                    reason: format!("recipient not opened: {e}"),
                };
            }
        };
        self.sender.send(&to, &message.text, options).await
    }

    async fn send(self, message: OutboxMessage) {
        let mut options = SendOptions::for_message(&message, &self.config, self.clock.now());
        if message.priority == Priority::Alert {
            options.withdraw = Some(self.gate.token());
        }
        if options.send_within != Some(Duration::ZERO) {
            if let Some(result) = self.hold_alert(&message).await {
                if self.results.send((message.id, result)).await.is_err() {
                    tracing::warn!(message_id = message.id, "hold not recorded: shutting down");
                }
                return;
            }
        }
        let outcome = if options.send_within == Some(Duration::ZERO) {
            SendOutcome::Expired {
                reason: "older than its life; not sent".into(),
            }
        } else {
            self.submit(&message, &options).await
        };
        tracing::debug!(message_id = message.id, ?outcome, "send finished");
        let result = match outcome {
            SendOutcome::Accepted { message_ids } => SendResult::Sent { message_ids },
            SendOutcome::Rejected { reason } => SendResult::Failed { reason },
            SendOutcome::Unknown { reason } => SendResult::Unknown { reason },
            SendOutcome::Withdrawn { reason } => SendResult::Retry {
                reason,
                next_attempt_at: self.clock.now(),
            },
            SendOutcome::Deferred { reason } => SendResult::Retry {
                reason,
                next_attempt_at: self.clock.now()
                    + chrono::Duration::from_std(self.config.retry_delay_min)
                        .unwrap_or(chrono::Duration::zero()),
            },
            SendOutcome::Interrupted {
                reason,
                copies_in_doubt,
            } => SendResult::Interrupted {
                reason,
                copies_in_doubt,
            },
            SendOutcome::Expired { reason } => {
                metrics::counter!(EXPIRED, "priority" => priority_label(message.priority))
                    .increment(1);
                SendResult::Expired { reason }
            }
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

/// Gauge: the alerts' rate now, in segments per second (see `AlertPacer`).
pub const ALERT_RATE: &str = "checkin_alert_rate_segments_per_second";
/// Counter: alerts held to the next day by `recipient_daily_max`.
pub const DAILY_CAP_HELD: &str = "checkin_alerts_held_daily_cap_total";

/// Counter: messages that expired unsent, label `priority` = otp |
/// confirmation | alert.
pub const EXPIRED: &str = "checkin_outbox_expired_total";

/// A priority as a metric label.
fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Otp => "otp",
        Priority::Confirmation => "confirmation",
        Priority::Alert => "alert",
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

    #[tokio::test(start_paused = true)]
    async fn the_alert_rate_halves_on_throttling_and_climbs_back_by_steps() {
        let config = NotifierConfig {
            alert_segments_per_second: 40,
            alert_rate_step: 5,
            ..NotifierConfig::default()
        };
        let mut pacer = AlertPacer::new(&config, 0);
        let t = tokio::time::Instant::now();
        // Three segments at 40/s: 13 whole alerts a second (39 segments),
        // the next one 1.02/13 s later, no burst.
        assert!(pacer.try_take(3, t).is_ok());
        let spacing = Duration::from_secs_f64((1.0 + ALERT_PACE_MARGIN) / 13.0);
        assert_eq!(pacer.try_take(3, t), Err(t + spacing));
        pacer.adjust(4, t);
        assert_eq!(pacer.rate, 20.0, "halved at once from the ceiling");
        pacer.adjust(9, t + Duration::from_millis(500));
        assert_eq!(pacer.rate, 20.0, "at most one halving a second");
        pacer.adjust(12, t + Duration::from_millis(1500));
        assert_eq!(pacer.rate, 10.0);
        for s in 3..=8 {
            pacer.adjust(12, t + Duration::from_millis(500) * s);
        }
        assert_eq!(
            pacer.rate, 20.0,
            "a step a clean second (at 2.5 s and 3.5 s)"
        );
        for s in 9..=30 {
            pacer.adjust(12, t + Duration::from_millis(500) * s);
        }
        assert_eq!(pacer.rate, 40.0, "never above the contract");
        for throttles in 13..40 {
            pacer.adjust(throttles, t + Duration::from_secs(throttles * 2));
        }
        assert_eq!(pacer.rate, ALERT_RATE_MIN);
    }
}
