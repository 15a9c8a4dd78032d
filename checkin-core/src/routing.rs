//! Which operator carries a message to a phone (issue 20): the operator's
//! name as configured, checked once at the boundary; the numbering plan
//! (ranges → operator); and the pure routing decisions: [`route`] (pinned,
//! learned, plan, default) and [`next_operator`] (after a "not ours"
//! refusal). No I/O: the store keeps the plan and the learned routes.

use std::collections::BTreeMap;
use std::fmt;

use crate::msisdn::Msisdn;

pub use number_range::NumberRange;

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

/// A numbering plan: which operator serves which numbers. The most specific
/// range wins ([`NumberRange::specificity`]); of two equally specific, the
/// later entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberPlan {
    entries: Vec<(NumberRange, OperatorName)>,
}

/// A line of a plan's CSV that cannot be read: its line (from 1, the header
/// is line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct PlanRowError {
    pub line: usize,
    pub reason: String,
}

/// The header a plan's CSV starts with.
pub const PLAN_CSV_HEADER: &str = "range,operator";

impl NumberPlan {
    /// A plan of these entries, in this order (later wins a tie).
    pub fn new(entries: Vec<(NumberRange, OperatorName)>) -> NumberPlan {
        NumberPlan { entries }
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[(NumberRange, OperatorName)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The operator of the most specific range holding `to` (ties: the
    /// later entry), `None` when no range does.
    pub fn operator_for(&self, to: &Msisdn) -> Option<&OperatorName> {
        let digits = to.digits();
        let mut best: Option<(usize, &OperatorName)> = None;
        for (range, operator) in &self.entries {
            if let Some(s) = range.specificity(digits) {
                if best.is_none_or(|(b, _)| s >= b) {
                    best = Some((s, operator));
                }
            }
        }
        best.map(|(_, operator)| operator)
    }

    /// Ranges per operator (the import's summary).
    pub fn ranges_per_operator(&self) -> BTreeMap<&OperatorName, usize> {
        let mut counts = BTreeMap::new();
        for (_, operator) in &self.entries {
            *counts.entry(operator).or_insert(0) += 1;
        }
        counts
    }

    /// This plan with the configured ranges after it: a configured range
    /// wins over an imported one of equal specificity (a more specific
    /// imported range still wins: the configuration names blocks, the plan
    /// the numbers ported out of them).
    pub fn merged_with(&self, configured: &[(NumberRange, OperatorName)]) -> NumberPlan {
        let mut entries = self.entries.clone();
        entries.extend(configured.iter().cloned());
        NumberPlan { entries }
    }

    /// Reads a CSV whose header is `range,operator` and each line a range
    /// (`+7916` or `+79030000000-+79030999999`) and an operator name. Blank
    /// lines and lines starting with `#` are skipped. Every bad line is
    /// reported (a range twice, too), none taken: a plan is imported whole
    /// or not at all.
    pub fn parse_csv(text: &str) -> Result<NumberPlan, Vec<PlanRowError>> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut errors = Vec::new();
        let mut entries = Vec::new();
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        let mut header = false;
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: String| PlanRowError {
                line: line_no,
                reason,
            };
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if !header {
                header = true;
                if !cells.join(",").eq_ignore_ascii_case(PLAN_CSV_HEADER) {
                    errors.push(error(format!(
                        "the header is {line:?}, not {PLAN_CSV_HEADER:?}"
                    )));
                }
                continue;
            }
            let [range, operator] = cells[..] else {
                errors.push(error(format!(
                    "expected 2 cells (range,operator), found {}",
                    cells.len()
                )));
                continue;
            };
            let range = match range.parse::<NumberRange>() {
                Ok(range) => range,
                Err(reason) => {
                    errors.push(error(reason));
                    continue;
                }
            };
            let operator = match OperatorName::new(operator) {
                Ok(operator) => operator,
                Err(e) => {
                    errors.push(error(e.to_string()));
                    continue;
                }
            };
            if let Some(first) = seen.insert(range.to_string(), line_no) {
                errors.push(error(format!("{range} again (first on line {first})")));
                continue;
            }
            entries.push((range, operator));
        }
        if !header {
            errors.push(PlanRowError {
                line: 1,
                reason: format!("no header {PLAN_CSV_HEADER:?}"),
            });
        } else if entries.is_empty() && errors.is_empty() {
            errors.push(PlanRowError {
                line: 1,
                reason: "no ranges".into(),
            });
        }
        if errors.is_empty() {
            Ok(NumberPlan { entries })
        } else {
            Err(errors)
        }
    }
}

/// Why a message goes through its operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSource {
    /// A reply: through the operator its MO came through.
    Pinned,
    /// The operator the phone last texted or dialled us through.
    Learned,
    /// The numbering plan's range holding the number.
    Plan,
    /// None of those: the default operator.
    Default,
}

impl RouteSource {
    /// Its name in a metric label or a log line.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteSource::Pinned => "pinned",
            RouteSource::Learned => "learned",
            RouteSource::Plan => "plan",
            RouteSource::Default => "default",
        }
    }
}

/// The operator a message goes through, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub operator: OperatorName,
    pub source: RouteSource,
}

/// The operator a message to `to` goes through: the one it is pinned to (a
/// reply: its MO's), else the one the phone was learned through, else the
/// plan's, else `default`.
pub fn route(
    pinned: Option<&OperatorName>,
    learned: Option<&OperatorName>,
    plan: &NumberPlan,
    to: &Msisdn,
    default: &OperatorName,
) -> Route {
    let (operator, source) = if let Some(op) = pinned {
        (op, RouteSource::Pinned)
    } else if let Some(op) = learned {
        (op, RouteSource::Learned)
    } else if let Some(op) = plan.operator_for(to) {
        (op, RouteSource::Plan)
    } else {
        (default, RouteSource::Default)
    };
    Route {
        operator: operator.clone(),
        source,
    }
}

