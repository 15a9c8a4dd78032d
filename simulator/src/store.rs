//! MT messages the ESMEs submitted: parts stored as they arrive, joined
//! into one message (UDH or SAR reference), decoded, and kept with their
//! receipt status for `GET /api/messages`. Bounded by `messages_max`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::text::{decode_units, Encoding, PartInfo};

/// Final state of a message as its receipt reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReceiptStat {
    /// Delivered (`stat:DELIVRD`, message_state 2).
    #[serde(rename = "DELIVRD")]
    Delivered,
    /// Undeliverable (`stat:UNDELIV`, message_state 5).
    #[serde(rename = "UNDELIV")]
    Undeliverable,
    /// Expired (`stat:EXPIRED`, message_state 3).
    #[serde(rename = "EXPIRED")]
    Expired,
}

impl ReceiptStat {
    /// The `stat:` word of the receipt text.
    pub fn word(self) -> &'static str {
        match self {
            Self::Delivered => "DELIVRD",
            Self::Undeliverable => "UNDELIV",
            Self::Expired => "EXPIRED",
        }
    }

    /// The `err:` code of the receipt text.
    pub fn err_code(self) -> &'static str {
        match self {
            Self::Delivered => "000",
            Self::Undeliverable => "001",
            Self::Expired => "002",
        }
    }
}

/// Where a part's receipt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "stat")]
pub enum ReceiptState {
    /// `registered_delivery` did not ask for a receipt (or only for the other outcome).
    NotRequested,
    /// The receipt is not due yet.
    Pending,
    /// The receipt was produced with this outcome.
    Done(ReceiptStat),
}

/// One part of an MT message.
#[derive(Debug, Clone, Serialize)]
pub struct MtPart {
    /// Part number from 1.
    pub number: u8,
    /// Message id the simulator answered.
    pub message_id: String,
    /// Receipt state of this part.
    pub receipt: ReceiptState,
    /// When this part's `submit_sm` was stored (a rate check counts parts,
    /// which are what an operator's contract counts).
    pub submitted_at: DateTime<Utc>,
}

/// An MT message as `GET /api/messages` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MtMessage {
    /// Message id of the first part received.
    pub id: String,
    /// Account that submitted it.
    pub system_id: String,
    /// `source_addr`.
    pub from: String,
    /// `destination_addr`.
    pub to: String,
    /// Decoded text (parts joined in order; missing parts left out).
    pub text: String,
    /// Alphabet of the message.
    pub encoding: Encoding,
    /// Parts announced by the UDH/SAR (1 for a single message).
    pub parts_total: u8,
    /// True when every part has arrived.
    pub complete: bool,
    /// Time of the first part.
    pub submitted_at: DateTime<Utc>,
    /// The worst outcome among the parts' receipts (`null` while none is
    /// produced, or when none was requested).
    pub receipt: Option<ReceiptStat>,
    /// Each part received.
    pub parts: Vec<MtPart>,
}

/// A `submit_sm` ready to store.
#[derive(Debug, Clone)]
pub(crate) struct SubmittedPart {
    pub(crate) message_id: String,
    pub(crate) system_id: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) encoding: Encoding,
    pub(crate) part: Option<PartInfo>,
    pub(crate) units: Vec<u8>,
    pub(crate) receipt: ReceiptState,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConcatKey {
    system_id: String,
    from: String,
    to: String,
    reference: u16,
    total: u8,
}

#[derive(Debug)]
struct Record {
    message: MtMessage,
    units: BTreeMap<u8, Vec<u8>>,
    key: Option<ConcatKey>,
}

/// The bounded store of MT messages.
#[derive(Debug)]
pub(crate) struct Store {
    messages_max: usize,
    next_no: u64,
    records: BTreeMap<u64, Record>,
    open: HashMap<ConcatKey, u64>,
    by_message_id: HashMap<String, u64>,
}

/// Digits of a number: `+7 916 123-45-67` and `79161234567` match.
pub fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

impl Store {
    pub(crate) fn new(messages_max: usize) -> Self {
        Self {
            messages_max: messages_max.max(1),
            next_no: 0,
            records: BTreeMap::new(),
            open: HashMap::new(),
            by_message_id: HashMap::new(),
        }
    }

