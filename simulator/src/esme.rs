//! A minimal ESME (SMPP client) for tests, the benchmark and the load
//! generator: one task owns the socket, the [`Esme`] handle sends requests
//! through a queue and gets responses back by sequence number.
//!
//! It answers every `deliver_sm` at once with a settable status and, when
//! asked, replies to each MO with a `submit_sm` back to its sender.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
};

use futures::{SinkExt, StreamExt};
use rusmpp::{
    pdus::{BindReceiver, BindTransceiver, BindTransmitter, DeliverSm, DeliverSmResp, SubmitSm},
    tlvs::{MessageSubmissionRequestTlvValue, TlvValue},
    types::{COctetString, OctetString},
    values::{DataCoding, InterfaceVersion, ItsSessionInfo, RegisteredDelivery, UssdServiceOp},
    Command, CommandStatus, Pdu,
};
use tokio::{
    net::{TcpStream, ToSocketAddrs},
    sync::{mpsc, oneshot},
};
use tokio_util::codec::Framed;

use crate::codec::{Inbound, SmppCodec};

/// Requests queued to the socket task.
pub const ESME_REQUESTS_MAX: usize = 1024;
/// `deliver_sm` kept for [`Esme::next_deliver`]; more are answered but dropped.
pub const ESME_DELIVERS_MAX: usize = 100_000;
/// Largest PDU the ESME accepts.
pub const ESME_PDU_LEN_MAX: usize = 65_536;

/// How the ESME binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// bind_transmitter
    Transmitter,
    /// bind_receiver
    Receiver,
    /// bind_transceiver
    Transceiver,
}

/// Options of [`Esme::connect`].
#[derive(Debug, Clone)]
pub struct EsmeOptions {
    /// `system_id`. Default `checkin`.
    pub system_id: String,
    /// Password. Default `checkin`.
    pub password: String,
    /// Bind kind. Default transceiver.
    pub bind: Bind,
    /// When true, every MO (not receipts) is answered with a `submit_sm`
    /// to its sender saying `OK`, and every USSD dial or answer with the
    /// final screen `OK` ([`ussd_final_screen`]). Default false.
    pub reply_to_mo: bool,
    /// Keep received `deliver_sm` for [`Esme::next_deliver`]. Default true;
    /// a benchmark turns it off.
    pub keep_delivers: bool,
    /// With [`Self::reply_to_mo`]: the SMS replies ask for a delivery
    /// receipt (`registered_delivery` 1), as a gateway's confirmations do;
    /// the receipts are acknowledged like every `deliver_sm`. Default false.
    pub reply_receipt: bool,
}

impl Default for EsmeOptions {
    fn default() -> Self {
        Self {
            system_id: "checkin".into(),
            password: "checkin".into(),
            bind: Bind::Transceiver,
            reply_to_mo: false,
            keep_delivers: true,
            reply_receipt: false,
        }
    }
}

/// Errors of the test ESME.
#[derive(Debug, thiserror::Error)]
pub enum EsmeError {
    /// Connecting or writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The connection closed before the answer came.
    #[error("connection closed")]
    Closed,
    /// The bind was refused.
    #[error("bind refused: {0:?}")]
    BindRefused(CommandStatus),
}

type Request = (Pdu, oneshot::Sender<Command>);

/// Handle to a bound ESME.
#[derive(Debug)]
pub struct Esme {
    requests: mpsc::Sender<Request>,
    delivers: mpsc::Receiver<DeliverSm>,
    deliver_status: Arc<AtomicU32>,
}

