//! What becomes of a message once the SMSC answered (or did not): each
//! [`SendResult`] settles its outbox row one way ([`settle`]), a pure
//! function storage applies to a whole batch of results in one statement.

use chrono::{DateTime, Utc};

use crate::model::OutboxStatus;

/// What became of one send, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Accepted by the SMSC; one id per segment.
    Sent { message_ids: Vec<String> },
    /// Given up for good.
    Failed { reason: String },
    /// May have gone out (the answer was lost): never resent.
    Unknown { reason: String },
    /// Not sent; due again at `next_attempt_at`.
    Retry {
        reason: String,
        next_attempt_at: DateTime<Utc>,
    },
    /// Not settled because the sender stopped: due again at once, with
    /// `copies_in_doubt` more copies that may have reached the SMSC (added
    /// to the row's count, which the next run continues).
    Interrupted {
        reason: String,
        copies_in_doubt: u32,
    },
    /// Not sent: older than its life (see [`OutboxStatus::Expired`]).
    Expired { reason: String },
    /// The SMSC's delivery receipt for a sent message (`delivered`,
    /// `undeliverable`, …): sets only `delivery_state`, whatever the status,
    /// so it may arrive before or after the send's own result.
    Receipt { state: String },
}

/// A send result as the outbox row takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The row's new state.
    Row {
        status: OutboxStatus,
        /// The segments' SMSC ids, comma-separated (empty unless sent).
        ids: String,
        error: Option<String>,
        /// Due again at (only for a message going back to the queue).
        next_attempt_at_ms: Option<i64>,
        /// Copies that may have reached the SMSC, added to the row's count.
        copies_in_doubt_added: i64,
    },
    /// A receipt: only `delivery_state` changes, whatever the status, so it
    /// may arrive before or after the send's own result.
    Receipt { state: String },
}

/// The row a send result leaves, at `now_ms`.
pub fn settle(result: &SendResult, now_ms: i64) -> Settled {
    let row = |status, ids: String, error: Option<&String>, next, doubt| Settled::Row {
        status,
        ids,
        error: error.cloned(),
        next_attempt_at_ms: next,
        copies_in_doubt_added: doubt,
    };
    match result {
        SendResult::Sent { message_ids } => {
            row(OutboxStatus::Sent, message_ids.join(","), None, None, 0)
        }
        SendResult::Failed { reason } => {
            row(OutboxStatus::Failed, String::new(), Some(reason), None, 0)
        }
        SendResult::Unknown { reason } => {
            row(OutboxStatus::Unknown, String::new(), Some(reason), None, 0)
        }
        SendResult::Expired { reason } => {
            row(OutboxStatus::Expired, String::new(), Some(reason), None, 0)
        }
        SendResult::Retry {
            reason,
            next_attempt_at,
        } => row(
            OutboxStatus::Pending,
            String::new(),
            Some(reason),
            Some(next_attempt_at.timestamp_millis()),
            0,
        ),
        SendResult::Interrupted {
            reason,
            copies_in_doubt,
        } => row(
            OutboxStatus::Pending,
            String::new(),
            Some(reason),
            Some(now_ms),
            i64::from(*copies_in_doubt),
        ),
        SendResult::Receipt { state } => Settled::Receipt {
            state: state.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_result_settles_its_row() {
        let at = DateTime::from_timestamp_millis(5_000).unwrap();
        let why = || "why".to_owned();
        let row = |status, ids: &str, error: bool, next, doubt| Settled::Row {
            status,
            ids: ids.to_owned(),
            error: error.then(why),
            next_attempt_at_ms: next,
            copies_in_doubt_added: doubt,
        };
        let cases = [
            (
                "sent: its segments' ids",
                SendResult::Sent {
                    message_ids: vec!["a".into(), "b".into()],
                },
                row(OutboxStatus::Sent, "a,b", false, None, 0),
            ),
            (
                "failed",
                SendResult::Failed { reason: why() },
                row(OutboxStatus::Failed, "", true, None, 0),
            ),
            (
                "unknown: never resent by itself",
                SendResult::Unknown { reason: why() },
                row(OutboxStatus::Unknown, "", true, None, 0),
            ),
            (
                "expired",
                SendResult::Expired { reason: why() },
                row(OutboxStatus::Expired, "", true, None, 0),
            ),
            (
                "retry: due again when told",
                SendResult::Retry {
                    reason: why(),
                    next_attempt_at: at,
                },
                row(OutboxStatus::Pending, "", true, Some(5_000), 0),
            ),
            (
                "interrupted: due now, its copies in doubt counted",
                SendResult::Interrupted {
                    reason: why(),
                    copies_in_doubt: 2,
                },
                row(OutboxStatus::Pending, "", true, Some(9_000), 2),
            ),
            (
                "receipt: the delivery state only",
                SendResult::Receipt {
                    state: "delivered".into(),
                },
                Settled::Receipt {
                    state: "delivered".into(),
                },
            ),
        ];
        for (name, result, settled) in cases {
            assert_eq!(settle(&result, 9_000), settled, "{name}");
        }
    }
}
