//! The supervisor of each connection: connect, bind, run the session,
//! reconnect with exponential backoff and jitter, fail over between hosts;
//! and the state of every bind it reports ([`LinkState`]).

use std::sync::Arc;

use futures::StreamExt;
use rand::Rng;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::watch,
    time::Duration,
};
use tokio_util::{codec::Framed, sync::CancellationToken};

use crate::{
    codec::{Frame, LinkCodec},
    config::{BindMode, LinkConfig},
    pdu::{self, BindKind},
    session::{wire::write, Session},
    shared::Shared,
    telemetry::{self, Refused},
    Error,
};

/// Where one bind stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindState {
    /// Opening the connection or waiting for `bind_resp`.
    Connecting,
    /// Bound: submits flow.
    Bound,
    /// Lost or refused; waiting to try again.
    Reconnecting,
    /// Stopped (after `Link::shutdown`).
    Down,
}

/// The state of every bind of a link (observe with [`crate::Link::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// One entry per connection (two per bind in transmitter+receiver mode).
    pub binds: Vec<BindState>,
    /// Per connection, why it last failed (e.g. `bind refused with status
    /// EsmeRinvpaswd`); cleared when it binds.
    pub last_errors: Vec<Option<String>>,
}

impl LinkState {
    /// Connections currently bound.
    pub fn bound(&self) -> usize {
        self.binds
            .iter()
            .filter(|b| **b == BindState::Bound)
            .count()
    }

    /// True when every connection is bound.
    pub fn all_bound(&self) -> bool {
        self.bound() == self.binds.len()
    }

    /// True when every connection is down (the link was shut down).
    pub fn is_down(&self) -> bool {
        self.binds.iter().all(|b| *b == BindState::Down)
    }
}

/// Sends the bind of `kind` and waits for its response.
async fn bind<IO>(
    framed: &mut Framed<IO, LinkCodec>,
    config: &LinkConfig,
    kind: BindKind,
) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let pdu = pdu::bind(config, kind)?;
    let limit = config.response_timeout();
    write(framed, Command::new(CommandStatus::EsmeRok, 1, pdu), limit).await?;
    // One deadline for the whole answer: an SMSC trickling its bind_resp
    // (or anything else) does not stretch it.
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            _ = &mut deadline => return Err(Error::Timeout),
            frame = framed.next() => frame,
        };
        let command = match frame {
            None => {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed before bind_resp",
                )))
            }
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(Frame::Undecodable {
                command_id,
                command_status,
                ..
            })) if command_id & 0x8000_0000 != 0 && command_status != 0 => {
                return Err(Error::BindRefused(CommandStatus::from(command_status)));
            }
            Some(Ok(Frame::Undecodable { command_id, .. })) => {
                return Err(Error::Protocol(format!(
                    "undecodable pdu 0x{command_id:08x} before bind_resp"
                )))
            }
            Some(Ok(Frame::BadLength {
                command_length,
                sequence_number,
                ..
            })) => {
                Refused::BadLength.count();
                // Not bound yet, so no unbind: the answer, then the close.
                let nack = Command::new(
                    CommandStatus::EsmeRinvcmdlen,
                    sequence_number,
                    Pdu::GenericNack,
                );
                write(framed, nack, limit).await?;
                return Err(Error::Protocol(format!(
                    "command_length {command_length} before bind_resp"
                )));
            }
            Some(Ok(Frame::SubmitSmResp { .. })) => continue,
            Some(Ok(Frame::Command(command))) => command,
        };
        match command.id() {
            CommandId::BindTransceiverResp
            | CommandId::BindTransmitterResp
            | CommandId::BindReceiverResp
            | CommandId::GenericNack => {
                return match command.status() {
                    CommandStatus::EsmeRok => Ok(()),
                    status => Err(Error::BindRefused(status)),
                };
            }
            CommandId::EnquireLink => {
                let resp = Command::new(
                    CommandStatus::EsmeRok,
                    command.sequence_number(),
                    Pdu::EnquireLinkResp,
                );
                write(framed, resp, limit).await?;
            }
            _ => {}
        }
    }
}

