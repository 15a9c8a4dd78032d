//! One SMPP session: the task that owns the socket. It reads PDUs, answers
//! them (possibly late, or never, as the fault profile says), and writes the
//! `deliver_sm` that MO injection and receipts hand it through its queue,
//! keeping at most `outbound_window_max` of them unanswered.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    pin::Pin,
    time::Duration,
};

use bytes::BytesMut;
use chrono::Utc;
use futures::{stream::FuturesUnordered, SinkExt, StreamExt};
use rusmpp::{
    decode::Decode,
    pdus::{
        BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSm,
        SubmitSmResp,
    },
    tlvs::TlvValue,
    types::COctetString,
    values::InterfaceVersion,
    Command, CommandId, CommandStatus, Pdu,
};
use smpp_text::HEADER_LEN;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{mpsc, oneshot, watch},
};
use tokio_util::{
    codec::{Decoder, Encoder, Framed},
    sync::CancellationToken,
};
use tracing::Instrument;

use crate::{
    codec::{Inbound, SmppCodec},
    faults::SessionFaults,
    journal::Direction,
    lock,
    pdu::{bare_response, command_name, generic_nack, status_name, ReceiptFacts},
    stats::bump,
    store::{ReceiptState, SubmittedPart},
    text::{part_units, split_udh, Encoding, PartInfo, GSM7_SEPTETS_MAX, OCTETS_MAX},
    Simulator,
};

/// How an ESME is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    /// May submit, receives nothing.
    Transmitter,
    /// Receives, may not submit.
    Receiver,
    /// Both.
    Transceiver,
}

impl BindKind {
    fn name(self) -> &'static str {
        match self {
            Self::Transmitter => "transmitter",
            Self::Receiver => "receiver",
            Self::Transceiver => "transceiver",
        }
    }

    fn can_submit(self) -> bool {
        self != Self::Receiver
    }

    fn can_receive(self) -> bool {
        self != Self::Transmitter
    }
}

/// A `deliver_sm` handed to a session, and where its answer goes.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) pdu: DeliverSm,
    pub(crate) reply: oneshot::Sender<CommandStatus>,
}

#[derive(Debug, Clone)]
struct Entry {
    system_id: String,
    kind: BindKind,
    tx: mpsc::Sender<Delivery>,
}

/// Bound sessions, for routing deliveries.
#[derive(Debug)]
pub(crate) struct Registry {
    sessions: BTreeMap<u64, Entry>,
    next: usize,
    changes: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            sessions: BTreeMap::new(),
            next: 0,
            changes: watch::channel(0).0,
        }
    }
}

impl Registry {
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn receivers(&self) -> usize {
        self.sessions
            .values()
            .filter(|e| e.kind.can_receive())
            .count()
    }

    /// `(system_id, bind kind)` of every bound session, oldest first.
    pub(crate) fn bound(&self) -> Vec<(String, &'static str)> {
        self.sessions
            .values()
            .map(|e| (e.system_id.clone(), e.kind.name()))
            .collect()
    }