impl Esme {
    /// Connects and binds.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        options: EsmeOptions,
    ) -> Result<Self, EsmeError> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (requests, requests_rx) = mpsc::channel(ESME_REQUESTS_MAX);
        let (delivers_tx, delivers) = mpsc::channel(ESME_DELIVERS_MAX);
        let deliver_status = Arc::new(AtomicU32::new(0));
        tokio::spawn(run(
            Framed::new(stream, SmppCodec::new(ESME_PDU_LEN_MAX)),
            requests_rx,
            delivers_tx,
            deliver_status.clone(),
            Replies {
                to_mo: options.reply_to_mo,
                receipt: options.reply_receipt,
            },
            options.keep_delivers,
        ));
        let esme = Self {
            requests,
            delivers,
            deliver_status,
        };
        let system_id = COctetString::from_string(options.system_id).unwrap_or_default();
        let password = COctetString::from_string(options.password).unwrap_or_default();
        let version = InterfaceVersion::Smpp3_4;
        let pdu = match options.bind {
            Bind::Transmitter => Pdu::BindTransmitter(
                BindTransmitter::builder()
                    .system_id(system_id)
                    .password(password)
                    .interface_version(version)
                    .build(),
            ),
            Bind::Receiver => Pdu::BindReceiver(
                BindReceiver::builder()
                    .system_id(system_id)
                    .password(password)
                    .interface_version(version)
                    .build(),
            ),
            Bind::Transceiver => Pdu::BindTransceiver(
                BindTransceiver::builder()
                    .system_id(system_id)
                    .password(password)
                    .interface_version(version)
                    .build(),
            ),
        };
        let response = esme.request(pdu).await?;
        if response.status() != CommandStatus::EsmeRok {
            return Err(EsmeError::BindRefused(response.status()));
        }
        Ok(esme)
    }

    /// Sends any request and waits for its response.
    pub async fn request(&self, pdu: impl Into<Pdu>) -> Result<Command, EsmeError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send((pdu.into(), tx))
            .await
            .map_err(|_| EsmeError::Closed)?;
        rx.await.map_err(|_| EsmeError::Closed)
    }

    /// Submits a GSM 7-bit text; returns the response.
    pub async fn submit_text(
        &self,
        from: &str,
        to: &str,
        text: &str,
        receipt: bool,
    ) -> Result<Command, EsmeError> {
        self.request(simple_submit(from, to, text.as_bytes(), receipt))
            .await
    }

    /// The next `deliver_sm` received (already answered).
    pub async fn next_deliver(&mut self) -> Option<DeliverSm> {
        self.delivers.recv().await
    }

    /// Status the ESME answers to the following `deliver_sm`s.
    pub fn set_deliver_status(&self, status: CommandStatus) {
        self.deliver_status
            .store(u32::from(status), Ordering::Relaxed);
    }

    /// Sends `unbind` and waits for `unbind_resp`.
    pub async fn unbind(&self) -> Result<Command, EsmeError> {
        self.request(Pdu::Unbind).await
    }
}

/// A single-part `submit_sm` with `data_coding` 0.
pub fn simple_submit(from: &str, to: &str, text: &[u8], receipt: bool) -> SubmitSm {
    SubmitSm::builder()
        .source_addr(COctetString::from_string(from.to_string()).unwrap_or_default())
        .destination_addr(COctetString::from_string(to.to_string()).unwrap_or_default())
        .registered_delivery(RegisteredDelivery::from(u8::from(receipt)))
        .short_message(OctetString::from_vec(text.to_vec()).unwrap_or_default())
        .build()
}

fn has_ussd_op(deliver: &DeliverSm) -> bool {
    deliver
        .tlvs()
        .iter()
        .any(|t| matches!(t.value(), Some(TlvValue::UssdServiceOp(_))))
}

/// For a USSD dial or answer (`ussd_service_op` 1 or 18): the final screen
/// `OK` (`ussd_service_op` 17, `data_coding` 0x0F) echoing the dialog's
/// `its_session_info` and `user_message_reference`. `None` for anything
/// else (an abort is not answered).
pub fn ussd_final_screen(deliver: &DeliverSm) -> Option<SubmitSm> {
    let mut op = None;
    let mut echo = Vec::new();
    for tlv in deliver.tlvs() {
        match tlv.value() {
            Some(TlvValue::UssdServiceOp(v)) => op = Some(u8::from(*v)),
            Some(TlvValue::ItsSessionInfo(v)) => {
                echo.push(MessageSubmissionRequestTlvValue::ItsSessionInfo(
                    ItsSessionInfo::new(v.session_number, v.sequence_number.wrapping_add(2) & 0xFE),
                ))
            }
            Some(TlvValue::UserMessageReference(v)) => {
                echo.push(MessageSubmissionRequestTlvValue::UserMessageReference(*v))
            }
            _ => {}
        }
    }
    if !matches!(op, Some(1) | Some(18)) {
        return None;
    }
    let mut submit = simple_submit(
        deliver.destination_addr.as_str(),
        deliver.source_addr.as_str(),
        b"OK",
        false,
    );
    submit.data_coding = DataCoding::from(0x0F);
    submit.push_tlv(MessageSubmissionRequestTlvValue::UssdServiceOp(
        UssdServiceOp::PssrResponse,
    ));
    for tlv in echo {
        submit.push_tlv(tlv);
    }
    Some(submit)
}

