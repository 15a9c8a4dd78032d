//! First pass: folds every char of an MO text to one *symbol* byte, so the grammar
//! in `grammar.rs` sees a single small alphabet instead of the many ways an old
//! phone (or a copy from a web page) can spell the same thing.
//!
//! The fold is where all the Unicode tolerance lives: case, Latin/Cyrillic
//! look-alikes, Unicode spaces and dashes, full-width and Arabic-Indic digits,
//! invisible characters. Doing it here keeps the grammar a plain byte grammar and
//! keeps the hot path free of allocation: the symbols go into a fixed buffer on
//! the caller's stack.

/// The longest text, in chars, that the parser reads (invisible chars, which it
/// drops, do not count). Three concatenated UCS-2 SMS parts are 201 chars;
/// nothing a person types to 7377 on purpose is longer, and a bound keeps the
/// stack buffer fixed and the work per message small. A longer text is
/// [`Command::Unrecognized`](crate::Command::Unrecognized).
pub const TEXT_CHARS_MAX: usize = 256;

/// A char that is numeric in Unicode (`char::is_numeric`) but that we do not read
/// as a decimal digit (superscripts, circled numbers, fractions, other scripts).
/// It is kept distinct from [`OTHER`] so that it can never hide next to a code:
/// a message with one of these anywhere is never a check-in.
pub(crate) const FOREIGN_DIGIT: u8 = 0xFF;

/// Any other char: letters of other scripts, emoji, symbols outside ASCII.
pub(crate) const OTHER: u8 = 0xFE;

/// The symbol of a Cyrillic capital letter (`А`..=`Я`).
///
/// Letters that look like a Latin capital fold to that Latin capital (`В` → `B`,
/// `Х` → `X`, ...), because people mix the two alphabets freely and cannot see the
/// difference; every other Cyrillic letter gets its own byte `0x80 + offset`, so
/// `Д` and `D` stay different symbols (the grammar accepts both where it wants to).
pub(crate) const fn cyr(c: char) -> u8 {
    let offset = c as u32 - 'А' as u32;
    assert!(offset < 32, "not a Cyrillic capital letter А..=Я");
    CYRILLIC[offset as usize]
}

/// Whether a symbol is a letter: a Latin capital or a Cyrillic capital without a
/// Latin look-alike.
pub(crate) const fn is_letter(symbol: u8) -> bool {
    symbol.is_ascii_uppercase() || (symbol >= 0x80 && symbol < 0xA0)
}

/// Symbols of `А`..=`Я`, indexed by the offset from `А`.
const CYRILLIC: [u8; 32] = {
    let mut table = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        table[i] = 0x80 + i as u8;
        i += 1;
    }
    // The look-alikes: the capitals a reader cannot tell from Latin ones.
    let look_alikes: [(char, u8); 12] = [
        ('А', b'A'),
        ('В', b'B'),
        ('Е', b'E'),
        ('К', b'K'),
        ('М', b'M'),
        ('Н', b'H'),
        ('О', b'O'),
        ('Р', b'P'),
        ('С', b'C'),
        ('Т', b'T'),
        ('У', b'Y'),
        ('Х', b'X'),
    ];
    let mut j = 0;
    while j < look_alikes.len() {
        let (c, latin) = look_alikes[j];
        table[(c as u32 - 'А' as u32) as usize] = latin;
        j += 1;
    }
    table
};

/// A buffer for the symbols of one text, kept by the caller on its stack.
pub(crate) type Buffer = [u8; TEXT_CHARS_MAX];

