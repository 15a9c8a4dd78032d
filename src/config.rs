//! Configuration: parsed once in `main` into typed structs that the rest of
//! the program receives.
//!
//! One typed layer (`figment`): the defaults (serde's, in [`Settings`]) <
//! `checkin.toml` (or `--config` / `CHECKIN_CONFIG`) < `CHECKIN_*`
//! environment < flags, merged key by key (`--smsc-port` over `[smsc] port`
//! keeps the file's other `[smsc]` keys), then extracted once into
//! [`Settings`] and checked into a [`Config`]. Every key is listed in
//! `docs/configuration.md`, and a test holds that list and the typed layer
//! equal.
//!
//! The environment is read by clap, not by figment's `Env`: every
//! `CHECKIN_*` variable is the twin of a flag ([`Overrides`]), so one
//! declaration gives the flag, its variable, its `--help` line and the rank
//! flag > variable; figment's `Env` would need a hand-kept map of names that
//! do not follow the keys (`CHECKIN_SMSC_HOST` is `[smsc] host`) and would
//! read variables that are not configuration keys (`CHECKIN_LOG`,
//! `CHECKIN_ORG_PASSWORD`). [`Overrides`] is the figment provider of both.
//!
//! Operators: each `[[operator]]` section is one operator's SMSC (every key
//! of `smsc_link::LinkConfig`), its number `ranges` and its `[operator.ussd]`
//! profile. The single `[smsc]` section of before issue 20 (and its flags) is
//! one operator, named by its `name` (default `default`). Their mistakes are
//! reported naming the operator and the key, before anything binds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use checkin_core::{Keys, MsisdnPolicy, OperatorName, ServiceZone, StoreConfig};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use smpp_text::range::NumberRange;
use smsc_link::LinkConfig;

use crate::ussd::UssdConfig;

/// Where the data lives when nothing says otherwise.
pub const DATA_DIR_DEFAULT: &str = "./checkin-data";
/// The web server's default address.
pub const HTTP_DEFAULT: &str = "127.0.0.1:8080";
/// The bundled simulator's default SMPP and HTTP addresses.
pub const SIM_SMPP_DEFAULT: &str = "127.0.0.1:2775";
pub const SIM_HTTP_DEFAULT: &str = "127.0.0.1:2776";
/// The config file read from the working directory when `--config` is not given.
pub const CONFIG_FILE_DEFAULT: &str = "checkin.toml";
/// SMS per second this instance sends unless told otherwise.
pub const SEND_RATE_DEFAULT: u32 = 100;
/// Longest time `serve` takes to stop after SIGTERM / Ctrl-C, whatever the
/// link is doing.
pub const SHUTDOWN_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// The time zone of times shown to people unless told otherwise.
pub const TIME_ZONE_DEFAULT: &str = "Europe/Moscow";
/// The name of the operator a `[smsc]` section (or `--smsc-host`) configures
/// when its `name` is not given.
pub const SMSC_OPERATOR_NAME_DEFAULT: &str = "default";

