//! The control API over real HTTP on 127.0.0.1:0.

mod common;

use common::{http, start};
use simulator::{esme::Esme, esme::EsmeOptions, Config};

#[tokio::test]
async fn mo_messages_stats_faults_and_phone() {
    let run = start(Config::default()).await;

    // No receiver bound yet: 503.
    let body = r#"{"from":"+79161234567","to":"7377","text":"ВХОД*123-456-789","encoding":"ucs2"}"#;
    let (status, _) = http(run.http, "POST", "/api/mo", Some(body)).await;
    assert_eq!(status, 503);

    let mut esme = Esme::connect(
        run.smpp,
        EsmeOptions {
            reply_to_mo: true,
            ..EsmeOptions::default()
        },
    )
    .await
    .unwrap();
    let (status, answer) = http(run.http, "POST", "/api/mo", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["status"], "ESME_ROK");
    assert_eq!(answer["status_code"], 0);
    assert_eq!(answer["attempts"], 1);
    assert!(answer["id"].as_str().unwrap().starts_with("mo-"));
    let mo = esme.next_deliver().await.unwrap();
    assert_eq!(mo.short_message().as_ref().len(), 32);

    // The ESME replied "OK": visible by number, '+' or not.
    let mut rx = run.sim.subscribe_mt();
    if run.sim.messages(Some("79161234567"), 10).is_empty() {
        rx.recv().await.unwrap();
    }
    let (status, list) = http(run.http, "GET", "/api/messages?to=%2B79161234567", None).await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["messages"][0]["text"], "OK");
    assert_eq!(list["messages"][0]["to"], "79161234567");

    let (_, stats) = http(run.http, "GET", "/api/stats", None).await;
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["binds"]["current"]["transceiver"], 1);
    assert_eq!(stats["pdus_out"]["deliver_sm"], 1);
    assert_eq!(stats["pdus_in"]["deliver_sm_resp"], 1);

    let (status, _) = http(
        run.http,
        "PUT",
        "/api/faults",
        Some(r#"{"drop_response_share":2}"#),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = http(run.http, "PUT", "/api/faults", Some(r#"{"nonsense":1}"#)).await;
    assert_eq!(status, 422);
    let (status, faults) = http(
        run.http,
        "PUT",
        "/api/faults",
        Some(r#"{"seed":1,"throttle_per_s":5}"#),
    )
    .await;
    assert_eq!(status, 200, "{faults}");
    assert_eq!(run.sim.faults().throttle_per_s, Some(5));

    let (status, page) = http(run.http, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("7377"));
    assert!(page.contains("/api/mo"));
}
