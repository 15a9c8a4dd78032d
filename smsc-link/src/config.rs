//! `LinkConfig`: everything the link needs, read once (e.g. from the `[smsc]`
//! TOML section) and handed to [`crate::Link::start`]. Every field has a
//! named, documented default; durations are in milliseconds (`_ms`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How each connection binds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    /// One `bind_transceiver` per bind: submits and deliveries share it (default).
    #[default]
    Transceiver,
    /// A `bind_transmitter` and a `bind_receiver` connection per bind.
    TransmitterReceiver,
}

/// What `data_coding` 0 (the SMSC default alphabet) means for this operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAlphabet {
    /// GSM 03.38 7-bit, one septet per octet (default).
    #[default]
    Gsm7,
    /// ISO-8859-1.
    Latin1,
}

/// How the SMSC writes message ids, in `submit_sm_resp` or in receipts.
///
/// Ids are compared by numeric value when a radix is known, so `0000002A`
/// (hex) in a `submit_sm_resp` and `42` (decimal) in a receipt are the same
/// message when the two radixes say so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdRadix {
    /// As written, compared case-insensitively without leading zeros
    /// (default): the SMSC writes an id the same way in `submit_sm_resp` and
    /// in its receipt, in whatever radix. (A guess per id cannot work: hex
    /// `00000010` would read as decimal 10, the same as hex `0000000a`.) An
    /// SMSC that writes hex in one and decimal in the other needs `hex` and
    /// `decimal` set.
    #[default]
    Auto,
    /// Always decimal.
    Decimal,
    /// Always hexadecimal.
    Hex,
    /// Opaque text, compared case-insensitively without leading zeros.
    Text,
}

/// When the parts of a multipart MO are acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartAck {
    /// Every part but the one completing the message is answered ESME_ROK
    /// once stored; the completing part only after the handler returned
    /// `Ok`. On a handler error the completing part is answered
    /// ESME_RX_T_APPN and the other parts stay stored, so the SMSC's
    /// redelivery completes the message again. Works with SMSCs that send
    /// the parts one after the other (window 1). Default.
    #[default]
    OnArrival,
    /// Every part is answered only after the handler ran on the whole
    /// message. Nothing is acknowledged before it is handled, but the
    /// SMSC must allow as many unanswered `deliver_sm` as there are parts.
    Hold,
}

/// Type of number and numbering plan of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TonNpi {
    /// SMPP `addr_ton`.
    pub ton: u8,
    /// SMPP `addr_npi`.
    pub npi: u8,
}

/// A bind password: `Debug` prints `Password(…)`, so a logged configuration
/// never leaks it. Reads as `&str` where the bind needs it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl std::ops::Deref for Password {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(text: String) -> Self {
        Password(text)
    }
}

impl From<&str> for Password {
    fn from(text: &str) -> Self {
        Password(text.to_owned())
    }
}

