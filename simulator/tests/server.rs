//! SMPP server behaviour against a real simulator on 127.0.0.1:0: binds,
//! state errors, garbage, MT storage, receipts, MO delivery and retries.

mod common;

use common::{bind_tx, start, Raw};
use rusmpp::{
    pdus::{BindReceiver, SubmitSm},
    tlvs::TlvValue,
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass, MessageState},
    CommandId, CommandStatus, Pdu,
};
use simulator::{
    config::{DeliveryConfig, ReceiptConfig},
    esme::{simple_submit, Esme, EsmeOptions},
    store::ReceiptStat,
    Config, MoRequest,
};

fn fast_config() -> Config {
    Config {
        receipts: ReceiptConfig {
            delay_ms: 0,
            ..ReceiptConfig::default()
        },
        delivery: DeliveryConfig {
            response_timeout_ms: 300,
            backoff_initial_ms: 10,
            backoff_max_ms: 20,
            attempts_max: 3,
            ..DeliveryConfig::default()
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn bind_checks_credentials_and_state() {
    let run = start(Config::default()).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("nobody", "checkin").await,
        CommandStatus::EsmeRinvsysid
    );
    assert_eq!(
        c.bind_trx("checkin", "wrong").await,
        CommandStatus::EsmeRinvpaswd
    );
    // Submit before bind.
    let r = c
        .call(simple_submit("7377", "+79161234567", b"hi", false))
        .await;
    assert_eq!(
        (r.id(), r.status()),
        (CommandId::SubmitSmResp, CommandStatus::EsmeRinvbndsts)
    );
    // Unbind before bind.
    assert_eq!(
        c.call(Pdu::Unbind).await.status(),
        CommandStatus::EsmeRinvbndsts
    );
    // Enquire link works in any state.
    assert_eq!(
        c.call(Pdu::EnquireLink).await.id(),
        CommandId::EnquireLinkResp
    );
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRalybnd
    );
    let r = c.call(Pdu::Unbind).await;
    assert_eq!(
        (r.id(), r.status()),
        (CommandId::UnbindResp, CommandStatus::EsmeRok)
    );
    assert!(
        c.next_or_eof().await.is_none(),
        "connection closes after unbind"
    );
    let stats = run.sim.stats();
    assert_eq!(stats.binds.total, 1);
    assert_eq!(stats.binds.rejected, 3);
}

#[tokio::test]
async fn receiver_may_not_submit_and_transmitter_gets_no_mo() {
    let run = start(fast_config()).await;
    let mut rx = Raw::connect(run.smpp).await;
    let bind = BindReceiver::builder()
        .system_id(COctetString::from_string("checkin".into()).unwrap())
        .password(COctetString::from_string("checkin".into()).unwrap())
        .build();
    assert_eq!(rx.call(bind).await.status(), CommandStatus::EsmeRok);
    let r = rx
        .call(simple_submit("7377", "79161234567", b"x", false))
        .await;
    assert_eq!(r.status(), CommandStatus::EsmeRinvbndsts);

    let mut tx = Raw::connect(run.smpp).await;
    assert_eq!(
        tx.call(bind_tx("checkin", "checkin")).await.status(),
        CommandStatus::EsmeRok
    );
    assert_eq!(run.sim.receivers_bound(), 1);
}

#[tokio::test]
async fn garbage_gets_generic_nack_and_the_session_survives() {
    let run = start(Config::default()).await;
    let mut c = Raw::connect(run.smpp).await;
    // Unknown command id 0x00000077, seq 5.
    c.send_bytes(&[0, 0, 0, 16, 0, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 5])
        .await;
    let r = c.next().await;
    assert_eq!(
        (r.id(), r.status(), r.sequence_number()),
        (CommandId::GenericNack, CommandStatus::EsmeRinvcmdid, 5)
    );
    // bind_transmitter with a body cut short (no NULs), seq 6.
    c.send_bytes(&[
        0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 6, b'a', b'b', b'c', b'd',
    ])
    .await;
    let r = c.next().await;
    assert_eq!(
        (r.id(), r.status(), r.sequence_number()),
        (CommandId::GenericNack, CommandStatus::EsmeRinvcmdlen, 6)
    );
    // Over-long command_length: skipped, nacked.
    let mut big = vec![0, 0, 0x40, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 7];
    big.resize(0x4000, 0x55);
    c.send_bytes(&big).await;
    let r = c.next().await;
    assert_eq!(
        (r.id(), r.status(), r.sequence_number()),
        (CommandId::GenericNack, CommandStatus::EsmeRinvcmdlen, 7)
    );
    assert_eq!(
        c.call(Pdu::EnquireLink).await.status(),
        CommandStatus::EsmeRok
    );
}

#[tokio::test]
async fn bad_submits_get_the_smpp_error() {
    let run = start(Config::default()).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    let bad_dcs =
        simple_submit("7377", "79161234567", b"x", false).with_data_coding(DataCoding::Other(0x05));
    assert_eq!(c.call(bad_dcs).await.status(), CommandStatus::EsmeRinvdcs);
    let long = simple_submit("7377", "79161234567", &[b'a'; 200], false);
    assert_eq!(c.call(long).await.status(), CommandStatus::EsmeRinvmsglen);
    let odd_ucs2 = simple_submit("7377", "79161234567", &[0x04, 0x12, 0x04], false)
        .with_data_coding(DataCoding::Ucs2);
    assert_eq!(
        c.call(odd_ucs2).await.status(),
        CommandStatus::EsmeRinvmsglen
    );
    let ok = c
        .call(simple_submit("7377", "79161234567", b"fine", false))
        .await;
    assert_eq!(ok.status(), CommandStatus::EsmeRok);
}

#[tokio::test]
async fn submit_is_stored_and_receipt_follows() {
    let run = start(fast_config()).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    let r = c
        .call(simple_submit("7377", "+79161234567", b"Hello there", true))
        .await;
    assert_eq!(r.status(), CommandStatus::EsmeRok);
    let Some(Pdu::SubmitSmResp(resp)) = r.pdu() else {
        panic!("no body")
    };
    let message_id = resp.message_id().as_str().to_string();
    assert_eq!(message_id, "00000001");

    let receipt = c.next().await;
    let Some(Pdu::DeliverSm(d)) = receipt.pdu() else {
        panic!("expected deliver_sm, got {receipt:?}")
    };
    assert_eq!(u8::from(d.esm_class), 0x04);
    let text = String::from_utf8(d.short_message().as_ref().to_vec()).unwrap();
    assert!(
        text.starts_with(&format!("id:{message_id} sub:001 dlvrd:001 submit date:")),
        "{text}"
    );
    assert!(
        text.ends_with("stat:DELIVRD err:000 text:Hello there"),
        "{text}"
    );
    let tlvs: Vec<_> = d.tlvs().iter().filter_map(|t| t.value()).collect();
    assert!(tlvs.contains(&&TlvValue::ReceiptedMessageId(
        COctetString::from_string(message_id.clone()).unwrap()
    )));
    assert!(tlvs.contains(&&TlvValue::MessageState(MessageState::Delivered)));
    c.respond(
        receipt.sequence_number(),
        rusmpp::pdus::DeliverSmResp::default(),
    )
    .await;

    let messages = run.sim.messages(Some("+79161234567"), 10);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, "Hello there");
    // The receipt state is recorded before the deliver_sm goes out.
    assert_eq!(messages[0].receipt, Some(ReceiptStat::Delivered));
}

