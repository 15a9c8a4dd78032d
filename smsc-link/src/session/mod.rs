//! One bound SMPP session: the task that owns the socket. Generic over
//! `AsyncRead + AsyncWrite` (tests use `tokio::io::duplex`).
//!
//! The loop here reads frames, writes answers and keeps time (enquire_link,
//! timeouts, the close); it drives two halves that never import it nor
//! each other: [`outbound`] (window, pump, settle) and [`inbound`]
//! (`deliver_sm`, reassembly, handlers, receipts). [`wire`] is what both use.

mod inbound;
mod outbound;
pub(crate) mod wire;

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use rusmpp::{
    pdus::{DataSmResp, DeliverSmResp},
    Command, CommandId, CommandStatus, Pdu,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Duration, Instant, MissedTickBehavior},
};
use tokio_util::{codec::Framed, sync::CancellationToken};

use self::{
    inbound::Inbound,
    outbound::Outbound,
    wire::{within, write, Sequence},
};
use crate::{
    codec::{Frame, LinkCodec},
    config::LinkConfig,
    gate::AckKind,
    pdu::{self, BindKind},
    shared::Shared,
    telemetry::Refused,
    Error,
};

/// Period of the housekeeping tick (timeouts, enquire_link, expiries).
const TICK: Duration = Duration::from_millis(50);

/// Frames already read handled in one turn of the loop before writing.
const FRAMES_PER_TURN_MAX: usize = 64;

/// How a frame leaves the session.
enum Flow {
    Continue,
    Stop,
}

/// The state of one bound session.
pub(crate) struct Session {
    shared: Arc<Shared>,
    kind: BindKind,
    sequence: Sequence,
    out: Outbound,
    inb: Inbound,
    enquire: Option<(u32, Instant)>,
    next_enquire_at: Instant,
    /// Since when reading is paused because every delivery slot is taken.
    reading_paused_since: Option<Instant>,
    /// Since when part of a PDU waits in the read buffer with no whole
    /// frame read (seen by the tick).
    partial_since: Option<Instant>,
    queue_closed: bool,
    /// When the link is shutting down: the end of the whole shutdown,
    /// which bounds the wait for `unbind_resp`.
    closing_end: Option<Instant>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("kind", &self.kind)
            .field("window", &self.out.window.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, kind: BindKind) -> Self {
        let now = Instant::now();
        Self {
            next_enquire_at: now + Duration::from_millis(shared.config.enquire_link_interval_ms),
            out: Outbound::new(Arc::clone(&shared)),
            inb: Inbound::new(Arc::clone(&shared)),
            shared,
            kind,
            sequence: Sequence::default(),
            enquire: None,
            reading_paused_since: None,
            partial_since: None,
            queue_closed: false,
            closing_end: None,
        }
    }

    fn config(&self) -> &LinkConfig {
        &self.shared.config
    }

    /// Runs until the connection breaks, the SMSC unbinds, or `cancel`
    /// (then finishes in-flight work and unbinds). Every job still held
    /// when it returns is answered or given back to the shared queue.
    pub(crate) async fn run<IO>(
        mut self,
        mut framed: Framed<IO, LinkCodec>,
        cancel: CancellationToken,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let result = self.serve(&mut framed, &cancel).await;
        let closing = cancel.is_cancelled();
        self.give_back(closing);
        result
    }

