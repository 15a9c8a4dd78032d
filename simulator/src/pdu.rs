//! The PDUs the simulator writes (MO `deliver_sm`, receipts, responses),
//! built with `rusmpp` types, and the names used in stats and the journal.

use rusmpp::{
    pdus::DeliverSm,
    tlvs::MessageDeliveryRequestTlvValue,
    types::{COctetString, OctetString},
    values::{EsmClass, MessageState, Npi, Ton},
    Command, CommandId, CommandStatus, Pdu,
};

use crate::{store::ReceiptStat, Error};

/// `ESME_ROK`-style name of a status (`0x000000AB` for unnamed ones).
pub fn status_name(status: CommandStatus) -> String {
    match status {
        // The spec spells these three with inner underscores.
        CommandStatus::EsmeRxTAppn => return "ESME_RX_T_APPN".into(),
        CommandStatus::EsmeRxPAppn => return "ESME_RX_P_APPN".into(),
        CommandStatus::EsmeRxRAppn => return "ESME_RX_R_APPN".into(),
        _ => {}
    }
    let debug = format!("{status:?}");
    match debug.strip_prefix("Esme") {
        Some(rest) if !debug.starts_with("Other") => format!("ESME_{}", rest.to_uppercase()),
        _ => format!("0x{:08X}", u32::from(status)),
    }
}

/// `submit_sm`-style name of a command id (`0x000000AB` for unknown ones).
pub fn command_name(id: CommandId) -> String {
    if let CommandId::Other(raw) = id {
        return format!("0x{raw:08X}");
    }
    let debug = format!("{id:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// An address as SMPP carries it: `+79161234567` (spaces, dashes and
/// brackets ignored) → TON international, NPI ISDN, `79161234567`; digits
/// only → TON unknown, NPI ISDN; anything else → TON alphanumeric, NPI unknown.
pub fn address(number: &str) -> Result<(Ton, Npi, COctetString<1, 21>), Error> {
    let bad = || {
        Error::BadRequest(format!(
            "address {number:?} must be 1..=20 ASCII characters"
        ))
    };
    let compact: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let (ton, npi, value) = match compact.strip_prefix('+') {
        Some(rest) if all_digits(rest) => (Ton::International, Npi::Isdn, rest.to_string()),
        None if all_digits(&compact) => (Ton::Unknown, Npi::Isdn, compact.clone()),
        _ => (Ton::Alphanumeric, Npi::Unknown, number.to_string()),
    };
    if value.is_empty() || !value.is_ascii() {
        return Err(bad());
    }
    let value = COctetString::from_string(value).map_err(|_| bad())?;
    Ok((ton, npi, value))
}

/// A mobile-originated `deliver_sm` carrying one encoded part.
pub fn mo_deliver_sm(
    from: &str,
    to: &str,
    data_coding: u8,
    udhi: bool,
    short_message: Vec<u8>,
) -> Result<DeliverSm, Error> {
    let (source_ton, source_npi, source) = address(from)?;
    let (dest_ton, dest_npi, dest) = address(to)?;
    let esm_class = EsmClass::from(if udhi { 0x40 } else { 0x00 });
    let short_message = OctetString::from_vec(short_message)
        .map_err(|_| Error::BadRequest("short message longer than 255 octets".into()))?;
    Ok(DeliverSm::builder()
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(source)
        .dest_addr_ton(dest_ton)
        .dest_addr_npi(dest_npi)
        .destination_addr(dest)
        .esm_class(esm_class)
        .data_coding(data_coding.into())
        .short_message(short_message)
        .build())
}

/// What a receipt reports.
#[derive(Debug, Clone)]
pub struct ReceiptFacts {
    /// Message id given in `submit_sm_resp`.
    pub message_id: String,
    /// The MT's `source_addr` (becomes the receipt's destination).
    pub mt_from: String,
    /// The MT's `destination_addr` (becomes the receipt's source).
    pub mt_to: String,
    /// Outcome.
    pub stat: ReceiptStat,
    /// `submit date`, `YYMMDDhhmm`.
    pub submit_date: String,
    /// `done date`, `YYMMDDhhmm`.
    pub done_date: String,
    /// First characters of the message (`text:`), at most 20.
    pub text: String,
}

/// The standard receipt text (SMPP 3.4 appendix B).
pub fn receipt_text(facts: &ReceiptFacts) -> String {
    let dlvrd = if facts.stat == ReceiptStat::Delivered {
        "001"
    } else {
        "000"
    };
    let text: String = facts
        .text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(20)
        .collect();
    format!(
        "id:{} sub:001 dlvrd:{} submit date:{} done date:{} stat:{} err:{} text:{}",
        facts.message_id,
        dlvrd,
        facts.submit_date,
        facts.done_date,
        facts.stat.word(),
        facts.stat.err_code(),
        text
    )
}

/// A delivery receipt `deliver_sm`: esm_class 0x04, the standard text and
/// the `receipted_message_id` and `message_state` TLVs.
pub fn receipt_deliver_sm(facts: &ReceiptFacts) -> Result<DeliverSm, Error> {
    let (source_ton, source_npi, source) = address(&facts.mt_to)?;
    let (dest_ton, dest_npi, dest) = address(&facts.mt_from)?;
    let text = receipt_text(facts);
    let short_message = OctetString::from_vec(text.into_bytes())
        .map_err(|_| Error::BadRequest("receipt text too long".into()))?;
    let receipted = COctetString::from_string(facts.message_id.clone())
        .map_err(|_| Error::BadRequest("message id too long".into()))?;
    let state = match facts.stat {
        ReceiptStat::Delivered => MessageState::Delivered,
        ReceiptStat::Undeliverable => MessageState::Undeliverable,
        ReceiptStat::Expired => MessageState::Expired,
    };
    Ok(DeliverSm::builder()
        .source_addr_ton(source_ton)
        .source_addr_npi(source_npi)
        .source_addr(source)
        .dest_addr_ton(dest_ton)
        .dest_addr_npi(dest_npi)
        .destination_addr(dest)
        .esm_class(EsmClass::from(0x04))
        .short_message(short_message)
        .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
            receipted,
        ))
        .push_tlv(MessageDeliveryRequestTlvValue::MessageState(state))
        .build())
}