#[tokio::test]
async fn no_receipt_unless_asked() {
    let run = start(fast_config()).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    c.call(simple_submit("7377", "79160000001", b"a", false))
        .await;
    // The next PDU must be the enquire_link_resp, not a receipt.
    let r = c.call(Pdu::EnquireLink).await;
    assert_eq!(r.id(), CommandId::EnquireLinkResp);
    assert_eq!(run.sim.stats().receipts.produced, 0);
}

#[tokio::test]
async fn concatenated_mt_udh16_sar_and_payload_are_reassembled() {
    let run = start(fast_config()).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    // Two UCS2 parts with a 16-bit reference UDH, sent in reverse order.
    let text = "Привет, мир";
    let ucs2: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let (a, b) = ucs2.split_at(8);
    for (n, chunk) in [(2u8, b), (1u8, a)] {
        let mut sm = vec![0x06, 0x08, 0x04, 0xAB, 0xCD, 0x02, n];
        sm.extend_from_slice(chunk);
        let submit = SubmitSm::builder()
            .source_addr(COctetString::from_string("7377".into()).unwrap())
            .destination_addr(COctetString::from_string("79160000002".into()).unwrap())
            .esm_class(EsmClass::from(0x40))
            .data_coding(DataCoding::Ucs2)
            .short_message(OctetString::from_vec(sm).unwrap())
            .build();
        assert_eq!(c.call(submit).await.status(), CommandStatus::EsmeRok);
    }
    let m = run.sim.messages(Some("79160000002"), 10);
    assert_eq!(m.len(), 1);
    assert!(m[0].complete);
    assert_eq!(m[0].text, text);

    // SAR TLVs, GSM 7-bit.
    for (n, chunk) in [(1u8, "Hello, "), (2u8, "world")] {
        let mut submit = simple_submit("7377", "79160000003", chunk.as_bytes(), false);
        submit.push_tlv(rusmpp::tlvs::MessageSubmissionRequestTlvValue::SarMsgRefNum(9));
        submit.push_tlv(rusmpp::tlvs::MessageSubmissionRequestTlvValue::SarTotalSegments(2));
        submit.push_tlv(rusmpp::tlvs::MessageSubmissionRequestTlvValue::SarSegmentSeqnum(n));
        assert_eq!(c.call(submit).await.status(), CommandStatus::EsmeRok);
    }
    assert_eq!(
        run.sim.messages(Some("79160000003"), 10)[0].text,
        "Hello, world"
    );

    // message_payload, Latin-1.
    let mut submit =
        simple_submit("7377", "79160000004", b"", false).with_data_coding(DataCoding::Latin1);
    submit.push_tlv(
        rusmpp::tlvs::MessageSubmissionRequestTlvValue::MessagePayload(
            rusmpp::values::MessagePayload::new(rusmpp::types::AnyOctetString::from_vec(
                b"caf\xe9 ".repeat(60),
            )),
        ),
    );
    assert_eq!(c.call(submit).await.status(), CommandStatus::EsmeRok);
    assert_eq!(
        run.sim.messages(Some("79160000004"), 10)[0].text,
        "café ".repeat(60)
    );

    // Packed GSM 7-bit: "hellohello".
    let packed = simple_submit(
        "7377",
        "79160000005",
        &[0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37],
        false,
    );
    assert_eq!(c.call(packed).await.status(), CommandStatus::EsmeRok);
    assert_eq!(
        run.sim.messages(Some("79160000005"), 10)[0].text,
        "hellohello"
    );
}

