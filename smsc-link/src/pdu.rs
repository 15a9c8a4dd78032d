//! Frame → meaning and back: the PDUs the link writes (binds, `submit_sm`,
//! responses), built with `rusmpp` types, and what an incoming
//! `deliver_sm` or `data_sm` means (an MO part or a receipt).

use rusmpp::{
    pdus::{BindReceiver, BindTransceiver, BindTransmitter, SubmitSm},
    tlvs::TlvValue,
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass, InterfaceVersion, Npi, RegisteredDelivery, ServiceType, Ton},
    CommandStatus, Pdu,
};
use rusmpp_core::encode::{Encode, Length};

/// `rusmpp`'s borrowed PDUs: they point into the caller's buffers.
mod borrowed {
    pub(super) use rusmpp_core::{
        command::borrowed::Command,
        pdus::borrowed::SubmitSm,
        types::borrowed::{COctetString, OctetString},
    };
}

use crate::{
    config::{IdRadix, LinkConfig},
    receipt::{normalize_id, parse_receipt_text, DeliveryState, Receipt},
    text::{parse_udh, PartInfo, Segment},
    tlv::Tlv,
    Error, SubmitOptions,
};

/// Which bind a connection makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    /// `bind_transceiver`.
    Transceiver,
    /// `bind_transmitter`.
    Transmitter,
    /// `bind_receiver`.
    Receiver,
}

impl BindKind {
    /// True when this bind carries `submit_sm`.
    pub fn submits(self) -> bool {
        self != Self::Receiver
    }
}

fn c_string<const MIN: usize, const MAX: usize>(
    value: &str,
    what: &str,
) -> Result<COctetString<MIN, MAX>, Error> {
    // Room for the terminating NUL, so that it is not a second allocation.
    let mut owned = String::with_capacity(value.len() + 1);
    owned.push_str(value);
    COctetString::from_string(owned).map_err(|_| Error::Config(format!("{what} does not fit SMPP")))
}

/// The bind PDU of `kind` for `config`.
pub fn bind(config: &LinkConfig, kind: BindKind) -> Result<Pdu, Error> {
    let system_id = c_string(&config.system_id, "system_id")?;
    let password = c_string(&config.password, "password")?;
    let system_type = c_string(&config.system_type, "system_type")?;
    let address_range = c_string(&config.address_range, "address_range")?;
    let version = InterfaceVersion::from(config.interface_version);
    let (ton, npi) = (Ton::Unknown, Npi::Unknown);
    Ok(match kind {
        BindKind::Transceiver => Pdu::BindTransceiver(BindTransceiver::new(
            system_id,
            password,
            system_type,
            version,
            ton,
            npi,
            address_range,
        )),
        BindKind::Transmitter => Pdu::BindTransmitter(BindTransmitter::new(
            system_id,
            password,
            system_type,
            version,
            ton,
            npi,
            address_range,
        )),
        BindKind::Receiver => Pdu::BindReceiver(BindReceiver::new(
            system_id,
            password,
            system_type,
            version,
            ton,
            npi,
            address_range,
        )),
    })
}

/// A destination as SMPP carries it: `+7…` → the configured international
/// TON/NPI; digits only → TON unknown, NPI ISDN.
pub fn destination(
    to: &str,
    config: &LinkConfig,
) -> Result<(Ton, Npi, COctetString<1, 21>), Error> {
    let (ton, npi, digits) = destination_parts(to, config)?;
    let mut owned = String::with_capacity(digits.len() + 1);
    owned.push_str(digits);
    let value = COctetString::from_string(owned).map_err(|_| Error::InvalidAddress)?;
    Ok((Ton::from(ton), Npi::from(npi), value))
}

/// [`destination`] as raw TON, NPI and digits, checked but not copied.
fn destination_parts<'a>(to: &'a str, config: &LinkConfig) -> Result<(u8, u8, &'a str), Error> {
    let (ton, npi, digits) = match to.strip_prefix('+') {
        Some(rest) => (config.dest_ton_npi.ton, config.dest_ton_npi.npi, rest),
        None => (u8::from(Ton::Unknown), u8::from(Npi::Isdn), to),
    };
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidAddress);
    }
    Ok((ton, npi, digits))
}

