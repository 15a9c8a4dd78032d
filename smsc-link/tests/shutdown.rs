//! `Link::shutdown` finishes within its bound whatever the link is doing:
//! no SMSC at all, a bind never answered, a full window and a handler
//! that never returns against an SMSC that went silent.

mod common;

use std::time::Duration;

use common::{link_config, recorder, Fake, Slow, WAIT};
use futures::StreamExt;
use rusmpp::{
    pdus::DeliverSm,
    types::{COctetString, OctetString},
    CommandId, CommandStatus, Pdu,
};
use smsc_link::{codec::Frame, Error, Link, LinkConfig, SubmitOptions, SubmitOutcome};
use tokio::{net::TcpListener, time::Instant};

const PHONE: &str = "+79161234567";

type Answered = (Result<SubmitOutcome, Error>, Instant);

/// Spawns `n` submits; each task returns its result and when it came.
fn submits(link: &Link, n: usize) -> Vec<tokio::task::JoinHandle<Answered>> {
    (0..n)
        .map(|i| {
            let link = link.clone();
            tokio::spawn(async move {
                let result = link
                    .submit(PHONE, &format!("m{i}"), SubmitOptions::default())
                    .await;
                (result, Instant::now())
            })
        })
        .collect()
}

#[tokio::test]
async fn shutdown_answers_every_waiting_submit_at_once_when_no_smsc_answers() {
    // A closed port (connect refused, supervisors backing off) and a
    // listener that accepts but never answers the bind (mid-handshake).
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    };
    let silent = Fake::start().await;
    for addr in [closed, silent.addr] {
        let config = LinkConfig {
            queue_max: 4,
            binds: 2,
            reconnect_backoff_min_ms: 5_000,
            reconnect_backoff_max_ms: 5_000,
            ..link_config(addr)
        };
        let (handler, _events) = recorder(0);
        let link = Link::start(config, handler.clone(), handler).expect("config");
        // More than the queue holds: some wait for room in it.
        let waiting = submits(&link, 10);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(1), link.shutdown())
            .await
            .expect("shutdown within 1 s");
        for submit in waiting {
            let (result, _) = tokio::time::timeout(Duration::from_secs(1), submit)
                .await
                .expect("answered within 1 s")
                .expect("task");
            assert!(matches!(result, Err(Error::ShutDown)), "{result:?}");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(link.state().borrow().is_down());
    }
}

#[tokio::test]
async fn shutdown_is_bounded_against_a_silent_smsc_with_a_full_window_and_a_stuck_handler() {
    let fake = Fake::start().await;
    let config = LinkConfig {
        window_max: 5,
        shutdown_timeout_ms: 1_000,
        response_timeout_ms: 10_000,
        ..link_config(fake.addr)
    };
    // The MO handler never returns.
    let handler = Slow::default();
    let link = Link::start(config, handler.clone(), handler.clone()).expect("config");
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let mo = DeliverSm::builder()
        .source_addr(COctetString::from_string("79161234567".into()).expect("addr"))
        .destination_addr(COctetString::from_string("7377".into()).expect("addr"))
        .short_message(OctetString::from_vec(b"STOP".to_vec()).expect("fits"))
        .build();
    let mo_seq = conn.request(mo).await;
    handler.wait_seen(1).await;
    let waiting = submits(&link, 8);
    // The window fills; the SMSC answers nothing from now on.
    for _ in 0..5 {
        let c = conn.read().await;
        assert!(matches!(c.pdu(), Some(Pdu::SubmitSm(_))), "{c:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    tokio::time::timeout(Duration::from_millis(1_500), link.shutdown())
        .await
        .expect("shutdown within shutdown_timeout_ms");
    let mut unknown = 0;
    let mut shut_down = 0;
    for submit in waiting {
        let (result, at) = submit.await.expect("task");
        match result {
            Ok(SubmitOutcome::Unknown { .. }) => unknown += 1,
            Err(Error::ShutDown) => {
                // Never written: answered at once, not after the window.
                assert!(at - started < Duration::from_millis(300));
                shut_down += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((unknown, shut_down), (5, 3));
    assert!(started.elapsed() < Duration::from_millis(1_500));

    // The SMSC saw an unbind and no answer to the MO: it will redeliver.
    let mut saw_unbind = false;
    let read_all = async {
        while let Some(Ok(frame)) = conn.framed.next().await {
            if let Frame::Command(c) = frame {
                assert_ne!(
                    c.sequence_number(),
                    mo_seq,
                    "the stuck MO was answered: {c:?}"
                );
                saw_unbind |= c.id() == CommandId::Unbind;
            }
        }
    };
    let _ = tokio::time::timeout(WAIT, read_all).await;
    assert!(saw_unbind);
}
