//! Exposure matching on both backends: a scenario table of hand-made
//! timelines (who gets an alert, who is unreachable), one alert per exposed
//! visit whatever the number of cases, the dry run, the exact text, the
//! report, and the matching query's plan (indexes only, never a scan).

mod common;

use checkin_core::store::{NewOrganization, NewPremises, SendResult};
use checkin_core::{
    texts, Channel, ExposureConfig, Msisdn, NewCase, NewCheckIn, Premises, Priority, ServiceZone,
    Store, StoreConfig,
};
use chrono::{DateTime, Duration, Utc};
use common::{backends, sms, t0};

const CASE: &str = "+79990000001";
const SECOND_CASE: &str = "+79990000002";

fn min(n: i64) -> Duration {
    Duration::minutes(n)
}

async fn place(store: &Store, org_id: i64, address: &str) -> Premises {
    store
        .orgs()
        .add_premises(
            &NewPremises {
                org_id,
                address: address.into(),
                kind: None,
                stay_minutes: Some(60),
            },
            t0(),
        )
        .await
        .unwrap()
}

async fn visit(store: &Store, phone: &str, p: &Premises, at: DateTime<Utc>, consent: bool) {
    let recorded = store
        .checkins()
        .record_checkin(&NewCheckIn {
            phone: Msisdn::parse(phone).unwrap(),
            code: p.code,
            channel: if consent { Channel::Sms } else { Channel::Web },
            at,
            consent,
        })
        .await
        .unwrap();
    assert!(!recorded.duplicate, "{phone} at {at}");
}

/// The alerts queued to `phone`: their texts.
async fn alerts_to(store: &Store, phone: &str) -> Vec<String> {
    store
        .outbox()
        .messages_to(&Msisdn::parse(phone).unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.priority == Priority::Alert)
        .map(|m| m.text)
        .collect()
}

fn case(phone: &str, confirmed_at: DateTime<Utc>) -> NewCase {
    ExposureConfig::default().new_case(
        None,
        Msisdn::parse(phone).unwrap(),
        confirmed_at,
        None,
        None,
    )
}

/// Who is alerted, and with which visit time in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// One alert naming this visit.
    Alert,
    /// No alert, not counted.
    Nothing,
    /// No alert, counted unreachable.
    Unreachable,
}

