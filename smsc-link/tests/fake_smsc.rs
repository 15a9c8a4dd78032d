//! The link against a scripted SMSC for what the simulator does not do:
//! a disconnect with a full window, MO with 16-bit references, SAR TLVs
//! and `message_payload`, receipts in every id style arriving before their
//! `submit_sm_resp`.

mod common;

use std::sync::atomic::Ordering;

use common::{link_config, next_event, recorder, Conn, Event, Fake, Slow};
use rusmpp::{
    pdus::{DeliverSm, SubmitSmResp},
    tlvs::{MessageDeliveryRequestTlvValue, TlvTag, TlvValue},
    types::{AnyOctetString, COctetString, OctetString},
    values::{
        DataCoding, EsmClass, ItsSessionInfo, MessagePayload, MessageState, Npi, Ton, UssdServiceOp,
    },
    Command, CommandId, CommandStatus, Pdu,
};
use smsc_link::{
    DeliveryState, HandlerError, IdRadix, Link, LinkConfig, Mo, MoAnswer, MoHandler, PartAck,
    ReceiptHandler, Reply, SubmitOptions, SubmitOutcome, Tlv,
};

const PHONE: &str = "+79161234567";

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// An MO `deliver_sm` from PHONE to 7377.
fn mo(data_coding: u8, esm_class: u8, short_message: Vec<u8>) -> DeliverSm {
    DeliverSm::builder()
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(COctetString::from_string("79161234567".into()).expect("address"))
        .destination_addr(COctetString::from_string("7377".into()).expect("address"))
        .esm_class(EsmClass::from(esm_class))
        .data_coding(DataCoding::from(data_coding))
        .short_message(OctetString::from_vec(short_message).expect("fits"))
        .build()
}

async fn start_link(
    config: LinkConfig,
    fail_mo: usize,
) -> (Link, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let (handler, events) = recorder(fail_mo);
    let link = Link::start(config, handler.clone(), handler).expect("config");
    (link, events)
}

fn submit_resp(seq: u32, id: &str) -> Command {
    let resp = SubmitSmResp::builder()
        .message_id(COctetString::from_string(id.into()).expect("id"))
        .build();
    Command::new(CommandStatus::EsmeRok, seq, resp)
}

async fn read_submit(conn: &mut Conn) -> u32 {
    let c = conn.read().await;
    assert!(matches!(c.pdu(), Some(Pdu::SubmitSm(_))), "{c:?}");
    c.sequence_number()
}

#[tokio::test]
async fn a_disconnect_with_a_full_window_reports_every_submit_unknown() {
    let fake = Fake::start().await;
    let config = LinkConfig {
        window_max: 5,
        ..link_config(fake.addr)
    };
    let (link, _events) = start_link(config, 0).await;
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let mut replies = Vec::new();
    for i in 0..7 {
        let reply = link
            .enqueue(PHONE, &format!("m{i}"), &SubmitOptions::default())
            .await
            .expect("queued");
        replies.push(reply);
    }
    for _ in 0..5 {
        read_submit(&mut conn).await;
    }
    conn.close().await;
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    // The two never written go out on the new bind; the five in doubt do not.
    for n in 0..2 {
        let seq = read_submit(&mut conn).await;
        conn.send(submit_resp(seq, &format!("{}", 100 + n))).await;
    }
    let marker = link
        .enqueue(PHONE, "marker", &SubmitOptions::default())
        .await
        .expect("queued");
    let seq = read_submit(&mut conn).await;
    conn.send(submit_resp(seq, "200")).await;
    let mut outcomes = Vec::new();
    for reply in replies {
        outcomes.push(reply.await.expect("answered").expect("sent"));
    }
    let unknown = SubmitOutcome::Unknown {
        accepted_ids: vec![],
    };
    assert_eq!(outcomes[..5], vec![unknown; 5][..]);
    assert_eq!(
        outcomes[5..],
        [
            SubmitOutcome::Accepted {
                message_ids: vec!["100".into()]
            },
            SubmitOutcome::Accepted {
                message_ids: vec!["101".into()]
            }
        ]
    );
    assert!(matches!(
        marker.await.expect("answered"),
        Ok(SubmitOutcome::Accepted { .. })
    ));
    drop(conn);
    link.shutdown().await;
}

