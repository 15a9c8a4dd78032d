//! Golden bytes: what goes on the wire, written out by hand from the SMPP
//! 3.4 layout (§4.1.5 bind_transceiver, §4.4.1 submit_sm) rather than
//! taken from a round trip.

use rusmpp::{Command, CommandStatus};
use smsc_link::{
    codec::encode_to_vec,
    pdu::{bind, submit_sm, BindKind},
    text::split,
    LinkConfig,
};

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
}
