//! Every page of the product under axe-core (issue 21): Debian's headless
//! chromium through chromedriver (`common/`) walks the visitor's pages (the
//! poster's `/v/{code}`, the code page, the confirmation, each with its
//! refusal; the remembered phone; the city account's button and failure),
//! the guard's page (valid and forged), the error page, the organization
//! cabinet and the authority cabinet (the upload's progress, dry run and
//! result; the cases page updating itself in place) over a real SQLite
//! store, injects axe-core (npm, locked in `web/tests/axe/`) into each page
//! and runs it with its default rules (WCAG 2 A/AA, best practices).
//! Any violation fails the test, naming the page, the rule and the elements.
//! The pages visited are checked against every GET route of the router's
//! sources, so a new page cannot go unchecked. Skipped without the browser
//! or axe-core unless `CHECKIN_TEST_REQUIRE_BROWSER=1`.

mod common;

use std::collections::BTreeSet;

use checkin_core::{Channel, Msisdn, NewCheckIn};
use common::{
    axe_source, axe_violations, browser_present, browser_sized, click, fill, routes_in_sources,
    serve_web, serve_web_with, start_driver, venue, PHONE, WAIT,
};
use fantoccini::{Client, Locator};
use web::{OidcConfig, WebConfig};

const PASSWORD: &str = "correct horse battery";

/// GET routes that answer no HTML page: files, probes, JSON and CSV, and
/// the city account's callback (off here; its failures render the error
/// page, checked as `404`).
const NOT_PAGES: &[&str] = &[
    "/static/style.css",
    "/static/clock.js",
    "/static/follow.js",
    "/static/org.css",
    "/static/org-sms.js",
    "/healthz",
    "/readyz",
    "/metrics",
    "/org/sms-preview",
    "/org/premises/{id}/qr.svg",
    "/org/premises/{id}/qr.png",
    "/authority/cases.csv",
    "/auth/callback",
];

/// What the walk saw: the routes it checked and the violations per page.
struct Audit {
    axe: String,
    routes: BTreeSet<String>,
    failures: Vec<String>,
}

