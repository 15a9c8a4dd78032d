//! Issue 23 in a real browser: the organization cabinet of a running gateway
//! (the bundled simulator behind it) previews the confirmation with its
//! segment count — live as the SMS name is typed (`/static/org-sms.js`) and
//! with «Показать SMS» — and a check-in at those premises by SMS reaches the
//! simulator as exactly that text (but the minute) in exactly that many
//! segments. Debian's headless chromium through chromedriver, with the web
//! crate's browser helpers; skipped without the browser unless
//! `CHECKIN_TEST_REQUIRE_BROWSER=1`.

mod common;

#[path = "../web/tests/common/mod.rs"]
mod browser_common;

use std::time::{Duration, Instant};

use browser_common::{browser_present, browser_sized, click, fill, start_driver, WAIT};
use checkin_core::texts::SMS_LABEL_UNITS_MAX;
use common::{http, start, Running};
use fantoccini::{Client, Locator};

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The preview (text, segments) as the page shows it now; an error while a
/// «Показать SMS» submit is replacing the page (a stale or missing element).
async fn preview_now(client: &Client) -> Result<(String, String), fantoccini::error::CmdError> {
    let text = client
        .find(Locator::Css("#sms-preview-text"))
        .await?
        .text()
        .await?;
    let segments = client
        .find(Locator::Css("#sms-preview-segments"))
        .await?
        .text()
        .await?;
    Ok((text, segments))
}

/// Waits (bounded) until the preview's text contains `part`; returns the
/// preview (text, segments). The page may be reloading meanwhile (the
/// no-script button submits the form), so a stale element means "not yet".
async fn preview_showing(client: &Client, part: &str) -> (String, usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = preview_now(client).await;
        if let Ok((text, segments)) = &shown {
            if text.contains(part) {
                return (text.clone(), segments.trim().parse().unwrap());
            }
        }
        assert!(
            Instant::now() < deadline,
            "the preview shows {shown:?}, not {part:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The premises whose page the browser is on (`/org/premises/{id}`), as stored.
async fn saved_premises(client: &Client, run: &Running) -> checkin_core::Premises {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("a[href$='/poster']"))
        .await
        .expect("the premises page");
    let url = client.current_url().await.unwrap();
    let id: i64 = url.path().rsplit('/').next().unwrap().parse().unwrap();
    run.gateway
        .store
        .orgs()
        .premises_by_id(id)
        .await
        .unwrap()
        .expect("the premises saved")
}

/// What the simulator received for a check-in at `code` from `phone`:
/// (text, segments).
async fn sms_check_in(run: &Running, phone: &str, code: &str) -> (String, usize) {
    run.send_mo(phone, &format!("ВХОД*{code}")).await;
    let path = format!("/api/messages?to={}", phone.replace('+', "%2B"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http(run.http, "GET", &path, None).await;
        if let Some(m) = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["complete"].as_bool() == Some(true))
        {
            return (
                m["text"].as_str().unwrap().to_owned(),
                m["parts"].as_array().unwrap().len(),
            );
        }
        assert!(Instant::now() < deadline, "no confirmation for {phone}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text without its day and time (`…, 18 окт. в 20:13. Отказ: СТОП`):
/// the preview was made a moment before the check-in.
fn without_time(text: &str) -> String {
    let cut = text.rfind(" в ").expect("a time");
    let day = text[..cut].rfind(", ").expect("a day");
    format!(
        "{}|{}",
        &text[..day],
        &text[text.len() - ". Отказ: СТОП".len()..]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cabinet_preview_counts_the_segments_the_simulator_receives() {
    if !browser_present() {
        return;
    }
    let run = start("sqlite", None).await;
    let base = format!("http://{}", run.gateway.web_addr);
    let (_driver, driver_url) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser_sized(&driver_url, profile.path(), (900, 1400)).await;

    client.goto(&format!("{base}/org/signup")).await.unwrap();
    fill(&client, "input[name=name]", "Сеть кафе").await;
    fill(&client, "input[name=email]", "chain@example.ru").await;
    fill(&client, "input[name=password]", "correct horse battery").await;
    click(&client, "form[action='/org/signup'] button").await;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("form[action='/org/premises']"))
        .await
        .expect("the cabinet after sign-up");

    // Live: an SMS name of exactly the limit, typed; the preview follows.
    let address = "Кутузовский пр., д. 57, ТРЦ «Океания», 3 этаж";
    fill(&client, "input[name=address]", address).await;
    let longest = format!("Фудкорт «Океания» {}", "Ж".repeat(SMS_LABEL_UNITS_MAX - 18));
    assert_eq!(longest.chars().count(), SMS_LABEL_UNITS_MAX);
    fill(&client, "input[name=sms_label]", &longest).await;
    let (live, live_segments) = preview_showing(&client, &longest).await;
    // Past the limit: the reason naming it, live; far past it, the second
    // segment too (just past it fits today's date, not the widest one).
    client
        .find(Locator::Css("input[name=sms_label]"))
        .await
        .unwrap()
        .send_keys("Ж")
        .await
        .unwrap();
    let (_, just_over) = preview_showing(&client, &format!("{longest}Ж")).await;
    assert!(just_over >= 1);
    assert!(text_of(&client, "#sms-preview-refused")
        .await
        .contains("25"));
    let far = format!("{longest}{}", "Ж".repeat(15));
    fill(&client, "input[name=sms_label]", &far).await;
    let (_, far_segments) = preview_showing(&client, &far).await;
    assert_eq!(
        far_segments, 2,
        "a 40-character name costs a second segment"
    );
    fill(&client, "input[name=sms_label]", &longest).await;
    preview_showing(&client, &format!("{longest},")).await;
    click(&client, "form[action='/org/premises'] button[type=submit]").await;
    let named = saved_premises(&client, &run).await;
    assert_eq!(named.sms_label.as_deref(), Some(longest.as_str()));

    let (received, segments) = sms_check_in(&run, "+79161230001", &named.code.to_string()).await;
    assert_eq!(live_segments, 1, "{live}");
    assert_eq!(segments, live_segments, "{received} vs the preview {live}");
    assert_eq!(without_time(&received), without_time(&live));

    // Without the script's help: no name, a long address, «Показать SMS».
    client.goto(&format!("{base}/org")).await.unwrap();
    let address = "г. Москва, ул. Нижняя Сыромятническая, д. 10, корп. 2, стр. 9, ТЦ «Атриум»";
    fill(&client, "input[name=address]", address).await;
    click(&client, "button[name=preview]").await;
    let (shown, shown_segments) = preview_showing(&client, "Сыромятниче…").await;
    click(&client, "form[action='/org/premises'] button[type=submit]").await;
    let plain = saved_premises(&client, &run).await;
    assert_eq!(plain.sms_label, None);
    assert_eq!(plain.address, address, "the web keeps the full address");

    let (received, segments) = sms_check_in(&run, "+79161230002", &plain.code.to_string()).await;
    assert_eq!(shown_segments, 1, "{shown}");
    assert_eq!(
        segments, shown_segments,
        "{received} vs the preview {shown}"
    );
    assert_eq!(without_time(&received), without_time(&shown));

    client.close().await.unwrap();
    run.stop().await;
}
