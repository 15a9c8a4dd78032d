//! Short-message text: decoding what ESMEs submit (GSM 7-bit packed and
//! unpacked, Latin-1, UCS2, user data headers) and encoding/splitting what
//! the simulator delivers (through `rusmpp`'s encoders and concatenators).
//!
//! This is character-set work inside `short_message`; the PDUs themselves
//! are always encoded and decoded by `rusmpp`.

use rusmpp::extra::{
    concatenation::{Concatenation, Concatenator},
    encoding::{gsm7bit::Gsm7BitUnpacked, latin1::Latin1, ucs2::Ucs2},
};
use rusmpp::udhs::concatenation::ConcatenatedShortMessageType;
use serde::{Deserialize, Serialize};

use crate::config::Gsm7Packing;

/// GSM 03.38 default alphabet, indexed by septet.
const GSM7_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// GSM 03.38 extension table (after the 0x1B escape).
fn gsm7_extended(septet: u8) -> Option<char> {
    Some(match septet {
        0x0A => '\u{0c}',
        0x14 => '^',
        0x28 => '{',
        0x29 => '}',
        0x2F => '\\',
        0x3C => '[',
        0x3D => '~',
        0x3E => ']',
        0x40 => '|',
        0x65 => '€',
        _ => return None,
    })
}

/// The text encodings the simulator knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// GSM 03.38 default alphabet (`data_coding` 0).
    Gsm7,
    /// ISO-8859-1 (`data_coding` 3).
    Latin1,
    /// UCS2 / UTF-16BE (`data_coding` 8).
    Ucs2,
    /// Binary or an unknown alphabet; shown as hex.
    Binary,
}

impl Encoding {
    /// Picks GSM 7-bit when every character fits, UCS2 otherwise (e.g. Cyrillic).
    pub fn auto(text: &str) -> Self {
        if Gsm7BitUnpacked::new().encode_to_vec(text).is_ok() {
            Self::Gsm7
        } else {
            Self::Ucs2
        }
    }

    /// The encoding a `data_coding` value selects, or `None` when the
    /// simulator does not accept it (ESME_RINVDCS).
    pub fn from_data_coding(data_coding: u8) -> Option<Self> {
        match data_coding {
            0x00 | 0x01 => Some(Self::Gsm7),
            0x03 => Some(Self::Latin1),
            0x08 => Some(Self::Ucs2),
            0x02 | 0x04 => Some(Self::Binary),
            // General data coding group 00xx, uncompressed, bits 3..2 alphabet.
            0x10..=0x1F | 0xF0..=0xFF => match data_coding & 0x0C {
                0x00 => Some(Self::Gsm7),
                0x04 => Some(Self::Binary),
                0x08 => Some(Self::Ucs2),
                _ => None,
            },
            _ => None,
        }
    }
}

/// What went wrong decoding a short message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The user data header's length points past the end of the message.
    #[error("user data header longer than the message")]
    UdhTooLong,
    /// A UCS2 message with an odd number of octets.
    #[error("ucs2 message has an odd number of octets")]
    OddUcs2,
}

/// A concatenation marker found in a UDH or in SAR TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartInfo {
    /// Reference shared by all parts (8- or 16-bit).
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's number, from 1.
    pub number: u8,
}

/// Splits `short_message` into its UDH concatenation info (if any) and the
/// user data after the header. Returns the number of header octets too, for
/// packed GSM 7-bit alignment.
pub fn split_udh(message: &[u8]) -> Result<(Option<PartInfo>, usize), TextError> {
    let Some(&udhl) = message.first() else {
        return Err(TextError::UdhTooLong);
    };
    let header_len = usize::from(udhl) + 1;
    let header = message.get(1..header_len).ok_or(TextError::UdhTooLong)?;
    let mut part = None;
    let mut rest = header;
    while let [iei, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let Some(data) = tail.get(..len) else { break };
        match (iei, data) {
            (0x00, [reference, total, number]) => {
                part = Some(PartInfo {
                    reference: u16::from(*reference),
                    total: *total,
                    number: *number,
                });
            }
            (0x08, [hi, lo, total, number]) => {
                part = Some(PartInfo {
                    reference: u16::from_be_bytes([*hi, *lo]),
                    total: *total,
                    number: *number,
                });
            }
            _ => {}
        }
        rest = &tail[len..];
    }
    let part = part.filter(|p| p.total >= 1 && p.number >= 1 && p.number <= p.total);
    Ok((part, header_len))
}

