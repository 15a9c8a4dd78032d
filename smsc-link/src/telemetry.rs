//! Metric names (through the `metrics` facade; the binary installs the
//! recorder/exporter). Labels never carry phone numbers or text.

/// Gauge: binds currently bound.
pub const BINDS: &str = "smsc_link_binds";
/// Gauge: `submit_sm` written and not yet answered, all binds.
pub const IN_FLIGHT: &str = "smsc_link_in_flight";
/// Counter: finished submits, label `outcome` = accepted | rejected | unknown.
pub const SUBMITS: &str = "smsc_link_submits_total";
/// Counter: segments answered ESME_RTHROTTLED / ESME_RMSGQFUL.
pub const THROTTLED: &str = "smsc_link_throttled_total";
/// Histogram: seconds from writing a `submit_sm` to reading its response.
pub const SUBMIT_RTT: &str = "smsc_link_submit_rtt_seconds";
/// Counter: MO messages handed to the handler, label `result` = ok | error.
pub const MO: &str = "smsc_link_mo_total";
/// Counter: receipts handed to the handler, label `result` = ok | error.
pub const RECEIPTS: &str = "smsc_link_receipts_total";
/// Counter: reconnect attempts after a failure.
pub const RECONNECTS: &str = "smsc_link_reconnects_total";
