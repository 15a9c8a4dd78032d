//! SMPP optional parameters (TLVs) as they travel: a tag and its value
//! octets. An MO keeps every TLV it arrived with; a submit may carry TLVs
//! (`ussd_service_op`, `its_session_info`, `user_message_reference`, …),
//! encoded through `rusmpp`'s owned PDU.

use rusmpp::{
    encode::{Encode, Length},
    tlvs::{MessageSubmissionRequestTlvValue, TlvTag},
    types::AnyOctetString,
};

use crate::Error;

/// One optional parameter: `tag` and its value octets, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// The parameter tag (e.g. [`Tlv::USSD_SERVICE_OP`]).
    pub tag: u16,
    /// The value octets (at most 65 535).
    pub value: Vec<u8>,
}

impl Tlv {
    /// `receipted_message_id` (C-octet string).
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    /// `user_message_reference` (2 octets).
    pub const USER_MESSAGE_REFERENCE: u16 = 0x0204;
    /// `ussd_service_op` (1 octet).
    pub const USSD_SERVICE_OP: u16 = 0x0501;
    /// `its_session_info` (2 octets: session number, sequence and end flag).
    pub const ITS_SESSION_INFO: u16 = 0x1383;

    /// A TLV of `tag` carrying `value`.
    pub fn new(tag: u16, value: impl Into<Vec<u8>>) -> Self {
        Self {
            tag,
            value: value.into(),
        }
    }

    /// The TLV as `rusmpp` read it, whatever its type: the value encoded
    /// back to its octets.
    pub(crate) fn from_rusmpp(tlv: &rusmpp::tlvs::Tlv) -> Self {
        let value = tlv.value().map_or_else(Vec::new, |value| {
            let mut octets = vec![0; value.length()];
            let written = value.encode(&mut octets);
            octets.truncate(written);
            octets
        });
        Self {
            tag: u16::from(tlv.tag()),
            value,
        }
    }

    /// The TLV for a `submit_sm`, written as it is (tag, length, octets).
    pub(crate) fn to_submission(&self) -> Result<MessageSubmissionRequestTlvValue, Error> {
        if self.value.len() > usize::from(u16::MAX) {
            return Err(Error::Protocol(format!(
                "TLV 0x{:04x} longer than 65 535 octets",
                self.tag
            )));
        }
        Ok(MessageSubmissionRequestTlvValue::Other {
            tag: TlvTag::from(self.tag),
            value: AnyOctetString::from_vec(self.value.clone()),
        })
    }
}