/// One SMSC endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The configuration of a link. Deserializes from the `[smsc]` section with
/// every key but `host`/`port`/`system_id`/`password` optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// SMSC host. Default `127.0.0.1`.
    pub host: String,
    /// SMSC port. Default 2775.
    pub port: u16,
    /// Further SMSC endpoints tried in order when the previous one fails
    /// (failover). Default none.
    pub failover_hosts: Vec<Host>,
    /// `system_id` of the binds (at most 15 characters). Default `checkin`.
    pub system_id: String,
    /// Password of the binds (at most 8 characters). Default `checkin`.
    /// `Debug` never shows it.
    pub password: Password,
    /// `system_type` of the binds. Default empty.
    pub system_type: String,
    /// `address_range` of the binds. Default empty.
    pub address_range: String,
    /// `interface_version` of the binds. Default 0x34 (SMPP 3.4).
    pub interface_version: u8,
    /// Transceiver, or a transmitter + receiver pair. Default transceiver.
    pub bind_mode: BindMode,
    /// Binds opened to the SMSC (each with its own window and rate limit).
    /// Default 1.
    pub binds: usize,
    /// False: every bind starts on `host` and moves to the next host only
    /// when a connect or bind fails (primary/backup). True: bind `i` starts
    /// on host `i mod hosts` (active-active SMSCs), failing over the same
    /// way. Default false.
    pub spread_binds: bool,
    /// `source_addr` of submitted messages: the short code. Default `7377`.
    pub source_addr: String,
    /// TON/NPI of `source_addr`. Default 3/0 (network specific short code,
    /// unknown plan); alphanumeric senders want 5/0.
    pub source_ton_npi: TonNpi,
    /// TON/NPI of destination numbers given as `+7…`. Default 1/1
    /// (international, ISDN). Numbers without `+` are sent as 0/1.
    pub dest_ton_npi: TonNpi,
    /// Submit requests sent without a response yet, per bind. Default 100,
    /// what operators' SMSCs commonly allow (10 left most of a contract
    /// unused); it is also the most copies a connection that fails can
    /// leave in doubt (see the outcome policy in the README).
    pub window_max: usize,
    /// Time to wait for any response (`submit_sm_resp`, `bind_resp`,
    /// `unbind_resp`) before the request counts as unanswered; also the
    /// longest a PDU begun may take to arrive whole, and the SMSC to take a
    /// write, before the connection is closed. Default 10 000 ms.
    pub response_timeout_ms: u64,
    /// Time between `enquire_link`s on an idle-or-busy bind. Default 30 000 ms.
    pub enquire_link_interval_ms: u64,
    /// Time to wait for `enquire_link_resp` before the bind is declared
    /// dead and reconnected. Default 10 000 ms.
    pub enquire_link_timeout_ms: u64,
    /// Time to open a TCP connection. Default 5 000 ms.
    pub connect_timeout_ms: u64,
    /// First wait before reconnecting; doubled after each failure. Default 500 ms.
    pub reconnect_backoff_min_ms: u64,
    /// Largest wait between reconnects. Default 30 000 ms.
    pub reconnect_backoff_max_ms: u64,
    /// Share (0..=1) of each backoff drawn at random (added or removed) so
    /// that binds do not reconnect in lockstep. Default 0.2.
    pub reconnect_jitter: f64,
    /// Largest submit rate of one bind, in segments per second (operator
    /// contract), held strictly: segments evenly spaced with a 5 % margin
    /// and no burst, so no one-second window holds more. `0` turns the
    /// limit off. Default 50.
    pub segments_per_second: u32,
    /// First pause of a bind after ESME_RTHROTTLED / ESME_RMSGQFUL; doubled
    /// by each throttle after a pause ended (answers during one count once),
    /// reset by an accepted segment. Default 200 ms.
    pub throttle_backoff_min_ms: u64,
    /// Longest throttle pause. Default 10 000 ms.
    pub throttle_backoff_max_ms: u64,
    /// Times one segment is retried after throttling before its message is
    /// reported rejected with the throttling status. Default 50.
    pub throttle_retries_max: u32,
    /// Messages waiting for a bind (all binds share the queue); `submit`
    /// waits for room when it is full. Default 10 000.
    pub queue_max: usize,
    /// Meaning of `data_coding` 0 in `deliver_sm`. Default GSM 7-bit.
    pub default_alphabet: DefaultAlphabet,
    /// Radix of message ids in `submit_sm_resp`. Default auto.
    pub submit_id_radix: IdRadix,
    /// Radix of message ids in receipts. Default auto.
    pub receipt_id_radix: IdRadix,
    /// Longest wait for the missing parts of a multipart MO, counted from
    /// its first part. Default 60 000 ms.
    pub reassembly_timeout_ms: u64,
    /// Multipart MO messages being reassembled at once; the oldest is
    /// dropped (and its parts answered with a temporary error) above it.
    /// Default 1 000.
    pub reassembly_pending_max: usize,
    /// When the parts of a multipart MO are acknowledged. Default on_arrival.
    pub part_ack: PartAck,
    /// `deliver_sm` (MO, receipts) received and not answered yet, per
    /// connection. At the limit the connection stops reading until a
    /// handler finishes (back-pressure): an SMSC is never answered a
    /// temporary error for its window. Each costs memory (the message and
    /// its handler task, about 1–2 KiB besides what the handler keeps).
    /// Default 1 024.
    pub deliveries_in_flight_max: usize,
    /// Receipts held until their `submit_sm_resp` is processed. Default 1 000.
    pub receipts_held_max: usize,
    /// Longest a receipt is held waiting for its `submit_sm_resp` (keep it
    /// below the SMSC's `deliver_sm_resp` timeout). Default 5 000 ms.
    pub receipt_hold_ms: u64,
    /// Longest [`crate::Link::shutdown`] takes, whatever the binds are
    /// doing. Messages never written are answered `Error::ShutDown` at
    /// once; written segments and running handlers get the first four
    /// fifths of it (at most `response_timeout_ms`), `unbind` the rest.
    /// Default 5 000 ms.
    pub shutdown_timeout_ms: u64,
    /// The `operator` label of this link's metrics (a gateway with several
    /// SMSCs names each link after its operator). Not a configuration key:
    /// the owner sets it. Default `default`.
    #[serde(skip)]
    pub operator: String,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 2775,
            failover_hosts: Vec::new(),
            system_id: "checkin".into(),
            password: "checkin".into(),
            system_type: String::new(),
            address_range: String::new(),
            interface_version: 0x34,
            bind_mode: BindMode::default(),
            binds: 1,
            spread_binds: false,
            source_addr: "7377".into(),
            source_ton_npi: TonNpi { ton: 3, npi: 0 },
            dest_ton_npi: TonNpi { ton: 1, npi: 1 },
            window_max: 100,
            response_timeout_ms: 10_000,
            enquire_link_interval_ms: 30_000,
            enquire_link_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            reconnect_backoff_min_ms: 500,
            reconnect_backoff_max_ms: 30_000,
            reconnect_jitter: 0.2,
            segments_per_second: 50,
            throttle_backoff_min_ms: 200,
            throttle_backoff_max_ms: 10_000,
            throttle_retries_max: 50,
            queue_max: 10_000,
            default_alphabet: DefaultAlphabet::default(),
            submit_id_radix: IdRadix::default(),
            receipt_id_radix: IdRadix::default(),
            reassembly_timeout_ms: 60_000,
            reassembly_pending_max: 1_000,
            part_ack: PartAck::default(),
            deliveries_in_flight_max: 1024,
            receipts_held_max: 1_000,
            receipt_hold_ms: 5_000,
            shutdown_timeout_ms: 5_000,
            operator: "default".into(),
        }
    }
}

