//! `VenueCode`: the nine-digit premises code printed on posters (`XXX-XXX-XXX`),
//! random, with a Damm check digit so typos are caught instead of checking a
//! visitor in at the wrong address.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// Damm's totally anti-symmetric quasigroup of order 10: with it a check digit
/// detects every single-digit substitution and every adjacent transposition.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// Number of digits in a venue code, check digit included.
pub const VENUE_CODE_DIGITS: usize = 9;

/// Runs the Damm quasigroup over `digits`; a valid code (check digit included) ends in 0.
fn damm(digits: &[u8]) -> u8 {
    digits.iter().fold(0u8, |interim, &d| {
        DAMM[usize::from(interim)][usize::from(d)]
    })
}

/// Why a text is not a valid venue code. The variants are distinct because the
/// visitor gets a different answer for each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Something other than digits, spaces and hyphens.
    #[error("the code may contain only digits, spaces and hyphens")]
    InvalidCharacter,
    /// Not nine digits.
    #[error("the code has {digits} digits instead of 9")]
    WrongLength { digits: usize },
    /// Nine digits whose check digit does not match: almost surely a typo.
    #[error("the code's check digit does not match (a typo?)")]
    CheckDigit,
}

/// A valid nine-digit premises code: the last digit is the Damm check digit of the
/// first eight. Only valid codes can be constructed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VenueCode(u32);

impl VenueCode {
    /// A fresh random code (uniform over the 10^8 possible bodies, never sequential).
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> VenueCode {
        let body: u32 = rng.gen_range(0..100_000_000);
        Self::from_body(body)
    }

    /// The code whose first eight digits are `body` (`body < 10^8`), check digit appended.
    fn from_body(body: u32) -> VenueCode {
        debug_assert!(body < 100_000_000);
        let mut digits = [0u8; 8];
        let mut rest = body;
        for slot in digits.iter_mut().rev() {
            *slot = (rest % 10) as u8;
            rest /= 10;
        }
        VenueCode(body * 10 + u32::from(damm(&digits)))
    }

    /// Validates nine digits (values 0..=9).
    pub fn from_digits(digits: &[u8; VENUE_CODE_DIGITS]) -> Result<VenueCode, CodeError> {
        if digits.iter().any(|&d| d > 9) {
            return Err(CodeError::InvalidCharacter);
        }
        if damm(digits) != 0 {
            return Err(CodeError::CheckDigit);
        }
        let value = digits.iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d));
        Ok(VenueCode(value))
    }

    /// Parses `123-456-789`, `123456789` or `123 456 789` (any mix of spaces and
    /// hyphens between digits).
    pub fn parse(text: &str) -> Result<VenueCode, CodeError> {
        let mut digits = [0u8; VENUE_CODE_DIGITS];
        let mut count = 0usize;
        for c in text.trim().chars() {
            match c {
                '0'..='9' => {
                    if count < VENUE_CODE_DIGITS {
                        digits[count] = c as u8 - b'0';
                    }
                    count += 1;
                }
                ' ' | '-' => {}
                _ => return Err(CodeError::InvalidCharacter),
            }
        }
        if count != VENUE_CODE_DIGITS {
            return Err(CodeError::WrongLength { digits: count });
        }
        Self::from_digits(&digits)
    }

    /// The nine digits without separators, e.g. `123456789` (the storage form).
    pub fn digits(&self) -> String {
        format!("{:09}", self.0)
    }

    /// The nine digits as numbers.
    pub fn digit_array(&self) -> [u8; VENUE_CODE_DIGITS] {
        let mut out = [0u8; VENUE_CODE_DIGITS];
        let mut rest = self.0;
        for slot in out.iter_mut().rev() {
            *slot = (rest % 10) as u8;
            rest /= 10;
        }
        out
    }
}

/// Shown as on the poster: `123-456-789`.
impl fmt::Display for VenueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(f, "{}-{}-{}", &d[0..3], &d[3..6], &d[6..9])
    }
}

impl fmt::Debug for VenueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VenueCode({self})")
    }
}

impl FromStr for VenueCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VenueCode::parse(s)
    }
}

impl serde::Serialize for VenueCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, expect: Result<&str, CodeError>) {
        let got = VenueCode::parse(input).map(|c| c.to_string());
        assert_eq!(got, expect.map(str::to_owned), "input {input:?}");
    }

    #[test]
    fn parses_the_poster_forms() {
        // 57209413 → Damm check digit 0 (computed by hand with the table above).
        check("572-094-130", Ok("572-094-130"));
        check("572094130", Ok("572-094-130"));
        check("572 094 130", Ok("572-094-130"));
        check("  572 - 094-130 ", Ok("572-094-130"));
        check("572-094-139", Err(CodeError::CheckDigit));
        check("572-094-13", Err(CodeError::WrongLength { digits: 8 }));
        check("572-094-1308", Err(CodeError::WrongLength { digits: 10 }));
        check("", Err(CodeError::WrongLength { digits: 0 }));
        check("572-094-13x", Err(CodeError::InvalidCharacter));
        check("572.094.138", Err(CodeError::InvalidCharacter));
    }

    #[test]
    fn known_damm_vector() {
        // The textbook example: 572 → check digit 4.
        assert_eq!(damm(&[5, 7, 2]), 4);
        assert_eq!(damm(&[5, 7, 2, 4]), 0);
    }

    #[test]
    fn leading_zeros_survive() {
        let code = VenueCode::from_body(42);
        assert_eq!(code.digits().len(), 9);
        assert!(code.to_string().starts_with("000-000-42"));
        assert_eq!(VenueCode::parse(&code.to_string()), Ok(code));
    }

    fn any_code() -> impl Strategy<Value = VenueCode> {
        (0u32..100_000_000).prop_map(VenueCode::from_body)
    }

    proptest! {
        #[test]
        fn every_generated_code_validates(seed in any::<u64>()) {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let code = VenueCode::generate(&mut rng);
            prop_assert_eq!(VenueCode::parse(&code.to_string()), Ok(code));
            prop_assert_eq!(VenueCode::parse(&code.digits()), Ok(code));
            prop_assert_eq!(VenueCode::from_digits(&code.digit_array()), Ok(code));
        }

        #[test]
        fn every_single_digit_substitution_is_a_typo(code in any_code(), pos in 0usize..9, delta in 1u8..10) {
            let mut digits = code.digit_array();
            digits[pos] = (digits[pos] + delta) % 10;
            prop_assert_eq!(VenueCode::from_digits(&digits), Err(CodeError::CheckDigit));
        }

        #[test]
        fn every_adjacent_transposition_is_a_typo(code in any_code(), pos in 0usize..8) {
            let mut digits = code.digit_array();
            prop_assume!(digits[pos] != digits[pos + 1]);
            digits.swap(pos, pos + 1);
            prop_assert_eq!(VenueCode::from_digits(&digits), Err(CodeError::CheckDigit));
        }
    }
}
