//! Second pass: the grammar, written with `nom` combinators over the symbol bytes
//! that `normalize.rs` produced (ASCII digits and capitals, `0x80 + n` for the
//! Cyrillic letters without a Latin look-alike, ASCII punctuation, `b' '` for any
//! space). The error type is `()`: a failed branch costs nothing to build, and
//! [`command`] maps "no branch matched" to [`Command::Unrecognized`].

use nom::{
    branch::alt,
    bytes::complete::{tag, take, take_while, take_while1, take_while_m_n},
    combinator::{not, opt, peek, recognize, rest, value, verify},
    multi::{fold, many0_count, many1_count},
    sequence::preceded,
    IResult, Parser,
};

use crate::normalize::{cyr, is_letter, FOREIGN_DIGIT, OTHER};
use crate::{CodeDigits, Command};

type Input<'a> = &'a [u8];
type PResult<'a, O> = IResult<Input<'a>, O, ()>;

/// `Д`: the only letter of `ВХОД` with no Latin look-alike.
const DE: u8 = cyr('Д');
/// `П`, the last letter of `СТОП` (`STOP` ends in the Latin `P`).
const PE: u8 = cyr('П');

// Help words, as symbols. `Р`, `С`, `Н`, `О`... fold to their Latin look-alikes.
const POMOSHCH: &[u8] = &[PE, b'O', b'M', b'O', cyr('Щ'), cyr('Ь')];
const SPRAVKA: &[u8] = &[b'C', PE, b'P', b'A', b'B', b'K', b'A'];
const INFO_RU: &[u8] = &[cyr('И'), b'H', cyr('Ф'), b'O'];

/// `ВЫХОД` ("exit") is one edit away from `ВХОД` but means the opposite: the
/// service has no check-out, and recording it as a check-in would put the visitor
/// at the venue at the wrong time, so it is never taken for the keyword.
const VYKHOD: &[u8] = &[b'B', cyr('Ы'), b'X', b'O', DE];
/// The keyword as people type it on a Russian keyboard, to measure typos against.
const VKHOD: &[u8] = &[b'B', b'X', b'O', DE];

/// The number of template placeholders (`Х`) a copied poster template may have:
/// the poster shows nine; a few more or fewer is still the template, not a code.
const TEMPLATE_XS: std::ops::RangeInclusive<usize> = 6..=12;

/// The most words a greeting before the keyword may have: "Добрый день",
/// "Здравствуйте, пожалуйста". A longer text that mentions `ВХОД` somewhere is a
/// question, not a check-in.
const GREETING_WORDS_MAX: usize = 3;

/// How the keyword was spelled; a near miss is weaker evidence of a check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    /// `ВХОД` in any case, with Latin look-alikes, or transliterated.
    Exact,
    /// One typo away from `ВХОД` (a letter missing, doubled, wrong or swapped).
    Near,
}

/// The whole message (as symbols) to a command.
pub(crate) fn command(symbols: &[u8]) -> Command {
    let body = leading(symbols).map_or(symbols, |(body, _)| body);
    alt((
        keyword_command,
        bare_code,
        bare_template,
        help,
        opt_out,
        greeted_keyword_command,
    ))
    .parse(body)
    .map_or(Command::Unrecognized, |(_, command)| command)
}

/// Spaces and quotes before the message: copies from a chat or a web page bring them.
fn leading(i: Input) -> PResult<Input> {
    take_while(|b| matches!(b, b' ' | b'"' | b'\'')).parse(i)
}

/// `ВХОД` + separators + code (or template) + tail.
fn keyword_command(i: Input) -> PResult<Command> {
    let (i, keyword) = keyword(i)?;
    after_keyword(i, keyword)
}

/// A short greeting, then the exact keyword: "Здравствуйте! ВХОД*123-456-789".
/// Only the exact keyword: a word one typo from `ВХОД` deep in a sentence is
/// too weak a sign that the sentence is a check-in.
fn greeted_keyword_command(i: Input) -> PResult<Command> {
    let word = take_while1(|b| is_letter(b) || b == OTHER);
    let space = take_while1(|b: u8| b == b' ' || b.is_ascii_punctuation());
    let greeting_word = (not(keyword), word, space);
    let (i, _) = fold(1..=GREETING_WORDS_MAX, greeting_word, || (), |(), _| ()).parse(i)?;
    let (i, keyword) = verify(keyword, |&keyword| keyword == Keyword::Exact).parse(i)?;
    after_keyword(i, keyword)
}

