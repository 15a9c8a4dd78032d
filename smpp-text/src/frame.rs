//! Frames cut off a byte stream by `command_length`, then handed whole to
//! `rusmpp`'s codec: a body `rusmpp` refuses is skipped and answered
//! instead of desynchronizing (or failing) the stream.
//!
//! This reads the 16-octet header only to find where a frame ends and what
//! to answer about one that does not decode; every PDU is encoded and
//! decoded by `rusmpp`.

use bytes::{Buf, BytesMut};
use rusmpp::{
    tokio_codec::{CommandCodec, DecodeError, EncodeError},
    Command, CommandId, CommandStatus,
};
use tokio_util::codec::{Decoder, Encoder};

use crate::Error;

/// Size of the SMPP header: length, id, status, sequence number.
pub const HEADER_LEN: usize = 16;

/// The header of a frame, read before `rusmpp` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `command_length`: the frame's size, header included.
    pub command_length: usize,
    /// `command_id`.
    pub command_id: u32,
    /// `command_status`.
    pub command_status: u32,
    /// `sequence_number`.
    pub sequence_number: u32,
}

impl Header {
    /// The header at the start of `src`, when 16 octets are there.
    pub fn peek(src: &[u8]) -> Option<Self> {
        let word = |at: usize| -> Option<u32> {
            let bytes: [u8; 4] = src.get(at..at + 4)?.try_into().ok()?;
            Some(u32::from_be_bytes(bytes))
        };
        Some(Self {
            command_length: word(0)? as usize,
            command_id: word(4)?,
            command_status: word(8)?,
            sequence_number: word(12)?,
        })
    }
}

/// What to do with a `command_length` below [`HEADER_LEN`] or above the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLength {
    /// Report it as a [`Cut`] and go on: an over-long frame is skipped
    /// without being buffered; after a length below the header the stream
    /// cannot be resynchronized, so what is buffered is dropped. Both
    /// sides answer `generic_nack`; the simulator goes on after an
    /// over-long frame, the link closes after either.
    Report,
    /// Fail the stream with [`Error::CommandLength`], with no answer.
    Fail,
}

/// What [`Framing::cut`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A whole frame of `command_length` octets is at the front of the
    /// buffer: take it with [`Framing::decode`] or read it in place and
    /// advance past it.
    Frame(Header),
    /// A frame longer than the limit, skipped (its bytes are being dropped).
    OverLong(Header),
    /// A `command_length` below the header's size: the stream is lost.
    Lost(Header),
}

/// A frame `rusmpp` could not decode.
#[derive(Debug)]
pub struct Undecodable {
    /// The frame's header.
    pub header: Header,
    /// `rusmpp`'s reason, when it gave one.
    pub error: Option<DecodeError>,
}

impl Undecodable {
    /// The status a `generic_nack` answers it with: an unknown command id
    /// (or key) is ESME_RINVCMDID, anything else a body that does not match
    /// its `command_length`.
    pub fn status(&self) -> CommandStatus {
        use rusmpp::decode::DecodeErrorKind;
        if matches!(CommandId::from(self.header.command_id), CommandId::Other(_)) {
            return CommandStatus::EsmeRinvcmdid;
        }
        match &self.error {
            Some(DecodeError::Decode(e))
                if matches!(e.kind(), DecodeErrorKind::UnsupportedKey { .. }) =>
            {
                CommandStatus::EsmeRinvcmdid
            }
            _ => CommandStatus::EsmeRinvcmdlen,
        }
    }
}

/// Cuts frames with a length limit and decodes/encodes them with `rusmpp`.
#[derive(Debug)]
pub struct Framing {
    pdu_len_max: usize,
    bad_length: BadLength,
    /// Bytes of an over-long frame still to drop.
    skip_len: usize,
    inner: CommandCodec,
}

impl Framing {
    /// Frames of at most `pdu_len_max` octets (at least a header).
    pub fn new(pdu_len_max: usize, bad_length: BadLength) -> Self {
        Self {
            pdu_len_max: pdu_len_max.max(HEADER_LEN),
            bad_length,
            skip_len: 0,
            inner: CommandCodec::new().without_max_length(),
        }
    }

    /// The next frame at the front of `src`; `Ok(None)` until enough bytes
    /// have arrived.
    pub fn cut(&mut self, src: &mut BytesMut) -> Result<Option<Cut>, Error> {
        if self.skip_len > 0 {
            let n = self.skip_len.min(src.len());
            src.advance(n);
            self.skip_len -= n;
            if self.skip_len > 0 {
                return Ok(None);
            }
        }
        let Some(header) = Header::peek(src) else {
            return Ok(None);
        };
        let command_length = header.command_length;
        if !(HEADER_LEN..=self.pdu_len_max).contains(&command_length) {
            if self.bad_length == BadLength::Fail {
                return Err(Error::CommandLength { command_length });
            }
            if command_length < HEADER_LEN {
                // The length is the only way to find the next PDU; it is gone.
                src.clear();
                return Ok(Some(Cut::Lost(header)));
            }
            let n = command_length.min(src.len());
            src.advance(n);
            self.skip_len = command_length - n;
            return Ok(Some(Cut::OverLong(header)));
        }
        if src.len() < command_length {
            src.reserve(command_length - src.len());
            return Ok(None);
        }
        Ok(Some(Cut::Frame(header)))
    }

