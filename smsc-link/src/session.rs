//! One bound SMPP session: the task that owns the socket. Generic over
//! `AsyncRead + AsyncWrite` (tests use `tokio::io::duplex`).
//!
//! Outbound: jobs are taken from the shared queue only when the window has
//! room; segments are written in order (throttled ones first, in their
//! original order), at most `window_max` unanswered, at most
//! `segments_per_second`; ESME_RTHROTTLED / ESME_RMSGQFUL pause the whole
//! session with exponential backoff. Inbound: `deliver_sm` is decoded,
//! reassembled, and answered only once its handler finished.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    hash::{BuildHasherDefault, Hasher},
    num::NonZeroU32,
    sync::{atomic::Ordering, Arc},
};

use futures::{FutureExt, SinkExt, StreamExt};
use governor::{
    clock::{Clock, DefaultClock},
    DefaultDirectRateLimiter, Quota, RateLimiter,
};
use rusmpp::{
    pdus::{DeliverSm, DeliverSmResp},
    Command, CommandId, CommandStatus, Pdu,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::mpsc,
    time::{Duration, Instant, MissedTickBehavior},
};
use tokio_util::{codec::Framed, sync::CancellationToken};

use crate::{
    codec::{Encoded, Frame, LinkCodec},
    config::{LinkConfig, PartAck},
    gate::{Ack, AckToken},
    link::{lock, throttle_status, write, Job, SegState, Shared},
    pdu::{self, BindKind, Delivery},
    reassembly::GroupKey,
    receipt::normalize_id,
    telemetry::{self, SubmitMeters},
    text, Error, Mo, Receipt, SubmitOutcome,
};

/// Period of the housekeeping tick (timeouts, enquire_link, expiries).
const TICK: Duration = Duration::from_millis(50);

/// Frames already read handled in one turn of the loop before writing.
const FRAMES_PER_TURN_MAX: usize = 64;

/// Largest sequence number before wrapping back to 1.
const SEQUENCE_MAX: u32 = 0x7fff_ffff;

/// Sends the bind of `kind` and waits for its response.
pub(crate) async fn bind<IO>(
    framed: &mut Framed<IO, LinkCodec>,
    config: &LinkConfig,
    kind: BindKind,
) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let pdu = pdu::bind(config, kind)?;
    write(framed, Command::new(CommandStatus::EsmeRok, 1, pdu)).await?;
    let deadline = tokio::time::sleep(config.response_timeout());
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            _ = &mut deadline => return Err(Error::Timeout),
            frame = framed.next() => frame,
        };
        let command = match frame {
            None => {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed before bind_resp",
                )))
            }
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(Frame::Undecodable {
                command_id,
                command_status,
                ..
            })) if command_id & 0x8000_0000 != 0 && command_status != 0 => {
                return Err(Error::BindRefused(CommandStatus::from(command_status)));
            }
            Some(Ok(Frame::Undecodable { command_id, .. })) => {
                return Err(Error::Protocol(format!(
                    "undecodable pdu 0x{command_id:08x} before bind_resp"
                )))
            }
            Some(Ok(Frame::SubmitSmResp { .. })) => continue,
            Some(Ok(Frame::Command(command))) => command,
        };
        match command.id() {
            CommandId::BindTransceiverResp
            | CommandId::BindTransmitterResp
            | CommandId::BindReceiverResp
            | CommandId::GenericNack => {
                return match command.status() {
                    CommandStatus::EsmeRok => Ok(()),
                    status => Err(Error::BindRefused(status)),
                };
            }
            CommandId::EnquireLink => {
                let resp = Command::new(
                    CommandStatus::EsmeRok,
                    command.sequence_number(),
                    Pdu::EnquireLinkResp,
                );
                write(framed, resp).await?;
            }
            _ => {}
        }
    }
}

/// Hashes the session's integer keys (job ids, sequence numbers) with one
/// multiplication instead of SipHash: the keys are counters, and the maps
/// hold at most a window's worth of them.
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Segments to write, ordered by (job id, segment index).
#[derive(Debug, Default)]
struct Unsent(VecDeque<(u64, usize)>);

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

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A written `submit_sm` waiting for its response.
#[derive(Debug)]
struct Sent {
    job: u64,
    index: usize,
    at: Instant,
}