#[tokio::test]
async fn scenario_table_says_who_is_alerted() {
    let zone = ServiceZone::default();
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let org = store
            .orgs()
            .create_org(
                &NewOrganization {
                    name: "Сеть".into(),
                    email: "chain@example.ru".into(),
                    password: None,
                },
                t0(),
            )
            .await
            .unwrap()
            .organization
            .id;
        let a = place(store, org, "ул. Тверская, 13").await;
        let b = place(store, org, "ул. Арбат, 1").await;
        let c = place(store, org, "ул. Лесная, 5").await;
        let d = place(store, org, "ул. Садовая, 2").await;
        let e = place(store, org, "ул. Мира, 7").await;
        // The case: at A from T for an hour (+30 min of buffer: T+90), at D
        // at T+3h cut short at T+3h10 by a check-in at E, and at C three
        // days before the window opens.
        let t = t0();
        visit(store, CASE, &a, t, true).await;
        visit(store, CASE, &d, t + min(180), true).await;
        visit(store, CASE, &e, t + min(190), true).await;
        visit(store, CASE, &c, t - Duration::days(3), true).await;

        // (visitor, premises, minutes after T, consent, later check-in
        // elsewhere (premises, minutes), expected, why)
        type Row<'a> = (
            &'a str,
            &'a Premises,
            i64,
            bool,
            Option<(&'a Premises, i64)>,
            Expect,
            &'a str,
        );
        let table: Vec<Row> = vec![
            ("+79160000001", &a, 10, true, None, Expect::Alert, "overlap"),
            (
                "+79160000002",
                &a,
                -60,
                true,
                None,
                Expect::Nothing,
                "left as the case arrived",
            ),
            (
                "+79160000003",
                &a,
                -59,
                true,
                None,
                Expect::Alert,
                "left a minute after",
            ),
            (
                "+79160000004",
                &a,
                89,
                true,
                None,
                Expect::Alert,
                "in the buffer",
            ),
            (
                "+79160000005",
                &a,
                90,
                true,
                None,
                Expect::Nothing,
                "the buffer is over",
            ),
            (
                "+79160000006",
                &a,
                -30,
                true,
                Some((&b, -1)),
                Expect::Nothing,
                "cut short before",
            ),
            (
                "+79160000007",
                &a,
                -30,
                true,
                Some((&b, 5)),
                Expect::Alert,
                "cut short after",
            ),
            (
                "+79160000008",
                &b,
                10,
                true,
                None,
                Expect::Nothing,
                "another premises",
            ),
            (
                "+79160000009",
                &a,
                20,
                false,
                None,
                Expect::Unreachable,
                "no consent on the web",
            ),
            (
                "+79160000010",
                &a,
                25,
                true,
                None,
                Expect::Unreachable,
                "sent СТОП",
            ),
            (
                "+79160000011",
                &c,
                -3 * 24 * 60 + 10,
                true,
                None,
                Expect::Nothing,
                "before the window",
            ),
            (
                "+79160000012",
                &d,
                221,
                true,
                None,
                Expect::Nothing,
                "after the case's cut-short buffer",
            ),
            (
                "+79160000013",
                &d,
                219,
                true,
                None,
                Expect::Alert,
                "in the case's cut-short buffer",
            ),
        ];
        for (phone, p, minutes, consent, next, _, _) in &table {
            visit(store, phone, p, t + min(*minutes), *consent).await;
            if let Some((q, at)) = next {
                visit(store, phone, q, t + min(*at), true).await;
            }
        }
        let stop = sms("+79160000010", "СТОП");
        store
            .sms()
            .handle_sms_batch(&[stop], &zone, t + min(30))
            .await
            .unwrap();

        let new = case(CASE, t + Duration::days(1));
        let now = t + Duration::days(2);
        let dry = store.cases().dry_run(&new, now).await.unwrap();
        let alerted = table.iter().filter(|r| r.5 == Expect::Alert).count() as u64;
        let unreachable = table.iter().filter(|r| r.5 == Expect::Unreachable).count() as u64;
        assert_eq!(
            (dry.visits, dry.people, dry.unreachable),
            (alerted, alerted, unreachable),
            "{label}"
        );
        for (phone, ..) in &table {
            assert!(
                alerts_to(store, phone).await.is_empty(),
                "{label}: the dry run queued"
            );
        }

        let recorded = store.cases().record_and_match(&new, now).await.unwrap();
        assert_eq!(recorded.counts, dry, "{label}");
        assert_eq!(recorded.alerts_queued, alerted, "{label}");
        for (phone, _, minutes, _, _, expect, why) in &table {
            let got = alerts_to(store, phone).await;
            let want = match expect {
                Expect::Alert => vec![texts::exposure_alert(t + min(*minutes), &zone)],
                Expect::Nothing | Expect::Unreachable => vec![],
            };
            assert_eq!(got, want, "{label}: {phone} ({why})");
        }
        assert!(
            alerts_to(store, CASE).await.is_empty(),
            "{label}: the case itself"
        );

        // The seed's sentence, exactly, with the visitor's own time (T+10:
        // 18 Oct 20:23 in Moscow).
        assert_eq!(
            alerts_to(store, "+79160000001").await,
            vec![
                "В организации, которую вы посетили 18 окт. в 20:23, находился посетитель с \
                  подтвержденным COVID-19. Поскольку вы могли с ним контактировать, рекомендуем \
                  сдать анализ на коронавирус и ограничить контакты."
                    .to_owned()
            ],
            "{label}"
        );

        // The same case again: nothing new.
        let again = store.cases().record_and_match(&new, now).await.unwrap();
        assert_eq!(again.alerts_queued, 0, "{label}");
        assert_eq!(again.counts, dry, "{label}");

        // A second case at A from T+5: every visit it exposes that the first
        // case exposed already gets nothing more; the visit at T+90 (in its
        // buffer, not the first's) and the first case's own visit are new.
        visit(store, SECOND_CASE, &a, t + min(5), true).await;
        let second = store
            .cases()
            .record_and_match(&case(SECOND_CASE, t + Duration::days(1)), now)
            .await
            .unwrap();
        assert_eq!(second.alerts_queued, 2, "{label}");
        // It exposes T+10, T+89, T+90 and the first case (T+59 and the visit
        // cut at T+5 left before it or as it arrived).
        assert_eq!(second.counts.visits, 4, "{label}");
        for (phone, _, _, _, _, expect, _) in &table {
            let n = alerts_to(store, phone).await.len();
            let want = usize::from(*expect == Expect::Alert || *phone == "+79160000005");
            assert_eq!(n, want, "{label}: {phone}");
        }
        assert_eq!(alerts_to(store, CASE).await.len(), 1, "{label}");

        // The report: counts at upload, states from the outbox.
        let report = store
            .cases()
            .report(recorded.case.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.case, recorded.case, "{label}");
        assert_eq!(report.counts, dry, "{label}");
        assert_eq!(report.alerts, alerted, "{label}");
        assert_eq!(report.states.queued, alerted, "{label}");
        let report = store.cases().report(again.case.id).await.unwrap().unwrap();
        assert_eq!(report.alerts, 0, "{label}");
        assert!(store.cases().report(-1).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn the_report_follows_the_outbox() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = common::premises(store).await;
        let t = t0();
        visit(store, CASE, &p, t, true).await;
        let visitors = [
            "+79160000001",
            "+79160000002",
            "+79160000003",
            "+79160000004",
        ];
        for (i, phone) in visitors.iter().enumerate() {
            visit(store, phone, &p, t + min(i as i64), true).await;
        }
        let recorded = store
            .cases()
            .record_and_match(&case(CASE, t), t + min(120))
            .await
            .unwrap();
        assert_eq!(recorded.alerts_queued, 4, "{label}");
        let mut ids = Vec::new();
        for phone in visitors {
            let m = store
                .outbox()
                .messages_to(&Msisdn::parse(phone).unwrap())
                .await
                .unwrap();
            ids.push(m.last().unwrap().id);
        }
        let now = t + min(121);
        let sent = |n: &str| SendResult::Sent {
            message_ids: vec![n.to_owned()],
        };
        store
            .outbox()
            .record_send_results(
                &[
                    (ids[0], sent("a")),
                    (ids[1], sent("b")),
                    (ids[2], sent("c")),
                    (
                        ids[3],
                        SendResult::Failed {
                            reason: "rejected".into(),
                        },
                    ),
                ],
                now,
            )
            .await
            .unwrap();
        store
            .outbox()
            .record_send_results(
                &[
                    (
                        ids[1],
                        SendResult::Receipt {
                            state: "delivered".into(),
                        },
                    ),
                    (
                        ids[2],
                        SendResult::Receipt {
                            state: "expired".into(),
                        },
                    ),
                ],
                now,
            )
            .await
            .unwrap();
        let report = store
            .cases()
            .report(recorded.case.id)
            .await
            .unwrap()
            .unwrap();
        let s = report.states;
        assert_eq!(
            (s.queued, s.sent, s.delivered, s.failed, s.expired),
            (0, 1, 1, 1, 1),
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_batch_alerts_each_visit_once_and_rejects_a_bad_window() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = common::premises(store).await;
        let t = t0();
        visit(store, CASE, &p, t, true).await;
        visit(store, SECOND_CASE, &p, t + min(1), true).await;
        visit(store, "+79160000001", &p, t + min(2), true).await;
        let batch = [case(CASE, t), case(SECOND_CASE, t)];
        let recorded = store
            .cases()
            .record_and_match_batch(&batch, t + min(120))
            .await
            .unwrap();
        // Each case alerts the other and the visitor; the visitor once.
        let queued: Vec<u64> = recorded.iter().map(|r| r.alerts_queued).collect();
        assert_eq!(queued, vec![2, 1], "{label}");
        assert_eq!(alerts_to(store, "+79160000001").await.len(), 1, "{label}");

        let mut bad = case(CASE, t);
        bad.contagious_to = bad.contagious_from - min(1);
        let before = store.cases().count_cases().await.unwrap();
        let err = store
            .cases()
            .record_and_match_batch(&[case(CASE, t), bad], t + min(120))
            .await
            .unwrap_err();
        assert!(err.is_caller_error(), "{label}: {err}");
        assert_eq!(
            store.cases().count_cases().await.unwrap(),
            before,
            "{label}"
        );
    }
}

#[tokio::test]
async fn matching_seeks_indexes_and_never_scans() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let plan = store
            .cases()
            .match_plan_for_tests(&case(CASE, t0()))
            .await
            .unwrap();
        let text = plan.join("\n");
        match label {
            "sqlite" => {
                for line in &plan {
                    let line = line.trim();
                    // Every read of checkins goes through an index.
                    if line.contains("checkins") {
                        assert!(
                            line.contains("USING INDEX")
                                || line.contains("USING COVERING INDEX")
                                || line.contains("USING INTEGER PRIMARY KEY"),
                            "{label}: {line}\n{text}"
                        );
                    }
                    // Scanning the steps' own small results is fine; a
                    // table never.
                    let words: Vec<&str> = line.split_whitespace().collect();
                    assert!(
                        !(words.first() == Some(&"SCAN")
                            && ["c", "v", "n", "p", "checkins", "premises"]
                                .contains(words.get(1).unwrap_or(&""))),
                        "{text}"
                    );
                }
                assert!(text.contains("checkins_phone_at"), "{text}");
                // The premises' visits in a time range, both bounds used.
                assert!(
                    text.contains(
                        "checkins_premises_at (premises_id=? AND checked_in_at_ms>? AND checked_in_at_ms<?)"
                    ),
                    "{text}"
                );
            }
            _ => {
                // An empty table: PostgreSQL may still pick its index plan;
                // what it must never do is read all of checkins.
                assert!(!text.contains("Seq Scan on checkins"), "{label}:\n{text}");
                assert!(!text.contains("Seq Scan on premises"), "{label}:\n{text}");
            }
        }
    }
}

