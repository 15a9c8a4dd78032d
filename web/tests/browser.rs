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

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use checkin_core::store::{NewOrganization, NewPremises};
use checkin_core::{Keys, Msisdn, PhoneVault, ServiceZone, Store, StoreConfig, SystemClock};
use fantoccini::{Client, ClientBuilder, Locator};
use tokio_util::sync::CancellationToken;
use web::{AppState, WebConfig};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PHONE: &str = "+79161234567";
/// How long any one wait for the browser may take.
const WAIT: Duration = Duration::from_secs(20);

fn browser_present() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("CHECKIN_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "CHECKIN_TEST_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing"
        );
        eprintln!("note: chromium/chromedriver not installed; the browser test is skipped (scripts/test installs them)");
    }
    present
}

/// chromedriver on a port of its choosing (`--port=0`). It does not print
/// the port it got, so the port is read from the kernel's table of listening
/// sockets: the one whose inode is among the driver's open files.
async fn start_driver() -> (tokio::process::Child, String) {
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let pid = child.id().expect("a running chromedriver");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(port) = listening_port(pid) {
            return (child, format!("http://127.0.0.1:{port}"));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The TCP port process `pid` listens on (IPv4), from `/proc`.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local_address is fields[1] ("0100007F:8AEB"), st is fields[3]
        // (0A = LISTEN), inode is fields[9].
        if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
            u16::from_str_radix(fields[1].split(':').nth(1)?, 16).ok()
        } else {
            None
        }
    })
}

async fn browser(driver: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=480,1100",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a browser session")
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_checks_in_and_the_guard_sees_valid() {
    if !browser_present() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let url = checkin_core::store::sqlite_url_in(data.path());
    let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let org = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Кафе «Ромашка»".into(),
                email: "cafe@example.ru".into(),
                password: None,
            },
            now,
        )
        .await
        .unwrap();
    let premises = store
        .orgs()
        .add_premises(
            &NewPremises {
                org_id: org.organization.id,
                address: "Тверская ул., 1".into(),
                kind: None,
                stay_minutes: None,
            },
            now,
        )
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
    let client = browser(&driver_url, profile.path()).await;
    let shots = shots_dir();

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
    shutdown.cancel();
    server.await.unwrap().unwrap();
    eprintln!("screenshots in {}", shots.display());
}
