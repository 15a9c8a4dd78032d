//! The replies that must fit one segment (issue 23), over the corpus of
//! Moscow addresses in `tests/data/addresses.txt` (written by
//! `tests/data/gen_addresses.py`): with no SMS name set, every confirmation
//! and repeat answer is one segment as the link cuts it (`smpp-text`), and
//! still names the street (its start) and the house number; the OTP SMS is
//! one segment; every label the store accepts makes one-segment texts.

use checkin_core::otp::{sms_text, OtpCode};
use checkin_core::texts::{self, SMS_LABEL_UNITS_MAX};
use checkin_core::{Premises, ServiceZone, VenueCode};
use chrono::{DateTime, TimeZone, Utc};

const CORPUS: &str = include_str!("data/addresses.txt");

/// Segments of `text` as the link would send it.
fn segments(text: &str) -> usize {
    smpp_text::encode_auto(text, 0).unwrap().parts.len()
}

fn premises(address: &str, sms_label: Option<&str>) -> Premises {
    Premises {
        id: 1,
        org_id: 1,
        code: VenueCode::parse("572-094-130").unwrap(),
        address: address.to_owned(),
        sms_label: sms_label.map(str::to_owned),
        kind: "кафе".into(),
        stay_minutes: 60,
        active: true,
        created_at: Utc.with_ymd_and_hms(2020, 10, 1, 0, 0, 0).unwrap(),
    }
}

/// The widest date (`28 февр. в 23:59`) and a narrow one (`1 мая в 09:05`).
fn dates() -> [DateTime<Utc>; 2] {
    [
        Utc.with_ymd_and_hms(2021, 2, 28, 20, 59, 0).unwrap(),
        Utc.with_ymd_and_hms(2021, 5, 1, 6, 5, 0).unwrap(),
    ]
}

/// `number` stands in `place` as a whole number: not followed by a digit
/// (`3` is not in `37`) nor preceded by one.
fn names_number(place: &str, number: &str) -> bool {
    place.match_indices(number).any(|(at, _)| {
        let before = place[..at].chars().next_back();
        let after = place[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[test]
fn every_corpus_address_makes_one_segment_naming_street_and_house() {
    let zone = ServiceZone::default();
    let mut lines = 0;
    let mut shortened = 0;
    let mut failures = Vec::new();
    for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split('\t');
        let (address, street, house) = (
            fields.next().unwrap(),
            fields.next().expect("a street column"),
            fields.next().expect("a house column"),
        );
        lines += 1;
        let p = premises(address, None);
        let place = texts::sms_place(&p);
        if place != address {
            shortened += 1;
        }
        let street_start: String = street.chars().take(5).collect();
        if !place.contains(&street_start) || !names_number(&place, house) {
            failures.push(format!("{address} -> {place}"));
        }
        for at in dates() {
            for text in [
                texts::confirmation(&p, at, &zone),
                texts::already_checked_in(&p, at, &zone),
            ] {
                if segments(&text) != 1 {
                    failures.push(format!("{} segments: {text}", segments(&text)));
                }
            }
        }
    }
    assert!(lines >= 1000, "the corpus holds {lines} addresses");
    assert!(
        failures.is_empty(),
        "{} of {lines} addresses fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Most corpus addresses are longer than an SMS allows: the rule is used.
    assert!(shortened * 2 > lines, "{shortened} of {lines} shortened");
}

#[test]
fn every_accepted_label_makes_one_segment_and_a_longer_one_is_refused() {
    let zone = ServiceZone::default();
    let labels = [
        "Ж".repeat(SMS_LABEL_UNITS_MAX),
        "W".repeat(SMS_LABEL_UNITS_MAX),
        format!("{}🙂", "Ж".repeat(SMS_LABEL_UNITS_MAX - 2)),
        "Кафе «Ромашка»".to_owned(),
    ];
    for label in &labels {
        let label = texts::sms_label(label).unwrap().unwrap();
        let p = premises("ул. Тверская, 13", Some(&label));
        for at in dates() {
            assert_eq!(segments(&texts::confirmation(&p, at, &zone)), 1, "{label}");
            assert_eq!(
                segments(&texts::already_checked_in(&p, at, &zone)),
                1,
                "{label}"
            );
        }
    }
    // One unit more: the confirmation on the widest date would be two.
    let over = "Ж".repeat(SMS_LABEL_UNITS_MAX + 1);
    assert!(texts::sms_label(&over).is_err());
    let text = texts::confirmation_at(&over, dates()[0], &zone);
    assert_eq!(segments(&text), 2, "the limit is the tightest: {text}");
}

#[test]
fn the_otp_sms_is_one_segment() {
    let text = sms_text(&OtpCode::parse("123456").unwrap());
    assert_eq!(segments(&text), 1, "{text}");
}

#[test]
fn the_alert_keeps_the_seeds_text_and_its_four_segments() {
    let text = texts::exposure_alert(dates()[0], &ServiceZone::default());
    assert!(text.starts_with("В организации, которую вы посетили 28 февр. в 23:59, находился"));
    assert_eq!(segments(&text), 4, "{text}");
}