/// Values given on the command line or in the environment (clap fills both);
/// `None` means "not given here". The top layer of the configuration (a
/// figment [`Provider`]): `smsc_*` land in `[smsc]`, the rest at the top.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct Overrides {
    /// Configuration file (TOML). Default: ./checkin.toml when it exists.
    #[arg(long, env = "CHECKIN_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite database and the key file [default: ./checkin-data].
    #[arg(long, env = "CHECKIN_DATA_DIR", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://… [default: a SQLite file in the data folder].
    #[arg(long, env = "CHECKIN_DATABASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// SQLite commits: "full" (each group commit is fsynced: survives a power loss) or "normal" (survives a crash of the process only) [default: full].
    #[arg(long, env = "CHECKIN_SQLITE_SYNCHRONOUS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlite_synchronous: Option<String>,
    /// Address of the web server [default: 127.0.0.1:8080].
    #[arg(long, env = "CHECKIN_HTTP", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<SocketAddr>,
    /// SMPP address of the bundled simulator, used when no operator is configured [default: 127.0.0.1:2775].
    #[arg(long, env = "CHECKIN_SIM_SMPP", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_smpp: Option<SocketAddr>,
    /// HTTP address of the bundled simulator's control API and virtual phone [default: 127.0.0.1:2776].
    #[arg(long, env = "CHECKIN_SIM_HTTP", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_http: Option<SocketAddr>,
    /// Time zone for times shown to people [default: Europe/Moscow].
    #[arg(long, env = "CHECKIN_TIME_ZONE", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Days check-ins, cases and messages are kept [default: 28].
    #[arg(long, env = "CHECKIN_RETENTION_DAYS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Minutes within which a repeated check-in (same phone, same premises) is the same visit [default: 10].
    #[arg(long, env = "CHECKIN_DEDUPE_MINUTES", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedupe_minutes: Option<u32>,
    /// Phone look-up hash key, 64 hex digits [default: generated into DATA_DIR/keys.toml].
    #[arg(
        long,
        env = "CHECKIN_PHONE_HASH_KEY",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_hash_key: Option<String>,
    /// Phone encryption key, 64 hex digits [default: generated into DATA_DIR/keys.toml].
    #[arg(
        long,
        env = "CHECKIN_PHONE_ENCRYPTION_KEY",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_encryption_key: Option<String>,
    /// SMS this instance sends per second, its share of the operators' contracts [default: 100].
    #[arg(long, env = "CHECKIN_SEND_RATE", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_rate: Option<u32>,
    /// Accept phone numbers outside Russia (+7) [default: false].
    #[arg(long, env = "CHECKIN_ALLOW_INTERNATIONAL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_international: Option<bool>,
    /// Longest time a stop (SIGTERM, Ctrl-C) takes, in milliseconds [default: 10000].
    #[arg(long, env = "CHECKIN_SHUTDOWN_TIMEOUT_MS", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout_ms: Option<u64>,
    /// SMSC host of the single operator ([smsc] host); setting it replaces the bundled simulator.
    #[arg(long, env = "CHECKIN_SMSC_HOST", global = true)]
    #[serde(skip)]
    pub smsc_host: Option<String>,
    /// SMSC port of the single operator ([smsc] port) [default: 2775].
    #[arg(long, env = "CHECKIN_SMSC_PORT", global = true)]
    #[serde(skip)]
    pub smsc_port: Option<u16>,
    /// SMPP system_id for the single operator's bind ([smsc] system_id).
    #[arg(long, env = "CHECKIN_SMSC_SYSTEM_ID", global = true)]
    #[serde(skip)]
    pub smsc_system_id: Option<String>,
    /// SMPP password for the single operator's bind ([smsc] password).
    #[arg(
        long,
        env = "CHECKIN_SMSC_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    #[serde(skip)]
    pub smsc_password: Option<String>,
}

/// The `[smsc]` keys [`Overrides`] sets, as the layer emits them.
#[derive(Serialize)]
struct SmscOverrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    host: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: &'a Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_id: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: &'a Option<String>,
}

impl Provider for Overrides {
    fn metadata(&self) -> Metadata {
        Metadata::named("flags and CHECKIN_* environment")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = Serialized::defaults(self).data()?;
        let smsc = SmscOverrides {
            host: &self.smsc_host,
            port: &self.smsc_port,
            system_id: &self.smsc_system_id,
            password: &self.smsc_password,
        };
        if [
            smsc.host.is_some(),
            smsc.port.is_some(),
            smsc.system_id.is_some(),
            smsc.password.is_some(),
        ]
        .contains(&true)
        {
            let smsc = Serialized::default("smsc", smsc).data()?;
            for (profile, dict) in smsc {
                data.entry(profile).or_default().extend(dict);
            }
        }
        Ok(data)
    }
}

