//! SMS handling on both backends: each kind of text gets its reply in the same
//! commit, redeliveries are not counted twice, СТОП withdraws consent.

mod common;

use checkin_core::store::{InboundSms, Rejection, SmsOutcome};
use checkin_core::{texts, Msisdn, ServiceZone, Store, StoreConfig, VenueCode};
use common::{backends, premises, sms, t0};

/// The last reply queued for `phone`.
async fn last_reply(store: &Store, phone: &str) -> String {
    let all = store
        .outbox()
        .messages_to(&Msisdn::parse(phone).unwrap())
        .await
        .unwrap();
    all.last().expect("a reply was queued").text.clone()
}

#[tokio::test]
async fn each_kind_of_text_gets_its_reply() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let code = p.code.to_string();
        let mut unknown = VenueCode::generate(&mut rand::thread_rng());
        while unknown == p.code {
            unknown = VenueCode::generate(&mut rand::thread_rng());
        }
        let digits = p.code.digits();
        let mut typo: Vec<char> = digits.chars().collect();
        typo[8] = if typo[8] == '0' { '1' } else { '0' };
        let typo: String = typo.into_iter().collect();

        let cases: Vec<(&str, String, SmsOutcome, String)> = vec![
            (
                "+79160000001",
                format!("ВХОД*{code}"),
                SmsOutcome::CheckedIn { checkin_id: 0 },
                texts::confirmation(&p, t0(), &zone),
            ),
            (
                "+79160000002",
                format!(" вход {} ", digits),
                SmsOutcome::CheckedIn { checkin_id: 0 },
                texts::confirmation(&p, t0(), &zone),
            ),
            (
                "+79160000003",
                format!("ВХОД*{unknown}"),
                Rejection::UnknownCode.into(),
                texts::code_not_found(&unknown),
            ),
            (
                "+79160000004",
                format!("ВХОД*{typo}"),
                Rejection::Typo.into(),
                texts::code_typo(),
            ),
            (
                "+79160000005",
                "ВХОД*ХХХ-ХХХ-ХХХ".into(),
                Rejection::TemplateCopied.into(),
                texts::template_copied(),
            ),
            (
                "+79160000006",
                "ВХОД*123-456-78".into(),
                Rejection::WrongLength.into(),
                texts::wrong_length(8),
            ),
            (
                "+79160000007",
                "помощь".into(),
                Rejection::Help.into(),
                texts::help(),
            ),
            (
                "+79160000008",
                "привет".into(),
                Rejection::Unrecognized.into(),
                texts::unrecognized(),
            ),
        ];
        let batch: Vec<InboundSms> = cases
            .iter()
            .map(|(from, text, _, _)| sms(from, text))
            .collect();
        let outcomes = store
            .sms()
            .handle_sms_batch(&batch, &zone, t0())
            .await
            .unwrap();
        for ((from, text, expect, reply), got) in cases.iter().zip(&outcomes) {
            match (expect, got) {
                (SmsOutcome::CheckedIn { .. }, SmsOutcome::CheckedIn { .. }) => {}
                _ => assert_eq!(got, expect, "{label}: {text:?}"),
            }
            assert_eq!(&last_reply(store, from).await, reply, "{label}: {text:?}");
        }
        // Only the two valid texts recorded anything.
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            2,
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_redelivered_sms_is_not_counted_twice() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let text = format!("ВХОД*{}", p.code);
        let first = store
            .sms()
            .handle_sms_batch(&[sms("+79161234567", &text)], &zone, t0())
            .await
            .unwrap();
        let again = store
            .sms()
            .handle_sms_batch(&[sms("+79161234567", &text)], &zone, t0())
            .await
            .unwrap();
        let SmsOutcome::CheckedIn { checkin_id } = first[0] else {
            panic!("{label}: {first:?}")
        };
        assert_eq!(again[0], SmsOutcome::Duplicate { checkin_id }, "{label}");
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            1,
            "{label}"
        );
        let replies = store
            .outbox()
            .messages_to(&Msisdn::parse("+79161234567").unwrap())
            .await
            .unwrap();
        assert_eq!(replies.len(), 1, "{label}: one confirmation only");
    }
}

