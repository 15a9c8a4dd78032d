//! Issue 21 in a real browser: a person of the health authority, in the
//! cabinet of a running gateway (the bundled simulator behind it, its
//! receipts arriving), logs in → uploads a CSV with a refused row → reads
//! the dry run → confirms «Отправить оповещения» → watches the alert move to
//! delivered → pauses alerts (a confirmation step) → resumes them.
//! Screenshots go to `docs/screenshots/authority-*.png`. Debian's headless
//! chromium through chromedriver, with the web crate's browser helpers;
//! skipped without the browser unless `CHECKIN_TEST_REQUIRE_BROWSER=1`.

mod common;

#[path = "../web/tests/common/mod.rs"]
mod browser_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use browser_common::{browser_present, browser_sized, click, fill, start_driver, WAIT};
use checkin_core::{Channel, Msisdn, NewCheckIn};
use common::start;
use fantoccini::{Client, Locator};

const PASSWORD: &str = "correct horse battery";

/// The text of `css` once the page (which may be refreshing itself) shows it.
async fn wait_text(client: &Client, css: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{css} never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn shot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("authority-{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epidemiologist_uploads_confirms_watches_delivery_and_pauses() {
    if !browser_present() {
        return;
    }
    let run = start("sqlite", None).await;
    let store = &run.gateway.store;
    let base = format!("http://{}", run.gateway.web_addr);
    let now = chrono::Utc::now();
    let (authority, _) = store
        .orgs()
        .create_authority("Роспотребнадзор", now)
        .await
        .unwrap();
    store
        .authority()
        .add_user(authority, "epi@example.ru", PASSWORD, now)
        .await
        .unwrap();
    // The case's visit an hour ago, and a visitor beside them.
    let place = run.premises("Тверская ул., 1").await;
    for (phone, ago) in [("+79161234567", 60), ("+79160000001", 50)] {
        store
            .checkins()
            .record_checkin(&NewCheckIn {
                phone: Msisdn::parse(phone).unwrap(),
                code: place.code,
                channel: Channel::Sms,
                at: now - chrono::Duration::minutes(ago),
                consent: true,
            })
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.csv");
    std::fs::write(
        &file,
        format!(
            "phone,confirmed_at\n+79161234567,{}\nnot-a-phone,{}\n",
            now.to_rfc3339(),
            now.to_rfc3339()
        ),
    )
    .unwrap();

    let (_driver, driver_url) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser_sized(&driver_url, profile.path(), (1000, 900)).await;

    client
        .goto(&format!("{base}/authority/login"))
        .await
        .unwrap();
    fill(&client, "input[name=email]", "epi@example.ru").await;
    fill(&client, "input[name=password]", PASSWORD).await;
    shot(&client, "login").await;
    click(&client, "form[action='/authority/login'] button").await;
    wait_text(&client, "#alerts-running", WAIT).await;

    // Upload with a refused row → the dry run.
    click(&client, "a[href='/authority/upload']").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("input[name=file]"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    click(&client, "#check-upload").await;
    let visits = wait_text(&client, "#visits", Duration::from_secs(20)).await;
    assert_eq!(visits, "1");
    assert_eq!(wait_text(&client, "#accepted", WAIT).await, "1");
    assert_eq!(wait_text(&client, "#rejected", WAIT).await, "1");
    let rejects = wait_text(&client, "#rejects", WAIT).await;
    assert!(rejects.contains("phone:"), "{rejects}");
    assert_eq!(store.cases().count_cases().await.unwrap(), 0);
    shot(&client, "dry-run").await;

    // Confirm → sent → the cases page until the receipt says delivered.
    click(&client, "#send-alerts").await;
    wait_text(&client, "#sent", Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        client
            .goto(&format!("{base}/authority/cases"))
            .await
            .unwrap();
        let delivered = wait_text(&client, "td.delivered", WAIT).await;
        if delivered == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "the alert was never delivered");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    shot(&client, "cases").await;
    click(&client, "#cases a[href^='/authority/cases/']").await;
    let visits = wait_text(&client, "#visits", WAIT).await;
    assert!(
        visits.contains("Тверская ул., 1") && visits.contains("доставлено"),
        "{visits}"
    );
    assert!(!visits.contains("916"), "{visits}");
    shot(&client, "case").await;

    // Pause, with its confirmation step, then resume.
    client.goto(&format!("{base}/authority")).await.unwrap();
    click(&client, "a[href='/authority/alerts?action=pause']").await;
    wait_text(&client, "#confirm-switch", WAIT).await;
    shot(&client, "pause-confirm").await;
    click(&client, "#confirm-switch").await;
    wait_text(&client, "#alerts-paused", WAIT).await;
    let who = wait_text(&client, "#switched-by", WAIT).await;
    assert!(who.contains("epi@example.ru"), "{who}");
    assert!(store.flags().alerts_paused().await.unwrap());
    shot(&client, "paused").await;
    click(&client, "a[href='/authority/alerts?action=resume']").await;
    click(&client, "#confirm-switch").await;
    wait_text(&client, "#alerts-running", WAIT).await;
    assert!(!store.flags().alerts_paused().await.unwrap());

    client.close().await.unwrap();
    run.stop().await;
}
