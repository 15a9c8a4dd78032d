//! Random bytes fed to the session loop over `tokio::io::duplex`: the
//! simulator never panics, and everything it writes is a well-formed
//! response PDU (`rusmpp` decodes it), never more than one per input frame.

use bytes::BytesMut;
use proptest::prelude::*;
use rusmpp::{tokio_codec::CommandCodec, Command, CommandStatus, Pdu};
use simulator::{encode_to_vec, Config, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::{codec::Decoder, sync::CancellationToken};

fn bind_bytes() -> Vec<u8> {
    let bind = rusmpp::pdus::BindTransceiver::builder()
        .system_id(rusmpp::types::COctetString::from_string("checkin".into()).unwrap())
        .password(rusmpp::types::COctetString::from_string("checkin".into()).unwrap())
        .build();
    encode_to_vec(&Command::new(
        CommandStatus::EsmeRok,
        1,
        Pdu::BindTransceiver(bind),
    ))
}

fn feed(input: Vec<u8>) -> Vec<Command> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let sim = Simulator::new(Config::default()).unwrap();
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let session = sim.serve_connection(server, CancellationToken::new());
        let talk = async move {
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            let mut out = Vec::new();
            let _ = client.read_to_end(&mut out).await;
            out
        };
        let ((), out) = tokio::join!(session, talk);
        let mut buf = BytesMut::from(&out[..]);
        let mut codec = CommandCodec::new();
        let mut commands = Vec::new();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(command)) => commands.push(command),
                Ok(None) => break,
                Err(e) => panic!("the simulator wrote a PDU rusmpp cannot decode: {e}"),
            }
        }
        assert!(buf.is_empty(), "trailing bytes after the last PDU");
        commands
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_get_sane_answers(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let frames_max = bytes.len() / 16 + 1;
        let answers = feed(bytes);
        prop_assert!(answers.len() <= frames_max);
        for answer in answers {
            prop_assert!(answer.id().is_response(), "{answer:?}");
        }
    }

    #[test]
    fn random_pdus_after_a_bind_get_sane_answers(
        id in prop_oneof![Just(4u32), Just(5), Just(6), Just(0x15), Just(0x80000005), any::<u32>()],
        body in proptest::collection::vec(any::<u8>(), 0..300),
        seq in any::<u32>(),
    ) {
        let mut input = bind_bytes();
        let length = u32::try_from(16 + body.len()).unwrap();
        input.extend_from_slice(&length.to_be_bytes());
        input.extend_from_slice(&id.to_be_bytes());
        input.extend_from_slice(&[0, 0, 0, 0]);
        input.extend_from_slice(&seq.to_be_bytes());
        input.extend_from_slice(&body);
        let answers = feed(input);
        prop_assert!(!answers.is_empty());
        prop_assert_eq!(answers[0].status(), CommandStatus::EsmeRok);
        prop_assert!(answers.len() <= 2);
        for answer in &answers {
            prop_assert!(answer.id().is_response(), "{answer:?}");
        }
        if id & 0x8000_0000 == 0 && answers.len() == 2 {
            prop_assert_eq!(answers[1].sequence_number(), seq);
        }
    }
}
