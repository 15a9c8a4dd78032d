//! Bytes ⇄ `rusmpp` commands for the ESME side. `smpp-text`'s [`Framing`]
//! cuts each frame by `command_length` first and only then `rusmpp`'s codec
//! decodes it, so a body `rusmpp` refuses is skipped whole (and answered)
//! instead of desynchronizing the stream. A length out of range is
//! reported once ([`Frame::BadLength`], so the session can answer it) and
//! every later byte is dropped: the stream cannot be resynchronized, and
//! nothing is buffered for it. `submit_sm_resp`, one per segment sent, is
//! decoded by `rusmpp`'s borrowed PDU in place instead
//! ([`Frame::SubmitSmResp`]).

use bytes::{Buf, BytesMut};
use rusmpp::{Command, CommandId, CommandStatus};
use rusmpp_core::{
    command::borrowed::Command as BorrowedCommand, decode::borrowed::DecodeWithLength,
    pdus::borrowed::Pdu as BorrowedPdu,
};
use smpp_text::{BadLength, Cut, Framing};
use tokio_util::codec::{Decoder, Encoder};

pub use smpp_text::HEADER_LEN;

/// Largest `command_length` accepted from the SMSC; a longer one means the
/// stream is broken and the connection is closed. It also bounds what the
/// codec buffers: at most one frame short of this.
pub const PDU_LEN_MAX: usize = 65_536;

/// Longest `message_id` of a `submit_sm_resp` (`COctetString<1, 65>`
/// without its NUL).
pub const MESSAGE_ID_LEN_MAX: usize = 64;

/// The `message_id` of a `submit_sm_resp`, held in place: reading one
/// allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageId {
    bytes: [u8; MESSAGE_ID_LEN_MAX],
    len: u8,
}

impl MessageId {
    /// `id`, or `None` when it is longer than [`MESSAGE_ID_LEN_MAX`].
    pub fn new(id: &str) -> Option<Self> {
        let mut bytes = [0u8; MESSAGE_ID_LEN_MAX];
        bytes.get_mut(..id.len())?.copy_from_slice(id.as_bytes());
        Some(Self {
            bytes,
            len: id.len() as u8,
        })
    }

    /// The id as the SMSC wrote it (ASCII, checked by `rusmpp`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self {
            bytes: [0; MESSAGE_ID_LEN_MAX],
            len: 0,
        }
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One frame read from the SMSC.
#[derive(Debug)]
pub enum Frame {
    /// A `submit_sm_resp` (with or without a body).
    SubmitSmResp {
        /// `sequence_number` from the header.
        sequence_number: u32,
        /// `command_status` from the header.
        status: CommandStatus,
        /// The id, empty when the response had no body.
        message_id: MessageId,
    },
    /// Any other PDU `rusmpp` decoded.
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
    /// A `command_length` under [`HEADER_LEN`] or over [`PDU_LEN_MAX`]
    /// (garbage, or a broken SMSC): answered `generic_nack`
    /// ESME_RINVCMDLEN, and the connection closed. The codec yields nothing
    /// after it and drops every byte it is given.
    BadLength {
        /// `command_length` from the header.
        command_length: usize,
        /// `command_id` from the header.
        command_id: u32,
        /// `sequence_number` from the header.
        sequence_number: u32,
    },
}

/// The framing codec of the link.
#[derive(Debug)]
pub struct LinkCodec {
    framing: Framing,
    /// A bad length was read: the stream is lost for good.
    lost: bool,
}

impl Default for LinkCodec {
    fn default() -> Self {
        Self {
            framing: Framing::new(PDU_LEN_MAX, BadLength::Report),
            lost: false,
        }
    }
}

impl Decoder for LinkCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if self.lost {
            src.clear();
            return Ok(None);
        }
        let header = match self.framing.cut(src) {
            Ok(Some(Cut::Frame(header))) => header,
            Ok(None) => return Ok(None),
            // Reported once; an over-long frame is not skipped either: its
            // length is as likely garbage as the rest.
            Ok(Some(Cut::OverLong(h) | Cut::Lost(h))) => {
                self.lost = true;
                src.clear();
                return Ok(Some(Frame::BadLength {
                    command_length: h.command_length,
                    command_id: h.command_id,
                    sequence_number: h.sequence_number,
                }));
            }
            // BadLength::Report never fails; kept as the stream's error.
            Err(e) => return Err(bad_length(e)),
        };
        if header.command_id == u32::from(CommandId::SubmitSmResp) {
            if let Some(frame) = submit_sm_resp(&src[..header.command_length]) {
                src.advance(header.command_length);
                return Ok(Some(frame));
            }
            // Anything unusual (TLVs, a broken body) takes the owned path.
        }
        Ok(Some(match self.framing.decode(src, header) {
            Ok(command) => Frame::Command(Box::new(command)),
            Err(_) => Frame::Undecodable {
                command_id: header.command_id,
                command_status: header.command_status,
                sequence_number: header.sequence_number,
            },
        }))
    }
}

