//! Nothing the link logs, at any level, carries a phone number or a
//! message text in clear (nor does `Debug` of what it hands out).

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use common::{link_config, next_event, recorder, Event, Fake};
use rusmpp::{
    pdus::{DeliverSm, SubmitSmResp},
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass, Npi, Ton},
    Command, CommandStatus, Pdu,
};
use smsc_link::{Link, SubmitOptions, SubmitOutcome};

/// Log lines, written by every thread of the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn deliver(esm_class: u8, data_coding: u8, short_message: Vec<u8>) -> DeliverSm {
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

#[tokio::test]
async fn no_number_or_text_is_logged_even_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread: every task of the link logs here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = Fake::start().await;
    let (handler, mut events) = recorder(0);
    let link = Link::start(link_config(fake.addr), handler.clone(), handler).expect("config");
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;

    let text = "ВХОД*123-456-789";
    let ucs2: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let seq = conn.request(deliver(0, 8, ucs2)).await;
    assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRok);
    let mo = match next_event(&mut events).await {
        Event::Mo(mo) => mo,
        other => panic!("{other:?}"),
    };
    assert_eq!(mo.from, "+79161234567");

    let submit = {
        let link = link.clone();
        tokio::spawn(async move {
            link.submit("+79161234567", "Вы отметились", SubmitOptions::default())
                .await
        })
    };
    let c = conn.read().await;
    assert!(matches!(c.pdu(), Some(Pdu::SubmitSm(_))));
    let resp = SubmitSmResp::builder()
        .message_id(COctetString::from_string("42".into()).expect("id"))
        .build();
    conn.send(Command::new(
        CommandStatus::EsmeRok,
        c.sequence_number(),
        resp,
    ))
    .await;
    assert!(matches!(
        submit.await.expect("task"),
        Ok(SubmitOutcome::Accepted { .. })
    ));
    let receipt = b"id:42 sub:001 dlvrd:001 submit date:2611271430 done date:2611271431 stat:DELIVRD err:000 text:".to_vec();
    let seq = conn.request(deliver(0x04, 0, receipt)).await;
    assert_eq!(conn.response_to(seq).await, CommandStatus::EsmeRok);
    let receipt = match next_event(&mut events).await {
        Event::Receipt(r) => r,
        other => panic!("{other:?}"),
    };
    drop(conn);
    link.shutdown().await;

    let shown = format!("{mo:?} {receipt:?}");
    let logs = String::from_utf8_lossy(&captured.0.lock().expect("logs")).into_owned();
    assert!(
        logs.contains("***4567"),
        "the MO was logged, masked:\n{logs}"
    );
    for (what, clear) in [
        ("number", "9161234567"),
        ("text", "123-456"),
        ("text", "ВХОД"),
    ] {
        assert!(
            !logs.contains(clear),
            "{what} in clear in the logs:\n{logs}"
        );
        assert!(!shown.contains(clear), "{what} in clear in Debug: {shown}");
    }
}
