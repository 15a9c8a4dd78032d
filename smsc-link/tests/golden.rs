//! Golden bytes: what goes on the wire, written out by hand from the SMPP
//! 3.4 layout (§4.1.5 bind_transceiver, §4.4.1 submit_sm) rather than
//! taken from a round trip. The link writes `submit_sm` through `rusmpp`'s
//! borrowed PDU ([`SubmitHeader::encode`]); a property test holds those
//! bytes equal to the owned PDU's for any addresses, options and text.
//! A `submit_sm` with TLVs takes the owned path; its bytes are pinned too.

use proptest::prelude::*;
use rusmpp::{
    tlvs::TlvValue,
    values::{ItsSessionInfo, UserMessageReference, UssdServiceOp},
    Command, CommandStatus,
};
use smsc_link::{
    codec::encode_to_vec,
    pdu::{bind, encode_submit_sm_with_tlvs, submit_sm, BindKind, SubmitHeader},
    text::split,
    LinkConfig, Tlv, TonNpi,
};
use tokio_util::codec::Decoder;

#[test]
fn bind_transceiver_bytes() {
    let config = LinkConfig {
        system_id: "checkin".into(),
        password: "secret".into(),
        ..LinkConfig::default()
    };
    let pdu = bind(&config, BindKind::Transceiver).expect("valid");
    let bytes = encode_to_vec(&Command::new(CommandStatus::EsmeRok, 1, pdu));
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x24, // command_length 36
        0x00, 0x00, 0x00, 0x09, // command_id bind_transceiver
        0x00, 0x00, 0x00, 0x00, // command_status
        0x00, 0x00, 0x00, 0x01, // sequence_number
        b'c', b'h', b'e', b'c', b'k', b'i', b'n', 0x00, // system_id
        b's', b'e', b'c', b'r', b'e', b't', 0x00, // password
        0x00, // system_type
        0x34, // interface_version 3.4
        0x00, // addr_ton
        0x00, // addr_npi
        0x00, // address_range
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn ucs2_submit_sm_with_concatenation_udh_bytes() {
    let config = LinkConfig::default();
    // 71 Cyrillic letters: 67 + 4 in two UCS2 segments; the second is pinned.
    let segments = split(&"ж".repeat(71), 0x2a).expect("fits");
    assert_eq!(segments.len(), 2);
    let body = submit_sm(&config, "7377", "+79161234567", &segments[1], true).expect("valid");
    let bytes = encode_to_vec(&Command::new(CommandStatus::EsmeRok, 2, body));
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x3e, // command_length 62
        0x00, 0x00, 0x00, 0x04, // command_id submit_sm
        0x00, 0x00, 0x00, 0x00, // command_status
        0x00, 0x00, 0x00, 0x02, // sequence_number
        0x00, // service_type ""
        0x03, 0x00, // source_addr_ton network specific, npi unknown
        b'7', b'3', b'7', b'7', 0x00, // source_addr
        0x01, 0x01, // dest_addr_ton international, npi ISDN
        b'7', b'9', b'1', b'6', b'1', b'2', b'3', b'4', b'5', b'6', b'7', 0x00,
        0x40, // esm_class: UDHI
        0x00, // protocol_id
        0x00, // priority_flag
        0x00, // schedule_delivery_time
        0x00, // validity_period
        0x01, // registered_delivery: MC receipt
        0x00, // replace_if_present_flag
        0x08, // data_coding UCS2
        0x00, // sm_default_msg_id
        0x0e, // sm_length 14
        0x05, 0x00, 0x03, 0x2a, 0x02, 0x02, // UDH: concat 8-bit, ref 0x2a, 2 parts, part 2
        0x04, 0x36, 0x04, 0x36, 0x04, 0x36, 0x04, 0x36, // "жжжж" UTF-16BE
    ];
    assert_eq!(bytes, expected);
    // The link's encoder (the borrowed PDU) writes the same bytes.
    let mut borrowed = Vec::new();
    SubmitHeader::new(&config, "7377", "+79161234567", true)
        .expect("valid")
        .encode(&segments[1], 2, &mut borrowed)
        .expect("fits");
    assert_eq!(borrowed, expected);
}

#[test]
fn the_borrowed_encoder_refuses_what_the_owned_one_refuses() {
    let config = LinkConfig::default();
    let segment = &split("hi", 1).expect("fits")[0];
    for (source, to) in [
        ("7377", "+7916abc"),
        ("7377", ""),
        ("7377", "+123456789012345678901"),
        ("this source is far too long", "+79161234567"),
        ("123456789012345678901", "+79161234567"),
        ("12345678901234567890", "+79161234567"),
        ("73\u{0}77", "+79161234567"),
        ("Тверская", "+79161234567"),
    ] {
        let borrowed = SubmitHeader::new(&config, source, to, false);
        let rusmpp = submit_sm(&config, source, to, segment, false);
        assert_eq!(
            borrowed.map(|_| ()).map_err(|e| e.to_string()),
            rusmpp.map(|_| ()).map_err(|e| e.to_string()),
            "{source:?} → {to:?}"
        );
    }
}

