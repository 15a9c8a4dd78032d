//! `WebConfig`: the web's settings, each with its documented default.

/// The web's settings; every default is documented in `web/README.md`. Reads
/// from a configuration file's section (missing keys take their defaults).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where visitors and guards reach the service: the guard's QR encodes
    /// `{public_base_url}/c/{token}`. Default `http://127.0.0.1:8080`.
    pub public_base_url: String,
    /// Cookies get `Secure` (send only over HTTPS). Default false: the default
    /// service is plain HTTP on the loopback.
    pub cookie_secure: bool,
    /// How long the browser remembers a verified phone. Default 30 days.
    pub remember_phone_days: u32,
    /// How long an SMS code may be entered. Default 300 s.
    pub otp_life_s: u64,
    /// A guard token older than this is shown as stale. Default 12 h.
    pub guard_fresh_h: u32,
    /// SMS codes one phone may get per minute (default 1) and per hour
    /// (default 5).
    pub sms_per_phone_minute: u32,
    pub sms_per_phone_hour: u32,
    /// SMS codes one client address may ask for per hour. Default 60 (a
    /// venue's Wi-Fi or a mobile operator's NAT puts many visitors behind one).
    pub sms_per_ip_hour: u32,
    /// Largest request body accepted. Default 4096 bytes (the forms are tiny).
    pub body_bytes_max: usize,
    /// The service runs behind one reverse proxy of ours: the client's address
    /// is the last one the proxy appended to `X-Forwarded-For`, not the
    /// connection's peer (the proxy). Default false: a header any client can
    /// write is never trusted unless told.
    pub trust_forwarded_for: bool,
    /// Most keys (phones, addresses) each rate limiter tracks; beyond it, old
    /// keys are dropped and, if still full, requests are refused. Default 100 000.
    pub rate_keys_max: usize,
    /// Log-in attempts to the organization cabinet one client address may
    /// make per minute. Default 10.
    pub login_per_ip_minute: u32,
    /// How long a cabinet log-in lasts (the session cookie's and the stored
    /// session's life). Default 12 h.
    pub org_session_h: u32,
    /// Serve `GET /metrics` (Prometheus text; the gateway installs the
    /// recorder only then). Default true.
    pub metrics: bool,
    /// A request head must be complete this long after its first byte, or
    /// the connection is closed (a client sending headers a byte a second).
    /// Default 10 000 ms.
    pub header_read_timeout_ms: u64,
    /// A connection with no byte from the client this long (between
    /// requests, or mid-body) is closed. Longer than the proxy's keep-alive
    /// to us (nginx's upstream `keepalive_timeout` is 60 s), so the proxy
    /// drops an idle connection first and never sends on one we are
    /// closing. Default 75 000 ms.
    pub idle_timeout_ms: u64,
    /// Largest request head (request line and headers); larger is answered
    /// 431 and the connection closed. Default 16 384 bytes.
    pub header_bytes_max: usize,
    /// Most connections open at once; one more is accepted and closed at
    /// once. Default 10 000.
    pub connections_max: usize,
    /// The city account (OpenID Connect) instead of the SMS code
    /// (`[web.oidc]`); off while its `issuer_url` is empty.
    pub oidc: OidcConfig,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            cookie_secure: false,
            remember_phone_days: 30,
            otp_life_s: checkin_core::otp::OTP_LIFE_S_DEFAULT,
            guard_fresh_h: 12,
            sms_per_phone_minute: 1,
            sms_per_phone_hour: 5,
            sms_per_ip_hour: 60,
            body_bytes_max: 4096,
            trust_forwarded_for: false,
            rate_keys_max: 100_000,
            login_per_ip_minute: 10,
            org_session_h: 12,
            metrics: true,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 75_000,
            header_bytes_max: 16 * 1024,
            connections_max: 10_000,
            oidc: OidcConfig::default(),
        }
    }
}

/// The city account's OpenID Connect provider (`[web.oidc]`); every default
/// is documented in `web/README.md`. `Debug` hides the client secret.
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer, e.g. `https://login.mos.ru/sps`; its
    /// `/.well-known/openid-configuration` is read on the first login (then
    /// kept). Default empty: the city account is off (no button, its routes
    /// answer 404).
    pub issuer_url: String,
    /// Our client id at the provider. Default empty.
    pub client_id: String,
    /// Our client secret at the provider. Default empty.
    pub client_secret: String,
    /// The second button on the visitor's form. Default «Войти через mos.ru».
    pub button_label: String,
    /// The scopes asked for, space-separated (`openid` is always asked).
    /// Default `openid phone`.
    pub scopes: String,
    /// Longest wait for one request to the provider (discovery, token,
    /// user info). Default 10 000 ms.
    pub request_timeout_ms: u64,
}

impl OidcConfig {
    /// Whether the city account is offered at all.
    pub fn enabled(&self) -> bool {
        !self.issuer_url.trim().is_empty()
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer_url: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            button_label: "Войти через mos.ru".to_owned(),
            scopes: "openid phone".to_owned(),
            request_timeout_ms: 10_000,
        }
    }
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("button_label", &self.button_label)
            .field("scopes", &self.scopes)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}