/// Unpacks GSM 7-bit septets packed 8 to 7 octets, skipping `skip_septets`
/// (the UDH and its fill bits).
pub fn unpack_septets(packed: &[u8], skip_septets: usize) -> Vec<u8> {
    let count = packed.len() * 8 / 7;
    let mut out = Vec::with_capacity(count);
    for i in skip_septets..count {
        let bit = i * 7;
        let byte = bit / 8;
        let shift = bit % 8;
        let lo = u16::from(packed.get(byte).copied().unwrap_or(0));
        let hi = u16::from(packed.get(byte + 1).copied().unwrap_or(0));
        let word = lo | (hi << 8);
        out.push(((word >> shift) & 0x7F) as u8);
    }
    // A trailing zero septet that only fills the last octet is padding.
    if packed.len() % 7 == 0 && out.last() == Some(&0) {
        out.pop();
    }
    out
}

/// Decodes unpacked GSM 7-bit septets (one per octet) into text.
pub fn decode_gsm7_septets(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut escaped = false;
    for &s in septets {
        let s = s & 0x7F;
        if escaped {
            escaped = false;
            match gsm7_extended(s) {
                Some(c) => out.push(c),
                None => out.push(GSM7_BASIC[usize::from(s)]),
            }
        } else if s == 0x1B {
            escaped = true;
        } else {
            out.push(GSM7_BASIC[usize::from(s)]);
        }
    }
    out
}

