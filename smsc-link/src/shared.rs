//! What every session of a link shares ([`Shared`]): the submit queue
//! and the jobs given back, how a message becomes a job, reassembly, the
//! receipt gate, the handlers, the tasks running them (and the replies
//! they answer with), and the deadlines of a shutdown.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use rand::Rng;
use tokio::{
    sync::{mpsc, oneshot},
    time::{Duration, Instant},
};
use tokio_util::task::TaskTracker;

use crate::{
    config::LinkConfig,
    gate::{AckToken, ReceiptGate},
    job::Job,
    masked, pdu,
    reassembly::Reassembler,
    text, Error, HandlerError, Mo, MoAnswer, Receipt, Reply, SubmitOptions, SubmitOutcome,
};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, HandlerError>> + Send>>;
pub(crate) type MoFn = Box<dyn Fn(Mo) -> BoxFuture<MoAnswer> + Send + Sync>;
pub(crate) type ReceiptFn = Box<dyn Fn(Receipt) -> BoxFuture<()> + Send + Sync>;

/// Where a job's outcome goes.
pub(crate) type OutcomeRx = oneshot::Receiver<Result<SubmitOutcome, Error>>;

/// What every session of a link shares.
pub(crate) struct Shared {
    pub(crate) config: LinkConfig,
    /// `config.operator`, shared by every job (the metrics' label).
    pub(crate) operator: Arc<str>,
    queue: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    /// The queue's sending side, for the handlers' replies; weak, so that
    /// the queue closes when every `Link` handle is gone.
    jobs: mpsc::WeakSender<Job>,
    next_job: AtomicU64,
    /// Concatenation reference of the next long message.
    next_reference: AtomicU8,
    requeue: Mutex<VecDeque<Job>>,
    pub(crate) reassembly: Mutex<Reassembler<Option<AckToken>>>,
    pub(crate) gate: Mutex<ReceiptGate>,
    /// `submit_sm` written and not answered, all sessions.
    pub(crate) in_flight: AtomicUsize,
    /// Segments answered ESME_RTHROTTLED / ESME_RMSGQFUL since the start, all
    /// sessions: what a caller pacing its own submits backs off on.
    pub(crate) throttled: AtomicU64,
    pub(crate) on_mo: MoFn,
    pub(crate) on_receipt: ReceiptFn,
    pub(crate) tasks: TaskTracker,
    /// Set when shutdown begins (see [`Shared::closing`]).
    pub(crate) closing: Mutex<Option<Closing>>,
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
    pub(crate) fn new(now: Instant, limit: Duration, response_timeout: Duration) -> Self {
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
        jobs: mpsc::WeakSender<Job>,
        on_mo: MoFn,
        on_receipt: ReceiptFn,
    ) -> Self {
        Self {
            queue: tokio::sync::Mutex::new(queue),
            jobs,
            next_job: AtomicU64::new(0),
            next_reference: AtomicU8::new(rand::thread_rng().gen()),
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
            throttled: AtomicU64::new(0),
            on_mo,
            on_receipt,
            tasks: TaskTracker::new(),
            closing: Mutex::new(None),
            operator: Arc::from(config.operator.as_str()),
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
    pub(crate) async fn close_queue(&self) {
        {
            let mut queue = self.queue.lock().await;
            queue.close();
            // Dropping a job answers it.
            while queue.try_recv().is_ok() {}
        }
        while self.take_requeued().is_some() {}
    }

    /// `text` to `to` as a job: split, every segment's `submit_sm`
    /// encoded once (the fast path, or `rusmpp`'s owned PDU when the
    /// options carry TLVs), with its deadline and claim; and where its
    /// outcome will come.
    pub(crate) fn new_job(
        &self,
        to: &str,
        text: &str,
        options: &SubmitOptions,
        deadline: Option<Instant>,
        claim: Option<Arc<AtomicU8>>,
    ) -> Result<(Job, OutcomeRx), Error> {
        let config = &self.config;
        let reference = self.next_reference.fetch_add(1, Ordering::Relaxed);
        let mut segments = text::split(text, reference).map_err(|e| Error::TextTooLong {
            segments: e.segments,
        })?;
        if let Some(label) = options.gsm7_data_coding {
            for segment in segments.iter_mut().filter(|s| s.data_coding == 0) {
                segment.data_coding = label;
            }
        }
        let source = options
            .source_addr
            .as_deref()
            .unwrap_or(&config.source_addr);
        let header = pdu::SubmitHeader::new(config, source, to, options.registered_delivery)?;
        // Sequence number 0: the session writes each one's own in.
        let mut wire = Vec::with_capacity(segments.iter().map(|s| header.encoded_len(s)).sum());
        for segment in &segments {
            if options.tlvs.is_empty() && options.service_type.is_none() {
                header.encode(segment, 0, &mut wire)?;
            } else {
                pdu::encode_submit_sm_owned(config, source, to, segment, options, 0, &mut wire)?;
            }
        }
        let (reply, outcome) = oneshot::channel();
        let mut job = Job::new(
            self.next_job.fetch_add(1, Ordering::Relaxed),
            wire,
            segments.len(),
            reply,
            Arc::clone(&self.operator),
        );
        job.deadline = deadline;
        job.claim = claim;
        Ok((job, outcome))
    }

    /// Sends a handler's reply like any submit (after the MO it answers
    /// was acknowledged) and logs its fate: the handler does not wait for
    /// it, so nothing it holds waits on the SMSC.
    pub(crate) async fn send_reply(&self, reply: Reply) {
        let Reply { to, text, options } = reply;
        let deadline = options.send_within.map(|d| Instant::now() + d);
        let outcome = match self.new_job(&to, &text, &options, deadline, None) {
            Err(error) => Err(error),
            Ok((job, outcome)) => {
                let queued = match self.jobs.upgrade() {
                    Some(jobs) => jobs.send(job).await.is_ok(),
                    None => false,
                };
                if queued {
                    outcome.await.unwrap_or(Err(Error::ShutDown))
                } else {
                    Err(Error::ShutDown)
                }
            }
        };
        match outcome {
            Ok(SubmitOutcome::Accepted { .. }) => {
                tracing::debug!(to = %masked(&to), "reply sent");
            }
            other => tracing::warn!(to = %masked(&to), outcome = ?other, "reply not sent"),
        }
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
