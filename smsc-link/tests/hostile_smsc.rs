//! The link against a hostile or broken SMSC (issue 19, item 4): each case
//! gets the answer a strict SMPP peer gives (`generic_nack`, `unbind`, a
//! closed connection), within a bounded time and memory, and the link binds
//! again. The SMSC here is a raw socket on 127.0.0.1:0 writing bytes that
//! no codec would produce.

mod common;

use std::time::{Duration, Instant};

use common::{link_config, recorder, Conn, Fake, WAIT};
use futures::StreamExt;
use rusmpp::{
    pdus::{AlertNotification, SubmitSmResp},
    types::COctetString,
    Command, CommandId, CommandStatus, Pdu,
};
use smsc_link::{
    codec::{encode_to_vec, Frame, LinkCodec},
    Link, LinkConfig, SubmitOptions, SubmitOutcome,
};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

const PHONE: &str = "+79161234567";

/// Slack over a configured timeout for the scheduler and the 50 ms tick.
const SLACK: Duration = Duration::from_millis(1_500);

fn start(config: LinkConfig) -> Link {
    let (handler, _events) = recorder(0);
    Link::start(config, handler.clone(), handler).expect("config")
}

/// A header alone: `command_length`, `command_id`, status 0, `seq`.
fn header(command_length: u32, command_id: u32, seq: u32) -> Vec<u8> {
    [command_length, command_id, 0, seq]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

fn enquire_link(seq: u32) -> Vec<u8> {
    header(16, 0x0000_0015, seq)
}

/// `(command_id, command_status, sequence_number)` of a frame the link wrote.
fn seen(frame: &Frame) -> (CommandId, CommandStatus, u32) {
    match frame {
        Frame::Command(c) => (c.id(), c.status(), c.sequence_number()),
        other => panic!("the link wrote an unexpected frame: {other:?}"),
    }
}

/// The link binds again after a connection it closed.
async fn binds_again(fake: &Fake, link: &Link) -> Conn {
    let conn = fake.accept(CommandStatus::EsmeRok).await;
    assert!(
        tokio::time::timeout(WAIT, link.wait_bound(1))
            .await
            .expect("bound again in time"),
        "bound again"
    );
    conn
}

/// The SMSC writes `bytes` whose `command_length` breaks the stream: the
/// link answers `generic_nack` ESME_RINVCMDLEN with the header's sequence
/// number, unbinds, closes at once and binds again.
async fn a_broken_length_is_nacked_unbound_and_closed(bytes: &[u8], seq: u32) {
    let fake = Fake::start().await;
    let link = start(link_config(fake.addr));
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    conn.write_raw(bytes).await;
    let started = Instant::now();
    let frames = conn.until_closed().await;
    assert!(
        started.elapsed() < SLACK,
        "closed at once, not after {:?}",
        started.elapsed()
    );
    let frames: Vec<_> = frames.iter().map(seen).collect();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        frames[0],
        (CommandId::GenericNack, CommandStatus::EsmeRinvcmdlen, seq)
    );
    assert_eq!(
        (frames[1].0, frames[1].1),
        (CommandId::Unbind, CommandStatus::EsmeRok)
    );
    binds_again(&fake, &link).await;
    link.shutdown().await;
}

#[tokio::test]
async fn garbage_bytes_get_generic_nack_rinvcmdlen_an_unbind_and_a_new_bind() {
    // An HTTP request: "GET " read as a command_length is about 1.2 GB.
    let garbage = b"GET / HTTP/1.1\r\nHost: smsc\r\n\r\n";
    let seq = u32::from_be_bytes(garbage[12..16].try_into().expect("4 octets"));
    a_broken_length_is_nacked_unbound_and_closed(garbage, seq).await;
}

