//! The `Link` handle (cheap `Clone`), the state every bind shares (the
//! submit queue, reassembly, the receipt gate, the handlers) and the
//! supervisor of each bind: connect, bind, run the session, reconnect with
//! exponential backoff and jitter, fail over between hosts.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use futures::SinkExt;
use rand::Rng;
use rusmpp::{Command, CommandStatus};
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot, watch},
    time::{Duration, Instant},
};
use tokio_util::{codec::Framed, sync::CancellationToken, task::TaskTracker};

use crate::{
    codec::LinkCodec,
    config::{BindMode, LinkConfig},
    gate::{AckToken, ReceiptGate},
    pdu::{self, BindKind},
    reassembly::Reassembler,
    session::{self, Session},
    telemetry::{self, SubmitMeters},
    text, Error, HandlerError, Mo, MoHandler, Receipt, ReceiptHandler, SubmitOptions,
    SubmitOutcome,
};

/// Where one bind stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindState {
    /// Opening the connection or waiting for `bind_resp`.
    Connecting,
    /// Bound: submits flow.
    Bound,
    /// Lost or refused; waiting to try again.
    Reconnecting,
    /// Stopped (after `Link::shutdown`).
    Down,
}

/// The state of every bind of a link (observe with [`Link::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// One entry per connection (two per bind in transmitter+receiver mode).
    pub binds: Vec<BindState>,
    /// Per connection, why it last failed (e.g. `bind refused with status
    /// EsmeRinvpaswd`); cleared when it binds.
    pub last_errors: Vec<Option<String>>,
}

impl LinkState {
    /// Connections currently bound.
    pub fn bound(&self) -> usize {
        self.binds
            .iter()
            .filter(|b| **b == BindState::Bound)
            .count()
    }

    /// True when every connection is bound.
    pub fn all_bound(&self) -> bool {
        self.bound() == self.binds.len()
    }

    /// True when every connection is down (the link was shut down).
    pub fn is_down(&self) -> bool {
        self.binds.iter().all(|b| *b == BindState::Down)
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
pub(crate) type MoFn = Box<dyn Fn(Mo) -> BoxFuture + Send + Sync>;
pub(crate) type ReceiptFn = Box<dyn Fn(Receipt) -> BoxFuture + Send + Sync>;

/// Where a segment of a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegState {
    Unsent,
    InFlight,
    Accepted(String),
}

/// A job not yet written.
pub(crate) const CLAIM_QUEUED: u8 = 0;
/// A job whose first segment a session is writing.
pub(crate) const CLAIM_STARTED: u8 = 1;
/// A job its caller gave up on before it was written: never to be sent.
pub(crate) const CLAIM_EXPIRED: u8 = 2;

/// One message to submit: its segments and whom to tell.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: u64,
    /// Only when a caller may give up on it ([`Link::submit`] with
    /// `send_within`): [`CLAIM_QUEUED`] until a session writes its first
    /// segment ([`CLAIM_STARTED`]) or the caller gives up
    /// ([`CLAIM_EXPIRED`]); exactly one of the two wins.
    pub(crate) claim: Option<Arc<AtomicU8>>,
    /// A session has written (or is writing) its first segment.
    started: bool,
    /// Latest time its first segment may be written.
    pub(crate) deadline: Option<Instant>,
    /// Every segment's `submit_sm`, encoded once at enqueue
    /// ([`pdu::SubmitHeader::encode`]) and laid end to end; the session
    /// patches the sequence number of each write into its header
    /// ([`Job::segment_mut`]).
    pub(crate) wire: Vec<u8>,
    pub(crate) states: Vec<SegState>,
    pub(crate) throttles: u32,
    reply: Option<oneshot::Sender<Result<SubmitOutcome, Error>>>,
}

impl Job {
    /// A job for the `count` encoded `submit_sm` laid end to end in
    /// `wire`, answered on `reply`.
    pub(crate) fn new(
        id: u64,
        wire: Vec<u8>,
        count: usize,
        reply: oneshot::Sender<Result<SubmitOutcome, Error>>,
    ) -> Self {
        Self {
            id,
            claim: None,
            started: false,
            deadline: None,
            states: vec![SegState::Unsent; count],
            wire,
            throttles: 0,
            reply: Some(reply),
        }
    }