#[tokio::test]
async fn stop_withdraws_consent() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let phone = Msisdn::parse("+79161234567").unwrap();
        store
            .sms()
            .handle_sms_batch(
                &[sms(phone.as_str(), &format!("ВХОД*{}", p.code))],
                &zone,
                t0(),
            )
            .await
            .unwrap();
        assert!(
            store.checkins().checkins_of(&phone).await.unwrap()[0].consent,
            "{label}"
        );
        let out = store
            .sms()
            .handle_sms_batch(&[sms(phone.as_str(), "СТОП")], &zone, t0())
            .await
            .unwrap();
        assert_eq!(out[0], SmsOutcome::OptedOut, "{label}");
        assert!(
            !store.checkins().checkins_of(&phone).await.unwrap()[0].consent,
            "{label}"
        );
        assert_eq!(
            last_reply(store, phone.as_str()).await,
            texts::opted_out(),
            "{label}"
        );
    }
}

#[tokio::test]
async fn repeats_inside_one_batch_and_stop_in_the_middle() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let text = format!("ВХОД*{}", p.code);
        // The grouped path: the same visitor twice in one batch.
        let out = store
            .sms()
            .handle_sms_batch(
                &[
                    sms("+79161111111", &text),
                    sms("+79162222222", &text),
                    sms("+79161111111", &text),
                ],
                &zone,
                t0(),
            )
            .await
            .unwrap();
        let SmsOutcome::CheckedIn { checkin_id } = out[0] else {
            panic!("{label}: {out:?}")
        };
        assert!(matches!(out[1], SmsOutcome::CheckedIn { .. }), "{label}");
        assert_eq!(out[2], SmsOutcome::Duplicate { checkin_id }, "{label}");
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            2,
            "{label}"
        );

        // The in-order path: a check-in, СТОП, and a check-in elsewhere after it.
        let other = premises(store).await;
        let phone = "+79163333333";
        let out = store
            .sms()
            .handle_sms_batch(
                &[
                    sms(phone, &text),
                    sms(phone, "СТОП"),
                    sms(phone, &format!("ВХОД*{}", other.code)),
                ],
                &zone,
                t0(),
            )
            .await
            .unwrap();
        assert!(matches!(out[0], SmsOutcome::CheckedIn { .. }), "{label}");
        assert_eq!(out[1], SmsOutcome::OptedOut, "{label}");
        assert!(matches!(out[2], SmsOutcome::CheckedIn { .. }), "{label}");
        let visits = store
            .checkins()
            .checkins_of(&Msisdn::parse(phone).unwrap())
            .await
            .unwrap();
        let consent: Vec<bool> = visits.iter().map(|v| v.consent).collect();
        assert_eq!(
            consent,
            [false, true],
            "{label}: СТОП covers the visits before it only"
        );
    }
}

