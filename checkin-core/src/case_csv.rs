//! Confirmed cases from a CSV (`phone,confirmed_at[,contagious_from,
//! contagious_to]`): the one reading and the one set of rules shared by the
//! CLI's `checkin cases import` and the authority cabinet's upload. Pure: the
//! caller hands the file's bytes and records the cases it gets back. A bad
//! row is only refused (line, masked phone, reason); a bad header refuses
//! the file.

use chrono::{DateTime, Utc};

use crate::exposure::ExposureConfig;
use crate::model::NewCase;
use crate::msisdn::Msisdn;

/// Most data rows one file may have (the good ones are held in memory).
pub const CASE_ROWS_MAX: usize = 1_000_000;
/// A confirmation dated later than this after now is a mistake.
const CONFIRMED_AHEAD_MAX: chrono::Duration = chrono::Duration::days(1);

/// The columns, in the documented order; the last two may be left empty or
/// out (the service's defaults around `confirmed_at` then).
pub const CASE_COLUMNS: [&str; 4] = ["phone", "confirmed_at", "contagious_from", "contagious_to"];

/// A refused row: where, whose (masked) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub phone: String,
    pub reason: String,
}

/// Why a whole file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseFileError {
    /// The header (line 1) is unreadable or names the wrong columns.
    #[error("line 1: {0}")]
    Header(String),
    #[error("more than {CASE_ROWS_MAX} rows; split it")]
    TooManyRows,
}

/// The rows of a file: good ones as cases with their line numbers, and the
/// refused ones.
pub type CaseRows = (Vec<(u64, NewCase)>, Vec<Reject>);

/// The phone of a refused row as it may be shown: a valid number masked
/// like everywhere else, anything else reduced to its last two characters.
pub fn masked(raw: &str) -> String {
    if let Ok(phone) = Msisdn::parse(raw) {
        return phone.masked();
    }
    let chars: Vec<char> = raw.trim().chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{}{tail}", "*".repeat((chars.len() - 2).min(12)))
}

fn time(cell: Option<&str>, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    match cell.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                format!("{name} is not an RFC 3339 time (e.g. 2020-10-18T20:13:00+03:00)")
            }),
    }
}

/// The header's column of each of [`CASE_COLUMNS`] (`None`: absent).
fn columns(header: &csv::StringRecord) -> Result<[Option<usize>; 4], CaseFileError> {
    let mut at = [None; 4];
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}');
        match CASE_COLUMNS.iter().position(|c| *c == name) {
            Some(c) if at[c].is_none() => at[c] = Some(i),
            Some(_) => {
                return Err(CaseFileError::Header(format!(
                    "the header names {name:?} twice"
                )))
            }
            None => {
                return Err(CaseFileError::Header(format!(
                    "the header has an unknown column {name:?}; expected {}",
                    CASE_COLUMNS.join(",")
                )))
            }
        }
    }
    if at[0].is_none() || at[1].is_none() {
        return Err(CaseFileError::Header(format!(
            "the header must name at least phone,confirmed_at (expected {})",
            CASE_COLUMNS.join(",")
        )));
    }
    Ok(at)
}

/// One data row → a case, or why not.
fn parse_row(
    row: &csv::StringRecord,
    at: &[Option<usize>; 4],
    authority: Option<i64>,
    exposure: &ExposureConfig,
    now: DateTime<Utc>,
) -> Result<NewCase, String> {
    let cell = |c: usize| at[c].and_then(|i| row.get(i));
    let phone_text = cell(0).unwrap_or("").trim();
    if phone_text.is_empty() {
        return Err("phone is missing".into());
    }
    let phone = Msisdn::parse(phone_text).map_err(|e| format!("phone: {e}"))?;
    let confirmed_at = time(cell(1), "confirmed_at")?.ok_or("confirmed_at is missing")?;
    if confirmed_at > now + CONFIRMED_AHEAD_MAX {
        return Err("confirmed_at is in the future".into());
    }
    let case = exposure.new_case(
        authority,
        phone,
        confirmed_at,
        time(cell(2), "contagious_from")?,
        time(cell(3), "contagious_to")?,
    );
    if case.contagious_from > case.contagious_to {
        return Err("contagious_to is before contagious_from".into());
    }
    Ok(case)
}

