//! What every clone of a [`super::Store`] shares in memory: the outbox's
//! wake-up and hand-off lane, and the switches as last read or set. Plain
//! state (a leaf): the store holds it, `signal.rs` and `flags.rs` use it.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::{mpsc, watch, Notify};

use crate::model::OutboxMessage;

/// What every clone of a [`super::Store`] shares: the wake-up and the lane's
/// producer end (`None` until a sender subscribes).
#[derive(Debug, Default)]
pub(crate) struct OutboxSignal {
    pub(super) notify: Notify,
    lane: Mutex<Option<mpsc::Sender<OutboxMessage>>>,
    /// Held across a subscription's check, recovery and opening, so two
    /// subscriptions cannot interleave.
    pub(super) subscribing: tokio::sync::Mutex<()>,
}

impl OutboxSignal {
    pub(super) fn lane(&self) -> MutexGuard<'_, Option<mpsc::Sender<OutboxMessage>>> {
        // The guarded value is a plain `Option`; a panic elsewhere cannot
        // leave it half-written.
        self.lane.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open lane, if a sender is subscribed.
    pub(super) fn open_lane(&self) -> Option<mpsc::Sender<OutboxMessage>> {
        self.lane().as_ref().filter(|tx| !tx.is_closed()).cloned()
    }

    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }
}

/// What every clone of a [`super::Store`] shares: the flags as last read or set.
#[derive(Debug)]
pub(crate) struct FlagsSignal {
    pub(super) alerts_paused: watch::Sender<bool>,
}

impl Default for FlagsSignal {
    fn default() -> Self {
        FlagsSignal {
            alerts_paused: watch::Sender::new(false),
        }
    }
}
