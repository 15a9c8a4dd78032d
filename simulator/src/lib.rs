//! The bundled SMSC simulator: an SMPP 3.4 server with a control API, a virtual
//! phone page, receipts, fault injection and a load generator.
//!
//! Start it in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), simulator::Error> {
//! use simulator::{Config, MoRequest, Simulator};
//! use tokio_util::sync::CancellationToken;
//!
//! let sim = Simulator::new(Config::default())?;
//! let shutdown = CancellationToken::new();
//! let smpp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn(sim.clone().serve_smpp(smpp, shutdown.clone()));
//! tokio::spawn(sim.clone().serve_http(http, shutdown.clone()));
//! // ... an ESME binds as checkin:checkin ...
//! let report = sim.inject_mo(MoRequest::new("+79161234567", "ВХОД*123-456-789")).await?;
//! let replies = sim.messages(Some("+79161234567"), 100);
//! # Ok(()) }
//! ```
//!
//! Independent of every other crate of the workspace.

mod codec;
pub mod config;
mod delivery;
pub mod esme;
pub mod faults;
mod http;
mod journal;
pub mod load;
pub mod network;
pub mod pdu;
mod receipts;
mod session;
pub mod stats;
pub mod store;
pub mod text;
pub mod ussd;

use std::sync::{
    atomic::{AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::{broadcast, watch},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use codec::{encode_to_vec, Inbound, SmppCodec};
pub use config::{
    Account, Config, Foreign, MessageIdFormat, OperatorConfig, UssdConfig, UssdProfile,
    UssdSessionKey,
};
pub use delivery::{MoEncoding, MoReport, MoRequest};
pub use faults::FaultProfile;
pub use network::Network;
pub use smpp_text::range::NumberRange;
pub use stats::StatsSnapshot;
pub use store::MtMessage;
pub use ussd::{UssdClosed, UssdDial, UssdScreen};

use crate::{journal::Journal, receipts::Receipts, session::Registry, stats::Stats, store::Store};

/// Errors of the simulator library; each names the call that returns it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration or fault profile value is out of range
    /// (`Simulator::new`, `set_faults`, `Account::from_str`).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An injected MO is malformed (`inject_mo`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No ESME is bound as receiver or transceiver (`inject_mo`).
    #[error("no esme is bound to receive")]
    NoReceiver,
    /// The simulator is shutting down (`inject_mo`).
    #[error("the simulator is shutting down")]
    ShuttingDown,
    /// No USSD dialog with this id was ever opened (`ussd_answer`, `ussd_abort`).
    #[error("no ussd dialog {0}")]
    DialogNotFound(String),
    /// The USSD dialog has ended: final screen, abort or timeout
    /// (`ussd_answer`, `ussd_abort`, or a dial aborted while waiting).
    #[error("ussd dialog {0} is closed")]
    DialogClosed(String),
    /// The number already has a dialog open, or the dialog waits for a
    /// screen (`ussd_dial`, `ussd_answer`).
    #[error("{0}")]
    DialogBusy(String),
    /// `ussd.dialogs_max` dialogs are open (`ussd_dial`).
    #[error("too many open ussd dialogs")]
    DialogsFull,
    /// The ESME sent no screen within `ussd.answer_timeout_ms`; the dialog
    /// was aborted towards it (`ussd_dial`, `ussd_answer`).
    #[error("no screen from the esme in time; ussd dialog {0} aborted")]
    NoScreen(String),
    /// The ESME answered the dialog's `deliver_sm` with an error, or not at
    /// all (`ussd_dial`, `ussd_answer`).
    #[error("the esme refused the ussd dialog: {0}")]
    EsmeRefused(String),
    /// No operator has this name (`Network` calls taking one).
    #[error("no operator {0:?}")]
    UnknownOperator(String),
    /// Socket or file I/O failed (`serve_smpp`, `serve_http`, `Simulator::new`).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Capacity of the broadcast of completed MT messages (load generator,
/// tests). Slow subscribers lose the oldest events.
pub const MT_EVENTS_MAX: usize = 4096;

#[derive(Debug)]
struct Inner {
    config: Config,
    faults: watch::Sender<FaultProfile>,
    registry: Mutex<Registry>,
    store: Mutex<Store>,
    /// Receipts waiting for a bind or a retry, per `system_id`.
    receipts: Mutex<Receipts>,
    ussd: Mutex<ussd::Dialogs>,
    stats: Stats,
    journal: Option<Journal>,
    message_no: AtomicU64,
    mo_no: AtomicU64,
    session_no: AtomicU64,
    connections: AtomicUsize,
    mt_events: broadcast::Sender<MtMessage>,
    /// Receipts and MO deliveries in flight, and each account's receipt
    /// forwarder.
    tasks: TaskTracker,
    /// Cancelled when the SMPP server stops: receipts stop waiting.
    stopping: CancellationToken,
}

/// One simulator: cheap to clone, every clone shares the same state.
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Simulator {
    /// Builds a simulator; opens the journal file when one is configured.
    pub fn new(config: Config) -> Result<Self, Error> {
        config.faults.validate()?;
        config.ussd.validate()?;
        if config.accounts.is_empty() {
            return Err(Error::Config("at least one account is needed".into()));
        }
        let journal = match &config.journal_path {
            Some(path) => Some(Journal::open(path, config.limits.journal_queue_max)?),
            None => None,
        };
        let (faults, _) = watch::channel(config.faults.clone());
        let (mt_events, _) = broadcast::channel(MT_EVENTS_MAX);
        Ok(Self {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::new(config.limits.messages_max)),
                receipts: Mutex::new(Receipts::default()),
                ussd: Mutex::new(ussd::Dialogs::default()),
                config,
                faults,
                registry: Mutex::new(Registry::default()),
                stats: Stats::default(),
                journal,
                message_no: AtomicU64::new(0),
                mo_no: AtomicU64::new(0),
                session_no: AtomicU64::new(0),
                connections: AtomicUsize::new(0),
                mt_events,
                tasks: TaskTracker::new(),
                stopping: CancellationToken::new(),
            }),
        })
    }

    /// The configuration this simulator was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Accepts SMPP connections on `listener` until `shutdown` is
    /// cancelled, then unbinds every session, lets in-flight responses and
    /// receipts finish (or give up) and returns.
    pub async fn serve_smpp(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let sessions = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Accept errors (e.g. too many open files) are transient.
                    tracing::warn!(%error, "accept failed");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            if self.inner.connections.load(Ordering::Relaxed)
                >= self.inner.config.limits.connections_max
            {
                tracing::warn!(%peer, "connection refused: connections_max reached");
                drop(socket);
                continue;
            }
            let sim = self.clone();
            let token = shutdown.child_token();
            sessions.spawn(async move { sim.serve_connection(socket, token).await });
        }
        sessions.close();
        sessions.wait().await;
        self.inner.stopping.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        Ok(())
    }

    /// Runs one SMPP session over any byte stream (a TCP socket, or
    /// `tokio::io::duplex` in tests) until the peer leaves, unbinds, or
    /// `shutdown` is cancelled.
    pub async fn serve_connection<S>(&self, io: S, shutdown: CancellationToken)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let no = self.inner.session_no.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        self.inner.stats.update(|s| s.connections += 1);
        session::run(self.clone(), io, no, shutdown).await;
        self.inner.connections.fetch_sub(1, Ordering::Relaxed);
        self.inner
            .stats
            .update(|s| s.connections = s.connections.saturating_sub(1));
    }

    /// Serves the control API and the virtual phone on `listener` until
    /// `shutdown` is cancelled.
    pub async fn serve_http(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        axum::serve(listener, self.http_router())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }

    /// The control API router (for `oneshot` tests or mounting elsewhere).
    pub fn http_router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// Replaces the fault profile; sessions apply it from their next PDU.
    pub fn set_faults(&self, profile: FaultProfile) -> Result<(), Error> {
        profile.validate()?;
        self.inner.faults.send_replace(profile);
        Ok(())
    }

    /// The fault profile in force.
    pub fn faults(&self) -> FaultProfile {
        self.inner.faults.borrow().clone()
    }

    /// MT messages submitted to `to` (digits compared; all when `None`),
    /// oldest first, at most the `limit` newest.
    pub fn messages(&self, to: Option<&str>, limit: usize) -> Vec<MtMessage> {
        lock(&self.inner.store).list(to, limit)
    }

    /// The most `submit_sm` segments stored within any one second (a sliding
    /// window over each part's `submitted_at`), from `system_id` or from
    /// every account: what an operator checks a contract in segments per
    /// second against. Counts the messages still stored (`messages_max`).
    pub fn busiest_second_segments(&self, system_id: Option<&str>) -> usize {
        let mut at: Vec<_> = self
            .messages(None, usize::MAX)
            .into_iter()
            .filter(|m| system_id.is_none_or(|id| m.system_id == id))
            .flat_map(|m| m.parts.into_iter().map(|p| p.submitted_at))
            .collect();
        at.sort_unstable();
        let second = chrono::Duration::seconds(1);
        let mut most = 0;
        let mut end = 0;
        for start in 0..at.len() {
            while end < at.len() && at[end] < at[start] + second {
                end += 1;
            }
            most = most.max(end - start);
        }
        most
    }

    /// Every counter.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Completed MT messages as they arrive (bounded by [`MT_EVENTS_MAX`]).
    pub fn subscribe_mt(&self) -> broadcast::Receiver<MtMessage> {
        self.inner.mt_events.subscribe()
    }

    /// Number of sessions bound as receiver or transceiver.
    pub fn receivers_bound(&self) -> usize {
        lock(&self.inner.registry).receivers()
    }

    /// `(system_id, bind kind)` of every bound session (`GET /api/operators`).
    pub fn bound_esmes(&self) -> Vec<(String, &'static str)> {
        lock(&self.inner.registry).bound()
    }

    /// Waits until at least `n` sessions can receive, or `shutdown`.
    pub async fn wait_for_receivers(&self, n: usize, shutdown: &CancellationToken) -> bool {
        let mut changes = lock(&self.inner.registry).subscribe();
        loop {
            if self.receivers_bound() >= n {
                return true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                changed = changes.changed() => if changed.is_err() { return false },
            }
        }
    }

    /// Waits until every journal line queued so far is on disk (no-op
    /// without a journal).
    pub async fn flush_journal(&self) {
        if let Some(journal) = self.inner.journal.clone() {
            let _ = tokio::task::spawn_blocking(move || journal.flush()).await;
        }
    }

    fn next_message_id(&self) -> String {
        let n = self.inner.message_no.fetch_add(1, Ordering::Relaxed) + 1;
        match self.inner.config.message_id_format {
            MessageIdFormat::Hex => format!("{n:08x}"),
            MessageIdFormat::Decimal => n.to_string(),
        }
    }
}