    /// Stores a part; returns the message when this part completed it.
    pub(crate) fn insert(&mut self, part: SubmittedPart) -> Option<MtMessage> {
        let info = part.part.unwrap_or(PartInfo {
            reference: 0,
            total: 1,
            number: 1,
        });
        let key = (info.total > 1).then(|| ConcatKey {
            system_id: part.system_id.clone(),
            from: part.from.clone(),
            to: part.to.clone(),
            reference: info.reference,
            total: info.total,
        });
        let existing = key.as_ref().and_then(|k| self.open.get(k).copied());
        let no = match existing {
            Some(no) if self.records.contains_key(&no) => no,
            _ => {
                self.evict();
                self.next_no += 1;
                let no = self.next_no;
                let message = MtMessage {
                    id: part.message_id.clone(),
                    system_id: part.system_id.clone(),
                    from: part.from.clone(),
                    to: part.to.clone(),
                    text: String::new(),
                    encoding: part.encoding,
                    parts_total: info.total,
                    complete: false,
                    submitted_at: Utc::now(),
                    receipt: None,
                    parts: Vec::new(),
                };
                if let Some(k) = &key {
                    self.open.insert(k.clone(), no);
                }
                self.records.insert(
                    no,
                    Record {
                        message,
                        units: BTreeMap::new(),
                        key: key.clone(),
                    },
                );
                no
            }
        };
        self.by_message_id.insert(part.message_id.clone(), no);
        let record = self.records.get_mut(&no)?;
        record.units.insert(info.number, part.units);
        record.message.parts.retain(|p| p.number != info.number);
        record.message.parts.push(MtPart {
            number: info.number,
            message_id: part.message_id,
            receipt: part.receipt,
            submitted_at: Utc::now(),
        });
        record.message.parts.sort_by_key(|p| p.number);
        let joined: Vec<u8> = record.units.values().flatten().copied().collect();
        record.message.text = decode_units(record.message.encoding, &joined)
            .unwrap_or_else(|e| format!("<undecodable: {e}>"));
        let complete = record.units.len() == usize::from(info.total);
        if complete && !record.message.complete {
            record.message.complete = true;
            if let Some(k) = record.key.take() {
                self.open.remove(&k);
            }
            return Some(record.message.clone());
        }
        None
    }

    fn evict(&mut self) {
        while self.records.len() >= self.messages_max {
            let Some((_, record)) = self.records.pop_first() else {
                break;
            };
            if let Some(k) = record.key {
                self.open.remove(&k);
            }
            for part in record.message.parts {
                self.by_message_id.remove(&part.message_id);
            }
        }
    }

    /// Records the receipt outcome of the part with `message_id`.
    pub(crate) fn set_receipt(&mut self, message_id: &str, stat: ReceiptStat) {
        let Some(no) = self.by_message_id.get(message_id) else {
            return;
        };
        let Some(record) = self.records.get_mut(no) else {
            return;
        };
        for part in &mut record.message.parts {
            if part.message_id == message_id {
                part.receipt = ReceiptState::Done(stat);
            }
        }
        let worst = record
            .message
            .parts
            .iter()
            .filter_map(|p| match p.receipt {
                ReceiptState::Done(stat) => Some(stat),
                _ => None,
            })
            .max_by_key(|stat| match stat {
                ReceiptStat::Delivered => 0,
                ReceiptStat::Expired => 1,
                ReceiptStat::Undeliverable => 2,
            });
        record.message.receipt = worst;
    }

    /// Messages to `to` (digits compared), oldest first, at most `limit`
    /// (the newest ones).
    pub(crate) fn list(&self, to: Option<&str>, limit: usize) -> Vec<MtMessage> {
        let wanted = to.map(digits);
        let mut out: Vec<MtMessage> = self
            .records
            .values()
            .rev()
            .filter(|r| match &wanted {
                Some(w) => digits(&r.message.to) == *w,
                None => true,
            })
            .take(limit)
            .map(|r| r.message.clone())
            .collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: &str, number: u8, units: &[u8]) -> SubmittedPart {
        SubmittedPart {
            message_id: id.into(),
            system_id: "checkin".into(),
            from: "7377".into(),
            to: "+79161234567".into(),
            encoding: Encoding::Gsm7,
            part: Some(PartInfo {
                reference: 5,
                total: 2,
                number,
            }),
            units: units.to_vec(),
            receipt: ReceiptState::Pending,
        }
    }

    #[test]
    fn parts_out_of_order_are_joined() {
        let mut store = Store::new(10);
        assert!(store.insert(part("2", 2, b"lo")).is_none());
        let done = store.insert(part("1", 1, b"hel"));
        assert_eq!(done.map(|m| m.text), Some("hello".to_string()));
        let listed = store.list(Some("79161234567"), 10);
        assert_eq!(listed.len(), 1);
        assert!(listed[0].complete);
        store.set_receipt("2", ReceiptStat::Undeliverable);
        assert_eq!(
            store.list(None, 10)[0].receipt,
            Some(ReceiptStat::Undeliverable)
        );
    }

    #[test]
    fn oldest_message_is_evicted() {
        let mut store = Store::new(2);
        for i in 0..3u8 {
            let mut p = part(&i.to_string(), 1, b"x");
            p.part = None;
            store.insert(p);
        }
        let ids: Vec<String> = store.list(None, 10).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["1", "2"]);
    }
}