/// What follows the keyword: separators, then the template or a code, then a tail.
fn after_keyword(i: Input, keyword: Keyword) -> PResult<Command> {
    let (i, _) = take_while(is_keyword_separator).parse(i)?;
    // The keyword twice ("ВХОД ВХОД*123-456-789"): a pasted poster line after a
    // typed keyword, or predictive text. The second one says nothing new.
    let (i, _) = opt((keyword_exact, take_while(is_keyword_separator))).parse(i)?;
    if let Ok((i, ())) = template_then_tail(i) {
        return Ok((i, Command::TemplateCopied));
    }
    let (i, code) = recognize(many0_count(code)).parse(i)?;
    let (i, tail) = rest(i)?;
    let digits = count_digits(code);
    let command = if has_digit(tail) {
        // More digits after the code ("ВХОД 123-456-789 кв 5", two codes, a code
        // broken by a letter): we cannot tell which nine were meant.
        Command::Unrecognized
    } else if digits == CodeDigits::LEN {
        Command::CheckIn {
            digits: code_digits(code),
        }
    } else if keyword == Keyword::Near && (digits == 0 || !is_blank(tail)) {
        // A word one typo from `ВХОД` with no code is too weak to answer as a
        // check-in attempt ("ХОД конём").
        Command::Unrecognized
    } else {
        Command::WrongLength { digits }
    };
    Ok((i, command))
}

/// The keyword spelled right: `В`/`V`/`W` + `Х`/`H`/`KH`/`CH` + `О` + `Д`/`D`
/// (Cyrillic and Latin look-alikes already fold together), not followed by
/// another letter except the template's `Х`.
fn keyword_exact(i: Input) -> PResult<()> {
    // `W` is how German-style transliteration writes `В`.
    let b_or_v = alt((sym(b'B'), sym(b'V'), sym(b'W')));
    let kh = alt((
        tag(&b"KH"[..]),
        tag(&b"CH"[..]),
        tag(&b"X"[..]),
        tag(&b"H"[..]),
    ));
    let d = alt((sym(DE), sym(b'D')));
    let boundary = not(one(|b| is_letter(b) && b != b'X'));
    value((), (b_or_v, kh, sym(b'O'), d, boundary)).parse(i)
}

/// The keyword: spelled right ([`keyword_exact`]), or a word one typo away from
/// `ВХОД`.
fn keyword(i: Input) -> PResult<Keyword> {
    let near = (
        verify(take_while_m_n(3, 6, is_letter), |word: &[u8]| {
            word != VYKHOD && within_one_edit(word, VKHOD)
        }),
        not(one(is_letter)),
    );
    alt((
        value(Keyword::Exact, keyword_exact),
        value(Keyword::Near, near),
    ))
    .parse(i)
}

/// One group of the code and the separators before it: `123`, `-456`, ` – 789`.
/// Separators may double (`123--456`) but a code may not start with one.
fn code(i: Input) -> PResult<()> {
    let digits = take_while1(|b: u8| b.is_ascii_digit());
    value((), (take_while(is_group_separator), digits)).parse(i)
}

/// The poster's template copied literally, `ХХХ-ХХХ-ХХХ` (any case, Cyrillic or
/// Latin X's, any group separators), followed by a tail without digits.
fn template_then_tail(i: Input) -> PResult<()> {
    let xs = verify(
        take_while1(|b| b == b'X' || is_group_separator(b)),
        |run: &[u8]| {
            run[0] == b'X' && TEMPLATE_XS.contains(&run.iter().filter(|&&b| b == b'X').count())
        },
    );
    value((), (xs, digit_free_tail)).parse(i)
}

/// A message that starts with a digit: the code alone, as the poster shows it.
/// Nine digits then anything without digits is a check-in; otherwise only a
/// digit-only text (up to punctuation) is answered as a wrong length, because
/// "12 апреля" is not an attempt at a code.
fn bare_code(i: Input) -> PResult<Command> {
    let (i, code) = preceded(
        peek(one(|b| b.is_ascii_digit())),
        recognize(many1_count(code)),
    )
    .parse(i)?;
    let (i, tail) = rest(i)?;
    let digits = count_digits(code);
    let command = if has_digit(tail) {
        Command::Unrecognized
    } else if digits == CodeDigits::LEN {
        Command::CheckIn {
            digits: code_digits(code),
        }
    } else if is_blank(tail) {
        Command::WrongLength { digits }
    } else {
        Command::Unrecognized
    };
    Ok((i, command))
}

/// The template alone, without the keyword.
fn bare_template(i: Input) -> PResult<Command> {
    value(Command::TemplateCopied, template_then_tail).parse(i)
}

/// `?`, `ПОМОЩЬ`, `СПРАВКА`, `ИНФО`, `HELP`, `INFO`, alone up to punctuation.
fn help(i: Input) -> PResult<Command> {
    let word = alt((
        tag(&b"?"[..]),
        tag(POMOSHCH),
        tag(SPRAVKA),
        tag(INFO_RU),
        tag(&b"HELP"[..]),
        tag(&b"INFO"[..]),
    ));
    value(Command::Help, (word, blank_tail)).parse(i)
}

