//! Bytes → frames → `rusmpp` commands, and back, for the SMSC side.
//!
//! `smpp-text`'s [`Framing`] cuts each frame by `command_length` before
//! `rusmpp` decodes it, so a bad PDU never desynchronizes the stream: a body
//! `rusmpp` rejects is dropped whole and answered with `generic_nack`, and
//! an over-long frame is skipped byte for byte without being buffered.

use bytes::BytesMut;
use rusmpp::{Command, CommandStatus};
use smpp_text::{BadLength, Cut, Framing};
use tokio_util::codec::{Decoder, Encoder};

pub use smpp_text::encode_to_vec;

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
    framing: Framing,
}

impl SmppCodec {
    /// A codec refusing frames longer than `pdu_len_max` octets.
    pub fn new(pdu_len_max: usize) -> Self {
        Self {
            framing: Framing::new(pdu_len_max, BadLength::Report),
        }
    }
}

impl Decoder for SmppCodec {
    type Item = Inbound;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, std::io::Error> {
        let cut = self
            .framing
            .cut(src)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let invalid = |header: smpp_text::Header, status, recoverable| Inbound::Invalid {
            command_id: header.command_id,
            sequence_number: header.sequence_number,
            status,
            recoverable,
        };
        Ok(cut.map(|cut| match cut {
            Cut::Frame(header) => match self.framing.decode(src, header) {
                Ok(command) => Inbound::Command(Box::new(command)),
                Err(undecodable) => invalid(header, undecodable.status(), true),
            },
            Cut::OverLong(header) => invalid(header, CommandStatus::EsmeRinvcmdlen, true),
            Cut::Lost(header) => invalid(header, CommandStatus::EsmeRinvcmdlen, false),
        }))
    }
}

impl Encoder<&Command> for SmppCodec {
    type Error = std::io::Error;

    fn encode(&mut self, command: &Command, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        self.framing.encode(command, dst)
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
    fn over_long_frame_is_answered_and_short_length_is_fatal() {
        let mut bytes = vec![0, 0, 0, 100, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5];
        bytes.extend(std::iter::repeat_n(0xAA, 84));
        bytes.extend(encode_to_vec(&Command::new(
            CommandStatus::EsmeRok,
            6,
            Pdu::EnquireLink,
        )));
        bytes.extend([0, 0, 0, 3, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1]);
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
        assert!(matches!(
            items[2],
            Inbound::Invalid {
                recoverable: false,
                ..
            }
        ));
    }
}
