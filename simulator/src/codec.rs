//! Bytes → frames → `rusmpp` commands, and back.
//!
//! Framing is done here so that a bad PDU never desynchronizes the stream:
//! the frame's `command_length` bytes are cut off first and only then handed
//! to `rusmpp`'s [`CommandCodec`] for decoding, so a body `rusmpp` rejects is
//! dropped whole and answered with `generic_nack`. Over-long frames are
//! skipped byte for byte without being buffered.

use bytes::{Buf, BytesMut};
use rusmpp::{tokio_codec::CommandCodec, Command, CommandId, CommandStatus};
use tokio_util::codec::{Decoder, Encoder};

/// Size of the SMPP header: length, id, status, sequence number.
pub const HEADER_LEN: usize = 16;

/// One thing read from the wire.
#[derive(Debug)]
pub enum Inbound {
    /// A PDU `rusmpp` decoded.
    Command(Box<Command>),
    /// A frame that could not be used; the session answers `generic_nack`
    /// with `status` and `sequence_number`.
    Invalid {
        /// `command_id` from the header.
        command_id: u32,
        /// `sequence_number` from the header (0 when unreadable).
        sequence_number: u32,
        /// The status the `generic_nack` carries.
        status: CommandStatus,
        /// False when the stream cannot be resynchronized and must close.
        recoverable: bool,
    },
}

/// Framing codec: decodes [`Inbound`], encodes [`Command`] with `rusmpp`.
#[derive(Debug)]
pub struct SmppCodec {
    pdu_len_max: usize,
    /// Bytes of an over-long frame still to discard.
    skip_len: usize,
    inner: CommandCodec,
}

impl SmppCodec {
    /// A codec refusing frames longer than `pdu_len_max` octets.
    pub fn new(pdu_len_max: usize) -> Self {
        Self {
            pdu_len_max: pdu_len_max.max(HEADER_LEN),
            skip_len: 0,
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

/// The `generic_nack` status for a body `rusmpp` refused: an unknown key
/// is an invalid command id, anything else a body that does not match its
/// `command_length`.
fn decode_error_status(error: &rusmpp::tokio_codec::DecodeError) -> CommandStatus {
    use rusmpp::decode::DecodeErrorKind;
    match error {
        rusmpp::tokio_codec::DecodeError::Decode(e)
            if matches!(e.kind(), DecodeErrorKind::UnsupportedKey { .. }) =>
        {
            CommandStatus::EsmeRinvcmdid
        }
        _ => CommandStatus::EsmeRinvcmdlen,
    }
}

impl Decoder for SmppCodec {
    type Item = Inbound;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, std::io::Error> {
        if self.skip_len > 0 {
            let n = self.skip_len.min(src.len());
            src.advance(n);
            self.skip_len -= n;
            if self.skip_len > 0 {
                return Ok(None);
            }
        }
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let command_length = be_u32(src, 0) as usize;
        let command_id = be_u32(src, 4);
        let sequence_number = be_u32(src, 12);
        if command_length < HEADER_LEN {
            // The length is the only way to find the next PDU; it is gone.
            src.clear();
            return Ok(Some(Inbound::Invalid {
                command_id,
                sequence_number,
                status: CommandStatus::EsmeRinvcmdlen,
                recoverable: false,
            }));
        }
        if command_length > self.pdu_len_max {
            let n = command_length.min(src.len());
            src.advance(n);
            self.skip_len = command_length - n;
            return Ok(Some(Inbound::Invalid {
                command_id,
                sequence_number,
                status: CommandStatus::EsmeRinvcmdlen,
                recoverable: true,
            }));
        }
        if src.len() < command_length {
            src.reserve(command_length - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(command_length);
        match self.inner.decode(&mut frame) {
            Ok(Some(command)) => Ok(Some(Inbound::Command(Box::new(command)))),
            Ok(None) => Ok(Some(Inbound::Invalid {
                command_id,
                sequence_number,
                status: CommandStatus::EsmeRinvcmdlen,
                recoverable: true,
            })),
            Err(error) => {
                // A fresh inner codec: the failed one may be mid-frame.
                self.inner = CommandCodec::new().without_max_length();
                let status = match CommandId::from(command_id) {
                    CommandId::Other(_) => CommandStatus::EsmeRinvcmdid,
                    _ => decode_error_status(&error),
                };
                Ok(Some(Inbound::Invalid {
                    command_id,
                    sequence_number,
                    status,
                    recoverable: true,
                }))
            }
        }
    }
}

impl Encoder<&Command> for SmppCodec {
    type Error = std::io::Error;

    fn encode(&mut self, command: &Command, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        self.inner.encode(command, dst).map_err(|e| match e {
            rusmpp::tokio_codec::EncodeError::Io(io) => io,
            other => std::io::Error::other(other.to_string()),
        })
    }
}

/// Encodes one command to its wire bytes (for tests and the journal).
pub fn encode_to_vec(command: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let mut codec = CommandCodec::new();
    // Encoding into a BytesMut cannot fail: the error type only wraps I/O.
    match Encoder::<&Command>::encode(&mut codec, command, &mut buf) {
        Ok(()) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::Pdu;

    fn decode_all(bytes: &[u8]) -> Vec<Inbound> {
        let mut codec = SmppCodec::new(64);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Ok(Some(item)) = codec.decode(&mut buf) {
            out.push(item);
        }
        out
    }

    #[test]
    fn enquire_link_decodes() {
        let bytes = encode_to_vec(&Command::new(CommandStatus::EsmeRok, 9, Pdu::EnquireLink));
        let items = decode_all(&bytes);
        assert!(matches!(&items[..], [Inbound::Command(c)] if c.sequence_number() == 9));
    }

    #[test]
    fn over_long_frame_is_skipped_and_stream_resyncs() {
        let mut bytes = vec![0, 0, 0, 100, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5];
        bytes.extend(std::iter::repeat_n(0xAA, 84));
        bytes.extend(encode_to_vec(&Command::new(
            CommandStatus::EsmeRok,
            6,
            Pdu::EnquireLink,
        )));
        let items = decode_all(&bytes);
        assert!(matches!(
            items[0],
            Inbound::Invalid {
                sequence_number: 5,
                status: CommandStatus::EsmeRinvcmdlen,
                recoverable: true,
                ..
            }
        ));
        assert!(matches!(&items[1], Inbound::Command(c) if c.sequence_number() == 6));
    }

    #[test]
    fn short_length_is_fatal() {
        let items = decode_all(&[0, 0, 0, 3, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            items[0],
            Inbound::Invalid {
                recoverable: false,
                ..
            }
        ));
    }
}
