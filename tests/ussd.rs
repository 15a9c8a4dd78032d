//! USSD check-in end to end: the real gateway and the bundled simulator's
//! USSD gateway role (`POST /api/ussd`), on 127.0.0.1:0. One-shot (also on
//! PostgreSQL), the menu, a typo then the right code, a wrong length, an
//! unknown code, `0`, an abort, a timeout, every operator profile of the
//! simulator (its_session_info, user_message_reference, none, p2), dials in
//! 0x0F and in UCS2, screens in UCS2.

mod common;

use std::time::Duration;

use checkin_core::texts::ussd as screens;
use checkin_core::{Channel, Msisdn, VenueCode};
use common::{backends, http, start, start_with, Running};
use serde_json::{json, Value};

/// `POST /api/ussd`: dials `dial` from `from`; the first screen.
async fn dial(run: &Running, from: &str, dial: &str, extra: Value) -> Value {
    let mut body = json!({ "from": from, "dial": dial });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, screen) = http(run.http, "POST", "/api/ussd", Some(&body)).await;
    assert_eq!(status, 200, "{}: {dial}: {screen}", run.label);
    screen
}

/// `POST /api/ussd/{dialog}`: answers `text`; the next screen.
async fn answer(run: &Running, screen: &Value, text: &str) -> Value {
    let dialog = screen["dialog"].as_str().unwrap();
    let path = format!("/api/ussd/{dialog}");
    let (status, next) = http(run.http, "POST", &path, Some(&json!({ "answer": text }))).await;
    assert_eq!(status, 200, "{}: answer {text:?}: {next}", run.label);
    next
}

/// A question: the dialog continues (`ussd_service_op` 2).
fn asks(screen: &Value, text: &str) {
    assert_eq!(screen["screen"], text, "{screen}");
    assert_eq!(screen["continues"], true, "{screen}");
    assert_eq!(screen["ussd_service_op"], 2, "{screen}");
    assert_eq!(
        screen["data_coding"], 8,
        "a Cyrillic screen is UCS2: {screen}"
    );
}

/// A final screen (`ussd_service_op` 17) starting with `text`.
fn ends_with_screen(screen: &Value, text: &str) {
    let shown = screen["screen"].as_str().unwrap();
    assert!(
        shown.starts_with(text),
        "{shown:?} should start with {text:?}"
    );
    assert!(shown.chars().count() <= screens::SCREEN_CHARS_MAX);
    assert_eq!(screen["continues"], false, "{screen}");
    assert_eq!(screen["ussd_service_op"], 17, "{screen}");
    assert_eq!(screen["data_coding"], 8, "{screen}");
}

/// A valid code no premises has.
fn unknown_code(taken: &VenueCode) -> VenueCode {
    loop {
        let code = VenueCode::generate(&mut rand::thread_rng());
        if code != *taken {
            return code;
        }
    }
}

/// The code with its check digit changed: a typo.
fn typo(code: &VenueCode) -> String {
    let mut digits = code.digits().into_bytes();
    digits[8] = if digits[8] == b'0' { b'1' } else { b'0' };
    String::from_utf8(digits).unwrap()
}

#[tokio::test]
async fn one_shot_checks_in_on_every_backend_with_the_sms_confirmation() {
    for (label, url) in backends().await {
        let run = start(label, url).await;
        let premises = run.premises("ул. Тверская, 13").await;
        let code = premises.code.digits();
        let from = "+79161110001";
        let screen = dial(&run, from, &format!("*7377*{code}#"), json!({})).await;
        ends_with_screen(&screen, "Вход отмечен: ул. Тверская, 13, ");
        assert!(screen["screen"].as_str().unwrap().ends_with("SMS придёт"));
        // The usual SMS confirmation follows.
        let sms = run.until_messages(from, 1).await;
        assert!(
            sms[0].starts_with("Вход отмечен: ул. Тверская, 13"),
            "{sms:?}"
        );
        let rows = run
            .gateway
            .store
            .checkins()
            .checkins_of(&Msisdn::parse(from).unwrap())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{label}");
        assert_eq!(rows[0].channel, Channel::Ussd, "{label}");

        // Groups split by `*` or `-`: the same visit again.
        let (a, b, c) = (&code[..3], &code[3..6], &code[6..]);
        for dialled in [format!("*7377*{a}*{b}*{c}#"), format!("*7377*{a}-{b}-{c}#")] {
            let screen = dial(&run, from, &dialled, json!({})).await;
            ends_with_screen(&screen, "Вход уже отмечен: ул. Тверская, 13, ");
        }
        run.stop().await;
    }
}

