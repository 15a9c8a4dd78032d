//! Golden bytes: PDUs the simulator writes, checked against bytes written
//! out by hand from the SMPP 3.4 layout (section 4.6.1 deliver_sm), not
//! against a round trip through the same library.

use rusmpp::{Command, CommandStatus, Pdu};
use simulator::{
    encode_to_vec,
    pdu::{mo_deliver_sm, receipt_deliver_sm, ReceiptFacts},
    store::ReceiptStat,
    text::{encode_parts, Encoding},
};

#[test]
fn mo_deliver_sm_in_ucs2() {
    let encoded = encode_parts("ВХОД", Encoding::Ucs2, 0).unwrap();
    let pdu = mo_deliver_sm(
        "+79161234567",
        "7377",
        encoded.data_coding,
        encoded.udhi,
        encoded.parts[0].clone(),
    )
    .unwrap();
    let bytes = encode_to_vec(&Command::new(
        CommandStatus::EsmeRok,
        1,
        Pdu::DeliverSm(pdu),
    ));

    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x00, 0x00, 0x00, 0x38][..],   // command_length 56
        &[0x00, 0x00, 0x00, 0x05],       // command_id deliver_sm
        &[0x00, 0x00, 0x00, 0x00],       // command_status
        &[0x00, 0x00, 0x00, 0x01],       // sequence_number
        &[0x00],                         // service_type ""
        &[0x01, 0x01],                   // source_addr_ton international, npi ISDN
        b"79161234567\0",                // source_addr
        &[0x00, 0x01],                   // dest_addr_ton unknown, npi ISDN
        b"7377\0",                       // destination_addr
        &[0x00],                         // esm_class
        &[0x00],                         // protocol_id
        &[0x00],                         // priority_flag
        &[0x00],                         // schedule_delivery_time ""
        &[0x00],                         // validity_period ""
        &[0x00],                         // registered_delivery
        &[0x00],                         // replace_if_present_flag
        &[0x08],                         // data_coding UCS2
        &[0x00],                         // sm_default_msg_id
        &[0x08],                         // sm_length
        &[0x04, 0x12, 0x04, 0x25, 0x04, 0x1E, 0x04, 0x14], // "ВХОД" UTF-16BE
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn mo_deliver_sm_concatenated_part_has_udhi_and_udh() {
    let text = "Я".repeat(80); // 160 octets in UCS2: two parts
    let encoded = encode_parts(&text, Encoding::Ucs2, 0x2A).unwrap();
    assert_eq!(encoded.parts.len(), 2);
    let pdu = mo_deliver_sm(
        "+79161234567",
        "7377",
        encoded.data_coding,
        encoded.udhi,
        encoded.parts[1].clone(),
    )
    .unwrap();
    let bytes = encode_to_vec(&Command::new(
        CommandStatus::EsmeRok,
        2,
        Pdu::DeliverSm(pdu),
    ));
    // esm_class sits after the header (16), service_type (1), source
    // ton/npi/addr (14) and dest ton/npi/addr (7).
    assert_eq!(bytes[38], 0x40, "UDHI");
    // short_message starts after 9 more fixed octets and sm_length.
    let sm_length = usize::from(bytes[38 + 9]);
    let sm = &bytes[38 + 10..];
    assert_eq!(sm.len(), sm_length);
    assert_eq!(&sm[..6], &[0x05, 0x00, 0x03, 0x2A, 0x02, 0x02]);
    assert_eq!(sm_length, 6 + 160 - 134);
}

#[test]
fn delivery_receipt() {
    let facts = ReceiptFacts {
        message_id: "0000002a".into(),
        mt_from: "7377".into(),
        mt_to: "+79161234567".into(),
        stat: ReceiptStat::Delivered,
        submit_date: "2611271410".into(),
        done_date: "2611271411".into(),
        text: "OK".into(),
    };
    let pdu = receipt_deliver_sm(&facts).unwrap();
    let bytes = encode_to_vec(&Command::new(
        CommandStatus::EsmeRok,
        7,
        Pdu::DeliverSm(pdu),
    ));

    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0x00, 0x00, 0x00, 0xA8][..],   // command_length 168
        &[0x00, 0x00, 0x00, 0x05],       // command_id deliver_sm
        &[0x00, 0x00, 0x00, 0x00],       // command_status
        &[0x00, 0x00, 0x00, 0x07],       // sequence_number
        &[0x00],                         // service_type ""
        &[0x01, 0x01],                   // source: the MT's recipient
        b"79161234567\0",
        &[0x00, 0x01],                   // destination: the MT's sender
        b"7377\0",
        &[0x04],                         // esm_class: MC delivery receipt
        &[0x00],                         // protocol_id
        &[0x00],                         // priority_flag
        &[0x00],                         // schedule_delivery_time
        &[0x00],                         // validity_period
        &[0x00],                         // registered_delivery
        &[0x00],                         // replace_if_present_flag
        &[0x00],                         // data_coding SMSC default
        &[0x00],                         // sm_default_msg_id
        &[0x66],                         // sm_length 102
        b"id:0000002a sub:001 dlvrd:001 submit date:2611271410 done date:2611271411 stat:DELIVRD err:000 text:OK",
        &[0x00, 0x1E, 0x00, 0x09],       // TLV receipted_message_id, length 9
        b"0000002a\0",
        &[0x04, 0x27, 0x00, 0x01],       // TLV message_state, length 1
        &[0x02],                         // DELIVERED
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn error_responses_have_no_body() {
    // SMPP 3.4 4.4.2: no submit_sm_resp body when command_status is an error.
    let command = simulator::pdu::bare_response(
        rusmpp::CommandId::SubmitSm,
        CommandStatus::EsmeRthrottled,
        3,
    );
    let bytes = encode_to_vec(&command);
    assert_eq!(
        bytes,
        [0, 0, 0, 16, 0x80, 0, 0, 4, 0, 0, 0, 0x58, 0, 0, 0, 3]
    );
}