#[tokio::test]
async fn mo_is_delivered_and_retried_until_the_esme_accepts() {
    let run = start(fast_config()).await;
    let mut esme = Esme::connect(run.smpp, EsmeOptions::default())
        .await
        .unwrap();
    let report = run
        .sim
        .inject_mo(MoRequest::new("+79161234567", "ВХОД*123-456-789"))
        .await
        .unwrap();
    assert_eq!(
        (report.status.as_str(), report.attempts, report.parts),
        ("ESME_ROK", 1, 1)
    );
    let d = esme.next_deliver().await.unwrap();
    assert_eq!(d.destination_addr.as_str(), "7377");
    assert_eq!(d.source_addr.as_str(), "79161234567");
    assert_eq!(d.data_coding, DataCoding::Ucs2);

    // The ESME answers a temporary error: every attempt is used.
    esme.set_deliver_status(CommandStatus::EsmeRxTAppn);
    let report = run
        .sim
        .inject_mo(MoRequest::new("+79161234567", "x"))
        .await
        .unwrap();
    assert_eq!(
        (report.status.as_str(), report.attempts, report.delivered),
        ("ESME_RX_T_APPN", 3, false)
    );
    assert_eq!(run.sim.stats().esme_errors.get("ESME_RX_T_APPN"), Some(&3));
}