/// The typed layer: every key of `checkin.toml` (and of the layers above it)
/// with its default. Sections whose mistakes must name an operator stay
/// untyped here and are read by [`operator`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "data_dir_default")]
    data_dir: PathBuf,
    /// Default: a SQLite file in `data_dir`.
    database_url: Option<String>,
    /// Default: `StoreConfig`'s (full).
    sqlite_synchronous: Option<String>,
    #[serde(default = "http_default")]
    http: SocketAddr,
    #[serde(default = "sim_smpp_default")]
    sim_smpp: SocketAddr,
    #[serde(default = "sim_http_default")]
    sim_http: SocketAddr,
    #[serde(default = "time_zone_default")]
    time_zone: String,
    /// Default: `StoreConfig`'s (28).
    retention_days: Option<u32>,
    /// Default: `StoreConfig`'s (10).
    dedupe_minutes: Option<u32>,
    phone_hash_key: Option<String>,
    phone_encryption_key: Option<String>,
    #[serde(default)]
    allow_international: bool,
    #[serde(default = "send_rate_default")]
    send_rate: u32,
    #[serde(default = "shutdown_timeout_ms_default")]
    shutdown_timeout_ms: u64,
    /// `[web]` and `[web.oidc]`: every key of `web::WebConfig` (see
    /// web/README.md).
    #[serde(default)]
    web: web::WebConfig,
    /// The single operator of before issue 20: an [`OperatorSection`] whose
    /// `host`, `port`, `system_id` and `password` have flags too. Holding
    /// only `[smsc.ussd]` (no SMSC): `[ussd]` by its older name.
    smsc: Option<Dict>,
    /// `[[operator]]`: [`OperatorSection`]s.
    #[serde(default)]
    operator: Vec<Dict>,
    /// The USSD profile of every operator without its own, and of the
    /// bundled simulator.
    ussd: Option<UssdConfig>,
    #[serde(default)]
    routing: RoutingSection,
    #[serde(default)]
    notifier: NotifierSettings,
}

fn data_dir_default() -> PathBuf {
    PathBuf::from(DATA_DIR_DEFAULT)
}
fn http_default() -> SocketAddr {
    parse_addr(HTTP_DEFAULT)
}
fn sim_smpp_default() -> SocketAddr {
    parse_addr(SIM_SMPP_DEFAULT)
}
fn sim_http_default() -> SocketAddr {
    parse_addr(SIM_HTTP_DEFAULT)
}
fn time_zone_default() -> String {
    TIME_ZONE_DEFAULT.to_owned()
}
fn send_rate_default() -> u32 {
    SEND_RATE_DEFAULT
}
fn shutdown_timeout_ms_default() -> u64 {
    SHUTDOWN_TIMEOUT_MS_DEFAULT
}

/// An `[[operator]]` (or `[smsc]`) section: these keys, and every other key
/// is one of `smsc_link::LinkConfig`'s (see smsc-link/README.md).
#[derive(Debug, Deserialize)]
struct OperatorSection {
    #[serde(flatten)]
    own: OperatorKeys,
    /// The rest: `LinkConfig`'s keys, or mistakes.
    #[serde(flatten)]
    link: Dict,
}

/// The keys of an operator section that are not the link's.
#[derive(Debug, Deserialize)]
struct OperatorKeys {
    /// Required in `[[operator]]`; `[smsc]` defaults to `default`. Read
    /// from the section before the rest (see [`operator`]), so that every
    /// later mistake names the operator; here for its type and its place in
    /// the key list.
    #[allow(dead_code)]
    name: Option<String>,
    /// Number ranges the operator serves: `+7916` or `+79030000000-+79030999999`.
    #[serde(default)]
    ranges: Vec<String>,
    /// `[operator.ussd]`: a `UssdConfig`.
    ussd: Option<Dict>,
}

/// The link keys an operator section must have.
const OPERATOR_REQUIRED: [&str; 3] = ["host", "system_id", "password"];

/// `[routing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingSection {
    /// The operator of a message that no learned route and no range places.
    /// Default: the first operator.
    default_operator: Option<String>,
}

/// The `[notifier]` section: how messages are delivered. Every key optional,
/// each default named in `notifier` and listed in the README.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifierSettings {
    /// An OTP not written within this long of being queued is never sent
    /// (`expired`). Default 300 000 (5 min).
    pub otp_max_age_ms: u64,
    /// The same for confirmations and other replies. Default 86 400 000 (24 h).
    pub confirmation_max_age_ms: u64,
    /// The same for exposure alerts. Default 172 800 000 (48 h).
    pub alert_max_age_ms: u64,
    /// The alerts' rate at most, in SMS segments per second (it halves on
    /// throttling and climbs back). Default: the `[smsc]` contract,
    /// `segments_per_second` × `binds`; 50 when that is unlimited or the
    /// bundled simulator is used. 0: alerts paced by `send_rate` only.
    pub alert_segments_per_second: Option<u32>,
    /// Segments per second the alerts' rate climbs back each second without
    /// throttling. Default 5.
    pub alert_rate_step: u32,
    /// Alerts one recipient gets per UTC day at most, counted in storage. 0:
    /// no cap. Default 10.
    pub recipient_daily_max: u32,
    /// How often the kill switch is read from storage (another instance may
    /// set it). Default 250.
    pub kill_switch_poll_ms: u64,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        NotifierSettings {
            otp_max_age_ms: notifier::OTP_MAX_AGE_MS_DEFAULT,
            confirmation_max_age_ms: notifier::CONFIRMATION_MAX_AGE_MS_DEFAULT,
            alert_max_age_ms: notifier::ALERT_MAX_AGE_MS_DEFAULT,
            alert_segments_per_second: None,
            alert_rate_step: 5,
            recipient_daily_max: notifier::RECIPIENT_DAILY_MAX_DEFAULT,
            kill_switch_poll_ms: notifier::KILL_SWITCH_POLL_MS_DEFAULT,
        }
    }
}