/// Decodes UCS2 (accepting UTF-16 surrogate pairs) into text.
pub fn decode_ucs2(bytes: &[u8]) -> Result<String, TextError> {
    if bytes.len() % 2 != 0 {
        return Err(TextError::OddUcs2);
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// Decodes ISO-8859-1.
pub fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The payload units of one part, ready to be joined with the other parts
/// before decoding (septets for GSM 7-bit, octets otherwise).
pub fn part_units(
    encoding: Encoding,
    packing: Gsm7Packing,
    message: &[u8],
    header_len: usize,
) -> Vec<u8> {
    let body = message.get(header_len..).unwrap_or_default();
    match encoding {
        Encoding::Gsm7 => {
            let packed = match packing {
                Gsm7Packing::Packed => true,
                Gsm7Packing::Unpacked => false,
                Gsm7Packing::Auto => body.iter().any(|&b| b > 0x7F),
            };
            if packed {
                let skip = (header_len * 8).div_ceil(7);
                unpack_septets(message, skip)
            } else {
                body.to_vec()
            }
        }
        _ => body.to_vec(),
    }
}

/// Decodes joined units into text.
pub fn decode_units(encoding: Encoding, units: &[u8]) -> Result<String, TextError> {
    Ok(match encoding {
        Encoding::Gsm7 => decode_gsm7_septets(units),
        Encoding::Latin1 => decode_latin1(units),
        Encoding::Ucs2 => decode_ucs2(units)?,
        Encoding::Binary => units.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Why a text cannot be encoded for delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The text has a character the chosen alphabet lacks.
    #[error("the text cannot be encoded as {0:?}")]
    Unencodable(Encoding),
    /// The text needs more parts than a concatenated message may have.
    #[error("the text is too long for a concatenated message")]
    TooLong,
}

/// The encoded short messages of one MO: `data_coding` and each part's
/// `short_message` (UDH included when there are several parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedParts {
    /// `data_coding` of every part.
    pub data_coding: u8,
    /// `short_message` of every part.
    pub parts: Vec<Vec<u8>>,
    /// True when the parts carry a UDH (esm_class UDHI must be set).
    pub udhi: bool,
}

/// Largest `short_message` the simulator builds for GSM 7-bit (unpacked septets).
pub const GSM7_SEPTETS_MAX: usize = 160;
/// Largest `short_message` the simulator builds for 8-bit and UCS2 alphabets.
pub const OCTETS_MAX: usize = 140;

/// Encodes `text` and splits it into concatenated parts with an 8-bit
/// reference UDH when it does not fit one short message.
pub fn encode_parts(
    text: &str,
    encoding: Encoding,
    reference: u8,
) -> Result<EncodedParts, EncodeError> {
    let kind = ConcatenatedShortMessageType::u8(reference);
    let udh_len = kind.udh_length();
    let result = match encoding {
        // An unpacked 6-octet UDH takes 7 septets once packed: 153 per part.
        Encoding::Gsm7 => Gsm7BitUnpacked::new()
            .concatenate(text, GSM7_SEPTETS_MAX, udh_len + 1)
            .map_err(|_| EncodeError::Unencodable(encoding)),
        Encoding::Ucs2 => Ucs2::new()
            .concatenate(text, OCTETS_MAX, udh_len)
            .map_err(|_| EncodeError::Unencodable(encoding)),
        Encoding::Latin1 => Latin1::new()
            .concatenate(text, OCTETS_MAX, udh_len)
            .map_err(|_| EncodeError::Unencodable(encoding)),
        Encoding::Binary => return Err(EncodeError::Unencodable(encoding)),
    };
    let (concatenation, data_coding) = result?;
    let data_coding = u8::from(data_coding);
    match concatenation {
        Concatenation::Single(bytes) => Ok(EncodedParts {
            data_coding,
            parts: vec![bytes],
            udhi: false,
        }),
        Concatenation::Concatenated(parts) => {
            let total = u8::try_from(parts.len()).map_err(|_| EncodeError::TooLong)?;
            let parts = parts
                .into_iter()
                .enumerate()
                .map(|(index, body)| {
                    let number = u8::try_from(index + 1).unwrap_or(total);
                    let udh = kind.concatenated_short_message_unchecked(total, number);
                    let mut out = udh.udh_bytes().as_bytes().to_vec();
                    out.extend_from_slice(&body);
                    out
                })
                .collect();
            Ok(EncodedParts {
                data_coding,
                parts,
                udhi: true,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_unpacked_with_escape() {
        assert_eq!(decode_gsm7_septets(&[0x48, 0x69, 0x1B, 0x65, 0x00]), "Hi€@");
    }

    #[test]
    fn gsm7_packed_hello() {
        // "hellohello" packed, from the GSM 03.38 worked example.
        let packed = [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37];
        let units = part_units(Encoding::Gsm7, Gsm7Packing::Packed, &packed, 0);
        assert_eq!(decode_gsm7_septets(&units), "hellohello");
    }

    #[test]
    fn udh_8_and_16_bit() {
        let (part, len) = split_udh(&[0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, b'x']).unwrap();
        assert_eq!(
            part,
            Some(PartInfo {
                reference: 0x2A,
                total: 3,
                number: 2
            })
        );
        assert_eq!(len, 6);
        let (part, len) = split_udh(&[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'x']).unwrap();
        assert_eq!(
            part,
            Some(PartInfo {
                reference: 0x1234,
                total: 2,
                number: 1
            })
        );
        assert_eq!(len, 7);
        assert_eq!(split_udh(&[0x09, 0x00]), Err(TextError::UdhTooLong));
    }

    #[test]
    fn cyrillic_goes_ucs2_and_splits() {
        let text = "ВХОД*123-456-789 ".repeat(10);
        assert_eq!(Encoding::auto(&text), Encoding::Ucs2);
        let encoded = encode_parts(&text, Encoding::Ucs2, 7).unwrap();
        assert_eq!(encoded.data_coding, 8);
        assert!(encoded.udhi);
        assert_eq!(encoded.parts.len(), 3);
        let mut units = Vec::new();
        for part in &encoded.parts {
            let (info, header_len) = split_udh(part).unwrap();
            assert_eq!(info.map(|i| i.total), Some(3));
            units.extend(part_units(
                Encoding::Ucs2,
                Gsm7Packing::Auto,
                part,
                header_len,
            ));
        }
        assert_eq!(decode_units(Encoding::Ucs2, &units).unwrap(), text);
    }

    #[test]
    fn latin_text_stays_gsm7() {
        let encoded =
            encode_parts("ENTER*123-456-789", Encoding::auto("ENTER*123-456-789"), 1).unwrap();
        assert_eq!(encoded.data_coding, 0);
        assert_eq!(encoded.parts, vec![b"ENTER*123-456-789".to_vec()]);
    }

    #[test]
    fn long_gsm7_splits_at_153() {
        let text = "a".repeat(200);
        let encoded = encode_parts(&text, Encoding::Gsm7, 1).unwrap();
        assert_eq!(encoded.parts.len(), 2);
        assert_eq!(encoded.parts[0].len(), 6 + 153);
    }
}
