//! `checkin cases import FILE.csv`: confirmed cases in bulk, through the same
//! core calls as the authority's API (`Cases::record_and_match_batch`, or
//! `Cases::dry_run` with `--dry-run`), with a progress bar on a terminal and a
//! summary of the rows refused: line number and reason, the phone masked,
//! optionally written to a rejects CSV (every cell through `csv_cell`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use checkin_core::{csv_cell, ExposureConfig, Msisdn, NewCase, Store};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// Cases recorded per transaction (each batch is all or nothing; the SQLite
/// writer is held about a second for this many).
pub const IMPORT_BATCH_MAX: usize = 1000;
/// Most data rows one file may have (the good ones are held in memory).
pub const IMPORT_ROWS_MAX: usize = 1_000_000;
/// Largest file read (it is read whole: line numbers are counted in it).
pub const IMPORT_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Refused rows listed on stderr; the rest only counted (and in `--rejects`).
const REJECTS_SHOWN_MAX: usize = 20;
/// A confirmation dated later than this after now is a mistake.
const CONFIRMED_AHEAD_MAX: chrono::Duration = chrono::Duration::days(1);

/// The columns, in the documented order; the last two may be left empty or
/// out (the service's defaults around `confirmed_at` then).
const COLUMNS: [&str; 4] = ["phone", "confirmed_at", "contagious_from", "contagious_to"];

/// What `checkin cases import` is asked to do.
#[derive(Debug)]
pub struct ImportArgs {
    pub file: PathBuf,
    pub authority: Option<i64>,
    pub dry_run: bool,
    pub rejects: Option<PathBuf>,
}

/// A refused row: where, whose (masked) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub phone: String,
    pub reason: String,
}