impl NotifierSettings {
    /// The notifier's configuration: these settings over its defaults, at
    /// `send_rate` messages per second, under the operators' contracts (the
    /// alerts' default ceiling is their sum, `segments_per_second` × `binds`
    /// each; an operator without a limit, or none at all, counts
    /// `notifier::ALERT_SEGMENTS_PER_SECOND_DEFAULT`).
    pub fn notifier_config(
        &self,
        send_rate: std::num::NonZeroU32,
        operators: &[OperatorConfig],
    ) -> notifier::NotifierConfig {
        let contract = |link: &LinkConfig| {
            Some(
                link.segments_per_second
                    .saturating_mul(u32::try_from(link.binds).unwrap_or(u32::MAX)),
            )
            .filter(|&c| c > 0)
            .unwrap_or(notifier::ALERT_SEGMENTS_PER_SECOND_DEFAULT)
        };
        let contracts = operators
            .iter()
            .map(|o| contract(&o.link))
            .fold(0u32, u32::saturating_add);
        let contracts = Some(contracts)
            .filter(|&c| c > 0)
            .unwrap_or(notifier::ALERT_SEGMENTS_PER_SECOND_DEFAULT);
        notifier::NotifierConfig {
            messages_per_second: send_rate,
            alert_segments_per_second: self.alert_segments_per_second.unwrap_or(contracts),
            alert_rate_step: self.alert_rate_step,
            recipient_daily_max: self.recipient_daily_max,
            otp_max_age: Duration::from_millis(self.otp_max_age_ms),
            confirmation_max_age: Duration::from_millis(self.confirmation_max_age_ms),
            alert_max_age: Duration::from_millis(self.alert_max_age_ms),
            kill_switch_poll_interval: Duration::from_millis(self.kill_switch_poll_ms),
            ..notifier::NotifierConfig::default()
        }
    }
}

/// One operator's SMSC and what it serves. `Debug` hides the password.
#[derive(Clone, PartialEq)]
pub struct OperatorConfig {
    pub name: checkin_core::OperatorName,
    pub link: smsc_link::LinkConfig,
    /// Number ranges this operator serves (`ranges`), part of the numbering plan.
    pub ranges: Vec<smpp_text::range::NumberRange>,
    /// Its USSD profile.
    pub ussd: crate::ussd::UssdConfig,
}

impl std::fmt::Debug for OperatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> = self.ranges.iter().map(ToString::to_string).collect();
        f.debug_struct("OperatorConfig")
            .field("name", &self.name.as_str())
            .field("host", &self.link.host)
            .field("port", &self.link.port)
            .field("failover_hosts", &self.link.failover_hosts)
            .field("system_id", &self.link.system_id)
            .field("password", &"…")
            .field("binds", &self.link.binds)
            .field("ranges", &ranges)
            .field("ussd", &self.ussd)
            .finish_non_exhaustive()
    }
}

/// Where the phone-number keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Both keys given in configuration.
    Given(Keys),
    /// A key file, created with fresh keys on first use.
    File(PathBuf),
}

/// The whole configuration, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub http: SocketAddr,
    pub sim_smpp: SocketAddr,
    pub sim_http: SocketAddr,
    pub zone: ServiceZone,
    pub store: StoreConfig,
    pub keys: KeySource,
    /// Which phone numbers are accepted.
    pub msisdn_policy: MsisdnPolicy,
    /// SMS sent per second by this instance.
    pub send_rate: std::num::NonZeroU32,
    /// In configuration order; empty: the bundled simulator stands in for the operator.
    pub operators: Vec<OperatorConfig>,
    /// Where a message goes when neither a learned route nor the numbering plan names an operator.
    /// `None` with no operators (the bundled simulator).
    pub default_operator: Option<checkin_core::OperatorName>,
    /// The top-level USSD profile (`[ussd]`, or `[smsc.ussd]` without an
    /// SMSC; else `UssdConfig::default()`): every operator's without its own,
    /// and the bundled simulator's while `operators` is empty.
    pub simulator_ussd: UssdConfig,
    /// Longest time a stop takes; past it the process exits anyway.
    pub shutdown_timeout: Duration,
    /// Delivery settings (`[notifier]`).
    pub notifier: NotifierSettings,
    /// The web's settings (`[web]`). Without a `public_base_url` there it is
    /// empty here, and the gateway uses `http://` + the address it bound
    /// (`--http`, whose port may be 0).
    pub web: web::WebConfig,
}