    async fn serve<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut close_deadline: Option<Instant> = None;
        let window_max = self.config().window_max;
        let limit = self.config().response_timeout();
        loop {
            let now = Instant::now();
            within(limit, self.out.pump(framed, now, &mut self.sequence)).await?;
            if let Some(deadline) = close_deadline {
                let idle = self.out.window.is_empty()
                    && self.out.unsent.is_empty()
                    && self.inb.outstanding == 0;
                if idle || now >= deadline {
                    return self.unbind(framed).await;
                }
            }
            let paused = self.out.paused_until.is_some_and(|t| now < t);
            let want_job = self.kind.submits()
                && close_deadline.is_none()
                && !self.queue_closed
                && self.out.unsent.is_empty()
                && self.out.window.len() < window_max
                && !paused;
            if want_job {
                if let Some(job) = self.shared.take_requeued() {
                    self.out.admit(job);
                    continue;
                }
                // Take what is already queued, up to the window's room,
                // without a trip through `select!` per job.
                let mut room =
                    window_max.saturating_sub(self.out.unsent.len() + self.out.window.len());
                let shared = Arc::clone(&self.shared);
                let mut took = false;
                // Jobs are taken under one lock of the queue; a job of
                // several segments may use more room than one.
                while room > 0 {
                    let taken = shared.try_next_jobs(room, |job| self.out.admit(job));
                    if taken == 0 {
                        break;
                    }
                    took = true;
                    room = window_max.saturating_sub(self.out.unsent.len() + self.out.window.len());
                }
                if took {
                    continue;
                }
            }
            let wake = match (self.out.paused_until, self.out.rate_wait_until) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
            .filter(|t| *t > now);
            let reading = self.may_read(now);
            let shared = Arc::clone(&self.shared);
            tokio::select! {
                _ = cancel.cancelled(), if close_deadline.is_none() => {
                    let closing = self.shared.closing(now);
                    close_deadline = Some(closing.drain_until);
                    self.closing_end = Some(closing.end);
                    self.out.drop_unstarted();
                }
                frame = framed.next(), if reading => match frame {
                    None => return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "smsc closed the connection",
                    ))),
                    Some(Err(error)) => return Err(error.into()),
                    Some(Ok(frame)) => {
                        // A whole frame: whatever is buffered now is new.
                        self.partial_since = None;
                        // One clock read for the batch: the responses
                        // buffered with this one arrived with it.
                        let read_at = Instant::now();
                        if let Flow::Stop = self.on_frame(framed, frame, read_at).await? {
                            return Ok(());
                        }
                        // Frames already buffered are handled without a
                        // trip through `select!` each (bounded).
                        for _ in 0..FRAMES_PER_TURN_MAX {
                            if self.inb.is_full() {
                                break;
                            }
                            match framed.next().now_or_never() {
                                Some(Some(Ok(frame))) => {
                                    if let Flow::Stop =
                                        self.on_frame(framed, frame, read_at).await?
                                    {
                                        return Ok(());
                                    }
                                }
                                Some(Some(Err(error))) => return Err(error.into()),
                                Some(None) | None => break,
                            }
                        }
                    }
                },
                Some(ack) = self.inb.ack_rx.recv() => {
                    self.inb.outstanding = self.inb.outstanding.saturating_sub(1);
                    let resp = match ack.kind {
                        AckKind::DeliverSm => {
                            Command::new(ack.status, ack.seq, DeliverSmResp::builder().build())
                        }
                        AckKind::DataSm => {
                            Command::new(ack.status, ack.seq, DataSmResp::builder().build())
                        }
                    };
                    write(framed, resp, limit).await?;
                    if let Some(written) = ack.written {
                        let _ = written.send(());
                    }
                }
                job = shared.next_job(), if want_job => match job {
                    Some(job) => self.out.admit(job),
                    None => self.queue_closed = true,
                },
                _ = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {
                    self.out.rate_wait_until = None;
                }
                _ = tick.tick() => self.on_tick(framed, Instant::now()).await?,
            }
        }
    }

    /// False while `acks_max` deliveries wait for their handlers: the
    /// session then reads nothing (TCP pushes back on the SMSC) instead of
    /// answering a temporary error. It cannot deadlock: the handlers run in
    /// their own tasks and their answers come back on `ack_rx`, which the
    /// loop keeps serving. What it costs: responses to our submits and
    /// the SMSC's `enquire_link` wait unread meanwhile, so the clocks that
    /// blame the SMSC (response timeout, enquire_link timeout) stop while
    /// reading is paused and resume shifted by the pause. A handler must
    /// therefore not wait for a submit's outcome on the same link.
    fn may_read(&mut self, now: Instant) -> bool {
        let full = self.inb.is_full();
        match (full, self.reading_paused_since) {
            (true, None) => {
                tracing::debug!(
                    deliveries = self.inb.outstanding,
                    "deliveries at their limit: reading paused"
                );
                self.reading_paused_since = Some(now);
            }
            (false, Some(since)) => {
                let paused = now.saturating_duration_since(since);
                for sent in self.out.window.values_mut() {
                    sent.at += paused;
                }
                if let Some((_, sent_at)) = &mut self.enquire {
                    *sent_at += paused;
                }
                self.reading_paused_since = None;
            }
            _ => {}
        }
        !full
    }

    /// Hands the receipts the outbound half released to the inbound half.
    fn dispatch_released(&mut self) {
        for (receipt, token) in self.out.take_released() {
            self.inb.dispatch_receipt(receipt, token);
        }
    }

    /// Handles one frame read at `read_at`.
    async fn on_frame<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        frame: Frame,
        read_at: Instant,
    ) -> Result<Flow, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let flow = self.handle_frame(framed, frame, read_at).await;
        self.dispatch_released();
        flow
    }

    async fn handle_frame<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        frame: Frame,
        read_at: Instant,
    ) -> Result<Flow, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let limit = self.config().response_timeout();
        let command = match frame {
            Frame::SubmitSmResp {
                sequence_number,
                status,
                message_id,
            } => {
                self.out
                    .on_submit_resp(sequence_number, status, message_id.as_str(), read_at);
                return Ok(Flow::Continue);
            }
            Frame::Command(command) => command,
            Frame::Undecodable {
                command_id,
                command_status,
                sequence_number,
            } => {
                let status = CommandStatus::from(command_status);
                if command_id & 0x8000_0000 != 0 && status != CommandStatus::EsmeRok {
                    // An error response without (or with a broken) body:
                    // the header's status is all that matters.
                    self.out
                        .on_submit_resp(sequence_number, status, "", read_at);
                } else if command_id & 0x8000_0000 != 0 {
                    tracing::warn!(command_id, "undecodable response: submit in doubt");
                    Refused::Undecodable.count();
                    self.out.forget(sequence_number, None);
                } else {
                    tracing::warn!(command_id, "undecodable request");
                    Refused::Undecodable.count();
                    let nack = Command::new(
                        CommandStatus::EsmeRinvcmdlen,
                        sequence_number,
                        Pdu::GenericNack,
                    );
                    write(framed, nack, limit).await?;
                }
                return Ok(Flow::Continue);
            }
            Frame::BadLength {
                command_length,
                command_id,
                sequence_number,
            } => {
                // The next PDU cannot be found: answer this one as a
                // strict peer does, unbind, and close without waiting for
                // an unbind_resp that could not be read.
                tracing::warn!(command_length, command_id, "command_length out of range");
                Refused::BadLength.count();
                let nack = Command::new(
                    CommandStatus::EsmeRinvcmdlen,
                    sequence_number,
                    Pdu::GenericNack,
                );
                write(framed, nack, limit).await?;
                let seq = self.sequence.next();
                write(
                    framed,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
                    limit,
                )
                .await?;
                return Err(Error::Protocol(format!(
                    "command_length {command_length} out of range"
                )));
            }
        };
        let seq = command.sequence_number();
        let status = command.status();
        match command.pdu() {
            Some(Pdu::SubmitSmResp(resp)) => {
                self.out
                    .on_submit_resp(seq, status, resp.message_id().as_str(), read_at);
            }
            _ if command.id() == CommandId::SubmitSmResp => {
                // An error response without a body.
                self.out.on_submit_resp(seq, status, "", read_at);
            }
            Some(Pdu::GenericNack) if self.out.window.contains_key(&seq) => {
                self.out.on_submit_resp(seq, status, "", read_at);
            }
            Some(Pdu::DeliverSm(deliver)) => {
                let delivery = pdu::delivery(deliver, self.config().receipt_id_radix);
                self.inb.on_delivery(seq, delivery, AckKind::DeliverSm);
            }
            // Some USSD gateways deliver by `data_sm`: read the same way,
            // answered `data_sm_resp`.
            Some(Pdu::DataSm(data)) => {
                let delivery = pdu::data_delivery(data, self.config().receipt_id_radix);
                self.inb.on_delivery(seq, delivery, AckKind::DataSm);
            }
            Some(Pdu::EnquireLink) => {
                let resp = Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp);
                write(framed, resp, limit).await?;
            }
            Some(Pdu::EnquireLinkResp) if self.enquire.is_some_and(|(s, _)| s == seq) => {
                self.enquire = None;
            }
            Some(Pdu::Unbind) => {
                tracing::info!("smsc unbinds");
                let resp = Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp);
                write(framed, resp, limit).await?;
                return Ok(Flow::Stop);
            }
            // The one request SMPP answers with nothing.
            Some(Pdu::AlertNotification(_)) => {}
            _ if u32::from(command.id()) & 0x8000_0000 == 0 => {
                tracing::warn!(command_id = u32::from(command.id()), "request not served");
                Refused::UnknownCommand.count();
                let nack = Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack);
                write(framed, nack, limit).await?;
            }
            // A response to nothing outstanding (a generic_nack, an
            // enquire_link_resp, an unbind_resp…) is dropped: answering a
            // response could start a loop of nacks between two peers.
            _ => {
                tracing::debug!(
                    seq,
                    command_id = u32::from(command.id()),
                    "unexpected response"
                );
                Refused::UnexpectedResponse.count();
            }
        }
        Ok(Flow::Continue)
    }

    async fn on_tick<IO>(
        &mut self,
        framed: &mut Framed<IO, LinkCodec>,
        now: Instant,
    ) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let config = self.shared.config.clone();
        let limit = config.response_timeout();
        // While reading is paused, what the SMSC sent waits unread: its
        // clocks stop (see `may_read`).
        let reading = self.reading_paused_since.is_none();
        if reading {
            self.out.expire(now);
        }
        // A PDU begun must arrive whole within the response timeout: an
        // SMSC sending a byte a second would otherwise hold the session on
        // a half PDU for as long as it likes (enquire_link cannot tell, its
        // answer queues behind the half PDU).
        if reading && !framed.read_buffer().is_empty() {
            let since = *self.partial_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= limit {
                tracing::warn!(
                    octets = framed.read_buffer().len(),
                    "a pdu begun and not whole within the response timeout"
                );
                Refused::StalledRead.count();
                let seq = self.sequence.next();
                write(
                    framed,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
                    limit,
                )
                .await?;
                return Err(Error::Stalled("a pdu begun and not finished"));
            }
        } else {
            self.partial_since = None;
        }
        match self.enquire {
            _ if !reading => {}
            Some((_, sent_at))
                if now.duration_since(sent_at)
                    >= Duration::from_millis(config.enquire_link_timeout_ms) =>
            {
                return Err(Error::Timeout);
            }
            None if now >= self.next_enquire_at => {
                let seq = self.sequence.next();
                self.enquire = Some((seq, now));
                self.next_enquire_at = now + Duration::from_millis(config.enquire_link_interval_ms);
                write(
                    framed,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink),
                    limit,
                )
                .await?;
            }
            _ => {}
        }
        self.inb.expire(now);
        self.dispatch_released();
        Ok(())
    }

    /// Sends `unbind` and waits (up to the response timeout, and never past
    /// the end of a shutdown) for its response.
    async fn unbind<IO>(&mut self, framed: &mut Framed<IO, LinkCodec>) -> Result<(), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let seq = self.sequence.next();
        let limit = self.config().response_timeout();
        write(
            framed,
            Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
            limit,
        )
        .await?;
        let mut until = Instant::now() + limit;
        if let Some(end) = self.closing_end {
            until = until.min(end);
        }
        let deadline = tokio::time::sleep_until(until);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Ok(()),
                frame = framed.next() => match frame {
                    // A bad length: nothing more can be read.
                    None | Some(Err(_)) | Some(Ok(Frame::BadLength { .. })) => return Ok(()),
                    Some(Ok(Frame::Command(c))) if c.id() == CommandId::UnbindResp => return Ok(()),
                    Some(Ok(Frame::SubmitSmResp { sequence_number, status, message_id })) => {
                        let read_at = Instant::now();
                        self.out.on_submit_resp(sequence_number, status, message_id.as_str(), read_at);
                    }
                    Some(Ok(Frame::Command(c))) => {
                        if let Some(Pdu::SubmitSmResp(resp)) = c.pdu() {
                            let id = resp.message_id().as_str().to_string();
                            self.out.on_submit_resp(c.sequence_number(), c.status(), &id, Instant::now());
                        }
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// The session is over: jobs with a segment in doubt are Unknown,
    /// the others go back to the shared queue (or fail as never sent
    /// when the link is closing).
    fn give_back(&mut self, closing: bool) {
        self.out.give_back(closing);
        self.dispatch_released();
    }
}

impl Drop for Session {
    /// A session dropped before `run` finished (a shutdown whose time ran
    /// out) still answers every job it held.
    fn drop(&mut self) {
        self.out.give_back(true);
        // Receipts it released go to their handler only while a runtime
        // runs; otherwise their tokens answer a temporary error.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.dispatch_released();
        }
    }
}

