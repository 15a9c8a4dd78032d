//! Times as visitors read them: in the service's zone, in Russian, `18 окт. в 20:13`.
//! The zone data is compiled in (chrono-tz), so it works on a bare machine.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

/// The zone the service shows times in (default Europe/Moscow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceZone(pub Tz);

impl Default for ServiceZone {
    fn default() -> Self {
        ServiceZone(chrono_tz::Europe::Moscow)
    }
}

impl ServiceZone {
    /// Parses an IANA name such as `Europe/Moscow` or `Asia/Yekaterinburg`.
    pub fn parse(name: &str) -> Result<ServiceZone, String> {
        name.parse::<Tz>()
            .map(ServiceZone)
            .map_err(|_| format!("unknown time zone {name:?}"))
    }

    /// `18 окт. в 20:13`.
    pub fn day_and_time(&self, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.0);
        format!(
            "{} {} в {:02}:{:02}",
            local.day(),
            MONTHS_SHORT[local.month0() as usize],
            local.hour(),
            local.minute()
        )
    }
}

/// The widest [`ServiceZone::day_and_time`] in characters: a two-digit day,
/// a five-character month (`февр.`, `сент.`, `нояб.`) and `23:59`, as in
/// `28 февр. в 23:59`. The SMS templates reserve this much for the time, so a
/// text that fits on one date fits on every date (a test walks the months).
pub const DAY_AND_TIME_CHARS_MAX: usize = 16;

/// Short month names in the genitive, as the seed's alert writes them.
const MONTHS_SHORT: [&str; 12] = [
    "янв.",
    "февр.",
    "мар.",
    "апр.",
    "мая",
    "июн.",
    "июл.",
    "авг.",
    "сент.",
    "окт.",
    "нояб.",
    "дек.",
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn check(utc: (i32, u32, u32, u32, u32), expect: &str) {
        let at = Utc
            .with_ymd_and_hms(utc.0, utc.1, utc.2, utc.3, utc.4, 0)
            .unwrap();
        assert_eq!(ServiceZone::default().day_and_time(at), expect);
    }

    #[test]
    fn moscow_is_utc_plus_three() {
        // The seed's example: 18 Oct 2020 20:13 Moscow time = 17:13 UTC.
        check((2020, 10, 18, 17, 13), "18 окт. в 20:13");
        check((2021, 1, 1, 0, 5), "1 янв. в 03:05");
        check((2020, 12, 31, 21, 0), "1 янв. в 00:00");
        check((2020, 5, 9, 9, 30), "9 мая в 12:30");
    }

    #[test]
    fn every_month_abbreviation() {
        let expect = [
            "янв.",
            "февр.",
            "мар.",
            "апр.",
            "мая",
            "июн.",
            "июл.",
            "авг.",
            "сент.",
            "окт.",
            "нояб.",
            "дек.",
        ];
        for (i, month) in expect.iter().enumerate() {
            let at = Utc
                .with_ymd_and_hms(2021, i as u32 + 1, 15, 9, 0, 0)
                .unwrap();
            assert_eq!(
                ServiceZone::default().day_and_time(at),
                format!("15 {month} в 12:00")
            );
        }
    }

    #[test]
    fn no_day_and_time_is_wider_than_the_templates_reserve() {
        let zone = ServiceZone::default();
        let mut widest = 0;
        for month in 1..=12 {
            for day in [1, 9, 10, 28] {
                // 23:59 Moscow time, whatever the UTC offset that day.
                let at = Utc.with_ymd_and_hms(2021, month, day, 20, 59, 0).unwrap();
                widest = widest.max(zone.day_and_time(at).chars().count());
            }
        }
        assert_eq!(widest, DAY_AND_TIME_CHARS_MAX);
    }

    #[test]
    fn other_zones() {
        let at = Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap();
        let yekaterinburg = ServiceZone::parse("Asia/Yekaterinburg").unwrap();
        assert_eq!(yekaterinburg.day_and_time(at), "18 окт. в 22:13");
        assert!(ServiceZone::parse("Mars/Olympus").is_err());
    }
}