impl Audit {
    /// Runs axe-core on the page `client` shows, `route` (the router's
    /// pattern) described by `what`.
    async fn page(&mut self, client: &Client, route: &str, what: &str) {
        let violations = axe_violations(client, &self.axe).await;
        let url = client.current_url().await.unwrap();
        eprintln!("{route} ({what}): {} violation(s)", violations.len());
        self.routes.insert(route.to_owned());
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(|v| format!("    {v}")).collect();
            self.failures
                .push(format!("{route} ({what}, {url}):\n{}", list.join("\n")));
        }
    }

    /// Opens `base` + `path`, then checks it.
    async fn visit(&mut self, client: &Client, base: &str, path: &str, route: &str, what: &str) {
        client.goto(&format!("{base}{path}")).await.unwrap();
        self.page(client, route, what).await;
    }
}

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Ticks the consent box unless the page kept it ticked.
async fn consent(client: &Client) {
    let tick = wait_for(client, "input[name=consent]").await;
    if !tick.is_selected().await.unwrap() {
        tick.click().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_of_the_product_has_an_axe_core_violation() {
    if !browser_present() {
        return;
    }
    let Some(axe) = axe_source() else { return };
    let data = tempfile::tempdir().unwrap();
    let (keys, store, premises) = venue(data.path()).await;
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
    let served = serve_web(&store, &keys).await;
    let base = served.base.clone();
    let (_driver, driver_url) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser_sized(&driver_url, profile.path(), (1000, 1100)).await;
    let mut audit = Audit {
        axe,
        routes: BTreeSet::new(),
        failures: Vec::new(),
    };
    let code = premises.code;

    // The visitor: the poster's page (and a refused phone), the code page
    // (and a wrong code), the confirmation; the page again with the phone
    // remembered, and its quick check-in.
    let path = format!("/v/{code}");
    audit
        .visit(&client, &base, &path, "/v/{code}", "check-in form")
        .await;
    fill(&client, "input[name=phone]", "12345").await;
    click(&client, "form button[type=submit]").await;
    wait_for(&client, ".problem").await;
    audit.page(&client, "/v/{code}", "a refused phone").await;
    fill(&client, "input[name=phone]", PHONE).await;
    consent(&client).await;
    click(&client, "form button[type=submit]").await;
    wait_for(&client, "input[name=code]").await;
    audit.page(&client, "/v/{code}/otp", "code page").await;
    let sms = store
        .outbox()
        .messages_to(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap();
    let otp: String = sms
        .last()
        .unwrap()
        .text
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    fill(&client, "input[name=code]", wrong).await;
    click(&client, "form[action$='/otp'] button").await;
    wait_for(&client, ".problem").await;
    audit.page(&client, "/v/{code}/otp", "a wrong code").await;
    fill(&client, "input[name=code]", &otp).await;
    click(&client, "form[action$='/otp'] button").await;
    wait_for(&client, "h1.ok").await;
    audit.page(&client, "/ok/{token}", "confirmation").await;
    let confirmation = client.current_url().await.unwrap();

    // The guard's page, valid and forged; the error page.
    let guard_url = wait_for(&client, "p.small a")
        .await
        .attr("href")
        .await
        .unwrap()
        .expect("the QR's link");
    client.goto(&guard_url).await.unwrap();
    wait_for(&client, ".verdict[data-verdict=valid]").await;
    audit.page(&client, "/c/{token}", "valid").await;
    client.goto(confirmation.as_str()).await.unwrap();
    wait_for(&client, "h1.ok").await;
    audit
        .visit(&client, &base, &path, "/v/{code}", "a remembered phone")
        .await;
    consent(&client).await;
    click(&client, "form[action$='/quick'] button").await;
    wait_for(&client, "h1.ok").await;
    audit
        .page(&client, "/ok/{token}", "an earlier check-in")
        .await;
    let forged = "/c/not-a-token";
    audit
        .visit(&client, &base, forged, "/c/{token}", "forged")
        .await;
    audit
        .visit(&client, &base, "/nowhere", "404", "no such page")
        .await;
    let unknown = "/v/99999999";
    audit
        .visit(&client, &base, unknown, "404", "no such premises")
        .await;

    // The organization cabinet.
    audit
        .visit(&client, &base, "/org/login", "/org/login", "log-in")
        .await;
    fill(&client, "input[name=email]", "cafe@example.ru").await;
    fill(&client, "input[name=password]", "wrong password").await;
    click(&client, "form[action='/org/login'] button").await;
    wait_for(&client, ".problem").await;
    audit.page(&client, "/org/login", "a refused log-in").await;
    audit
        .visit(&client, &base, "/org/signup", "/org/signup", "sign-up")
        .await;
    fill(&client, "input[name=name]", "Кафе «Ромашка»").await;
    fill(&client, "input[name=email]", "owner@example.ru").await;
    fill(&client, "input[name=password]", PASSWORD).await;
    click(&client, "form[action='/org/signup'] button").await;
    wait_for(&client, "form[action='/org/premises']").await;
    audit.page(&client, "/org", "home, no premises").await;
    fill(&client, "input[name=address]", "Тверская ул., 1").await;
    click(&client, "form[action='/org/premises'] button").await;
    let poster = wait_for(&client, "a[href$='/poster']")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let premises_path = poster.trim_end_matches("/poster").to_owned();
    audit.page(&client, "/org/premises/{id}", "premises").await;
    audit
        .visit(&client, &base, "/org", "/org", "home with premises")
        .await;
    // Visits, so the stats page draws its chart and the authority's case
    // below has a place.
    let id: i64 = premises_path.rsplit('/').next().unwrap().parse().unwrap();
    let own = store.orgs().premises_by_id(id).await.unwrap().unwrap();
    for (phone, ago) in [(PHONE, 90), ("+79160000001", 80)] {
        store
            .checkins()
            .record_checkin(&NewCheckIn {
                phone: Msisdn::parse(phone).unwrap(),
                code: own.code,
                channel: Channel::Sms,
                at: now - chrono::Duration::minutes(ago),
                consent: true,
            })
            .await
            .unwrap();
    }
    let stats = format!("{premises_path}/stats");
    audit
        .visit(&client, &base, &stats, "/org/premises/{id}/stats", "stats")
        .await;
    audit
        .visit(
            &client,
            &base,
            &poster,
            "/org/premises/{id}/poster",
            "poster",
        )
        .await;
    audit
        .visit(&client, &base, "/org/posters", "/org/posters", "posters")
        .await;
    audit
        .visit(&client, &base, "/org/tokens", "/org/tokens", "tokens")
        .await;
    fill(&client, "input[name=label]", "касса").await;
    click(&client, "form[action='/org/tokens'] button").await;
    wait_for(&client, "tr[data-token]").await;
    audit
        .page(&client, "/org/tokens", "a token just created")
        .await;

    // The authority cabinet: log-in, home, upload, dry run, sent, cases,
    // a case, the audit log, tokens, pause and resume.
    let login = "/authority/login";
    audit.visit(&client, &base, login, login, "log-in").await;
    fill(&client, "input[name=email]", "epi@example.ru").await;
    fill(&client, "input[name=password]", "wrong password").await;
    click(&client, "form[action='/authority/login'] button").await;
    wait_for(&client, ".problem").await;
    audit.page(&client, login, "a refused log-in").await;
    fill(&client, "input[name=email]", "epi@example.ru").await;
    fill(&client, "input[name=password]", PASSWORD).await;
    click(&client, "form[action='/authority/login'] button").await;
    wait_for(&client, "#alerts-running").await;
    audit
        .page(&client, "/authority", "home, alerts running")
        .await;
    let upload = "/authority/upload";
    audit
        .visit(&client, &base, upload, upload, "upload form")
        .await;
    // A large file: its page while the dry run reads it (the progress,
    // following the job), then its dry run.
    let big = data.path().join("big.csv");
    let mut rows = String::from("phone,confirmed_at\n");
    for n in 0..50_000 {
        rows.push_str(&format!("+7926{n:07},{}\n", now.to_rfc3339()));
    }
    std::fs::write(&big, rows).unwrap();
    wait_for(&client, "input[name=file]")
        .await
        .send_keys(&big.display().to_string())
        .await
        .unwrap();
    click(&client, "#check-upload").await;
    wait_for(&client, "h1").await;
    // (read in one script: the page replaces its elements every second)
    let title = client
        .execute("return document.querySelector('h1').textContent;", vec![])
        .await
        .unwrap();
    assert_eq!(
        title, "Проверка файла",
        "the progress page, 50 000 rows being read"
    );
    audit
        .page(&client, "/authority/upload/{job}", "progress")
        .await;
    client
        .wait()
        .at_most(std::time::Duration::from_secs(120))
        .for_element(Locator::Css("#visits"))
        .await
        .expect("the large file's dry run, the page following it");
    audit
        .page(
            &client,
            "/authority/upload/{job}",
            "dry run, nothing refused",
        )
        .await;
    audit
        .visit(&client, &base, upload, upload, "upload form again")
        .await;
    let file = data.path().join("cases.csv");
    std::fs::write(
        &file,
        format!(
            "phone,confirmed_at\n{PHONE},{}\nnot-a-phone,{}\n",
            now.to_rfc3339(),
            now.to_rfc3339()
        ),
    )
    .unwrap();
    wait_for(&client, "input[name=file]")
        .await
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    click(&client, "#check-upload").await;
    wait_for(&client, "#rejects").await;
    audit
        .page(&client, "/authority/upload/{job}", "dry run")
        .await;
    click(&client, "#send-alerts").await;
    wait_for(&client, "#sent").await;
    audit.page(&client, "/authority/upload/{job}", "sent").await;
    let cases = "/authority/cases";
    audit.visit(&client, &base, cases, cases, "cases").await;
    // Alerts are queued (no sender here): the page follows them, in place
    // (its refresh in <noscript>, axe's meta-refresh rule): within two of its
    // 5 s periods its table is new, the page the same.
    client
        .execute(
            "window.sameLoad = true; document.querySelector('#cases').dataset.old = '1';",
            vec![],
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(12);
    loop {
        let state = client
            .execute(
                "return [window.sameLoad === true, !!document.querySelector('#cases[data-old]')];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            state[0], true,
            "the cases page reloaded instead of updating"
        );
        if state[1] == false {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cases page never updated"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    audit.page(&client, cases, "updated in place").await;
    click(&client, "#cases a[href^='/authority/cases/']").await;
    wait_for(&client, "#visits").await;
    audit.page(&client, "/authority/cases/{id}", "a case").await;
    let log = "/authority/audit";
    audit.visit(&client, &base, log, log, "audit log").await;
    let tokens = "/authority/tokens";
    audit.visit(&client, &base, tokens, tokens, "tokens").await;
    fill(&client, "input[name=label]", "регистр").await;
    click(&client, "form[action='/authority/tokens'] button").await;
    wait_for(&client, "tr[data-token]").await;
    audit.page(&client, tokens, "a token just created").await;
    let pause = "/authority/alerts?action=pause";
    audit
        .visit(&client, &base, pause, "/authority/alerts", "pause?")
        .await;
    click(&client, "#confirm-switch").await;
    wait_for(&client, "#alerts-paused").await;
    audit
        .page(&client, "/authority", "home, alerts paused")
        .await;
    let resume = "/authority/alerts?action=resume";
    audit
        .visit(&client, &base, resume, "/authority/alerts", "resume?")
        .await;

    // The visitor's page with the city account's button, and the page a
    // failed city-account log-in ends on (its provider unreachable here).
    let city = serve_web_with(
        &store,
        &keys,
        WebConfig {
            oidc: OidcConfig {
                issuer_url: "http://127.0.0.1:9/".into(),
                client_id: "checkin".into(),
                ..OidcConfig::default()
            },
            ..WebConfig::default()
        },
    )
    .await;
    audit
        .visit(&client, &city.base, &path, "/v/{code}", "city account on")
        .await;
    consent(&client).await;
    click(&client, "button.city").await;
    wait_for(&client, "p.message").await;
    let failed = client.current_url().await.unwrap();
    assert!(failed.path().ends_with("/oidc"), "{failed}");
    audit
        .page(&client, "POST /v/{code}/oidc", "provider unreachable")
        .await;
    city.stop().await;

    client.close().await.unwrap();
    served.stop().await;

    // Every GET route that renders HTML was checked.
    let pages: BTreeSet<String> = routes_in_sources()
        .into_iter()
        .filter(|(method, route, _)| {
            method == "GET" && !route.starts_with("/api/") && !NOT_PAGES.contains(&route.as_str())
        })
        .map(|(_, route, _)| route)
        .collect();
    assert!(pages.contains("/c/{token}") && pages.contains("/authority/cases/{id}"));
    let unchecked: Vec<&String> = pages.difference(&audit.routes).collect();
    assert!(unchecked.is_empty(), "pages never checked: {unchecked:?}");
    assert!(
        audit.failures.is_empty(),
        "axe-core violations on {} page(s):\n{}",
        audit.failures.len(),
        audit.failures.join("\n")
    );
}
