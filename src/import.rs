//! `checkin cases import FILE.csv`: confirmed cases in bulk, through the same
//! core calls as the authority's API (`Cases::record_and_match_batch`, or
//! `Cases::dry_run_batch` with `--dry-run`), with a progress bar on a terminal and a
//! summary of the rows refused: line number and reason, the phone masked,
//! optionally written to a rejects CSV (every cell through `csv_cell`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use checkin_core::case_csv::{self, CaseRows, Reject};
use checkin_core::{csv_cell, ExposureConfig, NewCase, Store};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// Cases recorded per transaction (each batch is all or nothing; the SQLite
/// writer is held about a second for this many).
pub const IMPORT_BATCH_MAX: usize = 1000;
/// Largest file read (it is read whole: line numbers are counted in it).
pub const IMPORT_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Refused rows listed on stderr; the rest only counted (and in `--rejects`).
const REJECTS_SHOWN_MAX: usize = 20;

/// What `checkin cases import` is asked to do.
#[derive(Debug)]
pub struct ImportArgs {
    pub file: PathBuf,
    pub authority: Option<i64>,
    pub dry_run: bool,
    pub rejects: Option<PathBuf>,
}

/// Reads `file` with the core's case CSV rules (`checkin_core::case_csv`,
/// the cabinet's upload reads the same way): the good rows as cases (with
/// their line numbers) and the refused ones. A file that cannot be read, or
/// whose header is wrong, is an error; a bad row is only refused.
pub fn read_cases(
    file: &Path,
    authority: Option<i64>,
    exposure: &ExposureConfig,
    now: DateTime<Utc>,
) -> anyhow::Result<CaseRows> {
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
    case_csv::read_cases(&bytes, authority, exposure, now)
        .with_context(|| format!("{}", file.display()))
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
            let all = store
                .cases()
                .dry_run_batch(&cases)
                .await
                .context("matching the cases (dry run)")?;
            for counts in all {
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