/// `СТОП` / `STOP` (and their mixtures, `CTOП`), alone up to punctuation: opting
/// out has consequences, so "стоп, а как это работает" is not taken for it.
fn opt_out(i: Input) -> PResult<Command> {
    let word = (
        alt((sym(b'C'), sym(b'S'))),
        sym(b'T'),
        sym(b'O'),
        alt((sym(b'P'), sym(PE))),
    );
    value(Command::OptOut, (word, blank_tail)).parse(i)
}

/// The rest of the message, if it is only spaces and ASCII punctuation.
fn blank_tail(i: Input) -> PResult<Input> {
    verify(rest, |tail: &[u8]| is_blank(tail)).parse(i)
}

/// The rest of the message, if it has no digit of any script.
fn digit_free_tail(i: Input) -> PResult<Input> {
    verify(rest, |tail: &[u8]| !has_digit(tail)).parse(i)
}

/// Exactly the symbol `s`.
fn sym<'a>(s: u8) -> impl Parser<Input<'a>, Output = u8, Error = ()> {
    one(move |b| b == s)
}

/// One symbol that satisfies `pred`.
fn one<'a>(pred: impl Fn(u8) -> bool) -> impl Parser<Input<'a>, Output = u8, Error = ()> {
    verify(take(1usize), move |s: &[u8]| pred(s[0])).map(|s: &[u8]| s[0])
}

/// Between the keyword and the code: `*` as on the poster, and whatever people
/// put instead (`#`, `№`, spaces, dashes, `:`, `=`, `+`, `!`, `\`...), in any
/// number. Any ASCII punctuation: none of it can be part of a code.
fn is_keyword_separator(b: u8) -> bool {
    b == b' ' || b.is_ascii_punctuation()
}

/// Between digit groups: spaces and dashes of every kind, and the dots, commas,
/// stars and slashes people use to mirror the poster's grouping.
fn is_group_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b',' | b'*' | b'#' | b'_' | b'/')
}

fn is_blank(tail: &[u8]) -> bool {
    tail.iter().all(|&b| b == b' ' || b.is_ascii_punctuation())
}

fn has_digit(symbols: &[u8]) -> bool {
    symbols
        .iter()
        .any(|&b| b.is_ascii_digit() || b == FOREIGN_DIGIT)
}

fn count_digits(symbols: &[u8]) -> usize {
    symbols.iter().filter(|b| b.is_ascii_digit()).count()
}

/// The nine digits of a code the caller has counted.
fn code_digits(code: &[u8]) -> CodeDigits {
    let mut digits = [0u8; CodeDigits::LEN];
    for (slot, &b) in digits
        .iter_mut()
        .zip(code.iter().filter(|b| b.is_ascii_digit()))
    {
        *slot = b;
    }
    CodeDigits::from_ascii(digits).expect("the caller counted nine ASCII digits")
}

/// Whether `word` is at most one edit from `target`: one symbol inserted,
/// deleted or replaced, or two neighbours swapped (optimal string alignment).
fn within_one_edit(word: &[u8], target: &[u8]) -> bool {
    match word.len().abs_diff(target.len()) {
        0 => {
            let mut mismatches = word
                .iter()
                .zip(target)
                .enumerate()
                .filter(|(_, (a, b))| a != b);
            match (mismatches.next(), mismatches.next(), mismatches.next()) {
                (None, _, _) | (Some(_), None, _) => true,
                (Some((i, _)), Some((j, _)), None) => {
                    j == i + 1 && word[i] == target[j] && word[j] == target[i]
                }
                _ => false,
            }
        }
        1 if word.len() > target.len() => deletes_to(word, target),
        1 => deletes_to(target, word),
        _ => false,
    }
}

/// Whether deleting one symbol of `longer` gives `shorter`.
fn deletes_to(longer: &[u8], shorter: &[u8]) -> bool {
    let skip = longer
        .iter()
        .zip(shorter)
        .position(|(a, b)| a != b)
        .unwrap_or(shorter.len());
    longer[..skip] == shorter[..skip] && longer[skip + 1..] == shorter[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit() {
        let check = |word: &[u8], expect: bool| {
            assert_eq!(within_one_edit(word, b"ABCD"), expect, "{word:?}");
        };
        check(b"ABCD", true);
        check(b"ABD", true);
        check(b"BCD", true);
        check(b"ABC", true);
        check(b"ABCDE", true);
        check(b"XABCD", true);
        check(b"ABXCD", true);
        check(b"ABXD", true);
        check(b"BACD", true);
        check(b"ABDC", true);
        check(b"BADC", false);
        check(b"AB", false);
        check(b"ABXY", false);
        check(b"ABCDEF", false);
        check(b"CBAD", false);
    }
}
