//! Ranges of phone numbers: a prefix (`+7916`) or a span of numbers of one
//! length (`+79030000000-+79030999999`), as operators and numbering plans
//! write them; the simulator routes its MO by them and the gateway its MT.
//! A leaf of its own (no dependencies): `checkin-core` may not depend on
//! `smpp-text` (it pulls `rusmpp`), and `smpp-text` re-exports it as `range`.

use std::str::FromStr;

/// Digits of a generated number under a short prefix: a Russian mobile
/// number, `7` and ten digits.
const NUMBER_LEN: usize = 11;

/// Longest E.164 number, in digits.
const E164_LEN_MAX: usize = 15;

/// Numbers an operator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberRange {
    /// Every number starting with these digits (`+7916`).
    Prefix(String),
    /// Numbers of `len` digits from `from` to `to`, both included
    /// (`+79030000000-+79030999999`).
    Span {
        /// First number.
        from: u64,
        /// Last number.
        to: u64,
        /// Digits of each number (leading zeros kept).
        len: usize,
    },
}

impl FromStr for NumberRange {
    type Err = String;

    /// Parses a prefix (`+7916`) or a range (`+79030000000-+79030999999`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| -> Result<String, String> {
            let part = part.trim();
            let part = part.strip_prefix('+').unwrap_or(part);
            if part.is_empty()
                || part.len() > E164_LEN_MAX
                || !part.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "{s:?} is neither a prefix (+7916) nor a range (+79030000000-+79030999999)"
                ));
            }
            Ok(part.to_string())
        };
        let Some((from, to)) = s.split_once('-') else {
            return Ok(Self::Prefix(number(s)?));
        };
        let (from, to) = (number(from)?, number(to)?);
        // Both fit u64: at most 15 digits.
        let (a, b) = (from.parse().unwrap_or(0), to.parse().unwrap_or(0));
        if from.len() != to.len() || a > b {
            return Err(format!(
                "{s:?}: both ends need as many digits, the first not above the last"
            ));
        }
        Ok(Self::Span {
            from: a,
            to: b,
            len: from.len(),
        })
    }
}

impl std::fmt::Display for NumberRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Prefix(p) => write!(f, "+{p}"),
            Self::Span { from, to, len } => write!(f, "+{from:0len$}-+{to:0len$}"),
        }
    }
}

impl NumberRange {
    /// How specific the match of `digits` is (larger wins), `None` outside.
    pub fn specificity(&self, digits: &str) -> Option<usize> {
        match self {
            Self::Prefix(p) => digits.starts_with(p.as_str()).then_some(p.len()),
            Self::Span { from, to, len } => (digits.len() == *len
                && digits
                    .parse::<u64>()
                    .is_ok_and(|n| (*from..=*to).contains(&n)))
            .then_some(*len),
        }
    }

    /// The `i`-th number of the range (wrapping), as `+DIGITS`: numbers for
    /// the load generator's phones.
    pub fn number(&self, i: u64) -> String {
        match self {
            Self::Prefix(p) => {
                let width = NUMBER_LEN.saturating_sub(p.len()).clamp(3, 12);
                let modulus = 10u64.pow(width as u32);
                format!("+{p}{:0width$}", i % modulus)
            }
            Self::Span { from, to, len } => {
                // Saturating: a hand-built span may be empty or huge.
                let n = from.saturating_add(i % to.saturating_sub(*from).saturating_add(1));
                format!("+{n:0len$}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_spans_parse_match_and_print() {
        let prefix: NumberRange = "+7916".parse().unwrap();
        assert_eq!(prefix.specificity("79161234567"), Some(4));
        assert_eq!(prefix.specificity("79031234567"), None);
        assert_eq!(prefix.to_string(), "+7916");
        let span: NumberRange = "+79030000000-+79030999999".parse().unwrap();
        assert_eq!(span.specificity("79030123456"), Some(11));
        assert_eq!(span.specificity("79031123456"), None);
        assert_eq!(span.specificity("7903012345"), None, "another length");
        assert_eq!(span.to_string(), "+79030000000-+79030999999");
        for bad in ["", "+", "79a", "+7903-+790", "+7905-+7903"] {
            assert!(bad.parse::<NumberRange>().is_err(), "{bad:?}");
        }
    }
}