#[tokio::test]
async fn replies_can_be_claimed_in_the_commit_that_queues_them() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let texts_in = [
            sms("+79160000101", &format!("ВХОД*{}", p.code)),
            sms("+79160000102", "ПОМОЩЬ"),
            sms("+79160000103", &format!("ВХОД*{}", p.code)),
            // A repeat: no reply at all, so it takes no claim.
            sms("+79160000101", &format!("ВХОД*{}", p.code)),
        ];
        let prepared: Vec<_> = texts_in
            .iter()
            .map(|m| store.sms().prepare_sms(m.clone()))
            .collect();
        let done = store
            .sms()
            .handle_prepared_sms_claiming(&prepared, &zone, t0(), 2)
            .await
            .unwrap();
        assert_eq!(done.outcomes.len(), 4, "{label}");
        assert!(
            matches!(done.outcomes[3], SmsOutcome::Duplicate { .. }),
            "{label}"
        );
        // The first two replies come back claimed, with their own ids and numbers.
        let claimed: Vec<(String, String)> = done
            .claimed
            .iter()
            .map(|m| {
                let to = store.open_recipient(m).unwrap();
                (to.as_str().to_owned(), m.text.clone())
            })
            .collect();
        assert_eq!(
            claimed,
            [
                (
                    "+79160000101".to_owned(),
                    texts::confirmation(&p, t0(), &zone)
                ),
                ("+79160000102".to_owned(), texts::help()),
            ],
            "{label}"
        );
        for m in &done.claimed {
            let stored = store.outbox().message(m.id).await.unwrap().unwrap();
            assert_eq!(
                stored.status,
                checkin_core::OutboxStatus::Sending,
                "{label}"
            );
            assert_eq!(stored.attempts, 1, "{label}");
            assert_eq!(stored.recipient, m.recipient, "{label}");
            assert_eq!(stored.text, m.text, "{label}");
        }
        // The third waits in the outbox for an ordinary claim.
        let rest = store.outbox().claim_ready(10, t0()).await.unwrap();
        assert_eq!(rest.len(), 1, "{label}");
        let to = store.open_recipient(&rest[0]).unwrap();
        assert_eq!(to.as_str(), "+79160000103", "{label}");
    }
}

