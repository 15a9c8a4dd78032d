//! The city account (OpenID Connect) against a real, independent provider:
//! panva's `oidc-provider` (`tests/oidc/provider.js`, Node) on port 0, with
//! its development login and consent pages, and the web served on port 0
//! over a real SQLite store.
//!
//! * a real browser (chromium through chromedriver) walks /v/{code} → the
//!   consent box → the city-account button → the provider's login and consent
//!   → our confirmation → the guard's «ДЕЙСТВИТЕЛЕН», saving screenshots under
//!   `$CARGO_TARGET_TMPDIR/web-oidc/`;
//! * HTTP clients with a cookie jar (`reqwest`) drive every other branch:
//!   an unverified, phoneless or foreign phone, a login cancelled at the
//!   provider, a tampered `state`, no login cookie, the provider down (the SMS
//!   way still works), consent unticked, and the city account off (404).
//!
//! Without `tests/oidc/node_modules` (`npm ci` there) the tests say so and
//! pass, unless `CHECKIN_TEST_REQUIRE_OIDC=1` (the test script installs the
//! provider and sets it); the browser walk also needs chromium, as
//! `browser.rs` does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use checkin_core::{Channel, Msisdn, Premises, ServiceZone, Store, SystemClock};
use common::{browser, browser_present, shots_dir, start_driver, venue, PHONE, WAIT};
use fantoccini::Locator;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;
use web::{AppState, OidcConfig, WebConfig};

const CLIENT_ID: &str = "checkin-test";
const CLIENT_SECRET: &str = "a-test-secret-of-some-length";

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Whether the provider's packages are installed (`npm ci` in tests/oidc).
fn provider_present() -> bool {
    let present = provider_dir().join("node_modules/oidc-provider").exists();
    if !present {
        assert!(
            std::env::var("CHECKIN_TEST_REQUIRE_OIDC").as_deref() != Ok("1"),
            "CHECKIN_TEST_REQUIRE_OIDC=1 but web/tests/oidc/node_modules is missing (npm ci there)"
        );
        eprintln!("note: web/tests/oidc/node_modules missing; the OpenID tests are skipped (scripts/test installs it)");
    }
    present
}

/// The provider, for a client whose callback is `redirect`; its issuer URL
/// is the first line it prints.
async fn start_provider(redirect: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new("node")
        .arg("provider.js")
        .current_dir(provider_dir())
        .env("OIDC_CLIENT_ID", CLIENT_ID)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_REDIRECT_URI", redirect)
        .stdout(Stdio::piped())
        // Its development-mode warnings are expected.
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let issuer = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the provider prints its URL in time")
        .unwrap()
        .expect("the provider's URL");
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");
    // Keep reading: a closed pipe would end the provider at its next line.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, issuer)
}

/// The web on port 0 over a fresh store, the provider beside it.
struct Site {
    _data: tempfile::TempDir,
    _provider: Option<tokio::process::Child>,
    base: String,
    store: Store,
    premises: Premises,
    shutdown: CancellationToken,
}

enum Provider {
    Real,
    /// An issuer where nothing listens.
    Down,
    Off,
}