#[tokio::test]
async fn mo_without_receiver_is_refused() {
    let run = start(fast_config()).await;
    let err = run
        .sim
        .inject_mo(MoRequest::new("+79161234567", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, simulator::Error::NoReceiver));
}

#[tokio::test]
async fn shutdown_unbinds_sessions_and_returns() {
    let run = start(Config::default()).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    run.shutdown.cancel();
    let unbind = c.next().await;
    assert_eq!(unbind.id(), CommandId::Unbind);
    c.respond(unbind.sequence_number(), Pdu::UnbindResp).await;
    run.smpp_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn journal_records_every_pdu_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let run = start(Config {
        journal_path: Some(path.clone()),
        ..Config::default()
    })
    .await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    c.call(Pdu::EnquireLink).await;
    run.sim.flush_journal().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["dir"].as_str().unwrap().to_string(),
                l["command"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("in".to_string(), "bind_transceiver".to_string()),
            ("out".to_string(), "bind_transceiver_resp".to_string()),
            ("in".to_string(), "enquire_link".to_string()),
            ("out".to_string(), "enquire_link_resp".to_string()),
        ]
    );
    assert_eq!(lines[1]["status"], "ESME_ROK");
}

#[tokio::test]
async fn many_esmes_at_once() {
    let run = start(fast_config()).await;
    let mut esmes = Vec::new();
    for _ in 0..20 {
        esmes.push(
            Esme::connect(run.smpp, EsmeOptions::default())
                .await
                .unwrap(),
        );
    }
    assert_eq!(run.sim.receivers_bound(), 20);
    let submits = esmes.iter().enumerate().map(|(i, esme)| async move {
        let r = esme
            .submit_text("7377", &format!("7916000{i:04}"), "hi", false)
            .await
            .unwrap();
        r.status()
    });
    let statuses = futures::future::join_all(submits).await;
    assert!(statuses.iter().all(|s| *s == CommandStatus::EsmeRok));
    // MOs are spread round-robin over the receivers.
    for _ in 0..40 {
        let report = run
            .sim
            .inject_mo(MoRequest::new("+79161234567", "x"))
            .await
            .unwrap();
        assert!(report.delivered);
    }
    for esme in &mut esmes {
        assert!(esme.next_deliver().await.is_some());
    }
    assert_eq!(run.sim.stats().binds.current.get("transceiver"), Some(&20));
}

#[tokio::test]
async fn long_mo_is_split_with_udh() {
    let run = start(fast_config()).await;
    let mut esme = Esme::connect(run.smpp, EsmeOptions::default())
        .await
        .unwrap();
    let text = "Проверка связи: ".repeat(12); // 192 characters, UCS2
    let report = run
        .sim
        .inject_mo(MoRequest::new("+79161234567", text.clone()))
        .await
        .unwrap();
    assert_eq!(
        (report.parts, report.attempts, report.delivered),
        (3, 3, true)
    );
    let mut units = Vec::new();
    for n in 1..=3u8 {
        let d = esme.next_deliver().await.unwrap();
        assert_eq!(u8::from(d.esm_class) & 0x40, 0x40, "UDHI set");
        let sm = d.short_message().as_ref();
        let (info, header_len) = simulator::text::split_udh(sm).unwrap();
        let info = info.unwrap();
        assert_eq!((info.total, info.number), (3, n));
        units.extend_from_slice(&sm[header_len..]);
    }
    let joined = simulator::text::decode_units(simulator::text::Encoding::Ucs2, &units).unwrap();
    assert_eq!(joined, text);
}

