//! USSD on the wire, byte for byte: a hand-written SMSC on a raw socket
//! feeds the real gateway (`[smsc]` pointed at it) `deliver_sm` PDUs typed
//! out from the SMPP layout, among them the operator's PDU quoted in the
//! issue (service_type "P2", data_coding 0x0F, `*4006#`, `ussd_service_op`
//! 1, no session id), and holds the `submit_sm` the gateway answers with to
//! golden bytes: a USSR request (question) and a PSSR response (final
//! screen) with `its_session_info`. A dial by `data_sm` (text in
//! `message_payload`) is answered `data_sm_resp`, then its screen.

mod common;

use std::time::Duration;

use checkin::gateway::{Gateway, GatewayOptions};
use checkin_core::texts::ussd as screens;
use smsc_link::LinkConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

/// One PDU off the socket: (command_id, sequence, whole frame).
async fn read_pdu(stream: &mut TcpStream) -> (u32, u32, Vec<u8>) {
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut len))
        .await
        .expect("a PDU in time")
        .expect("readable");
    let n = u32::from_be_bytes(len) as usize;
    let mut frame = len.to_vec();
    frame.resize(n, 0);
    stream.read_exact(&mut frame[4..]).await.expect("whole PDU");
    let id = u32::from_be_bytes(frame[4..8].try_into().unwrap());
    let seq = u32::from_be_bytes(frame[12..16].try_into().unwrap());
    (id, seq, frame)
}

/// A PDU with its header: command_length, command_id, status 0, sequence.
fn frame(command_id: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&command_id.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads until the next PDU of `want`, answering enquire_link on the way.
async fn next_of(stream: &mut TcpStream, want: u32) -> (u32, Vec<u8>) {
    loop {
        let (id, seq, pdu) = read_pdu(stream).await;
        match id {
            id if id == want => return (seq, pdu),
            0x0000_0015 => stream
                .write_all(&frame(0x8000_0015, seq, &[]))
                .await
                .unwrap(),
            other => panic!("unexpected PDU 0x{other:08x}: {pdu:02x?}"),
        }
    }
}

/// A gateway bound to the raw SMSC on `listener`; the accepted stream.
async fn gateway_on(listener: &TcpListener) -> (Gateway, TcpStream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), None);
    let port = listener.local_addr().unwrap().port();
    common::one_operator(
        &mut config,
        LinkConfig::new("127.0.0.1", port, "checkin", "checkin"),
    );
    let options = GatewayOptions::from_config(&config);
    let (gateway, accepted) = tokio::join!(Gateway::start(&config, options), listener.accept());
    let gateway = gateway.unwrap();
    let (mut stream, _) = accepted.unwrap();
    let (seq, _) = next_of(&mut stream, 0x0000_0009).await; // bind_transceiver
    stream
        .write_all(&frame(0x8000_0009, seq, b"raw-smsc\0"))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, gateway.link.wait_bound(1))
        .await
        .expect("bound");
    (gateway, stream, dir)
}

/// The `deliver_sm` the gateway reads, typed out field by field.
fn deliver_sm(
    seq: u32,
    service_type: &str,
    to: &str,
    data_coding: u8,
    text: &str,
    tlvs: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(service_type.as_bytes());
    body.push(0);
    body.extend_from_slice(&[0x01, 0x01]); // source TON international, NPI ISDN
    body.extend_from_slice(b"79161234567\0");
    body.extend_from_slice(&[0x00, 0x00]); // dest TON, NPI unknown
    body.extend_from_slice(to.as_bytes());
    body.push(0);
    body.extend_from_slice(&[
        0x00, // esm_class
        0x00, // protocol_id
        0x00, // priority_flag
        0x00, // schedule_delivery_time
        0x00, // validity_period
        0x00, // registered_delivery
        0x00, // replace_if_present_flag
        data_coding,
        0x00, // sm_default_msg_id
        text.len() as u8,
    ]);
    body.extend_from_slice(text.as_bytes());
    body.extend_from_slice(tlvs);
    frame(0x0000_0005, seq, &body)
}

