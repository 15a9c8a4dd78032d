//! Simulator → ESME traffic: injected MO messages, each `deliver_sm`
//! retried with exponential backoff when the ESME answers an error or does
//! not answer, up to `attempts_max`; and receipts produced after their
//! delay, handed to their account's queue in `receipts.rs`.

use std::{sync::atomic::Ordering, time::Duration};

use chrono::Utc;
use rusmpp::{pdus::DeliverSm, CommandStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{
    lock,
    pdu::{mo_deliver_sm, receipt_deliver_sm, status_name, ReceiptFacts},
    session::Delivery,
    store::ReceiptStat,
    text::{encode_parts, Encoding},
    Error, Simulator,
};

/// Longest MO text accepted, in characters (enough for 10 UCS2 parts).
pub const MO_TEXT_CHARS_MAX: usize = 670;

/// Encoding asked for an MO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoEncoding {
    /// GSM 7-bit when every character fits, UCS2 otherwise (default).
    #[default]
    Auto,
    /// GSM 7-bit default alphabet, unpacked.
    Gsm7,
    /// UCS2.
    Ucs2,
    /// ISO-8859-1.
    Latin1,
}

/// An MO to inject (`POST /api/mo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoRequest {
    /// Sender, e.g. `+79161234567`.
    pub from: String,
    /// Destination; the configured `default_to` (7377) when absent.
    #[serde(default)]
    pub to: Option<String>,
    /// Text.
    pub text: String,
    /// Encoding; automatic when absent.
    #[serde(default)]
    pub encoding: Option<MoEncoding>,
}

impl MoRequest {
    /// An MO from `from` to the default destination, encoding chosen automatically.
    pub fn new(from: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: None,
            text: text.into(),
            encoding: None,
        }
    }
}

/// What became of an injected MO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoReport {
    /// Id of the MO (`mo-N`).
    pub id: String,
    /// The ESME's last `deliver_sm_resp` status name (`ESME_ROK`), or
    /// `NO_ANSWER` when the last attempt got no answer.
    pub status: String,
    /// Numeric status, absent when there was no answer.
    pub status_code: Option<u32>,
    /// True when every part was acknowledged with ESME_ROK.
    pub delivered: bool,
    /// `deliver_sm` attempts made, all parts together.
    pub attempts: u32,
    /// Number of parts.
    pub parts: usize,
    /// Encoding used.
    pub encoding: Encoding,
}

/// Outcome of one try of a `deliver_sm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// No session that can receive (of the wanted `system_id`) is bound.
    NoReceiver,
    /// The ESME answered with this status.
    Answered(CommandStatus),
    /// No answer within the timeout, or the session closed first.
    NoAnswer,
}

/// Outcome of delivering one `deliver_sm`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliveryReport {
    /// Last status, `None` when the last attempt got no answer.
    pub(crate) status: Option<CommandStatus>,
    pub(crate) attempts: u32,
}

impl Simulator {
    /// Sends `pdu` to a session that can receive (one bound as `system_id`
    /// when given), retrying with backoff. Fails with [`Error::NoReceiver`]
    /// when no such session exists at the first attempt.
    pub(crate) async fn deliver(
        &self,
        system_id: Option<&str>,
        pdu: DeliverSm,
    ) -> Result<DeliveryReport, Error> {
        let cfg = &self.inner.config.delivery;
        let timeout = Duration::from_millis(cfg.response_timeout_ms);
        self.deliver_with(system_id, pdu, cfg.attempts_max, timeout)
            .await
    }

    /// [`Simulator::deliver`] with its own attempt count and response
    /// timeout (a USSD dialog is not retried: the user would see nothing).
    pub(crate) async fn deliver_with(
        &self,
        system_id: Option<&str>,
        pdu: DeliverSm,
        attempts_max: u32,
        timeout: Duration,
    ) -> Result<DeliveryReport, Error> {
        let cfg = &self.inner.config.delivery;
        let attempts_max = attempts_max.max(1);
        let mut backoff = Duration::from_millis(cfg.backoff_initial_ms);
        let mut report = DeliveryReport {
            status: None,
            attempts: 0,
        };
        for attempt in 1..=attempts_max {
            let outcome = tokio::select! {
                _ = self.inner.stopping.cancelled() => return Ok(report),
                outcome = self.attempt(system_id, pdu.clone(), timeout) => outcome,
            };
            match outcome {
                Attempt::NoReceiver if attempt == 1 => return Err(Error::NoReceiver),
                Attempt::NoReceiver => {}
                Attempt::Answered(status) => {
                    report.attempts = attempt;
                    report.status = Some(status);
                    if status == CommandStatus::EsmeRok {
                        return Ok(report);
                    }
                }
                Attempt::NoAnswer => {
                    report.attempts = attempt;
                    report.status = None;
                }
            }
            if attempt < attempts_max {
                tokio::select! {
                    _ = self.inner.stopping.cancelled() => return Ok(report),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_millis(cfg.backoff_max_ms));
            }
        }
        Ok(report)
    }