impl LinkConfig {
    /// A default configuration for `host:port` with these credentials.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        system_id: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            system_id: system_id.into(),
            password: Password::from(password.into()),
            ..Self::default()
        }
    }

    /// Checks lengths and ranges; called by [`crate::Link::start`].
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |what: &str| Err(crate::Error::Config(what.to_string()));
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return bad("system_id must be 1..=15 characters");
        }
        if self.password.len() > 8 {
            return bad("password must be at most 8 characters");
        }
        if self.system_type.len() > 12 {
            return bad("system_type must be at most 12 characters");
        }
        if self.address_range.len() > 40 {
            return bad("address_range must be at most 40 characters");
        }
        if self.source_addr.is_empty() || self.source_addr.len() > 20 {
            return bad("source_addr must be 1..=20 characters");
        }
        if self.binds == 0 || self.binds > 64 {
            return bad("binds must be 1..=64");
        }
        if self.window_max == 0 || self.window_max > 10_000 {
            return bad("window_max must be 1..=10000");
        }
        if self.queue_max == 0 {
            return bad("queue_max must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.reconnect_jitter) {
            return bad("reconnect_jitter must be within 0..=1");
        }
        if self.reconnect_backoff_min_ms == 0
            || self.reconnect_backoff_min_ms > self.reconnect_backoff_max_ms
        {
            return bad("reconnect backoff must satisfy 0 < min <= max");
        }
        if self.throttle_backoff_min_ms == 0
            || self.throttle_backoff_min_ms > self.throttle_backoff_max_ms
        {
            return bad("throttle backoff must satisfy 0 < min <= max");
        }
        if self.response_timeout_ms == 0
            || self.shutdown_timeout_ms == 0
            || self.enquire_link_interval_ms == 0
            || self.enquire_link_timeout_ms == 0
        {
            return bad("timeouts and intervals must be positive");
        }
        if self.deliveries_in_flight_max == 0 || self.reassembly_pending_max == 0 {
            return bad("deliveries_in_flight_max and reassembly_pending_max must be positive");
        }
        Ok(())
    }

    /// Every endpoint, the primary first.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts = vec![Host {
            host: self.host.clone(),
            port: self.port,
        }];
        hosts.extend(self.failover_hosts.iter().cloned());
        hosts
    }

    pub(crate) fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smsc_section_reads_with_defaults() {
        let config: LinkConfig = toml::from_str(
            r#"
            host = "smsc.example"
            port = 2776
            system_id = "gw"
            password = "secret"
            window_max = 50
            failover_hosts = [{ host = "smsc2.example", port = 2775 }]
            "#,
        )
        .expect("valid toml");
        assert_eq!(config.window_max, 50);
        assert_eq!(config.source_addr, "7377");
        assert_eq!(config.bind_mode, BindMode::Transceiver);
        assert_eq!(config.hosts().len(), 2);
        config.validate().expect("valid config");
    }

    #[test]
    fn bad_values_are_refused() {
        let config = LinkConfig {
            password: "far too long".into(),
            ..LinkConfig::default()
        };
        assert!(config.validate().is_err());
    }
}

#[cfg(test)]
mod password_tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let config = LinkConfig::new("smsc.example", 2775, "checkin", "s3cr3t");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("Password(…)"));
        assert_eq!(&*config.password, "s3cr3t");
        let parsed: LinkConfig = toml::from_str("password = \"abc\"").unwrap();
        assert_eq!(&*parsed.password, "abc");
    }
}