    /// True when a session bound as `system_id` can receive.
    pub(crate) fn can_receive(&self, system_id: &str) -> bool {
        self.sessions
            .values()
            .any(|e| e.kind.can_receive() && e.system_id == system_id)
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Round-robin over sessions that can receive (bound as `system_id` if given).
    pub(crate) fn pick(&mut self, system_id: Option<&str>) -> Option<mpsc::Sender<Delivery>> {
        let candidates: Vec<&Entry> = self
            .sessions
            .values()
            .filter(|e| e.kind.can_receive() && system_id.is_none_or(|id| id == e.system_id))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        self.next = self.next.wrapping_add(1);
        Some(candidates[self.next % candidates.len()].tx.clone())
    }
}

/// What a session reads: a frame of [`SmppCodec`], or a bind whose
/// `system_id` or `password` is longer than SMPP 3.4 allows.
#[derive(Debug)]
enum Read {
    Frame(Inbound),
    /// Answered with the bind's own response and this status, as real
    /// SMSCs do (not with `generic_nack`).
    OverlongBind {
        command_id: CommandId,
        sequence_number: u32,
        status: CommandStatus,
    },
}

/// [`SmppCodec`] plus one look at bind frames it refuses: which field was
/// too long decides the answer.
#[derive(Debug)]
struct SessionCodec {
    inner: SmppCodec,
    pdu_len_max: usize,
}

impl SessionCodec {
    fn new(pdu_len_max: usize) -> Self {
        Self {
            inner: SmppCodec::new(pdu_len_max),
            pdu_len_max,
        }
    }
}

/// `system_id` (≤ 15 octets) and `password` (≤ 8) decoded with `rusmpp`'s
/// own types from the body of a bind: the status for the first one that
/// is terminated, but too late. A field with no terminator at all is a
/// broken body (`generic_nack`), not a long one.
fn overlong_bind_status(body: &[u8]) -> Option<CommandStatus> {
    /// Longest field read when looking for where a too-long one ends.
    const FIELD_OCTETS_MAX: usize = 256;
    let terminated =
        |field: &BytesMut| COctetString::<1, FIELD_OCTETS_MAX>::decode(&mut field.clone()).is_ok();
    let body = BytesMut::from(body);
    let mut rest = body.clone();
    if COctetString::<1, 16>::decode(&mut rest).is_err() {
        return terminated(&body).then_some(CommandStatus::EsmeRinvsysid);
    }
    if COctetString::<1, 9>::decode(&mut rest.clone()).is_err() {
        return terminated(&rest).then_some(CommandStatus::EsmeRinvpaswd);
    }
    None
}

impl Decoder for SessionCodec {
    type Item = Read;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Read>, std::io::Error> {
        // A whole bind frame at the front: keep its bytes in case the
        // inner codec refuses it.
        let header = |at: usize| {
            src.get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let bind = match (header(0), header(4)) {
            (Some(len), Some(id))
                if matches!(
                    CommandId::from(id),
                    CommandId::BindTransmitter
                        | CommandId::BindReceiver
                        | CommandId::BindTransceiver
                ) && (HEADER_LEN..=self.pdu_len_max).contains(&(len as usize))
                    && src.len() >= len as usize =>
            {
                src.get(..len as usize).map(<[u8]>::to_vec)
            }
            _ => None,
        };
        let before = src.len();
        let read = self.inner.decode(src)?;
        let consumed = before - src.len();
        match (read, bind) {
            (
                Some(Inbound::Invalid {
                    command_id,
                    sequence_number,
                    ..
                }),
                Some(frame),
            ) if consumed == frame.len() => {
                match frame.get(HEADER_LEN..).and_then(overlong_bind_status) {
                    Some(status) => Ok(Some(Read::OverlongBind {
                        command_id: CommandId::from(command_id),
                        sequence_number,
                        status,
                    })),
                    None => Ok(Some(Read::Frame(Inbound::Invalid {
                        command_id,
                        sequence_number,
                        status: CommandStatus::EsmeRinvcmdlen,
                        recoverable: true,
                    }))),
                }
            }
            (read, _) => Ok(read.map(Read::Frame)),
        }
    }
}

impl Encoder<&Command> for SessionCodec {
    type Error = std::io::Error;

