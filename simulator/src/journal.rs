//! The optional JSON-lines PDU journal: one line per PDU in or out, written
//! by a dedicated thread so sessions never wait on the disk.
//!
//! The journal holds whole PDUs (numbers and texts included): it is a
//! debugging aid an operator switches on, not a log.

use std::{
    io::Write,
    path::Path,
    sync::mpsc::{sync_channel, SyncSender, TrySendError},
};

use rusmpp::Command;
use serde::Serialize;

use crate::pdu::{command_name, status_name};

/// Direction of a journaled PDU.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Read from the ESME.
    In,
    /// Written to the ESME.
    Out,
}

#[derive(Debug, Serialize)]
struct Line<'a> {
    ts: String,
    session: u64,
    dir: Direction,
    command: String,
    status: String,
    seq: u32,
    pdu: &'a str,
}

enum Message {
    Line(String),
    /// Flush, then answer.
    Flush(SyncSender<()>),
}

/// Sender side of the journal.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    tx: SyncSender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(_) => f.write_str("Line"),
            Self::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Journal {
    /// Opens (appends to) `path` and starts the writer thread; the thread
    /// ends when every `Journal` clone is dropped.
    pub(crate) fn open(path: &Path, queue_max: usize) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (tx, rx) = sync_channel::<Message>(queue_max.max(1));
        std::thread::Builder::new()
            .name("sim-journal".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                let mut waiting = Vec::new();
                while let Ok(first) = rx.recv() {
                    let mut ok = true;
                    for message in std::iter::once(first).chain(rx.try_iter()) {
                        match message {
                            Message::Line(line) => ok &= writeln!(out, "{line}").is_ok(),
                            Message::Flush(done) => waiting.push(done),
                        }
                    }
                    if !ok || out.flush().is_err() {
                        tracing::warn!("journal write failed");
                    }
                    for done in waiting.drain(..) {
                        let _ = done.send(());
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Queues one PDU; false when the queue is full and the line was dropped.
    pub(crate) fn record(&self, session: u64, dir: Direction, command: &Command) -> bool {
        let pdu = format!("{:?}", command.pdu());
        let line = Line {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            session,
            dir,
            command: command_name(command.id()),
            status: status_name(command.status()),
            seq: command.sequence_number(),
            pdu: &pdu,
        };
        let Ok(line) = serde_json::to_string(&line) else {
            return false;
        };
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Blocks until every line queued so far is written and flushed.
    pub(crate) fn flush(&self) {
        let (done, wait) = sync_channel(1);
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}
