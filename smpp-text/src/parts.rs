//! A text encoded and, when it does not fit one short message, split into
//! concatenated parts, each behind a UDH with an 8-bit reference.
//!
//! GSM 7-bit and Latin-1 go through `rusmpp-extra`'s concatenators (which
//! never cut an escape pair) and every UDH through `rusmpp`'s concatenation
//! UDH. UCS2 is encoded as UTF-16BE and split here: `rusmpp-extra`'s UCS2
//! refuses characters beyond the Basic Multilingual Plane; a surrogate
//! pair is never cut.

use rusmpp::extra::{
    concatenation::{Concatenation, Concatenator},
    encoding::{
        gsm7bit::{Gsm7BitConcatenateError, Gsm7BitUnpacked},
        latin1::{Latin1, Latin1ConcatenateError},
    },
};
use rusmpp::udhs::concatenation::ConcatenatedShortMessageType;

use crate::{Alphabet, Error};

/// Largest GSM 7-bit `short_message`, in (unpacked) septets.
pub const GSM7_SEPTETS_MAX: usize = 160;
/// Largest `short_message` of the 8-bit and UCS2 alphabets, in octets.
pub const OCTETS_MAX: usize = 140;
/// Parts of one concatenated message (the UDH counts them in one octet).
pub const PARTS_MAX: usize = 255;

/// A text as short messages: one without a UDH, or concatenated parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedParts {
    /// `data_coding` of every part.
    pub data_coding: u8,
    /// `short_message` of every part (UDH included when there are several).
    pub parts: Vec<Vec<u8>>,
    /// True when the parts carry a UDH (`esm_class` UDHI must be set).
    pub udhi: bool,
}

/// Encodes `text` in GSM 7-bit when every character fits, UCS2 otherwise.
pub fn encode_auto(text: &str, reference: u8) -> Result<EncodedParts, Error> {
    match encode_parts(text, Alphabet::Gsm7, reference) {
        Err(Error::Unencodable(_)) => encode_parts(text, Alphabet::Ucs2, reference),
        other => other,
    }
}

/// Encodes `text` in `alphabet` and splits it into concatenated parts with
/// the 8-bit `reference` when it does not fit one short message.
pub fn encode_parts(text: &str, alphabet: Alphabet, reference: u8) -> Result<EncodedParts, Error> {
    let kind = ConcatenatedShortMessageType::u8(reference);
    let udh_len = kind.udh_length();
    let concatenation = match alphabet {
        // A 6-octet UDH takes 7 septets once packed: 153 per part.
        Alphabet::Gsm7 => Gsm7BitUnpacked::new()
            .concatenate(text, GSM7_SEPTETS_MAX, udh_len + 1)
            .map(|(c, _)| c)
            .map_err(|e| match e {
                Gsm7BitConcatenateError::PartsCountExceeded { actual, .. } => {
                    Error::TooLong { segments: actual }
                }
                _ => Error::Unencodable(alphabet),
            })?,
        Alphabet::Latin1 => Latin1::new()
            .concatenate(text, OCTETS_MAX, udh_len)
            .map(|(c, _)| c)
            .map_err(|e| match e {
                Latin1ConcatenateError::PartsCountExceeded { actual, .. } => {
                    Error::TooLong { segments: actual }
                }
                _ => Error::Unencodable(alphabet),
            })?,
        Alphabet::Ucs2 => utf16_parts(text, OCTETS_MAX - udh_len)?,
        Alphabet::Binary => return Err(Error::Unencodable(alphabet)),
    };
    let data_coding = alphabet.data_coding();
    let bodies = match concatenation {
        Concatenation::Single(bytes) => {
            return Ok(EncodedParts {
                data_coding,
                parts: vec![bytes],
                udhi: false,
            })
        }
        Concatenation::Concatenated(bodies) => bodies,
    };
    let total = u8::try_from(bodies.len()).map_err(|_| Error::TooLong {
        segments: bodies.len(),
    })?;
    let parts = bodies
        .into_iter()
        .zip(1..=total)
        .map(|(body, number)| {
            let udh = kind.concatenated_short_message_unchecked(total, number);
            let mut part = Vec::with_capacity(udh_len + body.len());
            part.extend_from_slice(udh.udh_bytes().as_bytes());
            part.extend_from_slice(&body);
            part
        })
        .collect();
    Ok(EncodedParts {
        data_coding,
        parts,
        udhi: true,
    })
}

