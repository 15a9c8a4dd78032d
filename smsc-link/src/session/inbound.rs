//! The inbound half of a session: `deliver_sm` (or `data_sm`) read, told
//! MO from receipt, reassembled, handed to its handler in a task of its
//! own, and answered (`deliver_sm_resp` or `data_sm_resp`, through the
//! session's queue of answers) only once the handler finished. It counts the deliveries not answered yet, which is
//! what the session's back-pressure reads.

use std::sync::{atomic::Ordering, Arc};

use rusmpp::CommandStatus;
use tokio::{sync::mpsc, time::Instant};

use crate::{
    config::PartAck,
    gate::{Ack, AckKind, AckToken},
    pdu::Delivery,
    reassembly::GroupKey,
    shared::{lock, Shared},
    telemetry, text, Mo, MoAnswer, Receipt,
};

/// The parts of a multipart MO already acknowledged on arrival
/// ([`PartAck::OnArrival`]): put back when the handler fails, so that the
/// SMSC's redelivery of the completing part completes the message again.
#[derive(Debug)]
struct Stored {
    key: GroupKey,
    completing_seq: u8,
    data_coding: u8,
    parts: Vec<Vec<u8>>,
}

impl Stored {
    fn restore(self, shared: &Shared) {
        let mut reassembly = lock(&shared.reassembly);
        let now = Instant::now();
        for (index, bytes) in self.parts.into_iter().enumerate() {
            let seq = index as u8 + 1;
            if seq != self.completing_seq {
                let _ =
                    reassembly.insert(self.key.clone(), seq, self.data_coding, bytes, None, now);
            }
        }
    }
}

/// The inbound half of one session.
pub(super) struct Inbound {
    shared: Arc<Shared>,
    ack_tx: mpsc::Sender<Ack>,
    /// Answers to write, from the handlers' tasks.
    pub(super) ack_rx: mpsc::Receiver<Ack>,
    /// `deliver_sm` received on this session and not answered yet.
    pub(super) outstanding: usize,
    /// Most `deliver_sm` outstanding before the session stops reading
    /// (`deliveries_in_flight_max`): back-pressure, never an error.
    max: usize,
}