/// How the socket task answers MOs ([`EsmeOptions::reply_to_mo`],
/// [`EsmeOptions::reply_receipt`]).
#[derive(Debug, Clone, Copy)]
struct Replies {
    to_mo: bool,
    receipt: bool,
}

async fn run(
    mut framed: Framed<TcpStream, SmppCodec>,
    mut requests: mpsc::Receiver<Request>,
    delivers: mpsc::Sender<DeliverSm>,
    deliver_status: Arc<AtomicU32>,
    replies: Replies,
    keep_delivers: bool,
) {
    let mut pending: HashMap<u32, oneshot::Sender<Command>> = HashMap::new();
    let mut seq: u32 = 0;
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some((pdu, reply)) = request else { break };
                seq = seq.wrapping_add(1).max(1);
                pending.insert(seq, reply);
                if framed.send(&Command::new(CommandStatus::EsmeRok, seq, pdu)).await.is_err() {
                    break;
                }
            }
            inbound = framed.next() => {
                let Some(Ok(Inbound::Command(command))) = inbound else { break };
                let command = *command;
                if command.id().is_response() {
                    if let Some(reply) = pending.remove(&command.sequence_number()) {
                        let _ = reply.send(command);
                    }
                    continue;
                }
                let answer = match command.pdu() {
                    Some(Pdu::DeliverSm(deliver)) => {
                        let status = CommandStatus::from(deliver_status.load(Ordering::Relaxed));
                        let resp = Command::new(status, command.sequence_number(), DeliverSmResp::default());
                        if framed.send(&resp).await.is_err() {
                            break;
                        }
                        let is_receipt = u8::from(deliver.esm_class) & 0x04 != 0;
                        let ussd = ussd_final_screen(deliver);
                        let dialog_end = ussd.is_none() && has_ussd_op(deliver);
                        if replies.to_mo && !is_receipt && !dialog_end && status == CommandStatus::EsmeRok {
                            let submit = ussd.unwrap_or_else(|| simple_submit(deliver.destination_addr.as_str(), deliver.source_addr.as_str(), b"OK", replies.receipt));
                            seq = seq.wrapping_add(1).max(1);
                            if framed.send(&Command::new(CommandStatus::EsmeRok, seq, submit)).await.is_err() {
                                break;
                            }
                        }
                        if keep_delivers {
                            let _ = delivers.try_send(deliver.clone());
                        }
                        continue;
                    }
                    Some(Pdu::EnquireLink) => Command::new(CommandStatus::EsmeRok, command.sequence_number(), Pdu::EnquireLinkResp),
                    Some(Pdu::Unbind) => {
                        let _ = framed.send(&Command::new(CommandStatus::EsmeRok, command.sequence_number(), Pdu::UnbindResp)).await;
                        break;
                    }
                    _ => Command::new(CommandStatus::EsmeRinvcmdid, command.sequence_number(), Pdu::GenericNack),
                };
                if framed.send(&answer).await.is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{Config, MoRequest, Simulator};

    /// Replies to MOs, asking for receipts or not: the simulator sends a
    /// receipt only for the receipted ones, and the ESME acknowledges it.
    #[tokio::test]
    async fn reply_receipt_asks_for_a_receipt_and_acks_it() {
        for reply_receipt in [false, true] {
            let mut config = Config::default();
            config.receipts.delay_ms = 10;
            let sim = Simulator::new(config).unwrap();
            let shutdown = CancellationToken::new();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(sim.clone().serve_smpp(listener, shutdown.clone()));
            let options = EsmeOptions {
                reply_to_mo: true,
                keep_delivers: false,
                reply_receipt,
                ..EsmeOptions::default()
            };
            let _esme = Esme::connect(addr, options).await.unwrap();
            let report = sim
                .inject_mo(MoRequest::new("+79161234567", "ВХОД*123-456-789"))
                .await
                .unwrap();
            assert!(report.delivered);
            let want = u64::from(reply_receipt);
            let mut receipts = sim.stats().receipts;
            for _ in 0..200 {
                if receipts.delivered >= want && receipts.produced >= want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                receipts = sim.stats().receipts;
            }
            if !reply_receipt {
                // Give a receipt that should not come the time to come.
                tokio::time::sleep(Duration::from_millis(100)).await;
                receipts = sim.stats().receipts;
            }
            assert_eq!(receipts.produced, want, "{receipts:?}");
            assert_eq!(receipts.delivered, want, "{receipts:?}");
            assert_eq!(receipts.failed, 0, "{receipts:?}");
            shutdown.cancel();
        }
    }
}