mod property {
    //! Random timelines, matched by the store and by the pure rule of
    //! `checkin_core::exposure`: the same alerts, each visit alerted at most
    //! once, never by the case's own number.

    use std::collections::BTreeMap;

    use checkin_core::exposure::{contagious_span, exposed, presence, Interval};
    use proptest::prelude::*;
    use sqlx::Row;

    use super::*;

    /// (person, premises, minutes after the iteration's start, consent)
    type Visit = (usize, usize, i64, bool);
    /// (person, window start and end, minutes after the iteration's start)
    type CaseSpec = (usize, i64, i64);

    const PEOPLE: usize = 5;
    const STAYS: [u32; 3] = [30, 60, 120];

    fn phone(iteration: u64, person: usize) -> String {
        format!("+7916{iteration:03}{person:04}")
    }

    #[derive(Debug, Clone)]
    struct Stored {
        id: i64,
        person: usize,
        premises: usize,
        at_ms: i64,
        consent: bool,
    }

    /// The exposed visits of a case by the pure rule.
    fn oracle(
        stored: &[Stored],
        stays: &[u32],
        case: (usize, Interval),
        buffer_ms: i64,
    ) -> Vec<i64> {
        let next_elsewhere = |v: &Stored| {
            stored
                .iter()
                .filter(|n| n.person == v.person && n.at_ms > v.at_ms && n.premises != v.premises)
                .map(|n| n.at_ms)
                .min()
        };
        let presence_of = |v: &Stored| presence(v.at_ms, stays[v.premises], next_elsewhere(v));
        let mut out = Vec::new();
        for c in stored.iter().filter(|v| v.person == case.0) {
            let Some(span) = contagious_span(presence_of(c), case.1, buffer_ms) else {
                continue;
            };
            for v in stored {
                if v.person != case.0 && v.premises == c.premises && exposed(span, presence_of(v)) {
                    out.push(v.id);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    async fn check(
        store: &Store,
        iteration: u64,
        stays: &[u32],
        visits: &[Visit],
        cases: &[CaseSpec],
    ) {
        let base = t0() + Duration::days(100 * iteration as i64);
        let org = store
            .orgs()
            .create_org(
                &NewOrganization {
                    name: "prop".into(),
                    email: format!("prop{iteration}@example.ru"),
                    password: None,
                },
                t0(),
            )
            .await
            .unwrap()
            .organization
            .id;
        let mut places = Vec::new();
        for stay in stays {
            let p = store
                .orgs()
                .add_premises(
                    &NewPremises {
                        org_id: org,
                        address: "ул. Пробная, 1".into(),
                        kind: None,
                        stay_minutes: Some(*stay),
                    },
                    t0(),
                )
                .await
                .unwrap();
            places.push(p);
        }
        let mut stored: Vec<Stored> = Vec::new();
        for &(person, premises, minutes, consent) in visits {
            let at = base + min(minutes);
            let r = store
                .checkins()
                .record_checkin(&NewCheckIn {
                    phone: Msisdn::parse(&phone(iteration, person)).unwrap(),
                    code: places[premises].code,
                    channel: Channel::Web,
                    at,
                    consent,
                })
                .await
                .unwrap();
            if !r.duplicate {
                stored.push(Stored {
                    id: r.checkin.id,
                    person,
                    premises,
                    at_ms: at.timestamp_millis(),
                    consent,
                });
            }
        }
        let buffer_ms = ExposureConfig::default().buffer_ms();
        let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
        let now = base + Duration::days(30);
        for &(person, a, b) in cases {
            let (from, to) = (base + min(a.min(b)), base + min(a.max(b)));
            let new = ExposureConfig::default().new_case(
                None,
                Msisdn::parse(&phone(iteration, person)).unwrap(),
                from,
                Some(from),
                Some(to),
            );
            let recorded = store.cases().record_and_match(&new, now).await.unwrap();
            let window = Interval {
                start_ms: from.timestamp_millis(),
                end_ms: to.timestamp_millis(),
            };
            let exposed = oracle(&stored, stays, (person, window), buffer_ms);
            let with_consent: Vec<i64> = exposed
                .iter()
                .copied()
                .filter(|id| stored.iter().any(|s| s.id == *id && s.consent))
                .collect();
            assert_eq!(recorded.counts.visits, with_consent.len() as u64);
            let mut new_alerts = 0;
            for id in with_consent {
                if let std::collections::btree_map::Entry::Vacant(e) = expected.entry(id) {
                    e.insert(recorded.case.id);
                    new_alerts += 1;
                }
            }
            assert_eq!(recorded.alerts_queued, new_alerts);
        }
        let ids: Vec<i64> = stored.iter().map(|s| s.id).collect();
        let rows = sqlx::query("SELECT a.checkin_id AS checkin_id, a.case_id AS case_id, c.phone_hash AS case_hash, v.phone_hash AS visit_hash FROM alerts a JOIN cases c ON c.id = a.case_id JOIN checkins v ON v.id = a.checkin_id")
            .fetch_all(store.pool_for_tests())
            .await
            .unwrap();
        let mut got: BTreeMap<i64, i64> = BTreeMap::new();
        for row in &rows {
            let checkin: i64 = row.try_get("checkin_id").unwrap();
            if !ids.contains(&checkin) {
                continue; // another iteration's
            }
            let case_hash: Vec<u8> = row.try_get("case_hash").unwrap();
            let visit_hash: Vec<u8> = row.try_get("visit_hash").unwrap();
            assert_ne!(case_hash, visit_hash, "a case alerted its own number");
            assert!(
                got.insert(checkin, row.try_get("case_id").unwrap())
                    .is_none(),
                "twice"
            );
        }
        assert_eq!(got, expected);
    }

    fn visits() -> impl Strategy<Value = Vec<Visit>> {
        prop::collection::vec(
            (0..PEOPLE, 0..3usize, 0..600i64, prop::bool::weighted(0.8)),
            1..30,
        )
    }

    fn cases() -> impl Strategy<Value = Vec<CaseSpec>> {
        prop::collection::vec((0..PEOPLE, -60..700i64, -60..700i64), 1..4)
    }

    #[test]
    fn the_store_matches_like_the_rule() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dbs = runtime.block_on(backends(StoreConfig::default()));
        let iteration = std::sync::atomic::AtomicU64::new(0);
        let config = ProptestConfig {
            cases: 48,
            ..ProptestConfig::default()
        };
        proptest!(config, |(visits in visits(), cases in cases(), stays in prop::collection::vec(prop::sample::select(STAYS.to_vec()), 3))| {
            let iteration = iteration.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            for db in &dbs {
                runtime.block_on(check(&db.store, iteration, &stays, &visits, &cases));
            }
        });
    }
}

#[tokio::test]
async fn purge_takes_the_alerts_along() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = common::premises(store).await;
        let t = t0();
        visit(store, CASE, &p, t, true).await;
        visit(store, "+79160000001", &p, t + min(1), true).await;
        let recorded = store
            .cases()
            .record_and_match(&case(CASE, t), t + min(120))
            .await
            .unwrap();
        assert_eq!(recorded.alerts_queued, 1, "{label}");
        // Everything is past the retention: the visits, the case and the
        // message go, and the alerts with them (no foreign key in the way).
        let purged = store.purge(t + Duration::days(60)).await.unwrap();
        assert_eq!((purged.checkins, purged.cases), (2, 1), "{label}");
        let row = sqlx::query("SELECT COUNT(*) AS n FROM alerts")
            .fetch_one(store.pool_for_tests())
            .await
            .unwrap();
        assert_eq!(
            sqlx::Row::try_get::<i64, _>(&row, "n").unwrap(),
            0,
            "{label}"
        );
        assert!(store
            .cases()
            .report(recorded.case.id)
            .await
            .unwrap()
            .is_none());
    }
}
