//! Adapters between the SMPP link and the rest: the notifier's `SmsSender` on
//! top of `Link::submit` (with the outcome policy: OTPs and confirmations
//! resent once when in doubt), and the receipt handler that records delivery
//! receipts on their outbox rows.
//!
//! Receipts are tied to rows through [`ReceiptBook`], an in-memory bounded map
//! of recent SMSC ids → outbox id, filled when a submit is accepted, so a
//! receipt usually costs one map look-up and a share of one batched `UPDATE`.
//! A receipt older than the map (after `RECEIPT_IDS_MAX` later sends, or
//! across a restart) finds its row through `outbox_smsc_ids`, the sent
//! segments' ids written with each send result (`Outbox::message_for_smsc_id`,
//! a primary-key look-up).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkin_core::store::SendResult;
use checkin_core::{Clock, Msisdn, Store};
use notifier::{SendOptions, SendOutcome, SmsSender};
use smsc_link::{
    CommandStatus, DeliveryState, HandlerError, Link, Receipt, ReceiptHandler, SubmitOptions,
    SubmitOutcome,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::segments::{SegmentMeters, Written};

/// SMSC ids remembered for receipts: about a quarter of an hour of sends at
/// 100/s, a few MiB.
pub const RECEIPT_IDS_MAX: usize = 100_000;
/// Recipients of receipts whose id matched nothing, remembered so a message
/// whose answer was lost can still be settled by its receipt.
pub const UNMATCHED_RECEIPTS_MAX: usize = 4096;
/// Receipts waiting to be written; the link's receipt handlers wait for room
/// above it (back-pressure to the SMSC).
pub const RECEIPTS_QUEUE_MAX: usize = 4096;
/// Most receipts written in one statement batch.
const RECEIPTS_BATCH_MAX: usize = 1024;
/// How long the first receipt of a batch waits for others to join it (the
/// writer is shared with the MO commits; only the row's delivery state waits).
const RECEIPTS_LINGER: Duration = Duration::from_millis(50);

/// Recent SMSC ids → outbox ids, and recipients of receipts nobody claimed.
#[derive(Debug)]
pub struct ReceiptBook {
    inner: Mutex<Book>,
    /// Ids remembered at most (`RECEIPT_IDS_MAX` by default).
    ids_max: usize,
}

impl Default for ReceiptBook {
    fn default() -> Self {
        ReceiptBook::with_ids_max(RECEIPT_IDS_MAX)
    }
}

#[derive(Debug, Default)]
struct Book {
    by_id: HashMap<String, i64>,
    order: VecDeque<String>,
    /// Recipient digits → when a receipt for an id we did not know arrived.
    unmatched: HashMap<String, Unmatched>,
    unmatched_order: VecDeque<String>,
}

/// A receipt whose id matched no message: when it came, the id and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unmatched {
    at: Instant,
    /// The SMSC's id of the copy it reports on.
    pub(crate) message_id: String,
    /// As written in `delivery_state`.
    pub(crate) state: String,
}

/// The digits of an address, so `+7916…` and `7916…` compare equal.
fn digits(address: &str) -> String {
    address.chars().filter(char::is_ascii_digit).collect()
}