/// One `submit_sm` carrying `segment`.
pub fn submit_sm(
    config: &LinkConfig,
    source_addr: &str,
    to: &str,
    segment: &Segment,
    registered_delivery: bool,
) -> Result<SubmitSm, Error> {
    let (dest_ton, dest_npi, dest) = destination(to, config)?;
    let source = c_string(source_addr, "source_addr")?;
    let short_message = OctetString::from_vec(segment.short_message.clone())
        .map_err(|_| Error::Protocol("segment longer than 255 octets".into()))?;
    Ok(SubmitSm::builder()
        .source_addr_ton(Ton::from(config.source_ton_npi.ton))
        .source_addr_npi(Npi::from(config.source_ton_npi.npi))
        .source_addr(source)
        .dest_addr_ton(dest_ton)
        .dest_addr_npi(dest_npi)
        .destination_addr(dest)
        .esm_class(EsmClass::from(if segment.udhi { 0x40 } else { 0x00 }))
        .registered_delivery(RegisteredDelivery::from(u8::from(registered_delivery)))
        .data_coding(DataCoding::from(segment.data_coding))
        .short_message(short_message)
        .build())
}

/// Appends the whole `submit_sm` carrying `segment` and `tlvs` (written on
/// it in order) to `dst`, framed as [`SubmitHeader::encode`] frames it: the
/// general path through `rusmpp`'s owned PDU, for submits that carry
/// optional parameters; the others take the encode-once borrowed path.
#[allow(clippy::too_many_arguments)]
pub fn encode_submit_sm_with_tlvs(
    config: &LinkConfig,
    source_addr: &str,
    to: &str,
    segment: &Segment,
    registered_delivery: bool,
    tlvs: &[Tlv],
    sequence_number: u32,
    dst: &mut Vec<u8>,
) -> Result<(), Error> {
    let options = SubmitOptions {
        registered_delivery,
        tlvs: tlvs.to_vec(),
        ..SubmitOptions::default()
    };
    encode_submit_sm_owned(
        config,
        source_addr,
        to,
        segment,
        &options,
        sequence_number,
        dst,
    )
}

/// [`encode_submit_sm_with_tlvs`] with every option of `options` that the
/// encode-once path does not write: TLVs and `service_type`.
pub fn encode_submit_sm_owned(
    config: &LinkConfig,
    source_addr: &str,
    to: &str,
    segment: &Segment,
    options: &SubmitOptions,
    sequence_number: u32,
    dst: &mut Vec<u8>,
) -> Result<(), Error> {
    let tlvs = &options.tlvs;
    let mut body = submit_sm(
        config,
        source_addr,
        to,
        segment,
        options.registered_delivery,
    )?;
    if let Some(service_type) = &options.service_type {
        let value = COctetString::from_string(service_type.clone())
            .map_err(|_| Error::Protocol("service_type longer than 5 characters".into()))?;
        body.service_type = ServiceType::new(value);
    }
    let values = tlvs
        .iter()
        .map(Tlv::to_submission)
        .collect::<Result<Vec<_>, _>>()?;
    body.set_tlvs(values);
    let command = rusmpp::Command::new(CommandStatus::EsmeRok, sequence_number, body);
    // As `rusmpp`'s codecs frame it: `command_length`, then the command.
    let command_length = 4 + command.length();
    let at = dst.len();
    dst.resize(at + command_length, 0);
    dst[at..at + 4].copy_from_slice(&(command_length as u32).to_be_bytes());
    command.encode(&mut dst[at + 4..]);
    Ok(())
}

/// Room for an address of `COctetString<1, 21>`: 20 octets and the NUL.
const ADDRESS_LEN_MAX: usize = 21;

/// A NUL-terminated address in place, as `rusmpp`'s borrowed
/// `COctetString` reads it.
#[derive(Debug, Clone, Copy)]
struct Address {
    bytes: [u8; ADDRESS_LEN_MAX],
    len: usize,
}