#[tokio::test]
async fn unanswered_mo_is_retried_up_to_the_limit() {
    let mut config = fast_config();
    config.delivery.response_timeout_ms = 100;
    let run = start(config).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    let sim = run.sim.clone();
    let injected =
        tokio::spawn(async move { sim.inject_mo(MoRequest::new("+79161234567", "x")).await });
    let mut seen = Vec::new();
    for _ in 0..3 {
        let d = c.next().await;
        assert_eq!(d.id(), CommandId::DeliverSm);
        seen.push(d.sequence_number());
    }
    let report = injected.await.unwrap().unwrap();
    assert_eq!(
        (report.status.as_str(), report.status_code, report.attempts),
        ("NO_ANSWER", None, 3)
    );
    seen.dedup();
    assert_eq!(seen.len(), 3, "each attempt has its own sequence number");
}

#[tokio::test]
async fn window_limits_unanswered_deliver_sm() {
    let mut config = fast_config();
    config.limits.outbound_window_max = 2;
    config.delivery.response_timeout_ms = 10_000;
    let run = start(config).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    let mut tasks = Vec::new();
    for i in 0..3 {
        let sim = run.sim.clone();
        tasks.push(tokio::spawn(async move {
            sim.inject_mo(MoRequest::new(format!("+7916000000{i}"), "x"))
                .await
        }));
    }
    let first = c.next().await;
    let second = c.next().await;
    assert_eq!(
        (first.id(), second.id()),
        (CommandId::DeliverSm, CommandId::DeliverSm)
    );
    // With two unanswered, the third waits: the next PDU answers our enquire_link.
    let r = c.call(Pdu::EnquireLink).await;
    assert_eq!(r.id(), CommandId::EnquireLinkResp);
    c.respond(
        first.sequence_number(),
        rusmpp::pdus::DeliverSmResp::default(),
    )
    .await;
    let third = c.next().await;
    assert_eq!(third.id(), CommandId::DeliverSm);
    c.respond(
        second.sequence_number(),
        rusmpp::pdus::DeliverSmResp::default(),
    )
    .await;
    c.respond(
        third.sequence_number(),
        rusmpp::pdus::DeliverSmResp::default(),
    )
    .await;
    for t in tasks {
        assert!(t.await.unwrap().unwrap().delivered);
    }
}

#[tokio::test]
async fn receipt_mix_and_failure_only_receipts() {
    let mut config = fast_config();
    config.receipts = ReceiptConfig {
        delay_ms: 0,
        delivered_pct: 0.0,
        undeliverable_pct: 100.0,
        expired_pct: 0.0,
        ..ReceiptConfig::default()
    };
    config.message_id_format = simulator::MessageIdFormat::Decimal;
    let run = start(config).await;
    let mut c = Raw::connect(run.smpp).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    // registered_delivery 2: receipt on failure only, and this one fails.
    let mut submit = simple_submit("7377", "79160000009", b"x", false);
    submit.registered_delivery = 2.into();
    let r = c.call(submit).await;
    let Some(Pdu::SubmitSmResp(resp)) = r.pdu() else {
        panic!("no body")
    };
    assert_eq!(resp.message_id().as_str(), "1");
    let receipt = c.next().await;
    let Some(Pdu::DeliverSm(d)) = receipt.pdu() else {
        panic!("expected receipt")
    };
    let text = String::from_utf8(d.short_message().as_ref().to_vec()).unwrap();
    assert!(
        text.contains("dlvrd:000") && text.contains("stat:UNDELIV err:001"),
        "{text}"
    );
    let states: Vec<_> = d.tlvs().iter().filter_map(|t| t.value()).collect();
    assert!(states.contains(&&TlvValue::MessageState(MessageState::Undeliverable)));
}