impl ReceiptBook {
    /// A book remembering at most `ids_max` ids.
    pub fn with_ids_max(ids_max: usize) -> Self {
        ReceiptBook {
            inner: Mutex::default(),
            ids_max: ids_max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic while holding the lock leaves only a map behind: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that `ids` belong to outbox row `outbox_id`.
    fn remember(&self, ids: &[String], outbox_id: i64) {
        let mut book = self.lock();
        for id in ids {
            if book.by_id.insert(id.clone(), outbox_id).is_none() {
                book.order.push_back(id.clone());
            }
        }
        while book.order.len() > self.ids_max {
            if let Some(old) = book.order.pop_front() {
                book.by_id.remove(&old);
            }
        }
    }

    /// The outbox row a receipt reports on; when its id is unknown, notes its
    /// recipient (see [`ReceiptBook::settled_since`]).
    #[cfg(test)]
    fn look_up(&self, receipt: &Receipt) -> Option<i64> {
        let known = self.known(receipt);
        if known.is_none() {
            self.note_unmatched(receipt);
        }
        known
    }

    /// The outbox row of a receipt's id, if this run sent it recently.
    fn known(&self, receipt: &Receipt) -> Option<i64> {
        self.lock().by_id.get(&receipt.message_id).copied()
    }

    /// Notes the recipient of a receipt whose id matched no message (see
    /// [`ReceiptBook::settled_since`]).
    fn note_unmatched(&self, receipt: &Receipt) {
        let mut book = self.lock();
        let recipient = digits(&receipt.recipient);
        let unmatched = Unmatched {
            at: Instant::now(),
            message_id: receipt.message_id.clone(),
            state: state_text(&receipt.state),
        };
        if book
            .unmatched
            .insert(recipient.clone(), unmatched)
            .is_none()
        {
            book.unmatched_order.push_back(recipient);
        }
        while book.unmatched_order.len() > UNMATCHED_RECEIPTS_MAX {
            if let Some(old) = book.unmatched_order.pop_front() {
                book.unmatched.remove(&old);
            }
        }
    }

    /// The receipt with an id we never learned that arrived for `to` since
    /// `since`: the message whose answer was lost reached the SMSC after all.
    /// Only a heuristic for one recipient with two messages in doubt at once;
    /// it errs towards not resending, which such a recipient tolerates.
    fn settled_since(&self, to: &Msisdn, since: Instant) -> Option<Unmatched> {
        self.lock()
            .unmatched
            .get(&digits(to.as_str()))
            .filter(|u| u.at >= since)
            .cloned()
    }
}

/// Sends outbox messages through the link.
#[derive(Debug)]
pub(crate) struct LinkSender {
    pub link: Link,
    pub book: Arc<ReceiptBook>,
    /// Wait after an in-doubt outcome (which itself comes after the link's
    /// response timeout, or at once when the connection broke) before the
    /// resend: the link's receipt hold, so a receipt that would settle the
    /// message has had its chance.
    pub receipt_grace: Duration,
    /// The link's `response_timeout_ms`: a copy in doubt after at least this
    /// long timed out on a live connection (a stalled SMSC, which most likely
    /// read it), not cut off with its connection; it gets no last try.
    pub response_timeout: Duration,
    /// Cancelled when the gateway stops: a resend still waiting gives up
    /// and the message is due again at the next start.
    pub stop: CancellationToken,
    /// `checkin_sms_segments_total`: what each submit wrote, by kind.
    pub meters: SegmentMeters,
    /// The receipt writer's queue (see [`ReceiptRecorder::states`]).
    pub receipt_states: mpsc::Sender<(i64, SendResult)>,
}

/// The SMPP statuses that will not change by retrying the same message
/// (SMPP 3.4 §5.1.3): bad addresses, bad parameters, refused content.
/// Anything else (system error, queue full, throttled, submit failed, vendor
/// codes) is retried with backoff, up to `attempts_max`.
fn is_permanent(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRinvmsglen
            | CommandStatus::EsmeRinvcmdlen
            | CommandStatus::EsmeRinvcmdid
            | CommandStatus::EsmeRinvprtflg
            | CommandStatus::EsmeRinvregdlvflg
            | CommandStatus::EsmeRinvsrcadr
            | CommandStatus::EsmeRinvdstadr
            | CommandStatus::EsmeRinvsertyp
            | CommandStatus::EsmeRinvnumdests
            | CommandStatus::EsmeRinvdestflag
            | CommandStatus::EsmeRinvsubrep
            | CommandStatus::EsmeRinvesmclass
            | CommandStatus::EsmeRinvsrcton
            | CommandStatus::EsmeRinvsrcnpi
            | CommandStatus::EsmeRinvdstton
            | CommandStatus::EsmeRinvdstnpi
            | CommandStatus::EsmeRinvdftmsgid
            | CommandStatus::EsmeRxPAppn
            | CommandStatus::EsmeRxRAppn
            | CommandStatus::EsmeRsertypunauth
            | CommandStatus::EsmeRprohibited
            | CommandStatus::EsmeRsertypdenied
            | CommandStatus::EsmeRinvdcs
    )
}

/// `ESME_RINVDSTADR (0x0B)`: how a status is written in `last_error`.
fn status_text(status: CommandStatus) -> String {
    let name = format!("{status:?}");
    // rusmpp names them `EsmeRinvdstadr`; operators read `ESME_RINVDSTADR`.
    let name = match name.strip_prefix("Esme") {
        Some(rest) => format!("ESME_{}", rest.to_uppercase()),
        None => name,
    };
    format!("{name} (0x{:02X})", u32::from(status))
}

impl LinkSender {
    /// One submit: the outcome, and the SMSC's status when it refused it.
    async fn submit_once(
        &self,
        to: &Msisdn,
        text: &str,
        options: &SendOptions,
    ) -> (SendOutcome, Option<CommandStatus>) {
        let submit = SubmitOptions {
            registered_delivery: options.request_receipt,
            send_within: options.send_within,
            withdraw: options.withdraw.clone(),
            ..SubmitOptions::default()
        };
        let result = self.link.submit(to.as_str(), text, submit).await;
        let (written, segments) = match &result {
            // One id per segment accepted: no second split on the hot path.
            Ok(SubmitOutcome::Accepted { message_ids }) => (Written::Accepted, message_ids.len()),
            Ok(SubmitOutcome::Rejected { status }) if is_permanent(*status) => {
                (Written::Refused, self.segments(text) as usize)
            }
            Ok(SubmitOutcome::Rejected { .. }) => {
                (Written::Temporary, self.segments(text) as usize)
            }
            Ok(SubmitOutcome::Unknown { .. }) => (Written::Unknown, self.segments(text) as usize),
            Err(_) => (Written::NotSent, self.segments(text) as usize),
        };
        self.meters.count(options.priority, text, written, segments);
        let refused = match &result {
            Ok(SubmitOutcome::Rejected { status }) => Some(*status),
            _ => None,
        };
        let outcome = match result {
            Ok(SubmitOutcome::Accepted { message_ids }) => {
                if options.request_receipt {
                    self.book.remember(&message_ids, options.outbox_id);
                }
                SendOutcome::Accepted { message_ids }
            }
            Ok(SubmitOutcome::Rejected { status }) if is_permanent(status) => {
                SendOutcome::Rejected {
                    reason: format!("SMSC refused: {}", status_text(status)),
                }
            }
            Ok(SubmitOutcome::Rejected { status }) => SendOutcome::Temporary {
                reason: format!("SMSC answered {}", status_text(status)),
            },
            Ok(SubmitOutcome::Unknown { accepted_ids }) => {
                if options.request_receipt {
                    self.book.remember(&accepted_ids, options.outbox_id);
                }
                SendOutcome::Unknown {
                    reason: format!(
                        "response lost after {} segment(s) were accepted",
                        accepted_ids.len()
                    ),
                }
            }
            Err(
                e @ (smsc_link::Error::InvalidAddress
                | smsc_link::Error::TextTooLong { .. }
                | smsc_link::Error::Config(_)),
            ) => SendOutcome::Rejected {
                reason: e.to_string(),
            },
            Err(e @ smsc_link::Error::Expired) => SendOutcome::Expired {
                reason: e.to_string(),
            },
            Err(e @ smsc_link::Error::Withdrawn) => SendOutcome::Withdrawn {
                reason: e.to_string(),
            },
            Err(e @ smsc_link::Error::ShutDown) => SendOutcome::Interrupted {
                reason: e.to_string(),
                copies_in_doubt: 0,
            },
            Err(e) => SendOutcome::Temporary {
                reason: e.to_string(),
            },
        };
        (outcome, refused)
    }

