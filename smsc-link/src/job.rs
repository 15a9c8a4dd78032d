//! One message to submit ([`Job`]): its segments encoded once, where each
//! stands, and the claim that decides between a session starting to write
//! it and its caller giving up. Dropped on any path, it still answers.

use std::sync::{
    atomic::{AtomicU8, Ordering},
    Arc,
};

use tokio::{sync::oneshot, time::Instant};

use crate::{telemetry::SubmitMeters, Error, SubmitOutcome};

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
    /// Its link's `operator` label, for counting an outcome on drop.
    operator: Arc<str>,
}

impl Job {
    /// A job for the `count` encoded `submit_sm` laid end to end in
    /// `wire`, answered on `reply`.
    pub(crate) fn new(
        id: u64,
        wire: Vec<u8>,
        count: usize,
        reply: oneshot::Sender<Result<SubmitOutcome, Error>>,
        operator: Arc<str>,
    ) -> Self {
        Self {
            operator,
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
            let meters = SubmitMeters::register(&self.operator);
            self.reply(outcome, &meters);
        }
    }
}