/// Folds `text` to symbols in `buf` and returns them; `None` if it has more than
/// [`TEXT_CHARS_MAX`] visible chars (such a text is never a command).
///
/// This loop is most of the parser's time, so it reads bytes, not chars: ASCII
/// and the two-byte Cyrillic block (UTF-8 lead byte `0xD0`/`0xD1`), which are
/// nearly every byte of nearly every message, go through tables; only other
/// chars are decoded and go through [`symbol`]. The tables are [`symbol`]
/// precomputed, and a test holds them equal.
pub(crate) fn normalize<'b>(text: &str, buf: &'b mut Buffer) -> Option<&'b [u8]> {
    let mut len = 0;
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(&lead) = bytes.get(at) {
        let symbol = match lead {
            0x00..=0x7F => {
                at += 1;
                Some(ASCII[usize::from(lead)])
            }
            // `text` is valid UTF-8, so a `0xD0`/`0xD1` lead byte has its
            // continuation byte: together they are U+0400..=U+047F.
            0xD0 | 0xD1 => {
                let offset = usize::from(lead & 0x01) << 6 | usize::from(bytes[at + 1] & 0x3F);
                at += 2;
                Some(CYRILLIC_BLOCK[offset])
            }
            _ => {
                let c = text[at..].chars().next().expect("at is on a char boundary");
                at += c.len_utf8();
                symbol(c)
            }
        };
        let Some(symbol) = symbol else { continue };
        *buf.get_mut(len)? = symbol;
        len += 1;
    }
    Some(&buf[..len])
}

