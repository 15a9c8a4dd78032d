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
            run.gateway
                .store
                .checkins()
                .count_checkins(p.id)
                .await
                .unwrap(),
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
            .orgs()
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
            run.gateway
                .store
                .checkins()
                .count_checkins(p.id)
                .await
                .unwrap(),
            0,
            "{label}"
        );
        assert_eq!(
            run.gateway
                .store
                .checkins()
                .count_checkins(closed.id)
                .await
                .unwrap(),
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
            run.gateway
                .store
                .checkins()
                .count_checkins(p.id)
                .await
                .unwrap(),
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
            .checkins()
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

/// Makes the gateway's storage refuse writes, and gives it back.
enum Outage {
    /// Another connection holds SQLite's exclusive lock.
    Sqlite(sqlx::SqliteConnection),
    /// The database is read-only and the gateway's sessions are cut.
    Postgres {
        admin: sqlx::PgConnection,
        database: String,
    },
}

impl Outage {
    async fn begin(run: &Running) -> Outage {
        use sqlx::{Connection, Executor};
        if run.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&run.database_url)
                .await
                .unwrap();
            conn.execute("BEGIN EXCLUSIVE").await.unwrap();
            Outage::Sqlite(conn)
        } else {
            let (base, database) = run.database_url.rsplit_once('/').unwrap();
            let database = database.split('?').next().unwrap().to_owned();
            let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
                .await
                .unwrap();
            admin
                .execute(
                    format!("ALTER DATABASE {database} SET default_transaction_read_only = on")
                        .as_str(),
                )
                .await
                .unwrap();
            cut_sessions(&mut admin, &database).await;
            Outage::Postgres { admin, database }
        }
    }

    async fn end(self) {
        use sqlx::{Connection, Executor};
        match self {
            Outage::Sqlite(mut conn) => {
                conn.execute("ROLLBACK").await.unwrap();
                conn.close().await.unwrap();
            }
            Outage::Postgres {
                mut admin,
                database,
            } => {
                admin
                    .execute(
                        format!(
                            "ALTER DATABASE {database} SET default_transaction_read_only = off"
                        )
                        .as_str(),
                    )
                    .await
                    .unwrap();
                cut_sessions(&mut admin, &database).await;
                admin.close().await.unwrap();
            }
        }
    }
}

async fn cut_sessions(admin: &mut sqlx::PgConnection, database: &str) {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .execute(admin)
    .await
    .unwrap();
}

/// `ESME_RX_T_APPN` answers the simulator has seen from the gateway.
async fn temporary_errors(run: &Running) -> u64 {
    let (_, stats) = common::http(run.http, "GET", "/api/stats", None).await;
    stats["esme_errors"]["ESME_RX_T_APPN"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_answers_temporary_errors_and_loses_nothing() {
    for (label, url) in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::config(dir.path(), url.as_deref());
        // Fail fast while SQLite is locked, so the simulator sees errors quickly.
        config.store.sqlite_busy_timeout = std::time::Duration::from_millis(100);
        let run = common::start_with(label, config, dir).await;
        let p = run.premises("ул. Покровка, 2").await;
        let phone = "+79165550000";

        let outage = Outage::begin(&run).await;
        let before = temporary_errors(&run).await;
        let mo = {
            let http = run.http;
            let text = format!("ВХОД*{}", p.code);
            tokio::spawn(async move {
                common::http(
                    http,
                    "POST",
                    "/api/mo",
                    Some(&serde_json::json!({ "from": phone, "to": "7377", "text": text })),
                )
                .await
            })
        };
        // Wait (bounded) until the gateway has refused at least once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while temporary_errors(&run).await == before {
            assert!(
                std::time::Instant::now() < deadline,
                "{label}: no temporary error seen"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            run.gateway
                .store
                .checkins()
                .count_checkins(p.id)
                .await
                .unwrap_or(0),
            0,
            "{label}"
        );
        outage.end().await;

        let (status, report) = mo.await.unwrap();
        assert_eq!(status, 200, "{label}: {report}");
        assert_eq!(
            report["status"], "ESME_ROK",
            "{label}: redelivery succeeded: {report}"
        );
        assert!(
            report["attempts"].as_u64().unwrap() >= 2,
            "{label}: {report}"
        );
        assert_eq!(
            run.gateway
                .store
                .checkins()
                .count_checkins(p.id)
                .await
                .unwrap(),
            1,
            "{label}"
        );
        confirmation_for(&run, phone, "ул. Покровка, 2").await;
        run.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_is_answered_with_the_first_visit_and_a_redelivery_is_not() {
    use checkin::gateway::GatewayOptions;
    for (label, url) in backends().await {
        // The gateway's clock is the test's: "two minutes later" without waiting.
        let clock = checkin_core::ManualClock::new(chrono::Utc::now());
        let dir = tempfile::tempdir().unwrap();
        let config = common::config(dir.path(), url.as_deref());
        let options = GatewayOptions {
            clock: std::sync::Arc::new(clock.clone()),
            ..GatewayOptions::from_config(&config)
        };
        let run = common::start_with_options(label, config, options, dir).await;
        let p = run.premises("ул. Тверская, 13").await;
        let phone = "+79161234567";
        let text = format!("ВХОД*{}", p.code);

        run.send_mo(phone, &text).await;
        let confirmation = confirmation_for(&run, phone, "ул. Тверская, 13").await;
        // The SMSC redelivers it a second later: recorded once, no second SMS.
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(run.send_mo(phone, &text).await["status"], "ESME_ROK");
        // Two minutes later the visitor asks again: the first visit's time.
        clock.advance(chrono::Duration::minutes(2));
        assert_eq!(run.send_mo(phone, &text).await["status"], "ESME_ROK");
        let replies = run.until_messages(phone, 2).await;
        let visits = run
            .gateway
            .store
            .checkins()
            .checkins_of(&Msisdn::parse(phone).unwrap())
            .await
            .unwrap();
        assert_eq!(visits.len(), 1, "{label}");
        let again = texts::already_checked_in(&p, visits[0].at, &ServiceZone::default());
        assert_eq!(replies, [confirmation, again.clone()], "{label}");
        // Redelivered a second later: still one answer; the next text's reply
        // comes right after it.
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(run.send_mo(phone, &text).await["status"], "ESME_ROK");
        run.send_mo(phone, "ПОМОЩЬ").await;
        let replies = run.until_messages(phone, 3).await;
        assert_eq!(replies[1..], [again, texts::help()], "{label}");
        assert_eq!(
            run.gateway
                .store
                .checkins()
                .count_checkins(p.id)
                .await
                .unwrap(),
            1,
            "{label}"
        );
        run.stop().await;
    }
}
