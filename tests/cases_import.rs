//! `checkin cases import` with the real binary on a CSV of good and bad
//! rows: the good ones recorded and matched (an alert queued for the exposed
//! visitor), each bad one refused with its line and reason and a masked
//! phone, the rejects file safe to open in a spreadsheet, and a dry run that
//! records nothing.

mod common;

use common::cli::{checkin, json_line, premises_code};

use std::path::Path;

use checkin::config::{Config, Overrides};
use checkin_core::{Channel, Msisdn, NewCheckIn, PhoneVault, Store, VenueCode};
use chrono::{TimeZone, Utc};

/// The store the binary uses, opened in the test to seed visits and count.
async fn open(data: &Path) -> Store {
    let config = Config::resolve(&Overrides {
        data_dir: Some(data.to_owned()),
        ..Overrides::default()
    })
    .unwrap();
    let keys = config.load_keys().unwrap();
    Store::open(
        &config.database_url,
        PhoneVault::new(&keys),
        config.store.clone(),
    )
    .await
    .unwrap()
}

const CASE_PHONE: &str = "+79161234567";

#[tokio::test]
async fn a_csv_with_good_and_bad_rows() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let authority = json_line(&checkin(&data, &["authority", "create", "--name", "РПН"]));
    let authority_id = authority["id"].as_i64().unwrap().to_string();
    let code = VenueCode::parse(&premises_code(&data, "ул. Тверская, 13")).unwrap();

    // The case and one visitor at the same premises, ten minutes apart.
    let store = open(&data).await;
    let at = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap();
    for (phone, minutes) in [(CASE_PHONE, 0), ("+79160000001", 10)] {
        store
            .checkins()
            .record_checkin(&NewCheckIn {
                phone: Msisdn::parse(phone).unwrap(),
                code,
                channel: Channel::Sms,
                at: at + chrono::Duration::minutes(minutes),
                consent: true,
            })
            .await
            .unwrap();
    }
    store.close().await;

    let csv = root.path().join("cases.csv");
    std::fs::write(
        &csv,
        "phone,confirmed_at,contagious_from,contagious_to\n\
         +79161234567,2020-10-18T20:13:00+03:00,,\n\
         12345,2020-10-18T20:13:00+03:00,,\n\
         +79169876543,18.10.2020,,\n\
         \n\
         8 916 555-44-33,2020-10-19T10:00:00Z,2020-10-19T00:00:00Z,2020-10-18T00:00:00Z\n\
         =cmd|' /C calc'!A0,2020-10-19T10:00:00Z,,\n\
         +79160000009,2020-10-19T10:00:00Z,2020-10-10T00:00:00Z,2020-10-20T00:00:00Z\n",
    )
    .unwrap();
    let csv_arg = csv.to_str().unwrap();

    // The dry run first: counts, nothing recorded.
    let dry = checkin(&data, &["cases", "import", csv_arg, "--dry-run"]);
    let summary = json_line(&dry);
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["accepted"], 2);
    assert_eq!(summary["rejected"], 4);
    assert_eq!(summary["visits"], 1, "{summary}");
    let store = open(&data).await;
    assert_eq!(store.cases().count_cases().await.unwrap(), 0);
    store.close().await;

    let rejects = root.path().join("rejects.csv");
    let output = checkin(
        &data,
        &[
            "cases",
            "import",
            csv_arg,
            "--authority",
            &authority_id,
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    let summary = json_line(&output);
    assert_eq!(summary["rows"], 6, "{summary}");
    assert_eq!(summary["accepted"], 2);
    assert_eq!(summary["recorded"], 2);
    assert_eq!(summary["rejected"], 4);
    assert_eq!(summary["visits"], 1);
    assert_eq!(summary["people"], 1);
    assert_eq!(summary["alerts_queued"], 1);

    // Each refused row by line and reason, never a phone in full.
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("line 3: phone:"), "{stderr}");
    assert!(
        stderr.contains("line 4: confirmed_at is not an RFC 3339 time"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 6: contagious_to is before contagious_from"),
        "{stderr}"
    );
    assert!(stderr.contains("line 7: phone:"), "{stderr}");
    for phone in [
        "79169876543",
        "9169876543",
        "555-44-33",
        "9165554433",
        "cmd|",
    ] {
        assert!(!stderr.contains(phone), "{phone} leaked: {stderr}");
    }
    // No progress bar drawn into a pipe.
    assert!(!stderr.contains("cases ("), "{stderr}");

    // The rejects file: every cell safe in a spreadsheet.
    let written = std::fs::read_to_string(&rejects).unwrap();
    let mut lines = written.lines();
    assert_eq!(lines.next(), Some("line,phone,reason"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "{written}");
    assert!(rows[1].starts_with("4,'+7916***6543,"), "{written}");
    assert!(rows[2].starts_with("6,'+7916***4433,"), "{written}");
    for row in &rows {
        for cell in row.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} in {written}"
            );
        }
    }
    assert!(!written.contains("9169876543") && !written.contains("cmd|"));

    let store = open(&data).await;
    assert_eq!(store.cases().count_cases().await.unwrap(), 2);
    store.close().await;

    // The same file again: the cases are recorded again, no alert twice.
    let again = json_line(&checkin(&data, &["cases", "import", csv_arg]));
    assert_eq!(again["alerts_queued"], 0, "{again}");
}

#[test]
fn a_wrong_header_is_refused_whole() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let csv = root.path().join("cases.csv");
    std::fs::write(&csv, "телефон,дата\n+79161234567,2020-10-18T20:13:00Z\n").unwrap();
    let output = checkin(&data, &["cases", "import", csv.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("unknown column"), "{stderr}");
    assert!(output.stdout.is_empty());
}