/// `text` as UTF-16BE: whole when it fits [`OCTETS_MAX`], else in bodies of
/// at most `body_max` octets cut between characters.
fn utf16_parts(text: &str, body_max: usize) -> Result<Concatenation, Error> {
    let mut encoded = Vec::with_capacity(text.len() * 2);
    for unit in text.encode_utf16() {
        encoded.extend_from_slice(&unit.to_be_bytes());
    }
    if encoded.len() <= OCTETS_MAX {
        return Ok(Concatenation::Single(encoded));
    }
    let mut bodies = Vec::new();
    let (mut start, mut end) = (0, 0);
    for c in text.chars() {
        let len = c.len_utf16() * 2;
        if end + len - start > body_max {
            bodies.push(encoded[start..end].to_vec());
            start = end;
        }
        end += len;
    }
    if end > start {
        bodies.push(encoded[start..end].to_vec());
    }
    if bodies.len() > PARTS_MAX {
        return Err(Error::TooLong {
            segments: bodies.len(),
        });
    }
    Ok(Concatenation::Concatenated(bodies))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_units, parse_udh, part_units, Gsm7Packing};

    fn decode_ucs2(bytes: &[u8]) -> String {
        decode_units(Alphabet::Ucs2, bytes).expect("even")
    }

    #[test]
    fn cyrillic_goes_ucs2_and_splits() {
        let text = "ВХОД*123-456-789 ".repeat(10);
        assert_eq!(Alphabet::auto(&text), Alphabet::Ucs2);
        let encoded = encode_parts(&text, Alphabet::Ucs2, 7).unwrap();
        assert_eq!(encoded.data_coding, 8);
        assert!(encoded.udhi);
        assert_eq!(encoded.parts.len(), 3);
        let mut units = Vec::new();
        for part in &encoded.parts {
            let (info, header_len) = parse_udh(part).unwrap();
            assert_eq!(info.map(|i| i.total), Some(3));
            units.extend(part_units(
                Alphabet::Ucs2,
                Gsm7Packing::Auto,
                part,
                header_len,
            ));
        }
        assert_eq!(decode_units(Alphabet::Ucs2, &units).unwrap(), text);
    }

    #[test]
    fn latin_text_stays_gsm7() {
        let encoded =
            encode_parts("ENTER*123-456-789", Alphabet::auto("ENTER*123-456-789"), 1).unwrap();
        assert_eq!(encoded.data_coding, 0);
        assert_eq!(encoded.parts, vec![b"ENTER*123-456-789".to_vec()]);
    }

    #[test]
    fn long_gsm7_splits_at_153() {
        let text = "a".repeat(200);
        let encoded = encode_parts(&text, Alphabet::Gsm7, 1).unwrap();
        assert_eq!(encoded.parts.len(), 2);
        assert_eq!(encoded.parts[0].len(), 6 + 153);
    }

    #[test]
    fn encoding_is_chosen_by_alphabet() {
        let table = [
            ("hello", 0),
            ("price 5€ [ok]", 0),
            ("ВХОД*123-456-789", 8),
            ("emoji 🙂", 8),
        ];
        for (text, expected) in table {
            assert_eq!(
                encode_auto(text, 1).unwrap().data_coding,
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn escapes_count_twice() {
        let text = "{".repeat(80);
        assert_eq!(encode_auto(&text, 1).map(|s| s.parts.len()), Ok(1));
        let text = "{".repeat(81);
        let parts = encode_auto(&text, 1).expect("fits").parts;
        assert_eq!(parts.len(), 2);
        // No escape pair is cut: every body has an even number of septets.
        for s in &parts {
            assert_eq!((s.len() - 6) % 2, 0);
        }
    }

    #[test]
    fn limits_of_single_and_concatenated_messages() {
        let table = [
            ("a".repeat(160), 1),
            ("a".repeat(161), 2),
            ("a".repeat(306), 2),
            ("a".repeat(307), 3),
            ("ж".repeat(70), 1),
            ("ж".repeat(71), 2),
            ("ж".repeat(134), 2),
            ("ж".repeat(135), 3),
        ];
        for (text, parts) in table {
            let encoded = encode_auto(&text, 7).expect("fits");
            assert_eq!(encoded.parts.len(), parts, "{} chars", text.chars().count());
        }
    }

    #[test]
    fn udh_of_each_part_counts_parts() {
        let encoded = encode_auto(&"ж".repeat(135), 0x2a).expect("fits");
        assert!(encoded.udhi);
        assert_eq!(encoded.data_coding, 8);
        for (i, s) in encoded.parts.iter().enumerate() {
            assert_eq!(&s[..6], &[5, 0, 3, 0x2a, 3, i as u8 + 1]);
        }
        let joined: Vec<u8> = encoded.parts.iter().flat_map(|s| s[6..].to_vec()).collect();
        assert_eq!(decode_ucs2(&joined), "ж".repeat(135));
    }

    #[test]
    fn surrogate_pairs_stay_whole() {
        let text = format!("{}🙂{}", "ж".repeat(66), "ж".repeat(5));
        let parts = encode_auto(&text, 1).expect("fits").parts;
        assert_eq!(parts.len(), 2);
        assert_eq!(decode_ucs2(&parts[0][6..]), "ж".repeat(66));
        assert_eq!(decode_ucs2(&parts[1][6..]), format!("🙂{}", "ж".repeat(5)));
    }

    #[test]
    fn too_many_parts_are_refused_with_the_count() {
        assert_eq!(
            encode_auto(&"a".repeat(153 * 256), 1),
            Err(Error::TooLong { segments: 256 })
        );
        assert_eq!(
            encode_auto(&"ж".repeat(67 * 256), 1),
            Err(Error::TooLong { segments: 256 })
        );
        assert_eq!(
            encode_auto(&"ж".repeat(67 * 255), 1).map(|p| p.parts.len()),
            Ok(255)
        );
    }

    proptest::proptest! {
        #[test]
        fn parts_join_back_into_the_text(text in "\\PC{0,400}", reference in proptest::num::u8::ANY) {
            let encoded = encode_auto(&text, reference).expect("at most 400 characters fit");
            let alphabet = Alphabet::from_data_coding(encoded.data_coding).expect("known");
            let mut units = Vec::new();
            for part in &encoded.parts {
                let header_len = if encoded.udhi { parse_udh(part).expect("udh").1 } else { 0 };
                let limit = if alphabet == Alphabet::Gsm7 { GSM7_SEPTETS_MAX } else { OCTETS_MAX };
                proptest::prop_assert!(part.len() <= limit);
                units.extend(part_units(alphabet, Gsm7Packing::Unpacked, part, header_len));
            }
            proptest::prop_assert_eq!(decode_units(alphabet, &units).expect("decodes"), text);
        }
    }
}
