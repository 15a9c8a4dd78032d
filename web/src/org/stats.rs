//! Check-ins of one premises per day (the last `STATS_DAYS_MAX` days) and per
//! hour of the day, by channel, in the service's zone: counts only, never a
//! phone. The store groups by UTC hour; each hour lands here on its local day
//! and hour (exact for zones whose offset is whole hours, as all of Russia's).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use checkin_core::store::STATS_DAYS_MAX;
use checkin_core::{ServiceZone, StoreError};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Counts by channel (`sms`, `web`, …).
pub(crate) type ByChannel = BTreeMap<&'static str, u64>;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayCounts {
    pub date: NaiveDate,
    pub total: u64,
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_channel: ByChannel,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HourCounts {
    /// 0..=23, local.
    pub hour: u32,
    pub total: u64,
    #[schema(value_type = BTreeMap<String, u64>)]
    pub by_channel: ByChannel,
}

/// One premises' statistics.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Stats {
    pub premises_id: i64,
    pub zone: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every day of the range, oldest first, zeros included.
    pub days: Vec<DayCounts>,
    /// Every hour of the day, summed over the range.
    pub hours: Vec<HourCounts>,
}

/// The start of the local day `date` in UTC.
fn day_start(zone: &ServiceZone, date: NaiveDate) -> Option<DateTime<Utc>> {
    zone.0
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) async fn load(state: &AppState, premises_id: i64) -> Result<Stats, StoreError> {
    let zone = state.inner.zone;
    let to = state.now();
    let today = to.with_timezone(&zone.0).date_naive();
    let first = today - Duration::days(STATS_DAYS_MAX - 1);
    let from = day_start(&zone, first).unwrap_or(to - Duration::days(STATS_DAYS_MAX));
    let counts = state
        .store()
        .orgs()
        .premises_hourly_counts(premises_id, from, to)
        .await?;
    let mut days: Vec<DayCounts> = first
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|date| DayCounts {
            date,
            total: 0,
            by_channel: ByChannel::new(),
        })
        .collect();
    let mut hours: Vec<HourCounts> = (0..24)
        .map(|hour| HourCounts {
            hour,
            total: 0,
            by_channel: ByChannel::new(),
        })
        .collect();
    for c in counts {
        let local = c.hour.with_timezone(&zone.0);
        let channel = c.channel.as_str();
        if let Some(day) = days.iter_mut().find(|d| d.date == local.date_naive()) {
            day.total += c.count;
            *day.by_channel.entry(channel).or_default() += c.count;
        }
        let hour = &mut hours[local.hour() as usize];
        hour.total += c.count;
        *hour.by_channel.entry(channel).or_default() += c.count;
    }
    Ok(Stats {
        premises_id,
        zone: zone.0.name().to_owned(),
        from,
        to,
        days,
        hours,
    })
}

/// Chart size in SVG units (the page scales it).
const CHART_WIDTH: u32 = 720;
const CHART_HEIGHT: u32 = 160;
const LABEL_HEIGHT: u32 = 18;

/// A bar chart of `bars` (label, value) as an SVG of our own making: only
/// numbers and the labels we formatted go in, so it is inlined as is.
pub(crate) fn bar_chart(title: &str, bars: &[(String, u64)]) -> String {
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let n = u32::try_from(bars.len()).unwrap_or(1).max(1);
    let slot = CHART_WIDTH / n;
    let plot = CHART_HEIGHT - LABEL_HEIGHT;
    let label_every = n.div_ceil(12).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        maud::html! { (title) }.into_string()
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(0);
        let height = u32::try_from(u64::from(plot) * value / max).unwrap_or(plot);
        let x = i * slot + 1;
        let y = plot - height;
        let width = slot.saturating_sub(2).max(1);
        let label = maud::html! { (label) }.into_string();
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{height}\" fill=\"#0b5cd5\"><title>{label}: {value}</title></rect>"
        );
        if i % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x}\" y=\"{}\" font-size=\"11\" fill=\"#555\">{label}</text>",
                CHART_HEIGHT - 4
            );
        }
    }
    svg.push_str("</svg>");
    svg
}
