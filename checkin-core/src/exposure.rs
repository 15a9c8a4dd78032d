//! The exposure rule, pure: who shared the premises with a confirmed case. The
//! store's matching query (`store/exposure.rs`) is this rule in SQL; the unit
//! tests here pin the rule's edges and the storage suite checks the query
//! against the same timelines.
//!
//! Every interval is half-open, `[start, end)` in UTC milliseconds: a visitor
//! who arrives the very millisecond the case's buffer ends, or leaves the
//! millisecond the case arrives, shared no air with them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::NewCase;
use crate::msisdn::Msisdn;
use crate::time_fmt::ServiceZone;

/// The matching's defaults. A case may carry its own contagious window (the
/// authority's `contagious_from` / `contagious_to`); the buffer and the zone
/// are the service's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposureConfig {
    /// How long before `confirmed_at` the contagious window opens when the
    /// authority does not say (default 2 days: infectiousness starts about two
    /// days before symptoms).
    pub contagious_before: Duration,
    /// How long after `confirmed_at` it closes when the authority does not say
    /// (default 14 days, the isolation period).
    pub contagious_after: Duration,
    /// Air that lingers after the case has left (default 30 minutes): a
    /// visitor arriving within it is exposed too.
    pub buffer: Duration,
    /// The zone of the visit time in the alert's text (default Europe/Moscow;
    /// the gateway sets the service's).
    pub zone: ServiceZone,
}

/// Default of [`ExposureConfig::contagious_before`].
pub const CONTAGIOUS_BEFORE_DEFAULT: Duration = Duration::from_secs(2 * 24 * 3600);
/// Default of [`ExposureConfig::contagious_after`].
pub const CONTAGIOUS_AFTER_DEFAULT: Duration = Duration::from_secs(14 * 24 * 3600);
/// Default of [`ExposureConfig::buffer`].
pub const BUFFER_DEFAULT: Duration = Duration::from_secs(30 * 60);

impl Default for ExposureConfig {
    fn default() -> Self {
        ExposureConfig {
            contagious_before: CONTAGIOUS_BEFORE_DEFAULT,
            contagious_after: CONTAGIOUS_AFTER_DEFAULT,
            buffer: BUFFER_DEFAULT,
            zone: ServiceZone::default(),
        }
    }
}

impl ExposureConfig {
    /// The case to record: the authority's window where it gave one, else the
    /// defaults around `confirmed_at`.
    pub fn new_case(
        &self,
        authority_id: Option<i64>,
        phone: Msisdn,
        confirmed_at: DateTime<Utc>,
        contagious_from: Option<DateTime<Utc>>,
        contagious_to: Option<DateTime<Utc>>,
    ) -> NewCase {
        let before =
            chrono::Duration::from_std(self.contagious_before).unwrap_or(chrono::Duration::MAX);
        let after =
            chrono::Duration::from_std(self.contagious_after).unwrap_or(chrono::Duration::MAX);
        NewCase {
            authority_id,
            phone,
            confirmed_at,
            contagious_from: contagious_from.unwrap_or_else(|| {
                confirmed_at
                    .checked_sub_signed(before)
                    .unwrap_or(confirmed_at)
            }),
            contagious_to: contagious_to.unwrap_or_else(|| {
                confirmed_at
                    .checked_add_signed(after)
                    .unwrap_or(confirmed_at)
            }),
        }
    }

    /// The buffer in milliseconds (saturating).
    pub fn buffer_ms(&self) -> i64 {
        i64::try_from(self.buffer.as_millis()).unwrap_or(i64::MAX / 4)
    }
}

/// `[start_ms, end_ms)`; empty when `end_ms <= start_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Interval {
    pub fn is_empty(&self) -> bool {
        self.end_ms <= self.start_ms
    }

    /// Whether the two share at least one millisecond.
    pub fn overlaps(&self, other: &Interval) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && self.start_ms < other.end_ms
            && other.start_ms < self.end_ms
    }
}

/// Where a check-in puts its visitor: from the check-in for the premises' stay
/// length, cut short by the same person's next check-in at another premises
/// (they cannot be in two places; a check-in at the same premises again only
/// extends the stay, as its own presence).
pub fn presence(at_ms: i64, stay_minutes: u32, next_elsewhere_ms: Option<i64>) -> Interval {
    let stay_end = at_ms.saturating_add(i64::from(stay_minutes) * 60_000);
    let end_ms = match next_elsewhere_ms {
        Some(next) if next < stay_end => next,
        _ => stay_end,
    };
    Interval {
        start_ms: at_ms,
        end_ms,
    }
}

