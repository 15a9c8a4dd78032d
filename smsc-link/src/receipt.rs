//! Delivery receipts: told apart from MO by `esm_class`, read from the
//! `receipted_message_id` / `message_state` TLVs or from the text format of
//! SMPP 3.4 appendix B, and message ids normalized so that a receipt always
//! finds its `submit_sm_resp` whatever the SMSC's habits (hex or decimal,
//! leading zeros, case).

use crate::config::IdRadix;

/// Final (or intermediate) state of a message as its receipt reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    /// `DELIVRD` / message_state 2.
    Delivered,
    /// `EXPIRED` / 3.
    Expired,
    /// `DELETED` / 4.
    Deleted,
    /// `UNDELIV` / 5.
    Undeliverable,
    /// `ACCEPTD` / 6.
    Accepted,
    /// `UNKNOWN` / 7.
    Unknown,
    /// `REJECTD` / 8.
    Rejected,
    /// `ENROUTE` / 1 (intermediate).
    Enroute,
    /// Anything else the SMSC wrote.
    Other(String),
}

impl DeliveryState {
    /// From the `stat:` word of the text format.
    pub fn from_word(word: &str) -> Self {
        match word.to_ascii_uppercase().as_str() {
            "DELIVRD" | "DELIVERED" => Self::Delivered,
            "EXPIRED" => Self::Expired,
            "DELETED" => Self::Deleted,
            "UNDELIV" | "UNDELIVERABLE" => Self::Undeliverable,
            "ACCEPTD" | "ACCEPTED" => Self::Accepted,
            "UNKNOWN" => Self::Unknown,
            "REJECTD" | "REJECTED" => Self::Rejected,
            "ENROUTE" => Self::Enroute,
            other => Self::Other(other.to_string()),
        }
    }

    /// From the `message_state` TLV value.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Enroute,
            2 => Self::Delivered,
            3 => Self::Expired,
            4 => Self::Deleted,
            5 => Self::Undeliverable,
            6 => Self::Accepted,
            7 => Self::Unknown,
            8 => Self::Rejected,
            other => Self::Other(format!("state {other}")),
        }
    }

    /// True when no later receipt will follow.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Enroute | Self::Accepted)
    }
}

/// A delivery receipt.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Normalized id: equal to one of the `message_ids` of the
    /// [`crate::SubmitOutcome::Accepted`] it reports on.
    pub message_id: String,
    /// The id exactly as the receipt carried it.
    pub raw_message_id: String,
    /// What happened.
    pub state: DeliveryState,
    /// `err:` of the text format, or the `network_error_code` TLV.
    pub error: Option<String>,
    /// `submit date:` (`YYMMDDhhmm[ss]`) when the text carried one.
    pub submit_date: Option<String>,
    /// `done date:` when the text carried one.
    pub done_date: Option<String>,
    /// The recipient of the original message (the receipt's source address).
    pub recipient: String,
}

/// Masks the recipient: a `{:?}` in a log must not leak the number.
impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("message_id", &self.message_id)
            .field("raw_message_id", &self.raw_message_id)
            .field("state", &self.state)
            .field("error", &self.error)
            .field("submit_date", &self.submit_date)
            .field("done_date", &self.done_date)
            .field("recipient", &crate::masked(&self.recipient))
            .finish()
    }
}

/// Fields of the appendix-B text format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptText {
    /// `id:`.
    pub id: String,
    /// `stat:`.
    pub stat: Option<String>,
    /// `err:`.
    pub err: Option<String>,
    /// `submit date:`.
    pub submit_date: Option<String>,
    /// `done date:`.
    pub done_date: Option<String>,
}

/// The value following `key` (case-insensitive) up to the next space.
fn field<'a>(text: &'a str, lower: &str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(found) = lower[from..].find(key) {
        let at = from + found;
        // A key starts the text or follows a space (`id:` is not `pid:`).
        if at == 0 || lower.as_bytes()[at - 1] == b' ' {
            let rest = text.get(at + key.len()..)?;
            let value = rest.split(' ').next().unwrap_or("");
            return Some(value);
        }
        from = at + key.len();
    }
    None
}