    /// Takes the frame `header` describes off the front of `src` (after
    /// [`Cut::Frame`]) and decodes it with `rusmpp`.
    pub fn decode(&mut self, src: &mut BytesMut, header: Header) -> Result<Command, Undecodable> {
        let mut frame = src.split_to(header.command_length.min(src.len()));
        let error = match self.inner.decode(&mut frame) {
            Ok(Some(command)) => return Ok(command),
            Ok(None) => None,
            Err(error) => Some(error),
        };
        // A fresh inner codec: the failed one may hold a half state.
        self.inner = CommandCodec::new().without_max_length();
        Err(Undecodable { header, error })
    }

    /// Appends `command`'s wire bytes to `dst`.
    pub fn encode(&mut self, command: &Command, dst: &mut BytesMut) -> std::io::Result<()> {
        self.inner.encode(command, dst).map_err(|e| match e {
            EncodeError::Io(io) => io,
            #[allow(unreachable_patterns)]
            other => std::io::Error::other(other.to_string()),
        })
    }
}

/// The bytes of `command` on the wire (golden tests, the journal, benchmarks).
pub fn encode_to_vec(command: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    // Encoding into a BytesMut cannot fail: the error type only wraps I/O.
    match Framing::new(HEADER_LEN, BadLength::Fail).encode(command, &mut buf) {
        Ok(()) => buf.to_vec(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::Pdu;

    /// Every cut (and decoded command) until the bytes run out.
    fn cut_all(framing: &mut Framing, bytes: &[u8]) -> Vec<Result<Command, Cut>> {
        let mut src = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Ok(Some(cut)) = framing.cut(&mut src) {
            match cut {
                Cut::Frame(header) => out.push(framing.decode(&mut src, header).map_err(|_| cut)),
                other => out.push(Err(other)),
            }
        }
        out
    }

    fn enquire_link(seq: u32) -> Vec<u8> {
        encode_to_vec(&Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink))
    }

    #[test]
    fn enquire_link_decodes() {
        let items = cut_all(&mut Framing::new(64, BadLength::Report), &enquire_link(9));
        assert!(matches!(&items[..], [Ok(c)] if c.sequence_number() == 9));
    }

    #[test]
    fn over_long_frame_is_skipped_and_stream_resyncs() {
        let mut bytes = vec![0, 0, 0, 100, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5];
        bytes.extend(std::iter::repeat_n(0xAA, 84));
        bytes.extend(enquire_link(6));
        let items = cut_all(&mut Framing::new(64, BadLength::Report), &bytes);
        assert!(matches!(
            items[0],
            Err(Cut::OverLong(Header {
                sequence_number: 5,
                ..
            }))
        ));
        assert!(matches!(&items[1], Ok(c) if c.sequence_number() == 6));
    }

    #[test]
    fn an_over_long_frame_arriving_in_pieces_is_skipped_without_buffering() {
        let mut framing = Framing::new(64, BadLength::Report);
        let mut src = BytesMut::from(&[0, 0, 0, 100, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5][..]);
        assert!(matches!(framing.cut(&mut src), Ok(Some(Cut::OverLong(_)))));
        src.extend_from_slice(&[0xAA; 50]);
        assert!(matches!(framing.cut(&mut src), Ok(None)));
        assert!(src.is_empty());
        src.extend_from_slice(&[0xAA; 34]);
        src.extend_from_slice(&enquire_link(7));
        assert!(matches!(framing.cut(&mut src), Ok(Some(Cut::Frame(h))) if h.sequence_number == 7));
    }

    #[test]
    fn short_length_is_fatal() {
        let bytes = [0, 0, 0, 3, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1];
        let items = cut_all(&mut Framing::new(64, BadLength::Report), &bytes);
        assert!(matches!(items[..], [Err(Cut::Lost(_))]));
        let mut failing = Framing::new(64, BadLength::Fail);
        assert_eq!(
            failing.cut(&mut BytesMut::from(&bytes[..])),
            Err(Error::CommandLength { command_length: 3 })
        );
        let mut long = bytes;
        long[2] = 1; // 259 octets, above the limit of 64
        assert_eq!(
            failing.cut(&mut BytesMut::from(&long[..])),
            Err(Error::CommandLength {
                command_length: 259
            })
        );
    }

    #[test]
    fn an_undecodable_body_is_answered_and_the_next_frame_decodes() {
        // A submit_sm whose body is three octets without a terminating NUL.
        let bytes = [
            0, 0, 0, 19, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, b'a', b'b', b'c',
        ];
        let mut framing = Framing::new(64, BadLength::Report);
        let mut src = BytesMut::from(&bytes[..]);
        let Ok(Some(Cut::Frame(header))) = framing.cut(&mut src) else {
            panic!("a frame");
        };
        let undecodable = framing.decode(&mut src, header).expect_err("broken body");
        assert_eq!(undecodable.header.sequence_number, 8);
        assert_eq!(undecodable.status(), CommandStatus::EsmeRinvcmdlen);
        assert!(src.is_empty());
        // The next frame decodes: the codec was reset.
        src.extend_from_slice(&enquire_link(5));
        let Ok(Some(Cut::Frame(header))) = framing.cut(&mut src) else {
            panic!("a frame");
        };
        assert!(framing.decode(&mut src, header).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_cut_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = cut_all(&mut Framing::new(256, BadLength::Report), &bytes);
            let _ = cut_all(&mut Framing::new(256, BadLength::Fail), &bytes);
        }
    }
}
