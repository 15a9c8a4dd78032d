//! Issue 23 end to end: `checkin_sms_segments_total` counts, by kind, the
//! segments the simulator receives — a confirmation and a repeat answer
//! (premises with a long address and no SMS name: one segment each), a
//! confirmation at premises with an SMS name, a help reply (other), an OTP
//! and an alert (the seed's four segments) — on SQLite and PostgreSQL. One
//! test in this binary: the metric is the process's, read as a difference.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use checkin::gateway::GatewayOptions;
use checkin_core::otp::{sms_text, OtpCode};
use checkin_core::{texts, Clock, Msisdn, NewMessage, Priority, ServiceZone};
use common::{backends, http, Running};
use serde_json::Value;

const KINDS: [&str; 5] = ["confirmation", "repeat", "otp", "alert", "other"];

/// `checkin_sms_segments_total{outcome="accepted"}` by kind, from `/metrics`.
async fn accepted_by_kind(run: &Running) -> BTreeMap<&'static str, u64> {
    let (status, body) = http(run.gateway.web_addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    let text = body.as_str().expect("Prometheus text").to_owned();
    let mut out = BTreeMap::new();
    for kind in KINDS {
        let label = format!("kind=\"{kind}\"");
        let value = text
            .lines()
            .filter(|l| l.starts_with("checkin_sms_segments_total{"))
            .filter(|l| l.contains(&label) && l.contains("outcome=\"accepted\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        out.insert(kind, value as u64);
    }
    out
}

/// Every message the simulator received for `to`: (text, parts received).
async fn received(run: &Running, to: &str) -> Vec<(String, u64)> {
    let path = format!("/api/messages?to={}", to.replace('+', "%2B"));
    let (status, body) = http(run.http, "GET", &path, None).await;
    assert_eq!(status, 200, "{body}");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["complete"].as_bool() == Some(true))
        .map(|m: &Value| {
            (
                m["text"].as_str().unwrap().to_owned(),
                m["parts"].as_array().unwrap().len() as u64,
            )
        })
        .collect()
}

async fn until_received(run: &Running, to: &str, n: usize) -> Vec<(String, u64)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = received(run, to).await;
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{to}: {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segments_metric_counts_what_the_simulator_receives_by_kind() {
    for (label, url) in backends().await {
        // The gateway's clock is the test's: a repeat two minutes later.
        let clock = checkin_core::ManualClock::new(chrono::Utc::now());
        let dir = tempfile::tempdir().unwrap();
        let config = common::config(dir.path(), url.as_deref());
        let options = GatewayOptions {
            clock: std::sync::Arc::new(clock.clone()),
            ..GatewayOptions::from_config(&config)
        };
        let run = common::start_with_options(label, config, options, dir).await;
        let before = accepted_by_kind(&run).await;

        let long = run
            .premises("г. Москва, ул. Нижняя Сыромятническая, д. 10, корп. 2, стр. 9, ТЦ «Атриум»")
            .await;
        let named = run
            .premises("Кутузовский пр., д. 57, ТРЦ «Океания», 3 этаж")
            .await;
        run.gateway
            .store
            .orgs()
            .set_sms_label(None, named.id, Some("Океания, фудкорт"))
            .await
            .unwrap()
            .unwrap();

        let (a, b, c, d, e) = (
            "+79161000001",
            "+79161000002",
            "+79161000003",
            "+79161000004",
            "+79161000005",
        );
        run.send_mo(a, &format!("ВХОД*{}", long.code)).await;
        until_received(&run, a, 1).await;
        clock.advance(chrono::Duration::minutes(2));
        run.send_mo(a, &format!("ВХОД*{}", long.code)).await;
        run.send_mo(b, &format!("ВХОД*{}", named.code)).await;
        run.send_mo(c, "ПОМОЩЬ").await;
        let otp = sms_text(&OtpCode::parse("123456").unwrap());
        let alert = texts::exposure_alert(chrono::Utc::now(), &ServiceZone::default());
        for (to, text, priority) in [(d, &otp, Priority::Otp), (e, &alert, Priority::Alert)] {
            let message = NewMessage {
                recipient: Msisdn::parse(to).unwrap(),
                text: text.clone(),
                priority,
            };
            run.gateway
                .store
                .outbox()
                .enqueue(&message, clock.now())
                .await
                .unwrap();
        }

        let a = until_received(&run, a, 2).await;
        let b = until_received(&run, b, 1).await;
        let c = until_received(&run, c, 1).await;
        let d = until_received(&run, d, 1).await;
        let e = until_received(&run, e, 1).await;
        assert!(
            a[0].0
                .starts_with("Вход отмечен: Ниж. Сыромятниче…, 10к2с9, "),
            "{a:?}"
        );
        assert!(
            a[1].0
                .starts_with("Уже отмечен: Ниж. Сыромятниче…, 10к2с9, "),
            "{a:?}"
        );
        assert!(
            b[0].0.starts_with("Вход отмечен: Океания, фудкорт, "),
            "{b:?}"
        );
        let expected: BTreeMap<&str, u64> = [
            ("confirmation", a[0].1 + b[0].1),
            ("repeat", a[1].1),
            ("other", c[0].1),
            ("otp", d[0].1),
            ("alert", e[0].1),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            expected,
            [
                ("confirmation", 2),
                ("repeat", 1),
                ("other", 2),
                ("otp", 1),
                ("alert", 4)
            ]
            .into_iter()
            .collect(),
            "{label}: what the simulator received"
        );

        // The counter moves when the submit's answer is read, just after the
        // simulator stored the parts: wait for it (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let after = accepted_by_kind(&run).await;
            let counted: BTreeMap<&str, u64> =
                KINDS.iter().map(|k| (*k, after[k] - before[k])).collect();
            if counted == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{label}: the metric counted {counted:?}, the simulator received {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if label == "sqlite" {
            // The durable default: the check-ins' commits were synced by the
            // syncer thread, each sync timed.
            let (_, body) = http(run.gateway.web_addr, "GET", "/metrics", None).await;
            let syncs = body
                .as_str()
                .unwrap_or("")
                .lines()
                .find_map(|l| l.strip_prefix("checkin_db_wal_sync_seconds_count "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            assert!(syncs >= 1.0, "{label}: no WAL sync timed");
        }
        run.stop().await;
    }
}
