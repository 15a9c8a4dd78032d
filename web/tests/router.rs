//! The web's router driven in-process (`oneshot`) over a real SQLite store:
//! every page, every error branch, each SMS limit and each reason a guard
//! token is not valid. Time is a `ManualClock`, so limits and expiry are
//! tested without sleeping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use checkin_core::guard::{GuardClaim, GuardKey};
use checkin_core::store::{NewOrganization, NewPremises, OutboxFeed};
use checkin_core::{
    Channel, Keys, ManualClock, Msisdn, PhoneVault, Premises, Priority, ServiceZone, Store,
    StoreConfig,
};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use tower::ServiceExt;
use web::{AppState, WebConfig};

const PHONE: &str = "+79161234567";

/// One response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the hidden field `name` in the page's first form with it.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + marker.len();
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }
}

/// A browser: the router, a cookie jar, and the address it comes from.
struct App {
    _dir: tempfile::TempDir,
    keys: Keys,
    store: Store,
    clock: ManualClock,
    /// The sender's end of the outbox: tells whether a producer woke it.
    feed: OutboxFeed,
    state: AppState,
    premises: Premises,
    other: Premises,
    closed: Premises,
    jar: HashMap<String, String>,
    from: SocketAddr,
}

fn start_time() -> DateTime<Utc> {
    // 20:13 in Moscow.
    Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
}

impl App {
    async fn new() -> App {
        App::with(WebConfig::default()).await
    }

    async fn with(config: WebConfig) -> App {
        let dir = tempfile::tempdir().unwrap();
        let url = checkin_core::store::sqlite_url_in(dir.path());
        App::on(config, dir, &url).await
    }

    /// The app on the database at `url`.
    async fn on(config: WebConfig, dir: tempfile::TempDir, url: &str) -> App {
        let keys = Keys::generate();
        let store = Store::open(url, PhoneVault::new(&keys), StoreConfig::default())
            .await
            .unwrap();
        let clock = ManualClock::new(start_time());
        let org = store
            .orgs()
            .create_org(
                &NewOrganization {
                    name: "Кафе «Ромашка»".into(),
                    email: "cafe@example.ru".into(),
                    password: None,
                },
                start_time(),
            )
            .await
            .unwrap()
            .organization;
        let add = |address: &str| NewPremises {
            org_id: org.id,
            address: address.into(),
            kind: None,
            stay_minutes: None,
        };
        let premises = store
            .orgs()
            .add_premises(&add("Тверская ул., 1"), start_time())
            .await
            .unwrap();
        let other = store
            .orgs()
            .add_premises(&add("Арбат, 5"), start_time())
            .await
            .unwrap();
        let closed = store
            .orgs()
            .add_premises(&add("Закрытая ул., 9"), start_time())
            .await
            .unwrap();
        store
            .orgs()
            .set_premises_active(closed.id, false)
            .await
            .unwrap();
        let feed = store.outbox().subscribe(16, start_time()).await.unwrap();
        let state = AppState::new(
            store.clone(),
            &keys,
            ServiceZone::default(),
            Arc::new(clock.clone()),
            config,
        );
        App {
            _dir: dir,
            keys,
            store,
            clock,
            feed,
            state,
            premises,
            other,
            closed,
            jar: HashMap::new(),
            from: "203.0.113.7:50000".parse().unwrap(),
        }
    }

    fn router(&self) -> Router {
        web::router(self.state.clone()).layer(MockConnectInfo(self.from))
    }

