//! The organization cabinet and the organizations' JSON API driven in-process
//! (`oneshot`) over a real SQLite store with a `ManualClock`: sign-up, log-in
//! and its limit, premises (add, edit, deactivate, refused addresses),
//! posters and QR files (the PNG decoded back to the check-in URL),
//! statistics, API tokens, every API route's success and failure, and, for
//! every route, that one organization can neither see nor change another's
//! premises.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use checkin_core::{
    Channel, Keys, ManualClock, Msisdn, NewCheckIn, PhoneVault, Premises, ServiceZone, Store,
    StoreConfig,
};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use web::{AppState, WebConfig};

const BASE: &str = "https://checkin.example.ru";
const PASSWORD: &str = "correct horse battery";

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of the first hidden field `name`.
    fn field(&self, name: &str) -> String {
        let body = self.text();
        let marker = format!("name=\"{name}\" value=\"");
        let start = body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {body}"))
            + marker.len();
        let end = start + body[start..].find('"').unwrap();
        body[start..end].to_owned()
    }

    /// An API error: the status and the JSON's `code`.
    fn api_error(&self) -> (StatusCode, String) {
        let body = self.json();
        assert!(body["message"].is_string(), "{body}");
        (self.status, body["error"].as_str().unwrap().to_owned())
    }
}

/// The service: a store, a clock and the web's state.
struct Service {
    _dir: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
    state: AppState,
}

fn t0() -> DateTime<Utc> {
    // 12:00 in Moscow.
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

impl Service {
    async fn new() -> Service {
        let dir = tempfile::tempdir().unwrap();
        let url = checkin_core::store::sqlite_url_in(dir.path());
        let keys = Keys::generate();
        let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
            .await
            .unwrap();
        let clock = ManualClock::new(t0());
        let state = AppState::new(
            store.clone(),
            &keys,
            ServiceZone::default(),
            Arc::new(clock.clone()),
            WebConfig {
                public_base_url: BASE.into(),
                ..WebConfig::default()
            },
        );
        Service {
            _dir: dir,
            store,
            clock,
            state,
        }
    }

    fn browser(&self, from: &str) -> Browser {
        Browser {
            state: self.state.clone(),
            jar: HashMap::new(),
            from: from.parse().unwrap(),
            bearer: None,
        }
    }

    /// A signed-up, logged-in organization with one premises, and its API token.
    async fn org(&self, email: &str, address: &str) -> (Browser, Premises) {
        let mut b = self.browser("203.0.113.7:50000");
        let r = b.sign_up("Организация", email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = b.add_premises(address, "магазин", "").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let id: i64 = r.location().rsplit('/').next().unwrap().parse().unwrap();
        let premises = self.store.orgs().premises_by_id(id).await.unwrap().unwrap();
        let token = b.new_token("тест").await;
        b.bearer = Some(token);
        (b, premises)
    }

    async fn check_in(
        &self,
        premises: &Premises,
        phone: &str,
        channel: Channel,
        at: DateTime<Utc>,
    ) {
        self.store
            .checkins()
            .record_checkin(&NewCheckIn {
                phone: Msisdn::parse(phone).unwrap(),
                code: premises.code,
                channel,
                at,
                consent: true,
            })
            .await
            .unwrap();
    }
}

/// A browser (cookie jar) that may also hold an API token.
struct Browser {
    state: AppState,
    jar: HashMap<String, String>,
    from: SocketAddr,
    bearer: Option<String>,
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

impl Browser {
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
            body: body.to_vec(),
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
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let request = Request::post(path)
            .header(header::COOKIE, self.cookies())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .unwrap();
        self.send(request).await
    }

    /// The CSRF field of page `path` (sets the cookie on first use).
    async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text());
        page.field("csrf")
    }

    async fn sign_up(&mut self, name: &str, email: &str, password: &str) -> Reply {
        let csrf = self.csrf("/org/signup").await;
        self.post(
            "/org/signup",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    async fn log_in(&mut self, email: &str, password: &str) -> Reply {
        let csrf = self.csrf("/org/login").await;
        self.post(
            "/org/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    async fn add_premises(&mut self, address: &str, kind: &str, stay: &str) -> Reply {
        let csrf = self.csrf("/org").await;
        self.post(
            "/org/premises",
            &[
                ("csrf", &csrf),
                ("address", address),
                ("kind", kind),
                ("stay_minutes", stay),
            ],
        )
        .await
    }

    /// Creates an API token in the cabinet; returns the secret shown once.
    async fn new_token(&mut self, label: &str) -> String {
        let csrf = self.csrf("/org/tokens").await;
        let page = self
            .post("/org/tokens", &[("csrf", &csrf), ("label", label)])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let body = page.text();
        let start = body.find("id=\"new-token\">").expect("the new token") + 15;
        body[start..start + 64].to_owned()
    }

    async fn api(&mut self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = &self.bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_owned())
            }
            None => Body::empty(),
        };
        let response = self
            .router()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: body.to_vec(),
        }
    }
}

