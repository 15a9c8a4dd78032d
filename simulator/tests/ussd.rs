//! The USSD gateway role through the real control API and a real SMPP
//! session: a tiny ESME written here (rusmpp, over `common::Raw`) answers
//! each dialog's `deliver_sm` with screens; every operator profile,
//! questions and final screens, aborts, both timeouts, unmatched answers,
//! 0x0F and UCS2 screens and the screen length limits.

mod common;

use std::time::Duration;

use common::{http, start, Raw};
use rusmpp::{
    pdus::{DeliverSm, DeliverSmResp, SubmitSm},
    tlvs::{MessageSubmissionRequestTlvValue, TlvValue},
    types::{COctetString, OctetString},
    values::{ItsSessionInfo, ServiceType, UserMessageReference, UssdServiceOp},
    CommandStatus, Pdu,
};
use serde_json::Value;
use simulator::Config;
use tokio::sync::mpsc;

/// What the ESME saw of one `deliver_sm`.
#[derive(Debug, Clone)]
struct Seen {
    op: Option<u8>,
    service_type: String,
    source: String,
    dest: String,
    short: Vec<u8>,
    data_coding: u8,
    its: Option<(u8, u8)>,
    umr: Option<u16>,
}

impl Seen {
    fn of(d: &DeliverSm) -> Self {
        let (mut op, mut its, mut umr) = (None, None, None);
        for tlv in d.tlvs() {
            match tlv.value() {
                Some(TlvValue::UssdServiceOp(v)) => op = Some(u8::from(*v)),
                Some(TlvValue::ItsSessionInfo(v)) => {
                    its = Some((v.session_number, v.sequence_number))
                }
                Some(TlvValue::UserMessageReference(v)) => umr = Some(u16::from(*v)),
                _ => {}
            }
        }
        Self {
            op,
            service_type: d.service_type.value().as_str().to_string(),
            source: d.source_addr.as_str().to_string(),
            dest: d.destination_addr.as_str().to_string(),
            short: d.short_message().as_ref().to_vec(),
            data_coding: u8::from(d.data_coding),
            its,
            umr,
        }
    }

    fn text(&self) -> String {
        String::from_utf8(self.short.clone()).unwrap()
    }
}

/// What the ESME does with one `deliver_sm`: its `deliver_sm_resp` status
/// and the `submit_sm` it sends after.
struct Reply {
    status: CommandStatus,
    submits: Vec<SubmitSm>,
}

impl Reply {
    fn ack(submits: Vec<SubmitSm>) -> Self {
        Self {
            status: CommandStatus::EsmeRok,
            submits,
        }
    }
}

/// Events the ESME reports to the test.
#[derive(Debug)]
enum Event {
    Deliver(Seen),
    SubmitResp(CommandStatus),
}

/// A screen answering `seen`, echoing its session TLVs.
fn screen(seen: &Seen, op: u8, text: &str, data_coding: u8) -> SubmitSm {
    let body: Vec<u8> = if data_coding == 0x08 {
        text.encode_utf16().flat_map(u16::to_be_bytes).collect()
    } else {
        assert!(text.is_ascii() && !text.contains(['@', '_', '$']));
        text.as_bytes().to_vec()
    };
    let mut submit = SubmitSm::builder()
        .service_type(ServiceType::new(
            COctetString::from_string("USSD".into()).unwrap(),
        ))
        .source_addr(COctetString::from_string(seen.dest.clone()).unwrap())
        .destination_addr(COctetString::from_string(seen.source.clone()).unwrap())
        .data_coding(data_coding.into())
        .short_message(OctetString::from_vec(body).unwrap())
        .push_tlv(MessageSubmissionRequestTlvValue::UssdServiceOp(
            UssdServiceOp::from(op),
        ));
    if let Some((session, sequence)) = seen.its {
        submit = submit.push_tlv(MessageSubmissionRequestTlvValue::ItsSessionInfo(
            ItsSessionInfo::new(session, sequence + 2),
        ));
    }
    if let Some(umr) = seen.umr {
        submit = submit.push_tlv(MessageSubmissionRequestTlvValue::UserMessageReference(
            UserMessageReference::new(umr),
        ));
    }
    submit.build()
}

