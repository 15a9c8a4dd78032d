//! The MO pipeline: texts from the SMPP link are parsed and committed with
//! their replies in groups (one transaction for whatever arrived while the
//! previous commit ran), and each `deliver_sm` is acknowledged only after its
//! group committed. A failed commit fails every MO of the group, so the link
//! answers a temporary error and the SMSC redelivers.

use std::sync::Arc;

use checkin_core::store::SendResult;
use checkin_core::store::{InboundSms, PreparedSms, SmsOutcome, SMS_BATCH_MAX};
use checkin_core::{Clock, Msisdn, MsisdnPolicy, ServiceZone, Store};
use notifier::{Handoff, Waker};
use smsc_link::{HandlerError, Mo, MoHandler};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Bounds of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// MO waiting for a commit; the link's handlers wait for room above it
    /// (back-pressure to the SMSC, which keeps its window full). Default 4096.
    pub queue_max: usize,
    /// Most MO committed in one transaction. Default 512.
    pub batch_max: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_max: 4096,
            batch_max: 512,
        }
    }
}

struct Job {
    sms: PreparedSms,
    done: oneshot::Sender<Result<SmsOutcome, String>>,
}

/// The link's MO handler: hands each text to the committer and waits for its
/// group's commit.
#[derive(Clone)]
pub(crate) struct MoInbox {
    jobs: mpsc::Sender<Job>,
    /// Prepares each SMS (hash, seal, parse) in the link's handler task, in
    /// parallel, so the committer only writes.
    store: Store,
    policy: MsisdnPolicy,
    clock: Arc<dyn Clock>,
}

impl MoHandler for MoInbox {
    async fn on_mo(&self, mo: Mo) -> Result<(), HandlerError> {
        let from = match Msisdn::parse_with(&mo.from, &self.policy) {
            Ok(from) => from,
            Err(e) => {
                // Nobody to record or answer (an alphanumeric sender, a foreign
                // number): acknowledge, so the SMSC does not redeliver forever.
                metrics::counter!("checkin_mo_total", "outcome" => "sender_refused").increment(1);
                tracing::info!(reason = %e, sender_chars = mo.from.chars().count(), "MO from a number the service does not serve; acknowledged, not recorded");
                return Ok(());
            }
        };
        let (done, answer) = oneshot::channel();
        let job = Job {
            sms: self.store.prepare_sms(InboundSms {
                from,
                text: mo.text,
                received_at: self.clock.now(),
            }),
            done,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| HandlerError("the MO pipeline has stopped".into()))?;
        match answer.await {
            Ok(Ok(outcome)) => {
                tracing::debug!(?outcome, "MO committed");
                Ok(())
            }
            Ok(Err(e)) => Err(HandlerError(e)),
            Err(_) => Err(HandlerError("the MO pipeline has stopped".into())),
        }
    }
}

/// The committer, not started yet: the gateway runs [`Committer::run`] as
/// its MO-path service.
pub(crate) struct Committer {
    rx: mpsc::Receiver<Job>,
    store: Store,
    zone: ServiceZone,
    waker: Waker,
    handoff: Handoff,
    clock: Arc<dyn Clock>,
    batch_max: usize,
}

/// Makes the link's handler and the committer it feeds.
pub(crate) fn new(
    store: Store,
    zone: ServiceZone,
    waker: Waker,
    handoff: Handoff,
    policy: MsisdnPolicy,
    clock: Arc<dyn Clock>,
    config: PipelineConfig,
) -> (MoInbox, Committer) {
    let (jobs, rx) = mpsc::channel(config.queue_max.max(1));
    let batch_max = config.batch_max.clamp(1, SMS_BATCH_MAX);
    let committer = Committer {
        rx,
        store: store.clone(),
        zone,
        waker,
        handoff,
        clock: clock.clone(),
        batch_max,
    };
    (
        MoInbox {
            jobs,
            store,
            policy,
            clock,
        },
        committer,
    )
}

impl Committer {
    /// Commits until every `MoInbox` is dropped or `stop` is cancelled; then
    /// commits what is already queued and answers later MO with a temporary
    /// error (the SMSC redelivers them).
    pub(crate) async fn run(self, stop: CancellationToken) {
        let Committer {
            rx,
            store,
            zone,
            waker,
            handoff,
            clock,
            batch_max,
        } = self;
        commit_loop(rx, store, zone, waker, handoff, clock, batch_max, stop).await;
    }
}

/// One writer: takes everything queued (up to `batch_max`) and commits it in one
/// transaction. Under load the queue fills while a commit runs, so groups grow
/// by themselves; when idle a lone MO commits at once, with no added wait.
/// Ends when every `MoInbox` is dropped, or once `stop` is cancelled and the
/// queue drained.
#[allow(clippy::too_many_arguments)]
async fn commit_loop(
    mut rx: mpsc::Receiver<Job>,
    store: Store,
    zone: ServiceZone,
    waker: Waker,
    handoff: Handoff,
    clock: Arc<dyn Clock>,
    batch_max: usize,
    stop: CancellationToken,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(batch_max);
    let mut closed = false;
    loop {
        let got = tokio::select! {
            got = rx.recv_many(&mut jobs, batch_max) => got,
            _ = stop.cancelled(), if !closed => {
                // No new MO; what is queued still commits.
                rx.close();
                closed = true;
                continue;
            }
        };
        if got == 0 {
            break;
        }
        let (batch, answers): (Vec<PreparedSms>, Vec<_>) =
            jobs.drain(..).map(|j| (j.sms, j.done)).unzip();
        let started = std::time::Instant::now();
        // Replies the notifier has room for are claimed in this very commit and
        // handed to it in memory; the rest wait in the outbox.
        let room = handoff.room().min(batch.len());
        match store
            .handle_prepared_sms_claiming(&batch, &zone, clock.now(), room)
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
                for (answer, outcome) in answers.into_iter().zip(done.outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
                let left = handoff.hand_over(done.claimed);
                if !left.is_empty() {
                    put_back(&store, &clock, &left).await;
                }
                if room < batch.len() || !left.is_empty() {
                    waker.wake();
                }
            }
            Err(e) => {
                metrics::counter!("checkin_mo_total", "outcome" => "storage_error")
                    .increment(answers.len() as u64);
                tracing::warn!(error = %e, group = answers.len(), "storing MO failed; the SMSC will redeliver");
                for answer in answers {
                    let _ = answer.send(Err(format!("storage: {e}")));
                }
            }
        }
    }
}

/// Claimed replies the notifier could not take (it stopped): due again now,
/// for the next claim. If even that fails they stay `sending`, and the next
/// start queues them again.
async fn put_back(store: &Store, clock: &Arc<dyn Clock>, messages: &[checkin_core::OutboxMessage]) {
    let now = clock.now();
    let results: Vec<(i64, SendResult)> = messages
        .iter()
        .map(|m| {
            let result = SendResult::Retry {
                reason: "not handed to the notifier".into(),
                next_attempt_at: now,
            };
            (m.id, result)
        })
        .collect();
    if let Err(e) = store.record_send_results(&results, now).await {
        tracing::warn!(error = %e, messages = results.len(), "putting replies back in the outbox failed; they are queued again at the next start");
    }
}
