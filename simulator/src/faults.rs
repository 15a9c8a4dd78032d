//! The fault profile (`PUT /api/faults`) and the per-session machinery that
//! applies it: a token-bucket throttle and seeded random draws.
//!
//! Randomness is reproducible: each session draws from its own `StdRng`
//! seeded with `seed + session number`, so the same seed and the same
//! traffic on a session give the same faults whatever other sessions do.

use rand::{rngs::StdRng, Rng, SeedableRng};
use rusmpp::CommandStatus;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Status a throttled `submit_sm` is answered with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThrottleStatus {
    /// ESME_RTHROTTLED (0x58), the default.
    #[default]
    Throttled,
    /// ESME_RMSGQFUL (0x14).
    Msgqful,
}

impl ThrottleStatus {
    /// The SMPP status for this choice.
    pub fn status(self) -> CommandStatus {
        match self {
            Self::Throttled => CommandStatus::EsmeRthrottled,
            Self::Msgqful => CommandStatus::EsmeRmsgqful,
        }
    }
}

/// Response latency: uniform between `min_ms` and `max_ms`, except a
/// `spike_share` of responses that take `spike_ms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Smallest delay before a `submit_sm_resp`. Default 0.
    pub min_ms: u64,
    /// Largest delay (uniform between min and max). Default 0.
    pub max_ms: u64,
    /// Share (0..=1) of responses delayed by `spike_ms` instead. Default 0.
    pub spike_share: f64,
    /// Delay of a spike. Default 0.
    pub spike_ms: u64,
}

/// What goes wrong, and how often. Everything is off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultProfile {
    /// Seed of the random draws; `None` seeds from the OS (not reproducible).
    pub seed: Option<u64>,
    /// Largest `submit_sm` rate per bind (per second, burst of the same
    /// size); above it submits are answered with `throttle_status`.
    pub throttle_per_s: Option<u32>,
    /// Status of a throttled submit. Default `throttled`.
    pub throttle_status: ThrottleStatus,
    /// Delay of `submit_sm_resp`.
    pub latency: Latency,
    /// Share (0..=1) of `submit_sm` whose response is never sent (the
    /// message is still accepted and stored).
    pub drop_response_share: f64,
    /// Share (0..=1) of incoming PDUs after which the connection is closed
    /// without an answer.
    pub disconnect_share: f64,
    /// Share (0..=1) of binds rejected with ESME_RBINDFAIL.
    pub bind_reject_share: f64,
    /// Share (0..=1) of `submit_sm` answered with `submit_error_status`.
    pub submit_error_share: f64,
    /// Status of an injected submit error. Default 0x45 (ESME_RSUBMITFAIL).
    pub submit_error_status: Option<u32>,
}

impl FaultProfile {
    /// Checks shares are within 0..=1 and the latency range is ordered.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let shares = [
            ("latency.spike_share", self.latency.spike_share),
            ("drop_response_share", self.drop_response_share),
            ("disconnect_share", self.disconnect_share),
            ("bind_reject_share", self.bind_reject_share),
            ("submit_error_share", self.submit_error_share),
        ];
        for (name, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(crate::Error::Config(format!("{name} must be within 0..=1")));
            }
        }
        if self.latency.min_ms > self.latency.max_ms && self.latency.max_ms != 0 {
            return Err(crate::Error::Config(
                "latency.min_ms must not exceed latency.max_ms".into(),
            ));
        }
        if self.latency.max_ms > LATENCY_MS_MAX || self.latency.spike_ms > LATENCY_MS_MAX {
            return Err(crate::Error::Config(format!(
                "latency must not exceed {LATENCY_MS_MAX} ms"
            )));
        }
        if self.throttle_per_s == Some(0) {
            return Err(crate::Error::Config(
                "throttle_per_s must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Status of an injected submit error.
    pub fn submit_error(&self) -> CommandStatus {
        CommandStatus::from(self.submit_error_status.unwrap_or(0x45))
    }
}

/// Largest latency a profile may ask for: one minute.
pub const LATENCY_MS_MAX: u64 = 60_000;

/// The fault state of one session: its RNG and its throttle bucket.
#[derive(Debug)]
pub(crate) struct SessionFaults {
    pub(crate) profile: FaultProfile,
    rng: StdRng,
    tokens: f64,
    refilled_at: Instant,
}

impl SessionFaults {
    pub(crate) fn new(profile: FaultProfile, session_no: u64) -> Self {
        let rng = match profile.seed {
            Some(seed) => StdRng::seed_from_u64(seed.wrapping_add(session_no)),
            None => StdRng::from_entropy(),
        };
        let tokens = f64::from(profile.throttle_per_s.unwrap_or(0));
        Self {
            profile,
            rng,
            tokens,
            refilled_at: Instant::now(),
        }
    }

    /// True with probability `share`. Draws even when `share` is 0 or 1, so
    /// the sequence of draws does not depend on the profile's values.
    pub(crate) fn chance(&mut self, share: f64) -> bool {
        let x: f64 = self.rng.gen();
        x < share
    }

    /// A uniform draw in `0..1` (for receipt outcomes).
    pub(crate) fn unit(&mut self) -> f64 {
        self.rng.gen()
    }

    /// Takes a token from the bucket; false when the submit is throttled.
    pub(crate) fn take_submit_token(&mut self) -> bool {
        let Some(rate) = self.profile.throttle_per_s else {
            return true;
        };
        let rate = f64::from(rate);
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.refilled_at = now;
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Delay of the next response, in milliseconds.
    pub(crate) fn latency_ms(&mut self) -> u64 {
        let latency = &self.profile.latency;
        let spike: f64 = self.rng.gen();
        let base = if latency.max_ms > latency.min_ms {
            self.rng.gen_range(latency.min_ms..=latency.max_ms)
        } else {
            latency.min_ms
        };
        if spike < latency.spike_share {
            latency.spike_ms
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws() {
        let profile = FaultProfile {
            seed: Some(7),
            ..FaultProfile::default()
        };
        let mut a = SessionFaults::new(profile.clone(), 1);
        let mut b = SessionFaults::new(profile, 1);
        let draws_a: Vec<bool> = (0..64).map(|_| a.chance(0.5)).collect();
        let draws_b: Vec<bool> = (0..64).map(|_| b.chance(0.5)).collect();
        assert_eq!(draws_a, draws_b);
    }

    #[test]
    fn bad_shares_are_rejected() {
        let profile = FaultProfile {
            drop_response_share: 1.5,
            ..FaultProfile::default()
        };
        assert!(profile.validate().is_err());
    }

    #[test]
    fn bucket_allows_the_burst_then_throttles() {
        let profile = FaultProfile {
            throttle_per_s: Some(3),
            ..FaultProfile::default()
        };
        let mut faults = SessionFaults::new(profile, 0);
        let taken: Vec<bool> = (0..5).map(|_| faults.take_submit_token()).collect();
        assert_eq!(taken, [true, true, true, false, false]);
    }
}