    fn encode(&mut self, command: &Command, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        self.inner.encode(command, dst)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BindState {
    Open,
    Bound { kind: BindKind, system_id: String },
}

type Later = Pin<Box<dyn Future<Output = Command> + Send>>;

/// What to do after a PDU is handled.
enum Action {
    Reply(Command),
    ReplyLater(Command, Duration),
    Nothing,
    ReplyThenClose(Command),
    Close,
    /// The disconnect fault: close at once, dropping pending responses.
    Hangup,
}

struct Session {
    sim: Simulator,
    no: u64,
    state: BindState,
    faults: SessionFaults,
    faults_rx: watch::Receiver<crate::FaultProfile>,
    deliveries_tx: mpsc::Sender<Delivery>,
    awaiting: HashMap<u32, oneshot::Sender<CommandStatus>>,
    next_seq: u32,
}

pub(crate) async fn run<S>(sim: Simulator, io: S, no: u64, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let span = tracing::debug_span!("smpp_session", session_id = no);
    run_in_span(sim, io, no, shutdown).instrument(span).await;
}

async fn run_in_span<S>(sim: Simulator, io: S, no: u64, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limits = sim.inner.config.limits.clone();
    let (deliveries_tx, mut deliveries_rx) = mpsc::channel(limits.session_queue_max.max(1));
    let mut faults_rx = sim.inner.faults.subscribe();
    let profile = faults_rx.borrow_and_update().clone();
    let mut session = Session {
        faults: SessionFaults::new(profile, no),
        sim,
        no,
        state: BindState::Open,
        faults_rx,
        deliveries_tx,
        awaiting: HashMap::new(),
        next_seq: 0,
    };
    tracing::debug!("session opened");
    let mut framed = Framed::new(io, SessionCodec::new(limits.pdu_len_max));
    let mut later: FuturesUnordered<Later> = FuturesUnordered::new();
    let window_max = limits.outbound_window_max.max(1);
    // Set when the disconnect fault fires: nothing more is written.
    let mut abrupt = false;

    loop {
        let can_deliver = matches!(&session.state, BindState::Bound { kind, .. } if kind.can_receive())
            && session.window_has_room(window_max);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(response) = later.next(), if !later.is_empty() => {
                if session.write(&mut framed, response).await.is_err() {
                    break;
                }
            }
            inbound = framed.next() => {
                let Some(Ok(inbound)) = inbound else { break };
                let action = session.handle(inbound, later.len(), limits.inbound_outstanding_max);
                let close = match action {
                    Action::Reply(command) => session.write(&mut framed, command).await.is_err(),
                    Action::ReplyLater(command, delay) => {
                        later.push(Box::pin(async move {
                            tokio::time::sleep(delay).await;
                            command
                        }));
                        false
                    }
                    Action::Nothing => false,
                    Action::ReplyThenClose(command) => {
                        let _ = session.write(&mut framed, command).await;
                        true
                    }
                    Action::Close => true,
                    Action::Hangup => {
                        abrupt = true;
                        true
                    }
                };
                if close {
                    break;
                }
            }
            Some(delivery) = deliveries_rx.recv(), if can_deliver => {
                if delivery.reply.is_closed() {
                    // Its caller gave up (timeout) and retries elsewhere.
                    continue;
                }
                let seq = session.next_sequence();
                let command = Command::new(CommandStatus::EsmeRok, seq, Pdu::DeliverSm(delivery.pdu));
                session.awaiting.insert(seq, delivery.reply);
                if session.write(&mut framed, command).await.is_err() {
                    break;
                }
            }
        }
    }

    // Finish in-flight work: responses already decided are still written.
    if abrupt {
        later.clear();
    }
    while let Some(response) = later.next().await {
        if session.write(&mut framed, response).await.is_err() {
            break;
        }
    }
    session.unregister();
    if shutdown.is_cancelled() && session.state != BindState::Open {
        session
            .unbind(&mut framed, Duration::from_millis(limits.unbind_timeout_ms))
            .await;
    }
    let _ = framed.close().await;
    tracing::debug!("session closed");
}

impl Session {
    fn next_sequence(&mut self) -> u32 {
        self.next_seq = if self.next_seq >= 0x7FFF_FFFF {
            1
        } else {
            self.next_seq + 1
        };
        self.next_seq
    }

    fn window_has_room(&mut self, window_max: usize) -> bool {
        if self.awaiting.len() >= window_max {
            // Deliveries whose caller stopped waiting free their slot.
            self.awaiting.retain(|_, reply| !reply.is_closed());
        }
        self.awaiting.len() < window_max
    }

    async fn write<S>(
        &mut self,
        framed: &mut Framed<S, SessionCodec>,
        command: Command,
    ) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.note(Direction::Out, &command);
        framed.send(&command).await
    }