pub(crate) fn set_error(state: &watch::Sender<LinkState>, slot: usize, error: Option<String>) {
    state.send_modify(|s| {
        if let Some(e) = s.last_errors.get_mut(slot) {
            *e = error;
        }
    });
}

fn set_state(state: &watch::Sender<LinkState>, slot: usize, value: BindState) {
    state.send_modify(|s| {
        if let Some(b) = s.binds.get_mut(slot) {
            *b = value;
        }
    });
}

/// `base` ± `jitter` share of it, at random.
fn jittered(base: Duration, jitter: f64) -> Duration {
    let spread = base.as_secs_f64() * jitter;
    let offset = if spread > 0.0 {
        rand::thread_rng().gen_range(-spread..=spread)
    } else {
        0.0
    };
    Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0))
}

/// Opens a connection to `host:port` and binds it.
pub(crate) async fn connect(
    config: &LinkConfig,
    host: &str,
    port: u16,
    kind: BindKind,
) -> Result<Framed<TcpStream, LinkCodec>, Error> {
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    let socket = tokio::time::timeout(connect_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| Error::Timeout)??;
    let _ = socket.set_nodelay(true);
    let mut framed = Framed::new(socket, LinkCodec::default());
    bind(&mut framed, config, kind).await?;
    Ok(framed)
}

/// Keeps connection `slot` bound until `cancel`.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    slot: usize,
    kind: BindKind,
    state: Arc<watch::Sender<LinkState>>,
    cancel: CancellationToken,
    abort: CancellationToken,
) {
    let config = shared.config.clone();
    let hosts = config.hosts();
    let backoff_min = Duration::from_millis(config.reconnect_backoff_min_ms);
    let backoff_max = Duration::from_millis(config.reconnect_backoff_max_ms);
    let mut backoff = backoff_min;
    // A transmitter+receiver pair shares one bind number.
    let bind_no = match config.bind_mode {
        BindMode::Transceiver => slot,
        BindMode::TransmitterReceiver => slot / 2,
    };
    let mut host_no = if config.spread_binds { bind_no } else { 0 };
    while !cancel.is_cancelled() {
        set_state(&state, slot, BindState::Connecting);
        let host = &hosts[host_no % hosts.len()];
        let connected = tokio::select! {
            _ = cancel.cancelled() => break,
            connected = connect(&config, &host.host, host.port, kind) => connected,
        };
        match connected {
            Ok(framed) => {
                tracing::info!(slot, host = %host.host, port = host.port, ?kind, "bound");
                set_error(&state, slot, None);
                set_state(&state, slot, BindState::Bound);
                metrics::gauge!(telemetry::BINDS, "operator" => config.operator.clone())
                    .increment(1.0);
                backoff = backoff_min;
                let session = Session::new(Arc::clone(&shared), kind).run(framed, cancel.clone());
                // The session bounds its own closing; `abort` is the
                // backstop for one stuck writing to an SMSC that reads nothing.
                let result = tokio::select! {
                    result = session => result,
                    _ = abort.cancelled() => Err(Error::Timeout),
                };
                metrics::gauge!(telemetry::BINDS, "operator" => config.operator.clone())
                    .decrement(1.0);
                match result {
                    Ok(()) => tracing::info!(slot, "session ended"),
                    Err(error) => {
                        tracing::warn!(slot, %error, "session lost");
                        set_error(&state, slot, Some(error.to_string()));
                    }
                }
            }
            Err(error) => {
                tracing::warn!(slot, host = %host.host, port = host.port, %error, "bind failed");
                set_error(&state, slot, Some(error.to_string()));
                host_no += 1;
            }
        }
        if cancel.is_cancelled() {
            break;
        }
        set_state(&state, slot, BindState::Reconnecting);
        metrics::counter!(telemetry::RECONNECTS, "operator" => config.operator.clone())
            .increment(1);
        let wait = jittered(backoff, config.reconnect_jitter);
        backoff = (backoff * 2).min(backoff_max);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    set_state(&state, slot, BindState::Down);
}