/// [`symbol`] of U+0000..=U+007F. No ASCII char is invisible.
const ASCII: [u8; 128] = {
    let mut table = [OTHER; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = match c {
            b'0'..=b'9' | b'A'..=b'Z' => c,
            b'a'..=b'z' => c.to_ascii_uppercase(),
            // `\x0B` and `\x0C` are Unicode white space too.
            b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r' => b' ',
            b'!'..=b'/' | b':'..=b'@' | b'['..=b'`' | b'{'..=b'~' => c,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// [`symbol`] of U+0400..=U+047F, the chars whose UTF-8 starts `0xD0`/`0xD1`.
/// None of them is invisible, white space or numeric.
const CYRILLIC_BLOCK: [u8; 128] = {
    let mut table = [OTHER; 128];
    let mut i = 0;
    while i < 32 {
        table[0x10 + i] = CYRILLIC[i]; // А..=Я
        table[0x30 + i] = CYRILLIC[i]; // а..=я
        i += 1;
    }
    table[0x01] = b'E'; // Ё
    table[0x51] = b'E'; // ё
    table[0x06] = b'I'; // І
    table[0x56] = b'I'; // і
    table
};

/// The symbol of one char, or `None` for a char that is invisible and so cannot
/// have been meant (zero-width spaces and joiners, BOM, soft hyphen, direction
/// marks that phones insert around Arabic-Indic digits).
///
/// This is the definition; [`normalize`] uses tables for the common chars.
fn symbol(c: char) -> Option<u8> {
    let symbol = match c {
        '0'..='9' | 'A'..='Z' => c as u8,
        'a'..='z' => c.to_ascii_uppercase() as u8,
        ' ' | '\t' | '\n' | '\r' => b' ',
        '!'..='/' | ':'..='@' | '['..='`' | '{'..='~' => c as u8,
        'А'..='Я' => cyr(c),
        'а'..='я' => CYRILLIC[(c as u32 - 'а' as u32) as usize],
        'Ё' | 'ё' => b'E',
        // Ukrainian and Belarusian `І` is the Latin `I` on screen.
        'І' | 'і' => b'I',
        // Full-width forms (`１２３`, `＊`, `ＶＨＯＤ`) as typed by CJK keyboards and
        // some SMS apps: the same chars as ASCII `!`..=`~`, shifted.
        '\u{FF01}'..='\u{FF5E}' => {
            let ascii = (c as u32 - 0xFF01 + 0x21) as u8;
            return symbol(char::from(ascii));
        }
        // Arabic-Indic and Extended Arabic-Indic (Persian, Urdu) digits: the same
        // ten digits in another script, unambiguous, so read as digits.
        '\u{0660}'..='\u{0669}' => b'0' + (c as u32 - 0x0660) as u8,
        '\u{06F0}'..='\u{06F9}' => b'0' + (c as u32 - 0x06F0) as u8,
        // Hyphens and dashes: autocorrect turns `-` into `–` or `—`, and copies from
        // the web bring the rest.
        '\u{2010}'..='\u{2015}'
        | '\u{2043}'
        | '\u{2212}'
        | '\u{2E3A}'
        | '\u{2E3B}'
        | '\u{FE58}'
        | '\u{FE63}' => b'-',
        // Asterisk look-alikes.
        '\u{204E}' | '\u{2217}' | '\u{2731}' | '\u{FE61}' => b'*',
        // `№` is the Russian number sign: `ВХОД №123...` means `ВХОД #123...`.
        '№' | '\u{FE5F}' => b'#',
        // Typographic quotes, so that a quoted message reads like an unquoted one.
        '«' | '»' | '„' | '“' | '”' | '‘' | '’' => b'"',
        '\u{00AD}' | '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' => return None,
        // NBSP, thin and em spaces, ideographic space, line separators.
        c if c.is_whitespace() => b' ',
        c if c.is_numeric() => FOREIGN_DIGIT,
        _ => OTHER,
    };
    Some(symbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[u8]) {
        let symbols = normalize(text, &mut [0; TEXT_CHARS_MAX]).map(<[u8]>::to_vec);
        assert_eq!(symbols.as_deref(), Some(expect), "text: {text:?}");
    }

    #[test]
    fn folds_case_and_look_alikes() {
        let d = cyr('Д');
        check("ВХОД", &[b'B', b'X', b'O', d]);
        check("вход", &[b'B', b'X', b'O', d]);
        check("BXOД", &[b'B', b'X', b'O', d]);
        check("vhod", b"VHOD");
        check("Ёж", &[b'E', cyr('Ж')]);
    }

    #[test]
    fn folds_spaces_dashes_and_digits() {
        check("1\u{a0}2\u{2009}3\u{3000}4", b"1 2 3 4");
        check("1–2—3−4‐5", b"1-2-3-4-5");
        check("１２３＊４", b"123*4");
        check("٣٤٥۶", b"3456");
        check("①½", &[FOREIGN_DIGIT, FOREIGN_DIGIT]);
        check("😀漢", &[OTHER, OTHER]);
        check("№«»", b"#\"\"");
    }

    #[test]
    fn drops_invisible_chars() {
        check("В\u{200b}Х\u{feff}О\u{ad}Д", &[b'B', b'X', b'O', cyr('Д')]);
    }

    #[test]
    fn bounds_the_text() {
        assert!(normalize(&"1".repeat(TEXT_CHARS_MAX), &mut [0; TEXT_CHARS_MAX]).is_some());
        assert!(normalize(&"1".repeat(TEXT_CHARS_MAX + 1), &mut [0; TEXT_CHARS_MAX]).is_none());
        // Invisible chars do not count against the bound.
        let padded = format!("{}{}", "\u{200b}".repeat(1000), "1");
        assert!(normalize(&padded, &mut [0; TEXT_CHARS_MAX]).is_some());
    }

    #[test]
    fn tables_are_the_symbol_fn() {
        for c in '\0'..='\u{7F}' {
            assert_eq!(Some(ASCII[c as usize]), symbol(c), "{c:?}");
        }
        for c in '\u{400}'..='\u{47F}' {
            assert_eq!(Some(CYRILLIC_BLOCK[c as usize - 0x400]), symbol(c), "{c:?}");
        }
        // And `normalize` takes the table path for exactly those.
        let all: String = ('\0'..='\u{7F}').chain('\u{400}'..='\u{47F}').collect();
        for chunk in all.chars().collect::<Vec<_>>().chunks(TEXT_CHARS_MAX) {
            let text: String = chunk.iter().collect();
            let expect: Vec<u8> = chunk.iter().filter_map(|&c| symbol(c)).collect();
            let symbols = normalize(&text, &mut [0; TEXT_CHARS_MAX]).map(<[u8]>::to_vec);
            assert_eq!(symbols, Some(expect));
        }
    }

    proptest::proptest! {
        #[test]
        fn normalize_is_symbol_of_each_char(text in "\\PC{0,64}") {
            let expect: Vec<u8> = text.chars().filter_map(symbol).collect();
            let symbols = normalize(&text, &mut [0; TEXT_CHARS_MAX]).map(<[u8]>::to_vec);
            proptest::prop_assert_eq!(symbols, Some(expect));
        }
    }

    #[test]
    fn every_cyrillic_capital_has_a_letter_symbol() {
        for c in 'А'..='Я' {
            assert!(is_letter(cyr(c)), "{c}");
        }
    }
}