impl Address {
    /// `value` and its NUL, checked by `rusmpp` as `COctetString<1, 21>`.
    fn new(value: &str) -> Option<Self> {
        if value.len() >= ADDRESS_LEN_MAX {
            return None;
        }
        let mut bytes = [0u8; ADDRESS_LEN_MAX];
        let len = value.len() + 1;
        bytes[..value.len()].copy_from_slice(value.as_bytes());
        let address = Self { bytes, len };
        borrowed::COctetString::<1, 21>::new(address.with_nul()).ok()?;
        Some(address)
    }

    fn with_nul(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn c_string(&self) -> borrowed::COctetString<'_, 1, 21> {
        // Checked in `Address::new`.
        borrowed::COctetString::new(self.with_nul()).unwrap_or_default()
    }
}

/// The addressing every segment of one message shares, checked once
/// ([`SubmitHeader::new`]) and written into each of its `submit_sm`
/// ([`SubmitHeader::encode`]).
#[derive(Debug, Clone, Copy)]
pub struct SubmitHeader {
    source_ton: u8,
    source_npi: u8,
    source_addr: Address,
    dest_ton: u8,
    dest_npi: u8,
    destination: Address,
    registered_delivery: bool,
}

impl SubmitHeader {
    /// Checks the addresses as [`submit_sm`] does, with the same errors.
    pub fn new(
        config: &LinkConfig,
        source_addr: &str,
        to: &str,
        registered_delivery: bool,
    ) -> Result<Self, Error> {
        let (dest_ton, dest_npi, digits) = destination_parts(to, config)?;
        let destination = Address::new(digits).ok_or(Error::InvalidAddress)?;
        let source = Address::new(source_addr)
            .ok_or_else(|| Error::Config("source_addr does not fit SMPP".into()))?;
        Ok(Self {
            source_ton: config.source_ton_npi.ton,
            source_npi: config.source_ton_npi.npi,
            source_addr: source,
            dest_ton,
            dest_npi,
            destination,
            registered_delivery,
        })
    }

    /// Octets [`SubmitHeader::encode`] appends for `segment`, so that a
    /// message's buffer is allocated once and exactly (it stays queued).
    pub fn encoded_len(&self, segment: &Segment) -> usize {
        // Header (length included), service_type "", source TON, NPI and
        // address with its NUL, the same for the destination, seven
        // one-octet fields and two empty C strings, sm_length, the octets.
        16 + 1
            + (2 + self.source_addr.len)
            + (2 + self.destination.len)
            + 9
            + 1
            + segment.short_message.len()
    }

    /// Appends the whole `submit_sm` command carrying `segment` to `dst`,
    /// header included, with `sequence_number`: the bytes of [`submit_sm`]
    /// (a property test holds them equal). Built from `rusmpp`'s borrowed
    /// PDU, which points into the addresses and the segment instead of
    /// owning copies: no allocation besides `dst`'s growth, where the
    /// owned PDU costs six per segment on the hottest path of the link.
    pub fn encode(
        &self,
        segment: &Segment,
        sequence_number: u32,
        dst: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let short_message = borrowed::OctetString::<0, 255>::new(&segment.short_message)
            .map_err(|_| Error::Protocol("segment longer than 255 octets".into()))?;
        let body = borrowed::SubmitSm::<0>::builder()
            .source_addr_ton(Ton::from(self.source_ton))
            .source_addr_npi(Npi::from(self.source_npi))
            .source_addr(self.source_addr.c_string())
            .dest_addr_ton(Ton::from(self.dest_ton))
            .dest_addr_npi(Npi::from(self.dest_npi))
            .destination_addr(self.destination.c_string())
            .esm_class(EsmClass::from(if segment.udhi { 0x40 } else { 0x00 }))
            .registered_delivery(RegisteredDelivery::from(u8::from(self.registered_delivery)))
            .data_coding(DataCoding::from(segment.data_coding))
            .short_message(short_message)
            .build();
        let command = borrowed::Command::<0>::new(CommandStatus::EsmeRok, sequence_number, body);
        // As `rusmpp`'s codecs frame it: `command_length`, then the command.
        let command_length = 4 + command.length();
        debug_assert_eq!(command_length, self.encoded_len(segment));
        let at = dst.len();
        dst.resize(at + command_length, 0);
        dst[at..at + 4].copy_from_slice(&(command_length as u32).to_be_bytes());
        command.encode(&mut dst[at + 4..]);
        Ok(())
    }
}

