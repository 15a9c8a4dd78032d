//! Text ⇄ short message octets: GSM 03.38 7-bit (one septet per octet, as
//! SMPP carries it), UCS2 (UTF-16BE), Latin-1 and IA5; splitting long texts
//! into concatenated segments with a UDH; reading the UDH of incoming parts.
//!
//! No I/O here and nothing about PDUs: `Link::enqueue` turns segments into
//! `submit_sm` bodies with `rusmpp`.

use crate::config::DefaultAlphabet;

/// The GSM 03.38 default alphabet, indexed by septet.
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

/// The escape septet that introduces the extension table.
const GSM7_ESCAPE: u8 = 0x1b;

/// The GSM 03.38 extension table: (septet after the escape, character).
const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0a, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2f, '\\'),
    (0x3c, '['),
    (0x3d, '~'),
    (0x3e, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Septets of a single GSM 7-bit message.
pub const GSM7_SINGLE_SEPTETS_MAX: usize = 160;
/// Septets of one GSM 7-bit segment after a 6-octet concatenation UDH.
pub const GSM7_SEGMENT_SEPTETS_MAX: usize = 153;
/// UTF-16 code units of a single UCS2 message.
pub const UCS2_SINGLE_UNITS_MAX: usize = 70;
/// UTF-16 code units of one UCS2 segment after a 6-octet UDH.
pub const UCS2_SEGMENT_UNITS_MAX: usize = 67;
/// Segments of one concatenated message (the UDH counts them in one octet).
pub const SEGMENTS_MAX: usize = 255;

/// How a text is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 03.38 default alphabet, `data_coding` 0.
    Gsm7,
    /// UCS2 / UTF-16BE, `data_coding` 8.
    Ucs2,
}

impl Encoding {
    /// The `data_coding` value.
    pub fn data_coding(self) -> u8 {
        match self {
            Self::Gsm7 => 0x00,
            Self::Ucs2 => 0x08,
        }
    }
}

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

/// No GSM septet: marks an ASCII character outside the basic table.
const NOT_GSM7: u8 = 0xff;

/// The basic-table septet of every ASCII character ([`NOT_GSM7`] when it
/// has none), derived from [`GSM7_BASIC`] at compile time.
const GSM7_ASCII: [u8; 128] = {
    let mut table = [NOT_GSM7; 128];
    let mut i = 0;
    while i < 128 {
        let c = GSM7_BASIC[i] as u32;
        if c < 128 && i as u8 != GSM7_ESCAPE && table[c as usize] == NOT_GSM7 {
            table[c as usize] = i as u8;
        }
        i += 1;
    }
    table
};

/// The largest character of the basic table: nothing above it is there.
const GSM7_BASIC_MAX: char = {
    let mut max = GSM7_BASIC[0];
    let mut i = 1;
    while i < GSM7_BASIC.len() {
        if GSM7_BASIC[i] as u32 > max as u32 {
            max = GSM7_BASIC[i];
        }
        i += 1;
    }
    max
};

/// The GSM septets of `c`: one, two (escape + extension), or none when it
/// is not in the alphabet.
fn gsm7_septets(c: char) -> Option<([u8; 2], usize)> {
    if c.is_ascii() {
        let septet = GSM7_ASCII[c as usize];
        if septet != NOT_GSM7 {
            return Some(([septet, 0], 1));
        }
    } else if c <= GSM7_BASIC_MAX {
        if let Some(i) = GSM7_BASIC.iter().position(|&b| b == c) {
            if i as u8 != GSM7_ESCAPE {
                return Some(([i as u8, 0], 1));
            }
        }
    }
    GSM7_EXTENSION
        .iter()
        .find(|(_, e)| *e == c)
        .map(|(s, _)| ([GSM7_ESCAPE, *s], 2))
}

/// The text as unpacked GSM septets, or `None` when a character is outside
/// the GSM 03.38 alphabet (extension characters take two septets).
pub fn encode_gsm7(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (septets, n) = gsm7_septets(c)?;
        out.extend_from_slice(&septets[..n]);
    }
    Some(out)
}