/// The parts of a multipart MO already acknowledged on arrival
/// ([`PartAck::OnArrival`]): put back when the handler fails, so that the
/// SMSC's redelivery of the completing part completes the message again.
#[derive(Debug)]
struct Stored {
    key: GroupKey,
    completing_seq: u8,
    data_coding: u8,
    parts: Vec<Vec<u8>>,
}

impl Stored {
    fn restore(self, shared: &Shared) {
        let mut reassembly = lock(&shared.reassembly);
        let now = Instant::now();
        for (index, bytes) in self.parts.into_iter().enumerate() {
            let seq = index as u8 + 1;
            if seq != self.completing_seq {
                let _ =
                    reassembly.insert(self.key.clone(), seq, self.data_coding, bytes, None, now);
            }
        }
    }
}

/// How a frame leaves the session.
enum Flow {
    Continue,
    Stop,
}

/// The state of one bound session.
pub(crate) struct Session {
    shared: Arc<Shared>,
    kind: BindKind,
    sequence: u32,
    jobs: IntMap<u64, Job>,
    /// Segments to write, in submission order (throttled ones go back here).
    unsent: Unsent,
    window: IntMap<u32, Sent>,
    paused_until: Option<Instant>,
    throttle_backoff: Duration,
    limiter: Option<DefaultDirectRateLimiter>,
    rate_wait_until: Option<Instant>,
    enquire: Option<(u32, Instant)>,
    next_enquire_at: Instant,
    ack_tx: mpsc::Sender<Ack>,
    ack_rx: mpsc::Receiver<Ack>,
    /// `deliver_sm` received on this session and not answered yet.
    acks_outstanding: usize,
    /// Most `deliver_sm` outstanding before the session stops reading
    /// (`deliveries_in_flight_max`): back-pressure, never an error.
    acks_max: usize,
    /// Since when reading is paused because `acks_max` is reached.
    reading_paused_since: Option<Instant>,
    queue_closed: bool,
    /// When the link is shutting down: the end of the whole shutdown,
    /// which bounds the wait for `unbind_resp`.
    closing_end: Option<Instant>,
    meters: SubmitMeters,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("kind", &self.kind)
            .field("window", &self.window.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, kind: BindKind) -> Self {
        let config = &shared.config;
        let limiter = NonZeroU32::new(config.segments_per_second).map(|rate| {
            let burst = NonZeroU32::new((rate.get() / 10).max(1)).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
        });
        // Room for every outstanding delivery's answer: `answer_now`
        // never finds the queue full.
        let acks_max = config.deliveries_in_flight_max.max(1);
        let (ack_tx, ack_rx) = mpsc::channel(acks_max);
        let now = Instant::now();
        Self {
            throttle_backoff: Duration::from_millis(config.throttle_backoff_min_ms),
            next_enquire_at: now + Duration::from_millis(config.enquire_link_interval_ms),
            shared,
            kind,
            sequence: 1,
            jobs: IntMap::default(),
            unsent: Unsent::default(),
            window: IntMap::default(),
            paused_until: None,
            limiter,
            rate_wait_until: None,
            enquire: None,
            ack_tx,
            ack_rx,
            acks_outstanding: 0,
            acks_max,
            reading_paused_since: None,
            queue_closed: false,
            closing_end: None,
            meters: SubmitMeters::register(),
        }
    }

    fn config(&self) -> &LinkConfig {
        &self.shared.config
    }

    fn next_sequence(&mut self) -> u32 {
        self.sequence = if self.sequence >= SEQUENCE_MAX {
            1
        } else {
            self.sequence + 1
        };
        self.sequence
    }

    /// Runs until the connection breaks, the SMSC unbinds, or `cancel`
    /// (then finishes in-flight work and unbinds). Every job still held
    /// when it returns is answered or given back to the shared queue.
    pub(crate) async fn run<IO>(
        mut self,
        mut framed: Framed<IO, LinkCodec>,
        cancel: CancellationToken,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let result = self.serve(&mut framed, &cancel).await;
        let closing = cancel.is_cancelled();
        self.give_back(closing);
        result
    }

