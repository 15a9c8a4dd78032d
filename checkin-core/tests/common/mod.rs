//! Test databases: every storage test runs on a fresh SQLite file and, when
//! `CHECKIN_TEST_POSTGRES_URL` names a server, on a fresh PostgreSQL database.
//! With `CHECKIN_TEST_REQUIRE_POSTGRES=1` (the test script sets it) a missing or
//! unreachable server fails the tests instead of skipping PostgreSQL.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

use checkin_core::store::{InboundSms, NewOrganization, NewPremises};
use checkin_core::{Keys, Msisdn, PhoneVault, Premises, Store, StoreConfig};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Connection;

/// A store on one backend plus what a test needs to inspect it from outside.
#[derive(Debug)]
pub struct TestDb {
    pub label: &'static str,
    pub store: Store,
    /// The SQLite data folder (deleted on drop).
    pub sqlite_dir: Option<tempfile::TempDir>,
    pub url: String,
}

impl TestDb {
    pub fn sqlite_files(&self) -> Vec<PathBuf> {
        let Some(dir) = &self.sqlite_dir else {
            return Vec::new();
        };
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

pub async fn sqlite(config: StoreConfig) -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = checkin_core::store::sqlite_url_in(dir.path());
    let store = Store::open(&url, PhoneVault::new(&Keys::generate()), config)
        .await
        .unwrap();
    TestDb {
        label: "sqlite",
        store,
        sqlite_dir: Some(dir),
        url,
    }
}

/// A fresh database on the PostgreSQL server named by the environment, if any.
pub async fn postgres(config: StoreConfig) -> Option<TestDb> {
    let required = std::env::var("CHECKIN_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1");
    let admin_url = match std::env::var("CHECKIN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !required,
                "CHECKIN_TEST_REQUIRE_POSTGRES=1 but CHECKIN_TEST_POSTGRES_URL is not set"
            );
            eprintln!("note: CHECKIN_TEST_POSTGRES_URL is not set; PostgreSQL skipped (run ./scripts/test for both backends)");
            return None;
        }
    };
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at CHECKIN_TEST_POSTGRES_URL: {e}"));
    let name = format!("checkin_test_{}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    let url = with_database(&admin_url, &name);
    let store = Store::open(&url, PhoneVault::new(&Keys::generate()), config)
        .await
        .unwrap();
    Some(TestDb {
        label: "postgres",
        store,
        sqlite_dir: None,
        url,
    })
}

/// `admin_url` with its database name replaced.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Every backend available: SQLite always, PostgreSQL when configured.
pub async fn backends(config: StoreConfig) -> Vec<TestDb> {
    let mut dbs = vec![sqlite(config.clone()).await];
    if let Some(pg) = postgres(config).await {
        dbs.push(pg);
    }
    dbs
}

// Fixtures shared by the SMS and inbox suites.

/// The fixtures' clock: 18 Oct 2020, 20:13 in Moscow.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
}

/// A fresh organization with one premises at «ул. Тверская, 13».
pub async fn premises(store: &Store) -> Premises {
    let org = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Магазин".into(),
                email: format!("shop{}@example.ru", rand::random::<u32>()),
                password: None,
            },
            t0(),
        )
        .await
        .unwrap();
    store
        .orgs()
        .add_premises(
            &NewPremises {
                org_id: org.organization.id,
                address: "ул. Тверская, 13".into(),
                kind: None,
                stay_minutes: None,
            },
            t0(),
        )
        .await
        .unwrap()
}

/// A text to 7377 from `from`, received at [`t0`].
pub fn sms(from: &str, text: &str) -> InboundSms {
    InboundSms {
        from: Msisdn::parse(from).unwrap(),
        text: text.into(),
        received_at: t0(),
        operator: None,
    }
}