/// A response with an empty body: SMPP 3.4 sends no body when
/// `command_status` is an error.
pub fn bare_response(request: CommandId, status: CommandStatus, sequence_number: u32) -> Command {
    let id = if request == CommandId::GenericNack {
        CommandId::GenericNack
    } else {
        request.matching_response()
    };
    let pdu = match id {
        CommandId::GenericNack => Pdu::GenericNack,
        CommandId::EnquireLinkResp => Pdu::EnquireLinkResp,
        CommandId::UnbindResp => Pdu::UnbindResp,
        _ => Pdu::Other {
            command_id: id,
            body: Default::default(),
        },
    };
    Command::new(status, sequence_number, pdu)
}

/// A `generic_nack`.
pub fn generic_nack(status: CommandStatus, sequence_number: u32) -> Command {
    Command::new(status, sequence_number, Pdu::GenericNack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let (ton, npi, value) = address("+7 (916) 123-45-67").unwrap();
        assert_eq!(
            (ton, npi, value.as_str()),
            (Ton::International, Npi::Isdn, "79161234567")
        );
        let (ton, _, value) = address("7377").unwrap();
        assert_eq!((ton, value.as_str()), (Ton::Unknown, "7377"));
        let (ton, _, value) = address("MOSRU").unwrap();
        assert_eq!((ton, value.as_str()), (Ton::Alphanumeric, "MOSRU"));
        assert!(address("").is_err());
        assert!(address("Москва").is_err());
        assert!(address(&"1".repeat(21)).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(status_name(CommandStatus::EsmeRok), "ESME_ROK");
        assert_eq!(
            status_name(CommandStatus::EsmeRthrottled),
            "ESME_RTHROTTLED"
        );
        assert_eq!(status_name(CommandStatus::Other(0x400)), "0x00000400");
        assert_eq!(status_name(CommandStatus::EsmeRxTAppn), "ESME_RX_T_APPN");
        assert_eq!(command_name(CommandId::DeliverSmResp), "deliver_sm_resp");
        assert_eq!(command_name(CommandId::Other(7)), "0x00000007");
    }

    #[test]
    fn receipt_text_layout() {
        let facts = ReceiptFacts {
            message_id: "0000002a".into(),
            mt_from: "7377".into(),
            mt_to: "+79161234567".into(),
            stat: ReceiptStat::Delivered,
            submit_date: "2611271410".into(),
            done_date: "2611271411".into(),
            text: "Вы отметились at cafe on Tverskaya".into(),
        };
        assert_eq!(
            receipt_text(&facts),
            "id:0000002a sub:001 dlvrd:001 submit date:2611271410 done date:2611271411 stat:DELIVRD err:000 text:?? ?????????? at caf"
        );
    }
}
