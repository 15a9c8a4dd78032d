//! A bind whose `system_id` or `password` is longer than SMPP 3.4 allows
//! is answered like real SMSCs do: with the bind's own response and
//! ESME_RINVSYSID / ESME_RINVPASWD, not `generic_nack`. The bind bytes are
//! written by hand on a raw socket; the answer is decoded with `rusmpp`.

mod common;

use bytes::BytesMut;
use common::start;
use rusmpp::{tokio_codec::CommandCodec, Command, CommandId, CommandStatus};
use simulator::Config;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_util::codec::Decoder;

/// The bytes of a bind PDU (`command_id` 1, 2 or 9), SMPP 3.4 layout.
fn bind_bytes(command_id: u32, seq: u32, system_id: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for field in [system_id, password, ""] {
        body.extend_from_slice(field.as_bytes());
        body.push(0);
    }
    // interface_version, addr_ton, addr_npi, empty address_range.
    body.extend_from_slice(&[0x34, 0, 0, 0]);
    let mut pdu = Vec::new();
    pdu.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    pdu.extend_from_slice(&command_id.to_be_bytes());
    pdu.extend_from_slice(&0u32.to_be_bytes());
    pdu.extend_from_slice(&seq.to_be_bytes());
    pdu.extend_from_slice(&body);
    pdu
}

/// Reads one PDU off the socket and decodes it with `rusmpp`.
async fn read_command(socket: &mut TcpStream) -> Command {
    let mut length = [0u8; 4];
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.read_exact(&mut length),
    )
    .await
    .expect("an answer in time")
    .expect("read");
    let mut frame = vec![0u8; u32::from_be_bytes(length) as usize];
    frame[..4].copy_from_slice(&length);
    socket.read_exact(&mut frame[4..]).await.expect("read");
    let mut buf = BytesMut::from(&frame[..]);
    CommandCodec::new()
        .decode(&mut buf)
        .expect("rusmpp decodes the answer")
        .expect("a whole pdu")
}

#[tokio::test]
async fn an_overlong_system_id_or_password_gets_the_binds_own_response() {
    let run = start(Config::default()).await;
    let mut socket = TcpStream::connect(run.smpp).await.expect("connect");
    let cases = [
        // (bind, system_id, password, response, status)
        (
            0x09,
            "checkin-much-too-long",
            "checkin",
            CommandId::BindTransceiverResp,
            CommandStatus::EsmeRinvsysid,
        ),
        (
            0x09,
            "checkin",
            "password-too-long",
            CommandId::BindTransceiverResp,
            CommandStatus::EsmeRinvpaswd,
        ),
        (
            0x02,
            "checkin",
            "123456789",
            CommandId::BindTransmitterResp,
            CommandStatus::EsmeRinvpaswd,
        ),
        (
            0x01,
            "sixteen-chars-id",
            "checkin",
            CommandId::BindReceiverResp,
            CommandStatus::EsmeRinvsysid,
        ),
    ];
    for (seq, (bind, system_id, password, response, status)) in (1u32..).zip(cases) {
        socket
            .write_all(&bind_bytes(bind, seq, system_id, password))
            .await
            .expect("write");
        let answer = read_command(&mut socket).await;
        assert_eq!(
            (answer.id(), answer.status(), answer.sequence_number()),
            (response, status, seq),
            "{system_id:?}/{password:?}"
        );
    }
    // The connection stays usable: a bind within the limits succeeds.
    socket
        .write_all(&bind_bytes(0x09, 9, "checkin", "checkin"))
        .await
        .expect("write");
    let answer = read_command(&mut socket).await;
    assert_eq!(
        (answer.id(), answer.status(), answer.sequence_number()),
        (CommandId::BindTransceiverResp, CommandStatus::EsmeRok, 9)
    );
}
