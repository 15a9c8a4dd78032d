//! MO text → typed command: turns what a visitor texted to 7377 (`ВХОД*123-456-789`
//! and the sloppy variants real people type) into a [`Command`] the core
//! understands. Pure `nom`, no I/O, no tokio, no dependency on any other crate of
//! this workspace; the one entry point is [`parse`].
//!
//! The parser is tolerant of how people type and strict about the code: it never
//! guesses a digit. It does **not** check the code's Damm check digit (the core
//! does, so that a typo gets a "check the code" reply); it only guarantees that a
//! [`Command::CheckIn`] carries exactly nine ASCII digits, and that the text it came
//! from had exactly nine digits in it.
//!
//! # Grammar
//!
//! Two passes. First every char is folded to one symbol (`normalize.rs`): letter
//! case; Cyrillic letters that look like Latin ones (`В Х О Н К С Т Р А Е М У`)
//! with those Latin ones; every Unicode space (NBSP, thin, ideographic...) to a
//! space; every hyphen, dash and minus sign (`- ‐ ‑ ‒ – — ― −`...) to `-`;
//! full-width forms (`１２３`, `＊`) and Arabic-Indic digits (`١٢٣`, `۱۲۳`) to ASCII;
//! `№` to `#`; invisible chars (zero-width space, BOM, soft hyphen, direction
//! marks) dropped. Then, over those symbols (`grammar.rs`, nom):
//!
//! ```text
//! message   = lead ( greeting? keyword kw-sep* (keyword kw-sep*)?
//!                    (template tail | code? tail)
//!                  | code tail | template tail | help blank | stop blank )
//! lead      = (space | '"' | "'")*
//! greeting  = (word (space | punctuation)+){1,3}     no digits; then the keyword exact
//! keyword   = (В | V | W) (Х | H | KH | CH) О (Д | D) not followed by a letter but Х
//!           | a word one typo from ВХОД, except ВЫХОД
//! kw-sep    = space | any ASCII punctuation           '*' '#' '№' dashes ':' '!' ...
//! code      = digit+ (group-sep* digit+)*
//! group-sep = space | dash | '.' | ',' | '*' | '#' | '/' | '_'
//! template  = Х (Х | group-sep)*                      6 to 12 Х's, Cyrillic or Latin
//! help      = '?' | ПОМОЩЬ | СПРАВКА | ИНФО | HELP | INFO
//! stop      = (С | S) Т О (П | P)                     СТОП, STOP, CTOП
//! tail      = anything                                blank: spaces, ASCII punctuation
//! ```
//!
//! What the parts mean ([`Command`]):
//!
//! | text | command |
//! |---|---|
//! | `ВХОД*123-456-789`, `вход 123 456 789.`, `Вход#123456789`, `ВХОД123-456-789`, `BXOД*123-456-789`, `VHOD 123456789`, `vkhod*123–456–789`, `123-456-789` | `CheckIn { digits: 123456789 }` |
//! | `ВХОД*123-456-789 спасибо!` | `CheckIn`: words after the code are ignored if they have no digit |
//! | `ВХОД*12345678`, `ВХОД 1234567890`, `ВХОД`, `12345` | `WrongLength { digits: 8 / 10 / 0 / 5 }` |
//! | `ВХОД*ХХХ-ХХХ-ХХХ`, `xxx-xxx-xxx` | `TemplateCopied` |
//! | `?`, `помощь`, `Help` | `Help` |
//! | `стоп`, `Stop.`, `CTOП` | `OptOut` |
//! | `привет`, `ВХОД 123-456-789 кв 5`, `12 апреля`, `ВЫХОД 123456789`, the empty text | `Unrecognized` |
//!
//! The choices where people could disagree, and why:
//!
//! - **Words after the code** (`ВХОД*123-456-789 спасибо`) are ignored: the
//!   visitor plainly asked to check in, and a "not understood" reply would make
//!   them text again. But **any digit after the code** (`... кв 5`, a second
//!   code, a code broken by a letter: `123-4S6-789`) makes the text
//!   `Unrecognized`: we cannot tell which nine digits were meant.
//! - **A greeting before the keyword** (`Здравствуйте! ВХОД*...`, `Добрый день,
//!   вход 123456789`) is skipped if it is at most three words without digits and
//!   the keyword is spelled exactly: people are polite to a service. A longer text
//!   is a question, not a command, and a greeting before a bare code (`Привет
//!   123-456-789`) is `Unrecognized`, as is anything with digits before the code.
//! - **Keyword typos** one edit away (`ВХД`, `ВХООД`, `ВОХД`, `ВХОТ`) still check
//!   in when followed by nine digits, since the code's check digit, not the
//!   keyword, guards against a wrong venue. `ВЫХОД` ("exit") is excluded: there is
//!   no check-out, and taking it for a check-in would record a wrong visit time.
//!   A near-miss keyword with no code (`ХОД конём`) is `Unrecognized`.
//! - **Digits of other scripts**: full-width (`１２３`) and Arabic-Indic
//!   (`١٢٣`, `۱۲۳`) are the same ten digits and are read as such. Any other
//!   numeric char (`①`, `²`, `½`) is never read as a digit and makes a text that
//!   contains it anything but a check-in.
//! - **`СТОП` and help words must stand alone** (up to punctuation): opting out has
//!   consequences, so `стоп а как это работает` is `Unrecognized`.
//! - **Length bound**: a text of more than [`TEXT_CHARS_MAX`] visible chars is
//!   `Unrecognized` without being read further (three concatenated UCS-2 parts are
//!   201 chars; no command is that long).
//!
//! # Examples
//!
//! ```
//! use parser::{parse, Command};
//!
//! let Command::CheckIn { digits } = parse("  вход * 123 – 456 — 789. ") else {
//!     panic!("a check-in");
//! };
//! assert_eq!(digits.as_str(), "123456789");
//! assert_eq!(digits.to_string(), "123-456-789");
//! assert_eq!(parse("ВХОД*ХХХ-ХХХ-ХХХ"), Command::TemplateCopied);
//! assert_eq!(parse("ВХОД 12345678"), Command::WrongLength { digits: 8 });
//! assert_eq!(parse("Stop"), Command::OptOut);
//! assert_eq!(parse("привет"), Command::Unrecognized);
//! ```