    fn note(&self, dir: Direction, command: &Command) {
        let inner = &self.sim.inner;
        let name = command_name(command.id());
        let status = command.status();
        let journal_ok = inner
            .journal
            .as_ref()
            .is_none_or(|j| j.record(self.no, dir, command));
        inner.stats.update(|s| {
            match dir {
                Direction::In => bump(&mut s.pdus_in, name),
                Direction::Out => {
                    if status != CommandStatus::EsmeRok {
                        bump(&mut s.errors, status_name(status));
                    }
                    bump(&mut s.pdus_out, name);
                }
            }
            if !journal_ok {
                s.journal_dropped += 1;
            }
        });
    }

    fn refresh_faults(&mut self) {
        if self.faults_rx.has_changed().unwrap_or(false) {
            let profile = self.faults_rx.borrow_and_update().clone();
            self.faults = SessionFaults::new(profile, self.no);
        }
    }

    fn handle(&mut self, read: Read, outstanding: usize, outstanding_max: usize) -> Action {
        self.refresh_faults();
        let inbound = match read {
            Read::Frame(inbound) => inbound,
            Read::OverlongBind {
                command_id,
                sequence_number,
                status,
            } => {
                let inner = &self.sim.inner;
                inner.stats.update(|s| {
                    bump(&mut s.pdus_in, "invalid".into());
                    s.binds.rejected += 1;
                });
                tracing::info!(status = %status_name(status), "bind refused: field too long");
                let status = if self.state == BindState::Open {
                    status
                } else {
                    CommandStatus::EsmeRalybnd
                };
                return Action::Reply(bare_response(command_id, status, sequence_number));
            }
        };
        let command = match inbound {
            Inbound::Command(command) => *command,
            Inbound::Invalid {
                command_id,
                sequence_number,
                status,
                recoverable,
            } => {
                let inner = &self.sim.inner;
                inner
                    .stats
                    .update(|s| bump(&mut s.pdus_in, "invalid".into()));
                tracing::debug!(command_id, ?status, "invalid pdu");
                let nack = generic_nack(status, sequence_number);
                return if recoverable {
                    Action::Reply(nack)
                } else {
                    Action::ReplyThenClose(nack)
                };
            }
        };
        self.note(Direction::In, &command);
        if self.faults.chance(self.faults.profile.disconnect_share) {
            tracing::debug!("disconnect fault");
            self.sim.inner.stats.update(|s| s.disconnects += 1);
            return Action::Hangup;
        }
        let seq = command.sequence_number();
        let id = command.id();
        if id.is_response() {
            self.handle_response(&command);
            return if id == CommandId::UnbindResp {
                Action::Close
            } else {
                Action::Nothing
            };
        }
        let Some(pdu) = command.pdu() else {
            let status = match id {
                CommandId::Other(_) => CommandStatus::EsmeRinvcmdid,
                _ => CommandStatus::EsmeRinvcmdlen,
            };
            return Action::Reply(generic_nack(status, seq));
        };
        match pdu {
            Pdu::EnquireLink => Action::Reply(Command::new(
                CommandStatus::EsmeRok,
                seq,
                Pdu::EnquireLinkResp,
            )),
            Pdu::BindTransmitter(b) => self.bind(
                BindKind::Transmitter,
                seq,
                id,
                b.system_id.as_str(),
                b.password.as_str(),
            ),
            Pdu::BindReceiver(b) => self.bind(
                BindKind::Receiver,
                seq,
                id,
                b.system_id.as_str(),
                b.password.as_str(),
            ),
            Pdu::BindTransceiver(b) => self.bind(
                BindKind::Transceiver,
                seq,
                id,
                b.system_id.as_str(),
                b.password.as_str(),
            ),
            Pdu::Unbind => {
                if self.state == BindState::Open {
                    Action::Reply(bare_response(id, CommandStatus::EsmeRinvbndsts, seq))
                } else {
                    self.unregister();
                    self.state = BindState::Open;
                    Action::ReplyThenClose(Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        Pdu::UnbindResp,
                    ))
                }
            }
            Pdu::SubmitSm(submit) => {
                if outstanding >= outstanding_max {
                    return Action::Reply(bare_response(id, CommandStatus::EsmeRmsgqful, seq));
                }
                self.submit(seq, submit)
            }
            Pdu::Other { .. } | Pdu::Outbind(_) | Pdu::AlertNotification(_) => {
                Action::Reply(generic_nack(CommandStatus::EsmeRinvcmdid, seq))
            }
            _ if self.state == BindState::Open => {
                Action::Reply(bare_response(id, CommandStatus::EsmeRinvbndsts, seq))
            }
            // Known operations the simulator does not implement (query_sm,
            // cancel_sm, replace_sm, submit_multi, data_sm, broadcasts).
            _ => Action::Reply(generic_nack(CommandStatus::EsmeRinvcmdid, seq)),
        }
    }

