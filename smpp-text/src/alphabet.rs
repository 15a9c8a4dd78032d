//! The alphabet a `data_coding` value announces, and decoding by alphabet:
//! strict for what an ESME submits ([`decode_units`]), lenient for MO from
//! a real SMSC ([`decode_lenient`]).

use rusmpp::extra::encoding::gsm7bit::Gsm7BitUnpacked;
use serde::{Deserialize, Serialize};

use crate::{gsm7, Error};

/// How a short message's text is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alphabet {
    /// GSM 03.38 default alphabet (`data_coding` 0 on most SMSCs).
    Gsm7,
    /// ISO-8859-1 (`data_coding` 3); IA5 (`data_coding` 1, ASCII) reads as
    /// its Latin-1 superset.
    Latin1,
    /// UCS2 / UTF-16BE (`data_coding` 8).
    Ucs2,
    /// 8-bit data: no text.
    Binary,
}

impl Alphabet {
    /// GSM 7-bit when every character fits, UCS2 otherwise (e.g. Cyrillic).
    pub fn auto(text: &str) -> Self {
        if Gsm7BitUnpacked::new().encode_to_vec(text).is_ok() {
            Self::Gsm7
        } else {
            Self::Ucs2
        }
    }

    /// The `data_coding` this crate writes for the alphabet.
    pub fn data_coding(self) -> u8 {
        match self {
            Self::Gsm7 => 0x00,
            Self::Latin1 => 0x03,
            Self::Ucs2 => 0x08,
            Self::Binary => 0x04,
        }
    }

    /// The alphabet `data_coding` announces, with 0 read as GSM 7-bit;
    /// `None` for a value whose text cannot be read (another character
    /// set, compressed, reserved).
    pub fn from_data_coding(data_coding: u8) -> Option<Self> {
        Self::from_data_coding_or(data_coding, Self::Gsm7)
    }

    /// As [`Alphabet::from_data_coding`], with `zero` the SMSC's default
    /// alphabet (what `data_coding` 0 means for it). SMPP 3.4 §5.2.19 for
    /// 0x00–0x0F, GSM 03.38 coding groups for the rest.
    pub fn from_data_coding_or(data_coding: u8, zero: Self) -> Option<Self> {
        match data_coding {
            0x00 => Some(zero),
            0x01 | 0x03 => Some(Self::Latin1),
            0x02 | 0x04 => Some(Self::Binary),
            0x08 => Some(Self::Ucs2),
            // General data coding, uncompressed, with a message class: bits
            // 3..2 name the alphabet (11 is reserved).
            0x10..=0x1f => match data_coding & 0x0c {
                0x00 => Some(Self::Gsm7),
                0x04 => Some(Self::Binary),
                0x08 => Some(Self::Ucs2),
                _ => None,
            },
            // Message waiting indication: discard / store (GSM 7-bit), store (UCS2).
            0xc0..=0xdf => Some(Self::Gsm7),
            0xe0..=0xef => Some(Self::Ucs2),
            // Data coding / message class: bit 2 says 8-bit data.
            0xf0..=0xff if data_coding & 0x04 != 0 => Some(Self::Binary),
            0xf0..=0xff => Some(Self::Gsm7),
            _ => None,
        }
    }
}

/// How a GSM 7-bit short message is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gsm7Packing {
    /// Packed if any octet has its top bit set, otherwise unpacked (default).
    #[default]
    Auto,
    /// One septet per octet, the usual SMPP layout.
    Unpacked,
    /// Septets packed 8 into 7 octets, as on the air interface.
    Packed,
}

/// The payload units of one part, ready to be joined with the other parts
/// before decoding (septets for GSM 7-bit, octets otherwise); `header_len`
/// is the UDH's size in octets (0 without one).
pub fn part_units(
    alphabet: Alphabet,
    packing: Gsm7Packing,
    message: &[u8],
    header_len: usize,
) -> Vec<u8> {
    let body = message.get(header_len..).unwrap_or_default();
    if alphabet != Alphabet::Gsm7 {
        return body.to_vec();
    }
    let packed = match packing {
        Gsm7Packing::Packed => true,
        Gsm7Packing::Unpacked => false,
        Gsm7Packing::Auto => body.iter().any(|&b| b > 0x7f),
    };
    if packed {
        // The UDH and its fill bits take whole septets.
        gsm7::unpack(message, (header_len * 8).div_ceil(7))
    } else {
        body.to_vec()
    }
}