#[tokio::test]
async fn garbage_for_a_bind_resp_gets_generic_nack_and_a_new_bind() {
    let fake = Fake::start().await;
    let link = start(link_config(fake.addr));
    let (mut conn, _bind) = fake.accept_unanswered().await;
    conn.write_raw(&header(3, 0x8000_0009, 1)).await;
    // Not bound, so no unbind: the answer, then the close.
    let frames: Vec<_> = conn.until_closed().await.iter().map(seen).collect();
    assert_eq!(
        frames,
        [(CommandId::GenericNack, CommandStatus::EsmeRinvcmdlen, 1)]
    );
    binds_again(&fake, &link).await;
    link.shutdown().await;
}

#[tokio::test]
async fn a_command_length_over_the_limit_gets_generic_nack_without_being_buffered() {
    // The header promises one octet more than the limit and nothing follows:
    // the link must answer from the header, not wait for 64 KiB.
    let over = u32::try_from(smsc_link::codec::PDU_LEN_MAX + 1).expect("fits");
    a_broken_length_is_nacked_unbound_and_closed(&header(over, 0x0000_0015, 7), 7).await;
}

#[tokio::test]
async fn a_command_length_under_16_gets_generic_nack_an_unbind_and_a_new_bind() {
    let mut bytes = header(8, 0x0000_0015, 9);
    bytes.extend_from_slice(&enquire_link(10));
    a_broken_length_is_nacked_unbound_and_closed(&bytes, 9).await;
}

#[tokio::test]
async fn an_unknown_command_id_gets_generic_nack_rinvcmdid_an_alert_notification_nothing() {
    let fake = Fake::start().await;
    let link = start(link_config(fake.addr));
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    // alert_notification first: SMPP gives it no response, not even a nack.
    let alert = AlertNotification::builder()
        .source_addr(COctetString::from_string("79161234567".into()).expect("addr"))
        .esme_addr(COctetString::from_string("7377".into()).expect("addr"))
        .build();
    let mut bytes = encode_to_vec(&Command::new(CommandStatus::EsmeRok, 10, alert));
    bytes.extend(header(20, 0x0000_0555, 11));
    bytes.extend_from_slice(b"\x01\x02\x03\x04");
    conn.write_raw(&bytes).await;
    let nack = conn.command().await;
    assert_eq!(
        (nack.id(), nack.status(), nack.sequence_number()),
        (CommandId::GenericNack, CommandStatus::EsmeRinvcmdid, 11)
    );
    // The stream is intact: the same connection goes on.
    conn.write_raw(&enquire_link(12)).await;
    let resp = conn.command().await;
    assert_eq!(
        (resp.id(), resp.sequence_number()),
        (CommandId::EnquireLinkResp, 12)
    );
    link.shutdown().await;
}

#[tokio::test]
async fn responses_to_sequence_numbers_never_sent_are_dropped_unanswered() {
    let fake = Fake::start().await;
    let link = start(link_config(fake.addr));
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let reply = link
        .enqueue(PHONE, "hello", &SubmitOptions::default())
        .await
        .expect("queued");
    let submit = conn.read().await;
    assert!(matches!(submit.pdu(), Some(Pdu::SubmitSm(_))), "{submit:?}");
    let seq = submit.sequence_number();
    let stray = |seq: u32, id: &str| {
        let resp = SubmitSmResp::builder()
            .message_id(COctetString::from_string(id.into()).expect("id"))
            .build();
        encode_to_vec(&Command::new(CommandStatus::EsmeRok, seq, resp))
    };
    // A submit_sm_resp, a failing one without a body, a generic_nack, an
    // enquire_link_resp, an unbind_resp and an unknown response, all to
    // sequence numbers the link never used.
    let mut bytes = stray(seq + 1_000, "111");
    let mut throttled = header(16, 0x8000_0004, seq + 1_001);
    throttled[8..12].copy_from_slice(&0x58u32.to_be_bytes());
    bytes.extend(throttled);
    bytes.extend(header(16, 0x8000_0000, seq + 1_002));
    bytes.extend(header(16, 0x8000_0015, seq + 1_003));
    bytes.extend(header(16, 0x8000_0006, seq + 1_004));
    bytes.extend(header(16, 0x8000_0555, seq + 1_005));
    bytes.extend(enquire_link(77));
    conn.write_raw(&bytes).await;
    // Nothing was answered before the enquire_link: responses are not
    // answered, whatever their sequence number.
    let resp = conn.command().await;
    assert_eq!(
        (resp.id(), resp.sequence_number()),
        (CommandId::EnquireLinkResp, 77)
    );
    // The real submit is still waiting for its own response.
    conn.write_raw(&stray(seq, "222")).await;
    let outcome = tokio::time::timeout(WAIT, reply)
        .await
        .expect("answered in time")
        .expect("answered")
        .expect("sent");
    assert_eq!(
        outcome,
        SubmitOutcome::Accepted {
            message_ids: vec!["222".into()]
        }
    );
    link.shutdown().await;
}