impl Inbound {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        // Room for every outstanding delivery's answer: `answer_now`
        // never finds the queue full.
        let max = shared.config.deliveries_in_flight_max.max(1);
        let (ack_tx, ack_rx) = mpsc::channel(max);
        Self {
            shared,
            ack_tx,
            ack_rx,
            outstanding: 0,
            max,
        }
    }

    /// Every slot is taken: the session reads nothing until one frees.
    pub(super) fn is_full(&self) -> bool {
        self.outstanding >= self.max
    }

    /// Takes one delivery read from a `deliver_sm` or a `data_sm` (`kind`
    /// names the response it is owed): a `data_sm` MO goes to the MO
    /// handler exactly as a `deliver_sm` would, TLVs and all.
    pub(super) fn on_delivery(&mut self, seq: u32, delivery: Delivery, kind: AckKind) {
        self.outstanding += 1;
        let token = AckToken::new(self.ack_tx.clone(), seq, kind);
        let config = &self.shared.config;
        match delivery {
            Delivery::Unusable => {
                tracing::warn!("receipt without a message id: acknowledged and dropped");
                token.answer_now(CommandStatus::EsmeRok);
            }
            Delivery::Receipt(receipt) => {
                let in_flight = self.shared.in_flight.load(Ordering::Relaxed);
                let admitted =
                    lock(&self.shared.gate).admit(receipt, token, in_flight, Instant::now());
                if let Some((receipt, token)) = admitted {
                    self.dispatch_receipt(receipt, token);
                }
            }
            Delivery::Mo(part) => {
                let default = config.default_alphabet;
                match part.part {
                    None => {
                        let mo = Mo {
                            text: text::decode(part.data_coding, &part.bytes, default),
                            from: part.from,
                            to: part.to,
                            data_coding: part.data_coding,
                            parts: 1,
                            tlvs: part.tlvs,
                        };
                        self.dispatch_mo(mo, vec![token], None);
                    }
                    Some(info) => {
                        let key = GroupKey {
                            from: part.from.clone(),
                            to: part.to.clone(),
                            reference: info.reference,
                            total: info.total,
                        };
                        let hold = config.part_ack == PartAck::Hold;
                        let (stored, own) = if hold {
                            (Some(token), None)
                        } else {
                            (None, Some(token))
                        };
                        let inserted = lock(&self.shared.reassembly).insert(
                            key.clone(),
                            info.seq,
                            part.data_coding,
                            part.bytes,
                            stored,
                            Instant::now(),
                        );
                        for token in inserted.rejected.into_iter().flatten() {
                            token.answer_now(CommandStatus::EsmeRxTAppn);
                        }
                        match inserted.complete {
                            None => {
                                if let Some(token) = own {
                                    token.answer_now(CommandStatus::EsmeRok);
                                }
                            }
                            Some(complete) => {
                                let bytes = complete.parts.concat();
                                let mo = Mo {
                                    text: text::decode(complete.data_coding, &bytes, default),
                                    from: part.from,
                                    to: part.to,
                                    data_coding: complete.data_coding,
                                    parts: complete.parts.len(),
                                    tlvs: part.tlvs,
                                };
                                let mut tokens: Vec<AckToken> =
                                    complete.tokens.into_iter().flatten().collect();
                                tokens.extend(own);
                                let keep = (!hold).then_some(Stored {
                                    key,
                                    completing_seq: info.seq,
                                    data_coding: complete.data_coding,
                                    parts: complete.parts,
                                });
                                self.dispatch_mo(mo, tokens, keep);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs the MO handler in its own task; every part is answered after it.
    /// At most `deliveries_in_flight_max` run per session: beyond it the
    /// session stops reading (`may_read`).
    fn dispatch_mo(&self, mo: Mo, tokens: Vec<AckToken>, keep: Option<Stored>) {
        tracing::debug!(from = %crate::masked(&mo.from), parts = mo.parts, "mo");
        let shared = Arc::clone(&self.shared);
        self.shared.tasks.spawn(async move {
            let result = (shared.on_mo)(mo).await;
            let (status, label) = match &result {
                Ok(_) => (CommandStatus::EsmeRok, "ok"),
                Err(error) => {
                    tracing::warn!(%error, "mo handler failed: smsc will redeliver");
                    if let Some(keep) = keep {
                        keep.restore(&shared);
                    }
                    (CommandStatus::EsmeRxTAppn, "error")
                }
            };
            metrics::counter!(telemetry::MO, "result" => label, "operator" => shared.config.operator.clone())
                .increment(1);
            let reply = match result {
                Ok(MoAnswer { reply }) => reply,
                Err(_) => None,
            };
            let mut tokens = tokens;
            let last = if reply.is_some() { tokens.pop() } else { None };
            for token in tokens {
                token.answer(status).await;
            }
            // The reply in the same dialog goes out only once the MO's
            // acknowledgement is written (answers are written in order);
            // unacknowledged, the MO comes again and is answered again.
            if let (Some(last), Some(reply)) = (last, reply) {
                if last.answer_written(status).await {
                    shared.send_reply(reply).await;
                } else {
                    tracing::warn!("mo not acknowledged: its reply is not sent");
                }
            }
        });
    }

    pub(super) fn dispatch_receipt(&self, receipt: Receipt, token: AckToken) {
        let shared = Arc::clone(&self.shared);
        self.shared.tasks.spawn(async move {
            let result = (shared.on_receipt)(receipt).await;
            let (status, label) = match &result {
                Ok(()) => (CommandStatus::EsmeRok, "ok"),
                Err(error) => {
                    tracing::warn!(%error, "receipt handler failed: smsc will redeliver");
                    (CommandStatus::EsmeRxTAppn, "error")
                }
            };
            metrics::counter!(telemetry::RECEIPTS, "result" => label, "operator" => shared.config.operator.clone())
                .increment(1);
            token.answer(status).await;
        });
    }

    /// Multipart MO waiting too long for their parts are answered a
    /// temporary error; receipts held too long go to the handler anyway.
    pub(super) fn expire(&self, now: Instant) {
        for token in lock(&self.shared.reassembly)
            .expire(now)
            .into_iter()
            .flatten()
        {
            token.answer_now(CommandStatus::EsmeRxTAppn);
        }
        let in_flight = self.shared.in_flight.load(Ordering::Relaxed);
        let released = lock(&self.shared.gate).expire(now, in_flight);
        for (receipt, token) in released {
            self.dispatch_receipt(receipt, token);
        }
    }
}