    /// [`SmsSender::send`] with the SMSC's status of a final refusal (the
    /// router moves a message refused `ESME_RINVDSTADR` to the next operator).
    pub(crate) async fn send_with_status(
        &self,
        to: &Msisdn,
        text: &str,
        options: &SendOptions,
    ) -> (SendOutcome, Option<CommandStatus>) {
        let earlier = options.copies_in_doubt;
        // Copies in doubt this run may add before the message is left `unknown`.
        let budget = match (earlier, options.resend_unknown) {
            (0, true) => IN_DOUBT_SENDS_MAX,
            (0, false) => 1,
            (_, true) => IN_DOUBT_COPIES_ACROSS_RUNS_MAX.saturating_sub(earlier),
            (_, false) => 0,
        };
        if budget == 0 {
            metrics::counter!("checkin_unknown_total", "fate" => "not_resent_after_restart")
                .increment(1);
            let outcome = SendOutcome::Unknown {
                reason: format!("{earlier} copy(ies) in doubt from an earlier run; not resent"),
            };
            return (outcome, None);
        }
        let started = Instant::now();
        let (mut outcome, mut refused) = self.submit_once(to, text, options).await;
        let mut took = started.elapsed();
        let mut sends = 1;
        let mut doubts = Vec::new();
        while let SendOutcome::Unknown { reason } = &outcome {
            doubts.push(reason.clone());
            let timed_out_resend = sends >= 2 && took >= self.response_timeout;
            if sends >= budget || timed_out_resend {
                break;
            }
            // In doubt: give a receipt its chance to settle it, then resend
            // on a live bind. Receipts were asked for, so a copy the SMSC
            // took announces itself; only then is the message settled.
            let waited = async {
                tokio::time::sleep(self.receipt_grace).await;
                self.link.wait_bound(1).await
            };
            let bound = tokio::select! {
                bound = waited => bound,
                _ = self.stop.cancelled() => false,
            };
            if let Some(settled) = self.book.settled_since(to, started) {
                metrics::counter!("checkin_unknown_total", "fate" => "settled_by_receipt")
                    .increment(1);
                // The receipt names the copy the SMSC took: its id and its
                // state go on the row like any receipt's.
                let state = SendResult::Receipt {
                    state: settled.state,
                };
                let _ = self.receipt_states.send((options.outbox_id, state)).await;
                let outcome = SendOutcome::Accepted {
                    message_ids: vec![settled.message_id],
                };
                return (outcome, None);
            }
            if !bound {
                // Stopping: due again at the next start, which continues
                // the count of copies in doubt from the row.
                let outcome = SendOutcome::Interrupted {
                    reason: format!("{}; resend pending at shutdown", doubts.join("; ")),
                    copies_in_doubt: sends,
                };
                return (outcome, None);
            }
            metrics::counter!("checkin_unknown_total", "fate" => "resent").increment(1);
            tracing::debug!(outbox_id = options.outbox_id, sends, "in doubt: resending");
            let resent = Instant::now();
            (outcome, refused) = self.submit_once(to, text, options).await;
            took = resent.elapsed();
            sends += 1;
        }
        let outcome = match outcome {
            SendOutcome::Unknown { .. } => SendOutcome::Unknown {
                reason: format!(
                    "in doubt after {} send(s): {}",
                    earlier + sends,
                    doubts.join("; ")
                ),
            },
            // A copy of this run was in doubt before the stop (or the kill
            // switch) cut the resend.
            SendOutcome::Interrupted { reason, .. } | SendOutcome::Withdrawn { reason }
                if !doubts.is_empty() =>
            {
                SendOutcome::Interrupted {
                    reason,
                    copies_in_doubt: doubts.len() as u32,
                }
            }
            other => other,
        };
        (outcome, refused)
    }
}

/// Sends of one message in doubt at most, within one run: the first, the
/// resend, and one last try when the resend was in doubt too, cut off with
/// its connection (not timed out: a stalled SMSC read it), and no receipt
/// showed that either copy reached the SMSC.
pub const IN_DOUBT_SENDS_MAX: u32 = 3;
/// Copies in doubt at most over several runs: a run that finds copies of an
/// earlier run in doubt (the row's `copies_in_doubt`) has lost the receipts
/// that justify a last try, so it tops the count up to two and stops.
pub const IN_DOUBT_COPIES_ACROSS_RUNS_MAX: u32 = 2;

impl SmsSender for LinkSender {
    fn segments(&self, text: &str) -> u32 {
        // The link splits the same way when it submits.
        smsc_link::text::split(text, 0)
            .map_or(1, |parts| u32::try_from(parts.len()).unwrap_or(u32::MAX))
    }