    async fn send(&mut self, request: Request<Body>) -> Reply {
        let response = self.router().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    fn cookies(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> Reply {
        let request = Request::get(path)
            .header(header::COOKIE, self.cookies())
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.post_with(path, form, &[]).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let mut request = Request::post(path)
            .header(header::COOKIE, self.cookies())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.join("&"))).unwrap())
            .await
    }

    fn code_path(&self) -> String {
        format!("/v/{}", self.premises.code)
    }

    /// Opens the visitor's page and asks for a code for `phone`; returns the
    /// redirect.
    async fn request_code(&mut self, phone: &str) -> Reply {
        let path = self.code_path();
        let page = self.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = page.field("csrf");
        self.post(
            &path,
            &[("csrf", &csrf), ("phone", phone), ("consent", "1")],
        )
        .await
    }

    /// The code in the last SMS to `phone`.
    async fn last_code(&self, phone: &str) -> String {
        let messages = self
            .store
            .outbox()
            .messages_to(&Msisdn::parse(phone).unwrap())
            .await
            .unwrap();
        let last = messages.last().expect("an SMS was queued");
        assert_eq!(last.priority, Priority::Otp);
        last.text.chars().filter(char::is_ascii_digit).collect()
    }

    async fn sms_count(&self, phone: &str) -> usize {
        self.store
            .outbox()
            .messages_to(&Msisdn::parse(phone).unwrap())
            .await
            .unwrap()
            .len()
    }

    /// Enters `code` on the code page the redirect `to_code` leads to.
    async fn enter(&mut self, to_code: &str, code: &str) -> Reply {
        let page = self.get(to_code).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let (csrf, ticket) = (page.field("csrf"), page.field("t"));
        let path = format!("{}/otp", self.code_path());
        self.post(&path, &[("csrf", &csrf), ("t", &ticket), ("code", code)])
            .await
    }

    /// The whole way to a confirmation; returns its path.
    async fn check_in(&mut self) -> String {
        let sent = self.request_code(PHONE).await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        let code = self.last_code(PHONE).await;
        let done = self.enter(sent.location(), &code).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        done.location().to_owned()
    }
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The guard URL a confirmation's QR encodes, as a path.
fn guard_path(confirmation: &Reply) -> String {
    let start = confirmation.body.find("http://127.0.0.1:8080/c/").unwrap() + 21;
    let end = start + confirmation.body[start..].find('"').unwrap();
    confirmation.body[start..end].to_owned()
}

#[tokio::test]
async fn the_visitor_page_shows_the_premises_and_the_consent_with_or_without_hyphens() {
    let mut app = App::new().await;
    for path in [
        format!("/v/{}", app.premises.code),
        format!("/v/{}", app.premises.code.digits()),
    ] {
        let page = app.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Тверская ул., 1"));
        assert!(page.body.contains("Кафе «Ромашка»"));
        assert!(page
            .body
            .contains("Я согласен получать уведомления о возможном контакте с заболевшим"));
        assert!(page.body.contains("name=\"phone\""));
        assert!(page.body.contains("lang=\"ru\""));
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
        assert!(!page.body.contains("<script>") && !page.body.contains("style=\""));
    }
    assert!(
        app.jar.contains_key("csrf"),
        "the form's CSRF cookie is set"
    );
}