/// Parses `id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`.
/// `None` when there is no `id:`.
pub fn parse_receipt_text(text: &str) -> Option<ReceiptText> {
    let lower = text.to_ascii_lowercase();
    // Keys are ASCII, so byte offsets in `lower` are offsets in `text`.
    if lower.len() != text.len() {
        return None;
    }
    let id = field(text, &lower, "id:")?.trim().to_string();
    if id.is_empty() {
        return None;
    }
    let get = |key: &str| field(text, &lower, key).map(str::to_string);
    Some(ReceiptText {
        id,
        stat: get("stat:"),
        err: get("err:"),
        submit_date: get("submit date:"),
        done_date: get("done date:"),
    })
}

/// The canonical form of a message id written in `radix`: the decimal
/// value when it is a number in that radix, else the lowercase text
/// without leading zeros.
pub fn normalize_id(raw: &str, radix: IdRadix) -> String {
    let id = raw.trim().trim_matches('\0');
    let digits = id.trim_start_matches('0');
    let value = match radix {
        IdRadix::Decimal => parse_id(id, 10),
        IdRadix::Hex => parse_id(id, 16),
        // Guessing the radix id by id would read hex `00000010` (16) as
        // decimal 10, the same as hex `0000000a`: two messages, one key.
        IdRadix::Auto | IdRadix::Text => None,
    };
    match value {
        // u64 formats faster than u128; most ids fit.
        Some(v) if !id.is_empty() => match u64::try_from(v) {
            Ok(small) => small.to_string(),
            Err(_) => v.to_string(),
        },
        _ if digits.is_empty() && !id.is_empty() => "0".to_string(),
        _ => digits.to_ascii_lowercase(),
    }
}

/// `id` in `radix` as a number: as u64 first, which most ids fit and
/// which parses several times faster than u128, else as u128.
fn parse_id(id: &str, radix: u32) -> Option<u128> {
    match u64::from_str_radix(id, radix) {
        Ok(small) => Some(u128::from(small)),
        Err(_) => u128::from_str_radix(id, radix).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_is_read() {
        let text = "id:0000002A sub:001 dlvrd:001 submit date:2611271430 done date:2611271431 stat:DELIVRD err:000 text:Hello there";
        let r = parse_receipt_text(text).expect("a receipt");
        assert_eq!(r.id, "0000002A");
        assert_eq!(r.stat.as_deref(), Some("DELIVRD"));
        assert_eq!(r.err.as_deref(), Some("000"));
        assert_eq!(r.submit_date.as_deref(), Some("2611271430"));
        assert_eq!(r.done_date.as_deref(), Some("2611271431"));
        assert_eq!(parse_receipt_text("hello"), None);
        let upper = parse_receipt_text("ID:7 STAT:UNDELIV ERR:001").expect("a receipt");
        assert_eq!(
            (upper.id.as_str(), upper.stat.as_deref()),
            ("7", Some("UNDELIV"))
        );
    }

    #[test]
    fn ids_in_every_style_meet() {
        use IdRadix::*;
        // (id in submit_sm_resp, its radix, id in receipt, its radix)
        let table = [
            ("0000002a", Auto, "0000002A", Auto),
            ("0000002a", Hex, "42", Decimal),
            ("42", Decimal, "2A", Hex),
            ("000123", Auto, "123", Auto),
            ("AbC-77", Text, "abc-77", Text),
            ("0", Auto, "000", Auto),
        ];
        for (submit, sr, receipt, rr) in table {
            assert_eq!(
                normalize_id(submit, sr),
                normalize_id(receipt, rr),
                "{submit} vs {receipt}"
            );
        }
        assert_ne!(normalize_id("10", Decimal), normalize_id("10", Hex));
    }

    #[test]
    fn distinct_ids_of_one_smsc_stay_distinct() {
        // An SMSC writing hex ids: `0000000a` is 10 and `00000010` is 16,
        // whether or not an id happens to hold a letter.
        let keys: std::collections::HashSet<String> = (1..=4096_u32)
            .map(|n| normalize_id(&format!("{n:08x}"), IdRadix::Auto))
            .collect();
        assert_eq!(keys.len(), 4096);
        let keys: std::collections::HashSet<String> = (1..=4096_u32)
            .map(|n| normalize_id(&n.to_string(), IdRadix::Auto))
            .collect();
        assert_eq!(keys.len(), 4096);
    }

    #[test]
    fn states_from_words_and_codes() {
        assert_eq!(
            DeliveryState::from_word("delivrd"),
            DeliveryState::Delivered
        );
        assert_eq!(DeliveryState::from_code(5), DeliveryState::Undeliverable);
        assert!(!DeliveryState::Enroute.is_final());
    }
}
