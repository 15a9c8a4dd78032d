//! A real browser walks the visitor's way: Debian's headless `chromium`
//! driven through `chromedriver` (WebDriver, `fantoccini`) against the web
//! served on port 0 over a real SQLite store. It opens `/v/{code}`, submits
//! phone and consent, reads the SMS code from the outbox, enters it, sees the
//! confirmation (and its clock ticking under the CSP), follows the QR's
//! link and sees «ДЕЙСТВИТЕЛЕН». Screenshots of each page (the form, the code
//! page, the confirmation, the guard's page) go to
//! `$CARGO_TARGET_TMPDIR/web-browser/`.
//!
//! Without chromium and chromedriver installed the test says so and passes,
//! unless `CHECKIN_TEST_REQUIRE_BROWSER=1` (the test script installs both and
//! sets it).

mod common;

use std::time::Duration;

use checkin_core::Msisdn;
use common::{browser, browser_present, serve_web, shots_dir, start_driver, venue, PHONE, WAIT};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_checks_in_and_the_guard_sees_valid() {
    if !browser_present() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (keys, store, premises) = venue(data.path()).await;

    let served = serve_web(&store, &keys).await;
    let base = served.base.clone();

    let (_driver, driver_url) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver_url, profile.path()).await;
    let shots = shots_dir("web-browser");

    client
        .goto(&format!("{base}/v/{}", premises.code))
        .await
        .unwrap();
    let phone_field = client
        .find(Locator::Css("input[name=phone]"))
        .await
        .unwrap();
    phone_field.send_keys(PHONE).await.unwrap();
    std::fs::write(
        shots.join("visitor.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client
        .find(Locator::Css("input[name=consent]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let code_field = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("input[name=code]"))
        .await
        .expect("the code page");
    let sms = store
        .outbox()
        .messages_to(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap();
    let code: String = sms
        .last()
        .unwrap()
        .text
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    code_field.send_keys(&code).await.unwrap();
    std::fs::write(shots.join("code.png"), client.screenshot().await.unwrap()).unwrap();
    client
        .find(Locator::Css("form[action$='/otp'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let heading = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("h1.ok"))
        .await
        .expect("the confirmation");
    assert_eq!(heading.text().await.unwrap(), "Вход отмечен");
    let page = client.source().await.unwrap();
    assert!(page.contains("Тверская ул., 1"));
    assert!(page.contains("<svg"));
    // The clock script runs under the CSP: the time changes by itself, and
    // it is the service zone's (Moscow) time, as the server rendered it.
    let clock = client.find(Locator::Css("#clock")).await.unwrap();
    let first = clock.text().await.unwrap();
    let hour = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&chrono_tz::Europe::Moscow)
            .format("%H")
            .to_string()
    };
    let now = chrono::Utc::now();
    assert!(
        first.get(..2) == Some(hour(now).as_str())
            || first.get(..2) == Some(hour(now - chrono::Duration::minutes(1)).as_str()),
        "{first}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if clock.text().await.unwrap() != first {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the clock stands still"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::write(
        shots.join("confirmation.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    let guard_url = client
        .find(Locator::Css("p.small a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("the QR's link");
    assert!(guard_url.starts_with(&format!("{base}/c/")));
    client.goto(&guard_url).await.unwrap();
    let verdict = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".verdict"))
        .await
        .unwrap();
    assert_eq!(
        verdict.attr("data-verdict").await.unwrap().as_deref(),
        Some("valid")
    );
    assert!(verdict.text().await.unwrap().contains("ДЕЙСТВИТЕЛЕН"));
    std::fs::write(shots.join("guard.png"), client.screenshot().await.unwrap()).unwrap();

    client.close().await.unwrap();
    served.stop().await;
    eprintln!("screenshots in {}", shots.display());
}
