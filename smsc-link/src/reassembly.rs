//! Reassembly of multipart MO messages (UDH 8/16-bit references, SAR TLVs).
//!
//! Each part carries a token (in the link: how to answer its `deliver_sm`).
//! Tokens are held until the whole message is complete; the caller answers
//! them all once the handler has run, or with a temporary error when the
//! message is evicted or times out, so that the SMSC delivers it again.
//! Bounded by `pending_max` messages; the oldest is evicted above it.

use std::collections::{HashMap, VecDeque};

use tokio::time::{Duration, Instant};

/// Identifies one multipart message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// Sender.
    pub from: String,
    /// Destination.
    pub to: String,
    /// Concatenation reference.
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
}

/// A message whose parts have all arrived.
#[derive(Debug)]
pub struct Complete<T> {
    /// `data_coding` of the first part.
    pub data_coding: u8,
    /// Each part's text octets, in part order.
    pub parts: Vec<Vec<u8>>,
    /// Every part's token, in part order.
    pub tokens: Vec<T>,
}

/// What inserting a part produced.
#[derive(Debug)]
pub struct Inserted<T> {
    /// The whole message when this part completed it.
    pub complete: Option<Complete<T>>,
    /// Tokens to answer with a temporary error now: a duplicate part's
    /// older token, or the parts of an evicted message.
    pub rejected: Vec<T>,
}

#[derive(Debug)]
struct Group<T> {
    started: Instant,
    data_coding: u8,
    parts: Vec<Option<(Vec<u8>, T)>>,
}

/// Pending multipart messages.
#[derive(Debug)]
pub struct Reassembler<T> {
    groups: HashMap<GroupKey, Group<T>>,
    /// Keys in arrival order of their first part (for eviction and expiry).
    order: VecDeque<(GroupKey, Instant)>,
    pending_max: usize,
    timeout: Duration,
}

impl<T> Reassembler<T> {
    /// At most `pending_max` messages, each waiting at most `timeout`.
    pub fn new(pending_max: usize, timeout: Duration) -> Self {
        Self {
            groups: HashMap::new(),
            order: VecDeque::new(),
            pending_max: pending_max.max(1),
            timeout,
        }
    }

    /// Messages waiting for parts.
    pub fn pending(&self) -> usize {
        self.groups.len()
    }

    /// Adds part `seq` (from 1) of `key`.
    pub fn insert(
        &mut self,
        key: GroupKey,
        seq: u8,
        data_coding: u8,
        bytes: Vec<u8>,
        token: T,
        now: Instant,
    ) -> Inserted<T> {
        let mut rejected = Vec::new();
        let total = usize::from(key.total);
        let index = usize::from(seq).saturating_sub(1);
        if !self.groups.contains_key(&key) {
            while self.groups.len() >= self.pending_max {
                match self.order.pop_front() {
                    Some((old, started)) => rejected.extend(self.remove_if(&old, started)),
                    None => break,
                }
            }
            self.groups.insert(
                key.clone(),
                Group {
                    started: now,
                    data_coding,
                    parts: (0..total).map(|_| None).collect(),
                },
            );
            self.order.push_back((key.clone(), now));
        }
        let Some(group) = self.groups.get_mut(&key) else {
            return Inserted {
                complete: None,
                rejected,
            };
        };
        if let Some(slot) = group.parts.get_mut(index) {
            if let Some((_, old)) = slot.replace((bytes, token)) {
                rejected.push(old);
            }
        } else {
            rejected.push(token);
        }
        if group.parts.iter().all(Option::is_some) {
            if let Some(group) = self.groups.remove(&key) {
                let data_coding = group.data_coding;
                let mut parts = Vec::with_capacity(total);
                let mut tokens = Vec::with_capacity(total);
                for (bytes, token) in group.parts.into_iter().flatten() {
                    parts.push(bytes);
                    tokens.push(token);
                }
                self.order.retain(|(k, _)| k != &key);
                return Inserted {
                    complete: Some(Complete {
                        data_coding,
                        parts,
                        tokens,
                    }),
                    rejected,
                };
            }
        }
        Inserted {
            complete: None,
            rejected,
        }
    }

    /// Drops messages older than the timeout; returns their tokens.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let mut rejected = Vec::new();
        while let Some((_, started)) = self.order.front() {
            if now.duration_since(*started) < self.timeout {
                break;
            }
            if let Some((key, started)) = self.order.pop_front() {
                rejected.extend(self.remove_if(&key, started));
            }
        }
        rejected
    }

    fn remove_if(&mut self, key: &GroupKey, started: Instant) -> Vec<T> {
        match self.groups.get(key) {
            Some(group) if group.started == started => self
                .groups
                .remove(key)
                .map(|g| g.parts.into_iter().flatten().map(|(_, t)| t).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(reference: u16, total: u8) -> GroupKey {
        GroupKey {
            from: "79161234567".into(),
            to: "7377".into(),
            reference,
            total,
        }
    }

    #[test]
    fn parts_in_any_order_complete_once() {
        let mut r = Reassembler::new(10, Duration::from_secs(60));
        let now = Instant::now();
        assert!(r
            .insert(key(300, 3), 3, 8, b"c".to_vec(), 3, now)
            .complete
            .is_none());
        assert!(r
            .insert(key(300, 3), 1, 8, b"a".to_vec(), 1, now)
            .complete
            .is_none());
        let done = r
            .insert(key(300, 3), 2, 8, b"b".to_vec(), 2, now)
            .complete
            .expect("complete");
        assert_eq!(done.parts.concat(), b"abc");
        assert_eq!(done.tokens, [1, 2, 3]);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn duplicates_evictions_and_timeouts_give_tokens_back() {
        let mut r = Reassembler::new(1, Duration::from_secs(60));
        let now = Instant::now();
        r.insert(key(1, 2), 1, 0, b"a".to_vec(), 10, now);
        let dup = r.insert(key(1, 2), 1, 0, b"a".to_vec(), 11, now);
        assert_eq!(dup.rejected, [10]);
        let evicting = r.insert(key(2, 2), 1, 0, b"x".to_vec(), 20, now);
        assert_eq!(evicting.rejected, [11]);
        assert_eq!(r.expire(now + Duration::from_secs(61)), [20]);
        assert_eq!(r.pending(), 0);
    }
}
