//! Fuzz target: `parser::parse` on any bytes must not panic and must keep the
//! promises that `tests/properties.rs` checks with proptest: a check-in only from
//! a text with exactly nine digits, a wrong length that counts them right.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parser::{parse, Command};

fuzz_target!(|data: &[u8]| {
    // Lossy, so that every input reaches the parser: the SMPP layer hands it
    // decoded text, and a broken byte becomes U+FFFD there too.
    let text = String::from_utf8_lossy(data);
    let numeric = text.chars().filter(|c| c.is_numeric()).count();
    match parse(&text) {
        Command::CheckIn { digits } => {
            assert_eq!(numeric, 9, "check-in from {text:?}");
            assert!(digits.as_bytes().iter().all(u8::is_ascii_digit));
        }
        Command::WrongLength { digits } => {
            assert_ne!(digits, 9, "wrong length of nine from {text:?}");
            assert_eq!(digits, numeric, "wrong length miscounted in {text:?}");
        }
        Command::TemplateCopied | Command::Help | Command::OptOut => {
            assert_eq!(numeric, 0, "a digit in {text:?}");
        }
        Command::Unrecognized => {}
    }
});