/// The `submit_sm` a screen goes out in: source the dialled service code,
/// to the visitor, UCS2, then the TLVs.
fn submit_sm(seq: u32, source: &str, text: &str, tlvs: &[u8]) -> Vec<u8> {
    let ucs2: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let mut body = vec![0x00]; // service_type ""
    body.extend_from_slice(&[0x03, 0x00]); // source TON network specific, NPI unknown
    body.extend_from_slice(source.as_bytes());
    body.push(0);
    body.extend_from_slice(&[0x01, 0x01]); // dest TON international, NPI ISDN
    body.extend_from_slice(b"79161234567\0");
    body.extend_from_slice(&[
        0x00, // esm_class
        0x00, // protocol_id
        0x00, // priority_flag
        0x00, // schedule_delivery_time
        0x00, // validity_period
        0x00, // registered_delivery
        0x00, // replace_if_present_flag
        0x08, // data_coding UCS2
        0x00, // sm_default_msg_id
        ucs2.len() as u8,
    ]);
    body.extend_from_slice(&ucs2);
    body.extend_from_slice(tlvs);
    frame(0x0000_0004, seq, &body)
}

/// The `data_sm` a USSD gateway may send instead of a `deliver_sm`: the
/// same fields without the SMS ones, the text in `message_payload`.
fn data_sm(seq: u32, service_type: &str, data_coding: u8, text: &str, tlvs: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(service_type.as_bytes());
    body.push(0);
    body.extend_from_slice(&[0x01, 0x01]); // source TON international, NPI ISDN
    body.extend_from_slice(b"79161234567\0");
    body.extend_from_slice(&[0x00, 0x00]); // dest TON, NPI unknown
    body.extend_from_slice(b"7377\0");
    body.extend_from_slice(&[
        0x00, // esm_class
        0x00, // registered_delivery
        data_coding,
    ]);
    body.extend_from_slice(&[0x04, 0x24]); // message_payload
    body.extend_from_slice(&(text.len() as u16).to_be_bytes());
    body.extend_from_slice(text.as_bytes());
    body.extend_from_slice(tlvs);
    frame(0x0000_0103, seq, &body)
}

/// Sends `deliver`, checks its `deliver_sm_resp` ESME_ROK, and returns the
/// screen's `submit_sm` (acknowledged, as is any SMS on the way).
async fn exchange(stream: &mut TcpStream, seq: u32, deliver: &[u8]) -> (u32, Vec<u8>) {
    stream.write_all(deliver).await.unwrap();
    let (resp_seq, resp) = next_of(stream, 0x8000_0005).await;
    assert_eq!(resp_seq, seq);
    assert_eq!(&resp[8..12], &[0, 0, 0, 0], "deliver_sm_resp ESME_ROK");
    screen_submit(stream).await
}

/// The next screen's `submit_sm` (acknowledged, as is any SMS on the way).
async fn screen_submit(stream: &mut TcpStream) -> (u32, Vec<u8>) {
    loop {
        let (submit_seq, submit) = next_of(stream, 0x0000_0004).await;
        stream
            .write_all(&frame(0x8000_0004, submit_seq, b"ab12\0"))
            .await
            .unwrap();
        // The SMS confirmation (no TLVs) may overtake the screen.
        if submit.windows(4).any(|w| w == [0x05, 0x01, 0x00, 0x01]) {
            return (submit_seq, submit);
        }
    }
}