/// Decodes UCS2 (accepting UTF-16 surrogate pairs; a lone surrogate
/// becomes U+FFFD).
pub fn decode_ucs2(bytes: &[u8]) -> Result<String, Error> {
    if bytes.len() % 2 != 0 {
        return Err(Error::OddUcs2);
    }
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    Ok(char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

/// Decodes ISO-8859-1.
pub fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Decodes joined units (see [`part_units`]); binary data is shown as hex.
pub fn decode_units(alphabet: Alphabet, units: &[u8]) -> Result<String, Error> {
    Ok(match alphabet {
        Alphabet::Gsm7 => gsm7::decode(units),
        Alphabet::Latin1 => decode_latin1(units),
        Alphabet::Ucs2 => decode_ucs2(units)?,
        Alphabet::Binary => units.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// True when octets labelled as something else are evidently UTF-16BE:
/// even length, every high octet 0x00 or a Cyrillic/punctuation block, and
/// at least one Cyrillic character (the mislabelling seen with Russian MO).
pub fn looks_like_ucs2(bytes: &[u8]) -> bool {
    if bytes.len() < 2 || bytes.len() % 2 != 0 {
        return false;
    }
    let mut cyrillic = false;
    for pair in bytes.chunks_exact(2) {
        match pair[0] {
            0x04 => cyrillic = true,
            0x00 | 0x20 | 0x21 => {}
            _ => return false,
        }
    }
    cyrillic
}

/// Decodes an MO's octets labelled `data_coding` (`zero`: the SMSC's
/// default alphabet) and never fails: UCS2 labelled otherwise is
/// recognized, "GSM 7-bit" with top bits set reads as Latin-1, an
/// unreadable label as Latin-1, and an odd last UCS2 octet is dropped.
pub fn decode_lenient(data_coding: u8, bytes: &[u8], zero: Alphabet) -> String {
    let alphabet = Alphabet::from_data_coding_or(data_coding, zero).unwrap_or(Alphabet::Latin1);
    let ucs2 = |bytes: &[u8]| {
        decode_ucs2(&bytes[..bytes.len() & !1]).unwrap_or_else(|_| decode_latin1(bytes))
    };
    if alphabet != Alphabet::Ucs2 && looks_like_ucs2(bytes) {
        return ucs2(bytes);
    }
    match alphabet {
        Alphabet::Gsm7 if bytes.iter().any(|&b| b >= 0x80) => decode_latin1(bytes),
        Alphabet::Gsm7 => gsm7::decode(bytes),
        Alphabet::Ucs2 => ucs2(bytes),
        Alphabet::Latin1 | Alphabet::Binary => decode_latin1(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_hello_as_a_part() {
        // "hellohello" packed, from the GSM 03.38 worked example.
        let packed = [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37];
        let units = part_units(Alphabet::Gsm7, Gsm7Packing::Packed, &packed, 0);
        assert_eq!(gsm7::decode(&units), "hellohello");
        let auto = part_units(Alphabet::Gsm7, Gsm7Packing::Auto, &packed, 0);
        assert_eq!(auto, units);
    }

    #[test]
    fn data_coding_values() {
        let table = [
            (0x00, Some(Alphabet::Gsm7)),
            (0x01, Some(Alphabet::Latin1)),
            (0x02, Some(Alphabet::Binary)),
            (0x03, Some(Alphabet::Latin1)),
            (0x04, Some(Alphabet::Binary)),
            (0x05, None),
            (0x08, Some(Alphabet::Ucs2)),
            (0x11, Some(Alphabet::Gsm7)),
            (0x15, Some(Alphabet::Binary)),
            (0x18, Some(Alphabet::Ucs2)),
            (0x1c, None),
            (0x20, None),
            (0xc8, Some(Alphabet::Gsm7)),
            (0xe0, Some(Alphabet::Ucs2)),
            (0xf1, Some(Alphabet::Gsm7)),
            (0xf4, Some(Alphabet::Binary)),
        ];
        for (dc, expected) in table {
            assert_eq!(Alphabet::from_data_coding(dc), expected, "dc {dc:#04x}");
        }
        assert_eq!(
            Alphabet::from_data_coding_or(0, Alphabet::Latin1),
            Some(Alphabet::Latin1)
        );
    }

    #[test]
    fn decoding_by_data_coding() {
        let ucs2: Vec<u8> = "Привет"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let gsm = Alphabet::Gsm7;
        let table: [(u8, &[u8], Alphabet, &str); 7] = [
            (0, b"Hello", gsm, "Hello"),
            (0, &[0x00, 0x1b, 0x65], gsm, "@€"),
            (0, &[0xe9], Alphabet::Latin1, "é"),
            (1, b"abc", gsm, "abc"),
            (3, &[0xe9, 0x74, 0xe9], gsm, "été"),
            (8, &ucs2, gsm, "Привет"),
            // UCS2 labelled as the default alphabet.
            (0, &ucs2, gsm, "Привет"),
        ];
        for (dc, bytes, default, expected) in table {
            assert_eq!(decode_lenient(dc, bytes, default), expected, "dc {dc}");
        }
    }

    #[test]
    fn strict_ucs2_refuses_an_odd_length_and_lenient_drops_the_octet() {
        assert_eq!(decode_ucs2(&[0x04, 0x36, 0x04]), Err(Error::OddUcs2));
        assert_eq!(decode_lenient(8, &[0x04, 0x36, 0x04], Alphabet::Gsm7), "ж");
    }

    proptest::proptest! {
        #[test]
        fn lenient_decoding_never_panics(dc in proptest::num::u8::ANY, bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode_lenient(dc, &bytes, Alphabet::Gsm7);
            if let Some(alphabet) = Alphabet::from_data_coding(dc) {
                let units = part_units(alphabet, Gsm7Packing::Auto, &bytes, 0);
                let _ = decode_units(alphabet, &units);
            }
        }
    }
}