#[tokio::test]
async fn multipart_mo_with_16_bit_references_sar_tlvs_and_payload() {
    let fake = Fake::start().await;
    let (link, mut events) = start_link(link_config(fake.addr), 0).await;
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let parts = ["ВХОД*123-", "456-", "789 спасибо"];
    let text: String = parts.concat();

    // 16-bit reference UDH, parts out of order.
    let mut seqs = Vec::new();
    for i in [1usize, 2, 0] {
        let mut sm = vec![6, 8, 4, 0xbe, 0xef, 3, i as u8 + 1];
        sm.extend(ucs2(parts[i]));
        seqs.push(conn.request(mo(8, 0x40, sm)).await);
    }
    for seq in seqs {
        assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRok);
    }
    match next_event(&mut events).await {
        Event::Mo(m) => assert_eq!((m.text.as_str(), m.parts), (text.as_str(), 3)),
        other => panic!("{other:?}"),
    }

    // SAR TLVs.
    let mut seqs = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let pdu = mo(8, 0, ucs2(part)).with_tlvs_for_test(vec![
            MessageDeliveryRequestTlvValue::SarMsgRefNum(0x1234),
            MessageDeliveryRequestTlvValue::SarTotalSegments(3),
            MessageDeliveryRequestTlvValue::SarSegmentSeqnum(i as u8 + 1),
        ]);
        seqs.push(conn.request(pdu).await);
    }
    for seq in seqs {
        assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRok);
    }
    match next_event(&mut events).await {
        Event::Mo(m) => assert_eq!(m.text, text),
        other => panic!("{other:?}"),
    }

    // The whole text in message_payload, short_message empty.
    let long = "Очень длинное сообщение ".repeat(10);
    let pdu =
        mo(8, 0, vec![]).with_tlvs_for_test(vec![MessageDeliveryRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_vec(ucs2(&long))),
        )]);
    let seq = conn.request(pdu).await;
    assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRok);
    match next_event(&mut events).await {
        Event::Mo(m) => assert_eq!(m.text, long),
        other => panic!("{other:?}"),
    }
    drop(conn);
    link.shutdown().await;
}

#[tokio::test]
async fn a_multipart_mo_whose_handler_fails_completes_again_on_redelivery() {
    for part_ack in [PartAck::OnArrival, PartAck::Hold] {
        let fake = Fake::start().await;
        let config = LinkConfig {
            part_ack,
            ..link_config(fake.addr)
        };
        let (link, mut events) = start_link(config, 1).await;
        let mut conn = fake.accept(CommandStatus::EsmeRok).await;
        let part = |n: u8, text: &str| {
            let mut sm = vec![5, 0, 3, 77, 2, n];
            sm.extend(ucs2(text));
            mo(8, 0x40, sm)
        };
        let first = conn.request(part(1, "ВХОД*123-")).await;
        let second = conn.request(part(2, "456-789")).await;
        let (s1, s2) = (
            conn.response_to(first).await,
            conn.response_to(second).await,
        );
        assert!(matches!(next_event(&mut events).await, Event::MoFailed(_)));
        match part_ack {
            // Only the completing part is refused; the SMSC sends it again.
            PartAck::OnArrival => {
                assert_eq!(
                    (s1, s2),
                    (CommandStatus::EsmeRok, CommandStatus::EsmeRxTAppn)
                );
                let again = conn.request(part(2, "456-789")).await;
                assert_eq!(conn.response_to(again).await, CommandStatus::EsmeRok);
            }
            // Both parts are refused; the SMSC sends both again.
            PartAck::Hold => {
                assert_eq!(
                    (s1, s2),
                    (CommandStatus::EsmeRxTAppn, CommandStatus::EsmeRxTAppn)
                );
                let a = conn.request(part(1, "ВХОД*123-")).await;
                let b = conn.request(part(2, "456-789")).await;
                assert_eq!(conn.response_to(a).await, CommandStatus::EsmeRok);
                assert_eq!(conn.response_to(b).await, CommandStatus::EsmeRok);
            }
        }
        match next_event(&mut events).await {
            Event::Mo(m) => assert_eq!(m.text, "ВХОД*123-456-789"),
            other => panic!("{other:?}"),
        }
        drop(conn);
        link.shutdown().await;
    }
}

