//! The web's code confirmations, committed in groups: each entry of an SMS
//! code waits in a bounded queue, and one committer task confirms whatever is
//! waiting in ONE write transaction, a few statements for the whole group
//! (`Otps::confirm_otp_group`; entry by entry under savepoints only when one
//! of those fails), then answers each caller with its own `OtpCheck`. On SQLite every write transaction takes the one writer in
//! turn, so one transaction for many entries is what lifts the rate; on
//! PostgreSQL, which has many writers, each entry keeps its own transaction
//! (`Otps::confirm_otp`, straight from the caller's task) and no group waits.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::base::Store;
use super::db::Backend;
use super::error::StoreError;
use super::otp::{OtpCheck, OtpEntry, OTP_GROUP_MAX};
use crate::group::{run_groups, Group};
use crate::otp::OtpKey;

/// Bounds of the confirmation queue.
#[derive(Debug, Clone, Copy)]
pub struct ConfirmConfig {
    /// Entries waiting for a commit; callers wait for room above it (the web
    /// request then waits, which is the back-pressure). Default 1024.
    pub queue_max: usize,
    /// Most entries confirmed in one transaction (at most `OTP_GROUP_MAX`).
    /// Default 256.
    pub batch_max: usize,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            queue_max: 1024,
            batch_max: 256,
        }
    }
}

type Answer = oneshot::Sender<Result<OtpCheck, StoreError>>;

struct Job {
    entry: OtpEntry,
    done: Answer,
}

/// Where entries of codes are confirmed: a cheap clone per caller.
#[derive(Clone)]
pub struct Confirmations {
    jobs: mpsc::Sender<Job>,
    store: Store,
    key: OtpKey,
}

impl std::fmt::Debug for Confirmations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmations").finish_non_exhaustive()
    }
}

impl Confirmations {
    /// The queue over `store`, checking codes under `key`, and the committer
    /// it feeds (run it with [`ConfirmCommitter::run`]; on PostgreSQL it only
    /// waits to be stopped).
    pub fn new(
        store: Store,
        key: OtpKey,
        config: ConfirmConfig,
    ) -> (Confirmations, ConfirmCommitter) {
        let (jobs, rx) = mpsc::channel(config.queue_max.max(1));
        let committer = ConfirmCommitter {
            rx,
            store: store.clone(),
            key: key.clone(),
            batch_max: config.batch_max.clamp(1, OTP_GROUP_MAX),
        };
        (Confirmations { jobs, store, key }, committer)
    }

    /// `Otps::confirm_otp` for `entry`, answered once its group committed.
    /// A failed group, or a stopped committer, is a `StoreError::SharedWrite`
    /// (the service's problem: the visitor may try again).
    pub async fn confirm(&self, entry: OtpEntry) -> Result<OtpCheck, StoreError> {
        if self.store.backend() == Backend::Postgres {
            let OtpEntry {
                id,
                premises_id,
                code,
                consent,
                at,
            } = entry;
            return self
                .store
                .otps()
                .confirm_otp(id, premises_id, &code, &self.key, consent, at)
                .await;
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { entry, done })
            .await
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> StoreError {
    StoreError::SharedWrite("the code confirmation queue has stopped".into())
}

/// The one task that commits the confirmations' groups.
pub struct ConfirmCommitter {
    rx: mpsc::Receiver<Job>,
    store: Store,
    key: OtpKey,
    batch_max: usize,
}

impl std::fmt::Debug for ConfirmCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmCommitter")
            .field("batch_max", &self.batch_max)
            .finish_non_exhaustive()
    }
}

impl ConfirmCommitter {
    /// Confirms the queued entries in groups (see `group::run_groups`).
    /// Ends when every [`Confirmations`] is dropped, or once `stop` resolved:
    /// then what is already queued is still confirmed and later entries are
    /// answered with an error.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let ConfirmCommitter {
            rx,
            store,
            key,
            batch_max,
        } = self;
        run_groups(rx, batch_max, stop, OtpGroup { store, key }).await;
    }
}

struct OtpGroup {
    store: Store,
    key: OtpKey,
}

impl Group for OtpGroup {
    type Job = Job;

    async fn commit(&mut self, jobs: Vec<Job>) {
        let (entries, answers): (Vec<OtpEntry>, Vec<Answer>) =
            jobs.into_iter().map(|j| (j.entry, j.done)).unzip();
        let started = std::time::Instant::now();
        match self
            .store
            .otps()
            .confirm_otp_group(&entries, &self.key)
            .await
        {
            Ok(checks) => {
                let took = started.elapsed();
                tracing::debug!(
                    group = answers.len(),
                    took_us = took.as_micros() as u64,
                    "code confirmations committed"
                );
                metrics::histogram!("checkin_otp_confirm_commit_seconds").record(took);
                for (answer, check) in answers.into_iter().zip(checks) {
                    let _ = answer.send(check);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, group = answers.len(), "confirming codes failed");
                let text = e.to_string();
                for answer in answers {
                    let _ = answer.send(Err(StoreError::SharedWrite(format!(
                        "the group's transaction failed: {text}"
                    ))));
                }
            }
        }
    }
}
