//! The health authority's cabinet driven in-process (`oneshot`) over a real
//! SQLite store: log-in (a wrong password refused, the audit entry),
//! upload with a refused row → dry run (nothing recorded) → «Отправить
//! оповещения» → cases and a case page (addresses, no phone) → the delivery
//! CSV (formula-safe), tokens issued and revoked, the kill switch with its
//! confirmation step and who switched it; and isolation over every
//! authority route the router has (read from the sources, so a new route
//! cannot be left out): an organization's session or token gets 403/404,
//! another authority's person gets 404 for what is not theirs.

mod api_support;
mod common;

use std::collections::HashMap;
use std::time::Duration;

use api_support::{App, Reply};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use checkin_core::Clock;
use common::routes_in_sources;

const PASSWORD: &str = "correct horse battery";

/// A browser: a cookie jar over the app's router.
struct Browser<'a> {
    app: &'a App,
    jar: HashMap<String, String>,
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of the first hidden field `name` of a page.
fn field(page: &Reply, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {}", page.body))
        + marker.len();
    let end = start + page.body[start..].find('"').unwrap();
    page.body[start..end].to_owned()
}

fn location(r: &Reply) -> String {
    r.headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl<'a> Browser<'a> {
    fn new(app: &'a App) -> Browser<'a> {
        Browser {
            app,
            jar: HashMap::new(),
        }
    }

    async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Reply {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = request
            .header(header::COOKIE, cookies.join("; "))
            .body(body)
            .unwrap();
        let reply = self.app.send(request).await;
        for set in reply.headers.get_all(header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        reply
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send(Request::get(path), Body::empty()).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, Body::from(body.join("&"))).await
    }

    async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        field(&page, "csrf")
    }

    async fn log_in(&mut self, email: &str, password: &str) -> Reply {
        let csrf = self.csrf("/authority/login").await;
        self.post(
            "/authority/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Uploads `list` as a file (multipart, as the browser sends it).
    async fn upload(&mut self, list: &str) -> Reply {
        let csrf = self.csrf("/authority/upload").await;
        let boundary = "----cabinet-test";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cases.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{list}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"list\"\r\n\r\n\r\n--{boundary}--\r\n"
        );
        let request = Request::post("/authority/upload").header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        );
        self.send(request, Body::from(body)).await
    }

    /// The job's page once `done` is on it (the background run finished).
    async fn wait_for(&mut self, path: &str, done: &str) -> Reply {
        for _ in 0..200 {
            let page = self.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            if page.body.contains(done) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{path} never showed {done}");
    }
}

/// A person of authority `authority_id`, logged in.
async fn person<'a>(app: &'a App, authority_id: i64, email: &str) -> Browser<'a> {
    app.store
        .authority()
        .add_user(authority_id, email, PASSWORD, app.clock.now())
        .await
        .unwrap();
    let mut b = Browser::new(app);
    let r = b.log_in(email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(location(&r), "/authority");
    b
}

#[tokio::test]
async fn log_in_upload_dry_run_send_cases_and_the_kill_switch() {
    let app = App::new().await;
    // The case's visit and two people beside it (one without consent).
    app.visit("+79161234567", &app.premises, 0, true).await;
    app.visit("+79160000001", &app.premises, 10, true).await;
    app.visit("+79160000002", &app.premises, 20, false).await;

    let mut anonymous = Browser::new(&app);
    let r = anonymous.get("/authority").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/authority/login");
    app.store
        .authority()
        .add_user(
            app.authority_id,
            "epi@example.ru",
            PASSWORD,
            app.clock.now(),
        )
        .await
        .unwrap();
    let r = anonymous
        .log_in("epi@example.ru", "wrong horse battery")
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Неверная почта или пароль"), "{}", r.body);

    let mut b = Browser::new(&app);
    let r = b.log_in("epi@example.ru", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let home = b.get("/authority").await;
    assert!(
        home.body.contains("Оповещения отправляются"),
        "{}",
        home.body
    );

    // Upload: one good row, one refused (line 3, masked, with the reason).
    let r = b
        .upload("phone,confirmed_at\n+79161234567,2020-10-18T21:00:00+03:00\n+7916999887,2020-10-18T21:00:00+03:00\n")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let job = location(&r);
    assert!(job.starts_with("/authority/upload/"), "{job}");
    let dry = b.wait_for(&job, "id=\"dry-run\"").await;
    assert!(dry.body.contains("id=\"accepted\">1<"), "{}", dry.body);
    assert!(dry.body.contains("id=\"rejected\">1<"), "{}", dry.body);
    assert!(dry.body.contains("<td>3</td>"), "{}", dry.body);
    assert!(dry.body.contains("id=\"visits\">1<"), "{}", dry.body);
    assert!(dry.body.contains("id=\"unreachable\">1<"), "{}", dry.body);
    assert!(!dry.body.contains("9161234567") && !dry.body.contains("916999887"));
    assert_eq!(
        app.store.cases().count_cases().await.unwrap(),
        0,
        "a dry run records nothing"
    );
    assert_eq!(app.outbox_rows().await, 0);

    // Send: recorded and queued, once.
    let csrf = field(&dry, "csrf");
    let r = b.post(&format!("{job}/send"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let sent = b.wait_for(&job, "id=\"sent\"").await;
    assert!(
        sent.body.contains("оповещений в очереди: 1"),
        "{}",
        sent.body
    );
    let r = b.post(&format!("{job}/send"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.store.cases().count_cases().await.unwrap(),
        1,
        "sent once"
    );
    assert_eq!(app.outbox_rows().await, 1);

    // The cases, one case (addresses and times, no phone), the CSV.
    let cases = b.get("/authority/cases").await;
    assert_eq!(cases.status, StatusCode::OK);
    assert!(cases.body.contains("class=\"queued\">1<"), "{}", cases.body);
    assert!(
        cases.body.contains("http-equiv=\"refresh\""),
        "refreshes while alerts flow"
    );
    let id = app
        .store
        .authority()
        .case_ids(app.authority_id, None, 1)
        .await
        .unwrap()[0];
    let case = b.get(&format!("/authority/cases/{id}")).await;
    assert_eq!(case.status, StatusCode::OK);
    assert!(case.body.contains("Тверская ул., 1"), "{}", case.body);
    assert!(case.body.contains("в очереди"), "{}", case.body);
    assert!(!case.body.contains("916000") && !case.body.contains("9161234567"));
    let csv = b.get("/authority/cases.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next(),
        Some("case,confirmed_at,visits,people,unreachable,alerts,queued,sent,delivered,failed,expired")
    );
    assert!(lines
        .next()
        .unwrap()
        .starts_with(&format!("{id},2020-10-18T18:00:00+00:00,1,1,1,1,1,0,0,0,0")));

    // Tokens: issued once, listed by prefix, revoked; the API takes it meanwhile.
    let csrf = b.csrf("/authority/tokens").await;
    let page = b
        .post("/authority/tokens", &[("csrf", &csrf), ("label", "ЕГИСЗ")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let start = page.body.find("id=\"new-token\">").unwrap() + 15;
    let token = page.body[start..start + 64].to_owned();
    assert_eq!(
        app.get("/api/v1/alerts", Some(&token)).await.status,
        StatusCode::OK
    );
    let tokens = app
        .store
        .authority()
        .tokens(app.authority_id)
        .await
        .unwrap();
    let r = b
        .post(
            &format!("/authority/tokens/{}/revoke", tokens[0].id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v1/alerts", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The kill switch: a confirmation step, then who paused and when.
    let confirm = b.get("/authority/alerts?action=pause").await;
    assert!(
        confirm.body.contains("Да, приостановить"),
        "{}",
        confirm.body
    );
    assert!(
        !app.store.flags().alerts_paused().await.unwrap(),
        "asking changes nothing"
    );
    let csrf = field(&confirm, "csrf");
    let r = b
        .post("/authority/alerts", &[("csrf", &csrf), ("action", "pause")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app.store.flags().alerts_paused().await.unwrap());
    let home = b.get("/authority").await;
    assert!(home.body.contains("приостановлена"), "{}", home.body);
    assert!(
        home.body.contains("Приостановил(а): epi@example.ru"),
        "{}",
        home.body
    );
    let r = b
        .post(
            "/authority/alerts",
            &[("csrf", &csrf), ("action", "resume")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!app.store.flags().alerts_paused().await.unwrap());

    // The audit log names each action and its person.
    let audit = b.get("/authority/audit").await;
    for action in [
        "login",
        "upload_checked",
        "upload_confirmed",
        "token_created",
        "token_revoked",
        "alerts_paused",
        "alerts_resumed",
    ] {
        assert!(
            audit.body.contains(&format!("data-action=\"{action}\"")),
            "{action}: {}",
            audit.body
        );
    }

    // Log-out ends the session.
    let csrf = b.csrf("/authority").await;
    let r = b.post("/authority/logout", &[("csrf", &csrf)]).await;
    assert_eq!(location(&r), "/authority/login");
    assert_eq!(location(&b.get("/authority").await), "/authority/login");
}

#[tokio::test]
async fn a_bad_header_or_an_empty_upload_is_refused_with_the_reason() {
    let app = App::new().await;
    let mut b = person(&app, app.authority_id, "epi@example.ru").await;
    let r = b.upload("phone,name\n+79161234567,x\n").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("unknown column"), "{}", r.body);
    let r = b.upload("").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Выберите файл"), "{}", r.body);
}

/// The authority's routes: the cabinet's and the authority's JSON API.
fn authority_routes() -> Vec<(String, String)> {
    let routes: Vec<(String, String)> = routes_in_sources()
        .into_iter()
        .filter(|(_, _, file)| file.contains("authority"))
        .map(|(m, r, _)| (m, r))
        .collect();
    // The reader finds what the router has: these are certainly among them.
    for known in [
        "/authority",
        "/authority/upload/{job}/send",
        "/api/v1/cases/{id}",
        "/api/v1/alerts/pause",
    ] {
        assert!(
            routes.iter().any(|(_, r)| r == known),
            "{known} not read: {routes:?}"
        );
    }
    routes
}

#[tokio::test]
async fn organizations_and_other_authorities_reach_nothing_of_an_authority() {
    let app = App::new().await;
    app.visit("+79161234567", &app.premises, 0, true).await;
    app.visit("+79160000001", &app.premises, 10, true).await;
    let mut owner = person(&app, app.authority_id, "epi@example.ru").await;
    let r = owner
        .upload("phone,confirmed_at\n+79161234567,2020-10-18T21:00:00+03:00\n")
        .await;
    let job = location(&r);
    let dry = owner.wait_for(&job, "id=\"dry-run\"").await;
    let csrf = field(&dry, "csrf");
    owner.post(&format!("{job}/send"), &[("csrf", &csrf)]).await;
    owner.wait_for(&job, "id=\"sent\"").await;
    let case_id = app
        .store
        .authority()
        .case_ids(app.authority_id, None, 1)
        .await
        .unwrap()[0];
    let token_id = app
        .store
        .authority()
        .tokens(app.authority_id)
        .await
        .unwrap()[0]
        .id;
    let job_id = job.rsplit('/').next().unwrap().to_owned();
    let fill = |route: &str| {
        route
            .replace("{id}", &case_id.to_string())
            .replace("{job}", &job_id)
    };

    // An organization: its cabinet session, and its API token.
    let org_session = app
        .store
        .accounts()
        .open_session(app.org_id, chrono::Duration::hours(1), app.clock.now())
        .await
        .unwrap();
    let routes = authority_routes();
    for (method, route) in &routes {
        // The log-in page is open to anyone (it shows nothing).
        if route == "/authority/login" {
            continue;
        }
        let path = fill(route);
        for credential in ["session", "token"] {
            let mut request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            request = match credential {
                "session" => request.header(
                    header::COOKIE,
                    format!("org_session={}", org_session.secret),
                ),
                _ => request.header(header::AUTHORIZATION, format!("Bearer {}", app.org_token)),
            };
            let r = app.send(request.body(Body::from("csrf=x")).unwrap()).await;
            assert!(
                matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                "{method} {path} with an organization's {credential}: {} {}",
                r.status,
                r.body
            );
        }
    }

    // Another authority's person: none of the first one's cases, job, tokens.
    let (other_id, _) = app
        .store
        .orgs()
        .create_authority("Другой", app.clock.now())
        .await
        .unwrap();
    let mut stranger = person(&app, other_id, "other@example.ru").await;
    let list = stranger.get("/authority/cases").await;
    assert!(
        !list.body.contains(&format!("data-case=\"{case_id}\"")),
        "{}",
        list.body
    );
    let csv = stranger.get("/authority/cases.csv").await;
    assert_eq!(csv.body.lines().count(), 1, "{}", csv.body);
    assert_eq!(
        stranger
            .get(&format!("/authority/cases/{case_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(stranger.get(&job).await.status, StatusCode::NOT_FOUND);
    let csrf = stranger.csrf("/authority/tokens").await;
    let r = stranger
        .post(&format!("{job}/send"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = stranger
        .post(
            &format!("/authority/tokens/{token_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let tokens = stranger.get("/authority/tokens").await;
    assert!(!tokens.body.contains(&format!("data-token=\"{token_id}\"")));
    let audit = stranger.get("/authority/audit").await;
    assert!(!audit.body.contains("epi@example.ru"), "{}", audit.body);

    // The kill switch is the service's: the stranger sees it paused, but not
    // by whom.
    let note = checkin_core::store::AuditNote::new(
        app.authority_id,
        "epi@example.ru",
        "alerts_paused",
        "",
    );
    app.store
        .flags()
        .set_alerts_paused_by(true, Some(note), app.clock.now())
        .await
        .unwrap();
    let home = stranger.get("/authority").await;
    assert!(home.body.contains("другой орган"), "{}", home.body);
    assert!(!home.body.contains("epi@example.ru"), "{}", home.body);
    let home = owner.get("/authority").await;
    assert!(
        home.body.contains("Приостановил(а): epi@example.ru"),
        "{}",
        home.body
    );
}