impl Config {
    /// Resolves flags/env over the config file over defaults.
    pub fn resolve(cli: &Overrides) -> anyhow::Result<Config> {
        let file = match &cli.config {
            Some(path) => {
                if !path.is_file() {
                    bail!("reading config file {}: no such file", path.display());
                }
                Some(path.clone())
            }
            None if Path::new(CONFIG_FILE_DEFAULT).is_file() => {
                Some(PathBuf::from(CONFIG_FILE_DEFAULT))
            }
            None => None,
        };
        let mut layers = Figment::new();
        if let Some(path) = &file {
            layers = layers.merge(Toml::file_exact(path));
        }
        Self::from_layers(layers.merge(cli.clone())).with_context(|| match &file {
            Some(path) => format!("configuration (file {})", path.display()),
            None => "configuration (no file)".to_owned(),
        })
    }

    /// Checks the merged layers into a `Config`.
    fn from_layers(layers: Figment) -> anyhow::Result<Config> {
        let settings: Settings = layers.extract().map_err(explain)?;
        let data_dir = settings.data_dir;
        let database_url = settings
            .database_url
            .unwrap_or_else(|| checkin_core::store::sqlite_url_in(&data_dir));
        let zone =
            ServiceZone::parse(&settings.time_zone).map_err(|e| anyhow!("time_zone: {e}"))?;
        let mut store = StoreConfig::default();
        // The alerts name the visit's time in the service's zone.
        store.exposure.zone = zone;
        if let Some(days) = settings.retention_days {
            if days == 0 {
                bail!("retention_days must be at least 1");
            }
            store.retention = Duration::from_secs(u64::from(days) * 24 * 3600);
        }
        if let Some(sync) = settings.sqlite_synchronous {
            store.sqlite_synchronous = sync
                .parse()
                .map_err(|e| anyhow!("sqlite_synchronous: {e}"))?;
        }
        if let Some(minutes) = settings.dedupe_minutes {
            store.dedupe_window = Duration::from_secs(u64::from(minutes) * 60);
        }
        let keys = match (settings.phone_hash_key, settings.phone_encryption_key) {
            (Some(h), Some(e)) => KeySource::Given(Keys {
                hash_key: checkin_core::privacy::parse_key(&h).context("phone_hash_key")?,
                encryption_key: checkin_core::privacy::parse_key(&e)
                    .context("phone_encryption_key")?,
            }),
            (None, None) => KeySource::File(data_dir.join("keys.toml")),
            _ => bail!("set both phone_hash_key and phone_encryption_key, or neither"),
        };
        let top_ussd = match settings.ussd {
            Some(ussd) => {
                ussd.validate()
                    .map_err(|e| anyhow!("[ussd]: {}", bare(&e)))?;
                Some(ussd)
            }
            None => None,
        };
        let (operators, simulator_ussd) = operators(settings.smsc, settings.operator, top_ussd)?;
        let default_operator = default_operator(settings.routing, &operators)?;
        let send_rate = std::num::NonZeroU32::new(settings.send_rate)
            .context("send_rate must be at least 1")?;
        if settings.shutdown_timeout_ms == 0 {
            bail!("shutdown_timeout_ms must be at least 1");
        }
        let shutdown_timeout = Duration::from_millis(settings.shutdown_timeout_ms);
        let mut web = settings.web;
        if !layers.contains("web.public_base_url") {
            web.public_base_url = String::new();
        }
        check_oidc(&web.oidc).context("reading the [web.oidc] section")?;
        let notifier = settings.notifier;
        if notifier.otp_max_age_ms == 0
            || notifier.confirmation_max_age_ms == 0
            || notifier.alert_max_age_ms == 0
        {
            bail!("[notifier] *_max_age_ms must be at least 1");
        }
        Ok(Config {
            data_dir,
            database_url,
            http: settings.http,
            sim_smpp: settings.sim_smpp,
            sim_http: settings.sim_http,
            zone,
            store,
            keys,
            msisdn_policy: MsisdnPolicy {
                allow_international: settings.allow_international,
            },
            send_rate,
            operators,
            default_operator,
            simulator_ussd,
            shutdown_timeout,
            notifier,
            web,
        })
    }

