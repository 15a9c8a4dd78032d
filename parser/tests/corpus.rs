//! Table-driven test over `corpus.txt`: realistic MO texts and the command each
//! must parse to. Adding a case is adding a line there; every failing line is
//! reported at once, with its line number, so a grammar change shows its whole
//! effect in one run.

use parser::{parse, CodeDigits, Command};

/// The fewest cases the corpus may hold: a guard against a truncated file or a
/// harness bug that silently reads nothing.
const CASES_MIN: usize = 60;

#[test]
fn corpus() {
    let corpus = include_str!("corpus.txt");
    let mut cases = 0;
    let mut failures = Vec::new();
    for (index, line) in corpus.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (input, expect) =
            case(line).unwrap_or_else(|why| panic!("corpus.txt:{line_number}: {why}"));
        cases += 1;
        let actual = parse(&input);
        if actual != expect {
            failures.push(format!(
                "corpus.txt:{line_number}: {input:?}\n    expected {expect:?}\n    got      {actual:?}"
            ));
        }
    }
    assert!(cases >= CASES_MIN, "only {cases} cases in corpus.txt");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `"input" => expect`.
fn case(line: &str) -> Result<(String, Command), String> {
    let rest = line.strip_prefix('"').ok_or("the input must be quoted")?;
    let (input, rest) = unquote(rest)?;
    let expect = rest
        .trim_start()
        .strip_prefix("=>")
        .ok_or("expected `=>` after the input")?;
    Ok((input, command(expect.trim())?))
}

/// The quoted text up to the closing quote, escapes resolved, and what follows.
fn unquote(quoted: &str) -> Result<(String, &str), String> {
    let mut text = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((text, &quoted[at + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('"') => text.push('"'),
                Some('\\') => text.push('\\'),
                Some('u') => {
                    let tail = &quoted[at + 2..];
                    let hex = tail
                        .strip_prefix('{')
                        .and_then(|t| t.split_once('}'))
                        .map(|(hex, _)| hex)
                        .ok_or("expected \\u{XXXX}")?;
                    let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                    text.push(char::from_u32(code).ok_or("not a char")?);
                    // Skip `{hex}`.
                    for _ in 0..hex.len() + 2 {
                        chars.next();
                    }
                }
                other => return Err(format!("unknown escape \\{other:?}")),
            },
            c => text.push(c),
        }
    }
    Err("no closing quote".into())
}

fn command(expect: &str) -> Result<Command, String> {
    let (name, argument) = expect.split_once(' ').unwrap_or((expect, ""));
    Ok(match name {
        "checkin" => {
            let ascii: [u8; CodeDigits::LEN] = argument
                .as_bytes()
                .try_into()
                .map_err(|_| format!("checkin takes nine digits, not {argument:?}"))?;
            Command::CheckIn {
                digits: CodeDigits::from_ascii(ascii).ok_or("checkin takes digits")?,
            }
        }
        "wrong-length" => Command::WrongLength {
            digits: argument.parse().map_err(|_| "wrong-length takes a count")?,
        },
        "template" => Command::TemplateCopied,
        "help" => Command::Help,
        "opt-out" => Command::OptOut,
        "unrecognized" => Command::Unrecognized,
        other => return Err(format!("unknown command {other:?}")),
    })
}
