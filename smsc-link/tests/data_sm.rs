//! `data_sm` from the SMSC (issue 11: a USSD gateway sometimes delivers by
//! `data_sm`): a raw-socket SMSC sends PDUs typed out from the SMPP 3.4
//! layout (§4.7.1), the link hands them to the MO handler as it would a
//! `deliver_sm` (text from `message_payload`, every TLV in `Mo::tlvs`) and
//! answers `data_sm_resp`, held to golden bytes: ESME_ROK after the
//! handler's `Ok`, ESME_RX_T_APPN after its error.

mod common;

use std::time::Duration;

use common::{link_config, next_event, recorder, Event, Fake};
use smsc_link::{Link, Tlv};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const WAIT: Duration = Duration::from_secs(15);

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
    let id = u32::from_be_bytes(frame[4..8].try_into().expect("4 octets"));
    let seq = u32::from_be_bytes(frame[12..16].try_into().expect("4 octets"));
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
                .expect("write"),
            other => panic!("unexpected PDU 0x{other:08x}: {pdu:02x?}"),
        }
    }
}

/// A `data_sm` from +79161234567 to 7377, field by field, its text in
/// `message_payload` (0x0424), then `tlvs`.
fn data_sm(seq: u32, service_type: &str, data_coding: u8, text: &[u8], tlvs: &[u8]) -> Vec<u8> {
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
    body.extend_from_slice(text);
    body.extend_from_slice(tlvs);
    frame(0x0000_0103, seq, &body)
}

/// The `data_sm_resp` the link must write: header, then an empty
/// `message_id` (one NUL).
#[rustfmt::skip]
fn data_sm_resp(status: u32, seq: u32) -> Vec<u8> {
    let mut expected = vec![
        0x00, 0x00, 0x00, 0x11, // command_length 17
        0x80, 0x00, 0x01, 0x03, // command_id data_sm_resp
    ];
    expected.extend_from_slice(&status.to_be_bytes()); // command_status
    expected.extend_from_slice(&seq.to_be_bytes()); // sequence_number
    expected.push(0x00); // message_id ""
    expected
}

/// A link bound to a raw socket of the fake SMSC, with a recording
/// handler failing its first `fail_mo` MO.
async fn bound(fail_mo: usize) -> (Link, TcpStream, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let fake = Fake::start().await;
    let (handler, events) = recorder(fail_mo);
    let link = Link::start(link_config(fake.addr), handler.clone(), handler).expect("config");
    let (mut stream, _) = tokio::time::timeout(WAIT, fake.listener.accept())
        .await
        .expect("a connection in time")
        .expect("accept");
    let (seq, _) = next_of(&mut stream, 0x0000_0009).await; // bind_transceiver
    stream
        .write_all(&frame(0x8000_0009, seq, b"raw-smsc\0"))
        .await
        .expect("write");
    tokio::time::timeout(WAIT, link.wait_bound(1))
        .await
        .expect("bound");
    (link, stream, events)
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// A plain SMS by `data_sm`, UCS2 in `message_payload`: a handler error
/// answers ESME_RX_T_APPN (the SMSC delivers again), the redelivery is
/// handled as a `deliver_sm` would be and answered ESME_ROK.
#[tokio::test]
async fn a_data_sm_text_reaches_the_handler_and_is_answered_data_sm_resp() {
    let (link, mut stream, mut events) = bound(1).await;
    let text = ucs2("Вход 123-456-789");
    let pdu = data_sm(41, "", 0x08, &text, &[]);

    stream.write_all(&pdu).await.expect("write");
    match next_event(&mut events).await {
        Event::MoFailed(mo) => assert_eq!(mo.text, "Вход 123-456-789"),
        other => panic!("{other:?}"),
    }
    let (_, resp) = next_of(&mut stream, 0x8000_0103).await;
    assert_eq!(resp, data_sm_resp(0x64, 41), "ESME_RX_T_APPN");

    stream.write_all(&pdu).await.expect("write");
    match next_event(&mut events).await {
        Event::Mo(mo) => {
            assert_eq!(mo.text, "Вход 123-456-789");
            assert_eq!(mo.from, "+79161234567");
            assert_eq!(mo.to, "7377");
            assert_eq!(mo.data_coding, 0x08);
            assert_eq!(mo.parts, 1);
            assert_eq!(mo.tlvs, [Tlv::new(0x0424, text)]);
        }
        other => panic!("{other:?}"),
    }
    let (_, resp) = next_of(&mut stream, 0x8000_0103).await;
    assert_eq!(resp, data_sm_resp(0, 41), "ESME_ROK");
    link.shutdown().await;
}

/// A USSD dial by `data_sm` (data_coding 0x0F, `ussd_service_op` 1,
/// `its_session_info`): the MO carries its TLVs in order, so the gateway's
/// router sends it to the USSD dialog.
#[tokio::test]
async fn a_ussd_dial_by_data_sm_keeps_its_tlvs() {
    let (link, mut stream, mut events) = bound(0).await;
    #[rustfmt::skip]
    let tlvs = [
        0x05, 0x01, 0x00, 0x01, 0x01, // ussd_service_op: PSSR indication
        0x13, 0x83, 0x00, 0x02, 0x2a, 0x00, // its_session_info: session 42, seq 0
    ];
    stream
        .write_all(&data_sm(42, "USSD", 0x0f, b"*7377#", &tlvs))
        .await
        .expect("write");
    match next_event(&mut events).await {
        Event::Mo(mo) => {
            assert_eq!(mo.text, "*7377#");
            assert_eq!(mo.data_coding, 0x0f);
            assert_eq!(
                mo.tlvs,
                [
                    Tlv::new(0x0424, b"*7377#".to_vec()),
                    Tlv::new(Tlv::USSD_SERVICE_OP, [0x01]),
                    Tlv::new(Tlv::ITS_SESSION_INFO, [0x2a, 0x00]),
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    let (_, resp) = next_of(&mut stream, 0x8000_0103).await;
    assert_eq!(resp, data_sm_resp(0, 42));
    link.shutdown().await;
}