    fn handle_response(&mut self, command: &Command) {
        let seq = command.sequence_number();
        match command.id() {
            CommandId::DeliverSmResp | CommandId::GenericNack => {
                let status = command.status();
                if status != CommandStatus::EsmeRok {
                    self.sim
                        .inner
                        .stats
                        .update(|s| bump(&mut s.esme_errors, status_name(status)));
                }
                if let Some(reply) = self.awaiting.remove(&seq) {
                    let _ = reply.send(command.status());
                }
            }
            _ => {
                tracing::debug!(command = %command_name(command.id()), "unexpected response ignored")
            }
        }
    }

    fn bind(
        &mut self,
        kind: BindKind,
        seq: u32,
        id: CommandId,
        system_id: &str,
        password: &str,
    ) -> Action {
        let inner = &self.sim.inner;
        let status = if self.state != BindState::Open {
            CommandStatus::EsmeRalybnd
        } else {
            match inner
                .config
                .accounts
                .iter()
                .find(|a| a.system_id == system_id)
            {
                None => CommandStatus::EsmeRinvsysid,
                Some(account) if account.password != password => CommandStatus::EsmeRinvpaswd,
                Some(_) if self.faults.chance(self.faults.profile.bind_reject_share) => {
                    CommandStatus::EsmeRbindfail
                }
                Some(_) => CommandStatus::EsmeRok,
            }
        };
        if status != CommandStatus::EsmeRok {
            inner.stats.update(|s| s.binds.rejected += 1);
            tracing::info!(system_id, status = %status_name(status), "bind refused");
            return Action::Reply(bare_response(id, status, seq));
        }
        self.state = BindState::Bound {
            kind,
            system_id: system_id.to_string(),
        };
        {
            let mut registry = lock(&inner.registry);
            registry.sessions.insert(
                self.no,
                Entry {
                    system_id: system_id.to_string(),
                    kind,
                    tx: self.deliveries_tx.clone(),
                },
            );
            registry.changed();
        }
        inner.stats.update(|s| {
            s.binds.total += 1;
            *s.binds.current.entry(kind.name().into()).or_default() += 1;
        });
        tracing::info!(system_id, kind = kind.name(), "esme bound");
        let sid = COctetString::from_static_slice(b"SIMSMSC\0").unwrap_or_default();
        let version = Some(InterfaceVersion::Smpp3_4);
        let pdu = match kind {
            BindKind::Transmitter => {
                Pdu::BindTransmitterResp(BindTransmitterResp::new(sid, version))
            }
            BindKind::Receiver => Pdu::BindReceiverResp(BindReceiverResp::new(sid, version)),
            BindKind::Transceiver => {
                Pdu::BindTransceiverResp(BindTransceiverResp::new(sid, version))
            }
        };
        Action::Reply(Command::new(CommandStatus::EsmeRok, seq, pdu))
    }

