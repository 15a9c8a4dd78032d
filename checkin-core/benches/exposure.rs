//! Exposure matching at scale: seeds 300 k, 3 M and 30 M check-ins (28 days,
//! the same density at every size: about 300 check-ins per premises, so
//! 100 000 premises at 30 M, and about 20 visits per person) with SQL run
//! inside the database, then times `record_and_match` per case (median of
//! `BENCH_CASES`, default 200) and `record_and_match_batch` of `BENCH_BATCH`
//! (default 10 000) cases in one transaction. The matching's cost should
//! follow the visits a case touches, not the table: the 30 M figure within 2×
//! of the 300 k one.
//!
//! Run: `SQLITE_TMPDIR=/var/tmp cargo bench -p checkin-core --bench exposure`
//! (`BENCH_BACKEND=postgres` with `CHECKIN_TEST_POSTGRES_URL=postgres://…` for
//! PostgreSQL; `BENCH_SIZES=300000,3000000` to choose the sizes; `BENCH_DIR`
//! for the SQLite files, default /var/tmp, deleted after each size, as the
//! PostgreSQL database is dropped). The 30 M SQLite file takes about 7 GB.
//! Without `--bench` (as `cargo test --all-targets` runs it) it does one tiny
//! smoke run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use checkin_core::{ExposureConfig, Keys, Msisdn, NewCase, PhoneVault, Store, StoreConfig};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::{AnyConnection, Connection, Executor};

/// The seed's first day (UTC).
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 1, 0, 0, 0).unwrap()
}
const DAYS: i64 = 28;
/// Check-ins per premises over the 28 days (about 11 a day).
const CHECKINS_PER_PREMISES: u64 = 300;
/// Visits per person over the 28 days.
const VISITS_PER_PERSON: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
struct Plan {
    sizes: Vec<u64>,
    cases: usize,
    batch: usize,
}

