//! Property tests: the parser's promises over inputs no table could list.
//!
//! - It never panics, on any Unicode string, and it never returns a check-in for
//!   a text without exactly nine digits; the nine it returns are the text's own,
//!   in order. Arbitrary strings rarely come near the grammar, so a second
//!   strategy builds texts from the grammar's own fragments (keywords,
//!   separators, digits of every script, near misses), and a third splices such
//!   fragments into accepted texts, to reach the grammar's corners.
//! - Every code written in every accepted style parses to the same digits.
//!
//! The case counts are high because a case costs microseconds: this stands in for
//! the cargo-fuzz target (`fuzz/`) in CI, where nightly Rust is not available.

use parser::{parse, Command};
use proptest::prelude::*;
use proptest::sample::select;

/// The value of a char the parser promises to read as a digit, by its own list:
/// ASCII, full-width, Arabic-Indic and Extended Arabic-Indic digits.
fn digit_value(c: char) -> Option<u8> {
    let zeros = ['0', '\u{FF10}', '\u{0660}', '\u{06F0}'];
    zeros.iter().find_map(|&zero| {
        let offset = (c as u32).wrapping_sub(zero as u32);
        (offset < 10).then_some(offset as u8)
    })
}

/// The promises that hold for any text.
fn check_invariants(text: &str) -> Result<(), TestCaseError> {
    let numeric = text.chars().filter(|c| c.is_numeric()).count();
    match parse(text) {
        Command::CheckIn { digits } => {
            prop_assert_eq!(
                numeric,
                9,
                "check-in from a text with {} numeric chars",
                numeric
            );
            let read: Vec<u8> = text.chars().filter_map(digit_value).collect();
            prop_assert_eq!(&read[..], &digits.values()[..]);
            prop_assert!(digits.as_bytes().iter().all(u8::is_ascii_digit));
        }
        Command::WrongLength { digits } => {
            prop_assert_ne!(digits, 9);
            prop_assert_eq!(digits, numeric, "wrong length miscounted");
        }
        Command::TemplateCopied | Command::Help | Command::OptOut => {
            prop_assert_eq!(numeric, 0, "a digit in a text without a code");
        }
        Command::Unrecognized => {}
    }
    Ok(())
}

/// Pieces of texts near the grammar, to be strung together at random.
fn fragment() -> impl Strategy<Value = String> {
    let vocabulary = select(vec![
        "ВХОД",
        "вход",
        "BXOД",
        "VHOD",
        "vkhod",
        "ВХД",
        "ВЫХОД",
        "ХОД",
        "ВХОДИТЬ",
        "СТОП",
        "stop",
        "?",
        "помощь",
        "HELP",
        "ХХХ",
        "xxx",
        "Х",
        "0",
        "1",
        "9",
        "12",
        "123",
        "4567",
        "123456789",
        "1234567890",
        "*",
        "#",
        "№",
        "-",
        "–",
        "—",
        "−",
        " ",
        "  ",
        "\u{a0}",
        "\u{3000}",
        "\u{200b}",
        "\u{feff}",
        ".",
        ",",
        ":",
        "!",
        "\"",
        "«",
        "\n",
        "１",
        "٣",
        "۷",
        "①",
        "²",
        "½",
        "Ⅻ",
        "😀",
        "🙏",
        "спасибо",
        "S",
        "З",
        "О",
        "O",
        "\u{301}",
        "\u{fe0f}",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        4 => vocabulary,
        1 => any::<char>().prop_map(String::from),
    ]
}

fn near_grammar() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..12).prop_map(|fragments| fragments.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn arbitrary_unicode_keeps_the_promises(text in any::<String>()) {
        check_invariants(&text)?;
    }

    /// `any::<String>()` never yields `\n`; any chars strung together do,
    /// and every other control char.
    #[test]
    fn arbitrary_chars_keep_the_promises(chars in prop::collection::vec(any::<char>(), 0..80)) {
        check_invariants(&String::from_iter(chars))?;
    }
}

proptest! {
    // The texts most likely to find a hole: cheap, so many.
    #![proptest_config(ProptestConfig::with_cases(50_000))]

    #[test]
    fn texts_near_the_grammar_keep_the_promises(text in near_grammar()) {
        check_invariants(&text)?;
    }
}

