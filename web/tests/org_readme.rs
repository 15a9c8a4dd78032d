//! Every `curl` line of the root README's organizations section, run as
//! written (by `sh`, with `BASE`, `TOKEN` and `ID` set) against the web served
//! on port 0: each succeeds and answers what the README says.

mod common;

use std::path::Path;

use checkin_core::store::NewOrganization;
use checkin_core::{Keys, PhoneVault, Store, StoreConfig};
use common::serve_web;
use serde_json::Value;

/// The `curl` command lines of the README's organizations section.
fn readme_curl_lines() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let start = readme
        .find("## Organizations")
        .expect("the README's organizations section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

async fn run(line: &str, base: &str, token: &str, id: &str, dir: &Path) -> Vec<u8> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("BASE", base)
        .env("TOKEN", token)
        .env("ID", id)
        .current_dir(dir)
        .output()
        .await
        .expect("sh and curl run");
    assert!(
        out.status.success(),
        "{line}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_curl_line_of_the_readme_works() {
    let data = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let url = checkin_core::store::sqlite_url_in(data.path());
    let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    let token = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Кафе «Ромашка»".into(),
                email: "cafe@example.ru".into(),
                password: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap()
        .api_token;
    let served = serve_web(&store, &keys).await;
    let base = served.base.clone();

    let lines = readme_curl_lines();
    assert_eq!(lines.len(), 7, "{lines:#?}");
    let work = tempfile::tempdir().unwrap();
    let json = |bytes: Vec<u8>| -> Value { serde_json::from_slice(&bytes).unwrap() };

    // The first line creates the premises the others name.
    assert!(lines[0].contains("-X POST \"$BASE/api/v1/premises\""));
    let created = json(run(&lines[0], &base, &token, "", work.path()).await);
    let id = created["id"].as_i64().unwrap().to_string();
    assert_eq!(created["address"], "ул. Тверская, 13");
    assert_eq!(created["stay_minutes"], 90);
    assert_eq!(
        created["poster_url"],
        format!("{base}/org/premises/{id}/poster")
    );
    let code = created["code"].as_str().unwrap().to_owned();

    let mut seen = Vec::new();
    for line in &lines[1..] {
        let out = run(line, &base, &token, &id, work.path()).await;
        if line.contains("/api/v1/premises?") {
            assert_eq!(json(out)["items"][0]["code"], code.as_str());
            seen.push("list");
        } else if line.contains("/stats\"") {
            let stats = json(out);
            assert_eq!(stats["days"].as_array().unwrap().len(), 30);
            assert_eq!(stats["hours"].as_array().unwrap().len(), 24);
            seen.push("stats");
        } else if line.contains("/qr.png\"") {
            let png = std::fs::read(work.path().join("qr.png")).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
            seen.push("qr");
        } else if line.contains("/deactivate\"") {
            assert_eq!(json(out)["active"], false);
            seen.push("deactivate");
        } else if line.contains("-X PATCH") {
            let view = json(out);
            assert_eq!(view["sms_label"], "Кафе на Тверской");
            assert_eq!(view["sms_confirmation"]["segments"], 1);
            seen.push("sms_label");
        } else if line.contains("/api/v1/premises/$ID\"") {
            assert_eq!(json(out)["code"], code.as_str());
            seen.push("get");
        } else {
            panic!("a README curl line this test does not check: {line}");
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["deactivate", "get", "list", "qr", "sms_label", "stats"]
    );
    let premises = store
        .orgs()
        .premises_by_id(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!premises.active, "the README's deactivate took effect");

    served.stop().await;
}