#[tokio::test]
async fn unknown_mistyped_and_closed_premises_get_clear_pages() {
    let mut app = App::new().await;
    let mut typo = app.premises.code.digits().into_bytes();
    typo[0] = if typo[0] == b'9' { b'0' } else { typo[0] + 1 };
    let typo = String::from_utf8(typo).unwrap();
    let page = app.get(&format!("/v/{typo}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("В коде ошибка"));

    let page = app.get("/v/12345").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Код не найден"));

    // A valid code nobody registered (search for one).
    let mut unknown = None;
    for _ in 0..100 {
        let code = checkin_core::VenueCode::generate(&mut rand::thread_rng());
        if app
            .store
            .orgs()
            .premises_by_code(&code)
            .await
            .unwrap()
            .is_none()
        {
            unknown = Some(code);
            break;
        }
    }
    let page = app.get(&format!("/v/{}", unknown.unwrap())).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Помещения с таким кодом нет"));

    let page = app.get(&format!("/v/{}", app.closed.code)).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("не принимается"));

    let page = app.get("/nothing-here").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Страница не найдена"));
}

#[tokio::test]
async fn the_whole_way_checks_in_and_shows_a_confirmation_the_guard_accepts() {
    let mut app = App::new().await;
    let sent = app.request_code(PHONE).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    assert!(sent
        .location()
        .starts_with(&format!("{}/otp?t=", app.code_path())));
    assert!(app.feed.take_wake(), "the sender was woken");
    let code = app.last_code(PHONE).await;
    assert_eq!(code.len(), 6);
    let messages = app
        .store
        .outbox()
        .messages_to(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap();
    assert_eq!(
        messages[0].text,
        format!("Код для входа: {code}. Никому не сообщайте")
    );
    // Stored hashed: the digits appear nowhere in the otps table.
    let rows = stored_codes(&app.store).await;
    assert!(!rows.contains(&code));

    let done = app.enter(sent.location(), &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.location().starts_with("/ok/"));
    let cookie = done.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("phone="));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(cookie.contains(&format!("Max-Age={}", 30 * 24 * 3600)));
    assert!(!cookie.contains("Secure") && !cookie.contains("9161234567"));

    let visits = app
        .store
        .checkins()
        .checkins_of(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap();
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0].channel, Channel::Web);
    assert!(visits[0].consent);
    assert_eq!(visits[0].premises_id, app.premises.id);

    let confirmation = app.get(done.location()).await;
    assert_eq!(confirmation.status, StatusCode::OK);
    assert!(confirmation.body.contains("Вход отмечен"));
    assert!(confirmation.body.contains("Тверская ул., 1"));
    assert!(confirmation.body.contains("18 окт. в 20:13"));
    assert!(confirmation.body.contains("<svg"));
    assert!(confirmation.body.contains("/static/clock.js"));
    assert!(confirmation.body.contains("class=\"pulse\""));
    assert!(confirmation.body.contains("Забыть этот телефон"));
    assert!(!confirmation.body.contains("9161234567"));

    let guard = app.get(&guard_path(&confirmation)).await;
    assert_eq!(guard.status, StatusCode::OK);
    assert!(guard.body.contains("data-verdict=\"valid\""));
    assert!(guard.body.contains("ДЕЙСТВИТЕЛЕН"));
    assert!(guard.body.contains("Тверская ул., 1"));
    assert!(guard.body.contains("18 окт. в 20:13"));
    assert!(guard.body.contains("только что"));

    // The static files the pages name.
    let css = app.get("/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("@keyframes"));
    assert_eq!(app.get("/static/clock.js").await.status, StatusCode::OK);
}

/// Every stored code's columns, as text (to look for the digits in).
async fn stored_codes(store: &Store) -> String {
    use sqlx::Row;
    let rows = sqlx::query("SELECT code_salt, code_hash, phone_sealed FROM otps")
        .fetch_all(store.pool_for_tests())
        .await
        .unwrap();
    assert!(!rows.is_empty());
    let mut out = String::new();
    for row in rows {
        for column in ["code_salt", "code_hash", "phone_sealed"] {
            let bytes: Vec<u8> = row.try_get(column).unwrap();
            out.push_str(&String::from_utf8_lossy(&bytes));
            out.push_str(&format!("{bytes:?}"));
        }
    }
    out
}

#[tokio::test]
async fn unticked_consent_or_a_bad_phone_sends_nothing_and_says_why() {
    let mut app = App::new().await;
    let path = app.code_path();
    let page = app.get(&path).await;
    let csrf = page.field("csrf");
    let again = app.post(&path, &[("csrf", &csrf), ("phone", PHONE)]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("Без согласия"));
    assert!(
        again.body.contains("value=\"+79161234567\""),
        "the phone is kept"
    );
    assert_eq!(app.sms_count(PHONE).await, 0);

    let again = app
        .post(
            &path,
            &[("csrf", &csrf), ("phone", "12345"), ("consent", "1")],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("Номер не распознан"));
    assert!(!app.feed.take_wake(), "nothing queued, nobody woken");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let mut app = App::new().await;
    let path = app.code_path();
    let page = app.get(&path).await;
    let csrf = page.field("csrf");
    for token in ["", "AAAA", &csrf[1..]] {
        let refused = app
            .post(
                &path,
                &[("csrf", token), ("phone", PHONE), ("consent", "1")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(refused.body.contains("Форма устарела"));
    }
    // The right field but no cookie (another site's form): refused too.
    app.jar.clear();
    let refused = app
        .post(
            &path,
            &[("csrf", &csrf), ("phone", PHONE), ("consent", "1")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.sms_count(PHONE).await, 0);
    let forget = app.post("/forget", &[("csrf", &csrf)]).await;
    assert_eq!(forget.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_wrong_code_says_the_attempts_left_and_five_end_the_code() {
    let mut app = App::new().await;
    let sent = app.request_code(PHONE).await;
    let code = app.last_code(PHONE).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..=4).rev() {
        let reply = app.enter(sent.location(), wrong).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            reply
                .body
                .contains(&format!("Осталось попыток: {left} из 5")),
            "{}",
            reply.body
        );
    }
    let last = app.enter(sent.location(), wrong).await;
    assert_eq!(last.status, StatusCode::FORBIDDEN);
    assert!(last.body.contains("Попытки исчерпаны"));
    assert!(last.body.contains("Отправить новый код"));
    let right = app.enter(sent.location(), &code).await;
    assert_eq!(right.status, StatusCode::FORBIDDEN);
    assert!(right.body.contains("Слишком много неверных попыток"));
    let malformed = app.enter(sent.location(), "12ab").await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(malformed.body.contains("Введите 6 цифр"));
    assert!(app
        .store
        .checkins()
        .checkins_of(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_expired_code_says_so_and_a_resend_sends_a_new_one() {
    let mut app = App::new().await;
    let sent = app.request_code(PHONE).await;
    let code = app.last_code(PHONE).await;
    app.clock.advance(chrono::Duration::seconds(5 * 60));
    let late = app.enter(sent.location(), &code).await;
    assert_eq!(late.status, StatusCode::GONE);
    assert!(late.body.contains("Срок действия кода истёк"));
    let (csrf, ticket) = (late.field("csrf"), late.field("t"));
    let resend_path = format!("{}/resend", app.code_path());
    let resent = app
        .post(&resend_path, &[("csrf", &csrf), ("t", &ticket)])
        .await;
    assert_eq!(resent.status, StatusCode::SEE_OTHER, "{}", resent.body);
    assert_eq!(app.sms_count(PHONE).await, 2);
    let fresh = app.last_code(PHONE).await;
    let done = app.enter(resent.location(), &fresh).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    // The same code again: used.
    let reused = app.enter(resent.location(), &fresh).await;
    assert_eq!(reused.status, StatusCode::GONE);
    assert!(reused.body.contains("уже использован"));
    // A forged ticket.
    let forged = app
        .get(&format!(
            "{}/otp?t=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            app.code_path()
        ))
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert!(forged.body.contains("Ссылка недействительна"));
}

#[tokio::test]
async fn one_sms_per_phone_per_minute_and_five_per_hour() {
    let mut app = App::new().await;
    assert_eq!(app.request_code(PHONE).await.status, StatusCode::SEE_OTHER);
    let refused = app.request_code(PHONE).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body.contains("Код на этот номер уже отправлен"));
    assert!(refused.body.contains("через 1 мин."), "{}", refused.body);
    assert_eq!(refused.headers[header::RETRY_AFTER], "60");
    assert_eq!(app.sms_count(PHONE).await, 1, "nothing sent when refused");
    for _ in 0..4 {
        app.clock.advance(chrono::Duration::seconds(61));
        assert_eq!(app.request_code(PHONE).await.status, StatusCode::SEE_OTHER);
    }
    app.clock.advance(chrono::Duration::seconds(61));
    let refused = app.request_code(PHONE).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.body.contains("слишком много кодов"),
        "{}",
        refused.body
    );
    assert_eq!(app.sms_count(PHONE).await, 5);
    // Another phone is not held up.
    assert_eq!(
        app.request_code("+79161234568").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn one_address_asking_for_many_phones_is_limited() {
    let mut app = App::with(WebConfig {
        sms_per_ip_hour: 2,
        ..WebConfig::default()
    })
    .await;
    assert_eq!(
        app.request_code("+79160000001").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.request_code("+79160000002").await.status,
        StatusCode::SEE_OTHER
    );
    let refused = app.request_code("+79160000003").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body.contains("С вашего подключения"));
    assert_eq!(app.sms_count("+79160000003").await, 0);
    app.from = "198.51.100.1:1000".parse().unwrap();
    assert_eq!(
        app.request_code("+79160000003").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn behind_our_proxy_the_forwarded_address_is_limited() {
    let mut app = App::with(WebConfig {
        sms_per_ip_hour: 1,
        trust_forwarded_for: true,
        ..WebConfig::default()
    })
    .await;
    let page = app.get(&app.code_path()).await;
    let csrf = page.field("csrf");
    let path = app.code_path();
    let mut ask = async |phone: &str, forwarded: &str| {
        let form = [("csrf", csrf.as_str()), ("phone", phone), ("consent", "1")];
        app.post_with(&path, &form, &[("x-forwarded-for", forwarded)])
            .await
            .status
    };
    assert_eq!(
        ask("+79160000001", "198.51.100.9, 192.0.2.1").await,
        StatusCode::SEE_OTHER
    );
    // The same client behind the proxy (what the client itself claims differs).
    assert_eq!(
        ask("+79160000002", "10.0.0.1, 192.0.2.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client.
    assert_eq!(
        ask("+79160000003", "192.0.2.2").await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_remembered_phone_checks_in_with_one_tap_until_forgotten() {
    let mut app = App::new().await;
    app.check_in().await;
    let other = format!("/v/{}", app.other.code);
    let page = app.get(&other).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("+7916***4567"), "{}", page.body);
    assert!(page.body.contains("/quick"));
    let csrf = page.field("csrf");
    let no_consent = app
        .post(&format!("{other}/quick"), &[("csrf", &csrf)])
        .await;
    assert_eq!(no_consent.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = app
        .post(
            &format!("{other}/quick"),
            &[("csrf", &csrf), ("consent", "1")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.location().starts_with("/ok/"));
    assert_eq!(app.sms_count(PHONE).await, 1, "no new SMS");
    let visits = app
        .store
        .checkins()
        .checkins_of(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap();
    assert_eq!(visits.len(), 2);
    assert_eq!(visits[1].premises_id, app.other.id);
    // A second tap inside the dedupe window: the first visit, said so.
    let again = app
        .post(
            &format!("{other}/quick"),
            &[("csrf", &csrf), ("consent", "1")],
        )
        .await;
    assert!(
        again.location().ends_with("?earlier=1"),
        "{}",
        again.location()
    );
    let page = app.get(again.location()).await;
    assert!(page.body.contains("Вход уже отмечен"));
    assert_eq!(
        app.store
            .checkins()
            .checkins_of(&Msisdn::parse(PHONE).unwrap())
            .await
            .unwrap()
            .len(),
        2
    );

    let forgotten = app
        .post("/forget", &[("csrf", &csrf), ("next", &other)])
        .await;
    assert_eq!(forgotten.status, StatusCode::SEE_OTHER);
    assert_eq!(forgotten.location(), other);
    let cleared = forgotten.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("phone=;") && cleared.contains("Max-Age=0"));
    let page = app.get(&other).await;
    assert!(page.body.contains("name=\"phone\""));
    assert!(!page.body.contains("/quick"));
    // Never an open redirect.
    let elsewhere = app
        .post("/forget", &[("csrf", &csrf), ("next", "//evil.example/")])
        .await;
    assert_eq!(elsewhere.location(), "/");
}

#[test]
fn settings_read_from_a_config_section_with_defaults() {
    let config: WebConfig = serde_json::from_str(
        r#"{"public_base_url": "https://checkin.example.ru", "cookie_secure": true}"#,
    )
    .unwrap();
    assert_eq!(config.public_base_url, "https://checkin.example.ru");
    assert!(config.cookie_secure);
    assert_eq!(config.sms_per_phone_hour, 5);
    assert!(serde_json::from_str::<WebConfig>(r#"{"typo": 1}"#).is_err());
}

#[tokio::test]
async fn a_remembered_phone_expires_after_its_days() {
    let mut app = App::new().await;
    app.check_in().await;
    app.clock.advance(chrono::Duration::days(31));
    let page = app.get(&app.code_path()).await;
    assert!(page.body.contains("name=\"phone\""));
    assert!(!page.body.contains("/quick"));
}

#[tokio::test]
async fn the_guard_sees_every_reason_a_token_is_not_valid() {
    let mut app = App::new().await;
    let confirmation_path = app.check_in().await;
    let confirmation = app.get(&confirmation_path).await;
    let guard = guard_path(&confirmation);
    let token = guard.trim_start_matches("/c/").to_owned();

    // One altered character.
    let mut altered = token.clone().into_bytes();
    altered[10] = if altered[10] == b'x' { b'y' } else { b'x' };
    let altered = String::from_utf8(altered).unwrap();
    let page = app.get(&format!("/c/{altered}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("data-verdict=\"invalid\""));
    assert!(page.body.contains("НЕДЕЙСТВИТЕЛЕН"));
    assert!(page.body.contains("изменён или поддельный"));
    assert_eq!(
        app.get(&format!("{confirmation_path}x")).await.status,
        StatusCode::NOT_FOUND
    );

    // The guard's own premises is another one.
    let page = app
        .get(&format!("{guard}?premises={}", app.other.code))
        .await;
    assert!(page.body.contains("data-verdict=\"invalid\""));
    assert!(page.body.contains("Другое помещение"));
    let page = app
        .get(&format!("{guard}?premises={}", app.premises.code.digits()))
        .await;
    assert!(page.body.contains("data-verdict=\"valid\""));

    // A token (signed with our key) naming other premises than its check-in's.
    let visit = app
        .store
        .checkins()
        .checkins_of(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap()[0]
        .clone();
    let key = GuardKey::new(&app.keys);
    let mismatched = key.sign(&GuardClaim {
        checkin_id: visit.id,
        premises_id: app.other.id,
        at: visit.at,
    });
    let page = app.get(&format!("/c/{mismatched}")).await;
    assert!(page.body.contains("data-verdict=\"invalid\""));
    assert!(page.body.contains("не совпадает с помещением"));

    // A check-in that does not exist.
    let unknown = key.sign(&GuardClaim {
        checkin_id: visit.id + 1000,
        premises_id: app.premises.id,
        at: visit.at,
    });
    let page = app.get(&format!("/c/{unknown}")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Такой отметки нет"));

    // Older than the freshness (12 h).
    app.clock.advance(chrono::Duration::hours(11));
    let page = app.get(&guard).await;
    assert!(page.body.contains("data-verdict=\"valid\""));
    assert!(page.body.contains("11 ч 0 мин назад"));
    app.clock.advance(chrono::Duration::hours(2));
    let page = app.get(&guard).await;
    assert!(page.body.contains("data-verdict=\"invalid\""));
    assert!(page.body.contains("Устарел"));
    assert!(page.body.contains("13 ч 0 мин назад"));
}

#[tokio::test]
async fn large_bodies_and_unreadable_forms_get_clear_pages() {
    let mut app = App::new().await;
    let path = app.code_path();
    let big = "9".repeat(10_000);
    let reply = app
        .post(&path, &[("csrf", "x"), ("phone", &big), ("consent", "1")])
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.body.contains("Слишком длинный запрос"));
    let request = Request::post(&path)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("phone=1"))
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("Форма не прочитана"));
    // Axum's own refusals get pages too: a query it cannot read, a method.
    let path = format!("{}/otp?t=a&t=b", app.code_path());
    let reply = app.get(&path).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("Форма не прочитана"), "{}", reply.body);
    let request = Request::delete(app.code_path())
        .body(Body::empty())
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.body.contains("Так нельзя"));
    assert!(reply.headers.contains_key(header::CONTENT_SECURITY_POLICY));
}

#[tokio::test]
async fn a_closed_premises_refuses_the_code_entered_after_it_closed() {
    let mut app = App::new().await;
    let sent = app.request_code(PHONE).await;
    let code = app.last_code(PHONE).await;
    let page = app.get(sent.location()).await;
    let (csrf, ticket) = (page.field("csrf"), page.field("t"));
    app.store
        .orgs()
        .set_premises_active(app.premises.id, false)
        .await
        .unwrap();
    let path = format!("{}/otp", app.code_path());
    let reply = app
        .post(&path, &[("csrf", &csrf), ("t", &ticket), ("code", &code)])
        .await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert!(reply.body.contains("не принимается"));
}

/// The code entry remembers its premises for a moment (`places.rs`); a
/// premises closed meanwhile is still refused by the confirmation itself.
#[tokio::test]
async fn a_remembered_premises_closed_meanwhile_still_refuses_the_code() {
    let mut app = App::new().await;
    let sent = app.request_code(PHONE).await;
    let code = app.last_code(PHONE).await;
    let page = app.get(sent.location()).await;
    let (csrf, ticket) = (page.field("csrf"), page.field("t"));
    let path = format!("{}/otp", app.code_path());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = app
        .post(&path, &[("csrf", &csrf), ("t", &ticket), ("code", wrong)])
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "remembered now"
    );
    app.store
        .orgs()
        .set_premises_active(app.premises.id, false)
        .await
        .unwrap();
    let reply = app
        .post(&path, &[("csrf", &csrf), ("t", &ticket), ("code", &code)])
        .await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert!(reply.body.contains("не принимается"));
    let count = app
        .store
        .checkins()
        .count_checkins(app.premises.id)
        .await
        .unwrap();
    assert_eq!(count, 0, "no check-in at a closed premises");
}

#[tokio::test]
async fn serve_answers_on_a_real_socket_and_stops_on_shutdown() {
    let app = App::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(web::serve(listener, app.state.clone(), shutdown.clone()));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "GET /v/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        app.premises.code
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("Тверская ул., 1"));
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// A fresh database on the PostgreSQL server the test script starts
/// (`CHECKIN_TEST_POSTGRES_URL`); `None` without one, unless
/// `CHECKIN_TEST_REQUIRE_POSTGRES=1`.
async fn postgres_url() -> Option<String> {
    use sqlx::Connection;
    let required = std::env::var("CHECKIN_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1");
    let admin_url = match std::env::var("CHECKIN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(!required, "CHECKIN_TEST_POSTGRES_URL is not set");
            eprintln!("note: CHECKIN_TEST_POSTGRES_URL is not set; PostgreSQL skipped");
            return None;
        }
    };
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let name = format!("checkin_web_test_{}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    // The admin URL's database replaced by the fresh one.
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url.as_str(), None), |(b, q)| (b, Some(q)));
    let path_at = base.find("://").map_or(0, |i| i + 3);
    let base = match base[path_at..].find('/') {
        Some(slash) => &base[..path_at + slash],
        None => base,
    };
    Some(match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    })
}

#[tokio::test]
async fn the_whole_way_on_postgresql() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let mut app = App::on(WebConfig::default(), tempfile::tempdir().unwrap(), &url).await;
    let sent = app.request_code(PHONE).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let code = app.last_code(PHONE).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = app.enter(sent.location(), wrong).await;
    assert!(reply.body.contains("Осталось попыток: 4 из 5"));
    let done = app.enter(sent.location(), &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let confirmation = app.get(done.location()).await;
    assert!(confirmation.body.contains("18 окт. в 20:13"));
    let guard = app.get(&guard_path(&confirmation)).await;
    assert!(guard.body.contains("data-verdict=\"valid\""));
    let other = format!("/v/{}", app.other.code);
    let page = app.get(&other).await;
    let csrf = page.field("csrf");
    let quick = app
        .post(
            &format!("{other}/quick"),
            &[("csrf", &csrf), ("consent", "1")],
        )
        .await;
    assert_eq!(quick.status, StatusCode::SEE_OTHER, "{}", quick.body);
    let visits = app
        .store
        .checkins()
        .checkins_of(&Msisdn::parse(PHONE).unwrap())
        .await
        .unwrap();
    assert_eq!(visits.len(), 2);
    app.store.close().await;
}
