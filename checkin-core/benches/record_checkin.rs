//! `record_checkin` throughput: one transaction per check-in versus batches in one
//! transaction (the group-commit path the SMS pipeline uses), on SQLite and, when
//! `CHECKIN_TEST_POSTGRES_URL` names a server, PostgreSQL.
//!
//! Run: `cargo bench -p checkin-core --bench record_checkin` (add
//! `CHECKIN_TEST_POSTGRES_URL=postgres://…` for PostgreSQL; `./scripts/pg-test-server`
//! starts one). Prints a Markdown table of medians over the full plan's runs. Without
//! `--bench` (as `cargo test --all-targets` runs it) it does one tiny smoke run.
//!
//! Profiling knobs: `BENCH_ONLY=sms` measures only the SMS groups (for
//! `valgrind --tool=callgrind`), `BENCH_RUNS` and `BENCH_COUNT` (check-ins per
//! run on the batched paths) override the full plan's sizes; `BENCH_CLAIM=1`
//! queues the SMS groups' replies already claimed, as the gateway does.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use checkin_core::store::{InboundSms, NewOrganization, NewPremises, SmsOutcome};
use checkin_core::{Channel, Msisdn, NewCheckIn, ServiceZone, Store, StoreConfig, VenueCode};

/// Sizes of one measurement.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Runs per measurement; the median is reported.
    runs: usize,
    /// Check-ins per run, one transaction each.
    single_count: usize,
    /// Check-ins per run on the batched path.
    batched_count: usize,
}

const FULL: Plan = Plan {
    runs: 5,
    single_count: 2_000,
    batched_count: 20_000,
};
/// Under `cargo test`: proves the bench runs, measures nothing.
const SMOKE: Plan = Plan {
    runs: 1,
    single_count: 20,
    batched_count: 300,
};
/// Check-ins per transaction on the batched path (the pipeline's group commit size).
const BATCH_SIZE: usize = 256;
/// Premises the check-ins spread over.
const PREMISES_COUNT: usize = 100;

async fn codes(store: &Store) -> Vec<VenueCode> {
    let now = chrono::Utc::now();
    let org = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "bench".into(),
                email: "bench@example.ru".into(),
                password: None,
            },
            now,
        )
        .await
        .unwrap();
    let mut codes = Vec::new();
    for i in 0..PREMISES_COUNT {
        let p = store
            .orgs()
            .add_premises(
                &NewPremises {
                    org_id: org.organization.id,
                    address: format!("ул. Тестовая, {i}"),
                    kind: None,
                    stay_minutes: None,
                },
                now,
            )
            .await
            .unwrap();
        codes.push(p.code);
    }
    codes
}

/// `count` check-ins from distinct phones; `run` keeps runs apart.
fn visits(codes: &[VenueCode], run: usize, count: usize) -> Vec<NewCheckIn> {
    let at = chrono::Utc::now();
    (0..count)
        .map(|i| NewCheckIn {
            phone: Msisdn::parse(&format!("+79{:02}{:07}", run, i)).unwrap(),
            code: codes[i % codes.len()],
            channel: Channel::Sms,
            at,
            consent: true,
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// Texts to 7377 in groups of `SMS_GROUP`, as the MO pipeline commits them:
/// check-in and confirmation in one transaction.
const SMS_GROUP: usize = 512;

async fn measure(store: &Store, plan: Plan, only_sms: bool, claim: bool) -> (f64, f64, f64) {
    let codes = codes(store).await;
    let mut single = Vec::new();
    let mut batched = Vec::new();
    let mut sms = Vec::new();
    for run in 0..plan.runs {
        if only_sms {
            single.push(f64::NAN);
            batched.push(f64::NAN);
        } else {
            let (s, b) = measure_checkins(store, &codes, plan, run).await;
            single.push(s);
            batched.push(b);
        }
        let texts: Vec<InboundSms> = visits(&codes, run * 2 + 50, plan.batched_count)
            .into_iter()
            .map(|v| InboundSms {
                from: v.phone,
                text: format!("ВХОД*{}", v.code),
                received_at: v.at,
                operator: None,
            })
            .collect();
        let zone = ServiceZone::default();
        let started = Instant::now();
        for chunk in texts.chunks(SMS_GROUP) {
            let outcomes = if claim {
                // As the gateway's MO path does: the replies queued claimed.
                let prepared: Vec<_> = chunk
                    .iter()
                    .map(|m| store.sms().prepare_sms(m.clone()))
                    .collect();
                store
                    .sms()
                    .handle_prepared_sms_claiming(&prepared, &zone, chrono::Utc::now(), chunk.len())
                    .await
                    .unwrap()
                    .outcomes
            } else {
                store
                    .sms()
                    .handle_sms_batch(chunk, &zone, chrono::Utc::now())
                    .await
                    .unwrap()
            };
            assert!(outcomes
                .iter()
                .all(|o| matches!(o, SmsOutcome::CheckedIn { .. })));
        }
        sms.push(plan.batched_count as f64 / started.elapsed().as_secs_f64());
    }
    (median(single), median(batched), median(sms))
}

/// One run of the single and the batched paths: check-ins per second of each.
async fn measure_checkins(
    store: &Store,
    codes: &[VenueCode],
    plan: Plan,
    run: usize,
) -> (f64, f64) {
    let batch = visits(codes, run * 2, plan.single_count);
    let started = Instant::now();
    for v in &batch {
        assert!(!store.checkins().record_checkin(v).await.unwrap().duplicate);
    }
    let single = plan.single_count as f64 / started.elapsed().as_secs_f64();

    let batch = visits(codes, run * 2 + 1, plan.batched_count);
    let started = Instant::now();
    for chunk in batch.chunks(BATCH_SIZE) {
        for outcome in store.checkins().record_checkins(chunk).await.unwrap() {
            assert!(!outcome.unwrap().duplicate);
        }
    }
    let batched = plan.batched_count as f64 / started.elapsed().as_secs_f64();
    (single, batched)
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

fn main() {
    let mut plan = if std::env::args().any(|a| a == "--bench") {
        FULL
    } else {
        SMOKE
    };
    if let Some(runs) = env_usize("BENCH_RUNS") {
        plan.runs = runs.max(1);
    }
    if let Some(count) = env_usize("BENCH_COUNT") {
        plan.batched_count = count;
    }
    let only_sms = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "sms");
    let claim = std::env::var("BENCH_CLAIM").is_ok_and(|v| v == "1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "| backend | single (1 tx each), check-ins/s | batched ({BATCH_SIZE}/tx), check-ins/s | batched ÷ single | SMS groups ({SMS_GROUP}/tx, with replies), check-ins/s |"
        );
        println!("|---|---|---|---|---|");
        let mut dbs = vec![common::sqlite(StoreConfig::default()).await];
        if let Some(pg) = common::postgres(StoreConfig::default()).await {
            dbs.push(pg);
        }
        for db in dbs {
            let (single, batched, sms) = measure(&db.store, plan, only_sms, claim).await;
            println!(
                "| {} | {:.0} | {:.0} | {:.1}× | {:.0} |",
                db.label,
                single,
                batched,
                batched / single,
                sms
            );
        }
        println!(
            "\nmedians of {} runs; {} single and {} batched check-ins per run, \
             spread over {PREMISES_COUNT} premises, distinct phones",
            plan.runs, plan.single_count, plan.batched_count
        );
    });
}