    /// The phone-number keys, creating the key file on first use.
    pub fn load_keys(&self) -> anyhow::Result<Keys> {
        match &self.keys {
            KeySource::Given(keys) => Ok(keys.clone()),
            KeySource::File(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                Ok(Keys::load_or_create(path)?)
            }
        }
    }
}

/// `[smsc]` or `[[operator]]` into operators, and the bundled simulator's
/// USSD profile. `top_ussd` is `[ussd]`; a `[smsc]` holding only
/// `[smsc.ussd]` (no SMSC) is the same profile under its older name.
fn operators(
    smsc: Option<Dict>,
    sections: Vec<Dict>,
    top_ussd: Option<UssdConfig>,
) -> anyhow::Result<(Vec<OperatorConfig>, UssdConfig)> {
    let (smsc, smsc_ussd) = match smsc.filter(|s| !s.is_empty()) {
        Some(only_ussd) if only_ussd.keys().all(|k| k == "ussd") => {
            (None, only_ussd.get("ussd").cloned())
        }
        smsc => (smsc, None),
    };
    let default_ussd = match (top_ussd, smsc_ussd) {
        (Some(_), Some(_)) => {
            bail!("[ussd] and [smsc.ussd] (without an SMSC) are the same profile: keep one")
        }
        (Some(ussd), None) => ussd,
        (None, Some(ussd)) => ussd_profile("[smsc]", ussd)?,
        (None, None) => UssdConfig::default(),
    };
    let mut operators = Vec::new();
    if let Some(smsc) = smsc {
        if !sections.is_empty() {
            bail!(
                "[smsc] (or --smsc-* / CHECKIN_SMSC_*) and [[operator]] sections cannot be \
                 used together: write the [smsc] operator as one more [[operator]]"
            );
        }
        operators.push(operator(smsc, None, &default_ussd)?);
    }
    for (i, section) in sections.into_iter().enumerate() {
        operators.push(operator(section, Some(i + 1), &default_ussd)?);
    }
    for (i, op) in operators.iter().enumerate() {
        if operators[..i].iter().any(|o| o.name == op.name) {
            bail!("operator {:?} is configured twice", op.name.as_str());
        }
    }
    Ok((operators, default_ussd))
}