    fn throttled_total(&self) -> u64 {
        self.link.throttled_total()
    }

    async fn send(&self, to: &Msisdn, text: &str, options: &SendOptions) -> SendOutcome {
        self.send_with_status(to, text, options).await.0
    }
}

/// The link's receipt handler: ties each receipt to its outbox row and
/// queues its state for the recorder.
#[derive(Debug)]
pub(crate) struct ReceiptRecorder {
    book: Arc<ReceiptBook>,
    /// Where an id the book does not know is looked up (`outbox_smsc_ids`).
    store: Store,
    states: mpsc::Sender<(i64, SendResult)>,
    /// How this operator's ids are keyed there (`operators::id_prefix`).
    id_prefix: Option<String>,
}

/// How a receipt's state is written in `delivery_state`.
fn state_text(state: &DeliveryState) -> String {
    match state {
        DeliveryState::Delivered => "delivered".into(),
        DeliveryState::Expired => "expired".into(),
        DeliveryState::Deleted => "deleted".into(),
        DeliveryState::Undeliverable => "undeliverable".into(),
        DeliveryState::Accepted => "accepted".into(),
        DeliveryState::Unknown => "unknown".into(),
        DeliveryState::Rejected => "rejected".into(),
        DeliveryState::Enroute => "enroute".into(),
        DeliveryState::Other(other) => other.chars().take(16).collect(),
    }
}

impl ReceiptHandler for ReceiptRecorder {
    async fn on_receipt(&self, receipt: Receipt) -> Result<(), HandlerError> {
        let outbox_id = match self.book.known(&receipt) {
            Some(id) => Some(id),
            // Sent before a restart, or longer ago than the book reaches:
            // the stored ids, by key.
            None => self
                .store
                .outbox()
                .message_for_smsc_id(&match &self.id_prefix {
                    Some(prefix) => format!("{prefix}{}", receipt.message_id),
                    None => receipt.message_id.clone(),
                })
                .await
                .map_err(|e| HandlerError(format!("looking up a receipt's message: {e}")))?,
        };
        let Some(outbox_id) = outbox_id else {
            self.book.note_unmatched(&receipt);
            tracing::debug!(message_id = %receipt.message_id, state = ?receipt.state, "receipt for no known message");
            return Ok(());
        };
        let result = SendResult::Receipt {
            state: state_text(&receipt.state),
        };
        self.states
            .send((outbox_id, result))
            .await
            .map_err(|_| HandlerError("the receipt recorder has stopped".into()))
    }
}

impl ReceiptRecorder {
    /// Where receipt states wait for the writer: a message settled by a
    /// receipt nobody claimed puts that receipt's state there too.
    pub(crate) fn states(&self) -> mpsc::Sender<(i64, SendResult)> {
        self.states.clone()
    }

