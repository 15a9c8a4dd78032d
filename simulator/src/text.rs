//! Short-message text as the simulator names it: decoding what ESMEs
//! submit (GSM 7-bit packed and unpacked, Latin-1, UCS2, user data
//! headers) and encoding/splitting the MO it delivers. The work is done
//! once, for the link too, in `smpp-text`; this module only keeps the names
//! the simulator's modules use.

pub use smpp_text::{
    decode_units, encode_parts, part_units, Alphabet as Encoding, EncodedParts, Error as TextError,
    PartInfo, GSM7_SEPTETS_MAX, OCTETS_MAX,
};

/// Splits `short_message` into its UDH concatenation info (if any) and the
/// number of header octets (see [`smpp_text::parse_udh`]).
pub fn split_udh(message: &[u8]) -> Result<(Option<PartInfo>, usize), TextError> {
    smpp_text::parse_udh(message)
}