/// Binds a transceiver that hands every `deliver_sm` to `behave`.
async fn esme(
    run: &common::Running,
    mut behave: impl FnMut(&Seen) -> Reply + Send + 'static,
) -> mpsc::UnboundedReceiver<Event> {
    let mut raw = Raw::connect(run.smpp).await;
    assert_eq!(
        raw.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRok
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(command) = raw.next_or_eof().await {
            let seq = command.sequence_number();
            match command.pdu() {
                Some(Pdu::DeliverSm(d)) => {
                    let seen = Seen::of(d);
                    let reply = behave(&seen);
                    let _ = tx.send(Event::Deliver(seen));
                    let resp = rusmpp::Command::new(
                        reply.status,
                        seq,
                        DeliverSmResp::new(COctetString::empty(), Vec::new()),
                    );
                    use futures::SinkExt;
                    raw.framed.send(&resp).await.unwrap();
                    for submit in reply.submits {
                        raw.send(submit).await;
                    }
                }
                Some(Pdu::SubmitSmResp(_)) | None
                    if command.id() == rusmpp::CommandId::SubmitSmResp =>
                {
                    let _ = tx.send(Event::SubmitResp(command.status()));
                }
                Some(Pdu::EnquireLink) => raw.respond(seq, Pdu::EnquireLinkResp).await,
                Some(Pdu::Unbind) => {
                    raw.respond(seq, Pdu::UnbindResp).await;
                    break;
                }
                _ => {}
            }
        }
    });
    run.sim.wait_for_receivers(1, &run.shutdown).await;
    rx
}

async fn next_deliver(rx: &mut mpsc::UnboundedReceiver<Event>) -> Seen {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(Event::Deliver(seen))) => return seen,
            Ok(Some(_)) => continue,
            other => panic!("no deliver_sm: {other:?}"),
        }
    }
}

async fn next_submit_resp(rx: &mut mpsc::UnboundedReceiver<Event>) -> CommandStatus {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(Event::SubmitResp(status))) => return status,
            Ok(Some(_)) => continue,
            other => panic!("no submit_sm_resp: {other:?}"),
        }
    }
}