/// The air a case's visit makes risky: its presence inside the contagious
/// window, extended by the buffer after it ends. `None` when the visit lies
/// outside the window.
pub fn contagious_span(presence: Interval, window: Interval, buffer_ms: i64) -> Option<Interval> {
    let start_ms = presence.start_ms.max(window.start_ms);
    let end_ms = presence.end_ms.min(window.end_ms);
    (start_ms < end_ms).then(|| Interval {
        start_ms,
        end_ms: end_ms.saturating_add(buffer_ms),
    })
}

/// Whether another visitor's presence at the same premises falls in the risky
/// span of a case's visit there.
pub fn exposed(span: Interval, visitor: Interval) -> bool {
    span.overlaps(&visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    fn iv(start_ms: i64, end_ms: i64) -> Interval {
        Interval { start_ms, end_ms }
    }

    #[test]
    fn presence_is_the_stay_cut_by_the_next_checkin_elsewhere() {
        let table = [
            // (at, stay minutes, next elsewhere, expected)
            (0, 60, None, iv(0, HOUR)),
            (0, 60, Some(20 * MIN), iv(0, 20 * MIN)),
            (0, 60, Some(HOUR), iv(0, HOUR)),
            (0, 60, Some(2 * HOUR), iv(0, HOUR)),
            (0, 0, None, iv(0, 0)),
        ];
        for (at, stay, next, expected) in table {
            assert_eq!(presence(at, stay, next), expected, "{at} {stay} {next:?}");
        }
    }

    #[test]
    fn the_risky_span_is_the_presence_in_the_window_plus_the_buffer() {
        let window = iv(10 * DAY, 26 * DAY);
        let buffer = 30 * MIN;
        let table = [
            // (case presence, expected span)
            (
                iv(12 * DAY, 12 * DAY + HOUR),
                Some(iv(12 * DAY, 12 * DAY + HOUR + buffer)),
            ),
            // Starts before the window: only the part inside counts.
            (
                iv(10 * DAY - 20 * MIN, 10 * DAY + 40 * MIN),
                Some(iv(10 * DAY, 10 * DAY + 70 * MIN)),
            ),
            // Ends after the window: cut at the window's end, then the buffer.
            (
                iv(26 * DAY - 10 * MIN, 26 * DAY + 50 * MIN),
                Some(iv(26 * DAY - 10 * MIN, 26 * DAY + 30 * MIN)),
            ),
            // Ends exactly when the window opens: outside.
            (iv(10 * DAY - HOUR, 10 * DAY), None),
            // Starts exactly when the window closes: outside.
            (iv(26 * DAY, 26 * DAY + HOUR), None),
            (iv(2 * DAY, 2 * DAY + HOUR), None),
        ];
        for (presence, expected) in table {
            assert_eq!(
                contagious_span(presence, window, buffer),
                expected,
                "{presence:?}"
            );
        }
    }

    #[test]
    fn exposed_at_the_edges() {
        // The case was there 12:00–13:00, the buffer makes it 12:00–13:30.
        let span = iv(12 * HOUR, 13 * HOUR + 30 * MIN);
        let table = [
            // (visitor presence, exposed)
            (iv(11 * HOUR, 12 * HOUR), false), // left as the case arrived
            (iv(11 * HOUR, 12 * HOUR + 1), true),
            (iv(12 * HOUR + 20 * MIN, 13 * HOUR + 20 * MIN), true),
            (iv(13 * HOUR + 10 * MIN, 14 * HOUR), true), // in the buffer
            (iv(13 * HOUR + 30 * MIN - 1, 14 * HOUR), true),
            (iv(13 * HOUR + 30 * MIN, 14 * HOUR), false), // the buffer is over
            (iv(10 * HOUR, 16 * HOUR), true),             // around it
            (iv(12 * HOUR + 10 * MIN, 12 * HOUR + 10 * MIN), false), // no presence
        ];
        for (visitor, expected) in table {
            assert_eq!(exposed(span, visitor), expected, "{visitor:?}");
        }
    }

    #[test]
    fn default_window_is_two_days_before_to_fourteen_after() {
        let config = ExposureConfig::default();
        let confirmed = DateTime::from_timestamp_millis(30 * DAY).unwrap();
        let phone = Msisdn::parse("+79161234567").unwrap();
        let case = config.new_case(None, phone.clone(), confirmed, None, None);
        assert_eq!(case.contagious_from.timestamp_millis(), 28 * DAY);
        assert_eq!(case.contagious_to.timestamp_millis(), 44 * DAY);
        let from = DateTime::from_timestamp_millis(25 * DAY).unwrap();
        let case = config.new_case(Some(7), phone, confirmed, Some(from), None);
        assert_eq!(case.contagious_from, from);
        assert_eq!(case.contagious_to.timestamp_millis(), 44 * DAY);
        assert_eq!(case.authority_id, Some(7));
        assert_eq!(config.buffer_ms(), 30 * MIN);
    }
}
