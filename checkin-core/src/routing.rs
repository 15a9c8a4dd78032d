//! Which operator carries a message to a phone (issue 20): the operator's
//! name as configured, checked once at the boundary.

use std::fmt;

/// Longest operator name.
pub const OPERATOR_NAME_LEN_MAX: usize = 32;

/// An operator's name as the configuration writes it (`mts`, `beeline`):
/// 1..=32 of `[A-Za-z0-9_-]`, so it is safe in a metric label, a file name
/// and a log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperatorName(String);

/// A name that is not an operator's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator name {0:?}: 1 to 32 of A-Z a-z 0-9 _ -")]
pub struct OperatorNameError(pub String);

impl OperatorName {
    pub fn new(name: &str) -> Result<OperatorName, OperatorNameError> {
        let ok = !name.is_empty()
            && name.len() <= OPERATOR_NAME_LEN_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(OperatorName(name.to_owned()))
        } else {
            Err(OperatorNameError(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for OperatorName {
    type Err = OperatorNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperatorName::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_at_the_boundary() {
        assert_eq!(OperatorName::new("mts").unwrap().as_str(), "mts");
        assert!(OperatorName::new("Tele2_ru-1").is_ok());
        for bad in ["", "a b", "мтс", "x\"", &"a".repeat(33)] {
            assert!(OperatorName::new(bad).is_err(), "{bad:?}");
        }
    }
}
