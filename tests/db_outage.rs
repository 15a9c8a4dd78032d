//! PostgreSQL goes away under the gateway and comes back: while it is gone,
//! MOs are not acknowledged (the SMSC redelivers), the visitor's page is a
//! 503 and `/readyz` says storage is down; once it is back everything
//! resumes by itself and nothing acknowledged is lost.
//!
//! The outage: the test's database stops taking connections and every
//! session on it is terminated (what a server restart does to its clients),
//! on the suite's PostgreSQL server, which itself keeps running (so its
//! `fsync = off` loses nothing here: no server crash is simulated).

mod common;

use std::time::{Duration, Instant};

use sqlx::Connection;

/// The admin connection (the server's `postgres` database) and the test
/// database's name, taken from the gateway's URL.
async fn admin(database_url: &str) -> (sqlx::PgConnection, String) {
    let admin_url = std::env::var("CHECKIN_TEST_POSTGRES_URL").unwrap();
    let name = database_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    (sqlx::PgConnection::connect(&admin_url).await.unwrap(), name)
}

async fn set_reachable(admin: &mut sqlx::PgConnection, name: &str, reachable: bool) {
    sqlx::query(&format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"
    ))
    .execute(&mut *admin)
    .await
    .unwrap();
    if !reachable {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .execute(&mut *admin)
            .await
            .unwrap();
    }
}

async fn until_ready(web: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = common::http(web, "GET", "/readyz", None).await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gone_and_back_loses_nothing_and_resumes_by_itself() {
    let Some((_, Some(url))) = common::backends().await.into_iter().nth(1) else {
        eprintln!("skipped: no PostgreSQL (CHECKIN_TEST_POSTGRES_URL)");
        return;
    };
    let run = common::start("postgres", Some(url.clone())).await;
    let premises = run.premises("Тверская ул., 1").await;
    let text = format!("ВХОД*{}", premises.code);
    let web = run.gateway.web_addr;
    let page = format!("/v/{}", premises.code.to_string().replace('-', ""));
    let mut acknowledged = vec!["+79165000001"];
    assert_eq!(
        run.send_mo(acknowledged[0], &text).await["status"],
        "ESME_ROK"
    );
    assert_eq!(common::http(web, "GET", &page, None).await.0, 200);

    let (mut admin, name) = admin(&url).await;
    set_reachable(&mut admin, &name, false).await;

    // Gone: the MO is not acknowledged (a temporary error or no answer in
    // time, so the SMSC tries again later), the page and readiness say so.
    let late = "+79165000002";
    let report = run.send_mo(late, &text).await;
    assert_eq!(report["delivered"], false, "{report}");
    assert_ne!(report["status"], "ESME_ROK", "{report}");
    let (status, body) = common::http(web, "GET", &page, None).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = common::http(web, "GET", "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.as_str().unwrap_or_default().starts_with("storage: "),
        "{body}"
    );

    // Back: it resumes without a restart; the SMSC's next attempt is stored.
    set_reachable(&mut admin, &name, true).await;
    until_ready(web).await;
    assert_eq!(run.send_mo(late, &text).await["status"], "ESME_ROK");
    acknowledged.push(late);
    assert_eq!(common::http(web, "GET", &page, None).await.0, 200);
    for to in &acknowledged {
        let got = run.until_messages(to, 1).await;
        assert!(got[0].starts_with("Вход отмечен"), "{to}: {got:?}");
        assert_eq!(got.len(), 1, "{to}: {got:?}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkins")
        .fetch_one(run.gateway.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(stored, acknowledged.len() as i64);
    run.stop().await;
}
