//! What the real-browser tests share (`browser.rs`, `oidc.rs`,
//! `org_browser.rs`): chromium and chromedriver (found, started on a port of
//! their choosing, a session), filling and clicking, the screenshot folder, and one open premises
//! on a fresh SQLite store.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use checkin_core::store::{NewOrganization, NewPremises};
use checkin_core::{Keys, PhoneVault, Premises, Store, StoreConfig};
use fantoccini::{Client, ClientBuilder};
use tokio_util::sync::CancellationToken;
use web::{AppState, WebConfig};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const PHONE: &str = "+79161234567";
/// How long any one wait for the browser may take.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn browser_present() -> bool {
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
pub async fn start_driver() -> (tokio::process::Child, String) {
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

pub async fn browser(driver: &str, profile: &Path) -> Client {
    browser_sized(driver, profile, (480, 1100)).await
}

/// A headless chromium session with its own profile and a window of `size`
/// (width, height) pixels.
pub async fn browser_sized(driver: &str, profile: &Path, size: (u32, u32)) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", format!("--window-size={},{}", size.0, size.1),
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

/// Replaces the text of the field `css`.
pub async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks `css` once it is on the page (within [`WAIT`]).
pub async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(WAIT)
        .for_element(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// `$CARGO_TARGET_TMPDIR/{name}/`, created.
pub fn shots_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh SQLite store (in `data`) with one organization and one open
/// premises at «Тверская ул., 1».
pub async fn venue(data: &Path) -> (Keys, Store, Premises) {
    let keys = Keys::generate();
    let url = checkin_core::store::sqlite_url_in(data);
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
    (keys, store, premises)
}

/// `web::serve` running on 127.0.0.1 port 0, its public base URL set to that
/// address (so the QR codes it draws point at it).
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Stops the server and waits for it to end cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

/// Serves `store` with the default settings (Moscow time, the real clock).
pub async fn serve_web(store: &Store, keys: &Keys) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        store.clone(),
        keys,
        checkin_core::ServiceZone::default(),
        std::sync::Arc::new(checkin_core::SystemClock),
        WebConfig {
            public_base_url: base.clone(),
            ..WebConfig::default()
        },
    );
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(web::serve(listener, state, shutdown.clone()));
    Served {
        base,
        shutdown,
        server,
    }
}