#[tokio::test]
async fn a_bind_never_answered_times_out_within_the_response_timeout_and_binds_again() {
    let fake = Fake::start().await;
    let config = link_config(fake.addr);
    let timeout = Duration::from_millis(config.response_timeout_ms);
    let link = start(config);
    let (mut conn, bind) = fake.accept_unanswered().await;
    assert_eq!(bind.id(), CommandId::BindTransceiver);
    let started = Instant::now();
    let frames = conn.until_closed().await;
    let took = started.elapsed();
    assert!(frames.is_empty(), "{frames:?}");
    assert!(
        took + SLACK > timeout && took < timeout + SLACK,
        "closed after {took:?}, not the response timeout {timeout:?}"
    );
    binds_again(&fake, &link).await;
    link.shutdown().await;
}

/// Writes `bytes` to the link one octet every `pace`, then nothing, until
/// the link closes `conn`; the frames it wrote meanwhile and how long it took.
async fn trickle(conn: Conn, bytes: &[u8], pace: Duration) -> (Vec<Frame>, Duration) {
    let (read, mut write) = conn.framed.into_inner().into_split();
    let started = Instant::now();
    let bytes = bytes.to_vec();
    let writer = tokio::spawn(async move {
        for byte in bytes {
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(pace).await;
        }
        // Then silence, the connection held open.
        std::future::pending::<()>().await;
    });
    let mut frames = Vec::new();
    let mut read = FramedRead::new(read, LinkCodec::default());
    let read_all = async {
        while let Some(Ok(frame)) = read.next().await {
            frames.push(frame);
        }
    };
    tokio::time::timeout(WAIT, read_all)
        .await
        .expect("the link closed the connection in time");
    writer.abort();
    (frames, started.elapsed())
}

#[tokio::test]
async fn a_pdu_trickled_one_byte_a_second_is_given_up_within_the_response_timeout() {
    let fake = Fake::start().await;
    let config = link_config(fake.addr);
    let timeout = Duration::from_millis(config.response_timeout_ms);
    // enquire_link at its default (30 s) is far beyond the test: only a
    // deadline on the half PDU can end this.
    let link = start(config);
    let conn = fake.accept(CommandStatus::EsmeRok).await;
    let (frames, took) = trickle(conn, &enquire_link(5), Duration::from_secs(1)).await;
    assert!(
        took < timeout + SLACK,
        "a half pdu held for {took:?}, over the response timeout {timeout:?}"
    );
    let frames: Vec<_> = frames.iter().map(|f| seen(f).0).collect();
    assert_eq!(frames, [CommandId::Unbind]);
    binds_again(&fake, &link).await;
    link.shutdown().await;
}