/// A text the parser accepts with one or two fragments spliced in at random
/// places: the corner where a check-in turns into something else.
fn mutated_check_in() -> impl Strategy<Value = String> {
    let valid = select(vec![
        "ВХОД*123-456-789",
        "вход 123 456 789.",
        "VHOD123456789",
        "123-456-789",
        "ВХОД*ХХХ-ХХХ-ХХХ",
        "стоп",
    ]);
    let splice = (fragment(), any::<prop::sample::Index>());
    (valid, prop::collection::vec(splice, 1..3)).prop_map(|(valid, splices)| {
        let mut text: Vec<char> = valid.chars().collect();
        for (fragment, at) in splices {
            let at = at.index(text.len() + 1);
            text.splice(at..at, fragment.chars());
        }
        text.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(50_000))]

    #[test]
    fn mutated_check_ins_keep_the_promises(text in mutated_check_in()) {
        check_invariants(&text)?;
    }
}

proptest! {
    // Long texts cost more to generate than to parse; a thousand reach the
    // length bound often enough.
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn long_texts_keep_the_promises(text in prop::collection::vec(fragment(), 100..400)) {
        check_invariants(&text.concat())?;
    }
}

/// How a code's keyword can be spelled: Cyrillic, Latin look-alikes mixed in,
/// transliterated. The empty keyword is the bare code.
const KEYWORDS: &[&str] = &[
    "ВХОД", "BXOД", "ВXОД", "ВХOД", "BXOD", "ВНОД", "VHOD", "VKHOD", "VXOD", "VCHOD", "WHOD", "",
];
const KEYWORD_SEPARATORS: &[&str] = &[
    "", "*", "#", " ", "  ", "**", "* ", " * ", "-", "№", "№ ", ":", "=", "\u{a0}", "*\u{a0}",
    "＊", "\t",
];
const GROUP_SEPARATORS: &[&str] = &[
    "", "-", " ", "–", "—", "−", "‐", "‑", "\u{a0}", "  ", "--", " - ", " – ", ".", "\u{2009}",
    "\u{202f}", "－",
];
const SPACES: &[&str] = &["", " ", "  ", "\u{a0}", "\t", "\n", "\u{3000}", "\u{200b}"];
const ENDINGS: &[&str] = &["", ".", "!", " спасибо", ", спасибо!", " 🙏"];
/// The zero of each digit script the parser reads.
const DIGIT_ZEROS: &[char] = &['0', '\u{FF10}', '\u{0660}', '\u{06F0}'];

/// `text` with each char's case flipped to upper where `upper` says so.
fn mixed_case(text: &str, upper: &[bool]) -> String {
    text.chars()
        .zip(upper.iter().cycle())
        .map(|(c, &up)| {
            if up {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                c.to_lowercase().next().unwrap_or(c)
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn every_style_reads_the_same_code(
        code in "[0-9]{9}",
        keyword in select(KEYWORDS),
        upper in prop::collection::vec(any::<bool>(), 1..6),
        keyword_separator in select(KEYWORD_SEPARATORS),
        group_separator in select(GROUP_SEPARATORS),
        lead in select(SPACES),
        ending in select(ENDINGS),
        trail in select(SPACES),
        zero in select(DIGIT_ZEROS),
    ) {
        let written: String = code
            .bytes()
            .map(|b| char::from_u32(zero as u32 + u32::from(b - b'0')).expect("a digit"))
            .collect();
        let (groups, rest) = written.split_at(written.char_indices().nth(3).unwrap().0);
        let (group2, group3) = rest.split_at(rest.char_indices().nth(3).unwrap().0);
        // A bare code has nothing to separate from the keyword.
        let keyword_separator = if keyword.is_empty() { "" } else { keyword_separator };
        let text = format!(
            "{lead}{}{keyword_separator}{groups}{group_separator}{group2}{group_separator}{group3}{ending}{trail}",
            mixed_case(keyword, &upper),
        );
        match parse(&text) {
            Command::CheckIn { digits } => prop_assert_eq!(digits.as_str(), code.as_str(), "{:?}", text),
            other => prop_assert!(false, "{:?} parsed to {:?}", text, other),
        }
    }

    #[test]
    fn every_style_of_the_template_is_the_template(
        keyword in select(KEYWORDS),
        upper in prop::collection::vec(any::<bool>(), 1..6),
        keyword_separator in select(KEYWORD_SEPARATORS),
        group_separator in select(GROUP_SEPARATORS),
        x in select(&["Х", "х", "X", "x"][..]),
        lead in select(SPACES),
        trail in select(SPACES),
    ) {
        let keyword_separator = if keyword.is_empty() { "" } else { keyword_separator };
        let group = x.repeat(3);
        let text = format!(
            "{lead}{}{keyword_separator}{group}{group_separator}{group}{group_separator}{group}{trail}",
            mixed_case(keyword, &upper),
        );
        prop_assert_eq!(parse(&text), Command::TemplateCopied, "{:?}", text);
    }
}