#[tokio::test]
async fn the_menu_takes_a_typo_then_the_code_under_every_profile() {
    let run = start("sqlite", None).await;
    let premises = run.premises("Кафе «Ромашка»").await;
    let code = premises.code.digits();
    for (i, (profile, split_dial)) in [
        ("its_session_info", false),
        ("umr", false),
        ("none", false),
        ("p2", false),
        ("its_session_info", true),
        ("umr", true),
    ]
    .into_iter()
    .enumerate()
    {
        let from = format!("+7916222000{i}");
        let options = json!({ "profile": profile, "split_dial": split_dial });
        let screen = dial(&run, &from, "*7377#", options).await;
        asks(&screen, &screens::ask());
        let again = answer(&run, &screen, &typo(&premises.code)).await;
        asks(&again, &screens::ask_typo());
        let last = answer(&run, &screen, &code).await;
        ends_with_screen(&last, "Вход отмечен: Кафе «Ромашка», ");
    }
    run.stop().await;
}

#[tokio::test]
async fn wrong_length_unknown_code_zero_and_too_many_tries() {
    let run = start("sqlite", None).await;
    let premises = run.premises("ул. Арбат, 1").await;
    let unknown = unknown_code(&premises.code);

    // One-shot with eight digits: asked again, then an unknown code, then 0.
    let screen = dial(&run, "+79163330001", "*7377*12345678#", json!({})).await;
    asks(&screen, &screens::ask_wrong_length(8));
    let next = answer(&run, &screen, &unknown.digits()).await;
    asks(&next, &screens::ask_unknown(&unknown));
    let last = answer(&run, &screen, "0").await;
    ends_with_screen(&last, &screens::cancelled("*7377#"));

    // Three questions again at most, then the dialog ends.
    let screen = dial(&run, "+79163330002", "*7377#", json!({ "profile": "umr" })).await;
    asks(&screen, &screens::ask());
    for _ in 0..3 {
        let next = answer(&run, &screen, "12").await;
        asks(&next, &screens::ask_wrong_length(2));
    }
    let last = answer(&run, &screen, "12").await;
    ends_with_screen(&last, &screens::too_many_attempts("*7377#"));
    let count = run
        .gateway
        .store
        .checkins()
        .count_checkins(premises.id)
        .await
        .unwrap();
    assert_eq!(count, 0);

    // Another service's code: a clear final screen.
    let screen = dial(&run, "+79163330003", "*4006#", json!({ "profile": "p2" })).await;
    ends_with_screen(&screen, &screens::not_understood("*7377#"));
    run.stop().await;
}

#[tokio::test]
async fn an_abort_ends_the_dialog_and_a_timed_out_one_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), None);
    config.simulator_ussd.dialog_timeout_ms = 300;
    let run = start_with("sqlite", config, dir).await;
    let premises = run.premises("ул. Арбат, 2").await;

    // The user cancels: the network's abort is acknowledged, no screen goes
    // back (the simulator would count it unmatched), and a new dial works.
    for profile in ["its_session_info", "umr", "none"] {
        let from = "+79164440001";
        let screen = dial(&run, from, "*7377#", json!({ "profile": profile })).await;
        asks(&screen, &screens::ask());
        let path = format!("/api/ussd/{}", screen["dialog"].as_str().unwrap());
        let (status, closed) = http(run.http, "DELETE", &path, None).await;
        assert_eq!(status, 200, "{closed}");
        assert_eq!(closed["status"], "ESME_ROK", "{profile}: {closed}");
    }
    let (_, stats) = http(run.http, "GET", "/api/stats", None).await;
    assert_eq!(stats["ussd"]["unmatched"], 0, "{stats}");

    // Past `dialog_timeout_ms` the gateway has forgotten the dialog: the
    // answer gets a final screen saying so, and nothing is recorded.
    let screen = dial(&run, "+79164440002", "*7377#", json!({ "profile": "umr" })).await;
    asks(&screen, &screens::ask());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let last = answer(&run, &screen, &premises.code.digits()).await;
    ends_with_screen(&last, &screens::expired("*7377#"));
    let count = run
        .gateway
        .store
        .checkins()
        .count_checkins(premises.id)
        .await
        .unwrap();
    assert_eq!(count, 0);
    run.stop().await;
}

#[tokio::test]
async fn dials_in_0x0f_and_in_ucs2_get_ucs2_screens() {
    let run = start("sqlite", None).await;
    let premises = run.premises("ул. Ленина, 5").await;
    let code = premises.code.digits();
    for (i, data_coding) in [15, 8, 0].into_iter().enumerate() {
        let from = format!("+7916555000{i}");
        let options = json!({ "data_coding": data_coding });
        let screen = dial(&run, &from, "*7377#", options).await;
        asks(&screen, &screens::ask());
        let last = answer(&run, &screen, &code).await;
        ends_with_screen(&last, "Вход отмечен: ул. Ленина, 5, ");
    }
    run.stop().await;
}
