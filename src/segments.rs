//! What the SMS cost (issue 23): `checkin_sms_segments_total{kind, outcome, operator}`,
//! the segments every submit wrote, by what the message is
//! (`texts::SmsKind`: confirmation, repeat, otp, alert, other) and how the
//! SMSC answered. Operators bill per accepted segment, so
//! `increase(checkin_sms_segments_total{outcome="accepted"}[1d])` is a day's
//! bill in segments. Counted by `LinkSender` once per submit (a resend of a
//! message in doubt is counted again: it is written and billed again).

use checkin_core::model::Priority;
use checkin_core::texts::SmsKind;
use metrics::Counter;

/// Counter: segments submitted, labels `kind`, `outcome` and `operator`.
pub const SEGMENTS: &str = "checkin_sms_segments_total";

/// How one submit ended, as the segments metric's `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// `submit_sm_resp` ESME_ROK for every segment: billed.
    Accepted,
    /// A permanent SMPP error: the message is `failed`.
    Refused,
    /// A temporary SMPP error: retried later.
    Temporary,
    /// The answer was lost: in doubt (some segments may be billed).
    Unknown,
    /// Never written: link down, expired, withdrawn, shutting down, too long.
    NotSent,
}

impl Written {
    const ALL: [Written; 5] = [
        Written::Accepted,
        Written::Refused,
        Written::Temporary,
        Written::Unknown,
        Written::NotSent,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Written::Accepted => "accepted",
            Written::Refused => "refused",
            Written::Temporary => "temporary",
            Written::Unknown => "unknown",
            Written::NotSent => "not_sent",
        }
    }
}

/// The counters, registered once (a submit then costs no label lookup in
/// the recorder), every kind × outcome, so each series reads 0 from the
/// start and a rate over it needs no `or vector(0)`.
#[derive(Clone)]
pub(crate) struct SegmentMeters {
    /// `SmsKind::ALL` × `Written::ALL`, row by kind.
    counters: Vec<Counter>,
}

impl std::fmt::Debug for SegmentMeters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentMeters").finish_non_exhaustive()
    }
}

impl SegmentMeters {
    /// Registers every series of `operator` with the process's recorder
    /// (install it first).
    pub(crate) fn register(operator: &str) -> SegmentMeters {
        metrics::describe_counter!(
            SEGMENTS,
            "SMS segments submitted, by kind of message and outcome"
        );
        let mut counters = Vec::with_capacity(SmsKind::ALL.len() * Written::ALL.len());
        for kind in SmsKind::ALL {
            for written in Written::ALL {
                counters.push(metrics::counter!(
                    SEGMENTS,
                    "kind" => kind.as_str(),
                    "outcome" => written.as_str(),
                    "operator" => operator.to_owned()
                ));
            }
        }
        SegmentMeters { counters }
    }

    /// Counts `segments` of the message `text` (queued at `priority`) whose
    /// submit ended `written`.
    pub(crate) fn count(&self, priority: Priority, text: &str, written: Written, segments: usize) {
        let kind = SmsKind::of(priority, text);
        let row = SmsKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let column = Written::ALL.iter().position(|w| *w == written).unwrap_or(0);
        if let Some(counter) = self.counters.get(row * Written::ALL.len() + column) {
            counter.increment(segments as u64);
        }
    }
}
