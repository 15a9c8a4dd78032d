//! Limits on sending SMS codes: per phone (a minute and an hour) and per client
//! address, and on cabinet log-in attempts per client address; each a keyed
//! `governor` limiter on the service's clock (so tests move time by hand).
//! Phones are keyed by their keyed hash, never the number. Every limiter holds
//! at most `rate_keys_max` keys.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use checkin_core::{Clock, PhoneHash};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::config::WebConfig;
use crate::error::{Limit, WebError};

/// The service's clock as governor's: time since the Unix epoch.
#[derive(Debug, Clone)]
struct ServiceClock(Arc<dyn Clock>);

impl governor::clock::Clock for ServiceClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let since = self.0.now() - chrono::DateTime::UNIX_EPOCH;
        since.to_std().unwrap_or_default()
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, ServiceClock, NoOpMiddleware<Duration>>;

/// Wait when a limiter is full of keys even after pruning.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// The SMS-code limiters.
pub struct Limits {
    phone_minute: Keyed<PhoneHash>,
    phone_hour: Keyed<PhoneHash>,
    address_hour: Keyed<IpAddr>,
    login_address_minute: Keyed<IpAddr>,
    clock: ServiceClock,
    keys_max: usize,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("keys_max", &self.keys_max)
            .finish_non_exhaustive()
    }
}

fn keyed<K: std::hash::Hash + Eq + Clone>(quota: Quota, clock: &ServiceClock) -> Keyed<K> {
    RateLimiter::new(quota, DashMapStateStore::default(), clock.clone())
}

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    pub(crate) fn new(config: &WebConfig, clock: Arc<dyn Clock>) -> Limits {
        let clock = ServiceClock(clock);
        Limits {
            phone_minute: keyed(
                Quota::per_minute(at_least_one(config.sms_per_phone_minute)),
                &clock,
            ),
            phone_hour: keyed(
                Quota::per_hour(at_least_one(config.sms_per_phone_hour)),
                &clock,
            ),
            address_hour: keyed(
                Quota::per_hour(at_least_one(config.sms_per_ip_hour)),
                &clock,
            ),
            login_address_minute: keyed(
                Quota::per_minute(at_least_one(config.login_per_ip_minute)),
                &clock,
            ),
            clock,
            keys_max: config.rate_keys_max.max(1),
        }
    }

    /// Takes one SMS from each limit of `phone` and `address`, or says which
    /// refused and for how long. The address goes first: a flood from one
    /// place does not use up the victims' phone limits.
    pub(crate) fn take_sms(&self, phone: &PhoneHash, address: IpAddr) -> Result<(), WebError> {
        self.take(&self.address_hour, &address, Limit::Address)?;
        self.take(&self.phone_minute, phone, Limit::PhoneMinute)?;
        self.take(&self.phone_hour, phone, Limit::PhoneHour)
    }

    /// Takes one cabinet log-in attempt of `address`.
    pub(crate) fn take_login(&self, address: IpAddr) -> Result<(), WebError> {
        self.take(&self.login_address_minute, &address, Limit::Login)
    }

    fn take<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &Keyed<K>,
        key: &K,
        limit: Limit,
    ) -> Result<(), WebError> {
        if limiter.len() >= self.keys_max {
            limiter.retain_recent();
            if limiter.len() >= self.keys_max {
                return Err(WebError::RateLimited {
                    limit: Limit::Busy,
                    wait: BUSY_WAIT,
                });
            }
        }
        limiter.check_key(key).map_err(|not_until| {
            use governor::clock::Clock as _;
            WebError::RateLimited {
                limit,
                wait: not_until.wait_time_from(self.clock.now()),
            }
        })
    }

    /// Drops the keys whose limits are back to full.
    pub(crate) fn prune(&self) {
        self.phone_minute.retain_recent();
        self.phone_hour.retain_recent();
        self.address_hour.retain_recent();
        self.login_address_minute.retain_recent();
    }
}
