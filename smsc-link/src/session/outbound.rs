//! The outbound half of a session: jobs taken from the shared queue only
//! when the window has room; segments written in order (throttled ones
//! first, in their original order), at most `window_max` unanswered, at
//! most `segments_per_second`; ESME_RTHROTTLED / ESME_RMSGQFUL pause the
//! whole session with exponential backoff; responses settle each job.

use std::{
    collections::{BTreeSet, VecDeque},
    num::NonZeroU32,
    sync::{atomic::Ordering, Arc},
};

use futures::SinkExt;
use governor::{
    clock::{Clock, DefaultClock},
    DefaultDirectRateLimiter, Quota, RateLimiter,
};
use rusmpp::{Command, CommandStatus};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Duration, Instant},
};
use tokio_util::codec::Framed;

use super::wire::{IntMap, Sequence};
use crate::{
    codec::{Encoded, LinkCodec},
    gate::AckToken,
    job::{Job, SegState},
    receipt::normalize_id,
    shared::{lock, Shared},
    telemetry::{Refused, SubmitMeters},
    Error, Receipt, SubmitOutcome,
};

/// When a throttled bind may send again.
pub(crate) fn throttle_status(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful
    )
}

/// Share of a second added to the spacing of a bind's segments: the SMSC
/// counts them on its own clock, after the network and its own read loop
/// moved each by up to tens of milliseconds (5 % of a second is 50 ms; 2 %
/// was not enough on a loaded machine: 22 segments seen in one second at a
/// contract of 21).
pub(crate) const CONTRACT_MARGIN: f64 = 0.05;

