//! The dedupe rule, once: the same phone at the same premises less than the
//! dedupe window apart is one visit (a redelivered SMS, a double tap, a code
//! entered twice). A group's check-ins go through one [`Visits`] in arrival
//! order, over the stored visits storage read beforehand: each is either a
//! visit seen already (the earliest one in its window, stored or new in the
//! group) or a new one. The SMS path, the web code confirmations and a batch
//! of check-ins all decide with it; storage only reads and writes.

use std::collections::HashMap;

/// A visit already known: stored, or new earlier in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The stored visit at this index of what [`Visits::new`] was given.
    Stored(usize),
    /// The new visit at this index of [`Visits::add`]'s count.
    New(usize),
}

/// The visits of a group so far, by premises and phone.
#[derive(Debug)]
pub struct Visits {
    window_ms: i64,
    /// (time, id) of each stored visit, in the order given.
    stored: Vec<(i64, i64)>,
    stored_by: HashMap<(i64, [u8; 32]), Vec<usize>>,
    /// Time of each new visit, in the order added.
    new_at: Vec<i64>,
    new_by: HashMap<(i64, [u8; 32]), Vec<usize>>,
}

/// Whether two check-ins at `a` and `b` (ms) of the same phone at the same
/// premises are one visit.
pub fn same_visit(window_ms: i64, a: i64, b: i64) -> bool {
    a.abs_diff(b) < u64::try_from(window_ms).unwrap_or(0)
}

impl Visits {
    /// Over the stored visits `(id, premises id, phone hash, time ms)`; a
    /// stored visit outside every window asked about is harmless.
    pub fn new(
        window_ms: i64,
        stored: impl IntoIterator<Item = (i64, i64, [u8; 32], i64)>,
    ) -> Visits {
        let mut visits = Visits {
            window_ms,
            stored: Vec::new(),
            stored_by: HashMap::new(),
            new_at: Vec::new(),
            new_by: HashMap::new(),
        };
        for (id, premises_id, phone_hash, at_ms) in stored {
            visits
                .stored_by
                .entry((premises_id, phone_hash))
                .or_default()
                .push(visits.stored.len());
            visits.stored.push((at_ms, id));
        }
        visits
    }

    /// The visit a check-in at `at_ms` repeats: the earliest one inside its
    /// window (a stored one first on equal times, then the lowest id), or
    /// `None` for a new visit.
    pub fn find(&self, premises_id: i64, phone_hash: &[u8; 32], at_ms: i64) -> Option<Seen> {
        let key = (premises_id, *phone_hash);
        let near = |other: i64| same_visit(self.window_ms, other, at_ms);
        let stored = self.stored_by.get(&key).and_then(|ks| {
            ks.iter()
                .copied()
                .filter(|&k| near(self.stored[k].0))
                .min_by_key(|&k| self.stored[k])
        });
        let new = self.new_by.get(&key).and_then(|ns| {
            ns.iter()
                .copied()
                .filter(|&n| near(self.new_at[n]))
                .min_by_key(|&n| (self.new_at[n], n))
        });
        match (stored, new) {
            (Some(k), Some(n)) if self.new_at[n] < self.stored[k].0 => Some(Seen::New(n)),
            (Some(k), _) => Some(Seen::Stored(k)),
            (None, Some(n)) => Some(Seen::New(n)),
            (None, None) => None,
        }
    }

    /// Records a new visit; returns its index ([`Seen::New`]).
    pub fn add(&mut self, premises_id: i64, phone_hash: &[u8; 32], at_ms: i64) -> usize {
        let n = self.new_at.len();
        self.new_at.push(at_ms);
        self.new_by
            .entry((premises_id, *phone_hash))
            .or_default()
            .push(n);
        n
    }

    /// [`Visits::find`], else [`Visits::add`]: the visit a check-in is.
    pub fn visit(&mut self, premises_id: i64, phone_hash: &[u8; 32], at_ms: i64) -> (Seen, bool) {
        match self.find(premises_id, phone_hash, at_ms) {
            Some(seen) => (seen, false),
            None => (Seen::New(self.add(premises_id, phone_hash, at_ms)), true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW_MS: i64 = 600_000;
    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    #[test]
    fn each_check_in_is_the_visit_the_rule_says() {
        // (name, stored (id, premises, phone, at), check-ins (premises, phone, at), expected)
        type Case = (
            &'static str,
            Vec<(i64, i64, [u8; 32], i64)>,
            Vec<(i64, [u8; 32], i64)>,
            Vec<(Seen, bool)>,
        );
        let cases: Vec<Case> = vec![
            (
                "nothing known: new",
                vec![],
                vec![(1, A, 0)],
                vec![(Seen::New(0), true)],
            ),
            (
                "inside the window of a stored visit",
                vec![(7, 1, A, 0)],
                vec![(1, A, WINDOW_MS - 1)],
                vec![(Seen::Stored(0), false)],
            ),
            (
                "the window is open: exactly its length apart is a new visit",
                vec![(7, 1, A, 0)],
                vec![(1, A, WINDOW_MS)],
                vec![(Seen::New(0), true)],
            ),
            (
                "before a stored visit counts too",
                vec![(7, 1, A, 1_000)],
                vec![(1, A, 0)],
                vec![(Seen::Stored(0), false)],
            ),
            (
                "another premises or phone is another visit",
                vec![(7, 1, A, 0)],
                vec![(2, A, 0), (1, B, 0)],
                vec![(Seen::New(0), true), (Seen::New(1), true)],
            ),
            (
                "the earliest stored one wins, ties by id",
                vec![(9, 1, A, 500), (8, 1, A, 100), (7, 1, A, 100)],
                vec![(1, A, 600)],
                vec![(Seen::Stored(2), false)],
            ),
            (
                "a repeat inside the group is the group's first",
                vec![],
                vec![(1, A, 0), (1, A, 1_000), (1, A, 2_000)],
                vec![
                    (Seen::New(0), true),
                    (Seen::New(0), false),
                    (Seen::New(0), false),
                ],
            ),
            (
                "a new visit earlier than the stored one in the window wins",
                vec![(7, 1, A, 700_000)],
                vec![(1, A, 0), (1, A, 300_000)],
                vec![(Seen::New(0), true), (Seen::New(0), false)],
            ),
            (
                "a stored visit earlier than the new one in the window wins",
                vec![(7, 1, A, 0)],
                vec![(1, A, 700_000), (1, A, 300_000)],
                vec![(Seen::New(0), true), (Seen::Stored(0), false)],
            ),
        ];
        for (name, stored, checkins, expected) in cases {
            let mut visits = Visits::new(WINDOW_MS, stored);
            let got: Vec<(Seen, bool)> = checkins
                .iter()
                .map(|(p, phone, at)| visits.visit(*p, phone, *at))
                .collect();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn the_rule_is_symmetric_and_open() {
        assert!(same_visit(WINDOW_MS, 0, WINDOW_MS - 1));
        assert!(same_visit(WINDOW_MS, WINDOW_MS - 1, 0));
        assert!(!same_visit(WINDOW_MS, 0, WINDOW_MS));
        assert!(!same_visit(0, 5, 5), "a zero window dedupes nothing");
    }
}