    /// The handler of another operator's link: its own book of ids, its ids
    /// keyed with `id_prefix` in storage, the same writer.
    pub(crate) fn for_operator(
        &self,
        book: Arc<ReceiptBook>,
        id_prefix: Option<String>,
    ) -> ReceiptRecorder {
        ReceiptRecorder {
            book,
            store: self.store.clone(),
            states: self.states.clone(),
            id_prefix,
        }
    }
}

/// Writes the receipt states the [`ReceiptRecorder`] queues, in batches.
#[derive(Debug)]
pub(crate) struct ReceiptWriter {
    store: Store,
    clock: Arc<dyn Clock>,
    rx: mpsc::Receiver<(i64, SendResult)>,
}

/// The receipt handler (for the link) and its writer (a gateway service).
pub(crate) fn receipts(
    store: Store,
    clock: Arc<dyn Clock>,
    book: Arc<ReceiptBook>,
) -> (ReceiptRecorder, ReceiptWriter) {
    let (states, rx) = mpsc::channel(RECEIPTS_QUEUE_MAX);
    (
        ReceiptRecorder {
            book,
            states,
            store: store.clone(),
            id_prefix: None,
        },
        ReceiptWriter { store, clock, rx },
    )
}

impl ReceiptWriter {
    /// Writes until `stop`, then writes what is queued and returns; receipts
    /// arriving later are answered with a temporary error (the SMSC redelivers).
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(RECEIPTS_BATCH_MAX);
        loop {
            let got = tokio::select! {
                got = self.rx.recv_many(&mut batch, RECEIPTS_BATCH_MAX) => got,
                _ = stop.cancelled() => {
                    self.rx.close();
                    self.rx.recv_many(&mut batch, RECEIPTS_BATCH_MAX).await
                }
            };
            if got == 0 {
                return;
            }
            if !stop.is_cancelled() {
                tokio::time::sleep(RECEIPTS_LINGER).await;
            }
            while batch.len() < RECEIPTS_BATCH_MAX {
                match self.rx.try_recv() {
                    Ok(state) => batch.push(state),
                    Err(_) => break,
                }
            }
            if let Err(e) = self
                .store
                .outbox()
                .record_send_results(&batch, self.clock.now())
                .await
            {
                // Only the delivery state is lost; the message was sent.
                tracing::warn!(error = %e, receipts = batch.len(), "recording delivery receipts failed");
            }
            batch.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_written_as_operators_read_them() {
        assert_eq!(
            status_text(CommandStatus::EsmeRinvdstadr),
            "ESME_RINVDSTADR (0x0B)"
        );
        assert!(is_permanent(CommandStatus::EsmeRinvdstadr));
        for temporary in [
            CommandStatus::EsmeRsubmitfail,
            CommandStatus::EsmeRthrottled,
            CommandStatus::EsmeRmsgqful,
            CommandStatus::EsmeRsyserr,
            CommandStatus::EsmeRxTAppn,
            CommandStatus::Other(0x400),
        ] {
            assert!(!is_permanent(temporary), "{temporary:?}");
        }
    }

    fn receipt(id: &str, recipient: &str) -> Receipt {
        Receipt {
            message_id: id.into(),
            raw_message_id: id.into(),
            state: DeliveryState::Delivered,
            error: None,
            submit_date: None,
            done_date: None,
            recipient: recipient.into(),
        }
    }

    #[tokio::test]
    async fn the_book_ties_ids_to_rows_and_settles_by_recipient() {
        let book = ReceiptBook::default();
        book.remember(&["a1".into(), "a2".into()], 7);
        assert_eq!(book.look_up(&receipt("a2", "79161234567")), Some(7));
        let to = Msisdn::parse("+79161234567").unwrap();
        let before = Instant::now();
        assert!(
            book.settled_since(&to, before).is_none(),
            "a known id settles nothing"
        );
        assert_eq!(book.look_up(&receipt("zz", "79161234567")), None);
        let settled = book.settled_since(&to, before).expect("settled");
        assert_eq!(
            (settled.message_id.as_str(), settled.state.as_str()),
            ("zz", "delivered")
        );
        let other = Msisdn::parse("+79161234568").unwrap();
        assert!(book.settled_since(&other, before).is_none());
    }

    #[test]
    fn the_book_is_bounded() {
        let book = ReceiptBook::default();
        for i in 0..RECEIPT_IDS_MAX + 10 {
            book.remember(&[format!("id{i}")], i as i64);
        }
        let inner = book.lock();
        assert_eq!(inner.by_id.len(), RECEIPT_IDS_MAX);
        assert!(!inner.by_id.contains_key("id0"));
    }

    #[tokio::test]
    async fn a_receipt_after_a_restart_finds_its_message_through_the_stored_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &checkin_core::store::sqlite_url_in(dir.path()),
            checkin_core::PhoneVault::new(&checkin_core::Keys::generate()),
            checkin_core::StoreConfig::default(),
        )
        .await
        .unwrap();
        let new = checkin_core::NewMessage {
            recipient: Msisdn::parse("+79161234567").unwrap(),
            text: "alert".into(),
            priority: checkin_core::Priority::Alert,
        };
        let now = chrono::Utc::now();
        let id = store.outbox().enqueue(&new, now).await.unwrap();
        store.outbox().claim_ready(1, now).await.unwrap();
        store
            .outbox()
            .mark_sent(id, &["5A1".into(), "5A2".into()], now)
            .await
            .unwrap();
        // A new run: its book has never seen the ids.
        let clock: Arc<dyn Clock> = Arc::new(checkin_core::SystemClock);
        let (recorder, writer) = receipts(store.clone(), clock, Arc::default());
        recorder
            .on_receipt(receipt("5A2", "79161234567"))
            .await
            .unwrap();
        let stop = CancellationToken::new();
        stop.cancel();
        drop(recorder);
        writer.run(stop).await;
        assert_eq!(
            store.outbox().delivery_state(id).await.unwrap().as_deref(),
            Some("delivered")
        );
    }
}
