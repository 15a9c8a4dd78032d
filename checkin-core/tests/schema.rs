//! The two migration folders give the same schema: every table and column, and
//! whether it may be NULL, on SQLite and PostgreSQL alike (one set of queries
//! runs on both, so a column missing on one backend is a bug on that one).

mod common;

use std::collections::BTreeSet;

use checkin_core::StoreConfig;
use sqlx::Row;

/// (table, column, nullable) of every table the migrations create.
type Columns = BTreeSet<(String, String, bool)>;

async fn sqlite_columns(db: &common::TestDb) -> Columns {
    let rows = sqlx::query(
        "SELECT m.name AS t, p.name AS c, p.\"notnull\" AS nn, p.pk AS pk \
         FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(db.store.pool_for_tests())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let not_null: i64 = r.try_get("nn").unwrap();
            // An INTEGER PRIMARY KEY is the rowid: never NULL, whatever it says.
            let key: i64 = r.try_get("pk").unwrap();
            (
                r.try_get("t").unwrap(),
                r.try_get("c").unwrap(),
                not_null == 0 && key == 0,
            )
        })
        .collect()
}

async fn postgres_columns(db: &common::TestDb) -> Columns {
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, is_nullable::text AS n \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(db.store.pool_for_tests())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let nullable: String = r.try_get("n").unwrap();
            (
                r.try_get("t").unwrap(),
                r.try_get("c").unwrap(),
                nullable == "YES",
            )
        })
        .collect()
}

#[tokio::test]
async fn both_migration_folders_give_the_same_tables_and_columns() {
    let sqlite = common::sqlite(StoreConfig::default()).await;
    let Some(postgres) = common::postgres(StoreConfig::default()).await else {
        return;
    };
    let (on_sqlite, on_postgres) = (
        sqlite_columns(&sqlite).await,
        postgres_columns(&postgres).await,
    );
    assert!(
        on_sqlite
            .iter()
            .any(|(t, c, _)| t == "checkins" && c == "phone_hash"),
        "the schema query sees the tables: {on_sqlite:?}"
    );
    let only_sqlite: Vec<_> = on_sqlite.difference(&on_postgres).collect();
    let only_postgres: Vec<_> = on_postgres.difference(&on_sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "(table, column, nullable) only on SQLite: {only_sqlite:?}; only on PostgreSQL: {only_postgres:?}"
    );
}
