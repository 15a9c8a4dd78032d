//! `checkin routes import FILE` with the real binary: a good plan replaces
//! the stored one and is summed up in one JSON line; a file with bad lines is
//! refused whole, each bad line on stderr, and the stored plan stays.

mod common;

use common::cli::{checkin, json_line};

use std::path::Path;

use checkin::config::{Config, Overrides};
use checkin_core::{Msisdn, NumberPlan, PhoneVault, Store};

/// The plan the binary stored, read through the store it uses.
async fn stored_plan(data: &Path) -> NumberPlan {
    let config = Config::resolve(&Overrides {
        data_dir: Some(data.to_owned()),
        ..Overrides::default()
    })
    .unwrap();
    let keys = config.load_keys().unwrap();
    let store = Store::open(
        &config.database_url,
        PhoneVault::new(&keys),
        config.store.clone(),
    )
    .await
    .unwrap();
    let plan = store.routes().plan().await.unwrap();
    store.close().await;
    plan
}

#[tokio::test]
async fn a_plan_is_imported_whole_or_not_at_all() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let good = root.path().join("plan.csv");
    std::fs::write(
        &good,
        "range,operator\n+7916,mts\n+79030000000-+79030999999,beeline\n+7926,megafon\n+7915,mts\n",
    )
    .unwrap();
    let summary = json_line(&checkin(
        &data,
        &["routes", "import", good.to_str().unwrap()],
    ));
    assert_eq!(
        summary,
        serde_json::json!({"ranges": 4, "operators": {"mts": 2, "beeline": 1, "megafon": 1}})
    );
    let plan = stored_plan(&data).await;
    let to = Msisdn::parse("+79030123456").unwrap();
    assert_eq!(plan.operator_for(&to).map(|o| o.as_str()), Some("beeline"));

    let bad = root.path().join("bad.csv");
    std::fs::write(
        &bad,
        "range,operator\n+7977,tele2\n+79x,mts\n+7999,мегафон\n",
    )
    .unwrap();
    let refused = checkin(&data, &["routes", "import", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty(), "no JSON line for a refused file");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for line in ["bad.csv:3: ", "bad.csv:4: "] {
        assert!(stderr.contains(line), "{line} in {stderr}");
    }
    assert!(!stderr.contains("bad.csv:2:"), "{stderr}");
    assert_eq!(stored_plan(&data).await, plan, "nothing changed");

    // The shipped plan imports as it is.
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/numbering-plan/ru-mobile.csv"
    );
    let summary = json_line(&checkin(&data, &["routes", "import", shipped]));
    assert!(summary["ranges"].as_u64().unwrap() > 500, "{summary}");
    assert!(
        summary["operators"]["tele2"].as_u64().unwrap() > 0,
        "{summary}"
    );
}