#[tokio::test]
async fn the_operators_pdu_from_the_issue_is_answered_with_a_screen() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (gateway, mut stream, _dir) = gateway_on(&listener).await;
    let op_pssr_indication = [0x05, 0x01, 0x00, 0x01, 0x01];

    // Verbatim: another service's code; a clear final screen, not silence.
    let pdu = deliver_sm(7, "P2", "4006", 0x0f, "*4006#", &op_pssr_indication);
    let (seq, submit) = exchange(&mut stream, 7, &pdu).await;
    let pssr_response = [0x05, 0x01, 0x00, 0x01, 0x11];
    assert_eq!(
        submit,
        submit_sm(
            seq,
            "4006",
            &screens::not_understood("*7377#"),
            &pssr_response
        )
    );

    // The same PDU with our code: the menu's question, a USSR request.
    let pdu = deliver_sm(8, "P2", "7377", 0x0f, "*7377#", &op_pssr_indication);
    let (seq, submit) = exchange(&mut stream, 8, &pdu).await;
    let ussr_request = [0x05, 0x01, 0x00, 0x01, 0x02];
    assert_eq!(
        submit,
        submit_sm(seq, "7377", "Введите 9 цифр кода с плаката", &ussr_request)
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn ussr_request_and_pssr_response_with_its_session_info_golden_bytes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (gateway, mut stream, _dir) = gateway_on(&listener).await;

    // *7377# in session 0x2a, sequence 0: the question goes out as a USSR
    // request (2) in the same session, sequence 1, not the last.
    #[rustfmt::skip]
    let dial = [
        0x05, 0x01, 0x00, 0x01, 0x01, // ussd_service_op: PSSR indication
        0x13, 0x83, 0x00, 0x02, 0x2a, 0x00, // its_session_info: session 42, seq 0
    ];
    let pdu = deliver_sm(11, "USSD", "7377", 0x0f, "*7377#", &dial);
    let (seq, submit) = exchange(&mut stream, 11, &pdu).await;
    #[rustfmt::skip]
    let question = [
        0x05, 0x01, 0x00, 0x01, 0x02, // ussd_service_op: USSR request
        0x13, 0x83, 0x00, 0x02, 0x2a, 0x02, // its_session_info: session 42, seq 1
    ];
    assert_eq!(
        submit,
        submit_sm(seq, "7377", "Введите 9 цифр кода с плаката", &question)
    );

    // The answer "0" (USSR confirm, seq 2): the final screen as a PSSR
    // response (17), seq 3 with the end-of-session bit.
    #[rustfmt::skip]
    let answer = [
        0x05, 0x01, 0x00, 0x01, 0x12, // ussd_service_op: USSR confirm
        0x13, 0x83, 0x00, 0x02, 0x2a, 0x04, // its_session_info: session 42, seq 2
    ];
    let pdu = deliver_sm(12, "USSD", "7377", 0x0f, "0", &answer);
    let (seq, submit) = exchange(&mut stream, 12, &pdu).await;
    #[rustfmt::skip]
    let last = [
        0x05, 0x01, 0x00, 0x01, 0x11, // ussd_service_op: PSSR response
        0x13, 0x83, 0x00, 0x02, 0x2a, 0x07, // its_session_info: session 42, seq 3, end
    ];
    assert_eq!(
        submit,
        submit_sm(seq, "7377", &screens::cancelled("*7377#"), &last)
    );

    // An answer in a session we do not know: a final screen, never silence.
    let pdu = deliver_sm(13, "USSD", "7377", 0x0f, "0", &answer);
    let (seq, submit) = exchange(&mut stream, 13, &pdu).await;
    assert_eq!(
        submit,
        submit_sm(seq, "7377", &screens::expired("*7377#"), &last)
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn one_shot_checks_in_and_the_menu_takes_the_code_keyed_by_msisdn() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (gateway, mut stream, _dir) = gateway_on(&listener).await;
    let premises = common::premises_in(&gateway.store, "ул. Тверская, 13").await;
    let code = premises.code.to_string(); // 123-456-789
    let pssr_indication = [0x05, 0x01, 0x00, 0x01, 0x01];
    let ussr_confirm = [0x05, 0x01, 0x00, 0x01, 0x12];
    let pdu = deliver_sm(
        21,
        "",
        "7377",
        0x0f,
        &format!("*7377*{code}#"),
        &pssr_indication,
    );
    let (_, submit) = exchange(&mut stream, 21, &pdu).await;
    let screen = screen_of(&submit);
    assert!(
        screen.starts_with("Вход отмечен: ул. Тверская, 13, "),
        "{screen}"
    );
    assert_eq!(&submit[submit.len() - 5..], &[0x05, 0x01, 0x00, 0x01, 0x11]);

    // The menu, keyed by the MSISDN alone: a typo asks again, then the code.
    let pdu = deliver_sm(22, "", "7377", 0x0f, "*7377#", &pssr_indication);
    let (_, submit) = exchange(&mut stream, 22, &pdu).await;
    assert_eq!(screen_of(&submit), screens::ask());
    let mut typo: Vec<u8> = premises.code.digits().into_bytes();
    typo[8] = if typo[8] == b'0' { b'1' } else { b'0' };
    let typo = String::from_utf8(typo).unwrap();
    let pdu = deliver_sm(23, "", "7377", 0x0f, &typo, &ussr_confirm);
    let (_, submit) = exchange(&mut stream, 23, &pdu).await;
    assert_eq!(screen_of(&submit), screens::ask_typo());
    assert_eq!(&submit[submit.len() - 5..], &[0x05, 0x01, 0x00, 0x01, 0x02]);
    let pdu = deliver_sm(24, "", "7377", 0x0f, &code, &ussr_confirm);
    let (_, submit) = exchange(&mut stream, 24, &pdu).await;
    let screen = screen_of(&submit);
    assert!(
        screen.starts_with("Вход уже отмечен: ул. Тверская, 13, "),
        "{screen}"
    );
    gateway.shutdown().await;
}

/// A dial by `data_sm`: answered `data_sm_resp` ESME_ROK (golden bytes),
/// then the same screens as a `deliver_sm` gets, by `submit_sm`.
#[tokio::test]
async fn a_dial_by_data_sm_is_answered_data_sm_resp_and_a_screen() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (gateway, mut stream, _dir) = gateway_on(&listener).await;
    let premises = common::premises_in(&gateway.store, "ул. Тверская, 13").await;
    let code = premises.code.to_string();
    let pssr_indication = [0x05, 0x01, 0x00, 0x01, 0x01];
    #[rustfmt::skip]
    let ok_resp = |seq: u8| vec![
        0x00, 0x00, 0x00, 0x11, // command_length 17
        0x80, 0x00, 0x01, 0x03, // command_id data_sm_resp
        0x00, 0x00, 0x00, 0x00, // command_status ESME_ROK
        0x00, 0x00, 0x00, seq,  // sequence_number
        0x00,                   // message_id ""
    ];

    let pdu = data_sm(51, "USSD", 0x0f, "*7377#", &pssr_indication);
    stream.write_all(&pdu).await.unwrap();
    let (_, resp) = next_of(&mut stream, 0x8000_0103).await;
    assert_eq!(resp, ok_resp(51));
    let (seq, submit) = screen_submit(&mut stream).await;
    let ussr_request = [0x05, 0x01, 0x00, 0x01, 0x02];
    assert_eq!(
        submit,
        submit_sm(seq, "7377", "Введите 9 цифр кода с плаката", &ussr_request)
    );

    let dial = format!("*7377*{code}#");
    let pdu = data_sm(52, "", 0x0f, &dial, &pssr_indication);
    stream.write_all(&pdu).await.unwrap();
    let (_, resp) = next_of(&mut stream, 0x8000_0103).await;
    assert_eq!(resp, ok_resp(52));
    let (_, submit) = screen_submit(&mut stream).await;
    let screen = screen_of(&submit);
    assert!(
        screen.starts_with("Вход отмечен: ул. Тверская, 13, "),
        "{screen}"
    );
    assert_eq!(&submit[submit.len() - 5..], &[0x05, 0x01, 0x00, 0x01, 0x11]);
    gateway.shutdown().await;
}