/// A framing error: the stream is broken.
fn bad_length(error: smpp_text::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}

/// A whole `submit_sm_resp` decoded by `rusmpp`'s borrowed PDU, which
/// points into `pdu`; `None` when it has TLVs or does not decode.
fn submit_sm_resp(pdu: &[u8]) -> Option<Frame> {
    let body = pdu.get(4..)?;
    let (command, size) = BorrowedCommand::<0>::decode(body, body.len()).ok()?;
    if size != body.len() {
        return None;
    }
    let message_id = match command.pdu() {
        Some(BorrowedPdu::SubmitSmResp(resp)) => MessageId::new(resp.message_id().as_str())?,
        // An error response without a body.
        None => MessageId::default(),
        Some(_) => return None,
    };
    Some(Frame::SubmitSmResp {
        sequence_number: command.sequence_number(),
        status: command.status(),
        message_id,
    })
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
        self.framing.encode(command, dst)
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
pub use smpp_text::encode_to_vec;

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::{pdus::SubmitSmResp, types::COctetString, Pdu};

    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut src = BytesMut::from(bytes);
        let mut codec = LinkCodec::default();
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut src).expect("decodes") {
            frames.push(frame);
        }
        assert!(src.is_empty(), "every byte consumed");
        frames
    }

    fn resp(status: CommandStatus, seq: u32, id: Option<&str>) -> Vec<u8> {
        let pdu: Pdu = match id {
            Some(id) => SubmitSmResp::builder()
                .message_id(COctetString::from_string(id.into()).expect("id"))
                .build()
                .into(),
            None => Pdu::SubmitSmResp(SubmitSmResp::default()),
        };
        encode_to_vec(&Command::new(status, seq, pdu))
    }

    #[test]
    fn submit_sm_resp_is_read_in_place_with_or_without_a_body() {
        let mut bytes = resp(CommandStatus::EsmeRok, 7, Some("0a1b"));
        // An error response without a body: the header alone.
        bytes.extend_from_slice(&[0, 0, 0, 16, 0x80, 0, 0, 4, 0, 0, 0, 0x58, 0, 0, 0, 8]);
        bytes.extend(resp(CommandStatus::EsmeRok, 9, Some("")));
        bytes.extend(encode_to_vec(&Command::new(
            CommandStatus::EsmeRok,
            10,
            Pdu::EnquireLink,
        )));
        let frames = decode_all(&bytes);
        let read: Vec<String> = frames
            .iter()
            .map(|f| match f {
                Frame::SubmitSmResp {
                    sequence_number,
                    status,
                    message_id,
                } => format!("{sequence_number} {status:?} {message_id:?}"),
                Frame::Command(c) => format!("command {:?}", c.id()),
                Frame::Undecodable { command_id, .. } => format!("undecodable {command_id:x}"),
                Frame::BadLength { .. } => "bad length".into(),
            })
            .collect();
        assert_eq!(
            read,
            [
                "7 EsmeRok \"0a1b\"",
                "8 EsmeRthrottled \"\"",
                "9 EsmeRok \"\"",
                "command EnquireLink",
            ]
        );
    }

    #[test]
    fn an_unusual_submit_sm_resp_takes_the_owned_path() {
        // A body with a TLV after the id (SMPP 5.0 allows them): rusmpp's
        // owned PDU reads it.
        let mut bytes = resp(CommandStatus::EsmeRok, 3, Some("42"));
        bytes.extend_from_slice(&[0x04, 0x25, 0x00, 0x01, 0x00]); // delivery_failure_reason
        bytes[3] += 5;
        match &decode_all(&bytes)[..] {
            [Frame::Command(c)] => assert!(matches!(c.pdu(), Some(Pdu::SubmitSmResp(_)))),
            other => panic!("expected the owned path, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_length_is_reported_once_and_the_rest_dropped() {
        for length in [0u32, 15, 65_537, u32::MAX] {
            let mut src = BytesMut::from(&[0, 0, 0, 0, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 9][..]);
            src[..4].copy_from_slice(&length.to_be_bytes());
            let mut codec = LinkCodec::default();
            match codec.decode(&mut src) {
                Ok(Some(Frame::BadLength {
                    command_length,
                    sequence_number: 9,
                    ..
                })) => assert_eq!(command_length, length as usize),
                other => panic!("length {length}: {other:?}"),
            }
            // A valid frame after it is not read: the stream is lost.
            src.extend_from_slice(&encode_to_vec(&Command::new(
                CommandStatus::EsmeRok,
                10,
                Pdu::EnquireLink,
            )));
            assert!(matches!(codec.decode(&mut src), Ok(None)));
            assert!(src.is_empty());
        }
    }
}