/// How the receipt of one case is written.
enum Format {
    Text(&'static str),
    Tlv(&'static str, MessageState),
}

#[tokio::test]
async fn receipts_in_every_format_and_id_style_find_their_submit() {
    // (submit radix, receipt radix, id in submit_sm_resp, receipt, state)
    let table = [
        (
            IdRadix::Auto,
            IdRadix::Auto,
            "0000002a",
            Format::Text("id:0000002A sub:001 dlvrd:001 submit date:2611271430 done date:2611271431 stat:DELIVRD err:000 text:"),
            DeliveryState::Delivered,
        ),
        (
            IdRadix::Hex,
            IdRadix::Decimal,
            "0000002A",
            Format::Text("id:42 sub:001 dlvrd:000 submit date:2611271430 done date:2611271431 stat:EXPIRED err:001 text:"),
            DeliveryState::Expired,
        ),
        (
            IdRadix::Decimal,
            IdRadix::Hex,
            "42",
            Format::Tlv("2a", MessageState::Undeliverable),
            DeliveryState::Undeliverable,
        ),
    ];
    for (submit_id_radix, receipt_id_radix, resp_id, format, state) in table {
        let fake = Fake::start().await;
        let config = LinkConfig {
            submit_id_radix,
            receipt_id_radix,
            ..link_config(fake.addr)
        };
        let (link, mut events) = start_link(config, 0).await;
        let mut conn = fake.accept(CommandStatus::EsmeRok).await;
        let options = SubmitOptions {
            registered_delivery: true,
            ..SubmitOptions::default()
        };
        let submit = {
            let link = link.clone();
            tokio::spawn(async move { link.submit(PHONE, "hi", options).await })
        };
        let seq = read_submit(&mut conn).await;
        // The receipt overtakes the submit_sm_resp.
        let receipt = match &format {
            Format::Text(text) => mo(0, 0x04, text.as_bytes().to_vec()),
            Format::Tlv(id, state) => mo(0, 0x04, vec![]).with_tlvs_for_test(vec![
                MessageDeliveryRequestTlvValue::ReceiptedMessageId(
                    COctetString::from_string(id.to_string()).expect("id"),
                ),
                MessageDeliveryRequestTlvValue::MessageState(*state),
            ]),
        };
        let receipt_seq = conn.request(receipt).await;
        conn.send(submit_resp(seq, resp_id)).await;
        assert_eq!(conn.response_to(receipt_seq).await, CommandStatus::EsmeRok);
        let ids = match submit.await.expect("task") {
            Ok(SubmitOutcome::Accepted { message_ids }) => message_ids,
            other => panic!("{other:?}"),
        };
        // A known radix gives the decimal value; `auto` the id as written.
        let expected = match submit_id_radix {
            IdRadix::Auto => "2a",
            _ => "42",
        };
        assert_eq!(ids, [expected]);
        match next_event(&mut events).await {
            Event::Receipt(r) => {
                assert_eq!(r.message_id, ids[0]);
                assert_eq!(r.state, state);
            }
            other => panic!("{other:?}"),
        }
        drop(conn);
        link.shutdown().await;
    }
}

/// Test-only: a `deliver_sm` with TLVs.
trait WithTlvs {
    fn with_tlvs_for_test(self, tlvs: Vec<MessageDeliveryRequestTlvValue>) -> Self;
}

impl WithTlvs for DeliverSm {
    fn with_tlvs_for_test(mut self, tlvs: Vec<MessageDeliveryRequestTlvValue>) -> Self {
        self.set_tlvs(tlvs);
        self
    }
}

#[tokio::test]
async fn a_message_not_sent_in_time_expires_and_is_never_sent() {
    let fake = Fake::start().await;
    let (link, _events) = start_link(link_config(fake.addr), 0).await;
    // No bind yet: the message waits in the queue and expires.
    let options = SubmitOptions {
        send_within: Some(std::time::Duration::from_millis(100)),
        ..SubmitOptions::default()
    };
    assert!(matches!(
        link.submit(PHONE, "код 1234", options).await,
        Err(smsc_link::Error::Expired)
    ));
    // Once bound, the next submit is the first one written.
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let marker = link
        .enqueue(PHONE, "marker", &SubmitOptions::default())
        .await
        .expect("queued");
    let submit = conn.read().await;
    match submit.pdu() {
        Some(Pdu::SubmitSm(sm)) => assert_eq!(sm.short_message().as_ref(), b"marker"),
        other => panic!("{other:?}"),
    }
    conn.send(submit_resp(submit.sequence_number(), "1")).await;
    assert!(matches!(
        marker.await.expect("answered"),
        Ok(SubmitOutcome::Accepted { .. })
    ));
    drop(conn);
    link.shutdown().await;
}

#[tokio::test]
async fn an_enqueued_message_past_its_deadline_is_answered_expired_by_the_bind() {
    let fake = Fake::start().await;
    let (link, _events) = start_link(link_config(fake.addr), 0).await;
    // No bind yet: queued with a deadline nobody but the session checks.
    let options = SubmitOptions {
        send_within: Some(std::time::Duration::from_millis(50)),
        ..SubmitOptions::default()
    };
    let late = link
        .enqueue(PHONE, "код 1234", &options)
        .await
        .expect("queued");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let marker = link
        .enqueue(PHONE, "marker", &SubmitOptions::default())
        .await
        .expect("queued");
    assert!(matches!(
        late.await.expect("answered"),
        Err(smsc_link::Error::Expired)
    ));
    // The expired one was never written: the marker is the first submit.
    let submit = conn.read().await;
    match submit.pdu() {
        Some(Pdu::SubmitSm(sm)) => assert_eq!(sm.short_message().as_ref(), b"marker"),
        other => panic!("{other:?}"),
    }
    conn.send(submit_resp(submit.sequence_number(), "1")).await;
    assert!(matches!(
        marker.await.expect("answered"),
        Ok(SubmitOutcome::Accepted { .. })
    ));
    drop(conn);
    link.shutdown().await;
}

/// An SMSC keeping 200 `deliver_sm` outstanding to a link whose MO handler
/// is slow never gets a temporary error: at `deliveries_in_flight_max` the
/// link stops reading (and its submits still complete); under the default
/// limit all 200 are handled at once.
#[tokio::test]
async fn an_smsc_window_of_200_deliveries_is_never_answered_a_temporary_error() {
    const WINDOW: usize = 200;
    for limit in [None, Some(16)] {
        let fake = Fake::start().await;
        let mut config = LinkConfig {
            window_max: 1,
            ..link_config(fake.addr)
        };
        if let Some(limit) = limit {
            config.deliveries_in_flight_max = limit;
        }
        let handler = Slow::default();
        let link = Link::start(config, handler.clone(), handler.clone()).expect("config");
        let mut conn = fake.accept(CommandStatus::EsmeRok).await;
        let mut seqs = Vec::new();
        for i in 0..WINDOW {
            let text = format!("ВХОД*123-456-{i:03}");
            seqs.push(conn.request(mo(8, 0, ucs2(&text))).await);
        }
        let held = limit.unwrap_or(WINDOW);
        handler.wait_seen(held).await;

        // While the handlers hold every slot, a submit still goes out and
        // its response is read.
        let reply = link
            .enqueue(PHONE, "hi", &SubmitOptions::default())
            .await
            .expect("queued");
        let submit = conn.read().await;
        assert!(matches!(submit.pdu(), Some(Pdu::SubmitSm(_))), "{submit:?}");
        conn.send(submit_resp(submit.sequence_number(), "7")).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(handler.seen.load(Ordering::SeqCst), held, "limit {limit:?}");

        handler.release.add_permits(WINDOW);
        let mut statuses = std::collections::HashMap::new();
        for _ in 0..WINDOW {
            let resp = conn.read().await;
            assert_eq!(resp.id(), CommandId::DeliverSmResp, "{resp:?}");
            assert!(seqs.contains(&resp.sequence_number()));
            statuses.insert(resp.sequence_number(), resp.status());
        }
        assert_eq!(statuses.len(), WINDOW);
        assert!(
            statuses.values().all(|s| *s == CommandStatus::EsmeRok),
            "limit {limit:?}: {statuses:?}"
        );
        assert!(handler.running_most.load(Ordering::SeqCst) <= held);
        // Reading paused for seconds does not cost the submit its outcome.
        assert_eq!(
            reply.await.expect("answered").expect("sent"),
            SubmitOutcome::Accepted {
                message_ids: vec!["7".into()]
            }
        );
        drop(conn);
        link.shutdown().await;
    }
}

/// `registered_delivery` is set on every segment of a long message (and on
/// none without it), and each segment's receipt reaches the handler with
/// the normalized id the caller got in `Accepted`.
#[tokio::test]
async fn every_segment_asks_for_a_receipt_and_each_receipt_finds_its_id() {
    let fake = Fake::start().await;
    let config = LinkConfig {
        submit_id_radix: IdRadix::Hex,
        receipt_id_radix: IdRadix::Decimal,
        ..link_config(fake.addr)
    };
    let (link, mut events) = start_link(config, 0).await;
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let long = "Уведомление о возможном контакте. ".repeat(4);
    for wanted in [false, true] {
        let submit = {
            let link = link.clone();
            let long = long.clone();
            let options = SubmitOptions {
                registered_delivery: wanted,
                ..SubmitOptions::default()
            };
            tokio::spawn(async move { link.submit(PHONE, &long, options).await })
        };
        for n in 0..3u32 {
            let c = conn.read().await;
            let Some(Pdu::SubmitSm(sm)) = c.pdu() else {
                panic!("{c:?}")
            };
            assert_eq!(
                u8::from(sm.registered_delivery),
                u8::from(wanted),
                "segment {n}"
            );
            let id = format!("{:08X}", 0xA0 + n + if wanted { 16 } else { 0 });
            conn.send(submit_resp(c.sequence_number(), &id)).await;
        }
        let ids = match submit.await.expect("task") {
            Ok(SubmitOutcome::Accepted { message_ids }) => message_ids,
            other => panic!("{other:?}"),
        };
        if !wanted {
            assert_eq!(ids, ["160", "161", "162"]);
            continue;
        }
        assert_eq!(ids, ["176", "177", "178"]);
        for id in &ids {
            let text = format!(
                "id:{id} sub:001 dlvrd:001 submit date:2611271430 done date:2611271431 stat:DELIVRD err:000 text:"
            );
            let seq = conn.request(mo(0, 0x04, text.into_bytes())).await;
            assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRok);
            match next_event(&mut events).await {
                Event::Receipt(r) => {
                    assert_eq!(&r.message_id, id);
                    assert_eq!(r.state, DeliveryState::Delivered);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    drop(conn);
    link.shutdown().await;
}

/// An MO keeps every TLV it arrived with (a USSD dialog's
/// `ussd_service_op` and `its_session_info` among them), and a submit
/// carries the TLVs its options name, on every segment.
#[tokio::test]
async fn tlvs_arrive_with_the_mo_and_leave_with_the_submit() {
    let fake = Fake::start().await;
    let (link, mut events) = start_link(link_config(fake.addr), 0).await;
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;

    let pdu = mo(0, 0, b"*100#".to_vec()).with_tlvs_for_test(vec![
        MessageDeliveryRequestTlvValue::UssdServiceOp(UssdServiceOp::PssrIndication),
        MessageDeliveryRequestTlvValue::ItsSessionInfo(ItsSessionInfo::new(7, 0)),
        MessageDeliveryRequestTlvValue::Other {
            tag: TlvTag::from(0x1400),
            value: AnyOctetString::from_vec(vec![0xca, 0xfe]),
        },
    ]);
    let seq = conn.request(pdu).await;
    assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRok);
    match next_event(&mut events).await {
        Event::Mo(m) => {
            assert_eq!(m.text, "*100#");
            assert_eq!(
                m.tlvs,
                [
                    Tlv::new(Tlv::USSD_SERVICE_OP, [0x01]),
                    Tlv::new(Tlv::ITS_SESSION_INFO, [0x07, 0x00]),
                    Tlv::new(0x1400, [0xca, 0xfe]),
                ]
            );
        }
        other => panic!("{other:?}"),
    }

    let options = SubmitOptions {
        tlvs: vec![
            Tlv::new(Tlv::USSD_SERVICE_OP, [0x11]),
            Tlv::new(Tlv::ITS_SESSION_INFO, [0x07, 0x01]),
        ],
        ..SubmitOptions::default()
    };
    let long = "Баланс: 100 руб. ".repeat(6);
    let submit = {
        let link = link.clone();
        let long = long.clone();
        tokio::spawn(async move { link.submit(PHONE, &long, options).await })
    };
    for n in 0..2u32 {
        let c = conn.read().await;
        let Some(Pdu::SubmitSm(sm)) = c.pdu() else {
            panic!("{c:?}")
        };
        let values: Vec<_> = sm
            .tlvs()
            .iter()
            .filter_map(|t| t.value().cloned())
            .collect();
        assert_eq!(
            values,
            [
                TlvValue::UssdServiceOp(UssdServiceOp::PssrResponse),
                TlvValue::ItsSessionInfo(ItsSessionInfo::new(7, 1)),
            ],
            "segment {n}"
        );
        conn.send(submit_resp(c.sequence_number(), &format!("{}", 10 + n)))
            .await;
    }
    assert_eq!(
        submit.await.expect("task").expect("sent"),
        SubmitOutcome::Accepted {
            message_ids: vec!["10".into(), "11".into()]
        }
    );
    drop(conn);
    link.shutdown().await;
}

/// A dialog handler (USSD) answering each MO with the next menu in the
/// same session: `its_session_info` carried back, PSSR response.
struct Ussd;

impl MoHandler for Ussd {
    async fn on_mo(&self, _mo: Mo) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn on_mo_dialog(&self, mo: Mo) -> Result<MoAnswer, HandlerError> {
        let session = mo
            .tlvs
            .iter()
            .find(|t| t.tag == Tlv::ITS_SESSION_INFO)
            .cloned()
            .ok_or_else(|| HandlerError("no USSD session".into()))?;
        Ok(MoAnswer {
            reply: Some(Reply {
                to: mo.from,
                text: "1. Баланс 2. Выход".into(),
                options: SubmitOptions {
                    tlvs: vec![Tlv::new(Tlv::USSD_SERVICE_OP, [0x11]), session],
                    ..SubmitOptions::default()
                },
            }),
        })
    }
}

impl ReceiptHandler for Ussd {
    async fn on_receipt(&self, _receipt: smsc_link::Receipt) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// The handler's answer can carry a reply: it is submitted in the same
/// dialog once the MO was acknowledged; a handler error answers the MO
/// with a temporary error and sends nothing.
#[tokio::test]
async fn a_dialog_handler_replies_in_the_same_session_after_the_acknowledgement() {
    let fake = Fake::start().await;
    let link = Link::start(link_config(fake.addr), Ussd, Ussd).expect("config");
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;

    // Without its session the handler fails: no reply.
    let seq = conn.request(mo(0, 0, b"*100#".to_vec())).await;
    assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRxTAppn);

    let pdu = mo(0, 0, b"*100#".to_vec()).with_tlvs_for_test(vec![
        MessageDeliveryRequestTlvValue::UssdServiceOp(UssdServiceOp::PssrIndication),
        MessageDeliveryRequestTlvValue::ItsSessionInfo(ItsSessionInfo::new(9, 0)),
    ]);
    let seq = conn.request(pdu).await;
    // The acknowledgement comes first, then the reply.
    let ack = conn.read().await;
    assert_eq!(
        (ack.id(), ack.sequence_number(), ack.status()),
        (CommandId::DeliverSmResp, seq, CommandStatus::EsmeRok)
    );
    let submit = conn.read().await;
    let Some(Pdu::SubmitSm(sm)) = submit.pdu() else {
        panic!("{submit:?}")
    };
    assert_eq!(sm.destination_addr.as_str(), "79161234567");
    let values: Vec<_> = sm
        .tlvs()
        .iter()
        .filter_map(|t| t.value().cloned())
        .collect();
    assert_eq!(
        values,
        [
            TlvValue::UssdServiceOp(UssdServiceOp::PssrResponse),
            TlvValue::ItsSessionInfo(ItsSessionInfo::new(9, 0)),
        ]
    );
    conn.send(submit_resp(submit.sequence_number(), "5")).await;
    drop(conn);
    link.shutdown().await;
}

#[tokio::test]
async fn service_type_and_the_gsm7_label_reach_the_wire() {
    let fake = Fake::start().await;
    let (link, _events) = start_link(link_config(fake.addr), 0).await;
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    // A GSM 7-bit screen labelled 0x0F, then a Cyrillic one: UCS2 stays 0x08.
    for (text, data_coding) in [("OK", 0x0f), ("Да", 0x08)] {
        let options = SubmitOptions {
            service_type: Some("USSD".into()),
            gsm7_data_coding: Some(0x0f),
            ..SubmitOptions::default()
        };
        let outcome = link.enqueue(PHONE, text, &options).await.expect("queued");
        let submit = conn.read().await;
        match submit.pdu() {
            Some(Pdu::SubmitSm(sm)) => {
                assert_eq!(sm.service_type.value().as_str(), "USSD");
                assert_eq!(u8::from(sm.data_coding), data_coding, "{text}");
            }
            other => panic!("{other:?}"),
        }
        conn.send(submit_resp(submit.sequence_number(), "1")).await;
        assert!(matches!(
            outcome.await.expect("answered"),
            Ok(SubmitOutcome::Accepted { .. })
        ));
    }
    drop(conn);
    link.shutdown().await;
}