/// The operator to try after `tried` refused a number as not its own: the
/// next in configuration order, wrapping; never `tried` itself (`None` when
/// it is the only one). An operator no longer configured is followed by the
/// first.
pub fn next_operator<'a>(
    tried: &OperatorName,
    operators: &'a [OperatorName],
) -> Option<&'a OperatorName> {
    let start = operators
        .iter()
        .position(|op| op == tried)
        .map_or(0, |i| i + 1);
    (0..operators.len())
        .map(|k| &operators[(start + k) % operators.len()])
        .find(|op| *op != tried)
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

    fn op(name: &str) -> OperatorName {
        OperatorName::new(name).unwrap()
    }

    fn phone(text: &str) -> Msisdn {
        Msisdn::parse(text).unwrap()
    }

    fn plan(rows: &[(&str, &str)]) -> NumberPlan {
        NumberPlan::new(
            rows.iter()
                .map(|(r, o)| (r.parse().unwrap(), op(o)))
                .collect(),
        )
    }

    #[test]
    fn the_most_specific_range_wins_and_a_tie_goes_to_the_later() {
        let p = plan(&[
            ("+79", "default_ish"),
            ("+7916", "mts"),
            ("+79161", "beeline"),
            ("+79030000000-+79030999999", "beeline"),
            ("+7903", "tele2"),
            ("+7926", "megafon"),
            ("+7926", "tele2"),
        ]);
        let cases = [
            ("+79161234567", Some("beeline")),
            ("+79162234567", Some("mts")),
            ("+79030123456", Some("beeline")),
            ("+79031123456", Some("tele2")),
            ("+79261234567", Some("tele2")),
            ("+79991234567", Some("default_ish")),
            ("+74951234567", None),
        ];
        for (to, want) in cases {
            assert_eq!(
                p.operator_for(&phone(to)).map(OperatorName::as_str),
                want,
                "{to}"
            );
        }
        assert_eq!(
            NumberPlan::default().operator_for(&phone("+79161234567")),
            None
        );
    }

    #[test]
    fn configured_ranges_win_ties_over_imported_ones() {
        let imported = plan(&[("+7916", "mts"), ("+79161", "tele2")]);
        let merged = imported.merged_with(&[("+7916".parse().unwrap(), op("beeline"))]);
        assert_eq!(
            merged.operator_for(&phone("+79162234567")),
            Some(&op("beeline"))
        );
        assert_eq!(
            merged.operator_for(&phone("+79161234567")),
            Some(&op("tele2")),
            "a more specific imported range still wins"
        );
        assert_eq!(
            imported.operator_for(&phone("+79162234567")),
            Some(&op("mts"))
        );
    }

    #[test]
    fn a_plan_csv_is_read_whole_or_refused_with_every_bad_line() {
        let good = "\u{feff}range,operator\r\n# a comment\n+7916,mts\n\n+79030000000-+79030999999, beeline\n";
        let p = NumberPlan::parse_csv(good).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.entries()[1].0.to_string(), "+79030000000-+79030999999");
        assert_eq!(p.ranges_per_operator()[&op("mts")], 1);

        let bad = "range,operator\n+7916,mts\n+79x,mts\n+7903,мтс\n+7905\n+7916,tele2\n";
        let errors = NumberPlan::parse_csv(bad).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6], "{errors:?}");
        assert!(errors[3].reason.contains("first on line 2"), "{errors:?}");
        assert!(errors[0].to_string().starts_with("line 3: "), "{errors:?}");

        for (text, line) in [
            ("", 1),
            ("range,operator\n", 1),
            ("prefix,carrier\n+7916,mts\n", 1),
        ] {
            let errors = NumberPlan::parse_csv(text).unwrap_err();
            assert_eq!(errors[0].line, line, "{text:?}: {errors:?}");
        }
    }

    #[test]
    fn route_takes_pinned_then_learned_then_plan_then_default() {
        let p = plan(&[("+7916", "mts")]);
        let (mts, tele2, beeline, dflt) = (op("mts"), op("tele2"), op("beeline"), op("megafon"));
        let known = phone("+79161234567");
        let unknown = phone("+74951234567");
        let cases = [
            (
                Some(&beeline),
                Some(&tele2),
                &known,
                "beeline",
                RouteSource::Pinned,
            ),
            (None, Some(&tele2), &known, "tele2", RouteSource::Learned),
            (None, None, &known, "mts", RouteSource::Plan),
            (None, None, &unknown, "megafon", RouteSource::Default),
            (Some(&mts), None, &unknown, "mts", RouteSource::Pinned),
        ];
        for (pinned, learned, to, operator, source) in cases {
            let r = route(pinned, learned, &p, to, &dflt);
            assert_eq!(
                (r.operator.as_str(), r.source),
                (operator, source),
                "{to:?}"
            );
        }
    }

    #[test]
    fn next_operator_wraps_and_never_returns_the_tried_one() {
        let ops = [op("mts"), op("beeline"), op("megafon")];
        let next = |tried: &str| next_operator(&op(tried), &ops).map(OperatorName::as_str);
        assert_eq!(next("mts"), Some("beeline"));
        assert_eq!(next("beeline"), Some("megafon"));
        assert_eq!(next("megafon"), Some("mts"));
        assert_eq!(next("gone"), Some("mts"), "unconfigured: the first");
        assert_eq!(next_operator(&op("mts"), &[op("mts")]), None);
        assert_eq!(next_operator(&op("mts"), &[]), None);
        assert_eq!(
            next_operator(&op("mts"), &[op("mts"), op("mts")]),
            None,
            "never itself"
        );
    }
}
