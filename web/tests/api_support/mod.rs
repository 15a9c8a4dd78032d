//! What the API and operations suites share: a real SQLite store with one
//! authority and one organization, the router driven with `oneshot`, and
//! JSON replies read whole.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use checkin_core::store::{NewOrganization, NewPremises};
use checkin_core::{
    Channel, Keys, ManualClock, Msisdn, NewCheckIn, PhoneVault, Premises, ServiceZone, Store,
    StoreConfig,
};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use tower::ServiceExt;
use web::{AppState, Ops, WebConfig};

/// One response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The JSON error code of a refusal (and it is JSON).
    pub fn error(&self) -> String {
        assert!(
            self.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{:?}",
            self.headers
        );
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 20, 9, 0, 0).unwrap()
}

pub struct App {
    pub _dir: tempfile::TempDir,
    pub keys: Keys,
    pub store: Store,
    pub clock: ManualClock,
    pub state: AppState,
    pub authority_id: i64,
    pub authority_token: String,
    pub org_id: i64,
    pub org_token: String,
    /// Two premises of the organization (60-minute stays).
    pub premises: Premises,
    pub other: Premises,
}

impl App {
    pub async fn new() -> App {
        App::with_ops(Ops::default()).await
    }

    pub async fn with_ops(ops: Ops) -> App {
        let dir = tempfile::tempdir().unwrap();
        let url = checkin_core::store::sqlite_url_in(dir.path());
        let keys = Keys::generate();
        let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
            .await
            .unwrap();
        let clock = ManualClock::new(start_time());
        let (authority_id, authority_token) = store
            .orgs()
            .create_authority("Роспотребнадзор", start_time())
            .await
            .unwrap();
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
            .unwrap();
        let add = |address: &str| NewPremises {
            org_id: org.organization.id,
            address: address.into(),
            kind: None,
            stay_minutes: Some(60),
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
        let state = AppState::new(
            store.clone(),
            &keys,
            ServiceZone::default(),
            Arc::new(clock.clone()),
            WebConfig::default(),
        )
        .with_ops(ops);
        App {
            _dir: dir,
            keys,
            store,
            clock,
            state,
            authority_id,
            authority_token,
            org_id: org.organization.id,
            org_token: org.api_token,
            premises,
            other,
        }
    }

    /// Records a visit of `phone` at `premises`, `minutes` after 18 Oct 20:13
    /// Moscow time (17:13 UTC).
    pub async fn visit(&self, phone: &str, premises: &Premises, minutes: i64, consent: bool) {
        let at = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
            + chrono::Duration::minutes(minutes);
        self.store
            .checkins()
            .record_checkin(&NewCheckIn {
                phone: Msisdn::parse(phone).unwrap(),
                code: premises.code,
                channel: if consent { Channel::Sms } else { Channel::Web },
                at,
                consent,
            })
            .await
            .unwrap();
    }

    /// Outbox rows, any status.
    pub async fn outbox_rows(&self) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM outbox")
            .fetch_one(self.store.pool_for_tests())
            .await
            .unwrap()
            .get("n")
    }

    pub fn router(&self) -> Router {
        let from: SocketAddr = "203.0.113.7:50000".parse().unwrap();
        web::router(self.state.clone()).layer(MockConnectInfo(from))
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: impl Into<Body>) -> Reply {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(body.into()).unwrap()).await
    }

    /// `POST` as the authority.
    pub async fn post_as_authority(&self, path: &str, body: &str) -> Reply {
        let token = self.authority_token.clone();
        self.post(path, Some(&token), body.to_owned()).await
    }
}