/// The screen of a `submit_sm`, read by the SMPP 3.4 layout.
fn screen_of(submit: &[u8]) -> String {
    let mut at = 16;
    let skip_c_string = |at: &mut usize| {
        while submit[*at] != 0 {
            *at += 1;
        }
        *at += 1;
    };
    skip_c_string(&mut at); // service_type
    at += 2;
    skip_c_string(&mut at); // source_addr
    at += 2;
    skip_c_string(&mut at); // destination_addr
    at += 3; // esm_class, protocol_id, priority_flag
    skip_c_string(&mut at); // schedule_delivery_time
    skip_c_string(&mut at); // validity_period
    at += 2; // registered_delivery, replace_if_present_flag
    assert_eq!(submit[at], 0x08, "UCS2");
    at += 2;
    let len = submit[at] as usize;
    let units: Vec<u16> = submit[at + 1..at + 1 + len]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

#[tokio::test]
async fn odd_ussd_pdus_get_a_final_screen_and_aborts_get_none() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (gateway, mut stream, _dir) = gateway_on(&listener).await;
    let pssr_response = [0x05, 0x01, 0x00, 0x01, 0x11];
    // An operation only we should send (17), and one with no value at all.
    for (seq, tlv) in [
        (31, vec![0x05, 0x01, 0x00, 0x01, 0x11]),
        (32, vec![0x05, 0x01, 0x00, 0x00]),
    ] {
        let pdu = deliver_sm(seq, "", "7377", 0x0f, "*7377#", &tlv);
        let (submit_seq, submit) = exchange(&mut stream, seq, &pdu).await;
        assert_eq!(
            submit,
            submit_sm(
                submit_seq,
                "7377",
                &screens::not_understood("*7377#"),
                &pssr_response
            )
        );
    }
    // An abort (0x81) is acknowledged with no screen: the next PDU's
    // answer is the next thing on the wire.
    let abort = deliver_sm(33, "", "7377", 0x0f, "", &[0x05, 0x01, 0x00, 0x01, 0x81]);
    stream.write_all(&abort).await.unwrap();
    let (resp_seq, resp) = next_of(&mut stream, 0x8000_0005).await;
    assert_eq!((resp_seq, &resp[8..12]), (33, &[0u8, 0, 0, 0][..]));
    let pdu = deliver_sm(
        34,
        "",
        "7377",
        0x0f,
        "*7377#",
        &[0x05, 0x01, 0x00, 0x01, 0x01],
    );
    let (_, submit) = exchange(&mut stream, 34, &pdu).await;
    assert_eq!(screen_of(&submit), screens::ask());
    gateway.shutdown().await;
}