/// The error kind's words without the row's content (a CSV error may quote it).
fn kind_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
        csv::ErrorKind::UnequalLengths { .. } => "wrong number of cells".into(),
        csv::ErrorKind::Io(_) => "read error".into(),
        _ => "not CSV".into(),
    }
}

/// The line a byte offset is on, counted onwards from the previous offset.
#[derive(Debug, Default)]
struct LineCounter {
    /// Where counting stopped, and the newlines before it.
    at: usize,
    newlines: u64,
}

impl LineCounter {
    /// The 1-based line of the first non-newline byte at or after `byte`
    /// (offsets asked in increasing order; an earlier one starts over).
    fn line_at(&mut self, bytes: &[u8], byte: u64) -> u64 {
        let mut at = usize::try_from(byte)
            .unwrap_or(bytes.len())
            .min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        if at < self.at {
            *self = LineCounter::default();
        }
        self.newlines += bytes[self.at..at].iter().filter(|b| **b == b'\n').count() as u64;
        self.at = at;
        1 + self.newlines
    }
}

/// Reads a file's `bytes`: the good rows as cases (with their line numbers,
/// recorded for `authority`) and the refused ones.
pub fn read_cases(
    bytes: &[u8],
    authority: Option<i64>,
    exposure: &ExposureConfig,
    now: DateTime<Utc>,
) -> Result<CaseRows, CaseFileError> {
    // The reader's own line count is off after blank lines (it counts from
    // where it started skipping them): lines are counted from the record's
    // first byte instead, onwards from the last record's (records come in
    // order), so a file is counted once, not once per row.
    let mut lines = LineCounter::default();
    let mut line_at = |byte: u64| lines.line_at(bytes, byte);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| CaseFileError::Header(format!("unreadable header: {}", kind_text(&e))))?
        .clone();
    let at = columns(&header)?;
    let (mut good, mut rejected) = (Vec::new(), Vec::new());
    for (n, row) in reader.records().enumerate() {
        if n >= CASE_ROWS_MAX {
            return Err(CaseFileError::TooManyRows);
        }
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                rejected.push(Reject {
                    line,
                    phone: String::new(),
                    reason: format!("unreadable row: {}", kind_text(&e)),
                });
                continue;
            }
        };
        let line = row.position().map_or(0, |p| line_at(p.byte()));
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match parse_row(&row, &at, authority, exposure, now) {
            Ok(case) => good.push((line, case)),
            Err(reason) => rejected.push(Reject {
                line,
                phone: masked(at[0].and_then(|i| row.get(i)).unwrap_or("")),
                reason,
            }),
        }
    }
    Ok((good, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn phones_are_masked_valid_or_not() {
        assert_eq!(masked("+79161234567"), "+7916***4567");
        assert_eq!(masked("8 916 123-45-67"), "+7916***4567");
        assert_eq!(masked("12345"), "***45");
        assert_eq!(masked("=cmd|' /C calc'!A0"), "************A0");
        assert_eq!(masked("12"), "**");
    }

    #[test]
    fn rows_are_kept_or_refused_with_their_line() {
        let now = Utc.with_ymd_and_hms(2020, 10, 20, 12, 0, 0).unwrap();
        let file = "phone,confirmed_at\n+79161234567,2020-10-18T20:13:00+03:00\n\n12,2020-10-18T20:13:00Z\n";
        let (good, bad) = read_cases(file.as_bytes(), Some(3), &ExposureConfig::default(), now)
            .expect("a good header");
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].0, 2);
        assert_eq!(good[0].1.authority_id, Some(3));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4);
        assert!(bad[0].reason.starts_with("phone:"), "{:?}", bad[0]);
        assert!(matches!(
            read_cases(b"phone,name\n", None, &ExposureConfig::default(), now),
            Err(CaseFileError::Header(_))
        ));
    }
}