proptest! {
    /// Any addresses, TON/NPI, receipt flag and text: the borrowed PDU's
    /// bytes are the owned PDU's bytes, segment by segment.
    #[test]
    fn borrowed_submit_sm_bytes_equal_owned_bytes(
        source in "[A-Za-z0-9 ]{0,20}",
        plus in any::<bool>(),
        digits in "[0-9]{1,20}",
        text in "(\\PC|[a-z ]){0,400}",
        source_ton in any::<u8>(),
        source_npi in any::<u8>(),
        dest_ton in any::<u8>(),
        dest_npi in any::<u8>(),
        receipt in any::<bool>(),
        sequence in 1u32..0x7fff_ffff,
    ) {
        let config = LinkConfig {
            source_ton_npi: TonNpi { ton: source_ton, npi: source_npi },
            dest_ton_npi: TonNpi { ton: dest_ton, npi: dest_npi },
            ..LinkConfig::default()
        };
        let to = if plus { format!("+{digits}") } else { digits };
        let Ok(segments) = split(&text, 7) else {
            return Ok(());
        };
        let header = SubmitHeader::new(&config, &source, &to, receipt).expect("valid");
        for segment in &segments {
            let body = submit_sm(&config, &source, &to, segment, receipt).expect("valid");
            let expected = encode_to_vec(&Command::new(CommandStatus::EsmeRok, sequence, body));
            let mut borrowed = Vec::new();
            header.encode(segment, sequence, &mut borrowed).expect("fits");
            prop_assert_eq!(header.encoded_len(segment), expected.len());
            prop_assert_eq!(borrowed, expected);
        }
    }
}

#[test]
fn submit_sm_with_tlvs_bytes() {
    let config = LinkConfig::default();
    let segments = split("hi", 0).expect("fits");
    let tlvs = [
        Tlv::new(Tlv::USSD_SERVICE_OP, [0x11]),
        Tlv::new(Tlv::ITS_SESSION_INFO, [0x07, 0x02]),
        Tlv::new(Tlv::USER_MESSAGE_REFERENCE, [0x00, 0x2a]),
    ];
    let mut bytes = Vec::new();
    encode_submit_sm_with_tlvs(
        &config,
        "7377",
        "+79161234567",
        &segments[0],
        false,
        &tlvs,
        3,
        &mut bytes,
    )
    .expect("valid");
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x43, // command_length 67
        0x00, 0x00, 0x00, 0x04, // command_id submit_sm
        0x00, 0x00, 0x00, 0x00, // command_status
        0x00, 0x00, 0x00, 0x03, // sequence_number
        0x00, // service_type ""
        0x03, 0x00, // source_addr_ton network specific, npi unknown
        b'7', b'3', b'7', b'7', 0x00, // source_addr
        0x01, 0x01, // dest_addr_ton international, npi ISDN
        b'7', b'9', b'1', b'6', b'1', b'2', b'3', b'4', b'5', b'6', b'7', 0x00,
        0x00, // esm_class
        0x00, // protocol_id
        0x00, // priority_flag
        0x00, // schedule_delivery_time
        0x00, // validity_period
        0x00, // registered_delivery: none
        0x00, // replace_if_present_flag
        0x00, // data_coding GSM 7-bit
        0x00, // sm_default_msg_id
        0x02, // sm_length 2
        b'h', b'i',
        0x05, 0x01, 0x00, 0x01, 0x11, // ussd_service_op: PSSR response
        0x13, 0x83, 0x00, 0x02, 0x07, 0x02, // its_session_info: session 7, seq 1 (not last)
        0x02, 0x04, 0x00, 0x02, 0x00, 0x2a, // user_message_reference 42
    ];
    assert_eq!(bytes, expected);
    // rusmpp reads back the typed values.
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let command = rusmpp::tokio_codec::CommandCodec::new()
        .decode(&mut buf)
        .expect("decodes")
        .expect("whole");
    let Some(rusmpp::Pdu::SubmitSm(sm)) = command.pdu() else {
        panic!("{command:?}")
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
            TlvValue::ItsSessionInfo(ItsSessionInfo::new(7, 2)),
            TlvValue::UserMessageReference(UserMessageReference::new(42)),
        ]
    );
}
