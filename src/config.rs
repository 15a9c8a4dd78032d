//! Configuration: parsed once in `main` from flags, `CHECKIN_*` environment
//! variables and an optional `checkin.toml`, in that order of precedence, into
//! typed structs that the rest of the program receives.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use checkin_core::{Keys, MsisdnPolicy, ServiceZone, StoreConfig};
use serde::Deserialize;
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

/// Values given on the command line or in the environment (clap fills both);
/// `None` means "not given here".
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML). Default: ./checkin.toml when it exists.
    #[arg(long, env = "CHECKIN_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite database and the key file [default: ./checkin-data].
    #[arg(long, env = "CHECKIN_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://… [default: a SQLite file in the data folder].
    #[arg(long, env = "CHECKIN_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// SQLite commits: "full" (each group commit is fsynced: survives a power loss) or "normal" (survives a crash of the process only) [default: full].
    #[arg(long, env = "CHECKIN_SQLITE_SYNCHRONOUS", global = true)]
    pub sqlite_synchronous: Option<String>,
    /// Address of the web server [default: 127.0.0.1:8080].
    #[arg(long, env = "CHECKIN_HTTP", global = true)]
    pub http: Option<SocketAddr>,
    /// SMPP address of the bundled simulator, used when no [smsc] is configured [default: 127.0.0.1:2775].
    #[arg(long, env = "CHECKIN_SIM_SMPP", global = true)]
    pub sim_smpp: Option<SocketAddr>,
    /// HTTP address of the bundled simulator's control API and virtual phone [default: 127.0.0.1:2776].
    #[arg(long, env = "CHECKIN_SIM_HTTP", global = true)]
    pub sim_http: Option<SocketAddr>,
    /// Time zone for times shown to people [default: Europe/Moscow].
    #[arg(long, env = "CHECKIN_TIME_ZONE", global = true)]
    pub time_zone: Option<String>,
    /// Days check-ins, cases and messages are kept [default: 28].
    #[arg(long, env = "CHECKIN_RETENTION_DAYS", global = true)]
    pub retention_days: Option<u32>,
    /// Minutes within which a repeated check-in (same phone, same premises) is the same visit [default: 10].
    #[arg(long, env = "CHECKIN_DEDUPE_MINUTES", global = true)]
    pub dedupe_minutes: Option<u32>,
    /// Phone look-up hash key, 64 hex digits [default: generated into DATA_DIR/keys.toml].
    #[arg(
        long,
        env = "CHECKIN_PHONE_HASH_KEY",
        global = true,
        hide_env_values = true
    )]
    pub phone_hash_key: Option<String>,
    /// Phone encryption key, 64 hex digits [default: generated into DATA_DIR/keys.toml].
    #[arg(
        long,
        env = "CHECKIN_PHONE_ENCRYPTION_KEY",
        global = true,
        hide_env_values = true
    )]
    pub phone_encryption_key: Option<String>,
    /// SMS this instance sends per second, its share of the operator's contract [default: 100].
    #[arg(long, env = "CHECKIN_SEND_RATE", global = true)]
    pub send_rate: Option<u32>,
    /// Accept phone numbers outside Russia (+7) [default: false].
    #[arg(long, env = "CHECKIN_ALLOW_INTERNATIONAL", global = true)]
    pub allow_international: Option<bool>,
    /// Longest time a stop (SIGTERM, Ctrl-C) takes, in milliseconds [default: 10000].
    #[arg(long, env = "CHECKIN_SHUTDOWN_TIMEOUT_MS", global = true)]
    pub shutdown_timeout_ms: Option<u64>,
    /// SMSC host; setting it (or an [smsc] section) replaces the bundled simulator.
    #[arg(long, env = "CHECKIN_SMSC_HOST", global = true)]
    pub smsc_host: Option<String>,
    /// SMSC port [default: 2775].
    #[arg(long, env = "CHECKIN_SMSC_PORT", global = true)]
    pub smsc_port: Option<u16>,
    /// SMPP system_id for the bind.
    #[arg(long, env = "CHECKIN_SMSC_SYSTEM_ID", global = true)]
    pub smsc_system_id: Option<String>,
    /// SMPP password for the bind.
    #[arg(
        long,
        env = "CHECKIN_SMSC_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub smsc_password: Option<String>,
}