mod grammar;
mod normalize;

use std::fmt;

pub use normalize::TEXT_CHARS_MAX;

/// What a visitor's text asks for. Every text maps to exactly one of these, so
/// the reply can always explain what was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Check in at the venue with this code. The check digit is not verified yet.
    CheckIn {
        /// Exactly nine ASCII digits, separators removed.
        digits: CodeDigits,
    },
    /// The poster's template copied literally (`ВХОД*ХХХ-ХХХ-ХХХ`): the reply
    /// should say to replace the X's with the code printed under the QR.
    TemplateCopied,
    /// The keyword with a code that is not nine digits long, or a digit-only text
    /// that is not nine digits long. `digits: 0` is the keyword alone.
    WrongLength {
        /// How many digits the text had.
        digits: usize,
    },
    /// A request for instructions: `?`, `ПОМОЩЬ`, `СПРАВКА`, `ИНФО`, `HELP`, `INFO`.
    Help,
    /// `СТОП` / `STOP`: the visitor wants no more messages.
    OptOut,
    /// Anything else.
    Unrecognized,
}

/// The nine digits of a venue code as the visitor typed them, separators removed.
///
/// Holds ASCII digits `b'0'..=b'9'` only (the constructor checks). Whether the
/// ninth is the right check digit is for the core to decide.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeDigits([u8; CodeDigits::LEN]);

impl CodeDigits {
    /// The number of digits in a venue code.
    pub const LEN: usize = 9;

    /// The code of these ASCII digits; `None` if any byte is not `b'0'..=b'9'`.
    #[must_use]
    pub fn from_ascii(ascii: [u8; Self::LEN]) -> Option<Self> {
        ascii
            .iter()
            .all(u8::is_ascii_digit)
            .then_some(CodeDigits(ascii))
    }

    /// The digits as ASCII bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// The digits as a string, `"123456789"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("CodeDigits holds ASCII digits only")
    }

    /// The digits as numbers `0..=9`, for check-digit arithmetic.
    #[must_use]
    pub fn values(&self) -> [u8; Self::LEN] {
        self.0.map(|b| b - b'0')
    }
}

/// As printed on the poster: `123-456-789`.
impl fmt::Display for CodeDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        write!(f, "{}-{}-{}", &s[..3], &s[3..6], &s[6..])
    }
}

impl fmt::Debug for CodeDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeDigits({})", self.as_str())
    }
}

/// Parses the text of one MO message (already decoded from UCS-2 / GSM 7-bit /
/// Latin-1 and reassembled) into a [`Command`].
///
/// Infallible: every text, however garbled, maps to a command
/// ([`Command::Unrecognized`] at worst). Allocation-free and linear in the text's
/// length; texts of more than [`TEXT_CHARS_MAX`] visible chars are `Unrecognized`. The
/// grammar and the choices behind it are in the [crate documentation](crate).
#[must_use]
pub fn parse(text: &str) -> Command {
    let mut buf = [0; TEXT_CHARS_MAX];
    match normalize::normalize(text, &mut buf) {
        Some(symbols) => grammar::command(symbols),
        None => Command::Unrecognized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: Command) {
        assert_eq!(parse(text), expect, "text: {text:?}");
    }

    fn code(digits: &str) -> Command {
        let ascii: [u8; 9] = digits.as_bytes().try_into().expect("nine bytes");
        Command::CheckIn {
            digits: CodeDigits::from_ascii(ascii).expect("nine digits"),
        }
    }

    #[test]
    fn the_poster_format() {
        check("ВХОД*123-456-789", code("123456789"));
        check("ВХОД*ХХХ-ХХХ-ХХХ", Command::TemplateCopied);
    }

    #[test]
    fn code_digits() {
        let digits = CodeDigits::from_ascii(*b"012345678").unwrap();
        assert_eq!(digits.as_str(), "012345678");
        assert_eq!(digits.to_string(), "012-345-678");
        assert_eq!(format!("{digits:?}"), "CodeDigits(012345678)");
        assert_eq!(digits.values(), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(CodeDigits::from_ascii(*b"01234567x"), None);
    }

    #[test]
    fn keyword_typos() {
        check("ВХД*123-456-789", code("123456789"));
        check("ВОХД 123456789", code("123456789"));
        check("ВХООД 123456789", code("123456789"));
        check("ВХД 12345678", Command::WrongLength { digits: 8 });
        check("ХОД конём", Command::Unrecognized);
        check("ВЫХОД 123456789", Command::Unrecognized);
    }

    #[test]
    fn too_long() {
        let long = format!("ВХОД*123-456-789 {}", "а".repeat(TEXT_CHARS_MAX));
        check(&long, Command::Unrecognized);
    }
}