#[cfg(test)]
mod tests {
    //! The session over `tokio::io::duplex`: the test plays the SMSC.
    use super::*;
    use crate::{job::Job, pdu, shared::MoFn, text, Mo, SubmitOutcome};
    use futures::SinkExt;
    use rusmpp::{pdus::SubmitSmResp, types::COctetString};
    use tokio::sync::{mpsc, oneshot};

    fn shared(config: LinkConfig) -> (Arc<Shared>, mpsc::Sender<Job>, mpsc::UnboundedReceiver<Mo>) {
        let (jobs, queue) = mpsc::channel(16);
        let (mo_tx, mo_rx) = mpsc::unbounded_channel();
        let on_mo: MoFn = Box::new(move |mo| {
            let _ = mo_tx.send(mo);
            Box::pin(async { Ok(crate::MoAnswer::default()) })
        });
        let on_receipt: crate::shared::ReceiptFn = Box::new(|_| Box::pin(async { Ok(()) }));
        let shared = Arc::new(Shared::new(
            config,
            queue,
            jobs.downgrade(),
            on_mo,
            on_receipt,
        ));
        (shared, jobs, mo_rx)
    }

    async fn smsc_read(smsc: &mut Framed<tokio::io::DuplexStream, LinkCodec>) -> Command {
        let next = tokio::time::timeout(Duration::from_secs(5), smsc.next()).await;
        match next.expect("a pdu within 5 s") {
            Some(Ok(Frame::Command(c))) => *c,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_session_over_duplex_submits_receives_and_unbinds() {
        let config = LinkConfig {
            segments_per_second: 0,
            ..LinkConfig::default()
        };
        let (shared, jobs, mut mos) = shared(config.clone());
        let (esme, smsc) = tokio::io::duplex(4096);
        let mut smsc = Framed::new(smsc, LinkCodec::default());
        let cancel = CancellationToken::new();
        let session = tokio::spawn(
            Session::new(Arc::clone(&shared), BindKind::Transceiver)
                .run(Framed::new(esme, LinkCodec::default()), cancel.clone()),
        );

        // A submit goes out and its response becomes the outcome.
        let segment = &text::split("Привет", 1).expect("fits")[0];
        let mut wire = Vec::new();
        pdu::SubmitHeader::new(&config, "7377", "+79161234567", false)
            .expect("valid")
            .encode(segment, 0, &mut wire)
            .expect("fits");

        let (reply, outcome) = oneshot::channel();
        jobs.send(Job::new(0, wire, 1, reply, "default".into()))
            .await
            .expect("queued");
        let submit = smsc_read(&mut smsc).await;
        assert!(matches!(submit.pdu(), Some(Pdu::SubmitSm(_))));
        let resp = SubmitSmResp::builder()
            .message_id(COctetString::from_string("00ff".into()).expect("id"))
            .build();
        smsc.send(Command::new(
            CommandStatus::EsmeRok,
            submit.sequence_number(),
            resp,
        ))
        .await
        .expect("write");
        let outcome = tokio::time::timeout(Duration::from_secs(5), outcome).await;
        assert_eq!(
            outcome.expect("in time").expect("answered").expect("sent"),
            SubmitOutcome::Accepted {
                // As written, without its leading zeros (`IdRadix::Auto`).
                message_ids: vec!["ff".into()]
            }
        );

        // An MO is handled, then acknowledged.
        let mo = rusmpp::pdus::DeliverSm::builder()
            .source_addr(COctetString::from_string("79161234567".into()).expect("addr"))
            .destination_addr(COctetString::from_string("7377".into()).expect("addr"))
            .short_message(rusmpp::types::OctetString::from_vec(b"STOP".to_vec()).expect("fits"))
            .build();
        smsc.send(Command::new(CommandStatus::EsmeRok, 77, mo))
            .await
            .expect("write");
        let mo = tokio::time::timeout(Duration::from_secs(5), mos.recv()).await;
        assert_eq!(mo.expect("mo in time").expect("mo").text, "STOP");
        let ack = smsc_read(&mut smsc).await;
        assert_eq!(
            (ack.id(), ack.sequence_number(), ack.status()),
            (CommandId::DeliverSmResp, 77, CommandStatus::EsmeRok)
        );

        // enquire_link from the SMSC is answered.
        smsc.send(Command::new(CommandStatus::EsmeRok, 78, Pdu::EnquireLink))
            .await
            .expect("write");
        let resp = smsc_read(&mut smsc).await;
        assert_eq!(
            (resp.id(), resp.sequence_number()),
            (CommandId::EnquireLinkResp, 78)
        );

        // Shutdown: unbind, answered, and the session returns.
        cancel.cancel();
        let unbind = smsc_read(&mut smsc).await;
        assert_eq!(unbind.id(), CommandId::Unbind);
        smsc.send(Command::new(
            CommandStatus::EsmeRok,
            unbind.sequence_number(),
            Pdu::UnbindResp,
        ))
        .await
        .expect("write");
        tokio::time::timeout(Duration::from_secs(5), session)
            .await
            .expect("ended in time")
            .expect("joined")
            .expect("clean end");
    }
}
