//! The authority's way and operations through a running gateway (bundled
//! simulator, SQLite): the kill switch holds an alert back while an SMS code
//! still goes out, and resuming sends it; every `curl` example of the
//! README's authority section runs against the web port and answers what
//! the README says.

mod common;

use std::process::Command;
use std::time::Duration;

use checkin_core::otp::{self, OtpCode, OtpKey};
use checkin_core::store::NewOtp;
use checkin_core::{Channel, Msisdn, NewCheckIn, Premises, Store};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

const CASE: &str = "+79161234567";
const VISITOR: &str = "+79160000001";
const OTP_PHONE: &str = "+79160000002";

async fn authority_token(store: &Store) -> String {
    store
        .orgs()
        .create_authority("Роспотребнадзор", Utc::now())
        .await
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_alerts_wait_while_a_code_goes_out_and_resume_sends_them() {
    let run = common::start("sqlite", None).await;
    let store = run.gateway.store.clone();
    let web = run.gateway.web_addr;
    let premises = run.premises("Тверская ул., 1").await;
    let token = authority_token(&store).await;
    let text = format!("ВХОД*{}", premises.code);
    run.send_mo(CASE, &text).await;
    run.send_mo(VISITOR, &text).await;
    run.until_messages(VISITOR, 1).await;

    let (status, body) = common::api(web, "POST", "/api/v1/alerts/pause", &token, None).await;
    assert_eq!((status, &body), (200, &json!({"alerts_paused": true})));
    let case = json!({"phone": CASE, "confirmed_at": Utc::now().to_rfc3339()});
    let (status, recorded) = common::api(web, "POST", "/api/v1/cases", &token, Some(&case)).await;
    assert_eq!(status, 201, "{recorded}");
    assert_eq!(recorded["alerts_queued"], 1, "{recorded}");

    // An SMS code queued while alerts are paused still goes out.
    let keys = common::config(run.data_dir.path(), None)
        .load_keys()
        .unwrap();
    let code = OtpCode::generate();
    store
        .otps()
        .issue_otp(
            &NewOtp {
                phone: &Msisdn::parse(OTP_PHONE).unwrap(),
                premises_id: premises.id,
                code: &code,
                expires_at: Utc::now() + chrono::Duration::minutes(5),
                text: otp::sms_text(&code),
            },
            &OtpKey::new(&keys),
            Utc::now(),
        )
        .await
        .unwrap();
    run.until_messages(OTP_PHONE, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = run.messages_to(VISITOR).await;
    assert_eq!(got.len(), 1, "only the confirmation while paused: {got:?}");
    let id = recorded["id"].as_i64().unwrap();
    let (_, report) = common::api(web, "GET", &format!("/api/v1/cases/{id}"), &token, None).await;
    assert_eq!(report["queued"], 1, "{report}");

    let (status, body) = common::api(web, "POST", "/api/v1/alerts/resume", &token, None).await;
    assert_eq!((status, &body), (200, &json!({"alerts_paused": false})));
    let got = run.until_messages(VISITOR, 2).await;
    assert!(
        got[1].contains("находился посетитель с подтвержденным COVID-19"),
        "{got:?}"
    );
    assert!(
        run.messages_to(CASE).await.len() == 1,
        "the case is not alerted"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, report) =
            common::api(web, "GET", &format!("/api/v1/cases/{id}"), &token, None).await;
        if report["queued"] == 0 {
            assert_eq!(report["alerts"], 1, "{report}");
            let out = report["sent"].as_u64().unwrap() + report["delivered"].as_u64().unwrap();
            assert_eq!(out, 1, "{report}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.stop().await;
}

/// The README's examples: `(command, expected output line)` in order.
fn readme_examples() -> Vec<(String, String)> {
    let readme = include_str!("../README.md");
    let start = readme.find("<!-- api-examples:start -->").unwrap();
    let end = readme.find("<!-- api-examples:end -->").unwrap();
    let mut examples = Vec::new();
    for block in readme[start..end].split("```sh\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let mut command = String::new();
        for line in block.lines() {
            if let Some(expected) = line.strip_prefix("# ") {
                examples.push((std::mem::take(&mut command), expected.to_owned()));
            } else {
                command.push_str(line);
                command.push('\n');
            }
        }
        assert!(
            command.trim().is_empty(),
            "a command without its output: {command}"
        );
    }
    examples
}

async fn visit(store: &Store, premises: &Premises, phone: &str, minutes: i64) {
    store
        .checkins()
        .record_checkin(&NewCheckIn {
            phone: Msisdn::parse(phone).unwrap(),
            code: premises.code,
            channel: Channel::Sms,
            at: Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
                + chrono::Duration::minutes(minutes),
            consent: true,
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_example_runs_as_documented() {
    let run = common::start("sqlite", None).await;
    let store = run.gateway.store.clone();
    let premises = run.premises("Тверская ул., 1").await;
    let token = authority_token(&store).await;
    // The README's story: the case and one visitor, 18 Oct 2020 at 20:13.
    visit(&store, &premises, CASE, 0).await;
    visit(&store, &premises, VISITOR, 10).await;
    // A check-in today, so the check-in counter has a value.
    run.send_mo("+79160000003", &format!("ВХОД*{}", premises.code))
        .await;
    run.until_messages("+79160000003", 1).await;

    let examples = readme_examples();
    assert_eq!(examples.len(), 10, "{examples:?}");
    let base = format!("http://{}", run.gateway.web_addr);
    let mut outputs = Vec::new();
    for (command, expected) in &examples {
        let output = Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("CHECKIN", &base)
            .env("TOKEN", &token)
            .output()
            .unwrap();
        assert!(output.status.success(), "{command}: {output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        if let Some(prefix) = expected
            .split('…')
            .next()
            .filter(|_| expected.contains('…'))
        {
            if prefix.starts_with('{') {
                let value: Value = serde_json::from_str(&stdout)
                    .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {stdout}"));
                assert!(value.get("error").is_none(), "{command}: {stdout}");
            } else {
                assert!(stdout.contains(prefix.trim()), "{command}: {stdout}");
            }
        } else if expected.starts_with('{') {
            let got: Value = serde_json::from_str(&stdout).unwrap();
            let want: Value = serde_json::from_str(expected).unwrap();
            assert_eq!(got, want, "{command}");
        } else {
            assert_eq!(stdout.trim(), expected.trim(), "{command}");
        }
        outputs.push(stdout);
    }
    // What the loose lines leave out.
    let batch: Value = serde_json::from_str(&outputs[2]).unwrap();
    assert_eq!(batch["cases"].as_array().unwrap().len(), 2);
    assert_eq!(
        batch["cases"][0]["alerts_queued"], 0,
        "alerted once: {batch}"
    );
    let report: Value = serde_json::from_str(&outputs[3]).unwrap();
    assert_eq!(report["alerts"], 1, "{report}");
    let metrics = &outputs[9];
    for name in [
        "checkin_checkins_total{channel=\"sms\",outcome=\"checked_in\"}",
        "checkin_outbox_depth{priority=\"alert\"}",
        "checkin_http_request_seconds_bucket{route=\"/api/v1/cases\"",
        "smsc_link_submits_total{outcome=\"accepted\",operator=\"default\"}",
        "smsc_link_throttled_total{operator=\"default\"}",
        "smsc_link_submit_rtt_seconds_bucket{operator=\"default\"",
        "smsc_link_binds{operator=\"default\"}",
        "checkin_routed_total{operator=\"default\",source=\"pinned\"}",
        "checkin_mo_total{outcome=\"committed\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    run.stop().await;
}