#[tokio::test]
async fn send_results_recorded_during_sms_groups_are_all_written() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        for round in 0..20u32 {
            // Messages a sender claimed and got answers for.
            for k in 0..10 {
                let new = checkin_core::NewMessage {
                    recipient: Msisdn::parse(&format!("+7916{:03}{:04}", round, k)).unwrap(),
                    text: format!("m{round}-{k}"),
                    priority: checkin_core::Priority::Alert,
                };
                store.outbox().enqueue(&new, t0()).await.unwrap();
            }
            let claimed = store.outbox().claim_ready(10, t0()).await.unwrap();
            assert_eq!(claimed.len(), 10, "{label}");
            let results: Vec<_> = claimed
                .iter()
                .map(|m| {
                    let ids = vec![format!("id-{}", m.id)];
                    (
                        m.id,
                        checkin_core::store::SendResult::Sent { message_ids: ids },
                    )
                })
                .collect();
            // Meanwhile an SMS group commits; the results may ride along with it.
            let prepared: Vec<_> = (0..30)
                .map(|k| {
                    store.sms().prepare_sms(sms(
                        &format!("+7926{:03}{:04}", round, k),
                        &format!("ВХОД*{}", p.code),
                    ))
                })
                .collect();
            let outbox = store.outbox();
            let (group, recorded) = tokio::join!(
                store
                    .sms()
                    .handle_prepared_sms_claiming(&prepared, &zone, t0(), 5),
                outbox.record_send_results(&results, t0())
            );
            let group = group.unwrap();
            recorded.unwrap();
            assert!(
                group
                    .outcomes
                    .iter()
                    .all(|o| matches!(o, SmsOutcome::CheckedIn { .. })),
                "{label}"
            );
            for m in &claimed {
                let stored = store.outbox().message(m.id).await.unwrap().unwrap();
                assert_eq!(stored.status, checkin_core::OutboxStatus::Sent, "{label}");
                assert_eq!(stored.smsc_message_ids, [format!("id-{}", m.id)], "{label}");
            }
            // The group's claimed replies are not among the outbox's pending ones.
            let rest = store.outbox().claim_ready(100, t0()).await.unwrap();
            assert_eq!(rest.len(), 25, "{label}");
            let done: Vec<_> = rest
                .iter()
                .map(|m| {
                    (
                        m.id,
                        checkin_core::store::SendResult::Sent {
                            message_ids: vec![],
                        },
                    )
                })
                .chain(group.claimed.iter().map(|m| {
                    (
                        m.id,
                        checkin_core::store::SendResult::Sent {
                            message_ids: vec![],
                        },
                    )
                }))
                .collect();
            store
                .outbox()
                .record_send_results(&done, t0())
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_repeat_is_answered_at_most_once_a_minute_with_the_first_visits_time() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let text = format!("ВХОД*{}", p.code);
        // `phone` sends the code `secs` seconds after t0.
        let at = |phone: &str, secs: i64| InboundSms {
            from: Msisdn::parse(phone).unwrap(),
            text: text.clone(),
            received_at: t0() + chrono::Duration::seconds(secs),
            operator: None,
        };
        let phone = "+79161234567";
        let replies = || async {
            store
                .outbox()
                .messages_to(&Msisdn::parse(phone).unwrap())
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.text)
                .collect::<Vec<_>>()
        };
        let zone_ref = &zone;
        let handle = |batch: Vec<InboundSms>| async move {
            store
                .sms()
                .handle_sms_batch(&batch, zone_ref, t0())
                .await
                .unwrap()
        };

        // The visit, and the SMSC redelivering it a second later: one SMS.
        let out = handle(vec![at(phone, 0)]).await;
        let SmsOutcome::CheckedIn { checkin_id } = out[0] else {
            panic!("{label}: {out:?}")
        };
        let out = handle(vec![at(phone, 1)]).await;
        assert_eq!(out[0], SmsOutcome::Duplicate { checkin_id }, "{label}");
        assert_eq!(replies().await.len(), 1, "{label}");

        // Two minutes later the visitor asks again: the first visit's time.
        let out = handle(vec![at(phone, 120)]).await;
        assert_eq!(out[0], SmsOutcome::Repeat { checkin_id }, "{label}");
        let again = texts::already_checked_in(&p, t0(), &zone);
        assert_eq!(
            replies().await,
            [texts::confirmation(&p, t0(), &zone), again.clone()],
            "{label}"
        );
        // Redelivered a second later, or twice in one group: one answer a minute.
        let out = handle(vec![at(phone, 121)]).await;
        assert_eq!(out[0], SmsOutcome::Duplicate { checkin_id }, "{label}");
        let out = handle(vec![at(phone, 200), at(phone, 201)]).await;
        assert_eq!(
            out,
            [
                SmsOutcome::Repeat { checkin_id },
                SmsOutcome::Duplicate { checkin_id }
            ],
            "{label}"
        );
        // The in-order path (a group with СТОП in it) keeps the same rule.
        let stop = sms("+79169999999", "СТОП");
        let out = handle(vec![at(phone, 300), stop.clone(), at(phone, 301)]).await;
        assert_eq!(out[0], SmsOutcome::Repeat { checkin_id }, "{label}");
        assert_eq!(out[2], SmsOutcome::Duplicate { checkin_id }, "{label}");
        assert_eq!(
            replies().await,
            {
                let mut all = vec![texts::confirmation(&p, t0(), &zone)];
                all.extend(std::iter::repeat_n(again.clone(), 3));
                all
            },
            "{label}"
        );

        // A visit and its repeat in one group, a minute apart.
        let other = "+79162345678";
        let out = handle(vec![at(other, 0), at(other, 30), at(other, 70)]).await;
        let SmsOutcome::CheckedIn { checkin_id: second } = out[0] else {
            panic!("{label}: {out:?}")
        };
        assert_eq!(
            out[1..],
            [
                SmsOutcome::Duplicate { checkin_id: second },
                SmsOutcome::Repeat { checkin_id: second }
            ],
            "{label}"
        );
        let got: Vec<String> = store
            .outbox()
            .messages_to(&Msisdn::parse(other).unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(
            got,
            [texts::confirmation(&p, t0(), &zone), again.clone()],
            "{label}"
        );
        // Nothing new was recorded by any repeat.
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            2,
            "{label}"
        );
    }
}