/// One operator section: `number` is its place among the `[[operator]]`
/// sections, `None` for `[smsc]`.
fn operator(
    section: Dict,
    number: Option<usize>,
    default_ussd: &UssdConfig,
) -> anyhow::Result<OperatorConfig> {
    // The name first: every later mistake names it.
    let name = match section.get("name") {
        Some(Value::String(_, name)) => name.clone(),
        Some(_) => bail!("{}: name must be a string", unnamed(number)),
        None => match number {
            None => SMSC_OPERATOR_NAME_DEFAULT.to_owned(),
            Some(_) => bail!("{}: name is required", unnamed(number)),
        },
    };
    let label = match number {
        Some(_) => format!("operator {name:?}"),
        None => format!("operator {name:?} ([smsc])"),
    };
    let name = OperatorName::new(&name).map_err(|e| anyhow!("{label}: {e}"))?;
    let OperatorSection { own, link } = Value::from(section)
        .deserialize()
        .map_err(|e| anyhow!("{label}: {}", explain_plain(e)))?;
    let link_config: LinkConfig = Value::from(link.clone())
        .deserialize()
        .map_err(|e| anyhow!("{label}: {}", explain_plain(e)))?;
    for key in OPERATOR_REQUIRED {
        if !link.contains_key(key) {
            let hint = match number {
                Some(_) => String::new(),
                None => format!(
                    " (--smsc-{}, CHECKIN_SMSC_{})",
                    key.replace('_', "-"),
                    key.to_uppercase()
                ),
            };
            bail!("{label}: {key} is required{hint}");
        }
    }
    link_config
        .validate()
        .map_err(|e| anyhow!("{label}: {}", bare(&e.to_string())))?;
    let ranges = own
        .ranges
        .iter()
        .map(|r| r.parse::<NumberRange>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{label}: ranges: {e}"))?;
    let ussd = match own.ussd {
        Some(ussd) => ussd_profile(&label, Value::from(ussd))?,
        None => default_ussd.clone(),
    };
    Ok(OperatorConfig {
        name,
        link: link_config,
        ranges,
        ussd,
    })
}

/// An operator section before its name is known.
fn unnamed(number: Option<usize>) -> String {
    match number {
        Some(n) => format!("[[operator]] #{n}"),
        None => "[smsc]".to_owned(),
    }
}

/// An operator's `ussd` section, read and checked.
fn ussd_profile(label: &str, section: Value) -> anyhow::Result<UssdConfig> {
    let ussd: UssdConfig = section.deserialize().map_err(|e| {
        let mut e = e;
        e.path.insert(0, "ussd".into());
        anyhow!("{label}: {}", explain_plain(e))
    })?;
    ussd.validate()
        .map_err(|e| anyhow!("{label}: ussd: {}", bare(&e)))?;
    Ok(ussd)
}

/// `[routing] default_operator`, which must name an operator; the first by
/// default.
fn default_operator(
    routing: RoutingSection,
    operators: &[OperatorConfig],
) -> anyhow::Result<Option<OperatorName>> {
    let Some(name) = routing.default_operator else {
        return Ok(operators.first().map(|o| o.name.clone()));
    };
    let configured: Vec<&str> = operators.iter().map(|o| o.name.as_str()).collect();
    if configured.is_empty() {
        bail!(
            "[routing] default_operator {name:?}: no operator is configured \
             (the bundled simulator stands in)"
        );
    }
    if !configured.contains(&name.as_str()) {
        bail!("[routing] default_operator {name:?}: no such operator (configured: {configured:?})");
    }
    Ok(Some(OperatorName::new(&name)?))
}

/// A check's message without the section it was written for (`[smsc.ussd]
/// short_code …`, `configuration: …`): the caller names the section.
fn bare(message: &str) -> &str {
    let message = message.strip_prefix("[smsc.ussd] ").unwrap_or(message);
    message
        .strip_prefix("configuration: ")
        .or_else(|| message.strip_prefix("invalid configuration: "))
        .unwrap_or(message)
}

/// Figment's errors, each naming the key and, where known, the layer it
/// came from (`unknown key "web.oidc.issuer" (TOML file checkin.toml)`).
fn explain(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let from = e.metadata.as_ref().map(|m| match &m.source {
                Some(source) => format!(" ({} {source})", m.name),
                None => format!(" ({})", m.name),
            });
            format!("{}{}", explain_plain(e), from.unwrap_or_default())
        })
        .collect();
    anyhow!(lines.join("; "))
}

/// One figment error: the dotted key and what is wrong with it.
fn explain_plain(e: figment::Error) -> String {
    use figment::error::Kind;
    // Figment's path ends with the key at fault for some kinds, not others.
    let key = |last: &str| {
        let mut path = e.path.clone();
        if path.last().map(String::as_str) != Some(last) {
            path.push(last.to_owned());
        }
        path.join(".")
    };
    match &e.kind {
        Kind::UnknownField(field, _) => format!("unknown key {:?}", key(field)),
        Kind::MissingField(field) => format!("{} is required", key(field)),
        Kind::DuplicateField(field) => format!("{} is given twice", key(field)),
        kind if e.path.is_empty() => kind.to_string(),
        kind => format!("{}: {kind}", e.path.join(".")),
    }
}

fn parse_addr(text: &str) -> SocketAddr {
    text.parse()
        .expect("the built-in default addresses are valid")
}

/// `[web.oidc]`: off without an `issuer_url`; with one, an http(s) URL and a
/// client id are needed (a mistake here shows at start, not at a visitor's
/// first login).
fn check_oidc(oidc: &web::OidcConfig) -> anyhow::Result<()> {
    if !oidc.enabled() {
        return Ok(());
    }
    let issuer = oidc.issuer_url.trim();
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        bail!("issuer_url must be an http(s) URL");
    }
    if oidc.client_id.trim().is_empty() {
        bail!("client_id is required with an issuer_url");
    }
    if oidc.request_timeout_ms == 0 {
        bail!("request_timeout_ms must be at least 1");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