/// What an incoming `deliver_sm` carries.
#[derive(Debug)]
pub enum Delivery {
    /// An MO message or one part of it.
    Mo(MoPart),
    /// A delivery receipt.
    Receipt(Receipt),
    /// A receipt without a message id: nothing can be matched.
    Unusable,
}

/// An MO as it arrived: maybe one part of several.
#[derive(Debug)]
pub struct MoPart {
    /// Sender (with `+` when its TON is international).
    pub from: String,
    /// Destination (the short code).
    pub to: String,
    /// `data_coding`.
    pub data_coding: u8,
    /// Text octets (UDH removed).
    pub bytes: Vec<u8>,
    /// Concatenation info (UDH or SAR TLVs).
    pub part: Option<PartInfo>,
    /// Every TLV it arrived with, in order (those read above included).
    pub tlvs: Vec<Tlv>,
}

fn address(ton: Ton, value: &COctetString<1, 21>) -> String {
    if ton == Ton::International {
        format!("+{}", value.as_str())
    } else {
        value.as_str().to_string()
    }
}

/// What `deliver_sm` and `data_sm` share, as far as reading them goes:
/// both come from the SMSC with an MO or a receipt, and differ only in
/// where the text may sit (`data_sm` has no `short_message`).
struct Incoming<'a> {
    esm_class: EsmClass,
    source_addr_ton: Ton,
    source_addr: &'a COctetString<1, 21>,
    dest_addr_ton: Ton,
    destination_addr: &'a COctetString<1, 21>,
    data_coding: DataCoding,
    short_message: &'a [u8],
    tlvs: &'a [rusmpp::tlvs::Tlv],
}

/// Reads a `deliver_sm`.
pub fn delivery(pdu: &rusmpp::pdus::DeliverSm, receipt_radix: IdRadix) -> Delivery {
    read(
        Incoming {
            esm_class: pdu.esm_class,
            source_addr_ton: pdu.source_addr_ton,
            source_addr: &pdu.source_addr,
            dest_addr_ton: pdu.dest_addr_ton,
            destination_addr: &pdu.destination_addr,
            data_coding: pdu.data_coding,
            short_message: pdu.short_message().as_ref(),
            tlvs: pdu.tlvs(),
        },
        receipt_radix,
    )
}

/// Reads a `data_sm` from the SMSC as [`delivery`] reads a `deliver_sm`:
/// its text is in `message_payload` (an empty text without one), its SAR
/// TLVs make it a part, its receipt fields a receipt.
pub fn data_delivery(pdu: &rusmpp::pdus::DataSm, receipt_radix: IdRadix) -> Delivery {
    read(
        Incoming {
            esm_class: pdu.esm_class,
            source_addr_ton: pdu.source_addr_ton,
            source_addr: &pdu.source_addr,
            dest_addr_ton: pdu.dest_addr_ton,
            destination_addr: &pdu.destination_addr,
            data_coding: pdu.data_coding,
            short_message: &[],
            tlvs: pdu.tlvs(),
        },
        receipt_radix,
    )
}

