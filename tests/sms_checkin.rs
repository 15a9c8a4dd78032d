//! SMS check-in end to end: simulator → SMPP link → parser → core → reply in
//! the outbox → notifier → link → simulator, on SQLite and PostgreSQL, driven
//! only through the simulator's control API.

mod common;

use checkin_core::{texts, Msisdn, ServiceZone, VenueCode};
use common::{backends, start, Running};

async fn confirmation_for(run: &Running, phone: &str, address: &str) -> String {
    let replies = run.until_messages(phone, 1).await;
    let reply = replies.last().unwrap().clone();
    assert!(
        reply.starts_with(&format!("Вход отмечен: {address}, ")),
        "{}: {reply}",
        run.label
    );
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_variant_checks_in_and_is_confirmed() {
    for (label, url) in backends().await {
        let run = start(label, url).await;
        let p = run.premises("ул. Тверская, 13").await;
        let (d, code) = (p.code.digits(), p.code.to_string());
        let variants = [
            format!("ВХОД*{code}"),
            format!("вход*{code}"),
            format!("Вход#{d}"),
            format!("ВХОД {} {} {}.", &d[..3], &d[3..6], &d[6..]),
            format!("ВХОД{code}"),
            format!("  ВХОД * {} – {} — {}  ", &d[..3], &d[3..6], &d[6..]),
            format!("BXOД*{code}"),
            format!("VHOD {d}"),
            format!("vkhod*{code}"),
            code.clone(),
            format!("\u{a0}ВХОД*{code}\u{a0}"),
        ];
        for (i, text) in variants.iter().enumerate() {
            let phone = format!("+7916100{:04}", i);
            let report = run.send_mo(&phone, text).await;
            assert_eq!(report["status"], "ESME_ROK", "{label}: {text:?} {report}");
            let reply = confirmation_for(&run, &phone, "ул. Тверская, 13").await;
            assert!(reply.contains(" в "), "{label}: the time is named: {reply}");
        }
        assert_eq!(
            run.gateway.store.count_checkins(p.id).await.unwrap(),
            variants.len() as u64,
            "{label}"
        );
        run.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_gets_its_own_reply_and_records_nothing() {
    for (label, url) in backends().await {
        let run = start(label, url).await;
        let p = run.premises("пр. Мира, 5").await;
        let closed = run.premises("пр. Мира, 7").await;
        run.gateway
            .store
            .set_premises_active(closed.id, false)
            .await
            .unwrap();
        let mut unknown = VenueCode::generate(&mut rand::thread_rng());
        while unknown == p.code || unknown == closed.code {
            unknown = VenueCode::generate(&mut rand::thread_rng());
        }
        let mut typo: Vec<char> = p.code.digits().chars().collect();
        typo[8] = if typo[8] == '0' { '1' } else { '0' };
        let typo: String = typo.into_iter().collect();
        let cases = [
            (format!("ВХОД*{unknown}"), texts::code_not_found(&unknown)),
            (format!("ВХОД*{typo}"), texts::code_typo()),
            ("ВХОД*ХХХ-ХХХ-ХХХ".to_owned(), texts::template_copied()),
            ("ВХОД*123-456-78".to_owned(), texts::wrong_length(8)),
            (
                format!("ВХОД*{}", closed.code),
                texts::premises_inactive(&closed),
            ),
            ("ПОМОЩЬ".to_owned(), texts::help()),
            ("?".to_owned(), texts::help()),
            ("привет".to_owned(), texts::unrecognized()),
        ];
        for (i, (text, expect)) in cases.iter().enumerate() {
            let phone = format!("+7916200{:04}", i);
            let report = run.send_mo(&phone, text).await;
            assert_eq!(report["status"], "ESME_ROK", "{label}: {text:?}");
            let replies = run.until_messages(&phone, 1).await;
            assert_eq!(&replies[0], expect, "{label}: {text:?}");
        }
        assert_eq!(
            run.gateway.store.count_checkins(p.id).await.unwrap(),
            0,
            "{label}"
        );
        assert_eq!(
            run.gateway.store.count_checkins(closed.id).await.unwrap(),
            0,
            "{label}"
        );
        run.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_mo_is_not_counted_twice_and_stop_withdraws_consent() {
    for (label, url) in backends().await {
        let run = start(label, url).await;
        let p = run.premises("ул. Арбат, 1").await;
        let phone = "+79161234567";
        let text = format!("ВХОД*{}", p.code);
        run.send_mo(phone, &text).await;
        run.send_mo(phone, &text).await;
        confirmation_for(&run, phone, "ул. Арбат, 1").await;
        assert_eq!(
            run.gateway.store.count_checkins(p.id).await.unwrap(),
            1,
            "{label}"
        );

        let report = run.send_mo(phone, "СТОП").await;
        assert_eq!(report["status"], "ESME_ROK");
        let replies = run.until_messages(phone, 2).await;
        assert_eq!(
            replies.len(),
            2,
            "{label}: one confirmation, one opt-out: {replies:?}"
        );
        assert_eq!(replies[1], texts::opted_out(), "{label}");
        let visits = run
            .gateway
            .store
            .checkins_of(&Msisdn::parse(phone).unwrap())
            .await
            .unwrap();
        assert!(
            visits.iter().all(|v| !v.consent),
            "{label}: no alerts after СТОП"
        );
        // The confirmation names the visit time in Moscow time.
        let at = ServiceZone::default().day_and_time(visits[0].at);
        assert!(
            replies[0].contains(&at),
            "{label}: {} lacks {at}",
            replies[0]
        );
        run.stop().await;
    }
}