async fn post(run: &common::Running, path: &str, body: &str) -> (u16, Value) {
    let (status, body) = http(run.http, "POST", path, Some(body)).await;
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// The menu: a UCS2 question, an answer, a 0x0F final screen; every
/// profile's key on the wire.
async fn menu_dialog(profile: &str) -> (Vec<Seen>, Value) {
    let run = start(Config::default()).await;
    let mut rx = esme(&run, |seen| match seen.op {
        Some(1) => Reply::ack(vec![screen(seen, 2, "Введите 9 цифр кода с плаката", 0x08)]),
        Some(18) => Reply::ack(vec![screen(
            seen,
            17,
            &format!("Code {} OK", seen.text()),
            0x0F,
        )]),
        _ => Reply::ack(Vec::new()),
    })
    .await;
    let (status, first) = post(
        &run,
        "/api/ussd",
        &format!(r#"{{"from":"+79161234567","dial":"*7377#","profile":"{profile}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["screen"], "Введите 9 цифр кода с плаката");
    assert_eq!(first["continues"], true);
    assert_eq!(first["ussd_service_op"], 2);
    assert_eq!(first["data_coding"], 8);
    let dialog = first["dialog"].as_str().unwrap().to_string();
    let dial = next_deliver(&mut rx).await;
    assert_eq!(next_submit_resp(&mut rx).await, CommandStatus::EsmeRok);

    let (status, last) = post(
        &run,
        &format!("/api/ussd/{dialog}"),
        r#"{"answer":"123456789"}"#,
    )
    .await;
    assert_eq!(status, 200, "{last}");
    assert_eq!(last["screen"], "Code 123456789 OK");
    assert_eq!(last["continues"], false);
    assert_eq!(last["ussd_service_op"], 17);
    assert_eq!(last["data_coding"], 15);
    let answer = next_deliver(&mut rx).await;
    assert_eq!(next_submit_resp(&mut rx).await, CommandStatus::EsmeRok);

    // The final screen closed it.
    let (status, _) = post(&run, &format!("/api/ussd/{dialog}"), r#"{"answer":"1"}"#).await;
    assert_eq!(status, 410);
    let (_, stats) = http(run.http, "GET", "/api/stats", None).await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    run.shutdown.cancel();
    (vec![dial, answer], stats["ussd"].clone())
}

#[tokio::test]
async fn its_session_info_profile_menu() {
    let (seen, stats) = menu_dialog("its_session_info").await;
    let (dial, answer) = (&seen[0], &seen[1]);
    assert_eq!(dial.op, Some(1));
    assert_eq!(dial.service_type, "USSD");
    assert_eq!(dial.data_coding, 0x0F);
    assert_eq!(dial.text(), "*7377#");
    assert_eq!(
        (dial.source.as_str(), dial.dest.as_str()),
        ("79161234567", "7377")
    );
    let (session, octet2) = dial.its.expect("its_session_info");
    assert_eq!(octet2, 0, "sequence 0, not the end");
    assert_eq!(dial.umr, None);
    assert_eq!(answer.op, Some(18));
    assert_eq!(answer.text(), "123456789");
    assert_eq!(
        answer.its,
        Some((session, 1 << 1)),
        "same session, sequence 1"
    );
    assert_eq!(stats["opened"], 1);
    assert_eq!(stats["answered"], 1);
    assert_eq!(stats["completed"], 1);
    assert_eq!(stats["screens"], 2);
    assert_eq!(stats["aborted"], 0);
}

#[tokio::test]
async fn umr_profile_menu() {
    let (seen, stats) = menu_dialog("umr").await;
    let (dial, answer) = (&seen[0], &seen[1]);
    assert_eq!(dial.its, None);
    let umr = dial.umr.expect("user_message_reference");
    assert_eq!(answer.umr, Some(umr));
    assert_eq!(dial.service_type, "USSD");
    assert_eq!(stats["completed"], 1);
}

#[tokio::test]
async fn none_profile_menu() {
    let (seen, _) = menu_dialog("none").await;
    assert!(seen.iter().all(|s| s.its.is_none() && s.umr.is_none()));
    assert_eq!(seen[0].service_type, "USSD");
}

/// The PDU seen in the wild: `service_type` P2, 0x0F, the whole string,
/// op 1, no session id; a one-shot answered at once with a final screen.
#[tokio::test]
async fn p2_profile_one_shot() {
    let run = start(Config::default()).await;
    let mut rx = esme(&run, |seen| {
        Reply::ack(vec![screen(seen, 17, "Balance: 100 rub", 0x0F)])
    })
    .await;
    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*4006#","profile":"p2"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["screen"], "Balance: 100 rub");
    assert_eq!(body["continues"], false);
    let seen = next_deliver(&mut rx).await;
    assert_eq!(seen.service_type, "P2");
    assert_eq!(seen.data_coding, 0x0F);
    assert_eq!(seen.short, b"*4006#");
    assert_eq!(seen.dest, "4006");
    assert_eq!(seen.op, Some(1));
    assert_eq!((seen.its, seen.umr), (None, None));
    assert_eq!(run.sim.ussd_dialogs_open(), 0);
    run.shutdown.cancel();
}

/// `split_dial`: the service code in `destination_addr`, the rest in
/// `short_message`; one dialog per number at a time.
#[tokio::test]
async fn split_dial_and_one_dialog_per_number() {
    let run = start(Config::default()).await;
    let mut rx = esme(&run, |seen| match seen.op {
        Some(1) => Reply::ack(vec![screen(seen, 2, "Code?", 0x0F)]),
        _ => Reply::ack(Vec::new()),
    })
    .await;
    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*7377*123456789#","profile":"none","split_dial":true}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = next_deliver(&mut rx).await;
    assert_eq!(seen.dest, "7377");
    assert_eq!(seen.text(), "*123456789#");

    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*7377#","profile":"nope"}"#,
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = post(&run, "/api/ussd/ussd-99", r#"{"answer":"1"}"#).await;
    assert_eq!(status, 404);
    run.shutdown.cancel();
}

/// Cancel: DELETE sends 0x81 with the end-of-session bit (its_session_info),
/// `{"abort":true}` sends 0x81 (umr); both close the dialog.
#[tokio::test]
async fn abort_both_ways() {
    let run = start(Config::default()).await;
    let mut rx = esme(&run, |seen| match seen.op {
        Some(1) => Reply::ack(vec![screen(seen, 2, "Code?", 0x0F)]),
        _ => Reply::ack(Vec::new()),
    })
    .await;
    let (_, first) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*7377#"}"#,
    )
    .await;
    let dialog = first["dialog"].as_str().unwrap().to_string();
    let dial = next_deliver(&mut rx).await;
    let (status, closed) = http(run.http, "DELETE", &format!("/api/ussd/{dialog}"), None).await;
    assert_eq!(status, 200, "{closed}");
    let closed: Value = serde_json::from_str(&closed).unwrap();
    assert_eq!(closed["closed"], true);
    assert_eq!(closed["status"], "ESME_ROK");
    let abort = next_deliver(&mut rx).await;
    assert_eq!(abort.op, Some(0x81));
    let (session, octet2) = abort.its.unwrap();
    assert_eq!(session, dial.its.unwrap().0);
    assert_eq!(octet2 & 1, 1, "end of session");
    let (status, _) = post(&run, &format!("/api/ussd/{dialog}"), r#"{"answer":"1"}"#).await;
    assert_eq!(status, 410);

    let (_, first) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234568","dial":"*7377#","profile":"umr"}"#,
    )
    .await;
    let dialog = first["dialog"].as_str().unwrap().to_string();
    let dial = next_deliver(&mut rx).await;
    let (status, closed) = post(&run, &format!("/api/ussd/{dialog}"), r#"{"abort":true}"#).await;
    assert_eq!(status, 200, "{closed}");
    let abort = next_deliver(&mut rx).await;
    assert_eq!(abort.op, Some(0x81));
    assert_eq!(abort.umr, dial.umr);
    assert_eq!(abort.its, None);
    let (_, stats) = http(run.http, "GET", "/api/stats", None).await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["ussd"]["aborted"], 2);
    assert_eq!(run.sim.ussd_dialogs_open(), 0);
    run.shutdown.cancel();
}

/// No screen within `answer_timeout_ms`: 504 and an abort towards the ESME.
/// A user silent past `dialog_timeout_ms`: the abort, then 410.
#[tokio::test]
async fn timeouts_abort_towards_the_esme() {
    let mut config = Config::default();
    config.ussd.answer_timeout_ms = 300;
    config.ussd.dialog_timeout_ms = 300;
    let run = start(config).await;
    let mut rx = esme(&run, |seen| match (seen.op, seen.source.as_str()) {
        // The first number gets no screen at all.
        (Some(1), "79161234567") => Reply::ack(Vec::new()),
        (Some(1), _) => Reply::ack(vec![screen(seen, 2, "Code?", 0x0F)]),
        _ => Reply::ack(Vec::new()),
    })
    .await;
    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(next_deliver(&mut rx).await.op, Some(1));
    let abort = next_deliver(&mut rx).await;
    assert_eq!(abort.op, Some(0x81));
    assert_eq!(abort.its.unwrap().1 & 1, 1);

    let (status, first) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234568","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let dialog = first["dialog"].as_str().unwrap().to_string();
    assert_eq!(next_deliver(&mut rx).await.op, Some(1));
    let abort = next_deliver(&mut rx).await;
    assert_eq!(abort.op, Some(0x81), "the idle dialog is aborted");
    assert_eq!(abort.source, "79161234568");
    let (status, _) = post(&run, &format!("/api/ussd/{dialog}"), r#"{"answer":"1"}"#).await;
    assert_eq!(status, 410);
    let stats = run.sim.stats().ussd;
    assert_eq!(stats.timed_out, 2);
    assert_eq!(stats.opened, 2);
    run.shutdown.cancel();
}

/// A screen whose key matches no open dialog is refused
/// (ESME_RSUBMITFAIL) and counted; the right one still gets through.
#[tokio::test]
async fn unmatched_answer_is_refused() {
    let run = start(Config::default()).await;
    let mut rx = esme(&run, |seen| {
        let mut wrong = seen.clone();
        wrong.its = seen.its.map(|(s, q)| (s.wrapping_add(7), q));
        let mut stranger = seen.clone();
        stranger.source = "79990000000".into();
        Reply::ack(vec![
            screen(&wrong, 17, "wrong session", 0x0F),
            screen(&stranger, 17, "no dialog", 0x0F),
            screen(seen, 17, "right", 0x0F),
        ])
    })
    .await;
    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["screen"], "right");
    assert_eq!(
        next_submit_resp(&mut rx).await,
        CommandStatus::EsmeRsubmitfail
    );
    assert_eq!(
        next_submit_resp(&mut rx).await,
        CommandStatus::EsmeRsubmitfail
    );
    assert_eq!(next_submit_resp(&mut rx).await, CommandStatus::EsmeRok);
    let stats = run.sim.stats().ussd;
    assert_eq!(stats.unmatched, 2);
    assert_eq!(stats.completed, 1);
    // Nothing of it went to the SMS store.
    assert!(run.sim.messages(None, 10).is_empty());
    run.shutdown.cancel();
}

/// Screen limits: 182 GSM 7-bit characters and 80 UCS2 characters pass,
/// one more is ESME_RINVMSGLEN; an ESME refusing the dial is a 502.
#[tokio::test]
async fn screen_limits_and_refusal() {
    let run = start(Config::default()).await;
    let mut rx = esme(&run, |seen| match seen.source.as_str() {
        "79160000001" => Reply::ack(vec![
            screen(seen, 17, &"A".repeat(183), 0x0F),
            screen(seen, 17, &"A".repeat(182), 0x0F),
        ]),
        "79160000002" => Reply::ack(vec![
            screen(seen, 17, &"Ж".repeat(81), 0x08),
            screen(seen, 17, &"Ж".repeat(80), 0x08),
        ]),
        _ => Reply {
            status: CommandStatus::EsmeRxTAppn,
            submits: Vec::new(),
        },
    })
    .await;
    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79160000001","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["screen"].as_str().unwrap().len(), 182);
    assert_eq!(
        next_submit_resp(&mut rx).await,
        CommandStatus::EsmeRinvmsglen
    );
    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79160000002","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["screen"].as_str().unwrap().chars().count(), 80);
    let (status, body) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79160000003","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().unwrap().contains("ESME_RX_T_APPN"));
    assert_eq!(run.sim.stats().ussd.refused, 1);
    assert_eq!(run.sim.ussd_dialogs_open(), 0);
    run.shutdown.cancel();
}

/// No ESME bound: 503 and nothing left open; the phone page dials.
#[tokio::test]
async fn no_receiver_is_503() {
    let run = start(Config::default()).await;
    let (status, _) = post(
        &run,
        "/api/ussd",
        r#"{"from":"+79161234567","dial":"*7377#"}"#,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(run.sim.ussd_dialogs_open(), 0);
    // The virtual phone has the dial pad.
    let (status, page) = http(run.http, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("/api/ussd") && page.contains("id=\"pad\""));
    run.shutdown.cancel();
}