fn read(pdu: Incoming<'_>, receipt_radix: IdRadix) -> Delivery {
    let esm = u8::from(pdu.esm_class);
    let mut payload: Option<Vec<u8>> = None;
    let (mut receipted_id, mut state, mut network_error) = (None, None, None);
    let (mut sar_ref, mut sar_total, mut sar_seq) = (None, None, None);
    for tlv in pdu.tlvs {
        match tlv.value() {
            Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref().to_vec()),
            Some(TlvValue::ReceiptedMessageId(id)) => receipted_id = Some(id.as_str().to_string()),
            Some(TlvValue::MessageState(s)) => state = Some(u8::from(*s)),
            Some(TlvValue::NetworkErrorCode(e)) => network_error = Some(format!("{e:?}")),
            Some(TlvValue::SarMsgRefNum(r)) => sar_ref = Some(*r),
            Some(TlvValue::SarTotalSegments(t)) => sar_total = Some(*t),
            Some(TlvValue::SarSegmentSeqnum(s)) => sar_seq = Some(*s),
            _ => {}
        }
    }
    let raw: Vec<u8> = payload.unwrap_or_else(|| pdu.short_message.to_vec());
    let from = address(pdu.source_addr_ton, pdu.source_addr);
    let to = address(pdu.dest_addr_ton, pdu.destination_addr);
    // Message type bits 2..5: 0x04 MC delivery receipt and 0x20
    // intermediate notification are receipts. 0x08 / 0x10 (SME
    // acknowledgements) are receipts only when they read as one: some
    // SMSCs send plain MO with 0x08 (rusmpp's `EsmClass::default()` is 0x08).
    let message_type = esm & 0x3c;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let parsed = if message_type != 0 || receipted_id.is_some() {
        parse_receipt_text(&text)
    } else {
        None
    };
    let sure = matches!(message_type, 0x04 | 0x20);
    if sure || receipted_id.is_some() || parsed.is_some() {
        let raw_id = receipted_id.or_else(|| parsed.as_ref().map(|p| p.id.clone()));
        let Some(raw_id) = raw_id else {
            return Delivery::Unusable;
        };
        let state = match (state, parsed.as_ref().and_then(|p| p.stat.as_deref())) {
            (Some(code), _) => DeliveryState::from_code(code),
            (None, Some(word)) => DeliveryState::from_word(word),
            (None, None) => DeliveryState::Unknown,
        };
        return Delivery::Receipt(Receipt {
            message_id: normalize_id(&raw_id, receipt_radix),
            raw_message_id: raw_id,
            state,
            error: parsed
                .as_ref()
                .and_then(|p| p.err.clone())
                .or(network_error),
            submit_date: parsed.as_ref().and_then(|p| p.submit_date.clone()),
            done_date: parsed.as_ref().and_then(|p| p.done_date.clone()),
            recipient: from,
        });
    }
    let (part, bytes) = if esm & 0x40 != 0 {
        match parse_udh(&raw) {
            Some((info, offset)) => (info, raw.get(offset..).unwrap_or_default().to_vec()),
            None => (None, raw),
        }
    } else {
        let sar = match (sar_ref, sar_total, sar_seq) {
            (Some(reference), Some(total), Some(seq)) => Some(PartInfo {
                reference,
                total,
                seq,
            }),
            _ => None,
        };
        (sar, raw)
    };
    // A "part" 1 of 1, or with an impossible number, is a whole message.
    let part = part.filter(|p| p.total > 1 && p.seq >= 1 && p.seq <= p.total);
    Delivery::Mo(MoPart {
        from,
        to,
        data_coding: u8::from(pdu.data_coding),
        bytes,
        part,
        tlvs: pdu.tlvs.iter().map(Tlv::from_rusmpp).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::{pdus::DeliverSm, types::OctetString};

    fn deliver(esm_class: u8, text: &str) -> DeliverSm {
        DeliverSm::builder()
            .source_addr(COctetString::from_string("79161234567".into()).expect("addr"))
            .destination_addr(COctetString::from_string("7377".into()).expect("addr"))
            .esm_class(EsmClass::from(esm_class))
            .short_message(OctetString::from_vec(text.as_bytes().to_vec()).expect("fits"))
            .build()
    }

    #[test]
    fn receipts_and_mo_are_told_apart_by_esm_class_and_content() {
        let receipt = "id:7 sub:001 dlvrd:001 submit date:2611271430 done date:2611271431 stat:DELIVRD err:000 text:";
        let table = [
            (0x00, "STOP", "mo"),
            (0x08, "STOP", "mo"),
            (0x04, receipt, "receipt"),
            (0x20, receipt, "receipt"),
            (0x08, receipt, "receipt"),
            (0x04, "garbage", "unusable"),
        ];
        for (esm, text, expected) in table {
            let kind = match delivery(&deliver(esm, text), IdRadix::Auto) {
                Delivery::Mo(_) => "mo",
                Delivery::Receipt(_) => "receipt",
                Delivery::Unusable => "unusable",
            };
            assert_eq!(kind, expected, "esm_class 0x{esm:02x} {text:?}");
        }
        // The builder's default esm_class is 0x08, not 0.
        assert_eq!(u8::from(DeliverSm::builder().build().esm_class), 0x08);
    }
}