fn env_list(name: &str) -> Option<Vec<u64>> {
    let text = std::env::var(name).ok()?;
    text.split(',').map(|s| s.trim().parse().ok()).collect()
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

/// The placeholder hash of person `p` in the seed (32 bytes, never an HMAC).
fn seed_hash(p: u64) -> Vec<u8> {
    format!("{p:032}").into_bytes()
}

fn phone_of(p: u64) -> Msisdn {
    Msisdn::parse(&format!("+7916{:07}", p % 10_000_000)).unwrap()
}

/// Premises and people for `n` check-ins.
fn shape(n: u64) -> (u64, u64) {
    (
        (n / CHECKINS_PER_PREMISES).max(1),
        (n / VISITS_PER_PERSON).max(1),
    )
}

const SQLITE_SEED: &str = "\
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n} - 1)
INSERT INTO checkins (premises_id, phone_hash, phone_sealed, channel, consent, checked_in_at_ms)
SELECT abs(random() % {premises}) + 1,
       CAST(printf('%032d', abs(random() % {people})) AS BLOB),
       zeroblob(64),
       CASE WHEN i % 3 = 0 THEN 'web' ELSE 'sms' END,
       CASE WHEN abs(random() % 20) = 0 THEN 0 ELSE 1 END,
       {start} + i * {span} / {n} + abs(random() % 60000)
FROM s";

const POSTGRES_SEED: &str = "\
INSERT INTO checkins (premises_id, phone_hash, phone_sealed, channel, consent, checked_in_at_ms)
SELECT (random() * ({premises} - 1))::bigint + 1,
       convert_to(lpad(((random() * ({people} - 1))::bigint)::text, 32, '0'), 'UTF8'),
       decode(repeat('00', 64), 'hex'),
       CASE WHEN i % 3 = 0 THEN 'web' ELSE 'sms' END,
       CASE WHEN random() < 0.05 THEN 0 ELSE 1 END,
       {start} + i * {span} / {n} + (random() * 60000)::bigint
FROM generate_series(0, {n} - 1) AS i";

const PREMISES_SEED_SQLITE: &str = "\
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {premises})
INSERT INTO premises (id, org_id, code, address, kind, stay_minutes, active, created_at_ms)
SELECT i, 1, printf('%09d', i), 'ул. Тестовая, ' || i, 'магазин',
       CASE i % 4 WHEN 0 THEN 30 WHEN 3 THEN 120 ELSE 60 END, 1, {start} FROM s";

const PREMISES_SEED_POSTGRES: &str = "\
INSERT INTO premises (id, org_id, code, address, kind, stay_minutes, active, created_at_ms)
SELECT i, 1, lpad(i::text, 9, '0'), 'ул. Тестовая, ' || i, 'магазин',
       CASE i % 4 WHEN 0 THEN 30 WHEN 3 THEN 120 ELSE 60 END, 1, {start}
FROM generate_series(1, {premises}) AS i";

const INDEXES: [(&str, &str); 3] = [
    (
        "checkins_premises_at",
        "checkins (premises_id, checked_in_at_ms)",
    ),
    (
        "checkins_phone_at",
        "checkins (phone_hash, checked_in_at_ms)",
    ),
    ("checkins_at", "checkins (checked_in_at_ms)"),
];

/// The `checkins.premises_id` foreign key as the migration makes it
/// (PostgreSQL's default name for it), dropped for the seed and put back.
const PG_DROP_FOREIGN_KEY: &str = "ALTER TABLE checkins DROP CONSTRAINT checkins_premises_id_fkey";
const PG_ADD_FOREIGN_KEY: &str = "ALTER TABLE checkins ADD CONSTRAINT checkins_premises_id_fkey \
     FOREIGN KEY (premises_id) REFERENCES premises (id)";

fn fill(template: &str, n: u64) -> String {
    let (premises, people) = shape(n);
    template
        .replace("{n}", &n.to_string())
        .replace("{premises}", &premises.to_string())
        .replace("{people}", &people.to_string())
        .replace("{start}", &start().timestamp_millis().to_string())
        .replace("{span}", &(DAYS * 24 * 3600 * 1000).to_string())
}

/// Seeds `n` check-ins with the indexes dropped, then builds them; gives the
/// case people their real hashes. Returns the seconds it took.
async fn seed(
    conn: &mut AnyConnection,
    which: Which,
    n: u64,
    vault: &PhoneVault,
    persons: &[u64],
) -> f64 {
    let began = Instant::now();
    let org = "INSERT INTO organizations (id, name, email, api_token_hash, created_at_ms) \
               VALUES (1, 'bench', 'bench@example.ru', 'x', 0)";
    let (premises, checkins) = match which {
        Which::Sqlite => (PREMISES_SEED_SQLITE, SQLITE_SEED),
        Which::Postgres => (PREMISES_SEED_POSTGRES, POSTGRES_SEED),
    };
    conn.execute(org).await.unwrap();
    conn.execute(fill(premises, n).as_str()).await.unwrap();
    for (name, _) in INDEXES {
        conn.execute(format!("DROP INDEX {name}").as_str())
            .await
            .unwrap();
    }
    if which == Which::Postgres {
        // A row-by-row foreign-key check costs PostgreSQL a trigger event per
        // row (30 M of them); the constraint is put back below, validated
        // in one pass, under its own name.
        conn.execute(PG_DROP_FOREIGN_KEY).await.unwrap();
        // Index builds sort in memory instead of in temporary files (this
        // session only; the indexes are the same).
        conn.execute("SET maintenance_work_mem = '1GB'")
            .await
            .unwrap();
    }
    conn.execute(fill(checkins, n).as_str()).await.unwrap();
    eprintln!("  {n}: rows in {:.0} s", began.elapsed().as_secs_f64());
    for (name, on) in INDEXES {
        conn.execute(format!("CREATE INDEX {name} ON {on}").as_str())
            .await
            .unwrap();
    }
    if which == Which::Postgres {
        conn.execute(PG_ADD_FOREIGN_KEY).await.unwrap();
    }
    eprintln!("  {n}: indexed in {:.0} s", began.elapsed().as_secs_f64());
    // The case people get the HMAC the store will look them up by.
    conn.execute("BEGIN").await.unwrap();
    for p in persons {
        let real = vault.hash(&phone_of(*p)).0.to_vec();
        sqlx::query("UPDATE checkins SET phone_hash = $1 WHERE phone_hash = $2")
            .bind(real)
            .bind(seed_hash(*p))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    conn.execute("COMMIT").await.unwrap();
    if which == Which::Postgres {
        // What autovacuum would have done by the time a case arrives.
        conn.execute("ANALYZE").await.unwrap();
    }
    began.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// One size's figures.
#[derive(Debug)]
struct Figures {
    seed_s: f64,
    dry_run_ms: f64,
    per_case_ms: f64,
    per_case_p90_ms: f64,
    alerts_per_case: f64,
    batch_s: f64,
    batch_alerts: u64,
}

async fn measure(store: &Store, n: u64, plan: &Plan, persons: &[u64], seed_s: f64) -> Figures {
    let config = ExposureConfig::default();
    // Confirmed on day 20: the window covers days 18 to 28 of the seed.
    let confirmed = start() + chrono::Duration::days(20);
    let now = start() + chrono::Duration::days(DAYS);
    let case = |p: u64| -> NewCase { config.new_case(None, phone_of(p), confirmed, None, None) };
    let (single, batch) = persons.split_at(plan.cases);
    let mut dry = Vec::new();
    let mut times = Vec::new();
    let mut alerts = 0u64;
    for p in single {
        let new = case(*p);
        let t = Instant::now();
        store.cases().dry_run(&new, now).await.unwrap();
        dry.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let recorded = store.cases().record_and_match(&new, now).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        alerts += recorded.alerts_queued;
    }
    let cases: Vec<NewCase> = batch.iter().map(|p| case(*p)).collect();
    let t = Instant::now();
    let recorded = store
        .cases()
        .record_and_match_batch(&cases, now)
        .await
        .unwrap();
    let batch_s = t.elapsed().as_secs_f64();
    let _ = n;
    Figures {
        seed_s,
        dry_run_ms: median(dry),
        per_case_ms: median(times.clone()),
        per_case_p90_ms: percentile(times, 0.9),
        alerts_per_case: alerts as f64 / single.len().max(1) as f64,
        batch_s,
        batch_alerts: recorded.iter().map(|r| r.alerts_queued).sum(),
    }
}

/// Distinct random people for the cases.
fn pick_persons(n: u64, count: usize) -> Vec<u64> {
    use rand::seq::index::sample;
    let (_, people) = shape(n);
    let count = count.min(people as usize);
    sample(&mut rand::thread_rng(), people as usize, count)
        .into_iter()
        .map(|p| p as u64)
        .collect()
}

async fn run_sqlite(n: u64, plan: &Plan, dir: &Path) -> Figures {
    let keys = Keys::generate();
    let folder = dir.join(format!("checkin-exposure-bench-{n}"));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    let url = checkin_core::store::sqlite_url_in(&folder);
    // The schema, then the seed on a connection of its own with the
    // rollback journal (a WAL would hold the whole seed twice).
    let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    store.close().await;
    let persons = pick_persons(n, plan.cases + plan.batch);
    let seed_s = {
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        conn.execute("PRAGMA journal_mode = DELETE").await.unwrap();
        conn.execute("PRAGMA synchronous = OFF").await.unwrap();
        conn.execute("PRAGMA cache_size = -1048576").await.unwrap();
        let s = seed(
            &mut conn,
            Which::Sqlite,
            n,
            &PhoneVault::new(&keys),
            &persons,
        )
        .await;
        conn.execute("PRAGMA journal_mode = WAL").await.unwrap();
        conn.close().await.unwrap();
        s
    };
    let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    let size: u64 = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    eprintln!("  {n}: {:.1} GB on disk", size as f64 / 1e9);
    let figures = measure(&store, n, plan, &persons, seed_s).await;
    store.close().await;
    std::fs::remove_dir_all(&folder).unwrap();
    figures
}

async fn run_postgres(n: u64, plan: &Plan) -> Option<Figures> {
    let db = common::postgres(StoreConfig::default()).await?;
    // The store's own keys are not reachable from here: a second store on
    // the same database with known keys does the work.
    let keys = Keys::generate();
    db.store.close().await;
    let persons = pick_persons(n, plan.cases + plan.batch);
    let seed_s = {
        let mut conn = AnyConnection::connect(&db.url).await.unwrap();
        let s = seed(
            &mut conn,
            Which::Postgres,
            n,
            &PhoneVault::new(&keys),
            &persons,
        )
        .await;
        conn.close().await.unwrap();
        s
    };
    let store = Store::open(&db.url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    let figures = measure(&store, n, plan, &persons, seed_s).await;
    store.close().await;
    // The 30 M database is about 10 GB: it goes like the SQLite file does.
    let name = db
        .url
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let admin_url = std::env::var("CHECKIN_TEST_POSTGRES_URL").unwrap();
    let mut admin = AnyConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    admin.close().await.unwrap();
    Some(figures)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut plan = if full {
        Plan {
            sizes: vec![300_000, 3_000_000, 30_000_000],
            cases: 200,
            batch: 10_000,
        }
    } else {
        Plan {
            sizes: vec![6_000],
            cases: 5,
            batch: 20,
        }
    };
    if let Some(sizes) = env_list("BENCH_SIZES") {
        plan.sizes = sizes;
    }
    if let Some(cases) = env_usize("BENCH_CASES") {
        plan.cases = cases.max(1);
    }
    if let Some(batch) = env_usize("BENCH_BATCH") {
        plan.batch = batch;
    }
    let which = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("postgres") => Which::Postgres,
        _ => Which::Sqlite,
    };
    let dir = PathBuf::from(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "| backend | check-ins | premises | seed, s | dry run per case, ms (median) | \
             record_and_match per case, ms (median / p90) | alerts per case | \
             batch of {} cases, s | alerts in the batch |",
            plan.batch
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for &n in &plan.sizes {
            let figures = match which {
                Which::Sqlite => Some(run_sqlite(n, &plan, &dir).await),
                Which::Postgres => run_postgres(n, &plan).await,
            };
            let Some(f) = figures else {
                eprintln!("CHECKIN_TEST_POSTGRES_URL is not set: nothing to measure");
                return;
            };
            println!(
                "| {} | {n} | {} | {:.0} | {:.2} | {:.2} / {:.2} | {:.1} | {:.1} | {} |",
                match which {
                    Which::Sqlite => "sqlite",
                    Which::Postgres => "postgres",
                },
                shape(n).0,
                f.seed_s,
                f.dry_run_ms,
                f.per_case_ms,
                f.per_case_p90_ms,
                f.alerts_per_case,
                f.batch_s,
                f.batch_alerts
            );
        }
    });
}
