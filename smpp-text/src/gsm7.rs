//! GSM 03.38 default alphabet: the tables for reading septets, and the
//! unpacking of septets packed 8 into 7 octets. Encoding goes through
//! `rusmpp-extra` ([`encode`]); its tables are checked against these below.

use rusmpp::extra::encoding::gsm7bit::Gsm7BitUnpacked;

/// The GSM 03.38 default alphabet, indexed by septet.
pub const BASIC: [char; 128] = [
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
pub const ESCAPE: u8 = 0x1b;

/// The GSM 03.38 extension table: (septet after the escape, character).
pub const EXTENSION: [(u8, char); 10] = [
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

/// The extension-table character of `septet` (read after an escape).
pub fn extension(septet: u8) -> Option<char> {
    EXTENSION
        .iter()
        .find(|(s, _)| *s == septet)
        .map(|(_, c)| *c)
}

/// The text as unpacked septets (one per octet, as SMPP carries them), or
/// `None` when a character is outside the alphabet. Extension characters
/// take two septets.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    Gsm7BitUnpacked::new().encode_to_vec(text).ok()
}

/// Decodes unpacked septets (one per octet; the top bit is ignored). An
/// escape before a septet the extension table lacks reads as that septet's
/// basic character, as GSM 03.38 tells a phone to show it; a trailing
/// escape is dropped.
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut escaped = false;
    for &s in septets {
        let s = s & 0x7f;
        if escaped {
            escaped = false;
            out.push(extension(s).unwrap_or(BASIC[usize::from(s)]));
        } else if s == ESCAPE {
            escaped = true;
        } else {
            out.push(BASIC[usize::from(s)]);
        }
    }
    out
}

/// Unpacks septets packed 8 into 7 octets, skipping the first
/// `skip_septets` (a UDH and its fill bits).
pub fn unpack(packed: &[u8], skip_septets: usize) -> Vec<u8> {
    let count = packed.len() * 8 / 7;
    let mut out = Vec::with_capacity(count.saturating_sub(skip_septets));
    for i in skip_septets..count {
        let bit = i * 7;
        let byte = bit / 8;
        let shift = bit % 8;
        let lo = u16::from(packed.get(byte).copied().unwrap_or(0));
        let hi = u16::from(packed.get(byte + 1).copied().unwrap_or(0));
        let word = lo | (hi << 8);
        out.push(((word >> shift) & 0x7f) as u8);
    }
    // A trailing zero septet that only fills the last octet is padding.
    if packed.len() % 7 == 0 && out.last() == Some(&0) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The septets of `c` by a scan of both tables.
    fn scan(c: char) -> Option<Vec<u8>> {
        if let Some(i) = BASIC.iter().position(|&b| b == c) {
            if i as u8 != ESCAPE {
                return Some(vec![i as u8]);
            }
        }
        EXTENSION
            .iter()
            .find(|(_, e)| *e == c)
            .map(|(s, _)| vec![ESCAPE, *s])
    }

    #[test]
    fn the_encoder_matches_a_scan_of_both_tables() {
        // rusmpp-extra encodes, these tables decode: they must agree, but
        // for the form feed (extension 0x0A), which rusmpp-extra lacks: a
        // text with one goes out in UCS2.
        for c in (0u32..0x3_0000).filter_map(char::from_u32) {
            if c == '\u{c}' {
                assert_eq!(encode(&c.to_string()), None);
                assert_eq!(decode(&scan(c).expect("in the table")), "\u{c}");
                continue;
            }
            assert_eq!(encode(&c.to_string()), scan(c), "{c:?}");
        }
    }

    #[test]
    fn escapes_count_twice() {
        assert_eq!(encode("{}").map(|s| s.len()), Some(4));
    }

    #[test]
    fn unpacked_with_escape() {
        assert_eq!(decode(&[0x48, 0x69, 0x1B, 0x65, 0x00]), "Hi€@");
    }

    #[test]
    fn an_unknown_escape_reads_as_the_basic_character() {
        assert_eq!(decode(&[0x1b, 0x41, 0x1b]), "A");
    }

    #[test]
    fn packed_hello() {
        // "hellohello" packed, from the GSM 03.38 worked example.
        let packed = [0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37];
        assert_eq!(decode(&unpack(&packed, 0)), "hellohello");
    }

    proptest::proptest! {
        #[test]
        fn encode_then_decode_is_the_text(text in "[ -_a-z{-~£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà€\n\r]{0,200}") {
            let septets = encode(&text).expect("every character is in the alphabet");
            proptest::prop_assert_eq!(decode(&septets), text);
        }

        #[test]
        fn any_septets_decode_without_panic(septets in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = decode(&septets);
            let _ = unpack(&septets, 3);
        }
    }
}