    fn unregister(&mut self) {
        if let BindState::Bound { kind, .. } = &self.state {
            let kind = *kind;
            let inner = &self.sim.inner;
            {
                let mut registry = lock(&inner.registry);
                if registry.sessions.remove(&self.no).is_some() {
                    registry.changed();
                }
            }
            inner.stats.update(|s| {
                if let Some(n) = s.binds.current.get_mut(kind.name()) {
                    *n = n.saturating_sub(1);
                }
            });
        }
        // Deliveries waiting for an answer get none: their callers retry.
        self.awaiting.clear();
    }

    async fn unbind<S>(&mut self, framed: &mut Framed<S, SessionCodec>, timeout: Duration)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let seq = self.next_sequence();
        if self
            .write(
                framed,
                Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
            )
            .await
            .is_err()
        {
            return;
        }
        let wait = async {
            while let Some(Ok(Read::Frame(Inbound::Command(command)))) = framed.next().await {
                self.note(Direction::In, &command);
                if command.id() == CommandId::UnbindResp {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.state = BindState::Open;
    }

    fn submit(&mut self, seq: u32, submit: &SubmitSm) -> Action {
        let id = CommandId::SubmitSm;
        let system_id = match &self.state {
            BindState::Bound { kind, system_id } if kind.can_submit() => system_id.clone(),
            _ => return Action::Reply(bare_response(id, CommandStatus::EsmeRinvbndsts, seq)),
        };
        // Draws happen for every submit, so a seed replays the same run.
        let throttled = !self.faults.take_submit_token();
        let error = self.faults.chance(self.faults.profile.submit_error_share);
        let drop = self.faults.chance(self.faults.profile.drop_response_share);
        let latency_ms = self.faults.latency_ms();
        let receipt_draw = self.faults.unit();

        // A USSD screen has its own limits and goes to its dialog, not to
        // the MT store.
        let ussd = crate::ussd::is_ussd(submit);
        let part = if ussd {
            None
        } else {
            match self.validate(submit) {
                Ok(part) => Some(part),
                Err(status) => return Action::Reply(bare_response(id, status, seq)),
            }
        };
        if throttled {
            self.sim.inner.stats.update(|s| s.throttled += 1);
            let status = self.faults.profile.throttle_status.status();
            return Action::Reply(bare_response(id, status, seq));
        }
        if error {
            return Action::Reply(bare_response(id, self.faults.profile.submit_error(), seq));
        }
        let message_id = match part {
            Some(part) => self.store_submit(submit, system_id, part, receipt_draw),
            None => match self.sim.ussd_submit(submit) {
                Ok(()) => self.sim.next_message_id(),
                Err(status) => return Action::Reply(bare_response(id, status, seq)),
            },
        };
        let message_id = COctetString::from_string(message_id).unwrap_or_default();
        let response = Command::new(
            CommandStatus::EsmeRok,
            seq,
            SubmitSmResp::new(message_id, Vec::new()),
        );
        if drop {
            self.sim.inner.stats.update(|s| s.dropped_responses += 1);
            return Action::Nothing;
        }
        if latency_ms > 0 {
            return Action::ReplyLater(response, Duration::from_millis(latency_ms));
        }
        Action::Reply(response)
    }

    /// Stores an accepted MT part (and schedules its receipt); returns its
    /// message id.
    fn store_submit(
        &mut self,
        submit: &SubmitSm,
        system_id: String,
        part: (Encoding, Option<PartInfo>, Vec<u8>),
        receipt_draw: f64,
    ) -> String {
        let (encoding, part_info, units) = part;
        let message_id = self.sim.next_message_id();
        let from = submit.source_addr.as_str().to_string();
        let to = submit.destination_addr.as_str().to_string();
        let stat = self.sim.receipt_outcome(receipt_draw);
        let wanted = u8::from(submit.registered_delivery) & 0x03;
        let send_receipt = match wanted {
            1 => true,
            2 => stat != crate::store::ReceiptStat::Delivered,
            3 => stat == crate::store::ReceiptStat::Delivered,
            _ => false,
        };
        let receipt = if wanted == 0 {
            ReceiptState::NotRequested
        } else {
            ReceiptState::Pending
        };
        let completed = lock(&self.sim.inner.store).insert(SubmittedPart {
            message_id: message_id.clone(),
            system_id: system_id.clone(),
            from: from.clone(),
            to: to.clone(),
            encoding,
            part: part_info,
            units: units.clone(),
            receipt,
        });
        if let Some(message) = completed {
            let _ = self.sim.inner.mt_events.send(message);
        }
        tracing::debug!(message_id = %message_id, "submit_sm accepted");
        if wanted != 0 {
            let now = Utc::now().format("%y%m%d%H%M").to_string();
            let text = crate::text::decode_units(encoding, &units).unwrap_or_default();
            let facts = ReceiptFacts {
                message_id: message_id.clone(),
                mt_from: from,
                mt_to: to,
                stat,
                submit_date: now.clone(),
                done_date: now,
                text,
            };
            self.sim.schedule_receipt(system_id, facts, send_receipt);
        }
        message_id
    }

    /// Checks a submit and extracts its text units; the error is the status
    /// a real SMSC would answer.
    fn validate(
        &self,
        submit: &SubmitSm,
    ) -> Result<(Encoding, Option<PartInfo>, Vec<u8>), CommandStatus> {
        if submit.destination_addr.is_empty() {
            return Err(CommandStatus::EsmeRinvdstadr);
        }
        let serves_only = &self.sim.config().serves_only;
        if !serves_only.is_empty() {
            let to = crate::store::digits(submit.destination_addr.as_str());
            if !serves_only.iter().any(|r| r.specificity(&to).is_some()) {
                return Err(CommandStatus::EsmeRinvdstadr);
            }
        }
        let data_coding = u8::from(submit.data_coding);
        let encoding = Encoding::from_data_coding(data_coding).ok_or(CommandStatus::EsmeRinvdcs)?;
        let mut payload = None;
        let (mut sar_ref, mut sar_total, mut sar_seq) = (None, None, None);
        for tlv in submit.tlvs() {
            match tlv.value() {
                Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref().to_vec()),
                Some(TlvValue::SarMsgRefNum(v)) => sar_ref = Some(*v),
                Some(TlvValue::SarTotalSegments(v)) => sar_total = Some(*v),
                Some(TlvValue::SarSegmentSeqnum(v)) => sar_seq = Some(*v),
                _ => {}
            }
        }
        let short = submit.short_message().as_ref();
        let message: Vec<u8> = match payload {
            Some(_) if !short.is_empty() => return Err(CommandStatus::EsmeRinvmsglen),
            Some(p) => p,
            None => short.to_vec(),
        };
        if message.len() > 254 && submit.sm_length() > 0 {
            return Err(CommandStatus::EsmeRinvmsglen);
        }
        let udhi = u8::from(submit.esm_class) & 0x40 != 0;
        let (mut part, header_len) = if udhi {
            split_udh(&message).map_err(|_| CommandStatus::EsmeRinvmsglen)?
        } else {
            (None, 0)
        };
        if let (Some(reference), Some(total), Some(number)) = (sar_ref, sar_total, sar_seq) {
            if total == 0 || number == 0 || number > total {
                return Err(CommandStatus::EsmeRinvtlvval);
            }
            part = Some(PartInfo {
                reference,
                total,
                number,
            });
        }
        let units = part_units(
            encoding,
            self.sim.inner.config.gsm7_packing,
            &message,
            header_len,
        );
        if submit.sm_length() > 0 {
            let limit = if encoding == Encoding::Gsm7 {
                GSM7_SEPTETS_MAX
            } else {
                OCTETS_MAX
            };
            let used = if encoding == Encoding::Gsm7 {
                units.len() + (header_len * 8).div_ceil(7)
            } else {
                message.len()
            };
            if used > limit {
                return Err(CommandStatus::EsmeRinvmsglen);
            }
        }
        if encoding == Encoding::Ucs2 && units.len() % 2 != 0 {
            return Err(CommandStatus::EsmeRinvmsglen);
        }
        Ok((encoding, part, units))
    }
}
