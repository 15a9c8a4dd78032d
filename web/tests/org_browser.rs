//! A real browser in the organization cabinet: Debian's headless `chromium`
//! through `chromedriver` (the visitor test's setup, `common/`) against the
//! web served on port 0 over a real SQLite store. It signs up, adds premises,
//! opens the poster, saves screenshots (`cabinet.png`, `premises.png`,
//! `poster.png` in `$CARGO_TARGET_TMPDIR/web-browser/`)
//! and decodes the QR in that screenshot (`rqrr`): exactly the premises'
//! `/v/{code}` URL. Skipped without the browser unless
//! `CHECKIN_TEST_REQUIRE_BROWSER=1`.

mod common;

use std::sync::Arc;

use checkin_core::{Keys, PhoneVault, ServiceZone, Store, StoreConfig, SystemClock};
use common::{browser_present, browser_sized, shots_dir, start_driver, WAIT};
use fantoccini::{Client, Locator};
use tokio_util::sync::CancellationToken;
use web::{AppState, WebConfig};

async fn fill(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

async fn submit(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The text of the one QR code in a PNG screenshot.
fn qr_in(png: &[u8]) -> String {
    let image = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the screen");
    grids[0].decode().expect("the QR decodes").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_up_adds_premises_and_prints_a_poster_whose_qr_scans() {
    if !browser_present() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let url = checkin_core::store::sqlite_url_in(data.path());
    let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        store.clone(),
        &keys,
        ServiceZone::default(),
        Arc::new(SystemClock),
        WebConfig {
            public_base_url: base.clone(),
            ..WebConfig::default()
        },
    );
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(web::serve(listener, state, shutdown.clone()));

    let (_driver, driver_url) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser_sized(&driver_url, profile.path(), (900, 1400)).await;
    let shots = shots_dir("web-browser");

    client.goto(&format!("{base}/org/signup")).await.unwrap();
    fill(&client, "input[name=name]", "Кафе «Ромашка»").await;
    fill(&client, "input[name=email]", "owner@example.ru").await;
    fill(&client, "input[name=password]", "correct horse battery").await;
    submit(&client, "form[action='/org/signup'] button").await;

    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("form[action='/org/premises']"))
        .await
        .expect("the cabinet after sign-up");
    fill(&client, "input[name=address]", "Тверская ул., 1").await;
    submit(&client, "form[action='/org/premises'] button").await;

    let poster_link = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("a[href$='/poster']"))
        .await
        .expect("the premises page");
    let href = poster_link.attr("href").await.unwrap().unwrap();
    let id: i64 = href.split('/').nth(3).unwrap().parse().unwrap();
    let premises = store.orgs().premises_by_id(id).await.unwrap().unwrap();
    std::fs::write(
        shots.join("premises.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.goto(&format!("{base}/org")).await.unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("table.premises"))
        .await
        .expect("the premises list");
    std::fs::write(
        shots.join("cabinet.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.goto(&href).await.unwrap();

    let code = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".poster-code"))
        .await
        .expect("the poster");
    assert_eq!(code.text().await.unwrap(), premises.code.to_string());
    let page = client.source().await.unwrap();
    assert!(page.contains("Отправьте СМС на номер 7377 с текстом ВХОД*"));
    assert!(page.contains("Тверская ул., 1"));

    let screenshot = client.screenshot().await.unwrap();
    std::fs::write(shots.join("poster.png"), &screenshot).unwrap();
    assert_eq!(
        qr_in(&screenshot),
        format!("{base}/v/{}", premises.code),
        "the poster's QR, as a camera sees it, opens this premises' check-in"
    );

    client.close().await.unwrap();
    shutdown.cancel();
    server.await.unwrap().unwrap();
    eprintln!("poster screenshot in {}", shots.display());
}