/// The phone of a refused row as it may be shown: a valid number masked
/// like everywhere else, anything else reduced to its last two characters.
fn masked(raw: &str) -> String {
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

/// The header's column of each of [`COLUMNS`] (`None`: absent).
fn columns(header: &csv::StringRecord) -> anyhow::Result<[Option<usize>; 4]> {
    let mut at = [None; 4];
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}');
        match COLUMNS.iter().position(|c| *c == name) {
            Some(c) if at[c].is_none() => at[c] = Some(i),
            Some(_) => bail!("the header names {name:?} twice"),
            None => bail!(
                "the header has an unknown column {name:?}; expected {}",
                COLUMNS.join(",")
            ),
        }
    }
    if at[0].is_none() || at[1].is_none() {
        bail!(
            "the header must name at least phone,confirmed_at (expected {})",
            COLUMNS.join(",")
        );
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

/// The rows of a file: good ones as cases with their line numbers, and the
/// refused ones.
pub type ReadRows = (Vec<(u64, NewCase)>, Vec<Reject>);

/// Reads `file`: the good rows as cases (with their line numbers) and the
/// refused ones. A file that cannot be read, or whose header is wrong, is an
/// error; a bad row is only refused.
pub fn read_cases(
    file: &Path,
    authority: Option<i64>,
    exposure: &ExposureConfig,
    now: DateTime<Utc>,
) -> anyhow::Result<ReadRows> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("opening {}", file.display()))?
        .len();
    if size > IMPORT_BYTES_MAX {
        bail!(
            "{} is larger than {IMPORT_BYTES_MAX} bytes; split it",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // The reader's own line count is off after blank lines (it counts from
    // where it started skipping them): lines are counted from the record's
    // first byte instead.
    let line_at = |byte: u64| -> u64 {
        let mut at = usize::try_from(byte)
            .unwrap_or(bytes.len())
            .min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        1 + bytes[..at].iter().filter(|b| **b == b'\n').count() as u64
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .with_context(|| format!("reading the header of {}", file.display()))?
        .clone();
    let at = columns(&header).with_context(|| format!("{}: line 1", file.display()))?;
    let (mut good, mut rejected) = (Vec::new(), Vec::new());
    for (n, row) in reader.records().enumerate() {
        if n >= IMPORT_ROWS_MAX {
            bail!(
                "{} has more than {IMPORT_ROWS_MAX} rows; split it",
                file.display()
            );
        }
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                rejected.push(Reject {
                    line,
                    phone: String::new(),
                    reason: format!("unreadable row: {}", e.kind_text()),
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

/// The error kind's words without the row's content (a CSV error may quote it).
trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for csv::Error {
    fn kind_text(&self) -> String {
        match self.kind() {
            csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
            csv::ErrorKind::UnequalLengths { .. } => "wrong number of cells".into(),
            csv::ErrorKind::Io(_) => "read error".into(),
            _ => "not CSV".into(),
        }
    }
}

/// Writes the refused rows as CSV (`line,phone,reason`), every cell safe.
pub fn write_rejects(path: &Path, rejected: &[Reject]) -> anyhow::Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    writer.write_record(["line", "phone", "reason"])?;
    for r in rejected {
        let line = r.line.to_string();
        writer.write_record([
            csv_cell(&line).as_ref(),
            csv_cell(&r.phone).as_ref(),
            csv_cell(&r.reason).as_ref(),
        ])?;
    }
    writer
        .flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn progress(total: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} cases ({eta} left) {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// `checkin cases import`: prints one JSON line (the summary) on stdout,
/// the refused rows on stderr.
pub async fn import(store: &Store, args: &ImportArgs) -> anyhow::Result<serde_json::Value> {
    let now = Utc::now();
    let exposure = store.config().exposure;
    let (good, rejected) = read_cases(&args.file, args.authority, &exposure, now)?;
    let bar = progress(good.len());
    let (mut visits, mut people, mut unreachable, mut queued, mut recorded) = (0, 0, 0, 0, 0);
    for chunk in good.chunks(IMPORT_BATCH_MAX) {
        let cases: Vec<NewCase> = chunk.iter().map(|(_, c)| c.clone()).collect();
        if args.dry_run {
            for case in &cases {
                let counts = store
                    .cases()
                    .dry_run(case, now)
                    .await
                    .context("matching a case (dry run)")?;
                visits += counts.visits;
                people += counts.people;
                unreachable += counts.unreachable;
            }
        } else {
            let done = store
                .cases()
                .record_and_match_batch(&cases, now)
                .await
                .with_context(|| {
                    format!(
                        "recording the cases of lines {}..={} ({recorded} recorded before them; \
                         importing the file again queues no alert twice)",
                        chunk[0].0,
                        chunk[chunk.len() - 1].0
                    )
                })?;
            for case in &done {
                visits += case.counts.visits;
                people += case.counts.people;
                unreachable += case.counts.unreachable;
                queued += case.alerts_queued;
            }
            recorded += done.len();
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for r in rejected.iter().take(REJECTS_SHOWN_MAX) {
        eprintln!("line {}: {} (phone {})", r.line, r.reason, r.phone);
    }
    if rejected.len() > REJECTS_SHOWN_MAX {
        eprintln!(
            "… and {} more refused rows{}",
            rejected.len() - REJECTS_SHOWN_MAX,
            if args.rejects.is_some() {
                " (all in the rejects file)"
            } else {
                " (write them all with --rejects FILE.csv)"
            }
        );
    }
    if let Some(path) = &args.rejects {
        write_rejects(path, &rejected)?;
    }
    let mut summary = json!({
        "rows": good.len() + rejected.len(),
        "accepted": good.len(),
        "rejected": rejected.len(),
        "visits": visits,
        "people": people,
        "unreachable": unreachable,
    });
    if args.dry_run {
        summary["dry_run"] = true.into();
    } else {
        summary["recorded"] = recorded.into();
        summary["alerts_queued"] = queued.into();
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn phones_are_masked_valid_or_not() {
        assert_eq!(masked("+79161234567"), "+7916***4567");
        assert_eq!(masked("8 916 123-45-67"), "+7916***4567");
        assert_eq!(masked("12345"), "***45");
        assert_eq!(masked("=cmd|' /C calc'!A0"), "************A0");
        assert_eq!(masked("12"), "**");
    }
}