    /// The encoded `submit_sm` of segment `index`, header included.
    pub(crate) fn segment_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        let mut at = 0usize;
        for _ in 0..index {
            let len = self.wire.get(at..at + 4)?;
            at += u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        }
        let len = self.wire.get(at..at + 4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.wire.get_mut(at..at + len)
    }

    /// A session has written (or is writing) its first segment.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    pub(crate) fn accepted_ids(&self) -> Vec<String> {
        self.states
            .iter()
            .filter_map(|s| match s {
                SegState::Accepted(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Answers the caller (once) and counts the outcome on `meters`.
    pub(crate) fn reply(&mut self, outcome: Result<SubmitOutcome, Error>, meters: &SubmitMeters) {
        meters.count(&outcome);
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(outcome);
        }
    }
}

impl Job {
    /// Called before writing a segment: false when the job expired (it is
    /// then answered [`Error::Expired`] here, or was by its caller).
    pub(crate) fn start(&mut self, now: Instant, meters: &SubmitMeters) -> bool {
        if self.started {
            return true;
        }
        let past = self.deadline.is_some_and(|d| now > d);
        if let Some(claim) = &self.claim {
            let to = if past { CLAIM_EXPIRED } else { CLAIM_STARTED };
            let won = claim
                .compare_exchange(CLAIM_QUEUED, to, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if !won {
                // Its caller gave up first and was answered then.
                self.reply.take();
                return false;
            }
        }
        if past {
            self.reply(Err(Error::Expired), meters);
            return false;
        }
        self.started = true;
        true
    }
}

impl Drop for Job {
    /// The safety net: a job dropped on any path still gets an outcome;
    /// Unknown when anything of it may have reached the SMSC.
    fn drop(&mut self) {
        if self.reply.is_some() {
            let touched = self.states.iter().any(|s| *s != SegState::Unsent);
            let outcome = if touched {
                Ok(SubmitOutcome::Unknown {
                    accepted_ids: self.accepted_ids(),
                })
            } else {
                Err(Error::ShutDown)
            };
            // Off the hot path: only jobs a session could not finish.
            self.reply(outcome, &SubmitMeters::register());
        }
    }
}

/// What every session of a link shares.
pub(crate) struct Shared {
    pub(crate) config: LinkConfig,
    queue: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    requeue: Mutex<VecDeque<Job>>,
    pub(crate) reassembly: Mutex<Reassembler<Option<AckToken>>>,
    pub(crate) gate: Mutex<ReceiptGate>,
    /// `submit_sm` written and not answered, all sessions.
    pub(crate) in_flight: AtomicUsize,
    pub(crate) on_mo: MoFn,
    pub(crate) on_receipt: ReceiptFn,
    pub(crate) tasks: TaskTracker,
    /// Set when shutdown begins (see [`Shared::closing`]).
    closing: Mutex<Option<Closing>>,
}

/// The deadlines of a shutdown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closing {
    /// Written segments and running handlers are waited for until then.
    pub(crate) drain_until: Instant,
    /// Everything (the `unbind` included) is over by then.
    pub(crate) end: Instant,
}

impl Closing {
    /// The deadlines of a shutdown starting `now` and lasting `limit`:
    /// four fifths (at most `response_timeout`) to drain, the rest for
    /// `unbind`.
    fn new(now: Instant, limit: Duration, response_timeout: Duration) -> Self {
        let drain = (limit - limit / 5).min(response_timeout);
        Self {
            drain_until: now + drain,
            end: now + limit,
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Shared {
    /// The state shared by the sessions taking jobs from `queue`.
    pub(crate) fn new(
        config: LinkConfig,
        queue: mpsc::Receiver<Job>,
        on_mo: MoFn,
        on_receipt: ReceiptFn,
    ) -> Self {
        Self {
            queue: tokio::sync::Mutex::new(queue),
            requeue: Mutex::new(VecDeque::new()),
            reassembly: Mutex::new(Reassembler::new(
                config.reassembly_pending_max,
                Duration::from_millis(config.reassembly_timeout_ms),
            )),
            gate: Mutex::new(ReceiptGate::new(
                config.receipts_held_max,
                Duration::from_millis(config.receipt_hold_ms),
            )),
            in_flight: AtomicUsize::new(0),
            on_mo,
            on_receipt,
            tasks: TaskTracker::new(),
            closing: Mutex::new(None),
            config,
        }
    }

    /// The deadlines of the shutdown under way; when the link stops because
    /// every handle was dropped, they are counted from `now`.
    pub(crate) fn closing(&self, now: Instant) -> Closing {
        *lock(&self.closing).get_or_insert_with(|| {
            Closing::new(
                now,
                self.config.shutdown_timeout(),
                self.config.response_timeout(),
            )
        })
    }

    /// Stops taking messages: every one not taken by a session yet (queued,
    /// given back, or waiting for room in the queue) is answered
    /// [`Error::ShutDown`] now.
    async fn close_queue(&self) {
        {
            let mut queue = self.queue.lock().await;
            queue.close();
            // Dropping a job answers it.
            while queue.try_recv().is_ok() {}
        }
        while self.take_requeued().is_some() {}
    }

    /// A job another session gave back (never written, or only partly
    /// accepted with nothing in doubt), oldest first.
    pub(crate) fn take_requeued(&self) -> Option<Job> {
        lock(&self.requeue).pop_front()
    }

    /// Gives back a job whose unsent segments another bind may send.
    pub(crate) fn requeue(&self, job: Job) {
        let mut queue = lock(&self.requeue);
        // Keep submission order among returned jobs.
        let at = queue.partition_point(|j| j.id < job.id);
        queue.insert(at, job);
    }

    /// Up to `max` queued jobs that are ready now, oldest first, passed
    /// to `take` under one lock of the queue; returns how many.
    pub(crate) fn try_next_jobs(&self, max: usize, mut take: impl FnMut(Job)) -> usize {
        let Ok(mut queue) = self.queue.try_lock() else {
            return 0;
        };
        let mut taken = 0;
        while taken < max {
            match queue.try_recv() {
                Ok(job) => {
                    take(job);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        taken
    }

    /// The next queued job; `None` once every `Link` handle is gone.
    pub(crate) async fn next_job(&self) -> Option<Job> {
        self.queue.lock().await.recv().await
    }
}

/// Number of the next connection state slot.
#[derive(Debug)]
struct Inner {
    config: LinkConfig,
    jobs: mpsc::Sender<Job>,
    next_job: AtomicU64,
    next_reference: AtomicU8,
    state: watch::Receiver<LinkState>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    /// Cancelled when a shutdown's time is up: sessions still running are
    /// dropped (their jobs answered by [`Job`]'s `Drop`).
    abort: CancellationToken,
    supervisors: TaskTracker,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The handle to a running link: cheap to clone, every clone submits
/// through the same binds.
#[derive(Debug, Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

impl Link {
    /// Validates `config` and starts its binds (in the background, on the
    /// current tokio runtime): MO go to `mo`, receipts to `receipts`.
    pub fn start<M: MoHandler, R: ReceiptHandler>(
        config: LinkConfig,
        mo: M,
        receipts: R,
    ) -> Result<Self, Error> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "Link::start must be called inside a tokio runtime".into(),
            ));
        }
        let mo = Arc::new(mo);
        let receipts = Arc::new(receipts);
        let on_mo: MoFn = Box::new(move |m| {
            let mo = Arc::clone(&mo);
            Box::pin(async move { mo.on_mo(m).await })
        });
        let on_receipt: ReceiptFn = Box::new(move |r| {
            let receipts = Arc::clone(&receipts);
            Box::pin(async move { receipts.on_receipt(r).await })
        });
        let (jobs, queue) = mpsc::channel(config.queue_max);
        let kinds: Vec<BindKind> = (0..config.binds)
            .flat_map(|_| match config.bind_mode {
                BindMode::Transceiver => vec![BindKind::Transceiver],
                BindMode::TransmitterReceiver => vec![BindKind::Transmitter, BindKind::Receiver],
            })
            .collect();
        let (state_tx, state) = watch::channel(LinkState {
            binds: vec![BindState::Connecting; kinds.len()],
            last_errors: vec![None; kinds.len()],
        });
        let shared = Arc::new(Shared::new(config.clone(), queue, on_mo, on_receipt));
        let cancel = CancellationToken::new();
        let abort = CancellationToken::new();
        let supervisors = TaskTracker::new();
        let state_tx = Arc::new(state_tx);
        for (slot, kind) in kinds.into_iter().enumerate() {
            supervisors.spawn(supervise(
                Arc::clone(&shared),
                slot,
                kind,
                Arc::clone(&state_tx),
                cancel.clone(),
                abort.clone(),
            ));
        }
        supervisors.close();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                jobs,
                next_job: AtomicU64::new(0),
                next_reference: AtomicU8::new(rand::thread_rng().gen()),
                state,
                shared,
                cancel,
                abort,
                supervisors,
            }),
        })
    }

    /// Sends `text` to `to` (`+7…` or digits): GSM 7-bit when it fits the
    /// alphabet, else UCS2; split with a concatenation UDH when long. Waits
    /// for room in the queue, for a bind, and for every segment's response.
    ///
    /// `Err` means the message was certainly not sent (bad address, too
    /// long, link shut down); every other fate is a [`SubmitOutcome`].
    pub async fn submit(
        &self,
        to: &str,
        text: &str,
        options: SubmitOptions,
    ) -> Result<SubmitOutcome, Error> {
        let Some(send_within) = options.send_within else {
            let reply = self.enqueue_job(to, text, &options, None, None).await?;
            return reply.await.unwrap_or(Err(Error::ShutDown));
        };
        let deadline = Instant::now() + send_within;
        let claim = Arc::new(AtomicU8::new(CLAIM_QUEUED));
        let mut reply = self
            .enqueue_job(to, text, &options, Some(deadline), Some(Arc::clone(&claim)))
            .await?;
        tokio::select! {
            outcome = &mut reply => return outcome.unwrap_or(Err(Error::ShutDown)),
            _ = tokio::time::sleep_until(deadline) => {}
        }
        // Not answered in time: expire it unless a session already started it.
        let expired = claim
            .compare_exchange(
                CLAIM_QUEUED,
                CLAIM_EXPIRED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if expired {
            metrics::counter!(telemetry::SUBMITS, "outcome" => "not_sent").increment(1);
            return Err(Error::Expired);
        }
        reply.await.unwrap_or(Err(Error::ShutDown))
    }

    /// Like [`Link::submit`], but returns once the message is queued; the
    /// outcome arrives on the returned receiver (benchmarks, pipelining).
    /// With `send_within`, a message not written in time is answered
    /// `Err(Error::Expired)` when a bind reaches it.
    pub async fn enqueue(
        &self,
        to: &str,
        text: &str,
        options: &SubmitOptions,
    ) -> Result<oneshot::Receiver<Result<SubmitOutcome, Error>>, Error> {
        let deadline = options.send_within.map(|d| Instant::now() + d);
        self.enqueue_job(to, text, options, deadline, None).await
    }

    async fn enqueue_job(
        &self,
        to: &str,
        text: &str,
        options: &SubmitOptions,
        deadline: Option<Instant>,
        claim: Option<Arc<AtomicU8>>,
    ) -> Result<oneshot::Receiver<Result<SubmitOutcome, Error>>, Error> {
        let config = &self.inner.config;
        let reference = self.inner.next_reference.fetch_add(1, Ordering::Relaxed);
        let segments = text::split(text, reference).map_err(|e| Error::TextTooLong {
            segments: e.segments,
        })?;
        let source = options
            .source_addr
            .as_deref()
            .unwrap_or(&config.source_addr);
        let header = pdu::SubmitHeader::new(config, source, to, options.registered_delivery)?;
        // Sequence number 0: the session writes each one's own in.
        let mut wire = Vec::with_capacity(segments.iter().map(|s| header.encoded_len(s)).sum());
        for segment in &segments {
            header.encode(segment, 0, &mut wire)?;
        }
        let (reply, outcome) = oneshot::channel();
        let mut job = Job::new(
            self.inner.next_job.fetch_add(1, Ordering::Relaxed),
            wire,
            segments.len(),
            reply,
        );
        job.deadline = deadline;
        job.claim = claim;
        if self.inner.cancel.is_cancelled() {
            return Err(Error::ShutDown);
        }
        let queued = match deadline {
            None => self.inner.jobs.send(job).await.map_err(|_| Error::ShutDown),
            Some(deadline) => {
                match tokio::time::timeout_at(deadline, self.inner.jobs.send(job)).await {
                    Ok(sent) => sent.map_err(|_| Error::ShutDown),
                    Err(_) => Err(Error::Expired),
                }
            }
        };
        queued?;
        Ok(outcome)
    }

    /// The binds' states; `changed()` wakes on every transition.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.inner.state.clone()
    }

    /// Waits until at least `n` connections are bound; false when the link
    /// stopped first.
    pub async fn wait_bound(&self, n: usize) -> bool {
        let mut state = self.state();
        loop {
            if state.borrow_and_update().bound() >= n {
                return true;
            }
            if self.inner.cancel.is_cancelled() || state.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Stops the link within `shutdown_timeout_ms` (see
    /// [`Link::shutdown_within`]).
    pub async fn shutdown(&self) {
        self.shutdown_within(self.inner.config.shutdown_timeout())
            .await;
    }

    /// Stops the link, returning within `limit` whatever the binds are
    /// doing (connecting, binding, backing off, waiting for a silent SMSC):
    /// - every message not written yet, and every `submit` waiting for a
    ///   bind or for room in the queue, is answered [`Error::ShutDown`] at
    ///   once;
    /// - written segments settle on their response, or as `Unknown` when
    ///   it does not come within four fifths of `limit` (at most
    ///   `response_timeout_ms`); running MO/receipt handlers get as long;
    /// - each bind then unbinds, waiting for `unbind_resp` until `limit`;
    /// - a handler still running after that is left to finish on its
    ///   own: its `deliver_sm` got no response, so the SMSC delivers again.
    pub async fn shutdown_within(&self, limit: Duration) {
        let now = Instant::now();
        let shared = &self.inner.shared;
        let closing = {
            let mut set = lock(&shared.closing);
            *set.get_or_insert_with(|| Closing::new(now, limit, shared.config.response_timeout()))
        };
        self.inner.cancel.cancel();
        let _ = tokio::time::timeout_at(closing.end, shared.close_queue()).await;
        let supervisors = &self.inner.supervisors;
        if tokio::time::timeout_at(closing.end, supervisors.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown time is up: dropping the sessions still running");
            self.inner.abort.cancel();
            supervisors.wait().await;
        }
        shared.tasks.close();
        if tokio::time::timeout_at(closing.end, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("handlers still running at shutdown: the smsc will redeliver");
        }
    }
}

/// Connects to the primary host, binds as `config.bind_mode` says (the
/// transmitter half for a pair), and unbinds: a health check (e.g.
/// `checkin smsc check`). Returns the bind's refusal status as
/// [`Error::BindRefused`].
pub async fn bind_once(config: &LinkConfig) -> Result<(), Error> {
    config.validate()?;
    let kind = match config.bind_mode {
        BindMode::Transceiver => BindKind::Transceiver,
        BindMode::TransmitterReceiver => BindKind::Transmitter,
    };
    let mut framed = connect(config, &config.host, config.port, kind).await?;
    write(
        &mut framed,
        Command::new(CommandStatus::EsmeRok, 2, rusmpp::Pdu::Unbind),
    )
    .await?;
    let _ = tokio::time::timeout(
        config.response_timeout(),
        futures::StreamExt::next(&mut framed),
    )
    .await;
    Ok(())
}

fn set_error(state: &watch::Sender<LinkState>, slot: usize, error: Option<String>) {
    state.send_modify(|s| {
        if let Some(e) = s.last_errors.get_mut(slot) {
            *e = error;
        }
    });
}

fn set_state(state: &watch::Sender<LinkState>, slot: usize, value: BindState) {
    state.send_modify(|s| {
        if let Some(b) = s.binds.get_mut(slot) {
            *b = value;
        }
    });
}

/// `base` ± `jitter` share of it, at random.
fn jittered(base: Duration, jitter: f64) -> Duration {
    let spread = base.as_secs_f64() * jitter;
    let offset = if spread > 0.0 {
        rand::thread_rng().gen_range(-spread..=spread)
    } else {
        0.0
    };
    Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0))
}

/// Opens a connection to `host:port` and binds it.
async fn connect(
    config: &LinkConfig,
    host: &str,
    port: u16,
    kind: BindKind,
) -> Result<Framed<TcpStream, LinkCodec>, Error> {
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    let socket = tokio::time::timeout(connect_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| Error::Timeout)??;
    let _ = socket.set_nodelay(true);
    let mut framed = Framed::new(socket, LinkCodec::default());
    session::bind(&mut framed, config, kind).await?;
    Ok(framed)
}

/// Keeps connection `slot` bound until `cancel`.
async fn supervise(
    shared: Arc<Shared>,
    slot: usize,
    kind: BindKind,
    state: Arc<watch::Sender<LinkState>>,
    cancel: CancellationToken,
    abort: CancellationToken,
) {
    let config = shared.config.clone();
    let hosts = config.hosts();
    let backoff_min = Duration::from_millis(config.reconnect_backoff_min_ms);
    let backoff_max = Duration::from_millis(config.reconnect_backoff_max_ms);
    let mut backoff = backoff_min;
    // A transmitter+receiver pair shares one bind number.
    let bind_no = match config.bind_mode {
        BindMode::Transceiver => slot,
        BindMode::TransmitterReceiver => slot / 2,
    };
    let mut host_no = if config.spread_binds { bind_no } else { 0 };
    while !cancel.is_cancelled() {
        set_state(&state, slot, BindState::Connecting);
        let host = &hosts[host_no % hosts.len()];
        let connected = tokio::select! {
            _ = cancel.cancelled() => break,
            connected = connect(&config, &host.host, host.port, kind) => connected,
        };
        match connected {
            Ok(framed) => {
                tracing::info!(slot, host = %host.host, port = host.port, ?kind, "bound");
                set_error(&state, slot, None);
                set_state(&state, slot, BindState::Bound);
                metrics::gauge!(telemetry::BINDS).increment(1.0);
                backoff = backoff_min;
                let session = Session::new(Arc::clone(&shared), kind).run(framed, cancel.clone());
                // The session bounds its own closing; `abort` is the
                // backstop for one stuck writing to an SMSC that reads nothing.
                let result = tokio::select! {
                    result = session => result,
                    _ = abort.cancelled() => Err(Error::Timeout),
                };
                metrics::gauge!(telemetry::BINDS).decrement(1.0);
                match result {
                    Ok(()) => tracing::info!(slot, "session ended"),
                    Err(error) => {
                        tracing::warn!(slot, %error, "session lost");
                        set_error(&state, slot, Some(error.to_string()));
                    }
                }
            }
            Err(error) => {
                tracing::warn!(slot, host = %host.host, port = host.port, %error, "bind failed");
                set_error(&state, slot, Some(error.to_string()));
                host_no += 1;
            }
        }
        if cancel.is_cancelled() {
            break;
        }
        set_state(&state, slot, BindState::Reconnecting);
        metrics::counter!(telemetry::RECONNECTS).increment(1);
        let wait = jittered(backoff, config.reconnect_jitter);
        backoff = (backoff * 2).min(backoff_max);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    set_state(&state, slot, BindState::Down);
}

/// Writes one command (used by the session for responses).
pub(crate) async fn write<IO>(
    framed: &mut Framed<IO, LinkCodec>,
    command: Command,
) -> Result<(), Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    framed.send(command).await.map_err(Error::from)
}

/// When a throttled bind may send again.
pub(crate) fn throttle_status(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful
    )
}
