//! What operations and the authority's API read, on both backends: the
//! storage ping, the outbox's depth per priority (bounded), and bearer
//! tokens told apart (an authority's, an organization's, nobody's).

mod common;

use checkin_core::store::{NewOrganization, OutboxDepth, SqliteSync, TokenHolder};
use checkin_core::{Msisdn, NewMessage, Priority, StoreConfig};
use common::{backends, t0};

#[tokio::test]
async fn ping_depth_and_token_holders() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        store.ping().await.unwrap();
        assert_eq!(
            store.outbox().depth(100).await.unwrap(),
            OutboxDepth::default(),
            "{label}"
        );
        let queue = |priority, n: usize| async move {
            for _ in 0..n {
                let new = NewMessage {
                    recipient: Msisdn::parse("+79161234567").unwrap(),
                    text: "text".into(),
                    priority,
                };
                store.outbox().enqueue(&new, t0()).await.unwrap();
            }
        };
        queue(Priority::Otp, 1).await;
        queue(Priority::Confirmation, 2).await;
        queue(Priority::Alert, 5).await;
        let depth = store.outbox().depth(100).await.unwrap();
        assert_eq!(
            (depth.otp, depth.confirmation, depth.alert),
            (1, 2, 5),
            "{label}"
        );
        // Each count stops at the bound.
        let depth = store.outbox().depth(3).await.unwrap();
        assert_eq!(
            (depth.otp, depth.confirmation, depth.alert),
            (1, 2, 3),
            "{label}"
        );
        // Claimed rows are no longer waiting.
        store.outbox().claim_ready(1, t0()).await.unwrap();
        assert_eq!(store.outbox().depth(100).await.unwrap().otp, 0, "{label}");

        let (authority_id, authority_token) =
            store.orgs().create_authority("РПН", t0()).await.unwrap();
        let org = store
            .orgs()
            .create_org(
                &NewOrganization {
                    name: "Кафе".into(),
                    email: "cafe@example.ru".into(),
                    password: None,
                },
                t0(),
            )
            .await
            .unwrap();
        match store.orgs().token_holder(&authority_token).await.unwrap() {
            Some(TokenHolder::Authority(a)) => {
                assert_eq!((a.id, a.name.as_str()), (authority_id, "РПН"), "{label}")
            }
            other => panic!("{label}: {other:?}"),
        }
        assert_eq!(
            store.orgs().token_holder(&org.api_token).await.unwrap(),
            Some(TokenHolder::Organization(org.organization.id)),
            "{label}"
        );
        assert_eq!(
            store.orgs().token_holder(&"0".repeat(64)).await.unwrap(),
            None,
            "{label}"
        );
        store.close().await;
        assert!(store.ping().await.is_err(), "{label}");
    }
}

/// The durability promise: SQLite syncs every commit by default, and a store
/// whose settings would lose acknowledged commits names them (the gateway
/// logs them at start).
#[tokio::test]
async fn durability_warnings_name_the_settings_that_lose_commits() {
    let full = common::sqlite(StoreConfig::default()).await;
    assert_eq!(full.store.durability_warnings(), &[] as &[String]);
    let normal = common::sqlite(StoreConfig {
        sqlite_synchronous: SqliteSync::Normal,
        ..StoreConfig::default()
    })
    .await;
    let warnings = normal.store.durability_warnings().join("\n");
    assert!(
        warnings.contains("sqlite_synchronous = normal"),
        "{warnings}"
    );
    if let Some(pg) = common::postgres(StoreConfig::default()).await {
        let mut expected = Vec::new();
        for setting in ["fsync", "synchronous_commit"] {
            let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
                .fetch_one(pg.store.pool_for_tests())
                .await
                .unwrap();
            if value == "off" {
                expected.push(format!("{setting} = off"));
            }
        }
        let warnings = pg.store.durability_warnings();
        assert_eq!(warnings.len(), expected.len(), "{warnings:?}");
        for (warning, setting) in warnings.iter().zip(&expected) {
            assert!(warning.contains(setting.as_str()), "{warning}");
        }
    }
}

/// `/readyz`'s storage probe writes: it answers while storage can commit, and
/// fails once it cannot (here: closed).
#[tokio::test]
async fn ping_write_commits_a_small_write() {
    for db in backends(StoreConfig::default()).await {
        db.store.ping_write(t0()).await.unwrap();
        db.store.ping_write(t0()).await.unwrap();
        db.store.close().await;
        assert!(db.store.ping_write(t0()).await.is_err(), "{}", db.label);
    }
}