/// `checkin.toml`: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub sqlite_synchronous: Option<String>,
    pub http: Option<SocketAddr>,
    pub sim_smpp: Option<SocketAddr>,
    pub sim_http: Option<SocketAddr>,
    pub time_zone: Option<String>,
    pub retention_days: Option<u32>,
    pub dedupe_minutes: Option<u32>,
    pub phone_hash_key: Option<String>,
    pub phone_encryption_key: Option<String>,
    pub allow_international: Option<bool>,
    pub send_rate: Option<u32>,
    pub shutdown_timeout_ms: Option<u64>,
    /// The `[web]` section: every key of `web::WebConfig` (see web/README.md),
    /// all optional.
    pub web: Option<toml::Table>,
    /// The `[smsc]` section: every key of `smsc_link::LinkConfig` (see
    /// smsc-link/README.md), `host`, `system_id` and `password` required;
    /// and `[smsc.ussd]`, the operator's USSD profile (`UssdConfig`), which
    /// applies to the bundled simulator too.
    pub smsc: Option<toml::Table>,
    /// The `[notifier]` section: [`NotifierSettings`], all optional.
    pub notifier: Option<NotifierSettings>,
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
    /// `send_rate` messages per second, under the `smsc` contract.
    pub fn notifier_config(
        &self,
        send_rate: std::num::NonZeroU32,
        smsc: Option<&SmscConfig>,
    ) -> notifier::NotifierConfig {
        let contract = smsc
            .map(|s| {
                s.0.segments_per_second
                    .saturating_mul(u32::try_from(s.0.binds).unwrap_or(u32::MAX))
            })
            .filter(|&c| c > 0)
            .unwrap_or(notifier::ALERT_SEGMENTS_PER_SECOND_DEFAULT);
        notifier::NotifierConfig {
            messages_per_second: send_rate,
            alert_segments_per_second: self.alert_segments_per_second.unwrap_or(contract),
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

/// The operator's SMSC, when one is configured. `Debug` hides the password.
#[derive(Clone, PartialEq)]
pub struct SmscConfig(pub LinkConfig);

impl std::fmt::Debug for SmscConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmscConfig")
            .field("host", &self.0.host)
            .field("port", &self.0.port)
            .field("system_id", &self.0.system_id)
            .field("password", &"…")
            .finish()
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
    /// `None`: the bundled simulator stands in for the operator.
    pub smsc: Option<SmscConfig>,
    /// The operator's USSD profile (`[smsc.ussd]`).
    pub ussd: UssdConfig,
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
            Some(path) => read_file(path)?,
            None if Path::new(CONFIG_FILE_DEFAULT).exists() => {
                read_file(Path::new(CONFIG_FILE_DEFAULT))?
            }
            None => FileConfig::default(),
        };
        Self::merge(cli.clone(), file)
    }

    fn merge(cli: Overrides, file: FileConfig) -> anyhow::Result<Config> {
        let data_dir = cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
        let database_url = cli
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| checkin_core::store::sqlite_url_in(&data_dir));
        let zone_name = cli
            .time_zone
            .or(file.time_zone)
            .unwrap_or_else(|| "Europe/Moscow".to_owned());
        let zone = ServiceZone::parse(&zone_name).map_err(anyhow::Error::msg)?;
        let mut store = StoreConfig::default();
        // The alerts name the visit's time in the service's zone.
        store.exposure.zone = zone;
        if let Some(days) = cli.retention_days.or(file.retention_days) {
            if days == 0 {
                bail!("retention_days must be at least 1");
            }
            store.retention = Duration::from_secs(u64::from(days) * 24 * 3600);
        }
        if let Some(sync) = cli.sqlite_synchronous.or(file.sqlite_synchronous) {
            store.sqlite_synchronous = sync.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(minutes) = cli.dedupe_minutes.or(file.dedupe_minutes) {
            store.dedupe_window = Duration::from_secs(u64::from(minutes) * 60);
        }
        let hash_key = cli.phone_hash_key.or(file.phone_hash_key);
        let encryption_key = cli.phone_encryption_key.or(file.phone_encryption_key);
        let keys = match (hash_key, encryption_key) {
            (Some(h), Some(e)) => KeySource::Given(Keys {
                hash_key: checkin_core::privacy::parse_key(&h).context("phone_hash_key")?,
                encryption_key: checkin_core::privacy::parse_key(&e)
                    .context("phone_encryption_key")?,
            }),
            (None, None) => KeySource::File(data_dir.join("keys.toml")),
            _ => bail!("set both phone_hash_key and phone_encryption_key, or neither"),
        };
        let mut table = file.smsc.unwrap_or_default();
        let ussd: UssdConfig = match table.remove("ussd") {
            Some(section) => section
                .try_into()
                .context("parsing the [smsc.ussd] section")?,
            None => UssdConfig::default(),
        };
        ussd.validate().map_err(anyhow::Error::msg)?;
        let mut set = |key: &str, value: Option<toml::Value>| {
            if let Some(value) = value {
                table.insert(key.to_owned(), value);
            }
        };
        set("host", cli.smsc_host.map(toml::Value::String));
        set(
            "port",
            cli.smsc_port.map(|p| toml::Value::Integer(i64::from(p))),
        );
        set("system_id", cli.smsc_system_id.map(toml::Value::String));
        set("password", cli.smsc_password.map(toml::Value::String));
        let smsc = if table.contains_key("host") {
            for key in ["system_id", "password"] {
                if !table.contains_key(key) {
                    bail!("[smsc] needs {key} (CHECKIN_SMSC_{})", key.to_uppercase());
                }
            }
            let link: LinkConfig = toml::Value::Table(table)
                .try_into()
                .context("parsing the [smsc] section")?;
            link.validate().context("checking the [smsc] section")?;
            Some(SmscConfig(link))
        } else if !table.is_empty() {
            bail!("[smsc] needs host (CHECKIN_SMSC_HOST)");
        } else {
            None
        };
        let send_rate = cli
            .send_rate
            .or(file.send_rate)
            .unwrap_or(SEND_RATE_DEFAULT);
        let send_rate =
            std::num::NonZeroU32::new(send_rate).context("send_rate must be at least 1")?;
        let shutdown_timeout_ms = cli
            .shutdown_timeout_ms
            .or(file.shutdown_timeout_ms)
            .unwrap_or(SHUTDOWN_TIMEOUT_MS_DEFAULT);
        if shutdown_timeout_ms == 0 {
            bail!("shutdown_timeout_ms must be at least 1");
        }
        let shutdown_timeout = Duration::from_millis(shutdown_timeout_ms);
        let http = cli.http.or(file.http).unwrap_or(parse_addr(HTTP_DEFAULT));
        let web = web_config(file.web.clone())?;
        let notifier = file.notifier.clone().unwrap_or_default();
        if notifier.otp_max_age_ms == 0
            || notifier.confirmation_max_age_ms == 0
            || notifier.alert_max_age_ms == 0
        {
            bail!("[notifier] *_max_age_ms must be at least 1");
        }
        Ok(Config {
            data_dir,
            database_url,
            http,
            sim_smpp: cli
                .sim_smpp
                .or(file.sim_smpp)
                .unwrap_or(parse_addr(SIM_SMPP_DEFAULT)),
            sim_http: cli
                .sim_http
                .or(file.sim_http)
                .unwrap_or(parse_addr(SIM_HTTP_DEFAULT)),
            zone,
            store,
            keys,
            msisdn_policy: MsisdnPolicy {
                allow_international: cli
                    .allow_international
                    .or(file.allow_international)
                    .unwrap_or(false),
            },
            send_rate,
            smsc,
            ussd,
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

fn parse_addr(text: &str) -> SocketAddr {
    text.parse()
        .expect("the built-in default addresses are valid")
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// The `[web]` section over the web's defaults; without a `public_base_url`
/// the gateway fills in the address it bound.
fn web_config(section: Option<toml::Table>) -> anyhow::Result<web::WebConfig> {
    let section = section.unwrap_or_default();
    let named_base = section.contains_key("public_base_url");
    let mut web: web::WebConfig = toml::Value::Table(section)
        .try_into()
        .context("reading the [web] section")?;
    if !named_base {
        web.public_base_url = String::new();
    }
    check_oidc(&web.oidc).context("reading the [web.oidc] section")?;
    Ok(web)
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
mod tests {
    use super::*;

    const KEY_A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const KEY_B: &str = "0202020202020202020202020202020202020202020202020202020202020202";

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::merge(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("./checkin-data"));
        assert!(config.database_url.starts_with("sqlite://"));
        assert!(config.database_url.contains("checkin-data"));
        assert_eq!(config.http.to_string(), "127.0.0.1:8080");
        assert_eq!(config.sim_smpp.to_string(), "127.0.0.1:2775");
        assert_eq!(config.sim_http.to_string(), "127.0.0.1:2776");
        assert_eq!(config.zone, ServiceZone::default());
        assert_eq!(config.store.retention, Duration::from_secs(28 * 24 * 3600));
        assert_eq!(config.store.dedupe_window, Duration::from_secs(600));
        assert_eq!(
            config.keys,
            KeySource::File(PathBuf::from("./checkin-data/keys.toml"))
        );
        assert!(config.smsc.is_none());
        assert_eq!(config.ussd, UssdConfig::default());
        assert!(!config.msisdn_policy.allow_international);
        assert_eq!(config.send_rate.get(), 100);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(
            config.store.sqlite_synchronous,
            checkin_core::store::SqliteSync::Full,
            "acknowledged MOs survive a power loss by default"
        );
    }

    #[test]
    fn sqlite_synchronous_comes_from_the_file_or_a_flag_and_refuses_other_words() {
        use checkin_core::store::SqliteSync;
        let file: FileConfig = toml::from_str(r#"sqlite_synchronous = "normal""#).unwrap();
        let config = Config::merge(Overrides::default(), file.clone()).unwrap();
        assert_eq!(config.store.sqlite_synchronous, SqliteSync::Normal);
        let cli = Overrides {
            sqlite_synchronous: Some("FULL".into()),
            ..Overrides::default()
        };
        let config = Config::merge(cli, file).unwrap();
        assert_eq!(config.store.sqlite_synchronous, SqliteSync::Full);
        let cli = Overrides {
            sqlite_synchronous: Some("off".into()),
            ..Overrides::default()
        };
        let refused = Config::merge(cli, FileConfig::default()).unwrap_err();
        assert!(
            refused.to_string().contains("\"full\" or \"normal\""),
            "{refused}"
        );
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            data_dir = "/srv/checkin"
            http = "0.0.0.0:80"
            retention_days = 14
            allow_international = true
            time_zone = "Asia/Yekaterinburg"
            phone_hash_key = "0101010101010101010101010101010101010101010101010101010101010101"
            phone_encryption_key = "0202020202020202020202020202020202020202020202020202020202020202"
            [smsc]
            host = "smsc.operator.example"
            system_id = "checkin"
            password = "secret"
            window_max = 32
            "#,
        )
        .unwrap();
        let cli = Overrides {
            http: Some("127.0.0.1:9999".parse().unwrap()),
            smsc_port: Some(3775),
            ..Overrides::default()
        };
        let config = Config::merge(cli, file).unwrap();
        assert_eq!(config.http.to_string(), "127.0.0.1:9999");
        assert_eq!(config.data_dir, PathBuf::from("/srv/checkin"));
        assert!(config.database_url.contains("/srv/checkin/checkin.sqlite"));
        assert_eq!(config.store.retention, Duration::from_secs(14 * 24 * 3600));
        assert!(config.msisdn_policy.allow_international);
        assert_eq!(
            config.zone,
            ServiceZone::parse("Asia/Yekaterinburg").unwrap()
        );
        let smsc = config.smsc.unwrap();
        assert_eq!(
            (smsc.0.host.as_str(), smsc.0.port),
            ("smsc.operator.example", 3775)
        );
        assert_eq!(smsc.0.window_max, 32, "other [smsc] keys reach the link");
        assert!(!format!("{smsc:?}").contains("secret"));
        let KeySource::Given(keys) = config.keys else {
            panic!("keys were given")
        };
        assert_eq!(hex::encode(keys.hash_key), KEY_A);
        assert_eq!(hex::encode(keys.encryption_key), KEY_B);
    }

    #[test]
    fn mistakes_are_reported() {
        let half_keys = Overrides {
            phone_hash_key: Some(KEY_A.into()),
            ..Overrides::default()
        };
        assert!(Config::merge(half_keys, FileConfig::default()).is_err());
        let bad_zone = Overrides {
            time_zone: Some("Moscow".into()),
            ..Overrides::default()
        };
        assert!(Config::merge(bad_zone, FileConfig::default()).is_err());
        let smsc_without_login = Overrides {
            smsc_host: Some("smsc".into()),
            ..Overrides::default()
        };
        assert!(Config::merge(smsc_without_login, FileConfig::default()).is_err());
        assert!(toml::from_str::<FileConfig>("unknown_key = 1").is_err());
        let typo_in_smsc: FileConfig =
            toml::from_str("[smsc]\nhost = \"h\"\nsystem_id = \"s\"\npassword = \"p\"\nwindow = 3")
                .unwrap();
        assert!(Config::merge(Overrides::default(), typo_in_smsc).is_err());
    }

    #[test]
    fn the_notifier_section_sets_the_deadlines() {
        let config = Config::merge(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(config.notifier, NotifierSettings::default());
        let notifier = config
            .notifier
            .notifier_config(config.send_rate, config.smsc.as_ref());
        assert_eq!(notifier.otp_max_age, Duration::from_secs(300));
        assert_eq!(
            notifier.confirmation_max_age,
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(notifier.alert_max_age, Duration::from_secs(48 * 3600));
        let file: FileConfig = toml::from_str(
            r#"
            [notifier]
            alert_max_age_ms = 3600000
            "#,
        )
        .unwrap();
        let config = Config::merge(Overrides::default(), file).unwrap();
        assert_eq!(config.notifier.alert_max_age_ms, 3_600_000);
        assert_eq!(config.notifier.otp_max_age_ms, 300_000);
        let zero: FileConfig = toml::from_str("[notifier]\notp_max_age_ms = 0").unwrap();
        assert!(Config::merge(Overrides::default(), zero).is_err());
    }

    #[test]
    fn the_city_account_is_read_from_web_oidc_and_checked() {
        let off = Config::merge(Overrides::default(), FileConfig::default()).unwrap();
        assert!(!off.web.oidc.enabled());
        assert_eq!(off.web.oidc.button_label, "Войти через mos.ru");
        assert_eq!(off.web.oidc.scopes, "openid phone");
        let file: FileConfig = toml::from_str(
            "[web.oidc]\nissuer_url = \"https://login.example.ru\"\n\
             client_id = \"checkin\"\nclient_secret = \"s3cret\"\n",
        )
        .unwrap();
        let config = Config::merge(Overrides::default(), file).unwrap();
        assert!(config.web.oidc.enabled());
        assert_eq!(config.web.oidc.client_id, "checkin");
        assert_eq!(config.web.oidc.request_timeout_ms, 10_000);
        assert!(!format!("{:?}", config.web.oidc).contains("s3cret"));
        for bad in [
            "[web.oidc]\nissuer_url = \"login.example.ru\"\nclient_id = \"c\"\n",
            "[web.oidc]\nissuer_url = \"https://login.example.ru\"\n",
            "[web.oidc]\nissuer = \"https://login.example.ru\"\n",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(Config::merge(Overrides::default(), file).is_err(), "{bad}");
        }
    }
}
