//! SMPP short-message text and framing, once for the link and the simulator.
//!
//! Both sides of an SMPP connection need the same character-set work inside
//! `short_message` and the same way of cutting frames off a byte stream; the
//! architecture invariants keep `smsc-link` and `simulator` apart, so this
//! leaf crate (nothing of ours, no sockets) holds it:
//!
//! * [`Alphabet`] — the `data_coding` → alphabet choice (SMPP 3.4 §5.2.19,
//!   GSM 03.38 coding groups), strict ([`Alphabet::from_data_coding`]) and
//!   lenient for MO from real SMSCs ([`decode_lenient`]).
//! * [`gsm7`] — the GSM 03.38 tables for reading septets, unpacking packed
//!   septets; [`decode_units`] for every alphabet.
//! * [`udh`] — user data headers: 8- and 16-bit concatenation elements.
//! * [`parts`] — a text encoded and split into concatenated short messages.
//! * [`frame`] — frames cut by `command_length` (with a length limit) and
//!   handed whole to `rusmpp`'s codec.
//! * [`range`] — ranges of phone numbers (a prefix or a span), as operators
//!   and numbering plans write them.
//!
//! What `rusmpp` and `rusmpp-extra` do is used, not redone: every PDU is
//! encoded and decoded by `rusmpp`; GSM 7-bit and Latin-1 text is encoded and
//! split by `rusmpp-extra`'s encoders and concatenators, and each UDH is
//! written by `rusmpp`'s concatenation UDH types. Written here by hand, because
//! those crates do not cover it:
//!
//! * decoding: `rusmpp-extra` only encodes, so the GSM 03.38 tables (basic and
//!   extension) exist here for reading septets, and so do UCS2 and Latin-1
//!   decoding and the unpacking of septets packed 8 into 7 octets;
//! * UCS2 beyond the Basic Multilingual Plane: `rusmpp-extra`'s UCS2 encoder
//!   refuses a character such as an emoji, which phones send and show as a
//!   UTF-16 surrogate pair, so UCS2 is encoded as UTF-16BE and split here,
//!   never cutting a pair;
//! * reading a UDH: `rusmpp`'s `Udh` decodes a header of exactly one
//!   element, while phones and SMSCs send several (a port address beside the
//!   concatenation element);
//! * cutting frames: `rusmpp`'s codec refuses a PDU by failing the stream;
//!   cut first, a body it refuses is answered and the stream goes on.

pub mod alphabet;
mod error;
pub mod frame;
pub mod gsm7;
pub mod parts;
/// Ranges of phone numbers: the `number-range` leaf, re-exported under the
/// path the simulator knows.
pub use number_range as range;
pub mod udh;

pub use alphabet::{
    decode_latin1, decode_lenient, decode_ucs2, decode_units, part_units, Alphabet, Gsm7Packing,
};
pub use error::Error;
pub use frame::{encode_to_vec, BadLength, Cut, Framing, Header, Undecodable, HEADER_LEN};
pub use parts::{encode_auto, encode_parts, EncodedParts, GSM7_SEPTETS_MAX, OCTETS_MAX, PARTS_MAX};
pub use udh::{parse_udh, PartInfo};