#[tokio::test]
async fn sign_up_log_in_and_log_out() {
    let service = Service::new().await;
    let mut b = service.browser("203.0.113.7:50000");

    let r = b.get("/org").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/org/login");

    let short = b.sign_up("Кафе", "owner@example.ru", "123456789").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short.text().contains("не короче 10 символов"),
        "{}",
        short.text()
    );
    assert!(
        short.text().contains("owner@example.ru"),
        "the form keeps its values"
    );

    let bad_email = b.sign_up("Кафе", "owner", PASSWORD).await;
    assert_eq!(bad_email.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_email.text().contains("Почта указана неверно"));

    // No CSRF field: refused.
    let r = b
        .post(
            "/org/signup",
            &[
                ("name", "Кафе"),
                ("email", "owner@example.ru"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = b
        .sign_up("Кафе «Ромашка»", "Owner@Example.ru", PASSWORD)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.location(), "/org");
    let set = r.header(header::SET_COOKIE);
    assert!(set.starts_with("org_session="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(set.contains("Max-Age=43200"), "12 h by default: {set}");
    assert!(!set.contains("Secure"), "not configured");
    let session = b.jar["org_session"].clone();
    assert_eq!(session.len(), 64);
    // Stored only hashed.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM org_sessions WHERE token_hash = $1")
        .bind(&session)
        .fetch_one(service.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // Sign-up leaves no API token valid.
    let live: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM org_tokens WHERE revoked_at_ms IS NULL")
            .fetch_one(service.store.pool_for_tests())
            .await
            .unwrap();
    assert_eq!(live, 0);

    let home = b.get("/org").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text().contains("Кафе «Ромашка»"));

    let again = service
        .browser("203.0.113.8:50000")
        .sign_up("Другая", "owner@example.ru", PASSWORD)
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.text().contains("уже зарегистрирована"));

    // Log out: the cookie goes, the session is gone on the server too.
    let csrf = b.csrf("/org").await;
    let r = b.post("/org/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!b.jar.contains_key("org_session"));
    let mut replay = service.browser("203.0.113.7:50000");
    replay.jar.insert("org_session".into(), session);
    assert_eq!(replay.get("/org").await.status, StatusCode::SEE_OTHER);

    let wrong = b.log_in("owner@example.ru", "wrong password").await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().contains("Неверная почта или пароль"));
    let unknown = b.log_in("nobody@example.ru", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = b.log_in("OWNER@example.ru", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/org").await.status, StatusCode::OK);

    // The session ends after its life.
    service.clock.advance(chrono::Duration::hours(12));
    assert_eq!(b.get("/org").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_administrator_made_organization_logs_in_too() {
    let service = Service::new().await;
    let created = service
        .store
        .orgs()
        .create_org(
            &checkin_core::store::NewOrganization {
                name: "Бар".into(),
                email: "bar@example.ru".into(),
                password: Some(PASSWORD.into()),
            },
            t0(),
        )
        .await
        .unwrap();
    let mut b = service.browser("203.0.113.7:50000");
    assert_eq!(
        b.log_in("bar@example.ru", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // Its printed token is a live API token, listed by prefix only.
    let tokens = b.get("/org/tokens").await.text();
    assert!(tokens.contains(&created.api_token[..8]));
    assert!(!tokens.contains(&created.api_token));
    b.bearer = Some(created.api_token);
    assert_eq!(
        b.api("GET", "/api/v1/premises", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn log_in_attempts_are_limited_per_address() {
    let service = Service::new().await;
    let mut b = service.browser("198.51.100.1:4000");
    for _ in 0..10 {
        let r = b.log_in("x@example.ru", "wrong password").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = b.log_in("x@example.ru", "wrong password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().contains("Слишком много попыток входа"));
    assert!(!r.header(header::RETRY_AFTER).is_empty());
    // Another address is not held back; a minute later this one neither.
    let mut other = service.browser("198.51.100.2:4000");
    assert_eq!(
        other.log_in("x@example.ru", "wrong password").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    service.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(
        b.log_in("x@example.ru", "wrong password").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn premises_are_added_edited_and_deactivated() {
    let service = Service::new().await;
    let (mut b, shop) = service.org("a@example.ru", "Тверская ул., 1").await;
    assert_eq!(shop.kind, "магазин");
    assert_eq!(shop.stay_minutes, 30, "the kind's default stay");

    let r = b.add_premises("Арбат, 5", "бар", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = b.add_premises("Арбат, 7", "бар", "45").await;
    let id: i64 = r.location().rsplit('/').next().unwrap().parse().unwrap();
    let own = service
        .store
        .orgs()
        .premises_by_id(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own.stay_minutes, 45);

    let list = b.get("/org").await.text();
    for p in service
        .store
        .orgs()
        .list_premises(shop.org_id, 0, 10)
        .await
        .unwrap()
    {
        assert!(
            list.contains(&p.code.to_string()),
            "the list shows every code"
        );
    }
    assert!(list.contains("(по умолчанию 120 мин)"));

    // Refused addresses: the form again, with the reason and the values.
    let long = "д".repeat(301);
    for (address, stay, reason) in [
        ("   ", "", "Укажите адрес"),
        (long.as_str(), "", "Адрес длиннее 300 символов"),
        ("Тверская\nул.", "", "недопустимые символы"),
        ("Тверская\u{7}", "", "недопустимые символы"),
        ("Тверская, 3", "0", "от 1 до 960 минут"),
        ("Тверская, 3", "сорок", "число минут"),
    ] {
        let r = b.add_premises(address, "кафе", stay).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{address:?}");
        assert!(r.text().contains(reason), "{address:?}: {}", r.text());
        assert!(r.text().contains("name=\"address\""));
    }
    assert_eq!(
        service
            .store
            .orgs()
            .list_premises(shop.org_id, 0, 10)
            .await
            .unwrap()
            .len(),
        3,
        "nothing refused was stored"
    );

    let path = format!("/org/premises/{}", shop.id);
    let csrf = b.csrf(&path).await;
    let r = b
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("address", "Тверская ул., 1, стр. 2"),
                ("kind", "офис"),
                ("stay_minutes", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let edited = service
        .store
        .orgs()
        .premises_by_id(shop.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.address, "Тверская ул., 1, стр. 2");
    assert_eq!((edited.kind.as_str(), edited.stay_minutes), ("офис", 480));
    assert_eq!(edited.code, shop.code, "the code stays");
    let r = b
        .post(&path, &[("csrf", &csrf), ("address", ""), ("kind", "офис")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("Укажите адрес"));
    let r = b.post(&path, &[("address", "x"), ("kind", "офис")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF");

    let r = b
        .post(&format!("{path}/deactivate"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let closed = service
        .store
        .orgs()
        .premises_by_id(shop.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!closed.active);
    assert_eq!(
        b.get(&format!("/v/{}", shop.code)).await.status,
        StatusCode::GONE
    );
    assert!(b.get(&path).await.text().contains("Помещение отключено"));

    // A kind set by the CLI's free text is kept by the edit form.
    let other = service
        .store
        .orgs()
        .add_premises(
            &checkin_core::store::NewPremises {
                org_id: shop.org_id,
                address: "Склад".into(),
                kind: Some("склад".into()),
                stay_minutes: None,
            },
            t0(),
        )
        .await
        .unwrap();
    let form = b.get(&format!("/org/premises/{}", other.id)).await.text();
    assert!(form.contains("<option value=\"склад\" selected>"), "{form}");

    for bad in [
        "/org/premises/abc",
        "/org/premises/999999",
        "/org/premises/999999/poster",
    ] {
        assert_eq!(b.get(bad).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

fn qr_text(png: &[u8]) -> String {
    let image = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn posters_and_qr_files() {
    let service = Service::new().await;
    let (mut b, shop) = service.org("a@example.ru", "Тверская ул., 1").await;
    let url = format!("{BASE}/v/{}", shop.code);

    let poster = b.get(&format!("/org/premises/{}/poster", shop.id)).await;
    assert_eq!(poster.status, StatusCode::OK);
    let html = poster.text();
    assert!(html.contains("<svg"), "the QR inline");
    assert!(html.contains(&shop.code.to_string()));
    assert!(html.contains(&format!(
        "Отправьте СМС на номер 7377 с текстом ВХОД*{}",
        shop.code
    )));
    assert!(html.contains(&format!("*7377*{}#", shop.code.digits())));
    assert!(html.contains("Тверская ул., 1"));
    assert!(html.contains(&url));
    assert!(html.contains("/static/org.css"));
    assert!(
        !html.contains("style=") && !html.contains("<style"),
        "no inline style under the CSP"
    );
    let css = b.get("/static/org.css").await;
    assert_eq!(css.header(header::CONTENT_TYPE), "text/css");
    assert!(css.text().contains("@page") && css.text().contains("A4"));

    let svg = b.get(&format!("/org/premises/{}/qr.svg", shop.id)).await;
    assert_eq!(svg.header(header::CONTENT_TYPE), "image/svg+xml");
    assert!(svg
        .header(header::CONTENT_DISPOSITION)
        .contains("attachment"));
    assert!(svg.text().starts_with("<?xml") || svg.text().contains("<svg"));
    let png = b.get(&format!("/org/premises/{}/qr.png", shop.id)).await;
    assert_eq!(png.header(header::CONTENT_TYPE), "image/png");
    assert_eq!(qr_text(&png.body), url, "the PNG's QR is the check-in URL");

    // One document for many premises: all active ones, or the selected ones.
    let mut ids = vec![shop.id];
    for n in 2..=4 {
        let r = b.add_premises(&format!("Арбат, {n}"), "кафе", "").await;
        ids.push(r.location().rsplit('/').next().unwrap().parse().unwrap());
    }
    let all = b.get("/org/posters").await.text();
    assert_eq!(all.matches("<article class=\"poster\"").count(), 4);
    let some = b
        .get(&format!("/org/posters?ids={},{}", ids[1], ids[3]))
        .await
        .text();
    assert_eq!(some.matches("<article class=\"poster\"").count(), 2);
    assert!(some.contains("Арбат, 2") && some.contains("Арбат, 4") && !some.contains("Арбат, 3"));
    assert_eq!(
        b.get("/org/posters?ids=x").await.status,
        StatusCode::BAD_REQUEST
    );
    // As the cabinet's check boxes send them.
    let ticked = b
        .get(&format!("/org/posters?ids={}&ids={}", ids[0], ids[2]))
        .await;
    assert_eq!(ticked.status, StatusCode::OK, "{}", ticked.text());
    assert_eq!(
        ticked.text().matches("<article class=\"poster\"").count(),
        2
    );
    assert!(ticked.text().contains("Арбат, 3") && !ticked.text().contains("Арбат, 2"));

    // The poster files take the API token too (the API hands out their URLs).
    let mut api = service.browser("203.0.113.9:1");
    api.bearer = b.bearer.clone();
    let r = api
        .api("GET", &format!("/org/premises/{}/qr.png", shop.id), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    api.bearer = Some("0".repeat(64));
    let r = api
        .api("GET", &format!("/org/premises/{}/poster", shop.id), None)
        .await;
    assert_eq!(
        r.api_error(),
        (StatusCode::UNAUTHORIZED, "bad_token".into())
    );
    // Without a session or a token: the log-in page.
    let r = service
        .browser("203.0.113.9:1")
        .get(&format!("/org/premises/{}/poster", shop.id))
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/org/login")
    );
}

#[tokio::test]
async fn statistics_count_check_ins_per_day_and_hour_by_channel() {
    let service = Service::new().await;
    let (mut b, shop) = service.org("a@example.ru", "Тверская ул., 1").await;
    let hour = chrono::Duration::hours(1);
    // t0 is 12:00 in Moscow on 30.11; 23:30 UTC on 28.11 is 02:30 on 29.11 there.
    let night = Utc.with_ymd_and_hms(2026, 11, 28, 23, 30, 0).unwrap();
    service
        .check_in(&shop, "+79160000001", Channel::Sms, t0() - hour)
        .await;
    service
        .check_in(&shop, "+79160000002", Channel::Sms, t0() - hour)
        .await;
    service
        .check_in(&shop, "+79160000003", Channel::Web, t0() - hour)
        .await;
    service
        .check_in(&shop, "+79160000004", Channel::Web, night)
        .await;
    // Older than 30 days: not counted.
    service
        .check_in(
            &shop,
            "+79160000005",
            Channel::Sms,
            t0() - chrono::Duration::days(31),
        )
        .await;

    let r = b
        .api("GET", &format!("/api/v1/premises/{}/stats", shop.id), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let stats = r.json();
    assert_eq!(stats["zone"], "Europe/Moscow");
    let days = stats["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let day = |date: &str| days.iter().find(|d| d["date"] == date).unwrap().clone();
    assert_eq!(day("2026-11-30")["total"], 3);
    assert_eq!(day("2026-11-30")["by_channel"], json!({"sms": 2, "web": 1}));
    assert_eq!(day("2026-11-29")["by_channel"], json!({"web": 1}));
    assert_eq!(day("2026-11-28")["total"], 0);
    let hours = stats["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[11]["total"], 3, "11:00 Moscow");
    assert_eq!(hours[2]["total"], 1, "02:30 Moscow");
    let total: u64 = hours.iter().map(|h| h["total"].as_u64().unwrap()).sum();
    assert_eq!(total, 4);
    assert!(!r.text().contains("7916"), "counts only");

    let page = b.get(&format!("/org/premises/{}/stats", shop.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "a chart per day and per hour"
    );
    assert!(html.contains("30.11.2026"));
    assert!(html.contains("<title>30.11: 3</title>"), "{html}");
}

#[tokio::test]
async fn api_tokens_are_shown_once_listed_by_prefix_and_revocable() {
    let service = Service::new().await;
    let (mut b, _) = service.org("a@example.ru", "Тверская ул., 1").await;
    let token = b.bearer.clone().unwrap();
    assert_eq!(
        b.api("GET", "/api/v1/premises", None).await.status,
        StatusCode::OK
    );
    let list = b.get("/org/tokens").await.text();
    assert!(list.contains(&format!("{}…", &token[..8])));
    assert!(!list.contains(&token), "never shown again");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM org_tokens WHERE token_hash = $1")
        .bind(&token)
        .fetch_one(service.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(stored, 0, "stored only hashed");

    let id: i64 = sqlx::query_scalar("SELECT MAX(id) FROM org_tokens")
        .fetch_one(service.store.pool_for_tests())
        .await
        .unwrap();
    let csrf = b.csrf("/org/tokens").await;
    let path = format!("/org/tokens/{id}/revoke");
    assert_eq!(
        b.post(&path, &[]).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF"
    );
    let r = b.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(b.get("/org/tokens").await.text().contains("отозван"));
    let r = b.api("GET", "/api/v1/premises", None).await;
    assert_eq!(
        r.api_error(),
        (StatusCode::UNAUTHORIZED, "bad_token".into())
    );
    assert_eq!(
        b.post(&path, &[("csrf", &csrf)]).await.status,
        StatusCode::NOT_FOUND,
        "twice"
    );

    let long = "т".repeat(101);
    let r = b
        .post("/org/tokens", &[("csrf", &csrf), ("label", &long)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("слишком длинное"));
}

#[tokio::test]
async fn the_api_creates_lists_gets_counts_and_deactivates() {
    let service = Service::new().await;
    let (mut b, first) = service.org("a@example.ru", "Тверская ул., 1").await;

    let r = b
        .api(
            "POST",
            "/api/v1/premises",
            Some(r#"{"address":"Арбат, 5","kind":"бар"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    let id = created["id"].as_i64().unwrap();
    let code = created["code"].as_str().unwrap();
    assert_eq!(code.len(), 11);
    assert_eq!(created["stay_minutes"], 120);
    assert_eq!(
        created["poster_url"],
        format!("{BASE}/org/premises/{id}/poster")
    );
    assert_eq!(
        created["qr_url"],
        format!("{BASE}/org/premises/{id}/qr.svg")
    );
    let r = b
        .api(
            "POST",
            "/api/v1/premises",
            Some(r#"{"address":"Арбат, 6","kind":"кафе","stay_minutes":15}"#),
        )
        .await;
    assert_eq!(r.json()["stay_minutes"], 15);

    let r = b.api("GET", &format!("/api/v1/premises/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["address"], "Арбат, 5");

    // Pages by cursor.
    let r = b.api("GET", "/api/v1/premises?limit=2", None).await;
    let page = r.json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], first.id);
    let cursor = page["next_cursor"].as_i64().unwrap();
    let r = b
        .api(
            "GET",
            &format!("/api/v1/premises?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    let page = r.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(
        b.api("GET", "/api/v1/premises", None).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let r = b
        .api("POST", &format!("/api/v1/premises/{id}/deactivate"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["active"], false);
    let r = b
        .api("GET", &format!("/api/v1/premises/{id}/stats"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["premises_id"], id);
}

#[tokio::test]
async fn the_api_answers_every_failure_with_a_json_error() {
    let service = Service::new().await;
    let (mut b, first) = service.org("a@example.ru", "Тверская ул., 1").await;
    let token = b.bearer.clone();
    let one = format!("/api/v1/premises/{}", first.id);
    let routes = [
        ("GET", "/api/v1/premises".to_owned(), None),
        (
            "POST",
            "/api/v1/premises".to_owned(),
            Some(r#"{"address":"Арбат, 1"}"#),
        ),
        ("GET", one.clone(), None),
        ("GET", format!("{one}/stats"), None),
        ("POST", format!("{one}/deactivate"), None),
    ];
    for (method, path, body) in &routes {
        b.bearer = None;
        let r = b.api(method, path, *body).await;
        assert_eq!(
            r.api_error(),
            (StatusCode::UNAUTHORIZED, "no_token".into()),
            "{path}"
        );
        assert_eq!(r.header(header::WWW_AUTHENTICATE), "Bearer");
        b.bearer = Some("f".repeat(64));
        let r = b.api(method, path, *body).await;
        assert_eq!(
            r.api_error(),
            (StatusCode::UNAUTHORIZED, "bad_token".into()),
            "{path}"
        );
        b.bearer = Some("x".repeat(500));
        let r = b.api(method, path, *body).await;
        assert_eq!(
            r.api_error(),
            (StatusCode::UNAUTHORIZED, "no_token".into()),
            "{path}"
        );
    }
    b.bearer = token;

    for (body, status, code) in [
        (
            r#"{"address":""}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            r#"{"address":"Арбат\n1"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            r#"{"address":"Арбат","stay_minutes":0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            r#"{"address":"Арбат","stay_minutes":-5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            r#"{"address":"Арбат","colour":"red"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            r#"{"kind":"бар"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            r#"{"address": "Арбат""#,
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        ("not json", StatusCode::BAD_REQUEST, "malformed"),
    ] {
        let r = b.api("POST", "/api/v1/premises", Some(body)).await;
        assert_eq!(r.api_error(), (status, code.to_owned()), "{body}");
    }
    let long = json!({ "address": "д".repeat(301) }).to_string();
    let r = b.api("POST", "/api/v1/premises", Some(&long)).await;
    assert_eq!(
        r.api_error(),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid".into())
    );
    let huge = json!({ "address": "д".repeat(5000) }).to_string();
    let r = b.api("POST", "/api/v1/premises", Some(&huge)).await;
    assert_eq!(
        r.api_error(),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large".into())
    );
    assert_eq!(
        service
            .store
            .orgs()
            .list_premises(first.org_id, 0, 10)
            .await
            .unwrap()
            .len(),
        1,
        "nothing refused was stored"
    );

    for path in ["/api/v1/premises?limit=0", "/api/v1/premises?limit=501"] {
        let r = b.api("GET", path, None).await;
        assert_eq!(
            r.api_error(),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid".into()),
            "{path}"
        );
    }
    let r = b.api("GET", "/api/v1/premises?cursor=abc", None).await;
    assert_eq!(r.api_error(), (StatusCode::BAD_REQUEST, "malformed".into()));
    for path in [
        "/api/v1/premises/999999",
        "/api/v1/premises/abc",
        "/api/v1/premises/999999/stats",
    ] {
        let r = b.api("GET", path, None).await;
        assert_eq!(
            r.api_error(),
            (StatusCode::NOT_FOUND, "not_found".into()),
            "{path}"
        );
    }

    // Storage down: 503, for every route.
    service.store.close().await;
    for (method, path, body) in &routes {
        let r = b.api(method, path, *body).await;
        assert_eq!(
            r.api_error(),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_organization_can_neither_see_nor_change_another_s_premises() {
    let service = Service::new().await;
    let (mut a, a_premises) = service.org("a@example.ru", "Тверская ул., 1").await;
    let (mut b, b_premises) = service.org("b@example.ru", "Арбат, 5").await;
    let theirs = b_premises.id;
    let csrf = a.csrf("/org").await;
    let form = [
        ("csrf", csrf.as_str()),
        ("address", "Захвачено"),
        ("kind", "бар"),
        ("stay_minutes", ""),
    ];

    // Every HTML route that names premises.
    for path in [
        format!("/org/premises/{theirs}"),
        format!("/org/premises/{theirs}/stats"),
        format!("/org/premises/{theirs}/poster"),
        format!("/org/premises/{theirs}/qr.svg"),
        format!("/org/premises/{theirs}/qr.png"),
    ] {
        let r = a.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(!r.text().contains(&b_premises.code.to_string()), "{path}");
    }
    for path in [
        format!("/org/premises/{theirs}"),
        format!("/org/premises/{theirs}/deactivate"),
    ] {
        assert_eq!(
            a.post(&path, &form).await.status,
            StatusCode::NOT_FOUND,
            "POST {path}"
        );
    }
    let list = a.get("/org").await.text();
    assert!(list.contains(&a_premises.code.to_string()));
    assert!(!list.contains(&b_premises.code.to_string()));
    let posters = a.get(&format!("/org/posters?ids={theirs}")).await.text();
    assert!(!posters.contains(&b_premises.code.to_string()));
    let all = a.get("/org/posters").await.text();
    assert!(!all.contains(&b_premises.code.to_string()));
    // Nor B's tokens.
    let b_token: i64 = sqlx::query_scalar("SELECT MAX(id) FROM org_tokens")
        .fetch_one(service.store.pool_for_tests())
        .await
        .unwrap();
    let r = a
        .post(&format!("/org/tokens/{b_token}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!a
        .get("/org/tokens")
        .await
        .text()
        .contains(&b.bearer.clone().unwrap()[..8]));

    // Every API route, with A's token.
    for (method, path) in [
        ("GET", format!("/api/v1/premises/{theirs}")),
        ("GET", format!("/api/v1/premises/{theirs}/stats")),
        ("POST", format!("/api/v1/premises/{theirs}/deactivate")),
    ] {
        let r = a.api(method, &path, None).await;
        assert_eq!(
            r.api_error(),
            (StatusCode::NOT_FOUND, "not_found".into()),
            "{path}"
        );
    }
    for (method, path) in [
        ("GET", format!("/org/premises/{theirs}/poster")),
        ("GET", format!("/org/premises/{theirs}/qr.svg")),
        ("GET", format!("/org/premises/{theirs}/qr.png")),
        ("GET", format!("/org/posters?ids={theirs}")),
    ] {
        let r = a.api(method, &path, None).await;
        assert!(!r.text().contains(&b_premises.code.to_string()), "{path}");
        if !path.starts_with("/org/posters") {
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    let listed = a.api("GET", "/api/v1/premises", None).await.json();
    let ids: Vec<i64> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a_premises.id]);
    // A premises created by A lands in A's organization whatever the body says.
    let r = a
        .api(
            "POST",
            "/api/v1/premises",
            Some(r#"{"address":"Новая, 1","org_id":2}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // B's premises is as it was, and B still sees and changes it.
    let after = service
        .store
        .orgs()
        .premises_by_id(theirs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, b_premises);
    assert_eq!(
        b.api("GET", &format!("/api/v1/premises/{theirs}"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        b.get(&format!("/org/premises/{theirs}")).await.status,
        StatusCode::OK
    );
}

/// Issue 23: the premises' SMS name in the cabinet (previewed with its
/// segment count without script, refused over the limit naming it, stored)
/// and in the API (`sms_label` on create and `PATCH`, 422 naming the limit).
#[tokio::test]
async fn the_sms_name_is_previewed_set_and_refused_over_the_limit() {
    let service = Service::new().await;
    let address = "Кутузовский пр., д. 57, ТРЦ «Океания», 3 этаж";
    let (mut b, p) = service.org("a@example.ru", address).await;
    let path = format!("/org/premises/{}", p.id);
    let too_long = "Ж".repeat(checkin_core::texts::SMS_LABEL_UNITS_MAX + 1);

    // The saved premises: no name, the address shortened, one segment.
    let page = b.get(&path).await.text();
    assert!(
        page.contains("Вход отмечен: Кутузовский пр., д. 57, 30 нояб. в 12:00. Отказ: СТОП"),
        "{page}"
    );
    assert!(page.contains("data-segments=\"1\""), "{page}");
    assert!(page.contains("src=\"/static/org-sms.js\""));

    // «Показать SMS» without script: the text and its two segments, the
    // reason, nothing stored.
    let form = |csrf: &str, label: &str, preview: bool| {
        let mut form = vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("address".to_owned(), address.to_owned()),
            ("kind".to_owned(), "магазин".to_owned()),
            ("stay_minutes".to_owned(), String::new()),
            ("sms_label".to_owned(), label.to_owned()),
        ];
        if preview {
            form.push(("preview".to_owned(), "1".to_owned()));
        }
        form
    };
    let csrf = b.csrf(&path).await;
    let fields = form(&csrf, &too_long, true);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = b.post(&path, &fields).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r
        .text()
        .contains(&format!("Вход отмечен: {too_long}, 30 нояб.")));
    assert!(r.text().contains("data-segments=\"2\""), "{}", r.text());
    assert!(r.text().contains("не длиннее 25 знаков"), "{}", r.text());

    // Saved over the limit: 422 with the limit, the premises unchanged.
    let fields = form(&csrf, &too_long, false);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = b.post(&path, &fields).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("не длиннее 25 знаков"), "{}", r.text());
    let stored = service
        .store
        .orgs()
        .premises_by_id(p.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sms_label, None);
    let csrf_add = b.csrf("/org").await;
    let r = b
        .post(
            "/org/premises",
            &[
                ("csrf", &csrf_add),
                ("address", "Арбат, 5"),
                ("kind", "бар"),
                ("stay_minutes", ""),
                ("sms_label", &too_long),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("не длиннее 25 знаков"), "{}", r.text());

    // Saved within the limit: stored, and what the page previews.
    let fields = form(&csrf, "Океания, фудкорт", false);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = b.post(&path, &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let stored = service
        .store
        .orgs()
        .premises_by_id(p.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sms_label.as_deref(), Some("Океания, фудкорт"));
    assert_eq!(stored.address, address, "the web keeps the full address");
    let page = b.get(&path).await.text();
    assert!(page.contains("Вход отмечен: Океания, фудкорт, 30 нояб. в 12:00. Отказ: СТОП"));

    // The script's preview: the same text and count as JSON.
    let r = b
        .get(&format!(
            "/org/sms-preview?address={}&label={}",
            encode(address),
            encode(&too_long)
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let preview = r.json();
    assert_eq!(preview["segments"], 2);
    assert!(preview["refused"].as_str().unwrap().contains("25"));
    let r = b
        .get(&format!(
            "/org/sms-preview?address={}&label=",
            encode(address)
        ))
        .await;
    assert_eq!(r.json()["segments"], 1);
    assert_eq!(
        r.json()["text"],
        "Вход отмечен: Кутузовский пр., д. 57, 30 нояб. в 12:00. Отказ: СТОП"
    );

    // The API: refused with 422 naming the limit, on create and on PATCH.
    let body = json!({ "address": "Арбат, 5", "sms_label": too_long }).to_string();
    let r = b.api("POST", "/api/v1/premises", Some(&body)).await;
    assert_eq!(
        r.api_error(),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid".into())
    );
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("longer than 25 characters"));
    let one = format!("/api/v1/premises/{}", p.id);
    let body = json!({ "sms_label": too_long }).to_string();
    let r = b.api("PATCH", &one, Some(&body)).await;
    assert_eq!(
        r.api_error(),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid".into())
    );
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("longer than 25 characters"));
    let r = b
        .api("PATCH", &one, Some(r#"{"sms_label":"Океания"}"#))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let view = r.json();
    assert_eq!(view["sms_label"], "Океания");
    assert_eq!(view["address"], address);
    assert_eq!(
        view["sms_confirmation"]["text"],
        "Вход отмечен: Океания, 30 нояб. в 12:00. Отказ: СТОП"
    );
    assert_eq!(view["sms_confirmation"]["segments"], 1);
    let r = b.api("PATCH", &one, Some(r#"{"sms_label":null}"#)).await;
    assert!(r.json()["sms_label"].is_null());
    let body = json!({ "address": "Арбат, 5", "sms_label": "Бар на Арбате" }).to_string();
    let r = b.api("POST", "/api/v1/premises", Some(&body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["sms_label"], "Бар на Арбате");
}