/// The operator's contract of `rate` segments per second, held strictly:
/// segments evenly spaced by `(1 + CONTRACT_MARGIN) / rate` with no burst,
/// so no one-second window at the SMSC holds more than `rate` of them
/// unless the network bunches them by more than the margin.
pub(crate) fn contract_limiter(rate: NonZeroU32) -> DefaultDirectRateLimiter {
    let spacing = Duration::from_secs_f64((1.0 + CONTRACT_MARGIN) / f64::from(rate.get()));
    let quota = Quota::with_period(spacing)
        .unwrap_or_else(|| Quota::per_second(rate))
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

/// Segments to write, ordered by (job id, segment index).
#[derive(Debug, Default)]
pub(super) struct Unsent(VecDeque<(u64, usize)>);

impl Unsent {
    fn insert(&mut self, key: (u64, usize)) {
        match self.0.back() {
            Some(last) if *last >= key => {
                let at = self.0.partition_point(|k| *k < key);
                if self.0.get(at) != Some(&key) {
                    self.0.insert(at, key);
                }
            }
            _ => self.0.push_back(key),
        }
    }

    /// Forgets every entry of `job`.
    fn remove_job(&mut self, job: u64) {
        let from = self.0.partition_point(|k| k.0 < job);
        let to = self.0.partition_point(|k| k.0 <= job);
        self.0.drain(from..to);
    }

    fn first(&self) -> Option<&(u64, usize)> {
        self.0.front()
    }

    fn pop_first(&mut self) {
        self.0.pop_front();
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A written `submit_sm` waiting for its response.
#[derive(Debug)]
pub(super) struct Sent {
    job: u64,
    index: usize,
    pub(super) at: Instant,
}

/// The outbound half of one session.
pub(super) struct Outbound {
    shared: Arc<Shared>,
    jobs: IntMap<u64, Job>,
    /// Segments to write, in submission order (throttled ones go back here).
    pub(super) unsent: Unsent,
    pub(super) window: IntMap<u32, Sent>,
    pub(super) paused_until: Option<Instant>,
    throttle_backoff: Duration,
    limiter: Option<DefaultDirectRateLimiter>,
    pub(super) rate_wait_until: Option<Instant>,
    meters: SubmitMeters,
    /// Held receipts whose submit's outcome is now out: the session hands
    /// them to the inbound half.
    released: Vec<(Receipt, AckToken)>,
}

impl Outbound {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let config = &shared.config;
        let limiter = NonZeroU32::new(config.segments_per_second).map(contract_limiter);
        let meters = SubmitMeters::register(&config.operator);
        Self {
            throttle_backoff: Duration::from_millis(config.throttle_backoff_min_ms),
            shared,
            jobs: IntMap::default(),
            unsent: Unsent::default(),
            window: IntMap::default(),
            paused_until: None,
            limiter,
            rate_wait_until: None,
            meters,
            released: Vec::new(),
        }
    }

    /// Receipts released since the last call.
    pub(super) fn take_released(&mut self) -> Vec<(Receipt, AckToken)> {
        std::mem::take(&mut self.released)
    }

    pub(super) fn admit(&mut self, job: Job) {
        for (index, state) in job.states.iter().enumerate() {
            if *state == SegState::Unsent {
                self.unsent.insert((job.id, index));
            }
        }
        self.jobs.insert(job.id, job);
    }

    /// Writes segments while the window, the pause and the rate allow.
    pub(super) async fn pump<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        now: Instant,
        sequence: &mut Sequence,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if self.paused_until.is_some_and(|t| now < t) {
            return Ok(());
        }
        self.paused_until = None;
        let window_max = self.shared.config.window_max;
        let mut wrote = false;
        while self.window.len() < window_max {
            let Some(&(job_id, index)) = self.unsent.first() else {
                break;
            };
            let Some(job) = self.jobs.get_mut(&job_id) else {
                self.unsent.pop_first();
                continue;
            };
            // Settled before the rate is spent on it: a job expired or
            // withdrawn before its first segment was written is never sent.
            if !job.start(now, &self.meters) {
                self.jobs.remove(&job_id);
                self.unsent.remove_job(job_id);
                continue;
            }
            if index >= job.states.len() {
                self.unsent.pop_first();
                continue;
            }
            if let Some(limiter) = &self.limiter {
                if let Err(not_until) = limiter.check() {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    self.rate_wait_until = Some(now + wait);
                    break;
                }
            }
            self.unsent.pop_first();
            let seq = sequence.next();
            job.states[index] = SegState::InFlight;
            self.window.insert(
                seq,
                Sent {
                    job: job_id,
                    index,
                    at: now,
                },
            );
            self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
            self.meters.in_flight.increment(1.0);
            // The segment was encoded once; only its sequence number changes.
            if let Some(pdu) = job.segment_mut(index) {
                if let Some(header) = pdu.get_mut(12..16) {
                    header.copy_from_slice(&seq.to_be_bytes());
                }
                framed.feed(Encoded(pdu)).await?;
            }
            wrote = true;
        }
        if wrote {
            SinkExt::<Command>::flush(framed).await?;
        }
        Ok(())
    }

    pub(super) fn on_submit_resp(
        &mut self,
        seq: u32,
        status: CommandStatus,
        message_id: &str,
        read_at: Instant,
    ) {
        let Some(sent) = self.window.remove(&seq) else {
            tracing::warn!(seq, "response to no pending submit (late or unknown)");
            Refused::UnexpectedResponse.count();
            return;
        };
        self.meters.in_flight.decrement(1.0);
        self.meters
            .rtt
            .record(read_at.saturating_duration_since(sent.at).as_secs_f64());
        self.settle(sent, status, message_id);
        // Counted in flight until its outcome is out: a receipt for its id
        // arriving on another bind meanwhile is held, not let through.
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn settle(&mut self, sent: Sent, status: CommandStatus, message_id: &str) {
        let config = &self.shared.config;
        let throttle_min = Duration::from_millis(config.throttle_backoff_min_ms);
        let throttle_max = Duration::from_millis(config.throttle_backoff_max_ms);
        let retries_max = config.throttle_retries_max;
        let radix = config.submit_id_radix;
        let Some(job) = self.jobs.get_mut(&sent.job) else {
            return;
        };
        if status == CommandStatus::EsmeRok {
            let id = normalize_id(message_id, radix);
            let completes = job
                .states
                .iter()
                .enumerate()
                .all(|(i, s)| i == sent.index || matches!(s, SegState::Accepted(_)));
            if !completes {
                // Its receipt waits until the whole message's outcome is out.
                lock(&self.shared.gate).accepted(&id);
            }
            job.states[sent.index] = SegState::Accepted(id);
            self.throttle_backoff = throttle_min;
            if completes {
                // The job is done: its ids move into the outcome.
                let message_ids = job
                    .states
                    .iter_mut()
                    .filter_map(|s| match std::mem::replace(s, SegState::InFlight) {
                        SegState::Accepted(id) => Some(id),
                        _ => None,
                    })
                    .collect();
                self.finish_completed(sent.job, sent.index, message_ids);
            }
        } else if throttle_status(status) {
            self.meters.throttled.increment(1);
            self.shared.throttled.fetch_add(1, Ordering::Relaxed);
            job.throttles += 1;
            if job.throttles > retries_max {
                self.finish(sent.job, Ok(SubmitOutcome::Rejected { status }));
                return;
            }
            job.states[sent.index] = SegState::Unsent;
            self.unsent.insert((sent.job, sent.index));
            // The rest of a full window answers throttled too; those answers
            // belong to the pause already running and must not double it
            // (100 of them would reach the longest pause at once).
            let now = Instant::now();
            if self.paused_until.is_none_or(|t| t <= now) {
                self.paused_until = Some(now + self.throttle_backoff);
                tracing::debug!(
                    backoff_ms = self.throttle_backoff.as_millis() as u64,
                    "throttled: pausing"
                );
                self.throttle_backoff = (self.throttle_backoff * 2).min(throttle_max);
            }
        } else {
            self.finish(sent.job, Ok(SubmitOutcome::Rejected { status }));
        }
    }

    /// A written segment whose response will never be read.
    pub(super) fn forget(&mut self, seq: u32, _why: Option<&str>) {
        if let Some(sent) = self.window.remove(&seq) {
            self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.meters.in_flight.decrement(1.0);
            if let Some(job) = self.jobs.get(&sent.job) {
                let accepted_ids = job.accepted_ids();
                self.finish(sent.job, Ok(SubmitOutcome::Unknown { accepted_ids }));
            }
        }
    }

    /// Answers Accepted a job whose segment `last` completed it (its id
    /// was not counted as pending in the gate); held receipts for its ids
    /// go out. With nothing pending or held in the gate, that is only the
    /// answer: no ids are copied for the gate.
    fn finish_completed(&mut self, job_id: u64, last: usize, message_ids: Vec<String>) {
        let Some(mut job) = self.jobs.remove(&job_id) else {
            return;
        };
        let released = {
            let mut gate = lock(&self.shared.gate);
            if gate.is_idle() {
                job.reply(Ok(SubmitOutcome::Accepted { message_ids }), &self.meters);
                Vec::new()
            } else {
                let ids = message_ids.clone();
                job.reply(Ok(SubmitOutcome::Accepted { message_ids }), &self.meters);
                gate.done(&ids, Some(last))
            }
        };
        for (receipt, token) in released {
            self.released.push((receipt, token));
        }
    }

    /// Answers a job and forgets it; held receipts for its ids go out.
    fn finish(&mut self, job_id: u64, outcome: Result<SubmitOutcome, Error>) {
        let Some(mut job) = self.jobs.remove(&job_id) else {
            return;
        };
        if job.states.contains(&SegState::Unsent) {
            // Only the job's own entries: a range of the ordered queue.
            self.unsent.remove_job(job_id);
        }
        let ids = match &outcome {
            Ok(SubmitOutcome::Accepted { message_ids }) => message_ids.clone(),
            _ => job.accepted_ids(),
        };
        job.reply(outcome, &self.meters);
        let released = lock(&self.shared.gate).done(&ids, None);
        for (receipt, token) in released {
            self.released.push((receipt, token));
        }
    }

    /// The link is closing: messages of which nothing was written yet are
    /// answered [`Error::ShutDown`] now rather than sent.
    pub(super) fn drop_unstarted(&mut self) {
        let unstarted: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, job)| !job.started())
            .map(|(id, _)| *id)
            .collect();
        for id in unstarted {
            self.unsent.remove_job(id);
            // Dropping a job never written answers it `ShutDown`.
            self.jobs.remove(&id);
        }
    }

    /// The session is over: jobs with a segment in doubt are Unknown,
    /// the others go back to the shared queue (or fail as never sent
    /// when the link is closing).
    pub(super) fn give_back(&mut self, closing: bool) {
        let in_doubt: BTreeSet<u64> = self.window.values().map(|s| s.job).collect();
        let n = self.window.len();
        self.shared.in_flight.fetch_sub(n, Ordering::Relaxed);
        self.meters.in_flight.decrement(n as f64);
        self.window.clear();
        let mut ids: Vec<u64> = self.jobs.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if in_doubt.contains(&id) {
                let accepted_ids = self
                    .jobs
                    .get(&id)
                    .map(Job::accepted_ids)
                    .unwrap_or_default();
                self.finish(id, Ok(SubmitOutcome::Unknown { accepted_ids }));
            } else if let Some(job) = self.jobs.remove(&id) {
                if closing {
                    // Dropping answers: Unknown if partly sent, else ShutDown.
                    drop(job);
                } else {
                    self.shared.requeue(job);
                }
            }
        }
        self.unsent.clear();
    }

    /// Written segments whose response did not come in time: Unknown.
    pub(super) fn expire(&mut self, now: Instant) {
        let response_timeout = self.shared.config.response_timeout();
        let expired: Vec<u32> = self
            .window
            .iter()
            .filter(|(_, sent)| now.duration_since(sent.at) >= response_timeout)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            tracing::warn!(seq, "submit_sm_resp timed out: outcome unknown");
            self.forget(seq, Some("timeout"));
        }
    }
}
