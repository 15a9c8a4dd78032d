//! Bytes ⇄ `rusmpp` commands. Frames are cut by `command_length` first and
//! only then decoded by `rusmpp`'s `CommandCodec`, so a body `rusmpp`
//! refuses is skipped whole (and answered) instead of desynchronizing the
//! stream.

use bytes::{Buf, BytesMut};
use rusmpp::{tokio_codec::CommandCodec, Command};
use tokio_util::codec::{Decoder, Encoder};

/// Size of the SMPP header: length, id, status, sequence number.
pub const HEADER_LEN: usize = 16;

/// Largest `command_length` accepted from the SMSC; a longer one means the
/// stream is broken and the connection is closed.
pub const PDU_LEN_MAX: usize = 65_536;

/// One frame read from the SMSC.
#[derive(Debug)]
pub enum Frame {
    /// A PDU `rusmpp` decoded.
    Command(Box<Command>),
    /// A well-framed PDU `rusmpp` could not decode; answered with
    /// `generic_nack` (or a temporary error for a `deliver_sm`).
    Undecodable {
        /// `command_id` from the header.
        command_id: u32,
        /// `command_status` from the header.
        command_status: u32,
        /// `sequence_number` from the header.
        sequence_number: u32,
    },
}

/// The framing codec of the link.
#[derive(Debug)]
pub struct LinkCodec {
    inner: CommandCodec,
}

impl Default for LinkCodec {
    fn default() -> Self {
        Self {
            inner: CommandCodec::new().without_max_length(),
        }
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

impl Decoder for LinkCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let command_length = be_u32(src, 0) as usize;
        if !(HEADER_LEN..=PDU_LEN_MAX).contains(&command_length) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("command_length {command_length} out of range"),
            ));
        }
        if src.len() < command_length {
            src.reserve(command_length - src.len());
            return Ok(None);
        }
        let command_id = be_u32(src, 4);
        let command_status = be_u32(src, 8);
        let sequence_number = be_u32(src, 12);
        let mut frame = src.split_to(command_length);
        match self.inner.decode(&mut frame) {
            Ok(Some(command)) => Ok(Some(Frame::Command(Box::new(command)))),
            Ok(None) | Err(_) => {
                // A fresh inner codec: the failed one may hold a half state.
                self.inner = CommandCodec::new().without_max_length();
                frame.advance(frame.len());
                Ok(Some(Frame::Undecodable {
                    command_id,
                    command_status,
                    sequence_number,
                }))
            }
        }
    }
}

impl Encoder<Command> for LinkCodec {
    type Error = std::io::Error;

    fn encode(&mut self, command: Command, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        self.encode(&command, dst)
    }
}

impl<'a> Encoder<&'a Command> for LinkCodec {
    type Error = std::io::Error;

    fn encode(&mut self, command: &'a Command, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        self.inner.encode(command, dst).map_err(|e| match e {
            rusmpp::tokio_codec::EncodeError::Io(io) => io,
            #[allow(unreachable_patterns)]
            other => std::io::Error::other(other.to_string()),
        })
    }
}

/// A PDU already encoded by `rusmpp` (a queued `submit_sm` whose sequence
/// number the session patched in): written as is.
#[derive(Debug, Clone, Copy)]
pub struct Encoded<'a>(pub &'a [u8]);

impl<'a> Encoder<Encoded<'a>> for LinkCodec {
    type Error = std::io::Error;

    fn encode(&mut self, pdu: Encoded<'a>, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        dst.extend_from_slice(pdu.0);
        Ok(())
    }
}

/// The bytes of `command` on the wire (golden tests, benchmarks).
pub fn encode_to_vec(command: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    match LinkCodec::default().encode(command, &mut buf) {
        Ok(()) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}