impl Site {
    async fn start(provider: Provider) -> Site {
        let data = tempfile::tempdir().unwrap();
        let (keys, store, premises) = venue(data.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (child, issuer_url) = match provider {
            Provider::Real => {
                let (child, issuer) = start_provider(&format!("{base}/auth/callback")).await;
                (Some(child), issuer)
            }
            Provider::Down => {
                let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let url = format!("http://{}", gone.local_addr().unwrap());
                drop(gone);
                (None, url)
            }
            Provider::Off => (None, String::new()),
        };
        let config = WebConfig {
            public_base_url: base.clone(),
            oidc: OidcConfig {
                issuer_url,
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                ..OidcConfig::default()
            },
            ..WebConfig::default()
        };
        let state = AppState::new(
            store.clone(),
            &keys,
            ServiceZone::default(),
            Arc::new(SystemClock),
            config,
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(web::serve(listener, state, shutdown.clone()));
        Site {
            _data: data,
            _provider: child,
            base,
            store,
            premises,
            shutdown,
        }
    }

    fn venue_url(&self) -> String {
        format!("{}/v/{}", self.base, self.premises.code)
    }

    async fn checkins(&self) -> usize {
        let phone = Msisdn::parse(PHONE).unwrap();
        self.store
            .checkins()
            .checkins_of(&phone)
            .await
            .unwrap()
            .len()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A browser without a real window: a cookie jar, redirects followed
/// (unless `stop_at_callback`: then it stops before our callback).
fn http_client(stop_at_callback: bool) -> reqwest::Client {
    let policy = if stop_at_callback {
        Policy::custom(|attempt| {
            if attempt.url().path() == "/auth/callback" {
                attempt.stop()
            } else if attempt.previous().len() > 20 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        })
    } else {
        Policy::limited(20)
    };
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(policy)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// One page, read whole.
struct Page {
    status: StatusCode,
    url: reqwest::Url,
    location: Option<String>,
    body: String,
}

async fn read(response: reqwest::Response) -> Page {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    Page {
        status: response.status(),
        url: response.url().clone(),
        location,
        body: response.text().await.unwrap(),
    }
}

fn unescape(text: &str) -> String {
    text.replace("&amp;", "&").replace("&quot;", "\"")
}

impl Page {
    /// The value of attribute `attr` after the first `marker` in the page.
    fn attr_after(&self, marker: &str, attr: &str) -> String {
        let from = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} in {}", self.body));
        let rest = &self.body[from..];
        let key = format!("{attr}=\"");
        let start = rest.find(&key).unwrap() + key.len();
        let end = start + rest[start..].find('"').unwrap();
        unescape(&rest[start..end])
    }

    fn csrf(&self) -> String {
        self.attr_after("name=\"csrf\"", "value")
    }

    /// The first form's action, as an absolute URL.
    fn form_action(&self) -> reqwest::Url {
        self.url.join(&self.attr_after("<form", "action")).unwrap()
    }
}

/// The venue page, then its city-account button (consent as given): the
/// page that moves on to the provider, and the provider's URL.
async fn start_login(site: &Site, client: &reqwest::Client, consent: bool) -> (Page, String) {
    let venue = read(client.get(site.venue_url()).send().await.unwrap()).await;
    assert_eq!(venue.status, StatusCode::OK);
    let mut form = vec![("csrf", venue.csrf()), ("phone", String::new())];
    if consent {
        form.push(("consent", "1".into()));
    }
    let page = read(
        client
            .post(format!("{}/oidc", site.venue_url()))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let url = if page.status == StatusCode::OK && page.body.contains("id=\"continue\"") {
        page.attr_after("id=\"continue\"", "href")
    } else {
        String::new()
    };
    (page, url)
}

/// Through the provider's login (as `login`) and consent pages; the page
/// the browser ends on (or the stop before our callback).
async fn log_in(client: &reqwest::Client, provider_url: &str, login: &str) -> Page {
    let login_page = read(client.get(provider_url).send().await.unwrap()).await;
    assert!(
        login_page.body.contains("name=\"login\""),
        "{}",
        login_page.body
    );
    let form = [("prompt", "login"), ("login", login), ("password", "any")];
    let consent_page = read(
        client
            .post(login_page.form_action())
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        consent_page.body.contains("value=\"consent\""),
        "{}",
        consent_page.body
    );
    read(
        client
            .post(consent_page.form_action())
            .form(&[("prompt", "consent")])
            .send()
            .await
            .unwrap(),
    )
    .await
}

macro_rules! require_provider {
    () => {
        if !provider_present() {
            return;
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_city_account_checks_in_with_its_verified_phone_and_remembers_it() {
    require_provider!();
    let site = Site::start(Provider::Real).await;
    let client = http_client(false);
    let (leaving, url) = start_login(&site, &client, true).await;
    assert_eq!(leaving.status, StatusCode::OK, "{}", leaving.body);
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("nonce=") && url.contains("state="), "{url}");
    assert!(url.contains("scope=openid+phone") || url.contains("scope=openid%20phone"));
    let done = log_in(&client, &url, "visitor").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.url.path().starts_with("/ok/"), "{}", done.url);
    assert!(done.body.contains("Вход отмечен"));
    assert!(done.body.contains("Тверская ул., 1"));
    let phone = Msisdn::parse(PHONE).unwrap();
    let checkins = site.store.checkins().checkins_of(&phone).await.unwrap();
    assert_eq!(checkins.len(), 1);
    assert_eq!(checkins[0].channel, Channel::Web);
    assert!(checkins[0].consent);
    // No SMS was needed.
    assert!(site
        .store
        .outbox()
        .messages_to(&phone)
        .await
        .unwrap()
        .is_empty());
    // The phone is remembered: the venue page offers one tap.
    let venue = read(client.get(site.venue_url()).send().await.unwrap()).await;
    assert!(venue.body.contains("уже подтверждён"), "{}", venue.body);
    assert!(venue.body.contains(&phone.masked()));
    // The one-tap form offers the city account too.
    assert!(venue
        .body
        .contains(&format!("formaction=\"/v/{}/oidc\"", site.premises.code)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_error_from_the_provider_is_a_clear_502() {
    require_provider!();
    let site = Site::start(Provider::Real).await;
    let client = http_client(false);
    let (_, url) = start_login(&site, &client, true).await;
    let url = reqwest::Url::parse(&url).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let mut back = reqwest::Url::parse(&format!("{}/auth/callback", site.base)).unwrap();
    back.query_pairs_mut()
        .append_pair("error", "server_error")
        .append_pair("state", &state);
    let page = read(client.get(back).send().await.unwrap()).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
    assert!(page.body.contains("Вход не удался"));
    assert_eq!(site.checkins().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_a_verified_russian_phone_is_refused_with_the_sms_way_offered() {
    require_provider!();
    let site = Site::start(Provider::Real).await;
    for (login, status, words) in [
        (
            "unverified",
            StatusCode::FORBIDDEN,
            "Телефон не подтверждён",
        ),
        ("nophone", StatusCode::FORBIDDEN, "Телефон не подтверждён"),
        (
            "foreign",
            StatusCode::UNPROCESSABLE_ENTITY,
            "Номер не подходит",
        ),
    ] {
        let client = http_client(false);
        let (_, url) = start_login(&site, &client, true).await;
        let page = log_in(&client, &url, login).await;
        assert_eq!(page.status, status, "{login}: {}", page.body);
        assert!(page.body.contains(words), "{login}: {}", page.body);
        assert!(page.body.contains("по коду из SMS"), "{login}");
        assert!(
            page.body
                .contains(&format!("href=\"/v/{}\"", site.premises.code)),
            "{login}: {}",
            page.body
        );
        assert!(!page.body.contains("+7916"), "{login}");
    }
    assert_eq!(
        site.store
            .checkins()
            .count_checkins(site.premises.id)
            .await
            .unwrap(),
        0,
        "nothing recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_cancelled_at_the_provider_says_so_and_links_back() {
    require_provider!();
    let site = Site::start(Provider::Real).await;
    let client = http_client(false);
    let (_, url) = start_login(&site, &client, true).await;
    let login_page = read(client.get(&url).send().await.unwrap()).await;
    // The provider's «[ Cancel ]» link ends the interaction with access_denied.
    let href = login_page
        .body
        .split("href=\"")
        .map(|rest| &rest[..rest.find('"').unwrap_or(0)])
        .find(|href| href.ends_with("/abort"))
        .expect("the provider's cancel link");
    let abort = login_page.url.join(&unescape(href)).unwrap();
    let page = read(client.get(abort).send().await.unwrap()).await;
    assert_eq!(page.url.path(), "/auth/callback");
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("Вход отменён"), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("href=\"/v/{}\"", site.premises.code)));
    assert_eq!(site.checkins().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_state_or_no_login_cookie_is_refused_and_a_login_is_used_once() {
    require_provider!();
    let site = Site::start(Provider::Real).await;
    let client = http_client(true);
    let (_, url) = start_login(&site, &client, true).await;
    let stop = log_in(&client, &url, "visitor").await;
    let back =
        reqwest::Url::parse(stop.location.as_deref().expect("the provider's redirect")).unwrap();
    assert_eq!(back.path(), "/auth/callback");
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let (code, state) = (param("code"), param("state"));
    let callback = |code: &str, state: &str| {
        let mut url = reqwest::Url::parse(&format!("{}/auth/callback", site.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("code", code)
            .append_pair("state", state);
        url
    };
    // Another browser (no login cookie) with the real code and state.
    let stranger = read(
        http_client(false)
            .get(callback(&code, &state))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        stranger.status,
        StatusCode::BAD_REQUEST,
        "{}",
        stranger.body
    );
    assert!(stranger.body.contains("Вход не завершён"));
    // This browser, one character of the state changed.
    let mut altered = state.clone().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let tampered = read(client.get(callback(&code, &altered)).send().await.unwrap()).await;
    assert_eq!(
        tampered.status,
        StatusCode::BAD_REQUEST,
        "{}",
        tampered.body
    );
    // The refusal deleted the login cookie: the right state no longer works.
    let again = read(client.get(callback(&code, &state)).send().await.unwrap()).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert_eq!(site.checkins().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unticked_consent_sends_nobody_to_the_provider() {
    require_provider!();
    let site = Site::start(Provider::Real).await;
    let client = http_client(false);
    let (page, url) = start_login(&site, &client, false).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("Без согласия на уведомления"));
    assert!(url.is_empty());
    // And a form without its CSRF field is refused.
    let forged = client
        .post(format!("{}/oidc", site.venue_url()))
        .form(&[("consent", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_provider_down_the_button_says_so_and_sms_codes_still_go_out() {
    // Needs no provider at all.
    let site = Site::start(Provider::Down).await;
    let client = http_client(false);
    let (page, _) = start_login(&site, &client, true).await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(page.body.contains("Вход через mos.ru временно недоступен"));
    assert!(page
        .body
        .contains(&format!("href=\"/v/{}\"", site.premises.code)));
    // The SMS way is untouched.
    let venue = read(client.get(site.venue_url()).send().await.unwrap()).await;
    assert!(venue.body.contains("Войти через mos.ru"));
    let sent = client
        .post(site.venue_url())
        .form(&[
            ("csrf", venue.csrf().as_str()),
            ("phone", PHONE),
            ("consent", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    assert!(sent.url().path().ends_with("/otp"), "{}", sent.url());
    let phone = Msisdn::parse(PHONE).unwrap();
    assert_eq!(
        site.store.outbox().messages_to(&phone).await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_issuer_there_is_no_button_and_no_route() {
    let site = Site::start(Provider::Off).await;
    let client = http_client(false);
    let venue = read(client.get(site.venue_url()).send().await.unwrap()).await;
    assert_eq!(venue.status, StatusCode::OK);
    assert!(!venue.body.contains("/oidc"));
    assert!(!venue.body.contains("mos.ru"));
    let post = client
        .post(format!("{}/oidc", site.venue_url()))
        .form(&[("csrf", venue.csrf().as_str()), ("consent", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    let callback = client
        .get(format!("{}/auth/callback?code=x&state=y", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_checks_in_with_the_city_account_and_the_guard_sees_valid() {
    if !provider_present() || !browser_present() {
        return;
    }
    let site = Site::start(Provider::Real).await;
    let (_driver, driver_url) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver_url, profile.path()).await;
    let shots = shots_dir("web-oidc");
    let shot = |name: &'static str| {
        let client = client.clone();
        let path = shots.join(name);
        async move { std::fs::write(path, client.screenshot().await.unwrap()).unwrap() }
    };

    client.goto(&site.venue_url()).await.unwrap();
    client
        .find(Locator::Css("input[name=consent]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot("oidc-visitor.png").await;
    client
        .find(Locator::Css("button.city"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The provider's own login page, then its consent page.
    let login = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("input[name=login]"))
        .await
        .expect("the provider's login form");
    login.send_keys("visitor").await.unwrap();
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("any")
        .await
        .unwrap();
    shot("oidc-provider-login.png").await;
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let consent = client
        .wait()
        .at_most(WAIT)
        // Only the consent form's button: a catch-all for any submit button
        // also matched the login page's own, still there for a moment after
        // its click, and went stale in the browser's hands.
        .for_element(Locator::Css("input[name=prompt][value=consent] ~ button"))
        .await
        .expect("the provider's consent page");
    shot("oidc-provider-consent.png").await;
    consent.click().await.unwrap();

    let heading = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("h1.ok"))
        .await
        .expect("our confirmation");
    assert_eq!(heading.text().await.unwrap(), "Вход отмечен");
    assert!(client.source().await.unwrap().contains("Тверская ул., 1"));
    shot("oidc-confirmation.png").await;
    assert_eq!(site.checkins().await, 1);

    let guard_url = client
        .find(Locator::Css("p.small a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("the QR's link");
    assert!(guard_url.starts_with(&format!("{}/c/", site.base)));
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
    shot("oidc-guard.png").await;
    client.close().await.unwrap();
    eprintln!("screenshots in {}", shots.display());
}
