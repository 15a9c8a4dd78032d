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
    serve_web_with(store, keys, WebConfig::default()).await
}

/// Serves `store` with `config` (its public base URL replaced by the
/// server's address).
pub async fn serve_web_with(store: &Store, keys: &Keys, config: WebConfig) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        store.clone(),
        keys,
        checkin_core::ServiceZone::default(),
        std::sync::Arc::new(checkin_core::SystemClock),
        WebConfig {
            public_base_url: base.clone(),
            ..config
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

/// Every route of the router's sources, `(method, path)`: the `.route("…",
/// get(…).post(…))` calls of `web/src`, read as text, with the file of each.
pub fn routes_in_sources() -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(".route(") {
                let rest = &text[at + 7..];
                let Some(open) = rest.find('"') else { continue };
                let close = open + 1 + rest[open + 1..].find('"').unwrap();
                let route = &rest[open + 1..close];
                // The call's text up to its closing parenthesis.
                let mut depth = 1;
                let mut end = 0;
                for (i, c) in rest.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                let call = &rest[..end];
                for method in ["get", "post", "patch", "put", "delete"] {
                    if call.contains(&format!("{method}(")) || call.contains(&format!(".{method}("))
                    {
                        found.push((method.to_uppercase(), route.to_owned(), file.clone()));
                    }
                }
            }
        }
    }
    found
}

/// `web/tests/axe/node_modules/axe-core/axe.min.js` (`npm ci` in
/// `web/tests/axe`, as `scripts/test` runs it); `None`, and the test skipped,
/// when it is not installed, unless `CHECKIN_TEST_REQUIRE_BROWSER=1`.
pub fn axe_source() -> Option<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/axe/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            assert!(
                std::env::var("CHECKIN_TEST_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "CHECKIN_TEST_REQUIRE_BROWSER=1 but {} is missing ({e}): npm ci in web/tests/axe",
                path.display()
            );
            eprintln!("note: axe-core not installed (npm ci in web/tests/axe); the accessibility test is skipped");
            None
        }
    }
}

/// One rule axe-core finds broken on a page.
#[derive(Debug, serde::Deserialize)]
pub struct AxeViolation {
    /// The rule, e.g. `page-has-heading-one`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    /// What the rule asks, in a line.
    pub help: String,
    /// The CSS selectors of the offending elements.
    pub targets: Vec<String>,
}

impl std::fmt::Display for AxeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} — {}",
            self.id,
            self.impact.as_deref().unwrap_or("?"),
            self.help,
            self.targets.join(", ")
        )
    }
}

/// Injects axe-core (`source`, from [`axe_source`]) into the page `client`
/// shows and runs `axe.run()` over the whole document with its default
/// rules (WCAG 2 A/AA and best practices): the violations it reports. A run
/// that fails (a page that replaced itself under it: the authority's pages
/// that follow a job) is tried again, three times in all.
pub async fn axe_violations(client: &Client, source: &str) -> Vec<AxeViolation> {
    let mut tries = 0;
    loop {
        tries += 1;
        client
            .execute(&format!("{source}\n;return typeof window.axe;"), vec![])
            .await
            .expect("axe-core injected");
        let found = client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                window.axe
                    .run(document, { resultTypes: ["violations"] })
                    .then(
                        (r) => done(r.violations.map((v) => ({
                            id: v.id,
                            impact: v.impact,
                            help: v.help,
                            targets: v.nodes.map((n) => n.target.map(String).join(" ")),
                        }))),
                        (e) => done({ error: String(e) }),
                    );"#,
                vec![],
            )
            .await;
        match found.map(|found| (serde_json::from_value(found.clone()), found)) {
            Ok((Ok(violations), _)) => return violations,
            Ok((Err(_), found)) if tries >= 3 => panic!("axe.run(): {found}"),
            Err(e) if tries >= 3 => panic!("axe.run(): {e}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