    /// One try: hands `pdu` to a session that can receive (bound as
    /// `system_id` when given) and waits up to `timeout` for its answer.
    pub(crate) async fn attempt(
        &self,
        system_id: Option<&str>,
        pdu: DeliverSm,
        timeout: Duration,
    ) -> Attempt {
        let Some(tx) = lock(&self.inner.registry).pick(system_id) else {
            return Attempt::NoReceiver;
        };
        let (reply, answer) = oneshot::channel();
        let delivery = Delivery { pdu, reply };
        // Queueing behind a full window counts against the timeout; a
        // session that closes drops `reply`, which ends the wait at once.
        let exchange = async {
            tx.send(delivery).await.ok()?;
            answer.await.ok()
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Some(status)) => Attempt::Answered(status),
            _ => Attempt::NoAnswer,
        }
    }

    /// Delivers an MO to a bound receiver or transceiver and reports the
    /// ESME's answer. Long texts go as concatenated parts (8-bit UDH
    /// reference), one after the other; a part that fails stops the rest.
    pub async fn inject_mo(&self, request: MoRequest) -> Result<MoReport, Error> {
        if self.inner.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        if request.text.chars().count() > MO_TEXT_CHARS_MAX {
            return Err(Error::BadRequest(format!(
                "text longer than {MO_TEXT_CHARS_MAX} characters"
            )));
        }
        let to = request
            .to
            .clone()
            .unwrap_or_else(|| self.inner.config.delivery.default_to.clone());
        let encoding = match request.encoding.unwrap_or_default() {
            MoEncoding::Auto => Encoding::auto(&request.text),
            MoEncoding::Gsm7 => Encoding::Gsm7,
            MoEncoding::Ucs2 => Encoding::Ucs2,
            MoEncoding::Latin1 => Encoding::Latin1,
        };
        let no = self.inner.mo_no.fetch_add(1, Ordering::Relaxed) + 1;
        let reference = (no % 256) as u8;
        let encoded = encode_parts(&request.text, encoding, reference)
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        let pdus = encoded
            .parts
            .iter()
            .map(|part| {
                mo_deliver_sm(
                    &request.from,
                    &to,
                    encoded.data_coding,
                    encoded.udhi,
                    part.clone(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.inner.stats.update(|s| s.mo.injected += 1);
        let id = format!("mo-{no}");
        tracing::debug!(mo_id = %id, parts = pdus.len(), "injecting mo");
        let mut attempts = 0;
        let mut last = DeliveryReport {
            status: None,
            attempts: 0,
        };
        for pdu in pdus {
            let result = self.deliver(None, pdu).await;
            let report = match result {
                Ok(report) => report,
                Err(error) => {
                    self.inner.stats.update(|s| s.mo.failed += 1);
                    return Err(error);
                }
            };
            attempts += report.attempts;
            last = report;
            if report.status != Some(CommandStatus::EsmeRok) {
                break;
            }
        }
        let delivered = last.status == Some(CommandStatus::EsmeRok);
        self.inner.stats.update(|s| {
            s.mo.attempts += u64::from(attempts);
            if delivered {
                s.mo.delivered += 1;
            } else {
                s.mo.failed += 1;
            }
        });
        Ok(MoReport {
            id,
            status: last
                .status
                .map_or_else(|| "NO_ANSWER".to_string(), status_name),
            status_code: last.status.map(u32::from),
            delivered,
            attempts,
            parts: encoded.parts.len(),
            encoding,
        })
    }

    /// Schedules the receipt of one submitted part: after the configured
    /// delay it is recorded in the store and (when `send` is true) queued
    /// for the sessions bound as `system_id` (`receipts.rs`).
    pub(crate) fn schedule_receipt(&self, system_id: String, facts: ReceiptFacts, send: bool) {
        let sim = self.clone();
        let delay = Duration::from_millis(self.inner.config.receipts.delay_ms);
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = sim.inner.stopping.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            let mut facts = facts;
            facts.done_date = Utc::now().format("%y%m%d%H%M").to_string();
            lock(&sim.inner.store).set_receipt(&facts.message_id, facts.stat);
            if !send {
                return;
            }
            sim.inner.stats.update(|s| s.receipts.produced += 1);
            let pdu = match receipt_deliver_sm(&facts) {
                Ok(pdu) => pdu,
                Err(error) => {
                    tracing::warn!(%error, message_id = %facts.message_id, "receipt not built");
                    sim.inner.stats.update(|s| s.receipts.failed += 1);
                    return;
                }
            };
            sim.enqueue_receipt(&system_id, pdu);
        });
    }

    /// Picks a receipt outcome from the configured mix; `unit` is a draw in 0..1.
    pub(crate) fn receipt_outcome(&self, unit: f64) -> ReceiptStat {
        let r = &self.inner.config.receipts;
        let total = (r.delivered_pct + r.undeliverable_pct + r.expired_pct).max(f64::MIN_POSITIVE);
        let x = unit * total;
        if x < r.delivered_pct {
            ReceiptStat::Delivered
        } else if x < r.delivered_pct + r.undeliverable_pct {
            ReceiptStat::Undeliverable
        } else {
            ReceiptStat::Expired
        }
    }
}