    async fn serve<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut close_deadline: Option<Instant> = None;
        let window_max = self.config().window_max;
        loop {
            let now = Instant::now();
            self.pump(framed, now).await?;
            if let Some(deadline) = close_deadline {
                let idle =
                    self.window.is_empty() && self.unsent.is_empty() && self.acks_outstanding == 0;
                if idle || now >= deadline {
                    return self.unbind(framed).await;
                }
            }
            let paused = self.paused_until.is_some_and(|t| now < t);
            let want_job = self.kind.submits()
                && close_deadline.is_none()
                && !self.queue_closed
                && self.unsent.is_empty()
                && self.window.len() < window_max
                && !paused;
            if want_job {
                if let Some(job) = self.shared.take_requeued() {
                    self.admit(job);
                    continue;
                }
                // Take what is already queued, up to the window's room,
                // without a trip through `select!` per job.
                let mut room = window_max.saturating_sub(self.unsent.len() + self.window.len());
                let shared = Arc::clone(&self.shared);
                let mut took = false;
                // Jobs are taken under one lock of the queue; a job of
                // several segments may use more room than one.
                while room > 0 {
                    let taken = shared.try_next_jobs(room, |job| self.admit(job));
                    if taken == 0 {
                        break;
                    }
                    took = true;
                    room = window_max.saturating_sub(self.unsent.len() + self.window.len());
                }
                if took {
                    continue;
                }
            }
            let wake = match (self.paused_until, self.rate_wait_until) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
            .filter(|t| *t > now);
            let reading = self.may_read(now);
            let shared = Arc::clone(&self.shared);
            tokio::select! {
                _ = cancel.cancelled(), if close_deadline.is_none() => {
                    let closing = self.shared.closing(now);
                    close_deadline = Some(closing.drain_until);
                    self.closing_end = Some(closing.end);
                    self.drop_unstarted();
                }
                frame = framed.next(), if reading => match frame {
                    None => return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "smsc closed the connection",
                    ))),
                    Some(Err(error)) => return Err(error.into()),
                    Some(Ok(frame)) => {
                        // One clock read for the batch: the responses
                        // buffered with this one arrived with it.
                        let read_at = Instant::now();
                        if let Flow::Stop = self.on_frame(framed, frame, read_at).await? {
                            return Ok(());
                        }
                        // Frames already buffered are handled without a
                        // trip through `select!` each (bounded).
                        for _ in 0..FRAMES_PER_TURN_MAX {
                            if self.acks_outstanding >= self.acks_max {
                                break;
                            }
                            match framed.next().now_or_never() {
                                Some(Some(Ok(frame))) => {
                                    if let Flow::Stop =
                                        self.on_frame(framed, frame, read_at).await?
                                    {
                                        return Ok(());
                                    }
                                }
                                Some(Some(Err(error))) => return Err(error.into()),
                                Some(None) | None => break,
                            }
                        }
                    }
                },
                Some(ack) = self.ack_rx.recv() => {
                    self.acks_outstanding = self.acks_outstanding.saturating_sub(1);
                    let resp = Command::new(ack.status, ack.seq, DeliverSmResp::builder().build());
                    write(framed, resp).await?;
                }
                job = shared.next_job(), if want_job => match job {
                    Some(job) => self.admit(job),
                    None => self.queue_closed = true,
                },
                _ = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {
                    self.rate_wait_until = None;
                }
                _ = tick.tick() => self.on_tick(framed, Instant::now()).await?,
            }
        }
    }

    /// False while `acks_max` deliveries wait for their handlers: the
    /// session then reads nothing (TCP pushes back on the SMSC) instead of
    /// answering a temporary error. It cannot deadlock: the handlers run in
    /// their own tasks and their answers come back on `ack_rx`, which the
    /// loop keeps serving. What it costs: responses to our submits and
    /// the SMSC's `enquire_link` wait unread meanwhile, so the clocks that
    /// blame the SMSC (response timeout, enquire_link timeout) stop while
    /// reading is paused and resume shifted by the pause. A handler must
    /// therefore not wait for a submit's outcome on the same link.
    fn may_read(&mut self, now: Instant) -> bool {
        let full = self.acks_outstanding >= self.acks_max;
        match (full, self.reading_paused_since) {
            (true, None) => {
                tracing::debug!(
                    deliveries = self.acks_outstanding,
                    "deliveries at their limit: reading paused"
                );
                self.reading_paused_since = Some(now);
            }
            (false, Some(since)) => {
                let paused = now.saturating_duration_since(since);
                for sent in self.window.values_mut() {
                    sent.at += paused;
                }
                if let Some((_, sent_at)) = &mut self.enquire {
                    *sent_at += paused;
                }
                self.reading_paused_since = None;
            }
            _ => {}
        }
        !full
    }

    fn admit(&mut self, job: Job) {
        for (index, state) in job.states.iter().enumerate() {
            if *state == SegState::Unsent {
                self.unsent.insert((job.id, index));
            }
        }
        self.jobs.insert(job.id, job);
    }

    /// Writes segments while the window, the pause and the rate allow.
    async fn pump<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        now: Instant,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if self.paused_until.is_some_and(|t| now < t) {
            return Ok(());
        }
        self.paused_until = None;
        let window_max = self.config().window_max;
        let mut wrote = false;
        while self.window.len() < window_max {
            let Some(&(job_id, index)) = self.unsent.first() else {
                break;
            };
            if let Some(limiter) = &self.limiter {
                if let Err(not_until) = limiter.check() {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    self.rate_wait_until = Some(now + wait);
                    break;
                }
            }
            self.unsent.pop_first();
            let seq = self.next_sequence();
            let Some(job) = self.jobs.get_mut(&job_id) else {
                continue;
            };
            if !job.start(now, &self.meters) {
                // Expired before its first segment was written: never sent.
                self.jobs.remove(&job_id);
                self.unsent.remove_job(job_id);
                continue;
            }
            if index >= job.states.len() {
                continue;
            }
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

    /// Handles one frame read at `read_at`.
    async fn on_frame<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        frame: Frame,
        read_at: Instant,
    ) -> Result<Flow, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let command = match frame {
            Frame::SubmitSmResp {
                sequence_number,
                status,
                message_id,
            } => {
                self.on_submit_resp(sequence_number, status, message_id.as_str(), read_at);
                return Ok(Flow::Continue);
            }
            Frame::Command(command) => command,
            Frame::Undecodable {
                command_id,
                command_status,
                sequence_number,
            } => {
                let status = CommandStatus::from(command_status);
                if command_id & 0x8000_0000 != 0 && status != CommandStatus::EsmeRok {
                    // An error response without (or with a broken) body:
                    // the header's status is all that matters.
                    self.on_submit_resp(sequence_number, status, "", read_at);
                } else if command_id & 0x8000_0000 != 0 {
                    tracing::warn!(command_id, "undecodable response: submit in doubt");
                    self.forget(sequence_number, None);
                } else {
                    tracing::warn!(command_id, "undecodable request");
                    let nack = Command::new(
                        CommandStatus::EsmeRinvcmdlen,
                        sequence_number,
                        Pdu::GenericNack,
                    );
                    write(framed, nack).await?;
                }
                return Ok(Flow::Continue);
            }
        };
        let seq = command.sequence_number();
        let status = command.status();
        match command.pdu() {
            Some(Pdu::SubmitSmResp(resp)) => {
                self.on_submit_resp(seq, status, resp.message_id().as_str(), read_at);
            }
            _ if command.id() == CommandId::SubmitSmResp => {
                // An error response without a body.
                self.on_submit_resp(seq, status, "", read_at);
            }
            Some(Pdu::GenericNack) if self.window.contains_key(&seq) => {
                self.on_submit_resp(seq, status, "", read_at);
            }
            Some(Pdu::DeliverSm(deliver)) => self.on_deliver(seq, deliver),
            Some(Pdu::EnquireLink) => {
                let resp = Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp);
                write(framed, resp).await?;
            }
            Some(Pdu::EnquireLinkResp) if self.enquire.is_some_and(|(s, _)| s == seq) => {
                self.enquire = None;
            }
            Some(Pdu::Unbind) => {
                tracing::info!("smsc unbinds");
                let resp = Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp);
                write(framed, resp).await?;
                return Ok(Flow::Stop);
            }
            Some(Pdu::UnbindResp | Pdu::GenericNack) => {}
            _ if u32::from(command.id()) & 0x8000_0000 == 0 => {
                let nack = Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack);
                write(framed, nack).await?;
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn on_submit_resp(
        &mut self,
        seq: u32,
        status: CommandStatus,
        message_id: &str,
        read_at: Instant,
    ) {
        let Some(sent) = self.window.remove(&seq) else {
            tracing::warn!(seq, "response to no pending submit (late or unknown)");
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
            job.throttles += 1;
            if job.throttles > retries_max {
                self.finish(sent.job, Ok(SubmitOutcome::Rejected { status }));
                return;
            }
            job.states[sent.index] = SegState::Unsent;
            self.unsent.insert((sent.job, sent.index));
            let until = Instant::now() + self.throttle_backoff;
            self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
            tracing::debug!(
                backoff_ms = self.throttle_backoff.as_millis() as u64,
                "throttled: pausing"
            );
            self.throttle_backoff = (self.throttle_backoff * 2).min(throttle_max);
        } else {
            self.finish(sent.job, Ok(SubmitOutcome::Rejected { status }));
        }
    }

    /// A written segment whose response will never be read.
    fn forget(&mut self, seq: u32, _why: Option<&str>) {
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
            self.dispatch_receipt(receipt, token);
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
            self.dispatch_receipt(receipt, token);
        }
    }

    fn on_deliver(&mut self, seq: u32, deliver: &DeliverSm) {
        self.acks_outstanding += 1;
        let token = AckToken::new(self.ack_tx.clone(), seq);
        let config = &self.shared.config;
        match pdu::delivery(deliver, config.receipt_id_radix) {
            Delivery::Unusable => {
                tracing::warn!("receipt without a message id: acknowledged and dropped");
                token.answer_now(CommandStatus::EsmeRok);
            }
            Delivery::Receipt(receipt) => {
                let in_flight = self.shared.in_flight.load(Ordering::Relaxed);
                let admitted =
                    lock(&self.shared.gate).admit(receipt, token, in_flight, Instant::now());
                if let Some((receipt, token)) = admitted {
                    self.dispatch_receipt(receipt, token);
                }
            }
            Delivery::Mo(part) => {
                let default = config.default_alphabet;
                match part.part {
                    None => {
                        let mo = Mo {
                            text: text::decode(part.data_coding, &part.bytes, default),
                            from: part.from,
                            to: part.to,
                            data_coding: part.data_coding,
                            parts: 1,
                        };
                        self.dispatch_mo(mo, vec![token], None);
                    }
                    Some(info) => {
                        let key = GroupKey {
                            from: part.from.clone(),
                            to: part.to.clone(),
                            reference: info.reference,
                            total: info.total,
                        };
                        let hold = config.part_ack == PartAck::Hold;
                        let (stored, own) = if hold {
                            (Some(token), None)
                        } else {
                            (None, Some(token))
                        };
                        let inserted = lock(&self.shared.reassembly).insert(
                            key.clone(),
                            info.seq,
                            part.data_coding,
                            part.bytes,
                            stored,
                            Instant::now(),
                        );
                        for token in inserted.rejected.into_iter().flatten() {
                            token.answer_now(CommandStatus::EsmeRxTAppn);
                        }
                        match inserted.complete {
                            None => {
                                if let Some(token) = own {
                                    token.answer_now(CommandStatus::EsmeRok);
                                }
                            }
                            Some(complete) => {
                                let bytes = complete.parts.concat();
                                let mo = Mo {
                                    text: text::decode(complete.data_coding, &bytes, default),
                                    from: part.from,
                                    to: part.to,
                                    data_coding: complete.data_coding,
                                    parts: complete.parts.len(),
                                };
                                let mut tokens: Vec<AckToken> =
                                    complete.tokens.into_iter().flatten().collect();
                                tokens.extend(own);
                                let keep = (!hold).then_some(Stored {
                                    key,
                                    completing_seq: info.seq,
                                    data_coding: complete.data_coding,
                                    parts: complete.parts,
                                });
                                self.dispatch_mo(mo, tokens, keep);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs the MO handler in its own task; every part is answered after it.
    /// At most `deliveries_in_flight_max` run per session: beyond it the
    /// session stops reading (`may_read`).
    fn dispatch_mo(&self, mo: Mo, tokens: Vec<AckToken>, keep: Option<Stored>) {
        tracing::debug!(from = %crate::masked(&mo.from), parts = mo.parts, "mo");
        let shared = Arc::clone(&self.shared);
        self.shared.tasks.spawn(async move {
            let result = (shared.on_mo)(mo).await;
            let (status, label) = match &result {
                Ok(()) => (CommandStatus::EsmeRok, "ok"),
                Err(error) => {
                    tracing::warn!(%error, "mo handler failed: smsc will redeliver");
                    if let Some(keep) = keep {
                        keep.restore(&shared);
                    }
                    (CommandStatus::EsmeRxTAppn, "error")
                }
            };
            metrics::counter!(telemetry::MO, "result" => label).increment(1);
            for token in tokens {
                token.answer(status).await;
            }
        });
    }

    fn dispatch_receipt(&self, receipt: Receipt, token: AckToken) {
        let shared = Arc::clone(&self.shared);
        self.shared.tasks.spawn(async move {
            let result = (shared.on_receipt)(receipt).await;
            let (status, label) = match &result {
                Ok(()) => (CommandStatus::EsmeRok, "ok"),
                Err(error) => {
                    tracing::warn!(%error, "receipt handler failed: smsc will redeliver");
                    (CommandStatus::EsmeRxTAppn, "error")
                }
            };
            metrics::counter!(telemetry::RECEIPTS, "result" => label).increment(1);
            token.answer(status).await;
        });
    }

    async fn on_tick<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        now: Instant,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let config = self.shared.config.clone();
        let response_timeout = config.response_timeout();
        // While reading is paused, what the SMSC sent waits unread: its
        // clocks stop (see `may_read`).
        let reading = self.reading_paused_since.is_none();
        let expired: Vec<u32> = self
            .window
            .iter()
            .filter(|(_, sent)| reading && now.duration_since(sent.at) >= response_timeout)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            tracing::warn!(seq, "submit_sm_resp timed out: outcome unknown");
            self.forget(seq, Some("timeout"));
        }
        match self.enquire {
            _ if !reading => {}
            Some((_, sent_at))
                if now.duration_since(sent_at)
                    >= Duration::from_millis(config.enquire_link_timeout_ms) =>
            {
                return Err(Error::Timeout);
            }
            None if now >= self.next_enquire_at => {
                let seq = self.next_sequence();
                self.enquire = Some((seq, now));
                self.next_enquire_at = now + Duration::from_millis(config.enquire_link_interval_ms);
                write(
                    framed,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink),
                )
                .await?;
            }
            _ => {}
        }
        for token in lock(&self.shared.reassembly)
            .expire(now)
            .into_iter()
            .flatten()
        {
            token.answer_now(CommandStatus::EsmeRxTAppn);
        }
        let in_flight = self.shared.in_flight.load(Ordering::Relaxed);
        let released = lock(&self.shared.gate).expire(now, in_flight);
        for (receipt, token) in released {
            self.dispatch_receipt(receipt, token);
        }
        Ok(())
    }

    /// The link is closing: messages of which nothing was written yet are
    /// answered [`Error::ShutDown`] now rather than sent.
    fn drop_unstarted(&mut self) {
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

    /// Sends `unbind` and waits (up to the response timeout, and never past
    /// the end of a shutdown) for its response.
    async fn unbind<IO>(&mut self, framed: &mut Framed<IO, LinkCodec>) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let seq = self.next_sequence();
        write(
            framed,
            Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
        )
        .await?;
        let mut until = Instant::now() + self.config().response_timeout();
        if let Some(end) = self.closing_end {
            until = until.min(end);
        }
        let deadline = tokio::time::sleep_until(until);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Ok(()),
                frame = framed.next() => match frame {
                    None | Some(Err(_)) => return Ok(()),
                    Some(Ok(Frame::Command(c))) if c.id() == CommandId::UnbindResp => return Ok(()),
                    Some(Ok(Frame::SubmitSmResp { sequence_number, status, message_id })) => {
                        let read_at = Instant::now();
                        self.on_submit_resp(sequence_number, status, message_id.as_str(), read_at);
                    }
                    Some(Ok(Frame::Command(c))) => {
                        if let Some(Pdu::SubmitSmResp(resp)) = c.pdu() {
                            let id = resp.message_id().as_str().to_string();
                            self.on_submit_resp(c.sequence_number(), c.status(), &id, Instant::now());
                        }
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// The session is over: jobs with a segment in doubt are Unknown,
    /// the others go back to the shared queue (or fail as never sent
    /// when the link is closing).
    fn give_back(&mut self, closing: bool) {
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
}

impl Drop for Session {
    /// A session dropped before `run` finished (a shutdown whose time ran
    /// out) still answers every job it held.
    fn drop(&mut self) {
        self.give_back(true);
    }
}

#[cfg(test)]
mod tests {
    //! The session over `tokio::io::duplex`: the test plays the SMSC.
    use super::*;
    use crate::{link::MoFn, text};
    use rusmpp::{pdus::SubmitSmResp, types::COctetString};
    use tokio::sync::oneshot;

    fn shared(config: LinkConfig) -> (Arc<Shared>, mpsc::Sender<Job>, mpsc::UnboundedReceiver<Mo>) {
        let (jobs, queue) = mpsc::channel(16);
        let (mo_tx, mo_rx) = mpsc::unbounded_channel();
        let on_mo: MoFn = Box::new(move |mo| {
            let _ = mo_tx.send(mo);
            Box::pin(async { Ok(()) })
        });
        let on_receipt: crate::link::ReceiptFn = Box::new(|_| Box::pin(async { Ok(()) }));
        let shared = Arc::new(Shared::new(config, queue, on_mo, on_receipt));
        (shared, jobs, mo_rx)
    }

    async fn smsc_read(smsc: &mut Framed<tokio::io::DuplexStream, LinkCodec>) -> Command {
        let next = tokio::time::timeout(Duration::from_secs(5), smsc.next()).await;
        match next.expect("a pdu within 5 s") {
            Some(Ok(Frame::Command(c))) => *c,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_session_over_duplex_submits_receives_and_unbinds() {
        let config = LinkConfig {
            segments_per_second: 0,
            ..LinkConfig::default()
        };
        let (shared, jobs, mut mos) = shared(config.clone());
        let (esme, smsc) = tokio::io::duplex(4096);
        let mut smsc = Framed::new(smsc, LinkCodec::default());
        let cancel = CancellationToken::new();
        let session = tokio::spawn(
            Session::new(Arc::clone(&shared), BindKind::Transceiver)
                .run(Framed::new(esme, LinkCodec::default()), cancel.clone()),
        );

        // A submit goes out and its response becomes the outcome.
        let segment = &text::split("Привет", 1).expect("fits")[0];
        let mut wire = Vec::new();
        pdu::SubmitHeader::new(&config, "7377", "+79161234567", false)
            .expect("valid")
            .encode(segment, 0, &mut wire)
            .expect("fits");

        let (reply, outcome) = oneshot::channel();
        jobs.send(Job::new(0, wire, 1, reply))
            .await
            .expect("queued");
        let submit = smsc_read(&mut smsc).await;
        assert!(matches!(submit.pdu(), Some(Pdu::SubmitSm(_))));
        let resp = SubmitSmResp::builder()
            .message_id(COctetString::from_string("00ff".into()).expect("id"))
            .build();
        smsc.send(Command::new(
            CommandStatus::EsmeRok,
            submit.sequence_number(),
            resp,
        ))
        .await
        .expect("write");
        let outcome = tokio::time::timeout(Duration::from_secs(5), outcome).await;
        assert_eq!(
            outcome.expect("in time").expect("answered").expect("sent"),
            SubmitOutcome::Accepted {
                message_ids: vec!["255".into()]
            }
        );

        // An MO is handled, then acknowledged.
        let mo = rusmpp::pdus::DeliverSm::builder()
            .source_addr(COctetString::from_string("79161234567".into()).expect("addr"))
            .destination_addr(COctetString::from_string("7377".into()).expect("addr"))
            .short_message(rusmpp::types::OctetString::from_vec(b"STOP".to_vec()).expect("fits"))
            .build();
        smsc.send(Command::new(CommandStatus::EsmeRok, 77, mo))
            .await
            .expect("write");
        let mo = tokio::time::timeout(Duration::from_secs(5), mos.recv()).await;
        assert_eq!(mo.expect("mo in time").expect("mo").text, "STOP");
        let ack = smsc_read(&mut smsc).await;
        assert_eq!(
            (ack.id(), ack.sequence_number(), ack.status()),
            (CommandId::DeliverSmResp, 77, CommandStatus::EsmeRok)
        );

        // enquire_link from the SMSC is answered.
        smsc.send(Command::new(CommandStatus::EsmeRok, 78, Pdu::EnquireLink))
            .await
            .expect("write");
        let resp = smsc_read(&mut smsc).await;
        assert_eq!(
            (resp.id(), resp.sequence_number()),
            (CommandId::EnquireLinkResp, 78)
        );

        // Shutdown: unbind, answered, and the session returns.
        cancel.cancel();
        let unbind = smsc_read(&mut smsc).await;
        assert_eq!(unbind.id(), CommandId::Unbind);
        smsc.send(Command::new(
            CommandStatus::EsmeRok,
            unbind.sequence_number(),
            Pdu::UnbindResp,
        ))
        .await
        .expect("write");
        tokio::time::timeout(Duration::from_secs(5), session)
            .await
            .expect("ended in time")
            .expect("joined")
            .expect("clean end");
    }
}
