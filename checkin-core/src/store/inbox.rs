//! The SMS inbox: texts to the short number are committed with their replies
//! in groups (one transaction for whatever arrived while the previous commit
//! ran), and each submitter learns its outcome only after its group
//! committed, so the SMPP layer acknowledges the SMSC only then. A failed
//! commit fails every SMS of the group (the SMSC redelivers them).
//!
//! Replies the sender has room for are claimed in that same commit and handed
//! to it in memory through the store's outbox lane (`store::Outbox`); the
//! rest wait `pending` and the sender is woken.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::base::Store;
use super::error::StoreError;
use super::handles::Outbox;
use super::sms::{InboundSms, PreparedSms, SmsOutcome, SMS_BATCH_MAX};
use crate::clock::Clock;
use crate::group::{run_groups, Group};
use crate::msisdn::Msisdn;
use crate::routing::OperatorName;
use crate::time_fmt::ServiceZone;
use chrono::{DateTime, Utc};
use parser::CodeDigits;

/// Bounds of the inbox.
#[derive(Debug, Clone, Copy)]
pub struct InboxConfig {
    /// SMS waiting for a commit; submitters wait for room above it
    /// (back-pressure to the SMSC, which keeps its window full). Default 4096.
    pub queue_max: usize,
    /// Most SMS committed in one transaction (at most `SMS_BATCH_MAX`).
    /// Default 512.
    pub batch_max: usize,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            queue_max: 4096,
            batch_max: 512,
        }
    }
}

/// Why an SMS was not committed. Both are temporary: the SMSC should
/// redeliver.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InboxError {
    /// The committer stopped (shutting down).
    #[error("the SMS inbox has stopped")]
    Stopped,
    /// Its group's commit failed (shared by every SMS of the group).
    #[error("storage: {0}")]
    Storage(Arc<StoreError>),
}

struct Job {
    sms: PreparedSms,
    done: oneshot::Sender<Result<Committed, InboxError>>,
}

pub use crate::sms_decision::Committed;

/// Where SMS are submitted: a cheap clone per receiver.
#[derive(Clone)]
pub struct SmsInbox {
    jobs: mpsc::Sender<Job>,
    /// Prepares each SMS (hash, seal, parse) in the submitter's task, in
    /// parallel, so the committer only writes.
    store: Store,
}

impl std::fmt::Debug for SmsInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsInbox").finish_non_exhaustive()
    }
}

impl SmsInbox {
    /// Makes the inbox and the committer it feeds (run it with
    /// [`Committer::run`]).
    pub fn new(
        store: Store,
        zone: ServiceZone,
        clock: Arc<dyn Clock>,
        config: InboxConfig,
    ) -> (SmsInbox, Committer) {
        let (jobs, rx) = mpsc::channel(config.queue_max.max(1));
        let committer = Committer {
            rx,
            store: store.clone(),
            zone,
            clock,
            batch_max: config.batch_max.clamp(1, SMS_BATCH_MAX),
        };
        (SmsInbox { jobs, store }, committer)
    }

    /// Submits one SMS and waits until its group committed: its outcome, or
    /// why it was not stored.
    pub async fn submit(&self, sms: InboundSms) -> Result<SmsOutcome, InboxError> {
        let prepared = self.store.sms().prepare_sms(sms);
        Ok(self.submit_prepared(prepared).await?.outcome)
    }

    /// A USSD check-in of `digits` dialled by `from`, committed with the SMS
    /// of its group (see `Sms::prepare_ussd`: `operator` is the one the dial
    /// came through, if known); its outcome and visit.
    pub async fn submit_ussd(
        &self,
        from: Msisdn,
        digits: CodeDigits,
        received_at: DateTime<Utc>,
        confirm_by_sms: bool,
        operator: Option<OperatorName>,
    ) -> Result<Committed, InboxError> {
        let prepared =
            self.store
                .sms()
                .prepare_ussd(from, digits, received_at, confirm_by_sms, operator);
        self.submit_prepared(prepared).await
    }

    async fn submit_prepared(&self, sms: PreparedSms) -> Result<Committed, InboxError> {
        let (done, answer) = oneshot::channel();
        let job = Job { sms, done };
        self.jobs.send(job).await.map_err(|_| InboxError::Stopped)?;
        answer.await.unwrap_or(Err(InboxError::Stopped))
    }
}

/// The one task that commits the inbox's groups.
pub struct Committer {
    rx: mpsc::Receiver<Job>,
    store: Store,
    zone: ServiceZone,
    clock: Arc<dyn Clock>,
    batch_max: usize,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("batch_max", &self.batch_max)
            .finish_non_exhaustive()
    }
}

impl Committer {
    /// Commits the inbox's groups (see `group::run_groups`: everything queued,
    /// up to `batch_max`, in one transaction; a lone SMS at once when idle).
    /// Ends when every [`SmsInbox`] is dropped, or once `stop` resolved: then
    /// what is already queued still commits and later SMS are answered
    /// [`InboxError::Stopped`].
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let Committer {
            rx,
            store,
            zone,
            clock,
            batch_max,
        } = self;
        let group = MoGroup {
            outbox: store.outbox(),
            store,
            zone,
            clock,
        };
        run_groups(rx, batch_max, stop, group).await;
    }
}

/// How one group of SMS is committed and answered.
struct MoGroup {
    store: Store,
    outbox: Outbox,
    zone: ServiceZone,
    clock: Arc<dyn Clock>,
}

impl Group for MoGroup {
    type Job = Job;

    async fn commit(&mut self, jobs: Vec<Job>) {
        let MoGroup {
            store,
            outbox,
            zone,
            clock,
        } = self;
        let (batch, answers): (Vec<PreparedSms>, Vec<_>) =
            jobs.into_iter().map(|j| (j.sms, j.done)).unzip();
        let started = std::time::Instant::now();
        // Replies the sender has room for are claimed in this very commit
        // and handed to it in memory; the rest wait in the outbox (the
        // commit wakes the sender for them).
        let room = outbox.room().min(batch.len());
        match store
            .sms()
            .handle_owned_sms_claiming(batch, zone, clock.now(), room)
            .await
        {
            Ok(done) => {
                let took = started.elapsed();
                tracing::debug!(
                    group = answers.len(),
                    took_us = took.as_micros() as u64,
                    "MO group committed"
                );
                metrics::histogram!("checkin_mo_commit_seconds").record(took);
                metrics::counter!("checkin_mo_total", "outcome" => "committed")
                    .increment(answers.len() as u64);
                for ((answer, outcome), visit) in
                    answers.into_iter().zip(done.outcomes).zip(done.visits)
                {
                    let _ = answer.send(Ok(Committed { outcome, visit }));
                }
                outbox.hand_over(done.claimed, clock.now()).await;
            }
            Err(e) => {
                metrics::counter!("checkin_mo_total", "outcome" => "storage_error")
                    .increment(answers.len() as u64);
                tracing::warn!(error = %e, group = answers.len(), "storing MO failed; the SMSC will redeliver");
                let e = Arc::new(e);
                for answer in answers {
                    let _ = answer.send(Err(InboxError::Storage(e.clone())));
                }
            }
        }
    }
}
