//! Text ⇄ short message octets as the link uses them: a text split into
//! `submit_sm` segments (GSM 7-bit when it fits, UCS2 otherwise,
//! concatenated behind a UDH), an MO part's UDH read, and MO text decoded
//! under the `[smsc]` default alphabet. The work is done once, for the
//! simulator too, in `smpp-text`; this module adapts it to the link's types.
//!
//! No I/O here and nothing about PDUs: `Link::enqueue` turns segments into
//! `submit_sm` bodies with `rusmpp`.

use smpp_text::Alphabet;

use crate::config::DefaultAlphabet;

/// One `short_message` ready for a `submit_sm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// `data_coding` of the segment.
    pub data_coding: u8,
    /// True when `short_message` begins with a UDH (`esm_class` UDHI bit).
    pub udhi: bool,
    /// The octets: UDH (if any) then the encoded text.
    pub short_message: Vec<u8>,
}

/// A text too long for 255 segments (`Link::submit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// Segments the text would need.
    pub segments: usize,
}

/// Splits `text` into segments: one without UDH when it fits, else
/// concatenated parts with an 8-bit reference `reference`. An escape pair
/// and a UTF-16 surrogate pair are never cut.
pub fn split(text: &str, reference: u8) -> Result<Vec<Segment>, TooLong> {
    // UCS2 encodes every text: too many parts is the only failure.
    let encoded = smpp_text::encode_auto(text, reference).map_err(|e| TooLong {
        segments: match e {
            smpp_text::Error::TooLong { segments } => segments,
            _ => 0,
        },
    })?;
    let (data_coding, udhi) = (encoded.data_coding, encoded.udhi);
    Ok(encoded
        .parts
        .into_iter()
        .map(|short_message| Segment {
            data_coding,
            udhi,
            short_message,
        })
        .collect())
}

/// Where a part sits in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartInfo {
    /// Concatenation reference (8- or 16-bit).
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's number, from 1.
    pub seq: u8,
}

/// Reads the UDH at the start of `message`: the concatenation info it
/// carries (IE 0x00 or 0x08) and the offset of the text after it. `None`
/// when the header is malformed.
pub fn parse_udh(message: &[u8]) -> Option<(Option<PartInfo>, usize)> {
    let (info, offset) = smpp_text::parse_udh(message).ok()?;
    let info = info.map(|i| PartInfo {
        reference: i.reference,
        total: i.total,
        seq: i.number,
    });
    Some((info, offset))
}

/// Decodes `bytes` labelled `data_coding` (`default`: what 0 means for this
/// SMSC), recognizing UCS2 that was labelled otherwise; never fails.
pub fn decode(data_coding: u8, bytes: &[u8], default: DefaultAlphabet) -> String {
    let zero = match default {
        DefaultAlphabet::Gsm7 => Alphabet::Gsm7,
        DefaultAlphabet::Latin1 => Alphabet::Latin1,
    };
    smpp_text::decode_lenient(data_coding, bytes, zero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_carry_the_coding_and_the_udh() {
        let segments = split(&"ж".repeat(135), 0x2a).expect("fits");
        assert_eq!(segments.len(), 3);
        for (i, s) in segments.iter().enumerate() {
            assert!(s.udhi);
            assert_eq!(s.data_coding, 8);
            assert_eq!(&s.short_message[..6], &[5, 0, 3, 0x2a, 3, i as u8 + 1]);
        }
        assert_eq!(
            split("hello", 1),
            Ok(vec![Segment {
                data_coding: 0,
                udhi: false,
                short_message: b"hello".to_vec()
            }])
        );
        assert_eq!(
            split(&"a".repeat(153 * 256), 1),
            Err(TooLong { segments: 256 })
        );
    }

    #[test]
    fn udh_parts_use_the_link_names() {
        assert_eq!(
            parse_udh(&[5, 0, 3, 9, 3, 2, b'x']),
            Some((
                Some(PartInfo {
                    reference: 9,
                    total: 3,
                    seq: 2
                }),
                6
            ))
        );
        assert_eq!(parse_udh(&[9, 0, 3]), None);
    }

    #[test]
    fn zero_means_the_configured_default() {
        assert_eq!(decode(0, &[0x00], DefaultAlphabet::Gsm7), "@");
        assert_eq!(decode(0, &[0xe9], DefaultAlphabet::Latin1), "é");
    }
}