/// GSM 7-bit when every character fits the alphabet, UCS2 otherwise.
pub fn choose_encoding(text: &str) -> Encoding {
    if text.chars().all(|c| gsm7_septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// A text too long for [`SEGMENTS_MAX`] segments (`Link::submit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// Segments the text would need.
    pub segments: usize,
}

/// Splits `text` into segments: one without UDH when it fits, else
/// concatenated parts with an 8-bit reference `reference`. An escape pair
/// and a UTF-16 surrogate pair are never cut.
pub fn split(text: &str, reference: u8) -> Result<Vec<Segment>, TooLong> {
    let encoding = choose_encoding(text);
    let (single_max, segment_max) = match encoding {
        Encoding::Gsm7 => (GSM7_SINGLE_SEPTETS_MAX, GSM7_SEGMENT_SEPTETS_MAX),
        Encoding::Ucs2 => (UCS2_SINGLE_UNITS_MAX * 2, UCS2_SEGMENT_UNITS_MAX * 2),
    };
    // The whole text encoded, and where each character ends: a character
    // (an escape pair, a surrogate pair) is never cut.
    let encode = |c: char, encoded: &mut Vec<u8>| match encoding {
        Encoding::Gsm7 => match gsm7_septets(c) {
            Some((septets, n)) => encoded.extend_from_slice(&septets[..n]),
            None => encoded.push(0x3f),
        },
        Encoding::Ucs2 => {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                encoded.extend_from_slice(&unit.to_be_bytes());
            }
        }
    };
    let mut encoded = Vec::with_capacity(text.len() * 2);
    match encoding {
        Encoding::Gsm7 => {
            for c in text.chars() {
                match gsm7_septets(c) {
                    Some(([septet, _], 1)) => encoded.push(septet),
                    Some(([escape, septet], _)) => {
                        encoded.push(escape);
                        encoded.push(septet);
                    }
                    None => encoded.push(0x3f),
                }
            }
        }
        Encoding::Ucs2 => {
            for unit in text.encode_utf16() {
                let [high, low] = unit.to_be_bytes();
                encoded.push(high);
                encoded.push(low);
            }
        }
    }
    let data_coding = encoding.data_coding();
    if encoded.len() <= single_max {
        return Ok(vec![Segment {
            data_coding,
            udhi: false,
            short_message: encoded,
        }]);
    }
    // Where each character ends, for the cuts.
    let mut ends = Vec::with_capacity(text.len());
    let mut scratch = Vec::with_capacity(4);
    let mut at = 0;
    for c in text.chars() {
        scratch.clear();
        encode(c, &mut scratch);
        at += scratch.len();
        ends.push(at);
    }
    let mut bodies: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut last_end = 0;
    for &end in &ends {
        if end - start > segment_max {
            bodies.push(&encoded[start..last_end]);
            start = last_end;
        }
        last_end = end;
    }
    if last_end > start {
        bodies.push(&encoded[start..last_end]);
    }
    if bodies.len() > SEGMENTS_MAX {
        return Err(TooLong {
            segments: bodies.len(),
        });
    }
    let count = bodies.len() as u8;
    Ok(bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut short_message = Vec::with_capacity(6 + body.len());
            short_message.extend_from_slice(&[0x05, 0x00, 0x03, reference, count, i as u8 + 1]);
            short_message.extend_from_slice(body);
            Segment {
                data_coding,
                udhi: true,
                short_message,
            }
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
    let udhl = usize::from(*message.first()?);
    let header = message.get(1..1 + udhl)?;
    let mut info = None;
    let mut at = 0;
    while at + 2 <= header.len() {
        let id = header[at];
        let len = usize::from(header[at + 1]);
        let value = header.get(at + 2..at + 2 + len)?;
        match (id, value) {
            (0x00, &[reference, total, seq]) => {
                info = Some(PartInfo {
                    reference: u16::from(reference),
                    total,
                    seq,
                });
            }
            (0x08, &[hi, lo, total, seq]) => {
                info = Some(PartInfo {
                    reference: u16::from_be_bytes([hi, lo]),
                    total,
                    seq,
                });
            }
            _ => {}
        }
        at += 2 + len;
    }
    Some((info, 1 + udhl))
}

/// Decodes unpacked GSM septets (unknown escapes become a space).
pub fn decode_gsm7(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut escaped = false;
    for &s in septets {
        let s = s & 0x7f;
        if escaped {
            escaped = false;
            let c = GSM7_EXTENSION
                .iter()
                .find(|(e, _)| *e == s)
                .map_or(' ', |(_, c)| *c);
            out.push(c);
        } else if s == GSM7_ESCAPE {
            escaped = true;
        } else {
            out.push(GSM7_BASIC[usize::from(s)]);
        }
    }
    out
}

/// Decodes UTF-16BE (lone surrogates become U+FFFD; an odd last octet is dropped).
pub fn decode_ucs2(bytes: &[u8]) -> String {
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Decodes ISO-8859-1.
pub fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
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

/// The alphabet a `data_coding` value announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// GSM 7-bit, unpacked.
    Gsm7,
    /// IA5 / ASCII.
    Ia5,
    /// ISO-8859-1.
    Latin1,
    /// UCS2.
    Ucs2,
    /// 8-bit binary: shown as Latin-1.
    Binary,
}

/// The alphabet of `data_coding` (SMPP 3.4 §5.2.19 and GSM 03.38 coding
/// groups); `default` says what 0 means for this SMSC.
pub fn alphabet(data_coding: u8, default: DefaultAlphabet) -> Alphabet {
    match data_coding {
        0x00 => match default {
            DefaultAlphabet::Gsm7 => Alphabet::Gsm7,
            DefaultAlphabet::Latin1 => Alphabet::Latin1,
        },
        0x01 => Alphabet::Ia5,
        0x03 => Alphabet::Latin1,
        0x08 => Alphabet::Ucs2,
        0x02 | 0x04 => Alphabet::Binary,
        // General data coding groups: bits 3..2 name the alphabet.
        0x10..=0x3f | 0xc0..=0xef => match (data_coding >> 2) & 0x03 {
            0 => Alphabet::Gsm7,
            1 => Alphabet::Binary,
            _ => Alphabet::Ucs2,
        },
        // Message class group: bit 2 says 8-bit data.
        0xf0..=0xff if data_coding & 0x04 != 0 => Alphabet::Binary,
        0xf0..=0xff => Alphabet::Gsm7,
        _ => Alphabet::Latin1,
    }
}

/// Decodes `bytes` labelled `data_coding`, recognizing UCS2 that was
/// labelled otherwise.
pub fn decode(data_coding: u8, bytes: &[u8], default: DefaultAlphabet) -> String {
    let alphabet = alphabet(data_coding, default);
    if alphabet != Alphabet::Ucs2 && looks_like_ucs2(bytes) {
        return decode_ucs2(bytes);
    }
    match alphabet {
        Alphabet::Gsm7 if bytes.iter().any(|&b| b >= 0x80) => decode_latin1(bytes),
        Alphabet::Gsm7 => decode_gsm7(bytes),
        Alphabet::Ucs2 => decode_ucs2(bytes),
        Alphabet::Ia5 | Alphabet::Latin1 | Alphabet::Binary => decode_latin1(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_septet_lookup_matches_a_scan_of_both_tables() {
        let scan = |c: char| -> Option<([u8; 2], usize)> {
            if let Some(i) = GSM7_BASIC.iter().position(|&b| b == c) {
                if i as u8 != GSM7_ESCAPE {
                    return Some(([i as u8, 0], 1));
                }
            }
            GSM7_EXTENSION
                .iter()
                .find(|(_, e)| *e == c)
                .map(|(s, _)| ([GSM7_ESCAPE, *s], 2))
        };
        for c in (0u32..0x3_0000).filter_map(char::from_u32) {
            assert_eq!(gsm7_septets(c), scan(c), "{c:?}");
        }
    }

    #[test]
    fn encoding_is_chosen_by_alphabet() {
        let table = [
            ("hello", Encoding::Gsm7),
            ("price 5€ [ok]", Encoding::Gsm7),
            ("ВХОД*123-456-789", Encoding::Ucs2),
            ("emoji 🙂", Encoding::Ucs2),
        ];
        for (text, expected) in table {
            assert_eq!(choose_encoding(text), expected, "{text}");
        }
    }

    #[test]
    fn escapes_count_twice() {
        assert_eq!(encode_gsm7("{}").map(|s| s.len()), Some(4));
        let text = "{".repeat(80);
        assert_eq!(split(&text, 1).map(|s| s.len()), Ok(1));
        let text = "{".repeat(81);
        let segments = split(&text, 1).expect("fits");
        assert_eq!(segments.len(), 2);
        // No escape pair is cut: every body has an even number of septets.
        for s in &segments {
            assert_eq!((s.short_message.len() - 6) % 2, 0);
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
            let segments = split(&text, 7).expect("fits");
            assert_eq!(segments.len(), parts, "{} chars", text.chars().count());
        }
    }

    #[test]
    fn udh_of_each_segment_counts_parts() {
        let segments = split(&"ж".repeat(135), 0x2a).expect("fits");
        for (i, s) in segments.iter().enumerate() {
            assert!(s.udhi);
            assert_eq!(s.data_coding, 8);
            assert_eq!(&s.short_message[..6], &[5, 0, 3, 0x2a, 3, i as u8 + 1]);
        }
        let joined: Vec<u8> = segments
            .iter()
            .flat_map(|s| s.short_message[6..].to_vec())
            .collect();
        assert_eq!(decode_ucs2(&joined), "ж".repeat(135));
    }

    #[test]
    fn surrogate_pairs_stay_whole() {
        let text = format!("{}🙂{}", "ж".repeat(66), "ж".repeat(5));
        let segments = split(&text, 1).expect("fits");
        assert_eq!(segments.len(), 2);
        assert_eq!(decode_ucs2(&segments[0].short_message[6..]), "ж".repeat(66));
        assert_eq!(
            decode_ucs2(&segments[1].short_message[6..]),
            format!("🙂{}", "ж".repeat(5))
        );
    }

    #[test]
    fn udh_with_8_and_16_bit_references() {
        let eight = [5, 0, 3, 9, 3, 2, b'x'];
        assert_eq!(
            parse_udh(&eight),
            Some((
                Some(PartInfo {
                    reference: 9,
                    total: 3,
                    seq: 2
                }),
                6
            ))
        );
        let sixteen = [6, 8, 4, 0x12, 0x34, 3, 1, b'x'];
        assert_eq!(
            parse_udh(&sixteen),
            Some((
                Some(PartInfo {
                    reference: 0x1234,
                    total: 3,
                    seq: 1
                }),
                7
            ))
        );
        assert_eq!(parse_udh(&[9, 0, 3]), None);
    }

    #[test]
    fn decoding_by_data_coding() {
        let ucs2: Vec<u8> = "Привет"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        let gsm = DefaultAlphabet::Gsm7;
        let table: [(u8, &[u8], DefaultAlphabet, &str); 7] = [
            (0, b"Hello", gsm, "Hello"),
            (0, &[0x00, 0x1b, 0x65], gsm, "@€"),
            (0, &[0xe9], DefaultAlphabet::Latin1, "é"),
            (1, b"abc", gsm, "abc"),
            (3, &[0xe9, 0x74, 0xe9], gsm, "été"),
            (8, &ucs2, gsm, "Привет"),
            // UCS2 labelled as the default alphabet.
            (0, &ucs2, gsm, "Привет"),
        ];
        for (dc, bytes, default, expected) in table {
            assert_eq!(decode(dc, bytes, default), expected, "dc {dc}");
        }
    }
}
