//! The `Link` handle (cheap `Clone`): starts the supervisors, encodes and
//! queues submits, reports the binds' state, shuts down within its bound;
//! and `bind_once`, the health check.

use std::sync::{
    atomic::{AtomicU8, Ordering},
    Arc,
};

use rusmpp::{Command, CommandStatus};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{Duration, Instant},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::{BindMode, LinkConfig},
    job::{Job, CLAIM_EXPIRED, CLAIM_QUEUED},
    pdu::BindKind,
    session::wire::write,
    shared::{lock, Closing, MoFn, ReceiptFn, Shared},
    supervisor::{connect, supervise, BindState, LinkState},
    telemetry, Error, MoHandler, ReceiptHandler, SubmitOptions, SubmitOutcome,
};

/// Number of the next connection state slot.
#[derive(Debug)]
struct Inner {
    config: LinkConfig,
    jobs: mpsc::Sender<Job>,
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
            Box::pin(async move { mo.on_mo_dialog(m).await })
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
        let shared = Arc::new(Shared::new(
            config.clone(),
            queue,
            jobs.downgrade(),
            on_mo,
            on_receipt,
        ));
        let cancel = CancellationToken::new();
        let abort = CancellationToken::new();
        let supervisors = TaskTracker::new();
        let state_tx = Arc::new(state_tx);
        for (slot, kind) in kinds.into_iter().enumerate() {
            // The refusals a session counts deep in its reads and writes
            // carry the link's operator through the task.
            supervisors.spawn(telemetry::OPERATOR.scope(
                Arc::clone(&shared.operator),
                supervise(
                    Arc::clone(&shared),
                    slot,
                    kind,
                    Arc::clone(&state_tx),
                    cancel.clone(),
                    abort.clone(),
                ),
            ));
        }
        supervisors.close();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                jobs,
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
        let withdraw = options.withdraw.clone();
        if withdraw.as_ref().is_some_and(|w| w.is_cancelled()) {
            return Err(Error::Withdrawn);
        }
        if options.send_within.is_none() && withdraw.is_none() {
            let reply = self.enqueue_job(to, text, &options, None, None).await?;
            return reply.await.unwrap_or(Err(Error::ShutDown));
        }
        // The caller may give up (deadline, withdrawal) while the job waits:
        // the claim decides between that and a session starting it.
        let deadline = options.send_within.map(|d| Instant::now() + d);
        let claim = Arc::new(AtomicU8::new(CLAIM_QUEUED));
        let queued = self.enqueue_job(to, text, &options, deadline, Some(Arc::clone(&claim)));
        let mut reply = match &withdraw {
            Some(w) => tokio::select! {
                queued = queued => queued?,
                _ = w.cancelled() => return Err(Error::Withdrawn),
            },
            None => queued.await?,
        };
        let gave_up = async {
            match (deadline, &withdraw) {
                (Some(at), Some(w)) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => Error::Expired,
                    _ = w.cancelled() => Error::Withdrawn,
                },
                (Some(at), None) => {
                    tokio::time::sleep_until(at).await;
                    Error::Expired
                }
                (None, Some(w)) => {
                    w.cancelled().await;
                    Error::Withdrawn
                }
                (None, None) => std::future::pending().await,
            }
        };
        let why = tokio::select! {
            outcome = &mut reply => return outcome.unwrap_or(Err(Error::ShutDown)),
            why = gave_up => why,
        };
        // Given up before an answer: it is not sent unless a session
        // already started it.
        let given_up = claim
            .compare_exchange(
                CLAIM_QUEUED,
                CLAIM_EXPIRED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if given_up {
            let outcome = match why {
                Error::Withdrawn => "withdrawn",
                _ => "not_sent",
            };
            metrics::counter!(telemetry::SUBMITS, "outcome" => outcome, "operator" => self.inner.shared.config.operator.clone())
                .increment(1);
            return Err(why);
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
        let (job, outcome) = self
            .inner
            .shared
            .new_job(to, text, options, deadline, claim)?;
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

    /// Segments the SMSC answered with ESME_RTHROTTLED or ESME_RMSGQFUL since
    /// the link started, every bind together. The link pauses the bind by
    /// itself; a caller that paces its own submits (the notifier's alerts)
    /// reads the count to back off too.
    pub fn throttled_total(&self) -> u64 {
        self.inner
            .shared
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed)
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
        config.response_timeout(),
    )
    .await?;
    let _ = tokio::time::timeout(
        config.response_timeout(),
        futures::StreamExt::next(&mut framed),
    )
    .await;
    Ok(())
}