#[tokio::test]
async fn a_bind_resp_trickled_one_byte_a_second_times_out_with_the_bind() {
    let fake = Fake::start().await;
    let config = link_config(fake.addr);
    let timeout = Duration::from_millis(config.response_timeout_ms);
    let link = start(config);
    let (conn, bind) = fake.accept_unanswered().await;
    let resp = encode_to_vec(&Command::new(
        CommandStatus::EsmeRok,
        bind.sequence_number(),
        Pdu::BindTransceiverResp(Default::default()),
    ));
    let (frames, took) = trickle(conn, &resp, Duration::from_secs(1)).await;
    assert!(frames.is_empty(), "{frames:?}");
    assert!(took < timeout + SLACK, "bind held for {took:?}");
    binds_again(&fake, &link).await;
    link.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_enquire_link_is_answered_one_for_one_and_the_bind_stays_usable() {
    const FLOOD: u32 = 20_000;
    let fake = Fake::start().await;
    let link = start(link_config(fake.addr));
    let conn = fake.accept(CommandStatus::EsmeRok).await;
    let (read, mut write) = conn.framed.into_inner().into_split();
    let flood: Vec<u8> = (1..=FLOOD).flat_map(enquire_link).collect();
    let writer = tokio::spawn(async move {
        write.write_all(&flood).await.expect("flood written");
        write
    });
    let mut read = FramedRead::new(read, LinkCodec::default());
    for seq in 1..=FLOOD {
        let frame = tokio::time::timeout(WAIT, read.next())
            .await
            .expect("answered in time")
            .expect("open")
            .expect("readable");
        assert_eq!(
            seen(&frame),
            (CommandId::EnquireLinkResp, CommandStatus::EsmeRok, seq)
        );
    }
    let mut write = writer.await.expect("writer");
    // The same bind still submits.
    let reply = link
        .enqueue(PHONE, "after the flood", &SubmitOptions::default())
        .await
        .expect("queued");
    let frame = tokio::time::timeout(WAIT, read.next())
        .await
        .expect("a submit in time")
        .expect("open")
        .expect("readable");
    let Frame::Command(submit) = frame else {
        panic!("expected a submit_sm, got {frame:?}");
    };
    assert_eq!(submit.id(), CommandId::SubmitSm);
    let resp = SubmitSmResp::builder()
        .message_id(COctetString::from_string("42".into()).expect("id"))
        .build();
    let resp = encode_to_vec(&Command::new(
        CommandStatus::EsmeRok,
        submit.sequence_number(),
        resp,
    ));
    write.write_all(&resp).await.expect("write");
    let outcome = tokio::time::timeout(WAIT, reply)
        .await
        .expect("answered in time")
        .expect("answered");
    assert!(
        matches!(outcome, Ok(SubmitOutcome::Accepted { .. })),
        "{outcome:?}"
    );
    link.shutdown().await;
}

#[tokio::test]
async fn a_flood_whose_answers_are_never_read_is_held_by_tcp_and_ended_by_the_write_deadline() {
    // Far more than any socket buffers: if the link read it all, it kept it.
    const FLOOD_MAX: usize = 256 << 20;
    const BUFFERED_MAX: usize = 64 << 20;
    let fake = Fake::start().await;
    let config = link_config(fake.addr);
    let timeout = Duration::from_millis(config.response_timeout_ms);
    let link = start(config);
    let conn = fake.accept(CommandStatus::EsmeRok).await;
    // The SMSC writes and never reads: the link's answers back up.
    let (read, mut write) = conn.framed.into_inner().into_split();
    // Small chunks: the last one written dates the stall closely.
    let chunk: Vec<u8> = (1..=1_024).flat_map(enquire_link).collect();
    let flood = async {
        let mut written = 0;
        let mut progress_at = Instant::now();
        while written < FLOOD_MAX {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
            written += chunk.len();
            progress_at = Instant::now();
        }
        (written, progress_at.elapsed())
    };
    let (written, stalled) = tokio::time::timeout(WAIT, flood)
        .await
        .expect("the link closed the connection in time");
    assert!(
        written < BUFFERED_MAX,
        "the link took {written} octets it could not answer"
    );
    // Once the buffers are full (which takes a moment), the link's write
    // deadline ends the connection.
    assert!(
        stalled < timeout + SLACK,
        "stalled for {stalled:?} before the link closed"
    );
    drop(read);
    binds_again(&fake, &link).await;
    link.shutdown().await;
}
