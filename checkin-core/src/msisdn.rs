//! `Msisdn`: a phone number normalized to E.164 (`+79161234567`). Parsing accepts
//! what Russian visitors and operators write; everything else gets a clear error.

use std::fmt;

/// Which numbers the service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsisdnPolicy {
    /// Accept E.164 numbers outside +7 (written with a leading `+`). Off by default:
    /// the service is for Russian numbers.
    pub allow_international: bool,
}

/// Why a text is not an acceptable phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsisdnError {
    #[error("the phone number is empty")]
    Empty,
    #[error("the phone number may contain only digits, spaces, dashes, dots, parentheses and a leading +")]
    InvalidCharacter,
    #[error("a Russian phone number has 10 digits after +7 or 8")]
    WrongLength,
    #[error("only Russian (+7) numbers are accepted")]
    NotRussian,
}

/// Longest E.164 number: 15 digits.
const E164_DIGITS_MAX: usize = 15;
/// Shortest number accepted internationally (country code + subscriber).
const E164_DIGITS_MIN: usize = 8;

/// A phone number in E.164 form. `Debug` masks it so it never lands in logs by accident;
/// `Display` gives the full number (needed to send an SMS).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(String);

impl Msisdn {
    /// Parses a Russian number: `+7 (916) 123-45-67`, `89161234567`, `79161234567`,
    /// `9161234567` (ten digits starting with 9: a mobile number without prefix).
    pub fn parse(text: &str) -> Result<Msisdn, MsisdnError> {
        Self::parse_with(text, &MsisdnPolicy::default())
    }

    /// Parses under `policy` (which may also allow international numbers).
    pub fn parse_with(text: &str, policy: &MsisdnPolicy) -> Result<Msisdn, MsisdnError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(MsisdnError::Empty);
        }
        let (plus, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut digits = String::with_capacity(E164_DIGITS_MAX);
        for c in rest.chars() {
            match c {
                '0'..='9' => {
                    if digits.len() > E164_DIGITS_MAX {
                        return Err(MsisdnError::WrongLength);
                    }
                    digits.push(c);
                }
                ' ' | '-' | '(' | ')' | '.' | '\u{a0}' => {}
                _ => return Err(MsisdnError::InvalidCharacter),
            }
        }
        if digits.is_empty() {
            return Err(MsisdnError::Empty);
        }
        let national = match (plus, digits.len(), digits.as_bytes()[0]) {
            (true, 11, b'7') | (false, 11, b'7' | b'8') => &digits[1..],
            (false, 10, b'9') => &digits[..],
            (true, _, b'7') | (false, _, b'7' | b'8' | b'9') => {
                return Err(MsisdnError::WrongLength)
            }
            (true, n, _) if policy.allow_international => {
                if !(E164_DIGITS_MIN..=E164_DIGITS_MAX).contains(&n) || digits.starts_with('0') {
                    return Err(MsisdnError::WrongLength);
                }
                return Ok(Msisdn(format!("+{digits}")));
            }
            (true, _, _) => return Err(MsisdnError::NotRussian),
            (false, _, _) => return Err(MsisdnError::WrongLength),
        };
        Ok(Msisdn(format!("+7{national}")))
    }

    /// The E.164 form, `+79161234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without `+`, as SMPP addresses with TON international carry them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// For logs: `+7916***4567`.
    pub fn masked(&self) -> String {
        let s = &self.0;
        if s.len() <= 8 {
            return "+***".to_owned();
        }
        format!("{}***{}", &s[..5], &s[s.len() - 4..])
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Masked on purpose: a `{:?}` in a log line must not leak the number.
impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

impl std::str::FromStr for Msisdn {
    type Err = MsisdnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Msisdn::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, expect: Result<&str, MsisdnError>) {
        let got = Msisdn::parse(input).map(|m| m.as_str().to_owned());
        assert_eq!(got, expect.map(str::to_owned), "input {input:?}");
    }

    #[test]
    fn russian_forms() {
        check("+79161234567", Ok("+79161234567"));
        check("89161234567", Ok("+79161234567"));
        check("79161234567", Ok("+79161234567"));
        check("9161234567", Ok("+79161234567"));
        check("+7 (916) 123-45-67", Ok("+79161234567"));
        check(" 8 916 123 45 67 ", Ok("+79161234567"));
        check("8-916-123-45-67", Ok("+79161234567"));
        check("+7\u{a0}916\u{a0}1234567", Ok("+79161234567"));
        check("+7 495 123-45-67", Ok("+74951234567"));
    }

    #[test]
    fn rejections_are_specific() {
        check("", Err(MsisdnError::Empty));
        check("  ", Err(MsisdnError::Empty));
        check("+", Err(MsisdnError::Empty));
        check("+7916123456", Err(MsisdnError::WrongLength));
        check("891612345678", Err(MsisdnError::WrongLength));
        check("1234567", Err(MsisdnError::WrongLength));
        check("+79161234567x", Err(MsisdnError::InvalidCharacter));
        check("+7 916 123 45 67 ext 1", Err(MsisdnError::InvalidCharacter));
        check("++79161234567", Err(MsisdnError::InvalidCharacter));
        check("+380501234567", Err(MsisdnError::NotRussian));
        check("+44 20 7946 0958", Err(MsisdnError::NotRussian));
        check(&"9".repeat(40), Err(MsisdnError::WrongLength));
    }

    #[test]
    fn international_when_allowed() {
        let policy = MsisdnPolicy {
            allow_international: true,
        };
        let m = Msisdn::parse_with("+44 20 7946 0958", &policy).unwrap();
        assert_eq!(m.as_str(), "+442079460958");
        assert_eq!(
            Msisdn::parse_with("+79161234567", &policy)
                .unwrap()
                .as_str(),
            "+79161234567"
        );
        assert_eq!(
            Msisdn::parse_with("+1234", &policy),
            Err(MsisdnError::WrongLength)
        );
    }

    #[test]
    fn debug_and_masked_hide_the_number() {
        let m = Msisdn::parse("+79161234567").unwrap();
        assert_eq!(m.masked(), "+7916***4567");
        assert!(!format!("{m:?}").contains("9161234567"));
        assert_eq!(m.digits(), "79161234567");
    }

    proptest! {
        #[test]
        fn round_trips(national in "9[0-9]{9}", style in 0usize..5) {
            let e164 = format!("+7{national}");
            let written = match style {
                0 => e164.clone(),
                1 => format!("8{national}"),
                2 => format!("7{national}"),
                3 => format!("+7 ({}) {}-{}-{}", &national[..3], &national[3..6], &national[6..8], &national[8..]),
                _ => national.clone(),
            };
            let parsed = Msisdn::parse(&written).unwrap();
            prop_assert_eq!(parsed.as_str(), e164.as_str());
            prop_assert_eq!(Msisdn::parse(&parsed.to_string()).unwrap(), parsed);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = Msisdn::parse(&s);
        }
    }
}
